/*
 * store.c - the LMDB environment, schema and records of a pixvec database.
 *
 * Layout and record formats are written down in store.h and docs/FORMAT.md.
 * Design choices:
 *  - MDB_NOTLS, so a read transaction is not tied to the thread that began
 *    it (engine worker threads never hold one, but the shell may move work);
 *  - the map starts small and doubles when a write reports MDB_MAP_FULL:
 *    the caller aborts, calls store_grow() and redoes its batch; the
 *    environment variable PIXVEC_MAP_LIMIT (bytes) caps it, so a database
 *    that would grow past the cap fails with STORE_FULL and keeps its last
 *    committed state (an operator's quota, and the tests' map-full fault);
 *  - vectors live in chunks of `chunk` vectors per value, so a value is
 *    larger than a page and LMDB keeps it in contiguous overflow pages that
 *    mdb_get returns zero-copy; a read transaction caches the chunk pointers;
 *  - per-snapshot state (the chunk pointers, the counters) lives in the
 *    store_txn, never in the shared store handle: threads that each hold a
 *    read transaction write no shared memory. A caller that runs one query
 *    after another on one thread may carry the chunk pointers from one
 *    snapshot to the next with a store_vec_cache of its own;
 *  - every record is checked against docs/FORMAT.md's limits where it is
 *    parsed, here, before any caller sees it: a path length above
 *    PV_MAX_PATH_BYTES, an id at or beyond next_id, a vector chunk of a
 *    size that is not whole vectors are PV_ECORRUPT with a message naming
 *    the record (store_txn_errmsg), so no caller can copy or index past an
 *    end. An absent record is PV_ENOTFOUND, a malformed one PV_ECORRUPT;
 *  - opening checks the magic and the format version in a read-only
 *    transaction before anything else, so "not a pixvec database" and
 *    "written by a newer pixvec" change nothing on disk.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <fcntl.h>
#include <unistd.h>

#include "pixvec.h"
#include "pv_util.h"

struct store {
    MDB_env *env;
    MDB_dbi meta, items, paths, hashes, vectors, hnsw, hnsw_upper;
    MDB_dbi ivf_centroids, ivf_lists, codes;
    int has_ivf; /* the two tables exist (a read-only open of a database
                  * made before they did sees none) */
    store_schema schema;
    uint32_t format; /* meta format: 1, 2 or 3 */
    int rdonly;
    int unlocked; /* read without LMDB's lock table (env_open) */
    /* Shared by every thread that begins a transaction: */
    pthread_mutex_t mu; /* guards the two below */
    uint64_t mapgen;    /* bumped whenever the map may have moved */
    unsigned ntxn;      /* transactions begun (or beginning) and not ended */
    char commit_err[256]; /* why the last commit failed (OS error), or "" */
    char dir[4096];
};

struct store_txn {
    store *st;
    MDB_txn *txn;
    int write;
    uint64_t key; /* store_snapshot(): read transactions, fixed at begin */
    /* this snapshot's vector chunks (store_vec_chunks) */
    const float **chunk_ptrs;
    uint32_t *chunk_counts;
    uint32_t nchunks, chunk_cap;
    int chunks_valid;
    store_vec_cache *cache; /* the caller's, or NULL */
    /* the counters, read and checked once (store_counts_get) */
    store_counts counts;
    int counts_valid;
    char err[256]; /* what the last PV_ECORRUPT found */
};

int store_corrupt(store_txn *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return PV_ECORRUPT;
}

const char *store_txn_errmsg(const store_txn *t)
{
    return t ? t->err : "";
}

/* ---- little-endian helpers ------------------------------------------------ */

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Map an LMDB return code to a pv code. */
static int map_rc(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return PV_OK;
    case MDB_NOTFOUND: return PV_ENOTFOUND;
    case MDB_MAP_FULL: return STORE_FULL;
    case MDB_INVALID: return PV_ENOTDB;
    case ENOMEM: return PV_ENOMEM;
    case EACCES: case EIO: case ENOSPC: return PV_EIO;
    default: return PV_ESTORE;
    }
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *a,
                    const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
}

/* ---- environment ---------------------------------------------------------- */

/* PIXVEC_MAP_LIMIT in bytes, a multiple of 4096; 0 when unset or not a
 * number of at least 64 KiB. */
static size_t map_limit(void)
{
    const char *s = getenv("PIXVEC_MAP_LIMIT");
    char *end = NULL;
    unsigned long long v;
    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 65536 || v > (unsigned long long)SIZE_MAX)
        return 0;
    return (size_t)(v & ~4095ull);
}

/* The user may not write here: the errors an open without write access
 * gives (EROFS: a read-only mount, as root too). */
static int is_no_write(int rc) { return rc == EACCES || rc == EPERM || rc == EROFS; }

/* 1 when dir is on a file system mounted read-only. */
static int on_rdonly_fs(const char *dir)
{
    struct statvfs vs;
    return statvfs(dir, &vs) == 0 && (vs.f_flag & ST_RDONLY);
}

/* Why a read-write open was refused, in words that name what is not
 * writable (the effective ids decide, as they do for open(2)). */
static void no_write_err(const char *dir, int rc, char *err, size_t errlen)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    char p[4200], what[64] = "its folder, data.mdb or lock.mdb";
    if (rc == EROFS || on_rdonly_fs(dir)) {
        set_err(err, errlen, "%s: %s", dir,
                "read-only file system: you cannot write this database here "
                "(read-only commands work)");
        return;
    }
    for (size_t i = 0, found = 0; i < 3 && !found; i++) {
        /* The folder matters last: with both files writable LMDB needs none */
        if (i < 2)
            snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        found = faccessat(AT_FDCWD, i < 2 ? p : dir, W_OK, AT_EACCESS) != 0 &&
                errno != ENOENT;
        if (found)
            snprintf(what, sizeof what, "%s", i < 2 ? files[i] : "its folder");
    }
    set_err(err, errlen,
            "%s: permission denied: you cannot write this database (%s is not "
            "writable by you; read-only commands work)",
            dir, what);
}

/* Open the environment. A read-only open normally registers its reader in
 * LMDB's lock table (lock.mdb, which LMDB opens read-write even for a
 * reader), so a writer never reuses the pages of a snapshot in use. A user
 * who may read the database but not write it (EACCES or EPERM on lock.mdb
 * or its folder; a read-only mount) cannot do that, so the read-only open
 * goes on without the table (MDB_NOLOCK) and says so (store_is_unlocked).
 * The cost: such a reader is invisible to a writer running at the same
 * time, and from that writer's third commit during one read snapshot on,
 * the pages the snapshot is reading may be reused (measured with LMDB
 * 0.9: a value fetched before holds the third commit's bytes afterwards).
 * Vector values and LMDB's page walks carry no checksum, so such a read
 * could give wrong scores or paths without an error. Hence the check at
 * the end of every read (store_txn_read_check): when the newest commit in
 * the meta pages is two or more past the transaction's own id, its pages
 * may have been reused, and the engine drops the results and fails with
 * PV_ESTORE ("the database changed while it was read ...; run the command
 * again"); a record that parsed as malformed meanwhile (PV_ECORRUPT) is
 * explained the same way. We go on rather than refuse to open: without a
 * writer at work at the same time (the usual case for a database one
 * cannot write: someone else's, or a read-only copy) nothing differs, and
 * the caller can tell its user. */
