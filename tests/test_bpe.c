/*
 * test_bpe.c - CLIP's BPE tokenizer (engine/embed/clip_bpe.c) against its
 * Python reference (tests/ref_clip_bpe.py, run with /usr/bin/python3): the
 * reference trains a small vocabulary (300 merges on an English and
 * accented corpus), both tokenize the same hard strings and ~200 seeded
 * random ones, and the ids must be equal. When python3-regex is installed
 * the reference also checks its pre-split scanner against regex.findall
 * with CLIP's real pattern, and fails if they differ.
 *
 * Then what needs no reference: NFC (precomposed and combining "café" give
 * the same ids), truncation, user-typed special tokens, several threads on
 * one tokenizer, and the refusals (invalid UTF-8 with its offset, a missing
 * file named, a vocabulary without a byte symbol, an unknown merge part,
 * broken JSON, repeated ids, a blank line inside merges.txt).
 *
 * The real vocabulary is not installed by anything (no package ships it):
 * a user gets vocab.json and merges.txt from Hugging Face's
 * openai/clip-vit-base-patch32; a test against it would expect 49,408
 * tokens, "<|startoftext|>" = 49406 and "<|endoftext|>" = 49407.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe_vocab.h"
#include "clip_text.h"
#include "clip_bpe.h"
#include "gen.h"
#include "pixvec.h"
#include "pv_util.h"
#include "unicode_tables.h"

#ifndef PIXVEC_SRC_DIR
#error "PIXVEC_SRC_DIR must name the source tree"
#endif

#define CTX 77
#define NRANDOM 200

static char dir[GEN_PATH_MAX];

static void setup(void) { cr_assert_eq(gen_tmpdir(dir), 0); }
static void teardown(void) { gen_rmtree(dir); }

TestSuite(bpe, .init = setup, .fini = teardown);

static void skip_without_python(void)
{
    if (system("/usr/bin/python3 -c 'import json, unicodedata' 2>/dev/null") != 0)
        cr_skip_test("/usr/bin/python3 is not available: the reference comparison did not run");
}

/* The reference's trained vocabulary in dir, loaded. */
static clip_bpe *ref_vocab(void)
{
    char cmd[3 * GEN_PATH_MAX], v[GEN_PATH_MAX], m[GEN_PATH_MAX], err[512] = "";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref_clip_bpe.py vocab %s", PIXVEC_SRC_DIR,
             dir);
    cr_assert_eq(system(cmd), 0, "the reference failed: %s", cmd);
    clip_bpe *b = NULL;
    cr_assert_eq(clip_bpe_load(gen_path(v, dir, "vocab.json"), gen_path(m, dir, "merges.txt"), &b,
                               err, sizeof err),
                 0, "%s", err);
    return b;
}

static clip_bpe *tiny_vocab(void)
{
    char v[GEN_PATH_MAX], m[GEN_PATH_MAX], err[512] = "";
    cr_assert_eq(bpe_write_tiny_vocab(dir), 0);
    clip_bpe *b = NULL;
    cr_assert_eq(clip_bpe_load(gen_path(v, dir, "vocab.json"), gen_path(m, dir, "merges.txt"), &b,
                               err, sizeof err),
                 0, "%s", err);
    return b;
}

static size_t enc(const clip_bpe *b, const char *s, int32_t *ids, size_t max)
{
    char err[256] = "";
    size_t n = 0;
    cr_assert_eq(clip_bpe_encode(b, s, strlen(s), ids, max, &n, err, sizeof err), 0, "%s: %s", s,
                 err);
    cr_assert(n >= 2 && n <= max);
    return n;
}

/* Write lines (UTF-8, lens bytes each; lens NULL: NUL-terminated) as JSON
 * strings to dir/name, one a line. */
