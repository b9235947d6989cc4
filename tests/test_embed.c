/*
 * test_embed.c - the `pixels` embedder: dimensions, unit length, centring
 * (a uniform brightness shift leaves the vector as it was), flat images as
 * the zero vector, RGB layout, and the registry's errors. Then ingest's
 * batching (engine/ingest.c, db.c): a worker's grab is embedded in one
 * call, and a file that fails to decode or to embed costs only itself.
 * Last, a copy of the cnn's model changed (tests/modelpatch.h) so that a
 * black image, and only a black one, comes out of the network as NaN: the
 * embedder fails that image alone, and pv_add names it and stores the rest
 * of its batch, and later runs go on.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_int.h"
#include "embed.h"
#include "gen.h"
#include "modelpatch.h"
#include "pixvec.h"
#include "vec.h"

static img make_img(uint32_t w, uint32_t h, uint32_t ch, uint32_t seed)
{
    img im;
    memset(&im, 0, sizeof im);
    im.w = im.orig_w = w;
    im.h = im.orig_h = h;
    im.channels = ch;
    im.px = malloc((size_t)w * h * ch);
    gen_pattern(w, h, ch, seed, im.px);
    return im;
}

static double norm(const float *v, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

Test(embed, pixels_grey_unit_length)
{
    embedder *e = NULL;
    char err[128];
    img im = make_img(100, 80, 1, 5);
    float v[784];
    int rc = -1;
    cr_assert_eq(embed_create("pixels", 0, 0, NULL, 0, &e, err, sizeof err), 0, "%s", err);
    cr_assert_eq(e->dim, 784);
    cr_assert_eq(e->channels, 1);
    cr_assert_str_eq(e->desc, "pixels 28x28 grey");
    cr_assert_eq(e->ops->embed(e, &im, 1, v, &rc), 0);
    cr_assert_eq(rc, 0);
    cr_assert_float_eq(norm(v, 784), 1.0, 1e-5);
    {
        double mean = 0;
        for (int i = 0; i < 784; i++)
            mean += v[i];
        cr_assert_float_eq(mean / 784, 0.0, 1e-6, "centred");
    }
    img_free(&im);
    embed_destroy(e);
}

Test(embed, brightness_shift_does_not_move_the_vector)
{
    embedder *e = NULL;
    char err[128];
    img a = make_img(56, 56, 1, 9), b = make_img(56, 56, 1, 9);
    float va[784], vb[784];
    int rc = -1;
    for (size_t i = 0; i < 56 * 56; i++) {
        a.px[i] = (uint8_t)(a.px[i] / 2);      /* keep room for the shift */
        b.px[i] = (uint8_t)(a.px[i] + 40);
    }
    cr_assert_eq(embed_create("pixels", 28, 0, NULL, 0, &e, err, sizeof err), 0);
    cr_assert_eq(e->ops->embed(e, &a, 1, va, &rc), 0);
    cr_assert_eq(rc, 0);
    cr_assert_eq(e->ops->embed(e, &b, 1, vb, &rc), 0);
    cr_assert_eq(rc, 0);
    cr_assert_geq(vec_dot(va, vb, 784), 0.9999f);
    img_free(&a);
    img_free(&b);
    embed_destroy(e);
}

/* A uniform image is a unit vector that depends on its shade only: the
 * same shade scores 1, black against white 0, and a picture about 0. */
