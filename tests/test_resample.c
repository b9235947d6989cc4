/*
 * test_resample.c - Pillow-exact resizing and CLIP's resize + centre crop
 * (engine/image/img_resample.c).
 *
 * The reference is Pillow itself: the images are generated here (noise,
 * gradients with solid blocks, hard 0/255 edges), written as raw bytes,
 * resized by tests/ref_resample.py with /usr/bin/python3's PIL in one run,
 * and every output must equal img_resize_pil's / img_resize_short_crop's
 * byte for byte. Skipped when PIL cannot be imported. The other tests need
 * no Python.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "img.h"
#include "pixvec.h"
#include "pv_util.h"

/* Picture kinds. */
enum { K_NOISE, K_PATTERN, K_EDGES, K_NKINDS };

static uint8_t *make_image(uint32_t w, uint32_t h, uint32_t ch, int kind,
                           uint32_t seed)
{
    size_t n = (size_t)w * h * ch, i;
    uint8_t *px = malloc(n);
    uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1;
    cr_assert_not_null(px);
    if (kind == K_NOISE) {
        for (i = 0; i < n; i++)
            px[i] = (uint8_t)(pv_rand64(&st) >> 56);
    } else if (kind == K_PATTERN) {
        gen_pattern(w, h, ch, seed, px);
    } else {
        /* 0/255 stripes and squares of a few widths: bicubic overshoots
         * both ends, so the clamping is exercised. */
        uint32_t x, y, c, cell = 1 + seed % 5;
        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++)
                for (c = 0; c < ch; c++) {
                    int on = ((x / cell) + (y / (cell + c))) & 1;
                    if (x < w / 3)
                        on = (x / (cell + c)) & 1;
                    px[((size_t)y * w + x) * ch + c] = on ? 255 : 0;
                }
    }
    return px;
}

typedef struct rcase {
    int crop;       /* 0: img_resize_pil to a x b; 1: short_crop side a, crop b */
    uint32_t sw, sh, a, b;
    const char *what;
} rcase;

