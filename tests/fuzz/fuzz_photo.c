/*
 * fuzz_photo.c - libFuzzer target over the photo embedder's pair score
 * (engine/embed/embed_photo.c), which reads two stored vectors: records of
 * a database, untrusted. No vector may make it read outside the vectors or
 * its maps, or answer outside [-1, 1] (NaN included).
 *
 * At start: two real vectors, of a generated picture and of its mirror
 * image, with mirror matching on and off. Each input is a list of patches
 * to copies of them:
 *
 *   byte 0      which vector (bit 0); the first patch's bit 1 picks the
 *               embedder (mirror matching on or off)
 *   bytes 1-2   float index (little-endian u16, mod the dimension; the
 *               last slots are the uniform shade and the aspect ratio)
 *   bytes 3-6   the float's bits (NaN, Inf, huge, denormal: anything)
 *
 * repeated while bytes remain (at most 64). Then both orders are scored.
 *
 * Build: CC=clang cmake -DPV_FUZZ=ON (see scripts/ci/fuzz.sh).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "img.h"

static embedder *emb[2];
static float *base[2][2]; /* [embedder][vector] */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_photo: %s\n", what);
    abort();
}

/* A picture with structure at several scales, and its mirror. */
static void make_vectors(void)
{
    enum { W = 300, H = 200 };
    img ims[2];
    char err[256];
    for (int m = 0; m < 2; m++) {
        ims[m] =
            (img){.w = W, .h = H, .channels = 1, .orig_w = W, .orig_h = H, .px = malloc(W * H)};
        if (!ims[m].px)
            die("out of memory");
    }
    for (uint32_t y = 0; y < H; y++)
        for (uint32_t x = 0; x < W; x++) {
            double v = 128 + 60 * sin(x * 0.05) * cos(y * 0.08) + 40 * ((x / 25 + y / 30) % 2) +
                       20 * sin(x * 0.9 + y * 0.4);
            uint8_t px = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            ims[0].px[y * W + x] = px;
            ims[1].px[y * W + (W - 1 - x)] = px;
        }
    for (int e = 0; e < 2; e++) {
        int rcs[2];
        if (embed_create("photo", 0, 0, NULL, e ? EMBED_NO_MIRROR : 0, &emb[e], err,
                         sizeof err) != 0)
            die(err);
        float *v = malloc(2 * emb[e]->dim * sizeof *v);
        if (!v || emb[e]->ops->embed(emb[e], ims, 2, v, rcs) != 0 || rcs[0] || rcs[1])
            die("embedding the seed pictures");
        base[e][0] = v;
        base[e][1] = v + emb[e]->dim;
    }
    free(ims[0].px);
    free(ims[1].px);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        make_vectors();
        ready = 1;
    }
    int e = size > 0 ? (data[0] >> 1) & 1 : 0;
    uint32_t dim = emb[e]->dim;
    float *v[2] = {malloc(dim * sizeof(float)), malloc(dim * sizeof(float))};
    if (!v[0] || !v[1])
        die("out of memory");
    memcpy(v[0], base[e][0], dim * sizeof(float));
    memcpy(v[1], base[e][1], dim * sizeof(float));
    for (size_t off = 0, n = 0; off + 7 <= size && n < 64; off += 7, n++) {
        uint32_t idx = (uint32_t)(data[off + 1] | data[off + 2] << 8) % dim;
        memcpy(&v[data[off] & 1][idx], data + off + 3, 4);
    }
    for (int o = 0; o < 2; o++) {
        float s = emb[e]->ops->pair_score(emb[e], v[o], v[1 - o]);
        if (!(s >= -1.0001f && s <= 1.0001f)) {
            fprintf(stderr, "fuzz_photo: score %g outside [-1, 1]\n", s);
            abort();
        }
    }
    free(v[0]);
    free(v[1]);
    return 0;
}
