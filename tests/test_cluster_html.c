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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "page_test.h"

#define NASTY_NAME "a&b <c> \"q\" it's.png"
#define NASTY_URL "a%26b%20%3Cc%3E%20%22q%22%20it%27s.png"
#define NASTY_HTML "a&amp;b &lt;c&gt; &quot;q&quot; it&#39;s.png"
#define SHOW_DEFAULT 12 /* cluster_html.h's CLUSTER_HTML_SHOW */

static void setup(void) { page_test_setup("clusters.html"); }

TestSuite(cluster_html, .init = setup, .fini = page_test_teardown, .timeout = 180);

/* per pictures in each of three folders and NASTY_NAME among the dogs,
 * clustered with -k 3. */
static void make_clustered(int per)
{
    page_make_collection(per, NASTY_NAME, 1);
    cr_assert_eq(page_pixvec("cluster", pt.db, "-k", "3", (char *)NULL), 0, "%s", pt.err);
}

static int size_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

Test(cluster_html, one_row_per_cluster_with_sizes_mix_and_thumbnails)
{
    char url[GEN_PATH_MAX + 32], folder[GEN_PATH_MAX];
    long sizes[3], nonempty = 0, thumbs = 0;
    json_error_t je;
    json_t *doc, *arr;
    const char *s, *dom;
    struct stat st;
    size_t i;

    make_clustered(8);
    /* --html beside --json: stdout stays one JSON document. */
    cr_assert_eq(page_pixvec("cluster", pt.db, "--html", pt.page, "--json", (char *)NULL), 0,
                 "cluster --html: %s", pt.err);
    cr_assert_eq(strstr(pt.err, "thumbnails could not be made"), NULL, "%s", pt.err);
    doc = json_loads(pt.out, 0, &je);
    cr_assert_not_null(doc, "cluster --json: %s: %s", je.text, pt.out);
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

    cr_assert_eq(stat(pt.page, &st), 0, "no page written");
    gen_path(folder, pt.dir, "clusters_files");
    cr_assert_eq(stat(folder, &st), 0, "no thumbnail folder beside the page");
    cr_assert(S_ISDIR(st.st_mode));

    /* "#eager": every thumbnail now; the virtual-time budget lets them load. */
    snprintf(url, sizeof url, "file://%s#eager", pt.page);
    {
        const char *flags[] = {"--virtual-time-budget=15000", "--dump-dom", NULL};
        cr_assert_eq(page_chromium(url, flags), 0, "chromium: %s", pt.err);
    }
    dom = pt.out;
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
    page_screenshot(url, "cluster");
}

Test(cluster_html, every_member_shown_and_a_nasty_name_escaped)
{
    char *html;

    make_clustered(4);
    /* --show 100: every member of every cluster, the nasty one included. */
    cr_assert_eq(page_pixvec("cluster", pt.db, "--html", pt.page, "--show", "100", (char *)NULL), 0,
                 "%s", pt.err);
    html = cli_slurp(pt.page);
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
    gen_path(p, pt.imgs, "cats/img0000.png");
    cr_assert_eq(page_pixvec("cluster", pt.db, "--of", p, "--html", pt.page, (char *)NULL), 2,
                 "%s", pt.err);
    cr_assert_not_null(strstr(pt.err, "--html"), "%s", pt.err);
}
