/*
 * clip_bpe.c - loading CLIP's vocabulary and merges, and the byte-level BPE
 * (see clip_bpe.h; the text cleanup and pre-split are in clip_text.c).
 *
 * Tokens are strings in the file but ids here: two open-addressing hash
 * tables, token string -> id (used while loading) and the pair of ids
 * (a, b) -> (rank, id of a+b), so BPE never touches a string. Ids are
 * distinct (checked), so pairs of ids are pairs of strings.
 *
 * BPE is openai's loop (take the adjacent pair of lowest rank, merge every
 * occurrence of it left to right, repeat) done with a heap instead of
 * rescanning the word: the symbols are a linked list in their original
 * order, the heap holds (rank, left node) of candidate pairs, ordered so
 * that one rank's occurrences come out left to right. A popped pair is
 * merged if it is still there (both symbols as when pushed, still
 * adjacent); the pairs a merge creates wait until every occurrence of the
 * current rank is done, which is when openai's loop would first see them.
 * O(n log n) per piece where openai's is O(n^2), so a long run of letters
 * cannot stall a query.
 */
#include "clip_bpe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "clip_text.h"
#include "pixvec.h"
#include "pv_util.h"

typedef struct {
    uint32_t off, len; /* in the arena; len 0 = empty slot */
    int32_t id;
} bpe_tok_slot;

typedef struct {
    uint64_t key;  /* (uint64_t)a << 32 | b */
    uint32_t rank; /* UINT32_MAX = empty slot */
    int32_t id;    /* of a+b */
} bpe_pair_slot;

struct clip_bpe {
    char *arena; /* token strings, back to back */
    bpe_tok_slot *tok;
    size_t tok_mask;
    bpe_pair_slot *pair;
    size_t pair_mask;
    int32_t byte_id[256], byte_eow_id[256]; /* byte symbol, and with "</w>" */
    int32_t sot, eot, vocab_size;
};

/* Set err (the caller's err, errlen) and give rc. */
#define BPE_FAIL(rc, ...) (pv_set_err(err, errlen, __VA_ARGS__), (rc))

/* ---- hash tables ---------------------------------------------------------- */

static size_t table_size(size_t n)
{
    size_t s = 16;
    while (s < 2 * n)
        s <<= 1;
    return s;
}

static uint64_t pair_hash(uint64_t k)
{ /* splitmix64's finaliser */
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    return k ^ (k >> 31);
}

/* The slot of token s[0..len): holding it, or the empty one it would go in. */
static bpe_tok_slot *tok_slot(const clip_bpe *b, const char *s, size_t len)
{
    size_t i = (size_t)XXH3_64bits(s, len) & b->tok_mask;
    for (;; i = (i + 1) & b->tok_mask) {
        bpe_tok_slot *t = &b->tok[i];
        if (t->len == 0 || (t->len == len && memcmp(b->arena + t->off, s, len) == 0))
            return t;
    }
}

static int32_t tok_id(const clip_bpe *b, const char *s, size_t len)
{
    const bpe_tok_slot *t = tok_slot(b, s, len);
    return t->len ? t->id : -1;
}

static bpe_pair_slot *pair_slot(const clip_bpe *b, int32_t x, int32_t y)
{
    uint64_t key = (uint64_t)(uint32_t)x << 32 | (uint32_t)y;
    size_t i = (size_t)pair_hash(key) & b->pair_mask;
    for (;; i = (i + 1) & b->pair_mask) {
        bpe_pair_slot *p = &b->pair[i];
        if (p->rank == UINT32_MAX || p->key == key)
            return p;
    }
}

/* ---- loading -------------------------------------------------------------- */

