/*
 * test_store.c - the LMDB layer: create/open, format checks that change
 * nothing, records round trip, vector chunks, and map growth.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"
#include "pixvec.h"
#include "store.h"

static char dir[GEN_PATH_MAX], dbdir[GEN_PATH_MAX];

static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(dbdir, dir, "db");
}

static void teardown(void) { gen_rmtree(dir); }

static store_schema schema(uint32_t dim, uint32_t chunk)
{
    store_schema s;
    memset(&s, 0, sizeof s);
    s.dim = dim;
    s.chunk = chunk;
    strcpy(s.embedder, "pixels");
    s.emb_size = 28;
    s.hnsw_m = 16;
    s.hnsw_efc = 200;
    return s;
}

TestSuite(store, .init = setup, .fini = teardown);

/* Items 0..n-1 ("/i/ID.png", hash byte ID) and counters that agree with
 * them (every id below next_id has a record: the store checks it). */
static void put_items(store_txn *t, uint32_t n)
{
    for (uint32_t id = 0; id < n; id++) {
        char p[32];
        store_item it;
        memset(&it, 0, sizeof it);
        memset(it.hash, (int)id, 16);
        snprintf(p, sizeof p, "/i/%u.png", id);
        it.path = p;
        it.path_len = (uint16_t)strlen(p);
        cr_assert_eq(store_item_put(t, id, &it), 0);
    }
    store_counts c = {n, n, 0};
    cr_assert_eq(store_counts_put(t, &c), 0);
}

Test(store, create_then_open_keeps_schema)
{
    store *st = NULL;
    store_schema s = schema(784, 16);
    char err[256];
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0, "%s", err);
    store_close(st);
    st = NULL;
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), PV_EEXIST);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_get_schema(st)->dim, 784);
    cr_assert_eq(store_get_schema(st)->chunk, 16);
    cr_assert_str_eq(store_get_schema(st)->embedder, "pixels");
    store_close(st);
}

Test(store, not_a_database)
{
    store *st = NULL;
    char err[256], p[GEN_PATH_MAX];
    cr_assert_eq(store_open(dbdir, 0, &st, err, sizeof err), PV_ENOTDB);
    /* an empty directory: no data.mdb may be created by the attempt */
    mkdir(dbdir, 0755);
    cr_assert_eq(store_open(dbdir, 0, &st, err, sizeof err), PV_ENOTDB);
    gen_path(p, dbdir, "data.mdb");
    cr_assert_neq(access(p, F_OK), 0, "opening must not create data.mdb");
    /* garbage in data.mdb */
    cr_assert_eq(gen_write_bytes(p, "this is not lmdb at all, just some text.....", 44), 0);
    cr_assert_eq(store_open(dbdir, 0, &st, err, sizeof err), PV_ENOTDB);
    cr_assert(strstr(err, dbdir) != NULL, "message names the path: %s", err);
}


Test(store, newer_format_refused_and_untouched)
{
    store *st = NULL;
    store_schema s = schema(8, 4);
    char err[256], p[GEN_PATH_MAX];
    uint8_t *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0);
    store_close(st);
    cr_assert_eq(gen_db_set_format(dbdir, PV_FORMAT_VERSION + 1), 0);
    gen_path(p, dbdir, "data.mdb");
    cr_assert_eq(gen_read_bytes(p, &before, &nb), 0);
    cr_assert_eq(store_open(dbdir, 0, &st, err, sizeof err), PV_ENEWER);
    cr_assert(strstr(err, "newer") != NULL, "%s", err);
    cr_assert_eq(gen_read_bytes(p, &after, &na), 0);
    cr_assert_eq(nb, na);
    cr_assert_eq(memcmp(before, after, nb), 0, "data.mdb changed");
    free(before);
    free(after);
}

