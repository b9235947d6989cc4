/*
 * test_dups.c - pv_find_dups (engine/dups.c) on planted sets whose true
 * pairs are known: precision and recall as numbers, exact and approximate
 * (HNSW) modes agreeing, groups that never chain, the train/test leak check
 * (--across), --fraction, and the keep rules (largest, oldest, newest,
 * preferred folder).
 *
 * Pictures are gen_pattern()s; a "family" is one picture and its variants
 * (half size as JPEG, brightness shifted, a 95 % crop, a byte copy), which
 * the pixels embedder scores >= 0.9 with the original; different families
 * score far lower.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "img.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX], dbdir[GEN_PATH_MAX];
static pv_db *db;

static void setup(void)
{
    char err[512];
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(dbdir, dir, "t.pvdb");
    cr_assert_eq(pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    pv_db_close(db);
    db = NULL;
    gen_rmtree(dir);
}

TestSuite(dups, .init = setup, .fini = teardown);

#define W 96
#define H 72

/* Write variant v of family f's picture into folder sub (made if needed) as
 * NAME; v: 0 original PNG, 1 half-size JPEG, 2 brighter PNG, 3 95 % crop
 * PNG, 4 byte copy of the original. Returns the path (static). */
static const char *variant(const char *sub, const char *name, uint32_t f, int v)
{
    static char p[GEN_PATH_MAX];
    char folder[GEN_PATH_MAX];
    uint8_t *px = malloc(W * H * 3), *tmp = malloc(W * H * 3);
    cr_assert(px && tmp);
    gen_path(folder, dir, sub);
    mkdir(folder, 0755);
    gen_path(p, folder, name);
    gen_pattern(W, H, 3, 1000 + f, px);
    switch (v) {
    case 1:
        cr_assert_eq(img_resize_area(px, W, H, 3, tmp, W / 2, H / 2), 0);
        cr_assert_eq(gen_write_jpeg(p, W / 2, H / 2, 3, tmp, 85, 0), 0);
        break;
    case 2:
        for (size_t i = 0; i < W * H * 3; i++)
            tmp[i] = (uint8_t)(px[i] > 235 ? 255 : px[i] + 20);
        cr_assert_eq(gen_write_png(p, W, H, GEN_PNG_RGB, 8, tmp, NULL), 0);
        break;
    case 3: { /* the middle 95 % of each side */
        const uint32_t cw = W * 19 / 20, ch = H * 19 / 20, x0 = (W - cw) / 2, y0 = (H - ch) / 2;
        for (uint32_t y = 0; y < ch; y++)
            memcpy(tmp + (size_t)y * cw * 3, px + ((size_t)(y + y0) * W + x0) * 3, cw * 3);
        cr_assert_eq(gen_write_png(p, cw, ch, GEN_PNG_RGB, 8, tmp, NULL), 0);
        break;
    }
    default:
        cr_assert_eq(gen_write_png(p, W, H, GEN_PNG_RGB, 8, px, NULL), 0);
        break;
    }
    free(px);
    free(tmp);
    return p;
}

