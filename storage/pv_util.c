/*
 * pv_util.c - checked allocation, a monotonic clock and error messages, used
 * by every room.
 * Lives in storage/, the lowest room, so that index/ and engine/ may both
 * include it without an arrow pointing up.
 */
#include "pv_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *pv_alloc_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return malloc(n != 0 && size != 0 ? n * size : 1);
}

void *pv_calloc_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *pv_realloc_array(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return realloc(p, n != 0 && size != 0 ? n * size : 1);
}

uint64_t pv_rand64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double pv_rand_unit(uint64_t *state)
{
    return (double)((pv_rand64(state) >> 11) + 1) * 0x1.0p-53;
}

double pv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void pv_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void pv_errno_text(int e, char *buf, size_t len)
{
    /* XSI strerror_r (int result): _XOPEN_SOURCE=700 and no _GNU_SOURCE. */
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
}
