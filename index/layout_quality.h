/*
 * layout_quality.h - how well a low-dimensional layout (a map) keeps the
 * neighbourhoods of the vectors it was made from (index room, plain arrays).
 * One function serves every layout: pixvec's UMAP and t-SNE and the peers'
 * (the bench scores all of them with it), so they are compared on one scale.
 */
#ifndef PV_LAYOUT_QUALITY_H
#define PV_LAYOUT_QUALITY_H

#include <stddef.h>
#include <stdint.h>

/* Trustworthiness T(k) (Venna & Kaski 2001; exactly the formula of
 * sklearn.manifold.trustworthiness, docs/research/issue15-maps.md 3.1) and
 * the fraction of the k nearest neighbours kept (3.2) of layout y
 * (n x dims row-major, dims 1..3) of the input x (n x dim row-major),
 * both by euclidean distance, each point's own self excluded:
 *
 *   r(i,j) = 1 + #{l != i : d_x(i,l) < d_x(i,j)}   (input rank, 1-based)
 *   N_y(i) = the k nearest points to i in y (ties: lower index first)
 *   T      = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_y(i), r > k} (r(i,j) - k)
 *   kept   = (1 / (n k)) * sum_i #{j in N_y(i) : r(i,j) <= k}
 *
 * Ties in input distance count only strictly closer points (sklearn breaks
 * them arbitrarily; without ties the two agree). Input distances are
 * decided exactly: float32 dot products (sgemm) settle a comparison when
 * it is outside their rounding bound, and the few that are not are
 * computed again in double. Streaming: memory is O(n (k + dims) + blocks),
 * never n x n; time O(n^2 dim) (half the pairs, by symmetry).
 *
 * nthreads: worker threads (0 = every online core); the answer does not
 * depend on it. While it runs, OpenBLAS is set to one thread (each worker
 * calls sgemm itself) and restored after. Requires 1 <= k, 2k < n,
 * dim >= 1, dims 1..3, finite values. Returns 0, PV_EINVAL (bad argument),
 * PV_ENUMERIC (NaN or Inf in x or y) or PV_ENOMEM; trust and kept are set
 * only on success. */
int layout_quality(const float *x, size_t n, uint32_t dim, const float *y, uint32_t dims,
                   uint32_t k, unsigned nthreads, double *trust, double *kept);

#endif
