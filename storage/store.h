/*
 * store.h - the LMDB environment and schema of a pixvec database (storage
 * room). Knows bytes and ids; knows nothing of images or graphs.
 *
 * One database is one directory holding data.mdb and lock.mdb. Named
 * sub-databases (all keys and values little-endian):
 *
 *   meta     short ASCII key -> value (see below)
 *   items    u32 id (MDB_INTEGERKEY) -> item record (see below)
 *   paths    path bytes -> u32 id
 *   hashes   16-byte XXH3-128 content hash -> u32 ids (MDB_DUPSORT,
 *            MDB_DUPFIXED, MDB_INTEGERDUP)
 *   vectors  u32 chunk number (MDB_INTEGERKEY) -> up to `chunk` float32
 *            vectors of `dim` values, ids chunk*C .. chunk*C+n-1, n taken
 *            from the value's length. Only the last chunk is partly full.
 *   hnsw     u32 chunk number (MDB_INTEGERKEY) -> up to `chunk` level-0
 *            node records of (1 + 2*M) u32: word 0 = link count in bits
 *            0..30, bit 31 = deleted; then 2*M neighbour ids (unused slots
 *            are garbage). Ids as for vectors.
 *   hnsw_upper u32 id (MDB_INTEGERKEY) -> nodes with level >= 1 only:
 *            u32 level L, then for each level 1..L: u32 count, M u32 ids.
 *   ivf_centroids u32 list (MDB_INTEGERKEY) -> float32[dim] centroid
 *   ivf_lists u32 list (MDB_INTEGERKEY) -> u32 member ids (MDB_DUPSORT,
 *            MDB_DUPFIXED, MDB_INTEGERDUP: a page of ids per read)
 *   codes    u32 chunk number (MDB_INTEGERKEY) -> the compact copies of
 *            the chunk's vectors (format 2 only: meta vec_codes != 0; the
 *            engine reads and checks them, engine/codes.c)
 *
 * meta records:
 *   KEY        SIZE  DESCRIPTION
 *   magic      8     "PIXVECDB"
 *   format     4     u32 on-disk format version (PV_FORMAT_VERSION)
 *   dim        4     u32 embedding dimension
 *   chunk      4     u32 vectors per chunk (fixed at create)
 *   embedder   <=63  embedder name, no NUL ("pixels")
 *   emb_size   4     u32 embedder input side (pixels); "external": the dimension
 *   emb_rgb    4     u32 0 grey, 1 RGB
 *   emb_flags  4     u32 embedder options (absent: 0; written only when not 0)
 *   hnsw_m     4     u32 HNSW M (fixed at create)
 *   hnsw_efc   4     u32 HNSW ef_construction (fixed at create)
 *   vec_codes  4     u32 compact copy kind, 1..STORE_MAX_CODES (absent: 0,
 *                    none; fixed at create; the format is then 2)
 *   vec_only   4     u32 1: vectors dropped once coded (absent: 0; only
 *                    beside vec_codes)
 *   emb_model  <=511 the embedder's weight file or checkpoint directory, absolute path
 *   emb_model_hash 16 XXH3-128 of its bytes (docs/FORMAT.md)
 *   hnsw_entry 8     u64 entry point id (UINT32_MAX: empty graph)
 *   hnsw_level 8     u64 level of the entry point
 *   hnsw_nodes 8     u64 ids 0..nodes-1 are in the graph
 *   hnsw_rng   8     u64 level generator state
 *   next_id    4     u32 next id to hand out (ids are dense, never reused)
 *   live       8     u64 live items
 *   deleted    8     u64 tombstoned items
 *   ivf_nlist  8     u64 IVF lists (absent or 0: no IVF index)
 *   cluster    var   the stored clustering (engine/cluster.c's layout)
 *
 * item record (value of items):
 *   OFFSET SIZE DESCRIPTION
 *   0      8    u64 file size in bytes
 *   8      8    i64 mtime, nanoseconds since the epoch
 *   16     16   XXH3-128 of the file's bytes (high 64 bits first, big-endian
 *               canonical form of XXH128_canonicalFromHash)
 *   32     4    u32 width as displayed
 *   36     4    u32 height as displayed
 *   40     4    u32 flags: bit 0 = deleted (tombstone); bits 8-15 the
 *               image format (format 3 only; STORE_ITEM_KIND_MASK)
 *   44     2    u16 path length L
 *   46     L    path bytes (absolute, no NUL)
 *
 * Write transactions: one per batch. When the map is full, a write returns
 * STORE_FULL; the caller aborts the transaction, calls store_grow() and
 * redoes the batch. Read transactions survive another process growing the
 * map (MDB_MAP_RESIZED is handled in store_txn_begin).
 *
 * Pointer lifetimes: any pointer a store_ function hands out into the map
 * (item paths, vector chunks) is valid only until the end of the
 * transaction it came from, or the next write in that transaction.
 *
 * Checked records: every getter checks what it parses against the limits
 * above before handing it out (a path length of at most PV_MAX_PATH_BYTES
 * that fits the value, ids below next_id, vector chunks of whole vectors
 * with no gap, counters that agree with each other and with the item
 * records, meta values of their size). An absent record is PV_ENOTFOUND;
 * a malformed one, or a hole where the format promises a record, is
 * PV_ECORRUPT, and store_txn_errmsg() names it ("item 17: path length 3000
 * exceeds 480"). Tables whose records only the engine can judge (hnsw,
 * hnsw_upper, ivf_centroids, the cluster meta record) come out raw through
 * store_blob_get/store_meta_get_blob, and the engine checks them.
 *
 * Threads: a store handle may be shared by threads, each with its own
 * transactions (a transaction belongs to one thread at a time). Nothing a
 * transaction learns about its snapshot is kept on the handle.
 */
