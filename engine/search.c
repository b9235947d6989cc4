/*
 * search.c - queries (the duplicate scan is in dups.c).
 *
 * A query reads one snapshot (a read transaction), so a concurrent `add` in
 * another process never shows it half a batch. Query: embed the image with
 * the database's embedder, then the HNSW graph, the IVF lists, or the exact
 * blocked-sgemm scan of index/flat.c over the vector chunks, skipping
 * tombstones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "pv_util.h"
#include "vec.h"

void db_vec_decoded_free(pv_db *db)
{
    free(db->dec.buf);
    free(db->dec.ptrs);
    free(db->dec.counts);
    memset(&db->dec, 0, sizeof db->dec);
}

/* Every code of snapshot t decoded into db->dec, chunk by chunk as the
 * vectors table would hold them. */
static int decode_all(pv_db *db, store_txn *t)
{
    const store_schema *s = store_get_schema(db->st);
    const codes_view *cv;
    const uint64_t key = store_snapshot(t);
    int rc;
    if (key != 0 && db->dec.key == key)
        return PV_OK;
    db_vec_decoded_free(db);
    if ((rc = db_codes(db, t, &cv)) != 0)
        return rc;
    const uint32_t n = (uint32_t)cv->n, nch = cv->nchunks;
    db->dec.buf = pv_alloc_array((size_t)n * s->dim + 1, sizeof(float));
    db->dec.ptrs = pv_alloc_array(nch + 1, sizeof *db->dec.ptrs);
    db->dec.counts = pv_alloc_array(nch + 1, sizeof *db->dec.counts);
    if (!db->dec.buf || !db->dec.ptrs || !db->dec.counts) {
        db_vec_decoded_free(db);
        return PV_ENOMEM;
    }
    for (uint32_t id = 0; id < n; id++)
        codes_decode(cv, id, s->dim, db->dec.buf + (size_t)id * s->dim);
    for (uint32_t c = 0; c < nch; c++) {
        db->dec.ptrs[c] = db->dec.buf + (size_t)c * cv->C * s->dim;
        db->dec.counts[c] = c + 1 < nch ? cv->C : n - c * cv->C;
    }
    db->dec.n = nch;
    db->dec.key = key;
    return PV_OK;
}

int db_vec_set(pv_db *db, store_txn *t, vec_set *set)
{
    const float *const *ptrs;
    const uint32_t *counts;
    uint32_t n;
    int rc;
    if (store_vec_dropped(t)) {
        if ((rc = decode_all(db, t)) != 0)
            return rc;
        set->chunks = db->dec.ptrs;
        set->n = db->dec.counts;
        set->nchunks = db->dec.n;
        set->chunk_cap = store_get_schema(db->st)->chunk;
        set->dim = db->emb->dim;
        return PV_OK;
    }
    rc = store_vec_chunks(t, &ptrs, &counts, &n);
    if (rc != 0)
        return rc;
    set->chunks = ptrs;
    set->n = counts;
    set->nchunks = n;
    set->chunk_cap = store_get_schema(db->st)->chunk;
    set->dim = db->emb->dim;
    return PV_OK;
}

int db_codes(pv_db *db, store_txn *t, const codes_view **v)
{
    const uint64_t key = store_snapshot(t);
    int rc = PV_OK;
    if (key == 0 || db->codes.key != key) {
        db->codes.key = 0;
        codes_view_free(&db->codes.v);
        rc = codes_view_load(t, store_get_schema(db->st), &db->codes.v);
        if (rc == 0)
            db->codes.key = key;
    }
    *v = &db->codes.v;
    return rc;
}

float db_pair_score(const pv_db *db, const float *a, const float *b)
{
    const embedder *e = db->emb;
    return e->ops->pair_score ? e->ops->pair_score(e, a, b) : vec_dot(a, b, e->dim);
}

int db_is_live(store_txn *t, uint32_t id, int *live)
{
    store_item it;
    int rc = store_item_get(t, id, &it);
    if (rc == 0)
        *live = !(it.flags & STORE_ITEM_DELETED);
    return rc;
}

int db_keep_live(void *ctx, uint32_t id)
{
    db_live *l = ctx;
    int live = 0, rc = db_is_live(l->t, id, &live);
    if (rc != 0 && l->rc == 0)
        l->rc = rc;
    return rc == 0 && live;
}

/* ---- query ------------------------------------------------------------------ */

#define QUERY_DEFAULT_K 10
#define QUERY_DEFAULT_EF 64
/* An embedder with a pair score (photo): this many candidates by cosine
 * (at least k) are scored again and the best k returned. */
#define QUERY_RERANK 64u

static int cmp_hit_desc(const void *x, const void *y)
{
    const flat_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id ? 1 : 0;
}

/* Score the hits again with the embedder's pair score, best first. */
static int rerank(pv_db *db, store_txn *t, const float *q, flat_hit *fh, uint32_t nh)
{
    vec_set set;
    int rc = db_vec_set(db, t, &set);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < nh; i++) {
        const float *v = vec_set_get(&set, fh[i].id);
        fh[i].score = v ? db_pair_score(db, q, v) : -1.0f;
    }
    qsort(fh, nh, sizeof *fh, cmp_hit_desc);
    return PV_OK;
}

