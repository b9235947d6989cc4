/*
 * cluster.c - k-means over a database's vectors (engine room): the stored
 * clustering of `pixvec cluster` and the IVF lists of `pixvec ivf train`.
 *
 * Both train index/kmeans.c on the live vectors (all of them, or a uniform
 * sample of `sample` per cluster drawn with the seed) outside any write
 * transaction, then store the result in one write transaction:
 *   - the clustering as one meta record, "cluster" (layout below); the
 *     members of each cluster are not stored: pv_cluster_get assigns every
 *     live item when asked (one sgemm pass over the vector chunks), so
 *     items added later are included;
 *   - the IVF lists as ivf_centroids (list -> centroid) and ivf_lists (list
 *     -> member ids), both emptied and rewritten in the same transaction as
 *     meta's ivf_nlist, so a reader sees the old lists or the new. New
 *     items are listed by the ingest batch that stores them (db_ivf_add).
 * The two are kept apart because they answer different questions: a
 * clustering for people (k about 100, standardised features if asked), IVF
 * lists for search (nlist about sqrt(n), raw cosine space).
 *
 * "cluster" record, little-endian:
 *   u32 magic "CLS1", u32 k, u32 dim, u32 flags (bit 0: standardised),
 *   u32 iters, u32 0, f64 inertia, u64 items, u64 trained,
 *   [f32 mean[dim], f32 inv_std[dim]] if standardised, f32 centroids[k*dim]
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "ivf.h"
#include "kmeans.h"
#include "pv_util.h"

#define CLUSTER_MAGIC 0x31534c43u /* "CLS1" */
#define CLUSTER_HDR 40
#define DEFAULT_ITERS 20
#define DEFAULT_SAMPLE 256
#define DEFAULT_SEED 1234
#define DEFAULT_NPROBE 8

/* ---- training --------------------------------------------------------------- */

/* The live ids of snapshot t. */
static int live_ids(store_txn *t, uint32_t **ids, size_t *n)
{
    store_counts c;
    int rc = store_counts_get(t, &c);
    size_t m = 0;
    if (rc != 0)
        return rc;
    *ids = pv_alloc_array(c.next_id ? c.next_id : 1, sizeof **ids);
    if (!*ids)
        return PV_ENOMEM;
    for (uint32_t id = 0; id < c.next_id; id++) {
        int live;
        if ((rc = db_is_live(t, id, &live)) != 0)
            return rc;
        if (live)
            (*ids)[m++] = id;
    }
    *n = m;
    return PV_OK;
}

/* Train k-means with o on the live vectors (a sample of o->sample per
 * cluster at most). */
static int train(pv_db *db, const pv_cluster_opts *o, int standardize,
                 kmeans_model *m, pv_cluster_stats *st)
{
    const uint32_t dim = db->emb->dim;
    store_txn *t = NULL;
    uint32_t *ids = NULL;
    float *x = NULL;
    size_t n = 0, nt;
    vec_set set;
    int rc;

    if (!o || o->k < 1 || (uint32_t)o->k > KMEANS_MAX_K)
        return db_fail(db, PV_EINVAL, "k must be between 1 and %u", KMEANS_MAX_K);
    if ((rc = db_read_begin(db, &t)) != 0)
        goto done;
    if ((rc = live_ids(t, &ids, &n)) != 0 || (rc = db_vec_set(db, t, &set)) != 0) {
        db_fail_txn(db, t, rc, "reading the vectors to cluster");
        goto done;
    }
    if ((size_t)o->k > n) {
        rc = db_fail(db, PV_EINVAL, "k = %d is more than the %zu images in the database",
                     o->k, n);
        goto done;
    }
    uint64_t seed = o->seed ? o->seed : DEFAULT_SEED;
    int per = o->sample == 0 ? DEFAULT_SAMPLE : o->sample;
    nt = n;
    if (per > 0 && (size_t)per * (size_t)o->k < n)
        nt = (size_t)per * (size_t)o->k;
    /* A uniform sample: the first nt of a partial Fisher-Yates shuffle. */
    for (size_t i = 0; i < nt && nt < n; i++) {
        size_t j = i + (size_t)(pv_rand64(&seed) % (n - i));
        uint32_t tmp = ids[i];
        ids[i] = ids[j];
        ids[j] = tmp;
    }
    if (!(x = pv_alloc_array(nt, (size_t)dim * sizeof *x))) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        const float *v = vec_set_get(&set, ids[i]);
        if (!v) {
            rc = db_fail(db, PV_ECORRUPT, "item %u has no vector", ids[i]);
            goto done;
        }
        memcpy(x + i * dim, v, dim * sizeof *x);
    }
    if ((rc = db_read_check(db, t)) != 0)
        goto done;
    store_txn_abort(t); /* the training needs no snapshot */
    t = NULL;

    kmeans_params kp;
    kmeans_defaults(&kp, (uint32_t)o->k);
    kp.max_iter = o->iters > 0 ? (uint32_t)o->iters : DEFAULT_ITERS;
    kp.tol = o->tol < 0 ? 0 : o->tol > 0 ? o->tol : kp.tol;
    kp.seed = seed;
    kp.max_points_per_centroid = 0; /* sampled above */
    kp.standardize = standardize;
    kp.cancel = &db->interrupt; /* pv_db_interrupt ends the iterations */
    if ((rc = kmeans_train(x, nt, dim, &kp, m)) != 0) {
        db_fail(db, rc, "k-means: %s", pv_strerror(rc));
        goto done;
    }
    if (st) {
        st->items = n;
        st->trained = nt;
        st->inertia = m->inertia;
        st->iters = (int)m->iters;
        st->reseeded = (int)m->reseeded;
    }
