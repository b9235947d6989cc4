/*
 * graph.c - hnsw_io on LMDB: level-0 node records in chunks, upper levels
 * per node, vectors from the vector chunks, graph state in meta.
 *
 * Reading is zero-copy: graph_open() looks up each level-0 chunk once and
 * from then on a node's links are pointer arithmetic into the map, as its
 * vector is. Writing copies a chunk (or an upper record) into an overlay
 * the first time a batch changes it; graph_flush() writes the overlays back
 * with one put each, in the caller's write transaction. A chunk holds
 * store's `chunk` nodes, so a batch of inserts rewrites only the chunks its
 * new nodes and their neighbours live in.
 *
 * Node record (level 0), native little-endian u32 words:
 *   word 0     link count (bits 0..30), deleted flag (bit 31)
 *   words 1..  M0 neighbour ids
 * Upper record: u32 level L, then L blocks of (u32 count, M u32 ids).
 *
 * Checked on reading (a damaged record is PV_ECORRUPT, its words recorded
 * with store_corrupt): the state in meta (entry, level, nodes within the
 * graph and the ids handed out; absent only while no item exists), every
 * level-0 chunk a whole number of records, full but for the last, covering
 * every node; a record asked for that is missing or too short. Link counts
 * and link ids are checked by index/hnsw.c as it copies them out (its
 * get_links), and every link by graph_check_node for `pixvec check`.
 */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"

#define DELETED_BIT 0x80000000u

typedef struct upper_rec {
    uint32_t id; /* HNSW_NONE: empty slot */
    uint32_t len;
    uint8_t *buf; /* ours (own) or, preloaded and unchanged, the map's */
    int own;
} upper_rec;

struct graph {
    store_txn *t;
    int write;
    hnsw_params p;
    hnsw_state state;
    uint32_t C, rec_bytes, up_block;
    /* vectors */
    const float *const *vptr;
    const uint32_t *vcnt;
    uint32_t nvchunks;
    uint32_t pend_first, pend_n;
    const float *pend;
    /* level 0: per chunk the bytes (map or overlay), the records present,
     * and whether the bytes are our overlay */
    uint8_t **l0;
    uint32_t *l0n;
    uint8_t *l0own;
    uint32_t nl0;
    /* upper-level overlay: open addressing on id */
    upper_rec *up;
    size_t upcap, upn;
    int up_all; /* every upper record is in the overlay (graph_preload) */
    int said;   /* a store_corrupt message names what was wrong */
    hnsw_io io;
    const codes_view *cv; /* compact copies (graph_use_codes) */
    int rescore;          /* graph_use_codes: hits scored again in float32 */
    codes_view cv_own;    /* a codes-only graph's own (graph_open) */
    float *dec;           /* io_vec's decoded vector (codes only) */
};

/* A damaged graph record: its words go to the transaction's message. */
#define graph_corrupt(g, ...) ((g)->said = 1, store_corrupt((g)->t, __VA_ARGS__))

/* ---- vectors ----------------------------------------------------------- */

static const float *io_vec(void *ctx, uint32_t id)
{
    graph *g = ctx;
    uint32_t c = id / g->C, off = id % g->C;
    if (g->pend && id >= g->pend_first && id - g->pend_first < g->pend_n)
        return g->pend + (size_t)(id - g->pend_first) * g->p.dim;
    if (g->io.codes_only) {
        /* No float32 vector is stored: hnsw_insert_batch asks for the
         * vectors of the nodes it inserts and copies each at once, so a
         * node not pending (vacuum re-inserts stored nodes) is decoded
         * into one buffer that the next call overwrites. */
        if (id >= g->cv->n || !g->dec)
            return NULL;
        codes_decode(g->cv, id, g->p.dim, g->dec);
        return g->dec;
    }
    if (c >= g->nvchunks || off >= g->vcnt[c])
        return NULL;
    return g->vptr[c] + (size_t)off * g->p.dim;
}

static const void *io_code(void *ctx, uint32_t id);

