/*
 * bench_growth.c - how cost grows with the collection (issue 17, part 4):
 * add, query latency from a warm and a cold page cache, dups and disk size,
 * per database, through the public API. bench/run_growth.sh makes the
 * pictures (bench_dups gen), calls this once per size and vectors kind, and
 * prints the table.
 *
 *   bench_growth build --db DB --images DIR --vectors f32|f16|i8 [--size S]
 *                      [--kv FILE]
 *     pv_db_create (pixels embedder, side S, default 16; pv_index_opts
 *     .vectors) and one pv_add of DIR on every core, as `pixvec add` does.
 *     Prints the wall time, images/s and the CPU time an image (less
 *     moved by other jobs on a shared machine than the wall time); --kv
 *     keeps them (add_s, add_cpu_s, images) for runs that reuse the
 *     database.
 *
 *   bench_growth kind --db DB
 *     Prints the vectors kind the database reports (f32, f16, i8), so that
 *     a re-run rebuilds a database the engine made as another kind.
 *
 *   bench_growth measure --db DB --queries DIR [--nq Q] [--add-kv FILE]
 *     Q query vectors: the first Q pictures under DIR (not in the database)
 *     through pv_embed_file, outside every timing. Then each step in its own
 *     child process, on a read-only handle, in this order:
 *     1. cold: data.mdb's pages evicted from the page cache (fdatasync, then
 *        posix_fadvise DONTNEED from a process that has not mapped it; the
 *        resident fraction is checked with mincore and printed), then
 *        pv_db_open + the first pv_query_vector (k 10, default ef) timed as
 *        one (what a fresh `pixvec query` waits, without its image decode),
 *        then the other Q-1 queries, each timed: p50, p99, and the fraction
 *        of the file resident after the first query and after all. LMDB
 *        maps the file without MDB_NORDAHEAD, so each page fault reads
 *        ahead as far as the device's read_ahead_kb (8 MiB on this VM's
 *        disk): a few faults can bring in most of a small database;
 *     2. warm: the whole file read once (so every page is cached), the
 *        open timed (how much of a cold open is reading), one
 *        untimed pass of the Q queries, then a timed pass: p50 and p99; and
 *        recall@10 of the first 100 against pv_query_vector exact = 1
 *        (compact vectors trade recall for speed, so their latency alone
 *        says little);
 *     3. dups: pv_find_dups with the defaults (`pixvec dups`: the embedder's
 *        threshold, PV_DUPS_AUTO, which is the HNSW self-join above
 *        PV_DUPS_EXACT_MAX items), on the warm cache: wall time, pairs,
 *        peak RSS.
 *     Prints one markdown row (see run_growth.sh for the header) to stdout
 *     and what else it saw on stderr. The vectors kind in the row is the one
 *     pv_db_info reports; if the database did not keep a compact copy
 *     (pv_info.coded 0), the row says so.
 *
 * Cold here means the guest's page cache: this machine is a virtual one, and
 * the host may still hold the file's blocks, so a "cold" read may come from
 * host memory rather than the disk (the first-query figure is then a lower
 * bound for a real cold disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "pixvec.h"

#define K 10
#define NRECALL 100

/* What a child measured, in a shared anonymous map the parent reads. */
typedef struct cold_res {
    double resident_before, resident_first, resident_after; /* of data.mdb's pages */
    double open_ms, first_ms;                               /* open; open + first query */
    double p50_ms, p99_ms;                                  /* the queries after the first */
} cold_res;

typedef struct warm_res {
    double resident, open_ms, p50_ms, p99_ms, recall;
    double others; /* % of the machine's CPU other processes used meanwhile */
} warm_res;

typedef struct dups_res {
    double seconds, others;
    uint64_t pairs, groups, scanned;
    int approximate;
    long maxrss_kb;
} dups_res;

typedef struct shared_res {
    cold_res cold;
    warm_res warm;
    dups_res dups;
} shared_res;

/* What every child step gets. */
typedef struct job {
    const char *dbpath, *mdb; /* the database and its data.mdb */
    const float *qv;          /* nq query vectors of dim floats */
    uint32_t dim;
    size_t nq;
    shared_res *r;
} job;

