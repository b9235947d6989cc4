/*
 * test_report.c - `pixvec dups DB --html FILE` end to end (cli/report.c):
 * a database of planted near-copies and byte copies is made with the pixvec
 * binary, the report is written, and Debian's chromium opens it headless.
 * The DOM chromium dumps (after the page's inline script has counted the
 * thumbnails that loaded) must hold one group section per group of
 * `dups --json`, one thumbnail per image, every thumbnail loaded, as many
 * "drop" marks as images to drop, and a file name with '&', '<' and quotes
 * escaped in the text and percent-encoded in its file:// link.
 *
 * chromium is a test dependency installed by scripts/setup.sh; without it
 * the test fails and says so. Set PV_REPORT_SCREENSHOT=/some/file.png to
 * keep the screenshot the test takes, to look at the page as a user, and
 * PV_CHROMIUM=/path to use another chromium binary.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

/* A file name that breaks naive HTML: '&', '<', '>' and both quotes. */
#define NASTY_NAME "a&b <copy> \"q\" it's.jpg"
#define NASTY_HTML "a&amp;b &lt;copy&gt; &quot;q&quot; it&#39;s.jpg"
/* The same text as chromium serialises a text node: only &, < and > are
 * escaped there, quotes come back as they are. */
#define NASTY_DOM "a&amp;b &lt;copy&gt; \"q\" it's.jpg"
#define NASTY_URL "a%26b%20%3Ccopy%3E%20%22q%22%20it%27s.jpg"

static cli_fix F; /* the folder (F.dir, F.imgs, F.db) and the last run's F.out, F.err */
static char outdir[GEN_PATH_MAX], page[GEN_PATH_MAX];

static void setup(void)
{
    cli_fix_setup(&F);
    gen_path(outdir, F.dir, "out");
    gen_path(page, outdir, "report.html");
    cr_assert_eq(mkdir(outdir, 0755), 0);
}

static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(report, .init = setup, .fini = teardown, .timeout = 180);

/* Run argv[0] (a path, or a name looked up in PATH) with stdout and stderr
 * to files; returns the exit status, 127 if it could not be started. */
static int run_argv(char *const argv[])
{
    return cli_wait(cli_spawn(argv[0], argv, NULL, F.outp, F.errp), argv[0], F.outp,
                    F.errp, &F.out, &F.err);
}

/* Run pixvec with the NULL-terminated arguments (the caller's NULL ends them). */
#define pixvec(...) cli_fix_run(&F, NULL, __VA_ARGS__)

/* ---- the planted collection ------------------------------------------------- */

/* Box-average px (w x h, RGB) down to nw x nh: a resized copy. */
static uint8_t *shrink(const uint8_t *px, uint32_t w, uint32_t h, uint32_t nw,
                       uint32_t nh)
{
    uint8_t *o = malloc((size_t)nw * nh * 3);
    for (uint32_t y = 0; y < nh; y++)
        for (uint32_t x = 0; x < nw; x++)
            for (uint32_t c = 0; c < 3; c++) {
                uint32_t x0 = x * w / nw, x1 = (x + 1) * w / nw;
                uint32_t y0 = y * h / nh, y1 = (y + 1) * h / nh, s = 0, k = 0;
                for (uint32_t yy = y0; yy < y1; yy++)
                    for (uint32_t xx = x0; xx < x1; xx++, k++)
                        s += px[((size_t)yy * w + xx) * 3 + c];
                o[((size_t)y * nw + x) * 3 + c] = (uint8_t)(s / k);
            }
    return o;
}

static void write_jpeg(const char *name, uint32_t w, uint32_t h,
                       const uint8_t *px)
{
    char p[GEN_PATH_MAX];
    cr_assert_not_null(gen_path(p, F.imgs, name));
    cr_assert_eq(gen_write_jpeg(p, w, h, 3, px, 90, 0), 0, "%s", p);
}

