/*
 * test_img_webp.c - the WebP decoder (engine/image/img_webp.c): lossy,
 * lossless, alpha, grey output, EXIF orientation, reduced (scaled)
 * decoding, the first frame of an animation, truncated and lying files,
 * and canvas bombs.
 *
 * Files are made at run time by the Debian package `webp`'s tools (cwebp,
 * webpmux) from PNGs written by tests/gen.c, in a fresh directory under
 * /tmp, so decoded pixels can be compared with their source: exactly for
 * lossless, within a mean-difference bound for lossy. A missing tool
 * fails the test, naming the package.
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

TestSuite(img_webp, .init = setup, .fini = teardown);

/* Path of a file in the test's directory (static buffers, a few at a time). */
static const char *tpath(const char *name)
{
    return imgt_path(dir, name);
}

/* Run a tool of the Debian package `webp` in the test directory:
 * tool("cwebp", "-q 90 a.png -o a.webp"). */
static void tool(const char *name, const char *args)
{
    imgt_tool(dir, name, "webp", "%s %s", name, args);
}

static void write_file(const char *name, const uint8_t *b, size_t n)
{
    cr_assert_eq(gen_write_bytes(tpath(name), b, n), 0, "writing %s", name);
}

/* The decode of n bytes must fail with rc, leave *out alone and say
 * something containing want (anything when NULL). */
static void bytes_fail(const char *what, const uint8_t *b, size_t n, int rc, const char *want)
{
    char err[256] = "";
    img im;
    uint32_t ch;

    for (ch = 1; ch <= 3; ch += 2) {
        memset(&im, 0x5a, sizeof im);
        err[0] = '\0';
        cr_assert_eq(img_decode(b, n, ch, 0, 0, &im, err, sizeof err), rc, "%s: rc for \"%s\"",
                     what, err);
        cr_assert_eq(im.w, 0x5a5a5a5au, "%s: out written on failure", what);
        cr_assert_neq(err[0], '\0', "%s: no message", what);
        cr_assert(want == NULL || strstr(err, want) != NULL, "%s: message \"%s\"", what, err);
    }
    /* and reduced */
    memset(&im, 0x5a, sizeof im);
    cr_assert_eq(img_decode(b, n, 3, 32, 32, &im, err, sizeof err), rc, "%s reduced: \"%s\"", what,
                 err);
    cr_assert_eq(im.w, 0x5a5a5a5au);
}

/* The chunk at offset 12 (the first after "WEBP"). */
static int first_chunk_is(const char *name, const char *fourcc)
{
    size_t n;
    uint8_t *b = imgt_read(dir, name, &n);
    int is = n >= 16 && memcmp(b + 12, fourcc, 4) == 0;
    free(b);
    return is;
}