static int env_open(store *st, const char *dir, int rdonly, char *err,
                    size_t errlen)
{
    size_t lim = map_limit();
    unsigned flags = MDB_NOTLS | (rdonly ? MDB_RDONLY : 0);
    int rc;
    /* On a read-only mount LMDB opens a reader without its table by itself
     * (when lock.mdb cannot be opened); ask for that outright so the
     * handle knows. */
    if (rdonly && on_rdonly_fs(dir))
        flags |= MDB_NOLOCK;
    for (;;) {
        rc = mdb_env_create(&st->env);
        if (rc == 0)
            rc = mdb_env_set_maxdbs(st->env, 16);
        if (rc == 0)
            rc = mdb_env_set_mapsize(st->env, lim && lim < STORE_INITIAL_MAP
                                                  ? lim
                                                  : STORE_INITIAL_MAP);
        if (rc == 0)
            rc = mdb_env_open(st->env, dir, flags, 0644);
        if (rc == 0)
            break;
        if (st->env) /* LMDB's rule: a failed open's handle is closed */
            mdb_env_close(st->env);
        st->env = NULL;
        if (rdonly && is_no_write(rc) && !(flags & MDB_NOLOCK)) {
            flags |= MDB_NOLOCK;
            continue;
        }
        if (!rdonly && is_no_write(rc))
            no_write_err(dir, rc, err, errlen);
        else if (rdonly && is_no_write(rc))
            set_err(err, errlen, "%s: %s", dir,
                    "permission denied: you cannot read this database (data.mdb "
                    "or its folder is not readable by you)");
        else
            set_err(err, errlen, "%s: %s", dir, mdb_strerror(rc));
        return is_no_write(rc) ? PV_EIO : map_rc(rc);
    }
    st->rdonly = rdonly;
    st->unlocked = (flags & MDB_NOLOCK) != 0;
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    return PV_OK;
}

static int has_data_file(const char *dir)
{
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* 1 when dir holds anything (a user's photos, say), 0 when empty, -1 when
 * it cannot be read (errno set). */
static int dir_has_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int any = 0;
    if (!d)
        return -1;
    while (!any && (e = readdir(d)) != NULL)
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

static int meta_put_raw(MDB_txn *txn, MDB_dbi dbi, const char *key,
                        const void *v, size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, d = {n, (void *)v};
    return mdb_put(txn, dbi, &k, &d, 0);
}

static int meta_put_u32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t v)
{
    uint8_t b[4];
    put_u32(b, v);
    return meta_put_raw(txn, dbi, key, b, 4);
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t v)
{
    uint8_t b[8];
    put_u64(b, v);
    return meta_put_raw(txn, dbi, key, b, 8);
}

/* Fetch meta[key]: exactly n bytes (n > 0), or (n == 0) a string of 1 to
 * cap-1 bytes without a NUL, NUL-terminated into out. PV_ENOTFOUND if the
 * key is absent; PV_ECORRUPT, with msg (msglen bytes) saying why, if its
 * value breaks that. */
static int meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, void *out,
                    size_t n, size_t cap, char *msg, size_t msglen)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (rc != 0)
        return map_rc(rc);
    if (n == 0) {
        if (d.mv_size == 0 || d.mv_size >= cap || memchr(d.mv_data, 0, d.mv_size)) {
            snprintf(msg, msglen, "meta %s: %zu bytes%s, expected a name of 1..%zu",
                     key, d.mv_size,
                     d.mv_size && d.mv_size < cap ? " with a NUL byte" : "", cap - 1);
            return PV_ECORRUPT;
        }
        memcpy(out, d.mv_data, d.mv_size);
        ((char *)out)[d.mv_size] = 0;
        return PV_OK;
    }
    if (d.mv_size != n) {
        snprintf(msg, msglen, "meta %s: %zu bytes, expected %zu", key, d.mv_size, n);
        return PV_ECORRUPT;
    }
    memcpy(out, d.mv_data, n);
    return PV_OK;
}

static int meta_get_u32(MDB_txn *txn, MDB_dbi dbi, const char *key,
                        uint32_t *v, char *msg, size_t msglen)
{
    uint8_t b[4];
    int rc = meta_get(txn, dbi, key, b, 4, 0, msg, msglen);
    if (rc == 0)
        *v = get_u32(b);
    return rc;
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *key,
                        uint64_t *v, char *msg, size_t msglen)
{
    uint8_t b[8];
    int rc = meta_get(txn, dbi, key, b, 8, 0, msg, msglen);
    if (rc == 0)
        *v = get_u64(b);
    return rc;
}

static int open_dbis(store *st, MDB_txn *txn, unsigned create)
{
    int rc;
    if ((rc = mdb_dbi_open(txn, "items", MDB_INTEGERKEY | create, &st->items)))
        return rc;
    if ((rc = mdb_dbi_open(txn, "paths", create, &st->paths)))
        return rc;
    if ((rc = mdb_dbi_open(txn, "hashes",
                           MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | create,
                           &st->hashes)))
        return rc;
    if ((rc = mdb_dbi_open(txn, "vectors", MDB_INTEGERKEY | create, &st->vectors)))
        return rc;
    if ((rc = mdb_dbi_open(txn, "hnsw", MDB_INTEGERKEY | create, &st->hnsw)))
        return rc;
    return mdb_dbi_open(txn, "hnsw_upper", MDB_INTEGERKEY | create, &st->hnsw_upper);
}

/* The IVF tables, added after format 1's first release: a database made
 * before them gets them on its first writable open (older readers ignore
 * them); a read-only open sees empty lists. */
static int open_ivf_dbis(store *st, MDB_txn *txn, unsigned create)
{
    int rc = mdb_dbi_open(txn, "ivf_centroids", MDB_INTEGERKEY | create,
                          &st->ivf_centroids);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "ivf_lists",
                          MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED |
                              MDB_INTEGERDUP | create,
                          &st->ivf_lists);
    return rc;
}

/* The schema in meta, each value checked against its limits; msg says
 * which is missing or out of range. */
static int read_schema(MDB_txn *txn, MDB_dbi meta, store_schema *s, char *msg,
                       size_t msglen)
{
    static const struct {
        const char *key;
        size_t off;
        uint32_t lo, hi;
    } u32s[] = {
        {"dim", offsetof(store_schema, dim), 1, STORE_MAX_DIM},
        {"chunk", offsetof(store_schema, chunk), 1, STORE_MAX_CHUNK},
        {"emb_size", offsetof(store_schema, emb_size), 0, UINT32_MAX},
        {"emb_rgb", offsetof(store_schema, emb_rgb), 0, 1},
        {"hnsw_m", offsetof(store_schema, hnsw_m), 2, STORE_MAX_M},
        {"hnsw_efc", offsetof(store_schema, hnsw_efc), 1, STORE_MAX_EFC},
    };
    int rc;
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) {
        uint32_t v = 0;
        rc = meta_get_u32(txn, meta, u32s[i].key, &v, msg, msglen);
        if (rc == PV_ENOTFOUND)
            snprintf(msg, msglen, "meta %s: missing", u32s[i].key);
        if (rc != 0)
            return rc == PV_ENOTFOUND ? PV_ECORRUPT : rc;
        if (v < u32s[i].lo || v > u32s[i].hi) {
            snprintf(msg, msglen, "meta %s: %u outside %u..%u", u32s[i].key, v,
                     u32s[i].lo, u32s[i].hi);
            return PV_ECORRUPT;
        }
        memcpy((char *)s + u32s[i].off, &v, sizeof v);
    }
    /* Optional, added after format 1's first release: absent is 0. */
    rc = meta_get_u32(txn, meta, "emb_flags", &s->emb_flags, msg, msglen);
    if (rc == PV_ENOTFOUND)
        s->emb_flags = 0;
    else if (rc != 0)
        return rc;
    rc = meta_get_u32(txn, meta, "vec_codes", &s->codes, msg, msglen);
    if (rc == PV_ENOTFOUND)
        s->codes = 0;
    else if (rc != 0)
        return rc;
    else if (s->codes < 1 || s->codes > STORE_MAX_CODES) {
        snprintf(msg, msglen, "meta vec_codes: %u outside 1..%u", s->codes, STORE_MAX_CODES);
        return PV_ECORRUPT;
    }
    rc = meta_get_u32(txn, meta, "vec_only", &s->codes_only, msg, msglen);
    if (rc == PV_ENOTFOUND)
        s->codes_only = 0;
    else if (rc != 0)
        return rc;
    else if (s->codes_only != 1 || !s->codes) {
        snprintf(msg, msglen, "meta vec_only: %u%s", s->codes_only,
                 s->codes ? ", not 1" : " without vec_codes");
        return PV_ECORRUPT;
    }
    rc = meta_get(txn, meta, "embedder", s->embedder, 0, sizeof s->embedder, msg,
                  msglen);
    if (rc == PV_ENOTFOUND)
        snprintf(msg, msglen, "meta embedder: missing");
    if (rc != 0)
        return rc == PV_ENOTFOUND ? PV_ECORRUPT : rc;
    /* Optional: only an embedder with a weight file has them, both. */
    rc = meta_get(txn, meta, "emb_model", s->model, 0, sizeof s->model, msg, msglen);
    if (rc == PV_ENOTFOUND) {
        s->model[0] = 0;
        return PV_OK;
    }
    if (rc == 0)
        rc = meta_get(txn, meta, "emb_model_hash", s->model_hash, 16, 0, msg, msglen);
    if (rc == PV_ENOTFOUND)
        snprintf(msg, msglen, "meta emb_model_hash: missing beside emb_model");
    return rc == PV_ENOTFOUND ? PV_ECORRUPT : rc;
}

