/*
 * db_int.h - the pv_db handle and helpers shared by the engine's files
 * (db.c: open/create/info/remove; ingest.c: pv_add; search.c: query, dups).
 */
#ifndef PV_DB_INT_H
#define PV_DB_INT_H

#include <stdatomic.h>

#include "embed.h"
#include "flat.h"
#include "graph.h"
#include "pixvec.h"
#include "store.h"

struct pv_db {
    store *st;
    embedder *emb;
    hnsw_scratch *scratch; /* HNSW search/insert memory, made on first use */
    graph_cache gcache;    /* graph pointers of the last read snapshot */
    store_vec_cache vcache; /* vector chunk pointers of the same (db_read_begin) */
    struct {                /* compact copies of the last read snapshot (db_codes) */
        uint64_t key;       /* store_snapshot(); 0: not reusable */
        codes_view v;
    } codes;
    struct {                /* a codes-only database's vectors decoded (db_vec_set) */
        uint64_t key;       /* store_snapshot(); 0: not reusable */
        float *buf;
        const float **ptrs;
        uint32_t *counts;
        uint32_t n;
    } dec;
    struct {               /* IVF centroid pointers of the last read snapshot */
        uint64_t key;      /* store_snapshot(); 0: empty */
        uint32_t nlist;
        const float **rows;
    } ivfcache;
    char errmsg[1024];
    /* the writer lock (db_writer_begin): flock on data.mdb, held for a whole
     * add, rm, vacuum or training run; depth counts nested begins */
    int lock_fd;
    int lock_depth;
    void (*busy)(void *ctx, const char *msg);
    void *busy_ctx;
    char path[4096]; /* the database folder as given */
    /* pv_db_interrupt's flag: set from any thread or a signal handler (a
     * lock-free atomic store is async-signal-safe), cleared at the start of
     * each interruptible call, polled by its loops */
    atomic_int interrupt;
};

/* Start of an interruptible call: forget an earlier pv_db_interrupt. */
static inline void db_interrupt_clear(pv_db *db)
{
    atomic_store_explicit(&db->interrupt, 0, memory_order_relaxed);
}

/* Whether pv_db_interrupt was called since the call began. */
static inline int db_interrupted(pv_db *db)
{
    return atomic_load_explicit(&db->interrupt, memory_order_relaxed) != 0;
}

/* The similarity `dups` and `query` decide by: the embedder's pair score
 * when it has one (photo), else the cosine of the unit vectors. */
float db_pair_score(const pv_db *db, const float *a, const float *b);

/* Threads to use: requested if > 0, else the cores online (>= 1). */
unsigned db_threads(int requested);

/* The handle's HNSW scratch (NULL: out of memory). */
hnsw_scratch *db_scratch(pv_db *db);

