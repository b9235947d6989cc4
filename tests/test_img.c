/*
 * test_img.c - decoding (JPEG, PNG), limits, damaged files, EXIF orientation
 * and area resizing (engine/image/img_decode.c, engine/image/img_resize.c).
 *
 * Every input is generated at run time with tests/gen.c into a fresh
 * mkdtemp directory under /tmp, removed after each test.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"
#include "img.h"
#include "imgtest.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX];

static void setup(void) { imgt_tmpdir(dir); }
static void teardown(void) { imgt_rmtree(dir); }

TestSuite(img, .init = setup, .fini = teardown);

/* Path of a file in the test's directory (static buffers, a few at a time). */
static const char *tpath(const char *name) { return imgt_path(dir, name); }

/* ---- sniffing ---------------------------------------------------------------- */

Test(img, sniff)
{
    static const uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xe0};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
    static const uint8_t txt[] = "hello world";

    cr_assert_eq(img_sniff(jpg, sizeof jpg), IMG_JPEG);
    cr_assert_eq(img_sniff(jpg, 2), IMG_UNKNOWN);
    cr_assert_eq(img_sniff(png, 8), IMG_PNG);
    cr_assert_eq(img_sniff(png, 7), IMG_UNKNOWN);
    cr_assert_eq(img_sniff(txt, sizeof txt - 1), IMG_UNKNOWN);
    cr_assert_eq(img_sniff(NULL, 0), IMG_UNKNOWN);
}

/* ---- JPEG ------------------------------------------------------------------- */

Test(img, jpeg_grey_roundtrip)
{
    const uint32_t w = 96, h = 64;
    uint8_t *src = imgt_pattern(w, h, 1, 1);
    img im = {0};
    double mean;
    int max;
    size_t i;

    cr_assert_eq(gen_write_jpeg(tpath("g.jpg"), w, h, 1, src, 95, 0), 0);
    imgt_decode_ok(dir, "g.jpg", 1, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    imgt_diff_stats(src, im.px, (size_t)w * h, &mean, &max);
    cr_assert_lt(mean, 1.5, "mean error %f", mean);
    cr_assert_lt(max, 40, "max error %d", max);
    img_free(&im);
    cr_assert_null(im.px);

    /* A grey file asked for as RGB: three equal channels. */
    imgt_decode_ok(dir, "g.jpg", 3, 0, 0, &im);
    for (i = 0; i < (size_t)w * h; i++)
        cr_assert(im.px[3 * i] == im.px[3 * i + 1] && im.px[3 * i] == im.px[3 * i + 2]);
    img_free(&im);
    free(src);
}

Test(img, jpeg_rgb_roundtrip_and_grey_output)
{
    const uint32_t w = 80, h = 56;
    uint8_t *src = imgt_pattern(w, h, 3, 2), *grey;
    img im = {0}, g = {0};
    double mean;
    int max;
    size_t i;

    cr_assert_eq(gen_write_jpeg(tpath("c.jpg"), w, h, 3, src, 95, 0), 0);
    imgt_decode_ok(dir, "c.jpg", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    imgt_diff_stats(src, im.px, (size_t)w * h * 3, &mean, &max);
    cr_assert_lt(mean, 1.5, "mean error %f", mean);
    cr_assert_lt(max, 40, "max error %d", max);
    img_free(&im);

    /* 4:2:0 chroma (quality 85): colour edges blur, the rest stays close. */
    cr_assert_eq(gen_write_jpeg(tpath("s.jpg"), w, h, 3, src, 85, 0), 0);
    imgt_decode_ok(dir, "s.jpg", 3, 0, 0, &im);
    imgt_diff_stats(src, im.px, (size_t)w * h * 3, &mean, &max);
    cr_assert_lt(mean, 6.0, "mean error %f", mean);

    /* The same file asked for as grey: close to the source's luma. */
    imgt_decode_ok(dir, "c.jpg", 1, 0, 0, &g);
    grey = malloc((size_t)w * h);
    for (i = 0; i < (size_t)w * h; i++)
        grey[i] = imgt_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]);
    imgt_diff_stats(grey, g.px, (size_t)w * h, &mean, &max);
    cr_assert_lt(mean, 2.0, "mean error %f", mean);
    free(grey);
    img_free(&im);
    img_free(&g);
    free(src);
}

Test(img, jpeg_cmyk_adobe_inverted)
{
    /* Ink amounts: left half C=0 M=1 Y=1 K=0 (red), right half C=1 M=1
     * Y=0 K=0 (blue); stored inverted, as Photoshop does. */
    const uint32_t w = 32, h = 16;
    uint8_t *px = malloc((size_t)w * h * 4);
    img im = {0};
    uint32_t x, y;

    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * 4;
            uint8_t ink[4] = {0, 255, 255, 0};
            if (x >= w / 2)
                ink[0] = 255, ink[1] = 255, ink[2] = 0;
            p[0] = 255 - ink[0];
            p[1] = 255 - ink[1];
            p[2] = 255 - ink[2];
            p[3] = 255 - ink[3];
        }
    cr_assert_eq(gen_write_jpeg(tpath("k.jpg"), w, h, 4, px, 95, 0), 0);
    imgt_decode_ok(dir, "k.jpg", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    {
        const uint8_t *l = im.px + ((size_t)8 * w + 4) * 3;
        const uint8_t *r = im.px + ((size_t)8 * w + 28) * 3;
        cr_assert(l[0] > 240 && l[1] < 15 && l[2] < 15, "left %d %d %d", l[0], l[1], l[2]);
        cr_assert(r[0] < 15 && r[1] < 15 && r[2] > 240, "right %d %d %d", r[0], r[1], r[2]);
    }
    img_free(&im);
    imgt_decode_ok(dir, "k.jpg", 1, 0, 0, &im);
    cr_assert(abs((int)im.px[8 * w + 4] - imgt_luma(255, 0, 0)) <= 4);
    img_free(&im);
    free(px);
}

Test(img, jpeg_dct_scaling)
{
    const uint32_t w = 800, h = 600;
    uint8_t *src = imgt_pattern(w, h, 1, 4);
    img im = {0};

    cr_assert_eq(gen_write_jpeg(tpath("big.jpg"), w, h, 1, src, 85, 0), 0);
    imgt_decode_ok(dir, "big.jpg", 1, 28, 28, &im);
    imgt_expect_size(&im, 100, 75, 800, 600);
    img_free(&im);
    /* 1/8 would give 75 rows < 150: the next step, 1/4, gives exactly 150. */
    imgt_decode_ok(dir, "big.jpg", 3, 150, 150, &im);
    imgt_expect_size(&im, 200, 150, 800, 600);
    img_free(&im);
    imgt_decode_ok(dir, "big.jpg", 1, 0, 0, &im);
    imgt_expect_size(&im, 800, 600, 800, 600);
    img_free(&im);
    /* Asking for more than the image has: full size, not an error. */
    imgt_decode_ok(dir, "big.jpg", 1, 1000, 1000, &im);
    imgt_expect_size(&im, 800, 600, 800, 600);
    img_free(&im);
    free(src);
}

Test(img, jpeg_exif_orientation_6)
{
    const uint32_t w = 64, h = 32;
    uint8_t *px = malloc((size_t)w * h * 3);
    img im = {0};

    gen_marked(w, h, 8, px);
    cr_assert_eq(gen_write_jpeg(tpath("o6.jpg"), w, h, 3, px, 95, 6), 0);
    imgt_decode_ok(dir, "o6.jpg", 3, 0, 0, &im);
    imgt_expect_size(&im, 32, 64, 32, 64);
    /* Rotated 90 degrees clockwise: stored top-left shows at top-right,
     * stored top-right at bottom-right. */
    cr_assert(imgt_is_red(&im, 28, 3), "red marker not at the top-right");
    cr_assert(imgt_is_green(&im, 28, 60), "green marker not at the bottom-right");
    cr_assert(!imgt_is_red(&im, 3, 3));
    img_free(&im);
    free(px);
}

