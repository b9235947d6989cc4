/*
 * concurrency.c - see concurrency.h. What a read transaction learns about
 * its snapshot (the vector chunk pointers, the counters) lives in the
 * transaction, so threads that each hold one write no shared memory and
 * each sees one whole snapshot: ThreadSanitizer found the store handle's
 * chunk-pointer cache reallocated by one reader while others read it.
 */
#include "concurrency.h"

#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gen.h"
#include "pixvec.h"
#include "store.h"

extern char **environ;

static int failf(char *fail, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- store: readers and a committing writer ---------------------------- */

#define CDIM 8u
#define CCHUNK 4u
#define BATCHES 150u
#define PER_BATCH 3u
#define READERS 4

typedef struct shared {
    store *st;
    atomic_int done;
    char fail[256]; /* the writer's */
} shared;

typedef struct reader {
    shared *sh;
    int use_cache;
    unsigned snapshots; /* read transactions that checked out */
    char fail[256];     /* "" or what a snapshot got wrong */
} reader;

/* The value j of id's vector: any reader can check any vector. */
static float vec_val(uint32_t id, uint32_t j) { return (float)(id * 16u + j); }

/* One batch of PER_BATCH items with their vectors, in one write
 * transaction (items, vectors, counters). */
static int write_batch(store *st)
{
    float v[PER_BATCH * CDIM];
    store_txn *t = NULL;
    store_counts c;
    int rc = store_txn_begin(st, 1, &t);
    if (rc == 0)
        rc = store_counts_get(t, &c);
    for (uint32_t i = 0; i < PER_BATCH && rc == 0; i++) {
        uint32_t id = c.next_id + i;
        char p[32];
        store_item it;
        memset(&it, 0, sizeof it);
        snprintf(p, sizeof p, "/c/%u.png", id);
        it.path = p;
        it.path_len = (uint16_t)strlen(p);
        rc = store_item_put(t, id, &it);
        for (uint32_t j = 0; j < CDIM; j++)
            v[i * CDIM + j] = vec_val(id, j);
    }
    if (rc == 0)
        rc = store_vec_append(t, c.next_id, PER_BATCH, v);
    if (rc == 0) {
        c.next_id += PER_BATCH;
        c.live += PER_BATCH;
        rc = store_counts_put(t, &c);
    }
    if (rc == 0) {
        rc = store_txn_commit(t);
        t = NULL;
    }
    store_txn_abort(t);
    return rc;
}

static void *writer_run(void *arg)
{
    shared *sh = arg;
    for (uint32_t b = 0; b < BATCHES; b++) {
        int rc = write_batch(sh->st);
        if (rc != 0) {
            failf(sh->fail, sizeof sh->fail, "writer, batch %u: %s", b, pv_strerror(rc));
            break;
        }
    }
    atomic_store(&sh->done, 1);
    return NULL;
}

/* One snapshot: its counters, chunks and every vector agree. */
static void read_once(reader *r, store_vec_cache *cache)
{
    store_txn *t = NULL;
    store_counts c;
    const float *const *ptrs;
    const uint32_t *counts;
    uint32_t nch, id = 0;
    int rc = store_txn_begin(r->sh->st, 0, &t);
    if (rc != 0) {
        failf(r->fail, sizeof r->fail, "begin: %s", pv_strerror(rc));
        return;
    }
    if (cache)
        store_txn_set_cache(t, cache);
    if ((rc = store_counts_get(t, &c)) != 0 ||
        (rc = store_vec_chunks(t, &ptrs, &counts, &nch)) != 0) {
        failf(r->fail, sizeof r->fail, "snapshot: %s: %s", pv_strerror(rc),
              store_txn_errmsg(t));
        store_txn_abort(t);
        return;
    }
    for (uint32_t ch = 0; ch < nch && !r->fail[0]; ch++)
        for (uint32_t i = 0; i < counts[ch]; i++, id++) {
            float first, last;
            memcpy(&first, ptrs[ch] + (size_t)i * CDIM, sizeof first);
            memcpy(&last, ptrs[ch] + (size_t)i * CDIM + CDIM - 1, sizeof last);
            if (first != vec_val(id, 0) || last != vec_val(id, CDIM - 1)) {
                failf(r->fail, sizeof r->fail, "vector %u reads %g .. %g", id,
                      (double)first, (double)last);
                break;
            }
        }
    if (!r->fail[0] && id != c.next_id)
        failf(r->fail, sizeof r->fail,
              "%u vectors in a snapshot of %u ids (snapshot key %llx, cache's %llx)", id,
              c.next_id, (unsigned long long)store_snapshot(t),
              cache ? (unsigned long long)cache->key : 0ULL);
    store_txn_abort(t);
    r->snapshots++;
}

static void *reader_run(void *arg)
{
    reader *r = arg;
    store_vec_cache cache = {0};
    while (!r->fail[0]) {
        int last = atomic_load(&r->sh->done);
        read_once(r, r->use_cache ? &cache : NULL);
        if (last)
            break; /* one more read after the last commit */
    }
    store_vec_cache_free(&cache);
    return NULL;
}

int conc_readers_while_writer(const char *dir, char *fail, size_t failn)
{
    char dbdir[GEN_PATH_MAX], err[256];
    store_schema s;
    shared sh;
    reader rd[READERS];
    pthread_t wt, rt[READERS];
    int started = 0, rc = 0;
    gen_path(dbdir, dir, "db");
    memset(&s, 0, sizeof s);
    s.dim = CDIM;
    s.chunk = CCHUNK;
    strcpy(s.embedder, "pixels");
    s.hnsw_m = 16;
    s.hnsw_efc = 200;
    memset(&sh, 0, sizeof sh);
    if (store_create(dbdir, &s, &sh.st, err, sizeof err) != 0)
        return failf(fail, failn, "store_create: %s", err);
    memset(rd, 0, sizeof rd);
    for (; started < READERS; started++) {
        rd[started].sh = &sh;
        rd[started].use_cache = started % 2;
        if (pthread_create(&rt[started], NULL, reader_run, &rd[started]) != 0)
            break;
    }
    if (started < READERS || pthread_create(&wt, NULL, writer_run, &sh) != 0) {
        atomic_store(&sh.done, 1);
        rc = failf(fail, failn, "could not start the threads");
    } else {
        pthread_join(wt, NULL);
    }
    for (int i = 0; i < started; i++)
        pthread_join(rt[i], NULL);
    if (rc == 0 && sh.fail[0])
        rc = failf(fail, failn, "%s", sh.fail);
    for (int i = 0; i < started && rc == 0; i++) {
        if (rd[i].fail[0])
            rc = failf(fail, failn, "reader %d: %s", i, rd[i].fail);
        else if (rd[i].snapshots == 0)
            rc = failf(fail, failn, "reader %d read no snapshot", i);
    }
    store_close(sh.st);
    return rc;
}

/* ---- engine: the approximate dups scan while another process adds ------ */

/* n PNGs in dir/sub, in pairs of near-copies (a seed per pair, one byte
 * changed each). */
static int write_images(const char *dir, const char *sub, int n, uint32_t seed0)
{
    char d[GEN_PATH_MAX], p[GEN_PATH_MAX];
    uint8_t *px = malloc(32 * 32 * 3);
    int rc = px ? 0 : -1;
    gen_path(d, dir, sub);
    if (rc == 0)
        rc = mkdir(d, 0755);
    for (int i = 0; i < n && rc == 0; i++) {
        char name[32];
        snprintf(name, sizeof name, "i%03d.png", i);
        gen_pattern(32, 32, 3, seed0 + (uint32_t)(i / 2), px);
        px[(size_t)i % (32 * 32 * 3)] ^= 0x10;
        gen_path(p, d, name);
        rc = gen_write_png(p, 32, 32, GEN_PNG_RGB, 8, px, NULL);
    }
    free(px);
    return rc;
}

#define BASE_IMAGES 60
#define MORE_IMAGES 24

int conc_dups_while_adding(const char *dir, const char *pixvec_bin, int *scans,
                           char *fail, size_t failn)
{
    char err[512], dbdir[GEN_PATH_MAX], base[GEN_PATH_MAX], more[GEN_PATH_MAX];
    char script[3 * GEN_PATH_MAX + 128];
    const char *paths[1] = {base};
    pv_db *db = NULL;
    pv_add_stats st;
    int status = 0, rc = 0;
    pid_t pid, w;
    *scans = 0;
    gen_path(dbdir, dir, "dups.pvdb");
    gen_path(base, dir, "base");
    gen_path(more, dir, "more");
    if (write_images(dir, "base", BASE_IMAGES, 500) != 0 ||
        write_images(dir, "more", MORE_IMAGES, 900) != 0)
        return failf(fail, failn, "writing the images");
    if (pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err) != 0)
        return failf(fail, failn, "create: %s", err);
    if (pv_add(db, paths, 1, NULL, &st) != 0) {
        rc = failf(fail, failn, "add: %s", pv_db_errmsg(db));
        pv_db_close(db);
        return rc;
    }
    /* One commit per image, from another process. */
    snprintf(script, sizeof script,
             "for f in '%s'/*.png; do '%s' add '%s' \"$f\" >/dev/null || exit 1; done", more,
             pixvec_bin, dbdir);
    char *argv[] = {"sh", "-c", script, NULL};
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0) {
        pv_db_close(db);
        return failf(fail, failn, "could not start sh");
    }
    do {
        pv_dups *d = NULL;
        pv_dups_opts o = {0};
        o.mode = PV_DUPS_APPROX;
        o.threshold = 0.98f;
        o.want_pairs = 1;
        if (pv_find_dups(db, &o, &d) != 0) {
            rc = failf(fail, failn, "scan %d: %s", *scans, pv_db_errmsg(db));
        } else if (d->pairs < BASE_IMAGES / 2) {
            rc = failf(fail, failn, "scan %d: %llu pairs, the base set has %d", *scans,
                       (unsigned long long)d->pairs, BASE_IMAGES / 2);
        } else {
            for (size_t i = 0; i < d->pairs && rc == 0; i++)
                if (d->pair[i].b >= BASE_IMAGES + MORE_IMAGES)
                    rc = failf(fail, failn, "scan %d: a pair names id %u", *scans,
                               d->pair[i].b);
        }
        pv_dups_free(d);
        ++*scans;
        w = waitpid(pid, &status, WNOHANG);
    } while (w == 0 && rc == 0);
    if (w == 0)
        w = waitpid(pid, &status, 0);
    if (rc == 0 && !(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = failf(fail, failn, "`pixvec add` in the other process failed");
    if (rc == 0 && pv_db_verify(db) != 0)
        rc = failf(fail, failn, "check after: %s", pv_db_errmsg(db));
    pv_db_close(db);
    return rc;
}

int conc_photo_dups(const char *dir, char *fail, size_t failn)
{
    char err[512], dbdir[GEN_PATH_MAX], base[GEN_PATH_MAX];
    const char *paths[1] = {base};
    pv_embedder_opts e = {.name = "photo"};
    pv_db *db = NULL;
    pv_add_stats st;
    int rc = 0;
    gen_path(dbdir, dir, "photo.pvdb");
    gen_path(base, dir, "photo");
    if (write_images(dir, "photo", BASE_IMAGES, 700) != 0)
        return failf(fail, failn, "writing the images");
    if (pv_db_create(dbdir, &e, NULL, &db, err, sizeof err) != 0)
        return failf(fail, failn, "create: %s", err);
    if (pv_add(db, paths, 1, NULL, &st) != 0) {
        rc = failf(fail, failn, "add: %s", pv_db_errmsg(db));
        pv_db_close(db);
        return rc;
    }
    /* approximate: the exact scan's sgemm runs on OpenBLAS's own threads,
     * which ThreadSanitizer cannot see synchronise; the pair scores run on
     * pixvec's threads in both modes */
    pv_dups *d = NULL;
    pv_dups_opts o = {0};
    o.mode = PV_DUPS_APPROX;
    if (pv_find_dups(db, &o, &d) != 0)
        rc = failf(fail, failn, "dups: %s", pv_db_errmsg(db));
    else if (d->images < BASE_IMAGES)
        rc = failf(fail, failn, "dups: %llu images in groups, want %d",
                   (unsigned long long)d->images, BASE_IMAGES);
    pv_dups_free(d);
    pv_db_close(db);
    return rc;
}

int conc_clip_add(const char *dir, const char *src_dir, char *fail, size_t failn)
{
    char err[512], dbdir[GEN_PATH_MAX], base[GEN_PATH_MAX], model[GEN_PATH_MAX],
        cmd[4 * GEN_PATH_MAX];
    const char *paths[1] = {base};
    pv_embedder_opts e = {.name = "clip", .model = model};
    pv_add_opts ao = {.threads = 2};
    pv_db *db = NULL;
    pv_add_stats st;
    pv_hit *hits = NULL;
    size_t n = 0;
    int rc = 0;
    if (system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
        printf("tsan: clip: skipped, /usr/bin/python3 cannot import torch "
               "(scripts/setup.sh installs python3-torch)\n");
        return 0;
    }
    gen_path(dbdir, dir, "clip.pvdb");
    gen_path(base, dir, "clip");
    gen_path(model, dir, "clip-model");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref_vit.py' gen clip '%s' >/dev/null",
             src_dir, model);
    if (system(cmd) != 0)
        return failf(fail, failn, "%s failed", cmd);
    if (write_images(dir, "clip", BASE_IMAGES, 1100) != 0)
        return failf(fail, failn, "writing the images");
    if (pv_db_create(dbdir, &e, NULL, &db, err, sizeof err) != 0)
        return failf(fail, failn, "create: %s", err);
    if (pv_add(db, paths, 1, &ao, &st) != 0 || st.added != BASE_IMAGES)
        rc = failf(fail, failn, "add: %s (%llu added)", pv_db_errmsg(db),
                   (unsigned long long)st.added);
    if (rc == 0 && (pv_query_text(db, "a photo of a cat", NULL, &hits, &n) != 0 || n == 0))
        rc = failf(fail, failn, "search: %s", pv_db_errmsg(db));
    pv_hits_free(hits, n);
    pv_db_close(db);
    return rc;
}

