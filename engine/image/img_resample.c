/*
 * img_resample.c - Pillow-exact convolution resize, and CLIP/HF's
 * shortest-side resize + centre crop (engine/image room).
 *
 * CLIP, DINOv2 and the Hugging Face image processors resize with Pillow
 * (Image.resize with BICUBIC or BILINEAR), and a model's reference vectors
 * are computed on those bytes, so this reproduces Pillow 9.4's
 * libImaging/Resample.c bit for bit for 8-bit images; it was written from
 * reading that file's behaviour, and tests/test_resample.c compares it
 * byte for byte with PIL. The algorithm:
 *
 *  - Separable convolution. For an axis of `in` source and `out` output
 *    pixels, scale = in / out and fs = max(scale, 1) (the filter is widened
 *    by the reduction factor when shrinking: antialiasing), support =
 *    filter support * fs (bicubic 2, bilinear 1). Output i is centred at
 *    c = (i + 0.5) * scale and takes source pixels [lo, hi) with
 *    lo = max((int)(c - support + 0.5), 0), hi = min((int)(c + support +
 *    0.5), in); pixel j weighs f((j - c + 0.5) / fs), the weights divided by
 *    their sum (doubles, in that order). Bicubic is Keys' cubic with
 *    a = -0.5, bilinear the triangle.
 *  - Fixed point: each weight becomes (int)(w * 2^22 +- 0.5) (rounded half
 *    away from zero); a sample is 2^21 + sum(px * k) in 32 bits, shifted
 *    down by 22 and clamped to 0..255.
 *  - Horizontal pass first, rounded to 8 bits, then the vertical pass over
 *    those 8-bit rows. An axis whose size does not change is not filtered
 *    at all (its filter would be the identity anyway: at scale 1 the taps
 *    fall at whole distances, where both kernels are 0 or 1). Pillow runs
 *    the horizontal pass only over the source rows the vertical pass reads;
 *    that changes nothing in the result, only the work.
 *
 * The double arithmetic is written in Pillow's order (its kernels' Horner
 * forms, a division by the sum per weight), and must not be contracted into
 * fused multiply-adds: GCC does not contract in ISO C mode (-std=c11, what
 * CMake asks for here) nor without -mfma.
 *
 * Differences of form, not of result: the weights are computed twice per
 * output (once for their sum, once to divide) instead of being stored as
 * doubles; the vertical pass sums a whole row at a time, tap by tap, into a
 * row of accumulators (integer sums, so the order cannot matter; they wrap
 * modulo 2^32 exactly as Pillow's int does); and img_resize_short_crop
 * computes only the output rows and columns the crop keeps, which are the
 * same numbers as in the full resize since every output pixel depends only
 * on its own row's and column's weights. Everything (per output index: first
 * source index, tap count, 22-bit weights; the accumulators; the 8-bit
 * horizontal result of the rows needed) lives in one allocation.
 */
#include "img.h"

#include "pixvec.h"
#include "pv_util.h"

#include <stdlib.h>
#include <string.h>

#define RS_BITS 22 /* Pillow's PRECISION_BITS: 32 - 8 - 2 */

static double rs_bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double rs_bilinear(double x)
{
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return 1.0 - x;
    return 0.0;
}

/* One axis: `in` source pixels resized to `out`, of which outputs
 * [o0, o0 + n) are wanted. */
typedef struct rs_axis {
    uint32_t in, out, o0, n;
    double (*f)(double);
    double scale, fs, support;
    uint32_t *first; /* n: first source index of each wanted output */
    uint32_t *count; /* n: its taps */
    int32_t *k;      /* sum of count: the 22-bit weights, one output after
                        another */
    uint64_t taps;   /* sum of count */
} rs_axis;

static void rs_axis_init(rs_axis *a, uint32_t in, uint32_t out, uint32_t o0,
                         uint32_t n, int filter)
{
    memset(a, 0, sizeof *a);
    a->in = in;
    a->out = out;
    a->o0 = o0;
    a->n = n;
    a->f = filter == IMG_FILTER_BICUBIC ? rs_bicubic : rs_bilinear;
    /* Pillow takes the box's ends as floats: (float)in - 0.0f, exact below
     * 2^24 and rounded like Pillow above. */
    a->scale = (double)((float)in - 0.0f) / out;
    a->fs = a->scale < 1.0 ? 1.0 : a->scale;
    a->support = (filter == IMG_FILTER_BICUBIC ? 2.0 : 1.0) * a->fs;
}

