/*
 * test_export.c - `pixvec export` and `pixvec import` end to end, on
 * databases built from generated images: numpy (python3-numpy) reads the
 * .npy, fvecs and JSON Lines files and finds the vectors pv_embed_file
 * makes of each stored image; an exact FAISS index (python3-faiss) built
 * from the export gives the top-10 of `pixvec query --exact`; a round trip
 * through import gives the same answers to `query --vector`; broken inputs
 * are refused, named, and leave the database as it was. The python side is
 * tests/ref_export.py.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

#define PY "/usr/bin/python3"
#define REF PIXVEC_SRC_DIR "/tests/ref_export.py"

static cli_fix F;

static void setup(void)
{
    cli_fix_setup(&F);
}
static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(export, .init = setup, .fini = teardown, .timeout = 120);

#define run(...) cli_fix_run(&F, NULL, __VA_ARGS__, (char *)NULL)

static void need_python(void)
{
    if (system(PY " -c 'import numpy, faiss' 2>/dev/null") != 0)
        cr_assert_fail(PY " cannot import numpy and faiss: install python3-numpy and "
                          "python3-faiss (scripts/setup.sh does)");
}

/* A file in the test's folder. */
static const char *at(const char *name)
{
    static char p[4][GEN_PATH_MAX];
    static int k;
    k = (k + 1) % 4;
    return gen_path(p[k], F.dir, name);
}

/* n images (and, with odd, one whose name holds a backslash and a newline)
 * in F.db, pixels embedder (784 dims). */
static void build(int n, int odd)
{
    cr_assert_eq(gen_picture_set(F.imgs, "p", n, 48, 40, NULL, 100), 0);
    if (odd) {
        char p[GEN_PATH_MAX];
        cr_assert_eq(gen_picture(F.imgs, "odd\\na\nme.png", 9, 44, 36, p), 0);
    }
    cr_assert_eq(run("init", F.db), 0, "%s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs, "--quiet"), 0, "%s", F.err);
}

/* The live items of db: count, and (if want) their ids and paths; with
 * ref, also DIR/ref.f32 (each item's pv_embed_file vector) and DIR/ref.json. */
static size_t items(const char *db, pv_item **out, int ref)
{
    pv_db *h = NULL;
    pv_item *it = NULL;
    size_t n = 0;
    char err[512] = "";
    cr_assert_eq(pv_db_open(db, PV_OPEN_RDONLY, &h, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_items(h, &it, &n), 0);
    if (ref) {
        pv_info in;
        FILE *f = fopen(at("ref.f32"), "wb");
        json_t *arr = json_array();
        float *v;
        cr_assert_eq(pv_db_info(h, &in), 0);
        v = malloc(in.dim * sizeof *v);
        cr_assert(f && v);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(pv_embed_file(h, it[i].path, v, in.dim), 0, "%s", pv_db_errmsg(h));
            cr_assert_eq(fwrite(v, sizeof *v, in.dim, f), in.dim);
            json_array_append_new(arr,
                                  json_pack("{s:i, s:s}", "id", (int)it[i].id, "path", it[i].path));
        }
        fclose(f);
        free(v);
        cr_assert_eq(json_dump_file(arr, at("ref.json"), 0), 0);
        json_decref(arr);
    }
    pv_db_close(h);
    if (out)
        *out = it;
    else
        pv_items_free(it, n);
    return n;
}

/* The paths of the last `query --json` run's hits (at most 10), and their
 * ids into ids (may be NULL). */
static int hit_paths(char paths[10][GEN_PATH_MAX], uint32_t ids[10], float scores[10])
{
    json_t *j = cli_fix_json(&F), *hits = json_object_get(j, "hits");
    int n = (int)json_array_size(hits);
    cr_assert(n <= 10);
    for (int i = 0; i < n; i++) {
        json_t *h = json_array_get(hits, (size_t)i);
        snprintf(paths[i], GEN_PATH_MAX, "%s", json_string_value(json_object_get(h, "path")));
        if (ids)
            ids[i] = (uint32_t)json_integer_value(json_object_get(h, "id"));
        if (scores)
            scores[i] = (float)json_real_value(json_object_get(h, "score"));
    }
    json_decref(j);
    return n;
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* No temporary file of an export or import left in F.dir. */
static void no_leftovers(void)
{
    DIR *d = opendir(F.dir);
    struct dirent *e;
    cr_assert(d);
    while ((e = readdir(d)))
        cr_assert_null(strstr(e->d_name, ".tmp-"), "left behind: %s", e->d_name);
    closedir(d);
}

Test(export, npy_fvecs_jsonl_read_by_numpy)
{
    pv_item *it = NULL;
    size_t n;
    json_t *j;
    need_python();
    build(24, 1);
    n = items(F.db, &it, 0);
    cr_assert_eq(n, 25);
    cr_assert_eq(run("rm", F.db, it[3].path), 0, "%s", F.err); /* a tombstone to skip */
    pv_items_free(it, n);
    cr_assert_eq(run("export", F.db, "--out", at("e"), "--json"), 0, "%s", F.err);
    j = cli_fix_json(&F);
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), 24);
    cr_assert_eq(json_integer_value(json_object_get(j, "dim")), 784);
    cr_assert(json_is_false(json_object_get(j, "dequantized")));
    json_decref(j);
    /* the same ids and paths files again: --force */
    cr_assert_eq(run("export", F.db, "--out", at("e"), "--format", "fvecs"), 1);
    cr_assert(strstr(F.err, "e.ids.npy exists"), "%s", F.err);
    cr_assert_eq(run("export", F.db, "--out", at("e"), "--format", "fvecs", "--force"), 0, "%s",
                 F.err);
    cr_assert_eq(run("export", F.db, "--out", at("e"), "--format", "jsonl"), 0, "%s", F.err);
    cr_assert(strstr(F.out, "exported 24 vectors of 784 dims"), "%s", F.out);
    cr_assert_eq(items(F.db, NULL, 1), 24);
    char line[256];
    cli_shell_line(line, sizeof line, PY " " REF " check %s", F.dir);
    cr_assert_str_eq(line, "ok 24 784\n");
    /* the odd name is escaped on its line: a backslash doubled, \n */
    char *txt = cli_slurp(at("e.paths.txt"));
    cr_assert(strstr(txt, "/odd\\\\na\\nme.png\n"), "%s", txt);
    free(txt);
    no_leftovers();
}

