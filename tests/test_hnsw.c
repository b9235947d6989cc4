/*
 * test_hnsw.c - the HNSW graph (index/hnsw.c) on an in-memory hnsw_io:
 * recall@10 against brute force on clustered unit vectors, the shape of the
 * graph (link counts within M0 / M, no self or duplicate links, links only
 * to nodes that have the level), tombstones (never returned, still walked
 * through), edge cases (empty graph, k > n), the level distribution, and
 * reproducibility (same seed, same graph).
 *
 * The in-memory graph keeps vectors and level-0 link records at a 2-byte
 * offset inside their buffers, as LMDB values may be, so a dereference of
 * a misaligned float or u32 pointer in hnsw.c shows up under UBSan.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw.h"
#include "pixvec.h"
#include "vec.h"

/* ---- deterministic random numbers ----------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static double rng_uniform(uint64_t *s) /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_gauss(uint64_t *s) /* Box-Muller */
{
    double u = rng_uniform(s), v = rng_uniform(s);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* n unit vectors of dim d around `clusters` random centres; spread is the
 * noise per component relative to the centres' (1/sqrt(d) each). */
static float *clustered(uint32_t n, uint32_t d, uint32_t clusters,
                        float spread, uint64_t seed)
{
    float *c = malloc((size_t)clusters * d * sizeof(float));
    float *x = malloc((size_t)n * d * sizeof(float));
    cr_assert(c && x);
    for (size_t i = 0; i < (size_t)clusters * d; i++)
        c[i] = rng_gauss(&seed);
    for (uint32_t i = 0; i < n; i++) {
        const float *ci = c + (size_t)(rng_next(&seed) % clusters) * d;
        for (uint32_t j = 0; j < d; j++)
            x[(size_t)i * d + j] = ci[j] + spread * rng_gauss(&seed);
        cr_assert(vec_normalize(x + (size_t)i * d, d) > 0.0f);
    }
    free(c);
    return x;
}

/* ---- the in-memory graph --------------------------------------------------- */

#define OFF 2 /* byte offset of the vector and level-0 blocks */

typedef struct mem {
    uint32_t dim, M, M0, cap;
    char *vbuf;     /* vectors at vbuf + OFF, dim floats each */
    char *l0buf;    /* level 0 at l0buf + OFF: (1 + M0) u32 per node */
    uint32_t **up;  /* levels 1..L: (1 + M) u32 per level, or NULL */
    int8_t *level;  /* -1: not in the graph */
    uint8_t *del;   /* tombstone bitmap */
    uint64_t sets;  /* links_set calls */
} mem;

static char *l0rec(mem *g, uint32_t id)
{
    return g->l0buf + OFF + (size_t)id * (1 + g->M0) * sizeof(uint32_t);
}

static const float *m_vec(void *ctx, uint32_t id)
{
    mem *g = ctx;
    if (id >= g->cap)
        return NULL;
    return (const float *)(const void *)(g->vbuf + OFF +
                                         (size_t)id * g->dim * sizeof(float));
}

static int m_links_get(void *ctx, uint32_t id, uint32_t level,
                       const uint32_t **ids, uint32_t *n)
{
    mem *g = ctx;
    /* Plain tests, not cr_assert: this runs millions of times. */
    if (id >= g->cap || g->level[id] < 0)
        cr_assert_fail("links_get of node %u not in the graph", id);
    if ((int)level > g->level[id])
        return PV_EINVAL;
    const char *r = level == 0 ? l0rec(g, id)
                               : (const char *)(g->up[id] +
                                                (size_t)(level - 1) * (1 + g->M));
    memcpy(n, r, sizeof *n);
    *ids = (const uint32_t *)(const void *)(r + sizeof(uint32_t));
    return 0;
}

static int m_links_set(void *ctx, uint32_t id, uint32_t level,
                       const uint32_t *ids, uint32_t n)
{
    mem *g = ctx;
    if (id >= g->cap || g->level[id] < 0)
        cr_assert_fail("links_set of node %u not in the graph", id);
    if ((int)level > g->level[id] || n > (level ? g->M : g->M0))
        return PV_EINVAL;
    char *r = level == 0 ? l0rec(g, id)
                         : (char *)(g->up[id] + (size_t)(level - 1) * (1 + g->M));
    memcpy(r, &n, sizeof n);
    memcpy(r + sizeof(uint32_t), ids, (size_t)n * sizeof(uint32_t));
    g->sets++;
    return 0;
}

static int m_node_add(void *ctx, uint32_t id, uint32_t level)
{
    mem *g = ctx;
    cr_assert_lt(id, g->cap);
    cr_assert_eq(g->level[id], -1, "node %u added twice", id);
    g->level[id] = (int8_t)level;
    memset(l0rec(g, id), 0, sizeof(uint32_t));
    if (level) {
        g->up[id] = calloc((size_t)level * (1 + g->M), sizeof(uint32_t));
        cr_assert_not_null(g->up[id]);
    }
    return 0;
}

static int m_deleted(void *ctx, uint32_t id)
{
    mem *g = ctx;
    return (g->del[id / 8] >> (id % 8)) & 1;
}

static void mem_init(mem *g, const float *x, uint32_t cap, uint32_t dim,
                     uint32_t M)
{
    g->dim = dim;
    g->M = M;
    g->M0 = 2 * M;
    g->cap = cap;
    g->vbuf = malloc(OFF + (size_t)cap * dim * sizeof(float));
    g->l0buf = malloc(OFF + (size_t)cap * (1 + g->M0) * sizeof(uint32_t));
    g->up = calloc(cap, sizeof *g->up);
    g->level = malloc(cap);
    g->del = calloc((cap + 7) / 8, 1);
    g->sets = 0;
    cr_assert(g->vbuf && g->l0buf && g->up && g->level && g->del);
    memcpy(g->vbuf + OFF, x, (size_t)cap * dim * sizeof(float));
    memset(g->level, -1, cap);
}

static void mem_free(mem *g)
{
    for (uint32_t i = 0; i < g->cap; i++)
        free(g->up[i]);
    free(g->up);
    free(g->vbuf);
    free(g->l0buf);
    free(g->level);
    free(g->del);
}

static hnsw_io mem_io(mem *g)
{
    return (hnsw_io){g, m_vec, m_links_get, m_links_set, m_node_add, m_deleted,
                     QUANT_F32, NULL, NULL, 0};
}

static void mem_delete(mem *g, uint32_t id)
{
    g->del[id / 8] |= (uint8_t)(1u << (id % 8));
}

static hnsw_params params(uint32_t dim)
{
    return (hnsw_params){16, 32, 200, dim};
}

/* Insert ids [from, to) of g, levels from the state's generator; with
 * nodel, through an io without a deleted callback. */
static void build_io(mem *g, const hnsw_params *p, hnsw_state *st,
                     hnsw_scratch *s, uint32_t from, uint32_t to, int nodel)
{
    hnsw_io io = mem_io(g);
    if (nodel)
        io.deleted = NULL;
    for (uint32_t i = from; i < to; i++) {
        uint32_t level = hnsw_random_level(st, p);
        int rc = hnsw_insert(p, st, &io, s, i, level);
        cr_assert_eq(rc, 0, "insert %u: %d", i, rc);
    }
}

static void build(mem *g, const hnsw_params *p, hnsw_state *st,
                  hnsw_scratch *s, uint32_t from, uint32_t to)
{
    build_io(g, p, st, s, from, to, 0);
}

/* ---- checks ------------------------------------------------------------- */

/* Every list within its bound, no self link, no duplicate, every target in
 * the graph at that level; the entry point has the top level. */
static void check_graph(mem *g, const hnsw_state *st)
{
    uint32_t *seen = calloc(st->nodes, sizeof *seen), stamp = 0;
    uint32_t at[HNSW_MAX_LEVEL] = {0}; /* nodes on each level */
    int top = -1;
    cr_assert_not_null(seen);
    for (uint32_t id = 0; id < st->nodes; id++)
        for (int l = 0; l <= g->level[id]; l++)
            at[l]++;
    for (uint32_t id = 0; id < st->nodes; id++) {
        cr_assert_geq(g->level[id], 0);
        if (g->level[id] > top)
            top = g->level[id];
        for (int l = 0; l <= g->level[id]; l++) {
            const uint32_t *ids;
            uint32_t n;
            cr_assert_eq(m_links_get(g, id, (uint32_t)l, &ids, &n), 0);
            cr_assert_leq(n, l ? g->M : g->M0, "node %u level %d: %u links",
                          id, l, n);
            /* Alone on its level a node has nobody to link to; otherwise
             * the heuristic always keeps at least the closest. */
            if (at[l] > 1)
                cr_assert_gt(n, 0, "node %u level %d has no links", id, l);
            stamp++;
            for (uint32_t j = 0; j < n; j++) {
                uint32_t t;
                memcpy(&t, ids + j, sizeof t);
                cr_assert_lt(t, st->nodes);
                cr_assert_neq(t, id, "self link at node %u", id);
                cr_assert_geq(g->level[t], l, "link to %u above its level", t);
                cr_assert_neq(seen[t], stamp, "duplicate link %u->%u", id, t);
                seen[t] = stamp;
            }
        }
    }
    cr_assert_eq((int)st->max_level, top);
    cr_assert_eq(g->level[st->entry], top);
    free(seen);
}

/* Exact top-k of q over the live nodes [0, n), best first. */
static void brute(const mem *g, uint32_t n, const float *q, uint32_t k,
                  uint32_t *out)
{
    float *best = malloc(k * sizeof *best);
    uint32_t m = 0;
    cr_assert_not_null(best);
    for (uint32_t i = 0; i < n; i++) {
        if ((g->del[i / 8] >> (i % 8)) & 1)
            continue;
        float d = vec_dot(q, m_vec((void *)g, i), g->dim);
        if (m == k && d <= best[k - 1])
            continue;
        uint32_t j = m < k ? m++ : k - 1;
        while (j > 0 && best[j - 1] < d) {
            best[j] = best[j - 1];
            out[j] = out[j - 1];
            j--;
        }
        best[j] = d;
        out[j] = i;
    }
    free(best);
}

/* Mean recall@k of hnsw_search over queries qs, against brute force over
 * the live nodes; also checks each answer (sorted, scores right, live). */
static double recall(mem *g, const hnsw_params *p, const hnsw_state *st,
                     hnsw_scratch *s, const float *qs, uint32_t nq,
                     uint32_t k, uint32_t ef)
{
    hnsw_io io = mem_io(g);
    hnsw_hit *hit = malloc(k * sizeof *hit);
    uint32_t *truth = malloc(k * sizeof *truth);
    uint64_t found = 0, total = 0;
    cr_assert(hit && truth);
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = qs + (size_t)qi * g->dim;
        uint32_t n = 0;
        cr_assert_eq(hnsw_search(p, st, &io, s, q, k, ef, hit, &n), 0);
        cr_assert_leq(n, k);
        for (uint32_t j = 0; j < n; j++) {
            cr_assert_eq(m_deleted(g, hit[j].id), 0, "deleted %u returned",
                         hit[j].id);
            cr_assert_float_eq(hit[j].score,
                               vec_dot(q, m_vec(g, hit[j].id), g->dim), 1e-6);
            if (j)
                cr_assert_geq(hit[j - 1].score, hit[j].score);
        }
        brute(g, st->nodes, q, k, truth);
        for (uint32_t j = 0; j < k; j++)
            for (uint32_t i = 0; i < n; i++)
                if (hit[i].id == truth[j]) {
                    found++;
                    break;
                }
        total += k;
    }
    free(hit);
    free(truth);
    return (double)found / (double)total;
}

