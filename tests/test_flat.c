/*
 * test_flat.c - exact top-k, all-pairs and union-find (index/flat.c) against
 * brute-force double-precision references.
 *
 * Two kinds of data: small-integer vectors, whose dot products are exact in
 * float whatever order BLAS sums in, so answers must match the reference
 * bit for bit (including the order of ties); and random real vectors,
 * compared within a tolerance. Each chunk is its own allocation of exactly
 * its data, optionally at a 2-byte offset as LMDB values may be, so ASan
 * sees any read past a partly full last chunk.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat.h"
#include "pixvec.h"

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double rng_gauss(void)
{
    double u = (double)((rng_next() >> 11) + 1) / 9007199254740993.0;
    double v = (double)(rng_next() >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void unit_rows(float *x, size_t n, size_t dim)
{
    for (size_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (size_t d = 0; d < dim; d++)
            ss += (double)x[i * dim + d] * x[i * dim + d];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (size_t d = 0; d < dim; d++)
            x[i * dim + d] = (float)(x[i * dim + d] * inv);
    }
}

static float *random_unit(size_t n, size_t dim)
{
    float *x = malloc(n * dim * sizeof(float));
    cr_assert_not_null(x);
    for (size_t i = 0; i < n * dim; i++)
        x[i] = (float)rng_gauss();
    unit_rows(x, n, dim);
    return x;
}

static float *random_ints(size_t n, size_t dim, int lo, int hi)
{
    float *x = malloc(n * dim * sizeof(float));
    cr_assert_not_null(x);
    for (size_t i = 0; i < n * dim; i++)
        x[i] = (float)(lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)));
    return x;
}

/* A vec_set over a copy of data (nvec x dim) in chunks of cap, each chunk a
 * separate block of exactly its bytes, the floats starting `misalign` bytes
 * into it. */
typedef struct tset {
    vec_set set;
    const float **ptrs;
    uint32_t *n;
    char **blocks;
} tset;

static void tset_build(tset *t, const float *data, uint32_t nvec, uint32_t dim,
                       uint32_t cap, size_t misalign)
{
    uint32_t nch = (nvec + cap - 1) / cap;
    t->ptrs = calloc(nch + 1, sizeof *t->ptrs);
    t->n = calloc(nch + 1, sizeof *t->n);
    t->blocks = calloc(nch + 1, sizeof *t->blocks);
    cr_assert(t->ptrs && t->n && t->blocks);
    for (uint32_t c = 0; c < nch; c++) {
        uint32_t n = nvec - c * cap < cap ? nvec - c * cap : cap;
        size_t bytes = (size_t)n * dim * sizeof(float);
        t->blocks[c] = malloc(misalign + bytes);
        cr_assert_not_null(t->blocks[c]);
        memcpy(t->blocks[c] + misalign, data + (size_t)c * cap * dim, bytes);
        t->ptrs[c] = (const float *)(const void *)(t->blocks[c] + misalign);
        t->n[c] = n;
    }
    t->set.chunks = t->ptrs;
    t->set.n = t->n;
    t->set.nchunks = nch;
    t->set.chunk_cap = cap;
    t->set.dim = dim;
}

static void tset_free(tset *t)
{
    for (uint32_t c = 0; c < t->set.nchunks; c++)
        free(t->blocks[c]);
    free(t->blocks);
    free(t->ptrs);
    free(t->n);
}

/* Keeps ids not divisible by mod (mod 0 keeps all); counts its calls. */
typedef struct keep_ctx {
    uint32_t mod;
    uint64_t calls;
    uint32_t *per_id; /* may be NULL */
} keep_ctx;

static int keep_mod(void *ctx, uint32_t id)
{
    keep_ctx *k = ctx;
    k->calls++;
    if (k->per_id)
        k->per_id[id]++;
    return k->mod == 0 || id % k->mod != 0;
}

static int keep_none(void *ctx, uint32_t id)
{
    (void)id;
    ((keep_ctx *)ctx)->calls++;
    return 0;
}

static int kept(uint32_t mod, uint32_t id)
{
    return mod == 0 || id % mod != 0;
}

static double dot_d(const float *a, const float *b, size_t dim)
{
    double s = 0.0;
    for (size_t d = 0; d < dim; d++)
        s += (double)a[d] * b[d];
    return s;
}

typedef struct ref_hit {
    uint32_t id;
    double score;
} ref_hit;

