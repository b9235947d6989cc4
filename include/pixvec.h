/*
 * pixvec.h - the public C API of pixvec, an embedded, persistent vector index
 * database for images.
 *
 * A database is one directory holding an LMDB environment (data.mdb,
 * lock.mdb). It stores, for every image it was given, a record (path, size,
 * mtime, content hash, width, height), and a unit-length embedding computed by
 * the embedder chosen at pv_db_create(). Queries return cosine similarities.
 *
 * Conventions, for every function below:
 *  - the return value is 0 (PV_OK) or a negative PV_E* code; pv_strerror()
 *    gives its text, pv_db_errmsg() a longer message about the last failure
 *    on that handle (for example the decoder's words and the file's path);
 *  - a failing call leaves the database as it was;
 *  - the library never prints and never exits;
 *  - out-parameters are written only on success;
 *  - memory returned through an out-parameter belongs to the caller and is
 *    released with the matching pv_*_free() function, which accepts NULL.
 *
 * Threads: a pv_db handle may be used by one thread at a time. Several
 * processes may open the same database: any number of readers and one writer
 * at a time; a reader sees the last committed state. A writing call (pv_add,
 * pv_remove, pv_remove_many, pv_vacuum, pv_cluster_train, pv_ivf_train) holds
 * the database's writer lock from start to end: another writing call, on
 * another handle or in another process, waits until it is done (see
 * pv_db_set_busy_handler). So one thread must not hold a writing call on
 * one handle while it starts one on a second handle of the same database.
 */
#ifndef PIXVEC_H
#define PIXVEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libpixvec is built with -fvisibility=hidden: what this header declares is
 * all that libpixvec.so exports. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* ---- errors ------------------------------------------------------------ */

enum {
    PV_OK = 0,
    PV_EINVAL = -1,     /* bad argument or option */
    PV_ENOMEM = -2,     /* out of memory, or a size that overflows */
    PV_EIO = -3,        /* a file could not be read or written */
    PV_ENOTDB = -4,     /* not a pixvec database */
    PV_ENEWER = -5,     /* written by a newer pixvec format */
    PV_EEXIST = -6,     /* the database already exists */
    PV_ENOTFOUND = -7,  /* no such item or file */
    PV_EDECODE = -8,    /* the image is corrupt or truncated */
    PV_EFORMAT = -9,    /* not JPEG, PNG, WebP, HEIF, TIFF, GIF or BMP */
    PV_ETOOBIG = -10,   /* image or file larger than the limits */
    PV_EEMBEDDER = -11, /* the database uses another embedder */
    PV_ESTORE = -12,    /* the storage layer (LMDB) failed */
    PV_ECORRUPT = -13,  /* a record in the database is malformed */
    PV_EEMPTY = -14,    /* zero-byte file */
    PV_ERDONLY = -15,   /* the handle was opened read-only */
    PV_ENUMERIC = -16,  /* NaN or Inf where a number was expected */
    PV_EINTR = -17,     /* interrupted (pv_db_interrupt, pv_add_opts.cancel,
                         * or a signal) */
};

/* The text of an error code; never NULL, static storage. */
const char *pv_strerror(int err);

/* ---- limits ------------------------------------------------------------ */

#define PV_MAX_PIXELS (1u << 27)             /* 134 megapixels per image */
#define PV_MAX_FILE_BYTES (512u << 20)       /* 512 MiB per image file */
#define PV_MAX_PATH_BYTES 480                /* stored path length */
#define PV_VERSION_STRING "0.1.0"            /* the library's version (CMakeLists.txt reads it) */
#define PV_FORMAT_VERSION                                                                          \
    3 /* newest on-disk format read: 1, 2 (compact                                                 \
       * vectors) and 3 (items record their image                                                  \
       * format), which every new database is */

/* ---- opening and creating ------------------------------------------------ */

typedef struct pv_db pv_db;

/* Embedder choice at creation. name: "pixels", "cnn" or "photo".
 * size: side of the square the image is resized to (0 = default 28).
 * rgb: 0 = grey (size*size dims), 1 = RGB (3*size*size dims). */
typedef struct pv_embedder_opts {
    const char *name; /* "pixels" (default), "cnn" (MobileNetV2, 1280 dims),
                       * "photo" (near-duplicate photographs: a
                       * candidate vector plus an aligned comparison; no
                       * size, rgb or model), or a transformer read from a
                       * Hugging Face checkpoint directory given as model:
                       * "clip" (image and text towers: text queries),
                       * "dinov2" or "vitmae" (no size or rgb); or
                       * "external": vectors computed elsewhere, brought
                       * in by pv_import_vectors; size is then their
                       * dimension (1..1048576), and the database cannot
                       * embed images (pv_add, pv_query_image and
                       * pv_embed_file fail with PV_EEMBEDDER: query it
                       * with pv_query_vector) */
    int size;
    int rgb;
    int no_mirror;     /* photo: a mirror image is not a near-duplicate
                        * (default: it is, as a flipped copy is the commonest
                        * augmentation); stored with the database */
    int pool_sum;      /* vitmae: the vector is the sum over all tokens of the
                        * last hidden state, not the class token; stored */
    const char *model; /* clip, dinov2, vitmae: the checkpoint directory
                        * (config.json, model.safetensors; clip also
                        * vocab.json, merges.txt), required; a missing or
                        * malformed file is refused naming it.
                        * cnn: weight file (safetensors, MobileNetV2 names);
                        * NULL: the one scripts/setup.sh installs. Its path
                        * and hash go into meta; reopening with other bytes
                        * there is refused. A file that is not such weights
                        * is refused, err naming the tensor: PV_ECORRUPT
                        * (header, shape, a negative variance), PV_ENUMERIC
                        * (a NaN or Inf weight, or one batch norm folding
                        * overflows). */
} pv_embedder_opts;

