/*
 * test_recall.c - HNSW against the exact scan on Fashion-MNIST (Debian's
 * dataset-fashion-mnist): the 60,000 train images are the base, test images
 * the queries; recall@10 at the default ef must be at least 0.95.
 *
 * The images are exported to PNG by the fmnist_export tool and added through
 * pv_add, the path a user takes. The export is cached under /tmp between
 * runs. Skipped (with a message) in sanitizer builds, where building the
 * graph takes too long, and where the data set is not installed.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"
#include "pixvec.h"

#ifndef FMNIST_EXPORT_BIN
#error "FMNIST_EXPORT_BIN must name the exporter"
#endif

#define CACHE "/tmp/pixvec-fmnist-png"
#define NQUERIES 1000

static int sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#else
    return 0;
#endif
}

static void export_once(void)
{
    struct stat sb;
    char cmd[512];
    if (stat(CACHE "/complete", &sb) == 0)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf %s && %s %s > /dev/null && touch %s/complete",
             CACHE, FMNIST_EXPORT_BIN, CACHE, CACHE);
    cr_assert_eq(system(cmd), 0, "exporting Fashion-MNIST failed: %s", cmd);
}

/* The first n test images, in a stable order (class folder, then name). */
static int list_queries(char paths[][256], int n)
{
    static const char *const cls[] = {"ankle_boot", "bag", "coat", "dress", "pullover",
                                      "sandal", "shirt", "sneaker", "trouser", "tshirt_top"};
    int got = 0;
    for (int c = 0; c < 10 && got < n; c++) {
        char d[96];
        struct dirent **ents = NULL;
        int ne;
        snprintf(d, sizeof d, CACHE "/test/%s", cls[c]);
        ne = scandir(d, &ents, NULL, alphasort);
        for (int i = 0; i < ne; i++) {
            if (got < n && i < 1 + n / 10 && ents[i]->d_name[0] != '.')
                if ((size_t)snprintf(paths[got], 256, "%s/%.100s", d, ents[i]->d_name) < 256)
                    got++;
            free(ents[i]);
        }
        free(ents);
    }
    return got;
}

Test(recall, hnsw_recall_at_10_on_fashion_mnist, .timeout = 1200)
{
    char dir[GEN_PATH_MAX], dbp[GEN_PATH_MAX], err[512];
    static char queries[NQUERIES][256];
    const char *paths[1] = {CACHE "/train"};
    pv_db *db = NULL;
    pv_add_stats st;
    int nq, found = 0, total = 0;

    if (sanitized())
        cr_skip_test("recall test skipped in the sanitizer build (graph build too slow there)");
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0)
        cr_skip_test("dataset-fashion-mnist is not installed (scripts/setup.sh installs it)");
    export_once();
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(dbp, dir, "fm.pvdb");
    cr_assert_eq(pv_db_create(dbp, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, 60000);
    nq = list_queries(queries, NQUERIES);
    cr_assert_geq(nq, 900);
    for (int q = 0; q < nq; q++) {
        pv_hit *ex = NULL, *ap = NULL;
        size_t nex = 0, nap = 0;
        pv_query_opts exact = {.k = 10, .exact = 1}, hnsw = {.k = 10};
        cr_assert_eq(pv_query_image(db, queries[q], &exact, &ex, &nex), 0);
        cr_assert_eq(pv_query_image(db, queries[q], &hnsw, &ap, &nap), 0);
        cr_assert_eq(nex, 10);
        for (size_t i = 0; i < nap; i++)
            for (size_t j = 0; j < nex; j++)
                found += ap[i].id == ex[j].id;
        total += (int)nex;
        pv_hits_free(ex, nex);
        pv_hits_free(ap, nap);
    }
    {
        double recall = (double)found / total;
        cr_log_info("HNSW recall@10 at ef=64 (M=16, efc=200), %d queries: %.4f", nq, recall);
        printf("recall: HNSW recall@10 at ef=64 over %d Fashion-MNIST queries: %.4f\n", nq, recall);
        cr_assert_geq(recall, 0.95, "recall@10 %.4f below 0.95", recall);
    }
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);
    gen_rmtree(dir);
}