Test(store, records_round_trip)
{
    store *st = NULL;
    store_txn *t = NULL;
    store_schema s = schema(4, 2);
    store_item it, got;
    uint8_t h[16];
    uint32_t ids[4], id = 0;
    size_t n = 0;
    char err[256];
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0);
    memset(&it, 0, sizeof it);
    memset(h, 7, 16);
    it.size = 12345;
    it.mtime_ns = -5;
    memcpy(it.hash, h, 16);
    it.width = 640;
    it.height = 480;
    it.path = "/a/b.png";
    it.path_len = 8;
    cr_assert_eq(store_txn_begin(st, 1, &t), 0);
    put_items(t, 10);
    cr_assert_eq(store_item_put(t, 3, &it), 0);
    cr_assert_eq(store_path_put(t, "/a/b.png", 3), 0);
    cr_assert_eq(store_hash_add(t, h, 3), 0);
    cr_assert_eq(store_hash_add(t, h, 9), 0);
    cr_assert_eq(store_txn_commit(t), 0);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    cr_assert_eq(store_item_get(t, 3, &got), 0);
    cr_assert_eq(got.size, 12345);
    cr_assert_eq(got.mtime_ns, -5);
    cr_assert_eq(got.width, 640);
    cr_assert_eq(got.height, 480);
    cr_assert_eq(got.path_len, 8);
    cr_assert_eq(memcmp(got.path, "/a/b.png", 8), 0);
    cr_assert_eq(memcmp(got.hash, h, 16), 0);
    cr_assert_eq(store_item_get(t, 10, &got), PV_ENOTFOUND, "beyond next_id: absent");
    cr_assert_eq(store_path_get(t, "/a/b.png", &id), 0);
    cr_assert_eq(id, 3);
    cr_assert_eq(store_path_get(t, "/a/c.png", &id), PV_ENOTFOUND);
    cr_assert_eq(store_hash_get(t, h, ids, 4, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(ids[0] == 3 && ids[1] == 9);
    store_txn_abort(t);
    store_close(st);
}

Test(store, vectors_in_chunks)
{
    store *st = NULL;
    store_txn *t = NULL;
    store_schema s = schema(3, 4);
    float v[10 * 3], out[3];
    const float *const *ptrs;
    const uint32_t *counts;
    uint32_t nch;
    char err[256];
    for (int i = 0; i < 30; i++)
        v[i] = (float)i;
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0);
    /* appended in three uneven batches that cross chunk edges */
    cr_assert_eq(store_txn_begin(st, 1, &t), 0);
    put_items(t, 10); /* the counters the chunks are checked against */
    cr_assert_eq(store_vec_append(t, 0, 3, v), 0);
    cr_assert_eq(store_vec_append(t, 3, 2, v + 9), 0);
    cr_assert_eq(store_txn_commit(t), 0);
    cr_assert_eq(store_txn_begin(st, 1, &t), 0);
    cr_assert_eq(store_vec_append(t, 5, 5, v + 15), 0);
    cr_assert_eq(store_vec_append(t, 11, 1, v), PV_ECORRUPT, "a gap is refused");
    store_txn_abort(t);
    cr_assert_eq(store_txn_begin(st, 1, &t), 0);
    cr_assert_eq(store_vec_append(t, 5, 5, v + 15), 0);
    cr_assert_eq(store_txn_commit(t), 0);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    cr_assert_eq(store_vec_chunks(t, &ptrs, &counts, &nch), 0);
    cr_assert_eq(nch, 3);
    cr_assert(counts[0] == 4 && counts[1] == 4 && counts[2] == 2);
    for (uint32_t id = 0; id < 10; id++) {
        cr_assert_eq(store_vec_get(t, id, out), 0);
        cr_assert_eq(memcmp(out, v + id * 3, sizeof out), 0, "vector %u", id);
    }
    cr_assert_eq(store_vec_get(t, 10, out), PV_ENOTFOUND);
    store_txn_abort(t);
    store_close(st);
}

