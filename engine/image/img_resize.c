/*
 * img_resize.c - area-averaging resize and EXIF orientation (engine/image room).
 *
 * Area averaging ("box filter with exact coverage", what OpenCV calls
 * INTER_AREA for shrinking): output pixel i on an axis covers the source
 * interval [i*S/D, (i+1)*S/D), and its value is the mean of the source pixels
 * under it, each weighted by the length of its overlap with the interval.
 * Measured in units of 1/D of a source pixel, every boundary is an integer
 * (i*S and j*D), so coverages are computed exactly in integers and only the
 * final weight overlap/S is a float; the weights of one output pixel sum to 1.
 * The same rule serves enlarging (an output pixel then covers a fraction of
 * one or two source pixels), so one code path handles both directions.
 *
 * The filter is separable: each axis gets a table of (first source index,
 * count, weights) per output index, built once; a horizontal pass writes a
 * float image of src_h x dst_w, a vertical pass folds its rows into the
 * output. Sums are kept in float and rounded to nearest at the end. Cost is
 * O((S + D) per row/column), the tables hold at most S + D weights per axis.
 *
 * img_orient maps every displayed pixel back to the stored pixel it shows,
 * for the eight EXIF orientations (TIFF 6.0 / EXIF 2.3 tag 0x0112).
 */
#include "img.h"

#include "pixvec.h"
#include "pv_util.h"

#include <stdlib.h>
#include <string.h>

typedef struct axis_tab {
    uint32_t *first; /* first source index for output i */
    uint32_t *count; /* source pixels it covers */
    uint32_t *off;   /* where its weights start in wt */
    float *wt;
} axis_tab;

static void axis_free(axis_tab *t)
{
    free(t->first);
    free(t->count);
    free(t->off);
    free(t->wt);
    memset(t, 0, sizeof *t);
}

static int axis_build(axis_tab *t, uint32_t src, uint32_t dst)
{
    uint64_t total = (uint64_t)src + dst; /* bound on the sum of counts */
    uint32_t i, pos = 0;

    memset(t, 0, sizeof *t);
    t->first = pv_alloc_array(dst, sizeof *t->first);
    t->count = pv_alloc_array(dst, sizeof *t->count);
    t->off = pv_alloc_array(dst, sizeof *t->off);
    t->wt = pv_alloc_array((size_t)total, sizeof *t->wt);
    if (t->first == NULL || t->count == NULL || t->off == NULL || t->wt == NULL) {
        axis_free(t);
        return PV_ENOMEM;
    }
    for (i = 0; i < dst; i++) {
        uint64_t lo = (uint64_t)i * src, hi = lo + src;
        uint32_t first = (uint32_t)(lo / dst), last = (uint32_t)((hi - 1) / dst);
        uint32_t j;

        t->first[i] = first;
        t->count[i] = last - first + 1;
        t->off[i] = pos;
        for (j = first; j <= last; j++) {
            uint64_t a = (uint64_t)j * dst, b = a + dst;
            uint64_t cov = (hi < b ? hi : b) - (lo > a ? lo : a);
            t->wt[pos++] = (float)((double)cov / (double)src);
        }
    }
    return PV_OK;
}

int img_resize_area(const uint8_t *src, uint32_t src_w, uint32_t src_h,
                    uint32_t channels, uint8_t *dst, uint32_t dst_w,
                    uint32_t dst_h)
{
    axis_tab tx = {0}, ty = {0};
    float *tmp = NULL, *acc = NULL;
    size_t row_out, x, y, k, ch;
    int rc;

    if (src == NULL || dst == NULL || src_w == 0 || src_h == 0 ||
        dst_w == 0 || dst_h == 0 || channels == 0)
        return PV_EINVAL;
    row_out = (size_t)dst_w * channels;
    rc = axis_build(&tx, src_w, dst_w);
    if (rc == PV_OK)
        rc = axis_build(&ty, src_h, dst_h);
    if (rc != PV_OK)
        goto done;
    if (row_out > SIZE_MAX / sizeof *tmp) {
        rc = PV_ENOMEM;
        goto done;
    }
    tmp = pv_alloc_array((size_t)src_h, row_out * sizeof *tmp);
    acc = pv_alloc_array(row_out, sizeof *acc);
    if (tmp == NULL || acc == NULL) {
        rc = PV_ENOMEM;
        goto done;
    }

    /* Horizontal: src_h rows of src_w pixels -> src_h rows of dst_w. */
    for (y = 0; y < src_h; y++) {
        const uint8_t *srow = src + y * (size_t)src_w * channels;
        float *trow = tmp + y * row_out;
        for (x = 0; x < dst_w; x++) {
            const float *w = tx.wt + tx.off[x];
            const uint8_t *s = srow + (size_t)tx.first[x] * channels;
            for (ch = 0; ch < channels; ch++) {
                float sum = 0.0f;
                for (k = 0; k < tx.count[x]; k++)
                    sum += w[k] * (float)s[k * channels + ch];
                trow[x * channels + ch] = sum;
            }
        }
    }

    /* Vertical: fold the covered rows of tmp into each output row. */
    for (y = 0; y < dst_h; y++) {
        const float *w = ty.wt + ty.off[y];
        uint8_t *drow = dst + y * row_out;
        memset(acc, 0, row_out * sizeof *acc);
        for (k = 0; k < ty.count[y]; k++) {
            const float *trow = tmp + (ty.first[y] + k) * row_out;
            for (x = 0; x < row_out; x++)
                acc[x] += w[k] * trow[x];
        }
        for (x = 0; x < row_out; x++) {
            float v = acc[x] + 0.5f;
            drow[x] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    }
    rc = PV_OK;
done:
    axis_free(&tx);
    axis_free(&ty);
    free(tmp);
    free(acc);
    return rc;
}

int img_orient(img *im, int orientation)
{
    uint32_t w, h, c, ow, oh, x, y;
    uint8_t *dst;

    if (im == NULL || im->px == NULL)
        return PV_EINVAL;
    if (orientation < 2 || orientation > 8)
        return PV_OK;
    w = im->w;
    h = im->h;
    c = im->channels;
    ow = orientation >= 5 ? h : w;
    oh = orientation >= 5 ? w : h;
    dst = pv_alloc_array((size_t)w * h, c);
    if (dst == NULL)
        return PV_ENOMEM;
    /* For every displayed pixel (x, y), the stored pixel (sx, sy) it shows. */
    for (y = 0; y < oh; y++) {
        for (x = 0; x < ow; x++) {
            uint32_t sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;         /* mirror left-right */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break; /* rotate 180 */
            case 4: sx = x; sy = h - 1 - y; break;         /* mirror top-bottom */
            case 5: sx = y; sy = x; break;                 /* transpose */
            case 6: sx = y; sy = h - 1 - x; break;         /* rotate 90 cw */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break; /* transverse */
            default: sx = w - 1 - y; sy = x; break;        /* 8: rotate 90 ccw */
            }
            memcpy(dst + ((size_t)y * ow + x) * c,
                   im->px + ((size_t)sy * w + sx) * c, c);
        }
    }
    free(im->px);
    im->px = dst;
    im->w = ow;
    im->h = oh;
    if (orientation >= 5) {
        /* orig_* is the size as displayed, so it turns with the pixels. */
        uint32_t t = im->orig_w;
        im->orig_w = im->orig_h;
        im->orig_h = t;
    }
    return PV_OK;
}