done:
    store_txn_abort(t);
    free(ids);
    free(x);
    return rc;
}

/* ---- the stored clustering -------------------------------------------------- */

static int cluster_txn(pv_db *db, store_txn *t, void *ctx)
{
    const kmeans_model *m = ctx;
    const size_t fl = (size_t)m->dim * sizeof(float);
    const int std_ = m->mean != NULL;
    size_t len = CLUSTER_HDR + (std_ ? 2 * fl : 0) + (size_t)m->k * fl;
    uint8_t *b = malloc(len), *p;
    uint64_t u;
    int rc;
    (void)db;
    if (!b)
        return PV_ENOMEM;
    pv_st32(b, CLUSTER_MAGIC);
    pv_st32(b + 4, m->k);
    pv_st32(b + 8, m->dim);
    pv_st32(b + 12, std_ ? 1u : 0u);
    pv_st32(b + 16, m->iters);
    pv_st32(b + 20, 0);
    memcpy(b + 24, &m->inertia, 8);
    u = m->ntrain;
    memcpy(b + 32, &u, 8);
    p = b + CLUSTER_HDR;
    if (std_) {
        memcpy(p, m->mean, fl);
        memcpy(p + fl, m->scale, fl);
        p += 2 * fl;
    }
    memcpy(p, m->centroids, (size_t)m->k * fl);
    rc = store_meta_put_blob(t, "cluster", b, len);
    free(b);
    return rc;
}

int pv_cluster_train(pv_db *db, const pv_cluster_opts *o, pv_cluster_stats *st)
{
    kmeans_model m = {0};
    int rc;
    if (!db)
        return PV_EINVAL;
    db_interrupt_clear(db);
    if ((rc = db_writer_begin(db)) != 0)
        return rc;
    if ((rc = train(db, o, o && o->standardize, &m, st)) != 0) {
        db_writer_end(db);
        return rc;
    }
    rc = db_write(db, cluster_txn, &m);
    db_writer_end(db);
    if (rc != 0)
        db_fail(db, rc, "storing the clustering: %s", pv_strerror(rc));
    kmeans_model_free(&m);
    return rc;
}

/* The stored clustering of snapshot t, checked (the record may be
 * unaligned): its magic, k in 1..KMEANS_MAX_K, the database's dim, flags
 * bit 0 only, the size its k and flags make, finite numbers. PV_ENOTFOUND
 * if there is none; PV_ECORRUPT with store_corrupt's message otherwise.
 * *b and *len give the record. */