/* Output i's centre and source range [*lo, *lo + *cnt). */
static double rs_bounds(const rs_axis *a, uint32_t i, uint32_t *lo,
                        uint32_t *cnt)
{
    double c = (i + 0.5) * a->scale;
    /* (int64_t) truncates toward zero like Pillow's (int); the values are
     * below 2^31 for any side within PV_MAX_PIXELS. */
    int64_t l = (int64_t)(c - a->support + 0.5);
    int64_t h = (int64_t)(c + a->support + 0.5);
    if (l < 0)
        l = 0;
    if (h > (int64_t)a->in)
        h = a->in;
    *lo = (uint32_t)l;
    *cnt = h > l ? (uint32_t)(h - l) : 0;
    return c;
}

static void rs_axis_count(rs_axis *a)
{
    uint32_t i, lo, cnt;
    a->taps = 0;
    for (i = 0; i < a->n; i++) {
        rs_bounds(a, a->o0 + i, &lo, &cnt);
        a->taps += cnt;
    }
}

static void rs_axis_fill(rs_axis *a)
{
    uint32_t i, j, lo, cnt;
    double ss = 1.0 / a->fs;
    int32_t *k = a->k;

    for (i = 0; i < a->n; i++) {
        double c = rs_bounds(a, a->o0 + i, &lo, &cnt), ww = 0.0;
        for (j = 0; j < cnt; j++)
            ww += a->f(((double)j + lo - c + 0.5) * ss);
        for (j = 0; j < cnt; j++) {
            double w = a->f(((double)j + lo - c + 0.5) * ss);
            if (ww != 0.0)
                w /= ww;
            k[j] = w < 0 ? (int32_t)(-0.5 + w * (1 << RS_BITS))
                         : (int32_t)(0.5 + w * (1 << RS_BITS));
        }
        a->first[i] = lo;
        a->count[i] = cnt;
        k += cnt;
    }
}

/* An accumulated sample (mod 2^32, read as Pillow's int) to 8 bits. */
static inline uint8_t rs_clip8(uint32_t acc)
{
    int32_t s = (int32_t)acc;
    if (s < 0)
        return 0;
    s >>= RS_BITS;
    return s > 255 ? 255 : (uint8_t)s;
}

/* Horizontal pass: rows [y0, y1) of src (sw * ch bytes each) into out
 * (ax->n * ch bytes a row, stride ostride). */
static void rs_horizontal(const rs_axis *ax, const uint8_t *src, uint32_t sw,
                          uint32_t ch, uint32_t y0, uint32_t y1, uint8_t *out,
                          size_t ostride)
{
    uint32_t y, i, j;
    for (y = y0; y < y1; y++) {
        const uint8_t *row = src + (size_t)y * sw * ch;
        uint8_t *o = out + (size_t)(y - y0) * ostride;
        const int32_t *k = ax->k;
        for (i = 0; i < ax->n; i++) {
            const uint8_t *p = row + (size_t)ax->first[i] * ch;
            uint32_t cnt = ax->count[i];
            if (ch == 1) {
                uint32_t s0 = 1u << (RS_BITS - 1);
                for (j = 0; j < cnt; j++)
                    s0 += (uint32_t)(p[j] * k[j]);
                o[i] = rs_clip8(s0);
            } else { /* 3 */
                uint32_t s0 = 1u << (RS_BITS - 1), s1 = s0, s2 = s0;
                for (j = 0; j < cnt; j++) {
                    s0 += (uint32_t)(p[3 * j] * k[j]);
                    s1 += (uint32_t)(p[3 * j + 1] * k[j]);
                    s2 += (uint32_t)(p[3 * j + 2] * k[j]);
                }
                o[3 * i] = rs_clip8(s0);
                o[3 * i + 1] = rs_clip8(s1);
                o[3 * i + 2] = rs_clip8(s2);
            }
            k += cnt;
        }
    }
}

/* Vertical pass: rows of `in` (row r = source row r + ybase, `len` bytes
 * used of istride) into ay->n rows of out (stride ostride); acc holds len
 * accumulators. */
