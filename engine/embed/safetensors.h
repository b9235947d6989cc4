/*
 * safetensors.h - read a safetensors file (engine/embed room).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}, then the raw little-endian data; offsets count
 * from the end of the header. Everything is checked before use: the header
 * length against the file, the JSON (an object beginning at byte 8, no name
 * twice, __metadata__ strings only), every tensor's dtype (below), rank
 * (0 to 4), element count against its byte range, and the byte ranges,
 * which must tile the data exactly: from its first byte to the file's last,
 * no gap, nothing shared (a header length off by one byte is refused, not
 * read one byte off). Errors name the file and the reason; values (NaN,
 * Inf) are the model check's business (mobilenet.h).
 */
#ifndef PV_SAFETENSORS_H
#define PV_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 4

/* Float tensors (F32, F16, BF16, F64) are read as float32: an F32 tensor
 * at a 4-aligned place in the file is used in place (the file is memory-
 * mapped, read-only), any other is converted once into memory of its own.
 * Integer and bool tensors (a checkpoint's position_ids) are accepted and
 * checked like the others but not read: their data is NULL. */
enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL };

typedef struct st_tensor {
    char *name;
    int ndim;          /* 0 (a scalar) to ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS];
    size_t n;          /* elements (1 for a scalar) */
    int dtype;         /* enum st_dtype, as stored */
    const float *data; /* n floats, aligned; NULL for integer dtypes */
} st_tensor;

typedef struct st_file {
    st_tensor *t;     /* sorted by name */
    size_t nt;
    float *conv;      /* the tensors that could not be used in place */
    void *map;        /* the file, mapped read-only */
    size_t map_len;
    uint8_t hash[16]; /* XXH3-128 of the whole file */
} st_file;

/* Load path; 0 or PV_EIO / PV_ECORRUPT / PV_ENOMEM with a message in err.
 * The tensors point into the mapping until st_free: the file must not be
 * truncated while loaded (as for any mapped file). */
int st_load(const char *path, st_file *f, char *err, size_t errlen);
/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
/* The float tensor called name, of exactly this shape, every value finite;
 * or NULL with *rc PV_ECORRUPT (absent, another shape, not floats) or
 * PV_ENUMERIC (a NaN or Inf), and a message in err naming path, the tensor
 * and what needs it ("MobileNetV2 (alpha 1.0)"). */
const st_tensor *st_want(const st_file *f, const char *path, const char *name, int ndim,
                         const int64_t *shape, const char *what, int *rc, char *err,
                         size_t errlen);
/* The name of a dtype ("F16"). */
const char *st_dtype_name(int dtype);
void st_free(st_file *f);

#endif
