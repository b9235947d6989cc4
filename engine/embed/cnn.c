/*
 * cnn.c - MobileNetV2 forward pass (see cnn.h).
 *
 * Tensors are NHWC, so a batch [n, h, w, c] is also a matrix of n*h*w rows
 * and c columns: a 1x1 convolution is one sgemm of that matrix with the
 * kernel (Keras stores it as [1, 1, cin, cout], already the cin x cout
 * matrix). The 3x3 stem convolution builds the im2col rows (kh, kw, cin
 * order, matching Keras' HWIO kernel) and multiplies them the same way. The
 * depthwise 3x3 convolutions run direct (AVX-512, AVX2 or portable C, as
 * vec_isa_active() says), with bias and ReLU6 fused; each sgemm runs on
 * blocks of rows, its bias, residual add and ReLU6 applied in one pass
 * while the block is in cache.
 *
 * Order of work (issue 17): the early blocks, where one image's tensors
 * are megabytes, run an image at a time by bands of output rows (expand,
 * depthwise, project within an L2-sized scratch: the fused inverted
 * residual block of MobileNetV2 implementations such as XNNPACK's); the
 * late ones run the batch a layer at a time, for bigger sgemm calls.
 * Threads take shares of the images, or, with fewer images than threads,
 * the rows of the large early layers (index/par.h's par_run).
 */
#include "cnn.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

#if defined(__x86_64__)
#define CNN_X86 1
#include <immintrin.h>
#else
#define CNN_X86 0
#endif

#define BN_EPS 1e-3f /* Keras MobileNetV2's BatchNormalization epsilon */

typedef struct layer {
    int k, cin, cout, depthwise;
    float *w; /* folded kernel: [k*k*cin, cout], or [k*k, c] for depthwise */
    float *b; /* folded bias: cout */
} layer;

struct cnn {
    layer stem;                    /* Conv1 + bn_Conv1 */
    layer expand[MNV2_BLOCKS];     /* .w NULL when the block has none */
    layer dw[MNV2_BLOCKS], project[MNV2_BLOCKS];
    layer head;                    /* Conv_1 + Conv_1_bn */
};

struct cnn_work {
    size_t max_batch;
    unsigned threads; /* cnn_work_set_threads; 1 by default */
    float *a, *b, *c; /* ping-pong activations, each the largest tensor */
    float *slots;     /* band scratch, SLOT_FLOATS per thread */
};

/* ---- loading ---------------------------------------------------------------- */

/* Fold batch norm bn into kernel: w' = w s, b' = beta - mean s with s =
 * gamma / sqrt(variance + eps). The inputs are finite (mnv2_check), but s
 * of a large gamma over a variance near 0 can still overflow, and so can
 * w s: PV_ENUMERIC naming the layer and channel then. */
static int fold(const st_file *f, const char *path, char *err, size_t errlen, const char *kernel,
                const char *bn, int k, int cin, int cout, int depthwise, layer *L)
{
    char name[96];
    const st_tensor *kt = st_find(f, kernel), *g, *be, *mu, *var;
    snprintf(name, sizeof name, "%s/gamma", bn);
    g = st_find(f, name);
    snprintf(name, sizeof name, "%s/beta", bn);
    be = st_find(f, name);
    snprintf(name, sizeof name, "%s/moving_mean", bn);
    mu = st_find(f, name);
    snprintf(name, sizeof name, "%s/moving_variance", bn);
    var = st_find(f, name);
    if (!kt || !g || !be || !mu || !var) /* mnv2_check ran before */
        return PV_ECORRUPT;
    const size_t rows = (size_t)k * k * (depthwise ? 1 : (size_t)cin);
    L->k = k;
    L->cin = cin;
    L->cout = cout;
    L->depthwise = depthwise;
    L->w = pv_alloc_array(rows * (size_t)cout, sizeof(float));
    L->b = pv_alloc_array((size_t)cout, sizeof(float));
    if (!L->w || !L->b)
        return PV_ENOMEM;
    for (int o = 0; o < cout; o++) {
        const float s = g->data[o] / sqrtf(var->data[o] + BN_EPS);
        int finite = isfinite(s);
        L->b[o] = be->data[o] - mu->data[o] * s;
        finite = finite && isfinite(L->b[o]);
        /* HWIO (depthwise: HW, channel, multiplier 1): output channel last */
        for (size_t r = 0; r < rows; r++) {
            float *w = &L->w[r * (size_t)cout + (size_t)o];
            *w = kt->data[r * (size_t)cout + (size_t)o] * s;
            finite = finite && isfinite(*w);
        }
        if (!finite) {
            snprintf(err, errlen,
                     "%s: batch norm %s folded into %s overflows at channel %d (gamma %g, "
                     "variance %g, scale %g): weights must stay finite numbers",
                     path, bn, kernel, o, (double)g->data[o], (double)var->data[o], (double)s);
            return PV_ENUMERIC;
        }
    }
    return PV_OK;
}

