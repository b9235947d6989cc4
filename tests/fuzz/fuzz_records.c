/*
 * fuzz_records.c - libFuzzer target over every record type of a real
 * database (issue 12, item 6): no damaged record may crash pixvec or make it
 * answer wrongly; it is an error code and a message.
 *
 * At start the library makes a seed database in a temporary folder: a few
 * generated images (one of them removed, so there are tombstones), the HNSW
 * graph, IVF lists, a stored clustering and a stored UMAP map; its records, table by table,
 * are listed. Each input is a list of mutations of that database's records
 * through plain LMDB (so the file stays a valid LMDB environment and only
 * pixvec's own records are damaged), applied to a fresh copy:
 *
 *   byte 0      table (mod the 10 tables)
 *   bytes 1-2   record (mod the table's records; one past the end: a new
 *               key, the record count as a u32 key or "fuzz" in meta/paths)
 *   byte 3      what to do (mod 6): 0 replace the value by the data,
 *               1 make it arg bytes long (cut, or grown with the data
 *               repeated, or zeros), 2 append the data, 3 write the data
 *               over it at offset arg, 4 delete the record, 5 add the data as
 *               a second value (dupsort tables: 4 bytes; else as 0)
 *   bytes 4-5   arg (little-endian u16)
 *   byte 6      n, then n bytes of data
 *
 * repeated while bytes remain (at most 8). Then the copy is opened and every
 * reading operation runs: check (pv_db_verify), info, ls (pv_items), queries
 * by HNSW, exact and IVF, the exact and the approximate duplicate scans, and
 * cluster show (pv_cluster_get), the stored map read back (pv_map_build,
 * not stored). Each must return 0 or a negative PV_E*
 * code, never crash (AddressSanitizer, UndefinedBehaviorSanitizer). The
 * oracle for a wrong answer: a database that passes check must answer every
 * operation (an IVF query may say there are no lists), with hits that are
 * live ids, sorted, scored in [-1, 1], and `ls` as many items as info.
 *
 * Build: CC=clang cmake -DPV_FUZZ=ON (see scripts/ci/fuzz.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"
#include "pixvec.h"

#define NIMG 10
#define MAX_MUTATIONS 8

static const char *const tables[] = {"meta",   "items",         "paths",
                                     "hashes", "vectors",       "hnsw",
                                     "hnsw_upper", "ivf_centroids", "ivf_lists",
                                     "codes"};
#define NTABLES (sizeof tables / sizeof tables[0])

static unsigned table_flags(unsigned t)
{
    switch (t) {
    case 0: case 2: return 0;
    case 3: return MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
    case 8: return MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
    default: return MDB_INTEGERKEY;
    }
}

/* The seed's keys, per table (a dupsort key once). */
typedef struct keylist {
    uint8_t **key;
    size_t *len;
    size_t n;
} keylist;

static char root[GEN_PATH_MAX], seed_db[GEN_PATH_MAX], work_db[GEN_PATH_MAX];
static uint8_t *seed_data; /* seed_db/data.mdb */
static size_t seed_len;
static keylist keys[NTABLES];
static float qvec[NIMG][784];

__attribute__((noreturn)) static void die(const char *what)
{
    fprintf(stderr, "fuzz_records: setup: %s\n", what);
    abort();
}