Test(img, jpeg_exif_all_orientations)
{
    /* Where the stored top-left (red) and top-right (green) markers are
     * displayed, as corners: 0 TL, 1 TR, 2 BL, 3 BR. */
    static const int red_at[9] = {0, 0, 1, 3, 2, 0, 1, 3, 2};
    static const int green_at[9] = {0, 1, 0, 2, 3, 2, 3, 1, 0};
    const uint32_t w = 48, h = 32;
    uint8_t *px = malloc((size_t)w * h * 3);
    int o;

    gen_marked(w, h, 8, px);
    for (o = 1; o <= 8; o++) {
        char name[32];
        img im = {0};
        uint32_t cx[4], cy[4], dw = o >= 5 ? h : w, dh = o >= 5 ? w : h;
        snprintf(name, sizeof name, "o%d.jpg", o);
        cr_assert_eq(gen_write_jpeg(tpath(name), w, h, 3, px, 95, o), 0);
        imgt_decode_ok(dir, name, 3, 0, 0, &im);
        imgt_expect_size(&im, dw, dh, dw, dh);
        cx[0] = cx[2] = 3;
        cx[1] = cx[3] = im.w - 4;
        cy[0] = cy[1] = 3;
        cy[2] = cy[3] = im.h - 4;
        cr_assert(imgt_is_red(&im, cx[red_at[o]], cy[red_at[o]]), "orientation %d red", o);
        cr_assert(imgt_is_green(&im, cx[green_at[o]], cy[green_at[o]]),
                  "orientation %d green", o);
        img_free(&im);
    }
    free(px);
}

Test(img, jpeg_scaling_uses_displayed_size)
{
    /* Stored 800x400, orientation 6: displayed 400x800. For a minimum of
     * 100x150 as displayed, 1/4 (100x200) fits; judged on the stored size
     * (200x100) it would not. */
    const uint32_t w = 800, h = 400;
    uint8_t *px = imgt_pattern(w, h, 3, 5);
    img im = {0};

    cr_assert_eq(gen_write_jpeg(tpath("r.jpg"), w, h, 3, px, 80, 6), 0);
    imgt_decode_ok(dir, "r.jpg", 3, 100, 150, &im);
    imgt_expect_size(&im, 100, 200, 400, 800);
    img_free(&im);
    free(px);
}

Test(img, jpeg_truncated)
{
    const uint32_t w = 128, h = 96;
    uint8_t *px = imgt_pattern(w, h, 3, 6);
    struct stat st;
    int k;
    const char *names[3] = {"t.jpg", "tp.jpg", "te.jpg"};

    cr_assert_eq(gen_write_jpeg(tpath(names[0]), w, h, 3, px, 90, 0), 0);
    cr_assert_eq(gen_write_jpeg_progressive(tpath(names[1]), w, h, 3, px, 90), 0);
    cr_assert_eq(gen_write_jpeg(tpath(names[2]), w, h, 3, px, 90, 0), 0);
    for (k = 0; k < 3; k++) {
        cr_assert_eq(stat(tpath(names[k]), &st), 0);
        /* half the file; for te.jpg only the final EOI marker is missing,
         * which libjpeg cannot tell from truncation (see img_decode.c) */
        cr_assert_eq(gen_truncate(tpath(names[k]), k < 2 ? (size_t)st.st_size / 2
                                                         : (size_t)st.st_size - 2), 0);
        imgt_decode_fails(dir, names[k], 3, PV_EDECODE, "Premature end");
    }
    /* Cut inside the header */
    cr_assert_eq(gen_truncate(tpath(names[0]), 40), 0);
    imgt_decode_fails(dir, names[0], 1, PV_EDECODE, NULL);
    free(px);
}

Test(img, jpeg_too_big)
{
    uint8_t *px = imgt_pattern(16, 16, 1, 7);

    cr_assert_eq(gen_write_jpeg(tpath("h.jpg"), 16, 16, 1, px, 90, 0), 0);
    cr_assert_eq(gen_jpeg_set_size(tpath("h.jpg"), 60000, 60000), 0);
    imgt_decode_fails(dir, "h.jpg", 1, PV_ETOOBIG, "60000x60000");
    /* Beyond libjpeg's own 65500 limit: still "too big", not "corrupt". */
    cr_assert_eq(gen_jpeg_set_size(tpath("h.jpg"), 65535, 65535), 0);
    imgt_decode_fails(dir, "h.jpg", 1, PV_ETOOBIG, NULL);
    free(px);
}

/* ---- PNG -------------------------------------------------------------------- */

