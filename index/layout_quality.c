/*
 * layout_quality.c - trustworthiness and kept neighbours of a layout,
 * exact and streaming (index room). See layout_quality.h for the contract.
 *
 * sklearn.manifold.trustworthiness ranks every point against every other
 * through an n x n float64 distance matrix and its argsort (39 GB at
 * n = 70,000). Only k ranks per point are ever read: those of the point's
 * k layout neighbours j_1..j_k. So, per point i, the input distances to
 * its layout neighbours become k thresholds, and one pass over all other
 * points l counts how many lie strictly closer than each threshold:
 * r(i,j_m) = 1 + #{l : d(i,l) < d(i,j_m)}. With the thresholds sorted, a
 * point beyond the largest one costs one comparison, and the closer ones
 * add one to a per-threshold histogram whose prefix sums are the counts.
 *
 * The pass over l is a blocked self-join, as in flat.c's all-pairs scan:
 * for row blocks I <= J, S = -2 X_I X_J^T by one sgemm, and each entry
 * serves two points, i against l (row side) and l against i (column side),
 * so only the upper triangle of blocks is multiplied. The compared key is
 * v = ||x_l||^2 - 2 x_i.x_l = d^2(i,l) - ||x_i||^2 in float32. Exactness:
 * the float key is within B_i of its true value, where B_i comes from the
 * standard bound on a dot product's rounding in any summation order
 * (|fl(a.b) - a.b| <= gamma_dim |a||b|, Higham, "Accuracy and Stability of
 * Numerical Algorithms", 3.1) plus the two float roundings of the sum.
 * A comparison farther than B_i from a threshold is decided by the float
 * key; one within B_i is decided again from the distance computed in
 * double, the same function that gave the thresholds. So the result does
 * not depend on sgemm's blocking, the thread count or the machine.
 *
 * Workers take block pairs from a shared counter; each keeps its own
 * histogram (n x k counters), summed at the end, so no entry is written
 * by two threads. Each worker calls a single-threaded sgemm.
 *
 * Layout neighbours: the layout has 1 to 3 dimensions, so an exact k-d
 * tree (median splits on the widest side, Bentley 1975; Friedman, Bentley
 * and Finkel 1977 search with a bounded max-heap) finds them in about
 * O(n log n). Distances in double; ties broken by the lower index.
 */
#include "layout_quality.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pixvec.h"
#include "pv_util.h"

#define LQ_BLOCK 1024u    /* rows per sgemm block (4 MiB of scores) */
#define LQ_LEAF 16u       /* points per k-d tree leaf */
#define LQ_CHUNK 256u     /* points per task in the per-point phase */
#define LQ_MAX_THREADS 64u

/* ---- k-d tree over the layout -------------------------------------------- */

typedef struct kd_tree {
    const float *y;
    uint32_t dims, n;
    uint32_t *perm;   /* point ids, arranged by the splits */
    uint8_t *sdim;    /* per node (heap numbering, root 1): split dimension */
    float *sval;      /* per node: split value */
    size_t nnodes;
} kd_tree;

static inline float kd_coord(const kd_tree *t, uint32_t id, uint32_t d)
{
    return t->y[(size_t)id * t->dims + d];
}

/* Rearranges perm[lo, hi) so that perm[mid] holds the point whose
 * coordinate d ranks mid-lo, smaller-or-equal ones before it and
 * greater-or-equal ones after (Hoare's selection, median-of-three pivot). */
