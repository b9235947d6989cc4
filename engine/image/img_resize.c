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
 * count, weights) per output index, built once. Source rows are taken one
 * at a time (img_area), so a decoder can feed rows as it decodes them and
 * never hold the source image: each row is resized horizontally into a
 * float row, which is added, with its vertical weight, into every output
 * row it covers; an output row is rounded to nearest and written as soon as
 * its last source row is in. Only the output rows still open are held: at
 * most 2 when shrinking, ceil(D/S)+1 when enlarging. Every output sample is
 * the same sequence of float operations as in a two-pass resize (horizontal
 * sums in source order, then vertical sums in source order), so the result
 * does not depend on how the rows arrive. img_resize_area is this, fed from
 * memory. Cost is O((S + D) per row/column), the tables hold at most S + D
 * weights per axis.
 *
 * For an interlaced PNG, whose pixels come in seven passes, each a sparse
 * subset of rows and columns (Adam7), img_area_put scatters pixels instead:
 * a source pixel adds its weight to the (at most two, when shrinking)
 * output columns and rows it covers, into a float per output sample. The
 * weights are the same; only the order of the sums differs.
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
    uint32_t src, dst;
} axis_tab;

struct img_area {
    uint32_t src_w, src_h, ch, dst_w, dst_h;
    int any_order;
    axis_tab tx, ty;
    uint8_t *dst;
    size_t row_out;     /* dst_w * ch */
    float *trow;        /* one source row resized horizontally */
    float *acc;         /* nacc output rows being summed (a ring of slots
                           when rows come in order, all of them otherwise) */
    uint32_t nacc;
    uint32_t y;         /* source rows seen (in order) */
    uint32_t next_open; /* first output row not yet started */
    uint32_t next_done; /* first output row not yet written */
};

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
    t->src = src;
    t->dst = dst;
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

/* The output indices source index j covers: [*lo, *hi]. Output i covers
 * [i*src, (i+1)*src) and source j covers [j*dst, (j+1)*dst), in units of
 * 1/(src*dst). */
static void axis_span(const axis_tab *t, uint32_t j, uint32_t *lo, uint32_t *hi)
{
    *lo = (uint32_t)((uint64_t)j * t->dst / t->src);
    *hi = (uint32_t)(((uint64_t)j * t->dst + t->dst - 1) / t->src);
}

/* The weight of source index j in output index i (j inside i's span). */
static float axis_weight(const axis_tab *t, uint32_t i, uint32_t j)
{
    return t->wt[t->off[i] + (j - t->first[i])];
}

void img_area_free(img_area *a)
{
    if (a == NULL)
        return;
    axis_free(&a->tx);
    axis_free(&a->ty);
    free(a->trow);
    free(a->acc);
    free(a);
}

int img_area_new(uint32_t src_w, uint32_t src_h, uint32_t channels,
                 uint8_t *dst, uint32_t dst_w, uint32_t dst_h, int any_order,
                 img_area **out)
{
    img_area *a = NULL;
    int rc;

    if (out == NULL || dst == NULL || src_w == 0 || src_h == 0 ||
        dst_w == 0 || dst_h == 0 || channels == 0)
        return PV_EINVAL;
    *out = NULL;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return PV_ENOMEM;
    a->src_w = src_w;
    a->src_h = src_h;
    a->ch = channels;
    a->dst = dst;
    a->dst_w = dst_w;
    a->dst_h = dst_h;
    a->any_order = any_order != 0;
    rc = PV_ENOMEM;
    if ((size_t)dst_w > SIZE_MAX / channels / sizeof(float))
        goto done;
    a->row_out = (size_t)dst_w * channels;
    if (a->any_order) {
        a->nacc = dst_h;
    } else if (dst_h <= src_h) {
        /* A source row is at most one output row long: it meets two. */
        a->nacc = dst_h < 2 ? dst_h : 2;
    } else {
        /* A source row spans dst_h/src_h output rows, so meets at most
         * that, rounded up, plus one. */
        uint32_t n = (uint32_t)(((uint64_t)dst_h + src_h - 1) / src_h) + 1;
        a->nacc = n < dst_h ? n : dst_h;
    }
    rc = axis_build(&a->tx, src_w, dst_w);
    if (rc == PV_OK)
        rc = axis_build(&a->ty, src_h, dst_h);
    if (rc != PV_OK)
        goto done;
    rc = PV_ENOMEM;
    a->trow = pv_alloc_array(a->row_out, sizeof *a->trow);
    a->acc = a->any_order ? pv_calloc_array(a->nacc, a->row_out * sizeof *a->acc)
                          : pv_alloc_array(a->nacc, a->row_out * sizeof *a->acc);
    if (a->trow == NULL || a->acc == NULL)
        goto done;
    *out = a;
    a = NULL;
    rc = PV_OK;
done:
    img_area_free(a);
    return rc;
}

/* Round an output row of sums to 8-bit samples. */
static void area_store(const img_area *a, const float *acc, uint32_t oy)
{
    uint8_t *drow = a->dst + (size_t)oy * a->row_out;
    size_t x;

    for (x = 0; x < a->row_out; x++) {
        float v = acc[x] + 0.5f;
        drow[x] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
    }
}