Test(img, png_grey8_rgb8_exact)
{
    const uint32_t w = 37, h = 23;
    uint8_t *g = imgt_pattern(w, h, 1, 8), *c = imgt_pattern(w, h, 3, 9);
    img im = {0};
    size_t i;

    cr_assert_eq(gen_write_png(tpath("g.png"), w, h, GEN_PNG_GREY, 8, g, NULL), 0);
    cr_assert_eq(gen_write_png(tpath("c.png"), w, h, GEN_PNG_RGB, 8, c, NULL), 0);
    imgt_decode_ok(dir, "g.png", 1, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    cr_assert_arr_eq(im.px, g, (size_t)w * h);
    img_free(&im);

    imgt_decode_ok(dir, "c.png", 3, 0, 0, &im);
    cr_assert_arr_eq(im.px, c, (size_t)w * h * 3);
    img_free(&im);

    /* RGB asked for as grey: Rec.601 luma, exactly. */
    imgt_decode_ok(dir, "c.png", 1, 0, 0, &im);
    for (i = 0; i < (size_t)w * h; i++)
        cr_assert_eq(im.px[i], imgt_luma(c[3 * i], c[3 * i + 1], c[3 * i + 2]));
    img_free(&im);

    /* Grey asked for as RGB: replicated. */
    imgt_decode_ok(dir, "g.png", 3, 0, 0, &im);
    for (i = 0; i < (size_t)w * h; i++) {
        cr_assert_eq(im.px[3 * i], g[i]);
        cr_assert_eq(im.px[3 * i + 2], g[i]);
    }
    img_free(&im);

    /* Larger than asked for on both sides: reduced while read to the
     * asked size itself, the area average of the full image. */
    imgt_decode_ok(dir, "c.png", 3, 8, 8, &im);
    imgt_expect_size(&im, 8, 8, w, h);
    {
        uint8_t small[8 * 8 * 3];
        cr_assert_eq(img_resize_area(c, w, h, 3, small, 8, 8), PV_OK);
        cr_assert_arr_eq(im.px, small, sizeof small);
    }
    img_free(&im);
    /* No larger than asked for on one side: whole, as it is. */
    imgt_decode_ok(dir, "c.png", 3, 8, 23, &im);
    imgt_expect_size(&im, w, h, w, h);
    cr_assert_arr_eq(im.px, c, (size_t)w * h * 3);
    img_free(&im);
    free(g);
    free(c);
}

Test(img, png_rgba_over_white)
{
    static const uint8_t px[4 * 4] = {
        10, 20, 30, 0,     /* transparent -> white */
        10, 20, 30, 255,   /* opaque -> itself */
        0, 100, 200, 128,  /* half */
        255, 0, 0, 51,     /* 20% red */
    };
    img im = {0};
    uint32_t i;

    cr_assert_eq(gen_write_png(tpath("a.png"), 4, 1, GEN_PNG_RGBA, 8, px, NULL), 0);
    imgt_decode_ok(dir, "a.png", 3, 0, 0, &im);
    for (i = 0; i < 4; i++) {
        uint32_t c, a = px[4 * i + 3];
        for (c = 0; c < 3; c++) {
            uint32_t want = (px[4 * i + c] * a + 255 * (255 - a) + 127) / 255;
            cr_assert_eq(im.px[3 * i + c], want, "pixel %u channel %u", i, c);
        }
    }
    cr_assert(im.px[0] == 255 && im.px[1] == 255 && im.px[2] == 255);
    cr_assert(im.px[3] == 10 && im.px[5] == 30);
    img_free(&im);

    imgt_decode_ok(dir, "a.png", 1, 0, 0, &im);
    cr_assert(im.px[0] == 255 && im.px[1] == imgt_luma(10, 20, 30));
    img_free(&im);
}

Test(img, png_grey_alpha_and_trns_key)
{
    static const uint8_t ga[3 * 2] = {0, 0, 0, 255, 100, 128};
    static const uint8_t want_ga[3] = {255, 0, (100 * 128 + 255 * 127 + 127) / 255};
    static const uint8_t g[3] = {7, 9, 7}, want_g[3] = {255, 9, 255};
    gen_png_opts o = {0};
    img im = {0};

    cr_assert_eq(gen_write_png(tpath("ga.png"), 3, 1, GEN_PNG_GREY_ALPHA, 8, ga, NULL), 0);
    imgt_decode_ok(dir, "ga.png", 1, 0, 0, &im);
    cr_assert_arr_eq(im.px, want_ga, 3);
    img_free(&im);

    /* tRNS colour key: grey 7 is transparent. */
    o.has_trans_color = 1;
    o.trans_color[0] = 7;
    cr_assert_eq(gen_write_png(tpath("k.png"), 3, 1, GEN_PNG_GREY, 8, g, &o), 0);
    imgt_decode_ok(dir, "k.png", 1, 0, 0, &im);
    cr_assert_arr_eq(im.px, want_g, 3);
    img_free(&im);
}

Test(img, png_16bit)
{
    static const uint16_t c16[2 * 3] = {0xffff, 0, 0x8080, 0x1234, 0xfedc, 0x00ff};
    const uint32_t w = 16, h = 16;
    uint16_t *px = malloc((size_t)w * h * sizeof *px);
    uint8_t *want = imgt_pattern(w, h, 1, 10);
    img im = {0};
    size_t i;

    for (i = 0; i < (size_t)w * h; i++)
        px[i] = (uint16_t)(want[i] * 257u);
    cr_assert_eq(gen_write_png(tpath("g16.png"), w, h, GEN_PNG_GREY, 16, px, NULL), 0);
    imgt_decode_ok(dir, "g16.png", 1, 0, 0, &im);
    cr_assert_arr_eq(im.px, want, (size_t)w * h);
    img_free(&im);
    free(px);
    free(want);

    /* RGB, values that are not multiples of 257 */
    cr_assert_eq(gen_write_png(tpath("c16.png"), 2, 1, GEN_PNG_RGB, 16, c16, NULL), 0);
    imgt_decode_ok(dir, "c16.png", 3, 0, 0, &im);
    for (i = 0; i < 6; i++) /* scale_16: nearest 8-bit value */
        cr_assert_eq(im.px[i], (c16[i] * 255u + 32767u) / 65535u, "sample %zu", i);
    img_free(&im);
}

Test(img, png_palette_and_trns)
{
    static const uint8_t pal[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 50, 60, 70};
    static const uint8_t alpha[2] = {255, 0}; /* entry 1 transparent */
    const uint32_t w = 9, h = 5;
    uint8_t idx[9 * 5];
    gen_png_opts o = {0};
    img im = {0};
    size_t i;

    for (i = 0; i < sizeof idx; i++)
        idx[i] = (uint8_t)((i * 7 + i / 9) % 4);
    o.palette = pal;
    o.npalette = 4;
    cr_assert_eq(gen_write_png(tpath("p.png"), w, h, GEN_PNG_PALETTE, 8, idx, &o), 0);
    imgt_decode_ok(dir, "p.png", 3, 0, 0, &im);
    for (i = 0; i < sizeof idx; i++)
        cr_assert_arr_eq(im.px + 3 * i, pal + 3 * idx[i], 3, "pixel %zu", i);
    img_free(&im);

    /* 2-bit palette with tRNS */
    o.trans = alpha;
    o.ntrans = 2;
    cr_assert_eq(gen_write_png(tpath("p2.png"), w, h, GEN_PNG_PALETTE, 2, idx, &o), 0);
    imgt_decode_ok(dir, "p2.png", 3, 0, 0, &im);
    for (i = 0; i < sizeof idx; i++) {
        static const uint8_t white[3] = {255, 255, 255};
        cr_assert_arr_eq(im.px + 3 * i, idx[i] == 1 ? white : pal + 3 * idx[i], 3,
                         "pixel %zu", i);
    }
    img_free(&im);
}

Test(img, png_grey_low_bit_depths)
{
    static const uint8_t one[8] = {0, 1, 1, 0, 1, 0, 0, 1};
    static const uint8_t four[8] = {0, 15, 8, 1, 2, 3, 14, 7};
    img im = {0};
    size_t i;

    cr_assert_eq(gen_write_png(tpath("b1.png"), 8, 1, GEN_PNG_GREY, 1, one, NULL), 0);
    imgt_decode_ok(dir, "b1.png", 1, 0, 0, &im);
    for (i = 0; i < 8; i++)
        cr_assert_eq(im.px[i], one[i] ? 255 : 0);
    img_free(&im);

    cr_assert_eq(gen_write_png(tpath("b4.png"), 4, 2, GEN_PNG_GREY, 4, four, NULL), 0);
    imgt_decode_ok(dir, "b4.png", 1, 0, 0, &im);
    for (i = 0; i < 8; i++)
        cr_assert_eq(im.px[i], four[i] * 17);
    img_free(&im);
}

Test(img, png_interlaced_exact)
{
    const uint32_t w = 29, h = 19; /* not multiples of 8: partial Adam7 blocks */
    uint8_t *c = imgt_pattern(w, h, 3, 11), *g = imgt_pattern(w, h, 1, 12);
    gen_png_opts o = {0};
    img im = {0};

    o.interlace = 1;
    cr_assert_eq(gen_write_png(tpath("i.png"), w, h, GEN_PNG_RGB, 8, c, &o), 0);
    cr_assert_eq(gen_write_png(tpath("ig.png"), w, h, GEN_PNG_GREY, 8, g, &o), 0);
    imgt_decode_ok(dir, "i.png", 3, 0, 0, &im);
    cr_assert_arr_eq(im.px, c, (size_t)w * h * 3);
    img_free(&im);
    imgt_decode_ok(dir, "ig.png", 1, 0, 0, &im);
    cr_assert_arr_eq(im.px, g, (size_t)w * h);
    img_free(&im);
    free(c);
    free(g);
}

Test(img, png_wider_than_libpng_default_limit)
{
    /* libpng refuses more than 1e6 columns by default; our pixel limit is
     * what should decide. */
    const uint32_t w = 1100000;
    uint8_t *px = calloc(w, 1);
    img im = {0};

    px[w - 1] = 200;
    cr_assert_eq(gen_write_png(tpath("wide.png"), w, 1, GEN_PNG_GREY, 8, px, NULL), 0);
    imgt_decode_ok(dir, "wide.png", 1, 0, 0, &im);
    imgt_expect_size(&im, w, 1, w, 1);
    cr_assert_eq(im.px[w - 1], 200);
    img_free(&im);
    free(px);
}

Test(img, png_truncated_and_corrupt)
{
    const uint32_t w = 64, h = 64;
    uint8_t *c = imgt_pattern(w, h, 3, 13);
    struct stat st;

    cr_assert_eq(gen_write_png(tpath("t.png"), w, h, GEN_PNG_RGB, 8, c, NULL), 0);
    cr_assert_eq(stat(tpath("t.png"), &st), 0);
    cr_assert_eq(gen_truncate(tpath("t.png"), (size_t)st.st_size / 2), 0);
    imgt_decode_fails(dir, "t.png", 3, PV_EDECODE, "truncated");

    /* Garbled compressed data: libpng notices it (bad filter, bad zlib
     * stream or CRC, whichever comes first). */
    cr_assert_eq(gen_write_png(tpath("x.png"), w, h, GEN_PNG_RGB, 8, c, NULL), 0);
    cr_assert_eq(gen_png_corrupt_idat(tpath("x.png"), 0), 0);
    imgt_decode_fails(dir, "x.png", 3, PV_EDECODE, NULL);

    /* Intact data, wrong CRC: still refused, in libpng's words. */
    cr_assert_eq(gen_write_png(tpath("y.png"), w, h, GEN_PNG_RGB, 8, c, NULL), 0);
    cr_assert_eq(gen_png_corrupt_idat(tpath("y.png"), 1), 0);
    imgt_decode_fails(dir, "y.png", 3, PV_EDECODE, "CRC");

    /* Only the signature and part of IHDR. */
    cr_assert_eq(gen_truncate(tpath("x.png"), 20), 0);
    imgt_decode_fails(dir, "x.png", 1, PV_EDECODE, NULL);
    free(c);
}

Test(img, png_too_big)
{
    uint8_t px[16 * 16] = {0};

    cr_assert_eq(gen_write_png(tpath("h.png"), 16, 16, GEN_PNG_GREY, 8, px, NULL), 0);
    cr_assert_eq(gen_png_set_size(tpath("h.png"), 60000, 60000), 0);
    imgt_decode_fails(dir, "h.png", 1, PV_ETOOBIG, "60000x60000");
}

/* ---- reduced while read ----------------------------------------------------------- */

Test(img, reduce_size_rule)
{
    static const uint32_t cases[][7] = {
        /* w, h, min_w, min_h -> reduced?, w', h' */
        {11585, 11585, 224, 224, 1, 224, 224},
        {11585, 11585, 28, 28, 1, 28, 28},
        {640, 480, 224, 224, 1, 224, 224},     /* ratio 1.33: one multiple */
        {1000, 300, 224, 224, 1, 672, 224},    /* 3.33 / 1.34 -> 3 */
        {448, 1000, 224, 224, 1, 224, 448},
        {4000, 3000, 1024, 1, 1, 1024, 768},   /* a width only: aspect kept */
        {37, 23, 8, 8, 1, 8, 8},
        {300, 200, 224, 224, 0, 300, 200},     /* 200 <= 224: whole */
        {28, 28, 28, 28, 0, 28, 28},
        {10, 10, 28, 28, 0, 10, 10},
        {3000, 3000, 4096, 4096, 0, 3000, 3000},
        {5000, 5000, 0, 0, 0, 5000, 5000},     /* full size asked for */
        {5000, 5000, 28, 0, 0, 5000, 5000},
        {20000, 220, 224, 224, 1, 19040, 220}, /* strip: 85 multiples fit */
        {20, 300000, 28, 28, 1, 20, 209692},
        {2048, 2048, 1024, 1024, 1, 1024, 1024},
        {4096, 1024, 1024, 1024, 0, 4096, 1024}, /* already a multiple */
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t w = cases[i][0], h = cases[i][1];
        int r = img_reduce_size(&w, &h, cases[i][2], cases[i][3]);
        cr_assert(r == (int)cases[i][4] && w == cases[i][5] && h == cases[i][6],
                  "case %zu: %ux%u for %ux%u: got %d %ux%u, want %u %ux%u", i,
                  cases[i][0], cases[i][1], cases[i][2], cases[i][3], r, w, h,
                  cases[i][4], cases[i][5], cases[i][6]);
        if (r) { /* never below the minimum, unless the image is */
            cr_assert(w >= cases[i][2] || w == cases[i][0]);
            cr_assert(h >= cases[i][3] || h == cases[i][1]);
            cr_assert((uint64_t)w * h <= IMG_HOLD_PIXELS);
        }
    }
}

/* Samples for a PNG of colour type ct and depth, from seed: one array
 * element per sample (uint16_t at depth 16, else uint8_t). */
static void *png_samples(uint32_t w, uint32_t h, int ct, int depth, uint32_t seed)
{
    const uint32_t spp = ct == GEN_PNG_RGB ? 3 : ct == GEN_PNG_RGBA ? 4
                       : ct == GEN_PNG_GREY_ALPHA ? 2 : 1;
    const size_t n = (size_t)w * h * spp;
    uint8_t *a = imgt_pattern(w, h, spp, seed);
    size_t i;

    if (depth == 16) {
        uint8_t *b = imgt_pattern(w, h, spp, seed + 100);
        uint16_t *v = malloc(n * sizeof *v);
        cr_assert_not_null(v);
        for (i = 0; i < n; i++) /* low bytes of their own: rounding counts */
            v[i] = (uint16_t)(a[i] << 8 | b[i]);
        free(a);
        free(b);
        return v;
    }
    if (ct == GEN_PNG_PALETTE || depth < 8) {
        uint32_t levels = 1u << depth;
        if (ct == GEN_PNG_PALETTE && levels > 7)
            levels = 7; /* the test's palette */
        for (i = 0; i < n; i++)
            a[i] = (uint8_t)((a[i] * 7u + i % 5u) % levels);
    }
    return a;
}

/* A PNG decoded for min_w x min_h, then area-averaged to min_w x min_h as
 * the embedders do, against the full-size decode averaged the same way:
 * the same bytes when the PNG came back at min_w x min_h and was read in
 * order; at most 1 apart otherwise (an intermediate rounded to 8 bits, or
 * an interlaced file's sums in another order). */
static void expect_like_full(const char *name, uint32_t ch, uint32_t mw,
                             uint32_t mh, uint32_t want_w, uint32_t want_h,
                             int exact)
{
    img full = {0}, red = {0};
    const size_t n = (size_t)mw * mh * ch;
    uint8_t *a = malloc(n), *b = malloc(n);
    int d;

    imgt_decode_ok(dir, name, ch, 0, 0, &full);
    imgt_decode_ok(dir, name, ch, mw, mh, &red);
    imgt_expect_size(&red, want_w, want_h, full.w, full.h);
    cr_assert_eq(img_resize_area(full.px, full.w, full.h, ch, a, mw, mh), PV_OK);
    cr_assert_eq(img_resize_area(red.px, red.w, red.h, ch, b, mw, mh), PV_OK);
    d = imgt_max_diff(a, b, n);
    if (exact)
        cr_assert_eq(d, 0, "%s, %u channels, %ux%u: differs by %d", name, ch, mw, mh, d);
    else
        cr_assert_leq(d, 1, "%s, %u channels, %ux%u: differs by %d", name, ch, mw, mh, d);
    img_free(&full);
    img_free(&red);
    free(a);
    free(b);
}

Test(img, png_reduced_same_as_full_then_resize, .timeout = 120)
{
    static const int types[][2] = {
        {GEN_PNG_GREY, 8}, {GEN_PNG_GREY, 16}, {GEN_PNG_GREY, 1}, {GEN_PNG_GREY, 4},
        {GEN_PNG_GREY_ALPHA, 8}, {GEN_PNG_RGB, 8}, {GEN_PNG_RGB, 16},
        {GEN_PNG_RGBA, 8}, {GEN_PNG_RGBA, 16}, {GEN_PNG_PALETTE, 8},
        {GEN_PNG_PALETTE, 2},
    };
    static const uint8_t pal[7 * 3] = {0, 0, 0, 255, 255, 255, 200, 10, 30,
                                       20, 220, 40, 30, 40, 250, 128, 128, 0,
                                       7, 99, 180};
    static const uint8_t trans[5] = {255, 0, 128, 200, 64};
    size_t t;
    int il;

    for (t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (il = 0; il <= 1; il++) {
            const int ct = types[t][0], depth = types[t][1];
            const uint32_t w = 301, h = 203; /* odd sizes: partial Adam7 blocks */
            void *px = png_samples(w, h, ct, depth, (uint32_t)(40 + t));
            gen_png_opts o = {0};
            char name[32];

            o.interlace = il;
            if (ct == GEN_PNG_PALETTE) {
                o.palette = pal;
                o.npalette = depth == 2 ? 4 : 7;
                o.trans = trans;
                o.ntrans = depth == 2 ? 3 : 5;
            }
            snprintf(name, sizeof name, "t%zu_%d.png", t, il);
            cr_assert_eq(gen_write_png(tpath(name), w, h, ct, depth, px, &o), 0,
                         "%s", name);
            /* pixels' 28 x 28 and cnn's 224 x 224: reduced to that itself */
            expect_like_full(name, 1, 28, 28, 28, 28, !il);
            expect_like_full(name, 3, 28, 28, 28, 28, !il);
            expect_like_full(name, 3, 224, 200, 224, 200, !il);
            /* 301/28 = 10.75 vs 203/14 = 14.5: 28 wide, 14 x 1 high */
            expect_like_full(name, 3, 28, 14, 28, 14, !il);
            /* 301/100 = 3.01 vs 203/10 = 20.3: 100 wide, 10 x 6 high */
            expect_like_full(name, 1, 100, 10, 100, 60, 0);
            free(px);
        }
    }
}

/* A long strip (more than IMG_HOLD_PIXELS, one side under its minimum) is
 * reduced along its length only; a tall one likewise. */
Test(img, png_strips_reduced_along_their_length, .timeout = 120)
{
    uint8_t *c = imgt_pattern(20000, 220, 3, 51), *g = imgt_pattern(20, 300000, 1, 52);
    gen_png_opts o = {0};

    cr_assert_eq(gen_write_png(tpath("s.png"), 20000, 220, GEN_PNG_RGB, 8, c, NULL), 0);
    expect_like_full("s.png", 3, 224, 224, 19040, 220, 0);
    o.interlace = 1;
    cr_assert_eq(gen_write_png(tpath("si.png"), 20000, 220, GEN_PNG_RGB, 8, c, &o), 0);
    expect_like_full("si.png", 3, 224, 224, 19040, 220, 0);
    cr_assert_eq(gen_write_png(tpath("t.png"), 20, 300000, GEN_PNG_GREY, 8, g, NULL), 0);
    expect_like_full("t.png", 1, 28, 28, 20, 209692, 0);
    free(c);
    free(g);
}

/* Images no larger than asked for on a side, and small: whole and exactly
 * as before, whatever the minimum. */
Test(img, png_small_images_whole)
{
    static const uint32_t cases[][4] = {
        {28, 28, 28, 28}, {20, 10, 28, 28}, {300, 20, 28, 28}, {300, 200, 224, 224},
        {64, 64, 1000, 1000},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t w = cases[i][0], h = cases[i][1];
        uint8_t *c = imgt_pattern(w, h, 4, (uint32_t)(60 + i));
        gen_png_opts o = {0};
        img full = {0}, got = {0};
        int il;

        for (il = 0; il <= 1; il++) {
            o.interlace = il;
            cr_assert_eq(gen_write_png(tpath("w.png"), w, h, GEN_PNG_RGBA, 8, c, &o), 0);
            imgt_decode_ok(dir, "w.png", 3, 0, 0, &full);
            imgt_decode_ok(dir, "w.png", 3, cases[i][2], cases[i][3], &got);
            imgt_expect_size(&got, w, h, w, h);
            cr_assert_arr_eq(got.px, full.px, (size_t)w * h * 3, "case %zu", i);
            img_free(&full);
            img_free(&got);
        }
        free(c);
    }
}

/* A JPEG whose DCT-scaled size is still past IMG_HOLD_PIXELS (a strip's
 * short side allows little scaling) is reduced while read like a PNG, in
 * its stored orientation before EXIF turns it; CMYK rows are converted on
 * the way. Photos never get there: 1/8 of PV_MAX_PIXELS is 2 megapixels. */
Test(img, jpeg_strips_reduced_while_read, .timeout = 120)
{
    const uint32_t w = 16000, h = 300;
    uint8_t *g = imgt_pattern(w, h, 1, 81), *k = imgt_pattern(w, h, 4, 82);

    cr_assert_eq(gen_write_jpeg(tpath("s.jpg"), w, h, 1, g, 90, 0), 0);
    /* 300/2 < 224: no DCT scaling; 4.8 megapixels: 53 x 224 by 224 */
    expect_like_full("s.jpg", 1, 224, 224, 11872, 224, 0);
    cr_assert_eq(gen_write_jpeg(tpath("s6.jpg"), w, h, 1, g, 90, 6), 0);
    /* shown 300 x 16000; at least 160 x 224 as shown is 224 x 160 as
     * stored: 8512 x 160 stored, 160 x 8512 shown */
    expect_like_full("s6.jpg", 1, 160, 224, 160, 8512, 0);
    cr_assert_eq(gen_write_jpeg(tpath("k.jpg"), w, h, 4, k, 90, 0), 0);
    expect_like_full("k.jpg", 3, 224, 224, 11872, 224, 0);
    expect_like_full("k.jpg", 1, 224, 224, 11872, 224, 0);
    free(g);
    free(k);
}

/* ---- memory: decompression bombs --------------------------------------------- */

/* A field of /proc/self/status, in kB. */
static long status_kb(const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");

    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            v = atol(line + klen + 1);
    fclose(f);
    cr_assert_geq(v, 0, "no %s in /proc/self/status", key);
    return v;
}

/* Decode `name` and return how far the resident set rose above where it
 * stood before the decode, at its highest, in MiB: the peak is reset
 * (Linux's clear_refs 5) after the file is read, so only the decoder's
 * memory counts. *rc and err get img_decode's status and message. */
static double decode_peak_mib(const char *name, uint32_t ch, uint32_t min_w,
                              uint32_t min_h, img *im, int *rc, char *err,
                              size_t errlen)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    long before, peak;
    FILE *f;

    cr_assert_eq(img_read_file(tpath(name), &buf, &n, err, errlen), PV_OK, "%s", err);
    f = fopen("/proc/self/clear_refs", "w");
    cr_assert_not_null(f, "cannot open /proc/self/clear_refs");
    cr_assert(fputs("5", f) >= 0 && fclose(f) == 0, "cannot reset the peak RSS");
    before = status_kb("VmRSS");
    *rc = img_decode(buf, n, ch, min_w, min_h, im, err, errlen);
    peak = status_kb("VmHWM");
    free(buf);
    return (double)(peak - before) / 1024.0;
}