/* Searches (and, codes only, inserts) read the codes of v. */
static void read_codes(graph *g, const codes_view *v)
{
    g->cv = v;
    g->io.code = io_code;
    g->io.code_i8 = v->kind == PV_VECTORS_I8 ? &v->q8 : NULL;
    g->io.code_kind = codes_quant_kind(v);
}

/* A codes-only store whose vectors are dropped: the graph reads codes
 * (its own view, for writers and for readers without a cache; readers with
 * one call graph_use_codes with the handle's). */
static int open_codes_only(graph *g, store_txn *t, const store_schema *s, int own)
{
    int rc;
    g->io.codes_only = 1;
    if (!own)
        return PV_OK;
    if ((rc = codes_view_load_ahead(t, s, g->write ? HNSW_MAX_BATCH : 0, &g->cv_own)) != 0)
        return rc;
    if (!(g->dec = pv_alloc_array(s->dim, sizeof *g->dec)))
        return PV_ENOMEM;
    read_codes(g, &g->cv_own);
    return g->cv_own.kind == PV_VECTORS_F32 ? store_corrupt(t, "meta codes_n: no codes, but "
                                                               "the vectors are dropped")
                                            : PV_OK;
}

static const void *io_code(void *ctx, uint32_t id)
{
    const graph *g = ctx;
    return codes_at(g->cv, id);
}

/* ---- level 0 ------------------------------------------------------------ */

static uint8_t *rec0(graph *g, uint32_t id)
{
    uint32_t c = id / g->C, off = id % g->C;
    if (c >= g->nl0 || off >= g->l0n[c])
        return NULL;
    return g->l0[c] + (size_t)off * g->rec_bytes;
}

static int grow_l0(graph *g, uint32_t nchunks)
{
    uint8_t **nl;
    uint32_t *nn;
    uint8_t *no;
    if (nchunks <= g->nl0)
        return PV_OK;
    nl = pv_realloc_array(g->l0, nchunks, sizeof *nl);
    if (!nl)
        return PV_ENOMEM;
    g->l0 = nl;
    nn = pv_realloc_array(g->l0n, nchunks, sizeof *nn);
    if (!nn)
        return PV_ENOMEM;
    g->l0n = nn;
    no = pv_realloc_array(g->l0own, nchunks, 1);
    if (!no)
        return PV_ENOMEM;
    g->l0own = no;
    for (uint32_t c = g->nl0; c < nchunks; c++) {
        g->l0[c] = NULL;
        g->l0n[c] = 0;
        g->l0own[c] = 0;
    }
    g->nl0 = nchunks;
    return PV_OK;
}

/* Make chunk c ours (a full-size copy) before changing it. */
static int own_chunk(graph *g, uint32_t c)
{
    uint8_t *buf;
    int rc = grow_l0(g, c + 1);
    if (rc != 0)
        return rc;
    if (g->l0own[c])
        return PV_OK;
    /* zeroed: a node's unused link slots are written out with its record,
     * and must not carry whatever the heap held before (valgrind saw it) */
    buf = pv_calloc_array(g->C, g->rec_bytes);
    if (!buf)
        return PV_ENOMEM;
    if (g->l0n[c])
        memcpy(buf, g->l0[c], (size_t)g->l0n[c] * g->rec_bytes);
    g->l0[c] = buf;
    g->l0own[c] = 1;
    return PV_OK;
}

/* ---- upper levels ---------------------------------------------------------- */

