/*
 * kmeans.c - k-means: k-means++ seeding, Lloyd iterations on sgemm (index
 * room). See kmeans.h for the contract.
 *
 * Distances: ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2. A block of rows of x
 * times the centroids (one sgemm) gives the dot products; the nearest
 * centroid maximises 2 x.c - ||c||^2. A block holds KM_BLOCK_FLOATS scores
 * so it is still in cache when scanned for each row's best.
 *
 * Seeding, measured on Fashion-MNIST (pixels, 60k x 784; inertia of all
 * points after 20 iterations, mean of 3 seeds unless said):
 *   - k <= 128 (KM_GREEDY_MAX_K: at least 32 seeding points per centroid
 *     when the sample is large; at most ~7 GFLOP of seeding): greedy
 *     k-means++,
 *     scikit-learn's: each step draws 2 + ~ln k candidates by D^2 sampling
 *     and keeps the one that lowers the total squared distance most, on the
 *     first 4096 points of the (shuffled) training sample. k = 100: 14839,
 *     against FAISS's random init 14905 and plain k-means++ 14977;
 *   - larger k: the first k points of the shuffled sample, a uniform draw
 *     (FAISS's init). k = 1024: 11279 (one seed), FAISS 11271; plain
 *     k-means++ on 4096 points 11304; greedy on 4096 points 11451 (few
 *     points per centroid: it spends centroids on outliers). Seeding from
 *     every point instead costs k passes over them, as much as several
 *     Lloyd iterations, which is why neither k-means++ runs on all of them.
 * Plain random init fails on separated clusters of equal size (a test
 * plants 12: with random picks one gets two seeds and another none, which
 * Lloyd never repairs); greedy k-means++ finds all of them.
 *
 * Skipping work without changing the answer (after Hamerly 2010, "Making
 * k-means even faster"): when a point goes through the sgemm it keeps its
 * KM_CAND nearest centroids and a lower bound l on its distance to all the
 * others (the distance to the next nearest). When the centroids move, l
 * falls by the largest move. In the next assignment the point's exact
 * distances to its KM_CAND candidates (KM_CAND dot products) are compared
 * with l: if the nearest candidate is not farther than l, no other
 * centroid can be nearer, and the point is assigned without the sgemm;
 * only the others go through it, gathered in blocks. (Hamerly's own bound,
 * the second-nearest distance, skipped only 2-35 % of the points per
 * iteration on Fashion-MNIST at k = 1024: one centroid's large move
 * loosens every bound.) The labels and the inertia are those of plain
 * Lloyd iterations; the sums of the clusters are updated only for the
 * points that changed cluster.
 *
 * Empty clusters: after an update, an empty cluster's centroid moves to
 * the training point farthest from its own centroid (scikit-learn's rule),
 * a different point for each empty cluster.
 */
#include "kmeans.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

#define KM_BLOCK_FLOATS (1u << 18) /* 1 MiB of scores per block */
#define KM_SEED_POINTS 4096u      /* seeding sample */
#define KM_GREEDY_MAX_K 128u      /* k-means++ up to this k (>= 32 per centroid) */
#define KM_MAX_TRIALS 16u         /* greedy k-means++ candidates per step */
#define KM_CAND 8u /* candidate centroids kept per point */

void kmeans_defaults(kmeans_params *p, uint32_t k)
{
    memset(p, 0, sizeof *p);
    p->k = k;
    p->max_iter = 20;
    p->tol = 1e-4;
    p->seed = 1234;
    p->max_points_per_centroid = 256;
}

void kmeans_model_free(kmeans_model *m)
{
    if (!m)
        return;
    free(m->centroids);
    free(m->mean);
    free(m->scale);
    memset(m, 0, sizeof *m);
}

/* Squared norm of every centroid. */
static void norms(const float *c, uint32_t k, uint32_t dim, float *out)
{
    for (uint32_t j = 0; j < k; j++)
        out[j] = vec_dot(c + (size_t)j * dim, c + (size_t)j * dim, dim);
}

/* 2 x.c for the nb rows of x and the k centroids, into sc (nb x k). */
static void score_block(const float *x, size_t nb, uint32_t dim,
                        const float *c, uint32_t k, float *sc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k,
                (int)dim, 2.0f, x, (int)dim, c, (int)dim, 0.0f, sc, (int)k);
}

/* From one row of scores (2 x.c) and the centroid norms: the m nearest
 * centroids, nearest first, with their squared distances (m <= k), and
 * the squared distance of the next nearest (INFINITY when k == m). */
