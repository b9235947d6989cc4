/*
 * pca.h - principal component projection of plain float arrays (index room).
 *
 * Used to initialise map layouts (t-SNE's "pca" init, as scikit-learn 1.2):
 * the rows are centred, the covariance X^T X is accumulated in blocks with
 * OpenBLAS ssyrk into double, its leading eigenvectors are found by block
 * subspace iteration with Rayleigh-Ritz steps (Jacobi on the small
 * projected matrix), and the centred rows are projected on them.
 */
#ifndef PV_PCA_H
#define PV_PCA_H

#include <stddef.h>
#include <stdint.h>

#define PCA_MAX_COMPONENTS 64u

/* Centre x (n x dim, row-major) and project it on its first ncomp
 * (1..PCA_MAX_COMPONENTS, <= dim) principal components, largest variance
 * first: y is n x ncomp, row-major. Deterministic for a seed (the start
 * block of the subspace iteration). Each component's sign is fixed as
 * scikit-learn's svd_flip (u-based) fixes it: the projected value of
 * largest magnitude in each column of y is positive (the first such row on
 * ties), so the result does not depend on the start vectors. Memory: dim^2
 * doubles plus a block of rows. Returns 0, PV_EINVAL (n < 2, ncomp out of
 * range, NULL pointers), PV_ENOMEM or PV_ENUMERIC (non-finite input). */
int pca_project(const float *x, size_t n, uint32_t dim, uint32_t ncomp,
                uint64_t seed, float *y);

#endif
