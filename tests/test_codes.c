/*
 * test_codes.c - compact vectors in the database (issue 17, part 2): init
 * --vectors f16|i8 keeps a copy that graph and IVF queries score, the best
 * candidates re-scored in float32; int8 learns its ranges at PV_I8_TRAIN_MIN
 * vectors and again when their number doubles; check compares every code
 * with the coding of its float32 vector; damaged codes are named. Real
 * databases of generated pictures, pixels embedder at 8 x 8 (64 dims).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

static cli_fix F;

static void setup(void)
{
    cli_fix_setup(&F);
}

static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(codes, .init = setup, .fini = teardown, .timeout = 300);

/* n pictures in F.imgs/sub, seeds from seed0, added to db. */
static void add_set(pv_db *db, const char *sub, int n, uint32_t seed0)
{
    char dir[GEN_PATH_MAX];
    const char *paths[1];
    pv_add_stats st;
    gen_path(dir, F.imgs, sub);
    cr_assert_eq(mkdir(dir, 0755), 0);
    cr_assert_eq(gen_picture_set(dir, "p", n, 16, 16, "png", seed0), 0);
    paths[0] = dir;
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, (uint64_t)n);
}

static pv_db *create(int vectors, int only)
{
    pv_embedder_opts e = {.name = "pixels", .size = 8};
    pv_index_opts ix = {0, 0, vectors, only};
    pv_db *db = NULL;
    char err[512] = "";
    cr_assert_eq(pv_db_create(F.db, &e, &ix, &db, err, sizeof err), 0, "%s", err);
    return db;
}

static uint64_t meta_u64(const char *key)
{
    uint8_t *v = NULL;
    size_t n = 0;
    uint64_t x = 0;
    cr_assert_eq(gen_db_get(F.db, "meta", key, strlen(key), &v, &n), 0, "meta %s", key);
    cr_assert_eq(n, 8);
    memcpy(&x, v, 8);
    free(v);
    return x;
}

/* Mean recall@10 of graph queries (q_opts) against the exact scan, over
 * the first nq stored vectors used as queries; also the largest gap
 * between a hit's score and its exact float32 score. */
static double recall_vs_exact(pv_db *db, int nq, const pv_query_opts *qo, float *maxgap)
{
    pv_item *items = NULL;
    size_t nitems = 0, found = 0;
    pv_info in;
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(pv_items(db, &items, &nitems), 0);
    float *v = malloc(in.dim * sizeof *v);
    *maxgap = 0;
    for (int i = 0; i < nq; i++) {
        pv_query_opts ex = {.k = 10, .exact = 1, .ids_only = 1};
        pv_hit *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        cr_assert_eq(pv_embed_file(db, items[i * 7].path, v, in.dim), 0);
        cr_assert_eq(pv_query_vector(db, v, in.dim, &ex, &a, &na), 0);
        cr_assert_eq(pv_query_vector(db, v, in.dim, qo, &b, &nb), 0, "%s", pv_db_errmsg(db));
        cr_assert_eq(nb, na);
        for (size_t j = 0; j < nb; j++) {
            for (size_t m = 0; m < na; m++)
                if (a[m].id == b[j].id) {
                    float gap =
                        a[m].score > b[j].score ? a[m].score - b[j].score : b[j].score - a[m].score;
                    found++;
                    if (gap > *maxgap)
                        *maxgap = gap;
                }
        }
        pv_hits_free(a, na);
        pv_hits_free(b, nb);
    }
    free(v);
    pv_items_free(items, nitems);
    return (double)found / (10.0 * nq);
}

