/*
 * safetensors.c - the safetensors reader (see safetensors.h).
 *
 * The file is memory-mapped read-only and hashed. A float32 tensor at a
 * 4-aligned offset is used where it lies (a 600 MB CLIP checkpoint costs
 * no copy and no read beyond the page cache); the others (float16,
 * bfloat16, float64, or a float32 tensor at an odd offset, which the
 * format allows) are converted once into one float array.
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
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "pixvec.h"
#include "pv_util.h"

#define ST_MAX_HEADER (64u << 20)
#define ST_MAX_FILE (16ull << 30)

static const struct {
    const char *name;
    unsigned size; /* bytes per element */
} DTYPES[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2},  [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

const char *st_dtype_name(int dtype)
{
    return dtype >= 0 && (size_t)dtype < N_DTYPES ? DTYPES[dtype].name : "?";
}

static int is_float(int dtype)
{
    return dtype == ST_F32 || dtype == ST_F16 || dtype == ST_BF16 || dtype == ST_F64;
}

/* IEEE half to float, subnormals, infinities and NaN included. */
static float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31u, m = h & 0x3ffu;
    uint32_t bits;
    if (e == 31)
        bits = sign | 0x7f800000u | (m << 13);
    else if (e != 0)
        bits = sign | ((e + 112u) << 23) | (m << 13);
    else if (m == 0)
        bits = sign;
    else { /* subnormal: m * 2^-24 */
        float v = (float)m * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* n elements of dtype at p (little-endian, any alignment) as floats. */
static void convert(int dtype, const uint8_t *p, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        if (dtype == ST_F32) {
            memcpy(&out[i], p + 4 * i, 4);
        } else if (dtype == ST_F64) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        } else {
            const uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            if (dtype == ST_F16) {
                out[i] = half_to_float(h);
            } else {
                const uint32_t bits = (uint32_t)h << 16;
                memcpy(&out[i], &bits, 4);
            }
        }
    }
}

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

static int map_file(const char *path, st_file *f, char *err, size_t errlen)
{
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return fail(err, errlen, PV_EIO, path, "%s", strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, PV_EIO, path, "not a regular file");
    }
    if ((unsigned long long)st.st_size > ST_MAX_FILE) {
        close(fd);
        return fail(err, errlen, PV_ECORRUPT, path,
                    "%lld bytes: larger than any model it can hold",
                    (long long)st.st_size);
    }
    f->map_len = (size_t)st.st_size;
    f->map = f->map_len ? mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return fail(err, errlen, PV_EIO, path, "cannot map it: %s", strerror(errno));
    }
    return PV_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

typedef struct range {
    uint64_t b, e;
    st_tensor *t;
} range;

static int by_begin(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b;
}

