/*
 * kernel_test.h - what the tests of the vector kernels share (tests only):
 * a loop that runs its body once per ISA level this CPU has, with that level
 * forced through vec_isa_force (index/vec.h), the suite hooks that put the
 * level back, and a deterministic generator so a failure reproduces.
 */
#ifndef PV_TEST_KERNEL_TEST_H
#define PV_TEST_KERNEL_TEST_H

#include <criterion/criterion.h>
#include <stdint.h>

#include "vec.h"

/* Runs body once per ISA the CPU has (and PIXVEC_MAX_ISA allows), with that
 * ISA forced; a level above the machine's is skipped, so the tests pass on
 * a machine without AVX-512 or AVX2. */
#define FOR_EACH_ISA(isa)                                                     \
    for (vec_isa isa = VEC_SCALAR; isa <= VEC_AVX512;                         \
         isa = (vec_isa)(isa + 1))                                            \
        if (vec_isa_force(isa) == 0)

/* TestSuite(name, .init = kt_save_isa, .fini = kt_restore_isa) */
static vec_isa kt_saved_isa;

static inline void kt_save_isa(void)
{
    kt_saved_isa = vec_isa_active();
}

static inline void kt_restore_isa(void)
{
    cr_assert_eq(vec_isa_force(kt_saved_isa), 0);
}

/* xorshift64* on *state (not zero) */
static inline uint64_t kt_rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* uniform in [-1, 1) */
static inline float kt_rng_unit(uint64_t *state)
{
    return (float)((double)(kt_rng_next(state) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

#endif