static void kd_select(kd_tree *t, uint32_t lo, uint32_t hi, uint32_t mid, uint32_t d)
{
    uint32_t *p = t->perm;
    while (hi - lo > 2) {
        uint32_t a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
        float va = kd_coord(t, p[a], d), vb = kd_coord(t, p[b], d), vc = kd_coord(t, p[c], d);
        float pv = va < vb ? (vb < vc ? vb : (va < vc ? vc : va))
                           : (va < vc ? va : (vb < vc ? vc : vb));
        uint32_t i = lo, j = hi - 1;
        for (;;) {
            while (kd_coord(t, p[i], d) < pv)
                i++;
            while (kd_coord(t, p[j], d) > pv)
                j--;
            if (i >= j)
                break;
            uint32_t s = p[i];
            p[i] = p[j];
            p[j] = s;
            i++;
            j--;
        }
        /* [lo, j] <= pv <= [j + 1, hi) */
        if (mid <= j)
            hi = j + 1;
        else
            lo = j + 1;
    }
    if (hi - lo == 2 && kd_coord(t, p[lo], d) > kd_coord(t, p[lo + 1], d)) {
        uint32_t s = p[lo];
        p[lo] = p[lo + 1];
        p[lo + 1] = s;
    }
}

static void kd_build(kd_tree *t, size_t node, uint32_t lo, uint32_t hi)
{
    if (hi - lo <= LQ_LEAF)
        return;
    float mn[3] = {FLT_MAX, FLT_MAX, FLT_MAX}, mx[3] = {-FLT_MAX, -FLT_MAX, -FLT_MAX};
    for (uint32_t i = lo; i < hi; i++)
        for (uint32_t d = 0; d < t->dims; d++) {
            float v = kd_coord(t, t->perm[i], d);
            mn[d] = v < mn[d] ? v : mn[d];
            mx[d] = v > mx[d] ? v : mx[d];
        }
    uint32_t sd = 0;
    for (uint32_t d = 1; d < t->dims; d++)
        if ((double)mx[d] - mn[d] > (double)mx[sd] - mn[sd])
            sd = d;
    uint32_t mid = lo + (hi - lo) / 2;
    kd_select(t, lo, hi, mid, sd);
    t->sdim[node] = (uint8_t)sd;
    t->sval[node] = kd_coord(t, t->perm[mid], sd);
    kd_build(t, 2 * node, lo, mid);
    kd_build(t, 2 * node + 1, mid, hi);
}

/* The bounded max-heap of a query: the k best (distance, id) so far, the
 * worst at the root; (d, id) pairs compare by distance, then id. */
typedef struct kd_heap {
    double *d;
    uint32_t *id;
    uint32_t n, k;
} kd_heap;

static inline int kd_worse(double da, uint32_t ia, double db, uint32_t ib)
{
    return da > db || (da == db && ia > ib);
}

static void kd_heap_offer(kd_heap *h, double d, uint32_t id)
{
    uint32_t i;
    if (h->n < h->k) {
        i = h->n++;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!kd_worse(d, id, h->d[p], h->id[p]))
                break;
            h->d[i] = h->d[p];
            h->id[i] = h->id[p];
            i = p;
        }
    } else {
        if (!kd_worse(h->d[0], h->id[0], d, id))
            return;
        i = 0;
        for (;;) {
            uint32_t c = 2 * i + 1;
            if (c >= h->n)
                break;
            if (c + 1 < h->n && kd_worse(h->d[c + 1], h->id[c + 1], h->d[c], h->id[c]))
                c++;
            if (!kd_worse(h->d[c], h->id[c], d, id))
                break;
            h->d[i] = h->d[c];
            h->id[i] = h->id[c];
            i = c;
        }
    }
    h->d[i] = d;
    h->id[i] = id;
}

static void kd_search(const kd_tree *t, size_t node, uint32_t lo, uint32_t hi,
                      const float *q, uint32_t self, kd_heap *h)
{
    if (hi - lo <= LQ_LEAF) {
        for (uint32_t i = lo; i < hi; i++) {
            uint32_t id = t->perm[i];
            if (id == self)
                continue;
            double s = 0;
            for (uint32_t d = 0; d < t->dims; d++) {
                double e = (double)kd_coord(t, id, d) - q[d];
                s += e * e;
            }
            kd_heap_offer(h, s, id);
        }
        return;
    }
    uint32_t mid = lo + (hi - lo) / 2;
    double diff = (double)q[t->sdim[node]] - t->sval[node];
    int left_first = diff <= 0;
    if (left_first)
        kd_search(t, 2 * node, lo, mid, q, self, h);
    else
        kd_search(t, 2 * node + 1, mid, hi, q, self, h);
    /* The far side can hold a point at distance |diff| at best; equal
     * distance still matters (the id breaks the tie). */
    if (h->n < h->k || diff * diff <= h->d[0]) {
        if (left_first)
            kd_search(t, 2 * node + 1, mid, hi, q, self, h);
        else
            kd_search(t, 2 * node, lo, mid, q, self, h);
    }
}

