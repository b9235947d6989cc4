/*
 * test_cluster_html.c - `pixvec cluster DB --html FILE` end to end
 * (cli/cluster_html.c): generated pictures in three class folders are added
 * with the pixvec binary, clustered with -k 3, and the page is written and
 * opened in headless Chromium. The DOM it dumps must hold one row per
 * non-empty cluster, largest first, with the sizes `cluster --json` prints
 * (the same run), each row's label mix adding up to its size, and every
 * thumbnail loaded; a file name with '&', '<' and quotes is escaped in the
 * text and percent-encoded in its link.
 *
 * Set PV_REPORT_SCREENSHOT=/some/shot.png to keep a screenshot of the page
 * (as shot-cluster.png).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chromium.h"
#include "cli_run.h"
#include "gen.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

#define NASTY_NAME "a&b <c> \"q\" it's.png"
#define NASTY_URL "a%26b%20%3Cc%3E%20%22q%22%20it%27s.png"
#define NASTY_HTML "a&amp;b &lt;c&gt; &quot;q&quot; it&#39;s.png"
#define SHOW_DEFAULT 12 /* cluster_html.h's CLUSTER_HTML_SHOW */

static char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], db[GEN_PATH_MAX];
static char page[GEN_PATH_MAX], outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
static char *out_text, *err_text;

static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(imgs, dir, "imgs");
    gen_path(db, dir, "t.pvdb");
    gen_path(page, dir, "clusters.html");
    gen_path(outp, dir, "stdout");
    gen_path(errp, dir, "stderr");
    cr_assert_eq(mkdir(imgs, 0755), 0);
}

static void teardown(void)
{
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    gen_rmtree(dir);
}

TestSuite(cluster_html, .init = setup, .fini = teardown, .timeout = 180);

static int pixvec(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;

    argv[argc++] = PIXVEC_BIN;
    argv[argc++] = (char *)first;
    va_start(ap, first);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp), "pixvec", outp, errp,
                    &out_text, &err_text);
}

/* Three folders of per pictures each (seeded gen_picture sets, a different
 * range of seeds a folder) and one more picture under NASTY_NAME in the
 * second; added to a new database and clustered with -k 3. */
static void make_clustered(int per)
{
    static const char *const folders[3] = {"cats", "dogs", "birds"};
    char d[GEN_PATH_MAX], p[GEN_PATH_MAX];

    for (int c = 0; c < 3; c++) {
        gen_path(d, imgs, folders[c]);
        cr_assert_eq(mkdir(d, 0755), 0);
        cr_assert_eq(gen_picture_set(d, "img", per, 64, 48, "png", 1000u * (uint32_t)c + 7), 0);
        if (c == 1)
            cr_assert_eq(gen_picture(d, NASTY_NAME, 1500, 64, 48, p), 0);
    }
    cr_assert_eq(pixvec("init", db, (char *)NULL), 0, "%s", err_text);
    cr_assert_eq(pixvec("add", db, imgs, (char *)NULL), 0, "%s", err_text);
    cr_assert_eq(pixvec("cluster", db, "-k", "3", (char *)NULL), 0, "%s", err_text);
}

static int size_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

