/*
 * test_img_bmp.c - the BMP reader (engine/image/img_bmp.c) through
 * img_decode: files made by ImageMagick's convert from PNGs of known
 * pixels (BMP3: 40-byte headers at 24 and 32 bits, 8- and 4-bit palettes,
 * 1 bit, RLE8; BMP2: OS/2 1.x; the default V5 header with 16-bit masks
 * and alpha), compared exactly; and files laid down here byte by byte
 * (bmp_make) for what convert does not write: top-down rows, RLE4 with
 * deltas, BI_ALPHABITFIELDS, an index beyond the palette, and damaged or
 * unsupported headers, truncated data and bombs.
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

TestSuite(img_bmp, .init = setup, .fini = teardown);

static uint32_t rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t rd32(const uint8_t *p)
{
    return rd16(p) | rd16(p + 2) << 16;
}
static void wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, v), wr16(p + 2, v >> 16);
}

/* The header fields of a file convert wrote, as the test expects them. */
static void expect_header(const uint8_t *b, size_t n, uint32_t hs, uint32_t bpp, uint32_t comp)
{
    uint32_t fhs, fbpp, fcomp;
    cr_assert(n > 54 && b[0] == 'B' && b[1] == 'M');
    fhs = rd32(b + 14);
    fbpp = fhs == 12 ? rd16(b + 24) : rd16(b + 28);
    fcomp = fhs == 12 ? 0 : rd32(b + 30);
    cr_assert(fhs == hs && fbpp == bpp && fcomp == comp,
              "convert wrote header %u, %u bits, compression %u; the test wants %u, %u, %u", fhs,
              fbpp, fcomp, hs, bpp, comp);
}

/* src (w x h RGB) to a PNG, through convert ARGS to FMT:out.bmp (FMT
 * BMP3, BMP2 or BMP); its bytes. */
static uint8_t *made_bmp(uint32_t w, uint32_t h, const uint8_t *src, const char *args,
                         const char *fmt, size_t *n)
{
    char out[64];
    imgt_write_png(dir, "src.png", w, h, 3, src);
    snprintf(out, sizeof out, "%s:out.bmp", fmt);
    imgt_tool(dir, "convert", "imagemagick", "convert src.png %s %s", args, out);
    return imgt_read(dir, "out.bmp", n);
}

/* Decode a convert-made file and compare it with its source. */
static void roundtrip(uint32_t w, uint32_t h, const uint8_t *src, const char *args, const char *fmt,
                      uint32_t hs, uint32_t bpp, uint32_t comp)
{
    size_t n;
    uint8_t *b = made_bmp(w, h, src, args, fmt, &n);
    img im = {0};
    expect_header(b, n, hs, bpp, comp);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w, h, src);
    img_free(&im);
    free(b);
}

/* ---- files laid down byte by byte ---------------------------------------- */

typedef struct bmp_spec {
    uint32_t hs;
    int32_t w, h;
    uint32_t bpp, comp, ncolors;
    const uint8_t *pal; /* npal RGB triples */
    uint32_t npal;
    const uint32_t *masks; /* after a 40-byte header, or at 54 in larger ones */
    uint32_t nmasks;
    const uint8_t *data;
    size_t ndata;
} bmp_spec;

