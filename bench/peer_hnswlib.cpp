// peer_hnswlib.cpp - hnswlib's side of the HNSW benchmark (issue 3): the
// vectors, queries and ground truth bench_hnsw wrote to WORK, indexed with
// InnerProductSpace at the same M and ef_construction. Build on one thread
// and on T threads (addPoint in parallel, as hnswlib's examples do); queries
// on one thread against the one-thread index, for each ef of the sweep
// (--efs, ascending; --stop-recall R ends it at the first ef whose recall@10
// reaches R).
// usage: peer_hnswlib WORK [--reps R] [--threads T] [--out FILE] [--efs E,E,...]
//                     [--stop-recall R]
#include "bench_util.h"

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unistd.h>
#include <sys/stat.h>
#include <vector>

// "10,20,40": ascending positive efs.
static std::vector<int> parse_efs(const char *s)
{
    std::vector<int> efs;
    char *end;
    while (*s) {
        long e = strtol(s, &end, 10);
        if (end == s || e < 1 || e > 100000 || (!efs.empty() && e <= efs.back()) ||
            (*end && *end != ','))
            bench_die("--efs wants ascending numbers separated by commas", s);
        efs.push_back((int)e);
        s = *end ? end + 1 : end;
    }
    if (efs.empty()) bench_die("--efs", "empty list");
    return efs;
}

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

static double build(hnswlib::HierarchicalNSW<float> *h, const float *x, size_t n,
                    size_t d, int threads)
{
    double t0 = bench_now();
    if (threads <= 1) {
        for (size_t i = 0; i < n; i++) h->addPoint(x + i * d, i);
    } else {
        h->addPoint(x, 0);
        std::atomic<size_t> next(1);
        std::vector<std::thread> th;
        for (int t = 0; t < threads; t++)
            th.emplace_back([&]() {
                size_t i;
                while ((i = next++) < n) h->addPoint(x + i * d, i);
            });
        for (auto &t : th) t.join();
    }
    return bench_now() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        bench_die("usage", "peer_hnswlib WORK [--reps R] [--threads T] [--out FILE] "
                           "[--efs E,E,...] [--stop-recall R]");
    std::string work = argv[1];
    int reps = 3, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *out = nullptr;
    std::vector<int> efs = parse_efs("10,20,40,80,120,200,400");
    double stop_recall = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--efs")) efs = parse_efs(argv[i + 1]);
        else if (!strcmp(argv[i], "--stop-recall")) stop_recall = atof(argv[i + 1]);
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

    hnswlib::InnerProductSpace space(d);
    auto *h1 = new hnswlib::HierarchicalNSW<float>(&space, n, M, efc, 100);
    bench_mark m1 = bench_mark_now();
    double b1 = build(h1, x, n, d, 1);
    double b1o = bench_others_pct(m1, ncpu);
    std::string idx = work + "/hnswlib.bin";
    h1->saveIndex(idx);
    struct stat sb;
    if (stat(idx.c_str(), &sb) != 0) bench_die("cannot stat", idx.c_str());

    double bt = 0, bto = 0;
    if (threads > 1) {
        auto *ht = new hnswlib::HierarchicalNSW<float>(&space, n, M, efc, 100);
        bench_mark mt = bench_mark_now();
        bt = build(ht, x, n, d, threads);
        bto = bench_others_pct(mt, ncpu);
        delete ht;
    }

    std::vector<double> recall, qps, others, rt(reps);
    for (int ef : efs) {
        h1->setEf(ef);
        size_t hit = 0;
        bench_mark me = bench_mark_now();
        for (int r = 0; r < reps; r++) {
            double t = bench_now();
            for (size_t i = 0; i < nq; i++) {
                auto res = h1->searchKnn(q + i * d, k);
                if (r == 0)
                    while (!res.empty()) {
                        uint32_t id = (uint32_t)res.top().second;
                        res.pop();
                        for (size_t g = 0; g < k; g++) hit += id == gt[i * k + g];
                    }
            }
            rt[r] = (double)nq / (bench_now() - t);
        }
        qps.push_back(bench_median(rt.data(), rt.size()));
        recall.push_back((double)hit / (double)(nq * k));
        others.push_back(bench_others_pct(me, ncpu));
        if (stop_recall > 0 && recall.back() >= stop_recall) break;
    }
    size_t nefs = qps.size();

    printf("## hnswlib: %zu vectors, %zu queries, M=%zu, ef_construction=%zu\n\n", n, nq, M, efc);
    printf("- build 1 thread: %.2f s (others' CPU %.0f %%); %d threads: %.2f s (others' CPU %.0f %%)\n",
           b1, b1o, threads, bt, bto);
    printf("- saveIndex: %lld bytes = %.0f bytes/vector\n\n", (long long)sb.st_size,
           (double)sb.st_size / n);
    printf("| ef | recall@10 | queries/s (1 thread, median of %d) | others' CPU |\n|---|---|---|---|\n", reps);
    for (size_t e = 0; e < nefs; e++)
        printf("| %d | %.4f | %.0f | %.0f %% |\n", efs[e], recall[e], qps[e], others[e]);
    if (out) {
        FILE *o = fopen(out, "w");
        if (!o) bench_die("cannot write", out);
        fprintf(o, "build1_s=%.6g\nbuild1_others=%.6g\nbuildT_s=%.6g\nbuildT_others=%.6g\nthreads=%d\n",
                b1, b1o, bt, bto, threads);
        fprintf(o, "bytes_per_vec=%.6g\n", (double)sb.st_size / n);
        fprintf(o, "efs=");
        for (size_t e = 0; e < nefs; e++) fprintf(o, "%s%d", e ? "," : "", efs[e]);
        fprintf(o, "\n");
        for (size_t e = 0; e < nefs; e++)
            fprintf(o, "ef%d_recall=%.6g\nef%d_qps=%.6g\nef%d_others=%.6g\n", efs[e], recall[e],
                    efs[e], qps[e], efs[e], others[e]);
        fclose(o);
    }
    delete h1;
    return 0;
}
