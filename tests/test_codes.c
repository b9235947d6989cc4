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
    cr_assert_eq(in.format, 2);
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

/* The damage is named; a clean database with float32 only stays format 1. */
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
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.format, 1);
    cr_assert_eq(in.vectors, PV_VECTORS_F32);
    cr_assert_eq(in.code_bytes, 0);
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

/* Codes only: below PV_I8_TRAIN_MIN the float32 vectors are kept; at it
 * they are coded and dropped, later batches are inserted on codes; every
 * operation runs (queries, exact scan, IVF, dups, clusters, vacuum, check),
 * the answers close to a float32 database of the same pictures, and the
 * database smaller. */
Test(codes, i8_only_drops_float32_and_keeps_working)
{
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
    add_set(db, "b", 1200, 2011);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.coded, 2200);
    cr_assert_eq(gen_db_get(F.db, "vectors", &chunk0, 4, &v, &n), -1, "float32 dropped");
    cr_assert_eq(meta_u64("vec_dropped"), 1);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    const uint64_t trained = meta_u64("codes_trained"); /* the batch that reached 1024 */
    cr_assert(trained >= PV_I8_TRAIN_MIN && trained <= 2200, "%llu", (unsigned long long)trained);
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
