/*
 * test_plot.c - pv_histogram_png (engine/image/plot.c): the PNG it writes is read
 * back with libpng and checked by its pixels (size, where the red threshold
 * line stands against the x axis, bar heights), and bad arguments and
 * unwritable destinations fail with messages that say which file and why,
 * leaving no temporary files behind.
 *
 * Every file goes to a fresh mkdtemp directory under /tmp, removed after
 * each test.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX];

static void setup(void) { cr_assert_eq(gen_tmpdir(dir), 0, "mkdtemp failed"); }
static void teardown(void) { gen_rmtree(dir); }

TestSuite(plot, .init = setup, .fini = teardown);

static const char *tpath(const char *name)
{
    static char bufs[4][GEN_PATH_MAX];
    static int next;
    char *p = bufs[next++ % 4];
    cr_assert_not_null(gen_path(p, dir, name));
    return p;
}

/* A decoded RGB picture. */
typedef struct pic {
    uint32_t w, h;
    uint8_t *px;
} pic;

/* Read an 8-bit RGB PNG with libpng's simplified API (the writer is ours,
 * the reader is libpng's: a malformed file fails here). */
static void read_png(const char *path, pic *out)
{
    png_image im;

    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&im, path), "%s: %s", path,
              im.message);
    im.format = PNG_FORMAT_RGB;
    out->w = im.width;
    out->h = im.height;
    out->px = malloc(PNG_IMAGE_SIZE(im));
    cr_assert_not_null(out->px);
    cr_assert(png_image_finish_read(&im, NULL, out->px, 0, NULL), "%s: %s",
              path, im.message);
}

static const uint8_t *at(const pic *p, uint32_t x, uint32_t y)
{
    return p->px + ((size_t)y * p->w + x) * 3;
}

static int is_red(const uint8_t *c) { return c[0] > 180 && c[1] < 60 && c[2] < 60; }
static int is_black(const uint8_t *c) { return c[0] < 40 && c[1] < 40 && c[2] < 40; }
static int is_white(const uint8_t *c) { return c[0] == 255 && c[1] == 255 && c[2] == 255; }

/* The plot area's columns [*x0, *x1) and the x axis' row. The x axis is
 * the row with the longest run of black pixels (its right end is the plot's
 * right edge); the y axis is the column with the longest vertical run of
 * black pixels (a few pixels thick: the plot starts right of the last). */
