/*
 * test_names.c - file names are bytes (cli/names.c, and every output that
 * shows a name). Unit tests of the one escape: plain names unchanged; the
 * quoted form for control bytes, bytes that are not UTF-8 (a lone
 * continuation byte, overlong forms, surrogates, past U+10FFFF) and a
 * leading '"'; valid multi-byte characters kept; the JSON rule; reading a
 * quoted name back. Then end to end with the pixvec binary (pixels
 * embedder): files named caf\xe9.jpg, a\tb.jpg, new\nline.jpg, "q" s.jpg
 * and a plain one, two of them near-duplicates of the others, through
 * add, ls, query, dups (text, JSON, --json-out, keep and drop lists, the
 * HTML report), rm, and --move-to with undo-move, which must put the very
 * bytes back under the very names.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "names.h"
#include "page_test.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

/* The end-to-end test's scratch is page_test.h's: pt.dir holds imgs/, the
 * database and the report page; pixvec runs through page_pixvec. */
static void setup(void)
{
    page_test_setup("dups.html");
}

TestSuite(names, .init = setup, .fini = page_test_teardown, .timeout = 120);

#define run(...) page_pixvec(__VA_ARGS__, (char *)NULL)

/* ---- the escape -------------------------------------------------------------- */

/* A name, its text form, and its JSON value (NULL: the name itself). */
typedef struct name_case {
    const char *name, *text, *json;
} name_case;

/* Every case's text form and JSON value as given, plainness as the text
 * form says, and the text form reads back as the name. */
static void expect_cases(const name_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *want_json = c[i].json ? c[i].json : c[i].name;
        char *t = cli_name_text(c[i].name), *back = NULL;
        json_t *j = cli_name_json(c[i].name);

        cr_assert_not_null(t);
        cr_assert_str_eq(t, c[i].text, "text form of case %zu", i);
        cr_assert_eq(cli_name_is_plain(c[i].name), strcmp(c[i].name, c[i].text) == 0);
        cr_assert_not_null(j);
        cr_assert_str_eq(json_string_value(j), want_json, "JSON value of case %zu", i);
        cr_assert_eq(cli_name_parse(t, strlen(t), &back), 0, "%s reads back", t);
        cr_assert_str_eq(back, c[i].name, "round trip of %s", t);
        free(t);
        free(back);
        json_decref(j);
    }
}

#define EXPECT_CASES(c) expect_cases(c, sizeof c / sizeof *c)

