/*
 * test_safetensors.c - the safetensors reader and the MobileNetV2 weight
 * check: the installed model (scripts/fetch_model.sh) loads and has every
 * backbone tensor; small hand-made files check alignment and each refusal
 * (truncated, wrong dtype, bad header, overlapping data, missing or
 * misshapen tensor), each with the file and the reason in the message.
 * Then headers that disagree with their data (a header length one byte
 * short, gaps, trailing bytes, repeated names), and copies of the installed
 * model with one value changed (tests/modelpatch.h): a weight +Inf or NaN,
 * a batch norm variance negative or infinite, finite values that fold into
 * an infinite weight; cnn_load refuses each, naming the tensor.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnn.h"
#include "gen.h"
#include "modelpatch.h"
#include "mobilenet.h"
#include "pixvec.h"
#include "safetensors.h"

#define MODEL "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors"

static char dir[GEN_PATH_MAX];

static void setup(void) { cr_assert_eq(gen_tmpdir(dir), 0); }
static void teardown(void) { gen_rmtree(dir); }

TestSuite(safetensors, .init = setup, .fini = teardown);

/* Write a safetensors file: header (padded with pad spaces), then data. */
static const char *write_st(const char *name, const char *header, int pad, const void *data,
                            size_t n)
{
    static char p[GEN_PATH_MAX];
    size_t hl = strlen(header) + (size_t)pad;
    uint8_t *b = malloc(8 + hl + n);
    cr_assert_not_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + 8, header, strlen(header));
    memset(b + 8 + strlen(header), ' ', (size_t)pad);
    memcpy(b + 8 + hl, data, n);
    gen_path(p, dir, name);
    cr_assert_eq(gen_write_bytes(p, b, 8 + hl + n), 0);
    free(b);
    return p;
}

