/*
 * bench_hnsw.c - pixvec's side of the HNSW benchmarks (issue 3; compact
 * vectors, issue 17), through the public API on a real database:
 *
 *   1. pv_db_create (embedder, M, ef_construction, vectors) in WORK/db and
 *      pv_add of N train PNGs (every (train / N)-th in path order, so every
 *      class; all worker threads; every batch committed and fsync'd): the
 *      build time, decode and embed included;
 *   2. the same N files and Q test PNGs (evenly spaced likewise) embedded
 *      again with pv_embed_file on as many threads as pv_add used, timed:
 *      the embed-only time, so that build - embed estimates the index's
 *      share. Written to WORK/base.f32 (row r: the r-th of the N files in
 *      path order) and WORK/query.f32 so the peers index the very same
 *      vectors;
 *   3. exact top-10 ground truth by sgemm on those vectors (WORK/gt.u32,
 *      rows of base.f32), checked against pv_query_vector exact=1 on a few
 *      queries;
 *   4. for each ef of the sweep: Q calls of pv_query_vector (k 10) on one
 *      thread, REPS times: median queries/s, and recall@10 against the
 *      ground truth.
 *
 * --reuse takes steps 2 and 3 from an earlier run in the same WORK (same N,
 * Q and embedder), so several databases are measured on one set of vectors,
 * queries and ground truth; --open also skips step 1 and queries the
 * WORK/db an earlier run built (to sweep it again with --no-rerank).
 * pv_add sorts the files of a call by path, which is class order here (as
 * it is for any folder of class folders), so the first vectors added are
 * all of one class; that matters to what is learned from them (int8's map
 * for a codes-only database is learned once, from the first
 * PV_I8_TRAIN_MIN). --sample-first SEED builds with two pv_add calls
 * instead: a random sample of PV_I8_TRAIN_MIN of the files, then the rest.
 * --vacuum, after the sweep, times pv_vacuum: the graph rebuilt from the
 * stored vectors on every core, the index's own build time (pv_add's
 * includes decode and embed, which run in the same pipeline).
 *
 * Figures go to stdout as a markdown table and to --out as key=value lines.
 * usage: bench_hnsw --data DIR --work DIR [--n N] [--queries Q] [--reps R]
 *                   [--M M] [--efc EFC] [--out FILE] [--embedder pixels|cnn]
 *                   [--vectors f32|f16|i8|f16-only|i8-only] [--no-rerank] [--efs E,E,...]
 *                   [--stop-recall R] [--reuse] [--open] [--vacuum]
 *                   [--sample-first SEED]
 */
#include "bench_util.h"
#include "pixvec.h"

#include <cblas.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K 10
#define MAXEFS 64
#define MAXTHREADS 64
static const char DEFAULT_EFS[] = "10,20,40,80,120,200,400";
/* --vectors: PV_VECTORS_* and pv_index_opts.compact_only. */
static const struct {
    const char *name;
    int vectors, compact_only;
} VECTOR_KINDS[] = {{"f32", PV_VECTORS_F32, 0},
                    {"f16", PV_VECTORS_F16, 0},
                    {"i8", PV_VECTORS_I8, 0},
                    {"f16-only", PV_VECTORS_F16, 1},
                    {"i8-only", PV_VECTORS_I8, 1}};
#define NKINDS ((int)(sizeof VECTOR_KINDS / sizeof VECTOR_KINDS[0]))

typedef struct bench_opts {
    const char *data, *work, *out, *embedder;
    size_t n, nq;
    int reps, M, efc, vectors, compact_only, no_rerank, reuse, open, vacuum, nefs;
    unsigned long sample_first; /* 0: one pv_add; else the sample's seed */
    int efs[MAXEFS];
    double stop_recall; /* stop the sweep once recall@10 reaches it (0: never) */
} bench_opts;

static FILE *kv;

static void put(const char *key, double v)
{
    if (kv)
        fprintf(kv, "%s=%.6g\n", key, v);
}

static void put_str(const char *key, const char *v)
{
    if (kv)
        fprintf(kv, "%s=%s\n", key, v);
}