Test(names, plain_names_unchanged)
{
    static const name_case c[] = {
        {"photo.jpg", "photo.jpg", NULL},
        {"/data/a b/c's & <d>.png", "/data/a b/c's & <d>.png", NULL},
        /* A backslash and a quote inside a plain name are not escaped. */
        {"a\\b\"c.jpg", "a\\b\"c.jpg", NULL},
        /* é (2 bytes), € (3), an emoji (4 bytes): valid UTF-8 is kept. */
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.jpg",
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.jpg", NULL},
        /* The largest code point, U+10FFFF. */
        {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf", NULL},
        {"", "", NULL},
    };
    EXPECT_CASES(c);
}

/* Control bytes: quoted in text; JSON has the exact name (it escapes them
 * itself). */
Test(names, control_bytes_quoted)
{
    static const name_case c[] = {
        {"a\tb.jpg", "\"a\\tb.jpg\"", NULL},
        {"new\nline.jpg", "\"new\\nline.jpg\"", NULL},
        {"cr\r.jpg", "\"cr\\r.jpg\"", NULL},
        {"esc\x1b[1m\x7f.jpg", "\"esc\\x1b[1m\\x7f.jpg\"", NULL},
        /* Inside the quotes a backslash and a quote are escaped; é stays. */
        {"a\\b\"\t\xc3\xa9", "\"a\\\\b\\\"\\t\xc3\xa9\"", NULL},
    };
    EXPECT_CASES(c);
}

/* Bytes that are not UTF-8: quoted in text and in JSON alike. */
Test(names, bytes_that_are_not_utf8)
{
    static const name_case c[] = {
        {"caf\xe9.jpg", "\"caf\\xe9.jpg\"", "\"caf\\xe9.jpg\""}, /* Latin-1 é */
        /* A lone continuation byte, a lead byte without its continuation. */
        {"\x80x", "\"\\x80x\"", "\"\\x80x\""},
        {"a\xc3", "\"a\\xc3\"", "\"a\\xc3\""},
        /* Overlong '/' in 2 and 3 bytes: each byte escaped. */
        {"\xc0\xaf", "\"\\xc0\\xaf\"", "\"\\xc0\\xaf\""},
        {"\xe0\x80\xaf", "\"\\xe0\\x80\\xaf\"", "\"\\xe0\\x80\\xaf\""},
        /* A surrogate (U+D800), and U+110000. */
        {"\xed\xa0\x80", "\"\\xed\\xa0\\x80\"", "\"\\xed\\xa0\\x80\""},
        {"\xf4\x90\x80\x80", "\"\\xf4\\x90\\x80\\x80\"", "\"\\xf4\\x90\\x80\\x80\""},
        /* A valid character beside an invalid byte stays as it is. */
        {"\xc3\xa9\xff", "\"\xc3\xa9\\xff\"", "\"\xc3\xa9\\xff\""},
    };
    EXPECT_CASES(c);
    cr_assert_not(cli_utf8_valid("caf\xe9"));
    cr_assert(cli_utf8_valid("caf\xc3\xa9"));
}

/* A leading '"' is quoted everywhere, so that a shown name beginning with
 * '"' is always the quoted form. */
Test(names, leading_quote_quoted)
{
    static const name_case c[] = {
        {"\"q\" s.jpg", "\"\\\"q\\\" s.jpg\"", "\"\\\"q\\\" s.jpg\""},
        {"\"", "\"\\\"\"", "\"\\\"\""},
    };
    EXPECT_CASES(c);
}

Test(names, parse_refuses_malformed)
{
    static const char *bad[] = {"\"", "\"abc", "\"a\"b\"", "\"a\\\"", "\"\\q\"",
                                "\"\\x4\"", "\"\\xzz\"", "\"\\x00\""};
    char *out = (char *)"untouched";

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(cli_name_parse(bad[i], strlen(bad[i]), &out), -1, "%s", bad[i]);
        cr_assert_null(out);
    }
    /* Upper-case hex digits are read too; a plain name is taken as it is. */
    cr_assert_eq(cli_name_parse("\"\\xE9\"", 6, &out), 0);
    cr_assert_str_eq(out, "\xe9");
    free(out);
    cr_assert_eq(cli_name_parse("a\\tb", 4, &out), 0);
    cr_assert_str_eq(out, "a\\tb");
    free(out);
}

/* ---- end to end ---------------------------------------------------------------- */

/* The collection: two originals and a half-size copy of each (box
 * average), one unrelated image. The copies get the names that are not
 * UTF-8 or hold a newline, so they are the ones dropped and moved. */
enum { NFILES = 5 };
static const char *const file_names[NFILES] = {
    "plain.jpg", "caf\xe9.jpg", "a\tb.jpg", "new\nline.jpg", "\"q\" s.jpg"};
static char paths[NFILES][GEN_PATH_MAX];
static uint8_t *bytes[NFILES];
static size_t nbytes[NFILES];

static void write_jpeg(int i, uint32_t w, uint32_t h, const uint8_t *px)
{
    gen_path(paths[i], pt.imgs, file_names[i]);
    cr_assert_eq(gen_write_jpeg(paths[i], w, h, 3, px, 90, 0), 0, "%s", paths[i]);
    cr_assert_eq(gen_read_bytes(paths[i], &bytes[i], &nbytes[i]), 0);
}

