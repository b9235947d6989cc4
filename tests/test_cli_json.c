/*
 * test_cli_json.c - with --json, every outcome of every command is one JSON
 * document on stdout, in the shape README.md documents: success
 * {ok: true, command, ...}; failure {ok: false, command, exit_status,
 * error: {code, message}}, exit_status equal to the process's. Each command
 * runs once to success and at least once to failure (a usage error, a
 * database that is not there, a bad operand), and the document is parsed
 * whole (jansson refuses anything after it).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "gen.h"

static cli_fix F; /* the folder (F.dir, F.imgs, F.db) and the last run's F.out, F.err */
static char db2[GEN_PATH_MAX], moved[GEN_PATH_MAX], undo[GEN_PATH_MAX];
static char img[GEN_PATH_MAX], copy[GEN_PATH_MAX], html[GEN_PATH_MAX];

static void setup(void)
{
    cli_fix_setup(&F);
    gen_path(db2, F.dir, "new.pvdb");
    gen_path(moved, F.dir, "moved");
    gen_path(undo, F.dir, "undo.tsv");
    gen_path(html, F.dir, "page.html");
}

static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(cli_json, .init = setup, .fini = teardown, .timeout = 300);

/* Replace the words "DB", "DB2", "IMG", "IMGS", "MOVED", "UNDO" and
 * "HTML" by this test's paths. */
static char *word(const char *w)
{
    static const struct {
        const char *name;
        const char *path;
    } subst[] = {{"DB", F.db},       {"DB2", db2},     {"IMG", img},   {"IMGS", F.imgs},
                 {"MOVED", moved}, {"UNDO", undo},   {"HTML", html}};
    for (size_t i = 0; i < sizeof subst / sizeof subst[0]; i++)
        if (strcmp(w, subst[i].name) == 0)
            return (char *)subst[i].path;
    return (char *)w;
}

static int run_line(const char *line, int json, const char *text);

/* Run `pixvec LINE --json` (LINE split on spaces), check that stdout is
 * one document of the documented shape for the exit status, and that the
 * status is want. Returns the document (caller frees). */
static json_t *run_json(const char *line, int want)
{
    int status;
    json_error_t e;
    json_t *j, *err;
    status = run_line(line, 1, NULL);
    cr_assert_eq(status, want, "`%s`: exit %d, want %d; stderr: %s", line, status, want,
                 F.err);
    j = json_loads(F.out, 0, &e);
    cr_assert_not_null(j, "`%s`: stdout is not one JSON document (%s): [%s]", line, e.text,
                       F.out);
    cr_assert(json_is_boolean(json_object_get(j, "ok")), "`%s`: no ok: %s", line, F.out);
    cr_assert(json_object_get(j, "command"), "`%s`: no command: %s", line, F.out);
    if (want == 0 || want == 3) {
        cr_assert(json_is_true(json_object_get(j, "ok")), "`%s`: %s", line, F.out);
        return j;
    }
    cr_assert(json_is_false(json_object_get(j, "ok")), "`%s`: %s", line, F.out);
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_status")), want, "`%s`: %s", line,
                 F.out);
    err = json_object_get(j, "error");
    cr_assert(json_is_string(json_object_get(err, "code")), "`%s`: %s", line, F.out);
    cr_assert(json_is_string(json_object_get(err, "message")), "`%s`: %s", line, F.out);
    cr_assert_gt(strlen(json_string_value(json_object_get(err, "message"))), 0);
    /* the message on stdout is the one on stderr (add's summary of failed
     * files is on stdout only: stderr names each file) */
    if (strcmp(json_string_value(json_object_get(err, "code")), "files_failed") != 0)
        cr_assert(strstr(F.err, json_string_value(json_object_get(err, "message"))),
              "`%s`: stderr [%s] lacks the message of %s", line, F.err, F.out);
    return j;
}

static void ok(const char *line)
{
    json_decref(run_json(line, 0));
}