static upper_rec *up_find(graph *g, uint32_t id, int insert)
{
    size_t mask, i;
    if (insert && (g->upn + 1) * 2 > g->upcap) {
        size_t ncap = g->upcap ? g->upcap * 2 : 64;
        upper_rec *nu = pv_alloc_array(ncap, sizeof *nu);
        if (!nu)
            return NULL;
        for (size_t k = 0; k < ncap; k++)
            nu[k].id = HNSW_NONE;
        for (size_t k = 0; k < g->upcap; k++) {
            if (g->up[k].id == HNSW_NONE)
                continue;
            i = (g->up[k].id * 2654435761u) & (ncap - 1);
            while (nu[i].id != HNSW_NONE)
                i = (i + 1) & (ncap - 1);
            nu[i] = g->up[k];
        }
        free(g->up);
        g->up = nu;
        g->upcap = ncap;
    }
    if (!g->upcap)
        return NULL;
    mask = g->upcap - 1;
    i = (id * 2654435761u) & mask;
    while (g->up[i].id != HNSW_NONE) {
        if (g->up[i].id == id)
            return &g->up[i];
        i = (i + 1) & mask;
    }
    if (!insert)
        return NULL;
    g->up[i].id = id;
    g->up[i].buf = NULL;
    g->up[i].len = 0;
    g->up[i].own = 0;
    g->upn++;
    return &g->up[i];
}

/* The upper record of id: overlay first, then the map. */
static int up_get(graph *g, uint32_t id, const uint8_t **p, size_t *n)
{
    upper_rec *r = up_find(g, id, 0);
    const void *v;
    int rc;
    if (r) {
        *p = r->buf;
        *n = r->len;
        return PV_OK;
    }
    if (g->up_all)
        return PV_ENOTFOUND;
    rc = store_blob_get(g->t, STORE_HNSW_UPPER, id, &v, n);
    if (rc == 0)
        *p = v;
    return rc;
}

/* ---- hnsw_io --------------------------------------------------------------- */

static int io_links_get(void *ctx, uint32_t id, uint32_t level,
                        const uint32_t **ids, uint32_t *n)
{
    graph *g = ctx;
    const uint8_t *p;
    size_t len, off;
    int rc;
    if (level == 0) {
        p = rec0(g, id);
        if (!p)
            return graph_corrupt(g, "hnsw node %u: no level-0 record", id);
        *n = pv_ld32(p) & ~DELETED_BIT;
        *ids = (const uint32_t *)(const void *)(p + 4);
        return PV_OK;
    }
    /* A search asks for the levels the state and the links lead it to: a
     * node without them is a damaged record, not a caller's mistake. */
    if ((rc = up_get(g, id, &p, &len)) != 0)
        return rc == PV_ENOTFOUND
                   ? graph_corrupt(g, "hnsw node %u: no record of its level %u", id, level)
                   : rc;
    off = 4 + (size_t)(level - 1) * g->up_block;
    if (len < 4 || level > pv_ld32(p) || off + g->up_block > len)
        return graph_corrupt(g, "hnsw node %u: upper record of %zu bytes has no level %u",
                             id, len, level);
    *n = pv_ld32(p + off);
    *ids = (const uint32_t *)(const void *)(p + off + 4);
    return PV_OK;
}

static int io_links_set(void *ctx, uint32_t id, uint32_t level,
                        const uint32_t *ids, uint32_t n)
{
    graph *g = ctx;
    int rc;
    if (!g->write)
        return PV_ERDONLY;
    if (level == 0) {
        uint8_t *p;
        if (n > g->p.M0)
            return PV_EINVAL;
        if ((rc = own_chunk(g, id / g->C)) != 0)
            return rc;
        p = rec0(g, id);
        if (!p)
            return PV_EINVAL;
        pv_st32(p, (pv_ld32(p) & DELETED_BIT) | n);
        memcpy(p + 4, ids, (size_t)n * 4);
        return PV_OK;
    } else {
        upper_rec *r = up_find(g, id, 0);
        size_t off = 4 + (size_t)(level - 1) * g->up_block;
        if (n > g->p.M)
            return PV_EINVAL;
        if (!r || !r->own) {
            const uint8_t *src;
            size_t len;
            uint8_t *copy;
            if ((rc = up_get(g, id, &src, &len)) != 0)
                return rc == PV_ENOTFOUND ? PV_EINVAL : rc;
            if (!(copy = malloc(len)))
                return PV_ENOMEM;
            memcpy(copy, src, len);
            if (!r && !(r = up_find(g, id, 1))) {
                free(copy);
                return PV_ENOMEM;
            }
            r->buf = copy;
            r->len = (uint32_t)len;
            r->own = 1;
        }
        if (level > pv_ld32(r->buf) || off + g->up_block > r->len)
            return PV_EINVAL;
        pv_st32(r->buf + off, n);
        memcpy(r->buf + off + 4, ids, (size_t)n * 4);
        return PV_OK;
    }
}