static void copy_file(const char *from, const char *to)
{
    char a[GEN_PATH_MAX], b[GEN_PATH_MAX];
    uint8_t *d = NULL;
    size_t n = 0;
    gen_path(a, F.imgs, from);
    gen_path(b, F.imgs, to);
    cr_assert_eq(gen_read_bytes(a, &d, &n), 0);
    cr_assert_eq(gen_write_bytes(b, d, n), 0);
    free(d);
}

/* 3 originals, each with a resized copy, a brighter copy and a byte copy
 * (4 images a group, 12 in groups), and 4 unrelated images. One copy has
 * NASTY_NAME. */
static void make_collection(void)
{
    const uint32_t w = 320, h = 240;
    uint8_t *px = malloc((size_t)w * h * 3);
    for (uint32_t g = 0; g < 3; g++) {
        char name[64], copy[64];
        uint8_t *small;
        gen_pattern(w, h, 3, 100 + 17 * g, px);
        snprintf(name, sizeof name, "orig%u.jpg", g);
        write_jpeg(name, w, h, px);
        small = shrink(px, w, h, 200, 150);
        snprintf(copy, sizeof copy, "small%u.jpg", g);
        write_jpeg(g == 1 ? NASTY_NAME : copy, 200, 150, small);
        free(small);
        for (size_t i = 0; i < (size_t)w * h * 3; i++)
            px[i] = (uint8_t)(px[i] > 255 - 20 ? 255 : px[i] + 20);
        snprintf(copy, sizeof copy, "bright%u.jpg", g);
        write_jpeg(copy, w, h, px);
        snprintf(copy, sizeof copy, "orig%u copy.jpg", g);
        copy_file(name, copy);
    }
    for (uint32_t u = 0; u < 4; u++) {
        char name[64];
        gen_pattern(w, h, 3, 900 + 131 * u, px);
        /* Unrelated in layout as well: half of them upside down. */
        if (u & 1)
            for (size_t i = 0; i < (size_t)w * h * 3 / 2; i++) {
                uint8_t t = px[i];
                px[i] = px[(size_t)w * h * 3 - 1 - i];
                px[(size_t)w * h * 3 - 1 - i] = t;
            }
        snprintf(name, sizeof name, "other%u.jpg", u);
        write_jpeg(name, w, h, px);
    }
    free(px);
    cr_assert_eq(pixvec("init", F.db, (char *)NULL), 0, "%s", F.err);
    cr_assert_eq(pixvec("add", F.db, F.imgs, (char *)NULL), 0, "%s", F.err);
}

/* ---- chromium -------------------------------------------------------------- */

/* chromium's path: $PV_CHROMIUM if set (a test of this very message can
 * point it nowhere), else the first "chromium" on PATH; NULL if none. */
static const char *find_chromium(void)
{
    static char p[GEN_PATH_MAX];
    const char *env = getenv("PV_CHROMIUM"), *path = getenv("PATH");

    if (env != NULL)
        return access(env, X_OK) == 0 ? env : NULL;
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof p - sizeof "/chromium") {
            memcpy(p, path, n);
            memcpy(p + n, "/chromium", sizeof "/chromium");
            if (access(p, X_OK) == 0)
                return p;
        }
        path += n + (path[n] == ':');
    }
    return NULL;
}

/* Run headless chromium on the page with extra (NULL-terminated) flags. */
static int chromium(const char *url, ...)
{
    const char *bin = find_chromium();
    char profile[GEN_PATH_MAX], profile_arg[GEN_PATH_MAX + 32];
    char *argv[32];
    int argc = 0;
    va_list ap;
    const char *a;

    cr_assert_not_null(bin, "chromium is not installed: the report test opens "
                            "the page in headless Chromium; scripts/setup.sh "
                            "installs it (apt-get install chromium)");
    gen_path(profile, F.dir, "chromium-profile");
    snprintf(profile_arg, sizeof profile_arg, "--user-data-dir=%s", profile);
    argv[argc++] = (char *)bin;
    argv[argc++] = "--headless=new";
    argv[argc++] = "--no-sandbox"; /* needed as root; the page is our own */
    argv[argc++] = "--disable-gpu";
    argv[argc++] = "--no-first-run";
    argv[argc++] = "--disable-extensions";
    argv[argc++] = "--disable-background-networking";
    argv[argc++] = "--hide-scrollbars";
    argv[argc++] = profile_arg;
    va_start(ap, url);
    while (argc < 30 && (a = va_arg(ap, const char *)) != NULL)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc++] = (char *)url;
    argv[argc] = NULL;
    return run_argv(argv);
}

