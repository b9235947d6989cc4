/*
 * dups.c - pv_find_dups: near-duplicate groups, at any size.
 *
 * Three steps, in one read snapshot:
 *  1. Candidate pairs at or above the threshold. Exact mode: the blocked
 *     sgemm all-pairs scan of index/flat.c (upper triangle). Approximate
 *     mode, the default above PV_DUPS_EXACT_MAX items: every scanned item
 *     asks the HNSW graph for its nearest neighbours (a self-join, as FAISS's
 *     range search or a k-NN graph build does), searching level 0 from its
 *     own node, so a dense cluster elsewhere cannot trap the search. It runs
 *     on every core, each thread in its own read transaction (begun at the
 *     start: a writer committing meanwhile can only hide an image removed
 *     in between from a thread; newer ids are ignored). Scores are exact dot
 *     products of the stored vectors, so approximation only costs recall,
 *     never a wrong score. An item whose whole neighbour list is above the
 *     threshold may have more partners: it asks again with twice as many
 *     (and twice the ef), until its list ends below the threshold or holds
 *     every item. Byte-identical files (same XXH3-128) are always paired
 *     (score 1), even when their vectors are zero, as a star around the
 *     set's first file. Pairs are kept from threshold - DUPS_EPS.
 *  2. Groups around representatives, so that groups never chain (A~B, B~C,
 *     A and C unrelated is not one group): images are taken in the keep
 *     order (preferred folder first, files before links, then the keep rule,
 *     then id; a file a kept link names is kept too); an image
 *     not yet grouped with partners not yet grouped becomes a
 *     representative and those partners its members, together with the
 *     partners of its partners that score >= threshold with it (the graph
 *     lists only a few dozen of a set of identical images, and byte copies
 *     are a star). Every member thus scores >= threshold with its
 *     representative, which is kept. This is the greedy "star" clustering
 *     of a similarity graph (leader clustering ordered by a priority); an
 *     image with a higher priority than its representative is never a
 *     member, since it would have been taken first.
 *  3. --across A B: only pairs with one image under A and one under B are
 *     candidates, A's images are the only representatives, and B's
 *     near-copies of them are the ones listed to drop: the train/test leak
 *     check.
 * The nearest other image's similarity of every scanned image comes out of
 * step 1 for free (exact mode tracks the row and column maxima of the score
 * blocks) and serves --fraction (the threshold that flags that fraction)
 * and the histogram.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_int.h"
#include "pv_util.h"
#include "vec.h"

#define DUPS_DEFAULT_NEIGHBOURS 32u
/* With a pair score (photo), the exact scan scores every pair above the
 * candidate floor, a few per cent of all pairs on photographs (52,000 of
 * 1.5 million on the bench's set, 73 s), where the graph's 32 neighbours of
 * each image give the same groups in 17 s: the default is approximate
 * from this many images. */
#define DUPS_EXACT_MAX_SCORED 1000u
/* A unit vector's dot product with its own copy can come out 0.99999994:
 * pairs are kept from threshold - DUPS_EPS, so threshold 1 finds them. */
#define DUPS_EPS 1e-6f
#define SIDE_A 1u
#define SIDE_B 2u

/* What step 2 needs of every id, read once. */
typedef struct dmeta {
    uint64_t pixels, size;
    int64_t mtime_ns;
    uint8_t hash[16];
    uint8_t prefer; /* under the preferred folder */
    uint8_t link;   /* the stored path is a symbolic link */
} dmeta;

typedef struct pair_list {
    flat_pair *p;
    size_t n, cap;
} pair_list;

typedef struct dscan {
    pv_db *db;
    store_txn *t;
    vec_set set;
    uint32_t n;         /* ids 0..n-1 */
    uint8_t *side;      /* n entries: 0 not scanned (dead, or outside --across'
                         * folders), SIDE_A, SIDE_B; flat_allpairs reads it */
    dmeta *meta;        /* n entries */
    int across, keep;
    float thr;
    pair_list pairs;
    float *best;        /* n entries: nearest other image's score */
    uint64_t scanned;
    uint64_t involved;  /* images in the scan (across: A's and B's) */
} dscan;

static int pairs_push(pair_list *l, uint32_t a, uint32_t b, float s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        flat_pair *np = pv_realloc_array(l->p, cap, sizeof *np);
        if (!np)
            return PV_ENOMEM;
        l->p = np;
        l->cap = cap;
    }
    l->p[l->n++] = (flat_pair){a < b ? a : b, a < b ? b : a, s};
    return PV_OK;
}

/* ---- step 0: who is scanned -------------------------------------------- */

/* Is path under dir (dir ends without '/'; "/" itself holds everything)? */
static size_t under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return 1;
    return strncmp(path, dir, n) == 0 && path[n] == '/' ? n : 0;
}

