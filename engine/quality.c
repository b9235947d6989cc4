/*
 * quality.c - pv_quality_report: the dataset report to read before
 * training (engine room; include/pixvec.h documents every list).
 *
 * One read snapshot gives the live items (knn.c's live set), their stored
 * records (path, size as displayed, content hash) and their vectors. Then:
 *  1. every image's k nearest other images, from knn_rows (exact for small
 *     collections, else the stored HNSW graph's self-join): the nearest one's
 *     cosine is the outlier score (the k-NN distance outlier rule of
 *     Ramaswamy, Rastogi and Shim, SIGMOD 2000, with k = 1 and the cosine
 *     of unit vectors), and the k vote on the image's folder label;
 *  2. the label vote is the weighted k-NN rule (Dudani 1976) used to find
 *     mislabelled training examples as in Wilson's edited nearest neighbour
 *     (1972): each neighbour votes for its own folder's label with its
 *     cosine similarity (clipped at 0, so a dissimilar neighbour cannot
 *     vote against), and an image whose neighbours give another label at
 *     least `vote` of the total (0.6 by default: a clear majority over
 *     every other label together, the image's own included; a mere
 *     plurality would flag every image on a boundary between two classes)
 *     is a suspect. The list is complete, sorted by a confidence that
 *     discounts confusions common between the two folders (vote() says
 *     how);
 *  3. pixel statistics (grey mean and standard deviation) from decoding
 *     every file again with db_decode_file, the decoder `add` used, at the
 *     embedder's input size (a JPEG at reduced DCT scale: averaging blocks
 *     changes a mean by nothing and a standard deviation a little, which
 *     a threshold on flat images does not feel), on worker threads; a file
 *     that fails is listed as unreadable with its reason;
 *  4. sizes and content hashes come from the stored records: no decoding.
 * Folder labels are computed here from the path the same way the command
 * line does (the folder's name, ImageFolder's convention), since the engine
 * does not call the cli room.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "img.h"
#include "knn.h"
#include "pv_util.h"

#define Q_DEFAULT_K 10
#define Q_MAX_K 100
#define Q_DEFAULT_TOP 20
#define Q_DEFAULT_VOTE 0.6f
#define Q_DEFAULT_BLANK_STD 0.02f
#define Q_DEFAULT_DARK 0.08f
#define Q_DEFAULT_BRIGHT 0.92f
#define Q_DEFAULT_TINY 32
#define Q_MAX_THREADS 64
#define Q_REASON_MAX 256

/* Everything known of one live row. */
typedef struct qrow {
    char *path;
    uint32_t w, h;
    uint32_t label;       /* label number, 0..nlabels-1 */
    float nn;             /* cosine to the nearest other row, -1 if none */
    int has_nn;           /* nn was found */
    float mean, std;      /* grey on 0..1, -1 when not decoded */
    int err;              /* decoding failed with this code */
    char *reason;         /* and these words (malloc'd) */
    uint32_t suggested;   /* UINT32_MAX: not a suspect */
    float vote;           /* share of the vote for suggested */
    float confidence;     /* vote, less the folder's usual share for suggested */
} qrow;

typedef struct qjob {
    pv_db *db;
    pv_quality_opts o;    /* resolved */
    live_set ls;
    qrow *rows;
    char **label_name;    /* nlabels names (malloc'd) */
    size_t nlabels;
    uint32_t k;           /* neighbours asked (k, limited by n - 1) */
    uint32_t *nbr;        /* n x k */
    float *dist;          /* n x k */
} qjob;

