/*
 * test_cnn.c - the C MobileNetV2 forward pass (engine/embed/cnn.c) against a
 * reference written with PyTorch operators (tests/ref_mobilenet.py, run with
 * Debian's python3-torch), on the same weight file and the same 30 inputs:
 * the 1280-d features must agree to cosine >= 0.99999 per image. Inputs: 20
 * generated pictures (patterns, gradients, noise, a flat image) at 224 x
 * 224, and the real photographs of Debian's lomiri-wallpapers-20.04 (which
 * scripts/setup.sh installs; 4 JPEGs, taken by the package's own file list,
 * never by listing the shared /usr/share/backgrounds), preprocessed as the
 * cnn embedder does (engine/embed/embed_cnn.c: img_decode to RGB no smaller
 * than 224 x 224, area resize to 224 x 224); all scaled to [0, 1] as nsfwjs
 * does. Batches of 7 (the last one shorter) go through one work buffer made
 * for 8, so batching, a partial batch and buffer reuse are covered too.
 * The same comparison then runs the other ways cnn_forward can split and
 * compute: 2 threads on batches of 7 (split by images) and of 1 (each
 * layer's rows split), and the AVX2 and portable kernels (vec_isa_force;
 * PIXVEC_MAX_ISA=scalar runs the whole test on the portable ones).
 *
 * Skipped, saying so, when the model is not installed (scripts/setup.sh
 * installs it) or when python3-torch cannot be imported. Missing
 * photographs are a failure, not a skip: setup.sh installs them.
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
#include "img.h"
#include "pixvec.h"
#include "pkgdata.h"
#include "vec.h"

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif

#define MODEL "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors"
#define PHOTO_PKG "lomiri-wallpapers-20.04"
#define NGEN 20     /* generated inputs; the last is the flat image */
#define NREAL_MIN 4 /* photographs: the package ships 4 */
#define NREAL_MAX 10
#define BATCH 7
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

