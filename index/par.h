/*
 * par.h - run a range function on threads (index room, private).
 *
 * The map code (tsne.c, tsne_fft.c, umap.c, umap_spectral.c) splits loops
 * over points into contiguous ranges, one per thread, with no shared
 * writes; these two helpers are that pattern, once.
 */
#ifndef PV_PAR_H
#define PV_PAR_H

#include <stddef.h>

#define PAR_MAX_THREADS 64u

/* The number of threads for a request: want, or the online cores when
 * want is 0, capped at max; >= 1. */
unsigned par_threads(unsigned want, unsigned max);

/* fn(ctx, lo, hi) over [0, n) split into min(nthreads, PAR_MAX_THREADS, n)
 * contiguous ranges n * t / nt .. n * (t + 1) / nt, one per thread (the
 * caller runs the first; a range whose thread cannot be created is run by
 * the caller too). Results must not depend on the split: each index's
 * work is done in a fixed order by one thread. */
typedef void (*par_range_fn)(void *ctx, size_t lo, size_t hi);
void par_run(unsigned nthreads, size_t n, par_range_fn fn, void *ctx);

#endif