Test(safetensors, installed_mobilenet_has_every_backbone_tensor)
{
    st_file f;
    char err[512] = "";
    if (access(MODEL, R_OK) != 0)
        cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)", MODEL);
    cr_assert_eq(st_load(MODEL, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(f.nt, 266);
    cr_assert_eq(mnv2_check(&f, MODEL, err, sizeof err), 0, "%s", err);
    const st_tensor *t = st_find(&f, "Conv1/kernel");
    cr_assert_not_null(t);
    cr_assert_eq(t->ndim, 4);
    cr_assert(t->shape[0] == 3 && t->shape[1] == 3 && t->shape[2] == 3 && t->shape[3] == 32);
    const st_tensor *v = st_find(&f, "Conv_1_bn/moving_variance");
    cr_assert_not_null(v);
    for (size_t i = 0; i < v->n; i++)
        cr_assert(isfinite(v->data[i]) && v->data[i] >= 0, "variance %zu = %g", i, v->data[i]);
    cr_assert_null(st_find(&f, "no/such"));
    static const uint8_t zero[16] = {0};
    cr_assert_neq(memcmp(f.hash, zero, 16), 0);
    const mnv2_block *b = mnv2_blocks();
    cr_assert_eq(b[0].expand, 32);
    cr_assert_eq(b[16].out, 320);
    cr_assert_eq(b[13].stride, 2);
    st_free(&f);

    /* The same file cut short is refused, naming it. */
    uint8_t *bytes;
    size_t n;
    char cut[GEN_PATH_MAX];
    cr_assert_eq(gen_read_bytes(MODEL, &bytes, &n), 0);
    gen_path(cut, dir, "cut.safetensors");
    cr_assert_eq(gen_write_bytes(cut, bytes, n / 2), 0);
    free(bytes);
    cr_assert_eq(st_load(cut, &f, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "cut.safetensors") && strstr(err, "truncated"), "%s", err);
}

Test(safetensors, small_files_and_alignment)
{
    st_file f;
    char err[512] = "";
    const float v[6] = {1, 2, 3, 4, 5, 6};
    /* Header length 3 mod 4: the data starts unaligned in the file. */
    const char *p = write_st("ok.safetensors",
                             "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                             "\"__metadata__\":{\"x\":\"y\"}}",
                             1, v, sizeof v);
    cr_assert_eq(st_load(p, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(f.nt, 2);
    const st_tensor *a = st_find(&f, "a"), *b = st_find(&f, "b");
    cr_assert(a && b);
    cr_assert_eq(((uintptr_t)a->data) % sizeof(float), 0);
    cr_assert(a->data[0] == 1 && a->data[3] == 4 && b->data[0] == 5 && b->data[1] == 6);
    st_free(&f);
}

Test(safetensors, half_bfloat_double_and_integer_tensors)
{
    st_file f;
    char err[512] = "";
    /* pos I64 [1,2] 16 bytes, a F32 [2] 8 (aligned: used in place), s F32
     * scalar 4, h F16 [4] 8, b BF16 [2] 4, d F64 [1] 8: 48 bytes. */
    uint8_t v[48];
    const int64_t pos[2] = {0, 1};
    const float a[2] = {1.5f, -2}, sc = 4.6052f;
    const uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7c00}; /* 1, -2, 2^-24, +Inf */
    const uint16_t bf[2] = {0x3fc0, 0xbf80};                /* 1.5, -1 */
    const double d = 0.25;
    memcpy(v, pos, 16);
    memcpy(v + 16, a, 8);
    memcpy(v + 24, &sc, 4);
    memcpy(v + 28, h, 8);
    memcpy(v + 36, bf, 4);
    memcpy(v + 40, &d, 8);
    const char *hdr = "{\"pos\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[0,16]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                      "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[24,28]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[28,36]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[36,40]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[40,48]}}";
    const size_t pad = (8 - strlen(hdr) % 8) % 8; /* data 8-aligned in the file */
    const char *p = write_st("mixed.st", hdr, (int)pad, v, sizeof v);
    cr_assert_eq(st_load(p, &f, err, sizeof err), 0, "%s", err);
    const st_tensor *tp = st_find(&f, "pos"), *ta = st_find(&f, "a"), *ts = st_find(&f, "s"),
                    *th = st_find(&f, "h"), *tb = st_find(&f, "b"), *td = st_find(&f, "d");
    cr_assert(tp && ta && ts && th && tb && td);
    cr_assert(tp->dtype == ST_I64 && tp->data == NULL && tp->n == 2);
    /* an aligned F32 tensor is read where it lies in the mapping */
    cr_assert((const uint8_t *)ta->data >= (const uint8_t *)f.map &&
              (const uint8_t *)ta->data < (const uint8_t *)f.map + f.map_len);
    cr_assert(ta->data[0] == 1.5f && ta->data[1] == -2);
    cr_assert(ts->ndim == 0 && ts->n == 1 && ts->data[0] == sc);
    cr_assert(th->dtype == ST_F16 && th->data[0] == 1 && th->data[1] == -2 &&
              th->data[2] == ldexpf(1, -24) && isinf(th->data[3]));
    cr_assert(tb->data[0] == 1.5f && tb->data[1] == -1);
    cr_assert(td->data[0] == 0.25f);
    /* st_want: shape, dtype and values */
    int rc;
    const int64_t two = 2, four[2] = {2, 2};
    cr_assert_not_null(st_want(&f, p, "a", 1, &two, "test", &rc, err, sizeof err));
    cr_assert_null(st_want(&f, p, "pos", 2, (const int64_t[]){1, 2}, "test", &rc, err, sizeof err));
    cr_assert(rc == PV_ECORRUPT && strstr(err, "dtype I64"), "%s", err);
    cr_assert_null(st_want(&f, p, "h", 2, four, "test", &rc, err, sizeof err));
    cr_assert(rc == PV_ENUMERIC && strstr(err, "+Inf at element 3"), "%s", err);
    cr_assert_null(st_want(&f, p, "a", 1, (const int64_t[]){3}, "tiny", &rc, err, sizeof err));
    cr_assert(strstr(err, "mixed.st") && strstr(err, "shape [2]; tiny needs [3]"), "%s", err);
    st_free(&f);
}

static void refused(const char *name, const char *header, size_t n, const char *why)
{
    st_file f;
    char err[512] = "";
    float v[8] = {0};
    const char *p = write_st(name, header, 0, v, n);
    cr_assert_eq(st_load(p, &f, err, sizeof err), PV_ECORRUPT, "%s loaded", name);
    cr_assert(strstr(err, name), "the message names the file: %s", err);
    cr_assert(strstr(err, why), "expected '%s' in: %s", why, err);
}

