/*
 * tsne.h - t-SNE layouts of plain float arrays (index room).
 *
 * t-SNE as scikit-learn 1.2.1 defines it (van der Maaten and Hinton 2008;
 * van der Maaten 2014 for Barnes-Hut): conditional P by the same binary
 * search on squared neighbour distances, P = (P + P^T) / sum, early
 * exaggeration, gains and momentum, PCA initialisation, gradient factor
 * 2(dof+1)/dof. The repulsion is exact (O(n^2), tiny n and tests),
 * Barnes-Hut (quadtree/octree) or FFT-accelerated interpolation (Linderman
 * et al. 2019, FIt-SNE, as openTSNE does it; 2-D only). Threads: pthreads,
 * parallel over points with a fixed per-point summation order, so a seed
 * and the data give bit-identical output for any thread count.
 *
 * The neighbour graph comes from the caller (index room: no database).
 */
#ifndef PV_TSNE_H
#define PV_TSNE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum { TSNE_AUTO = 0, TSNE_EXACT = 1, TSNE_BH = 2, TSNE_FFT = 3 };

typedef struct tsne_params {
    uint32_t dims;               /* 2 or 3 */
    float perplexity;            /* 30 */
    float early_exaggeration;    /* 12 */
    uint32_t exaggeration_iters; /* 250 */
    uint32_t iters;              /* 1000 total, as sklearn 1.2 n_iter */
    float learning_rate;         /* 0: auto = max(n / early_exaggeration / 4, 50) */
    float theta;                 /* Barnes-Hut angle 0.5 */
    int method;                  /* TSNE_AUTO: exact for n <= TSNE_EXACT_MAX,
                                  * BH for 3-D and for 2-D below TSNE_FFT_MIN,
                                  * FFT above */
    uint64_t seed;
    unsigned nthreads;           /* 0: every online core */
    const atomic_int *cancel;    /* nonzero: tsne_run stops at the next
                                  * iteration with PV_EINTR; NULL: never */
} tsne_params;

#define TSNE_EXACT_MAX 200u
#define TSNE_FFT_MIN 4000u

void tsne_defaults(tsne_params *p);

/* x: n x dim input rows (only for the PCA initialisation; NULL: random
 * initialisation 1e-4 N(0,1) from the seed). nbr/dist: n x k, row i =
 * point i's k nearest OTHER points, nearest first, dist the plain
 * euclidean distance (not squared); nbr == UINT32_MAX ends a short row.
 * Only the first min(k, floor(3 perplexity + 1)) are used. y: n x dims
 * output. Returns 0, PV_EINVAL (n < 4, dims not 2/3, perplexity out of
 * range (0, n-1], bad neighbour index, ...), PV_ENOMEM, or PV_ENUMERIC if
 * anything goes non-finite. */
int tsne_run(const float *x, size_t n, uint32_t dim, const uint32_t *nbr,
             const float *dist, uint32_t k, const tsne_params *p, float *y);

/* Place nnew new points into the fixed layout y_fit (nfit x dims): nbr/dist
 * (nnew x k) are each new point's neighbours among the fitted points.
 * openTSNE's transform recipe: conditional P at perplexity 5 on the first
 * min(k, 25) neighbours, start at the per-axis median of the neighbours'
 * positions, 250 iterations (learning rate 0.1, momentum 0.8, exaggeration
 * 1.5, gradient norm clipped to 0.25 per point) in which only the new
 * points move, repelled by the fitted points (Barnes-Hut on a tree of
 * y_fit). Each new point is placed independently of the others (its own
 * normalisation sum over the fitted points), so a batch gives the same
 * positions as one at a time. p supplies theta, nthreads (other fields
 * are ignored; NULL: defaults). A row without neighbours is PV_EINVAL. */
int tsne_place(const float *y_fit, size_t nfit, uint32_t dims,
               const uint32_t *nbr, const float *dist, uint32_t k, size_t nnew,
               const tsne_params *p, float *y_new);

/* ---- pieces, exposed for the tests ------------------------------------- */

/* The symmetric joint P of tsne_run in CSR form: row i holds the columns
 * col[rowptr[i] .. rowptr[i+1]) sorted ascending, values val (sum over the
 * whole matrix 1). */
typedef struct tsne_csr {
    size_t n;
    size_t *rowptr; /* n + 1 */
    uint32_t *col;
    float *val;
} tsne_csr;

void tsne_csr_free(tsne_csr *m);

/* Conditional probabilities (sklearn's _binary_search_perplexity): cond is
 * n x kk (kk = min(k, floor(3 perplexity + 1))), row i over the first kk
 * neighbours (0 past a short row's end). Then the joint P. */
int tsne_conditional_p(size_t n, const uint32_t *nbr, const float *dist,
                       uint32_t k, float perplexity, unsigned nthreads,
                       double *cond, uint32_t *kk);
int tsne_joint_p(size_t n, const uint32_t *nbr, const float *dist, uint32_t k,
                 float perplexity, unsigned nthreads, tsne_csr *p);

/* The gradient of KL(P || Q) at y (n x dims) by method (TSNE_EXACT, BH or
 * FFT), sklearn's scaling (factor 2(dof+1)/dof), P multiplied by exag.
 * kl (may be NULL) receives the KL divergence (exact method: exact;
 * others: with their approximate normalisation Z). */
int tsne_gradient(const tsne_csr *p, const float *y, uint32_t dims, int method,
                  float theta, float exag, unsigned nthreads, float *grad,
                  double *kl);

#endif