/* Compact vectors (pv_index_opts.vectors): besides its float32 vector, a
 * database can keep a compact copy of each that graph searches score
 * candidates with, re-scoring the final candidates exactly in float32.
 * PV_VECTORS_F16: IEEE half precision (2 bytes a dimension);
 * PV_VECTORS_I8: one byte a dimension, an affine map per dimension learned
 * from the stored vectors once there are PV_I8_TRAIN_MIN of them (until
 * then searches score float32), learned again from all of them each time
 * their number doubles, up to PV_I8_TRAIN_MAX. */
#define PV_VECTORS_F32 0 /* float32 only (the default) */
#define PV_VECTORS_F16 1
#define PV_VECTORS_I8 2
#define PV_I8_TRAIN_MIN 1024u
#define PV_I8_TRAIN_MAX 65536u

/* HNSW parameters, fixed at creation (hnswlib's meaning). 0 = default. */
typedef struct pv_index_opts {
    int M;               /* links per node (level 0: 2*M); default 16 */
    int ef_construction; /* candidate list while inserting; default 200 */
    int vectors;         /* PV_VECTORS_*: the compact copy (default none) */
    int compact_only;    /* 1 (with F16 or I8): keep only the compact copy
                          * once it exists (4x smaller vectors for I8, 2x
                          * for F16); the float32 vectors are dropped then
                          * (I8: once its ranges are final, learned from
                          * PV_I8_TRAIN_MAX vectors or more),
                          * the graph is built on the codes, and scores are
                          * the codes' (no float32 re-scoring); analyses that
                          * read every vector read them decoded */
} pv_index_opts;

/* Create a new database directory at path (created if missing; must not
 * already hold a database: PV_EEXIST). emb and idx may be NULL (defaults).
 * On success *out is an open read-write handle. On failure, err (errlen
 * bytes, may be NULL) gets a message naming the path and the reason. */
int pv_db_create(const char *path, const pv_embedder_opts *emb,
                 const pv_index_opts *idx, pv_db **out, char *err,
                 size_t errlen);

#define PV_OPEN_RDONLY 1

/* Open an existing database. PV_ENOTDB when path holds no pixvec database,
 * PV_ENEWER when it was written by a newer format; neither changes a byte.
 * err as for pv_db_create. */
int pv_db_open(const char *path, int flags, pv_db **out, char *err,
               size_t errlen);

/* Close a handle; NULL is fine. */
void pv_db_close(pv_db *db);

/* 1 when db was opened read-only by a user who cannot write the database
 * (its folder or lock.mdb is not writable, or it is on a read-only mount),
 * so it reads without LMDB's reader lock table; 0 otherwise (NULL: 0).
 * Reading works as usual, but a writer (another user's) running at the
 * same time cannot see this reader and may reuse the pages a read is
 * going through (from its third commit during one call on). So every
 * reading call on such a handle checks, once its reads are done, whether a
 * writer has committed twice or more since the call's snapshot began; if
 * so the call returns no results and fails with PV_ESTORE, pv_db_errmsg
 * saying "the database changed while it was read without LMDB's lock
 * table (you cannot write it); run the command again" (calling again
 * usually succeeds). Without such a writer nothing differs. A caller may
 * want to tell its user so (the CLI does, once). A
 * read-write open of such a database fails with PV_EIO and a message
 * naming what is not writable. */
int pv_db_unlocked(const pv_db *db);

/* fn(ctx, message) is called once, from the calling thread, when a writing
 * call on this handle finds another writer at work and is about to wait for
 * it (SQLite's busy handler; the message names the database). NULL: wait
 * silently, the default. A signal that interrupts the wait makes the call
 * fail with PV_EINTR, the database unchanged. */
void pv_db_set_busy_handler(pv_db *db, void (*fn)(void *ctx, const char *msg), void *ctx);

/* Ask the long-running call now at work on db to stop soon (sqlite3's
 * sqlite3_interrupt): pv_add, pv_find_dups, pv_cluster_train, pv_ivf_train,
 * pv_map_build, pv_quality_report, pv_vacuum and pv_db_verify return
 * PV_EINTR at their next check (between batches, k-means iterations, UMAP
 * epochs, t-SNE iterations, blocks of pairs or items), and a writing call
 * aborts its open write transaction, so the database stays as it was
 * (pv_add keeps the batches it committed before, as with its cancel flag).
 * Each of those calls clears the request when it starts, so a call made
 * after the interrupted one runs normally; a request made while no such
 * call runs is forgotten. Unlike every other function here, this one may
 * be called from any thread while another uses db, and from a signal
 * handler (it only stores to an atomic flag: async-signal-safe); db must
 * stay open meanwhile. NULL is fine. */
void pv_db_interrupt(pv_db *db);

/* Longer message about the last failure on this handle ("" if none). Valid
 * until the next call on the handle. */
const char *pv_db_errmsg(const pv_db *db);

/* Check that opts (from a command line, say) names the database's embedder.
 * Fields left 0/NULL are not compared. PV_EEMBEDDER with a message if not. */
int pv_db_check_embedder(pv_db *db, const pv_embedder_opts *opts);

/* ---- information --------------------------------------------------------- */

/* Image formats, by the file's magic bytes (never its name), as items
 * record them. PV_FMT_UNKNOWN: not recorded (an item added to a database
 * made before format 3, or vectors imported from elsewhere). */
