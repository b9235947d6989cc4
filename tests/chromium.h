/*
 * chromium.h - opening a page in headless Chromium from a test, and reading
 * the DOM it dumps (tests only; used by test_cluster_html.c and
 * test_map_html.c).
 *
 * Debian's chromium is a test dependency that scripts/setup.sh installs;
 * without it chromium_run fails the calling test and says so. PV_CHROMIUM
 * names another binary. A page's inline script records what a test needs
 * in attributes (data-*), which --dump-dom shows after --virtual-time-budget
 * has let the page's loads finish.
 *
 * Typical use:
 *     chromium_run(dir, url, flags, outp, errp, &out, &err);
 *     long n = dom_attr_long(out, "<body", "data-loaded");
 */
#ifndef PV_TEST_CHROMIUM_H
#define PV_TEST_CHROMIUM_H

#include <stddef.h>

/* Run headless chromium on url with the NULL-terminated extra flags (at
 * most 16), its profile in workdir/chromium-profile, stdout and stderr to
 * outp and errp and back as *out and *err (freed first, may be NULL).
 * Returns the exit status. */
int chromium_run(const char *workdir, const char *url, const char *const *flags,
                 const char *outp, const char *errp, char **out, char **err);

/* Times needle occurs in hay. */
size_t dom_count(const char *hay, const char *needle);

/* The value of attribute attr (e.g. "data-size") in the first start tag of
 * dom that begins with tag_start (e.g. "<body" or "<div id=\"selftest\""),
 * searched from from (NULL: dom's start), malloc'd with the entities &amp;
 * &lt; &gt; &quot; &#39; decoded; NULL if there is no such tag or attribute. */
char *dom_attr(const char *dom, const char *from, const char *tag_start, const char *attr);

/* The same as a number; -1 if absent. */
long dom_attr_long(const char *dom, const char *tag_start, const char *attr);

/* Copy the screenshot at shot to $PV_REPORT_SCREENSHOT with "-" suffix
 * before its extension ("shot.png" -> "shot-map.png"), when that variable
 * is set, so one run keeps every page's picture. */
void chromium_keep_screenshot(const char *shot, const char *suffix);

#endif
