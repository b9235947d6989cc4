/*
 * db.c - the database handle: create, open, info, remove, items, and the
 * helpers the other engine files share (one path from a file to a vector,
 * one write-transaction loop that grows the map when it is full).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "db_int.h"
#include "img.h"
#include "pv_util.h"

const char *pv_strerror(int err)
{
    switch (err) {
    case PV_OK: return "ok";
    case PV_EINVAL: return "invalid argument";
    case PV_ENOMEM: return "out of memory";
    case PV_EIO: return "input/output error";
    case PV_ENOTDB: return "not a pixvec database";
    case PV_ENEWER: return "database written by a newer pixvec";
    case PV_EEXIST: return "database already exists";
    case PV_ENOTFOUND: return "not found";
    case PV_EDECODE: return "corrupt or truncated image";
    case PV_EFORMAT:
        return "not an image format pixvec reads";
    case PV_ETOOBIG: return "image too large";
    case PV_EEMBEDDER: return "database uses another embedder";
    case PV_ESTORE: return "storage error";
    case PV_ECORRUPT: return "malformed database record";
    case PV_EEMPTY: return "empty file";
    case PV_ERDONLY: return "database opened read-only";
    case PV_ENUMERIC: return "NaN or infinity in a vector";
    case PV_EINTR: return "interrupted";
    case STORE_FULL: return "database map full";
    default: return "unknown error";
    }
}

int db_fail(pv_db *db, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

/* Why a read on an unlocked store was dropped (db_read_check). */
#define DB_CHANGED_MSG                                                        \
    "the database changed while it was read without LMDB's lock table "      \
    "(you cannot write it); run the command again"

int db_fail_txn(pv_db *db, store_txn *t, int err, const char *fmt, ...)
{
    const char *why = err == PV_ECORRUPT && t ? store_txn_errmsg(t) : "";
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* On an unlocked store, a record that reads as malformed (or a page
     * LMDB finds wrong) is most likely one a writer elsewhere reused
     * meanwhile: say so. */
    if ((err == PV_ECORRUPT || err == PV_ESTORE) && store_txn_read_check(t) != 0)
        return db_fail(db, err, "%s: %s (%s)", what, why[0] ? why : pv_strerror(err),
                       DB_CHANGED_MSG);
    return db_fail(db, err, "%s: %s", what, why[0] ? why : pv_strerror(err));
}

int db_read_begin(pv_db *db, store_txn **t)
{
    int rc = store_txn_begin(db->st, 0, t);
    if (rc == 0)
        store_txn_set_cache(*t, &db->vcache);
    return rc;
}

int db_read_check(pv_db *db, const store_txn *t)
{
    if (store_txn_read_check(t) != 0)
        return db_fail(db, PV_ESTORE, "%s: %s", db->path, DB_CHANGED_MSG);
    return PV_OK;
}

const char *pv_db_errmsg(const pv_db *db) { return db ? db->errmsg : ""; }

int db_abs_path(const char *path, char *out, size_t outlen)
{
    char buf[PATH_MAX], parent[PATH_MAX];
    const char *slash;
    if (!path || !*path)
        return PV_EINVAL;
    if (realpath(path, buf)) {
        if (strlen(buf) >= outlen)
            return PV_EINVAL;
        strcpy(out, buf);
        return PV_OK;
    }
    /* The file may be gone (pv_remove of a deleted file): canonicalise the
     * parent, which usually still exists. */
    slash = strrchr(path, '/');
    if (slash) {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof parent)
            return PV_EINVAL;
        memcpy(parent, path, n);
        parent[n] = 0;
        if (n == 0)
            strcpy(parent, "/");
    } else {
        strcpy(parent, ".");
    }
    if (!realpath(parent, buf)) {
        if (path[0] == '/') {
            snprintf(buf, sizeof buf, "%s", path);
        } else {
            if (!getcwd(parent, sizeof parent))
                return PV_EIO;
            if ((size_t)snprintf(buf, sizeof buf, "%s/%s", parent, path) >= sizeof buf)
                return PV_EINVAL;
        }
        if (strlen(buf) >= outlen)
            return PV_EINVAL;
        strcpy(out, buf);
        return PV_OK;
    }
    if ((size_t)snprintf(out, outlen, "%s/%s", strcmp(buf, "/") ? buf : "",
                         slash ? slash + 1 : path) >= outlen)
        return PV_EINVAL;
    return PV_OK;
}

/* ---- open / create -------------------------------------------------------- */

