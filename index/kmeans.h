/*
 * kmeans.h - k-means clustering of plain float arrays (index room).
 *
 * Lloyd's algorithm: greedy k-means++ seeding (Arthur and Vassilvitskii
 * 2007, with scikit-learn's local trials) on a sample for k <= 128, a
 * uniform draw of k points above (measured choice, kmeans.c), assignment
 * by OpenBLAS sgemm (nearest centroid by
 * ||x||^2 - 2 x.c + ||c||^2, blocked so a block of scores stays in cache),
 * centroid update as the mean of the members, empty clusters re-seeded at
 * the points farthest from their centroids, a fixed seed for reproducible
 * results, a cap on iterations and a tolerance on the relative decrease of
 * the inertia. Optionally the features are standardised first (mean 0,
 * variance 1 per feature, as scikit-learn's StandardScaler).
 *
 * Training uses at most max_points_per_centroid * k points, drawn uniformly
 * with the seed (FAISS trains on at most 256 per centroid); the labels of
 * every point come from kmeans_assign afterwards.
 */
#ifndef PV_KMEANS_H
#define PV_KMEANS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define KMEANS_MAX_K (1u << 20)

typedef struct kmeans_params {
    uint32_t k;
    uint32_t max_iter;   /* Lloyd iterations at most (default 20) */
    double tol;          /* stop when the inertia falls by less than this
                          * fraction in one iteration (default 1e-4; 0:
                          * always run max_iter) */
    uint64_t seed;       /* sampling and seeding */
    uint32_t max_points_per_centroid; /* training sample cap (default 256;
                                       * 0: all points) */
    int standardize;     /* cluster (x - mean) / std per feature */
    const atomic_int *cancel; /* nonzero: stop at the next iteration with
                               * PV_EINTR (pv_db_interrupt); NULL: never */
} kmeans_params;

/* Fill p with the defaults for k clusters. */
void kmeans_defaults(kmeans_params *p, uint32_t k);

typedef struct kmeans_model {
    uint32_t k, dim;
    float *centroids; /* k x dim, in the clustered space (standardised if
                       * mean/scale are set) */
    float *mean;      /* dim, or NULL */
    float *scale;     /* dim: 1/std (1 where std is 0), or NULL */
    double inertia;   /* sum of squared distances of the training sample to
                       * their centroids, after the last update */
    uint32_t iters;   /* Lloyd iterations run */
    uint32_t reseeded;/* empty clusters re-seeded, over all iterations */
    size_t ntrain;    /* points in the training sample */
} kmeans_model;

/* Cluster x (n x dim, row-major, finite). PV_EINTR once p->cancel is
 * set (between iterations). PV_EINVAL for k == 0, k > n or
 * a zero dimension; PV_ENUMERIC for a NaN or Inf in x; PV_ENOMEM. Fewer
 * distinct points than k leaves some clusters empty (size 0 in any
 * assignment), which is not an error. On success m owns its arrays
 * (kmeans_model_free). */
int kmeans_train(const float *x, size_t n, uint32_t dim,
                 const kmeans_params *p, kmeans_model *m);

/* The nearest centroid of each of x's n points (standardised as the model
 * was), and optionally its squared distance (dist2 may be NULL). */
int kmeans_assign(const kmeans_model *m, const float *x, size_t n,
                  uint32_t *labels, float *dist2);

void kmeans_model_free(kmeans_model *m);

#endif