/* Record a message for pv_db_errmsg() and return err (printf-style). */
int db_fail(pv_db *db, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for an error met in transaction t: "<fmt...>: <reason>", the
 * reason being the damaged record's own description for PV_ECORRUPT
 * (store_txn_errmsg: "item 17: path length 3000 exceeds 480"), else
 * pv_strerror(err). On an unlocked store a writer elsewhere changed
 * meanwhile (db_read_check), a PV_ECORRUPT or PV_ESTORE message adds that
 * the change is the likely cause. Returns err. */
int db_fail_txn(pv_db *db, store_txn *t, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Begin a read transaction of the handle's thread whose vector chunk
 * pointers are carried from one snapshot to the next in db->vcache. Worker
 * threads begin their own with store_txn_begin. */
int db_read_begin(pv_db *db, store_txn **t);
/* Call when the reads of read transaction t are done, before their results
 * reach the caller: on an unlocked store (pv_db_unlocked) that a writer
 * elsewhere changed twice meanwhile, the pages read may hold a later
 * commit's bytes: PV_ESTORE with a message saying so (DB_CHANGED_MSG).
 * PV_OK otherwise. t stays open; the caller ends it as before. */
int db_read_check(pv_db *db, const store_txn *t);

/* The absolute, canonical form of path (realpath when it exists; else the
 * canonical parent joined with the last component; else joined to the
 * current directory). out has PATH_MAX bytes. */
int db_abs_path(const char *path, char *out, size_t outlen);

/* The one path from files to vectors, in two steps so that ingest can
 * embed a worker's images in one call (the cnn embedder runs them through
 * the network together) while pv_embed_file embeds one:
 * db_decode_file reads path, hashes its bytes (XXH3-128, if hash is not
 * NULL) and decodes it as the embedder wants it (its channels, no smaller
 * than its input size); the bytes are freed before it returns. On success
 * *im owns its pixels (img_free); on failure reason gets a short text.
 * im->orig_w/orig_h are the size as displayed.
 * db_embed_images embeds n decoded images into vecs (n * dim floats) in one
 * embedder call; rcs[i] (n ints) is image i's own status (PV_ENUMERIC when
 * its vector came out NaN or Inf), and only a call that fails as a whole is
 * tried again one image at a time. Returns the first nonzero rcs[i], or 0. */
int db_decode_file(const pv_db *db, const char *path, img *im, uint8_t hash[16],
                   char *reason, size_t reasonlen);
int db_embed_images(const pv_db *db, const img *ims, size_t n, float *vecs,
                    int *rcs);

/* The compact copies of read snapshot t (engine/codes.h; v->n == 0 when
 * the database keeps none or has none yet), loaded once per snapshot into
 * the handle: valid until the next db_codes or pv_db_close. */
int db_codes(pv_db *db, store_txn *t, const codes_view **v);

/* Build a vec_set over the vectors of a read transaction. The arrays
 * belong to the transaction. A codes-only database whose float32 vectors
 * are dropped gets its codes decoded instead, into memory of the handle
 * kept for the snapshot (valid until the next db_vec_set of another
 * snapshot, or pv_db_close). */
int db_vec_set(pv_db *db, store_txn *t, vec_set *set);
void db_vec_decoded_free(pv_db *db);

/* Whether id is a live item (not removed) in snapshot t: *live 1 or 0, or
 * an error (PV_ECORRUPT for a damaged record, PV_ENOTFOUND beyond next_id). */
int db_is_live(store_txn *t, uint32_t id, int *live);

/* Filter for flat_* and list walks: keeps live items only. ctx is a
 * db_live; an item that cannot be read is not kept and its error stays in
 * rc (the first one), which the caller checks after the scan. */
typedef struct db_live {
    store_txn *t;
    int rc;
} db_live;
int db_keep_live(void *ctx, uint32_t id);

/* Copy a store_item into a pv_item (path duplicated). */
int db_item_copy(uint32_t id, const store_item *si, pv_item *out);

/* Tombstone ids in the HNSW graph, in write transaction t. */
int db_graph_delete(pv_db *db, store_txn *t, const uint32_t *ids, size_t n);

/* IVF lists (cluster.c): how many are trained in snapshot t (0: none;
 * PV_ECORRUPT when ivf_nlist is malformed or disagrees with the centroids);
 * list the batch's new vectors, ids first..first+n-1, in write txn t (no-op
 * without lists); the k best of q's nprobe nearest lists (0: default). */
int db_ivf_nlist(store_txn *t, uint32_t *nlist);
/* k of the stored clustering in snapshot t (0: none; PV_ECORRUPT when the
 * record is damaged). */
int db_cluster_k(pv_db *db, store_txn *t, uint32_t *k);
/* The stored map records of snapshot t (map.c), checked as a map reads
 * them: 0 when each is absent or sound, PV_ECORRUPT with store_corrupt's
 * message otherwise. */
int db_map_verify(pv_db *db, store_txn *t, uint32_t next_id);
int db_ivf_add(pv_db *db, store_txn *t, uint32_t first, uint32_t n,
               const float *vecs);
/* With cv (all ids coded), the lists' members are scored by their compact
 * copies: the scores are the compact ones. */
int db_ivf_search(pv_db *db, store_txn *t, const float *q, uint32_t k, int nprobe,
                  const codes_view *cv, flat_hit *out, uint32_t *n);
/* The IVF invariants (for pv_db_verify): nlist centroids of the right
 * size, list numbers below nlist, ids below next_id, no id twice, every
 * live item listed. PV_ECORRUPT with a message otherwise. */
int db_ivf_verify(pv_db *db, store_txn *t, uint32_t next_id);

/* Tombstone the stored images among paths (absolute or relative) in one
 * write transaction: all or none. strict: a path not stored fails the call
 * with PV_ENOTFOUND; else it is skipped. removed (may be NULL) gets how many
 * were. Takes the writer lock. */
int db_remove_paths(pv_db *db, const char *const *paths, size_t n, int strict,
                    size_t *removed);

/* One writer at a time for a whole run. LMDB lets one write transaction in
 * at a time, but an add, a vacuum or a training run is many transactions
 * (or a read followed by a write), and two interleaved runs of `add` on one
 * folder would each insert every file. So every writing entry point holds
 * an exclusive flock(2) on the database's data.mdb from its first read to
 * its last commit: a second writer, in this process (another handle) or in
 * another, waits for it, after telling the busy handler once. The kernel
 * drops the lock when a process dies, so kill -9 never leaves it held.
 * db_writer_begin also refuses a read-only handle (PV_ERDONLY). Nested
 * begins on one handle only count. */
int db_writer_begin(pv_db *db);
/* The same, the wait ending with PV_EINTR once *cancel is nonzero or
 * pv_db_interrupt was called (it polls every 20 ms: pv_add's cancel flag,
 * set by a signal handler). */
int db_writer_begin_cancel(pv_db *db, const volatile int *cancel);
void db_writer_end(pv_db *db);

/* The one insert path (ingest.c), used by pv_add's batches and by
 * pv_import_vectors, in write transaction t:
 * db_insert_item writes the record it (path, hash) under id c->next_id:
 * item record, path key, hash key; then counts it in c (next_id, live;
 * the caller puts c once its items are in).
 * db_insert_vectors then gives ids first..first+nnew-1 (the items just
 * inserted) their vectors (nnew * dim floats, unit length): compact codes,
 * HNSW tombstones of dead (ndead ids) and inserts, the vectors table, the
 * IVF lists. */
int db_insert_item(store_txn *t, store_counts *c, const store_item *it);
int db_insert_vectors(pv_db *db, store_txn *t, uint32_t first, uint32_t nnew, const float *vecs,
                      const uint32_t *dead, size_t ndead, unsigned threads);

/* Begin a write txn, run fn, commit; on a full map abort, grow, redo. */
int db_write(pv_db *db, int (*fn)(pv_db *db, store_txn *t, void *ctx),
             void *ctx);

#endif