/* Every sample of im equals v. */
static void expect_flat(const img *im, uint8_t v)
{
    size_t i, n = (size_t)im->w * im->h * im->channels;
    for (i = 0; i < n; i++)
        cr_assert_eq(im->px[i], v, "sample %zu is %d, want %d", i, im->px[i], v);
}

/* Decode the all-zero RGBA bomb `name` (side x side) to ch channels, at
 * least out x out: it must succeed within 16 MiB of memory and come out
 * white (transparent black over white), out x out, as displayed side x
 * side. */
static void bomb_bounded(const char *name, uint32_t side, uint32_t ch, uint32_t out)
{
    char err[256] = "";
    img im = {0};
    int rc;
    double mib = decode_peak_mib(name, ch, out, out, &im, &rc, err, sizeof err);
    cr_assert_eq(rc, PV_OK, "%s", err);
    cr_log_info("%s (%u^2) to %ux%u, %u channels: peak +%.1f MiB", name, side, out, out, ch,
                mib);
    cr_assert_lt(mib, 16.0, "%s: decoding took %.1f MiB more", name, mib);
    imgt_expect_size(&im, out, out, side, side);
    expect_flat(&im, 255);
    img_free(&im);
}

/* Issue 12: a 1 MB PNG, 11585 x 11585 RGBA 16-bit all zero, took about
 * 1 GB to decode (the whole image, then a converted copy). Read row by
 * row into the embedder's size, it takes a few rows. Transparent black
 * over white is white. */