/* ---- shared state ---------------------------------------------------------- */

typedef struct lq_ctx {
    const float *x, *y;
    uint32_t n, dim, dims, k;
    kd_tree tree;
    double *nrm2;     /* ||x_i||^2 in double */
    float *nrm2f;     /* the same, rounded to float (what the key adds) */
    uint32_t *nbr;    /* n x k layout neighbours, sorted by input distance */
    double *thr;      /* n x k: d^2(i, nbr) in double, ascending */
    float *lo, *hi;   /* n x k: the key's sure bounds around each threshold */
    uint32_t nblocks;
    size_t npairs;    /* block pairs I <= J */
    pthread_mutex_t mu;
    size_t next;      /* the next task (under mu) */
    size_t ntasks;
} lq_ctx;

typedef struct lq_worker {
    lq_ctx *c;
    uint32_t *hist;   /* n x k: points first closer than threshold m */
    float *s;         /* LQ_BLOCK x LQ_BLOCK scores */
    double *hd;       /* heap scratch */
    uint32_t *hid;
} lq_worker;

static size_t lq_take(lq_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    size_t t = c->next < c->ntasks ? c->next++ : SIZE_MAX;
    pthread_mutex_unlock(&c->mu);
    return t;
}

/* d^2(i, l) in double, from the differences (exact in double) with eight
 * partial sums (a shape compilers turn into vector code; built for
 * AVX-512, AVX2 and plain x86-64, picked at load time): one fixed order
 * per build, so a threshold and a recheck of the same pair agree bit for bit,
 * and exact ties stay ties. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static double lq_d2(const lq_ctx *c, uint32_t i, uint32_t l)
{
    const float *a = c->x + (size_t)i * c->dim, *b = c->x + (size_t)l * c->dim;
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t d = 0;
    for (; d + 8 <= c->dim; d += 8)
        for (uint32_t j = 0; j < 8; j++) {
            double e = (double)a[d + j] - b[d + j];
            s[j] += e * e;
        }
    for (; d < c->dim; d++) {
        double e = (double)a[d] - b[d];
        s[0] += e * e;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* ---- phase 1: layout neighbours and thresholds, per point ---------------- */

static void lq_point(lq_ctx *c, lq_worker *w, uint32_t i)
{
    uint32_t k = c->k;
    kd_heap h = {w->hd, w->hid, 0, k};
    kd_search(&c->tree, 1, 0, c->n, c->y + (size_t)i * c->dims, i, &h);
    uint32_t *nb = c->nbr + (size_t)i * k;
    double *th = c->thr + (size_t)i * k;
    for (uint32_t m = 0; m < k; m++) {
        /* insertion by (input distance, id): k is small */
        uint32_t id = h.id[m];
        double d2 = lq_d2(c, i, id);
        uint32_t p = m;
        while (p > 0 && (th[p - 1] > d2 || (th[p - 1] == d2 && nb[p - 1] > id))) {
            th[p] = th[p - 1];
            nb[p] = nb[p - 1];
            p--;
        }
        th[p] = d2;
        nb[p] = id;
    }
    /* |v - key| <= u|v| + u ||x_l||^2 + 2 gamma_dim ||x_i|| ||x_l||, with
     * |v| <= (M^2 + 2 ||x_i|| M)(1 + small); the double thresholds'
     * own error is far below the margin added. */
    const double u = 0x1p-24;
    double mi = sqrt(c->nrm2[i]), mm = sqrt(c->nrm2[c->n]);
    double gam = c->dim * u / (1 - c->dim * u);
    double b = 2 * u * (mm * mm + 2 * mi * mm) + 2 * gam * mi * mm;
    b = b * 1.0625 + 1e-12 * (mm * mm + mi * mi) + DBL_MIN;
    /* the float bounds of the key: v < lo[m] is surely closer than
     * neighbour m, v > hi[m] surely not; rounded outwards */
    float *lo = c->lo + (size_t)i * k, *hi = c->hi + (size_t)i * k;
    for (uint32_t m = 0; m < k; m++) {
        double t = th[m] - c->nrm2[i];
        float fl = (float)(t - b), fh = (float)(t + b);
        if ((double)fl > t - b)
            fl = nextafterf(fl, -INFINITY);
        if ((double)fh < t + b)
            fh = nextafterf(fh, INFINITY);
        lo[m] = fl;
        hi[m] = fh;
    }
}

