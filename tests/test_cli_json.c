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

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

static char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], db[GEN_PATH_MAX], db2[GEN_PATH_MAX];
static char outp[GEN_PATH_MAX], errp[GEN_PATH_MAX], moved[GEN_PATH_MAX], undo[GEN_PATH_MAX];
static char img[GEN_PATH_MAX], copy[GEN_PATH_MAX], html[GEN_PATH_MAX];
static char *out_text, *err_text;

static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(imgs, dir, "imgs");
    gen_path(db, dir, "t.pvdb");
    gen_path(db2, dir, "new.pvdb");
    gen_path(outp, dir, "stdout");
    gen_path(errp, dir, "stderr");
    gen_path(moved, dir, "moved");
    gen_path(undo, dir, "undo.tsv");
    gen_path(html, dir, "page.html");
    cr_assert_eq(mkdir(imgs, 0755), 0);
}

static void teardown(void)
{
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    gen_rmtree(dir);
}

TestSuite(cli_json, .init = setup, .fini = teardown, .timeout = 300);

/* Replace the words "DB", "DB2", "IMG", "IMGS", "MOVED", "UNDO" and
 * "HTML" by this test's paths. */
static char *word(const char *w)
{
    static const struct {
        const char *name;
        const char *path;
    } subst[] = {{"DB", db},       {"DB2", db2},     {"IMG", img},   {"IMGS", imgs},
                 {"MOVED", moved}, {"UNDO", undo},   {"HTML", html}};
    for (size_t i = 0; i < sizeof subst / sizeof subst[0]; i++)
        if (strcmp(w, subst[i].name) == 0)
            return (char *)subst[i].path;
    return (char *)w;
}

/* Run `pixvec LINE --json` (LINE split on spaces), check that stdout is
 * one document of the documented shape for the exit status, and that the
 * status is want. Returns the document (caller frees). */
static json_t *run_json(const char *line, int want)
{
    char buf[1024], *argv[40], *save = NULL;
    int argc = 0, status;
    json_error_t e;
    json_t *j, *err;
    snprintf(buf, sizeof buf, "%s", line);
    argv[argc++] = "pixvec";
    for (char *t = strtok_r(buf, " ", &save); t && argc < 38; t = strtok_r(NULL, " ", &save))
        argv[argc++] = word(t);
    argv[argc++] = "--json";
    argv[argc] = NULL;
    status = cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp), line, outp, errp,
                      &out_text, &err_text);
    cr_assert_eq(status, want, "`%s`: exit %d, want %d; stderr: %s", line, status, want,
                 err_text);
    j = json_loads(out_text, 0, &e);
    cr_assert_not_null(j, "`%s`: stdout is not one JSON document (%s): [%s]", line, e.text,
                       out_text);
    cr_assert(json_is_boolean(json_object_get(j, "ok")), "`%s`: no ok: %s", line, out_text);
    cr_assert(json_object_get(j, "command"), "`%s`: no command: %s", line, out_text);
    if (want == 0 || want == 3) {
        cr_assert(json_is_true(json_object_get(j, "ok")), "`%s`: %s", line, out_text);
        return j;
    }
    cr_assert(json_is_false(json_object_get(j, "ok")), "`%s`: %s", line, out_text);
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_status")), want, "`%s`: %s", line,
                 out_text);
    err = json_object_get(j, "error");
    cr_assert(json_is_string(json_object_get(err, "code")), "`%s`: %s", line, out_text);
    cr_assert(json_is_string(json_object_get(err, "message")), "`%s`: %s", line, out_text);
    cr_assert_gt(strlen(json_string_value(json_object_get(err, "message"))), 0);
    /* the message on stdout is the one on stderr (add's summary of failed
     * files is on stdout only: stderr names each file) */
    if (strcmp(json_string_value(json_object_get(err, "code")), "files_failed") != 0)
        cr_assert(strstr(err_text, json_string_value(json_object_get(err, "message"))),
              "`%s`: stderr [%s] lacks the message of %s", line, err_text, out_text);
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
    cr_assert_str_eq(got, code, "`%s`: code %s, want %s: %s", line, got, code, out_text);
    json_decref(j);
}

Test(cli_json, every_command_success_and_failure)
{
    /* 3 classes x 8 images, and one exact copy for dups to find */
    gen_class_folders(imgs, 8, 0);
    gen_path(img, imgs, "rings/000.png");
    gen_path(copy, imgs, "rings/copy.png");
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
    cr_assert(strstr(err_text, "did you mean 'query'"), "%s", err_text);
    fails("shell", 2, "usage");
}
