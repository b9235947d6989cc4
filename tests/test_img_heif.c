/*
 * test_img_heif.c - the HEIF decoder (engine/image/img_heif.c): HEIC and
 * AVIF made at test time by heif-enc (Debian package libheif-examples)
 * from PNGs and JPEGs written by tests/gen.c, decoded through img_decode
 * and compared with the source pixels; damaged files (cut, an 'ispe' or a
 * grid claiming a huge picture, no primary image, ftyp alone, no decoder
 * for the codec); orientation ('irot', and a JPEG's EXIF orientation that
 * heif-enc copies).
 *
 * What Debian 12's tools do (libheif 1.15.1, x265 3.5, libaom 3.6):
 * - heif-enc -A (AVIF) works for 8-bit input at every size tried here; it
 *   aborts in libaom (assertion on subsampling in write_color_config) for
 *   a 16-bit PNG, which it encodes at 10 bits, with chroma 4:2:0 or 4:4:4;
 *   -p chroma=422 or -b 12 work, and -b 8 corrupts the heap. So 10-bit is
 *   tested with HEIC, where x265 works.
 * - heif-enc -L -p chroma=444 --matrix_coefficients=0 comes back within 1
 *   of the source, not exact (heic_lossless says why).
 * - heif-enc reads a JPEG's EXIF orientation but, as built by Debian,
 *   writes no 'irot'/'imir' (it hands orientation 1 to the encoder) and
 *   keeps the EXIF item with its tag: such a file is shown as stored.
 * - heif-enc wraps a picture whose size is not a multiple of the coded
 *   block size in a one-tile grid (the macOS workaround), so a file has
 *   two 'ispe' boxes (the tile's and the grid's).
 *
 * Files stay small (<= 256x256, one 1000x800 for the reduced decode):
 * encoding is the slow part.
 */
#include <criterion/criterion.h>

#include <libheif/heif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

TestSuite(img_heif, .init = setup, .fini = teardown, .timeout = 60);

static const char *tpath(const char *name)
{
    return imgt_path(dir, name);
}

/* heif-enc ARGS... -o dir/out: fails the test (naming the package) when the
 * tool is missing or fails. */
#define heif_enc(out, ...) heif_enc_run(out, (const char *[]){__VA_ARGS__, NULL})
static void heif_enc_run(const char *out, const char **args)
{
    char line[2048] = "heif-enc";
    size_t k = strlen(line);

    for (; *args != NULL; args++) {
        int m = snprintf(line + k, sizeof line - k, " %s", *args);
        cr_assert(m >= 0 && (size_t)m < sizeof line - k, "heif-enc: arguments too long");
        k += (size_t)m;
    }
    imgt_tool(dir, "heif-enc", "libheif-examples", "%s -o %s", line, out);
}

static int decode_buf(const uint8_t *b, size_t n, uint32_t ch, uint32_t mw, uint32_t mh, img *im,
                      char *err, size_t errlen)
{
    memset(im, 0, sizeof *im);
    err[0] = '\0';
    return img_decode(b, n, ch, mw, mh, im, err, errlen);
}

static void decode_ok(const char *name, uint32_t ch, uint32_t mw, uint32_t mh, img *im)
{
    char err[256];
    size_t n;
    uint8_t *b = imgt_read(dir, name, &n);
    cr_assert_eq(img_sniff(b, n), IMG_HEIF, "%s is not sniffed as HEIF", name);
    int rc = decode_buf(b, n, ch, mw, mh, im, err, sizeof err);
    free(b);
    cr_assert_eq(rc, PV_OK, "%s: %d %s", name, rc, err);
    cr_assert_eq(im->channels, ch);
    cr_assert_not_null(im->px);
}

/* The decode of b must fail with rc, leave *out alone, and say want. */
static void fails_buf(const char *what, const uint8_t *b, size_t n, int rc, const char *want)
{
    char err[256] = "";
    img im;
    memset(&im, 0x5a, sizeof im);
    int got = img_decode(b, n, 3, 0, 0, &im, err, sizeof err);
    cr_assert_eq(got, rc, "%s: got %d (%s), want %d", what, got, err, rc);
    cr_assert_eq(im.w, 0x5a5a5a5au, "%s: out written on failure", what);
    cr_assert_neq(err[0], '\0', "%s: no message", what);
    cr_assert(want == NULL || strstr(err, want) != NULL, "%s: message \"%s\", want \"%s\"", what,
              err, want);
}

