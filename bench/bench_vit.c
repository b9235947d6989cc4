/*
 * bench_vit.c - speed of pixvec's CLIP towers (issue 14, item 5), and the
 * JPEGs for the ingest measurement (item 6).
 *
 * usage: bench_vit --model DIR [--images N] [--threads T] [--reps R]
 *                  [--work DIR] [--out FILE] [--only b1|b32|text]
 *        bench_vit --gen-jpegs DIR N [--size WxH]
 *
 *   - image tower: the clip embedder's embed op (engine/embed/embed.h) on
 *     N generated RGB images at the crop's size (config.json's image_size,
 *     224 for B/32), 1 image per call and 32 per call
 *     (the embedder runs up to 32 B/32 images in one forward pass:
 *     embedder.batch), OpenBLAS on T threads
 *     (openblas_set_num_threads); images/s, median of R. An image of the
 *     crop's size makes preprocessing a copy through the bicubic resizer
 *     and a normalisation; the resizer's share is timed apart
 *     (img_resize_short_crop on the same images) and printed;
 *   - GFLOP/s from the architecture's multiply-adds, counted from
 *     config.json (patch GEMM, per block 4 D^2 T + 2 T^2 D + 2 D F T,
 *     projection; x 2), the whole network as PyTorch computes it. pixvec's
 *     last block computes only the class token's row past attention, so it
 *     does ~6.6 % fewer; the rate is the architecture's count over the time;
 *   - cblas_sgemm's rate at 2048^3 on the same threads (median of 3);
 *   - text tower: embed_text on the fixed texts below, one text per call,
 *     texts/s (median of R passes over all of them);
 *   - getrusage's user and system time of each section (system time is
 *     page faults of the per-call buffers, and OpenBLAS's threads);
 *   - writes WORK/vit_in.u8 (N x side x side x 3 RGB), WORK/vit_b1.f32,
 *     WORK/vit_b32.f32 (N x dim), WORK/vit_texts.txt (one per line) and
 *     WORK/vit_text.f32, for the PyTorch peer (bench/peer_torch_vit.py).
 *
 * --gen-jpegs: N photo-sized (default 640 x 480) JPEGs, quality 90,
 * distinct seeded patterns (tests/gen.c), DIR/000000.jpg ..., for `add`.
 */
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "embed.h"
#include "gen.h"
#include "img.h"
#include "pixvec.h"

#define BIG_BATCH 32

/* Queries of varied length, as people type them. */
static const char *const TEXTS[] = {
    "a dog",
    "sunset",
    "a cat sleeping on a sofa",
    "two people walking on a beach at sunset",
    "a red car parked in front of a house",
    "mountains with snow",
    "a bowl of fruit on a wooden kitchen table",
    "city skyline at night with lights reflected in the river",
    "a child playing football in a park on a sunny afternoon",
    "black and white photo of an old man",
    "birthday cake with candles",
    "a screenshot of a spreadsheet",
    "a group photo of a wedding party standing outside a church",
    "close-up of a flower with a bee",
    "forest path in autumn, leaves on the ground, morning fog between the trees",
    "receipt",
    "a plate of pasta with tomato sauce and basil",
    "an aerial view of a harbour with sailing boats",
    ("a blurry photo taken by accident inside a pocket, mostly dark with a bit of light at the "
     "top"),
    "my passport",
};
#define NTEXTS (sizeof TEXTS / sizeof TEXTS[0])

typedef struct arch {
    int d, ff, layers, heads, patch, side, proj; /* vision */
    double macs;                                 /* per image */
} arch;

static int cfg_get(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        bench_die("config.json: vision_config lacks an integer", k);
    return (int)json_integer_value(v);
}