/* Build n clustered vectors of dim d, check the graph, assert recall@10 >=
 * 0.95 at ef = 64 on held-out queries from the same distribution. */
static void recall_case(uint32_t n, uint32_t d, uint32_t clusters)
{
    const uint32_t nq = 200;
    float *x = clustered(n + nq, d, clusters, 1.5f, 42 + n);
    hnsw_params p = params(d);
    hnsw_state st;
    hnsw_scratch *s = hnsw_scratch_new();
    mem g;
    cr_assert_not_null(s);
    mem_init(&g, x, n, d, p.M);
    hnsw_state_init(&st, 7);
    build(&g, &p, &st, s, 0, n);
    cr_assert_eq(st.nodes, n);
    check_graph(&g, &st);
    double r = recall(&g, &p, &st, s, x + (size_t)n * d, nq, 10, 64);
    cr_log_info("hnsw n=%u d=%u M=16 efc=200 ef=64: recall@10 = %.4f "
                "(links_set per insert %.1f)",
                n, d, r, (double)g.sets / n);
    cr_assert_geq(r, 0.95, "recall@10 %.4f < 0.95", r);
    mem_free(&g);
    hnsw_scratch_free(s);
    free(x);
}

/* ---- tests --------------------------------------------------------------- */

Test(hnsw, recall_5000_d64)
{
    recall_case(5000, 64, 50);
}

