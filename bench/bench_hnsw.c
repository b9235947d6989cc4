/*
 * bench_hnsw.c - pixvec's side of the HNSW benchmark (issue 3), through the
 * public API on a real database:
 *
 *   1. pv_db_create (M, ef_construction) in WORK/db and pv_add of the first N
 *      train PNGs (all worker threads; every batch committed and fsync'd):
 *      the build time, decode and embed included;
 *   2. the stored vectors (pv_items in id order, pv_embed_file on each path)
 *      and Q test PNGs' vectors (evenly spaced, so every class), written to WORK/base.f32 and
 *      WORK/query.f32 so the peers index the very same vectors;
 *   3. exact top-10 ground truth by sgemm on those vectors (WORK/gt.u32,
 *      positions in base.f32), checked against pv_query_vector exact=1 on a
 *      few queries;
 *   4. for each ef: Q calls of pv_query_vector (k 10) on one thread, REPS
 *      times: median queries/s, and recall@10 against the ground truth.
 *
 * Figures go to stdout as a markdown table and to --out as key=value lines.
 * usage: bench_hnsw --data DIR --work DIR [--n N] [--queries Q] [--reps R]
 *                   [--M M] [--efc EFC] [--out FILE]
 */
#include "bench_util.h"
#include "pixvec.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K 10
static const int EFS[] = {10, 20, 40, 80, 120, 200, 400};
#define NEFS ((int)(sizeof EFS / sizeof EFS[0]))

static FILE *kv;

static void put(const char *key, double v)
{
    if (kv)
        fprintf(kv, "%s=%.6g\n", key, v);
}