Test(embed, flat_image_is_a_shade_vector)
{
    embedder *e = NULL;
    char err[128];
    img ims[4] = {make_img(30, 30, 3, 1), make_img(40, 20, 3, 1), make_img(30, 30, 3, 1),
                  make_img(30, 30, 3, 1)};
    static const uint8_t shade[3] = {77, 0, 255};
    float v[4][16 * 16 * 3];
    int rc[4] = {-1, -1, -1, -1};
    memset(ims[0].px, 77, 30 * 30 * 3);
    memset(ims[1].px, 77, 40 * 20 * 3);
    memset(ims[2].px, shade[1], 30 * 30 * 3);
    memset(ims[3].px, shade[2], 30 * 30 * 3);
    cr_assert_eq(embed_create("pixels", 16, 1, NULL, 0, &e, err, sizeof err), 0);
    cr_assert_eq(e->dim, 768);
    cr_assert_eq(e->ops->embed(e, ims, 4, v[0], rc), 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(rc[i], 0);
        cr_assert_float_eq(vec_dot(v[i], v[i], 768), 1.0f, 1e-4);
    }
    cr_assert_float_eq(vec_dot(v[0], v[1], 768), 1.0f, 1e-4, "same shade, other size");
    cr_assert_float_eq(vec_dot(v[2], v[3], 768), 0.0f, 1e-3, "black against white");
    cr_assert_lt(vec_dot(v[0], v[2], 768), 0.9f, "grey 77 against black");
    for (int i = 0; i < 4; i++)
        img_free(&ims[i]);
    embed_destroy(e);
}

Test(embed, batch_equals_singles)
{
    embedder *e = NULL;
    char err[128];
    img ims[3] = {make_img(40, 30, 3, 1), make_img(28, 28, 3, 2), make_img(300, 7, 3, 3)};
    float batch[3 * 192], one[192];
    int rcs[3] = {-1, -1, -1}, rc = -1;
    cr_assert_eq(embed_create("pixels", 8, 1, NULL, 0, &e, err, sizeof err), 0);
    cr_assert_eq(e->ops->embed(e, ims, 3, batch, rcs), 0);
    cr_assert(rcs[0] == 0 && rcs[1] == 0 && rcs[2] == 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(e->ops->embed(e, &ims[i], 1, one, &rc), 0);
        cr_assert_eq(rc, 0);
        cr_assert_eq(memcmp(one, batch + i * 192, sizeof one), 0, "image %d", i);
        img_free(&ims[i]);
    }
    embed_destroy(e);
}

Test(embed, wrong_channels_and_bad_params_refused)
{
    embedder *e = NULL;
    char err[128];
    img im = make_img(10, 10, 3, 1);
    float v[784];
    int rc = -1;
    cr_assert_eq(embed_create("pixels", 28, 0, NULL, 0, &e, err, sizeof err), 0);
    cr_assert_eq(e->ops->embed(e, &im, 1, v, &rc), 0);
    cr_assert_eq(rc, PV_EINVAL, "RGB image to a grey embedder");
    embed_destroy(e);
    e = NULL;
    cr_assert_eq(embed_create("pixels", 1, 0, NULL, 0, &e, err, sizeof err), PV_EINVAL);
    cr_assert_eq(embed_create("pixels", 4096, 0, NULL, 0, &e, err, sizeof err), PV_EINVAL);
    cr_assert_eq(embed_create("clip", 0, 0, NULL, 0, &e, err, sizeof err), PV_EINVAL);
    cr_assert(strstr(err, "clip") != NULL, "%s", err);
    img_free(&im);
}

Test(embed, bad_image_fails_alone_in_its_batch)
{
    embedder *e = NULL;
    char err[128];
    img ims[3] = {make_img(40, 30, 1, 1), make_img(28, 28, 3, 2), make_img(30, 7, 1, 3)};
    float batch[3 * 64], one[64];
    int rcs[3] = {-1, -1, -1}, rc = -1;
    cr_assert_eq(embed_create("pixels", 8, 0, NULL, 0, &e, err, sizeof err), 0);
    cr_assert_eq(e->ops->embed(e, ims, 3, batch, rcs), 0, "the call ran");
    cr_assert_eq(rcs[0], 0);
    cr_assert_eq(rcs[1], PV_EINVAL, "an RGB image to a grey embedder");
    cr_assert_eq(rcs[2], 0, "the image after the bad one");
    for (int k = 0; k < 64; k++)
        cr_assert_eq(batch[64 + k], 0.0f, "the failed image's place is zeros");
    for (int i = 0; i < 3; i += 2) {
        cr_assert_eq(e->ops->embed(e, &ims[i], 1, one, &rc), 0);
        cr_assert_eq(rc, 0);
        cr_assert_eq(memcmp(one, batch + i * 64, sizeof one), 0, "image %d", i);
    }
    for (int i = 0; i < 3; i++)
        img_free(&ims[i]);
    embed_destroy(e);
}

