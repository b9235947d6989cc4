/*
 * ingest.c - pv_add: files and folders in, items and vectors committed.
 *
 * The pipeline, as DESIGN.md lays it out:
 *  1. the calling thread walks the arguments (folders recursively, in sorted
 *     order) and, in one read transaction, drops the files whose path, size
 *     and mtime are already stored (unchanged);
 *  2. worker threads take jobs in order, a grab at a time (the embedder's
 *     batch, 8 by default, at most GRAB_MAX; fewer when that spreads a small
 *     run over every worker): read the bytes,
 *     hash them (XXH3-128) and decode by magic bytes, one file after
 *     another, then embed the grab's decoded images in one embedder call
 *     (the cnn runs them through the network as one batch); a file that
 *     fails costs only its own job;
 *  3. the calling thread is the single writer: it waits for the jobs in
 *     order and commits them in one write transaction (item record, path
 *     key, hash key, vector) when BATCH of them are done or COMMIT_SECONDS
 *     have passed since the last commit, whichever comes first, reporting
 *     the bad ones; while it waits it reports progress per image. Workers
 *     may run at most WINDOW jobs ahead of the last commit, which bounds the
 *     memory held by finished vectors;
 *  4. when every job is committed, stored images under the folders given
 *     whose files are gone are forgotten (tombstoned, as pv_remove does),
 *     after the moves of step 3 took the vectors they could.
 * The whole run holds the writer lock (db_writer_begin), so two runs on one
 * database never both insert a file. A cancel (opts->cancel, set by the
 * CLI's SIGINT handler) stops the workers, commits what is done and returns
 * PV_EINTR. A crash loses at most the batch being written; LMDB never shows
 * half of one. A file whose content hash is already stored under a path that no
 * longer exists is a move: the old item takes the new path and keeps its
 * vector. A changed file (same path, other size or mtime) tombstones the old
 * item and gets a new id, unless its bytes are unchanged, in which case only
 * the record's size and mtime are refreshed.
 */
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db_int.h"
#include "pv_util.h"

#define BATCH 1024u
#define WINDOW (4u * BATCH)
#define GRAB 8u      /* jobs a worker takes at once, unless the embedder says */
#define GRAB_MAX 32u
#define COMMIT_SECONDS 2.0
#define PROGRESS_SECONDS 0.1
#define NO_ID UINT32_MAX
#define MAX_HASH_PEERS 16

typedef struct job {
    char *path;
    uint64_t size;
    int64_t mtime_ns;
    uint32_t old_id; /* the item now stored under path, or NO_ID */
    /* filled by a worker */
    int rc;
    char reason[240];
    float *vec;
    uint32_t w, h;
    uint32_t kind; /* img_kind */
    uint8_t hash[16];
    int done;
} job;

typedef struct ingest {
    pv_db *db;
    const pv_add_opts *opts;
    pv_add_stats stats;
    /* candidate files from the walk */
    job *jobs;
    size_t njobs, cap;
    /* worker coordination */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    size_t next;      /* next job a worker takes */
    size_t committed; /* jobs [0, committed) are written */
    size_t ndone;     /* jobs finished by workers, in any order */
    int stop;
    unsigned threads; /* workers, and the graph's planning threads */
    uint32_t grab;    /* jobs a worker takes at once (<= GRAB_MAX) */
} ingest;

static void report(ingest *in, const char *path, int err, const char *reason)
{
    in->stats.failed++;
    if (in->opts && in->opts->on_error)
        in->opts->on_error(in->opts->ctx, path, err,
                           reason && reason[0] ? reason : pv_strerror(err));
}

/* ---- walking ------------------------------------------------------------- */

static int has_image_ext(const char *name)
{
    static const char *const exts[] = {".jpg", ".jpeg", ".jpe", ".png",  ".webp", ".heic", ".heif",
                                       ".hif", ".avif", ".tif", ".tiff", ".gif",  ".bmp",  ".dib"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(name + n - e, exts[i]) == 0)
            return 1;
    }
    return 0;
}

