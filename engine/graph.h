/*
 * graph.h - the HNSW graph of a database, on LMDB (engine room).
 *
 * Binds index/hnsw.c's hnsw_io to storage: level-0 links in chunks of
 * fixed-width node records (STORE_HNSW), upper levels per node
 * (STORE_HNSW_UPPER), vectors in the vector chunks, the graph state in meta.
 * In a read transaction every access is pointer arithmetic into the map
 * (zero-copy, no load step). In a write transaction the chunks a batch
 * touches are copied once into an overlay, changed there, and written back
 * by graph_flush() inside the same transaction as the items, so the graph
 * and the items commit or vanish together.
 */
#ifndef PV_GRAPH_H
#define PV_GRAPH_H

#include "codes.h"
#include "hnsw.h"
#include "store.h"

typedef struct graph graph;

/* What a read graph_open found, kept by the caller between queries: when the
 * next read transaction has the same store_snapshot(), the level-0 chunk
 * pointers and the state are reused instead of looked up again. */
typedef struct graph_cache {
    uint64_t key; /* 0: empty */
    hnsw_state state;
    int has_deleted;
    uint8_t **l0;
    uint32_t *l0n;
    uint32_t n, cap;
} graph_cache;

void graph_cache_free(graph_cache *c); /* the arrays; c itself stays */

/* Open the graph of transaction t (read or write). dim and the vector
 * chunk pointers come from the store. cache (read only; may be NULL) is
 * used and refreshed as described above. */
int graph_open(store *st, store_txn *t, int write, graph_cache *cache,
               graph **out);
/* Release; a write graph not flushed leaves the transaction's tables as
 * they were (the caller aborts or commits). NULL is fine. */
void graph_close(graph *g);

/* Vectors of ids [first, first+n) that are not stored yet (the batch being
 * written); they stay the caller's and must outlive the inserts. */
void graph_set_pending(graph *g, uint32_t first, uint32_t n, const float *vecs);

/* Insert ids first..first+n-1 (vectors stored or pending), planning on
 * nthreads threads (hnsw_insert_batch). */
int graph_insert_batch(graph *g, hnsw_scratch *s, uint32_t first, uint32_t n,
                       unsigned nthreads);
/* Mark id deleted (tombstone): walked through, never returned. */
int graph_delete(graph *g, uint32_t id);
/* Write the changed chunks, upper records and state into the txn. */
int graph_flush(graph *g);

int graph_search(graph *g, hnsw_scratch *s, const float *q, uint32_t k,
                 uint32_t ef, hnsw_hit *out, uint32_t *n);
/* The same from node start at level 0 (hnsw_search_from). */
int graph_search_from(graph *g, hnsw_scratch *s, uint32_t start, const float *q,
                      uint32_t k, uint32_t ef, hnsw_hit *out, uint32_t *n);

/* Let graph_search and graph_search_from of a read graph score candidates
 * with the compact copies of v (engine/codes.h, same snapshot; v must
 * outlive g) when every node has one. With rescore, and float32 vectors
 * stored (not codes only), their hits are then scored again in float32
 * and sorted best first; else the similarities are the compact ones.
 * Returns 1 when they will use the codes, 0 when they score float32 (no
 * codes, or not for every node yet). */
int graph_use_codes(graph *g, const codes_view *v, int rescore);

/* Whether id is a deleted node (for other scans' filters). */
int graph_is_deleted(graph *g, uint32_t id);

const hnsw_state *graph_state(const graph *g);

/* Check node id's records: link counts within M0 (level 0) and M, every
 * link names a node below state.nodes and not id itself, the upper record
 * present for the node's levels. PV_ECORRUPT otherwise. */
int graph_check_node(graph *g, uint32_t id);

/* Drop the whole graph (for vacuum: then insert the live ids again). */
int graph_reset(graph *g);

#endif
