/*
 * util.h - small helpers shared by every room: checked allocation, timing,
 * error messages, and writing a whole file atomically.
 */
#ifndef PV_UTIL_H
#define PV_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* malloc(n * size), NULL on overflow or failure (pgvector's mul_size). */
void *pv_alloc_array(size_t n, size_t size);
/* calloc with the same overflow check. */
void *pv_calloc_array(size_t n, size_t size);
/* realloc(p, n * size), NULL on overflow or failure (p untouched then). */
void *pv_realloc_array(void *p, size_t n, size_t size);
/* A stop request (pv_db_interrupt's flag, handed down to index/ through
 * option structs as a plain atomic so that index/ never sees pv_db): 1 once
 * *stop is nonzero; NULL never stops. Long loops poll it and return
 * PV_EINTR. */
static inline int pv_stop_requested(const atomic_int *stop)
{
    return stop && atomic_load_explicit(stop, memory_order_relaxed) != 0;
}

/* Monotonic seconds. */
double pv_now(void);

#if defined(__GNUC__) || defined(__clang__)
#define PV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PV_PRINTF(f, a)
#endif

/* Format a message into err (errlen bytes, always NUL-terminated, cut to
 * fit); does nothing when err is NULL or errlen is 0. The err/errlen pair
 * that every engine call takes for its human-readable reason. */
void pv_set_err(char *err, size_t errlen, const char *fmt, ...) PV_PRINTF(3, 4);
/* strerror_r(e) into buf (len bytes), or "error E" when there is no text;
 * thread-safe, unlike strerror. */
void pv_errno_text(int e, char *buf, size_t len);

/* Read the whole file at path (at most max bytes) into *buf, malloc'd and
 * NUL-terminated, its length in *len. PV_EIO (cannot open or read),
 * PV_ECORRUPT (larger than max) or PV_ENOMEM, err naming the file. */
int pv_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
                 size_t errlen);

/* fsync the file or folder at path: 0 or an errno (a file system that
 * cannot sync a folder, EINVAL, counts as done). */
int pv_fsync_path(const char *path);
/* fsync the folder holding path (".": none named), so a rename or link
 * into it survives a crash: 0 or an errno. */
int pv_fsync_parent(const char *path);

/* Write n bytes of data to dst so that dst is always either the old file or
 * the whole new one, never half written: a temporary file "DST.tmp-PID-I"
 * beside it (O_EXCL, so no link is followed and no file of someone else's is
 * reused; mode 0666 before the umask), write, fsync, close, rename over dst,
 * then fsync of dst's folder so the rename survives a crash. On any failure
 * the temporary file is removed and err names dst and the step that failed.
 * folder_sync_required: 1 makes a failed folder fsync an error (PV_EIO,
 * though dst is already whole and in place); 0 ignores it, for files that
 * can simply be made again. Returns 0, PV_EINVAL (dst's name too long) or
 * PV_EIO. */
int pv_write_file_atomic(const char *dst, const void *data, size_t n,
                         int folder_sync_required, char *err, size_t errlen);

/* splitmix64 (Steele, Lea, Flood 2014): the next 64 random bits of the
 * generator *state; any seed works. Reproducible across machines. */
uint64_t pv_rand64(uint64_t *state);
/* Uniform in (0, 1], from pv_rand64: never 0, so log() of it is finite. */
double pv_rand_unit(uint64_t *state);

/* A u32 at p, which may be unaligned (LMDB values are 2-byte aligned at
 * least), in host order: the records that use these are documented as
 * native little-endian. */
static inline uint32_t pv_ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void pv_st32(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }

#endif
