/*
 * hnsw.c - Hierarchical Navigable Small World graph: insert and k-NN search
 * (index room).
 *
 * Follows Malkov and Yashunin, "Efficient and robust approximate nearest
 * neighbor search using Hierarchical Navigable Small World graphs", TPAMI
 * 2018: insertion is Algorithm 1 (hnsw_insert), the beam search of one layer
 * Algorithm 2 (search_layer), neighbour selection the heuristic of Algorithm
 * 4 (select_neighbors), k-NN search Algorithm 5 (hnsw_search). Where the
 * paper leaves a choice open we do what hnswlib (0.6-0.8) does, because the
 * benchmark compares recall with hnswlib at the same M and ef_construction:
 *   - the heuristic runs without extendCandidates and without
 *     keepPrunedConnections: a node gets only the candidates the heuristic
 *     keeps, possibly fewer than M (hnswlib's getNeighborsByHeuristic2). A
 *     candidate list shorter than the limit is kept whole, unpruned;
 *   - a new node gets at most M links on every level, level 0 included; the
 *     M0 = 2*M room on level 0 is filled only by reverse links;
 *   - a reverse link that overflows a neighbour's list re-runs the heuristic
 *     over (its current links + the new node), as seen from that neighbour
 *     (hnswlib's mutuallyConnectNewElement);
 *   - each layer's search starts from the single closest node the previous
 *     layer selected, not from the whole previous result set;
 *   - tombstoned nodes are expanded like any other (they keep the graph
 *     navigable) but never enter a result set, so they are never returned
 *     and never linked to by new nodes - except a tombstoned entry point,
 *     which new nodes still link to so the top of the graph stays reachable
 *     (hnswlib's markDelete).
 * ef_construction below M is raised to M, as hnswlib does.
 *
 * Similarity is the dot product of unit vectors (larger is closer), from
 * vec_dot. The graph is reached only through the caller's hnsw_io, so no
 * pointer it hands out is assumed aligned (links are copied out with
 * memcpy, vectors go to vec_dot, which loads unaligned) or long-lived: the
 * inserted node's vector is copied into scratch first, and no pointer from
 * io is kept across a links_set.
 *
 * Speed: a search allocates nothing once its scratch has grown to the graph
 * (visited marks are u16 epoch tags, cleared only when the tag wraps; the
 * two heaps live in preallocated arrays). Expanding a node first filters its
 * links against the visited marks and asks io for every fresh neighbour's
 * vector, prefetching each, and only then computes the distances, so the
 * memory loads of a whole neighbourhood are in flight together instead of
 * one vector at a time.
 */
#include "hnsw.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

/* Limits that keep every size computation far from overflow. */
#define HNSW_MAX_LINKS 4096u

/* Bytes of every fresh neighbour's vector prefetched as soon as it is
 * found unvisited (before any distance of that expansion is computed).
 * Measured on Fashion-MNIST (784-d, 3136-byte vectors, 60k nodes): no
 * prefetch is ~15-20% slower; 256 bytes beats 64, 128, 512, 1024 and the
 * whole vector, and beats also prefetching the whole next vector while
 * scoring the current one, prefetching the first lines past a 4 KiB page
 * boundary (-20%: each extra prefetch that needs a page walk costs more
 * than it saves) and prefetching the next candidate's links. */
#define HNSW_PF_BYTES 256u

typedef struct cand {
    float s; /* similarity to the query */
    uint32_t id;
} cand;

struct hnsw_scratch {
    uint16_t *vis; /* visited tags per id */
    size_t vis_cap;
    uint16_t tag;

    cand *cq; /* candidates to expand: max-heap on s */
    cand *rq; /* results: min-heap on s, at most ef */
    uint32_t nrq;

    /* One node's links (copied out of io) and their vectors. */
    uint32_t *nb;
    const void **nbv;

    /* Insert: the sorted result set (w) and the new node's selected links
     * (sel); a neighbour's overflowing list (w2) and its re-selection
     * (sel2); the kept candidates' vectors (selv); ids for links_set. */
    cand *w, *w2, *sel, *sel2;
    const void **selv;
    uint32_t *ids;

    float *q;   /* copy of the vector being inserted */
    float *tmp; /* a float16 code decoded (inserts on codes) */
    quant_i8_query qq; /* a search's query prepared for int8 codes */

    uint32_t cq_cap, rq_cap, nb_cap, nbv_cap, w_cap, w2_cap, sel_cap,
        sel2_cap, selv_cap, ids_cap, q_cap, tmp_cap;
};