/* ---- ingest: batches with bad files in them ------------------------------ */

#define CNN_MODEL "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors"
#define POISON_W 77 /* a good image the failing embedder below refuses */

typedef struct badlog {
    int n;
    char paths[16][GEN_PATH_MAX];
    char reasons[16][256];
} badlog;

static void log_bad(void *ctx, const char *path, int err, const char *reason)
{
    badlog *l = ctx;
    (void)err;
    if (l->n < 16) {
        snprintf(l->paths[l->n], GEN_PATH_MAX, "%s", path);
        snprintf(l->reasons[l->n], 256, "%s", reason);
    }
    l->n++;
}

static const char *bad_reason(const badlog *l, const char *name)
{
    for (int i = 0; i < l->n && i < 16; i++) {
        const char *slash = strrchr(l->paths[i], '/');
        if (slash && strcmp(slash + 1, name) == 0)
            return l->reasons[i];
    }
    return NULL;
}

/* The embedder under test, wrapped: counts the calls that carry more than
 * one image, and fails any image POISON_W wide with PV_ENUMERIC, zeros in
 * its place, as an embedder does whose model gives NaN for that image. */
static const embedder_ops *real_ops;
static int multi_calls;

static int failing_embed(const embedder *e, const img *imgs, size_t n, float *out, int *rcs)
{
    int rc;
    if (n > 1)
        __atomic_fetch_add(&multi_calls, 1, __ATOMIC_SEQ_CST);
    if ((rc = real_ops->embed(e, imgs, n, out, rcs)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (imgs[i].orig_w == POISON_W) {
            rcs[i] = PV_ENUMERIC;
            memset(out + i * e->dim, 0, e->dim * sizeof(float));
        }
    return PV_OK;
}

/* 13 good pictures (PNG and JPEG, all sizes different) with 3 broken files
 * named among them, so that every grab of 8 holds both; with poison, one
 * more good PNG the wrapped embedder refuses. Adds the folder to a new
 * database of the named embedder on 2 workers, then checks: every good
 * file stored, with the vector pv_embed_file gives it alone (a batch
 * that put a vector on the wrong item fails here); every bad one named. */
static void batch_with_bad_files(const char *embedder_name, int poison)
{
    static const char *const broken[] = {"03-trunc.jpg", "06-text.png", "11-corrupt.png"};
    char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], dbp[GEN_PATH_MAX], p[GEN_PATH_MAX], err[512];
    pv_embedder_opts eo = {.name = embedder_name};
    pv_add_opts ao = {.threads = 2};
    pv_add_stats st;
    badlog log = {0};
    pv_db *db = NULL;
    const char *paths[1];
    const int ngood = 13;
    int i;

    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(imgs, dir, "imgs");
    gen_path(dbp, dir, "t.pvdb");
    cr_assert_eq(mkdir(imgs, 0755), 0);
    for (i = 0; i < ngood; i++) {
        uint32_t w = 60 + 9 * (uint32_t)i, h = 50 + 5 * (uint32_t)i;
        uint8_t *px = malloc((size_t)w * h * 3);
        char name[32];
        cr_assert_not_null(px);
        gen_pattern(w, h, 3, (uint32_t)(40 + i), px);
        snprintf(name, sizeof name, "%02d-good.%s", i, i % 3 ? "png" : "jpg");
        gen_path(p, imgs, name);
        if (i % 3)
            cr_assert_eq(gen_write_png(p, w, h, GEN_PNG_RGB, 8, px, NULL), 0);
        else
            cr_assert_eq(gen_write_jpeg(p, w, h, 3, px, 90, 0), 0);
        if (strcmp(name, "03-good.jpg") == 0) { /* 03-trunc.jpg: its first 600 bytes */
            char q[GEN_PATH_MAX];
            gen_path(q, imgs, broken[0]);
            cr_assert_eq(gen_write_jpeg(q, w, h, 3, px, 90, 0), 0);
            cr_assert_eq(gen_truncate(q, 600), 0);
        }
        if (strcmp(name, "11-good.png") == 0) {
            char q[GEN_PATH_MAX];
            gen_path(q, imgs, broken[2]);
            cr_assert_eq(gen_write_png(q, w, h, GEN_PNG_RGB, 8, px, NULL), 0);
            cr_assert_eq(gen_png_corrupt_idat(q, 0), 0);
        }
        free(px);
    }
    gen_path(p, imgs, broken[1]);
    cr_assert_eq(gen_write_bytes(p, "not a picture\n", 14), 0);
    if (poison) {
        uint8_t *px = malloc((size_t)POISON_W * 40 * 3);
        cr_assert_not_null(px);
        gen_pattern(POISON_W, 40, 3, 7, px);
        gen_path(p, imgs, "05-poison.png");
        cr_assert_eq(gen_write_png(p, POISON_W, 40, GEN_PNG_RGB, 8, px, NULL), 0);
        free(px);
    }

    cr_assert_eq(pv_db_create(dbp, &eo, NULL, &db, err, sizeof err), 0, "%s", err);
    if (poison) {
        static embedder_ops wrapped;
        real_ops = db->emb->ops;
        wrapped = *real_ops;
        wrapped.embed = failing_embed;
        db->emb->ops = &wrapped;
        multi_calls = 0;
    }
    paths[0] = imgs;
    ao.on_error = log_bad;
    ao.ctx = &log;
    cr_assert_eq(pv_add(db, paths, 1, &ao, &st), 0, "%s", pv_db_errmsg(db));
    if (poison) {
        db->emb->ops = real_ops; /* its destroy, and pv_embed_file below */
        cr_assert_gt(multi_calls, 0, "no embedder call held more than one image");
    }

    cr_assert_eq(st.added, (uint64_t)ngood, "added %llu", (unsigned long long)st.added);
    cr_assert_eq(st.failed, 3u + (poison ? 1u : 0u));
    cr_assert_eq(log.n, 3 + (poison ? 1 : 0));
    for (i = 0; i < 3; i++) {
        const char *r = bad_reason(&log, broken[i]);
        cr_assert_not_null(r, "%s was not named", broken[i]);
        cr_assert(r[0], "no reason for %s", broken[i]);
    }
    if (poison) {
        const char *r = bad_reason(&log, "05-poison.png");
        cr_assert_not_null(r, "05-poison.png was not named");
        cr_assert(strstr(r, "embedding failed"), "05-poison.png: %s", r);
    }
    for (i = 0; i < ngood; i++) {
        char name[32];
        float *v = malloc(db->emb->dim * sizeof(float));
        pv_query_opts qo = {.k = 1, .exact = 1};
        pv_hit *hits = NULL;
        size_t nh = 0;
        cr_assert_not_null(v);
        snprintf(name, sizeof name, "%02d-good.%s", i, i % 3 ? "png" : "jpg");
        gen_path(p, imgs, name);
        cr_assert_eq(pv_embed_file(db, p, v, db->emb->dim), 0, "%s", pv_db_errmsg(db));
        cr_assert_eq(pv_query_vector(db, v, db->emb->dim, &qo, &hits, &nh), 0);
        cr_assert_eq(nh, 1);
        cr_assert_str_eq(hits[0].path, p, "%s's vector is nearest %s", name, hits[0].path);
        /* the cnn's batch-of-8 forward pass sums in another order than
         * batch 1; pixels is the same arithmetic either way */
        cr_assert_geq(hits[0].score, 0.9999f, "%s: cosine %.6f to itself alone", name,
                      hits[0].score);
        pv_hits_free(hits, nh);
        free(v);
    }
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);
    gen_rmtree(dir);
}