static void make_files(void)
{
    const uint32_t w = 160, h = 120;
    uint8_t *px = malloc((size_t)w * h * 3), *half = malloc((size_t)w * h * 3 / 4);

    cr_assert(px && half);
    for (int g = 0; g < 2; g++) {
        gen_pattern(w, h, 3, 100 + 17 * (uint32_t)g, px);
        write_jpeg(2 * g, w, h, px);
        for (uint32_t y = 0; y < h / 2; y++)
            for (uint32_t x = 0; x < w / 2; x++)
                for (uint32_t c = 0; c < 3; c++) {
                    const uint8_t *p = px + ((size_t)(2 * y) * w + 2 * x) * 3 + c;
                    half[((size_t)y * (w / 2) + x) * 3 + c] =
                        (uint8_t)((p[0] + p[3] + p[(size_t)w * 3] + p[(size_t)w * 3 + 3] + 2) / 4);
                }
        write_jpeg(2 * g + 1, w / 2, h / 2, half);
    }
    /* Unrelated: another seed, upside down. */
    gen_pattern(w, h, 3, 900, px);
    for (size_t i = 0; i < (size_t)w * h * 3 / 2; i++) {
        uint8_t t = px[i];
        px[i] = px[(size_t)w * h * 3 - 1 - i];
        px[(size_t)w * h * 3 - 1 - i] = t;
    }
    write_jpeg(4, w, h, px);
    free(px);
    free(half);
}

static void free_files(void)
{
    for (int i = 0; i < NFILES; i++) {
        free(bytes[i]);
        bytes[i] = NULL;
    }
}

/* The text form of file i's full path, built here by hand (not by
 * names.c), as the README documents it. */
static const char *text_form(int i)
{
    static char buf[NFILES][GEN_PATH_MAX + 16];
    static const char *const tails[NFILES] = {NULL, "caf\\xe9.jpg", "a\\tb.jpg",
                                              "new\\nline.jpg", NULL};
    if (tails[i] == NULL) /* plain: the quote of "q" s.jpg is not leading */
        snprintf(buf[i], sizeof buf[i], "%.*s", GEN_PATH_MAX - 1, paths[i]);
    else
        snprintf(buf[i], sizeof buf[i], "\"%s/%s\"", pt.imgs, tails[i]);
    return buf[i];
}

/* The JSON value of file i's path: exact unless it is not UTF-8. */
static const char *json_form(int i)
{
    return i == 1 ? text_form(1) : paths[i];
}

/* The index of the file whose JSON path value is s, or -1. */
static int file_of_json(const char *s)
{
    for (int i = 0; s != NULL && i < NFILES; i++)
        if (strcmp(s, json_form(i)) == 0)
            return i;
    return -1;
}

static json_t *parse_json(const char *text, const char *what)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "%s: not JSON (%s): %s", what, e.text, text);
    return j;
}

/* Every file's text form on a line of its own in text, with the given
 * prefix before it (one of the listing's columns) if any. */
static void expect_lines(const char *text, const int *which, int n, const char *what)
{
    for (int k = 0; k < n; k++) {
        const char *t = text_form(which[k]);
        const char *at = strstr(text, t);
        cr_assert_not_null(at, "%s: no %s in:\n%s", what, t, text);
        cr_assert(at[strlen(t)] == '\n', "%s: %s does not end its line", what, t);
    }
}

/* The file at paths[i] holds exactly the bytes written at the start. */
static void expect_bytes(int i)
{
    uint8_t *b = NULL;
    size_t n = 0;

    cr_assert_eq(gen_read_bytes(paths[i], &b, &n), 0, "%s is not back", text_form(i));
    cr_assert(n == nbytes[i] && memcmp(b, bytes[i], n) == 0, "%s differs", text_form(i));
    free(b);
}

/* ls --json: count and items agree, every path is one of ours (JSON form),
 * and the ones in want (a bit per file) are there. */
static void expect_ls_json(unsigned want)
{
    json_t *j, *items;
    unsigned seen = 0;

    cr_assert_eq(run("ls", pt.db, "--json"), 0, "%s", pt.err);
    j = parse_json(pt.out, "ls --json");
    items = json_object_get(j, "items");
    cr_assert_eq(json_integer_value(json_object_get(j, "count")),
                 (json_int_t)json_array_size(items), "count and items agree: %s", pt.out);
    for (size_t k = 0; k < json_array_size(items); k++) {
        int f = file_of_json(json_string_value(json_object_get(json_array_get(items, k),
                                                               "path")));
        cr_assert_geq(f, 0, "an unknown path in %s", pt.out);
        seen |= 1u << f;
    }
    cr_assert_eq(seen, want, "files listed %#x, want %#x: %s", seen, want, pt.out);
    cr_assert_eq(json_array_size(items), (size_t)__builtin_popcount(want));
    json_decref(j);
}