static int load_meta(dscan *ds, const pv_dups_opts *o)
{
    char a[PATH_MAX] = "", b[PATH_MAX] = "", pref[PATH_MAX] = "";
    uint64_t na = 0, npref = 0;
    int rc;
    if (ds->across && (db_abs_path(o->across_a, a, sizeof a) != 0 ||
                       db_abs_path(o->across_b, b, sizeof b) != 0))
        return db_fail(ds->db, PV_EINVAL, "--across: %s or %s: bad path", o->across_a,
                       o->across_b);
    if (ds->across && strcmp(a, b) == 0)
        return db_fail(ds->db, PV_EINVAL, "--across: %s is given as both sets", a);
    if (o->prefer && o->prefer[0] && db_abs_path(o->prefer, pref, sizeof pref) != 0)
        return db_fail(ds->db, PV_EINVAL, "--prefer %s: bad path", o->prefer);
    ds->meta = pv_calloc_array(ds->n ? ds->n : 1, sizeof *ds->meta);
    ds->side = pv_calloc_array(ds->n ? ds->n : 1, 1);
    ds->best = pv_alloc_array(ds->n ? ds->n : 1, sizeof *ds->best);
    if (!ds->meta || !ds->side || !ds->best)
        return PV_ENOMEM;
    for (uint32_t id = 0; id < ds->n; id++) {
        store_item it;
        dmeta *m = &ds->meta[id];
        ds->best[id] = -2.0f;
        if ((rc = store_item_get(ds->t, id, &it)) != 0)
            return db_fail_txn(ds->db, ds->t, rc, "duplicate scan");
        if (it.flags & STORE_ITEM_DELETED)
            continue;
        char path[PV_MAX_PATH_BYTES + 1];
        /* store_item_get checked path_len <= PV_MAX_PATH_BYTES */
        memcpy(path, it.path, it.path_len);
        path[it.path_len] = '\0';
        m->pixels = (uint64_t)it.width * it.height;
        m->size = it.size;
        m->mtime_ns = it.mtime_ns;
        memcpy(m->hash, it.hash, 16);
        m->prefer = pref[0] && under(path, pref);
        npref += m->prefer;
        struct stat lsb;
        m->link = lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode);
        uint8_t side = SIDE_A;
        if (ds->across) {
            /* Nested folders (A = data, B = data/test): the deeper wins. */
            size_t ua = under(path, a), ub = under(path, b);
            side = ua > ub ? SIDE_A : ub > ua ? SIDE_B : 0;
        }
        ds->side[id] = side;
        ds->scanned += ds->across ? side == SIDE_B : side != 0;
        na += side == SIDE_A;
        ds->involved += side != 0;
    }
    /* A typo in a folder name would otherwise report "no leaks". */
    if (ds->across && (na == 0 || ds->scanned == 0))
        return db_fail(ds->db, PV_EINVAL, "--across: no stored image lies under %s",
                       na == 0 ? a : b);
    /* The same typo in --prefer would silently keep the wrong copies. */
    if (pref[0] && npref == 0)
        return db_fail(ds->db, PV_EINVAL, "--prefer: no stored image lies under %s", pref);
    return PV_OK;
}

static int keep_scanned(void *ctx, uint32_t id)
{
    const dscan *ds = ctx;
    return id < ds->n && ds->side[id] != 0;
}

/* ---- step 1a: exact ----------------------------------------------------- */

static int exact_pairs(dscan *ds, float thr, double *flops)
{
    flat_pair *p = NULL;
    size_t np = 0;
    int rc = flat_allpairs_cancel(&ds->set, thr, keep_scanned, ds,
                                  ds->across ? ds->side : NULL, ds->best, &p, &np, flops,
                                  &ds->db->interrupt);
    if (rc == 0) {
        ds->pairs.p = p;
        ds->pairs.n = ds->pairs.cap = np;
    } else {
        free(p);
    }
    return rc;
}

/* ---- step 1b: approximate, the graph's neighbours ---------------------- */

typedef struct aworker {
    dscan *ds;
    uint32_t lo, hi;     /* ids this thread scans */
    uint32_t k, ef;
    float thr;           /* pairs kept at or above (2: none, nearest only) */
    int grow;            /* a full list above thr asks again with twice as many */
    pair_list out;
    int rc;
    char err[256];       /* a damaged record's words, from the thread's txn */
} aworker;

