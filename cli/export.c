/*
 * export.c - `pixvec export` (the stored vectors out, as numpy, fvecs or
 * JSON Lines) and `pixvec import` (vectors computed elsewhere in, as the
 * items of a database of the "external" embedder). The formats and their
 * checks live in the engine (pv_db_export, pv_npy_read, pv_paths_read,
 * pv_import_vectors); this file parses options, creates the database an
 * import needs (and removes it again when the import fails), and prints.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "names.h"

static const char *const formats[] = {"npy", "fvecs", "jsonl"};

int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {
        {"out", required_argument, NULL, 'o'}, {"format", required_argument, NULL, 'f'},
        {"force", no_argument, NULL, 'F'},     {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},      {0}};
    const cli_cmd *c = cli_find("export");
    pv_export_opts eo = {PV_EXPORT_NPY, 0};
    pv_export_stats st = {0, 0, 0};
    const char *prefix = NULL;
    int json = 0, opt, rc;

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "o:f:h", lo)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help(stdout, c);
            return CLI_OK;
        case 'o':
            prefix = optarg;
            break;
        case 'F':
            eo.force = 1;
            break;
        case 'f':
            eo.format = -1;
            for (int i = 0; i < 3; i++)
                if (strcmp(optarg, formats[i]) == 0)
                    eo.format = i;
            if (eo.format < 0)
                return cli_usage_err(c, "--format takes npy, fvecs or jsonl, not '%s'", optarg);
            break;
        default:
            cli_print_usage(stderr, c);
            return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    if (!prefix || !prefix[0])
        return cli_usage_err(c, "%s", "say where with --out PREFIX");
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = pv_db_export(ctx->db, prefix, &eo, &st)) != 0) {
        cli_set_code(cli_code_of(rc));
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    }
    static const char *const exts[3][3] = {{".npy", ".ids.npy", ".paths.txt"},
                                           {".fvecs", ".ids.npy", ".paths.txt"},
                                           {".jsonl", NULL, NULL}};
    if (json) {
        json_t *files = json_array();
        for (int i = 0; i < 3 && exts[eo.format][i]; i++) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s%s", prefix, exts[eo.format][i]);
            json_array_append_new(files, cli_name_json(p));
        }
        return cli_print_json(json_pack("{s:b, s:s, s:I, s:i, s:b, s:o}", "ok", 1, "format",
                                        formats[eo.format], "items", (json_int_t)st.items, "dim",
                                        (int)st.dim, "dequantized", st.dequantized, "files",
                                        files));
    }
    printf("exported %llu %s of %u dims%s to ", (unsigned long long)st.items,
           cli_plural(st.items, "vector", "vectors"), st.dim,
           st.dequantized ? " (compact copies decoded: the float32 were dropped)" : "");
    for (int i = 0; i < 3 && exts[eo.format][i]; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s", prefix, exts[eo.format][i]);
        if (i)
            fputs(i + 1 < 3 && exts[eo.format][i + 1] ? ", " : " and ", stdout);
        cli_name_print(stdout, p);
    }
    putchar('\n');
    return CLI_OK;
}

/* Remove a database this import created: its two files, and the folder
 * when the import made it. */
static void remove_created(const char *dir, int made_dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    if (made_dir)
        rmdir(dir);
}

int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"paths", required_argument, NULL, 'P'},
                                       {"normalize", no_argument, NULL, 'n'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
    const cli_cmd *c = cli_find("import");
    pv_import_opts io = {0};
    const char *paths_file = NULL, *npy;
    float *vecs = NULL;
    char **paths = NULL, err[1024] = "", p[PATH_MAX];
    size_t npaths = 0, imported = 0;
    uint64_t rows = 0;
    uint32_t cols = 0;
    int json = 0, opt, rc, nd = 0, created = 0, made_dir = 0, status = CLI_OK;
    struct stat sb;

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "h", lo)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help(stdout, c);
            return CLI_OK;
        case 'P':
            paths_file = optarg;
            break;
        case 'n':
            io.normalize = 1;
            break;
        default:
            cli_print_usage(stderr, c);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_usage_err(
            c, "%s", optind >= argc ? "name the VECTORS.npy file" : "give one VECTORS.npy file");
    if (!paths_file)
        return cli_usage_err(c, "%s", "--paths PATHS.txt is required (one path a row)");
    npy = argv[optind];
    if ((rc = pv_npy_read(npy, &vecs, &rows, &cols, &nd, err, sizeof err)) != 0) {
        cli_set_code(cli_code_of(rc));
        return cli_fail(c->name, json, "%s", err);
    }
    if (nd != 2) {
        cli_set_code("invalid_argument");
        status = cli_fail(c->name, json,
                          "%s: a 1-D array; import takes a 2-D array, one "
                          "vector a row (x.reshape(1, -1) for one)",
                          npy);
        goto done;
    }
    if ((rc = pv_paths_read(paths_file, &paths, &npaths, err, sizeof err)) != 0) {
        cli_set_code(cli_code_of(rc));
        status = cli_fail(c->name, json, "%s", err);
        goto done;
    }
    if (npaths != rows) {
        cli_set_code("invalid_argument");
        status = cli_fail(c->name, json, "%s has %llu %s but %s has %zu %s: one path a row", npy,
                          (unsigned long long)rows, cli_plural(rows, "row", "rows"), paths_file,
                          npaths, cli_plural(npaths, "line", "lines"));
        goto done;
    }
    snprintf(p, sizeof p, "%s/data.mdb", ctx->dbpath);
    if (!ctx->db && stat(p, &sb) != 0 && errno == ENOENT) {
        pv_embedder_opts e = {.name = "external", .size = (int)cols};
        made_dir = stat(ctx->dbpath, &sb) != 0;
        rc = pv_db_create(ctx->dbpath, &e, NULL, &ctx->db, err, sizeof err);
        if (rc != 0) {
            ctx->db = NULL;
            if (rc != PV_EEXIST)
                remove_created(ctx->dbpath, made_dir);
            cli_set_code(cli_code_of(rc));
            status = cli_fail(c->name, json, "%s", err[0] ? err : pv_strerror(rc));
            goto done;
        }
        ctx->db_write = 1;
        created = 1;
    } else if ((status = cli_open(ctx, c, CLI_OPEN_WRITE)) != CLI_OK) {
        goto done;
    }
    rc = pv_import_vectors(ctx->db, vecs, (size_t)rows, cols, (const char *const *)paths, &io,
                           &imported);
    if (rc != 0) {
        cli_set_code(cli_code_of(rc));
        status = cli_fail(c->name, json, "%s: %s%s", npy, cli_db_msg(ctx, rc),
                          created ? " (nothing imported; the database is not created)"
                                  : " (nothing imported)");
        if (created) {
            pv_db_close(ctx->db);
            ctx->db = NULL;
            remove_created(ctx->dbpath, made_dir);
        }
        goto done;
    }
    if (json)
        cli_print_json(json_pack("{s:b, s:o, s:I, s:i, s:b}", "ok", 1, "database",
                                 cli_name_json(ctx->dbpath), "imported", (json_int_t)imported,
                                 "dim", (int)cols, "created", created));
    else
        printf("imported %zu %s of %u dims into %s%s\n", imported,
               cli_plural(imported, "vector", "vectors"), cols, ctx->dbpath,
               created ? " (created: a database of external vectors; query it with "
                         "--vector)"
                       : "");
done:
    pv_paths_free(paths, npaths);
    pv_npy_free(vecs);
    return status;
}