/* A failure with the given exit status and error code. */
static void fails(const char *line, int want, const char *code)
{
    json_t *j = run_json(line, want);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    cr_assert_str_eq(got, code, "`%s`: code %s, want %s: %s", line, got, code, F.out);
    json_decref(j);
}

Test(cli_json, every_command_success_and_failure)
{
    /* 3 classes x 8 images, and one exact copy for dups to find */
    gen_class_folders(F.imgs, 8, 0);
    gen_path(img, F.imgs, "rings/000.png");
    gen_path(copy, F.imgs, "rings/copy.png");
    cli_shell("cp '%s' '%s'", img, copy);

    fails("info DB", 1, "not_a_database");
    fails("init DB --frob", 2, "usage");
    ok("init DB");
    fails("init DB", 1, "exists");
    ok("init DB2 --embedder pixels --size 16");

    fails("add DB", 2, "usage");
    ok("add DB IMGS");
    {
        /* a failed file: the run's document lists it with its reason */
        json_t *j = run_json("add DB /nonexistent/x.png", 1), *f;
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                         "files_failed");
        f = json_array_get(json_object_get(j, "failures"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(f, "path")), "/nonexistent/x.png");
        cr_assert(json_is_string(json_object_get(f, "code")));
        cr_assert(json_is_string(json_object_get(f, "reason")));
        json_decref(j);
    }

    ok("info DB");
    fails("info DB extra", 2, "usage");
    ok("ls DB");
    fails("ls DB --bogus", 2, "usage");
    ok("check DB");
    fails("check /nonexistent/x.pvdb", 1, "not_a_database");

    ok("query DB IMG -k 3");
    fails("query DB IMG -k 0", 2, "usage");
    fails("query DB", 2, "usage");
    fails("query DB /nonexistent.png", 1, "io_error");
    fails("query /nonexistent.pvdb IMG", 1, "not_a_database");
    fails("search DB a-dog", 1, "invalid_argument");
    fails("search DB", 2, "usage");

    json_decref(run_json("dups DB --exit-code", 3));
    ok("dups DB --histogram");
    fails("dups DB --keep bogus", 2, "usage");

    ok("cluster DB -k 3");
    ok("cluster DB");
    fails("cluster DB -k 0", 2, "usage");
    ok("ivf DB train --nlist 3");
    ok("query DB IMG --index ivf");
    fails("ivf DB train", 2, "usage");

    ok("map DB");
    fails("map DB --method pca", 2, "usage");
    ok("quality DB --no-pixels");
    fails("quality DB --top -1", 2, "usage");

    ok("dups DB --move-to MOVED --undo-list UNDO");
    ok("undo-move DB UNDO");
    fails("undo-move DB /nonexistent/undo.tsv", 1, "error");

    ok("rm DB IMG");
    fails("rm DB", 2, "usage");
    ok("vacuum DB");
    fails("vacuum DB extra", 2, "usage");

    ok("help");
    ok("help query");
    ok("query --help");
    fails("help nonesuch", 2, "unknown_command");
    fails("qurey DB IMG", 2, "unknown_command");
    cr_assert(strstr(F.err, "did you mean 'query'"), "%s", F.err);
    fails("shell", 2, "usage");
}

/* Run `pixvec LINE` (split on spaces; the words above replaced by this
 * test's paths), with --json added when json, stdin from text (NULL:
 * none); returns the exit status, output in F.out/F.err. */
static int run_line(const char *line, int json, const char *text)
{
    char buf[1024], *argv[40], *save = NULL;
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    argv[argc++] = "pixvec";
    for (char *t = strtok_r(buf, " ", &save); t && argc < 38; t = strtok_r(NULL, " ", &save))
        argv[argc++] = word(t);
    if (json)
        argv[argc++] = "--json";
    argv[argc] = NULL;
    return cli_fix_runv(&F, text, argv);
}

