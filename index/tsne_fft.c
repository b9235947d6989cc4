/*
 * tsne_fft.c - the t-SNE repulsion in 2-D by FFT-accelerated interpolation
 * (index room; Linderman, Rachh, Hoskins, Steinerberger, Kluger 2019,
 * "Fast interpolation-based t-SNE", FIt-SNE, in openTSNE's form; see
 * docs/research/issue15-maps.md section 2.2).
 *
 * The square [lo, hi]^2 around the layout is cut into nb x nb boxes with 3
 * equispaced interpolation nodes per box and axis (at 1/6, 1/2, 5/6 of the
 * box), which together form one equispaced grid of M = 3 nb nodes per axis,
 * spacing h. Each point spreads four charges (1, y1, y2, |y|^2) onto the 3
 * x 3 nodes of its box with Lagrange weights; the charges are convolved
 * with the kernel K(r) = 1 / (1 + r^2)^2 between nodes; the potentials are
 * interpolated back with the same weights. Then, for dof 1,
 *   Z_i = (1 + |y_i|^2) phi0 - 2 y_i . (phi1, phi2) + phi3 - 1
 *       = sum_{j != i} 1 / (1 + d_ij^2),
 *   neg_i = y_i phi0 - (phi1, phi2) = sum_j w_ij^2 (y_i - y_j).
 * The convolution is a circulant embedding of side L = 2M, done with the
 * FFT: K's spectrum (real, K being even), the four charge
 * grids packed two to a complex array (re and im: the kernel is real, so
 * the two convolutions do not mix). Box width: 1.5 layout units (openTSNE's
 * ints_in_interval is 1; see FFT_BOX_WIDTH), so nb = span / 1.5, at least
 * FFT_MIN_BOXES (then narrower
 * boxes) and at most FFT_MAX_BOXES (then wider ones); a width other than
 * 1 is rounded up to a power of 2^(1/8), and nb up to the next 2^a 3^b,
 * so L = 6 nb factors into 4, 2 and 3 and the kernel's spectrum is
 * reused until the layout outgrows its grid (most iterations reuse it).
 *
 * The FFT is our own Stockham autosort transform (radix 4, 2, 3;
 * decimation in frequency, natural order in and out; Van Loan,
 * "Computational Frameworks for the Fast Fourier Transform", 1.7). A 2-D
 * transform is rows, a blocked transpose, rows again, leaving the
 * spectrum transposed: the kernel is symmetric in its two axes, so the
 * product needs no transpose back, and the inverse undoes it. Rows that
 * are zero on the way in (the padding) or not wanted on the way out are
 * skipped. (Transforming tiles of 8 interleaved rows, so the butterflies
 * run over contiguous values, measured no faster.) Threads split rows and
 * transpose blocks; spreading runs one thread per packed grid in point
 * order; every result is independent of the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "pixvec.h"
#include "pv_util.h"
#include "tsne_int.h"

/* openTSNE's boxes are 1 layout unit wide, at least 50 across. Boxes of
 * 1.5 units, at least 25 across, cut the FFT's work by 2.25 (and by 4 while
 * the layout is small). Measured on Fashion-MNIST (pixels, 2 cores, whole
 * `pixvec map`): 10,000 images took 7.2 s instead of 16.0 s (2 units: 5.1
 * s), trustworthiness (k = 10) 0.9826 vs 0.9829 (2 units: 0.9818), the
 * fraction of 10 nearest neighbours kept 0.375 vs 0.385 (2 units: 0.363);
 * 5,000 took 6.2 s instead of 14.0 s, 0.9747 vs 0.9749. The price is a
 * coarser repulsion: on test_tsne's 400-point layout the gradient's
 * relative error is 0.12 against the exact one (1 unit: 0.03; 2 units:
 * 0.34), which the layouts above do not show. */
#define FFT_MIN_BOXES 25u
#define FFT_MAX_BOXES 256u
#define FFT_MAX_STAGES 48
#define FFT_BOX_WIDTH 1.5

typedef struct cpx {
    double r, i;
} cpx;

typedef struct fft_plan {
    uint32_t n, nst;
    uint8_t radix[FFT_MAX_STAGES];
    size_t twoff[FFT_MAX_STAGES];
    cpx *tw;
} fft_plan;

struct tsne_fft_ws {
    uint32_t L;          /* grid side of the buffers and the plan */
    uint32_t kL;         /* khat holds the kernel of side kL, box width kbw */
    double kbw;
    fft_plan plan;
    cpx *a, *b, *scr;    /* L x L each */
    double *khat;        /* L x L */
    size_t ncap;
    uint32_t *node;      /* per point: first node gx, gy */
    double *wt;          /* per point: Lagrange weights x[3], y[3] */
};

