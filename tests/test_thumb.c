/*
 * test_thumb.c - pv_thumbnail (engine/image/thumb.c): the thumbnail's size and
 * aspect, never enlarged; grey input gives an RGB baseline JPEG; EXIF
 * orientation applied; a corrupt source fails naming the file and leaves
 * neither dst nor a temporary file behind; an existing dst is replaced whole.
 *
 * Inputs are written at run time with tests/gen.c into a fresh directory
 * under /tmp; the thumbnails are read back with libjpeg-turbo directly, so
 * the test checks the file a browser would get, not pixvec's own decoder.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "gen.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX];

static void setup(void) { cr_assert_eq(gen_tmpdir(dir), 0, "mkdtemp failed"); }
static void teardown(void) { gen_rmtree(dir); }

TestSuite(thumb, .init = setup, .fini = teardown, .timeout = 60);

static const char *tpath(const char *name)
{
    static char bufs[4][GEN_PATH_MAX];
    static int next;
    char *p = bufs[next++ % 4];
    cr_assert_not_null(gen_path(p, dir, name));
    return p;
}

/* A JPEG as a browser reads it: size, components, colour space, baseline,
 * and the RGB pixels. */
typedef struct jpeg_info {
    uint32_t w, h;
    int components;
    J_COLOR_SPACE space;
    int progressive;
    uint8_t *px; /* w*h*3 */
} jpeg_info;

typedef struct test_jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
} test_jerr;

static void test_jpeg_error_exit(j_common_ptr c)
{
    longjmp(((test_jerr *)c->err)->jmp, 1);
}

static void read_jpeg(const char *path, jpeg_info *out)
{
    static struct jpeg_decompress_struct ci;
    static test_jerr jerr;
    static uint8_t *data;
    static size_t n;
    JSAMPROW row;

    memset(out, 0, sizeof *out);
    data = NULL;
    cr_assert_eq(gen_read_bytes(path, &data, &n), 0, "%s: cannot read", path);
    ci.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = test_jpeg_error_exit;
    if (setjmp(jerr.jmp)) {
        jpeg_destroy_decompress(&ci);
        free(data);
        cr_assert_fail("%s: not a valid JPEG", path);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    out->w = ci.image_width;
    out->h = ci.image_height;
    out->components = ci.num_components;
    out->space = ci.jpeg_color_space;
    out->progressive = ci.progressive_mode;
    ci.out_color_space = JCS_RGB;
    jpeg_start_decompress(&ci);
    out->px = malloc((size_t)out->w * out->h * 3);
    while (ci.output_scanline < ci.output_height) {
        row = out->px + (size_t)ci.output_scanline * out->w * 3;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(data);
}

static const uint8_t *at(const jpeg_info *j, uint32_t x, uint32_t y)
{
    return j->px + ((size_t)y * j->w + x) * 3;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Files in the test directory whose name contains part. */
static int count_named(const char *part)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, part) != NULL)
            n++;
    closedir(d);
    return n;
}

static void write_rgb(const char *name, uint32_t w, uint32_t h, uint32_t seed,
                      int png)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    gen_pattern(w, h, 3, seed, px);
    if (png)
        cr_assert_eq(gen_write_png(tpath(name), w, h, GEN_PNG_RGB, 8, px, NULL), 0);
    else
        cr_assert_eq(gen_write_jpeg(tpath(name), w, h, 3, px, 90, 0), 0);
    free(px);
}

/* Make a thumbnail of src into dst; it must succeed, and its size and the
 * reported source size must be as given. */
static void thumb_ok(const char *src, uint32_t max_side, uint32_t want_w,
                     uint32_t want_h, uint32_t src_w, uint32_t src_h)
{
    char err[512] = "";
    uint32_t sw = 0, sh = 0;
    jpeg_info j;
    char dst[GEN_PATH_MAX], name[256];

    snprintf(name, sizeof name, "%s.thumb.jpg", src);
    gen_path(dst, dir, name);
    cr_assert_eq(pv_thumbnail(tpath(src), max_side, 80, dst, &sw, &sh, err,
                              sizeof err), PV_OK, "%s: %s", src, err);
    cr_assert_eq(sw, src_w, "%s: source width %u, want %u", src, sw, src_w);
    cr_assert_eq(sh, src_h, "%s: source height %u, want %u", src, sh, src_h);
    read_jpeg(dst, &j);
    cr_assert_eq(j.w, want_w, "%s: thumbnail %ux%u, want %ux%u", src, j.w, j.h,
                 want_w, want_h);
    cr_assert_eq(j.h, want_h, "%s: thumbnail %ux%u, want %ux%u", src, j.w, j.h,
                 want_w, want_h);
    cr_assert_eq(j.components, 3);
    cr_assert_eq(j.progressive, 0, "%s: not baseline", src);
    free(j.px);
}

