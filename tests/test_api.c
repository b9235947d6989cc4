/*
 * test_api.c - libpixvec.so exports exactly the functions include/pixvec.h
 * declares (issue 12: it exported 148 functions for 29): every pv_*
 * declaration of the header is a defined dynamic symbol of the library, and
 * no other function is.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif
#ifndef PIXVEC_SHARED_LIB
#error "PIXVEC_SHARED_LIB must name libpixvec.so"
#endif

#define MAXN 256

static int has(char names[][64], int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return 1;
    return 0;
}

/* Names of the functions the header declares: "pv_name(" at the start of a
 * declaration line (after its return type). */
static int header_functions(char names[][64])
{
    FILE *f = fopen(PIXVEC_SRC_DIR "/include/pixvec.h", "r");
    char line[1024];
    int n = 0;
    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f)) {
        if (!islower((unsigned char)line[0]) || strncmp(line, "typedef", 7) == 0)
            continue;
        char *p = strstr(line, "pv_");
        if (!p)
            continue;
        size_t l = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (p[l] != '(' || l >= 64)
            continue;
        cr_assert_lt(n, MAXN);
        memcpy(names[n], p, l);
        names[n][l] = 0;
        n++;
    }
    fclose(f);
    return n;
}

Test(api, shared_library_exports_only_the_header)
{
    static char want[MAXN][64], got[MAXN][64];
    int nw = header_functions(want), ng = 0;
    char line[512];
    cr_assert_geq(nw, 29, "found only %d declarations in pixvec.h", nw);
    FILE *p = popen("nm -D --defined-only '" PIXVEC_SHARED_LIB "'", "r");
    cr_assert_not_null(p);
    while (fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[256];
        if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3)
            continue;
        if (type[0] != 'T' && type[0] != 'W')
            continue; /* data and the like: checked below by name */
        cr_assert(has(want, nw, name), "libpixvec.so exports %s, which pixvec.h does not declare",
                  name);
        cr_assert_lt(ng, MAXN);
        cr_assert_lt(strlen(name), 64); /* has() found it among the header's */
        memcpy(got[ng++], name, strlen(name) + 1);
    }
    cr_assert_eq(pclose(p), 0, "nm failed on " PIXVEC_SHARED_LIB);
    for (int i = 0; i < nw; i++)
        cr_assert(has(got, ng, want[i]), "pixvec.h declares %s, libpixvec.so does not export it",
                  want[i]);
}
