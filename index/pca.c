/*
 * pca.c - principal component projection (index room). See pca.h.
 *
 * Covariance, then eigenvectors: for the map use-case n is large (70,000)
 * and dim moderate (<= a few thousand), so the dim x dim matrix
 * C = sum (x - mu)(x - mu)^T is formed once, from blocks of PCA_BLOCK
 * centred rows (float ssyrk per block, summed into double so that the
 * rounding of one block does not grow with n). Its top ncomp eigenvectors
 * come from block subspace iteration (Golub and Van Loan, "Matrix
 * Computations", 8.2.4 orthogonal iteration) with l = ncomp + PCA_OVERSAMPLE
 * vectors: Z = C Q, Q = orth(Z) by modified Gram-Schmidt, and a
 * Rayleigh-Ritz step (the l x l matrix Q^T C Q diagonalised by cyclic
 * Jacobi, linalg.c) that rotates Q onto the Ritz vectors, sorted by value.
 * It stops when every wanted Ritz pair has a residual ||C q - lambda q||
 * below PCA_TOL * lambda_1 (or after PCA_MAX_ITER steps). The start block is
 * drawn from the seed with splitmix64, so the result is a function of the
 * data and the seed; the sign rule (scikit-learn's svd_flip, u-based)
 * removes the dependence on the start block altogether.
 */
#include "pca.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "pixvec.h"
#include "pv_util.h"

#define PCA_BLOCK 1024u
#define PCA_OVERSAMPLE 8u
#define PCA_MAX_ITER 1000
#define PCA_TOL 1e-7

/* Modified Gram-Schmidt on the l columns of q (dim x l, row-major), twice
 * for stability; a column that vanishes is replaced by a unit vector. */
static void pca_orth(double *q, uint32_t dim, uint32_t l)
{
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t j = 0; j < l; j++) {
            for (uint32_t i = 0; i < j; i++) {
                double d = 0;
                for (uint32_t k = 0; k < dim; k++)
                    d += q[(size_t)k * l + i] * q[(size_t)k * l + j];
                for (uint32_t k = 0; k < dim; k++)
                    q[(size_t)k * l + j] -= d * q[(size_t)k * l + i];
            }
            double nrm = 0;
            for (uint32_t k = 0; k < dim; k++)
                nrm += q[(size_t)k * l + j] * q[(size_t)k * l + j];
            nrm = sqrt(nrm);
            if (nrm < 1e-300) {
                for (uint32_t k = 0; k < dim; k++)
                    q[(size_t)k * l + j] = k == j % dim;
                j--; /* orthogonalise the replacement */
                continue;
            }
            for (uint32_t k = 0; k < dim; k++)
                q[(size_t)k * l + j] /= nrm;
        }
}

/* Rows [r0, r0 + PCA_BLOCK) of x (fewer at the end) minus mu, as float,
 * into blk; returns how many rows. */
static size_t pca_centred_block(const float *x, size_t n, uint32_t dim, const double *mu,
                                size_t r0, float *blk)
{
    size_t rows = n - r0 < PCA_BLOCK ? n - r0 : PCA_BLOCK;
    for (size_t i = 0; i < rows; i++)
        for (uint32_t d = 0; d < dim; d++)
            blk[i * dim + d] = (float)(x[(r0 + i) * dim + d] - mu[d]);
    return rows;
}