/* Exact top-K of every query by inner product, in blocks of queries. */
static void ground_truth(const float *base, size_t n, const float *q, size_t nq,
                         uint32_t dim, uint32_t *gt)
{
    const size_t B = 64;
    float *s = bench_alloc(B * n * sizeof *s);
    for (size_t q0 = 0; q0 < nq; q0 += B) {
        size_t b = nq - q0 < B ? nq - q0 : B;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)n,
                    (int)dim, 1.0f, q + q0 * dim, (int)dim, base, (int)dim,
                    0.0f, s, (int)n);
        for (size_t i = 0; i < b; i++) {
            const float *r = s + i * n;
            float best[K];
            uint32_t id[K];
            int m = 0;
            for (size_t j = 0; j < n; j++) {
                if (m == K && r[j] <= best[K - 1])
                    continue;
                int p = m < K ? m++ : K - 1;
                while (p > 0 && best[p - 1] < r[j]) {
                    best[p] = best[p - 1];
                    id[p] = id[p - 1];
                    p--;
                }
                best[p] = r[j];
                id[p] = (uint32_t)j;
            }
            memcpy(gt + (q0 + i) * K, id, sizeof id);
        }
    }
    free(s);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *work = NULL, *out = NULL;
    size_t n = 60000, nq = 1000;
    int reps = 3, M = 16, efc = 200;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            bench_die("usage", "bench_hnsw --data DIR --work DIR [--n N] [--queries Q] [--reps R] [--M M] [--efc EFC] [--out FILE]");
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--work")) work = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--n")) n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--queries")) nq = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--M")) M = atoi(v);
        else if (!strcmp(a, "--efc")) efc = atoi(v);
        else bench_die("unknown option", a);
    }
    if (!data || !work || n == 0 || nq == 0 || reps < 1)
        bench_die("usage", "--data and --work are required; N, Q, R > 0");
    if (out && !(kv = fopen(out, "w")))
        bench_die("cannot write", out);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char path[4096];

    bench_list train = {0}, test = {0};
    bench_path_join(path, sizeof path, data, "train");
    bench_find_png(path, &train);
    bench_path_join(path, sizeof path, data, "test");
    bench_find_png(path, &test);
    if (train.n < n || test.n < nq)
        bench_die("not enough PNGs under", data);

    /* 1. build */
    char dbdir[4096], err[512];
    bench_path_join(dbdir, sizeof dbdir, work, "db");
    pv_db *db;
    pv_index_opts io = {M, efc, PV_VECTORS_F32, 0};
    if (pv_db_create(dbdir, NULL, &io, &db, err, sizeof err) != PV_OK)
        bench_die("pv_db_create", err);
    pv_add_opts ao = {0};
    pv_add_stats st;
    bench_mark m0 = bench_mark_now();
    double t0 = bench_now();
    int rc = pv_add(db, (const char *const *)train.s, n, &ao, &st);
    double build_s = bench_now() - t0;
    double build_others = bench_others_pct(m0, ncpu);
    double build_cpu = bench_mark_now().self - m0.self;
    if (rc != PV_OK || st.added != n)
        bench_die("pv_add", pv_db_errmsg(db));
    pv_info info;
    if (pv_db_info(db, &info) != PV_OK)
        bench_die("pv_db_info", pv_db_errmsg(db));
    uint32_t dim = info.dim;

    /* 2. the vectors, in id order */
    pv_item *items;
    size_t ni;
    if (pv_items(db, &items, &ni) != PV_OK || ni != n)
        bench_die("pv_items", pv_db_errmsg(db));
    uint32_t *pos = bench_alloc(info.next_id * sizeof *pos);
    float *base = bench_alloc(n * dim * sizeof *base);
    for (size_t i = 0; i < n; i++) {
        pos[items[i].id] = (uint32_t)i;
        if (pv_embed_file(db, items[i].path, base + i * dim, dim) != PV_OK)
            bench_die("pv_embed_file", items[i].path);
    }
    pv_items_free(items, ni);
    float *qv = bench_alloc(nq * dim * sizeof *qv);
    /* Every (test.n / Q)-th test file: the list is sorted by path, that is by
     * class, so its first Q files would all be one class. */
    size_t stride = test.n / nq;
    for (size_t i = 0; i < nq; i++)
        if (pv_embed_file(db, test.s[i * stride], qv + i * dim, dim) != PV_OK)
            bench_die("pv_embed_file", test.s[i * stride]);
    bench_write_file(work, "base.f32", base, n * dim * sizeof *base);
    bench_write_file(work, "query.f32", qv, nq * dim * sizeof *qv);
    bench_path_join(path, sizeof path, work, "shape");
    FILE *f = fopen(path, "w");
    if (!f)
        bench_die("cannot write", path);
    fprintf(f, "%zu %zu %u %d %d %d\n", n, nq, dim, K, M, efc);
    fclose(f);

    /* 3. ground truth, and a check against pixvec's exact scan */
    uint32_t *gt = bench_alloc(nq * K * sizeof *gt);
    ground_truth(base, n, qv, nq, dim, gt);
    bench_write_file(work, "gt.u32", gt, nq * K * sizeof *gt);
    size_t agree = 0, checked = 0;
    for (size_t i = 0; i < nq && i < 20; i++) {
        pv_query_opts qo = {.k = K, .exact = 1};
        pv_hit *h;
        size_t nh;
        if (pv_query_vector(db, qv + i * dim, dim, &qo, &h, &nh) != PV_OK)
            bench_die("pv_query_vector exact", pv_db_errmsg(db));
        for (size_t j = 0; j < nh; j++)
            for (int t = 0; t < K; t++)
                agree += pos[h[j].id] == gt[i * K + t];
        checked += K;
        pv_hits_free(h, nh);
    }

    /* 4. queries, one thread */
    double recall[NEFS], qps[NEFS], others[NEFS];
    double *rt = bench_alloc((size_t)reps * sizeof *rt);
    for (int e = 0; e < NEFS; e++) {
        pv_query_opts qo = {.k = K, .ef = EFS[e], .ids_only = 1};
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
                            hit += pos[h[j].id] == gt[i * K + g];
                pv_hits_free(h, nh);
            }
            rt[r] = (double)nq / (bench_now() - t);
        }
        qps[e] = bench_median(rt, (size_t)reps);
        recall[e] = (double)hit / (double)(nq * K);
        others[e] = bench_others_pct(me, ncpu);
    }

    /* The same at ef = 20 with each hit's path looked up (the default
     * pv_query_opts): what an application that wants paths pays. */
    double qps_paths;
    {
        pv_query_opts qo = {.k = K, .ef = 20};
        for (int r = 0; r < reps; r++) {
            double t = bench_now();
            for (size_t i = 0; i < nq; i++) {
                pv_hit *h;
                size_t nh;
                if (pv_query_vector(db, qv + i * dim, dim, &qo, &h, &nh) != PV_OK)
                    bench_die("pv_query_vector", pv_db_errmsg(db));
                pv_hits_free(h, nh);
            }
            rt[r] = (double)nq / (bench_now() - t);
        }
        qps_paths = bench_median(rt, (size_t)reps);
    }

    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    printf("## pixvec HNSW: %zu vectors of %u-d, %zu queries, M=%d, ef_construction=%d\n\n",
           n, dim, nq, M, efc);
    printf("- cpu: %s, %d cores online\n", cpu, ncpu);
    printf("- build (pv_add, decode + embed + graph + %s): %.2f s, %.0f images/s, CPU %.0f %% of %d cores, others' CPU %.0f %%\n",
           "fsync'd commits", build_s, (double)n / build_s,
           100.0 * build_cpu / build_s / ncpu, ncpu, build_others);
    printf("- disk: data.mdb %llu bytes = %.0f bytes/vector (vectors alone: %u); graph levels %u\n",
           (unsigned long long)info.disk_bytes, (double)info.disk_bytes / (double)n,
           dim * 4, info.graph_levels);
    printf("- ground truth (sgemm) vs pv_query_vector exact=1 on %zu queries: %.4f top-10 overlap\n\n",
           checked / K, (double)agree / (double)checked);
    printf("| ef | recall@10 | queries/s (1 thread, median of %d) | others' CPU |\n|---|---|---|---|\n", reps);
    for (int e = 0; e < NEFS; e++)
        printf("| %d | %.4f | %.0f | %.0f %% |\n", EFS[e], recall[e], qps[e], others[e]);
    printf("\nq/s above: ids and scores (pv_query_opts.ids_only), as hnswlib returns labels; "
           "with each hit's path looked up, ef = 20: %.0f q/s\n", qps_paths);

    put("n", (double)n);
    put("q", (double)nq);
    put("build_s", build_s);
    put("build_others", build_others);
    put("build_cpu_pct", 100.0 * build_cpu / build_s / ncpu);
    put("disk_bytes", (double)info.disk_bytes);
    put("bytes_per_vec", (double)info.disk_bytes / (double)n);
    put("levels", info.graph_levels);
    put("exact_agree", (double)agree / (double)checked);
    put("ef20_qps_paths", qps_paths);
    for (int e = 0; e < NEFS; e++) {
        char k[64];
        snprintf(k, sizeof k, "ef%d_recall", EFS[e]);
        put(k, recall[e]);
        snprintf(k, sizeof k, "ef%d_qps", EFS[e]);
        put(k, qps[e]);
        snprintf(k, sizeof k, "ef%d_others", EFS[e]);
        put(k, others[e]);
    }
    if (kv)
        fclose(kv);
    pv_db_close(db);
    free(rt);
    free(gt);
    free(qv);
    free(base);
    free(pos);
    bench_list_free(&train);
    bench_list_free(&test);
    return 0;
}
