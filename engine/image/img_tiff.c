/*
 * img_tiff.c - TIFF decoding through libtiff (engine/image room).
 *
 * libtiff reads the file from memory through TIFFClientOpenExt with our
 * read/seek/size procs over (buf, n), in mode "rm": read-only, and not
 * memory-mapped (the map procs decline), so every byte libtiff looks at
 * is copied out by tiff_read and it never keeps a pointer into the
 * caller's const buffer. Only the first directory (page) is read.
 *
 * Pixels come through libtiff's RGBA interface (TIFFRGBAImageOK, Begin,
 * Get), which covers what photographs and scans use: 1, 2, 4, 8 and 16
 * bits a sample, grey (min-is-black and min-is-white), palette, RGB,
 * RGB or grey with an alpha extra sample, CMYK (PhotometricInterpretation
 * separated, InkSet CMYK, 8 bits: R = (255-C)(255-K)/255 and so on,
 * truncated, no colour management), YCbCr, CIE L*a*b*, strips and tiles,
 * contiguous and separate planes, and whatever codecs Debian's libtiff is
 * built with (none, LZW, Deflate, PackBits, JPEG, CCITT fax, ...). 16-bit
 * samples become 8 bits by libtiff's rounding (v + 128) / 257 for colour
 * and by their high byte for grey. It refuses, with its own reason, what
 * it cannot convert (floating point samples, 16-bit CMYK, other ink sets,
 * unknown photometrics); those fail here with PV_EDECODE and "unsupported
 * TIFF: ...".
 *
 * Rows: TIFFRGBAImageGet is called for one band of rows at a time
 * (row_offset), into a raster of uint32 ABGR pixels (TIFFGetR ... TIFFGetA),
 * and each row goes to the sink (img_sink.c), which reduces a large image
 * while it comes in: the full-size image is never held. A band is one
 * strip or one row of tiles, so each is decoded once; when that is more
 * than IMG_HOLD_PIXELS pixels, the band is cut to that many (a multiple of
 * 16 rows, whole subsampling blocks), and libtiff then decodes a strip
 * again from its start for every band in it (tiles whole each time): at
 * most PV_MAX_PIXELS / IMG_HOLD_PIXELS = 32 times the work, the price of
 * bounded memory for files written as one huge strip. Rows wider than
 * IMG_HOLD_PIXELS pixels are refused (PV_ETOOBIG), and so is a YCbCr file
 * that is not JPEG-compressed whose strips or tiles are larger than that
 * (libtiff unpacks its subsampling blocks from the band's first row).
 *
 * Alpha: libtiff premultiplies unassociated alpha (its UaToAa table,
 * (v * a + 127) / 255) and passes associated alpha through, so a raster
 * pixel over white is c + 255 - a, exactly img_over_white of the
 * unpremultiplied colour. One exception: 8-bit grey with alpha (two
 * samples, contiguous) comes unpremultiplied, and is composited with
 * img_over_white unless the file says its alpha is associated.
 *
 * Orientation: libtiff's RGBA interface only flips (it treats 5..8 as
 * 1..4, without the transpose), so it is told to leave rows as stored
 * (req_orientation = the file's orientation: no flip), and the Orientation
 * tag (274, the values EXIF uses) goes to the sink, which turns the image
 * at the end as it does a JPEG's EXIF orientation; the caller's minimum
 * size is as displayed.
 *
 * Errors and limits: libtiff's error and warning handlers are per-TIFF
 * (TIFFOpenOptionsSetErrorHandlerExtR / WarningHandlerExtR, libtiff 4.5):
 * they return 1, so the process-wide handlers (which print to stderr) are
 * never called. The first error is kept in the job as the reason, after
 * our words for the stage that failed ("TIFF header or first directory
 * unreadable: ...", "TIFF strip for rows 64 to 127 unreadable: ...",
 * "unsupported TIFF: ..."); a warning that rows were padded for missing
 * data ("Premature EOF" of the fax codecs, libjpeg's "Premature end of
 * JPEG file") counts as an error, as in the JPEG decoder. ImageWidth x
 * ImageLength are checked with img_check_pixels right after the directory
 * is read, before anything is allocated for pixels, and libtiff's own
 * buffers are bounded: the strip or tile buffer (all planes) it will take
 * is checked against IMG_TIFF_MAX_ALLOC (PV_ETOOBIG), and every single
 * allocation libtiff makes against the same limit
 * (TIFFOpenOptionsSetMaxSingleMemAlloc), which also bounds the directory
 * arrays a hostile file could claim.
 */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

