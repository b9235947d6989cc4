/*
 * search.c - queries and the duplicate scan.
 *
 * Both read one snapshot (a read transaction), so a concurrent `add` in
 * another process never shows them half a batch. Query: embed the image
 * with the database's embedder, then the exact blocked-sgemm scan of
 * index/flat.c over the vector chunks, skipping tombstones. Duplicates: the
 * exact all-pairs scan (upper triangle only) at a threshold, plus every set
 * of items that share a content hash (byte duplicates are grouped even when
 * their vectors are zero), joined by union-find into groups.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "pv_util.h"
#include "vec.h"

int db_vec_set(const pv_db *db, store_txn *t, vec_set *set)
{
    const float *const *ptrs;
    const uint32_t *counts;
    uint32_t n;
    int rc = store_vec_chunks(t, &ptrs, &counts, &n);
    if (rc != 0)
        return rc;
    set->chunks = ptrs;
    set->n = counts;
    set->nchunks = n;
    set->chunk_cap = store_get_schema(db->st)->chunk;
    set->dim = db->emb->dim;
    return PV_OK;
}

int db_keep_live(void *ctx, uint32_t id)
{
    store_item it;
    return store_item_get(ctx, id, &it) == 0 && !(it.flags & STORE_ITEM_DELETED);
}

/* ---- query ------------------------------------------------------------------ */

#define QUERY_DEFAULT_K 10
#define QUERY_DEFAULT_EF 64

/* The hits of one search: exact (flat) or HNSW, in snapshot t. */
static int query_ids(pv_db *db, store_txn *t, const float *q, uint32_t k,
                     const pv_query_opts *o, flat_hit *fh, uint32_t *nh)
{
    vec_set set;
    int rc;
    if (o && o->exact) {
        if ((rc = db_vec_set(db, t, &set)) != 0)
            return rc;
        return flat_topk(&set, q, 1, k, db_keep_live, t, fh, nh);
    } else if (o && o->ivf) {
        return db_ivf_search(db, t, q, k, o->nprobe, fh, nh);
    } else {
        uint32_t ef = o && o->ef > 0 ? (uint32_t)o->ef : QUERY_DEFAULT_EF;
        hnsw_scratch *s = db_scratch(db);
        graph *g = NULL;
        if (!s)
            return PV_ENOMEM;
        if ((rc = graph_open(db->st, t, 0, &db->gcache, &g)) == 0)
            rc = graph_search(g, s, q, k, ef < k ? k : ef, fh, nh);
        graph_close(g);
        return rc;
    }
}

int pv_query_vector(pv_db *db, const float *vec, uint32_t dim,
                    const pv_query_opts *o, pv_hit **hits, size_t *n)
{
    store_txn *t = NULL;
    float *q = NULL;
    flat_hit *fh = NULL;
    pv_hit *out = NULL;
    uint32_t nh = 0, k;
    size_t filled = 0;
    int rc;

    if (!db || !vec || !hits || !n || (o && o->k < 0))
        return PV_EINVAL;
    k = o && o->k > 0 ? (uint32_t)o->k : QUERY_DEFAULT_K;
    if (dim != db->emb->dim)
        return db_fail(db, PV_EEMBEDDER,
                       "query vector has %u dims; this database (%s) has %u",
                       dim, db->emb->desc, db->emb->dim);
    q = pv_alloc_array(dim, sizeof *q);
    fh = pv_alloc_array(k, sizeof *fh);
    if (!q || !fh) {
        rc = PV_ENOMEM;
        goto done;
    }
    memcpy(q, vec, dim * sizeof *q);
    if (isnan(vec_normalize(q, dim))) {
        rc = db_fail(db, PV_ENUMERIC, "query vector holds NaN or infinity");
        goto done;
    }
    if ((rc = store_txn_begin(db->st, 0, &t)) != 0 ||
        (rc = query_ids(db, t, q, k, o, fh, &nh)) != 0)
        goto done;
    out = pv_calloc_array(nh ? nh : 1, sizeof *out);
    if (!out) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (; filled < nh; filled++) {
        store_item it;
        pv_item tmp;
        if (o && o->ids_only) {
            out[filled].id = fh[filled].id;
            out[filled].score = fh[filled].score;
            continue;
        }
        if ((rc = store_item_get(t, fh[filled].id, &it)) != 0 ||
            (rc = db_item_copy(fh[filled].id, &it, &tmp)) != 0)
            goto done;
        out[filled].id = fh[filled].id;
        out[filled].score = fh[filled].score;
        out[filled].path = tmp.path;
    }
    *hits = out;
    *n = nh;
    out = NULL;
done:
    if (rc != 0 && !db->errmsg[0])
        db_fail(db, rc, "query: %s", pv_strerror(rc));
    pv_hits_free(out, filled);
    store_txn_abort(t);
    free(q);
    free(fh);
    return rc;
}

