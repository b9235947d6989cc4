/*
 * test_quant.c - compact vectors (index/quant.c): the int8 and float16
 * codecs, every kernel on every ISA this CPU has against double-precision
 * references (odd dims, misaligned pointers), the parameter blob against
 * damaged input, and recall@10 of brute-force search over int8 and float16
 * codes of 20,000 Fashion-MNIST vectors against exact float32.
 *
 * Buffers are exactly as long as their data and placed at odd byte offsets,
 * so ASan catches a tail that reads past the end and UBSan a misaligned
 * dereference in the sanitizer build.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "kernel_test.h"
#include "pixvec.h"
#include "pkgdata.h"
#include "quant.h"
#include "vec.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

TestSuite(quant, .init = kt_save_isa, .fini = kt_restore_isa);

static const uint32_t dims[] = {1, 7, 63, 784, 1280, 2049};
#define NDIMS (sizeof dims / sizeof dims[0])
static const size_t offs[] = {0, 1, 3};
#define NOFFS (sizeof offs / sizeof offs[0])

/* A block of exactly off + len bytes holding src at byte offset off. */
static void *place(const void *src, size_t len, size_t off, char **base)
{
    char *b = malloc(off + len + 1);
    cr_assert_not_null(b);
    memcpy(b + off, src, len);
    *base = b;
    return b + off;
}

/* n random vectors of dim values, each dimension with its own range (so
 * per-dimension scales matter), L2-normalised. */
static float *random_vectors(size_t n, uint32_t dim)
{
    float *x = malloc(n * dim * sizeof(float));
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t d = 0; d < dim; d++)
            x[i * dim + d] = kt_rng_unit(&rng_state) * (float)(1 + d % 5) + 0.3f * (float)(d % 3);
        vec_normalize(x + i * dim, dim);
    }
    return x;
}

/* ---- float16 ---------------------------------------------------------------- */

Test(quant, f16_special_values)
{
    static const struct {
        float f;
        uint16_t h;
    } t[] = {
        {0.0f, 0x0000},          {-0.0f, 0x8000},
        {1.0f, 0x3c00},          {-2.0f, 0xc000},
        {65504.0f, 0x7bff},      {65519.996f, 0x7bff}, /* just below the tie */
        {65520.0f, 0x7c00},      {1e10f, 0x7c00},      /* the tie rounds to Inf */
        {INFINITY, 0x7c00},      {-INFINITY, 0xfc00},
        {0x1p-14f, 0x0400},      {0x1p-24f, 0x0001}, /* smallest normal, subnormal */
        {0x1p-25f, 0x0000},      {-0x1p-25f, 0x8000}, /* tie to even: zero */
        {0x1.8p-25f, 0x0001},    {0x1.8p-24f, 0x0002}, /* above tie; tie 1.5 -> 2 */
        {0x1.4p-24f, 0x0001},    {0x1p-26f, 0x0000},
        {1e-8f, 0x0000},         {FLT_MIN, 0x0000},  {0x1p-149f, 0x0000},
        {1.0f + 0x1p-11f, 0x3c00}, /* tie, even mantissa stays */
        {1.0f + 0x3p-11f, 0x3c02}, /* tie, odd mantissa rounds up */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01}, /* just above the tie */
        {0x1.ff8p-15f, 0x03ff},  {0x1.ffcp-15f, 0x0400}, /* largest subnormal; tie into normal */
        {0.1f, 0x2e66},          {-0.333333343f, 0xb555},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cr_assert_eq(quant_f16_from_f32(t[i].f), t[i].h, "%a -> %04x, want %04x", (double)t[i].f,
                     quant_f16_from_f32(t[i].f), t[i].h);
        FOR_EACH_ISA(isa) {
            uint16_t h[17];
            float v[17];
            for (int k = 0; k < 17; k++)
                v[k] = t[i].f;
            quant_f16_encode(v, 17, h); /* the vector body and the tail */
            for (int k = 0; k < 17; k++)
                cr_assert_eq(h[k], t[i].h, "%s: %a -> %04x, want %04x", vec_isa_name(isa),
                             (double)t[i].f, h[k], t[i].h);
        }
    }
    uint16_t n = quant_f16_from_f32(NAN);
    cr_assert((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0, "NaN -> %04x", n);
    cr_assert(isnan(quant_f16_to_f32(n)));
    cr_assert(signbit(quant_f16_to_f32(0x8000)) && quant_f16_to_f32(0x8000) == 0.0f);
}