Test(embed, ingest_batch_failure_costs_only_the_failing_image)
{
    batch_with_bad_files("pixels", 1);
}

Test(embed, ingest_cnn_batch_with_bad_files_keeps_the_good, .timeout = 300)
{
    if (access(CNN_MODEL, R_OK) != 0)
        cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)",
                     CNN_MODEL);
    batch_with_bad_files("cnn", 0);
}

/* ---- a model that gives one image a NaN vector ------------------------------ */

/* Change a copy of the installed MobileNetV2 so that an image with a pure
 * black pixel embeds as NaN and every other image as a finite vector, with
 * finite weights only (the loader refuses NaN and Inf):
 *  - stem channel 0 looks at the first pixel of each 3 x 3 window only,
 *    weight -1e6 per colour and bias 100: ReLU6 gives 6 on a black pixel,
 *    0 on any other (one level of 255 is -3,821 before the clamp);
 *  - block 0's depthwise channel 0 passes it through (centre weight 1);
 *  - block 0's projection (linear, no ReLU6) weighs it +2e38 into output 0
 *    and -2e38 into output 1: 6 x 2e38 overflows to +Inf and -Inf, where
 *    0 x 2e38 stays 0;
 *  - block 1's expansion adds outputs 0 and 1 (weight 1 each): Inf - Inf
 *    is NaN, and NaN goes through every later layer.
 * Batch norms of the changed channels fold to scale 1 (gamma =
 * sqrt(1 + eps), variance 1). */