Test(hnsw, recall_20000_d128)
{
    recall_case(20000, 128, 100);
}

/* Compact codes beside a mem graph's vectors: n codes of `bytes` each. */
static struct {
    const uint8_t *codes;
    size_t bytes;
} cg;

static const void *m_code(void *ctx, uint32_t id)
{
    (void)ctx;
    return cg.codes + (size_t)id * cg.bytes;
}

/* Searches through int8 and float16 codes of a graph built on float32: the
 * scores are the codes' own (the kernel's value for the hit's code), and
 * the top-10 re-scored in float32 from the ef candidates finds about what
 * a float32 search finds. */
Test(hnsw, search_scores_compact_codes)
{
    const uint32_t n = 5000, d = 64, nq = 200, k = 10, ef = 64;
    float *x = clustered(n + nq, d, 50, 1.5f, 4242);
    hnsw_params p = params(d);
    hnsw_state st;
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit *hit = malloc(ef * sizeof *hit);
    uint32_t truth[10];
    quant_i8 q8;
    uint8_t *c8 = malloc((size_t)n * d);
    uint16_t *c16 = malloc((size_t)n * d * 2);
    mem g;
    cr_assert(s && hit && c8 && c16);
    mem_init(&g, x, n, d, p.M);
    hnsw_state_init(&st, 7);
    build(&g, &p, &st, s, 0, n);
    cr_assert_eq(quant_i8_train(x, n, d, &q8), 0);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_geq(quant_i8_encode(&q8, x + (size_t)i * d, c8 + (size_t)i * d), 0);
    quant_f16_encode(x, (size_t)n * d, c16);

    for (int kind = QUANT_F16; kind <= QUANT_I8; kind++) {
        hnsw_io io = mem_io(&g);
        quant_i8_query qq = {0};
        uint64_t found = 0, found_raw = 0;
        io.code_kind = (quant_kind)kind;
        io.code_i8 = &q8;
        io.code = m_code;
        cg.codes = kind == QUANT_I8 ? c8 : (const uint8_t *)c16;
        cg.bytes = kind == QUANT_I8 ? d : 2 * d;
        for (uint32_t qi = 0; qi < nq; qi++) {
            const float *q = x + (size_t)(n + qi) * d;
            uint32_t m = 0;
            cr_assert_eq(hnsw_search(&p, &st, &io, s, q, ef, ef, hit, &m), 0);
            cr_assert_eq(m, ef);
            cr_assert_eq(quant_i8_query_prep(&q8, q, &qq), 0);
            for (uint32_t j = 0; j < m; j++) {
                const void *c = m_code(NULL, hit[j].id);
                float want = kind == QUANT_I8 ? quant_i8_dot_int(&qq, c)
                                                  : quant_f16_dot(q, c, d);
                cr_assert_float_eq(hit[j].score, want, 1e-6, "kind %d hit %u", kind, j);
            }
            brute(&g, st.nodes, q, k, truth);
            for (uint32_t j = 0; j < k; j++)
                for (uint32_t i = 0; i < k; i++)
                    found_raw += hit[i].id == truth[j];
            /* re-score the ef candidates exactly, keep the best k */
            for (uint32_t j = 0; j < m; j++)
                hit[j].score = vec_dot(q, m_vec(&g, hit[j].id), d);
            for (uint32_t j = 0; j < k; j++)
                for (uint32_t i = j + 1; i < m; i++)
                    if (hit[i].score > hit[j].score) {
                        hnsw_hit t = hit[i];
                        hit[i] = hit[j];
                        hit[j] = t;
                    }
            for (uint32_t j = 0; j < k; j++)
                for (uint32_t i = 0; i < k; i++)
                    found += hit[i].id == truth[j];
        }
        double r = (double)found / (nq * k), rr = (double)found_raw / (nq * k);
        cr_log_info("hnsw codes kind %d ef=%u: recall@10 %.4f raw, %.4f re-scored", kind, ef,
                    rr, r);
        cr_assert_geq(r, 0.95, "kind %d: re-scored recall %.4f", kind, r);
        cr_assert_geq(rr, kind == QUANT_I8 ? 0.85 : 0.95, "kind %d: raw recall %.4f", kind,
                      rr);
        /* a NaN query is refused before any code is read */
        float bad[64];
        memcpy(bad, x, sizeof bad);
        bad[3] = NAN;
        uint32_t m = 0;
        cr_assert_eq(hnsw_search(&p, &st, &io, s, bad, k, ef, hit, &m), PV_ENUMERIC);
        /* codes announced without the means to read them */
        io.code = NULL;
        cr_assert_eq(hnsw_search(&p, &st, &io, s, x, k, ef, hit, &m), PV_EINVAL);
        quant_i8_query_free(&qq);
    }
    quant_i8_free(&q8);
    mem_free(&g);
    hnsw_scratch_free(s);
    free(x);
    free(hit);
    free(c8);
    free(c16);
}

