/*
 * test_vit.c - the transformer embedders (clip, dinov2, vitmae; issue 14)
 * against a reference written with PyTorch operators (tests/ref_vit.py,
 * run with Debian's python3-torch).
 *
 * No registry ships the real weights, so every test makes a tiny random
 * checkpoint in the Hugging Face layout (config.json, model.safetensors,
 * and for clip vocab.json + merges.txt) with `ref_vit.py gen`, and the
 * reference computes its vectors from the same files in float64, from
 * nothing but torch operators and PIL's resampling. The weights are scaled
 * so that the likely porting mistakes (a wrong normalisation, bilinear for
 * bicubic, torchvision's centre-crop rounding, the older DINOv2 position
 * interpolation) fall below the 0.9999 bar (`ref_vit.py selftest`
 * measures this). The pictures are smooth random content (sums of a few
 * sinusoids, so that resampling is well conditioned) at square and
 * non-square sizes, 70 x 33 being one where HF's centre crop and
 * torchvision's start a pixel apart; they are decoded at full size, so
 * the C code and PIL start from the same pixels.
 *
 * Asserted: every vector within cosine 0.9999 of the reference's, a batch
 * of 4 equal to the images embedded one at a time (1e-5), different images
 * far apart (< 0.99) in both; CLIP texts (empty, long past 77 tokens,
 * punctuation, accents, CJK, emoji) within 0.9999; the public API's
 * pv_query_text on a clip database, and its refusal on a dinov2 one; and
 * damaged checkpoints refused with the file's name (and the tensor's) in
 * the message.
 *
 * Skipped, saying so, when python3-torch cannot be imported.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "embed.h"
#include "gen.h"
#include "img.h"
#include "modelpatch.h"
#include "pixvec.h"
#include "vec.h"
#include "vit.h"

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif

#define PY "/usr/bin/python3"
#define REF PIXVEC_SRC_DIR "/tests/ref_vit.py"
#define NIMG 4
#define COS_MIN 0.9999
#define BATCH_TOL 1e-5f
#define CMD_MAX (8 * GEN_PATH_MAX)

/* Square and not, smaller and larger than every family's input. */
static const uint32_t sizes[NIMG][2] = {{40, 40}, {70, 33}, {300, 500}, {257, 256}};

static void need_torch(void)
{
    if (system(PY " -c 'import torch, PIL, numpy' 2>/dev/null") != 0)
        cr_skip_test("python3-torch (or PIL, numpy) cannot be imported by " PY
                     " (scripts/setup.sh installs them): the PyTorch comparison did not run");
}

static void run(const char *fmt, ...)
{
    char cmd[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof cmd, "command too long");
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* A tiny checkpoint of family in dir/name (extra: more `gen` options);
 * the directory's path into out. */
static void make_model(const char *dir, const char *name, const char *family,
                       const char *extra, char *out)
{
    cr_assert_not_null(gen_path(out, dir, name));
    run(PY " " REF " gen %s %s --seed 11 %s", family, out, extra ? extra : "");
}

/* Smooth random RGB content: per channel, four seeded sinusoids. */
static void smooth_png(const char *path, uint32_t w, uint32_t h, uint32_t seed)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    double f[3][4][3];
    uint32_t s = seed * 2654435761u + 12345u;
    cr_assert_not_null(px);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 3; j++) {
                s = s * 1664525u + 1013904223u;
                double u = (s >> 8) / 16777216.0;
                f[c][k][j] = j < 2 ? 0.5 + 3.5 * u : 6.2832 * u;
            }
    double side = w > h ? w : h;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 0;
                for (int k = 0; k < 4; k++)
                    v += sin(6.2832 * (f[c][k][0] * x + f[c][k][1] * y) / side + f[c][k][2]);
                v = 127.5 + 31.5 * v;
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
            }
    cr_assert_eq(gen_write_png(path, w, h, GEN_PNG_RGB, 8, px, NULL), 0, "%s", path);
    free(px);
}

typedef struct pics {
    char path[NIMG][GEN_PATH_MAX];
    char list[NIMG * (GEN_PATH_MAX + 1)]; /* space-separated, for a command */
    img im[NIMG];                         /* decoded at full size */
} pics;

