/*
 * bench_dups.c - the duplicate scan at scale (issue 6): the approximate
 * (HNSW self-join) mode against the exact all-pairs scan, on one database.
 *
 *   bench_dups gen --out DIR --n N [--seed S] [--planted F]
 *     N synthetic 16 x 16 grey PNGs in folders of 10,000: random pictures
 *     (four Gaussian blobs of random place, width and sign on a random
 *     gradient, plus uniform per-pixel texture). A fraction F (default 0.02) of the pictures get 1-3
 *     near copies each: +-6 grey levels of uniform noise, +12 brightness, or
 *     a 1-pixel shift. Names carry the family: fNNNNNNN_vK.png for a planted
 *     family (K = 0 the original), uNNNNNNN.png for the others.
 *
 *   bench_dups run --db DB [--threshold T] [--modes exact,approx]
 *                  [--neighbours K] [--ef EF] [--kv FILE] [--pairs-out FILE]
 *     Each mode runs in a child process (so each has its own peak RSS):
 *     pv_find_dups with want_pairs, on a read-only handle. Prints the scan's
 *     wall time, pairs, groups, images and the child's peak RSS (VmHWM:
 *     resident pages, LMDB's file-backed map included) and its anonymous
 *     peak (heap: VmHWM minus the map's resident pages is not tracked by the
 *     kernel, so RssAnon at the end is printed too). Then the pair recall of
 *     each mode against the exact one, and, when the names follow gen's
 *     scheme, recall of the planted pairs. --pairs-out FILE keeps the
 *     exact mode's pairs (the binary array of pv_dup_pair, by (a, b)) as
 *     the reference for a peer (peer_hnswlib_dups --ref).
 *
 *   bench_dups export --db DB --out FILE.f32
 *     Every live item's vector in id order, as raw float32 rows (no
 *     header: the row count is FILE.ids', the dimension follows from the
 *     sizes), and FILE.ids, the uint32 id of each row (ids equal rows only
 *     when nothing was removed). Public API only: pv_items, then
 *     pv_embed_file on each path, which for a deterministic embedder gives
 *     the stored vector again; a sample of rows is checked by an exact
 *     pv_query_vector, which must find the row's own id at score ~1.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "gen.h"
#include "pixvec.h"

#define SIDE 16

/* ---- gen --------------------------------------------------------------- */

static uint64_t rng_state;
static double rnd(void) /* uniform [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static void picture(uint8_t *px)
{
    double f[SIDE * SIDE], lo = 1e30, hi = -1e30;
    double gx = rnd() * 2 - 1, gy = rnd() * 2 - 1;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
            f[y * SIDE + x] = 0.3 * (gx * x + gy * y) / SIDE;
    for (int b = 0; b < 4; b++) {
        double cx = rnd() * SIDE, cy = rnd() * SIDE, s = 1.5 + rnd() * 4.5;
        double a = rnd() < 0.5 ? -1 : 1;
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++)
                f[y * SIDE + x] += a * exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * s * s));
    }
    /* Texture: without it the pictures, seen at 8 x 8, have so few degrees
     * of freedom that at 1M half of them have a neighbour >= 0.95; with it
     * (uniform, 0.8 of a blob's height) about 1 in 2,000 of 20,000 do and
     * 10 % have one >= 0.9, a dense background below the planted copies. */
    for (int i = 0; i < SIDE * SIDE; i++)
        f[i] += 0.8 * (rnd() * 2 - 1);
    for (int i = 0; i < SIDE * SIDE; i++) {
        lo = f[i] < lo ? f[i] : lo;
        hi = f[i] > hi ? f[i] : hi;
    }
    for (int i = 0; i < SIDE * SIDE; i++)
        px[i] = (uint8_t)lround(20 + 215 * (f[i] - lo) / (hi - lo + 1e-9));
}