Test(thumb, longer_side_is_max_side_aspect_kept)
{
    write_rgb("wide.jpg", 400, 300, 1, 0);
    write_rgb("tall.png", 300, 400, 2, 1);
    write_rgb("odd.jpg", 1001, 333, 3, 0); /* 160 * 333 / 1001 = 53.2 */
    write_rgb("strip.png", 2000, 5, 4, 1); /* rounds to 0: kept at 1 row */
    thumb_ok("wide.jpg", 160, 160, 120, 400, 300);
    thumb_ok("tall.png", 160, 120, 160, 300, 400);
    thumb_ok("odd.jpg", 160, 160, 53, 1001, 333);
    thumb_ok("strip.png", 160, 160, 1, 2000, 5);
}

Test(thumb, large_jpeg_through_dct_scaling)
{
    /* 2400x1600 decodes at 1/8 (300x200 >= 160x160) and is then averaged
     * down: the size must still come from the full image. */
    write_rgb("big.jpg", 2400, 1600, 5, 0);
    thumb_ok("big.jpg", 160, 160, 107, 2400, 1600);
}

Test(thumb, never_enlarged)
{
    write_rgb("small.jpg", 100, 50, 6, 0);
    write_rgb("exact.png", 160, 90, 7, 1);
    thumb_ok("small.jpg", 160, 100, 50, 100, 50);
    thumb_ok("exact.png", 160, 160, 90, 160, 90);
}

Test(thumb, grey_png_gives_rgb_jpeg)
{
    const uint32_t w = 200, h = 100;
    uint8_t *px = malloc((size_t)w * h);
    jpeg_info j;
    char err[512] = "";
    uint32_t x, y;

    /* A left-to-right ramp: grey in, grey (R = G = B) out, in the same
     * order of brightness. */
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++)
            px[(size_t)y * w + x] = (uint8_t)(x * 255 / (w - 1));
    cr_assert_eq(gen_write_png(tpath("grey.png"), w, h, GEN_PNG_GREY, 8, px, NULL), 0);
    free(px);
    cr_assert_eq(pv_thumbnail(tpath("grey.png"), 100, 90, tpath("g.jpg"), NULL,
                              NULL, err, sizeof err), PV_OK, "%s", err);
    read_jpeg(tpath("g.jpg"), &j);
    cr_assert_eq(j.w, 100);
    cr_assert_eq(j.h, 50);
    cr_assert_eq(j.components, 3, "a grey source must give an RGB JPEG");
    cr_assert_eq(j.space, JCS_YCbCr);
    for (x = 0; x < j.w; x += 11) {
        const uint8_t *p = at(&j, x, 25);
        cr_assert(abs(p[0] - p[1]) <= 6 && abs(p[1] - p[2]) <= 6,
                  "pixel %u is not grey: %u %u %u", x, p[0], p[1], p[2]);
    }
    cr_assert_lt(at(&j, 5, 25)[0], 40);
    cr_assert_gt(at(&j, 94, 25)[0], 215);
    free(j.px);
}

static int is_red(const uint8_t *p) { return p[0] > 180 && p[1] < 80 && p[2] < 80; }
static int is_green(const uint8_t *p) { return p[1] > 180 && p[0] < 80 && p[2] < 80; }