static int resolve(pv_db *db, const pv_quality_opts *in, pv_quality_opts *o)
{
    static const pv_quality_opts none = {0};
    *o = in ? *in : none;
    if (o->k < 0 || o->k > Q_MAX_K)
        return db_fail(db, PV_EINVAL, "k must be between 1 and %d, not %d", Q_MAX_K,
                       o->k);
    if (!(o->vote == 0 || (o->vote > 0.5f && o->vote <= 1.0f)))
        return db_fail(db, PV_EINVAL, "vote must be in (0.5, 1], not %g", (double)o->vote);
    if (!(o->blank_std >= 0 && o->blank_std < 1) || !(o->dark_mean >= 0 && o->dark_mean < 1) ||
        !(o->bright_mean >= 0 && o->bright_mean < 1))
        return db_fail(db, PV_EINVAL,
                       "blank_std, dark_mean and bright_mean are grey levels in [0, 1)");
    if (o->tiny_side < 0 || o->tiny_side > 65535 || o->threads < 0)
        return db_fail(db, PV_EINVAL, "tiny_side must be 0..65535 and threads >= 0");
    o->k = o->k ? o->k : Q_DEFAULT_K;
    o->top = o->top ? o->top : Q_DEFAULT_TOP;
    o->vote = o->vote > 0 ? o->vote : Q_DEFAULT_VOTE;
    o->blank_std = o->blank_std > 0 ? o->blank_std : Q_DEFAULT_BLANK_STD;
    o->dark_mean = o->dark_mean > 0 ? o->dark_mean : Q_DEFAULT_DARK;
    o->bright_mean = o->bright_mean > 0 ? o->bright_mean : Q_DEFAULT_BRIGHT;
    o->tiny_side = o->tiny_side ? o->tiny_side : Q_DEFAULT_TINY;
    if (o->dark_mean >= o->bright_mean)
        return db_fail(db, PV_EINVAL, "dark_mean must be below bright_mean");
    return PV_OK;
}

/* ---- records and labels --------------------------------------------------- */

/* The label of an image by the ImageFolder convention: the name of the
 * folder it is in (off, len into path; len 0 for a file at the root). The
 * same rule as the command line's cli_folder_label. */
static void folder_of(const char *path, size_t *off, size_t *len)
{
    const char *slash = strrchr(path, '/'), *start;
    *off = *len = 0;
    if (!slash || slash == path)
        return;
    for (start = slash; start > path && start[-1] != '/'; start--)
        ;
    *off = (size_t)(start - path);
    *len = (size_t)(slash - start);
}

typedef struct lkey {
    const char *s;
    size_t len;
    uint32_t row;
} lkey;

static int lkey_cmp(const void *a, const void *b)
{
    const lkey *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Copy each row's path and size out of the snapshot, and number the
 * labels in byte order of their names. */
static int read_rows(qjob *j)
{
    const size_t n = j->ls.n;
    lkey *keys = pv_alloc_array(n ? n : 1, sizeof *keys);
    int rc = keys ? PV_OK : PV_ENOMEM;
    for (size_t r = 0; r < n && rc == 0; r++) {
        store_item it;
        qrow *q = &j->rows[r];
        if ((rc = store_item_get(j->ls.t, j->ls.ids[r], &it)) != 0) {
            db_fail_txn(j->db, j->ls.t, rc, "item %u", j->ls.ids[r]);
            break;
        }
        if (!(q->path = malloc((size_t)it.path_len + 1))) {
            rc = PV_ENOMEM;
            break;
        }
        memcpy(q->path, it.path, it.path_len);
        q->path[it.path_len] = 0;
        q->w = it.width;
        q->h = it.height;
        q->nn = -1;
        q->mean = q->std = -1;
        q->suggested = UINT32_MAX;
        size_t off, len;
        folder_of(q->path, &off, &len);
        keys[r] = (lkey){q->path + off, len, (uint32_t)r};
    }
    if (rc == 0 && n > 0) {
        qsort(keys, n, sizeof *keys, lkey_cmp);
        if (!(j->label_name = pv_calloc_array(n, sizeof *j->label_name)))
            rc = PV_ENOMEM;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i == 0 || keys[i].len != keys[i - 1].len ||
                memcmp(keys[i].s, keys[i - 1].s, keys[i].len) != 0) {
                if (!(j->label_name[j->nlabels++] = strndup(keys[i].s, keys[i].len)))
                    rc = PV_ENOMEM;
            }
            j->rows[keys[i].row].label = (uint32_t)(j->nlabels - 1);
        }
    }
    free(keys);
    return rc;
}

/* ---- neighbours and the label vote ---------------------------------------- */

static float cos_of(float d) { return 1.0f - 0.5f * d * d; }