/* The candidate list of a search for k: the graph's ef (at least k), and
 * as many candidates of a compact IVF scan are scored again. */
static uint32_t query_ef(const pv_query_opts *o, uint32_t k)
{
    uint32_t ef = o && o->ef > 0 ? (uint32_t)o->ef : QUERY_DEFAULT_EF;
    return ef < k ? k : ef;
}

/* How many of a compact search's best candidates (by their compact
 * scores) are scored again in float32 for k hits: 2k, at least 16, at most
 * the candidate list. Measured on Fashion-MNIST (60,000, int8, k = 10, ef
 * 10-160): recall@10 the same as re-scoring all ef (0.9964 and 0.9965 at ef
 * 160), k alone loses up to 0.016. */
static uint32_t rescore_count(uint32_t k, uint32_t ef)
{
    uint32_t r = k < 8 ? 16 : 2 * k;
    return r > ef ? ef : r;
}

/* The compact copies of snapshot t when every id has one, else NULL. */
static int all_coded(pv_db *db, store_txn *t, const codes_view **cv)
{
    store_counts c;
    int rc = db_codes(db, t, cv);
    if (rc == 0)
        rc = store_counts_get(t, &c);
    if (rc == 0 && ((*cv)->n == 0 || (*cv)->n < c.next_id))
        *cv = NULL;
    return rc;
}

/* The hits of one search: exact (flat), IVF or HNSW, in snapshot t. A
 * search that scored compact codes sets *rescore when its hits (then
 * query_ef of them: fh has room) must be scored again in float32. */
static int query_ids(pv_db *db, store_txn *t, const float *q, uint32_t k,
                     const pv_query_opts *o, flat_hit *fh, uint32_t *nh, int *rescore)
{
    vec_set set;
    const codes_view *cv = NULL;
    const uint32_t ef = query_ef(o, k);
    int rc, scan = o && o->exact;
    if (!scan && o && o->ivf) {
        if ((rc = all_coded(db, t, &cv)) != 0)
            return rc;
        *rescore = cv && !o->no_rerank && !store_vec_dropped(t);
        return db_ivf_search(db, t, q, *rescore ? rescore_count(k, ef) : k, o->nprobe, cv, fh,
                             nh);
    }
    if (!scan) {
        hnsw_scratch *s = db_scratch(db);
        graph *g = NULL;
        if (!s)
            return PV_ENOMEM;
        rc = graph_open(db->st, t, 0, &db->gcache, &g);
        /* k at least the graph's nodes: the search would visit them all. */
        scan = rc == 0 && k >= graph_state(g)->nodes;
        const int again = !(o && o->no_rerank);
        if (rc == 0 && !scan && (rc = db_codes(db, t, &cv)) == 0 &&
            graph_use_codes(g, cv, again)) {
            /* the best rescore_count by the codes, scored again by the graph
             * in float32 (not codes only: then the codes' scores stand) */
            rc = graph_search(g, s, q, again ? rescore_count(k, ef) : k, ef, fh, nh);
        } else if (rc == 0 && !scan) {
            rc = graph_search(g, s, q, k, ef, fh, nh);
        }
        graph_close(g);
        if (rc != 0)
            return rc;
        /* Fewer than k: with k near the number of images the search runs
         * out of nodes it can reach (HNSW's neighbour pruning leaves a few
         * with no link to them, 163 of 70,000 in one test). The scan of
         * every vector answers instead, so k <= images always gives k. */
        scan = scan || *nh < k;
        if (!scan)
            return PV_OK;
    }
    db_live live = {t, PV_OK};
    if ((rc = db_vec_set(db, t, &set)) != 0)
        return rc;
    rc = flat_topk(&set, q, 1, k, db_keep_live, &live, fh, nh);
    return rc ? rc : live.rc;
}

int pv_query_vector(pv_db *db, const float *vec, uint32_t dim,
                    const pv_query_opts *o, pv_hit **hits, size_t *n)
{
    store_txn *t = NULL;
    float *q = NULL;
    flat_hit *fh = NULL;
    pv_hit *out = NULL;
    uint32_t nh = 0, k, kk;
    size_t filled = 0;
    int rc, rescore = 0;

    if (!db || !vec || !hits || !n || (o && o->k < 0))
        return PV_EINVAL;
    k = o && o->k > 0 ? (uint32_t)o->k : QUERY_DEFAULT_K;
    if (dim != db->emb->dim)
        return db_fail(db, PV_EEMBEDDER,
                       "query vector has %u dims; this database (%s) has %u",
                       dim, db->emb->desc, db->emb->dim);
    kk = db->emb->ops->pair_score && k < QUERY_RERANK ? QUERY_RERANK : k;
    q = pv_alloc_array(dim, sizeof *q);
    fh = pv_alloc_array(query_ef(o, kk), sizeof *fh); /* a compact search's candidates */
    if (!q || !fh) {
        rc = PV_ENOMEM;
        goto done;
    }
    memcpy(q, vec, dim * sizeof *q);
    if (isnan(vec_normalize(q, dim))) {
        rc = db_fail(db, PV_ENUMERIC, "query vector holds NaN or infinity");
        goto done;
    }
    if ((rc = db_read_begin(db, &t)) != 0 ||
        (rc = query_ids(db, t, q, kk, o, fh, &nh, &rescore)) != 0)
        goto done;
    if ((db->emb->ops->pair_score || rescore) && (rc = rerank(db, t, q, fh, nh)) != 0)
        goto done;
    if (nh > k)
        nh = k;
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
    if ((rc = db_read_check(db, t)) != 0)
        goto done;
    *hits = out;
    *n = nh;
    out = NULL;
done:
    if (rc != 0 && (rc == PV_ECORRUPT || !db->errmsg[0]))
        db_fail_txn(db, t, rc, "reading the index");
    pv_hits_free(out, filled);
    store_txn_abort(t);
    free(q);
    free(fh);
    return rc;
}