static void write_jsonl(const char *name, const char *const *lines, const size_t *lens, size_t n)
{
    char p[GEN_PATH_MAX];
    FILE *f = fopen(gen_path(p, dir, name), "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++) {
        json_t *js = json_stringn(lines[i], lens ? lens[i] : strlen(lines[i]));
        cr_assert_not_null(js, "line %zu is not valid UTF-8", i);
        char *s = json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        fprintf(f, "%s\n", s);
        free(s);
        json_decref(js);
    }
    cr_assert_eq(fclose(f), 0);
}

/* Assert that got[0..n) equals the JSON array want (line i, for the
 * message; what names the input). */
static void assert_same(json_t *want, const long long *got, size_t n, size_t i, const char *what)
{
    size_t nw = json_array_size(want), same = 0;
    while (same < n && same < nw && got[same] == json_integer_value(json_array_get(want, same)))
        same++;
    cr_assert(same == n && n == nw,
              "line %zu (%s): %zu values from C, %zu from Python; first difference at %zu "
              "(C %lld, Python %lld)",
              i, what, n, nw, same, same < n ? got[same] : -1LL,
              same < nw ? (long long)json_integer_value(json_array_get(want, same)) : -1LL);
}

/* Run the reference in mode (and its arguments) on lines (as write_jsonl):
 * its n output lines, each a JSON array, as one array. */
static json_t *run_ref(const char *mode, const char *const *lines, const size_t *lens, size_t n)
{
    char in[GEN_PATH_MAX], out[GEN_PATH_MAX], cmd[5 * GEN_PATH_MAX];
    gen_path(in, dir, "in.jsonl");
    gen_path(out, dir, "out.jsonl");
    write_jsonl("in.jsonl", lines, lens, n);
    const int k = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref_clip_bpe.py %s <%s >%s",
                           PIXVEC_SRC_DIR, mode, in, out);
    cr_assert(k > 0 && (size_t)k < sizeof cmd, "command too long");
    cr_assert_eq(system(cmd), 0, "the reference failed (or its scanner disagrees with regex): %s",
                 cmd);
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(getline(&line, &cap, f) > 0, "the reference wrote %zu lines of %zu", i, n);
        json_error_t je;
        json_t *arr = json_loads(line, 0, &je);
        cr_assert(json_is_array(arr), "line %zu: %s", i, line);
        json_array_append_new(all, arr);
    }
    free(line);
    fclose(f);
    return all;
}

/* Tokenize texts with the C code and the reference; the ids must agree. */
static void compare(const clip_bpe *b, const char *const *texts, size_t nt)
{
    char mode[3 * GEN_PATH_MAX];
    snprintf(mode, sizeof mode, "encode %s/vocab.json %s/merges.txt", dir, dir);
    json_t *all = run_ref(mode, texts, NULL, nt);
    for (size_t i = 0; i < nt; i++) {
        json_t *arr = json_array_get(all, i);
        int32_t ids[CTX];
        size_t n = enc(b, texts[i], ids, CTX);
        long long got[CTX];
        for (size_t k = 0; k < n; k++)
            got[k] = ids[k];
        assert_same(arr, got, n, i, texts[i]);
    }
    json_decref(all);
}