static int neighbours(qjob *j, unsigned nt)
{
    const size_t n = j->ls.n;
    float *x = NULL;
    uint32_t *all = pv_alloc_array(n, sizeof *all);
    uint8_t *want = malloc(n);
    int rc = (all && want) ? PV_OK : PV_ENOMEM;
    j->k = (uint32_t)j->o.k;
    if (j->k > n - 1)
        j->k = (uint32_t)(n - 1);
    j->nbr = pv_alloc_array(n, (size_t)j->k * sizeof *j->nbr);
    j->dist = pv_alloc_array(n, (size_t)j->k * sizeof *j->dist);
    if (!j->nbr || !j->dist)
        rc = PV_ENOMEM;
    for (size_t r = 0; rc == 0 && r < n; r++) {
        all[r] = (uint32_t)r;
        want[r] = 1;
    }
    if (rc == 0)
        rc = live_set_gather(&j->ls, &x);
    if (rc == 0)
        rc = knn_rows(&j->ls, x, all, n, want, n, j->k, nt, j->nbr, j->dist);
    for (size_t r = 0; rc == 0 && r < n; r++)
        if (j->nbr[r * j->k] != UINT32_MAX) {
            j->rows[r].nn = cos_of(j->dist[r * j->k]);
            j->rows[r].has_nn = 1;
        }
    free(x);
    free(all);
    free(want);
    return rc;
}

/* Row r's weighted vote: the m distinct labels its neighbours carry
 * (lab) and the summed weight of each (w); returns the total weight. */
static float row_votes(const qjob *j, size_t r, uint32_t *lab, float *w, uint32_t *m)
{
    float total = 0;
    *m = 0;
    for (uint32_t a = 0; a < j->k; a++) {
        uint32_t nb = j->nbr[r * j->k + a], i;
        if (nb == UINT32_MAX)
            break;
        float c = cos_of(j->dist[r * j->k + a]);
        if (!(c > 0))
            continue;
        uint32_t l = j->rows[nb].label;
        for (i = 0; i < *m && lab[i] != l; i++)
            ;
        if (i == *m) {
            lab[i] = l;
            w[(*m)++] = 0;
        }
        w[i] += c;
        total += c;
    }
    return total;
}

/* A (folder label, suggested label) pair of some suspect, and the mean
 * share of the vote that the folder's images give the suggested label. */
typedef struct qpair {
    uint32_t from, to;
    double sum;
} qpair;

static int pair_cmp(const void *a, const void *b)
{
    const qpair *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return x->to < y->to ? -1 : x->to > y->to;
}

/* The suspects: rows whose neighbours give another label at least the
 * asked share of the vote. Then each suspect's confidence: its share times
 * one minus the mean share that every image of its folder gives the
 * suggested label, so that a confusion common between two folders (shirt
 * and t-shirt) ranks below one that is rare there (trouser and sandal),
 * where a stray image is more likely a labelling error than an ambiguous
 * picture (the class-conditional correction of confident learning,
 * Northcutt, Jiang and Chuang, JAIR 2021, in its simplest form). */
static int vote(qjob *j)
{
    uint32_t lab[Q_MAX_K], m;
    float w[Q_MAX_K];
    qpair *pairs = NULL;
    size_t np = 0, *folder = pv_calloc_array(j->nlabels, sizeof *folder);
    if (!folder)
        return PV_ENOMEM;
    for (size_t r = 0; r < j->ls.n; r++) {
        qrow *q = &j->rows[r];
        float total = row_votes(j, r, lab, w, &m);
        uint32_t best = UINT32_MAX;
        folder[q->label]++;
        for (uint32_t i = 0; i < m; i++)
            if (lab[i] != q->label &&
                (best == UINT32_MAX || w[i] > w[best] || (w[i] == w[best] && lab[i] < lab[best])))
                best = i;
        if (best == UINT32_MAX || !(total > 0))
            continue;
        float share = w[best] / total;
        if (share >= j->o.vote) {
            q->suggested = lab[best];
            q->vote = share > 1 ? 1 : share;
            np++;
        }
    }
    if (np == 0)
        goto done;
    if (!(pairs = pv_alloc_array(np, sizeof *pairs))) {
        free(folder);
        return PV_ENOMEM;
    }
    np = 0;
    for (size_t r = 0; r < j->ls.n; r++)
        if (j->rows[r].suggested != UINT32_MAX)
            pairs[np++] = (qpair){j->rows[r].label, j->rows[r].suggested, 0};
    qsort(pairs, np, sizeof *pairs, pair_cmp);
    size_t u = 0;
    for (size_t i = 0; i < np; i++)
        if (u == 0 || pair_cmp(&pairs[u - 1], &pairs[i]) != 0)
            pairs[u++] = pairs[i];
    np = u;
    for (size_t r = 0; r < j->ls.n; r++) {
        float total = row_votes(j, r, lab, w, &m);
        for (uint32_t i = 0; i < m && total > 0; i++) {
            qpair key = {j->rows[r].label, lab[i], 0};
            qpair *p = bsearch(&key, pairs, np, sizeof *pairs, pair_cmp);
            if (p)
                p->sum += w[i] / total;
        }
    }
    for (size_t r = 0; r < j->ls.n; r++) {
        qrow *q = &j->rows[r];
        if (q->suggested == UINT32_MAX)
            continue;
        qpair key = {q->label, q->suggested, 0};
        const qpair *p = bsearch(&key, pairs, np, sizeof *pairs, pair_cmp);
        double usual = p ? p->sum / (double)folder[q->label] : 0;
        q->confidence = (float)(q->vote * (1.0 - (usual < 1 ? usual : 1)));
    }
done:
    free(pairs);
    free(folder);
    return PV_OK;
}