Test(img, png_bomb_16bit_rgba_bounded, .timeout = 300)
{
    const uint32_t side = 11585;
    uint16_t *row = calloc((size_t)side * 4, sizeof *row);
    gen_png_opts o = {0};

    o.repeat_row = 1;
    cr_assert_eq(gen_write_png(tpath("bomb.png"), side, side, GEN_PNG_RGBA, 16, row, &o), 0);
    free(row);
    bomb_bounded("bomb.png", side, 3, 224);
    bomb_bounded("bomb.png", side, 1, 28);
}

/* The same for an interlaced PNG, whose seven passes each cover the whole
 * image: its pixels are summed into the output as they come. */
Test(img, png_interlaced_bomb_bounded, .timeout = 300)
{
    const uint32_t side = 6000;
    uint16_t *row = calloc((size_t)side * 4, sizeof *row);
    gen_png_opts o = {0};

    o.repeat_row = 1;
    o.interlace = 1;
    cr_assert_eq(gen_write_png(tpath("ibomb.png"), side, side, GEN_PNG_RGBA, 16, row, &o), 0);
    free(row);
    bomb_bounded("ibomb.png", side, 3, 224);
}

/* Issue 12: a progressive JPEG keeps every block's coefficients until its
 * last scan, 2 bytes per sample at full resolution whatever the DCT
 * scaling: 11585 x 11585 x 3 took about 840 MB. Past the decoder's limit
 * it is refused, before the memory is taken. */