static void *approx_run(void *arg)
{
    aworker *w = arg;
    dscan *ds = w->ds;
    store_txn *t = NULL;
    graph *g = NULL;
    hnsw_scratch *s = hnsw_scratch_new();
    hnsw_hit *hits = NULL;
    uint32_t cap = 0;
    codes_view cv = {0};
    int rc = s ? PV_OK : PV_ENOMEM;
    /* The thread's own transaction, with no cache: nothing it learns about
     * its snapshot is written where another thread reads. */
    if (rc == 0 && (rc = store_txn_begin(ds->db->st, 0, &t)) == 0)
        rc = graph_open(ds->db->st, t, 0, NULL, &g);
    /* Compact copies: the graph walks on them (fewer bytes a candidate),
     * every hit scored again in float32. */
    if (rc == 0 && (rc = codes_view_load(t, store_get_schema(ds->db->st), &cv)) == 0)
        graph_use_codes(g, &cv, 1);
    for (uint32_t id = w->lo; id < w->hi && rc == 0; id++) {
        if ((id & 255) == 0 && db_interrupted(ds->db)) {
            rc = PV_EINTR;
            break;
        }
        /* Across: B's images look for A's (a pair is found from its B end). */
        if (!ds->side[id] || (ds->across && ds->side[id] != SIDE_B))
            continue;
        const float *q = vec_set_get(&ds->set, id);
        uint32_t k = w->k, nh = 0;
        if (!q)
            continue;
        if (id >= graph_state(g)->nodes) {
            /* Not a node of this thread's (newer) graph: removed and vacuumed
             * since the scan's snapshot, or a live item the graph lacks. */
            int live = 0;
            if ((rc = db_is_live(t, id, &live)) == 0 && live)
                rc = store_corrupt(t, "live item %u is not in the HNSW graph (%u nodes)", id,
                                   graph_state(g)->nodes);
            continue;
        }
        for (;;) {
            if (k + 1 > cap) {
                hnsw_hit *nh2 = pv_realloc_array(hits, k + 1, sizeof *hits);
                if (!nh2) {
                    rc = PV_ENOMEM;
                    break;
                }
                hits = nh2;
                cap = k + 1;
            }
            /* ef grows with k: a doubled list keeps the first one's ratio. */
            uint64_t efk = (uint64_t)w->ef * (k / w->k);
            uint32_t ef = efk > k + 1 ? (uint32_t)(efk < HNSW_MAX_EF ? efk : HNSW_MAX_EF) : k + 1;
            /* From the image's own node: the search starts at its answer, so
             * a dense cluster elsewhere in the graph cannot trap it. */
            if ((rc = graph_search_from(g, s, id, q, k + 1, ef, hits, &nh)) != 0)
                break;

            /* A full list whose last hit is still a pair: there may be more
             * partners beyond it. Ask again with twice as many. */
            if (!w->grow || nh < k + 1 || !(hits[nh - 1].score >= w->thr) || k >= ds->n)
                break;
            k *= 2;
        }
        for (uint32_t i = 0; i < nh && rc == 0; i++) {
            uint32_t b = hits[i].id;
            if (b == id || b >= ds->n || !ds->side[b] ||
                (ds->across && ds->side[b] == ds->side[id]))
                continue;
            if (hits[i].score > ds->best[id])
                ds->best[id] = hits[i].score; /* only this thread writes id */
            if (hits[i].score >= w->thr)
                rc = pairs_push(&w->out, id, b, hits[i].score);
        }
    }
    w->rc = rc;
    if (rc == PV_ECORRUPT)
        snprintf(w->err, sizeof w->err, "%s", store_txn_errmsg(t));
    free(hits);
    graph_close(g);
    codes_view_free(&cv);
    store_txn_abort(t);
    hnsw_scratch_free(s);
    return NULL;
}

static int cmp_pair(const void *x, const void *y)
{
    const flat_pair *a = x, *b = y;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    if (a->b != b->b)
        return a->b < b->b ? -1 : 1;
    return 0;
}

/* Sort pairs and drop repeats (a pair is found from both of its ends). */
static void pairs_unique(pair_list *l)
{
    size_t out = 0;
    if (l->n < 2)
        return;
    qsort(l->p, l->n, sizeof *l->p, cmp_pair);
    for (size_t i = 0; i < l->n; i++)
        if (out == 0 || cmp_pair(&l->p[out - 1], &l->p[i]) != 0)
            l->p[out++] = l->p[i];
    l->n = out;
}