/* OpenBLAS's own threads synchronise in ways ThreadSanitizer cannot see:
 * the map scenario keeps every product on the calling thread. */
void openblas_set_num_threads(int n);

/* Maps of each method, their placement of new images, on 2 threads each. */
int conc_map(const char *dir, char *fail, size_t failn)
{
    char err[512], dbdir[GEN_PATH_MAX], imgs[GEN_PATH_MAX];
    const char *paths[1] = {imgs};
    pv_db *db = NULL;
    pv_add_stats st;
    int rc = 0;
    openblas_set_num_threads(1);
    gen_path(dbdir, dir, "map.pvdb");
    gen_path(imgs, dir, "map");
    if (mkdir(imgs, 0755) != 0)
        return failf(fail, failn, "mkdir %s", imgs);
    gen_class_folders(imgs, 80, 0); /* 240: t-SNE past its exact size */
    if (pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err) != 0)
        return failf(fail, failn, "create: %s", err);
    if (pv_add(db, paths, 1, NULL, &st) != 0)
        rc = failf(fail, failn, "add: %s", pv_db_errmsg(db));
    for (int round = 0; round < 2 && rc == 0; round++) {
        for (int method = PV_MAP_UMAP; method <= PV_MAP_TSNE && rc == 0; method++) {
            pv_map *m = NULL;
            pv_map_opts o = {.method = method, .threads = 2, .epochs = 50, .iters = 300};
            if (pv_map_build(db, &o, &m) != 0)
                rc = failf(fail, failn, "map %d: %s", method, pv_db_errmsg(db));
            else if (m->n != (round ? 255u : 240u) || m->placed != (round ? 15u : 0u))
                rc = failf(fail, failn, "map %d: %zu points, %zu placed", method, m->n, m->placed);
            pv_map_free(m);
        }
        if (round == 0) { /* 15 more, placed by the next round */
            gen_class_folders(imgs, 5, 80);
            if (pv_add(db, paths, 1, NULL, &st) != 0)
                rc = failf(fail, failn, "add: %s", pv_db_errmsg(db));
        }
    }
    pv_db_close(db);
    return rc;
}