Test(img, jpeg_progressive_bomb_refused, .timeout = 300)
{
    char err[256] = "";
    img im;
    double mib;
    int rc;

    cr_assert_eq(gen_write_jpeg_flat_progressive(tpath("bomb.jpg"), 11585, 11585, 3), 0);
    memset(&im, 0x5a, sizeof im);
    mib = decode_peak_mib("bomb.jpg", 3, 224, 224, &im, &rc, err, sizeof err);
    cr_log_info("11585^2 progressive JPEG: rc %d, peak +%.1f MiB: %s", rc, mib, err);
    cr_assert_eq(rc, PV_ETOOBIG, "rc %d: %s", rc, err);
    cr_assert(strstr(err, "progressive") != NULL && strstr(err, "MiB") != NULL,
              "message: %s", err);
    cr_assert_eq(im.w, 0x5a5a5a5au, "out written on failure");
    cr_assert_lt(mib, 16.0, "refusing took %.1f MiB", mib);

    mib = decode_peak_mib("bomb.jpg", 1, 28, 28, &im, &rc, err, sizeof err);
    cr_assert_eq(rc, PV_ETOOBIG, "rc %d: %s", rc, err);
    cr_assert_lt(mib, 16.0, "refusing took %.1f MiB", mib);
}

/* A sequential JPEG whose components come in separate scans is buffered
 * whole the same way, and refused the same way. */
Test(img, jpeg_multiscan_bomb_refused, .timeout = 120)
{
    char err[256] = "";
    img im = {0};
    double mib;
    int rc;

    cr_assert_eq(gen_write_jpeg_flat_multiscan(tpath("ms.jpg"), 11585, 11585), 0);
    mib = decode_peak_mib("ms.jpg", 3, 224, 224, &im, &rc, err, sizeof err);
    cr_log_info("11585^2 multi-scan JPEG: rc %d, peak +%.1f MiB: %s", rc, mib, err);
    cr_assert_eq(rc, PV_ETOOBIG, "rc %d: %s", rc, err);
    cr_assert(strstr(err, "multi-scan") != NULL, "message: %s", err);
    cr_assert_lt(mib, 16.0, "refusing took %.1f MiB", mib);

    cr_assert_eq(gen_write_jpeg_flat_multiscan(tpath("ms2.jpg"), 1000, 700), 0);
    imgt_decode_ok(dir, "ms2.jpg", 3, 0, 0, &im);
    imgt_expect_size(&im, 1000, 700, 1000, 700);
    expect_flat(&im, 128);
    img_free(&im);
}

/* Below the limit a progressive JPEG decodes as before: 4096 x 4096 x 3
 * (a wallpaper's size) holds 96 MiB of coefficients. */
Test(img, jpeg_progressive_within_limit, .timeout = 120)
{
    char err[256] = "";
    img im = {0};
    double mib;
    int rc;

    cr_assert_eq(gen_write_jpeg_flat_progressive(tpath("p.jpg"), 4096, 4096, 3), 0);
    mib = decode_peak_mib("p.jpg", 3, 224, 224, &im, &rc, err, sizeof err);
    cr_assert_eq(rc, PV_OK, "%s", err);
    cr_log_info("4096^2 progressive JPEG: peak +%.1f MiB", mib);
    imgt_expect_size(&im, 512, 512, 4096, 4096);
    expect_flat(&im, 128);
    img_free(&im);
}

/* A baseline JPEG strip, 60000 x 440 RGB, decoded for 224 x 224: no DCT
 * scaling fits (220 rows at 1/2), so it was held whole, 79 MB; reduced
 * while read it is at most IMG_HOLD_PIXELS. */
Test(img, jpeg_strip_bounded, .timeout = 120)
{
    const uint32_t w = 60000, h = 440;
    uint8_t *c = imgt_pattern(w, h, 3, 83);
    char err[256] = "";
    img im = {0};
    double mib;
    int rc;

    cr_assert_eq(gen_write_jpeg(tpath("strip.jpg"), w, h, 3, c, 75, 0), 0);
    free(c);
    mib = decode_peak_mib("strip.jpg", 3, 224, 224, &im, &rc, err, sizeof err);
    cr_assert_eq(rc, PV_OK, "%s", err);
    cr_log_info("60000x440 JPEG to 224x224 RGB: peak +%.1f MiB", mib);
    cr_assert_lt(mib, 24.0, "decoding took %.1f MiB more", mib);
    imgt_expect_size(&im, 18592, 224, w, h);
    img_free(&im);
}

/* libpng holds a few rows at the file's depth: a PNG whose rows alone are
 * too large is refused before they are allocated. */
Test(img, png_row_too_long)
{
    const uint32_t w = 3u << 20; /* 24 MiB per RGBA 16-bit row */
    uint16_t *row = calloc((size_t)w * 4, sizeof *row);
    gen_png_opts o = {0};

    o.repeat_row = 1;
    cr_assert_eq(gen_write_png(tpath("long.png"), w, 2, GEN_PNG_RGBA, 16, row, &o), 0);
    free(row);
    imgt_decode_fails(dir, "long.png", 3, PV_ETOOBIG, "row");
}

/* ---- files and formats ---------------------------------------------------------- */

Test(img, empty_file)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    img im = {0};
    char err[256];

    cr_assert_eq(gen_write_bytes(tpath("e.jpg"), "", 0), 0);
    cr_assert_eq(img_read_file(tpath("e.jpg"), &buf, &n, err, sizeof err), PV_EEMPTY);
    cr_assert_null(buf);
    cr_assert_eq(img_decode((const uint8_t *)"", 0, 1, 0, 0, &im, err, sizeof err),
                 PV_EEMPTY);
}

Test(img, not_an_image)
{
    static const char text[] = "hello, this is not a picture\n";
    static const uint8_t bin[] = {0x00, 0x01, 0x7f, 0x80, 0x41};
    img im = {0};
    char err[256];

    cr_assert_eq(gen_write_bytes(tpath("x.jpg"), text, sizeof text - 1), 0);
    imgt_decode_fails(dir, "x.jpg", 1, PV_EFORMAT,
                      "not an image format pixvec reads (it starts with 'hell')");

    cr_assert_eq(img_decode(bin, sizeof bin, 3, 0, 0, &im, err, sizeof err), PV_EFORMAT);
    cr_assert(strstr(err, "00 01 7f 80") != NULL, "message: %s", err);

    /* The start of a signature, cut short: truncated, not "another format". */
    cr_assert_eq(img_decode((const uint8_t *)"\x89PN", 3, 3, 0, 0, &im, err, sizeof err),
                 PV_EDECODE);
}

Test(img, bad_arguments_and_short_err_buffer)
{
    static const uint8_t junk[] = "abcdefgh";
    img im = {0};
    char err[8];

    cr_assert_eq(img_decode(junk, 8, 2, 0, 0, &im, err, sizeof err), PV_EINVAL);
    cr_assert_eq(img_decode(junk, 8, 1, 0, 0, &im, err, sizeof err), PV_EFORMAT);
    cr_assert_eq(strlen(err), sizeof err - 1); /* cut, and terminated */
    cr_assert_eq(img_decode(junk, 8, 1, 0, 0, &im, NULL, 0), PV_EFORMAT);
    img_free(NULL);
}