static int db_attach_embedder(pv_db *db)
{
    const store_schema *s = store_get_schema(db->st);
    char err[256];
    int rc = embed_create(s->embedder, s->emb_size, s->emb_rgb, s->model, s->emb_flags,
                          &db->emb, err, sizeof err);
    if (rc != 0)
        return db_fail(db, PV_EEMBEDDER, "database embedder: %s", err);
    /* The weights must be the ones the vectors were made with. */
    if (s->model[0] && memcmp(db->emb->model_hash, s->model_hash, 16) != 0)
        return db_fail(db, PV_EEMBEDDER,
                       "%s changed since the database was created (its hash differs): "
                       "the stored vectors came from other weights",
                       s->model);
    if (db->emb->dim != s->dim)
        return db_fail(db, PV_ECORRUPT,
                       "database says dimension %u, embedder %s gives %u",
                       s->dim, db->emb->desc, db->emb->dim);
    return PV_OK;
}

/* The one way a handle comes to be: create (schema given) or open the
 * store, then make the embedder its meta names. */
static int db_new(const char *path, const store_schema *create, int flags,
                  pv_db **out, char *err, size_t errlen)
{
    pv_db *db = NULL;
    char dummy[8];
    int rc;

    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    if (!path || !out)
        return PV_EINVAL;
    db = calloc(1, sizeof *db);
    if (!db)
        return PV_ENOMEM;
    db->lock_fd = -1;
    if ((size_t)snprintf(db->path, sizeof db->path, "%s", path) >= sizeof db->path) {
        free(db);
        snprintf(err, errlen, "%s: path too long", path);
        return PV_EINVAL;
    }
    rc = create ? store_create(path, create, &db->st, err, errlen)
                : store_open(path, flags & PV_OPEN_RDONLY, &db->st, err, errlen);
    if (rc == 0 && (rc = db_attach_embedder(db)) != 0)
        snprintf(err, errlen, "%s: %s", path, db->errmsg);
    if (rc != 0) {
        pv_db_close(db);
        return rc;
    }
    *out = db;
    return PV_OK;
}

#define HNSW_DEFAULT_M 16
#define HNSW_DEFAULT_EFC 200

int pv_db_create(const char *path, const pv_embedder_opts *emb,
                 const pv_index_opts *idx, pv_db **out, char *err,
                 size_t errlen)
{
    store_schema s;
    embedder *e = NULL;
    char dummy[8];
    int rc;

    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    memset(&s, 0, sizeof s);
    s.hnsw_m = idx && idx->M > 0 ? (uint32_t)idx->M : HNSW_DEFAULT_M;
    s.hnsw_efc = idx && idx->ef_construction > 0 ? (uint32_t)idx->ef_construction
                                                 : HNSW_DEFAULT_EFC;
    if (idx && (idx->vectors < PV_VECTORS_F32 || idx->vectors > PV_VECTORS_I8)) {
        snprintf(err, errlen, "%s: vectors must be PV_VECTORS_F32, _F16 or _I8, not %d",
                 path ? path : "", idx->vectors);
        return PV_EINVAL;
    }
    s.codes = idx ? (uint32_t)idx->vectors : PV_VECTORS_F32;
    if (idx && idx->compact_only && s.codes == PV_VECTORS_F32) {
        snprintf(err, errlen, "%s: compact_only needs f16 or i8 vectors", path ? path : "");
        return PV_EINVAL;
    }
    s.codes_only = idx && idx->compact_only ? 1 : 0;
    if (s.hnsw_m < 2 || s.hnsw_m > 128 || s.hnsw_efc > 4096) {
        snprintf(err, errlen, "%s: M must be 2..128 and ef_construction 1..4096",
                 path ? path : "");
        return PV_EINVAL;
    }
    snprintf(s.embedder, sizeof s.embedder, "%s",
             emb && emb->name ? emb->name : "pixels");
    if (strcmp(s.embedder, "photo") == 0 && emb && (emb->size > 0 || emb->rgb || emb->model)) {
        snprintf(err, errlen, "%s: the photo embedder takes no --size, --rgb or --model",
                 path ? path : "");
        return PV_EINVAL;
    }
    if ((strcmp(s.embedder, "clip") == 0 || strcmp(s.embedder, "dinov2") == 0 ||
         strcmp(s.embedder, "vitmae") == 0) &&
        emb && (emb->size > 0 || emb->rgb)) {
        snprintf(err, errlen,
                 "%s: the %s embedder takes no --size or --rgb (its checkpoint's config "
                 "sets the input)",
                 path ? path : "", s.embedder);
        return PV_EINVAL;
    }
    rc = embed_create(s.embedder, emb && emb->size > 0 ? (uint32_t)emb->size : 0,
                      emb && emb->rgb ? 1 : 0, emb ? emb->model : NULL,
                      (emb && emb->no_mirror ? EMBED_NO_MIRROR : 0) |
                          (emb && emb->pool_sum ? EMBED_POOL_SUM : 0),
                      &e, err, errlen);
    if (rc != 0)
        return rc;
    s.dim = e->dim;
    snprintf(s.model, sizeof s.model, "%s", e->model);
    memcpy(s.model_hash, e->model_hash, 16);
    /* external: the dimension, which embed_create takes back as its size */
    s.emb_size = embed_is_external(e) ? e->dim : e->in_w;
    s.emb_rgb = e->channels == 3;
    s.emb_flags = e->flags;
    s.chunk = STORE_DEFAULT_CHUNK;
    embed_destroy(e);
    return db_new(path, &s, 0, out, err, errlen);
}

