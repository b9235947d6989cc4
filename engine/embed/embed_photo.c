/*
 * embed_photo.c - the `photo` embedder: near-duplicate photographs
 * (re-encoded, resized, cropped, slightly rotated, brightened, blurred,
 * watermarked, grey, mirrored), in two stages.
 *
 * The image, grey, is area-averaged to 128 x 128 (the whole image squashed
 * to a square: a centre crop of the same aspect squashes the same way) and
 * turned into two 32 x 32 maps:
 *   L  its brightness (area average of 4 x 4 cells) as ranks, ties sharing
 *      their mean rank: the same map under any increasing tone curve
 *      (brightness, contrast, gamma), and a bright core no longer outweighs
 *      the rest (two globular clusters are one blob in brightness, and
 *      their stars around it differ), and
 *   D  its detail: the square root of the mean |pixel - its 3 x 3 box mean|
 *      over each cell, where the fine structure is (star fields, foliage,
 *      text) that brightness alone blurs away. Two globular clusters have
 *      the same bright blob in L and different stars in D.
 * The stored vector holds
 *   G  a global part for finding candidates by cosine: L and D averaged to
 *      16 x 16, each zero-mean and unit length; with mirror matching on, each
 *      is replaced by its mirror-symmetric half-sum and the absolute value of
 *      its antisymmetric half-difference, so an image and its mirror have
 *      the same G;
 *   L and D themselves, zero-mean and unit length, at a small weight;
 *   two slots for a uniform image and one for the aspect ratio.
 * Cosine of whole vectors is dominated by G (PHOTO_WG): the HNSW graph and
 * the exact scan use it to find candidates at or above
 * EMBED_PHOTO_CANDIDATE_COSINE. Each candidate pair is then scored by
 * photo_pair_score: L and D of one image are sampled on a 24 x 24 grid over
 * its central 75 % and compared by normalised correlation with the other's
 * maps sampled at the same points moved by a zoom about the centre (up to
 * 1.2x either way: a crop keeping 70 % of the area), a rotation (up to 3
 * degrees) and, with mirror matching on, a horizontal flip; the best
 * hypothesis of both directions is the score (0.4 of L's correlation plus
 * 0.6 of D's). A crop off the centre (a corner, one side) is a zoom by
 * 1 to 0.75 plus a shift: those hypotheses are scored from one extended
 * sampling per zoom (shift_hyps) and must beat the others by
 * PHOTO_SHIFT_COST, since more hypotheses also let distinct photos find a
 * better fit. Every hypothesis is tried on a 12 x 12 grid first and the
 * best four again on the full grid (a shifted one at half-step offsets
 * too), which is what decides. Re-encoding, resizing, grey,
 * brightness and contrast leave the correlations near 1; a crop or a small
 * rotation is undone by the hypothesis that matches it; unrelated photos,
 * dark ones included, correlate weakly once their detail is compared.
 *
 * A uniform image (brightness standard deviation below PHOTO_FLAT) has no
 * structure to compare: its vector is (cos b, sin b) in the two uniform
 * slots, b its brightness mapped to [0, pi/2], so two blank frames of the
 * same shade score 1 and a black one against a white one 0, and a uniform
 * image against a photo 0.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

/* Its parameters (bench/README.md measured them; a tuning build may set
 * them on the compiler's command line). */