/* The query vector made by embed (pv_embed_file, pv_embed_text) from what,
 * then pv_query_vector. */
static int query_embedded(pv_db *db, int (*embed)(pv_db *, const char *, float *, uint32_t),
                          const char *what, const pv_query_opts *o, pv_hit **hits, size_t *n)
{
    float *v;
    int rc;
    if (!db || !what)
        return PV_EINVAL;
    db->errmsg[0] = 0;
    if (!(v = pv_alloc_array(db->emb->dim, sizeof *v)))
        return PV_ENOMEM;
    rc = embed(db, what, v, db->emb->dim);
    if (rc == 0)
        rc = pv_query_vector(db, v, db->emb->dim, o, hits, n);
    free(v);
    return rc;
}

int pv_query_image(pv_db *db, const char *image_path, const pv_query_opts *o,
                   pv_hit **hits, size_t *n)
{
    return query_embedded(db, pv_embed_file, image_path, o, hits, n);
}

int pv_embed_text(pv_db *db, const char *text, float *vec, uint32_t dim)
{
    const embedder *e;
    char err[512] = "";
    int rc;
    if (!db || !text || !vec)
        return PV_EINVAL;
    e = db->emb;
    db->errmsg[0] = 0;
    if (!e->ops->embed_text)
        return db_fail(db, PV_EINVAL,
                       "this database's embedder (%s) has no text tower: text search needs "
                       "a clip database (pixvec init DB --embedder clip --model DIR)",
                       e->desc);
    if (dim != e->dim)
        return db_fail(db, PV_EINVAL, "vector of %u dims asked; the text's has %u", dim, e->dim);
    if ((rc = e->ops->embed_text(e, text, strlen(text), vec, err, sizeof err)) != 0)
        return db_fail(db, rc, "text query: %s", err[0] ? err : pv_strerror(rc));
    return PV_OK;
}

int pv_query_text(pv_db *db, const char *text, const pv_query_opts *o, pv_hit **hits,
                  size_t *n)
{
    return query_embedded(db, pv_embed_text, text, o, hits, n);
}

/* ---- vacuum ----------------------------------------------------------------- */

static int vacuum_txn(pv_db *db, store_txn *t, void *ctx)
{
    hnsw_scratch *s = db_scratch(db);
    graph *g = NULL;
    store_counts c;
    int rc, live = 0;
    (void)ctx;
    if (!s)
        return PV_ENOMEM;
    if ((rc = store_counts_get(t, &c)) != 0 ||
        (rc = graph_open(db->st, t, 1, NULL, &g)) != 0 || (rc = graph_reset(g)) != 0)
        goto done;
    /* Runs of live ids go in as batches. */
    for (uint32_t id = 0; id < c.next_id && rc == 0;) {
        uint32_t n = 0;
        while (id + n < c.next_id && n < 1024 && (rc = db_is_live(t, id + n, &live)) == 0 &&
               live)
            n++;
        if (rc == 0 && n > 0)
            rc = graph_insert_batch(g, s, id, n, db_threads(0));
        if (rc == 0 && db_interrupted(db))
            rc = PV_EINTR; /* db_write aborts: the old graph stays */
        id += n > 0 ? n : 1;
    }
    /* tombstones below the last live id hold empty records: mark them */
    for (uint32_t id = 0; id < graph_state(g)->nodes && rc == 0; id++)
        if ((rc = db_is_live(t, id, &live)) == 0 && !live)
            rc = graph_delete(g, id);
    if (rc == 0)
        rc = graph_flush(g);
done:
    if (rc == PV_ECORRUPT)
        db_fail_txn(db, t, rc, "vacuum");
    graph_close(g);
    return rc;
}

int pv_vacuum(pv_db *db)
{
    int rc;
    if (!db)
        return PV_EINVAL;
    db_interrupt_clear(db);
    if ((rc = db_writer_begin(db)) != 0)
        return rc;
    rc = db_write(db, vacuum_txn, NULL);
    db_writer_end(db);
    if (rc != 0 && rc != PV_ECORRUPT) /* vacuum_txn said which record */
        db_fail(db, rc, "%s", pv_strerror(rc));
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