hnsw_scratch *hnsw_scratch_new(void)
{
    return calloc(1, sizeof(hnsw_scratch));
}

void hnsw_scratch_free(hnsw_scratch *s)
{
    if (!s)
        return;
    free(s->vis);
    free(s->cq);
    free(s->rq);
    free(s->nb);
    free(s->nbv);
    free(s->w);
    free(s->w2);
    free(s->sel);
    free(s->sel2);
    free(s->selv);
    free(s->ids);
    free(s->q);
    free(s->tmp);
    quant_i8_query_free(&s->qq);
    free(s);
}

/* Grow the array *pp (capacity *cap) to hold n elements of size bytes,
 * keeping its contents. */
static int grow(void *pp, uint32_t *cap, uint32_t n, size_t size)
{
    void **p = pp;
    if (n <= *cap)
        return 0;
    void *np = pv_realloc_array(*p, n, size);
    if (!np)
        return PV_ENOMEM;
    *p = np;
    *cap = n;
    return 0;
}

/* Make the scratch big enough for a graph of `nodes` ids, link lists of up
 * to maxl ids, a result set of ef and vectors of dim floats. */
static int scratch_reserve(hnsw_scratch *s, uint32_t nodes, uint32_t maxl,
                           uint32_t ef, uint32_t dim)
{
    if (nodes > s->vis_cap) {
        /* Geometric growth: inserts add one id at a time. */
        size_t cap = s->vis_cap + s->vis_cap / 2;
        if (cap < nodes)
            cap = nodes;
        if (cap < 1024)
            cap = 1024;
        uint16_t *v = pv_realloc_array(s->vis, cap, sizeof *v);
        if (!v)
            return PV_ENOMEM;
        /* Zero is never a live tag, so new slots read as unvisited. */
        memset(v + s->vis_cap, 0, (cap - s->vis_cap) * sizeof *v);
        s->vis = v;
        s->vis_cap = cap;
    }
    /* The candidate heap grows further during a search if it must. */
    int rc = grow(&s->cq, &s->cq_cap, 2 * ef + 2 * maxl + 64, sizeof(cand));
    if (!rc)
        rc = grow(&s->rq, &s->rq_cap, ef + 1, sizeof(cand));
    if (!rc)
        rc = grow(&s->nb, &s->nb_cap, maxl + 1, sizeof(uint32_t));
    if (!rc)
        rc = grow(&s->nbv, &s->nbv_cap, maxl + 1, sizeof(void *));
    if (!rc)
        rc = grow(&s->w, &s->w_cap, ef + 1, sizeof(cand));
    if (!rc)
        rc = grow(&s->w2, &s->w2_cap, maxl + 1, sizeof(cand));
    if (!rc)
        rc = grow(&s->sel, &s->sel_cap, maxl + 1, sizeof(cand));
    if (!rc)
        rc = grow(&s->sel2, &s->sel2_cap, maxl + 1, sizeof(cand));
    if (!rc)
        rc = grow(&s->selv, &s->selv_cap, maxl + 1, sizeof(void *));
    if (!rc)
        rc = grow(&s->ids, &s->ids_cap, maxl + 1, sizeof(uint32_t));
    if (!rc && dim)
        rc = grow(&s->q, &s->q_cap, dim, sizeof(float));
    if (!rc && dim)
        rc = grow(&s->tmp, &s->tmp_cap, dim, sizeof(float));
    return rc;
}

/* A fresh visited epoch; all marks are cleared only when the tag wraps. */
static uint16_t next_tag(hnsw_scratch *s)
{
    if (++s->tag == 0) {
        memset(s->vis, 0, s->vis_cap * sizeof *s->vis);
        s->tag = 1;
    }
    return s->tag;
}

/* ---- binary heaps on preallocated arrays ---------------------------------- */

static inline void maxheap_push(cand *h, uint32_t *n, cand x)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h[p].s >= x.s)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static inline void maxheap_pop(cand *h, uint32_t *n)
{
    uint32_t m = --(*n), i = 0;
    cand x = h[m];
    if (m == 0)
        return;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && h[c + 1].s > h[c].s)
            c++;
        if (h[c].s <= x.s)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static inline void minheap_push(cand *h, uint32_t *n, cand x)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h[p].s <= x.s)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

/* Put x in place of the root (the worst kept) and sift it down: the same
 * set as push-then-pop when x beats the root, in one pass. */
static inline void minheap_replace_top(cand *h, uint32_t n, cand x)
{
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1].s < h[c].s)
            c++;
        if (h[c].s >= x.s)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* Heapsort of a min-heap in place: afterwards h[0..n) is best first. */
