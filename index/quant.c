/*
 * quant.c - int8 and float16 compact vectors and their distance kernels
 * (index room; the contract and the parameter blob are in quant.h).
 *
 * int8 follows scalar quantisation with a per-dimension affine map (Jegou et
 * al.'s asymmetric distance computation, "Product quantization for nearest
 * neighbor search", TPAMI 2011, section 3.1, with one-dimensional
 * sub-quantisers; FAISS ScalarQuantizer QT_8bit): codes are unsigned bytes
 * because vpdpbusd multiplies unsigned by signed bytes, and an offset per
 * dimension already moves each range to start at 0, so unsigned codes lose
 * nothing.
 *
 * The range of each dimension is its min and max in the training sample.
 * Trimmed quantiles (quant_i8_train_trim) were measured against it on
 * Fashion-MNIST, 20,000 train images as base and 200 test images as
 * queries, recall@10 of a brute-force scan over the codes against exact
 * float32 (tests/test_quant.c prints these):
 *
 *                          min/max  trim 1e-4  trim 1e-3  trim 1e-2
 *   raw pixels, ADC         0.981    0.985      0.980      0.928
 *   centred pixels, ADC     0.988    0.988      0.985      0.907
 *   max |error| of a dot    0.0016   0.055      0.13       0.24
 *
 * 1e-4 and min/max are a tie within the noise of 2,000 neighbours, and
 * trimming makes the worst-case error thirty times larger (the clipped
 * bright pixels), so min/max is the default; the clip count of
 * quant_i8_encode tells a caller when new data leaves the trained range.
 * Rescoring the integer path's top 20 (or 40) in float32 gives recall 1.0
 * on both; float16 gives 0.998 (near-ties), the symmetric code-code dot
 * 0.98.
 *
 * The integer path quantises the prepared query w = s * y symmetrically to
 * [-127, 127] with one step a = max|w| / 127, so its error over the exact
 * ADC is sum_d c_d (w_d - a q_d), each term at most a/2 * 255. Measured on
 * the same data: mean |int - ADC| 2.2e-4 (raw) and 6.0e-4 (centred), mean
 * |ADC - float32| 1.7e-4 and 2.4e-4, max |int - float32| 3.6e-3 and
 * 6.6e-3; recall is the same as the ADC's (0.979, 0.989).
 *
 * Kernels: AVX-512 VNNI vpdpbusd (64 byte products per instruction into
 * int32), AVX2 vpmaddubsw on the codes split into low seven bits and top
 * bit (vpmaddubsw sums pairs into int16 with saturation, and 2 * 255 * 127
 * > 32767; the split keeps every pair exact, see idot_avx2), and portable
 * C. All three give the same integer. The float kernels (ADC, f16,
 * symmetric) use four accumulators like vec.c and differ between ISAs only
 * in summation order. F16 conversion uses F16C / AVX-512F vcvtps2ph with
 * round to nearest even, and a portable conversion that gives the same
 * bits (tests/test_quant.c compares them on every half and a sweep of
 * floats). The f16 dot widens codes with vcvtph2ps and multiplies in
 * float32 against a float32 query; AVX-512 FP16 arithmetic is not used
 * (half-precision sums would lose the accuracy that makes f16 worth it).
 *
 * Dispatch follows vec.c: each kernel compiled per ISA with target
 * attributes, chosen at run time by __builtin_cpu_supports, and capped by
 * vec_isa_active() so vec_isa_force and PIXVEC_MAX_ISA reach these too.
 */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"

#if defined(__x86_64__) || defined(__i386__)
#define QUANT_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define QUANT_X86 0
#endif

/* Dimensions per int32 block of the integer dot (see quant.h). */
#define QUANT_IBLOCK 32768u

/* ---- float16 conversion, portable --------------------------------------- */

uint16_t quant_f16_from_f32(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;

    if (ax >= 0x7f800000u) {
        /* NaN keeps the top of its payload and is made quiet, as vcvtps2ph
         * does; Inf stays Inf. */
        if (ax > 0x7f800000u)
            return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
        return (uint16_t)(sign | 0x7c00u);
    }
    /* 65520 is halfway between 65504 (odd mantissa) and 65536: it and
     * everything above round to infinity. */
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) {
        /* Normal half: round the 13 dropped bits to nearest even; a carry
         * out of the mantissa correctly bumps the exponent. */
        uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    /* 2^-25 is halfway between 0 and the smallest subnormal: ties to 0. */
    if (ax <= 0x33000000u)
        return (uint16_t)sign;
    /* Subnormal half: value / 2^-24 rounded to nearest even. */
    uint32_t e = ax >> 23;
    uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14 .. 24 */
    uint32_t r = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u)))
        r++;
    return (uint16_t)(sign | r);
}

