/*
 * test_recall.c - HNSW against the exact scan on Fashion-MNIST (Debian's
 * dataset-fashion-mnist): the 60,000 train images are the base, test images
 * the queries; recall@10 at the default ef must be at least 0.95, and so
 * must the IVF lists' at the default nprobe 8 of 256 (and at nprobe 256,
 * the exact scan's answers).
 *
 * The images are exported to PNG by the fmnist_export tool, from the folder
 * the package's file list names, into the test's own temporary folder (no
 * cache: a run never reads what an earlier one left), and added through
 * pv_add, the path a user takes. Skipped (with a message) in sanitizer
 * builds, where building the graph takes too long; a missing data set fails
 * the test, naming the package (scripts/setup.sh installs it).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"
#include "pixvec.h"
#include "pkgdata.h"

#ifndef FMNIST_EXPORT_BIN
#error "FMNIST_EXPORT_BIN must name the exporter"
#endif

#define NQUERIES 1000

static int sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#else
    return 0;
#endif
}

/* Fashion-MNIST as PNG class folders under out, from dataset-fashion-mnist's
 * files (found by the package's file list: fails naming it when missing). */
static void export_fmnist(const char *out)
{
    char src[GEN_PATH_MAX], cmd[3 * GEN_PATH_MAX];
    pkg_file("dataset-fashion-mnist", "/train-images-idx3-ubyte.gz", src);
    *strrchr(src, '/') = '\0';
    snprintf(cmd, sizeof cmd, "%s '%s' --src '%s' > /dev/null", FMNIST_EXPORT_BIN, out, src);
    cr_assert_eq(system(cmd), 0, "exporting Fashion-MNIST failed: %s", cmd);
}

/* The first n test images under root, in a stable order (class folder,
 * then name). */
static int list_queries(const char *root, char paths[][GEN_PATH_MAX], int n)
{
    static const char *const cls[] = {"ankle_boot", "bag", "coat", "dress", "pullover",
                                      "sandal", "shirt", "sneaker", "trouser", "tshirt_top"};
    int got = 0;
    for (int c = 0; c < 10 && got < n; c++) {
        char d[GEN_PATH_MAX];
        struct dirent **ents = NULL;
        int ne;
        cr_assert_lt((size_t)snprintf(d, sizeof d, "%s/test/%s", root, cls[c]), sizeof d);
        ne = scandir(d, &ents, NULL, alphasort);
        for (int i = 0; i < ne; i++) {
            if (got < n && i < 1 + n / 10 && ents[i]->d_name[0] != '.')
                if ((size_t)snprintf(paths[got], GEN_PATH_MAX, "%s/%s", d, ents[i]->d_name) <
                    GEN_PATH_MAX)
                    got++;
            free(ents[i]);
        }
        free(ents);
    }
    return got;
}

/* Mean recall@10 of opts over the first nq queries against exact[q*10..]. */
static double recall_of(pv_db *db, char queries[][GEN_PATH_MAX], int nq,
                        const uint32_t *exact, pv_query_opts opts)
{
    int found = 0;
    for (int q = 0; q < nq; q++) {
        pv_hit *ap = NULL;
        size_t nap = 0;
        cr_assert_eq(pv_query_image(db, queries[q], &opts, &ap, &nap), 0, "%s",
                     pv_db_errmsg(db));
        for (size_t i = 0; i < nap; i++)
            for (int j = 0; j < 10; j++)
                found += ap[i].id == exact[q * 10 + j];
        pv_hits_free(ap, nap);
    }
    return (double)found / (10.0 * nq);
}

/* One 60k database for both approximate indexes: HNSW (issue 3) and the
 * IVF lists (issue 4), each against the exact scan. */
Test(recall, hnsw_and_ivf_recall_at_10_on_fashion_mnist, .timeout = 1200)
{
    char dir[GEN_PATH_MAX], dbp[GEN_PATH_MAX], fm[GEN_PATH_MAX], train[GEN_PATH_MAX];
    char err[512];
    static char queries[NQUERIES][GEN_PATH_MAX];
    static uint32_t exact[NQUERIES * 10];
    const char *paths[1] = {train};
    pv_db *db = NULL;
    pv_add_stats st;
    int nq;

    if (sanitized())
        cr_skip_test("recall test skipped in the sanitizer build (graph build too slow there)");
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(fm, dir, "fmnist");
    gen_path(train, fm, "train");
    export_fmnist(fm);
    gen_path(dbp, dir, "fm.pvdb");
    cr_assert_eq(pv_db_create(dbp, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, 60000);
    nq = list_queries(fm, queries, NQUERIES);
    cr_assert_geq(nq, 900);
    for (int q = 0; q < nq; q++) {
        pv_hit *ex = NULL;
        size_t nex = 0;
        pv_query_opts o = {.k = 10, .exact = 1, .ids_only = 1};
        cr_assert_eq(pv_query_image(db, queries[q], &o, &ex, &nex), 0);
        cr_assert_eq(nex, 10);
        for (int j = 0; j < 10; j++)
            exact[q * 10 + j] = ex[j].id;
        pv_hits_free(ex, nex);
    }

    double r = recall_of(db, queries, nq, exact, (pv_query_opts){.k = 10});
    cr_log_info("HNSW recall@10 at ef=64 (M=16, efc=200), %d queries: %.4f", nq, r);
    printf("recall: HNSW recall@10 at ef=64 over %d Fashion-MNIST queries: %.4f\n", nq, r);
    cr_assert_geq(r, 0.95, "HNSW recall@10 %.4f below 0.95", r);

    /* IVF with 256 lists: every list probed is the exact scan; the default
     * nprobe, 8, must reach 0.95. */
    pv_cluster_stats cs;
    cr_assert_eq(pv_ivf_train(db, &(pv_cluster_opts){.k = 256}, &cs), 0, "%s",
                 pv_db_errmsg(db));
    cr_assert_eq(cs.items, 60000);
    double all = recall_of(db, queries, 200, exact,
                           (pv_query_opts){.k = 10, .ivf = 1, .nprobe = 256});
    cr_assert_geq(all, 0.999, "IVF at nprobe = nlist: recall %.4f, not the exact scan", all);
    double r8 = recall_of(db, queries, nq, exact, (pv_query_opts){.k = 10, .ivf = 1, .nprobe = 8});
    double r16 = recall_of(db, queries, nq, exact,
                           (pv_query_opts){.k = 10, .ivf = 1, .nprobe = 16});
    printf("recall: IVF nlist=256 recall@10 over %d queries: nprobe 8 %.4f, 16 %.4f, "
           "256 %.4f (200 queries)\n", nq, r8, r16, all);
    cr_assert_geq(r8, 0.95, "IVF recall@10 at nprobe 8: %.4f", r8);
    cr_assert_geq(r16, r8, "more lists probed, lower recall: %.4f < %.4f", r16, r8);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);
    gen_rmtree(dir);
}