Test(names, add_ls_query_dups_move_undo)
{
    static const int all[] = {0, 1, 2, 3, 4}, kept[] = {0, 2}, dropped[] = {1, 3};
    char keep_list[GEN_PATH_MAX], drop_list[GEN_PATH_MAX], json_out[GEN_PATH_MAX];
    char dest[GEN_PATH_MAX], undo[GEN_PATH_MAX];
    json_t *j, *groups, *hits;
    size_t members = 0;
    char *s;

    make_files();
    gen_path(keep_list, pt.dir, "keep.txt");
    gen_path(drop_list, pt.dir, "drop.txt");
    gen_path(json_out, pt.dir, "dups.json");
    gen_path(dest, pt.dir, "aside");
    gen_path(undo, pt.dir, "undo.tsv");

    cr_assert_eq(run("init", pt.db), 0, "%s", pt.err);
    cr_assert_eq(run("add", pt.db, pt.imgs), 0, "%s", pt.err);
    cr_assert(strstr(pt.out, "added 5"), "%s%s", pt.out, pt.err);

    /* ls: one line per file, each in its text form. */
    cr_assert_eq(run("ls", pt.db), 0, "%s", pt.err);
    expect_lines(pt.out, all, NFILES, "ls");
    expect_ls_json(0x1f);

    /* query by the image that is not UTF-8: the query is named in the
     * quoted form and every file comes back, itself first. */
    cr_assert_eq(run("query", pt.db, paths[1], "--json"), 0, "%s", pt.err);
    j = parse_json(pt.out, "query --json");
    cr_assert_str_eq(json_string_value(json_object_get(j, "query")), text_form(1));
    hits = json_object_get(j, "hits");
    cr_assert_eq(json_array_size(hits), NFILES, "%s", pt.out);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(hits, 0), "rank")), 1);
    cr_assert_eq(file_of_json(json_string_value(
                     json_object_get(json_array_get(hits, 0), "path"))), 1, "%s", pt.out);
    for (size_t k = 0; k < json_array_size(hits); k++)
        cr_assert_geq(file_of_json(json_string_value(
                          json_object_get(json_array_get(hits, k), "path"))), 0);
    json_decref(j);
    /* An error naming a file that is not UTF-8 is still one JSON document. */
    {
        char gone[GEN_PATH_MAX];
        gen_path(gone, pt.dir, "gone\xe9.jpg");
        cr_assert_eq(run("query", pt.db, gone, "--json"), 1, "%s", pt.out);
        j = parse_json(pt.out, "query --json of a missing file");
        cr_assert(json_is_false(json_object_get(j, "ok")), "%s", pt.out);
        cr_assert_not_null(strstr(pt.out, "gone\\\\xe9.jpg"), "%s", pt.out);
        json_decref(j);
    }
    cr_assert_eq(run("query", pt.db, paths[3]), 0, "%s", pt.err);
    expect_lines(pt.out, all, NFILES, "query");

    /* dups: two groups, the half-size copies dropped. */
    cr_assert_eq(run("dups", pt.db, "--keep-list", keep_list, "--drop-list", drop_list,
                     "--json-out", json_out, "--html", pt.page),
                 0, "%s", pt.err);
    expect_lines(pt.out, all, 4, "dups");
    s = cli_slurp(keep_list);
    expect_lines(s, kept, 2, "keep list");
    cr_assert_eq(strlen(s), strlen(text_form(0)) + strlen(text_form(2)) + 2, "%s", s);
    free(s);
    s = cli_slurp(drop_list);
    expect_lines(s, dropped, 2, "drop list");
    cr_assert_eq(strlen(s), strlen(text_form(1)) + strlen(text_form(3)) + 2, "%s", s);
    free(s);
    s = cli_slurp(json_out);
    j = parse_json(s, "--json-out");
    free(s);
    cr_assert_eq(json_integer_value(json_object_get(j, "groups_count")), 2);
    json_decref(j);

    cr_assert_eq(run("dups", pt.db, "--json"), 0, "%s", pt.err);
    j = parse_json(pt.out, "dups --json");
    groups = json_object_get(j, "groups");
    cr_assert_eq(json_array_size(groups), 2, "%s", pt.out);
    for (size_t g = 0; g < json_array_size(groups); g++) {
        json_t *ms = json_object_get(json_array_get(groups, g), "members");
        for (size_t k = 0; k < json_array_size(ms); k++) {
            json_t *m = json_array_get(ms, k);
            int f = file_of_json(json_string_value(json_object_get(m, "path")));
            cr_assert(f >= 0 && f < 4, "%s", pt.out);
            cr_assert_eq(json_is_true(json_object_get(m, "keep")), f % 2 == 0, "%s", pt.out);
            members++;
        }
    }
    cr_assert_eq(json_integer_value(json_object_get(j, "images")), (json_int_t)members);
    cr_assert_eq(members, 4);
    json_decref(j);

    /* The report: valid UTF-8, no replacement characters, names in their
     * text form below the common folder, links with the raw bytes. */
    s = cli_slurp(pt.page);
    cr_assert(cli_utf8_valid(s), "the page is not UTF-8");
    cr_assert_null(strstr(s, "&#xFFFD;"));
    cr_assert_not_null(strstr(s, ">&quot;caf\\xe9.jpg&quot;</a>"), "caf\\xe9 caption");
    cr_assert_not_null(strstr(s, ">&quot;a\\tb.jpg&quot;</a>"), "a\\tb caption");
    cr_assert_not_null(strstr(s, ">&quot;new\\nline.jpg&quot;</a>"), "newline caption");
    cr_assert_not_null(strstr(s, "/caf%E9.jpg\""));
    cr_assert_not_null(strstr(s, "/a%09b.jpg\""));
    cr_assert_not_null(strstr(s, "/new%0Aline.jpg\""));
    free(s);

    /* map: the CSV's path field is the text form (CSV-quoted), the JSON
     * has every point. */
    gen_path(json_out, pt.dir, "map.csv");
    cr_assert_eq(run("map", pt.db, "--csv", json_out, "--json"), 0, "%s", pt.err);
    j = parse_json(pt.out, "map --json");
    cr_assert_eq(json_array_size(json_object_get(j, "points")), NFILES, "%s", pt.out);
    for (size_t k = 0; k < NFILES; k++)
        cr_assert_geq(file_of_json(json_string_value(json_object_get(
                          json_array_get(json_object_get(j, "points"), k), "path"))), 0);
    json_decref(j);
    s = cli_slurp(json_out);
    for (int i = 0; i < NFILES; i++) {
        char field[2 * GEN_PATH_MAX], *w = field;
        *w++ = '"';
        for (const char *t = text_form(i); *t; t++) { /* CSV doubles '"' */
            if (*t == '"')
                *w++ = '"';
            *w++ = *t;
        }
        strcpy(w, "\",");
        cr_assert_not_null(strstr(s, field), "no %s in the CSV:\n%s", field, s);
    }
    free(s);

    /* rm by the exact bytes, then add it back. */
    cr_assert_eq(run("rm", pt.db, paths[2], "--json"), 0, "%s", pt.err);
    j = parse_json(pt.out, "rm --json");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "removed"), 0)),
                     paths[2]);
    json_decref(j);
    expect_ls_json(0x1b);
    cr_assert_eq(run("add", pt.db, pt.imgs), 0, "%s", pt.err);
    expect_ls_json(0x1f);

    /* Move the copies aside and back: the very names and bytes. */
    cr_assert_eq(run("dups", pt.db, "--move-to", dest, "--undo-list", undo, "--json"), 0, "%s",
                 pt.err);
    j = parse_json(pt.out, "dups --move-to --json");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "moved"), "files")), 2,
                 "%s", pt.out);
    json_decref(j);
    cr_assert_eq(access(paths[1], F_OK), -1, "caf\\xe9.jpg moved");
    cr_assert_eq(access(paths[3], F_OK), -1, "new\\nline.jpg moved");
    expect_ls_json(0x15);
    cr_assert_eq(run("undo-move", pt.db, undo, "--json"), 0, "%s", pt.err);
    j = parse_json(pt.out, "undo-move --json");
    cr_assert_eq(json_integer_value(json_object_get(j, "restored")), 2, "%s", pt.out);
    cr_assert_eq(json_integer_value(json_object_get(j, "added")), 2, "%s", pt.out);
    json_decref(j);
    for (int i = 0; i < NFILES; i++)
        expect_bytes(i);
    expect_ls_json(0x1f);
    free_files();
}
