/*
 * test_install.c - `cmake --install` as a user runs it: into a fresh
 * prefix, then the example program (examples/similar.c) built against the
 * installed library with pkg-config alone, run on a database, and the
 * manual page rendered by groff (man-db's) without a warning, with every
 * command of `pixvec help --json` in it.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "gen.h"

#ifndef PIXVEC_BUILD_DIR
#error "PIXVEC_BUILD_DIR must name the build tree"
#endif

/* The AddressSanitizer build's libpixvec.so needs the example built the
 * same way (its runtime must come first). */
#if defined(__SANITIZE_ADDRESS__)
#define EXAMPLE_FLAGS "-fsanitize=address,undefined"
#else
#define EXAMPLE_FLAGS ""
#endif

static cli_fix F;
static void setup(void)
{
    cli_fix_setup(&F);
}
static void teardown(void)
{
    cli_fix_teardown(&F);
}
TestSuite(install, .init = setup, .fini = teardown);

#define run(...) cli_fix_run(&F, NULL, __VA_ARGS__, (char *)NULL)

Test(install, prefix_example_pkg_config_and_man_page, .timeout = 300)
{
    char pre[GEN_PATH_MAX], pics[GEN_PATH_MAX], one[GEN_PATH_MAX], lib[GEN_PATH_MAX];
    gen_path(pre, F.dir, "prefix");
    gen_path(pics, F.dir, "pics");
    cli_shell("cmake --install '%s' --prefix '%s' >'%s' 2>&1", PIXVEC_BUILD_DIR, pre, F.outp);

    /* the files a user expects, where GNUInstallDirs puts them */
    char pc[GEN_PATH_MAX * 2], pcpath[GEN_PATH_MAX];
    cli_shell_line(pcpath, sizeof pcpath, "find '%s' -name pixvec.pc", pre);
    pcpath[strcspn(pcpath, "\n")] = 0;
    snprintf(lib, sizeof lib, "%s", pcpath);
    *strrchr(lib, '/') = 0; /* .../lib/pkgconfig */
    *strrchr(lib, '/') = 0; /* .../lib */
    cli_shell("test -x '%s/bin/pixvec' && test -f '%s/include/pixvec.h' && "
              "test -f '%s/libpixvec.a' && test -L '%s/libpixvec.so' && "
              "test -f '%s/share/man/man1/pixvec.1'",
              pre, pre, lib, lib, pre);
    /* the soname carries the ABI version */
    char so[256];
    cli_shell_line(so, sizeof so,
                   "readelf -d '%s/libpixvec.so' | sed -n 's/.*soname: \\[\\(.*\\)\\]/\\1/p'", lib);
    so[strcspn(so, "\n")] = 0;
    cr_assert_str_eq(so, "libpixvec.so.0");

    /* a database made by the installed binary */
    cr_assert_eq(mkdir(pics, 0755), 0);
    cr_assert_eq(gen_picture_set(pics, "p", 20, 48, 40, "png", 3), 0);
    gen_path(one, pics, "p0007.png");
    cli_shell("'%s/bin/pixvec' init '%s' >/dev/null && '%s/bin/pixvec' add '%s' '%s' --quiet", pre,
              F.db, pre, F.db, pics);

    /* the example, built with pkg-config only (no path into the sources but
     * the example itself), linked to the installed libpixvec.so */
    char ex[GEN_PATH_MAX];
    gen_path(ex, F.dir, "similar");
    cli_shell("%s -std=c11 -Wall -Werror " EXAMPLE_FLAGS " '%s/examples/similar.c' -o '%s' "
              "$(PKG_CONFIG_PATH='%s/pkgconfig' pkg-config --cflags --libs pixvec) "
              "-Wl,-rpath,'%s' 2>'%s'",
              PV_TEST_CC, PIXVEC_SRC_DIR, ex, lib, lib, F.errp);
    cli_shell("ldd '%s' | grep -q '%s/libpixvec.so.0'", ex, lib);
    cli_shell("'%s' '%s' '%s' 3 >'%s'", ex, F.db, one, F.outp);
    char *out = cli_slurp(F.outp);
    cr_assert(strncmp(out, "1.0000  ", 8) == 0 && strstr(out, "p0007.png\n"),
              "the image itself first: %s", out);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 3, "%s", out);
    free(out);

    /* the manual page: groff renders it without a warning, and it holds
     * every command */
    cli_shell("groff -man -Tutf8 -ww -z '%s/share/man/man1/pixvec.1' 2>'%s'", pre, F.errp);
    char *warn = cli_slurp(F.errp);
    cr_assert_str_eq(warn, "", "groff: %s", warn);
    free(warn);
    cr_assert_eq(run("help", "--json"), 0, "%s", F.err);
    json_error_t je;
    json_t *doc = json_loads(F.out, 0, &je), *cmd;
    size_t i;
    cr_assert_not_null(doc, "%s", F.out);
    snprintf(pc, sizeof pc, "%s/share/man/man1/pixvec.1", pre);
    char *man = cli_slurp(pc);
    json_array_foreach(json_object_get(doc, "commands"), i, cmd)
    {
        char want[128] = ".SS \"";
        size_t w = strlen(want);
        for (const char *c = json_string_value(json_object_get(cmd, "name")); *c && w < 120; c++) {
            if (*c == '-') /* roff's minus */
                want[w++] = '\\';
            want[w++] = *c;
        }
        memcpy(want + w, "\"", 2);
        cr_assert(strstr(man, want), "the man page lacks %s", want);
    }
    cr_assert_geq(i, 15);
    free(man);
    json_decref(doc);
}
