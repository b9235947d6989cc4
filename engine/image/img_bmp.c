/*
 * img_bmp.c - Windows and OS/2 bitmaps, our own reader (engine/image
 * room; img_formats.h).
 *
 * Debian has no small BMP library (the readers it ships live inside
 * ImageMagick, GraphicsMagick, gdk-pixbuf or SDL_image, each a framework
 * with many other formats), and BMP is simple: a file header, an info
 * header, a palette or bit masks, and rows. So it is read here, every
 * field assembled little-endian byte by byte, every offset and size
 * checked against the file's length before it is used.
 *
 * Layout (all little-endian):
 *   0   2  "BM"              14  4  info header size: 12 (OS/2 1.x
 *   2   4  file size (unused)       BITMAPCOREHEADER), 40 (BITMAPINFOHEADER),
 *   6   4  reserved                 52, 56 (Adobe's V2/V3), 108 (V4),
 *  10   4  offset of the pixels     124 (V5). 16 and 64 (OS/2 2.x) are
 *                                   refused, as any other size.
 *   12-byte header: 18 width u16, 20 height u16, 22 planes, 24 bit count.
 *   40 and up: 18 width i32, 22 height i32 (negative: rows stored top-down;
 *   INT32_MIN refused), 26 planes, 28 bit count u16, 30 compression u32,
 *   46 colours used u32; 52 and up: R, G, B masks at 54, 58, 62; 56 and
 *   up: the alpha mask at 66. A 40-byte header with BI_BITFIELDS (or
 *   BI_ALPHABITFIELDS) is followed by 3 (4) masks. Then the palette: 3-byte
 *   BGR entries after a 12-byte header, 4-byte BGRX after the others.
 *
 * Supported: 1, 4 and 8 bits with a palette (biClrUsed entries, or 2^bits
 * when 0 or more, and never more than the file holds before the pixels;
 * an index beyond the palette reads as black, as Windows and Chromium
 * show it, rather than refusing the file); 16 bits (5-5-5 by default, or
 * the BI_BITFIELDS masks); 24 bits BGR; 32 bits (BGRX by default, the
 * fourth byte ignored, or BI_BITFIELDS/BI_ALPHABITFIELDS masks); BI_RLE8
 * and BI_RLE4. A mask's field is scaled to 8 bits exactly (v * 255 / max,
 * rounded). Alpha is honoured only when an alpha mask is given with bit
 * fields and, as browsers do, when not every pixel's alpha is 0 (writers
 * that leave the byte at 0 mean opaque); the sink composites it over white.
 * Refused, with the reason: BI_JPEG and BI_PNG (a JPEG or PNG inside a
 * BMP), other compressions, bit counts that do not go with the
 * compression, OS/2 2.x headers.
 *
 * Limits: the size is checked with img_check_pixels first. Uncompressed,
 * the rows the header implies (stride * height, the stride padded to 4
 * bytes, in 64 bits) must all be in the file, or the file is refused as
 * truncated before anything is allocated: a small file cannot claim a
 * large image. Those rows are already in memory, so they go to the sink
 * top row first without any copy (a bottom-up file is read from its end).
 * RLE data expands (a run of 255 in 2 bytes, a delta skipping whole rows),
 * so it is decoded into palette indices (one byte a pixel, plus a bit a
 * pixel for the ones it sets) within the header's size: every run is
 * clipped to the row, every delta to the image. Pixels an RLE stream skips
 * (deltas, an early end of line or of bitmap) are transparent, as
 * browsers show them: white, the sink's background. RLE data that ends before
 * its end-of-bitmap marker and before its last row is truncated.
 */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

#include <stdlib.h>
#include <string.h>

enum {
    BMP_RGB = 0,
    BMP_RLE8 = 1,
    BMP_RLE4 = 2,
    BMP_BITFIELDS = 3,
    BMP_JPEG = 4,
    BMP_PNG = 5,
    BMP_ALPHABITFIELDS = 6,
};

typedef struct bmp {
    const uint8_t *buf;
    size_t n;
    uint32_t hs; /* info header size */
    uint32_t w, h, bpp, comp;
    int topdown;
    size_t off;       /* pixel data */
    uint32_t mask[4]; /* R, G, B, A (A 0: none) */
    uint32_t shift[4], max[4];
    uint8_t pal[256][3]; /* RGB; beyond the file's palette, black */
} bmp;

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A mask's field of v, scaled to 0..255 (0 for an empty mask). */
static uint8_t bmp_field(const bmp *b, int c, uint32_t v)
{
    uint32_t f = (v & b->mask[c]) >> b->shift[c], max = b->max[c];

    if (max == 255)
        return (uint8_t)f;
    return max ? (uint8_t)(((uint64_t)f * 255 + max / 2) / max) : 0;
}