/* ---- phase 2: the blocked self-join ---------------------------------------- */

/* Entry of point i against point l (l != i), float key v < hi[k-1]: adds
 * one to the histogram slot of the first (nearest) threshold l is closer
 * than. Sure decisions from the float bounds; the uncertain ones, if any,
 * from the distance in double. */
static void lq_count(const lq_ctx *c, uint32_t *hist, uint32_t i, uint32_t l, float v)
{
    uint32_t k = c->k, c1 = 0, c2 = 0;
    const float *lo = c->lo + (size_t)i * k, *hi = c->hi + (size_t)i * k;
    for (uint32_t m = 0; m < k; m++) {
        c1 += lo[m] <= v; /* m < c1: maybe not closer */
        c2 += hi[m] < v;  /* m < c2: surely not closer */
    }
    if (c1 != c2) {
        const double *th = c->thr + (size_t)i * k;
        double de = lq_d2(c, i, l);
        while (c2 < c1 && !(de < th[c2]))
            c2++;
        c1 = c2;
    }
    if (c1 < k)
        hist[(size_t)i * k + c1]++;
}

static void lq_pair(lq_ctx *c, lq_worker *w, size_t p)
{
    /* pair p -> (I, J), I <= J, row by row of the upper triangle */
    uint32_t nb = c->nblocks, bi = 0;
    while (p >= (size_t)(nb - bi)) {
        p -= nb - bi;
        bi++;
    }
    uint32_t bj = bi + (uint32_t)p;
    uint32_t i0 = bi * LQ_BLOCK, j0 = bj * LQ_BLOCK;
    uint32_t mi = c->n - i0 < LQ_BLOCK ? c->n - i0 : LQ_BLOCK;
    uint32_t mj = c->n - j0 < LQ_BLOCK ? c->n - j0 : LQ_BLOCK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mi, (int)mj, (int)c->dim, -2.0f,
                c->x + (size_t)i0 * c->dim, (int)c->dim, c->x + (size_t)j0 * c->dim,
                (int)c->dim, 0.0f, w->s, (int)mj);
    const float *nfj = c->nrm2f + j0, *hij = c->hi + (size_t)j0 * c->k + c->k - 1;
    int diag = bi == bj;
    for (uint32_t a = 0; a < mi; a++) {
        uint32_t i = i0 + a;
        const float *srow = w->s + (size_t)a * mj;
        float capi = c->hi[(size_t)i * c->k + c->k - 1], nfi = c->nrm2f[i];
        for (uint32_t b0 = 0; b0 < mj; b0 += 16) {
            uint32_t b1 = mj - b0 < 16 ? mj : b0 + 16;
            int any = 0;
            for (uint32_t b = b0; b < b1; b++)
                any |= (srow[b] + nfj[b] < capi) | (srow[b] + nfi < hij[(size_t)b * c->k]);
            if (!any)
                continue;
            for (uint32_t b = b0; b < b1; b++) {
                uint32_t l = j0 + b;
                if (l == i)
                    continue;
                float vr = srow[b] + nfj[b];
                if (vr < capi)
                    lq_count(c, w->hist, i, l, vr);
                float vc = srow[b] + nfi;
                if (!diag && vc < hij[(size_t)b * c->k])
                    lq_count(c, w->hist, l, i, vc);
            }
        }
    }
}