static int ref_hit_cmp(const void *pa, const void *pb)
{
    const ref_hit *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Every kept id with its exact score, best first (score desc, id asc). */
static size_t ref_rank(const float *data, uint32_t nvec, uint32_t dim,
                       const float *q, uint32_t mod, ref_hit *out)
{
    size_t m = 0;
    for (uint32_t i = 0; i < nvec; i++) {
        if (!kept(mod, i))
            continue;
        out[m].id = i;
        out[m].score = dot_d(q, data + (size_t)i * dim, dim);
        m++;
    }
    qsort(out, m, sizeof *out, ref_hit_cmp);
    return m;
}

static void assert_sorted(const flat_hit *h, uint32_t n)
{
    for (uint32_t r = 1; r < n; r++) {
        cr_assert(h[r - 1].score > h[r].score ||
                      (h[r - 1].score == h[r].score && h[r - 1].id < h[r].id),
                  "hits %u and %u out of order", r - 1, r);
    }
}

/* ---- top-k ------------------------------------------------------------------ */

TestSuite(flat);

/* Integer data: exact scores and exact tie order, over chunk sizes from 1
 * (every chunk one vector) to more than the set, partial last chunks,
 * one and several queries, k from 1 to more than n, with and without a
 * filter, aligned and at a 2-byte offset. */
Test(flat, topk_integers_exact)
{
    enum { N = 300, DIM = 16, NQ = 5 };
    static const uint32_t caps[] = {1, 7, 256, 1000};
    static const uint32_t ks[] = {1, 10, 299, 400};
    static const uint32_t mods[] = {0, 3};
    float *data = random_ints(N, DIM, -3, 3);
    float *queries = random_ints(NQ, DIM, -2, 2);
    ref_hit *ref = malloc(N * sizeof *ref);
    flat_hit *hits = malloc((size_t)NQ * 400 * sizeof *hits);
    uint32_t nhits[NQ];
    cr_assert(ref && hits);

    for (size_t ci = 0; ci < 4; ci++)
        for (size_t mis = 0; mis <= 2; mis += 2) {
            tset t;
            tset_build(&t, data, N, DIM, caps[ci], mis);
            for (uint32_t nq = 1; nq <= NQ; nq += NQ - 1)
                for (size_t ki = 0; ki < 4; ki++)
                    for (size_t mi = 0; mi < 2; mi++) {
                        uint32_t k = ks[ki];
                        keep_ctx kc = {mods[mi], 0, NULL};
                        int rc = flat_topk(&t.set, queries, nq, k,
                                           mods[mi] ? keep_mod : NULL, &kc, hits,
                                           nhits);
                        cr_assert_eq(rc, 0);
                        for (uint32_t q = 0; q < nq; q++) {
                            size_t m = ref_rank(data, N, DIM, queries + q * DIM,
                                                mods[mi], ref);
                            uint32_t want = m < k ? (uint32_t)m : k;
                            cr_assert_eq(nhits[q], want, "cap %u nq %u k %u q %u",
                                         caps[ci], nq, k, q);
                            const flat_hit *h = hits + (size_t)q * k;
                            for (uint32_t r = 0; r < want; r++) {
                                cr_assert(kept(mods[mi], h[r].id));
                                cr_assert_eq(h[r].id, ref[r].id,
                                             "cap %u mis %zu nq %u k %u q %u rank %u",
                                             caps[ci], mis, nq, k, q, r);
                                cr_assert_eq((double)h[r].score, ref[r].score);
                            }
                            assert_sorted(h, nhits[q]);
                        }
                    }
            tset_free(&t);
        }
    free(data);
    free(queries);
    free(ref);
    free(hits);
}

/* Random unit vectors: scores within 1e-5 of the double reference; an id
 * may differ from the reference only where two reference scores are that
 * close. */
Test(flat, topk_random_vs_double)
{
    enum { N = 1000, DIM = 24, NQ = 5, K = 20 };
    static const uint32_t caps[] = {1, 7, 256};
    float *data = random_unit(N, DIM);
    float *queries = random_unit(NQ, DIM);
    ref_hit ref[N];
    flat_hit hits[NQ * K];
    uint32_t nhits[NQ];

    for (size_t ci = 0; ci < 3; ci++) {
        tset t;
        tset_build(&t, data, N, DIM, caps[ci], 2);
        for (uint32_t nq = 1; nq <= NQ; nq += NQ - 1) {
            cr_assert_eq(flat_topk(&t.set, queries, nq, K, NULL, NULL, hits, nhits), 0);
            for (uint32_t q = 0; q < nq; q++) {
                ref_rank(data, N, DIM, queries + q * DIM, 0, ref);
                cr_assert_eq(nhits[q], K);
                const flat_hit *h = hits + q * K;
                assert_sorted(h, K);
                for (uint32_t r = 0; r < K; r++) {
                    cr_assert(fabs(h[r].score - ref[r].score) <= 1e-5,
                              "cap %u q %u rank %u: %.8f vs %.8f", caps[ci], q, r,
                              (double)h[r].score, ref[r].score);
                    double own = dot_d(queries + q * DIM, data + (size_t)h[r].id * DIM, DIM);
                    cr_assert(h[r].id == ref[r].id || fabs(own - ref[r].score) <= 1e-5,
                              "cap %u q %u rank %u: id %u vs %u", caps[ci], q, r,
                              h[r].id, ref[r].id);
                }
            }
        }
        tset_free(&t);
    }
    free(data);
    free(queries);
}

/* The filter is consulted only for a candidate that would enter the heap. */
Test(flat, topk_filter_only_for_entrants)
{
    enum { N = 50, DIM = 4 };
    float data[N * DIM] = {0}, q[DIM] = {1, 0, 0, 0};
    flat_hit hits[3];
    uint32_t nh;
    tset t;

    /* Scores fall with the id: after the heap fills, nothing enters. */
    for (uint32_t i = 0; i < N; i++)
        data[i * DIM] = (float)(N - i);
    tset_build(&t, data, N, DIM, 8, 0);
    keep_ctx kc = {0, 0, NULL};
    cr_assert_eq(flat_topk(&t.set, q, 1, 1, keep_mod, &kc, hits, &nh), 0);
    cr_assert_eq(kc.calls, 1);
    cr_assert_eq(nh, 1);
    cr_assert_eq(hits[0].id, 0);
    kc.calls = 0;
    cr_assert_eq(flat_topk(&t.set, q, 1, 3, keep_mod, &kc, hits, &nh), 0);
    cr_assert_eq(kc.calls, 3);
    /* Rejecting id 0 costs one more call, for id 1 then id 2 ... */
    kc = (keep_ctx){2, 0, NULL}; /* keeps odd ids */
    cr_assert_eq(flat_topk(&t.set, q, 1, 1, keep_mod, &kc, hits, &nh), 0);
    cr_assert_eq(kc.calls, 2);
    cr_assert_eq(hits[0].id, 1);
    tset_free(&t);

    /* Scores rise with the id: every candidate beats the heap's worst. */
    for (uint32_t i = 0; i < N; i++)
        data[i * DIM] = (float)(i + 1);
    tset_build(&t, data, N, DIM, 8, 0);
    kc = (keep_ctx){0, 0, NULL};
    cr_assert_eq(flat_topk(&t.set, q, 1, 3, keep_mod, &kc, hits, &nh), 0);
    cr_assert_eq(kc.calls, N);
    cr_assert_eq(nh, 3);
    cr_assert_eq(hits[0].id, N - 1);
    cr_assert_eq(hits[2].id, N - 3);

    /* Equal scores: the lower ids win, and the rest are never asked about. */
    for (uint32_t i = 0; i < N; i++)
        data[i * DIM] = 1.0f;
    tset_free(&t);
    tset_build(&t, data, N, DIM, 8, 0);
    kc = (keep_ctx){0, 0, NULL};
    cr_assert_eq(flat_topk(&t.set, q, 1, 3, keep_mod, &kc, hits, &nh), 0);
    cr_assert_eq(kc.calls, 3);
    cr_assert(hits[0].id == 0 && hits[1].id == 1 && hits[2].id == 2);
    tset_free(&t);
}

/* Excluded ids never come back, even when the caller asks for all. */
Test(flat, topk_filter_excludes)
{
    enum { N = 200, DIM = 8 };
    float *data = random_unit(N, DIM);
    float *q = random_unit(2, DIM);
    flat_hit hits[2 * N];
    uint32_t nh[2];
    uint32_t per_id[N] = {0};
    tset t;
    tset_build(&t, data, N, DIM, 16, 2);
    keep_ctx kc = {4, 0, per_id};
    cr_assert_eq(flat_topk(&t.set, q, 2, N, keep_mod, &kc, hits, nh), 0);
    for (uint32_t qi = 0; qi < 2; qi++) {
        cr_assert_eq(nh[qi], N - N / 4);
        for (uint32_t r = 0; r < nh[qi]; r++)
            cr_assert_neq(hits[qi * N + r].id % 4, 0);
        assert_sorted(hits + qi * N, nh[qi]);
    }
    /* Heap never full: every id asked once per query. */
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(per_id[i], 2);
    tset_free(&t);
    free(data);
    free(q);
}

/* A chunk (or query array) at a 2-byte offset answers exactly as an
 * aligned one: it is copied before BLAS sees it. */
Test(flat, topk_misaligned_same_answers)
{
    enum { N = 777, DIM = 33, NQ = 5, K = 15 };
    float *data = random_unit(N, DIM);
    float *q = random_unit(NQ, DIM);
    flat_hit h0[NQ * K], h1[NQ * K];
    uint32_t n0[NQ], n1[NQ];
    tset ta, tm;
    tset_build(&ta, data, N, DIM, 100, 0);
    tset_build(&tm, data, N, DIM, 100, 2);
    char *qb = malloc(NQ * DIM * sizeof(float) + 2);
    cr_assert_not_null(qb);
    memcpy(qb + 2, q, NQ * DIM * sizeof(float));
    const float *qm = (const float *)(const void *)(qb + 2);
    for (uint32_t nq = 1; nq <= NQ; nq += NQ - 1) {
        cr_assert_eq(flat_topk(&ta.set, q, nq, K, NULL, NULL, h0, n0), 0);
        cr_assert_eq(flat_topk(&tm.set, qm, nq, K, NULL, NULL, h1, n1), 0);
        cr_assert_eq(memcmp(n0, n1, nq * sizeof n0[0]), 0);
        for (uint32_t i = 0; i < nq * K; i++) {
            cr_assert_eq(h0[i].id, h1[i].id, "nq %u slot %u", nq, i);
            cr_assert_eq(h0[i].score, h1[i].score);
        }
    }
    free(qb);
    tset_free(&ta);
    tset_free(&tm);
    free(data);
    free(q);
}

Test(flat, topk_nan_vector_never_returned)
{
    enum { N = 40, DIM = 8 };
    float *data = random_unit(N, DIM);
    float q[DIM];
    memcpy(q, data + 5 * DIM, sizeof q);
    data[5 * DIM + 3] = NAN; /* the vector the query is a copy of */
    flat_hit hits[N];
    uint32_t nh;
    tset t;
    tset_build(&t, data, N, DIM, 16, 0);
    cr_assert_eq(flat_topk(&t.set, q, 1, N, NULL, NULL, hits, &nh), 0);
    cr_assert_eq(nh, N - 1);
    for (uint32_t r = 0; r < nh; r++) {
        cr_assert_neq(hits[r].id, 5);
        cr_assert(!isnan(hits[r].score));
    }
    assert_sorted(hits, nh);
    tset_free(&t);
    free(data);
}

Test(flat, topk_edges_and_errors)
{
    enum { DIM = 4 };
    float data[3 * DIM] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    float q[2 * DIM] = {1, 0, 0, 0, 0, 0, 1, 0};
    flat_hit hits[8];
    uint32_t nh[2] = {99, 99};
    tset t;
    tset_build(&t, data, 3, DIM, 2, 0);
    keep_ctx kc = {0, 0, NULL};

    /* k = 0: no hits, filter never called. */
    cr_assert_eq(flat_topk(&t.set, q, 2, 0, keep_mod, &kc, hits, nh), 0);
    cr_assert(nh[0] == 0 && nh[1] == 0 && kc.calls == 0);
    /* nq = 0 is fine and touches nothing. */
    cr_assert_eq(flat_topk(&t.set, q, 0, 3, NULL, NULL, NULL, NULL), 0);
    /* Best hit of each query. */
    cr_assert_eq(flat_topk(&t.set, q, 2, 1, NULL, NULL, hits, nh), 0);
    cr_assert(nh[0] == 1 && hits[0].id == 0 && hits[0].score == 1.0f);
    cr_assert(nh[1] == 1 && hits[1].id == 2 && hits[1].score == 1.0f);
    /* An empty set answers nothing. */
    vec_set empty = {NULL, NULL, 0, 16, DIM};
    nh[0] = 7;
    cr_assert_eq(flat_topk(&empty, q, 1, 4, NULL, NULL, hits, nh), 0);
    cr_assert_eq(nh[0], 0);
    /* Empty chunks in the middle are skipped. */
    uint32_t counts[3] = {2, 0, 1};
    const float *ptrs[3] = {data, NULL, data + 2 * DIM};
    vec_set holes = {ptrs, counts, 3, 2, DIM};
    cr_assert_eq(flat_topk(&holes, q + DIM, 1, 4, NULL, NULL, hits, nh), 0);
    cr_assert_eq(nh[0], 3);
    cr_assert_eq(hits[0].id, 4); /* chunk 2, slot 0 */
    cr_assert_eq(hits[0].score, 1.0f);

    /* Malformed sets and arguments. */
    vec_set bad = t.set;
    bad.dim = 0;
    cr_assert_eq(flat_topk(&bad, q, 1, 1, NULL, NULL, hits, nh), PV_EINVAL);
    bad = t.set;
    bad.chunk_cap = 1; /* chunk 0 holds 2 > cap */
    cr_assert_eq(flat_topk(&bad, q, 1, 1, NULL, NULL, hits, nh), PV_EINVAL);
    const float *nullp[2] = {NULL, t.ptrs[1]};
    bad = t.set;
    bad.chunks = nullp;
    cr_assert_eq(flat_topk(&bad, q, 1, 1, NULL, NULL, hits, nh), PV_EINVAL);
    /* Three chunks of 2^31-1 ids would number past UINT32_MAX. */
    uint32_t zeros[3] = {0, 0, 0};
    const float *huge_ptrs[3] = {data, data, data};
    vec_set huge = {huge_ptrs, zeros, 3, 0x7fffffffu, DIM};
    cr_assert_eq(flat_topk(&huge, q, 1, 1, NULL, NULL, hits, nh), PV_EINVAL);
    huge.nchunks = 2; /* 2^32 - 2 ids: fine, and all empty */
    cr_assert_eq(flat_topk(&huge, q, 1, 1, NULL, NULL, hits, nh), 0);
    cr_assert_eq(nh[0], 0);
    cr_assert_eq(flat_topk(NULL, q, 1, 1, NULL, NULL, hits, nh), PV_EINVAL);
    cr_assert_eq(flat_topk(&t.set, NULL, 1, 1, NULL, NULL, hits, nh), PV_EINVAL);
    cr_assert_eq(flat_topk(&t.set, q, 1, 1, NULL, NULL, NULL, nh), PV_EINVAL);
    cr_assert_eq(flat_topk(&t.set, q, 1, 1, NULL, NULL, hits, NULL), PV_EINVAL);
    tset_free(&t);
}

/* ---- all pairs -------------------------------------------------------------- */

typedef struct ref_pair {
    uint32_t a, b;
    double score;
} ref_pair;

static int pair_cmp(const void *pa, const void *pb)
{
    const flat_pair *a = pa, *b = pb;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    return a->b < b->b ? -1 : a->b > b->b;
}

static ref_pair *ref_pairs(const float *data, uint32_t n, uint32_t dim,
                           double thr, uint32_t mod, size_t *np)
{
    size_t cap = 64, m = 0;
    ref_pair *p = malloc(cap * sizeof *p);
    cr_assert_not_null(p);
    for (uint32_t a = 0; a < n; a++) {
        if (!kept(mod, a))
            continue;
        for (uint32_t b = a + 1; b < n; b++) {
            if (!kept(mod, b))
                continue;
            double s = dot_d(data + (size_t)a * dim, data + (size_t)b * dim, dim);
            if (s < thr)
                continue;
            if (m == cap) {
                cap *= 2;
                p = realloc(p, cap * sizeof *p);
                cr_assert_not_null(p);
            }
            p[m++] = (ref_pair){a, b, s};
        }
    }
    *np = m;
    return p;
}

/* The float answers can only be compared with the double reference if no
 * pair sits within float rounding of the threshold. */
static void assert_separated(const float *data, uint32_t n, uint32_t dim, double thr)
{
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = a + 1; b < n; b++) {
            double s = dot_d(data + (size_t)a * dim, data + (size_t)b * dim, dim);
            cr_assert(fabs(s - thr) > 1e-4, "test data: (%u,%u) at %.6f", a, b, s);
        }
}