static int approx_pairs(dscan *ds, float thr, uint32_t k, uint32_t ef, int grow)
{
    unsigned nt = db_threads(0);
    aworker *w = NULL;
    pthread_t *th = NULL;
    unsigned started = 0;
    int rc = PV_OK;
    if (nt > 16)
        nt = 16;
    w = pv_calloc_array(nt, sizeof *w);
    th = pv_calloc_array(nt, sizeof *th);
    if (!w || !th) {
        rc = PV_ENOMEM;
        goto done;
    }
    /* Interleaved slices would balance better, but contiguous ones keep
     * each thread's best[] writes apart; the ids are spread evenly. */
    for (unsigned i = 0; i < nt; i++) {
        w[i].ds = ds;
        w[i].lo = (uint32_t)((uint64_t)ds->n * i / nt);
        w[i].hi = (uint32_t)((uint64_t)ds->n * (i + 1) / nt);
        w[i].k = k;
        w[i].ef = ef;
        w[i].thr = thr;
        w[i].grow = grow;
    }
    for (unsigned i = 1; i < nt; i++) {
        if (pthread_create(&th[i], NULL, approx_run, &w[i]) != 0) {
            rc = PV_ENOMEM;
            break;
        }
        started = i;
    }
    if (rc == 0)
        approx_run(&w[0]);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < nt && rc == 0; i++)
        if ((rc = w[i].rc) == PV_ECORRUPT)
            db_fail(ds->db, rc, "duplicate scan: %s",
                    w[i].err[0] ? w[i].err : pv_strerror(rc));
    for (unsigned i = 0; i < nt && rc == 0; i++)
        for (size_t j = 0; j < w[i].out.n && rc == 0; j++)
            rc = pairs_push(&ds->pairs, w[i].out.p[j].a, w[i].out.p[j].b, w[i].out.p[j].score);
    if (rc == 0)
        pairs_unique(&ds->pairs);
done:
    for (unsigned i = 0; w && i < nt; i++)
        free(w[i].out.p);
    free(w);
    free(th);
    return rc;
}

/* ---- step 1c: the embedder's pair score ---------------------------------- */

/* An embedder with a pair score (photo) finds candidates by cosine; each
 * candidate pair is scored again by it, on every core (the score reads
 * only the two stored vectors). */
typedef struct vworker {
    dscan *ds;
    size_t lo, hi;
} vworker;

static void *verify_run(void *arg)
{
    vworker *w = arg;
    const embedder *e = w->ds->db->emb;
    const vec_set *set = &w->ds->set;
    for (size_t i = w->lo; i < w->hi; i++) {
        flat_pair *p = &w->ds->pairs.p[i];
        const float *a = vec_set_get(set, p->a), *b = vec_set_get(set, p->b);
        p->score = a && b ? e->ops->pair_score(e, a, b) : -1.0f;
    }
    return NULL;
}

/* Score every candidate pair; each scanned image's nearest score becomes
 * its best pair score (one with no candidate keeps its nearest cosine,
 * below the candidate floor). */
static int verify_pairs(dscan *ds)
{
    unsigned nt = db_threads(0), started = 0;
    vworker w[16];
    pthread_t th[16];
    if (nt > 16)
        nt = 16;
    if (nt > ds->pairs.n / 16 + 1) /* at least 16 pairs a thread */
        nt = (unsigned)(ds->pairs.n / 16 + 1);
    for (unsigned i = 0; i < nt; i++)
        w[i] = (vworker){ds, ds->pairs.n * i / nt, ds->pairs.n * (i + 1) / nt};
    for (unsigned i = 1; i < nt; i++) {
        if (pthread_create(&th[i], NULL, verify_run, &w[i]) != 0)
            break;
        started = i;
    }
    /* threads that did not start: this one does their share */
    verify_run(&w[0]);
    for (unsigned i = started + 1; i < nt; i++)
        verify_run(&w[i]);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < ds->pairs.n; i++) {
        const flat_pair *p = &ds->pairs.p[i];
        ds->best[p->a] = -2.0f;
        ds->best[p->b] = -2.0f;
    }
    for (size_t i = 0; i < ds->pairs.n; i++) {
        const flat_pair *p = &ds->pairs.p[i];
        if (p->score > ds->best[p->a])
            ds->best[p->a] = p->score;
        if (p->score > ds->best[p->b])
            ds->best[p->b] = p->score;
    }
    return PV_OK;
}

/* Keep the pairs at or above thr. */
static void pairs_keep_above(pair_list *l, float thr)
{
    size_t out = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->p[i].score >= thr)
            l->p[out++] = l->p[i];
    l->n = out;
}

/* ---- --fraction --------------------------------------------------------- */