#define PHOTO_IN 256u       /* decode at least this much of each side */
#ifndef PHOTO_H
#define PHOTO_H 128u        /* working square */
#endif
#ifndef PHOTO_S
#define PHOTO_S 32u         /* the L and D maps */
#endif
#ifndef PHOTO_GS
#define PHOTO_GS 16u        /* the global part's maps */
#endif
#ifndef PHOTO_GRID
#define PHOTO_GRID 24u      /* verification samples per side */
#endif
#ifndef PHOTO_REACH
#define PHOTO_REACH 0.75f   /* ... over this much of the half-width */
#endif
#ifndef PHOTO_FLAT
#define PHOTO_FLAT 1.0f     /* brightness std (0..255) below: uniform */
#endif
#ifndef PHOTO_WG
#define PHOTO_WG 0.9f       /* weight of G in the vector (squared: share of cosine) */
#endif
#ifndef PHOTO_WD
#define PHOTO_WD 0.6f       /* weight of D against L in the pair score */
#endif
#ifndef PHOTO_NZOOM
#define PHOTO_NZOOM 9       /* zooms from 1/1.2 to 1.2 */
#endif
#ifndef PHOTO_ZOOM_MAX
#define PHOTO_ZOOM_MAX 1.2f
#endif
#ifndef PHOTO_NROT
#define PHOTO_NROT 5        /* rotations from -3 to 3 degrees */
#endif
#ifndef PHOTO_NSHIFT_ZOOM
#define PHOTO_NSHIFT_ZOOM 6 /* shifted hypotheses: zooms 1, 0.95, ..., 0.75 */
#endif
#ifndef PHOTO_SHIFT_ZOOM_STEP
#define PHOTO_SHIFT_ZOOM_STEP 0.05f
#endif
#ifndef PHOTO_SHIFT_COST
#define PHOTO_SHIFT_COST 0.04f /* a shifted match must be this much better */
#endif
#ifndef PHOTO_SHIFT_K
#define PHOTO_SHIFT_K 3     /* shifts of up to this many coarse steps */
#endif
#define PHOTO_NHYP (PHOTO_NZOOM * PHOTO_NROT * 2 + \
                    PHOTO_NSHIFT_ZOOM * 2 * (2 * PHOTO_SHIFT_K + 1) * (2 * PHOTO_SHIFT_K + 1))
#ifndef PHOTO_REFINE
#define PHOTO_REFINE 4      /* hypotheses scored again on the full grid */
#endif
#ifndef PHOTO_EARLY
#define PHOTO_EARLY 0.6f    /* a best coarse score below: no refinement */
#endif
#ifndef PHOTO_ROT_MAX
#define PHOTO_ROT_MAX 3.0f
#endif

/* Layout of a vector. */
typedef struct layout {
    uint32_t g, gdim;  /* global part */
    uint32_t l, d;     /* the maps, PHOTO_S^2 each */
    uint32_t flat;     /* two uniform slots */
    uint32_t aspect;   /* log(width / height) * PHOTO_ASPECT_SCALE */
    uint32_t dim;
} layout;

#define PHOTO_ASPECT_SCALE 0.01f

typedef struct photo_state {
    int mirror;
    layout lo;
} photo_state;

static layout layout_of(int mirror)
{
    layout lo;
    /* mirror: the symmetric map (GS x GS) and half the antisymmetric one */
    uint32_t per = mirror ? PHOTO_GS * PHOTO_GS + PHOTO_GS * (PHOTO_GS / 2)
                          : PHOTO_GS * PHOTO_GS;
    lo.g = 0;
    lo.gdim = 2 * per;
    lo.l = lo.gdim;
    lo.d = lo.l + PHOTO_S * PHOTO_S;
    lo.flat = lo.d + PHOTO_S * PHOTO_S;
    lo.aspect = lo.flat + 2;
    lo.dim = lo.aspect + 1;
    return lo;
}

/* Zero-mean, unit length; 0 when v has (almost) no variation. */
static int center_unit(float *v, uint32_t n)
{
    double m = 0, ss = 0;
    for (uint32_t i = 0; i < n; i++)
        m += v[i];
    m /= n;
    for (uint32_t i = 0; i < n; i++) {
        v[i] = (float)(v[i] - m);
        ss += (double)v[i] * v[i];
    }
    if (!(ss > 1e-12)) {
        memset(v, 0, n * sizeof *v);
        return 0;
    }
    float inv = (float)(1.0 / sqrt(ss));
    for (uint32_t i = 0; i < n; i++)
        v[i] *= inv;
    return 1;
}