static void row_best(const float *s, const float *cn, uint32_t k, float xn,
                     uint32_t m, uint32_t *ids, float *d, float *next)
{
    float v[KM_CAND + 1]; /* best m + 1 of 2 x.c - ||c||^2, descending */
    uint32_t id[KM_CAND + 1], n = 0;
    for (uint32_t j = 0; j < k; j++) {
        float e = s[j] - cn[j];
        if (n == m + 1 && e <= v[m])
            continue;
        uint32_t p = n < m + 1 ? n++ : m;
        while (p > 0 && v[p - 1] < e) {
            v[p] = v[p - 1];
            id[p] = id[p - 1];
            p--;
        }
        v[p] = e;
        id[p] = j;
    }
    for (uint32_t t = 0; t < m; t++) {
        float e = xn - v[t];
        ids[t] = id[t];
        d[t] = e > 0.0f ? e : 0.0f;
    }
    if (n > m) {
        float e = xn - v[m];
        *next = e > 0.0f ? e : 0.0f;
    } else {
        *next = INFINITY;
    }
}

/* Rows per block for k centroids. */
static size_t block_rows(uint32_t k)
{
    size_t r = KM_BLOCK_FLOATS / k;
    return r > 0 ? r : 1;
}

/* k-means++ on the first s rows of x (a uniform sample already): k rows
 * copied into c. */
/* The index of the point at cumulative weight r in prefix sums cum[0..s). */
static size_t draw(const double *cum, size_t s, double r)
{
    size_t lo = 0, hi = s - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int seed_plusplus(const float *x, size_t s, uint32_t dim, uint32_t k,
                         uint64_t *rng, float *c)
{
    /* Greedy k-means++ (as scikit-learn): each step draws `trials`
     * candidates by D^2 sampling and keeps the one that lowers the total
     * squared distance most. */
    uint32_t trials = 2;
    for (uint32_t t = k; t > 1; t /= 3) /* 2 + about ln k */
        trials++;
    if (trials > KM_MAX_TRIALS)
        trials = KM_MAX_TRIALS;
    float *d = pv_alloc_array(s, sizeof *d);
    float *xn = pv_alloc_array(s, sizeof *xn);
    float *dots = pv_alloc_array(s, (size_t)KM_MAX_TRIALS * sizeof *dots);
    float *cand = pv_alloc_array((size_t)KM_MAX_TRIALS * dim, sizeof *cand);
    double *cum = pv_alloc_array(s, sizeof *cum);
    int rc = PV_ENOMEM;
    if (!d || !xn || !dots || !cand || !cum)
        goto done;
    for (size_t i = 0; i < s; i++) {
        xn[i] = vec_dot(x + i * dim, x + i * dim, dim);
        d[i] = INFINITY;
    }
    memcpy(c, x + (size_t)(pv_rand64(rng) % s) * dim, dim * sizeof *c);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)s, (int)dim, 1.0f, x, (int)dim, c, 1,
                0.0f, dots, 1);
    {
        const float cn0 = vec_dot(c, c, dim);
        for (size_t i = 0; i < s; i++) {
            float e = xn[i] + cn0 - 2.0f * dots[i];
            d[i] = e > 0.0f ? e : 0.0f;
        }
    }
    for (uint32_t j = 1; j < k; j++) {
        double total = 0;
        for (size_t i = 0; i < s; i++)
            cum[i] = (total += d[i]);
        uint32_t nt = total > 0 ? trials : 1;
        for (uint32_t t = 0; t < nt; t++) {
            /* Every point on a centre already (fewer distinct points than
             * k): any point; the duplicates end up empty clusters. */
            size_t pick = total > 0 ? draw(cum, s, pv_rand_unit(rng) * total)
                                    : (size_t)(pv_rand64(rng) % s);
            memcpy(cand + (size_t)t * dim, x + pick * dim, dim * sizeof *cand);
        }
        /* dots[i * nt + t] = x_i . cand_t (vec_dot: OpenBLAS's sgemm is
         * slow at so few columns) */
        for (size_t i = 0; i < s; i++)
            for (uint32_t t = 0; t < nt; t++)
                dots[i * nt + t] = vec_dot(x + i * dim, cand + (size_t)t * dim, dim);
        float cn[KM_MAX_TRIALS];
        double pot[KM_MAX_TRIALS];
        for (uint32_t t = 0; t < nt; t++) {
            cn[t] = vec_dot(cand + (size_t)t * dim, cand + (size_t)t * dim, dim);
            pot[t] = 0;
        }
        for (size_t i = 0; i < s; i++)
            for (uint32_t t = 0; t < nt; t++) {
                float e = xn[i] + cn[t] - 2.0f * dots[i * nt + t];
                e = e > 0.0f ? e : 0.0f;
                pot[t] += e < d[i] ? e : d[i];
            }
        uint32_t best = 0;
        for (uint32_t t = 1; t < nt; t++)
            if (pot[t] < pot[best])
                best = t;
        memcpy(c + (size_t)j * dim, cand + (size_t)best * dim, dim * sizeof *c);
        for (size_t i = 0; i < s; i++) {
            float e = xn[i] + cn[best] - 2.0f * dots[i * nt + best];
            e = e > 0.0f ? e : 0.0f;
            if (e < d[i])
                d[i] = e;
        }
    }
    rc = 0;