static void add_folder(const char *sub)
{
    char p[GEN_PATH_MAX];
    const char *paths[1] = {p};
    pv_add_opts o = {0};
    pv_add_stats st;
    gen_path(p, dir, sub);
    cr_assert_eq(pv_add(db, paths, 1, &o, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.failed, 0);
}

/* The family a planted file belongs to: its name is "fNNN_..." (distractors
 * "xNNN"). -1 for a distractor. */
static int family_of(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return b[0] == 'f' ? atoi(b + 1) : -1;
}

typedef struct pr {
    double precision, recall;
    size_t tp, predicted, truth;
} pr;

/* Pairs inside groups against pairs inside families. Each family has
 * per_family members, so it holds per_family*(per_family-1)/2 true pairs. */
static pr score_pairs(const pv_dups *d, size_t families, size_t per_family)
{
    pr r = {0};
    r.truth = families * per_family * (per_family - 1) / 2;
    for (size_t g = 0; g < d->ngroups; g++) {
        const pv_dup_group *gr = &d->groups[g];
        for (size_t i = 0; i < gr->n; i++)
            for (size_t j = i + 1; j < gr->n; j++) {
                int fa = family_of(gr->members[i].item.path);
                int fb = family_of(gr->members[j].item.path);
                r.predicted++;
                r.tp += fa >= 0 && fa == fb;
            }
    }
    r.precision = r.predicted ? (double)r.tp / (double)r.predicted : 1.0;
    r.recall = r.truth ? (double)r.tp / (double)r.truth : 1.0;
    return r;
}

static void plant(size_t families, size_t distractors)
{
    char name[64];
    for (size_t f = 0; f < families; f++)
        for (int v = 0; v < 4; v++) {
            snprintf(name, sizeof name, "f%03zu_v%d.%s", f, v, v == 1 ? "jpg" : "png");
            variant("set", name, (uint32_t)f, v);
        }
    for (size_t x = 0; x < distractors; x++) {
        snprintf(name, sizeof name, "x%03zu.png", x);
        variant("set", name, (uint32_t)(5000 + x), 0);
    }
    add_folder("set");
}

static void check_groups_are_stars(const pv_dups *d, float thr)
{
    for (size_t g = 0; g < d->ngroups; g++) {
        const pv_dup_group *gr = &d->groups[g];
        float rep[W * H], m[W * H];
        uint32_t dim = 28 * 28;
        cr_assert_eq(pv_embed_file(db, gr->members[0].item.path, rep, dim), 0);
        cr_assert(gr->members[0].keep, "the representative is kept");
        for (size_t i = 1; i < gr->n; i++) {
            double dot = 0;
            cr_assert_eq(pv_embed_file(db, gr->members[i].item.path, m, dim), 0);
            for (uint32_t k = 0; k < dim; k++)
                dot += (double)rep[k] * m[k];
            cr_assert(gr->members[i].exact || dot >= thr - 1e-4,
                      "group %zu member %s scores %.4f with its representative (< %.3f)", g,
                      gr->members[i].item.path, dot, thr);
            cr_assert(gr->members[i].exact || fabs(dot - gr->members[i].score) < 1e-3,
                      "reported score %.4f, recomputed %.4f", gr->members[i].score, dot);
            cr_assert_geq(gr->members[i].score, gr->weakest);
        }
    }
}

Test(dups, planted_set_precision_recall_exact_and_graph, .timeout = 300)
{
    const size_t F = 40, X = 60;
    pv_dups *e = NULL, *a = NULL;
    plant(F, X);
    pv_dups_opts o = {.threshold = 0.9f, .mode = PV_DUPS_EXACT};
    cr_assert_eq(pv_find_dups(db, &o, &e), 0, "%s", pv_db_errmsg(db));
    o.mode = PV_DUPS_APPROX;
    cr_assert_eq(pv_find_dups(db, &o, &a), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(e->approximate, 0);
    cr_assert_eq(a->approximate, 1);
    cr_assert_eq(e->scanned, F * 4 + X);
    pr pe = score_pairs(e, F, 4), pa = score_pairs(a, F, 4);
    cr_log_info("planted: exact P %.3f R %.3f, graph P %.3f R %.3f", pe.precision, pe.recall,
                pa.precision, pa.recall);
    /* Star groups split a family only when a variant is nearer another
     * variant than the original; recall of within-family pairs stays high. */
    cr_assert_geq(pe.precision, 0.99, "exact precision %.3f", pe.precision);
    cr_assert_geq(pe.recall, 0.95, "exact recall %.3f (%zu of %zu)", pe.recall, pe.tp, pe.truth);
    cr_assert_geq(pa.precision, 0.99, "graph precision %.3f", pa.precision);
    cr_assert_geq(pa.recall, 0.95, "graph recall %.3f", pa.recall);
    /* The graph's candidate pairs are the exact scan's (recall of pairs). */
    cr_assert_geq((double)a->pairs, 0.99 * (double)e->pairs, "graph %llu pairs, exact %llu",
                  (unsigned long long)a->pairs, (unsigned long long)e->pairs);
    cr_assert_eq(e->images, a->images);
    cr_assert_eq(e->dropped, e->images - e->ngroups, "one kept per group, no preferred folder");
    check_groups_are_stars(e, 0.9f);
    check_groups_are_stars(a, 0.9f);
    /* The nearest scores agree: the graph finds each image's nearest. */
    size_t same = 0;
    for (uint64_t i = 0; i < e->scanned; i++)
        same += fabsf(e->nn_score[i] - a->nn_score[i]) < 1e-5f;
    cr_assert_geq(same, e->scanned * 99 / 100, "%zu of %llu nearest scores agree", same,
                  (unsigned long long)e->scanned);
    pv_dups_free(e);
    pv_dups_free(a);
}

/* A chain of blends, each link >= t but its ends far apart: union-find
 * would make one group of five; groups around representatives never hold
 * two images below t with their representative. */
Test(dups, chains_are_cut_at_representatives)
{
    uint8_t *p0 = malloc(W * H * 3), *p1 = malloc(W * H * 3), *px = malloc(W * H * 3);
    char folder[GEN_PATH_MAX], path[5][GEN_PATH_MAX];
    float v[5][28 * 28];
    cr_assert(p0 && p1 && px);
    gen_pattern(W, H, 3, 11, p0);
    gen_pattern(W, H, 3, 12, p1);
    gen_path(folder, dir, "chain");
    mkdir(folder, 0755);
    for (int i = 0; i < 5; i++) {
        char name[32];
        double t = i / 4.0;
        for (size_t k = 0; k < W * H * 3; k++)
            px[k] = (uint8_t)lround((1 - t) * p0[k] + t * p1[k]);
        snprintf(name, sizeof name, "c%d.png", i);
        gen_path(path[i], folder, name);
        /* c0 is the largest: the keep rule makes it the first representative. */
        if (i == 0) {
            uint8_t *big = malloc(W * 2 * H * 2 * 3);
            cr_assert_eq(gen_write_png(path[i], W, H, GEN_PNG_RGB, 8, px, NULL), 0);
            gen_pattern(W * 2, H * 2, 3, 11, big);
            cr_assert_eq(gen_write_png(path[i], W * 2, H * 2, GEN_PNG_RGB, 8, big, NULL), 0);
            free(big);
        } else {
            cr_assert_eq(gen_write_png(path[i], W, H, GEN_PNG_RGB, 8, px, NULL), 0);
        }
    }
    add_folder("chain");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(pv_embed_file(db, path[i], v[i], 28 * 28), 0);
    double link = 1, ends = 0;
    for (int i = 0; i < 4; i++) {
        double d = 0;
        for (int k = 0; k < 28 * 28; k++)
            d += (double)v[i][k] * v[i + 1][k];
        link = d < link ? d : link;
    }
    for (int k = 0; k < 28 * 28; k++)
        ends += (double)v[0][k] * v[4][k];
    float thr = (float)link - 1e-4f;
    cr_assert_lt(ends, thr, "the precondition: ends %.4f, weakest link %.4f", ends, link);
    pv_dups *d = NULL;
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.threshold = thr, .mode = PV_DUPS_EXACT}, &d),
                 0);
    cr_assert_geq(d->ngroups, 2, "the chain is cut into %zu groups", d->ngroups);
    check_groups_are_stars(d, thr);
    cr_assert(strstr(d->groups[0].members[0].item.path, "c0.png") ||
              strstr(d->groups[1].members[0].item.path, "c0.png"),
              "the largest image represents its group");
    pv_dups_free(d);
    free(p0);
    free(p1);
    free(px);
}

