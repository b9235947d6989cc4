/*
 * umap_spectral.c - UMAP's spectral initialisation (index room): the
 * eigenvectors of the normalized Laplacian L = I - D^-1/2 W D^-1/2 of the
 * fuzzy graph with the smallest nontrivial eigenvalues, as umap-learn's
 * spectral.py spectral_layout (docs/research/issue15-maps.md 1.6).
 *
 * No ARPACK: those are the top eigenvectors of M = D^-1/2 W D^-1/2 after
 * the trivial one v0 = sqrt(deg)/|sqrt(deg)| (eigenvalue 1 exactly), found
 * with LOBPCG (Knyazev 2001, "Toward the optimal preconditioned eigensolver:
 * locally optimal block preconditioned conjugate gradient method"), without
 * a preconditioner, on a block of dims + 2 vectors kept orthogonal to v0.
 * Each iteration does Rayleigh-Ritz on [X, R, P] made orthonormal by SVQB
 * (Stathopoulos and Wu 2002: B V Lambda^-1/2 from the eigenvectors of the
 * Gram matrix, dropping directions with tiny eigenvalues, done twice), the
 * small dense eigenproblems by cyclic Jacobi (linalg.c). Converged when
 * every wanted residual |M x - theta x| is below LOBPCG_TOL (the vectors
 * have norm 1);
 * after LOBPCG_MAX_ITER iterations the caller falls back (PCA, then random).
 * Components of at most DENSE_MAX vertices are solved densely (Jacobi on
 * the whole matrix). Everything is double precision; the sparse products
 * run on threads over row ranges and the reductions are serial, so the
 * result does not depend on the number of threads.
 *
 * Disconnected graphs (a kNN graph often is: outliers, duplicates): as
 * umap-learn's multi_component_layout, every component gets a meta
 * position and is laid out inside a box of half-width data_range around it
 * (its own spectral layout scaled to max |coord| = data_range, or uniform
 * random when it has fewer than 2 dims or at most dims + 1 points, or when
 * its solver does not converge). Meta positions: up to 2 dims components on
 * the +- unit axes as umap-learn; more components (umap-learn embeds their
 * centroids spectrally) on a square (cubic) grid filling [-1, 1], largest
 * component first, data_range = half the grid spacing. Simpler, needs no
 * input vectors, and gives every component the same room; the SGD that
 * follows moves them anyway.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "par.h"
#include "pixvec.h"
#include "pv_util.h"
#include "umap.h"

#define LOBPCG_TOL 1e-4
#define LOBPCG_MAX_ITER 600
#define LOBPCG_PAD 2
#define DENSE_MAX 96
#define ROWS_PER_THREAD_MIN 4096

/* ---- the operator M = D^-1/2 W D^-1/2 on blocks (row-major n x m) -------- */

typedef struct csr_op {
    const size_t *rowptr;
    const uint32_t *col;
    const float *val;   /* W */
    const double *dinv; /* 1/sqrt(deg) */
    const float *mval;  /* M's entries, dinv_i w_ij dinv_j */
    double *xb;         /* n x m scratch: the columns being multiplied,
                         * packed (one cache line per row for m = 8) */
    size_t n;
} csr_op;

typedef struct spmv_job {
    const csr_op *op;
    double *y;
    size_t ld, c0, m;
} spmv_job;

static void spmv_rows(void *arg, size_t r0, size_t r1)
{
    const spmv_job *j = arg;
    const csr_op *op = j->op;
    const size_t m = j->m, ld = j->ld;
    const double *restrict xb = op->xb;
    for (size_t i = r0; i < r1; i++) {
        double acc[3 * (3 + LOBPCG_PAD)] = {0};
        for (size_t e = op->rowptr[i]; e < op->rowptr[i + 1]; e++) {
            const double w = op->mval[e], *restrict xk = xb + (size_t)op->col[e] * m;
            for (size_t c = 0; c < m; c++)
                acc[c] += w * xk[c];
        }
        memcpy(j->y + i * ld + j->c0, acc, m * sizeof *acc);
    }
}