/* s x s map -> (s/2) x (s/2), 2 x 2 means. */
static void halve(const float *in, uint32_t s, float *out)
{
    uint32_t h = s / 2;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < h; x++)
            out[y * h + x] = 0.25f * (in[2 * y * s + 2 * x] + in[2 * y * s + 2 * x + 1] +
                                      in[(2 * y + 1) * s + 2 * x] +
                                      in[(2 * y + 1) * s + 2 * x + 1]);
}

/* The global part of one map (n x n): itself, or with mirror matching its
 * symmetric half-sum then |antisymmetric half-difference| of the left half;
 * unit length (zeros for a flat map). Returns the floats written. */
static uint32_t global_part(const float *m, uint32_t n, int mirror, float *out)
{
    uint32_t k = 0;
    if (!mirror) {
        memcpy(out, m, n * n * sizeof *out);
        k = n * n;
    } else {
        for (uint32_t y = 0; y < n; y++)
            for (uint32_t x = 0; x < n; x++)
                out[k++] = 0.5f * (m[y * n + x] + m[y * n + (n - 1 - x)]);
        for (uint32_t y = 0; y < n; y++)
            for (uint32_t x = 0; x < n / 2; x++)
                out[k++] = 0.5f * fabsf(m[y * n + x] - m[y * n + (n - 1 - x)]);
    }
    /* the map is zero-mean already; only the scale matters here */
    double ss = 0;
    for (uint32_t i = 0; i < k; i++)
        ss += (double)out[i] * out[i];
    float inv = ss > 1e-12 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (uint32_t i = 0; i < k; i++)
        out[i] *= inv;
    return k;
}

typedef struct ranked {
    float v;
    uint32_t i;
} ranked;

static int cmp_ranked(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
}

/* Replace the n values by their ranks (ties share their mean rank): the
 * map becomes the same under any increasing tone curve (brightness,
 * contrast, gamma), and a bright blob no longer outweighs the rest of the
 * picture (two star clusters differ in their stars, not in their core).
 * Returns 0 when out of memory. */
static int rank_transform(float *v, uint32_t n)
{
    ranked *r = pv_alloc_array(n, sizeof *r);
    if (!r)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        r[i] = (ranked){v[i], i};
    qsort(r, n, sizeof *r, cmp_ranked);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j + 1 < n && r[j + 1].v == r[i].v)
            j++;
        for (uint32_t k = i; k <= j; k++)
            v[r[k].i] = 0.5f * (float)(i + j);
        i = j + 1;
    }
    free(r);
    return 1;
}

