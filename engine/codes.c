/*
 * codes.c - the compact copy of the vectors in LMDB (see codes.h).
 *
 * Vectors are read one at a time with store_vec_get while codes are written:
 * a put invalidates the chunk pointers of store_vec_chunks, and a copy per
 * vector (one B-tree lookup) is cheap beside coding it.
 */
#include "codes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"

uint32_t codes_bytes(uint32_t kind, uint32_t dim)
{
    switch (kind) {
    case PV_VECTORS_F16:
        return 2 * dim;
    case PV_VECTORS_I8:
        return dim;
    default:
        return 0;
    }
}

static int meta_u64_or_0(store_txn *t, const char *key, uint64_t *v)
{
    int rc = store_meta_get_u64(t, key, v);
    if (rc == PV_ENOTFOUND) {
        *v = 0;
        return PV_OK;
    }
    return rc == PV_ECORRUPT ? store_corrupt(t, "meta %s: not 8 bytes", key) : rc;
}

static int load_params(store_txn *t, uint32_t dim, quant_i8 *q)
{
    const void *p;
    size_t n;
    int rc = store_meta_get_blob(t, "codes_i8", &p, &n);
    if (rc == PV_ENOTFOUND)
        return store_corrupt(t, "meta codes_i8: missing, with int8 codes");
    if (rc != 0)
        return rc;
    rc = quant_i8_load(p, n, dim, q);
    if (rc == PV_ENOTDB || rc == PV_ENEWER || rc == PV_ECORRUPT)
        return store_corrupt(t,
                             "meta codes_i8: %zu bytes that are not int8 parameters "
                             "for %u dims (%s)",
                             n, dim, pv_strerror(rc));
    return rc;
}

/* codes_n of t, checked against next_id (ahead: a write transaction that
 * coded a batch before putting the counters). */
static int coded_count(store_txn *t, uint64_t *n, uint32_t ahead)
{
    store_counts c;
    int rc = store_counts_get(t, &c);
    if (rc == 0)
        rc = meta_u64_or_0(t, "codes_n", n);
    if (rc == 0 && *n > (uint64_t)c.next_id + ahead)
        rc = store_corrupt(t, "meta codes_n: %llu codes, but %u ids handed out",
                           (unsigned long long)*n, c.next_id);
    return rc;
}

void codes_decode(const codes_view *v, uint32_t id, uint32_t dim, float *out)
{
    if (v->kind == PV_VECTORS_I8)
        quant_i8_decode(&v->q8, codes_at(v, id), out);
    else
        quant_f16_decode(codes_at(v, id), dim, out);
}

void codes_view_free(codes_view *v)
{
    quant_i8_free(&v->q8);
    free(v->ptr);
    memset(v, 0, sizeof *v);
}

int codes_view_load(store_txn *t, const store_schema *s, codes_view *v)
{
    return codes_view_load_ahead(t, s, 0, v);
}

int codes_view_load_ahead(store_txn *t, const store_schema *s, uint32_t ahead, codes_view *v)
{
    uint64_t n;
    int rc;
    memset(v, 0, sizeof *v);
    v->kind = PV_VECTORS_F32;
    if (!s->codes)
        return PV_OK;
    if ((rc = coded_count(t, &n, ahead)) != 0 || n == 0)
        return rc;
    v->bytes = codes_bytes(s->codes, s->dim);
    v->C = s->chunk;
    v->nchunks = (uint32_t)((n + v->C - 1) / v->C);
    v->ptr = pv_alloc_array(v->nchunks, sizeof *v->ptr);
    if (!v->ptr)
        return PV_ENOMEM;
    if (s->codes == PV_VECTORS_I8 && (rc = load_params(t, s->dim, &v->q8)) != 0)
        goto fail;
    for (uint32_t c = 0; c < v->nchunks; c++) {
        const uint64_t want = (c + 1 < v->nchunks ? v->C : n - (uint64_t)c * v->C) * v->bytes;
        const void *p;
        size_t len;
        rc = store_blob_get(t, STORE_CODES, c, &p, &len);
        if (rc == PV_ENOTFOUND)
            rc = store_corrupt(t, "codes chunk %u: missing, with %llu codes", c,
                               (unsigned long long)n);
        else if (rc == 0 && len != want)
            rc = store_corrupt(t, "codes chunk %u: %zu bytes, not %llu", c, len,
                               (unsigned long long)want);
        if (rc != 0)
            goto fail;
        v->ptr[c] = p;
    }
    v->kind = s->codes;
    v->n = n;
    return PV_OK;
fail:
    codes_view_free(v);
    return rc;
}

