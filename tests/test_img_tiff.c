/*
 * test_img_tiff.c - the TIFF decoder (engine/image/img_tiff.c): every kind
 * of file ImageMagick's convert and libtiff's tools write, compared with the
 * pixels they were made from; orientation; reduced decoding; damaged,
 * truncated and hostile files.
 *
 * Files are made at run time, in a fresh gen_tmpdir folder removed after
 * each test, from PNGs written by tests/gen.c: `convert` (package
 * imagemagick), `tiffcp` and `tiffset` (package libtiff-tools). A missing
 * tool fails the test and names its package (scripts/setup.sh installs
 * both). Each file's layout is checked with libtiff before it is decoded,
 * so a tool that wrote something else than asked fails the test instead of
 * letting it pass on the wrong file.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tiffio.h>

#include "gen.h"
#include "img.h"
#include "img_formats.h"
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

TestSuite(img_tiff, .init = setup, .fini = teardown);

/* Path of a file in the test's directory (static buffers, a few at a time). */
static const char *tpath(const char *name)
{
    return imgt_path(dir, name);
}

/* ---- tools ------------------------------------------------------------- */

/* Run a shell command in the test directory; fails the test, with the
 * command and what it printed, unless it exits 0. The tool it starts with
 * must be installed: convert (imagemagick), tiff* (libtiff-tools). */
static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert(k >= 0 && (size_t)k < sizeof cmd, "command line too long");
    if (strncmp(cmd, "convert", 7) == 0)
        imgt_tool(dir, "convert", "imagemagick", "%s", cmd);
    else if (strncmp(cmd, "tiff", 4) == 0)
        imgt_tool(dir, "tiffcp", "libtiff-tools", "%s", cmd);
    else
        imgt_tool(dir, "cp", "coreutils", "%s", cmd);
}

/* ---- pixels and files -------------------------------------------------- */

static void expect_pixels(const img *im, uint32_t w, uint32_t h, const uint8_t *want, int tol,
                          const char *what)
{
    cr_assert(im->w == w && im->h == h && im->orig_w == w && im->orig_h == h,
              "%s: %ux%u (orig %ux%u), want %ux%u", what, im->w, im->h, im->orig_w, im->orig_h, w,
              h);
    int d = imgt_max_diff(im->px, want, (size_t)w * h * im->channels);
    cr_assert(d <= tol, "%s: pixels differ by up to %d (tolerance %d)", what, d, tol);
}

/* The layout of a TIFF's first directory, read with libtiff (quietly). */
typedef struct tif_layout {
    uint16_t bps, spp, photometric, compression, planar, nextra, extra0;
    int tiled, ndirs;
    uint32_t rows_per_strip;
} tif_layout;

static int quiet(TIFF *t, void *u, const char *m, const char *f, va_list ap)
{
    (void)t;
    (void)u;
    (void)m;
    (void)f;
    (void)ap;
    return 1;
}

static tif_layout layout(const char *name)
{
    tif_layout l = {0};
    uint16_t *extra = NULL;
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    cr_assert_not_null(o);
    TIFFOpenOptionsSetErrorHandlerExtR(o, quiet, NULL);
    TIFFOpenOptionsSetWarningHandlerExtR(o, quiet, NULL);
    TIFF *t = TIFFOpenExt(tpath(name), "r", o);
    cr_assert_not_null(t, "%s: libtiff cannot open it", name);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &l.bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &l.spp);
    TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &l.photometric);
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &l.compression);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &l.planar);
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &l.rows_per_strip);
    TIFFGetFieldDefaulted(t, TIFFTAG_EXTRASAMPLES, &l.nextra, &extra);
    l.extra0 = l.nextra > 0 && extra != NULL ? extra[0] : 0;
    l.tiled = TIFFIsTiled(t);
    l.ndirs = TIFFNumberOfDirectories(t);
    TIFFClose(t);
    TIFFOpenOptionsFree(o);
    return l;
}

/* ---- raw classic TIFF editing (little-endian, as convert writes here) -- */

static uint32_t rd16(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8;
}
static uint32_t rd32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}
static void wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}

static uint32_t type_size(uint32_t type)
{
    switch (type) {
    case 3:
    case 8:
        return 2; /* SHORT, SSHORT */
    case 4:
    case 9:
    case 11:
    case 13:
        return 4; /* LONG, SLONG, FLOAT, IFD */
    case 5:
    case 10:
    case 12:
        return 8; /* RATIONAL, SRATIONAL, DOUBLE */
    default:
        return 1;
    }
}