enum {
    PV_FMT_UNKNOWN = 0,
    PV_FMT_JPEG,
    PV_FMT_PNG,
    PV_FMT_WEBP,
    PV_FMT_HEIF, /* HEIC, AVIF and other HEIF images */
    PV_FMT_TIFF,
    PV_FMT_GIF,
    PV_FMT_BMP,
    PV_NFORMATS
};
/* "JPEG", "PNG", "WebP", "HEIF", "TIFF", "GIF", "BMP", or "unknown". */
const char *pv_format_name(int format);

typedef struct pv_info {
    uint64_t items;        /* live items */
    uint64_t graph_nodes;  /* nodes in the HNSW graph (tombstones included) */
    uint32_t hnsw_m, hnsw_ef_construction;
    uint32_t graph_levels; /* top level of the graph + 1 (0 when empty) */
    uint64_t deleted;      /* tombstones (removed or replaced items) */
    uint64_t next_id;      /* ids handed out so far */
    uint32_t dim;          /* embedding dimension */
    uint32_t format;       /* on-disk format version */
    uint32_t chunk;        /* vectors per storage chunk */
    char embedder[64];     /* e.g. "pixels" */
    char embedder_desc[96];/* e.g. "pixels 28x28 grey" */
    uint64_t disk_bytes;   /* size of data.mdb on disk */
    uint64_t map_bytes;    /* current LMDB map size */
    uint32_t ivf_nlist;    /* IVF lists (0: no IVF index trained) */
    uint32_t cluster_k;    /* clusters of the stored clustering (0: none) */
    float dups_threshold;  /* the embedder's default `dups` threshold, chosen
                            * from bench/README.md's near-duplicate runs */
    int vectors;           /* PV_VECTORS_* chosen at creation */
    uint64_t coded;        /* ids with a compact copy (0 until an int8
                            * database has PV_I8_TRAIN_MIN vectors) */
    uint32_t code_bytes;   /* bytes of one compact copy (0: none) */
    int compact_only;      /* pv_index_opts.compact_only at creation */
    int float32_dropped;   /* compact_only, and the float32 vectors are gone */
    uint64_t formats[PV_NFORMATS]; /* live items per image format (PV_FMT_*;
                                    * every item record is read for these) */
} pv_info;

int pv_db_info(pv_db *db, pv_info *out);

/* Check the database's invariants in one read snapshot: every id below
 * next_id has a record; live + removed counters match the records; every
 * live item's path and content hash point back at it and no other path
 * entry exists; a vector is stored for every id. PV_ECORRUPT with a message
 * (pv_db_errmsg) naming the first broken invariant. */
int pv_db_verify(pv_db *db);

/* ---- adding images ------------------------------------------------------- */

typedef struct pv_add_stats {
    uint64_t seen;       /* files considered */
    uint64_t added;      /* new items */
    uint64_t updated;    /* changed files re-embedded (old item tombstoned) */
    uint64_t unchanged;  /* skipped: same path, size and mtime */
    uint64_t moved;      /* same content under a vanished path: vector kept */
    uint64_t failed;     /* bad files, reported through on_error */
    uint64_t forgotten;  /* stored images under a folder given whose files are gone */
    uint64_t kept;       /* images committed by this call (added + updated + moved) */
} pv_add_stats;

typedef struct pv_add_opts {
    int threads; /* worker threads; 0 = number of cores */
    /* Called from the calling thread as images are done (done counts the
     * files decoded and embedded or failed, of total to do), at most about
     * ten times a second, and after every commit. May be NULL. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    /* Called from the calling thread for every bad file: its path, the
     * error code and a human-readable reason. May be NULL. */
    void (*on_error)(void *ctx, const char *path, int err, const char *reason);
    void *ctx;
    /* Read by the calling thread while it waits: once *cancel is nonzero,
     * pv_add starts no more files, commits the ones already embedded and
     * returns PV_EINTR (stats->kept says how many images this call kept).
     * A SIGINT handler may set it. May be NULL. */
    const volatile int *cancel;
    /* Commit at least this often, in seconds, and at the latest every 1024
     * images; 0 means 2 s. A crash or a cancel loses at most this much. */
    double commit_seconds;
} pv_add_opts;

/* Add files and folders. Folders are walked recursively and contribute the
 * files whose names end in .jpg, .jpeg, .jpe, .png, .webp, .heic, .heif,
 * .hif, .avif, .tif, .tiff, .gif, .bmp or .dib (any case); a file named
 * directly is always tried. Files are decoded by their magic bytes, never by
 * their name. Unchanged files (path, size, mtime) are skipped; a file whose
 * content is already stored under a path that no longer exists is taken as
 * moved and keeps its vector. Bad files are reported through on_error and
 * skipped; the good ones are committed in batches (one write transaction
 * each, every 1024 images or commit_seconds, whichever comes first). Paths
 * are stored as absolute paths. When the run completes, stored images under
 * a folder given whose files no longer exist are forgotten (as pv_remove
 * does; stats->forgotten). Holds the writer lock (see pv_db_set_busy_handler).
 * With a BLAS-heavy embedder (cnn) and several workers, OpenBLAS's thread
 * count (process-wide) is 1 while any pv_add runs in the process, and is
 * put back to its value from before the first of them when the last ends;
 * a caller that uses OpenBLAS in other threads meanwhile sees 1.
 * Returns 0 when the run completed (even with bad files: see stats->failed);
 * an error when it could not go on (storage failure), in which case batches
 * committed before the failure stay. */
int pv_add(pv_db *db, const char *const *paths, size_t npaths,
           const pv_add_opts *opts, pv_add_stats *stats);