static const rcase cases[] = {
    {0, 300, 201, 200, 134, "down 1.5x"},
    {0, 730, 511, 100, 70, "down 7.3x"},
    {0, 900, 600, 30, 20, "down 30x"},
    {0, 50, 37, 110, 81, "up 2.2x"},
    {0, 200, 150, 200, 60, "width unchanged"},
    {0, 200, 150, 77, 150, "height unchanged"},
    {0, 100, 40, 37, 130, "down x, up y"},
    {0, 1, 300, 1, 41, "1 wide, down"},
    {0, 1, 300, 5, 41, "1 wide, to 5 wide"},
    {0, 300, 1, 41, 1, "1 high"},
    {0, 1, 1, 7, 5, "1x1 up"},
    {0, 17, 13, 1, 1, "to 1x1"},
    {0, 64, 48, 64, 48, "same size"},
    {0, 333, 517, 224, 347, "333x517 short side 224"},
    {0, 517, 333, 347, 224, "517x333 short side 224"},
    {1, 333, 517, 224, 224, "333x517 CLIP"},
    {1, 640, 480, 224, 224, "640x480 CLIP"},
    {1, 480, 641, 224, 224, "480x641 CLIP"},
    {1, 224, 300, 224, 224, "short side already 224"},
    {1, 300, 300, 224, 224, "square"},
    {1, 301, 229, 225, 224, "odd crop offset"},
    {1, 1000, 30, 32, 32, "long and thin"},
    {1, 200, 150, 100, 120, "crop > short side: zero padding"},
    {1, 150, 200, 63, 80, "crop > short side, odd pad"},
    {1, 50, 40, 20, 32, "crop > both sides"},
    {1, 100, 100, 100, 100, "no resize, no crop"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static const int filters[2] = {IMG_FILTER_BICUBIC, IMG_FILTER_BILINEAR};

/* The output size of case c. */
static size_t out_bytes(const rcase *c, uint32_t ch)
{
    return c->crop ? (size_t)c->b * c->b * ch : (size_t)c->a * c->b * ch;
}

static int run_c(const rcase *c, const uint8_t *src, uint32_t ch, int filter,
                 uint8_t *out)
{
    if (c->crop)
        return img_resize_short_crop(src, c->sw, c->sh, ch, c->a, c->b,
                                     filter, out);
    return img_resize_pil(src, c->sw, c->sh, ch, out, c->a, c->b, filter);
}

/* The first difference between two outputs, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return (long)i;
    return -1;
}

/* One comparison: a case, a channel count, a filter, a picture kind. */
typedef struct rrun {
    const rcase *c;
    uint32_t ch;
    int filter, kind;
} rrun;

static const rcase big = {1, 4000, 3000, 224, 224, "4000x3000 photo, CLIP"};

/* Every case in cases[], as L and RGB, bicubic and bilinear, each picture
 * kind; then a photo-sized 4000x3000 RGB image to 224 (CLIP, bicubic).
 * runs holds NCASES * 2 * 2 * K_NKINDS + 1. */
static int make_runs(rrun *runs)
{
    int n = 0;
    for (size_t ci = 0; ci < NCASES; ci++)
        for (uint32_t ch = 1; ch <= 3; ch += 2)
            for (int fi = 0; fi < 2; fi++)
                for (int kind = 0; kind < K_NKINDS; kind++)
                    runs[n++] = (rrun){&cases[ci], ch, filters[fi], kind};
    runs[n++] = (rrun){&big, 3, IMG_FILTER_BICUBIC, K_PATTERN};
    return n;
}

Test(resample, matches_pillow, .timeout = 600)
{
    char dir[GEN_PATH_MAX], path[GEN_PATH_MAX], name[64], cmd[2 * GEN_PATH_MAX];
    rrun runs[NCASES * 2 * 2 * K_NKINDS + 1];
    int n = make_runs(runs), exact = 0;

    if (system("/usr/bin/python3 -c 'import PIL' 2>/dev/null") != 0)
        cr_skip_test("python3-pil cannot be imported: the Pillow comparison did not run");
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(path, dir, "cases.txt");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) {
        const rrun *r = &runs[i];
        uint8_t *px = make_image(r->c->sw, r->c->sh, r->ch, r->kind, (uint32_t)i);
        snprintf(name, sizeof name, "%d.in", i);
        cr_assert_eq(gen_write_bytes(gen_path(path, dir, name), px,
                                     (size_t)r->c->sw * r->c->sh * r->ch), 0);
        free(px);
        fprintf(f, "%d %s %s %u %u %d %u %u\n", i, r->c->crop ? "crop" : "resize",
                r->ch == 1 ? "L" : "RGB", r->c->sw, r->c->sh, r->filter, r->c->a, r->c->b);
    }
    cr_assert_eq(fclose(f), 0);

    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref_resample.py %s",
             PIXVEC_SRC_DIR, dir);
    cr_assert_eq(system(cmd), 0, "the reference failed: %s", cmd);

    for (int i = 0; i < n; i++) {
        const rrun *r = &runs[i];
        const rcase *c = r->c;
        size_t nb = out_bytes(c, r->ch), rn, sn;
        uint8_t *px, *ref, *out = malloc(nb);
        cr_assert_not_null(out);
        snprintf(name, sizeof name, "%d.in", i);
        cr_assert_eq(gen_read_bytes(gen_path(path, dir, name), &px, &sn), 0);
        snprintf(name, sizeof name, "%d.out", i);
        cr_assert_eq(gen_read_bytes(gen_path(path, dir, name), &ref, &rn), 0);
        cr_assert_eq(rn, nb, "%s: PIL gave %zu bytes, expected %zu", c->what, rn, nb);
        cr_assert_eq(run_c(c, px, r->ch, r->filter, out), 0, "%s", c->what);
        long d = first_diff(out, ref, nb);
        cr_expect_eq(d, -1, "%s (%ux%u, %s, %s, kind %d): byte %ld is %u, PIL has %u",
                     c->what, c->sw, c->sh, r->ch == 1 ? "L" : "RGB",
                     r->filter == IMG_FILTER_BICUBIC ? "bicubic" : "bilinear", r->kind, d,
                     d < 0 ? 0 : out[d], d < 0 ? 0 : ref[d]);
        exact += d < 0;
        free(px);
        free(ref);
        free(out);
    }
    cr_log_info("resample: %d of %d outputs equal to Pillow's byte for byte", exact, n);
    cr_assert_eq(exact, n, "%d of %d outputs equal to Pillow's", exact, n);
    gen_rmtree(dir);
}