/* The first directory's entry for tag: its address in b, or NULL. */
static uint8_t *entry(uint8_t *b, size_t n, uint32_t tag)
{
    cr_assert(n >= 8 && memcmp(b, "II*\0", 4) == 0, "not a little-endian TIFF");
    uint32_t off = rd32(b + 4);
    cr_assert(off + 2 <= n);
    uint32_t cnt = rd16(b + off);
    cr_assert(off + 2 + 12 * cnt <= n);
    for (uint32_t i = 0; i < cnt; i++)
        if (rd16(b + off + 2 + 12 * i) == tag)
            return b + off + 2 + 12 * i;
    return NULL;
}

/* Where an entry's values are in b (inline or at their offset). */
static uint8_t *values(uint8_t *b, uint8_t *e)
{
    return rd32(e + 4) * type_size(rd16(e + 2)) <= 4 ? e + 8 : b + rd32(e + 8);
}

/* Rewrite the file so its first directory comes right after the header and
 * the pixel data after it (a layout TIFF allows and some writers use;
 * libtiff writes the directory last): then a file cut short loses pixel
 * data but keeps its directory. Other directories are dropped. */
static void move_ifd_first(const char *name)
{
    uint8_t *b = NULL, *o;
    size_t n = 0;
    cr_assert_eq(gen_read_bytes(tpath(name), &b, &n), 0);
    uint32_t ifd = rd32(b + 4), cnt = rd16(b + ifd), r0 = ifd, i;
    for (i = 0; i < cnt; i++) { /* the directory region: IFD and its values */
        uint8_t *e = b + ifd + 2 + 12 * i;
        if (rd32(e + 4) * type_size(rd16(e + 2)) > 4 && rd32(e + 8) < r0)
            r0 = rd32(e + 8);
    }
    /* new file: header, [r0, n), [8, r0) */
    o = malloc(n);
    cr_assert_not_null(o);
    memcpy(o, b, 8);
    memcpy(o + 8, b + r0, n - r0);
    memcpy(o + 8 + (n - r0), b + 8, r0 - 8);
    uint32_t to_r = 8 - r0;             /* added to offsets in the region */
    uint32_t to_d = (uint32_t)(n - r0); /* added to offsets in the data */
    wr32(o + 4, ifd + to_r);
    uint8_t *d = o + (uint32_t)(ifd + to_r);
    wr32(d + 2 + 12 * cnt, 0); /* no next directory */
    for (i = 0; i < cnt; i++) {
        uint8_t *e = d + 2 + 12 * i;
        uint32_t tag = rd16(e), type = rd16(e + 2), c = rd32(e + 4);
        uint8_t *v;
        if (c * type_size(type) > 4)
            wr32(e + 8, rd32(e + 8) + to_r);
        if (tag != 273 && tag != 324) /* StripOffsets, TileOffsets */
            continue;
        v = values(o, e);
        for (uint32_t k = 0; k < c; k++) {
            if (type == 3)
                wr16(v + 2 * k, rd16(v + 2 * k) + to_d);
            else
                wr32(v + 4 * k, rd32(v + 4 * k) + to_d);
        }
    }
    cr_assert_eq(gen_write_bytes(tpath(name), o, n), 0);
    free(o);
    free(b);
}

/* ---- what convert and tiffcp write ------------------------------------- */

