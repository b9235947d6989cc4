/*
 * test_formats.c - every image format through the whole program, as a user
 * meets it: one picture written as JPEG, PNG, WebP, HEIC, TIFF, GIF and
 * BMP by the tools a user has (libjpeg and libpng through tests/gen.h,
 * cwebp, heif-enc, ImageMagick), plus a broken copy of each. `add` walks
 * the folder by extension, takes the seven good files, reports each broken
 * one by its path and reason and still commits the rest; `info` counts the
 * images per format (recorded from the magic bytes, not the names); `ls`
 * says each item's format; `dups` groups the seven copies of the picture;
 * and pv_thumbnail (what the HTML reports draw) reads every format.
 * The decoders' own tests are in test_img_*.c.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

static cli_fix F;
static void setup(void)
{
    cli_fix_setup(&F);
}
static void teardown(void)
{
    cli_fix_teardown(&F);
}
TestSuite(formats, .init = setup, .fini = teardown);

#define run(...) cli_fix_run(&F, NULL, __VA_ARGS__, (char *)NULL)

/* The tool, or a failure naming the Debian package that has it. */
#define TOOL(name, pkg)                                                                            \
    "command -v " name " >/dev/null || { echo '" name                                              \
    " is missing: scripts/setup.sh installs " pkg "' >&2; exit 1; }; "

static const char *const names[] = {"pic.jpg", "pic.png", "pic.webp", "pic.heic",
                                    "pic.tif", "pic.gif", "pic.bmp"};
static const int kinds[] = {PV_FMT_JPEG, PV_FMT_PNG, PV_FMT_WEBP, PV_FMT_HEIF,
                            PV_FMT_TIFF, PV_FMT_GIF, PV_FMT_BMP};
#define NFMT 7

/* The seven files of one 96x80 picture in F.imgs, and a copy of each cut
 * to half its bytes under broken/. */
static void make_files(void)
{
    char png[GEN_PATH_MAX], jpg[GEN_PATH_MAX], src[GEN_PATH_MAX];
    const uint32_t w = 96, h = 80;
    uint8_t *px = malloc(w * h * 3);
    cr_assert_not_null(px);
    gen_pattern(w, h, 3, 11, px);
    gen_path(png, F.imgs, "pic.png");
    gen_path(jpg, F.imgs, "pic.jpg");
    cr_assert_eq(gen_write_png(png, w, h, GEN_PNG_RGB, 8, px, NULL), 0);
    cr_assert_eq(gen_write_jpeg(jpg, w, h, 3, px, 95, 0), 0);
    free(px);
    /* a copy outside the folder, so the tools' inputs are not added twice */
    gen_path(src, F.dir, "src.png");
    cli_shell("cp '%s' '%s'", png, src);
    cli_shell("cd '%s' && " TOOL("cwebp", "webp") "cwebp -quiet -lossless '%s' -o pic.webp "
                                                  "&& " TOOL(
                                                      "heif-enc",
                                                      "libheif-examples") "heif-enc -q 90 '%s' -o "
                                                                          "pic.heic >/dev/null "
                                                                          "&& " TOOL("convert",
                                                                                     "imagemagick") "convert '%s' pic.tif && convert '%s' pic.gif && "
                                                                                                    "convert '%s' BMP3:pic.bmp && mkdir broken && "
                                                                                                    "for f in pic.*; do head -c $(( $(stat -c %%s $f) / 2 )) $f > broken/cut-$f; done",
              F.imgs, src, src, src, src, src);
}