void cnn_free(cnn *m)
{
    if (!m)
        return;
    layer *all[] = {&m->stem, &m->head};
    for (int i = 0; i < 2; i++) {
        free(all[i]->w);
        free(all[i]->b);
    }
    for (int i = 0; i < MNV2_BLOCKS; i++) {
        free(m->expand[i].w);
        free(m->expand[i].b);
        free(m->dw[i].w);
        free(m->dw[i].b);
        free(m->project[i].w);
        free(m->project[i].b);
    }
    free(m);
}

int cnn_load(const char *path, cnn **out, uint8_t hash[16], char *err, size_t errlen)
{
    st_file f;
    cnn *m;
    int rc = st_load(path, &f, err, errlen);
    if (rc != 0)
        return rc;
    if ((rc = mnv2_check(&f, path, err, errlen)) != 0) {
        st_free(&f);
        return rc;
    }
    if (!(m = calloc(1, sizeof *m))) {
        st_free(&f);
        return PV_ENOMEM;
    }
    const mnv2_block *b = mnv2_blocks();
    char k[96], n[96];
    rc = fold(&f, path, err, errlen, "Conv1/kernel", "bn_Conv1", 3, 3, 32, 0, &m->stem);
    for (int i = 0; i < MNV2_BLOCKS && rc == 0; i++) {
        if (b[i].expand != b[i].in) {
            snprintf(k, sizeof k, "%s_expand/kernel", b[i].prefix);
            snprintf(n, sizeof n, "%s_expand_BN", b[i].prefix);
            rc = fold(&f, path, err, errlen, k, n, 1, b[i].in, b[i].expand, 0, &m->expand[i]);
        }
        if (rc == 0) {
            snprintf(k, sizeof k, "%s_depthwise/depthwise_kernel", b[i].prefix);
            snprintf(n, sizeof n, "%s_depthwise_BN", b[i].prefix);
            rc = fold(&f, path, err, errlen, k, n, 3, b[i].expand, b[i].expand, 1, &m->dw[i]);
        }
        if (rc == 0) {
            snprintf(k, sizeof k, "%s_project/kernel", b[i].prefix);
            snprintf(n, sizeof n, "%s_project_BN", b[i].prefix);
            rc = fold(&f, path, err, errlen, k, n, 1, b[i].expand, b[i].out, 0, &m->project[i]);
        }
    }
    if (rc == 0)
        rc = fold(&f, path, err, errlen, "Conv_1/kernel", "Conv_1_bn", 1, 320, MNV2_FEATURES, 0,
                  &m->head);
    if (rc == 0 && hash)
        memcpy(hash, f.hash, 16);
    st_free(&f);
    if (rc != 0) {
        cnn_free(m);
        return rc;
    }
    *out = m;
    return PV_OK;
}

/* ---- work buffers ------------------------------------------------------------- */

/* The largest activation of one image: block 1's expansion, 112 x 112 x 96
 * (the stem's im2col rows, 112 x 112 x 27, are smaller). */
#define CNN_MAX_ACT ((size_t)112 * 112 * 96)

/* The scratch of a banded block (below) per thread: expanded lines, then
 * depthwise output rows, each at most BAND_FLOATS (>= 3 lines of the
 * widest expansion, 112 x 96). */
#define BAND_FLOATS ((size_t)96 * 1024)
#define SLOT_FLOATS (2 * BAND_FLOATS)

cnn_work *cnn_work_new(size_t max_batch)
{
    cnn_work *w = calloc(1, sizeof *w);
    if (!w || max_batch == 0)
        goto fail;
    w->max_batch = max_batch;
    w->threads = 1;
    w->a = pv_alloc_array(max_batch * CNN_MAX_ACT, sizeof(float));
    w->b = pv_alloc_array(max_batch * CNN_MAX_ACT, sizeof(float));
    w->c = pv_alloc_array(max_batch * CNN_MAX_ACT, sizeof(float));
    w->slots = pv_alloc_array(SLOT_FLOATS, sizeof(float));
    if (!w->a || !w->b || !w->c || !w->slots)
        goto fail;
    return w;
fail:
    cnn_work_free(w);
    return NULL;
}

