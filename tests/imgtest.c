/*
 * imgtest.c - helpers shared by the image decoder tests; see imgtest.h.
 * No tests of its own. Failures are Criterion assertions, so they fail the
 * test that called the helper.
 */
#include "imgtest.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"

void imgt_tmpdir(char *dir)
{
    cr_assert_eq(gen_tmpdir(dir), 0, "mkdtemp failed");
}

void imgt_rmtree(const char *dir)
{
    gen_rmtree(dir);
}

const char *imgt_path(const char *dir, const char *name)
{
    static char bufs[8][GEN_PATH_MAX];
    static int next;
    char *p = bufs[next++ % 8];
    cr_assert_not_null(gen_path(p, dir, name), "path too long: %s/%s", dir, name);
    return p;
}

void imgt_tool(const char *dir, const char *tool, const char *pkg, const char *fmt, ...)
{
    char cmd[4096], full[GEN_PATH_MAX + 4096 + 64];
    uint8_t *log = NULL;
    size_t n = 0;
    va_list ap;
    int k, rc;

    snprintf(full, sizeof full, "command -v '%s' >/dev/null 2>&1", tool);
    cr_assert_eq(system(full), 0,
                 "%s is missing: install the Debian package %s (scripts/setup.sh installs it)",
                 tool, pkg);
    va_start(ap, fmt);
    k = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert(k >= 0 && (size_t)k < sizeof cmd, "command line too long");
    snprintf(full, sizeof full, "cd '%s' && %s >tool.log 2>&1", dir, cmd);
    rc = system(full);
    if (rc != 0) {
        (void)gen_read_bytes(imgt_path(dir, "tool.log"), &log, &n);
        cr_assert_fail("failed (%d; %s is in the Debian package %s): %s\n%.*s", rc, tool, pkg, cmd,
                       (int)n, log != NULL ? (const char *)log : "");
    }
}

uint8_t *imgt_pattern(uint32_t w, uint32_t h, uint32_t c, uint32_t seed)
{
    uint8_t *p = malloc((size_t)w * h * c);
    cr_assert_not_null(p);
    gen_pattern(w, h, c, seed, p);
    return p;
}

void imgt_write_png(const char *dir, const char *name, uint32_t w, uint32_t h, uint32_t c,
                    const uint8_t *px)
{
    static const int ct[5] = {0, GEN_PNG_GREY, GEN_PNG_GREY_ALPHA, GEN_PNG_RGB, GEN_PNG_RGBA};
    cr_assert(c >= 1 && c <= 4, "%s: %u channels", name, c);
    cr_assert_eq(gen_write_png(imgt_path(dir, name), w, h, ct[c], 8, px, NULL), 0, "writing %s",
                 name);
}

uint8_t *imgt_read(const char *dir, const char *name, size_t *n)
{
    uint8_t *b = NULL;
    cr_assert_eq(gen_read_bytes(imgt_path(dir, name), &b, n), 0, "cannot read %s", name);
    return b;
}

uint8_t *imgt_palette_picture(uint32_t w, uint32_t h, uint32_t ncol)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    cr_assert_not_null(px);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint32_t i = (x / 3 + (y / 2) * 5 + (x * y) / 4) % ncol;
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            if (ncol == 2) {
                memset(p, i ? 255 : 0, 3);
                continue;
            }
            p[0] = (uint8_t)(i * 53); /* odd multipliers: distinct mod 256 */
            p[1] = (uint8_t)(i * 97 + 31);
            p[2] = (uint8_t)(i * 151 + 7);
        }
    return px;
}

int imgt_decode_path(const char *path, uint32_t channels, uint32_t min_w, uint32_t min_h, img *out,
                     char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc = img_read_file(path, &buf, &n, err, errlen);
    if (rc == PV_OK)
        rc = img_decode(buf, n, channels, min_w, min_h, out, err, errlen);
    free(buf);
    return rc;
}