static int io_node_add(void *ctx, uint32_t id, uint32_t level)
{
    graph *g = ctx;
    uint32_t c = id / g->C, off = id % g->C;
    int rc;
    if (!g->write)
        return PV_ERDONLY;
    if ((rc = own_chunk(g, c)) != 0)
        return rc;
    /* records up to off exist (ids are dense) */
    while (g->l0n[c] <= off) {
        pv_st32(g->l0[c] + (size_t)g->l0n[c] * g->rec_bytes, 0);
        g->l0n[c]++;
    }
    pv_st32(g->l0[c] + (size_t)off * g->rec_bytes, 0);
    if (level > 0) {
        upper_rec *r = up_find(g, id, 1);
        if (!r)
            return PV_ENOMEM;
        if (r->own)
            free(r->buf);
        r->len = 4 + level * g->up_block;
        r->buf = calloc(1, r->len);
        r->own = 1;
        if (!r->buf)
            return PV_ENOMEM;
        pv_st32(r->buf, level);
    }
    return PV_OK;
}

static int io_deleted(void *ctx, uint32_t id)
{
    const uint8_t *p = rec0(ctx, id);
    return p ? (pv_ld32(p) & DELETED_BIT) != 0 : 0;
}

/* ---- open / flush ----------------------------------------------------------- */

/* The graph state in meta, checked against the layout: absent (an empty
 * graph) only while no id was handed out; an entry point below the nodes
 * (or none, in an empty graph), a level below HNSW_MAX_LEVEL, no more nodes
 * than ids. */
static int load_state(graph *g, const store_counts *c)
{
    static const char *const keys[] = {"hnsw_entry", "hnsw_level", "hnsw_nodes",
                                       "hnsw_rng"};
    uint64_t v[4];
    int rc = PV_OK;
    for (int i = 0; i < 4 && rc == 0; i++) {
        rc = store_meta_get_u64(g->t, keys[i], &v[i]);
        if (rc == PV_ENOTFOUND && i == 0 && c->next_id == 0) {
            hnsw_state_init(&g->state, 0x5eed5eedULL); /* before the first insert */
            return PV_OK;
        }
        if (rc == PV_ENOTFOUND)
            return graph_corrupt(g, "meta %s: missing, with %u ids handed out", keys[i],
                                 c->next_id);
        if (rc == PV_ECORRUPT)
            g->said = 1; /* storage said which key */
    }
    if (rc != 0)
        return rc;
    if (v[2] > c->next_id)
        return graph_corrupt(g, "meta hnsw_nodes: %llu nodes, but %u ids handed out",
                             (unsigned long long)v[2], c->next_id);
    if (v[1] >= HNSW_MAX_LEVEL)
        return graph_corrupt(g, "meta hnsw_level: %llu, at most %u",
                             (unsigned long long)v[1], HNSW_MAX_LEVEL - 1);
    if (v[0] == HNSW_NONE ? v[2] != 0 || v[1] != 0 : v[0] >= v[2])
        return graph_corrupt(g, "meta hnsw_entry: %llu with %llu nodes at level %llu",
                             (unsigned long long)v[0], (unsigned long long)v[2],
                             (unsigned long long)v[1]);
    g->state.entry = (uint32_t)v[0];
    g->state.max_level = (uint32_t)v[1];
    g->state.nodes = (uint32_t)v[2];
    g->state.rng = v[3];
    return PV_OK;
}

void graph_cache_free(graph_cache *c)
{
    if (!c)
        return;
    free(c->l0);
    free(c->l0n);
    memset(c, 0, sizeof *c);
}