/* "10,20,40": ascending positive efs. */
static void parse_efs(const char *s, bench_opts *o)
{
    char *end;
    o->nefs = 0;
    while (*s) {
        long e = strtol(s, &end, 10);
        if (end == s || e < 1 || e > 100000 || o->nefs == MAXEFS ||
            (o->nefs > 0 && e <= o->efs[o->nefs - 1]) || (*end && *end != ','))
            bench_die("--efs wants ascending numbers separated by commas, at most 64", s);
        o->efs[o->nefs++] = (int)e;
        s = *end ? end + 1 : end;
    }
    if (o->nefs == 0)
        bench_die("--efs", "empty list");
}

static void parse_vectors(const char *v, bench_opts *o)
{
    for (int i = 0; i < NKINDS; i++)
        if (!strcmp(v, VECTOR_KINDS[i].name)) {
            o->vectors = VECTOR_KINDS[i].vectors;
            o->compact_only = VECTOR_KINDS[i].compact_only;
            return;
        }
    bench_die("--vectors wants f32, f16, i8, f16-only or i8-only, not", v);
}

static const char *vectors_name(int v, int compact_only)
{
    for (int i = 0; i < NKINDS; i++)
        if (VECTOR_KINDS[i].vectors == v && VECTOR_KINDS[i].compact_only == !!compact_only)
            return VECTOR_KINDS[i].name;
    return "unknown";
}

static void parse_args(int argc, char **argv, bench_opts *o)
{
    static const char usage[] =
        "bench_hnsw --data DIR --work DIR [--n N] [--queries Q] [--reps R] [--M M] "
        "[--efc EFC] [--out FILE] [--embedder pixels|cnn] [--vectors f32|f16|i8|f16-only|i8-only] "
        "[--no-rerank] [--efs E,E,...] [--stop-recall R] [--reuse] [--open] [--vacuum] "
        "[--sample-first SEED]";
    *o = (bench_opts){.embedder = "pixels", .n = 60000, .nq = 1000, .reps = 3,
                      .M = 16, .efc = 200, .vectors = PV_VECTORS_F32};
    parse_efs(DEFAULT_EFS, o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-rerank")) { o->no_rerank = 1; continue; }
        if (!strcmp(a, "--reuse")) { o->reuse = 1; continue; }
        if (!strcmp(a, "--open")) { o->open = o->reuse = 1; continue; }
        if (!strcmp(a, "--vacuum")) { o->vacuum = 1; continue; }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v)
            bench_die("usage", usage);
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--work")) o->work = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--embedder")) o->embedder = v;
        else if (!strcmp(a, "--n")) o->n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--queries")) o->nq = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else if (!strcmp(a, "--M")) o->M = atoi(v);
        else if (!strcmp(a, "--efc")) o->efc = atoi(v);
        else if (!strcmp(a, "--vectors")) parse_vectors(v, o);
        else if (!strcmp(a, "--efs")) parse_efs(v, o);
        else if (!strcmp(a, "--stop-recall")) o->stop_recall = atof(v);
        else if (!strcmp(a, "--sample-first")) o->sample_first = strtoul(v, NULL, 10);
        else bench_die("unknown option", a);
    }
    if (!o->data || !o->work || o->n == 0 || o->nq == 0 || o->reps < 1)
        bench_die("usage", "--data and --work are required; N, Q, R > 0");
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

/* n of the list's files, evenly spaced: the list is sorted by path, that is
 * by class, so its first n files would be the first classes only. The
 * result stays sorted by path. */
static char **spaced(const bench_list *l, size_t n)
{
    char **p = bench_alloc(n * sizeof *p);
    size_t stride = l->n / n;
    for (size_t i = 0; i < n; i++)
        p[i] = l->s[i * stride];
    return p;
}

/* A copy of p[0..n) in a random order (Fisher-Yates; a 64-bit LCG from
 * seed, so a seed gives the same order on every machine). */
static char **shuffled(char *const *p, size_t n, unsigned long seed)
{
    char **s = bench_alloc(n * sizeof *s);
    uint64_t x = seed;
    memcpy(s, p, n * sizeof *s);
    for (size_t i = n; i > 1; i--) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)((x >> 33) % i);
        char *t = s[i - 1];
        s[i - 1] = s[j];
        s[j] = t;
    }
    return s;
}

/* One export thread: its own handle, because a pv_db is used by one thread
 * at a time. It is a scratch database with the same embedder (same weights,
 * same vectors), not a second handle on WORK/db, because LMDB does not allow
 * one process to open an environment twice. */
