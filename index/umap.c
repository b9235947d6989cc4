/*
 * umap.c - UMAP (index room): the fuzzy simplicial set, the a/b curve fit,
 * the SGD layout and the placement of new points, after umap-learn 0.5.3
 * (umap_.py, layouts.py; docs/research/issue15-maps.md section 1). The
 * spectral initialisation is in umap_spectral.c.
 *
 * Same as umap-learn: smooth_knn_dist (binary search on sigma, 64 steps,
 * tolerance 1e-5, the 1e-3 mean-distance floor), membership strengths
 * exp(-(d - rho)/sigma), the fuzzy union A + A^T - A o A^T, pruning of
 * weights below max/epochs, epochs_per_sample = max(w)/w, the attractive
 * gradient -2ab d^2(b-1)/(1 + a d^2b), the repulsive one 2 gamma b /((0.001
 * + d^2)(1 + a d^2b)), clipping at 4, negative_sample_rate negative samples
 * per positive one, alpha = lr (1 - epoch/epochs) after each epoch. A
 * negative sample that coincides with the point gives no gradient (umap-
 * learn HEAD; 0.5.3 pushed it by 4 in every axis).
 *
 * Different, for reproducibility on any number of threads (umap-learn is
 * reproducible only on one): the edges are grouped by head vertex (the CSR
 * rows of the symmetric graph), each thread owns a range of head vertices
 * and writes only those, every vertex has its own random stream (splitmix64
 * seeded from the seed and the vertex id), and within an epoch the other
 * end of an edge and the negative samples are read from the positions as
 * they were at the start of the epoch (two buffers, swapped after each
 * epoch; a point's own position is updated as it goes). umap-learn's
 * move_other (edge (i,j) also pulls j towards i) is realised by the reverse
 * edge (j,i): the graph is symmetric, both edges have the same weight and
 * so the same sampling schedule, so when vertex i samples (i,j) it applies
 * the attraction twice, its own and the one j's edge would have given it.
 * That keeps umap-learn's balance of 2 attractive to negative_sample_rate
 * repulsive updates per sampling of a pair (applying it once, i.e. dropping
 * move_other, doubles the relative repulsion). On test_umap.c's 1,000
 * clustered points trustworthiness (k = 10) is 0.9717 this way, 0.9742 with
 * the attraction once, 0.9726 for umap-learn itself (seeded, one thread). Thread boundaries change nothing: each vertex's updates depend
 * only on the previous epoch's positions and its own stream.
 */
#include "pca.h"
#include "umap.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "pixvec.h"
#include "pv_util.h"

#define UMAP_DEFAULT_A 1.57694346f
#define UMAP_DEFAULT_B 0.89506088f
#define SMOOTH_K_TOLERANCE 1e-5
#define MIN_K_DIST_SCALE 1e-3
#define SMOOTH_N_ITER 64
#define AB_POINTS 300
#define UMAP_MAX_THREADS 256u
#define NEG_BATCH 8

void umap_defaults(umap_params *p)
{
    memset(p, 0, sizeof *p);
    p->dims = 2;
    p->n_neighbors = 15;
    p->min_dist = 0.1f;
    p->spread = 1.0f;
    p->epochs = 0;
    p->learning_rate = 1.0f;
    p->repulsion = 1.0f;
    p->negative_sample_rate = 5;
    p->init = UMAP_INIT_SPECTRAL;
    p->seed = 0;
    p->nthreads = 0;
}

/* ---- a and b --------------------------------------------------------------- */

/* Sum of squared residuals of 1/(1 + a x^2b) against the target. */
static double ab_cost(double a, double b, const double *x, const double *t)
{
    double s = 0;
    for (int i = 0; i < AB_POINTS; i++) {
        double xp = x[i] > 0 ? pow(x[i], 2 * b) : 0;
        double r = 1.0 / (1.0 + a * xp) - t[i];
        s += r * r;
    }
    return s;
}