int pv_db_open(const char *path, int flags, pv_db **out, char *err,
               size_t errlen)
{
    return db_new(path, NULL, flags, out, err, errlen);
}

void pv_db_close(pv_db *db)
{
    if (!db)
        return;
    embed_destroy(db->emb);
    hnsw_scratch_free(db->scratch);
    graph_cache_free(&db->gcache);
    store_vec_cache_free(&db->vcache);
    codes_view_free(&db->codes.v);
    db_vec_decoded_free(db);
    free(db->ivfcache.rows);
    if (db->lock_fd >= 0)
        close(db->lock_fd); /* drops the flock */
    store_close(db->st);
    free(db);
}

int pv_db_unlocked(const pv_db *db) { return db && db->st && store_is_unlocked(db->st); }

void pv_db_set_busy_handler(pv_db *db, void (*fn)(void *ctx, const char *msg), void *ctx)
{
    if (!db)
        return;
    db->busy = fn;
    db->busy_ctx = ctx;
}

int db_writer_begin(pv_db *db) { return db_writer_begin_cancel(db, NULL); }

int db_writer_begin_cancel(pv_db *db, const volatile int *cancel)
{
    char p[4200];
    if (store_is_rdonly(db->st))
        return db_fail(db, PV_ERDONLY, "database opened read-only");
    if (db->lock_depth > 0) {
        db->lock_depth++;
        return PV_OK;
    }
    if (db->lock_fd < 0) {
        snprintf(p, sizeof p, "%s/data.mdb", db->path);
        db->lock_fd = open(p, O_RDONLY | O_CLOEXEC);
        if (db->lock_fd < 0)
            return db_fail(db, PV_EIO, "%s: %s", p, strerror(errno));
    }
    if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return db_fail(db, PV_EIO, "%s: locking for writing: %s", db->path,
                           strerror(errno));
        if (db->busy) {
            snprintf(p, sizeof p, "%s: another writer is at work on this database; "
                     "waiting for it to finish", db->path);
            db->busy(db->busy_ctx, p);
        }
        /* Poll: a signal that sets the cancel flag (or pv_db_interrupt from
         * another thread) just before a blocking flock would be lost, and
         * the wait would never end. A signal caught meanwhile ends the wait
         * too (nanosleep says EINTR), as a blocking flock's would. */
        for (;;) {
            if ((cancel && *cancel) || db_interrupted(db))
                return db_fail(db, PV_EINTR, "%s: waiting for another writer: interrupted",
                               db->path);
            if (flock(db->lock_fd, LOCK_EX | LOCK_NB) == 0)
                break;
            if (errno != EWOULDBLOCK && errno != EINTR)
                return db_fail(db, PV_EIO, "%s: waiting for another writer: %s", db->path,
                               strerror(errno));
            if (nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL) != 0 && !cancel)
                return db_fail(db, PV_EINTR, "%s: waiting for another writer: interrupted",
                               db->path);
        }
    }
    db->lock_depth = 1;
    return PV_OK;
}

void pv_db_interrupt(pv_db *db)
{
    if (db)
        atomic_store_explicit(&db->interrupt, 1, memory_order_relaxed);
}

void db_writer_end(pv_db *db)
{
    if (db->lock_depth > 0 && --db->lock_depth == 0)
        flock(db->lock_fd, LOCK_UN);
}

int pv_db_check_embedder(pv_db *db, const pv_embedder_opts *o)
{
    const store_schema *s;
    if (!db || !o)
        return PV_EINVAL;
    s = store_get_schema(db->st);
    if ((o->name && strcmp(o->name, s->embedder) != 0) ||
        (o->size > 0 && (uint32_t)o->size != s->emb_size) ||
        (o->rgb && !s->emb_rgb) || (o->no_mirror && !(s->emb_flags & EMBED_NO_MIRROR)) ||
        (o->pool_sum && !(s->emb_flags & EMBED_POOL_SUM)))
        return db_fail(db, PV_EEMBEDDER,
                       "this database uses the %s embedder (%u dims); "
                       "it cannot take vectors of another embedder",
                       db->emb->desc, s->dim);
    return PV_OK;
}

