/*
 * fuzz_image.c - libFuzzer target over one image decoder, built once per
 * format: fuzz_webp, fuzz_heif, fuzz_tiff, fuzz_gif and fuzz_bmp
 * (CMakeLists.txt sets PV_FUZZ_DECODER to img_decode_webp, ...). Every
 * byte of an image file is untrusted: no input may crash a decoder, read
 * outside the buffer, leak, or return success with an image that breaks
 * img_decode's contract (size, channels, orig size, px allocated).
 *
 * Each input is decoded three ways: whole in RGB, whole in grey, and
 * reduced to at least 32x32 in RGB (the path an embedder takes, where a
 * large image goes row by row into an area average). The seed corpus is
 * tests/fuzz/corpus/FORMAT/: small real files made by cwebp, heif-enc,
 * tiffcp/ImageMagick, and broken ones.
 *
 * Build: CC=clang cmake -DPV_FUZZ=ON (see scripts/ci/fuzz.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "img_formats.h"
#include "pixvec.h"

static void check(const img *im, uint32_t ch, uint32_t min_w, uint32_t min_h)
{
    uint32_t ow = im->orig_w, oh = im->orig_h;
    if (im->px == NULL || im->channels != ch || im->w == 0 || im->h == 0 ||
        (uint64_t)ow * oh > PV_MAX_PIXELS || (uint64_t)im->w * im->h > (uint64_t)ow * oh) {
        fprintf(stderr, "fuzz_image: bad result %ux%u of %ux%u, %u channels\n", im->w, im->h, ow,
                oh, im->channels);
        abort();
    }
    /* never smaller than asked, unless the image itself is */
    if ((min_w && im->w < min_w && im->w < ow && im->w < oh) ||
        (min_h && im->h < min_h && im->h < ow && im->h < oh)) {
        fprintf(stderr, "fuzz_image: %ux%u is smaller than %ux%u asked\n", im->w, im->h, min_w,
                min_h);
        abort();
    }
    volatile uint32_t sum = 0; /* every byte readable (ASan) */
    for (size_t i = 0; i < (size_t)im->w * im->h * ch; i += 61)
        sum += im->px[i];
    (void)sum;
}

static void one(const uint8_t *data, size_t size, uint32_t ch, uint32_t mw, uint32_t mh)
{
    img im = {0};
    char err[256];
    int rc = PV_FUZZ_DECODER(data, size, ch, mw, mh, &im, err, sizeof err);
    if (rc == PV_OK) {
        check(&im, ch, mw, mh);
        img_free(&im);
    } else if (err[0] == '\0' || im.px != NULL) {
        fprintf(stderr, "fuzz_image: failure %d without a reason or with pixels\n", rc);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    one(data, size, 3, 0, 0);
    one(data, size, 1, 0, 0);
    one(data, size, 3, 32, 32);
    return 0;
}