Test(codes, i8_learns_at_1024_and_again_when_doubled)
{
    pv_db *db = create(PV_VECTORS_I8, 0);
    pv_info in;
    pv_query_opts qo = {.k = 10, .ids_only = 1};
    float gap;

    add_set(db, "a", 1000, 1);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.vectors, PV_VECTORS_I8);
    cr_assert_eq(in.format, 3);
    cr_assert_eq(in.code_bytes, 64);
    cr_assert_eq(in.coded, 0, "no codes before %u vectors", PV_I8_TRAIN_MIN);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    /* below the threshold queries score float32: exact scores */
    cr_assert_geq(recall_vs_exact(db, 20, &qo, &gap), 0.95);
    cr_assert_lt(gap, 1e-5f);

    add_set(db, "b", 100, 5001);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.coded, 1100);
    /* learned at the commit that reached 1024 (pv_add commits in batches) */
    const uint64_t t1 = meta_u64("codes_trained");
    cr_assert(t1 >= PV_I8_TRAIN_MIN && t1 <= 1100, "%llu", (unsigned long long)t1);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));

    add_set(db, "c", 1150, 9001); /* 2250 >= 2 * 1100: learned again, all coded again */
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.coded, 2250);
    const uint64_t t2 = meta_u64("codes_trained");
    cr_assert(t2 >= 2 * t1 && t2 <= 2250, "%llu after %llu", (unsigned long long)t2,
              (unsigned long long)t1);
    cr_assert_eq(meta_u64("codes_n"), 2250);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));

    /* re-scored: float32 scores, the exact answer nearly always */
    double r = recall_vs_exact(db, 40, &qo, &gap);
    cr_log_info("codes: i8 + re-score recall@10 %.3f, max score gap %.2g", r, gap);
    cr_assert_geq(r, 0.95);
    cr_assert_lt(gap, 1e-5f);
    /* not re-scored: the int8 scores, close to but not the float ones */
    qo.no_rerank = 1;
    r = recall_vs_exact(db, 40, &qo, &gap);
    cr_log_info("codes: i8 raw recall@10 %.3f, max score gap %.2g", r, gap);
    cr_assert_geq(r, 0.80);
    cr_assert_gt(gap, 1e-6f, "int8 scores equal the float32 ones: codes not used?");
    cr_assert_lt(gap, 0.05f);
    pv_db_close(db);
}

Test(codes, f16_codes_every_vector_and_serves_ivf)
{
    pv_db *db = create(PV_VECTORS_F16, 0);
    pv_info in;
    pv_query_opts qo = {.k = 10, .ids_only = 1};
    pv_cluster_opts co = {.k = 8};
    float gap;

    add_set(db, "a", 300, 77);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.coded, 300);
    cr_assert_eq(in.code_bytes, 128);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_geq(recall_vs_exact(db, 20, &qo, &gap), 0.95);
    cr_assert_lt(gap, 1e-5f);
    cr_assert_eq(pv_ivf_train(db, &co, NULL), 0, "%s", pv_db_errmsg(db));
    qo.ivf = 1;
    qo.nprobe = 8; /* every list: the exact answer */
    cr_assert_geq(recall_vs_exact(db, 20, &qo, &gap), 0.99);
    cr_assert_lt(gap, 1e-5f);
    qo.no_rerank = 1;
    recall_vs_exact(db, 20, &qo, &gap);
    cr_assert_gt(gap, 0.0f, "f16 scores equal the float32 ones: codes not used?");
    cr_assert_lt(gap, 1e-3f);
    pv_db_close(db);
}

/* The damage is named. New databases are format 3; one of format 1 (made
 * by an older pixvec) stays format 1 when written to, its items without a
 * recorded image format, so that older pixvec still reads it. */
Test(codes, damaged_codes_are_named)
{
    pv_db *db = create(PV_VECTORS_I8, 0);
    uint32_t chunk0 = 0;
    uint8_t *v = NULL;
    size_t n = 0;
    pv_hit *h = NULL;
    size_t nh = 0;
    float q[64] = {1};
    pv_query_opts qo = {.k = 5};

    add_set(db, "a", 1030, 3);
    pv_db_close(db);

    /* one code byte changed: check names the id */
    cr_assert_eq(gen_db_get(F.db, "codes", &chunk0, 4, &v, &n), 0);
    cr_assert_eq(n, 1024u * 64);
    v[5 * 64 + 3] ^= 0x55;
    cr_assert_eq(gen_db_put(F.db, "codes", &chunk0, 4, v, n), 0);
    cr_assert_eq(pv_db_open(F.db, 0, &db, NULL, 0), 0);
    cr_assert_eq(pv_db_verify(db), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "codes of id 5"), "%s", pv_db_errmsg(db));
    pv_db_close(db);

    /* a chunk cut short: queries refuse it, naming the chunk */
    cr_assert_eq(gen_db_put(F.db, "codes", &chunk0, 4, v, n - 1), 0);
    cr_assert_eq(pv_db_open(F.db, 0, &db, NULL, 0), 0);
    cr_assert_eq(pv_query_vector(db, q, 64, &qo, &h, &nh), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "codes chunk 0"), "%s", pv_db_errmsg(db));
    pv_db_close(db);
    free(v);

    /* parameters that are not int8 parameters */
    cr_assert_eq(gen_db_put(F.db, "meta", "codes_i8", 8, "PVQ8garbage", 11), 0);
    cr_assert_eq(pv_db_open(F.db, 0, &db, NULL, 0), 0);
    cr_assert_eq(pv_query_vector(db, q, 64, &qo, &h, &nh), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "codes_i8"), "%s", pv_db_errmsg(db));
    pv_db_close(db);

    /* a kind this pixvec does not know */
    uint32_t bad = 7;
    cr_assert_eq(gen_db_put(F.db, "meta", "vec_codes", 9, &bad, 4), 0);
    char err[512] = "";
    cr_assert_eq(pv_db_open(F.db, 0, &db, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "vec_codes"), "%s", err);
}