/* y = M x for columns [c0, c0 + m) of ld, rows split over up to nt threads
 * (each row is computed by one thread in a fixed order: the same bits for
 * any nt). */
static void spmv(const csr_op *op, const double *x, double *y, size_t ld, size_t c0,
                 size_t m, unsigned nt)
{
    size_t n = op->n;
    for (size_t i = 0; i < n; i++)
        memcpy(op->xb + i * m, x + i * ld + c0, m * sizeof *x);
    if (nt > PAR_MAX_THREADS)
        nt = PAR_MAX_THREADS;
    if ((size_t)nt * ROWS_PER_THREAD_MIN > n)
        nt = (unsigned)(n / ROWS_PER_THREAD_MIN) + 1;
    spmv_job job = {.op = op, .y = y, .ld = ld, .c0 = c0, .m = m};
    par_run(nt, n, spmv_rows, &job);
}

/* ---- block helpers (row-major n x ld, columns [c0, c0 + m)) -------------- */

/* g (ma x mb) = A^T B for column blocks of a and b. */
static void gram(const double *restrict a, size_t lda, size_t ca, size_t ma,
                 const double *restrict b, size_t ldb, size_t cb, size_t mb, size_t n,
                 double *restrict g)
{
    memset(g, 0, ma * mb * sizeof *g);
    for (size_t i = 0; i < n; i++) {
        const double *ai = a + i * lda + ca, *bi = b + i * ldb + cb;
        for (size_t p = 0; p < ma; p++) {
            double v = ai[p];
            for (size_t q = 0; q < mb; q++)
                g[p * mb + q] += v * bi[q];
        }
    }
}

/* Remove the v0 direction and the X block (columns [0, p), orthonormal
 * and orthogonal to v0) from columns [c0, c0 + m) of s (ld columns): one
 * pass for the dot products, one for the update. tmp: (p + 1) x m. */
static void project_out(double *restrict s, size_t ld, size_t n, size_t p, size_t c0,
                        size_t m, const double *restrict v0, double *restrict tmp)
{
    double *dv = tmp + p * m;
    memset(tmp, 0, (p + 1) * m * sizeof *tmp);
    for (size_t i = 0; i < n; i++) {
        const double *si = s + i * ld, *b = si + c0;
        for (size_t q = 0; q < m; q++)
            dv[q] += v0[i] * b[q];
        for (size_t r = 0; r < p; r++)
            for (size_t q = 0; q < m; q++)
                tmp[r * m + q] += si[r] * b[q];
    }
    for (size_t i = 0; i < n; i++) {
        double *si = s + i * ld, *b = si + c0;
        for (size_t q = 0; q < m; q++) {
            double acc = v0[i] * dv[q];
            for (size_t r = 0; r < p; r++)
                acc += si[r] * tmp[r * m + q];
            b[q] -= acc;
        }
    }
}

/* SVQB: make columns [c0, c0 + m) of s orthonormal, dropping directions
 * whose Gram eigenvalue is below 1e-12 of the largest; returns how many
 * columns are kept (packed from c0). g, ev, v: m x m scratch; row: m. */
static size_t svqb(double *restrict s, size_t ld, size_t n, size_t c0, size_t m,
                   double *restrict g, double *restrict ev, double *restrict v,
                   double *restrict row)
{
    if (m == 0)
        return 0;
    gram(s, ld, c0, m, s, ld, c0, m, n, g);
    linalg_jacobi_eig(g, m, ev, v);
    size_t keep = 0;
    while (keep < m && ev[keep] > 1e-12 * ev[0] && ev[keep] > 1e-300)
        keep++;
    for (size_t q = 0; q < keep; q++) /* columns of v scaled by 1/sqrt(ev) */
        for (size_t r = 0; r < m; r++)
            v[r * m + q] /= sqrt(ev[q]);
    for (size_t i = 0; i < n; i++) {
        double *si = s + i * ld + c0;
        for (size_t q = 0; q < keep; q++) {
            double acc = 0;
            for (size_t r = 0; r < m; r++)
                acc += si[r] * v[r * m + q];
            row[q] = acc;
        }
        for (size_t q = 0; q < m; q++)
            si[q] = q < keep ? row[q] : 0;
    }
    return keep;
}