/* The most one libtiff allocation may take (a decoded strip or tile of all
 * planes, a directory array), the same bound as libjpeg's memory. */
#define IMG_TIFF_MAX_ALLOC (256u << 20)

/* Everything one decode owns: freed on the one exit path. */
typedef struct tiff_job {
    const uint8_t *buf;
    size_t n;
    uint64_t pos;   /* the read position of tiff_read */
    char msg[256];  /* libtiff's first error */
    char warn[256]; /* and its first warning, for when no error came */
    int lost;       /* a codec warned that data is missing */
    TIFFOpenOptions *opts;
    TIFF *tif;
    TIFFRGBAImage rgba;
    int rgba_begun;
    uint32_t *raster; /* one band of ABGR pixels */
    uint8_t *row;     /* one row of sc samples for the sink */
    img_sink sink;
} tiff_job;

/* ---- libtiff's client procs over (buf, n) ------------------------------ */

static tmsize_t tiff_read(thandle_t h, void *dst, tmsize_t size)
{
    tiff_job *j = h;
    uint64_t left;

    if (size <= 0 || j->pos >= j->n)
        return 0;
    left = j->n - j->pos;
    if ((uint64_t)size > left)
        size = (tmsize_t)left;
    memcpy(dst, j->buf + j->pos, (size_t)size);
    j->pos += (uint64_t)size;
    return size;
}

static tmsize_t tiff_write(thandle_t h, void *src, tmsize_t size)
{
    (void)h;
    (void)src;
    (void)size;
    return -1; /* opened "r": never asked */
}

static toff_t tiff_seek(thandle_t h, toff_t off, int whence)
{
    tiff_job *j = h;
    uint64_t base;

    switch (whence) {
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = j->pos;
        break;
    case SEEK_END:
        base = j->n;
        break;
    default:
        return (toff_t)-1;
    }
    if (off > UINT64_MAX / 2 || base + off > UINT64_MAX / 2)
        return (toff_t)-1;
    j->pos = base + off; /* past the end is allowed: reads there get 0 bytes */
    return j->pos;
}

static int tiff_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t tiff_size(thandle_t h)
{
    return ((tiff_job *)h)->n;
}

/* Declined: libtiff reads through tiff_read instead ("m" says so too). */
static int tiff_map(thandle_t h, void **base, toff_t *size)
{
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void tiff_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

/* ---- messages ------------------------------------------------------------ */

static void tiff_keep(char *dst, size_t len, const char *fmt, va_list ap)
{
    size_t k;

    if (dst[0] != '\0')
        return; /* the first says most; later ones follow from it */
    vsnprintf(dst, len, fmt, ap);
    /* libtiff puts the file's name first in many: ours, "TIFF" */
    if (strncmp(dst, "TIFF: ", 6) == 0)
        memmove(dst, dst + 6, strlen(dst + 6) + 1);
    k = strlen(dst);
    while (k > 0 && (dst[k - 1] == '\n' || dst[k - 1] == '.' || dst[k - 1] == ' '))
        dst[--k] = '\0';
}

static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    tiff_job *j = user;
    (void)tif;
    (void)module;
    tiff_keep(j->msg, sizeof j->msg, fmt, ap);
    return 1; /* handled: the process-wide handler (stderr) is not called */
}

static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    tiff_job *j = user;
    char w[256] = "";
    (void)tif;
    (void)module;
    tiff_keep(w, sizeof w, fmt, ap);
    if (j->warn[0] == '\0')
        memcpy(j->warn, w, sizeof w);
    /* The fax codec's "Premature EOF/EOL at line N" and libjpeg's
     * "Premature end of JPEG file" (data segment) mean the rows were
     * padded: an error, as for a JPEG file. */
    if (strstr(w, "remature") != NULL) {
        j->lost = 1;
        if (j->msg[0] == '\0')
            memcpy(j->msg, w, sizeof w);
    }
    return 1;
}

/* libtiff's reason for a failure (its first error, else its first
 * warning, else `none`). */