/* Same set of pairs as the reference (which is ordered by (a, b)), each
 * with a < b and a score within tol. */
static void assert_same_pairs(flat_pair *got, size_t ngot, const ref_pair *ref,
                              size_t nref, double tol, const char *what)
{
    qsort(got, ngot, sizeof *got, pair_cmp);
    cr_assert_eq(ngot, nref, "%s: %zu pairs, want %zu", what, ngot, nref);
    for (size_t i = 0; i < nref; i++) {
        cr_assert(got[i].a < got[i].b, "%s", what);
        cr_assert(got[i].a == ref[i].a && got[i].b == ref[i].b,
                  "%s: pair %zu is (%u,%u), want (%u,%u)", what, i, got[i].a,
                  got[i].b, ref[i].a, ref[i].b);
        cr_assert(fabs(got[i].score - ref[i].score) <= tol, "%s: (%u,%u) %.8f vs %.8f",
                  what, ref[i].a, ref[i].b, (double)got[i].score, ref[i].score);
    }
}

/* Random unit vectors with planted near-duplicates (a copy plus a little
 * noise), exact duplicates and a chain of three. */
static float *planted(uint32_t n, uint32_t dim)
{
    float *x = random_unit(n, dim);
    for (uint32_t p = 0; p < n / 10; p++) {
        uint32_t src = (uint32_t)(rng_next() % n), dst = (uint32_t)(rng_next() % n);
        if (src == dst)
            continue;
        for (uint32_t d = 0; d < dim; d++)
            x[(size_t)dst * dim + d] = x[(size_t)src * dim + d] + 0.03f * (float)rng_gauss();
        unit_rows(x + (size_t)dst * dim, 1, dim);
    }
    memcpy(x + 7 * dim, x + 3 * dim, dim * sizeof(float));          /* exact */
    memcpy(x + (n - 1) * dim, x + 0 * dim, dim * sizeof(float));    /* last id */
    return x;
}