unsigned db_threads(int requested)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (requested > 0)
        return (unsigned)requested;
    return cores > 0 ? (unsigned)cores : 1u;
}

hnsw_scratch *db_scratch(pv_db *db)
{
    if (!db->scratch)
        db->scratch = hnsw_scratch_new();
    return db->scratch;
}

/* ---- information ---------------------------------------------------------- */

_Static_assert((int)PV_FMT_JPEG == (int)IMG_JPEG && (int)PV_FMT_PNG == (int)IMG_PNG &&
                   (int)PV_FMT_WEBP == (int)IMG_WEBP && (int)PV_FMT_HEIF == (int)IMG_HEIF &&
                   (int)PV_FMT_TIFF == (int)IMG_TIFF && (int)PV_FMT_GIF == (int)IMG_GIF &&
                   (int)PV_FMT_BMP == (int)IMG_BMP && (int)PV_NFORMATS == (int)IMG_NKINDS,
               "pixvec.h's PV_FMT_* are img.h's img_kind");

const char *pv_format_name(int format)
{
    return img_kind_name((img_kind)format);
}

/* Live items per recorded image format (ids below next_id). */
static int count_formats(store_txn *t, uint32_t next_id, uint64_t counts[PV_NFORMATS])
{
    for (uint32_t id = 0; id < next_id; id++) {
        store_item si;
        int rc = store_item_get(t, id, &si);
        if (rc != 0)
            return rc;
        if (si.flags & STORE_ITEM_DELETED)
            continue;
        uint32_t k = (si.flags & STORE_ITEM_KIND_MASK) >> STORE_ITEM_KIND_SHIFT;
        counts[k < PV_NFORMATS ? k : PV_FMT_UNKNOWN]++;
    }
    return PV_OK;
}

int pv_db_info(pv_db *db, pv_info *out)
{
    const store_schema *s;
    store_txn *t = NULL;
    store_counts c;
    pv_info info;
    int rc;

    if (!db || !out)
        return PV_EINVAL;
    s = store_get_schema(db->st);
    memset(&info, 0, sizeof info);
    if ((rc = db_read_begin(db, &t)) != 0)
        return db_fail(db, rc, "reading database information: %s", pv_strerror(rc));
    rc = store_counts_get(t, &c);
    if (rc == 0) {
        graph *g = NULL;
        rc = graph_open(db->st, t, 0, &db->gcache, &g);
        if (rc == 0) {
            const hnsw_state *gs = graph_state(g);
            info.graph_nodes = gs->nodes;
            info.graph_levels = gs->entry == HNSW_NONE ? 0 : gs->max_level + 1;
        }
        graph_close(g);
    }
    if (rc == 0)
        rc = db_ivf_nlist(t, &info.ivf_nlist);
    if (rc == 0)
        rc = db_cluster_k(db, t, &info.cluster_k);
    if (rc == 0)
        rc = count_formats(t, c.next_id, info.formats);
    if (rc == 0 && s->codes) {
        codes_view v;
        if ((rc = codes_view_load(t, s, &v)) == 0)
            info.coded = v.n;
        info.float32_dropped = store_vec_dropped(t);
        codes_view_free(&v);
    }
    if (rc != 0)
        db_fail_txn(db, t, rc, "reading database information");
    else
        rc = db_read_check(db, t);
    store_txn_abort(t);
    if (rc != 0)
        return rc;
    if ((rc = store_sizes(db->st, &info.disk_bytes, &info.map_bytes)) != 0)
        return db_fail(db, rc, "reading database sizes: %s", pv_strerror(rc));
    info.items = c.live;
    info.deleted = c.deleted;
    info.next_id = c.next_id;
    info.dim = s->dim;
    info.format = store_format(db->st);
    info.vectors = (int)s->codes;
    info.code_bytes = codes_bytes(s->codes, s->dim);
    info.compact_only = (int)s->codes_only;
    info.chunk = s->chunk;
    info.hnsw_m = s->hnsw_m;
    info.hnsw_ef_construction = s->hnsw_efc;
    snprintf(info.embedder, sizeof info.embedder, "%s", s->embedder);
    snprintf(info.embedder_desc, sizeof info.embedder_desc, "%s",
             db->emb->desc);
    info.dups_threshold = db->emb->dups_threshold;
    *out = info;
    return PV_OK;
}

/* ---- write transactions --------------------------------------------------- */