/* A w x h RGB picture written as dir/name (PNG); its pixels returned. */
static uint8_t *png_picture(const char *name, uint32_t w, uint32_t h, uint32_t seed)
{
    uint8_t *px = imgt_pattern(w, h, 3, seed);
    imgt_write_png(dir, name, w, h, 3, px);
    return px;
}

static void expect_size(const img *im, uint32_t w, uint32_t h)
{
    imgt_expect_size(im, w, h, w, h);
}

/* ---- pictures ------------------------------------------------------------- */

Test(img_heif, heic_lossy)
{
    uint8_t *src = png_picture("a.png", 128, 96, 7);
    img im;
    heif_enc("a.heic", "-q", "90", tpath("a.png"));
    decode_ok("a.heic", 3, 0, 0, &im);
    expect_size(&im, 128, 96);
    double d = imgt_mean_diff(im.px, src, 128 * 96 * 3);
    cr_assert_lt(d, 4.0, "mean abs difference %.2f", d);
    cr_assert_gt(d, 0.0, "a lossy HEIC came back exact: not the file we made?");
    img_free(&im);
    free(src);
}

Test(img_heif, heic_odd_size)
{
    uint8_t *src = png_picture("a.png", 63, 47, 3);
    img im;
    heif_enc("a.heic", "-q", "90", tpath("a.png"));
    decode_ok("a.heic", 3, 0, 0, &im);
    expect_size(&im, 63, 47);
    double d = imgt_mean_diff(im.px, src, 63 * 47 * 3); /* 5.3 here: small and busy */
    cr_assert_lt(d, 7.0, "mean abs difference %.2f", d);
    img_free(&im);
    free(src);
}

/* heif-enc -L with 4:4:4 and the identity matrix: x265 codes the planes
 * losslessly, but the file gets no 'colr' box and the round trip through
 * libheif 1.15's RGB <-> YCbCr (limited range) comes back within 1, not
 * bit-exact (656 of 3072 green samples differ by 1 here). */
Test(img_heif, heic_lossless)
{
    uint8_t *src = png_picture("a.png", 64, 48, 11);
    img im;
    int mx = 0;
    heif_enc("a.heic", "-L", "-p", "chroma=444", "--matrix_coefficients=0", tpath("a.png"));
    decode_ok("a.heic", 3, 0, 0, &im);
    expect_size(&im, 64, 48);
    for (size_t i = 0; i < 64 * 48 * 3; i++)
        if (abs((int)im.px[i] - (int)src[i]) > mx)
            mx = abs((int)im.px[i] - (int)src[i]);
    double d = imgt_mean_diff(im.px, src, 64 * 48 * 3);
    cr_assert(mx <= 1 && d < 0.6, "lossless HEIC: max difference %d, mean %.3f", mx, d);
    img_free(&im);
    free(src);
}