static void minheap_sort_desc(cand *h, uint32_t n)
{
    while (n > 1) {
        cand last = h[--n];
        h[n] = h[0];
        minheap_replace_top(h, n, last);
    }
}

/* ---- level generator ------------------------------------------------------ */

void hnsw_state_init(hnsw_state *st, uint64_t seed)
{
    st->entry = HNSW_NONE;
    st->max_level = 0;
    st->nodes = 0;
    st->rng = seed;
}

uint32_t hnsw_random_level(hnsw_state *st, const hnsw_params *p)
{
    double u = pv_rand_unit(&st->rng); /* (0, 1]: -ln(u) is finite */
    if (!p || p->M < 2)
        return 0;
    double l = -log(u) / log((double)p->M);
    if (!(l < (double)(HNSW_MAX_LEVEL - 1)))
        return HNSW_MAX_LEVEL - 1;
    return (uint32_t)l;
}

/* ---- layer search --------------------------------------------------------- */

static int params_check(const hnsw_params *p)
{
    /* M0 >= M: a new node gets up to M links on level 0 too. */
    if (!p || p->M < 2 || p->M > HNSW_MAX_LINKS || p->M0 < p->M ||
        p->M0 > HNSW_MAX_LINKS || p->dim == 0 || p->dim > (1u << 24))
        return PV_EINVAL;
    return 0;
}

static uint32_t max_links(const hnsw_params *p, uint32_t level)
{
    return level == 0 ? p->M0 : p->M;
}

/* Copy the links of id at level into s->nb (the ids may be unaligned);
 * *n gets their count. Ids beyond the graph are refused: a corrupt record
 * must not index past the visited array. */
static int get_links(const hnsw_params *p, const hnsw_io *io, hnsw_scratch *s,
                     uint32_t id, uint32_t level, uint32_t nodes, uint32_t *n)
{
    const uint32_t *ids;
    uint32_t k;
    int rc = io->links_get(io->ctx, id, level, &ids, &k);
    if (rc)
        return rc;
    if (k > max_links(p, level) || (k && !ids))
        return PV_ECORRUPT;
    /* One fixed-size memcpy per id compiles to a plain (unaligned-safe)
     * load; a memcpy of k * 4 bytes was a libc call costing ~4% of a
     * build. */
    for (uint32_t j = 0; j < k; j++) {
        uint32_t t;
        memcpy(&t, ids + j, sizeof t);
        if (t >= nodes)
            return PV_ECORRUPT;
        s->nb[j] = t;
    }
    *n = k;
    return 0;
}

/* What a search scores candidates by: the float32 vectors (QUANT_F32:
 * every insert, and searches without codes) or the compact codes against
 * the query prepared for them (quant.h's one scorer). */
typedef quant_scorer scorer;

static scorer scorer_f32(const float *q, uint32_t dim)
{
    return (scorer){QUANT_F32, dim, q, NULL};
}

/* The stored record of id that sc scores: its vector or its code. */
static inline const void *record(const scorer *sc, const hnsw_io *io, uint32_t id)
{
    if (sc->kind == QUANT_F32)
        return io->vec(io->ctx, id);
    return io->code(io->ctx, id);
}

static inline float score(const scorer *sc, const void *v) { return quant_score(sc, v); }

/* An int8 code is prefetched whole: on Fashion-MNIST (784-byte codes, i8
 * database of 60,000, ef 20 and 40, 8 interleaved runs each) that answered
 * 6.5-7 % more queries a second than the first 256 bytes (medians 14,667
 * and 13,726 q/s at ef 20). Prefetching the next float32 vector while
 * re-scoring the current one changed nothing measurable. */
static inline void prefetch_rec(const scorer *sc, const void *v)
{
    const char *c = v;
    const uint32_t n = sc->kind == QUANT_I8 ? sc->dim : HNSW_PF_BYTES;
    for (uint32_t b = 0; b < n; b += 64)
        __builtin_prefetch(c + b, 0, 3);
}

/* Greedy descent (ef = 1) from *ep through levels top..stop+1 (Algorithm 5,
 * and the first loop of Algorithm 1): move to the best neighbour while one
 * is better than where we stand. */