/* ---- pixel statistics ----------------------------------------------------- */

typedef struct qpool {
    qjob *j;
    size_t next;
    pthread_mutex_t mu;
} qpool;

static void grey_stats(const img *im, float *mean, float *std)
{
    const size_t np = (size_t)im->w * im->h;
    double s = 0, s2 = 0;
    for (size_t i = 0; i < np; i++) {
        const uint8_t *p = im->px + i * im->channels;
        double g = im->channels >= 3 ? 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] : p[0];
        s += g;
        s2 += g * g;
    }
    double m = np ? s / (double)np : 0, var = np ? s2 / (double)np - m * m : 0;
    *mean = (float)(m / 255.0);
    *std = (float)(sqrt(var > 0 ? var : 0) / 255.0);
}

static void *decode_worker(void *arg)
{
    qpool *p = arg;
    qjob *j = p->j;
    char reason[Q_REASON_MAX];
    for (;;) {
        size_t lo, hi;
        pthread_mutex_lock(&p->mu);
        lo = p->next;
        p->next = lo + 16 < j->ls.n ? lo + 16 : j->ls.n;
        hi = p->next;
        pthread_mutex_unlock(&p->mu);
        if (lo >= hi || db_interrupted(j->db)) /* pv_db_interrupt: no more files */
            break;
        for (size_t r = lo; r < hi; r++) {
            qrow *q = &j->rows[r];
            img im;
            reason[0] = 0;
            int rc = db_decode_file(j->db, q->path, &im, NULL, reason, sizeof reason);
            if (rc != 0) {
                q->err = rc;
                q->reason = strdup(reason[0] ? reason : pv_strerror(rc));
                continue;
            }
            grey_stats(&im, &q->mean, &q->std);
            img_free(&im);
        }
    }
    return NULL;
}

static void decode_all(qjob *j, unsigned nt)
{
    pthread_t th[Q_MAX_THREADS];
    qpool p = {.j = j};
    unsigned started = 0;
    pthread_mutex_init(&p.mu, NULL);
    if (nt > Q_MAX_THREADS)
        nt = Q_MAX_THREADS;
    for (unsigned i = 1; i < nt; i++)
        if (pthread_create(&th[started], NULL, decode_worker, &p) == 0)
            started++;
    decode_worker(&p);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
}

/* ---- byte-identical files ---------------------------------------------- */

typedef struct qcopies {
    const live_set *ls;
    uint64_t n;
} qcopies;

static int count_copies(void *ctx, const uint32_t *ids, size_t n)
{
    qcopies *c = ctx;
    uint64_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += ids[i] < c->ls->nid && c->ls->row[ids[i]] != UINT32_MAX;
    if (live > 1)
        c->n += live - 1;
    return 0;
}

/* ---- the lists ------------------------------------------------------------ */

enum { L_OUT, L_SUS, L_BLANK, L_DARK, L_BRIGHT, L_TINY, L_UNREAD, L_COUNT };

typedef struct qsortkey {
    float a, b;    /* ascending, a then b (negated for a descending list) */
    uint32_t row;
} qsortkey;

static int key_asc(const void *x, const void *y)
{
    const qsortkey *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return p->row < q->row ? -1 : p->row > q->row;
}

/* The q-quantile of m sorted values, interpolated as numpy's default. */
static float quantile(const float *v, size_t m, float q)
{
    if (m == 0)
        return -1;
    double pos = q * (double)(m - 1);
    size_t lo = (size_t)pos;
    double f = pos - (double)lo;
    return lo + 1 < m ? (float)(v[lo] + f * (v[lo + 1] - v[lo])) : v[lo];
}