static uint8_t *bmp_make(const bmp_spec *s, size_t *n)
{
    size_t esize = s->hs == 12 ? 3 : 4, extra = s->hs == 40 ? 4 * (size_t)s->nmasks : 0;
    size_t pal_at = 14 + s->hs + extra, off = pal_at + s->npal * esize;
    uint8_t *b = calloc(1, off + s->ndata);

    cr_assert_not_null(b);
    b[0] = 'B';
    b[1] = 'M';
    wr32(b + 2, (uint32_t)(off + s->ndata));
    wr32(b + 10, (uint32_t)off);
    wr32(b + 14, s->hs);
    if (s->hs == 12) {
        wr16(b + 18, (uint32_t)s->w);
        wr16(b + 20, (uint32_t)s->h);
        wr16(b + 22, 1);
        wr16(b + 24, s->bpp);
    } else {
        wr32(b + 18, (uint32_t)s->w);
        wr32(b + 22, (uint32_t)s->h);
        wr16(b + 26, 1);
        wr16(b + 28, s->bpp);
        wr32(b + 30, s->comp);
        wr32(b + 34, (uint32_t)s->ndata);
        wr32(b + 46, s->ncolors);
        for (uint32_t i = 0; i < s->nmasks; i++)
            wr32(b + 54 + 4 * i, s->masks[i]);
    }
    for (uint32_t i = 0; i < s->npal; i++) {
        uint8_t *e = b + pal_at + i * esize;
        e[0] = s->pal[3 * i + 2];
        e[1] = s->pal[3 * i + 1];
        e[2] = s->pal[3 * i];
    }
    if (s->ndata)
        memcpy(b + off, s->data, s->ndata);
    *n = off + s->ndata;
    return b;
}

/* ---- convert's files ------------------------------------------------------ */

Test(img_bmp, bmp3_24_and_32_bits)
{
    const uint32_t w = 13, h = 7; /* 39-byte rows: padded */
    uint8_t *src = malloc(w * h * 3);
    gen_pattern(w, h, 3, 5, src);
    roundtrip(w, h, src, "-type TrueColor", "BMP3", 40, 24, 0);
    /* BGRX, no masks: the fourth byte is not alpha */
    roundtrip(w, h, src, "-alpha on -define bmp3:alpha=true", "BMP3", 40, 32, 0);
    free(src);
}

Test(img_bmp, bmp3_palettes_8_4_and_1_bits)
{
    const uint32_t w = 37, h = 11;
    uint8_t *p200 = imgt_palette_picture(w, h, 200), *p16 = imgt_palette_picture(w, h, 16);
    uint8_t *p2 = imgt_palette_picture(w, h, 2);
    roundtrip(w, h, p200, "-type Palette -compress None", "BMP3", 40, 8, 0);
    roundtrip(w, h, p16, "-type Palette -compress None", "BMP3", 40, 4, 0);
    roundtrip(w, h, p2, "-monochrome", "BMP3", 40, 1, 0);
    free(p200);
    free(p16);
    free(p2);
}

Test(img_bmp, os2_bmp2)
{
    const uint32_t w = 21, h = 9;
    uint8_t *rgb = malloc(w * h * 3), *p16 = imgt_palette_picture(w, h, 16);
    gen_pattern(w, h, 3, 8, rgb);
    roundtrip(w, h, rgb, "-type TrueColor", "BMP2", 12, 24, 0);
    roundtrip(w, h, p16, "-type Palette -compress None", "BMP2", 12, 4, 0);
    free(rgb);
    free(p16);
}

Test(img_bmp, v5_header_24_bits_and_grey_output)
{
    const uint32_t w = 17, h = 10;
    uint8_t *src = malloc(w * h * 3), *b;
    size_t n;
    img im = {0};

    gen_pattern(w, h, 3, 9, src);
    roundtrip(w, h, src, "-type TrueColor", "BMP", 124, 24, 0);
    b = imgt_read(dir, "out.bmp", &n);
    imgt_decode_mem_ok(b, n, 1, &im);
    for (size_t i = 0; i < w * h; i++)
        cr_assert_eq(im.px[i], imgt_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]),
                     "pixel %zu: %u, want %u", i, im.px[i],
                     imgt_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]));
    img_free(&im);
    free(b);
    free(src);
}