Test(img, read_file_errors)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    char err[256];

    cr_assert_eq(img_read_file(tpath("missing.jpg"), &buf, &n, err, sizeof err), PV_EIO);
    cr_assert(strstr(err, "No such file") != NULL, "message: %s", err);
    cr_assert_eq(img_read_file(dir, &buf, &n, err, sizeof err), PV_EIO);
    cr_assert(strstr(err, "directory") != NULL, "message: %s", err);

    /* Larger than the limit: refused from its size, never read. A sparse
     * file costs no disk space. */
    cr_assert_eq(gen_write_bytes(tpath("huge.jpg"), "\xff\xd8\xff", 3), 0);
    cr_assert_eq(gen_truncate(tpath("huge.jpg"), (size_t)PV_MAX_FILE_BYTES + 1), 0);
    cr_assert_eq(img_read_file(tpath("huge.jpg"), &buf, &n, err, sizeof err),
                 PV_ETOOBIG);
    cr_assert_null(buf);
}

Test(img, read_file_roundtrip)
{
    uint8_t data[3000], *buf = NULL;
    size_t n = 0, i;
    char err[256];

    for (i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    cr_assert_eq(gen_write_bytes(tpath("d.bin"), data, sizeof data), 0);
    cr_assert_eq(img_read_file(tpath("d.bin"), &buf, &n, err, sizeof err), PV_OK);
    cr_assert_eq(n, sizeof data);
    cr_assert_arr_eq(buf, data, sizeof data);
    free(buf);
}

Test(img, read_file_unreadable)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    char err[256];

    if (geteuid() == 0) {
        gen_rmtree(dir); /* a skipped test does not reach .fini */
        cr_skip_test("running as root: chmod 000 does not stop reading");
    }
    cr_assert_eq(gen_write_bytes(tpath("locked.png"), "abc", 3), 0);
    cr_assert_eq(chmod(tpath("locked.png"), 0), 0);
    cr_assert_eq(img_read_file(tpath("locked.png"), &buf, &n, err, sizeof err), PV_EIO);
    cr_assert(strstr(err, "ermission") != NULL, "message: %s", err);
}

/* ---- resizing ------------------------------------------------------------------- */

Test(img, resize_constant_and_identity)
{
    static const uint32_t sizes[][4] = {
        {100, 75, 28, 28}, {7, 3, 28, 28}, {28, 28, 28, 28}, {1, 1, 5, 9}, {640, 480, 3, 2},
    };
    size_t s, i;

    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
        uint8_t *src = malloc((size_t)sw * sh * 3), *dst = malloc((size_t)dw * dh * 3);
        memset(src, 173, (size_t)sw * sh * 3);
        cr_assert_eq(img_resize_area(src, sw, sh, 3, dst, dw, dh), PV_OK);
        for (i = 0; i < (size_t)dw * dh * 3; i++)
            cr_assert_eq(dst[i], 173, "case %zu at %zu: %d", s, i, dst[i]);
        free(src);
        free(dst);
    }
    /* Same size: the pixels come back unchanged. */
    {
        uint8_t *src = imgt_pattern(31, 17, 3, 14), *dst = malloc(31 * 17 * 3);
        cr_assert_eq(img_resize_area(src, 31, 17, 3, dst, 31, 17), PV_OK);
        cr_assert_arr_eq(dst, src, 31 * 17 * 3);
        free(src);
        free(dst);
    }
}

Test(img, resize_4x4_to_2x2_exact)
{
    static const uint8_t src[16] = {
        0, 4, 100, 101,
        8, 12, 102, 103,
        200, 201, 10, 20,
        202, 203, 30, 41,
    };
    /* 24/4; 406/4 = 101.5 rounds up; 806/4 = 201.5; 101/4 = 25.25 */
    static const uint8_t want[4] = {6, 102, 202, 25};
    uint8_t dst[4];

    cr_assert_eq(img_resize_area(src, 4, 4, 1, dst, 2, 2), PV_OK);
    cr_assert_arr_eq(dst, want, 4);
}

Test(img, resize_fractional_coverage)
{
    /* 3 -> 2: output 0 covers [0, 1.5): 2/3 of px0 + 1/3 of px1. */
    static const uint8_t row[3] = {0, 90, 180};
    /* 2 -> 3 (enlarging): output 1 covers [2/3, 4/3): half of each. */
    static const uint8_t two[2] = {0, 90};
    /* Vertical axis, channels kept apart: a 1x3 RGB column -> 1x2, e.g.
     * G: 2/3*30 + 1/3*60 = 40 and 1/3*60 + 2/3*90 = 80. */
    static const uint8_t rgb[3 * 3] = {0, 30, 255, 90, 60, 0, 180, 90, 3};
    static const uint8_t want_row[2] = {30, 150}, want_two[3] = {0, 45, 90};
    static const uint8_t want_rgb[6] = {30, 40, 170, 150, 80, 2};
    uint8_t dst[6];

    cr_assert_eq(img_resize_area(row, 3, 1, 1, dst, 2, 1), PV_OK);
    cr_assert_arr_eq(dst, want_row, 2);
    cr_assert_eq(img_resize_area(two, 2, 1, 1, dst, 3, 1), PV_OK);
    cr_assert_arr_eq(dst, want_two, 3);
    cr_assert_eq(img_resize_area(rgb, 1, 3, 3, dst, 1, 2), PV_OK);
    cr_assert_arr_eq(dst, want_rgb, 6);

    cr_assert_eq(img_resize_area(row, 0, 1, 1, dst, 2, 1), PV_EINVAL);
    cr_assert_eq(img_resize_area(row, 3, 1, 1, dst, 0, 1), PV_EINVAL);
}

/* img_resize_area as it was before it took rows one at a time (two passes
 * over a float image of src_h x dst_w): the streaming resize must give
 * these bytes exactly, or every stored embedding would move. */
