/*
 * tsne.c - t-SNE (index room). See tsne.h for the contract.
 *
 * Follows scikit-learn 1.2.1's TSNE (sklearn/manifold/_t_sne.py,
 * _utils.pyx, _barnes_hut_tsne.pyx; docs/research/issue15-maps.md section
 * 2.1): the conditional P of each point by the binary search of
 * _binary_search_perplexity (squared distances as float32, double work,
 * 100 steps, entropy tolerance 1e-5), the joint P = (P + P^T) / sum(P)
 * stored as float32 CSR, PCA initialisation scaled so column 0 has
 * standard deviation 1e-4, then two stages of gradient descent (early
 * exaggeration 12 with momentum 0.5 for 250 iterations, then momentum 0.8;
 * update and gains reset between them; gains +0.2 / *0.8, floor 0.01;
 * stop when the norm of the gained gradient falls to 1e-7). The gradient
 * is c * (sum_j p_ij w_ij (y_i - y_j) - sum_j w_ij^2 (y_i - y_j) / Z) with
 * w = (dof / (dof + d^2))^((dof+1)/2), dof = max(dims - 1, 1),
 * c = 2 (dof+1) / dof, Z = sum_{i != j} w_ij (the BH code's form).
 * scikit-learn's early stopping on a stalled KL (checked every 50
 * iterations) is left out: the iteration count is the caller's.
 *
 * Repulsion: exact (every pair), Barnes-Hut (van der Maaten 2014: a
 * quadtree in 2-D, an octree in 3-D, built serially each iteration in
 * point order, then walked read-only by every thread; a cell is summarised
 * when it is a leaf or (cell width)^2 / d^2 < theta^2, d measured to its
 * centre of mass; a leaf that coincides with the query point within 1e-6
 * per axis, itself or duplicates, is skipped, as _quad_tree.pyx does), or
 * FFT interpolation (tsne_fft.c). Determinism: every per-point sum runs in
 * a fixed order in one thread, and sums over points (Z, the gradient norm)
 * are taken serially over per-point values, so no result depends on the
 * number of threads.
 *
 * Placement (tsne_place) follows openTSNE's transform (section 2.2).
 */
#include "tsne.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "pca.h"
#include "pixvec.h"
#include "pv_util.h"
#include "tsne_int.h"

#define TSNE_STEPS 100
#define TSNE_PERP_TOL 1e-5
#define TSNE_EPS_DBL 1e-8
#define TSNE_MIN_GAIN 0.01f
#define TSNE_MIN_GRAD_NORM 1e-7
#define TSNE_DUP_EPS 1e-6
#define TSNE_MAX_DEPTH 60
#define PLACE_PERPLEXITY 5.0f
#define PLACE_K 25u
#define PLACE_ITERS 250
#define PLACE_LR 0.1f
#define PLACE_MOMENTUM 0.8f
#define PLACE_EXAG 1.5f
#define PLACE_MAX_GRAD 0.25

void tsne_defaults(tsne_params *p)
{
    memset(p, 0, sizeof *p);
    p->dims = 2;
    p->perplexity = 30.0f;
    p->early_exaggeration = 12.0f;
    p->exaggeration_iters = 250;
    p->iters = 1000;
    p->learning_rate = 0;
    p->theta = 0.5f;
    p->method = TSNE_AUTO;
    p->seed = 0;
    p->nthreads = 0;
}

/* ---- affinities ---------------------------------------------------------- */

/* Valid neighbours in row i: the first entries before UINT32_MAX, at most
 * kk. */
static uint32_t row_len(const uint32_t *nbr, uint32_t k, size_t i, uint32_t kk)
{
    uint32_t m = 0;
    while (m < kk && nbr[i * k + m] != UINT32_MAX)
        m++;
    return m;
}

/* sklearn's _binary_search_perplexity for one row of m squared distances
 * (float32) into p (m doubles). */
static void perp_row(const float *d2, uint32_t m, double log_perp, double *p)
{
    double beta = 1.0, beta_min = -INFINITY, beta_max = INFINITY;
    for (int l = 0; l < TSNE_STEPS; l++) {
        double sum = 0;
        for (uint32_t j = 0; j < m; j++) {
            p[j] = exp(-(double)d2[j] * beta);
            sum += p[j];
        }
        if (sum == 0.0)
            sum = TSNE_EPS_DBL;
        double sdp = 0;
        for (uint32_t j = 0; j < m; j++) {
            p[j] /= sum;
            sdp += (double)d2[j] * p[j];
        }
        double diff = log(sum) + beta * sdp - log_perp;
        if (fabs(diff) <= TSNE_PERP_TOL)
            break;
        if (diff > 0) {
            beta_min = beta;
            beta = beta_max == INFINITY ? beta * 2.0 : (beta + beta_max) / 2.0;
        } else {
            beta_max = beta;
            beta = beta_min == -INFINITY ? beta / 2.0 : (beta + beta_min) / 2.0;
        }
    }
}

