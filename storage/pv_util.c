/*
 * pv_util.c - checked allocation, a monotonic clock, error messages and an
 * atomic whole-file write (temporary file, fsync, rename, folder fsync: the
 * sequence LMDB-free files such as plots and thumbnails need), used by every
 * room.
 * Lives in storage/, the lowest room, so that index/ and engine/ may both
 * include it without an arrow pointing up.
 */
#include "pv_util.h"

#include "pixvec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How many temporary names DST.tmp-PID-I to try before giving up. */
#define PV_TMP_TRIES 100

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

int pv_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc, e;
    if (fd < 0)
        return errno;
    rc = fsync(fd);
    e = errno;
    close(fd);
    /* Some file systems cannot sync a folder (EINVAL): nothing to do then. */
    return rc == 0 || e == EINVAL ? 0 : e;
}

int pv_fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return ENAMETOOLONG;
    return pv_fsync_path(dir);
}

int pv_write_file_atomic(const char *dst, const void *data, size_t n,
                         int folder_sync_required, char *err, size_t errlen)
{
    const unsigned char *p = data;
    char tmp[PATH_MAX], etext[128];
    int fd = -1, rc = PV_EIO, i, k;
    size_t off = 0;
    ssize_t w;

    tmp[0] = '\0';
    for (i = 0; i < PV_TMP_TRIES && fd < 0; i++) {
        k = snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%d", dst, (long)getpid(), i);
        if (k < 0 || (size_t)k >= sizeof tmp) {
            pv_set_err(err, errlen, "%s: path too long", dst);
            tmp[0] = '\0';
            rc = PV_EINVAL;
            goto done;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) {
            pv_errno_text(errno, etext, sizeof etext);
            pv_set_err(err, errlen, "%s: cannot create a temporary file: %s",
                       dst, etext);
            tmp[0] = '\0';
            goto done;
        }
    }
    if (fd < 0) {
        pv_set_err(err, errlen, "%s: no free temporary name", dst);
        tmp[0] = '\0';
        goto done;
    }
    while (off < n) {
        w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            /* write() of a regular file returns 0 only when it is full. */
            pv_errno_text(w < 0 ? errno : ENOSPC, etext, sizeof etext);
            pv_set_err(err, errlen, "%s: cannot write: %s", dst, etext);
            goto done;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        pv_errno_text(errno, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: cannot sync: %s", dst, etext);
        goto done;
    }
    k = close(fd);
    fd = -1;
    if (k != 0) {
        pv_errno_text(errno, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: cannot write: %s", dst, etext);
        goto done;
    }
    if (rename(tmp, dst) != 0) {
        pv_errno_text(errno, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: cannot rename into place: %s", dst, etext);
        goto done;
    }
    tmp[0] = '\0'; /* renamed: nothing to remove */
    if (pv_fsync_parent(dst) != 0 && folder_sync_required) {
        pv_errno_text(errno, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: cannot sync its folder: %s", dst, etext);
        goto done;
    }
    rc = PV_OK;
done:
    if (fd >= 0)
        close(fd);
    if (tmp[0] != '\0')
        unlink(tmp);
    return rc;
}

int pv_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
                 size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    long sz;
    *buf = NULL;
    if (!fp) {
        char why[128];
        pv_errno_text(errno, why, sizeof why);
        pv_set_err(err, errlen, "%s: %s", path, why);
        return PV_EIO;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (sz = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        pv_set_err(err, errlen, "%s: cannot tell its size (not a regular file?)", path);
        return PV_EIO;
    }
    if ((unsigned long)sz > max) {
        fclose(fp);
        pv_set_err(err, errlen, "%s: %ld bytes: over the limit of %zu", path, sz, max);
        return PV_ECORRUPT;
    }
    if (!(*buf = malloc((size_t)sz + 1))) {
        fclose(fp);
        return PV_ENOMEM;
    }
    *len = fread(*buf, 1, (size_t)sz, fp);
    fclose(fp);
    if (*len != (size_t)sz) {
        free(*buf);
        *buf = NULL;
        pv_set_err(err, errlen, "%s: short read", path);
        return PV_EIO;
    }
    (*buf)[*len] = 0;
    return PV_OK;
}
