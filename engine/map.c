/*
 * map.c - pv_map_build: a 2-D or 3-D map of a collection (engine room).
 *
 * The layouts themselves are index/umap.c (UMAP as umap-learn defines it)
 * and index/tsne.c (t-SNE as scikit-learn and openTSNE define it); they
 * work on plain arrays. This file feeds them and keeps what they make:
 *  1. the live items of one read snapshot, their vectors copied into one
 *     n x dim array (row r is the r-th live id; knn.c);
 *  2. every item's k nearest other items (knn.c: exact for small sets,
 *     else the stored HNSW graph's self-join on every core), as euclidean
 *     distances between the unit vectors;
 *  3. the layout, stored in meta under "map_<method>_<dims>" in one write
 *     transaction, with the parameters it was made with.
 * A later call with the same parameters reads the record back. Items added
 * since are placed among the stored points without moving them: their
 * nearest neighbours among the stored points (exact for small maps, else
 * the graph's, filtered) go to umap_transform or tsne_place; the record is
 * then rewritten with them, marked as placed. Items removed since are left
 * out. The whole run holds the writer lock (as a clustering run does), so
 * no add can slip in between the snapshot and the store.
 *
 * "map_*" record, little-endian:
 *   u32 magic "MAP1", u32 method, u32 dims, u32 n, u32 fitted,
 *   u32 n_neighbors, u32 epochs, u32 iters, f32 min_dist, f32 perplexity,
 *   u64 seed, then n points in increasing id order:
 *   u32 id, u32 flags (bit 0: placed after the fit), f32 xyz[dims].
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "knn.h"
#include "pv_util.h"
#include "tsne.h"
#include "umap.h"

#define MAP_MAGIC 0x3150414du /* "MAP1" */
#define MAP_HDR 48
#define MAP_PLACED 1u
#define MAP_DEFAULT_SEED 42
#define MAP_MAX_NEIGHBORS 200

/* The resolved parameters of a layout (what the record keeps). */
typedef struct map_params {
    uint32_t method, dims, n_neighbors, epochs, iters;
    float min_dist, perplexity;
    uint64_t seed;
} map_params;

static int resolve(pv_db *db, const pv_map_opts *o, map_params *p)
{
    static const pv_map_opts none = {0};
    if (!o)
        o = &none;
    memset(p, 0, sizeof *p);
    if (o->method != PV_MAP_UMAP && o->method != PV_MAP_TSNE)
        return db_fail(db, PV_EINVAL, "unknown method %d (umap or tsne)", o->method);
    if (o->dims != 0 && o->dims != 2 && o->dims != 3)
        return db_fail(db, PV_EINVAL, "dims must be 2 or 3, not %d", o->dims);
    if (o->n_neighbors < 0 || o->n_neighbors == 1 || o->n_neighbors > MAP_MAX_NEIGHBORS)
        return db_fail(db, PV_EINVAL, "n_neighbors must be between 2 and %d",
                       MAP_MAX_NEIGHBORS);
    if (!(o->min_dist >= 0 && o->min_dist <= 10) || !(o->perplexity >= 0 && o->perplexity <= 100))
        return db_fail(db, PV_EINVAL, "min_dist must be in [0, 10] and perplexity in (0, 100]");
    if (o->epochs < 0 || o->epochs > 100000 || o->iters < 0 || o->iters > 100000 ||
        (o->iters > 0 && o->iters < 300))
        return db_fail(db, PV_EINVAL, "epochs must be 0..100000 and iters 300..100000");
    p->method = (uint32_t)o->method;
    p->dims = o->dims ? (uint32_t)o->dims : 2;
    p->seed = o->seed ? o->seed : MAP_DEFAULT_SEED;
    if (p->method == PV_MAP_UMAP) {
        p->n_neighbors = o->n_neighbors ? (uint32_t)o->n_neighbors : 15;
        p->min_dist = o->min_dist > 0 ? o->min_dist : 0.1f;
        p->epochs = (uint32_t)o->epochs; /* 0: by size, as umap-learn */
    } else {
        p->perplexity = o->perplexity > 0 ? o->perplexity : 30.0f;
        p->iters = o->iters ? (uint32_t)o->iters : 1000;
    }
    return PV_OK;
}

static void map_key(const map_params *p, char key[32])
{
    snprintf(key, 32, "map_%s_%u", p->method == PV_MAP_UMAP ? "umap" : "tsne", p->dims);
}

