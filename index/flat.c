/*
 * flat.c - exact search over a chunked vector set: top-k and all-pairs
 * (index room).
 *
 * Both searches hand the arithmetic to OpenBLAS: top-k computes a block of
 * scores S = Q . X_c^T (queries x one chunk) with one sgemm per chunk and
 * query block (sgemv when the block is one query), then walks S once per query keeping a bounded min-heap of the
 * k best (the heap lives in the caller's hits array, so top-k allocates only
 * the score block). The heap root is the worst hit kept, so a score that
 * does not beat it costs one comparison; the filter is consulted only for a
 * score that would enter the heap. Hits are ordered by score, then by id
 * (lower first), so results are deterministic under ties.
 *
 * All-pairs is a blocked self-join: for chunk i against every chunk j >= i,
 * S = X_i . X_j^T by sgemm, and the pairs at or above the threshold are read
 * out of S. In the diagonal block (j == i) each row block multiplies only
 * against the columns to its right, which skips most of the lower triangle
 * and so nearly half of that block's arithmetic. The filter is asked once
 * per id, up front, into a keep map; chunks with nothing kept are skipped.
 *
 * Alignment: storage hands out chunk pointers into LMDB values, which are
 * only 2-byte aligned, and a float* that is not 4-byte aligned must not be
 * given to BLAS (its kernels may assume natural alignment). Such a chunk is
 * copied into an aligned scratch buffer first. Next to an sgemm over many
 * queries or chunks the copy is small; for one query it doubles the memory
 * traffic (measured ~16 ms instead of ~8.5 ms over 60000 x 784). Large
 * values live in LMDB overflow pages and start just past a page header, so
 * in practice they are aligned and the copy is the fallback. The queries
 * are treated the same way.
 */
#include "flat.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"

/* Floats in a score block: 4 MiB, which sits in L2/L3 while it is scanned
 * and is large enough that sgemm runs at full rate. */
#define FLAT_BLOCK_FLOATS (1u << 20)

/* Validates s; *maxn gets the fullest chunk's count, which sizes every
 * scratch buffer (a set's chunk_cap may be far above what it holds). */
static int set_check(const vec_set *s, uint32_t *maxn)
{
    *maxn = 0;
    if (!s || s->dim == 0 || s->dim > INT_MAX || s->chunk_cap == 0 ||
        s->chunk_cap > INT_MAX)
        return PV_EINVAL;
    if (s->nchunks == 0)
        return 0;
    if (!s->chunks || !s->n)
        return PV_EINVAL;
    /* Ids must fit in u32: the last id is nchunks*chunk_cap - 1 at most. */
    if ((uint64_t)s->nchunks * s->chunk_cap > (uint64_t)UINT32_MAX + 1)
        return PV_EINVAL;
    for (uint32_t c = 0; c < s->nchunks; c++) {
        if (s->n[c] > s->chunk_cap || (s->n[c] && !s->chunks[c]))
            return PV_EINVAL;
        if (s->n[c] > *maxn)
            *maxn = s->n[c];
    }
    return 0;
}

static int is_float_aligned(const void *p)
{
    return ((uintptr_t)p % _Alignof(float)) == 0;
}

/* p itself when it is aligned, else a copy of its n*dim floats in *buf
 * (allocated on first use with room for cap rows). NULL on ENOMEM. */
static const float *aligned_rows(const float *p, size_t n, size_t dim,
                                 size_t cap, float **buf)
{
    if (is_float_aligned(p))
        return p;
    if (!*buf) {
        *buf = pv_alloc_array(cap, dim * sizeof(float));
        if (!*buf)
            return NULL;
    }
    memcpy(*buf, (const void *)p, n * dim * sizeof(float));
    return *buf;
}

/* ---- top-k ---------------------------------------------------------------- */

/* The total order of hits: x is worse than (score, id) when its score is
 * lower, or equal with a higher id. */
static inline int hit_worse(const flat_hit *x, float score, uint32_t id)
{
    return x->score < score || (x->score == score && x->id > id);
}

