/*
 * test_plot.c - the PNGs the command line draws with cairo (cli/draw.c),
 * through the pixvec binary on databases of generated pictures: `dups
 * --histogram-png` writes a PNG of the default size whose red threshold line
 * stands where the threshold falls on the x axis, replaces an old file
 * whole, and on a bad destination says which file and why, leaving the old
 * one as it was and no temporary file behind; `map --png` draws each
 * folder's palette colour and a dark title.
 *
 * PNGs are read back with libpng's simplified API (cairo writes them, libpng
 * reads them: a malformed file fails here). Every file goes to a fresh
 * mkdtemp directory, removed after each test.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "gen.h"

static cli_fix F; /* the folder (F.dir, F.imgs, F.db) and the last run's F.out, F.err */

static void setup(void)
{
    cli_fix_setup(&F);
}

static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(plot, .init = setup, .fini = teardown, .timeout = 120);

/* Run pixvec with the arguments: the exit status, output in F.out, F.err. */
#define run(...) cli_fix_run(&F, NULL, __VA_ARGS__, (char *)NULL)

/* Families of two in folder sub of imgs: a picture and the same a little
 * brighter, which the pixels embedder scores far above 0.55 with each
 * other, so every image's nearest-neighbour score is above 0.55. */
static void make_pairs(const char *sub, int families, uint32_t seed0)
{
    enum { W = 64, H = 48 };
    char folder[GEN_PATH_MAX], p[GEN_PATH_MAX], name[32];
    uint8_t px[W * H * 3];

    gen_path(folder, F.imgs, sub);
    cr_assert(mkdir(folder, 0755) == 0 || errno == EEXIST);
    for (int f = 0; f < families; f++) {
        gen_pattern(W, H, 3, seed0 + (uint32_t)f, px);
        snprintf(name, sizeof name, "f%02d_a.png", f);
        cr_assert_eq(gen_write_png(gen_path(p, folder, name), W, H, GEN_PNG_RGB, 8, px, NULL), 0);
        for (size_t i = 0; i < sizeof px; i++)
            px[i] = (uint8_t)(px[i] > 235 ? 255 : px[i] + 20);
        snprintf(name, sizeof name, "f%02d_b.png", f);
        cr_assert_eq(gen_write_png(gen_path(p, folder, name), W, H, GEN_PNG_RGB, 8, px, NULL), 0);
    }
}

static void make_db(void)
{
    cr_assert_eq(run("init", F.db), 0, "%s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs, "--quiet"), 0, "%s", F.err);
}

/* A decoded RGB picture. */
typedef struct pic {
    uint32_t w, h;
    uint8_t *px;
} pic;

static void read_png(const char *path, pic *out)
{
    png_image im;

    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&im, path), "%s: %s", path, im.message);
    im.format = PNG_FORMAT_RGB;
    out->w = im.width;
    out->h = im.height;
    out->px = malloc(PNG_IMAGE_SIZE(im));
    cr_assert_not_null(out->px);
    cr_assert(png_image_finish_read(&im, NULL, out->px, 0, NULL), "%s: %s", path,
              im.message);
}

static const uint8_t *at(const pic *p, uint32_t x, uint32_t y)
{
    return p->px + ((size_t)y * p->w + x) * 3;
}

static int is_red(const uint8_t *c) { return c[0] > 180 && c[1] < 60 && c[2] < 60; }
static int is_black(const uint8_t *c) { return c[0] < 40 && c[1] < 40 && c[2] < 40; }

/* The x axis is the row with the longest run of black pixels (its right end
 * the plot's right edge); the plot starts right of the column with the
 * longest vertical black run (the y axis). */
static void find_axes(const pic *p, uint32_t *row, uint32_t *x0, uint32_t *x1)
{
    uint32_t best = 0, vbest = 0, x, y;

    for (y = 0; y < p->h; y++) {
        uint32_t run = 0;
        for (x = 0; x < p->w; x++) {
            run = is_black(at(p, x, y)) ? run + 1 : 0;
            if (run > best) {
                best = run;
                *row = y;
                *x1 = x + 1;
            }
        }
    }
    cr_assert_gt(best, p->w / 2, "no x axis found (longest run %u)", best);
    for (x = 0; x < p->w; x++) {
        uint32_t run = 0;
        for (y = 0; y < p->h; y++) {
            run = is_black(at(p, x, y)) ? run + 1 : 0;
            if (run >= vbest && run > 0) {
                vbest = run;
                *x0 = x + 1;
            }
        }
    }
    cr_assert_gt(vbest, p->h / 2, "no y axis found (longest run %u)", vbest);
}

