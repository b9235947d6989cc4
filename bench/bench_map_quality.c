/*
 * bench_map_quality.c - the one scorer of every map in the map benchmark
 * (issue 15): trustworthiness at k and the fraction of the k nearest
 * neighbours kept, by index/layout_quality.c, for pixvec's layouts and the
 * peers' alike, all against the same input vectors.
 *
 *   bench_map_quality X.f32 DIM NAME=LAYOUT.f32[:DIMS] ... [--k K]
 *                     [--threads T] [--out FILE]
 *
 * X.f32 is n x DIM float32 (n from the file's size); each layout is
 * n x DIMS float32 (DIMS 2 unless given). A layout file that is missing or
 * of the wrong size is reported and skipped, so one failed peer does not
 * hide the others. Prints a table; FILE gets NAME_trust, NAME_kept and
 * NAME_score_s (seconds the score took) as key=value lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "layout_quality.h"
#include "pixvec.h"

/* The whole file as floats; *count gets their number. NULL if absent. */
static float *read_floats(const char *path, size_t *count)
{
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size % 4 != 0)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t n = (size_t)st.st_size / 4;
    float *p = bench_alloc(n * sizeof *p);
    size_t got = fread(p, sizeof *p, n, f);
    fclose(f);
    if (got != n) {
        free(p);
        return NULL;
    }
    *count = n;
    return p;
}

int main(int argc, char **argv)
{
    unsigned k = 10, threads = 0;
    const char *out = NULL;
    if (argc < 3) {
        fprintf(stderr, "usage: bench_map_quality X.f32 DIM NAME=LAYOUT.f32[:DIMS] ... "
                        "[--k K] [--threads T] [--out FILE]\n");
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--k") && i + 1 < argc)
            k = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
    }
    size_t nx = 0;
    unsigned dim = (unsigned)atoi(argv[2]);
    float *x = read_floats(argv[1], &nx);
    if (!x || dim == 0 || nx % dim)
        bench_die("cannot read the input vectors (or DIM does not divide them)", argv[1]);
    size_t n = nx / dim;
    FILE *kv = out ? fopen(out, "a") : NULL;
    if (out && !kv)
        bench_die("cannot write", out);
    printf("## layout quality: %zu points x %u, k = %u, by index/layout_quality.c\n\n", n, dim, k);
    printf("| layout | trustworthiness | kept@%u | score seconds |\n|---|---|---|---|\n", k);
    for (int i = 3; i < argc; i++) {
        if (!strncmp(argv[i], "--", 2)) {
            i++;
            continue;
        }
        char name[256], path[4096];
        unsigned dims = 2;
        const char *eq = strchr(argv[i], '=');
        if (!eq || (size_t)(eq - argv[i]) >= sizeof name || strlen(eq + 1) >= sizeof path)
            bench_die("expected NAME=LAYOUT.f32[:DIMS], got", argv[i]);
        memcpy(name, argv[i], (size_t)(eq - argv[i]));
        name[eq - argv[i]] = 0;
        strcpy(path, eq + 1);
        char *colon = strrchr(path, ':');
        if (colon) {
            dims = (unsigned)atoi(colon + 1);
            *colon = 0;
        }
        size_t ny = 0;
        float *y = read_floats(path, &ny);
        if (!y || ny != n * dims) {
            printf("| %s | — | — | (%s: %s) |\n", name, path,
                   y ? "wrong size" : "missing");
            free(y);
            continue;
        }
        double t = 0, kept = 0, t0 = bench_now();
        int rc = layout_quality(x, n, dim, y, dims, k, threads, &t, &kept);
        double sec = bench_now() - t0;
        if (rc != 0) {
            printf("| %s | — | — | (layout_quality: %s) |\n", name, pv_strerror(rc));
        } else {
            printf("| %s | %.4f | %.4f | %.1f |\n", name, t, kept, sec);
            if (kv)
                fprintf(kv, "%s_trust=%.17g\n%s_kept=%.17g\n%s_score_s=%.2f\n", name, t, name,
                        kept, name, sec);
        }
        fflush(stdout);
        free(y);
    }
    if (kv)
        fclose(kv);
    free(x);
    return 0;
}
