/*
 * fuzz_model.c - libFuzzer target over the transformer checkpoints
 * (engine/embed/embed_vit.c, safetensors.c): config.json and the
 * safetensors header and bytes are untrusted. No input may crash, read out
 * of bounds, leak, or allocate past the fuzzer's limit; a checkpoint that
 * loads must embed an image (and, for clip, a text) without a sanitizer
 * report.
 *
 * At start: the tiny random checkpoints of clip, dinov2 and vitmae that
 * scripts/ci/fuzz.sh made with tests/ref_vit.py, in $PV_FUZZ_CKPT/{clip,
 * dinov2,vitmae}. Each input is
 *
 *   byte 0      what to damage (mod 4): 0 config.json is replaced by the
 *               rest of the input; 1 the safetensors header (the JSON) is
 *               replaced by it, the data kept; 2 the safetensors file gets
 *               patches (u16 offset, byte) from it; 3 config.json gets
 *               such patches
 *   byte 1      the family (mod 3)
 *   the rest    the bytes
 *
 * Build: CC=clang cmake -DPV_FUZZ=ON (see scripts/ci/fuzz.sh).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "img.h"
#include "pixvec.h"

static const char *const FAMILY[3] = {"clip", "dinov2", "vitmae"};
static char src[3][PATH_MAX];  /* the checkpoints */
static char work[PATH_MAX];    /* the damaged copy */
static uint8_t *cfg[3], *st[3];
static size_t cfg_len[3], st_len[3];

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "fuzz_model: %s %s\n", what, arg);
    abort();
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n = 0;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        die("cannot read", path);
    if (!(b = malloc((size_t)n + 1)) || fread(b, 1, (size_t)n, f) != (size_t)n)
        die("cannot read", path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void put(const char *dir, const char *name, const void *a, size_t na, const void *b,
                size_t nb)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f) != 0)
        die("cannot write", p);
}

static void copy_file(const char *from_dir, const char *name)
{
    char p[PATH_MAX + 32];
    size_t n;
    snprintf(p, sizeof p, "%s/%s", from_dir, name);
    if (access(p, R_OK) != 0)
        return;
    uint8_t *b = slurp(p, &n);
    put(work, name, b, n, NULL, 0);
    free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *root = getenv("PV_FUZZ_CKPT");
    char p[PATH_MAX + 32];
    (void)argc;
    (void)argv;
    if (!root)
        die("PV_FUZZ_CKPT is not set", "(scripts/ci/fuzz.sh sets it)");
    for (int f = 0; f < 3; f++) {
        snprintf(src[f], sizeof src[f], "%s/%s", root, FAMILY[f]);
        snprintf(p, sizeof p, "%s/config.json", src[f]);
        cfg[f] = slurp(p, &cfg_len[f]);
        snprintf(p, sizeof p, "%s/model.safetensors", src[f]);
        st[f] = slurp(p, &st_len[f]);
    }
    snprintf(work, sizeof work, "%s/work-%d", root, (int)getpid());
    snprintf(p, sizeof p, "mkdir -p '%s'", work);
    if (system(p) != 0)
        die("cannot make", work);
    return 0;
}

/* n (offset u16, byte) patches from d onto a copy of b. */
static void patched(const uint8_t *b, size_t len, const uint8_t *d, size_t n, const char *name)
{
    uint8_t *c = malloc(len ? len : 1);
    if (!c)
        die("out of memory", "");
    memcpy(c, b, len);
    for (size_t i = 0; i + 3 <= n && len; i += 3)
        c[(size_t)(d[i] | d[i + 1] << 8) % len] = d[i + 2];
    put(work, name, c, len, NULL, 0);
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024] = "";
    embedder *e = NULL;
    int rc;
    if (size < 2)
        return 0;
    const int mode = data[0] % 4, f = data[1] % 3;
    const uint8_t *d = data + 2;
    const size_t n = size - 2;
    copy_file(src[f], "vocab.json");
    copy_file(src[f], "merges.txt");
    put(work, "config.json", cfg[f], cfg_len[f], NULL, 0);
    put(work, "model.safetensors", st[f], st_len[f], NULL, 0);
    if (mode == 0) {
        put(work, "config.json", d, n, NULL, 0);
    } else if (mode == 1) {
        /* a new header of n bytes before the same data */
        uint64_t old = 0;
        uint8_t len8[8];
        for (int i = 7; i >= 0; i--)
            old = old << 8 | st[f][i];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)((uint64_t)n >> (8 * i));
        uint8_t *h = malloc(8 + n + 1);
        if (!h)
            die("out of memory", "");
        memcpy(h, len8, 8);
        memcpy(h + 8, d, n);
        put(work, "model.safetensors", h, 8 + n, st[f] + 8 + old, st_len[f] - 8 - old);
        free(h);
    } else if (mode == 2) {
        patched(st[f], st_len[f], d, n, "model.safetensors");
    } else {
        patched(cfg[f], cfg_len[f], d, n, "config.json");
    }
    if ((rc = embed_create(FAMILY[f], 0, 0, work, 0, &e, err, sizeof err)) == 0) {
        /* a loaded checkpoint runs: one small image, and a text */
        enum { W = 40, H = 30 };
        uint8_t px[W * H * 3];
        for (size_t i = 0; i < sizeof px; i++)
            px[i] = (uint8_t)(i * 37 % 251);
        img im = {.w = W, .h = H, .channels = 3, .orig_w = W, .orig_h = H, .px = px};
        float *v = malloc(e->dim * sizeof(float));
        if (!v)
            die("out of memory", "");
        (void)e->ops->embed(e, &im, 1, v, &rc);
        if (e->ops->embed_text)
            (void)e->ops->embed_text(e, "a dog on a beach", 16, v, err, sizeof err);
        free(v);
        embed_destroy(e);
    } else if (!err[0] && rc != PV_ENOMEM) {
        die("a refused checkpoint without a message", FAMILY[f]);
    }
    return 0;
}