/* What one run works on. */
typedef struct mapjob {
    pv_db *db;
    map_params p;
    live_set ls;        /* the live items (rows) and the snapshot */
    /* the stored layout, if one is usable */
    uint8_t *rec;       /* a copy of the record */
    size_t rec_n, rec_fitted;
    /* the result, one row per live id */
    float *y;           /* n x dims */
    uint8_t *known;     /* n: row has a position (stored) */
    uint8_t *placed;    /* n: row was placed after the fit */
    size_t fitted, nplaced;
    int computed;
    double knn_seconds;
} mapjob;

/* cancel: pv_db_interrupt's flag, the only part of pv_db index/ is given. */
static void umap_params_of(const map_params *p, unsigned threads, const atomic_int *cancel,
                           umap_params *u)
{
    umap_defaults(u);
    u->dims = p->dims;
    u->n_neighbors = p->n_neighbors;
    u->min_dist = p->min_dist;
    u->epochs = p->epochs;
    u->seed = p->seed;
    u->nthreads = threads;
    u->cancel = cancel;
}

/* A perplexity above a third of the other points cannot be met (scikit-learn
 * refuses it): as openTSNE does, a small map uses (n - 1) / 3 instead. */
static void tsne_params_of(const map_params *p, size_t n, unsigned threads,
                           const atomic_int *cancel, tsne_params *t)
{
    float most = (float)(n - 1) / 3.0f;
    tsne_defaults(t);
    t->dims = p->dims;
    t->perplexity = p->perplexity < most ? p->perplexity : most < 1 ? 1 : most;
    t->iters = p->iters;
    t->seed = p->seed;
    t->nthreads = threads;
    t->cancel = cancel;
}

/* Neighbours per row the method reads: UMAP's n_neighbors counts the point
 * itself; scikit-learn's t-SNE takes 3 x perplexity + 1 others. */
static uint32_t map_k(const map_params *p, size_t n)
{
    size_t k = p->method == PV_MAP_UMAP ? p->n_neighbors - 1
                                        : (size_t)(3.0f * p->perplexity + 1.0f);
    if (k > n - 1)
        k = n - 1;
    return (uint32_t)(k ? k : 1);
}

/* ---- the stored record ---------------------------------------------------- */

/* The record of key in snapshot t, checked: magic, method and dims as
 * asked, a size that n and dims make, ids increasing and below nid, finite
 * coordinates, fitted <= n. PV_ENOTFOUND if there is none. */
static int record_get(mapjob *j, const char *key)
{
    const void *v;
    size_t len;
    int rc = store_meta_get_blob(j->ls.t, key, &v, &len);
    if (rc != 0)
        return rc;
    const uint8_t *b = v;
    if (len < MAP_HDR || pv_ld32(b) != MAP_MAGIC)
        return store_corrupt(j->ls.t, "meta %s: %zu bytes without the MAP1 header", key, len);
    uint32_t method = pv_ld32(b + 4), dims = pv_ld32(b + 8), n = pv_ld32(b + 12),
             fitted = pv_ld32(b + 16);
    const size_t stride = 8 + 4 * (size_t)dims;
    if (method != j->p.method || dims != j->p.dims || fitted > n ||
        (len - MAP_HDR) / stride != n || (len - MAP_HDR) % stride != 0)
        return store_corrupt(j->ls.t, "meta %s: method %u, dims %u, %u points (%u fitted) in %zu bytes",
                             key, method, dims, n, fitted, len);
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *q = b + MAP_HDR + i * stride;
        uint32_t id = pv_ld32(q), fl = pv_ld32(q + 4);
        if (id >= j->ls.nid || (i > 0 && id <= prev) || (fl & ~MAP_PLACED))
            return store_corrupt(j->ls.t, "meta %s: point %u has id %u (flags 0x%x) of %u ids", key,
                                 i, id, fl, j->ls.nid);
        for (uint32_t d = 0; d < dims; d++) {
            float f;
            memcpy(&f, q + 8 + 4 * d, 4);
            if (!isfinite(f))
                return store_corrupt(j->ls.t, "meta %s: point %u is not finite", key, i);
        }
        prev = id;
    }
    if (!(j->rec = malloc(len)))
        return PV_ENOMEM;
    memcpy(j->rec, b, len);
    j->rec_n = n;
    j->rec_fitted = fitted;
    return PV_OK;
}

int db_map_verify(pv_db *db, store_txn *t, uint32_t next_id)
{
    for (uint32_t method = 0; method < 2; method++)
        for (uint32_t dims = 2; dims <= 3; dims++) {
            mapjob j = {.db = db, .ls = {.t = t, .nid = next_id},
                        .p = {.method = method, .dims = dims}};
            char key[32];
            map_key(&j.p, key);
            int rc = record_get(&j, key);
            free(j.rec);
            if (rc != 0 && rc != PV_ENOTFOUND)
                return rc;
        }
    return PV_OK;
}