static int greedy(const hnsw_params *p, const hnsw_io *io, hnsw_scratch *s,
                  const scorer *sc, uint32_t nodes, uint32_t top, uint32_t stop,
                  uint32_t *ep, float *eps)
{
    uint32_t cur = *ep;
    float cs = *eps;
    for (uint32_t level = top; level > stop; level--) {
        int changed = 1;
        while (changed) {
            uint32_t n;
            int rc = get_links(p, io, s, cur, level, nodes, &n);
            if (rc)
                return rc;
            changed = 0;
            for (uint32_t j = 0; j < n; j++) {
                const void *v = record(sc, io, s->nb[j]);
                if (!v)
                    return PV_ECORRUPT;
                s->nbv[j] = v;
                prefetch_rec(sc, v);
            }
            for (uint32_t j = 0; j < n; j++) {
                float d = score(sc, s->nbv[j]);
                if (d > cs) {
                    cs = d;
                    cur = s->nb[j];
                    changed = 1;
                }
            }
        }
    }
    *ep = cur;
    *eps = cs;
    return 0;
}

/* Algorithm 2: beam search of one level from ep (similarity eps) keeping
 * the ef best non-deleted nodes in s->rq (a min-heap, s->nrq of them).
 * Stops when the best unexpanded candidate is worse than the worst of a
 * full result set (the paper's early termination). */
static int search_layer(const hnsw_params *p, const hnsw_io *io,
                        hnsw_scratch *s, const scorer *sc, uint32_t nodes,
                        uint32_t ep, float eps, uint32_t level, uint32_t ef)
{
    void *ctx = io->ctx;
    const uint16_t tag = next_tag(s);
    uint16_t *vis = s->vis;
    cand *cq = s->cq, *rq = s->rq;
    uint32_t ncq = 0, nrq = 0;
    float lower = -INFINITY; /* worst similarity in the results */

    int (*const deleted)(void *, uint32_t) = io->deleted;

    vis[ep] = tag;
    cq[ncq++] = (cand){eps, ep};
    if (!deleted || !deleted(ctx, ep)) {
        rq[nrq++] = (cand){eps, ep};
        lower = eps;
    }
    while (ncq > 0) {
        const cand c = cq[0];
        if (c.s < lower && nrq == ef)
            break;
        maxheap_pop(cq, &ncq);

        uint32_t n, m = 0;
        int rc = get_links(p, io, s, c.id, level, nodes, &n);
        if (rc)
            return rc;
        /* Filter first and prefetch every fresh neighbour's vector, so their
         * cache misses overlap; then score them. */
        for (uint32_t j = 0; j < n; j++) {
            uint32_t id = s->nb[j];
            if (vis[id] == tag)
                continue;
            vis[id] = tag;
            const void *v = record(sc, io, id);
            if (!v)
                return PV_ECORRUPT;
            prefetch_rec(sc, v);
            s->nb[m] = id;
            s->nbv[m++] = v;
        }
        if (ncq + m > s->cq_cap) {
            uint32_t want = ncq + m;
            int g = grow(&s->cq, &s->cq_cap,
                         want <= UINT32_MAX / 2 ? 2 * want : want,
                         sizeof(cand));
            if (g)
                return g;
            cq = s->cq;
        }
        for (uint32_t j = 0; j < m; j++) {
            float d = score(sc, s->nbv[j]);
            if (nrq < ef || d > lower) {
                uint32_t id = s->nb[j];
                maxheap_push(cq, &ncq, (cand){d, id});
                if (!deleted || !deleted(ctx, id)) {
                    if (nrq < ef)
                        minheap_push(rq, &nrq, (cand){d, id});
                    else
                        minheap_replace_top(rq, nrq, (cand){d, id});
                    lower = rq[0].s;
                }
            }
        }
    }
    s->nrq = nrq;
    return 0;
}

/* ---- neighbour selection (Algorithm 4) ------------------------------------ */

/* What an insert compares stored nodes by: their float32 vectors, or with
 * io->codes_only their codes (the symmetric similarity of two codes). */
static inline const void *node_rec(const hnsw_io *io, uint32_t id)
{
    return io->codes_only ? io->code(io->ctx, id) : (const void *)io->vec(io->ctx, id);
}

static float node_pair(const hnsw_io *io, hnsw_scratch *s, uint32_t dim, const void *a,
                       const void *b)
{
    if (!io->codes_only)
        return vec_dot(a, b, dim);
    if (io->code_kind == QUANT_I8)
        return quant_i8_dot_codes(io->code_i8, a, b);
    quant_f16_decode(a, dim, s->tmp);
    return quant_f16_dot(s->tmp, b, dim);
}

/* From c[0..n) (best first, similarities to the base point), keep at most m:
 * a candidate is kept when it is closer to the base point than to every
 * one kept before it, so links spread over directions instead of crowding
 * into one cluster. Lists shorter than m are kept whole (hnswlib). */
