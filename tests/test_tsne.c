/*
 * test_tsne.c - t-SNE and PCA (index/tsne.c, index/tsne_fft.c,
 * index/pca.c; issue 15) against scikit-learn 1.2.1 (tests/ref_tsne.py,
 * run with /usr/bin/python3) and against their own exact forms.
 *
 * Asserted: the conditional and joint P equal sklearn's
 * _binary_search_perplexity / _joint_probabilities_nn within 1e-5
 * (relative); the Barnes-Hut and FFT gradients within a few percent of the
 * exact gradient (BH with theta 0 within 1e-4); a full run on separated
 * Gaussian clusters keeps each point's nearest layout neighbour in its own
 * cluster (> 95 %) with an exact KL divergence no worse than sklearn's on
 * the same data by more than 10 % (both printed); bit-identical layouts
 * for 1, 2 and 3 threads; new points placed by tsne_place land next to
 * their own cluster; PCA equal to sklearn's PCA (svd_flip signs); bad
 * parameters refused. The sklearn comparisons are skipped, saying so, when
 * python3-sklearn cannot be imported.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "gen.h"
#include "pca.h"
#include "pixvec.h"
#include "pv_util.h"
#include "tsne.h"

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif

#define PY "/usr/bin/python3"
#define REF PIXVEC_SRC_DIR "/tests/ref_tsne.py"

static int have_sklearn(void)
{
    return system(PY " -c 'import sklearn.manifold, scipy, numpy' 2>/dev/null") == 0;
}

static void put(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[GEN_PATH_MAX];
    cr_assert_not_null(gen_path(path, dir, name));
    cr_assert_eq(gen_write_bytes(path, p, bytes), 0);
}

static void *get(const char *dir, const char *name, size_t bytes)
{
    char path[GEN_PATH_MAX];
    uint8_t *p = NULL;
    size_t n = 0;
    cr_assert_not_null(gen_path(path, dir, name));
    cr_assert_eq(gen_read_bytes(path, &p, &n), 0, "cannot read %s", path);
    cr_assert_eq(n, bytes, "%s: %zu bytes, expected %zu", path, n, bytes);
    return p;
}

static double gauss(uint64_t *s)
{
    double u1 = pv_rand_unit(s), u2 = pv_rand_unit(s);
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* n points in dim, point i in cluster i % ncl (lab), centres N(0, sep^2),
 * unit noise; seed picks both. */
static float *clusters(size_t n, uint32_t dim, uint32_t ncl, double sep,
                       uint64_t seed, int *lab)
{
    uint64_t s = seed;
    double *c = malloc(sizeof *c * ncl * dim);
    float *x = malloc(sizeof *x * n * dim);
    cr_assert(c && x);
    for (size_t i = 0; i < (size_t)ncl * dim; i++)
        c[i] = gauss(&s) * sep;
    uint64_t s2 = seed * 7919 + 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)(i % ncl);
        if (lab)
            lab[i] = (int)l;
        for (uint32_t d = 0; d < dim; d++)
            x[i * dim + d] = (float)(c[l * dim + d] + gauss(&s2));
    }
    free(c);
    return x;
}

/* clusters() and the exact k nearest other points of each point: *nbr,
 * *dist (n x k) malloc'd for the caller to free. */
static float *clusters_knn(size_t n, uint32_t dim, uint32_t ncl, double sep, uint64_t seed,
                           int *lab, uint32_t k, uint32_t **nbr, float **dist)
{
    float *x = clusters(n, dim, ncl, sep, seed, lab);
    *nbr = malloc(sizeof **nbr * n * k);
    *dist = malloc(sizeof **dist * n * k);
    cr_assert(*nbr && *dist);
    cr_assert_eq(gen_knn_exact(x, n, x, n, dim, k, 1, *nbr, *dist), 0);
    return x;
}

/* Fraction of points whose nearest other point in the layout y has the
 * same label. */
static double nn_same(const float *y, size_t n, uint32_t dims, const int *lab)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        size_t bj = 0;
        for (size_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            double s = 0;
            for (uint32_t a = 0; a < dims; a++) {
                double v = (double)y[i * dims + a] - y[j * dims + a];
                s += v * v;
            }
            if (s < best) {
                best = s;
                bj = j;
            }
        }
        ok += lab[bj] == lab[i];
    }
    return (double)ok / (double)n;
}

