/*
 * test_map.c - maps of a collection through the public API (engine/map.c)
 * and `pixvec map` end to end, on generated images of three classes in
 * class-named folders: a UMAP or t-SNE layout keeps the classes apart, is
 * stored and read back unchanged, images added later are placed beside
 * their class without moving the others, removed ones leave, a seed gives
 * the same map, other parameters make a new one, and the errors are clear.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

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
    gen_path(dbdir, dir, "t.pvdb");
    cr_assert_eq(mkdir(imgs, 0755), 0);
    cr_assert_eq(pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    pv_db_close(db);
    db = NULL;
    gen_rmtree(dir);
}

TestSuite(map, .init = setup, .fini = teardown, .timeout = 120);

static void add_all(void)
{
    const char *paths[1] = {imgs};
    pv_add_stats st;
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.failed, 0);
}

static int class_of(const char *path)
{
    for (int c = 0; c < 3; c++)
        if (strstr(path, GEN_CLASSES[c]))
            return c;
    cr_assert_fail("no class in %s", path);
    return -1;
}

static double dist2(const pv_map *m, size_t a, size_t b)
{
    double s = 0;
    for (int d = 0; d < m->dims; d++) {
        double t = (double)m->points[a].xyz[d] - m->points[b].xyz[d];
        s += t * t;
    }
    return s;
}

/* The fraction of the points among rows [from, m->n) whose nearest other
 * point in the layout is of their own class. */
static double own_class_nearest(const pv_map *m, size_t from)
{
    size_t good = 0;
    for (size_t i = from; i < m->n; i++) {
        size_t best = i == 0 ? 1 : 0;
        for (size_t j = 0; j < m->n; j++)
            if (j != i && dist2(m, i, j) < dist2(m, i, best))
                best = j;
        good += class_of(m->points[i].path) == class_of(m->points[best].path);
    }
    return m->n > from ? (double)good / (double)(m->n - from) : 1.0;
}

static void assert_same_points(const pv_map *a, const pv_map *b)
{
    cr_assert_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert_eq(a->points[i].id, b->points[i].id);
        cr_assert_str_eq(a->points[i].path, b->points[i].path);
        cr_assert(memcmp(a->points[i].xyz, b->points[i].xyz, sizeof a->points[i].xyz) == 0,
                  "point %zu moved: %g,%g vs %g,%g", i, (double)a->points[i].xyz[0],
                  (double)a->points[i].xyz[1], (double)b->points[i].xyz[0],
                  (double)b->points[i].xyz[1]);
    }
}