int db_write(pv_db *db, int (*fn)(pv_db *db, store_txn *t, void *ctx),
             void *ctx)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        store_txn *t = NULL;
        int rc = store_txn_begin(db->st, 1, &t);
        if (rc != 0)
            return rc;
        rc = fn(db, t, ctx);
        if (rc != 0) {
            store_txn_abort(t);
        } else if ((rc = store_txn_commit(t)) != 0 && store_commit_error(db->st)[0]) {
            return db_fail(db, rc, "%s: %s", db->path, store_commit_error(db->st));
        }
        if (rc != STORE_FULL)
            return rc;
        if ((rc = store_grow(db->st)) != 0)
            return db_fail(db, rc, "%s: %s", db->path,
                           rc == STORE_FULL ? "database map full (PIXVEC_MAP_LIMIT reached)"
                                            : pv_strerror(rc));
    }
    return PV_ESTORE;
}

/* ---- remove ----------------------------------------------------------------- */

int db_graph_delete(pv_db *db, store_txn *t, const uint32_t *ids, size_t n)
{
    graph *g = NULL;
    int rc = graph_open(db->st, t, 1, NULL, &g);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = graph_delete(g, ids[i]);
    if (rc == 0)
        rc = graph_flush(g);
    graph_close(g);
    return rc;
}

typedef struct remove_ctx {
    char **paths;     /* absolute */
    size_t n;
    int strict;       /* 1: a path not stored fails the whole call */
    uint32_t *ids;    /* n entries of scratch */
    size_t removed;   /* out */
} remove_ctx;

/* Tombstone every stored path of ctx in write transaction t: the record
 * flagged, path and hash keys deleted, the graph told, the counters moved.
 * db_write may run it again after growing the map, so it starts from zero. */
static int remove_txn(pv_db *db, store_txn *t, void *vctx)
{
    remove_ctx *x = vctx;
    store_counts c;
    size_t nid = 0;
    int rc = store_counts_get(t, &c);
    x->removed = 0;
    for (size_t i = 0; i < x->n && rc == 0; i++) {
        store_item it;
        uint32_t id;
        char path_copy[PV_MAX_PATH_BYTES + 1];
        rc = store_path_get(t, x->paths[i], &id);
        if (rc == PV_ENOTFOUND && !x->strict) {
            rc = PV_OK; /* not stored, or named twice: nothing to do */
            continue;
        }
        if (rc == PV_ENOTFOUND)
            return db_fail(db, rc, "%s: not in the database", x->paths[i]);
        if (rc == 0)
            rc = store_item_get(t, id, &it);
        if (rc != 0)
            break;
        /* store_item_get checked path_len <= PV_MAX_PATH_BYTES */
        memcpy(path_copy, it.path, it.path_len);
        path_copy[it.path_len] = 0;
        it.path = path_copy;
        it.flags |= STORE_ITEM_DELETED;
        if ((rc = store_item_put(t, id, &it)) == 0 &&
            (rc = store_path_del(t, x->paths[i])) == 0)
            rc = store_hash_del(t, it.hash, id);
        x->ids[nid++] = id;
    }
    if (rc == 0 && nid > 0)
        rc = db_graph_delete(db, t, x->ids, nid);
    if (rc == 0 && nid > 0) {
        c.live -= nid;
        c.deleted += nid;
        rc = store_counts_put(t, &c);
    }
    if (rc == 0)
        x->removed = nid;
    else if (rc == PV_ECORRUPT)
        db_fail_txn(db, t, rc, "removing images");
    return rc;
}

int db_remove_paths(pv_db *db, const char *const *paths, size_t n, int strict,
                    size_t *removed)
{
    remove_ctx x = {NULL, 0, strict, NULL, 0};
    int rc = PV_OK;
    if (!db || (n && !paths))
        return PV_EINVAL;
    if ((rc = db_writer_begin(db)) != 0)
        return rc;
    x.paths = pv_calloc_array(n ? n : 1, sizeof *x.paths);
    x.ids = pv_alloc_array(n ? n : 1, sizeof *x.ids);
    if (!x.paths || !x.ids)
        rc = PV_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char abs[PATH_MAX];
        if (!paths[i] || (rc = db_abs_path(paths[i], abs, sizeof abs)) != 0) {
            rc = db_fail(db, PV_EINVAL, "%s: bad path", paths[i] ? paths[i] : "(null)");
            break;
        }
        if (!(x.paths[i] = strdup(abs)))
            rc = PV_ENOMEM;
        x.n = i + 1;
    }
    if (rc == 0)
        rc = db_write(db, remove_txn, &x);
    if (rc != 0 && rc != PV_ENOTFOUND && rc != PV_EINVAL && rc != PV_ERDONLY &&
        rc != PV_ECORRUPT) /* these have their message */
        db_fail(db, rc, "removing %zu images: %s", n, pv_strerror(rc));
    if (rc == 0 && removed)
        *removed = x.removed;
    for (size_t i = 0; x.paths && i < x.n; i++)
        free(x.paths[i]);
    free(x.paths);
    free(x.ids);
    db_writer_end(db);
    return rc;
}