Test(codes, float32_databases_stay_format_1_and_cli_names_kinds)
{
    pv_db *db = create(PV_VECTORS_F32, 0);
    pv_info in;
    char err[512] = "";
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.format, 3);
    cr_assert_eq(in.vectors, PV_VECTORS_F32);
    cr_assert_eq(in.code_bytes, 0);
    pv_db_close(db);
    cr_assert_eq(gen_db_set_format(F.db, 1), 0);
    cr_assert_eq(pv_db_open(F.db, 0, &db, err, sizeof err), 0, "%s", err);
    add_set(db, "b", 4, 9);
    cr_assert_eq(pv_db_info(db, &in), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(in.format, 1);
    cr_assert_eq(in.formats[PV_FMT_PNG], 0);
    cr_assert_eq(in.formats[PV_FMT_UNKNOWN], 4, "not recorded in format 1");
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);
    cr_assert_eq(cli_fix_run(&F, NULL, "init", F.dir, "--vectors", "i4", (char *)NULL), 2);
    cr_assert(strstr(F.err, "--vectors takes f32, f16, i8, f16-only or i8-only, not 'i4'"), "%s",
              F.err);
    char db2[GEN_PATH_MAX];
    gen_path(db2, F.dir, "db2");
    cr_assert_eq(
        cli_fix_run(&F, NULL, "init", db2, "--vectors", "f16", "--size", "8", (char *)NULL), 0,
        "%s", F.err);
    cr_assert(strstr(F.out, "f16 copies"), "%s", F.out);
    cr_assert_eq(cli_fix_run(&F, NULL, "info", db2, "--json", (char *)NULL), 0, "%s", F.err);
    cr_assert(strstr(F.out, "\"vectors\": \"f16\""), "%s", F.out);
}

/* Codes only: the float32 vectors are kept until the int8 ranges are
 * final (PV_I8_TRAIN_MAX; 2,048 here through PIXVEC_I8_TRAIN_MAX), then
 * dropped; later batches are inserted on codes; every
 * operation runs (queries, exact scan, IVF, dups, clusters, vacuum, check),
 * the answers close to a float32 database of the same pictures, and the
 * database smaller. */