Test(img_heif, heic_alpha_over_white)
{
    const uint32_t w = 128, h = 96;
    uint8_t *rgba = malloc(w * h * 4), *want = malloc(w * h * 3);
    img im;
    gen_pattern(w, h, 4, 5, rgba);
    for (uint32_t i = 0; i < w * h; i++) /* alpha: a ramp from 0 to 255 */
        rgba[4 * i + 3] = (uint8_t)(i % w * 255 / (w - 1));
    cr_assert_eq(gen_write_png(tpath("a.png"), w, h, GEN_PNG_RGBA, 8, rgba, NULL), 0);
    for (uint32_t i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            want[3 * i + c] = (uint8_t)img_over_white(rgba[4 * i + c], rgba[4 * i + 3]);
    heif_enc("a.heic", "-q", "90", tpath("a.png"));
    decode_ok("a.heic", 3, 0, 0, &im);
    expect_size(&im, w, h);
    double d = imgt_mean_diff(im.px, want, w * h * 3);
    cr_assert_lt(d, 4.0, "mean abs difference %.2f from the source over white", d);
    /* the transparent left column is white, the opaque right one is not */
    cr_assert_geq(im.px[(h / 2 * w) * 3], 245, "left edge %u", im.px[(h / 2 * w) * 3]);
    img_free(&im);
    free(rgba);
    free(want);
}

Test(img_heif, avif_lossy_and_alpha)
{
    uint8_t *src = png_picture("a.png", 64, 48, 7);
    img im;
    heif_enc("a.avif", "-A", "-q", "90", tpath("a.png"));
    decode_ok("a.avif", 3, 0, 0, &im);
    expect_size(&im, 64, 48);
    double d = imgt_mean_diff(im.px, src, 64 * 48 * 3);
    cr_assert_lt(d, 5.0, "mean abs difference %.2f", d);
    img_free(&im);

    /* with an alpha plane, fully opaque: the same picture */
    uint8_t *rgba = malloc(64 * 48 * 4);
    for (uint32_t i = 0; i < 64 * 48; i++) {
        memcpy(rgba + 4 * i, src + 3 * i, 3);
        rgba[4 * i + 3] = 255;
    }
    cr_assert_eq(gen_write_png(tpath("b.png"), 64, 48, GEN_PNG_RGBA, 8, rgba, NULL), 0);
    heif_enc("b.avif", "-A", "-q", "90", tpath("b.png"));
    decode_ok("b.avif", 3, 0, 0, &im);
    d = imgt_mean_diff(im.px, src, 64 * 48 * 3);
    cr_assert_lt(d, 5.0, "mean abs difference %.2f (alpha)", d);
    img_free(&im);
    free(rgba);
    free(src);
}

Test(img_heif, grey_output)
{
    uint8_t *src = png_picture("a.png", 96, 64, 21), *luma = malloc(96 * 64);
    img im;
    for (size_t i = 0; i < 96 * 64; i++)
        luma[i] = img_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]);
    heif_enc("a.heic", "-q", "90", tpath("a.png"));
    decode_ok("a.heic", 1, 0, 0, &im);
    expect_size(&im, 96, 64);
    double d = imgt_mean_diff(im.px, luma, 96 * 64);
    cr_assert_lt(d, 3.0, "mean abs difference %.2f from the luma", d);
    img_free(&im);
    free(src);
    free(luma);
}

Test(img_heif, ten_bit_heic_to_8_bits)
{
    const uint32_t w = 128, h = 96;
    uint8_t *px = malloc(w * h * 3);
    uint16_t *p16 = malloc(w * h * 3 * sizeof *p16);
    gen_pattern(w, h, 3, 3, px);
    for (uint32_t i = 0; i < w * h * 3; i++)
        p16[i] = (uint16_t)(px[i] * 257);
    cr_assert_eq(gen_write_png(tpath("a.png"), w, h, GEN_PNG_RGB, 16, p16, NULL), 0);
    heif_enc("a.heic", "-q", "90", tpath("a.png")); /* 16-bit PNG: 10-bit HEIC */

    /* it is 10-bit */
    size_t n;
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    struct heif_context *ctx = heif_context_alloc();
    struct heif_image_handle *hd = NULL;
    cr_assert_eq(heif_context_read_from_memory_without_copy(ctx, b, n, NULL).code, 0);
    cr_assert_eq(heif_context_get_primary_image_handle(ctx, &hd).code, 0);
    cr_assert_eq(heif_image_handle_get_luma_bits_per_pixel(hd), 10);
    heif_image_handle_release(hd);
    heif_context_free(ctx);
    free(b);

    img im;
    decode_ok("a.heic", 3, 0, 0, &im);
    expect_size(&im, w, h);
    double d = imgt_mean_diff(im.px, px, w * h * 3);
    cr_assert_lt(d, 4.0, "mean abs difference %.2f", d);
    img_free(&im);
    free(px);
    free(p16);
}