static int float_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static int item_of(const qjob *j, uint32_t r, float score, pv_quality_item *it)
{
    const qrow *q = &j->rows[r];
    memset(it, 0, sizeof *it);
    it->id = j->ls.ids[r];
    it->score = score;
    it->nn = q->nn;
    it->mean = q->mean;
    it->std = q->std;
    it->width = q->w;
    it->height = q->h;
    it->err = q->err;
    if (!(it->path = strdup(q->path)) || !(it->label = strdup(j->label_name[q->label])))
        return PV_ENOMEM;
    if (q->suggested != UINT32_MAX) {
        it->vote = q->vote;
        if (!(it->suggested = strdup(j->label_name[q->suggested])))
            return PV_ENOMEM;
    }
    if (q->reason && !(it->reason = strdup(q->reason)))
        return PV_ENOMEM;
    return PV_OK;
}

/* Which list row r belongs in, and its sort key (ascending). */
static int in_list(const qjob *j, int l, uint32_t r, uint32_t tiny_below, qsortkey *k)
{
    const qrow *q = &j->rows[r];
    const int blank = q->err == 0 && q->std >= 0 && q->std < j->o.blank_std;
    *k = (qsortkey){0, 0, r};
    switch (l) {
    case L_OUT: k->a = q->nn; return q->has_nn;
    case L_SUS: k->a = -q->confidence; k->b = -q->vote; return q->suggested != UINT32_MAX;
    case L_BLANK: k->a = q->std; return blank;
    case L_DARK: k->a = q->mean; return !blank && q->mean >= 0 && q->mean < j->o.dark_mean;
    case L_BRIGHT: k->a = -q->mean; return !blank && q->mean > j->o.bright_mean;
    case L_TINY:
        k->a = (float)(q->w < q->h ? q->w : q->h);
        return k->a < (float)tiny_below;
    default: return q->err != 0;
    }
}

static float score_of(const qjob *j, int l, uint32_t r)
{
    const qrow *q = &j->rows[r];
    switch (l) {
    case L_OUT: return q->nn;
    case L_SUS: return q->confidence;
    case L_BLANK: return q->std;
    case L_DARK:
    case L_BRIGHT: return q->mean;
    case L_TINY: return (float)(q->w < q->h ? q->w : q->h);
    default: return 0;
    }
}

static int make_list(const qjob *j, int l, uint32_t tiny_below, pv_quality_list *out)
{
    const size_t n = j->ls.n;
    qsortkey *keys = pv_alloc_array(n ? n : 1, sizeof *keys);
    size_t m = 0;
    int rc = PV_OK;
    if (!keys)
        return PV_ENOMEM;
    for (uint32_t r = 0; r < n; r++)
        if (in_list(j, l, r, tiny_below, &keys[m]))
            m++;
    qsort(keys, m, sizeof *keys, key_asc);
    if (l == L_OUT && j->o.top >= 0 && m > (size_t)j->o.top)
        m = (size_t)j->o.top;
    if (!(out->items = pv_calloc_array(m ? m : 1, sizeof *out->items)))
        rc = PV_ENOMEM;
    for (size_t i = 0; i < m && rc == 0; i++) {
        rc = item_of(j, keys[i].row, score_of(j, l, keys[i].row), &out->items[i]);
        out->n = i + 1;
    }
    free(keys);
    return rc;
}

/* The shorter side below which an image is tiny: tiny_side, or half the
 * collection's median shorter side when that is smaller. */
static uint32_t tiny_threshold(const qjob *j)
{
    const size_t n = j->ls.n;
    float *s = pv_alloc_array(n ? n : 1, sizeof *s);
    uint32_t t = (uint32_t)j->o.tiny_side;
    if (!s || n == 0) {
        free(s);
        return t;
    }
    for (size_t r = 0; r < n; r++)
        s[r] = (float)(j->rows[r].w < j->rows[r].h ? j->rows[r].w : j->rows[r].h);
    qsort(s, n, sizeof *s, float_cmp);
    float half = quantile(s, n, 0.5f) / 2.0f;
    free(s);
    return half < (float)t ? (uint32_t)ceilf(half) : t;
}

static void list_free(pv_quality_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].path);
        free(l->items[i].label);
        free(l->items[i].suggested);
        free(l->items[i].reason);
    }
    free(l->items);
}