static int push_file(ingest *in, const char *path, const struct stat *sb)
{
    job *j;
    if (strlen(path) > PV_MAX_PATH_BYTES) {
        report(in, path, PV_EINVAL, "path longer than 480 bytes");
        return PV_OK;
    }
    if (in->njobs == in->cap) {
        size_t nc = in->cap ? in->cap * 2 : 1024;
        job *nj = pv_realloc_array(in->jobs, nc, sizeof *nj);
        if (!nj)
            return PV_ENOMEM;
        in->jobs = nj;
        in->cap = nc;
    }
    j = &in->jobs[in->njobs];
    memset(j, 0, sizeof *j);
    j->path = strdup(path);
    if (!j->path)
        return PV_ENOMEM;
    j->size = (uint64_t)sb->st_size;
    j->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    j->old_id = NO_ID;
    in->njobs++;
    return PV_OK;
}

static int walk_dir(ingest *in, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = PV_OK;
    if (!d) {
        report(in, dir, PV_EIO, strerror(errno));
        return PV_OK;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat sb;
        if (e->d_name[0] == '.') /* ., .., and hidden files and folders */
            continue;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= sizeof p)
            continue;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            rc = walk_dir(in, p); /* symlinked folders are not followed */
        } else if (has_image_ext(e->d_name)) {
            if (S_ISLNK(sb.st_mode) && stat(p, &sb) != 0)
                continue;
            if (S_ISREG(sb.st_mode))
                rc = push_file(in, p, &sb);
        }
    }
    closedir(d);
    return rc;
}

static int walk_arg(ingest *in, const char *arg)
{
    char abs[PATH_MAX];
    struct stat sb;
    if (stat(arg, &sb) != 0) {
        report(in, arg, errno == ENOENT ? PV_ENOTFOUND : PV_EIO,
               strerror(errno));
        return PV_OK;
    }
    if (db_abs_path(arg, abs, sizeof abs) != 0) {
        report(in, arg, PV_EINVAL, "path too long");
        return PV_OK;
    }
    if (S_ISDIR(sb.st_mode))
        return walk_dir(in, abs);
    if (!S_ISREG(sb.st_mode)) { /* a FIFO would block the reader forever */
        report(in, arg, PV_EIO, "not a regular file");
        return PV_OK;
    }
    return push_file(in, abs, &sb); /* a file named directly is always tried */
}

static int cmp_job_path(const void *a, const void *b)
{
    return strcmp(((const job *)a)->path, ((const job *)b)->path);
}

/* Sort and drop repeated paths (a folder named twice, a file inside a folder
 * also named), then drop files stored unchanged. */
static int filter_unchanged(ingest *in)
{
    store_txn *t = NULL;
    size_t out = 0, i;
    int rc;
    if (in->njobs > 1) /* jobs is NULL when nothing was found: no qsort(NULL) */
        qsort(in->jobs, in->njobs, sizeof *in->jobs, cmp_job_path);
    for (i = 0; i < in->njobs; i++) {
        if (out > 0 && strcmp(in->jobs[out - 1].path, in->jobs[i].path) == 0)
            free(in->jobs[i].path);
        else
            in->jobs[out++] = in->jobs[i];
    }
    in->njobs = out;
    if ((rc = store_txn_begin(in->db->st, 0, &t)) != 0)
        return rc;
    out = 0;
    for (i = 0; i < in->njobs; i++) {
        job *j = &in->jobs[i];
        uint32_t id;
        store_item it;
        in->stats.seen++;
        rc = store_path_get(t, j->path, &id);
        if (rc == 0) {
            if ((rc = store_item_get(t, id, &it)) != 0)
                break;
            if (it.size == j->size && it.mtime_ns == j->mtime_ns) {
                in->stats.unchanged++;
                free(j->path);
                continue;
            }
            j->old_id = id;
        } else if (rc != PV_ENOTFOUND) {
            break;
        }
        rc = PV_OK;
        in->jobs[out++] = *j;
    }
    if (rc != 0)
        db_fail_txn(in->db, t, rc, "%s: reading its stored record", in->jobs[i].path);
    store_txn_abort(t);
    for (; i < in->njobs; i++) /* jobs not reached after an error */
        in->jobs[out++] = in->jobs[i];
    in->njobs = out;
    return rc;
}

/* ---- workers --------------------------------------------------------------- */

/* What one worker holds between decoding its grabbed jobs and embedding
 * them: the decoded images (each at the embedder's input size or a little
 * above, thanks to DCT scaling for JPEG; the file's bytes are already
 * freed), which job each came from, and the embedder's output. */