/* A graph built on codes only (io.codes_only): vec gives only the batch
 * being inserted, every stored node is read by its code. */
static uint32_t co_first; /* the batch's first id; vec refuses ids below */

static const float *co_vec(void *ctx, uint32_t id)
{
    return id < co_first ? NULL : m_vec(ctx, id);
}

Test(hnsw, build_on_codes_only)
{
    const uint32_t n = 5000, d = 64, nq = 200, k = 10, ef = 64, B = 500;
    float *x = clustered(n + nq, d, 50, 1.5f, 777);
    hnsw_params p = params(d);
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit *hit = malloc(ef * sizeof *hit);
    uint32_t truth[10], levels[500];
    quant_i8 q8;
    uint8_t *c8 = malloc((size_t)n * d);
    uint16_t *c16 = malloc((size_t)n * d * 2);
    cr_assert(s && hit && c8 && c16);
    cr_assert_eq(quant_i8_train(x, n, d, &q8), 0);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_geq(quant_i8_encode(&q8, x + (size_t)i * d, c8 + (size_t)i * d), 0);
    quant_f16_encode(x, (size_t)n * d, c16);

    for (int kind = QUANT_F16; kind <= QUANT_I8; kind++) {
        mem g;
        hnsw_state st;
        hnsw_io io;
        uint64_t found = 0;
        mem_init(&g, x, n, d, p.M);
        hnsw_state_init(&st, 7);
        io = mem_io(&g);
        io.vec = co_vec;
        io.code_kind = (quant_kind)kind;
        io.code_i8 = &q8;
        io.code = m_code;
        io.codes_only = 1;
        cg.codes = kind == QUANT_I8 ? c8 : (const uint8_t *)c16;
        cg.bytes = kind == QUANT_I8 ? d : 2 * d;
        for (co_first = 0; co_first < n; co_first += B) {
            for (uint32_t i = 0; i < B; i++)
                levels[i] = hnsw_random_level(&st, &p);
            cr_assert_eq(hnsw_insert_batch(&p, &st, &io, s, co_first, B, levels, 2), 0,
                         "kind %d batch at %u", kind, co_first);
        }
        co_first = n; /* searches read no float vector either */
        cr_assert_eq(st.nodes, n);
        check_graph(&g, &st);
        for (uint32_t qi = 0; qi < nq; qi++) {
            const float *q = x + (size_t)(n + qi) * d;
            uint32_t m = 0;
            cr_assert_eq(hnsw_search(&p, &st, &io, s, q, k, ef, hit, &m), 0);
            cr_assert_eq(m, k);
            brute(&g, st.nodes, q, k, truth);
            for (uint32_t j = 0; j < k; j++)
                for (uint32_t i = 0; i < k; i++)
                    found += hit[i].id == truth[j];
        }
        double r = (double)found / (nq * k);
        cr_log_info("hnsw built on codes kind %d, searched on codes, ef=%u: recall@10 %.4f",
                    kind, ef, r);
        cr_assert_geq(r, kind == QUANT_I8 ? 0.85 : 0.95, "kind %d: recall %.4f", kind, r);
        /* codes_only without codes to read is refused */
        io.code = NULL;
        cr_assert_eq(hnsw_insert_batch(&p, &st, &io, s, n, 1, levels, 1), PV_EINVAL);
        mem_free(&g);
    }
    quant_i8_free(&q8);
    hnsw_scratch_free(s);
    free(x);
    free(hit);
    free(c8);
    free(c16);
}