typedef struct cond_ctx {
    const uint32_t *nbr;
    const float *dist;
    uint32_t k, kk;
    double log_perp;
    double *cond;
} cond_ctx;

static void cond_range(void *vc, size_t lo, size_t hi)
{
    cond_ctx *c = vc;
    float d2[1024];
    for (size_t i = lo; i < hi; i++) {
        uint32_t m = row_len(c->nbr, c->k, i, c->kk);
        double *row = c->cond + i * c->kk;
        for (uint32_t j = 0; j < m; j++) {
            float d = c->dist[i * c->k + j];
            d2[j] = d * d;
        }
        for (uint32_t j = 0; j < c->kk; j++)
            row[j] = 0;
        perp_row(d2, m, c->log_perp, row);
    }
}

static int check_graph(size_t n, const uint32_t *nbr, const float *dist,
                       uint32_t k, uint32_t kk)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t m = row_len(nbr, k, i, kk);
        for (uint32_t j = 0; j < m; j++) {
            uint32_t v = nbr[i * k + j];
            float d = dist[i * k + j];
            if (v >= n || v == i)
                return PV_EINVAL;
            if (!isfinite(d) || d < 0)
                return PV_ENUMERIC;
        }
    }
    return 0;
}

static uint32_t perp_k(uint32_t k, float perplexity)
{
    double f = floor(3.0 * (double)perplexity + 1.0);
    uint32_t kk = f < (double)k ? (uint32_t)f : k;
    return kk > 1024 ? 1024 : kk;
}

static int cond_p(size_t n, const uint32_t *nbr, const float *dist, uint32_t k,
                  uint32_t kk, float perplexity, unsigned nthreads, double *cond)
{
    int rc = check_graph(n, nbr, dist, k, kk);
    if (rc)
        return rc;
    cond_ctx c = {nbr, dist, k, kk, log((double)perplexity), cond};
    par_run(par_threads(nthreads, PAR_MAX_THREADS), n, cond_range, &c);
    return 0;
}

int tsne_conditional_p(size_t n, const uint32_t *nbr, const float *dist,
                       uint32_t k, float perplexity, unsigned nthreads,
                       double *cond, uint32_t *kk)
{
    if (!nbr || !dist || !cond || !kk || k == 0 || !(perplexity > 0) ||
        !isfinite(perplexity))
        return PV_EINVAL;
    *kk = perp_k(k, perplexity);
    return cond_p(n, nbr, dist, k, *kk, perplexity, nthreads, cond);
}

void tsne_csr_free(tsne_csr *m)
{
    if (!m)
        return;
    free(m->rowptr);
    free(m->col);
    free(m->val);
    memset(m, 0, sizeof *m);
}

typedef struct csr_ent {
    uint32_t col;
    double v;
} csr_ent;

static int ent_cmp(const void *a, const void *b)
{
    uint32_t x = ((const csr_ent *)a)->col, y = ((const csr_ent *)b)->col;
    return (x > y) - (x < y);
}

typedef struct sort_ctx {
    size_t *rowptr;
    csr_ent *ent;
    size_t *len; /* merged length per row */
} sort_ctx;

static void sort_range(void *vc, size_t lo, size_t hi)
{
    sort_ctx *c = vc;
    for (size_t i = lo; i < hi; i++) {
        csr_ent *e = c->ent + c->rowptr[i];
        size_t m = c->rowptr[i + 1] - c->rowptr[i], w = 0;
        qsort(e, m, sizeof *e, ent_cmp);
        for (size_t r = 0; r < m; r++) { /* a + b == b + a: order-free */
            if (w > 0 && e[w - 1].col == e[r].col)
                e[w - 1].v += e[r].v;
            else
                e[w++] = e[r];
        }
        c->len[i] = w;
    }
}

