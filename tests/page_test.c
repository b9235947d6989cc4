/*
 * page_test.c - the HTML page tests' scratch, pixvec runs and headless
 * Chromium (page_test.h).
 *
 * The flags are those tests/test_report.c found to work as root on a
 * headless machine: the new headless mode, no sandbox (root), no GPU, no
 * first-run or background traffic, a profile of the test's own.
 */
#include "page_test.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

page_test pt;

void page_test_setup(const char *page_name)
{
    memset(&pt, 0, sizeof pt);
    cr_assert_eq(gen_tmpdir(pt.dir), 0);
    gen_path(pt.imgs, pt.dir, "imgs");
    gen_path(pt.db, pt.dir, "t.pvdb");
    gen_path(pt.page, pt.dir, page_name);
    gen_path(pt.outp, pt.dir, "stdout");
    gen_path(pt.errp, pt.dir, "stderr");
    cr_assert_eq(mkdir(pt.imgs, 0755), 0);
}

void page_test_teardown(void)
{
    free(pt.out);
    free(pt.err);
    pt.out = pt.err = NULL;
    gen_rmtree(pt.dir);
}

int page_pixvec_argv(char **argv)
{
    argv[0] = PIXVEC_BIN;
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, pt.outp, pt.errp), "pixvec", pt.outp,
                    pt.errp, &pt.out, &pt.err);
}

int page_pixvec(const char *first, ...)
{
    char *argv[32];
    int argc = 1;
    va_list ap;

    argv[argc++] = (char *)first;
    va_start(ap, first);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    return page_pixvec_argv(argv);
}

void page_make_collection(int per, const char *extra_name, int extra_in)
{
    static const char *const folders[3] = {"cats", "dogs", "birds"};
    char d[GEN_PATH_MAX], p[GEN_PATH_MAX];

    for (int c = 0; c < 3; c++) {
        gen_path(d, pt.imgs, folders[c]);
        cr_assert_eq(mkdir(d, 0755), 0);
        cr_assert_eq(gen_picture_set(d, "img", per, 64, 48, "png", 1000u * (uint32_t)c + 7), 0);
        if (extra_name != NULL && c == extra_in)
            cr_assert_eq(gen_picture(d, extra_name, 2500, 64, 48, p), 0);
    }
    cr_assert_eq(page_pixvec("init", pt.db, (char *)NULL), 0, "%s", pt.err);
    cr_assert_eq(page_pixvec("add", pt.db, pt.imgs, (char *)NULL), 0, "%s", pt.err);
}

/* $PV_CHROMIUM if set, else the first "chromium" on PATH; NULL if none. */
static const char *chromium_path(void)
{
    static char p[GEN_PATH_MAX];
    const char *env = getenv("PV_CHROMIUM"), *path = getenv("PATH");

    if (env != NULL)
        return access(env, X_OK) == 0 ? env : NULL;
    for (path = path ? path : "/usr/bin:/bin"; *path; path += strcspn(path, ":")) {
        size_t n;
        path += *path == ':';
        n = strcspn(path, ":");
        if (n > 0 && n < sizeof p - sizeof "/chromium") {
            snprintf(p, sizeof p, "%.*s/chromium", (int)n, path);
            if (access(p, X_OK) == 0)
                return p;
        }
    }
    return NULL;
}

int page_chromium(const char *url, const char *const *flags)
{
    static const char *const fixed[] = {
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--disable-background-networking", "--hide-scrollbars"};
    const char *bin = chromium_path();
    char profile[GEN_PATH_MAX], profile_arg[GEN_PATH_MAX + 32];
    char *argv[40];
    size_t argc = 0, i;

    cr_assert_not_null(bin, "chromium is not installed: the HTML page tests open "
                            "the pages in headless Chromium; scripts/setup.sh "
                            "installs it (apt-get install chromium)");
    cr_assert_not_null(gen_path(profile, pt.dir, "chromium-profile"));
    snprintf(profile_arg, sizeof profile_arg, "--user-data-dir=%s", profile);
    argv[argc++] = (char *)bin;
    for (i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[argc++] = (char *)fixed[i];
    argv[argc++] = profile_arg;
    for (i = 0; flags != NULL && flags[i] != NULL; i++) {
        cr_assert_lt(argc, sizeof argv / sizeof *argv - 2, "too many chromium flags");
        argv[argc++] = (char *)flags[i];
    }
    argv[argc++] = (char *)url;
    argv[argc] = NULL;
    return cli_wait(cli_spawn(bin, argv, NULL, pt.outp, pt.errp), "chromium", pt.outp,
                    pt.errp, &pt.out, &pt.err);
}

size_t dom_count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

char *dom_attr(const char *dom, const char *from, const char *tag_start, const char *attr)
{
    const char *tag = strstr(from ? from : dom, tag_start), *end, *p;
    char key[128], *v;
    size_t n, i, o;

    if (tag == NULL || (end = strchr(tag, '>')) == NULL)
        return NULL;
    snprintf(key, sizeof key, " %s=\"", attr);
    p = strstr(tag, key);
    if (p == NULL || p > end)
        return NULL;
    p += strlen(key);
    n = strcspn(p, "\"");
    v = malloc(n + 1);
    cr_assert_not_null(v);
    for (i = 0, o = 0; i < n; o++) {
        static const char *const ent[][2] = {
            {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}};
        size_t e;
        for (e = 0; e < sizeof ent / sizeof *ent; e++)
            if (strncmp(p + i, ent[e][0], strlen(ent[e][0])) == 0)
                break;
        if (e < sizeof ent / sizeof *ent) {
            v[o] = ent[e][1][0];
            i += strlen(ent[e][0]);
        } else {
            v[o] = p[i++];
        }
    }
    v[o] = '\0';
    return v;
}

long dom_attr_long(const char *dom, const char *tag_start, const char *attr)
{
    char *v = dom_attr(dom, NULL, tag_start, attr);
    long r = v != NULL && v[0] != '\0' ? strtol(v, NULL, 10) : -1;

    free(v);
    return r;
}

void page_screenshot(const char *url, const char *suffix)
{
    const char *want = getenv("PV_REPORT_SCREENSHOT"), *dot, *slash;
    char shot[GEN_PATH_MAX], arg[GEN_PATH_MAX + 32], dst[GEN_PATH_MAX];
    const char *flags[] = {"--virtual-time-budget=10000", "--window-size=1200,900", arg, NULL};
    struct stat st;
    uint8_t *d = NULL;
    size_t n = 0;

    gen_path(shot, pt.dir, "shot.png");
    snprintf(arg, sizeof arg, "--screenshot=%s", shot);
    cr_assert_eq(page_chromium(url, flags), 0, "chromium: %s", pt.err);
    cr_assert_eq(stat(shot, &st), 0, "no screenshot: %s", pt.err);
    cr_assert_gt(st.st_size, 10000, "screenshot is nearly empty");
    if (want == NULL || want[0] == '\0')
        return;
    dot = strrchr(want, '.');
    slash = strrchr(want, '/');
    if (dot == NULL || (slash != NULL && dot < slash))
        dot = want + strlen(want);
    snprintf(dst, sizeof dst, "%.*s-%s%s", (int)(dot - want), want, suffix, dot);
    cr_assert_eq(gen_read_bytes(shot, &d, &n), 0);
    cr_assert_eq(gen_write_bytes(dst, d, n), 0, "cannot write %s", dst);
    free(d);
}