void pv_quality_free(pv_quality *q)
{
    if (!q)
        return;
    list_free(&q->outliers);
    list_free(&q->suspects);
    list_free(&q->blank);
    list_free(&q->dark);
    list_free(&q->bright);
    list_free(&q->tiny);
    list_free(&q->unreadable);
    free(q);
}

static int build(qjob *j, pv_quality *res)
{
    pv_quality_list *lists[L_COUNT] = {&res->outliers, &res->suspects, &res->blank, &res->dark,
                                       &res->bright, &res->tiny, &res->unreadable};
    const size_t n = j->ls.n;
    float *nn = pv_alloc_array(n ? n : 1, sizeof *nn);
    size_t m = 0;
    int rc = nn ? PV_OK : PV_ENOMEM;
    for (size_t r = 0; rc == 0 && r < n; r++)
        if (j->rows[r].has_nn)
            nn[m++] = j->rows[r].nn;
    if (rc == 0) {
        qsort(nn, m, sizeof *nn, float_cmp);
        res->nn_median = quantile(nn, m, 0.5f);
        res->nn_p01 = quantile(nn, m, 0.01f);
    }
    res->tiny_below = tiny_threshold(j);
    for (int l = 0; l < L_COUNT && rc == 0; l++)
        rc = make_list(j, l, res->tiny_below, lists[l]);
    free(nn);
    return rc;
}

static int q_fail(pv_db *db, int rc)
{
    if (db->errmsg[0]) /* a message that says more than the code's text */
        return rc;
    return db_fail(db, rc, "%s", pv_strerror(rc));
}

int pv_quality_report(pv_db *db, const pv_quality_opts *o, pv_quality **out)
{
    qjob j = {.db = db};
    pv_quality *res = NULL;
    qcopies copies;
    double t0 = pv_now();
    size_t n = 0;
    int rc;
    if (!db || !out)
        return PV_EINVAL;
    *out = NULL;
    db->errmsg[0] = 0;
    db_interrupt_clear(db);
    if ((rc = resolve(db, o, &j.o)) != 0)
        return rc;
    const unsigned nt = db_threads(j.o.threads);
    if ((rc = live_set_open(db, &j.ls)) != 0)
        goto done;
    n = j.ls.n;
    if (!(j.rows = pv_calloc_array(n ? n : 1, sizeof *j.rows)) ||
        !(res = calloc(1, sizeof *res))) {
        rc = PV_ENOMEM;
        goto done;
    }
    if ((rc = read_rows(&j)) != 0)
        goto done;
    if (n >= 2 && (rc = neighbours(&j, nt)) != 0)
        goto done;
    if (j.nlabels >= 2 && (rc = vote(&j)) != 0)
        goto done;
    copies = (qcopies){.ls = &j.ls};
    if ((rc = store_hash_each_multi(j.ls.t, count_copies, &copies)) != 0) {
        db_fail_txn(db, j.ls.t, rc, "reading the content hashes");
        goto done;
    }
    if (!j.o.no_pixels && n > 0)
        decode_all(&j, nt);
    if (db_interrupted(db)) {
        rc = db_fail(db, PV_EINTR, "quality: interrupted");
        goto done;
    }
    for (size_t r = 0; r < n; r++)
        if (j.rows[r].err != 0 && !j.rows[r].reason) {
            rc = PV_ENOMEM;
            goto done;
        }
    res->items = n;
    res->nlabels = j.nlabels;
    res->k = (int)j.k;
    res->vote = j.o.vote;
    res->blank_std = j.o.blank_std;
    res->dark_mean = j.o.dark_mean;
    res->bright_mean = j.o.bright_mean;
    res->exact_copies = copies.n;
    res->nn_median = res->nn_p01 = -1;
    if ((rc = build(&j, res)) != 0)
        goto done;
    for (size_t r = 0; r < n; r++)
        res->decoded += j.rows[r].mean >= 0;
    res->seconds = pv_now() - t0;
    if ((rc = db_read_check(db, j.ls.t)) != 0)
        goto done;
    *out = res;
    res = NULL;
done:
    if (rc != 0 && rc != PV_ENOMEM)
        q_fail(db, rc);
    live_set_close(&j.ls);
    for (size_t r = 0; j.rows && r < n; r++) {
        free(j.rows[r].path);
        free(j.rows[r].reason);
    }
    for (size_t i = 0; i < j.nlabels; i++)
        free(j.label_name[i]);
    free(j.label_name);
    free(j.rows);
    free(j.nbr);
    free(j.dist);
    pv_quality_free(res);
    return rc;
}
