/*
 * page_test.h - what the HTML page tests share (tests only; used by
 * test_cluster_html.c and test_map_html.c): a scratch folder with a
 * collection of generated pictures in class folders and a database of them,
 * the pixvec binary run on it, the page opened in headless Chromium, and
 * the DOM Chromium dumps read back.
 *
 * Debian's chromium is a test dependency that scripts/setup.sh installs;
 * without it page_chromium fails the calling test and says so. PV_CHROMIUM
 * names another binary. A page's inline script records what a test needs
 * in attributes (data-*), which --dump-dom shows after --virtual-time-budget
 * has let the page's loads finish.
 *
 * Typical use:
 *     page_make_collection(8, NULL, 0);
 *     page_pixvec("cluster", pt.db, "--html", pt.page, (char *)NULL);
 *     page_chromium(url, flags);
 *     long n = dom_attr_long(pt.out, "<body", "data-loaded");
 */
#ifndef PV_TEST_PAGE_TEST_H
#define PV_TEST_PAGE_TEST_H

#include <stddef.h>

#include "gen.h"

/* One test's scratch: dir (a fresh temporary folder) holds imgs/ (the
 * pictures), t.pvdb, the page and the captured output of the last program
 * run (out, err). */
typedef struct page_test {
    char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], db[GEN_PATH_MAX];
    char page[GEN_PATH_MAX], outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
    char *out, *err;
} page_test;

extern page_test pt;

/* The suite's .init (page named page_name in pt.dir) and .fini. */
void page_test_setup(const char *page_name);
void page_test_teardown(void);

/* Run the pixvec binary with argv[1..] = first, ... (NULL-terminated), or
 * with a whole argv (argv[0] ignored); output in pt.out and pt.err. Returns
 * the exit status. */
int page_pixvec(const char *first, ...);
int page_pixvec_argv(char **argv);

/* The folders cats/, dogs/ and birds/ under pt.imgs with per seeded
 * pictures each (64 x 48 PNG, a different range of seeds a folder), one more
 * picture named extra_name (may be NULL) in folder extra_in (0..2), then
 * `pixvec init` and `pixvec add` into pt.db. */
void page_make_collection(int per, const char *extra_name, int extra_in);

/* Run headless chromium on url with the NULL-terminated extra flags, its
 * profile in pt.dir; output in pt.out and pt.err. Returns the exit status. */
int page_chromium(const char *url, const char *const *flags);

/* Times needle occurs in hay. */
size_t dom_count(const char *hay, const char *needle);

/* The value of attribute attr (e.g. "data-size") in the first start tag of
 * dom that begins with tag_start (e.g. "<body" or "<div id=\"selftest\""),
 * searched from from (NULL: dom's start), malloc'd with the entities &amp;
 * &lt; &gt; &quot; &#39; decoded; NULL if there is no such tag or attribute. */
char *dom_attr(const char *dom, const char *from, const char *tag_start, const char *attr);

/* The same as a number; -1 if absent. */
long dom_attr_long(const char *dom, const char *tag_start, const char *attr);

/* Take a screenshot of url (1200 x 900) and check it is not blank; when
 * $PV_REPORT_SCREENSHOT is set, keep it there with "-" suffix before the
 * extension ("shot.png" -> "shot-map.png"), so one run keeps every page's
 * picture. */
void page_screenshot(const char *url, const char *suffix);

#endif
