/*
 * test_umap.c - UMAP layouts (index/umap.c, index/umap_spectral.c) against
 * umap-learn 0.5.3 (tests/ref_umap.py, Debian's umap-learn package).
 *
 * Asserted: the a/b curve fit against find_ab_params' numbers (docs/
 * research/issue15-maps.md 1.3); sigma, rho and the fuzzy union graph of a
 * random 300-point case equal to umap-learn's within 1e-5 on the same
 * neighbours; the spectral initialisation of a connected graph of three
 * loosely bridged clusters separating them; a full fit of 1,000 points in
 * 10 clusters keeping nearest neighbours in their cluster (> 95 %) with a
 * trustworthiness (k = 10) within 0.02 of umap-learn's layout of the same
 * points and neighbours (both measured by sklearn in the reference, and by
 * an O(n^2) helper here); bit-identical layouts on 1 and 2 threads, a
 * different seed giving a different one; new points placed beside their
 * cluster by umap_transform; bad parameters refused, a disconnected graph
 * laid out with its components apart.
 *
 * The reference caches its outputs in $TMPDIR/pixvec-umap-ref (its numba
 * compile takes tens of seconds on the first run). Skipped, saying so,
 * when umap-learn cannot be imported by /usr/bin/python3.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"
#include "pv_util.h"
#include "umap.h"

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif

#define PY "/usr/bin/python3"
#define REF PIXVEC_SRC_DIR "/tests/ref_umap.py"

static void need_umap(void)
{
    /* find_spec, not import: importing umap (numba) takes seconds */
    if (system(PY " -c 'import importlib.util as u, sys; "
                  "sys.exit(not (u.find_spec(\"umap\") and u.find_spec(\"sklearn\")))' "
                  "2>/dev/null") != 0)
        cr_skip_test("umap-learn (or sklearn) cannot be imported by " PY
                     " (scripts/setup.sh --bench installs umap-learn): the comparison did not run");
}

/* ---- data ------------------------------------------------------------------ */

/* n points in dim dimensions around ncl centres (N(0, sep^2) per axis),
 * each point centre + N(0, 1); label[i] = i % ncl. */
static void gen_clusters(float *x, uint32_t *label, size_t n, uint32_t dim, uint32_t ncl,
                         double sep, uint64_t seed)
{
    uint64_t st = seed;
    double *c = malloc((size_t)ncl * dim * sizeof *c);
    cr_assert_not_null(c);
    for (size_t i = 0; i < (size_t)ncl * dim; i++)
        c[i] = sep * sqrt(-2 * log(pv_rand_unit(&st))) * cos(6.283185307 * pv_rand_unit(&st));
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)(i % ncl);
        if (label)
            label[i] = l;
        for (uint32_t d = 0; d < dim; d++)
            x[i * dim + d] = (float)(c[l * dim + d] + sqrt(-2 * log(pv_rand_unit(&st))) *
                                                          cos(6.283185307 * pv_rand_unit(&st)));
    }
    free(c);
}

static double sqdist(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t d = 0; d < dim; d++)
        s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
    return s;
}

/* sklearn's trustworthiness (issue15-maps.md 3.1), O(n^2): ranks by input
 * distance, embedded neighbours exact. */
static double trust(const float *x, uint32_t dim, const float *y, uint32_t dims, size_t n,
                    uint32_t k)
{
    uint32_t *yn = malloc(n * k * sizeof *yn), *xn = malloc(n * k * sizeof *xn);
    float *yd = malloc(n * k * sizeof *yd), *xd = malloc(n * k * sizeof *xd);
    cr_assert(yn && xn && yd && xd);
    cr_assert_eq(gen_knn_exact(y, n, y, n, dims, k, 1, yn, yd), 0);
    cr_assert_eq(gen_knn_exact(x, n, x, n, dim, k, 1, xn, xd), 0);
    double t = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t a = 0; a < k; a++) {
            uint32_t j = yn[i * k + a];
            int in = 0;
            for (uint32_t b = 0; b < k; b++)
                in |= xn[i * k + b] == j;
            if (in)
                continue;
            double dij = sqdist(x + i * dim, x + (size_t)j * dim, dim);
            size_t rank = 1;
            for (size_t l = 0; l < n; l++)
                if (l != i && sqdist(x + i * dim, x + l * dim, dim) < dij)
                    rank++;
            t += (double)rank - k;
        }
    free(yn);
    free(xn);
    free(yd);
    free(xd);
    return 1.0 - 2.0 / ((double)n * k * (2.0 * n - 3.0 * k - 1.0)) * t;
}

