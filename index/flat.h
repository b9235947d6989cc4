/*
 * flat.h - exact (brute force) search over a chunked vector set (index room).
 *
 * The vectors live in chunks (storage's layout, but index/ knows nothing of
 * LMDB): chunk c holds vectors with ids c*chunk_cap .. c*chunk_cap+n[c]-1,
 * row-major float32, dim floats each. Chunk pointers may be unaligned.
 *
 * Top-k: scores = Q . X^T per chunk by OpenBLAS sgemm, then a bounded
 * min-heap per query. All-pairs: blocked sgemm of chunk i against chunks
 * j >= i; only the upper triangle (id_a < id_b) is reported.
 */
#ifndef PV_FLAT_H
#define PV_FLAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vec_set {
    const float *const *chunks; /* nchunks pointers */
    const uint32_t *n;          /* vectors in each chunk (<= chunk_cap) */
    uint32_t nchunks;
    uint32_t chunk_cap;
    uint32_t dim;
} vec_set;

/* The vector of id in s (may be unaligned), NULL if s has none. */
static inline const float *vec_set_get(const vec_set *s, uint32_t id)
{
    uint32_t c = id / s->chunk_cap, off = id % s->chunk_cap;
    if (c >= s->nchunks || off >= s->n[c])
        return NULL;
    return s->chunks[c] + (size_t)off * s->dim;
}

/* Keep-filter: returns nonzero if id may be returned. NULL keeps all. Called
 * only for candidates that would enter the result (so it may be slowish). */
typedef int (*flat_filter)(void *ctx, uint32_t id);

typedef struct flat_hit {
    uint32_t id;
    float score;
} flat_hit;

/* For each of nq queries (row-major nq x dim), the k best ids by dot
 * product, best first, into hits[q*k ..]; nhits[q] gets how many (<= k).
 * Returns 0 or PV_ENOMEM / PV_EINVAL. */
int flat_topk(const vec_set *set, const float *queries, uint32_t nq,
              uint32_t k, flat_filter keep, void *keep_ctx, flat_hit *hits,
              uint32_t *nhits);

/* A bounded top-k on a caller's array h of capacity k holding *cnt hits:
 * offer one (id, score); NaN never enters. The root h[0] is the worst kept.
 * flat_heap_sort then orders h[0..m) best first (ties by lower id). */
void flat_heap_offer(flat_hit *h, uint32_t *cnt, uint32_t k, uint32_t id,
                     float score);
void flat_heap_sort(flat_hit *h, uint32_t m);

typedef struct flat_pair {
    uint32_t a, b; /* a < b */
    float score;
} flat_pair;

/* Every pair (a < b) with dot >= threshold, both kept by the filter. Pairs
 * are appended to *pairs (realloc'd; *npairs updated). flops (may be NULL)
 * receives the multiply-adds*2 done. side (may be NULL; indexed by id, for
 * every id of the set): only pairs with side[a] != side[b] are looked at.
 * best (may be NULL; indexed by id, set by the caller, say to -2): raised to
 * each kept id's highest score with another kept id (of the other side).
 * Returns 0 or PV_ENOMEM / PV_EINVAL. */
int flat_allpairs(const vec_set *set, float threshold, flat_filter keep,
                  void *keep_ctx, const uint8_t *side, float *best,
                  flat_pair **pairs, size_t *npairs, double *flops);
/* The same, stopping with PV_EINTR (the pairs found so far appended) once
 * *cancel is nonzero, checked before each pair of chunks (pv_db_interrupt's
 * flag; NULL: never). */
int flat_allpairs_cancel(const vec_set *set, float threshold, flat_filter keep,
                         void *keep_ctx, const uint8_t *side, float *best,
                         flat_pair **pairs, size_t *npairs, double *flops,
                         const atomic_int *cancel);

#endif