/* Every half decodes to its exact value (ldexp reference), re-encodes to
 * itself, and the dot kernel of every ISA decodes it the same way. */
Test(quant, f16_every_half)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t e = (h >> 10) & 31, m = h & 1023;
        float f = quant_f16_to_f32((uint16_t)h);
        if (e == 31 && m) {
            cr_assert(isnan(f));
            continue;
        }
        double ref = e == 31 ? INFINITY
                     : e    ? ldexp(1.0 + m / 1024.0, (int)e - 15)
                            : ldexp(m / 1024.0, -14);
        if (h & 0x8000)
            ref = -ref;
        cr_assert((double)f == ref, "%04x -> %a, want %a", h, (double)f, ref);
        cr_assert_eq(quant_f16_from_f32(f), h, "%04x does not round-trip", h);
        float one = 1.0f;
        uint16_t hh = (uint16_t)h;
        FOR_EACH_ISA(isa) {
            float g = quant_f16_dot(&one, &hh, 1);
            cr_assert(g == f || (g == 0.0f && f == 0.0f), "%s: %04x -> %a, want %a",
                      vec_isa_name(isa), h, (double)g, (double)f);
        }
    }
}

/* The portable conversion against the hardware's (F16C / AVX-512) on a
 * sweep of float bit patterns that visits every exponent. */
Test(quant, f16_encode_matches_hardware)
{
    enum { N = 4096 };
    static float v[N];
    static uint16_t h[N];
    uint64_t x = 0;
    size_t checked = 0;
    while (x < (1ull << 32)) {
        for (int i = 0; i < N; i++) {
            uint32_t b = (uint32_t)x;
            memcpy(&v[i], &b, 4);
            x += 1031; /* prime stride: about 4.2 million patterns */
        }
        FOR_EACH_ISA(isa) {
            quant_f16_encode(v, N, h);
            for (int i = 0; i < N; i++)
                cr_assert_eq(h[i], quant_f16_from_f32(v[i]), "%s: %a -> %04x, portable %04x",
                             vec_isa_name(isa), (double)v[i], h[i], quant_f16_from_f32(v[i]));
            checked += N;
        }
    }
    cr_assert(checked >= 4000000);
}

Test(quant, f16_dot_every_isa)
{
    for (size_t di = 0; di < NDIMS; di++) {
        uint32_t dim = dims[di];
        float *x = random_vectors(2, dim);
        uint16_t *h = malloc(dim * 2);
        quant_f16_encode(x, dim, h);
        double ref = 0, mag = 0;
        for (uint32_t d = 0; d < dim; d++) {
            ref += (double)x[dim + d] * quant_f16_to_f32(h[d]);
            mag += fabs((double)x[dim + d] * quant_f16_to_f32(h[d]));
        }
        for (size_t oi = 0; oi < NOFFS; oi++) {
            char *hb, *yb;
            const uint16_t *hp = place(h, dim * 2, offs[oi], &hb);
            const float *yp = place(x + dim, dim * 4, offs[(oi + 1) % NOFFS] * 2, &yb);
            FOR_EACH_ISA(isa) {
                float got = quant_f16_dot(yp, hp, dim);
                cr_assert(fabs(got - ref) <= 1e-6 * mag + 1e-7, "%s dim %u off %zu: %g vs %g",
                          vec_isa_name(isa), dim, offs[oi], (double)got, ref);
                float out[3];
                char *cb;
                uint16_t *three = malloc(3 * dim * 2);
                for (int k = 0; k < 3; k++)
                    memcpy(three + k * dim, h, dim * 2);
                const uint16_t *cp = place(three, 3 * dim * 2, offs[oi], &cb);
                quant_f16_dot_batch(yp, cp, 3, dim, out);
                for (int k = 0; k < 3; k++)
                    cr_assert(out[k] == got, "%s batch %d", vec_isa_name(isa), k);
                free(cb);
                free(three);
            }
            free(hb);
            free(yb);
        }
        /* the code's error against float32: half a unit in the 11th bit */
        float dec[2049];
        quant_f16_decode(h, dim, dec);
        for (uint32_t d = 0; d < dim; d++)
            cr_assert(fabsf(dec[d] - x[d]) <= fmaxf(fabsf(x[d]) * 0x1p-11f, 0x1p-25f));
        free(h);
        free(x);
    }
}

