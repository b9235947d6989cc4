/*
 * clip_text.c - cleanup and pre-split of CLIP's tokenizer (see clip_bpe.h
 * for the pipeline and clip_text.h for the calls).
 *
 * Everything works on an array of code points, in place where the text can
 * only shrink. The Unicode data come from unicode_tables.c, generated from
 * the same Python unicodedata the reference (tests/ref_clip_bpe.py) uses:
 * NFC follows UAX #15 (full canonical decomposition, canonical ordering by
 * a stable sort of each run of non-starters, then canonical composition
 * with the "blocked" rule; Hangul by arithmetic, section 3.12 of the Unicode
 * standard), and lower case is CPython's str.lower() (full mapping, the
 * Final_Sigma context of unicodeobject.c's handle_capital_sigma). Every
 * step is linear in the text (the sort is a counting sort on long runs), so
 * no input can make a query slow.
 */
#include "clip_text.h"

#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"
#include "unicode_tables.h"

/* ---- table lookups ------------------------------------------------------- */

static uint32_t uc_range_find(const uc_range *t, uint32_t len, uint32_t cp)
{
    uint32_t lo = 0, hi = len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cp < t[mid].first)
            hi = mid;
        else if (cp > t[mid].last)
            lo = mid + 1;
        else
            return t[mid].bits;
    }
    return 0;
}

static uint32_t uc_bits(uint32_t cp) { return uc_range_find(uc_class, uc_class_len, cp); }
static uint8_t uc_ccc_of(uint32_t cp) { return (uint8_t)uc_range_find(uc_ccc, uc_ccc_len, cp); }

/* The one-code-point lower case of cp (cp itself when none). */
static uint32_t uc_lower_of(uint32_t cp)
{
    uint32_t lo = 0, hi = uc_lower_len;
    while (lo < hi) { /* the last run starting at or before cp */
        uint32_t mid = lo + (hi - lo) / 2;
        if (uc_lower[mid].first <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return cp;
    const uc_lower_run *r = &uc_lower[lo - 1];
    uint32_t off = cp - r->first;
    if (off % r->stride != 0 || off / r->stride >= r->count)
        return cp;
    return (uint32_t)((int64_t)cp + r->delta);
}

static int decomp_cmp(const void *key, const void *entry)
{
    uint32_t cp = *(const uint32_t *)key, e = ((const uc_decomp_entry *)entry)->cp;
    return cp < e ? -1 : cp > e;
}

static const uc_decomp_entry *uc_decomp_of(uint32_t cp)
{
    return bsearch(&cp, uc_decomp, uc_decomp_len, sizeof uc_decomp[0], decomp_cmp);
}

/* ---- UTF-8 --------------------------------------------------------------- */

size_t clip_text_utf8(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Returns the code point count, or (size_t)-1 with *bad. out may
 * be NULL (only check). */
static size_t utf8_decode(const uint8_t *s, size_t len, uint32_t *out, size_t *bad)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = s[i], min;
        size_t k;
        if (c < 0x80) {
            if (out)
                out[n] = c;
            n++;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, c &= 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, c &= 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, c &= 0x07, min = 0x10000;
        } else {
            *bad = i;
            return (size_t)-1;
        }
        if (len - i <= k) {
            *bad = i;
            return (size_t)-1;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                *bad = i;
                return (size_t)-1;
            }
            c = c << 6 | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            *bad = i;
            return (size_t)-1;
        }
        if (out)
            out[n] = c;
        n++;
        i += k + 1;
    }
    return n;
}

int clip_text_utf8_valid(const char *s, size_t len)
{
    size_t bad;
    return utf8_decode((const uint8_t *)s, len, NULL, &bad) != (size_t)-1;
}

/* ---- HTML character references ------------------------------------------- */

/* The reference at s[0..n) (s[0] is '&'): its length and *v, or 0. */
static size_t html_ref(const uint32_t *s, size_t n, uint32_t *v)
{
    static const struct {
        const char *name;
        uint32_t cp;
    } named[] = {{"amp;", '&'},  {"lt;", '<'},    {"gt;", '>'},
                 {"quot;", '"'}, {"apos;", '\''}, {"nbsp;", 0xA0}};
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
        size_t m = strlen(named[k].name), j = 0;
        while (j < m && 1 + j < n && s[1 + j] == (uint8_t)named[k].name[j])
            j++;
        if (j == m) {
            *v = named[k].cp;
            return 1 + m;
        }
    }
    if (n < 2 || s[1] != '#')
        return 0;
    size_t i = 2;
    uint32_t base = 10, val = 0;
    if (i < n && (s[i] == 'x' || s[i] == 'X')) {
        base = 16;
        i++;
    }
    size_t digits = i;
    for (; i < n; i++) {
        uint32_t c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            break;
        val = val > 0x10FFFF ? val : val * base + d; /* saturates above U+10FFFF */
    }
    if (i == digits || i >= n || s[i] != ';')
        return 0;
    if (val == 0 || val > 0x10FFFF || (val >= 0xD800 && val <= 0xDFFF))
        return 0; /* kept as typed */
    *v = val;
    return i + 1;
}