Test(store, map_grows_when_full)
{
    store *st = NULL;
    store_txn *t = NULL;
    const uint32_t dim = 4096, batch = 200, total = 6000; /* 98 MB of vectors */
    store_schema s = schema(dim, 64);
    float *v = malloc((size_t)batch * dim * sizeof *v), out[4096];
    uint64_t disk0, map0, disk1, map1;
    int grew = 0;
    char err[256];
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0);
    cr_assert_eq(store_sizes(st, &disk0, &map0), 0);
    for (uint32_t first = 0; first < total;) {
        int rc;
        for (uint32_t i = 0; i < batch * dim; i++)
            v[i] = (float)(first + i / dim);
        cr_assert_eq(store_txn_begin(st, 1, &t), 0);
        rc = store_vec_append(t, first, batch, v);
        if (rc == 0) {
            rc = store_txn_commit(t);
        } else {
            store_txn_abort(t);
        }
        if (rc == STORE_FULL) {
            cr_assert_eq(store_grow(st), 0);
            grew++;
            continue; /* redo the same batch */
        }
        cr_assert_eq(rc, 0);
        first += batch;
    }
    cr_assert_gt(grew, 0, "the map never filled up");
    cr_assert_eq(store_sizes(st, &disk1, &map1), 0);
    cr_assert_gt(map1, map0);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    for (uint32_t id = 0; id < total; id += 997) {
        cr_assert_eq(store_vec_get(t, id, out), 0);
        cr_assert_eq(out[0], (float)id);
        cr_assert_eq(out[dim - 1], (float)id);
    }
    store_txn_abort(t);
    store_close(st);
    free(v);
}

/* An absent meta key is PV_ENOTFOUND; a present one of the wrong size is
 * PV_ECORRUPT (the two were both PV_ECORRUPT, and callers read that as
 * absent). */
Test(store, meta_absent_is_notfound_wrong_size_is_corrupt)
{
    store *st = NULL;
    store_txn *t = NULL;
    store_schema s = schema(4, 2);
    uint64_t v = 0;
    const void *p;
    size_t n;
    char err[256];
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0);
    cr_assert_eq(store_txn_begin(st, 1, &t), 0);
    cr_assert_eq(store_meta_get_u64(t, "hnsw_entry", &v), PV_ENOTFOUND);
    cr_assert_eq(store_meta_get_blob(t, "cluster", &p, &n), PV_ENOTFOUND);
    cr_assert_eq(store_meta_put_blob(t, "hnsw_entry", "abc", 3), 0);
    cr_assert_eq(store_meta_get_u64(t, "hnsw_entry", &v), PV_ECORRUPT);
    cr_assert_eq(store_meta_put_u64(t, "hnsw_entry", 7), 0);
    cr_assert_eq(store_meta_get_u64(t, "hnsw_entry", &v), 0);
    cr_assert_eq(v, 7);
    store_txn_abort(t);
    store_close(st);
}

/* Records that break the layout, written as a damaged file would hold
 * them: each is PV_ECORRUPT where it is parsed, with words naming it, and
 * a caller never sees a path longer than PV_MAX_PATH_BYTES. */