int pv_remove(pv_db *db, const char *path)
{
    if (!path)
        return PV_EINVAL;
    return db_remove_paths(db, &path, 1, 1, NULL);
}

int pv_remove_many(pv_db *db, const char *const *paths, size_t n, size_t *removed)
{
    return db_remove_paths(db, paths, n, 0, removed);
}

/* ---- items ------------------------------------------------------------------ */

int db_item_copy(uint32_t id, const store_item *si, pv_item *out)
{
    out->id = id;
    out->size = si->size;
    out->mtime_ns = si->mtime_ns;
    out->width = si->width;
    out->height = si->height;
    out->format = (int)((si->flags & STORE_ITEM_KIND_MASK) >> STORE_ITEM_KIND_SHIFT);
    if (out->format >= PV_NFORMATS)
        out->format = PV_FMT_UNKNOWN;
    memcpy(out->hash, si->hash, 16);
    out->path = malloc((size_t)si->path_len + 1);
    if (!out->path)
        return PV_ENOMEM;
    memcpy(out->path, si->path, si->path_len);
    out->path[si->path_len] = 0;
    return PV_OK;
}

int pv_items(pv_db *db, pv_item **items, size_t *n)
{
    store_txn *t = NULL;
    store_counts c;
    pv_item *arr = NULL;
    size_t cnt = 0;
    int rc;

    if (!db || !items || !n)
        return PV_EINVAL;
    if ((rc = store_txn_begin(db->st, 0, &t)) != 0)
        return db_fail(db, rc, "listing items: %s", pv_strerror(rc));
    /* live <= next_id = the item records (checked): a size to allocate */
    if ((rc = store_counts_get(t, &c)) != 0)
        goto done;
    arr = pv_calloc_array(c.live ? c.live : 1, sizeof *arr);
    if (!arr) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (uint32_t id = 0; id < c.next_id; id++) {
        store_item si;
        if ((rc = store_item_get(t, id, &si)) != 0)
            goto done;
        if (si.flags & STORE_ITEM_DELETED)
            continue;
        if (cnt == c.live) {
            rc = store_corrupt(t, "meta live: %llu, but more live item records",
                               (unsigned long long)c.live);
            goto done;
        }
        if ((rc = db_item_copy(id, &si, &arr[cnt])) != 0)
            goto done;
        cnt++;
    }
    if (cnt != c.live) {
        rc = store_corrupt(t, "meta live: %llu, but %zu live item records",
                           (unsigned long long)c.live, cnt);
        goto done;
    }
    if ((rc = db_read_check(db, t)) != 0)
        goto done;
    *items = arr;
    *n = cnt;
    arr = NULL;
done:
    if (rc != 0)
        db_fail_txn(db, t, rc, "listing items");
    if (arr)
        pv_items_free(arr, cnt);
    store_txn_abort(t);
    return rc;
}

void pv_items_free(pv_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i].path);
    free(items);
}

/* ---- verify ----------------------------------------------------------------- */

static int verify_item(pv_db *db, store_txn *t, uint32_t id,
                       const store_item *it)
{
    char path[PV_MAX_PATH_BYTES + 1];
    uint32_t pid, ids[64];
    size_t n = 0;
    int rc, found = 0;
    /* store_item_get checked path_len <= PV_MAX_PATH_BYTES */
    memcpy(path, it->path, it->path_len);
    path[it->path_len] = 0;
    rc = store_path_get(t, path, &pid);
    if (rc != 0 && rc != PV_ENOTFOUND)
        return db_fail_txn(db, t, rc, "item %u (%s): its path entry", id, path);
    if (rc != 0 || pid != id)
        return db_fail(db, PV_ECORRUPT, "item %u (%s): its path entry %s", id,
                       path, rc ? "is missing" : "names another item");
    if ((rc = store_hash_get(t, it->hash, ids, 64, &n)) != 0)
        return db_fail_txn(db, t, rc, "item %u (%s): its content hash", id, path);
    for (size_t i = 0; i < n && i < 64; i++)
        found |= ids[i] == id;
    if (!found && n <= 64)
        return db_fail(db, PV_ECORRUPT, "item %u (%s): no content-hash entry",
                       id, path);
    return PV_OK;
}