static double relerr(const float *a, const float *b, size_t m)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < m; i++) {
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(e / r);
}

Test(tsne, p_matches_sklearn)
{
    if (!have_sklearn())
        cr_skip_test("python3-sklearn cannot be imported by " PY ": the P comparison did not run");
    const size_t n = 300;
    const uint32_t dim = 8, k = 91;
    uint32_t *nbr;
    float *dist;
    float *x = clusters_knn(n, dim, 3, 1.5, 5, NULL, k, &nbr, &dist);
    double *cond = malloc(sizeof *cond * n * k);
    char dir[GEN_PATH_MAX];
    cr_assert(cond);
    uint32_t kk = 0;
    cr_assert_eq(tsne_conditional_p(n, nbr, dist, k, 30.0f, 2, cond, &kk), 0);
    cr_assert_eq(kk, 91);
    tsne_csr P;
    cr_assert_eq(tsne_joint_p(n, nbr, dist, k, 30.0f, 2, &P), 0);

    cr_assert_eq(gen_tmpdir(dir), 0);
    put(dir, "nbr.u32", nbr, sizeof *nbr * n * k);
    put(dir, "dist.f32", dist, sizeof *dist * n * k);
    cli_shell(PY " " REF " p %s %zu %u 30", dir, n, k);
    double *rc = get(dir, "cond.f64", sizeof(double) * n * k);
    double *rj = get(dir, "joint.f64", sizeof(double) * n * n);
    double worst = 0;
    for (size_t i = 0; i < n * k; i++) {
        double e = fabs(cond[i] - rc[i]) / (fabs(rc[i]) + 1e-12);
        worst = e > worst ? e : worst;
        cr_assert(fabs(cond[i] - rc[i]) <= 1e-5 * fabs(rc[i]) + 1e-12,
                  "cond[%zu][%zu] %.9g, sklearn %.9g", i / k, i % k, cond[i], rc[i]);
    }
    double *dense = calloc(n * n, sizeof *dense);
    cr_assert_not_null(dense);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t r = P.rowptr[i]; r < P.rowptr[i + 1]; r++) {
            if (r > P.rowptr[i])
                cr_assert_gt(P.col[r], P.col[r - 1], "row %zu not sorted", i);
            dense[i * n + P.col[r]] = P.val[r];
            sum += P.val[r];
        }
    cr_assert(fabs(sum - 1) < 1e-5, "sum P %.9g", sum);
    for (size_t i = 0; i < n * n; i++) {
        cr_assert((dense[i] == 0) == (rj[i] == 0), "pattern differs at (%zu, %zu)",
                  i / n, i % n);
        cr_assert(fabs(dense[i] - rj[i]) <= 1e-5 * rj[i] + 1e-12,
                  "P(%zu, %zu) %.9g, sklearn %.9g", i / n, i % n, dense[i], rj[i]);
        cr_assert(fabs(dense[i] - dense[(i % n) * n + i / n]) <= 1e-12, "P not symmetric");
    }
    cr_log_info("tsne P: largest relative difference of the conditional P %.2e", worst);
    gen_rmtree(dir);
    tsne_csr_free(&P);
    free(x);
    free(nbr);
    free(dist);
    free(cond);
    free(rc);
    free(rj);
    free(dense);
}