int umap_ab(float min_dist, float spread, float *a, float *b)
{
    if (!a || !b || !isfinite(min_dist) || !isfinite(spread) || spread <= 0 || min_dist < 0 ||
        min_dist > spread)
        return PV_EINVAL;
    if (min_dist == 0.1f && spread == 1.0f) {
        *a = UMAP_DEFAULT_A;
        *b = UMAP_DEFAULT_B;
        return 0;
    }
    /* find_ab_params: curve_fit (MINPACK's LM) from (1, 1) on 300 points. */
    double x[AB_POINTS], t[AB_POINTS];
    for (int i = 0; i < AB_POINTS; i++) {
        x[i] = 3.0 * spread * i / (AB_POINTS - 1);
        t[i] = x[i] < min_dist ? 1.0 : exp(-(x[i] - min_dist) / spread);
    }
    double pa = 1, pb = 1, lambda = 1e-3;
    double cost = ab_cost(pa, pb, x, t);
    int ok = 0;
    for (int it = 0; it < 500; it++) {
        double jtj[3] = {0, 0, 0}, jtr[2] = {0, 0};
        for (int i = 0; i < AB_POINTS; i++) {
            double xp = x[i] > 0 ? pow(x[i], 2 * pb) : 0;
            double den = 1.0 + pa * xp, f = 1.0 / den, r = f - t[i];
            double ja = -xp / (den * den);
            double jb = x[i] > 0 ? -pa * xp * 2.0 * log(x[i]) / (den * den) : 0;
            jtj[0] += ja * ja;
            jtj[1] += ja * jb;
            jtj[2] += jb * jb;
            jtr[0] += ja * r;
            jtr[1] += jb * r;
        }
        int accepted = 0;
        for (int tries = 0; tries < 40 && !accepted; tries++) {
            double m00 = jtj[0] * (1 + lambda), m11 = jtj[2] * (1 + lambda), m01 = jtj[1];
            double det = m00 * m11 - m01 * m01;
            if (!(det > 0) || !isfinite(det)) {
                lambda *= 10;
                continue;
            }
            double da = -(m11 * jtr[0] - m01 * jtr[1]) / det;
            double db = -(m00 * jtr[1] - m01 * jtr[0]) / det;
            double na = pa + da, nb = pb + db;
            double nc = (na > 0 && nb > 0) ? ab_cost(na, nb, x, t) : INFINITY;
            if (isfinite(nc) && nc <= cost) {
                double rel = fabs(da) / (fabs(pa) + 1e-300) + fabs(db) / (fabs(pb) + 1e-300);
                pa = na;
                pb = nb;
                int small = cost - nc <= 1e-15 * (cost + 1e-300) && rel < 1e-10;
                cost = nc;
                lambda = lambda / 10 > 1e-12 ? lambda / 10 : 1e-12;
                accepted = 1;
                if (small || rel < 1e-12)
                    ok = 1;
            } else {
                lambda *= 10;
            }
        }
        if (!accepted)
            ok = 1; /* no step lowers the cost: at the minimum */
        if (ok)
            break;
    }
    if (!ok || !isfinite(pa) || !isfinite(pb) || pa <= 0 || pb <= 0)
        return PV_ENUMERIC;
    *a = (float)pa;
    *b = (float)pb;
    return 0;
}

/* ---- the fuzzy simplicial set --------------------------------------------- */

static int present(const uint32_t *nbr, size_t at)
{
    return !nbr || nbr[at] != UINT32_MAX;
}

int umap_smooth_knn(const float *dist, const uint32_t *nbr, size_t n, uint32_t kk,
                    uint32_t ld, int with_self, float local_connectivity, float *sigma,
                    float *rho)
{
    if (!dist || !sigma || !rho || kk == 0 || ld < kk || n == 0 ||
        !(local_connectivity >= 0) || (!with_self && kk < 2))
        return PV_EINVAL;
    const double target = log2((double)(with_self ? kk + 1 : kk));
    /* The mean of every distance (self entries included when with_self). */
    double tot = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < kk; j++)
            if (present(nbr, i * ld + j)) {
                tot += dist[i * ld + j];
                cnt++;
            }
        cnt += with_self ? 1 : 0;
    }
    const double mean_all = cnt ? tot / (double)cnt : 0;
    const int lc_index = (int)floor(local_connectivity);
    const double lc_interp = local_connectivity - lc_index;
    for (size_t i = 0; i < n; i++) {
        const float *d = dist + i * ld;
        /* rho: the local_connectivity-th nearest non-zero distance. */
        uint32_t nz = 0, first = 0;
        float r = 0, nzmax = 0, nzi = 0, nzi1 = 0;
        for (uint32_t j = 0; j < kk; j++) {
            if (!present(nbr, i * ld + j) || !(d[j] > 0))
                continue;
            if (nz == 0)
                first = j;
            if ((int)nz == lc_index - 1)
                nzi = d[j];
            if ((int)nz == lc_index)
                nzi1 = d[j];
            nzmax = d[j] > nzmax ? d[j] : nzmax;
            nz++;
        }
        if ((double)nz >= local_connectivity) {
            if (lc_index > 0) {
                r = nzi;
                if (lc_interp > SMOOTH_K_TOLERANCE)
                    r += (float)(lc_interp * (nzi1 - nzi));
            } else {
                r = nz ? (float)(lc_interp * d[first]) : 0;
            }
        } else if (nz > 0) {
            r = nzmax;
        }
        double lo = 0, hi = INFINITY, mid = 1.0;
        for (int it = 0; it < SMOOTH_N_ITER; it++) {
            double psum = 0;
            for (uint32_t j = with_self ? 0 : 1; j < kk; j++) {
                if (!present(nbr, i * ld + j))
                    continue;
                float dd = d[j] - r;
                psum += dd > 0 ? exp(-(dd / mid)) : 1.0;
            }
            if (fabs(psum - target) < SMOOTH_K_TOLERANCE)
                break;
            if (psum > target) {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                mid = isinf(hi) ? mid * 2 : (lo + hi) / 2.0;
            }
        }
        float s = (float)mid;
        if (r > 0) {
            double rt = 0;
            size_t rc = with_self ? 1 : 0;
            for (uint32_t j = 0; j < kk; j++)
                if (present(nbr, i * ld + j)) {
                    rt += d[j];
                    rc++;
                }
            double floor_ = MIN_K_DIST_SCALE * (rc ? rt / (double)rc : 0);
            if (s < floor_)
                s = (float)floor_;
        } else if (s < MIN_K_DIST_SCALE * mean_all) {
            s = (float)(MIN_K_DIST_SCALE * mean_all);
        }
        sigma[i] = s;
        rho[i] = r;
    }
    return 0;
}