Test(hnsw, deleted_never_returned_but_walked_through)
{
    const uint32_t n = 5000, d = 64, extra = 500, nq = 200;
    float *x = clustered(n + extra + nq, d, 50, 1.5f, 99);
    hnsw_params p = params(d);
    hnsw_state st;
    hnsw_scratch *s = hnsw_scratch_new();
    mem g;
    uint64_t seed = 3;
    mem_init(&g, x, n + extra, d, p.M);
    hnsw_state_init(&st, 11);
    build(&g, &p, &st, s, 0, n);

    /* 10% of the nodes, the entry point among them. */
    uint32_t ndel = 0;
    mem_delete(&g, st.entry);
    for (ndel = 1; ndel < n / 10;) {
        uint32_t id = (uint32_t)(rng_next(&seed) % n);
        if (!m_deleted(&g, id)) {
            mem_delete(&g, id);
            ndel++;
        }
    }
    double r = recall(&g, &p, &st, s, x + (size_t)(n + extra) * d, nq, 10, 64);
    cr_log_info("hnsw after deleting 10%%: recall@10 over live = %.4f", r);
    cr_assert_geq(r, 0.95, "recall@10 over live %.4f < 0.95", r);

    /* Queries sitting exactly on deleted nodes: their live neighbours must
     * still be found through them. */
    float *qd = malloc((size_t)nq * d * sizeof(float));
    uint32_t m = 0;
    for (uint32_t id = 0; id < n && m < nq; id++)
        if (m_deleted(&g, id))
            memcpy(qd + (size_t)m++ * d, m_vec(&g, id), d * sizeof(float));
    r = recall(&g, &p, &st, s, qd, m, 10, 64);
    cr_log_info("hnsw queries on deleted nodes: recall@10 over live = %.4f", r);
    cr_assert_geq(r, 0.95, "recall@10 around deleted nodes %.4f < 0.95", r);

    /* Inserting after the entry point was deleted keeps the graph sound. */
    build(&g, &p, &st, s, n, n + extra);
    check_graph(&g, &st);
    r = recall(&g, &p, &st, s, x + (size_t)(n + extra) * d, nq, 10, 64);
    cr_assert_geq(r, 0.95, "recall@10 after more inserts %.4f < 0.95", r);

    free(qd);
    mem_free(&g);
    hnsw_scratch_free(s);
    free(x);
}

Test(hnsw, k_above_n_returns_n)
{
    const uint32_t n = 300, d = 16, k = 400;
    float *x = clustered(n, d, 5, 0.5f, 5);
    hnsw_params p = params(d);
    hnsw_state st;
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit hit[400];
    uint8_t got[300] = {0};
    uint32_t cnt = 0;
    mem g;
    mem_init(&g, x, n, d, p.M);
    hnsw_state_init(&st, 1);
    build(&g, &p, &st, s, 0, n);
    hnsw_io io = mem_io(&g);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, x, k, 10, hit, &cnt), 0);
    cr_assert_eq(cnt, n);
    for (uint32_t j = 0; j < cnt; j++) {
        cr_assert_eq(got[hit[j].id], 0, "id %u twice", hit[j].id);
        got[hit[j].id] = 1;
    }
    cr_assert_eq(hit[0].id, 0); /* the query is node 0 itself */

    /* With 30 deleted, k > live returns the live ones. */
    for (uint32_t id = 0; id < 30; id++)
        mem_delete(&g, id * 10);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, x, k, 10, hit, &cnt), 0);
    cr_assert_eq(cnt, n - 30);
    mem_free(&g);
    hnsw_scratch_free(s);
    free(x);
}

