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