#ifndef PV_STORE_H
#define PV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "pv_util.h"

#define STORE_MAGIC "PIXVECDB"
#define STORE_FULL (-100)           /* map full: abort, store_grow, retry */
#define STORE_ITEM_DELETED 1u
/* Flags bits 8-15: the file's image format (the engine's img_kind; 0 not
 * recorded). Only format 3 databases keep them: store_item_put drops them
 * in a format 1 or 2 one, which older pixvec still reads. */
#define STORE_ITEM_KIND_SHIFT 8
#define STORE_ITEM_KIND_MASK 0xff00u
#define STORE_DEFAULT_CHUNK 1024u
#define STORE_INITIAL_MAP (64u << 20)

/* Limits on the schema in meta (store_create refuses, store_open reads a
 * value beyond them as PV_ECORRUPT). */
#define STORE_MAX_DIM (1u << 20)   /* pixels at 512 x 512 RGB is 786,432 */
#define STORE_MAX_CHUNK (1u << 16)
#define STORE_MAX_M 128u
#define STORE_MAX_EFC 4096u
#define STORE_MAX_CODES 2u

typedef struct store store;
typedef struct store_txn store_txn;

typedef struct store_schema {
    uint32_t dim;
    uint32_t chunk;
    char embedder[64];
    uint32_t emb_size;
    uint32_t emb_rgb;
    uint32_t emb_flags; /* embedder options (engine/embed/embed.h EMBED_*) */
    uint32_t hnsw_m;   /* HNSW links per node (level 0 has 2*M) */
    uint32_t hnsw_efc; /* HNSW ef_construction */
    /* The embedder's weight file (cnn): absolute path and XXH3-128 of its
     * bytes; model[0] == 0 when the embedder has none. */
    char model[512];
    uint8_t model_hash[16];
    /* The compact copy kept beside the vectors (the engine's PV_VECTORS_*,
     * 1..STORE_MAX_CODES), 0 for none. A database with one is format 2
     * and has the codes table; others stay format 1. */
    uint32_t codes;
    /* 1: the float32 vectors are dropped once the codes exist (the vectors
     * table is then empty; see store_vec_drop). Needs codes. */
    uint32_t codes_only;
} store_schema;