static void ref_resize_area(const uint8_t *src, uint32_t sw, uint32_t sh,
                            uint32_t ch, uint8_t *dst, uint32_t dw, uint32_t dh)
{
    uint32_t *xf = malloc(dw * sizeof *xf), *xc = malloc(dw * sizeof *xc);
    uint32_t *yf = malloc(dh * sizeof *yf), *yc = malloc(dh * sizeof *yc);
    float *xw = malloc(((size_t)sw + dw) * sizeof *xw), *yw = malloc(((size_t)sh + dh) * sizeof *yw);
    uint32_t *xo = malloc(dw * sizeof *xo), *yo = malloc(dh * sizeof *yo);
    float *tmp = malloc((size_t)sh * dw * ch * sizeof *tmp);
    float *acc = malloc((size_t)dw * ch * sizeof *acc);
    const size_t row_out = (size_t)dw * ch;
    uint32_t axis, i, j, pos;
    size_t x, y, k, c;

    for (axis = 0; axis < 2; axis++) {
        uint32_t S = axis ? sh : sw, D = axis ? dh : dw;
        uint32_t *first = axis ? yf : xf, *count = axis ? yc : xc, *off = axis ? yo : xo;
        float *wt = axis ? yw : xw;
        for (i = 0, pos = 0; i < D; i++) {
            uint64_t lo = (uint64_t)i * S, hi = lo + S;
            uint32_t f = (uint32_t)(lo / D), l = (uint32_t)((hi - 1) / D);
            first[i] = f;
            count[i] = l - f + 1;
            off[i] = pos;
            for (j = f; j <= l; j++) {
                uint64_t a = (uint64_t)j * D, b = a + D;
                uint64_t cov = (hi < b ? hi : b) - (lo > a ? lo : a);
                wt[pos++] = (float)((double)cov / (double)S);
            }
        }
    }
    for (y = 0; y < sh; y++)
        for (x = 0; x < dw; x++)
            for (c = 0; c < ch; c++) {
                float sum = 0.0f;
                for (k = 0; k < xc[x]; k++)
                    sum += xw[xo[x] + k] *
                           (float)src[(y * sw + xf[x] + k) * ch + c];
                tmp[y * row_out + x * ch + c] = sum;
            }
    for (y = 0; y < dh; y++) {
        memset(acc, 0, row_out * sizeof *acc);
        for (k = 0; k < yc[y]; k++)
            for (x = 0; x < row_out; x++)
                acc[x] += yw[yo[y] + k] * tmp[(yf[y] + k) * row_out + x];
        for (x = 0; x < row_out; x++) {
            float v = acc[x] + 0.5f;
            dst[y * row_out + x] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    }
    free(xf); free(xc); free(yf); free(yc); free(xw); free(yw);
    free(xo); free(yo); free(tmp); free(acc);
}

Test(img, resize_matches_two_pass_reference)
{
    uint32_t seed = 12345, t;

    for (t = 0; t < 300; t++) {
        uint32_t sw, sh, dw, dh, ch;
        uint8_t *src, *a, *b;
        seed = seed * 1103515245u + 12345u;
        sw = 1 + (seed >> 8) % 97;
        sh = 1 + (seed >> 16) % 61;
        seed = seed * 1103515245u + 12345u;
        dw = 1 + (seed >> 8) % 80;
        dh = 1 + (seed >> 16) % 50;
        ch = t % 3 == 0 ? 1 : t % 3 == 1 ? 3 : 4;
        if (t % 5 == 0) { /* large reductions, as from a photo */
            sw *= 37;
            sh *= 29;
        }
        src = imgt_pattern(sw, sh, ch, t);
        a = malloc((size_t)dw * dh * ch);
        b = malloc((size_t)dw * dh * ch);
        ref_resize_area(src, sw, sh, ch, a, dw, dh);
        cr_assert_eq(img_resize_area(src, sw, sh, ch, b, dw, dh), PV_OK);
        cr_assert_arr_eq(a, b, (size_t)dw * dh * ch, "%ux%u -> %ux%u, %u channels",
                         sw, sh, dw, dh, ch);
        free(src);
        free(a);
        free(b);
    }
}

/* img_area in any order (an interlaced PNG's passes): the same area
 * average, at most 1 apart; rows in order through img_area_row: equal;
 * fewer rows than the source has: refused at the end. */
Test(img, area_streaming_orders)
{
    static const uint32_t sizes[][4] = {
        {301, 203, 28, 28}, {29, 19, 28, 28}, {5, 3, 17, 11}, {1000, 7, 3, 20},
    };
    size_t s;

    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const uint32_t sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
        uint8_t *src = imgt_pattern(sw, sh, 3, (uint32_t)(70 + s));
        uint8_t *want = malloc((size_t)dw * dh * 3), *got = malloc((size_t)dw * dh * 3);
        img_area *a = NULL;
        uint32_t pass, y;

        cr_assert_eq(img_resize_area(src, sw, sh, 3, want, dw, dh), PV_OK);

        cr_assert_eq(img_area_new(sw, sh, 3, got, dw, dh, 1, &a), PV_OK);
        /* Adam7's passes: (x0, dx, y0, dy) */
        for (pass = 0; pass < 7; pass++) {
            static const uint32_t p[7][4] = {{0, 8, 0, 8}, {4, 8, 0, 8}, {0, 4, 4, 8},
                                             {2, 4, 0, 4}, {0, 2, 2, 4}, {1, 2, 0, 2},
                                             {0, 1, 1, 2}};
            for (y = p[pass][2]; y < sh; y += p[pass][3]) {
                uint8_t row[1000 * 3];
                uint32_t n = 0, x;
                for (x = p[pass][0]; x < sw; x += p[pass][1], n++)
                    memcpy(row + n * 3, src + ((size_t)y * sw + x) * 3, 3);
                img_area_put(a, y, p[pass][0], p[pass][1], row, n);
            }
        }
        cr_assert_eq(img_area_finish(a), PV_OK);
        img_area_free(a);
        cr_assert_leq(imgt_max_diff(want, got, (size_t)dw * dh * 3), 1, "case %zu", s);

        memset(got, 0, (size_t)dw * dh * 3);
        cr_assert_eq(img_area_new(sw, sh, 3, got, dw, dh, 0, &a), PV_OK);
        for (y = 0; y < sh; y++)
            img_area_row(a, src + (size_t)y * sw * 3);
        img_area_row(a, src); /* one too many: ignored */
        cr_assert_eq(img_area_finish(a), PV_OK);
        img_area_free(a);
        cr_assert_arr_eq(want, got, (size_t)dw * dh * 3, "case %zu", s);

        cr_assert_eq(img_area_new(sw, sh, 3, got, dw, dh, 0, &a), PV_OK);
        for (y = 0; y + 1 < sh; y++)
            img_area_row(a, src + (size_t)y * sw * 3);
        cr_assert_eq(img_area_finish(a), PV_EINVAL);
        img_area_free(a);
        free(src);
        free(want);
        free(got);
    }
    cr_assert_eq(img_area_new(0, 1, 3, (uint8_t *)"", 1, 1, 0, NULL), PV_EINVAL);
    img_area_free(NULL);
}

/* ---- orientation ----------------------------------------------------------------- */

Test(img, orient_all_eight)
{
    /* Stored 2 wide, 3 high:  1 2 / 3 4 / 5 6 */
    static const uint8_t src[6] = {1, 2, 3, 4, 5, 6};
    static const uint8_t want[9][6] = {
        {0},
        {1, 2, 3, 4, 5, 6}, /* 1: as stored */
        {2, 1, 4, 3, 6, 5}, /* 2: mirrored left-right */
        {6, 5, 4, 3, 2, 1}, /* 3: rotated 180 */
        {5, 6, 3, 4, 1, 2}, /* 4: mirrored top-bottom */
        {1, 3, 5, 2, 4, 6}, /* 5: transposed (3x2) */
        {5, 3, 1, 6, 4, 2}, /* 6: rotated 90 clockwise */
        {6, 4, 2, 5, 3, 1}, /* 7: transverse */
        {2, 4, 6, 1, 3, 5}, /* 8: rotated 90 counter-clockwise */
    };
    int o, p;

    for (o = 1; o <= 8; o++) {
        img im = {0};
        im.w = im.orig_w = 2;
        im.h = im.orig_h = 3;
        im.channels = 1;
        im.px = malloc(6);
        memcpy(im.px, src, 6);
        cr_assert_eq(img_orient(&im, o), PV_OK);
        if (o >= 5)
            imgt_expect_size(&im, 3, 2, 3, 2);
        else
            imgt_expect_size(&im, 2, 3, 2, 3);
        cr_assert_arr_eq(im.px, want[o], 6, "orientation %d", o);
        for (p = 1; p < o; p++)
            cr_assert(memcmp(want[p], want[o], 6) != 0);
        img_free(&im);
    }
}

Test(img, orient_rgb_and_out_of_range)
{
    static const uint8_t src[2 * 3] = {1, 2, 3, 4, 5, 6}; /* 2x1 RGB */
    img im = {0};

    im.w = im.orig_w = 2;
    im.h = im.orig_h = 1;
    im.channels = 3;
    im.px = malloc(6);
    memcpy(im.px, src, 6);
    cr_assert_eq(img_orient(&im, 0), PV_OK);
    cr_assert_eq(img_orient(&im, 9), PV_OK);
    cr_assert_arr_eq(im.px, src, 6);
    cr_assert_eq(img_orient(&im, 6), PV_OK); /* 2x1 -> 1x2, pixels whole */
    cr_assert_eq(im.w, 1);
    cr_assert_eq(im.h, 2);
    cr_assert_arr_eq(im.px, src, 6);
    cr_assert_eq(img_orient(&im, 2), PV_OK); /* 1 wide: mirror is a no-op */
    cr_assert_arr_eq(im.px, src, 6);
    img_free(&im);
    cr_assert_eq(img_orient(&im, 3), PV_EINVAL);
}
