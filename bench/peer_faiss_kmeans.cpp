// peer_faiss_kmeans.cpp - FAISS's side of the k-means benchmark (issue 4):
// faiss::Clustering (Lloyd, random init, at most 256 training points per
// centroid, as FAISS does by default) with an IndexFlatL2 for the
// assignment, which runs on BLAS sgemm (Debian's missing SIMD kernels do not
// touch this path). Trains on WORK/base.f32 (shape from WORK/shape) for each
// k given, niter iterations, T OpenMP threads, R runs with seeds 1234,
// 1235, ...; writes run r's centroids to WORK/faiss_k<K>_r<r>.f32 for
// bench_kmeans to score, and key=value lines to FILE.
// usage: peer_faiss_kmeans WORK --k K[,K...] [--iters I] [--reps R]
//        [--threads T] [--out FILE]
#include "bench_util.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

int main(int argc, char **argv)
{
    if (argc < 2) bench_die("usage", "peer_faiss_kmeans WORK --k K[,K...] [--iters I] [--reps R] [--threads T] [--out FILE]");
    std::string work = argv[1], ks = "100";
    int iters = 20, reps = 1, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *out = nullptr;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--k")) ks = argv[i + 1];
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else bench_die("unknown option", argv[i]);
    }
    omp_set_num_threads(threads);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    size_t n, d;
    FILE *f = fopen((work + "/kshape").c_str(), "r");
    if (!f || fscanf(f, "%zu %zu", &n, &d) != 2)
        bench_die("cannot read", (work + "/kshape").c_str());
    fclose(f);
    std::vector<float> x(n * d);
    f = fopen((work + "/base.f32").c_str(), "rb");
    if (!f || fread(x.data(), sizeof(float), n * d, f) != n * d)
        bench_die("cannot read", (work + "/base.f32").c_str());
    fclose(f);
    FILE *kv = out ? fopen(out, "w") : nullptr;

    printf("## FAISS Clustering: %zu x %zu, %d iterations, %d threads\n\n", n, d, iters, threads);
    printf("| k | train points | seconds (median of %d) | others' CPU |\n|---|---|---|---|\n", reps);
    for (const char *p = ks.c_str(); *p;) {
        int k = atoi(p);
        std::vector<double> t(reps);
        size_t ntrain = 0;
        bench_mark m = bench_mark_now();
        for (int r = 0; r < reps; r++) {
            faiss::ClusteringParameters cp;
            cp.niter = iters;
            cp.seed = 1234 + r;
            faiss::Clustering clus((int)d, k, cp);
            faiss::IndexFlatL2 index((int)d);
            double t0 = bench_now();
            clus.train(n, x.data(), index);
            t[r] = bench_now() - t0;
            char name[64];
            snprintf(name, sizeof name, "faiss_k%d_r%d.f32", k, r);
            bench_write_file(work.c_str(), name, clus.centroids.data(),
                             clus.centroids.size() * sizeof(float));
            ntrain = n < (size_t)k * cp.max_points_per_centroid ? n : (size_t)k * cp.max_points_per_centroid;
        }
        double med = bench_median(t.data(), (size_t)reps), oth = bench_others_pct(m, ncpu);
        printf("| %d | %zu | %.3f | %.0f %% |\n", k, ntrain, med, oth);
        if (kv) fprintf(kv, "k%d_s=%.4f\nk%d_others=%.1f\nk%d_ntrain=%zu\n", k, med, k, oth, k, ntrain);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
    if (kv) fclose(kv);
    return 0;
}