float quant_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t x;
    float f;

    if (e == 0x1fu) {
        /* vcvtph2ps makes a signalling NaN quiet */
        x = sign | 0x7f800000u | (m ? 0x400000u : 0u) | (m << 13);
    } else if (e) {
        x = sign | ((e + 112u) << 23) | (m << 13);
    } else {
        f = (float)m * 0x1p-24f; /* subnormal or zero: exact */
        memcpy(&x, &f, sizeof x);
        x |= sign;
    }
    memcpy(&f, &x, sizeof f);
    return f;
}

static uint16_t load_u16(const uint16_t *p, size_t i)
{
    uint16_t v;
    memcpy(&v, (const unsigned char *)p + 2 * i, sizeof v);
    return v;
}

static float load_f32(const float *p, size_t i)
{
    float v;
    memcpy(&v, (const unsigned char *)p + 4 * i, sizeof v);
    return v;
}

/* ---- portable kernels ----------------------------------------------------- */

static void f16enc_scalar(const float *v, size_t n, uint16_t *h)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t x = quant_f16_from_f32(load_f32(v, i));
        memcpy((unsigned char *)h + 2 * i, &x, sizeof x);
    }
}

static float f16dot_scalar(const float *y, const uint16_t *h, size_t n)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s[k] += load_f32(y, i + k) * quant_f16_to_f32(load_u16(h, i + k));
    for (; i < n; i++)
        s[0] += load_f32(y, i) * quant_f16_to_f32(load_u16(h, i));
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* w is the prepared query (our own allocation), c any byte address. */
static float adc_scalar(const float *w, const uint8_t *c, size_t n)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s[k] += w[i + k] * (float)c[i + k];
    for (; i < n; i++)
        s[0] += w[i] * (float)c[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static int32_t idot_scalar(const int8_t *q, const uint8_t *c, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int32_t)q[i] * (int32_t)c[i];
    return s;
}

