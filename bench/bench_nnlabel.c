/*
 * bench_nnlabel.c - embedding quality on Fashion-MNIST (issue 5, item 4b):
 * how often an image's nearest stored neighbour has its label.
 *
 * usage: bench_nnlabel --data DIR --work DIR [--n N] [--queries Q]
 *                      [--embedder pixels|cnn] [--out FILE]
 *
 * The first N train PNGs of DIR (fmnist_export's class folders) go into a
 * fresh database with the embedder; Q test PNGs, evenly spaced over the
 * classes, are queried exactly (k = 1); a hit counts when its folder (the
 * label) is the query's. Prints the rate and the time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "pixvec.h"

static const char *label(const char *path, size_t *len)
{
    const char *e = strrchr(path, '/'), *b = e;
    while (b > path && b[-1] != '/')
        b--;
    *len = (size_t)(e - b);
    return b;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *work = NULL, *emb = "pixels", *out = NULL;
    size_t n = 10000, nq = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--work")) work = v;
        else if (!strcmp(a, "--n")) n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--queries")) nq = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--embedder")) emb = v;
        else if (!strcmp(a, "--out")) out = v;
        else bench_die("usage", "bench_nnlabel --data DIR --work DIR [--n N] [--queries Q] [--embedder E] [--out FILE]");
    }
    if (!data || !work || !n || !nq)
        bench_die("usage", "--data and --work are required");
    char path[4096], err[512];
    bench_list train = {0}, test = {0};
    bench_path_join(path, sizeof path, data, "train");
    bench_find_png(path, &train);
    bench_path_join(path, sizeof path, data, "test");
    bench_find_png(path, &test);
    if (train.n < n || test.n < nq)
        bench_die("not enough PNGs under", data);
    /* Every (train.n / N)-th train file: the list is sorted by class. */
    const char **base = bench_alloc(n * sizeof *base);
    for (size_t i = 0; i < n; i++)
        base[i] = train.s[i * (train.n / n)];
    snprintf(path, sizeof path, "%s/nn-%s.pvdb", work, emb);
    pv_db *db;
    pv_embedder_opts eo = {.name = emb};
    if (pv_db_create(path, &eo, NULL, &db, err, sizeof err) != PV_OK)
        bench_die("pv_db_create", err);
    pv_add_stats st;
    pv_add_opts ao = {0};
    double t0 = bench_now();
    if (pv_add(db, base, n, &ao, &st) != PV_OK || st.added != n)
        bench_die("pv_add", pv_db_errmsg(db));
    double add_s = bench_now() - t0;
    size_t hit = 0, stride = test.n / nq;
    t0 = bench_now();
    for (size_t i = 0; i < nq; i++) {
        pv_hit *h;
        size_t nh, la, lb;
        const char *q = test.s[i * stride];
        if (pv_query_image(db, q, &(pv_query_opts){.k = 1, .exact = 1}, &h, &nh) != PV_OK || nh != 1)
            bench_die("pv_query_image", pv_db_errmsg(db));
        const char *a = label(q, &la), *b = label(h[0].path, &lb);
        hit += la == lb && memcmp(a, b, la) == 0;
        pv_hits_free(h, nh);
    }
    double q_s = bench_now() - t0, rate = (double)hit / (double)nq;
    printf("| %s | %zu | %zu | %.4f | %.1f s (%.0f images/s) | %.1f ms |\n", emb, n, nq, rate, add_s,
           n / add_s, 1000 * q_s / nq);
    if (out) {
        FILE *f = fopen(out, "a");
        if (f) {
            fprintf(f, "%s_nn_label=%.4f\n%s_add_ips=%.1f\n", emb, rate, emb, n / add_s);
            fclose(f);
        }
    }
    pv_db_close(db);
    free(base);
    bench_list_free(&train);
    bench_list_free(&test);
    return 0;
}
