/*
 * test_photo.c - the photo embedder (engine/embed/embed_photo.c) through
 * pv_find_dups and pv_query_image, on a planted set made here from real
 * photographs that scripts/setup.sh installs (lomiri-wallpapers-16.04 and
 * -20.04), their variants made by ImageMagick (setup.sh installs it):
 * every pair inside a reported group is a predicted pair; precision over
 * all of them and recall of original-to-variant pairs per transform family
 * are asserted (0.9; 0.7 for crops off the centre). Then the mirror option, two dark photographs that must not
 * match, and uniform images (photo and pixels).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gen.h"
#include "pixvec.h"
#include "pkgdata.h"

#define NPHOTO 10
/* a path made of dir and a short name */
#define TP (GEN_PATH_MAX + 128)

/* Variant name, its family, ImageMagick arguments (between the input and
 * the output; %s is none). */
static const struct {
    const char *name, *family, *ext, *args;
} VARS[] = {
    {"q30", "re-encode", "jpg", "-quality 30"},
    {"half", "re-encode", "png", "-resize 50%"},
    {"crop80", "crop", "jpg", "-gravity center -crop 89.4%x89.4%+0+0 +repage -quality 90"},
    {"side", "off-centre crop", "jpg", "-gravity east -crop 80%x100%+0+0 +repage -quality 90"},
    {"corner", "off-centre crop", "jpg",
     "-gravity northwest -crop 89.4%x89.4%+0+0 +repage -quality 90"},
    {"rot3", "rotate", "jpg",
     "-distort SRT 3 -gravity center -crop 90%x90%+0+0 +repage -quality 90"},
    {"bright", "tone", "jpg", "-modulate 130 -quality 90"},
    {"contrast", "tone", "jpg", "-brightness-contrast 0x30 -quality 90"},
    {"grey", "tone", "jpg", "-colorspace gray -quality 90"},
    {"blur", "blur", "jpg", "-gaussian-blur 0x1 -quality 90"},
    {"watermark", "watermark", "jpg",
     "-fill '#ffffff80' -font /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf "
     "-pointsize 40 -gravity southeast -annotate +10+10 'pixvec 2026' -quality 90"},
    {"mirror", "mirror", "jpg", "-flop -quality 90"},
};
#define NVAR (sizeof VARS / sizeof VARS[0])

static char dir[GEN_PATH_MAX];
static char origs[NPHOTO][TP];

static void magick(const char *in, const char *args, const char *out)
{
    char cmd[3 * TP];
    snprintf(cmd, sizeof cmd, "convert '%s' %s '%s' 2>&1", in, args, out);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "ImageMagick failed (scripts/setup.sh installs imagemagick): %s", cmd);
}

/* NPHOTO originals (640 px at most) and every variant of each, in dir. */
static void make_set(void)
{
    static const char *const exts[] = {".jpg", NULL};
    char **a = NULL, **b = NULL;
    size_t na = pkg_files("lomiri-wallpapers-16.04", exts, 8, &a);
    size_t nb = pkg_files("lomiri-wallpapers-20.04", exts, 2, &b);
    cr_assert_eq(gen_tmpdir(dir), 0);
    for (int i = 0; i < NPHOTO; i++) {
        /* 16.04's first eight photographs, 20.04's last two (its photos) */
        const char *src = i < 8 ? a[i] : b[nb - (size_t)(NPHOTO - i)];
        cr_assert(i < 8 ? (size_t)i < na : nb >= 2);
        snprintf(origs[i], sizeof origs[i], "%s/p%d.jpg", dir, i);
        magick(src, "-resize '640x640>' -quality 92", origs[i]);
        for (size_t v = 0; v < NVAR; v++) {
            char out[TP];
            snprintf(out, sizeof out, "%s/p%d__%s.%s", dir, i, VARS[v].name, VARS[v].ext);
            magick(origs[i], VARS[v].args, out);
        }
    }
    pkg_files_free(a, na);
    pkg_files_free(b, nb);
}

/* Which photo (group) a path belongs to, and its variant index (-1: the
 * original). */
static int photo_of(const char *path, int *var)
{
    const char *base = strrchr(path, '/');
    int p = -1;
    base = base ? base + 1 : path;
    cr_assert_eq(sscanf(base, "p%d", &p), 1, "%s", path);
    *var = -1;
    for (size_t v = 0; v < NVAR; v++) {
        char tag[64];
        snprintf(tag, sizeof tag, "__%s.", VARS[v].name);
        if (strstr(base, tag))
            *var = (int)v;
    }
    return p;
}

