/*
 * commands.c - the command table and one handler per command, shared by
 * `pixvec CMD` and the shell. Handlers parse their options with getopt_long
 * (reset for every call), call the public API in pixvec.h only, and print
 * text or, with --json, exactly one JSON document (jansson does the
 * escaping) on stdout. Errors go to stderr as "pixvec: CMD: message".
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cluster_html.h"
#include "names.h"

/* ---- shared helpers ------------------------------------------------------ */

const char *cli_plural(unsigned long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void hash_hex(const uint8_t h[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

json_t *cli_item_json(const pv_item *it)
{
    char hex[33];
    hash_hex(it->hash, hex);
    return json_pack("{s:I, s:o, s:I, s:I, s:i, s:i, s:s, s:s}", "id", (json_int_t)it->id, "path",
                     cli_name_json(it->path), "size", (json_int_t)it->size, "mtime_ns",
                     (json_int_t)it->mtime_ns, "width", (int)it->width, "height", (int)it->height,
                     "hash", hex, "format", pv_format_name(it->format));
}

/* Embedder options shared by init, add and query. */
#define EMB_LONGOPTS                                                          \
    {"embedder", required_argument, NULL, 'E'},                               \
        {"size", required_argument, NULL, 'S'}, {"rgb", no_argument, NULL, 'R'},       \
        {"no-mirror", no_argument, NULL, 'N'}

static int emb_opt(const cli_cmd *c, int opt, const char *arg,
                   pv_embedder_opts *e, int *given)
{
    long v;
    switch (opt) {
    case 'E': e->name = arg; break;
    case 'S':
        if (cli_parse_int(arg, 2, 512, &v) != 0)
            return cli_usage_err(c, "--size takes 2..512, not '%s'", arg);
        e->size = (int)v;
        break;
    case 'R': e->rgb = 1; break;
    case 'N': e->no_mirror = 1; break;
    default: return -1;
    }
    *given = 1;
    return CLI_OK;
}

static int check_emb(cli_ctx *ctx, const char *cmd, int json, int given,
                     const pv_embedder_opts *e)
{
    int rc;
    if (!given)
        return CLI_OK;
    rc = pv_db_check_embedder(ctx->db, e);
    return rc == 0 ? CLI_OK : cli_fail(cmd, json, "%s", cli_db_msg(ctx, rc));
}


/* Options of the commands that take only --json and --help. Returns -1 to
 * go on (with *json set and optind at the first operand), else the exit
 * code. want_operands: 0 none allowed, 1 at least one. */
static int parse_plain(const cli_cmd *c, int argc, char **argv, int *json,
                       int want_operands, const char *missing)
{
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    int opt;
    *json = 0;
    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "h", lo)) != -1) {
        if (opt == 'j') {
            *json = 1;
        } else if (opt == 'h') {
            cli_print_help(stdout, c);
            return CLI_OK;
        } else {
            cli_print_usage(stderr, c);
            return CLI_USAGE;
        }
    }
    if (!want_operands && optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    if (want_operands && optind >= argc)
        return cli_usage_err(c, "%s", missing);
    return -1;
}


/* ---- init ------------------------------------------------------------------ */

/* `init --vectors` names, in PV_VECTORS_* order, then the compact-only
 * ones (PV_VECTORS_* + 2). */
static const char *const vector_kinds[] = {"f32", "f16", "i8", "f16-only", "i8-only"};

static const char *vectors_name(int kind, int only)
{
    return vector_kinds[only && kind != PV_VECTORS_F32 ? kind + 2 : kind];
}

/* An embedder option given to an embedder that would ignore it is an error
 * saying whose it is. */
static int init_opts_apply(const cli_cmd *c, const pv_embedder_opts *e, int pool)
{
    const char *n = e->name;
    if (strcmp(n, "external") == 0)
        return cli_usage_err(c, "%s",
                             "a database of vectors computed elsewhere is made by "
                             "`pixvec import DB VECTORS.npy --paths PATHS.txt`");
    int pixels = strcmp(n, "pixels") == 0, vit = strcmp(n, "clip") == 0 ||
                                              strcmp(n, "dinov2") == 0 ||
                                              strcmp(n, "vitmae") == 0;
    if (e->model && !vit && strcmp(n, "cnn") != 0)
        return cli_usage_err(c, "--model applies to the embedders that read a model (cnn, "
                                "clip, dinov2, vitmae), not %s", n);
    if (pool && strcmp(n, "vitmae") != 0)
        return cli_usage_err(c, "--pool applies to --embedder vitmae only, not %s", n);
    if (e->no_mirror && strcmp(n, "photo") != 0)
        return cli_usage_err(c, "--no-mirror applies to --embedder photo only, not %s", n);
    if ((e->size || e->rgb) && !pixels)
        return cli_usage_err(c, "--size and --rgb apply to --embedder pixels only, not %s", n);
    return CLI_OK;
}

static int cmd_init(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {EMB_LONGOPTS, {"M", required_argument, NULL, 'M'},
                                       {"ef-construction", required_argument, NULL, 'C'},
                                       {"model", required_argument, NULL, 'W'},
                                       {"pool", required_argument, NULL, 'P'},
                                       {"vectors", required_argument, NULL, 'V'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    const cli_cmd *c = cli_find("init");
    pv_embedder_opts e = {.name = "pixels"};
    pv_index_opts ix = {0, 0, PV_VECTORS_F32, 0};
    int json = 0, given = 0, pool = 0, opt, rc;
    long v;
    char err[1024] = "";
    pv_db *db = NULL;
    pv_info info;

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "h", lo)) != -1) {
        if (opt == 'j')
            json = 1;
        else if (opt == 'h') {
            cli_print_help(stdout, c);
            return CLI_OK;
        } else if (opt == 'W') {
            e.model = optarg;
        } else if (opt == 'P') {
            if (strcmp(optarg, "sum") != 0 && strcmp(optarg, "cls") != 0)
                return cli_usage_err(c, "--pool takes cls or sum, not '%s'", optarg);
            e.pool_sum = strcmp(optarg, "sum") == 0;
            pool = 1;
        } else if (opt == 'V') {
            ix.vectors = -1;
            for (int k = 0; k < 5; k++)
                if (strcmp(optarg, vector_kinds[k]) == 0) {
                    ix.vectors = k > PV_VECTORS_I8 ? k - 2 : k;
                    ix.compact_only = k > PV_VECTORS_I8;
                }
            if (ix.vectors < 0)
                return cli_usage_err(c, "--vectors takes f32, f16, i8, f16-only or i8-only, not '%s'",
                                     optarg);
        } else if (opt == 'M') {
            if (cli_parse_int(optarg, 2, 128, &v) != 0)
                return cli_usage_err(c, "--M takes 2..128, not '%s'", optarg);
            ix.M = (int)v;
        } else if (opt == 'C') {
            if (cli_parse_int(optarg, 1, 4096, &v) != 0)
                return cli_usage_err(c, "--ef-construction takes 1..4096, not '%s'", optarg);
            ix.ef_construction = (int)v;
        } else if ((rc = emb_opt(c, opt, optarg, &e, &given)) != CLI_OK) {
            if (rc == -1)
                cli_print_usage(stderr, c);
            return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    if ((rc = init_opts_apply(c, &e, pool)) != CLI_OK)
        return rc;
    if (ctx->in_shell)
        return cli_fail(c->name, json, "init is not available inside the shell");
    rc = pv_db_create(ctx->dbpath, &e, &ix, &db, err, sizeof err);
    if (rc != 0)
        cli_set_code(cli_code_of(rc));
    if (rc != 0)
        return cli_fail(c->name, json, "%s", err[0] ? err : pv_strerror(rc));
    rc = pv_db_info(db, &info);
    pv_db_close(db);
    if (rc != 0)
        return cli_fail(c->name, json, "%s", pv_strerror(rc));
    if (json)
        return cli_print_json(json_pack("{s:b, s:o, s:s, s:s, s:i, s:s}", "ok", 1, "database",
                                        cli_name_json(ctx->dbpath), "embedder", info.embedder,
                                        "embedder_desc", info.embedder_desc, "dim",
                                        (int)info.dim, "vectors",
                                        vectors_name(info.vectors, info.compact_only)));
    printf("created %s: %s, %u dims; HNSW M=%u ef_construction=%u", ctx->dbpath,
           info.embedder_desc, info.dim, info.hnsw_m, info.hnsw_ef_construction);
    if (info.vectors != PV_VECTORS_F32 && info.compact_only)
        printf("; %s: only %s copies of the vectors are kept", vectors_name(info.vectors, 1),
               vector_kinds[info.vectors]);
    else if (info.vectors != PV_VECTORS_F32)
        printf("; %s copies of the vectors for graph searches", vector_kinds[info.vectors]);
    printf("\n");
    return CLI_OK;
}

/* ---- add ------------------------------------------------------------------- */

typedef struct add_ui {
    int bar;          /* draw a progress bar (stderr is a terminal) */
    int bar_drawn;
    int bar_done;     /* the full bar was drawn and ended with a newline */
    double t0;
    uint64_t errors;
    json_t *fails;    /* with --json: [{path, code, reason}] */
} add_ui;

/* SIGINT and SIGTERM during `add`: pv_add reads the flag, commits what is
 * embedded and returns PV_EINTR; the handler only sets it. */
static volatile int add_stop;

static void add_on_signal(int sig)
{
    add_stop = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void add_progress(void *vctx, uint64_t done, uint64_t total)
{
    add_ui *ui = vctx;
    int width = 30, filled;
    double el;
    if (!ui->bar || total == 0 || ui->bar_done)
        return;
    el = now_s() - ui->t0;
    filled = (int)(width * done / total);
    fprintf(stderr, "\r[%.*s%.*s] %llu/%llu  %.0f img/s ", filled,
            "##############################", width - filled,
            "..............................", (unsigned long long)done,
            (unsigned long long)total, el > 0 ? done / el : 0.0);
    ui->bar_drawn = 1;
    if (done == total) {
        fputc('\n', stderr);
        ui->bar_drawn = 0;
        ui->bar_done = 1;
    }
    fflush(stderr);
}

static void add_error(void *vctx, const char *path, int err, const char *reason)
{
    add_ui *ui = vctx;
    if (ui->bar_drawn) {
        fputs("\r\033[K", stderr);
        ui->bar_drawn = 0;
    }
    /* A reason that opens with the code's own text ("empty file (0 bytes)")
     * says it already: print it alone, not "empty file: empty file ...". */
    const char *what = pv_strerror(err);
    fputs("pixvec: add: ", stderr);
    cli_name_print(stderr, path);
    if (reason && reason[0] && strncmp(reason, what, strlen(what)) == 0)
        fprintf(stderr, ": %s\n", reason);
    else
        fprintf(stderr, ": %s%s%s\n", what, reason && reason[0] ? ": " : "",
                reason ? reason : "");
    ui->errors++;
    if (ui->fails)
        json_array_append_new(ui->fails,
                              json_pack("{s:o, s:s, s:o}", "path", cli_name_json(path), "code",
                                        cli_code_of(err), "reason",
                                        cli_text_json(reason ? reason : pv_strerror(err))));
}

static int cmd_add(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {EMB_LONGOPTS,
                                       {"threads", required_argument, NULL, 't'},
                                       {"commit-every", required_argument, NULL, 'C'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    const cli_cmd *c = cli_find("add");
    pv_embedder_opts e = {.name = NULL};
    pv_add_opts ao = {0};
    pv_add_stats st = {0};
    add_ui ui = {0};
    int json = 0, quiet = 0, given = 0, opt, rc;
    long v;
    double el;

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "t:qh", lo)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': cli_print_help(stdout, c); return CLI_OK;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &v) != 0)
                return cli_usage_err(c, "--threads takes 1..1024, not '%s'", optarg);
            ao.threads = (int)v;
            break;
        case 'C':
            if (cli_parse_float(optarg, 0.001, 86400, &ao.commit_seconds) != 0)
                return cli_usage_err(c, "--commit-every takes seconds (0.001..86400), not '%s'",
                                     optarg);
            break;
        default:
            if ((rc = emb_opt(c, opt, optarg, &e, &given)) != CLI_OK) {
                if (rc == -1)
                    cli_print_usage(stderr, c);
                return CLI_USAGE;
            }
        }
    }
    if (optind >= argc)
        return cli_usage_err(c, "%s", "no files or folders to add");
    if ((rc = cli_open(ctx, c, CLI_OPEN_WRITE)) != CLI_OK)
        return rc;
    if ((rc = check_emb(ctx, c->name, json, given, &e)) != CLI_OK)
        return rc;
    ui.bar = !quiet && !json && isatty(STDERR_FILENO);
    if (json && !(ui.fails = json_array()))
        return cli_fail(c->name, json, "%s", "out of memory");
    ui.t0 = now_s();
    ao.progress = add_progress;
    ao.on_error = add_error;
    ao.ctx = &ui;
    ao.cancel = &add_stop;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = add_on_signal; /* no SA_RESTART: a wait for the lock ends */
    sigemptyset(&sa.sa_mask);
    add_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rc = pv_add(ctx->db, (const char *const *)argv + optind,
                (size_t)(argc - optind), &ao, &st);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    el = now_s() - ui.t0;
    if (ui.bar_drawn)
        fputc('\n', stderr);
    if (rc != 0) { /* the error document says what happened */
        json_decref(ui.fails);
        ui.fails = NULL;
    }
    if (rc == PV_EINTR) {
        int sig = add_stop ? add_stop : SIGINT;
        add_stop = 0;
        cli_fail(c->name, json, "interrupted: %llu %s kept (committed before stopping); "
                 "run the same add again to go on", (unsigned long long)st.kept,
                 cli_plural(st.kept, "image", "images"));
        return ctx->in_shell ? CLI_ERR : 128 + sig;
    }
    if (rc != 0)
        return cli_fail(c->name, json, "%s (%llu %s kept: batches committed before "
                        "this stay)", cli_db_msg(ctx, rc), (unsigned long long)st.kept,
                        cli_plural(st.kept, "image", "images"));
    if (json) {
        json_t *doc = json_pack(
            "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:O}", "ok", st.failed == 0,
            "seen", (json_int_t)st.seen, "added", (json_int_t)st.added,
            "updated", (json_int_t)st.updated, "moved", (json_int_t)st.moved,
            "unchanged", (json_int_t)st.unchanged, "failed",
            (json_int_t)st.failed, "forgotten", (json_int_t)st.forgotten,
            "seconds", el, "failures", ui.fails);
        if (doc && st.failed) { /* the error part every failed run's document has */
            char msg[128];
            snprintf(msg, sizeof msg, "%llu %s could not be added",
                     (unsigned long long)st.failed, st.failed == 1 ? "file" : "files");
            json_object_set_new(doc, "exit_status", json_integer(CLI_ERR));
            json_object_set_new(doc, "error", json_pack("{s:s, s:s}", "code",
                                                        "files_failed", "message", msg));
        }
        cli_print_json(doc);
    } else if (!quiet || st.failed)
        printf("added %llu, updated %llu, moved %llu, unchanged %llu, failed "
               "%llu, forgotten %llu (%llu %s, %.2f s, %.0f new images/s)\n",
               (unsigned long long)st.added, (unsigned long long)st.updated,
               (unsigned long long)st.moved, (unsigned long long)st.unchanged,
               (unsigned long long)st.failed, (unsigned long long)st.forgotten,
               (unsigned long long)st.seen, cli_plural(st.seen, "file", "files"), el,
               el > 0 ? (st.added + st.updated) / el : 0.0);
    json_decref(ui.fails);
    if (!json && st.seen == 0) /* a folder of other files, or a typo'd one */
        printf("no image files found under %s%s (pixvec reads .jpg .jpeg .jpe .png .webp .heic "
               ".heif .hif .avif .tif .tiff .gif .bmp .dib; "
               "hidden folders are skipped)\n",
               argv[optind], argc - optind > 1 ? " and the rest" : "");
    return st.failed ? CLI_ERR : CLI_OK;
}

/* ---- query ----------------------------------------------------------------- */

/* Why a query returned fewer hits than asked (cli's guess from the counts;
 * the engine's HNSW search falls back to a scan when it finds too few). */
static void short_reason(cli_ctx *ctx, const pv_query_opts *qo, char *why, size_t len)
{
    pv_info in;
    if (pv_db_info(ctx->db, &in) != 0)
        snprintf(why, len, "the index found no more");
    else if (in.items == 0)
        snprintf(why, len, "the database is empty");
    else if (qo->ivf && in.ivf_nlist) {
        unsigned p = qo->nprobe > 0 ? (unsigned)qo->nprobe : 8; /* pixvec.h's default */
        p = p < in.ivf_nlist ? p : in.ivf_nlist;
        if (p < in.ivf_nlist)
            snprintf(why, len, "only the images in the %u of %u IVF lists probed; raise --nprobe",
                     p, in.ivf_nlist);
        else
            snprintf(why, len, "the database holds only %llu %s", (unsigned long long)in.items,
                     cli_plural(in.items, "image", "images"));
    } else
        snprintf(why, len, "the database holds only %llu %s", (unsigned long long)in.items,
                 cli_plural(in.items, "image", "images"));
}

/* A stored (absolute) path as text output shows it: relative to the
 * current folder when it lies under it, as `add .` or `add photos` was
 * given, else whole. JSON keeps the stored path. */
static const char *shown_path(const char *path, const char *cwd, size_t nc)
{
    if (nc > 1 && strncmp(path, cwd, nc) == 0 && path[nc] == '/' && path[nc + 1])
        return path + nc + 1;
    return path;
}

/* query (an image) and search (a text): the same options and output. */
static int query_or_search(cli_ctx *ctx, const cli_cmd *c, int text, int argc, char **argv)
{
    static const struct option lo[] = {EMB_LONGOPTS,
                                       {"k", required_argument, NULL, 'k'},
                                       {"ef", required_argument, NULL, 'e'},
                                       {"exact", no_argument, NULL, 'x'},
                                       {"index", required_argument, NULL, 'I'},
                                       {"nprobe", required_argument, NULL, 'p'},
                                       /* not 'R': that is --rgb (EMB_LONGOPTS) */
                                       {"no-rerank", no_argument, NULL, 'Q'},
                                       {"vector", required_argument, NULL, 'V'},
                                       {"row", required_argument, NULL, 'w'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
    pv_embedder_opts e = {.name = NULL};
    pv_query_opts qo = {.k = 10};
    const char *vector_file = NULL; /* query --vector FILE.npy [--row N] */
    long row = -1;
    pv_hit *hits = NULL;
    size_t n = 0;
    long k = 10, ef = 0, nprobe = 0;
    int json = 0, given = 0, opt, rc;
    /* The index asked and the option that asked it: two that differ conflict. */
    char index[16] = "", index_by[32] = "";

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "k:e:p:h", lo)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'Q':
            qo.no_rerank = 1;
            break;
        case 'x':
        case 'I': {
            char by[32];
            const char *want = opt == 'x' ? "exact" : optarg;
            if (strcmp(want, "exact") != 0 && strcmp(want, "ivf") != 0 &&
                strcmp(want, "hnsw") != 0)
                return cli_usage_err(c, "--index takes hnsw, ivf or exact, not '%s'", optarg);
            snprintf(by, sizeof by, opt == 'x' ? "--exact" : "--index %s", want);
            if (index[0] && strcmp(index, want) != 0) {
                cli_err(c->name, "%s and %s conflict: give one", index_by, by);
                cli_print_usage(stderr, c);
                return CLI_USAGE;
            }
            snprintf(index, sizeof index, "%s", want);
            snprintf(index_by, sizeof index_by, "%s", by);
            qo.exact = strcmp(want, "exact") == 0;
            qo.ivf = strcmp(want, "ivf") == 0;
            break;
        }
        case 'p':
            if (cli_parse_int(optarg, 1, 1 << 20, &nprobe) != 0)
                return cli_usage_err(c, "--nprobe takes 1..1048576, not '%s'", optarg);
            break;
        case 'h': cli_print_help(stdout, c); return CLI_OK;
        case 'k':
            if (cli_parse_int(optarg, 1, 100000, &k) != 0)
                return cli_usage_err(c, "-k takes 1..100000, not '%s'", optarg);
            break;
        case 'e':
            if (cli_parse_int(optarg, 1, 100000, &ef) != 0)
                return cli_usage_err(c, "--ef takes 1..100000, not '%s'", optarg);
            break;
        case 'V':
            if (text)
                return cli_usage_err(c, "--vector applies to query, not search%s", "");
            vector_file = optarg;
            break;
        case 'w':
            if (text || cli_parse_int(optarg, 0, INT32_MAX, &row) != 0)
                return cli_usage_err(c,
                                     "--row takes a row number from 0 (query --vector), "
                                     "not '%s'",
                                     optarg);
            break;
        default:
            if ((rc = emb_opt(c, opt, optarg, &e, &given)) != CLI_OK) {
                if (rc == -1)
                    cli_print_usage(stderr, c);
                return CLI_USAGE;
            }
        }
    }
    if (row >= 0 && !vector_file)
        return cli_usage_err(c, "--row applies to --vector only%s", "");
    if (vector_file && optind != argc)
        return cli_usage_err(c, "give a query image or --vector FILE.npy, not both ('%s')",
                             argv[optind]);
    if (!vector_file && optind != argc - 1)
        return cli_usage_err(c, "%s",
                             text ? "give exactly one text (quote it: \"a dog on a beach\")"
                                  : "give exactly one query image (or --vector FILE.npy)");
    if (nprobe && !qo.ivf)
        return cli_usage_err(c, "--nprobe applies to --index ivf only%s", "");
    if (ef && (qo.ivf || qo.exact))
        return cli_usage_err(c, "--ef applies to the HNSW search only (not %s)", index_by);
    if (qo.no_rerank && qo.exact)
        return cli_usage_err(c, "--no-rerank applies to the HNSW and IVF searches only%s", "");
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = check_emb(ctx, c->name, json, given, &e)) != CLI_OK)
        return rc;
    qo.k = (int)k;
    qo.ef = (int)ef;
    qo.nprobe = (int)nprobe;
    if (vector_file) {
        float *vecs = NULL;
        uint64_t rows = 0;
        uint32_t cols = 0;
        int nd = 0;
        char err[1024] = "";
        rc = pv_npy_read(vector_file, &vecs, &rows, &cols, &nd, err, sizeof err);
        if (rc != 0) {
            cli_set_code(cli_code_of(rc));
            return cli_fail(c->name, json, "%s", err);
        }
        if (row < 0 && rows != 1) {
            pv_npy_free(vecs);
            return cli_usage_err(c, "%s holds several vectors: pick one with --row N (from 0)",
                                 vector_file);
        }
        if (row >= 0 && (uint64_t)row >= rows) {
            char msg[96];
            snprintf(msg, sizeof msg, "%ld, but %s has %llu %s (from 0)", row,
                     nd == 1 ? "the 1-D array" : "it", (unsigned long long)rows,
                     cli_plural(rows, "row", "rows"));
            pv_npy_free(vecs);
            return cli_fail(c->name, json, "%s: --row %s", vector_file, msg);
        }
        rc = pv_query_vector(ctx->db, vecs + (size_t)(row < 0 ? 0 : row) * cols, cols, &qo, &hits,
                             &n);
        pv_npy_free(vecs);
    } else {
        rc = text ? pv_query_text(ctx->db, argv[optind], &qo, &hits, &n)
                  : pv_query_image(ctx->db, argv[optind], &qo, &hits, &n);
    }
    if (rc != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    char why[160] = "";
    if (n < (size_t)k)
        short_reason(ctx, &qo, why, sizeof why);
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:i, s:I, s:o, s:f}", "rank",
                                                 (int)(i + 1), "id",
                                                 (json_int_t)hits[i].id, "path",
                                                 cli_name_json(hits[i].path), "score",
                                                 (double)hits[i].score));
        /* A query image's name by the JSON rule; a text query is UTF-8
         * already (pv_query_text refuses anything else). */
        rc = cli_print_json(
            json_pack("{s:b, s:o, s:i, s:s, s:i, s:I, s:s?, s:o}", "ok", 1, text ? "text" : "query",
                      text ? cli_text_json(argv[optind])
                           : cli_name_json(vector_file ? vector_file : argv[optind]),
                      "k", (int)k, "index",
                      qo.exact ? "exact"
                      : qo.ivf ? "ivf"
                               : "hnsw",
                      "asked", (int)k, "returned", (json_int_t)n, "short_reason",
                      why[0] ? why : NULL, "hits", arr));
    } else {
        char cwd[PATH_MAX];
        size_t nc = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0;
        for (size_t i = 0; i < n; i++) {
            printf("%3zu  %.4f  ", i + 1, hits[i].score);
            cli_name_print(stdout, shown_path(hits[i].path, cwd, nc));
            putchar('\n');
        }
        if (why[0])
            printf("(%zu of the %ld asked: %s)\n", n, k, why);
    }
    pv_hits_free(hits, n);
    return rc;
}

