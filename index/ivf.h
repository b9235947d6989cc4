/*
 * ivf.h - inverted-file (IVF) search over k-means lists (index room).
 *
 * The vectors are split into nlist lists by their nearest centroid (the
 * centroids come from kmeans.c). A query scores the centroids, takes the
 * nprobe nearest lists and scans their members exactly, keeping the k best
 * by dot product (cosine: stored vectors are unit length). With nprobe =
 * nlist it is the exact scan. Centroids, lists and vectors are reached only
 * through ivf_io, so the same code runs on LMDB (engine) and on arrays.
 */
#ifndef PV_IVF_H
#define PV_IVF_H

#include <stddef.h>
#include <stdint.h>

#include "flat.h"
#include "quant.h"

typedef struct ivf_io {
    void *ctx;
    uint32_t dim, nlist;
    /* The centroid of list (dim floats, may be unaligned). */
    const float *(*centroid)(void *ctx, uint32_t list);
    /* Call fn with the member ids of list, a run at a time (u32, may be
     * unaligned); fn's nonzero return stops the walk and is returned. */
    int (*list_each)(void *ctx, uint32_t list,
                     int (*fn)(void *fctx, const void *ids, size_t n),
                     void *fctx);
    /* The vector of id (dim floats, may be unaligned), NULL if none. */
    const float *(*vec)(void *ctx, uint32_t id);
    /* NULL, or nonzero for ids never to return (tombstones). */
    int (*deleted)(void *ctx, uint32_t id);
    /* Compact copies: when code_kind is not QUANT_F32, members are scored
     * by code(ctx, id) (any alignment) instead of vec, and the similarities
     * returned are the compact ones (quant.h's scorer), for the caller to
     * re-score if it wants. code_i8: the parameters of QUANT_I8 codes. */
    quant_kind code_kind;
    const quant_i8 *code_i8;
    const void *(*code)(void *ctx, uint32_t id);
} ivf_io;

/* The nprobe (<= nlist) lists whose centroids are nearest q in L2, nearest
 * first, into lists. */
int ivf_probe(const ivf_io *io, const float *q, uint32_t nprobe,
              uint32_t *lists);

/* The k best members of q's nprobe nearest lists, best first, into out;
 * *n gets how many (<= k). PV_ENUMERIC for a NaN or Inf in q. */
int ivf_search(const ivf_io *io, const float *q, uint32_t nprobe, uint32_t k,
               flat_hit *out, uint32_t *n);

#endif