static double cosine(const float *a, const float *b)
{
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < MNV2_FEATURES; k++) {
        ab += (double)a[k] * b[k];
        aa += (double)a[k] * a[k];
        bb += (double)b[k] * b[k];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Up to NREAL_MAX JPEGs of PHOTO_PKG (at least NREAL_MIN), decoded and
 * resized exactly as the cnn embedder does it (db_decode_file, then
 * embed_cnn.c), into network inputs at x; their names into names. Returns
 * how many. */
static size_t load_photos(float *x, char names[NREAL_MAX][256])
{
    static const char *const exts[] = {".jpg", ".jpeg", NULL};
    char **all = NULL;
    size_t n = pkg_files(PHOTO_PKG, exts, NREAL_MIN, &all);
    size_t use = n < NREAL_MAX ? n : NREAL_MAX;
    uint8_t *small = malloc(PIX);
    cr_assert_not_null(small);
    for (size_t i = 0; i < use; i++) {
        char err[256] = "";
        uint8_t *buf = NULL;
        size_t len = 0;
        img im;
        memset(&im, 0, sizeof im);
        const char *base = strrchr(all[i], '/');
        snprintf(names[i], 256, "%s", base ? base + 1 : all[i]);
        cr_assert_eq(img_read_file(all[i], &buf, &len, err, sizeof err), 0, "%s: %s", all[i], err);
        cr_assert_eq(img_decode(buf, len, 3, CNN_SIDE, CNN_SIDE, &im, err, sizeof err), 0,
                     "%s: %s", all[i], err);
        cr_assert_eq(im.channels, 3);
        cr_assert_eq(img_resize_area(im.px, im.w, im.h, 3, small, CNN_SIDE, CNN_SIDE), 0);
        for (size_t p = 0; p < PIX; p++)
            x[i * PIX + p] = small[p] * (1.0f / 255.0f);
        img_free(&im);
        free(buf);
    }
    pkg_files_free(all, n);
    free(small);
    return use;
}

#define MIN_COSINE 0.99999

/* The features of nin inputs x into y, batches of batch through w. */
static void forward_all(const cnn *m, cnn_work *w, const float *x, int nin, int batch, float *y)
{
    for (int b = 0; b < nin; b += batch) {
        int n = nin - b < batch ? nin - b : batch;
        cr_assert_eq(cnn_forward(m, w, x + (size_t)b * PIX, (size_t)n,
                                 y + (size_t)b * MNV2_FEATURES), 0);
    }
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
    const int nmax = NGEN + NREAL_MAX;
    float *x = malloc(nmax * PIX * sizeof(float)), *y = malloc(nmax * MNV2_FEATURES * sizeof(float));
    float *r = malloc(nmax * MNV2_FEATURES * sizeof(float));
    cr_assert(x && y && r);
    char photo[NREAL_MAX][256];
    for (int i = 0; i < NGEN; i++)
        make_input(i, x + (size_t)i * PIX);
    const int nin = NGEN + (int)load_photos(x + (size_t)NGEN * PIX, photo);
    cnn_work *w = cnn_work_new(BATCH + 1);
    cr_assert_not_null(w);
    forward_all(m, w, x, nin, BATCH, y);

    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(in, dir, "in.f32");
    gen_path(out, dir, "out.f32");
    cr_assert_eq(gen_write_bytes(in, x, nin * PIX * sizeof(float)), 0);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref_mobilenet.py %s %s %d %s",
             PIXVEC_SRC_DIR, MODEL, in, nin, out);
    cr_assert_eq(system(cmd), 0, "the reference failed: %s", cmd);
    uint8_t *rb;
    size_t rn;
    cr_assert_eq(gen_read_bytes(out, &rb, &rn), 0);
    cr_assert_eq(rn, nin * MNV2_FEATURES * sizeof(float));
    memcpy(r, rb, rn);
    free(rb);

    double worst = 1;
    for (int i = 0; i < nin; i++) {
        const float *a = y + (size_t)i * MNV2_FEATURES;
        for (int k = 0; k < MNV2_FEATURES; k++)
            cr_assert(isfinite(a[k]), "image %d feature %d is not finite", i, k);
        cr_assert_gt(cosine(a, a), 0.5, "image %d: all features zero", i);
        double cs = cosine(a, r + (size_t)i * MNV2_FEATURES);
        if (cs < worst)
            worst = cs;
        cr_assert_geq(cs, MIN_COSINE, "image %d%s%s: cosine %.7f to the PyTorch reference", i,
                      i >= NGEN ? ", " : "", i >= NGEN ? photo[i - NGEN] : "", cs);
    }
    /* The features tell images apart: a pattern, a gradient, noise, the
     * photographs and the flat image are not one vector, and no two
     * photographs are (a wiring slip that ignored the input would pass the
     * comparison above). */
    for (int i = 0; i < nin; i++) {
        const float *a = y + (size_t)i * MNV2_FEATURES;
        double cf = cosine(a, y + (size_t)(NGEN - 1) * MNV2_FEATURES);
        if (i != NGEN - 1 && (i % 5 == 0 || i >= NGEN))
            cr_assert_lt(cf, 0.99, "images %d and %d (flat): cosine %.4f", i, NGEN - 1, cf);
        for (int j = NGEN; j < i; j++) {
            double cp = cosine(a, y + (size_t)j * MNV2_FEATURES);
            cr_assert_lt(cp, 0.99, "%s and %s: cosine %.4f", photo[i - NGEN],
                         photo[j - NGEN], cp);
        }
    }
    /* The other splits and kernels, against the same reference. */
    static const struct {
        unsigned threads;
        int batch;
        vec_isa isa;
    } way[] = {{2, BATCH, VEC_AVX512}, {2, 1, VEC_AVX512}, {1, BATCH, VEC_AVX2},
               {1, BATCH, VEC_SCALAR}};
    const vec_isa best = vec_isa_active();
    float *z = malloc(nmax * MNV2_FEATURES * sizeof(float));
    cr_assert_not_null(z);
    for (size_t v = 0; v < sizeof way / sizeof way[0]; v++) {
        const vec_isa isa = way[v].isa < best ? way[v].isa : best;
        cr_assert_eq(vec_isa_force(isa), 0);
        cr_assert_eq(cnn_work_set_threads(w, way[v].threads), 0);
        memset(z, 0, nmax * MNV2_FEATURES * sizeof(float));
        forward_all(m, w, x, nin, way[v].batch, z);
        for (int i = 0; i < nin; i++) {
            double cs = cosine(z + (size_t)i * MNV2_FEATURES, r + (size_t)i * MNV2_FEATURES);
            cr_assert_geq(cs, MIN_COSINE, "%u threads, batch %d, %s: image %d: cosine %.7f",
                          way[v].threads, way[v].batch, vec_isa_name(isa), i, cs);
            if (cs < worst)
                worst = cs;
        }
    }
    cr_assert_eq(vec_isa_force(best), 0);
    free(z);
    cr_log_info("cnn vs PyTorch over %d images: worst cosine %.7f", nin, worst);
    printf("cnn: C forward pass vs PyTorch reference, %d images: worst cosine %.7f\n", nin, worst);
    gen_rmtree(dir);
    cnn_work_free(w);
    cnn_free(m);
    free(x);
    free(y);
    free(r);
}