/* Mark the item stored under path (absolute or relative to the current
 * directory) as removed. PV_ENOTFOUND if there is none. */
int pv_remove(pv_db *db, const char *path);

/* Remove every stored image among paths in one write transaction (all or
 * none). Paths not stored are skipped; removed (may be NULL) receives how
 * many were. */
int pv_remove_many(pv_db *db, const char *const *paths, size_t n, size_t *removed);

/* Rebuild the HNSW graph from the live items only, so removed items no
 * longer take part in searches. One write transaction: a reader sees the
 * old graph or the new one. */
int pv_vacuum(pv_db *db);

/* Write a compacted copy of the database to dest, a folder that must not
 * exist (PV_EEXIST): one consistent snapshot, taken while other handles and
 * processes may keep writing, without the free pages LMDB keeps in the
 * file for reuse (those rm, vacuum and int8 retraining left, and an
 * i8-only or f16-only database's dropped float32 vectors). dest appears
 * whole or not at all; on failure nothing is left behind and pv_db_errmsg
 * says why. To shrink a database in place, move the copy over it while no
 * process has it open. Works on a read-only handle. */
int pv_db_backup(pv_db *db, const char *dest);

/* ---- items --------------------------------------------------------------- */

typedef struct pv_item {
    uint32_t id;
    char *path;
    uint64_t size;
    int64_t mtime_ns;
    uint32_t width, height; /* as displayed (after EXIF orientation) */
    uint8_t hash[16];       /* XXH3-128 of the file's bytes */
    int format;             /* PV_FMT_* */
} pv_item;

/* Every live item, ordered by id. */
int pv_items(pv_db *db, pv_item **items, size_t *n);
void pv_items_free(pv_item *items, size_t n);

/* ---- queries ------------------------------------------------------------- */

typedef struct pv_hit {
    uint32_t id;
    float score; /* cosine similarity in [-1, 1] */
    char *path;
} pv_hit;

typedef struct pv_query_opts {
    int k;     /* how many hits (default 10) */
    int exact; /* 1: exact scan of every vector; 0: HNSW graph (default) */
    int ef;    /* HNSW candidate list size (default 64; raised to k) */
    int ids_only; /* 1: hits carry id and score only, path NULL (saves
                   * one item lookup per hit; pv_items maps ids to paths) */
    int ivf;      /* 1: search the IVF lists (pv_ivf_train) instead of the
                   * graph; PV_ENOTFOUND if none were trained */
    int nprobe;   /* IVF lists scanned (default 8; raised to at most nlist) */
    int no_rerank; /* 1: with compact vectors, return the graph's or the
                    * IVF scan's compact scores as they are; 0 (default):
                    * re-score their best 2k (at least 16, at most
                    * max(ef, k)) in float32 and keep the best k */
} pv_query_opts;

/* The k stored images most like the image at image_path, best first. o may
 * be NULL (defaults). *n may be less than k when the database holds fewer
 * items. Removed items are never returned. */
int pv_query_image(pv_db *db, const char *image_path, const pv_query_opts *o,
                   pv_hit **hits, size_t *n);

/* The same for a raw vector of the database's dimension (normalized here). */
int pv_query_vector(pv_db *db, const float *vec, uint32_t dim,
                    const pv_query_opts *o, pv_hit **hits, size_t *n);

/* Images like a text ("a dog on a beach"): the text through the
 * embedder's text tower (clip), then as pv_query_vector. PV_EINVAL with a
 * message when the database's embedder has no text tower, or the text is
 * not UTF-8. Texts longer than the tower's context (77 tokens for CLIP)
 * are cut to it. */
int pv_query_text(pv_db *db, const char *text, const pv_query_opts *o, pv_hit **hits,
                  size_t *n);

/* The vector of a text (dim = the database's dimension), as pv_query_text
 * computes it. */
int pv_embed_text(pv_db *db, const char *text, float *vec, uint32_t dim);

void pv_hits_free(pv_hit *hits, size_t n);

/* ---- clustering and IVF lists --------------------------------------------- */

/* k-means (greedy k-means++ seeding for k <= 128, a uniform draw above;
 * Lloyd iterations on OpenBLAS sgemm; empty clusters re-seeded;
 * index/kmeans.h) over the live vectors. */
typedef struct pv_cluster_opts {
    int k;             /* clusters (lists, for pv_ivf_train); required */
    int iters;         /* Lloyd iterations at most (default 20) */
    double tol;        /* stop when an iteration lowers the inertia by less
                        * than this fraction (default 1e-4; < 0: never) */
    uint64_t seed;     /* sample and seeding (default 1234) */
    int sample;        /* training points per cluster at most (default 256;
                        * < 0: every live item) */
    int standardize;   /* cluster (x - mean) / std per feature, as
                        * scikit-learn's StandardScaler (pv_cluster_train) */
} pv_cluster_opts;

typedef struct pv_cluster_stats {
    uint64_t items;    /* live items when trained */
    uint64_t trained;  /* of which in the training sample */
    double inertia;    /* sum of squared distances of the sample */
    int iters;         /* Lloyd iterations run */
    int reseeded;      /* empty clusters re-seeded along the way */
} pv_cluster_stats;

/* Cluster the live items and store the result (the centroids, and the
 * standardisation if asked), replacing any stored clustering, in one
 * transaction. PV_EINVAL when k < 1 or k exceeds the live items. stats may
 * be NULL. */
int pv_cluster_train(pv_db *db, const pv_cluster_opts *o,
                     pv_cluster_stats *stats);

typedef struct pv_cluster_member {
    uint32_t id;
    float dist2;  /* squared distance to the centroid (clustered space) */
    char *path;
} pv_cluster_member;