static void make_pics(const char *dir, pics *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < NIMG; i++) {
        char name[32], err[256] = "";
        uint8_t *buf = NULL;
        size_t len = 0;
        snprintf(name, sizeof name, "pic%d.png", i);
        gen_path(p->path[i], dir, name);
        smooth_png(p->path[i], sizes[i][0], sizes[i][1], (uint32_t)(21 + i));
        strcat(p->list, " ");
        strcat(p->list, p->path[i]);
        cr_assert_eq(img_read_file(p->path[i], &buf, &len, err, sizeof err), 0, "%s", err);
        cr_assert_eq(img_decode(buf, len, 3, 0, 0, &p->im[i], err, sizeof err), 0, "%s", err);
        cr_assert(p->im[i].w == sizes[i][0] && p->im[i].h == sizes[i][1] &&
                  p->im[i].channels == 3, "%s decoded at %ux%u", name, p->im[i].w, p->im[i].h);
        free(buf);
    }
}

static void free_pics(pics *p)
{
    for (int i = 0; i < NIMG; i++)
        img_free(&p->im[i]);
}

/* n rows of dim floats from a reference output file. */
static float *read_rows(const char *path, size_t n, size_t dim)
{
    uint8_t *b = NULL;
    size_t len = 0;
    cr_assert_eq(gen_read_bytes(path, &b, &len), 0, "cannot read %s", path);
    cr_assert_eq(len, n * dim * sizeof(float), "%s: %zu bytes, expected %zu x %zu floats", path,
                 len, n, dim);
    return (float *)b;
}