typedef struct grab {
    img ims[GRAB_MAX];
    size_t job[GRAB_MAX];
    int rcs[GRAB_MAX];
    float *vecs; /* grab * dim */
    size_t n;
    size_t bytes; /* pixel bytes held in ims */
} grab;

/* Pixel bytes a worker may hold before it embeds what it has: PNGs are
 * decoded at full size, and eight 30-megapixel PNGs would hold 720 MB per
 * worker where one image at a time held 90 MB. A grab of ordinary photos
 * (a 1024 x 768 JPEG decodes at 512 x 384 for the cnn) stays far below. */
#define HELD_BYTES (64u << 20)

/* Embed the held images in one embedder call and hand each job its vector,
 * or its own error (db_embed_images: an image whose vector is NaN fails
 * alone, and is reported by name; the others are committed). */
static void grab_embed(ingest *in, grab *g)
{
    const uint32_t dim = in->db->emb->dim;
    (void)db_embed_images(in->db, g->ims, g->n, g->vecs, g->rcs);
    for (size_t k = 0; k < g->n; k++) {
        job *j = &in->jobs[g->job[k]];
        j->rc = g->rcs[k];
        if (j->rc != 0)
            snprintf(j->reason, sizeof j->reason, "embedding failed: %s",
                     pv_strerror(j->rc));
        else if (!(j->vec = pv_alloc_array(dim, sizeof(float))))
            j->rc = PV_ENOMEM;
        else
            memcpy(j->vec, g->vecs + k * dim, dim * sizeof(float));
        img_free(&g->ims[k]);
    }
    g->n = 0;
    g->bytes = 0;
}

/* Jobs [lo, hi) (at most in->grab): read, hash and decode each, then embed the
 * decoded ones together. A file that fails to read or decode is its own
 * job's error; the others go on. */
static void process_grab(ingest *in, grab *g, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        job *j = &in->jobs[i];
        img *im = &g->ims[g->n];
        if (!g->vecs) {
            j->rc = PV_ENOMEM;
            continue;
        }
        j->rc = db_decode_file(in->db, j->path, im, j->hash, j->reason,
                               sizeof j->reason);
        if (j->rc != 0)
            continue;
        j->w = im->orig_w;
        j->h = im->orig_h;
        j->kind = im->kind;
        g->job[g->n++] = i;
        g->bytes += (size_t)im->w * im->h * im->channels;
        if (g->bytes >= HELD_BYTES)
            grab_embed(in, g);
    }
    grab_embed(in, g);
}

static void *worker(void *arg)
{
    ingest *in = arg;
    grab g;
    memset(&g, 0, sizeof g);
    /* NULL leaves every job this worker takes failed with PV_ENOMEM */
    g.vecs = pv_alloc_array((size_t)in->grab * in->db->emb->dim, sizeof(float));
    pthread_mutex_lock(&in->mu);
    for (;;) {
        size_t lo, hi;
        while (!in->stop && in->next < in->njobs &&
               in->next >= in->committed + WINDOW)
            pthread_cond_wait(&in->work_cv, &in->mu);
        if (in->stop || in->next >= in->njobs)
            break;
        lo = in->next;
        hi = lo + in->grab;
        if (hi > in->njobs)
            hi = in->njobs;
        if (hi > in->committed + WINDOW)
            hi = in->committed + WINDOW;
        in->next = hi;
        pthread_mutex_unlock(&in->mu);
        process_grab(in, &g, lo, hi);
        pthread_mutex_lock(&in->mu);
        for (size_t i = lo; i < hi; i++)
            in->jobs[i].done = 1;
        in->ndone += hi - lo;
        pthread_cond_broadcast(&in->done_cv);
    }
    pthread_mutex_unlock(&in->mu);
    free(g.vecs);
    return NULL;
}

/* ---- the writer ------------------------------------------------------------ */

typedef struct batch {
    ingest *in;
    size_t lo, hi;
    float *newvecs; /* BATCH * dim */
    uint32_t dead[BATCH]; /* ids tombstoned by this batch */
    size_t ndead;
    pv_add_stats delta;
} batch;

/* The batch's graph work, after its records are written and before its
 * vectors are: tombstones, then one insert per new id. */