static int cluster_record(pv_db *db, store_txn *t, const uint8_t **b, size_t *len)
{
    const void *v;
    int rc = store_meta_get_blob(t, "cluster", &v, len);
    if (rc != 0)
        return rc;
    const uint8_t *p = v;
    if (*len < CLUSTER_HDR || pv_ld32(p) != CLUSTER_MAGIC)
        return store_corrupt(t, "meta cluster: %zu bytes without the CLS1 header", *len);
    uint32_t k = pv_ld32(p + 4), dim = pv_ld32(p + 8), flags = pv_ld32(p + 12);
    const size_t fl = (size_t)db->emb->dim * sizeof(float);
    const size_t nf = ((flags & 1) ? 2 : 0) + (size_t)k;
    if (dim != db->emb->dim || k == 0 || k > KMEANS_MAX_K || (flags & ~1u) ||
        *len != CLUSTER_HDR + nf * fl)
        return store_corrupt(t, "meta cluster: k %u, dim %u (the database's: %u), flags "
                                "0x%x in %zu bytes",
                             k, dim, db->emb->dim, flags, *len);
    for (size_t i = 0; i < nf * db->emb->dim; i++) {
        float f;
        memcpy(&f, p + CLUSTER_HDR + i * sizeof f, sizeof f);
        if (!isfinite(f))
            return store_corrupt(t, "meta cluster: value %zu is not finite", i);
    }
    *b = p;
    return PV_OK;
}

int db_cluster_k(pv_db *db, store_txn *t, uint32_t *k)
{
    const uint8_t *b = NULL;
    size_t n;
    int rc = cluster_record(db, t, &b, &n);
    *k = 0;
    if (rc == PV_ENOTFOUND)
        return PV_OK;
    if (rc == 0)
        *k = pv_ld32(b + 4);
    return rc;
}

/* The stored model of snapshot t, copied out (the record may be unaligned). */
static int load_model(pv_db *db, store_txn *t, kmeans_model *m)
{
    const uint8_t *b = NULL;
    size_t len;
    int rc = cluster_record(db, t, &b, &len);
    memset(m, 0, sizeof *m);
    if (rc == PV_ENOTFOUND)
        return db_fail(db, rc, "no clustering stored: run `pixvec cluster DB -k K` first");
    if (rc != 0)
        return db_fail_txn(db, t, rc, "the stored clustering is damaged");
    uint32_t k = pv_ld32(b + 4), dim = pv_ld32(b + 8), std_ = pv_ld32(b + 12) & 1;
    const size_t fl = (size_t)dim * sizeof(float);
    m->k = k;
    m->dim = dim;
    m->iters = pv_ld32(b + 16);
    memcpy(&m->inertia, b + 24, 8);
    b += CLUSTER_HDR;
    m->centroids = pv_alloc_array(k, fl);
    if (std_) {
        m->mean = malloc(fl);
        m->scale = malloc(fl);
    }
    if (!m->centroids || (std_ && (!m->mean || !m->scale))) {
        kmeans_model_free(m);
        return PV_ENOMEM;
    }
    if (std_) {
        memcpy(m->mean, b, fl);
        memcpy(m->scale, b + fl, fl);
        b += 2 * fl;
    }
    memcpy(m->centroids, b, (size_t)k * fl);
    return PV_OK;
}

void pv_clustering_free(pv_clustering *c)
{
    if (!c)
        return;
    for (int j = 0; c->clusters && j < c->k; j++) {
        for (size_t i = 0; i < c->clusters[j].n; i++)
            free(c->clusters[j].members[i].path);
        free(c->clusters[j].members);
    }
    free(c->clusters);
    free(c);
}