static double cosine(const float *a, const float *b, size_t dim)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < dim; k++) {
        ab += (double)a[k] * b[k];
        aa += (double)a[k] * a[k];
        bb += (double)b[k] * b[k];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

static embedder *make_embedder(const char *family, const char *model, uint32_t flags)
{
    embedder *e = NULL;
    char err[1024] = "";
    cr_assert_eq(embed_create(family, 0, 0, model, flags, &e, err, sizeof err), 0,
                 "%s %s: %s", family, model, err);
    cr_assert(e && e->dim > 0 && e->ops && e->ops->embed);
    return e;
}

/* The four pictures through family's embedder, as a batch and one at a
 * time, against the reference (pool: "cls" or "sum"). */
static void check_images(const char *family, const char *gen_extra, uint32_t flags,
                         const char *pool)
{
    char dir[GEN_PATH_MAX], model[GEN_PATH_MAX], out[GEN_PATH_MAX];
    pics p;
    need_torch();
    cr_assert_eq(gen_tmpdir(dir), 0);
    make_model(dir, "model", family, gen_extra, model);
    make_pics(dir, &p);
    embedder *e = make_embedder(family, model, flags);
    const size_t dim = e->dim;
    float *batch = calloc(NIMG * dim, sizeof(float)), *one = calloc(NIMG * dim, sizeof(float));
    int rcs[NIMG];
    cr_assert(batch && one);

    cr_assert_eq(e->ops->embed(e, p.im, NIMG, batch, rcs), 0);
    for (int i = 0; i < NIMG; i++)
        cr_assert_eq(rcs[i], 0, "%s: image %d (%ux%u): status %d", family, i, sizes[i][0],
                     sizes[i][1], rcs[i]);
    for (int i = 0; i < NIMG; i++) {
        cr_assert_eq(e->ops->embed(e, &p.im[i], 1, one + i * dim, rcs), 0);
        cr_assert_eq(rcs[0], 0);
    }

    gen_path(out, dir, "ref.f32");
    run(PY " " REF " image %s %s --pool %s%s", model, out, pool, p.list);
    float *ref = read_rows(out, NIMG, dim);
    double worst = 1;
    for (int i = 0; i < NIMG; i++) {
        const float *a = batch + i * dim, *s = one + i * dim;
        double nn = 0;
        for (size_t k = 0; k < dim; k++) {
            cr_assert(isfinite(a[k]), "%s image %d: component %zu not finite", family, i, k);
            cr_assert(fabsf(a[k] - s[k]) <= BATCH_TOL,
                      "%s image %d component %zu: %.7f in a batch of %d, %.7f alone", family, i,
                      k, a[k], NIMG, s[k]);
            nn += (double)a[k] * a[k];
        }
        cr_assert(fabs(nn - 1) < 1e-4, "%s image %d: norm^2 %.6f, not unit length", family, i, nn);
        double c = cosine(a, ref + i * dim, dim);
        worst = c < worst ? c : worst;
        cr_assert_geq(c, COS_MIN, "%s (%s) image %d (%ux%u): cosine %.6f to the reference",
                      family, pool, i, sizes[i][0], sizes[i][1], c);
    }
    /* a vector that ignored its input would pass the comparison above only
     * if the reference's did too: the pictures must stay apart in both */
    for (int i = 0; i < NIMG; i++)
        for (int j = 0; j < i; j++) {
            double cr = cosine(ref + i * dim, ref + j * dim, dim),
                   cc = cosine(batch + i * dim, batch + j * dim, dim);
            cr_assert_lt(cr, 0.99, "%s reference: images %d and %d at cosine %.4f", family, i, j,
                         cr);
            cr_assert_lt(cc, 0.99, "%s: images %d and %d at cosine %.4f", family, i, j, cc);
        }
    cr_log_info("%s (%s%s): worst cosine to the reference %.7f", family, pool,
                gen_extra ? gen_extra : "", worst);
    embed_destroy(e);
    free(ref);
    free(batch);
    free(one);
    free_pics(&p);
    gen_rmtree(dir);
}

Test(vit, clip_f32_images, .timeout = 300)
{
    check_images("clip", NULL, 0, "cls");
}

Test(vit, clip_f16_images, .timeout = 300)
{
    check_images("clip", "--f16", 0, "cls");
}

Test(vit, dinov2_images, .timeout = 300)
{
    check_images("dinov2", NULL, 0, "cls");
}

Test(vit, vitmae_cls_images, .timeout = 300)
{
    check_images("vitmae", NULL, 0, "cls");
}

Test(vit, vitmae_sum_images, .timeout = 300)
{
    check_images("vitmae", NULL, EMBED_POOL_SUM, "sum");
}

static const char *const texts[] = {
    "a photo of a cat",
    "A PHOTO OF A DOG ON THE GRASS",
    "",
    "!!! ... ??? ,;:-) ---",
    "it's a dog's life, isn't it? they'll see",
    "Crème brûlée à la française, naïve café, Ångström",
    "東京の猫と犬",
    "🙂🐱 emoji 🚀 rocket",
    "numbers 12345 and 3.14",
    "  lots   of\twhite\nspace  ",
    "fish &amp; chips &lt;3",
    /* well past 77 tokens: cut to the start token, 75, the end token */
    "a very long caption about a red house under a blue sky near a tree, "
    "a very long caption about a red house under a blue sky near a tree, "
    "a very long caption about a red house under a blue sky near a tree, "
    "a very long caption about a red house under a blue sky near a tree, "
    "a very long caption about a red house under a blue sky near a tree, "
    "and the end of it",
};
#define NTEXT (sizeof texts / sizeof texts[0])

Test(vit, clip_texts, .timeout = 300)
{
    char dir[GEN_PATH_MAX], model[GEN_PATH_MAX], in[GEN_PATH_MAX], out[GEN_PATH_MAX];
    char err[512] = "";
    need_torch();
    cr_assert_eq(gen_tmpdir(dir), 0);
    make_model(dir, "model", "clip", NULL, model);
    embedder *e = make_embedder("clip", model, 0);
    const size_t dim = e->dim;
    cr_assert_not_null(e->ops->embed_text, "clip has no embed_text");
    float *v = calloc(NTEXT * dim, sizeof(float));
    cr_assert_not_null(v);

    gen_path(in, dir, "texts.jsonl");
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < NTEXT; i++) {
        json_t *s = json_string(texts[i]);
        char *line = json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        cr_assert_not_null(line);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(s);
        cr_assert_eq(e->ops->embed_text(e, texts[i], strlen(texts[i]), v + i * dim, err,
                                        sizeof err), 0, "text %zu: %s", i, err);
    }
    cr_assert_eq(fclose(f), 0);
    gen_path(out, dir, "ref.f32");
    run(PY " " REF " text %s %s < %s", model, out, in);
    float *ref = read_rows(out, NTEXT, dim);
    double worst = 1;
    for (size_t i = 0; i < NTEXT; i++) {
        double c = cosine(v + i * dim, ref + i * dim, dim);
        worst = c < worst ? c : worst;
        cr_assert_geq(c, COS_MIN, "text %zu \"%s\": cosine %.6f to the reference", i, texts[i], c);
        for (size_t j = 0; j < i; j++)
            cr_assert_lt(cosine(ref + i * dim, ref + j * dim, dim), 0.99,
                         "reference: texts %zu and %zu alike", i, j);
    }
    /* the tower sees only the tokens: the same text again, same vector */
    float *again = calloc(dim, sizeof(float));
    cr_assert_not_null(again);
    cr_assert_eq(e->ops->embed_text(e, texts[0], strlen(texts[0]), again, err, sizeof err), 0);
    for (size_t k = 0; k < dim; k++)
        cr_assert(fabsf(again[k] - v[k]) <= 1e-6f, "the same text twice: %.7f, %.7f", again[k],
                  v[k]);
    cr_log_info("clip texts: worst cosine to the reference %.7f", worst);
    free(again);
    free(ref);
    free(v);
    embed_destroy(e);
    gen_rmtree(dir);
}

