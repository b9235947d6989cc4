/*
 * map.c - pv_map_build: a 2-D or 3-D map of a collection (engine room).
 *
 * The layouts themselves are index/umap.c (UMAP as umap-learn defines it)
 * and index/tsne.c (t-SNE as scikit-learn and openTSNE define it); they
 * work on plain arrays. This file feeds them and keeps what they make:
 *  1. the live items of one read snapshot, their vectors copied into one
 *     n x dim array (row r is the r-th live id);
 *  2. every item's k nearest other items: exact (OpenBLAS sgemm through
 *     flat_topk) up to MAP_EXACT_MAX items, where a full scan costs less
 *     than the graph walks, else from the stored HNSW graph, one search per
 *     item from its own node (the self-join of dups.c) on every core, each
 *     thread in its own read transaction. Distances are euclidean between
 *     unit vectors: sqrt(2 - 2 cos);
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
#include "pv_util.h"
#include "tsne.h"
#include "umap.h"

#define MAP_MAGIC 0x3150414du /* "MAP1" */
#define MAP_HDR 48
#define MAP_PLACED 1u
#define MAP_DEFAULT_SEED 42
/* Up to this many items the neighbours are found exactly (umap-learn's own
 * switch to approximate neighbours is at 4,096). */
#define MAP_EXACT_MAX 4096u
/* Exact placement while new x fitted points stay below this many pairs. */
#define MAP_PLACE_EXACT_PAIRS 50000000ull
#define MAP_MAX_NEIGHBORS 200
#define MAP_MAX_THREADS 64

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
        return db_fail(db, PV_EINVAL, "map: unknown method %d (umap or tsne)", o->method);
    if (o->dims != 0 && o->dims != 2 && o->dims != 3)
        return db_fail(db, PV_EINVAL, "map: dims must be 2 or 3, not %d", o->dims);
    if (o->n_neighbors < 0 || o->n_neighbors == 1 || o->n_neighbors > MAP_MAX_NEIGHBORS)
        return db_fail(db, PV_EINVAL, "map: n_neighbors must be between 2 and %d",
                       MAP_MAX_NEIGHBORS);
    if (!(o->min_dist >= 0 && o->min_dist <= 10) || !(o->perplexity >= 0 && o->perplexity <= 100))
        return db_fail(db, PV_EINVAL, "map: min_dist must be in [0, 10] and perplexity in (0, 100]");
    if (o->epochs < 0 || o->epochs > 100000 || o->iters < 0 || o->iters > 100000 ||
        (o->iters > 0 && o->iters < 300))
        return db_fail(db, PV_EINVAL, "map: epochs must be 0..100000 and iters 300..100000");
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
    store_txn *t;
    vec_set set;
    uint32_t nid;       /* ids 0..nid-1 exist */
    uint32_t *ids;      /* n live ids, increasing */
    size_t n;
    uint32_t *row;      /* nid entries: id -> row, UINT32_MAX if not live */
    /* the stored layout, if one is usable */
    uint8_t *rec;       /* a copy of the record */
    size_t rec_n, rec_fitted;
    /* the result, one row per live id */
    float *y;           /* n x dims */
    uint8_t *known;     /* n: row has a position (stored) */
    uint8_t *placed;    /* n: row was placed after the fit */
    size_t fitted, nplaced;
    int computed;
} mapjob;

static void umap_params_of(const map_params *p, unsigned threads, umap_params *u)
{
    umap_defaults(u);
    u->dims = p->dims;
    u->n_neighbors = p->n_neighbors;
    u->min_dist = p->min_dist;
    u->epochs = p->epochs;
    u->seed = p->seed;
    u->nthreads = threads;
}

