/*
 * test_layout_quality.c - index/layout_quality.c: trustworthiness and kept
 * neighbours against scikit-learn's trustworthiness and a numpy count
 * (tests/ref_trust.py, run with /usr/bin/python3), against a brute-force
 * count written here (data with exact ties, several sgemm blocks), on
 * layouts whose answer is known (the identity: 1 and 1; a random layout:
 * about 0.5), for 1 and 2 threads, and with bad arguments.
 *
 * The python comparison is skipped, saying so, when scikit-learn cannot be
 * imported.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "layout_quality.h"
#include "pixvec.h"

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif

#define PY "/usr/bin/python3"
#define REF PIXVEC_SRC_DIR "/tests/ref_trust.py"

/* Standard normal floats from a seeded generator (Box-Muller). */
static void gauss(float *v, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        double u1, u2;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        u1 = ((s >> 11) + 1.0) / 9007199254740993.0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        u2 = (s >> 11) / 9007199254740992.0;
        v[i] = (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

static float *alloc_f(size_t n)
{
    float *p = malloc(n * sizeof *p);
    cr_assert_not_null(p);
    return p;
}

/* x: n x dim gaussian; y: its first dims coordinates plus noise (a layout
 * that keeps some neighbourhoods and loses others). */
static void make_case(size_t n, uint32_t dim, uint32_t dims, float noise, uint64_t seed,
                      float **x, float **y)
{
    *x = alloc_f(n * dim);
    *y = alloc_f(n * dims);
    gauss(*x, n * dim, seed);
    gauss(*y, n * dims, seed + 1000);
    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dims; d++)
            (*y)[i * dims + d] = (*x)[i * dim + d] + noise * (*y)[i * dims + d];
}

/* Runs ref_trust.py on x and y; 0 when scikit-learn cannot be imported. */
static int reference(const float *x, size_t n, uint32_t dim, const float *y, uint32_t dims,
                     uint32_t k, double *trust, double *kept)
{
    char dir[GEN_PATH_MAX], xf[GEN_PATH_MAX], yf[GEN_PATH_MAX], cmd[3 * GEN_PATH_MAX];
    if (system(PY " -c 'import sklearn, numpy' 2>/dev/null") != 0)
        return 0;
    cr_assert_eq(gen_tmpdir(dir), 0);
    cr_assert_not_null(gen_path(xf, dir, "x.f32"));
    cr_assert_not_null(gen_path(yf, dir, "y.f32"));
    cr_assert_eq(gen_write_bytes(xf, x, n * dim * sizeof *x), 0);
    cr_assert_eq(gen_write_bytes(yf, y, n * dims * sizeof *y), 0);
    int len = snprintf(cmd, sizeof cmd, PY " " REF " %s %zu %u %s %u %u", xf, n, dim, yf, dims, k);
    cr_assert(len > 0 && (size_t)len < sizeof cmd);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    int got = fscanf(p, "%lf %lf", trust, kept);
    int st = pclose(p);
    gen_rmtree(dir);
    cr_assert(got == 2 && st == 0, "the reference failed: %s", cmd);
    return 1;
}

/* The definition, straight: every pair, double distances, O(n^2 k). */
static void brute(const float *x, size_t n, uint32_t dim, const float *y, uint32_t dims,
                  uint32_t k, double *trust, double *kept)
{
    double *dx = malloc(n * sizeof *dx), *dy = malloc(n * sizeof *dy);
    uint32_t *nb = malloc(k * sizeof *nb);
    cr_assert(dx && dy && nb);
    uint64_t t = 0, kp = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t l = 0; l < n; l++) {
            double sx = 0, sy = 0;
            for (uint32_t d = 0; d < dim; d++) {
                double e = (double)x[i * dim + d] - x[l * dim + d];
                sx += e * e;
            }
            for (uint32_t d = 0; d < dims; d++) {
                double e = (double)y[i * dims + d] - y[l * dims + d];
                sy += e * e;
            }
            dx[l] = sx;
            dy[l] = sy;
        }
        /* k nearest in y by (distance, index), selection */
        for (uint32_t m = 0; m < k; m++) {
            size_t best = n;
            for (size_t l = 0; l < n; l++) {
                int used = l == i;
                for (uint32_t q = 0; q < m && !used; q++)
                    used = nb[q] == l;
                if (!used && (best == n || dy[l] < dy[best]))
                    best = l;
            }
            nb[m] = (uint32_t)best;
        }
        for (uint32_t m = 0; m < k; m++) {
            uint64_t r = 1;
            for (size_t l = 0; l < n; l++)
                r += l != i && dx[l] < dx[nb[m]];
            if (r > k)
                t += r - k;
            else
                kp++;
        }
    }
    double nd = (double)n, kd = k;
    *trust = 1.0 - (double)t * (2.0 / (nd * kd * (2.0 * nd - 3.0 * kd - 1.0)));
    *kept = (double)kp / (nd * kd);
    free(dx);
    free(dy);
    free(nb);
}

static void against_sklearn(size_t n, uint32_t dim, uint32_t dims, float noise, uint64_t seed)
{
    float *x, *y;
    double t, kp, rt, rk;
    make_case(n, dim, dims, noise, seed, &x, &y);
    cr_assert_eq(layout_quality(x, n, dim, y, dims, 10, 2, &t, &kp), 0);
    if (!reference(x, n, dim, y, dims, 10, &rt, &rk)) {
        free(x);
        free(y);
        cr_skip_test("scikit-learn cannot be imported by " PY ": the comparison did not run");
    }
    cr_expect(fabs(t - rt) <= 1e-12, "n %zu dims %u: trustworthiness %.17g, sklearn %.17g", n,
              dims, t, rt);
    cr_expect(fabs(kp - rk) <= 1e-12, "n %zu dims %u: kept %.17g, numpy %.17g", n, dims, kp, rk);
    /* a layout that is neither perfect nor random, so the check has teeth */
    cr_expect(rt > 0.55 && rt < 0.999, "trustworthiness %g", rt);
    free(x);
    free(y);
}