/* One image's vector from its grey H x H square (work: 3 * S * S floats). */
static int photo_vector(const photo_state *ps, const uint8_t *sq, uint32_t w, uint32_t h,
                        float *v, float *work)
{
    const layout *lo = &ps->lo;
    const uint32_t H = PHOTO_H, S = PHOTO_S, c = H / S;
    float *L = work, *D = work + S * S, *tmp = work + 2 * S * S;
    double m = 0, ss = 0;
    memset(v, 0, lo->dim * sizeof *v);
    for (uint32_t i = 0; i < H * H; i++)
        m += sq[i];
    m /= H * H;
    for (uint32_t i = 0; i < H * H; i++)
        ss += (sq[i] - m) * (sq[i] - m);
    if (sqrt(ss / (H * H)) < PHOTO_FLAT) {
        double b = m / 255.0 * (M_PI / 2);
        v[lo->flat] = (float)cos(b);
        v[lo->flat + 1] = (float)sin(b);
        return PV_OK;
    }
    for (uint32_t y = 0; y < S; y++)
        for (uint32_t x = 0; x < S; x++) {
            double sl = 0, sd = 0;
            for (uint32_t yy = y * c; yy < (y + 1) * c; yy++)
                for (uint32_t xx = x * c; xx < (x + 1) * c; xx++) {
                    int box = 0, cnt = 0;
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++) {
                            int py = (int)yy + dy, px = (int)xx + dx;
                            if (py < 0 || px < 0 || py >= (int)H || px >= (int)H)
                                continue;
                            box += sq[py * H + px];
                            cnt++;
                        }
                    sl += sq[yy * H + xx];
                    sd += fabs(sq[yy * H + xx] - (double)box / cnt);
                }
            L[y * S + x] = (float)(sl / (c * c));
            D[y * S + x] = (float)sqrt(sd / (c * c));
        }
    if (!rank_transform(L, S * S))
        return PV_ENOMEM;
    int hasd = center_unit(D, S * S);
    (void)center_unit(L, S * S);
    /* global: L and D at GS x GS */
    float *gl = tmp, *gd = tmp + PHOTO_GS * PHOTO_GS;
    halve(L, S, gl);
    halve(D, S, gd);
    uint32_t k = global_part(gl, PHOTO_GS, ps->mirror, v + lo->g);
    (void)global_part(gd, PHOTO_GS, ps->mirror, v + lo->g + k);
    /* G is two unit halves: weight each so that |G| = PHOTO_WG */
    for (uint32_t i = 0; i < lo->gdim; i++)
        v[lo->g + i] *= PHOTO_WG / sqrtf(hasd ? 2.0f : 1.0f);
    /* the maps share the rest */
    float wm = sqrtf(1.0f - PHOTO_WG * PHOTO_WG) / sqrtf(hasd ? 2.0f : 1.0f);
    for (uint32_t i = 0; i < S * S; i++) {
        v[lo->l + i] = L[i] * wm;
        v[lo->d + i] = D[i] * wm;
    }
    v[lo->aspect] = PHOTO_ASPECT_SCALE * logf((float)w / (float)h);
    return isnan(vec_normalize(v, lo->dim)) ? PV_ENUMERIC : PV_OK;
}

static int photo_embed(const embedder *e, const img *imgs, size_t n, float *out, int *rcs)
{
    const photo_state *ps = e->state;
    uint8_t *sq = pv_alloc_array(PHOTO_H * PHOTO_H, 1);
    float *work = pv_alloc_array(3 * PHOTO_S * PHOTO_S, sizeof *work);
    if (!sq || !work) {
        free(sq);
        free(work);
        for (size_t i = 0; i < n; i++)
            rcs[i] = PV_ENOMEM;
        return PV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const img *im = &imgs[i];
        float *v = out + i * e->dim;
        rcs[i] = im->channels != 1 ? PV_EINVAL
                                   : img_resize_area(im->px, im->w, im->h, 1, sq, PHOTO_H,
                                                     PHOTO_H);
        if (rcs[i] == 0)
            rcs[i] = photo_vector(ps, sq, im->orig_w ? im->orig_w : im->w,
                                  im->orig_h ? im->orig_h : im->h, v, work);
        if (rcs[i] != 0)
            memset(v, 0, e->dim * sizeof(float));
    }
    free(sq);
    free(work);
    return PV_OK;
}

/* ---- the pair score -------------------------------------------------------- */

/* Bilinear sample of an S x S map at normalised (x, y) in [-1, 1] (pixel
 * centres at -1 + (2i + 1) / S), clamped at the border (a NaN coordinate
 * reads the corner: never outside the map). */
static float sample(const float *m, float x, float y)
{
    const float S = (float)PHOTO_S, top = S - 1.001f;
    float u = (x + 1.0f) * S * 0.5f - 0.5f, w = (y + 1.0f) * S * 0.5f - 0.5f;
    if (!(u >= 0))
        u = 0;
    if (!(w >= 0))
        w = 0;
    if (!(u <= top))
        u = top;
    if (!(w <= top))
        w = top;
    int x0 = (int)u, y0 = (int)w;
    float fx = u - (float)x0, fy = w - (float)y0;
    const float *r0 = m + y0 * PHOTO_S + x0, *r1 = r0 + PHOTO_S;
    return (r0[0] * (1 - fx) + r0[1] * fx) * (1 - fy) + (r1[0] * (1 - fx) + r1[1] * fx) * fy;
}