static float sym_scalar(const float *o, const float *sc, const uint8_t *a, const uint8_t *b,
                        size_t n)
{
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s[k] += (o[i + k] + sc[i + k] * (float)a[i + k]) *
                    (o[i + k] + sc[i + k] * (float)b[i + k]);
    for (; i < n; i++)
        s[0] += (o[i] + sc[i] * (float)a[i]) * (o[i] + sc[i] * (float)b[i]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* ---- AVX2 and AVX-512 ------------------------------------------------------- */

#if QUANT_X86

/* The float kernels are the same loop at both widths, so each is written
 * once as a macro over a small set of vector operations, P##_zero ..
 * P##_hsum, that q256 (AVX2 + FMA, 8 lanes) and q512 (AVX-512F, 16 lanes)
 * supply. Every operation carries its ISA's target attribute and is inlined
 * into a kernel compiled for the same ISA. */
#define Q_ISA_256 "avx2,fma,f16c"
#define Q_ISA_512 "avx512f"

typedef __m256 q256_v;
__attribute__((target(Q_ISA_256))) static inline __m256 q256_zero(void)
{
    return _mm256_setzero_ps();
}
__attribute__((target(Q_ISA_256))) static inline __m256 q256_load(const float *p)
{
    return _mm256_loadu_ps(p);
}
/* rem < 8 lanes; vmaskmov neither reads nor faults on the lanes left out */
__attribute__((target(Q_ISA_256))) static inline __m256 q256_load_part(const float *p, size_t rem)
{
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}
__attribute__((target(Q_ISA_256))) static inline __m256 q256_fma(__m256 a, __m256 b, __m256 c)
{
    return _mm256_fmadd_ps(a, b, c);
}
__attribute__((target(Q_ISA_256))) static inline __m256 q256_add(__m256 a, __m256 b)
{
    return _mm256_add_ps(a, b);
}
__attribute__((target(Q_ISA_256))) static inline float q256_hsum(__m256 s)
{
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
/* 8 halves or 8 bytes from element i of x, as floats */
__attribute__((target(Q_ISA_256))) static inline __m256 q256_ld_f16(const uint16_t *x, size_t i)
{
    return _mm256_cvtph_ps(
        _mm_loadu_si128((const __m128i *)(const void *)((const unsigned char *)x + 2 * i)));
}
__attribute__((target(Q_ISA_256))) static inline __m256 q256_ld_u8(const uint8_t *x, size_t i)
{
    return _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(x + i))));
}
/* 8 floats to 8 halves at element i of h, round to nearest even */
__attribute__((target(Q_ISA_256))) static inline void q256_st_f16(uint16_t *h, size_t i, __m256 v)
{
    _mm_storeu_si128((__m128i *)(void *)((unsigned char *)h + 2 * i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

typedef __m512 q512_v;
__attribute__((target(Q_ISA_512))) static inline __m512 q512_zero(void)
{
    return _mm512_setzero_ps();
}
__attribute__((target(Q_ISA_512))) static inline __m512 q512_load(const float *p)
{
    return _mm512_loadu_ps(p);
}
__attribute__((target(Q_ISA_512))) static inline __m512 q512_load_part(const float *p, size_t rem)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << rem) - 1u), p);
}
__attribute__((target(Q_ISA_512))) static inline __m512 q512_fma(__m512 a, __m512 b, __m512 c)
{
    return _mm512_fmadd_ps(a, b, c);
}
__attribute__((target(Q_ISA_512))) static inline __m512 q512_add(__m512 a, __m512 b)
{
    return _mm512_add_ps(a, b);
}
__attribute__((target(Q_ISA_512))) static inline float q512_hsum(__m512 s)
{
    return _mm512_reduce_add_ps(s);
}
__attribute__((target(Q_ISA_512))) static inline __m512 q512_ld_f16(const uint16_t *x, size_t i)
{
    return _mm512_cvtph_ps(
        _mm256_loadu_si256((const __m256i *)(const void *)((const unsigned char *)x + 2 * i)));
}
__attribute__((target(Q_ISA_512))) static inline __m512 q512_ld_u8(const uint8_t *x, size_t i)
{
    return _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(x + i))));
}
__attribute__((target(Q_ISA_512))) static inline void q512_st_f16(uint16_t *h, size_t i, __m512 v)
{
    _mm256_storeu_si256((__m256i *)(void *)((unsigned char *)h + 2 * i),
                        _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

/* float y . n elements of x (type T, loaded as floats by P##_ld_##LD), with
 * four accumulators as in vec.c. The tail of x goes through a zeroed copy
 * and y's through a masked load: nothing past either end is read. */
#define Q_DOT_KERNEL(name, P, W, T, LD)                                              \
    __attribute__((target(Q_ISA_##W))) static float name(const float *y, const T *x,  \
                                                         size_t n)                    \
    {                                                                                 \
        P##_v s0 = P##_zero(), s1 = P##_zero(), s2 = P##_zero(), s3 = P##_zero();     \
        size_t i = 0;                                                                 \
        for (; i + 4 * (W / 32) <= n; i += 4 * (W / 32)) {                            \
            s0 = P##_fma(P##_load(y + i), P##_ld_##LD(x, i), s0);                     \
            s1 = P##_fma(P##_load(y + i + W / 32), P##_ld_##LD(x, i + W / 32), s1);   \
            s2 = P##_fma(P##_load(y + i + W / 16), P##_ld_##LD(x, i + W / 16), s2);   \
            s3 = P##_fma(P##_load(y + i + 3 * (W / 32)),                              \
                         P##_ld_##LD(x, i + 3 * (W / 32)), s3);                       \
        }                                                                             \
        for (; i + W / 32 <= n; i += W / 32)                                          \
            s0 = P##_fma(P##_load(y + i), P##_ld_##LD(x, i), s0);                     \
        if (i < n) {                                                                  \
            T t[W / 32] = {0};                                                        \
            memcpy(t, (const unsigned char *)x + sizeof(T) * i, sizeof(T) * (n - i)); \
            s1 = P##_fma(P##_load_part(y + i, n - i), P##_ld_##LD(t, 0), s1);         \
        }                                                                             \
        return P##_hsum(P##_add(P##_add(s0, s1), P##_add(s2, s3)));                   \
    }

/* sum_d (o_d + s_d a_d)(o_d + s_d b_d): both codes decoded in registers */
#define Q_SYM_KERNEL(name, P, W)                                                      \
    __attribute__((target(Q_ISA_##W))) static float name(                             \
        const float *o, const float *sc, const uint8_t *a, const uint8_t *b, size_t n) \
    {                                                                                 \
        P##_v s0 = P##_zero(), s1 = P##_zero();                                       \
        size_t i = 0;                                                                 \
        for (; i + 2 * (W / 32) <= n; i += 2 * (W / 32)) {                            \
            for (size_t k = 0; k < 2 * (W / 32); k += W / 32) {                       \
                P##_v ov = P##_load(o + i + k), sv = P##_load(sc + i + k);            \
                P##_v x = P##_fma(sv, P##_ld_u8(a, i + k), ov);                       \
                P##_v z = P##_fma(sv, P##_ld_u8(b, i + k), ov);                       \
                if (k)                                                                \
                    s1 = P##_fma(x, z, s1);                                           \
                else                                                                  \
                    s0 = P##_fma(x, z, s0);                                           \
            }                                                                         \
        }                                                                             \
        if (i + W / 32 <= n) {                                                        \
            P##_v ov = P##_load(o + i), sv = P##_load(sc + i);                        \
            s0 = P##_fma(P##_fma(sv, P##_ld_u8(a, i), ov), P##_fma(sv, P##_ld_u8(b, i), ov), \
                         s0);                                                         \
            i += W / 32;                                                              \
        }                                                                             \
        return P##_hsum(P##_add(s0, s1)) + sym_scalar(o + i, sc + i, a + i, b + i, n - i); \
    }

#define Q_F16ENC_KERNEL(name, P, W)                                                   \
    __attribute__((target(Q_ISA_##W))) static void name(const float *v, size_t n,     \
                                                        uint16_t *h)                  \
    {                                                                                 \
        size_t i = 0;                                                                 \
        for (; i + W / 32 <= n; i += W / 32)                                          \
            P##_st_f16(h, i, P##_load(v + i));                                        \
        f16enc_scalar(v + i, n - i, (uint16_t *)(void *)((unsigned char *)h + 2 * i)); \
    }

Q_DOT_KERNEL(f16dot_avx2, q256, 256, uint16_t, f16)
Q_DOT_KERNEL(adc_avx2, q256, 256, uint8_t, u8)
Q_SYM_KERNEL(sym_avx2, q256, 256)
Q_F16ENC_KERNEL(f16enc_avx2, q256, 256)
Q_DOT_KERNEL(f16dot_avx512, q512, 512, uint16_t, f16)
Q_DOT_KERNEL(adc_avx512, q512, 512, uint8_t, u8)
Q_SYM_KERNEL(sym_avx512, q512, 512)
Q_F16ENC_KERNEL(f16enc_avx512, q512, 512)

/* The integer kernels differ in kind between the ISAs, so they are written
 * out. AVX2: vpmaddubsw multiplies unsigned by signed bytes but sums each
 * pair into int16 with saturation, and 2 * 255 * 127 > 32767. So each code
 * is split into its low seven bits and its top bit (c & 0x7f, c & 0x80):
 * pairs of those with |q| <= 128 stay within 2 * 128 * 127 = 32512, both
 * products are exact, and vpmaddwd by ones widens each to int32. */
__attribute__((target("avx2")))
static int32_t idot_avx2(const int8_t *q, const uint8_t *c, size_t n)
{
    const __m256i lo7 = _mm256_set1_epi8(0x7f), top = _mm256_set1_epi8((char)0x80);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    uint8_t ct[32], qt[32];
    while (i < n) {
        const uint8_t *cp = c + i;
        const int8_t *qp = q + i;
        if (n - i < 32) {
            /* the tail through zeroed copies: nothing past the end is read */
            memset(ct, 0, sizeof ct);
            memset(qt, 0, sizeof qt);
            memcpy(ct, cp, n - i);
            memcpy(qt, qp, n - i);
            cp = ct;
            qp = (const int8_t *)qt;
        }
        __m256i cv = _mm256_loadu_si256((const __m256i *)(const void *)cp);
        __m256i qv = _mm256_loadu_si256((const __m256i *)(const void *)qp);
        __m256i plo = _mm256_maddubs_epi16(_mm256_and_si256(cv, lo7), qv);
        __m256i phi = _mm256_maddubs_epi16(_mm256_and_si256(cv, top), qv);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(plo, ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(phi, ones));
        i += 32;
    }
    s0 = _mm256_add_epi32(s0, s1);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s0), _mm256_extracti128_si256(s0, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
}

/* AVX-512 VNNI: vpdpbusd multiplies the unsigned bytes of its second
 * operand by the signed bytes of its third, four products per int32 lane. */
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static int32_t idot_vnni(const int8_t *q, const uint8_t *c, size_t n)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(c + i), _mm512_loadu_si512(q + i));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(c + i + 64),
                                 _mm512_loadu_si512(q + i + 64));
    }
    for (; i + 64 <= n; i += 64)
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(c + i), _mm512_loadu_si512(q + i));
    if (i < n) {
        /* masked byte loads never touch the lanes left out */
        __mmask64 m = (__mmask64)((~0ull) >> (64 - (n - i)));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_maskz_loadu_epi8(m, c + i),
                                 _mm512_maskz_loadu_epi8(m, q + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

#endif /* QUANT_X86 */

/* ---- dispatch ------------------------------------------------------------------ */

typedef struct {
    void (*f16enc)(const float *, size_t, uint16_t *);
    float (*f16dot)(const float *, const uint16_t *, size_t);
    float (*adc)(const float *, const uint8_t *, size_t);
    float (*sym)(const float *, const float *, const uint8_t *, const uint8_t *, size_t);
} fkernels;

static const fkernels ftab[3] = {
    [VEC_SCALAR] = {f16enc_scalar, f16dot_scalar, adc_scalar, sym_scalar},
#if QUANT_X86
    [VEC_AVX2] = {f16enc_avx2, f16dot_avx2, adc_avx2, sym_avx2},
    [VEC_AVX512] = {f16enc_avx512, f16dot_avx512, adc_avx512, sym_avx512},
#endif
};

typedef int32_t (*idot_fn)(const int8_t *, const uint8_t *, size_t);
static const idot_fn itab[3] = {
    [VEC_SCALAR] = idot_scalar,
#if QUANT_X86
    [VEC_AVX2] = idot_avx2,
    [VEC_AVX512] = idot_vnni,
#endif
};

static pthread_once_t quant_once = PTHREAD_ONCE_INIT;
static vec_isa cap_f = VEC_SCALAR, cap_i = VEC_SCALAR;

static void quant_detect(void)
{
#if QUANT_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        cap_i = VEC_AVX2;
        /* Clang's __builtin_cpu_supports has no "f16c": CPUID leaf 1, ECX
         * bit 29 (its registers are saved with AVX's, checked above). */
        unsigned a, b, c, d;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C))
            cap_f = VEC_AVX2;
    }
    /* vec.c's AVX-512 level means AVX-512F; the integer path also needs BW
     * (masked byte loads) and VNNI, and falls back to its AVX2 form. */
    if (__builtin_cpu_supports("avx512f") && cap_f == VEC_AVX2)
        cap_f = VEC_AVX512;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        cap_i = VEC_AVX512;
#endif
}

static vec_isa level(vec_isa cap)
{
    vec_isa v = vec_isa_active();
    return v < cap ? v : cap;
}

vec_isa quant_isa_f(void)
{
    pthread_once(&quant_once, quant_detect);
    return level(cap_f);
}

vec_isa quant_isa_i(void)
{
    pthread_once(&quant_once, quant_detect);
    return level(cap_i);
}

static const fkernels *fk(void)
{
    return &ftab[quant_isa_f()];
}

/* ---- int8 codec ---------------------------------------------------------------- */

void quant_i8_free(quant_i8 *q)
{
    if (!q)
        return;
    free(q->offset);
    free(q->scale);
    free(q->inv);
    memset(q, 0, sizeof *q);
}

static int i8_alloc(quant_i8 *q, uint32_t dim)
{
    memset(q, 0, sizeof *q);
    q->offset = pv_alloc_array(dim, sizeof(float));
    q->scale = pv_alloc_array(dim, sizeof(float));
    q->inv = pv_alloc_array(dim, sizeof(float));
    if (!q->offset || !q->scale || !q->inv) {
        quant_i8_free(q);
        return PV_ENOMEM;
    }
    q->dim = dim;
    return 0;
}

/* k-th smallest of v[0..n-1] (reorders v): Wirth's selection (Algorithms +
 * Data Structures = Programs, 2.3.4), expected linear time. */
static float select_kth(float *v, size_t n, size_t k)
{
    ptrdiff_t l = 0, m = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (l < m) {
        float x = v[kk];
        ptrdiff_t i = l, j = m;
        do {
            while (v[i] < x)
                i++;
            while (x < v[j])
                j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            l = i;
        if (kk < i)
            m = j;
    }
    return v[kk];
}

/* From the per-dimension ranges [lo, hi] (in q->offset and q->scale on
 * entry) to offsets and scales. A dimension whose range is (nearly) empty
 * gets a range of 2^-20 times the largest magnitude in the sample: it codes
 * its one value exactly as 0 and cannot make 1/s overflow. */
static int i8_finish(quant_i8 *q)
{
    float big = 0.0f;
    for (uint32_t d = 0; d < q->dim; d++) {
        big = fmaxf(big, q->scale[d] - q->offset[d]);
        big = fmaxf(big, fmaxf(fabsf(q->offset[d]), fabsf(q->scale[d])));
    }
    float floor_range = big > 0.0f ? big * 0x1p-20f : 0x1p-20f;
    for (uint32_t d = 0; d < q->dim; d++) {
        float range = q->scale[d] - q->offset[d];
        if (!(range >= floor_range))
            range = floor_range;
        q->scale[d] = range / 255.0f;
        q->inv[d] = 1.0f / q->scale[d];
        if (!isfinite(q->scale[d]) || !isfinite(q->inv[d]) || q->scale[d] < FLT_MIN ||
            !isfinite(q->offset[d] + 255.0f * q->scale[d]))
            return PV_ENUMERIC;
    }
    return 0;
}

int quant_i8_train_trim(const float *x, size_t n, uint32_t dim, double trim, quant_i8 *q)
{
    int rc = 0;
    float *col = NULL;

    if (!q)
        return PV_EINVAL;
    memset(q, 0, sizeof *q);
    if (!x || n == 0 || dim == 0 || dim > QUANT_MAX_DIM || !(trim >= 0.0 && trim < 0.25))
        return PV_EINVAL;
    if ((rc = i8_alloc(q, dim)) != 0)
        return rc;
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(x[i])) {
            rc = PV_ENUMERIC;
            goto done;
        }
    if (trim == 0.0) {
        /* offset holds the min, scale the max until i8_finish */
        memcpy(q->offset, x, dim * sizeof(float));
        memcpy(q->scale, x, dim * sizeof(float));
        for (size_t i = 1; i < n; i++)
            for (uint32_t d = 0; d < dim; d++) {
                float v = x[i * dim + d];
                q->offset[d] = fminf(q->offset[d], v);
                q->scale[d] = fmaxf(q->scale[d], v);
            }
    } else {
        size_t klo = (size_t)floor(trim * (double)(n - 1));
        size_t khi = (size_t)ceil((1.0 - trim) * (double)(n - 1));
        col = pv_alloc_array(n, sizeof(float));
        if (!col) {
            rc = PV_ENOMEM;
            goto done;
        }
        for (uint32_t d = 0; d < dim; d++) {
            for (size_t i = 0; i < n; i++)
                col[i] = x[i * dim + d];
            q->offset[d] = select_kth(col, n, klo);
            q->scale[d] = select_kth(col, n, khi);
        }
    }
    rc = i8_finish(q);
done:
    free(col);
    if (rc)
        quant_i8_free(q);
    return rc;
}

int quant_i8_train(const float *x, size_t n, uint32_t dim, quant_i8 *q)
{
    return quant_i8_train_trim(x, n, dim, 0.0, q);
}

int quant_i8_encode(const quant_i8 *q, const float *v, uint8_t *code)
{
    int clipped = 0, nan = 0;
    for (uint32_t d = 0; d < q->dim; d++) {
        float x = load_f32(v, d);
        float t = (x - q->offset[d]) * q->inv[d];
        uint8_t c;
        if (isnan(t)) {
            c = 0;
            nan = 1;
        } else if (t < -0.5f) {
            c = 0;
            clipped++;
        } else if (t >= 255.5f) {
            c = 255;
            clipped++;
        } else {
            /* t + 0.5 is in [0, 256): truncation is floor, i.e. round half
             * up; t just under 255.5 can still round to 256 in float. */
            int r = (int)(t + 0.5f);
            c = (uint8_t)(r > 255 ? 255 : r);
        }
        code[d] = c;
    }
    return nan ? PV_ENUMERIC : clipped;
}

void quant_i8_decode(const quant_i8 *q, const uint8_t *code, float *v)
{
    for (uint32_t d = 0; d < q->dim; d++) {
        float x = q->offset[d] + q->scale[d] * (float)code[d];
        memcpy((unsigned char *)v + 4 * (size_t)d, &x, sizeof x);
    }
}

/* ---- parameter blob ---------------------------------------------------------- */

size_t quant_i8_params_size(uint32_t dim)
{
    return 16u + 8u * (size_t)dim;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_f32(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    put_u32(p, v);
}

static float get_f32(const unsigned char *p)
{
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

void quant_i8_save(const quant_i8 *q, void *buf)
{
    unsigned char *p = buf;
    memcpy(p, QUANT_I8_MAGIC, 4);
    put_u32(p + 4, QUANT_I8_VERSION);
    put_u32(p + 8, q->dim);
    put_u32(p + 12, 0);
    for (uint32_t d = 0; d < q->dim; d++) {
        put_f32(p + 16 + 4 * (size_t)d, q->offset[d]);
        put_f32(p + 16 + 4 * ((size_t)q->dim + d), q->scale[d]);
    }
}

int quant_i8_load(const void *buf, size_t len, uint32_t dim, quant_i8 *q)
{
    const unsigned char *p = buf;
    int rc = 0;

    if (!q)
        return PV_EINVAL;
    memset(q, 0, sizeof *q);
    if (!buf || len < 16)
        return PV_ECORRUPT;
    if (memcmp(p, QUANT_I8_MAGIC, 4) != 0)
        return PV_ENOTDB;
    uint32_t ver = get_u32(p + 4), d = get_u32(p + 8), flags = get_u32(p + 12);
    if (ver > QUANT_I8_VERSION)
        return PV_ENEWER;
    /* the length is checked against the stored dim only after the dim is
     * known to be in range, so 8 * dim cannot overflow */
    if (ver == 0 || flags != 0 || d == 0 || d > QUANT_MAX_DIM || d != dim ||
        len != quant_i8_params_size(d))
        return PV_ECORRUPT;
    if ((rc = i8_alloc(q, d)) != 0)
        return rc;
    for (uint32_t i = 0; i < d; i++) {
        float o = get_f32(p + 16 + 4 * (size_t)i);
        float s = get_f32(p + 16 + 4 * ((size_t)d + i));
        /* !(s >= FLT_MIN) also refuses NaN, zero, negative and subnormal */
        if (!isfinite(o) || !isfinite(s) || !(s >= FLT_MIN) || !isfinite(1.0f / s) ||
            !isfinite(o + 255.0f * s)) {
            rc = PV_ECORRUPT;
            goto done;
        }
        q->offset[i] = o;
        q->scale[i] = s;
        q->inv[i] = 1.0f / s;
    }
done:
    if (rc)
        quant_i8_free(q);
    return rc;
}

/* ---- queries and distances ------------------------------------------------------ */

void quant_i8_query_free(quant_i8_query *qq)
{
    if (!qq)
        return;
    free(qq->w);
    free(qq->qi);
    memset(qq, 0, sizeof *qq);
}

int quant_i8_query_prep(const quant_i8 *q, const float *y, quant_i8_query *qq)
{
    uint32_t dim = q->dim;
    if (qq->cap < dim) {
        float *w = pv_alloc_array(dim, sizeof(float));
        int8_t *qi = pv_alloc_array(dim, 1);
        if (!w || !qi) {
            free(w);
            free(qi);
            return PV_ENOMEM;
        }
        free(qq->w);
        free(qq->qi);
        qq->w = w;
        qq->qi = qi;
        qq->cap = dim;
    }
    qq->dim = dim;
    qq->idot = itab[quant_isa_i()];
    /* Plain comparisons and a magic-number rounding instead of fmaxf and
     * lrintf: both were library calls per dimension (6 % of an int8 graph
     * query); the loops now vectorise. A NaN in y makes the bias NaN. */
    double bias = 0.0;
    float amax = 0.0f;
    for (uint32_t d = 0; d < dim; d++) {
        float yd = load_f32(y, d);
        bias += (double)q->offset[d] * yd;
        qq->w[d] = q->scale[d] * yd;
        float a = fabsf(qq->w[d]);
        amax = a > amax ? a : amax;
    }
    if (!isfinite(bias) || !isfinite(amax))
        return PV_ENUMERIC;
    qq->bias = (float)bias;
    qq->step = amax / 127.0f;
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    /* x + 1.5 * 2^23 - 1.5 * 2^23 is x rounded to nearest even (what
     * lrintf does in the default mode) for |x| < 2^22; here |x| <= 127 (a
     * hair more after rounding of inv, clamped below). */
    const float magic = 12582912.0f;
    for (uint32_t d = 0; d < dim; d++) {
        float r = (qq->w[d] * inv + magic) - magic;
        r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
        qq->qi[d] = (int8_t)r;
    }
    return 0;
}

float quant_i8_dot_adc(const quant_i8_query *qq, const uint8_t *code)
{
    return qq->bias + fk()->adc(qq->w, code, qq->dim);
}

static int64_t idot_with(idot_fn f, const quant_i8_query *qq, const uint8_t *code)
{
    int64_t s = 0;
    for (size_t i = 0; i < qq->dim; i += QUANT_IBLOCK) {
        size_t len = qq->dim - i < QUANT_IBLOCK ? qq->dim - i : QUANT_IBLOCK;
        s += f(qq->qi + i, code + i, len);
    }
    return s;
}

int64_t quant_i8_idot(const quant_i8_query *qq, const uint8_t *code)
{
    return idot_with(itab[quant_isa_i()], qq, code);
}

float quant_i8_dot_int(const quant_i8_query *qq, const uint8_t *code)
{
    if (qq->dim <= QUANT_IBLOCK) /* one block: the prepared kernel, directly */
        return qq->bias + qq->step * (float)qq->idot(qq->qi, code, qq->dim);
    return qq->bias + qq->step * (float)idot_with(qq->idot, qq, code);
}

void quant_i8_dot_adc_batch(const quant_i8_query *qq, const uint8_t *codes, size_t n,
                            float *out)
{
    float (*adc)(const float *, const uint8_t *, size_t) = fk()->adc;
    for (size_t i = 0; i < n; i++)
        out[i] = qq->bias + adc(qq->w, codes + i * qq->dim, qq->dim);
}

void quant_i8_dot_int_batch(const quant_i8_query *qq, const uint8_t *codes, size_t n,
                            float *out)
{
    idot_fn f = itab[quant_isa_i()];
    for (size_t i = 0; i < n; i++)
        out[i] = qq->bias + qq->step * (float)idot_with(f, qq, codes + i * qq->dim);
}

float quant_i8_dot_codes(const quant_i8 *q, const uint8_t *a, const uint8_t *b)
{
    return fk()->sym(q->offset, q->scale, a, b, q->dim);
}

/* ---- float16 --------------------------------------------------------------------- */

void quant_f16_encode(const float *v, size_t n, uint16_t *h)
{
    fk()->f16enc(v, n, h);
}

void quant_f16_decode(const uint16_t *h, size_t n, float *v)
{
    for (size_t i = 0; i < n; i++) {
        float x = quant_f16_to_f32(load_u16(h, i));
        memcpy((unsigned char *)v + 4 * i, &x, sizeof x);
    }
}

float quant_f16_dot(const float *y, const uint16_t *h, size_t dim)
{
    return fk()->f16dot(y, h, dim);
}

void quant_f16_dot_batch(const float *y, const uint16_t *codes, size_t n, size_t dim,
                         float *out)
{
    float (*f)(const float *, const uint16_t *, size_t) = fk()->f16dot;
    for (size_t i = 0; i < n; i++)
        out[i] = f(y, (const uint16_t *)(const void *)((const unsigned char *)codes +
                                                       2 * dim * i),
                   dim);
}

/* ---- one scorer for the indexes ------------------------------------------- */

int quant_scorer_init(quant_scorer *sc, quant_kind kind, const quant_i8 *q8, const float *q,
                      uint32_t dim, quant_i8_query *qq)
{
    *sc = (quant_scorer){kind, dim, q, NULL};
    switch (kind) {
    case QUANT_F32:
    case QUANT_F16:
        return 0;
    case QUANT_I8:
        if (!q8 || !qq || q8->dim != dim)
            return PV_EINVAL;
        sc->qq = qq;
        return quant_i8_query_prep(q8, q, qq);
    }
    return PV_EINVAL;
}

size_t quant_record_bytes(quant_kind kind, uint32_t dim)
{
    return kind == QUANT_I8 ? dim : kind == QUANT_F16 ? 2 * (size_t)dim : 4 * (size_t)dim;
}