/* The column holding the most red pixels, and how many. */
static uint32_t reddest_column(const pic *p, uint32_t *count)
{
    uint32_t x, y, best = 0, bx = 0;

    for (x = 0; x < p->w; x++) {
        uint32_t n = 0;
        for (y = 0; y < p->h; y++)
            n += is_red(at(p, x, y));
        if (n > best) {
            best = n;
            bx = x;
        }
    }
    *count = best;
    return bx;
}

/* Pixels of rows [y0, y1) within tol per channel of rgb. */
static size_t count_near(const pic *p, uint32_t y0, uint32_t y1, uint32_t xa, uint32_t xb,
                         const uint8_t rgb[3], int tol)
{
    size_t n = 0;

    for (uint32_t y = y0; y < y1 && y < p->h; y++)
        for (uint32_t x = xa; x < xb && x < p->w; x++) {
            const uint8_t *c = at(p, x, y);
            n += abs(c[0] - rgb[0]) <= tol && abs(c[1] - rgb[1]) <= tol &&
                 abs(c[2] - rgb[2]) <= tol;
        }
    return n;
}

static int count_entries(const char *d)
{
    DIR *dh = opendir(d);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(dh, "%s", d);
    while ((e = readdir(dh)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dh);
    return n;
}

/* -t 0.52 with every nearest score above 0.55: the histogram runs from
 * 0.5 (the threshold rounded down to 0.05) to 1, so the red line stands
 * 4 % of the way along the x axis. An old file at the destination is
 * replaced whole. */
Test(plot, dups_histogram_png_threshold_line)
{
    static const uint8_t bar[3] = {70, 110, 170};
    char png[GEN_PATH_MAX], folder[GEN_PATH_MAX];
    uint32_t row = 0, x0 = 0, x1 = 0, red, rx;
    double want;
    pic im;

    make_pairs("a", 6, 700);
    make_db();
    gen_path(folder, F.dir, "out");
    cr_assert_eq(mkdir(folder, 0755), 0);
    gen_path(png, folder, "hist.png");
    cr_assert_eq(gen_write_bytes(png, "old", 3), 0);
    cr_assert_eq(run("dups", F.db, "-t", "0.52", "--histogram-png", png), 0, "%s", F.err);
    read_png(png, &im);
    cr_assert_eq(im.w, 800, "width %u", im.w);
    cr_assert_eq(im.h, 400, "height %u", im.h);
    find_axes(&im, &row, &x0, &x1);
    rx = reddest_column(&im, &red);
    want = x0 + (0.52 - 0.5) / (1.0 - 0.5) * (double)(x1 - x0);
    cr_assert(fabs(rx - want) <= 2.0, "red column %u, expected %.1f (axis %u..%u)", rx, want,
              x0, x1);
    cr_assert_gt(red, row / 2, "only %u red pixels in column %u: no line", red, rx);
    /* Bars right of the line (the scores near 1), none left of it. */
    cr_assert_gt(count_near(&im, 0, row, rx + 4, x1, bar, 2), 100, "no bars");
    cr_assert_eq(count_near(&im, 0, row, x0 + 2, rx - 3, bar, 2), 0,
                 "bars below the lowest score");
    /* The title's text above the plot. */
    cr_assert_gt(count_near(&im, 0, row / 8, 0, im.w, (const uint8_t[3]){0, 0, 0}, 60), 50,
                 "no title");
    free(im.px);
    cr_assert_eq(count_entries(folder), 1, "a temporary file was left beside the PNG");
}

/* The old content of path must be old. */
static void assert_content(const char *path, const char *old)
{
    uint8_t *b = NULL;
    size_t n = 0;

    cr_assert_eq(gen_read_bytes(path, &b, &n), 0, "%s is gone", path);
    cr_assert(n == strlen(old) && memcmp(b, old, n) == 0, "%s was changed", path);
    free(b);
}

/* Destinations that cannot be written: a missing folder, a folder in the
 * file's place, and a name so long that no temporary file can be made
 * beside it. Each fails the command with a message naming the file, and
 * what was there stays. */
Test(plot, dups_histogram_png_bad_destinations)
{
    char missing[GEN_PATH_MAX], folder[GEN_PATH_MAX], inside[GEN_PATH_MAX];
    char sub[GEN_PATH_MAX], name[NAME_MAX + 1], longp[GEN_PATH_MAX + NAME_MAX + 2];

    make_pairs("a", 3, 900);
    make_db();

    gen_path(missing, F.dir, "no/such/folder/h.png");
    cr_assert_eq(run("dups", F.db, "--histogram-png", missing), 1, "%s", F.out);
    cr_assert(strstr(F.err, missing) && strstr(F.err, "No such file or directory"),
              "%s", F.err);

    /* A folder holding a file where the PNG should go: rename fails. */
    gen_path(folder, F.dir, "taken");
    cr_assert_eq(mkdir(folder, 0755), 0);
    gen_path(inside, folder, "keep.txt");
    cr_assert_eq(gen_write_bytes(inside, "keep", 4), 0);
    cr_assert_eq(run("dups", F.db, "--histogram-png", folder), 1, "%s", F.out);
    cr_assert(strstr(F.err, folder) && strstr(F.err, "rename"), "%s", F.err);
    assert_content(inside, "keep");

    /* An old file whose name leaves no room for ".tmp-PID-N" in NAME_MAX. */
    gen_path(sub, F.dir, "long");
    cr_assert_eq(mkdir(sub, 0755), 0);
    memset(name, 'h', NAME_MAX - 4);
    memcpy(name + NAME_MAX - 4, ".png", 5);
    snprintf(longp, sizeof longp, "%s/%s", sub, name);
    cr_assert_eq(gen_write_bytes(longp, "old bytes", 9), 0);
    cr_assert_eq(run("dups", F.db, "--histogram-png", longp), 1, "%s", F.out);
    cr_assert(strstr(F.err, longp) && strstr(F.err, "too long"), "%s", F.err);
    assert_content(longp, "old bytes");
    cr_assert_eq(count_entries(sub), 1, "a temporary file was left behind");
    /* The scan's listing is still printed: only the picture failed. */
    cr_assert(strstr(F.out, "images"), "%s", F.out);
}

/* The first three colours of draw.c's palette (tab10's blue, orange and
 * green): three folders, three labels, three colours. */
static const uint8_t palette3[3][3] = {{0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}};

/* The frame around the points: the rightmost column that is mostly its
 * light grey (191). The legend lies right of it. */
static uint32_t frame_right(const pic *p)
{
    static const uint8_t grey[3] = {191, 191, 191};

    for (uint32_t x = p->w; x-- > 0;)
        if (count_near(p, 0, p->h, x, x + 1, grey, 12) > p->h / 2)
            return x;
    cr_assert_fail("no frame around the points");
    return 0;
}

/* `pixvec map DB --png F` (labels by folder)
 * draws a 1200 x 900 PNG with each folder's palette colour among the points
 * (inside the frame; translucent discs over white stay within 30 of it per
 * channel) and in the legend right of the frame, and dark title text at the
 * top. */
Test(plot, map_png_scatter)
{
    char png[GEN_PATH_MAX];
    uint32_t fx;
    pic im;

    make_pairs("alpha", 2, 100);
    make_pairs("beta", 3, 200);
    make_pairs("gamma", 4, 300);
    make_db();
    gen_path(png, F.dir, "map.png");
    cr_assert_eq(run("map", F.db, "--png", png), 0, "%s", F.err);
    read_png(png, &im);
    cr_assert_eq(im.w, 1200, "width %u", im.w);
    cr_assert_eq(im.h, 900, "height %u", im.h);
    fx = frame_right(&im);
    cr_assert(fx > im.w / 2 && fx < im.w - 40, "frame's right edge at %u: no room for a legend",
              fx);
    for (int k = 0; k < 3; k++) {
        size_t in_plot = count_near(&im, 0, im.h, 0, fx, palette3[k], 30);
        size_t in_legend = count_near(&im, 0, im.h, fx + 1, im.w, palette3[k], 4);
        cr_assert_gt(in_plot, 10, "colour %d: %zu pixels among the points", k, in_plot);
        cr_assert_gt(in_legend, 10, "colour %d: %zu pixels in the legend", k, in_legend);
    }
    cr_assert_gt(count_near(&im, 0, 60, 0, im.w / 2, (const uint8_t[3]){20, 20, 20}, 40), 50,
                 "no dark title text at the top");
    free(im.px);
}