/* A zeroed handle with its mutex (store_close undoes both). */
static store *store_alloc(void)
{
    store *st = calloc(1, sizeof *st);
    if (st && pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        st = NULL;
    }
    return st;
}

int store_create(const char *dir, const store_schema *s, store **out,
                 char *err, size_t errlen)
{
    store *st = NULL;
    MDB_txn *txn = NULL;
    int rc;

    if (!s || s->dim == 0 || s->dim > STORE_MAX_DIM || s->chunk == 0 ||
        s->chunk > STORE_MAX_CHUNK || !s->embedder[0] || s->emb_rgb > 1 ||
        s->hnsw_m < 2 || s->hnsw_m > STORE_MAX_M || s->hnsw_efc == 0 ||
        s->hnsw_efc > STORE_MAX_EFC) {
        set_err(err, errlen, "%s: %s", dir, "bad schema");
        return PV_EINVAL;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return PV_EIO;
    }
    if (has_data_file(dir)) {
        set_err(err, errlen, "%s: %s", dir, "a database already exists here");
        return PV_EEXIST;
    }
    /* A database gets a folder of its own: never data.mdb and lock.mdb
     * dropped among a user's files. */
    switch (dir_has_entries(dir)) {
    case 0:
        break;
    case 1:
        set_err(err, errlen, "%s: %s", dir,
                "the folder is not empty and holds no pixvec database; "
                "a database needs a new or empty folder");
        return PV_EINVAL;
    default:
        set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return PV_EIO;
    }
    st = store_alloc();
    if (!st)
        return PV_ENOMEM;
    if ((rc = env_open(st, dir, 0, err, errlen)) != 0)
        goto done;
    if ((rc = map_rc(mdb_txn_begin(st->env, NULL, 0, &txn))) != 0)
        goto done;
    rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta);
    if (rc == 0)
        rc = open_dbis(st, txn, MDB_CREATE);
    if (rc == 0)
        rc = open_ivf_dbis(st, txn, MDB_CREATE);
    if (rc == 0 && s->codes)
        rc = mdb_dbi_open(txn, "codes", MDB_INTEGERKEY | MDB_CREATE, &st->codes);
    if (rc == 0)
        rc = meta_put_raw(txn, st->meta, "magic", STORE_MAGIC, 8);
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "format", PV_FORMAT_VERSION);
    if (rc == 0 && s->codes)
        rc = meta_put_u32(txn, st->meta, "vec_codes", s->codes);
    if (rc == 0 && s->codes_only)
        rc = meta_put_u32(txn, st->meta, "vec_only", 1);
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "dim", s->dim);
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "chunk", s->chunk);
    if (rc == 0)
        rc = meta_put_raw(txn, st->meta, "embedder", s->embedder,
                          strlen(s->embedder));
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "emb_size", s->emb_size);
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "emb_rgb", s->emb_rgb);
    if (rc == 0 && s->emb_flags)
        rc = meta_put_u32(txn, st->meta, "emb_flags", s->emb_flags);
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "hnsw_m", s->hnsw_m);
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "hnsw_efc", s->hnsw_efc);
    if (rc == 0 && s->model[0])
        rc = meta_put_raw(txn, st->meta, "emb_model", s->model, strlen(s->model));
    if (rc == 0 && s->model[0])
        rc = meta_put_raw(txn, st->meta, "emb_model_hash", s->model_hash, 16);
    if (rc == 0)
        rc = meta_put_u32(txn, st->meta, "next_id", 0);
    if (rc == 0)
        rc = meta_put_u64(txn, st->meta, "live", 0);
    if (rc == 0)
        rc = meta_put_u64(txn, st->meta, "deleted", 0);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    txn = NULL;
    if (rc != 0) {
        set_err(err, errlen, "%s: %s", dir, mdb_strerror(rc));
        rc = map_rc(rc);
        goto done;
    }
    st->schema = *s;
    st->format = PV_FORMAT_VERSION;
    st->has_ivf = 1;
    *out = st;
    st = NULL;
done:
    store_close(st);
    return rc;
}

int store_open(const char *dir, int rdonly, store **out, char *err,
               size_t errlen)
{
    store *st = NULL;
    MDB_txn *txn = NULL;
    int rc;
    struct stat sb;
    char magic[8], msg[256] = "";
    uint32_t format = 0;

    if (stat(dir, &sb) != 0) {
        set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return errno == ENOENT ? PV_ENOTDB : PV_EIO;
    }
    if (!S_ISDIR(sb.st_mode) || !has_data_file(dir)) {
        set_err(err, errlen, "%s: %s", dir,
                "not a pixvec database (no data.mdb in a directory)");
        return PV_ENOTDB;
    }
    st = store_alloc();
    if (!st)
        return PV_ENOMEM;
    if ((rc = env_open(st, dir, rdonly, err, errlen)) != 0) {
        if (rc == PV_ENOTDB)
            set_err(err, errlen, "%s: %s", dir,
                    "not a pixvec database (data.mdb is not an LMDB file)");
        goto done;
    }
    if ((rc = map_rc(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))) != 0)
        goto done;
    if (mdb_dbi_open(txn, "meta", 0, &st->meta) != 0 ||
        meta_get(txn, st->meta, "magic", magic, 8, 0, msg, sizeof msg) != 0 ||
        memcmp(magic, STORE_MAGIC, 8) != 0 ||
        meta_get_u32(txn, st->meta, "format", &format, msg, sizeof msg) != 0) {
        set_err(err, errlen, "%s: %s", dir,
                "not a pixvec database (no pixvec magic in meta)");
        rc = PV_ENOTDB;
        goto done;
    }
    if (format > PV_FORMAT_VERSION) {
        snprintf(msg, sizeof msg,
                 "written by a newer pixvec (format %u; this one reads up to %u)",
                 format, (unsigned)PV_FORMAT_VERSION);
        set_err(err, errlen, "%s: %s", dir, msg);
        rc = PV_ENEWER;
        goto done;
    }
    st->format = format;
    rc = read_schema(txn, st->meta, &st->schema, msg, sizeof msg);
    if (rc == 0 && (rc = open_dbis(st, txn, 0)) != 0) {
        snprintf(msg, sizeof msg, "a table is missing: %s", mdb_strerror(rc));
        rc = rc == MDB_NOTFOUND ? PV_ECORRUPT : map_rc(rc);
    }
    if (rc == 0 && st->schema.codes &&
        (rc = mdb_dbi_open(txn, "codes", MDB_INTEGERKEY, &st->codes)) != 0) {
        snprintf(msg, sizeof msg, "the codes table of meta vec_codes %u is missing: %s",
                 st->schema.codes, mdb_strerror(rc));
        rc = rc == MDB_NOTFOUND ? PV_ECORRUPT : map_rc(rc);
    }
    if (rc != 0) {
        set_err(err, errlen, "%s: damaged meta record: %s", dir, msg);
        goto done;
    }
    rc = open_ivf_dbis(st, txn, 0);
    st->has_ivf = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = map_rc(rc);
        goto done;
    }
    rc = map_rc(mdb_txn_commit(txn)); /* makes the dbi handles shared */
    txn = NULL;
    if (rc != 0)
        goto done;
    if (!st->has_ivf && !rdonly) {
        if ((rc = map_rc(mdb_txn_begin(st->env, NULL, 0, &txn))) != 0)
            goto done;
        if ((rc = map_rc(open_ivf_dbis(st, txn, MDB_CREATE))) == 0)
            rc = map_rc(mdb_txn_commit(txn));
        else
            mdb_txn_abort(txn);
        txn = NULL;
        if (rc != 0)
            goto done;
        st->has_ivf = 1;
    }
    *out = st;
    st = NULL;