static void plan_free(fft_plan *p)
{
    free(p->tw);
    memset(p, 0, sizeof *p);
}

static int plan_make(fft_plan *p, uint32_t n)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    uint32_t len = n;
    size_t tot = 0;
    while (len > 1) {
        uint8_t r = len % 4 == 0 ? 4 : len % 2 == 0 ? 2 : len % 3 == 0 ? 3 : 0;
        if (r == 0 || p->nst >= FFT_MAX_STAGES)
            return PV_EINVAL;
        p->radix[p->nst] = r;
        p->twoff[p->nst] = tot;
        tot += (size_t)(len / r) * (r - 1u);
        p->nst++;
        len /= r;
    }
    p->tw = pv_alloc_array(tot ? tot : 1, sizeof *p->tw);
    if (!p->tw)
        return PV_ENOMEM;
    len = n;
    for (uint32_t s = 0; s < p->nst; s++) {
        uint32_t r = p->radix[s], m = len / r;
        for (uint32_t q = 0; q < m; q++)
            for (uint32_t t = 1; t < r; t++) {
                double a = -2.0 * M_PI * (double)q * t / len;
                p->tw[p->twoff[s] + (size_t)q * (r - 1) + t - 1] = (cpx){cos(a), sin(a)};
            }
        len = m;
    }
    return 0;
}

static inline cpx cmul(cpx a, cpx b)
{
    return (cpx){a.r * b.r - a.i * b.i, a.r * b.i + a.i * b.r};
}

/* The DFT (inv: unnormalised inverse) of the B interleaved sequences of
 * x (element e of sequence c at x[e B + c]) for the sequences c in
 * [c0, c1); y is scratch of the same layout. Natural order in and out. */
static void fft_run(const fft_plan *p, cpx *x, cpx *y, size_t B, size_t c0,
                    size_t c1, int inv)
{
    size_t len = p->n, s = B;
    cpx *src = x, *dst = y;
    const double h3 = 0.86602540378443864676 * (inv ? 1 : -1);
    for (uint32_t st = 0; st < p->nst; st++) {
        uint32_t r = p->radix[st];
        size_t m = len / r;
        const cpx *tw = p->tw + p->twoff[st];
        for (size_t q = 0; q < m; q++) {
            cpx w1 = tw[q * (r - 1)], w2 = {1, 0}, w3 = {1, 0};
            if (r > 2)
                w2 = tw[q * (r - 1) + 1];
            if (r > 3)
                w3 = tw[q * (r - 1) + 2];
            if (inv) {
                w1.i = -w1.i;
                w2.i = -w2.i;
                w3.i = -w3.i;
            }
            for (size_t qh = 0; qh < s; qh += B) {
                const cpx *in = src + qh + s * q;
                cpx *out = dst + qh + s * r * q;
                if (r == 2) {
                    for (size_t c = c0; c < c1; c++) {
                        cpx a0 = in[c], a1 = in[c + s * m];
                        out[c] = (cpx){a0.r + a1.r, a0.i + a1.i};
                        out[c + s] = cmul((cpx){a0.r - a1.r, a0.i - a1.i}, w1);
                    }
                } else if (r == 4) {
                    for (size_t c = c0; c < c1; c++) {
                        cpx a0 = in[c], a1 = in[c + s * m], a2 = in[c + 2 * s * m],
                            a3 = in[c + 3 * s * m];
                        cpx s02 = {a0.r + a2.r, a0.i + a2.i}, d02 = {a0.r - a2.r, a0.i - a2.i};
                        cpx s13 = {a1.r + a3.r, a1.i + a3.i}, d13 = {a1.r - a3.r, a1.i - a3.i};
                        /* forward: -i d13; inverse: +i d13 */
                        cpx jd = inv ? (cpx){-d13.i, d13.r} : (cpx){d13.i, -d13.r};
                        out[c] = (cpx){s02.r + s13.r, s02.i + s13.i};
                        out[c + s] = cmul((cpx){d02.r + jd.r, d02.i + jd.i}, w1);
                        out[c + 2 * s] = cmul((cpx){s02.r - s13.r, s02.i - s13.i}, w2);
                        out[c + 3 * s] = cmul((cpx){d02.r - jd.r, d02.i - jd.i}, w3);
                    }
                } else { /* 3 */
                    for (size_t c = c0; c < c1; c++) {
                        cpx a0 = in[c], a1 = in[c + s * m], a2 = in[c + 2 * s * m];
                        cpx sm = {a1.r + a2.r, a1.i + a2.i}, df = {a1.r - a2.r, a1.i - a2.i};
                        cpx base = {a0.r - 0.5 * sm.r, a0.i - 0.5 * sm.i};
                        /* w^1 = -1/2 + i h3 (h3 negative forward) */
                        cpx rot = {-h3 * df.i, h3 * df.r};
                        out[c] = (cpx){a0.r + sm.r, a0.i + sm.i};
                        out[c + s] = cmul((cpx){base.r + rot.r, base.i + rot.i}, w1);
                        out[c + 2 * s] = cmul((cpx){base.r - rot.r, base.i - rot.i}, w2);
                    }
                }
            }
        }
        cpx *t = src;
        src = dst;
        dst = t;
        len = m;
        s *= r;
    }
    if (src != x)
        for (size_t e = 0; e < p->n; e++)
            memcpy(x + e * B + c0, src + e * B + c0, (c1 - c0) * sizeof *x);
}