static int batch_graph(pv_db *db, store_txn *t, const uint32_t *dead, size_t ndead, uint32_t first,
                       uint32_t nnew, const float *vecs, unsigned threads)
{
    hnsw_scratch *s = db_scratch(db);
    graph *g = NULL;
    int rc;
    if (!s)
        return PV_ENOMEM;
    if ((rc = graph_open(db->st, t, 1, NULL, &g)) != 0)
        return rc;
    for (size_t i = 0; i < ndead && rc == 0; i++)
        rc = graph_delete(g, dead[i]);
    graph_set_pending(g, first, nnew, vecs);
    if (rc == 0)
        rc = graph_insert_batch(g, s, first, nnew, threads);
    if (rc == 0)
        rc = graph_flush(g);
    graph_close(g);
    return rc;
}

int db_insert_item(store_txn *t, store_counts *c, const store_item *it)
{
    int rc;
    if ((rc = store_item_put(t, c->next_id, it)) != 0 ||
        (rc = store_path_put(t, it->path, c->next_id)) != 0 ||
        (rc = store_hash_add(t, it->hash, c->next_id)) != 0)
        return rc;
    c->next_id++;
    c->live++;
    return PV_OK;
}

int db_insert_vectors(pv_db *db, store_txn *t, uint32_t first, uint32_t nnew, const float *vecs,
                      const uint32_t *dead, size_t ndead, unsigned threads)
{
    int rc;
    /* codes first: a graph on codes only reads the batch's too */
    if ((rc = codes_add(t, store_get_schema(db->st), first, nnew, vecs)) != 0)
        return rc;
    if ((nnew > 0 || ndead > 0) &&
        (rc = batch_graph(db, t, dead, ndead, first, nnew, vecs, threads)) != 0)
        return rc;
    if (nnew > 0 && !store_vec_dropped(t) && (rc = store_vec_append(t, first, nnew, vecs)) != 0)
        return rc;
    if (nnew > 0 && (rc = db_ivf_add(db, t, first, nnew, vecs)) != 0)
        return rc;
    return PV_OK;
}

static int path_vanished(const char *path)
{
    struct stat sb;
    return stat(path, &sb) != 0 && errno == ENOENT;
}

/* Is j a move of a stored item whose file is gone? Then give that item the
 * new path and return 1. */
static int try_move(store_txn *t, job *j, int *moved)
{
    uint32_t ids[MAX_HASH_PEERS];
    size_t n = 0;
    int rc = store_hash_get(t, j->hash, ids, MAX_HASH_PEERS, &n);
    *moved = 0;
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && i < MAX_HASH_PEERS; i++) {
        store_item it;
        char old[PV_MAX_PATH_BYTES + 1];
        if ((rc = store_item_get(t, ids[i], &it)) != 0)
            return rc;
        if (it.flags & STORE_ITEM_DELETED)
            continue;
        memcpy(old, it.path, it.path_len);
        old[it.path_len] = 0;
        if (strcmp(old, j->path) == 0 || !path_vanished(old))
            continue;
        it.path = j->path;
        it.path_len = (uint16_t)strlen(j->path);
        it.size = j->size;
        it.mtime_ns = j->mtime_ns;
        if ((rc = store_path_del(t, old)) != 0 ||
            (rc = store_item_put(t, ids[i], &it)) != 0 ||
            (rc = store_path_put(t, j->path, ids[i])) != 0)
            return rc;
        *moved = 1;
        return PV_OK;
    }
    return PV_OK;
}

static int batch_body(pv_db *db, store_txn *t, batch *b);

/* db_write's callback: the batch, and a damaged record met on the way named
 * in the handle's message while its transaction is still open. */
static int batch_txn(pv_db *db, store_txn *t, void *vctx)
{
    int rc = batch_body(db, t, vctx);
    if (rc == PV_ECORRUPT)
        db_fail_txn(db, t, rc, "the database");
    return rc;
}