Test(export, faiss_flat_ip_matches_query_exact)
{
    char q[3][GEN_PATH_MAX], cmd[GEN_PATH_MAX * 2], err[512] = "";
    pv_db *h = NULL;
    float v[784];
    FILE *f, *p;
    need_python();
    build(40, 0);
    cr_assert_eq(run("export", F.db, "--out", at("e")), 0, "%s", F.err);
    cr_assert_eq(gen_picture(F.dir, "q0.png", 7001, 50, 40, q[0]), 0);
    cr_assert_eq(gen_picture(F.dir, "q1.jpg", 7002, 40, 52, q[1]), 0);
    gen_path(q[2], F.imgs, "p0011.png");
    if (!exists(q[2]))
        gen_path(q[2], F.imgs, "p0011.jpg");
    cr_assert_eq(pv_db_open(F.db, PV_OPEN_RDONLY, &h, err, sizeof err), 0, "%s", err);
    cr_assert(f = fopen(at("q.f32"), "wb"));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pv_embed_file(h, q[i], v, 784), 0, "%s", pv_db_errmsg(h));
        fwrite(v, sizeof *v, 784, f);
    }
    fclose(f);
    pv_db_close(h);
    snprintf(cmd, sizeof cmd, PY " " REF " faiss %s 10", F.dir);
    cr_assert(p = popen(cmd, "r"));
    for (int i = 0; i < 3; i++) {
        char line[512], paths[10][GEN_PATH_MAX], *s = line;
        uint32_t ids[10];
        cr_assert(fgets(line, sizeof line, p), "faiss printed %d lines", i);
        cr_assert_eq(run("query", F.db, q[i], "--exact", "-k", "10", "--json"), 0, "%s", F.err);
        cr_assert_eq(hit_paths(paths, ids, NULL), 10);
        for (int k = 0; k < 10; k++) {
            char *e;
            unsigned long id = strtoul(s, &e, 10);
            cr_assert(e != s, "faiss line: %s", line);
            cr_assert_eq(id, ids[k], "query %d rank %d: faiss %lu, pixvec %u", i, k + 1, id,
                         ids[k]);
            s = e;
        }
    }
    cr_assert_eq(pclose(p), 0);
}

