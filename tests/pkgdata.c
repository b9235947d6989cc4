/*
 * pkgdata.c - the files a Debian package installed, from dpkg's own list
 * (tests only; see pkgdata.h).
 */
#include "pkgdata.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"

static int ends_with(const char *s, const char *suffix, int nocase)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    if (lx > ls)
        return 0;
    return nocase ? strcasecmp(s + ls - lx, suffix) == 0 : strcmp(s + ls - lx, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every readable regular file dpkg lists for pkg, for which keep() says
 * yes, sorted. Fails the test when the package is not installed. */
static size_t list_pkg(const char *pkg, int (*keep)(const char *, const void *),
                       const void *arg, char ***out)
{
    char cmd[512], line[GEN_PATH_MAX];
    char **v = NULL;
    size_t n = 0, cap = 0;
    cr_assert(strspn(pkg, "abcdefghijklmnopqrstuvwxyz0123456789.+-") == strlen(pkg),
              "not a package name: %s", pkg);
    snprintf(cmd, sizeof cmd, "dpkg-query -L '%s' 2>/dev/null", pkg);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run dpkg-query");
    while (fgets(line, sizeof line, p)) {
        struct stat sb;
        line[strcspn(line, "\n")] = '\0';
        if (!keep(line, arg) || stat(line, &sb) != 0 || !S_ISREG(sb.st_mode) ||
            access(line, R_OK) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            v = realloc(v, cap * sizeof *v);
            cr_assert_not_null(v);
        }
        cr_assert_not_null(v[n++] = strdup(line));
    }
    int rc = pclose(p);
    cr_assert_eq(rc, 0, "Debian package %s is not installed: scripts/setup.sh installs it, "
                        "and this test reads its files", pkg);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static int keep_ext(const char *path, const void *arg)
{
    for (const char *const *e = arg; *e; e++)
        if (ends_with(path, *e, 1))
            return 1;
    return 0;
}

static int keep_suffix(const char *path, const void *arg)
{
    return ends_with(path, arg, 0);
}

size_t pkg_files(const char *pkg, const char *const *exts, size_t at_least, char ***out)
{
    size_t n = list_pkg(pkg, keep_ext, exts, out);
    cr_assert_geq(n, at_least,
                  "Debian package %s lists %zu readable %s files, %zu needed: scripts/setup.sh "
                  "installs it; is it damaged?", pkg, n, exts[0], at_least);
    return n;
}

void pkg_file(const char *pkg, const char *suffix, char *out)
{
    char **v = NULL;
    size_t n = list_pkg(pkg, keep_suffix, suffix, &v);
    cr_assert_geq(n, 1, "Debian package %s lists no readable file ending in %s: scripts/setup.sh "
                        "installs it; is it damaged?", pkg, suffix);
    snprintf(out, GEN_PATH_MAX, "%s", v[0]);
    pkg_files_free(v, n);
}

void pkg_files_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