/* Normalised correlation of a's samples (n, zero-mean unit) with b's. */
static float ncc(const float *a, const float *b, uint32_t n)
{
    double mb = 0, sb = 0, ab = 0;
    for (uint32_t i = 0; i < n; i++)
        mb += b[i];
    mb /= n;
    for (uint32_t i = 0; i < n; i++) {
        double d = b[i] - mb;
        sb += d * d;
        ab += a[i] * d;
    }
    return sb > 1e-18 ? (float)(ab / sqrt(sb)) : 0.0f;
}

/* Sample points of one image (its frame) and its maps' values there,
 * zero-mean and unit length. */
typedef struct probe {
    uint32_t n;
    int use_d;
    float x[PHOTO_GRID * PHOTO_GRID], y[PHOTO_GRID * PHOTO_GRID];
    float l[PHOTO_GRID * PHOTO_GRID], d[PHOTO_GRID * PHOTO_GRID];
} probe;

/* A grid of side g over the central PHOTO_REACH of a's frame. Returns 0
 * when a's brightness is flat there (nothing to correlate). */
static int probe_make(probe *p, uint32_t g, const float *al, const float *ad, int use_d)
{
    p->n = g * g;
    for (uint32_t j = 0, k = 0; j < g; j++)
        for (uint32_t i = 0; i < g; i++, k++) {
            p->x[k] = PHOTO_REACH * (2.0f * (float)i / (float)(g - 1) - 1.0f);
            p->y[k] = PHOTO_REACH * (2.0f * (float)j / (float)(g - 1) - 1.0f);
            p->l[k] = sample(al, p->x[k], p->y[k]);
            p->d[k] = sample(ad, p->x[k], p->y[k]);
        }
    p->use_d = use_d && center_unit(p->d, p->n);
    return center_unit(p->l, p->n);
}

/* One hypothesis: b sampled where a's probe points land after a zoom by
 * z, a rotation by t (radians), a shift by (tx, ty) and a mirror m, in a
 * frame where a height is 2 (x spans +-ra for a, +-rb for b: ra, rb the
 * widths over heights). */
static float hyp_score(const probe *p, float ra, const float *bl, const float *bd, float rb,
                       float z, float t, float tx, float ty, int m)
{
    float tl[PHOTO_GRID * PHOTO_GRID], td[PHOTO_GRID * PHOTO_GRID];
    float c = cosf(t) * z, s = sinf(t) * z;
    for (uint32_t q = 0; q < p->n; q++) {
        float px = p->x[q] * ra, py = p->y[q];
        float qx = (c * px - s * py + tx) / rb, qy = s * px + c * py + ty;
        if (m)
            qx = -qx;
        tl[q] = sample(bl, qx, qy);
        if (p->use_d)
            td[q] = sample(bd, qx, qy);
    }
    float sc = ncc(p->l, tl, p->n);
    if (p->use_d)
        sc = (1.0f - PHOTO_WD) * sc + PHOTO_WD * ncc(p->d, td, p->n);
    return sc;
}

/* Hypotheses tried on the coarse grid, best kept for the fine one. */
typedef struct hyps {
    int n;
    float z[PHOTO_NHYP], t[PHOTO_NHYP], tx[PHOTO_NHYP], ty[PHOTO_NHYP], s[PHOTO_NHYP];
    float step[PHOTO_NHYP]; /* a shifted one: its shift step (refined by halves) */
    int m[PHOTO_NHYP];
} hyps;

static void hyps_add(hyps *h, float z, float t, float tx, float ty, float step, int m, float s)
{
    if (h->n < PHOTO_NHYP) {
        int i = h->n++;
        h->z[i] = z, h->t[i] = t, h->tx[i] = tx, h->ty[i] = ty, h->step[i] = step;
        h->m[i] = m, h->s[i] = s;
    }
}