Test(tsne, bh_and_fft_gradients_match_exact)
{
    const size_t n = 400;
    const uint32_t dim = 10, k = 60;
    int *lab = malloc(sizeof *lab * n);
    cr_assert(lab);
    uint32_t *nbr;
    float *dist;
    float *x = clusters_knn(n, dim, 4, 3.0, 9, lab, k, &nbr, &dist);
    tsne_csr P;
    cr_assert_eq(tsne_joint_p(n, nbr, dist, k, 20.0f, 2, &P), 0);
    float *y = malloc(sizeof *y * n * 3), *ge = malloc(sizeof *ge * n * 3),
          *ga = malloc(sizeof *ga * n * 3);
    cr_assert(y && ge && ga);
    for (uint32_t dims = 2; dims <= 3; dims++) {
        /* a layout the size of a converged one: clusters ~15 apart */
        uint64_t s = 3;
        for (size_t i = 0; i < n; i++)
            for (uint32_t d = 0; d < dims; d++)
                y[i * dims + d] = (float)(3 * gauss(&s) + (d == 0 ? 15.0 * lab[i] : 0));
        double kle, kla;
        cr_assert_eq(tsne_gradient(&P, y, dims, TSNE_EXACT, 0.5f, 1, 2, ge, &kle), 0);
        cr_assert_eq(tsne_gradient(&P, y, dims, TSNE_BH, 0.0f, 1, 2, ga, &kla), 0);
        double e0 = relerr(ga, ge, n * dims);
        cr_assert_lt(e0, 1e-4, "BH theta 0, %u-D: relative error %.3g", dims, e0);
        cr_assert_eq(tsne_gradient(&P, y, dims, TSNE_BH, 0.5f, 1, 2, ga, &kla), 0);
        double e1 = relerr(ga, ge, n * dims);
        cr_log_info("tsne gradient %u-D: BH(0.5) relative error %.3g, KL %.5f vs exact %.5f",
                    dims, e1, kla, kle);
        cr_assert_lt(e1, 0.05);
        cr_assert_lt(fabs(kla - kle), 0.02);
        if (dims == 2) {
            cr_assert_eq(tsne_gradient(&P, y, dims, TSNE_FFT, 0.5f, 1, 2, ga, &kla), 0);
            double e2 = relerr(ga, ge, n * dims);
            cr_log_info("tsne gradient 2-D: FFT relative error %.3g, KL %.5f", e2, kla);
            cr_assert_lt(e2, 0.15); /* 1.5-unit boxes: 0.12 (tsne_fft.c) */
            cr_assert_lt(fabs(kla - kle), 0.03); /* 2.262 vs 2.239 */
            /* a tiny layout (the start of a run): the grid shrinks with it */
            for (size_t i = 0; i < n * 2; i++)
                y[i] *= 1e-4f;
            cr_assert_eq(tsne_gradient(&P, y, 2, TSNE_EXACT, 0.5f, 12, 2, ge, NULL), 0);
            cr_assert_eq(tsne_gradient(&P, y, 2, TSNE_FFT, 0.5f, 12, 2, ga, NULL), 0);
            double e3 = relerr(ga, ge, n * 2);
            cr_assert_lt(e3, 1e-3, "FFT on a tiny layout: %.3g", e3);
        }
    }
    cr_assert_eq(tsne_gradient(&P, y, 3, TSNE_FFT, 0.5f, 1, 2, ga, NULL), PV_EINVAL);
    tsne_csr_free(&P);
    free(lab);
    free(x);
    free(nbr);
    free(dist);
    free(y);
    free(ge);
    free(ga);
}

/* iters: 1000 (sklearn's default) or fewer, for the slower FFT at this
 * small n (its grid has at least 50 boxes a side whatever n is). */
static void full_run(int method, const char *name, int compare, uint32_t iters)
{
    const size_t n = 1000;
    const uint32_t dim = 20, k = 91;
    int *lab = malloc(sizeof *lab * n);
    cr_assert(lab);
    uint32_t *nbr;
    float *dist;
    float *x = clusters_knn(n, dim, 5, 4.0, 21, lab, k, &nbr, &dist);
    float *y = malloc(sizeof *y * n * 2), *g = malloc(sizeof *g * n * 2);
    cr_assert(y && g);
    tsne_params p;
    tsne_defaults(&p);
    p.method = method;
    p.seed = 1;
    p.nthreads = 2;
    p.iters = iters;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &p, y), 0);
    double same = nn_same(y, n, 2, lab);
    tsne_csr P;
    double kl;
    cr_assert_eq(tsne_joint_p(n, nbr, dist, k, 30.0f, 2, &P), 0);
    cr_assert_eq(tsne_gradient(&P, y, 2, TSNE_EXACT, 0.5f, 1, 2, g, &kl), 0);
    cr_log_info("tsne full run (%s, n %zu): nearest layout neighbour in own cluster %.4f, exact KL %.4f",
                name, n, same, kl);
    cr_assert_gt(same, 0.95);
    if (compare) {
        if (!have_sklearn())
            cr_skip_test("python3-sklearn cannot be imported by " PY ": the KL comparison did not run");
        char dir[GEN_PATH_MAX], line[256];
        double ksk, kpv, krep;
        cr_assert_eq(gen_tmpdir(dir), 0);
        put(dir, "x.f32", x, sizeof *x * n * dim);
        put(dir, "y.f32", y, sizeof *y * n * 2);
        cli_shell_line(line, sizeof line, PY " " REF " run %s %zu %u 0", dir, n, dim);
        cr_assert_eq(sscanf(line, "kl_sklearn %lf kl_pixvec %lf kl_sklearn_reported %lf",
                            &ksk, &kpv, &krep), 3, "bad line: %s", line);
        cr_log_info("tsne KL on the same P: sklearn 1.2.1 %.4f (it reports %.4f), pixvec %.4f (python) / %.4f (C)",
                    ksk, krep, kpv, kl);
        cr_assert_lt(fabs(kpv - kl), 1e-3 + 1e-3 * kl, "the two exact KLs disagree");
        cr_assert_leq(kl, ksk * 1.10 + 0.02);
        gen_rmtree(dir);
    }
    tsne_csr_free(&P);
    free(lab);
    free(x);
    free(nbr);
    free(dist);
    free(y);
    free(g);
}