static void heap_sift_down(flat_hit *h, uint32_t m, uint32_t i)
{
    flat_hit x = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= m)
            break;
        /* Follow the worse child: the root must stay the worst. */
        if (c + 1 < m && hit_worse(&h[c + 1], h[c].score, h[c].id))
            c++;
        if (!hit_worse(&h[c], x.score, x.id))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_sift_up(flat_hit *h, uint32_t i)
{
    flat_hit x = h[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!hit_worse(&x, h[p].score, h[p].id))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

/* Offer n scores (ids base..base+n-1) to the heap h of capacity k holding
 * *cnt hits. NaN scores never enter: they have no place in the order. */
static void heap_offer(flat_hit *h, uint32_t *cnt, uint32_t k,
                       const float *s, uint32_t n, uint32_t base,
                       flat_filter keep, void *ctx)
{
    uint32_t m = *cnt;
    for (uint32_t i = 0; i < n; i++) {
        float sc = s[i];
        uint32_t id = base + i;
        if (m == k) {
            if (!hit_worse(&h[0], sc, id))
                continue;
        } else if (isnan(sc)) {
            continue;
        }
        if (keep && !keep(ctx, id))
            continue;
        if (m < k) {
            h[m].id = id;
            h[m].score = sc;
            heap_sift_up(h, m++);
        } else {
            h[0].id = id;
            h[0].score = sc;
            heap_sift_down(h, m, 0);
        }
    }
    *cnt = m;
}

void flat_heap_offer(flat_hit *h, uint32_t *cnt, uint32_t k, uint32_t id,
                     float score)
{
    heap_offer(h, cnt, k, &score, 1, id, NULL, NULL);
}

/* Heap sort: popping the worst to the end leaves the array best first. */
void flat_heap_sort(flat_hit *h, uint32_t m)
{
    while (m > 1) {
        flat_hit t = h[0];
        h[0] = h[m - 1];
        h[m - 1] = t;
        heap_sift_down(h, --m, 0);
    }
}

int flat_topk(const vec_set *set, const float *queries, uint32_t nq,
              uint32_t k, flat_filter keep, void *keep_ctx, flat_hit *hits,
              uint32_t *nhits)
{
    float *scores = NULL, *qbuf = NULL, *xbuf = NULL;
    uint32_t maxn;
    int rc = set_check(set, &maxn);
    if (rc)
        return rc;
    if (nq == 0)
        return 0;
    if (!queries || !nhits || (k && !hits))
        return PV_EINVAL;
    for (uint32_t q = 0; q < nq; q++)
        nhits[q] = 0;
    if (k == 0 || maxn == 0)
        return 0;

    const size_t dim = set->dim, cap = maxn;
    const float *Q = aligned_rows(queries, nq, dim, nq, &qbuf);
    if (!Q) {
        rc = PV_ENOMEM;
        goto done;
    }
    /* Queries per block, so that a block of scores stays FLAT_BLOCK_FLOATS. */
    size_t qb = FLAT_BLOCK_FLOATS / cap;
    if (qb < 1)
        qb = 1;
    if (qb > nq)
        qb = nq;
    scores = pv_alloc_array(qb * cap, sizeof(float));
    if (!scores) {
        rc = PV_ENOMEM;
        goto done;
    }

    /* Chunks outside, query blocks inside: a chunk is copied (if it must
     * be) once, and stays in cache across the query blocks. Ids then reach
     * each heap in increasing order. */
    for (uint32_t c = 0; c < set->nchunks; c++) {
        const uint32_t n = set->n[c];
        if (n == 0)
            continue;
        const float *X = aligned_rows(set->chunks[c], n, dim, cap, &xbuf);
        if (!X) {
            rc = PV_ENOMEM;
            goto done;
        }
        const uint32_t base = c * set->chunk_cap;
        for (size_t q0 = 0; q0 < nq; q0 += qb) {
            size_t nb = nq - q0 < qb ? nq - q0 : qb;
            if (nb == 1) {
                /* One query: sgemv. On 60000 x 784 unit vectors in
                 * 1024-chunks (OpenBLAS 0.3.21, 2 threads) it took a median
                 * 8.4-9.4 ms against 13.3-14.9 ms for sgemm with M = 1,
                 * which gained nothing from a second thread; gemv runs at
                 * about the rate memory delivers the 188 MB of vectors. */
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)dim,
                            1.0f, X, (int)dim, Q + q0 * dim, 1, 0.0f, scores,
                            1);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb,
                            (int)n, (int)dim, 1.0f, Q + q0 * dim, (int)dim, X,
                            (int)dim, 0.0f, scores, (int)n);
            }
            for (size_t i = 0; i < nb; i++) {
                size_t q = q0 + i;
                heap_offer(hits + q * k, &nhits[q], k, scores + i * n, n,
                           base, keep, keep_ctx);
            }
        }
    }
    for (uint32_t q = 0; q < nq; q++)
        flat_heap_sort(hits + (size_t)q * k, nhits[q]);