void umap_graph_free(umap_graph *g)
{
    if (!g)
        return;
    free(g->rowptr);
    free(g->col);
    free(g->val);
    memset(g, 0, sizeof *g);
}

typedef struct gent {
    uint32_t col;
    float a, at; /* A_ij and A_ji */
} gent;

static int gent_cmp(const void *x, const void *y)
{
    const gent *p = x, *q = y;
    return p->col < q->col ? -1 : p->col > q->col;
}

int umap_fuzzy_graph(const uint32_t *nbr, const float *dist, size_t n, uint32_t kk,
                     uint32_t ld, const float *sigma, const float *rho, umap_graph *g)
{
    int rc = PV_ENOMEM;
    size_t *cnt = NULL, *pos = NULL;
    gent *ent = NULL;
    if (!nbr || !dist || !sigma || !rho || !g || kk == 0 || ld < kk || n == 0)
        return PV_EINVAL;
    memset(g, 0, sizeof *g);
    cnt = pv_calloc_array(n + 1, sizeof *cnt);
    pos = pv_alloc_array(n + 1, sizeof *pos);
    if (!cnt || !pos)
        goto done;
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < kk; j++) {
            uint32_t c = nbr[i * ld + j];
            if (c == UINT32_MAX)
                continue;
            if (c >= n || c == i) {
                rc = PV_EINVAL;
                goto done;
            }
            cnt[i]++;
            cnt[c]++;
        }
    size_t tot = 0;
    for (size_t i = 0; i < n; i++) {
        pos[i] = tot;
        tot += cnt[i];
    }
    pos[n] = tot;
    ent = pv_alloc_array(tot ? tot : 1, sizeof *ent);
    if (!ent)
        goto done;
    memcpy(cnt, pos, (n + 1) * sizeof *cnt); /* cnt: fill cursors now */
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < kk; j++) {
            size_t at = i * ld + j;
            uint32_t c = nbr[at];
            if (c == UINT32_MAX)
                continue;
            /* compute_membership_strengths */
            float v, dd = dist[at] - rho[i];
            if (dd <= 0 || sigma[i] == 0)
                v = 1.0f;
            else
                v = (float)exp(-((double)dd / (double)sigma[i]));
            ent[cnt[i]++] = (gent){c, v, 0};
            ent[cnt[c]++] = (gent){(uint32_t)i, 0, v};
        }
    /* Sort each row by column and merge: W = A + A^T - A o A^T. */
    size_t w = 0;
    g->rowptr = pv_alloc_array(n + 1, sizeof *g->rowptr);
    if (!g->rowptr)
        goto done;
    for (size_t i = 0; i < n; i++) {
        gent *r = ent + pos[i];
        size_t m = pos[i + 1] - pos[i];
        qsort(r, m, sizeof *r, gent_cmp);
        g->rowptr[i] = w;
        for (size_t e = 0; e < m;) {
            uint32_t c = r[e].col;
            float a = 0, at = 0;
            for (; e < m && r[e].col == c; e++) {
                a += r[e].a;
                at += r[e].at;
            }
            float val = (a + at) - a * at;
            if (val != 0) {
                ent[w].col = c; /* w <= e: compacting in place is safe */
                ent[w].a = val;
                w++;
            }
        }
    }
    g->rowptr[n] = w;
    g->n = n;
    g->col = pv_alloc_array(w ? w : 1, sizeof *g->col);
    g->val = pv_alloc_array(w ? w : 1, sizeof *g->val);
    if (!g->col || !g->val)
        goto done;
    for (size_t e = 0; e < w; e++) {
        g->col[e] = ent[e].col;
        g->val[e] = ent[e].a;
    }
    rc = 0;