Test(export, import_round_trip_query_vector)
{
    char rt[GEN_PATH_MAX];
    pv_item *it = NULL;
    size_t n;
    json_t *j;
    need_python();
    build(30, 1);
    gen_path(rt, F.dir, "rt.pvdb");
    n = items(F.db, &it, 0);
    cr_assert_eq(run("export", F.db, "--out", at("e")), 0, "%s", F.err);
    cr_assert_eq(run("import", rt, at("e.npy"), "--paths", at("e.paths.txt"), "--json"), 0, "%s",
                 F.err);
    j = cli_fix_json(&F);
    cr_assert_eq(json_integer_value(json_object_get(j, "imported")), 31);
    cr_assert(json_is_true(json_object_get(j, "created")));
    json_decref(j);
    cr_assert_eq(cli_checked_items(rt, F.outp, F.errp), 31);
    cr_assert_eq(run("info", rt, "--json"), 0, "%s", F.err);
    j = cli_fix_json(&F);
    cr_assert_str_eq(json_string_value(json_object_get(j, "embedder")), "external");
    cr_assert_eq(json_integer_value(json_object_get(j, "dim")), 784);
    json_decref(j);
    /* the imported items carry the files' records */
    pv_item *ri = NULL;
    size_t rn = items(rt, &ri, 0);
    cr_assert_eq(rn, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(ri[i].path, it[i].path);
        cr_assert_eq(ri[i].size, it[i].size);
        cr_assert_eq(ri[i].mtime_ns, it[i].mtime_ns);
        cr_assert_eq(ri[i].width, it[i].width);
        cr_assert_eq(ri[i].height, it[i].height);
        cr_assert_eq(memcmp(ri[i].hash, it[i].hash, 16), 0, "item %zu: hash", i);
    }
    pv_items_free(ri, rn);
    for (int r = 0; r < 31; r += 10) {
        char row[16], a[10][GEN_PATH_MAX], b[10][GEN_PATH_MAX], c[10][GEN_PATH_MAX];
        float sa[10], sb[10];
        snprintf(row, sizeof row, "%d", r);
        cr_assert_eq(run("query", F.db, it[r].path, "--exact", "--json"), 0, "%s", F.err);
        int na = hit_paths(a, NULL, sa);
        cr_assert_eq(run("query", rt, "--vector", at("e.npy"), "--row", row, "--exact", "--json"),
                     0, "%s", F.err);
        int nb = hit_paths(b, NULL, sb);
        cr_assert_eq(run("query", rt, "--vector", at("e.npy"), "--row", row, "--json"), 0, "%s",
                     F.err);
        int nc = hit_paths(c, NULL, NULL);
        cr_assert_eq(na, 10);
        cr_assert_eq(nb, 10);
        cr_assert_eq(nc, 10);
        cr_assert_str_eq(b[0], it[r].path);
        cr_assert_str_eq(c[0], it[r].path, "HNSW on the imported graph finds the row itself");
        for (int k = 0; k < 10; k++) {
            cr_assert_str_eq(a[k], b[k], "row %d rank %d", r, k + 1);
            cr_assert_float_eq(sa[k], sb[k], 1e-5);
        }
    }
    /* a 2-D file needs --row; a row past the end is named */
    cr_assert_eq(run("query", rt, "--vector", at("e.npy")), 2);
    cr_assert(strstr(F.err, "--row"), "%s", F.err);
    cr_assert_eq(run("query", rt, "--vector", at("e.npy"), "--row", "31"), 1);
    cr_assert(strstr(F.err, "31 rows"), "%s", F.err);
    /* no image model: add and query IMAGE refuse, saying what to do */
    cr_assert_eq(run("query", rt, it[0].path), 1);
    cr_assert(strstr(F.err, "imported from elsewhere; query it with --vector"), "%s", F.err);
    cr_assert_eq(run("add", rt, F.imgs), 1);
    cr_assert(strstr(F.err, "imported from elsewhere"), "%s", F.err);
    cr_assert_eq(cli_checked_items(rt, F.outp, F.errp), 31);
    /* the analyses that need vectors only work */
    cr_assert_eq(run("dups", rt, "--json"), 0, "%s", F.err);
    cr_assert_eq(run("cluster", rt, "-k", "3"), 0, "%s", F.err);
    /* vectors cannot go into a database of images */
    cr_assert_eq(run("import", F.db, at("e.npy"), "--paths", at("e.paths.txt")), 1);
    cr_assert(strstr(F.err, "database of their own"), "%s", F.err);
    pv_items_free(it, n);
    no_leftovers();
}

