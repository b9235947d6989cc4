/*
 * par.c - fork-join over index ranges with pthreads (index room). See par.h.
 *
 * No pool: each call creates its threads and joins them. The callers run
 * tens to hundreds of calls per layout, each over thousands of points, so
 * thread creation (tens of microseconds) is noise, and without a pool
 * there is no state to set up or tear down. The split is static and
 * contiguous (index t gets [n t / nt, n (t + 1) / nt)), which keeps every
 * index's work in one thread in a fixed order: the callers' results do not
 * depend on the number of threads.
 */
#include "par.h"

#include <pthread.h>
#include <unistd.h>

typedef struct par_arg {
    par_range_fn fn;
    void *ctx;
    size_t lo, hi;
} par_arg;

static void *par_main(void *a)
{
    par_arg *p = a;
    p->fn(p->ctx, p->lo, p->hi);
    return NULL;
}

unsigned par_threads(unsigned want, unsigned max)
{
    if (want == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        want = c > 0 ? (unsigned)c : 1u;
    }
    return want > max ? max : want;
}

void par_run(unsigned nthreads, size_t n, par_range_fn fn, void *ctx)
{
    if (nthreads > PAR_MAX_THREADS)
        nthreads = PAR_MAX_THREADS;
    if (nthreads > n)
        nthreads = (unsigned)n;
    if (nthreads <= 1) {
        fn(ctx, 0, n);
        return;
    }
    pthread_t th[PAR_MAX_THREADS];
    par_arg arg[PAR_MAX_THREADS];
    int started[PAR_MAX_THREADS] = {0};
    for (unsigned t = 0; t < nthreads; t++) {
        arg[t].fn = fn;
        arg[t].ctx = ctx;
        arg[t].lo = n * t / nthreads;
        arg[t].hi = n * (t + 1) / nthreads;
    }
    for (unsigned t = 1; t < nthreads; t++)
        started[t] = pthread_create(&th[t], NULL, par_main, &arg[t]) == 0;
    fn(ctx, arg[0].lo, arg[0].hi);
    for (unsigned t = 1; t < nthreads; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else /* no thread: do its share here, same result */
            fn(ctx, arg[t].lo, arg[t].hi);
    }
}
