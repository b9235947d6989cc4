// peer_hnswlib_dups.cpp - hnswlib's side of the duplicate scan at scale
// (issue 6): what a user would write instead of `pixvec dups` on pixvec's own
// vectors (bench_dups export). Build a HierarchicalNSW<float> over
// InnerProductSpace (M 16, ef_construction 200, addPoint on T threads as
// hnswlib's examples do), then the self-join pixvec's approximate mode does
// (engine/dups.c): every row asks for k + 1 = 33 neighbours (itself
// included) at ef 64 (raised to k + 1 by hnswlib itself), on T threads; a
// row whose (k + 1)-th hit is still at or above the threshold asks again
// with twice the k, until its list ends below the threshold or holds every
// row. Pairs (a < b) at or above the threshold are kept from either end.
// Scores are hnswlib's: 1 - its inner-product distance. The index is built
// once; each threshold is joined on it in turn.
//
// usage: peer_hnswlib_dups FILE.f32 [--ids FILE.ids] [--threads T]
//          [--threshold T1[,T2...]] [--ref PAIRS1[,PAIRS2...]]
//          [--neighbours K] [--ef EF] [--m M] [--efc EFC]
//   FILE.f32: n rows of float32 (no header); FILE.ids: n uint32 ids (default:
//   FILE.f32 with .ids for .f32); the dimension is the sizes' quotient.
//   --ref: per threshold, bench_dups run --pairs-out's file (pv_dup_pair
//   {uint32 a, b; float score}, sorted by (a, b), ids); prints pair recall.
#include "bench_util.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

struct dup_pair { // pv_dup_pair's layout
    uint32_t a, b;
    float score;
};
static_assert(sizeof(dup_pair) == 12, "pv_dup_pair is 12 bytes");

static bool pair_less(const dup_pair &x, const dup_pair &y)
{
    return x.a != y.a ? x.a < y.a : x.b < y.b;
}
static bool pair_same(const dup_pair &x, const dup_pair &y) { return x.a == y.a && x.b == y.b; }

static std::vector<char> slurp(const std::string &p)
{
    struct stat st;
    FILE *f = fopen(p.c_str(), "rb");
    if (!f || fstat(fileno(f), &st) != 0) bench_die("cannot read", p.c_str());
    std::vector<char> b((size_t)st.st_size);
    if (fread(b.data(), 1, b.size(), f) != b.size()) bench_die("cannot read", p.c_str());
    fclose(f);
    return b;
}

static std::vector<std::string> split(const char *s)
{
    std::vector<std::string> v;
    std::string cur;
    for (; *s; s++)
        if (*s == ',') {
            v.push_back(cur);
            cur.clear();
        } else {
            cur += *s;
        }
    v.push_back(cur);
    return v;
}