static uint32_t bmp_pixel(const bmp *b, const uint8_t *row, uint32_t x)
{
    return b->bpp == 16 ? le16(row + 2 * (size_t)x) : le32(row + 4 * (size_t)x);
}

/* Parse and check the headers, the masks and the palette. */
static int bmp_header(bmp *b, char *err, size_t errlen)
{
    const uint8_t *buf = b->buf;
    size_t n = b->n, end, pal_n, avail;
    uint32_t ncolors = 0, esize, i;
    int32_t sw, sh;
    int rc;

    if (n < 18) {
        pv_set_err(err, errlen, "truncated: %zu bytes, shorter than a BMP header", n);
        return PV_EDECODE;
    }
    b->hs = le32(buf + 14);
    switch (b->hs) {
    case 12:
    case 40:
    case 52:
    case 56:
    case 108:
    case 124:
        break;
    case 16:
    case 64:
        pv_set_err(err, errlen, "OS/2 2.x BMP (%u-byte info header) is not supported", b->hs);
        return PV_EDECODE;
    default:
        pv_set_err(err, errlen, "BMP info header of %u bytes is not supported", b->hs);
        return PV_EDECODE;
    }
    end = 14 + (size_t)b->hs;
    if (n < end) {
        pv_set_err(err, errlen, "truncated: the file ends in the %u-byte info header", b->hs);
        return PV_EDECODE;
    }
    if (b->hs == 12) {
        b->w = le16(buf + 18);
        b->h = le16(buf + 20);
        b->bpp = le16(buf + 24);
        b->comp = BMP_RGB;
    } else {
        sw = (int32_t)le32(buf + 18);
        sh = (int32_t)le32(buf + 22);
        b->bpp = le16(buf + 28);
        b->comp = le32(buf + 30);
        ncolors = le32(buf + 46);
        if (sw < 0 || sh == INT32_MIN) {
            pv_set_err(err, errlen, "bad size in the header: width %d, height %d", (int)sw,
                       (int)sh);
            return PV_EDECODE;
        }
        b->w = (uint32_t)sw;
        b->topdown = sh < 0;
        b->h = sh < 0 ? (uint32_t)-sh : (uint32_t)sh;
    }
    if ((rc = img_check_pixels(b->w, b->h, err, errlen)) != PV_OK)
        return rc;

    switch (b->comp) {
    case BMP_RGB:
        rc = b->bpp == 1 || b->bpp == 4 || b->bpp == 8 || b->bpp == 24 ||
             (b->hs > 12 && (b->bpp == 16 || b->bpp == 32));
        break;
    case BMP_RLE8:
        rc = b->bpp == 8;
        break;
    case BMP_RLE4:
        rc = b->bpp == 4;
        break;
    case BMP_BITFIELDS:
    case BMP_ALPHABITFIELDS:
        rc = b->bpp == 16 || b->bpp == 32;
        break;
    case BMP_JPEG:
    case BMP_PNG:
        pv_set_err(err, errlen, "a %s inside a BMP (BI_%s) is not supported",
                   b->comp == BMP_JPEG ? "JPEG" : "PNG", b->comp == BMP_JPEG ? "JPEG" : "PNG");
        return PV_EDECODE;
    default:
        pv_set_err(err, errlen, "BMP compression %u is not supported", b->comp);
        return PV_EDECODE;
    }
    if (!rc) {
        pv_set_err(err, errlen, "%u bits a pixel with BMP compression %u is not supported", b->bpp,
                   b->comp);
        return PV_EDECODE;
    }

    /* Bit masks: after a 40-byte header, in the larger ones. */
    if (b->comp == BMP_BITFIELDS || b->comp == BMP_ALPHABITFIELDS) {
        /* at 54 either way: after a 40-byte header, or inside a larger one
         * (R, G, B, and A from 56 bytes on) */
        uint32_t nm = b->hs >= 56 ? 4 : 3;
        if (b->hs == 40) {
            nm = b->comp == BMP_ALPHABITFIELDS ? 4 : 3;
            if (n < end + 4 * (size_t)nm) {
                pv_set_err(err, errlen, "truncated: the file ends in the bit masks");
                return PV_EDECODE;
            }
            end += 4 * (size_t)nm;
        }
        for (i = 0; i < nm; i++)
            b->mask[i] = le32(buf + 54 + 4 * i);
    } else if (b->bpp == 16) {
        b->mask[0] = 0x7c00;
        b->mask[1] = 0x03e0;
        b->mask[2] = 0x001f;
    } else if (b->bpp == 32) {
        b->mask[0] = 0xff0000;
        b->mask[1] = 0x00ff00;
        b->mask[2] = 0x0000ff;
    }
    for (i = 0; i < 4; i++) {
        uint32_t m = b->mask[i], s = 0;
        while (m != 0 && !(m & 1)) {
            m >>= 1;
            s++;
        }
        b->shift[i] = s;
        b->max[i] = m;
    }

    b->off = le32(buf + 10);
    if (b->off < end) {
        pv_set_err(err, errlen, "pixel data offset %zu inside the headers (which end at %zu)",
                   b->off, end);
        return PV_EDECODE;
    }
    if (b->off > n) {
        pv_set_err(err, errlen,
                   "truncated: pixel data offset %zu beyond the end of the file (%zu bytes)",
                   b->off, n);
        return PV_EDECODE;
    }

    /* The palette, between the headers and the pixels. */
    memset(b->pal, 0, sizeof b->pal);
    if (b->bpp <= 8) {
        pal_n = (size_t)1 << b->bpp;
        if (ncolors != 0 && ncolors < pal_n)
            pal_n = ncolors;
        esize = b->hs == 12 ? 3 : 4;
        avail = (b->off - end) / esize;
        if (pal_n > avail)
            pal_n = avail;
        if (pal_n == 0) {
            pv_set_err(err, errlen, "a %u-bit BMP without a palette", b->bpp);
            return PV_EDECODE;
        }
        for (i = 0; i < pal_n; i++) {
            const uint8_t *e = buf + end + (size_t)i * esize;
            b->pal[i][0] = e[2];
            b->pal[i][1] = e[1];
            b->pal[i][2] = e[0];
        }
    }
    return PV_OK;
}

