// peer_faiss_hnsw.cpp - FAISS IndexHNSWFlat's side of the HNSW benchmark
// (issue 3), on the vectors, queries and ground truth bench_hnsw wrote to
// WORK: METRIC_INNER_PRODUCT, same M and efConstruction; build with T OpenMP
// threads, queries one at a time on one thread. Debian's libfaiss 1.7.3 is
// built without SIMD distance kernels: its HNSW scans run 2-7x slower than a
// usual build.
// usage: peer_faiss_hnsw WORK [--reps R] [--threads T] [--out FILE]
#include "bench_util.h"

#include <faiss/IndexHNSW.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

static const int EFS[] = {10, 20, 40, 80, 120, 200, 400};
static const int NEFS = sizeof EFS / sizeof EFS[0];

static std::vector<char> slurp(const std::string &p)
{
    FILE *f = fopen(p.c_str(), "rb");
    if (!f) bench_die("cannot read", p.c_str());
    std::vector<char> b;
    char buf[1 << 16];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + r);
    fclose(f);
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 2) bench_die("usage", "peer_faiss_hnsw WORK [--reps R] [--threads T] [--out FILE]");
    std::string work = argv[1];
    int reps = 3, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *out = nullptr;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else bench_die("unknown option", argv[i]);
    }
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    size_t n, nq, d, k, M, efc;
    FILE *f = fopen((work + "/shape").c_str(), "r");
    if (!f || fscanf(f, "%zu %zu %zu %zu %zu %zu", &n, &nq, &d, &k, &M, &efc) != 6)
        bench_die("cannot read", (work + "/shape").c_str());
    fclose(f);
    std::vector<char> bb = slurp(work + "/base.f32"), qb = slurp(work + "/query.f32"),
                      gb = slurp(work + "/gt.u32");
    const float *x = (const float *)bb.data(), *q = (const float *)qb.data();
    const uint32_t *gt = (const uint32_t *)gb.data();

    faiss::IndexHNSWFlat index((int)d, (int)M, faiss::METRIC_INNER_PRODUCT);
    index.hnsw.efConstruction = (int)efc;
    omp_set_num_threads(threads);
    bench_mark mb = bench_mark_now();
    double t0 = bench_now();
    index.add((faiss::Index::idx_t)n, x);
    double bs = bench_now() - t0;
    double bo = bench_others_pct(mb, ncpu);
    std::string idx = work + "/faiss_hnsw.bin";
    faiss::write_index(&index, idx.c_str());
    struct stat sb;
    if (stat(idx.c_str(), &sb) != 0) bench_die("cannot stat", idx.c_str());

    omp_set_num_threads(1);
    double recall[NEFS], qps[NEFS], others[NEFS];
    std::vector<double> rt(reps);
    std::vector<float> dist(k);
    std::vector<faiss::Index::idx_t> lab(k);
    for (int e = 0; e < NEFS; e++) {
        // Debian's 1.7.3 ignores SearchParametersHNSW in IndexHNSW::search;
        // the index's own efSearch is what it reads.
        index.hnsw.efSearch = EFS[e];
        size_t hit = 0;
        bench_mark me = bench_mark_now();
        for (int r = 0; r < reps; r++) {
            double t = bench_now();
            for (size_t i = 0; i < nq; i++) {
                index.search(1, q + i * d, (faiss::Index::idx_t)k, dist.data(), lab.data());
                if (r == 0)
                    for (size_t j = 0; j < k; j++)
                        for (size_t g = 0; g < k; g++)
                            hit += lab[j] >= 0 && (uint32_t)lab[j] == gt[i * k + g];
            }
            rt[r] = (double)nq / (bench_now() - t);
        }
        qps[e] = bench_median(rt.data(), rt.size());
        recall[e] = (double)hit / (double)(nq * k);
        others[e] = bench_others_pct(me, ncpu);
    }

    printf("## FAISS IndexHNSWFlat (Debian 1.7.3, no SIMD kernels): %zu vectors, %zu queries, M=%zu, efConstruction=%zu\n\n",
           n, nq, M, efc);
    printf("- build %d threads: %.2f s (others' CPU %.0f %%)\n", threads, bs, bo);
    printf("- write_index: %lld bytes = %.0f bytes/vector\n\n", (long long)sb.st_size, (double)sb.st_size / n);
    printf("| ef | recall@10 | queries/s (1 thread, median of %d) | others' CPU |\n|---|---|---|---|\n", reps);
    for (int e = 0; e < NEFS; e++)
        printf("| %d | %.4f | %.0f | %.0f %% |\n", EFS[e], recall[e], qps[e], others[e]);
    if (out) {
        FILE *o = fopen(out, "w");
        if (!o) bench_die("cannot write", out);
        fprintf(o, "buildT_s=%.6g\nbuildT_others=%.6g\nthreads=%d\nbytes_per_vec=%.6g\n", bs, bo,
                threads, (double)sb.st_size / n);
        for (int e = 0; e < NEFS; e++)
            fprintf(o, "ef%d_recall=%.6g\nef%d_qps=%.6g\nef%d_others=%.6g\n", EFS[e], recall[e],
                    EFS[e], qps[e], EFS[e], others[e]);
        fclose(o);
    }
    return 0;
}