typedef struct store_counts {
    uint32_t next_id;
    uint64_t live;
    uint64_t deleted;
} store_counts;

typedef struct store_item {
    uint64_t size;
    int64_t mtime_ns;
    uint8_t hash[16];
    uint32_t width, height;
    uint32_t flags;
    uint16_t path_len;
    const char *path; /* into the map, or the caller's buffer on put */
} store_item;

/* Create the directory and a new environment with schema s. PV_EEXIST if
 * dir already holds a data.mdb. */
int store_create(const char *dir, const store_schema *s, store **out,
                 char *err, size_t errlen);
/* Open an existing database. PV_ENOTDB / PV_ENEWER change nothing;
 * PV_ECORRUPT when the schema in meta is missing or out of range (err
 * names the key). */
int store_open(const char *dir, int rdonly, store **out, char *err,
               size_t errlen);
void store_close(store *st);

const store_schema *store_get_schema(const store *st);
/* The database's on-disk format version (meta format: 1, 2 or 3). */
uint32_t store_format(const store *st);
int store_is_rdonly(const store *st);
/* 1 when a read-only store was opened without LMDB's reader lock table
 * (the user cannot write lock.mdb; see env_open in store.c): a writer at
 * work at the same time may reuse the pages its snapshots read. */
int store_is_unlocked(const store *st);
/* Bytes of data.mdb on disk and the current map size. */
int store_sizes(store *st, uint64_t *disk, uint64_t *map);
/* Write a compacted copy of the database to the new folder dest: one read
 * snapshot (writers may go on meanwhile), free pages left out. The copy is
 * made in a temporary folder beside dest, synced, and renamed to dest, so
 * dest appears whole or not at all. PV_EEXIST when dest exists; on any
 * failure nothing is left behind and err says why. */
int store_copy_compact(store *st, const char *dest, char *err, size_t errlen);
/* The operating system's words for why the last commit failed ("No space
 * left on device"), or "" when it did not fail that way. */
const char *store_commit_error(const store *st);
/* Double the map size (up to PIXVEC_MAP_LIMIT; STORE_FULL when the map is
 * there already). No transaction of this process may be open (PV_EINVAL
 * otherwise). */
int store_grow(store *st);

/* Begin a transaction. If another process grew the map beyond this one's,
 * the new size is adopted, which remaps the file: only when no other
 * transaction of this process is open; beside one, PV_ESTORE (try again
 * when they have ended). */
int store_txn_begin(store *st, int write, store_txn **out);
/* A key for the data a read transaction sees: two read transactions with
 * the same key see the same bytes at the same addresses, so pointers found
 * in one are valid in the other. 0 (equal to none) for write transactions,
 * and for a read transaction whose begin raced a commit so that the
 * snapshot it reads cannot be named (see store_txn_begin in store.c). */
uint64_t store_snapshot(store_txn *t);
/* What the last PV_ECORRUPT of a store_ call in t found wrong, naming the
 * record ("" if none). Valid until t ends. */
const char *store_txn_errmsg(const store_txn *t);
/* Record, for store_txn_errmsg, what a room above found malformed in a
 * record of t (the engine judges the graph, IVF and cluster records
 * itself). Returns PV_ECORRUPT. */
int store_corrupt(store_txn *t, const char *fmt, ...) PV_PRINTF(2, 3);
/* Commit (STORE_FULL possible: the txn is then gone; grow and redo). */
int store_txn_commit(store_txn *t);
void store_txn_abort(store_txn *t); /* NULL is fine */
/* For a read transaction of an unlocked store (store_is_unlocked), call
 * when its reads are done and before their results are used: PV_ESTORE
 * when a writer elsewhere has committed twice or more since t began, so
 * that the pages t read may have been reused for a later commit (commit
 * S+1 frees the pages of snapshot S it replaced; once S+2 is the newest,
 * the write transaction after it may already be writing into them); the
 * results must then be dropped. PV_OK otherwise, and always for locked stores, whose
 * readers a writer sees, and for write transactions. t stays open. */