static int select_neighbors(const hnsw_io *io, hnsw_scratch *s, uint32_t dim,
                            const cand *c, uint32_t n, uint32_t m, cand *out,
                            uint32_t *nout)
{
    uint32_t k = 0;
    if (n < m) {
        memcpy(out, c, (size_t)n * sizeof *c);
        *nout = n;
        return 0;
    }
    for (uint32_t i = 0; i < n && k < m; i++) {
        const void *v = node_rec(io, c[i].id);
        int good = 1;
        if (!v)
            return PV_ECORRUPT;
        for (uint32_t j = 0; j < k; j++) {
            if (node_pair(io, s, dim, s->selv[j], v) > c[i].s) {
                good = 0;
                break;
            }
        }
        if (good) {
            s->selv[k] = v;
            out[k++] = c[i];
        }
    }
    *nout = k;
    return 0;
}

/* Add the reverse link e -> id (similarity es) at level; if e's list is
 * full, re-select e's links from (its links + id) with the heuristic. */
static int connect_back(const hnsw_params *p, const hnsw_io *io,
                        hnsw_scratch *s, uint32_t nodes, uint32_t e, float es,
                        uint32_t id, uint32_t level)
{
    const uint32_t mmax = max_links(p, level);
    uint32_t n, k;
    int rc = get_links(p, io, s, e, level, nodes, &n);
    if (rc)
        return rc;
    for (uint32_t j = 0; j < n; j++)
        if (s->nb[j] == id)
            return 0; /* already linked */
    if (n < mmax) {
        s->nb[n] = id;
        return io->links_set(io->ctx, e, level, s->nb, n + 1);
    }
    const void *ve = node_rec(io, e);
    if (!ve)
        return PV_ECORRUPT;
    /* Candidates as seen from e, sorted best first (insertion sort: at most
     * M0 + 1 of them). */
    cand *w = s->w2;
    for (uint32_t j = 0; j <= n; j++) {
        cand x;
        if (j < n) {
            const void *v = node_rec(io, s->nb[j]);
            if (!v)
                return PV_ECORRUPT;
            x = (cand){node_pair(io, s, p->dim, ve, v), s->nb[j]};
        } else {
            x = (cand){es, id};
        }
        uint32_t i = j;
        while (i > 0 && w[i - 1].s < x.s) {
            w[i] = w[i - 1];
            i--;
        }
        w[i] = x;
    }
    rc = select_neighbors(io, s, p->dim, w, n + 1, mmax, s->sel2, &k);
    if (rc)
        return rc;
    for (uint32_t j = 0; j < k; j++)
        s->ids[j] = s->sel2[j].id;
    return io->links_set(io->ctx, e, level, s->ids, k);
}

/* ---- insert (Algorithm 1), a batch at a time ----------------------------- */

/* A batch insert in two phases. Plan (read only, on nthreads threads): for
 * every new node and each of its levels, the ef_construction best
 * candidates are the union of a layer search of the graph as it stood
 * before the batch and the batch's earlier nodes on that level, scored
 * exactly (brute force within the batch); the heuristic then
 * picks the node's links from them. Link (serial, in id order): the node's
 * links are written and each neighbour gets its reverse link, with the same
 * re-selection as a single insert. A node thus sees every earlier node of
 * its batch exactly and the rest through the graph, so its candidates are
 * at least as good as a one-at-a-time insert's, and the graph built does
 * not depend on the number of threads. */
typedef struct batch {
    const hnsw_params *p;
    const hnsw_io *io;
    hnsw_state frozen; /* the graph the plans search: as before the batch */
    uint32_t first, n, efc, nodes;
    const uint32_t *levels;
    const float *x;    /* n x dim: the new vectors, checked finite */
    size_t *off;       /* node i's plan for level l is slot off[i] + l */
    uint32_t *nsel;    /* per slot: links chosen */
    cand *sel;         /* per slot: M links, best first */
    pthread_mutex_t mu;
    uint32_t next; /* next node to plan */
    int rc;
} batch;

static int cand_cmp_desc(const void *a, const void *b)
{
    float x = ((const cand *)a)->s, y = ((const cand *)b)->s;
    return (x < y) - (x > y);
}

/* Plan node i: its candidates on every level and the links it will get. bb
 * and row have room for n entries. */