/* The public path: a clip database queried by text ranks the pictures by
 * the cosine of the text's vector with theirs. pv_add decodes at the
 * embedder's own size, which may differ a little from the full-size decode
 * used here, hence the 0.05 on scores. */
Test(vit, clip_query_text_api, .timeout = 300)
{
    char dir[GEN_PATH_MAX], model[GEN_PATH_MAX], dbdir[GEN_PATH_MAX], err[1024] = "";
    pics p;
    pv_db *db = NULL;
    pv_hit *hits = NULL;
    size_t n = 0;
    need_torch();
    cr_assert_eq(gen_tmpdir(dir), 0);
    make_model(dir, "model", "clip", NULL, model);
    make_pics(dir, &p);
    gen_path(dbdir, dir, "db");
    pv_embedder_opts eo = {.name = "clip", .model = model};
    cr_assert_eq(pv_db_create(dbdir, &eo, NULL, &db, err, sizeof err), 0, "%s", err);
    const char *paths[NIMG];
    for (int i = 0; i < NIMG; i++)
        paths[i] = p.path[i];
    pv_add_opts ao = {.threads = 1};
    pv_add_stats st;
    memset(&st, 0, sizeof st);
    cr_assert_eq(pv_add(db, paths, NIMG, &ao, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, NIMG, "added %llu of %d (failed %llu)", (unsigned long long)st.added,
                 NIMG, (unsigned long long)st.failed);

    embedder *e = make_embedder("clip", model, 0);
    const size_t dim = e->dim;
    float *iv = calloc(NIMG * dim, sizeof(float)), *tv = calloc(dim, sizeof(float));
    int rcs[NIMG];
    cr_assert(iv && tv);
    cr_assert_eq(e->ops->embed(e, p.im, NIMG, iv, rcs), 0);
    const char *q = "a photo of a red house";
    cr_assert_eq(e->ops->embed_text(e, q, strlen(q), tv, err, sizeof err), 0, "%s", err);

    pv_query_opts qo = {.k = 10, .exact = 1};
    cr_assert_eq(pv_query_text(db, q, &qo, &hits, &n), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(n, NIMG, "%zu hits for %d images", n, NIMG);
    for (size_t h = 0; h < n; h++) {
        cr_assert(hits[h].score >= -1.0001f && hits[h].score <= 1.0001f);
        if (h)
            cr_assert_geq(hits[h - 1].score, hits[h].score, "hits not sorted at %zu", h);
        int which = -1;
        const char *base = hits[h].path ? strrchr(hits[h].path, '/') : NULL;
        for (int i = 0; base && i < NIMG; i++)
            if (strcmp(base, strrchr(p.path[i], '/')) == 0)
                which = i;
        cr_assert_geq(which, 0, "hit %zu: %s is none of the pictures", h,
                      hits[h].path ? hits[h].path : "(null)");
        double want = cosine(tv, iv + which * dim, dim);
        cr_assert(fabs(hits[h].score - want) < 1e-4, "hit %zu (%s): score %.4f, expected %.4f",
                  h, hits[h].path, hits[h].score, want);
    }
    pv_hits_free(hits, n);
    embed_destroy(e);
    free(iv);
    free(tv);
    pv_db_close(db);
    free_pics(&p);
    gen_rmtree(dir);
}

Test(vit, dinov2_query_text_refused, .timeout = 300)
{
    char dir[GEN_PATH_MAX], model[GEN_PATH_MAX], dbdir[GEN_PATH_MAX], err[1024] = "";
    pv_db *db = NULL;
    pv_hit *hits = NULL;
    size_t n = 0;
    need_torch();
    cr_assert_eq(gen_tmpdir(dir), 0);
    make_model(dir, "model", "dinov2", NULL, model);
    embedder *e = make_embedder("dinov2", model, 0);
    cr_assert_null(e->ops->embed_text, "dinov2 has no text tower");
    embed_destroy(e);
    char mae[GEN_PATH_MAX];
    make_model(dir, "mae", "vitmae", NULL, mae);
    e = make_embedder("vitmae", mae, 0);
    cr_assert_null(e->ops->embed_text, "vitmae has no text tower");
    embed_destroy(e);

    gen_path(dbdir, dir, "db");
    pv_embedder_opts eo = {.name = "dinov2", .model = model};
    cr_assert_eq(pv_db_create(dbdir, &eo, NULL, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_query_text(db, "a cat", NULL, &hits, &n), PV_EINVAL);
    cr_assert_not_null(strstr(pv_db_errmsg(db), "text"), "message: %s", pv_db_errmsg(db));
    pv_db_close(db);
    gen_rmtree(dir);
}

/* ---- a pytorch_model.bin checkpoint ------------------------------------------ */

Test(vit, pytorch_bin_refused_with_a_hint_then_converted, .timeout = 300)
{
    char dir[GEN_PATH_MAX], model[GEN_PATH_MAX], err[1024] = "";
    pics p;
    need_torch();
    cr_assert_eq(gen_tmpdir(dir), 0);
    make_model(dir, "mae", "vitmae", NULL, model);
    make_pics(dir, &p);
    embedder *e = make_embedder("vitmae", model, 0);
    const size_t dim = e->dim;
    float *a = malloc(NIMG * dim * sizeof(float)), *b = malloc(NIMG * dim * sizeof(float));
    int rcs[NIMG];
    cr_assert(a && b);
    cr_assert_eq(e->ops->embed(e, p.im, NIMG, a, rcs), 0);
    embed_destroy(e);
    /* the same tensors as a pickle, and no safetensors file */
    run(PY " -c 'import sys, torch; sys.path.insert(0, \"" PIXVEC_SRC_DIR "/tests\"); "
           "import ref_vit; d = sys.argv[1]; "
           "torch.save({k: torch.tensor(v) for k, v in ref_vit.st_read(d + \"/model.safetensors\").items()}, "
           "d + \"/pytorch_model.bin\")' %s && rm %s/model.safetensors",
        model, model);
    e = NULL;
    cr_assert_eq(embed_create("vitmae", 0, 0, model, 0, &e, err, sizeof err), PV_EIO);
    cr_assert(strstr(err, "model.safetensors") && strstr(err, "convert_checkpoint.py"), "%s",
              err);
    run(PY " " PIXVEC_SRC_DIR "/scripts/convert_checkpoint.py %s >/dev/null", model);
    e = make_embedder("vitmae", model, 0);
    cr_assert_eq(e->ops->embed(e, p.im, NIMG, b, rcs), 0);
    for (size_t i = 0; i < NIMG * dim; i++)
        cr_assert_eq(a[i], b[i], "value %zu differs after the conversion", i);
    embed_destroy(e);
    free(a);
    free(b);
    free_pics(&p);
    gen_rmtree(dir);
}

/* ---- the vectorised activations, on every ISA ---------------------------- */

Test(vit, activations_on_every_isa)
{
    enum { N = 20011 }; /* not a multiple of 16: the tails too */
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    cr_assert(x && y);
    const vec_isa best = vec_isa_active();
    for (int isa = VEC_SCALAR; isa <= (int)best; isa++) {
        cr_assert_eq(vec_isa_force((vec_isa)isa), 0);
        for (int act = VIT_QUICK_GELU; act <= VIT_GELU; act++) {
            for (int i = 0; i < N; i++)
                x[i] = -100.0f + 200.0f * (float)i / (N - 1); /* -100 .. 100 */
            memcpy(y, x, N * sizeof(float));
            vit_activate(y, N, act);
            for (int i = 0; i < N; i++) {
                const double v = x[i];
                const double want = act == VIT_QUICK_GELU ? v / (1 + exp(-1.702 * v))
                                                          : 0.5 * v * (1 + erf(v / sqrt(2.0)));
                cr_assert(fabs(y[i] - want) <= 2e-6 * fabs(want) + 1e-6,
                          "%s, act %d: f(%.6g) = %.9g, want %.9g", vec_isa_name((vec_isa)isa),
                          act, v, (double)y[i], want);
            }
        }
        /* softmax's exponentials: exp(x - shift) and their sum */
        double want_sum = 0;
        for (int i = 0; i < 77; i++) {
            x[i] = -90.0f + 2.5f * (float)i;
            want_sum += exp((double)x[i] - 100.0);
        }
        const float sum = vit_exp_sum(x, 77, 100.0f);
        cr_assert(fabs(sum - want_sum) <= 2e-6 * want_sum, "%s: sum %.9g, want %.9g",
                  vec_isa_name((vec_isa)isa), (double)sum, want_sum);
        for (int i = 0; i < 77; i++) {
            const double want = exp(-190.0 + 2.5 * i);
            cr_assert(fabs(x[i] - want) <= 2e-6 * want + 1e-37, "%s: exp(%g) = %g",
                      vec_isa_name((vec_isa)isa), -190.0 + 2.5 * i, (double)x[i]);
        }
    }
    vec_isa_force(best);
    free(x);
    free(y);
}

/* ---- the command line ------------------------------------------------------ */

/* pixvec with the NULL-ended arguments; its exit status, stdout and stderr
 * in *out and *err (replaced). */
static int pixvec(const char *dir, char **out, char **err, ...)
{
    char *argv[32], outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
    int argc = 0;
    va_list ap;
    argv[argc++] = "pixvec";
    va_start(ap, err);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    gen_path(outp, dir, "stdout");
    gen_path(errp, dir, "stderr");
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp), argv[1], outp, errp, out,
                    err);
}

Test(vit, cli_init_add_search, .timeout = 300)
{
    char dir[GEN_PATH_MAX], clip[GEN_PATH_MAX], mae[GEN_PATH_MAX], db[GEN_PATH_MAX],
        db2[GEN_PATH_MAX], db3[GEN_PATH_MAX], cfg[GEN_PATH_MAX + 16];
    char *out = NULL, *err = NULL;
    pics p;
    need_torch();
    cr_assert_eq(gen_tmpdir(dir), 0);
    make_model(dir, "clip", "clip", NULL, clip);
    make_model(dir, "mae", "vitmae", NULL, mae);
    make_pics(dir, &p);
    gen_path(db, dir, "clip.pvdb");
    gen_path(db2, dir, "mae.pvdb");
    gen_path(db3, dir, "bad.pvdb");

    cr_assert_eq(pixvec(dir, &out, &err, "init", db, "--embedder", "clip", "--model", clip,
                        NULL),
                 0, "%s", err);
    cr_assert(strstr(out, "clip ViT 2x32 patch 8") && strstr(out, "16 dims"), "%s", out);
    cr_assert_eq(pixvec(dir, &out, &err, "add", db, p.path[0], p.path[1], p.path[2], p.path[3],
                        "--quiet", NULL),
                 0, "%s", err);
    cr_assert_eq(pixvec(dir, &out, &err, "search", db, "a red house by the sea", "-k", "3",
                        "--json", NULL),
                 0, "%s", err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "not JSON (%s): %s", je.text, out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "text")), "a red house by the sea");
    cr_assert_eq(json_array_size(json_object_get(j, "hits")), 3, "%s", out);
    json_decref(j);
    /* the text as one quoted word in the shell */
    gen_path(cfg, dir, "script.txt");
    const char *script = "search \"a red house\" -k 2\n";
    cr_assert_eq(gen_write_bytes(cfg, script, strlen(script)), 0);
    char outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
    gen_path(outp, dir, "sh.out");
    gen_path(errp, dir, "sh.err");
    char *const sh[] = {"pixvec", "shell", db, NULL};
    cr_assert_eq(cli_wait(cli_spawn(PIXVEC_BIN, sh, cfg, outp, errp), "shell", outp, errp, &out,
                          &err),
                 0, "%s", err);
    cr_assert(strstr(out, "  1  ") && strstr(out, "  2  ") && !strstr(out, "  3  "), "%s", out);

    /* options that do not belong, and text search without a text tower */
    cr_assert_neq(pixvec(dir, &out, &err, "init", db3, "--embedder", "clip", "--model", clip,
                         "--pool", "sum", NULL),
                  0);
    cr_assert(strstr(err, "--pool applies to --embedder vitmae only, not clip"), "%s", err);
    cr_assert_neq(pixvec(dir, &out, &err, "init", db3, "--embedder", "clip", "--model", clip,
                         "--size", "64", NULL),
                  0);
    cr_assert(strstr(err, "--size and --rgb apply to --embedder pixels only, not clip"), "%s", err);
    cr_assert_neq(pixvec(dir, &out, &err, "init", db3, "--embedder", "dinov2", NULL), 0);
    cr_assert(strstr(err, "needs --model DIR"), "%s", err);
    cr_assert_eq(pixvec(dir, &out, &err, "init", db2, "--embedder", "vitmae", "--model", mae,
                        "--pool", "sum", "--json", NULL),
                 0, "%s", err);
    cr_assert(strstr(out, "token sum"), "%s", out);
    cr_assert_neq(pixvec(dir, &out, &err, "search", db2, "a cat", "--json", NULL), 0);
    cr_assert(strstr(err, "no text tower") && strstr(out, "\"ok\": false"), "%s | %s", err,
              out);

    /* a changed checkpoint is refused at open, naming the directory */
    snprintf(cfg, sizeof cfg, "%s/merges.txt", clip);
    FILE *f = fopen(cfg, "a");
    cr_assert_not_null(f);
    fputs("\n", f);
    fclose(f);
    cr_assert_neq(pixvec(dir, &out, &err, "search", db, "a cat", NULL), 0);
    cr_assert(strstr(err, clip) && strstr(err, "changed"), "%s", err);
    free(out);
    free(err);
    free_pics(&p);
    gen_rmtree(dir);
}