/* Whether fourcc occurs anywhere in b. */
static int has_chunk(const uint8_t *b, size_t n, const char *fourcc)
{
    size_t i;
    for (i = 0; i + 4 <= n; i++)
        if (memcmp(b + i, fourcc, 4) == 0)
            return 1;
    return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

/* An EXIF block holding only Orientation: a big-endian TIFF header, IFD0
 * with one entry (tag 0x0112, SHORT, count 1), no next IFD. */
static void write_exif(const char *name, int orientation)
{
    const uint8_t exif[26] = {'M',  'M',
                              0,    42,
                              0,    0,
                              0,    8, /* header, IFD0 at 8 */
                              0,    1, /* one entry */
                              0x01, 0x12,
                              0,    3,
                              0,    0,
                              0,    1, /* Orientation SHORT 1 */
                              0,    (uint8_t)orientation,
                              0,    0, /* value, padded */
                              0,    0,
                              0,    0}; /* no next IFD */
    write_file(name, exif, sizeof exif);
}

/* ---- recognising ------------------------------------------------------------- */

Test(img_webp, sniff)
{
    uint8_t *px = imgt_pattern(16, 8, 3, 1), *b;
    static const uint8_t wave[12] = {'R', 'I', 'F', 'F', 4, 0, 0, 0, 'W', 'A', 'V', 'E'};
    size_t n;

    imgt_write_png(dir, "s.png", 16, 8, 3, px);
    tool("cwebp", "-quiet -q 90 s.png -o s.webp");
    tool("cwebp", "-quiet -lossless s.png -o l.webp");
    b = imgt_read(dir, "s.webp", &n);
    cr_assert_eq(img_sniff(b, n), IMG_WEBP);
    cr_assert_eq(img_sniff(b, 12), IMG_WEBP);
    cr_assert_eq(img_sniff(b, 11), IMG_UNKNOWN);
    cr_assert_str_eq(img_kind_name(img_sniff(b, n)), "WebP");
    free(b);
    b = imgt_read(dir, "l.webp", &n);
    cr_assert_eq(img_sniff(b, n), IMG_WEBP);
    free(b);
    cr_assert_eq(img_sniff(wave, sizeof wave), IMG_UNKNOWN);
    free(px);
}

/* ---- pixels -------------------------------------------------------------------- */

Test(img_webp, lossless_is_exact)
{
    const uint32_t w = 67, h = 45; /* odd sides */
    uint8_t *src = imgt_pattern(w, h, 3, 2);
    img im = {0};
    size_t i;

    imgt_write_png(dir, "a.png", w, h, 3, src);
    tool("cwebp", "-quiet -lossless a.png -o a.webp");
    cr_assert(first_chunk_is("a.webp", "VP8L"), "cwebp -lossless did not write VP8L");
    imgt_decode_ok(dir, "a.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    cr_assert_arr_eq(im.px, src, (size_t)w * h * 3, "lossless pixels differ");
    img_free(&im);
    /* grey: Rec.601 luma of the source, exactly */
    imgt_decode_ok(dir, "a.webp", 1, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    for (i = 0; i < (size_t)w * h; i++)
        cr_assert_eq(im.px[i], imgt_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]),
                     "grey pixel %zu", i);
    img_free(&im);
    free(src);
}

Test(img_webp, lossy_within_bounds)
{
    const uint32_t w = 96, h = 64;
    uint8_t *src = imgt_pattern(w, h, 3, 3), *grey;
    img im = {0};
    double mean;
    int max;
    size_t i;

    imgt_write_png(dir, "q.png", w, h, 3, src);
    tool("cwebp", "-quiet -q 90 q.png -o q.webp");
    cr_assert(first_chunk_is("q.webp", "VP8 "), "cwebp -q 90 did not write VP8");
    imgt_decode_ok(dir, "q.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    imgt_diff_stats(src, im.px, (size_t)w * h * 3, &mean, &max);
    cr_assert_lt(mean, 3.0, "lossy mean error %f", mean);
    cr_assert_gt(mean, 0.0, "a lossy file decoded exactly: not lossy?");
    img_free(&im);

    imgt_decode_ok(dir, "q.webp", 1, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    grey = malloc((size_t)w * h);
    for (i = 0; i < (size_t)w * h; i++)
        grey[i] = imgt_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]);
    imgt_diff_stats(grey, im.px, (size_t)w * h, &mean, &max);
    cr_assert_lt(mean, 2.5, "grey mean error %f", mean);
    free(grey);
    img_free(&im);
    free(src);
}

/* RGBA source with every alpha level; the expected RGB composited over white. */
static uint8_t *alpha_source(uint32_t w, uint32_t h, uint8_t **want)
{
    uint8_t *src = imgt_pattern(w, h, 4, 4);
    uint32_t x, y, c;

    *want = malloc((size_t)w * h * 3);
    cr_assert_not_null(*want);
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            uint8_t *p = src + ((size_t)y * w + x) * 4;
            p[3] = (uint8_t)(x < w / 4 ? 0 : (x * 7 + y * 3) & 255); /* a clear band */
            for (c = 0; c < 3; c++)
                (*want)[((size_t)y * w + x) * 3 + c] = imgt_over_white(p[c], p[3]);
        }
    return src;
}