done:
    if (txn)
        mdb_txn_abort(txn);
    store_close(st);
    return rc;
}

void store_close(store *st)
{
    if (!st)
        return;
    if (st->env)
        mdb_env_close(st->env);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

uint64_t store_snapshot(store_txn *t)
{
    return t->key;
}

uint32_t store_format(const store *st)
{
    return st->format;
}

const store_schema *store_get_schema(const store *st) { return &st->schema; }
int store_is_rdonly(const store *st) { return st->rdonly; }
int store_is_unlocked(const store *st) { return st->unlocked; }

int store_sizes(store *st, uint64_t *disk, uint64_t *map)
{
    MDB_envinfo info;
    char p[4200];
    struct stat sb;
    int rc = mdb_env_info(st->env, &info);
    if (rc != 0)
        return map_rc(rc);
    snprintf(p, sizeof p, "%s/data.mdb", st->dir);
    *disk = stat(p, &sb) == 0 ? (uint64_t)sb.st_blocks * 512u : 0;
    *map = info.me_mapsize;
    return PV_OK;
}

int store_grow(store *st)
{
    MDB_envinfo info;
    size_t lim = map_limit(), want;
    int rc;
    pthread_mutex_lock(&st->mu);
    if (st->ntxn != 0) { /* LMDB's rule: remapping under a reader unmaps its data */
        pthread_mutex_unlock(&st->mu);
        return PV_EINVAL;
    }
    rc = mdb_env_info(st->env, &info);
    want = info.me_mapsize * 2;
    if (rc == 0 && lim && want > lim) {
        if (info.me_mapsize >= lim) {
            pthread_mutex_unlock(&st->mu);
            return STORE_FULL; /* at the cap: the write fails, nothing changed */
        }
        want = lim;
    }
    if (rc == 0)
        rc = mdb_env_set_mapsize(st->env, want);
    st->mapgen++;
    pthread_mutex_unlock(&st->mu);
    return map_rc(rc);
}

/* ---- transactions ----------------------------------------------------------- */

/* Count a transaction in (about to begin). */
static void txn_come(store *st)
{
    pthread_mutex_lock(&st->mu);
    st->ntxn++;
    pthread_mutex_unlock(&st->mu);
}

/* Count a transaction out (it ended, or never began). */
static void txn_gone(store *st)
{
    pthread_mutex_lock(&st->mu);
    st->ntxn--;
    pthread_mutex_unlock(&st->mu);
}

/* Another process grew the map beyond ours (a begin said MDB_MAP_RESIZED).
 * Adopting its size remaps the file, which LMDB allows only while no
 * transaction of this process is open: their pointers would be left
 * dangling. So only a lone transaction (the caller's, counted in ntxn)
 * adopts it; beside others (the dups scan's threads), MDB_MAP_RESIZED
 * stands and the caller retries later. */
static int adopt_grown_map(store *st)
{
    int rc = MDB_MAP_RESIZED;
    pthread_mutex_lock(&st->mu);
    if (st->ntxn == 1) {
        rc = mdb_env_set_mapsize(st->env, 0);
        st->mapgen++;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_txn_begin(store *st, int write, store_txn **out)
{
    store_txn *t;
    int rc;
    if (write && st->rdonly)
        return PV_ERDONLY;
    t = calloc(1, sizeof *t);
    if (!t)
        return PV_ENOMEM;
    t->st = st;
    t->write = write;
    /* Counted before it begins, so that no other thread remaps the map
     * (below) while this one is inside mdb_txn_begin. */
    txn_come(st);
    rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc == MDB_MAP_RESIZED && (rc = adopt_grown_map(st)) == 0)
        rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc != 0) {
        txn_gone(st);
        free(t);
        return map_rc(rc);
    }
    if (!write) {
        /* mdb_txn_id() of a read transaction is the snapshot it claimed,
         * but LMDB 0.9 takes the roots from meta page (id & 1) a moment
         * later, and a writer that committed twice in between has put a
         * newer snapshot there: the data read is then newer than the id
         * says (our tests saw a snapshot "1" with 42 items). The id names
         * the data only if no commit had completed by the time the roots
         * were taken: if the newest meta page still holds our id after
         * the begin, none had. Otherwise the key is 0: nothing is shared
         * with other transactions. */
        MDB_envinfo info;
        uint64_t id = (uint64_t)mdb_txn_id(t->txn);
        if (mdb_env_info(st->env, &info) == 0 && (uint64_t)info.me_last_txnid == id) {
            pthread_mutex_lock(&st->mu);
            t->key = ((st->mapgen + 1) << 48) ^ id;
            pthread_mutex_unlock(&st->mu);
        }
    }
    *out = t;
    return PV_OK;
}

static void txn_free(store_txn *t)
{
    txn_gone(t->st);
    free(t->chunk_ptrs);
    free(t->chunk_counts);
    free(t);
}

/* Why a commit failed with an operating system error, in words. LMDB
 * reports a short write as EIO, so a full disk or a file size limit is
 * recognised from the file system and the limit themselves. */
static void explain_commit_error(store *st, int err)
{
    char p[4200];
    struct stat sb;
    struct statvfs vs;
    struct rlimit rl;
    snprintf(p, sizeof p, "%s/data.mdb", st->dir);
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        stat(p, &sb) == 0 && (uint64_t)sb.st_size + (1u << 20) > (uint64_t)rl.rlim_cur)
        snprintf(st->commit_err, sizeof st->commit_err,
                 "%s: data.mdb reached this process's file size limit (%llu bytes, ulimit -f)",
                 strerror(err), (unsigned long long)rl.rlim_cur);
    else if (statvfs(st->dir, &vs) == 0 &&
             (uint64_t)vs.f_bavail * vs.f_frsize < (16u << 20))
        snprintf(st->commit_err, sizeof st->commit_err, "%s: the disk is full (%llu KiB free)",
                 strerror(err), (unsigned long long)vs.f_bavail * vs.f_frsize / 1024);
    else
        snprintf(st->commit_err, sizeof st->commit_err, "%s", strerror(err));
}

int store_copy_compact(store *st, const char *dest, char *err, size_t errlen)
{
    char tmp[4200], file[4300];
    struct stat sb;
    MDB_envinfo before, after;
    int rc, e = 0;
    size_t n = strlen(dest);

    while (n > 1 && dest[n - 1] == '/')
        n--;
    if (n == 0 || n >= 4096) {
        set_err(err, errlen, "%s: %s", dest, "not a usable folder name");
        return PV_EINVAL;
    }
    if (lstat(dest, &sb) == 0) {
        set_err(err, errlen, "%s: %s", dest, "already exists: the copy goes to a new folder");
        return PV_EEXIST;
    }
    if (errno != ENOENT) {
        set_err(err, errlen, "%s: %s", dest, strerror(errno));
        return PV_EIO;
    }
    snprintf(tmp, sizeof tmp, "%.*s.tmp-XXXXXX", (int)n, dest);
    if (!mkdtemp(tmp)) {
        set_err(err, errlen, "%s: %s", dest, strerror(errno));
        return PV_EIO;
    }
    snprintf(file, sizeof file, "%s/data.mdb", tmp);
    /* The copy reads in a transaction of its own, counted like any other
     * so that no other thread remaps the map under it. */
    txn_come(st);
    mdb_env_info(st->env, &before);
    rc = mdb_env_copy2(st->env, tmp, MDB_CP_COMPACT);
    if (rc == MDB_MAP_RESIZED && (rc = adopt_grown_map(st)) == 0) {
        unlink(file); /* the failed attempt's empty file */
        rc = mdb_env_copy2(st->env, tmp, MDB_CP_COMPACT);
    }
    mdb_env_info(st->env, &after);
    txn_gone(st);
    if (rc != 0) {
        e = rc;
    } else if (st->unlocked && after.me_last_txnid >= before.me_last_txnid + 2) {
        /* a reader without the lock table: a writer may have reused the
         * pages the copy read (see env_open) */
        set_err(err, errlen, "%s: %s", dest,
                "the database changed while it was copied (this user cannot "
                "register as a reader); run the command again");
        rc = PV_ESTORE;
    } else if ((e = pv_fsync_path(file)) == 0 && rename(tmp, dest) != 0) {
        e = errno;
    }
    if (rc == 0 && e == 0) {
        pv_fsync_parent(tmp); /* the rename is durable once the folder is */
        return PV_OK;
    }
    unlink(file);
    rmdir(tmp);
    if (rc == PV_ESTORE)
        return rc;
    set_err(err, errlen, "%s: %s", dest, mdb_strerror(e)); /* errno values too */
    return PV_EIO;
}