/* ---- int8 codec --------------------------------------------------------------- */

Test(quant, i8_round_trip_and_clipping)
{
    uint32_t dim = 63;
    size_t n = 500;
    float *x = random_vectors(n, dim);
    quant_i8 q = {0};
    cr_assert_eq(quant_i8_train(x, n, dim, &q), 0);
    uint8_t code[63];
    float dec[63];
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(quant_i8_encode(&q, x + i * dim, code), 0, "a training vector clipped");
        quant_i8_decode(&q, code, dec);
        for (uint32_t d = 0; d < dim; d++)
            cr_assert(fabsf(dec[d] - x[i * dim + d]) <= 0.5f * q.scale[d] * 1.0001f + 1e-7f,
                      "dim %u: %g -> %g, step %g", d, (double)x[i * dim + d], (double)dec[d],
                      (double)q.scale[d]);
    }
    /* three components out of range, one Inf: four clipped, coded at the ends */
    float v[63];
    memcpy(v, x, sizeof v);
    v[0] = q.offset[0] - 10 * q.scale[0];
    v[5] = q.offset[5] + 300 * q.scale[5];
    v[6] = INFINITY;
    v[7] = -1e30f;
    cr_assert_eq(quant_i8_encode(&q, v, code), 4);
    cr_assert(code[0] == 0 && code[5] == 255 && code[6] == 255 && code[7] == 0);
    v[9] = NAN;
    cr_assert_eq(quant_i8_encode(&q, v, code), PV_ENUMERIC);
    cr_assert_eq(code[9], 0);

    /* a constant dimension gets a positive scale and codes its value exactly */
    for (size_t i = 0; i < n; i++)
        x[i * dim + 3] = 0.25f;
    quant_i8_free(&q);
    cr_assert_eq(quant_i8_train(x, n, dim, &q), 0);
    cr_assert(q.scale[3] > 0.0f && q.scale[3] < 1e-6f);
    cr_assert_eq(quant_i8_encode(&q, x, code), 0);
    quant_i8_decode(&q, code, dec);
    cr_assert_eq(dec[3], 0.25f);

    /* bad training input */
    quant_i8 r = {0};
    cr_assert_eq(quant_i8_train(x, 0, dim, &r), PV_EINVAL);
    cr_assert_eq(quant_i8_train(x, n, 0, &r), PV_EINVAL);
    cr_assert_eq(quant_i8_train_trim(x, n, dim, 0.3, &r), PV_EINVAL);
    x[17] = NAN;
    cr_assert_eq(quant_i8_train(x, n, dim, &r), PV_ENUMERIC);
    cr_assert_null(r.offset);
    quant_i8_free(&r);
    quant_i8_free(&q);
    quant_i8_free(NULL);
    quant_i8_query_free(NULL);
    free(x);
}

Test(quant, i8_trim_narrows_the_range)
{
    uint32_t dim = 4;
    size_t n = 1001;
    float *x = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dim; d++)
            x[i * dim + d] = (float)i / 1000.0f; /* 0, 0.001, ..., 1 */
    quant_i8 a = {0}, b = {0};
    cr_assert_eq(quant_i8_train(x, n, dim, &a), 0);
    cr_assert_eq(quant_i8_train_trim(x, n, dim, 0.01, &b), 0);
    for (uint32_t d = 0; d < dim; d++) {
        cr_assert_eq(a.offset[d], 0.0f);
        cr_assert(fabsf(a.scale[d] * 255 - 1.0f) < 1e-6f);
        cr_assert(fabsf(b.offset[d] - 0.01f) < 1e-6f, "%g", (double)b.offset[d]);
        cr_assert(fabsf(b.offset[d] + b.scale[d] * 255 - 0.99f) < 1e-6f);
    }
    quant_i8_free(&a);
    quant_i8_free(&b);
    free(x);
}

/* ---- int8 kernels --------------------------------------------------------------- */

