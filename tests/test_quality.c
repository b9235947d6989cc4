/*
 * test_quality.c - the dataset quality report (engine/quality.c) through
 * the public API and `pixvec quality` end to end.
 *
 * Label noise is measured on Fashion-MNIST (Debian's dataset-fashion-mnist,
 * exported to PNG class folders by fmnist_export, as test_recall.c does):
 * 6,000 training images, of which 1 % (or 5 %) chosen by a fixed seed are
 * moved into another class's folder (the original removed, so the moved
 * file is the only copy), ingested with the default pixels embedder; the
 * suspects list must find the planted images (recall) without burying them
 * (precision of the whole list, and of its first |planted| entries, the
 * ones a person reads first). Fashion-MNIST's own classes overlap in pixel
 * space (shirt, t-shirt, pullover, coat): about one image in ten of the
 * clean set has most of its neighbours in another class, which bounds the
 * precision of the whole list; the measured numbers are printed, and the
 * floors asserted sit a little below them.
 *
 * The pixel sections run on generated pictures: a blank, a very dark, a
 * very bright, a tiny and an unreadable image among ordinary ones of three
 * classes, each found in its own list and no ordinary image in any.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "page_test.h"
#include "pixvec.h"
#include "pkgdata.h"

#ifndef FMNIST_EXPORT_BIN
#error "FMNIST_EXPORT_BIN must name the exporter"
#endif
#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

static char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], dbdir[GEN_PATH_MAX];
static pv_db *db;

static void setup(void)
{
    char err[512];
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(imgs, dir, "train");
    gen_path(dbdir, dir, "q.pvdb");
    cr_assert_eq(mkdir(imgs, 0755), 0);
    cr_assert_eq(pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    pv_db_close(db);
    db = NULL;
    gen_rmtree(dir);
}

TestSuite(quality, .init = setup, .fini = teardown, .timeout = 300);

static void add_all(uint64_t want)
{
    const char *paths[1] = {imgs};
    pv_add_stats st;
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(st.added, want);
}

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- label noise on Fashion-MNIST ----------------------------------------- */

static const char *const FM_CLASSES[10] = {"ankle_boot", "bag",     "coat",    "dress",
                                           "pullover",   "sandal",  "shirt",   "sneaker",
                                           "trouser",    "tshirt_top"};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct fm_file {
    int cls;
    char name[256];
} fm_file;

/* Export n training images, then move a fixed-seed choice of round(frac *
 * n) of them into another class's folder (uniform among the other nine) as
 * p_<class>_<name>.png: the prefix marks a planted image and names its true
 * class. Returns how many were planted. */
static int plant(double frac, int n)
{
    char src[GEN_PATH_MAX], cmd[3 * GEN_PATH_MAX], fm[GEN_PATH_MAX];
    fm_file *files = calloc((size_t)n + 16, sizeof *files);
    int nf = 0;
    cr_assert_not_null(files);
    pkg_file("dataset-fashion-mnist", "/train-images-idx3-ubyte.gz", src);
    *strrchr(src, '/') = '\0';
    gen_path(fm, dir, "fm");
    snprintf(cmd, sizeof cmd, "%s '%s' --src '%s' --limit %d > /dev/null", FMNIST_EXPORT_BIN,
             fm, src, n);
    cr_assert_eq(system(cmd), 0, "exporting Fashion-MNIST failed: %s", cmd);
    gen_path(cmd, fm, "train");
    cr_assert_eq(rmdir(imgs), 0);
    cr_assert_eq(rename(cmd, imgs), 0);
    for (int c = 0; c < 10; c++) {
        char d[GEN_PATH_MAX];
        struct dirent **ents = NULL;
        int ne = scandir(gen_path(d, imgs, FM_CLASSES[c]), &ents, NULL, alphasort);
        cr_assert_geq(ne, 0, "%s", d);
        for (int i = 0; i < ne; i++) {
            if (ents[i]->d_name[0] != '.' && nf < n + 16) {
                files[nf].cls = c;
                snprintf(files[nf++].name, sizeof files[0].name, "%s", ents[i]->d_name);
            }
            free(ents[i]);
        }
        free(ents);
    }
    cr_assert_eq(nf, n);
    int m = (int)(frac * n + 0.5);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < m; i++) {
        int pick = i + (int)(rng_next(&s) % (uint64_t)(nf - i));
        fm_file t = files[i];
        files[i] = files[pick];
        files[pick] = t;
        int to = (files[i].cls + 1 + (int)(rng_next(&s) % 9)) % 10;
        char from[GEN_PATH_MAX], dst[GEN_PATH_MAX], name[300];
        char d[GEN_PATH_MAX];
        cr_assert(gen_path(from, gen_path(d, imgs, FM_CLASSES[files[i].cls]), files[i].name));
        cr_assert_lt((size_t)snprintf(name, sizeof name, "p_%s_%s", FM_CLASSES[files[i].cls],
                                      files[i].name), sizeof name);
        cr_assert(gen_path(dst, gen_path(d, imgs, FM_CLASSES[to]), name));
        cr_assert_eq(rename(from, dst), 0, "%s", from);
    }
    free(files);
    return m;
}