/* V5 header, BI_BITFIELDS with an alpha mask: composited over white. */
Test(img_bmp, v5_alpha_over_white)
{
    const uint32_t w = 11, h = 6;
    uint8_t *rgba = malloc(w * h * 4), *want = malloc(w * h * 3), *b;
    size_t n;
    img im = {0};

    gen_pattern(w, h, 4, 12, rgba);
    for (size_t i = 0; i < w * h; i++) {
        rgba[4 * i + 3] = (uint8_t)(i * 37); /* every kind of alpha, 0 and 255 too */
        for (int c = 0; c < 3; c++)
            want[3 * i + c] = imgt_over_white(rgba[4 * i + c], rgba[4 * i + 3]);
    }
    imgt_write_png(dir, "a.png", w, h, 4, rgba);
    imgt_tool(dir, "convert", "imagemagick", "convert a.png a.bmp");
    b = imgt_read(dir, "a.bmp", &n);
    expect_header(b, n, 124, 32, 3);
    cr_assert_eq(rd32(b + 66), 0xff000000u, "no alpha mask");
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w, h, want);
    img_free(&im);
    free(b);
    free(rgba);
    free(want);
}

/* Channel values a field of `bits` bits holds exactly (v -> v * m / 255
 * truncated or rounded, back as v * 255 / m rounded, gives v). */
static uint32_t exact_values(uint32_t bits, uint8_t *vals)
{
    uint32_t m = (1u << bits) - 1, k, nv = 0;
    for (k = 0; k <= m; k++) {
        uint32_t c = (k * 255 + m / 2) / m;
        if (c * m / 255 == k)
            vals[nv++] = (uint8_t)c;
    }
    return nv;
}

Test(img_bmp, sixteen_bits_565_and_555)
{
    const uint32_t w = 33, h = 5; /* 66-byte rows: padded */
    uint8_t v5[32], v6[64], *src = malloc(w * h * 3);
    uint32_t n5 = exact_values(5, v5), n6 = exact_values(6, v6);

    cr_assert(n5 > 16 && n6 > 32);
    for (uint32_t i = 0; i < w * h; i++) {
        src[3 * i] = v5[(i * 7) % n5];
        src[3 * i + 1] = v5[(i * 3 + 1) % n5];
        src[3 * i + 2] = v5[(i * 11 + 2) % n5];
    }
    roundtrip(w, h, src, "-type TrueColor -define bmp:subtype=RGB555", "BMP", 124, 16, 3);
    for (uint32_t i = 0; i < w * h; i++)
        src[3 * i + 1] = v6[(i * 5) % n6];
    roundtrip(w, h, src, "-type TrueColor -define bmp:subtype=RGB565", "BMP", 124, 16, 3);
    free(src);
}

Test(img_bmp, rle8)
{
    const uint32_t w = 45, h = 14;
    uint8_t *src = imgt_palette_picture(w, h, 200), *b;
    size_t n;
    img im = {0};

    roundtrip(w, h, src, "-type Palette -compress RLE", "BMP3", 40, 8, 1);
    b = imgt_read(dir, "out.bmp", &n);
    imgt_decode_mem_ok(b, n, 3, &im);
    img_free(&im);
    /* cut in the middle of its data, and before its end-of-bitmap marker */
    imgt_decode_mem_fails(b, rd32(b + 10) + (n - rd32(b + 10)) / 2, PV_EDECODE,
                          "truncated: the RLE data");
    imgt_decode_mem_fails(b, n - 4, PV_EDECODE, "truncated: the RLE data ends in row 14 of 14");
    free(src);
    free(b);
}

/* ---- top-down, by hand ----------------------------------------------------- */

/* A bottom-up file's rows reversed and its height negated: same picture. */
static void flip_to_top_down(uint8_t *b, size_t n, uint32_t stride)
{
    uint32_t off = rd32(b + 10), h = rd32(b + 22), y;
    uint8_t *tmp = malloc(stride);
    cr_assert((size_t)off + (size_t)stride * h <= n);
    for (y = 0; y < h / 2; y++) {
        uint8_t *a = b + off + (size_t)y * stride, *z = b + off + (size_t)(h - 1 - y) * stride;
        memcpy(tmp, a, stride);
        memcpy(a, z, stride);
        memcpy(z, tmp, stride);
    }
    wr32(b + 22, (uint32_t) - (int32_t)h);
    free(tmp);
}

