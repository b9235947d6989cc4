/*
 * bench.c - the walking skeleton's benchmark (pixvec side).
 *
 * On a folder written by fmnist_export (DIR/train, DIR/test, PNG files) it
 * measures, in one run on this machine:
 *  - decode-only images/s (read the file + decode the PNG, nothing else) on
 *    one thread and on all threads: the floor under ingest, since ingest
 *    also hashes, resizes, embeds and commits;
 *  - ingest images/s: pv_add of the train folder into a fresh database,
 *    all threads and one worker, every batch committed (LMDB fsyncs each)
 *    with its HNSW graph inserts;
 *  - exact query latency at N vectors, one query at a time: embed only
 *    (pv_embed_file), scan only (pv_query_vector) and both (pv_query_image),
 *    and under them flat_topk on plain memory and one sgemv over all vectors;
 *  - all-pairs dups at a threshold (pv_find_dups) with the GFLOP/s it
 *    reports, set against OpenBLAS sgemm peak (2048^3, all threads and one);
 *  - where the dups time goes: the same blocked sgemm calls alone, and
 *    flat_allpairs on an in-memory copy (no LMDB, no filter).
 * It also writes the stored vectors, the query vectors and pixvec's top-10
 * to WORK/ so that peers (peer_faiss) search exactly the same data.
 *
 * Every figure is a median over --reps runs (latencies: over the queries),
 * printed as measured, beside the share of the machine other processes
 * used meanwhile; nothing here decides whether a time is good.
 *
 * usage: bench [--data DIR] [--n N] [--queries Q] [--reps R]
 *              [--threshold T] [--work DIR] [--out FILE]
 *   --out FILE: key=value results, for bench/run.sh to join with peers.
 */
#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "flat.h"
#include "img.h"
#include "pixvec.h"
#include "vec.h"

#define TOPK 10

/* Every query here is the exact scan: this benchmark is about the flat
 * index (the graph index has its own). */
static const pv_query_opts exact_opts = {.k = TOPK, .exact = 1};

/* ---- decode-only ---------------------------------------------------------- */

typedef struct decode_job {
    char *const *paths;
    size_t n;
    atomic_size_t next;
    atomic_int failed;
} decode_job;

/* The same read + decode the ingest workers do (1 channel, at least 28x28),
 * without the hash, the resize, the embedding or the commit. */
static void *decode_worker(void *arg)
{
    decode_job *j = arg;
    char err[128];
    size_t i;
    while ((i = atomic_fetch_add(&j->next, 1)) < j->n) {
        uint8_t *buf = NULL;
        size_t len = 0;
        img im;
        memset(&im, 0, sizeof im);
        if (img_read_file(j->paths[i], &buf, &len, err, sizeof err) != 0 ||
            img_decode(buf, len, 1, 28, 28, &im, err, sizeof err) != 0)
            atomic_fetch_add(&j->failed, 1);
        img_free(&im);
        free(buf);
    }
    return NULL;
}

static double decode_run(char *const *paths, size_t n, int threads)
{
    decode_job j = {.paths = paths, .n = n};
    pthread_t th[64];
    if (threads > 64)
        threads = 64;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    double t0 = bench_now();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&th[t], NULL, decode_worker, &j) != 0)
            bench_die("pthread_create", NULL);
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    double s = bench_now() - t0;
    if (atomic_load(&j.failed))
        bench_die("decode-only: some files failed to decode", NULL);
    return s;
}

/* ---- ingest --------------------------------------------------------------- */

static void on_add_error(void *ctx, const char *path, int err, const char *why)
{
    (void)ctx;
    fprintf(stderr, "bench: add: %s: %s (%s)\n", path, why, pv_strerror(err));
}

/* Removes a database directory this program created (its two LMDB files),
 * by name: never a recursive delete. */
static void db_remove(const char *dir)
{
    char p[4200];
    bench_path_join(p, sizeof p, dir, "data.mdb");
    unlink(p);
    bench_path_join(p, sizeof p, dir, "lock.mdb");
    unlink(p);
    rmdir(dir);
}

typedef struct ingest_cost {
    double seconds, cpu, commits;
} ingest_cost;

static void count_commit(void *ctx, uint64_t done, uint64_t total)
{
    (void)done, (void)total;
    ((ingest_cost *)ctx)->commits++;
}