/* Sums over a g x g window at (x0, y0) of an E-wide table's values and
 * squares, from its integral tables (E + 1 wide). */
static void window_sums(const double *s1, const double *s2, int e1, int x0, int y0, int g,
                        double *sum, double *sumsq)
{
    int a = y0 * e1 + x0, b = y0 * e1 + x0 + g, c = (y0 + g) * e1 + x0, d = (y0 + g) * e1 + x0 + g;
    *sum = s1[d] - s1[b] - s1[c] + s1[a];
    *sumsq = s2[d] - s2[b] - s2[c] + s2[a];
}

/* Correlation of the probe's n values (zero-mean, unit) with a g x g
 * window of an E-wide table, given the window's sums. */
static float window_ncc(const float *pv, const float *tab, int e, int x0, int y0, int g,
                        double sum, double sumsq)
{
    double dot = 0, var = sumsq - sum * sum / (double)(g * g);
    for (int j = 0; j < g; j++) {
        const float *row = tab + (y0 + j) * e + x0;
        const float *pr = pv + j * g;
        for (int i = 0; i < g; i++)
            dot += (double)pr[i] * row[i];
    }
    return var > 1e-18 ? (float)(dot / sqrt(var)) : 0.0f;
}

/* Integral tables of v and v^2 over an e x e table. */
static void integrals(const float *v, int e, double *s1, double *s2)
{
    const int e1 = e + 1;
    for (int i = 0; i < e1; i++)
        s1[i] = s2[i] = 0;
    for (int j = 0; j < e; j++) {
        double r1 = 0, r2 = 0;
        s1[(j + 1) * e1] = s2[(j + 1) * e1] = 0;
        for (int i = 0; i < e; i++) {
            r1 += v[j * e + i];
            r2 += (double)v[j * e + i] * v[j * e + i];
            s1[(j + 1) * e1 + i + 1] = s1[j * e1 + i + 1] + r1;
            s2[(j + 1) * e1 + i + 1] = s2[j * e1 + i + 1] + r2;
        }
    }
}

/* Off-centre crops: a taken as a crop of b, shrunk by z <= 1 and moved
 * inside b. For each zoom and mirror, b is sampled once on a's coarse grid
 * extended by PHOTO_SHIFT_K steps each way, and every shift by whole steps
 * is scored from those samples (window sums from integral tables). */
static void shift_hyps(const photo_state *ps, const probe *p, uint32_t g, float ra,
                       const float *bl, const float *bd, float rb, hyps *h)
{
    enum { K = PHOTO_SHIFT_K, E = PHOTO_GRID / 2 + 2 * PHOTO_SHIFT_K, E1 = E + 1 };
    float el[E * E], ed[E * E];
    double l1[E1 * E1], l2[E1 * E1], d1[E1 * E1], d2[E1 * E1];
    const float d = 2.0f * PHOTO_REACH / (float)(g - 1);
    const int gi = (int)g;
    if (gi + 2 * K != E)
        return; /* the coarse grid is PHOTO_GRID / 2 */
    for (int zi = 0; zi < PHOTO_NSHIFT_ZOOM; zi++) {
        float z = 1.0f - PHOTO_SHIFT_ZOOM_STEP * (float)zi;
        for (int m = 0; m <= ps->mirror; m++) {
            for (int j = 0; j < E; j++)
                for (int i = 0; i < E; i++) {
                    float x = -PHOTO_REACH + d * (float)(i - K), y = -PHOTO_REACH + d * (float)(j - K);
                    float qx = z * x * ra / rb, qy = z * y;
                    if (m)
                        qx = -qx;
                    el[j * E + i] = sample(bl, qx, qy);
                    ed[j * E + i] = sample(bd, qx, qy);
                }
            integrals(el, E, l1, l2);
            if (p->use_d)
                integrals(ed, E, d1, d2);
            for (int v = -K; v <= K; v++)
                for (int u = -K; u <= K; u++) {
                    if (u == 0 && v == 0)
                        continue; /* the centred hypotheses have it */
                    double s, ss;
                    window_sums(l1, l2, E1, u + K, v + K, gi, &s, &ss);
                    float sc = window_ncc(p->l, el, E, u + K, v + K, gi, s, ss);
                    if (p->use_d) {
                        window_sums(d1, d2, E1, u + K, v + K, gi, &s, &ss);
                        sc = (1.0f - PHOTO_WD) * sc +
                             PHOTO_WD * window_ncc(p->d, ed, E, u + K, v + K, gi, s, ss);
                    }
                    hyps_add(h, z, 0.0f, z * (float)u * d * ra, z * (float)v * d, z * d, m,
                             sc - PHOTO_SHIFT_COST);
                }
        }
    }
}