int cnn_work_set_threads(cnn_work *w, unsigned threads)
{
    if (!w)
        return PV_EINVAL;
    const unsigned nt = par_threads(threads, PAR_MAX_THREADS);
    float *slots = pv_alloc_array((size_t)nt * SLOT_FLOATS, sizeof(float));
    if (!slots)
        return PV_ENOMEM;
    free(w->slots);
    w->slots = slots;
    w->threads = nt;
    return PV_OK;
}

void cnn_work_free(cnn_work *w)
{
    if (!w)
        return;
    free(w->a);
    free(w->b);
    free(w->c);
    free(w->slots);
    free(w);
}

/* Padding before (top/left) for a 3x3 kernel: 'same' at stride 1 pads one
 * on each side; Keras' stride-2 layers pad zero before and one after. */
static int pad_before(int stride) { return stride == 1 ? 1 : 0; }

/* Output side for input side h. */
static int out_side(int h, int stride) { return stride == 1 ? h : h / 2; }

/* ---- kernels: AVX-512, AVX2, portable --------------------------------------- */

static inline float relu6(float x) { return x < 0 ? 0 : x > 6 ? 6 : x; }

/* The sgemm's epilogue, in place on rows of c floats while they are still in
 * cache: o = o + b (+ res), then ReLU6 if act. */
static void epilogue_scalar(float *o, const float *res, const float *b, size_t rows, int c,
                            int act)
{
    for (size_t r = 0; r < rows; r++) {
        float *restrict v = o + r * (size_t)c;
        const float *restrict q = res ? res + r * (size_t)c : NULL;
        for (int j = 0; j < c; j++) {
            float y = v[j] + b[j] + (q ? q[j] : 0.0f);
            v[j] = act ? relu6(y) : y;
        }
    }
}

/* Depthwise 3x3 at stride s of images h x h x c, + bias, ReLU6, for output
 * rows [r0, r1) (row r is image r / oh, line r % oh). A band of one image
 * (cnn_block_banded) holds input lines from ylo on and output rows from rlo
 * on: input pixel (b, y, x) is in[((b h + y - ylo) h + x) c], output row r
 * starts at out[(r - rlo) oh c]. */
typedef struct dw_job {
    const float *in, *w, *b;
    float *out;
    int h, c, s, ylo;
    size_t rlo;
} dw_job;

static void dw_rows_scalar(const dw_job *j, size_t r0, size_t r1)
{
    const int c = j->c, h = j->h, s = j->s, oh = out_side(h, s), p = pad_before(s);
    for (size_t r = r0; r < r1; r++) {
        const size_t b = r / (size_t)oh;
        const int oy = (int)(r % (size_t)oh);
        for (int ox = 0; ox < oh; ox++) {
            float *restrict o = j->out + ((r - j->rlo) * (size_t)oh + (size_t)ox) * (size_t)c;
            memcpy(o, j->b, (size_t)c * sizeof(float));
            for (int ky = 0; ky < 3; ky++) {
                const int y = oy * s + ky - p;
                if (y < 0 || y >= h)
                    continue;
                for (int kx = 0; kx < 3; kx++) {
                    const int x = ox * s + kx - p;
                    if (x < 0 || x >= h)
                        continue;
                    const float *restrict iv =
                        j->in + ((b * (size_t)h + (size_t)(y - j->ylo)) * (size_t)h + (size_t)x) * (size_t)c;
                    const float *restrict wv = j->w + (size_t)(ky * 3 + kx) * (size_t)c;
                    for (int ch = 0; ch < c; ch++)
                        o[ch] += iv[ch] * wv[ch];
                }
            }
            for (int ch = 0; ch < c; ch++)
                o[ch] = relu6(o[ch]);
        }
    }
}

#if CNN_X86
/* ReLU6 as min(6, max(0, x)) in this operand order keeps a NaN (the
 * embedder reports NaN features as PV_ENUMERIC, it must not become 0). */
__attribute__((target("avx512f"))) static void epilogue_avx512(float *o, const float *res,
                                                               const float *b, size_t rows,
                                                               int c, int act)
{
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (size_t r = 0; r < rows; r++) {
        float *v = o + r * (size_t)c;
        const float *q = res ? res + r * (size_t)c : NULL;
        for (int j = 0; j < c; j += 16) {
            const __mmask16 k = c - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (c - j)) - 1);
            __m512 y = _mm512_add_ps(_mm512_maskz_loadu_ps(k, v + j), _mm512_maskz_loadu_ps(k, b + j));
            if (q)
                y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(k, q + j));
            if (act)
                y = _mm512_min_ps(six, _mm512_max_ps(zero, y));
            _mm512_mask_storeu_ps(v + j, k, y);
        }
    }
}