done:
    free(scores);
    free(qbuf);
    free(xbuf);
    return rc;
}

/* ---- all pairs ------------------------------------------------------------ */

struct pair_buf {
    flat_pair **p; /* the caller's array, updated on every realloc */
    size_t len, cap;
};

static int pair_push(struct pair_buf *pb, uint32_t a, uint32_t b, float s)
{
    if (pb->len == pb->cap) {
        size_t ncap = pb->cap < 64 ? 64 : pb->cap * 2;
        if (ncap < pb->cap)
            return PV_ENOMEM;
        flat_pair *np = pv_realloc_array(*pb->p, ncap, sizeof(flat_pair));
        if (!np)
            return PV_ENOMEM;
        *pb->p = np;
        pb->cap = ncap;
    }
    flat_pair *e = &(*pb->p)[pb->len++];
    e->a = a;
    e->b = b;
    e->score = s;
    return 0;
}

/* On failure *npairs and *flops are left as they were; *pairs may have been
 * moved by realloc (it always points at the caller's live array), and what
 * lies past *npairs in it is not part of the answer. */
/* Nearest scores of one score row: *ba = max(*ba, row[c0..n)) and
 * bcol[c] = max(bcol[c], row[c]); separate loops the compiler vectorises
 * (one pass over scores the sgemm just wrote, still in cache). */
static void row_max(const float *row, size_t c0, size_t n, float *bcol, float *ba)
{
    float m = *ba;
    for (size_t c = c0; c < n; c++)
        m = row[c] > m ? row[c] : m;
    for (size_t c = c0; c < n; c++)
        bcol[c] = row[c] > bcol[c] ? row[c] : bcol[c];
    *ba = m;
}

static void row_max_kept(const float *row, size_t c0, size_t n, const uint8_t *kept,
                         float *bcol, float *ba)
{
    float m = *ba;
    for (size_t c = c0; c < n; c++) {
        if (!kept[c])
            continue;
        m = row[c] > m ? row[c] : m;
        bcol[c] = row[c] > bcol[c] ? row[c] : bcol[c];
    }
    *ba = m;
}

int flat_allpairs(const vec_set *set, float threshold, flat_filter keep,
                  void *keep_ctx, const uint8_t *side, float *best,
                  flat_pair **pairs, size_t *npairs, double *flops)
{
    return flat_allpairs_cancel(set, threshold, keep, keep_ctx, side, best, pairs, npairs,
                                flops, NULL);
}