Test(hnsw, empty_and_tiny_graphs)
{
    const uint32_t d = 8;
    float *x = clustered(3, d, 3, 0.1f, 8);
    hnsw_params p = params(d);
    hnsw_state st;
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit hit[5];
    uint32_t cnt = 99;
    mem g;
    mem_init(&g, x, 3, d, p.M);
    hnsw_io io = mem_io(&g);
    hnsw_state_init(&st, 1);
    cr_assert_eq(st.entry, HNSW_NONE);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, x, 5, 10, hit, &cnt), 0);
    cr_assert_eq(cnt, 0);

    /* One node, at level 2: it is the entry point and the only answer. */
    cr_assert_eq(hnsw_insert(&p, &st, &io, s, 0, 2), 0);
    cr_assert_eq(st.entry, 0);
    cr_assert_eq(st.max_level, 2);
    cr_assert_eq(st.nodes, 1);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, x + d, 5, 10, hit, &cnt), 0);
    cr_assert_eq(cnt, 1);
    cr_assert_eq(hit[0].id, 0);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, x, 0, 10, hit, &cnt), 0);
    cr_assert_eq(cnt, 0);

    /* Deleting the only node leaves nothing to return. */
    mem_delete(&g, 0);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, x, 5, 10, hit, &cnt), 0);
    cr_assert_eq(cnt, 0);

    /* Two more nodes link to the deleted entry point and are found. */
    cr_assert_eq(hnsw_insert(&p, &st, &io, s, 1, 0), 0);
    cr_assert_eq(hnsw_insert(&p, &st, &io, s, 2, 3), 0);
    cr_assert_eq(st.entry, 2);
    cr_assert_eq(st.max_level, 3);
    check_graph(&g, &st);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, x + d, 5, 1, hit, &cnt), 0);
    cr_assert_eq(cnt, 2);
    cr_assert_eq(hit[0].id, 1);
    cr_assert_eq(hit[1].id, 2);

    mem_free(&g);
    hnsw_scratch_free(s);
    free(x);
}

Test(hnsw, bad_arguments_and_corrupt_links)
{
    const uint32_t d = 8, n = 50;
    float *x = clustered(n, d, 3, 0.3f, 4);
    hnsw_params p = params(d), bad;
    hnsw_state st;
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit hit[5];
    uint32_t cnt;
    mem g;
    mem_init(&g, x, n, d, p.M);
    hnsw_io io = mem_io(&g);
    hnsw_state_init(&st, 1);
    build(&g, &p, &st, s, 0, n);

    bad = p;
    bad.M = 1;
    cr_assert_eq(hnsw_search(&bad, &st, &io, s, x, 5, 10, hit, &cnt), PV_EINVAL);
    bad = p;
    bad.dim = 0;
    cr_assert_eq(hnsw_insert(&bad, &st, &io, s, n - 1, 0), PV_EINVAL);
    cr_assert_eq(hnsw_search(&p, &st, &io, s, NULL, 5, 10, hit, &cnt), PV_EINVAL);
    bad = p;
    bad.M0 = p.M - 1; /* a new node gets up to M links on level 0 */
    cr_assert_eq(hnsw_search(&bad, &st, &io, s, x, 5, 10, hit, &cnt), PV_EINVAL);
    cr_assert_eq(hnsw_insert(&p, &st, &io, s, HNSW_NONE, 0), PV_EINVAL);
    cr_assert_eq(hnsw_insert(&p, &st, &io, s, 0, HNSW_MAX_LEVEL), PV_EINVAL);

    /* NaN or Inf: refused, for queries and for inserts (before node_add,
     * which would assert on the id already being in the graph). */
    float qn[8];
    memcpy(qn, x, sizeof qn);
    qn[3] = NAN;
    cr_assert_eq(hnsw_search(&p, &st, &io, s, qn, 5, 10, hit, &cnt),
                 PV_ENUMERIC);
    qn[3] = INFINITY;
    cr_assert_eq(hnsw_search(&p, &st, &io, s, qn, 5, 10, hit, &cnt),
                 PV_ENUMERIC);
    float saved_v;
    char *v5 = g.vbuf + OFF + 5 * sizeof(float); /* node 0, component 5 */
    memcpy(&saved_v, v5, sizeof saved_v);
    memcpy(v5, &qn[3], sizeof qn[3]);
    hnsw_state before = st;
    cr_assert_eq(hnsw_insert(&p, &st, &io, s, 0, 0), PV_ENUMERIC);
    cr_assert_eq(memcmp(&before, &st, sizeof st), 0);
    memcpy(v5, &saved_v, sizeof saved_v);

    /* A link to an id beyond the graph, and a count above M0, are reported
     * as corruption, never followed. */
    char *r = l0rec(&g, st.entry);
    uint32_t saved[2], big = n + 7, many = 2 * p.M + 1;
    memcpy(saved, r, sizeof saved);
    uint32_t one = 1;
    memcpy(r, &one, 4);
    memcpy(r + 4, &big, 4);
    hnsw_state st0 = st;
    st0.max_level = 0; /* start the level-0 search at the entry */
    cr_assert_eq(hnsw_search(&p, &st0, &io, s, x, 5, 10, hit, &cnt),
                 PV_ECORRUPT);
    memcpy(r, &many, 4);
    cr_assert_eq(hnsw_search(&p, &st0, &io, s, x, 5, 10, hit, &cnt),
                 PV_ECORRUPT);
    memcpy(r, saved, sizeof saved);
    cr_assert_eq(hnsw_search(&p, &st0, &io, s, x, 5, 10, hit, &cnt), 0);

    mem_free(&g);
    hnsw_scratch_free(s);
    free(x);
}