static void *lq_run_points(void *arg)
{
    lq_worker *w = arg;
    lq_ctx *c = w->c;
    size_t t;
    while ((t = lq_take(c)) != SIZE_MAX) {
        uint32_t lo = (uint32_t)(t * LQ_CHUNK);
        uint32_t hi = c->n - lo < LQ_CHUNK ? c->n : lo + LQ_CHUNK;
        for (uint32_t i = lo; i < hi; i++)
            lq_point(c, w, i);
    }
    return NULL;
}

static void *lq_run_pairs(void *arg)
{
    lq_worker *w = arg;
    size_t t;
    while ((t = lq_take(w->c)) != SIZE_MAX)
        lq_pair(w->c, w, t);
    return NULL;
}

/* Runs fn on nt workers (this thread is worker 0); a thread that cannot
 * start leaves its share to the others (tasks come from the counter). */
static void lq_parallel(lq_ctx *c, lq_worker *w, unsigned nt, void *(*fn)(void *),
                        size_t ntasks)
{
    pthread_t th[LQ_MAX_THREADS];
    unsigned started = 0;
    c->next = 0;
    c->ntasks = ntasks;
    for (unsigned t = 1; t < nt; t++) {
        if (pthread_create(&th[t], NULL, fn, &w[t]) != 0)
            break;
        started = t;
    }
    fn(&w[0]);
    for (unsigned t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
}

static int lq_check_args(const float *x, size_t n, uint32_t dim, const float *y, uint32_t dims,
                         uint32_t k, double *trust, double *kept)
{
    if (!x || !y || !trust || !kept || dim == 0 || dims < 1 || dims > 3 || k == 0 ||
        n > UINT32_MAX - 1 || (uint64_t)2 * k >= n || dim > INT_MAX)
        return PV_EINVAL;
    if (n > SIZE_MAX / dim)
        return PV_ENOMEM;
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(x[i]))
            return PV_ENUMERIC;
    for (size_t i = 0; i < n * dims; i++)
        if (!isfinite(y[i]))
            return PV_ENUMERIC;
    return 0;
}