/* train/ holds 10 pictures (two of them near-copies of each other), test/
 * holds near-copies of 3 train pictures, a byte copy of a fourth, and 5 new
 * pictures. --across reports the 4 leaked test images, nothing inside
 * train/, and never drops a train image. */
Test(dups, across_reports_only_train_test_leaks)
{
    char name[64], a[GEN_PATH_MAX], b[GEN_PATH_MAX];
    for (uint32_t i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "t%02u.png", i);
        variant("train", name, i, 0);
    }
    variant("train", "t00_copy.jpg", 0, 1); /* a dup inside train: not a leak */
    for (uint32_t i = 3; i < 6; i++) {
        snprintf(name, sizeof name, "leak%u.png", i);
        variant("test", name, i, 2);
    }
    variant("test", "bytes7.png", 7, 4);
    for (uint32_t i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "new%u.png", i);
        variant("test", name, 100 + i, 0);
    }
    add_folder("train");
    add_folder("test");
    gen_path(a, dir, "train");
    gen_path(b, dir, "test");
    for (int mode = PV_DUPS_EXACT; mode <= PV_DUPS_APPROX; mode++) {
        pv_dups *d = NULL;
        pv_dups_opts o = {.threshold = 0.9f, .mode = mode, .across_a = a, .across_b = b};
        cr_assert_eq(pv_find_dups(db, &o, &d), 0, "%s", pv_db_errmsg(db));
        cr_assert_eq(d->scanned, 9, "test/ has 9 images");
        cr_assert_eq(d->dropped, 4, "mode %d: %llu leaked test images", mode,
                     (unsigned long long)d->dropped);
        cr_assert_eq(d->ngroups, 4);
        for (size_t g = 0; g < d->ngroups; g++) {
            const pv_dup_group *gr = &d->groups[g];
            cr_assert(strstr(gr->members[0].item.path, "/train/"), "representative from train");
            for (size_t i = 1; i < gr->n; i++) {
                cr_assert(strstr(gr->members[i].item.path, "/test/"), "%s",
                          gr->members[i].item.path);
                cr_assert(!gr->members[i].keep);
                cr_assert(!strstr(gr->members[i].item.path, "/new"));
                if (strstr(gr->members[i].item.path, "bytes7"))
                    cr_assert(gr->members[i].exact && gr->all_exact);
            }
        }
        pv_dups_free(d);
    }
    /* The same folders the other way round, and bad folders. */
    pv_dups *d = NULL;
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.threshold = 0.9f, .across_a = a,
                                                  .across_b = a},
                              &d),
                 PV_EINVAL);
    cr_assert(strstr(pv_db_errmsg(db), "both"), "%s", pv_db_errmsg(db));
    char typo[GEN_PATH_MAX];
    gen_path(typo, dir, "tset");
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.across_a = a, .across_b = typo}, &d),
                 PV_EINVAL, "a folder with no stored image is an error, not 'no leaks'");
    cr_assert(strstr(pv_db_errmsg(db), "tset"), "%s", pv_db_errmsg(db));
}