/* One output vector (16 channels, mask k; rp: the three input lines at
 * the block's first channel) of a depthwise row at ox, skipping the taps
 * that fall in the padding: the line's two ends. */
__attribute__((target("avx512f"))) static inline __m512
dw_px_avx512(const float *const rp[3], const int valid[3], const __m512 w[9], __m512 acc,
             __mmask16 k, int ox, int s, int p, int h, int c)
{
    for (int ky = 0; ky < 3; ky++) {
        if (!valid[ky])
            continue;
        for (int kx = 0; kx < 3; kx++) {
            const int x = ox * s + kx - p;
            if (x >= 0 && x < h)
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, rp[ky] + (size_t)x * (size_t)c),
                                      w[ky * 3 + kx], acc);
        }
    }
    return acc;
}

/* Channels in blocks of 16, the 9 taps' weights of a block held in
 * registers while the block walks along the output line. Inside the line
 * no tap is in the padding, so that loop has no test; a line above or
 * below the image is read as the middle line with zero weights. The
 * inputs are ReLU6 outputs, finite or NaN, so 0 x input adds nothing, and
 * a NaN there is in the middle line's own taps too: the same result. */
__attribute__((target("avx512f"))) static void dw_rows_avx512(const dw_job *j, size_t r0,
                                                              size_t r1)
{
    const int c = j->c, h = j->h, s = j->s, oh = out_side(h, s), p = pad_before(s);
    const int ox_lo = p > 0 ? 1 : 0, ox_end = (h - 3 + p) / s + 1;
    const int ox_hi = ox_end < oh ? ox_end : oh; /* interior: [ox_lo, ox_hi) */
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (size_t r = r0; r < r1; r++) {
        const size_t b = r / (size_t)oh;
        const int oy = (int)(r % (size_t)oh);
        const float *img = j->in + b * (size_t)h * (size_t)h * (size_t)c;
        float *orow = j->out + (r - j->rlo) * (size_t)oh * (size_t)c;
        const float *rp[3];
        int valid[3];
        for (int ky = 0; ky < 3; ky++) {
            const int y = oy * s + ky - p;
            valid[ky] = y >= 0 && y < h;
            /* the middle line (ky 1) is always in the image */
            rp[ky] = img + (size_t)((valid[ky] ? y : oy * s + 1 - p) - j->ylo) * (size_t)h * (size_t)c;
        }
        for (int cb = 0; cb < c; cb += 16) {
            const __mmask16 k = c - cb >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (c - cb)) - 1);
            __m512 w[9], wz[9];
            for (int t = 0; t < 9; t++) {
                w[t] = _mm512_maskz_loadu_ps(k, j->w + (size_t)t * (size_t)c + (size_t)cb);
                wz[t] = valid[t / 3] ? w[t] : zero;
            }
            const __m512 bias = _mm512_maskz_loadu_ps(k, j->b + cb);
            const float *q[3] = {rp[0] + cb, rp[1] + cb, rp[2] + cb};
            const float *q0 = q[0], *q1 = q[1], *q2 = q[2];
            float *o = orow + cb;
            for (int ox = 0; ox < ox_lo; ox++)
                _mm512_mask_storeu_ps(o + (size_t)ox * (size_t)c, k,
                    _mm512_min_ps(six, _mm512_max_ps(zero,
                        dw_px_avx512(q, valid, w, bias, k, ox, s, p, h, c))));
            for (int ox = ox_lo; ox < ox_hi; ox++) {
                const size_t x = (size_t)(ox * s - p) * (size_t)c, c1 = (size_t)c, c2 = 2 * (size_t)c;
                __m512 a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q0 + x), wz[0], bias);
                __m512 a1 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, q1 + x), wz[3]);
                __m512 a2 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, q2 + x), wz[6]);
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q0 + x + c1), wz[1], a0);
                a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q1 + x + c1), wz[4], a1);
                a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q2 + x + c1), wz[7], a2);
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q0 + x + c2), wz[2], a0);
                a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q1 + x + c2), wz[5], a1);
                a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q2 + x + c2), wz[8], a2);
                const __m512 acc = _mm512_add_ps(_mm512_add_ps(a0, a1), a2);
                _mm512_mask_storeu_ps(o + (size_t)ox * (size_t)c, k,
                                      _mm512_min_ps(six, _mm512_max_ps(zero, acc)));
            }
            for (int ox = ox_hi > ox_lo ? ox_hi : ox_lo; ox < oh; ox++)
                _mm512_mask_storeu_ps(o + (size_t)ox * (size_t)c, k,
                    _mm512_min_ps(six, _mm512_max_ps(zero,
                        dw_px_avx512(q, valid, w, bias, k, ox, s, p, h, c))));
        }
    }
}