Test(codes, i8_only_drops_float32_and_keeps_working)
{
    cr_assert_eq(setenv("PIXVEC_I8_TRAIN_MAX", "2048", 1), 0);
    pv_db *db = create(PV_VECTORS_I8, 1);
    pv_info in;
    pv_query_opts qo = {.k = 10, .ids_only = 1};
    pv_cluster_opts co = {.k = 6};
    pv_dups_opts dopt = {0};
    pv_dups *dups = NULL;
    uint32_t chunk0 = 0;
    uint8_t *v = NULL;
    size_t n = 0;
    float gap;

    add_set(db, "a", 1000, 11);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.compact_only, 1);
    cr_assert_eq(in.coded, 0);
    cr_assert_eq(gen_db_get(F.db, "vectors", &chunk0, 4, &v, &n), 0, "float32 kept until coded");
    free(v);
    add_set(db, "a2", 30, 1011); /* 1,030: coded, ranges not final, float32 kept */
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.coded, 1030);
    cr_assert_eq(gen_db_get(F.db, "vectors", &chunk0, 4, &v, &n), 0, "float32 kept until final");
    free(v);
    add_set(db, "b", 1170, 2011);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.coded, 2200);
    cr_assert_eq(gen_db_get(F.db, "vectors", &chunk0, 4, &v, &n), -1, "float32 dropped");
    cr_assert_eq(meta_u64("vec_dropped"), 1);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    const uint64_t trained = meta_u64("codes_trained"); /* the last: at 2,060 or more */
    cr_assert(trained >= 2048 && trained <= 2200, "%llu", (unsigned long long)trained);
    add_set(db, "c", 1300, 5011); /* inserted on codes; more than doubles */
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(meta_u64("codes_trained"), trained, "learned once: nothing to learn again from");

    /* graph queries against the exact scan of the decoded vectors */
    double r = recall_vs_exact(db, 40, &qo, &gap);
    cr_log_info("codes: i8-only graph recall@10 %.3f against the decoded scan", r);
    cr_assert_geq(r, 0.90);
    cr_assert_eq(pv_ivf_train(db, &co, NULL), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_cluster_train(db, &co, NULL), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_find_dups(db, &dopt, &dups), 0, "%s", pv_db_errmsg(db));
    pv_dups_free(dups);
    cr_assert_eq(pv_vacuum(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);

    /* an old-style vectors record back in a dropped table is named */
    float junk[64] = {1};
    cr_assert_eq(gen_db_put(F.db, "vectors", &chunk0, 4, junk, sizeof junk), 0);
    cr_assert_eq(pv_db_open(F.db, 0, &db, NULL, 0), 0);
    cr_assert_eq(pv_db_verify(db), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "vec_dropped"), "%s", pv_db_errmsg(db));
    pv_db_close(db);
}

/* f16-only never stores a float32 vector; its answers are those of a
 * float32 database to float16 precision. */
Test(codes, f16_only_matches_float32)
{
    pv_db *db = create(PV_VECTORS_F16, 1);
    pv_query_opts qo = {.k = 10, .ids_only = 1, .exact = 1};
    pv_info in;
    uint32_t chunk0 = 0;
    uint8_t *v = NULL;
    size_t n = 0;
    float gap;
    add_set(db, "a", 200, 99);
    cr_assert_eq(gen_db_get(F.db, "vectors", &chunk0, 4, &v, &n), -1);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.coded, 200);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    qo.exact = 0;
    cr_assert_geq(recall_vs_exact(db, 20, &qo, &gap), 0.95);
    cr_assert_lt(gap, 2e-3f);
    pv_db_close(db);
}

