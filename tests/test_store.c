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
    cr_assert_eq(store_item_get(t, 4, &got), PV_ENOTFOUND);
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
