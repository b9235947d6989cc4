/*
 * hnsw.h - Hierarchical Navigable Small World graph (index room).
 *
 * Malkov and Yashunin, "Efficient and robust approximate nearest neighbor
 * search using Hierarchical Navigable Small World graphs" (TPAMI 2018):
 * insertion is Algorithm 1, layer search Algorithm 2, neighbour selection the
 * heuristic of Algorithm 4 (without keepPrunedConnections, as hnswlib), k-NN
 * search Algorithm 5. Parameters have hnswlib's meaning and defaults:
 * M = 16 links per node on upper levels, M0 = 2*M on level 0,
 * ef_construction = 200, level multiplier 1/ln(M).
 *
 * The graph lives wherever the caller keeps it: every read and write of a
 * node's links and every vector goes through hnsw_io, so the same code runs
 * on LMDB chunks (engine) and on plain arrays (tests). Similarity is the dot
 * product of unit vectors (cosine); larger is closer.
 *
 * Deleted nodes (tombstones) are walked through but never returned.
 */
#ifndef PV_HNSW_H
#define PV_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "flat.h"
#include "quant.h"

#define HNSW_MAX_LEVEL 16
#define HNSW_NONE UINT32_MAX
#define HNSW_MAX_THREADS 64
#define HNSW_MAX_BATCH 65536u /* nodes per hnsw_insert_batch */

typedef struct hnsw_params {
    uint32_t M;               /* links per node, levels >= 1 (default 16) */
    uint32_t M0;              /* links per node, level 0 (default 2*M) */
    uint32_t ef_construction; /* default 200 */
    uint32_t dim;
} hnsw_params;

/* Where the graph is kept. All functions return 0 or a PV_E* code, except
 * vec and code (NULL if the id has none) and deleted (nonzero = tombstone). */
typedef struct hnsw_io {
    void *ctx;
    /* The vector of id (dim floats); may be unaligned (read with memcpy or
     * unaligned loads). Valid until the next links_set. */
    const float *(*vec)(void *ctx, uint32_t id);
    /* The links of id at level: *n ids at *ids (u32, may be unaligned: read
     * with memcpy). Valid until the next links_set. A node above its own
     * level is a caller bug (PV_EINVAL). */
    int (*links_get)(void *ctx, uint32_t id, uint32_t level,
                     const uint32_t **ids, uint32_t *n);
    /* Replace the links of id at level (n <= M0 on level 0, <= M above). */
    int (*links_set)(void *ctx, uint32_t id, uint32_t level,
                     const uint32_t *ids, uint32_t n);
    /* Make room for a new node with the given top level (links empty). */
    int (*node_add)(void *ctx, uint32_t id, uint32_t level);
    /* NULL when no node is deleted: saves a call (and a cache miss on
     * the node's record) for every node entering a search's results. */
    int (*deleted)(void *ctx, uint32_t id);
    /* Compact copies: when code_kind is not QUANT_F32, hnsw_search and
     * hnsw_search_from score candidates by code(ctx, id) (any alignment,
     * lifetime as vec's) against the query prepared for that kind, and
     * their similarities are the compact ones: the caller re-scores them
     * exactly if it wants. Inserts score float32 vectors unless
     * codes_only, so the graph is the same with or without codes. */
    quant_kind code_kind;
    const quant_i8 *code_i8; /* QUANT_I8: the codes' parameters */
    const void *(*code)(void *ctx, uint32_t id);
    /* Nonzero: stored nodes have codes only (vec gives just the nodes
     * being inserted). Inserts then score candidates by code against the
     * new node's float vector, and compare two stored nodes by the
     * similarity of their codes (quant_i8_dot_codes; f16: one decoded).
     * code must give the inserted nodes' codes too. */
    int codes_only;
} hnsw_io;

/* The graph's global state, kept by the caller (in meta, for LMDB). */
typedef struct hnsw_state {
    uint32_t entry;     /* entry point id, HNSW_NONE when empty */
    uint32_t max_level; /* level of the entry point */
    uint32_t nodes;     /* ids 0..nodes-1 are in the graph */
    uint64_t rng;       /* level generator state (reproducible builds) */
} hnsw_state;

void hnsw_state_init(hnsw_state *st, uint64_t seed);

/* Scratch memory for searches and inserts (visited marks, heaps); one per
 * thread. capacity grows as ids grow. */
typedef struct hnsw_scratch hnsw_scratch;
hnsw_scratch *hnsw_scratch_new(void);
void hnsw_scratch_free(hnsw_scratch *s); /* NULL is fine */

/* The level a new node gets: floor(-ln(U) * 1/ln(M)), capped. */
uint32_t hnsw_random_level(hnsw_state *st, const hnsw_params *p);

/* Insert node id (its vector available through io->vec, id == st->nodes
 * or any id not yet in the graph) with the given level. Updates st.
 * PV_ENUMERIC if the vector holds a NaN or Inf (nothing changed then). On
 * any other error the graph may be partly linked and st is unchanged: the
 * caller drops the transaction. */
int hnsw_insert(const hnsw_params *p, hnsw_state *st, const hnsw_io *io,
                hnsw_scratch *s, uint32_t id, uint32_t level);

/* Insert nodes first..first+n-1 (none in the graph yet, every vector
 * available through io->vec), node first+i at level levels[i], as if one
 * at a time in id order, except that each node's candidates come from the
 * graph as it was before the batch plus the batch's earlier nodes, scored
 * exactly (see hnsw.c). The candidate searches run on nthreads threads
 * (1..HNSW_MAX_THREADS), s serving the first; while they run, io's vec,
 * links_get and deleted are called concurrently and nothing is changed, so
 * they must be safe to call from several threads at once. The graph built
 * is the same for any nthreads. Errors as hnsw_insert; PV_ENUMERIC leaves
 * the graph unchanged. */
int hnsw_insert_batch(const hnsw_params *p, hnsw_state *st, const hnsw_io *io,
                      hnsw_scratch *s, uint32_t first, uint32_t n,
                      const uint32_t *levels, unsigned nthreads);

/* The largest candidate list a search takes (PV_EINVAL above). */
#define HNSW_MAX_EF (1u << 24)

/* A result: the same record as flat.h's, so callers share one array. */
typedef flat_hit hnsw_hit;

/* The k nearest non-deleted nodes to q (unit length, dim floats), best
 * first, searching level 0 with a candidate list of max(ef, k). *n gets how
 * many (<= k). PV_ENUMERIC if q holds a NaN or Inf. */
int hnsw_search(const hnsw_params *p, const hnsw_state *st,
                const hnsw_io *io, hnsw_scratch *s, const float *q,
                uint32_t k, uint32_t ef, hnsw_hit *out, uint32_t *n);

/* The same, searching level 0 from node start instead of descending from the
 * entry point (start = HNSW_NONE: from the entry point). For a self-join,
 * where q is node start's own vector: the search begins where its answer
 * is, and a dense cluster elsewhere cannot trap it. PV_EINVAL if start is
 * not a node. */
int hnsw_search_from(const hnsw_params *p, const hnsw_state *st,
                     const hnsw_io *io, hnsw_scratch *s, const float *q,
                     uint32_t start, uint32_t k, uint32_t ef, hnsw_hit *out,
                     uint32_t *n);

#endif