static void make_seed(void)
{
    char imgs[GEN_PATH_MAX], p[GEN_PATH_MAX], err[512];
    const char *paths[1] = {imgs};
    uint8_t px[40 * 40 * 3];
    pv_db *db = NULL;
    pv_add_stats st;
    gen_path(imgs, root, "imgs");
    if (mkdir(imgs, 0755) != 0)
        die("mkdir");
    for (int i = 0; i < NIMG; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%02d.png", i);
        gen_pattern(40, 40, 3, (uint32_t)(700 + i / 2), px); /* near-copy pairs */
        px[i] ^= 0x20;
        gen_path(p, imgs, name);
        if (gen_write_png(p, 40, 40, GEN_PNG_RGB, 8, px, NULL) != 0)
            die("png");
    }
    /* M = 4: level-0 records of 8 links, and upper levels for some nodes;
     * float16 copies (format 2): the codes table and its meta records
     * (int8 would need 1,024 images before its first codes) */
    if (pv_db_create(seed_db, NULL,
                     &(pv_index_opts){.M = 4, .ef_construction = 16, .vectors = PV_VECTORS_F16},
                     &db, err, sizeof err) != 0)
        die(err);
    if (pv_add(db, paths, 1, NULL, &st) != 0 || st.added != NIMG)
        die(pv_db_errmsg(db));
    for (int i = 0; i < NIMG; i++) {
        snprintf(p, sizeof p, "%s/img%02d.png", imgs, i);
        if (pv_embed_file(db, p, qvec[i], 784) != 0)
            die(pv_db_errmsg(db));
    }
    snprintf(p, sizeof p, "%s/img%02d.png", imgs, 3);
    if (pv_remove(db, p) != 0) /* a tombstone */
        die(pv_db_errmsg(db));
    if (pv_ivf_train(db, &(pv_cluster_opts){.k = 3}, NULL) != 0 ||
        pv_cluster_train(db, &(pv_cluster_opts){.k = 2, .standardize = 1}, NULL) != 0 ||
        pv_db_verify(db) != 0)
        die(pv_db_errmsg(db));
    pv_map *m = NULL; /* a stored map record (meta map_umap_2) */
    if (pv_map_build(db, &(pv_map_opts){.n_neighbors = 4, .epochs = 20}, &m) != 0)
        die(pv_db_errmsg(db));
    pv_map_free(m);
    pv_db_close(db);
}

static void cleanup(void) { gen_rmtree(root); }

static void list_keys(void)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
        mdb_env_open(env, seed_db, MDB_RDONLY, 0644) ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
        die("lmdb");
    for (unsigned t = 0; t < NTABLES; t++) {
        MDB_dbi dbi;
        MDB_cursor *c = NULL;
        MDB_val k, v;
        if (mdb_dbi_open(txn, tables[t], table_flags(t), &dbi) ||
            mdb_cursor_open(txn, dbi, &c))
            die(tables[t]);
        for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
            keylist *l = &keys[t];
            l->key = realloc(l->key, (l->n + 1) * sizeof *l->key);
            l->len = realloc(l->len, (l->n + 1) * sizeof *l->len);
            l->key[l->n] = malloc(k.mv_size);
            memcpy(l->key[l->n], k.mv_data, k.mv_size);
            l->len[l->n++] = k.mv_size;
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char p[GEN_PATH_MAX];
    (void)argc;
    (void)argv;
    if (gen_tmpdir(root) != 0)
        die("tmpdir");
    atexit(cleanup); /* libFuzzer exits at -max_total_time; a crash keeps it */
    gen_path(seed_db, root, "seed.pvdb");
    gen_path(work_db, root, "work.pvdb");
    make_seed();
    list_keys();
    gen_path(p, seed_db, "data.mdb");
    if (gen_read_bytes(p, &seed_data, &seed_len) != 0)
        die("read seed");
    if (mkdir(work_db, 0755) != 0)
        die("mkdir work");
    return 0;
}

/* ---- mutations --------------------------------------------------------- */