static void tsne_params_of(const map_params *p, unsigned threads, tsne_params *t)
{
    tsne_defaults(t);
    t->dims = p->dims;
    t->perplexity = p->perplexity;
    t->iters = p->iters;
    t->seed = p->seed;
    t->nthreads = threads;
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
    int rc = store_meta_get_blob(j->t, key, &v, &len);
    if (rc != 0)
        return rc;
    const uint8_t *b = v;
    if (len < MAP_HDR || pv_ld32(b) != MAP_MAGIC)
        return store_corrupt(j->t, "meta %s: %zu bytes without the MAP1 header", key, len);
    uint32_t method = pv_ld32(b + 4), dims = pv_ld32(b + 8), n = pv_ld32(b + 12),
             fitted = pv_ld32(b + 16);
    const size_t stride = 8 + 4 * (size_t)dims;
    if (method != j->p.method || dims != j->p.dims || fitted > n ||
        (len - MAP_HDR) / stride != n || (len - MAP_HDR) % stride != 0)
        return store_corrupt(j->t, "meta %s: method %u, dims %u, %u points (%u fitted) in %zu bytes",
                             key, method, dims, n, fitted, len);
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *q = b + MAP_HDR + i * stride;
        uint32_t id = pv_ld32(q), fl = pv_ld32(q + 4);
        if (id >= j->nid || (i > 0 && id <= prev) || (fl & ~MAP_PLACED))
            return store_corrupt(j->t, "meta %s: point %u has id %u (flags 0x%x) of %u ids", key,
                                 i, id, fl, j->nid);
        for (uint32_t d = 0; d < dims; d++) {
            float f;
            memcpy(&f, q + 8 + 4 * d, 4);
            if (!isfinite(f))
                return store_corrupt(j->t, "meta %s: point %u is not finite", key, i);
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
        uint32_t id = pv_ld32(q), r = j->row[id];
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
    size_t len = MAP_HDR + j->n * stride;
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
    pv_st32(b + 12, (uint32_t)j->n);
    pv_st32(b + 16, (uint32_t)j->fitted);
    pv_st32(b + 20, j->p.n_neighbors);
    pv_st32(b + 24, j->p.epochs);
    pv_st32(b + 28, j->p.iters);
    memcpy(b + 32, &j->p.min_dist, 4);
    memcpy(b + 36, &j->p.perplexity, 4);
    memcpy(b + 40, &j->p.seed, 8);
    for (size_t r = 0; r < j->n; r++) {
        uint8_t *q = b + MAP_HDR + r * stride;
        pv_st32(q, j->ids[r]);
        pv_st32(q + 4, j->placed[r] ? MAP_PLACED : 0);
        memcpy(q + 8, j->y + r * j->p.dims, 4 * (size_t)j->p.dims);
    }
    map_key(&j->p, key);
    rc = store_meta_put_blob(t, key, b, len);
    free(b);
    return rc;
}

/* ---- neighbours --------------------------------------------------------- */

/* A neighbour list to fill: rows queries (row numbers of j), k per row,
 * answers as row numbers of j among the rows with want[row] set. */
typedef struct knn_req {
    mapjob *j;
    const uint32_t *qrows;
    size_t nq;
    const uint8_t *want; /* n: a row that may be an answer */
    uint32_t k;
    uint32_t *nbr;       /* nq x k, UINT32_MAX pads a short row */
    float *dist;         /* nq x k */
} knn_req;

static float dist_of(float score)
{
    float d2 = 2.0f - 2.0f * score;
    return d2 > 0 ? sqrtf(d2) : 0.0f;
}

static int keep_want(void *ctx, uint32_t id)
{
    const knn_req *q = ctx;
    uint32_t r = id < q->j->nid ? q->j->row[id] : UINT32_MAX;
    return r != UINT32_MAX && q->want[r];
}

/* Copy one query's hits (best first, ids) into row i of the answer, the
 * query's own id left out. */
static void knn_take(knn_req *q, size_t i, const flat_hit *h, uint32_t nh)
{
    uint32_t self = q->j->ids[q->qrows[i]], m = 0;
    uint32_t *nb = q->nbr + i * q->k;
    float *ds = q->dist + i * q->k;
    for (uint32_t a = 0; a < nh && m < q->k; a++) {
        uint32_t id = h[a].id;
        if (id == self || !keep_want(q, id))
            continue;
        nb[m] = q->j->row[id];
        ds[m++] = dist_of(h[a].score);
    }
    for (; m < q->k; m++) {
        nb[m] = UINT32_MAX;
        ds[m] = 0;
    }
}

static int knn_exact(knn_req *q, const float *x)
{
    const uint32_t dim = q->j->set.dim, kk = q->k + 1;
    const size_t block = 1024;
    flat_hit *h = pv_alloc_array(block * kk, sizeof *h);
    uint32_t *nh = pv_alloc_array(block, sizeof *nh);
    float *qv = pv_alloc_array(block, (size_t)dim * sizeof *qv);
    int rc = (h && nh && qv) ? PV_OK : PV_ENOMEM;
    for (size_t q0 = 0; q0 < q->nq && rc == 0; q0 += block) {
        size_t nb = q->nq - q0 < block ? q->nq - q0 : block;
        for (size_t i = 0; i < nb; i++)
            memcpy(qv + i * dim, x + (size_t)q->qrows[q0 + i] * dim, dim * sizeof *qv);
        if ((rc = flat_topk(&q->j->set, qv, (uint32_t)nb, kk, keep_want, q, h, nh)) != 0)
            break;
        for (size_t i = 0; i < nb; i++)
            knn_take(q, q0 + i, h + i * kk, nh[i]);
    }
    free(h);
    free(nh);
    free(qv);
    return rc;
}

typedef struct kworker {
    knn_req *q;
    const float *x;
    size_t lo, hi;
    uint32_t ask, ef;
    int rc;
    char err[256];
} kworker;

static void *knn_graph_run(void *arg)
{
    kworker *w = arg;
    mapjob *j = w->q->j;
    store_txn *t = NULL;
    graph *g = NULL;
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit *hits = pv_alloc_array(w->ask, sizeof *hits);
    int rc = (s && hits) ? PV_OK : PV_ENOMEM;
    /* The thread's own transaction, with no cache (see dups.c). */
    if (rc == 0 && (rc = store_txn_begin(j->db->st, 0, &t)) == 0)
        rc = graph_open(j->db->st, t, 0, NULL, &g);
    for (size_t i = w->lo; i < w->hi && rc == 0; i++) {
        uint32_t r = w->q->qrows[i], id = j->ids[r], nh = 0;
        if (id >= graph_state(g)->nodes) {
            rc = store_corrupt(t, "live item %u is not in the HNSW graph (%u nodes)", id,
                               graph_state(g)->nodes);
            break;
        }
        rc = graph_search_from(g, s, id, w->x + (size_t)r * j->set.dim, w->ask, w->ef, hits,
                               &nh);
        if (rc == 0)
            knn_take(w->q, i, hits, nh);
    }
    w->rc = rc;
    if (rc == PV_ECORRUPT)
        snprintf(w->err, sizeof w->err, "%s", store_txn_errmsg(t));
    graph_close(g);
    store_txn_abort(t);
    hnsw_scratch_free(s);
    free(hits);
    return NULL;
}

/* From the graph, on nt threads. ask: hits asked per search (more than k
 * when answers are filtered, as for placement). */
static int knn_graph(knn_req *q, const float *x, uint32_t ask, unsigned nt)
{
    kworker w[MAP_MAX_THREADS];
    pthread_t th[MAP_MAX_THREADS];
    unsigned started = 0;
    int rc = PV_OK;
    if (nt > MAP_MAX_THREADS)
        nt = MAP_MAX_THREADS;
    if (nt > q->nq)
        nt = q->nq ? (unsigned)q->nq : 1;
    for (unsigned i = 0; i < nt; i++) {
        w[i] = (kworker){.q = q, .x = x, .ask = ask, .ef = ask > 64 ? ask : 64,
                         .lo = q->nq * i / nt, .hi = q->nq * (i + 1) / nt};
    }
    for (unsigned i = 1; i < nt; i++) {
        if (pthread_create(&th[i], NULL, knn_graph_run, &w[i]) != 0) {
            rc = PV_ENOMEM;
            break;
        }
        started = i;
    }
    if (rc == 0)
        knn_graph_run(&w[0]);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < nt && rc == 0; i++)
        if ((rc = w[i].rc) == PV_ECORRUPT)
            db_fail(q->j->db, rc, "map: %s", w[i].err[0] ? w[i].err : pv_strerror(rc));
    return rc;
}