int flat_allpairs_cancel(const vec_set *set, float threshold, flat_filter keep,
                         void *keep_ctx, const uint8_t *side, float *best,
                         flat_pair **pairs, size_t *npairs, double *flops,
                         const atomic_int *cancel)
{
    uint8_t *kept = NULL, *chunk_live = NULL;
    float *scores = NULL, *ibuf = NULL, *jbuf = NULL;
    double work = 0.0;
    uint32_t maxn;
    int rc = set_check(set, &maxn);
    if (rc)
        return rc;
    if (!pairs || !npairs || (*npairs && !*pairs) || isnan(threshold))
        return PV_EINVAL;

    const uint32_t nch = set->nchunks;
    /* Scratch is sized by the fullest chunk, and so is the keep map:
     * kept[c * cap + r] for the r-th vector of chunk c. */
    const size_t dim = set->dim, cap = maxn ? maxn : 1;
    /* Capacity is unknown to us; what the caller has is at least *npairs. */
    struct pair_buf pb = {pairs, *npairs, *npairs};

    chunk_live = pv_alloc_array(nch, 1);
    if (!chunk_live) {
        rc = PV_ENOMEM;
        goto done;
    }
    if (keep) {
        kept = pv_alloc_array(nch, cap);
        if (!kept) {
            rc = PV_ENOMEM;
            goto done;
        }
    }
    /* chunk_live[c]: 0 none kept, 1 some, 2 all (then no per-row test). */
    for (uint32_t c = 0; c < nch; c++) {
        uint8_t any = 0, all = 1;
        for (uint32_t r = 0; r < set->n[c]; r++) {
            uint8_t k = keep ? (keep(keep_ctx, c * set->chunk_cap + r) != 0) : 1;
            if (kept)
                kept[c * cap + r] = k;
            any |= k;
            all &= k;
        }
        chunk_live[c] = (uint8_t)(any + (any && all));
    }

    /* Rows of chunk i per sgemm: the score block (rows x <= cap) stays
     * FLAT_BLOCK_FLOATS. */
    size_t rb = FLAT_BLOCK_FLOATS / cap;
    if (rb < 1)
        rb = 1;
    if (rb > cap)
        rb = cap;
    scores = pv_alloc_array(rb * cap, sizeof(float));
    if (!scores) {
        rc = PV_ENOMEM;
        goto done;
    }

    for (uint32_t i = 0; i < nch; i++) {
        const size_t ni = set->n[i];
        if (!ni || !chunk_live[i])
            continue;
        const float *Xi = aligned_rows(set->chunks[i], ni, dim, cap, &ibuf);
        if (!Xi) {
            rc = PV_ENOMEM;
            goto done;
        }
        const uint32_t ibase = i * set->chunk_cap;
        const uint8_t *ikept = kept && chunk_live[i] != 2 ? kept + i * cap : NULL;
        for (uint32_t j = i; j < nch; j++) {
            const size_t nj = set->n[j];
            if (!nj || !chunk_live[j])
                continue;
            if (pv_stop_requested(cancel)) {
                rc = PV_EINTR;
                goto done;
            }
            const float *Xj = Xi;
            if (j != i) {
                Xj = aligned_rows(set->chunks[j], nj, dim, cap, &jbuf);
                if (!Xj) {
                    rc = PV_ENOMEM;
                    goto done;
                }
            }
            const uint32_t jbase = j * set->chunk_cap;
            const uint8_t *jkept = kept && chunk_live[j] != 2 ? kept + j * cap : NULL;
            for (size_t r0 = 0; r0 < ni; r0 += rb) {
                size_t rows = ni - r0 < rb ? ni - r0 : rb;
                /* Diagonal block: row r pairs only with columns > r, so
                 * this row block needs columns r0+1 .. nj-1 alone. */
                size_t c0 = (j == i) ? r0 + 1 : 0;
                if (c0 >= nj)
                    continue;
                size_t cols = nj - c0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows,
                            (int)cols, (int)dim, 1.0f, Xi + r0 * dim, (int)dim,
                            Xj + c0 * dim, (int)dim, 0.0f, scores, (int)cols);
                work += 2.0 * (double)rows * (double)cols * (double)dim;

                for (size_t r = 0; r < rows; r++) {
                    if (ikept && !ikept[r0 + r])
                        continue;
                    uint32_t a = ibase + (uint32_t)(r0 + r);
                    const float *row = scores + r * cols;
                    /* In the diagonal block, column cc is id c0+cc; the
                     * first one above a is a+1-ibase, i.e. cc = r. */
                    size_t cc = (j == i) ? r : 0;
                    if (!side) {
                        const size_t cc0 = cc;
                        for (; cc < cols; cc++) {
                            if (!(row[cc] >= threshold))
                                continue;
                            if (jkept && !jkept[c0 + cc])
                                continue;
                            uint32_t b = jbase + (uint32_t)(c0 + cc);
                            rc = pair_push(&pb, a, b, row[cc]);
                            if (rc)
                                goto done;
                        }
                        if (best && !jkept)
                            row_max(row, cc0, cols, best + jbase + c0, &best[a]);
                        else if (best)
                            row_max_kept(row, cc0, cols, jkept + c0, best + jbase + c0,
                                         &best[a]);
                        continue;
                    }
                    /* Sides and nearest scores: every kept pair is looked
                     * at, not only those above the threshold. */
                    const uint8_t sa = side ? side[a] : 0;
                    float ba = best ? best[a] : 0.0f;
                    for (; cc < cols; cc++) {
                        uint32_t b = jbase + (uint32_t)(c0 + cc);
                        float sc = row[cc];
                        if ((jkept && !jkept[c0 + cc]) || (side && side[b] == sa))
                            continue;
                        if (best) {
                            if (sc > ba)
                                ba = sc;
                            if (sc > best[b])
                                best[b] = sc;
                        }
                        if (sc >= threshold && (rc = pair_push(&pb, a, b, sc)) != 0)
                            goto done;
                    }
                    if (best)
                        best[a] = ba;
                }
            }
        }
    }
    *npairs = pb.len;
    if (flops)
        *flops = work;

done:
    free(kept);
    free(chunk_live);
    free(scores);
    free(ibuf);
    free(jbuf);
    return rc;
}