static int cmd_query(cli_ctx *ctx, int argc, char **argv)
{
    return query_or_search(ctx, cli_find("query"), 0, argc, argv);
}

static int cmd_search(cli_ctx *ctx, int argc, char **argv)
{
    return query_or_search(ctx, cli_find("search"), 1, argc, argv);
}

/* ---- info ------------------------------------------------------------------ */

static int cmd_info(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("info");
    pv_info in;
    int json, rc;

    if ((rc = parse_plain(c, argc, argv, &json, 0, NULL)) != -1)
        return rc;
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = pv_db_info(ctx->db, &in)) != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    if (json) {
        json_t *doc = json_pack(
            "{s:b, s:s, s:i, s:s, s:s, s:i, s:I, s:I, s:I, s:i, s:i, s:i, s:I, s:I, s:I, s:i, s:i, "
            "s:f, s:s, s:I, s:i}",
            "ok", 1, "database", ctx->dbpath, "format", (int)in.format, "embedder", in.embedder,
            "embedder_desc", in.embedder_desc, "dim", (int)in.dim, "items", (json_int_t)in.items,
            "deleted", (json_int_t)in.deleted, "next_id", (json_int_t)in.next_id, "chunk",
            (int)in.chunk, "hnsw_m", (int)in.hnsw_m, "hnsw_ef_construction",
            (int)in.hnsw_ef_construction, "graph_nodes", (json_int_t)in.graph_nodes, "disk_bytes",
            (json_int_t)in.disk_bytes, "map_bytes", (json_int_t)in.map_bytes, "ivf_nlist",
            (int)in.ivf_nlist, "cluster_k", (int)in.cluster_k, "dups_threshold",
            (double)in.dups_threshold, "vectors", vectors_name(in.vectors, in.compact_only),
            "coded", (json_int_t)in.coded, "code_bytes", (int)in.code_bytes);
        json_t *fm = json_object();
        for (int f = 0; f < PV_NFORMATS; f++)
            if (in.formats[f])
                json_object_set_new(fm, pv_format_name(f), json_integer((json_int_t)in.formats[f]));
        json_object_set_new(doc, "formats", fm);
        return cli_print_json(doc);
    }
    printf("database  %s\nformat    %u\nembedder  %s (%u dims)\nitems     %llu\n"
           "removed   %llu (tombstones)\nindex     HNSW M=%u ef_construction=%u, "
           "%llu nodes, %u levels\non disk   %.1f MiB (map %.1f MiB)\n",
           ctx->dbpath, in.format, in.embedder_desc, in.dim,
           (unsigned long long)in.items, (unsigned long long)in.deleted,
           in.hnsw_m, in.hnsw_ef_construction, (unsigned long long)in.graph_nodes,
           in.graph_levels,
           in.disk_bytes / 1048576.0, in.map_bytes / 1048576.0);
    if (in.vectors != PV_VECTORS_F32 && in.coded == 0)
        printf("vectors   float32; %s copies once there are %u images%s\n",
               vector_kinds[in.vectors], PV_I8_TRAIN_MIN,
               in.compact_only ? ", then only those" : "");
    else if (in.vectors != PV_VECTORS_F32)
        printf("vectors   %s%s copies (%u bytes each) of %llu%s\n",
               in.float32_dropped ? "only " : "float32 and ", vector_kinds[in.vectors],
               in.code_bytes, (unsigned long long)in.coded,
               in.compact_only && !in.float32_dropped
                   ? "; float32 dropped once the int8 ranges are final (65536 images)"
                   : "");
    if (in.items) {
        const char *sep = "";
        printf("formats   ");
        for (int f = 1; f <= PV_NFORMATS; f++) { /* "unknown" (0) last */
            int k = f % PV_NFORMATS;
            if (in.formats[k]) {
                printf("%s%llu %s", sep, (unsigned long long)in.formats[k],
                       k ? pv_format_name(k) : "not recorded");
                sep = ", ";
            }
        }
        printf("\n");
    }
    if (in.ivf_nlist)
        printf("ivf       %u lists\n", in.ivf_nlist);
    if (in.cluster_k)
        printf("clusters  k=%u stored\n", in.cluster_k);
    printf("dups      default threshold %.2f (this embedder's)\n", in.dups_threshold);
    return CLI_OK;
}