int store_txn_commit(store_txn *t)
{
    int rc = mdb_txn_commit(t->txn);
    /* An operating system error is kept for the message; LMDB's own codes
     * are negative. */
    t->st->commit_err[0] = '\0';
    if (rc > 0)
        explain_commit_error(t->st, rc);
    txn_free(t);
    return rc == EFBIG ? PV_EIO : map_rc(rc);
}

const char *store_commit_error(const store *st)
{
    return st->commit_err;
}

int store_txn_read_check(const store_txn *t)
{
    MDB_envinfo info;
    uint64_t id;
    if (!t || t->write || !t->st->unlocked)
        return PV_OK;
    /* mdb_env_info reads the newest meta page of the map, which a writer
     * elsewhere updates; mdb_txn_id is the snapshot claimed at begin (the
     * data read may be newer, see store_txn_begin, which makes this test
     * only stricter). */
    id = (uint64_t)mdb_txn_id(t->txn);
    if (mdb_env_info(t->st->env, &info) != 0 || (uint64_t)info.me_last_txnid >= id + 2)
        return PV_ESTORE;
    return PV_OK;
}

void store_txn_abort(store_txn *t)
{
    if (!t)
        return;
    mdb_txn_abort(t->txn);
    txn_free(t);
}

void store_txn_set_cache(store_txn *t, store_vec_cache *c)
{
    if (!t->write)
        t->cache = c;
}

void store_vec_cache_free(store_vec_cache *c)
{
    if (!c)
        return;
    free(c->ptrs);
    free(c->counts);
    memset(c, 0, sizeof *c);
}

/* ---- counters --------------------------------------------------------------- */

/* The counters, checked against each other and against the item records
 * (ids are dense: every id below next_id has one), read once per
 * transaction: callers size arrays by them. */
int store_counts_get(store_txn *t, store_counts *c)
{
    static const char *const keys[] = {"next_id", "live", "deleted"};
    store_counts k;
    MDB_stat ms;
    char msg[sizeof t->err] = "";
    int rc, i = 0;
    if (t->counts_valid) {
        *c = t->counts;
        return PV_OK;
    }
    rc = meta_get_u32(t->txn, t->st->meta, keys[i], &k.next_id, msg, sizeof msg);
    if (rc == 0 && ++i)
        rc = meta_get_u64(t->txn, t->st->meta, keys[i], &k.live, msg, sizeof msg);
    if (rc == 0 && ++i)
        rc = meta_get_u64(t->txn, t->st->meta, keys[i], &k.deleted, msg, sizeof msg);
    if (rc == PV_ENOTFOUND)
        return store_corrupt(t, "meta %s: missing", keys[i]);
    if (rc == PV_ECORRUPT)
        return store_corrupt(t, "%s", msg);
    if (rc != 0)
        return rc;
    if (k.live > k.next_id || k.deleted != k.next_id - k.live)
        return store_corrupt(t, "meta counters: %llu live and %llu removed items, but next id %u",
                       (unsigned long long)k.live, (unsigned long long)k.deleted,
                       k.next_id);
    if ((rc = mdb_stat(t->txn, t->st->items, &ms)) != 0)
        return map_rc(rc);
    if (ms.ms_entries != k.next_id)
        return store_corrupt(t, "meta next_id: %u, but %llu item records", k.next_id,
                       (unsigned long long)ms.ms_entries);
    t->counts = k;
    t->counts_valid = 1;
    *c = k;
    return PV_OK;
}

int store_counts_put(store_txn *t, const store_counts *c)
{
    int rc = meta_put_u32(t->txn, t->st->meta, "next_id", c->next_id);
    if (rc == 0)
        rc = meta_put_u64(t->txn, t->st->meta, "live", c->live);
    if (rc == 0)
        rc = meta_put_u64(t->txn, t->st->meta, "deleted", c->deleted);
    t->counts_valid = rc == 0;
    t->counts = *c;
    t->chunks_valid = 0;
    return map_rc(rc);
}

static MDB_dbi table_dbi(const store *st, store_table which)
{
    switch (which) {
    case STORE_ITEMS: return st->items;
    case STORE_PATHS: return st->paths;
    case STORE_HASHES: return st->hashes;
    case STORE_VECTORS: return st->vectors;
    case STORE_HNSW: return st->hnsw;
    case STORE_HNSW_UPPER: return st->hnsw_upper;
    case STORE_IVF_CENTROIDS: return st->ivf_centroids;
    case STORE_IVF_LISTS: return st->ivf_lists;
    case STORE_CODES: return st->codes;
    default: return 0;
    }
}

/* A table this open of the database does not have (see open_ivf_dbis). */
static int absent(const store *st, store_table which)
{
    return ((which == STORE_IVF_CENTROIDS || which == STORE_IVF_LISTS) && !st->has_ivf) ||
           (which == STORE_CODES && !st->schema.codes);
}

int store_entries(store_txn *t, store_table which, uint64_t *n)
{
    MDB_stat ms;
    if (absent(t->st, which)) {
        *n = 0;
        return PV_OK;
    }
    int rc = mdb_stat(t->txn, table_dbi(t->st, which), &ms);
    if (rc != 0)
        return map_rc(rc);
    *n = ms.ms_entries;
    return PV_OK;
}

int store_blob_get(store_txn *t, store_table table, uint32_t key,
                   const void **p, size_t *n)
{
    MDB_val k = {sizeof key, &key}, d;
    int rc;
    if (absent(t->st, table))
        return PV_ENOTFOUND;
    rc = mdb_get(t->txn, table_dbi(t->st, table), &k, &d);
    if (rc != 0)
        return map_rc(rc);
    *p = d.mv_data;
    *n = d.mv_size;
    return PV_OK;
}

/* p must not point into the map (the put may reuse those pages). */
int store_blob_put(store_txn *t, store_table table, uint32_t key,
                   const void *p, size_t n)
{
    MDB_val k = {sizeof key, &key}, d = {n, NULL};
    int rc;
    if (absent(t->st, table))
        return PV_ERDONLY;
    rc = mdb_put(t->txn, table_dbi(t->st, table), &k, &d, MDB_RESERVE);
    t->chunks_valid = 0;
    if (rc != 0)
        return map_rc(rc);
    memcpy(d.mv_data, p, n);
    return PV_OK;
}

