/*
 * bench_ivf.c - pixvec's side of the IVF benchmark (issue 4), through the
 * public API on a real database.
 *
 * usage: bench_ivf --data DIR --work DIR [--n N] [--queries Q] [--reps R]
 *                  [--nlist L[,L...]] [--out FILE]
 *
 *   1. pv_db_create + pv_add of the first N train PNGs of DIR.
 *   2. The stored vectors, in id order (pv_items, pv_embed_file), go to
 *      WORK/base.f32; Q test PNGs, evenly spaced over the classes, to
 *      WORK/query.f32; the exact top-10 of each (cblas_sgemm) to
 *      WORK/gt.u32; "N Q dim" to WORK/ishape. Ids are rows of base.f32.
 *   3. For each nlist: pv_ivf_train (timed), then for nprobe 1..64:
 *      recall@10 and queries/s of pv_query_vector (ivf, ids_only) on the
 *      calling thread, median of R passes over the Q queries.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "pixvec.h"

#define K 10
static const int NPROBES[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
#define NNP (int)(sizeof NPROBES / sizeof NPROBES[0])

/* Exact top-K of each query by dot product (rows of base), blocked. */
static void ground_truth(const float *base, size_t n, const float *q, size_t nq,
                         uint32_t dim, uint32_t *gt)
{
    const size_t qb = 64;
    float *s = bench_alloc(qb * n * sizeof *s);
    for (size_t q0 = 0; q0 < nq; q0 += qb) {
        size_t m = nq - q0 < qb ? nq - q0 : qb;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)dim, 1.0f,
                    q + q0 * dim, (int)dim, base, (int)dim, 0.0f, s, (int)n);
        for (size_t i = 0; i < m; i++) {
            float best[K];
            uint32_t *g = gt + (q0 + i) * K;
            int have = 0;
            for (size_t j = 0; j < n; j++) {
                float v = s[i * n + j];
                if (have == K && v <= best[K - 1])
                    continue;
                int p = have < K ? have++ : K - 1;
                while (p > 0 && best[p - 1] < v) {
                    best[p] = best[p - 1];
                    g[p] = g[p - 1];
                    p--;
                }
                best[p] = v;
                g[p] = (uint32_t)j;
            }
        }
    }
    free(s);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *work = NULL, *out = NULL, *lists = "256,1024";
    size_t n = 60000, nq = 1000;
    int reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--work")) work = v;
        else if (!strcmp(a, "--n")) n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--queries")) nq = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--nlist")) lists = v;
        else if (!strcmp(a, "--out")) out = v;
        else bench_die("usage", "bench_ivf --data DIR --work DIR [--n N] [--queries Q] [--reps R] [--nlist L,...] [--out FILE]");
    }
    if (!data || !work || n == 0 || nq == 0 || reps <= 0)
        bench_die("usage", "--data and --work are required; N, Q, R > 0");
    FILE *kv = out ? fopen(out, "w") : NULL;
    if (out && !kv)
        bench_die("cannot write", out);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char path[4096], err[512];

    bench_list train = {0}, test = {0};
    bench_path_join(path, sizeof path, data, "train");
    bench_find_png(path, &train);
    bench_path_join(path, sizeof path, data, "test");
    bench_find_png(path, &test);
    if (train.n < n || test.n < nq)
        bench_die("not enough PNGs under", data);

    /* 1. the database */
    bench_path_join(path, sizeof path, work, "ivf-db");
    pv_db *db;
    if (pv_db_create(path, NULL, NULL, &db, err, sizeof err) != PV_OK)
        bench_die("pv_db_create", err);
    pv_add_stats st;
    pv_add_opts ao = {0};
    if (pv_add(db, (const char *const *)train.s, n, &ao, &st) != PV_OK || st.added != n)
        bench_die("pv_add", pv_db_errmsg(db));
    pv_info info;
    if (pv_db_info(db, &info) != PV_OK)
        bench_die("pv_db_info", pv_db_errmsg(db));
    const uint32_t dim = info.dim;

    /* 2. vectors in id order, queries, ground truth */
    pv_item *items;
    size_t ni;
    if (pv_items(db, &items, &ni) != PV_OK || ni != n)
        bench_die("pv_items", pv_db_errmsg(db));
    float *base = bench_alloc(n * dim * sizeof *base);
    for (size_t i = 0; i < n; i++) {
        if (items[i].id != i)
            bench_die("ids are not dense", items[i].path);
        if (pv_embed_file(db, items[i].path, base + i * dim, dim) != PV_OK)
            bench_die("pv_embed_file", items[i].path);
    }
    pv_items_free(items, ni);
    float *qv = bench_alloc(nq * dim * sizeof *qv);
    size_t stride = test.n / nq;
    for (size_t i = 0; i < nq; i++)
        if (pv_embed_file(db, test.s[i * stride], qv + i * dim, dim) != PV_OK)
            bench_die("pv_embed_file", test.s[i * stride]);
    uint32_t *gt = bench_alloc(nq * K * sizeof *gt);
    ground_truth(base, n, qv, nq, dim, gt);
    bench_write_file(work, "base.f32", base, n * dim * sizeof *base);
    bench_write_file(work, "query.f32", qv, nq * dim * sizeof *qv);
    bench_write_file(work, "gt.u32", gt, nq * K * sizeof *gt);
    bench_path_join(path, sizeof path, work, "ishape");
    FILE *f = fopen(path, "w");
    if (!f)
        bench_die("cannot write", path);
    fprintf(f, "%zu %zu %u\n", n, nq, dim);
    fclose(f);

    /* 3. per nlist: train, then the nprobe sweep */
    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    printf("## pixvec IVF: %zu vectors of %u-d, %zu queries, k=%d (%s, %d cores)\n\n", n, dim,
           nq, K, cpu, ncpu);
    double *rt = bench_alloc((size_t)reps * sizeof *rt);
    for (const char *p = lists; *p;) {
        int nlist = atoi(p);
        while (*p && *p != ',')
            p++;
        if (*p == ',')
            p++;
        pv_cluster_opts co = {.k = nlist, .iters = 20, .tol = -1};
        pv_cluster_stats cs;
        bench_mark mt = bench_mark_now();
        double t0 = bench_now();
        if (pv_ivf_train(db, &co, &cs) != PV_OK)
            bench_die("pv_ivf_train", pv_db_errmsg(db));
        double train_s = bench_now() - t0, train_oth = bench_others_pct(mt, ncpu);
        printf("nlist %d: pv_ivf_train %.2f s (k-means on %llu of %llu, 20 iterations, "
               "then every item listed; others' CPU %.0f %%)\n\n",
               nlist, train_s, (unsigned long long)cs.trained, (unsigned long long)cs.items,
               train_oth);
        printf("| nprobe | recall@10 | queries/s (1 thread, median of %d) | others' CPU |\n"
               "|---|---|---|---|\n", reps);
        if (kv)
            fprintf(kv, "l%d_train_s=%.4f\nl%d_train_others=%.1f\n", nlist, train_s, nlist,
                    train_oth);
        for (int e = 0; e < NNP; e++) {
            pv_query_opts qo = {.k = K, .ivf = 1, .nprobe = NPROBES[e], .ids_only = 1};
            size_t hit = 0;
            bench_mark me = bench_mark_now();
            for (int r = 0; r < reps; r++) {
                double t = bench_now();
                for (size_t i = 0; i < nq; i++) {
                    pv_hit *h;
                    size_t nh;
                    if (pv_query_vector(db, qv + i * dim, dim, &qo, &h, &nh) != PV_OK)
                        bench_die("pv_query_vector", pv_db_errmsg(db));
                    if (r == 0)
                        for (size_t j = 0; j < nh; j++)
                            for (int g = 0; g < K; g++)
                                hit += h[j].id == gt[i * K + g];
                    pv_hits_free(h, nh);
                }
                rt[r] = (double)nq / (bench_now() - t);
            }
            double qps = bench_median(rt, (size_t)reps), rec = (double)hit / (double)(nq * K);
            double oth = bench_others_pct(me, ncpu);
            printf("| %d | %.4f | %.0f | %.0f %% |\n", NPROBES[e], rec, qps, oth);
            if (kv)
                fprintf(kv, "l%d_p%d_recall=%.4f\nl%d_p%d_qps=%.1f\nl%d_p%d_others=%.1f\n", nlist,
                        NPROBES[e], rec, nlist, NPROBES[e], qps, nlist, NPROBES[e], oth);
        }
        printf("\n");
    }
    if (kv)
        fclose(kv);
    pv_db_close(db);
    free(rt);
    free(gt);
    free(qv);
    free(base);
    bench_list_free(&train);
    bench_list_free(&test);
    return 0;
}
