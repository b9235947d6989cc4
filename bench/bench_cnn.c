/*
 * bench_cnn.c - speed of pixvec's MobileNetV2 forward pass (issue 5).
 *
 * usage: bench_cnn [--model FILE] [--images N] [--batch B] [--threads T]
 *                  [--reps R] [--work DIR] [--out FILE] [--forward-only 1]
 *
 *   - forward only: cnn_forward on N preprocessed 224 x 224 x 3 inputs
 *     (generated, fixed seed) in batches of B, OpenBLAS on T threads;
 *     images/s (median of R) and GFLOP/s (the network's multiply-adds x 2,
 *     counted from its layer shapes), beside cblas_sgemm's peak at 2048^3
 *     on the same threads;
 *   - decode included: pv_embed_file on N generated 1024 x 768 JPEGs (what
 *     `add` does per file, on the calling thread);
 *   - --forward-only 1 skips the sgemm peak and the JPEG part (run_cnn.sh's
 *     batch and thread sweep measures those once);
 *   - writes the inputs to WORK/cnn_in.f32 (N x 224 x 224 x 3) for the
 *     PyTorch peer, which runs the same network on the same inputs.
 */
#include <cblas.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "cnn.h"
#include "embed.h"
#include "gen.h"
#include "pixvec.h"

/* Multiply-adds of one forward pass, from the layer shapes. */
static double macs(void)
{
    const mnv2_block *b = mnv2_blocks();
    double m = 112.0 * 112 * 27 * 32; /* stem */
    int h = 112;
    for (int i = 0; i < MNV2_BLOCKS; i++) {
        const int oh = b[i].stride == 1 ? h : h / 2;
        if (b[i].expand != b[i].in)
            m += (double)h * h * b[i].in * b[i].expand;
        m += (double)oh * oh * 9 * b[i].expand;
        m += (double)oh * oh * b[i].expand * b[i].out;
        h = oh;
    }
    return m + (double)h * h * 320 * MNV2_FEATURES;
}

/* The sgemm peak at 2048^3 on the BLAS threads set, and pv_embed_file on n
 * generated 1024 x 768 JPEGs (images/s, others' CPU %). */
static void others(const char *model, const char *work, int n, int threads, double *peak,
                   double *dips, double *doth)
{
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char err[512];
    openblas_set_num_threads(threads);
    /* sgemm peak at 2048^3 on the same threads */
    const int S = 2048;
    float *A = bench_alloc((size_t)S * S * sizeof *A), *B = bench_alloc((size_t)S * S * sizeof *B),
          *C = bench_alloc((size_t)S * S * sizeof *C);
    for (size_t i = 0; i < (size_t)S * S; i++)
        A[i] = B[i] = (float)(i % 7) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, S, S, 1, A, S, B, S, 0, C, S);
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, S, S, 1, A, S, B, S, 0, C, S);
    *peak = 2.0 * S * S * S / (bench_now() - t0) / 1e9;

    /* decode included: pv_embed_file on generated 1024 x 768 JPEGs */
    char dir[4096], p[4096];
    snprintf(dir, sizeof dir, "%s/cnn-jpegs", work);
    bench_path_join(p, sizeof p, work, "cnn-db");
    pv_db *db;
    pv_embedder_opts eo = {.name = "cnn", .model = model};
    if (pv_db_create(p, &eo, NULL, &db, err, sizeof err) != PV_OK)
        bench_die("pv_db_create", err);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        bench_die("mkdir", dir);
    uint8_t *big = bench_alloc((size_t)1024 * 768 * 3);
    for (int i = 0; i < n; i++) {
        char name[64];
        gen_pattern(1024, 768, 3, (uint32_t)(1900 + i), big);
        snprintf(name, sizeof name, "%03d.jpg", i);
        bench_path_join(p, sizeof p, dir, name);
        if (gen_write_jpeg(p, 1024, 768, 3, big, 90, 0) != 0)
            bench_die("gen_write_jpeg", p);
    }
    float v[MNV2_FEATURES];
    bench_mark md = bench_mark_now();
    double t1 = bench_now();
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%03d.jpg", i);
        bench_path_join(p, sizeof p, dir, name);
        if (pv_embed_file(db, p, v, MNV2_FEATURES) != PV_OK)
            bench_die("pv_embed_file", pv_db_errmsg(db));
    }
    *dips = n / (bench_now() - t1);
    *doth = bench_others_pct(md, ncpu);
    pv_db_close(db);
    free(A);
    free(B);
    free(C);
    free(big);
}

