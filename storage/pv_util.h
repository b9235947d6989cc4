/*
 * util.h - small helpers shared by every room: checked allocation, timing.
 */
#ifndef PV_UTIL_H
#define PV_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* malloc(n * size), NULL on overflow or failure (pgvector's mul_size). */
void *pv_alloc_array(size_t n, size_t size);
/* calloc with the same overflow check. */
void *pv_calloc_array(size_t n, size_t size);
/* realloc(p, n * size), NULL on overflow or failure (p untouched then). */
void *pv_realloc_array(void *p, size_t n, size_t size);
/* Monotonic seconds. */
double pv_now(void);

#endif