static size_t html_unescape(uint32_t *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t v;
        size_t used;
        if (s[i] == '&' && (used = html_ref(s + i, n - i, &v)) != 0) {
            s[o++] = v;
            i += used;
        } else {
            s[o++] = s[i++];
        }
    }
    return o;
}

/* ---- NFC ----------------------------------------------------------------- */

enum {
    H_SBASE = 0xAC00,
    H_LBASE = 0x1100,
    H_VBASE = 0x1161,
    H_TBASE = 0x11A7,
    H_LCOUNT = 19,
    H_VCOUNT = 21,
    H_TCOUNT = 28,
    H_NCOUNT = H_VCOUNT * H_TCOUNT,
    H_SCOUNT = H_LCOUNT * H_NCOUNT
};

/* The full canonical decomposition of cp into out (NULL: only count). */
static size_t nfc_decompose(uint32_t cp, uint32_t *out)
{
    if (cp >= H_SBASE && cp < H_SBASE + H_SCOUNT) {
        uint32_t si = cp - H_SBASE, t = si % H_TCOUNT;
        if (out) {
            out[0] = H_LBASE + si / H_NCOUNT;
            out[1] = H_VBASE + (si % H_NCOUNT) / H_TCOUNT;
            if (t)
                out[2] = H_TBASE + t;
        }
        return t ? 3 : 2;
    }
    const uc_decomp_entry *d = uc_decomp_of(cp);
    if (!d) {
        if (out)
            out[0] = cp;
        return 1;
    }
    /* the table's chains are a few levels deep (generated, acyclic) */
    size_t k = nfc_decompose(d->a, out);
    if (d->b)
        k += nfc_decompose(d->b, out ? out + k : NULL);
    return k;
}

static uint32_t nfc_compose_pair(uint32_t a, uint32_t b)
{
    if (a >= H_LBASE && a < H_LBASE + H_LCOUNT && b >= H_VBASE && b < H_VBASE + H_VCOUNT)
        return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
    if (a >= H_SBASE && a < H_SBASE + H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 && b > H_TBASE &&
        b < H_TBASE + H_TCOUNT)
        return a + (b - H_TBASE);
    uint32_t lo = 0, hi = uc_comp_len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uc_decomp_entry *d = &uc_decomp[uc_comp[mid]];
        if (a < d->a || (a == d->a && b < d->b))
            hi = mid;
        else if (a > d->a || b > d->b)
            lo = mid + 1;
        else
            return d->cp;
    }
    return 0;
}

/* Stable sort of s[0..n) by ccc (both arrays move together); tmp and
 * tmpc have n slots. */
static void nfc_sort_run(uint32_t *s, uint8_t *ccc, size_t n, uint32_t *tmp, uint8_t *tmpc)
{
    if (n <= 8) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = s[i];
            uint8_t k = ccc[i];
            size_t j = i;
            for (; j > 0 && ccc[j - 1] > k; j--) {
                s[j] = s[j - 1];
                ccc[j] = ccc[j - 1];
            }
            s[j] = c;
            ccc[j] = k;
        }
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++)
        start[ccc[i] + 1]++;
    for (int k = 1; k <= 256; k++)
        start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++) {
        size_t at = start[ccc[i]]++;
        tmp[at] = s[i];
        tmpc[at] = ccc[i];
    }
    memcpy(s, tmp, n * sizeof *s);
    memcpy(ccc, tmpc, n);
}

/* NFC of s[0..n): a new array in *out, its length in *outn. */
static int nfc(const uint32_t *s, size_t n, uint32_t **out, size_t *outn)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += nfc_decompose(s[i], NULL);
    uint32_t *d = pv_alloc_array(m + 1, sizeof *d), *tmp = pv_alloc_array(m + 1, sizeof *tmp);
    uint8_t *ccc = malloc(m + 1), *tmpc = malloc(m + 1);
    if (!d || !tmp || !ccc || !tmpc) {
        free(d);
        free(tmp);
        free(ccc);
        free(tmpc);
        return PV_ENOMEM;
    }
    for (size_t i = 0, k = 0; i < n; i++)
        k += nfc_decompose(s[i], d + k);
    for (size_t i = 0; i < m; i++)
        ccc[i] = uc_ccc_of(d[i]);
    for (size_t i = 0; i < m;) { /* canonical ordering */
        if (!ccc[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < m && ccc[j])
            j++;
        nfc_sort_run(d + i, ccc + i, j - i, tmp, tmpc);
        i = j;
    }
    size_t o = 0;
    long starter = -1;
    int last = -1; /* ccc of the last code point kept */
    for (size_t i = 0; i < m; i++) {
        uint32_t c = d[i];
        int cc = ccc[i];
        if (starter >= 0) {
            int adjacent = (size_t)starter == o - 1;
            if (adjacent || (last != 0 && last < cc)) {
                uint32_t comp = nfc_compose_pair(d[starter], c);
                if (comp) {
                    d[starter] = comp;
                    continue;
                }
            }
        }
        if (cc == 0)
            starter = (long)o;
        d[o++] = c;
        last = cc;
    }
    free(tmp);
    free(ccc);
    free(tmpc);
    *out = d;
    *outn = o;
    return PV_OK;
}