done:
    if (rc)
        umap_graph_free(g);
    free(cnt);
    free(pos);
    free(ent);
    return rc;
}

/* Drop the weights below max/epochs (in place, rows stay sorted). */
static void graph_prune(umap_graph *g, uint32_t epochs)
{
    float mx = 0;
    size_t m = g->rowptr[g->n];
    for (size_t e = 0; e < m; e++)
        mx = g->val[e] > mx ? g->val[e] : mx;
    float thr = (float)((double)mx / (double)epochs);
    size_t w = 0, start = 0;
    for (size_t i = 0; i < g->n; i++) {
        size_t end = g->rowptr[i + 1];
        g->rowptr[i] = w;
        for (size_t e = start; e < end; e++)
            if (!(g->val[e] < thr)) {
                g->col[w] = g->col[e];
                g->val[w] = g->val[e];
                w++;
            }
        start = end;
    }
    g->rowptr[g->n] = w;
}

/* ---- the SGD ---------------------------------------------------------------- */

typedef struct sgd_shared {
    const size_t *rowptr;  /* head rows: edges rowptr[i]..rowptr[i+1] */
    const uint32_t *col;   /* tails */
    const double *eps;     /* epochs per sample */
    double *next, *next_neg;
    uint64_t *rng;         /* per head vertex */
    float *buf[2];         /* fit: the two position buffers; transform: buf[0]
                            * = buf[1] = the new points */
    const float *tail;     /* transform: the fixed layout; fit: NULL */
    size_t ntail;
    uint32_t dims, epochs, nsr;
    float a, b, gamma, alpha0;
    int fit;
    const atomic_int *cancel; /* umap_params.cancel */
    pthread_barrier_t bar;   /* after every epoch (fit) */
    pthread_mutex_t mu;      /* the start gate: workers wait until the */
    pthread_cond_t cv;       /* barrier knows how many threads started */
    int go;
} sgd_shared;

typedef struct sgd_worker {
    sgd_shared *s;
    size_t v0, v1, u0, u1;   /* head vertex ranges [v0, v1) and [u0, u1) */
    pthread_t thr;
} sgd_worker;

static inline float clip4(float v)
{
    return v > 4.0f ? 4.0f : v < -4.0f ? -4.0f : v;
}

/* Move head vertex i through its edges in epoch n; cur is its own position
 * (updated in place), other ends read from tail. */
static void sgd_vertex(const sgd_shared *s, size_t i, uint32_t n, float alpha,
                       float *restrict cur, const float *restrict tail)
{
    const uint32_t dims = s->dims;
    const float a = s->a, b = s->b;
    const float attr_mult = s->fit ? 2.0f : 1.0f; /* move_other by the reverse edge */
    const double nsr = (double)s->nsr;
    for (size_t e = s->rowptr[i]; e < s->rowptr[i + 1]; e++) {
        if (s->next[e] > (double)n)
            continue;
        const float *oth = tail + (size_t)s->col[e] * dims;
        float d2 = 0;
        for (uint32_t d = 0; d < dims; d++) {
            float t = cur[d] - oth[d];
            d2 += t * t;
        }
        if (d2 > 0) {
            float pb = powf(d2, b);
            float g = (-2.0f * a * b * (pb / d2)) / (a * pb + 1.0f);
            for (uint32_t d = 0; d < dims; d++)
                cur[d] += clip4(g * (cur[d] - oth[d])) * alpha * attr_mult;
        }
        s->next[e] += s->eps[e];
        const double epn = s->eps[e] / nsr;
        int nneg = s->nsr ? (int)(((double)n - s->next_neg[e]) / epn) : 0;
        /* The negative samples of one edge in batches: their gradients are
         * computed from the position before the batch (independent, so the
         * pow and divisions pipeline; one after the other they are a chain
         * of latencies), then applied in order, each clipped. */
        for (int q0 = 0; q0 < nneg; q0 += NEG_BATCH) {
            int nb = nneg - q0 < NEG_BATCH ? nneg - q0 : NEG_BATCH;
            size_t ks[NEG_BATCH];
            float dd[NEG_BATCH], gq[NEG_BATCH], c0[3];
            for (uint32_t d = 0; d < dims; d++)
                c0[d] = cur[d];
            for (int q = 0; q < nb; q++) {
                uint64_t r = pv_rand64(&s->rng[i]);
                ks[q] = (size_t)(((r >> 32) * (uint64_t)s->ntail) >> 32);
                __builtin_prefetch(tail + ks[q] * dims);
            }
            for (int q = 0; q < nb; q++) {
                const float *o = tail + ks[q] * dims;
                float acc = 0;
                for (uint32_t d = 0; d < dims; d++) {
                    float t = c0[d] - o[d];
                    acc += t * t;
                }
                dd[q] = acc;
            }
            for (int q = 0; q < nb; q++)
                gq[q] = (2.0f * s->gamma * b) / ((0.001f + dd[q]) * (a * powf(dd[q], b) + 1.0f));
            for (int q = 0; q < nb; q++) {
                /* coincident (or itself): no gradient (umap-learn HEAD) */
                if (!(dd[q] > 0) || (s->fit && ks[q] == i))
                    continue;
                const float *o = tail + ks[q] * dims;
                for (uint32_t d = 0; d < dims; d++)
                    cur[d] += clip4(gq[q] * (c0[d] - o[d])) * alpha;
            }
        }
        if (nneg > 0)
            s->next_neg[e] += nneg * epn;
    }
}