int tsne_joint_p(size_t n, const uint32_t *nbr, const float *dist, uint32_t k,
                 float perplexity, unsigned nthreads, tsne_csr *p)
{
    if (!p)
        return PV_EINVAL;
    memset(p, 0, sizeof *p);
    int rc = PV_ENOMEM;
    uint32_t kk = 0;
    double *cond = NULL;
    size_t *cnt = NULL, *len = NULL;
    csr_ent *ent = NULL;
    if (!nbr || !dist || k == 0 || n < 2 || !(perplexity > 0) ||
        !isfinite(perplexity))
        return PV_EINVAL;
    kk = perp_k(k, perplexity);
    cond = pv_alloc_array(n, (size_t)kk * sizeof *cond);
    cnt = pv_calloc_array(n + 1, sizeof *cnt);
    len = pv_alloc_array(n, sizeof *len);
    if (!cond || !cnt || !len)
        goto done;
    rc = cond_p(n, nbr, dist, k, kk, perplexity, nthreads, cond);
    if (rc)
        goto done;
    rc = PV_ENOMEM;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t m = row_len(nbr, k, i, kk);
        cnt[i + 1] += m;
        for (uint32_t j = 0; j < m; j++)
            cnt[nbr[i * k + j] + 1]++;
        total += 2 * (size_t)m;
    }
    for (size_t i = 0; i < n; i++)
        cnt[i + 1] += cnt[i];
    ent = pv_alloc_array(total ? total : 1, sizeof *ent);
    if (!ent)
        goto done;
    {
        size_t *fill = len; /* borrowed as write cursors */
        memcpy(fill, cnt, n * sizeof *fill);
        for (size_t i = 0; i < n; i++) {
            uint32_t m = row_len(nbr, k, i, kk);
            for (uint32_t j = 0; j < m; j++) {
                uint32_t v = nbr[i * k + j];
                double c = cond[i * kk + j];
                ent[fill[i]++] = (csr_ent){v, c};
                ent[fill[v]++] = (csr_ent){(uint32_t)i, c};
            }
        }
    }
    sort_ctx sc = {cnt, ent, len};
    par_run(par_threads(nthreads, PAR_MAX_THREADS), n, sort_range, &sc);
    double sum = 0;
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < len[i]; r++)
            sum += ent[cnt[i] + r].v;
        nnz += len[i];
    }
    if (sum < DBL_EPSILON)
        sum = DBL_EPSILON;
    p->n = n;
    p->rowptr = pv_alloc_array(n + 1, sizeof *p->rowptr);
    p->col = pv_alloc_array(nnz ? nnz : 1, sizeof *p->col);
    p->val = pv_alloc_array(nnz ? nnz : 1, sizeof *p->val);
    if (!p->rowptr || !p->col || !p->val)
        goto done;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        p->rowptr[i] = w;
        for (size_t r = 0; r < len[i]; r++) {
            p->col[w] = ent[cnt[i] + r].col;
            p->val[w] = (float)(ent[cnt[i] + r].v / sum);
            w++;
        }
    }
    p->rowptr[n] = w;
    rc = 0;
done:
    if (rc)
        tsne_csr_free(p);
    free(cond);
    free(cnt);
    free(len);
    free(ent);
    return rc;
}

/* ---- Barnes-Hut tree ----------------------------------------------------- */

typedef struct bh_node {
    double com[3];    /* centre of mass */
    double ctr[3];    /* cell centre */
    double half;      /* half width (cells are cubes) */
    uint32_t count;   /* points below (duplicates included) */
    int32_t child;    /* first of 2^dims children, -1 for a leaf */
} bh_node;

typedef struct bh_tree {
    bh_node *node;
    size_t nnodes, cap;
    uint32_t dims;
} bh_tree;

static void bh_free(bh_tree *t)
{
    free(t->node);
    memset(t, 0, sizeof *t);
}

static int bh_new_nodes(bh_tree *t, size_t m)
{
    if (t->nnodes + m > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->nnodes + m)
            cap *= 2;
        bh_node *nn = pv_realloc_array(t->node, cap, sizeof *nn);
        if (!nn)
            return PV_ENOMEM;
        t->node = nn;
        t->cap = cap;
    }
    t->nnodes += m;
    return 0;
}

static unsigned bh_quad(const bh_node *nd, const double *p, uint32_t dims)
{
    unsigned q = 0;
    for (uint32_t d = 0; d < dims; d++)
        if (p[d] > nd->ctr[d])
            q |= 1u << d;
    return q;
}

/* Build the tree of the n points y (n x dims), inserted in index order. */
static int bh_build(bh_tree *t, const float *y, size_t n, uint32_t dims)
{
    t->nnodes = 0;
    t->dims = dims;
    if (bh_new_nodes(t, 1))
        return PV_ENOMEM;
    double lo[3] = {0}, hi[3] = {0}, half = 0;
    for (uint32_t d = 0; d < dims; d++) {
        lo[d] = hi[d] = y[d];
        for (size_t i = 1; i < n; i++) {
            double v = y[i * dims + d];
            lo[d] = v < lo[d] ? v : lo[d];
            hi[d] = v > hi[d] ? v : hi[d];
        }
        if ((hi[d] - lo[d]) / 2 > half)
            half = (hi[d] - lo[d]) / 2;
    }
    bh_node *root = &t->node[0];
    memset(root, 0, sizeof *root);
    for (uint32_t d = 0; d < dims; d++)
        root->ctr[d] = (lo[d] + hi[d]) / 2;
    root->half = half * (1 + 1e-6) + 1e-12;
    root->child = -1;
    unsigned nch = 1u << dims;
    for (size_t i = 0; i < n; i++) {
        double p[3] = {0};
        for (uint32_t d = 0; d < dims; d++)
            p[d] = y[i * dims + d];
        size_t cur = 0;
        for (int depth = 0;; depth++) {
            bh_node *nd = &t->node[cur];
            if (nd->child < 0 && nd->count == 0) {
                memcpy(nd->com, p, sizeof p);
                nd->count = 1;
                break;
            }
            if (nd->child < 0) {
                int dup = depth >= TSNE_MAX_DEPTH;
                if (!dup) {
                    dup = 1;
                    for (uint32_t d = 0; d < dims; d++)
                        if (fabs(p[d] - nd->com[d]) > TSNE_DUP_EPS)
                            dup = 0;
                }
                if (dup) {
                    for (uint32_t d = 0; d < dims; d++)
                        nd->com[d] += (p[d] - nd->com[d]) / (nd->count + 1);
                    nd->count++;
                    break;
                }
                /* split: the leaf's points move into one new child */
                size_t first = t->nnodes;
                if (bh_new_nodes(t, nch))
                    return PV_ENOMEM;
                nd = &t->node[cur];
                for (unsigned c = 0; c < nch; c++) {
                    bh_node *ch = &t->node[first + c];
                    memset(ch, 0, sizeof *ch);
                    ch->half = nd->half / 2;
                    ch->child = -1;
                    for (uint32_t d = 0; d < dims; d++)
                        ch->ctr[d] = nd->ctr[d] + ((c >> d) & 1 ? ch->half : -ch->half);
                }
                bh_node *mv = &t->node[first + bh_quad(nd, nd->com, dims)];
                memcpy(mv->com, nd->com, sizeof mv->com);
                mv->count = nd->count;
                nd->child = (int32_t)first;
            }
            for (uint32_t d = 0; d < dims; d++)
                nd->com[d] += (p[d] - nd->com[d]) / (nd->count + 1);
            nd->count++;
            cur = (size_t)nd->child + bh_quad(nd, p, dims);
        }
    }
    return 0;
}