Test(flat, allpairs_planted_vs_double)
{
    enum { N = 500, DIM = 32 };
    const float thr = 0.9f;
    static const uint32_t caps[] = {1, 7, 64, 499, 500, 1024};
    float *data = planted(N, DIM);
    size_t nref;
    ref_pair *ref = ref_pairs(data, N, DIM, thr, 0, &nref);
    cr_assert(nref >= 20, "only %zu planted pairs", nref);
    assert_separated(data, N, DIM, thr);

    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++)
        for (size_t mis = 0; mis <= 2; mis += 2) {
            tset t;
            tset_build(&t, data, N, DIM, caps[ci], mis);
            flat_pair *pairs = NULL;
            size_t np = 0;
            double flops = -1;
            cr_assert_eq(flat_allpairs(&t.set, thr, NULL, NULL, NULL, NULL, &pairs, &np, &flops), 0);
            char what[64];
            snprintf(what, sizeof what, "cap %u mis %zu", caps[ci], mis);
            assert_same_pairs(pairs, np, ref, nref, 1e-5, what);
            /* Every pair must have been multiplied at least once, and no
             * block more than the full square. */
            double lo = 2.0 * DIM * (N * (N - 1.0) / 2.0), hi = 2.0 * DIM * N * (double)N;
            cr_assert(flops >= lo && flops <= hi, "%s: flops %g not in [%g, %g]",
                      what, flops, lo, hi);
            free(pairs);
            tset_free(&t);
        }
    free(ref);
    free(data);
}