typedef struct export_job {
    pv_db *db;
    char *const *paths;
    size_t n, first, step;
    uint32_t dim;
    float *out;
    const char *failed;
} export_job;

static void *export_worker(void *arg)
{
    export_job *j = arg;
    for (size_t i = j->first; i < j->n && !j->failed; i += j->step)
        if (pv_embed_file(j->db, j->paths[i], j->out + i * j->dim, j->dim) != PV_OK)
            j->failed = j->paths[i];
    return NULL;
}

/* paths[0..n) embedded into out on nt threads; returns the wall seconds. */
static double embed_all(pv_db **dbs, int nt, char *const *paths, size_t n,
                        uint32_t dim, float *out)
{
    pthread_t th[MAXTHREADS];
    export_job jobs[MAXTHREADS];
    double t0 = bench_now();
    for (int t = 0; t < nt; t++) {
        jobs[t] = (export_job){dbs[t], paths, n, (size_t)t, (size_t)nt, dim, out, NULL};
        if (pthread_create(&th[t], NULL, export_worker, &jobs[t]) != 0)
            bench_die("pthread_create", "export");
    }
    for (int t = 0; t < nt; t++)
        pthread_join(th[t], NULL);
    double s = bench_now() - t0;
    for (int t = 0; t < nt; t++)
        if (jobs[t].failed)
            bench_die("pv_embed_file", jobs[t].failed);
    return s;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

/* Step 2: base and query vectors, each file embedded once more, on nt
 * threads with OpenBLAS at one thread each (as pv_add runs the cnn).
 * Returns the base's wall seconds. */
static double export_vectors(const bench_opts *o, const pv_embedder_opts *emb,
                             int nt, char *const *bp, char *const *qp,
                             uint32_t dim, float *base, float *qv)
{
    pv_db *dbs[MAXTHREADS] = {0};
    char dir[4096], name[64], err[512];
    nt = nt < 1 ? 1 : nt > MAXTHREADS ? MAXTHREADS : nt;
    for (int t = 0; t < nt; t++) {
        snprintf(name, sizeof name, "embed-%d", t);
        bench_path_join(dir, sizeof dir, o->work, name);
        if (pv_db_create(dir, emb, NULL, &dbs[t], err, sizeof err) != PV_OK)
            bench_die("pv_db_create", err);
    }
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    double s = embed_all(dbs, nt, bp, o->n, dim, base);
    embed_all(dbs, nt, qp, o->nq, dim, qv);
    openblas_set_num_threads(blas);
    for (int t = 0; t < nt; t++) {
        pv_db_close(dbs[t]);
        snprintf(name, sizeof name, "embed-%d", t);
        bench_path_join(dir, sizeof dir, o->work, name);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return s;
}

static void read_exact(const char *work, const char *name, void *p, size_t bytes)
{
    char path[4200];
    bench_path_join(path, sizeof path, work, name);
    FILE *f = fopen(path, "rb");
    if (!f || fread(p, 1, bytes, f) != bytes || fgetc(f) != EOF)
        bench_die("--reuse: missing or not the expected size (another N, Q or embedder?)", path);
    fclose(f);
}

/* The vectors, queries and ground truth an earlier run wrote, if its shape
 * is this run's. */
static void reuse_vectors(const bench_opts *o, uint32_t dim, float *base,
                          float *qv, uint32_t *gt)
{
    char path[4200];
    size_t n, nq, d;
    bench_path_join(path, sizeof path, o->work, "shape");
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "%zu %zu %zu", &n, &nq, &d) != 3 || n != o->n ||
        nq != o->nq || d != dim)
        bench_die("--reuse: WORK/shape is missing or from another N, Q or embedder", path);
    fclose(f);
    read_exact(o->work, "base.f32", base, o->n * dim * sizeof *base);
    read_exact(o->work, "query.f32", qv, o->nq * dim * sizeof *qv);
    read_exact(o->work, "gt.u32", gt, o->nq * K * sizeof *gt);
}