/* The image tower's multiply-adds per image, from config.json. */
static arch read_arch(const char *dir)
{
    char p[4096];
    json_error_t je;
    bench_path_join(p, sizeof p, dir, "config.json");
    json_t *root = json_load_file(p, 0, &je);
    if (!root)
        bench_die(p, je.text);
    json_t *v = json_object_get(root, "vision_config");
    arch a = {cfg_get(v, "hidden_size"), cfg_get(v, "intermediate_size"),
              cfg_get(v, "num_hidden_layers"), cfg_get(v, "num_attention_heads"),
              cfg_get(v, "patch_size"), cfg_get(v, "image_size"), 0, 0};
    json_t *pj = json_object_get(root, "projection_dim");
    a.proj = json_is_integer(pj) ? (int)json_integer_value(pj) : 512;
    json_decref(root);
    const double g = a.side / a.patch, np = g * g, t = np + 1, d = a.d, f = a.ff;
    a.macs = np * d * 3.0 * a.patch * a.patch +
             a.layers * (4 * d * d * t + 2 * t * t * d + 2 * d * f * t) + d * a.proj;
    return a;
}

typedef struct usage {
    double user, sys;
} usage;

static usage usage_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (usage){ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
                   ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6};
}

/* cblas_sgemm 2048^3: GFLOP/s by wall time (median of 3) and per
 * CPU-second (user + system of all threads over the 3 runs), the second
 * being what a neighbour on the shared cores disturbs less. */
static void sgemm_peak(double *wall, double *cpu)
{
    const int S = 2048;
    float *A = bench_alloc((size_t)S * S * sizeof *A), *B = bench_alloc((size_t)S * S * sizeof *B),
          *C = bench_alloc((size_t)S * S * sizeof *C);
    for (size_t i = 0; i < (size_t)S * S; i++)
        A[i] = B[i] = (float)(i % 7) * 0.1f;
    double t[3];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, S, S, 1, A, S, B, S, 0, C, S);
    usage u0 = usage_now();
    for (int r = 0; r < 3; r++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, S, S, 1, A, S, B, S, 0, C, S);
        t[r] = bench_now() - t0;
    }
    usage u1 = usage_now();
    free(A);
    free(B);
    free(C);
    const double flop = 2.0 * S * S * S;
    *wall = flop / bench_median(t, 3) / 1e9;
    *cpu = 3 * flop / (u1.user - u0.user + u1.sys - u0.sys) / 1e9;
}

typedef struct result {
    double rate, others, user, sys, wall; /* per second; % others; CPU s per rep */
} result;

/* The image tower over n images, `batch` per embed call, reps times. */
static result run_images(const embedder *e, const img *ims, int n, int batch, int reps,
                         float *out, int ncpu)
{
    int *rcs = bench_alloc((size_t)n * sizeof *rcs);
    double *t = bench_alloc((size_t)reps * sizeof *t);
    e->ops->embed(e, ims, 1, out, rcs); /* warm up */
    bench_mark mk = bench_mark_now();
    usage u0 = usage_now();
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        for (int b = 0; b < n; b += batch) {
            const size_t k = (size_t)(n - b < batch ? n - b : batch);
            if (e->ops->embed(e, ims + b, k, out + (size_t)b * e->dim, rcs + b) != 0)
                bench_die("embed", "could not run");
            for (size_t i = 0; i < k; i++)
                if (rcs[b + i] != 0)
                    bench_die("embed", pv_strerror(rcs[b + i]));
        }
        t[r] = bench_now() - t0;
    }
    usage u1 = usage_now();
    result res = {0};
    res.others = bench_others_pct(mk, ncpu);
    res.wall = bench_median(t, (size_t)reps);
    res.rate = n / res.wall;
    res.user = (u1.user - u0.user) / reps;
    res.sys = (u1.sys - u0.sys) / reps;
    free(rcs);
    free(t);
    return res;
}

static void write_out(FILE *f, const char *key, result r)
{
    fprintf(f, "%s_rate=%.4f\n%s_others=%.1f\n%s_user=%.3f\n%s_sys=%.3f\n%s_wall=%.4f\n", key,
            r.rate, key, r.others, key, r.user, key, r.sys, key, r.wall);
}