/* Integer vectors: exact scores, many of them exactly on the threshold,
 * which counts (score >= threshold). */
Test(flat, allpairs_integers_threshold_inclusive)
{
    enum { N = 200, DIM = 8 };
    static const uint32_t caps[] = {1, 3, 16, 199, 256};
    float *data = random_ints(N, DIM, -1, 1);
    size_t nref;
    ref_pair *ref = ref_pairs(data, N, DIM, 3.0, 0, &nref);
    size_t on = 0;
    for (size_t i = 0; i < nref; i++)
        on += ref[i].score == 3.0;
    cr_assert(on > 0 && on < nref, "data should put some pairs on the threshold");
    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
        tset t;
        tset_build(&t, data, N, DIM, caps[ci], 2);
        flat_pair *pairs = NULL;
        size_t np = 0;
        cr_assert_eq(flat_allpairs(&t.set, 3.0f, NULL, NULL, NULL, NULL, &pairs, &np, NULL), 0);
        char what[32];
        snprintf(what, sizeof what, "cap %u", caps[ci]);
        assert_same_pairs(pairs, np, ref, nref, 0.0, what);
        free(pairs);
        tset_free(&t);
    }
    free(ref);
    free(data);
}

Test(flat, allpairs_filter)
{
    enum { N = 300, DIM = 16 };
    static const uint32_t caps[] = {1, 10, 64};
    float *data = planted(N, DIM);
    size_t nref;
    ref_pair *ref = ref_pairs(data, N, DIM, 0.8, 5, &nref);
    cr_assert(nref > 0);
    assert_separated(data, N, DIM, 0.8);
    for (size_t ci = 0; ci < 3; ci++) {
        tset t;
        tset_build(&t, data, N, DIM, caps[ci], 0);
        uint32_t per_id[N] = {0};
        keep_ctx kc = {5, 0, per_id};
        flat_pair *pairs = NULL;
        size_t np = 0;
        cr_assert_eq(flat_allpairs(&t.set, 0.8f, keep_mod, &kc, NULL, NULL, &pairs, &np, NULL), 0);
        for (size_t i = 0; i < np; i++)
            cr_assert(pairs[i].a % 5 != 0 && pairs[i].b % 5 != 0);
        char what[32];
        snprintf(what, sizeof what, "cap %u", caps[ci]);
        assert_same_pairs(pairs, np, ref, nref, 1e-5, what);
        /* At most once per id per chunk pair the id is in. */
        for (uint32_t i = 0; i < N; i++)
            cr_assert(per_id[i] <= t.set.nchunks, "id %u asked %u times", i, per_id[i]);
        free(pairs);

        /* Nothing kept: no pairs, and no block worth multiplying. */
        keep_ctx none = {0, 0, NULL};
        double flops = -1;
        pairs = NULL;
        np = 0;
        cr_assert_eq(flat_allpairs(&t.set, -1.0f, keep_none, &none, NULL, NULL, &pairs, &np, &flops), 0);
        cr_assert_eq(np, 0);
        cr_assert_eq(flops, 0.0);
        cr_assert_gt(none.calls, 0);
        free(pairs);
        tset_free(&t);
    }
    free(ref);
    free(data);
}

