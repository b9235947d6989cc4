/*
 * peer_faiss.cpp - the FAISS side of the benchmark: what a user who picked
 * FAISS instead of pixvec would run on the same vectors.
 *
 * It reads what bench wrote to WORK/ (base.f32: the N stored pixvec vectors
 * in id order; queries.f32: the Q query embeddings; pixvec's top-10 rows and
 * scores) so both sides search identical data, then:
 *  - IndexFlatIP: add, exact top-10 one query at a time (median and p95
 *    latency) and all Q queries in one call (the batched path);
 *  - all-pairs duplicates: IndexFlatIP::range_search of the whole set
 *    against itself at the threshold. That is what a FAISS user does for
 *    "every pair above t": knn would need a guess of k per image and still
 *    a threshold pass. range_search computes the full N x N product (both
 *    triangles and the diagonal), and keeps scores strictly above t, where
 *    pixvec keeps >= t;
 *  - agreement with pixvec: top-1 row, top-1 score, and overlap of top-10.
 *
 * Debian's libfaiss is built without FAISS' SIMD distance kernels: its
 * scans (single queries, below distance_compute_blas_threshold queries) run
 * 2-7x slower than a usual FAISS build. Its BLAS paths (batched search,
 * range_search over many queries) go through the same OpenBLAS as pixvec
 * and are unaffected.
 *
 * usage: peer_faiss WORK [--reps R] [--out FILE]
 */
#include "bench_util.h"

#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using idx_t = faiss::Index::idx_t;

template <typename T>
std::vector<T> read_all(const std::string &path, size_t count)
{
    std::vector<T> v(count);
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f || std::fread(v.data(), sizeof(T), count, f) != count)
        bench_die(path.c_str(), "missing or short (run bench first)");
    std::fclose(f);
    return v;
}

double median(std::vector<double> v)
{
    return bench_median(v.data(), v.size());
}

} // namespace