/* `pixvec init --vectors` names: PV_VECTORS_*, then + 2 for compact-only. */
static const char *const KINDS[] = {"f32", "f16", "i8", "f16-only", "i8-only"};

static const char *vectors_name(int v, int only)
{
    return KINDS[only && v != PV_VECTORS_F32 ? v + 2 : v];
}

static int vectors_parse(const char *s)
{
    for (int k = 0; k < 5; k++)
        if (!strcmp(s, KINDS[k]))
            return k;
    bench_die("--vectors takes f32, f16, i8, f16-only or i8-only, not", s);
}

/* ---- build ------------------------------------------------------------- */

static int cmd_build(const char *dbpath, const char *images, int vectors, int size,
                     const char *kvfile)
{
    char err[1024];
    pv_db *db;
    pv_embedder_opts eo = {.name = "pixels", .size = size};
    pv_index_opts io = {.vectors = vectors > PV_VECTORS_I8 ? vectors - 2 : vectors,
                        .compact_only = vectors > PV_VECTORS_I8};
    pv_add_opts ao = {0};
    pv_add_stats st;
    if (pv_db_create(dbpath, &eo, &io, &db, err, sizeof err) != 0)
        bench_die("pv_db_create", err);
    bench_mark mk = bench_mark_now();
    if (pv_add(db, &images, 1, &ao, &st) != 0)
        bench_die("pv_add", pv_db_errmsg(db));
    double s = bench_now() - mk.wall, cpu = bench_cpu_seconds() - mk.self;
    double others = bench_others_pct(mk, (int)sysconf(_SC_NPROCESSORS_ONLN));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    pv_db_close(db);
    if (st.failed)
        bench_die("pv_add: some pictures failed", images);
    printf("build %s (%s, pixels %dx%d): %llu images in %.1f s, %.0f images/s (CPU %.1f s, "
           "%.0f us an image); peak RSS %.0f MiB; others' CPU %.0f %%\n",
           dbpath, KINDS[vectors], size, size, (unsigned long long)st.added, s,
           (double)st.added / s, cpu, 1e6 * cpu / (double)(st.added ? st.added : 1),
           ru.ru_maxrss / 1024.0, others);
    if (kvfile) {
        FILE *f = fopen(kvfile, "w");
        if (!f ||
            fprintf(f, "add_s=%.3f\nadd_cpu_s=%.3f\nimages=%llu\n", s, cpu,
                    (unsigned long long)st.added) < 0 ||
            fclose(f) != 0)
            bench_die("write", kvfile);
    }
    return 0;
}

/* ---- page cache -------------------------------------------------------- */

/* Fraction of the file's pages in the page cache (mincore on a private
 * read-only map; mapping alone faults nothing in). */