Test(cluster_html, one_row_per_cluster_with_sizes_mix_and_thumbnails)
{
    char url[GEN_PATH_MAX + 32], shot[GEN_PATH_MAX], shot_arg[GEN_PATH_MAX + 32];
    char folder[GEN_PATH_MAX];
    long sizes[3], nonempty = 0, thumbs = 0;
    json_error_t je;
    json_t *doc, *arr;
    const char *s, *dom;
    struct stat st;
    size_t i;

    make_clustered(8);
    /* --html beside --json: stdout stays one JSON document. */
    cr_assert_eq(pixvec("cluster", db, "--html", page, "--json", (char *)NULL), 0,
                 "cluster --html: %s", err_text);
    cr_assert_eq(strstr(err_text, "thumbnails could not be made"), NULL, "%s", err_text);
    doc = json_loads(out_text, 0, &je);
    cr_assert_not_null(doc, "cluster --json: %s: %s", je.text, out_text);
    arr = json_object_get(doc, "clusters");
    cr_assert_eq(json_array_size(arr), 3);
    for (i = 0; i < 3; i++) {
        long n = (long)json_integer_value(json_object_get(json_array_get(arr, i), "size"));
        if (n > 0) {
            sizes[nonempty++] = n;
            thumbs += n < SHOW_DEFAULT ? n : SHOW_DEFAULT;
        }
    }
    json_decref(doc);
    qsort(sizes, (size_t)nonempty, sizeof *sizes, size_desc);
    cr_assert_gt(nonempty, 0);

    cr_assert_eq(stat(page, &st), 0, "no page written");
    gen_path(folder, dir, "clusters_files");
    cr_assert_eq(stat(folder, &st), 0, "no thumbnail folder beside the page");
    cr_assert(S_ISDIR(st.st_mode));

    /* "#eager": every thumbnail now; the virtual-time budget lets them load. */
    snprintf(url, sizeof url, "file://%s#eager", page);
    {
        const char *flags[] = {"--virtual-time-budget=15000", "--dump-dom", NULL};
        cr_assert_eq(chromium_run(dir, url, flags, outp, errp, &out_text, &err_text), 0,
                     "chromium: %s", err_text);
    }
    dom = out_text;
    cr_assert_eq(dom_count(dom, "<section class=\"cluster\""), (size_t)nonempty,
                 "%zu rows, cluster --json has %ld non-empty clusters",
                 dom_count(dom, "<section class=\"cluster\""), nonempty);
    cr_assert_eq(dom_attr_long(dom, "<body", "data-clusters"), nonempty);
    /* Rows largest first, with --json's sizes; each row's label mix (three
     * folders: all named, no "other") adds up to its size. */
    s = dom;
    for (long r = 0; r < nonempty; r++) {
        const char *next;
        char *v;
        long mix = 0;
        s = strstr(s, "<section class=\"cluster\"");
        cr_assert_not_null(s);
        v = dom_attr(dom, s, "<section", "data-size");
        cr_assert_not_null(v);
        cr_assert_eq(strtol(v, NULL, 10), sizes[r], "row %ld: size %s, expected %ld", r, v,
                     sizes[r]);
        free(v);
        next = strstr(s + 1, "<section class=\"cluster\"");
        cr_assert_not_null(strstr(s, "class=\"mix\""), "row %ld has no label mix", r);
        for (const char *l = strstr(s, "<span class=\"l\""); l && (!next || l < next);
             l = strstr(l + 1, "<span class=\"l\"")) {
            v = dom_attr(dom, l, "<span", "data-count");
            cr_assert_not_null(v);
            mix += strtol(v, NULL, 10);
            free(v);
        }
        cr_assert_eq(mix, sizes[r], "row %ld: label mix adds up to %ld, not %ld", r, mix,
                     sizes[r]);
        s++;
    }
    cr_assert_geq(dom_count(dom, ">cats <") + dom_count(dom, ">dogs <") +
                      dom_count(dom, ">birds <"),
                  1, "no folder named in any label mix");
    /* Thumbnails: the 12 nearest of each cluster, all loaded. */
    cr_assert_eq(dom_count(dom, "<img class=\"thumb\""), (size_t)thumbs);
    cr_assert_eq(dom_attr_long(dom, "<body", "data-thumbs"), thumbs,
                 "the page's script did not run");
    cr_assert_eq(dom_attr_long(dom, "<body", "data-loaded"), thumbs,
                 "%ld of %ld thumbnails loaded (%ld broken)",
                 dom_attr_long(dom, "<body", "data-loaded"), thumbs,
                 dom_attr_long(dom, "<body", "data-broken"));
    cr_assert_eq(dom_attr_long(dom, "<body", "data-broken"), 0);
    cr_assert_geq(dom_count(dom, "href=\"file:///"), (size_t)thumbs, "thumbnails not linked");

    /* A screenshot, as a user would see the page's top. */
    gen_path(shot, dir, "shot.png");
    snprintf(shot_arg, sizeof shot_arg, "--screenshot=%s", shot);
    snprintf(url, sizeof url, "file://%s#eager", page);
    {
        const char *flags[] = {"--virtual-time-budget=10000", "--window-size=1200,900",
                               shot_arg, NULL};
        cr_assert_eq(chromium_run(dir, url, flags, outp, errp, &out_text, &err_text), 0,
                     "chromium: %s", err_text);
    }
    cr_assert_eq(stat(shot, &st), 0, "no screenshot: %s", err_text);
    cr_assert_gt(st.st_size, 10000, "screenshot is nearly empty");
    chromium_keep_screenshot(shot, "cluster");
}

Test(cluster_html, every_member_shown_and_a_nasty_name_escaped)
{
    char *html;

    make_clustered(4);
    /* --show 100: every member of every cluster, the nasty one included. */
    cr_assert_eq(pixvec("cluster", db, "--html", page, "--show", "100", (char *)NULL), 0,
                 "%s", err_text);
    html = cli_slurp(page);
    cr_assert_eq(dom_count(html, "<img class=\"thumb\""), 13, "4 x 3 + 1 images");
    cr_assert_eq(dom_count(html, NASTY_URL), 1, "file:// link not percent-encoded");
    cr_assert_geq(dom_count(html, NASTY_HTML), 2, "alt text and hover caption");
    cr_assert_eq(dom_count(html, "<c>"), 0, "a path was written unescaped");
    free(html);
}

Test(cluster_html, html_with_of_is_a_usage_error)
{
    char p[GEN_PATH_MAX];

    make_clustered(2);
    gen_path(p, imgs, "cats/img0000.png");
    cr_assert_eq(pixvec("cluster", db, "--of", p, "--html", page, (char *)NULL), 2,
                 "%s", err_text);
    cr_assert_not_null(strstr(err_text, "--html"), "%s", err_text);
}