static int batch_body(pv_db *db, store_txn *t, batch *b)
{
    const uint32_t dim = db->emb->dim;
    store_counts c;
    uint32_t first, nnew = 0;
    int rc;

    memset(&b->delta, 0, sizeof b->delta);
    b->ndead = 0;
    if ((rc = store_counts_get(t, &c)) != 0)
        return rc;
    first = c.next_id;
    for (size_t i = b->lo; i < b->hi; i++) {
        job *j = &b->in->jobs[i];
        store_item it;
        int moved;
        if (j->rc != 0)
            continue;
        if (j->old_id != NO_ID) {
            if ((rc = store_item_get(t, j->old_id, &it)) != 0)
                return rc;
            if (!(it.flags & STORE_ITEM_DELETED) &&
                memcmp(it.hash, j->hash, 16) == 0) {
                /* touched, not changed: refresh the record only */
                char p[PV_MAX_PATH_BYTES + 1];
                memcpy(p, it.path, it.path_len);
                p[it.path_len] = 0;
                it.path = p;
                it.size = j->size;
                it.mtime_ns = j->mtime_ns;
                if ((rc = store_item_put(t, j->old_id, &it)) != 0)
                    return rc;
                b->delta.unchanged++;
                continue;
            }
            if (!(it.flags & STORE_ITEM_DELETED)) {
                char p[PV_MAX_PATH_BYTES + 1];
                memcpy(p, it.path, it.path_len);
                p[it.path_len] = 0;
                it.path = p;
                it.flags |= STORE_ITEM_DELETED;
                if ((rc = store_item_put(t, j->old_id, &it)) != 0 ||
                    (rc = store_hash_del(t, it.hash, j->old_id)) != 0)
                    return rc;
                c.live--;
                c.deleted++;
                b->dead[b->ndead++] = j->old_id;
            }
            b->delta.updated++;
        } else {
            if ((rc = try_move(t, j, &moved)) != 0)
                return rc;
            if (moved) {
                b->delta.moved++;
                continue;
            }
            b->delta.added++;
        }
        it.size = j->size;
        it.mtime_ns = j->mtime_ns;
        memcpy(it.hash, j->hash, 16);
        it.width = j->w;
        it.height = j->h;
        it.flags = (j->kind << STORE_ITEM_KIND_SHIFT) & STORE_ITEM_KIND_MASK;
        it.path = j->path;
        it.path_len = (uint16_t)strlen(j->path);
        if ((rc = db_insert_item(t, &c, &it)) != 0)
            return rc;
        memcpy(b->newvecs + (size_t)nnew * dim, j->vec, dim * sizeof(float));
        nnew++;
    }
    if ((rc = db_insert_vectors(db, t, first, nnew, b->newvecs, b->dead, b->ndead,
                                b->in->threads)) != 0)
        return rc;
    return store_counts_put(t, &c);
}

static void stop_workers(ingest *in)
{
    pthread_mutex_lock(&in->mu);
    in->stop = 1;
    pthread_cond_broadcast(&in->work_cv);
    pthread_mutex_unlock(&in->mu);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The caller's cancel flag, or pv_db_interrupt: both stop the run alike. */
static int cancelled(const ingest *in)
{
    return (in->opts && in->opts->cancel && *in->opts->cancel) || db_interrupted(in->db);
}

static void progress(ingest *in, uint64_t done)
{
    if (in->opts && in->opts->progress)
        in->opts->progress(in->opts->ctx, done, in->njobs);
}

/* Wait, with in->mu held, until jobs [lo, *hi) are done and it is time to
 * commit them: BATCH of them, the last job, the commit deadline with at
 * least one done, or a cancel. Reports progress (outside the lock) every
 * PROGRESS_SECONDS while it waits. */
static void wait_batch(ingest *in, size_t lo, size_t *hi, double deadline)
{
    double last_progress = 0;
    size_t h = lo;
    for (;;) {
        while (h < in->njobs && h - lo < BATCH && in->jobs[h].done)
            h++;
        if (h == in->njobs || h - lo == BATCH || cancelled(in))
            break;
        double t = now_seconds();
        if (h > lo && t >= deadline)
            break;
        if (t - last_progress >= PROGRESS_SECONDS) {
            size_t done = in->ndone;
            last_progress = t;
            pthread_mutex_unlock(&in->mu);
            progress(in, done);
            pthread_mutex_lock(&in->mu);
            continue; /* more may be done now */
        }
        double until = t + PROGRESS_SECONDS;
        if (h > lo && deadline < until)
            until = deadline;
        struct timespec ts; /* done_cv waits on CLOCK_MONOTONIC, as now_seconds */
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&in->done_cv, &in->mu, &ts);
    }
    *hi = h;
}