__attribute__((target("avx2,fma"))) static void epilogue_avx2(float *o, const float *res,
                                                              const float *b, size_t rows,
                                                              int c, int act)
{
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    const int c8 = c & ~7;
    for (size_t r = 0; r < rows; r++) {
        float *v = o + r * (size_t)c;
        const float *q = res ? res + r * (size_t)c : NULL;
        for (int j = 0; j < c8; j += 8) {
            __m256 y = _mm256_add_ps(_mm256_loadu_ps(v + j), _mm256_loadu_ps(b + j));
            if (q)
                y = _mm256_add_ps(y, _mm256_loadu_ps(q + j));
            if (act)
                y = _mm256_min_ps(six, _mm256_max_ps(zero, y));
            _mm256_storeu_ps(v + j, y);
        }
        if (c8 < c) /* no layer has such a width; kept for any c */
            epilogue_scalar(v + c8, q ? q + c8 : NULL, b + c8, 1, c - c8, act);
    }
}

__attribute__((target("avx2,fma"))) static void dw_rows_avx2(const dw_job *j, size_t r0,
                                                             size_t r1)
{
    const int c = j->c, h = j->h, s = j->s, oh = out_side(h, s), p = pad_before(s);
    if (c % 8 != 0) { /* every MobileNetV2 width is a multiple of 8 */
        dw_rows_scalar(j, r0, r1);
        return;
    }
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    for (size_t r = r0; r < r1; r++) {
        const size_t b = r / (size_t)oh;
        const int oy = (int)(r % (size_t)oh);
        const float *img = j->in + b * (size_t)h * (size_t)h * (size_t)c;
        float *orow = j->out + (r - j->rlo) * (size_t)oh * (size_t)c;
        for (int cb = 0; cb < c; cb += 8) {
            __m256 w[9];
            for (int t = 0; t < 9; t++)
                w[t] = _mm256_loadu_ps(j->w + (size_t)t * (size_t)c + (size_t)cb);
            const __m256 bias = _mm256_loadu_ps(j->b + cb);
            for (int ox = 0; ox < oh; ox++) {
                __m256 acc = bias;
                for (int ky = 0; ky < 3; ky++) {
                    const int y = oy * s + ky - p;
                    if (y < 0 || y >= h)
                        continue;
                    const float *row = img + (size_t)(y - j->ylo) * (size_t)h * (size_t)c + (size_t)cb;
                    for (int kx = 0; kx < 3; kx++) {
                        const int x = ox * s + kx - p;
                        if (x < 0 || x >= h)
                            continue;
                        acc = _mm256_fmadd_ps(_mm256_loadu_ps(row + (size_t)x * (size_t)c),
                                              w[ky * 3 + kx], acc);
                    }
                }
                _mm256_storeu_ps(orow + (size_t)ox * (size_t)c + (size_t)cb,
                                 _mm256_min_ps(six, _mm256_max_ps(zero, acc)));
            }
        }
    }
}
#endif /* CNN_X86 */

static void epilogue(float *o, const float *res, const float *b, size_t rows, int c, int act)
{
#if CNN_X86
    const vec_isa isa = vec_isa_active();
    if (isa == VEC_AVX512) {
        epilogue_avx512(o, res, b, rows, c, act);
        return;
    }
    if (isa == VEC_AVX2) {
        epilogue_avx2(o, res, b, rows, c, act);
        return;
    }
#endif
    epilogue_scalar(o, res, b, rows, c, act);
}

static void dw_rows(void *ctx, size_t r0, size_t r1)
{
    const dw_job *j = ctx;
#if CNN_X86
    const vec_isa isa = vec_isa_active();
    if (isa == VEC_AVX512) {
        dw_rows_avx512(j, r0, r1);
        return;
    }
    if (isa == VEC_AVX2) {
        dw_rows_avx2(j, r0, r1);
        return;
    }
#endif
    dw_rows_scalar(j, r0, r1);
}