Test(quant, i8_kernels_every_isa)
{
    for (size_t di = 0; di < NDIMS; di++) {
        uint32_t dim = dims[di];
        size_t n = 64;
        float *x = random_vectors(n, dim);
        quant_i8 q = {0};
        quant_i8_query qq = {0};
        cr_assert_eq(quant_i8_train(x, n - 2, dim, &q), 0);
        uint8_t *codes = malloc(n * dim);
        for (size_t i = 0; i < n; i++)
            cr_assert_geq(quant_i8_encode(&q, x + i * dim, codes + i * dim), 0);
        /* the query is the last vector, not in the training sample */
        cr_assert_eq(quant_i8_query_prep(&q, x + (n - 1) * dim, &qq), 0);
        cr_assert_eq(qq.dim, dim);
        for (size_t oi = 0; oi < NOFFS; oi++) {
            char *cb;
            const uint8_t *cp = place(codes, n * dim, offs[oi], &cb);
            for (size_t i = 0; i < n; i += 7) {
                const uint8_t *c = codes + i * dim;
                double adc = qq.bias, mag = fabs(qq.bias), sym = 0, smag = 0;
                int64_t idot = 0;
                for (uint32_t d = 0; d < dim; d++) {
                    adc += (double)qq.w[d] * c[d];
                    mag += fabs((double)qq.w[d] * c[d]);
                    idot += (int64_t)qq.qi[d] * c[d];
                    double a = (double)q.offset[d] + (double)q.scale[d] * c[d];
                    double b = (double)q.offset[d] + (double)q.scale[d] * codes[d];
                    sym += a * b;
                    smag += fabs(a * b);
                }
                FOR_EACH_ISA(isa) {
                    const uint8_t *cpi = cp + i * dim;
                    /* prep picks the integer kernel of the ISA in force */
                    cr_assert_eq(quant_i8_query_prep(&q, x + (n - 1) * dim, &qq), 0);
                    float got = quant_i8_dot_adc(&qq, cpi);
                    cr_assert(fabs(got - adc) <= 2e-6 * mag + 1e-7, "%s adc dim %u: %g vs %g",
                              vec_isa_name(isa), dim, (double)got, adc);
                    cr_assert_eq(quant_i8_idot(&qq, cpi), idot, "%s idot dim %u",
                                 vec_isa_name(isa), dim);
                    float gi = quant_i8_dot_int(&qq, cpi);
                    cr_assert(fabs(gi - (qq.bias + (double)qq.step * idot)) <= 1e-6 * mag + 1e-7);
                    float gs = quant_i8_dot_codes(&q, cpi, codes);
                    cr_assert(fabs(gs - sym) <= 2e-6 * smag + 1e-7, "%s sym dim %u: %g vs %g",
                              vec_isa_name(isa), dim, (double)gs, sym);
                }
            }
            FOR_EACH_ISA(isa) {
                float *ba = malloc(n * sizeof(float)), *bi = malloc(n * sizeof(float));
                cr_assert_eq(quant_i8_query_prep(&q, x + (n - 1) * dim, &qq), 0);
                quant_i8_dot_adc_batch(&qq, cp, n, ba);
                quant_i8_dot_int_batch(&qq, cp, n, bi);
                for (size_t i = 0; i < n; i++) {
                    cr_assert_eq(ba[i], quant_i8_dot_adc(&qq, cp + i * dim));
                    cr_assert_eq(bi[i], quant_i8_dot_int(&qq, cp + i * dim));
                }
                free(ba);
                free(bi);
            }
            free(cb);
        }
        /* the ADC is the dot with the decoded vector, near the float32 dot */
        float *dec = malloc(dim * sizeof(float));
        for (size_t i = 0; i < n - 2; i++) {
            quant_i8_decode(&q, codes + i * dim, dec);
            double exact = 0, viadec = 0, bound = 0;
            for (uint32_t d = 0; d < dim; d++) {
                exact += (double)x[(n - 1) * dim + d] * x[i * dim + d];
                viadec += (double)x[(n - 1) * dim + d] * dec[d];
                bound += 0.5 * q.scale[d] * fabs(x[(n - 1) * dim + d]);
            }
            float adc = quant_i8_dot_adc(&qq, codes + i * dim);
            cr_assert(fabs(adc - viadec) < 1e-5, "%g vs %g", (double)adc, viadec);
            cr_assert(fabs(adc - exact) <= bound * 1.001 + 1e-5);
        }
        free(dec);
        quant_i8_query_free(&qq);
        quant_i8_free(&q);
        free(codes);
        free(x);
    }
}

/* Past 2^31 / (255 * 127) = 66,311 dimensions an int32 sum of c * q could
 * overflow: the dot is summed in blocks. All codes 255, all query bytes 127. */