static void rs_vertical(const rs_axis *ay, const uint8_t *in, size_t istride,
                        uint32_t ybase, size_t len, uint32_t *acc,
                        uint8_t *out, size_t ostride)
{
    uint32_t i, j;
    size_t x;
    const int32_t *k = ay->k;
    for (i = 0; i < ay->n; i++) {
        uint32_t cnt = ay->count[i];
        uint8_t *o = out + (size_t)i * ostride;
        for (x = 0; x < len; x++)
            acc[x] = 1u << (RS_BITS - 1);
        for (j = 0; j < cnt; j++) {
            const uint8_t *r = in + (size_t)(ay->first[i] + j - ybase) * istride;
            int32_t kj = k[j];
            for (x = 0; x < len; x++)
                acc[x] += (uint32_t)(r[x] * kj);
        }
        for (x = 0; x < len; x++)
            o[x] = rs_clip8(acc[x]);
        k += cnt;
    }
}

/* total += n * size, 0 or -1 on overflow. */
static int rs_add(size_t *total, uint64_t n, size_t size)
{
    if (size != 0 && n > (SIZE_MAX - *total) / size)
        return -1;
    *total += (size_t)(n * size);
    return 0;
}

/* Output columns [x0, x0 + nw) and rows [y0, y0 + nh) of the dw x dh resize
 * of src, to dst (nw * ch bytes a row, stride dstride). Sizes are checked
 * by the callers; nw, nh >= 1. */
static int rs_resize_window(const uint8_t *src, uint32_t sw, uint32_t sh,
                            uint32_t ch, uint32_t dw, uint32_t dh, int filter,
                            uint32_t x0, uint32_t nw, uint32_t y0, uint32_t nh,
                            uint8_t *dst, size_t dstride)
{
    int need_h = dw != sw, need_v = dh != sh;
    rs_axis ax, ay;
    size_t total = 0, len = (size_t)nw * ch;
    uint32_t ylo = y0, yhi = y0 + nh, i;
    unsigned char *mem = NULL, *p;
    uint32_t *acc = NULL;

    rs_axis_init(&ax, sw, dw, x0, nw, filter);
    rs_axis_init(&ay, sh, dh, y0, nh, filter);
    if (need_h) {
        rs_axis_count(&ax);
        if (rs_add(&total, 2 * (uint64_t)nw, sizeof(uint32_t)) ||
            rs_add(&total, ax.taps, sizeof(int32_t)))
            return PV_ENOMEM;
    }
    if (need_v) {
        uint32_t lo, cnt;
        rs_axis_count(&ay);
        if (rs_add(&total, 2 * (uint64_t)nh, sizeof(uint32_t)) ||
            rs_add(&total, ay.taps, sizeof(int32_t)) ||
            rs_add(&total, len, sizeof(uint32_t)))
            return PV_ENOMEM;
        /* The source rows the vertical pass reads: [first of the first
         * output, end of the last) since both ends are nondecreasing. */
        rs_bounds(&ay, y0, &lo, &cnt);
        ylo = lo;
        rs_bounds(&ay, y0 + nh - 1, &lo, &cnt);
        yhi = lo + cnt;
    }
    if (need_h && need_v && rs_add(&total, (uint64_t)(yhi - ylo) * nw, ch))
        return PV_ENOMEM;
    if (total == 0) { /* neither axis changes: a copy */
        for (i = 0; i < nh; i++)
            memcpy(dst + (size_t)i * dstride,
                   src + ((size_t)(y0 + i) * sw + x0) * ch, len);
        return 0;
    }
    /* int32/uint32 tables first, the 8-bit rows last: all aligned. */
    mem = p = pv_alloc_array(total, 1);
    if (!mem)
        return PV_ENOMEM;
    if (need_h) {
        ax.first = (uint32_t *)p, p += (size_t)nw * sizeof(uint32_t);
        ax.count = (uint32_t *)p, p += (size_t)nw * sizeof(uint32_t);
        ax.k = (int32_t *)p, p += (size_t)ax.taps * sizeof(int32_t);
        rs_axis_fill(&ax);
    }
    if (need_v) {
        ay.first = (uint32_t *)p, p += (size_t)nh * sizeof(uint32_t);
        ay.count = (uint32_t *)p, p += (size_t)nh * sizeof(uint32_t);
        ay.k = (int32_t *)p, p += (size_t)ay.taps * sizeof(int32_t);
        acc = (uint32_t *)p, p += len * sizeof(uint32_t);
        rs_axis_fill(&ay);
    }
    if (need_h && need_v) {
        uint8_t *tmp = p; /* the horizontal result of rows [ylo, yhi) */
        rs_horizontal(&ax, src, sw, ch, ylo, yhi, tmp, len);
        rs_vertical(&ay, tmp, len, ylo, len, acc, dst, dstride);
    } else if (need_h) {
        rs_horizontal(&ax, src, sw, ch, y0, y0 + nh, dst, dstride);
    } else {
        rs_vertical(&ay, src + (size_t)x0 * ch, (size_t)sw * ch, 0, len, acc,
                    dst, dstride);
    }
    free(mem);
    return 0;
}