/* The best correlation of a's maps with b's over every hypothesis (zoom,
 * rotation, mirror; and shifts, for off-centre crops), a's grid being moved
 * into b's frame. Coarse to fine: every hypothesis on a 12 x 12 grid, then
 * the best PHOTO_REFINE on the full one (a shifted one also half a step
 * each way); a pair whose best coarse score is far below any threshold
 * (PHOTO_EARLY) gets that score. */
typedef struct align_work {
    probe coarse, fine;
    hyps h;
} align_work;

static float align_score(const photo_state *ps, align_work *w, const float *al,
                         const float *ad, float ra, const float *bl, const float *bd, float rb,
                         int use_d)
{
    const uint32_t gc = PHOTO_GRID / 2;
    probe *coarse = &w->coarse, *fine = &w->fine;
    hyps *h = &w->h;
    float best = -1.0f;
    if (!probe_make(coarse, gc, al, ad, use_d) || !probe_make(fine, PHOTO_GRID, al, ad, use_d))
        return best;
    h->n = 0;
    for (int zi = 0; zi < PHOTO_NZOOM; zi++) {
        float z = expf(logf(PHOTO_ZOOM_MAX) *
                       (2.0f * (float)zi / (float)(PHOTO_NZOOM - 1) - 1.0f));
        for (int ri = 0; ri < PHOTO_NROT; ri++) {
            float t = PHOTO_ROT_MAX * (2.0f * (float)ri / (float)(PHOTO_NROT - 1) - 1.0f) *
                      (float)(M_PI / 180.0);
            for (int m = 0; m <= ps->mirror; m++)
                hyps_add(h, z, t, 0, 0, 0, m,
                         hyp_score(coarse, ra, bl, bd, rb, z, t, 0, 0, m));
        }
    }
    if (PHOTO_NSHIFT_ZOOM > 0)
        shift_hyps(ps, coarse, gc, ra, bl, bd, rb, h);
    for (int r = 0; r < PHOTO_REFINE; r++) {
        int bi = 0;
        for (int i = 1; i < h->n; i++)
            if (h->s[i] > h->s[bi])
                bi = i;
        if (r == 0 && !(h->s[bi] >= PHOTO_EARLY)) {
            best = h->s[bi] >= -1.0f ? h->s[bi] : -1.0f;
            break;
        }
        int sub = h->step[bi] > 0 ? 1 : 0;
        for (int dv = -sub; dv <= sub; dv++)
            for (int du = -sub; du <= sub; du++) {
                float sc = hyp_score(fine, ra, bl, bd, rb, h->z[bi], h->t[bi],
                                     h->tx[bi] + 0.5f * (float)du * h->step[bi] * ra,
                                     h->ty[bi] + 0.5f * (float)dv * h->step[bi], h->m[bi]);
                if (sub)
                    sc -= PHOTO_SHIFT_COST;
                if (sc > best)
                    best = sc;
            }
        h->s[bi] = -INFINITY;
    }
    return best;
}