static int cmp_float_desc(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

/* The threshold at which `fraction` of the scanned images (across: of B's)
 * have a partner: the matching quantile of the nearest scores. */
static int fraction_threshold(dscan *ds, float fraction, float *thr)
{
    float *v = pv_alloc_array(ds->n ? ds->n : 1, sizeof *v);
    size_t m = 0;
    if (!v)
        return PV_ENOMEM;
    for (uint32_t id = 0; id < ds->n; id++)
        if (ds->side[id] && (!ds->across || ds->side[id] == SIDE_B) && ds->best[id] > -2.0f)
            v[m++] = ds->best[id];
    if (m == 0) {
        free(v);
        return db_fail(ds->db, PV_EINVAL, "--fraction: no image has a neighbour to score");
    }
    qsort(v, m, sizeof *v, cmp_float_desc);
    size_t idx = (size_t)ceil((double)fraction * (double)m);
    idx = idx == 0 ? 0 : idx - 1;
    if (idx >= m)
        idx = m - 1;
    *thr = v[idx];
    if (*thr <= -1.0f)
        *thr = nextafterf(-1.0f, 1.0f);
    free(v);
    return PV_OK;
}

/* ---- step 2: groups around representatives ------------------------------ */

/* A set of byte-identical files: each paired with the set's first scanned
 * file (across: its first A file), a star rather than every pair, so 50,000
 * copies of a placeholder cost 50,000 pairs, not 1.25e9. make_groups reaches
 * the rest of the star through its second hop. */
static int hash_pairs(void *ctx, const uint32_t *ids, size_t n)
{
    dscan *ds = ctx;
    int rc = PV_OK;
    size_t hub = n;
    for (size_t i = 0; i < n && hub == n; i++)
        if (ids[i] < ds->n && ds->side[ids[i]] && (!ds->across || ds->side[ids[i]] == SIDE_A))
            hub = i;
    for (size_t j = 0; hub < n && j < n && rc == 0; j++) {
        uint32_t a = ids[hub], b = ids[j];
        if (j == hub || b >= ds->n || !ds->side[b] || (ds->across && ds->side[b] == ds->side[a]))
            continue;
        rc = pairs_push(&ds->pairs, a, b, 1.0f);
    }
    return rc;
}

/* An image's place in the keep order, with the rule folded into `rule` so
 * the comparison needs no context: preferred folder first, across' A before
 * B, a file before a symbolic link (a link is never kept over the file it
 * names), then the rule, then most pixels, the biggest file, the oldest (a
 * byte copy is usually younger), the lowest id. */
typedef struct okey {
    uint8_t prefer, side, link;
    int64_t rule; /* oldest: mtime; newest: -mtime; largest: 0 */
    uint64_t pixels, size;
    int64_t mtime_ns;
    uint32_t id;
} okey;

static okey okey_of(const dscan *ds, uint32_t id)
{
    const dmeta *m = &ds->meta[id];
    okey k = {m->prefer, ds->side[id], m->link, 0, m->pixels, m->size, m->mtime_ns, id};
    if (ds->keep == PV_KEEP_OLDEST)
        k.rule = m->mtime_ns;
    else if (ds->keep == PV_KEEP_NEWEST)
        k.rule = m->mtime_ns == INT64_MIN ? INT64_MAX : -m->mtime_ns;
    return k;
}

static int cmp_okey(const void *x, const void *y)
{
    const okey *a = x, *b = y;
    if (a->prefer != b->prefer)
        return a->prefer ? -1 : 1;
    if (a->side != b->side)
        return a->side < b->side ? -1 : 1;
    if (a->link != b->link)
        return a->link < b->link ? -1 : 1;
    if (a->rule != b->rule)
        return a->rule < b->rule ? -1 : 1;
    if (a->pixels != b->pixels)
        return a->pixels > b->pixels ? -1 : 1;
    if (a->size != b->size)
        return a->size > b->size ? -1 : 1;
    if (a->mtime_ns != b->mtime_ns)
        return a->mtime_ns < b->mtime_ns ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id ? 1 : 0;
}

static int cmp_member(const void *x, const void *y)
{
    const pv_dup_member *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->item.id < b->item.id ? -1 : 1;
}

static int cmp_group(const void *x, const void *y)
{
    const pv_dup_group *a = x, *b = y;
    if (a->n != b->n)
        return a->n < b->n ? 1 : -1;
    return a->members[0].item.id < b->members[0].item.id ? -1 : 1;
}

static int member_fill(dscan *ds, uint32_t id, uint32_t rep, float score, pv_dup_member *m)
{
    store_item it;
    int rc = store_item_get(ds->t, id, &it);
    if (rc == 0)
        rc = db_item_copy(id, &it, &m->item);
    if (rc != 0)
        return rc;
    m->exact = memcmp(ds->meta[id].hash, ds->meta[rep].hash, 16) == 0;
    m->score = m->exact ? 1.0f : score;
    m->keep = id == rep || ds->meta[id].prefer;
    return PV_OK;
}

/* A file that a kept member names too (a kept link's target, under the
 * --prefer folder say) is kept: moving it would leave the kept link
 * pointing at nothing. Links themselves may go: moving a link moves only
 * the link. Returns how many members this kept. */
static size_t keep_link_targets(pv_dup_group *g)
{
    size_t kept = 0;
    for (size_t i = 0; i < g->n; i++) {
        pv_dup_member *m = &g->members[i];
        struct stat ms, ks;
        if (m->keep || lstat(m->item.path, &ms) != 0 || S_ISLNK(ms.st_mode))
            continue;
        for (size_t j = 0; j < g->n && !m->keep; j++)
            if (g->members[j].keep && stat(g->members[j].item.path, &ks) == 0 &&
                ks.st_dev == ms.st_dev && ks.st_ino == ms.st_ino)
                m->keep = 1;
        kept += m->keep;
    }
    return kept;
}

static void group_free(pv_dup_group *g)
{
    for (size_t i = 0; g && i < g->n; i++)
        free(g->members[i].item.path);
    if (g)
        free(g->members);
}

static int make_groups(dscan *ds, pv_dups *d)
{
    uint32_t *deg = NULL, *order = NULL, *cand = NULL;
    size_t *adj_start = NULL; /* 2 * pairs may pass 2^32 at a low threshold */
    okey *keys = NULL;
    uint8_t *taken = NULL;
    uint32_t *seen = NULL; /* rep + 1: already scored for that representative */
    struct nb {
        uint32_t id;
        float score;
    } *adj = NULL;
    float *cscore = NULL;
    size_t ng = 0, cap = 0, no = 0;
    int rc = PV_OK;
    const size_t n = ds->n;

    /* Adjacency lists (CSR) of the pairs, both directions. */
    deg = pv_calloc_array(n + 1, sizeof *deg);
    adj_start = pv_calloc_array(n + 1, sizeof *adj_start);
    adj = pv_alloc_array(2 * ds->pairs.n + 1, sizeof *adj);
    order = pv_alloc_array(n + 1, sizeof *order);
    taken = pv_calloc_array(n + 1, 1);
    seen = pv_calloc_array(n + 1, sizeof *seen);
    cand = pv_alloc_array(n + 1, sizeof *cand);
    cscore = pv_alloc_array(n + 1, sizeof *cscore);
    if (!deg || !adj_start || !adj || !order || !taken || !seen || !cand || !cscore) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < ds->pairs.n; i++) {
        deg[ds->pairs.p[i].a]++;
        deg[ds->pairs.p[i].b]++;
    }
    for (size_t i = 0; i < n; i++)
        adj_start[i + 1] = adj_start[i] + deg[i];
    memset(deg, 0, (n + 1) * sizeof *deg);
    for (size_t i = 0; i < ds->pairs.n; i++) {
        const flat_pair *p = &ds->pairs.p[i];
        adj[adj_start[p->a] + deg[p->a]++] = (struct nb){p->b, p->score};
        adj[adj_start[p->b] + deg[p->b]++] = (struct nb){p->a, p->score};
    }
    for (uint32_t id = 0; id < n; id++)
        if (ds->side[id] && adj_start[id + 1] > adj_start[id])
            no++;
    if (!(keys = pv_alloc_array(no ? no : 1, sizeof *keys))) {
        rc = PV_ENOMEM;
        goto done;
    }
    no = 0;
    for (uint32_t id = 0; id < n; id++)
        if (ds->side[id] && adj_start[id + 1] > adj_start[id])
            keys[no++] = okey_of(ds, id);
    qsort(keys, no, sizeof *keys, cmp_okey);
    for (size_t i = 0; i < no; i++)
        order[i] = keys[i].id;

    for (size_t oi = 0; oi < no && rc == 0; oi++) {
        uint32_t rep = order[oi], nc = 0;
        if (taken[rep] || (ds->across && ds->side[rep] != SIDE_A))
            continue;
        for (size_t j = adj_start[rep]; j < adj_start[rep + 1]; j++) {
            uint32_t b = adj[j].id;
            if (!taken[b]) {
                /* A pair can be listed twice (a byte duplicate whose
                 * vectors also matched): taken[] marks it once. */
                taken[b] = 1;
                cand[nc] = b;
                cscore[nc++] = adj[j].score;
            }
        }
        /* Second hop: partners of partners, scored against the
         * representative. The graph lists at most a few dozen of a set of
         * identical images (its link pruning keeps one of each direction),
         * and byte copies are paired as a star: both would otherwise leave
         * most of a big cluster ungrouped. */
        const float *rv = vec_set_get(&ds->set, rep);
        for (size_t j = adj_start[rep]; rv && j < adj_start[rep + 1]; j++) {
            const uint32_t p = adj[j].id;
            for (size_t h = adj_start[p]; h < adj_start[p + 1]; h++) {
                const uint32_t q = adj[h].id;
                if (q == rep || taken[q] || seen[q] == rep + 1 ||
                    (ds->across && ds->side[q] == ds->side[rep]))
                    continue;
                seen[q] = rep + 1;
                const float *qv = vec_set_get(&ds->set, q);
                int same = memcmp(ds->meta[q].hash, ds->meta[rep].hash, 16) == 0;
                float sc = same ? 1.0f : qv ? db_pair_score(ds->db, rv, qv) : -1.0f;
                if (sc >= ds->thr) {
                    taken[q] = 1;
                    cand[nc] = q;
                    cscore[nc++] = sc;
                }
            }
        }
        if (nc == 0)
            continue;
        taken[rep] = 1;
        if (ng == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            pv_dup_group *gg = pv_realloc_array(d->groups, ncap, sizeof *gg);
            if (!gg) {
                rc = PV_ENOMEM;
                break;
            }
            d->groups = gg;
            cap = ncap;
        }
        pv_dup_group *g = &d->groups[ng];
        memset(g, 0, sizeof *g);
        g->members = pv_calloc_array((size_t)nc + 1, sizeof *g->members);
        if (!g->members) {
            rc = PV_ENOMEM;
            break;
        }
        ng++;
        rc = member_fill(ds, rep, rep, 1.0f, &g->members[0]);
        g->n = rc == 0;
        g->all_exact = 1;
        g->weakest = 1.0f;
        for (uint32_t c = 0; c < nc && rc == 0; c++) {
            pv_dup_member *m = &g->members[g->n];
            if ((rc = member_fill(ds, cand[c], rep, cscore[c], m)) != 0)
                break;
            g->n++;
            g->all_exact &= m->exact;
            if (m->score < g->weakest)
                g->weakest = m->score;
            d->dropped += !m->keep;
            d->exact_images += m->exact;
        }
        if (rc == 0) {
            d->dropped -= keep_link_targets(g);
            qsort(g->members + 1, g->n - 1, sizeof *g->members, cmp_member);
        }
        d->images += g->n;
    }
    d->ngroups = ng;
    if (rc == 0 && ng > 1)
        qsort(d->groups, ng, sizeof *d->groups, cmp_group);
done:
    free(deg);
    free(keys);
    free(adj_start);
    free(adj);
    free(order);
    free(taken);
    free(seen);
    free(cand);
    free(cscore);
    return rc;
}