/* The kernel w(d2) and what the gradient needs from it. */
static inline double kern(double d2, double dof)
{
    if (dof == 1.0)
        return 1.0 / (1.0 + d2);
    double t = dof / (dof + d2);
    if (dof == 2.0) /* 3-D: t^1.5 */
        return t * sqrt(t);
    return pow(t, (dof + 1.0) / 2.0);
}

/* Repulsion on point q from the tree: neg += sum cnt w^2 (q - com),
 * returns sum cnt w. skip_dup: leaves coinciding with q are skipped. */
static double bh_repel(const bh_tree *t, const double *q, double theta2,
                       double dof, int skip_dup, double *neg)
{
    uint32_t dims = t->dims;
    int32_t stack[TSNE_MAX_DEPTH * 8 + 16];
    int sp = 0;
    double z = 0;
    stack[sp++] = 0;
    while (sp > 0) {
        const bh_node *nd = &t->node[stack[--sp]];
        if (nd->count == 0)
            continue;
        double dv[3] = {0}, d2 = 0;
        int dup = 1;
        for (uint32_t d = 0; d < dims; d++) {
            dv[d] = q[d] - nd->com[d];
            d2 += dv[d] * dv[d];
            if (fabs(dv[d]) > TSNE_DUP_EPS)
                dup = 0;
        }
        if (nd->child < 0 || 4.0 * nd->half * nd->half < theta2 * d2) {
            if (nd->child < 0 && dup && skip_dup)
                continue;
            double w = kern(d2, dof), cw = nd->count * w;
            z += cw;
            cw *= w;
            for (uint32_t d = 0; d < dims; d++)
                neg[d] += cw * dv[d];
            continue;
        }
        unsigned nch = 1u << dims;
        for (unsigned c = nch; c-- > 0;)
            stack[sp++] = nd->child + (int32_t)c;
    }
    return z;
}

/* ---- gradient ------------------------------------------------------------ */

typedef struct grad_ctx {
    const tsne_csr *p;
    const float *y;
    size_t n;
    uint32_t dims;
    int method;
    double theta2, dof;
    float exag;
    const bh_tree *tree;
    double *pos, *neg, *zi, *kli; /* per point; kli may be NULL */
    double z;                     /* after the pass */
    float *grad;                  /* finish: n x dims */
    const atomic_int *cancel;     /* tsne_params.cancel */
} grad_ctx;

#if defined(__GNUC__) || defined(__clang__)
#define TSNE_INLINE static inline __attribute__((always_inline))
#else
#define TSNE_INLINE static inline
#endif

/* The attraction on point i (and its KL terms), for a constant dims so
 * the compiler keeps the sums in registers. */
TSNE_INLINE double attract(const grad_ctx *g, size_t i, const uint32_t dims,
                           double *pos)
{
    const float *yi = g->y + i * dims;
    double p0 = 0, p1 = 0, p2 = 0, kl = 0;
    double y0 = yi[0], y1 = yi[1], y2 = dims > 2 ? yi[2] : 0;
    const uint32_t *col = g->p->col;
    const float *val = g->p->val;
    for (size_t r = g->p->rowptr[i]; r < g->p->rowptr[i + 1]; r++) {
        const float *yj = g->y + (size_t)col[r] * dims;
        double d0 = y0 - yj[0], d1 = y1 - yj[1], d2v = dims > 2 ? y2 - yj[2] : 0;
        double d2 = d0 * d0 + d1 * d1 + d2v * d2v;
        double w = g->dof == 1.0 ? 1.0 / (1.0 + d2) : kern(d2, g->dof);
        double f = (double)(val[r] * g->exag) * w;
        p0 += f * d0;
        p1 += f * d1;
        p2 += f * d2v;
        if (g->kli && val[r] > 0) {
            double pij = val[r];
            kl += pij * (log(pij > FLT_MIN ? pij : FLT_MIN) - log(w));
        }
    }
    pos[0] = p0;
    pos[1] = p1;
    pos[2] = p2;
    return kl;
}

