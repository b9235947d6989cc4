/*
 * vec.h - vector kernels (index room): dot products and L2 normalisation.
 *
 * The kernels are written three times: AVX-512F, AVX2+FMA, and portable C.
 * vec_init() picks the best the CPU supports at run time
 * (__builtin_cpu_supports), so one binary runs on machines with and without
 * AVX-512. Pointers need no alignment (LMDB values are only 2-byte aligned).
 */
#ifndef PV_VEC_H
#define PV_VEC_H

#include <stddef.h>
#include <stdint.h>

typedef enum { VEC_SCALAR = 0, VEC_AVX2 = 1, VEC_AVX512 = 2 } vec_isa;

/* Choose kernels for this CPU; idempotent, thread-safe. Called by everything
 * below on first use, so callers need not call it. */
void vec_init(void);

/* The instruction set in use, and a way to force a lower one (tests and
 * benchmarks). Forcing an ISA the CPU lacks returns -1 and changes nothing. */
vec_isa vec_isa_active(void);
int vec_isa_force(vec_isa isa);
const char *vec_isa_name(vec_isa isa);

float vec_dot(const float *a, const float *b, size_t n);

/* Scale v to unit length in place; returns the norm before scaling. A vector
 * of norm 0 (or below 1e-30) is left as all zeros and 0 is returned. NaN or
 * Inf in v returns NaN (caller reports PV_ENUMERIC). */
float vec_normalize(float *v, size_t n);

#endif
