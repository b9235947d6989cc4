/*
 * vit.c - the transformer encoder (see vit.h).
 *
 * Buffers are the calling thread's (vit_scratch), kept from one call to
 * the next: allocating them per call cost a page fault per 4 KB every
 * call (glibc maps blocks over 32 MB afresh). For CLIP ViT-B/32 at 32
 * images (1,600 rows) the encoder's are about 50 MB, the MLP's hidden
 * activations the largest (rows x ff floats).
 */
#include "vit.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

#if defined(__x86_64__)
#define VIT_X86 1
#include <immintrin.h>
#else
#define VIT_X86 0
#endif

/* ---- per-thread buffers ---------------------------------------------------- */

typedef struct scratch {
    float *p[VIT_SLOTS];
    size_t cap[VIT_SLOTS]; /* floats */
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
    scratch *s = v;
    for (int i = 0; s && i < VIT_SLOTS; i++)
        free(s->p[i]);
    free(s);
}

static void scratch_key_make(void) { (void)pthread_key_create(&scratch_key, scratch_free); }

float *vit_scratch(int slot, size_t n)
{
    scratch *s;
    assert(slot >= 0 && slot < VIT_SLOTS);
    pthread_once(&scratch_once, scratch_key_make);
    if (!(s = pthread_getspecific(scratch_key))) {
        if (!(s = calloc(1, sizeof *s)))
            return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->cap[slot] < n) {
        free(s->p[slot]);
        s->cap[slot] = 0;
        if (!(s->p[slot] = pv_alloc_array(n, sizeof(float))))
            return NULL;
        s->cap[slot] = n;
    }
    return s->p[slot];
}

void vit_layernorm(const float *x, size_t n, const float *w, const float *b, float eps,
                   float *out)
{
    float mean = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (float)n;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    const float inv = 1.0f / sqrtf(var / (float)n + eps);
    for (size_t i = 0; i < n; i++)
        out[i] = (x[i] - mean) * inv * w[i] + b[i];
}

/* out[rows, dout] = in[rows, din] W^T + b, W [dout, din] row-major: the
 * bias written first and added by sgemm (beta 1), one pass fewer. */
static void linear(const float *in, size_t rows, int din, const float *w, const float *b,
                   int dout, float *out)
{
    if (b)
        for (size_t r = 0; r < rows; r++)
            memcpy(out + r * (size_t)dout, b, (size_t)dout * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, dout, din, 1.0f, in, din, w,
                din, b ? 1.0f : 0.0f, out, dout);
}

/* ---- activations and softmax's exponentials ------------------------------
 *
 * Per element: the MLP's activation runs on rows x ff values (59 million
 * per batch of 32 at ViT-B/32), where glibc's scalar expf and erff would
 * cost about a seventh of the forward pass. So exp is computed 16 (8) at a
 * time with AVX-512F (AVX2 + FMA), chosen at run time as index/vec.c
 * chooses its kernels (vec_isa_active; PIXVEC_MAX_ISA caps it): Cephes'
 * expf (range reduction by ln 2 in two parts, a degree-6 polynomial,
 * relative error about 2e-7), and erf from exp by Abramowitz and Stegun
 * 7.1.26 (absolute error under 1.5e-7). The portable variant calls expf
 * and erff. Inputs are clamped where exp would overflow (x > 88.37) or
 * leave the normal floats (x < -87.33: exp taken as 2^-126 there, and in
 * QuickGELU x / (1 + e^(-1.702x)) for x below -51 is x * 2^-126 rather than
 * its true tiny value). NaN stays NaN.
 */

#define EXP_HI 88.3762626647949f
#define EXP_LO -87.3365447504019f
#define ERF_P 0.3275911f
#define ERF_A1 0.254829592f
#define ERF_A2 -0.284496736f
#define ERF_A3 1.421413741f
#define ERF_A4 -1.453152027f
#define ERF_A5 1.061405429f

static void act_scalar(float *x, size_t n, int act)
{
    if (act == VIT_QUICK_GELU) {
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
    } else {
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
    }
}

/* x[i] = exp(x[i] - shift); returns their sum. */
static float exp_sum_scalar(float *x, size_t n, float shift)
{
    float sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (x[i] = expf(x[i] - shift));
    return sum;
}