/* ---- reading the DOM ----------------------------------------------------------- */

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The value of attr="..." on the <body> element, as a number; -1 if absent. */
static long body_attr(const char *dom, const char *attr)
{
    char key[64];
    const char *body = strstr(dom, "<body"), *end, *p;
    cr_assert_not_null(body, "no <body> in the dumped DOM");
    end = strchr(body, '>');
    snprintf(key, sizeof key, " %s=\"", attr);
    p = strstr(body, key);
    if (p == NULL || p > end)
        return -1;
    return strtol(p + strlen(key), NULL, 10);
}

static json_int_t json_count(json_t *doc, const char *key)
{
    json_t *v = json_object_get(doc, key);
    cr_assert(json_is_integer(v), "dups --json has no integer '%s'", key);
    return json_integer_value(v);
}

Test(report, chromium_renders_every_group_and_thumbnail)
{
    char url[GEN_PATH_MAX + 32], shot[GEN_PATH_MAX], thumbs[GEN_PATH_MAX];
    json_error_t je;
    json_t *doc;
    json_int_t groups, images, to_drop;
    struct stat st;
    char *dom;
    const char *keep;

    make_collection();
    cr_assert_eq(pixvec("dups", F.db, "--json", (char *)NULL), 0, "%s", F.err);
    doc = json_loads(F.out, 0, &je);
    cr_assert_not_null(doc, "dups --json: %s: %s", je.text, F.out);
    groups = json_count(doc, "groups_count");
    images = json_count(doc, "images");
    to_drop = json_count(doc, "to_drop");
    json_decref(doc);
    /* The three planted groups at least; unrelated images may not join. */
    cr_assert_geq(groups, 3, "planted 3 groups, dups found %lld: %s",
                  (long long)groups, F.out);
    cr_assert_geq(images, 12);

    cr_assert_eq(pixvec("dups", F.db, "--html", page, (char *)NULL), 0,
                 "dups --html: %s", F.err);
    cr_assert_eq(stat(page, &st), 0, "no report written");
    gen_path(thumbs, outdir, "report_files");
    cr_assert_eq(stat(thumbs, &st), 0, "no thumbnail folder beside the page");
    cr_assert(S_ISDIR(st.st_mode));

    /* "#eager": every thumbnail is fetched now, not as it scrolls into
     * view, so the count below is of all of them. The virtual-time budget
     * lets the loads finish before the DOM is dumped. */
    snprintf(url, sizeof url, "file://%s#eager", page);
    cr_assert_eq(chromium(url, "--virtual-time-budget=15000", "--dump-dom",
                          (const char *)NULL), 0, "chromium: %s", F.err);
    dom = F.out;
    cr_assert_eq(count_of(dom, "<section class=\"group"), (size_t)groups,
                 "%zu group sections, dups --json says %lld",
                 count_of(dom, "<section class=\"group"), (long long)groups);
    cr_assert_eq(count_of(dom, "<img class=\"thumb\""), (size_t)images,
                 "%zu thumbnails, dups --json says %lld images",
                 count_of(dom, "<img class=\"thumb\""), (long long)images);
    cr_assert_eq(body_attr(dom, "data-thumbs"), (long)images,
                 "the page's script did not run");
    cr_assert_eq(body_attr(dom, "data-loaded"), (long)images,
                 "%ld of %lld thumbnails loaded (%ld broken)",
                 body_attr(dom, "data-loaded"), (long long)images,
                 body_attr(dom, "data-broken"));
    cr_assert_eq(body_attr(dom, "data-broken"), 0);
    cr_assert_eq(count_of(dom, "<figure class=\"drop\""), (size_t)to_drop,
                 "drop marks differ from dups --json's to_drop");
    cr_assert_eq(count_of(dom, "<figure class=\"keep\""),
                 (size_t)(images - to_drop));
    /* Every group's first figure is a kept one (the representative). */
    for (const char *s = strstr(dom, "<section class=\"group"); s;
         s = strstr(s + 1, "<section class=\"group")) {
        const char *fig = strstr(s, "<figure class=\"");
        cr_assert_not_null(fig);
        cr_assert_eq(strncmp(fig, "<figure class=\"keep\"", 20), 0,
                     "a group does not start with its representative kept");
    }
    cr_assert_eq(count_of(dom, "exact duplicates"), 0,
                 "no group here is byte duplicates only");
    cr_assert_geq(count_of(dom, ">exact<"), 3, "byte copies not marked exact");

    /* The nasty name: escaped as text, percent-encoded in the link, and
     * never raw (a raw '<copy>' would have become an element). */
    cr_assert_geq(count_of(dom, NASTY_DOM), 1, "the name is not on the page as text");
    cr_assert_geq(count_of(dom, NASTY_URL), 1, "file:// link not percent-encoded");
    cr_assert_eq(count_of(dom, "<copy>"), 0, "a path was written unescaped");
    cr_assert_eq(count_of(dom, "<copy"), 0, "a path became an element");
    keep = strstr(dom, "href=\"file:///");
    cr_assert_not_null(keep, "no file:// link to an original");
    {
        /* The file as written: every markup character escaped. */
        char *html = cli_slurp(page);
        cr_assert_geq(count_of(html, NASTY_HTML), 2, "caption and alt text");
        cr_assert_eq(count_of(html, "<copy"), 0);
        free(html);
    }

    /* A screenshot, as a user would see the page's top. */
    gen_path(shot, F.dir, "shot.png");
    {
        char shot_arg[GEN_PATH_MAX + 32];
        snprintf(shot_arg, sizeof shot_arg, "--screenshot=%s", shot);
        snprintf(url, sizeof url, "file://%s", page);
        cr_assert_eq(chromium(url, "--virtual-time-budget=10000",
                              "--window-size=1200,900", shot_arg,
                              (const char *)NULL), 0, "chromium: %s", F.err);
    }
    cr_assert_eq(stat(shot, &st), 0, "no screenshot: %s", F.err);
    cr_assert_gt(st.st_size, 10000, "screenshot is nearly empty");
    if (getenv("PV_REPORT_SCREENSHOT") != NULL) {
        uint8_t *d = NULL;
        size_t n = 0;
        cr_assert_eq(gen_read_bytes(shot, &d, &n), 0);
        cr_assert_eq(gen_write_bytes(getenv("PV_REPORT_SCREENSHOT"), d, n), 0);
        free(d);
    }
}

Test(report, missing_original_shows_a_placeholder)
{
    char victim[GEN_PATH_MAX];
    char *html;

    make_collection();
    /* A file removed after it was added: its thumbnail cannot be made, and
     * the page says why in its place instead of failing. */
    gen_path(victim, F.imgs, "bright2.jpg");
    cr_assert_eq(unlink(victim), 0);
    cr_assert_eq(pixvec("dups", F.db, "--html", page, (char *)NULL), 0,
                 "a missing thumbnail is a warning, not a failure: %s", F.err);
    cr_assert_not_null(strstr(F.err, "thumbnails could not be made"),
                       "no warning: %s", F.err);
    cr_assert_not_null(strstr(F.err, "bright2.jpg"), "%s", F.err);
    html = cli_slurp(page);
    cr_assert_gt(strlen(html), 0, "no report written: %s", F.err);
    cr_assert_eq(count_of(html, "class=\"missing\""), 1, "%s", html);
    cr_assert_geq(count_of(html, "No such file"), 1, "the reason is not shown");
    free(html);
}