Test(img_bmp, top_down)
{
    const uint32_t w = 13, h = 7;
    uint8_t *src = malloc(w * h * 3), *pal = imgt_palette_picture(w, h, 200), *b;
    size_t n;
    img im = {0};

    gen_pattern(w, h, 3, 21, src);
    b = made_bmp(w, h, src, "-type TrueColor", "BMP3", &n);
    expect_header(b, n, 40, 24, 0);
    flip_to_top_down(b, n, 40);
    cr_assert_eq((int32_t)rd32(b + 22), -7);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w, h, src);
    img_free(&im);
    free(b);

    b = made_bmp(w, h, pal, "-type Palette -compress None", "BMP3", &n);
    expect_header(b, n, 40, 8, 0);
    flip_to_top_down(b, n, 16);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, w, h, pal);
    img_free(&im);
    free(b);
    free(src);
    free(pal);
}

/* ---- what convert does not write ---------------------------------------- */

static const uint8_t pal4[4 * 3] = {10, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200};

/* RLE4, top-down: runs alternating two indices, an odd literal run, an
 * early end of line, a delta; skipped pixels are white. */
Test(img_bmp, rle4_runs_literals_and_deltas)
{
    static const uint8_t data[] = {
        5, 0x12,                   /* row 0: 1 2 1 2 1 */
        0, 3,    0x30, 0x10, 0, 0, /* 3 literal: 3 0 1 (padded), then EOL */
        4, 0x33,                   /* row 1: 3 3 3 3, then a delta of (2, 1) */
        0, 2,    2,    1,          /* row 2 from x 6 */
        9, 0x11,                   /* 1 1: clipped at the row's end */
        0, 1,                      /* end of bitmap: row 3 left out */
    };
    uint8_t want[8 * 4 * 3];
    static const int idx[4][8] = {{1, 2, 1, 2, 1, 3, 0, 1},
                                  {3, 3, 3, 3, -1, -1, -1, -1},
                                  {-1, -1, -1, -1, -1, -1, 1, 1},
                                  {-1, -1, -1, -1, -1, -1, -1, -1}};
    bmp_spec s = {40, 8, -4, 4, 2, 4, pal4, 4, NULL, 0, data, sizeof data};
    size_t n;
    uint8_t *b = bmp_make(&s, &n);
    img im = {0};

    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++) {
            uint8_t *p = want + (y * 8 + x) * 3;
            if (idx[y][x] < 0)
                memset(p, 255, 3);
            else
                memcpy(p, pal4 + 3 * idx[y][x], 3);
        }
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, 8, 4, want);
    img_free(&im);
    imgt_decode_mem_ok(b, n, 1, &im);
    for (size_t i = 0; i < 8 * 4; i++)
        cr_assert_eq(im.px[i], imgt_luma(want[3 * i], want[3 * i + 1], want[3 * i + 2]),
                     "pixel %zu", i);
    img_free(&im);
    free(b);
}

/* Indices beyond the palette read as black, not refused. */
Test(img_bmp, index_beyond_the_palette_is_black)
{
    static const uint8_t rows[2 * 4] = {0, 1, 7, 255, 1, 0, 2, 3}; /* bottom row first */
    static const uint8_t want[2 * 4 * 3] = {
        200, 0, 0, 10, 20, 30, 0, 0, 0, 0, 0, 0, 10, 20, 30, 200, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    bmp_spec s = {40, 4, 2, 8, 0, 2, pal4, 2, NULL, 0, rows, sizeof rows};
    size_t n;
    uint8_t *b = bmp_make(&s, &n);
    img im = {0};

    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, 4, 2, want);
    img_free(&im);
    free(b);
}