/* ---- layers ------------------------------------------------------------------- */

/* Rows per sgemm call: the output block (1024 x 96 floats, 384 KB, in the
 * large early layers; the 960- and 1280-wide ones have 49 rows an image)
 * is still in L2 when the epilogue adds the bias, the residual and clamps
 * it, instead of three passes over a tensor of tens of MB. */
#define GEMM_ROWS 1024

/* out (rows x cout) = in (rows x K) * w + b (+ res), then ReLU6 if act; K is
 * cin for a 1x1 convolution, 27 for the stem, whose im2col rows are built
 * block by block into col (col row r for output pixel r) from the images
 * img (side h, 3 channels). */
typedef struct gemm_job {
    const layer *L;
    const float *in, *res, *img;
    float *out, *col;
    int K, act, h;
} gemm_job;

/* The stem's im2col rows [r0, r1) (row r: output pixel r of the batch). */
static void im2col_rows(const gemm_job *j, size_t r0, size_t r1)
{
    const int h = j->h, oh = out_side(h, 2), p = pad_before(2);
    for (size_t r = r0; r < r1; r++) {
        const size_t b = r / ((size_t)oh * (size_t)oh);
        const int oy = (int)(r / (size_t)oh % (size_t)oh), ox = (int)(r % (size_t)oh);
        float *row = j->col + r * 27;
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                const int y = oy * 2 + ky - p, x = ox * 2 + kx - p;
                float *dst = row + (ky * 3 + kx) * 3;
                if (y < 0 || y >= h || x < 0 || x >= h) {
                    dst[0] = dst[1] = dst[2] = 0;
                } else {
                    const float *s = j->img + ((b * (size_t)h + (size_t)y) * (size_t)h + (size_t)x) * 3;
                    dst[0] = s[0];
                    dst[1] = s[1];
                    dst[2] = s[2];
                }
            }
    }
}

static void gemm_rows(void *ctx, size_t r0, size_t r1)
{
    const gemm_job *j = ctx;
    const int cout = j->L->cout;
    for (size_t r = r0; r < r1; r += GEMM_ROWS) {
        const size_t m = r1 - r < GEMM_ROWS ? r1 - r : GEMM_ROWS;
        const float *a = j->in + r * (size_t)j->K;
        if (j->col) {
            im2col_rows(j, r, r + m);
            a = j->col + r * (size_t)j->K;
        }
        float *o = j->out + r * (size_t)cout;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, cout, j->K, 1.0f, a, j->K,
                    j->L->w, cout, 0.0f, o, cout);
        epilogue(o, j->res ? j->res + r * (size_t)cout : NULL, j->L->b, m, cout, j->act);
    }
}

static void conv1x1(const layer *L, const float *in, size_t rows, float *out, const float *res,
                    int act)
{
    const gemm_job j = {.L = L, .in = in, .res = res, .out = out, .K = L->cin, .act = act};
    gemm_rows((void *)&j, 0, rows);
}

static void depthwise(const layer *L, const float *in, size_t n, int h, int s, float *out)
{
    const dw_job j = {.in = in, .w = L->w, .b = L->b, .out = out, .h = h, .c = L->cout, .s = s};
    dw_rows((void *)&j, 0, n * (size_t)out_side(h, s));
}

/* The activations of one stretch of images: three ping-pong buffers, each
 * image's tensor of a layer at (image) x (its size) in one of them. */
typedef struct acts {
    float *x, *t, *u;
} acts;

/* Block i on n images of side h, a layer at a time; the block's output
 * ends in a->x. */
static void block(const cnn *m, int i, acts *a, size_t n, int h)
{
    const mnv2_block *bl = &mnv2_blocks()[i];
    const int oh = out_side(h, bl->stride);
    const size_t hw = (size_t)h * (size_t)h, ohw = (size_t)oh * (size_t)oh;
    const float *x = a->x, *e = x;
    if (m->expand[i].w) {
        float *t = a->t;
        conv1x1(&m->expand[i], x, n * hw, t, NULL, 1);
        e = t;
    }
    float *u = a->u;
    depthwise(&m->dw[i], e, n, h, bl->stride, u);
    /* t is free once the depthwise output is in u (and never held x) */
    const int residual = bl->stride == 1 && bl->in == bl->out;
    conv1x1(&m->project[i], u, n * ohw, a->t, residual ? x : NULL, 0);
    float *old = a->x;
    a->x = a->t;
    a->t = old;
}