static void write_black_nan_model(const char *path)
{
    const float one = sqrtf(1.0f + 1e-3f);
    static const char *const bns[] = {"bn_Conv1", "expanded_conv_depthwise_BN"};
    mp_model m;
    char t[96];
    cr_assert_eq(mp_open(&m, CNN_MODEL), 0, "cannot read %s", CNN_MODEL);
    for (int k = 0; k < 27; k++) /* HWIO [3,3,3,32]: (ky, kx, c) = k, output 0 */
        cr_assert_eq(mp_set(&m, "Conv1/kernel", (size_t)k * 32, k < 3 ? -1e6f : 0.0f), 0);
    for (int k = 0; k < 9; k++) /* [3,3,32,1]: (ky, kx) = k, channel 0 */
        cr_assert_eq(mp_set(&m, "expanded_conv_depthwise/depthwise_kernel", (size_t)k * 32,
                            k == 4 ? 1.0f : 0.0f), 0);
    for (int b = 0; b < 2; b++) {
        snprintf(t, sizeof t, "%s/gamma", bns[b]);
        cr_assert_eq(mp_set(&m, t, 0, one), 0);
        snprintf(t, sizeof t, "%s/beta", bns[b]);
        cr_assert_eq(mp_set(&m, t, 0, b == 0 ? 100.0f : 0.0f), 0);
        snprintf(t, sizeof t, "%s/moving_mean", bns[b]);
        cr_assert_eq(mp_set(&m, t, 0, 0.0f), 0);
        snprintf(t, sizeof t, "%s/moving_variance", bns[b]);
        cr_assert_eq(mp_set(&m, t, 0, 1.0f), 0);
    }
    /* [1,1,32,16]: input 0 to outputs 0 and 1 */
    cr_assert_eq(mp_set(&m, "expanded_conv_project/kernel", 0, 2e38f), 0);
    cr_assert_eq(mp_set(&m, "expanded_conv_project/kernel", 1, -2e38f), 0);
    for (int o = 0; o < 2; o++) {
        cr_assert_eq(mp_set(&m, "expanded_conv_project_BN/gamma", (size_t)o, one), 0);
        cr_assert_eq(mp_set(&m, "expanded_conv_project_BN/moving_variance", (size_t)o, 1.0f), 0);
    }
    /* [1,1,16,96]: inputs 0 and 1 to output 0 */
    cr_assert_eq(mp_set(&m, "block_1_expand/kernel", 0, 1.0f), 0);
    cr_assert_eq(mp_set(&m, "block_1_expand/kernel", 96, 1.0f), 0);
    cr_assert_eq(mp_write(&m, path), 0);
    mp_close(&m);
}

typedef struct errlog {
    int n;
    char paths[8][GEN_PATH_MAX];
    int errs[8];
    char reasons[8][256];
} errlog;

static void log_err(void *ctx, const char *path, int err, const char *reason)
{
    errlog *l = ctx;
    if (l->n < 8) {
        snprintf(l->paths[l->n], GEN_PATH_MAX, "%s", path);
        l->errs[l->n] = err;
        snprintf(l->reasons[l->n], 256, "%s", reason);
    }
    l->n++;
}