int pca_project(const float *x, size_t n, uint32_t dim, uint32_t ncomp,
                uint64_t seed, float *y)
{
    if (!x || !y || n < 2 || dim == 0 || ncomp == 0 ||
        ncomp > PCA_MAX_COMPONENTS || ncomp > dim)
        return PV_EINVAL;
    int rc = PV_ENOMEM;
    uint32_t l = ncomp + PCA_OVERSAMPLE < dim ? ncomp + PCA_OVERSAMPLE : dim;
    double *mu = pv_calloc_array(dim, sizeof *mu);
    double *c = pv_calloc_array((size_t)dim * dim, sizeof *c);
    float *cf = pv_alloc_array((size_t)dim * dim, sizeof *cf);
    float *blk = pv_alloc_array((size_t)PCA_BLOCK * dim, sizeof *blk);
    double *q = pv_alloc_array((size_t)dim * l, sizeof *q);
    double *z = pv_alloc_array((size_t)dim * l, sizeof *z);
    double *t = pv_alloc_array((size_t)l * l, sizeof *t);
    double *v = pv_alloc_array((size_t)l * l, sizeof *v);
    double *w = pv_alloc_array(l, sizeof *w);
    double *tmp = pv_alloc_array((size_t)dim * l, sizeof *tmp);
    float *vf = pv_alloc_array((size_t)dim * ncomp, sizeof *vf);
    if (!mu || !c || !cf || !blk || !q || !z || !t || !v || !w || !vf || !tmp)
        goto done;

    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dim; d++)
            mu[d] += x[i * dim + d];
    for (uint32_t d = 0; d < dim; d++) {
        mu[d] /= (double)n;
        if (!isfinite(mu[d])) {
            rc = PV_ENUMERIC;
            goto done;
        }
    }
    /* C = sum over blocks of B^T B, B the centred rows */
    for (size_t r0 = 0; r0 < n; r0 += PCA_BLOCK) {
        size_t rows = pca_centred_block(x, n, dim, mu, r0, blk);
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim,
                    (int)rows, 1.0f, blk, (int)dim, 0.0f, cf, (int)dim);
        for (uint32_t i = 0; i < dim; i++)
            for (uint32_t j = i; j < dim; j++)
                c[(size_t)i * dim + j] += cf[(size_t)i * dim + j];
    }
    for (uint32_t i = 0; i < dim; i++)
        for (uint32_t j = 0; j < i; j++)
            c[(size_t)i * dim + j] = c[(size_t)j * dim + i];

    uint64_t st = seed ^ 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < (size_t)dim * l; i++)
        q[i] = pv_rand_unit(&st) - 0.5;
    pca_orth(q, dim, l);
    for (int it = 0; it < PCA_MAX_ITER; it++) {
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, (int)dim, (int)l,
                    1.0, c, (int)dim, q, (int)l, 0.0, z, (int)l);
        /* Rayleigh-Ritz: t = Q^T C Q, rotate Q and Z by its eigenvectors */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)l, (int)l,
                    (int)dim, 1.0, q, (int)l, z, (int)l, 0.0, t, (int)l);
        for (uint32_t i = 0; i < l; i++)
            for (uint32_t j = 0; j < i; j++)
                t[i * l + j] = t[j * l + i] = 0.5 * (t[i * l + j] + t[j * l + i]);
        linalg_jacobi_eig(t, l, w, v);
        /* q <- q v ; z <- z v (z = C q, so C q_new = z v) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)dim, (int)l,
                    (int)l, 1.0, q, (int)l, v, (int)l, 0.0, tmp, (int)l);
        memcpy(q, tmp, (size_t)dim * l * sizeof *q);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)dim, (int)l,
                    (int)l, 1.0, z, (int)l, v, (int)l, 0.0, tmp, (int)l);
        memcpy(z, tmp, (size_t)dim * l * sizeof *z);
        double worst = 0, scale = fabs(w[0]) > 0 ? fabs(w[0]) : 1;
        for (uint32_t j = 0; j < ncomp; j++) {
            double r = 0;
            for (uint32_t k = 0; k < dim; k++) {
                double e = z[(size_t)k * l + j] - w[j] * q[(size_t)k * l + j];
                r += e * e;
            }
            r = sqrt(r) / scale;
            if (r > worst)
                worst = r;
        }
        if (!isfinite(worst)) {
            rc = PV_ENUMERIC;
            goto done;
        }
        if (worst <= PCA_TOL || w[0] == 0)
            break;
        memcpy(q, z, (size_t)dim * l * sizeof *q);
        pca_orth(q, dim, l);
    }
    for (uint32_t k = 0; k < dim; k++)
        for (uint32_t j = 0; j < ncomp; j++)
            vf[(size_t)k * ncomp + j] = (float)q[(size_t)k * l + j];

    for (size_t r0 = 0; r0 < n; r0 += PCA_BLOCK) {
        size_t rows = pca_centred_block(x, n, dim, mu, r0, blk);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows,
                    (int)ncomp, (int)dim, 1.0f, blk, (int)dim, vf, (int)ncomp,
                    0.0f, y + r0 * ncomp, (int)ncomp);
    }
    for (uint32_t j = 0; j < ncomp; j++) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (fabsf(y[i * ncomp + j]) > fabsf(y[best * ncomp + j]))
                best = i;
        if (y[best * ncomp + j] < 0)
            for (size_t i = 0; i < n; i++)
                y[i * ncomp + j] = -y[i * ncomp + j];
    }
    rc = 0;
    for (size_t i = 0; i < n * ncomp; i++)
        if (!isfinite(y[i]))
            rc = PV_ENUMERIC;
done:
    free(mu);
    free(c);
    free(cf);
    free(blk);
    free(q);
    free(z);
    free(t);
    free(v);
    free(w);
    free(vf);
    free(tmp);
    return rc;
}
