/*
 * test_records.c - damaged records of a real database (issue 12, item 6):
 * every record read is checked against docs/FORMAT.md's limits before it is
 * used, a bad one is PV_ECORRUPT with a message naming it, never a crash and
 * never a wrong answer (a malformed graph state read as "no graph"). The
 * records are damaged with plain LMDB (gen_db_put), as a bad disk or a
 * hostile file would hold them; tests/fuzz/fuzz_records.c does the same at
 * random.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], dbdir[GEN_PATH_MAX];

static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(imgs, dir, "imgs");
    gen_path(dbdir, dir, "t.pvdb");
    cr_assert_eq(mkdir(imgs, 0755), 0);
}

static void teardown(void) { gen_rmtree(dir); }

TestSuite(records, .init = setup, .fini = teardown);

/* A database of n seeded PNGs (img00.png ...), closed again. */
static void build_db(int n)
{
    char err[512], p[GEN_PATH_MAX];
    const char *paths[1] = {imgs};
    pv_db *db = NULL;
    pv_add_stats st;
    uint8_t *px = malloc(64 * 48 * 3);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%02d.png", i);
        gen_pattern(64, 48, 3, (uint32_t)(300 + i), px);
        gen_path(p, imgs, name);
        cr_assert_eq(gen_write_png(p, 64, 48, GEN_PNG_RGB, 8, px, NULL), 0);
    }
    free(px);
    cr_assert_eq(pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, (uint64_t)n);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);
}

static pv_db *reopen(void)
{
    char err[512];
    pv_db *db = NULL;
    cr_assert_eq(pv_db_open(dbdir, 0, &db, err, sizeof err), 0, "%s", err);
    return db;
}

/* The vector of image i, for queries. */
static float *vector_of(pv_db *db, int i)
{
    char name[32], p[GEN_PATH_MAX];
    float *v = malloc(784 * sizeof *v);
    snprintf(name, sizeof name, "img%02d.png", i);
    gen_path(p, imgs, name);
    cr_assert_eq(pv_embed_file(db, p, v, 784), 0, "%s", pv_db_errmsg(db));
    return v;
}

/* Item id's record with its path length field set to len and len bytes of
 * path behind it (the record's total size agrees, so only the limit is
 * broken). */
static void put_item_path_len(uint32_t id, uint16_t len)
{
    uint8_t *old = NULL, *rec;
    size_t n = 0;
    cr_assert_eq(gen_db_get(dbdir, "items", &id, 4, &old, &n), 0);
    cr_assert_geq(n, 46);
    rec = malloc(46 + (size_t)len);
    memcpy(rec, old, 46);
    rec[44] = (uint8_t)len;
    rec[45] = (uint8_t)(len >> 8);
    rec[46] = '/';
    memset(rec + 47, 'a', (size_t)len - 1);
    cr_assert_eq(gen_db_put(dbdir, "items", &id, 4, rec, 46 + (size_t)len), 0);
    free(old);
    free(rec);
}

/* `pixvec check` on a record whose path length is 3,000: the path was
 * copied into a 481-byte stack buffer after checking only the record's
 * total size (AddressSanitizer: stack-buffer-overflow). */
Test(records, item_path_longer_than_the_limit)
{
    pv_db *db;
    pv_item *items = NULL;
    size_t n = 0;
    build_db(4);
    put_item_path_len(1, 3000);
    db = reopen();
    cr_assert_eq(pv_db_verify(db), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "item 1: path length 3000 exceeds 480"),
              "the message names the record: %s", pv_db_errmsg(db));
    cr_assert_eq(pv_items(db, &items, &n), PV_ECORRUPT, "ls lists no cut path");
    cr_assert(strstr(pv_db_errmsg(db), "item 1"), "%s", pv_db_errmsg(db));
    pv_db_close(db);
}

/* add meets the damaged record (the re-add looks up every stored path) and
 * says which record it is, not only "malformed database record". */
Test(records, add_names_the_damaged_record)
{
    const char *paths[1] = {imgs};
    pv_add_stats st;
    build_db(4);
    put_item_path_len(1, 3000);
    pv_db *db = reopen();
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "item 1: path length 3000 exceeds 480"), "%s",
              pv_db_errmsg(db));
    pv_db_close(db);
}

/* A malformed hnsw_entry (3 bytes, not 8) read as "no graph": info showed
 * 0 nodes and a query said the database was empty, exit 0. */