/* The common case, 2-D, dof 1, no KL, in float (sklearn's positive
 * gradient is float32 too), sums per row in float then double. */
static void attract2(const grad_ctx *g, size_t i, double *pos)
{
    const float *y = g->y;
    float y0 = y[2 * i], y1 = y[2 * i + 1], ex = g->exag;
    float a0[4] = {0}, a1[4] = {0};
    const uint32_t *col = g->p->col;
    const float *val = g->p->val;
    size_t r = g->p->rowptr[i], end = g->p->rowptr[i + 1];
    /* four independent sums (fixed lanes: the order is the same whatever
     * the thread count) so the loop is not one long chain of additions */
    for (; r + 4 <= end; r += 4)
        for (int l = 0; l < 4; l++) {
            size_t j = col[r + l];
            float d0 = y0 - y[2 * j], d1 = y1 - y[2 * j + 1];
            float f = val[r + l] * ex / (1.0f + d0 * d0 + d1 * d1);
            a0[l] += f * d0;
            a1[l] += f * d1;
        }
    for (int l = 0; r < end; r++, l++) {
        size_t j = col[r];
        float d0 = y0 - y[2 * j], d1 = y1 - y[2 * j + 1];
        float f = val[r] * ex / (1.0f + d0 * d0 + d1 * d1);
        a0[l] += f * d0;
        a1[l] += f * d1;
    }
    pos[0] = ((double)a0[0] + a0[1]) + ((double)a0[2] + a0[3]);
    pos[1] = ((double)a1[0] + a1[1]) + ((double)a1[2] + a1[3]);
}

static void grad_range(void *vc, size_t lo, size_t hi)
{
    grad_ctx *g = vc;
    uint32_t dims = g->dims;
    for (size_t i = lo; i < hi; i++) {
        const float *yi = g->y + i * dims;
        double pos[3] = {0}, kl = 0;
        if (dims == 2 && g->dof == 1.0 && !g->kli)
            attract2(g, i, pos);
        else
            kl = dims == 2 ? attract(g, i, 2, pos) : attract(g, i, 3, pos);
        for (uint32_t d = 0; d < dims; d++)
            g->pos[i * dims + d] = pos[d];
        if (g->kli)
            g->kli[i] = kl;
        if (g->method == TSNE_FFT)
            continue; /* neg and zi come from tsne_fft_repulsion */
        double neg[3] = {0}, z = 0;
        if (g->method == TSNE_EXACT) {
            for (size_t j = 0; j < g->n; j++) {
                if (j == i)
                    continue;
                const float *yj = g->y + j * dims;
                double dv[3] = {0}, d2 = 0;
                for (uint32_t d = 0; d < dims; d++) {
                    dv[d] = (double)yi[d] - yj[d];
                    d2 += dv[d] * dv[d];
                }
                double w = kern(d2, g->dof);
                z += w;
                for (uint32_t d = 0; d < dims; d++)
                    neg[d] += w * w * dv[d];
            }
        } else {
            double q[3] = {0};
            for (uint32_t d = 0; d < dims; d++)
                q[d] = yi[d];
            z = bh_repel(g->tree, q, g->theta2, g->dof, 1, neg);
        }
        for (uint32_t d = 0; d < dims; d++)
            g->neg[i * dims + d] = neg[d];
        g->zi[i] = z;
    }
}

/* What every iteration needs, allocated once. */
typedef struct grad_ws {
    double *pos, *neg, *zi, *kli, *sq;
    bh_tree tree;
    tsne_fft_ws *fft;
} grad_ws;

static void grad_ws_free(grad_ws *w)
{
    free(w->pos);
    free(w->neg);
    free(w->zi);
    free(w->kli);
    free(w->sq);
    bh_free(&w->tree);
    tsne_fft_free(w->fft);
    memset(w, 0, sizeof *w);
}

static int grad_ws_init(grad_ws *w, size_t n, uint32_t dims, int want_kl)
{
    memset(w, 0, sizeof *w);
    w->pos = pv_alloc_array(n, dims * sizeof *w->pos);
    w->neg = pv_alloc_array(n, dims * sizeof *w->neg);
    w->zi = pv_alloc_array(n, sizeof *w->zi);
    w->sq = pv_alloc_array(n, sizeof *w->sq);
    w->kli = want_kl ? pv_alloc_array(n, sizeof *w->kli) : NULL;
    if (!w->pos || !w->neg || !w->zi || !w->sq || (want_kl && !w->kli)) {
        grad_ws_free(w);
        return PV_ENOMEM;
    }
    return 0;
}

