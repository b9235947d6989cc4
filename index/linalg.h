/*
 * linalg.h - small dense linear algebra shared by the map code (index room).
 *
 * pca.c (Rayleigh-Ritz steps of its subspace iteration) and umap_spectral.c
 * (LOBPCG's Rayleigh-Ritz and SVQB steps, dense solves of small components)
 * both need every eigenpair of a small dense symmetric matrix; they share
 * the one cyclic Jacobi solver here.
 */
#ifndef PV_LINALG_H
#define PV_LINALG_H

#include <stddef.h>

/* All eigenpairs of the symmetric m x m matrix a (row-major, destroyed):
 * eigenvalues into ev[m], largest first, the matching unit eigenvectors
 * into the columns of v (m x m, row-major). Meant for small m (tens to
 * about a hundred): O(m^3) per sweep, at most 100 sweeps. */
void linalg_jacobi_eig(double *a, size_t m, double *ev, double *v);

#endif