static void copy_variant(const uint8_t *src, uint8_t *dst, int kind)
{
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int v;
            if (kind == 0)
                v = src[y * SIDE + x] + (int)lround(rnd() * 12 - 6);
            else if (kind == 1)
                v = src[y * SIDE + x] + 12;
            else /* one pixel right, the edge column repeated */
                v = src[y * SIDE + (x > 0 ? x - 1 : 0)];
            dst[y * SIDE + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

static void write_png(const char *out, uint64_t serial, const char *name, const uint8_t *px)
{
    char folder[4096], path[4200];
    snprintf(folder, sizeof folder, "%s/%04llu", out, (unsigned long long)(serial / 10000));
    if (serial % 10000 == 0 && mkdir(folder, 0755) != 0 && errno != EEXIST)
        bench_die("mkdir", folder);
    snprintf(path, sizeof path, "%s/%s", folder, name);
    if (gen_write_png(path, SIDE, SIDE, GEN_PNG_GREY, 8, px, NULL) != 0)
        bench_die("write", path);
}

static int cmd_gen(const char *out, uint64_t n, uint64_t seed, double planted)
{
    uint8_t px[SIDE * SIDE], cp[SIDE * SIDE];
    uint64_t serial = 0, fam = 0, copies = 0;
    char name[64];
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        bench_die("mkdir", out);
    while (serial < n) {
        picture(px);
        if (rnd() < planted && serial + 2 <= n) {
            int k = 1 + (int)(rnd() * 3);
            snprintf(name, sizeof name, "f%07llu_v0.png", (unsigned long long)fam);
            write_png(out, serial++, name, px);
            for (int c = 1; c <= k && serial < n; c++) {
                copy_variant(px, cp, (int)(rnd() * 3));
                snprintf(name, sizeof name, "f%07llu_v%d.png", (unsigned long long)fam, c);
                write_png(out, serial++, name, cp);
                copies++;
            }
            fam++;
        } else {
            snprintf(name, sizeof name, "u%07llu.png", (unsigned long long)serial);
            write_png(out, serial++, name, px);
        }
    }
    printf("gen: %llu pictures in %s, %llu planted families with %llu near copies\n",
           (unsigned long long)n, out, (unsigned long long)fam, (unsigned long long)copies);
    return 0;
}

/* ---- export ------------------------------------------------------------ */

static int cmd_export(const char *dbpath, const char *out)
{
    char err[1024], idsfile[4096];
    pv_db *db;
    pv_info info;
    pv_item *it;
    size_t n, len = strlen(out);
    if (len > 4 && !strcmp(out + len - 4, ".f32"))
        snprintf(idsfile, sizeof idsfile, "%.*s.ids", (int)(len - 4), out);
    else
        snprintf(idsfile, sizeof idsfile, "%s.ids", out);
    if (pv_db_open(dbpath, PV_OPEN_RDONLY, &db, err, sizeof err) != 0)
        bench_die("pv_db_open", err);
    if (pv_db_info(db, &info) != 0 || pv_items(db, &it, &n) != 0)
        bench_die("pv_items", pv_db_errmsg(db));
    if (n == 0)
        bench_die("export", "the database holds no live item");
    const uint32_t dim = info.dim;
    float *v = bench_alloc(n * dim * sizeof *v);
    uint32_t *ids = bench_alloc(n * sizeof *ids);
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        ids[i] = it[i].id;
        if (pv_embed_file(db, it[i].path, v + i * dim, dim) != 0)
            bench_die("pv_embed_file", pv_db_errmsg(db));
    }
    double embed_s = bench_now() - t0;
    /* Same vectors as stored? The row's own id must come back at ~1 (a
     * flat image's zero vector has no direction to check). */
    const size_t nsample = n < 32 ? n : 32;
    pv_query_opts qo = {.k = 4, .exact = 1, .ids_only = 1};
    for (size_t s = 0; s < nsample; s++) {
        size_t i = s * n / nsample;
        pv_hit *h;
        size_t nh, found = 0;
        double norm2 = 0;
        for (uint32_t j = 0; j < dim; j++)
            norm2 += (double)v[i * dim + j] * v[i * dim + j];
        if (norm2 == 0)
            continue;
        if (pv_query_vector(db, v + i * dim, dim, &qo, &h, &nh) != 0)
            bench_die("pv_query_vector", pv_db_errmsg(db));
        for (size_t j = 0; j < nh; j++)
            found |= h[j].id == ids[i] && h[j].score > 0.9999f;
        pv_hits_free(h, nh);
        if (!found)
            bench_die("export: the re-embedded vector is not the stored one", it[i].path);
    }
    FILE *f = fopen(out, "wb");
    if (!f || fwrite(v, sizeof *v * dim, n, f) != n || fclose(f) != 0)
        bench_die("write", out);
    f = fopen(idsfile, "wb");
    if (!f || fwrite(ids, sizeof *ids, n, f) != n || fclose(f) != 0)
        bench_die("write", idsfile);
    printf("export: %zu vectors of %u dims (%s) to %s and %s in %.1f s; %zu rows checked "
           "against the stored vectors; graph M=%u ef_construction=%u\n",
           n, dim, info.embedder_desc, out, idsfile, embed_s, nsample, info.hnsw_m,
           info.hnsw_ef_construction);
    free(v);
    free(ids);
    pv_items_free(it, n);
    pv_db_close(db);
    return 0;
}

/* ---- run --------------------------------------------------------------- */

static long status_kb(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) {
            v = strtol(line + strlen(key) + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

typedef struct result {
    double wall, scan;
    uint64_t pairs, groups, images, dropped, scanned;
    long hwm_kb, anon_kb;
    float threshold;
} result;

/* In a child: the scan, its pairs to pairs_file, the result struct to
 * res_file. */
static void child_run(const char *dbpath, int mode, const pv_dups_opts *base,
                      const char *pairs_file, const char *res_file)
{
    char err[1024];
    pv_db *db;
    pv_dups *d;
    result r;
    memset(&r, 0, sizeof r);
    if (pv_db_open(dbpath, PV_OPEN_RDONLY, &db, err, sizeof err) != 0)
        bench_die("pv_db_open", err);
    pv_dups_opts o = *base;
    o.mode = mode;
    o.want_pairs = 1;
    double t0 = bench_now();
    if (pv_find_dups(db, &o, &d) != 0)
        bench_die("pv_find_dups", pv_db_errmsg(db));
    r.wall = bench_now() - t0;
    r.scan = d->seconds;
    r.pairs = d->pairs;
    r.groups = d->ngroups;
    r.images = d->images;
    r.dropped = d->dropped;
    r.scanned = d->scanned;
    r.threshold = d->threshold;
    r.hwm_kb = status_kb("VmHWM:");
    r.anon_kb = status_kb("RssAnon:");
    FILE *f = fopen(pairs_file, "wb");
    if (!f || fwrite(d->pair, sizeof *d->pair, d->pairs, f) != d->pairs || fclose(f) != 0)
        bench_die("write", pairs_file);
    f = fopen(res_file, "wb");
    if (!f || fwrite(&r, sizeof r, 1, f) != 1 || fclose(f) != 0)
        bench_die("write", res_file);
    pv_dups_free(d);
    pv_db_close(db);
    exit(0);
}

static pv_dup_pair *read_pairs(const char *file, size_t *n)
{
    struct stat st;
    if (stat(file, &st) != 0)
        bench_die("stat", file);
    *n = (size_t)st.st_size / sizeof(pv_dup_pair);
    pv_dup_pair *p = bench_alloc(*n * sizeof *p + 1);
    FILE *f = fopen(file, "rb");
    if (!f || fread(p, sizeof *p, *n, f) != *n)
        bench_die("read", file);
    fclose(f);
    return p;
}

/* |a intersect b| of two sorted pair lists. */
static size_t common_pairs(const pv_dup_pair *a, size_t na, const pv_dup_pair *b, size_t nb)
{
    size_t i = 0, j = 0, c = 0;
    while (i < na && j < nb) {
        uint64_t ka = (uint64_t)a[i].a << 32 | a[i].b, kb = (uint64_t)b[j].a << 32 | b[j].b;
        if (ka == kb) {
            c++;
            i++;
            j++;
        } else if (ka < kb) {
            i++;
        } else {
            j++;
        }
    }
    return c;
}

/* Family of each id from gen's names (-1: not planted); NULL if the names
 * do not follow the scheme. */
static long *families(const char *dbpath, uint32_t *nids, uint64_t *truth)
{
    char err[1024];
    pv_db *db;
    pv_item *it;
    size_t n;
    if (pv_db_open(dbpath, PV_OPEN_RDONLY, &db, err, sizeof err) != 0)
        bench_die("pv_db_open", err);
    if (pv_items(db, &it, &n) != 0)
        bench_die("pv_items", pv_db_errmsg(db));
    uint32_t maxid = 0;
    for (size_t i = 0; i < n; i++)
        maxid = it[i].id > maxid ? it[i].id : maxid;
    long *fam = bench_alloc(((size_t)maxid + 1) * sizeof *fam);
    int scheme = 0;
    for (size_t i = 0; i <= maxid; i++)
        fam[i] = -1;
    /* family sizes, to count the true pairs */
    long maxfam = -1;
    for (size_t i = 0; i < n; i++) {
        const char *b = strrchr(it[i].path, '/');
        b = b ? b + 1 : it[i].path;
        if (b[0] == 'f' && strstr(b, "_v")) {
            fam[it[i].id] = strtol(b + 1, NULL, 10);
            maxfam = fam[it[i].id] > maxfam ? fam[it[i].id] : maxfam;
            scheme = 1;
        }
    }
    uint32_t *size = bench_alloc(((size_t)maxfam + 2) * sizeof *size);
    memset(size, 0, ((size_t)maxfam + 2) * sizeof *size);
    for (size_t i = 0; i <= maxid; i++)
        if (fam[i] >= 0)
            size[fam[i]]++;
    *truth = 0;
    for (long f = 0; f <= maxfam; f++)
        *truth += (uint64_t)size[f] * (size[f] - 1) / 2;
    free(size);
    *nids = maxid + 1;
    pv_items_free(it, n);
    pv_db_close(db);
    if (!scheme) {
        free(fam);
        return NULL;
    }
    return fam;
}

static int cmd_run(const char *dbpath, const char *modes, const pv_dups_opts *o,
                   const char *outfile, const char *pairs_out)
{
    char work[] = "/tmp/pixvec-bench-dups.XXXXXX", pf[2][256], rf[2][256];
    const char *names[2] = {"exact", "approx"};
    int want[2] = {strstr(modes, "exact") != NULL, strstr(modes, "approx") != NULL};
    result r[2];
    pv_dup_pair *p[2] = {NULL, NULL};
    size_t np[2] = {0, 0};
    char cpu[128];
    if (!mkdtemp(work))
        bench_die("mkdtemp", work);
    bench_cpu_model(cpu, sizeof cpu);
    printf("- cpu: %s, %ld cores; db %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), dbpath);
    for (int m = 0; m < 2; m++) {
        if (!want[m])
            continue;
        snprintf(pf[m], sizeof pf[m], "%s/%s.pairs", work, names[m]);
        snprintf(rf[m], sizeof rf[m], "%s/%s.res", work, names[m]);
        bench_mark mk = bench_mark_now();
        fflush(stdout); /* or the child prints the parent's buffer again */
        pid_t pid = fork();
        if (pid == 0)
            child_run(dbpath, m == 0 ? PV_DUPS_EXACT : PV_DUPS_APPROX, o, pf[m], rf[m]);
        int st;
        struct rusage ru;
        double t_wait0 = bench_now();
        if (pid < 0 || wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bench_die("the scan's child failed", names[m]);
        /* bench_others_pct counts the child as another process: take its
         * CPU time back out. */
        const int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
        double child_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
                           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
        double others = bench_others_pct(mk, ncpu) -
                        100.0 * child_cpu / (ncpu * (bench_now() - t_wait0 + 1e-9));
        others = others < 0 ? 0 : others;
        FILE *f = fopen(rf[m], "rb");
        if (!f || fread(&r[m], sizeof r[m], 1, f) != 1)
            bench_die("read", rf[m]);
        fclose(f);
        p[m] = read_pairs(pf[m], &np[m]);
        printf("%-6s scanned %llu at threshold %.4f: %.2f s (scan %.2f s), %llu pairs, %llu "
               "groups, %llu images, %llu to drop; peak RSS %.1f MiB (RssAnon at end %.1f MiB); "
               "others' CPU %.0f %%\n",
               names[m], (unsigned long long)r[m].scanned, r[m].threshold, r[m].wall, r[m].scan,
               (unsigned long long)r[m].pairs, (unsigned long long)r[m].groups,
               (unsigned long long)r[m].images, (unsigned long long)r[m].dropped,
               r[m].hwm_kb / 1024.0, r[m].anon_kb / 1024.0, others);
        fflush(stdout);
    }
    if (pairs_out) {
        FILE *f = fopen(pairs_out, "wb");
        if (!f || fwrite(p[0], sizeof *p[0], np[0], f) != np[0] || fclose(f) != 0)
            bench_die("write", pairs_out);
    }
    FILE *kv = outfile ? fopen(outfile, "w") : NULL;
    if (want[0] && want[1]) {
        size_t c = common_pairs(p[0], np[0], p[1], np[1]);
        printf("approx pair recall against exact: %.4f (%zu of %zu); approx pairs not in exact: "
               "%zu; speed-up %.1fx\n",
               np[0] ? (double)c / (double)np[0] : 1.0, c, np[0], np[1] - c,
               r[1].wall > 0 ? r[0].wall / r[1].wall : 0);
        if (kv)
            fprintf(kv, "recall=%.6f\nexact_s=%.3f\napprox_s=%.3f\n",
                    np[0] ? (double)c / (double)np[0] : 1.0, r[0].wall, r[1].wall);
    }
    uint32_t nids;
    uint64_t truth;
    long *fam = families(dbpath, &nids, &truth);
    for (int m = 0; m < 2 && fam; m++) {
        if (!want[m])
            continue;
        uint64_t hit = 0;
        for (size_t i = 0; i < np[m]; i++)
            hit += p[m][i].a < nids && p[m][i].b < nids && fam[p[m][i].a] >= 0 &&
                   fam[p[m][i].a] == fam[p[m][i].b];
        printf("%-6s planted pairs found: %llu of %llu (%.4f); pairs outside the planted families: %llu\n",
               names[m], (unsigned long long)hit, (unsigned long long)truth,
               truth ? (double)hit / (double)truth : 1.0, (unsigned long long)(np[m] - hit));
    }
    if (kv)
        fclose(kv);
    free(fam);
    for (int m = 0; m < 2; m++) {
        free(p[m]);
        if (want[m]) {
            unlink(pf[m]);
            unlink(rf[m]);
        }
    }
    rmdir(work);
    return 0;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *db = NULL, *modes = "exact,approx", *kvout = NULL;
    const char *pairs_out = NULL;
    uint64_t n = 0, seed = 1;
    double planted = 0.02;
    pv_dups_opts o = {.threshold = 0.95f};
    if (argc < 2)
        goto usage;
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--n"))
            n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--planted"))
            planted = atof(v);
        else if (!strcmp(a, "--db"))
            db = v;
        else if (!strcmp(a, "--threshold"))
            o.threshold = (float)atof(v);
        else if (!strcmp(a, "--modes"))
            modes = v;
        else if (!strcmp(a, "--neighbours"))
            o.neighbours = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ef"))
            o.ef = (uint32_t)atoi(v);
        else if (!strcmp(a, "--kv"))
            kvout = v;
        else if (!strcmp(a, "--pairs-out"))
            pairs_out = v;
        else
            goto usage;
    }
    if (!strcmp(argv[1], "gen") && out && n)
        return cmd_gen(out, n, seed, planted);
    if (!strcmp(argv[1], "run") && db && (!pairs_out || strstr(modes, "exact")))
        return cmd_run(db, modes, &o, kvout, pairs_out);
    if (!strcmp(argv[1], "export") && db && out)
        return cmd_export(db, out);
usage:
    fprintf(stderr, "usage: bench_dups gen --out DIR --n N [--seed S] [--planted F]\n"
                    "       bench_dups run --db DB [--threshold T] [--modes exact,approx] "
                    "[--neighbours K] [--ef EF] [--kv FILE]\n"
                    "                      [--pairs-out FILE (needs the exact mode)]\n"
                    "       bench_dups export --db DB --out FILE.f32 (and FILE.ids)\n");
    return 2;
}