typedef struct codes_reader {
    const char *dbdir;
    atomic_int *stop;
    int queries;
    char fail[600];
    int backups;
} codes_reader;

/* Queries on a handle of its own until told to stop: graph on codes.
 * Every 40 queries (up to 5 times) a backup of the database the other
 * handle is adding to. */
static void *codes_reader_run(void *arg)
{
    codes_reader *r = arg;
    pv_db *db = NULL;
    char err[256];
    float q[64];
    for (int j = 0; j < 64; j++)
        q[j] = (float)((j * 7) % 13) - 6.0f;
    if (pv_db_open(r->dbdir, PV_OPEN_RDONLY, &db, err, sizeof err) != 0) {
        snprintf(r->fail, sizeof r->fail, "open: %s", err);
        return NULL;
    }
    while (!atomic_load(r->stop) && !r->fail[0]) {
        pv_query_opts o = {.k = 5, .ids_only = 1};
        pv_hit *h = NULL;
        size_t n = 0;
        if (pv_query_vector(db, q, 64, &o, &h, &n) != 0)
            snprintf(r->fail, sizeof r->fail, "query: %s", pv_db_errmsg(db));
        pv_hits_free(h, n);
        r->queries++;
        if (r->queries % 40 == 0 && r->backups < 5 && !r->fail[0]) {
            char dest[GEN_PATH_MAX + 16];
            snprintf(dest, sizeof dest, "%s.bk%d", r->dbdir, r->backups++);
            if (pv_db_backup(db, dest) != 0)
                snprintf(r->fail, sizeof r->fail, "backup: %s", pv_db_errmsg(db));
        }
    }
    pv_db_close(db);
    return NULL;
}

