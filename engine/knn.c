/*
 * knn.c - the live items of a snapshot and their nearest neighbours
 * (engine room; knn.h). Exact below a size, where one blocked sgemm scan
 * (flat_topk) costs less than a graph walk per item; above it the stored
 * HNSW graph answers, one search per item starting from its own node (the
 * self-join of dups.c, so a dense cluster elsewhere cannot trap it), on
 * every core, each thread in its own read transaction with no cache.
 * Scores are exact dot products of the stored unit vectors, turned into
 * euclidean distances sqrt(2 - 2 cos), which rank as the cosines do.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "pv_util.h"

#define KNN_MAX_THREADS 64
/* Exact while queries x candidates stay below this many pairs (about 40
 * GFLOP at 784 dimensions: a second or two of sgemm on 2 cores). */
#define KNN_EXACT_PAIRS 50000000ull

/* ---- the live set ------------------------------------------------------------ */

int live_set_open(pv_db *db, live_set *ls)
{
    store_counts c;
    int rc;
    memset(ls, 0, sizeof *ls);
    ls->db = db;
    if ((rc = db_read_begin(db, &ls->t)) != 0 || (rc = store_counts_get(ls->t, &c)) != 0 ||
        (rc = db_vec_set(db, ls->t, &ls->set)) != 0)
        return db_fail_txn(db, ls->t, rc, "reading the database");
    ls->nid = c.next_id;
    ls->ids = pv_alloc_array(c.next_id ? c.next_id : 1, sizeof *ls->ids);
    ls->row = pv_alloc_array(c.next_id ? c.next_id : 1, sizeof *ls->row);
    if (!ls->ids || !ls->row)
        return PV_ENOMEM;
    for (uint32_t id = 0; id < c.next_id; id++) {
        int live;
        if ((rc = db_is_live(ls->t, id, &live)) != 0)
            return db_fail_txn(db, ls->t, rc, "reading item %u", id);
        ls->row[id] = live ? (uint32_t)ls->n : UINT32_MAX;
        if (live)
            ls->ids[ls->n++] = id;
    }
    return PV_OK;
}

void live_set_close(live_set *ls)
{
    store_txn_abort(ls->t);
    free(ls->ids);
    free(ls->row);
    memset(ls, 0, sizeof *ls);
}

int live_set_gather(live_set *ls, float **x)
{
    const uint32_t dim = ls->set.dim;
    if (!(*x = pv_alloc_array(ls->n ? ls->n : 1, (size_t)dim * sizeof **x)))
        return PV_ENOMEM;
    for (size_t r = 0; r < ls->n; r++) {
        const float *v = vec_set_get(&ls->set, ls->ids[r]);
        if (!v)
            return db_fail(ls->db, PV_ECORRUPT, "item %u has no vector", ls->ids[r]);
        memcpy(*x + r * dim, v, dim * sizeof **x);
    }
    return PV_OK;
}

/* ---- neighbours ------------------------------------------------------------- */

/* A neighbour list to fill: queries (rows of ls), k per row, answers as
 * rows of ls among those with want[row] set. */
typedef struct knn_req {
    live_set *ls;
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
    uint32_t r = id < q->ls->nid ? q->ls->row[id] : UINT32_MAX;
    return r != UINT32_MAX && q->want[r];
}

/* Copy one query's hits (best first, ids) into row i of the answer, the
 * query's own id left out. */
static void knn_take(knn_req *q, size_t i, const flat_hit *h, uint32_t nh)
{
    uint32_t self = q->ls->ids[q->qrows[i]], m = 0;
    uint32_t *nb = q->nbr + i * q->k;
    float *ds = q->dist + i * q->k;
    for (uint32_t a = 0; a < nh && m < q->k; a++) {
        uint32_t id = h[a].id;
        if (id == self || !keep_want(q, id))
            continue;
        nb[m] = q->ls->row[id];
        ds[m++] = dist_of(h[a].score);
    }
    for (; m < q->k; m++) {
        nb[m] = UINT32_MAX;
        ds[m] = 0;
    }
}