static void *sgd_run(void *arg)
{
    sgd_worker *w = arg;
    sgd_shared *s = w->s;
    const uint32_t dims = s->dims;
    int cur = 0, stop = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->go)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    for (uint32_t n = 0; n < s->epochs; n++) {
        /* A stop request: no more work, but every remaining barrier is
         * still met, since the threads may see the flag at different
         * epochs (a thread leaving early would leave the others waiting). */
        if (!stop && pv_stop_requested(s->cancel))
            stop = 1;
        if (stop) {
            if (s->fit)
                pthread_barrier_wait(&s->bar);
            continue;
        }
        /* alpha after epoch n-1 finished: lr (1 - (n-1)/epochs) */
        float alpha = n == 0 ? s->alpha0
                             : (float)((double)s->alpha0 *
                                       (1.0 - (double)(n - 1) / (double)s->epochs));
        float *src = s->buf[cur], *dst = s->buf[cur ^ 1];
        const float *tail = s->fit ? src : s->tail;
        for (int r = 0; r < 2; r++) {
            size_t v0 = r ? w->u0 : w->v0, v1 = r ? w->u1 : w->v1;
            if (s->fit && v1 > v0)
                memcpy(dst + v0 * dims, src + v0 * dims, (v1 - v0) * dims * sizeof *dst);
            for (size_t i = v0; i < v1; i++)
                sgd_vertex(s, i, n, alpha, dst + i * dims, tail);
        }
        if (s->fit) {
            pthread_barrier_wait(&s->bar);
            cur ^= 1;
        }
    }
    return NULL;
}

/* Run the SGD for nhead head vertices with the edges of rowptr/col/w (w
 * pruned, > 0). fit: y (nhead x dims) is both head and tail; else tail is
 * the fixed layout (ntail rows) and y the new points. */