Test(img_heif, reduced_decode)
{
    const uint32_t w = 1000, h = 800;
    uint8_t *src = png_picture("a.png", w, h, 9);
    img im;
    heif_enc("a.heic", "-q", "80", tpath("a.png"));
    decode_ok("a.heic", 3, 32, 32, &im);
    cr_assert(im.orig_w == w && im.orig_h == h, "orig %ux%u", im.orig_w, im.orig_h);
    cr_assert(im.w >= 32 && im.h >= 32 && im.w < w && im.h < h, "reduced to %ux%u", im.w, im.h);
    /* what area-averaging the source to that size gives */
    uint8_t *want = malloc((size_t)im.w * im.h * 3);
    cr_assert_eq(img_resize_area(src, w, h, 3, want, im.w, im.h), PV_OK);
    double d = imgt_mean_diff(im.px, want, (size_t)im.w * im.h * 3);
    cr_assert_lt(d, 3.0, "mean abs difference %.2f at %ux%u", d, im.w, im.h);
    img_free(&im);
    free(want);
    free(src);
}

/* ---- orientation ---------------------------------------------------------- */

/* Where the red block is, of the four corners of a w x h RGB image. */
static int red_corner(const img *im, uint32_t side)
{
    const uint32_t xs[4] = {side / 2, im->w - 1 - side / 2, side / 2, im->w - 1 - side / 2};
    const uint32_t ys[4] = {side / 2, side / 2, im->h - 1 - side / 2, im->h - 1 - side / 2};
    for (int c = 0; c < 4; c++) {
        const uint8_t *p = im->px + ((size_t)ys[c] * im->w + xs[c]) * 3;
        if (p[0] > 200 && p[1] < 60 && p[2] < 60)
            return c;
    }
    return -1;
}
enum { TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT };

static int has_box(const uint8_t *b, size_t n, const char *type)
{
    for (size_t i = 4; i + 4 <= n; i++)
        if (memcmp(b + i, type, 4) == 0)
            return 1;
    return 0;
}

/* A JPEG with EXIF orientation 6 (shown turned 90 degrees clockwise):
 * whatever heif-enc writes, the HEIF is shown as its 'irot'/'imir' say and
 * its EXIF tag is not applied again. */
Test(img_heif, jpeg_exif_orientation_through_heif_enc)
{
    uint8_t *px = malloc(128 * 96 * 3);
    img im;
    size_t n;
    gen_marked(128, 96, 32, px);
    cr_assert_eq(gen_write_jpeg(tpath("a.jpg"), 128, 96, 3, px, 95, 6), 0);
    heif_enc("a.heic", "-q", "90", tpath("a.jpg"));
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    int irot = has_box(b, n, "irot");
    cr_assert(has_box(b, n, "Exif"), "heif-enc dropped the EXIF item");
    free(b);
    decode_ok("a.heic", 3, 0, 0, &im);
    if (irot) { /* a heif-enc that turns EXIF orientation into irot */
        expect_size(&im, 96, 128);
        cr_assert_eq(red_corner(&im, 32), TOP_RIGHT, "red at corner %d", red_corner(&im, 32));
    } else { /* Debian's 1.15: stored pixels, no irot, the EXIF tag kept */
        expect_size(&im, 128, 96);
        cr_assert_eq(red_corner(&im, 32), TOP_LEFT,
                     "red at corner %d: the EXIF orientation was applied", red_corner(&im, 32));
    }
    img_free(&im);
    free(px);
}

/* w x h RGB pixels written to path as a HEIC through libheif's encoder
 * (x265) with orientation o, as a camera writes it: 'irot'/'imir' and the
 * turned 'ispe'. In a child process that ends with _exit: x265 keeps
 * globals that LeakSanitizer would report at the test's exit. */