int conc_codes_only(const char *dir, char *fail, size_t failn)
{
    char err[512], dbdir[GEN_PATH_MAX], a[GEN_PATH_MAX], b[GEN_PATH_MAX];
    const char *paths[1] = {a};
    pv_embedder_opts e = {.name = "pixels", .size = 8};
    pv_index_opts ix = {.vectors = PV_VECTORS_F16, .compact_only = 1};
    pv_add_opts ao = {.threads = 2};
    pv_db *db = NULL;
    pv_add_stats st;
    atomic_int stop = 0;
    codes_reader r = {dbdir, &stop, 0, "", 0};
    pthread_t thr;
    int rc = 0;
    gen_path(dbdir, dir, "codes.pvdb");
    gen_path(a, dir, "ca");
    gen_path(b, dir, "cb");
    if (write_images(dir, "ca", 200, 3100) != 0 || write_images(dir, "cb", 200, 3500) != 0)
        return failf(fail, failn, "writing the images");
    if (pv_db_create(dbdir, &e, &ix, &db, err, sizeof err) != 0)
        return failf(fail, failn, "create: %s", err);
    if (pv_add(db, paths, 1, &ao, &st) != 0)
        rc = failf(fail, failn, "add: %s", pv_db_errmsg(db));
    if (rc == 0 && pthread_create(&thr, NULL, codes_reader_run, &r) != 0)
        rc = failf(fail, failn, "no reader thread");
    else if (rc == 0) {
        paths[0] = b; /* inserted on codes on 2 threads while the reader queries */
        if (pv_add(db, paths, 1, &ao, &st) != 0)
            rc = failf(fail, failn, "add more: %s", pv_db_errmsg(db));
        if (rc == 0 && pv_vacuum(db) != 0)
            rc = failf(fail, failn, "vacuum: %s", pv_db_errmsg(db));
        atomic_store(&stop, 1);
        pthread_join(thr, NULL);
        if (rc == 0 && r.fail[0])
            rc = failf(fail, failn, "reader: %s", r.fail);
        if (rc == 0 && r.backups == 0)
            rc = failf(fail, failn, "no backup was taken during the add (%d queries)", r.queries);
    }
    if (rc == 0 && pv_db_verify(db) != 0)
        rc = failf(fail, failn, "check after: %s", pv_db_errmsg(db));
    pv_db_close(db);
    return rc;
}