/* Whether the record was made with the parameters asked for. */
static int record_matches(const mapjob *j)
{
    const uint8_t *b = j->rec;
    float md, pp;
    uint64_t seed;
    memcpy(&md, b + 32, 4);
    memcpy(&pp, b + 36, 4);
    memcpy(&seed, b + 40, 8);
    return pv_ld32(b + 20) == j->p.n_neighbors && pv_ld32(b + 24) == j->p.epochs &&
           pv_ld32(b + 28) == j->p.iters && md == j->p.min_dist && pp == j->p.perplexity &&
           seed == j->p.seed;
}

/* Take the stored positions of the items still live. */
static void record_apply(mapjob *j)
{
    const size_t stride = 8 + 4 * (size_t)j->p.dims;
    for (size_t i = 0; i < j->rec_n; i++) {
        const uint8_t *q = j->rec + MAP_HDR + i * stride;
        uint32_t id = pv_ld32(q), r = j->ls.row[id];
        if (r == UINT32_MAX)
            continue; /* removed since */
        memcpy(j->y + (size_t)r * j->p.dims, q + 8, 4 * (size_t)j->p.dims);
        j->known[r] = 1;
        j->placed[r] = (pv_ld32(q + 4) & MAP_PLACED) != 0;
    }
}

static int record_put(pv_db *db, store_txn *t, void *ctx)
{
    const mapjob *j = ctx;
    const size_t stride = 8 + 4 * (size_t)j->p.dims;
    size_t len = MAP_HDR + j->ls.n * stride;
    uint8_t *b = malloc(len);
    char key[32];
    int rc;
    (void)db;
    if (!b)
        return PV_ENOMEM;
    memset(b, 0, MAP_HDR);
    pv_st32(b, MAP_MAGIC);
    pv_st32(b + 4, j->p.method);
    pv_st32(b + 8, j->p.dims);
    pv_st32(b + 12, (uint32_t)j->ls.n);
    pv_st32(b + 16, (uint32_t)j->fitted);
    pv_st32(b + 20, j->p.n_neighbors);
    pv_st32(b + 24, j->p.epochs);
    pv_st32(b + 28, j->p.iters);
    memcpy(b + 32, &j->p.min_dist, 4);
    memcpy(b + 36, &j->p.perplexity, 4);
    memcpy(b + 40, &j->p.seed, 8);
    for (size_t r = 0; r < j->ls.n; r++) {
        uint8_t *q = b + MAP_HDR + r * stride;
        pv_st32(q, j->ls.ids[r]);
        pv_st32(q + 4, j->placed[r] ? MAP_PLACED : 0);
        memcpy(q + 8, j->y + r * j->p.dims, 4 * (size_t)j->p.dims);
    }
    map_key(&j->p, key);
    rc = store_meta_put_blob(t, key, b, len);
    free(b);
    return rc;
}

/* ---- the run ---------------------------------------------------------------- */

static int layout_fail(mapjob *j, int rc, const char *what)
{
    return db_fail(j->db, rc, "%s %s failed: %s",
                   j->p.method == PV_MAP_UMAP ? "UMAP" : "t-SNE", what, pv_strerror(rc));
}

/* Neighbours of the query rows among the want rows, into fresh arrays. */
static int neighbours(mapjob *j, const float *x, const uint32_t *qrows, size_t nq,
                      const uint8_t *want, size_t nwant, uint32_t k, unsigned nt,
                      uint32_t **nbr, float **dist)
{
    double t0 = pv_now();
    *nbr = pv_alloc_array(nq ? nq : 1, (size_t)k * sizeof **nbr);
    *dist = pv_alloc_array(nq ? nq : 1, (size_t)k * sizeof **dist);
    if (!*nbr || !*dist)
        return PV_ENOMEM;
    int rc = knn_rows(&j->ls, x, qrows, nq, want, nwant, k, nt, *nbr, *dist);
    j->knn_seconds += pv_now() - t0;
    return rc;
}