int pv_query_image(pv_db *db, const char *image_path, const pv_query_opts *o,
                   pv_hit **hits, size_t *n)
{
    float *v;
    int rc;
    if (!db || !image_path)
        return PV_EINVAL;
    db->errmsg[0] = 0;
    v = pv_alloc_array(db->emb->dim, sizeof *v);
    if (!v)
        return PV_ENOMEM;
    rc = pv_embed_file(db, image_path, v, db->emb->dim);
    if (rc == 0)
        rc = pv_query_vector(db, v, db->emb->dim, o, hits, n);
    free(v);
    return rc;
}

/* ---- vacuum ----------------------------------------------------------------- */

static int vacuum_txn(pv_db *db, store_txn *t, void *ctx)
{
    hnsw_scratch *s = db_scratch(db);
    graph *g = NULL;
    store_counts c;
    int rc;
    (void)ctx;
    if (!s)
        return PV_ENOMEM;
    if ((rc = store_counts_get(t, &c)) != 0 ||
        (rc = graph_open(db->st, t, 1, NULL, &g)) != 0 || (rc = graph_reset(g)) != 0)
        goto done;
    /* Runs of live ids go in as batches. */
    for (uint32_t id = 0; id < c.next_id && rc == 0;) {
        uint32_t n = 0;
        while (id + n < c.next_id && n < 1024 && db_keep_live(t, id + n))
            n++;
        if (n > 0)
            rc = graph_insert_batch(g, s, id, n, db_threads(0));
        id += n > 0 ? n : 1;
    }
    /* tombstones below the last live id hold empty records: mark them */
    for (uint32_t id = 0; id < graph_state(g)->nodes && rc == 0; id++)
        if (!db_keep_live(t, id))
            rc = graph_delete(g, id);
    if (rc == 0)
        rc = graph_flush(g);
done:
    graph_close(g);
    return rc;
}

int pv_vacuum(pv_db *db)
{
    int rc;
    if (!db)
        return PV_EINVAL;
    if (store_is_rdonly(db->st))
        return db_fail(db, PV_ERDONLY, "database opened read-only");
    rc = db_write(db, vacuum_txn, NULL);
    if (rc != 0)
        db_fail(db, rc, "vacuum: %s", pv_strerror(rc));
    return rc;
}

void pv_hits_free(pv_hit *hits, size_t n)
{
    if (!hits)
        return;
    for (size_t i = 0; i < n; i++)
        free(hits[i].path);
    free(hits);
}

/* ---- duplicates ------------------------------------------------------------- */

typedef struct dup_scan {
    pv_db *db;
    store_txn *t;
    uf u;
} dup_scan;

static int union_hash_peers(void *ctx, const uint32_t *ids, size_t n)
{
    dup_scan *ds = ctx;
    for (size_t i = 1; i < n; i++)
        if (ids[0] < ds->u.n && ids[i] < ds->u.n &&
            db_keep_live(ds->t, ids[0]) && db_keep_live(ds->t, ids[i]))
            uf_union(&ds->u, ids[0], ids[i]);
    return 0;
}

/* Kept member first: most pixels, then oldest, then lowest id. */
static int keep_better(const pv_item *a, const pv_item *b)
{
    uint64_t pa = (uint64_t)a->width * a->height, pb = (uint64_t)b->width * b->height;
    if (pa != pb)
        return pa > pb;
    if (a->mtime_ns != b->mtime_ns)
        return a->mtime_ns < b->mtime_ns;
    return a->id < b->id;
}

static int cmp_group(const void *a, const void *b)
{
    const pv_dup_group *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return x->members[0].item.id < y->members[0].item.id ? -1 : 1;
}