#if VIT_X86
__attribute__((target("avx512f"))) static inline __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(EXP_HI)), _mm512_set1_ps(EXP_LO));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) static inline __m512 act16(__m512 v, int act)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    if (act == VIT_QUICK_GELU)
        return _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_mul_ps(v, _mm512_set1_ps(-1.702f)))));
    /* 0.5 v (1 + erf(v / sqrt 2)), erf odd: computed on |z| */
    const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
    const __m512 az = _mm512_abs_ps(z);
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(az, _mm512_set1_ps(ERF_P), one));
    __m512 q = _mm512_set1_ps(ERF_A5);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(ERF_A4));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(ERF_A3));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(ERF_A2));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(ERF_A1));
    q = _mm512_mul_ps(q, t);
    const __m512 e = _mm512_fnmadd_ps(q, exp16(_mm512_sub_ps(_mm512_setzero_ps(),
                                                             _mm512_mul_ps(az, az))),
                                      one); /* erf(|z|) */
    const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 erf = _mm512_mask_sub_ps(e, neg, _mm512_setzero_ps(), e);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(one, erf));
}

__attribute__((target("avx512f"))) static void act_avx512(float *x, size_t n, int act)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, act16(_mm512_loadu_ps(x + i), act));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, act16(_mm512_maskz_loadu_ps(m, x + i), act));
    }
}

__attribute__((target("avx512f"))) static float exp_sum_avx512(float *x, size_t n, float shift)
{
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x)
{
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(EXP_HI)), _mm256_set1_ps(EXP_LO));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n: n in [-126, 127] after the clamp, a normal float's exponent */
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) static inline __m256 act8(__m256 v, int act)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    if (act == VIT_QUICK_GELU)
        return _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_mul_ps(v, _mm256_set1_ps(-1.702f)))));
    const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
    const __m256 sign = _mm256_and_ps(z, _mm256_set1_ps(-0.0f));
    const __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(az, _mm256_set1_ps(ERF_P), one));
    __m256 q = _mm256_set1_ps(ERF_A5);
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(ERF_A4));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(ERF_A3));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(ERF_A2));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(ERF_A1));
    q = _mm256_mul_ps(q, t);
    const __m256 e = _mm256_fnmadd_ps(
        q, exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az))), one);
    const __m256 erf = _mm256_or_ps(e, sign);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(one, erf));
}

__attribute__((target("avx2,fma"))) static void act_avx2(float *x, size_t n, int act)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, act8(_mm256_loadu_ps(x + i), act));
    act_scalar(x + i, n - i, act);
}

__attribute__((target("avx2,fma"))) static float exp_sum_avx2(float *x, size_t n, float shift)
{
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float lanes[8], s = 0;
    _mm256_storeu_ps(lanes, sum);
    for (int k = 0; k < 8; k++)
        s += lanes[k];
    return s + exp_sum_scalar(x + i, n - i, shift);
}
#endif

void vit_activate(float *x, size_t n, int act)
{
#if VIT_X86
    const vec_isa isa = vec_isa_active();
    if (isa == VEC_AVX512) {
        act_avx512(x, n, act);
        return;
    }
    if (isa == VEC_AVX2) {
        act_avx2(x, n, act);
        return;
    }
#endif
    act_scalar(x, n, act);
}

float vit_exp_sum(float *x, size_t n, float shift)
{
#if VIT_X86
    const vec_isa isa = vec_isa_active();
    if (isa == VEC_AVX512)
        return exp_sum_avx512(x, n, shift);
    if (isa == VEC_AVX2)
        return exp_sum_avx2(x, n, shift);
#endif
    return exp_sum_scalar(x, n, shift);
}

/* x += s * y (s per column, or 1 when s is NULL), rows of d. */
static void residual(float *x, const float *y, size_t rows, int d, const float *s)
{
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * (size_t)d;
        const float *yr = y + r * (size_t)d;
        if (s)
            for (int j = 0; j < d; j++)
                xr[j] += s[j] * yr[j];
        else
            for (int j = 0; j < d; j++)
                xr[j] += yr[j];
    }
}

/* Softmax of each of rows rows of n scores; with causal, row i keeps only
 * its first i + 1 entries (the rest become 0). */
static void softmax_rows(float *s, size_t rows, size_t n, int causal)
{
    for (size_t i = 0; i < rows; i++) {
        float *r = s + i * n;
        const size_t m = causal ? i + 1 : n;
        float mx = r[0], sum = 0;
        for (size_t j = 1; j < m; j++)
            mx = r[j] > mx ? r[j] : mx;
        sum = vit_exp_sum(r, m, mx);
        const float inv = 1.0f / sum;
        for (size_t j = 0; j < m; j++)
            r[j] *= inv;
        for (size_t j = m; j < n; j++)
            r[j] = 0;
    }
}