/* ---- banded blocks ------------------------------------------------------------ */

/* The early blocks (up to 112 x 112 x 96, 4.8 MB an image) run one image at
 * a time by bands of output rows, so the expanded tensor never exists
 * whole: a band expands only the input lines its depthwise reads (keeping
 * the lines it shares with the band before), the depthwise writes a band
 * buffer, and the projection reads it back, all within a slot of scratch
 * (2 x BAND_FLOATS, 768 KB) that stays in L2. From block BATCHED_FROM on
 * (14 x 14 and smaller) the whole batch goes through each layer, so the
 * sgemm calls get more rows than one image's 196 or 49. */
#define BATCHED_FROM 6

typedef struct band_job {
    const cnn *m;
    int i, h;           /* block, input side */
    const float *x;     /* the image's input */
    float *y, *slots;   /* its output; scratch, SLOT_FLOATS per worker */
    unsigned nt;        /* workers, each a share of the output rows */
} band_job;

/* Output rows [y0, y1) of block j->i for one image, with the scratch slot. */
static void band_rows(const band_job *j, size_t y0, size_t y1, float *slot)
{
    const cnn *m = j->m;
    const int i = j->i, h = j->h;
    const mnv2_block *bl = &mnv2_blocks()[i];
    const int s = bl->stride, oh = out_side(h, s), p = pad_before(s), c = bl->expand;
    const size_t line = (size_t)h * (size_t)c, in_line = (size_t)h * (size_t)bl->in;
    const size_t rows_in = BAND_FLOATS / line; /* >= 3 */
    const size_t R = s == 1 ? rows_in - 2 : (rows_in - 3) / 2 + 1;
    const int residual = s == 1 && bl->in == bl->out;
    float *ebuf = slot, *dbuf = slot + BAND_FLOATS;
    int have_lo = 0, have_n = 0; /* expanded lines in ebuf */
    for (size_t r0 = y0; r0 < y1; r0 += R) {
        const size_t r = y1 - r0 < R ? y1 - r0 : R;
        int lo = (int)r0 * s - p, hi = (int)(r0 + r - 1) * s - p + 3;
        lo = lo < 0 ? 0 : lo;
        hi = hi > h ? h : hi;
        const float *e = j->x + (size_t)lo * line; /* no expansion: the input itself */
        if (m->expand[i].w) {
            int keep = 0;
            if (have_n > 0 && lo >= have_lo && lo < have_lo + have_n) {
                keep = have_lo + have_n - lo;
                memmove(ebuf, ebuf + (size_t)(lo - have_lo) * line,
                        (size_t)keep * line * sizeof(float));
            }
            const gemm_job ej = {.L = &m->expand[i], .in = j->x + (size_t)(lo + keep) * in_line,
                                 .out = ebuf + (size_t)keep * line, .K = bl->in, .act = 1};
            gemm_rows((void *)&ej, 0, (size_t)(hi - lo - keep) * (size_t)h);
            have_lo = lo;
            have_n = hi - lo;
            e = ebuf;
        }
        dw_job dj = {.in = e, .w = m->dw[i].w, .b = m->dw[i].b, .out = dbuf, .h = h, .c = c,
                     .s = s, .ylo = lo, .rlo = r0};
        dw_rows(&dj, r0, r0 + r);
        const size_t orow = r0 * (size_t)oh;
        const gemm_job pj = {.L = &m->project[i], .in = dbuf,
                             .res = residual ? j->x + orow * (size_t)bl->in : NULL,
                             .out = j->y + orow * (size_t)bl->out, .K = c, .act = 0};
        gemm_rows((void *)&pj, 0, r * (size_t)oh);
    }
}

/* Worker t of j->nt: its share of the output rows, its own slot. */
static void band_worker(void *ctx, size_t t, size_t t1)
{
    const band_job *j = ctx;
    const size_t oh = (size_t)out_side(j->h, mnv2_blocks()[j->i].stride);
    (void)t1;
    band_rows(j, oh * t / j->nt, oh * (t + 1) / j->nt, j->slots + t * SLOT_FLOATS);
}

static void block_banded(band_job *j)
{
    if (j->nt <= 1)
        band_rows(j, 0, (size_t)out_side(j->h, mnv2_blocks()[j->i].stride), j->slots);
    else
        par_run(j->nt, j->nt, band_worker, j);
}

/* ---- the network ---------------------------------------------------------------- */