static int plan_node(batch *b, hnsw_scratch *s, cand *bb, float *row,
                     uint32_t i)
{
    const hnsw_params *p = b->p;
    const hnsw_io *io = b->io;
    const hnsw_state *fz = &b->frozen;
    const uint32_t id = b->first + i, top = b->levels[i], efc = b->efc;
    const float *q = b->x + (size_t)i * p->dim;
    scorer sc = scorer_f32(q, p->dim);
    uint32_t ep = fz->entry;
    float eps = 0, entry_s = 0;
    int entry_deleted = 0, rc;

    /* Similarities to the batch's earlier nodes. (One sgemm for the whole
     * batch's Gram matrix was no faster: OpenBLAS's threads then spin in
     * sched_yield beside the planning threads.) */
    for (uint32_t j = 0; j < i; j++)
        row[j] = vec_dot(q, b->x + (size_t)j * p->dim, p->dim);
    /* On codes: the new node's float vector against stored codes. */
    if (io->codes_only &&
        (rc = quant_scorer_init(&sc, io->code_kind, io->code_i8, q, p->dim, &s->qq)) != 0)
        return rc;
    if (fz->entry != HNSW_NONE) {
        const void *v = record(&sc, io, fz->entry);
        if (!v)
            return PV_ECORRUPT;
        eps = entry_s = score(&sc, v);
        entry_deleted = io->deleted && io->deleted(io->ctx, fz->entry);
        rc = greedy(p, io, s, &sc, fz->nodes, fz->max_level, top, &ep, &eps);
        if (rc)
            return rc;
    }
    for (uint32_t l = top;; l--) {
        uint32_t nf = 0, nb = 0, nw = 0, a = 0, c = 0;
        if (fz->entry != HNSW_NONE && l <= fz->max_level) {
            rc = search_layer(p, io, s, &sc, fz->nodes, ep, eps, l, efc);
            if (rc)
                return rc;
            /* A deleted entry point is not in the results; link to it
             * anyway so the levels above stay reachable (hnswlib). */
            if (entry_deleted) {
                if (s->nrq < efc)
                    minheap_push(s->rq, &s->nrq, (cand){entry_s, fz->entry});
                else if (entry_s > s->rq[0].s)
                    minheap_replace_top(s->rq, s->nrq,
                                        (cand){entry_s, fz->entry});
            }
            minheap_sort_desc(s->rq, s->nrq);
            nf = s->nrq;
            if (nf > 0) { /* the next level's search starts here */
                ep = s->rq[0].id;
                eps = s->rq[0].s;
            }
        }
        /* The batch's earlier nodes on this level that can make the top
         * efc, best first. */
        {
            const float floor_s = nf == efc ? s->rq[nf - 1].s : -INFINITY;
            for (uint32_t j = 0; j < i; j++)
                if (b->levels[j] >= l && row[j] > floor_s)
                    bb[nb++] = (cand){row[j], b->first + j};
            qsort(bb, nb, sizeof *bb, cand_cmp_desc);
        }
        /* Merge the two lists, keeping the top efc; a caller re-inserting
         * a live id must not link it to itself. */
        while (nw < efc && (a < nf || c < nb)) {
            cand x = c >= nb || (a < nf && s->rq[a].s >= bb[c].s) ? s->rq[a++]
                                                                  : bb[c++];
            if (x.id != id)
                s->w[nw++] = x;
        }
        const size_t slot = b->off[i] + l;
        rc = select_neighbors(io, s, p->dim, s->w, nw, p->M,
                              b->sel + slot * p->M, &b->nsel[slot]);
        if (rc)
            return rc;
        if (l == 0)
            return 0;
    }
}

typedef struct planner {
    batch *b;
    hnsw_scratch *s;
    cand *bb;
    float *row;
    pthread_t thr;
} planner;

static void *plan_worker(void *arg)
{
    planner *w = arg;
    batch *b = w->b;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        uint32_t i = b->next++;
        int stop = b->rc != 0 || i >= b->n;
        pthread_mutex_unlock(&b->mu);
        if (stop)
            return NULL;
        int rc = plan_node(b, w->s, w->bb, w->row, i);
        if (rc) {
            pthread_mutex_lock(&b->mu);
            if (b->rc == 0)
                b->rc = rc;
            pthread_mutex_unlock(&b->mu);
        }
    }
}

/* Run the plans on up to nthreads threads: the caller's scratch s and
 * scratches of their own for the others. */