/* The code of vec (dim floats) into out. */
static void code_one(uint32_t kind, const quant_i8 *q, const float *vec, uint32_t dim, uint8_t *out)
{
    if (kind == PV_VECTORS_I8) {
        (void)quant_i8_encode(q, vec, out); /* vectors are finite; clipping is expected */
        return;
    }
    uint16_t h[256];
    for (uint32_t d = 0; d < dim; d += 256) {
        uint32_t m = dim - d < 256 ? dim - d : 256;
        quant_f16_encode(vec + d, m, h);
        memcpy(out + 2 * (size_t)d, h, 2 * (size_t)m); /* little-endian, as stored */
    }
}

/* Where codes_add reads vectors: ids below first from the store, the
 * batch's from its array. */
typedef struct vec_src {
    uint32_t first, n;
    const float *vecs;
} vec_src;

static int vec_of(store_txn *t, const store_schema *s, const vec_src *src, uint32_t id, float *out)
{
    if (id < src->first)
        return store_vec_get(t, id, out);
    memcpy(out, src->vecs + (size_t)(id - src->first) * s->dim, s->dim * sizeof *out);
    return PV_OK;
}

/* Code ids from..to-1 into their chunks, keeping the codes of each chunk
 * before from (which must be exactly the ids before from). */
static int write_codes(store_txn *t, const store_schema *s, const quant_i8 *q, const vec_src *src,
                       uint32_t from, uint32_t to)
{
    const uint32_t C = s->chunk, bytes = codes_bytes(s->codes, s->dim);
    uint8_t *buf = pv_alloc_array(C, bytes);
    float *vec = pv_alloc_array(s->dim, sizeof *vec);
    int rc = buf && vec ? PV_OK : PV_ENOMEM;
    for (uint32_t c = from / C; rc == 0 && (uint64_t)c * C < to; c++) {
        const uint32_t base = c * C, lo = from > base ? from : base;
        const uint32_t hi = to - base < C ? to : base + C;
        if (lo > base) {
            const void *p;
            size_t len;
            rc = store_blob_get(t, STORE_CODES, c, &p, &len);
            if (rc == 0 && len != (size_t)(lo - base) * bytes)
                rc = store_corrupt(t, "codes chunk %u: %zu bytes, not %zu", c, len,
                                   (size_t)(lo - base) * bytes);
            if (rc == PV_ENOTFOUND)
                rc = store_corrupt(t, "codes chunk %u: missing", c);
            if (rc != 0)
                break;
            memcpy(buf, p, len);
        }
        for (uint32_t id = lo; rc == 0 && id < hi; id++) {
            rc = vec_of(t, s, src, id, vec);
            if (rc == 0)
                code_one(s->codes, q, vec, s->dim, buf + (size_t)(id - base) * bytes);
        }
        if (rc == 0)
            rc = store_blob_put(t, STORE_CODES, c, buf, (size_t)(hi - base) * bytes);
    }
    free(buf);
    free(vec);
    return rc;
}

/* Learn int8 parameters from an evenly spaced sample of ids 0..total-1. */
static int train(store_txn *t, const store_schema *s, const vec_src *src, uint32_t total,
                 quant_i8 *q)
{
    const uint32_t m = total < CODES_SAMPLE ? total : CODES_SAMPLE;
    float *x = pv_alloc_array((size_t)m * s->dim, sizeof *x);
    int rc = x ? PV_OK : PV_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < m; i++)
        rc = vec_of(t, s, src, (uint32_t)((uint64_t)i * total / m), x + (size_t)i * s->dim);
    if (rc == 0)
        rc = quant_i8_train(x, m, s->dim, q);
    free(x);
    return rc;
}

/* The count from which the int8 ranges are final: PV_I8_TRAIN_MAX, or
 * PIXVEC_I8_TRAIN_MAX (tests and benchmarks: at least PV_I8_TRAIN_MIN). */
static uint64_t train_max(void)
{
    const char *e = getenv("PIXVEC_I8_TRAIN_MAX");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v >= (long)PV_I8_TRAIN_MIN ? (uint64_t)v : PV_I8_TRAIN_MAX;
}

static int train_due(uint64_t trained, uint32_t total)
{
    if (trained == 0)
        return total >= PV_I8_TRAIN_MIN;
    return trained < train_max() && total >= 2 * trained;
}