/* ---- rm -------------------------------------------------------------------- */

static int cmd_rm(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("rm");
    int json, rc, status = CLI_OK;
    json_t *removed, *missing;

    if ((rc = parse_plain(c, argc, argv, &json, 1, "name the files to remove")) != -1)
        return rc;
    if ((rc = cli_open(ctx, c, CLI_OPEN_WRITE)) != CLI_OK)
        return rc;
    removed = json_array();
    missing = json_array();
    for (int i = optind; i < argc; i++) {
        rc = pv_remove(ctx->db, argv[i]);
        if (rc == 0) {
            json_array_append_new(removed, cli_name_json(argv[i]));
            if (!json) {
                fputs("removed ", stdout);
                cli_name_print(stdout, argv[i]);
                putchar('\n');
            }
        } else {
            struct stat sb;
            json_array_append_new(missing, cli_name_json(argv[i]));
            if (rc == PV_ENOTFOUND && stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
                cli_err(c->name, "%s is a folder: rm takes stored image paths; to remove "
                        "the images under it, `pixvec rm DB %s/*` (or `pixvec ls DB` to "
                        "see them)", argv[i], argv[i]);
            else
                cli_err(c->name, "%s", cli_db_msg(ctx, rc));
            status = CLI_ERR;
        }
    }
    if (json)
        cli_print_json(json_pack("{s:b, s:o, s:o}", "ok", status == CLI_OK,
                             "removed", removed, "failed", missing));
    else {
        json_decref(removed);
        json_decref(missing);
    }
    return status;
}

/* ---- vacuum ------------------------------------------------------------------ */

static int cmd_vacuum(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("vacuum");
    pv_info in;
    int json, rc;
    if ((rc = parse_plain(c, argc, argv, &json, 0, NULL)) != -1)
        return rc;
    if ((rc = cli_open(ctx, c, CLI_OPEN_WRITE)) != CLI_OK)
        return rc;
    if ((rc = pv_vacuum(ctx->db)) != 0 || (rc = pv_db_info(ctx->db, &in)) != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    if (json)
        return cli_print_json(json_pack("{s:b, s:I, s:I}", "ok", 1, "items",
                                    (json_int_t)in.items, "graph_nodes",
                                    (json_int_t)in.graph_nodes));
    printf("rebuilt the HNSW graph over %llu %s\n", (unsigned long long)in.items,
           cli_plural(in.items, "item", "items"));
    return CLI_OK;
}

/* ---- backup ------------------------------------------------------------------ */

static int cmd_backup(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("backup");
    pv_info before, after;
    pv_db *copy = NULL;
    char err[1024] = "";
    const char *dest;
    int json, rc;
    if ((rc = parse_plain(c, argc, argv, &json, 1, "missing the DEST folder")) != -1)
        return rc;
    if (optind + 1 != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind + 1]);
    dest = argv[optind];
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = pv_db_info(ctx->db, &before)) != 0 || (rc = pv_db_backup(ctx->db, dest)) != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    /* the copy's size, as `info` would say it */
    if ((rc = pv_db_open(dest, PV_OPEN_RDONLY, &copy, err, sizeof err)) != 0 ||
        (rc = pv_db_info(copy, &after)) != 0) {
        if (copy)
            pv_db_close(copy);
        return cli_fail(c->name, json, "%s: %s", dest, err[0] ? err : pv_strerror(rc));
    }
    pv_db_close(copy);
    if (json)
        return cli_print_json(json_pack("{s:b, s:s, s:I, s:I, s:I}", "ok", 1, "dest", dest,
                                        "items", (json_int_t)after.items, "bytes_before",
                                        (json_int_t)before.disk_bytes, "bytes_after",
                                        (json_int_t)after.disk_bytes));
    printf("copied %llu %s to %s: %.1f MiB (the database: %.1f MiB)\n",
           (unsigned long long)after.items, cli_plural(after.items, "item", "items"), dest,
           after.disk_bytes / 1048576.0, before.disk_bytes / 1048576.0);
    return CLI_OK;
}