/* ---- the whole ------------------------------------------------------------ */

int pv_find_dups(pv_db *db, const pv_dups_opts *opts, pv_dups **out)
{
    pv_dups_opts o = {0};
    dscan ds;
    pv_dups *d = NULL;
    store_counts c;
    double t0, flops = 0;
    int rc;

    if (opts)
        o = *opts;
    if (!db || !out)
        return PV_EINVAL;
    memset(&ds, 0, sizeof ds);
    db->errmsg[0] = 0;
    db_interrupt_clear(db);
    ds.db = db;
    ds.across = o.across_a || o.across_b;
    ds.keep = o.keep;
    if (ds.across && !(o.across_a && o.across_b))
        return db_fail(db, PV_EINVAL, "--across needs two folders");
    if (o.keep < PV_KEEP_LARGEST || o.keep > PV_KEEP_NEWEST || o.mode < PV_DUPS_AUTO ||
        o.mode > PV_DUPS_APPROX)
        return db_fail(db, PV_EINVAL, "duplicate scan: unknown mode or keep rule");
    if (o.fraction != 0 && !(o.fraction > 0 && o.fraction <= 1))
        return db_fail(db, PV_EINVAL, "--fraction takes a number in (0, 1]");
    float thr = o.threshold != 0 ? o.threshold : db->emb->dups_threshold;
    if (!(thr > -1.0f && thr <= 1.0f))
        return db_fail(db, PV_EINVAL, "--threshold takes a cosine in (-1, 1]");
    uint32_t k = o.neighbours ? o.neighbours : DUPS_DEFAULT_NEIGHBOURS;
    uint32_t ef = o.ef ? o.ef : 2 * k;

    d = calloc(1, sizeof *d);
    if (!d)
        return PV_ENOMEM;
    if ((rc = db_read_begin(db, &ds.t)) != 0)
        goto done;
    if ((rc = store_counts_get(ds.t, &c)) != 0 || (rc = db_vec_set(db, ds.t, &ds.set)) != 0) {
        db_fail_txn(db, ds.t, rc, "duplicate scan");
        goto done;
    }
    ds.n = c.next_id;
    if ((rc = load_meta(&ds, &o)) != 0)
        goto done;
    d->scanned = ds.scanned;
    d->approximate = o.mode == PV_DUPS_APPROX ||
                     (o.mode == PV_DUPS_AUTO &&
                      ds.involved > (db->emb->ops->pair_score ? DUPS_EXACT_MAX_SCORED
                                                              : PV_DUPS_EXACT_MAX));
    t0 = pv_now();
    if (db->emb->ops->pair_score) {
        /* Candidates by cosine (a full neighbour list is not asked again:
         * at the candidate floor most lists are full), then the pair
         * score, then the threshold (--fraction's from the pair scores). */
        float cthr = db->emb->candidate_cosine < thr ? db->emb->candidate_cosine : thr;
        if (o.fraction > 0)
            cthr = db->emb->candidate_cosine;
        if ((rc = d->approximate ? approx_pairs(&ds, cthr - DUPS_EPS, k, ef, 0)
                                 : exact_pairs(&ds, cthr - DUPS_EPS, &flops)) != 0 ||
            (rc = verify_pairs(&ds)) != 0 ||
            (o.fraction > 0 && (rc = fraction_threshold(&ds, o.fraction, &thr)) != 0))
            goto done;
        pairs_keep_above(&ds.pairs, thr - DUPS_EPS);
    } else if (o.fraction > 0) {
        /* First the nearest scores alone, then the threshold, then pairs. */
        /* A threshold of 2 keeps no pair: the first pass only scores
         * every image's nearest neighbour. Twice the time, no more memory. */
        if ((rc = d->approximate ? approx_pairs(&ds, 2.0f, k, ef, 1)
                                 : exact_pairs(&ds, 2.0f, NULL)) != 0 ||
            (rc = fraction_threshold(&ds, o.fraction, &thr)) != 0)
            goto done;
        free(ds.pairs.p);
        memset(&ds.pairs, 0, sizeof ds.pairs);
        rc = d->approximate ? approx_pairs(&ds, thr - DUPS_EPS, k, ef, 1)
                            : exact_pairs(&ds, thr - DUPS_EPS, &flops);
    } else if (d->approximate) {
        rc = approx_pairs(&ds, thr - DUPS_EPS, k, ef, 1);
    } else {
        rc = exact_pairs(&ds, thr - DUPS_EPS, &flops);
    }
    if (rc != 0)
        goto done;
    d->seconds = pv_now() - t0;
    d->gflops = d->seconds > 0 ? flops / d->seconds * 1e-9 : 0;
    d->threshold = thr;
    if ((rc = store_hash_each_multi(ds.t, hash_pairs, &ds)) != 0)
        goto done;
    pairs_unique(&ds.pairs); /* byte duplicates may repeat a vector pair */
    d->pairs = ds.pairs.n;
    if (o.want_pairs) {
        d->pair = pv_alloc_array(ds.pairs.n ? ds.pairs.n : 1, sizeof *d->pair);
        if (!d->pair) {
            rc = PV_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < ds.pairs.n; i++)
            d->pair[i] = (pv_dup_pair){ds.pairs.p[i].a, ds.pairs.p[i].b, ds.pairs.p[i].score};
    }
    ds.thr = thr - DUPS_EPS;
    if ((rc = make_groups(&ds, d)) != 0)
        goto done;
    d->nn_score = pv_alloc_array(ds.scanned ? ds.scanned : 1, sizeof *d->nn_score);
    if (!d->nn_score) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (uint32_t id = 0, j = 0; id < ds.n; id++)
        if (ds.side[id] && (!ds.across || ds.side[id] == SIDE_B))
            d->nn_score[j++] = ds.best[id] > -2.0f ? ds.best[id] : -1.0f;
    /* The threads' snapshots are no older than ds.t's and ended before
     * this: ds.t's check covers what they read. */
    if ((rc = db_read_check(db, ds.t)) != 0)
        goto done;
    *out = d;
    d = NULL;
done:
    if (rc == PV_ECORRUPT && ds.t && db_read_check(db, ds.t) != 0)
        rc = PV_ESTORE; /* the damage seen was likely a writer's reuse */
    if (rc == PV_ECORRUPT && !db->errmsg[0])
        db_fail_txn(db, ds.t, rc, "duplicate scan");
    else if (rc != 0 && rc != PV_EINVAL && rc != PV_ECORRUPT &&
             !(rc == PV_ESTORE && db->errmsg[0])) /* db_read_check's */
        db_fail(db, rc, "duplicate scan: %s", pv_strerror(rc)); /* EINVAL's names the option */
    pv_dups_free(d);
    free(ds.pairs.p);
    free(ds.meta);
    free(ds.side);
    free(ds.best);
    store_txn_abort(ds.t);
    return rc;
}

void pv_dups_free(pv_dups *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ngroups; i++)
        group_free(&d->groups[i]);
    free(d->groups);
    free(d->nn_score);
    free(d->pair);
    free(d);
}