static int plan_all(batch *b, hnsw_scratch *s, unsigned nthreads)
{
    planner w[HNSW_MAX_THREADS];
    unsigned started = 0, made = 0;
    int rc = 0;
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > HNSW_MAX_THREADS)
        nthreads = HNSW_MAX_THREADS;
    if (nthreads > b->n)
        nthreads = b->n;
    memset(w, 0, sizeof w);
    for (unsigned t = 0; t < nthreads && !rc; t++, made++) {
        w[t].b = b;
        w[t].s = t == 0 ? s : hnsw_scratch_new();
        w[t].bb = pv_alloc_array(b->n, sizeof(cand));
        w[t].row = pv_alloc_array(b->n, sizeof(float));
        if (!w[t].s || !w[t].bb || !w[t].row)
            rc = PV_ENOMEM;
        else
            rc = scratch_reserve(w[t].s, b->nodes, b->p->M0, b->efc, b->p->dim);
    }
    if (!rc && pthread_mutex_init(&b->mu, NULL) != 0)
        rc = PV_ENOMEM;
    if (!rc) {
        for (unsigned t = 1; t < made; t++) {
            if (pthread_create(&w[t].thr, NULL, plan_worker, &w[t]) != 0)
                break; /* the threads already running share the work */
            started = t;
        }
        plan_worker(&w[0]);
        for (unsigned t = 1; t <= started; t++)
            pthread_join(w[t].thr, NULL);
        pthread_mutex_destroy(&b->mu);
        rc = b->rc;
    }
    for (unsigned t = 0; t < made; t++) {
        if (t > 0)
            hnsw_scratch_free(w[t].s);
        free(w[t].bb);
        free(w[t].row);
    }
    return rc;
}

/* Link node i as planned: its own links, then the reverse links. */
static int link_node(batch *b, hnsw_state *st, hnsw_scratch *s, uint32_t i)
{
    const hnsw_params *p = b->p;
    const hnsw_io *io = b->io;
    const uint32_t id = b->first + i, top = b->levels[i];
    const uint32_t nodes = id >= st->nodes ? id + 1 : st->nodes;
    int rc = io->node_add(io->ctx, id, top);
    if (rc)
        return rc;
    if (st->entry == HNSW_NONE) {
        st->entry = id;
        st->max_level = top;
        st->nodes = nodes;
        return 0;
    }
    for (uint32_t l = top;; l--) {
        const size_t slot = b->off[i] + l;
        const cand *sel = b->sel + slot * p->M;
        const uint32_t k = b->nsel[slot];
        if (k > 0) {
            for (uint32_t j = 0; j < k; j++)
                s->ids[j] = sel[j].id;
            if ((rc = io->links_set(io->ctx, id, l, s->ids, k)) != 0)
                return rc;
            for (uint32_t j = 0; j < k; j++)
                if ((rc = connect_back(p, io, s, nodes, sel[j].id, sel[j].s,
                                       id, l)) != 0)
                    return rc;
        }
        if (l == 0)
            break;
    }
    if (top > st->max_level) {
        st->entry = id;
        st->max_level = top;
    }
    st->nodes = nodes;
    return 0;
}

int hnsw_insert_batch(const hnsw_params *p, hnsw_state *st, const hnsw_io *io,
                      hnsw_scratch *s, uint32_t first, uint32_t n,
                      const uint32_t *levels, unsigned nthreads)
{
    int rc = params_check(p);
    if (rc)
        return rc;
    if (!st || !io || !s || (n && !levels) || first == HNSW_NONE ||
        n > HNSW_NONE - first ||
        (st->entry != HNSW_NONE &&
         (st->entry >= st->nodes || st->max_level >= HNSW_MAX_LEVEL)))
        return PV_EINVAL;
    if (n == 0)
        return 0;
    batch b = {.p = p, .io = io, .frozen = *st, .first = first, .n = n,
               .levels = levels};
    b.efc = p->ef_construction > p->M ? p->ef_construction : p->M;
    b.nodes = first + n > st->nodes ? first + n : st->nodes;
    if (b.efc > HNSW_MAX_EF || n > HNSW_MAX_BATCH)
        return PV_EINVAL;
    if (io->codes_only &&
        (io->code_kind == QUANT_F32 || !io->code || (io->code_kind == QUANT_I8 && !io->code_i8)))
        return PV_EINVAL;
    if ((rc = scratch_reserve(s, b.nodes, p->M0, b.efc, p->dim)) != 0)
        return rc;

    /* Own copies of the new vectors (io's pointers die at the next
     * links_set), checked: a NaN or Inf would compare false against
     * everything and poison every list it entered. */
    float *x = n == 1 ? s->q : pv_alloc_array((size_t)n * p->dim, sizeof(float));
    size_t nslots = 0;
    if (!x)
        return PV_ENOMEM;
    b.x = x;
    b.off = pv_alloc_array(n, sizeof *b.off);
    rc = b.off ? 0 : PV_ENOMEM;
    for (uint32_t i = 0; i < n && !rc; i++) {
        const float *v = io->vec(io->ctx, first + i);
        if (!v || levels[i] >= HNSW_MAX_LEVEL) {
            rc = PV_EINVAL;
            break;
        }
        memcpy(x + (size_t)i * p->dim, v, (size_t)p->dim * sizeof(float));
        for (uint32_t j = 0; j < p->dim; j++)
            if (!isfinite(x[(size_t)i * p->dim + j]))
                rc = PV_ENUMERIC;
        b.off[i] = nslots;
        nslots += levels[i] + 1;
    }
    if (!rc) {
        b.nsel = pv_alloc_array(nslots, sizeof *b.nsel);
        b.sel = pv_alloc_array(nslots * p->M, sizeof *b.sel);
        rc = b.nsel && b.sel ? 0 : PV_ENOMEM;
    }
    if (!rc)
        rc = plan_all(&b, s, nthreads);
    if (!rc) {
        hnsw_state ns = *st;
        for (uint32_t i = 0; i < n && !rc; i++)
            rc = link_node(&b, &ns, s, i);
        if (!rc)
            *st = ns;
    }
    if (x != s->q)
        free(x);
    free(b.off);
    free(b.nsel);
    free(b.sel);
    return rc;
}