Test(dups, fraction_picks_the_threshold_that_flags_it)
{
    plant(10, 30);
    for (int mode = PV_DUPS_EXACT; mode <= PV_DUPS_APPROX; mode++) {
        pv_dups *d = NULL;
        pv_dups_opts o = {.fraction = 0.25f, .mode = mode};
        cr_assert_eq(pv_find_dups(db, &o, &d), 0, "%s", pv_db_errmsg(db));
        uint64_t above = 0;
        for (uint64_t i = 0; i < d->scanned; i++)
            above += d->nn_score[i] >= d->threshold;
        /* 70 images: 25 % is 17.5, so 18 flagged (ties may add a few). */
        cr_assert_geq(above, 18, "%llu flagged at %.4f", (unsigned long long)above,
                      d->threshold);
        cr_assert_leq(above, 20);
        cr_assert_geq(d->images, 1);
        pv_dups_free(d);
    }
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.fraction = 1.5f}, &(pv_dups *){NULL}),
                 PV_EINVAL);
}

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

Test(dups, keep_rules_and_preferred_folder)
{
    char p0[GEN_PATH_MAX], p1[GEN_PATH_MAX], p2[GEN_PATH_MAX], pref[GEN_PATH_MAX];
    snprintf(p0, sizeof p0, "%s", variant("k", "f000_orig.png", 0, 0));
    snprintf(p1, sizeof p1, "%s", variant("k", "f000_half.jpg", 0, 1));
    snprintf(p2, sizeof p2, "%s", variant("k/keepme", "f000_crop.png", 0, 3));
    set_mtime(p0, 2000000000);
    set_mtime(p1, 1000000000); /* oldest */
    set_mtime(p2, 1500000000);
    add_folder("k");
    struct {
        int rule;
        const char *kept;
    } cases[] = {{PV_KEEP_LARGEST, p0}, {PV_KEEP_OLDEST, p1}, {PV_KEEP_NEWEST, p0}};
    for (size_t c = 0; c < 3; c++) {
        pv_dups *d = NULL;
        cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.threshold = 0.9f, .keep = cases[c].rule},
                                  &d),
                     0);
        cr_assert_eq(d->ngroups, 1);
        cr_assert_eq(d->groups[0].n, 3);
        cr_assert_str_eq(d->groups[0].members[0].item.path, cases[c].kept, "rule %d", cases[c].rule);
        cr_assert_eq(d->dropped, 2);
        pv_dups_free(d);
    }
    /* A preferred folder's image represents the group. */
    gen_path(pref, dir, "k/keepme");
    pv_dups *d = NULL;
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.threshold = 0.9f, .prefer = pref}, &d), 0);
    cr_assert_str_eq(d->groups[0].members[0].item.path, p2);
    cr_assert_eq(d->dropped, 2);
    pv_dups_free(d);
}