Test(layout_quality, sklearn_2d_one_block)
{
    against_sklearn(400, 20, 2, 0.5f, 1);
}

Test(layout_quality, sklearn_several_blocks_1d_3d)
{
    /* 1300 points: two sgemm blocks, so both sides of the self-join count */
    against_sklearn(1300, 12, 3, 0.7f, 2);
    against_sklearn(1300, 12, 1, 0.3f, 3);
}

Test(layout_quality, ties_against_brute_force)
{
    /* small integer coordinates: many exactly equal input distances (and
     * float keys within the rounding bound), over three sgemm blocks */
    size_t n = 2100;
    uint32_t dim = 6, dims = 2, k = 7;
    float *x = alloc_f(n * dim), *y;
    uint64_t s = 99;
    for (size_t i = 0; i < n * dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 33) % 5);
    }
    y = alloc_f(n * dims);
    gauss(y, n * dims, 5);
    for (size_t i = 0; i < n; i++) {
        y[i * 2] += 2 * x[i * dim];
        y[i * 2 + 1] += 2 * x[i * dim + 1];
    }
    double t, kp, bt, bk;
    cr_assert_eq(layout_quality(x, n, dim, y, dims, k, 2, &t, &kp), 0);
    brute(x, n, dim, y, dims, k, &bt, &bk);
    cr_expect_eq(t, bt, "trustworthiness %.17g, brute force %.17g", t, bt);
    cr_expect_eq(kp, bk, "kept %.17g, brute force %.17g", kp, bk);
    free(x);
    free(y);
}

Test(layout_quality, identity_is_perfect)
{
    for (uint32_t dims = 1; dims <= 3; dims++) {
        size_t n = 1500;
        float *x = alloc_f(n * dims);
        gauss(x, n * dims, 10 + dims);
        double t = 0, kp = 0;
        cr_assert_eq(layout_quality(x, n, dims, x, dims, 10, 0, &t, &kp), 0);
        cr_expect_eq(t, 1.0, "dims %u: trustworthiness %.17g", dims, t);
        cr_expect_eq(kp, 1.0, "dims %u: kept %.17g", dims, kp);
        free(x);
    }
}

Test(layout_quality, random_layout_is_about_half)
{
    size_t n = 1500;
    float *x = alloc_f(n * 16), *y = alloc_f(n * 2);
    gauss(x, n * 16, 21);
    gauss(y, n * 2, 22);
    double t, kp;
    cr_assert_eq(layout_quality(x, n, 16, y, 2, 10, 2, &t, &kp), 0);
    /* expected 1 - (n-k)^2 / (n (2n - 3k - 1)) ~ 0.50; kept ~ k/n */
    cr_expect(fabs(t - 0.5) < 0.03, "trustworthiness %g", t);
    cr_expect(kp < 0.03, "kept %g", kp);
    free(x);
    free(y);
}

Test(layout_quality, threads_agree)
{
    float *x, *y;
    size_t n = 2500;
    make_case(n, 24, 2, 0.6f, 31, &x, &y);
    double t1, k1, t2, k2, t3, k3;
    cr_assert_eq(layout_quality(x, n, 24, y, 2, 10, 1, &t1, &k1), 0);
    cr_assert_eq(layout_quality(x, n, 24, y, 2, 10, 2, &t2, &k2), 0);
    cr_assert_eq(layout_quality(x, n, 24, y, 2, 10, 3, &t3, &k3), 0);
    cr_expect(t1 == t2 && t1 == t3, "%.17g %.17g %.17g", t1, t2, t3);
    cr_expect(k1 == k2 && k1 == k3, "%.17g %.17g %.17g", k1, k2, k3);
    cr_expect(t1 > 0.5 && t1 < 1.0);
    free(x);
    free(y);
}

Test(layout_quality, bad_arguments)
{
    float x[40 * 4], y[40 * 3];
    double t = -7, kp = -7;
    gauss(x, 40 * 4, 41);
    gauss(y, 40 * 3, 42);
    cr_expect_eq(layout_quality(NULL, 40, 4, y, 2, 5, 1, &t, &kp), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 4, NULL, 2, 5, 1, &t, &kp), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 4, y, 2, 5, 1, NULL, &kp), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 4, y, 2, 5, 1, &t, NULL), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 0, y, 2, 5, 1, &t, &kp), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 4, y, 0, 5, 1, &t, &kp), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 4, y, 4, 5, 1, &t, &kp), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 4, y, 2, 0, 1, &t, &kp), PV_EINVAL);
    cr_expect_eq(layout_quality(x, 40, 4, y, 2, 20, 1, &t, &kp), PV_EINVAL); /* 2k = n */
    cr_expect_eq(layout_quality(x, 0, 4, y, 2, 5, 1, &t, &kp), PV_EINVAL);
    x[17] = NAN;
    cr_expect_eq(layout_quality(x, 40, 4, y, 2, 5, 1, &t, &kp), PV_ENUMERIC);
    x[17] = 0;
    y[5] = INFINITY;
    cr_expect_eq(layout_quality(x, 40, 4, y, 2, 5, 1, &t, &kp), PV_ENUMERIC);
    cr_expect(t == -7 && kp == -7, "outputs written on failure");
    y[5] = 0;
    cr_expect_eq(layout_quality(x, 40, 4, y, 2, 19, 1, &t, &kp), 0); /* 2k < n */
    cr_expect(t >= 0 && t <= 1 && kp >= 0 && kp <= 1);
}