/* Uncompressed file row `src` to RGB (sc 3) or RGBA (sc 4) in dst. */
static void bmp_row(const bmp *b, const uint8_t *src, uint8_t *dst, uint32_t sc)
{
    uint32_t x;

    for (x = 0; x < b->w; x++, dst += sc) {
        uint32_t v;
        switch (b->bpp) {
        case 1:
            memcpy(dst, b->pal[src[x >> 3] >> (7 - (x & 7)) & 1], 3);
            break;
        case 4:
            memcpy(dst, b->pal[x & 1 ? src[x >> 1] & 15 : src[x >> 1] >> 4], 3);
            break;
        case 8:
            memcpy(dst, b->pal[src[x]], 3);
            break;
        case 24:
            dst[0] = src[3 * (size_t)x + 2];
            dst[1] = src[3 * (size_t)x + 1];
            dst[2] = src[3 * (size_t)x];
            break;
        default: /* 16, 32 */
            v = bmp_pixel(b, src, x);
            dst[0] = bmp_field(b, 0, v);
            dst[1] = bmp_field(b, 1, v);
            dst[2] = bmp_field(b, 2, v);
            if (sc == 4)
                dst[3] = bmp_field(b, 3, v);
            break;
        }
    }
}

/* Any pixel's alpha field not 0? (the rows are all in the file) */
static int bmp_any_alpha(const bmp *b, size_t stride)
{
    uint32_t x, y;

    for (y = 0; y < b->h; y++) {
        const uint8_t *row = b->buf + b->off + (size_t)y * stride;
        for (x = 0; x < b->w; x++)
            if (bmp_pixel(b, row, x) & b->mask[3])
                return 1;
    }
    return 0;
}

static void bmp_uncompressed(const bmp *b, img_sink *sink, uint8_t *row, uint32_t sc)
{
    size_t stride = (size_t)(((uint64_t)b->w * b->bpp + 31) / 32 * 4);
    uint32_t y;

    for (y = 0; y < b->h; y++) {
        uint32_t fy = b->topdown ? y : b->h - 1 - y;
        bmp_row(b, b->buf + b->off + (size_t)fy * stride, row, sc);
        img_sink_row(sink, row);
    }
}