static long long file_bytes(const char *dbdir)
{
    char p[GEN_PATH_MAX];
    struct stat sb;
    gen_path(p, dbdir, "data.mdb");
    return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The top 10 ids of an exact and of a graph query for stored image i. */
static void top10(pv_db *db, const char *path, int exact, uint32_t ids[10])
{
    pv_query_opts qo = {.k = 10, .exact = exact, .ids_only = 1};
    pv_hit *h = NULL;
    size_t n = 0;
    cr_assert_eq(pv_query_image(db, path, &qo, &h, &n), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(n, 10);
    for (size_t j = 0; j < n; j++)
        ids[j] = h[j].id;
    pv_hits_free(h, n);
}

/* backup: an i8-only database keeps the pages of its dropped float32
 * vectors as free space in the file; the compacted copy leaves them out,
 * verifies, and answers every query as the original does. A copy taken
 * while another process adds is a consistent snapshot. */
Test(codes, backup_compacts_and_answers_the_same)
{
    cr_assert_eq(setenv("PIXVEC_I8_TRAIN_MAX", "2048", 1), 0);
    pv_db *db = create(PV_VECTORS_I8, 1), *copy = NULL;
    char dest[GEN_PATH_MAX], dest2[GEN_PATH_MAX], nodir[GEN_PATH_MAX], late[GEN_PATH_MAX];
    pv_item *items = NULL;
    size_t nitems = 0;
    pv_info a, b;

    add_set(db, "a", 2200, 11); /* float32 dropped at 2,048 */
    cr_assert_eq(meta_u64("vec_dropped"), 1);
    gen_path(dest, F.dir, "copy.pvdb");
    cr_assert_eq(pv_db_backup(db, dest), 0, "%s", pv_db_errmsg(db));
    cr_log_info("codes: i8-only data.mdb %lld bytes, compacted copy %lld", file_bytes(F.db),
                file_bytes(dest));
    cr_assert_lt(file_bytes(dest), file_bytes(F.db) * 9 / 10, "the free pages were copied");
    cr_assert_eq(pv_db_open(dest, PV_OPEN_RDONLY, &copy, NULL, 0), 0);
    cr_assert_eq(pv_db_verify(copy), 0, "%s", pv_db_errmsg(copy));
    cr_assert_eq(pv_db_info(db, &a), 0);
    cr_assert_eq(pv_db_info(copy, &b), 0);
    cr_assert_eq(b.items, a.items);
    cr_assert_eq(b.compact_only, 1);
    cr_assert_eq(pv_items(db, &items, &nitems), 0);
    for (size_t i = 0; i < nitems; i += 97)
        for (int exact = 0; exact < 2; exact++) {
            uint32_t x[10], y[10];
            top10(db, items[i].path, exact, x);
            top10(copy, items[i].path, exact, y);
            cr_assert_arr_eq(x, y, sizeof x, "item %zu, exact %d", i, exact);
        }
    pv_items_free(items, nitems);
    pv_db_close(copy);

    /* never over an existing folder; nothing left where it cannot be made */
    cr_assert_eq(pv_db_backup(db, dest), PV_EEXIST);
    cr_assert(strstr(pv_db_errmsg(db), "copy.pvdb"), "%s", pv_db_errmsg(db));
    gen_path(nodir, F.dir, "no/such/dir.pvdb");
    cr_assert_eq(pv_db_backup(db, nodir), PV_EIO);
    cr_assert(strstr(pv_db_errmsg(db), "no/such"), "%s", pv_db_errmsg(db));
    pv_db_close(db);

    /* a copy while another process adds: each one whole and consistent */
    gen_path(late, F.imgs, "late");
    cr_assert_eq(mkdir(late, 0755), 0);
    cr_assert_eq(gen_picture_set(late, "q", 1500, 16, 16, "png", 9011), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        pv_db *w = NULL;
        const char *paths[1] = {late};
        pv_add_opts ao = {.threads = 1, .commit_seconds = 0.05};
        if (pv_db_open(F.db, 0, &w, NULL, 0) != 0)
            _exit(2);
        int rc = pv_add(w, paths, 1, &ao, NULL);
        pv_db_close(w);
        _exit(rc == 0 ? 0 : 3);
    }
    cr_assert_eq(pv_db_open(F.db, PV_OPEN_RDONLY, &db, NULL, 0), 0);
    int copies = 0, st = 0;
    for (int done = 0; !done; copies++) {
        done = waitpid(pid, &st, WNOHANG) == pid;
        char name[32];
        snprintf(name, sizeof name, "during-%d.pvdb", copies);
        gen_path(dest2, F.dir, name);
        cr_assert_eq(pv_db_backup(db, dest2), 0, "%s", pv_db_errmsg(db));
        cr_assert_eq(pv_db_open(dest2, PV_OPEN_RDONLY, &copy, NULL, 0), 0);
        cr_assert_eq(pv_db_verify(copy), 0, "copy %d: %s", copies, pv_db_errmsg(copy));
        cr_assert_eq(pv_db_info(copy, &b), 0);
        cr_assert(b.items >= 2200 && b.items <= 3700, "%llu", (unsigned long long)b.items);
        pv_db_close(copy);
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer failed: %d", st);
    cr_assert_eq(b.items, 3700, "the last copy, after the writer, has everything");
    cr_log_info("codes: %d copies taken while another process added", copies);
    pv_db_close(db);

    /* the command line */
    cr_assert_eq(cli_fix_run(&F, NULL, "backup", F.db, dest, (char *)NULL), 1);
    cr_assert(strstr(F.err, "already exists"), "%s", F.err);
    gen_path(dest2, F.dir, "cli.pvdb");
    cr_assert_eq(cli_fix_run(&F, NULL, "backup", F.db, dest2, (char *)NULL), 0, "%s", F.err);
    cr_assert(strstr(F.out, "3700 items"), "%s", F.out);
}