/* Keep what a read open found for the next snapshot with the same key. */
static void cache_fill(graph_cache *c, const graph *g, uint64_t key)
{
    c->key = 0;
    if (g->nl0 > c->cap) {
        uint8_t **nl = pv_realloc_array(c->l0, g->nl0, sizeof *nl);
        uint32_t *nn;
        if (!nl)
            return;
        c->l0 = nl;
        nn = pv_realloc_array(c->l0n, g->nl0, sizeof *nn);
        if (!nn)
            return;
        c->l0n = nn;
        c->cap = g->nl0;
    }
    if (g->nl0) {
        memcpy(c->l0, g->l0, g->nl0 * sizeof *c->l0);
        memcpy(c->l0n, g->l0n, g->nl0 * sizeof *c->l0n);
    }
    c->n = g->nl0;
    c->state = g->state;
    c->has_deleted = g->io.deleted != NULL;
    c->key = key;
}

int graph_open(store *st, store_txn *t, int write, graph_cache *cache,
               graph **out)
{
    const store_schema *s = store_get_schema(st);
    graph *g = calloc(1, sizeof *g);
    uint64_t key = write ? 0 : store_snapshot(t);
    store_counts counts;
    uint32_t nchunks;
    int rc;
    if (!g)
        return PV_ENOMEM;
    g->t = t;
    g->write = write;
    g->C = s->chunk;
    g->p.M = s->hnsw_m;
    g->p.M0 = 2 * s->hnsw_m;
    g->p.ef_construction = s->hnsw_efc;
    g->p.dim = s->dim;
    g->rec_bytes = (1 + g->p.M0) * 4;
    g->up_block = (1 + g->p.M) * 4;
    g->io = (hnsw_io){g,          io_vec, io_links_get, io_links_set, io_node_add,
                      io_deleted, QUANT_F32, NULL, NULL, 0};
    if (store_vec_dropped(t))
        rc = open_codes_only(g, t, s, write || !cache);
    else
        rc = store_vec_chunks(t, &g->vptr, &g->vcnt, &g->nvchunks);
    if (rc != 0)
        goto fail;
    if (cache && key != 0 && cache->key == key) {
        if ((rc = grow_l0(g, cache->n)) != 0)
            goto fail;
        if (cache->n) {
            memcpy(g->l0, cache->l0, cache->n * sizeof *g->l0);
            memcpy(g->l0n, cache->l0n, cache->n * sizeof *g->l0n);
        }
        g->state = cache->state;
        if (!cache->has_deleted)
            g->io.deleted = NULL;
        *out = g;
        return PV_OK;
    }
    if ((rc = store_counts_get(t, &counts)) != 0 || (rc = load_state(g, &counts)) != 0)
        goto fail;
    /* With no tombstone anywhere, searches skip the per-result check. */
    if (counts.deleted == 0)
        g->io.deleted = NULL;
    nchunks = (uint32_t)(((uint64_t)g->state.nodes + g->C - 1) / g->C);
    if ((rc = grow_l0(g, nchunks)) != 0)
        goto fail;
    for (uint32_t c = 0; c < nchunks; c++) {
        /* Every chunk full but the last, which holds the nodes left. */
        const uint32_t need = c + 1 < nchunks ? g->C : g->state.nodes - c * g->C;
        const void *p;
        size_t n;
        rc = store_blob_get(t, STORE_HNSW, c, &p, &n);
        if (rc == PV_ENOTFOUND) {
            rc = graph_corrupt(g, "hnsw chunk %u: missing, with %u nodes", c,
                               g->state.nodes);
            goto fail;
        }
        if (rc == 0 && (n % g->rec_bytes != 0 || n / g->rec_bytes < need ||
                        n / g->rec_bytes > g->C)) {
            rc = graph_corrupt(g, "hnsw chunk %u: %zu bytes, not %u..%u records of %u bytes",
                               c, n, need, g->C, g->rec_bytes);
            goto fail;
        }
        if (rc != 0)
            goto fail;
        g->l0[c] = (uint8_t *)p; /* read only unless owned */
        g->l0n[c] = (uint32_t)(n / g->rec_bytes);
    }
    if (cache && key != 0)
        cache_fill(cache, g, key);
    *out = g;
    return PV_OK;
fail:
    graph_close(g);
    return rc;
}