/* 16-bit BI_RGB is 5-5-5; 32-bit BI_RGB ignores the fourth byte. */
Test(img_bmp, default_masks)
{
    /* 2x1: pure red (0x7c00), then r=1 g=16 b=31 */
    static const uint8_t d16[4] = {0x00, 0x7c, 0x1f | (16 << 5 & 0xff), (1 << 2) | (16 >> 3)};
    static const uint8_t want16[6] = {255, 0, 0, 8, 132, 255};
    static const uint8_t d32[8] = {1, 2, 3, 0, 4, 5, 6, 77}; /* BGRX */
    static const uint8_t want32[6] = {3, 2, 1, 6, 5, 4};
    bmp_spec s16 = {40, 2, 1, 16, 0, 0, NULL, 0, NULL, 0, d16, sizeof d16};
    bmp_spec s32 = {124, 2, 1, 32, 0, 0, NULL, 0, NULL, 0, d32, sizeof d32};
    uint32_t amask[4] = {0xff0000, 0xff00, 0xff, 0xff000000u};
    size_t n;
    uint8_t *b = bmp_make(&s16, &n);
    img im = {0};

    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, 2, 1, want16);
    img_free(&im);
    free(b);
    /* a V5 header's alpha mask counts only with bit fields */
    s32.masks = amask;
    s32.nmasks = 4;
    b = bmp_make(&s32, &n);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, 2, 1, want32);
    img_free(&im);
    free(b);
}

/* BI_ALPHABITFIELDS after a 40-byte header; all-zero alpha is opaque. */
Test(img_bmp, alpha_bitfields)
{
    static const uint32_t masks[4] = {0x0000ff00u, 0x00ff0000u, 0xff000000u, 0x000000ffu};
    uint8_t d[2 * 4] = {128, 10, 20, 30, 0, 40, 50, 60}; /* A R G B, little-endian */
    uint8_t want[6] = {imgt_over_white(10, 128), imgt_over_white(20, 128),
                       imgt_over_white(30, 128), 255, 255, 255};
    uint8_t opaque[6] = {10, 20, 30, 40, 50, 60};
    bmp_spec s = {40, 2, 1, 32, 6, 0, NULL, 0, masks, 4, d, sizeof d};
    size_t n;
    uint8_t *b = bmp_make(&s, &n);
    img im = {0};

    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, 2, 1, want);
    img_free(&im);
    free(b);
    d[0] = 0;
    b = bmp_make(&s, &n);
    imgt_decode_mem_ok(b, n, 3, &im);
    imgt_expect_rgb(&im, 2, 1, opaque);
    img_free(&im);
    free(b);
}

/* ---- damaged, hostile and unsupported files ------------------------------ */

Test(img_bmp, truncated)
{
    const uint32_t w = 13, h = 7;
    uint8_t *src = malloc(w * h * 3), *b, *p16 = imgt_palette_picture(w, h, 16);
    size_t n;

    gen_pattern(w, h, 3, 4, src);
    b = made_bmp(w, h, src, "-type TrueColor", "BMP3", &n);
    imgt_decode_mem_fails(b, n - 1, PV_EDECODE,
                          "truncated: the pixel data needs 280 bytes at offset 54");
    imgt_decode_mem_fails(b, n / 2, PV_EDECODE, "truncated: the pixel data");
    imgt_decode_mem_fails(b, 30, PV_EDECODE, "truncated");
    imgt_decode_mem_fails(b, 40, PV_EDECODE, "truncated: the file ends in the 40-byte info header");
    free(b);
    b = made_bmp(w, h, p16, "-type Palette -compress None", "BMP3", &n);
    expect_header(b, n, 40, 4, 0);
    imgt_decode_mem_fails(b, 60, PV_EDECODE, "beyond the end of the file"); /* in the palette */
    free(b);
    free(p16);
    free(src);
}