Test(records, malformed_hnsw_entry_is_corrupt_not_empty)
{
    pv_db *db;
    pv_info info;
    pv_hit *hits = NULL;
    size_t n = 0;
    float *v;
    build_db(4);
    cr_assert_eq(gen_db_put(dbdir, "meta", "hnsw_entry", 10, "\x01\x00\x00", 3), 0);
    db = reopen();
    v = vector_of(db, 0);
    cr_assert_eq(pv_db_info(db, &info), PV_ECORRUPT, "info must not show an empty graph");
    cr_assert(strstr(pv_db_errmsg(db), "hnsw_entry"), "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_query_vector(db, v, 784, NULL, &hits, &n), PV_ECORRUPT,
                 "the query must not answer 'empty'");
    cr_assert(strstr(pv_db_errmsg(db), "hnsw_entry"), "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_verify(db), PV_ECORRUPT);
    free(v);
    pv_db_close(db);
}

/* A database with items but no hnsw_entry: the key is written by the
 * first insert, so its absence is damage, not an empty graph (a missing
 * meta key came back as PV_ECORRUPT and callers read that as absent). */
Test(records, missing_hnsw_entry_with_items_is_corrupt)
{
    pv_db *db;
    pv_info info;
    pv_hit *hits = NULL;
    size_t n = 0;
    float *v;
    build_db(3);
    cr_assert_eq(gen_db_put(dbdir, "meta", "hnsw_entry", 10, NULL, 0), 0);
    db = reopen();
    v = vector_of(db, 0);
    cr_assert_eq(pv_db_info(db, &info), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "meta hnsw_entry: missing"), "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_query_vector(db, v, 784, NULL, &hits, &n), PV_ECORRUPT);
    free(v);
    pv_db_close(db);
}

/* A graph state out of range, a level-0 link to no node, a truncated
 * chunk of node records: errors naming the record, never a search past
 * the graph. */
Test(records, damaged_graph_records)
{
    pv_db *db;
    pv_hit *hits = NULL;
    size_t n = 0;
    uint8_t *rec = NULL, *copy;
    size_t len = 0;
    uint32_t c0 = 0, rec_bytes = (1 + 32) * 4;
    uint64_t big = 9;
    float *v;
    build_db(4);
    cr_assert_eq(gen_db_get(dbdir, "hnsw", &c0, 4, &rec, &len), 0);
    cr_assert_eq(len, 4 * rec_bytes);
    copy = malloc(len);

    /* hnsw_nodes beyond next_id */
    uint8_t *old_nodes = NULL;
    size_t nl = 0;
    cr_assert_eq(gen_db_get(dbdir, "meta", "hnsw_nodes", 10, &old_nodes, &nl), 0);
    cr_assert_eq(gen_db_put(dbdir, "meta", "hnsw_nodes", 10, &big, 8), 0);
    db = reopen();
    v = vector_of(db, 1);
    cr_assert_eq(pv_query_vector(db, v, 784, NULL, &hits, &n), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "meta hnsw_nodes: 9 nodes, but 4 ids"), "%s",
              pv_db_errmsg(db));
    pv_db_close(db);
    cr_assert_eq(gen_db_put(dbdir, "meta", "hnsw_nodes", 10, old_nodes, nl), 0);
    free(old_nodes);

    /* node 2's first link names node 4000 */
    memcpy(copy, rec, len);
    uint32_t cnt = 1, bad = 4000;
    memcpy(copy + 2 * rec_bytes, &cnt, 4);
    memcpy(copy + 2 * rec_bytes + 4, &bad, 4);
    cr_assert_eq(gen_db_put(dbdir, "hnsw", &c0, 4, copy, len), 0);
    db = reopen();
    cr_assert_eq(pv_db_verify(db), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "hnsw node 2 level 0: a link to no node: 4000"), "%s",
              pv_db_errmsg(db));
    /* every search of this small graph expands node 2 (k below the node
     * count: at k >= nodes the query scans the vectors instead) */
    cr_assert_eq(pv_query_vector(db, v, 784, &(pv_query_opts){.k = 3}, &hits, &n),
                 PV_ECORRUPT);
    pv_db_close(db);

    /* the chunk cut short of the nodes */
    cr_assert_eq(gen_db_put(dbdir, "hnsw", &c0, 4, rec, len - rec_bytes), 0);
    db = reopen();
    cr_assert_eq(pv_query_vector(db, v, 784, NULL, &hits, &n), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "hnsw chunk 0:"), "%s", pv_db_errmsg(db));
    pv_db_close(db);
    free(v);
    free(rec);
    free(copy);
}