Test(tsne, clusters_separate_kl_near_sklearn_bh, .timeout = 300)
{
    full_run(TSNE_BH, "Barnes-Hut", 1, 1000);
}

Test(tsne, clusters_separate_fft, .timeout = 300)
{
    full_run(TSNE_FFT, "FFT", 0, 400);
}

Test(tsne, same_seed_same_output_any_threads, .timeout = 300)
{
    const size_t n = 500;
    const uint32_t dim = 10, k = 46;
    uint32_t *nbr;
    float *dist;
    float *x = clusters_knn(n, dim, 4, 3.0, 33, NULL, k, &nbr, &dist);
    float *y[3], *yn[3];
    const int methods[] = {TSNE_BH, TSNE_FFT, TSNE_EXACT};
    for (int mi = 0; mi < 3; mi++)
        for (uint32_t dims = 2; dims <= 3; dims++) {
            if (methods[mi] == TSNE_FFT && dims == 3)
                continue;
            size_t m = methods[mi] == TSNE_EXACT ? 150 : n;
            for (unsigned t = 0; t < 3; t++) {
                tsne_params p;
                tsne_defaults(&p);
                p.dims = dims;
                p.perplexity = 15;
                p.method = methods[mi];
                p.iters = 60;
                p.exaggeration_iters = 30;
                p.seed = 77;
                p.nthreads = t + 1;
                y[t] = malloc(sizeof(float) * n * dims);
                yn[t] = malloc(sizeof(float) * 5 * dims);
                cr_assert(y[t] && yn[t]);
                /* knn rows of the first m points index only the first m
                 * when m < n: rebuild for the exact case */
                uint32_t *nb = nbr;
                float *ds = dist;
                if (m < n) {
                    nb = malloc(sizeof *nb * m * k);
                    ds = malloc(sizeof *ds * m * k);
                    cr_assert(nb && ds);
                    cr_assert_eq(gen_knn_exact(x, m, x, m, dim, k, 1, nb, ds), 0);
                }
                cr_assert_eq(tsne_run(x, m, dim, nb, ds, k, &p, y[t]), 0);
                cr_assert_eq(tsne_place(y[t], m, dims, nb + 5 * k, ds + 5 * k, k, 5, &p,
                                        yn[t]), 0);
                if (m < n) {
                    free(nb);
                    free(ds);
                }
                if (t > 0) {
                    cr_assert_eq(memcmp(y[0], y[t], sizeof(float) * m * dims), 0,
                                 "method %d, %u-D: 1 and %u threads differ", methods[mi],
                                 dims, t + 1);
                    cr_assert_eq(memcmp(yn[0], yn[t], sizeof(float) * 5 * dims), 0);
                }
            }
            for (unsigned t = 0; t < 3; t++) {
                free(y[t]);
                free(yn[t]);
            }
        }
    free(x);
    free(nbr);
    free(dist);
}