static double resident_fraction(const char *file)
{
    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        bench_die("open", file);
    const long pg = sysconf(_SC_PAGESIZE);
    const size_t len = (size_t)st.st_size, npages = (len + (size_t)pg - 1) / (size_t)pg;
    if (len == 0) {
        close(fd);
        return 0;
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *vec = bench_alloc(npages);
    if (m == MAP_FAILED || mincore(m, len, vec) != 0)
        bench_die("mincore", file);
    size_t in = 0;
    for (size_t i = 0; i < npages; i++)
        in += vec[i] & 1;
    munmap(m, len);
    free(vec);
    close(fd);
    return (double)in / (double)npages;
}

/* Drop the file's clean pages from the page cache. Pages some process has
 * mapped stay, so this runs before the database is opened. Without root
 * (or on a shared machine, where `echo 3 > drop_caches` would evict every
 * user's cache) this is the per-file way to get a cold start. */
static void evict(const char *file)
{
    int fd = open(file, O_RDONLY);
    if (fd < 0 || fdatasync(fd) != 0)
        bench_die("fdatasync", file);
    int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (rc != 0)
        bench_die("posix_fadvise", strerror(rc));
    close(fd);
}

/* Read the whole file so that every page is cached. */
static void warm_up(const char *file)
{
    static char buf[1 << 20];
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        bench_die("open", file);
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
}

/* ---- measure ----------------------------------------------------------- */

static pv_db *open_ro(const char *dbpath)
{
    char err[1024];
    pv_db *db;
    if (pv_db_open(dbpath, PV_OPEN_RDONLY, &db, err, sizeof err) != 0)
        bench_die("pv_db_open", err);
    return db;
}

/* One k-NN query; the ids of its hits into ids (K of them, or fewer). */
static size_t query(pv_db *db, const float *q, uint32_t dim, int exact, uint32_t *ids)
{
    pv_query_opts o = {.k = K, .exact = exact, .ids_only = 1};
    pv_hit *h;
    size_t n;
    if (pv_query_vector(db, q, dim, &o, &h, &n) != 0)
        bench_die("pv_query_vector", pv_db_errmsg(db));
    for (size_t i = 0; i < n && ids; i++)
        ids[i] = h[i].id;
    pv_hits_free(h, n);
    return n;
}

/* Latency of queries [from, nq) one by one, in ms: p50 and p99. */
static void time_queries(pv_db *db, const float *qv, uint32_t dim, size_t from, size_t nq,
                         double *p50, double *p99)
{
    double *ms = bench_alloc((nq - from) * sizeof *ms);
    for (size_t i = from; i < nq; i++) {
        double t0 = bench_now();
        query(db, qv + i * dim, dim, 0, NULL);
        ms[i - from] = (bench_now() - t0) * 1e3;
    }
    *p50 = bench_quantile(ms, nq - from, 0.5);
    *p99 = bench_quantile(ms, nq - from, 0.99);
    free(ms);
}

static void child_cold(const job *j)
{
    const char *mdb = j->mdb;
    const float *qv = j->qv;
    const uint32_t dim = j->dim;
    const size_t nq = j->nq;
    cold_res *r = &j->r->cold;
    evict(mdb);
    r->resident_before = resident_fraction(mdb);
    double t0 = bench_now();
    pv_db *db = open_ro(j->dbpath);
    r->open_ms = (bench_now() - t0) * 1e3;
    query(db, qv, dim, 0, NULL);
    r->first_ms = (bench_now() - t0) * 1e3;
    r->resident_first = resident_fraction(mdb);
    time_queries(db, qv, dim, 1, nq, &r->p50_ms, &r->p99_ms);
    pv_db_close(db);
    r->resident_after = resident_fraction(mdb);
}

static void child_warm(const job *j)
{
    const float *qv = j->qv;
    const uint32_t dim = j->dim;
    const size_t nq = j->nq;
    warm_res *r = &j->r->warm;
    warm_up(j->mdb);
    r->resident = resident_fraction(j->mdb);
    double t0 = bench_now();
    pv_db *db = open_ro(j->dbpath);
    r->open_ms = (bench_now() - t0) * 1e3;
    for (size_t i = 0; i < nq; i++)
        query(db, qv + i * dim, dim, 0, NULL);
    bench_mark mk = bench_mark_now();
    time_queries(db, qv, dim, 0, nq, &r->p50_ms, &r->p99_ms);
    r->others = bench_others_pct(mk, (int)sysconf(_SC_NPROCESSORS_ONLN));
    /* recall@10 of the graph against the exact scan */
    size_t hit = 0, want = 0, nr = nq < NRECALL ? nq : NRECALL;
    for (size_t i = 0; i < nr; i++) {
        uint32_t a[K], e[K];
        size_t na = query(db, qv + i * dim, dim, 0, a), ne = query(db, qv + i * dim, dim, 1, e);
        for (size_t x = 0; x < ne; x++)
            for (size_t y = 0; y < na; y++)
                hit += e[x] == a[y];
        want += ne;
    }
    r->recall = want ? (double)hit / (double)want : 1.0;
    pv_db_close(db);
}

static void child_dups(const job *j)
{
    dups_res *r = &j->r->dups;
    pv_db *db = open_ro(j->dbpath);
    pv_dups_opts o = {0};
    pv_dups *d;
    bench_mark mk = bench_mark_now();
    if (pv_find_dups(db, &o, &d) != 0)
        bench_die("pv_find_dups", pv_db_errmsg(db));
    r->seconds = bench_now() - mk.wall;
    r->others = bench_others_pct(mk, (int)sysconf(_SC_NPROCESSORS_ONLN));
    r->pairs = d->pairs;
    r->groups = d->ngroups;
    r->scanned = d->scanned;
    r->approximate = d->approximate;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->maxrss_kb = ru.ru_maxrss;
    pv_dups_free(d);
    pv_db_close(db);
}

/* Run fn(j) in a child: its own address space (no map of data.mdb left
 * from another step) and its own peak RSS. Exits when the child failed. */
static void in_child(const char *what, void (*fn)(const job *), const job *j)
{
    fflush(NULL); /* or the child prints the parent's buffer again */
    pid_t pid = fork();
    if (pid == 0) {
        fn(j);
        _exit(0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("the child failed", what);
}

/* The query vectors: the first nq pictures under dir, embedded by db's
 * embedder. */
static float *query_vectors(pv_db *db, const char *dir, uint32_t dim, size_t *nq)
{
    bench_list l = {0};
    bench_find_png(dir, &l);
    if (l.n < *nq)
        *nq = l.n;
    if (*nq == 0)
        bench_die("no query pictures under", dir);
    float *qv = bench_alloc(*nq * dim * sizeof *qv);
    for (size_t i = 0; i < *nq; i++)
        if (pv_embed_file(db, l.s[i], qv + i * dim, dim) != 0)
            bench_die("pv_embed_file", pv_db_errmsg(db));
    bench_list_free(&l);
    return qv;
}

/* add_s and images from build's --kv file (0 when absent). */
static void read_add_kv(const char *file, double *add_s, double *images)
{
    char line[256];
    FILE *f = file ? fopen(file, "r") : NULL;
    *add_s = *images = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "add_s=", 6))
            *add_s = atof(line + 6);
        else if (!strncmp(line, "images=", 7))
            *images = atof(line + 7);
    }
    if (f)
        fclose(f);
}

