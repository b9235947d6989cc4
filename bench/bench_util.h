/*
 * bench_util.h - what the benchmark programs share that is not a measurement:
 * clocks, quantiles, the file list, and how busy the rest of the machine was.
 * Every function here exits with a message on failure: a benchmark that cannot
 * read its data or allocate has nothing to report.
 */
#ifndef PV_BENCH_UTIL_H
#define PV_BENCH_UTIL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

double bench_now(void);         /* monotonic seconds */
double bench_cpu_seconds(void); /* this process's CPU time, all threads */
/* Prints what failed and exits 1; marked noreturn so that compilers know a
 * value set before a failed check is never read after it. */
__attribute__((noreturn)) void bench_die(const char *what, const char *detail);
void *bench_alloc(size_t n);
/* dir/name into out; a path that does not fit is an error, never cut. */
void bench_path_join(char *out, size_t len, const char *dir, const char *name);
/* The q-quantile (nearest rank; the median of an even count is the mean of
 * the middle two) of n values. Sorts v. */
double bench_quantile(double *v, size_t n, double q);
#define bench_median(v, n) bench_quantile((v), (n), 0.5)

/* Every *.png under dir, recursively, sorted by path. */
typedef struct bench_list {
    char **s;
    size_t n, cap;
} bench_list;
void bench_find_png(const char *dir, bench_list *l);
void bench_list_free(bench_list *l);

void bench_write_file(const char *dir, const char *name, const void *p, size_t bytes);
/* The CPU's model name from /proc/cpuinfo ("unknown" if none). */
void bench_cpu_model(char *cpu, size_t len);

/* A section's wall time, the machine's busy CPU time (/proc/stat, steal
 * included: a hypervisor's other guests slow us too) and this process's CPU
 * time. The bench cannot make the machine quiet; with these it can say when
 * it was not. */
typedef struct bench_mark {
    double wall, busy, self;
} bench_mark;
bench_mark bench_mark_now(void);
/* Percent of all ncpu cores' time since m that went to other processes. */
double bench_others_pct(bench_mark m, int ncpu);

#ifdef __cplusplus
}
#endif
#endif