/* ---- 2-D transforms on L x L arrays, threaded ---------------------------- */

#define TR_BLOCK 32

typedef struct fft2_ctx {
    const fft_plan *plan;
    cpx *x, *scr;
    size_t L;
    int inv;
} fft2_ctx;

/* rows of x, scratch rows of scr */
static void rows_range(void *vc, size_t lo, size_t hi)
{
    fft2_ctx *c = vc;
    for (size_t r = lo; r < hi; r++)
        fft_run(c->plan, c->x + r * c->L, c->scr + r * c->L, 1, 0, 1, c->inv);
}

/* scr[r][q] = x[q][r] for the rows r in blocks [lo, hi) of TR_BLOCK */
static void transpose_range(void *vc, size_t lo, size_t hi)
{
    fft2_ctx *c = vc;
    size_t L = c->L;
    for (size_t rb = lo * TR_BLOCK; rb < hi * TR_BLOCK && rb < L; rb += TR_BLOCK)
        for (size_t qb = 0; qb < L; qb += TR_BLOCK) {
            size_t re = rb + TR_BLOCK < L ? rb + TR_BLOCK : L;
            size_t qe = qb + TR_BLOCK < L ? qb + TR_BLOCK : L;
            for (size_t r = rb; r < re; r++)
                for (size_t q = qb; q < qe; q++)
                    c->scr[r * L + q] = c->x[q * L + r];
        }
}

/* 2-D DFT of *x (L x L) by rows, a blocked transpose, rows again; the
 * result is left TRANSPOSED in the returned buffer (the two pointers are
 * swapped: *x gets the result, *scr the old array as scratch). Forward:
 * only rows [0, nrows) of the input are non-zero. Inverse (of a
 * transposed spectrum): only rows [0, nrows) of the (untransposed) result
 * are computed. The kernel is symmetric in its two axes, so its spectrum
 * is the same transposed or not, and the transposed spectra need no
 * transposing back before the product. */
static void fft2(const fft_plan *plan, cpx **x, cpx **scr, size_t L,
                 size_t nrows, int inv, unsigned nt)
{
    fft2_ctx c = {plan, *x, *scr, L, inv};
    size_t first = inv ? L : nrows, then = inv ? nrows : L;
    par_run(nt, first, rows_range, &c);
    par_run(nt, (then + TR_BLOCK - 1) / TR_BLOCK, transpose_range, &c);
    fft2_ctx d = {plan, *scr, *x, L, inv};
    par_run(nt, then, rows_range, &d);
    cpx *t = *x;
    *x = *scr;
    *scr = t;
}

/* ---- the repulsion ------------------------------------------------------- */

void tsne_fft_free(tsne_fft_ws *ws)
{
    if (!ws)
        return;
    plan_free(&ws->plan);
    free(ws->a);
    free(ws->b);
    free(ws->scr);
    free(ws->khat);
    free(ws->node);
    free(ws->wt);
    free(ws);
}

/* 2^(j/8) for the smallest integer j with 2^(j/8) >= v > 0 */
static double quantize_up(double v)
{
    double j = ceil(8.0 * log2(v) - 1e-9);
    double q = exp2(j / 8.0);
    return q >= v ? q : exp2((j + 1) / 8.0);
}