int store_blob_each(store_txn *t, store_table table,
                    int (*fn)(void *ctx, uint32_t key, const void *p, size_t n),
                    void *ctx)
{
    MDB_cursor *c = NULL;
    MDB_val k, d;
    int rc;
    if (absent(t->st, table))
        return PV_OK;
    if ((rc = mdb_cursor_open(t->txn, table_dbi(t->st, table), &c)) != 0)
        return map_rc(rc);
    for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        uint32_t key;
        if (k.mv_size != sizeof key) {
            mdb_cursor_close(c);
            return PV_ECORRUPT;
        }
        memcpy(&key, k.mv_data, sizeof key);
        if ((rc = fn(ctx, key, d.mv_data, d.mv_size)) != 0) {
            mdb_cursor_close(c);
            return rc;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? PV_OK : map_rc(rc);
}

int store_blob_drop(store_txn *t, store_table table)
{
    if (absent(t->st, table))
        return PV_OK;
    t->chunks_valid = 0;
    return map_rc(mdb_drop(t->txn, table_dbi(t->st, table), 0));
}

int store_meta_get_u64(store_txn *t, const char *key, uint64_t *v)
{
    char msg[sizeof t->err];
    int rc = meta_get_u64(t->txn, t->st->meta, key, v, msg, sizeof msg);
    return rc == PV_ECORRUPT ? store_corrupt(t, "%s", msg) : rc;
}

int store_meta_get_blob(store_txn *t, const char *key, const void **p,
                        size_t *n)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(t->txn, t->st->meta, &k, &d);
    if (rc != 0)
        return map_rc(rc);
    *p = d.mv_data;
    *n = d.mv_size;
    return PV_OK;
}

int store_meta_put_blob(store_txn *t, const char *key, const void *p, size_t n)
{
    t->chunks_valid = 0;
    return map_rc(meta_put_raw(t->txn, t->st->meta, key, p, n));
}

int store_meta_del(store_txn *t, const char *key)
{
    MDB_val k = {strlen(key), (void *)key};
    int rc = mdb_del(t->txn, t->st->meta, &k, NULL);
    t->chunks_valid = 0;
    return rc == MDB_NOTFOUND ? PV_OK : map_rc(rc);
}

int store_list_add(store_txn *t, uint32_t list, uint32_t id)
{
    MDB_val k = {sizeof list, &list}, d = {sizeof id, &id};
    int rc;
    if (absent(t->st, STORE_IVF_LISTS))
        return PV_ERDONLY;
    rc = mdb_put(t->txn, t->st->ivf_lists, &k, &d, MDB_NODUPDATA);
    t->chunks_valid = 0;
    return rc == MDB_KEYEXIST ? PV_OK : map_rc(rc);
}

static int id_check(store_txn *t, uint32_t id, const char *what);

/* Every id of a list names an item (see id_check). */
static int list_ids_check(store_txn *t, uint32_t list, const void *ids, size_t n,
                          uint32_t next_id)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        int rc;
        memcpy(&id, (const uint8_t *)ids + i * sizeof id, sizeof id);
        if (t->write && (rc = id_check(t, id, "an ivf list")) != 0)
            return rc;
        if (!t->write && id >= next_id)
            return store_corrupt(t, "ivf list %u: id %u, but next id is %u", list, id,
                                 next_id);
    }
    return PV_OK;
}

int store_list_each(store_txn *t, uint32_t list,
                    int (*fn)(void *ctx, const void *ids, size_t n),
                    void *ctx)
{
    MDB_cursor *c = NULL;
    MDB_val k = {sizeof list, &list}, d;
    store_counts cnt;
    int rc;
    if (absent(t->st, STORE_IVF_LISTS))
        return PV_OK;
    if ((rc = store_counts_get(t, &cnt)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(t->txn, t->st->ivf_lists, &c)) != 0)
        return map_rc(rc);
    int frc = PV_OK;
    rc = mdb_cursor_get(c, &k, &d, MDB_SET);
    if (rc == 0)
        rc = mdb_cursor_get(c, &k, &d, MDB_GET_MULTIPLE);
    while (rc == 0) {
        if (d.mv_size % sizeof(uint32_t) != 0)
            frc = store_corrupt(t, "ivf list %u: a run of %zu bytes, not whole u32 ids", list,
                          d.mv_size);
        else
            frc = list_ids_check(t, list, d.mv_data, d.mv_size / sizeof(uint32_t),
                                 cnt.next_id);
        if (frc == PV_OK)
            frc = fn(ctx, d.mv_data, d.mv_size / sizeof(uint32_t));
        if (frc != PV_OK)
            break;
        rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_MULTIPLE);
    }
    mdb_cursor_close(c);
    if (frc != PV_OK)
        return frc;
    return rc == MDB_NOTFOUND ? PV_OK : map_rc(rc);
}

int store_meta_put_u64(store_txn *t, const char *key, uint64_t v)
{
    return map_rc(meta_put_u64(t->txn, t->st->meta, key, v));
}

/* ---- items ------------------------------------------------------------------ */

#define ITEM_HDR 46

/* An id a record names (a path, hash or list entry) must have an item
 * record: ids are dense below next_id. A write transaction may be midway
 * through a batch (items and their keys written, the counters not yet), so
 * there the record itself is looked up. */
static int id_check(store_txn *t, uint32_t id, const char *what)
{
    store_counts c;
    int rc;
    if (t->write) {
        MDB_val k = {sizeof id, &id}, d;
        rc = mdb_get(t->txn, t->st->items, &k, &d);
        if (rc == MDB_NOTFOUND)
            return store_corrupt(t, "%s names item %u, which has no record", what, id);
        return map_rc(rc);
    }
    if ((rc = store_counts_get(t, &c)) != 0)
        return rc;
    if (id >= c.next_id)
        return store_corrupt(t, "%s names item %u, but next id is %u", what, id, c.next_id);
    return PV_OK;
}

int store_item_get(store_txn *t, uint32_t id, store_item *it)
{
    MDB_val k = {sizeof id, &id}, d;
    const uint8_t *p;
    store_counts c;
    size_t len;
    uint32_t flags;
    int rc = mdb_get(t->txn, t->st->items, &k, &d);
    if (rc == MDB_NOTFOUND) {
        /* Absent only beyond the ids handed out: below, a hole. */
        if ((rc = store_counts_get(t, &c)) != 0)
            return rc;
        if (id < c.next_id)
            return store_corrupt(t, "item %u: record missing (next id %u)", id, c.next_id);
        return PV_ENOTFOUND;
    }
    if (rc != 0)
        return map_rc(rc);
    p = d.mv_data;
    if (d.mv_size < ITEM_HDR)
        return store_corrupt(t, "item %u: record of %zu bytes, shorter than its %d-byte header",
                       id, d.mv_size, ITEM_HDR);
    len = get_u16(p + 44);
    if (len > PV_MAX_PATH_BYTES)
        return store_corrupt(t, "item %u: path length %zu exceeds %d", id, len,
                       PV_MAX_PATH_BYTES);
    if (d.mv_size != ITEM_HDR + len)
        return store_corrupt(t, "item %u: record of %zu bytes, but its path length %zu makes %zu",
                       id, d.mv_size, len, ITEM_HDR + len);
    if (len == 0 || p[ITEM_HDR] != '/' || memchr(p + ITEM_HDR, 0, len))
        return store_corrupt(t, "item %u: path %s", id,
                       len == 0 ? "empty" : p[ITEM_HDR] != '/' ? "not absolute"
                                                             : "holds a NUL byte");
    flags = get_u32(p + 40);
    if (flags & ~(STORE_ITEM_DELETED | (t->st->format >= 3 ? STORE_ITEM_KIND_MASK : 0)))
        return store_corrupt(t, "item %u: unknown flags 0x%x", id, flags);
    it->size = get_u64(p);
    it->mtime_ns = (int64_t)get_u64(p + 8);
    memcpy(it->hash, p + 16, 16);
    it->width = get_u32(p + 32);
    it->height = get_u32(p + 36);
    it->flags = flags;
    it->path_len = (uint16_t)len;
    it->path = (const char *)p + ITEM_HDR;
    return PV_OK;
}