/* BI_RLE8 / BI_RLE4 into idx (w*h, file row order) and set (a bit a pixel). */
static int bmp_rle(const bmp *b, uint8_t *idx, uint8_t *set, char *err, size_t errlen)
{
    const uint8_t *p = b->buf + b->off;
    size_t len = b->n - b->off, i = 0;
    uint32_t x = 0, y = 0, k;
    int rle4 = b->comp == BMP_RLE4;

    while (y < b->h) {
        uint32_t c, v;
        if (len - i < 2)
            goto truncated;
        c = p[i];
        v = p[i + 1];
        i += 2;
        if (c > 0 || v > 2) {
            /* a run of c pixels of v, or v literal pixels (padded to 2 bytes) */
            const uint8_t *lit = p + i;
            uint32_t cnt = c > 0 ? c : v;
            if (c == 0) {
                size_t bytes = rle4 ? (v + 1) / 2 : v;
                if (len - i < bytes)
                    goto truncated;
                i += bytes + (bytes & 1);
                if (i > len)
                    i = len; /* the padding byte may be the file's last */
            }
            for (k = 0; k < cnt && x < b->w; k++, x++) {
                size_t pos = (size_t)y * b->w + x;
                uint32_t s = c > 0 ? v : rle4 ? lit[k >> 1] : lit[k];
                idx[pos] = (uint8_t)(rle4 ? (k & 1 ? s & 15 : s >> 4) : s);
                set[pos >> 3] |= (uint8_t)(1u << (pos & 7));
            }
        } else if (v == 0) { /* end of line */
            x = 0;
            y++;
        } else if (v == 1) { /* end of bitmap */
            break;
        } else { /* delta */
            if (len - i < 2)
                goto truncated;
            x += p[i];
            y += p[i + 1];
            i += 2;
            if (x > b->w)
                x = b->w;
        }
    }
    return PV_OK;
truncated:
    pv_set_err(err, errlen, "truncated: the RLE data ends in row %u of %u", y + 1, b->h);
    return PV_EDECODE;
}

/* RLE rows go to the sink in the caller's layout (sc = channels: RGB, or
 * grey by the sink's img_luma), skipped pixels white: the bytes alpha 0
 * through the sink would give, without a conversion a pixel, since a few
 * bytes of RLE can claim the largest image. */
static int bmp_compressed(const bmp *b, img_sink *sink, uint8_t *row, uint32_t sc, char *err,
                          size_t errlen)
{
    size_t npix = (size_t)b->w * b->h;
    uint8_t *idx = pv_alloc_array(npix, 1), *set = pv_calloc_array(npix / 8 + 1, 1);
    uint8_t pal[256][3];
    uint32_t x, y, i;
    int rc = PV_ENOMEM;

    if (idx == NULL || set == NULL) {
        pv_set_err(err, errlen, "out of memory for %ux%u", b->w, b->h);
        goto done;
    }
    if ((rc = bmp_rle(b, idx, set, err, errlen)) != PV_OK)
        goto done;
    memcpy(pal, b->pal, sizeof pal);
    if (sc == 1)
        for (i = 0; i < 256; i++)
            pal[i][0] = img_luma(pal[i][0], pal[i][1], pal[i][2]);
    for (y = 0; y < b->h; y++) {
        size_t pos = (size_t)(b->topdown ? y : b->h - 1 - y) * b->w;
        for (x = 0; x < b->w; x++, pos++) {
            uint8_t *d = row + sc * (size_t)x;
            if (set[pos >> 3] >> (pos & 7) & 1)
                memcpy(d, pal[idx[pos]], sc);
            else
                memset(d, 255, sc); /* skipped: transparent, white */
        }
        img_sink_row(sink, row);
    }
done:
    free(idx);
    free(set);
    return rc;
}

int img_decode_bmp(IMG_DECODER_ARGS)
{
    bmp b;
    img_sink sink;
    uint8_t *row = NULL;
    uint32_t sc = 3;
    int rc, rle;

    memset(&b, 0, sizeof b);
    memset(&sink, 0, sizeof sink);
    b.buf = buf;
    b.n = n;
    if ((rc = bmp_header(&b, err, errlen)) != PV_OK)
        goto done;
    rle = b.comp == BMP_RLE8 || b.comp == BMP_RLE4;
    if (!rle) {
        uint64_t stride = ((uint64_t)b.w * b.bpp + 31) / 32 * 4;
        uint64_t need = stride * b.h; /* < 2^27 * 2^27: no overflow */
        if (need > b.n - b.off) {
            pv_set_err(err, errlen,
                       "truncated: the pixel data needs %llu bytes at offset %zu, the file "
                       "has %zu",
                       (unsigned long long)need, b.off, b.n - b.off);
            rc = PV_EDECODE;
            goto done;
        }
        if (b.mask[3] != 0 && bmp_any_alpha(&b, (size_t)stride))
            sc = 4;
    } else {
        sc = channels;
    }
    rc = img_sink_begin(&sink, b.w, b.h, sc, channels, min_w, min_h, 1, err, errlen);
    if (rc != PV_OK)
        goto done;
    if ((row = pv_alloc_array(b.w, sc)) == NULL) {
        pv_set_err(err, errlen, "out of memory for %ux%u", b.w, b.h);
        rc = PV_ENOMEM;
        goto done;
    }
    if (rle && (rc = bmp_compressed(&b, &sink, row, sc, err, errlen)) != PV_OK)
        goto done;
    if (!rle)
        bmp_uncompressed(&b, &sink, row, sc);
    rc = img_sink_finish(&sink, out, err, errlen);
done:
    img_sink_free(&sink);
    free(row);
    return rc;
}
