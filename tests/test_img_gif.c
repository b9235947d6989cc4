/*
 * test_img_gif.c - the GIF decoder (engine/image/img_gif.c) through
 * img_decode: files made by ImageMagick's convert from PNGs of known
 * pixels (palette pictures, so GIF keeps them exactly), interlaced,
 * transparent and animated files, and damaged ones: truncated at several
 * points, a screen or frame of 65535x65535, a frame beyond its screen, a
 * local instead of a global colour map, no colour map at all.
 *
 * Every input is made at run time in a fresh mkdtemp directory under /tmp,
 * removed after each test. convert comes from Debian's imagemagick
 * (scripts/setup.sh installs it); without it the tests fail, naming it.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "img.h"
#include "imgtest.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX];

static void setup(void)
{
    imgt_tmpdir(dir);
}
static void teardown(void)
{
    imgt_rmtree(dir);
}

TestSuite(img_gif, .init = setup, .fini = teardown);

/* ---- the file's blocks --------------------------------------------------- */

static size_t skip_sub_blocks(const uint8_t *b, size_t n, size_t p)
{
    while (p < n && b[p] != 0)
        p += (size_t)b[p] + 1;
    return p + 1;
}

/* Offset of the k-th image descriptor (0x2c), 0 if there is none. */
static size_t image_at(const uint8_t *b, size_t n, int k)
{
    size_t p = 13;
    if (b[10] & 0x80)
        p += (size_t)3 << ((b[10] & 7) + 1);
    while (p < n) {
        if (b[p] == 0x2c) {
            if (k-- == 0)
                return p;
            p += 10;
            if (b[p - 1] & 0x80)
                p += (size_t)3 << ((b[p - 1] & 7) + 1);
            p = skip_sub_blocks(b, n, p + 1);
        } else if (b[p] == 0x21) {
            p = skip_sub_blocks(b, n, p + 2);
        } else {
            break;
        }
    }
    return 0;
}

/* A Graphic Control Extension with its transparency flag set? */
static int has_gce(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i + 4 < n; i++)
        if (b[i] == 0x21 && b[i + 1] == 0xf9 && b[i + 2] == 4 && (b[i + 3] & 1))
            return 1;
    return 0;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* A 16-colour GIF of w x h made by convert (with ARGS), its bytes and the
 * source pixels. */
static uint8_t *made_gif(uint32_t w, uint32_t h, uint32_t ncol, const char *args, uint8_t **src,
                         size_t *n)
{
    *src = imgt_palette_picture(w, h, ncol);
    imgt_write_png(dir, "src.png", w, h, 3, *src);
    imgt_tool(dir, "convert", "imagemagick", "convert src.png %s out.gif", args);
    return imgt_read(dir, "out.gif", n);
}

/* ---- pictures ------------------------------------------------------------ */

Test(img_gif, palette_exact)
{
    static const uint32_t ncols[2] = {16, 200};
    for (int k = 0; k < 2; k++) {
        uint8_t *src, *b;
        size_t n;
        img im = {0};
        b = made_gif(37, 29, ncols[k], "", &src, &n);
        cr_assert(memcmp(b, "GIF8", 4) == 0 && image_at(b, n, 0) != 0);
        cr_assert_eq(b[image_at(b, n, 0) + 9] & 0x40, 0, "convert wrote it interlaced");
        imgt_decode_mem_ok(b, n, 3, &im);
        imgt_expect_rgb(&im, 37, 29, src);
        img_free(&im);
        free(src);
        free(b);
    }
}

Test(img_gif, interlaced_exact)
{
    uint8_t *src, *b;
    size_t n, at;
    img im = {0};

    /* 29 rows: every pass has rows, the last ones partly */
    b = made_gif(41, 29, 16, "-interlace GIF", &src, &n);
    at = image_at(b, n, 0);
    cr_assert(at != 0 && (b[at + 9] & 0x40), "convert did not interlace");
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, 41, 29, src);
    img_free(&im);
    free(src);
    free(b);
}

Test(img_gif, grey_output)
{
    uint8_t *src, *b;
    size_t n;
    img im = {0};

    b = made_gif(23, 17, 16, "", &src, &n);
    imgt_decode_mem_ok(b, n, 1, &im);
    cr_assert(im.w == 23 && im.h == 17);
    for (size_t i = 0; i < 23 * 17; i++)
        cr_assert_eq(im.px[i], imgt_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]),
                     "pixel %zu: %u, want %u", i, im.px[i],
                     imgt_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]));
    img_free(&im);
    free(src);
    free(b);
}

Test(img_gif, reduced_while_read)
{
    uint8_t *src, *b, *want;
    size_t n;
    img full = {0}, small = {0};
    char err[256] = "";

    b = made_gif(96, 64, 200, "", &src, &n);
    imgt_decode_mem_ok(b, n, 3, &full);
    cr_assert_eq(img_decode(b, n, 3, 24, 16, &small, err, sizeof err), PV_OK, "%s", err);
    cr_assert(small.w == 24 && small.h == 16 && small.orig_w == 96 && small.orig_h == 64,
              "reduced to %ux%u", small.w, small.h);
    want = malloc(24 * 16 * 3);
    cr_assert_eq(img_resize_area(full.px, 96, 64, 3, want, 24, 16), PV_OK);
    cr_assert_eq(memcmp(small.px, want, 24 * 16 * 3), 0);
    free(want);
    img_free(&full);
    img_free(&small);
    free(src);
    free(b);
}

