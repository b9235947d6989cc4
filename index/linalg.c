/*
 * linalg.c - cyclic Jacobi eigensolver for small dense symmetric matrices
 * (index room). See linalg.h.
 *
 * The classical cyclic-by-row Jacobi method (Golub and Van Loan, "Matrix
 * Computations", 8.5.3): sweep over every pair (p, q) of the upper
 * triangle, zero a_pq by the rotation whose tangent is the smaller root
 * t = sgn(theta) / (|theta| + sqrt(theta^2 + 1)), theta = (a_qq - a_pp) /
 * (2 a_pq), and accumulate the rotations into v. Stops when the squared
 * off-diagonal mass is at most 1e-30 of the squared Frobenius norm (or is
 * zero), or after 100 sweeps; a_pq below 1e-300 in magnitude is skipped
 * (no subnormal divides). Then a selection sort puts the pairs in
 * descending order of eigenvalue. Chosen over LAPACK's dsyevr because the
 * matrices are tiny, the code is short, and the result is the same bits
 * on every machine.
 */
#include "linalg.h"

#include <math.h>

void linalg_jacobi_eig(double *a, size_t m, double *ev, double *v)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++)
            v[i * m + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, tot = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < m; j++) {
                tot += a[i * m + j] * a[i * m + j];
                if (i != j)
                    off += a[i * m + j] * a[i * m + j];
            }
        if (off <= 1e-30 * tot || off == 0)
            break;
        for (size_t p = 0; p + 1 < m; p++)
            for (size_t q = p + 1; q < m; q++) {
                double apq = a[p * m + q];
                if (fabs(apq) < 1e-300)
                    continue;
                double theta = (a[q * m + q] - a[p * m + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t k = 0; k < m; k++) { /* columns p, q */
                    double akp = a[k * m + p], akq = a[k * m + q];
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < m; k++) { /* rows p, q */
                    double apk = a[p * m + k], aqk = a[q * m + k];
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < m; k++) { /* the rotation into v */
                    double vkp = v[k * m + p], vkq = v[k * m + q];
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
    }
    for (size_t i = 0; i < m; i++)
        ev[i] = a[i * m + i];
    /* selection sort, descending, columns of v along */
    for (size_t i = 0; i < m; i++) {
        size_t b = i;
        for (size_t j = i + 1; j < m; j++)
            if (ev[j] > ev[b])
                b = j;
        if (b != i) {
            double t = ev[i];
            ev[i] = ev[b];
            ev[b] = t;
            for (size_t k = 0; k < m; k++) {
                t = v[k * m + i];
                v[k * m + i] = v[k * m + b];
                v[k * m + b] = t;
            }
        }
    }
}