static int mutate(MDB_txn *txn, const uint8_t *in, size_t n, size_t *used)
{
    if (n < 7)
        return -1;
    unsigned t = in[0] % NTABLES, op = in[3] % 6;
    size_t arg = (size_t)in[4] | (size_t)in[5] << 8, dn = in[6];
    const uint8_t *data = in + 7;
    keylist *l = &keys[t];
    size_t ki = ((size_t)in[1] | (size_t)in[2] << 8) % (l->n + 1);
    uint8_t newkey[4];
    MDB_dbi dbi;
    MDB_val k, v;
    if (dn > n - 7)
        dn = n - 7;
    *used = 7 + dn;
    if (mdb_dbi_open(txn, tables[t], table_flags(t), &dbi))
        return -1;
    if (ki < l->n) {
        k.mv_data = l->key[ki];
        k.mv_size = l->len[ki];
    } else if (t == 0 || t == 2) {
        k.mv_data = t == 0 ? "fuzz" : "/fuzz.png";
        k.mv_size = strlen(k.mv_data);
    } else if (t == 3) {
        static uint8_t h[16] = "fuzz-hash-16byte";
        k.mv_data = h;
        k.mv_size = 16;
    } else {
        uint32_t id = (uint32_t)l->n;
        memcpy(newkey, &id, 4);
        k.mv_data = newkey;
        k.mv_size = 4;
    }
    if (op == 4) {
        mdb_del(txn, dbi, &k, NULL);
        return 0;
    }
    /* The current value (the first, for a dupsort key), copied. */
    uint8_t *cur = NULL;
    size_t clen = 0;
    if (mdb_get(txn, dbi, &k, &v) == 0) {
        clen = v.mv_size;
        cur = malloc(clen + dn + 1);
        memcpy(cur, v.mv_data, clen);
    } else {
        cur = malloc(dn + 1);
    }
    uint8_t *nv = NULL;
    size_t nlen = 0;
    int dup = table_flags(t) & MDB_DUPSORT;
    switch (op) {
    case 0: case 5:
        nv = calloc(1, dn + 4);
        memcpy(nv, data, dn);
        nlen = dn;
        /* LMDB copies a dupfixed table's value size from a new duplicate
         * without checking its length: only u32 ids go beside others. */
        if (op == 5 && dup)
            nlen = 4;
        break;
    case 1: /* to arg bytes: cut, or grown with the data repeated (or zeros) */
        nv = calloc(1, arg + 4);
        memcpy(nv, cur, clen < arg ? clen : arg);
        for (size_t i = clen; i < arg && dn; i++)
            nv[i] = data[(i - clen) % dn];
        nlen = arg;
        break;
    case 2:
        nv = cur;
        memcpy(cur + clen, data, dn);
        nlen = clen + dn;
        break;
    case 3: {
        nv = cur;
        nlen = clen;
        size_t off = clen ? arg % clen : 0;
        for (size_t i = 0; i < dn && off + i < clen; i++)
            cur[off + i] = data[i];
        break;
    }
    }
    MDB_val nvv = {nlen, nv};
    if (!(op == 5 && dup))
        mdb_del(txn, dbi, &k, NULL);
    /* Replaced, a dupsort key lost all its values first, so a value of any
     * size starts it afresh; LMDB may still refuse a put (nothing changes). */
    mdb_put(txn, dbi, &k, &nvv, 0);
    if (nv != cur)
        free(nv);
    free(cur);
    return 0;
}

static int fresh_copy(const uint8_t *in, size_t n)
{
    char p[GEN_PATH_MAX];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    int rc;
    gen_path(p, work_db, "data.mdb");
    if (gen_write_bytes(p, seed_data, seed_len) != 0)
        die("copy");
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
        mdb_env_set_mapsize(env, 64u << 20) || mdb_env_open(env, work_db, MDB_NOSYNC, 0644) ||
        mdb_txn_begin(env, NULL, 0, &txn))
        die("lmdb work");
    for (int m = 0; m < MAX_MUTATIONS && n > 0; m++) {
        size_t used = 0;
        if (mutate(txn, in, n, &used) != 0)
            break;
        in += used;
        n -= used;
    }
    rc = mdb_txn_commit(txn);
    mdb_env_close(env);
    return rc;
}

/* ---- operations ---------------------------------------------------------- */

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_records: wrong answer: " __VA_ARGS__);                   \
            fprintf(stderr, "\n");                                                         \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* rc is 0 or a PV_E* code; on a database that checked out, 0 (or one of
 * the codes in ok). */
static void expect(int rc, int consistent, int ok, const char *op, pv_db *db)
{
    CHECK(rc <= 0 && rc >= PV_ENUMERIC, "%s returned %d", op, rc);
    CHECK(!consistent || rc == 0 || rc == ok, "%s failed on a database that passes check: %s",
          op, pv_db_errmsg(db));
}

static void check_hits(const pv_hit *h, size_t n, size_t k, const pv_info *in, const char *op)
{
    CHECK(n <= k, "%s: %zu hits for k %zu", op, n, k);
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].id < in->next_id, "%s: hit id %u of %llu", op, h[i].id,
              (unsigned long long)in->next_id);
        CHECK(h[i].score >= -1.001f && h[i].score <= 1.001f, "%s: score %g", op,
              (double)h[i].score);
        CHECK(i == 0 || h[i - 1].score >= h[i].score, "%s: hits out of order", op);
        CHECK(h[i].path && h[i].path[0] == '/', "%s: hit without a path", op);
    }
}