Test(hnsw, level_distribution_is_geometric)
{
    hnsw_params p = params(8);
    hnsw_state st;
    const uint32_t n = 200000;
    uint32_t ge1 = 0, ge2 = 0, maxl = 0;
    hnsw_state_init(&st, 12345);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = hnsw_random_level(&st, &p);
        ge1 += l >= 1;
        ge2 += l >= 2;
        if (l > maxl)
            maxl = l;
    }
    double f1 = (double)ge1 / n, f2 = (double)ge2 / n;
    cr_log_info("hnsw levels: P(>=1) = %.4f (1/M = %.4f), P(>=2) = %.5f, "
                "max %u", f1, 1.0 / p.M, f2, maxl);
    /* P(level >= j) = M^-j; binomial sd at n = 200000 is ~0.0005 for j=1. */
    cr_assert(fabs(f1 - 1.0 / 16) < 0.003, "P(>=1) = %f", f1);
    cr_assert(fabs(f2 - 1.0 / 256) < 0.0008, "P(>=2) = %f", f2);
    cr_assert_lt(maxl, HNSW_MAX_LEVEL);

    /* A tiny M is capped at the top level instead of running away. */
    p.M = 2;
    for (uint32_t i = 0; i < 1000; i++)
        cr_assert_lt(hnsw_random_level(&st, &p), HNSW_MAX_LEVEL);
}

/* Same seed, same graph, whether or not io has a deleted callback (none
 * is deleted); another seed, other levels. */
Test(hnsw, same_seed_same_graph)
{
    const uint32_t n = 2000, d = 32;
    float *x = clustered(n, d, 20, 0.5f, 77);
    hnsw_params p = params(d);
    hnsw_state st[3];
    mem g[3];
    hnsw_scratch *s = hnsw_scratch_new();
    for (int k = 0; k < 3; k++) {
        mem_init(&g[k], x, n, d, p.M);
        hnsw_state_init(&st[k], k < 2 ? 2024 : 2025);
        build_io(&g[k], &p, &st[k], s, 0, n, k == 1); /* one scratch */
    }
    cr_assert_eq(st[0].entry, st[1].entry);
    cr_assert_eq(st[0].max_level, st[1].max_level);
    cr_assert_eq(st[0].rng, st[1].rng);
    cr_assert_eq(memcmp(g[0].level, g[1].level, n), 0);
    int differs = memcmp(g[0].level, g[2].level, n) != 0;
    for (uint32_t id = 0; id < n; id++) {
        for (int l = 0; l <= g[0].level[id]; l++) {
            const uint32_t *a = NULL, *b = NULL;
            uint32_t na = 0, nb = 0;
            m_links_get(&g[0], id, (uint32_t)l, &a, &na);
            m_links_get(&g[1], id, (uint32_t)l, &b, &nb);
            cr_assert_eq(na, nb);
            cr_assert_eq(memcmp(a, b, na * sizeof(uint32_t)), 0,
                         "node %u level %d differs", id, l);
        }
    }
    cr_assert(differs, "another seed gave the same levels");
    for (int k = 0; k < 3; k++)
        mem_free(&g[k]);
    hnsw_scratch_free(s);
    free(x);
}

/* Insert ids [from, to) in batches of `batch` with nthreads planning
 * threads, levels drawn from the state's generator in id order. */
static void build_batch(mem *g, const hnsw_params *p, hnsw_state *st,
                        hnsw_scratch *s, uint32_t from, uint32_t to,
                        uint32_t batch, unsigned nthreads)
{
    hnsw_io io = mem_io(g);
    uint32_t *lv = malloc(batch * sizeof *lv);
    cr_assert_not_null(lv);
    for (uint32_t first = from; first < to; first += batch) {
        uint32_t n = to - first < batch ? to - first : batch;
        for (uint32_t i = 0; i < n; i++)
            lv[i] = hnsw_random_level(st, p);
        int rc = hnsw_insert_batch(p, st, &io, s, first, n, lv, nthreads);
        cr_assert_eq(rc, 0, "batch at %u: %d", first, rc);
    }
    free(lv);
}

