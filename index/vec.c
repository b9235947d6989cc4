/*
 * vec.c - dot product and L2 normalisation kernels (index room).
 *
 * Every kernel exists three times: AVX-512F, AVX2+FMA and portable C. The
 * project is compiled without -march flags, so the vector variants are
 * compiled through GCC/Clang function attributes (target("...")) and only
 * ever called after vec_init() has asked the CPU (__builtin_cpu_supports,
 * which also checks that the OS saves the wide registers) which it has. One
 * binary therefore runs on any x86-64, and on other architectures only the
 * portable variant is built.
 *
 * No pointer is assumed aligned: vectors come straight out of LMDB values,
 * which are only 2-byte aligned. The vector variants use unaligned loads and
 * masked loads/stores for the tail (masked-off lanes are never touched, so a
 * vector ending at a page boundary is safe); the portable variant reads and
 * writes through memcpy, which compiles to a plain load but is not undefined
 * behaviour on a misaligned address.
 *
 * Dot products accumulate in float with several independent accumulators
 * (to hide FMA latency and to shorten the summation chains). Normalisation
 * accumulates the sum of squares in double: it costs little (normalising
 * is not a hot loop), it cannot overflow or underflow for any finite float
 * input (so a vector of 1e30s or of 1e-25s is normalised correctly rather
 * than reported as Inf or zero), and so a non-finite sum means exactly that
 * the input held a NaN or an Inf.
 */
#include "vec.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define VEC_X86 1
#include <immintrin.h>
#else
#define VEC_X86 0
#endif

typedef float (*dot_fn)(const float *a, const float *b, size_t n);
typedef double (*sumsq_fn)(const float *v, size_t n);
typedef void (*scale_fn)(float *v, size_t n, float s);

/* ---- portable C ---------------------------------------------------------- */

static float dot_scalar(const float *a, const float *b, size_t n)
{
    const unsigned char *pa = (const unsigned char *)a;
    const unsigned char *pb = (const unsigned char *)b;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    size_t i = 0;

    for (; i + 4 <= n; i += 4) {
        float x[4], y[4];
        memcpy(x, pa + i * sizeof(float), sizeof x);
        memcpy(y, pb + i * sizeof(float), sizeof y);
        s0 += x[0] * y[0];
        s1 += x[1] * y[1];
        s2 += x[2] * y[2];
        s3 += x[3] * y[3];
    }
    for (; i < n; i++) {
        float x, y;
        memcpy(&x, pa + i * sizeof(float), sizeof x);
        memcpy(&y, pb + i * sizeof(float), sizeof y);
        s0 += x * y;
    }
    return (s0 + s1) + (s2 + s3);
}

static double sumsq_scalar(const float *v, size_t n)
{
    const unsigned char *p = (const unsigned char *)v;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;

    for (; i + 4 <= n; i += 4) {
        float x[4];
        memcpy(x, p + i * sizeof(float), sizeof x);
        s0 += (double)x[0] * x[0];
        s1 += (double)x[1] * x[1];
        s2 += (double)x[2] * x[2];
        s3 += (double)x[3] * x[3];
    }
    for (; i < n; i++) {
        float x;
        memcpy(&x, p + i * sizeof(float), sizeof x);
        s0 += (double)x * x;
    }
    return (s0 + s1) + (s2 + s3);
}

static void scale_scalar(float *v, size_t n, float s)
{
    unsigned char *p = (unsigned char *)v;
    for (size_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, p + i * sizeof(float), sizeof x);
        x *= s;
        memcpy(p + i * sizeof(float), &x, sizeof x);
    }
}

/* ---- AVX2 + FMA ---------------------------------------------------------- */

#if VEC_X86

/* Lanes 0..rem-1 set (rem < 8): a mask for vmaskmov, which neither reads nor
 * faults on the lanes left out. */
__attribute__((target("avx2"))) static inline __m256i tail_mask8(size_t rem)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2"))) static inline float hsum256(__m256 s)
{
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(s),
                           _mm256_extractf128_ps(s, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;

    /* Four accumulators: FMA latency is 4 cycles at 2 per cycle, so one
     * chain would run at an eighth of the possible rate. */
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16),
                             _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24),
                             _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask8(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
                             _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

__attribute__((target("avx2,fma")))
static double sumsq_avx2(const float *v, size_t n)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m256d x0 = _mm256_cvtps_pd(_mm_loadu_ps(v + i));
        __m256d x1 = _mm256_cvtps_pd(_mm_loadu_ps(v + i + 4));
        s0 = _mm256_fmadd_pd(x0, x0, s0);
        s1 = _mm256_fmadd_pd(x1, x1, s1);
    }
    if (i < n) {
        __m256i m = tail_mask8(n - i);
        __m256 t = _mm256_maskload_ps(v + i, m);
        __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(t));
        __m256d x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1));
        s0 = _mm256_fmadd_pd(x0, x0, s0);
        s1 = _mm256_fmadd_pd(x1, x1, s1);
    }
    s0 = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s0),
                           _mm256_extractf128_pd(s0, 1));
    h = _mm_add_sd(h, _mm_unpackhi_pd(h, h));
    return _mm_cvtsd_f64(h);
}

__attribute__((target("avx2,fma")))
static void scale_avx2(float *v, size_t n, float s)
{
    __m256 k = _mm256_set1_ps(s);
    size_t i = 0;

    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(v + i, _mm256_mul_ps(_mm256_loadu_ps(v + i), k));
    if (i < n) {
        __m256i m = tail_mask8(n - i);
        _mm256_maskstore_ps(v + i, m, _mm256_mul_ps(_mm256_maskload_ps(v + i, m), k));
    }
}