/* ---- damaged checkpoints ------------------------------------------------- */

/* embed_create on a damaged model must fail with one of the codes given
 * (up to three; 0 ends the list) and name every string in the NULL-ended
 * list `names` in its message. */
static void expect_refused(const char *family, const char *model, const int *codes,
                           const char *const *names)
{
    embedder *e = NULL;
    char err[2048] = "";
    int rc = embed_create(family, 0, 0, model, 0, &e, err, sizeof err);
    cr_assert_neq(rc, 0, "%s %s: accepted", family, model);
    cr_assert_null(e);
    int ok = 0;
    for (int i = 0; i < 3 && codes[i]; i++)
        ok |= rc == codes[i];
    cr_assert(ok, "%s: status %d (%s): %s", model, rc, pv_strerror(rc), err);
    for (int i = 0; names[i]; i++)
        cr_assert_not_null(strstr(err, names[i]), "%s: the message does not name %s: %s",
                           model, names[i], err);
    cr_log_info("refused (%s): %s", pv_strerror(rc), err);
}

static void patch_config(const char *model, const char *sub, const char *key, int value)
{
    char path[GEN_PATH_MAX];
    json_error_t je;
    gen_path(path, model, "config.json");
    json_t *c = json_load_file(path, 0, &je);
    cr_assert_not_null(c, "%s: %s", path, je.text);
    json_t *o = sub ? json_object_get(c, sub) : c;
    cr_assert(json_is_object(o));
    cr_assert_eq(json_object_set_new(o, key, json_integer(value)), 0);
    cr_assert_eq(json_dump_file(c, path, JSON_INDENT(2)), 0);
    json_decref(c);
}

