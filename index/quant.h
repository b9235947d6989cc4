/*
 * quant.h - compact vectors (index room): an int8 and a float16 copy of the
 * float32 vectors, and the distance kernels that read them.
 *
 * int8 (scalar quantisation with a per-dimension affine map, as FAISS's
 * ScalarQuantizer QT_8bit): dimension d of a vector is stored as one byte
 * c_d in 0..255, standing for o_d + s_d * c_d, where the offset o_d and the
 * scale s_d > 0 are learned from a sample of the data (quant_i8_train). A
 * query y stays float. Its dot with a code (vectors are unit length, so the
 * dot is the cosine) is
 *
 *     sum_d (o_d + s_d c_d) y_d  =  sum_d o_d y_d  +  sum_d c_d (s_d y_d)
 *                                =  bias           +  sum_d c_d w_d
 *
 * so quant_i8_query_prep computes bias and w once per query and each
 * candidate then costs one dot of bytes with floats (the exact asymmetric
 * distance, "ADC"). The integer path goes one step further: w is quantised
 * too, symmetrically, to int8 q_d = round(w_d / a) in [-127, 127], and the
 * dot becomes bias + a * sum_d c_d q_d with an exact integer sum: u8 x s8,
 * which is what AVX-512 VNNI's vpdpbusd multiplies. Its extra error is the
 * query's rounding, stated in quant.c and measured in tests/test_quant.c.
 * No per-vector correction term is needed (dot product, not L2), so a
 * stored code is exactly dim bytes.
 *
 * float16: IEEE binary16 with round-to-nearest-even, subnormals kept,
 * overflow to infinity; a float query against f16 codes.
 *
 * Kernels come in AVX-512, AVX2 and portable C, chosen at run time like
 * index/vec.h's and capped by vec_isa_force / PIXVEC_MAX_ISA: the int8
 * integer path needs AVX-512BW + AVX-512 VNNI for its AVX-512 form (else it
 * uses the AVX2 form), everything else here needs AVX-512F, or AVX2 + FMA +
 * F16C. No pointer needs alignment (LMDB values are 2-byte aligned). Every
 * ISA gives the same integer sum for the integer path; float sums differ
 * only by summation order.
 *
 * The int8 parameters blob (quant_i8_save / quant_i8_load), little-endian:
 *
 *   OFFSET      SIZE   DESCRIPTION
 *   0           4      magic "PVQ8"
 *   4           4      u32 blob version (1); larger is refused as newer
 *   8           4      u32 dim, 1 .. QUANT_MAX_DIM
 *   12          4      u32 flags, 0 (reserved; non-zero is refused)
 *   16          4*dim  f32 offset o_d, finite
 *   16+4*dim    4*dim  f32 scale s_d, finite, >= FLT_MIN, o_d + 255 s_d finite
 *   total       16 + 8*dim bytes (quant_i8_params_size)
 *
 * Thread rules: a trained or loaded quant_i8 is read-only and may be shared
 * by any number of threads; a quant_i8_query belongs to one thread.
 */
#ifndef PV_QUANT_H
#define PV_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "vec.h"

/* Same limit as storage's STORE_MAX_DIM. The integer dot sums blocks of at
 * most QUANT_IBLOCK dimensions in int32 (32768 * 255 * 127 < 2^31), then
 * the blocks in int64, so no dim up to this limit can overflow. */
#define QUANT_MAX_DIM (1u << 20)
#define QUANT_I8_MAGIC "PVQ8"
#define QUANT_I8_VERSION 1u

typedef struct {
    uint32_t dim;
    float *offset; /* o_d */
    float *scale;  /* s_d > 0 */
    float *inv;    /* 1 / s_d, for encoding */
} quant_i8;

/* A query prepared against one quant_i8 (quant_i8_query_prep). Zero it
 * before the first prep; later preps of the same dim reuse its buffers. */
typedef struct {
    uint32_t dim;
    uint32_t cap;
    float bias;  /* sum_d o_d y_d */
    float step;  /* a: w_d ~= a * qi_d (0 when w is all zero) */
    float *w;    /* s_d y_d */
    int8_t *qi;  /* round(w_d / a), in [-127, 127] */
    /* the integer kernel, chosen at prep (no dispatch per distance) */
    int32_t (*idot)(const int8_t *q, const uint8_t *c, size_t n);
} quant_i8_query;

/* Learn o and s from n sample vectors x (n * dim floats, row-major) with the
 * default rule (per-dimension min and max: see quant.c for the measurement
 * behind it). Allocates q's arrays; free with quant_i8_free. Returns 0,
 * PV_EINVAL (n == 0, dim 0 or above QUANT_MAX_DIM), PV_ENUMERIC (NaN or Inf
 * in x) or PV_ENOMEM. A dimension that is constant in the sample gets a small
 * positive scale (see quant.c), never 0. */
int quant_i8_train(const float *x, size_t n, uint32_t dim, quant_i8 *q);

/* The same with the range [lo, hi] of each dimension taken at the trim and
 * 1 - trim quantiles of the sample instead of min and max (trim in
 * [0, 0.25); 0 is quant_i8_train). Values outside are clipped at encode. */
int quant_i8_train_trim(const float *x, size_t n, uint32_t dim, double trim, quant_i8 *q);