static void find_axes(const pic *p, uint32_t *row, uint32_t *x0, uint32_t *x1)
{
    uint32_t best = 0, x, y, vbest = 0;

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

/* Non-white pixels in column x above row `above`. */
static uint32_t column_ink(const pic *p, uint32_t x, uint32_t above)
{
    uint32_t y, n = 0;

    for (y = 0; y < above; y++)
        n += !is_white(at(p, x, y));
    return n;
}

/* Column holding the most red pixels, and how many. */
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

/* Entries of dir other than . and .. */
static int count_entries(const char *d)
{
    DIR *dh = opendir(d);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(dh);
    while ((e = readdir(dh)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dh);
    return n;
}

/* Draw p to name; the PNG read back must be w x h. */
static void draw_check_size(const pv_hist_plot *p, const char *name,
                            uint32_t w, uint32_t h)
{
    char err[256] = "";
    pic im;

    cr_assert_eq(pv_histogram_png(p, tpath(name), err, sizeof err), PV_OK,
                 "%s", err);
    read_png(tpath(name), &im);
    cr_assert_eq(im.w, w, "%s: width %u, expected %u", name, im.w, w);
    cr_assert_eq(im.h, h, "%s: height %u, expected %u", name, im.h, h);
    free(im.px);
}

Test(plot, default_size_and_custom_size)
{
    float v[] = {0.1f, 0.2f, 0.2f, 0.9f};
    pv_hist_plot p = {.values = v, .n = 4, .lo = 0, .hi = 1, .mark = 0.5f,
                      .title = "nearest-neighbour scores"};

    draw_check_size(&p, "a.png", 800, 400);
    p.width = 333;
    p.height = 222;
    draw_check_size(&p, "b.png", 333, 222);
    /* Only a.png and b.png: the temporary files were renamed away. */
    cr_assert_eq(count_entries(dir), 2);
}

/* The red line stands where mark falls between the ends of the x axis, for
 * a few marks, on a linear and on a log scale. */
Test(plot, mark_line_position)
{
    static const float marks[] = {0.25f, 0.5f, 0.83f};
    float v[50];
    char err[256] = "";
    size_t i, k;
    int lg;

    for (i = 0; i < 50; i++)
        v[i] = 0.5f + 0.01f * (float)i;
    for (lg = 0; lg < 2; lg++) {
        for (k = 0; k < 3; k++) {
            pv_hist_plot p = {.values = v, .n = 50, .lo = 0.0f, .hi = 1.0f,
                              .bins = 20, .mark = marks[k], .log_counts = lg,
                              .title = "t"};
            uint32_t row = 0, x0 = 0, x1 = 0, red, rx;
            double want;
            pic im;
            cr_assert_eq(pv_histogram_png(&p, tpath("m.png"), err, sizeof err),
                         PV_OK, "%s", err);
            read_png(tpath("m.png"), &im);
            find_axes(&im, &row, &x0, &x1);
            rx = reddest_column(&im, &red);
            want = x0 + marks[k] * (double)(x1 - x0);
            cr_assert(fabs(rx - want) <= 2.0,
                      "mark %g: red column %u, expected %.1f (axis %u..%u)",
                      marks[k], rx, want, x0, x1);
            /* A line, not just the label: most of the plot's height. */
            cr_assert_gt(red, row / 2, "only %u red pixels in column %u", red,
                         rx);
            free(im.px);
        }
    }
}

Test(plot, no_mark_outside_range)
{
    float v[] = {0.3f, 0.4f};
    pv_hist_plot p = {.values = v, .n = 2, .lo = 0, .hi = 1, .mark = 1.5f};
    char err[256] = "";
    uint32_t red;
    pic im;

    cr_assert_eq(pv_histogram_png(&p, tpath("n.png"), err, sizeof err), PV_OK,
                 "%s", err);
    read_png(tpath("n.png"), &im);
    (void)reddest_column(&im, &red);
    cr_assert_eq(red, 0, "a mark outside [lo, hi] was drawn");
    free(im.px);

    p.mark = INFINITY; /* infinite: outside too, not an error */
    cr_assert_eq(pv_histogram_png(&p, tpath("n.png"), err, sizeof err), PV_OK,
                 "%s", err);
}

/* Ten bins over [0, 1]: bin 2 holds 40 values, bin 7 holds 3. The ink above
 * the x axis in the middle column of each bin must say so, on both scales. */
static void bars_case(int log_counts)
{
    float v[43];
    pv_hist_plot p = {.values = v, .n = 43, .lo = 0, .hi = 1, .bins = 10,
                      .mark = -1.0f, .log_counts = log_counts};
    char err[256] = "";
    uint32_t row = 0, x0 = 0, x1 = 0, xa, xb, xe, inka, inkb, inke;
    double pw;
    pic im;
    int i;

    for (i = 0; i < 40; i++)
        v[i] = 0.21f + 0.001f * (float)i;
    for (i = 40; i < 43; i++)
        v[i] = 0.75f;
    cr_assert_eq(pv_histogram_png(&p, tpath("h.png"), err, sizeof err), PV_OK,
                 "%s", err);
    read_png(tpath("h.png"), &im);
    find_axes(&im, &row, &x0, &x1);
    pw = (double)(x1 - x0);
    xa = (uint32_t)(x0 + 0.25 * pw);
    xb = (uint32_t)(x0 + 0.75 * pw);
    xe = (uint32_t)(x0 + 0.45 * pw); /* an empty bin */
    inka = column_ink(&im, xa, row);
    inkb = column_ink(&im, xb, row);
    inke = column_ink(&im, xe, row);
    cr_assert_gt(inka, inkb, "log %d: bin of 40 has %u ink, bin of 3 has %u",
                 log_counts, inka, inkb);
    cr_assert_gt(inkb, inke, "log %d: bin of 3 has %u ink, empty bin %u",
                 log_counts, inkb, inke);
    /* The tallest bar reaches most of the way up. */
    cr_assert_gt(inka, row / 2);
    free(im.px);
}

Test(plot, taller_bar_for_fuller_bin_linear) { bars_case(0); }
Test(plot, taller_bar_for_fuller_bin_log) { bars_case(1); }

/* Values outside [lo, hi] are clamped into the end bins; NaN is skipped. */
Test(plot, clamped_and_nan)
{
    float v[30];
    pv_hist_plot p = {.values = v, .n = 30, .lo = 0, .hi = 1, .bins = 4,
                      .mark = 2.0f};
    char err[256] = "";
    uint32_t row = 0, x0 = 0, x1 = 0, first, last;
    double pw;
    pic im;
    int i;

    for (i = 0; i < 20; i++)
        v[i] = -5.0f; /* all into bin 0 */
    for (i = 20; i < 30; i++)
        v[i] = NAN;
    cr_assert_eq(pv_histogram_png(&p, tpath("c.png"), err, sizeof err), PV_OK,
                 "%s", err);
    read_png(tpath("c.png"), &im);
    find_axes(&im, &row, &x0, &x1);
    pw = (double)(x1 - x0);
    first = column_ink(&im, (uint32_t)(x0 + 0.125 * pw), row);
    last = column_ink(&im, (uint32_t)(x0 + 0.875 * pw), row);
    cr_assert_gt(first, row / 2, "clamped values missing from bin 0");
    cr_assert_lt(last, 10, "NaN counted somewhere (%u ink in the last bin)",
                 last);
    free(im.px);
}

/* No values: axes only, still a valid picture. */
Test(plot, empty_histogram)
{
    pv_hist_plot p = {.values = NULL, .n = 0, .lo = -1, .hi = 1, .mark = 0,
                      .log_counts = 1, .title = "empty"};
    char err[256] = "";
    uint32_t row = 0, x0 = 0, x1 = 0;
    pic im;

    cr_assert_eq(pv_histogram_png(&p, tpath("e.png"), err, sizeof err), PV_OK,
                 "%s", err);
    read_png(tpath("e.png"), &im);
    find_axes(&im, &row, &x0, &x1);
    free(im.px);
}

/* Each bad argument fails with PV_EINVAL, an error message naming the file,
 * and no file left behind. */
Test(plot, bad_arguments)
{
    float v[] = {0.5f};
    const pv_hist_plot good = {.values = v, .n = 1, .lo = 0, .hi = 1,
                               .mark = 0.5f};
    pv_hist_plot p;
    char err[256];
    const char *dst = tpath("bad.png");
    struct {
        const char *what;
        float lo, hi, mark;
        uint32_t w, h, bins;
        int null_values;
        const char *needle;
    } cases[] = {
        {"lo == hi", 1, 1, 0.5f, 0, 0, 0, 0, "range"},
        {"lo > hi", 1, 0, 0.5f, 0, 0, 0, 0, "range"},
        {"NaN lo", NAN, 1, 0.5f, 0, 0, 0, 0, "range"},
        {"NaN hi", 0, NAN, 0.5f, 0, 0, 0, 0, "range"},
        {"Inf hi", 0, INFINITY, 0.5f, 0, 0, 0, 0, "range"},
        {"NaN mark", 0, 1, NAN, 0, 0, 0, 0, "NaN"},
        {"too narrow", 0, 1, 0.5f, 199, 400, 0, 0, "199x400"},
        {"too tall", 0, 1, 0.5f, 800, 8001, 0, 0, "800x8001"},
        {"too many bins", 0, 1, 0.5f, 0, 0, 2000000, 0, "bins"},
        {"NULL values", 0, 1, 0.5f, 0, 0, 0, 1, "no array"},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = good;
        p.lo = cases[i].lo;
        p.hi = cases[i].hi;
        p.mark = cases[i].mark;
        p.width = cases[i].w;
        p.height = cases[i].h;
        p.bins = cases[i].bins;
        if (cases[i].null_values)
            p.values = NULL;
        err[0] = '\0';
        cr_assert_eq(pv_histogram_png(&p, dst, err, sizeof err), PV_EINVAL,
                     "%s: accepted", cases[i].what);
        cr_assert_not_null(strstr(err, dst), "%s: message without the file: %s",
                           cases[i].what, err);
        cr_assert_not_null(strstr(err, cases[i].needle),
                           "%s: message without '%s': %s", cases[i].what,
                           cases[i].needle, err);
    }
    cr_assert_eq(pv_histogram_png(NULL, dst, err, sizeof err), PV_EINVAL);
    cr_assert_eq(pv_histogram_png(&good, NULL, err, sizeof err), PV_EINVAL);
    /* err may be NULL. */
    p = good;
    p.lo = 2;
    cr_assert_eq(pv_histogram_png(&p, dst, NULL, 0), PV_EINVAL);
    cr_assert_eq(count_entries(dir), 0, "a failed call left a file");
}

/* A folder that does not exist: the reason is the system's. */
Test(plot, missing_folder)
{
    float v[] = {0.5f};
    pv_hist_plot p = {.values = v, .n = 1, .lo = 0, .hi = 1, .mark = 0.5f};
    char err[512] = "";
    const char *dst = tpath("no/such/folder/x.png");

    cr_assert_eq(pv_histogram_png(&p, dst, err, sizeof err), PV_EIO);
    cr_assert_not_null(strstr(err, dst), "%s", err);
    cr_assert_not_null(strstr(err, "No such file or directory"), "%s", err);
}

/* dst is a folder: the PNG is written to a temporary file beside it, the
 * rename over the folder fails, and the temporary file is removed. (The tests
 * run as root, so a read-only folder would not stop the write.) */
Test(plot, unwritable_destination_leaves_nothing)
{
    float v[] = {0.5f};
    pv_hist_plot p = {.values = v, .n = 1, .lo = 0, .hi = 1, .mark = 0.5f};
    char err[512] = "";
    const char *dst = tpath("folder");
    struct stat st;

    cr_assert_eq(mkdir(dst, 0755), 0);
    cr_assert_eq(pv_histogram_png(&p, dst, err, sizeof err), PV_EIO);
    cr_assert_not_null(strstr(err, dst), "%s", err);
    cr_assert_not_null(strstr(err, "rename"), "%s", err);
    cr_assert_eq(count_entries(dir), 1, "a temporary file was left behind");
    cr_assert_eq(stat(dst, &st), 0);
    cr_assert(S_ISDIR(st.st_mode), "the folder was replaced");
}

/* An existing dst is replaced whole. */
Test(plot, replaces_existing_file)
{
    float v[] = {0.5f};
    pv_hist_plot p = {.values = v, .n = 1, .lo = 0, .hi = 1, .mark = 0.5f};
    char err[256] = "";
    pic im;

    cr_assert_eq(gen_write_bytes(tpath("r.png"), "old", 3), 0);
    cr_assert_eq(pv_histogram_png(&p, tpath("r.png"), err, sizeof err), PV_OK,
                 "%s", err);
    read_png(tpath("r.png"), &im);
    cr_assert_eq(im.w, 800);
    free(im.px);
    cr_assert_eq(count_entries(dir), 1);
}