static int build_group(dup_scan *ds, const uint32_t *ids, size_t n,
                       pv_dup_group *g)
{
    const uint32_t dim = ds->db->emb->dim;
    float *kv = NULL, *mv = NULL;
    int rc = PV_OK;
    g->members = pv_calloc_array(n, sizeof *g->members);
    kv = pv_alloc_array(dim, sizeof *kv);
    mv = pv_alloc_array(dim, sizeof *mv);
    if (!g->members || !kv || !mv) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        store_item it;
        if ((rc = store_item_get(ds->t, ids[i], &it)) != 0 ||
            (rc = db_item_copy(ids[i], &it, &g->members[i].item)) != 0)
            goto done;
        g->n = i + 1;
        if (i > 0 && keep_better(&g->members[i].item, &g->members[g->keep].item))
            g->keep = i;
    }
    if ((rc = store_vec_get(ds->t, g->members[g->keep].item.id, kv)) != 0)
        goto done;
    g->all_exact = 1;
    for (size_t i = 0; i < n; i++) {
        pv_dup_member *m = &g->members[i];
        if ((rc = store_vec_get(ds->t, m->item.id, mv)) != 0)
            goto done;
        m->exact = memcmp(m->item.hash, g->members[g->keep].item.hash, 16) == 0;
        m->score = m->exact ? 1.0f : vec_dot(kv, mv, dim);
        if (!m->exact)
            g->all_exact = 0;
    }
done:
    free(kv);
    free(mv);
    return rc;
}

static void dup_group_free(pv_dup_group *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->members[i].item.path);
    free(g->members);
}

int pv_find_dups(pv_db *db, float threshold, pv_dups **out)
{
    dup_scan ds;
    pv_dups *d = NULL;
    flat_pair *pairs = NULL;
    size_t npairs = 0;
    uint32_t *order = NULL, *start = NULL;
    store_counts c;
    vec_set set;
    double t0, flops = 0;
    int rc;

    if (!db || !out || !(threshold > -1.0f && threshold <= 1.0f))
        return PV_EINVAL;
    memset(&ds, 0, sizeof ds);
    ds.db = db;
    d = calloc(1, sizeof *d);
    if (!d)
        return PV_ENOMEM;
    if ((rc = store_txn_begin(db->st, 0, &ds.t)) != 0 ||
        (rc = store_counts_get(ds.t, &c)) != 0 ||
        (rc = db_vec_set(db, ds.t, &set)) != 0 ||
        (rc = uf_init(&ds.u, c.next_id)) != 0)
        goto done;
    t0 = pv_now();
    if ((rc = flat_allpairs(&set, threshold, db_keep_live, ds.t, &pairs,
                            &npairs, &flops)) != 0)
        goto done;
    d->seconds = pv_now() - t0;
    d->gflops = d->seconds > 0 ? flops / d->seconds * 1e-9 : 0;
    d->pairs = npairs;
    for (size_t i = 0; i < npairs; i++)
        uf_union(&ds.u, pairs[i].a, pairs[i].b);
    if ((rc = store_hash_each_multi(ds.t, union_hash_peers, &ds)) != 0)
        goto done;

    /* Bucket ids by root: counting sort into order[], start[root]. */
    order = pv_alloc_array(c.next_id ? c.next_id : 1, sizeof *order);
    start = pv_calloc_array((size_t)c.next_id + 1, sizeof *start);
    if (!order || !start) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (uint32_t id = 0; id < c.next_id; id++)
        start[uf_find(&ds.u, id) + 1]++;
    for (uint32_t r = 0; r < c.next_id; r++)
        start[r + 1] += start[r];
    {
        uint32_t *fill = pv_alloc_array(c.next_id ? c.next_id : 1, sizeof *fill);
        size_t ngroups = 0;
        if (!fill) {
            rc = PV_ENOMEM;
            goto done;
        }
        memcpy(fill, start, (size_t)c.next_id * sizeof *fill);
        for (uint32_t id = 0; id < c.next_id; id++)
            order[fill[uf_find(&ds.u, id)]++] = id;
        free(fill);
        for (uint32_t r = 0; r < c.next_id; r++)
            if (start[r + 1] - start[r] >= 2)
                ngroups++;
        d->groups = pv_calloc_array(ngroups ? ngroups : 1, sizeof *d->groups);
        if (!d->groups) {
            rc = PV_ENOMEM;
            goto done;
        }
        for (uint32_t r = 0; r < c.next_id && rc == 0; r++) {
            size_t n = start[r + 1] - start[r];
            if (n < 2)
                continue;
            rc = build_group(&ds, order + start[r], n, &d->groups[d->ngroups]);
            d->ngroups++;
            d->images += n;
        }
        if (rc != 0)
            goto done;
    }
    qsort(d->groups, d->ngroups, sizeof *d->groups, cmp_group);
    *out = d;
    d = NULL;
done:
    if (rc != 0)
        db_fail(db, rc, "duplicate scan: %s", pv_strerror(rc));
    pv_dups_free(d);
    free(pairs);
    free(order);
    free(start);
    uf_free(&ds.u);
    store_txn_abort(ds.t);
    return rc;
}

void pv_dups_free(pv_dups *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ngroups; i++)
        dup_group_free(&d->groups[i]);
    free(d->groups);
    free(d);
}
