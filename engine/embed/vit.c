/*
 * vit.c - the transformer encoder (see vit.h).
 *
 * Buffers are allocated per call, sized by the batch: for CLIP ViT-B/32 at
 * 32 images (1,600 rows) about 45 MB, the MLP's hidden activations being
 * the largest (rows x ff floats).
 */
#include "vit.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"

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

/* out[rows, dout] = in[rows, din] W^T + b, W [dout, din] row-major. */
static void linear(const float *in, size_t rows, int din, const float *w, const float *b,
                   int dout, float *out)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, dout, din, 1.0f, in, din, w,
                din, 0.0f, out, dout);
    if (b)
        for (size_t r = 0; r < rows; r++) {
            float *o = out + r * (size_t)dout;
            for (int j = 0; j < dout; j++)
                o[j] += b[j];
        }
}

static void activate(float *x, size_t n, int act)
{
    if (act == VIT_QUICK_GELU) {
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
    } else {
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
    }
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
        for (size_t j = 0; j < m; j++)
            sum += (r[j] = expf(r[j] - mx));
        const float inv = 1.0f / sum;
        for (size_t j = 0; j < m; j++)
            r[j] *= inv;
        for (size_t j = m; j < n; j++)
            r[j] = 0;
    }
}

int vit_encode(const vit_encoder *e, float *x, size_t nseq, size_t t, int causal,
               int last_first_only)
{
    const int d = e->d, hd = e->d / e->heads;
    const size_t rows = nseq * t, dd = (size_t)d;
    const float scale = 1.0f / sqrtf((float)hd);
    assert(!(causal && last_first_only) && e->d % e->heads == 0);
    float *h = pv_alloc_array(rows, dd * sizeof(float));
    float *q = pv_alloc_array(rows, dd * sizeof(float));
    float *k = pv_alloc_array(rows, dd * sizeof(float));
    float *v = pv_alloc_array(rows, dd * sizeof(float));
    float *ctx = pv_alloc_array(rows, dd * sizeof(float));
    float *f = pv_alloc_array(rows, (size_t)e->ff * sizeof(float));
    float *s = pv_alloc_array(t, t * sizeof(float));
    float *xq = last_first_only ? pv_alloc_array(nseq, dd * sizeof(float)) : NULL;
    int rc = PV_ENOMEM;
    if (!h || !q || !k || !v || !ctx || !f || !s || (last_first_only && !xq))
        goto done;
    for (int l = 0; l < e->nlayers; l++) {
        const vit_layer *L = &e->layers[l];
        const int first_only = last_first_only && l == e->nlayers - 1;
        const size_t nq = first_only ? 1 : t; /* query rows per sequence */
        const size_t qrows = nseq * nq;
        float *xr = x; /* the rows that go on: all, or each sequence's first */
        for (size_t r = 0; r < rows; r++)
            vit_layernorm(x + r * dd, dd, L->ln1_w, L->ln1_b, e->eps, h + r * dd);
        linear(h, rows, d, L->k_w, L->k_b, d, k);
        linear(h, rows, d, L->v_w, L->v_b, d, v);
        if (first_only) {
            for (size_t i = 0; i < nseq; i++) {
                memcpy(xq + i * dd, x + i * t * dd, dd * sizeof(float));
                memcpy(h + i * dd, h + i * t * dd, dd * sizeof(float));
            }
            xr = xq;
        }
        linear(h, qrows, d, L->q_w, L->q_b, d, q);
        for (size_t i = 0; i < nseq; i++)
            for (int hh = 0; hh < e->heads; hh++) {
                const size_t off = (size_t)hh * (size_t)hd;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)t, hd, scale,
                            q + i * nq * dd + off, d, k + i * t * dd + off, d, 0.0f, s, (int)t);
                softmax_rows(s, nq, t, causal);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, hd, (int)t, 1.0f,
                            s, (int)t, v + i * t * dd + off, d, 0.0f, ctx + i * nq * dd + off, d);
            }
        linear(ctx, qrows, d, L->o_w, L->o_b, d, q);
        residual(xr, q, qrows, d, L->ls1);
        for (size_t r = 0; r < qrows; r++)
            vit_layernorm(xr + r * dd, dd, L->ln2_w, L->ln2_b, e->eps, h + r * dd);
        linear(h, qrows, d, L->fc1_w, L->fc1_b, e->ff, f);
        activate(f, qrows * (size_t)e->ff, e->act);
        linear(f, qrows, e->ff, L->fc2_w, L->fc2_b, d, q);
        residual(xr, q, qrows, d, L->ls2);
        if (first_only)
            for (size_t i = 0; i < nseq; i++)
                memcpy(x + i * t * dd, xq + i * dd, dd * sizeof(float));
    }
    rc = PV_OK;
done:
    free(h);
    free(q);
    free(k);
    free(v);
    free(ctx);
    free(f);
    free(s);
    free(xq);
    return rc;
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