static uint32_t smooth_at_least(uint32_t v)
{
    uint32_t best = UINT32_MAX;
    for (uint64_t p2 = 1; p2 < 4ull * v; p2 *= 2)
        for (uint64_t p = p2; p < 4ull * v; p *= 3)
            if (p >= v && p < best)
                best = (uint32_t)p;
    return best;
}

typedef struct fft_ctx {
    tsne_fft_ws *ws;
    const float *y;
    size_t n;
    uint32_t nb, M, L;
    double lo, bw, h;
    double *neg, *zi;
} fft_ctx;

static void weights(double t, double *w)
{
    /* Lagrange basis on the nodes 1/6, 1/2, 5/6 of the box */
    const double t0 = 1.0 / 6, t1 = 0.5, t2 = 5.0 / 6;
    w[0] = (t - t1) * (t - t2) * 4.5;
    w[1] = (t - t0) * (t - t2) * -9.0;
    w[2] = (t - t0) * (t - t1) * 4.5;
}

static void locate_range(void *vc, size_t lo, size_t hi)
{
    fft_ctx *c = vc;
    for (size_t i = lo; i < hi; i++)
        for (int d = 0; d < 2; d++) {
            double u = ((double)c->y[2 * i + d] - c->lo) / c->bw;
            uint32_t bx = u <= 0 ? 0 : (uint32_t)u;
            if (bx >= c->nb)
                bx = c->nb - 1;
            c->ws->node[2 * i + d] = 3 * bx;
            weights(u - bx, c->ws->wt + 6 * i + 3 * d);
        }
}

static void kernel_range(void *vc, size_t lo, size_t hi)
{
    fft_ctx *c = vc;
    size_t L = c->L;
    for (size_t r = lo; r < hi; r++) {
        double dr = r < c->M ? (double)r : (double)r - (double)L;
        for (size_t q = 0; q < L; q++) {
            double dq = q < c->M ? (double)q : (double)q - (double)L;
            double v = 0;
            if (r != c->M && q != c->M) {
                double k1 = 1.0 / (1.0 + c->h * c->h * (dr * dr + dq * dq));
                v = k1 * k1;
            }
            c->ws->a[r * L + q] = (cpx){v, 0};
        }
    }
}

static void khat_range(void *vc, size_t lo, size_t hi)
{
    fft_ctx *c = vc;
    double norm = 1.0 / ((double)c->L * c->L);
    for (size_t i = lo * c->L; i < hi * c->L; i++)
        c->ws->khat[i] = c->ws->a[i].r * norm;
}

/* task 0 spreads (1, y1) into a, task 1 (y2, |y|^2) into b */
static void spread_range(void *vc, size_t lo, size_t hi)
{
    fft_ctx *c = vc;
    for (size_t task = lo; task < hi; task++) {
        cpx *g = task == 0 ? c->ws->a : c->ws->b;
        memset(g, 0, (size_t)c->L * c->L * sizeof *g);
        for (size_t i = 0; i < c->n; i++) {
            double y1 = c->y[2 * i], y2 = c->y[2 * i + 1];
            double q0 = task == 0 ? 1.0 : y2, q1 = task == 0 ? y1 : y1 * y1 + y2 * y2;
            const double *w = c->ws->wt + 6 * i;
            size_t gx = c->ws->node[2 * i], gy = c->ws->node[2 * i + 1];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    double wt = w[a] * w[3 + b];
                    cpx *e = &g[(gx + a) * c->L + gy + b];
                    e->r += wt * q0;
                    e->i += wt * q1;
                }
        }
    }
}

static void mul_range(void *vc, size_t lo, size_t hi)
{
    fft_ctx *c = vc;
    for (size_t i = lo * c->L; i < hi * c->L; i++) {
        double k = c->ws->khat[i];
        c->ws->a[i].r *= k;
        c->ws->a[i].i *= k;
        c->ws->b[i].r *= k;
        c->ws->b[i].i *= k;
    }
}

static void gather_range(void *vc, size_t lo, size_t hi)
{
    fft_ctx *c = vc;
    for (size_t i = lo; i < hi; i++) {
        double phi[4] = {0};
        const double *w = c->ws->wt + 6 * i;
        size_t gx = c->ws->node[2 * i], gy = c->ws->node[2 * i + 1];
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                double wt = w[a] * w[3 + b];
                size_t at = (gx + a) * c->L + gy + b;
                phi[0] += wt * c->ws->a[at].r;
                phi[1] += wt * c->ws->a[at].i;
                phi[2] += wt * c->ws->b[at].r;
                phi[3] += wt * c->ws->b[at].i;
            }
        double y1 = c->y[2 * i], y2 = c->y[2 * i + 1];
        c->zi[i] = (1 + y1 * y1 + y2 * y2) * phi[0] - 2 * (y1 * phi[1] + y2 * phi[2]) +
                   phi[3] - 1.0;
        c->neg[2 * i] = y1 * phi[0] - phi[1];
        c->neg[2 * i + 1] = y2 * phi[0] - phi[2];
    }
}