static int knn_exact(knn_req *q, const float *x)
{
    const uint32_t dim = q->ls->set.dim, kk = q->k + 1;
    const size_t block = 1024;
    flat_hit *h = pv_alloc_array(block * kk, sizeof *h);
    uint32_t *nh = pv_alloc_array(block, sizeof *nh);
    float *qv = pv_alloc_array(block, (size_t)dim * sizeof *qv);
    int rc = (h && nh && qv) ? PV_OK : PV_ENOMEM;
    for (size_t q0 = 0; q0 < q->nq && rc == 0; q0 += block) {
        size_t nb = q->nq - q0 < block ? q->nq - q0 : block;
        if (db_interrupted(q->ls->db)) {
            rc = PV_EINTR;
            break;
        }
        for (size_t i = 0; i < nb; i++)
            memcpy(qv + i * dim, x + (size_t)q->qrows[q0 + i] * dim, dim * sizeof *qv);
        if ((rc = flat_topk(&q->ls->set, qv, (uint32_t)nb, kk, keep_want, q, h, nh)) != 0)
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
    live_set *j = w->q->ls;
    store_txn *t = NULL;
    graph *g = NULL;
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit *hits = pv_alloc_array(w->ask, sizeof *hits);
    int rc = (s && hits) ? PV_OK : PV_ENOMEM;
    /* The thread's own transaction, with no cache (see dups.c). */
    codes_view cv = {0};
    if (rc == 0 && (rc = store_txn_begin(j->db->st, 0, &t)) == 0)
        rc = graph_open(j->db->st, t, 0, NULL, &g);
    /* Compact copies: walked on, every hit scored again in float32. */
    if (rc == 0 && (rc = codes_view_load(t, store_get_schema(j->db->st), &cv)) == 0)
        graph_use_codes(g, &cv, 1);
    for (size_t i = w->lo; i < w->hi && rc == 0; i++) {
        uint32_t r = w->q->qrows[i], id = j->ids[r], nh = 0;
        if ((i & 255) == 0 && db_interrupted(j->db)) {
            rc = PV_EINTR;
            break;
        }
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
    codes_view_free(&cv);
    store_txn_abort(t);
    hnsw_scratch_free(s);
    free(hits);
    return NULL;
}

/* From the graph, on nt threads. ask: hits asked per search (more than k
 * when answers are filtered, as for placement). */
static int knn_graph(knn_req *q, const float *x, uint32_t ask, unsigned nt)
{
    kworker w[KNN_MAX_THREADS];
    pthread_t th[KNN_MAX_THREADS];
    unsigned started = 0;
    int rc = PV_OK;
    if (nt > KNN_MAX_THREADS)
        nt = KNN_MAX_THREADS;
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
            db_fail(q->ls->db, rc, "nearest neighbours: %s", w[i].err[0] ? w[i].err : pv_strerror(rc));
    return rc;
}

int knn_rows(live_set *ls, const float *x, const uint32_t *qrows, size_t nq,
             const uint8_t *want, size_t nwant, uint32_t k, unsigned nthreads,
             uint32_t *nbr, float *dist)
{
    knn_req q = {.ls = ls, .qrows = qrows, .nq = nq, .want = want, .k = k, .nbr = nbr,
                 .dist = dist};
    int rc;
    if (k == 0 || nq == 0)
        return PV_OK;
    if (ls->n <= KNN_EXACT_MAX || (uint64_t)nq * nwant <= KNN_EXACT_PAIRS)
        rc = knn_exact(&q, x);
    else {
        /* When the answers are a part of the items, ask for more so that k
         * of them remain after the others are left out. */
        uint32_t ask = k + 1;
        if (nwant < ls->n)
            ask = 2 * k + 16;
        rc = knn_graph(&q, x, ask, nthreads);
    }
    if (rc != 0 && !ls->db->errmsg[0])
        db_fail(ls->db, rc, "nearest neighbours: %s", pv_strerror(rc));
    return rc;
}
