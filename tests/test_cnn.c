/*
 * test_cnn.c - the C MobileNetV2 forward pass (engine/cnn.c) against a
 * reference written with PyTorch operators (tests/ref_mobilenet.py, run with
 * Debian's python3-torch), on the same weight file and the same 20 inputs:
 * the 1280-d features must agree to cosine >= 0.9999 per image. Inputs:
 * generated pictures (patterns, gradients, noise, a flat image) at 224 x
 * 224, scaled to [0, 1] as nsfwjs does. Batches of 8, 8 and 4 go through
 * one work buffer, so batching and buffer reuse are covered too.
 *
 * Skipped, saying so, when the model is not installed (scripts/setup.sh
 * installs it) or when python3-torch cannot be imported.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnn.h"
#include "gen.h"
#include "pixvec.h"

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif

#define MODEL "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors"
#define N 20
#define PIX ((size_t)CNN_SIDE * CNN_SIDE * 3)

static void make_input(int i, float *x)
{
    uint8_t *px = malloc(PIX);
    cr_assert_not_null(px);
    if (i < 14) {
        gen_pattern(CNN_SIDE, CNN_SIDE, 3, (uint32_t)(500 + i), px);
    } else if (i < 17) { /* gradients */
        for (size_t p = 0; p < PIX; p++) {
            size_t y = p / (CNN_SIDE * 3), xx = (p / 3) % CNN_SIDE, c = p % 3;
            px[p] = (uint8_t)((y * (c + 1) + xx * (size_t)(i - 13)) % 256);
        }
    } else if (i < 19) { /* noise */
        uint32_t s = (uint32_t)i * 2654435761u;
        for (size_t p = 0; p < PIX; p++) {
            s = s * 1103515245u + 12345u;
            px[p] = (uint8_t)(s >> 24);
        }
    } else { /* flat */
        memset(px, 128, PIX);
    }
    for (size_t p = 0; p < PIX; p++)
        x[p] = px[p] / 255.0f;
    free(px);
}

Test(cnn, forward_pass_matches_pytorch, .timeout = 600)
{
    char err[512] = "", dir[GEN_PATH_MAX], in[GEN_PATH_MAX], out[GEN_PATH_MAX], cmd[4 * GEN_PATH_MAX];
    cnn *m = NULL;
    if (access(MODEL, R_OK) != 0)
        cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)", MODEL);
    if (system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0)
        cr_skip_test("python3-torch cannot be imported (scripts/setup.sh installs it): "
                     "the PyTorch comparison did not run");
    uint8_t hash[16];
    cr_assert_eq(cnn_load(MODEL, &m, hash, err, sizeof err), 0, "%s", err);
    float *x = malloc(N * PIX * sizeof(float)), *y = malloc(N * MNV2_FEATURES * sizeof(float));
    float *r = malloc(N * MNV2_FEATURES * sizeof(float));
    cr_assert(x && y && r);
    for (int i = 0; i < N; i++)
        make_input(i, x + (size_t)i * PIX);
    cnn_work *w = cnn_work_new(8);
    cr_assert_not_null(w);
    for (int b = 0; b < N; b += 8) {
        int n = N - b < 8 ? N - b : 8;
        cr_assert_eq(cnn_forward(m, w, x + (size_t)b * PIX, (size_t)n,
                                 y + (size_t)b * MNV2_FEATURES), 0);
    }

    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(in, dir, "in.f32");
    gen_path(out, dir, "out.f32");
    cr_assert_eq(gen_write_bytes(in, x, N * PIX * sizeof(float)), 0);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref_mobilenet.py %s %s %d %s",
             PIXVEC_SRC_DIR, MODEL, in, N, out);
    cr_assert_eq(system(cmd), 0, "the reference failed: %s", cmd);
    uint8_t *rb;
    size_t rn;
    cr_assert_eq(gen_read_bytes(out, &rb, &rn), 0);
    cr_assert_eq(rn, N * MNV2_FEATURES * sizeof(float));
    memcpy(r, rb, rn);
    free(rb);

    double worst = 1;
    for (int i = 0; i < N; i++) {
        const float *a = y + (size_t)i * MNV2_FEATURES, *b = r + (size_t)i * MNV2_FEATURES;
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < MNV2_FEATURES; k++) {
            cr_assert(isfinite(a[k]), "image %d feature %d is not finite", i, k);
            ab += (double)a[k] * b[k];
            aa += (double)a[k] * a[k];
            bb += (double)b[k] * b[k];
        }
        double cs = ab / sqrt(aa * bb);
        if (cs < worst)
            worst = cs;
        cr_assert_gt(aa, 0, "image %d: all features zero", i);
        cr_assert_geq(cs, 0.9999, "image %d: cosine %.6f to the PyTorch reference", i, cs);
    }
    /* The features tell images apart: a pattern, a gradient, noise and the
     * flat image are not one vector (a wiring slip that ignored the input
     * would pass the comparison above). */
    for (int i = 0; i < N; i += 5) {
        const float *a = y + (size_t)i * MNV2_FEATURES, *b = y + (size_t)(N - 1) * MNV2_FEATURES;
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < MNV2_FEATURES; k++) {
            ab += (double)a[k] * b[k];
            aa += (double)a[k] * a[k];
            bb += (double)b[k] * b[k];
        }
        if (i != N - 1)
            cr_assert_lt(ab / sqrt(aa * bb), 0.99, "images %d and %d: cosine %.4f", i, N - 1,
                         ab / sqrt(aa * bb));
    }
    cr_log_info("cnn vs PyTorch over %d images: worst cosine %.7f", N, worst);
    printf("cnn: C forward pass vs PyTorch reference, %d images: worst cosine %.7f\n", N, worst);
    gen_rmtree(dir);
    cnn_work_free(w);
    cnn_free(m);
    free(x);
    free(y);
    free(r);
}