/* Six pictures with no black pixel (every value 40..215) and one black
 * one, named so that it sits in the middle of a worker's grab of 8. */
static void write_pictures(const char *imgs, int black_at)
{
    char p[GEN_PATH_MAX], name[32];
    for (int i = 0; i < 7; i++) {
        uint32_t w = 70 + 11 * (uint32_t)i, h = 60 + 7 * (uint32_t)i;
        uint8_t *px = malloc((size_t)w * h * 3);
        cr_assert_not_null(px);
        gen_pattern(w, h, 3, (uint32_t)(90 + i), px);
        if (i == black_at)
            memset(px, 0, (size_t)w * h * 3);
        else
            for (size_t k = 0; k < (size_t)w * h * 3; k++)
                px[k] = (uint8_t)(40 + px[k] * 175 / 255);
        snprintf(name, sizeof name, "%02d-%s.%s", i, i == black_at ? "black" : "good",
                 i % 2 ? "png" : "jpg");
        gen_path(p, imgs, name);
        if (i % 2)
            cr_assert_eq(gen_write_png(p, w, h, GEN_PNG_RGB, 8, px, NULL), 0);
        else
            cr_assert_eq(gen_write_jpeg(p, w, h, 3, px, 95, 0), 0);
        free(px);
    }
}

Test(embed, cnn_nan_vector_fails_only_its_image, .timeout = 300)
{
    char dir[GEN_PATH_MAX], model[GEN_PATH_MAX], imgs[GEN_PATH_MAX], more[GEN_PATH_MAX],
        dbp[GEN_PATH_MAX], p[GEN_PATH_MAX], err[512];
    pv_embedder_opts eo = {.name = "cnn", .model = model};
    pv_add_opts ao = {.threads = 2, .on_error = log_err};
    pv_add_stats st;
    errlog log = {0};
    pv_db *db = NULL;
    const char *paths[1];
    float *v = NULL;

    if (access(CNN_MODEL, R_OK) != 0)
        cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)",
                     CNN_MODEL);
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(model, dir, "black_nan.safetensors");
    gen_path(imgs, dir, "imgs");
    gen_path(more, dir, "more");
    gen_path(dbp, dir, "t.pvdb");
    cr_assert_eq(mkdir(imgs, 0755), 0);
    cr_assert_eq(mkdir(more, 0755), 0);
    write_black_nan_model(model);
    write_pictures(imgs, 3);
    write_pictures(more, 4);
    ao.ctx = &log;

    cr_assert_eq(pv_db_create(dbp, &eo, NULL, &db, err, sizeof err), 0, "%s", err);
    paths[0] = imgs;
    cr_assert_eq(pv_add(db, paths, 1, &ao, &st), 0, "the run stopped: %s", pv_db_errmsg(db));
    cr_assert_eq(st.added, 6u, "added %llu", (unsigned long long)st.added);
    cr_assert_eq(st.failed, 1u);
    cr_assert_eq(log.n, 1);
    cr_assert(strstr(log.paths[0], "/03-black.png"), "named %s", log.paths[0]);
    cr_assert_eq(log.errs[0], PV_ENUMERIC, "%s", log.reasons[0]);
    cr_assert(strstr(log.reasons[0], "NaN"), "%s", log.reasons[0]);

    /* Each good image is stored under its own vector, a finite one. */
    v = malloc(db->emb->dim * sizeof(float));
    cr_assert_not_null(v);
    for (int i = 0; i < 7; i++) {
        char name[32];
        pv_query_opts qo = {.k = 1, .exact = 1};
        pv_hit *hits = NULL;
        size_t nh = 0;
        if (i == 3)
            continue;
        snprintf(name, sizeof name, "%02d-good.%s", i, i % 2 ? "png" : "jpg");
        gen_path(p, imgs, name);
        cr_assert_eq(pv_embed_file(db, p, v, db->emb->dim), 0, "%s", pv_db_errmsg(db));
        for (uint32_t k = 0; k < db->emb->dim; k++)
            cr_assert(isfinite(v[k]), "%s: element %u is %g", name, k, v[k]);
        cr_assert_eq(pv_query_vector(db, v, db->emb->dim, &qo, &hits, &nh), 0);
        cr_assert_eq(nh, 1);
        cr_assert_str_eq(hits[0].path, p);
        cr_assert_geq(hits[0].score, 0.9999f, "%s: cosine %.6f", name, hits[0].score);
        pv_hits_free(hits, nh);
    }
    gen_path(p, imgs, "03-black.png");
    cr_assert_eq(pv_embed_file(db, p, v, db->emb->dim), PV_ENUMERIC, "black embedded");
    cr_assert(strstr(pv_db_errmsg(db), "03-black.png"), "%s", pv_db_errmsg(db));

    /* A later run goes on as well: its black JPEG fails, its others land. */
    log.n = 0;
    paths[0] = more;
    cr_assert_eq(pv_add(db, paths, 1, &ao, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, 6u);
    cr_assert_eq(st.failed, 1u);
    cr_assert(log.n == 1 && strstr(log.paths[0], "/04-black.jpg"), "named %s", log.paths[0]);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    free(v);
    pv_db_close(db);
    gen_rmtree(dir);
}