Test(quant, i8_idot_does_not_overflow)
{
    uint32_t dim = 70000;
    float *x = calloc(2 * (size_t)dim, sizeof(float));
    for (uint32_t d = 0; d < dim; d++)
        x[dim + d] = 1.0f;
    quant_i8 q = {0};
    quant_i8_query qq = {0};
    cr_assert_eq(quant_i8_train(x, 2, dim, &q), 0);
    uint8_t *c = malloc(dim);
    cr_assert_eq(quant_i8_encode(&q, x + dim, c), 0);
    cr_assert_eq(quant_i8_query_prep(&q, x + dim, &qq), 0);
    FOR_EACH_ISA(isa) {
        cr_assert_eq(quant_i8_idot(&qq, c), (int64_t)dim * 255 * 127, "%s", vec_isa_name(isa));
        cr_assert(fabsf(quant_i8_dot_int(&qq, c) - (float)dim) < 1e-3f * dim);
    }
    float y[3] = {1, NAN, 0};
    quant_i8 q3 = {0};
    cr_assert_eq(quant_i8_train(x, 2, 3, &q3), 0);
    cr_assert_eq(quant_i8_query_prep(&q3, y, &qq), PV_ENUMERIC);
    quant_i8_free(&q3);
    quant_i8_query_free(&qq);
    quant_i8_free(&q);
    free(c);
    free(x);
}

/* ---- the parameter blob ----------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void putf(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put32(p, v);
}

Test(quant, i8_params_save_load)
{
    uint32_t dim = 7;
    float *x = random_vectors(50, dim);
    quant_i8 q = {0}, r = {0};
    cr_assert_eq(quant_i8_train(x, 50, dim, &q), 0);
    size_t len = quant_i8_params_size(dim);
    cr_assert_eq(len, 16 + 8 * dim);
    unsigned char *blob = malloc(len), *bad = malloc(len + 1);
    quant_i8_save(&q, blob);
    cr_assert(memcmp(blob, "PVQ8\1\0\0\0\7\0\0\0\0\0\0\0", 16) == 0);
    cr_assert_eq(quant_i8_load(blob, len, dim, &r), 0);
    cr_assert(memcmp(r.offset, q.offset, dim * 4) == 0 && memcmp(r.scale, q.scale, dim * 4) == 0);
    quant_i8_free(&r);

    /* every truncation, and one byte too many */
    for (size_t l = 0; l < len; l++) {
        char *b;
        void *p = place(blob, l, 0, &b);
        cr_assert_eq(quant_i8_load(p, l, dim, &r), PV_ECORRUPT, "length %zu", l);
        cr_assert_null(r.offset);
        free(b);
    }
    memcpy(bad, blob, len);
    bad[len] = 0;
    cr_assert_eq(quant_i8_load(bad, len + 1, dim, &r), PV_ECORRUPT);
    cr_assert_eq(quant_i8_load(blob, len, dim + 1, &r), PV_ECORRUPT, "dim mismatch");
    cr_assert_eq(quant_i8_load(NULL, len, dim, &r), PV_ECORRUPT);

    static const struct {
        size_t at;
        int kind; /* 0: u32, 1: f32 */
        uint32_t u;
        float f;
        int want;
    } cases[] = {
        {0, 0, 0x39515650u, 0, PV_ENOTDB}, /* "PVQ9" */
        {4, 0, 2, 0, PV_ENEWER},           {4, 0, 0, 0, PV_ECORRUPT},
        {8, 0, 0, 0, PV_ECORRUPT},         {8, 0, 0xffffffffu, 0, PV_ECORRUPT},
        {12, 0, 1, 0, PV_ECORRUPT},        {16, 1, 0, NAN, PV_ECORRUPT},
        {16 + 4, 1, 0, INFINITY, PV_ECORRUPT},
        {16 + 28, 1, 0, NAN, PV_ECORRUPT}, /* scales start at 16 + 4 * 7 */
        {16 + 32, 1, 0, 0.0f, PV_ECORRUPT},
        {16 + 36, 1, 0, -0.01f, PV_ECORRUPT},
        {16 + 40, 1, 0, 1e-42f, PV_ECORRUPT}, /* subnormal: 1/s is Inf */
        {16 + 44, 1, 0, INFINITY, PV_ECORRUPT},
        {16 + 48, 1, 0, 3e37f, PV_ECORRUPT}, /* o + 255 s overflows */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, blob, len);
        if (cases[i].kind == 0)
            put32(bad + cases[i].at, cases[i].u);
        else
            putf(bad + cases[i].at, cases[i].f);
        cr_assert_eq(quant_i8_load(bad, len, dim, &r), cases[i].want, "case %zu", i);
        cr_assert_null(r.offset);
    }

    /* random damage: every blob either loads to usable parameters or is
     * refused, and a loaded one encodes without NaN */
    size_t ok = 0;
    for (int t = 0; t < 20000; t++) {
        memcpy(bad, blob, len);
        int flips = 1 + (int)(kt_rng_next(&rng_state) % 4);
        for (int k = 0; k < flips; k++)
            bad[kt_rng_next(&rng_state) % len] ^= (unsigned char)(1u << (kt_rng_next(&rng_state) % 8));
        int rc = quant_i8_load(bad, len, dim, &r);
        if (rc == 0) {
            uint8_t code[7];
            ok++;
            for (uint32_t d = 0; d < dim; d++)
                cr_assert(isfinite(r.offset[d]) && r.scale[d] >= FLT_MIN &&
                          isfinite(r.inv[d]));
            cr_assert_geq(quant_i8_encode(&r, x, code), 0);
            quant_i8_free(&r);
        } else {
            cr_assert(rc == PV_ECORRUPT || rc == PV_ENOTDB || rc == PV_ENEWER, "rc %d", rc);
            cr_assert_null(r.offset);
        }
    }
    cr_assert(ok > 0 && ok < 20000, "%zu of the damaged blobs loaded", ok);
    quant_i8_free(&q);
    free(blob);
    free(bad);
    free(x);
}