int layout_quality(const float *x, size_t n, uint32_t dim, const float *y, uint32_t dims,
                   uint32_t k, unsigned nthreads, double *trust, double *kept)
{
    lq_ctx c;
    lq_worker w[LQ_MAX_THREADS];
    unsigned nt = nthreads;
    int rc = lq_check_args(x, n, dim, y, dims, k, trust, kept), blas_saved = 0, mu_ok = 0;
    memset(&c, 0, sizeof c);
    memset(w, 0, sizeof w);
    if (rc != 0)
        goto done;
    if (nt == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nt = cores > 0 ? (unsigned)cores : 1;
    }
    if (nt > LQ_MAX_THREADS)
        nt = LQ_MAX_THREADS;
    c.x = x;
    c.y = y;
    c.n = (uint32_t)n;
    c.dim = dim;
    c.dims = dims;
    c.k = k;
    c.nblocks = (uint32_t)((n + LQ_BLOCK - 1) / LQ_BLOCK);
    c.npairs = (size_t)c.nblocks * (c.nblocks + 1) / 2;
    if (pthread_mutex_init(&c.mu, NULL) != 0) {
        rc = PV_ENOMEM;
        goto done;
    }
    mu_ok = 1;

    /* k-d tree: heap-numbered nodes, depth <= ceil(log2(n / LEAF)) + 1 */
    c.tree.y = y;
    c.tree.dims = dims;
    c.tree.n = c.n;
    c.tree.nnodes = 2;
    while (c.tree.nnodes / 2 * LQ_LEAF < n)
        c.tree.nnodes *= 2;
    c.tree.nnodes *= 2;
    c.tree.perm = pv_alloc_array(n, sizeof *c.tree.perm);
    c.tree.sdim = pv_calloc_array(c.tree.nnodes, sizeof *c.tree.sdim);
    c.tree.sval = pv_calloc_array(c.tree.nnodes, sizeof *c.tree.sval);
    c.nrm2 = pv_alloc_array(n + 1, sizeof *c.nrm2);
    c.nrm2f = pv_alloc_array(n, sizeof *c.nrm2f);
    c.nbr = pv_alloc_array(n, (size_t)k * sizeof *c.nbr);
    c.thr = pv_alloc_array(n, (size_t)k * sizeof *c.thr);
    c.lo = pv_alloc_array(n, (size_t)k * sizeof *c.lo);
    c.hi = pv_alloc_array(n, (size_t)k * sizeof *c.hi);
    if (!c.tree.perm || !c.tree.sdim || !c.tree.sval || !c.nrm2 || !c.nrm2f || !c.nbr ||
        !c.thr || !c.lo || !c.hi) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (unsigned t = 0; t < nt; t++) {
        w[t].c = &c;
        w[t].hist = pv_calloc_array(n, (size_t)k * sizeof *w[t].hist);
        w[t].s = pv_alloc_array((size_t)LQ_BLOCK * LQ_BLOCK, sizeof *w[t].s);
        w[t].hd = pv_alloc_array(k, sizeof *w[t].hd);
        w[t].hid = pv_alloc_array(k, sizeof *w[t].hid);
        if (!w[t].hist || !w[t].s || !w[t].hd || !w[t].hid) {
            rc = PV_ENOMEM;
            goto done;
        }
    }
    double mx = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        double s = 0;
        const float *a = x + (size_t)i * dim;
        for (uint32_t d = 0; d < dim; d++)
            s += (double)a[d] * a[d];
        c.nrm2[i] = s;
        c.nrm2f[i] = (float)s;
        mx = s > mx ? s : mx;
        c.tree.perm[i] = i;
    }
    c.nrm2[n] = mx; /* the largest squared norm, for the bounds */
    kd_build(&c.tree, 1, 0, c.n);

    blas_saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    lq_parallel(&c, w, nt, lq_run_points, (n + LQ_CHUNK - 1) / LQ_CHUNK);
    lq_parallel(&c, w, nt, lq_run_pairs, c.npairs);
    openblas_set_num_threads(blas_saved);

    /* counts: cnt_m = sum of hist[0..m] over the workers; rank = cnt + 1 */
    uint64_t tsum = 0, nkept = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        uint64_t cnt = 0;
        for (uint32_t m = 0; m < k; m++) {
            for (unsigned t = 0; t < nt; t++)
                cnt += w[t].hist[(size_t)i * k + m];
            uint64_t r = cnt + 1;
            if (r > k)
                tsum += r - k;
            else
                nkept++;
        }
    }
    /* sklearn's expression, in its order */
    double nd = (double)n, kd = (double)k;
    *trust = 1.0 - (double)tsum * (2.0 / (nd * kd * (2.0 * nd - 3.0 * kd - 1.0)));
    *kept = (double)nkept / (nd * kd);
done:
    for (unsigned t = 0; t < LQ_MAX_THREADS; t++) {
        free(w[t].hist);
        free(w[t].s);
        free(w[t].hd);
        free(w[t].hid);
    }
    free(c.tree.perm);
    free(c.tree.sdim);
    free(c.tree.sval);
    free(c.nrm2);
    free(c.nrm2f);
    free(c.nbr);
    free(c.thr);
    free(c.lo);
    free(c.hi);
    if (mu_ok)
        pthread_mutex_destroy(&c.mu);
    return rc;
}