/* Fraction of points whose nearest layout neighbour has their label. */
static double nn_same_label(const float *y, uint32_t dims, size_t n, const uint32_t *label)
{
    size_t same = 0;
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        size_t bj = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i && sqdist(y + i * dims, y + j * dims, dims) < best) {
                best = sqdist(y + i * dims, y + j * dims, dims);
                bj = j;
            }
        same += label[bj] == label[i];
    }
    return (double)same / n;
}

static void write_file(const char *path, const void *const *parts, const size_t *lens, int np)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    for (int i = 0; i < np; i++)
        cr_assert_eq(fwrite(parts[i], 1, lens[i], f), lens[i]);
    cr_assert_eq(fclose(f), 0);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long m = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(m > 0 ? (size_t)m : 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)m, f), (size_t)m);
    fclose(f);
    *len = (size_t)m;
    return b;
}

static void tmp_dir(char *dir)
{
    strcpy(dir, "/tmp/pv_umap_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(const char *dir)
{
    cli_shell("rm -rf '%s'", dir);
}

/* ---- (1) a and b ------------------------------------------------------------ */

Test(umap, ab_matches_find_ab_params)
{
    static const float want[][4] = {
        {0.1f, 1.0f, 1.57694346f, 0.89506088f}, {0.25f, 1.0f, 1.12143634f, 1.05749988f},
        {0.5f, 1.0f, 0.58303002f, 1.33416699f}, {0.0f, 1.0f, 1.9328084f, 0.79049497f}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        float a, b;
        cr_assert_eq(umap_ab(want[i][0], want[i][1], &a, &b), 0);
        cr_log_info("min_dist %.2f: a %.8f b %.8f (umap-learn %.8f %.8f)", want[i][0], a, b,
                    want[i][2], want[i][3]);
        cr_expect(fabsf(a - want[i][2]) < 1e-3f && fabsf(b - want[i][3]) < 1e-3f,
                  "min_dist %.2f: a %.6f b %.6f, want %.6f %.6f", want[i][0], a, b, want[i][2],
                  want[i][3]);
    }
    float a, b;
    cr_expect_eq(umap_ab(0.1f, 0.1f, &a, &b), 0); /* the whole range on the flat part */
    cr_expect_eq(umap_ab(2.0f, 1.0f, &a, &b), PV_EINVAL);
    cr_expect_eq(umap_ab(0.1f, 0.0f, &a, &b), PV_EINVAL);
    cr_expect_eq(umap_ab(NAN, 1.0f, &a, &b), PV_EINVAL);
}

/* ---- (2) sigma, rho, the fuzzy graph --------------------------------------- */

Test(umap, fuzzy_graph_matches_umap_learn, .timeout = 300)
{
    need_umap();
    enum { N = 300, DIM = 8, K = 14 };
    float *x = malloc(N * DIM * sizeof *x), *dist = malloc(N * K * sizeof *dist);
    uint32_t *nbr = malloc(N * K * sizeof *nbr);
    float sigma[N], rho[N];
    uint64_t st = 42;
    cr_assert(x && dist && nbr);
    for (size_t i = 0; i < N * DIM; i++)
        x[i] = (float)pv_rand_unit(&st);
    cr_assert_eq(gen_knn_exact(x, N, x, N, DIM, K, 1, nbr, dist), 0);
    /* an exact duplicate pair: a zero distance, rho from the next one */
    memcpy(x + 7 * DIM, x + 3 * DIM, DIM * sizeof *x);
    cr_assert_eq(gen_knn_exact(x, N, x, N, DIM, K, 1, nbr, dist), 0);

    char dir[64], in[128], out[128];
    tmp_dir(dir);
    snprintf(in, sizeof in, "%s/knn.bin", dir);
    snprintf(out, sizeof out, "%s/graph.bin", dir);
    uint32_t hdr[2] = {N, K};
    const void *parts[] = {hdr, nbr, dist};
    size_t lens[] = {sizeof hdr, N * K * sizeof *nbr, N * K * sizeof *dist};
    write_file(in, parts, lens, 3);
    cli_shell(PY " " REF " graph %s %s", in, out);
    size_t len;
    unsigned char *r = read_all(out, &len);
    cr_assert_geq(len, 2 * N * 4 + 8);
    const float *rs = (const float *)r, *rr = rs + N;
    uint64_t nnz;
    memcpy(&nnz, r + 2 * N * 4, 8);
    cr_assert_eq(len, 2 * N * 4 + 8 + nnz * 12);
    const int32_t *rrow = (const int32_t *)(r + 2 * N * 4 + 8), *rcol = rrow + nnz;
    const float *rval = (const float *)(rcol + nnz);

    cr_assert_eq(umap_smooth_knn(dist, nbr, N, K, K, 1, 1.0f, sigma, rho), 0);
    double worst_s = 0, worst_r = 0;
    for (int i = 0; i < N; i++) {
        worst_s = fmax(worst_s, fabs(sigma[i] - rs[i]) / fmax(1.0, fabs(rs[i])));
        worst_r = fmax(worst_r, fabs(rho[i] - rr[i]));
    }
    cr_log_info("sigma max rel diff %.3g, rho max diff %.3g", worst_s, worst_r);
    cr_expect(worst_s < 1e-5 && worst_r < 1e-6, "sigma %g rho %g", worst_s, worst_r);

    umap_graph g;
    cr_assert_eq(umap_fuzzy_graph(nbr, dist, N, K, K, sigma, rho, &g), 0);
    cr_assert_eq(g.rowptr[N], nnz, "edges: %zu, umap-learn %zu", g.rowptr[N], (size_t)nnz);
    double worst_w = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t e = g.rowptr[i]; e < g.rowptr[i + 1]; e++) {
            cr_assert(rrow[e] == (int32_t)i && rcol[e] == (int32_t)g.col[e],
                      "edge %zu: (%zu, %u), umap-learn (%d, %d)", e, i, g.col[e], rrow[e],
                      rcol[e]);
            worst_w = fmax(worst_w, fabs(g.val[e] - rval[e]));
        }
    cr_log_info("graph: %zu edges, max weight diff %.3g", (size_t)nnz, worst_w);
    cr_expect(worst_w < 1e-5, "weights differ by %g", worst_w);
    umap_graph_free(&g);
    free(r);
    rm_dir(dir);
    free(x);
    free(dist);
    free(nbr);
}

/* ---- (3) spectral initialisation --------------------------------------------- */

/* Three clusters of m vertices, each a random 8-regular-ish graph, joined
 * by two weak edges into one component. */
static void three_clusters(umap_graph *g, size_t m, int bridged)
{
    size_t n = 3 * m, deg = 8;
    uint64_t st = 7;
    uint32_t *nb = malloc(n * deg * sizeof *nb);
    float *d = malloc(n * deg * sizeof *d), *s = malloc(n * sizeof *s), *r = malloc(n * sizeof *r);
    cr_assert(nb && d && s && r);
    for (size_t i = 0; i < n; i++) {
        size_t c = i / m;
        for (size_t j = 0; j < deg; j++) {
            size_t o;
            do
                o = c * m + (size_t)(pv_rand_unit(&st) * m) % m;
            while (o == i);
            nb[i * deg + j] = (uint32_t)o;
            d[i * deg + j] = 1.0f;
        }
        s[i] = 1.0f;
        r[i] = 0.0f; /* weights exp(-1) */
    }
    if (bridged) { /* vertex 0 -> m, m -> 2m with a weak weight */
        nb[0] = (uint32_t)m;
        d[0] = 4.0f;
        nb[m * deg] = (uint32_t)(2 * m);
        d[m * deg] = 4.0f;
    }
    cr_assert_eq(umap_fuzzy_graph(nb, d, n, (uint32_t)deg, (uint32_t)deg, s, r, g), 0);
    free(nb);
    free(d);
    free(s);
    free(r);
}

/* Every point nearer its own cluster's centroid than any other's. */
static double centroid_separation(const float *y, uint32_t dims, size_t m, size_t ncl)
{
    double c[8][3] = {{0}};
    for (size_t i = 0; i < m * ncl; i++)
        for (uint32_t d = 0; d < dims; d++)
            c[i / m][d] += y[i * dims + d] / m;
    size_t ok = 0;
    for (size_t i = 0; i < m * ncl; i++) {
        size_t best = 0;
        double bd = INFINITY;
        for (size_t k = 0; k < ncl; k++) {
            double s = 0;
            for (uint32_t d = 0; d < dims; d++)
                s += (y[i * dims + d] - c[k][d]) * (y[i * dims + d] - c[k][d]);
            if (s < bd)
                bd = s, best = k;
        }
        ok += best == i / m;
    }
    return (double)ok / (m * ncl);
}

Test(umap, spectral_init_separates_clusters)
{
    enum { M = 400 };
    for (int bridged = 1; bridged >= 0; bridged--) {
        umap_graph g;
        uint32_t comp[3 * M], nc;
        three_clusters(&g, M, bridged);
        cr_assert_eq(umap_components(&g, comp, &nc), 0);
        cr_assert_eq(nc, bridged ? 1u : 3u);
        for (uint32_t dims = 2; dims <= 3; dims++) {
            float *y = malloc(3 * M * dims * sizeof *y);
            cr_assert_not_null(y);
            cr_assert_eq(umap_spectral_init(&g, dims, 5, 2, y), 0, "bridged %d dims %u", bridged,
                         dims);
            double sep = centroid_separation(y, dims, M, 3);
            cr_log_info("spectral, %s, %u-D: %.4f of points nearest their centroid",
                        bridged ? "one component" : "3 components", dims, sep);
            cr_expect_eq(sep, 1.0, "bridged %d dims %u: %.4f", bridged, dims, sep);
            free(y);
        }
        umap_graph_free(&g);
    }
}

/* ---- (4) a full fit against umap-learn ---------------------------------------- */

enum { FN = 1000, FDIM = 16, FCL = 10, FK = 14 };

static void fit_data(float *x, uint32_t *label, uint32_t *nbr, float *dist)
{
    gen_clusters(x, label, FN, FDIM, FCL, 1.6, 99);
    cr_assert_eq(gen_knn_exact(x, FN, x, FN, FDIM, FK, 1, nbr, dist), 0);
}

/* The buffers of a 1,000-point test: x, its kNN, labels, two layouts (up
 * to 3-D); filled with fit_data when gen. */
typedef struct fitset {
    float *x, *dist, *y, *y2;
    uint32_t *nbr, *label;
} fitset;

static fitset fitset_new(int gen)
{
    fitset f = {malloc(FN * FDIM * sizeof(float)), malloc(FN * FK * sizeof(float)),
                malloc(FN * 3 * sizeof(float)),    malloc(FN * 3 * sizeof(float)),
                malloc(FN * FK * sizeof(uint32_t)), malloc(FN * sizeof(uint32_t))};
    cr_assert(f.x && f.dist && f.y && f.y2 && f.nbr && f.label);
    if (gen)
        fit_data(f.x, f.label, f.nbr, f.dist);
    return f;
}

static void fitset_free(fitset *f)
{
    free(f->x);
    free(f->dist);
    free(f->y);
    free(f->y2);
    free(f->nbr);
    free(f->label);
}

Test(umap, fit_matches_umap_learn_quality, .timeout = 300)
{
    need_umap();
    fitset f = fitset_new(1);
    float *x = f.x, *dist = f.dist, *y = f.y;
    uint32_t *nbr = f.nbr, *label = f.label;
    umap_params p;
    umap_defaults(&p);
    p.seed = 1;
    cr_assert_eq(umap_fit(x, FN, FDIM, nbr, dist, FK, &p, y), 0);
    double same = nn_same_label(y, 2, FN, label), t = trust(x, FDIM, y, 2, FN, 10);

    char dir[64], in[128], out[128], yin[128], xin[128];
    tmp_dir(dir);
    snprintf(in, sizeof in, "%s/fit.bin", dir);
    snprintf(out, sizeof out, "%s/y.bin", dir);
    struct __attribute__((packed)) {
        uint32_t n, dim, k;
        uint64_t seed;
    } hdr = {FN, FDIM, FK, 1};
    const void *parts[] = {&hdr, x, nbr, dist};
    size_t lens[] = {sizeof hdr, FN * FDIM * sizeof *x, FN * FK * sizeof *nbr,
                     FN * FK * sizeof *dist};
    write_file(in, parts, lens, 4);
    cli_shell(PY " " REF " fit %s %s", in, out);
    size_t len;
    unsigned char *r = read_all(out, &len);
    cr_assert_eq(len, FN * 2 * 4 + 8);
    double t_ref;
    memcpy(&t_ref, r + FN * 2 * 4, 8);
    const float *yref = (const float *)r;
    double same_ref = nn_same_label(yref, 2, FN, label);
    double t_ref_here = trust(x, FDIM, yref, 2, FN, 10);
    /* sklearn's trustworthiness of our layout, to check the helper */
    uint32_t h2[2] = {FN, FDIM}, h3[2] = {FN, 2};
    snprintf(xin, sizeof xin, "%s/x.bin", dir);
    snprintf(yin, sizeof yin, "%s/ours.bin", dir);
    const void *px[] = {h2, x}, *py[] = {h3, y};
    size_t lx[] = {8, FN * FDIM * sizeof *x}, ly[] = {8, FN * 2 * sizeof *y};
    write_file(xin, px, lx, 2);
    write_file(yin, py, ly, 2);
    char line[256];
    cli_shell_line(line, sizeof line, PY " " REF " trust %s %s", xin, yin);
    double t_sk = -1;
    cr_assert_eq(sscanf(line, "%lf", &t_sk), 1, "bad line: %s", line);
    cr_log_info("fit 1000 x 16, 10 clusters: pixvec trust %.4f (sklearn %.4f), nn same cluster "
                "%.4f; umap-learn trust %.4f (here %.4f), nn same %.4f",
                t, t_sk, same, t_ref, t_ref_here, same_ref);
    cr_expect(fabs(t - t_sk) < 1e-6, "trust helper %.6f, sklearn %.6f", t, t_sk);
    cr_expect(same > 0.95, "nearest layout neighbour in own cluster: %.4f", same);
    cr_expect(t > t_ref - 0.02, "trustworthiness %.4f, umap-learn %.4f", t, t_ref);
    free(r);
    rm_dir(dir);
    fitset_free(&f);
}

/* ---- (5) reproducibility ---------------------------------------------------- */

Test(umap, same_seed_same_bits_on_any_threads)
{
    fitset f = fitset_new(1);
    float *x = f.x, *dist = f.dist, *y1 = f.y, *y2 = f.y2;
    uint32_t *nbr = f.nbr, *label = f.label;
    umap_params p;
    umap_defaults(&p);
    p.epochs = 120;
    for (uint32_t dims = 2; dims <= 3; dims++) {
        p.dims = dims;
        p.seed = 3;
        p.nthreads = 1;
        cr_assert_eq(umap_fit(x, FN, FDIM, nbr, dist, FK, &p, y1), 0);
        p.nthreads = 2;
        cr_assert_eq(umap_fit(x, FN, FDIM, nbr, dist, FK, &p, y2), 0);
        cr_expect_eq(memcmp(y1, y2, FN * dims * sizeof *y1), 0, "%u-D: 1 and 2 threads differ",
                     dims);
        p.nthreads = 5; /* more threads than cores: other vertex ranges */
        cr_assert_eq(umap_fit(x, FN, FDIM, nbr, dist, FK, &p, y2), 0);
        cr_expect_eq(memcmp(y1, y2, FN * dims * sizeof *y1), 0, "%u-D: 1 and 5 threads differ",
                     dims);
        p.seed = 4;
        cr_assert_eq(umap_fit(x, FN, FDIM, nbr, dist, FK, &p, y2), 0);
        cr_expect_neq(memcmp(y1, y2, FN * dims * sizeof *y1), 0, "%u-D: seeds 3 and 4 agree",
                      dims);
        cr_expect_gt(nn_same_label(y1, dims, FN, label), 0.95);
    }
    fitset_free(&f);
}

/* ---- (6) transform ------------------------------------------------------------ */

Test(umap, transform_places_new_points_beside_their_cluster)
{
    enum { NNEW = 100, NFIT = FN - NNEW };
    fitset f = fitset_new(0);
    float *x = f.x, *dist = f.dist, *y = f.y, *yn = f.y2;
    uint32_t *nbr = f.nbr, *label = f.label;
    gen_clusters(x, label, FN, FDIM, FCL, 1.6, 99);
    /* fit the first NFIT points; the last NNEW are new */
    cr_assert_eq(gen_knn_exact(x, NFIT, x, NFIT, FDIM, FK, 1, nbr, dist), 0);
    umap_params p;
    umap_defaults(&p);
    p.seed = 8;
    cr_assert_eq(umap_fit(x, NFIT, FDIM, nbr, dist, FK, &p, y), 0);
    cr_assert_eq(gen_knn_exact(x + NFIT * FDIM, NNEW, x, NFIT, FDIM, FK, 0, nbr, dist), 0);
    p.nthreads = 2;
    cr_assert_eq(umap_transform(y, NFIT, 2, nbr, dist, FK, NNEW, &p, yn), 0);
    /* the nearest fitted layout point of each new point is of its cluster */
    size_t same = 0;
    for (size_t i = 0; i < NNEW; i++) {
        double bd = INFINITY;
        size_t bj = 0;
        for (size_t j = 0; j < NFIT; j++) {
            double d = sqdist(yn + i * 2, y + j * 2, 2);
            if (d < bd)
                bd = d, bj = j;
        }
        same += label[bj] == label[NFIT + i];
    }
    cr_log_info("transform: %zu of %d new points beside their cluster", same, NNEW);
    cr_expect_geq(same, 95u, "%zu of %d", same, NNEW);
    /* reproducible on one thread too */
    float *y1 = malloc(NNEW * 2 * sizeof *y1);
    cr_assert_not_null(y1);
    p.nthreads = 1;
    cr_assert_eq(umap_transform(y, NFIT, 2, nbr, dist, FK, NNEW, &p, y1), 0);
    cr_expect_eq(memcmp(y1, yn, NNEW * 2 * sizeof *y1), 0);
    free(y1);
    fitset_free(&f);
}

/* ---- (7) errors and disconnected graphs ---------------------------------------- */

Test(umap, bad_params_refused)
{
    enum { N = 50, K = 5 };
    float x[N * 4], dist[N * K], y[N * 3];
    uint32_t nbr[N * K];
    gen_clusters(x, NULL, N, 4, 2, 3.0, 1);
    cr_assert_eq(gen_knn_exact(x, N, x, N, 4, K, 1, nbr, dist), 0);
    umap_params p;
    umap_defaults(&p);
    p.epochs = 20;
    cr_assert_eq(umap_fit(x, N, 4, nbr, dist, K, &p, y), 0);
    umap_params q = p;
    q.dims = 4;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &q, y), PV_EINVAL);
    q = p;
    q.n_neighbors = 1;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &q, y), PV_EINVAL);
    q = p;
    q.min_dist = 2.0f;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &q, y), PV_EINVAL);
    q = p;
    q.learning_rate = NAN;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &q, y), PV_EINVAL);
    q = p;
    q.init = 7;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &q, y), PV_EINVAL);
    cr_expect_eq(umap_fit(x, 1, 4, nbr, dist, K, &p, y), PV_EINVAL);
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, 0, &p, y), PV_EINVAL);
    cr_expect_eq(umap_fit(x, N, 4, NULL, dist, K, &p, y), PV_EINVAL);
    uint32_t keep = nbr[3 * K + 1];
    nbr[3 * K + 1] = 3; /* itself */
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &p, y), PV_EINVAL);
    nbr[3 * K + 1] = N; /* out of range */
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &p, y), PV_EINVAL);
    nbr[3 * K + 1] = keep;
    float kd = dist[9];
    dist[9] = NAN;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &p, y), PV_EINVAL);
    dist[9] = -1;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &p, y), PV_EINVAL);
    dist[9] = kd;
    q = p;
    q.negative_sample_rate = 0; /* attraction only: allowed */
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &q, y), 0);
    /* short rows are fine */
    nbr[5 * K + 4] = UINT32_MAX;
    cr_expect_eq(umap_fit(x, N, 4, nbr, dist, K, &p, y), 0);
    cr_expect_eq(umap_transform(y, N, 3, nbr, dist, K, 10, &p, y), PV_EINVAL); /* dims */
    cr_expect_eq(umap_transform(y, N, 2, nbr, dist, K, 0, &p, y), PV_EINVAL);
}