/* The forces at g->y: fills pos, neg, zi (and kli) and g->z. */
static int grad_pass(grad_ctx *g, grad_ws *w, unsigned nthreads)
{
    g->pos = w->pos;
    g->neg = w->neg;
    g->zi = w->zi;
    g->tree = &w->tree;
    if (g->method == TSNE_BH) {
        int rc = bh_build(&w->tree, g->y, g->n, g->dims);
        if (rc)
            return rc;
    } else if (g->method == TSNE_FFT) {
        int rc = tsne_fft_repulsion(&w->fft, g->y, g->n, nthreads, w->neg, w->zi);
        if (rc)
            return rc;
    }
    par_run(nthreads, g->n, grad_range, g);
    double z = 0;
    for (size_t i = 0; i < g->n; i++)
        z += g->zi[i];
    if (!isfinite(z))
        return PV_ENUMERIC;
    g->z = z > DBL_EPSILON ? z : DBL_EPSILON;
    return 0;
}

static inline float grad_of(const grad_ctx *g, size_t i, uint32_t d)
{
    double c = 2.0 * (g->dof + 1.0) / g->dof;
    size_t at = i * g->dims + d;
    return (float)(c * (g->pos[at] - g->neg[at] / g->z));
}

static void finish_range(void *vc, size_t lo, size_t hi)
{
    grad_ctx *g = vc;
    for (size_t i = lo; i < hi; i++)
        for (uint32_t d = 0; d < g->dims; d++)
            g->grad[i * g->dims + d] = grad_of(g, i, d);
}

static int method_ok(int method, uint32_t dims)
{
    return method == TSNE_EXACT || method == TSNE_BH ||
           (method == TSNE_FFT && dims == 2);
}

int tsne_gradient(const tsne_csr *p, const float *y, uint32_t dims, int method,
                  float theta, float exag, unsigned nthreads, float *grad,
                  double *kl)
{
    if (!p || !y || !grad || (dims != 2 && dims != 3) || !method_ok(method, dims) ||
        p->n < 2 || !(theta >= 0))
        return PV_EINVAL;
    unsigned nt = par_threads(nthreads, PAR_MAX_THREADS);
    grad_ws w;
    int rc = grad_ws_init(&w, p->n, dims, kl != NULL);
    if (rc)
        return rc;
    grad_ctx g = {.p = p, .y = y, .n = p->n, .dims = dims, .method = method,
                  .theta2 = (double)theta * theta, .dof = dims > 2 ? dims - 1.0 : 1.0,
                  .exag = exag, .kli = w.kli, .grad = grad};
    rc = grad_pass(&g, &w, nt);
    if (rc)
        goto done;
    par_run(nt, p->n, finish_range, &g);
    if (kl) {
        double s = 0, sp = 0;
        for (size_t i = 0; i < p->n; i++)
            s += w.kli[i];
        for (size_t r = 0; r < p->rowptr[p->n]; r++)
            sp += p->val[r];
        *kl = s + log(g.z) * sp;
    }
    for (size_t i = 0; i < p->n * dims; i++)
        if (!isfinite(grad[i]))
            rc = PV_ENUMERIC;
done:
    grad_ws_free(&w);
    return rc;
}

/* ---- optimisation -------------------------------------------------------- */

typedef struct step_ctx {
    grad_ctx *g;
    float *y, *update, *gains;
    float momentum, lr;
    double *sq;
} step_ctx;

static void step_range(void *vc, size_t lo, size_t hi)
{
    step_ctx *s = vc;
    uint32_t dims = s->g->dims;
    for (size_t i = lo; i < hi; i++) {
        double sq = 0;
        for (uint32_t d = 0; d < dims; d++) {
            size_t at = i * dims + d;
            float gr = grad_of(s->g, i, d);
            float gain = s->gains[at];
            gain = s->update[at] * gr < 0.0f ? gain + 0.2f : gain * 0.8f;
            if (gain < TSNE_MIN_GAIN)
                gain = TSNE_MIN_GAIN;
            s->gains[at] = gain;
            gr *= gain;
            sq += (double)gr * gr;
            s->update[at] = s->momentum * s->update[at] - s->lr * gr;
            s->y[at] += s->update[at];
        }
        s->sq[i] = sq;
    }
}