static int is_planted(const char *path) { return strncmp(base_of(path), "p_", 2) == 0; }

/* The true class a planted file names: "p_<class>_<name>". */
static int names_class(const char *path, const char *label)
{
    size_t len = strlen(label);
    return strncmp(base_of(path) + 2, label, len) == 0 && base_of(path)[2 + len] == '_';
}

static void label_noise(double frac, double min_recall, double min_precision,
                        double min_prec_at_n)
{
    const int n = 6000;
    pv_quality *q = NULL;
    int planted = plant(frac, n);
    add_all((uint64_t)n);
    cr_assert_eq(pv_quality_report(db, NULL, &q), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(q->items, (size_t)n);
    cr_assert_eq(q->nlabels, 10);
    cr_assert_eq(q->k, 10);
    size_t hits = 0, right = 0, top = 0;
    for (size_t i = 0; i < q->suspects.n; i++) {
        const pv_quality_item *it = &q->suspects.items[i];
        cr_assert(it->vote >= 0.6f - 1e-6f && it->vote <= 1.0f, "%g", (double)it->vote);
        cr_assert(it->suggested && strcmp(it->suggested, it->label) != 0);
        cr_assert(it->score <= it->vote + 1e-6f && it->score >= 0);
        if (i > 0)
            cr_assert(it->score <= q->suspects.items[i - 1].score, "suspects not sorted");
        if (!is_planted(it->path))
            continue;
        hits++;
        right += names_class(it->path, it->suggested);
        top += i < (size_t)planted;
    }
    double recall = (double)hits / planted, precision = q->suspects.n ? (double)hits / q->suspects.n : 0;
    double prec_n = (double)top / planted;
    printf("quality: Fashion-MNIST %d images, %.0f %% planted (%d): %zu suspects, recall %.3f, "
           "precision %.3f, precision of the first %d %.3f, suggested label right for %zu of "
           "%zu found; nn median %.3f, p01 %.3f; %.2f s\n",
           n, 100 * frac, planted, q->suspects.n, recall, precision, planted, prec_n, right, hits,
           (double)q->nn_median, (double)q->nn_p01, q->seconds);
    cr_assert_geq(recall, min_recall);
    cr_assert_geq(precision, min_precision);
    cr_assert_geq(prec_n, min_prec_at_n);
    cr_assert_geq((double)right, 0.75 * (double)hits, "suggested label right for %zu of %zu",
                  right, hits);
    pv_quality_free(q);
}

Test(quality, label_noise_one_percent_on_fashion_mnist)
{
    label_noise(0.01, 0.80, 0.05, 0.45);
}

Test(quality, label_noise_five_percent_on_fashion_mnist)
{
    label_noise(0.05, 0.72, 0.22, 0.55);
}

/* ---- pixel sections on generated images ---------------------------------- */

static char p_blank[GEN_PATH_MAX], p_dark[GEN_PATH_MAX], p_bright[GEN_PATH_MAX],
    p_tiny[GEN_PATH_MAX], p_broken[GEN_PATH_MAX], p_stray[GEN_PATH_MAX], p_copy[GEN_PATH_MAX];

static void grey_png(const char *path, uint8_t lo, uint8_t hi)
{
    uint8_t px[48 * 40];
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 48; x++)
            px[y * 48 + x] = ((x / 8 + y / 8) & 1) ? hi : lo;
    cr_assert_eq(gen_write_png(path, 48, 40, GEN_PNG_GREY, 8, px, NULL), 0, "%s", path);
}