static int encode_oriented(const char *path, const uint8_t *px, int w, int h,
                           enum heif_orientation o)
{
    pid_t pid = fork();
    int status = -1;
    if (pid == 0) {
        struct heif_context *ctx = heif_context_alloc();
        struct heif_encoder *enc = NULL;
        struct heif_image *hi = NULL;
        struct heif_encoding_options *opt = heif_encoding_options_alloc();
        int stride;
        if (heif_context_get_encoder_for_format(ctx, heif_compression_HEVC, &enc).code != 0 ||
            heif_image_create(w, h, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &hi).code !=
                0 ||
            heif_image_add_plane(hi, heif_channel_interleaved, w, h, 8).code != 0)
            _exit(1);
        heif_encoder_set_lossy_quality(enc, 90);
        uint8_t *p = heif_image_get_plane(hi, heif_channel_interleaved, &stride);
        for (int y = 0; y < h; y++)
            memcpy(p + (size_t)y * stride, px + (size_t)y * w * 3, (size_t)w * 3);
        opt->image_orientation = o;
        if (heif_context_encode_image(ctx, hi, enc, opt, NULL).code != 0 ||
            heif_context_write_to_file(ctx, path).code != 0)
            _exit(1);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* An 'irot' of 90 degrees clockwise (EXIF 6): applied by the decoder. */
Test(img_heif, irot_applied)
{
    const int w = 128, h = 96;
    uint8_t *px = malloc((size_t)w * h * 3);
    img im;
    size_t n;
    gen_marked(w, h, 32, px);
    cr_assert_eq(encode_oriented(tpath("a.heic"), px, w, h, heif_orientation_rotate_90_cw), 0,
                 "libheif could not encode");
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    cr_assert(has_box(b, n, "irot"), "libheif wrote no irot");
    free(b);
    decode_ok("a.heic", 3, 0, 0, &im);
    expect_size(&im, 96, 128);
    cr_assert_eq(red_corner(&im, 32), TOP_RIGHT, "red at corner %d", red_corner(&im, 32));
    img_free(&im);

    /* reduced while it comes in: the minimum is as displayed */
    decode_ok("a.heic", 3, 48, 64, &im);
    cr_assert(im.orig_w == 96 && im.orig_h == 128, "orig %ux%u", im.orig_w, im.orig_h);
    cr_assert_eq(red_corner(&im, 16), TOP_RIGHT, "reduced: red at corner %d", red_corner(&im, 16));
    img_free(&im);

    /* EXIF 4 (flip top to bottom): 'imir', red at the bottom left */
    cr_assert_eq(encode_oriented(tpath("b.heic"), px, w, h, heif_orientation_flip_vertically), 0);
    b = imgt_read(dir, "b.heic", &n);
    cr_assert(has_box(b, n, "imir"), "libheif wrote no imir");
    free(b);
    decode_ok("b.heic", 3, 0, 0, &im);
    expect_size(&im, 128, 96);
    cr_assert_eq(red_corner(&im, 32), BOTTOM_LEFT, "imir: red at corner %d", red_corner(&im, 32));
    img_free(&im);
    free(px);
}

/* ---- damaged files -------------------------------------------------------- */

/* Every 'ispe' of b set to w x h. */
static int patch_ispe(uint8_t *b, size_t n, uint32_t w, uint32_t h)
{
    int k = 0;
    for (size_t i = 4; i + 16 <= n; i++)
        if (memcmp(b + i, "ispe", 4) == 0) {
            uint8_t *q = b + i + 8; /* after the type and version/flags */
            for (int j = 0; j < 4; j++) {
                q[j] = (uint8_t)(w >> (24 - 8 * j));
                q[4 + j] = (uint8_t)(h >> (24 - 8 * j));
            }
            k++;
        }
    return k;
}

Test(img_heif, ispe_bomb_refused_before_decoding)
{
    free(png_picture("a.png", 64, 48, 1));
    heif_enc("a.heic", "-q", "50", tpath("a.png"));
    size_t n;
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    /* past libheif's side limit (32768): refused while the file is read */
    cr_assert_geq(patch_ispe(b, n, 60000, 60000), 1);
    fails_buf("ispe 60000x60000", b, n, PV_ETOOBIG, "60000x60000");
    /* within it, past PV_MAX_PIXELS: our check, before libheif decodes */
    patch_ispe(b, n, 30000, 30000);
    fails_buf("ispe 30000x30000", b, n, PV_ETOOBIG, "30000x30000 pixels, more than the limit");
    patch_ispe(b, n, 0, 48);
    fails_buf("ispe 0x48", b, n, PV_EDECODE, "zero side");
    free(b);
}

/* heif-enc's one-tile grid of a 64x48 picture, its output size set to
 * 32000x32000 while 'ispe' still says 64x48: libheif 1.15.1 takes the
 * grid's word, allocates gigabytes and crashes. Refused from the grid's
 * data before libheif reads the file. */
Test(img_heif, grid_bomb_refused)
{
    free(png_picture("a.png", 64, 48, 1));
    heif_enc("a.heic", "-q", "50", tpath("a.png"));
    size_t n, i;
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    for (i = 4; i + 16 <= n && memcmp(b + i, "idat", 4) != 0; i++)
        ;
    cr_assert_lt(i + 16, n, "heif-enc wrote no grid ('idat') for 64x48");
    uint8_t *g = b + i + 4; /* version, flags, rows-1, columns-1, w16, h16 */
    cr_assert_eq(g[1] & 1, 0);
    cr_assert(g[4] == 0 && g[5] == 64 && g[6] == 0 && g[7] == 48, "grid %u %u %u %u", g[4], g[5],
              g[6], g[7]);
    g[4] = g[6] = 32000 >> 8;
    g[5] = g[7] = 32000 & 255;
    fails_buf("grid 32000x32000", b, n, PV_ETOOBIG, "grid image: 32000x32000 pixels");
    free(b);
}

Test(img_heif, truncated)
{
    free(png_picture("a.png", 64, 48, 2));
    heif_enc("a.heic", "-q", "80", tpath("a.png"));
    size_t n;
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    const size_t cuts[] = {20, 40, 100, n / 2, n - 100, n - 10, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu", cuts[k], n);
        fails_buf(what, b, cuts[k], PV_EDECODE, "truncated");
    }
    free(b);
}

Test(img_heif, ftyp_only)
{
    free(png_picture("a.png", 64, 48, 2));
    heif_enc("a.heic", "-q", "80", tpath("a.png"));
    size_t n;
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    size_t ftyp = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
    cr_assert(ftyp >= 16 && ftyp < n && memcmp(b + 4, "ftyp", 4) == 0);
    cr_assert_eq(img_sniff(b, ftyp), IMG_HEIF);
    fails_buf("ftyp alone", b, ftyp, PV_EDECODE, "meta");
    free(b);
}

Test(img_heif, no_primary_image)
{
    free(png_picture("a.png", 64, 48, 2));
    heif_enc("a.heic", "-q", "80", tpath("a.png"));
    size_t n, i;
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    for (i = 4; i + 4 <= n && memcmp(b + i, "pitm", 4) != 0; i++)
        ;
    cr_assert_lt(i + 4, n, "no pitm");
    memcpy(b + i, "xitm", 4); /* a box libheif skips: no primary item */
    fails_buf("no pitm", b, n, PV_EDECODE, "no primary image");
    free(b);
}

/* libheif without its decoders (heif_deinit as the last user unregisters
 * them; each Criterion test is its own process). */
Test(img_heif, no_decoder_for_codec)
{
    free(png_picture("a.png", 64, 48, 2));
    heif_enc("a.avif", "-A", "-q", "80", tpath("a.png"));
    heif_enc("a.heic", "-q", "80", tpath("a.png"));
    img im;
    decode_ok("a.avif", 3, 0, 0, &im); /* sets libheif up */
    img_free(&im);
    heif_deinit();
    cr_assert_eq(heif_have_decoder_for_format(heif_compression_AV1), 0);
    size_t n;
    uint8_t *b = imgt_read(dir, "a.avif", &n);
    fails_buf("AVIF without decoders", b, n, PV_EDECODE, "no decoder for this HEIF's codec (AV1)");
    free(b);
    b = imgt_read(dir, "a.heic", &n);
    fails_buf("HEIC without decoders", b, n, PV_EDECODE, "no decoder for this HEIF's codec (HEVC)");
    free(b);
}

Test(img_heif, sniff)
{
    free(png_picture("a.png", 64, 48, 2));
    heif_enc("a.avif", "-A", "-q", "80", tpath("a.png"));
    heif_enc("a.heic", "-q", "80", tpath("a.png"));
    size_t n;
    uint8_t *b = imgt_read(dir, "a.heic", &n);
    cr_assert_eq(img_sniff(b, n), IMG_HEIF);
    cr_assert_str_eq(img_kind_name(img_sniff(b, n)), "HEIF");
    free(b);
    b = imgt_read(dir, "a.avif", &n);
    cr_assert_eq(img_sniff(b, n), IMG_HEIF);
    free(b);
}