/* One stage of sklearn's _gradient_descent: iterations [it0, it1). */
static int descend(grad_ctx *g, grad_ws *w, unsigned nt, float *y, float *update,
                   float *gains, uint32_t it0, uint32_t it1, float momentum,
                   float lr)
{
    size_t m = g->n * g->dims;
    for (size_t i = 0; i < m; i++) {
        update[i] = 0;
        gains[i] = 1;
    }
    step_ctx s = {g, y, update, gains, momentum, lr, w->sq};
    for (uint32_t it = it0; it < it1; it++) {
        if (pv_stop_requested(g->cancel))
            return PV_EINTR;
        int rc = grad_pass(g, w, nt);
        if (rc)
            return rc;
        par_run(nt, g->n, step_range, &s);
        double sq = 0;
        for (size_t i = 0; i < g->n; i++)
            sq += w->sq[i];
        if (!isfinite(sq))
            return PV_ENUMERIC;
        if (sqrt(sq) <= TSNE_MIN_GRAD_NORM)
            break;
    }
    for (size_t i = 0; i < m; i++)
        if (!isfinite(y[i]))
            return PV_ENUMERIC;
    return 0;
}

static int init_layout(const float *x, size_t n, uint32_t dim, uint32_t dims,
                       uint64_t seed, float *y)
{
    if (!x) { /* sklearn's random init: 1e-4 N(0, 1) */
        uint64_t st = seed ^ 0x243f6a8885a308d3ull;
        for (size_t i = 0; i < n * dims; i++) {
            double u1 = pv_rand_unit(&st), u2 = pv_rand_unit(&st);
            y[i] = (float)(1e-4 * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
        }
        return 0;
    }
    if (dim < dims)
        return PV_EINVAL;
    int rc = pca_project(x, n, dim, dims, seed, y);
    if (rc)
        return rc;
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        mean += y[i * dims];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += ((double)y[i * dims] - mean) * ((double)y[i * dims] - mean);
    double sd = sqrt(var / (double)n);
    if (!(sd > 0) || !isfinite(sd))
        return PV_ENUMERIC;
    for (size_t i = 0; i < n * dims; i++)
        y[i] = (float)(y[i] / sd * 1e-4);
    return 0;
}

static int params_ok(const tsne_params *p, size_t n)
{
    return p && (p->dims == 2 || p->dims == 3) && p->perplexity > 0 &&
           isfinite(p->perplexity) && (double)p->perplexity < (double)n &&
           p->early_exaggeration >= 1 && isfinite(p->early_exaggeration) &&
           p->learning_rate >= 0 && isfinite(p->learning_rate) &&
           p->theta >= 0 && p->theta <= 1 && p->iters >= 1 &&
           p->exaggeration_iters <= p->iters &&
           (p->method == TSNE_AUTO || method_ok(p->method, p->dims));
}

int tsne_run(const float *x, size_t n, uint32_t dim, const uint32_t *nbr,
             const float *dist, uint32_t k, const tsne_params *p, float *y)
{
    if (n < 4 || !nbr || !dist || !y || k == 0 || !params_ok(p, n) ||
        n > UINT32_MAX - 1)
        return PV_EINVAL;
    int rc;
    unsigned nt = par_threads(p->nthreads, PAR_MAX_THREADS);
    tsne_csr P = {0};
    grad_ws w = {0};
    float *update = NULL, *gains = NULL;
    int method = p->method;
    if (method == TSNE_AUTO)
        method = n <= TSNE_EXACT_MAX ? TSNE_EXACT
               : (p->dims == 3 || n < TSNE_FFT_MIN) ? TSNE_BH : TSNE_FFT;
    rc = tsne_joint_p(n, nbr, dist, k, p->perplexity, nt, &P);
    if (rc)
        goto done;
    rc = PV_ENOMEM;
    update = pv_alloc_array(n, p->dims * sizeof *update);
    gains = pv_alloc_array(n, p->dims * sizeof *gains);
    if (!update || !gains || grad_ws_init(&w, n, p->dims, 0))
        goto done;
    rc = init_layout(x, n, dim, p->dims, p->seed, y);
    if (rc)
        goto done;
    float lr = p->learning_rate;
    if (lr == 0) {
        lr = (float)((double)n / p->early_exaggeration / 4.0);
        lr = lr < 50 ? 50 : lr;
    }
    grad_ctx g = {.p = &P, .y = y, .n = n, .dims = p->dims, .method = method,
                  .theta2 = (double)p->theta * p->theta,
                  .dof = p->dims > 2 ? p->dims - 1.0 : 1.0,
                  .exag = p->early_exaggeration, .cancel = p->cancel};
    rc = descend(&g, &w, nt, y, update, gains, 0, p->exaggeration_iters, 0.5f, lr);
    if (rc)
        goto done;
    g.exag = 1.0f;
    rc = descend(&g, &w, nt, y, update, gains, p->exaggeration_iters, p->iters,
                 0.8f, lr);
done:
    tsne_csr_free(&P);
    grad_ws_free(&w);
    free(update);
    free(gains);
    return rc;
}

/* ---- placement ----------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

typedef struct place_ctx {
    const float *y_fit;
    uint32_t dims, k, kk;
    const uint32_t *nbr;
    const double *cond;
    const bh_tree *tree;
    double theta2, dof;
    float *y_new;
} place_ctx;

static void place_range(void *vc, size_t lo, size_t hi)
{
    place_ctx *c = vc;
    uint32_t dims = c->dims;
    float tmp[PLACE_K];
    for (size_t i = lo; i < hi; i++) {
        uint32_t m = row_len(c->nbr, c->k, i, c->kk);
        const uint32_t *nb = c->nbr + i * c->k;
        const double *pr = c->cond + i * c->kk;
        double y[3] = {0}, upd[3] = {0}, gain[3] = {1, 1, 1};
        for (uint32_t d = 0; d < dims; d++) {
            for (uint32_t j = 0; j < m; j++)
                tmp[j] = c->y_fit[(size_t)nb[j] * dims + d];
            qsort(tmp, m, sizeof *tmp, cmp_float);
            y[d] = m % 2 ? tmp[m / 2] : 0.5 * ((double)tmp[m / 2 - 1] + tmp[m / 2]);
        }
        for (int it = 0; it < PLACE_ITERS; it++) {
            double pos[3] = {0}, neg[3] = {0}, gr[3] = {0}, nrm = 0;
            for (uint32_t j = 0; j < m; j++) {
                const float *yj = c->y_fit + (size_t)nb[j] * dims;
                double dv[3] = {0}, d2 = 0;
                for (uint32_t d = 0; d < dims; d++) {
                    dv[d] = y[d] - yj[d];
                    d2 += dv[d] * dv[d];
                }
                double f = PLACE_EXAG * pr[j] * kern(d2, c->dof);
                for (uint32_t d = 0; d < dims; d++)
                    pos[d] += f * dv[d];
            }
            double z = bh_repel(c->tree, y, c->theta2, c->dof, 0, neg);
            if (!(z > DBL_EPSILON))
                z = DBL_EPSILON;
            for (uint32_t d = 0; d < dims; d++) {
                gr[d] = pos[d] - neg[d] / z;
                nrm += gr[d] * gr[d];
            }
            nrm = sqrt(nrm);
            double s = nrm > PLACE_MAX_GRAD ? PLACE_MAX_GRAD / nrm : 1.0;
            for (uint32_t d = 0; d < dims; d++) {
                double g = gr[d] * s;
                gain[d] = upd[d] * g < 0 ? gain[d] + 0.2 : gain[d] * 0.8;
                if (gain[d] < TSNE_MIN_GAIN)
                    gain[d] = TSNE_MIN_GAIN;
                upd[d] = PLACE_MOMENTUM * upd[d] - PLACE_LR * gain[d] * g;
                y[d] += upd[d];
            }
        }
        for (uint32_t d = 0; d < dims; d++)
            c->y_new[i * dims + d] = (float)y[d];
    }
}

int tsne_place(const float *y_fit, size_t nfit, uint32_t dims,
               const uint32_t *nbr, const float *dist, uint32_t k, size_t nnew,
               const tsne_params *p, float *y_new)
{
    tsne_params def;
    if (!p) {
        tsne_defaults(&def);
        p = &def;
    }
    if (!y_fit || !nbr || !dist || !y_new || k == 0 || nfit < 1 ||
        (dims != 2 && dims != 3) || !(p->theta >= 0) || p->theta > 1)
        return PV_EINVAL;
    if (nnew == 0)
        return 0;
    int rc = PV_ENOMEM;
    unsigned nt = par_threads(p->nthreads, PAR_MAX_THREADS);
    uint32_t kk = k < PLACE_K ? k : PLACE_K;
    bh_tree tree = {0};
    double *cond = pv_alloc_array(nnew, (size_t)kk * sizeof *cond);
    if (!cond)
        goto done;
    for (size_t i = 0; i < nnew; i++) {
        uint32_t m = row_len(nbr, k, i, kk);
        if (m == 0) {
            rc = PV_EINVAL;
            goto done;
        }
        for (uint32_t j = 0; j < m; j++)
            if (nbr[i * k + j] >= nfit || !isfinite(dist[i * k + j]) ||
                dist[i * k + j] < 0) {
                rc = PV_EINVAL;
                goto done;
            }
    }
    for (size_t i = 0; i < nfit * dims; i++)
        if (!isfinite(y_fit[i])) {
            rc = PV_ENUMERIC;
            goto done;
        }
    cond_ctx cc = {nbr, dist, k, kk, log((double)PLACE_PERPLEXITY), cond};
    par_run(nt, nnew, cond_range, &cc);
    rc = bh_build(&tree, y_fit, nfit, dims);
    if (rc)
        goto done;
    place_ctx pc = {y_fit, dims, k, kk, nbr, cond, &tree,
                    (double)p->theta * p->theta, dims > 2 ? dims - 1.0 : 1.0,
                    y_new};
    par_run(nt, nnew, place_range, &pc);
    rc = 0;
    for (size_t i = 0; i < nnew * dims; i++)
        if (!isfinite(y_new[i]))
            rc = PV_ENUMERIC;
done:
    free(cond);
    bh_free(&tree);
    return rc;
}