/* Three classes of 10 ordinary pictures, plus: a blank, a dark and a bright
 * picture, a tiny one, one to break after ingest, a picture of class 0 in
 * class 2's folder, and a byte copy of an ordinary picture. 37 images. */
static void make_set(void)
{
    char d[GEN_PATH_MAX], src[GEN_PATH_MAX];
    uint8_t *bytes = NULL;
    size_t nb = 0;
    gen_class_folders(imgs, 10, 0);
    gen_path(d, imgs, GEN_CLASSES[0]);
    grey_png(gen_path(p_blank, d, "blank.png"), 128, 128);
    cr_assert_eq(gen_picture(d, "tiny.png", 99, 12, 12, p_tiny), 0);
    gen_path(d, imgs, GEN_CLASSES[1]);
    grey_png(gen_path(p_dark, d, "dark.png"), 0, 30);
    gen_class_picture(gen_path(p_broken, d, "broken.png"), 1, 7777);
    gen_path(d, imgs, GEN_CLASSES[2]);
    grey_png(gen_path(p_bright, d, "bright.png"), 225, 255);
    gen_class_picture(gen_path(p_stray, d, "stray.png"), 0, 4242);
    gen_path(src, d, "003.png");
    cr_assert_eq(gen_read_bytes(src, &bytes, &nb), 0);
    cr_assert_eq(gen_write_bytes(gen_path(p_copy, d, "copy.png"), bytes, nb), 0);
    free(bytes);
    add_all(37);
    cr_assert_eq(gen_write_bytes(p_broken, "this is not an image any more", 29), 0);
}

/* list holds exactly the one image at path (and no ordinary image). */
static void only(const pv_quality_list *l, const char *path, const char *what)
{
    for (size_t i = 0; i < l->n; i++)
        cr_assert_str_eq(l->items[i].path, path, "%s lists %s", what, l->items[i].path);
    cr_assert_eq(l->n, 1, "%s has %zu images, not 1 (%s)", what, l->n, path);
}