/* ---- the run ---------------------------------------------------------------- */

static int load(mapjob *j)
{
    store_counts c;
    int rc;
    if ((rc = db_read_begin(j->db, &j->t)) != 0 || (rc = store_counts_get(j->t, &c)) != 0 ||
        (rc = db_vec_set(j->db, j->t, &j->set)) != 0)
        return db_fail_txn(j->db, j->t, rc, "map: reading the database");
    j->nid = c.next_id;
    j->ids = pv_alloc_array(c.next_id ? c.next_id : 1, sizeof *j->ids);
    j->row = pv_alloc_array(c.next_id ? c.next_id : 1, sizeof *j->row);
    if (!j->ids || !j->row)
        return PV_ENOMEM;
    for (uint32_t id = 0; id < c.next_id; id++) {
        int live;
        if ((rc = db_is_live(j->t, id, &live)) != 0)
            return db_fail_txn(j->db, j->t, rc, "map: reading item %u", id);
        j->row[id] = live ? (uint32_t)j->n : UINT32_MAX;
        if (live)
            j->ids[j->n++] = id;
    }
    return PV_OK;
}

/* The vectors of rows, one n x dim array (x), checked. */
static int gather(mapjob *j, float **x)
{
    const uint32_t dim = j->set.dim;
    if (!(*x = pv_alloc_array(j->n, (size_t)dim * sizeof **x)))
        return PV_ENOMEM;
    for (size_t r = 0; r < j->n; r++) {
        const float *v = vec_set_get(&j->set, j->ids[r]);
        if (!v)
            return db_fail(j->db, PV_ECORRUPT, "map: item %u has no vector", j->ids[r]);
        memcpy(*x + r * dim, v, dim * sizeof **x);
    }
    return PV_OK;
}