static int sgd(const size_t *rowptr, const uint32_t *col, const float *w, size_t nhead,
               float *y, const float *tail, size_t ntail, const umap_params *p, float a,
               float b, float alpha0, uint32_t epochs, uint64_t seed_mix)
{
    int rc = PV_ENOMEM;
    size_t m = rowptr[nhead];
    double *eps = NULL, *next = NULL, *next_neg = NULL;
    uint64_t *rng = NULL;
    float *buf1 = NULL;
    sgd_worker *wk = NULL;
    int fit = tail == NULL;
    unsigned nt = par_threads(p->nthreads, UMAP_MAX_THREADS), started = 0;
    int bar_ok = 0, sync_ok = 0;
    sgd_shared s;
    memset(&s, 0, sizeof s);
    eps = pv_alloc_array(m ? m : 1, sizeof *eps);
    next = pv_alloc_array(m ? m : 1, sizeof *next);
    next_neg = pv_alloc_array(m ? m : 1, sizeof *next_neg);
    rng = pv_alloc_array(nhead, sizeof *rng);
    if (fit)
        buf1 = pv_alloc_array(nhead, (size_t)p->dims * sizeof *buf1);
    if (!eps || !next || !next_neg || !rng || (fit && !buf1))
        goto done;
    /* make_epochs_per_sample */
    float mx = 0;
    for (size_t e = 0; e < m; e++)
        mx = w[e] > mx ? w[e] : mx;
    const double nsr = (double)p->negative_sample_rate;
    for (size_t e = 0; e < m; e++) {
        float ns = (float)epochs * (w[e] / mx);
        eps[e] = ns > 0 ? (double)epochs / (double)ns : -1.0;
        next[e] = eps[e];
        next_neg[e] = nsr > 0 ? eps[e] / nsr : 0;
    }
    for (size_t i = 0; i < nhead; i++) {
        uint64_t st = p->seed ^ seed_mix ^ (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
        rng[i] = pv_rand64(&st);
    }
    s.rowptr = rowptr;
    s.col = col;
    s.eps = eps;
    s.next = next;
    s.next_neg = next_neg;
    s.rng = rng;
    s.buf[0] = y;
    s.buf[1] = fit ? buf1 : y;
    s.tail = tail;
    s.ntail = fit ? nhead : ntail;
    s.dims = p->dims;
    s.epochs = epochs;
    s.nsr = p->negative_sample_rate;
    s.a = a;
    s.b = b;
    s.gamma = p->repulsion;
    s.alpha0 = alpha0;
    s.fit = fit;
    s.cancel = p->cancel;
    if (nt > nhead)
        nt = (unsigned)nhead;
    if (nt < 1)
        nt = 1;
    wk = pv_calloc_array(nt, sizeof *wk);
    if (!wk)
        goto done;
    /* Ranges of head vertices with about equal numbers of edges. */
    size_t v = 0;
    for (unsigned t = 0; t < nt; t++) {
        size_t goal = (size_t)((double)m * (t + 1) / nt);
        wk[t].s = &s;
        wk[t].v0 = v;
        while (v < nhead && (t == nt - 1 || rowptr[v + 1] <= goal))
            v++;
        wk[t].v1 = v;
    }
    if (pthread_mutex_init(&s.mu, NULL) != 0)
        goto done;
    if (pthread_cond_init(&s.cv, NULL) != 0) {
        pthread_mutex_destroy(&s.mu);
        goto done;
    }
    sync_ok = 1;
    for (started = 1; started < nt; started++)
        if (pthread_create(&wk[started].thr, NULL, sgd_run, &wk[started]) != 0)
            break;
    /* Threads that did not start: their (contiguous) ranges go to the
     * caller's thread, which changes nothing in the result. */
    if (started < nt) {
        wk[0].u0 = wk[started].v0;
        wk[0].u1 = wk[nt - 1].v1;
    }
    if (fit && pthread_barrier_init(&s.bar, NULL, started) == 0)
        bar_ok = 1;
    pthread_mutex_lock(&s.mu);
    s.go = 1;
    if (fit && !bar_ok) { /* cannot synchronise: the workers do nothing */
        s.epochs = 0;
    }
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    sgd_run(&wk[0]);
    for (unsigned t = 1; t < started; t++)
        pthread_join(wk[t].thr, NULL);
    if (fit && !bar_ok)
        goto done;
    if (pv_stop_requested(p->cancel)) {
        rc = PV_EINTR;
        goto done;
    }
    if (fit && (epochs & 1))
        memcpy(y, buf1, nhead * (size_t)p->dims * sizeof *y);
    rc = 0;
done:
    if (bar_ok)
        pthread_barrier_destroy(&s.bar);
    if (sync_ok) {
        pthread_mutex_destroy(&s.mu);
        pthread_cond_destroy(&s.cv);
    }
    free(eps);
    free(next);
    free(next_neg);
    free(rng);
    free(buf1);
    free(wk);
    return rc;
}

/* ---- fit and transform ------------------------------------------------------ */

static int check_params(const umap_params *p)
{
    if (!p || (p->dims != 2 && p->dims != 3) || p->n_neighbors < 2 ||
        p->n_neighbors > UMAP_MAX_NEIGHBORS || p->epochs > UMAP_MAX_EPOCHS ||
        !isfinite(p->learning_rate) || !(p->learning_rate > 0) || !isfinite(p->repulsion) ||
        !(p->repulsion >= 0) || p->negative_sample_rate > 1000 ||
        (p->init != UMAP_INIT_SPECTRAL && p->init != UMAP_INIT_PCA &&
         p->init != UMAP_INIT_RANDOM))
        return PV_EINVAL;
    float a, b;
    return umap_ab(p->min_dist, p->spread, &a, &b) == PV_EINVAL ? PV_EINVAL : 0;
}

static int check_knn(const uint32_t *nbr, const float *dist, size_t n, uint32_t k, size_t nref,
                     int self_excluded)
{
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < k; j++) {
            uint32_t c = nbr[i * k + j];
            if (c == UINT32_MAX)
                continue;
            float d = dist[i * k + j];
            if (c >= nref || (self_excluded && c == i) || !isfinite(d) || d < 0)
                return PV_EINVAL;
        }
    return 0;
}

