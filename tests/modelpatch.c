/*
 * modelpatch.c - change a copy of a safetensors file (see modelpatch.h).
 */
#include "modelpatch.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

int mp_open(mp_model *m, const char *path)
{
    json_error_t je;
    memset(m, 0, sizeof *m);
    if (gen_read_bytes(path, &m->bytes, &m->n) != 0)
        return -1;
    for (int b = 7; m->n >= 8 && b >= 0; b--)
        m->hlen = (m->hlen << 8) | m->bytes[b];
    if (m->n < 8 || m->hlen > m->n - 8)
        goto fail;
    m->hdr = json_loadb((const char *)m->bytes + 8, (size_t)m->hlen, 0, &je);
    if (!m->hdr || !json_is_object((json_t *)m->hdr))
        goto fail;
    return 0;
fail:
    mp_close(m);
    return -1;
}

/* Byte offset in the file of element i of name, or 0 (never a float's place). */
static size_t where(const mp_model *m, const char *name, size_t i)
{
    json_t *t = json_object_get(m->hdr, name), *off = json_object_get(t, "data_offsets");
    json_int_t b = json_integer_value(json_array_get(off, 0)),
               e = json_integer_value(json_array_get(off, 1));
    size_t at = 8 + (size_t)m->hlen + (size_t)b + 4 * i;
    if (!t || !json_is_array(off) || b < 0 || e < b || i >= (size_t)(e - b) / 4 || at + 4 > m->n)
        return 0;
    return at;
}

size_t mp_count(const mp_model *m, const char *name)
{
    json_t *off = json_object_get(json_object_get(m->hdr, name), "data_offsets");
    json_int_t b = json_integer_value(json_array_get(off, 0)),
               e = json_integer_value(json_array_get(off, 1));
    return json_is_array(off) && e > b ? (size_t)(e - b) / 4 : 0;
}

int mp_get(const mp_model *m, const char *name, size_t i, float *v)
{
    size_t at = where(m, name, i);
    if (!at)
        return -1;
    memcpy(v, m->bytes + at, 4); /* the host is little-endian like the format */
    return 0;
}

int mp_set(mp_model *m, const char *name, size_t i, float v)
{
    size_t at = where(m, name, i);
    if (!at)
        return -1;
    memcpy(m->bytes + at, &v, 4);
    return 0;
}

int mp_write(const mp_model *m, const char *path)
{
    return gen_write_bytes(path, m->bytes, m->n);
}

void mp_close(mp_model *m)
{
    if (!m)
        return;
    json_decref(m->hdr);
    free(m->bytes);
    memset(m, 0, sizeof *m);
}

static size_t dtype_size(const char *d)
{
    return !d ? 0 : !strcmp(d, "F32") ? 4 : !strcmp(d, "F16") || !strcmp(d, "BF16") ? 2
         : !strcmp(d, "I64") || !strcmp(d, "F64") ? 8 : 0;
}

typedef struct mp_ent {
    const char *name;
    json_t *t;
    size_t b, e;
} mp_ent;

static int by_begin(const void *x, const void *y)
{
    const mp_ent *a = x, *b = y;
    return a->b < b->b ? -1 : a->b > b->b;
}

int mp_rebuild(mp_model *m, const char *drop, const char *transpose)
{
    size_t nt = json_object_size(m->hdr), k = 0, total = 0, at = 0, hl;
    mp_ent *ents = calloc(nt ? nt : 1, sizeof *ents);
    uint8_t *out = NULL, *nd = NULL, *data = m->bytes + 8 + m->hlen;
    char *h = NULL;
    const char *name;
    json_t *t;
    int rc = -1;
    if (!ents)
        return -1;
    json_object_foreach((json_t *)m->hdr, name, t) {
        json_t *off = json_object_get(t, "data_offsets");
        if (!strcmp(name, "__metadata__"))
            continue;
        json_int_t b = json_integer_value(json_array_get(off, 0)),
                   e = json_integer_value(json_array_get(off, 1));
        if (b < 0 || e < b || 8 + m->hlen + (size_t)e > m->n)
            goto done;
        ents[k++] = (mp_ent){name, t, (size_t)b, (size_t)e};
    }
    qsort(ents, k, sizeof *ents, by_begin);
    for (size_t i = 0; i < k; i++)
        if (!drop || strcmp(ents[i].name, drop))
            total += ents[i].e - ents[i].b;
    nd = malloc(total ? total : 1);
    if (!nd)
        goto done;
    for (size_t i = 0; i < k; i++) {
        mp_ent *x = &ents[i];
        size_t len = x->e - x->b;
        if (drop && !strcmp(x->name, drop))
            continue;
        json_t *shape = json_object_get(x->t, "shape");
        size_t es = dtype_size(json_string_value(json_object_get(x->t, "dtype")));
        if (transpose && !strcmp(x->name, transpose)) {
            size_t r = (size_t)json_integer_value(json_array_get(shape, 0)),
                   c = (size_t)json_integer_value(json_array_get(shape, 1));
            if (json_array_size(shape) != 2 || !es || r * c * es != len)
                goto done;
            for (size_t i0 = 0; i0 < r; i0++)
                for (size_t j = 0; j < c; j++)
                    memcpy(nd + at + (j * r + i0) * es, data + x->b + (i0 * c + j) * es, es);
            json_array_set_new(shape, 0, json_integer((json_int_t)c));
            json_array_set_new(shape, 1, json_integer((json_int_t)r));
        } else {
            memcpy(nd + at, data + x->b, len);
        }
        json_t *off = json_array();
        json_array_append_new(off, json_integer((json_int_t)at));
        json_array_append_new(off, json_integer((json_int_t)(at + len)));
        json_object_set_new(x->t, "data_offsets", off);
        at += len;
    }
    if (drop)
        json_object_del(m->hdr, drop);
    h = json_dumps(m->hdr, JSON_COMPACT);
    if (!h)
        goto done;
    hl = strlen(h);
    hl += (8 - hl % 8) % 8;
    out = malloc(8 + hl + total);
    if (!out)
        goto done;
    for (int b = 0; b < 8; b++)
        out[b] = (uint8_t)((uint64_t)hl >> (8 * b));
    memset(out + 8, ' ', hl);
    memcpy(out + 8, h, strlen(h));
    memcpy(out + 8 + hl, nd, total);
    free(m->bytes);
    m->bytes = out;
    m->n = 8 + hl + total;
    m->hlen = hl;
    rc = 0;
done:
    free(nd);
    free(h);
    free(ents);
    return rc;
}