static long status_kb(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) {
            v = strtol(line + strlen(key), NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

// Run body(i) for i in [0, n) on `threads` threads, one atomic counter
// handing out rows (hnswlib's examples' ParallelFor).
template <class F> static void parallel_for(size_t lo, size_t n, int threads, F body)
{
    std::atomic<size_t> next(lo);
    std::vector<std::thread> th;
    for (int t = 0; t < threads; t++)
        th.emplace_back([&, t]() {
            size_t i;
            while ((i = next++) < n) body((size_t)t, i);
        });
    for (auto &t : th) t.join();
}

int main(int argc, char **argv)
{
    const char *usage = "peer_hnswlib_dups FILE.f32 [--ids FILE.ids] [--threads T] "
                        "[--threshold T1[,T2..]] [--ref PAIRS1[,PAIRS2..]] [--neighbours K] "
                        "[--ef EF] [--m M] [--efc EFC]";
    if (argc < 2 || argv[1][0] == '-') bench_die("usage", usage);
    std::string vecs = argv[1], idsfile;
    if (vecs.size() > 4 && vecs.compare(vecs.size() - 4, 4, ".f32") == 0)
        idsfile = vecs.substr(0, vecs.size() - 4) + ".ids";
    else
        idsfile = vecs + ".ids";
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    size_t k0 = 32, ef = 64, M = 16, efc = 200;
    std::vector<std::string> thr_s = {"0.95"}, refs;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) bench_die("usage", usage);
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--ids")) idsfile = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--threshold")) thr_s = split(v);
        else if (!strcmp(a, "--ref")) refs = split(v);
        else if (!strcmp(a, "--neighbours")) k0 = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--ef")) ef = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--m")) M = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--efc")) efc = strtoul(v, NULL, 10);
        else bench_die("unknown option", a);
    }
    if (threads < 1 || k0 < 1 || M < 2) bench_die("usage", usage);
    if (!refs.empty() && refs.size() != thr_s.size())
        bench_die("usage", "--ref needs one file per threshold");
    const int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);

    std::vector<char> vb = slurp(vecs), ib = slurp(idsfile);
    const size_t n = ib.size() / sizeof(uint32_t);
    if (n == 0 || ib.size() % sizeof(uint32_t) || vb.size() % (n * sizeof(float)))
        bench_die("the sizes of FILE.f32 and FILE.ids do not match", vecs.c_str());
    const size_t d = vb.size() / (n * sizeof(float));
    const float *x = (const float *)vb.data();
    const uint32_t *ids = (const uint32_t *)ib.data();
    for (size_t i = 1; i < n; i++)
        if (ids[i] <= ids[i - 1]) bench_die("FILE.ids is not in increasing order", idsfile.c_str());

    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    printf("- hnswlib %zu vectors of %zu dims from %s; cpu %s, %d cores; %d threads, M=%zu, "
           "ef_construction=%zu, k=%zu+1, ef=%zu\n",
           n, d, vecs.c_str(), cpu, ncpu, threads, M, efc, k0, ef);
    fflush(stdout);

    hnswlib::InnerProductSpace space(d);
    hnswlib::HierarchicalNSW<float> h(&space, n, M, efc, 100);
    bench_mark mb = bench_mark_now();
    double c0 = bench_cpu_seconds(), t0 = bench_now();
    h.addPoint(x, 0);
    parallel_for(1, n, threads, [&](size_t, size_t i) { h.addPoint(x + i * d, i); });
    double build_s = bench_now() - t0, build_cpu = bench_cpu_seconds() - c0;
    double build_others = bench_others_pct(mb, ncpu);
    printf("hnswlib build: %.2f s (CPU %.1f s), others' CPU %.0f %%\n", build_s, build_cpu,
           build_others);
    fflush(stdout);
    h.setEf(ef); // searchKnn uses max(ef, k + 1), as pixvec's graph_search call

    for (size_t ti = 0; ti < thr_s.size(); ti++) {
        const float thr = (float)atof(thr_s[ti].c_str());
        std::vector<std::vector<dup_pair>> part(threads);
        std::vector<uint64_t> redo(threads, 0);
        bench_mark mj = bench_mark_now();
        c0 = bench_cpu_seconds();
        t0 = bench_now();
        parallel_for(0, n, threads, [&](size_t t, size_t i) {
            size_t k = k0;
            std::priority_queue<std::pair<float, hnswlib::labeltype>> res;
            for (;;) {
                res = h.searchKnn(x + i * d, k + 1);
                // top() is the farthest hit: the list's last.
                if (res.size() < k + 1 || !(1.0f - res.top().first >= thr) || k >= n) break;
                k *= 2;
                redo[t]++;
            }
            for (; !res.empty(); res.pop()) {
                size_t j = res.top().second;
                float s = 1.0f - res.top().first;
                if (j == i || !(s >= thr)) continue;
                uint32_t a = ids[std::min(i, j)], b = ids[std::max(i, j)];
                part[t].push_back({a, b, s});
            }
        });
        std::vector<dup_pair> pairs;
        uint64_t redone = 0;
        for (int t = 0; t < threads; t++) {
            pairs.insert(pairs.end(), part[t].begin(), part[t].end());
            redone += redo[t];
        }
        std::sort(pairs.begin(), pairs.end(), pair_less);
        pairs.erase(std::unique(pairs.begin(), pairs.end(), pair_same), pairs.end());
        double join_s = bench_now() - t0, join_cpu = bench_cpu_seconds() - c0;
        double join_others = bench_others_pct(mj, ncpu);
        printf("hnswlib self-join at threshold %.4f: %.2f s (CPU %.1f s), %zu pairs, %llu k "
               "doublings; others' CPU %.0f %%\n",
               thr, join_s, join_cpu, pairs.size(), (unsigned long long)redone, join_others);
        if (!refs.empty()) {
            std::vector<char> rb = slurp(refs[ti]);
            const dup_pair *r = (const dup_pair *)rb.data();
            const size_t nr = rb.size() / sizeof(dup_pair);
            if (rb.size() % sizeof(dup_pair)) bench_die("not a pairs file", refs[ti].c_str());
            float lo = 2;
            for (size_t i = 0; i < nr; i++) lo = std::min(lo, r[i].score);
            if (nr && lo < thr - 1e-3f)
                bench_die("the reference pairs are for a lower threshold", refs[ti].c_str());
            size_t i = 0, j = 0, c = 0;
            while (i < nr && j < pairs.size()) {
                if (pair_same(r[i], pairs[j])) c++, i++, j++;
                else if (pair_less(r[i], pairs[j])) i++;
                else j++;
            }
            printf("hnswlib pair recall against %s: %.4f (%zu of %zu); pairs not in it: %zu\n",
                   refs[ti].c_str(), nr ? (double)c / (double)nr : 1.0, c, nr, pairs.size() - c);
        }
        fflush(stdout);
    }
    printf("hnswlib peak RSS %.1f MiB (vectors alone %.1f MiB)\n", status_kb("VmHWM:") / 1024.0,
           (double)vb.size() / (1024.0 * 1024.0));
    return 0;
}