/* Pairs are appended after what the array already holds. */
Test(flat, allpairs_appends)
{
    enum { N = 120, DIM = 8 };
    float *data = planted(N, DIM);
    size_t nref;
    ref_pair *ref = ref_pairs(data, N, DIM, 0.5, 0, &nref);
    assert_separated(data, N, DIM, 0.5);
    tset t;
    tset_build(&t, data, N, DIM, 32, 0);
    flat_pair *pairs = malloc(2 * sizeof *pairs);
    cr_assert_not_null(pairs);
    pairs[0] = (flat_pair){1000, 2000, 42.0f};
    pairs[1] = (flat_pair){3000, 4000, 43.0f};
    size_t np = 2;
    cr_assert_eq(flat_allpairs(&t.set, 0.5f, NULL, NULL, NULL, NULL, &pairs, &np, NULL), 0);
    cr_assert_eq(np, 2 + nref);
    cr_assert(pairs[0].a == 1000 && pairs[0].b == 2000 && pairs[0].score == 42.0f);
    cr_assert(pairs[1].a == 3000 && pairs[1].b == 4000 && pairs[1].score == 43.0f);
    assert_same_pairs(pairs + 2, np - 2, ref, nref, 1e-5, "append");
    free(pairs);
    tset_free(&t);
    free(ref);
    free(data);
}

