/*
 * safetensors.c - the safetensors reader (see safetensors.h).
 *
 * The whole file is read into memory (the model is 10 MB), hashed, and its
 * tensors copied into one float array, so a tensor is aligned whatever its
 * offset in the file was.
 *
 * The header must account for the data exactly, as the format's reference
 * reader (huggingface/safetensors, Metadata::validate) requires: tensors,
 * taken by offset, start at the first byte after the header, each begins
 * where the one before ended, and the last ends at the end of the file. So
 * a header length off by one, which still parses when the header ends in
 * padding spaces and would read every tensor one byte off, is refused, as
 * are gaps, shared bytes and bytes appended. The header must begin with
 * '{', name each tensor once, and __metadata__ map strings to strings.
 * Values are not judged here: the model's own check (mobilenet.c) refuses
 * NaN, Inf and negative variances.
 */
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "pixvec.h"
#include "pv_util.h"

#define ST_MAX_HEADER (64u << 20)
#define ST_MAX_FILE (4ull << 30)

static int fail(char *err, size_t errlen, int rc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, int rc, const char *path, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        int n = snprintf(err, errlen, "%s: ", path);
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < errlen)
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int read_all(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    long sz;
    if (!fp)
        return fail(err, errlen, PV_EIO, path, "%s", strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0 || (sz = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return fail(err, errlen, PV_EIO, path, "cannot tell its size");
    }
    if ((unsigned long long)sz > ST_MAX_FILE) {
        fclose(fp);
        return fail(err, errlen, PV_ECORRUPT, path, "%ld bytes: larger than any model it can hold",
                    sz);
    }
    *buf = malloc(sz ? (size_t)sz : 1);
    if (!*buf) {
        fclose(fp);
        return PV_ENOMEM;
    }
    *len = fread(*buf, 1, (size_t)sz, fp);
    fclose(fp);
    if (*len != (size_t)sz) {
        free(*buf);
        *buf = NULL;
        return fail(err, errlen, PV_EIO, path, "short read");
    }
    return PV_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

typedef struct range {
    uint64_t b, e;
    const char *name; /* the tensor's */
} range;

static int by_begin(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b;
}

int st_load(const char *path, st_file *f, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0, i = 0;
    json_t *root = NULL;
    range *rg = NULL;
    int rc;
    memset(f, 0, sizeof *f);
    if ((rc = read_all(path, &buf, &len, err, errlen)) != 0)
        return rc;
    if (len < 8) {
        rc = fail(err, errlen, PV_ECORRUPT, path, "%zu bytes: not a safetensors file", len);
        goto done;
    }
    uint64_t hlen = 0;
    for (int b = 7; b >= 0; b--)
        hlen = (hlen << 8) | buf[b];
    if (hlen == 0 || hlen > ST_MAX_HEADER || hlen > len - 8) {
        rc = fail(err, errlen, PV_ECORRUPT, path,
                  "header length %llu does not fit the file (%zu bytes): truncated or "
                  "not a safetensors file",
                  (unsigned long long)hlen, len);
        goto done;
    }
    if (buf[8] != '{') {
        rc = fail(err, errlen, PV_ECORRUPT, path,
                  "header must begin with '{' (byte 8 is 0x%02x): not a safetensors file",
                  buf[8]);
        goto done;
    }
    json_error_t je;
    root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        rc = fail(err, errlen, PV_ECORRUPT, path, "header is not a JSON object (%s)",
                  root ? "another JSON value" : je.text);
        goto done;
    }
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta) {
        const char *mk;
        json_t *mv;
        int ok = json_is_object(meta);
        json_object_foreach(meta, mk, mv) {
            ok = ok && json_is_string(mv);
        }
        if (!ok) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "__metadata__ must map names to strings");
            goto done;
        }
    }
    const uint8_t *data = buf + 8 + hlen;
    const uint64_t dlen = len - 8 - hlen;
    size_t count = json_object_size(root);
    f->t = pv_calloc_array(count ? count : 1, sizeof *f->t);
    rg = pv_alloc_array(count ? count : 1, sizeof *rg);
    f->data = pv_alloc_array(dlen / 4 + 1, sizeof(float));
    if (!f->t || !rg || !f->data) {
        rc = PV_ENOMEM;
        goto done;
    }
    const char *key;
    json_t *v;
    size_t at = 0; /* next free float of f->data */
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        st_tensor *t = &f->t[i];
        json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
               *off = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(sh) ||
            !json_is_array(off) || json_array_size(off) != 2 ||
            !json_is_integer(json_array_get(off, 0)) || !json_is_integer(json_array_get(off, 1))) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "tensor %s: needs dtype, shape and data_offsets [begin, end]", key);
            goto done;
        }
        if (strcmp(json_string_value(dt), "F32") != 0) {
            rc = fail(err, errlen, PV_ECORRUPT, path, "tensor %s has dtype %s; only F32 is read",
                      key, json_string_value(dt));
            goto done;
        }
        if (json_array_size(sh) > ST_MAX_DIMS) {
            rc = fail(err, errlen, PV_ECORRUPT, path, "tensor %s has %zu dimensions; at most %d",
                      key, json_array_size(sh), ST_MAX_DIMS);
            goto done;
        }
        uint64_t n = 1;
        t->ndim = (int)json_array_size(sh);
        for (int d = 0; d < t->ndim; d++) {
            json_t *x = json_array_get(sh, (size_t)d);
            json_int_t s = json_is_integer(x) ? json_integer_value(x) : -1;
            if (s < 0 || s > (1 << 28) || (s && n > (ST_MAX_FILE / 4) / (uint64_t)s)) {
                rc = fail(err, errlen, PV_ECORRUPT, path, "tensor %s: bad shape", key);
                goto done;
            }
            t->shape[d] = s;
            n *= (uint64_t)s;
        }
        json_int_t b = json_integer_value(json_array_get(off, 0)),
                   e = json_integer_value(json_array_get(off, 1));
        if (b < 0 || e < b || (uint64_t)e > dlen || (uint64_t)(e - b) != 4 * n) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "tensor %s: bytes [%lld, %lld) do not hold its %llu floats within the "
                      "%llu bytes of data (truncated?)",
                      key, (long long)b, (long long)e, (unsigned long long)n,
                      (unsigned long long)dlen);
            goto done;
        }
        if (!(t->name = strdup(key))) {
            rc = PV_ENOMEM;
            goto done;
        }
        t->n = (size_t)n;
        rg[i] = (range){(uint64_t)b, (uint64_t)e, t->name};
        /* Copied to an aligned place: offsets need not be 4-aligned in a
         * file, and the host is little-endian like the format. Ranges are
         * checked disjoint below, so the copies fit in dlen / 4 floats. */
        i++;
        f->nt = i;
        if (at + t->n > dlen / 4) {
            rc = fail(err, errlen, PV_ECORRUPT, path, "tensor data overlaps");
            goto done;
        }
        memcpy(f->data + at, data + b, (size_t)(e - b));
        t->data = f->data + at;
        at += t->n;
    }
    /* Taken by offset, the tensors must tile the data: no shared bytes (a
     * broken or hostile file), no gap, nothing after the last one. */
    qsort(rg, f->nt, sizeof *rg, by_begin);
    uint64_t end = 0; /* where the tensors so far end */
    for (size_t k = 0; k < f->nt; k++) {
        if (rg[k].b < end) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "tensors %s and %s share bytes at offset %llu", rg[k - 1].name,
                      rg[k].name, (unsigned long long)rg[k].b);
            goto done;
        }
        if (rg[k].b > end) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "bytes [%llu, %llu) of the data belong to no tensor (%s %s)",
                      (unsigned long long)end, (unsigned long long)rg[k].b,
                      k ? "after" : "before", k ? rg[k - 1].name : rg[k].name);
            goto done;
        }
        end = rg[k].e;
    }
    if (end != dlen) {
        rc = fail(err, errlen, PV_ECORRUPT, path,
                  "header length %llu does not land on the data: the tensors hold %llu "
                  "bytes, %llu follow the header (header length off by %llu, or bytes "
                  "appended)",
                  (unsigned long long)hlen, (unsigned long long)end, (unsigned long long)dlen,
                  (unsigned long long)(dlen - end));
        goto done;
    }
    rc = PV_OK;
done:
    if (rc == PV_OK) {
        qsort(f->t, f->nt, sizeof *f->t, by_name);
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len));
        memcpy(f->hash, c.digest, 16);
    }
    free(rg);
    json_decref(root);
    free(buf);
    if (rc != PV_OK)
        st_free(f);
    return rc;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    st_tensor key = {.name = (char *)name};
    return f->nt ? bsearch(&key, f->t, f->nt, sizeof *f->t, by_name) : NULL;
}

void st_free(st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nt; i++)
        free(f->t[i].name);
    free(f->t);
    free(f->data);
    memset(f, 0, sizeof *f);
}
