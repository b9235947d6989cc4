/*
 * test_map_html.c - `pixvec map DB --html FILE` end to end
 * (cli/map_html.c): generated pictures in three folders are added with the
 * pixvec binary, mapped with UMAP, and the page is opened in headless
 * Chromium with "#selftest", which makes the page's script record in
 * <div id="selftest"> what it drew and what a synthetic hover over point 0
 * showed. The DOM it dumps must say: every point drawn; hiding the hovered
 * point's label draws fewer and showing it again all; the hover found a
 * point, showed its card with the path of an image of the collection, its
 * thumbnail loaded, and its link is the percent-encoded file:// URL of that
 * path. The thumbnail folder holds one thumbnail per point, and a file name
 * with '&', '<' and quotes never reaches the page unescaped.
 *
 * Set PV_REPORT_SCREENSHOT=/some/shot.png to keep screenshots (as
 * shot-map.png and shot-map3d.png): the map with the hover card shown.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "page_test.h"

#define NASTY_NAME "a&b <c> \"q\" it's.png"
#define PER_FOLDER 10
#define POINTS (3 * PER_FOLDER + 1)

static void setup(void) { page_test_setup("map.html"); }

TestSuite(map_html, .init = setup, .fini = page_test_teardown, .timeout = 300);

/* "file://" and path percent-encoded as cli_url_esc does. */
static void file_url(char *out, size_t len, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = (size_t)snprintf(out, len, "file://");

    for (const unsigned char *p = (const unsigned char *)path; *p && o + 4 < len; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p) != NULL) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* The .jpg files in folder. */
static size_t jpgs_in(const char *folder)
{
    DIR *d = opendir(folder);
    struct dirent *e;
    size_t n = 0;

    cr_assert_not_null(d, "no thumbnail folder %s", folder);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".jpg") == 0;
    }
    closedir(d);
    return n;
}

/* Map with extra (NULL-terminated) options, open the page with #selftest,
 * check what it recorded; keep a screenshot under suffix. */
static void map_and_check(const char *suffix, int dims, ...)
{
    char url[GEN_PATH_MAX + 32], folder[GEN_PATH_MAX], want[3 * GEN_PATH_MAX];
    char *argv[32], *path, *link, *html;
    const char *dom, *st = "<div id=\"selftest\"";
    int argc = 1;
    long drawn, hover;
    struct stat sb;
    va_list ap;

    page_make_collection(PER_FOLDER, NASTY_NAME, 2);
    argv[argc++] = "map";
    argv[argc++] = pt.db;
    argv[argc++] = "--html";
    argv[argc++] = pt.page;
    va_start(ap, dims);
    while (argc < 30 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    cr_assert_eq(page_pixvec_argv(argv), 0, "map --html: %s", pt.err);
    cr_assert_eq(stat(pt.page, &sb), 0, "no page written");
    gen_path(folder, pt.dir, "map_files");
    cr_assert_eq(jpgs_in(folder), (size_t)POINTS, "one thumbnail per point");

    html = cli_slurp(pt.page);
    cr_assert_eq(dom_count(html, "<c>"), 0, "a path was written unescaped");
    cr_assert_eq(dom_count(html, "</script>"), 2, "data and script: nothing else closes one");
    free(html);

    snprintf(url, sizeof url, "file://%s#selftest", pt.page);
    {
        const char *flags[] = {"--virtual-time-budget=15000", "--window-size=1200,900",
                               "--dump-dom", NULL};
        cr_assert_eq(page_chromium(url, flags), 0, "chromium: %s", pt.err);
    }
    dom = pt.out;
    cr_assert_eq(dom_attr_long(dom, "<body", "data-points"), POINTS);
    cr_assert_eq(dom_attr_long(dom, "<body", "data-dims"), dims);
    cr_assert_eq(dom_attr_long(dom, st, "data-done"), 1, "the self-test did not finish: %s",
                 dom);
    drawn = dom_attr_long(dom, st, "data-drawn");
    cr_assert_eq(drawn, POINTS, "%ld of %d points drawn", drawn, POINTS);
    cr_assert_lt(dom_attr_long(dom, st, "data-drawn-hidden"), drawn, "hiding a label hid nothing");
    cr_assert_geq(dom_attr_long(dom, st, "data-drawn-hidden"), drawn - PER_FOLDER - 1);
    cr_assert_eq(dom_attr_long(dom, st, "data-drawn-shown"), drawn);
    hover = dom_attr_long(dom, st, "data-hover");
    cr_assert(hover >= 0 && hover < POINTS, "the hover over point 0 found no point (%ld)", hover);
    path = dom_attr(dom, NULL, st, "data-path");
    link = dom_attr(dom, NULL, st, "data-url");
    cr_assert_not_null(path);
    cr_assert_not_null(link);
    cr_assert_eq(strncmp(path, pt.imgs, strlen(pt.imgs)), 0, "card path %s not in %s", path,
                 pt.imgs);
    cr_assert_eq(access(path, R_OK), 0, "card path %s is no file", path);
    file_url(want, sizeof want, path);
    cr_assert_str_eq(link, want);
    free(path);
    free(link);
    {
        char *thumb = dom_attr(dom, NULL, st, "data-thumb");
        cr_assert_not_null(thumb);
        cr_assert_str_eq(thumb, "loaded", "the card's thumbnail: %s", thumb);
        free(thumb);
    }
    cr_assert_gt(dom_attr_long(dom, st, "data-thumb-width"), 0);
    cr_assert_eq(dom_count(dom, "<div id=\"card\" style=\"display: block"), 1,
                 "the hover card is not shown");

    /* The map as a user sees it, the hover card over it. */
    page_screenshot(url, suffix);
}

Test(map_html, umap_page_draws_every_point_and_hovers)
{
    map_and_check("map", 2, "--method", "umap", (char *)NULL);
}

Test(map_html, three_d_page_draws_every_point_and_hovers)
{
    map_and_check("map3d", 3, "--method", "umap", "--dims", "3", (char *)NULL);
}