Test(thumb, exif_orientation_applied)
{
    uint8_t *px = malloc((size_t)256 * 128 * 3);
    char err[512] = "";
    uint32_t sw = 0, sh = 0;
    jpeg_info j;

    /* 32-pixel blocks: after a reduction to 64 or 128 they are still solid
     * 8+ pixel blocks. */
    gen_marked(256, 128, 32, px);
    /* Orientation 6: shown turned 90 degrees clockwise, 128 wide and 256
     * tall; the stored top-left (red) shows at the top-right, the stored
     * top-right (green) at the bottom-right. */
    cr_assert_eq(gen_write_jpeg(tpath("o6.jpg"), 256, 128, 3, px, 95, 6), 0);
    free(px);
    cr_assert_eq(pv_thumbnail(tpath("o6.jpg"), 64, 90, tpath("o6t.jpg"), &sw,
                              &sh, err, sizeof err), PV_OK, "%s", err);
    cr_assert_eq(sw, 128);
    cr_assert_eq(sh, 256);
    read_jpeg(tpath("o6t.jpg"), &j);
    cr_assert_eq(j.w, 32, "thumbnail %ux%u, want 32x64", j.w, j.h);
    cr_assert_eq(j.h, 64);
    cr_assert(is_red(at(&j, 28, 3)), "red not at the top-right");
    cr_assert(is_green(at(&j, 28, 60)), "green not at the bottom-right");
    cr_assert(!is_red(at(&j, 3, 3)), "the top-left is red: not rotated");
    free(j.px);
}

Test(thumb, corrupt_source_names_file_and_leaves_nothing)
{
    static const char junk[] = "\xff\xd8\xff\xe0 this is not really a JPEG";
    const char *cases[] = {"junk.jpg", "trunc.jpg", "text.png", "empty.jpg",
                           "missing.jpg"};
    uint8_t *px = malloc(300 * 200 * 3);
    size_t i;

    cr_assert_eq(gen_write_bytes(tpath("junk.jpg"), junk, sizeof junk - 1), 0);
    gen_pattern(300, 200, 3, 9, px);
    cr_assert_eq(gen_write_jpeg(tpath("trunc.jpg"), 300, 200, 3, px, 90, 0), 0);
    cr_assert_eq(gen_truncate(tpath("trunc.jpg"), 700), 0);
    free(px);
    cr_assert_eq(gen_write_bytes(tpath("text.png"), "hello\n", 6), 0);
    cr_assert_eq(gen_write_bytes(tpath("empty.jpg"), "", 0), 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "", dst[GEN_PATH_MAX], name[32];
        int rc;
        snprintf(name, sizeof name, "out-%zu.jpg", i);
        gen_path(dst, dir, name);
        rc = pv_thumbnail(tpath(cases[i]), 160, 80, dst, NULL, NULL, err,
                          sizeof err);
        cr_assert_lt(rc, 0, "%s: a thumbnail was made", cases[i]);
        cr_assert_not_null(strstr(err, tpath(cases[i])),
                           "%s: the message does not name the file: %s",
                           cases[i], err);
        cr_assert_gt(strlen(err), strlen(tpath(cases[i])) + 4,
                     "%s: no reason given: %s", cases[i], err);
        cr_assert(!exists(dst), "%s: dst was written", cases[i]);
    }
    cr_assert_eq(count_named("out-"), 0, "a thumbnail or temporary file remains");
    cr_assert_eq(count_named(".tmp"), 0, "a temporary file remains");
}

Test(thumb, replaces_existing_dst_and_reports_bad_folder)
{
    char err[512] = "", bad[GEN_PATH_MAX];
    jpeg_info j;

    write_rgb("a.png", 320, 240, 11, 1);
    cr_assert_eq(gen_write_bytes(tpath("t.jpg"), "old", 3), 0);
    cr_assert_eq(pv_thumbnail(tpath("a.png"), 80, 80, tpath("t.jpg"), NULL,
                              NULL, err, sizeof err), PV_OK, "%s", err);
    read_jpeg(tpath("t.jpg"), &j);
    cr_assert_eq(j.w, 80);
    cr_assert_eq(j.h, 60);
    free(j.px);
    cr_assert_eq(count_named(".tmp"), 0);

    /* A folder that does not exist: the error names dst and says why. */
    gen_path(bad, dir, "no/such/folder/t.jpg");
    cr_assert_eq(pv_thumbnail(tpath("a.png"), 80, 80, bad, NULL, NULL, err,
                              sizeof err), PV_EIO);
    cr_assert_not_null(strstr(err, bad), "%s", err);
    cr_assert_not_null(strstr(err, "No such file"), "%s", err);

    cr_assert_eq(pv_thumbnail(tpath("a.png"), 0, 80, tpath("z.jpg"), NULL,
                              NULL, err, sizeof err), PV_EINVAL);
    cr_assert_eq(pv_thumbnail(tpath("a.png"), 80, 101, tpath("z.jpg"), NULL,
                              NULL, err, sizeof err), PV_EINVAL);
    cr_assert(!exists(tpath("z.jpg")));
}