done:
    free(d);
    free(xn);
    free(dots);
    free(cand);
    free(cum);
    return rc;
}

/* The state of one training run. */
typedef struct km {
    const float *x; /* nt x dim, clustered space */
    size_t nt;
    uint32_t dim, k;
    float *c, *cold; /* k x dim: centroids, and before the update */
    float *cn;       /* k: squared norms of c */
    float *xn;       /* nt: squared norms of x */
    uint32_t *lab;   /* nt */
    float *d2;       /* nt: squared distance to own centroid */
    float *lo;       /* nt: lower bound, distance to any non-candidate */
    uint32_t *cand;  /* nt x m: candidate centroids */
    uint32_t m;      /* candidates per point: min(KM_CAND, k) */
    double *sum;     /* k x dim: sums of the members */
    uint32_t *cnt;   /* k */
    float *sc, *xb; /* one block: scores, rows */
    uint32_t *bidx;
} km;

/* Move a point (row xi) from cluster a to b in the sums. */
static void move_point(km *s, const float *xi, uint32_t a, uint32_t b)
{
    double *sa = s->sum + (size_t)a * s->dim, *sb = s->sum + (size_t)b * s->dim;
    for (uint32_t t = 0; t < s->dim; t++) {
        sa[t] -= xi[t];
        sb[t] += xi[t];
    }
    s->cnt[a]--;
    s->cnt[b]++;
}

/* Give point i cluster nl at squared distance d; first: i had none. */
static void set_label(km *s, uint32_t i, uint32_t nl, float d, int first)
{
    const float *xi = s->x + (size_t)i * s->dim;
    if (first) {
        double *sj = s->sum + (size_t)nl * s->dim;
        for (uint32_t t = 0; t < s->dim; t++)
            sj[t] += xi[t];
        s->cnt[nl]++;
    } else if (nl != s->lab[i]) {
        move_point(s, xi, s->lab[i], nl);
    }
    s->lab[i] = nl;
    s->d2[i] = d;
}

/* Run the gathered block of nb points through the sgemm: new labels,
 * candidates and bounds. */
static void flush_block(km *s, size_t nb, int first)
{
    float d[KM_CAND], next;
    score_block(s->xb, nb, s->dim, s->c, s->k, s->sc);
    for (size_t r = 0; r < nb; r++) {
        const uint32_t i = s->bidx[r];
        uint32_t *cand = s->cand + (size_t)i * s->m;
        row_best(s->sc + r * s->k, s->cn, s->k, s->xn[i], s->m, cand, d, &next);
        set_label(s, i, cand[0], d[0], first);
        s->lo[i] = sqrtf(next);
    }
}

/* One assignment; returns the inertia. The first one scores every point. */
static double assign_step(km *s, int first)
{
    const size_t br = block_rows(s->k);
    const uint32_t dim = s->dim;
    size_t nb = 0;
    double inertia = 0;
    norms(s->c, s->k, dim, s->cn);
    for (size_t i = 0; i < s->nt; i++) {
        const float *xi = s->x + i * dim;
        if (!first) {
            const uint32_t *cand = s->cand + i * s->m;
            float best = INFINITY;
            uint32_t bj = 0;
            for (uint32_t t = 0; t < s->m; t++) {
                const uint32_t j = cand[t];
                float d = s->xn[i] - 2.0f * vec_dot(xi, s->c + (size_t)j * dim, dim) +
                          s->cn[j];
                d = d > 0.0f ? d : 0.0f;
                if (d < best) {
                    best = d;
                    bj = j;
                }
            }
            if (sqrtf(best) <= s->lo[i]) {
                /* no centroid outside the candidates can be nearer */
                set_label(s, (uint32_t)i, bj, best, 0);
                continue;
            }
        }
        memcpy(s->xb + nb * dim, xi, dim * sizeof(float));
        s->bidx[nb++] = (uint32_t)i;
        if (nb == br) {
            flush_block(s, nb, first);
            nb = 0;
        }
    }
    if (nb)
        flush_block(s, nb, first);
    for (size_t i = 0; i < s->nt; i++)
        inertia += s->d2[i];
    return inertia;
}