/* A new layout of every live item. */
static int compute(mapjob *j, const float *x, unsigned nt)
{
    const size_t n = j->ls.n;
    const uint32_t k = map_k(&j->p, n);
    uint32_t *all = pv_alloc_array(n, sizeof *all), *nbr = NULL;
    uint8_t *want = malloc(n);
    float *dist = NULL;
    int rc = (all && want) ? PV_OK : PV_ENOMEM;
    for (size_t r = 0; rc == 0 && r < n; r++) {
        all[r] = (uint32_t)r;
        want[r] = 1;
        j->placed[r] = 0;
    }
    if (rc == 0)
        rc = neighbours(j, x, all, n, want, n, k, nt, &nbr, &dist);
    if (rc == 0) {
        if (j->p.method == PV_MAP_UMAP) {
            umap_params u;
            umap_params_of(&j->p, nt, &j->db->interrupt, &u);
            rc = umap_fit(x, n, j->ls.set.dim, nbr, dist, k, &u, j->y);
        } else {
            tsne_params t;
            tsne_params_of(&j->p, n, nt, &j->db->interrupt, &t);
            rc = tsne_run(x, n, j->ls.set.dim, nbr, dist, k, &t, j->y);
        }
        if (rc != 0)
            layout_fail(j, rc, "layout");
    }
    j->fitted = n;
    j->nplaced = 0;
    j->computed = 1;
    free(all);
    free(want);
    free(nbr);
    free(dist);
    return rc;
}

/* Place the rows without a stored position among those with one. */
static int place(mapjob *j, const float *x, unsigned nt)
{
    size_t nnew = 0, nold = 0;
    uint32_t *newr = pv_alloc_array(j->ls.n, sizeof *newr);
    uint32_t *oldr = pv_alloc_array(j->ls.n, sizeof *oldr);
    uint32_t *fitrow = pv_alloc_array(j->ls.n, sizeof *fitrow), *nbr = NULL;
    float *yfit = NULL, *ynew = NULL, *dist = NULL;
    uint32_t k = 0;
    int rc = (newr && oldr && fitrow) ? PV_OK : PV_ENOMEM;
    const uint32_t dims = j->p.dims;
    for (size_t r = 0; rc == 0 && r < j->ls.n; r++) {
        if (j->known[r]) {
            fitrow[r] = (uint32_t)nold;
            oldr[nold++] = (uint32_t)r;
        } else {
            newr[nnew++] = (uint32_t)r;
        }
    }
    if (rc != 0 || nnew == 0)
        goto done;
    k = map_k(&j->p, nold + 1);
    if ((rc = neighbours(j, x, newr, nnew, j->known, nold, k, nt, &nbr, &dist)) != 0)
        goto done;
    /* The layout functions index the fixed points 0..nold-1. */
    for (size_t i = 0; i < nnew * k; i++)
        if (nbr[i] != UINT32_MAX)
            nbr[i] = fitrow[nbr[i]];
    yfit = pv_alloc_array(nold, dims * sizeof *yfit);
    ynew = pv_alloc_array(nnew, dims * sizeof *ynew);
    if (!yfit || !ynew) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nold; i++)
        memcpy(yfit + i * dims, j->y + (size_t)oldr[i] * dims, dims * sizeof *yfit);
    if (j->p.method == PV_MAP_UMAP) {
        umap_params u;
        umap_params_of(&j->p, nt, &j->db->interrupt, &u);
        rc = umap_transform(yfit, nold, dims, nbr, dist, k, nnew, &u, ynew);
    } else {
        tsne_params t;
        tsne_params_of(&j->p, nold, nt, &j->db->interrupt, &t);
        rc = tsne_place(yfit, nold, dims, nbr, dist, k, nnew, &t, ynew);
    }
    if (rc != 0) {
        layout_fail(j, rc, "placement");
        goto done;
    }
    for (size_t i = 0; i < nnew; i++) {
        memcpy(j->y + (size_t)newr[i] * dims, ynew + i * dims, dims * sizeof *ynew);
        j->placed[newr[i]] = 1;
    }
    j->nplaced = nnew;
done:
    free(newr);
    free(oldr);
    free(fitrow);
    free(yfit);
    free(ynew);
    free(nbr);
    free(dist);
    return rc;
}

