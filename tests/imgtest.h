/*
 * imgtest.h - helpers shared by the image decoder tests (tests only):
 * test_img.c and the per-format suites test_img_webp.c, test_img_heif.c,
 * test_img_tiff.c, test_img_gif.c and test_img_bmp.c.
 *
 * Each suite works in a fresh folder per test (made by its .init, removed
 * by its .fini), makes its files there with gen.h or with the Debian tools
 * (cwebp, heif-enc, convert, tiffcp, ...), decodes them with img_decode and
 * compares the pixels with their source. These are the pieces every suite
 * needs for that. Unlike gen.h, a helper that cannot do its job fails the
 * running test (Criterion assertions) instead of returning -1, so a call
 * needs no checking; a function that returns a status says so.
 *
 * Typical use:
 *     static char dir[GEN_PATH_MAX];
 *     static void setup(void) { imgt_tmpdir(dir); }
 *     static void teardown(void) { imgt_rmtree(dir); }
 *     TestSuite(img_fmt, .init = setup, .fini = teardown);
 *
 *     Test(img_fmt, lossy)
 *     {
 *         uint8_t *src = imgt_pattern(64, 48, 3, 7);
 *         img im = {0};
 *         double mean;
 *         int max;
 *         imgt_write_png(dir, "a.png", 64, 48, 3, src);
 *         imgt_tool(dir, "cwebp", "webp", "cwebp -q 90 a.png -o a.webp");
 *         imgt_decode_ok(dir, "a.webp", 3, 0, 0, &im);
 *         imgt_expect_size(&im, 64, 48, 64, 48);
 *         imgt_diff_stats(im.px, src, 64 * 48 * 3, &mean, &max);
 *         cr_assert_lt(mean, 3.0);
 *         img_free(&im);
 *         free(src);
 *     }
 */
#ifndef PV_TEST_IMGTEST_H
#define PV_TEST_IMGTEST_H

#include <stddef.h>
#include <stdint.h>

#include "gen.h"
#include "img.h"

/* ---- the test's folder ---------------------------------------------------- */

/* Make a fresh folder (gen_tmpdir) into dir (GEN_PATH_MAX bytes); fails the
 * test if it cannot. For a suite's .init. */
void imgt_tmpdir(char *dir);

/* Remove dir and everything in it. For a suite's .fini. */
void imgt_rmtree(const char *dir);

/* dir "/" name in one of 8 static buffers used in turn: a result stays valid
 * for the next 7 calls, enough for the few paths a call needs at once. */
const char *imgt_path(const char *dir, const char *name);

/* ---- Debian tools --------------------------------------------------------- */

/* Run the shell command line fmt (printf-style) in dir, its output going to
 * dir/tool.log. tool (the command the line needs, e.g. "cwebp") must be on
 * PATH, else the test fails saying to install the Debian package pkg
 * ("webp"); a command that fails fails the test, showing the line, its exit
 * status and the log. A tool is never skipped. */
void imgt_tool(const char *dir, const char *tool, const char *pkg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- pixels and files ----------------------------------------------------- */

/* gen_pattern(w, h, c, seed) in a new malloc'd buffer (caller frees). */
uint8_t *imgt_pattern(uint32_t w, uint32_t h, uint32_t c, uint32_t seed);

/* px, w x h with c channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), as an
 * 8-bit PNG dir/name. */
void imgt_write_png(const char *dir, const char *name, uint32_t w, uint32_t h, uint32_t c,
                    const uint8_t *px);

/* The whole file dir/name, malloc'd (caller frees); its size to *n. */
uint8_t *imgt_read(const char *dir, const char *name, size_t *n);

/* A w x h RGB picture of ncol distinct colours (malloc'd, caller frees), in
 * small irregular patches, for palette formats (GIF, 1..8-bit BMP); ncol 2
 * gives black and white. */
uint8_t *imgt_palette_picture(uint32_t w, uint32_t h, uint32_t ncol);

/* ---- decoding ------------------------------------------------------------- */

/* img_read_file(path) then img_decode(channels, min_w, min_h): the status
 * of the first that fails, else PV_OK; err as they leave it. */
int imgt_decode_path(const char *path, uint32_t channels, uint32_t min_w, uint32_t min_h, img *out,
                     char *err, size_t errlen);

/* Decode dir/name to ch channels; it must succeed (the reason is shown
 * otherwise) with ch channels and pixels. */
void imgt_decode_ok(const char *dir, const char *name, uint32_t ch, uint32_t min_w, uint32_t min_h,
                    img *im);

/* Decoding dir/name to ch channels (full size) must fail with rc, leave the
 * img untouched, and give a reason containing want (any reason if NULL). */
void imgt_decode_fails(const char *dir, const char *name, uint32_t ch, int rc, const char *want);

/* The same for a file already in memory (b, n bytes), at full size. */
void imgt_decode_mem_ok(const uint8_t *b, size_t n, uint32_t ch, img *im);
void imgt_decode_mem_fails(const uint8_t *b, size_t n, int rc, const char *want);

/* im must be w x h, decoded from an image of ow x oh. */
void imgt_expect_size(const img *im, uint32_t w, uint32_t h, uint32_t ow, uint32_t oh);

/* ---- comparing ------------------------------------------------------------ */

/* im must be a full-size (w x h, not reduced) RGB image equal to want to
 * the byte; the first differing sample is named. */
void imgt_expect_rgb(const img *im, uint32_t w, uint32_t h, const uint8_t *want);

/* Mean and largest absolute difference of two buffers of n bytes. */
void imgt_diff_stats(const uint8_t *a, const uint8_t *b, size_t n, double *mean, int *max);

/* Its largest difference alone, and its mean alone. */
int imgt_max_diff(const uint8_t *a, const uint8_t *b, size_t n);
double imgt_mean_diff(const uint8_t *a, const uint8_t *b, size_t n);

/* The grey level of r, g, b: BT.601 weights (0.299, 0.587, 0.114) in
 * 16-bit fixed point, rounded. */
uint8_t imgt_luma(uint32_t r, uint32_t g, uint32_t b);

/* Channel value c with alpha a composited over white, rounded: how img.h
 * flattens transparency. */
uint8_t imgt_over_white(uint32_t c, uint32_t a);

/* Whether pixel (x, y) of an RGB im is clearly red / clearly green: the
 * corner marks of gen_marked, to tell how an image was turned. */
int imgt_is_red(const img *im, uint32_t x, uint32_t y);
int imgt_is_green(const img *im, uint32_t x, uint32_t y);

#endif