/* IVF lists and the stored clustering: a malformed ivf_nlist was read as
 * "no lists"; a damaged record is an error for info, the IVF query and
 * cluster show alike. */
Test(records, damaged_ivf_and_cluster_records)
{
    pv_db *db;
    pv_info info;
    pv_hit *hits = NULL;
    pv_clustering *cl = NULL;
    size_t n = 0;
    uint32_t id = 6, list = 0;
    float *v;
    build_db(6);
    db = reopen();
    cr_assert_eq(pv_ivf_train(db, &(pv_cluster_opts){.k = 2}, NULL), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_cluster_train(db, &(pv_cluster_opts){.k = 2}, NULL), 0, "%s",
                 pv_db_errmsg(db));
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);

    cr_assert_eq(gen_db_put(dbdir, "meta", "ivf_nlist", 9, "\x02\x00\x00\x00", 4), 0);
    db = reopen();
    v = vector_of(db, 0);
    cr_assert_eq(pv_db_info(db, &info), PV_ECORRUPT, "not 'no IVF lists'");
    cr_assert(strstr(pv_db_errmsg(db), "meta ivf_nlist: 4 bytes, expected 8"), "%s",
              pv_db_errmsg(db));
    cr_assert_eq(pv_query_vector(db, v, 784, &(pv_query_opts){.ivf = 1}, &hits, &n),
                 PV_ECORRUPT);
    pv_db_close(db);
    uint64_t three = 3;
    cr_assert_eq(gen_db_put(dbdir, "meta", "ivf_nlist", 9, &three, 8), 0);
    db = reopen();
    cr_assert_eq(pv_db_info(db, &info), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "ivf_nlist: 3 lists, but 2 centroids"), "%s",
              pv_db_errmsg(db));
    pv_db_close(db);
    uint64_t two = 2;
    cr_assert_eq(gen_db_put(dbdir, "meta", "ivf_nlist", 9, &two, 8), 0);

    /* a NaN in centroid 1: check passed it, and the IVF query failed with
     * "NaN or infinity in a vector" (the fuzz target's find) */
    uint32_t one = 1;
    uint8_t *cent = NULL;
    size_t centn = 0;
    cr_assert_eq(gen_db_get(dbdir, "ivf_centroids", &one, 4, &cent, &centn), 0);
    memcpy(cent + 8, "\x00\x00\xc0\x7f", 4);
    cr_assert_eq(gen_db_put(dbdir, "ivf_centroids", &one, 4, cent, centn), 0);
    db = reopen();
    cr_assert_eq(pv_db_verify(db), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "ivf centroid 1: value 2 is not finite"), "%s",
              pv_db_errmsg(db));
    pv_db_close(db);
    memset(cent + 8, 0, 4);
    cr_assert_eq(gen_db_put(dbdir, "ivf_centroids", &one, 4, cent, centn), 0);
    free(cent);

    /* a list naming id 6 of 6 */
    cr_assert_eq(gen_db_put(dbdir, "ivf_lists", &list, 4, &id, 4), 0);
    db = reopen();
    cr_assert_eq(pv_query_vector(db, v, 784, &(pv_query_opts){.ivf = 1, .nprobe = 2}, &hits,
                                 &n),
                 PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "ivf list 0: id 6, but next id is 6"), "%s",
              pv_db_errmsg(db));
    pv_db_close(db);
    cr_assert_eq(gen_db_put(dbdir, "ivf_lists", &list, 4, NULL, 0), 0);

    /* the clustering record cut short */
    uint8_t *cr = NULL;
    size_t crn = 0;
    cr_assert_eq(gen_db_get(dbdir, "meta", "cluster", 7, &cr, &crn), 0);
    cr_assert_eq(gen_db_put(dbdir, "meta", "cluster", 7, cr, crn - 4), 0);
    db = reopen();
    cr_assert_eq(pv_db_info(db, &info), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "meta cluster:"), "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_cluster_get(db, &cl), PV_ECORRUPT);
    pv_db_close(db);
    /* a NaN centroid */
    memcpy(cr + crn - 4, "\x00\x00\xc0\x7f", 4);
    cr_assert_eq(gen_db_put(dbdir, "meta", "cluster", 7, cr, crn), 0);
    db = reopen();
    cr_assert_eq(pv_cluster_get(db, &cl), PV_ECORRUPT);
    cr_assert(strstr(pv_db_errmsg(db), "not finite"), "%s", pv_db_errmsg(db));
    pv_db_close(db);
    free(cr);
    free(v);
}
