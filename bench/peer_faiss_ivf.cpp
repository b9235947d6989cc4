// peer_faiss_ivf.cpp - FAISS IndexIVFFlat's side of the IVF benchmark
// (issue 4), on the vectors, queries and ground truth bench_ivf wrote to
// WORK: the usual cosine setup (unit vectors, IndexFlatIP quantizer,
// METRIC_INNER_PRODUCT), trained with FAISS's own k-means (20 iterations, at
// most 256 points per list) on T OpenMP threads; queries one per search
// call on one thread, as pixvec answers them. Debian's libfaiss 1.7.3 is
// built without SIMD distance kernels: its list scans run 2-7x slower than
// a usual build.
// usage: peer_faiss_ivf WORK [--nlist L[,L...]] [--reps R] [--threads T] [--out FILE]
#include "bench_util.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

static const int NPROBES[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
static const int NNP = sizeof NPROBES / sizeof NPROBES[0];

template <class T> static std::vector<T> slurp(const std::string &p, size_t count)
{
    std::vector<T> v(count);
    FILE *f = fopen(p.c_str(), "rb");
    if (!f || fread(v.data(), sizeof(T), count, f) != count) bench_die("cannot read", p.c_str());
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) bench_die("usage", "peer_faiss_ivf WORK [--nlist L,...] [--reps R] [--threads T] [--out FILE]");
    std::string work = argv[1], lists = "256,1024";
    int reps = 3, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *out = nullptr;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--nlist")) lists = argv[i + 1];
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else bench_die("unknown option", argv[i]);
    }
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    size_t n, nq, d;
    FILE *f = fopen((work + "/ishape").c_str(), "r");
    if (!f || fscanf(f, "%zu %zu %zu", &n, &nq, &d) != 3)
        bench_die("cannot read", (work + "/ishape").c_str());
    fclose(f);
    std::vector<float> x = slurp<float>(work + "/base.f32", n * d),
                       q = slurp<float>(work + "/query.f32", nq * d);
    std::vector<uint32_t> gt = slurp<uint32_t>(work + "/gt.u32", nq * 10);
    FILE *kv = out ? fopen(out, "w") : nullptr;

    printf("## FAISS IndexIVFFlat: %zu vectors, %zu queries (Debian build: no SIMD distance kernels)\n\n", n, nq);
    for (const char *p = lists.c_str(); *p;) {
        int nlist = atoi(p);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
        faiss::IndexFlatIP quant((int)d);
        faiss::IndexIVFFlat index(&quant, (int)d, (size_t)nlist, faiss::METRIC_INNER_PRODUCT);
        index.cp.niter = 20;
        index.cp.seed = 1234;
        omp_set_num_threads(threads);
        bench_mark mt = bench_mark_now();
        double t0 = bench_now();
        index.train((faiss::Index::idx_t)n, x.data());
        index.add((faiss::Index::idx_t)n, x.data());
        double train_s = bench_now() - t0, train_oth = bench_others_pct(mt, ncpu);
        printf("nlist %d: train + add %.2f s on %d threads (others' CPU %.0f %%)\n\n", nlist,
               train_s, threads, train_oth);
        printf("| nprobe | recall@10 | queries/s (1 thread, median of %d) | others' CPU |\n|---|---|---|---|\n", reps);
        if (kv) fprintf(kv, "l%d_train_s=%.4f\nl%d_train_others=%.1f\n", nlist, train_s, nlist, train_oth);
        omp_set_num_threads(1);
        std::vector<float> dist(10);
        std::vector<faiss::Index::idx_t> lab(10);
        std::vector<double> rt(reps);
        for (int e = 0; e < NNP; e++) {
            index.nprobe = (size_t)NPROBES[e];
            size_t hit = 0;
            bench_mark me = bench_mark_now();
            for (int r = 0; r < reps; r++) {
                double t = bench_now();
                for (size_t i = 0; i < nq; i++) {
                    index.search(1, q.data() + i * d, 10, dist.data(), lab.data());
                    if (r == 0)
                        for (int j = 0; j < 10; j++)
                            for (int g = 0; g < 10; g++)
                                hit += lab[j] >= 0 && (uint32_t)lab[j] == gt[i * 10 + g];
                }
                rt[r] = (double)nq / (bench_now() - t);
            }
            double qps = bench_median(rt.data(), (size_t)reps), rec = (double)hit / (double)(nq * 10);
            double oth = bench_others_pct(me, ncpu);
            printf("| %d | %.4f | %.0f | %.0f %% |\n", NPROBES[e], rec, qps, oth);
            if (kv)
                fprintf(kv, "l%d_p%d_recall=%.4f\nl%d_p%d_qps=%.1f\nl%d_p%d_others=%.1f\n", nlist,
                        NPROBES[e], rec, nlist, NPROBES[e], qps, nlist, NPROBES[e], oth);
        }
        printf("\n");
    }
    if (kv) fclose(kv);
    return 0;
}
