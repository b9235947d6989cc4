/*
 * codes.h - the compact copy of the vectors (int8 or float16) in LMDB
 * (engine room): written beside the float32 vectors as they are appended,
 * read by graph searches (engine/graph.c), checked by pv_db_verify.
 *
 * Layout (format 2, store.h's meta vec_codes = PV_VECTORS_F16 or _I8):
 *
 *   codes table  u32 chunk c -> the codes of ids c*C .. c*C+n-1, back to
 *                back, `bytes` each (C = store's chunk; f16: 2*dim bytes,
 *                binary16 little-endian; i8: dim bytes). Every chunk full
 *                but the last; ids 0 .. codes_n-1 in all.
 *   meta codes_n        u64 ids coded (absent: 0). Equal to next_id once
 *                       coding has begun: f16 codes every vector as it is
 *                       added, i8 from its first training on.
 *   meta codes_i8       int8 parameters, index/quant.h's "PVQ8" blob.
 *   meta codes_trained  u64 vectors stored when they were learned.
 *
 * int8 training: when the database first holds PV_I8_TRAIN_MIN vectors,
 * and again each time their number has doubled since, until it has been
 * done at PV_I8_TRAIN_MAX or more, the per-dimension ranges are learned
 * from an evenly spaced sample of at most CODES_SAMPLE stored vectors and
 * every code is written again. Graph links never depend on codes (inserts
 * score float32), so a retraining changes no link.
 */
#ifndef PV_CODES_H
#define PV_CODES_H

#include <stdint.h>

#include "pixvec.h"
#include "quant.h"
#include "store.h"

#define CODES_SAMPLE 16384u

/* What a search reads: the codes of ids 0..n-1 of one snapshot. */
typedef struct codes_view {
    uint32_t kind;       /* PV_VECTORS_*; PV_VECTORS_F32 when none (n == 0) */
    uint32_t bytes;      /* bytes of one code */
    uint32_t C;          /* codes per chunk */
    uint64_t n;          /* ids coded */
    quant_i8 q8;         /* PV_VECTORS_I8: the parameters */
    const uint8_t **ptr; /* chunk pointers into the map */
    uint32_t nchunks;
} codes_view;

/* Bytes of one code of kind for dim (0 for PV_VECTORS_F32). */
uint32_t codes_bytes(uint32_t kind, uint32_t dim);

/* Fill v from snapshot t, every record checked (PV_ECORRUPT with
 * store_corrupt's message: a chunk of the wrong length or missing, a
 * parameters blob refused, codes_n beyond next_id). v->n is 0 when the
 * database keeps no codes or has none yet. */
int codes_view_load(store_txn *t, const store_schema *s, codes_view *v);
/* The same in a write transaction whose codes may run up to ahead ids past
 * the counters (codes_add codes a batch before the counters are put). */
int codes_view_load_ahead(store_txn *t, const store_schema *s, uint32_t ahead, codes_view *v);
void codes_view_free(codes_view *v); /* v stays, zeroed */

/* The code of id (NULL beyond v->n). */
static inline const void *codes_at(const codes_view *v, uint32_t id)
{
    if (id >= v->n)
        return 0;
    return v->ptr[id / v->C] + (uint64_t)(id % v->C) * v->bytes;
}

/* The scorer kind of v's codes (QUANT_F32 when it holds none). */
static inline quant_kind codes_quant_kind(const codes_view *v)
{
    return v->kind == PV_VECTORS_I8 ? QUANT_I8 : v->kind == PV_VECTORS_F16 ? QUANT_F16 : QUANT_F32;
}

/* The code of id (below v->n) decoded into out (dim floats). */
void codes_decode(const codes_view *v, uint32_t id, uint32_t dim, float *out);

/* In write transaction t, for a batch of new ids first..first+nnew-1 whose
 * vectors are vecs (not stored yet; the ids before first are, unless
 * dropped), before the graph inserts them: code the ids not coded yet,
 * learning the int8 parameters first when due (then every id is coded
 * again). A codes_only store then drops its float32 vectors (the caller
 * must not append the batch's: store_vec_dropped). No-op for a database
 * without codes. */
int codes_add(store_txn *t, const store_schema *s, uint32_t first, uint32_t nnew,
              const float *vecs);

/* For pv_db_verify: every code equal to the coding of its float32 vector
 * (which is deterministic), codes_n == next_id once coding has begun.
 * PV_ECORRUPT naming the first id that differs. */
int codes_verify(store_txn *t, const store_schema *s, uint32_t next_id);

#endif