/* pv_add of paths into a fresh database with `threads` workers (0: all
 * cores): its wall time, this process's CPU time (walk, workers and writer)
 * and the number of commits (each one fsync'd by LMDB). Bytes written are
 * not counted here: /proc/self/io's write_bytes counts whole page-cache
 * folios and overstated LMDB's pwrite()s 3.7x on this kernel. */
static ingest_cost ingest_run(const char *dbdir, char *const *paths, size_t npaths,
                              size_t n, int threads)
{
    pv_embedder_opts eo = {.name = "pixels"};
    ingest_cost c = {0, 0, 0};
    pv_add_opts ao = {.threads = threads, .on_error = on_add_error,
                      .progress = count_commit, .ctx = &c};
    pv_add_stats st;
    pv_db *db = NULL;
    char err[512];
    int rc;
    db_remove(dbdir);
    if ((rc = pv_db_create(dbdir, &eo, NULL, &db, err, sizeof err)) != 0)
        bench_die("pv_db_create", err);
    double c0 = bench_cpu_seconds(), t0 = bench_now();
    rc = pv_add(db, (const char *const *)paths, npaths, &ao, &st);
    c.seconds = bench_now() - t0;
    c.cpu = bench_cpu_seconds() - c0;
    if (rc != 0)
        bench_die("pv_add", pv_db_errmsg(db));
    if (st.added != n)
        bench_die("pv_add did not add every file", NULL);
    pv_db_close(db);
    return c;
}

/* ---- sgemm ---------------------------------------------------------------- */

static double sgemm_gflops(int m, int n, int k, int reps)
{
    float *a = bench_alloc((size_t)m * k * sizeof *a);
    float *b = bench_alloc((size_t)n * k * sizeof *b);
    float *c = bench_alloc((size_t)m * n * sizeof *c);
    double *r = bench_alloc((size_t)(reps + 1) * sizeof *r);
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 97) * 0.01f;
    for (size_t i = 0; i < (size_t)n * k; i++)
        b[i] = (float)(i % 89) * 0.01f;
    /* The first call pays for thread start-up and page faults: not timed. */
    for (int i = 0; i <= reps; i++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a,
                    k, b, k, 0.0f, c, n);
        r[i] = 2.0 * m * n * k / (bench_now() - t0) * 1e-9;
    }
    double g = bench_median(r + 1, (size_t)reps);
    free(a), free(b), free(c), free(r);
    return g;
}

/* The sgemm calls flat_allpairs makes for this set, in its blocking (row
 * blocks of rb rows of chunk i against chunk j >= i, the diagonal block
 * trimmed to the columns right of the block's first row), without reading
 * the scores: what the all-pairs scan would cost if the threshold test,
 * the keep map and the LMDB side were free. */
static double sgemm_allpairs_blocking(const vec_set *s, size_t rb, float *scores,
                                      double *flops)
{
    double work = 0, t0 = bench_now();
    for (uint32_t i = 0; i < s->nchunks; i++)
        for (uint32_t j = i; j < s->nchunks; j++)
            for (size_t r0 = 0; r0 < s->n[i]; r0 += rb) {
                size_t rows = s->n[i] - r0 < rb ? s->n[i] - r0 : rb;
                size_t c0 = j == i ? r0 + 1 : 0;
                if (c0 >= s->n[j])
                    continue;
                size_t cols = s->n[j] - c0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows,
                            (int)cols, (int)s->dim, 1.0f,
                            s->chunks[i] + r0 * s->dim, (int)s->dim,
                            s->chunks[j] + c0 * s->dim, (int)s->dim, 0.0f,
                            scores, (int)cols);
                work += 2.0 * rows * cols * s->dim;
            }
    *flops = work;
    return bench_now() - t0;
}

/* ---- the report: a markdown table on stdout, key=value lines in --out ------ */