void graph_close(graph *g)
{
    if (!g)
        return;
    for (uint32_t c = 0; c < g->nl0; c++)
        if (g->l0own[c])
            free(g->l0[c]);
    free(g->l0);
    free(g->l0n);
    free(g->l0own);
    for (size_t i = 0; i < g->upcap; i++)
        if (g->up[i].id != HNSW_NONE && g->up[i].own)
            free(g->up[i].buf);
    free(g->up);
    codes_view_free(&g->cv_own);
    free(g->dec);
    free(g);
}

int graph_use_codes(graph *g, const codes_view *v, int rescore)
{
    /* Codes for only some nodes: float32 until the rest have theirs. */
    if (g->write || v->n < g->state.nodes || v->kind == PV_VECTORS_F32)
        return 0;
    read_codes(g, v);
    g->rescore = rescore && !g->io.codes_only;
    return 1;
}

void graph_set_pending(graph *g, uint32_t first, uint32_t n, const float *vecs)
{
    g->pend_first = first;
    g->pend_n = n;
    g->pend = vecs;
}

static int preload_one(void *ctx, uint32_t id, const void *p, size_t n)
{
    graph *g = ctx;
    upper_rec *r;
    if (n > UINT32_MAX)
        return PV_ECORRUPT;
    if (up_find(g, id, 0))
        return PV_OK; /* the overlay's is newer */
    if (!(r = up_find(g, id, 1)))
        return PV_ENOMEM;
    r->buf = (uint8_t *)p; /* read only until links_set copies it */
    r->len = (uint32_t)n;
    return PV_OK;
}

/* Put every upper record into the overlay (the map's, uncopied), so that
 * no read of the graph calls into LMDB: the planning threads of a batch
 * insert read the graph concurrently, and a write transaction belongs to
 * one thread. At 1/ln(M) of the nodes with upper levels this is one
 * cursor walk over a small table per batch. */
static int graph_preload(graph *g)
{
    int rc;
    if (g->up_all)
        return PV_OK;
    if ((rc = store_blob_each(g->t, STORE_HNSW_UPPER, preload_one, g)) != 0)
        return rc;
    g->up_all = 1;
    return PV_OK;
}

int graph_insert_batch(graph *g, hnsw_scratch *s, uint32_t first, uint32_t n,
                       unsigned nthreads)
{
    uint32_t *levels;
    int rc;
    if (!g->write)
        return PV_ERDONLY;
    if (n == 0)
        return PV_OK;
    if ((rc = graph_preload(g)) != 0)
        return rc;
    if (!(levels = pv_alloc_array(n, sizeof *levels)))
        return PV_ENOMEM;
    hnsw_state before = g->state;
    /* Ids between the graph's last node and first are tombstones it never
     * held (vacuum rebuilds the graph up to the last live id only): they
     * become deleted nodes without links, so every id below nodes has a
     * record and none of them reads as a live node. */
    for (uint32_t id = g->state.nodes; id < first; id++) {
        uint8_t *p;
        if ((rc = io_node_add(g, id, 0)) != 0 || !(p = rec0(g, id))) {
            free(levels);
            g->state = before;
            return rc ? rc : PV_ECORRUPT;
        }
        pv_st32(p, DELETED_BIT);
        g->io.deleted = io_deleted;
    }
    if (first > g->state.nodes)
        g->state.nodes = first;
    /* Levels drawn in id order: the same graph for any batch split of the
     * same rng state's draws. */
    for (uint32_t i = 0; i < n; i++)
        levels[i] = hnsw_random_level(&g->state, &g->p);
    rc = hnsw_insert_batch(&g->p, &g->state, &g->io, s, first, n, levels,
                           nthreads);
    if (rc != 0)
        g->state = before; /* the caller drops the transaction */
    free(levels);
    return rc;
}