Test(flat, allpairs_edges_and_errors)
{
    enum { DIM = 4 };
    float one[DIM] = {1, 0, 0, 0};
    flat_pair *pairs = NULL;
    size_t np = 0;
    double flops = -1;
    tset t;
    tset_build(&t, one, 1, DIM, 1, 0);
    /* A single vector has no pairs (and no self-pair). */
    cr_assert_eq(flat_allpairs(&t.set, -2.0f, NULL, NULL, NULL, NULL, &pairs, &np, &flops), 0);
    cr_assert_eq(np, 0);
    vec_set empty = {NULL, NULL, 0, 8, DIM};
    cr_assert_eq(flat_allpairs(&empty, 0.0f, NULL, NULL, NULL, NULL, &pairs, &np, &flops), 0);
    cr_assert_eq(np, 0);
    cr_assert_eq(flops, 0.0);
    cr_assert_eq(flat_allpairs(&t.set, NAN, NULL, NULL, NULL, NULL, &pairs, &np, NULL), PV_EINVAL);
    cr_assert_eq(flat_allpairs(&t.set, 0.5f, NULL, NULL, NULL, NULL, NULL, &np, NULL), PV_EINVAL);
    cr_assert_eq(flat_allpairs(&t.set, 0.5f, NULL, NULL, NULL, NULL, &pairs, NULL, NULL), PV_EINVAL);
    size_t bogus = 3; /* a count with no array */
    cr_assert_eq(flat_allpairs(&t.set, 0.5f, NULL, NULL, NULL, NULL, &pairs, &bogus, NULL), PV_EINVAL);
    vec_set bad = t.set;
    bad.dim = 0;
    cr_assert_eq(flat_allpairs(&bad, 0.5f, NULL, NULL, NULL, NULL, &pairs, &np, NULL), PV_EINVAL);
    /* A huge chunk_cap holding little: scratch follows what is held. */
    float two[2 * DIM] = {1, 0, 0, 0, 1, 0, 0, 0};
    uint32_t counts[2] = {1, 1};
    const float *ptrs[2] = {two, two + DIM};
    vec_set sparse = {ptrs, counts, 2, 0x7fffffffu, DIM};
    keep_ctx kc = {0, 0, NULL};
    cr_assert_eq(flat_allpairs(&sparse, 0.5f, keep_mod, &kc, NULL, NULL, &pairs, &np, &flops), 0);
    cr_assert_eq(np, 1);
    cr_assert(pairs[0].a == 0 && pairs[0].b == 0x7fffffffu && pairs[0].score == 1.0f);
    cr_assert_eq(kc.calls, 2);
    sparse.nchunks = 3; /* ids past UINT32_MAX */
    cr_assert_eq(flat_allpairs(&sparse, 0.5f, NULL, NULL, NULL, NULL, &pairs, &np, NULL), PV_EINVAL);
    free(pairs);
    tset_free(&t);
}