/* The cnn embedder itself, through its vtable, on the model above: ten
 * images in one call (two forward passes, 8 and 2), black ones at 2 and 9.
 * Each black image fails alone with PV_ENUMERIC and zeros; every other
 * image gets a finite unit vector, the one it gets alone. */
Test(embed, cnn_nan_image_fails_alone_in_its_batch, .timeout = 300)
{
    char dir[GEN_PATH_MAX], model[GEN_PATH_MAX], err[512];
    embedder *e = NULL;
    img ims[10];
    float *out, one[1280];
    int rcs[10], rc = -1;

    if (access(CNN_MODEL, R_OK) != 0)
        cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)",
                     CNN_MODEL);
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(model, dir, "black_nan.safetensors");
    write_black_nan_model(model);
    cr_assert_eq(embed_create("cnn", 0, 0, model, 0, &e, err, sizeof err), 0, "%s", err);
    cr_assert_eq(e->dim, 1280);
    for (int i = 0; i < 10; i++) {
        ims[i] = make_img(230 + 3 * (uint32_t)i, 224 + 5 * (uint32_t)i, 3, (uint32_t)(300 + i));
        for (size_t k = 0; k < (size_t)ims[i].w * ims[i].h * 3; k++)
            ims[i].px[k] = i == 2 || i == 9 ? 0 : (uint8_t)(40 + ims[i].px[k] * 175 / 255);
        rcs[i] = -1;
    }
    out = malloc(10 * 1280 * sizeof(float));
    cr_assert_not_null(out);
    cr_assert_eq(e->ops->embed(e, ims, 10, out, rcs), 0, "the call ran");
    for (int i = 0; i < 10; i++) {
        const float *v = out + (size_t)i * 1280;
        if (i == 2 || i == 9) {
            cr_assert_eq(rcs[i], PV_ENUMERIC, "black image %d: rc %d", i, rcs[i]);
            for (int k = 0; k < 1280; k++)
                cr_assert_eq(v[k], 0.0f, "black image %d: element %d is %g", i, k, v[k]);
            cr_assert_eq(e->ops->embed(e, &ims[i], 1, one, &rc), 0);
            cr_assert_eq(rc, PV_ENUMERIC, "alone, too");
            continue;
        }
        cr_assert_eq(rcs[i], 0, "image %d: rc %d", i, rcs[i]);
        for (int k = 0; k < 1280; k++)
            cr_assert(isfinite(v[k]), "image %d: element %d is %g", i, k, v[k]);
        cr_assert_float_eq(norm(v, 1280), 1.0, 1e-4, "image %d", i);
        cr_assert_eq(e->ops->embed(e, &ims[i], 1, one, &rc), 0);
        cr_assert_eq(rc, 0);
        cr_assert_geq(vec_dot(v, one, 1280), 0.9999f, "image %d: batch vs alone", i);
    }
    for (int i = 0; i < 10; i++)
        img_free(&ims[i]);
    free(out);
    embed_destroy(e);
    gen_rmtree(dir);
}