/* Centroids as the means of their members; empty clusters re-seeded at
 * the farthest points; then the bounds fall by how far the others moved.
 * Returns the number re-seeded. */
static uint32_t update_step(km *s)
{
    const uint32_t k = s->k, dim = s->dim;
    uint32_t reseeded = 0;
    memcpy(s->cold, s->c, (size_t)k * dim * sizeof(float));
    for (uint32_t j = 0; j < k; j++) {
        float *cj = s->c + (size_t)j * dim;
        if (s->cnt[j] > 0) {
            const double inv = 1.0 / s->cnt[j];
            for (uint32_t t = 0; t < dim; t++)
                cj[t] = (float)(s->sum[(size_t)j * dim + t] * inv);
            continue;
        }
        size_t far = 0;
        for (size_t i = 1; i < s->nt; i++)
            if (s->d2[i] > s->d2[far])
                far = i;
        memcpy(cj, s->x + far * dim, dim * sizeof *cj);
        s->d2[far] = -1.0f; /* not again in this update */
        reseeded++;
    }
    /* Every bound falls by the largest move. */
    float most = 0;
    for (uint32_t j = 0; j < k; j++) {
        const float *a = s->c + (size_t)j * dim, *b = s->cold + (size_t)j * dim;
        double e = 0;
        for (uint32_t t = 0; t < dim; t++)
            e += (double)(a[t] - b[t]) * (a[t] - b[t]);
        if ((float)sqrt(e) > most)
            most = (float)sqrt(e);
    }
    for (size_t i = 0; i < s->nt; i++)
        s->lo[i] -= most;
    return reseeded;
}

/* Mean and 1/std per feature over the n rows of x; std 0 gives scale 1. */
static void standardizer(const float *x, size_t n, uint32_t dim, float *mean,
                         float *scale)
{
    for (uint32_t t = 0; t < dim; t++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++)
            s += x[i * dim + t];
        const double mu = s / (double)n;
        for (size_t i = 0; i < n; i++) {
            double e = x[i * dim + t] - mu;
            ss += e * e;
        }
        const double sd = sqrt(ss / (double)n);
        mean[t] = (float)mu;
        scale[t] = sd > 0 ? (float)(1.0 / sd) : 1.0f;
    }
}

static void standardize_rows(float *x, size_t n, uint32_t dim,
                             const float *mean, const float *scale)
{
    for (size_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < dim; t++)
            x[i * dim + t] = (x[i * dim + t] - mean[t]) * scale[t];
}