typedef struct fwd_job {
    const cnn *m;
    const float *in;
    float *a, *b, *c, *out, *slots;
    size_t n;
    unsigned nt; /* image workers, or (fewer images than threads) workers per layer */
} fwd_job;

/* The forward pass of images [lo, hi) with scratch slots from slots on; nt
 * workers split the rows of the stem and of each banded block (one image
 * at a time), and the small late layers run on this thread: par_run starts
 * threads per call (tens of microseconds), and splitting those layers cost
 * more than it saved (batch 1, 2 threads: 146 images/s split, 159 not). The images' tensors live in their own share of the
 * buffers (from image lo's CNN_MAX_ACT on): an image worker may run block
 * 13 while another still runs block 2, and the layers' sizes differ, so
 * one layout over the whole batch would let them overlap. Images never
 * mix: every layer maps an image's rows to the same image's rows, so any
 * split over images computes the same numbers. */
static void forward_range(const fwd_job *f, size_t lo, size_t hi, float *slots, unsigned nt)
{
    const cnn *m = f->m;
    const size_t n = hi - lo;
    const int h0 = out_side(CNN_SIDE, 2);
    const size_t hw0 = (size_t)h0 * (size_t)h0;
    const float *in = f->in + lo * (size_t)CNN_SIDE * CNN_SIDE * 3;
    float *ba = f->a + lo * CNN_MAX_ACT, *bb = f->b + lo * CNN_MAX_ACT, *bc = f->c + lo * CNN_MAX_ACT;
    int h = h0;
    acts a = {ba, bb, bc};
    for (size_t j = 0; j < n; j++) {
        const gemm_job st = {.L = &m->stem, .img = in + j * (size_t)CNN_SIDE * CNN_SIDE * 3,
                             .col = bc + j * hw0 * 27, .out = ba + j * hw0 * 32, .K = 27,
                             .act = 1, .h = CNN_SIDE};
        par_run(nt, hw0, gemm_rows, (void *)&st);
        float *x = ba, *y = bb; /* the same rotation for every image */
        h = h0;
        for (int i = 0; i < BATCHED_FROM; i++) {
            const mnv2_block *bl = &mnv2_blocks()[i];
            const int oh = out_side(h, bl->stride);
            band_job bj = {.m = m, .i = i, .h = h, .nt = nt, .slots = slots,
                           .x = x + j * (size_t)h * (size_t)h * (size_t)bl->in,
                           .y = y + j * (size_t)oh * (size_t)oh * (size_t)bl->out};
            block_banded(&bj);
            float *old = x;
            x = y;
            y = old;
            h = oh;
        }
        a = (acts){x, y, bc};
    }
    for (int i = BATCHED_FROM; i < MNV2_BLOCKS; i++) {
        block(m, i, &a, n, h);
        h = out_side(h, mnv2_blocks()[i].stride);
    }
    const size_t hw = (size_t)h * (size_t)h;
    conv1x1(&m->head, a.x, n * hw, a.t, NULL, 1);
    for (size_t b = 0; b < n; b++) { /* global average pool */
        float *o = f->out + (lo + b) * MNV2_FEATURES;
        memset(o, 0, MNV2_FEATURES * sizeof(float));
        for (size_t p = 0; p < hw; p++) {
            const float *v = a.t + (b * hw + p) * MNV2_FEATURES;
            for (int ch = 0; ch < MNV2_FEATURES; ch++)
                o[ch] += v[ch];
        }
        for (int ch = 0; ch < MNV2_FEATURES; ch++)
            o[ch] /= (float)hw;
    }
}

/* Image worker t of f->nt: its share of the images, its own slot. */
static void image_worker(void *ctx, size_t t, size_t t1)
{
    const fwd_job *f = ctx;
    (void)t1;
    forward_range(f, f->n * t / f->nt, f->n * (t + 1) / f->nt, f->slots + t * SLOT_FLOATS, 1);
}

int cnn_forward(const cnn *m, cnn_work *w, const float *in, size_t n, float *out)
{
    if (!m || !w || !in || !out || n == 0 || n > w->max_batch)
        return PV_EINVAL;
    fwd_job f = {.m = m, .in = in, .a = w->a, .b = w->b, .c = w->c, .out = out,
                 .slots = w->slots, .n = n, .nt = w->threads};
    if (n >= w->threads) /* a share of the images per thread: no synchronisation */
        par_run(w->threads, w->threads, image_worker, &f);
    else /* fewer images than threads: each layer's rows are split instead */
        forward_range(&f, 0, n, w->slots, w->threads);
    return PV_OK;
}