static int member_cmp(const void *a, const void *b)
{
    const pv_cluster_member *x = a, *y = b;
    if (x->dist2 != y->dist2)
        return x->dist2 < y->dist2 ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int pv_cluster_get(pv_db *db, pv_clustering **out)
{
    store_txn *t = NULL;
    kmeans_model m = {0};
    pv_clustering *c = NULL;
    uint32_t *lab = NULL;
    float *d2 = NULL;
    size_t *cap = NULL;
    vec_set set;
    int rc;
    if (!db || !out)
        return PV_EINVAL;
    if ((rc = db_read_begin(db, &t)) != 0 || (rc = load_model(db, t, &m)) != 0)
        goto done;
    if ((rc = db_vec_set(db, t, &set)) != 0) {
        db_fail_txn(db, t, rc, "cluster");
        goto done;
    }
    c = calloc(1, sizeof *c);
    lab = pv_alloc_array(set.chunk_cap, sizeof *lab);
    d2 = pv_alloc_array(set.chunk_cap, sizeof *d2);
    cap = pv_calloc_array(m.k, sizeof *cap);
    if (!c || !lab || !d2 || !cap || !(c->clusters = pv_calloc_array(m.k, sizeof *c->clusters))) {
        rc = PV_ENOMEM;
        goto done;
    }
    c->k = (int)m.k;
    c->standardized = m.mean != NULL;
    for (uint32_t ch = 0; ch < set.nchunks; ch++) {
        if ((rc = kmeans_assign(&m, set.chunks[ch], set.n[ch], lab, d2)) != 0)
            goto done;
        for (uint32_t i = 0; i < set.n[ch]; i++) {
            uint32_t id = ch * set.chunk_cap + i;
            store_item it;
            if ((rc = store_item_get(t, id, &it)) != 0) {
                db_fail_txn(db, t, rc, "cluster");
                goto done;
            }
            if (it.flags & STORE_ITEM_DELETED)
                continue;
            pv_cluster *cl = &c->clusters[lab[i]];
            if (cl->n == cap[lab[i]]) {
                size_t nc = cap[lab[i]] ? 2 * cap[lab[i]] : 16;
                pv_cluster_member *nm = pv_realloc_array(cl->members, nc, sizeof *nm);
                if (!nm) {
                    rc = PV_ENOMEM;
                    goto done;
                }
                cl->members = nm;
                cap[lab[i]] = nc;
            }
            pv_cluster_member *mb = &cl->members[cl->n];
            if (!(mb->path = malloc((size_t)it.path_len + 1))) {
                rc = PV_ENOMEM;
                goto done;
            }
            memcpy(mb->path, it.path, it.path_len);
            mb->path[it.path_len] = 0;
            mb->id = id;
            mb->dist2 = d2[i];
            cl->n++;
            c->items++;
            c->inertia += d2[i];
        }
    }
    for (uint32_t j = 0; j < m.k; j++)
        if (c->clusters[j].n > 1) /* an empty cluster has no array: no qsort(NULL) */
            qsort(c->clusters[j].members, c->clusters[j].n, sizeof(pv_cluster_member),
                  member_cmp);
    if ((rc = db_read_check(db, t)) != 0)
        goto done;
    *out = c;
    c = NULL;
done:
    if (rc != 0 && !db->errmsg[0])
        db_fail(db, rc, "%s", pv_strerror(rc));
    store_txn_abort(t);
    kmeans_model_free(&m);
    pv_clustering_free(c);
    free(lab);
    free(d2);
    free(cap);
    return rc;
}

int pv_cluster_of(pv_db *db, const char *image_path, int *cluster, float *dist2)
{
    store_txn *t = NULL;
    kmeans_model m = {0};
    float *v = NULL, d = 0;
    uint32_t lab = 0;
    int rc;
    if (!db || !image_path || !cluster)
        return PV_EINVAL;
    if (!(v = pv_alloc_array(db->emb->dim, sizeof *v)))
        return PV_ENOMEM;
    if ((rc = pv_embed_file(db, image_path, v, db->emb->dim)) != 0)
        goto done;
    if ((rc = store_txn_begin(db->st, 0, &t)) != 0 || (rc = load_model(db, t, &m)) != 0)
        goto done;
    if ((rc = kmeans_assign(&m, v, 1, &lab, &d)) != 0 || (rc = db_read_check(db, t)) != 0)
        goto done;
    *cluster = (int)lab;
    if (dist2)
        *dist2 = d;
done:
    store_txn_abort(t);
    kmeans_model_free(&m);
    free(v);
    return rc;
}

/* ---- IVF lists ---------------------------------------------------------------- */

/* The centroids of snapshot t copied into one array (nlist x dim). */
static int ivf_model(store_txn *t, uint32_t dim, uint32_t nlist, kmeans_model *m)
{
    memset(m, 0, sizeof *m);
    m->k = nlist;
    m->dim = dim;
    if (!(m->centroids = pv_alloc_array(nlist, (size_t)dim * sizeof(float))))
        return PV_ENOMEM;
    for (uint32_t l = 0; l < nlist; l++) {
        const void *p;
        size_t n;
        int rc = store_blob_get(t, STORE_IVF_CENTROIDS, l, &p, &n);
        if (rc == PV_ENOTFOUND || (rc == 0 && n != (size_t)dim * sizeof(float)))
            rc = store_corrupt(t, "ivf centroid %u: %s", l,
                               rc ? "missing" : "not dim floats");
        if (rc != 0) {
            kmeans_model_free(m);
            return rc;
        }
        memcpy(m->centroids + (size_t)l * dim, p, n);
    }
    return PV_OK;
}

int db_ivf_nlist(store_txn *t, uint32_t *nlist)
{
    uint64_t v = 0, ncent = 0;
    int rc = store_meta_get_u64(t, "ivf_nlist", &v);
    *nlist = 0;
    if (rc == PV_ENOTFOUND)
        return PV_OK; /* absent: no IVF index */
    if (rc != 0)
        return rc;
    /* The lists and the centroids are written in one transaction with
     * ivf_nlist: as many centroids as it says, and no more than k-means
     * makes (callers allocate by it). */
    if ((rc = store_entries(t, STORE_IVF_CENTROIDS, &ncent)) != 0)
        return rc;
    if (v > KMEANS_MAX_K || ncent != v)
        return store_corrupt(t, "meta ivf_nlist: %llu lists, but %llu centroids",
                             (unsigned long long)v, (unsigned long long)ncent);
    *nlist = (uint32_t)v;
    return PV_OK;
}

/* List ids first..first+n-1 (vectors vecs) under their nearest centroid;
 * only the live ones if live_only. */
static int list_vectors(store_txn *t, const kmeans_model *m, uint32_t first,
                        uint32_t n, const float *vecs, int live_only)
{
    uint32_t *lab = pv_alloc_array(n ? n : 1, sizeof *lab);
    int rc, live = 1;
    if (!lab)
        return PV_ENOMEM;
    rc = kmeans_assign(m, vecs, n, lab, NULL);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        if (!live_only || ((rc = db_is_live(t, first + i, &live)) == 0 && live))
            rc = store_list_add(t, lab[i], first + i);
    free(lab);
    return rc;
}

int db_ivf_add(pv_db *db, store_txn *t, uint32_t first, uint32_t n,
               const float *vecs)
{
    kmeans_model m;
    uint32_t nlist;
    int rc = db_ivf_nlist(t, &nlist);
    if (rc != 0 || nlist == 0 || n == 0)
        return rc;
    if ((rc = ivf_model(t, db->emb->dim, nlist, &m)) != 0)
        return rc;
    rc = list_vectors(t, &m, first, n, vecs, 0);
    kmeans_model_free(&m);
    return rc;
}

static int ivf_txn(pv_db *db, store_txn *t, void *ctx)
{
    const kmeans_model *m = ctx;
    const size_t fl = (size_t)m->dim * sizeof(float);
    vec_set set;
    int rc;
    if ((rc = store_blob_drop(t, STORE_IVF_CENTROIDS)) != 0 ||
        (rc = store_blob_drop(t, STORE_IVF_LISTS)) != 0)
        return rc;
    for (uint32_t l = 0; l < m->k; l++)
        if ((rc = store_blob_put(t, STORE_IVF_CENTROIDS, l,
                                 m->centroids + (size_t)l * m->dim, fl)) != 0)
            return rc;
    /* Every live item now, including any added since the sample was read. */
    if ((rc = db_vec_set(db, t, &set)) != 0)
        return rc;
    for (uint32_t ch = 0; ch < set.nchunks && rc == 0; ch++)
        rc = list_vectors(t, m, ch * set.chunk_cap, set.n[ch], set.chunks[ch], 1);
    if (rc == 0)
        rc = store_meta_put_u64(t, "ivf_nlist", m->k);
    return rc;
}

int pv_ivf_train(pv_db *db, const pv_cluster_opts *o, pv_cluster_stats *st)
{
    kmeans_model m = {0};
    int rc;
    if (!db)
        return PV_EINVAL;
    db_interrupt_clear(db);
    if ((rc = db_writer_begin(db)) != 0)
        return rc;
    if ((rc = train(db, o, 0, &m, st)) != 0) {
        db_writer_end(db);
        return rc;
    }
    rc = db_write(db, ivf_txn, &m);
    db_writer_end(db);
    if (rc != 0)
        db_fail(db, rc, "storing the IVF lists: %s", pv_strerror(rc));
    kmeans_model_free(&m);
    return rc;
}

/* ---- IVF search ---------------------------------------------------------------- */

typedef struct ivf_ctx {
    store_txn *t;
    vec_set set;
    const float **rows; /* centroid pointers (the map's) */
    uint32_t nlist;
    graph *g;           /* for tombstones, or NULL */
    const codes_view *cv; /* compact copies scored instead of vectors, or NULL */
} ivf_ctx;

static const float *ivf_centroid(void *ctx, uint32_t l)
{
    return ((ivf_ctx *)ctx)->rows[l];
}

static int ivf_list_each(void *ctx, uint32_t l,
                         int (*fn)(void *fctx, const void *ids, size_t n), void *fctx)
{
    return store_list_each(((ivf_ctx *)ctx)->t, l, fn, fctx);
}

static const float *ivf_vec(void *ctx, uint32_t id)
{
    return vec_set_get(&((ivf_ctx *)ctx)->set, id);
}

static const void *ivf_code(void *ctx, uint32_t id)
{
    return codes_at(((ivf_ctx *)ctx)->cv, id);
}

static int ivf_deleted(void *ctx, uint32_t id)
{
    return graph_is_deleted(((ivf_ctx *)ctx)->g, id);
}

/* Centroid l of nlist: dim finite floats (a NaN would make every list
 * equally far, and the probe answer nothing). */
static int centroid_check(store_txn *t, uint32_t l, uint32_t nlist, const void *p, size_t n,
                          uint32_t dim)
{
    if (l >= nlist || n != (size_t)dim * sizeof(float))
        return store_corrupt(t, "ivf centroid %u: %zu bytes (%u lists of %u floats)", l, n,
                             nlist, dim);
    for (uint32_t i = 0; i < dim; i++) {
        float f;
        memcpy(&f, (const uint8_t *)p + (size_t)i * sizeof f, sizeof f);
        if (!isfinite(f))
            return store_corrupt(t, "ivf centroid %u: value %u is not finite", l, i);
    }
    return PV_OK;
}

static int collect_row(void *ctx, uint32_t key, const void *p, size_t n)
{
    ivf_ctx *c = ctx;
    int rc = centroid_check(c->t, key, c->nlist, p, n, c->set.dim);
    if (rc == 0)
        c->rows[key] = p;
    return rc;
}

int db_ivf_search(pv_db *db, store_txn *t, const float *q, uint32_t k, int nprobe,
                  const codes_view *cv, flat_hit *out, uint32_t *n)
{
    ivf_ctx c = {.t = t};
    uint32_t nlist;
    store_counts counts;
    int rc;
    if ((rc = db_ivf_nlist(t, &nlist)) != 0 || (rc = store_counts_get(t, &counts)) != 0)
        return rc;
    if (nlist == 0)
        return db_fail(db, PV_ENOTFOUND,
                       "no IVF lists: run `pixvec ivf train DB --nlist N` first");
    c.nlist = nlist;
    if ((rc = db_vec_set(db, t, &c.set)) != 0)
        return rc;
    /* The centroid pointers, looked up once per read snapshot: a snapshot
     * with the same transaction id and map reuses them. */
    const uint64_t key = store_snapshot(t); /* 0: unnamed, nothing reused */
    if (key != 0 && db->ivfcache.key == key && db->ivfcache.nlist == nlist) {
        c.rows = db->ivfcache.rows;
    } else {
        db->ivfcache.key = 0;
        free(db->ivfcache.rows);
        if (!(db->ivfcache.rows = pv_calloc_array(nlist, sizeof *c.rows)))
            return PV_ENOMEM;
        c.rows = db->ivfcache.rows;
        rc = store_blob_each(t, STORE_IVF_CENTROIDS, collect_row, &c);
        for (uint32_t l = 0; l < nlist && rc == 0; l++)
            if (!c.rows[l])
                rc = store_corrupt(t, "ivf centroid %u: missing", l);
        if (rc == 0) {
            db->ivfcache.key = key;
            db->ivfcache.nlist = nlist;
        }
    }
    if (rc == 0 && counts.deleted > 0)
        rc = graph_open(db->st, t, 0, &db->gcache, &c.g);
    if (rc == 0) {
        ivf_io io = {&c,
                     db->emb->dim,
                     nlist,
                     ivf_centroid,
                     ivf_list_each,
                     ivf_vec,
                     c.g ? ivf_deleted : NULL,
                     QUANT_F32,
                     NULL,
                     NULL};
        if (cv) {
            c.cv = cv;
            io.code_kind = codes_quant_kind(cv);
            io.code_i8 = &cv->q8;
            io.code = ivf_code;
        }
        rc = ivf_search(&io, q, nprobe > 0 ? (uint32_t)nprobe : DEFAULT_NPROBE, k,
                        out, n);
    }
    graph_close(c.g);
    return rc;
}

/* ---- verification --------------------------------------------------------------- */

typedef struct seen_ctx {
    uint8_t *seen;
    uint32_t next_id, dup, beyond;
} seen_ctx;

static int mark_ids(void *ctx, const void *ids, size_t n)
{
    seen_ctx *s = ctx;
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        memcpy(&id, (const uint8_t *)ids + i * sizeof id, sizeof id);
        if (id >= s->next_id)
            s->beyond++;
        else if (s->seen[id]++)
            s->dup++;
    }
    return PV_OK;
}