static int neighbours(mapjob *j, knn_req *q, const float *x, size_t nwant, unsigned nt)
{
    int rc;
    q->nbr = pv_alloc_array(q->nq, (size_t)q->k * sizeof *q->nbr);
    q->dist = pv_alloc_array(q->nq, (size_t)q->k * sizeof *q->dist);
    if (!q->nbr || !q->dist)
        return PV_ENOMEM;
    if (j->n <= MAP_EXACT_MAX || (uint64_t)q->nq * nwant <= MAP_PLACE_EXACT_PAIRS)
        rc = knn_exact(q, x);
    else {
        /* Placement looks among the stored points only: ask for more so
         * that k of them remain after the newer items are left out. */
        uint32_t ask = q->k + 1;
        if (nwant < j->n)
            ask = 2 * q->k + 16;
        rc = knn_graph(q, x, ask, nt);
    }
    if (rc != 0 && !j->db->errmsg[0])
        db_fail(j->db, rc, "map: nearest neighbours: %s", pv_strerror(rc));
    return rc;
}

static int layout_fail(mapjob *j, int rc, const char *what)
{
    return db_fail(j->db, rc, "map: %s %s failed: %s",
                   j->p.method == PV_MAP_UMAP ? "UMAP" : "t-SNE", what, pv_strerror(rc));
}

/* A new layout of every live item. */
static int compute(mapjob *j, const float *x, unsigned nt)
{
    uint32_t *all = pv_alloc_array(j->n, sizeof *all);
    uint8_t *want = malloc(j->n);
    knn_req q = {.j = j, .qrows = all, .nq = j->n, .want = want, .k = map_k(&j->p, j->n)};
    int rc = (all && want) ? PV_OK : PV_ENOMEM;
    for (size_t r = 0; rc == 0 && r < j->n; r++) {
        all[r] = (uint32_t)r;
        want[r] = 1;
        j->placed[r] = 0;
    }
    if (rc == 0)
        rc = neighbours(j, &q, x, j->n, nt);
    if (rc == 0) {
        if (j->p.method == PV_MAP_UMAP) {
            umap_params u;
            umap_params_of(&j->p, nt, &u);
            rc = umap_fit(x, j->n, j->set.dim, q.nbr, q.dist, q.k, &u, j->y);
        } else {
            tsne_params t;
            tsne_params_of(&j->p, nt, &t);
            rc = tsne_run(x, j->n, j->set.dim, q.nbr, q.dist, q.k, &t, j->y);
        }
        if (rc != 0)
            layout_fail(j, rc, "layout");
    }
    j->fitted = j->n;
    j->nplaced = 0;
    j->computed = 1;
    free(all);
    free(want);
    free(q.nbr);
    free(q.dist);
    return rc;
}

/* Place the rows without a stored position among those with one. */
static int place(mapjob *j, const float *x, unsigned nt)
{
    size_t nnew = 0, nold = 0;
    uint32_t *newr = pv_alloc_array(j->n, sizeof *newr);
    uint32_t *oldr = pv_alloc_array(j->n, sizeof *oldr);
    uint32_t *fitrow = pv_alloc_array(j->n, sizeof *fitrow);
    float *yfit = NULL, *ynew = NULL;
    knn_req q = {.j = j, .want = j->known};
    int rc = (newr && oldr && fitrow) ? PV_OK : PV_ENOMEM;
    const uint32_t dims = j->p.dims;
    for (size_t r = 0; rc == 0 && r < j->n; r++) {
        if (j->known[r]) {
            fitrow[r] = (uint32_t)nold;
            oldr[nold++] = (uint32_t)r;
        } else {
            newr[nnew++] = (uint32_t)r;
        }
    }
    if (rc != 0 || nnew == 0)
        goto done;
    q.qrows = newr;
    q.nq = nnew;
    q.k = map_k(&j->p, nold + 1);
    if ((rc = neighbours(j, &q, x, nold, nt)) != 0)
        goto done;
    /* The layout functions index the fixed points 0..nold-1. */
    for (size_t i = 0; i < nnew * q.k; i++)
        if (q.nbr[i] != UINT32_MAX)
            q.nbr[i] = fitrow[q.nbr[i]];
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
        umap_params_of(&j->p, nt, &u);
        rc = umap_transform(yfit, nold, dims, q.nbr, q.dist, q.k, nnew, &u, ynew);
    } else {
        tsne_params t;
        tsne_params_of(&j->p, nt, &t);
        rc = tsne_place(yfit, nold, dims, q.nbr, q.dist, q.k, nnew, &t, ynew);
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
    free(q.nbr);
    free(q.dist);
    return rc;
}