int tsne_fft_repulsion(tsne_fft_ws **wsp, const float *y, size_t n,
                       unsigned nthreads, double *neg, double *zi)
{
    if (!wsp || !y || !neg || !zi || n < 2)
        return PV_EINVAL;
    tsne_fft_ws *ws = *wsp;
    if (!ws) {
        ws = calloc(1, sizeof *ws);
        if (!ws)
            return PV_ENOMEM;
        *wsp = ws;
    }
    double lo = y[0], hi = y[0];
    for (size_t i = 0; i < 2 * n; i++) {
        lo = y[i] < lo ? y[i] : lo;
        hi = y[i] > hi ? y[i] : hi;
    }
    if (!isfinite(lo) || !isfinite(hi))
        return PV_ENUMERIC;
    double span = hi - lo;
    if (span < 1e-9)
        span = 1e-9;
    /* box width: FFT_BOX_WIDTH layout units, wider when that needs more
     * than FFT_MAX_BOXES boxes, narrower (down to FFT_MIN_BOXES across)
     * for a small layout; rounded up to a power of 2^(1/8) so the
     * kernel's spectrum is reused while the layout's size stays in one
     * step. */
    double bw = FFT_BOX_WIDTH;
    if (span / bw > FFT_MAX_BOXES)
        bw = quantize_up(span / FFT_MAX_BOXES);
    else if (span / bw < FFT_MIN_BOXES)
        bw = quantize_up(span / FFT_MIN_BOXES);
    double need = ceil(span / bw);
    uint32_t nb = smooth_at_least(need < FFT_MIN_BOXES ? FFT_MIN_BOXES
                                  : need > FFT_MAX_BOXES ? FFT_MAX_BOXES : (uint32_t)need);
    uint32_t M = 3 * nb, L = 2 * M;
    if (ws->L != L) {
        plan_free(&ws->plan);
        free(ws->a);
        free(ws->b);
        free(ws->scr);
        free(ws->khat);
        ws->L = 0;
        ws->kL = 0;
        size_t cells = (size_t)L * L;
        ws->a = pv_alloc_array(cells, sizeof *ws->a);
        ws->b = pv_alloc_array(cells, sizeof *ws->b);
        ws->scr = pv_alloc_array(cells, sizeof *ws->scr);
        ws->khat = pv_alloc_array(cells, sizeof *ws->khat);
        if (!ws->a || !ws->b || !ws->scr || !ws->khat)
            return PV_ENOMEM;
        int rc = plan_make(&ws->plan, L);
        if (rc)
            return rc;
        ws->L = L;
    }
    if (ws->ncap < n) {
        free(ws->node);
        free(ws->wt);
        ws->ncap = 0;
        ws->node = pv_alloc_array(n, 2 * sizeof *ws->node);
        ws->wt = pv_alloc_array(n, 6 * sizeof *ws->wt);
        if (!ws->node || !ws->wt)
            return PV_ENOMEM;
        ws->ncap = n;
    }
    fft_ctx c = {ws, y, n, nb, M, L, lo, bw, bw / 3, neg, zi};
    par_run(nthreads, n, locate_range, &c);
    /* the kernel's spectrum, through a */
    if (ws->kL != L || ws->kbw != bw) { /* the kernel's spectrum, through a */
        par_run(nthreads, L, kernel_range, &c);
        fft2(&ws->plan, &ws->a, &ws->scr, L, L, 0, nthreads);
        par_run(nthreads, L, khat_range, &c);
        ws->kL = L;
        ws->kbw = bw;
    }
    par_run(nthreads < 2 ? nthreads : 2, 2, spread_range, &c);
    fft2(&ws->plan, &ws->a, &ws->scr, L, M, 0, nthreads);
    fft2(&ws->plan, &ws->b, &ws->scr, L, M, 0, nthreads);
    par_run(nthreads, L, mul_range, &c);
    fft2(&ws->plan, &ws->a, &ws->scr, L, M, 1, nthreads);
    fft2(&ws->plan, &ws->b, &ws->scr, L, M, 1, nthreads);
    par_run(nthreads, n, gather_range, &c);
    return 0;
}