/* ---- ls -------------------------------------------------------------------- */

static int cmd_ls(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("ls");
    pv_item *items = NULL;
    size_t n = 0;
    int json, rc;

    if ((rc = parse_plain(c, argc, argv, &json, 0, NULL)) != -1)
        return rc;
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = pv_items(ctx->db, &items, &n)) != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, cli_item_json(&items[i]));
        rc = cli_print_json(json_pack("{s:b, s:I, s:o}", "ok", 1, "count",
                                  (json_int_t)n, "items", arr));
    } else {
        for (size_t i = 0; i < n; i++) {
            printf("%6u  %5ux%-5u  ", items[i].id, items[i].width, items[i].height);
            cli_name_print(stdout, items[i].path);
            putchar('\n');
        }
        rc = CLI_OK;
    }
    pv_items_free(items, n);
    return rc;
}

/* ---- check ----------------------------------------------------------------- */

static int cmd_check(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"files", no_argument, NULL, 'f'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    const cli_cmd *c = cli_find("check");
    pv_info in;
    pv_item *items = NULL;
    size_t n = 0, gone = 0;
    int json = 0, files = 0, opt, rc;

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "h", lo)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'f': files = 1; break;
        case 'h': cli_print_help(stdout, c); return CLI_OK;
        default: cli_print_usage(stderr, c); return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = pv_db_verify(ctx->db)) != 0 || (rc = pv_db_info(ctx->db, &in)) != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    json_t *missing = json ? json_array() : NULL;
    if (files) { /* stored images whose files are gone from the disk */
        if ((rc = pv_items(ctx->db, &items, &n)) != 0) {
            json_decref(missing);
            return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
        }
        for (size_t i = 0; i < n; i++) {
            struct stat sb;
            if (stat(items[i].path, &sb) == 0 || errno != ENOENT)
                continue;
            gone++;
            if (json)
                json_array_append_new(missing, cli_name_json(items[i].path));
            else {
                fputs("gone: ", stdout);
                cli_name_print(stdout, items[i].path);
                putchar('\n');
            }
        }
        pv_items_free(items, n);
    }
    if (json)
        cli_print_json(json_pack("{s:b, s:I, s:I, s:o*}", "ok", gone == 0, "items",
                                 (json_int_t)in.items, "deleted", (json_int_t)in.deleted,
                                 "gone", files ? missing : NULL));
    else
        printf("ok: %llu %s, %llu removed; records, paths, hashes, vectors and graph "
               "agree\n", (unsigned long long)in.items, cli_plural(in.items, "item", "items"),
               (unsigned long long)in.deleted);
    if (json && !files)
        json_decref(missing);
    if (gone) {
        cli_err(c->name, "%zu stored %s whose %s gone (`pixvec add` of %s; `pixvec rm` "
                "one)", gone, cli_plural(gone, "image", "images"),
                cli_plural(gone, "file is", "files are"),
                cli_plural(gone, "its folder forgets it", "their folders forget them"));
        return CLI_ERR;
    }
    return CLI_OK;
}

/* ---- shell, help, quit --------------------------------------------------- */

static int cmd_shell(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("shell");
    int bail = 0, json, rc, n = 1;
    /* --bail is the shell's own option: taken out, the rest (--help) is
     * parse_plain's */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bail") == 0)
            bail = 1;
        else
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    if ((rc = parse_plain(c, n, argv, &json, 0, NULL)) != -1)
        return rc;
    /* Read-only until a command writes (cli_open reopens it then), so a
     * user who may only read the database can use the shell. */
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    return cli_shell(ctx, bail);
}

/* Whether c is offered where the run is (the shell or the command line). */
static int offered(const cli_ctx *ctx, const cli_cmd *c)
{
    return ctx->in_shell ? !(c->flags & CMD_NO_SHELL) : !(c->flags & CMD_SHELL_ONLY);
}

static int cmd_help(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"man", no_argument, NULL, 'm'},
                                       {0}};
    const cli_cmd *self = cli_find("help"), *c;
    int opt;
    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "h", lo)) != -1) {
        if (opt == 'h') {
            cli_print_help(stdout, self);
            return CLI_OK;
        }
        if (opt == 'm') { /* the manual page, for the build (CMakeLists.txt) */
            cli_print_man(stdout);
            return CLI_OK;
        }
        if (opt != 'j') {
            cli_print_usage(stderr, self);
            return CLI_USAGE;
        }
    }
    if (optind < argc - 1)
        return cli_usage_err(self, "give one command, not also '%s'", argv[optind + 1]);
    if (optind == argc - 1) {
        c = cli_find(argv[optind]);
        if (!c || !offered(ctx, c)) {
            if (c) /* quit outside the shell, init or shell inside it */
                cli_err(self->name, "'%s' is %s", c->name,
                        ctx->in_shell ? "not a shell command (run it as `pixvec ...`)"
                                      : "a shell command (inside `pixvec shell DB`)");
            else
                cli_unknown_command(self->name, argv[optind], ctx->in_shell);
            cli_set_code("usage");
            return CLI_USAGE;
        }
        cli_print_help(stdout, c);
        return CLI_OK;
    }
    if (cli_run_json()) {
        json_t *arr = json_array();
        for (c = cli_commands; c->name; c++)
            if (offered(ctx, c))
                json_array_append_new(arr, json_pack("{s:s, s:s}", "name", c->name, "usage",
                                                     c->usage));
        return cli_print_json(json_pack("{s:o}", "commands", arr));
    }
    printf("commands (help COMMAND for options):\n");
    for (c = cli_commands; c->name; c++) {
        const char *u = c->usage;
        if (!offered(ctx, c))
            continue;
        if (ctx->in_shell && strncmp(u, "DB", 2) == 0) /* the shell's DB is open */
            u += u[2] == ' ' ? 3 : 2;
        printf("  %-9s %s\n", c->name, u);
    }
    return CLI_OK;
}