int store_item_put(store_txn *t, uint32_t id, const store_item *it)
{
    MDB_val k = {sizeof id, &id}, d;
    uint8_t *p;
    int rc;
    if (it->path_len > PV_MAX_PATH_BYTES)
        return PV_EINVAL;
    d.mv_size = ITEM_HDR + it->path_len;
    rc = mdb_put(t->txn, t->st->items, &k, &d, MDB_RESERVE);
    if (rc != 0)
        return map_rc(rc);
    p = d.mv_data;
    put_u64(p, it->size);
    put_u64(p + 8, (uint64_t)it->mtime_ns);
    memcpy(p + 16, it->hash, 16);
    put_u32(p + 32, it->width);
    put_u32(p + 36, it->height);
    put_u32(p + 40, t->st->format >= 3 ? it->flags : it->flags & ~STORE_ITEM_KIND_MASK);
    put_u16(p + 44, it->path_len);
    memcpy(p + ITEM_HDR, it->path, it->path_len);
    t->chunks_valid = 0; /* a write may move pages */
    return PV_OK;
}

/* ---- paths ------------------------------------------------------------------ */

static int path_key(const char *path, MDB_val *k)
{
    size_t n = strlen(path);
    if (n == 0 || n > PV_MAX_PATH_BYTES)
        return PV_EINVAL;
    k->mv_size = n;
    k->mv_data = (void *)path;
    return PV_OK;
}

int store_path_get(store_txn *t, const char *path, uint32_t *id)
{
    MDB_val k, d;
    int rc = path_key(path, &k);
    if (rc != 0)
        return rc == PV_EINVAL ? PV_ENOTFOUND : rc;
    rc = mdb_get(t->txn, t->st->paths, &k, &d);
    if (rc != 0)
        return map_rc(rc);
    if (d.mv_size != 4)
        return store_corrupt(t, "path entry %.200s: value of %zu bytes, expected 4", path,
                       d.mv_size);
    if ((rc = id_check(t, get_u32(d.mv_data), "a path entry")) != 0)
        return rc;
    *id = get_u32(d.mv_data);
    return PV_OK;
}

int store_paths_with_prefix(store_txn *t, const char *prefix,
                            int (*fn)(void *ctx, const char *path, size_t len, uint32_t id),
                            void *ctx)
{
    MDB_cursor *c = NULL;
    MDB_val k, d;
    size_t plen = strlen(prefix);
    int rc, op = MDB_SET_RANGE;
    if (plen == 0 || plen > PV_MAX_PATH_BYTES)
        return PV_EINVAL;
    if ((rc = map_rc(mdb_cursor_open(t->txn, t->st->paths, &c))) != 0)
        return rc;
    k.mv_size = plen;
    k.mv_data = (void *)prefix;
    for (;;) {
        rc = mdb_cursor_get(c, &k, &d, (MDB_cursor_op)op);
        op = MDB_NEXT;
        if (rc == MDB_NOTFOUND) {
            rc = PV_OK;
            break;
        }
        if ((rc = map_rc(rc)) != 0)
            break;
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break; /* past the prefix: keys are in byte order */
        if (k.mv_size > PV_MAX_PATH_BYTES || d.mv_size != 4) {
            rc = PV_ECORRUPT;
            break;
        }
        if ((rc = fn(ctx, k.mv_data, k.mv_size, get_u32(d.mv_data))) != 0)
            break;
    }
    mdb_cursor_close(c);
    return rc;
}

int store_path_put(store_txn *t, const char *path, uint32_t id)
{
    MDB_val k, d;
    uint8_t b[4];
    int rc = path_key(path, &k);
    if (rc != 0)
        return rc;
    put_u32(b, id);
    d.mv_size = 4;
    d.mv_data = b;
    t->chunks_valid = 0;
    return map_rc(mdb_put(t->txn, t->st->paths, &k, &d, 0));
}

int store_path_del(store_txn *t, const char *path)
{
    MDB_val k;
    int rc = path_key(path, &k);
    if (rc != 0)
        return rc;
    t->chunks_valid = 0;
    return map_rc(mdb_del(t->txn, t->st->paths, &k, NULL));
}

/* ---- hashes ----------------------------------------------------------------- */

/* One id of a hash entry: 4 bytes naming an item. */
static int hash_id(store_txn *t, const MDB_val *d, uint32_t *id)
{
    if (d->mv_size != sizeof *id)
        return store_corrupt(t, "hash entry: an id of %zu bytes, expected 4", d->mv_size);
    memcpy(id, d->mv_data, sizeof *id);
    return id_check(t, *id, "a hash entry");
}

int store_hash_get(store_txn *t, const uint8_t hash[16], uint32_t *ids,
                   size_t max, size_t *n)
{
    MDB_cursor *c = NULL;
    MDB_val k = {16, (void *)hash}, d;
    size_t cnt = 0;
    int rc = mdb_cursor_open(t->txn, t->st->hashes, &c), hrc = PV_OK;
    if (rc != 0)
        return map_rc(rc);
    rc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY);
    while (rc == 0) {
        uint32_t id = 0;
        if ((hrc = hash_id(t, &d, &id)) != 0)
            break;
        if (cnt < max)
            ids[cnt] = id;
        cnt++;
        rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_DUP);
    }
    mdb_cursor_close(c);
    if (hrc != 0)
        return hrc;
    if (rc != MDB_NOTFOUND)
        return map_rc(rc);
    *n = cnt;
    return PV_OK;
}

int store_hash_add(store_txn *t, const uint8_t hash[16], uint32_t id)
{
    /* MDB_INTEGERDUP: dup values are native-endian u32 (LMDB's rule). */
    MDB_val k = {16, (void *)hash}, d = {4, &id};
    int rc = mdb_put(t->txn, t->st->hashes, &k, &d, MDB_NODUPDATA);
    t->chunks_valid = 0;
    return rc == MDB_KEYEXIST ? PV_OK : map_rc(rc);
}

int store_hash_del(store_txn *t, const uint8_t hash[16], uint32_t id)
{
    MDB_val k = {16, (void *)hash}, d = {4, &id};
    int rc = mdb_del(t->txn, t->st->hashes, &k, &d);
    t->chunks_valid = 0;
    return rc == MDB_NOTFOUND ? PV_OK : map_rc(rc);
}

int store_hash_each_multi(store_txn *t,
                          int (*fn)(void *ctx, const uint32_t *ids, size_t n),
                          void *ctx)
{
    MDB_cursor *c = NULL;
    MDB_val k, d;
    uint32_t *ids = NULL;
    size_t cap = 0;
    int rc = mdb_cursor_open(t->txn, t->st->hashes, &c);
    if (rc != 0)
        return map_rc(rc);
    rc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    while (rc == 0) {
        size_t cnt = 0;
        if ((rc = mdb_cursor_count(c, &cnt)) != 0)
            break;
        if (cnt >= 2) {
            size_t n = 0;
            if (cnt > cap) {
                uint32_t *nid = pv_realloc_array(ids, cnt, sizeof *ids);
                if (!nid) {
                    rc = ENOMEM;
                    break;
                }
                ids = nid;
                cap = cnt;
            }
            while (rc == 0 && n < cnt) {
                int hrc = hash_id(t, &d, &ids[n++]);
                if (hrc != 0) {
                    mdb_cursor_close(c);
                    free(ids);
                    return hrc;
                }
                rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_DUP);
            }
            if (rc != 0 && rc != MDB_NOTFOUND)
                break;
            if ((rc = fn(ctx, ids, n)) != 0) {
                mdb_cursor_close(c);
                free(ids);
                return rc;
            }
        }
        rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_NODUP);
    }
    mdb_cursor_close(c);
    free(ids);
    return rc == MDB_NOTFOUND ? PV_OK : map_rc(rc);
}

/* ---- vectors ---------------------------------------------------------------- */

static size_t vec_bytes(const store *st) { return (size_t)st->schema.dim * sizeof(float); }

int store_vec_dropped(store_txn *t)
{
    uint64_t v = 0;
    return t->st->schema.codes_only && store_meta_get_u64(t, "vec_dropped", &v) == 0 && v == 1;
}

int store_vec_drop(store_txn *t)
{
    int rc;
    if (!t->st->schema.codes_only)
        return PV_EINVAL;
    t->chunks_valid = 0;
    if ((rc = map_rc(mdb_drop(t->txn, t->st->vectors, 0))) != 0)
        return rc;
    return store_meta_put_u64(t, "vec_dropped", 1);
}