static const char *const hard[] = {
    "A photo of a cat!!! (Really?) ... #hashtag @user -- 100% [ok] {x} a.b,c;d:e",
    "2024",
    "3.14",
    "In 2024, pi = 3.14159 and 1,000,000 people; x2 2x",
    "it's they're we've I'm you'll he'd don't",
    "IT'S THEY'RE WE'VE I'M YOU'LL HE'D DON'T It'S",
    "it\xe2\x80\x99s don\xe2\x80\x99t \xe2\x80\x98quoted\xe2\x80\x99 \xe2\x80\x9c"
    "double\xe2\x80\x9d",
    "''s ' x' 's 'S rock'n'roll '\xc5\xbf '\xc5\xbf\xc5\xbf 're're",
    "caf\xc3\xa9",
    "cafe\xcc\x81",
    "Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
    "e \xc3\xa0 S\xc3\xa3o Paulo, na\xc3\xafve Z\xc3\xbcrich",
    "\xc3\x85ngstr\xc3\xb6m A\xcc\x8angstro\xcc\x88m \xe2\x84\xab", /* U+212B ANGSTROM SIGN */
    "Ti\xe1\xba\xbfng Vi\xe1\xbb\x87t e\xcc\xa3\xcc\x82 e\xcc\x82\xcc\xa3",      /* mark order */
    "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", /* Hangul, Jamo */
    "\xe7\x8c\xab\xe7\x8a\xac\xe3\x81\xae\xe5\x86\x99\xe7\x9c\x9f \xe4\xb8\xad\xe6\x96\x87",
    "\xf0\x9f\x90\xb1\xf0\x9f\x90\xb6 \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d"
    "\xf0\x9f\x91\xa7 \xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c\x88 "
    "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd cat\xf0\x9f\x90\xb1"
    "dog",
    "a\t\tb\n\nc\r\n d\x1c"
    "e\x1f f \xe3\x80\x80g\xc2\xa0h\xe2\x80\x83i\xc2\x85j",
    "\x1c  leading and trailing \x1d",
    "   ",
    "\t\n\x0b\x0c",
    "\x1c",
    " x \x1c\x1c y \x1f",
    "&amp;amp; &lt;b&gt; &quot;x&quot; &apos; &#39; &#x1F600; &#128512; &nbsp;x",
    "&AMP; &amp &#0; &#xD800; &#99999999999; &bogus; &#x; &#; &amp;lt;tag&amp;gt; &#38;amp;",
    "e&#769; &#X41;&#x62;",
    "\xc4\xb0stanbul",
    "\xc4\xb0\xc4\xb0 I\xcc\x87",
    "\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3 \xce\xa3 "
    "\xce\x91\xce\xa3. \xce\xa3\xce\x91 \xce\x91\xce\xa3\xcc\x81",
    "\xc7\x85 \xc3\x9f \xe2\x84\xaa \xef\xac\x81 \xe1\xba\x9e", /* Dz, sharp s, Kelvin, fi, capital
                                                                   sharp s */
    "<|endoftext|>",
    "<|startoftext|>hello<|endoftext|>",
    "",
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d "
    "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87",
    "\xd9\xa3\xd9\xa4 \xe2\x85\xa7 \xc2\xbd \xe2\x91\xa0 \xef\xbc\x91\xef\xbc\x92", /* other N */
    "supercalifragilisticexpialidocious",
};

Test(bpe, hard_strings_match_the_reference, .timeout = 120)
{
    skip_without_python();
    clip_bpe *b = ref_vocab();
    compare(b, hard, sizeof hard / sizeof hard[0]);
    clip_bpe_free(b);
}

/* Pieces the random texts are made of: every class the pipeline treats
 * differently. */
static const char *const frag[] = {
    "the",
    "photo",
    "The",
    "CAT",
    "of",
    "a",
    " ",
    "  ",
    "\t",
    "\n",
    "\x1c",
    "\x1f",
    "\xe3\x80\x80",
    "\xc2\xa0",
    "\xe2\x80\x83",
    "0",
    "7",
    "2024",
    "3.14",
    ".",
    ",",
    "!",
    "?!",
    "-",
    "'",
    "'s",
    "'T",
    "'re",
    "'VE",
    "'m",
    "'ll",
    "'d",
    "\xe2\x80\x99",
    "\"",
    "(",
    ")",
    "#",
    "\xc3\xa9",
    "e\xcc\x81",
    "\xcc\x81",
    "\xcc\xa3",
    "\xcc\x82",
    "\xc3\x85",
    "\xc3\xb1",
    "\xc3\x9f",
    "\xc4\xb0",
    "\xce\xa3",
    "\xce\x91",
    "\xcf\x82",
    "\xe7\x8c\xab",
    "\xe5\x86\x99",
    "\xe3\x81\xae",
    "\xed\x95\x9c",
    "\xe1\x84\x92",
    "\xe1\x85\xa1",
    "\xe1\x86\xab",
    "\xf0\x9f\x90\xb1",
    "\xe2\x80\x8d",
    "\xef\xb8\x8f",
    "\xf0\x9f\x8f\xbd",
    "&amp;",
    "&amp;amp;",
    "&#233;",
    "&#x301;",
    "&lt;",
    "&nbsp;",
    "&",
    "#",
    ";",
    "<|endoftext|>",
    "\xc5\xbf",
    "\xd9\xa3",
    "\xc2\xbd",
    "\xe2\x84\xaa",
    "\xef\xac\x81",
    "th",
    "e",
    "in",
    "and",
};