static int result(mapjob *j, double secs, pv_map **out)
{
    pv_map *m = calloc(1, sizeof *m);
    int rc = PV_OK;
    if (!m || !(m->points = pv_calloc_array(j->n ? j->n : 1, sizeof *m->points))) {
        free(m);
        return PV_ENOMEM;
    }
    m->method = (int)j->p.method;
    m->dims = (int)j->p.dims;
    m->fitted = j->fitted;
    m->computed = j->computed;
    m->seconds = secs;
    m->n_neighbors = (int)j->p.n_neighbors;
    m->epochs = (int)j->p.epochs;
    m->iters = (int)j->p.iters;
    m->min_dist = j->p.min_dist;
    m->perplexity = j->p.perplexity;
    m->seed = j->p.seed;
    for (size_t r = 0; r < j->n; r++) {
        pv_map_point *pt = &m->points[r];
        store_item it;
        if ((rc = store_item_get(j->t, j->ids[r], &it)) != 0) {
            db_fail_txn(j->db, j->t, rc, "map: item %u", j->ids[r]);
            break;
        }
        if (!(pt->path = malloc((size_t)it.path_len + 1))) {
            rc = PV_ENOMEM;
            break;
        }
        memcpy(pt->path, it.path, it.path_len);
        pt->path[it.path_len] = 0;
        pt->id = j->ids[r];
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
    if ((rc = resolve(db, o, &j.p)) != 0)
        return rc;
    unsigned nt = db_threads(o ? o->threads : 0);
    if (store) {
        if ((rc = db_writer_begin(db)) != 0)
            return rc == PV_ERDONLY ? db_fail(db, rc, "map: the database is open read-only; "
                                                      "a map is stored in it")
                                    : rc;
        locked = 1;
    }
    if ((rc = load(&j)) != 0)
        goto done;
    if (j.n < 4) {
        rc = db_fail(db, PV_EINVAL, "map: needs at least 4 images, the database has %zu", j.n);
        goto done;
    }
    j.y = pv_calloc_array(j.n, j.p.dims * sizeof *j.y);
    j.known = calloc(j.n, 1);
    j.placed = calloc(j.n, 1);
    if (!j.y || !j.known || !j.placed) {
        rc = PV_ENOMEM;
        goto done;
    }
    map_key(&j.p, key);
    rc = record_get(&j, key);
    if (rc != 0 && rc != PV_ENOTFOUND) {
        db_fail_txn(db, j.t, rc, "map: the stored layout is damaged (run with --recompute)");
        goto done;
    }
    int reuse = rc == 0 && !(o && o->recompute) && record_matches(&j);
    size_t known = 0;
    if (reuse) {
        record_apply(&j);
        for (size_t r = 0; r < j.n; r++)
            known += j.known[r];
        /* A layout with under 4 of today's items is no base to place on. */
        reuse = known >= 4;
    }
    if ((rc = gather(&j, &x)) != 0)
        goto done;
    if (!reuse) {
        memset(j.known, 0, j.n);
        rc = compute(&j, x, nt);
    } else {
        j.fitted = j.rec_fitted;
        rc = place(&j, x, nt);
    }
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < j.n * j.p.dims; i++)
        if (!isfinite(j.y[i])) {
            rc = db_fail(db, PV_ENUMERIC, "map: the layout has a value that is not finite");
            goto done;
        }
    /* Rewrite the record when anything changed (a new layout, points placed
     * or removed since). */
    if (store && (j.computed || j.nplaced > 0 || j.n != j.rec_n) &&
        (rc = db_write(db, record_put, &j)) != 0) {
        db_fail(db, rc, "map: storing the layout: %s", pv_strerror(rc));
        goto done;
    }
    rc = result(&j, (j.computed || j.nplaced) ? pv_now() - t0 : 0.0, out);
done:
    store_txn_abort(j.t);
    if (locked)
        db_writer_end(db);
    free(x);
    free(j.ids);
    free(j.row);
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