Test(umap, disconnected_graph_laid_out)
{
    /* 4 far clusters and 3 isolated pairs: k = 5 never crosses a gap */
    enum { N = 406, K = 5, DIM = 6 };
    float *x = malloc(N * DIM * sizeof *x), *dist = malloc(N * K * sizeof *dist);
    float *y = malloc(N * 2 * sizeof *y);
    uint32_t *nbr = malloc(N * K * sizeof *nbr), *label = malloc(N * sizeof *label);
    cr_assert(x && dist && y && nbr && label);
    gen_clusters(x, label, 400, DIM, 4, 40.0, 5);
    for (size_t i = 400; i < N; i++) {
        label[i] = 4 + (uint32_t)(i - 400) / 2;
        for (uint32_t d = 0; d < DIM; d++)
            x[i * DIM + d] = 500.0f * (float)(1 + (i - 400) / 2) * (d == 0) + 0.01f * (i & 1);
    }
    cr_assert_eq(gen_knn_exact(x, N, x, N, DIM, K, 1, nbr, dist), 0);
    /* the pairs: only each other */
    for (size_t i = 400; i < N; i++)
        for (uint32_t j = 1; j < K; j++)
            nbr[i * K + j] = UINT32_MAX;
    umap_params p;
    umap_defaults(&p);
    p.seed = 2;
    p.n_neighbors = K + 1;
    cr_assert_eq(umap_fit(x, N, DIM, nbr, dist, K, &p, y), 0);
    double same = nn_same_label(y, 2, N, label);
    cr_log_info("disconnected (7 components): nn same component %.4f", same);
    cr_expect_gt(same, 0.99);
    free(x);
    free(dist);
    free(y);
    free(nbr);
    free(label);
}

/* ---- PCA initialisation ------------------------------------------------------- */

Test(umap, pca_init_fit)
{
    umap_params p;
    umap_defaults(&p);
    p.init = UMAP_INIT_PCA;
    p.seed = 6;
    p.epochs = 200;
    fitset f = fitset_new(1);
    cr_assert_eq(umap_fit(f.x, FN, FDIM, f.nbr, f.dist, FK, &p, f.y), 0);
    double same = nn_same_label(f.y, 2, FN, f.label);
    cr_log_info("PCA init: nn same cluster %.4f", same);
    cr_expect_gt(same, 0.95);
    p.init = UMAP_INIT_RANDOM; /* a different start gives a different layout */
    cr_assert_eq(umap_fit(f.x, FN, FDIM, f.nbr, f.dist, FK, &p, f.y2), 0);
    cr_expect_neq(memcmp(f.y, f.y2, FN * 2 * sizeof *f.y), 0);
    fitset_free(&f);
}