void quant_i8_free(quant_i8 *q);

/* Code v (dim floats) into dim bytes, each round((v_d - o_d) / s_d) clipped
 * to 0..255. Returns the number of components that were clipped (so a caller
 * can decide to retrain when data drifts), or PV_ENUMERIC when v holds a NaN
 * (its component is coded 0; the rest are coded as usual). */
int quant_i8_encode(const quant_i8 *q, const float *v, uint8_t *code);
void quant_i8_decode(const quant_i8 *q, const uint8_t *code, float *v);

size_t quant_i8_params_size(uint32_t dim);
/* Write quant_i8_params_size(q->dim) bytes to buf (the table above). */
void quant_i8_save(const quant_i8 *q, void *buf);
/* Read a blob of len bytes written for dimension dim. Returns 0, PV_ENOTDB
 * (wrong magic), PV_ENEWER (larger version), PV_ECORRUPT (len, dim, flags or
 * a value refused: dim mismatch, NaN, Inf, scale not positive), PV_ENOMEM.
 * On error q is left zeroed. Untrusted input. */
int quant_i8_load(const void *buf, size_t len, uint32_t dim, quant_i8 *q);

/* Prepare query y (dim floats) for both int8 kernels. Returns 0,
 * PV_ENUMERIC (NaN or Inf in y or in w), PV_ENOMEM. */
int quant_i8_query_prep(const quant_i8 *q, const float *y, quant_i8_query *qq);
void quant_i8_query_free(quant_i8_query *qq);

/* Exact asymmetric dot: bias + sum_d c_d w_d (float accumulation). */
float quant_i8_dot_adc(const quant_i8_query *qq, const uint8_t *code);
/* Integer path: bias + step * sum_d c_d qi_d (exact integer sum). */
float quant_i8_dot_int(const quant_i8_query *qq, const uint8_t *code);
/* The exact integer sum_d c_d qi_d alone (tests: equal on every ISA). */
int64_t quant_i8_idot(const quant_i8_query *qq, const uint8_t *code);
/* n codes stored back to back (n * dim bytes) into out[n]. */
void quant_i8_dot_adc_batch(const quant_i8_query *qq, const uint8_t *codes, size_t n,
                            float *out);
void quant_i8_dot_int_batch(const quant_i8_query *qq, const uint8_t *codes, size_t n,
                            float *out);

/* Symmetric: the dot of the two codes' reconstructions,
 * sum_d (o_d + s_d a_d)(o_d + s_d b_d), for graph construction where neither
 * side has its float vector. Its error is both codes' rounding (about twice
 * the ADC error), not an integer kernel. */
float quant_i8_dot_codes(const quant_i8 *q, const uint8_t *a, const uint8_t *b);

/* float16. Codes are n uint16_t (binary16 bit patterns, little-endian in
 * memory like the floats), stored at any 1-byte alignment. */
uint16_t quant_f16_from_f32(float f); /* portable, round to nearest even */
float quant_f16_to_f32(uint16_t h);   /* portable, exact */
void quant_f16_encode(const float *v, size_t n, uint16_t *h); /* RNE, dispatched */
void quant_f16_decode(const uint16_t *h, size_t n, float *v);
float quant_f16_dot(const float *y, const uint16_t *h, size_t dim);
void quant_f16_dot_batch(const float *y, const uint16_t *codes, size_t n, size_t dim,
                         float *out);

/* One scorer for every index that reads compact copies (hnsw.c, ivf.c):
 * a query against stored records of one kind. */
typedef enum {
    QUANT_F32 = 0, /* records are dim floats (no compact copy) */
    QUANT_F16,     /* dim binary16 values */
    QUANT_I8       /* dim bytes coded by a quant_i8 */
} quant_kind;

typedef struct quant_scorer {
    quant_kind kind;
    uint32_t dim;
    const float *q;           /* the query (F32, F16) */
    const quant_i8_query *qq; /* I8: the query prepared */
} quant_scorer;

/* A scorer for query q (dim floats, kept by pointer) against records of
 * kind; I8 prepares q into qq against q8. PV_EINVAL (I8 without q8 or qq),
 * PV_ENUMERIC (I8: q holds a NaN or Inf), PV_ENOMEM. */
int quant_scorer_init(quant_scorer *sc, quant_kind kind, const quant_i8 *q8, const float *q,
                      uint32_t dim, quant_i8_query *qq);

/* The similarity of sc's query to record r (any alignment): the float
 * dot, the f16 dot, or the int8 integer path (quant_i8_dot_int). */
static inline float quant_score(const quant_scorer *sc, const void *r)
{
    switch (sc->kind) {
    case QUANT_I8:
        return quant_i8_dot_int(sc->qq, r);
    case QUANT_F16:
        return quant_f16_dot(sc->q, r, sc->dim);
    default:
        return vec_dot(sc->q, r, sc->dim);
    }
}

/* Bytes of one record of kind (4, 2 or 1 per dimension). */
size_t quant_record_bytes(quant_kind kind, uint32_t dim);

/* The kernel level each family runs at now (vec_isa_active capped by what
 * the CPU has for that family): f = f16 and float-accumulating int8
 * kernels, i = the int8 integer path. For tests and benchmarks. */
vec_isa quant_isa_f(void);
vec_isa quant_isa_i(void);

#endif