void imgt_decode_ok(const char *dir, const char *name, uint32_t ch, uint32_t min_w, uint32_t min_h,
                    img *im)
{
    char err[256] = "";
    cr_assert_eq(imgt_decode_path(imgt_path(dir, name), ch, min_w, min_h, im, err, sizeof err),
                 PV_OK, "%s: %s", name, err);
    cr_assert_eq(im->channels, ch);
    cr_assert_not_null(im->px);
}

void imgt_decode_fails(const char *dir, const char *name, uint32_t ch, int rc, const char *want)
{
    char err[256] = "";
    img im;
    memset(&im, 0x5a, sizeof im);
    cr_assert_eq(imgt_decode_path(imgt_path(dir, name), ch, 0, 0, &im, err, sizeof err), rc,
                 "%s: %s", name, err);
    cr_assert_eq(im.w, 0x5a5a5a5au, "%s: out written on failure", name);
    cr_assert_neq(err[0], '\0', "%s: no message", name);
    cr_assert(want == NULL || strstr(err, want) != NULL, "%s: message \"%s\"", name, err);
}

void imgt_decode_mem_ok(const uint8_t *b, size_t n, uint32_t ch, img *im)
{
    char err[256] = "";
    cr_assert_eq(img_decode(b, n, ch, 0, 0, im, err, sizeof err), PV_OK, "decode: %s", err);
    cr_assert_eq(im->channels, ch);
    cr_assert_not_null(im->px);
}

void imgt_decode_mem_fails(const uint8_t *b, size_t n, int rc, const char *want)
{
    char err[256] = "";
    img im;
    memset(&im, 0x5a, sizeof im);
    cr_assert_eq(img_decode(b, n, 3, 0, 0, &im, err, sizeof err), rc, "rc for %zu bytes: %s", n,
                 err);
    cr_assert_eq(im.w, 0x5a5a5a5au, "out written on failure");
    cr_assert_neq(err[0], '\0', "no message");
    cr_assert(want == NULL || strstr(err, want) != NULL, "message \"%s\", want \"%s\"", err, want);
}

void imgt_expect_size(const img *im, uint32_t w, uint32_t h, uint32_t ow, uint32_t oh)
{
    cr_assert(im->w == w && im->h == h && im->orig_w == ow && im->orig_h == oh,
              "got %ux%u (orig %ux%u), want %ux%u (orig %ux%u)", im->w, im->h, im->orig_w,
              im->orig_h, w, h, ow, oh);
}

void imgt_expect_rgb(const img *im, uint32_t w, uint32_t h, const uint8_t *want)
{
    cr_assert(im->w == w && im->h == h && im->orig_w == w && im->orig_h == h,
              "got %ux%u (orig %ux%u), want %ux%u", im->w, im->h, im->orig_w, im->orig_h, w, h);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        cr_assert_eq(im->px[i], want[i], "row %zu col %zu channel %zu: %u, want %u", i / 3 / w,
                     i / 3 % w, i % 3, im->px[i], want[i]);
}

void imgt_diff_stats(const uint8_t *a, const uint8_t *b, size_t n, double *mean, int *max)
{
    double sum = 0;
    *max = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        sum += d;
        if (d > *max)
            *max = d;
    }
    *mean = sum / (double)n;
}

int imgt_max_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double mean;
    int max;
    imgt_diff_stats(a, b, n, &mean, &max);
    return max;
}

double imgt_mean_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double mean;
    int max;
    imgt_diff_stats(a, b, n, &mean, &max);
    return mean;
}

uint8_t imgt_luma(uint32_t r, uint32_t g, uint32_t b)
{
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
}

uint8_t imgt_over_white(uint32_t c, uint32_t a)
{
    return (uint8_t)((c * a + 255u * (255u - a) + 127u) / 255u);
}

int imgt_is_red(const img *im, uint32_t x, uint32_t y)
{
    const uint8_t *p = im->px + ((size_t)y * im->w + x) * 3;
    return p[0] > 200 && p[1] < 60 && p[2] < 60;
}

int imgt_is_green(const img *im, uint32_t x, uint32_t y)
{
    const uint8_t *p = im->px + ((size_t)y * im->w + x) * 3;
    return p[1] > 200 && p[0] < 60 && p[2] < 60;
}