/* Without Pillow: the crop is the middle of the full resize, and the
 * padding is zeros around it. */
Test(resample, crop_is_middle_of_full_resize)
{
    const uint32_t sw = 157, sh = 211, side = 60, crop = 56;
    const uint32_t rw = 60, rh = (uint32_t)(60.0 * 211 / 157); /* 80 */
    for (uint32_t ch = 1; ch <= 3; ch += 2) {
        uint8_t *px = make_image(sw, sh, ch, K_PATTERN, 3);
        uint8_t *full = malloc((size_t)rw * rh * ch), *c = malloc((size_t)crop * crop * ch);
        cr_assert(full && c);
        cr_assert_eq(img_resize_pil(px, sw, sh, ch, full, rw, rh, IMG_FILTER_BICUBIC), 0);
        cr_assert_eq(img_resize_short_crop(px, sw, sh, ch, side, crop, IMG_FILTER_BICUBIC, c), 0);
        uint32_t top = (rh - crop) / 2, left = (rw - crop) / 2;
        for (uint32_t y = 0; y < crop; y++)
            cr_assert_eq(memcmp(c + (size_t)y * crop * ch,
                                full + ((size_t)(y + top) * rw + left) * ch, (size_t)crop * ch),
                         0, "row %u", y);
        free(c);
        /* crop 66 > side 60: 3 zero columns each side; rows from 7 */
        const uint32_t big = 66;
        c = malloc((size_t)big * big * ch);
        cr_assert_not_null(c);
        memset(c, 0xab, (size_t)big * big * ch);
        cr_assert_eq(img_resize_short_crop(px, sw, sh, ch, side, big, IMG_FILTER_BICUBIC, c), 0);
        for (uint32_t y = 0; y < big; y++)
            for (uint32_t x = 0; x < big; x++)
                for (uint32_t k = 0; k < ch; k++) {
                    uint8_t got = c[((size_t)y * big + x) * ch + k];
                    uint8_t want = x < 3 || x >= 63 ? 0 : full[((size_t)(y + 7) * rw + x - 3) * ch + k];
                    cr_assert_eq(got, want, "(%u, %u)", x, y);
                }
        free(c);
        free(full);
        free(px);
    }
}

/* A flat image stays flat through every filter and direction (the weights
 * of each output sum to 2^22 within rounding). */
Test(resample, flat_stays_flat)
{
    uint8_t src[37 * 23], dst[90 * 9];
    memset(src, 100, sizeof src);
    for (int f = 2; f <= 3; f++) {
        cr_assert_eq(img_resize_pil(src, 37, 23, 1, dst, 90, 9, f), 0);
        for (size_t i = 0; i < sizeof dst; i++)
            cr_assert_eq(dst[i], 100, "filter %d byte %zu", f, i);
    }
}

Test(resample, rejects_bad_arguments)
{
    uint8_t src[12] = {0}, dst[64];
    cr_assert_eq(img_resize_pil(src, 0, 2, 1, dst, 2, 2, IMG_FILTER_BICUBIC), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 2, 2, 1, dst, 0, 2, IMG_FILTER_BICUBIC), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 2, 2, 2, dst, 2, 2, IMG_FILTER_BICUBIC), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 2, 2, 4, dst, 2, 2, IMG_FILTER_BICUBIC), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 2, 2, 1, dst, 2, 2, 1), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 2, 2, 1, dst, 2, 2, 4), PV_EINVAL);
    cr_assert_eq(img_resize_pil(NULL, 2, 2, 1, dst, 2, 2, 3), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 2, 2, 1, NULL, 2, 2, 3), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 1u << 14, 1u << 14, 1, dst, 2, 2, 3), PV_EINVAL);
    cr_assert_eq(img_resize_pil(src, 2, 2, 1, dst, 1u << 14, 1u << 14, 3), PV_EINVAL);
    cr_assert_eq(img_resize_short_crop(src, 2, 2, 3, 0, 4, 3, dst), PV_EINVAL);
    cr_assert_eq(img_resize_short_crop(src, 2, 2, 3, 4, 0, 3, dst), PV_EINVAL);
    /* resized to 2^22 x 2^20: over PV_MAX_PIXELS */
    cr_assert_eq(img_resize_short_crop(src, 4, 1, 3, 1u << 20, 4, 3, dst), PV_EINVAL);
}