Test(safetensors, bad_files_are_refused_with_the_reason)
{
    refused("c64.st", "{\"a\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
            "dtype C64");
    refused("garbage.st", "{not json", 4, "not a JSON object");
    refused("short.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
            "truncated");
    refused("count.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16,
            "3 F32 values");
    refused("overlap.st",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            16, "share bytes");
    refused("noshape.st", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
            "needs dtype, shape");

    /* A header length beyond the file. */
    st_file f;
    char err[512] = "", p[GEN_PATH_MAX];
    const uint8_t big[12] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0};
    gen_path(p, dir, "len.st");
    cr_assert_eq(gen_write_bytes(p, big, sizeof big), 0);
    cr_assert_eq(st_load(p, &f, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "header length"), "%s", err);
    gen_path(p, dir, "missing.st");
    cr_assert_eq(st_load(p, &f, err, sizeof err), PV_EIO);
    cr_assert(strstr(err, "missing.st") && strstr(err, "No such file"), "%s", err);
}

Test(safetensors, weights_of_another_network_are_refused)
{
    st_file f;
    char err[512] = "";
    float v[8] = {0};
    const char *p = write_st("other.st",
                             "{\"Conv1/kernel\":{\"dtype\":\"F32\",\"shape\":[2,2,1,1],"
                             "\"data_offsets\":[0,16]}}",
                             0, v, 16);
    cr_assert_eq(st_load(p, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mnv2_check(&f, p, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "Conv1/kernel has shape [2,2,1,1]") && strstr(err, "[3,3,3,32]"),
              "%s", err);
    st_free(&f);
    p = write_st("empty.st", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                 0, v, 4);
    cr_assert_eq(st_load(p, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mnv2_check(&f, p, err, sizeof err), PV_ECORRUPT);
    cr_assert(strstr(err, "no tensor Conv1/kernel"), "%s", err);
    st_free(&f);
}

/* ---- headers that disagree with their data --------------------------------- */

Test(safetensors, header_and_data_must_agree_exactly)
{
    /* The reader must account for every byte after the header: tensors
     * contiguous from the first data byte to the last, as the format's
     * reference reader (huggingface/safetensors) requires. */
    refused("gap.st",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
            20, "bytes [8, 12) of the data belong to no tensor");
    refused("late.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            12, "bytes [0, 4) of the data belong to no tensor");
    refused("trail.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
            12, "header length");
    refused("empty_but_data.st", "{}", 4, "header length");
    refused("dup.st",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8, "duplicate");
    refused("meta.st",
            "{\"__metadata__\":{\"n\":5},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
            4, "__metadata__");
    refused("space.st", " {\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
            4, "begin with '{'");
    refused("notensor.st", "{\"a\":5}", 0, "tensor a");
    refused("rank.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}",
            4, "5 dimensions");

    /* A header padded to a multiple of 8 with spaces (as writers do) and
     * nothing at all ("{}" with no data) are fine. */
    st_file f;
    char err[512] = "";
    const float v[2] = {1, 2};
    const char *p = write_st("pad.st",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                             7, v, sizeof v);
    cr_assert_eq(st_load(p, &f, err, sizeof err), 0, "%s", err);
    cr_assert(f.nt == 1 && f.t[0].data[1] == 2);
    st_free(&f);
    p = write_st("nothing.st", "{}", 0, v, 0);
    cr_assert_eq(st_load(p, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(f.nt, 0);
    st_free(&f);
}

/* ---- the installed model with one thing changed ---------------------------- */

/* A copy of the installed model in dir, name, with tensor[i] = v (no
 * change when tensor is NULL); the header length moved by dh. */
static const char *patched(const char *name, const char *tensor, size_t i, float v, int dh)
{
    static char p[GEN_PATH_MAX];
    mp_model m;
    cr_assert_eq(mp_open(&m, MODEL), 0, "cannot read %s", MODEL);
    if (tensor)
        cr_assert_eq(mp_set(&m, tensor, i, v), 0, "no element %zu in %s", i, tensor);
    if (dh) {
        uint64_t h = m.hlen + (uint64_t)(int64_t)dh;
        for (int b = 0; b < 8; b++)
            m.bytes[b] = (uint8_t)(h >> (8 * b));
    }
    gen_path(p, dir, name);
    cr_assert_eq(mp_write(&m, p), 0);
    mp_close(&m);
    return p;
}

/* cnn_load refuses path with code, and err names the file and holds each
 * of the NULL-terminated words. */
static void load_refused(const char *path, int code, ...)
{
    cnn *m = NULL;
    char err[512] = "";
    va_list ap;
    const char *w;
    int rc = cnn_load(path, &m, NULL, err, sizeof err);
    cr_assert_eq(rc, code, "cnn_load gave %d (%s), not %d: %s", rc, pv_strerror(rc), code,
                 err);
    cr_assert_null(m);
    cr_assert(strstr(err, strrchr(path, '/') + 1), "the message names the file: %s", err);
    va_start(ap, code);
    while ((w = va_arg(ap, const char *)) != NULL)
        cr_assert(strstr(err, w), "expected '%s' in: %s", w, err);
    va_end(ap);
}

#define NEED_MODEL()                                                                           \
    do {                                                                                       \
        if (access(MODEL, R_OK) != 0)                                                          \
            cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)", \
                         MODEL);                                                               \
    } while (0)

Test(safetensors, header_length_one_byte_short_is_refused)
{
    st_file f;
    char err[512] = "";
    NEED_MODEL();
    /* The header ends in padding spaces, so one byte less is still JSON,
     * and every tensor would be read one byte early. */
    const char *p = patched("short1.safetensors", NULL, 0, 0, -1);
    cr_assert_eq(st_load(p, &f, err, sizeof err), PV_ECORRUPT, "loaded one byte off");
    cr_assert(strstr(err, "short1.safetensors") && strstr(err, "header length"), "%s", err);
    p = patched("long1.safetensors", NULL, 0, 0, +1);
    cr_assert_eq(st_load(p, &f, err, sizeof err), PV_ECORRUPT, "loaded one byte off");
    cr_assert(strstr(err, "long1.safetensors"), "%s", err);
    /* the unchanged copy loads: the refusals are about the change */
    cnn *m = NULL;
    p = patched("same.safetensors", NULL, 0, 0, 0);
    cr_assert_eq(cnn_load(p, &m, NULL, err, sizeof err), 0, "%s", err);
    cnn_free(m);
}

Test(safetensors, non_finite_weights_are_refused)
{
    NEED_MODEL();
    load_refused(patched("inf.safetensors", "Conv1/kernel", 5, INFINITY, 0), PV_ENUMERIC,
                 "Conv1/kernel", "element 5", NULL);
    load_refused(patched("ninf.safetensors", "block_16_project/kernel", 1000, -INFINITY, 0),
                 PV_ENUMERIC, "block_16_project/kernel", "element 1000", NULL);
    load_refused(patched("nan.safetensors", "block_3_project_BN/beta", 7, NAN, 0), PV_ENUMERIC,
                 "block_3_project_BN/beta", "element 7", NULL);
    load_refused(patched("mean.safetensors", "Conv_1_bn/moving_mean", 1279, NAN, 0),
                 PV_ENUMERIC, "Conv_1_bn/moving_mean", NULL);
}

Test(safetensors, bad_batch_norm_variances_are_refused)
{
    NEED_MODEL();
    load_refused(patched("neg.safetensors", "block_5_depthwise_BN/moving_variance", 2, -0.5f, 0),
                 PV_ECORRUPT, "block_5_depthwise_BN/moving_variance", "element 2", "negative",
                 NULL);
    /* above -epsilon: var + eps stays positive, but no batch has it */
    load_refused(patched("neg2.safetensors", "bn_Conv1/moving_variance", 0, -1e-4f, 0),
                 PV_ECORRUPT, "bn_Conv1/moving_variance", "negative", NULL);
    load_refused(patched("infvar.safetensors", "Conv_1_bn/moving_variance", 3, INFINITY, 0),
                 PV_ENUMERIC, "Conv_1_bn/moving_variance", "element 3", NULL);
}

Test(safetensors, weights_that_fold_to_infinity_are_refused)
{
    NEED_MODEL();
    /* Every value finite, but gamma / sqrt(variance + 1e-3) x kernel is
     * not: 3e38 / sqrt(0.001) overflows a float. */
    mp_model m;
    char p[GEN_PATH_MAX];
    cr_assert_eq(mp_open(&m, MODEL), 0);
    cr_assert_eq(mp_set(&m, "block_2_expand_BN/gamma", 4, 3e38f), 0);
    cr_assert_eq(mp_set(&m, "block_2_expand_BN/moving_variance", 4, 0.0f), 0);
    gen_path(p, dir, "fold.safetensors");
    cr_assert_eq(mp_write(&m, p), 0);
    mp_close(&m);
    load_refused(p, PV_ENUMERIC, "block_2_expand", "channel 4", NULL);
}