/* A stored vector is finite and of unit length (or zero: a flat image). */
/* unit: the length must be 1 (or 0); a decoded code is only near it. */
static int verify_vector(pv_db *db, uint32_t id, const float *v, uint32_t dim, int unit)
{
    float nn = 0;
    if (!v)
        return db_fail(db, PV_ECORRUPT, "vector %u: missing", id);
    for (uint32_t i = 0; i < dim; i++) {
        float x;
        memcpy(&x, v + i, sizeof x); /* may be unaligned */
        if (!isfinite(x))
            return db_fail(db, PV_ECORRUPT, "vector %u: value %u is %s", id, i,
                           isnan(x) ? "NaN" : "infinite");
        nn += x * x;
    }
    if (unit && nn != 0 && !(fabsf(nn - 1.0f) < 1e-3f))
        return db_fail(db, PV_ECORRUPT, "vector %u: length %g, not 1 (or 0)", id,
                       (double)sqrtf(nn));
    return PV_OK;
}

int pv_db_backup(pv_db *db, const char *dest)
{
    char why[1024];
    int rc;
    if (!db || !dest)
        return PV_EINVAL;
    db->errmsg[0] = 0;
    rc = store_copy_compact(db->st, dest, why, sizeof why);
    return rc == 0 ? 0 : db_fail(db, rc, "%s", why);
}

int pv_db_verify(pv_db *db)
{
    store_txn *t = NULL;
    store_counts c;
    uint64_t live = 0, dead = 0, nitems = 0, npaths = 0, nhashes = 0, nvec = 0;
    const float *const *ptrs;
    const uint32_t *counts;
    uint32_t nchunks;
    vec_set set;
    graph *g = NULL;
    int rc, dropped;

    if (!db)
        return PV_EINVAL;
    db->errmsg[0] = 0;
    db_interrupt_clear(db);
    if ((rc = db_read_begin(db, &t)) != 0)
        return db_fail(db, rc, "%s", pv_strerror(rc));
    if ((rc = store_counts_get(t, &c)) != 0 ||
        (rc = store_entries(t, STORE_ITEMS, &nitems)) != 0 ||
        (rc = store_entries(t, STORE_PATHS, &npaths)) != 0 ||
        (rc = store_entries(t, STORE_HASHES, &nhashes)) != 0 ||
        (rc = store_vec_chunks(t, &ptrs, &counts, &nchunks)) != 0 ||
        (rc = db_vec_set(db, t, &set)) != 0) {
        rc = db_fail_txn(db, t, rc, "check");
        goto done;
    }
    for (uint32_t i = 0; i < nchunks; i++)
        nvec += counts[i];
    dropped = store_vec_dropped(t); /* the vectors are the codes, decoded */
    for (uint32_t i = 0; dropped && i < set.nchunks; i++)
        nvec += set.n[i];
    if (nitems != c.next_id || nvec != c.next_id) {
        rc = db_fail(db, PV_ECORRUPT,
                     "next id %u, but %llu item records and %llu vectors",
                     c.next_id, (unsigned long long)nitems,
                     (unsigned long long)nvec);
        goto done;
    }
    if ((rc = graph_open(db->st, t, 0, &db->gcache, &g)) != 0) {
        rc = db_fail_txn(db, t, rc, "the HNSW graph cannot be read");
        goto done;
    }
    if (graph_state(g)->nodes > c.next_id) {
        rc = db_fail(db, PV_ECORRUPT, "the graph has %u nodes but only %u ids exist",
                     graph_state(g)->nodes, c.next_id);
        goto done;
    }
    for (uint32_t id = 0; id < c.next_id; id++) {
        store_item it;
        int in_graph = id < graph_state(g)->nodes;
        if ((id & 1023) == 0 && db_interrupted(db)) {
            rc = db_fail(db, PV_EINTR, "check: interrupted");
            goto done;
        }
        if ((rc = store_item_get(t, id, &it)) != 0) {
            rc = db_fail_txn(db, t, rc, "item %u", id);
            goto done;
        }
        if (in_graph && (rc = graph_check_node(g, id)) != 0) {
            rc = db_fail_txn(db, t, rc, "item %u: graph node malformed", id);
            goto done;
        }
        if ((rc = verify_vector(db, id, vec_set_get(&set, id), set.dim, !dropped)) != 0)
            goto done;
        if (it.flags & STORE_ITEM_DELETED) {
            dead++;
            if (in_graph && !graph_is_deleted(g, id)) {
                rc = db_fail(db, PV_ECORRUPT, "item %u removed but live in the graph", id);
                goto done;
            }
            continue;
        }
        live++;
        if (!in_graph || graph_is_deleted(g, id)) {
            rc = db_fail(db, PV_ECORRUPT, "live item %u is %s the graph", id,
                         in_graph ? "deleted in" : "missing from");
            goto done;
        }
        if ((rc = verify_item(db, t, id, &it)) != 0)
            goto done;
    }
    if (live != c.live || dead != c.deleted || npaths != live || nhashes != live)
        rc = db_fail(db, PV_ECORRUPT,
                     "counters say %llu live and %llu removed; records say "
                     "%llu and %llu, with %llu paths and %llu hash entries",
                     (unsigned long long)c.live, (unsigned long long)c.deleted,
                     (unsigned long long)live, (unsigned long long)dead,
                     (unsigned long long)npaths, (unsigned long long)nhashes);
    if (rc == 0)
        rc = db_ivf_verify(db, t, c.next_id);
    if (rc == 0 && (rc = codes_verify(t, store_get_schema(db->st), c.next_id)) != 0)
        db_fail_txn(db, t, rc, "check: the compact vectors");
    if (rc == 0) {
        uint32_t k;
        if ((rc = db_cluster_k(db, t, &k)) != 0)
            db_fail_txn(db, t, rc, "check");
    }
    if (rc == 0 && (rc = db_map_verify(db, t, c.next_id)) != 0)
        db_fail_txn(db, t, rc, "check");
done:
    /* A damage found on an unlocked store may be a writer's reuse of the
     * pages read: the check's verdict stands only if none happened. */
    if ((rc == 0 || rc == PV_ECORRUPT) && db_read_check(db, t) != 0)
        rc = PV_ESTORE;
    graph_close(g);
    store_txn_abort(t);
    return rc;
}