#define run_text(line, text) run_line(line, 0, text)

/* The messages of issue 16 that the run owns: getopt's in pixvec's words,
 * a suggestion for a misspelled command, help as it runs. */
Test(cli_json, messages_of_options_commands_and_help)
{
    gen_class_folders(F.imgs, 2, 0);
    gen_path(img, F.imgs, "rings/000.png");
    cr_assert_eq(run_text("init DB", NULL), 0);
    cr_assert_eq(run_text("add DB IMGS", NULL), 0);

    /* an unknown option: the prefix, no getopt wording, the usage line */
    cr_assert_eq(run_text("query DB IMG --threshold 0.5", NULL), 2);
    cr_assert(strstr(F.err, "pixvec: query: unknown option '--threshold'\n"), "%s", F.err);
    cr_assert_null(strstr(F.err, "unrecognized"), "%s", F.err);
    cr_assert(strstr(F.err, "usage: pixvec query DB IMAGE"), "%s", F.err);
    cr_assert_eq(run_text("query DB IMG --jsn", NULL), 2);
    cr_assert(strstr(F.err, "pixvec: query: unknown option '--jsn'; did you mean '--json'?"),
              "%s", F.err);
    cr_assert_eq(run_text("query DB IMG -z", NULL), 2);
    cr_assert(strstr(F.err, "pixvec: query: unknown option '-z'"), "%s", F.err);
    cr_assert_eq(run_text("query DB IMG -k", NULL), 2);
    cr_assert(strstr(F.err, "pixvec: query: option '-k' needs a value"), "%s", F.err);
    cr_assert_eq(run_text("query DB IMG --e 3", NULL), 2);
    cr_assert(strstr(F.err, "option '--e' is ambiguous: --embedder, --ef, --exact"), "%s",
              F.err);
    cr_assert_eq(run_text("info DB --json=yes", NULL), 2);
    cr_assert(strstr(F.err, "pixvec: info: option '--json' takes no value"), "%s", F.err);

    /* a misspelled command: one line with the suggestion, not the whole usage */
    cr_assert_eq(run_text("qurey DB IMG", NULL), 2);
    cr_assert_str_eq(F.err, "pixvec: unknown command 'qurey'; did you mean 'query'?\n");
    cr_assert_eq(run_text("frobnicate DB", NULL), 2);
    cr_assert(strstr(F.err, "unknown command 'frobnicate' (pixvec help lists the commands)"),
              "%s", F.err);

    /* help lists what runs: no quit outside the shell; help --help works */
    cr_assert_eq(run_text("help", NULL), 0);
    cr_assert_null(strstr(F.out, "quit"), "%s", F.out);
    cr_assert(strstr(F.out, "  query "), "%s", F.out);
    cr_assert_eq(run_text("--help", NULL), 0);
    cr_assert_null(strstr(F.out, "  quit"), "%s", F.out);
    cr_assert_eq(run_text("help --help", NULL), 0);
    cr_assert(strstr(F.out, "usage: pixvec help [COMMAND]"), "%s", F.out);
    cr_assert_eq(run_text("help quit", NULL), 2);
    cr_assert(strstr(F.err, "'quit' is a shell command"), "%s", F.err);
    cr_assert_eq(run_text("quit", NULL), 2);
    cr_assert(strstr(F.err, "pixvec: quit: only available inside `pixvec shell DB`"), "%s",
              F.err);

    /* the shell: usage in the shell's form, help lists quit there */
    run_text("shell DB", "query\nhelp\n");
    cr_assert(strstr(F.err, "usage: query IMAGE|--vector FILE.npy [--row N] [-k N]"), "%s", F.err);
    cr_assert_null(strstr(F.err, "usage: pixvec query"), "%s", F.err);
    cr_assert(strstr(F.out, "  quit"), "%s", F.out);
    cr_assert_null(strstr(F.out, "  init"), "%s", F.out);
}
