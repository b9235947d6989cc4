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
#include <sys/wait.h>

#include "gen.h"
#include "img.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX];

static void setup(void) { cr_assert_eq(gen_tmpdir(dir), 0, "mkdtemp failed"); }
static void teardown(void) { gen_rmtree(dir); }

TestSuite(img_gif, .init = setup, .fini = teardown);

static const char *tpath(const char *name)
{
    static char bufs[4][GEN_PATH_MAX];
    static int next;
    char *p = bufs[next++ % 4];
    cr_assert_not_null(gen_path(p, dir, name));
    return p;
}

/* convert IN ARGS OUT in the test directory. */
static void magick(const char *in, const char *args, const char *out)
{
    char cmd[3 * GEN_PATH_MAX + 512];
    int st;
    snprintf(cmd, sizeof cmd, "cd '%s' && convert %s %s %s >convert.log 2>&1", dir, in, args,
             out);
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "ImageMagick's convert failed (Debian package imagemagick, installed by "
              "scripts/setup.sh): %s", cmd);
}

static uint8_t *slurp(const char *name, size_t *n)
{
    uint8_t *b = NULL;
    cr_assert_eq(gen_read_bytes(tpath(name), &b, n), 0, "cannot read %s", name);
    return b;
}

/* A picture of ncol distinct colours (ncol <= 256) in blocks and
 * diagonals, RGB, so a GIF holds it exactly. */
static uint8_t *palette_picture(uint32_t w, uint32_t h, uint32_t ncol)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    cr_assert_not_null(px);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint32_t i = (x / 3 + (y / 2) * 5 + (x * y) / 4) % ncol;
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(i * 53); /* odd multipliers: distinct mod 256 */
            p[1] = (uint8_t)(i * 97 + 31);
            p[2] = (uint8_t)(i * 151 + 7);
        }
    return px;
}

static void write_png_rgb(const char *name, uint32_t w, uint32_t h, const uint8_t *px)
{
    cr_assert_eq(gen_write_png(tpath(name), w, h, GEN_PNG_RGB, 8, px, NULL), 0);
}

static int decode_mem(const uint8_t *b, size_t n, uint32_t ch, uint32_t mw, uint32_t mh,
                      img *im, char *err, size_t errlen)
{
    return img_decode(b, n, ch, mw, mh, im, err, errlen);
}

static void decode_ok(const uint8_t *b, size_t n, uint32_t ch, img *im)
{
    char err[256] = "";
    cr_assert_eq(decode_mem(b, n, ch, 0, 0, im, err, sizeof err), PV_OK, "decode: %s", err);
    cr_assert_eq(im->channels, ch);
    cr_assert_not_null(im->px);
}

/* The decode must fail with rc, say something containing want, and leave
 * *out as it was. */
static void decode_fails(const uint8_t *b, size_t n, int rc, const char *want)
{
    char err[256] = "";
    img im;
    memset(&im, 0x5a, sizeof im);
    cr_assert_eq(decode_mem(b, n, 3, 0, 0, &im, err, sizeof err), rc, "rc for %zu bytes: %s",
                 n, err);
    cr_assert_eq(im.w, 0x5a5a5a5au, "out written on failure");
    cr_assert_neq(err[0], '\0', "no message");
    cr_assert(want == NULL || strstr(err, want) != NULL, "message \"%s\", want \"%s\"", err,
              want);
}

/* Rec.601 luma as libjpeg and the sink compute it. */
static uint8_t luma(const uint8_t *p)
{
    return (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 32768u) >> 16);
}