static void rebuild_weights(const char *model, const char *drop, const char *transpose)
{
    char path[GEN_PATH_MAX];
    mp_model m;
    gen_path(path, model, "model.safetensors");
    cr_assert_eq(mp_open(&m, path), 0, "cannot read %s", path);
    cr_assert_eq(mp_rebuild(&m, drop, transpose), 0, "cannot rewrite %s", path);
    cr_assert_eq(mp_write(&m, path), 0);
    mp_close(&m);
}

static void remove_file(const char *model, const char *name)
{
    char path[GEN_PATH_MAX];
    gen_path(path, model, name);
    cr_assert_eq(unlink(path), 0, "%s", path);
}

Test(vit, bad_checkpoints, .timeout = 300)
{
    static const int eio[] = {PV_EIO, 0}, corrupt[] = {PV_ECORRUPT, 0},
                     heads[] = {PV_EINVAL, PV_ECORRUPT, 0}, cut[] = {PV_ECORRUPT, PV_EIO, 0};
    char dir[GEN_PATH_MAX], m[GEN_PATH_MAX], path[GEN_PATH_MAX];
    need_torch();
    cr_assert_eq(gen_tmpdir(dir), 0);

    /* each case on a fresh copy; first, the untouched ones are accepted */
    make_model(dir, "clip", "clip", NULL, m);
    embed_destroy(make_embedder("clip", m, 0));
    remove_file(m, "config.json");
    expect_refused("clip", m, eio, (const char *[]){"config.json", NULL});

    make_model(dir, "dino", "dinov2", NULL, m);
    embed_destroy(make_embedder("dinov2", m, 0));
    remove_file(m, "model.safetensors");
    expect_refused("dinov2", m, eio, (const char *[]){"model.safetensors", NULL});

    make_model(dir, "novocab", "clip", NULL, m);
    remove_file(m, "vocab.json");
    expect_refused("clip", m, eio, (const char *[]){"vocab.json", NULL});

    make_model(dir, "nomerges", "clip", NULL, m);
    remove_file(m, "merges.txt");
    expect_refused("clip", m, eio, (const char *[]){"merges.txt", NULL});

    /* one fc1 weight stored transposed: [64, 32] -> [32, 64] */
    make_model(dir, "transposed", "dinov2", NULL, m);
    rebuild_weights(m, NULL, "encoder.layer.1.mlp.fc1.weight");
    expect_refused("dinov2", m, corrupt,
                   (const char *[]){"model.safetensors", "encoder.layer.1.mlp.fc1.weight", NULL});

    make_model(dir, "transposed16", "clip", "--f16", m);
    rebuild_weights(m, NULL, "text_model.encoder.layers.0.mlp.fc1.weight");
    expect_refused("clip", m, corrupt,
                   (const char *[]){"model.safetensors",
                                    "text_model.encoder.layers.0.mlp.fc1.weight", NULL});

    /* a tensor missing, the file otherwise well formed */
    make_model(dir, "missing", "clip", NULL, m);
    rebuild_weights(m, "vision_model.encoder.layers.1.self_attn.k_proj.bias", NULL);
    expect_refused("clip", m, corrupt,
                   (const char *[]){"model.safetensors",
                                    "vision_model.encoder.layers.1.self_attn.k_proj.bias", NULL});

    make_model(dir, "missing_mae", "vitmae", NULL, m);
    rebuild_weights(m, "vit.layernorm.weight", NULL);
    expect_refused("vitmae", m, corrupt,
                   (const char *[]){"model.safetensors", "vit.layernorm.weight", NULL});

    /* the rewrite itself is sound: dropping a decoder tensor (unused) is fine */
    make_model(dir, "nodecoder", "vitmae", NULL, m);
    rebuild_weights(m, "decoder.decoder_pred.weight", NULL);
    embed_destroy(make_embedder("vitmae", m, 0));

    /* hidden size 32 is not a multiple of 5 heads */
    make_model(dir, "heads", "dinov2", NULL, m);
    patch_config(m, NULL, "num_attention_heads", 5);
    expect_refused("dinov2", m, heads, (const char *[]){"config.json", NULL});

    make_model(dir, "heads_clip", "clip", NULL, m);
    patch_config(m, "vision_config", "num_attention_heads", 5);
    expect_refused("clip", m, heads, (const char *[]){"config.json", NULL});

    /* the weights cut short */
    make_model(dir, "cut", "vitmae", NULL, m);
    gen_path(path, m, "model.safetensors");
    uint8_t *b = NULL;
    size_t len = 0;
    cr_assert_eq(gen_read_bytes(path, &b, &len), 0);
    free(b);
    cr_assert_eq(gen_truncate(path, len - 100), 0);
    expect_refused("vitmae", m, cut, (const char *[]){"model.safetensors", NULL});

    gen_rmtree(dir);
}