int store_vec_append(store_txn *t, uint32_t first, uint32_t n,
                     const float *vecs)
{
    const store *st = t->st;
    const uint32_t C = st->schema.chunk;
    const size_t vb = vec_bytes(st);
    uint32_t done = 0;

    if (store_vec_dropped(t))
        return PV_EINVAL;
    t->chunks_valid = 0;
    while (done < n) {
        uint32_t id = first + done;
        uint32_t chunk = id / C, off = id % C;
        uint32_t take = C - off < n - done ? C - off : n - done;
        MDB_val k = {sizeof chunk, &chunk}, old = {0, NULL}, d;
        void *prefix = NULL;
        int rc;

        if (off > 0) {
            rc = mdb_get(t->txn, st->vectors, &k, &old);
            if (rc != 0)
                return rc == MDB_NOTFOUND ? PV_ECORRUPT : map_rc(rc);
            if (old.mv_size != off * vb)
                return PV_ECORRUPT; /* ids must be appended densely */
            /* The old value's pages may be reused by the put below. */
            prefix = malloc(old.mv_size);
            if (!prefix)
                return PV_ENOMEM;
            memcpy(prefix, old.mv_data, old.mv_size);
        }
        d.mv_size = (size_t)(off + take) * vb;
        rc = mdb_put(t->txn, st->vectors, &k, &d, MDB_RESERVE);
        if (rc != 0) {
            free(prefix);
            return map_rc(rc);
        }
        if (off > 0)
            memcpy(d.mv_data, prefix, (size_t)off * vb);
        memcpy((char *)d.mv_data + (size_t)off * vb,
               (const char *)vecs + (size_t)done * vb, (size_t)take * vb);
        free(prefix);
        done += take;
    }
    return PV_OK;
}

/* The number of vectors in chunk c's value of n bytes, checked: whole
 * vectors, at least one, at most a chunk's worth. */
static int chunk_count(store_txn *t, uint32_t c, size_t n, uint32_t *count)
{
    const size_t vb = vec_bytes(t->st);
    if (n == 0 || n % vb != 0 || n / vb > t->st->schema.chunk)
        return store_corrupt(t, "vectors chunk %u: %zu bytes, not 1..%u vectors of %zu bytes", c,
                       n, t->st->schema.chunk, vb);
    *count = (uint32_t)(n / vb);
    return PV_OK;
}

int store_vec_get(store_txn *t, uint32_t id, float *out)
{
    const uint32_t C = t->st->schema.chunk;
    const size_t vb = vec_bytes(t->st);
    uint32_t chunk = id / C, off = id % C, count = 0;
    MDB_val k = {sizeof chunk, &chunk}, d;
    int rc = mdb_get(t->txn, t->st->vectors, &k, &d);
    if (rc != 0)
        return map_rc(rc);
    if ((rc = chunk_count(t, chunk, d.mv_size, &count)) != 0)
        return rc;
    if (off >= count)
        return PV_ENOTFOUND;
    memcpy(out, (const char *)d.mv_data + (size_t)off * vb, vb);
    return PV_OK;
}

/* Walk the vectors table into the transaction's arrays, checking the
 * layout of FORMAT.md: chunks 0, 1, ... with no gap, every one full but the
 * last, and as many vectors as ids handed out. */
static int load_chunks(store_txn *t)
{
    const uint32_t C = t->st->schema.chunk;
    MDB_cursor *c = NULL;
    MDB_val k, d;
    store_counts cnt;
    uint64_t total = 0;
    uint32_t n = 0;
    int rc, crc = PV_OK;
    t->nchunks = 0;
    if ((rc = store_counts_get(t, &cnt)) != 0)
        return rc;
    if (store_vec_dropped(t)) {
        MDB_stat ms;
        if ((rc = mdb_stat(t->txn, t->st->vectors, &ms)) != 0)
            return map_rc(rc);
        return ms.ms_entries == 0
                   ? PV_OK
                   : store_corrupt(t, "vectors: %llu chunks, but meta vec_dropped says none",
                                   (unsigned long long)ms.ms_entries);
    }
    if ((rc = mdb_cursor_open(t->txn, t->st->vectors, &c)) != 0)
        return map_rc(rc);
    rc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    while (rc == 0) {
        uint32_t key, count = 0;
        if (k.mv_size != sizeof key) {
            crc = store_corrupt(t, "vectors: a key of %zu bytes", k.mv_size);
            break;
        }
        memcpy(&key, k.mv_data, 4);
        if (key != n) {
            crc = store_corrupt(t, "vectors: chunk %u missing (the next is %u)", n, key);
            break;
        }
        if ((crc = chunk_count(t, key, d.mv_size, &count)) != 0)
            break;
        if (n > 0 && t->chunk_counts[n - 1] != C) {
            crc = store_corrupt(t, "vectors chunk %u: %u of %u vectors, but not the last chunk",
                          n - 1, t->chunk_counts[n - 1], C);
            break;
        }
        if (n == t->chunk_cap) {
            uint32_t nc = t->chunk_cap ? t->chunk_cap * 2 : 64;
            const float **np = pv_realloc_array(t->chunk_ptrs, nc, sizeof *np);
            uint32_t *ncnt;
            if (np)
                t->chunk_ptrs = np;
            ncnt = np ? pv_realloc_array(t->chunk_counts, nc, sizeof *ncnt) : NULL;
            if (!np || !ncnt) {
                rc = ENOMEM;
                break;
            }
            t->chunk_counts = ncnt;
            t->chunk_cap = nc;
        }
        t->chunk_ptrs[n] = d.mv_data;
        t->chunk_counts[n] = count;
        total += count;
        n++;
        rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (crc != PV_OK)
        return crc;
    if (rc != MDB_NOTFOUND)
        return map_rc(rc);
    if (total != cnt.next_id)
        return store_corrupt(t, "vectors: %llu stored, but next id is %u",
                       (unsigned long long)total, cnt.next_id);
    t->nchunks = n;
    return PV_OK;
}

/* Copy n chunk pointers and counts into *p, *cnt (capacity *cap). */
static int copy_chunks(const float ***p, uint32_t **cnt, uint32_t *cap,
                       const float *const *sp, const uint32_t *scnt, uint32_t n)
{
    if (n > *cap) {
        const float **np = pv_realloc_array(*p, n, sizeof *np);
        uint32_t *ncnt;
        if (np)
            *p = np;
        ncnt = np ? pv_realloc_array(*cnt, n, sizeof *ncnt) : NULL;
        if (!np || !ncnt)
            return PV_ENOMEM;
        *cnt = ncnt;
        *cap = n;
    }
    if (n) {
        memcpy(*p, sp, n * sizeof **p);
        memcpy(*cnt, scnt, n * sizeof **cnt);
    }
    return PV_OK;
}

int store_vec_chunks(store_txn *t, const float *const **ptrs,
                     const uint32_t **counts, uint32_t *nchunks)
{
    store_vec_cache *vc = t->cache;
    int rc;

    if (!t->chunks_valid) {
        if (vc && vc->key != 0 && vc->key == t->key) {
            /* The caller's copy from an earlier read snapshot with the same
             * key: nothing was committed since and the map has not moved,
             * so its pointers are right and the walk is saved. */
            if ((rc = copy_chunks(&t->chunk_ptrs, &t->chunk_counts, &t->chunk_cap,
                                  vc->ptrs, vc->counts, vc->n)) != 0)
                return rc;
            t->nchunks = vc->n;
        } else {
            if ((rc = load_chunks(t)) != 0)
                return rc;
            if (vc) {
                vc->key = 0;
                if (copy_chunks(&vc->ptrs, &vc->counts, &vc->cap,
                                (const float *const *)t->chunk_ptrs, t->chunk_counts,
                                t->nchunks) == 0) {
                    vc->n = t->nchunks;
                    vc->key = t->key;
                }
            }
        }
        t->chunks_valid = 1;
    }
    *ptrs = (const float *const *)t->chunk_ptrs;
    *counts = t->chunk_counts;
    *nchunks = t->nchunks;
    return PV_OK;
}