int main(int argc, char **argv)
{
    std::string work, out;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc)
            reps = std::atoi(argv[++i]);
        else if (a == "--out" && i + 1 < argc)
            out = argv[++i];
        else if (a[0] != '-' && work.empty())
            work = a;
        else
            work.clear(), i = argc;
    }
    if (work.empty() || reps < 1) {
        std::fprintf(stderr, "usage: peer_faiss WORK [--reps R] [--out FILE]\n");
        return 2;
    }

    size_t n = 0, nq = 0;
    unsigned dim = 0;
    int k = 0;
    double thr = 0;
    FILE *sf = std::fopen((work + "/shape.txt").c_str(), "r");
    if (!sf || std::fscanf(sf, "%zu %u %zu %d %lf", &n, &dim, &nq, &k, &thr) != 5)
        bench_die(work.c_str(), "shape.txt missing or malformed (run bench first)");
    std::fclose(sf);
    auto base = read_all<float>(work + "/base.f32", n * dim);
    auto queries = read_all<float>(work + "/queries.f32", nq * dim);
    auto pv_rows = read_all<int64_t>(work + "/pv_top_rows.i64", nq * k);
    auto pv_scores = read_all<float>(work + "/pv_top_scores.f32", nq * k);

    faiss::IndexFlatIP index(dim);
    double t0 = bench_now();
    index.add((idx_t)n, base.data());
    double add_s = bench_now() - t0;

    /* One query at a time, as a user answering requests would. */
    std::vector<float> D(nq * k);
    std::vector<idx_t> I(nq * k);
    for (size_t q = 0; q < std::min<size_t>(5, nq); q++) /* warm-up */
        index.search(1, &queries[q * dim], k, &D[q * k], &I[q * k]);
    const int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    std::vector<double> lat(nq);
    bench_mark mq = bench_mark_now();
    for (size_t q = 0; q < nq; q++) {
        t0 = bench_now();
        index.search(1, &queries[q * dim], k, &D[q * k], &I[q * k]);
        lat[q] = bench_now() - t0;
    }
    double q_p95 = bench_quantile(lat.data(), nq, 0.95) * 1e3, q_med = median(lat) * 1e3;
    double o_q = bench_others_pct(mq, ncpu);

    /* Agreement with pixvec. Ties (Fashion-MNIST holds byte-identical
     * images) can swap equal-score ids, so the score is compared too. */
    size_t top1_id = 0, top1_score = 0, overlap = 0;
    double max_dscore = 0;
    for (size_t q = 0; q < nq; q++) {
        top1_id += I[q * k] == pv_rows[q * k];
        double ds = std::fabs((double)D[q * k] - pv_scores[q * k]);
        max_dscore = std::max(max_dscore, ds);
        top1_score += ds <= 1e-5;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++)
                overlap += I[q * k + a] >= 0 && I[q * k + a] == pv_rows[q * k + b];
    }

    /* All queries in one call: above distance_compute_blas_threshold this
     * is one sgemm per block. pixvec's public API has no batched query. */
    std::vector<float> D2(nq * k);
    std::vector<idx_t> I2(nq * k);
    std::vector<double> bt(reps);
    bench_mark mb = bench_mark_now();
    index.search((idx_t)nq, queries.data(), k, D2.data(), I2.data());
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        index.search((idx_t)nq, queries.data(), k, D2.data(), I2.data());
        bt[r] = bench_now() - t0;
    }
    double batch_s = median(bt), o_b = bench_others_pct(mb, ncpu);
    size_t batch_same = 0;
    for (size_t q = 0; q < nq; q++)
        batch_same += I2[q * k] == I[q * k];

    /* All pairs at the threshold. */
    std::vector<double> rt(reps);
    bench_mark mr = bench_mark_now();
    size_t pairs = 0;
    for (int r = 0; r < reps; r++) {
        faiss::RangeSearchResult res((idx_t)n);
        t0 = bench_now();
        index.range_search((idx_t)n, base.data(), (float)thr, &res);
        rt[r] = bench_now() - t0;
        pairs = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t e = res.lims[i]; e < res.lims[i + 1]; e++)
                pairs += res.labels[e] > (idx_t)i;
        std::fprintf(stderr, "peer_faiss: range_search %d: %.2f s\n", r + 1, rt[r]);
    }
    double range_s = median(rt), o_r = bench_others_pct(mr, ncpu);
    double range_gf = 2.0 * n * n * dim / range_s * 1e-9;

    std::printf("## FAISS peer (libfaiss %d.%d.%d, Debian build: no SIMD distance "
                "kernels, scans 2-7x slower than a usual build; BLAS paths unaffected)\n\n",
                FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR, FAISS_VERSION_PATCH);
    std::printf("- OpenMP threads %d; distance_compute_blas_threshold %d\n\n",
                omp_get_max_threads(), faiss::distance_compute_blas_threshold);
    std::printf("- last column: CPU time other processes used meanwhile, in %% of all cores\n\n");
    std::printf("| measure | value | others' CPU |\n|---|---|---|\n");
    std::printf("| IndexFlatIP add %zu x %u | %.3f s | |\n", n, dim, add_s);
    std::printf("| exact query, one at a time (k=%d, scan path) | median %.3f ms, p95 %.3f ms "
                "| %.0f %% |\n", k, q_med, q_p95, o_q);
    std::printf("| exact query, %zu in one call (BLAS path) | %.3f ms per query (%.3f s) "
                "| %.0f %% |\n", nq, batch_s / nq * 1e3, batch_s, o_b);
    std::printf("| range_search all pairs > %.2f (BLAS path) | %.2f s, %.1f GFLOP/s on its "
                "%zu^2 products (%zu pairs a<b) | %.0f %% |\n", thr, range_s, range_gf, n,
                pairs, o_r);
    std::printf("| top-1 same id / same score (1e-5) as pixvec | %.1f %% / %.1f %% "
                "(max diff %.2g) | |\n", 100.0 * top1_id / nq, 100.0 * top1_score / nq,
                max_dscore);
    std::printf("| top-10 overlap with pixvec | %.1f %% | |\n", 100.0 * overlap / (nq * k));
    std::printf("| batched top-1 = one-at-a-time top-1 | %.1f %% | |\n",
                100.0 * batch_same / nq);

    if (!out.empty()) {
        FILE *f = std::fopen(out.c_str(), "w");
        if (!f)
            bench_die(out.c_str(), "cannot write");
        std::fprintf(f, "faiss_version=%d.%d.%d\n", FAISS_VERSION_MAJOR,
                     FAISS_VERSION_MINOR, FAISS_VERSION_PATCH);
        std::fprintf(f, "omp_threads=%d\n", omp_get_max_threads());
        std::fprintf(f, "add_s=%.4f\n", add_s);
        std::fprintf(f, "q_med_ms=%.4f\nq_p95_ms=%.4f\n", q_med, q_p95);
        std::fprintf(f, "batch_per_q_ms=%.4f\n", batch_s / nq * 1e3);
        std::fprintf(f, "range_s=%.3f\nrange_gflops=%.1f\nrange_pairs=%zu\n", range_s,
                     range_gf, pairs);
        std::fprintf(f, "others_q_pct=%.0f\nothers_batch_pct=%.0f\nothers_range_pct=%.0f\n", o_q,
                     o_b, o_r);
        std::fprintf(f, "top1_id_pct=%.1f\ntop1_score_pct=%.1f\ntop10_overlap_pct=%.1f\n",
                     100.0 * top1_id / nq, 100.0 * top1_score / nq,
                     100.0 * overlap / (nq * k));
        std::fclose(f);
    }
    return 0;
}
