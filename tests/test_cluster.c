/*
 * test_cluster.c - clustering and IVF lists through the public API on
 * generated images in class-named folders (the ImageFolder convention):
 * k-means finds the classes, `cluster --of` places a new image, the IVF
 * lists follow inserts and removals, retraining replaces them, and the
 * errors (k above the item count, no lists, no clustering) are clear.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen.h"
#include "pixvec.h"

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

TestSuite(cluster, .init = setup, .fini = teardown);

/* The classes of gen_class_folders: "gradient", "stripes", "rings". */
#define CLASSES GEN_CLASSES

static void make_classes(int per, int first) { gen_class_folders(imgs, per, first); }

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
        if (strstr(path, CLASSES[c]))
            return c;
    cr_assert_fail("no class in %s", path);
    return -1;
}

Test(cluster, finds_folder_classes_and_places_new_images)
{
    pv_clustering *cl = NULL;
    pv_cluster_stats st;
    int which;
    make_classes(20, 0);
    add_all();
    cr_assert_eq(pv_cluster_get(db, &cl), PV_ENOTFOUND);
    cr_assert(strstr(pv_db_errmsg(db), "no clustering"), "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_cluster_train(db, &(pv_cluster_opts){.k = 61}, NULL), PV_EINVAL);
    cr_assert(strstr(pv_db_errmsg(db), "more than the 60 images"), "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_cluster_train(db, &(pv_cluster_opts){.k = 0}, NULL), PV_EINVAL);

    cr_assert_eq(pv_cluster_train(db, &(pv_cluster_opts){.k = 3}, &st), 0, "%s",
                 pv_db_errmsg(db));
    cr_assert_eq(st.items, 60);
    cr_assert_eq(pv_cluster_get(db, &cl), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(cl->k, 3);
    cr_assert_eq(cl->items, 60);
    int owner[3] = {-1, -1, -1};
    for (int j = 0; j < 3; j++) {
        const pv_cluster *c = &cl->clusters[j];
        cr_assert_eq(c->n, 20, "cluster %d has %zu images", j, c->n);
        for (size_t i = 0; i < c->n; i++) {
            int k = class_of(c->members[i].path);
            if (i > 0)
                cr_assert_geq(c->members[i].dist2, c->members[i - 1].dist2);
            cr_assert_eq(k, class_of(c->members[0].path), "cluster %d mixes classes", j);
            owner[k] = j;
        }
    }
    pv_clustering_free(cl);

    /* A new image of each class, not in the database, falls in its class's
     * cluster. */
    for (int c = 0; c < 3; c++) {
        char p[GEN_PATH_MAX];
        gen_path(p, dir, "new.png");
        gen_class_picture(p, c, 9000 + (uint32_t)c);
        cr_assert_eq(pv_cluster_of(db, p, &which, NULL), 0, "%s", pv_db_errmsg(db));
        cr_assert_eq(which, owner[c], "a new %s image went to cluster %d", CLASSES[c], which);
    }

    /* Items added after training are assigned when the clustering is read;
     * info reports the stored k. */
    make_classes(5, 100);
    add_all();
    cr_assert_eq(pv_cluster_get(db, &cl), 0);
    cr_assert_eq(cl->items, 75);
    pv_clustering_free(cl);
    pv_info in;
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.cluster_k, 3);
}

/* Exact top-k of a query image, ids only. */
static void top_ids(const char *path, pv_query_opts o, uint32_t *ids, size_t *n)
{
    pv_hit *h = NULL;
    o.ids_only = 1;
    cr_assert_eq(pv_query_image(db, path, &o, &h, n), 0, "%s", pv_db_errmsg(db));
    for (size_t i = 0; i < *n; i++)
        ids[i] = h[i].id;
    pv_hits_free(h, *n);
}

Test(cluster, ivf_lists_follow_inserts_removals_and_retraining)
{
    char q[GEN_PATH_MAX];
    uint32_t a[10], b[10];
    size_t na, nb;
    pv_cluster_stats st;
    pv_info in;
    make_classes(15, 0);
    add_all();
    gen_path(q, imgs, "stripes/003.png");

    pv_hit *h = NULL;
    size_t n = 0;
    cr_assert_eq(pv_query_image(db, q, &(pv_query_opts){.k = 5, .ivf = 1}, &h, &n),
                 PV_ENOTFOUND);
    cr_assert(strstr(pv_db_errmsg(db), "ivf train"), "%s", pv_db_errmsg(db));

    cr_assert_eq(pv_ivf_train(db, &(pv_cluster_opts){.k = 4}, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.ivf_nlist, 4);

    /* Added after training: listed in their own batch. */
    make_classes(5, 50);
    add_all();
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    top_ids(q, (pv_query_opts){.k = 10, .exact = 1}, a, &na);
    top_ids(q, (pv_query_opts){.k = 10, .ivf = 1, .nprobe = 4}, b, &nb);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++)
        cr_assert_eq(a[i], b[i], "rank %zu: exact %u, IVF over every list %u", i, a[i], b[i]);

    /* Removed: never returned, even when it is the query itself. */
    cr_assert_eq(pv_remove(db, q), 0, "%s", pv_db_errmsg(db));
    top_ids(q, (pv_query_opts){.k = 10, .ivf = 1, .nprobe = 4}, b, &nb);
    for (size_t i = 0; i < nb; i++)
        cr_assert_neq(b[i], a[0], "the removed image was returned");

    /* Retraining replaces the lists whole. */
    cr_assert_eq(pv_ivf_train(db, &(pv_cluster_opts){.k = 6, .sample = -1}, &st), 0);
    cr_assert_eq(st.trained, st.items);
    cr_assert_eq(st.items, 59);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.ivf_nlist, 6);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_ivf_train(db, &(pv_cluster_opts){.k = 100}, NULL), PV_EINVAL);
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.ivf_nlist, 6, "a failed retrain changed the lists");
}