/* bytes_to_unicode: the code point byte v stands for in a token. */
static uint32_t byte_cp(unsigned v)
{
    if ((v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE)
        return v;
    /* the other 68 bytes, in order, from U+0100 */
    uint32_t k = v <= 0x20 ? v : v <= 0xA0 ? v - 0x7F + 0x21 : 0x21 + 0x22;
    return 0x100 + k;
}

/* ---- vocab.json: one JSON object of string -> integer ---------------------
 *
 * A parser for exactly that shape (RFC 8259 strings with every escape,
 * integers without sign, fraction or exponent), decoding each key in place
 * in the file's buffer, which then holds the token strings: jansson builds
 * a general tree first and took most of the 100 ms a load may cost. */

typedef struct {
    char *buf;
    size_t len, i;
    const char *why; /* set on failure */
} bpe_json;

static void json_ws(bpe_json *j)
{
    while (j->i < j->len && (j->buf[j->i] == ' ' || j->buf[j->i] == '\t' || j->buf[j->i] == '\n' ||
                             j->buf[j->i] == '\r'))
        j->i++;
}

static int json_hex4(bpe_json *j, uint32_t *v)
{
    *v = 0;
    if (j->len - j->i < 4)
        return -1;
    for (int k = 0; k < 4; k++) {
        char c = j->buf[j->i++];
        uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                     : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
                                            : 16;
        if (d == 16)
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* The string at j->i (a '"'), decoded in place: it starts right after the
 * quote and *n bytes long (never longer than it was written). */
static int json_string(bpe_json *j, size_t *start, size_t *n)
{
    size_t w = ++j->i;
    *start = w;
    for (;;) {
        if (j->i >= j->len) {
            j->why = "unterminated string";
            return -1;
        }
        unsigned char c = (unsigned char)j->buf[j->i++];
        if (c == '"')
            break;
        if (c < 0x20) {
            j->why = "a control character in a string";
            return -1;
        }
        if (c != '\\') {
            j->buf[w++] = (char)c;
            continue;
        }
        if (j->i >= j->len) {
            j->why = "unterminated string";
            return -1;
        }
        char e = j->buf[j->i++];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            j->buf[w++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || json_hex4(j, &cp) != 0) {
            j->why = "a bad escape";
            return -1;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (j->len - j->i < 2 || j->buf[j->i] != '\\' || j->buf[j->i + 1] != 'u' ||
                (j->i += 2, json_hex4(j, &lo)) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                j->why = "a lone surrogate";
                return -1;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            j->why = cp ? "a lone surrogate" : "a NUL character";
            return -1;
        }
        w += clip_text_utf8(cp, (uint8_t *)j->buf + w);
    }
    *n = w - *start;
    if (!clip_text_utf8_valid(j->buf + *start, *n)) {
        j->why = "a string that is not UTF-8";
        return -1;
    }
    return 0;
}

static int json_id(bpe_json *j, int32_t *id)
{
    size_t d = 0;
    long v = 0;
    while (j->i < j->len && j->buf[j->i] >= '0' && j->buf[j->i] <= '9' && d < 9) {
        v = v * 10 + (j->buf[j->i++] - '0');
        d++;
    }
    if (d == 0 || v > CLIP_BPE_MAX_ID ||
        (j->i < j->len && strchr("0123456789.eE", j->buf[j->i]) && j->buf[j->i])) {
        j->why = "an id that is not an integer in 0..16777215";
        return -1;
    }
    *id = (int32_t)v;
    return 0;
}

/* Parse the object into *ent (off, len, id), *count entries. */
static int json_vocab(bpe_json *j, bpe_tok_slot **ent, size_t *count)
{
    size_t cap = 0;
    *ent = NULL;
    *count = 0;
    json_ws(j);
    if (j->i >= j->len || j->buf[j->i] != '{') {
        j->why = "not a JSON object of token -> id";
        return -1;
    }
    j->i++;
    json_ws(j);
    if (j->i < j->len && j->buf[j->i] == '}') {
        j->i++;
    } else {
        for (;;) {
            size_t start, n;
            int32_t id;
            json_ws(j);
            if (j->i >= j->len || j->buf[j->i] != '"') {
                j->why = "a token string expected";
                return -1;
            }
            if (json_string(j, &start, &n) != 0)
                return -1;
            json_ws(j);
            if (j->i >= j->len || j->buf[j->i] != ':') {
                j->why = "':' expected";
                return -1;
            }
            j->i++;
            json_ws(j);
            if (json_id(j, &id) != 0)
                return -1;
            if (n == 0) {
                j->why = "an empty token";
                return -1;
            }
            if (*count == cap) {
                if (cap >= CLIP_BPE_MAX_TOKENS) {
                    j->why = "more tokens than the limit of 1048576";
                    return -1;
                }
                size_t nc = cap ? 2 * cap : 1024;
                bpe_tok_slot *ne = pv_realloc_array(*ent, nc, sizeof *ne);
                if (!ne)
                    return PV_ENOMEM;
                *ent = ne;
                cap = nc;
            }
            (*ent)[(*count)++] = (bpe_tok_slot){(uint32_t)start, (uint32_t)n, id};
            json_ws(j);
            if (j->i < j->len && j->buf[j->i] == ',') {
                j->i++;
                continue;
            }
            if (j->i < j->len && j->buf[j->i] == '}') {
                j->i++;
                break;
            }
            j->why = "',' or '}' expected";
            return -1;
        }
    }
    json_ws(j);
    if (j->i != j->len) {
        j->why = "text after the object";
        return -1;
    }
    return 0;
}

static int load_vocab(clip_bpe *b, const char *path, char *err, size_t errlen)
{
    bpe_json j = {NULL, 0, 0, NULL};
    bpe_tok_slot *ent = NULL;
    size_t count = 0;
    uint8_t *seen = NULL;
    int rc = pv_read_file(path, CLIP_BPE_MAX_FILE, &j.buf, &j.len, err, errlen);
    if (rc)
        return rc;
    b->arena = j.buf; /* the decoded token strings stay in it */
    rc = json_vocab(&j, &ent, &count);
    if (rc == PV_ENOMEM)
        goto done;
    if (rc) {
        size_t line = 1, col = 1;
        for (size_t k = 0; k < j.i && k < j.len; k++, col++)
            if (j.buf[k] == '\n')
                line++, col = 0;
        rc = BPE_FAIL(PV_ECORRUPT, "%s: line %zu column %zu: %s", path, line, col, j.why);
        goto done;
    }
    for (size_t k = 0; k < count; k++)
        if (ent[k].id >= b->vocab_size)
            b->vocab_size = ent[k].id + 1;
    b->tok_mask = table_size(count) - 1;
    b->tok = pv_calloc_array(b->tok_mask + 1, sizeof *b->tok);
    seen = calloc((size_t)b->vocab_size / 8 + 1, 1);
    if (!b->tok || !seen) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t k = 0; k < count; k++) {
        const char *key = b->arena + ent[k].off;
        int32_t id = ent[k].id;
        bpe_tok_slot *t = tok_slot(b, key, ent[k].len);
        if (t->len) {
            rc = BPE_FAIL(PV_ECORRUPT, "%s: duplicate token \"%.*s\"", path,
                          (int)(ent[k].len < 64 ? ent[k].len : 64), key);
            goto done;
        }
        if (seen[id / 8] & (1u << (id % 8))) {
            rc = BPE_FAIL(PV_ECORRUPT, "%s: token \"%.*s\": id %d is used twice", path,
                          (int)(ent[k].len < 64 ? ent[k].len : 64), key, id);
            goto done;
        }
        seen[id / 8] |= (uint8_t)(1u << (id % 8));
        *t = ent[k];
    }
    for (unsigned v = 0; v < 256; v++) {
        uint8_t sym[8];
        size_t k = clip_text_utf8(byte_cp(v), sym);
        memcpy(sym + k, "</w>", 4);
        b->byte_id[v] = tok_id(b, (const char *)sym, k);
        b->byte_eow_id[v] = tok_id(b, (const char *)sym, k + 4);
        if (b->byte_id[v] < 0 || b->byte_eow_id[v] < 0) {
            rc =
                BPE_FAIL(PV_ECORRUPT, "%s: the symbol of byte 0x%02X (\"%.*s\"%s) is missing", path,
                         v, (int)k, (const char *)sym, b->byte_id[v] < 0 ? "" : " with </w>");
            goto done;
        }
    }
    b->sot = tok_id(b, "<|startoftext|>", 15);
    b->eot = tok_id(b, "<|endoftext|>", 13);
    if (b->sot < 0 || b->eot < 0) {
        rc = BPE_FAIL(PV_ECORRUPT, "%s: no %s token", path,
                      b->sot < 0 ? "<|startoftext|>" : "<|endoftext|>");
        goto done;
    }
done:
    free(seen);
    free(ent);
    return rc;
}

static int load_merges(clip_bpe *b, const char *path, char *err, size_t errlen)
{
    char *buf = NULL, *cat = NULL;
    size_t len = 0, nlines = 1, rank = 0, blank_line = 0;
    int rc = pv_read_file(path, CLIP_BPE_MAX_FILE, &buf, &len, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < len; i++)
        nlines += buf[i] == '\n';
    if (nlines > CLIP_BPE_MAX_TOKENS + 2) {
        rc = BPE_FAIL(PV_ECORRUPT, "%s: %zu lines: over the limit of %u merges", path, nlines,
                      CLIP_BPE_MAX_TOKENS);
        goto done;
    }
    b->pair_mask = table_size(nlines) - 1;
    b->pair = pv_alloc_array(b->pair_mask + 1, sizeof *b->pair);
    cat = malloc(len + 1);
    if (!b->pair || !cat) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i <= b->pair_mask; i++)
        b->pair[i].rank = UINT32_MAX;
    size_t line = 0;
    for (char *p = buf, *end = buf + len; p < end || (p == end && line == 0);) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
        line++;
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (line == 1 && n >= 8 && memcmp(p, "#version", 8) == 0) {
            p = eol + (nl != NULL);
            continue;
        }
        if (n == 0) {
            if (!blank_line)
                blank_line = line;
            p = eol + (nl != NULL);
            if (!nl)
                break;
            continue;
        }
        if (blank_line) {
            rc = BPE_FAIL(PV_ECORRUPT, "%s: line %zu: empty", path, blank_line);
            goto done;
        }
        char *sp = memchr(p, ' ', n);
        if (!sp || sp == p || sp == p + n - 1 || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - p))) {
            rc = BPE_FAIL(PV_ECORRUPT, "%s: line %zu: not two tokens \"a b\"", path, line);
            goto done;
        }
        size_t la = (size_t)(sp - p), lb = n - la - 1;
        int32_t ia = tok_id(b, p, la), ib = tok_id(b, sp + 1, lb);
        memcpy(cat, p, la);
        memcpy(cat + la, sp + 1, lb);
        int32_t ic = tok_id(b, cat, la + lb);
        if (ia < 0 || ib < 0 || ic < 0) {
            rc =
                BPE_FAIL(PV_ECORRUPT, "%s: line %zu: \"%.*s\" is not in the vocabulary", path, line,
                         (int)(ia < 0          ? la
                               : ib < 0        ? lb
                               : la + lb > 128 ? 128
                                               : la + lb),
                         ia < 0   ? p
                         : ib < 0 ? sp + 1
                                  : cat);
            goto done;
        }
        bpe_pair_slot *s = pair_slot(b, ia, ib);
        if (s->rank != UINT32_MAX) {
            rc = BPE_FAIL(PV_ECORRUPT, "%s: line %zu: the pair is already merged at line %u", path,
                          line, s->rank + (unsigned)(line - rank));
            goto done;
        }
        *s = (bpe_pair_slot){(uint64_t)(uint32_t)ia << 32 | (uint32_t)ib, (uint32_t)rank++, ic};
        p = eol + (nl != NULL);
        if (!nl)
            break;
    }