/* What a row does not show, on stderr. */
static void print_details(const char *dbpath, const pv_info *info, size_t nq, const shared_res *r)
{
    const cold_res *c = &r->cold;
    const warm_res *w = &r->warm;
    const dups_res *d = &r->dups;
    fprintf(stderr, "  %s: %llu items, %u dims, %llu coded (%u B each); data.mdb %.1f MiB\n",
            dbpath, (unsigned long long)info->items, info->dim, (unsigned long long)info->coded,
            info->code_bytes, info->disk_bytes / 1048576.0);
    fprintf(stderr,
            "  cold: resident before %.1f %%, after the first query %.1f %%, after all %.1f %%; "
            "open %.2f ms, open + first query %.2f ms; then p50 %.3f ms, p99 %.3f ms\n",
            100 * c->resident_before, 100 * c->resident_first, 100 * c->resident_after, c->open_ms,
            c->first_ms, c->p50_ms, c->p99_ms);
    fprintf(stderr,
            "  warm: resident %.1f %%; open %.2f ms; %zu queries (k %d): p50 %.3f ms, p99 "
            "%.3f ms (others' CPU %.0f %%); recall@10 %.4f (%zu queries)\n",
            100 * w->resident, w->open_ms, nq, K, w->p50_ms, w->p99_ms, w->others, w->recall,
            nq < NRECALL ? nq : NRECALL);
    fprintf(stderr,
            "  dups: %.2f s (%s), %llu scanned, %llu pairs, %llu groups; peak RSS %.0f MiB; "
            "others' CPU %.0f %%\n",
            d->seconds, d->approximate ? "graph" : "exact", (unsigned long long)d->scanned,
            (unsigned long long)d->pairs, (unsigned long long)d->groups, d->maxrss_kb / 1024.0,
            d->others);
}