static char *random_text(uint64_t *st)
{
    size_t nf = sizeof frag / sizeof frag[0], parts = 1 + pv_rand64(st) % 24, len = 0;
    char *s = malloc(parts * 16 + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < parts; i++) {
        const char *f = frag[pv_rand64(st) % nf];
        memcpy(s + len, f, strlen(f));
        len += strlen(f);
    }
    s[len] = '\0';
    return s;
}

Test(bpe, random_strings_match_the_reference, .timeout = 120)
{
    skip_without_python();
    clip_bpe *b = ref_vocab();
    char *texts[NRANDOM];
    uint64_t st = 14;
    for (int i = 0; i < NRANDOM; i++)
        texts[i] = random_text(&st);
    compare(b, (const char *const *)texts, NRANDOM);
    for (int i = 0; i < NRANDOM; i++)
        free(texts[i]);
    clip_bpe_free(b);
}

Test(bpe, truncation_matches_the_reference, .timeout = 120)
{
    skip_without_python();
    clip_bpe *b = ref_vocab();
    char longtext[4000] = "", word[4000];
    for (int i = 0; i < 60; i++)
        strcat(longtext, i % 7 ? "the photo " : "Zebra-crossing, 42 ");
    memset(word, 'q', 300);
    word[300] = '\0';
    const char *texts[] = {longtext, word};
    compare(b, texts, 2);
    int32_t ids[CTX], few[5];
    size_t n = enc(b, longtext, ids, CTX);
    cr_assert_eq(n, CTX);
    cr_assert_eq(ids[CTX - 1], clip_bpe_vocab_size(b) - 1, "the end token last");
    size_t k = enc(b, longtext, few, 5);
    cr_assert_eq(k, 5);
    cr_assert_eq(memcmp(few, ids, 4 * sizeof *ids), 0, "a shorter cut is a prefix");
    cr_assert_eq(few[4], ids[CTX - 1]);
    cr_assert_eq(enc(b, longtext, few, 2), 2);
    cr_assert_eq(few[0], ids[0]);
    cr_assert_eq(few[1], ids[CTX - 1]);
    clip_bpe_free(b);
}

Test(bpe, nfc_special_tokens_and_merges)
{
    clip_bpe *b = tiny_vocab();
    int32_t x[CTX], y[CTX];
    size_t nx = enc(b, "caf\xc3\xa9 CAFE\xcc\x81", x, CTX),
           ny = enc(b, "Caf\xc3\xa9 caf\xc3\xa9", y, CTX);
    cr_assert_eq(nx, ny);
    cr_assert_eq(memcmp(x, y, nx * sizeof *x), 0, "precomposed and combining differ");
    /* ids of the tiny vocabulary: 512 bytes, 19 merges (bpe_vocab.c), then
     * start 531 and end 532 */
    cr_assert_eq(clip_bpe_vocab_size(b), 533);
    cr_assert_eq(enc(b, "", x, CTX), 2);
    cr_assert_eq(x[0], 531);
    cr_assert_eq(x[1], 532);
    cr_assert_eq(enc(b, " \t\n\x1c ", x, CTX), 2, "only space is no token");
    /* "the" is one token: t h -> th, th e</w> -> the</w> (the 2nd merge) */
    cr_assert_eq(enc(b, "THE", x, CTX), 3);
    cr_assert_eq(x[1], 512 + 1);
    /* a user's <|endoftext|> is text: no start or end token inside */
    size_t n = enc(b, "<|endoftext|> <|startoftext|>", x, CTX);
    cr_assert_gt(n, 4);
    for (size_t i = 1; i + 1 < n; i++)
        cr_assert(x[i] != 531 && x[i] != 532, "a control token at %zu", i);
    clip_bpe_free(b);
}