Test(img_webp, alpha_over_white)
{
    const uint32_t w = 64, h = 40;
    uint8_t *want, *src = alpha_source(w, h, &want);
    img im = {0};
    double mean;
    int max;
    size_t i;

    imgt_write_png(dir, "t.png", w, h, 4, src);
    tool("cwebp", "-quiet -lossless -exact t.png -o tl.webp");
    tool("cwebp", "-quiet -q 90 -alpha_q 100 t.png -o tq.webp");
    /* lossless: exactly the source composited over white */
    imgt_decode_ok(dir, "tl.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    cr_assert_arr_eq(im.px, want, (size_t)w * h * 3, "lossless alpha differs");
    img_free(&im);
    imgt_decode_ok(dir, "tl.webp", 1, 0, 0, &im);
    for (i = 0; i < (size_t)w * h; i++)
        cr_assert_eq(im.px[i], imgt_luma(want[3 * i], want[3 * i + 1], want[3 * i + 2]));
    /* the clear band is white */
    cr_assert_eq(im.px[5 * w + 2], 255);
    img_free(&im);

    /* lossy colour with a lossless alpha plane (VP8X, ALPH, VP8) */
    cr_assert(first_chunk_is("tq.webp", "VP8X"));
    imgt_decode_ok(dir, "tq.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    imgt_diff_stats(want, im.px, (size_t)w * h * 3, &mean, &max);
    cr_assert_lt(mean, 3.0, "lossy alpha mean error %f", mean);
    cr_assert_eq(im.px[(5 * w + 2) * 3], 255, "clear band not white");
    img_free(&im);
    free(src);
    free(want);
}

/* ---- EXIF orientation ------------------------------------------------------------ */

Test(img_webp, exif_orientation_6_and_3)
{
    const uint32_t w = 64, h = 32;
    uint8_t *px = malloc((size_t)w * h * 3), *b;
    img im = {0};
    size_t n;

    gen_marked(w, h, 8, px);
    imgt_write_png(dir, "m.png", w, h, 3, px);
    tool("cwebp", "-quiet -q 95 m.png -o m.webp");
    write_exif("o6.exif", 6);
    write_exif("o3.exif", 3);
    tool("webpmux", "-set exif o6.exif m.webp -o o6.webp");
    tool("webpmux", "-set exif o3.exif m.webp -o o3.webp");
    cr_assert(first_chunk_is("o6.webp", "VP8X"), "webpmux wrote no VP8X");
    b = imgt_read(dir, "o6.webp", &n);
    cr_assert(has_chunk(b, n, "EXIF"), "no EXIF chunk");
    free(b);

    /* no EXIF: as stored */
    imgt_decode_ok(dir, "m.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    cr_assert(imgt_is_red(&im, 3, 3) && imgt_is_green(&im, w - 4, 3));
    img_free(&im);

    /* 6: turned 90 degrees clockwise; stored top-left shows at the
     * top-right, stored top-right at the bottom-right. */
    imgt_decode_ok(dir, "o6.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, h, w, h, w);
    cr_assert(imgt_is_red(&im, h - 4, 3), "6: red not at the top-right");
    cr_assert(imgt_is_green(&im, h - 4, w - 4), "6: green not at the bottom-right");
    cr_assert(!imgt_is_red(&im, 3, 3));
    img_free(&im);

    /* 3: turned 180 degrees; top-left to bottom-right, top-right to bottom-left */
    imgt_decode_ok(dir, "o3.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, w, h, w, h);
    cr_assert(imgt_is_red(&im, w - 4, h - 4), "3: red not at the bottom-right");
    cr_assert(imgt_is_green(&im, 3, h - 4), "3: green not at the bottom-left");
    img_free(&im);

    /* grey follows the same turn */
    imgt_decode_ok(dir, "o6.webp", 1, 0, 0, &im);
    imgt_expect_size(&im, h, w, h, w);
    cr_assert_lt(abs((int)im.px[3 * im.w + (h - 4)] - imgt_luma(255, 0, 0)), 12);
    cr_assert_lt(abs((int)im.px[3 * im.w + 3] - 128), 12);
    img_free(&im);
    free(px);
}

/* ---- reduced decoding ------------------------------------------------------------ */

/* Decode name whole and reduced to min_w x min_h; the reduced size must
 * be img_reduce_size's, and its pixels within mean/max of the whole
 * decode area-averaged to that size. */
static void check_reduced(const char *name, uint32_t w, uint32_t h, uint32_t min_w, uint32_t min_h,
                          double mean_bound, int max_bound)
{
    img full = {0}, red = {0};
    uint32_t rw = w, rh = h;
    uint8_t *avg;
    double mean;
    int max;

    cr_assert_eq(img_reduce_size(&rw, &rh, min_w, min_h), 1);
    imgt_decode_ok(dir, name, 3, 0, 0, &full);
    imgt_expect_size(&full, w, h, w, h);
    imgt_decode_ok(dir, name, 3, min_w, min_h, &red);
    imgt_expect_size(&red, rw, rh, w, h);
    cr_assert(red.w >= min_w && red.h >= min_h);
    avg = malloc((size_t)rw * rh * 3);
    cr_assert_eq(img_resize_area(full.px, w, h, 3, avg, rw, rh), PV_OK);
    imgt_diff_stats(avg, red.px, (size_t)rw * rh * 3, &mean, &max);
    cr_assert_leq(mean, mean_bound, "%s: reduced mean error %f", name, mean);
    cr_assert_leq(max, max_bound, "%s: reduced max error %d", name, max);
    img_free(&red);
    /* grey, reduced */
    imgt_decode_ok(dir, name, 1, min_w, min_h, &red);
    imgt_expect_size(&red, rw, rh, w, h);
    img_free(&red);
    img_free(&full);
    free(avg);
}

Test(img_webp, reduced_decode)
{
    const uint32_t w = 1000, h = 800;
    uint8_t *src = imgt_pattern(w, h, 3, 5), *want, *asrc;

    imgt_write_png(dir, "big.png", w, h, 3, src);
    tool("cwebp", "-quiet -lossless -z 0 big.png -o bl.webp");
    tool("cwebp", "-quiet -q 90 big.png -o bq.webp");
    /* lossless: libwebp's rescaler averages areas exactly, within rounding */
    check_reduced("bl.webp", w, h, 32, 32, 0.05, 1);
    /* lossy: averaged in YUV, without the loop filter: a few levels */
    check_reduced("bq.webp", w, h, 32, 32, 1.0, 8);
    check_reduced("bq.webp", w, h, 100, 30, 1.0, 8);

    /* lossy with alpha goes whole through the sink: bit for bit the full
     * decode averaged */
    asrc = alpha_source(w, h, &want);
    imgt_write_png(dir, "ba.png", w, h, 4, asrc);
    tool("cwebp", "-quiet -q 80 -alpha_q 100 ba.png -o ba.webp");
    check_reduced("ba.webp", w, h, 32, 32, 0.0, 0);
    /* lossless with alpha: premultiplied before averaging, so close */
    tool("cwebp", "-quiet -lossless -z 0 -exact ba.png -o bla.webp");
    check_reduced("bla.webp", w, h, 32, 32, 0.5, 1);
    free(asrc);
    free(want);
    free(src);
}

Test(img_webp, reduced_decode_uses_displayed_size)
{
    /* Stored 1000x800 with orientation 6: displayed 800x1000. A minimum of
     * 40x30 as displayed is 30x40 as stored. */
    const uint32_t w = 1000, h = 800;
    uint8_t *src = imgt_pattern(w, h, 3, 6);
    uint32_t sw = w, sh = h;
    img im = {0}, full = {0};
    uint8_t *avg;
    double mean;
    int max;

    imgt_write_png(dir, "r.png", w, h, 3, src);
    tool("cwebp", "-quiet -lossless -z 0 r.png -o r.webp");
    write_exif("o6.exif", 6);
    tool("webpmux", "-set exif o6.exif r.webp -o r6.webp");
    cr_assert_eq(img_reduce_size(&sw, &sh, 30, 40), 1);
    imgt_decode_ok(dir, "r6.webp", 3, 40, 30, &im);
    imgt_expect_size(&im, sh, sw, h, w);
    cr_assert(im.w >= 40 && im.h >= 30);
    imgt_decode_ok(dir, "r6.webp", 3, 0, 0, &full);
    imgt_expect_size(&full, h, w, h, w);
    avg = malloc((size_t)im.w * im.h * 3);
    cr_assert_eq(img_resize_area(full.px, full.w, full.h, 3, avg, im.w, im.h), PV_OK);
    imgt_diff_stats(avg, im.px, (size_t)im.w * im.h * 3, &mean, &max);
    cr_assert_leq(max, 1, "turned reduced decode differs by %d", max);
    img_free(&im);
    img_free(&full);
    free(avg);
    free(src);
}

/* ---- animation -------------------------------------------------------------------- */

Test(img_webp, animation_gives_first_frame)
{
    /* Frame 1: 32x24 at (8, 6); frame 2: 48x40 at (0, 0), so the canvas is
     * 48x40 and frame 1 leaves a transparent border, shown white. */
    uint8_t *a = imgt_pattern(32, 24, 3, 7), *b = imgt_pattern(48, 40, 3, 8);
    img im = {0};
    uint32_t x, y, c;

    imgt_write_png(dir, "f1.png", 32, 24, 3, a);
    imgt_write_png(dir, "f2.png", 48, 40, 3, b);
    tool("cwebp", "-quiet -lossless f1.png -o f1.webp");
    tool("cwebp", "-quiet -lossless f2.png -o f2.webp");
    tool("webpmux", "-frame f1.webp +100+8+6 -frame f2.webp +100+0+0 -o anim.webp");
    imgt_decode_ok(dir, "anim.webp", 3, 0, 0, &im);
    imgt_expect_size(&im, 48, 40, 48, 40);
    for (y = 0; y < 40; y++)
        for (x = 0; x < 48; x++)
            for (c = 0; c < 3; c++) {
                int in = x >= 8 && x < 40 && y >= 6 && y < 30;
                uint8_t want = in ? a[((y - 6) * 32 + (x - 8)) * 3 + c] : 255;
                cr_assert_eq(im.px[(y * 48 + x) * 3 + c], want, "pixel %u,%u channel %u", x, y, c);
            }
    img_free(&im);
    imgt_decode_ok(dir, "anim.webp", 1, 0, 0, &im);
    cr_assert_eq(im.px[0], 255);
    cr_assert_eq(im.px[6 * 48 + 8], imgt_luma(a[0], a[1], a[2]));
    img_free(&im);
    free(a);
    free(b);
}

Test(img_webp, animation_reduced_and_oriented)
{
    const uint32_t w = 400, h = 200;
    uint8_t *px = malloc((size_t)w * h * 3);
    img im = {0};
    uint32_t sw = w, sh = h;

    gen_marked(w, h, 64, px);
    imgt_write_png(dir, "m.png", w, h, 3, px);
    tool("cwebp", "-quiet -lossless -z 0 m.png -o m.webp");
    tool("webpmux", "-frame m.webp +100 -frame m.webp +100 -o anim.webp");
    write_exif("o3.exif", 3);
    tool("webpmux", "-set exif o3.exif anim.webp -o anim3.webp");
    cr_assert_eq(img_reduce_size(&sw, &sh, 32, 32), 1);
    imgt_decode_ok(dir, "anim3.webp", 3, 32, 32, &im);
    imgt_expect_size(&im, sw, sh, w, h);
    /* 180 degrees: red at the bottom-right, green at the bottom-left */
    cr_assert(imgt_is_red(&im, im.w - 2, im.h - 2), "red not at the bottom-right");
    cr_assert(imgt_is_green(&im, 1, im.h - 2), "green not at the bottom-left");
    img_free(&im);
    free(px);
}

/* ---- damaged files ------------------------------------------------------------------ */

Test(img_webp, truncated_files_fail)
{
    static const char *const files[] = {"l.webp", "q.webp", "a.webp", "x.webp", "anim.webp"};
    uint8_t *src = imgt_pattern(48, 32, 3, 9), *rgba = imgt_pattern(48, 32, 4, 10), *b;
    size_t n, cut, i, k;
    char what[64];

    imgt_write_png(dir, "s.png", 48, 32, 3, src);
    imgt_write_png(dir, "t.png", 48, 32, 4, rgba);
    tool("cwebp", "-quiet -lossless s.png -o l.webp");
    tool("cwebp", "-quiet -q 90 s.png -o q.webp");
    tool("cwebp", "-quiet -q 90 -alpha_q 50 t.png -o a.webp");
    write_exif("e.exif", 6);
    tool("webpmux", "-set exif e.exif q.webp -o x.webp");
    tool("webpmux", "-frame q.webp +100 -frame l.webp +100 -o anim.webp");
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        b = imgt_read(dir, files[i], &n);
        const size_t cuts[] = {12, 16, 20, 26, 30, 34, 40, n / 4, n / 2, n - 9, n - 1};
        for (k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            cut = cuts[k];
            if (cut >= n)
                continue;
            snprintf(what, sizeof what, "%s cut at %zu of %zu", files[i], cut, n);
            bytes_fail(what, b, cut, PV_EDECODE, "truncated");
        }
        /* shorter than a RIFF header: img_decode says so itself */
        bytes_fail("8 bytes", b, 8, PV_EDECODE, "truncated");
        free(b);
    }
    free(src);
    free(rgba);
}

Test(img_webp, lying_sizes_fail)
{
    uint8_t *src = imgt_pattern(48, 32, 3, 11), *b, *c;
    size_t n;

    imgt_write_png(dir, "s.png", 48, 32, 3, src);
    tool("cwebp", "-quiet -q 90 s.png -o q.webp");
    tool("cwebp", "-quiet -lossless s.png -o l.webp");
    b = imgt_read(dir, "q.webp", &n);
    c = malloc(n);
    /* RIFF size promising more than the file has */
    memcpy(c, b, n);
    put_le32(c + 4, (uint32_t)n);
    bytes_fail("RIFF size + 8", c, n, PV_EDECODE, "truncated");
    put_le32(c + 4, 0x7ffffff0u);
    bytes_fail("RIFF size 2 GB", c, n, PV_EDECODE, NULL);
    put_le32(c + 4, 0xffffffffu);
    bytes_fail("RIFF size 4 GB", c, n, PV_EDECODE, NULL);
    /* ... and less than the image needs */
    put_le32(c + 4, (uint32_t)(n / 2));
    bytes_fail("RIFF size n/2", c, n, PV_EDECODE, NULL);
    put_le32(c + 4, 4);
    bytes_fail("RIFF size 4", c, n, PV_EDECODE, NULL);
    /* the VP8 chunk's size larger than the RIFF holds */
    memcpy(c, b, n);
    put_le32(c + 16, (uint32_t)n);
    bytes_fail("VP8 chunk size", c, n, PV_EDECODE, NULL);
    /* garbage after the frame header */
    memcpy(c, b, n);
    memset(c + 40, 0xa5, n - 40);
    {
        char err[256] = "";
        img im = {0};
        int rc = img_decode(c, n, 3, 0, 0, &im, err, sizeof err);
        /* VP8 may decode noise to noise; it must not crash or lie about sizes */
        if (rc == PV_OK) {
            imgt_expect_size(&im, 48, 32, 48, 32);
            img_free(&im);
        } else {
            cr_assert_eq(rc, PV_EDECODE, "%s", err);
        }
    }
    free(b);
    free(c);
    /* lossless: a damaged bitstream is a bitstream error */
    b = imgt_read(dir, "l.webp", &n);
    memset(b + 26, 0xff, n - 26);
    bytes_fail("VP8L garbage", b, n, PV_EDECODE, "corrupt");
    free(b);
    /* a RIFF of the wrong kind of data */
    {
        static const uint8_t junk[] = {'R', 'I', 'F', 'F', 20,  0,   0, 0, 'W', 'E',
                                       'B', 'P', 'V', 'P', '8', 'Q', 8, 0, 0,   0,
                                       1,   2,   3,   4,   5,   6,   7, 8};
        bytes_fail("unknown chunk", junk, sizeof junk, PV_EDECODE, NULL);
    }
    free(src);
}

Test(img_webp, bombs_refused_from_the_header)
{
    uint8_t *src = imgt_pattern(16, 16, 3, 12), *b;
    size_t n;

    imgt_write_png(dir, "s.png", 16, 16, 3, src);
    tool("cwebp", "-quiet -q 90 s.png -o q.webp");
    tool("cwebp", "-quiet -lossless s.png -o l.webp");
    write_exif("e.exif", 1);
    tool("webpmux", "-set exif e.exif q.webp -o x.webp");
    tool("webpmux", "-frame q.webp +100 -frame q.webp +100 -o anim.webp");

    /* a VP8X canvas of 16383 x 16383 (268 megapixels) over a 16x16 image */
    b = imgt_read(dir, "x.webp", &n);
    cr_assert(n > 30 && memcmp(b + 12, "VP8X", 4) == 0);
    b[24] = b[27] = 0xfe;
    b[25] = b[28] = 0x3f;
    b[26] = b[29] = 0;
    bytes_fail("VP8X canvas 16383x16383", b, n, PV_ETOOBIG, "more than the limit");
    /* a canvas that fits the limit but not the image: corrupt, not too big */
    b[24] = b[27] = 99;
    b[25] = b[28] = 0;
    bytes_fail("VP8X canvas 100x100", b, n, PV_EDECODE, NULL);
    free(b);

    /* the same canvas on an animation */
    b = imgt_read(dir, "anim.webp", &n);
    cr_assert(n > 30 && memcmp(b + 12, "VP8X", 4) == 0);
    b[24] = b[27] = 0xfe;
    b[25] = b[28] = 0x3f;
    bytes_fail("animated canvas 16383x16383", b, n, PV_ETOOBIG, "more than the limit");
    free(b);

    /* a simple lossy file whose frame header says 16383 x 16383 */
    b = imgt_read(dir, "q.webp", &n);
    cr_assert(memcmp(b + 12, "VP8 ", 4) == 0 && b[23] == 0x9d && b[24] == 0x01 && b[25] == 0x2a);
    b[26] = b[28] = 0xff;
    b[27] = b[29] = 0x3f;
    bytes_fail("VP8 16383x16383", b, n, PV_ETOOBIG, "more than the limit");
    free(b);

    /* a lossless file whose header says 16384 x 16384: 14 bits each of
     * width - 1 and height - 1 after the 0x2f signature */
    b = imgt_read(dir, "l.webp", &n);
    cr_assert(memcmp(b + 12, "VP8L", 4) == 0 && b[20] == 0x2f);
    b[21] = 0xff;
    b[22] = 0xff;
    b[23] = 0xff;
    b[24] = (uint8_t)((b[24] & 0xf0) | 0x0f);
    bytes_fail("VP8L 16384x16384", b, n, PV_ETOOBIG, "more than the limit");
    free(b);
    free(src);
}