Test(img_tiff, rgb8_exact)
{
    const uint32_t w = 97, h = 61;
    uint8_t *px = imgt_pattern(w, h, 3, 1), *grey = malloc((size_t)w * h);
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    run("convert a.png -depth 8 -compress none a.tif");
    tif_layout l = layout("a.tif");
    cr_assert(l.bps == 8 && l.spp == 3 && l.photometric == PHOTOMETRIC_RGB &&
              l.compression == COMPRESSION_NONE && !l.tiled);
    imgt_decode_ok(dir, "a.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "RGB");
    img_free(&im);
    /* grey: Rec.601 luma, as for a PNG */
    img_convert(px, 3, grey, 1, (size_t)w * h);
    imgt_decode_ok(dir, "a.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, grey, 0, "RGB as grey");
    img_free(&im);
    free(grey);
    free(px);
}

Test(img_tiff, rgb16_within_one)
{
    const uint32_t w = 64, h = 40;
    uint8_t *px = imgt_pattern(w, h, 3, 2);
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    run("convert a.png -depth 16 -compress zip a16.tif");
    tif_layout l = layout("a16.tif");
    cr_assert(l.bps == 16 && l.spp == 3, "bps %u spp %u", l.bps, l.spp);
    imgt_decode_ok(dir, "a16.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 1, "16-bit RGB");
    img_free(&im);
    free(px);
}

Test(img_tiff, grey_8_and_16)
{
    const uint32_t w = 70, h = 50;
    uint8_t *px = imgt_pattern(w, h, 1, 3), *rgb = malloc((size_t)w * h * 3);
    img im = {0};

    imgt_write_png(dir, "g.png", w, h, 1, px);
    run("convert g.png -depth 8 -compress lzw g8.tif");
    run("convert g.png -depth 16 -compress lzw g16.tif");
    tif_layout l8 = layout("g8.tif"), l16 = layout("g16.tif");
    cr_assert(l8.bps == 8 && l8.spp == 1 && l8.photometric == PHOTOMETRIC_MINISBLACK);
    cr_assert(l16.bps == 16 && l16.spp == 1 && l16.photometric == PHOTOMETRIC_MINISBLACK);
    imgt_decode_ok(dir, "g8.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "grey 8");
    img_free(&im);
    imgt_decode_ok(dir, "g16.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, px, 1, "grey 16");
    img_free(&im);
    img_convert(px, 1, rgb, 3, (size_t)w * h);
    imgt_decode_ok(dir, "g8.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, rgb, 0, "grey 8 as RGB");
    img_free(&im);
    free(rgb);
    free(px);
}

Test(img_tiff, grey_min_is_white)
{
    /* The same samples read as min-is-white are the negative. */
    const uint32_t w = 40, h = 30;
    uint8_t *px = imgt_pattern(w, h, 1, 4), *neg = malloc((size_t)w * h);
    img im = {0};

    for (size_t i = 0; i < (size_t)w * h; i++)
        neg[i] = (uint8_t)(255 - px[i]);
    imgt_write_png(dir, "g.png", w, h, 1, px);
    run("convert g.png -depth 8 -compress none g.tif && tiffset -s 262 0 g.tif");
    cr_assert_eq(layout("g.tif").photometric, PHOTOMETRIC_MINISWHITE);
    imgt_decode_ok(dir, "g.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, neg, 0, "min-is-white");
    img_free(&im);
    free(neg);
    free(px);
}

Test(img_tiff, palette)
{
    const uint32_t w = 48, h = 36;
    static const uint8_t colours[5][3] = {
        {200, 30, 40}, {10, 120, 250}, {255, 255, 0}, {0, 0, 0}, {90, 200, 90}};
    uint8_t *px = malloc((size_t)w * h * 3);
    img im = {0};

    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            memcpy(px + ((size_t)y * w + x) * 3, colours[(x / 7 + y / 5) % 5], 3);
    imgt_write_png(dir, "p.png", w, h, 3, px);
    run("convert p.png -type Palette -compress rle p.tif");
    tif_layout l = layout("p.tif");
    cr_assert(l.photometric == PHOTOMETRIC_PALETTE && l.spp == 1, "photometric %u", l.photometric);
    cr_assert_eq(l.compression, COMPRESSION_PACKBITS);
    imgt_decode_ok(dir, "p.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "palette");
    img_free(&im);
    free(px);
}

Test(img_tiff, bilevel)
{
    const uint32_t w = 61, h = 33;
    uint8_t *px = malloc((size_t)w * h);
    img im = {0};

    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            px[(size_t)y * w + x] = ((x / 3) ^ (y / 4)) & 1 ? 255 : 0;
    imgt_write_png(dir, "b.png", w, h, 1, px);
    run("convert b.png -type Bilevel -compress group4 b.tif");
    run("convert b.png -type Bilevel -depth 1 -compress none b1.tif");
    tif_layout l = layout("b.tif");
    cr_assert(l.bps == 1 && l.compression == COMPRESSION_CCITTFAX4, "bps %u", l.bps);
    cr_assert_eq(layout("b1.tif").bps, 1);
    imgt_decode_ok(dir, "b.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "bilevel G4");
    img_free(&im);
    imgt_decode_ok(dir, "b1.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "bilevel");
    img_free(&im);
    free(px);
}

Test(img_tiff, cmyk_contig_and_separate)
{
    const uint32_t w = 50, h = 40;
    uint8_t *px = imgt_pattern(w, h, 3, 5);
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    run("convert a.png -colorspace CMYK -depth 8 -compress lzw c.tif");
    run("tiffcp -p separate c.tif cs.tif");
    tif_layout l = layout("c.tif");
    cr_assert(l.photometric == PHOTOMETRIC_SEPARATED && l.spp == 4 && l.bps == 8,
              "photometric %u spp %u", l.photometric, l.spp);
    cr_assert_eq(layout("cs.tif").planar, PLANARCONFIG_SEPARATE);
    /* convert's CMYK and libtiff's R = (255-C)(255-K)/255 (truncated) meet
     * within a few levels */
    imgt_decode_ok(dir, "c.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 3, "CMYK");
    img_free(&im);
    imgt_decode_ok(dir, "cs.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 3, "CMYK, separate planes");
    img_free(&im);
    free(px);
}

Test(img_tiff, alpha_over_white)
{
    const uint32_t w = 45, h = 31;
    uint8_t *rgba = imgt_pattern(w, h, 4, 6), *ga = malloc((size_t)w * h * 2);
    uint8_t *want = malloc((size_t)w * h * 3), *wantg = malloc((size_t)w * h);
    img im = {0};

    for (size_t i = 0; i < (size_t)w * h; i++) {
        rgba[4 * i + 3] = (uint8_t)(i * 37 % 256); /* every alpha, 0 and 255 too */
        ga[2 * i] = rgba[4 * i];
        ga[2 * i + 1] = rgba[4 * i + 3];
    }
    img_convert(rgba, 4, want, 3, (size_t)w * h);
    img_convert(ga, 2, wantg, 1, (size_t)w * h);
    imgt_write_png(dir, "a.png", w, h, 4, rgba);
    imgt_write_png(dir, "ga.png", w, h, 2, ga);
    run("convert a.png -depth 8 -compress zip a.tif");
    run("convert ga.png -depth 8 -compress zip ga.tif");
    run("tiffcp -p separate a.tif as.tif");
    tif_layout l = layout("a.tif"), lg = layout("ga.tif");
    cr_assert(l.spp == 4 && l.nextra == 1 && l.extra0 == EXTRASAMPLE_UNASSALPHA,
              "spp %u extra %u/%u", l.spp, l.nextra, l.extra0);
    cr_assert(lg.spp == 2 && lg.nextra == 1, "grey+alpha spp %u", lg.spp);
    imgt_decode_ok(dir, "a.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, want, 0, "RGBA over white");
    img_free(&im);
    imgt_decode_ok(dir, "as.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, want, 0, "RGBA, separate planes");
    img_free(&im);
    imgt_decode_ok(dir, "ga.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, wantg, 0, "grey+alpha over white");
    img_free(&im);
    free(wantg);
    free(want);
    free(ga);
    free(rgba);
}

Test(img_tiff, compressions)
{
    static const char *const lossless[] = {"none", "lzw", "zip", "packbits"};
    static const char *const opt[] = {"none", "lzw", "zip", "rle"}; /* convert's names */
    static const uint16_t scheme[] = {COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE,
                                      COMPRESSION_PACKBITS};
    const uint32_t w = 83, h = 57;
    uint8_t *px = imgt_pattern(w, h, 3, 7);
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s.tif", lossless[i]);
        run("convert a.png -depth 8 -compress %s %s", opt[i], name);
        cr_assert_eq(layout(name).compression, scheme[i], "%s", name);
        imgt_decode_ok(dir, name, 3, 0, 0, &im);
        expect_pixels(&im, w, h, px, 0, name);
        img_free(&im);
    }
    /* JPEG: convert's (RGB) and tiffcp's (YCbCr 2x2, strips of 16 rows) */
    run("convert a.png -depth 8 -compress jpeg -quality 95 j.tif");
    run("tiffcp -c jpeg:95 -r 16 none.tif jy.tif");
    cr_assert_eq(layout("j.tif").compression, COMPRESSION_JPEG);
    tif_layout ly = layout("jy.tif");
    cr_assert(ly.compression == COMPRESSION_JPEG && ly.photometric == PHOTOMETRIC_YCBCR,
              "photometric %u", ly.photometric);
    imgt_decode_ok(dir, "j.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 48, "JPEG");
    img_free(&im);
    /* 2x2 chroma subsampling smears the pattern's sharp edges: compare
     * with libtiff's own whole-image read (tiff2rgba), exactly, and with
     * the source on average */
    run("tiff2rgba -n jy.tif ref.tif");
    img ref = {0};
    imgt_decode_ok(dir, "ref.tif", 3, 0, 0, &ref);
    imgt_decode_ok(dir, "jy.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, ref.px, 0, "JPEG YCbCr against tiff2rgba");
    img_free(&ref);
    uint64_t sum = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        sum += (uint64_t)abs((int)im.px[i] - (int)px[i]);
    cr_assert_lt((double)sum / (w * h * 3), 4.0, "mean error %.2f", (double)sum / (w * h * 3));
    img_free(&im);
    free(px);
}

Test(img_tiff, tiled_and_separate_planes)
{
    const uint32_t w = 150, h = 100; /* not multiples of the 64x64 tiles */
    uint8_t *px = imgt_pattern(w, h, 3, 8);
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    run("convert a.png -depth 8 -compress lzw a.tif");
    run("tiffcp -t -w 64 -l 64 a.tif t.tif");
    run("tiffcp -t -w 64 -l 64 -p separate a.tif ts.tif");
    run("tiffcp -p separate -r 7 a.tif s.tif");
    cr_assert(layout("t.tif").tiled);
    tif_layout ts = layout("ts.tif"), s = layout("s.tif");
    cr_assert(ts.tiled && ts.planar == PLANARCONFIG_SEPARATE);
    cr_assert(!s.tiled && s.planar == PLANARCONFIG_SEPARATE && s.rows_per_strip == 7);
    imgt_decode_ok(dir, "t.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "tiled");
    img_free(&im);
    imgt_decode_ok(dir, "ts.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "tiled, separate planes");
    img_free(&im);
    imgt_decode_ok(dir, "s.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "strips, separate planes");
    img_free(&im);
    free(px);
}

Test(img_tiff, multipage_takes_the_first)
{
    const uint32_t w = 40, h = 30;
    uint8_t *a = imgt_pattern(w, h, 3, 9), *b = imgt_pattern(50, 20, 3, 10);
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, a);
    imgt_write_png(dir, "b.png", 50, 20, 3, b);
    run("convert a.png b.png -depth 8 -compress lzw m.tif");
    cr_assert_eq(layout("m.tif").ndirs, 2);
    imgt_decode_ok(dir, "m.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, a, 0, "first page");
    img_free(&im);
    free(b);
    free(a);
}

Test(img_tiff, both_byte_orders)
{
    const uint32_t w = 33, h = 21;
    uint8_t *px = imgt_pattern(w, h, 3, 11), *buf = NULL;
    size_t n = 0;
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    /* ImageMagick 6.9's TIFF writer ignores -endian: its own define */
    run("convert a.png -depth 8 -define tiff:endian=msb -compress lzw mm.tif");
    run("convert a.png -depth 8 -define tiff:endian=lsb -compress lzw ii.tif");
    cr_assert_eq(gen_read_bytes(tpath("mm.tif"), &buf, &n), 0);
    cr_assert(memcmp(buf, "MM\0*", 4) == 0, "not big-endian");
    cr_assert_eq(img_sniff(buf, n), IMG_TIFF);
    free(buf);
    cr_assert_eq(gen_read_bytes(tpath("ii.tif"), &buf, &n), 0);
    cr_assert(memcmp(buf, "II*\0", 4) == 0, "not little-endian");
    cr_assert_eq(img_sniff(buf, n), IMG_TIFF);
    free(buf);
    imgt_decode_ok(dir, "mm.tif", 3, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "big-endian");
    img_free(&im);
    free(px);
}

/* ---- orientation ------------------------------------------------------- */

/* gen_marked (red at the stored top-left, green at the top-right) with the
 * Orientation tag set to o. */
static void marked_tiff(const char *name, uint32_t w, uint32_t h, int o)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    gen_marked(w, h, 8, px);
    imgt_write_png(dir, "m.png", w, h, 3, px);
    run("convert m.png -depth 8 -compress lzw %s && tiffset -s 274 %d %s", name, o, name);
    free(px);
}

Test(img_tiff, orientation_6)
{
    img im = {0};

    marked_tiff("o6.tif", 64, 32, 6);
    imgt_decode_ok(dir, "o6.tif", 3, 0, 0, &im);
    /* 90 degrees clockwise, as a viewer shows it: displayed 32x64, the
     * stored top-left at the top-right, the stored top-right at the
     * bottom-right */
    cr_assert(im.w == 32 && im.h == 64 && im.orig_w == 32 && im.orig_h == 64, "%ux%u", im.w, im.h);
    cr_assert(imgt_is_red(&im, 28, 3), "red not at the top-right");
    cr_assert(imgt_is_green(&im, 28, 60), "green not at the bottom-right");
    cr_assert(!imgt_is_red(&im, 3, 3));
    img_free(&im);
}

Test(img_tiff, orientation_3)
{
    img im = {0};

    marked_tiff("o3.tif", 64, 32, 3);
    imgt_decode_ok(dir, "o3.tif", 3, 0, 0, &im);
    /* 180 degrees: red at the bottom-right, green at the bottom-left */
    cr_assert(im.w == 64 && im.h == 32, "%ux%u", im.w, im.h);
    cr_assert(imgt_is_red(&im, 60, 28), "red not at the bottom-right");
    cr_assert(imgt_is_green(&im, 3, 28), "green not at the bottom-left");
    cr_assert(!imgt_is_red(&im, 3, 3));
    img_free(&im);
}

Test(img_tiff, all_orientations)
{
    /* corners: 0 TL, 1 TR, 2 BL, 3 BR, as in test_img.c */
    static const int red_at[9] = {0, 0, 1, 3, 2, 0, 1, 3, 2};
    static const int green_at[9] = {0, 1, 0, 2, 3, 2, 3, 1, 0};
    const uint32_t w = 48, h = 32;

    for (int o = 1; o <= 8; o++) {
        char name[32];
        img im = {0};
        uint32_t cx[4], cy[4], dw = o >= 5 ? h : w, dh = o >= 5 ? w : h;
        snprintf(name, sizeof name, "o%d.tif", o);
        marked_tiff(name, w, h, o);
        imgt_decode_ok(dir, name, 3, 0, 0, &im);
        cr_assert(im.w == dw && im.h == dh, "orientation %d: %ux%u", o, im.w, im.h);
        cx[0] = cx[2] = 3;
        cx[1] = cx[3] = im.w - 4;
        cy[0] = cy[1] = 3;
        cy[2] = cy[3] = im.h - 4;
        cr_assert(imgt_is_red(&im, cx[red_at[o]], cy[red_at[o]]), "orientation %d red", o);
        cr_assert(imgt_is_green(&im, cx[green_at[o]], cy[green_at[o]]), "orientation %d green", o);
        img_free(&im);
    }
}

/* ---- reduced decoding -------------------------------------------------- */

Test(img_tiff, reduced_with_orientation_6)
{
    /* stored 640x320, displayed 320x640: the minimum is as displayed */
    const uint32_t w = 640, h = 320;
    uint8_t *px = malloc((size_t)w * h * 3);
    img im = {0};

    gen_marked(w, h, 80, px);
    imgt_write_png(dir, "m.png", w, h, 3, px);
    run("convert m.png -depth 8 -compress lzw r.tif && tiffset -s 274 6 r.tif");
    imgt_decode_ok(dir, "r.tif", 3, 40, 80, &im);
    cr_assert(im.orig_w == 320 && im.orig_h == 640, "orig %ux%u", im.orig_w, im.orig_h);
    cr_assert(im.w == 40 && im.h == 80, "%ux%u", im.w, im.h);
    cr_assert(imgt_is_red(&im, im.w - 3, 2), "red not at the top-right");
    cr_assert(imgt_is_green(&im, im.w - 3, im.h - 3), "green not at the bottom-right");
    img_free(&im);
    free(px);
}

Test(img_tiff, reduced_decode)
{
    const uint32_t w = 1000, h = 800;
    uint8_t *px = imgt_pattern(w, h, 3, 12);
    uint32_t rw = w, rh = h;
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    run("convert a.png -depth 8 -compress lzw a.tif");
    cr_assert_eq(img_reduce_size(&rw, &rh, 32, 32), 1);
    uint8_t *want = malloc((size_t)rw * rh * 3);
    cr_assert_eq(img_resize_area(px, w, h, 3, want, rw, rh), PV_OK);
    imgt_decode_ok(dir, "a.tif", 3, 32, 32, &im);
    cr_assert(im.w == rw && im.h == rh && im.orig_w == w && im.orig_h == h,
              "%ux%u of %ux%u, want %ux%u", im.w, im.h, im.orig_w, im.orig_h, rw, rh);
    cr_assert(im.w >= 32 && im.h >= 32);
    cr_assert_leq(imgt_max_diff(im.px, want, (size_t)rw * rh * 3), 1);
    img_free(&im);
    free(want);
    free(px);
}

Test(img_tiff, one_strip_larger_than_a_band)
{
    /* One Deflate strip of 4.4 million pixels, more than a band holds
     * (IMG_HOLD_PIXELS): read in several bands from inside the strip. */
    const uint32_t w = 2100, h = 2100;
    uint8_t *px = imgt_pattern(w, h, 1, 13);
    img im = {0};

    cr_assert_gt((uint64_t)w * h, IMG_HOLD_PIXELS);
    imgt_write_png(dir, "g.png", w, h, 1, px);
    run("convert g.png -depth 8 -compress zip g.tif && tiffcp -c zip -r %u g.tif g1.tif", h);
    cr_assert_eq(layout("g1.tif").rows_per_strip, h);
    imgt_decode_ok(dir, "g1.tif", 1, 0, 0, &im);
    expect_pixels(&im, w, h, px, 0, "one large strip");
    img_free(&im);
    free(px);
}

/* ---- damaged and hostile files ----------------------------------------- */

Test(img_tiff, truncated)
{
    const uint32_t w = 64, h = 48;
    uint8_t *px = imgt_pattern(w, h, 3, 14), *buf = NULL;
    size_t n = 0;
    char err[256];
    img im = {0};

    imgt_write_png(dir, "a.png", w, h, 3, px);
    run("convert a.png -depth 8 -compress lzw a.tif && tiffcp -c lzw -r 8 a.tif s.tif");
    /* libtiff writes the directory last: cut anywhere before its end, the
     * directory is gone */
    cr_assert_eq(gen_read_bytes(tpath("s.tif"), &buf, &n), 0);
    uint32_t ifd = rd32(buf + 4);
    size_t dir_cuts[] = {4, 7, 8, 100, ifd / 2, ifd, ifd + 7, ifd + 60};
    for (size_t i = 0; i < sizeof dir_cuts / sizeof dir_cuts[0]; i++) {
        memset(err, 0, sizeof err);
        int rc = img_decode(buf, dir_cuts[i], 3, 0, 0, &im, err, sizeof err);
        cr_assert_eq(rc, PV_EDECODE, "cut at %zu of %zu: %d %s", dir_cuts[i], n, rc, err);
        cr_assert_neq(err[0], '\0');
    }
    free(buf);
    /* the directory first: cut in the pixel data, the strips are short */
    move_ifd_first("s.tif");
    imgt_decode_ok(dir, "s.tif", 3, 0, 0, &im); /* whole, the moved file is good */
    expect_pixels(&im, w, h, px, 0, "directory first");
    img_free(&im);
    cr_assert_eq(gen_read_bytes(tpath("s.tif"), &buf, &n), 0);
    uint32_t data0 = rd32(values(buf, entry(buf, n, 273)));
    size_t data_cuts[] = {data0 + 1, data0 + (n - data0) / 3, data0 + (n - data0) / 2, n - 1};
    for (size_t i = 0; i < sizeof data_cuts / sizeof data_cuts[0]; i++) {
        memset(err, 0, sizeof err);
        int rc = img_decode(buf, data_cuts[i], 3, 0, 0, &im, err, sizeof err);
        cr_assert_eq(rc, PV_EDECODE, "cut at %zu of %zu: %d %s", data_cuts[i], n, rc, err);
        cr_assert(strstr(err, "strip") != NULL, "cut at %zu: \"%s\"", data_cuts[i], err);
    }
    free(buf);
    free(px);
}

Test(img_tiff, short_fax_strip_is_an_error)
{
    /* A Group 4 strip whose byte count is cut: libtiff only warns
     * ("Premature EOF") and pads the rows white; the decoder refuses it. */
    const uint32_t w = 64, h = 64;
    uint8_t *px = malloc((size_t)w * h), *buf = NULL, *e;
    size_t n = 0;

    for (size_t i = 0; i < (size_t)w * h; i++)
        px[i] = (i * 7919 % 13) < 6 ? 0 : 255; /* noise: G4 cannot shrink it */
    imgt_write_png(dir, "b.png", w, h, 1, px);
    run("convert b.png -type Bilevel -compress group4 b.tif");
    cr_assert_eq(gen_read_bytes(tpath("b.tif"), &buf, &n), 0);
    cr_assert_not_null(e = entry(buf, n, 279)); /* StripByteCounts */
    cr_assert_eq(rd32(e + 4), 1, "one strip");
    cr_assert_eq(rd16(e + 2), 4);
    cr_assert_gt(rd32(e + 8), 64);
    wr32(e + 8, rd32(e + 8) / 2);
    cr_assert_eq(gen_write_bytes(tpath("short.tif"), buf, n), 0);
    imgt_decode_fails(dir, "short.tif", 3, PV_EDECODE, "Premature");
    free(buf);
    free(px);
}

Test(img_tiff, bomb_refused_from_the_header)
{
    uint8_t *buf = NULL, *e;
    size_t n = 0;
    char err[256] = "";
    img im = {0};
    uint8_t *px = imgt_pattern(16, 16, 1, 15);

    imgt_write_png(dir, "g.png", 16, 16, 1, px);
    run("convert g.png -depth 8 -compress lzw g.tif");
    cr_assert_eq(gen_read_bytes(tpath("g.tif"), &buf, &n), 0);
    cr_assert_lt(n, 1024);
    for (uint32_t tag = 256; tag <= 257; tag++) { /* ImageWidth, ImageLength */
        cr_assert_not_null(e = entry(buf, n, tag));
        if (rd16(e + 2) == 3)
            wr16(e + 8, 60000);
        else
            wr32(e + 8, 60000);
    }
    cr_assert_eq(gen_write_bytes(tpath("bomb.tif"), buf, n), 0);
    imgt_decode_fails(dir, "bomb.tif", 3, PV_ETOOBIG, "60000x60000");
    /* reduced or grey, the same */
    cr_assert_eq(img_decode(buf, n, 1, 32, 32, &im, err, sizeof err), PV_ETOOBIG, "%s", err);
    free(buf);
    free(px);
}

Test(img_tiff, strip_offsets_outside_the_file)
{
    uint8_t *buf = NULL, *e;
    size_t n = 0;
    uint8_t *px = imgt_pattern(40, 40, 3, 16);

    imgt_write_png(dir, "a.png", 40, 40, 3, px);
    run("convert a.png -depth 8 -compress lzw a.tif && tiffcp -c lzw -r 10 a.tif s.tif");
    cr_assert_eq(gen_read_bytes(tpath("s.tif"), &buf, &n), 0);
    cr_assert_not_null(e = entry(buf, n, 273));
    cr_assert_eq(rd32(e + 4), 4, "4 strips");
    uint8_t *v = values(buf, e);
    if (rd16(e + 2) == 3)
        wr16(v + 2, 0xfff0);
    else
        wr32(v + 4, 0x7ffffff0u); /* the second strip, far past the end */
    cr_assert_eq(gen_write_bytes(tpath("far.tif"), buf, n), 0);
    imgt_decode_fails(dir, "far.tif", 3, PV_EDECODE, "strip");
    /* the first strip at the very end of the file */
    if (rd16(e + 2) == 3)
        wr16(v, (uint32_t)n - 2);
    else
        wr32(v, (uint32_t)n - 2);
    cr_assert_eq(gen_write_bytes(tpath("end.tif"), buf, n), 0);
    imgt_decode_fails(dir, "end.tif", 3, PV_EDECODE, "strip");
    free(buf);
    free(px);
}

Test(img_tiff, unsupported_and_bad_fields)
{
    uint8_t *px = imgt_pattern(20, 20, 3, 17);

    imgt_write_png(dir, "a.png", 20, 20, 3, px);
    run("convert a.png -depth 8 -compress none a.tif");
    run("cp a.tif p.tif && tiffset -s 262 10 p.tif");
    imgt_decode_fails(dir, "p.tif", 3, PV_EDECODE, "unsupported TIFF");
    imgt_decode_fails(dir, "p.tif", 3, PV_EDECODE, "PhotometricInterpretation");
    run("convert a.png -define quantum:format=floating-point -depth 32 f.tif");
    cr_assert_eq(layout("f.tif").bps, 32);
    imgt_decode_fails(dir, "f.tif", 3, PV_EDECODE, "unsupported TIFF");
    /* a zero width: the header's size is checked first */
    run("cp a.tif z.tif && tiffset -s 256 0 z.tif");
    imgt_decode_fails(dir, "z.tif", 3, PV_EDECODE, NULL);
    free(px);
}

Test(img_tiff, libtiff_prints_nothing)
{
    /* libtiff's default handlers write to stderr; the decoder's own do not */
    uint8_t *px = imgt_pattern(30, 30, 3, 18), *buf = NULL;
    size_t n = 0;
    char err[256];
    img im = {0};
    int saved, fd;
    off_t end;

    imgt_write_png(dir, "a.png", 30, 30, 3, px);
    run("convert a.png -depth 8 -compress lzw a.tif && tiffcp -r 5 a.tif s.tif");
    move_ifd_first("s.tif");
    cr_assert_eq(gen_read_bytes(tpath("s.tif"), &buf, &n), 0);
    fflush(stderr);
    saved = dup(2);
    fd = open(tpath("stderr.txt"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    for (size_t cut = 9; cut <= n; cut += 97) {
        if (cut + 97 > n)
            buf[rd32(buf + 4) + 3] ^= 0x55, cut = n; /* a damaged directory entry */
        if (img_decode(buf, cut, 3, 0, 0, &im, err, sizeof err) == PV_OK)
            img_free(&im);
    }
    fflush(stderr);
    end = lseek(fd, 0, SEEK_END);
    dup2(saved, 2);
    close(saved);
    close(fd);
    cr_assert_eq(end, 0, "libtiff wrote %lld bytes to stderr", (long long)end);
    free(buf);
    free(px);
}