static int rs_check(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t ch,
                    const uint8_t *dst, int filter)
{
    if (!src || !dst || sw == 0 || sh == 0 || (ch != 1 && ch != 3) ||
        (uint64_t)sw * sh > PV_MAX_PIXELS ||
        (filter != IMG_FILTER_BILINEAR && filter != IMG_FILTER_BICUBIC))
        return PV_EINVAL;
    return 0;
}

int img_resize_pil(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t ch,
                   uint8_t *dst, uint32_t dw, uint32_t dh, int filter)
{
    int rc = rs_check(src, sw, sh, ch, dst, filter);
    if (rc)
        return rc;
    if (dw == 0 || dh == 0 || (uint64_t)dw * dh > PV_MAX_PIXELS)
        return PV_EINVAL;
    return rs_resize_window(src, sw, sh, ch, dw, dh, filter, 0, dw, 0, dh,
                            dst, (size_t)dw * ch);
}

/* Python's a // b for b > 0. */
static int64_t rs_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

int img_resize_short_crop(const uint8_t *src, uint32_t sw, uint32_t sh,
                          uint32_t ch, uint32_t side, uint32_t crop, int filter,
                          uint8_t *dst)
{
    uint32_t rw, rh, shortside, longside, newlong;
    int64_t top, left, x0, x1, y0, y1;
    uint32_t y;
    size_t ostride;
    int rc = rs_check(src, sw, sh, ch, dst, filter);

    if (rc)
        return rc;
    if (side == 0 || crop == 0 || (uint64_t)crop * crop > PV_MAX_PIXELS)
        return PV_EINVAL;
    /* HF get_resize_output_image_size(default_to_square=False): the width
     * is the short side when the sides are equal; int(side * long / short)
     * is a correctly rounded double quotient of exact integers, truncated. */
    shortside = sw <= sh ? sw : sh;
    longside = sw <= sh ? sh : sw;
    {
        double q = (double)((uint64_t)side * longside) / shortside;
        if (q >= 4294967296.0)
            return PV_EINVAL;
        newlong = (uint32_t)q;
    }
    rw = sw <= sh ? side : newlong;
    rh = sw <= sh ? newlong : side;
    if ((uint64_t)rw * rh > PV_MAX_PIXELS)
        return PV_EINVAL;

    /* HF center_crop: top = (H - crop) // 2, left likewise (Python floor
     * division). When the image is smaller than crop on a side, HF pads it
     * with zeros, ceil((crop - H) / 2) before it, and crops from there;
     * that is the same as reading rows top .. top + crop - 1 of the resized
     * image with zeros outside it, which is what this does. */
    top = rs_floordiv((int64_t)rh - crop, 2);
    left = rs_floordiv((int64_t)rw - crop, 2);
    y0 = top < 0 ? 0 : top;
    y1 = top + crop > rh ? rh : top + crop;
    x0 = left < 0 ? 0 : left;
    x1 = left + crop > rw ? rw : left + crop;
    ostride = (size_t)crop * ch;

    rc = rs_resize_window(src, sw, sh, ch, rw, rh, filter, (uint32_t)x0,
                          (uint32_t)(x1 - x0), (uint32_t)y0,
                          (uint32_t)(y1 - y0),
                          dst + (size_t)(y0 - top) * ostride +
                              (size_t)(x0 - left) * ch,
                          ostride);
    if (rc)
        return rc;
    if (y0 > top || y1 < top + crop || x0 > left || x1 < left + crop) {
        /* zeros around the picture: the samples the resize left */
        for (y = 0; y < crop; y++) {
            uint8_t *o = dst + (size_t)y * ostride;
            if ((int64_t)y + top < y0 || (int64_t)y + top >= y1)
                memset(o, 0, ostride);
            else {
                memset(o, 0, (size_t)(x0 - left) * ch);
                memset(o + (size_t)(x1 - left) * ch, 0,
                       (size_t)(left + crop - x1) * ch);
            }
        }
    }
    return 0;
}