Test(tsne, place_next_to_own_cluster, .timeout = 300)
{
    const size_t n = 600, nn = 40;
    const uint32_t dim = 10, k = 30, ncl = 4;
    int *lab = malloc(sizeof *lab * (n + nn));
    /* one draw of n + nn points: the last nn are "new" */
    float *x = clusters(n + nn, dim, ncl, 3.0, 44, lab);
    uint32_t *nbr = malloc(sizeof *nbr * (n + nn) * k);
    float *dist = malloc(sizeof *dist * (n + nn) * k);
    float *y = malloc(sizeof *y * n * 2), *yn = malloc(sizeof *yn * nn * 2);
    cr_assert(lab && nbr && dist && y && yn);
    cr_assert_eq(gen_knn_exact(x, n, x, n, dim, k, 1, nbr, dist), 0);
    tsne_params p;
    tsne_defaults(&p);
    p.perplexity = 10;
    p.iters = 500;
    p.seed = 5;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &p, y), 0);
    cr_assert_eq(gen_knn_exact(x + n * dim, nn, x, n, dim, k, 0, nbr, dist), 0);
    cr_assert_eq(tsne_place(y, n, 2, nbr, dist, k, nn, &p, yn), 0);
    double cx[4][2] = {{0}}, cnt[4] = {0};
    for (size_t i = 0; i < n; i++) {
        cx[lab[i]][0] += y[2 * i];
        cx[lab[i]][1] += y[2 * i + 1];
        cnt[lab[i]]++;
    }
    size_t ok = 0, near = 0;
    for (size_t i = 0; i < nn; i++) {
        int own = lab[n + i], best = -1, bestc = -1;
        double bd = INFINITY, bc = INFINITY;
        for (size_t j = 0; j < n; j++) {
            double dx = yn[2 * i] - y[2 * j], dy = yn[2 * i + 1] - y[2 * j + 1];
            if (dx * dx + dy * dy < bd) {
                bd = dx * dx + dy * dy;
                best = lab[j];
            }
        }
        for (int c = 0; c < (int)ncl; c++) {
            double dx = yn[2 * i] - cx[c][0] / cnt[c], dy = yn[2 * i + 1] - cx[c][1] / cnt[c];
            if (dx * dx + dy * dy < bc) {
                bc = dx * dx + dy * dy;
                bestc = c;
            }
        }
        ok += best == own;
        near += bestc == own;
    }
    cr_log_info("tsne place: %zu/%zu new points next to a point of their cluster, %zu/%zu nearest their centroid",
                ok, nn, near, nn);
    cr_assert_geq(ok, nn * 95 / 100);
    cr_assert_geq(near, nn * 95 / 100);
    free(lab);
    free(x);
    free(nbr);
    free(dist);
    free(y);
    free(yn);
}

Test(tsne, pca_matches_sklearn)
{
    const size_t n = 500;
    const uint32_t dim = 12, nc = 3;
    float *x = malloc(sizeof *x * n * dim), *y = malloc(sizeof *y * n * nc);
    cr_assert(x && y);
    uint64_t s = 8;
    for (size_t i = 0; i < n; i++) /* variances 1/(d+1)^2 on mixed axes, plus an offset */
        for (uint32_t d = 0; d < dim; d++)
            x[i * dim + d] = (float)(gauss(&s) * 6.0 / (d + 1) + 100.0);
    for (size_t i = 0; i < n; i++) { /* rotate pairs of axes so no axis is a component */
        for (uint32_t d = 0; d + 1 < dim; d += 2) {
            float a = x[i * dim + d], b = x[i * dim + d + 1];
            x[i * dim + d] = 0.8f * a - 0.6f * b;
            x[i * dim + d + 1] = 0.6f * a + 0.8f * b;
        }
    }
    cr_assert_eq(pca_project(x, n, dim, nc, 1, y), 0);
    float *y2 = malloc(sizeof *y2 * n * nc);
    cr_assert_not_null(y2);
    cr_assert_eq(pca_project(x, n, dim, nc, 99, y2), 0);
    for (size_t i = 0; i < n * nc; i++)
        cr_assert(fabsf(y[i] - y2[i]) < 1e-3f, "seed changed the projection");
    cr_assert_eq(pca_project(x, n, dim, 0, 1, y), PV_EINVAL);
    cr_assert_eq(pca_project(x, n, dim, dim + 1, 1, y), PV_EINVAL);
    cr_assert_eq(pca_project(x, 1, dim, 1, 1, y), PV_EINVAL);
    cr_assert_eq(pca_project(x, n, dim, nc, 1, y), 0);
    if (!have_sklearn())
        cr_skip_test("python3-sklearn cannot be imported by " PY ": the PCA comparison did not run");
    char dir[GEN_PATH_MAX];
    cr_assert_eq(gen_tmpdir(dir), 0);
    put(dir, "x.f32", x, sizeof *x * n * dim);
    cli_shell(PY " " REF " pca %s %zu %u %u", dir, n, dim, nc);
    float *r = get(dir, "pca.f32", sizeof *r * n * nc);
    for (size_t i = 0; i < n * nc; i++)
        cr_assert(fabsf(y[i] - r[i]) < 2e-3f, "pca[%zu][%zu] %g, sklearn %g", i / nc,
                  i % nc, y[i], r[i]);
    gen_rmtree(dir);
    free(x);
    free(y);
    free(y2);
    free(r);
}