static float photo_pair_score(const embedder *e, const float *a, const float *b)
{
    const photo_state *ps = e->state;
    const layout *lo = &ps->lo;
    const uint32_t S2 = PHOTO_S * PHOTO_S;
    float fa = a[lo->flat] * a[lo->flat] + a[lo->flat + 1] * a[lo->flat + 1];
    float fb = b[lo->flat] * b[lo->flat] + b[lo->flat + 1] * b[lo->flat + 1];
    if (fa > 0.5f || fb > 0.5f) /* a uniform image: only another one scores */
        return fa > 0.5f && fb > 0.5f
                   ? a[lo->flat] * b[lo->flat] + a[lo->flat + 1] * b[lo->flat + 1]
                   : 0.0f;
    /* The maps' own scale (the vector was normalised as a whole) cancels
     * in the correlations; the aspect slot is read relative to L's norm. */
    float na = sqrtf(vec_dot(a + lo->l, a + lo->l, S2)), nb = sqrtf(vec_dot(b + lo->l, b + lo->l, S2));
    if (!(na > 0) || !(nb > 0))
        return 0.0f;
    int hda = vec_dot(a + lo->d, a + lo->d, S2) > 0, hdb = vec_dot(b + lo->d, b + lo->d, S2) > 0;
    /* L's norm before normalisation was wm, which depends on whether D is
     * there; the aspect slot was written beside it */
    float wma = sqrtf(1.0f - PHOTO_WG * PHOTO_WG) / sqrtf(hda ? 2.0f : 1.0f);
    float wmb = sqrtf(1.0f - PHOTO_WG * PHOTO_WG) / sqrtf(hdb ? 2.0f : 1.0f);
    float ra = expf(a[lo->aspect] / na * wma / PHOTO_ASPECT_SCALE);
    float rb = expf(b[lo->aspect] / nb * wmb / PHOTO_ASPECT_SCALE);
    int use_d = hda && hdb;
    if (!(ra > 0.01f && ra < 100.0f) || !(rb > 0.01f && rb < 100.0f))
        ra = rb = 1.0f;
    /* one scratch for both directions (about 37 KB: not on a thread's stack) */
    align_work *w = malloc(sizeof *w);
    if (!w)
        return -1.0f;
    float ab = align_score(ps, w, a + lo->l, a + lo->d, ra, b + lo->l, b + lo->d, rb, use_d);
    float ba = align_score(ps, w, b + lo->l, b + lo->d, rb, a + lo->l, a + lo->d, ra, use_d);
    free(w);
    return ab > ba ? ab : ba;
}

static void photo_destroy(embedder *e)
{
    if (e)
        free(e->state);
    free(e);
}

static const embedder_ops photo_ops = {"photo", photo_embed, photo_destroy, photo_pair_score, NULL};

int embed_photo_create(uint32_t flags, embedder **out, char *err, size_t errlen)
{
    embedder *e;
    photo_state *ps;
    if (flags & ~EMBED_NO_MIRROR) {
        snprintf(err, errlen, "photo: unknown flags 0x%x", flags);
        return PV_EINVAL;
    }
    e = calloc(1, sizeof *e);
    ps = calloc(1, sizeof *ps);
    if (!e || !ps) {
        free(e);
        free(ps);
        return PV_ENOMEM;
    }
    ps->mirror = !(flags & EMBED_NO_MIRROR);
    ps->lo = layout_of(ps->mirror);
    e->ops = &photo_ops;
    e->state = ps;
    e->channels = 1;
    e->in_w = e->in_h = PHOTO_IN;
    e->dim = ps->lo.dim;
    e->flags = flags;
    e->dups_threshold = EMBED_PHOTO_DUPS_THRESHOLD;
    e->candidate_cosine = EMBED_PHOTO_CANDIDATE_COSINE;
    snprintf(e->desc, sizeof e->desc, "photo %ux%u grey, %s", PHOTO_S, PHOTO_S,
             ps->mirror ? "mirror images match" : "mirror images do not match");
    *out = e;
    return PV_OK;
}
