/*
 * cnn.c - MobileNetV2 forward pass (see cnn.h).
 *
 * Tensors are NHWC, so a batch [n, h, w, c] is also a matrix of n*h*w rows
 * and c columns: a 1x1 convolution is one sgemm of that matrix with the
 * kernel (Keras stores it as [1, 1, cin, cout], already the cin x cout
 * matrix). The 3x3 stem convolution builds the im2col rows (kh, kw, cin
 * order, matching Keras' HWIO kernel) and multiplies them the same way. The
 * depthwise 3x3 convolutions run direct, with the channel loop innermost
 * and contiguous so the compiler vectorizes it.
 */
#include "cnn.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"

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
    float *a, *b, *c; /* ping-pong activations, each the largest tensor */
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

cnn_work *cnn_work_new(size_t max_batch)
{
    cnn_work *w = calloc(1, sizeof *w);
    if (!w || max_batch == 0)
        goto fail;
    w->max_batch = max_batch;
    w->a = pv_alloc_array(max_batch * CNN_MAX_ACT, sizeof(float));
    w->b = pv_alloc_array(max_batch * CNN_MAX_ACT, sizeof(float));
    w->c = pv_alloc_array(max_batch * CNN_MAX_ACT, sizeof(float));
    if (!w->a || !w->b || !w->c)
        goto fail;
    return w;
fail:
    cnn_work_free(w);
    return NULL;
}

void cnn_work_free(cnn_work *w)
{
    if (!w)
        return;
    free(w->a);
    free(w->b);
    free(w->c);
    free(w);
}

/* ---- layers ------------------------------------------------------------------- */

static inline float relu6(float x) { return x < 0 ? 0 : x > 6 ? 6 : x; }

/* out (rows x cout) = in (rows x K) * w + b, then ReLU6 if act; K is
 * cin for a 1x1 convolution, k*k*cin for im2col rows. */
static void gemm_layer(const layer *L, const float *in, size_t rows, int K, float *out, int act)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(out + r * (size_t)L->cout, L->b, (size_t)L->cout * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, L->cout, K, 1.0f, in, K,
                L->w, L->cout, 1.0f, out, L->cout);
    if (act)
        for (size_t i = 0; i < rows * (size_t)L->cout; i++)
            out[i] = relu6(out[i]);
}

static void conv1x1(const layer *L, const float *in, size_t rows, float *out, int act)
{
    gemm_layer(L, in, rows, L->cin, out, act);
}

/* Padding before (top/left) for a 3x3 kernel: 'same' at stride 1 pads one
 * on each side; Keras' stride-2 layers pad zero before and one after. */
static int pad_before(int stride) { return stride == 1 ? 1 : 0; }

/* Output side for input side h. */
static int out_side(int h, int stride) { return stride == 1 ? h : h / 2; }

/* The stem: 3x3 stride 2 convolution of n images h x h x 3, im2col into
 * col, then ReLU6. */
static void stem(const layer *L, const float *in, size_t n, int h, float *col, float *out)
{
    const int oh = out_side(h, 2), p = pad_before(2);
    const size_t K = 27;
    for (size_t b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < oh; ox++) {
                float *row = col + ((b * (size_t)oh + (size_t)oy) * (size_t)oh + (size_t)ox) * K;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        const int y = oy * 2 + ky - p, x = ox * 2 + kx - p;
                        float *dst = row + (ky * 3 + kx) * 3;
                        if (y < 0 || y >= h || x < 0 || x >= h) {
                            dst[0] = dst[1] = dst[2] = 0;
                        } else {
                            const float *s = in + ((b * (size_t)h + (size_t)y) * (size_t)h + (size_t)x) * 3;
                            dst[0] = s[0];
                            dst[1] = s[1];
                            dst[2] = s[2];
                        }
                    }
            }
    gemm_layer(L, col, n * (size_t)oh * (size_t)oh, (int)K, out, 1);
}

/* Depthwise 3x3 of n images h x h x c at stride s, + bias, ReLU6. */
static void depthwise(const layer *L, const float *in, size_t n, int h, int s, float *out)
{
    const int c = L->cout, oh = out_side(h, s), p = pad_before(s);
    for (size_t b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < oh; ox++) {
                float *restrict o = out + ((b * (size_t)oh + (size_t)oy) * (size_t)oh + (size_t)ox) * (size_t)c;
                memcpy(o, L->b, (size_t)c * sizeof(float));
                for (int ky = 0; ky < 3; ky++) {
                    const int y = oy * s + ky - p;
                    if (y < 0 || y >= h)
                        continue;
                    for (int kx = 0; kx < 3; kx++) {
                        const int x = ox * s + kx - p;
                        if (x < 0 || x >= h)
                            continue;
                        const float *restrict iv =
                            in + ((b * (size_t)h + (size_t)y) * (size_t)h + (size_t)x) * (size_t)c;
                        const float *restrict wv = L->w + (size_t)(ky * 3 + kx) * (size_t)c;
                        for (int ch = 0; ch < c; ch++)
                            o[ch] += iv[ch] * wv[ch];
                    }
                }
                for (int ch = 0; ch < c; ch++)
                    o[ch] = relu6(o[ch]);
            }
}

int cnn_forward(const cnn *m, cnn_work *w, const float *in, size_t n, float *out)
{
    if (!m || !w || !in || !out || n == 0 || n > w->max_batch)
        return PV_EINVAL;
    const mnv2_block *bl = mnv2_blocks();
    float *x = w->a, *t = w->b, *u = w->c;
    int h = CNN_SIDE;
    stem(&m->stem, in, n, h, w->c, x);
    h = out_side(h, 2);
    for (int i = 0; i < MNV2_BLOCKS; i++) {
        const size_t rows = n * (size_t)h * (size_t)h;
        const float *e = x;
        if (m->expand[i].w) {
            conv1x1(&m->expand[i], x, rows, t, 1);
            e = t;
        }
        depthwise(&m->dw[i], e, n, h, bl[i].stride, u);
        const int oh = out_side(h, bl[i].stride);
        const size_t orows = n * (size_t)oh * (size_t)oh;
        /* t is free once the depthwise output is in u (and never held x) */
        float *dst = t;
        conv1x1(&m->project[i], u, orows, dst, 0);
        if (bl[i].stride == 1 && bl[i].in == bl[i].out)
            for (size_t k = 0; k < orows * (size_t)bl[i].out; k++)
                dst[k] += x[k];
        /* the block's output becomes the next input */
        float *old = x;
        x = dst;
        t = old;
        h = oh;
    }
    const size_t rows = n * (size_t)h * (size_t)h;
    conv1x1(&m->head, x, rows, t, 1);
    for (size_t b = 0; b < n; b++) {
        float *o = out + b * MNV2_FEATURES;
        memset(o, 0, MNV2_FEATURES * sizeof(float));
        for (int p = 0; p < h * h; p++) {
            const float *v = t + (b * (size_t)h * (size_t)h + (size_t)p) * MNV2_FEATURES;
            for (int ch = 0; ch < MNV2_FEATURES; ch++)
                o[ch] += v[ch];
        }
        for (int ch = 0; ch < MNV2_FEATURES; ch++)
            o[ch] /= (float)(h * h);
    }
    return PV_OK;
}