typedef struct {
    const clip_bpe *b;
    char **texts;
    int32_t (*ids)[CTX];
    size_t *n;
    int bad;
} bpe_thread_arg;

static void *encode_all(void *p)
{
    bpe_thread_arg *a = p;
    for (int r = 0; r < 5; r++)
        for (int i = 0; i < NRANDOM; i++) {
            int32_t ids[CTX];
            size_t n = 0;
            if (clip_bpe_encode(a->b, a->texts[i], strlen(a->texts[i]), ids, CTX, &n, NULL, 0) ||
                n != a->n[i] || memcmp(ids, a->ids[i], n * sizeof *ids) != 0)
                a->bad++;
        }
    return NULL;
}

Test(bpe, threads_share_one_tokenizer)
{
    clip_bpe *b = tiny_vocab();
    char *texts[NRANDOM];
    int32_t(*ids)[CTX] = malloc(NRANDOM * sizeof *ids);
    size_t n[NRANDOM];
    uint64_t st = 99;
    for (int i = 0; i < NRANDOM; i++) {
        texts[i] = random_text(&st);
        n[i] = enc(b, texts[i], ids[i], CTX);
    }
    pthread_t th[4];
    bpe_thread_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (bpe_thread_arg){b, texts, ids, n, 0};
        cr_assert_eq(pthread_create(&th[t], NULL, encode_all, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(args[t].bad, 0, "thread %d: %d encodings differ", t, args[t].bad);
    }
    for (int i = 0; i < NRANDOM; i++)
        free(texts[i]);
    free(ids);
    clip_bpe_free(b);
}

Test(bpe, invalid_utf8_names_the_offset)
{
    clip_bpe *b = tiny_vocab();
    static const struct {
        const char *s;
        size_t len, off;
    } bad[] = {
        {"ab\xff", 3, 2},       {"x\xc0\xaf", 3, 1},        {"\xed\xa0\x80", 3, 0},
        {"abc\xe2\x82", 5, 3},  {"\xf4\x90\x80\x80", 4, 0}, {"ok \x80", 4, 3},
        {"\xe0\x80\x80", 3, 0}, {"caf\xc3\xa9\xc3", 6, 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "", want[64];
        int32_t ids[CTX];
        size_t n = 99;
        cr_assert_eq(clip_bpe_encode(b, bad[i].s, bad[i].len, ids, CTX, &n, err, sizeof err),
                     PV_EINVAL, "case %zu", i);
        snprintf(want, sizeof want, "offset %zu", bad[i].off);
        cr_assert(strstr(err, want), "case %zu: \"%s\" lacks \"%s\"", i, err, want);
    }
    int32_t ids[4];
    size_t n;
    cr_assert_eq(clip_bpe_encode(b, "a", 1, ids, 1, &n, NULL, 0), PV_EINVAL, "max < 2");
    cr_assert_eq(clip_bpe_encode(b, "a\0b", 3, ids, 4, &n, NULL, 0), 0, "NUL is a character");
    char *big = calloc(CLIP_BPE_MAX_TEXT + 1, 1), err[256] = "";
    cr_assert_not_null(big);
    memset(big, 'a', CLIP_BPE_MAX_TEXT + 1);
    cr_assert_eq(clip_bpe_encode(b, big, CLIP_BPE_MAX_TEXT + 1, ids, 4, &n, err, sizeof err),
                 PV_EINVAL);
    cr_assert(strstr(err, "over the limit"), "%s", err);
    cr_assert_eq(clip_bpe_encode(b, big, CLIP_BPE_MAX_TEXT, ids, 4, &n, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(n, 4);
    free(big);
    clip_bpe_free(b);
}

/* Load with vocab and merges given as text (NULL: the tiny one); returns
 * the code and the message. */
static int load_text(const char *vocab, const char *merges, char *err, size_t errlen)
{
    char v[GEN_PATH_MAX], m[GEN_PATH_MAX];
    cr_assert_eq(bpe_write_tiny_vocab(dir), 0);
    gen_path(v, dir, vocab ? "v2.json" : "vocab.json");
    gen_path(m, dir, merges ? "m2.txt" : "merges.txt");
    if (vocab)
        cr_assert_eq(gen_write_bytes(v, vocab, strlen(vocab)), 0);
    if (merges)
        cr_assert_eq(gen_write_bytes(m, merges, strlen(merges)), 0);
    clip_bpe *b = (clip_bpe *)1;
    int rc = clip_bpe_load(v, m, &b, err, errlen);
    cr_assert(rc == 0 ? b != NULL : b == NULL);
    clip_bpe_free(b);
    return rc;
}

/* The tiny vocab.json with edit applied to its JSON object. */
static char *edited_vocab_flags(void (*edit)(json_t *), size_t flags)
{
    char v[GEN_PATH_MAX];
    cr_assert_eq(bpe_write_tiny_vocab(dir), 0);
    json_error_t je;
    json_t *o = json_load_file(gen_path(v, dir, "vocab.json"), 0, &je);
    cr_assert_not_null(o, "%s", je.text);
    edit(o);
    char *s = json_dumps(o, flags);
    json_decref(o);
    return s;
}

static char *edited_vocab(void (*edit)(json_t *)) { return edited_vocab_flags(edit, 0); }

static void drop_a(json_t *o) { json_object_del(o, "a"); }
static void drop_eow(json_t *o) { json_object_del(o, "\xc4\xa0</w>"); } /* byte 0x20 */
static void drop_eot(json_t *o) { json_object_del(o, "<|endoftext|>"); }
static void dup_id(json_t *o) { json_object_set_new(o, "zzz", json_integer(5)); }
static void str_id(json_t *o) { json_object_set_new(o, "zzz", json_string("7")); }
static void neg_id(json_t *o) { json_object_set_new(o, "zzz", json_integer(-1)); }
/* tokens that need escapes: a quote, a backslash, an astral character */
static void add_escaped(json_t *o)
{
    json_object_set_new(o, "x\"\\", json_integer(600));
    json_object_set_new(o, "\xf0\x9f\x90\xb1", json_integer(601));
}

Test(bpe, refusals_name_the_file_and_reason)
{
    char err[512] = "", vp[GEN_PATH_MAX], mp[GEN_PATH_MAX];
    int32_t ok = load_text(NULL, NULL, err, sizeof err);
    cr_assert_eq(ok, 0, "%s", err);

    clip_bpe *b = NULL;
    cr_assert_eq(
        clip_bpe_load("/nonexistent/vocab.json", "/nonexistent/merges.txt", &b, err, sizeof err),
        PV_EIO);
    cr_assert(strstr(err, "/nonexistent/vocab.json"), "%s", err);

    static const struct {
        void (*edit)(json_t *);
        const char *want;
    } vocab_cases[] = {
        {drop_a, "0x61"},       {drop_eow, "0x20"},         {drop_eot, "<|endoftext|>"},
        {dup_id, "used twice"}, {str_id, "not an integer"}, {neg_id, "not an integer"},
    };
    for (size_t i = 0; i < sizeof vocab_cases / sizeof vocab_cases[0]; i++) {
        char *v = edited_vocab(vocab_cases[i].edit);
        cr_assert_eq(load_text(v, NULL, err, sizeof err), PV_ECORRUPT, "vocab case %zu", i);
        cr_assert(strstr(err, "v2.json") && strstr(err, vocab_cases[i].want),
                  "vocab case %zu: \"%s\"", i, err);
        free(v);
    }
    static const struct {
        const char *text, *file, *want;
    } text_cases[] = {
        {"{not json", NULL, "line 1"},
        {"[1, 2]", NULL, "not a JSON object"},
        {"{\"a\": 1, \"a\": 2}", NULL, "duplicate"},
        {"", NULL, "v2.json"},
        {"{\"a\": 1} x", NULL, "text after the object"},
        {"{\"a\": 1.0}", NULL, "not an integer"},
        {"{\"a\": 16777216}", NULL, "not an integer"},
        {"{\"a\": 1e3}", NULL, "not an integer"},
        {"{\"\\ud800\": 1}", NULL, "lone surrogate"},
        {"{\"\\udc00x\": 1}", NULL, "lone surrogate"},
        {"{\"\\u0000\": 1}", NULL, "NUL"},
        {"{\"a\\q\": 1}", NULL, "bad escape"},
        {"{\"a\tb\": 1}", NULL, "control character"},
        {"{\"\xff\": 1}", NULL, "not UTF-8"},
        {"{\"\": 1}", NULL, "empty token"},
        {"{\"a\": 1,}", NULL, "line 1 column 9: a token string expected"},
        {"{\n\"a\"\n 1}", NULL, "line 3 column 2: ':' expected"},
        {"{\"a\": 1", NULL, "',' or '}' expected"},
        {"{\"a", NULL, "unterminated"},
        {NULL, "#version: 0.2\nt h\nzz q\n", "line 3: \"zz\" is not in"},
        {NULL, "t h\nh x\n", "line 2: \"hx\" is not in"},
        {NULL, "#version: 0.2\nt h\n\nc a\n", "line 3: empty"},
        {NULL, "t h\nth\n", "line 2: not two tokens"},
        {NULL, "t  h\n", "line 1: not two tokens"},
        {NULL, "t h\na n\nt h\n", "line 3: the pair is already merged at line 1"},
    };
    for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
        cr_assert_eq(load_text(text_cases[i].text, text_cases[i].file, err, sizeof err),
                     PV_ECORRUPT, "case %zu", i);
        cr_assert(strstr(err, text_cases[i].file ? "m2.txt" : "v2.json") &&
                      strstr(err, text_cases[i].want),
                  "case %zu: \"%s\" lacks \"%s\"", i, err, text_cases[i].want);
    }
    /* accepted: every character written as an escape (\uXXXX, surrogate
     * pairs), the same ids as written plainly */
    static const char *const probe = "caf\xc3\xa9 \xf0\x9f\x90\xb1 \"x\" \\ /";
    int32_t plain[CTX], esc[CTX];
    size_t np, ne;
    cr_assert_eq(clip_bpe_load(gen_path(vp, dir, "vocab.json"), gen_path(mp, dir, "merges.txt"), &b,
                               err, sizeof err),
                 0, "%s", err);
    np = enc(b, probe, plain, CTX);
    clip_bpe_free(b);
    char *v = edited_vocab_flags(add_escaped, JSON_ENSURE_ASCII);
    cr_assert(strstr(v, "\\uD83D\\uDC31") && strstr(v, "\\u0100"), "%s", v);
    cr_assert_eq(gen_write_bytes(vp, v, strlen(v)), 0);
    free(v);
    cr_assert_eq(clip_bpe_load(vp, mp, &b, err, sizeof err), 0, "%s", err);
    ne = enc(b, probe, esc, CTX);
    cr_assert_eq(ne, np);
    cr_assert_eq(memcmp(plain, esc, np * sizeof *esc), 0);
    clip_bpe_free(b);
    /* accepted: CRLF lines, trailing blank lines, no header, no merges */
    cr_assert_eq(load_text(NULL, "t h\r\nth e</w>\r\n\r\n\n", err, sizeof err), 0, "%s", err);
    cr_assert_eq(load_text(NULL, "#version: 0.2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(load_text(NULL, "", err, sizeof err), 0, "%s", err);
}

/* The cleanup alone (HTML, NFC, space, lower case) against Python's
 * unicodedata.normalize and str.lower, on every code point: blocks of 256
 * consecutive ones (so neighbours combine, reorder and give sigma its
 * context), and every canonical decomposition's pair written out
 * decomposed (so NFC must compose it back). */
Test(bpe, cleanup_matches_python_on_every_code_point, .timeout = 300)
{
    skip_without_python();
    size_t cap = 0x110000 / 256 + uc_decomp_len, n = 0;
    char **lines = malloc(cap * sizeof *lines);
    size_t *lens = malloc(cap * sizeof *lens);
    cr_assert(lines && lens);
    for (uint32_t base = 0; base < 0x110000; base += 256) {
        if (base >= 0xD800 && base < 0xE000)
            continue;
        lines[n] = malloc(256 * 4);
        lens[n] = 0;
        for (uint32_t c = base; c < base + 256; c++)
            lens[n] += clip_text_utf8(c, (uint8_t *)lines[n] + lens[n]);
        n++;
    }
    for (uint32_t i = 0; i < uc_decomp_len; i++) {
        if (!uc_decomp[i].b)
            continue;
        lines[n] = malloc(8);
        lens[n] = clip_text_utf8(uc_decomp[i].a, (uint8_t *)lines[n]);
        lens[n] += clip_text_utf8(uc_decomp[i].b, (uint8_t *)lines[n] + lens[n]);
        n++;
    }
    json_t *all = run_ref("clean", (const char *const *)lines, lens, n);
    for (size_t i = 0; i < n; i++) {
        json_t *want = json_array_get(all, i);
        uint32_t *got = NULL;
        size_t ng = 0, bad = 0;
        cr_assert_eq(clip_text_clean(lines[i], lens[i], &got, &ng, &bad), 0);
        long long *g = malloc((ng + 1) * sizeof *g);
        cr_assert_not_null(g);
        for (size_t k = 0; k < ng; k++)
            g[k] = got[k];
        assert_same(want, g, ng, i, "code points");
        free(g);
        free(got);
        free(lines[i]);
    }
    json_decref(all);
    free(lines);
    free(lens);
}

/* Merge ranks that openai's loop and a plain priority queue order
 * differently: "ab a" ranks before "a b", so after the first "a b" of
 * "ababab" is merged, a queue that looked at new pairs at once would merge
 * "ab a" before the second "a b"; openai merges every "a b" first. Also
 * overlapping "a a" runs. */
static void add_tokens(json_t *o)
{
    static const char *const t[] = {"ab", "aba", "ab</w>", "aa", "aaa</w>", "aab", "ba"};
    for (int i = 0; i < 7; i++)
        json_object_set_new(o, t[i], json_integer(533 + i));
}

Test(bpe, merge_order_matches_the_reference)
{
    skip_without_python();
    char *v = edited_vocab(add_tokens), p[GEN_PATH_MAX];
    cr_assert_eq(gen_write_bytes(gen_path(p, dir, "vocab.json"), v, strlen(v)), 0);
    free(v);
    const char *m = "#version: 0.2\nab a\naa a</w>\na b\na b</w>\naa b\na a\nb a\n";
    cr_assert_eq(gen_write_bytes(gen_path(p, dir, "merges.txt"), m, strlen(m)), 0);
    char vp[GEN_PATH_MAX], err[256] = "";
    clip_bpe *b = NULL;
    cr_assert_eq(clip_bpe_load(gen_path(vp, dir, "vocab.json"), p, &b, err, sizeof err), 0, "%s",
                 err);
    const char *texts[] = {"ababab", "abababab", "aaaa", "aaaaa", "aaaaaa", "aabab",
                           "baba",   "abaaba",   "a",    "ab",    "ba",     "aab aaab"};
    compare(b, texts, sizeof texts / sizeof texts[0]);
    int32_t ids[CTX];
    cr_assert_eq(enc(b, "ababab", ids, CTX), 5, "ab, aba, b</w>");
    cr_assert_eq(ids[1], 533);
    cr_assert_eq(ids[2], 534);
    clip_bpe_free(b);
}