static int result(mapjob *j, double secs, pv_map **out)
{
    pv_map *m = calloc(1, sizeof *m);
    int rc = PV_OK;
    if (!m || !(m->points = pv_calloc_array(j->ls.n ? j->ls.n : 1, sizeof *m->points))) {
        free(m);
        return PV_ENOMEM;
    }
    m->method = (int)j->p.method;
    m->dims = (int)j->p.dims;
    m->fitted = j->fitted;
    m->computed = j->computed;
    m->seconds = secs;
    m->knn_seconds = j->knn_seconds;
    m->n_neighbors = (int)j->p.n_neighbors;
    m->epochs = (int)j->p.epochs;
    m->iters = (int)j->p.iters;
    m->min_dist = j->p.min_dist;
    m->perplexity = j->p.perplexity;
    m->seed = j->p.seed;
    for (size_t r = 0; r < j->ls.n; r++) {
        pv_map_point *pt = &m->points[r];
        store_item it;
        if ((rc = store_item_get(j->ls.t, j->ls.ids[r], &it)) != 0) {
            db_fail_txn(j->db, j->ls.t, rc, "item %u", j->ls.ids[r]);
            break;
        }
        if (!(pt->path = malloc((size_t)it.path_len + 1))) {
            rc = PV_ENOMEM;
            break;
        }
        memcpy(pt->path, it.path, it.path_len);
        pt->path[it.path_len] = 0;
        pt->id = j->ls.ids[r];
        memcpy(pt->xyz, j->y + r * j->p.dims, j->p.dims * sizeof(float));
        pt->placed = j->placed[r];
        m->n++;
        m->placed += pt->placed;
    }
    if (rc != 0) {
        pv_map_free(m);
        return rc;
    }
    *out = m;
    return PV_OK;
}

int pv_map_build(pv_db *db, const pv_map_opts *o, pv_map **out)
{
    mapjob j = {.db = db};
    float *x = NULL;
    char key[32];
    int rc, locked = 0, store = !(o && o->no_store);
    double t0 = pv_now();
    if (!db || !out)
        return PV_EINVAL;
    *out = NULL;
    db->errmsg[0] = 0;
    db_interrupt_clear(db);
    if ((rc = resolve(db, o, &j.p)) != 0)
        return rc;
    unsigned nt = db_threads(o ? o->threads : 0);
    if (store) {
        if ((rc = db_writer_begin(db)) != 0)
            return rc == PV_ERDONLY ? db_fail(db, rc, "the database is open read-only; "
                                                      "a map is stored in it")
                                    : rc;
        locked = 1;
    }
    if ((rc = live_set_open(db, &j.ls)) != 0)
        goto done;
    if (j.ls.n < 4) {
        rc = db_fail(db, PV_EINVAL, "a map needs at least 4 images, the database has %zu", j.ls.n);
        goto done;
    }
    j.y = pv_calloc_array(j.ls.n, j.p.dims * sizeof *j.y);
    j.known = calloc(j.ls.n, 1);
    j.placed = calloc(j.ls.n, 1);
    if (!j.y || !j.known || !j.placed) {
        rc = PV_ENOMEM;
        goto done;
    }
    map_key(&j.p, key);
    rc = record_get(&j, key);
    if (rc != 0 && rc != PV_ENOTFOUND) {
        db_fail_txn(db, j.ls.t, rc, "the stored layout is damaged (run with --recompute)");
        goto done;
    }
    int reuse = rc == 0 && !(o && o->recompute) && record_matches(&j);
    size_t known = 0;
    if (reuse) {
        record_apply(&j);
        for (size_t r = 0; r < j.ls.n; r++)
            known += j.known[r];
        /* A layout with under 4 of today's items is no base to place on. */
        reuse = known >= 4;
    }
    if ((rc = live_set_gather(&j.ls, &x)) != 0)
        goto done;
    if (!reuse) {
        memset(j.known, 0, j.ls.n);
        rc = compute(&j, x, nt);
    } else {
        j.fitted = j.rec_fitted;
        rc = place(&j, x, nt);
    }
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < j.ls.n * j.p.dims; i++)
        if (!isfinite(j.y[i])) {
            rc = db_fail(db, PV_ENUMERIC, "the map's layout has a value that is not finite");
            goto done;
        }
    if ((rc = result(&j, (j.computed || j.nplaced) ? pv_now() - t0 : 0.0, out)) != 0)
        goto done;
    if ((rc = db_read_check(db, j.ls.t)) != 0) {
        pv_map_free(*out);
        *out = NULL;
        goto done;
    }
    /* The snapshot ends before the write: growing the memory map (a large
     * record may need it) is refused while this process has a transaction. */
    store_txn_abort(j.ls.t);
    j.ls.t = NULL;
    /* Rewrite the record when anything changed (a new layout, points placed
     * or removed since). */
    if (store && (j.computed || j.nplaced > 0 || j.ls.n != j.rec_n) &&
        (rc = db_write(db, record_put, &j)) != 0) {
        db_fail(db, rc, "storing the map: %s", pv_strerror(rc));
        pv_map_free(*out);
        *out = NULL;
    }
done:
    live_set_close(&j.ls);
    if (locked)
        db_writer_end(db);
    free(x);
    free(j.rec);
    free(j.y);
    free(j.known);
    free(j.placed);
    return rc;
}

void pv_map_free(pv_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->points[i].path);
    free(m->points);
    free(m);
}