typedef struct pv_cluster {
    size_t n;
    pv_cluster_member *members; /* nearest the centroid first */
} pv_cluster;

typedef struct pv_clustering {
    int k;
    int standardized;
    size_t items;               /* live items assigned */
    double inertia;             /* their sum of squared distances */
    pv_cluster *clusters;       /* k of them; empty ones have n = 0 */
} pv_clustering;

/* The stored clustering applied to every live item now (items added since
 * it was trained included). PV_ENOTFOUND if none is stored. */
int pv_cluster_get(pv_db *db, pv_clustering **out);
void pv_clustering_free(pv_clustering *c);

/* The stored cluster the image at image_path falls in, and its squared
 * distance to that centroid (dist2 may be NULL). */
int pv_cluster_of(pv_db *db, const char *image_path, int *cluster,
                  float *dist2);

/* Train IVF lists: k-means with o->k = nlist lists on the live vectors
 * (standardize is ignored: lists partition the cosine space), then every
 * live item goes to the list of its nearest centroid. Replaces any lists in
 * the same transaction, so a reader sees the old lists or the new, never a
 * mix. From then on every insert is listed in its batch's transaction. */
int pv_ivf_train(pv_db *db, const pv_cluster_opts *o, pv_cluster_stats *stats);

/* ---- duplicates ---------------------------------------------------------- */

typedef struct pv_dup_member {
    pv_item item;
    float score;   /* cosine similarity to the group's representative
                    * (members[0]; 1 for itself) */
    int exact;     /* byte-identical to the representative (same XXH3-128) */
    int keep;      /* 1: kept (the representative, or a file in the
                    * preferred folder); 0: on the drop list */
} pv_dup_member;

typedef struct pv_dup_group {
    pv_dup_member *members; /* members[0] is the representative, always kept;
                             * the others by score, highest first */
    size_t n;
    float weakest;          /* lowest score in the group (>= the threshold) */
    int all_exact;          /* every member is a byte duplicate of members[0] */
} pv_dup_group;

/* How pv_find_dups looks for candidate pairs. */
enum {
    PV_DUPS_AUTO = 0,  /* exact up to PV_DUPS_EXACT_MAX images (1,000 for an
                        * embedder with a pair score, photo) (across: A and B
                        * together), else HNSW */
    PV_DUPS_EXACT,     /* all pairs, blocked sgemm */
    PV_DUPS_APPROX,    /* each item's neighbours from the HNSW graph */
};
/* Measured (bench/README.md, Fashion-MNIST subsets): the graph is 1.1x the
 * exact scan's speed at 5,000 images, 2.0x at 10,000, 2.4-2.9x at 60,000,
 * with pair recall 1.0000-0.9998. Below this size exactness costs under a
 * second. */
#define PV_DUPS_EXACT_MAX 10000u

/* Which member of a group is kept: the representative is the first image in
 * this order among those not yet grouped. Ties fall to most pixels, then the
 * biggest file, then the oldest mtime, then the lowest id. */
enum {
    PV_KEEP_LARGEST = 0, /* most pixels (the default) */
    PV_KEEP_OLDEST,      /* earliest mtime */
    PV_KEEP_NEWEST,      /* latest mtime */
};

typedef struct pv_dups_opts {
    float threshold;     /* cosine; 0 = the embedder's default
                          * (pv_info.dups_threshold) */
    int mode;            /* PV_DUPS_* */
    int keep;            /* PV_KEEP_* */
    const char *prefer;  /* a folder (absolute, or relative to the cwd) whose
                          * files are never dropped; NULL = none */
    const char *across_a;/* both set: only pairs with one image under folder A
                          * (say train/) and one under folder B (test/); the
                          * representative is always A's, B's images are the
                          * ones to drop */
    const char *across_b;
    uint32_t neighbours; /* approximate mode: neighbours asked per item
                          * (0 = 32; doubled for items whose list is full of
                          * pairs above the threshold) */
    uint32_t ef;         /* approximate mode: HNSW ef (0 = 2 * neighbours) */
    float fraction;      /* > 0: ignore threshold and pick the one at which
                          * this fraction of the scanned images has a
                          * neighbour at or above it */
    int want_pairs;      /* 1: also return every candidate pair (pv_dups.pair) */
} pv_dups_opts;

typedef struct pv_dup_pair {
    uint32_t a, b;       /* item ids, a < b */
    float score;
} pv_dup_pair;

typedef struct pv_dups {
    pv_dup_group *groups;  /* largest first, then by representative id */
    size_t ngroups;
    uint64_t pairs;        /* candidate pairs at or above the threshold */
    uint64_t images;       /* images in groups (each counted once) */
    uint64_t dropped;      /* images with keep == 0 */
    uint64_t exact_images; /* images byte-identical to their representative */
    uint64_t scanned;      /* live items scanned (across: B's images, each
                            * scanned against A's) */
    float threshold;       /* the threshold used */
    int approximate;       /* 1 if candidates came from the HNSW graph */
    double seconds;        /* the candidate search */
    double gflops;         /* its arithmetic rate (exact mode) */
    pv_dup_pair *pair;     /* want_pairs: the `pairs` candidate pairs, by
                            * (a, b); byte duplicates included (score 1) */
    float *nn_score;       /* scanned entries, in id order: each scanned
                            * image's similarity to its nearest other image
                            * (across: nearest of A's; -1 if none was
                            * found), for histograms */
} pv_dups;