int hnsw_insert(const hnsw_params *p, hnsw_state *st, const hnsw_io *io,
                hnsw_scratch *s, uint32_t id, uint32_t level)
{
    return hnsw_insert_batch(p, st, io, s, id, 1, &level, 1);
}

/* ---- k-NN search (Algorithm 5) -------------------------------------------- */

int hnsw_search(const hnsw_params *p, const hnsw_state *st,
                const hnsw_io *io, hnsw_scratch *s, const float *q,
                uint32_t k, uint32_t ef, hnsw_hit *out, uint32_t *n)
{
    return hnsw_search_from(p, st, io, s, q, HNSW_NONE, k, ef, out, n);
}

/* The scorer of a search for q: float32, or io's codes with q prepared for
 * them (PV_ENUMERIC when q holds a NaN or Inf). */
static int search_scorer(const hnsw_io *io, uint32_t dim, hnsw_scratch *s, const float *q,
                         scorer *sc)
{
    if (io->code_kind != QUANT_F32 && !io->code)
        return PV_EINVAL;
    return quant_scorer_init(sc, io->code_kind, io->code_i8, q, dim, &s->qq);
}

int hnsw_search_from(const hnsw_params *p, const hnsw_state *st,
                     const hnsw_io *io, hnsw_scratch *s, const float *q,
                     uint32_t start, uint32_t k, uint32_t ef, hnsw_hit *out,
                     uint32_t *n)
{
    int rc = params_check(p);
    if (rc)
        return rc;
    if (!st || !io || !s || !q || !n || (k && !out))
        return PV_EINVAL;
    *n = 0;
    if (st->entry == HNSW_NONE || k == 0)
        return 0;
    if (st->entry >= st->nodes || st->max_level >= HNSW_MAX_LEVEL)
        return PV_EINVAL;
    if (ef < k)
        ef = k;
    if (ef > HNSW_MAX_EF)
        return PV_EINVAL;
    rc = scratch_reserve(s, st->nodes, p->M0, ef, 0);
    if (rc)
        return rc;

    if (start != HNSW_NONE && start >= st->nodes)
        return PV_EINVAL;
    uint32_t ep = start != HNSW_NONE ? start : st->entry;
    scorer sc;
    if ((rc = search_scorer(io, p->dim, s, q, &sc)) != 0)
        return rc;
    const void *v = record(&sc, io, ep);
    if (!v)
        return PV_ECORRUPT;
    float eps = score(&sc, v);
    /* Stored vectors are finite and unit length, so only a NaN or Inf in q
     * makes this non-finite: checked once here, not per component. */
    if (!isfinite(eps))
        return PV_ENUMERIC;
    /* A given start is already where the query is: no descent. */
    if (start == HNSW_NONE)
        rc = greedy(p, io, s, &sc, st->nodes, st->max_level, 0, &ep, &eps);
    if (!rc)
        rc = search_layer(p, io, s, &sc, st->nodes, ep, eps, 0, ef);
    if (rc)
        return rc;
    minheap_sort_desc(s->rq, s->nrq);
    uint32_t m = s->nrq < k ? s->nrq : k;
    for (uint32_t j = 0; j < m; j++)
        out[j] = (hnsw_hit){s->rq[j].id, s->rq[j].s};
    *n = m;
    return 0;
}