/* Standard normal from two uniform draws (Box-Muller). */
static double normal01(uint64_t *st)
{
    double u = pv_rand_unit(st), v = pv_rand_unit(st);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* The PCA start: 0, PV_ENOMEM, or 1 when it cannot be had (no input, fewer
 * input dimensions than the map's) and the caller falls back to random. */
static int init_pca(const float *x, size_t n, uint32_t dim, const umap_params *p, float *y)
{
    if (!x || dim < p->dims)
        return 1;
    int rc = pca_project(x, n, dim, p->dims, p->seed, y);
    return rc == PV_ENOMEM ? rc : rc ? 1 : 0;
}

/* The initial layout: spectral, PCA or random, then umap-learn's scaling
 * (max |coord| -> 10 plus N(0, 1e-4) noise; random: uniform(-10, 10)) and
 * the min-max rescale of every column to [0, 10]. */
static int init_layout(const float *x, size_t n, uint32_t dim, const umap_graph *g,
                       const umap_params *p, float *y)
{
    const uint32_t dims = p->dims;
    uint64_t st = p->seed ^ 0x5eed0f1a7e5ull;
    int rc = 1; /* 1: not done yet */
    if (p->init == UMAP_INIT_SPECTRAL) {
        rc = umap_spectral_init(g, dims, p->seed, p->nthreads, y);
        if (rc < 0)
            return rc;
    }
    if (rc == 1 && p->init != UMAP_INIT_RANDOM) {
        rc = init_pca(x, n, dim, p, y);
        if (rc < 0)
            return rc;
    }
    if (rc == 0) {
        float mx = 0;
        for (size_t i = 0; i < n * dims; i++)
            mx = fabsf(y[i]) > mx ? fabsf(y[i]) : mx;
        if (!(mx > 0) || !isfinite(mx))
            rc = 1;
        else {
            float ex = 10.0f / mx;
            for (size_t i = 0; i < n * dims; i++)
                y[i] = y[i] * ex + (float)(1e-4 * normal01(&st));
        }
    }
    if (rc == 1)
        for (size_t i = 0; i < n * dims; i++)
            y[i] = (float)(-10.0 + 20.0 * pv_rand_unit(&st));
    for (uint32_t d = 0; d < dims; d++) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            lo = y[i * dims + d] < lo ? y[i * dims + d] : lo;
            hi = y[i * dims + d] > hi ? y[i * dims + d] : hi;
        }
        if (!(hi > lo)) /* a flat column: spread it at random */
            for (size_t i = 0; i < n; i++)
                y[i * dims + d] = (float)(10.0 * pv_rand_unit(&st));
        else
            for (size_t i = 0; i < n; i++)
                y[i * dims + d] = 10.0f * (y[i * dims + d] - lo) / (hi - lo);
    }
    return 0;
}

static int all_finite(const float *y, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (!isfinite(y[i]))
            return 0;
    return 1;
}

int umap_fit(const float *x, size_t n, uint32_t dim, const uint32_t *nbr, const float *dist,
             uint32_t k, const umap_params *p, float *y)
{
    int rc;
    float *sigma = NULL, *rho = NULL, a, b;
    umap_graph g = {0};
    if (!nbr || !dist || !y || n < 2 || n > UINT32_MAX - 1 || k == 0 || check_params(p))
        return PV_EINVAL;
    if (p->init == UMAP_INIT_PCA && x && dim == 0)
        return PV_EINVAL;
    if ((rc = check_knn(nbr, dist, n, k, n, 1)))
        return rc;
    if ((rc = umap_ab(p->min_dist, p->spread, &a, &b)))
        return rc;
    uint32_t kk = p->n_neighbors - 1 < k ? p->n_neighbors - 1 : k;
    uint32_t epochs = p->epochs ? p->epochs : n <= 10000 ? 500 : 200;
    rc = PV_ENOMEM;
    sigma = pv_alloc_array(n, sizeof *sigma);
    rho = pv_alloc_array(n, sizeof *rho);
    if (!sigma || !rho)
        goto done;
    if ((rc = umap_smooth_knn(dist, nbr, n, kk, k, 1, 1.0f, sigma, rho)))
        goto done;
    if ((rc = umap_fuzzy_graph(nbr, dist, n, kk, k, sigma, rho, &g)))
        goto done;
    graph_prune(&g, epochs > 10 ? epochs : (n <= 10000 ? 500 : 200));
    if ((rc = init_layout(x, n, dim, &g, p, y)))
        goto done;
    rc = sgd(g.rowptr, g.col, g.val, n, y, NULL, 0, p, a, b, p->learning_rate, epochs, 0);
    if (!rc && !all_finite(y, n * p->dims))
        rc = PV_ENUMERIC;
done:
    free(sigma);
    free(rho);
    umap_graph_free(&g);
    return rc;
}

