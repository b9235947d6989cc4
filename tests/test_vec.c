/*
 * test_vec.c - the vector kernels (index/vec.c), every ISA variant this CPU
 * has, against double-precision references, on aligned and misaligned
 * pointers (offset by one float and by 2 bytes, as LMDB values may be).
 *
 * The misaligned buffers are exactly as long as their data, so ASan catches
 * a tail that reads past the end; a kernel that dereferenced a misaligned
 * float* would be reported by UBSan in the sanitizer build.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_test.h"
#include "vec.h"

static const size_t lens[] = {0, 1, 7, 15, 16, 17, 31, 33, 64, 100, 784, 1000};
#define NLENS (sizeof lens / sizeof lens[0])
/* Byte offsets of the data inside its buffer: aligned, one float, 2 bytes. */
static const size_t offsets[] = {0, 4, 2};
#define NOFFS (sizeof offsets / sizeof offsets[0])

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static float rng_unit(void) /* uniform in [-1, 1) */
{
    return (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* A buffer of exactly off + n floats' bytes holding src at byte offset off;
 * returns the (possibly misaligned) float pointer, *base gets the block. */
static float *place(const float *src, size_t n, size_t off, char **base)
{
    char *b = malloc(off + n * sizeof(float) + (n == 0 && off == 0));
    cr_assert_not_null(b);
    if (n)
        memcpy(b + off, src, n * sizeof(float));
    *base = b;
    return (float *)(void *)(b + off);
}

static void fetch(float *dst, const char *base, size_t off, size_t n)
{
    if (n)
        memcpy(dst, base + off, n * sizeof(float));
}

TestSuite(vec, .init = kt_save_isa, .fini = kt_restore_isa);

Test(vec, isa_dispatch)
{
    vec_isa best = vec_isa_active();
    cr_assert(best >= VEC_SCALAR && best <= VEC_AVX512);
    /* Every ISA up to the one chosen must be available. */
    for (int i = VEC_SCALAR; i <= (int)best; i++) {
        cr_assert_eq(vec_isa_force((vec_isa)i), 0, "%s", vec_isa_name((vec_isa)i));
        cr_assert_eq(vec_isa_active(), (vec_isa)i);
    }
    cr_assert_eq(vec_isa_force(best), 0);
    /* Anything else is refused and changes nothing. */
    cr_assert_eq(vec_isa_force((vec_isa)7), -1);
    cr_assert_eq(vec_isa_force((vec_isa)-1), -1);
    if (best < VEC_AVX512)
        cr_assert_eq(vec_isa_force(VEC_AVX512), -1);
    cr_assert_eq(vec_isa_active(), best);
    cr_assert_str_eq(vec_isa_name(VEC_SCALAR), "scalar");
    cr_assert_str_eq(vec_isa_name(VEC_AVX2), "avx2");
    cr_assert_str_eq(vec_isa_name(VEC_AVX512), "avx512");
    cr_assert_str_eq(vec_isa_name((vec_isa)9), "unknown");
    cr_log_info("vec: best ISA on this CPU is %s", vec_isa_name(best));
}

/* Random data: within the worst-case bound of any summation order,
 * n * eps * sum|a_i b_i| (Higham, gamma_n), against a double reference. */
Test(vec, dot_random_vs_double)
{
    float a[1000], b[1000];
    FOR_EACH_ISA(isa) {
        for (size_t li = 0; li < NLENS; li++) {
            size_t n = lens[li];
            for (size_t i = 0; i < n; i++) {
                a[i] = rng_unit();
                b[i] = rng_unit();
            }
            double ref = 0.0, mag = 0.0;
            for (size_t i = 0; i < n; i++) {
                ref += (double)a[i] * b[i];
                mag += fabs((double)a[i] * b[i]);
            }
            double tol = (double)(n + 2) * FLT_EPSILON * mag + 1e-30;
            for (size_t oa = 0; oa < NOFFS; oa++) {
                char *ba, *bb;
                /* a and b misaligned differently, to catch a kernel that
                 * assumes they share an alignment. */
                float *pa = place(a, n, offsets[oa], &ba);
                float *pb = place(b, n, offsets[(oa + 1) % NOFFS], &bb);
                float got = vec_dot(pa, pb, n);
                cr_assert(fabs((double)got - ref) <= tol,
                          "%s n=%zu off=%zu: %.9g vs %.9g", vec_isa_name(isa), n,
                          offsets[oa], (double)got, ref);
                free(ba);
                free(bb);
            }
        }
    }
}

/* Small integers: every product and partial sum is exact in float, so any
 * summation order gives exactly the reference; a lost or doubled element
 * (tail, unrolled block) cannot hide in rounding. */
Test(vec, dot_integers_exact)
{
    float a[1000], b[1000];
    FOR_EACH_ISA(isa) {
        for (size_t li = 0; li < NLENS; li++) {
            size_t n = lens[li];
            for (size_t i = 0; i < n; i++) {
                a[i] = (float)((int)(rng_next() % 15) - 7);
                b[i] = (float)((int)(rng_next() % 15) - 7);
            }
            long ref = 0;
            for (size_t i = 0; i < n; i++)
                ref += (long)a[i] * (long)b[i];
            for (size_t oa = 0; oa < NOFFS; oa++) {
                char *ba, *bb;
                float *pa = place(a, n, offsets[oa], &ba);
                float *pb = place(b, n, offsets[oa], &bb);
                float got = vec_dot(pa, pb, n);
                cr_assert_eq((long)got, ref, "%s n=%zu off=%zu",
                             vec_isa_name(isa), n, offsets[oa]);
                cr_assert_eq(got, (float)ref);
                free(ba);
                free(bb);
            }
        }
    }
}

/* One element set at each position: the dot picks out exactly that one,
 * so every lane of every block and of the tail is read once. */
Test(vec, dot_each_position)
{
    enum { N = 100 };
    float a[N], b[N];
    for (size_t i = 0; i < N; i++)
        b[i] = (float)(i + 1);
    FOR_EACH_ISA(isa) {
        for (size_t n = 1; n <= N; n += (n < 40 ? 1 : 13)) {
            for (size_t pos = 0; pos < n; pos++) {
                memset(a, 0, sizeof a);
                a[pos] = 2.0f;
                char *ba, *bb;
                float *pa = place(a, n, 2, &ba);
                float *pb = place(b, n, 0, &bb);
                cr_assert_eq(vec_dot(pa, pb, n), 2.0f * (float)(pos + 1),
                             "%s n=%zu pos=%zu", vec_isa_name(isa), n, pos);
                free(ba);
                free(bb);
            }
        }
    }
}

Test(vec, dot_symmetric_and_empty)
{
    float a[33], b[33];
    for (size_t i = 0; i < 33; i++) {
        a[i] = rng_unit();
        b[i] = rng_unit();
    }
    FOR_EACH_ISA(isa) {
        cr_assert_eq(vec_dot(a, b, 0), 0.0f);
        cr_assert_eq(vec_dot(NULL, NULL, 0), 0.0f, "%s", vec_isa_name(isa));
        float ab = vec_dot(a, b, 33), ba = vec_dot(b, a, 33);
        cr_assert_eq(ab, ba);
    }
}

Test(vec, normalize_unit_length)
{
    float v[1000], w[1000];
    FOR_EACH_ISA(isa) {
        for (size_t li = 0; li < NLENS; li++) {
            size_t n = lens[li];
            if (n == 0)
                continue;
            for (size_t i = 0; i < n; i++)
                v[i] = rng_unit() * 10.0f;
            double ss = 0.0;
            for (size_t i = 0; i < n; i++)
                ss += (double)v[i] * v[i];
            double norm = sqrt(ss);
            for (size_t o = 0; o < NOFFS; o++) {
                char *base;
                float *p = place(v, n, offsets[o], &base);
                float got = vec_normalize(p, n);
                fetch(w, base, offsets[o], n);
                cr_assert(fabs((double)got - norm) <= 1e-6 * norm,
                          "%s n=%zu off=%zu: norm %.9g vs %.9g",
                          vec_isa_name(isa), n, offsets[o], (double)got, norm);
                double out = 0.0;
                for (size_t i = 0; i < n; i++) {
                    out += (double)w[i] * w[i];
                    /* Direction kept: each component is v_i / |v|. */
                    cr_assert(fabs((double)w[i] - v[i] / norm) <= 1e-6,
                              "%s n=%zu i=%zu", vec_isa_name(isa), n, i);
                }
                cr_assert(fabs(sqrt(out) - 1.0) <= 1e-6, "%s n=%zu |v|=%.9g",
                          vec_isa_name(isa), n, sqrt(out));
                free(base);
            }
        }
    }
}

Test(vec, normalize_zero_and_tiny)
{
    float v[100];
    FOR_EACH_ISA(isa) {
        for (size_t li = 0; li < NLENS; li++) {
            size_t n = lens[li] < 100 ? lens[li] : 100;
            memset(v, 0, sizeof v);
            if (n > 1)
                v[n / 2] = -0.0f;
            cr_assert_eq(vec_normalize(v, n), 0.0f, "%s n=%zu", vec_isa_name(isa), n);
            for (size_t i = 0; i < n; i++)
                cr_assert(v[i] == 0.0f && !signbit(v[i]), "%s n=%zu i=%zu",
                          vec_isa_name(isa), n, i);
            /* Norm below 1e-30: no direction, made exactly zero. */
            for (size_t i = 0; i < n; i++)
                v[i] = (i % 2) ? 1e-33f : -1e-33f;
            cr_assert_eq(vec_normalize(v, n), 0.0f);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(v[i], 0.0f);
        }
    }
}

/* Components whose squares underflow (1e-25) or overflow (3e37) in float
 * still give a unit vector: the sum of squares is taken in double. */
Test(vec, normalize_extreme_magnitudes)
{
    static const float scales[] = {1e-25f, 3e37f, 1e38f};
    float v[784];
    FOR_EACH_ISA(isa) {
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
            size_t n = s == 1 ? 100 : 784;
            for (size_t i = 0; i < n; i++)
                v[i] = scales[s] * (0.5f + 0.5f * (rng_unit() + 1.0f) / 2.0f);
            float got = vec_normalize(v, n);
            cr_assert(got > 0.0f && !isnan(got), "%s scale %g", vec_isa_name(isa),
                      (double)scales[s]);
            double out = 0.0;
            for (size_t i = 0; i < n; i++) {
                cr_assert(isfinite(v[i]));
                out += (double)v[i] * v[i];
            }
            cr_assert(fabs(sqrt(out) - 1.0) <= 1e-6, "%s scale %g: |v|=%.9g",
                      vec_isa_name(isa), (double)scales[s], sqrt(out));
        }
    }
}

Test(vec, normalize_nan_inf)
{
    float v[100];
    const float bad[] = {NAN, INFINITY, -INFINITY};
    FOR_EACH_ISA(isa) {
        for (size_t li = 0; li < NLENS; li++) {
            size_t n = lens[li] < 100 ? lens[li] : 100;
            if (n == 0)
                continue;
            /* The bad value first, in the middle and in the tail. */
            size_t where[] = {0, n / 2, n - 1};
            for (size_t bi = 0; bi < 3; bi++) {
                for (size_t wi = 0; wi < 3; wi++) {
                    for (size_t i = 0; i < n; i++)
                        v[i] = rng_unit();
                    v[where[wi]] = bad[bi];
                    char *base;
                    float *p = place(v, n, 2, &base);
                    cr_assert(isnan(vec_normalize(p, n)), "%s n=%zu at %zu bad %g",
                              vec_isa_name(isa), n, where[wi], (double)bad[bi]);
                    free(base);
                }
            }
        }
    }
}

/* The same input gives the same answer whichever ISA computes it (up to
 * rounding), so a database built on one machine queries alike on another. */
Test(vec, isas_agree)
{
    float a[784], b[784];
    for (size_t i = 0; i < 784; i++) {
        a[i] = rng_unit();
        b[i] = rng_unit();
    }
    cr_assert_eq(vec_isa_force(VEC_SCALAR), 0);
    float ref = vec_dot(a, b, 784);
    FOR_EACH_ISA(isa) {
        float got = vec_dot(a, b, 784);
        cr_assert(fabsf(got - ref) <= 1e-4f, "%s: %.9g vs %.9g",
                  vec_isa_name(isa), (double)got, (double)ref);
    }
}