/* Groups of near-duplicate images. Candidate pairs (>= threshold) come from
 * an exact all-pairs scan or, above PV_DUPS_EXACT_MAX items or when asked,
 * from each item's nearest neighbours in the HNSW graph, each scored
 * exactly; byte-identical files are always paired. Groups are built around
 * representatives, so they never chain: taking images in the keep order,
 * each image not yet grouped that has ungrouped partners becomes a
 * representative, and its ungrouped partners its members; every member
 * scores >= threshold with its representative. o may be NULL (defaults). */
int pv_find_dups(pv_db *db, const pv_dups_opts *o, pv_dups **out);
void pv_dups_free(pv_dups *d);

/* ---- maps of a collection ---------------------------------------------- */

/* A 2-D or 3-D layout of every live item, UMAP (McInnes et al. 2018, as
 * umap-learn defines it) or t-SNE (van der Maaten 2008/2014, as scikit-learn
 * and openTSNE define it), from each item's nearest neighbours in the stored
 * HNSW graph (exact neighbours below a size measured in bench/). The layout
 * is stored in the database, one per method and dimension: a later call
 * reads it back, and items added since are placed among the stored points
 * (UMAP's transform; for t-SNE, the same optimisation with the stored points
 * fixed) without moving them, until recompute is asked. */
enum { PV_MAP_UMAP = 0, PV_MAP_TSNE = 1 };

typedef struct pv_map_opts {
    int method;        /* PV_MAP_UMAP (default) or PV_MAP_TSNE */
    int dims;          /* 2 (default, 0) or 3 */
    uint64_t seed;     /* 0: 42; the same seed and data give the same map */
    int threads;       /* 0: every core */
    int recompute;     /* 1: compute a new layout even when one is stored */
    int no_store;      /* 1: do not store (a read-only database) */
    /* UMAP (0: umap-learn's default) */
    int n_neighbors;   /* 15 */
    float min_dist;    /* 0.1 */
    int epochs;        /* 500 up to 10,000 items, else 200 */
    /* t-SNE (0: the default) */
    float perplexity;  /* 30 */
    int iters;         /* 1000 (scikit-learn) */
} pv_map_opts;

typedef struct pv_map_point {
    uint32_t id;       /* the item */
    char *path;
    float xyz[3];      /* dims of them used */
    int placed;        /* 1: added after the layout was computed and placed */
} pv_map_point;

typedef struct pv_map {
    int method, dims;
    size_t n;              /* points: every live item */
    pv_map_point *points;  /* in id order */
    size_t fitted;         /* points the stored layout was computed on */
    size_t placed;         /* points placed since (added later) */
    int computed;          /* 1: computed by this call, 0: read back */
    double seconds;        /* time this call spent computing or placing */
    double knn_seconds;    /* of which finding the nearest neighbours */
    /* the parameters the layout was computed with */
    int n_neighbors, epochs, iters;
    float min_dist, perplexity;
    uint64_t seed;
} pv_map;

/* The map of db with o (NULL: defaults): read back, completed or computed
 * as above, and stored unless o->no_store (writing needs a read-write
 * handle; it takes the writer lock like pv_add). Needs at least 4 items
 * (PV_EINVAL with a message otherwise). *out is freed with pv_map_free. */
int pv_map_build(pv_db *db, const pv_map_opts *o, pv_map **out);
void pv_map_free(pv_map *m);

/* ---- dataset quality ------------------------------------------------------ */

/* The report to read before training on a collection (`pixvec quality`):
 *  - outliers: the images whose nearest other image is least like them
 *    (lowest cosine similarity), with the distribution of that similarity;
 *  - label-noise suspects, when images sit in class folders (the ImageFolder
 *    convention: an image's label is the name of the folder it is in) and
 *    there are two labels or more: an image whose k nearest neighbours carry
 *    another label in at least `vote` of their weighted votes (each
 *    neighbour votes for its own label with its cosine similarity, clipped
 *    at 0), reported with the suggested label and that fraction;
 *  - pixel statistics from decoding every file again (on worker threads,
 *    at the size the embedder reads, so a JPEG is decoded at reduced DCT
 *    scale): uniform or blank images (the standard deviation of their grey
 *    levels, on a 0..1 scale, below blank_std), very dark (mean grey below
 *    dark_mean) and very bright (above bright_mean) ones; a blank image is
 *    listed as blank only, not also as dark or bright. A file that cannot be
 *    read or decoded any more is listed as unreadable with its reason; it
 *    does not fail the report;
 *  - tiny images: the shorter side (as stored at ingest, after EXIF
 *    orientation) below tiny_side and below half the median shorter side of
 *    the collection, so that a collection of small images (Fashion-MNIST's
 *    28 x 28) is not reported whole;
 *  - the count of byte-identical files (from the stored content hashes;
 *    `pv_find_dups` groups them and near-duplicates).
 * Neighbours come from the same search as pv_map_build's (exact below a
 * size, else the stored HNSW graph's self-join). Reads one snapshot; writes
 * nothing, so a read-only handle will do. */
typedef struct pv_quality_opts {
    int k;             /* neighbours that vote on an image's label (0: 10;
                        * at most 100) */
    int top;           /* outliers returned, the lowest first (0: 20; < 0:
                        * every image). The other lists are always complete */
    float vote;        /* the share of the weighted vote another label needs
                        * for a suspect, in (0.5, 1] (0: 0.6: a clear
                        * majority, not a plurality) */
    float blank_std;   /* grey standard deviation below which an image is
                        * uniform (0: 0.02, about 5 grey levels of 255) */
    float dark_mean;   /* mean grey below which an image is very dark (0: 0.08) */
    float bright_mean; /* mean grey above which an image is very bright (0: 0.92) */
    int tiny_side;     /* pixels; a shorter side below it may be tiny (0: 32) */
    int no_pixels;     /* 1: decode nothing (no blank, dark, bright or
                        * unreadable lists; mean and std are -1) */
    int threads;       /* decoding and neighbour threads (0: every core) */
} pv_quality_opts;

