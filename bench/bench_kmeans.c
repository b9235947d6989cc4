/*
 * bench_kmeans.c - pixvec's side of the k-means benchmark (issue 4), and the
 * one scorer of every peer's centroids.
 *
 *   bench_kmeans embed --data DIR --work DIR [--n N]
 *       embeds the first N train PNGs of DIR with pixvec's default embedder
 *       (the vectors `pixvec add` stores) into WORK/base.f32 (N x dim) and
 *       writes WORK/kshape ("N dim").
 *   bench_kmeans train --work DIR --k K[,K...] [--iters I] [--reps R] [--out FILE]
 *       index/kmeans.c on those vectors: I Lloyd iterations (tol 0: all of
 *       them), at most 256 training points per centroid, R runs with seeds
 *       1234, 1235, ...; median seconds; run r's centroids to
 *       WORK/pixvec_k<K>_r<r>.f32.
 *   bench_kmeans score --work DIR --k K[,K...] [--out FILE]
 *       the inertia (sum of squared distances to the nearest centroid) of
 *       all N vectors for each WORK/{pixvec,faiss,sklearn}_k<K>_r<r>.f32
 *       found, with the same code for all, so the peers are compared on one
 *       scale: the mean over a peer's runs (seeds), and their range.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "kmeans.h"
#include "pixvec.h"

static float *read_f32(const char *work, const char *name, size_t count)
{
    char path[4096];
    bench_path_join(path, sizeof path, work, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    float *p = bench_alloc(count * sizeof *p);
    size_t got = fread(p, sizeof *p, count, f);
    fclose(f);
    if (got != count)
        bench_die("short file", path);
    return p;
}

static void read_shape(const char *work, size_t *n, size_t *d)
{
    char path[4096];
    bench_path_join(path, sizeof path, work, "kshape");
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "%zu %zu", n, d) != 2)
        bench_die("cannot read", path);
    fclose(f);
}

static int next_k(const char **p)
{
    int k = atoi(*p);
    while (**p && **p != ',')
        (*p)++;
    if (**p == ',')
        (*p)++;
    return k;
}

static void embed(const char *data, const char *work, size_t n)
{
    char path[4096], err[512];
    bench_list train = {0};
    bench_path_join(path, sizeof path, data, "train");
    bench_find_png(path, &train);
    if (train.n < n)
        bench_die("not enough PNGs under", path);
    bench_path_join(path, sizeof path, work, "embed-db");
    pv_db *db;
    if (pv_db_create(path, NULL, NULL, &db, err, sizeof err) != PV_OK)
        bench_die("pv_db_create", err);
    pv_info info;
    if (pv_db_info(db, &info) != PV_OK)
        bench_die("pv_db_info", pv_db_errmsg(db));
    float *x = bench_alloc(n * info.dim * sizeof *x);
    for (size_t i = 0; i < n; i++)
        if (pv_embed_file(db, train.s[i], x + i * info.dim, info.dim) != PV_OK)
            bench_die("pv_embed_file", train.s[i]);
    bench_write_file(work, "base.f32", x, n * info.dim * sizeof *x);
    bench_path_join(path, sizeof path, work, "kshape");
    FILE *f = fopen(path, "w");
    if (!f)
        bench_die("cannot write", path);
    fprintf(f, "%zu %u\n", n, info.dim);
    fclose(f);
    printf("embedded %zu train images (%u-d) into %s/base.f32\n", n, info.dim, work);
    pv_db_close(db);
    free(x);
    bench_list_free(&train);
}

static void train(const char *work, const char *ks, int iters, int reps, FILE *kv)
{
    size_t n, d;
    read_shape(work, &n, &d);
    float *x = read_f32(work, "base.f32", n * d);
    if (!x)
        bench_die("cannot read", "base.f32");
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double *t = bench_alloc((size_t)reps * sizeof *t);
    printf("## pixvec k-means (index/kmeans.c): %zu x %zu, %d iterations\n\n", n, d, iters);
    printf("| k | train points | seconds (median of %d) | others' CPU |\n|---|---|---|---|\n", reps);
    for (const char *p = ks; *p;) {
        int k = next_k(&p);
        kmeans_params kp;
        kmeans_model m = {0};
        kmeans_defaults(&kp, (uint32_t)k);
        kp.max_iter = (uint32_t)iters;
        kp.tol = 0;
        bench_mark mk = bench_mark_now();
        for (int r = 0; r < reps; r++) {
            char name[64];
            kmeans_model_free(&m);
            kp.seed = 1234 + (uint64_t)r;
            double t0 = bench_now();
            if (kmeans_train(x, n, (uint32_t)d, &kp, &m) != 0)
                bench_die("kmeans_train", "failed");
            t[r] = bench_now() - t0;
            snprintf(name, sizeof name, "pixvec_k%d_r%d.f32", k, r);
            bench_write_file(work, name, m.centroids, (size_t)k * d * sizeof(float));
        }
        double med = bench_median(t, (size_t)reps), oth = bench_others_pct(mk, ncpu);
        printf("| %d | %zu | %.3f | %.0f %% |\n", k, m.ntrain, med, oth);
        if (kv)
            fprintf(kv, "k%d_s=%.4f\nk%d_others=%.1f\nk%d_ntrain=%zu\n", k, med, k, oth, k, m.ntrain);
        kmeans_model_free(&m);
    }
    free(t);
    free(x);
}

static void score(const char *work, const char *ks, FILE *kv)
{
    static const char *const who[] = {"pixvec", "faiss", "sklearn"};
    size_t n, d;
    read_shape(work, &n, &d);
    float *x = read_f32(work, "base.f32", n * d);
    uint32_t *lab = bench_alloc(n * sizeof *lab);
    float *d2 = bench_alloc(n * sizeof *d2);
    if (!x)
        bench_die("cannot read", "base.f32");
    printf("## inertia of all %zu vectors against each one's centroids: mean over "
           "seeds [min, max] (runs)\n\n", n);
    printf("| k | pixvec | FAISS | scikit-learn |\n|---|---|---|---|\n");
    for (const char *p = ks; *p;) {
        int k = next_k(&p);
        printf("| %d", k);
        for (int w = 0; w < 3; w++) {
            double sum = 0, lo = 0, hi = 0;
            size_t empty = 0;
            int runs = 0;
            for (;; runs++) {
                char name[64];
                snprintf(name, sizeof name, "%s_k%d_r%d.f32", who[w], k, runs);
                float *c = read_f32(work, name, (size_t)k * d);
                if (!c)
                    break;
                kmeans_model m = {.k = (uint32_t)k, .dim = (uint32_t)d, .centroids = c};
                if (kmeans_assign(&m, x, n, lab, d2) != 0)
                    bench_die("kmeans_assign", name);
                double in = 0;
                size_t *size = calloc((size_t)k, sizeof *size);
                for (size_t i = 0; i < n; i++) {
                    in += d2[i];
                    size[lab[i]]++;
                }
                for (int j = 0; j < k; j++)
                    empty += size[j] == 0;
                sum += in;
                lo = runs == 0 || in < lo ? in : lo;
                hi = runs == 0 || in > hi ? in : hi;
                free(size);
                free(c);
            }
            if (runs == 0) {
                printf(" | -");
                continue;
            }
            printf(" | %.2f [%.2f, %.2f] (%d)%s", sum / runs, lo, hi, runs,
                   empty ? " (empty clusters)" : "");
            if (kv)
                fprintf(kv, "k%d_%s_inertia=%.4f\nk%d_%s_min=%.4f\nk%d_%s_max=%.4f\nk%d_%s_runs=%d\n",
                        k, who[w], sum / runs, k, who[w], lo, k, who[w], hi, k, who[w], runs);
        }
        printf(" |\n");
    }
    free(lab);
    free(d2);
    free(x);
}

int main(int argc, char **argv)
{
    const char *usage = "bench_kmeans embed|train|score --work DIR [--data DIR] [--n N] "
                        "[--k K,...] [--iters I] [--reps R] [--out FILE]";
    if (argc < 2)
        bench_die("usage", usage);
    const char *mode = argv[1], *data = NULL, *work = NULL, *ks = "100,1024", *out = NULL;
    size_t n = 60000;
    int iters = 20, reps = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--work")) work = v;
        else if (!strcmp(a, "--n")) n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--k")) ks = v;
        else if (!strcmp(a, "--iters")) iters = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--out")) out = v;
        else bench_die("usage", usage);
    }
    if (!work || n == 0 || iters <= 0 || reps <= 0)
        bench_die("usage", usage);
    FILE *kv = out ? fopen(out, "w") : NULL;
    if (out && !kv)
        bench_die("cannot write", out);
    if (!strcmp(mode, "embed")) {
        if (!data)
            bench_die("usage", usage);
        embed(data, work, n);
    } else if (!strcmp(mode, "train")) {
        train(work, ks, iters, reps, kv);
    } else if (!strcmp(mode, "score")) {
        score(work, ks, kv);
    } else {
        bench_die("usage", usage);
    }
    if (kv)
        fclose(kv);
    return 0;
}
