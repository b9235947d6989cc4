/*
 * test_kmeans.c - index/kmeans.c on plain arrays: planted clusters are
 * found (purity and adjusted Rand index asserted), the skipping of settled
 * points gives the exact nearest centroid, reproducibility, sampling,
 * standardisation, and the edge cases: k > n, k = 0, NaN, duplicate points
 * (fewer distinct points than k: empty clusters re-seeded, no hang).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"
#include "pixvec.h"

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static float rng_gauss(uint64_t *s)
{
    double u = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* n points of dim d around c well-separated centres (spread sigma);
 * truth[i] gets each point's centre. */
static float *blobs(uint32_t n, uint32_t d, uint32_t c, float sigma,
                    uint64_t seed, uint32_t *truth)
{
    float *ctr = malloc((size_t)c * d * sizeof(float));
    float *x = malloc((size_t)n * d * sizeof(float));
    cr_assert(ctr && x);
    for (size_t i = 0; i < (size_t)c * d; i++)
        ctr[i] = 10.0f * rng_gauss(&seed);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = (uint32_t)(rng_next(&seed) % c);
        truth[i] = j;
        for (uint32_t t = 0; t < d; t++)
            x[(size_t)i * d + t] = ctr[(size_t)j * d + t] + sigma * rng_gauss(&seed);
    }
    free(ctr);
    return x;
}

/* Adjusted Rand index of two labelings (Hubert and Arabie 1985). */
static double ari(const uint32_t *a, const uint32_t *b, uint32_t n,
                  uint32_t ka, uint32_t kb)
{
    double *m = calloc((size_t)ka * kb, sizeof *m), *ra = calloc(ka, sizeof *ra),
           *rb = calloc(kb, sizeof *rb);
    cr_assert(m && ra && rb);
    for (uint32_t i = 0; i < n; i++) {
        m[(size_t)a[i] * kb + b[i]]++;
        ra[a[i]]++;
        rb[b[i]]++;
    }
    double sij = 0, sa = 0, sb = 0;
    for (size_t i = 0; i < (size_t)ka * kb; i++)
        sij += m[i] * (m[i] - 1) / 2;
    for (uint32_t i = 0; i < ka; i++)
        sa += ra[i] * (ra[i] - 1) / 2;
    for (uint32_t j = 0; j < kb; j++)
        sb += rb[j] * (rb[j] - 1) / 2;
    double pairs = (double)n * (n - 1) / 2, exp = sa * sb / pairs;
    free(m);
    free(ra);
    free(rb);
    return (sij - exp) / ((sa + sb) / 2 - exp);
}

static double purity(const uint32_t *lab, const uint32_t *truth, uint32_t n,
                     uint32_t k, uint32_t c)
{
    uint32_t *m = calloc((size_t)k * c, sizeof *m);
    double correct = 0;
    cr_assert_not_null(m);
    for (uint32_t i = 0; i < n; i++)
        m[(size_t)lab[i] * c + truth[i]]++;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t best = 0;
        for (uint32_t t = 0; t < c; t++)
            if (m[(size_t)j * c + t] > best)
                best = m[(size_t)j * c + t];
        correct += best;
    }
    free(m);
    return correct / n;
}

Test(kmeans, finds_planted_clusters)
{
    const uint32_t n = 6000, d = 32, c = 12;
    uint32_t *truth = malloc(n * sizeof *truth), *lab = malloc(n * sizeof *lab);
    float *x = blobs(n, d, c, 1.0f, 77, truth);
    kmeans_params p;
    kmeans_model m;
    kmeans_defaults(&p, c);
    p.max_iter = 50;
    cr_assert_eq(kmeans_train(x, n, d, &p, &m), 0);
    cr_assert_eq(kmeans_assign(&m, x, n, lab, NULL), 0);
    double pu = purity(lab, truth, n, c, c), r = ari(lab, truth, n, c, c);
    cr_log_info("kmeans on %u planted blobs: purity %.4f, ARI %.4f, %u iterations",
                c, pu, r, m.iters);
    cr_assert_geq(pu, 0.99, "purity %.4f", pu);
    cr_assert_geq(r, 0.98, "adjusted Rand index %.4f", r);
    kmeans_model_free(&m);
    free(x);
    free(truth);
    free(lab);
}

/* The training's inertia is the sum over its sample of the distance to the
 * centroid each point was given; if skipping a point ever kept it with a
 * centroid that was no longer its nearest, that sum would exceed the
 * inertia of an exact assignment to the same centroids. */
Test(kmeans, skipped_points_keep_their_exact_nearest)
{
    const uint32_t n = 5000, d = 24, c = 40;
    uint32_t *truth = malloc(n * sizeof *truth), *lab = malloc(n * sizeof *lab);
    float *x = blobs(n, d, c, 6.0f, 5, truth), *d2 = malloc(n * sizeof *d2);
    kmeans_params p;
    kmeans_model m;
    kmeans_defaults(&p, 64); /* more clusters than blobs: points move late */
    p.max_iter = 30;
    p.tol = 0;
    p.max_points_per_centroid = 0;
    cr_assert_eq(kmeans_train(x, n, d, &p, &m), 0);
    cr_assert_eq(m.ntrain, n);
    cr_assert_eq(kmeans_assign(&m, x, n, lab, d2), 0);
    double exact = 0;
    for (uint32_t i = 0; i < n; i++)
        exact += d2[i];
    cr_log_info("inertia: training %.6g, exact assignment %.6g", m.inertia, exact);
    cr_assert_leq(fabs(m.inertia - exact), 1e-4 * exact, "training %.8g vs exact %.8g",
                  m.inertia, exact);
    kmeans_model_free(&m);
    free(x);
    free(d2);
    free(truth);
    free(lab);
}

