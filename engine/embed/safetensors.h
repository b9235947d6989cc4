/*
 * safetensors.h - read a safetensors file of float32 tensors (engine/embed room).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}, then the raw little-endian data; offsets count
 * from the end of the header. Everything is checked before use: the header
 * length against the file, the JSON (an object beginning at byte 8, no name
 * twice, __metadata__ strings only), every tensor's dtype (F32 only), rank
 * (at most 4), element count against its byte range, and the byte ranges,
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

typedef struct st_tensor {
    char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t n;          /* elements */
    const float *data; /* aligned, inside the file's buffer */
} st_tensor;

typedef struct st_file {
    st_tensor *t; /* sorted by name */
    size_t nt;
    float *data;  /* all tensor data, aligned copy */
    uint8_t hash[16]; /* XXH3-128 of the whole file */
} st_file;

/* Load path; 0 or PV_EIO / PV_ECORRUPT / PV_ENOMEM with a message in err. */
int st_load(const char *path, st_file *f, char *err, size_t errlen);
/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
void st_free(st_file *f);

#endif