static void expect_rgb(const img *im, uint32_t w, uint32_t h, const uint8_t *want)
{
    cr_assert(im->w == w && im->h == h && im->orig_w == w && im->orig_h == h,
              "got %ux%u (orig %ux%u), want %ux%u", im->w, im->h, im->orig_w, im->orig_h, w, h);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        cr_assert_eq(im->px[i], want[i], "pixel %zu channel %zu: %u, want %u", i / 3 / w,
                     i % 3, im->px[i], want[i]);
}

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
static uint8_t *made_gif(uint32_t w, uint32_t h, uint32_t ncol, const char *args,
                         uint8_t **src, size_t *n)
{
    *src = palette_picture(w, h, ncol);
    write_png_rgb("src.png", w, h, *src);
    magick("src.png", args, "out.gif");
    return slurp("out.gif", n);
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
        decode_ok(b, n, 3, &im);
        expect_rgb(&im, 37, 29, src);
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
    decode_ok(b, n, 3, &im);
    expect_rgb(&im, 41, 29, src);
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
    decode_ok(b, n, 1, &im);
    cr_assert(im.w == 23 && im.h == 17);
    for (size_t i = 0; i < 23 * 17; i++)
        cr_assert_eq(im.px[i], luma(src + 3 * i), "pixel %zu: %u, want %u", i, im.px[i],
                     luma(src + 3 * i));
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
    decode_ok(b, n, 3, &full);
    cr_assert_eq(decode_mem(b, n, 3, 24, 16, &small, err, sizeof err), PV_OK, "%s", err);
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
    uint8_t *rgb = palette_picture(w, h, 16), *rgba = malloc(w * h * 4), *want = malloc(w * h * 3);
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
    cr_assert_eq(gen_write_png(tpath("a.png"), w, h, GEN_PNG_RGBA, 8, rgba, NULL), 0);
    magick("a.png", "", "t.gif");
    b = slurp("t.gif", &n);
    cr_assert(transparent > 0 && has_gce(b, n), "convert wrote no Graphic Control Extension");
    decode_ok(b, n, 3, &im);
    expect_rgb(&im, w, h, want);
    img_free(&im);
    /* grey: the same white */
    decode_ok(b, n, 1, &im);
    for (size_t i = 0; i < w * h; i++)
        cr_assert_eq(im.px[i], luma(want + 3 * i), "pixel %zu", i);
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
    write_png_rgb("a.png", w, h, red);
    write_png_rgb("b.png", w, h, blue);
    magick("-delay 10 a.png", "b.png", "anim.gif");
    b = slurp("anim.gif", &n);
    cr_assert(image_at(b, n, 1) != 0, "convert wrote one frame");
    decode_ok(b, n, 3, &im);
    expect_rgb(&im, w, h, red);
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
    decode_ok(m, n, 3, &im);
    expect_rgb(&im, 21, 13, src);
    img_free(&im);

    /* a local map wins over a global one (here all black) */
    {
        uint8_t *both = malloc(n + gct);
        memcpy(both, b, 13 + gct);
        memset(both + 13, 0, gct);
        memcpy(both + 13 + gct, m + 13, n - 13);
        decode_ok(both, n + gct, 3, &im);
        expect_rgb(&im, 21, 13, src);
        img_free(&im);
        free(both);
    }

    /* and with no map at all: the global one cut out */
    memcpy(m, b, 13);
    m[10] = (uint8_t)(b[10] & 0x70);
    memcpy(m + 13, b + 13 + gct, n - 13 - gct);
    decode_fails(m, n - gct, PV_EDECODE, "no colour map");
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
    decode_ok(b, n, 3, &im);
    expect_rgb(&im, sw, sh, want);
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
    decode_ok(b, n, 3, &im);
    expect_rgb(&im, w, h, src);
    img_free(&im);

    put16(b + at + 1, fl);
    put16(b + at + 3, ft);
    memset(want, 255, (w + fl) * (h + ft) * 3);
    for (uint32_t y = 0; y < h; y++)
        memcpy(want + ((size_t)(y + ft) * (w + fl) + fl) * 3, src + (size_t)y * w * 3, w * 3);
    decode_ok(b, n, 3, &im);
    expect_rgb(&im, w + fl, h + ft, want);
    img_free(&im);

    /* a 0x0 screen takes the frame's size */
    put16(b + 6, 0);
    put16(b + 8, 0);
    decode_ok(b, n, 3, &im);
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
    decode_fails(b, n, PV_ETOOBIG, "65535x65535 pixels, more than the limit");
    /* a small screen, a huge first frame */
    put16(b + 6, 16);
    put16(b + 8, 16);
    put16(b + at + 5, 65535);
    put16(b + at + 7, 65535);
    decode_fails(b, n, PV_ETOOBIG, "65535x65535");
    /* a zero-sized frame */
    put16(b + at + 5, 0);
    decode_fails(b, n, PV_EDECODE, "zero side");
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
        decode_fails(b, cuts[k], PV_EDECODE, "truncated");
    }
    /* Only the trailer missing: the frame is whole. */
    cr_assert_eq(b[n - 1], 0x3b);
    decode_ok(b, n - 1, 3, &im);
    expect_rgb(&im, 37, 29, src);
    img_free(&im);
    /* Not interlaced: rows already given to the sink are dropped too. */
    free(b);
    free(src);
    b = made_gif(37, 29, 200, "", &src, &n);
    decode_fails(b, n * 3 / 4, PV_EDECODE, "truncated: the file ends in the first frame's image data");
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
    decode_fails(b, n, PV_EDECODE, "no image");
    b[at] = 0x99; /* no such record */
    decode_fails(b, n, PV_EDECODE, "records before the first frame");
    b[at] = 0x2c;
    b[at + 10] = 12; /* LZW code size over 8 */
    decode_fails(b, n, PV_EDECODE, "LZW code size");
    free(src);
    free(b);
}