done:
    free(cat);
    free(buf);
    return rc;
}

int clip_bpe_load(const char *vocab_path, const char *merges_path, clip_bpe **out, char *err,
                  size_t errlen)
{
    if (!vocab_path || !merges_path || !out)
        return PV_EINVAL;
    *out = NULL;
    clip_bpe *b = calloc(1, sizeof *b);
    if (!b)
        return PV_ENOMEM;
    int rc = load_vocab(b, vocab_path, err, errlen);
    if (!rc)
        rc = load_merges(b, merges_path, err, errlen);
    if (rc) {
        clip_bpe_free(b);
        return rc;
    }
    *out = b;
    return PV_OK;
}

int32_t clip_bpe_vocab_size(const clip_bpe *b) { return b ? b->vocab_size : 0; }

void clip_bpe_free(clip_bpe *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b->tok);
    free(b->pair);
    free(b);
}

/* ---- BPE ------------------------------------------------------------------ */

typedef struct {
    uint32_t rank, pos; /* the pair (node pos, its next) */
    int32_t a, b;       /* their symbols when pushed */
} bpe_cand;

typedef struct {
    int32_t *sym; /* -1: merged into its left neighbour */
    int32_t *next, *prev;
    bpe_cand *heap, *pending;
    size_t nheap, npending;
} bpe_work;