int kmeans_train(const float *x, size_t n, uint32_t dim,
                 const kmeans_params *p, kmeans_model *m)
{
    if (!x || !p || !m || dim == 0 || p->k == 0 || p->k > KMEANS_MAX_K ||
        p->k > n)
        return PV_EINVAL;
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(x[i]))
            return PV_ENUMERIC;
    memset(m, 0, sizeof *m);
    const uint32_t k = p->k;
    uint64_t rng = p->seed;
    size_t nt = n;
    if (p->max_points_per_centroid &&
        (size_t)p->max_points_per_centroid * k < n)
        nt = (size_t)p->max_points_per_centroid * k;

    int rc = PV_ENOMEM;
    size_t *perm = NULL;
    const size_t br = block_rows(k);
    float *xt = pv_alloc_array(nt * dim, sizeof *xt);
    km st = {.nt = nt, .dim = dim, .k = k};
    st.cold = pv_alloc_array((size_t)k * dim, sizeof(float));
    st.cn = pv_alloc_array(k, sizeof(float));
    st.xn = pv_alloc_array(nt, sizeof(float));
    st.lab = pv_alloc_array(nt, sizeof(uint32_t));
    st.d2 = pv_alloc_array(nt, sizeof(float));
    st.lo = pv_alloc_array(nt, sizeof(float));
    st.sum = pv_calloc_array((size_t)k * dim, sizeof(double));
    st.cnt = pv_calloc_array(k, sizeof(uint32_t));
    st.m = k < KM_CAND ? k : KM_CAND;
    st.cand = pv_alloc_array(nt * st.m, sizeof(uint32_t));
    st.sc = pv_alloc_array(br * k, sizeof(float));
    st.xb = pv_alloc_array(br * dim, sizeof(float));
    st.bidx = pv_alloc_array(br, sizeof(uint32_t));
    m->centroids = pv_alloc_array((size_t)k * dim, sizeof(float));
    if (!xt || !st.cold || !st.cn || !st.xn || !st.lab || !st.d2 || !st.lo ||
        !st.sum || !st.cnt || !st.cand || !st.sc || !st.xb ||
        !st.bidx || !m->centroids)
        goto done;
    m->k = k;
    m->dim = dim;

    /* The training sample, in a random order (a partial Fisher-Yates
     * shuffle of the row indices), so its first rows are a uniform
     * subsample for the seeding too. */
    if (!(perm = pv_alloc_array(n, sizeof *perm)))
        goto done;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = 0; i < nt; i++) {
        size_t j = i + (size_t)(pv_rand64(&rng) % (n - i));
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        memcpy(xt + i * dim, x + perm[i] * dim, dim * sizeof *xt);
    }
    free(perm);
    perm = NULL;

    if (p->standardize) {
        m->mean = pv_alloc_array(dim, sizeof(float));
        m->scale = pv_alloc_array(dim, sizeof(float));
        if (!m->mean || !m->scale)
            goto done;
        standardizer(xt, nt, dim, m->mean, m->scale);
        standardize_rows(xt, nt, dim, m->mean, m->scale);
    }
    m->ntrain = nt;
    for (size_t i = 0; i < nt; i++)
        st.xn[i] = vec_dot(xt + i * dim, xt + i * dim, dim);

    /* Seeding (see the top of the file): greedy k-means++ on the first
     * KM_SEED_POINTS sample points up to KM_GREEDY_MAX_K centroids; else the
     * first k sample points (a uniform draw). */
    const size_t ns = nt < KM_SEED_POINTS ? nt : KM_SEED_POINTS;
    if (k <= KM_GREEDY_MAX_K) {
        if ((rc = seed_plusplus(xt, ns, dim, k, &rng, m->centroids)) != 0)
            goto done;
    } else {
        memcpy(m->centroids, xt, (size_t)k * dim * sizeof(float));
    }
    st.x = xt;
    st.c = m->centroids;

    double inertia = assign_step(&st, 1);
    for (uint32_t it = 0; it < p->max_iter; it++) {
        if (pv_stop_requested(p->cancel)) {
            rc = PV_EINTR;
            goto done;
        }
        m->reseeded += update_step(&st);
        m->iters++;
        double next = assign_step(&st, 0);
        /* Stop when an iteration gains less than tol of the inertia. */
        const int converged = inertia > 0 && inertia - next <= p->tol * inertia;
        inertia = next;
        if (converged)
            break;
    }
    m->inertia = inertia;
    rc = 0;
done:
    free(perm);
    free(xt);
    free(st.cold);
    free(st.cn);
    free(st.xn);
    free(st.lab);
    free(st.d2);
    free(st.lo);
    free(st.sum);
    free(st.cnt);
    free(st.cand);
    free(st.sc);
    free(st.xb);
    free(st.bidx);
    if (rc != 0)
        kmeans_model_free(m);
    return rc;
}

int kmeans_assign(const kmeans_model *m, const float *x, size_t n,
                  uint32_t *labels, float *dist2)
{
    if (!m || !m->centroids || (n && (!x || !labels)))
        return PV_EINVAL;
    const uint32_t k = m->k, dim = m->dim;
    /* No block larger than the rows: at k = 2 a block is 131,072 rows, and
     * the standardised copy of one 411 MB at 784 dims, for a chunk of 1,024
     * vectors (pv_cluster_get assigns chunk by chunk). */
    const size_t br = block_rows(k) < n ? block_rows(k) : n ? n : 1;
    float *sc = pv_alloc_array(br * k, sizeof *sc);
    float *cn = pv_alloc_array(k, sizeof *cn);
    float *xs = m->mean ? pv_alloc_array(br * dim, sizeof *xs) : NULL;
    int rc = PV_ENOMEM;
    if (!sc || !cn || (m->mean && !xs))
        goto done;
    norms(m->centroids, k, dim, cn);
    for (size_t i = 0; i < n; i += br) {
        size_t nb = n - i < br ? n - i : br;
        const float *xb = x + i * dim;
        if (xs) {
            memcpy(xs, xb, nb * dim * sizeof *xs);
            standardize_rows(xs, nb, dim, m->mean, m->scale);
            xb = xs;
        }
        score_block(xb, nb, dim, m->centroids, k, sc);
        for (size_t r = 0; r < nb; r++) {
            const float *xr = xb + r * dim;
            float d, next;
            row_best(sc + r * k, cn, k, vec_dot(xr, xr, dim), 1, labels + i + r,
                     &d, &next);
            if (dist2)
                dist2[i + r] = d;
        }
    }
    rc = 0;
done:
    free(sc);
    free(cn);
    free(xs);
    return rc;
}