/* One image in a list of the report. Every field is set whatever the list
 * is; `score` repeats the one the list is sorted by. */
typedef struct pv_quality_item {
    uint32_t id;
    char *path;
    float score;        /* outliers: nn; suspects: the confidence, vote x
                         * (1 - the mean share of the vote that all the
                         * images of its folder give suggested), so that a
                         * confusion common between two folders (shirt and
                         * t-shirt) ranks below a rare one; blank: std;
                         * dark, bright: mean; tiny: shorter side;
                         * unreadable: 0 */
    float nn;           /* cosine similarity to the nearest other image (-1
                         * when the collection has one image) */
    float mean, std;    /* grey level statistics on 0..1 (-1: not decoded) */
    uint32_t width, height; /* as stored at ingest */
    char *label;        /* the image's folder name ("" at the root) */
    char *suggested;    /* suspects: the label its neighbours vote for;
                         * else NULL */
    float vote;         /* suspects: the share of the weighted vote for
                         * suggested, in [vote, 1]; else 0 */
    int err;            /* unreadable: the PV_E* code of the failure; else 0 */
    char *reason;       /* unreadable: the decoder's or the system's words;
                         * else NULL */
} pv_quality_item;

typedef struct pv_quality_list {
    pv_quality_item *items;
    size_t n;
} pv_quality_list;

typedef struct pv_quality {
    size_t items;          /* live images looked at */
    size_t nlabels;        /* distinct folder names among them */
    size_t decoded;        /* images decoded for pixel statistics */
    int k;                 /* neighbours used for the vote */
    float vote;            /* the vote share asked of a suspect */
    float nn_median;       /* median of every image's nn (-1 with < 2 images) */
    float nn_p01;          /* its 1st percentile (linear interpolation, as
                            * numpy's default): 1 % of the images lie below */
    float blank_std, dark_mean, bright_mean; /* the thresholds used */
    uint32_t tiny_below;   /* the shorter side below which an image counted
                            * as tiny (tiny_side or half the median, the
                            * smaller) */
    uint64_t exact_copies; /* live images byte-identical to an image of lower
                            * id (a group of 3 identical files counts 2) */
    double seconds;        /* the whole report */
    pv_quality_list outliers;   /* lowest nn first; `top` of them */
    pv_quality_list suspects;   /* empty unless nlabels >= 2; highest
                                 * score (confidence) first, then highest
                                 * vote, then id */
    pv_quality_list blank;      /* lowest std first */
    pv_quality_list dark;       /* darkest first */
    pv_quality_list bright;     /* brightest first */
    pv_quality_list tiny;       /* smallest shorter side first */
    pv_quality_list unreadable; /* id order */
} pv_quality;

/* The report of db with o (NULL: defaults). PV_EINVAL with a message for an
 * option out of range. An empty database gives an empty report. *out is
 * freed with pv_quality_free. */
int pv_quality_report(pv_db *db, const pv_quality_opts *o, pv_quality **out);
void pv_quality_free(pv_quality *q);

/* ---- export and import ------------------------------------------------------ */

/* Formats of pv_db_export (PREFIX is a path without extension):
 * PV_EXPORT_NPY: PREFIX.npy, numpy format 1.0, '<f4', C order, shape
 *   (N, D), the header padded so the data starts at a multiple of 64;
 *   PREFIX.ids.npy, '<u4' shape (N,): row i's item id; PREFIX.paths.txt:
 *   row i's path on line i+1, each line ended by '\n', its bytes as stored
 *   (UTF-8 when the file system's names are) except that a backslash is
 *   written as two ("\\"), a newline as "\n" and a carriage return as
 *   "\r" (pv_paths_read reads them back).
 * PV_EXPORT_FVECS: PREFIX.fvecs (TEXMEX/FAISS: per row an int32 D, then D
 *   float32, little-endian), and the same PREFIX.ids.npy and .paths.txt.
 * PV_EXPORT_JSONL: PREFIX.jsonl, one object a line: {"id", "path", "size",
 *   "mtime_ns" (nanoseconds since the epoch), "hash" (32 hex digits,
 *   XXH3-128), "width", "height", "vector": [D numbers, %.9g: each reads
 *   back as the same float32]}; "path" is the exact name when it is valid
 *   UTF-8 and does not begin with '"', else the CLI's quoted form
 *   (README.md, "File names": "caf\xe9.jpg" in double quotes).
 * Rows are the live items (removed ones skipped) in id order, their
 * vectors as stored: float32, or for a database that keeps only f16 or i8
 * copies (pv_index_opts.compact_only, once the float32 are dropped) those
 * copies decoded to float32 (pv_export_stats.dequantized). */
enum { PV_EXPORT_NPY = 0, PV_EXPORT_FVECS = 1, PV_EXPORT_JSONL = 2 };

typedef struct pv_export_opts {
    int format; /* PV_EXPORT_* (default NPY) */
    int force;  /* 1: replace output files that exist; 0: PV_EEXIST naming
                 * the first, nothing written */
} pv_export_opts;

typedef struct pv_export_stats {
    uint64_t items;  /* rows written */
    uint32_t dim;    /* values a row */
    int dequantized; /* 1: the rows are compact copies decoded (see above) */
} pv_export_stats;