int main(int argc, char **argv)
{
    const char *model = EMBED_CNN_DEFAULT_MODEL, *work = "/tmp", *out = NULL;
    int n = 64, batch = 8, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), reps = 3, fwd_only = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--images")) n = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--work")) work = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--forward-only")) fwd_only = atoi(v);
        else bench_die("usage", "bench_cnn [--model F] [--images N] [--batch B] [--threads T] [--reps R] [--work DIR] [--out F] [--forward-only 1]");
    }
    if (n <= 0 || batch <= 0 || threads <= 0 || reps <= 0)
        bench_die("usage", "N, B, T, R > 0");
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* cnn_forward splits the work over threads itself; OpenBLAS threads on
     * top would oversubscribe the cores */
    openblas_set_num_threads(1);
    char err[512];
    cnn *m;
    if (cnn_load(model, &m, NULL, err, sizeof err) != 0)
        bench_die("cnn_load", err);
    const size_t px = (size_t)CNN_SIDE * CNN_SIDE * 3;
    float *x = bench_alloc((size_t)n * px * sizeof *x), *y = bench_alloc((size_t)n * MNV2_FEATURES * sizeof *y);
    uint8_t *pix = bench_alloc(px);
    for (int i = 0; i < n; i++) {
        gen_pattern(CNN_SIDE, CNN_SIDE, 3, (uint32_t)(900 + i), pix);
        for (size_t p = 0; p < px; p++)
            x[(size_t)i * px + p] = pix[p] / 255.0f;
    }
    bench_write_file(work, "cnn_in.f32", x, (size_t)n * px * sizeof *x);
    cnn_work *w = cnn_work_new((size_t)batch);
    if (!w)
        bench_die("cnn_work_new", "out of memory");
    if (cnn_work_set_threads(w, (unsigned)threads) != 0)
        bench_die("cnn_work_set_threads", "out of memory");
    double *t = bench_alloc((size_t)reps * sizeof *t);
    /* warm up: first touch of every image's share of the buffers */
    cnn_forward(m, w, x, (size_t)(n < batch ? n : batch), y);
    bench_mark mk = bench_mark_now();
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        for (int b = 0; b < n; b += batch)
            cnn_forward(m, w, x + (size_t)b * px, (size_t)(n - b < batch ? n - b : batch),
                        y + (size_t)b * MNV2_FEATURES);
        t[r] = bench_now() - t0;
    }
    double sec = bench_median(t, (size_t)reps), oth = bench_others_pct(mk, ncpu);
    double ips = n / sec, gflops = ips * macs() * 2 / 1e9;
    bench_write_file(work, "cnn_out.f32", y, (size_t)n * MNV2_FEATURES * sizeof *y);

    double peak = 0, dips = 0, doth = 0;
    if (!fwd_only)
        others(model, work, n, threads, &peak, &dips, &doth);
    printf("## pixvec cnn (MobileNetV2, %.0f M multiply-adds per image), %d images, batch %d, "
           "%d threads\n\n", macs() / 1e6, n, batch, threads);
    printf("| measure | value | others' CPU |\n|---|---|---|\n");
    printf("| forward only | %.1f images/s, %.1f GFLOP/s | %.0f %% |\n", ips, gflops, oth);
    if (!fwd_only) {
        printf("| sgemm 2048^3 peak, same threads | %.1f GFLOP/s (forward reaches %.2f of it) | — |\n",
               peak, gflops / peak);
        printf("| pv_embed_file, 1024x768 JPEG (decode + resize + forward, 1 image per call) | %.1f images/s | %.0f %% |\n",
               dips, doth);
    }
    if (out) {
        FILE *f = fopen(out, "w");
        if (!f)
            bench_die("cannot write", out);
        fprintf(f, "fwd_ips=%.3f\nfwd_gflops=%.3f\nfwd_others=%.1f\npeak=%.2f\nembed_ips=%.3f\n"
                   "embed_others=%.1f\nmacs=%.0f\n",
                ips, gflops, oth, peak, dips, doth, macs());
        fclose(f);
    }
    cnn_work_free(w);
    cnn_free(m);
    return 0;
}