int db_ivf_verify(pv_db *db, store_txn *t, uint32_t next_id)
{
    uint32_t nlist;
    uint64_t ncent = 0, nentries = 0, listed = 0;
    int rc = db_ivf_nlist(t, &nlist);
    if (rc != 0)
        return db_fail_txn(db, t, rc, "IVF");
    if (nlist == 0)
        return PV_OK;
    if ((rc = store_entries(t, STORE_IVF_CENTROIDS, &ncent)) != 0 ||
        (rc = store_entries(t, STORE_IVF_LISTS, &nentries)) != 0)
        return rc;
    if (ncent != nlist)
        return db_fail(db, PV_ECORRUPT, "IVF: %llu centroids for %u lists",
                       (unsigned long long)ncent, nlist);
    seen_ctx s = {pv_calloc_array(next_id ? next_id : 1, 1), next_id, 0, 0};
    if (!s.seen)
        return PV_ENOMEM;
    for (uint32_t l = 0; l < nlist && rc == 0; l++) {
        const void *p;
        size_t n;
        if ((rc = store_blob_get(t, STORE_IVF_CENTROIDS, l, &p, &n)) != 0) {
            rc = db_fail(db, PV_ECORRUPT, "IVF: centroid %u is missing", l);
            break;
        }
        if ((rc = centroid_check(t, l, nlist, p, n, db->emb->dim)) != 0) {
            db_fail_txn(db, t, rc, "IVF");
            break;
        }
        if ((rc = store_list_each(t, l, mark_ids, &s)) != 0)
            db_fail_txn(db, t, rc, "IVF: list %u", l);
    }
    for (uint32_t id = 0; id < next_id && rc == 0; id++) {
        int live = 0;
        listed += s.seen[id] != 0;
        if (!s.seen[id] && (rc = db_is_live(t, id, &live)) != 0)
            db_fail_txn(db, t, rc, "IVF");
        else if (!s.seen[id] && live)
            rc = db_fail(db, PV_ECORRUPT, "IVF: live item %u is in no list", id);
    }
    if (rc == 0 && (s.dup || s.beyond || listed + s.dup + s.beyond != nentries))
        rc = db_fail(db, PV_ECORRUPT,
                     "IVF: %u ids listed twice, %u beyond the last id, %llu entries "
                     "outside lists 0..%u",
                     s.dup, s.beyond,
                     (unsigned long long)(nentries - listed - s.dup - s.beyond), nlist - 1);
    free(s.seen);
    return rc;
}
