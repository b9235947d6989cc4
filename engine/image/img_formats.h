/*
 * img_formats.h - what the decoders share (engine/image room, internal).
 *
 * img_decode (img_decode.c) recognises a file by its magic bytes and calls
 * one decoder: JPEG and PNG in img_decode.c, WebP in img_webp.c (libwebp),
 * HEIF/HEIC/AVIF in img_heif.c (libheif), TIFF in img_tiff.c (libtiff), GIF
 * in img_gif.c (giflib), BMP in img_bmp.c (our own reader). Each decoder
 * has img_decode's contract (img.h): PV_EDECODE, PV_ETOOBIG, PV_ENOMEM with
 * a reason in err; the size checked from the header before any pixel
 * buffer is allocated (img_check_pixels).
 *
 * A decoder hands its pixels to an img_sink row by row, in order, in any
 * of four layouts (grey, grey+alpha, RGB, RGBA; 8 bits). The sink converts
 * them to the caller's channels (alpha composited over white, grey as
 * Rec.601 luma, as PNG), reduces a large image while it comes in (the size
 * img_reduce_size picks, by area averaging), and applies an EXIF
 * orientation at the end. So an image never needs to be held whole at full
 * size by us; a library that decodes whole (libwebp, libheif) holds it
 * once, and the sink takes its rows from there.
 */
#ifndef PV_IMG_FORMATS_H
#define PV_IMG_FORMATS_H

#include "img.h"

#include <stddef.h>
#include <stdint.h>

#define IMG_DECODER_ARGS                                                                           \
    const uint8_t *buf, size_t n, uint32_t channels, uint32_t min_w, uint32_t min_h, img *out,     \
        char *err, size_t errlen

int img_decode_webp(IMG_DECODER_ARGS);
int img_decode_heif(IMG_DECODER_ARGS);
int img_decode_tiff(IMG_DECODER_ARGS);
int img_decode_gif(IMG_DECODER_ARGS);
int img_decode_bmp(IMG_DECODER_ARGS);

/* The pixel limit of these decoders: PV_MAX_PIXELS, except in the fuzz
 * build (CMake PV_FUZZ defines PV_FUZZING), where it is 4 megapixels: a
 * few hundred bytes can describe 100 megapixels that decode correctly in
 * a few seconds but take minutes under the sanitizers, which libFuzzer
 * would report as hangs; what the fuzzers look for is in the parsing. */
#ifdef PV_FUZZING
#define IMG_MAX_PIXELS (1u << 22)
#else
#define IMG_MAX_PIXELS PV_MAX_PIXELS
#endif

/* w x h against IMG_MAX_PIXELS (64-bit product): PV_ETOOBIG with
 * "WxH pixels, more than the limit of N", PV_EDECODE for a zero side. */
int img_check_pixels(uint32_t w, uint32_t h, char *err, size_t errlen);

/* EXIF orientation (1..8) of an EXIF block: a TIFF header and IFD0, with
 * or without the "Exif\0\0" prefix JPEG's APP1 puts before it. 1 when the
 * block has none or is malformed (the pixels are still good). */
int img_exif_orientation(const uint8_t *exif, size_t n);

/* Rec.601 luma with libjpeg's weights, rounded. */
static inline uint8_t img_luma(uint32_t r, uint32_t g, uint32_t b)
{
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
}

/* c over white, with alpha a: c*a/255 + 255*(1-a/255), rounded. */
static inline uint32_t img_over_white(uint32_t c, uint32_t a)
{
    return (c * a + 255u * (255u - a) + 127u) / 255u;
}

/* npix pixels of sc samples (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) to
 * `channels` (1 or 3). */
void img_convert(const uint8_t *src, uint32_t sc, uint8_t *dst, uint32_t channels, size_t npix);

typedef struct img_sink {
    uint32_t w, h, sc, channels; /* source size and samples, wanted channels */
    uint32_t out_w, out_h;       /* what the rows become (w x h unless reduced) */
    uint32_t y;                  /* rows taken */
    int orientation;             /* applied by img_sink_finish */
    uint8_t *px;                 /* out_w * out_h * channels */
    uint8_t *conv;               /* one converted row, when reducing */
    img_area *area;              /* when reducing */
} img_sink;

/* Start taking a w x h image of sc samples a pixel that is shown with EXIF
 * orientation `orientation` (1 when none). Checks the size
 * (img_check_pixels), picks the reduced size for min_w x min_h as
 * displayed (img_reduce_size) and allocates the output. On failure the sink
 * holds nothing (img_sink_free is still fine). */
int img_sink_begin(img_sink *s, uint32_t w, uint32_t h, uint32_t sc, uint32_t channels,
                   uint32_t min_w, uint32_t min_h, int orientation, char *err, size_t errlen);
/* The next row, w * sc bytes. Rows past h are ignored. */
void img_sink_row(img_sink *s, const uint8_t *row);
/* After all h rows: the image, oriented, to *out (which owns px after).
 * PV_EDECODE when rows are missing, PV_ENOMEM. */
int img_sink_finish(img_sink *s, img *out, char *err, size_t errlen);
void img_sink_free(img_sink *s);

#endif