/* ---- white space and lower case ------------------------------------------ */

/* Runs of White_Space -> one space, then strip str.isspace() at both ends. */
static size_t squeeze_space(uint32_t *s, size_t n)
{
    size_t o = 0;
    int in_ws = 0;
    for (size_t i = 0; i < n; i++) {
        if (uc_bits(s[i]) & UC_WS) {
            if (!in_ws)
                s[o++] = ' ';
            in_ws = 1;
        } else {
            s[o++] = s[i];
            in_ws = 0;
        }
    }
    size_t a = 0;
    while (a < o && (uc_bits(s[a]) & UC_SPACE))
        a++;
    while (o > a && (uc_bits(s[o - 1]) & UC_SPACE))
        o--;
    memmove(s, s + a, (o - a) * sizeof *s);
    return o - a;
}

/* CPython's Final_Sigma test for U+03A3 at s[i]. */
static int final_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    uint32_t bits = 0;
    while (j > 0 && ((bits = uc_bits(s[j - 1])) & UC_CASE_IGNORABLE))
        j--;
    if (j == 0 || !(bits & UC_CASED))
        return 0;
    for (j = i + 1; j < n; j++) {
        bits = uc_bits(s[j]);
        if (!(bits & UC_CASE_IGNORABLE))
            return !(bits & UC_CASED);
    }
    return 1;
}

static int lower(const uint32_t *s, size_t n, uint32_t **out, size_t *outn)
{
    size_t m = n;
    for (size_t i = 0; i < n; i++)
        m += s[i] == 0x130;
    uint32_t *d = pv_alloc_array(m + 1, sizeof *d);
    if (!d)
        return PV_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c == 0x130) { /* the one two-code-point lower case */
            d[o++] = 0x69;
            d[o++] = 0x307;
        } else if (c == 0x3A3) {
            d[o++] = final_sigma(s, n, i) ? 0x3C2 : 0x3C3;
        } else {
            d[o++] = uc_lower_of(c);
        }
    }
    *out = d;
    *outn = o;
    return PV_OK;
}

int clip_text_clean(const char *text, size_t len, uint32_t **out, size_t *n, size_t *bad)
{
    uint32_t *a = NULL, *b = NULL;
    size_t na, nb;
    int rc;
    *out = NULL;
    *n = 0;
    a = pv_alloc_array(len + 1, sizeof *a);
    if (!a)
        return PV_ENOMEM;
    na = utf8_decode((const uint8_t *)text, len, a, bad);
    if (na == (size_t)-1) {
        rc = PV_EINVAL;
        goto done;
    }
    na = html_unescape(a, na);
    na = html_unescape(a, na);
    if ((rc = nfc(a, na, &b, &nb)) != 0)
        goto done;
    free(a);
    a = NULL;
    nb = squeeze_space(b, nb);
    if ((rc = lower(b, nb, &a, &na)) != 0)
        goto done;
    if (na) {
        *out = a;
        *n = na;
        a = NULL;
    }
done:
    free(a);
    free(b);
    return rc;
}

/* ---- the pre-split -------------------------------------------------------- */

int clip_text_next_piece(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end)
{
    size_t i = *pos;
    while (i < n && (uc_bits(s[i]) & UC_WS))
        i++;
    if (i >= n) {
        *pos = n;
        return 0;
    }
    size_t j = i + 1;
    uint32_t c = s[i], bits = uc_bits(c);
    if (c == '\'' && i + 1 < n) {
        /* 's 't 'm 'd 're 've 'll, IGNORECASE (s also matches U+017F) */
        uint32_t x = s[i + 1] | 0x20, y = i + 2 < n ? (s[i + 2] | 0x20) : 0;
        if (s[i + 1] == 0x17F ||
            (s[i + 1] < 0x80 && (x == 's' || x == 't' || x == 'm' || x == 'd')))
            j = i + 2;
        else if (s[i + 1] < 0x80 && i + 2 < n && s[i + 2] < 0x80 &&
                 ((x == 'r' && y == 'e') || (x == 'v' && y == 'e') || (x == 'l' && y == 'l')))
            j = i + 3;
    }
    if (j == i + 1) {
        if (bits & UC_L) {
            while (j < n && (uc_bits(s[j]) & UC_L))
                j++;
        } else if (!(bits & UC_N)) {
            while (j < n && !(uc_bits(s[j]) & (UC_WS | UC_L | UC_N)))
                j++;
        }
    }
    *start = i;
    *end = j;
    *pos = j;
    return 1;
}