/* ---- one connected component ------------------------------------------------ */

/* Dense: all eigenvectors of M (n <= DENSE_MAX); the dims after v0. */
static int spectral_dense(const csr_op *op, uint32_t dims, double *out)
{
    size_t n = op->n;
    double *a = pv_calloc_array(n * n, sizeof *a), *v = pv_alloc_array(n * n, sizeof *v);
    double *ev = pv_alloc_array(n, sizeof *ev);
    int rc = PV_ENOMEM;
    if (!a || !v || !ev)
        goto done;
    for (size_t i = 0; i < n; i++)
        for (size_t e = op->rowptr[i]; e < op->rowptr[i + 1]; e++)
            a[i * n + op->col[e]] += op->dinv[i] * op->val[e] * op->dinv[op->col[e]];
    linalg_jacobi_eig(a, n, ev, v);
    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dims; d++)
            out[i * dims + d] = v[i * n + 1 + d];
    rc = 0;
done:
    free(a);
    free(v);
    free(ev);
    return rc;
}

/* LOBPCG for the dims top eigenvectors of M orthogonal to v0; returns 0,
 * 1 when not converged, or PV_ENOMEM. out: n x dims. S holds X in columns
 * [0, p), R in [p, 2p), P in [2p, 3p). */
static int spectral_lobpcg(const csr_op *op, const double *v0, uint32_t dims, uint64_t seed,
                           unsigned nt, double *out)
{
    const size_t n = op->n, p = dims + LOBPCG_PAD, ld = 3 * p;
    int rc = PV_ENOMEM;
    double *s = pv_calloc_array(n, ld * sizeof *s);   /* [X | R | P] */
    double *as = pv_calloc_array(n, ld * sizeof *as); /* M S */
    double *xn = pv_alloc_array(n, 2 * p * sizeof *xn); /* new X, new P */
    double *g = pv_alloc_array(ld * ld, sizeof *g), *v = pv_alloc_array(ld * ld, sizeof *v);
    double *ev = pv_alloc_array(ld, sizeof *ev), *tmp = pv_alloc_array((ld + 1) * ld, sizeof *tmp);
    double *row = pv_alloc_array(ld, sizeof *row), theta[3 + LOBPCG_PAD];
    if (!s || !as || !xn || !g || !v || !ev || !tmp || !row)
        goto done;
    uint64_t st = seed ^ 0x10b9c9ull;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < p; c++)
            s[i * ld + c] = pv_rand_unit(&st) - 0.5;
    project_out(s, ld, n, 0, 0, p, v0, tmp);
    rc = 1;
    if (svqb(s, ld, n, 0, p, g, ev, v, row) < p)
        goto done;
    size_t np = 0; /* columns in P */
    spmv(op, s, as, ld, 0, p, nt);
    gram(s, ld, 0, p, as, ld, 0, p, n, g);
    for (size_t c = 0; c < p; c++)
        theta[c] = g[c * p + c];
    for (int it = 0; it < LOBPCG_MAX_ITER; it++) {
        /* R = M X - X theta (X: Ritz vectors after the first step, M X in
         * the first p columns of as) */
        double worst = 0;
        for (size_t c = 0; c < p; c++) {
            double r2 = 0;
            for (size_t i = 0; i < n; i++) {
                double r = as[i * ld + c] - theta[c] * s[i * ld + c];
                s[i * ld + p + c] = r;
                r2 += r * r;
            }
            if (c < dims && sqrt(r2) > worst)
                worst = sqrt(r2);
        }
        if (it > 0 && worst < LOBPCG_TOL) {
            rc = 0;
            break;
        }
        /* [R, P] (contiguous from column p) orthogonal to v0 and X, then
         * orthonormal; twice */
        size_t mb = p + np;
        for (int pass = 0; pass < 2 && mb > 0; pass++) {
            project_out(s, ld, n, p, p, mb, v0, tmp);
            mb = svqb(s, ld, n, p, mb, g, ev, v, row);
        }
        size_t m = p + mb;
        spmv(op, s, as, ld, p, mb, nt);
        gram(s, ld, 0, m, as, ld, 0, m, n, g);
        for (size_t i = 0; i < m; i++)
            for (size_t j = i + 1; j < m; j++)
                g[i * m + j] = g[j * m + i] = 0.5 * (g[i * m + j] + g[j * m + i]);
        linalg_jacobi_eig(g, m, ev, v);
        for (size_t c = 0; c < p; c++)
            theta[c] = ev[c];
        /* X' = S C, M X' = (M S) C, P' = S[:, p:] C[p:, :] (C: the top p
         * columns of v) */
        for (size_t i = 0; i < n; i++) {
            double *si = s + i * ld, *ai = as + i * ld, *xi = xn + i * 2 * p;
            for (size_t c = 0; c < p; c++) {
                double ax = 0, ap = 0, aa = 0;
                for (size_t r = 0; r < m; r++) {
                    double t = si[r] * v[r * m + c];
                    aa += ai[r] * v[r * m + c];
                    if (r < p)
                        ax += t;
                    else
                        ap += t;
                }
                xi[c] = ax + ap;
                xi[p + c] = ap;
                row[c] = aa;
            }
            memcpy(ai, row, p * sizeof *ai);
        }
        for (size_t i = 0; i < n; i++) {
            memcpy(s + i * ld, xn + i * 2 * p, p * sizeof *s);
            memcpy(s + i * ld + 2 * p, xn + i * 2 * p + p, p * sizeof *s);
        }
        np = mb > 0 ? p : 0;
    }
    if (rc == 0) {
        /* the Ritz vectors by descending theta */
        size_t order[3 + LOBPCG_PAD];
        for (size_t c = 0; c < p; c++)
            order[c] = c;
        for (size_t c = 0; c < p; c++)
            for (size_t d = c + 1; d < p; d++)
                if (theta[order[d]] > theta[order[c]]) {
                    size_t t = order[c];
                    order[c] = order[d];
                    order[d] = t;
                }
        for (size_t i = 0; i < n; i++)
            for (uint32_t d = 0; d < dims; d++)
                out[i * dims + d] = s[i * ld + order[d]];
    }