int st_load(const char *path, st_file *f, char *err, size_t errlen)
{
    const uint8_t *buf;
    size_t len, i = 0;
    json_t *root = NULL;
    range *rg = NULL;
    int rc;
    memset(f, 0, sizeof *f);
    if ((rc = map_file(path, f, err, errlen)) != 0)
        return rc;
    buf = f->map;
    len = f->map_len;
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
    if (!f->t || !rg) {
        rc = PV_ENOMEM;
        goto done;
    }
    const char *key;
    json_t *v;
    size_t conv = 0; /* floats to convert */
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
        t->dtype = -1;
        for (size_t d = 0; d < N_DTYPES; d++)
            if (strcmp(json_string_value(dt), DTYPES[d].name) == 0)
                t->dtype = (int)d;
        if (t->dtype < 0) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "tensor %s has dtype %s; F32, F16, BF16, F64 and integer types are read",
                      key, json_string_value(dt));
            goto done;
        }
        if (json_array_size(sh) > ST_MAX_DIMS) {
            rc = fail(err, errlen, PV_ECORRUPT, path, "tensor %s has %zu dimensions; at most %d",
                      key, json_array_size(sh), ST_MAX_DIMS);
            goto done;
        }
        const unsigned esize = DTYPES[t->dtype].size;
        uint64_t n = 1;
        t->ndim = (int)json_array_size(sh);
        for (int d = 0; d < t->ndim; d++) {
            json_t *x = json_array_get(sh, (size_t)d);
            json_int_t s = json_is_integer(x) ? json_integer_value(x) : -1;
            if (s < 0 || s > (1 << 30) || (s && n > (ST_MAX_FILE / esize) / (uint64_t)s)) {
                rc = fail(err, errlen, PV_ECORRUPT, path, "tensor %s: bad shape", key);
                goto done;
            }
            t->shape[d] = s;
            n *= (uint64_t)s;
        }
        json_int_t b = json_integer_value(json_array_get(off, 0)),
                   e = json_integer_value(json_array_get(off, 1));
        if (b < 0 || e < b || (uint64_t)e > dlen || (uint64_t)(e - b) != esize * n) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "tensor %s: bytes [%lld, %lld) do not hold its %llu %s values within the "
                      "%llu bytes of data (truncated?)",
                      key, (long long)b, (long long)e, (unsigned long long)n,
                      DTYPES[t->dtype].name, (unsigned long long)dlen);
            goto done;
        }
        if (!(t->name = strdup(key))) {
            rc = PV_ENOMEM;
            goto done;
        }
        t->n = (size_t)n;
        rg[i] = (range){(uint64_t)b, (uint64_t)e, t};
        i++;
        f->nt = i;
        if (is_float(t->dtype) && (t->dtype != ST_F32 || ((uintptr_t)(data + b) & 3u)))
            conv += t->n;
    }
    /* Taken by offset, the tensors must tile the data: no shared bytes (a
     * broken or hostile file), no gap, nothing after the last one. */
    qsort(rg, f->nt, sizeof *rg, by_begin);
    uint64_t end = 0; /* where the tensors so far end */
    for (size_t k = 0; k < f->nt; k++) {
        if (rg[k].b < end) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "tensors %s and %s share bytes at offset %llu", rg[k - 1].t->name,
                      rg[k].t->name, (unsigned long long)rg[k].b);
            goto done;
        }
        if (rg[k].b > end) {
            rc = fail(err, errlen, PV_ECORRUPT, path,
                      "bytes [%llu, %llu) of the data belong to no tensor (%s %s)",
                      (unsigned long long)end, (unsigned long long)rg[k].b,
                      k ? "after" : "before", k ? rg[k - 1].t->name : rg[k].t->name);
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
    /* The bytes are accounted for: point at them, or convert. conv is at
     * most dlen / 2 floats (F16 is the smallest float type). */
    if (conv && !(f->conv = pv_alloc_array(conv, sizeof(float)))) {
        rc = PV_ENOMEM;
        goto done;
    }
    size_t at = 0;
    for (size_t k = 0; k < f->nt; k++) {
        st_tensor *t = rg[k].t;
        const uint8_t *p = data + rg[k].b;
        if (!is_float(t->dtype))
            continue;
        if (t->dtype == ST_F32 && !((uintptr_t)p & 3u)) {
            t->data = (const float *)(const void *)p;
        } else {
            convert(t->dtype, p, t->n, f->conv + at);
            t->data = f->conv + at;
            at += t->n;
        }
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
    if (rc != PV_OK)
        st_free(f);
    return rc;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    st_tensor key = {.name = (char *)name};
    return f->nt ? bsearch(&key, f->t, f->nt, sizeof *f->t, by_name) : NULL;
}

static void shape_str(char *s, size_t n, int ndim, const int64_t *shape)
{
    s[0] = 0;
    for (int d = 0; d < ndim; d++) {
        const size_t l = strlen(s);
        snprintf(s + l, n - l, "%s%lld", d ? "," : "", (long long)shape[d]);
    }
}

const st_tensor *st_want(const st_file *f, const char *path, const char *name, int ndim,
                         const int64_t *shape, const char *what, int *rc, char *err,
                         size_t errlen)
{
    const st_tensor *t = st_find(f, name);
    char have[96], need[96];
    int ok = t && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->shape[d] == shape[d];
    shape_str(need, sizeof need, ndim, shape);
    *rc = PV_ECORRUPT;
    if (!t) {
        fail(err, errlen, PV_ECORRUPT, path, "no tensor %s [%s]: not %s weights", name, need,
             what);
        return NULL;
    }
    if (!ok) {
        shape_str(have, sizeof have, t->ndim, t->shape);
        fail(err, errlen, PV_ECORRUPT, path, "tensor %s has shape [%s]; %s needs [%s]", name,
             have, what, need);
        return NULL;
    }
    if (!t->data) {
        fail(err, errlen, PV_ECORRUPT, path, "tensor %s has dtype %s; %s needs floats", name,
             st_dtype_name(t->dtype), what);
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++)
        if (!isfinite(t->data[i])) {
            const float x = t->data[i];
            fail(err, errlen, PV_ENUMERIC, path,
                 "tensor %s holds %s at element %zu: weights must be finite numbers", name,
                 isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf", i);
            *rc = PV_ENUMERIC;
            return NULL;
        }
    *rc = PV_OK;
    return t;
}

void st_free(st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nt; i++)
        free(f->t[i].name);
    free(f->t);
    free(f->conv);
    if (f->map)
        munmap(f->map, f->map_len);
    memset(f, 0, sizeof *f);
}