Test(kmeans, same_seed_same_result_and_sampling)
{
    const uint32_t n = 10000, d = 16, c = 8;
    uint32_t *truth = malloc(n * sizeof *truth);
    float *x = blobs(n, d, c, 2.0f, 9, truth);
    kmeans_params p;
    kmeans_model a, b, e;
    kmeans_defaults(&p, c);
    p.max_points_per_centroid = 100;
    cr_assert_eq(kmeans_train(x, n, d, &p, &a), 0);
    cr_assert_eq(kmeans_train(x, n, d, &p, &b), 0);
    cr_assert_eq(a.ntrain, 800, "trained on %zu, not 100 per centroid", a.ntrain);
    cr_assert_eq(memcmp(a.centroids, b.centroids, (size_t)c * d * sizeof(float)), 0);
    p.seed = 4321;
    cr_assert_eq(kmeans_train(x, n, d, &p, &e), 0);
    cr_assert_neq(memcmp(a.centroids, e.centroids, (size_t)c * d * sizeof(float)), 0,
                  "another seed gave the same centroids");
    kmeans_model_free(&a);
    kmeans_model_free(&b);
    kmeans_model_free(&e);
    free(x);
    free(truth);
}

/* Two groups told apart by three features of small and mixed scales, next
 * to a feature of huge scale and no structure: raw k-means splits along
 * the noise, standardised k-means along the groups. */
Test(kmeans, standardize_like_standardscaler)
{
    const uint32_t n = 2000, d = 4;
    const float scale[3] = {1.0f, 0.01f, 3.0f};
    uint64_t seed = 3;
    float *x = malloc((size_t)n * d * sizeof *x);
    uint32_t *truth = malloc(n * sizeof *truth), *lab = malloc(n * sizeof *lab);
    for (uint32_t i = 0; i < n; i++) {
        truth[i] = i & 1;
        x[d * i] = 1000.0f * rng_gauss(&seed); /* noise */
        for (int t = 0; t < 3; t++)
            x[d * i + 1 + t] = scale[t] * ((truth[i] ? 1.0f : -1.0f) + 0.2f * rng_gauss(&seed));
    }
    kmeans_params p;
    kmeans_model raw, std_;
    kmeans_defaults(&p, 2);
    cr_assert_eq(kmeans_train(x, n, d, &p, &raw), 0);
    p.standardize = 1;
    cr_assert_eq(kmeans_train(x, n, d, &p, &std_), 0);
    cr_assert_not_null(std_.mean);
    cr_assert_eq(kmeans_assign(&raw, x, n, lab, NULL), 0);
    double pr = purity(lab, truth, n, 2, 2);
    cr_assert_eq(kmeans_assign(&std_, x, n, lab, NULL), 0);
    double ps = purity(lab, truth, n, 2, 2);
    cr_log_info("two groups under a noisy large feature: purity raw %.3f, standardized %.3f",
                pr, ps);
    cr_assert_lt(pr, 0.75);
    cr_assert_geq(ps, 0.99);
    kmeans_model_free(&raw);
    kmeans_model_free(&std_);
    free(x);
    free(truth);
    free(lab);
}

Test(kmeans, bad_arguments)
{
    float x[4 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    kmeans_params p;
    kmeans_model m;
    kmeans_defaults(&p, 5);
    cr_assert_eq(kmeans_train(x, 4, 3, &p, &m), PV_EINVAL, "k > n");
    kmeans_defaults(&p, 0);
    cr_assert_eq(kmeans_train(x, 4, 3, &p, &m), PV_EINVAL, "k = 0");
    kmeans_defaults(&p, 2);
    cr_assert_eq(kmeans_train(x, 4, 0, &p, &m), PV_EINVAL, "dim 0");
    x[7] = NAN;
    cr_assert_eq(kmeans_train(x, 4, 3, &p, &m), PV_ENUMERIC);
    x[7] = INFINITY;
    cr_assert_eq(kmeans_train(x, 4, 3, &p, &m), PV_ENUMERIC);
}

/* 60 points but 3 distinct ones, k = 5: two clusters stay empty however
 * they are re-seeded; the run ends at max_iter with inertia 0. k = n works
 * too (every point its own cluster). */
Test(kmeans, duplicates_and_k_equal_n)
{
    const uint32_t n = 60, d = 4;
    float x[60 * 4];
    uint32_t lab[60];
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < d; t++)
            x[i * d + t] = (float)(i % 3) * 5.0f + (float)t;
    kmeans_params p;
    kmeans_model m;
    kmeans_defaults(&p, 5);
    p.max_iter = 10;
    cr_assert_eq(kmeans_train(x, n, d, &p, &m), 0);
    cr_assert_gt(m.reseeded, 0, "empty clusters were not re-seeded");
    cr_assert_float_eq(m.inertia, 0.0, 1e-6);
    cr_assert_eq(kmeans_assign(&m, x, n, lab, NULL), 0);
    uint32_t used[5] = {0}, distinct = 0;
    for (uint32_t i = 0; i < n; i++)
        used[lab[i]]++;
    for (int j = 0; j < 5; j++)
        distinct += used[j] > 0;
    cr_assert_eq(distinct, 3);
    kmeans_model_free(&m);

    float y[8 * 2] = {0, 0, 1, 0, 0, 1, 1, 1, 5, 5, 6, 5, 5, 6, 6, 6};
    kmeans_defaults(&p, 8);
    cr_assert_eq(kmeans_train(y, 8, 2, &p, &m), 0);
    cr_assert_float_eq(m.inertia, 0.0, 1e-6);
    kmeans_model_free(&m);
}