/* Vectors of the wrong dimension are refused with the dimensions named, on
 * every search path. */
Test(cluster, dimension_mismatch_is_a_clear_error)
{
    float v[10] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    pv_hit *h = NULL;
    size_t n = 0;
    make_classes(4, 0);
    add_all();
    cr_assert_eq(pv_ivf_train(db, &(pv_cluster_opts){.k = 2}, NULL), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_query_vector(db, v, 10, &(pv_query_opts){.k = 3, .ivf = 1}, &h, &n),
                 PV_EEMBEDDER);
    cr_assert(strstr(pv_db_errmsg(db), "10 dims") && strstr(pv_db_errmsg(db), "784"), "%s",
              pv_db_errmsg(db));
}

/* Every member of one cluster removed after training: `cluster show` lists
 * it empty (it sorted a NULL member array, undefined behaviour that the
 * fuzz target found under UBSan). */
Test(cluster, a_cluster_emptied_by_removals)
{
    pv_clustering *cl = NULL;
    make_classes(4, 0);
    add_all();
    cr_assert_eq(pv_cluster_train(db, &(pv_cluster_opts){.k = 3}, NULL), 0, "%s",
                 pv_db_errmsg(db));
    cr_assert_eq(pv_cluster_get(db, &cl), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(cl->clusters[1].n, 4);
    size_t n = cl->clusters[1].n;
    char **paths = malloc(n * sizeof *paths);
    for (size_t i = 0; i < n; i++)
        paths[i] = strdup(cl->clusters[1].members[i].path);
    pv_clustering_free(cl);
    size_t removed = 0;
    cr_assert_eq(pv_remove_many(db, (const char *const *)paths, n, &removed), 0, "%s",
                 pv_db_errmsg(db));
    cr_assert_eq(removed, n);
    cr_assert_eq(pv_cluster_get(db, &cl), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(cl->clusters[1].n, 0);
    cr_assert_eq(cl->items, 8);
    pv_clustering_free(cl);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}