/* Sides and nearest scores (the dups scan's --across and histograms):
 * against a double-precision brute force, with and without a keep filter,
 * over chunk sizes that split the set unevenly. */
Test(flat, allpairs_sides_and_nearest_scores)
{
    enum { N = 300, DIM = 24 };
    const float thr = 0.9f;
    static const uint32_t caps[] = {7, 64, 300};
    float *data = planted(N, DIM);
    uint8_t side[N];
    for (uint32_t i = 0; i < N; i++)
        side[i] = (uint8_t)(1 + (i * 7919u) % 3 % 2); /* 1 or 2, mixed */
    for (size_t ci = 0; ci < 3; ci++)
        for (uint32_t mod = 0; mod <= 5; mod += 5)
            for (int use_side = 0; use_side <= 1; use_side++) {
                tset t;
                keep_ctx kc = {mod, 0, NULL};
                float best[N];
                flat_pair *pairs = NULL;
                size_t np = 0;
                for (uint32_t i = 0; i < N; i++)
                    best[i] = -2.0f;
                tset_build(&t, data, N, DIM, caps[ci], 0);
                cr_assert_eq(flat_allpairs(&t.set, thr, keep_mod, &kc, use_side ? side : NULL,
                                           best, &pairs, &np, NULL),
                             0);
                size_t want = 0;
                for (uint32_t a = 0; a < N; a++) {
                    double b_ref = -2.0;
                    for (uint32_t b = 0; b < N; b++) {
                        if (b == a || !kept(mod, a) || !kept(mod, b) ||
                            (use_side && side[a] == side[b]))
                            continue;
                        double s = dot_d(data + (size_t)a * DIM, data + (size_t)b * DIM, DIM);
                        b_ref = s > b_ref ? s : b_ref;
                        want += b > a && s >= thr + 1e-5;
                    }
                    cr_assert(fabs(best[a] - b_ref) < 1e-5, "cap %u mod %u side %d id %u: %f vs %f",
                              caps[ci], mod, use_side, a, best[a], b_ref);
                }
                for (size_t p = 0; p < np; p++) {
                    cr_assert(kept(mod, pairs[p].a) && kept(mod, pairs[p].b));
                    cr_assert(!use_side || side[pairs[p].a] != side[pairs[p].b]);
                }
                cr_assert_geq(np, want, "every pair clearly above the threshold is found");
                free(pairs);
                tset_free(&t);
            }
    free(data);
}