Test(img_gif, transparent_index_is_white)
{
    const uint32_t w = 19, h = 11;
    uint8_t *rgb = imgt_palette_picture(w, h, 16), *rgba = malloc(w * h * 4),
            *want = malloc(w * h * 3);
    uint8_t *b;
    size_t n;
    img im = {0};
    int transparent = 0;

    for (size_t i = 0; i < w * h; i++) {
        int clear = (i % 7) == 3;
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = clear ? 0 : 255;
        memset(want + 3 * i, 255, 3);
        if (!clear)
            memcpy(want + 3 * i, rgb + 3 * i, 3);
        transparent += clear;
    }
    imgt_write_png(dir, "a.png", w, h, 4, rgba);
    imgt_tool(dir, "convert", "imagemagick", "convert a.png t.gif");
    b = imgt_read(dir, "t.gif", &n);
    cr_assert(transparent > 0 && has_gce(b, n), "convert wrote no Graphic Control Extension");
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w, h, want);
    img_free(&im);
    /* grey: the same white */
    imgt_decode_mem_ok(b, n, 1, &im);
    for (size_t i = 0; i < w * h; i++)
        cr_assert_eq(im.px[i], imgt_luma(want[3 * i], want[3 * i + 1], want[3 * i + 2]),
                     "pixel %zu", i);
    img_free(&im);
    free(b);
    free(rgb);
    free(rgba);
    free(want);
}

Test(img_gif, animation_first_frame_only)
{
    const uint32_t w = 20, h = 10;
    uint8_t *red = malloc(w * h * 3), *blue = malloc(w * h * 3), *b;
    size_t n;
    img im = {0};

    for (size_t i = 0; i < w * h; i++) {
        red[3 * i] = 255, red[3 * i + 1] = 0, red[3 * i + 2] = 0;
        blue[3 * i] = 0, blue[3 * i + 1] = 0, blue[3 * i + 2] = 255;
    }
    imgt_write_png(dir, "a.png", w, h, 3, red);
    imgt_write_png(dir, "b.png", w, h, 3, blue);
    imgt_tool(dir, "convert", "imagemagick", "convert -delay 10 a.png b.png anim.gif");
    b = imgt_read(dir, "anim.gif", &n);
    cr_assert(image_at(b, n, 1) != 0, "convert wrote one frame");
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w, h, red);
    img_free(&im);
    free(b);
    free(red);
    free(blue);
}

/* The global colour map moved into the frame as a local one. */
Test(img_gif, local_colour_map)
{
    uint8_t *src, *b, *m;
    size_t n, at, gct, k = 0;
    img im = {0};

    b = made_gif(21, 13, 16, "", &src, &n);
    cr_assert(b[10] & 0x80, "convert wrote no global colour map");
    gct = (size_t)3 << ((b[10] & 7) + 1);
    at = image_at(b, n, 0);
    m = malloc(n);
    memcpy(m, b, 13);
    m[10] = (uint8_t)(b[10] & 0x70); /* no global map */
    k = 13;
    memcpy(m + k, b + 13 + gct, at - 13 - gct); /* extensions */
    k += at - 13 - gct;
    memcpy(m + k, b + at, 10);
    m[k + 9] = (uint8_t)((b[at + 9] & 0x40) | 0x80 | (b[10] & 7));
    k += 10;
    memcpy(m + k, b + 13, gct);
    k += gct;
    memcpy(m + k, b + at + 10, n - at - 10);
    k += n - at - 10;
    cr_assert_eq(k, n);
    imgt_decode_mem_ok(m, n, 3, &im);
    imgt_expect_rgb(&im, 21, 13, src);
    img_free(&im);

    /* a local map wins over a global one (here all black) */
    {
        uint8_t *both = malloc(n + gct);
        memcpy(both, b, 13 + gct);
        memset(both + 13, 0, gct);
        memcpy(both + 13 + gct, m + 13, n - 13);
        imgt_decode_mem_ok(both, n + gct, 3, &im);
        imgt_expect_rgb(&im, 21, 13, src);
        img_free(&im);
        free(both);
    }

    /* and with no map at all: the global one cut out */
    memcpy(m, b, 13);
    m[10] = (uint8_t)(b[10] & 0x70);
    memcpy(m + 13, b + 13 + gct, n - 13 - gct);
    imgt_decode_mem_fails(m, n - gct, PV_EDECODE, "no colour map");
    free(m);
    free(src);
    free(b);
}

/* ---- the frame on its screen -------------------------------------------- */