static const char *tiff_reason(const tiff_job *j, const char *none)
{
    if (j->msg[0] != '\0')
        return j->msg;
    return j->warn[0] != '\0' ? j->warn : none;
}

/* ---- the decoder --------------------------------------------------------- */

/* One band row of ABGR pixels to sc samples (1 grey, 3 RGB) over white.
 * premul: colour is premultiplied by alpha (c + 255 - a; clamped, since a
 * damaged file's colour may exceed its alpha). */
static void tiff_row(const uint32_t *abgr, uint32_t w, uint32_t sc, int premul, uint8_t *dst)
{
    for (uint32_t x = 0; x < w; x++) {
        uint32_t p = abgr[x], a = TIFFGetA(p);
        uint32_t c[3] = {TIFFGetR(p), TIFFGetG(p), TIFFGetB(p)};
        for (uint32_t k = 0; k < sc; k++) {
            uint32_t v = c[k];
            if (a != 255) {
                v = premul ? v + 255u - a : img_over_white(v, a);
                if (v > 255)
                    v = 255;
            }
            dst[x * sc + k] = (uint8_t)v;
        }
    }
}

static void tiff_job_free(tiff_job *j)
{
    if (j->rgba_begun)
        TIFFRGBAImageEnd(&j->rgba);
    if (j->tif != NULL)
        TIFFClose(j->tif);
    TIFFOpenOptionsFree(j->opts);
    free(j->raster);
    free(j->row);
    img_sink_free(&j->sink);
}