/* ---- recall on Fashion-MNIST --------------------------------------------------------- */

#define FM_DIM 784
#define FM_BASE 20000
#define FM_QUERIES 200
#define K 10

/* n images of an IDX file of dataset-fashion-mnist, as floats 0..1,
 * through gzip (no zlib in the test binary). */
static float *fm_load(const char *suffix, size_t n)
{
    char path[GEN_PATH_MAX], cmd[GEN_PATH_MAX + 32];
    pkg_file("dataset-fashion-mnist", suffix, path);
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    unsigned char hdr[16];
    cr_assert_eq(fread(hdr, 1, 16, p), 16);
    cr_assert(hdr[2] == 8 && hdr[3] == 3, "not an IDX image file: %s", path);
    unsigned char *px = malloc(n * FM_DIM);
    cr_assert_eq(fread(px, 1, n * FM_DIM, p), n * FM_DIM, "%s holds fewer than %zu images", path, n);
    pclose(p);
    float *x = malloc(n * FM_DIM * sizeof(float));
    for (size_t i = 0; i < n * FM_DIM; i++)
        x[i] = px[i] / 255.0f;
    free(px);
    return x;
}

/* As the pixels embedder stores them: each image centred on its mean
 * brightness (centred != 0), then L2-normalised. */
static void fm_embed(float *x, size_t n, int centred)
{
    for (size_t i = 0; i < n; i++) {
        float *v = x + i * FM_DIM;
        if (centred) {
            double m = 0;
            for (int d = 0; d < FM_DIM; d++)
                m += v[d];
            m /= FM_DIM;
            for (int d = 0; d < FM_DIM; d++)
                v[d] = (float)(v[d] - m);
        }
        vec_normalize(v, FM_DIM);
    }
}

/* ids of the k largest s[0..n-1], best first */
static void topk(const float *s, size_t n, size_t k, uint32_t *ids)
{
    float best[64];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m == k && s[i] <= best[k - 1])
            continue;
        size_t j = m < k ? m++ : k - 1;
        while (j > 0 && best[j - 1] < s[i]) {
            best[j] = best[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        best[j] = s[i];
        ids[j] = (uint32_t)i;
    }
}

static double overlap(const uint32_t *a, const uint32_t *b)
{
    int hit = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            hit += a[i] == b[j];
    return hit / (double)K;
}

typedef struct {
    double r_adc, r_int, r_f16, r_rerank, r_rerank20, r_sym;
    double e_adc, e_int_adc, e_int, e_f16, m_adc, m_int, m_f16;
} fm_result;

/* Brute-force top-10 over codes of base, for every query, against exact
 * float32. trim selects quant_i8_train_trim. */
