/*
 * chromium.c - headless Chromium for the HTML page tests (chromium.h).
 *
 * The flags are those tests/test_report.c found to work as root on a
 * headless machine: the new headless mode, no sandbox (root), no GPU, no
 * first-run or background traffic, a profile of the test's own.
 */
#include "chromium.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"

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

int chromium_run(const char *workdir, const char *url, const char *const *flags,
                 const char *outp, const char *errp, char **out, char **err)
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
    cr_assert_not_null(gen_path(profile, workdir, "chromium-profile"));
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
    return cli_wait(cli_spawn(bin, argv, NULL, outp, errp), "chromium", outp, errp, out,
                    err);
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

void chromium_keep_screenshot(const char *shot, const char *suffix)
{
    const char *want = getenv("PV_REPORT_SCREENSHOT"), *dot, *slash;
    char dst[GEN_PATH_MAX];
    uint8_t *d = NULL;
    size_t n = 0;

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