Test(img_bmp, bombs_refused)
{
    const uint32_t w = 13, h = 7;
    uint8_t *src = malloc(w * h * 3), *b, *pal = imgt_palette_picture(w, h, 200);
    size_t n;
    char err[256];
    img im = {0};

    gen_pattern(w, h, 3, 4, src);
    b = made_bmp(w, h, src, "-type TrueColor", "BMP3", &n);
    wr32(b + 18, 60000);
    wr32(b + 22, 60000);
    imgt_decode_mem_fails(b, n, PV_ETOOBIG, "60000x60000 pixels, more than the limit");
    /* within the pixel limit, but far more rows than the file holds */
    wr32(b + 18, 8000);
    wr32(b + 22, 8000);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "truncated: the pixel data needs 192000000 bytes");
    free(b);
    b = made_bmp(w, h, pal, "-type Palette -compress RLE", "BMP3", &n);
    expect_header(b, n, 40, 8, 1);
    wr32(b + 18, 60000);
    wr32(b + 22, 60000);
    imgt_decode_mem_fails(b, n, PV_ETOOBIG, "60000x60000");
    /* RLE of 3000x2000 in a few bytes: decoded within the header's size,
     * reduced for a small minimum */
    wr32(b + 18, 3000);
    wr32(b + 22, 2000);
    cr_assert_eq(img_decode(b, n, 3, 32, 32, &im, err, sizeof err), PV_OK, "%s", err);
    cr_assert(im.orig_w == 3000 && im.orig_h == 2000 && im.w < 3000);
    img_free(&im);
    free(b);
    free(pal);
    free(src);
}

Test(img_bmp, bad_offsets_and_sizes)
{
    const uint32_t w = 13, h = 7;
    uint8_t *src = malloc(w * h * 3), *b;
    size_t n;

    gen_pattern(w, h, 3, 4, src);
    b = made_bmp(w, h, src, "-type TrueColor", "BMP3", &n);
    wr32(b + 10, (uint32_t)n + 100);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "beyond the end of the file");
    wr32(b + 10, 0xffffffffu);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "beyond the end of the file");
    wr32(b + 10, 20);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "inside the headers");
    wr32(b + 10, 54);
    wr32(b + 22, 0x80000000u); /* INT32_MIN */
    imgt_decode_mem_fails(b, n, PV_EDECODE, "height -2147483648");
    wr32(b + 22, 0);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "zero side");
    wr32(b + 22, 7);
    wr32(b + 18, (uint32_t)-13);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "width -13");
    free(b);
    free(src);
}

Test(img_bmp, unsupported_variants_refused)
{
    static const uint8_t data[64] = {0};
    static const uint32_t masks[3] = {0xf800, 0x07e0, 0x001f};
    bmp_spec s = {40, 4, 4, 24, 0, 0, NULL, 0, NULL, 0, data, sizeof data};
    size_t n;
    uint8_t *b;

    s.comp = 4; /* BI_JPEG */
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "JPEG inside a BMP");
    free(b);
    s.comp = 5; /* BI_PNG */
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "PNG inside a BMP");
    free(b);
    s.comp = 11; /* BI_CMYK */
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "compression 11 is not supported");
    free(b);
    s.comp = 1; /* RLE8 at 24 bits */
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "24 bits a pixel with BMP compression 1");
    free(b);
    s.comp = 0;
    s.bpp = 2;
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "2 bits a pixel");
    free(b);
    s.bpp = 24;
    s.hs = 64; /* OS/2 2.x */
    b = bmp_make(&s, &n);
    cr_assert_eq(img_sniff(b, n), IMG_BMP);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "OS/2 2.x");
    free(b);
    s.hs = 16;
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "OS/2 2.x");
    free(b);
    /* BI_BITFIELDS whose masks the file does not hold */
    s.hs = 40;
    s.bpp = 16;
    s.comp = 3;
    s.masks = masks;
    s.nmasks = 3;
    s.ndata = 0;
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, 60, PV_EDECODE, "bit masks");
    imgt_decode_mem_fails(b, n, PV_EDECODE, "truncated: the pixel data needs 32 bytes");
    free(b);
    /* a palette image with no room for a palette */
    s.bpp = 8;
    s.comp = 0;
    s.nmasks = 0;
    s.ndata = sizeof data;
    b = bmp_make(&s, &n);
    imgt_decode_mem_fails(b, n, PV_EDECODE, "without a palette");
    free(b);
}