/* import of file into db fails (exit 1) with want in its message. */
static void refused(const char *db, const char *file, const char *paths, const char *want,
                    int normalize)
{
    int rc = normalize ? run("import", db, at(file), "--paths", paths, "--normalize")
                       : run("import", db, at(file), "--paths", paths);
    cr_assert_eq(rc, 1, "%s: exit %d: %s", file, rc, F.err);
    cr_assert(strstr(F.err, want), "%s: wanted '%s' in: %s", file, want, F.err);
}

Test(export, import_refuses_bad_input)
{
    char rt[GEN_PATH_MAX], fresh[GEN_PATH_MAX], paths[GEN_PATH_MAX], short_paths[GEN_PATH_MAX],
        line[64];
    need_python();
    build(12, 0);
    gen_path(rt, F.dir, "rt.pvdb");
    gen_path(fresh, F.dir, "fresh.pvdb");
    cr_assert_eq(run("export", F.db, "--out", at("e")), 0, "%s", F.err);
    snprintf(paths, sizeof paths, "%s", at("e.paths.txt"));
    cli_shell_line(line, sizeof line, PY " " REF " bad %s", F.dir);
    cr_assert_str_eq(line, "ok\n");
    /* rt: a database of external vectors holding new names for the rows */
    cli_shell("sed 's/\\.\\(png\\|jpg\\)$/.x.\\1/' '%s' > '%s'", paths, at("other.txt"));
    cr_assert_eq(run("import", rt, at("e.npy"), "--paths", paths), 0, "%s", F.err);
    cr_assert_eq(cli_checked_items(rt, F.outp, F.errp), 12);
    struct stat before;
    cr_assert_eq(stat(at("rt.pvdb/data.mdb"), &before), 0);

    const char *const dbs[2] = {rt, fresh};
    char o[GEN_PATH_MAX];
    gen_path(o, F.dir, "other.txt");
    for (int d = 0; d < 2; d++) {
        refused(dbs[d], "nan.npy", o, "row 5 (counting from 0): value 3 is NaN", 0);
        refused(dbs[d], "norm.npy", o, "row 0 (counting from 0): L2 norm 2, not 1", 0);
        refused(dbs[d], "zero.npy", o, "row 2 (counting from 0): a zero vector", 1);
        refused(dbs[d], "fortran.npy", o, "fortran_order True", 0);
        refused(dbs[d], "i4.npy", o, "dtype '<i4'", 0);
        refused(dbs[d], "f16.npy", o, "dtype '<f2'", 0);
        refused(dbs[d], "big.npy", o, "dtype '>f4'", 0);
        refused(dbs[d], "three.npy", o, "a 3-D array", 0);
        refused(dbs[d], "trunc.npy", o, "(truncated)", 0);
        refused(dbs[d], "long.npy", o, "but the file holds", 0);
        refused(dbs[d], "hdr.npy", o, "not a .npy file", 0);
        refused(dbs[d], "magic.npy", o, "not a .npy file", 0);
    }
    refused(rt, "dim.npy", at("other.txt"), "the vectors have 10 dims; this database has 784", 0);
    cli_shell("head -n 11 '%s' > '%s'", at("other.txt"), at("short.txt"));
    snprintf(short_paths, sizeof short_paths, "%s", at("short.txt"));
    refused(rt, "e.npy", short_paths, "has 12 rows but", 0);
    cr_assert(strstr(F.err, "has 11 lines"), "%s", F.err);
    /* the rows' paths are stored already: import never replaces */
    refused(rt, "e.npy", paths, "is in the database already", 0);
    /* a path twice */
    cli_shell("(head -n 11 '%s'; head -n 1 '%s') > '%s'", at("other.txt"), at("other.txt"),
              at("twice.txt"));
    refused(fresh, "e.npy", at("twice.txt"), "rows 0 and 11 name the same file", 0);
    /* nothing changed, nothing created */
    struct stat after;
    cr_assert_eq(stat(at("rt.pvdb/data.mdb"), &after), 0);
    cr_assert_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    cr_assert_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    cr_assert_eq(cli_checked_items(rt, F.outp, F.errp), 12);
    cr_assert(!exists(fresh), "a failed import left %s behind", fresh);
    /* float64 converted, and scaled by --normalize; relative paths made
     * absolute against the current folder (files that do not exist: 0s) */
    cr_assert_eq(chdir(F.dir), 0);
    cli_shell("printf 'rel/a%%d.png\\n' $(seq 1 12) > '%s'", at("rel.txt"));
    cr_assert_eq(run("import", fresh, "f8.npy", "--paths", "rel.txt", "--normalize"), 0, "%s",
                 F.err);
    pv_item *it = NULL;
    size_t n = items(fresh, &it, 0);
    cr_assert_eq(n, 12);
    char want[GEN_PATH_MAX + 32];
    snprintf(want, sizeof want, "%s/rel/a1.png", F.dir);
    cr_assert_str_eq(it[0].path, want);
    cr_assert_eq(it[0].size, 0);
    cr_assert_eq(it[0].width, 0);
    cr_assert(memcmp(it[0].hash, it[1].hash, 16) != 0, "files that do not exist share a hash");
    pv_items_free(it, n);
    cr_assert_eq(cli_checked_items(fresh, F.outp, F.errp), 12);
    cr_assert_eq(run("query", fresh, "--vector", "e.npy", "--row", "4", "-k", "1", "--json"), 0,
                 "%s", F.err);
    char hp[10][GEN_PATH_MAX];
    float sc[10];
    cr_assert_eq(hit_paths(hp, NULL, sc), 1);
    snprintf(want, sizeof want, "%s/rel/a5.png", F.dir);
    cr_assert_str_eq(hp[0], want);
    cr_assert_float_eq(sc[0], 1.0f, 1e-5);
    no_leftovers();
}