static int cmp_path(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

/* pos[id] = the row of base.f32 the item's file is (bp is sorted). */
static uint32_t *rows_of_ids(pv_db *db, const pv_info *info, char *const *bp, size_t n)
{
    pv_item *items;
    size_t ni;
    if (pv_items(db, &items, &ni) != PV_OK || ni != n)
        bench_die("pv_items", "not the N items added");
    uint32_t *pos = bench_alloc(info->next_id * sizeof *pos);
    for (size_t i = 0; i < ni; i++) {
        char *const *hit = bsearch(items[i].path, bp, n, sizeof *bp, cmp_path);
        if (!hit || items[i].id >= info->next_id)
            bench_die("an item that is none of the files added", items[i].path);
        pos[items[i].id] = (uint32_t)(hit - bp);
    }
    pv_items_free(items, ni);
    return pos;
}

/* Top-10 overlap of pv_query_vector exact=1 with the ground truth, on the
 * first 20 queries at most. */
static double exact_agreement(pv_db *db, const float *qv, size_t nq, uint32_t dim,
                              const uint32_t *pos, const uint32_t *gt)
{
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
    return (double)agree / (double)checked;
}

/* reps passes of the nq queries with qo: median queries/s; *recall (may be
 * NULL) from the first pass. */
static double run_queries(pv_db *db, const pv_query_opts *qo, const float *qv,
                          size_t nq, uint32_t dim, int reps, const uint32_t *pos,
                          const uint32_t *gt, double *recall)
{
    double *rt = bench_alloc((size_t)reps * sizeof *rt);
    size_t hit = 0;
    for (int r = 0; r < reps; r++) {
        double t = bench_now();
        for (size_t i = 0; i < nq; i++) {
            pv_hit *h;
            size_t nh;
            if (pv_query_vector(db, qv + i * dim, dim, qo, &h, &nh) != PV_OK)
                bench_die("pv_query_vector", pv_db_errmsg(db));
            if (r == 0)
                for (size_t j = 0; j < nh; j++)
                    for (int g = 0; g < K; g++)
                        hit += pos[h[j].id] == gt[i * K + g];
            pv_hits_free(h, nh);
        }
        rt[r] = (double)nq / (bench_now() - t);
    }
    double qps = bench_median(rt, (size_t)reps);
    free(rt);
    if (recall)
        *recall = (double)hit / (double)(nq * K);
    return qps;
}

int main(int argc, char **argv)
{
    bench_opts o;
    parse_args(argc, argv, &o);
    if (o.out && !(kv = fopen(o.out, "w")))
        bench_die("cannot write", o.out);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char path[4096], data[PATH_MAX];

    /* Absolute, as pv_add stores paths, so items map back to files. */
    if (!realpath(o.data, data))
        bench_die("cannot resolve", o.data);
    bench_list train = {0}, test = {0};
    bench_path_join(path, sizeof path, data, "train");
    bench_find_png(path, &train);
    bench_path_join(path, sizeof path, data, "test");
    bench_find_png(path, &test);
    if (train.n < o.n || test.n < o.nq)
        bench_die("not enough PNGs under", data);
    char **bp = spaced(&train, o.n), **qp = spaced(&test, o.nq);

    /* 1. build, or open the one an earlier run built */
    char dbdir[4096], err[512];
    bench_path_join(dbdir, sizeof dbdir, o.work, "db");
    pv_db *db;
    pv_embedder_opts emb = {.name = o.embedder};
    pv_index_opts io = {o.M, o.efc, o.vectors, o.compact_only};
    double build_s = 0, build_others = 0, build_cpu = 0;
    if (o.open) {
        if (pv_db_open(dbdir, o.vacuum ? 0 : PV_OPEN_RDONLY, &db, err, sizeof err) != PV_OK)
            bench_die("pv_db_open", err);
    } else {
        if (pv_db_create(dbdir, &emb, &io, &db, err, sizeof err) != PV_OK)
            bench_die("pv_db_create", err);
        pv_add_opts ao = {0};
        pv_add_stats st, st2 = {0};
        char **order = o.sample_first ? shuffled(bp, o.n, o.sample_first) : bp;
        size_t first = o.sample_first && o.n > PV_I8_TRAIN_MIN ? PV_I8_TRAIN_MIN : o.n;
        bench_mark m0 = bench_mark_now();
        int rc = pv_add(db, (const char *const *)order, first, &ao, &st);
        if (rc == PV_OK && first < o.n)
            rc = pv_add(db, (const char *const *)order + first, o.n - first, &ao, &st2);
        st.added += st2.added;
        build_s = bench_now() - m0.wall;
        build_others = bench_others_pct(m0, ncpu);
        build_cpu = bench_mark_now().self - m0.self;
        if (order != bp)
            free(order);
        if (rc != PV_OK || st.added != o.n)
            bench_die("pv_add", pv_db_errmsg(db));
    }
    pv_info info;
    if (pv_db_info(db, &info) != PV_OK)
        bench_die("pv_db_info", pv_db_errmsg(db));
    uint32_t dim = info.dim;
    uint32_t *pos = rows_of_ids(db, &info, bp, o.n);
    /* the size at rest: a compacted copy (pv_db_backup) without the free
     * pages the build left in data.mdb, measured and removed */
    double compact_bytes = 0;
    {
        char cp[4200], cf[4300];
        struct stat sb;
        snprintf(cp, sizeof cp, "%s.compacted", dbdir);
        snprintf(cf, sizeof cf, "%s/data.mdb", cp);
        if (pv_db_backup(db, cp) != PV_OK)
            bench_die("pv_db_backup", pv_db_errmsg(db));
        if (stat(cf, &sb) == 0)
            compact_bytes = (double)sb.st_blocks * 512.0;
        unlink(cf);
        rmdir(cp);
    }

    /* 2. and 3. the vectors and the ground truth: made here, or reused */
    float *base = bench_alloc(o.n * dim * sizeof *base);
    float *qv = bench_alloc(o.nq * dim * sizeof *qv);
    uint32_t *gt = bench_alloc(o.nq * K * sizeof *gt);
    double embed_s = 0;
    if (o.reuse) {
        reuse_vectors(&o, dim, base, qv, gt);
    } else {
        embed_s = export_vectors(&o, &emb, ncpu, bp, qp, dim, base, qv);
        ground_truth(base, o.n, qv, o.nq, dim, gt);
        bench_write_file(o.work, "base.f32", base, o.n * dim * sizeof *base);
        bench_write_file(o.work, "query.f32", qv, o.nq * dim * sizeof *qv);
        bench_write_file(o.work, "gt.u32", gt, o.nq * K * sizeof *gt);
        bench_path_join(path, sizeof path, o.work, "shape");
        FILE *f = fopen(path, "w");
        if (!f)
            bench_die("cannot write", path);
        fprintf(f, "%zu %zu %u %d %d %d\n", o.n, o.nq, dim, K, o.M, o.efc);
        fclose(f);
    }
    double agree = exact_agreement(db, qv, o.nq, dim, pos, gt);

    /* 4. queries, one thread, each ef until the recall asked for */
    double recall[MAXEFS], qps[MAXEFS], others[MAXEFS];
    int nefs = 0;
    while (nefs < o.nefs) {
        pv_query_opts qo = {.k = K, .ef = o.efs[nefs], .ids_only = 1,
                            .no_rerank = o.no_rerank};
        bench_mark me = bench_mark_now();
        qps[nefs] = run_queries(db, &qo, qv, o.nq, dim, o.reps, pos, gt, &recall[nefs]);
        others[nefs] = bench_others_pct(me, ncpu);
        int reached = o.stop_recall > 0 && recall[nefs] >= o.stop_recall;
        nefs++;
        if (reached)
            break;
    }

    /* The same at ef = 20 with each hit's path looked up (the default
     * pv_query_opts): what an application that wants paths pays. */
    pv_query_opts qpo = {.k = K, .ef = 20, .no_rerank = o.no_rerank};
    double qps_paths = run_queries(db, &qpo, qv, o.nq, dim, o.reps, pos, gt, NULL);

    double vacuum_s = 0;
    if (o.vacuum) {
        double t = bench_now();
        if (pv_vacuum(db) != PV_OK)
            bench_die("pv_vacuum", pv_db_errmsg(db));
        vacuum_s = bench_now() - t;
    }

    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    printf("## pixvec HNSW: %zu vectors of %u-d (%s embedder), %zu queries, M=%d, "
           "ef_construction=%d, vectors %s (asked %s), %s\n\n",
           o.n, dim, info.embedder, o.nq, o.M, o.efc, vectors_name(info.vectors, info.compact_only),
           vectors_name(o.vectors, o.compact_only),
           info.compact_only ? "codes only (no float32 kept: the codes' scores)"
           : o.no_rerank     ? "no rerank (compact scores as they are)"
                             : "final candidates re-scored in float32");
    printf("- cpu: %s, %d cores online\n", cpu, ncpu);
    if (!o.open)
        printf("- build (pv_add, decode + embed + graph + %s): %.2f s, %.0f images/s, CPU %.0f %% of %d cores, others' CPU %.0f %%\n",
               "fsync'd commits", build_s, (double)o.n / build_s,
               100.0 * build_cpu / build_s / ncpu, ncpu, build_others);
    if (!o.reuse)
        printf("- embed only (pv_embed_file, decode + embed, one image a call, %d threads): %.2f s; "
               "build - embed = %.2f s (an estimate: pv_add embeds a grab of files in one call, "
               "so below 0 when that is faster; --vacuum measures the index alone)\n",
               ncpu, embed_s, build_s - embed_s);
    if (o.vacuum)
        printf("- index only (pv_vacuum after the queries: the graph rebuilt from the stored vectors, %d threads, one commit): %.2f s\n",
               ncpu, vacuum_s);
    printf("- disk: data.mdb %llu bytes = %.0f bytes/vector (float32 vector alone: %u; "
           "compact copy: %u bytes, %llu of %zu ids coded); graph levels %u\n",
           (unsigned long long)info.disk_bytes, (double)info.disk_bytes / (double)o.n,
           dim * 4, info.code_bytes, (unsigned long long)info.coded, o.n, info.graph_levels);
    printf("- compacted copy (pv_db_backup): %.0f bytes = %.0f bytes/vector\n", compact_bytes,
           compact_bytes / (double)o.n);
    printf("- ground truth (sgemm) vs pv_query_vector exact=1 on %zu queries: %.4f top-10 overlap\n\n",
           o.nq < 20 ? o.nq : 20, agree);
    printf("| ef | recall@10 | queries/s (1 thread, median of %d) | others' CPU |\n|---|---|---|---|\n", o.reps);
    for (int e = 0; e < nefs; e++)
        printf("| %d | %.4f | %.0f | %.0f %% |\n", o.efs[e], recall[e], qps[e], others[e]);
    if (nefs < o.nefs)
        printf("\n(sweep stopped at ef %d: recall@10 reached %.2f)\n", o.efs[nefs - 1], o.stop_recall);
    printf("\nq/s above: ids and scores (pv_query_opts.ids_only), as hnswlib returns labels; "
           "with each hit's path looked up, ef = 20: %.0f q/s\n", qps_paths);

    put("n", (double)o.n);
    put("q", (double)o.nq);
    put("dim", dim);
    put_str("embedder", info.embedder);
    put_str("vectors_asked", vectors_name(o.vectors, o.compact_only));
    put_str("vectors", vectors_name(info.vectors, info.compact_only));
    put("no_rerank", o.no_rerank);
    put("sample_first", (double)o.sample_first);
    if (!o.open) {
        put("build_s", build_s);
        put("build_others", build_others);
        put("build_cpu_pct", 100.0 * build_cpu / build_s / ncpu);
    }
    if (!o.reuse) {
        put("embed_s", embed_s);
        put("embed_threads", ncpu);
    }
    if (o.vacuum)
        put("vacuum_s", vacuum_s);
    put("disk_bytes", (double)info.disk_bytes);
    put("bytes_per_vec", (double)info.disk_bytes / (double)o.n);
    put("compact_bytes_per_vec", compact_bytes / (double)o.n);
    put("code_bytes", info.code_bytes);
    put("coded", (double)info.coded);
    put("levels", info.graph_levels);
    put("exact_agree", agree);
    put("ef20_qps_paths", qps_paths);
    if (kv) {
        fprintf(kv, "efs=");
        for (int e = 0; e < nefs; e++)
            fprintf(kv, "%s%d", e ? "," : "", o.efs[e]);
        fprintf(kv, "\n");
    }
    for (int e = 0; e < nefs; e++) {
        char k[64];
        snprintf(k, sizeof k, "ef%d_recall", o.efs[e]);
        put(k, recall[e]);
        snprintf(k, sizeof k, "ef%d_qps", o.efs[e]);
        put(k, qps[e]);
        snprintf(k, sizeof k, "ef%d_others", o.efs[e]);
        put(k, others[e]);
    }
    if (kv)
        fclose(kv);
    pv_db_close(db);
    free(gt);
    free(qv);
    free(base);
    free(pos);
    free(bp);
    free(qp);
    bench_list_free(&train);
    bench_list_free(&test);
    return 0;
}