Test(img_gif, frame_inside_a_larger_screen)
{
    const uint32_t w = 21, h = 13, sw = 30, sh = 20, fl = 4, ft = 3;
    uint8_t *src, *b, *want = malloc(sw * sh * 3);
    size_t n, at;
    img im = {0};

    b = made_gif(w, h, 16, "", &src, &n);
    at = image_at(b, n, 0);
    put16(b + 6, sw);
    put16(b + 8, sh);
    put16(b + at + 1, fl);
    put16(b + at + 3, ft);
    memset(want, 255, sw * sh * 3); /* outside the frame: transparent, white */
    for (uint32_t y = 0; y < h; y++)
        memcpy(want + ((size_t)(y + ft) * sw + fl) * 3, src + (size_t)y * w * 3, w * 3);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, sw, sh, want);
    img_free(&im);
    free(want);
    free(src);
    free(b);
}

/* The screen grows to hold the first frame, as in browsers. */
Test(img_gif, frame_beyond_the_screen)
{
    const uint32_t w = 21, h = 13, fl = 5, ft = 2;
    uint8_t *src, *b, *want = malloc((w + fl) * (h + ft) * 3);
    size_t n, at;
    img im = {0};

    b = made_gif(w, h, 16, "", &src, &n);
    at = image_at(b, n, 0);
    put16(b + 6, 10); /* screen 10x5, smaller than the frame */
    put16(b + 8, 5);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w, h, src);
    img_free(&im);

    put16(b + at + 1, fl);
    put16(b + at + 3, ft);
    memset(want, 255, (w + fl) * (h + ft) * 3);
    for (uint32_t y = 0; y < h; y++)
        memcpy(want + ((size_t)(y + ft) * (w + fl) + fl) * 3, src + (size_t)y * w * 3, w * 3);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w + fl, h + ft, want);
    img_free(&im);

    /* a 0x0 screen takes the frame's size */
    put16(b + 6, 0);
    put16(b + 8, 0);
    imgt_decode_mem_ok(b, n, 3, &im);
    cr_assert(im.w == w + fl && im.h == h + ft);
    img_free(&im);
    free(want);
    free(src);
    free(b);
}

/* ---- damaged files ------------------------------------------------------- */

Test(img_gif, bombs_refused_from_the_header)
{
    uint8_t *src, *b;
    size_t n, at;

    b = made_gif(16, 16, 16, "", &src, &n);
    at = image_at(b, n, 0);
    put16(b + 6, 65535);
    put16(b + 8, 65535);
    imgt_decode_mem_fails(b, n, PV_ETOOBIG, "65535x65535 pixels, more than the limit");
    /* a small screen, a huge first frame */
    put16(b + 6, 16);
    put16(b + 8, 16);
    put16(b + at + 5, 65535);
    put16(b + at + 7, 65535);
    imgt_decode_mem_fails(b, n, PV_ETOOBIG, "65535x65535");
    /* a zero-sized frame */
    put16(b + at + 5, 0);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "zero side");
    free(src);
    free(b);
}

Test(img_gif, truncated_at_several_points)
{
    uint8_t *src, *b;
    size_t n, at, cuts[7];
    img im = {0};

    b = made_gif(37, 29, 200, "-interlace GIF", &src, &n);
    at = image_at(b, n, 0);
    cuts[0] = 9;            /* in the logical screen descriptor */
    cuts[1] = 13 + 40;      /* in the global colour map */
    cuts[2] = at + 5;       /* in the image descriptor */
    cuts[3] = at + 10;      /* before the LZW code size */
    cuts[4] = at + 14;      /* in the first data block */
    cuts[5] = (at + n) / 2; /* in the middle of the data */
    cuts[6] = n - 2;        /* the data's terminating empty block */
    for (int k = 0; k < 7; k++) {
        cr_assert(cuts[k] > 6 && cuts[k] < n);
        imgt_decode_mem_fails(b, cuts[k], PV_EDECODE, "truncated");
    }
    /* Only the trailer missing: the frame is whole. */
    cr_assert_eq(b[n - 1], 0x3b);
    imgt_decode_mem_ok(b, n - 1, 3, &im);
    imgt_expect_rgb(&im, 37, 29, src);
    img_free(&im);
    /* Not interlaced: rows already given to the sink are dropped too. */
    free(b);
    free(src);
    b = made_gif(37, 29, 200, "", &src, &n);
    imgt_decode_mem_fails(b, n * 3 / 4, PV_EDECODE,
                          "truncated: the file ends in the first frame's image data");
    free(src);
    free(b);
}

Test(img_gif, no_frame_and_bad_records)
{
    uint8_t *src, *b;
    size_t n, at;

    b = made_gif(8, 8, 16, "", &src, &n);
    at = image_at(b, n, 0);
    b[at] = 0x3b; /* the trailer where the frame was */
    imgt_decode_mem_fails(b, n, PV_EDECODE, "no image");
    b[at] = 0x99; /* no such record */
    imgt_decode_mem_fails(b, n, PV_EDECODE, "records before the first frame");
    b[at] = 0x2c;
    b[at + 10] = 12; /* LZW code size over 8 */
    imgt_decode_mem_fails(b, n, PV_EDECODE, "LZW code size");
    free(src);
    free(b);
}