static int gen_jpegs(const char *dir, int n, int w, int h)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        bench_die("mkdir", dir);
    uint8_t *px = bench_alloc((size_t)w * h * 3);
    char name[32], p[4096];
    for (int i = 0; i < n; i++) {
        gen_pattern((uint32_t)w, (uint32_t)h, 3, (uint32_t)(5000 + i), px);
        snprintf(name, sizeof name, "%06d.jpg", i);
        bench_path_join(p, sizeof p, dir, name);
        if (gen_write_jpeg(p, (uint32_t)w, (uint32_t)h, 3, px, 90, 0) != 0)
            bench_die("gen_write_jpeg", p);
    }
    free(px);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *work = "/tmp", *out = NULL, *only = NULL;
    int n = 64, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), reps = 3;
    if (argc >= 4 && !strcmp(argv[1], "--gen-jpegs")) {
        int w = 640, h = 480;
        if (argc == 6 && !strcmp(argv[4], "--size") && sscanf(argv[5], "%dx%d", &w, &h) == 2 &&
            w > 0 && h > 0)
            ;
        else if (argc != 4)
            bench_die("usage", "bench_vit --gen-jpegs DIR N [--size WxH]");
        return gen_jpegs(argv[2], atoi(argv[3]), w, h);
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--images")) n = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--work")) work = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--only")) only = v;
        else bench_die("usage", "bench_vit --model DIR [--images N] [--threads T] [--reps R] "
                                "[--work DIR] [--out F] [--only b1|b32|text]");
    }
    if (!model || n <= 0 || threads <= 0 || reps <= 0)
        bench_die("usage", "--model DIR; N, T, R > 0");
    const int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const int do_b1 = !only || !strcmp(only, "b1"), do_b32 = !only || !strcmp(only, "b32"),
              do_text = !only || !strcmp(only, "text");
    openblas_set_num_threads(threads);
    arch a = read_arch(model);

    char err[512];
    embedder *e;
    double t0 = bench_now();
    if (embed_create("clip", 0, 0, model, 0, &e, err, sizeof err) != 0)
        bench_die("embed_create", err);
    const double load_s = bench_now() - t0;

    /* inputs: n generated images at the crop's size */
    const uint32_t side = (uint32_t)a.side;
    const size_t px = (size_t)side * side * 3;
    uint8_t *all = bench_alloc((size_t)n * px);
    img *ims = bench_alloc((size_t)n * sizeof *ims);
    for (int i = 0; i < n; i++) {
        gen_pattern(side, side, 3, (uint32_t)(900 + i), all + (size_t)i * px);
        ims[i] = (img){.w = side, .h = side, .channels = 3, .orig_w = side, .orig_h = side,
                       .px = all + (size_t)i * px};
    }
    bench_write_file(work, "vit_in.u8", all, (size_t)n * px);

    /* the resizer's share of preprocessing, on the same images */
    uint8_t *small = bench_alloc(px);
    double tp[16];
    const int rp = reps < 16 ? reps : 16;
    for (int r = 0; r < rp; r++) {
        double s0 = bench_now();
        for (int i = 0; i < n; i++)
            if (img_resize_short_crop(ims[i].px, side, side, 3, side, side, IMG_FILTER_BICUBIC,
                                      small) != 0)
                bench_die("img_resize_short_crop", "failed");
        tp[r] = bench_now() - s0;
    }
    const double resize_ms = bench_median(tp, (size_t)rp) / n * 1e3;
    const int resize_identity = memcmp(small, ims[n - 1].px, px) == 0;

    float *y = bench_alloc((size_t)n * e->dim * sizeof *y);
    result b1 = {0}, b32 = {0}, tx = {0};
    if (do_b1) {
        b1 = run_images(e, ims, n, 1, reps, y, ncpu);
        bench_write_file(work, "vit_b1.f32", y, (size_t)n * e->dim * sizeof *y);
    }
    if (do_b32) {
        b32 = run_images(e, ims, n, BIG_BATCH, reps, y, ncpu);
        bench_write_file(work, "vit_b32.f32", y, (size_t)n * e->dim * sizeof *y);
    }

    /* text tower */
    if (do_text) {
        float *ty = bench_alloc(NTEXTS * e->dim * sizeof *ty);
        double *tt = bench_alloc((size_t)reps * sizeof *tt);
        char p[4096];
        bench_path_join(p, sizeof p, work, "vit_texts.txt");
        FILE *f = fopen(p, "w");
        if (!f)
            bench_die("cannot write", p);
        for (size_t i = 0; i < NTEXTS; i++)
            fprintf(f, "%s\n", TEXTS[i]);
        fclose(f);
        e->ops->embed_text(e, TEXTS[0], strlen(TEXTS[0]), ty, err, sizeof err);
        bench_mark mk = bench_mark_now();
        usage u0 = usage_now();
        for (int r = 0; r < reps; r++) {
            double s0 = bench_now();
            for (size_t i = 0; i < NTEXTS; i++)
                if (e->ops->embed_text(e, TEXTS[i], strlen(TEXTS[i]), ty + i * e->dim, err,
                                       sizeof err) != 0)
                    bench_die("embed_text", err);
            tt[r] = bench_now() - s0;
        }
        usage u1 = usage_now();
        tx.others = bench_others_pct(mk, ncpu);
        tx.wall = bench_median(tt, (size_t)reps);
        tx.rate = NTEXTS / tx.wall;
        tx.user = (u1.user - u0.user) / reps;
        tx.sys = (u1.sys - u0.sys) / reps;
        bench_write_file(work, "vit_text.f32", ty, NTEXTS * e->dim * sizeof *ty);
        free(ty);
        free(tt);
    }

    double peak, peak_cpu;
    sgemm_peak(&peak, &peak_cpu);
    const double gf1 = b1.rate * a.macs * 2 / 1e9, gf32 = b32.rate * a.macs * 2 / 1e9;
    /* GFLOP per CPU-second: n images' FLOPs over the CPU time of one rep */
    const double gc1 = b1.user + b1.sys > 0 ? n * a.macs * 2 / 1e9 / (b1.user + b1.sys) : 0;
    const double gc32 = b32.user + b32.sys > 0 ? n * a.macs * 2 / 1e9 / (b32.user + b32.sys) : 0;
    printf("## pixvec clip image tower (%d x %d, patch %d, %d px; %.0f M multiply-adds per "
           "image), %d images, %d BLAS threads\n\n",
           a.layers, a.d, a.patch, a.side, a.macs / 1e6, n, threads);
    printf("| measure | value | per CPU-second | CPU per rep: user / sys (s) | others' CPU |\n"
           "|---|---|---|---|---|\n");
    if (do_b1)
        printf("| batch 1 | %.2f images/s, %.1f GFLOP/s (%.2f of sgemm peak) | %.1f GFLOP (%.2f of "
               "sgemm's) | %.2f / %.2f | %.0f %% |\n",
               b1.rate, gf1, gf1 / peak, gc1, gc1 / peak_cpu, b1.user, b1.sys, b1.others);
    if (do_b32)
        printf("| batch 32 (one forward) | %.2f images/s, %.1f GFLOP/s (%.2f of sgemm peak) | "
               "%.1f GFLOP (%.2f of sgemm's) | %.2f / %.2f | %.0f %% |\n",
               b32.rate, gf32, gf32 / peak, gc32, gc32 / peak_cpu, b32.user, b32.sys, b32.others);
    if (do_text)
        printf("| text tower, %zu texts, one per call | %.1f texts/s | %.1f texts | %.2f / %.2f | "
               "%.0f %% |\n",
               NTEXTS, tx.rate, tx.user + tx.sys > 0 ? NTEXTS / (tx.user + tx.sys) : 0, tx.user,
               tx.sys, tx.others);
    printf("| preprocessing: img_resize_short_crop %d -> %d (%s) | %.3f ms per image | — | — | — |\n",
           a.side, a.side, resize_identity ? "identity" : "not identity", resize_ms);
    printf("| model load (embed_create: map, hash, check; page cache warm) | %.3f s | — | — | — |\n",
           load_s);
    printf("| sgemm 2048^3, same threads (median of 3) | %.1f GFLOP/s | %.1f GFLOP | — | — |\n",
           peak, peak_cpu);
    if (out) {
        FILE *f = fopen(out, "w");
        if (!f)
            bench_die("cannot write", out);
        if (do_b1)
            write_out(f, "b1", b1);
        if (do_b32)
            write_out(f, "b32", b32);
        if (do_text)
            write_out(f, "text", tx);
        fprintf(f, "peak_cpu=%.2f\n", peak_cpu);
        fprintf(f, "macs=%.0f\npeak=%.2f\nload_s=%.4f\nresize_ms=%.4f\nntexts=%zu\n", a.macs,
                peak, load_s, resize_ms, NTEXTS);
        fclose(f);
    }
    embed_destroy(e);
    free(y);
    free(small);
    free(ims);
    free(all);
    return 0;
}