int codes_add(store_txn *t, const store_schema *s, uint32_t first, uint32_t nnew, const float *vecs)
{
    const vec_src src = {first, nnew, vecs};
    const uint32_t total = first + nnew;
    const int dropped = store_vec_dropped(t);
    quant_i8 q = {0};
    uint64_t n, trained = 0;
    uint32_t from;
    int rc;
    if (!s->codes || nnew == 0)
        return PV_OK;
    if ((rc = coded_count(t, &n, 0)) != 0)
        return rc;
    from = (uint32_t)n;
    if (s->codes == PV_VECTORS_I8) {
        if ((rc = meta_u64_or_0(t, "codes_trained", &trained)) != 0)
            return rc;
        /* Without float32 vectors (codes_only) there is nothing to learn
         * from again. */
        if (!dropped && train_due(trained, total)) {
            void *blob = NULL;
            size_t len = quant_i8_params_size(s->dim);
            if ((rc = train(t, s, &src, total, &q)) == 0 && !(blob = malloc(len)))
                rc = PV_ENOMEM;
            if (rc == 0) {
                quant_i8_save(&q, blob);
                rc = store_meta_put_blob(t, "codes_i8", blob, len);
            }
            free(blob);
            if (rc == 0)
                rc = store_meta_put_u64(t, "codes_trained", total);
            trained = total;
            from = 0; /* every code again, with the new parameters */
        } else if (trained == 0) {
            return PV_OK; /* too few vectors to learn from yet */
        } else {
            rc = load_params(t, s->dim, &q);
        }
    }
    if (rc == 0 && from < total)
        rc = write_codes(t, s, &q, &src, from, total);
    if (rc == 0)
        rc = store_meta_put_u64(t, "codes_n", total);
    /* Every vector has its code now: a codes_only store keeps no other,
     * once int8 ranges are final. Dropping at the first training cost
     * i8-only recall@10 0.73 on Fashion-MNIST added folder by folder: the
     * first 1,024 images were all ankle boots, and every other class was
     * clipped to their ranges. */
    if (rc == 0 && s->codes_only && !dropped &&
        (s->codes != PV_VECTORS_I8 || trained >= train_max()))
        rc = store_vec_drop(t);
    quant_i8_free(&q);
    return rc;
}

int codes_verify(store_txn *t, const store_schema *s, uint32_t next_id)
{
    codes_view v;
    float *vec = NULL;
    uint8_t *want = NULL;
    int rc = codes_view_load(t, s, &v);
    if (rc != 0 || !s->codes)
        return rc;
    if (v.n != 0 && v.n != next_id) {
        rc = store_corrupt(t, "meta codes_n: %llu codes for %u vectors", (unsigned long long)v.n,
                           next_id);
        goto done;
    }
    if (v.n == 0 && (s->codes == PV_VECTORS_F16 || next_id >= PV_I8_TRAIN_MIN) && next_id > 0) {
        rc = store_corrupt(t, "meta codes_n: no codes for %u vectors", next_id);
        goto done;
    }
    vec = pv_alloc_array(s->dim, sizeof *vec);
    want = malloc(v.bytes ? v.bytes : 1);
    if (!vec || !want) {
        rc = PV_ENOMEM;
        goto done;
    }
    /* Codes only: no float32 vector to compare with. Every byte is an int8
     * code; a float16 one must be finite (pv_db_verify checks the decoded
     * vectors). */
    if (store_vec_dropped(t)) {
        for (uint32_t id = 0; v.kind == PV_VECTORS_F16 && id < v.n; id++) {
            codes_decode(&v, id, s->dim, vec);
            for (uint32_t d = 0; d < s->dim; d++)
                if (!isfinite(vec[d])) {
                    rc = store_corrupt(t, "codes of id %u: value %u is not finite", id, d);
                    goto done;
                }
        }
        goto done;
    }
    for (uint32_t id = 0; id < v.n; id++) {
        if ((rc = store_vec_get(t, id, vec)) != 0)
            break;
        code_one(v.kind, &v.q8, vec, s->dim, want);
        if (memcmp(want, codes_at(&v, id), v.bytes) != 0) {
            rc = store_corrupt(t, "codes of id %u: not the coding of its float32 vector", id);
            break;
        }
    }
done:
    free(vec);
    free(want);
    codes_view_free(&v);
    return rc;
}
