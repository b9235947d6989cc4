/*
 * modelpatch.h - a safetensors weight file in memory, to be changed and
 * written back (tests only).
 *
 * A test that needs a broken or odd model (a weight set to +Inf, a batch
 * norm variance made negative, a header length one byte short) copies the
 * installed model with these helpers instead of keeping a 10 MB fixture:
 * mp_open reads the file and parses its JSON header with jansson (not with
 * the reader under test), mp_set changes one float of a named tensor
 * (little-endian, as the format stores it; offsets need not be aligned),
 * mp_write writes the bytes, mp_close frees them. Every function returns 0
 * on success and -1 on failure, printing nothing.
 *
 * Typical use:
 *     mp_model m;
 *     mp_open(&m, "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors");
 *     mp_set(&m, "Conv1/kernel", 5, INFINITY);
 *     mp_write(&m, path);
 *     mp_close(&m);
 */
#ifndef PV_TEST_MODELPATCH_H
#define PV_TEST_MODELPATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct mp_model {
    uint8_t *bytes; /* the whole file: 8-byte length, header, data */
    size_t n;
    uint64_t hlen;  /* header length as the file first said */
    void *hdr;      /* its parsed header (json_t *) */
} mp_model;

int mp_open(mp_model *m, const char *path);
/* Element i of tensor name (F32): get it into *v, or set it to v. */
int mp_get(const mp_model *m, const char *name, size_t i, float *v);
int mp_set(mp_model *m, const char *name, size_t i, float v);
/* Elements in tensor name (0 when there is no such tensor). */
size_t mp_count(const mp_model *m, const char *name);
/* Lay the file out again without the tensor drop and with the 2-D tensor
 * transpose stored transposed (shape and bytes), either NULL: the other
 * tensors keep their order and bytes, their offsets close up, and the
 * header is written compact and padded with spaces to a multiple of 8, as
 * the safetensors library writes it. */
int mp_rebuild(mp_model *m, const char *drop, const char *transpose);
int mp_write(const mp_model *m, const char *path);
void mp_close(mp_model *m); /* a zeroed model is fine */

#endif