static int write_all(ingest *in)
{
    batch b;
    int rc = PV_OK;
    double every = in->opts && in->opts->commit_seconds > 0 ? in->opts->commit_seconds
                                                            : COMMIT_SECONDS;
    memset(&b, 0, sizeof b);
    b.in = in;
    b.newvecs = pv_alloc_array((size_t)BATCH * in->db->emb->dim, sizeof(float));
    if (!b.newvecs)
        return PV_ENOMEM;
    for (size_t lo = 0; lo < in->njobs && rc == 0;) {
        size_t hi;
        pthread_mutex_lock(&in->mu);
        wait_batch(in, lo, &hi, now_seconds() + every);
        pthread_mutex_unlock(&in->mu);
        if (hi == lo) /* cancelled with nothing more done */
            break;
        for (size_t i = lo; i < hi; i++)
            if (in->jobs[i].rc != 0)
                report(in, in->jobs[i].path, in->jobs[i].rc,
                       in->jobs[i].reason);
        b.lo = lo;
        b.hi = hi;
        in->db->errmsg[0] = '\0';
        rc = db_write(in->db, batch_txn, &b);
        if (rc != 0) {
            char cause[sizeof in->db->errmsg];
            snprintf(cause, sizeof cause, "%s", in->db->errmsg[0] ? in->db->errmsg
                                                                   : pv_strerror(rc));
            db_fail(in->db, rc, "committing %zu images (%s ... %s): %s", hi - lo,
                    in->jobs[lo].path, in->jobs[hi - 1].path, cause);
            break;
        }
        in->stats.added += b.delta.added;
        in->stats.updated += b.delta.updated;
        in->stats.moved += b.delta.moved;
        in->stats.unchanged += b.delta.unchanged;
        in->stats.kept += b.delta.added + b.delta.updated + b.delta.moved;
        for (size_t i = lo; i < hi; i++) {
            free(in->jobs[i].vec);
            in->jobs[i].vec = NULL;
        }
        pthread_mutex_lock(&in->mu);
        in->committed = hi;
        size_t done = in->ndone;
        pthread_cond_broadcast(&in->work_cv);
        pthread_mutex_unlock(&in->mu);
        progress(in, done);
        lo = hi;
        if (cancelled(in))
            break;
    }
    free(b.newvecs);
    if (rc == 0 && cancelled(in))
        rc = db_fail(in->db, PV_EINTR, "interrupted: %llu images kept",
                     (unsigned long long)in->stats.kept);
    return rc;
}

/* ---- forgetting files that are gone ---------------------------------------- */

typedef struct gone {
    char **paths;
    size_t n, cap;
} gone;

static int collect_gone(void *ctx, const char *path, size_t len, uint32_t id)
{
    gone *g = ctx;
    char p[PV_MAX_PATH_BYTES + 1];
    (void)id;
    memcpy(p, path, len); /* len <= PV_MAX_PATH_BYTES: store checked it */
    p[len] = 0;
    if (!path_vanished(p))
        return 0;
    if (g->n == g->cap) {
        size_t nc = g->cap ? 2 * g->cap : 64;
        char **np = pv_realloc_array(g->paths, nc, sizeof *np);
        if (!np)
            return PV_ENOMEM;
        g->paths = np;
        g->cap = nc;
    }
    if (!(g->paths[g->n] = strdup(p)))
        return PV_ENOMEM;
    g->n++;
    return 0;
}

/* Stored images under each folder of args whose files are gone: tombstoned
 * in one write transaction, counted in stats.forgotten. */
static int forget_gone(ingest *in, const char *const *args, size_t nargs)
{
    gone g = {NULL, 0, 0};
    store_txn *t = NULL;
    int rc = store_txn_begin(in->db->st, 0, &t);
    for (size_t i = 0; i < nargs && rc == 0; i++) {
        char abs[PATH_MAX + 1];
        struct stat sb;
        if (stat(args[i], &sb) != 0 || !S_ISDIR(sb.st_mode) ||
            db_abs_path(args[i], abs, PATH_MAX) != 0)
            continue;
        size_t l = strlen(abs);
        if (l == 0 || l >= PV_MAX_PATH_BYTES)
            continue;
        if (abs[l - 1] != '/') { /* "dir/" so that dir2/ is not under dir/ */
            abs[l] = '/';
            abs[l + 1] = 0;
        }
        rc = store_paths_with_prefix(t, abs, collect_gone, &g);
    }
    store_txn_abort(t);
    if (rc == 0 && g.n > 0) {
        size_t removed = 0;
        rc = db_remove_paths(in->db, (const char *const *)g.paths, g.n, 0, &removed);
        if (rc == 0)
            in->stats.forgotten += removed;
    }
    for (size_t i = 0; i < g.n; i++)
        free(g.paths[i]);
    free(g.paths);
    return rc;
}