int vit_encode(const vit_encoder *e, float *x, size_t nseq, size_t t, int causal, int keep)
{
    const int d = e->d, hd = e->d / e->heads;
    const size_t rows = nseq * t, dd = (size_t)d;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t kept = keep == VIT_KEEP_LAST ? t - 1 : 0; /* the row kept */
    assert(e->d % e->heads == 0 && !(causal && keep == VIT_KEEP_FIRST));
    /* h, q, k, v, ctx: rows x d; f: rows x ff; s: t x t; xq: nseq x d (the
     * loader bounds every size, so none of these overflows) */
    const size_t rd = rows * dd, need = 5 * rd + rows * (size_t)e->ff + t * t + nseq * dd;
    float *h = vit_scratch(VIT_SLOT_ENCODER, need);
    if (!h)
        return PV_ENOMEM;
    float *q = h + rd, *k = q + rd, *v = k + rd, *ctx = v + rd, *f = ctx + rd;
    float *s = f + rows * (size_t)e->ff, *xq = s + t * t;
    for (int l = 0; l < e->nlayers; l++) {
        const vit_layer *L = &e->layers[l];
        const int one = keep != VIT_KEEP_ALL && l == e->nlayers - 1;
        const size_t nq = one ? 1 : t; /* query rows per sequence */
        const size_t qrows = nseq * nq;
        float *xr = x; /* the rows that go on: all, or each sequence's first */
        for (size_t r = 0; r < rows; r++)
            vit_layernorm(x + r * dd, dd, L->ln1_w, L->ln1_b, e->eps, h + r * dd);
        linear(h, rows, d, L->k_w, L->k_b, d, k);
        linear(h, rows, d, L->v_w, L->v_b, d, v);
        if (one) {
            for (size_t i = 0; i < nseq; i++) {
                memcpy(xq + i * dd, x + (i * t + kept) * dd, dd * sizeof(float));
                memmove(h + i * dd, h + (i * t + kept) * dd, dd * sizeof(float));
            }
            xr = xq;
        }
        linear(h, qrows, d, L->q_w, L->q_b, d, q);
        for (size_t i = 0; i < nseq; i++)
            for (int hh = 0; hh < e->heads; hh++) {
                const size_t off = (size_t)hh * (size_t)hd;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)t, hd, scale,
                            q + i * nq * dd + off, d, k + i * t * dd + off, d, 0.0f, s, (int)t);
                softmax_rows(s, nq, t, causal && !one); /* the last row sees all */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, hd, (int)t, 1.0f,
                            s, (int)t, v + i * t * dd + off, d, 0.0f, ctx + i * nq * dd + off, d);
            }
        linear(ctx, qrows, d, L->o_w, L->o_b, d, q);
        residual(xr, q, qrows, d, L->ls1);
        for (size_t r = 0; r < qrows; r++)
            vit_layernorm(xr + r * dd, dd, L->ln2_w, L->ln2_b, e->eps, h + r * dd);
        linear(h, qrows, d, L->fc1_w, L->fc1_b, e->ff, f);
        vit_activate(f, qrows * (size_t)e->ff, e->act);
        linear(f, qrows, e->ff, L->fc2_w, L->fc2_b, d, q);
        residual(xr, q, qrows, d, L->ls2);
        if (one)
            for (size_t i = 0; i < nseq; i++)
                memcpy(x + (i * t + kept) * dd, xq + i * dd, dd * sizeof(float));
    }
    return PV_OK;
}

/* PyTorch's cubic convolution weights (A = -0.75) for fraction t. */
static void cubic_weights(double t, double w[4])
{
    const double A = -0.75;
#define CC1(x) ((((A + 2) * (x) - (A + 3)) * (x) * (x)) + 1)
#define CC2(x) ((((A * (x) - 5 * A) * (x) + 8 * A) * (x)) - 4 * A)
    w[0] = CC2(t + 1);
    w[1] = CC1(t);
    w[2] = CC1(1 - t);
    w[3] = CC2(2 - t);
#undef CC1
#undef CC2
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void vit_interp_bicubic(const float *in, int ih, int iw, int d, float *out, int oh, int ow)
{
    const double sy = (double)ih / oh, sx = (double)iw / ow;
    for (int y = 0; y < oh; y++) {
        const double fy = sy * (y + 0.5) - 0.5;
        const int y0 = (int)floor(fy);
        double wy[4];
        cubic_weights(fy - y0, wy);
        for (int x = 0; x < ow; x++) {
            const double fx = sx * (x + 0.5) - 0.5;
            const int x0 = (int)floor(fx);
            double wx[4];
            cubic_weights(fx - x0, wx);
            float *o = out + ((size_t)y * (size_t)ow + (size_t)x) * (size_t)d;
            for (int c = 0; c < d; c++) {
                double acc = 0;
                for (int i = 0; i < 4; i++) {
                    const int yy = clampi(y0 - 1 + i, 0, ih - 1);
                    double row = 0;
                    for (int j = 0; j < 4; j++) {
                        const int xx = clampi(x0 - 1 + j, 0, iw - 1);
                        row += wx[j] * in[((size_t)yy * (size_t)iw + (size_t)xx) * (size_t)d +
                                          (size_t)c];
                    }
                    acc += wy[i] * row;
                }
                o[c] = (float)acc;
            }
        }
    }
}