/* 300 images with the same pixels and different bytes (trailing data after
 * the PNG's end): the graph lists only a few dozen of a set of identical
 * vectors, yet the group must hold all 300, in both modes and at
 * threshold 1 (a unit vector's dot with its copy may be 0.99999994). */
Test(dups, a_big_set_of_identical_images_is_one_group, .timeout = 300)
{
    enum { N = 300 };
    char folder[GEN_PATH_MAX], p[GEN_PATH_MAX];
    uint8_t *px = malloc(W * H * 3), *bytes = NULL;
    size_t nb = 0;
    cr_assert_not_null(px);
    gen_path(folder, dir, "same");
    cr_assert_eq(mkdir(folder, 0755), 0);
    gen_pattern(W, H, 3, 4242, px);
    gen_path(p, folder, "orig.png");
    cr_assert_eq(gen_write_png(p, W, H, GEN_PNG_RGB, 8, px, NULL), 0);
    cr_assert_eq(gen_read_bytes(p, &bytes, &nb), 0);
    uint8_t *buf = calloc(1, nb + 16);
    cr_assert_not_null(buf);
    memcpy(buf, bytes, nb);
    for (int i = 1; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "copy%03d.png", i);
        gen_path(p, folder, name);
        memcpy(buf + nb, &i, sizeof i); /* other bytes, same pixels */
        /* The last copy is the biggest file, so the keep rule makes it the
         * representative: inserted last, it is no hub of the graph. */
        cr_assert_eq(gen_write_bytes(p, buf, nb + (i == N - 1 ? 16 : sizeof i)), 0);
    }
    plant(0, 30); /* unrelated pictures around them */
    add_folder("same");
    for (int mode = PV_DUPS_EXACT; mode <= PV_DUPS_APPROX; mode++)
        for (int t = 0; t < 2; t++) {
            pv_dups *d = NULL;
            pv_dups_opts o = {.threshold = t ? 1.0f : 0.99f, .mode = mode};
            cr_assert_eq(pv_find_dups(db, &o, &d), 0, "%s", pv_db_errmsg(db));
            cr_assert_eq(d->ngroups, 1, "mode %d threshold %.2f: %zu groups", mode, o.threshold,
                         d->ngroups);
            cr_assert_eq(d->groups[0].n, N, "mode %d threshold %.2f: %zu of %d in the group",
                         mode, o.threshold, d->groups[0].n, N);
            cr_assert_eq(d->dropped, N - 1);
            pv_dups_free(d);
        }
    free(px);
    free(bytes);
    free(buf);
}