int img_decode_tiff(IMG_DECODER_ARGS)
{
    tiff_job *j = NULL;
    char emsg[1024] = ""; /* TIFFRGBAImageOK's reason (EMSG_BUF_SIZE) */
    uint32_t w = 0, h = 0, band, y, k, sc;
    uint16_t photometric, planar = PLANARCONFIG_CONTIG, nextra = 0, *extra = NULL;
    uint64_t bufsize;
    int rc = PV_EDECODE, premul = 1;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if ((j = calloc(1, sizeof *j)) == NULL) {
        pv_set_err(err, errlen, "out of memory");
        return PV_ENOMEM;
    }
    j->buf = buf;
    j->n = n;
    if ((j->opts = TIFFOpenOptionsAlloc()) == NULL) {
        pv_set_err(err, errlen, "out of memory");
        rc = PV_ENOMEM;
        goto done;
    }
    TIFFOpenOptionsSetMaxSingleMemAlloc(j->opts, IMG_TIFF_MAX_ALLOC);
    TIFFOpenOptionsSetErrorHandlerExtR(j->opts, tiff_on_error, j);
    TIFFOpenOptionsSetWarningHandlerExtR(j->opts, tiff_on_warning, j);
    j->tif = TIFFClientOpenExt("TIFF", "rm", (thandle_t)j, tiff_read, tiff_write, tiff_seek,
                               tiff_close, tiff_size, tiff_map, tiff_unmap, j->opts);
    if (j->tif == NULL) {
        pv_set_err(err, errlen, "TIFF header or first directory unreadable: %s",
                   tiff_reason(j, "no reason given"));
        goto done;
    }

    /* The size first: nothing is allocated for pixels before this. */
    if (!TIFFGetField(j->tif, TIFFTAG_IMAGEWIDTH, &w) ||
        !TIFFGetField(j->tif, TIFFTAG_IMAGELENGTH, &h)) {
        pv_set_err(err, errlen, "TIFF directory has no ImageWidth or ImageLength");
        goto done;
    }
    if ((rc = img_check_pixels(w, h, err, errlen)) != PV_OK)
        goto done;
    rc = PV_EDECODE;
    if (w > IMG_HOLD_PIXELS) {
        pv_set_err(err, errlen, "TIFF rows of %u pixels, more than the limit of %u", w,
                   (unsigned)IMG_HOLD_PIXELS);
        rc = PV_ETOOBIG;
        goto done;
    }
    if (!TIFFRGBAImageOK(j->tif, emsg) || !TIFFRGBAImageBegin(&j->rgba, j->tif, 1, emsg)) {
        const char *why = emsg[0] != '\0' ? emsg : tiff_reason(j, "no reason given");
        if (strncmp(why, "Sorry, ", 7) == 0)
            why += 7;
        pv_set_err(err, errlen, "unsupported TIFF: %s", why);
        goto done;
    }
    j->rgba_begun = 1;
    /* Rows as stored; the sink applies the orientation (see the top). */
    j->rgba.req_orientation = j->rgba.orientation;
    /* What libtiff will allocate to decode one strip or tile of all planes
     * (after Begin, which may have JPEG upsample YCbCr). */
    TIFFGetFieldDefaulted(j->tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(j->tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    bufsize = TIFFIsTiled(j->tif) ? TIFFTileSize64(j->tif) : TIFFStripSize64(j->tif);
    if (planar == PLANARCONFIG_SEPARATE)
        bufsize *= 4;
    if (bufsize > IMG_TIFF_MAX_ALLOC) {
        pv_set_err(err, errlen, "TIFF %s of %llu bytes decoded, more than the limit of %u",
                   TIFFIsTiled(j->tif) ? "tiles" : "strips", (unsigned long long)bufsize,
                   (unsigned)IMG_TIFF_MAX_ALLOC);
        rc = PV_ETOOBIG;
        goto done;
    }
    photometric = j->rgba.photometric;
    sc = (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE) ? 1 : 3;
    /* libtiff's putagreytile: 8-bit grey + alpha, unpremultiplied. */
    if (sc == 1 && j->rgba.isContig && j->rgba.bitspersample == 8 && j->rgba.alpha &&
        j->rgba.samplesperpixel == 2)
        premul = nextra >= 1 && extra != NULL && extra[0] == EXTRASAMPLE_ASSOCALPHA;

    rc = img_sink_begin(&j->sink, w, h, sc, channels, min_w, min_h, j->rgba.orientation, err,
                        errlen);
    if (rc != PV_OK)
        goto done;
    rc = PV_EDECODE;

    /* A band: one strip or one row of tiles, cut to IMG_HOLD_PIXELS. */
    if (TIFFIsTiled(j->tif)) {
        if (!TIFFGetField(j->tif, TIFFTAG_TILELENGTH, &band) || band == 0)
            band = 1;
    } else {
        TIFFGetFieldDefaulted(j->tif, TIFFTAG_ROWSPERSTRIP, &band);
        if (band == 0)
            band = 1;
    }
    if (band > h)
        band = h;
    if ((uint64_t)w * band > IMG_HOLD_PIXELS) {
        /* libtiff's YCbCr unpacking (not JPEG's, which libjpeg upsamples)
         * addresses rows in subsampling blocks: a band starting inside a
         * strip or tile is not safe there, and such files are rare */
        if (photometric == PHOTOMETRIC_YCBCR) {
            pv_set_err(err, errlen,
                       "TIFF YCbCr %s of %ux%u pixels, more than the "
                       "limit of %u",
                       TIFFIsTiled(j->tif) ? "tiles" : "strips", w, band,
                       (unsigned)IMG_HOLD_PIXELS);
            rc = PV_ETOOBIG;
            goto done;
        }
        band = IMG_HOLD_PIXELS / w;
        if (band > 16)
            band -= band % 16;
    }
    j->raster = pv_alloc_array((size_t)w * band, sizeof *j->raster);
    j->row = pv_alloc_array(w, sc);
    if (j->raster == NULL || j->row == NULL) {
        pv_set_err(err, errlen, "out of memory for %ux%u", w, h);
        rc = PV_ENOMEM;
        goto done;
    }
    for (y = 0; y < h; y += band) {
        uint32_t rows = h - y < band ? h - y : band;
        j->rgba.row_offset = (int)y;
        j->rgba.col_offset = 0;
        if (!TIFFRGBAImageGet(&j->rgba, j->raster, w, rows) || j->lost) {
            pv_set_err(err, errlen, "TIFF %s for rows %u to %u unreadable: %s",
                       TIFFIsTiled(j->tif) ? "tiles" : "strip", y, y + rows - 1,
                       tiff_reason(j, "no reason given"));
            goto done;
        }
        for (k = 0; k < rows; k++) {
            tiff_row(j->raster + (size_t)k * w, w, sc, premul, j->row);
            img_sink_row(&j->sink, j->row);
        }
    }
    rc = img_sink_finish(&j->sink, out, err, errlen);
done:
    tiff_job_free(j);
    free(j);
    return rc;
}