static int cmd_measure(const char *dbpath, const char *qdir, size_t nq, const char *addkv,
                       const char *asked)
{
    char mdb[4200];
    pv_info info;
    bench_path_join(mdb, sizeof mdb, dbpath, "data.mdb");
    pv_db *db = open_ro(dbpath);
    if (pv_db_info(db, &info) != 0)
        bench_die("pv_db_info", pv_db_errmsg(db));
    float *qv = query_vectors(db, qdir, info.dim, &nq);
    pv_db_close(db);
    if (nq < 2)
        bench_die("measure needs at least 2 query pictures", qdir);

    shared_res *r =
        mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        bench_die("mmap", strerror(errno));
    memset(r, 0, sizeof *r);
    const job j = {dbpath, mdb, qv, info.dim, nq, r};
    in_child("cold", child_cold, &j);
    in_child("warm", child_warm, &j);
    in_child("dups", child_dups, &j);

    double add_s, images;
    read_add_kv(addkv, &add_s, &images);
    /* The kind the database reports, and whether it kept compact copies:
     * until the engine implements them, an "i8" database is float32. */
    char kind[64];
    const char *have = vectors_name(info.vectors, info.compact_only);
    if (asked && strcmp(asked, have) != 0)
        snprintf(kind, sizeof kind, "%s (asked %s)", have, asked);
    else if (info.vectors != PV_VECTORS_F32 && info.coded == 0)
        snprintf(kind, sizeof kind, "%s (no codes)", have);
    else
        snprintf(kind, sizeof kind, "%s", have);
    const double n = (double)info.items;
    print_details(dbpath, &info, nq, r);
    printf("| %llu | %s | %.0f | %.0f | %.3f / %.3f | %.1f | %.3f / %.3f | %.4f "
           "| %.2f%s |\n",
           (unsigned long long)info.items, kind, add_s > 0 ? images / add_s : 0,
           n > 0 ? (double)info.disk_bytes / n : 0, r->warm.p50_ms, r->warm.p99_ms,
           r->cold.first_ms, r->cold.p50_ms, r->cold.p99_ms, r->warm.recall, r->dups.seconds,
           r->dups.approximate ? "" : " (exact)");
    munmap(r, sizeof *r);
    free(qv);
    return 0;
}

static int cmd_kind(const char *dbpath)
{
    pv_info info;
    pv_db *db = open_ro(dbpath);
    if (pv_db_info(db, &info) != 0)
        bench_die("pv_db_info", pv_db_errmsg(db));
    printf("%s\n", vectors_name(info.vectors, info.compact_only));
    pv_db_close(db);
    return 0;
}

/* Every option takes a value: "--name value" pairs after the command. */
typedef struct option {
    const char *name;
    const char **value;
} option;

static int parse_options(int argc, char **argv, const option *opts, size_t nopts)
{
    for (int i = 2; i < argc; i += 2) {
        size_t o = 0;
        while (o < nopts && strcmp(argv[i], opts[o].name) != 0)
            o++;
        if (o == nopts || i + 1 >= argc)
            return -1;
        *opts[o].value = argv[i + 1];
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *images = NULL, *queries = NULL, *kv = NULL, *vec = NULL;
    const char *size_s = "16", *nq_s = "1000";
    const option opts[] = {{"--db", &db},       {"--images", &images}, {"--queries", &queries},
                           {"--vectors", &vec}, {"--size", &size_s},   {"--nq", &nq_s},
                           {"--kv", &kv},       {"--add-kv", &kv}};
    if (argc < 2 || parse_options(argc, argv, opts, sizeof opts / sizeof opts[0]) != 0)
        goto usage;
    const int size = atoi(size_s);
    const size_t nq = strtoull(nq_s, NULL, 10);
    if (!strcmp(argv[1], "build") && db && images && size >= 2 && size <= 512)
        return cmd_build(db, images, vectors_parse(vec ? vec : "f32"), size, kv);
    if (!strcmp(argv[1], "kind") && db)
        return cmd_kind(db);
    if (!strcmp(argv[1], "measure") && db && queries && nq >= 2)
        return cmd_measure(db, queries, nq, kv, vec);
usage:
    fprintf(stderr, "usage: bench_growth build --db DB --images DIR [--vectors f32|f16|i8] "
                    "[--size S] [--kv FILE]\n"
                    "       bench_growth kind --db DB\n"
                    "       bench_growth measure --db DB --queries DIR [--nq Q] "
                    "[--add-kv FILE] [--vectors KIND asked at build]\n");
    return 2;
}
