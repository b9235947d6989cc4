/*
 * bench_util.c - clocks, quantiles, file lists and machine load for the
 * benchmarks (see bench_util.h).
 */
#include "bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

void bench_die(const char *what, const char *detail)
{
    fprintf(stderr, "bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

void *bench_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        bench_die("out of memory", NULL);
    return p;
}

void bench_path_join(char *out, size_t len, const char *dir, const char *name)
{
    int k = snprintf(out, len, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= len)
        bench_die("path too long", dir);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    if (q == 0.5 && n % 2 == 0)
        return (v[n / 2 - 1] + v[n / 2]) / 2;
    size_t i = (size_t)(q * (double)n + 0.5);
    i = i > 0 ? i - 1 : 0;
    return v[i < n ? i : n - 1];
}

static void list_push(bench_list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->s = realloc(l->s, l->cap * sizeof *l->s);
        if (!l->s)
            bench_die("out of memory", NULL);
    }
    if (!(l->s[l->n++] = strdup(s)))
        bench_die("out of memory", NULL);
}

static void walk_png(const char *dir, bench_list *l)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    if (!d)
        bench_die(dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        bench_path_join(p, sizeof p, dir, e->d_name);
        if (stat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk_png(p, l);
        else if (len > 4 && strcmp(e->d_name + len - 4, ".png") == 0)
            list_push(l, p);
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void bench_find_png(const char *dir, bench_list *l)
{
    walk_png(dir, l);
    qsort(l->s, l->n, sizeof *l->s, cmp_str);
}

void bench_list_free(bench_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    l->s = NULL;
    l->n = l->cap = 0;
}

void bench_write_file(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[4200];
    bench_path_join(path, sizeof path, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0)
        bench_die(path, strerror(errno));
}

void bench_cpu_model(char *cpu, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(cpu, len, "unknown");
    while (f && fgets(line, sizeof line, f)) {
        char *p = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !p)
            continue;
        p += 1 + (p[1] == ' ');
        p[strcspn(p, "\n")] = 0;
        snprintf(cpu, len, "%s", p);
        break;
    }
    if (f)
        fclose(f);
}

bench_mark bench_mark_now(void)
{
    bench_mark m = {bench_now(), 0, bench_cpu_seconds()};
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    /* user nice system idle iowait irq softirq steal: all but idle, iowait */
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
        m.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
                 (double)sysconf(_SC_CLK_TCK);
    if (f)
        fclose(f);
    return m;
}

double bench_others_pct(bench_mark m, int ncpu)
{
    bench_mark e = bench_mark_now();
    double o = (e.busy - m.busy) - (e.self - m.self);
    return o < 0 ? 0 : 100.0 * o / (ncpu * (e.wall - m.wall));
}