static void run_ops(pv_db *db, int consistent, const uint8_t *in, size_t n)
{
    pv_info info;
    int rc = pv_db_info(db, &info);
    expect(rc, consistent, 0, "info", db);
    if (rc == 0)
        CHECK(info.items + info.deleted == info.next_id, "info: counters disagree");

    pv_item *items = NULL;
    size_t ni = 0;
    rc = pv_items(db, &items, &ni);
    expect(rc, consistent, 0, "ls", db);
    if (rc == 0) {
        for (size_t i = 0; i < ni; i++)
            CHECK(items[i].path && strlen(items[i].path) <= PV_MAX_PATH_BYTES, "ls: path");
        CHECK(!consistent || ni == info.items, "ls: %zu items, info says %llu", ni,
              (unsigned long long)info.items);
        pv_items_free(items, ni);
    }

    const float *q = qvec[(n ? in[n - 1] : 0) % NIMG];
    for (int mode = 0; mode < 3; mode++) {
        pv_query_opts o = {0};
        pv_hit *hits = NULL;
        size_t nh = 0;
        o.k = 5;
        o.exact = mode == 1;
        o.ivf = mode == 2;
        o.nprobe = 3;
        rc = pv_query_vector(db, q, 784, &o, &hits, &nh);
        /* a database may have no IVF lists */
        expect(rc, consistent, mode == 2 ? PV_ENOTFOUND : 0,
               mode == 0 ? "query" : mode == 1 ? "query --exact" : "query --ivf", db);
        if (rc == 0 && consistent)
            check_hits(hits, nh, 5, &info, "query");
        pv_hits_free(hits, nh);
    }

    for (int mode = PV_DUPS_EXACT; mode <= PV_DUPS_APPROX; mode++) {
        pv_dups *d = NULL;
        pv_dups_opts o = {0};
        o.mode = mode;
        o.threshold = 0.9f;
        o.want_pairs = 1;
        rc = pv_find_dups(db, &o, &d);
        expect(rc, consistent, 0, "dups", db);
        if (rc == 0 && consistent) {
            for (size_t i = 0; i < d->pairs; i++)
                CHECK(d->pair[i].a < d->pair[i].b && d->pair[i].b < info.next_id, "dups: pair");
            for (size_t g = 0; g < d->ngroups; g++)
                for (size_t m = 0; m < d->groups[g].n; m++)
                    CHECK(d->groups[g].members[m].item.id < info.next_id, "dups: member");
        }
        pv_dups_free(d);
    }

    pv_clustering *cl = NULL;
    rc = pv_cluster_get(db, &cl);
    expect(rc, consistent, PV_ENOTFOUND, "cluster show", db); /* or no clustering */
    if (rc == 0 && consistent) {
        size_t members = 0;
        for (int j = 0; j < cl->k; j++)
            members += cl->clusters[j].n;
        CHECK(members == info.items, "cluster show: %zu members of %llu items", members,
              (unsigned long long)info.items);
    }
    pv_clustering_free(cl);

    /* The stored map read back (not stored again: the copy stays as it is). */
    pv_map *mp = NULL;
    rc = pv_map_build(db, &(pv_map_opts){.n_neighbors = 4, .epochs = 20, .no_store = 1}, &mp);
    expect(rc, consistent, PV_EINVAL, "map", db); /* or under 4 live images */
    if (rc == 0 && consistent) {
        CHECK(mp->n == info.items, "map: %zu points of %llu items", mp->n,
              (unsigned long long)info.items);
        for (size_t i = 0; i < mp->n; i++)
            CHECK(isfinite(mp->points[i].xyz[0]) && isfinite(mp->points[i].xyz[1]) &&
                      mp->points[i].id < info.next_id,
                  "map: point %zu", i);
    }
    pv_map_free(mp);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    char err[512];
    pv_db *db = NULL;
    if (fresh_copy(in, n) != 0)
        return 0; /* LMDB refused the mutations (map full): nothing to test */
    int rc = pv_db_open(work_db, 0, &db, err, sizeof err);
    CHECK(rc <= 0 && rc >= PV_ENUMERIC, "open returned %d", rc);
    if (rc != 0)
        return 0;
    rc = pv_db_verify(db);
    expect(rc, 0, 0, "check", db);
    run_ops(db, rc == 0, in, n);
    pv_db_close(db);
    return 0;
}
