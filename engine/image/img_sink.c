/*
 * img_sink.c - what every decoder shares: the size check, EXIF
 * orientation, pixel conversion, and the row sink that reduces a large
 * image while it is decoded (engine/image room; img_formats.h).
 */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

#include <libexif/exif-data.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int img_check_pixels(uint32_t w, uint32_t h, char *err, size_t errlen)
{
    if (w == 0 || h == 0) {
        pv_set_err(err, errlen, "%ux%u pixels: the header gives a zero side", w, h);
        return PV_EDECODE;
    }
    if ((uint64_t)w * h > IMG_MAX_PIXELS) {
        pv_set_err(err, errlen, "%ux%u pixels, more than the limit of %u", w, h,
                   (unsigned)IMG_MAX_PIXELS);
        return PV_ETOOBIG;
    }
    return PV_OK;
}

int img_exif_orientation(const uint8_t *exif, size_t n)
{
    static const uint8_t prefix[6] = {'E', 'x', 'i', 'f', 0, 0};
    uint8_t *own = NULL;
    ExifData *ed;
    ExifEntry *e;
    int o = 1;

    if (exif == NULL || n < 8 || n > (64u << 20))
        return 1;
    /* libexif takes the block as JPEG's APP1 holds it: with the prefix. */
    if (memcmp(exif, prefix, sizeof prefix) != 0) {
        own = malloc(n + sizeof prefix);
        if (own == NULL)
            return 1;
        memcpy(own, prefix, sizeof prefix);
        memcpy(own + sizeof prefix, exif, n);
        exif = own;
        n += sizeof prefix;
    }
    ed = exif_data_new();
    if (ed != NULL) {
        /* We only read one tag: do not let libexif "fix" the block. */
        exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
        exif_data_load_data(ed, exif, (unsigned)n);
        e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
        if (e != NULL && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data != NULL &&
            e->size >= 2)
            o = exif_get_short(e->data, exif_data_get_byte_order(ed));
        exif_data_unref(ed);
    }
    free(own);
    return o >= 1 && o <= 8 ? o : 1;
}

void img_convert(const uint8_t *src, uint32_t sc, uint8_t *dst, uint32_t channels, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *s = src + i * sc;
        uint32_t r, g, b;
        if (sc <= 2) {
            r = g = b = sc == 2 ? img_over_white(s[0], s[1]) : s[0];
            if (channels == 1) {
                dst[i] = (uint8_t)r;
                continue;
            }
        } else if (sc == 3) {
            r = s[0];
            g = s[1];
            b = s[2];
        } else {
            r = img_over_white(s[0], s[3]);
            g = img_over_white(s[1], s[3]);
            b = img_over_white(s[2], s[3]);
        }
        if (channels == 1) {
            dst[i] = img_luma(r, g, b);
        } else {
            dst[3 * i] = (uint8_t)r;
            dst[3 * i + 1] = (uint8_t)g;
            dst[3 * i + 2] = (uint8_t)b;
        }
    }
}

int img_sink_begin(img_sink *s, uint32_t w, uint32_t h, uint32_t sc, uint32_t channels,
                   uint32_t min_w, uint32_t min_h, int orientation, char *err, size_t errlen)
{
    int rc;

    memset(s, 0, sizeof *s);
    if (sc < 1 || sc > 4 || (channels != 1 && channels != 3)) {
        pv_set_err(err, errlen, "bad argument");
        return PV_EINVAL;
    }
    if ((rc = img_check_pixels(w, h, err, errlen)) != PV_OK)
        return rc;
    s->w = s->out_w = w;
    s->h = s->out_h = h;
    s->sc = sc;
    s->channels = channels;
    s->orientation = orientation >= 1 && orientation <= 8 ? orientation : 1;
    /* The caller's minimum is as displayed; rows come as stored. */
    if (s->orientation >= 5)
        (void)img_reduce_size(&s->out_w, &s->out_h, min_h, min_w);
    else
        (void)img_reduce_size(&s->out_w, &s->out_h, min_w, min_h);
    s->px = pv_alloc_array((size_t)s->out_w * s->out_h, channels);
    if (s->px == NULL)
        goto nomem;
    if (s->out_w != w || s->out_h != h) {
        if (sc != channels && (s->conv = pv_alloc_array(w, channels)) == NULL)
            goto nomem;
        rc = img_area_new(w, h, channels, s->px, s->out_w, s->out_h, 0, &s->area);
        if (rc != PV_OK) {
            img_sink_free(s);
            pv_set_err(err, errlen, "out of memory for %ux%u", w, h);
            return rc;
        }
    }
    return PV_OK;
nomem:
    img_sink_free(s);
    pv_set_err(err, errlen, "out of memory for %ux%u", w, h);
    return PV_ENOMEM;
}

void img_sink_row(img_sink *s, const uint8_t *row)
{
    if (s->px == NULL || s->y >= s->h)
        return;
    if (s->area == NULL && s->sc == s->channels) {
        memcpy(s->px + (size_t)s->y * s->w * s->channels, row, (size_t)s->w * s->channels);
    } else if (s->area == NULL) {
        img_convert(row, s->sc, s->px + (size_t)s->y * s->w * s->channels, s->channels, s->w);
    } else if (s->conv != NULL) {
        img_convert(row, s->sc, s->conv, s->channels, s->w);
        img_area_row(s->area, s->conv);
    } else {
        img_area_row(s->area, row);
    }
    s->y++;
}

int img_sink_finish(img_sink *s, img *out, char *err, size_t errlen)
{
    img im = {0};
    int rc;

    if (s->px == NULL || s->y < s->h) {
        pv_set_err(err, errlen, "image data ends after %u of %u rows", s->y, s->h);
        return PV_EDECODE;
    }
    if (s->area != NULL && (rc = img_area_finish(s->area)) != PV_OK) {
        pv_set_err(err, errlen, "image rows missing");
        return rc;
    }
    im.w = s->out_w;
    im.h = s->out_h;
    im.orig_w = s->w;
    im.orig_h = s->h;
    im.channels = s->channels;
    im.px = s->px;
    s->px = NULL;
    if ((rc = img_orient(&im, s->orientation)) != PV_OK) {
        img_free(&im);
        pv_set_err(err, errlen, "out of memory for %ux%u", s->w, s->h);
        return rc;
    }
    *out = im;
    return PV_OK;
}

void img_sink_free(img_sink *s)
{
    if (s == NULL)
        return;
    img_area_free(s->area);
    free(s->conv);
    free(s->px);
    memset(s, 0, sizeof *s);
}