static int cmd_quit(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    (void)argc;
    (void)argv;
    return CLI_OK; /* the shell loop checks for quit itself */
}

/* ---- cluster and ivf ------------------------------------------------------- */

/* The k-means options shared by `cluster` and `ivf train`. */
#define KMEANS_LONGOPTS                                            \
    {"iters", required_argument, NULL, 'i'},                       \
        {"seed", required_argument, NULL, 'S'},                    \
        {"sample", required_argument, NULL, 'P'}

/* Parse one of KMEANS_LONGOPTS into o; 1 if it was one, -1 if bad. */
static int kmeans_opt(const cli_cmd *c, int opt, const char *arg,
                      pv_cluster_opts *o)
{
    long v;
    switch (opt) {
    case 'i':
        if (cli_parse_int(arg, 1, 100000, &v) != 0)
            return cli_usage_err(c, "--iters takes 1..100000, not '%s'", arg), -1;
        o->iters = (int)v;
        return 1;
    case 'S':
        if (cli_parse_int(arg, 1, LONG_MAX, &v) != 0)
            return cli_usage_err(c, "--seed takes a positive integer, not '%s'", arg), -1;
        o->seed = (uint64_t)v;
        return 1;
    case 'P':
        if (strcmp(arg, "all") == 0) {
            o->sample = -1;
            return 1;
        }
        if (cli_parse_int(arg, 1, 1 << 20, &v) != 0)
            return cli_usage_err(c, "--sample takes 1..1048576 or 'all', not '%s'", arg), -1;
        o->sample = (int)v;
        return 1;
    default:
        return 0;
    }
}

typedef struct label_count {
    size_t label, n;
} label_count;

static int count_desc(const void *a, const void *b)
{
    const label_count *x = a, *y = b;
    return x->n != y->n ? (x->n < y->n ? 1 : -1) : (x->label > y->label) - (x->label < y->label);
}

/* The report of a clustering: sizes, nearest members, label mix, purity. */
static int cluster_report(const char *cmd, int json, const pv_clustering *cl,
                          long show, const pv_cluster_stats *st)
{
    cli_labels L = {0};
    size_t **cnt = calloc((size_t)cl->k, sizeof *cnt), correct = 0;
    label_count *mix = NULL;
    int rc = CLI_OK, with_labels;
    if (!cnt)
        return cli_fail(cmd, json, "%s", "out of memory");
    /* Labels from folder names; used when they split the images at all. */
    for (int j = 0; j < cl->k; j++)
        for (size_t i = 0; i < cl->clusters[j].n; i++) {
            size_t len;
            const char *s = cli_folder_label(cl->clusters[j].members[i].path, &len);
            if (cli_label_id(&L, s, len) == SIZE_MAX) {
                rc = cli_fail(cmd, json, "%s", "out of memory");
                goto done;
            }
        }
    with_labels = L.n >= 2 && L.n < cl->items;
    if (with_labels) {
        mix = calloc(L.n, sizeof *mix);
        if (!mix) {
            rc = cli_fail(cmd, json, "%s", "out of memory");
            goto done;
        }
        for (int j = 0; j < cl->k; j++) {
            if (!(cnt[j] = calloc(L.n, sizeof **cnt))) {
                rc = cli_fail(cmd, json, "%s", "out of memory");
                goto done;
            }
            size_t best = 0;
            for (size_t i = 0; i < cl->clusters[j].n; i++) {
                size_t len;
                const char *s = cli_folder_label(cl->clusters[j].members[i].path, &len);
                cnt[j][cli_label_id(&L, s, len)]++;
            }
            for (size_t l = 0; l < L.n; l++)
                if (cnt[j][l] > best)
                    best = cnt[j][l];
            correct += best;
        }
    }
    double purity = with_labels && cl->items ? (double)correct / (double)cl->items : 0;
    json_t *arr = json ? json_array() : NULL;
    if (!json) {
        if (st)
            printf("trained k-means: k=%d on %llu of %llu %s, %d %s, "
                   "inertia %.4g%s\n",
                   cl->k, (unsigned long long)st->trained, (unsigned long long)st->items,
                   cli_plural(st->items, "item", "items"), st->iters,
                   cli_plural((unsigned)st->iters, "iteration", "iterations"), st->inertia,
                   st->reseeded ? " (empty clusters re-seeded)" : "");
        printf("%d %s over %zu %s%s, inertia %.4g", cl->k,
               cli_plural((unsigned)cl->k, "cluster", "clusters"), cl->items,
               cli_plural(cl->items, "image", "images"),
               cl->standardized ? " (standardized features)" : "", cl->inertia);
        if (with_labels)
            printf(", purity %.4f over %zu folder labels", purity, L.n);
        printf("\n");
    }
    for (int j = 0; j < cl->k; j++) {
        const pv_cluster *c = &cl->clusters[j];
        size_t nl = 0;
        if (with_labels) {
            for (size_t l = 0; l < L.n; l++)
                if (cnt[j][l])
                    mix[nl++] = (label_count){l, cnt[j][l]};
            qsort(mix, nl, sizeof *mix, count_desc);
        }
        if (json) {
            json_t *near = json_array(), *lab = json_array();
            for (size_t i = 0; i < c->n && (long)i < show; i++)
                json_array_append_new(near, json_pack("{s:I, s:o, s:f}", "id",
                                                      (json_int_t)c->members[i].id, "path",
                                                      cli_name_json(c->members[i].path), "dist2",
                                                      (double)c->members[i].dist2));
            for (size_t l = 0; l < nl; l++)
                json_array_append_new(lab, json_pack("{s:o, s:I}", "label",
                                                     cli_name_json(L.name[mix[l].label]),
                                                     "count", (json_int_t)mix[l].n));
            json_t *o = json_pack("{s:i, s:I, s:o}", "cluster", j, "size", (json_int_t)c->n,
                                  "nearest", near);
            if (with_labels)
                json_object_set_new(o, "labels", lab);
            else
                json_decref(lab);
            json_array_append_new(arr, o);
            continue;
        }
        printf("\ncluster %d: %zu %s", j, c->n, cli_plural(c->n, "image", "images"));
        if (nl) {
            printf(" |");
            for (size_t l = 0; l < nl && l < 3; l++) {
                putchar(' ');
                cli_name_print(stdout, L.name[mix[l].label]);
                printf(" %.0f%%", 100.0 * mix[l].n / c->n);
            }
            if (nl > 3)
                printf(" (+%zu %s)", nl - 3, cli_plural(nl - 3, "label", "labels"));
        }
        printf("\n");
        for (size_t i = 0; i < c->n && (long)i < show; i++) {
            printf("    %.4f  ", c->members[i].dist2);
            cli_name_print(stdout, c->members[i].path);
            putchar('\n');
        }
    }
    if (json) {
        json_t *doc = json_pack("{s:b, s:i, s:I, s:f, s:b, s:o}", "ok", 1, "k", cl->k,
                                "items", (json_int_t)cl->items, "inertia", cl->inertia,
                                "standardized", cl->standardized, "clusters", arr);
        json_object_set_new(doc, "purity", with_labels ? json_real(purity) : json_null());
        if (st)
            json_object_set_new(doc, "trained",
                                json_pack("{s:I, s:I, s:i, s:f, s:i}", "items",
                                          (json_int_t)st->items, "sample",
                                          (json_int_t)st->trained, "iterations", st->iters,
                                          "inertia", st->inertia, "reseeded", st->reseeded));
        rc = cli_print_json(doc);
    }
done:
    for (int j = 0; j < cl->k; j++)
        free(cnt[j]);
    free(cnt);
    free(mix);
    cli_labels_free(&L);
    return rc;
}

/* k-means' k (cluster -k, ivf --nlist) above the number of images: say so
 * with the option's name and the largest that works. */