int umap_transform(const float *y_fit, size_t nfit, uint32_t dims, const uint32_t *nbr,
                   const float *dist, uint32_t k, size_t nnew, const umap_params *p,
                   float *y_new)
{
    int rc;
    float *sigma = NULL, *rho = NULL, *w = NULL, a, b;
    size_t *rowptr = NULL;
    uint32_t *col = NULL;
    if (!y_fit || !nbr || !dist || !y_new || nfit < 1 || nfit > UINT32_MAX - 1 || k == 0 ||
        nnew == 0 || check_params(p) || dims != p->dims)
        return PV_EINVAL;
    if (!all_finite(y_fit, nfit * dims))
        return PV_EINVAL;
    if ((rc = check_knn(nbr, dist, nnew, k, nfit, 0)))
        return rc;
    if ((rc = umap_ab(p->min_dist, p->spread, &a, &b)))
        return rc;
    uint32_t kk = p->n_neighbors < k ? p->n_neighbors : k;
    uint32_t epochs = p->epochs ? p->epochs / 3 : nnew <= 10000 ? 100 : 30;
    if (epochs == 0)
        epochs = 1;
    rc = PV_ENOMEM;
    sigma = pv_alloc_array(nnew, sizeof *sigma);
    rho = pv_alloc_array(nnew, sizeof *rho);
    rowptr = pv_alloc_array(nnew + 1, sizeof *rowptr);
    col = pv_alloc_array(nnew, (size_t)kk * sizeof *col);
    w = pv_alloc_array(nnew, (size_t)kk * sizeof *w);
    if (!sigma || !rho || !rowptr || !col || !w)
        goto done;
    if (kk >= 2) {
        if ((rc = umap_smooth_knn(dist, nbr, nnew, kk, k, 0, 0.0f, sigma, rho)))
            goto done;
    } else {
        for (size_t i = 0; i < nnew; i++)
            sigma[i] = 1.0f, rho[i] = 0;
    }
    /* Bipartite membership strengths, then init_graph_transform. */
    size_t m = 0;
    float mx = 0;
    for (size_t i = 0; i < nnew; i++) {
        float *yi = y_new + i * dims;
        double sum = 0, acc[3] = {0, 0, 0};
        int dup = -1;
        size_t r0 = m;
        rowptr[i] = m;
        for (uint32_t j = 0; j < kk; j++) {
            uint32_t c = nbr[i * k + j];
            if (c == UINT32_MAX)
                continue;
            float dd = dist[i * k + j] - rho[i];
            float v = (dd <= 0 || sigma[i] == 0) ? 1.0f
                                                 : (float)exp(-((double)dd / sigma[i]));
            if (v == 0)
                continue;
            col[m] = c;
            w[m++] = v;
            sum += v;
            mx = v > mx ? v : mx;
        }
        for (size_t e = r0; e < m && dup < 0; e++)
            if (w[e] == 1.0f)
                dup = (int)(e - r0);
        for (uint32_t d = 0; d < dims; d++) {
            if (m == r0) { /* no neighbour: the layout's mean */
                double s = 0;
                for (size_t q = 0; q < nfit; q++)
                    s += y_fit[q * dims + d];
                yi[d] = (float)(s / (double)nfit);
                continue;
            }
            if (dup >= 0) {
                yi[d] = y_fit[(size_t)col[r0 + dup] * dims + d];
                continue;
            }
            for (size_t e = r0; e < m; e++)
                acc[d] += (double)w[e] / sum * y_fit[(size_t)col[e] * dims + d];
            yi[d] = (float)acc[d];
        }
    }
    rowptr[nnew] = m;
    /* Prune below max/epochs, compacting the rows. */
    float thr = (float)((double)mx / (double)epochs);
    size_t wpos = 0, start = 0;
    for (size_t i = 0; i < nnew; i++) {
        size_t end = rowptr[i + 1];
        rowptr[i] = wpos;
        for (size_t e = start; e < end; e++)
            if (!(w[e] < thr)) {
                col[wpos] = col[e];
                w[wpos++] = w[e];
            }
        start = end;
    }
    rowptr[nnew] = wpos;
    if (wpos > 0)
        rc = sgd(rowptr, col, w, nnew, y_new, y_fit, nfit, p, a, b, p->learning_rate / 4.0f,
                 epochs, 0x7a4e5f0c3b2a1908ull);
    else
        rc = 0;
    if (!rc && !all_finite(y_new, nnew * dims))
        rc = PV_ENUMERIC;
done:
    free(sigma);
    free(rho);
    free(rowptr);
    free(col);
    free(w);
    return rc;
}