void img_area_row(img_area *a, const uint8_t *srow)
{
    const uint32_t ch = a->ch, sy = a->y;
    uint32_t oy;
    size_t x, k, c;

    if (a->any_order || sy >= a->src_h)
        return;
    a->y++;

    /* Horizontal: src_w pixels -> dst_w, each a weighted sum in source
     * order. */
    for (x = 0; x < a->dst_w; x++) {
        const float *w = a->tx.wt + a->tx.off[x];
        const uint8_t *s = srow + (size_t)a->tx.first[x] * ch;
        for (c = 0; c < ch; c++) {
            float sum = 0.0f;
            for (k = 0; k < a->tx.count[x]; k++)
                sum += w[k] * (float)s[k * ch + c];
            a->trow[x * ch + c] = sum;
        }
    }

    /* Vertical: start the output rows whose first source row this is, add
     * the row into every open one, write those it completes. */
    while (a->next_open < a->dst_h && a->ty.first[a->next_open] <= sy) {
        memset(a->acc + (size_t)(a->next_open % a->nacc) * a->row_out, 0,
               a->row_out * sizeof *a->acc);
        a->next_open++;
    }
    for (oy = a->next_done; oy < a->next_open; oy++) {
        float *acc = a->acc + (size_t)(oy % a->nacc) * a->row_out;
        const float w = axis_weight(&a->ty, oy, sy);
        for (x = 0; x < a->row_out; x++)
            acc[x] += w * a->trow[x];
    }
    while (a->next_done < a->next_open &&
           a->ty.first[a->next_done] + a->ty.count[a->next_done] - 1 == sy) {
        area_store(a, a->acc + (size_t)(a->next_done % a->nacc) * a->row_out,
                   a->next_done);
        a->next_done++;
    }
}

void img_area_put(img_area *a, uint32_t y, uint32_t x0, uint32_t dx,
                  const uint8_t *px, uint32_t n)
{
    const uint32_t ch = a->ch;
    uint32_t i, ox, lo, hi, oy, ylo, yhi;
    size_t x;

    if (!a->any_order || y >= a->src_h || n == 0)
        return;
    /* Horizontal: each pixel into the output columns it covers. */
    memset(a->trow, 0, a->row_out * sizeof *a->trow);
    for (i = 0; i < n; i++) {
        uint64_t sx = (uint64_t)x0 + (uint64_t)i * dx;
        const uint8_t *s = px + (size_t)i * ch;
        uint32_t c;
        if (sx >= a->src_w)
            break;
        axis_span(&a->tx, (uint32_t)sx, &lo, &hi);
        for (ox = lo; ox <= hi; ox++) {
            const float w = axis_weight(&a->tx, ox, (uint32_t)sx);
            float *t = a->trow + (size_t)ox * ch;
            for (c = 0; c < ch; c++)
                t[c] += w * (float)s[c];
        }
    }
    /* Vertical: into the output rows row y covers. */
    axis_span(&a->ty, y, &ylo, &yhi);
    for (oy = ylo; oy <= yhi; oy++) {
        float *acc = a->acc + (size_t)oy * a->row_out;
        const float w = axis_weight(&a->ty, oy, y);
        for (x = 0; x < a->row_out; x++)
            acc[x] += w * a->trow[x];
    }
}

int img_area_finish(img_area *a)
{
    uint32_t oy;

    if (a == NULL)
        return PV_EINVAL;
    if (a->any_order) {
        for (oy = 0; oy < a->dst_h; oy++)
            area_store(a, a->acc + (size_t)oy * a->row_out, oy);
        return PV_OK;
    }
    return a->next_done == a->dst_h ? PV_OK : PV_EINVAL;
}

int img_reduce_size(uint32_t *w, uint32_t *h, uint32_t min_w, uint32_t min_h)
{
    const uint64_t W = *w, H = *h, mw = min_w, mh = min_h;
    const int wide = W > mw, tall = H > mh;
    uint64_t mx = 1, my = 1, ow, oh;

    if (mw == 0 || mh == 0 || (!(wide && tall) && W * H <= IMG_HOLD_PIXELS))
        return 0;
    if (wide && tall) {
        /* One scale k = min(W/mw, H/mh): the side with the smaller ratio
         * becomes its minimum, the other side/k rounded down to a multiple
         * of its minimum. */
        if (W * mh <= H * mw)
            my = H * mw / (W * mh);
        else
            mx = W * mh / (H * mw);
    } else if (wide) {
        mx = W / mw;
    } else if (tall) {
        my = H / mh;
    } else {
        return 0; /* smaller than asked for on both sides: nothing to cut */
    }
    ow = wide ? mw * mx : W;
    oh = tall ? mh * my : H;
    if (ow * oh > IMG_HOLD_PIXELS) {
        /* A long strip: give up aspect on its long side. */
        if (wide && (mx >= my || !tall)) {
            mx = IMG_HOLD_PIXELS / (oh * mw);
            ow = mw * (mx > 1 ? mx : 1);
        } else if (tall) {
            my = IMG_HOLD_PIXELS / (ow * mh);
            oh = mh * (my > 1 ? my : 1);
        }
    }
    if (ow == W && oh == H)
        return 0;
    *w = (uint32_t)ow;
    *h = (uint32_t)oh;
    return 1;
}

int img_resize_area(const uint8_t *src, uint32_t src_w, uint32_t src_h,
                    uint32_t channels, uint8_t *dst, uint32_t dst_w,
                    uint32_t dst_h)
{
    img_area *a = NULL;
    size_t y, stride;
    int rc;

    if (src == NULL)
        return PV_EINVAL;
    rc = img_area_new(src_w, src_h, channels, dst, dst_w, dst_h, 0, &a);
    if (rc != PV_OK)
        return rc;
    stride = (size_t)src_w * channels;
    for (y = 0; y < src_h; y++)
        img_area_row(a, src + y * stride);
    rc = img_area_finish(a);
    img_area_free(a);
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