done:
    free(s);
    free(as);
    free(xn);
    free(g);
    free(v);
    free(ev);
    free(tmp);
    free(row);
    return rc;
}

/* The layout of one connected component given as a CSR: 0, 1 (not
 * converged), PV_ENOMEM. out: n x dims (double). */
static int spectral_component(const size_t *rowptr, const uint32_t *col, const float *val,
                              size_t n, uint32_t dims, uint64_t seed, unsigned nt, double *out)
{
    int rc = PV_ENOMEM;
    double *dinv = pv_alloc_array(n, sizeof *dinv), *v0 = pv_alloc_array(n, sizeof *v0);
    double *xb = pv_alloc_array(n, 3 * (3 + LOBPCG_PAD) * sizeof *xb);
    float *mval = pv_alloc_array(rowptr[n] ? rowptr[n] : 1, sizeof *mval);
    if (!dinv || !v0 || !xb || !mval)
        goto done;
    double nrm = 0;
    for (size_t i = 0; i < n; i++) {
        double d = 0;
        for (size_t e = rowptr[i]; e < rowptr[i + 1]; e++)
            d += val[e];
        dinv[i] = d > 0 ? 1 / sqrt(d) : 0;
        v0[i] = sqrt(d);
        nrm += d;
    }
    for (size_t i = 0; i < n; i++) {
        v0[i] /= sqrt(nrm);
        for (size_t e = rowptr[i]; e < rowptr[i + 1]; e++)
            mval[e] = (float)(dinv[i] * val[e] * dinv[col[e]]);
    }
    csr_op op = {rowptr, col, val, dinv, mval, xb, n};
    if (n <= DENSE_MAX)
        rc = spectral_dense(&op, dims, out);
    else
        rc = spectral_lobpcg(&op, v0, dims, seed, nt, out);
done:
    free(dinv);
    free(v0);
    free(xb);
    free(mval);
    return rc;
}