int store_txn_read_check(const store_txn *t);

/* PV_ECORRUPT unless live + deleted == next_id == the item records. Read
 * once per transaction and kept in it (store_counts_put updates the copy):
 * a write transaction reads them before it writes items, so the check
 * sees the committed state. */
int store_counts_get(store_txn *t, store_counts *c);
int store_counts_put(store_txn *t, const store_counts *c);

typedef enum {
    STORE_ITEMS,
    STORE_PATHS,
    STORE_HASHES,
    STORE_VECTORS,
    STORE_HNSW,       /* u32 chunk -> level-0 neighbour arrays */
    STORE_HNSW_UPPER, /* u32 id -> upper-level neighbour arrays */
    STORE_IVF_CENTROIDS, /* u32 list -> centroid */
    STORE_IVF_LISTS,     /* u32 list -> u32 ids (dupsort) */
    STORE_CODES,         /* u32 chunk -> compact copies (engine/codes.c) */
    STORE_NTABLES
} store_table;
/* Number of entries (for HASHES: id values, counting duplicates). */
int store_entries(store_txn *t, store_table which, uint64_t *n);

/* Raw values of the u32-keyed tables (HNSW, HNSW_UPPER): get is zero-copy
 * (pointer into the map, 2-byte aligned at least; lifetime as above);
 * put copies n bytes; drop empties the table. */
int store_blob_get(store_txn *t, store_table table, uint32_t key,
                   const void **p, size_t *n);
int store_blob_put(store_txn *t, store_table table, uint32_t key,
                   const void *p, size_t n);
int store_blob_drop(store_txn *t, store_table table);
/* Call fn for every record of the table in key order, with the same
 * zero-copy pointers as store_blob_get; a nonzero return from fn stops the
 * walk and is returned. */
int store_blob_each(store_txn *t, store_table table,
                    int (*fn)(void *ctx, uint32_t key, const void *p, size_t n),
                    void *ctx);

/* Variable-size meta values: get is zero-copy (PV_ENOTFOUND if absent;
 * the caller checks the bytes); del of an absent key is not an error. */
int store_meta_get_blob(store_txn *t, const char *key, const void **p,
                        size_t *n);
int store_meta_put_blob(store_txn *t, const char *key, const void *p,
                        size_t n);
int store_meta_del(store_txn *t, const char *key);

/* IVF lists: add id to list; call fn with the ids of list, a page at a
 * time (ids may be unaligned: read with memcpy; each below next_id, else
 * PV_ECORRUPT); a nonzero return from fn stops the walk and is returned. A
 * database without the tables (opened read-only, made before they existed)
 * has empty lists. */
int store_list_add(store_txn *t, uint32_t list, uint32_t id);
int store_list_each(store_txn *t, uint32_t list,
                    int (*fn)(void *ctx, const void *ids, size_t n),
                    void *ctx);

/* Fixed-width meta values for the rooms above storage (index state):
 * PV_ENOTFOUND if absent, PV_ECORRUPT if not 8 bytes. */
int store_meta_get_u64(store_txn *t, const char *key, uint64_t *v);
int store_meta_put_u64(store_txn *t, const char *key, uint64_t v);

/* PV_ENOTFOUND if id >= next_id. PV_ECORRUPT for a missing record below
 * it, or a record that breaks the layout: a path length above
 * PV_MAX_PATH_BYTES or other than the value holds, an empty, relative or
 * NUL-holding path, unknown flags. So it->path_len <= PV_MAX_PATH_BYTES:
 * a caller may copy the path into a PV_MAX_PATH_BYTES + 1 buffer. */