static FILE *kv;
static void put(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(const char *key, const char *fmt, ...)
{
    va_list ap;
    if (!kv)
        return;
    fprintf(kv, "%s=", key);
    va_start(ap, fmt);
    vfprintf(kv, fmt, ap);
    va_end(ap);
    fputc('\n', kv);
}

static void row(double others, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void row(double others, const char *label, const char *fmt, ...)
{
    va_list ap;
    printf("| %s | ", label);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" | %.0f %% |\n", others);
}

int main(int argc, char **argv)
{
    const char *data = "/tmp/pixvec-fmnist", *work = NULL, *out = NULL;
    size_t nmax = 60000, nq = 200;
    int reps = 3;
    float thr = 0.95f;
    char tmpl[] = "/tmp/pixvec-bench-XXXXXX";

    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--n"))
            nmax = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--queries"))
            nq = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "--threshold"))
            thr = strtof(v, NULL);
        else if (!strcmp(a, "--work"))
            work = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else
            goto usage;
    }
    if (reps < 1 || nq < 1 || nmax < 2)
        goto usage;
    if (!work && !(work = mkdtemp(tmpl)))
        bench_die("mkdtemp", strerror(errno));
    mkdir(work, 0755);
    if (out && !(kv = fopen(out, "w")))
        bench_die(out, strerror(errno));

    /* ---- the files ---- */
    char dir[4200], dbdir[4200];
    bench_list train = {0}, test = {0};
    bench_path_join(dir, sizeof dir, data, "train");
    bench_find_png(dir, &train);
    bench_path_join(dir, sizeof dir, data, "test");
    bench_find_png(dir, &test);
    if (train.n < 2 || test.n < 1)
        bench_die("no PNG files under DIR/train and DIR/test (run fmnist_export DIR)", data);
    size_t n = train.n < nmax ? train.n : nmax;
    if (nq > test.n)
        nq = test.n;
    /* Queries spread evenly over the sorted test files, hence over classes. */
    char **qpaths = bench_alloc(nq * sizeof *qpaths);
    for (size_t i = 0; i < nq; i++)
        qpaths[i] = test.s[i * test.n / nq];

    const int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const int blas_threads = openblas_get_num_threads();
    const int sreps = reps > 5 ? reps : 5;
    char cpu[256], date[64];
    time_t tnow = time(NULL);
    bench_cpu_model(cpu, sizeof cpu);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M %Z", localtime(&tnow));
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    vec_init();
    fprintf(stderr, "bench: %zu train files, %zu queries, %d reps, work %s\n",
            n, nq, reps, work);
    bench_mark all = bench_mark_now(), m;
    double *r = bench_alloc((size_t)2 * (reps > 8 ? reps : 8) * sizeof *r);

    /* ---- decode-only ---- */
    decode_run(train.s, n, ncpu); /* warm the page cache: not timed */
    m = bench_mark_now();
    for (int i = 0; i < reps; i++)
        r[i] = n / decode_run(train.s, n, 1);
    double dec1 = bench_median(r, (size_t)reps), o_dec1 = bench_others_pct(m, ncpu);
    m = bench_mark_now();
    for (int i = 0; i < reps; i++)
        r[i] = n / decode_run(train.s, n, ncpu);
    double decn = bench_median(r, (size_t)reps), o_decn = bench_others_pct(m, ncpu);

    /* ---- ingest ----
     * The train folder itself when all of it is asked for, as a user would
     * add it (pv_add walks it); else the first n files by name, each named
     * (pv_add then resolves every path: slower). With one worker too: if
     * that is as fast as all of them, the calling thread (walk and commits)
     * limits ingest, not decoding and embedding. */
    bench_path_join(dbdir, sizeof dbdir, work, "db");
    bench_path_join(dir, sizeof dir, data, "train");
    char *dirarg = dir, **args = n == train.n ? &dirarg : train.s;
    size_t nargs = n == train.n ? 1 : n;
    ingest_cost ic = {0, 0, 0};
    m = bench_mark_now();
    for (int i = 0; i < reps; i++) {
        r[reps + i] = ingest_run(dbdir, args, nargs, n, 1).seconds;
        ic = ingest_run(dbdir, args, nargs, n, 0);
        r[i] = ic.seconds;
        fprintf(stderr, "bench: ingest %d: %.2f s (1 worker: %.2f s)\n", i + 1, r[i],
                r[reps + i]);
    }
    double ing1_s = bench_median(r + reps, (size_t)reps);
    double ing_s = bench_median(r, (size_t)reps), o_ing = bench_others_pct(m, ncpu);

    /* ---- the vectors, for the peers and for the runs on plain memory ---- */
    pv_db *db = NULL;
    pv_info info;
    pv_item *items = NULL;
    size_t nitems = 0;
    char err[512];
    if (pv_db_open(dbdir, 0, &db, err, sizeof err) != 0)
        bench_die("pv_db_open", err);
    if (pv_db_info(db, &info) != 0 || pv_items(db, &items, &nitems) != 0 ||
        nitems != n)
        bench_die("pv_db_info/pv_items", pv_db_errmsg(db));
    const uint32_t dim = info.dim;
    /* Row r of base.f32 is the r-th item by id, so a row is an id's rank. */
    float *base = bench_alloc(n * dim * sizeof *base);
    for (size_t i = 0; i < n; i++)
        if (pv_embed_file(db, items[i].path, base + i * dim, dim) != 0)
            bench_die("pv_embed_file", pv_db_errmsg(db));
    /* The same vectors chunked as the database chunks them, in plain memory:
     * runs on it leave out LMDB, tombstones and item records. */
    uint32_t cap = info.chunk, nch = (uint32_t)((n + cap - 1) / cap);
    const float **cptr = bench_alloc(nch * sizeof *cptr);
    uint32_t *cn = bench_alloc(nch * sizeof *cn);
    for (uint32_t c = 0; c < nch; c++) {
        cptr[c] = base + (size_t)c * cap * dim;
        cn[c] = (uint32_t)(n - (size_t)c * cap < cap ? n - (size_t)c * cap : cap);
    }
    vec_set set = {.chunks = cptr, .n = cn, .nchunks = nch, .chunk_cap = cap, .dim = dim};

    /* ---- queries, one at a time ---- */
    float *qv = bench_alloc(nq * dim * sizeof *qv), *gemv_out = bench_alloc(n * sizeof(float));
    /* embed, query vector, query image, flat_topk, sgemv, embed back to back */
    double *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = bench_alloc(nq * sizeof(double));
    int64_t *top_row = bench_alloc(nq * TOPK * sizeof *top_row);
    float *top_score = bench_alloc(nq * TOPK * sizeof *top_score);
    flat_hit fh[TOPK];
    uint32_t fnh;
    pv_hit *hits;
    size_t nh;
    /* Warm-up, not timed: read every query file once, so that embed-only
     * and the image query both read from the page cache (a first read cost
     * 4-5x a warm one here), and run a few queries. */
    for (size_t i = 0; i < nq; i++) {
        uint8_t *buf = NULL;
        size_t len;
        if (img_read_file(qpaths[i], &buf, &len, err, sizeof err) != 0)
            bench_die(qpaths[i], err);
        free(buf);
        if (i < 5 && pv_query_image(db, qpaths[i], &exact_opts, &hits, &nh) != 0)
            bench_die("pv_query_image", pv_db_errmsg(db));
        if (i < 5)
            pv_hits_free(hits, nh);
    }
    m = bench_mark_now();
    /* Embedding alone, one file after another: caches hold the decoder's
     * code and tables. In the loop below each embed follows a scan of every
     * vector, which has flushed them, as it would in a query loop. */
    for (size_t q = 0; q < nq; q++) {
        double t0 = bench_now();
        if (pv_embed_file(db, qpaths[q], qv + q * dim, dim) != 0)
            bench_die("pv_embed_file", pv_db_errmsg(db));
        t[5][q] = bench_now() - t0;
    }
    for (size_t q = 0; q < nq; q++) {
        float *v = qv + q * dim;
        double t0 = bench_now();
        if (pv_embed_file(db, qpaths[q], v, dim) != 0)
            bench_die("pv_embed_file", pv_db_errmsg(db));
        t[0][q] = bench_now() - t0;
        t0 = bench_now();
        if (pv_query_vector(db, v, dim, &exact_opts, &hits, &nh) != 0)
            bench_die("pv_query_vector", pv_db_errmsg(db));
        t[1][q] = bench_now() - t0;
        for (size_t h = 0; h < TOPK; h++) {
            size_t lo = 0, hi = n;
            while (h < nh && lo < hi) { /* items[] is in id order */
                size_t mid = (lo + hi) / 2;
                if (items[mid].id < hits[h].id)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            int ok = h < nh && lo < n && items[lo].id == hits[h].id;
            top_row[q * TOPK + h] = ok ? (int64_t)lo : -1;
            top_score[q * TOPK + h] = ok ? hits[h].score : 0;
        }
        pv_hits_free(hits, nh);
        t0 = bench_now();
        if (pv_query_image(db, qpaths[q], &exact_opts, &hits, &nh) != 0)
            bench_die("pv_query_image", pv_db_errmsg(db));
        t[2][q] = bench_now() - t0;
        pv_hits_free(hits, nh);
        /* Under pv_query_vector: the library's scan without the database
         * around it, and the one matrix-vector product it amounts to. */
        t0 = bench_now();
        if (flat_topk(&set, v, 1, TOPK, NULL, NULL, fh, &fnh) != 0)
            bench_die("flat_topk", NULL);
        t[3][q] = bench_now() - t0;
        t0 = bench_now();
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)dim, 1.0f, base,
                    (int)dim, v, 1, 0.0f, gemv_out, 1);
        t[4][q] = bench_now() - t0;
    }
    double o_q = bench_others_pct(m, ncpu), qmed[6], qp95[6];
    for (int i = 0; i < 6; i++) {
        qp95[i] = bench_quantile(t[i], nq, 0.95) * 1e3;
        qmed[i] = bench_median(t[i], nq) * 1e3;
    }
    /* One thread reading every vector once: the memory floor of a scan. */
    m = bench_mark_now();
    for (int i = 0; i < sreps; i++) {
        double t0 = bench_now();
        volatile float sink = vec_dot(base, base, n * dim);
        (void)sink;
        r[i] = n * dim * sizeof(float) / (bench_now() - t0) * 1e-9;
    }
    double bw = bench_median(r, (size_t)sreps), o_bw = bench_others_pct(m, ncpu);

    char shape[128];
    int sl = snprintf(shape, sizeof shape, "%zu %u %zu %d %.6f\n", n, dim, nq, TOPK, (double)thr);
    bench_write_file(work, "shape.txt", shape, (size_t)sl);
    bench_write_file(work, "base.f32", base, n * dim * sizeof *base);
    bench_write_file(work, "queries.f32", qv, nq * dim * sizeof *qv);
    bench_write_file(work, "pv_top_rows.i64", top_row, nq * TOPK * sizeof *top_row);
    bench_write_file(work, "pv_top_scores.f32", top_score, nq * TOPK * sizeof *top_score);

    /* ---- dups, and where its time goes ----
     * Three runs per round, interleaved so that a change in the machine's
     * load hits all three alike: pv_find_dups through LMDB; flat_allpairs
     * on plain memory without a filter; its sgemm calls alone. */
    uint32_t maxn = cn[0]; /* flat.c: row blocks of 2^20 floats of scores */
    size_t rb = ((size_t)1 << 20) / maxn;
    rb = rb < 1 ? 1 : rb > maxn ? maxn : rb;
    float *scores = bench_alloc(rb * maxn * sizeof *scores);
    double *d[5]; /* wall, scan, GFLOP/s, plain memory, sgemm alone */
    for (int i = 0; i < 5; i++)
        d[i] = bench_alloc((size_t)reps * sizeof(double));
    double flops = 0, mem_flops = 0;
    uint64_t pairs = 0, groups = 0, dimages = 0;
    m = bench_mark_now();
    for (int i = 0; i < reps; i++) {
        pv_dups *dp = NULL;
        flat_pair *fp = NULL;
        size_t np = 0;
        double t0 = bench_now();
        pv_dups_opts dopt = {.threshold = thr, .mode = PV_DUPS_EXACT};
        if (pv_find_dups(db, &dopt, &dp) != 0)
            bench_die("pv_find_dups", pv_db_errmsg(db));
        d[0][i] = bench_now() - t0;
        d[1][i] = dp->seconds;
        d[2][i] = dp->gflops;
        pairs = dp->pairs, groups = dp->ngroups, dimages = dp->images;
        pv_dups_free(dp);
        t0 = bench_now();
        if (flat_allpairs(&set, thr, NULL, NULL, NULL, NULL, &fp, &np, &mem_flops) != 0)
            bench_die("flat_allpairs", NULL);
        d[3][i] = bench_now() - t0;
        free(fp);
        d[4][i] = sgemm_allpairs_blocking(&set, rb, scores, &flops);
        fprintf(stderr, "bench: dups %d: %.2f s wall, scan %.2f s (%.1f GFLOP/s); "
                "plain memory %.2f s; sgemm alone %.2f s\n", i + 1, d[0][i],
                d[1][i], d[2][i], d[3][i], d[4][i]);
    }
    double o_dups = bench_others_pct(m, ncpu), dmed[5];
    for (int i = 0; i < 5; i++)
        dmed[i] = bench_median(d[i], (size_t)reps);

    /* ---- sgemm peak, and at the shape of the dups blocks ---- */
    m = bench_mark_now();
    double peak_all = sgemm_gflops(2048, 2048, 2048, sreps);
    double shape_all = sgemm_gflops((int)rb, (int)maxn, (int)dim, sreps);
    openblas_set_num_threads(1);
    double peak_1 = sgemm_gflops(2048, 2048, 2048, sreps);
    double shape_1 = sgemm_gflops((int)rb, (int)maxn, (int)dim, sreps);
    openblas_set_num_threads(blas_threads);
    double o_peak = bench_others_pct(m, ncpu), o_all = bench_others_pct(all, ncpu);

    /* ---- the table ---- */
    printf("## pixvec bench (%s)\n\n", date);
    printf("- machine: %s, %d cores online, %.1f GiB RAM\n", cpu, ncpu, ram / (1u << 30));
    printf("- OpenBLAS: %s; core %s; %d threads%s%s\n", openblas_get_config(),
           openblas_get_corename(), blas_threads,
           coretype ? "; OPENBLAS_CORETYPE=" : "", coretype ? coretype : "");
    printf("- pixvec: vector kernels %s; %s; chunk %u vectors; ingest builds the "
           "HNSW graph (M %u, ef_construction %u); every query here is exact\n",
           vec_isa_name(vec_isa_active()), info.embedder_desc, info.chunk, info.hnsw_m,
           info.hnsw_ef_construction);
    printf("- data: %zu Fashion-MNIST train PNGs, %zu test PNGs as queries; medians "
           "of %d runs (latencies: of the queries)\n", n, nq, reps);
    printf("- last column: CPU time other processes used while the row was "
           "measured, in %% of all cores (whole run: %.0f %%)\n\n", o_all);
    printf("| measure | value | others' CPU |\n|---|---|---|\n");
    row(o_dec1, "decode-only (read + PNG decode), 1 thread", "%.0f images/s", dec1);
    row(o_decn, "decode-only, all threads", "%.0f images/s (%d threads)", decn, ncpu);
    row(o_ing, nargs == 1 ? "ingest incl. HNSW (pv_add of the train folder, all threads)"
                          : "ingest incl. HNSW (pv_add of n named files, all threads)",
        "%.0f images/s (%.2f s)", n / ing_s, ing_s);
    row(o_ing, "ingest, 1 worker thread", "%.0f images/s", n / ing1_s);
    row(o_ing, "ingest / decode-only (all threads)", "%.2f", n / ing_s / decn);
    row(o_ing, "ingest: CPU used, of all cores' time (last run)", "%.0f %%",
        100.0 * ic.cpu / (ic.seconds * ncpu));
    row(o_ing, "ingest: commits (each fsync'd)", "%.0f", ic.commits);
    row(o_q, "query: embed only (pv_embed_file), back to back", "median %.3f ms, p95 %.3f ms",
        qmed[5], qp95[5]);
    row(o_q, "query: embed only, right after a scan", "median %.3f ms, p95 %.3f ms", qmed[0],
        qp95[0]);
    row(o_q, "exact query, vector (pv_query_vector, k=10)", "median %.3f ms, p95 %.3f ms",
        qmed[1], qp95[1]);
    row(o_q, "exact query, image (pv_query_image, k=10)", "median %.3f ms, p95 %.3f ms",
        qmed[2], qp95[2]);
    row(o_q, "exact query on plain memory (flat_topk)", "median %.3f ms", qmed[3]);
    row(o_q, "one sgemv over all vectors, plain memory", "median %.3f ms (%.1f GB/s)",
        qmed[4], n * dim * 4.0 / qmed[4] * 1e-6);
    row(o_bw, "read all vectors once, 1 thread (vec_dot)", "%.1f GB/s = %.3f ms",
        bw, n * dim * 4.0 / bw * 1e-6);
    row(o_dups, "dups: pv_find_dups wall", "%.2f s (%llu pairs >= %.2f, %llu groups, "
        "%llu images)", dmed[0], (unsigned long long)pairs, (double)thr,
        (unsigned long long)groups, (unsigned long long)dimages);
    row(o_dups, "dups: all-pairs scan (pv_dups.seconds, .gflops)", "%.2f s, %.1f GFLOP/s",
        dmed[1], dmed[2]);
    row(o_dups, "dups: flat_allpairs on plain memory, no filter", "%.2f s, %.1f GFLOP/s",
        dmed[3], mem_flops / dmed[3] * 1e-9);
    row(o_dups, "dups: its sgemm calls alone", "%.2f s, %.1f GFLOP/s (%zu x %u x %u blocks)",
        dmed[4], flops / dmed[4] * 1e-9, rb, maxn, dim);
    row(o_peak, "sgemm at the dups block shape, all threads / 1", "%.1f / %.1f GFLOP/s",
        shape_all, shape_1);
    row(o_peak, "sgemm peak 2048^3, all threads / 1", "%.1f / %.1f GFLOP/s", peak_all, peak_1);
    row(o_peak, "dups GFLOP/s / sgemm peak (all threads)", "%.2f", dmed[2] / peak_all);

    put("date", "%s", date);
    put("cpu", "%s", cpu);
    put("cores", "%d", ncpu);
    put("openblas", "%s", openblas_get_config());
    put("openblas_core", "%s", openblas_get_corename());
    put("hnsw", "M %u, ef_construction %u", info.hnsw_m, info.hnsw_ef_construction);
    put("blas_threads", "%d", blas_threads);
    put("n", "%zu", n);
    put("nq", "%zu", nq);
    put("reps", "%d", reps);
    put("threshold", "%.2f", (double)thr);
    put("others_pct", "%.0f", o_all);
    put("others_decode_pct", "%.0f", o_decn > o_dec1 ? o_decn : o_dec1);
    put("others_ingest_pct", "%.0f", o_ing);
    put("others_q_pct", "%.0f", o_q);
    put("others_dups_pct", "%.0f", o_dups);
    put("others_peak_pct", "%.0f", o_peak);
    put("decode1_ips", "%.0f", dec1);
    put("decodeN_ips", "%.0f", decn);
    put("ingest_ips", "%.0f", n / ing_s);
    put("ingest1_ips", "%.0f", n / ing1_s);
    put("embed_med_ms", "%.4f", qmed[5]);
    put("embed_after_scan_med_ms", "%.4f", qmed[0]);
    put("qvec_med_ms", "%.4f", qmed[1]);
    put("qvec_p95_ms", "%.4f", qp95[1]);
    put("qimg_med_ms", "%.4f", qmed[2]);
    put("qmem_med_ms", "%.4f", qmed[3]);
    put("gemv_med_ms", "%.4f", qmed[4]);
    put("dups_wall_s", "%.3f", dmed[0]);
    put("dups_scan_s", "%.3f", dmed[1]);
    put("dups_gflops", "%.1f", dmed[2]);
    put("dups_pairs", "%llu", (unsigned long long)pairs);
    put("peak_all", "%.1f", peak_all);
    put("peak_1", "%.1f", peak_1);
    put("dups_peak_ratio", "%.3f", dmed[2] / peak_all);
    if (kv)
        fclose(kv);

    pv_items_free(items, nitems);
    pv_db_close(db);
    bench_list_free(&train);
    bench_list_free(&test);
    for (int i = 0; i < 6; i++)
        free(t[i]);
    for (int i = 0; i < 5; i++)
        free(d[i]);
    free(qpaths), free(r), free(base), free(qv);
    free(gemv_out), free(top_row), free(top_score), free(cptr), free(cn), free(scores);
    return 0;

usage:
    fprintf(stderr, "usage: bench [--data DIR] [--n N] [--queries Q] [--reps R] "
                    "[--threshold T] [--work DIR] [--out FILE]\n");
    return 2;
}