static fm_result fm_measure(const float *base, const float *qs, double trim, int rerank_k)
{
    fm_result r = {0};
    quant_i8 q = {0};
    quant_i8_query qq = {0};
    cr_assert_eq(quant_i8_train_trim(base, FM_BASE, FM_DIM, trim, &q), 0);
    uint8_t *codes = malloc((size_t)FM_BASE * FM_DIM);
    uint16_t *h = malloc((size_t)FM_BASE * FM_DIM * 2);
    size_t clipped = 0;
    for (size_t i = 0; i < FM_BASE; i++) {
        int c = quant_i8_encode(&q, base + i * FM_DIM, codes + i * FM_DIM);
        cr_assert_geq(c, 0);
        clipped += (size_t)c;
    }
    cr_assert(trim > 0 || clipped == 0);
    quant_f16_encode(base, (size_t)FM_BASE * FM_DIM, h);
    float *sf = malloc(FM_BASE * sizeof(float)), *sa = malloc(FM_BASE * sizeof(float));
    float *si = malloc(FM_BASE * sizeof(float)), *sh = malloc(FM_BASE * sizeof(float));
    uint8_t *qcode = malloc(FM_DIM);
    for (int t = 0; t < FM_QUERIES; t++) {
        const float *y = qs + (size_t)t * FM_DIM;
        uint32_t exact[K], ia[K], ii[K], ih[K], cand[64], rr[K];
        cr_assert_eq(quant_i8_query_prep(&q, y, &qq), 0);
        for (size_t i = 0; i < FM_BASE; i++)
            sf[i] = vec_dot(y, base + i * FM_DIM, FM_DIM);
        quant_i8_dot_adc_batch(&qq, codes, FM_BASE, sa);
        quant_i8_dot_int_batch(&qq, codes, FM_BASE, si);
        quant_f16_dot_batch(y, h, FM_BASE, FM_DIM, sh);
        for (size_t i = 0; i < FM_BASE; i++) {
            double ea = fabs(sa[i] - sf[i]), ei = fabs(si[i] - sf[i]), eh = fabs(sh[i] - sf[i]);
            r.e_adc += ea;
            r.e_int += ei;
            r.e_f16 += eh;
            r.e_int_adc += fabs(si[i] - sa[i]);
            r.m_adc = fmax(r.m_adc, ea);
            r.m_int = fmax(r.m_int, ei);
            r.m_f16 = fmax(r.m_f16, eh);
        }
        topk(sf, FM_BASE, K, exact);
        topk(sa, FM_BASE, K, ia);
        topk(si, FM_BASE, K, ii);
        topk(sh, FM_BASE, K, ih);
        r.r_adc += overlap(exact, ia);
        r.r_int += overlap(exact, ii);
        r.r_f16 += overlap(exact, ih);
        /* the integer path's top rerank_k (and top 20) re-scored in float32 */
        topk(si, FM_BASE, (size_t)rerank_k, cand);
        for (int pass = 0; pass < 2; pass++) {
            int depth = pass ? 20 : rerank_k;
            float rs[64];
            for (int j = 0; j < depth; j++)
                rs[j] = vec_dot(y, base + (size_t)cand[j] * FM_DIM, FM_DIM);
            uint32_t pos[K];
            topk(rs, (size_t)depth, K, pos);
            for (int j = 0; j < K; j++)
                rr[j] = cand[pos[j]];
            *(pass ? &r.r_rerank20 : &r.r_rerank) += overlap(exact, rr);
        }
        /* symmetric: the query coded too (graph construction's case); for
         * the default range only, to keep the sanitizer run short */
        if (trim > 0.0)
            continue;
        quant_i8_encode(&q, y, qcode);
        for (size_t i = 0; i < FM_BASE; i++)
            sa[i] = quant_i8_dot_codes(&q, qcode, codes + i * FM_DIM);
        topk(sa, FM_BASE, K, ia);
        r.r_sym += overlap(exact, ia);
    }
    double nq = FM_QUERIES, np = nq * FM_BASE;
    r.r_adc /= nq;
    r.r_int /= nq;
    r.r_f16 /= nq;
    r.r_rerank /= nq;
    r.r_rerank20 /= nq;
    r.r_sym /= nq;
    r.e_adc /= np;
    r.e_int /= np;
    r.e_f16 /= np;
    r.e_int_adc /= np;
    free(qcode);
    free(sf);
    free(sa);
    free(si);
    free(sh);
    free(codes);
    free(h);
    quant_i8_query_free(&qq);
    quant_i8_free(&q);
    return r;
}