/* ---- components and their placement ---------------------------------------- */

int umap_components(const umap_graph *g, uint32_t *comp, uint32_t *ncomp)
{
    size_t n = g->n;
    uint32_t *stack = pv_alloc_array(n ? n : 1, sizeof *stack), nc = 0;
    if (!stack)
        return PV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        comp[i] = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        if (comp[i] != UINT32_MAX)
            continue;
        size_t top = 0;
        stack[top++] = (uint32_t)i;
        comp[i] = nc;
        while (top) {
            uint32_t u = stack[--top];
            for (size_t e = g->rowptr[u]; e < g->rowptr[u + 1]; e++)
                if (comp[g->col[e]] == UINT32_MAX) {
                    comp[g->col[e]] = nc;
                    stack[top++] = g->col[e];
                }
        }
        nc++;
    }
    *ncomp = nc;
    free(stack);
    return 0;
}

typedef struct comp_size {
    uint32_t id, size;
} comp_size;

static int comp_size_cmp(const void *x, const void *y)
{
    const comp_size *p = x, *q = y;
    if (p->size != q->size)
        return p->size > q->size ? -1 : 1;
    return p->id < q->id ? -1 : p->id > q->id;
}

int umap_spectral_init(const umap_graph *g, uint32_t dims, uint64_t seed, unsigned nthreads,
                       float *y)
{
    const size_t n = g->n;
    const unsigned nt = par_threads(nthreads, PAR_MAX_THREADS);
    int rc = PV_ENOMEM;
    uint32_t *comp = pv_alloc_array(n, sizeof *comp), nc = 0;
    uint32_t *local = NULL, *members = NULL, *sub_col = NULL;
    size_t *start = NULL, *sub_rowptr = NULL;
    float *sub_val = NULL;
    double *out = pv_alloc_array(n, dims * sizeof *out), *meta = NULL, *range = NULL;
    comp_size *cs = NULL;
    if (!comp || !out || dims < 1 || dims > 3)
        goto done;
    if ((rc = umap_components(g, comp, &nc)))
        goto done;
    if (nc == 1) {
        if (n < (size_t)dims + 2) {
            rc = 1;
            goto done;
        }
        rc = spectral_component(g->rowptr, g->col, g->val, n, dims, seed, nt, out);
        if (rc == 0)
            for (size_t i = 0; i < n * dims; i++)
                y[i] = (float)out[i];
        goto done;
    }
    rc = PV_ENOMEM;
    meta = pv_calloc_array(nc, dims * sizeof *meta);
    range = pv_alloc_array(nc, sizeof *range);
    cs = pv_calloc_array(nc, sizeof *cs);
    start = pv_alloc_array((size_t)nc + 1, sizeof *start);
    members = pv_alloc_array(n, sizeof *members);
    local = pv_alloc_array(n, sizeof *local);
    sub_rowptr = pv_alloc_array(n + 1, sizeof *sub_rowptr);
    sub_col = pv_alloc_array(g->rowptr[n] ? g->rowptr[n] : 1, sizeof *sub_col);
    sub_val = pv_alloc_array(g->rowptr[n] ? g->rowptr[n] : 1, sizeof *sub_val);
    if (!meta || !range || !cs || !start || !members || !local || !sub_rowptr || !sub_col ||
        !sub_val)
        goto done;
    for (uint32_t c = 0; c < nc; c++)
        cs[c].id = c;
    for (size_t i = 0; i < n; i++)
        cs[comp[i]].size++;
    /* members grouped by component, in vertex order */
    start[0] = 0;
    for (uint32_t c = 0; c < nc; c++)
        start[c + 1] = start[c] + cs[c].size;
    {
        size_t *cur = sub_rowptr; /* borrowed as cursors */
        for (uint32_t c = 0; c < nc; c++)
            cur[c] = start[c];
        for (size_t i = 0; i < n; i++) {
            local[i] = (uint32_t)(cur[comp[i]] - start[comp[i]]);
            members[cur[comp[i]]++] = (uint32_t)i;
        }
    }
    /* meta positions */
    if (nc <= 2 * dims) {
        uint32_t k = (nc + 1) / 2;
        for (uint32_t c = 0; c < nc; c++)
            meta[(size_t)c * dims + (c % k)] = c < k ? 1.0 : -1.0;
        for (uint32_t c = 0; c < nc; c++) {
            double best = INFINITY;
            for (uint32_t o = 0; o < nc; o++) {
                if (o == c)
                    continue;
                double d2 = 0;
                for (uint32_t d = 0; d < dims; d++) {
                    double t = meta[(size_t)c * dims + d] - meta[(size_t)o * dims + d];
                    d2 += t * t;
                }
                best = d2 < best ? d2 : best;
            }
            range[c] = sqrt(best) / 2;
        }
    } else {
        qsort(cs, nc, sizeof *cs, comp_size_cmp);
        uint32_t side = (uint32_t)ceil(pow((double)nc, 1.0 / dims) - 1e-9);
        while (pow((double)side, dims) < nc)
            side++;
        double spacing = side > 1 ? 2.0 / (side - 1) : 1.0;
        for (uint32_t r = 0; r < nc; r++) {
            uint32_t c = cs[r].id, t = r;
            for (uint32_t d = 0; d < dims; d++) {
                meta[(size_t)c * dims + d] = side > 1 ? -1.0 + spacing * (t % side) : 0;
                t /= side;
            }
            range[c] = spacing / 2;
        }
    }
    /* each component in its box */
    uint64_t st = seed ^ 0xc0e1a7ull;
    for (uint32_t c = 0; c < nc; c++) {
        size_t sz = start[c + 1] - start[c];
        const uint32_t *mem = members + start[c];
        int done_c = 0;
        if (sz >= 2 * (size_t)dims && sz > (size_t)dims + 1) {
            size_t w = 0;
            for (size_t q = 0; q < sz; q++) {
                uint32_t u = mem[q];
                sub_rowptr[q] = w;
                for (size_t e = g->rowptr[u]; e < g->rowptr[u + 1]; e++) {
                    sub_col[w] = local[g->col[e]];
                    sub_val[w++] = g->val[e];
                }
            }
            sub_rowptr[sz] = w;
            double *oc = out + start[c] * dims;
            int r = spectral_component(sub_rowptr, sub_col, sub_val, sz, dims, seed + c, nt, oc);
            if (r < 0) {
                rc = r;
                goto done;
            }
            if (r == 0) {
                double mx = 0;
                for (size_t q = 0; q < sz * dims; q++)
                    mx = fabs(oc[q]) > mx ? fabs(oc[q]) : mx;
                if (mx > 0) {
                    for (size_t q = 0; q < sz; q++)
                        for (uint32_t d = 0; d < dims; d++)
                            y[(size_t)mem[q] * dims + d] =
                                (float)(oc[q * dims + d] * (range[c] / mx) +
                                        meta[(size_t)c * dims + d]);
                    done_c = 1;
                }
            }
        }
        if (!done_c)
            for (size_t q = 0; q < sz; q++)
                for (uint32_t d = 0; d < dims; d++)
                    y[(size_t)mem[q] * dims + d] =
                        (float)(range[c] * (2 * pv_rand_unit(&st) - 1) +
                                meta[(size_t)c * dims + d]);
    }
    rc = 0;
done:
    free(comp);
    free(out);
    free(meta);
    free(range);
    free(cs);
    free(start);
    free(members);
    free(local);
    free(sub_rowptr);
    free(sub_col);
    free(sub_val);
    return rc;
}