static int more_than_images(cli_ctx *ctx, const cli_cmd *c, int json, const char *opt, long k)
{
    pv_info in;
    int rc = pv_db_info(ctx->db, &in);
    if (rc != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    if ((unsigned long long)k <= in.items)
        return CLI_OK;
    if (in.items == 0)
        return cli_fail(c->name, json, "the database holds no images: `pixvec add` first");
    return cli_fail(c->name, json, "%s %ld is more than the %llu %s; use at most %llu", opt, k,
                    (unsigned long long)in.items, cli_plural(in.items, "image", "images"),
                    (unsigned long long)in.items);
}

static int cmd_cluster(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"k", required_argument, NULL, 'k'},
                                       {"show", required_argument, NULL, 's'},
                                       {"of", required_argument, NULL, 'o'},
                                       {"standardize", no_argument, NULL, 'z'},
                                       {"html", required_argument, NULL, 'H'},
                                       KMEANS_LONGOPTS,
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    const cli_cmd *c = cli_find("cluster");
    const char *html = NULL;
    int show_set = 0;
    pv_cluster_opts o = {0};
    pv_cluster_stats st;
    pv_clustering *cl = NULL;
    const char *of = NULL;
    long k = 0, show = 5;
    int json = 0, opt, rc;

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "k:s:h", lo)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'z': o.standardize = 1; break;
        case 'o': of = optarg; break;
        case 'H': html = optarg; break;
        case 'h': cli_print_help(stdout, c); return CLI_OK;
        case 'k':
            if (cli_parse_int(optarg, 1, 1 << 20, &k) != 0)
                return cli_usage_err(c, "-k takes 1..1048576, not '%s'", optarg);
            break;
        case 's':
            if (cli_parse_int(optarg, 0, 1000000, &show) != 0)
                return cli_usage_err(c, "--show takes 0..1000000, not '%s'", optarg);
            show_set = 1;
            break;
        default:
            if ((rc = kmeans_opt(c, opt, optarg, &o)) == 1)
                break;
            if (rc == 0)
                cli_print_usage(stderr, c);
            return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    if (of && html)
        return cli_usage_err(c, "--html shows every cluster; it does not go with --of %s", of);
    if (of && show_set)
        return cli_usage_err(c, "--show lists every cluster's images; it does not go with "
                                "--of %s", of);
    if (!k && (o.iters || o.seed || o.sample || o.standardize))
        return cli_usage_err(c, "--iters, --seed, --sample and --standardize apply to "
                                "training, with -k%s", "");
    if ((rc = cli_open(ctx, c, k > 0 ? CLI_OPEN_WRITE : CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if (k > 0 && (rc = more_than_images(ctx, c, json, "-k", k)) != CLI_OK)
        return rc;
    if (k > 0) {
        o.k = (int)k;
        if ((rc = pv_cluster_train(ctx->db, &o, &st)) != 0)
            return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    }
    if (of) {
        int which;
        float d2;
        if ((rc = pv_cluster_of(ctx->db, of, &which, &d2)) != 0)
            return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
        if (json)
            return cli_print_json(json_pack("{s:b, s:o, s:i, s:f}", "ok", 1, "image",
                                            cli_name_json(of), "cluster", which, "dist2",
                                            (double)d2));
        cli_name_print(stdout, of);
        printf(": cluster %d (squared distance to its centre %.4f)\n", which, d2);
        return CLI_OK;
    }
    if ((rc = pv_cluster_get(ctx->db, &cl)) != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    rc = cluster_report(c->name, json, cl, show, k > 0 ? &st : NULL);
    if (html) {
        char err[PATH_MAX + 256] = "", title[PATH_MAX + 64];
        char *db = cli_name_text(ctx->dbpath ? ctx->dbpath : "");
        snprintf(title, sizeof title, "pixvec clusters: %s", db ? db : "");
        free(db);
        if (cli_cluster_html(html, cl, title, show_set ? (size_t)show : CLUSTER_HTML_SHOW,
                             err, sizeof err) != 0) {
            cli_err(c->name, "--html: %s", err);
            rc = CLI_ERR;
        } else if (err[0]) {
            cli_err(c->name, "--html: %s", err); /* thumbnails that failed: a warning */
        }
    }
    pv_clustering_free(cl);
    return rc;
}

static int cmd_ivf(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {{"nlist", required_argument, NULL, 'n'},
                                       KMEANS_LONGOPTS,
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    const cli_cmd *c = cli_find("ivf");
    pv_cluster_opts o = {0};
    pv_cluster_stats st;
    long nlist = 0;
    int json = 0, opt, rc;

    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "n:h", lo)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'h': cli_print_help(stdout, c); return CLI_OK;
        case 'n':
            if (cli_parse_int(optarg, 1, 1 << 20, &nlist) != 0)
                return cli_usage_err(c, "--nlist takes 1..1048576, not '%s'", optarg);
            break;
        default:
            if ((rc = kmeans_opt(c, opt, optarg, &o)) == 1)
                break;
            if (rc == 0)
                cli_print_usage(stderr, c);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "train") != 0)
        return cli_usage_err(c, "%s", "the only sub-command is 'train'");
    if (nlist == 0)
        return cli_usage_err(c, "%s", "--nlist N is required");
    o.k = (int)nlist;
    if ((rc = cli_open(ctx, c, CLI_OPEN_WRITE)) != CLI_OK)
        return rc;
    if ((rc = more_than_images(ctx, c, json, "--nlist", nlist)) != CLI_OK)
        return rc;
    double t0 = now_s();
    if ((rc = pv_ivf_train(ctx->db, &o, &st)) != 0)
        return cli_fail(c->name, json, "%s", cli_db_msg(ctx, rc));
    double el = now_s() - t0;
    if (json)
        return cli_print_json(json_pack("{s:b, s:i, s:I, s:I, s:i, s:f, s:f}", "ok", 1, "nlist",
                                    (int)nlist, "items", (json_int_t)st.items, "sample",
                                    (json_int_t)st.trained, "iterations", st.iters,
                                    "inertia", st.inertia, "seconds", el));
    printf("IVF: %ld %s over %llu %s (k-means on %llu, %d %s, %.2f s); "
           "query with --index ivf\n",
           nlist, cli_plural((unsigned long long)nlist, "list", "lists"),
           (unsigned long long)st.items, cli_plural(st.items, "item", "items"),
           (unsigned long long)st.trained, st.iters,
           cli_plural((unsigned)st.iters, "iteration", "iterations"), el);
    return CLI_OK;
}

/* ---- the table -------------------------------------------------------------- */

const cli_cmd cli_commands[] = {
    {"init", cmd_init,
     "DB [--embedder pixels|cnn|photo|clip|dinov2|vitmae] [--model FILE|DIR] [--size N] "
     "[--rgb] [--no-mirror] [--pool cls|sum] [--M M] [--ef-construction N] "
     "[--vectors f32|f16|i8|f16-only|i8-only] [--json]",
     "Create a database (a directory) for one embedder and HNSW graph, fixed\n"
     "for its life.\n"
     "  --embedder NAME  pixels (default): the brightness of a downscaled image;\n"
     "                   cnn: MobileNetV2's 1280 pooled features (photos);\n"
     "                   photo: near-duplicate photographs (re-encoded, resized,\n"
     "                   cropped, slightly rotated, retouched, grey, mirrored):\n"
     "                   candidates by cosine, each pair then compared aligned;\n"
     "                   clip: OpenAI's CLIP (images, and text queries with\n"
     "                   `search`); dinov2: DINOv2's class token (retrieval,\n"
     "                   copy detection); vitmae: ViT-MAE's encoder.\n"
     "                   These three read a Hugging Face checkpoint directory\n"
     "                   given with --model (README.md: which files)\n"
     "  --no-mirror      photo: a mirror image is not a near-duplicate\n"
     "  --pool cls|sum   vitmae: the class token (default) or the sum over all\n"
     "                   tokens of the last hidden state\n"
     "  --model FILE|DIR cnn: weights (safetensors, MobileNetV2's Keras names;\n"
     "                   default: the file scripts/setup.sh installs);\n"
     "                   clip, dinov2, vitmae: the checkpoint directory\n"
     "  --size N         side of the square image (default 28: 784 dims)\n"
     "  --rgb            keep colour: 3*N*N dims (default grey)\n"
     "  --M M            HNSW links per node, 2*M on level 0 (default 16)\n"
     "  --ef-construction N  HNSW candidates while inserting (default 200)\n"
     "  --vectors KIND   f32 (default): float32 only; f16 or i8: also keep a\n"
     "                   half-precision or one-byte-per-dimension copy that\n"
     "                   graph searches score with, re-scoring their candidates\n"
     "                   in float32 (i8 learns its ranges from the first 1024\n"
     "                   images, again at every doubling up to 65536);\n"
     "                   f16-only, i8-only: keep only that copy once it exists\n"
     "                   (i8: once its ranges are final, at 65536 images): 2x\n"
     "                   or 4x smaller vectors, scores those of the copies\n"
     "  --json           print the result as JSON",
     CMD_DB | CMD_WRITE | CMD_NO_SHELL},
    {"add", cmd_add,
     "DB PATH... [--threads N] [--commit-every S] [--quiet] [--embedder E] [--size N] [--rgb] "
     "[--no-mirror] [--json]",
     "Add images and folders (recursively: .jpg .jpeg .jpe .png .webp .heic\n"
     ".heif .hif .avif .tif .tiff .gif .bmp .dib files, any case; hidden\n"
     "folders skipped; a file named directly is always tried). Decoding uses\n"
     "the file's bytes, not its name. Re-running skips unchanged files (path,\n"
     "size, mtime); a file whose content is stored under a path that no longer\n"
     "exists is taken as moved and keeps its vector; stored images under a\n"
     "folder given whose files are gone are forgotten. Bad files are reported\n"
     "with their reason, skipped and counted; the good ones are committed.\n"
     "Exit status 1 when any file failed (the rest is committed all the same).\n"
     "Ctrl-C (or SIGTERM) commits the images already embedded, says how many\n"
     "were kept and exits 130 (143); another writer at work makes it wait.\n"
     "  --threads N      decoding threads (default: all cores)\n"
     "  --commit-every S commit at least every S seconds (default 2) and every\n"
     "                   1024 images: what a crash or Ctrl-C can cost\n"
     "  --quiet          no progress bar and no summary unless files failed\n"
     "  --embedder/--size/--rgb/--no-mirror  refuse to run unless the database\n"
     "                   uses these\n"
     "  --json           print the summary as JSON",
     CMD_DB | CMD_WRITE},
    {"query", cmd_query,
     "DB IMAGE|--vector FILE.npy [--row N] [-k N] [-e EF] [--index hnsw|ivf|exact | --exact] "
     "[-p NPROBE] [--no-rerank] [--embedder E] [--size N] [--rgb] [--no-mirror] [--json]",
     "The k stored images most like IMAGE (or like a vector), by cosine similarity, found with "
     "the\n"
     "HNSW graph (or the IVF lists, or by scanning every vector). With the photo\n"
     "embedder the 64 nearest by cosine are compared aligned and ranked by\n"
     "that score.\n"
     "Fewer than k hits come back only when the database holds fewer images or\n"
     "the IVF lists probed hold fewer; a line after the hits says which (when\n"
     "the graph reaches fewer than k, every vector is scanned instead). Paths\n"
     "under the current folder are shown relative to it (JSON: as stored).\n"
     "  -k, --k N        how many (default 10)\n"
     "  -e, --ef EF      HNSW candidate list: larger is slower and more exact\n"
     "                   (default 64, at least k); hnsw only\n"
     "  --index I        hnsw (default); ivf: the lists of `ivf train`;\n"
     "                   exact: scan every vector\n"
     "  -p, --nprobe P   IVF lists scanned (default 8); --index ivf only\n"
     "  --exact          the same as --index exact\n"
     "  --vector F.npy   query by a vector instead of an image: a .npy file of\n"
     "                   float32 (or float64), 1-D, or 2-D with --row; it is\n"
     "                   normalized. The only query of a database made by\n"
     "                   `import` (its vectors came from elsewhere)\n"
     "  --row N          the row of a 2-D --vector file (from 0)\n"
     "  --no-rerank      a database with f16 or i8 vectors (init --vectors): keep\n"
     "                   the scores of those copies instead of scoring the EF\n"
     "                   best candidates again in float32 (faster, less exact)\n"
     "  --embedder/--size/--rgb/--no-mirror  refuse to run unless the database\n"
     "                   uses these\n"
     "  --json           {query, k, index, asked, returned, short_reason (null\n"
     "                   unless returned < asked), hits: [{rank, id, path, score}]}",
     CMD_DB},
    {"search", cmd_search,
     "DB TEXT [-k N] [-e EF] [--index hnsw|ivf|exact | --exact] [-p NPROBE] [--no-rerank] "
     "[--embedder E] [--size N] [--rgb] [--no-mirror] [--json]",
     "The k stored images most like a text (\"a dog on a beach\"), by cosine\n"
     "similarity of CLIP's text and image vectors: a clip database only. Long\n"
     "texts are cut to CLIP's 77 tokens. Options as for query.\n"
     "  --json           {text, k, index, asked, returned, short_reason, hits:\n"
     "                   [{rank, id, path, score}]}",
     CMD_DB},
    {"dups", cmd_dups,
     "DB [-t T | --fraction F] [--exact | --approx [--neighbours K] [--ef EF]] "
     "[--across A B] [--keep RULE] "
     "[--prefer DIR] [--keep-list F] [--drop-list F] [--json-out F] [--html F] "
     "[--histogram] [--histogram-png F] [--move-to DIR [--undo-list F]] "
     "[--exit-code] [--json]",
     "Groups of exact (same bytes) and near-duplicate images. Candidate pairs\n"
     "(cosine >= T) come from an exact all-pairs scan up to 10,000 images and\n"
     "from the HNSW graph above (each pair scored exactly). With the photo\n"
     "embedder the cosine (>= 0.4) only proposes candidates, from 1,000 images\n"
     "on the graph, and each pair's aligned comparison must reach T. Groups\n"
     "form around a representative, the image kept: every member scores >= T\n"
     "with it, so groups never chain unrelated images. Counts are of images.\n"
     "Nothing is moved unless --move-to is given.\n"
     "  -t, --threshold T  cosine similarity, or photo's pair score, in (0, 1]\n"
     "                   (default: the embedder's, see info)\n"
     "  --fraction F     pick the threshold at which a fraction F of the images\n"
     "                   has a near-duplicate (printed)\n"
     "  --exact          force the all-pairs scan; --approx: force the graph\n"
     "  --neighbours K   graph neighbours asked per image (default 32, doubled\n"
     "                   while all are above T); --ef EF: its search list;\n"
     "                   both for the graph scan, not --exact\n"
     "  --across A B     only pairs with one image under folder A (train) and\n"
     "                   one under B (test): B's images to drop are the leaks\n"
     "  --keep RULE      largest (default: most pixels, then biggest file),\n"
     "                   oldest or newest (mtime)\n"
     "  --prefer DIR     images under DIR are kept first and never dropped (an\n"
     "                   error when no stored image lies under DIR)\n"
     "  --keep-list F    write the kept images of the groups, one per line (a\n"
     "                   name that is not plain UTF-8 quoted: \"caf\\xe9.jpg\")\n"
     "  --drop-list F    write the images to drop, one per line (the same)\n"
     "  --json-out F     write the groups as JSON to F\n"
     "  --html F         a report page with thumbnails (in F's _files folder)\n"
     "  --histogram      print each image's nearest-neighbour similarity as a\n"
     "                   histogram with the threshold marked (and the summary,\n"
     "                   not the groups)\n"
     "  --histogram-png F  the same histogram as a PNG\n"
     "  --move-to DIR    move the images to drop into DIR, keeping their paths\n"
     "                   relative to the collection's common folder, never\n"
     "                   overwriting; removes them from the database; writes an\n"
     "                   undo list (`pixvec undo-move DB LIST` puts them back)\n"
     "  --undo-list F    where (default DIR/pixvec-undo-TIME.tsv)\n"
     "  --exit-code      exit 3 when any group was found (0 when none)\n"
     "  --json           print the groups as JSON; with --histogram (or --fraction)\n"
     "                   also histogram: {threshold, images, above_threshold,\n"
     "                   no_neighbour, bins: [{from, to, count}]}",
     CMD_DB | CMD_WRITE},
    {"undo-move", cmd_undo_move, "DB UNDO_LIST [--json]",
     "Put back the files a `dups --move-to` moved (last moved first, never\n"
     "overwriting a file that is there now), and add them to the database again.\n"
     "Files back in place already (a second undo) are counted apart.\n"
     "  --json           {restored, already_back, failed, added}",
     CMD_DB | CMD_WRITE},
    {"cluster", cmd_cluster,
     "DB [-k K] [--show N] [--of IMAGE] [--standardize] [--iters N] [--seed S] "
     "[--sample N|all] [--html FILE] [--json]",
     "Group the images into k clusters (k-means) and show each cluster's size,\n"
     "the images nearest its centre and, when images sit in class-named\n"
     "folders (train/cat/x.jpg), its label mix and the overall purity. With\n"
     "-k the clustering is computed and stored (replacing the stored one);\n"
     "without, the stored one is shown, items added since included.\n"
     "  -k, --k K        clusters: train and store\n"
     "  -s, --show N     images shown per cluster, nearest first (default 5)\n"
     "  --of IMAGE       which stored cluster IMAGE falls in\n"
     "  --standardize    cluster standardized features (mean 0, variance 1)\n"
     "  --iters N        Lloyd iterations at most (default 20)\n"
     "  --seed S         sampling and k-means++ seed (default 1234)\n"
     "  --sample N|all   training points per cluster at most (default 256)\n"
     "  --html FILE      also write a page of the clusters, largest first: size,\n"
     "                   label mix and the --show images nearest the centre\n"
     "                   (default 12) as thumbnails in FILE's _files folder\n"
     "  --json           {k, items, inertia, purity, clusters: [{cluster, size,\n"
     "                   nearest, labels}]}",
     CMD_DB | CMD_WRITE},
    {"map", cmd_map,
     "DB [--method umap|tsne] [--dims 2|3] [--color folder|cluster|none] [--png F] [--html F] "
     "[--csv F] [--recompute] [--seed S] [--threads N] [--n-neighbors N] [--min-dist D] "
     "[--epochs N] [--perplexity P] [--iters N] [--json]",
     "A map of the collection: every image placed in 2-D (or 3-D) so that similar\n"
     "images lie close, by UMAP (default) or t-SNE, from each image's nearest\n"
     "neighbours. The layout is stored in the database: a later `map` redraws it\n"
     "without recomputing, and images added since are placed into it (UMAP's\n"
     "transform; for t-SNE the same optimisation with the stored points fixed)\n"
     "until --recompute. Points are coloured by folder name (the ImageFolder\n"
     "convention), by the stored k-means cluster (`cluster DB -k K` first), or not.\n"
     "  -m, --method M   umap (default) or tsne\n"
     "  --dims 2|3       dimensions of the map (default 2)\n"
     "  --color C        folder (default), cluster or none\n"
     "  --png F          draw it as a PNG (title, legend, antialiased points)\n"
     "  --html F         an interactive page (zoom, pan, hover shows the image,\n"
     "                   click opens it) with thumbnails in a folder beside it\n"
     "  --csv F          id,path,x,y[,z],label,placed per image\n"
     "  --recompute      compute a new layout even if one is stored\n"
     "  --seed S         random seed (default 42): the same seed, the same map\n"
     "  --threads N      threads (default: every core)\n"
     "  --n-neighbors N  UMAP: neighbours, counting the image itself (default 15)\n"
     "  --min-dist D     UMAP: minimum distance between points (default 0.1)\n"
     "  --epochs N       UMAP: epochs (default 500 up to 10,000 images, else 200)\n"
     "  --perplexity P   t-SNE: perplexity (default 30)\n"
     "  --iters N        t-SNE: iterations (default 1000, the first 250 exaggerated)\n"
     "  --json           {method, dims, n, fitted, placed, computed, seconds, params,\n"
     "                   points: [{id, path, x, y[, z], label, placed}]}",
     CMD_DB | CMD_WRITE},
    {"quality", cmd_quality,
     "DB [--k K] [--top N] [--vote V] [--tiny PX] [--blank-std S] [--dark M] [--bright M] "
     "[--no-pixels] [--threads N] [--html F] [--json]",
     "The report to read before training: outliers (the images least like their\n"
     "nearest other image), label-noise suspects (when images sit in class folders:\n"
     "an image whose K nearest neighbours mostly sit in another folder, with the\n"
     "label they suggest), blank, very dark, very bright, tiny and unreadable\n"
     "images, and the count of byte-identical copies. Every file is decoded again\n"
     "for its grey statistics (--no-pixels skips that). Changes nothing.\n"
     "  -k, --k K        neighbours that vote on a label (default 10)\n"
     "  --top N          images listed per section, and outliers found (default 20)\n"
     "  --vote V         share of the similarity-weighted vote another folder needs\n"
     "                   (default 0.6, a clear majority)\n"
     "  --tiny PX        tiny: shorter side below PX (default 32) and below half\n"
     "                   the collection's median\n"
     "  --blank-std S    uniform: grey standard deviation below S (default 0.02)\n"
     "  --dark M         very dark: mean grey below M (default 0.08)\n"
     "  --bright M       very bright: mean grey above M (default 0.92)\n"
     "  --no-pixels      do not decode the files (no blank/dark/bright/unreadable)\n"
     "  --threads N      threads (default: every core)\n"
     "  --html F         a page of thumbnails per section (thumbnails in a folder\n"
     "                   beside it)\n"
     "  --json           {items, labels, decoded, k, vote, nn_median, nn_p01,\n"
     "                   tiny_below, exact_copies, seconds, blank_std, dark_mean,\n"
     "                   bright_mean, outliers, suspects,\n"
     "                   blank, dark, bright, tiny, unreadable: [{id, path, score,\n"
     "                   nn, width, height, label, mean, std, suggested, vote,\n"
     "                   error, reason}]}; every list whole but outliers (--top)",
     CMD_DB},
    {"ivf", cmd_ivf, "DB train --nlist N [--iters N] [--seed S] [--sample N|all] [--json]",
     "Train IVF lists: k-means with N centroids, every image listed under its\n"
     "nearest. Replaces any lists at once (readers see the old or the new);\n"
     "images added later are listed as they arrive. Search them with\n"
     "`query --index ivf --nprobe P`. Written `pixvec ivf train DB ...`.\n"
     "  --nlist N        lists (about sqrt of the number of images)\n"
     "  --iters/--seed/--sample  as for cluster\n"
     "  --json           print the result as JSON",
     CMD_DB | CMD_WRITE | CMD_SUBCMD},
    {"export", cmd_export, "DB --out PREFIX [--format npy|fvecs|jsonl] [--force] [--json]",
     "Write the stored vectors (live images, in id order, one snapshot) for\n"
     "FAISS, Milvus, Qdrant or numpy. The vectors are float32 as stored; a\n"
     "database made with --vectors f16-only or i8-only that dropped its float32\n"
     "gives its compact copies decoded (dequantized), and says so.\n"
     "  --out PREFIX     where: PREFIX plus each format's extensions\n"
     "  --format F       npy (default): PREFIX.npy (float32 '<f4', shape (N, D)),\n"
     "                   PREFIX.ids.npy ('<u4', the item ids) and\n"
     "                   PREFIX.paths.txt (one path a line; a backslash in a path\n"
     "                   is written \\\\, a newline \\n, a carriage return \\r);\n"
     "                   fvecs: PREFIX.fvecs (per vector an int32 D then D\n"
     "                   float32, FAISS/TEXMEX) and the same ids and paths files;\n"
     "                   jsonl: PREFIX.jsonl, one object a line {id, path, size,\n"
     "                   mtime_ns (nanoseconds), hash (hex), width, height,\n"
     "                   vector: [floats, 9 digits: float32 exactly]}\n"
     "  --force          replace output files that exist (else refused)\n"
     "  --json           {ok, format, items, dim, dequantized, files}\n"
     "Files appear whole or not at all (written beside, then renamed).",
     CMD_DB},
    {"import", cmd_import, "DB VECTORS.npy --paths PATHS.txt [--normalize] [--json]",
     "Make items of vectors computed elsewhere: row i of VECTORS.npy (float32,\n"
     "or float64 converted; 2-D, C order) for the image on line i of PATHS.txt\n"
     "(written as export writes it: \\\\, \\n and \\r escaped). DB is created when\n"
     "it does not exist, for `external` vectors of that dimension: such a\n"
     "database cannot embed images (add and query IMAGE refuse), and is queried\n"
     "with `query --vector`; dups, cluster and map work on its vectors. An\n"
     "existing database must be one that import made, of the same dimension.\n"
     "Every row must be finite and of unit length (within 1e-3); errors name\n"
     "the row, counting from 0 (numpy's numbering). Relative paths are taken\n"
     "from the current folder; a path stored already is refused (rm it first).\n"
     "Size, mtime, content hash, width and height come from each file that\n"
     "exists (else 0). One transaction: all rows or none.\n"
     "  --paths F        the paths file (required; as many lines as rows)\n"
     "  --normalize      scale each row to unit length (a zero row is refused)\n"
     "  --json           {ok, database, imported, dim, created}",
     CMD_DB | CMD_WRITE},
    {"info", cmd_info, "DB [--json]", "Counts, embedder, dimension and size on disk.", CMD_DB},
    {"rm", cmd_rm, "DB PATH... [--json]",
     "Remove stored images from the database (never the files themselves).\n"
     "PATH names one stored image; a folder is refused with a hint (its images:\n"
     "`pixvec rm DB folder/*`).",
     CMD_DB | CMD_WRITE},
    {"check", cmd_check, "DB [--files] [--json]",
     "Verify the database's invariants (records, paths, hashes, vectors, graph).\n"
     "  --files   also list the stored images whose files are gone from the disk\n"
     "            (exit status 1 when there are any)",
     CMD_DB},
    {"vacuum", cmd_vacuum, "DB [--json]", "Rebuild the HNSW graph without the removed items.",
     CMD_DB | CMD_WRITE},
    {"backup", cmd_backup, "DB DEST [--json]",
     "Write a compacted copy of the database to the new folder DEST: one\n"
     "consistent snapshot (others may keep adding meanwhile), without the free\n"
     "pages the file keeps for reuse: those that rm, vacuum and int8 retraining\n"
     "left, and the float32 vectors an i8-only or f16-only database dropped.\n"
     "DEST must not exist; it appears whole or not at all. To shrink a\n"
     "database, move the copy over it while no process has it open.\n"
     "  --json           {ok, dest, items, bytes_before, bytes_after}",
     CMD_DB},
    {"ls", cmd_ls, "DB [--json]", "List the stored images.", CMD_DB},
    {"shell", cmd_shell, "DB [--bail]",
     "An interactive shell on DB: the same commands without the DB argument,\n"
     "with history (~/.pixvec_history), tab completion of commands, options and\n"
     "file names, and help. Ctrl-C cancels the line being typed, or interrupts\n"
     "the command at work (the database stays as it was); Ctrl-D or quit leaves.\n"
     "Commands can be piped in, one per line: the exit status is then that of\n"
     "the last command that failed (0 when none did).\n"
     "  --bail           a piped script stops at its first failing command,\n"
     "                   with that command's exit status",
     CMD_DB | CMD_WRITE | CMD_NO_SHELL},
    {"help", cmd_help, "[COMMAND] [--man]",
     "List the commands, or one command's options.\n"
     "  --man            print the whole manual page, pixvec(1), in roff",
     0},
    {"quit", cmd_quit, "", "Leave the shell (Ctrl-D does too).", CMD_SHELL_ONLY},
    {NULL, NULL, NULL, NULL, 0},
};

const cli_cmd *cli_find(const char *name)
{
    for (const cli_cmd *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

void cli_unknown_command(const char *where, const char *word, int in_shell)
{
    const char *cands[64];
    size_t n = 0;
    const char *best;
    for (const cli_cmd *c = cli_commands; c->name && n < 64; c++)
        if (in_shell ? !(c->flags & CMD_NO_SHELL) : !(c->flags & CMD_SHELL_ONLY))
            cands[n++] = c->name;
    best = cli_suggest(word, cands, n);
    cli_set_code("unknown_command");
    if (best)
        cli_err(where, "unknown command '%s'; did you mean '%s'?", word, best);
    else
        cli_err(where, "unknown command '%s' (%s lists the commands)", word,
                in_shell ? "help" : "pixvec help");
}

int cli_dispatch(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find(argv[0]);
    int rc;
    cli_run_begin(c ? c->name : NULL, argc, argv, ctx->in_shell);
    if (!c) {
        cli_unknown_command(NULL, argv[0], ctx->in_shell);
        return cli_run_end(CLI_USAGE);
    }
    if (!offered(ctx, c)) {
        cli_set_code("usage");
        cli_err(c->name, "%s", ctx->in_shell ? "not available inside the shell"
                                             : "only available inside `pixvec shell DB`");
        return cli_run_end(CLI_USAGE);
    }
    rc = c->fn(ctx, argc, argv);
    return cli_run_end(rc);
}