Test(quant, recall_at_10_on_fashion_mnist, .timeout = 600)
{
    float *base = fm_load("/train-images-idx3-ubyte.gz", FM_BASE);
    float *qs = fm_load("/t10k-images-idx3-ubyte.gz", FM_QUERIES);
    float *base_c = malloc((size_t)FM_BASE * FM_DIM * sizeof(float));
    float *qs_c = malloc((size_t)FM_QUERIES * FM_DIM * sizeof(float));
    memcpy(base_c, base, (size_t)FM_BASE * FM_DIM * sizeof(float));
    memcpy(qs_c, qs, (size_t)FM_QUERIES * FM_DIM * sizeof(float));
    fm_embed(base, FM_BASE, 0);
    fm_embed(qs, FM_QUERIES, 0);
    fm_embed(base_c, FM_BASE, 1);
    fm_embed(qs_c, FM_QUERIES, 1);

    /* min/max (the default) against trimming 0.1% of each tail; quant.c
     * has the wider sweep (1e-4, 1e-2 too), left out here to keep the
     * sanitizer build's run short */
    static const double trims[] = {0.0, 1e-3};
    for (int set = 0; set < 2; set++) {
        fm_result r0 = {0};
        const float *b = set ? base_c : base, *y = set ? qs_c : qs;
        const char *name = set ? "pixels (centred)" : "raw pixels";
        for (size_t ti = 0; ti < sizeof trims / sizeof trims[0]; ti++) {
            fm_result r = fm_measure(b, y, trims[ti], 40);
            char sym[16] = "-"; /* measured for the default range only */
            if (trims[ti] == 0.0)
                snprintf(sym, sizeof sym, "%.4f", r.r_sym);
            printf("quant: %s trim %g: recall@10 adc %.4f int %.4f int+rerank20 %.4f "
                   "int+rerank40 %.4f sym %s f16 %.4f | mean|err| adc %.2e int %.2e "
                   "(int-adc %.2e) f16 %.2e | max adc %.2e int %.2e f16 %.2e\n",
                   name, trims[ti], r.r_adc, r.r_int, r.r_rerank20, r.r_rerank, sym, r.r_f16,
                   r.e_adc, r.e_int, r.e_int_adc, r.e_f16, r.m_adc, r.m_int, r.m_f16);
            if (trims[ti] > 0.0) {
                /* the measurement behind the default: trimming is no better */
                cr_assert_leq(r.r_adc, r0.r_adc + 0.005, "%s: trim %g beats min/max: %.4f > %.4f",
                              name, trims[ti], r.r_adc, r0.r_adc);
                cr_assert_gt(r.m_adc, r0.m_adc, "%s: trimming should raise the worst error", name);
            } else {
                r0 = r;
                /* Floors under the measured values (quant.c's comment: int8
                 * 0.978 .. 0.989, rerank of 20 or 40 1.0, f16 0.998, symmetric 0.98). */
                cr_assert_geq(r.r_adc, 0.96, "%s: int8 ADC recall %.4f", name, r.r_adc);
                cr_assert_geq(r.r_int, 0.96, "%s: int8 integer recall %.4f", name, r.r_int);
                cr_assert_geq(r.r_rerank, 0.999, "%s: rerank recall %.4f", name, r.r_rerank);
                cr_assert_geq(r.r_rerank20, 0.995, "%s: rerank-20 recall %.4f", name,
                              r.r_rerank20);
                cr_assert_geq(r.r_f16, 0.995, "%s: f16 recall %.4f", name, r.r_f16);
                cr_assert_geq(r.r_sym, 0.95, "%s: symmetric recall %.4f", name, r.r_sym);
                cr_assert_lt(r.e_int_adc, 2e-3, "%s: integer path vs ADC %.2e", name, r.e_int_adc);
                cr_assert_lt(r.e_adc, 1e-3, "%s: ADC vs float32 %.2e", name, r.e_adc);
                cr_assert_lt(r.e_f16, 1e-4, "%s: f16 vs float32 %.2e", name, r.e_f16);
            }
        }
    }
    free(base);
    free(qs);
    free(base_c);
    free(qs_c);
}