/* Fit, read back, add, place, read back with the placed ones, remove. */
static void stored_and_placed(int method, int dims)
{
    pv_map_opts o = {.method = method, .dims = dims};
    pv_map *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL, *m5 = NULL;
    gen_class_folders(imgs, 40, 0);
    add_all();

    cr_assert_eq(pv_map_build(db, &o, &m1), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(m1->n, 120);
    cr_assert_eq(m1->method, method);
    cr_assert_eq(m1->dims, dims);
    cr_assert(m1->computed);
    cr_assert_eq(m1->fitted, 120);
    cr_assert_eq(m1->placed, 0);
    for (size_t i = 0; i < m1->n; i++)
        for (int d = 0; d < dims; d++)
            cr_assert(isfinite(m1->points[i].xyz[d]));
    double sep = own_class_nearest(m1, 0);
    cr_assert_geq(sep, 0.95, "only %.3f of the points lie nearest their own class", sep);

    /* Read back: the same points, nothing computed. */
    cr_assert_eq(pv_map_build(db, &o, &m2), 0, "%s", pv_db_errmsg(db));
    cr_assert_not(m2->computed);
    cr_assert_eq(m2->seconds, 0);
    assert_same_points(m1, m2);

    /* 5 more of each class: placed, the stored ones unmoved. */
    gen_class_folders(imgs, 5, 40);
    add_all();
    cr_assert_eq(pv_map_build(db, &o, &m3), 0, "%s", pv_db_errmsg(db));
    cr_assert_not(m3->computed);
    cr_assert_eq(m3->n, 135);
    cr_assert_eq(m3->placed, 15);
    cr_assert_eq(m3->fitted, 120);
    size_t old = 0;
    for (size_t i = 0; i < m3->n; i++) {
        int was = 0;
        for (size_t j = 0; j < m1->n && !was; j++)
            if (m1->points[j].id == m3->points[i].id) {
                cr_assert(memcmp(m1->points[j].xyz, m3->points[i].xyz,
                                 sizeof m1->points[j].xyz) == 0, "a stored point moved");
                was = 1;
            }
        cr_assert_eq(m3->points[i].placed, !was);
        old += was;
    }
    cr_assert_eq(old, 120);
    /* The placed ones (ids after the first 120) lie by their class. */
    sep = own_class_nearest(m3, 120);
    cr_assert_geq(sep, 0.8, "only %.3f of the placed points lie by their own class", sep);

    /* Stored with them: read back as they are. */
    cr_assert_eq(pv_map_build(db, &o, &m4), 0, "%s", pv_db_errmsg(db));
    cr_assert_not(m4->computed);
    cr_assert_eq(m4->placed, 15);
    assert_same_points(m3, m4);

    /* A removed image leaves the map. */
    cr_assert_eq(pv_remove(db, m4->points[7].path), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_map_build(db, &o, &m5), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(m5->n, 134);
    cr_assert_not(m5->computed);
    for (size_t i = 0; i < m5->n; i++)
        cr_assert_neq(m5->points[i].id, m4->points[7].id);
    pv_map_free(m1);
    pv_map_free(m2);
    pv_map_free(m3);
    pv_map_free(m4);
    pv_map_free(m5);
}

Test(map, umap_2d_stored_read_back_and_placed) { stored_and_placed(PV_MAP_UMAP, 2); }

Test(map, tsne_3d_stored_read_back_and_placed) { stored_and_placed(PV_MAP_TSNE, 3); }

Test(map, seed_reproduces_and_new_parameters_recompute)
{
    pv_map *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    gen_class_folders(imgs, 20, 0);
    add_all();
    cr_assert_eq(pv_map_build(db, &(pv_map_opts){.seed = 7}, &a), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_map_build(db, &(pv_map_opts){.seed = 7, .recompute = 1, .threads = 1}, &b),
                 0, "%s", pv_db_errmsg(db));
    cr_assert(b->computed);
    assert_same_points(a, b); /* one thread or all: the same map */
    cr_assert_eq(pv_map_build(db, &(pv_map_opts){.seed = 8}, &c), 0, "%s", pv_db_errmsg(db));
    cr_assert(c->computed, "another seed is another map");
    cr_assert_eq(c->seed, 8);
    int differs = 0;
    for (size_t i = 0; i < a->n; i++)
        differs |= a->points[i].xyz[0] != c->points[i].xyz[0];
    cr_assert(differs);
    cr_assert_eq(pv_map_build(db, &(pv_map_opts){.seed = 8, .n_neighbors = 10}, &d), 0, "%s",
                 pv_db_errmsg(db));
    cr_assert(d->computed);
    cr_assert_eq(d->n_neighbors, 10);
    pv_map_free(a);
    pv_map_free(b);
    pv_map_free(c);
    pv_map_free(d);
}

Test(map, errors_are_clear)
{
    pv_map *m = NULL;
    char err[512];
    pv_db *ro = NULL;
    gen_class_folders(imgs, 1, 0); /* 3 images */
    add_all();
    cr_assert_eq(pv_map_build(db, NULL, &m), PV_EINVAL);
    cr_assert(strstr(pv_db_errmsg(db), "at least 4 images"), "%s", pv_db_errmsg(db));
    cr_assert_null(m);
    cr_assert_eq(pv_map_build(db, &(pv_map_opts){.dims = 4}, &m), PV_EINVAL);
    cr_assert(strstr(pv_db_errmsg(db), "dims"), "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_map_build(db, &(pv_map_opts){.method = 9}, &m), PV_EINVAL);
    gen_class_folders(imgs, 3, 1);
    add_all();
    pv_db_close(db);
    db = NULL;
    cr_assert_eq(pv_db_open(dbdir, PV_OPEN_RDONLY, &ro, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_map_build(ro, NULL, &m), PV_ERDONLY);
    cr_assert(strstr(pv_db_errmsg(ro), "read-only"), "%s", pv_db_errmsg(ro));
    cr_assert_eq(pv_map_build(ro, &(pv_map_opts){.no_store = 1}, &m), 0, "%s",
                 pv_db_errmsg(ro));
    cr_assert_eq(m->n, 12);
    pv_map_free(m);
    pv_db_close(ro);
}

/* ---- the command ------------------------------------------------------------ */

static int run(char *const argv[], char **out, char **err)
{
    char outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
    gen_path(outp, dir, "out.txt");
    gen_path(errp, dir, "err.txt");
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp), "pixvec", outp, errp, out,
                    err);
}

Test(map, command_writes_csv_and_json)
{
    char csv[GEN_PATH_MAX], *out = NULL, *err = NULL;
    json_error_t je;
    gen_class_folders(imgs, 10, 0);
    add_all();
    pv_db_close(db);
    db = NULL;
    gen_path(csv, dir, "map.csv");
    char *a1[] = {"pixvec", "map", dbdir, "--method", "tsne", "--csv", csv, "--json", NULL};
    cr_assert_eq(run(a1, &out, &err), 0, "%s", err);
    json_t *doc = json_loads(out, 0, &je);
    cr_assert_not_null(doc, "%s: %s", je.text, out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "method")), "tsne");
    cr_assert_eq(json_integer_value(json_object_get(doc, "n")), 30);
    cr_assert(json_is_true(json_object_get(doc, "computed")));
    json_t *pts = json_object_get(doc, "points");
    cr_assert_eq(json_array_size(pts), 30);
    const char *lab = json_string_value(json_object_get(json_array_get(pts, 0), "label"));
    cr_assert(lab && (!strcmp(lab, "gradient") || !strcmp(lab, "stripes") || !strcmp(lab, "rings")));
    json_decref(doc);

    char *text = cli_slurp(csv);
    cr_assert(strncmp(text, "id,path,x,y,label,placed\n", 25) == 0, "%.60s", text);
    size_t lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 31);
    free(text);

    /* The second run reads the stored layout back. */
    char *a2[] = {"pixvec", "map", dbdir, "--method", "tsne", NULL};
    cr_assert_eq(run(a2, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "the stored layout of 30 images"), "%s", out);
    char *a3[] = {"pixvec", "map", dbdir, "--method", "pca", NULL};
    cr_assert_eq(run(a3, &out, &err), 2);
    cr_assert(strstr(err, "--method is umap or tsne"), "%s", err);
    char *a4[] = {"pixvec", "map", dbdir, "--color", "cluster", NULL};
    cr_assert_eq(run(a4, &out, &err), 1);
    cr_assert(strstr(err, "no clustering"), "%s", err);
    free(out);
    free(err);
}