static void same_links(mem *a, mem *b, uint32_t n)
{
    cr_assert_eq(memcmp(a->level, b->level, n), 0);
    for (uint32_t id = 0; id < n; id++)
        for (int l = 0; l <= a->level[id]; l++) {
            const uint32_t *x = NULL, *y = NULL;
            uint32_t nx = 0, ny = 0;
            m_links_get(a, id, (uint32_t)l, &x, &nx);
            m_links_get(b, id, (uint32_t)l, &y, &ny);
            cr_assert_eq(nx, ny, "node %u level %d: %u vs %u links", id, l,
                         nx, ny);
            cr_assert_eq(memcmp(x, y, nx * sizeof(uint32_t)), 0,
                         "node %u level %d differs", id, l);
        }
}

/* Batches (the ingest path) against one-at-a-time inserts: a sound graph,
 * the same recall within 0.01, and the same graph for 1 and 3 planning
 * threads. The first batch starts from an empty graph, so its nodes link
 * only through the in-batch brute force. */
Test(hnsw, batch_insert_same_for_any_threads)
{
    const uint32_t n = 6000, d = 64, nq = 200;
    float *x = clustered(n + nq, d, 50, 1.5f, 4242);
    hnsw_params p = params(d);
    hnsw_state st[3];
    mem g[3];
    hnsw_scratch *s = hnsw_scratch_new();
    cr_assert_not_null(s);
    for (int k = 0; k < 3; k++) {
        mem_init(&g[k], x, n, d, p.M);
        hnsw_state_init(&st[k], 31);
    }
    build(&g[0], &p, &st[0], s, 0, n);
    build_batch(&g[1], &p, &st[1], s, 0, n, 1024, 1);
    build_batch(&g[2], &p, &st[2], s, 0, n, 1024, 3);
    cr_assert_eq(st[1].nodes, n);
    cr_assert_eq(st[1].entry, st[2].entry);
    cr_assert_eq(st[1].rng, st[0].rng);
    check_graph(&g[1], &st[1]);
    same_links(&g[1], &g[2], n);
    double r0 = recall(&g[0], &p, &st[0], s, x + (size_t)n * d, nq, 10, 64);
    double r1 = recall(&g[1], &p, &st[1], s, x + (size_t)n * d, nq, 10, 64);
    cr_log_info("hnsw n=%u: recall@10 one at a time %.4f, batches of 1024 %.4f",
                n, r0, r1);
    cr_assert_geq(r1, 0.95, "batch recall@10 %.4f < 0.95", r1);
    cr_assert_geq(r1, r0 - 0.01, "batch recall %.4f vs single %.4f", r1, r0);
    for (int k = 0; k < 3; k++)
        mem_free(&g[k]);
    hnsw_scratch_free(s);
    free(x);
}

/* A batch after the entry point and 10% of the nodes were deleted; and a
 * NaN in the middle of a batch refuses the whole batch, changing nothing. */
Test(hnsw, batch_insert_after_deletes_and_nan)
{
    const uint32_t n = 4000, extra = 1500, d = 48, nq = 200;
    float *x = clustered(n + extra + nq, d, 40, 1.5f, 515);
    hnsw_params p = params(d);
    hnsw_state st;
    hnsw_scratch *s = hnsw_scratch_new();
    mem g;
    uint64_t seed = 9;
    mem_init(&g, x, n + extra, d, p.M);
    hnsw_state_init(&st, 5);
    build_batch(&g, &p, &st, s, 0, n, 700, 2);
    mem_delete(&g, st.entry);
    for (uint32_t k = 1; k < n / 10; k++)
        mem_delete(&g, (uint32_t)(rng_next(&seed) % n));

    /* NaN in the 3rd vector of the next batch (the buffer is deliberately
     * misaligned: bytes, not a float pointer). */
    char *v = g.vbuf + OFF + ((size_t)(n + 2) * d + 5) * sizeof(float);
    const float nan_ = NAN;
    float keep;
    memcpy(&keep, v, sizeof keep);
    hnsw_state before = st;
    uint64_t sets = g.sets;
    uint32_t lv[10] = {0};
    hnsw_io io = mem_io(&g);
    memcpy(v, &nan_, sizeof nan_);
    cr_assert_eq(hnsw_insert_batch(&p, &st, &io, s, n, 10, lv, 2), PV_ENUMERIC);
    cr_assert_eq(memcmp(&st, &before, sizeof st), 0);
    cr_assert_eq(g.sets, sets);
    cr_assert_eq(g.level[n], -1, "node added by a refused batch");
    memcpy(v, &keep, sizeof keep);

    build_batch(&g, &p, &st, s, n, n + extra, 512, 2);
    check_graph(&g, &st);
    double r = recall(&g, &p, &st, s, x + (size_t)(n + extra) * d, nq, 10, 64);
    cr_log_info("hnsw batches after deleting 10%%: recall@10 over live %.4f", r);
    cr_assert_geq(r, 0.95, "recall@10 %.4f < 0.95", r);
    mem_free(&g);
    hnsw_scratch_free(s);
    free(x);
}