/* ---- AVX-512F ------------------------------------------------------------ */

__attribute__((target("avx512f")))
static float dot_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;

    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                             _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32),
                             _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48),
                             _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                             _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                              _mm512_add_ps(s2, s3)));
}

/* Widen 16 floats to two vectors of 8 doubles (AVX-512F only: no DQ). */
__attribute__((target("avx512f")))
static inline void sq_acc512(__m512 x, __m512d *s0, __m512d *s1)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    __m512d hi = _mm512_cvtps_pd(
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    *s0 = _mm512_fmadd_pd(lo, lo, *s0);
    *s1 = _mm512_fmadd_pd(hi, hi, *s1);
}

__attribute__((target("avx512f")))
static double sumsq_avx512(const float *v, size_t n)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    size_t i = 0;

    for (; i + 16 <= n; i += 16)
        sq_acc512(_mm512_loadu_ps(v + i), &s0, &s1);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        sq_acc512(_mm512_maskz_loadu_ps(m, v + i), &s0, &s1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

__attribute__((target("avx512f")))
static void scale_avx512(float *v, size_t n, float s)
{
    __m512 k = _mm512_set1_ps(s);
    size_t i = 0;

    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(v + i, _mm512_mul_ps(_mm512_loadu_ps(v + i), k));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(v + i, m,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + i), k));
    }
}

#endif /* VEC_X86 */

/* ---- dispatch ------------------------------------------------------------ */

static const struct kernels {
    dot_fn dot;
    sumsq_fn sumsq;
    scale_fn scale;
} table[3] = {
    [VEC_SCALAR] = {dot_scalar, sumsq_scalar, scale_scalar},
#if VEC_X86
    [VEC_AVX2] = {dot_avx2, sumsq_avx2, scale_avx2},
    [VEC_AVX512] = {dot_avx512, sumsq_avx512, scale_avx512},
#endif
};

static pthread_once_t vec_once = PTHREAD_ONCE_INIT;
static vec_isa isa_best = VEC_SCALAR;
/* Written by vec_init (under pthread_once) and vec_isa_force; read by every
 * kernel call. vec_isa_force is meant for tests and benchmarks that switch
 * ISA while no other thread is computing. */
static vec_isa isa_active = VEC_SCALAR;

static void vec_detect(void)
{
    vec_isa best = VEC_SCALAR;
#if VEC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best = VEC_AVX2;
    if (__builtin_cpu_supports("avx512f"))
        best = VEC_AVX512;
#endif
    /* PIXVEC_MAX_ISA=avx2|scalar caps the choice, so the whole test suite can
     * run the code a machine without AVX-512 (or AVX2) would run. */
    {
        const char *cap = getenv("PIXVEC_MAX_ISA");
        if (cap && strcmp(cap, "scalar") == 0)
            best = VEC_SCALAR;
        else if (cap && strcmp(cap, "avx2") == 0 && best > VEC_AVX2)
            best = VEC_AVX2;
    }
    isa_best = best;
    isa_active = best;
}

void vec_init(void)
{
    pthread_once(&vec_once, vec_detect);
}

vec_isa vec_isa_active(void)
{
    vec_init();
    return isa_active;
}

int vec_isa_force(vec_isa isa)
{
    vec_init();
    if ((int)isa < (int)VEC_SCALAR || (int)isa > (int)isa_best)
        return -1;
    isa_active = isa;
    return 0;
}

const char *vec_isa_name(vec_isa isa)
{
    switch (isa) {
    case VEC_SCALAR: return "scalar";
    case VEC_AVX2: return "avx2";
    case VEC_AVX512: return "avx512";
    }
    return "unknown";
}

float vec_dot(const float *a, const float *b, size_t n)
{
    vec_init();
    return table[isa_active].dot(a, b, n);
}

float vec_normalize(float *v, size_t n)
{
    vec_init();
    const struct kernels *k = &table[isa_active];
    double ss = k->sumsq(v, n);

    /* In double the sum of squares of finite floats cannot overflow, so a
     * non-finite sum is a NaN or Inf in the input. v is left untouched. */
    if (!isfinite(ss))
        return NAN;
    double norm = sqrt(ss);
    if (norm < 1e-30) {
        /* Below this the direction is noise; callers treat 0 as "no
         * direction" (a flat image), so make it exactly zero. */
        unsigned char *p = (unsigned char *)v;
        memset(p, 0, n * sizeof(float));
        return 0.0f;
    }
    double inv = 1.0 / norm;
    if (inv >= FLT_MIN) {
        k->scale(v, n, (float)inv);
    } else {
        /* Norm above 1/FLT_MIN (~8.5e37): 1/norm would be a float
         * subnormal and lose precision, so scale in double. Rare enough
         * for the portable loop. */
        unsigned char *p = (unsigned char *)v;
        for (size_t i = 0; i < n; i++) {
            float x;
            memcpy(&x, p + i * sizeof(float), sizeof x);
            x = (float)((double)x * inv);
            memcpy(p + i * sizeof(float), &x, sizeof x);
        }
    }
    /* A finite norm above FLT_MAX (possible for huge components) comes
     * back as +Inf; the vector itself is still scaled correctly. */
    return (float)norm;
}