int graph_delete(graph *g, uint32_t id)
{
    const uint32_t c = id / g->C, off = id % g->C;
    uint8_t *p;
    int rc;
    if (id >= g->state.nodes)
        return PV_OK; /* not in the graph (never inserted) */
    if ((rc = own_chunk(g, c)) != 0)
        return rc;
    if (g->write && g->l0n[c] <= off) {
        /* vacuum inserts the live ids only: a removed id past the last
         * live one of its chunk, with live ids in later chunks, has no
         * record yet. It gets an empty one, so every chunk but the last
         * stays full (FORMAT.md). */
        while (g->l0n[c] <= off) {
            pv_st32(g->l0[c] + (size_t)g->l0n[c] * g->rec_bytes, 0);
            g->l0n[c]++;
        }
    }
    if (!(p = rec0(g, id)))
        return graph_corrupt(g, "hnsw node %u: no level-0 record", id);
    pv_st32(p, pv_ld32(p) | DELETED_BIT);
    g->io.deleted = io_deleted; /* from now on searches must check */
    return PV_OK;
}

int graph_flush(graph *g)
{
    int rc;
    for (uint32_t c = 0; c < g->nl0; c++) {
        if (!g->l0own[c])
            continue;
        rc = store_blob_put(g->t, STORE_HNSW, c, g->l0[c],
                            (size_t)g->l0n[c] * g->rec_bytes);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < g->upcap; i++) {
        if (g->up[i].id == HNSW_NONE || !g->up[i].own)
            continue;
        rc = store_blob_put(g->t, STORE_HNSW_UPPER, g->up[i].id, g->up[i].buf,
                            g->up[i].len);
        if (rc != 0)
            return rc;
    }
    if ((rc = store_meta_put_u64(g->t, "hnsw_entry", g->state.entry)) != 0 ||
        (rc = store_meta_put_u64(g->t, "hnsw_level", g->state.max_level)) != 0 ||
        (rc = store_meta_put_u64(g->t, "hnsw_nodes", g->state.nodes)) != 0 ||
        (rc = store_meta_put_u64(g->t, "hnsw_rng", g->state.rng)) != 0)
        return rc;
    return PV_OK;
}

/* index/hnsw.c finds a link count or a link id beyond the graph without
 * saying where: say what it was, unless a record of ours said more. */
static int search_rc(graph *g, int rc)
{
    if (rc == PV_ECORRUPT && !g->said)
        return graph_corrupt(g, "hnsw: a node's links exceed %u or name no node "
                                "(`pixvec check` names it)",
                             g->p.M0);
    return rc;
}