Test(tsne, bad_params_refused)
{
    const size_t n = 50;
    const uint32_t dim = 4, k = 10;
    uint32_t *nbr;
    float *dist;
    float *x = clusters_knn(n, dim, 2, 3.0, 1, NULL, k, &nbr, &dist);
    float y[n * 3];
    tsne_params p, q;
    tsne_defaults(&p);
    p.perplexity = 5;
    p.iters = 30;
    p.exaggeration_iters = 10;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &p, y), 0);
    cr_assert_eq(tsne_run(x, 3, dim, nbr, dist, k, &p, y), PV_EINVAL);
    cr_assert_eq(tsne_run(x, n, dim, NULL, dist, k, &p, y), PV_EINVAL);
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, 0, &p, y), PV_EINVAL);
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, NULL, y), PV_EINVAL);
    q = p, q.dims = 1;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.dims = 4;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.perplexity = 0;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.perplexity = NAN;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.perplexity = (float)n;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.learning_rate = -1;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.theta = 2;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.exaggeration_iters = 40;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.iters = 0, q.exaggeration_iters = 0;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.method = 7;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.method = TSNE_FFT, q.dims = 3;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    q = p, q.early_exaggeration = INFINITY;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &q, y), PV_EINVAL);
    /* the graph: an index past n, a point its own neighbour, a NaN distance */
    uint32_t keep = nbr[3 * k + 2];
    nbr[3 * k + 2] = (uint32_t)n;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &p, y), PV_EINVAL);
    nbr[3 * k + 2] = 3;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &p, y), PV_EINVAL);
    nbr[3 * k + 2] = keep;
    float kd = dist[7 * k];
    dist[7 * k] = NAN;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &p, y), PV_ENUMERIC);
    dist[7 * k] = kd;
    /* short rows are fine; a placement row without neighbours is not */
    for (uint32_t j = 4; j < k; j++)
        nbr[9 * k + j] = UINT32_MAX;
    cr_assert_eq(tsne_run(x, n, dim, nbr, dist, k, &p, y), 0);
    cr_assert_eq(tsne_run(NULL, n, dim, nbr, dist, k, &p, y), 0); /* random init */
    float yn[4];
    uint32_t nb2[2 * 3] = {1, 2, 3, UINT32_MAX, 0, 0};
    float d2[2 * 3] = {1, 1, 1, 0, 0, 0};
    cr_assert_eq(tsne_place(y, n, 2, nb2, d2, 3, 2, &p, yn), PV_EINVAL);
    nb2[3] = (uint32_t)n;
    cr_assert_eq(tsne_place(y, n, 2, nb2, d2, 3, 2, &p, yn), PV_EINVAL);
    nb2[3] = 4;
    cr_assert_eq(tsne_place(y, n, 2, nb2, d2, 3, 2, &p, yn), 0);
    cr_assert_eq(tsne_place(y, n, 4, nb2, d2, 3, 2, &p, yn), PV_EINVAL);
    y[5] = NAN;
    cr_assert_eq(tsne_place(y, n, 2, nb2, d2, 3, 2, &p, yn), PV_ENUMERIC);
    free(x);
    free(nbr);
    free(dist);
}