/* ---- OpenBLAS's thread count ---------------------------------------------- */

/* OpenBLAS's thread count is process-wide. While any pv_add with a
 * BLAS-heavy embedder runs, it is 1 (each worker runs its own sgemm; OpenBLAS
 * threads asked for by several workers at once queue and spin beside them);
 * the count from before the first such pv_add comes back when the last one
 * ends. The lock and the count make two handles in two threads safe. */
static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_users, blas_saved;

static void blas_single_begin(void)
{
    pthread_mutex_lock(&blas_mu);
    if (blas_users++ == 0) {
        blas_saved = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_mu);
}

static void blas_single_end(void)
{
    pthread_mutex_lock(&blas_mu);
    if (--blas_users == 0)
        openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_mu);
}

int pv_add(pv_db *db, const char *const *paths, size_t npaths,
           const pv_add_opts *opts, pv_add_stats *stats)
{
    ingest in;
    pthread_t *threads = NULL;
    pthread_condattr_t ca;
    int nthreads = 0, rc = PV_OK, blas = 0;

    if (!db || (!paths && npaths))
        return PV_EINVAL;
    if (embed_is_external(db->emb))
        return db_fail(db, PV_EEMBEDDER, "%s (pixvec import adds more)", EMBED_EXTERNAL_MSG);
    db_interrupt_clear(db);
    if ((rc = db_writer_begin_cancel(db, opts ? opts->cancel : NULL)) != 0)
        return rc;
    memset(&in, 0, sizeof in);
    in.db = db;
    in.opts = opts;
    pthread_mutex_init(&in.mu, NULL);
    pthread_cond_init(&in.work_cv, NULL);
    pthread_condattr_init(&ca); /* wait_batch's deadlines are monotonic */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&in.done_cv, &ca);
    pthread_condattr_destroy(&ca);

    for (size_t i = 0; i < npaths && rc == 0; i++)
        rc = walk_arg(&in, paths[i]);
    if (rc == 0)
        rc = filter_unchanged(&in);
    if (rc != 0)
        goto done;
    progress(&in, 0);
    if (in.njobs > 0) {
        int want = (int)db_threads(opts ? opts->threads : 0);
        const size_t per = (in.njobs + (size_t)want - 1) / (size_t)want; /* jobs a worker */
        in.threads = (unsigned)want;
        in.grab = db->emb->batch ? db->emb->batch : GRAB;
        if (in.grab > GRAB_MAX)
            in.grab = GRAB_MAX;
        if (in.grab > GRAB && per < in.grab) /* a big batch, but every worker busy */
            in.grab = per > GRAB ? (uint32_t)per : GRAB;
        if ((size_t)want > (in.njobs + in.grab - 1) / in.grab)
            want = (int)((in.njobs + in.grab - 1) / in.grab);
        threads = calloc((size_t)want, sizeof *threads);
        if (!threads) {
            rc = PV_ENOMEM;
            goto done;
        }
        if (db->emb->blas_heavy && want > 1) {
            blas_single_begin();
            blas = 1;
        }
        for (; nthreads < want; nthreads++)
            if (pthread_create(&threads[nthreads], NULL, worker, &in) != 0)
                break;
        if (nthreads == 0) {
            rc = db_fail(db, PV_ENOMEM, "could not start worker threads");
            goto done;
        }
        rc = write_all(&in);
    }
    if (rc == 0 && !cancelled(&in))
        rc = forget_gone(&in, paths, npaths);
done:
    stop_workers(&in);
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    if (blas)
        blas_single_end();
    free(threads);
    for (size_t i = 0; i < in.njobs; i++) {
        free(in.jobs[i].path);
        free(in.jobs[i].vec);
    }
    free(in.jobs);
    pthread_mutex_destroy(&in.mu);
    pthread_cond_destroy(&in.work_cv);
    pthread_cond_destroy(&in.done_cv);
    db_writer_end(db);
    if (stats)
        *stats = in.stats;
    return rc;
}