int store_item_get(store_txn *t, uint32_t id, store_item *it);
int store_item_put(store_txn *t, uint32_t id, const store_item *it);

/* PV_ENOTFOUND if path is not stored; the id found is below next_id. */
int store_path_get(store_txn *t, const char *path, uint32_t *id);
int store_path_put(store_txn *t, const char *path, uint32_t id);
int store_path_del(store_txn *t, const char *path);
/* Call fn(ctx, path, len, id) for every stored path that starts with
 * prefix, in byte order (path is not NUL-terminated and is valid only
 * during the call). fn's nonzero return stops the scan and is returned. A
 * key longer than PV_MAX_PATH_BYTES or a value that is not 4 bytes is
 * PV_ECORRUPT. */
int store_paths_with_prefix(store_txn *t, const char *prefix,
                            int (*fn)(void *ctx, const char *path, size_t len, uint32_t id),
                            void *ctx);

/* Up to max ids stored under hash into ids; *n gets the total count. Every
 * id is below next_id (PV_ECORRUPT otherwise), here and in each_multi. */
int store_hash_get(store_txn *t, const uint8_t hash[16], uint32_t *ids,
                   size_t max, size_t *n);
int store_hash_add(store_txn *t, const uint8_t hash[16], uint32_t id);
int store_hash_del(store_txn *t, const uint8_t hash[16], uint32_t id);
/* Call fn for every hash that has two or more ids (exact duplicates). */
int store_hash_each_multi(store_txn *t,
                          int (*fn)(void *ctx, const uint32_t *ids, size_t n),
                          void *ctx);

/* Append n vectors for ids first..first+n-1; first must equal the number of
 * vectors stored so far (ids are dense). Rewrites only the touched chunks. */
int store_vec_append(store_txn *t, uint32_t first, uint32_t n,
                     const float *vecs);
/* Copy the vector of id into out (dim floats). */
int store_vec_get(store_txn *t, uint32_t id, float *out);
/* A codes_only store: empty the vectors table (the engine has coded every
 * vector). From then on the table stays empty: store_vec_chunks reports no
 * chunk and checks no count, store_vec_append refuses (PV_EINVAL).
 * PV_EINVAL for other stores. */
int store_vec_drop(store_txn *t);
/* 1 when t sees a codes_only store whose vectors were dropped. */
int store_vec_dropped(store_txn *t);
/* The chunk pointers of every stored vector, cached in the transaction:
 * *ptrs[c] holds *counts[c] vectors; pointers may be unaligned (2-byte).
 * Checked: chunks 0..nchunks-1 without a gap, each of whole vectors, all
 * but the last holding `chunk`, next_id vectors in all (PV_ECORRUPT
 * otherwise; in a write transaction, ask before store_vec_append or after
 * store_counts_put, when vectors and counters agree). Valid until the
 * transaction ends or writes. */
int store_vec_chunks(store_txn *t, const float *const **ptrs,
                     const uint32_t **counts, uint32_t *nchunks);

/* A caller's copy of the chunk pointers of a read snapshot, so that a run
 * of read transactions on one thread (queries, one after another) walks
 * the vectors table once per snapshot, not once per transaction. It belongs
 * to the caller (one thread at a time, zero-initialised); the store handle
 * keeps none, so threads with read transactions of their own share
 * nothing. */
typedef struct store_vec_cache {
    uint64_t key; /* store_snapshot() it was filled in; 0: empty */
    const float **ptrs;
    uint32_t *counts;
    uint32_t n, cap;
} store_vec_cache;
/* Let read transaction t fill its chunk pointers from c when c was filled
 * in a snapshot with t's key, and refill c otherwise. c must outlive t.
 * Ignored for write transactions. */
void store_txn_set_cache(store_txn *t, store_vec_cache *c);
void store_vec_cache_free(store_vec_cache *c); /* the arrays; c stays */

#endif