Test(quality, pixel_sections_on_generated_images)
{
    pv_quality *q = NULL;
    make_set();
    cr_assert_eq(pv_quality_report(db, NULL, &q), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(q->items, 37);
    cr_assert_eq(q->nlabels, 3);
    cr_assert_eq(q->decoded, 36);
    cr_assert_eq(q->exact_copies, 1);
    only(&q->blank, p_blank, "blank");
    cr_assert_lt(q->blank.items[0].std, 0.005f);
    only(&q->dark, p_dark, "dark");
    cr_assert(q->dark.items[0].mean > 0.04f && q->dark.items[0].mean < 0.08f, "%g",
              (double)q->dark.items[0].mean);
    only(&q->bright, p_bright, "bright");
    cr_assert_gt(q->bright.items[0].mean, 0.92f);
    only(&q->tiny, p_tiny, "tiny");
    cr_assert_eq(q->tiny.items[0].width, 12);
    cr_assert_eq(q->tiny_below, 20, "half the median shorter side (40) is below 32");
    only(&q->unreadable, p_broken, "unreadable");
    cr_assert_neq(q->unreadable.items[0].err, 0);
    cr_assert(q->unreadable.items[0].reason && q->unreadable.items[0].reason[0]);
    cr_assert_lt(q->unreadable.items[0].mean, 0);
    /* The blank picture's vector is zero (the pixels embedder's flat
     * image): like nothing, it is the first outlier. */
    cr_assert_eq(q->outliers.n, 20);
    cr_assert_str_eq(q->outliers.items[0].path, p_blank);
    for (size_t i = 1; i < q->outliers.n; i++)
        cr_assert_geq(q->outliers.items[i].nn, q->outliers.items[i - 1].nn);
    /* The stray picture: in class 2's folder, looks like class 0. */
    int found = 0;
    for (size_t i = 0; i < q->suspects.n; i++) {
        const pv_quality_item *it = &q->suspects.items[i];
        if (!strcmp(it->path, p_stray)) {
            found = 1;
            cr_assert_str_eq(it->label, GEN_CLASSES[2]);
            cr_assert_str_eq(it->suggested, GEN_CLASSES[0]);
            cr_assert_geq(it->vote, 0.6f);
        }
    }
    cr_assert(found, "the stray picture is not a suspect (%zu suspects)", q->suspects.n);
    pv_quality_free(q);

    /* --no-pixels: nothing decoded, sizes still known. */
    pv_quality_opts o = {.no_pixels = 1, .top = -1};
    cr_assert_eq(pv_quality_report(db, &o, &q), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(q->decoded, 0);
    cr_assert_eq(q->blank.n + q->dark.n + q->bright.n + q->unreadable.n, 0);
    cr_assert_eq(q->tiny.n, 1);
    cr_assert_eq(q->outliers.n, 37, "top < 0 lists every image");
    cr_assert_lt(q->outliers.items[0].mean, 0);
    pv_quality_free(q);
}

Test(quality, options_and_small_collections)
{
    pv_quality *q = NULL;
    pv_quality_opts bad[] = {{.k = 101}, {.k = -1}, {.vote = 0.5f}, {.vote = 1.5f},
                             {.dark_mean = 0.9f, .bright_mean = 0.5f}, {.tiny_side = -3},
                             {.blank_std = 2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(pv_quality_report(db, &bad[i], &q), PV_EINVAL, "option set %zu", i);
        cr_assert_null(q);
        /* The message names the option; the command line adds "quality: " itself. */
        cr_assert(pv_db_errmsg(db)[0] && strncmp(pv_db_errmsg(db), "quality: ", 9) != 0, "%s",
                  pv_db_errmsg(db));
    }
    /* Empty: an empty report. */
    cr_assert_eq(pv_quality_report(db, NULL, &q), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(q->items, 0);
    cr_assert_eq(q->outliers.n + q->suspects.n + q->tiny.n, 0);
    cr_assert_lt(q->nn_median, 0);
    pv_quality_free(q);
    pv_quality_free(NULL);
    /* One folder: no suspects looked for; one image: no neighbour. */
    char one[GEN_PATH_MAX], p[GEN_PATH_MAX];
    cr_assert_eq(mkdir(gen_path(one, imgs, "only"), 0755), 0);
    gen_class_picture(gen_path(p, one, "a.png"), 0, 1);
    add_all(1);
    cr_assert_eq(pv_quality_report(db, NULL, &q), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(q->items, 1);
    cr_assert_eq(q->outliers.n, 0);
    cr_assert_lt(q->nn_median, 0);
    pv_quality_free(q);
    gen_class_picture(gen_path(p, one, "b.png"), 1, 2);
    gen_class_picture(gen_path(p, one, "c.png"), 2, 3);
    add_all(2);
    pv_quality_opts o = {.k = 50};
    cr_assert_eq(pv_quality_report(db, &o, &q), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(q->k, 2, "k is limited by the images there are");
    cr_assert_eq(q->nlabels, 1);
    cr_assert_eq(q->suspects.n, 0);
    cr_assert_eq(q->outliers.n, 3);
    cr_assert(q->nn_p01 <= q->nn_median);
    pv_quality_free(q);
}

/* ---- the command ---------------------------------------------------------- */

static int run(char **argv, char **out, char **err)
{
    char outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
    gen_path(outp, dir, "out.txt");
    gen_path(errp, dir, "err.txt");
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp), "pixvec", outp, errp, out,
                    err);
}

static void same_list(json_t *doc, const char *name, const pv_quality_list *l)
{
    json_t *a = json_object_get(doc, name);
    cr_assert(json_is_array(a), "%s", name);
    cr_assert_eq(json_array_size(a), l->n, "%s: %zu in JSON, %zu from the API", name,
                 json_array_size(a), l->n);
    for (size_t i = 0; i < l->n; i++) {
        json_t *o = json_array_get(a, i);
        cr_assert_eq(json_integer_value(json_object_get(o, "id")), l->items[i].id, "%s[%zu]",
                     name, i);
        cr_assert_str_eq(json_string_value(json_object_get(o, "path")), l->items[i].path);
    }
}

Test(quality, command_json_matches_the_api_and_rejects_bad_arguments)
{
    char *out = NULL, *err = NULL;
    json_error_t je;
    pv_quality *q = NULL;
    make_set();
    pv_db_close(db); /* the command opens it itself */
    db = NULL;
    char *a1[] = {"pixvec", "quality", dbdir, "--json", "--top", "5", NULL};
    cr_assert_eq(run(a1, &out, &err), 0, "%s", err);
    json_t *doc = json_loads(out, 0, &je);
    cr_assert_not_null(doc, "%s: %s", je.text, out);
    char e[512];
    cr_assert_eq(pv_db_open(dbdir, PV_OPEN_RDONLY, &db, e, sizeof e), 0, "%s", e);
    pv_quality_opts o = {.top = 5};
    cr_assert_eq(pv_quality_report(db, &o, &q), 0, "%s", pv_db_errmsg(db));
    cr_assert(json_is_true(json_object_get(doc, "ok")));
    cr_assert_eq(json_integer_value(json_object_get(doc, "items")), 37);
    cr_assert_eq(json_integer_value(json_object_get(doc, "labels")), 3);
    cr_assert_eq(json_integer_value(json_object_get(doc, "decoded")), 36);
    cr_assert_eq(json_integer_value(json_object_get(doc, "exact_copies")), 1);
    cr_assert_eq(json_integer_value(json_object_get(doc, "tiny_below")), 20);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "nn_median")), q->nn_median, 1e-5);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "blank_std")), 0.02, 1e-6);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "dark_mean")), 0.08, 1e-6);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "bright_mean")), 0.92, 1e-6);
    same_list(doc, "outliers", &q->outliers);
    cr_assert_eq(q->outliers.n, 5);
    same_list(doc, "suspects", &q->suspects);
    same_list(doc, "blank", &q->blank);
    same_list(doc, "dark", &q->dark);
    same_list(doc, "bright", &q->bright);
    same_list(doc, "tiny", &q->tiny);
    same_list(doc, "unreadable", &q->unreadable);
    json_t *u = json_array_get(json_object_get(doc, "unreadable"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(u, "reason")), q->unreadable.items[0].reason);
    json_decref(doc);
    pv_quality_free(q);

    /* The text report names each section and the stray picture. */
    char *a2[] = {"pixvec", "quality", dbdir, NULL};
    cr_assert_eq(run(a2, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "label-noise suspects"), "%s", out);
    cr_assert(strstr(out, p_stray) && strstr(out, "looks like gradient"), "%s", out);
    cr_assert(strstr(out, "blank or uniform") && strstr(out, p_blank), "%s", out);
    cr_assert(strstr(out, "unreadable now: 1") && strstr(out, p_broken), "%s", out);
    cr_assert(strstr(out, "byte-identical copies: 1"), "%s", out);

    /* Bad arguments: usage errors (exit status 2) naming the option. */
    char *bad[][6] = {{"pixvec", "quality", dbdir, "--k", "0", NULL},
                      {"pixvec", "quality", dbdir, "--top", "x", NULL},
                      {"pixvec", "quality", dbdir, "--vote", "0.4", NULL},
                      {"pixvec", "quality", dbdir, "--dark", "1.5", NULL},
                      {"pixvec", "quality", dbdir, "--bogus", NULL},
                      {"pixvec", "quality", dbdir, "extra", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(run(bad[i], &out, &err), 2, "%s %s: %s", bad[i][3],
                     bad[i][4] ? bad[i][4] : "", err);
        cr_assert(strstr(err, "usage") || strstr(err, "Usage"), "%s", err);
    }
    free(out);
    free(err);
}