Test(formats, every_format_added_counted_listed_grouped_and_thumbnailed, .timeout = 120)
{
    make_files();
    cr_assert_eq(run("init", F.db, "--size", "16", "--rgb"), 0, "%s", F.err);
    /* the broken copies fail one by one, named; the good ones are kept */
    cr_assert_eq(run("add", F.db, F.imgs), 1, "%s", F.err);
    for (int i = 0; i < NFMT; i++) {
        char want[64];
        snprintf(want, sizeof want, "cut-%s: ", names[i]);
        cr_assert(strstr(F.err, want), "no failure named %s: %s", want, F.err);
    }
    cr_assert_eq(cli_checked_items(F.db, F.outp, F.errp), NFMT);

    /* info counts per format, from the magic bytes */
    cr_assert_eq(run("info", F.db, "--json"), 0, "%s", F.err);
    json_error_t je;
    json_t *doc = json_loads(F.out, 0, &je);
    cr_assert_not_null(doc, "%s", F.out);
    json_t *fm = json_object_get(doc, "formats");
    for (int i = 0; i < NFMT; i++)
        cr_assert_eq(json_integer_value(json_object_get(fm, pv_format_name(kinds[i]))), 1, "%s: %s",
                     pv_format_name(kinds[i]), F.out);
    cr_assert_eq(json_object_size(fm), NFMT, "%s", F.out);
    json_decref(doc);
    cr_assert_eq(run("info", F.db), 0, "%s", F.err);
    cr_assert(strstr(F.out, "formats   1 JPEG, 1 PNG, 1 WebP, 1 HEIF, 1 TIFF, 1 GIF, 1 BMP\n"),
              "%s", F.out);

    /* ls says each file's format */
    cr_assert_eq(run("ls", F.db, "--json"), 0, "%s", F.err);
    doc = json_loads(F.out, 0, &je);
    cr_assert_not_null(doc, "%s", F.out);
    json_t *it;
    size_t k;
    json_array_foreach(json_object_get(doc, "items"), k, it)
    {
        const char *p = json_string_value(json_object_get(it, "path"));
        const char *f = json_string_value(json_object_get(it, "format"));
        int found = 0;
        for (int i = 0; i < NFMT; i++)
            if (strcmp(strrchr(p, '/') + 1, names[i]) == 0) {
                cr_assert_str_eq(f, pv_format_name(kinds[i]), "%s", p);
                found = 1;
            }
        cr_assert(found, "%s", p);
        /* the size as displayed, whatever the format */
        cr_assert_eq(json_integer_value(json_object_get(it, "width")), 96, "%s", p);
        cr_assert_eq(json_integer_value(json_object_get(it, "height")), 80, "%s", p);
    }
    json_decref(doc);

    /* the same picture seven times: one group of seven (JPEG, lossy HEIC
     * and the GIF's 256 colours are close, not equal) */
    cr_assert_eq(run("dups", F.db, "--threshold", "0.98", "--json"), 0, "%s", F.err);
    doc = json_loads(F.out, 0, &je);
    cr_assert_not_null(doc, "%s", F.out);
    json_t *groups = json_object_get(doc, "groups");
    cr_assert_eq(json_array_size(groups), 1, "%s", F.out);
    cr_assert_eq(json_array_size(json_object_get(json_array_get(groups, 0), "members")), NFMT, "%s",
                 F.out);
    json_decref(doc);

    /* thumbnails, as the HTML reports make them */
    for (int i = 0; i < NFMT; i++) {
        char src[GEN_PATH_MAX], dst[GEN_PATH_MAX], err[512] = "";
        uint32_t sw = 0, sh = 0;
        gen_path(src, F.imgs, names[i]);
        gen_path(dst, F.dir, "thumb.jpg");
        cr_assert_eq(pv_thumbnail(src, 48, 85, dst, &sw, &sh, err, sizeof err), 0, "%s: %s",
                     names[i], err);
        cr_assert(sw == 96 && sh == 80, "%s: %ux%u", names[i], sw, sh);
        struct stat sb;
        cr_assert_eq(stat(dst, &sb), 0);
        cr_assert_gt(sb.st_size, 100);
        unlink(dst);
        /* a broken file: an error naming it, nothing written */
        gen_path(src, F.imgs, "broken");
        char cut[GEN_PATH_MAX + 64];
        snprintf(cut, sizeof cut, "%s/cut-%s", src, names[i]);
        cr_assert_neq(pv_thumbnail(cut, 48, 85, dst, NULL, NULL, err, sizeof err), 0, "%s", cut);
        cr_assert(strstr(err, names[i]), "%s", err);
        cr_assert_neq(access(dst, F_OK), 0);
    }
}