static int cmp_hit_desc(const void *x, const void *y)
{
    const hnsw_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The hits of a search on codes scored again from the float32 vectors,
 * best first (graph_use_codes' rescore). */
static int rescore_hits(graph *g, int rc, const float *q, hnsw_hit *out, uint32_t n)
{
    if (rc != 0 || !g->rescore)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        const float *v = io_vec(g, out[i].id);
        if (!v)
            return graph_corrupt(g, "vectors: no vector for graph node %u", out[i].id);
        out[i].score = vec_dot(q, v, g->p.dim);
    }
    qsort(out, n, sizeof *out, cmp_hit_desc);
    return PV_OK;
}

int graph_search(graph *g, hnsw_scratch *s, const float *q, uint32_t k,
                 uint32_t ef, hnsw_hit *out, uint32_t *n)
{
    int rc = search_rc(g, hnsw_search(&g->p, &g->state, &g->io, s, q, k, ef, out, n));
    return rescore_hits(g, rc, q, out, *n);
}

int graph_search_from(graph *g, hnsw_scratch *s, uint32_t start, const float *q,
                      uint32_t k, uint32_t ef, hnsw_hit *out, uint32_t *n)
{
    if (start != HNSW_NONE && start >= g->state.nodes)
        return graph_corrupt(g, "item %u: not a node of the HNSW graph (%u nodes)", start,
                             g->state.nodes);
    int rc = search_rc(g, hnsw_search_from(&g->p, &g->state, &g->io, s, q, start, k, ef, out, n));
    return rescore_hits(g, rc, q, out, *n);
}

int graph_is_deleted(graph *g, uint32_t id) { return io_deleted(g, id); }

const hnsw_state *graph_state(const graph *g) { return &g->state; }

static int check_links(graph *g, uint32_t id, uint32_t level, uint32_t max)
{
    const uint32_t *ids;
    uint32_t n;
    int rc = io_links_get(g, id, level, &ids, &n);
    if (rc != 0)
        return rc;
    if (n > max)
        return graph_corrupt(g, "hnsw node %u level %u: %u links, at most %u", id, level, n,
                             max);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, ids + i, 4);
        if (v >= g->state.nodes || v == id)
            return graph_corrupt(g, "hnsw node %u level %u: a link to %s %u", id, level,
                                 v == id ? "itself," : "no node:", v);
        if (level > 0) { /* a search that follows it reads v's links there */
            const uint8_t *vp;
            size_t vlen;
            int vrc = up_get(g, v, &vp, &vlen);
            uint32_t vlevels = vrc == 0 && vlen >= 4 ? pv_ld32(vp) : 0;
            if (vrc != 0 && vrc != PV_ENOTFOUND)
                return vrc;
            if (vlevels < level)
                return graph_corrupt(g, "hnsw node %u level %u: a link to node %u, whose top "
                                        "level is %u", id, level, v, vlevels);
        }
    }
    return PV_OK;
}

int graph_check_node(graph *g, uint32_t id)
{
    const uint8_t *p;
    size_t len;
    uint32_t levels;
    int rc;
    if (id >= g->state.nodes || !rec0(g, id))
        return graph_corrupt(g, "hnsw node %u: no level-0 record", id);
    if ((rc = check_links(g, id, 0, g->p.M0)) != 0)
        return rc;
    rc = up_get(g, id, &p, &len);
    if (rc == PV_ENOTFOUND) {
        if (id == g->state.entry && g->state.max_level > 0)
            return graph_corrupt(g, "hnsw node %u: the entry point at level %u has no "
                                    "upper record", id, g->state.max_level);
        return PV_OK;
    }
    if (rc != 0)
        return rc;
    levels = len >= 4 ? pv_ld32(p) : 0;
    if (len < 4 || levels == 0 || levels > g->state.max_level ||
        len != 4 + (size_t)levels * g->up_block)
        return graph_corrupt(g, "hnsw node %u: upper record of %zu bytes for level %u "
                                "(the graph's top is %u)",
                             id, len, levels, g->state.max_level);
    if (id == g->state.entry && levels != g->state.max_level)
        return graph_corrupt(g, "hnsw node %u: the entry point has level %u, meta says %u",
                             id, levels, g->state.max_level);
    for (uint32_t l = 1; l <= levels; l++)
        if ((rc = check_links(g, id, l, g->p.M)) != 0)
            return rc;
    return PV_OK;
}

int graph_reset(graph *g)
{
    int rc;
    if (!g->write)
        return PV_ERDONLY;
    if ((rc = store_blob_drop(g->t, STORE_HNSW)) != 0 ||
        (rc = store_blob_drop(g->t, STORE_HNSW_UPPER)) != 0)
        return rc;
    for (uint32_t c = 0; c < g->nl0; c++) {
        if (g->l0own[c])
            free(g->l0[c]);
        g->l0[c] = NULL;
        g->l0own[c] = 0;
        g->l0n[c] = 0;
    }
    for (size_t i = 0; i < g->upcap; i++)
        if (g->up[i].id != HNSW_NONE) {
            if (g->up[i].own)
                free(g->up[i].buf);
            g->up[i].id = HNSW_NONE;
        }
    g->upn = 0;
    g->up_all = 1; /* the table is empty now */
    hnsw_state_init(&g->state, g->state.rng);
    return PV_OK;
}