Test(store, damaged_records_are_corrupt_and_named)
{
    store *st = NULL;
    store_txn *t = NULL;
    store_schema s = schema(4, 2);
    store_item it;
    store_counts c;
    uint8_t h[16];
    uint32_t ids[4], id, key;
    size_t n;
    char err[256];
    float v[4 * 4] = {0};
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0);
    cr_assert_eq(store_txn_begin(st, 1, &t), 0);
    put_items(t, 4);
    cr_assert_eq(store_vec_append(t, 0, 4, v), 0);
    cr_assert_eq(store_txn_commit(t), 0);
    store_close(st);

    /* item 1: path length 3000, and the value long enough to hold it */
    uint8_t *rec = calloc(1, 46 + 3000);
    rec[44] = 3000 & 0xff;
    rec[45] = 3000 >> 8;
    memset(rec + 46, 'a', 3000);
    rec[46] = '/';
    id = 1;
    cr_assert_eq(gen_db_put(dbdir, "items", &id, 4, rec, 46 + 3000), 0);
    /* item 2: its path length says 10, the value holds 5 */
    rec[44] = 10;
    rec[45] = 0;
    id = 2;
    cr_assert_eq(gen_db_put(dbdir, "items", &id, 4, rec, 46 + 5), 0);
    free(rec);
    /* a hash entry naming id 7 (next id is 4) */
    memset(h, 1, 16);
    id = 7;
    cr_assert_eq(gen_db_put(dbdir, "hashes", h, 16, &id, 4), 0);
    cr_assert_eq(gen_db_put(dbdir, "paths", "/x.png", 6, &id, 4), 0);

    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    cr_assert_str_eq(store_txn_errmsg(t), "");
    cr_assert_eq(store_item_get(t, 0, &it), 0);
    cr_assert_eq(store_item_get(t, 1, &it), PV_ECORRUPT);
    cr_assert_str_eq(store_txn_errmsg(t), "item 1: path length 3000 exceeds 480");
    cr_assert_eq(store_item_get(t, 2, &it), PV_ECORRUPT);
    cr_assert(strstr(store_txn_errmsg(t), "item 2: record of 51 bytes"), "%s",
              store_txn_errmsg(t));
    cr_assert_eq(store_item_get(t, 4, &it), PV_ENOTFOUND);
    cr_assert_eq(store_hash_get(t, h, ids, 4, &n), PV_ECORRUPT);
    cr_assert(strstr(store_txn_errmsg(t), "names item 7, but next id is 4"), "%s",
              store_txn_errmsg(t));
    cr_assert_eq(store_path_get(t, "/x.png", &id), PV_ECORRUPT);
    cr_assert_eq(store_path_get(t, "/y.png", &id), PV_ENOTFOUND);
    store_txn_abort(t);
    store_close(st);

    /* a hole among the items, counters that disagree, a vector chunk of
     * part of a vector */
    id = 3;
    cr_assert_eq(gen_db_put(dbdir, "items", &id, 4, NULL, 0), 0);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    cr_assert_eq(store_counts_get(t, &c), PV_ECORRUPT);
    cr_assert_str_eq(store_txn_errmsg(t), "meta next_id: 4, but 3 item records");
    store_txn_abort(t);
    store_close(st);
    uint32_t three = 3;
    uint8_t b8[8] = {3};
    cr_assert_eq(gen_db_put(dbdir, "meta", "next_id", 7, &three, 4), 0);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    cr_assert_eq(store_counts_get(t, &c), PV_ECORRUPT, "4 live + 0 removed is not 3");
    store_txn_abort(t);
    store_close(st);
    cr_assert_eq(gen_db_put(dbdir, "meta", "live", 4, b8, 8), 0);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    cr_assert_eq(store_counts_get(t, &c), 0, "%s", store_txn_errmsg(t));
    const float *const *ptrs;
    const uint32_t *counts;
    uint32_t nch;
    cr_assert_eq(store_vec_chunks(t, &ptrs, &counts, &nch), PV_ECORRUPT,
                 "4 vectors for next id 3");
    cr_assert_str_eq(store_txn_errmsg(t), "vectors: 4 stored, but next id is 3");
    store_txn_abort(t);
    store_close(st);
    key = 1;
    cr_assert_eq(gen_db_put(dbdir, "vectors", &key, 4, v, 10), 0);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_txn_begin(st, 0, &t), 0);
    cr_assert_eq(store_vec_chunks(t, &ptrs, &counts, &nch), PV_ECORRUPT);
    cr_assert(strstr(store_txn_errmsg(t), "vectors chunk 1: 10 bytes"), "%s",
              store_txn_errmsg(t));
    cr_assert_eq(store_vec_get(t, 2, v), PV_ECORRUPT);
    store_txn_abort(t);
    store_close(st);
}

/* The schema in meta is checked at open: a value out of range or of the
 * wrong size is a damaged database, and the message names the key. */
Test(store, damaged_schema_refused_at_open)
{
    store *st = NULL;
    store_schema s = schema(4, 2);
    char err[256];
    uint32_t zero = 0;
    cr_assert_eq(store_create(dbdir, &s, &st, err, sizeof err), 0);
    store_close(st);
    st = NULL;
    cr_assert_eq(gen_db_put(dbdir, "meta", "hnsw_m", 6, &zero, 4), 0);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "meta hnsw_m: 0 outside 2..128"), "%s", err);
    cr_assert_eq(gen_db_put(dbdir, "meta", "hnsw_m", 6, "\x10\x00", 2), 0);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "meta hnsw_m: 2 bytes, expected 4"), "%s", err);
    cr_assert_eq(gen_db_put(dbdir, "meta", "hnsw_m", 6, NULL, 0), 0);
    cr_assert_eq(store_open(dbdir, 1, &st, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "meta hnsw_m: missing"), "%s", err);
}