/* ---- the page -------------------------------------------------------------- */

/* `pixvec quality --html`: the page opened in headless chromium (page_test.h)
 * shows a section per list, a figure per image listed, every thumbnail
 * loaded but the unreadable file's, whose box gives the reason. */
Test(quality, html_page_shows_every_section_in_chromium)
{
    char url[GEN_PATH_MAX + 16];
    char *out = NULL, *err = NULL;
    pv_quality *q = NULL;
    uint32_t ids[64];
    size_t nids = 0;
    struct stat st;
    page_test_setup("q.html");
    make_set();
    cr_assert_eq(pv_quality_report(db, NULL, &q), 0, "%s", pv_db_errmsg(db));
    const pv_quality_list *listed[] = {&q->outliers, &q->suspects, &q->blank, &q->dark,
                                       &q->bright,   &q->tiny};
    for (size_t s = 0; s < 6; s++)
        for (size_t i = 0; i < listed[s]->n; i++) {
            size_t k = 0;
            while (k < nids && ids[k] != listed[s]->items[i].id)
                k++;
            if (k == nids && nids < 64)
                ids[nids++] = listed[s]->items[i].id;
        }
    char *a1[] = {"pixvec", "quality", dbdir, "--html", pt.page, NULL};
    cr_assert_eq(run(a1, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "wrote "), "%s", out);
    snprintf(url, sizeof url, "file://%s#eager", pt.page);
    const char *flags[] = {"--virtual-time-budget=10000", "--dump-dom", NULL};
    cr_assert_eq(page_chromium(url, flags), 0, "chromium: %s", pt.err);
    const char *dom = pt.out;
    cr_assert_eq(dom_count(dom, "<section class=\"sec\""), 7, "%s", dom);
    cr_assert_eq(dom_count(dom, "<figure class=\"suspect\""), q->suspects.n);
    cr_assert_eq(dom_count(dom, "<figure class=\"outlier\""), q->outliers.n);
    cr_assert_eq(dom_count(dom, "<figure class=\"unreadable\""), 1);
    cr_assert_eq(dom_attr_long(dom, "<body", "data-thumbs"),
                 (long)(q->outliers.n + q->suspects.n + 4),
                 "one <img> per figure but the unreadable one");
    cr_assert_eq(dom_attr_long(dom, "<body", "data-loaded"),
                 dom_attr_long(dom, "<body", "data-thumbs"), "%ld thumbnails loaded, %ld broken",
                 dom_attr_long(dom, "<body", "data-loaded"),
                 dom_attr_long(dom, "<body", "data-broken"));
    cr_assert_eq(dom_attr_long(dom, "<body", "data-broken"), 0);
    cr_assert(strstr(dom, "looks like <span class=\"lab\">gradient</span>"), "no suspect caption");
    cr_assert(strstr(dom, "stray.png"));
    cr_assert(strstr(dom, q->unreadable.items[0].reason), "the unreadable box has no reason");
    /* One thumbnail file per image listed, made once. */
    for (size_t i = 0; i < nids; i++) {
        char t[GEN_PATH_MAX], name[32];
        snprintf(name, sizeof name, "q_files/%u.jpg", ids[i]);
        cr_assert_eq(stat(gen_path(t, pt.dir, name), &st), 0, "%s", t);
    }
    /* As a user sees it: PV_REPORT_SCREENSHOT=/some/shot.png keeps it as
     * shot-quality.png. */
    snprintf(url, sizeof url, "file://%s", pt.page);
    page_screenshot(url, "quality");
    pv_quality_free(q);
    free(out);
    free(err);
    page_test_teardown();
}