static int cand_less(const bpe_cand *x, const bpe_cand *y)
{
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(bpe_work *w, bpe_cand c)
{
    size_t i = w->nheap++;
    while (i > 0 && cand_less(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
}

static bpe_cand heap_pop(bpe_work *w)
{
    bpe_cand top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->nheap)
            break;
        if (c + 1 < w->nheap && cand_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!cand_less(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->nheap)
        w->heap[i] = last;
    return top;
}

/* Queue the pair starting at node p (if both ends exist and it is ranked). */
static void bpe_consider(const clip_bpe *b, bpe_work *w, int32_t p, int pending)
{
    if (p < 0 || w->next[p] < 0)
        return;
    int32_t q = w->next[p];
    const bpe_pair_slot *s = pair_slot(b, w->sym[p], w->sym[q]);
    if (s->rank == UINT32_MAX)
        return;
    bpe_cand c = {s->rank, (uint32_t)p, w->sym[p], w->sym[q]};
    if (pending)
        w->pending[w->npending++] = c;
    else
        heap_push(w, c);
}

/* BPE of one piece's bytes; appends at most room ids to ids. Returns how
 * many it appended. */
static size_t bpe_piece(const clip_bpe *b, bpe_work *w, const uint8_t *bytes, size_t n,
                        int32_t *ids, size_t room)
{
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = i + 1 < n ? b->byte_id[bytes[i]] : b->byte_eow_id[bytes[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->nheap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        bpe_consider(b, w, (int32_t)i, 0);
    while (w->nheap) {
        uint32_t rank = w->heap[0].rank;
        w->npending = 0;
        while (w->nheap && w->heap[0].rank == rank) {
            bpe_cand c = heap_pop(w);
            int32_t p = (int32_t)c.pos, q = w->next[p];
            if (w->sym[p] != c.a || q < 0 || w->sym[q] != c.b)
                continue; /* gone: merged away since it was pushed */
            w->sym[p] = pair_slot(b, c.a, c.b)->id;
            w->sym[q] = -1;
            w->next[p] = w->next[q];
            if (w->next[q] >= 0)
                w->prev[w->next[q]] = p;
            bpe_consider(b, w, w->prev[p], 1);
            bpe_consider(b, w, p, 1);
        }
        for (size_t k = 0; k < w->npending; k++)
            heap_push(w, w->pending[k]);
    }
    size_t k = 0;
    for (int32_t p = 0; p >= 0 && k < room; p = w->next[p])
        ids[k++] = w->sym[p];
    return k;
}

int clip_bpe_encode(const clip_bpe *b, const char *text, size_t len, int32_t *ids, size_t max,
                    size_t *n, char *err, size_t errlen)
{
    uint32_t *s = NULL;
    uint8_t *bytes = NULL;
    bpe_work w = {0};
    size_t ns = 0, bad = 0, maxbytes = 0, k = 1;
    int rc;
    if (!b || (!text && len) || !ids || !n || max < 2) {
        pv_set_err(err, errlen, "clip_bpe_encode: %s", max < 2 ? "max < 2" : "a NULL argument");
        return PV_EINVAL;
    }
    *n = 0;
    if (len > CLIP_BPE_MAX_TEXT) {
        pv_set_err(err, errlen, "text of %zu bytes: over the limit of %u", len, CLIP_BPE_MAX_TEXT);
        return PV_EINVAL;
    }
    rc = clip_text_clean(text ? text : "", len, &s, &ns, &bad);
    if (rc == PV_EINVAL) {
        pv_set_err(err, errlen, "invalid UTF-8 at byte offset %zu", bad);
        return rc;
    }
    if (rc)
        return rc;
    /* scratch for the longest piece */
    size_t pos = 0, start, end;
    while (clip_text_next_piece(s, ns, &pos, &start, &end)) {
        size_t nb = 0;
        for (size_t i = start; i < end; i++) {
            uint8_t tmp[4];
            nb += clip_text_utf8(s[i], tmp);
        }
        if (nb > maxbytes)
            maxbytes = nb;
    }
    bytes = malloc(maxbytes + 1);
    w.sym = pv_alloc_array(maxbytes + 1, sizeof *w.sym);
    w.next = pv_alloc_array(maxbytes + 1, sizeof *w.next);
    w.prev = pv_alloc_array(maxbytes + 1, sizeof *w.prev);
    /* pushes: n - 1 at first, at most 2 per merge, and fewer than n merges */
    w.heap = pv_alloc_array(3 * maxbytes + 1, sizeof *w.heap);
    w.pending = pv_alloc_array(2 * maxbytes + 1, sizeof *w.pending);
    if (!bytes || !w.sym || !w.next || !w.prev || !w.heap || !w.pending) {
        rc = PV_ENOMEM;
        goto done;
    }
    ids[0] = b->sot;
    pos = 0;
    while (k < max - 1 && clip_text_next_piece(s, ns, &pos, &start, &end)) {
        size_t nb = 0;
        for (size_t i = start; i < end; i++)
            nb += clip_text_utf8(s[i], bytes + nb);
        k += bpe_piece(b, &w, bytes, nb, ids + k, max - 1 - k);
    }
    ids[k++] = b->eot;
    *n = k;
done:
    free(s);
    free(bytes);
    free(w.sym);
    free(w.next);
    free(w.prev);
    free(w.heap);
    free(w.pending);
    return rc;
}