/* Write the live vectors of one read snapshot (writers may go on) to the
 * files of o->format (o NULL: npy, no force). Streams row by row: memory
 * holds one row, not the vectors (except a dequantized database's,
 * decoded once). Each file is written to a temporary file beside it,
 * fsynced, then renamed into place once all are complete; on any failure
 * (PV_EIO, PV_EEXIST, PV_EINTR from pv_db_interrupt, ...) nothing is left
 * behind and existing files are untouched. Works on a read-only handle.
 * stats may be NULL. */
int pv_db_export(pv_db *db, const char *prefix, const pv_export_opts *o, pv_export_stats *stats);

/* Read a .npy file (untrusted): format 1.0, 2.0 or 3.0; dtype '<f4', or
 * '<f8' converted to float32 (any other dtype is PV_EINVAL naming it);
 * fortran_order False only; 1-D (one vector: *rows 1) or 2-D (*rows
 * vectors of *cols values, 1..1048576); the data exactly rows * cols *
 * itemsize bytes (PV_ECORRUPT: truncated or longer, or a malformed
 * header). *data (rows * cols floats, malloc'd) is freed with pv_npy_free;
 * ndim (may be NULL) gets 1 or 2. err names the file and the reason. */
int pv_npy_read(const char *path, float **data, uint64_t *rows, uint32_t *cols, int *ndim,
                char *err, size_t errlen);
void pv_npy_free(float *data);

/* Read a paths file as PV_EXPORT_NPY writes it: one path a line, "\\",
 * "\n" and "\r" unescaped; a last line without '\n' counts. An empty
 * line, a NUL byte, another backslash sequence or a line ending in a bare
 * carriage return is PV_EINVAL naming the line (1-based). *paths (n
 * strings) is freed with pv_paths_free. */
int pv_paths_read(const char *file, char ***paths, size_t *n, char *err, size_t errlen);
void pv_paths_free(char **paths, size_t n);

typedef struct pv_import_opts {
    int normalize; /* 1: scale each row to unit length (a zero row is
                    * refused); 0: a row whose L2 norm is not 1 within
                    * 1e-3 is refused */
} pv_import_opts;

/* Make items of n vectors computed elsewhere (n * dim floats, row i for
 * paths[i]) in a database created with the "external" embedder of
 * dimension dim (PV_EEMBEDDER for another embedder or dimension). Checked
 * before anything is written, errors naming the row (counting from 0, as
 * numpy does): a NaN or infinite value, or a norm not 1 without
 * o->normalize (PV_ENUMERIC); a path that is empty, too long, named twice
 * (PV_EINVAL), or stored already (PV_EEXIST: import never replaces).
 * Relative paths are made absolute against the current directory (as
 * pv_add does). For a path whose file exists, size, mtime, content hash
 * (XXH3-128 of its bytes, as pv_add) and width and height (when it
 * decodes) come from the file; otherwise size, mtime, width and height
 * are 0 and the hash is XXH3-128 of "pixvec:no-file:" and the path. The
 * items are inserted by pv_add's own insert path (records, HNSW graph,
 * compact copies, IVF lists) in ONE write transaction: all or nothing.
 * Takes the writer lock. imported (may be NULL) gets n. */
int pv_import_vectors(pv_db *db, const float *vecs, size_t n, uint32_t dim,
                      const char *const *paths, const pv_import_opts *o, size_t *imported);

/* ---- images ------------------------------------------------------------- */

/* Decode and embed one file with the database's embedder, without storing
 * it. vec receives dim floats (unit length, or zero for a flat image). */
int pv_embed_file(pv_db *db, const char *path, float *vec, uint32_t dim);

/* ---- thumbnails, plots, moving files (used by `dups`) -------------------- */

/* Decode the image at src (any format pixvec reads, EXIF orientation
 * applied), scale it
 * by area averaging so that its longer side is at most max_side (never up),
 * and write it as a baseline RGB JPEG of the given quality (1..100) to dst,
 * through a temporary file renamed into place (dst is never left half
 * written). src_w/src_h (may be NULL) receive the source's size. err gets a
 * message naming the file and the reason. */
int pv_thumbnail(const char *src, uint32_t max_side, int quality,
                 const char *dst, uint32_t *src_w, uint32_t *src_h,
                 char *err, size_t errlen);

/* Move files into dest_dir keeping their paths relative to root (an
 * absolute directory that every path lies under, say the common parent of
 * the collection): root/a/b.jpg goes to dest_dir/a/b.jpg, folders created as
 * needed. Never overwrites: when the destination exists the file gets a
 * free name (b.1.jpg, b.2.jpg, ...). Works across file systems (copy,
 * fsync, then unlink). Before each move a line "DEST\tSOURCE\n" is appended
 * to undo_file and flushed to disk, so a crash leaves an undo list naming
 * every file that may have moved. A file that cannot be moved (missing,
 * outside root, permission) is skipped: the others
 * still move. moved/failed (may be NULL) receive the counts; the result is
 * PV_OK when nothing failed, else the code of the first failure, with err
 * naming that file and the reason. */
int pv_move_files(const char *const *paths, size_t n, const char *root,
                  const char *dest_dir, const char *undo_file, size_t *moved,
                  size_t *failed, char *err, size_t errlen);

/* Undo pv_move_files: every line of undo_file moves DEST back to SOURCE,
 * last line first, never overwriting an existing SOURCE (that line fails
 * and is reported). Lines whose DEST no longer exists but whose SOURCE does
 * (already undone) are skipped and counted as restored. Counts and result
 * as for pv_move_files. */
int pv_undo_moves(const char *undo_file, size_t *restored, size_t *failed,
                  char *err, size_t errlen);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* PIXVEC_H */
