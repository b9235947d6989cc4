/*
 * umap.h - UMAP layouts of plain float arrays (index room), as umap-learn
 * 0.5.3 defines them (McInnes, Healy, Melville 2018, "UMAP: Uniform
 * Manifold Approximation and Projection"; docs/research/issue15-maps.md
 * section 1 holds every formula and constant followed here).
 *
 * The caller gives the k nearest neighbours of every point (self
 * excluded); umap_fit prepends the self entry as umap-learn's kNN layout
 * has it, builds the fuzzy simplicial set (smooth_knn_dist, membership
 * strengths, fuzzy union), initialises the layout (spectral, PCA or
 * random) and runs umap-learn's SGD (optimize_layout_euclidean). Results
 * are reproducible: the same seed and input give bit-identical layouts for
 * any number of threads (umap.c says how). umap_transform places new
 * points into a fixed layout as umap-learn's UMAP.transform does.
 *
 * Threads: every function is reentrant; umap_fit and umap_transform start
 * and join their own worker threads.
 */
#ifndef PV_UMAP_H
#define PV_UMAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum { UMAP_INIT_SPECTRAL = 0, UMAP_INIT_PCA = 1, UMAP_INIT_RANDOM = 2 };

#define UMAP_MAX_NEIGHBORS 1024u /* n_neighbors cap (umap-learn has none) */
#define UMAP_MAX_EPOCHS 100000u

typedef struct umap_params {
    uint32_t dims;                 /* 2 or 3 */
    uint32_t n_neighbors;          /* 15, counting the point itself as
                                    * umap-learn does: 14 others are used */
    float min_dist, spread;        /* 0.1, 1.0 */
    uint32_t epochs;               /* 0: 500 if n <= 10000 else 200 */
    float learning_rate;           /* 1.0 */
    float repulsion;               /* gamma 1.0 */
    uint32_t negative_sample_rate; /* 5 */
    int init;                      /* UMAP_INIT_SPECTRAL default; falls back
                                    * to PCA if the eigen solver does not
                                    * converge (to random init when x is NULL
                                    * or PCA is not built in) */
    uint64_t seed;
    unsigned nthreads;             /* 0: every online core */
    const atomic_int *cancel;      /* nonzero: umap_fit and umap_transform
                                    * stop at the next epoch with PV_EINTR;
                                    * NULL: never */
} umap_params;

/* Fill p with umap-learn's defaults (above), seed 0. */
void umap_defaults(umap_params *p);

/* a and b of the curve 1/(1 + a d^2b) fitted to min_dist/spread as
 * umap-learn's find_ab_params (least squares on 300 points of [0, 3
 * spread], Levenberg-Marquardt from (1, 1)); the default pair a =
 * 1.57694346, b = 0.89506088 for 0.1/1.0 is returned as is. PV_EINVAL for
 * spread <= 0, min_dist < 0 or min_dist > spread (umap-learn refuses it
 * too) or non-finite values; PV_ENUMERIC if the fit does not converge. */
int umap_ab(float min_dist, float spread, float *a, float *b);

/* The layout of n points. x: n x dim input rows, used only for the PCA
 * initialisation or fallback (may be NULL otherwise; dim is ignored then).
 * nbr/dist: n x k, row i = point i's k nearest OTHER points, nearest first,
 * dist = plain euclidean distance; nbr == UINT32_MAX marks missing entries
 * (short rows). Uses min(k, n_neighbors - 1) columns. y: n x dims output.
 * PV_EINVAL for bad parameters (dims not 2 or 3, n_neighbors < 2, n < 2,
 * k == 0, a neighbour index >= n or == i, a negative or non-finite
 * distance, ...), PV_ENUMERIC for a non-finite result, PV_ENOMEM. A
 * disconnected kNN graph is laid out component by component (umap.c). */
int umap_fit(const float *x, size_t n, uint32_t dim, const uint32_t *nbr,
             const float *dist, uint32_t k, const umap_params *p, float *y);

/* umap-learn's transform: place nnew new points into the fixed layout
 * y_fit (nfit x dims); nbr/dist (nnew x k) are each new point's neighbours
 * among the fitted points (indices into y_fit), nearest first; uses
 * min(k, n_neighbors) columns. y_new: nnew x dims. A new point without a
 * single neighbour is put at the mean of y_fit (umap-learn gives NaN).
 * p gives the fit's parameters; epochs: 0 -> 100 if nnew <= 10000 else 30,
 * else epochs / 3 (as umap-learn); learning rate / 4. */
int umap_transform(const float *y_fit, size_t nfit, uint32_t dims,
                   const uint32_t *nbr, const float *dist, uint32_t k,
                   size_t nnew, const umap_params *p, float *y_new);

/* ---- the steps, exposed for tests and for umap_spectral.c ---------------- */

/* umap-learn's smooth_knn_dist. dist/nbr: n rows of kk used entries,
 * leading dimension ld (nbr may be NULL; UINT32_MAX entries are missing and
 * skipped everywhere, means included). with_self 1 (a fit): each row is
 * read as umap-learn's [0, d_0, ..., d_kk-1] (the self entry prepended):
 * target log2(kk + 1), the self entry counted in the means; with_self 0 (a
 * transform): rows as given, target log2(kk), and column 0 left out of the
 * sum as umap-learn does. local_connectivity 1 for a fit, 0 for a
 * transform. Writes sigma[n] and rho[n]. */
int umap_smooth_knn(const float *dist, const uint32_t *nbr, size_t n,
                    uint32_t kk, uint32_t ld, int with_self,
                    float local_connectivity, float *sigma, float *rho);

/* A symmetric sparse graph in CSR form, rows sorted by column. */
typedef struct umap_graph {
    size_t n;
    size_t *rowptr;  /* n + 1 */
    uint32_t *col;   /* rowptr[n] */
    float *val;      /* rowptr[n] */
} umap_graph;

void umap_graph_free(umap_graph *g);

/* The fuzzy union W = A + A^T - A o A^T of the membership strengths A
 * (compute_membership_strengths, not bipartite) of kk-column rows (self
 * excluded, UINT32_MAX missing), with zeros removed. */
int umap_fuzzy_graph(const uint32_t *nbr, const float *dist, size_t n,
                     uint32_t kk, uint32_t ld, const float *sigma,
                     const float *rho, umap_graph *g);

/* The spectral initialisation (spectral.py spectral_layout without the
 * final scaling): y (n x dims) = the dims eigenvectors of D^-1/2 W D^-1/2
 * after the trivial one, per connected component, components placed as
 * umap_spectral.c says. Returns 0, 1 when the eigen solver did not converge
 * (y then undefined), or a negative PV_E*. */
int umap_spectral_init(const umap_graph *g, uint32_t dims, uint64_t seed,
                       unsigned nthreads, float *y);

/* Connected components of g: comp[n] gets a component id in 0..*ncomp-1,
 * numbered by first vertex. */
int umap_components(const umap_graph *g, uint32_t *comp, uint32_t *ncomp);

#endif