/* ---- files to vectors -------------------------------------------------- */

int db_decode_file(const pv_db *db, const char *path, img *im, uint8_t hash[16],
                   char *reason, size_t reasonlen)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc;

    memset(im, 0, sizeof *im);
    rc = img_read_file(path, &buf, &n, reason, reasonlen);
    if (rc != 0)
        return rc;
    if (hash) {
        XXH128_canonical_t cano;
        XXH128_canonicalFromHash(&cano, XXH3_128bits(buf, n));
        memcpy(hash, cano.digest, 16);
    }
    /* Decoded no larger than the embedder needs (JPEG DCT scaling; a large
     * PNG is reduced while read, to the embedder's size itself unless it is
     * long and thin), and the file's bytes freed at once: a caller holding
     * several images holds their small decoded pixels only. */
    /* An embedder that resizes as Pillow does (a centre crop keeps the
     * aspect) takes a PNG whole: a reduced PNG's sides are multiples of
     * in_w and in_h, another aspect, and area-averaged. A JPEG's DCT
     * scaling keeps the aspect, up to rounding a side up. */
    const int whole = db->emb->png_whole && img_sniff(buf, n) == IMG_PNG;
    rc = img_decode(buf, n, db->emb->channels, whole ? 0 : db->emb->in_w,
                    whole ? 0 : db->emb->in_h, im, reason, reasonlen);
    free(buf);
    return rc;
}

int db_embed_images(const pv_db *db, const img *ims, size_t n, float *vecs,
                    int *rcs)
{
    const embedder *e = db->emb;

    if (n == 0)
        return PV_OK;
    /* A bad image fails in its own rcs[i]; a call that could not run at
     * all (a batch's buffers did not fit in memory) is tried again one
     * image at a time, which needs less. */
    if (e->ops->embed(e, ims, n, vecs, rcs) != 0 && n > 1)
        for (size_t i = 0; i < n; i++)
            (void)e->ops->embed(e, &ims[i], 1, vecs + i * e->dim, &rcs[i]);
    for (size_t i = 0; i < n; i++)
        if (rcs[i] != 0)
            return rcs[i];
    return PV_OK;
}

int pv_embed_file(pv_db *db, const char *path, float *vec, uint32_t dim)
{
    char reason[256] = "";
    img im;
    int rc, erc;
    memset(&im, 0, sizeof im);
    if (!db || !path || !vec)
        return PV_EINVAL;
    if (embed_is_external(db->emb))
        return db_fail(db, PV_EEMBEDDER, "%s: %s", path, EMBED_EXTERNAL_MSG);
    if (dim != db->emb->dim)
        return db_fail(db, PV_EEMBEDDER,
                       "vector of %u dims asked of a %u-dim database", dim,
                       db->emb->dim);
    rc = db_decode_file(db, path, &im, NULL, reason, sizeof reason);
    if (rc == 0 && (rc = db_embed_images(db, &im, 1, vec, &erc)) != 0)
        snprintf(reason, sizeof reason, "embedding failed: %s", pv_strerror(rc));
    img_free(&im);
    if (rc != 0)
        return db_fail(db, rc, "%s: %s", path,
                       reason[0] ? reason : pv_strerror(rc));
    return PV_OK;
}