static pv_db *db_of(int no_mirror)
{
    char path[TP], err[512];
    pv_embedder_opts e = {.name = "photo", .no_mirror = no_mirror};
    pv_db *db = NULL;
    const char *const paths[] = {dir};
    pv_add_stats st;
    snprintf(path, sizeof path, "%s/db%d", dir, no_mirror);
    cr_assert_eq(pv_db_create(path, &e, NULL, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(st.added, NPHOTO * (NVAR + 1));
    return db;
}

/* group[photo][var + 1]: the group index of each image, -1 alone. */
static void groups_of(const pv_dups *d, int group[NPHOTO][NVAR + 1], long *tp, long *fp)
{
    for (int p = 0; p < NPHOTO; p++)
        for (size_t v = 0; v <= NVAR; v++)
            group[p][v] = -1;
    *tp = *fp = 0;
    for (size_t g = 0; g < d->ngroups; g++) {
        const pv_dup_group *gr = &d->groups[g];
        for (size_t i = 0; i < gr->n; i++) {
            int vi, pi = photo_of(gr->members[i].item.path, &vi);
            group[pi][vi + 1] = (int)g;
            for (size_t j = i + 1; j < gr->n; j++) {
                int vj, pj = photo_of(gr->members[j].item.path, &vj);
                if (pi == pj)
                    (*tp)++;
                else
                    (*fp)++;
            }
        }
    }
}

Test(photo, planted_set_per_family, .timeout = 600)
{
    make_set();
    pv_db *db = db_of(0);
    pv_dups *d = NULL;
    int group[NPHOTO][NVAR + 1];
    long tp, fp;
    cr_assert_eq(pv_find_dups(db, NULL, &d), 0, "%s", pv_db_errmsg(db));
    groups_of(d, group, &tp, &fp);
    double precision = tp + fp ? (double)tp / (double)(tp + fp) : 0;
    cr_assert_geq(precision, 0.99, "pair precision %.3f (%ld true, %ld false)", precision, tp, fp);
    /* recall of original-to-variant pairs, per family */
    const char *fam[NVAR];
    size_t nfam = 0;
    for (size_t v = 0; v < NVAR; v++) {
        size_t f = 0;
        while (f < nfam && strcmp(fam[f], VARS[v].family) != 0)
            f++;
        if (f == nfam)
            fam[nfam++] = VARS[v].family;
    }
    for (size_t f = 0; f < nfam; f++) {
        int found = 0, all = 0;
        for (size_t v = 0; v < NVAR; v++) {
            if (strcmp(VARS[v].family, fam[f]) != 0)
                continue;
            for (int p = 0; p < NPHOTO; p++) {
                all++;
                found += group[p][0] >= 0 && group[p][0] == group[p][v + 1];
            }
        }
        /* off-centre crops are harder: their candidate vector is centred
         * (bench/README.md measures 0.80-0.97 by kind) */
        double bar = strcmp(fam[f], "off-centre crop") == 0 ? 0.7 : 0.9;
        cr_expect_geq((double)found / all, bar, "%s: recall %d/%d", fam[f], found, all);
    }
    pv_dups_free(d);

    /* query: every image's first hit other than itself is of its photo */
    for (int p = 0; p < NPHOTO; p++)
        for (size_t v = 0; v <= NVAR; v++) {
            char path[TP];
            if (v == 0)
                memcpy(path, origs[p], sizeof path);
            else
                snprintf(path, sizeof path, "%s/p%d__%s.%s", dir, p, VARS[v - 1].name,
                         VARS[v - 1].ext);
            pv_query_opts qo = {.k = 2, .exact = 1};
            pv_hit *h = NULL;
            size_t n = 0;
            cr_assert_eq(pv_query_image(db, path, &qo, &h, &n), 0, "%s", pv_db_errmsg(db));
            cr_assert_eq(n, 2);
            int vv, q = photo_of(strcmp(h[0].path, path) == 0 ? h[1].path : h[0].path, &vv);
            cr_expect_eq(q, p, "query %s: first other hit %s", path, h[1].path);
            pv_hits_free(h, n);
        }
    pv_db_close(db);

    /* --no-mirror: the mirror images stand alone, the rest still match */
    db = db_of(1);
    cr_assert_eq(pv_find_dups(db, NULL, &d), 0, "%s", pv_db_errmsg(db));
    groups_of(d, group, &tp, &fp);
    int mirrored = 0, others = 0;
    for (int p = 0; p < NPHOTO; p++)
        for (size_t v = 0; v < NVAR; v++) {
            int same = group[p][0] >= 0 && group[p][0] == group[p][v + 1];
            if (strcmp(VARS[v].name, "mirror") == 0)
                mirrored += same;
            else
                others += same;
        }
    cr_expect_eq(mirrored, 0, "--no-mirror: %d mirror images still grouped", mirrored);
    cr_expect_geq(others, (int)(0.9 * NPHOTO * (NVAR - 1)), "--no-mirror: %d others grouped",
                  others);
    pv_dups_free(d);
    pv_db_close(db);
    gen_rmtree(dir);
}

/* Two different photographs, both made very dark (a night shot's levels):
 * contrast normalisation must not make them alike. Two uniform frames of
 * one shade group; a black and a white one do not; a photo never scores
 * with a uniform frame. */
static void dark_and_blank(const char *embedder)
{
    static const char *const exts[] = {".jpg", NULL};
    char **a = NULL, d0[TP], d1[TP], path[TP], err[512];
    size_t na = pkg_files("lomiri-wallpapers-16.04", exts, 8, &a);
    cr_assert_eq(gen_tmpdir(dir), 0);
    snprintf(d0, sizeof d0, "%s/dark0.jpg", dir);
    snprintf(d1, sizeof d1, "%s/dark1.jpg", dir);
    magick(a[2], "-resize '640x640>' -modulate 20 -quality 92", d0);
    magick(a[5], "-resize '640x640>' -modulate 20 -quality 92", d1);
    pkg_files_free(a, na);
    static const struct {
        const char *name;
        uint8_t v;
    } flat[] = {{"grey_a.png", 128}, {"grey_b.png", 128}, {"grey_c.png", 129},
                {"black.png", 0}, {"white.png", 255}};
    for (size_t i = 0; i < sizeof flat / sizeof flat[0]; i++) {
        uint8_t px[64 * 48];
        memset(px, flat[i].v, sizeof px);
        snprintf(path, sizeof path, "%s/%s", dir, flat[i].name);
        cr_assert_eq(gen_write_png(path, 64, 48, GEN_PNG_GREY, 8, px, NULL), 0);
    }
    pv_embedder_opts e = {.name = embedder};
    pv_db *db = NULL;
    const char *const paths[] = {dir};
    pv_add_stats st;
    pv_dups *d = NULL;
    snprintf(path, sizeof path, "%s/db", dir);
    cr_assert_eq(pv_db_create(path, &e, NULL, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(pv_find_dups(db, NULL, &d), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(d->ngroups, 1, "%s: %zu groups (want the three greys alone together)",
                 embedder, d->ngroups);
    cr_assert_eq(d->groups[0].n, 3);
    for (size_t i = 0; i < 3; i++)
        cr_expect(strstr(d->groups[0].members[i].item.path, "/grey_"), "%s: %s grouped",
                  embedder, d->groups[0].members[i].item.path);
    pv_dups_free(d);
    pv_db_close(db);
    gen_rmtree(dir);
}

Test(photo, dark_pair_apart_blank_frames_together, .timeout = 120) { dark_and_blank("photo"); }

Test(photo, pixels_blank_frames_together, .timeout = 120) { dark_and_blank("pixels"); }

Test(photo, refuses_pixels_options)
{
    char path[TP], err[512] = "";
    pv_db *db = NULL;
    pv_embedder_opts e = {.name = "photo", .size = 64};
    cr_assert_eq(gen_tmpdir(dir), 0);
    snprintf(path, sizeof path, "%s/db", dir);
    cr_assert_eq(pv_db_create(path, &e, NULL, &db, err, sizeof err), PV_EINVAL);
    cr_expect(strstr(err, "photo"), "%s", err);
    pv_embedder_opts p = {.name = "pixels", .no_mirror = 1};
    cr_assert_eq(pv_db_create(path, &p, NULL, &db, err, sizeof err), PV_EINVAL);
    cr_expect(strstr(err, "mirror"), "%s", err);
    gen_rmtree(dir);
}
