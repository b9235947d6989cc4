/*
 * tsne_int.h - what tsne.c and tsne_fft.c share (index room, private).
 */
#ifndef PV_TSNE_INT_H
#define PV_TSNE_INT_H

#include <stddef.h>
#include <stdint.h>

/* FFT-interpolation repulsion in 2-D (FIt-SNE / openTSNE scheme, dof 1):
 * for every point i, neg[2i..2i+1] = sum_j w_ij^2 (y_i - y_j) and zi[i] =
 * sum_{j != i} w_ij, w = 1 / (1 + |y_i - y_j|^2), both approximated by
 * interpolation on an equispaced grid. The workspace keeps the buffers
 * between calls (grown as the layout spreads). */
typedef struct tsne_fft_ws tsne_fft_ws;
int tsne_fft_repulsion(tsne_fft_ws **ws, const float *y, size_t n,
                       unsigned nthreads, double *neg, double *zi);
void tsne_fft_free(tsne_fft_ws *ws);

#endif