Test(export, output_exists_needs_force)
{
    char *a, *b;
    build(5, 0);
    for (int f = 0; f < 3; f++) {
        const char *fmt = f == 0 ? "npy" : f == 1 ? "fvecs" : "jsonl";
        const char *main_file = f == 0 ? "e0.npy" : f == 1 ? "e1.fvecs" : "e2.jsonl";
        char pre[GEN_PATH_MAX + 16], first[GEN_PATH_MAX + 16];
        snprintf(pre, sizeof pre, "%s/e%d", F.dir, f);
        snprintf(first, sizeof first, "%s/%s", F.dir, main_file);
        cr_assert_eq(run("export", F.db, "--out", pre, "--format", fmt), 0, "%s", F.err);
        a = cli_slurp(first);
        cr_assert_eq(run("export", F.db, "--out", pre, "--format", fmt), 1);
        cr_assert(strstr(F.err, "exists (force replaces it)"), "%s", F.err);
        cr_assert(strstr(F.err, main_file), "%s", F.err);
        b = cli_slurp(first);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
        cr_assert_eq(run("export", F.db, "--out", pre, "--format", fmt, "--force"), 0, "%s", F.err);
        no_leftovers();
    }
    /* an npy export into a folder that does not exist: refused, nothing made */
    cr_assert_eq(run("export", F.db, "--out", at("nodir/e")), 1);
    cr_assert(strstr(F.err, "cannot create"), "%s", F.err);
    cr_assert(!exists(at("nodir")));
    /* the ids file: numpy's '<u4' header, data at 64 */
    char *ids = cli_slurp(at("e0.ids.npy"));
    cr_assert(strstr(ids + 10, "{'descr': '<u4', 'fortran_order': False, 'shape': (5,), }"), "%s",
              ids + 10);
    free(ids);
    FILE *fp = fopen(at("e0.ids.npy"), "rb");
    fseek(fp, 0, SEEK_END);
    cr_assert_eq(ftell(fp), 128 + 5 * 4); /* 10 + 58 header bytes, padded to 128 */
    fclose(fp);
}
