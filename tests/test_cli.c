/*
 * test_cli.c - end-to-end tests of the pixvec binary on images the tests
 * write: every command in text and JSON, exit codes, bad input messages,
 * the shell fed from a pipe, and kill -9 in the middle of `add`.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

static cli_fix F; /* the folder (F.dir, F.imgs, F.db) and the last run's F.out, F.err */

static void setup(void)
{
    cli_fix_setup(&F);
}

static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 120);

/* Start pixvec with argv in the background, its output to F.outp and F.errp. */
static pid_t spawn(char *const argv[], const char *stdin_file)
{
    return cli_spawn(PIXVEC_BIN, argv, stdin_file, F.outp, F.errp);
}

/* Run pixvec with the arguments: the exit status, output in F.out, F.err. */
#define run(...) cli_fix_run(&F, NULL, __VA_ARGS__, (char *)NULL)
#define out_json() cli_fix_json(&F)

static const char *picture(const char *name, uint32_t seed, uint32_t w, uint32_t h)
{
    static char p[GEN_PATH_MAX];
    uint8_t *px = malloc((size_t)w * h * 3);
    gen_pattern(w, h, 3, seed, px);
    gen_path(p, F.imgs, name);
    if (strstr(name, ".jpg"))
        cr_assert_eq(gen_write_jpeg(p, w, h, 3, px, 90, 0), 0);
    else
        cr_assert_eq(gen_write_png(p, w, h, GEN_PNG_RGB, 8, px, NULL), 0);
    free(px);
    return p;
}

static void make_set(int n)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%02d.%s", i, i % 3 ? "png" : "jpg");
        picture(name, (uint32_t)(300 + i), 60 + 4 * (uint32_t)i, 50);
    }
}

Test(cli, init_add_query_info_rm_ls_check)
{
    json_t *j, *hits;
    char q[GEN_PATH_MAX];
    make_set(8);
    cr_assert_eq(run("init", F.db), 0, "%s", F.err);
    cr_assert(strstr(F.out, "784 dims"));
    cr_assert_eq(run("init", F.db), 1, "init twice is an error");
    cr_assert(strstr(F.err, "already exists"), "%s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs), 0, "%s", F.err);
    cr_assert(strstr(F.out, "added 8"), "%s", F.out);
    cr_assert(!strchr(F.err, '\r'), "no progress bar when stderr is a file: %s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs, "--json"), 0);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "added")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "unchanged")), 8);
    json_decref(j);

    gen_path(q, F.imgs, "p04.png");
    cr_assert_eq(run("query", F.db, q, "-k", "3", "--json"), 0, "%s", F.err);
    j = out_json();
    hits = json_object_get(j, "hits");
    cr_assert_eq(json_array_size(hits), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(hits, 0), "path")), q);
    cr_assert_geq(json_real_value(json_object_get(json_array_get(hits, 0), "score")), 0.999);
    json_decref(j);
    cr_assert_eq(run("query", F.db, q, "-k", "2"), 0);
    cr_assert(strstr(F.out, q), "text output names the hit: %s", F.out);

    cr_assert_eq(run("info", F.db, "--json"), 0);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), 8);
    cr_assert_eq(json_integer_value(json_object_get(j, "dim")), 784);
    cr_assert_str_eq(json_string_value(json_object_get(j, "embedder")), "pixels");
    cr_assert_gt(json_integer_value(json_object_get(j, "disk_bytes")), 0);
    json_decref(j);

    cr_assert_eq(run("query", F.db, q, "-k", "3", "--exact", "--json"), 0);
    j = out_json();
    cr_assert_str_eq(json_string_value(json_object_get(j, "index")), "exact");
    json_decref(j);
    cr_assert_eq(run("query", F.db, q, "-k", "3", "-e", "10", "--json"), 0);
    j = out_json();
    {
        const char *ix = json_string_value(json_object_get(j, "index"));
        cr_assert(ix && strcmp(ix, "hnsw") == 0);
    }
    json_decref(j);
    cr_assert_eq(run("query", F.db, q, "--ef", "0"), 2);

    cr_assert_eq(run("rm", F.db, q), 0, "%s", F.err);
    cr_assert_eq(run("rm", F.db, q), 1, "second rm: not in the database");
    cr_assert(strstr(F.err, "not in the database"), "stderr: %s", F.err);
    cr_assert_eq(run("vacuum", F.db), 0, "%s", F.err);
    cr_assert_eq(run("query", F.db, q, "-k", "8"), 0);
    cr_assert(!strstr(F.out, q), "a removed image came back: %s", F.out);
    cr_assert_eq(run("ls", F.db, "--json"), 0);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "count")), 7);
    json_decref(j);
    cr_assert_eq(run("check", F.db), 0, "%s", F.err);
}

Test(cli, exit_codes_and_help)
{
    const char *cmds[] = {"init", "add", "query", "dups", "info", "rm", "ls", "check",
                          "vacuum", "shell"};
    cr_assert_eq(run("--help"), 0);
    cr_assert_eq(run("nonesuch"), 2);
    cr_assert_eq(run("query"), 2);
    cr_assert_eq(run("info", "/nonexistent/x.pvdb"), 1);
    cr_assert(strstr(F.err, "/nonexistent/x.pvdb"), "%s", F.err);
    cr_assert_eq(run("info", F.dir), 1, "a folder that is not a database");
    cr_assert(strstr(F.err, "not a pixvec database"), "%s", F.err);
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("query", F.db), 2, "no image");
    cr_assert_eq(run("query", F.db, "x.png", "-k", "abc"), 2);
    cr_assert_eq(run("dups", F.db, "--threshold", "7"), 2);
    cr_assert_eq(run("info", F.db, "--bogus"), 2);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64];
        cr_assert_eq(run(cmds[i], "--help"), 0, "%s --help", cmds[i]);
        snprintf(want, sizeof want, "usage: pixvec %s", cmds[i]);
        cr_assert(strstr(F.out, want), "%s --help: %s", cmds[i], F.out);
    }
    /* add of nothing but a missing file: named, exit 1 (and no qsort of a
     * NULL job list, which UBSan flags in the sanitizer run) */
    cr_assert_eq(run("add", F.db, "/nonexistent/x.png"), 1);
    cr_assert(strstr(F.err, "/nonexistent/x.png"), "%s", F.err);
    /* --json errors are still one JSON document on stdout */
    cr_assert_eq(run("query", F.db, "/nonexistent.png", "--json"), 1);
    {
        json_t *j = out_json();
        cr_assert(json_is_false(json_object_get(j, "ok")));
        json_t *e = json_object_get(j, "error");
        cr_assert(strstr(json_string_value(json_object_get(e, "message")), "/nonexistent.png"));
        cr_assert_str_eq(json_string_value(json_object_get(e, "code")), "io_error");
        json_decref(j);
    }
}

Test(cli, bad_files_named_with_reason_and_good_ones_kept)
{
    char p[GEN_PATH_MAX];
    json_t *j;
    make_set(3);
    picture("broken.jpg", 9, 120, 90);
    gen_path(p, F.imgs, "broken.jpg");
    cr_assert_eq(gen_truncate(p, 500), 0);
    gen_path(p, F.imgs, "notes.jpg");
    cr_assert_eq(gen_write_bytes(p, "just text\n", 10), 0);
    gen_path(p, F.imgs, "zero.png");
    cr_assert_eq(gen_write_bytes(p, "", 0), 0);
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, F.imgs), 1, "files failed: exit 1");
    cr_assert(strstr(F.err, "broken.jpg: corrupt or truncated image"), "%s", F.err);
    cr_assert(strstr(F.err, "notes.jpg: not an image format pixvec reads"), "%s", F.err);
    cr_assert(strstr(F.err, "zero.png: empty file"), "%s", F.err);
    cr_assert(strstr(F.out, "added 3") && strstr(F.out, "failed 3"), "%s", F.out);
    cr_assert_eq(run("info", F.db, "--json"), 0);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), 3);
    json_decref(j);
    /* a query image that is bad is an error naming it */
    gen_path(p, F.imgs, "notes.jpg");
    cr_assert_eq(run("query", F.db, p), 1);
    cr_assert(strstr(F.err, p), "%s", F.err);
}

Test(cli, dups_lists_and_exit_code)
{
    char keep[GEN_PATH_MAX], drop[GEN_PATH_MAX], jf[GEN_PATH_MAX], p[GEN_PATH_MAX];
    uint8_t *bytes = NULL;
    size_t nb = 0;
    char *k, *d;
    json_t *j;
    make_set(5);
    gen_path(p, F.imgs, "p01.png");
    cr_assert_eq(gen_read_bytes(p, &bytes, &nb), 0);
    gen_path(p, F.imgs, "copy_of_p01.png");
    cr_assert_eq(gen_write_bytes(p, bytes, nb), 0);
    free(bytes);
    gen_path(keep, F.dir, "keep.txt");
    gen_path(drop, F.dir, "drop.txt");
    gen_path(jf, F.dir, "dups.json");
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, F.imgs), 0);
    cr_assert_eq(run("dups", F.db, "--keep-list", keep, "--drop-list", drop, "--json-out", jf), 0,
                 "%s", F.err);
    cr_assert(strstr(F.out, "1 group, 2 images, 1 to drop"), "%s", F.out);
    k = cli_slurp(keep);
    d = cli_slurp(drop);
    cr_assert(strstr(k, "p01.png\n") && !strstr(k, "copy_of"), "keep: %s", k);
    cr_assert(strstr(d, "copy_of_p01.png\n"), "drop: %s", d);
    free(k);
    free(d);
    cr_assert_eq(run("dups", F.db, "--exit-code"), 3);
    cr_assert_eq(run("dups", F.db, "--json"), 0);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "groups_count")), 1);
    {
        json_t *g0 = json_array_get(json_object_get(j, "groups"), 0);
        const char *kind = json_string_value(json_object_get(g0, "kind"));
        cr_assert(kind && strcmp(kind, "exact") == 0, "kind %s", kind ? kind : "(none)");
    }
    json_decref(j);
    cr_assert_eq(run("rm", F.db, p), 0);
    cr_assert_eq(run("dups", F.db, "--exit-code"), 0, "no duplicates left");
}

/* Copy a file's bytes to a new path (folders must exist). */
static void copy_file(const char *from, const char *to)
{
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(gen_read_bytes(from, &b, &n), 0);
    cr_assert_eq(gen_write_bytes(to, b, n), 0);
    free(b);
}

/* --move-to keeps relative paths, never overwrites (a clash gets .1), takes
 * the moved files out of the database, and undo-move puts every byte back
 * and adds them again. */
Test(cli, dups_move_to_clash_and_undo)
{
    char sub[GEN_PATH_MAX], orig[GEN_PATH_MAX], copy[GEN_PATH_MAX], dest[GEN_PATH_MAX];
    char clash_dir[GEN_PATH_MAX], clash[GEN_PATH_MAX], moved[GEN_PATH_MAX], undo[GEN_PATH_MAX];
    make_set(4);
    gen_path(sub, F.imgs, "sub");
    cr_assert_eq(mkdir(sub, 0755), 0);
    gen_path(orig, F.imgs, "p01.png");
    gen_path(copy, sub, "copy.png");
    copy_file(orig, copy);
    gen_path(dest, F.dir, "moved");
    gen_path(clash_dir, dest, "sub");
    cr_assert_eq(mkdir(dest, 0755), 0);
    cr_assert_eq(mkdir(clash_dir, 0755), 0);
    gen_path(clash, clash_dir, "copy.png");
    cr_assert_eq(gen_write_bytes(clash, "not an image", 12), 0);
    gen_path(undo, F.dir, "undo.tsv");
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, F.imgs), 0, "%s", F.err);
    cr_assert_eq(run("dups", F.db, "--move-to", dest, "--undo-list", undo), 0, "%s", F.err);
    cr_assert(strstr(F.out, "moved 1 file from"), "%s", F.out);
    gen_path(moved, clash_dir, "copy.1.png");
    cr_assert_eq(access(copy, F_OK), -1, "the copy left its place");
    cr_assert_eq(access(moved, F_OK), 0, "and went to sub/copy.1.png beside the clash");
    char *c = cli_slurp(clash);
    cr_assert_str_eq(c, "not an image", "the existing file is untouched");
    free(c);
    cr_assert_eq(run("ls", F.db), 0);
    cr_assert(!strstr(F.out, "copy.png") && strstr(F.out, "p01.png"), "%s", F.out);
    cr_assert_eq(run("dups", F.db, "--exit-code"), 0, "nothing left to drop");
    cr_assert_eq(run("undo-move", F.db, undo), 0, "%s", F.err);
    cr_assert(strstr(F.out, "restored 1 file ("), "%s", F.out);
    cr_assert_eq(access(copy, F_OK), 0, "back in place");
    cr_assert_eq(access(moved, F_OK), -1);
    {
        uint8_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        cr_assert_eq(gen_read_bytes(orig, &a, &na), 0);
        cr_assert_eq(gen_read_bytes(copy, &b, &nb), 0);
        cr_assert(na == nb && memcmp(a, b, na) == 0, "byte-identical after the round trip");
        free(a);
        free(b);
    }
    cr_assert_eq(run("dups", F.db, "--exit-code"), 3, "the copy is in the database again");
    cr_assert_eq(run("undo-move", F.db, undo), 0, "a second undo changes nothing: %s", F.err);
    cr_assert_eq(run("dups", F.db, "--move-to"), 2, "--move-to needs a folder");
}

/* Folders whose names share a prefix (train, train2): the common folder is
 * their parent, not "train", and the moved file keeps "train2/". */
Test(cli, dups_move_to_keeps_sibling_folders_apart)
{
    char t1[GEN_PATH_MAX], t2[GEN_PATH_MAX], p[GEN_PATH_MAX], q[GEN_PATH_MAX];
    char dest[GEN_PATH_MAX], want[GEN_PATH_MAX];
    uint8_t *px = malloc(128 * 96 * 3), *half = malloc(64 * 48 * 3);
    cr_assert(px && half);
    gen_path(t1, F.imgs, "train");
    gen_path(t2, F.imgs, "train2");
    cr_assert_eq(mkdir(t1, 0755), 0);
    cr_assert_eq(mkdir(t2, 0755), 0);
    gen_pattern(128, 96, 3, 999, px);
    gen_path(p, t1, "a.png");
    cr_assert_eq(gen_write_png(p, 128, 96, GEN_PNG_RGB, 8, px, NULL), 0);
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 64; x++)
            for (int c = 0; c < 3; c++)
                half[(y * 64 + x) * 3 + c] = px[((2 * y) * 128 + 2 * x) * 3 + c];
    gen_path(q, t2, "a_small.png");
    cr_assert_eq(gen_write_png(q, 64, 48, GEN_PNG_RGB, 8, half, NULL), 0);
    gen_path(dest, F.dir, "moved/deeper");
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, F.imgs), 0, "%s", F.err);
    cr_assert_eq(run("dups", F.db, "-t", "0.9", "--move-to", dest), 0, "%s %s", F.out, F.err);
    gen_path(want, dest, "train2/a_small.png");
    cr_assert_eq(access(want, F_OK), 0, "moved under train2/: %s", F.out);
    cr_assert_eq(access(p, F_OK), 0, "the larger one stays");
    free(px);
    free(half);
}

/* --across lists only test images that copy a train image. */
Test(cli, dups_across_train_test)
{
    char train[GEN_PATH_MAX], test[GEN_PATH_MAX], p[GEN_PATH_MAX], q[GEN_PATH_MAX];
    char drop[GEN_PATH_MAX];
    gen_path(train, F.dir, "train");
    gen_path(test, F.dir, "test");
    cr_assert_eq(mkdir(train, 0755), 0);
    cr_assert_eq(mkdir(test, 0755), 0);
    make_set(6);
    gen_path(p, F.imgs, "p01.png");
    gen_path(q, train, "a.png");
    copy_file(p, q);
    gen_path(q, train, "a_again.png"); /* a dup inside train: not reported */
    copy_file(p, q);
    gen_path(p, F.imgs, "p02.png");
    gen_path(q, train, "b.png");
    copy_file(p, q);
    gen_path(q, test, "leak.png");
    copy_file(p, q);
    gen_path(p, F.imgs, "p04.png");
    gen_path(q, test, "fine.png");
    copy_file(p, q);
    gen_path(drop, F.dir, "drop.txt");
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, train, test), 0, "%s", F.err);
    cr_assert_eq(run("dups", F.db, "--across", train, test, "--drop-list", drop), 0, "%s", F.err);
    char *d = cli_slurp(drop);
    cr_assert(strstr(d, "/test/leak.png\n") && !strstr(d, "fine") && !strstr(d, "train"), "%s", d);
    free(d);
    cr_assert(strstr(F.out, "1 of 2 images under"), "%s", F.out);
    cr_assert_eq(run("dups", F.db, "--across", train), 2, "two folders");
}

Test(cli, dups_histogram_fraction_png)
{
    char png[GEN_PATH_MAX], p[GEN_PATH_MAX], q[GEN_PATH_MAX];
    make_set(10);
    gen_path(p, F.imgs, "p04.png");
    gen_path(q, F.imgs, "p04_copy.png");
    copy_file(p, q);
    gen_path(png, F.dir, "hist.png");
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, F.imgs), 0, "%s", F.err);
    cr_assert_eq(run("dups", F.db, "--histogram", "--histogram-png", png), 0, "%s", F.err);
    cr_assert(strstr(F.out, "<- threshold") && strstr(F.out, "nearest-neighbour"), "%s",
              F.out);
    cr_assert(strstr(F.out, "2 of 11 images"), "the byte pair: %s", F.out);
    uint8_t *b = NULL;
    size_t n = 0;
    cr_assert_eq(gen_read_bytes(png, &b, &n), 0);
    cr_assert(n > 8 && memcmp(b, "\x89PNG", 4) == 0, "a PNG was written");
    free(b);
    /* Half the images flagged: the threshold falls to the 6th nearest score. */
    cr_assert_eq(run("dups", F.db, "--fraction", "0.5", "--json"), 0, "%s", F.err);
    json_t *j = out_json();
    cr_assert_geq(json_integer_value(json_object_get(j, "images")), 4);
    cr_assert_lt(json_real_value(json_object_get(j, "threshold")), 1.0);
    json_decref(j);
    cr_assert_eq(run("dups", F.db, "--fraction", "0.5", "-t", "0.9"), 2, "one or the other");
}

Test(cli, shell_reads_commands_from_a_pipe)
{
    char script[4 * GEN_PATH_MAX], q[GEN_PATH_MAX];
    make_set(4);
    gen_path(q, F.imgs, "p02.png");
    cr_assert_eq(run("init", F.db), 0);
    snprintf(script, sizeof script,
             "# a comment\nadd %s --quiet\ninfo\nquery \"%s\" -k 1\nbogus\nhelp\nquit\ninfo\n",
             F.imgs, q);
    cli_fix_run(&F, script, "shell", F.db, (char *)NULL);
    cr_assert(strstr(F.out, "items     4"), "%s", F.out);
    cr_assert(strstr(F.out, q), "query hit printed: %s", F.out);
    cr_assert(strstr(F.err, "unknown command 'bogus'"), "%s", F.err);
    cr_assert(strstr(F.out, "commands"), "help listed: %s", F.out);
    cr_assert(strstr(F.out, "check"), "help lists check: %s", F.out);
}

Test(cli, other_embedder_and_newer_format_refused)
{
    char q[GEN_PATH_MAX];
    make_set(2);
    gen_path(q, F.imgs, "p01.png");
    cr_assert_eq(run("init", F.db, "--size", "16", "--rgb"), 0);
    cr_assert(strstr(F.out, "768 dims"), "%s", F.out);
    cr_assert_eq(run("add", F.db, F.imgs), 0);
    cr_assert_eq(run("query", F.db, q, "--size", "28"), 1);
    cr_assert(strstr(F.err, "pixels 16x16 rgb"), "%s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs, "--embedder", "cnn"), 1);
}


Test(cli, newer_format_refused_for_every_command)
{
    char q[GEN_PATH_MAX];
    make_set(2);
    gen_path(q, F.imgs, "p01.png");
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, F.imgs), 0);
    cr_assert_eq(gen_db_set_format(F.db, PV_FORMAT_VERSION + 1), 0);
    cr_assert_eq(run("info", F.db), 1);
    cr_assert(strstr(F.err, "newer pixvec"), "%s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs), 1);
    cr_assert(strstr(F.err, "newer pixvec"), "%s", F.err);
    cr_assert_eq(run("query", F.db, q), 1);
    cr_assert_eq(gen_db_set_format(F.db, PV_FORMAT_VERSION), 0);
    cr_assert_eq(run("check", F.db), 0, "nothing was changed: %s", F.err);
}

/* Readers in other processes during an `add` see a consistent last commit. */
Test(cli, readers_during_add_see_committed_state, .timeout = 300)
{
    const int N = 1500;
    int during = 0, status;
    char q[GEN_PATH_MAX];
    char *argv[] = {"pixvec", "add", F.db, F.imgs, "--threads", "1", "--quiet", NULL};
    pid_t pid;
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%04d.jpg", i);
        picture(name, (uint32_t)(7000 + i), 320, 240);
    }
    gen_path(q, F.imgs, "r0000.jpg");
    cr_assert_eq(run("init", F.db), 0);
    pid = spawn(argv, NULL);
    for (int round = 0; round < 200 && waitpid(pid, &status, WNOHANG) == 0; round++) {
        /* spawn() reuses the stdout/stderr files: run() only after the writer
         * was started, and only read its own output */
        cr_assert_eq(run("check", F.db), 0, "check during add: %s", F.err);
        cr_assert_eq(run("query", F.db, q, "-k", "1", "--json"), 0, "%s", F.err);
        during++;
    }
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_gt(during, 0, "the add finished before any reader ran");
    cr_assert_eq(run("check", F.db), 0, "%s", F.err);
}

/* kill -9 in the middle of `add`, several times: every reopen must be
 * consistent (check), and a re-run completes the job. */
Test(cli, kill_during_add_leaves_consistent_db, .timeout = 300)
{
    const int N = 2500;
    int mid_kills = 0;
    json_t *j;
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "k%04d.jpg", i);
        picture(name, (uint32_t)i, 320, 240);
    }
    cr_assert_eq(run("init", F.db), 0);
    for (int round = 0; round < 4; round++) {
        char *argv[] = {"pixvec", "add", F.db, F.imgs, "--threads", "1", "--quiet", NULL};
        long items;
        struct timespec ts = {0, (50 + 120 * round) * 1000000L};
        int status;
        pid_t pid = spawn(argv, NULL);
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert_eq(run("check", F.db), 0, "round %d: %s", round, F.err);
        cr_assert_eq(run("info", F.db, "--json"), 0);
        j = out_json();
        items = (long)json_integer_value(json_object_get(j, "items"));
        json_decref(j);
        if (WIFSIGNALED(status) && items < N)
            mid_kills++;
    }
    cr_assert_gt(mid_kills, 0, "no kill landed in the middle of an add");
    cr_assert_eq(run("add", F.db, F.imgs, "--json"), 0, "%s", F.err);
    cr_assert_eq(run("info", F.db, "--json"), 0);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), N);
    cr_assert_eq(json_integer_value(json_object_get(j, "deleted")), 0);
    json_decref(j);
    cr_assert_eq(run("check", F.db), 0, "%s", F.err);
}

/* cluster and ivf from the command line: JSON shapes, folder labels and
 * purity, --of, IVF queries, and the errors' exit codes. */
Test(cli, cluster_and_ivf)
{
    json_t *j, *cl;
    char sub[GEN_PATH_MAX], q[GEN_PATH_MAX];
    make_set(12);
    /* Two class folders below imgs: labels for the purity. */
    gen_path(sub, F.imgs, "cats");
    cr_assert_eq(mkdir(sub, 0755), 0);
    picture("cats/c1.png", 901, 64, 48);
    picture("cats/c2.png", 902, 64, 48);
    cr_assert_eq(run("init", F.db), 0, "%s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs, "--quiet"), 0, "%s", F.err);

    cr_assert_eq(run("cluster", F.db), 1, "no clustering stored yet");
    cr_assert(strstr(F.err, "no clustering"), "%s", F.err);
    cr_assert_eq(run("cluster", F.db, "-k", "15"), 1);
    cr_assert(strstr(F.err, "-k 15 is more than the 14 images; use at most 14"), "%s", F.err);
    cr_assert_eq(run("cluster", F.db, "-k", "0"), 2);

    cr_assert_eq(run("cluster", F.db, "-k", "3", "--show", "2", "--json"), 0, "%s", F.err);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "k")), 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), 14);
    cr_assert(json_is_real(json_object_get(j, "purity")), "folder labels give a purity");
    cl = json_object_get(j, "clusters");
    cr_assert_eq(json_array_size(cl), 3);
    json_int_t total = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *c = json_array_get(cl, i);
        total += json_integer_value(json_object_get(c, "size"));
        cr_assert_leq(json_array_size(json_object_get(c, "nearest")), 2);
        cr_assert(json_is_array(json_object_get(c, "labels")));
    }
    cr_assert_eq(total, 14);
    json_decref(j);
    cr_assert_eq(run("cluster", F.db), 0, "the stored clustering is shown: %s", F.err);
    cr_assert(strstr(F.out, "3 clusters over 14 images"), "%s", F.out);

    gen_path(q, F.imgs, "p05.png");
    cr_assert_eq(run("cluster", F.db, "--of", q, "--json"), 0, "%s", F.err);
    j = out_json();
    cr_assert(json_is_integer(json_object_get(j, "cluster")));
    json_decref(j);

    cr_assert_eq(run("query", F.db, q, "--index", "ivf"), 1, "no lists yet");
    cr_assert(strstr(F.err, "ivf train"), "%s", F.err);
    cr_assert_eq(run("ivf", "train", F.db, "--nlist", "0"), 2);
    cr_assert_eq(run("ivf", "train", F.db), 2, "--nlist is required");
    cr_assert_eq(run("ivf", "train", F.db, "--nlist", "4", "--json"), 0, "%s", F.err);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "nlist")), 4);
    json_decref(j);
    cr_assert_eq(run("query", F.db, q, "--index", "ivf", "-p", "4", "-k", "3", "--json"), 0,
                 "%s", F.err);
    j = out_json();
    cr_assert_str_eq(json_string_value(json_object_get(j, "index")), "ivf");
    cr_assert_eq(json_array_size(json_object_get(j, "hits")), 3);
    cr_assert(strstr(json_string_value(json_object_get(
                         json_array_get(json_object_get(j, "hits"), 0), "path")),
                     "p05.png"),
              "an image's own file is its best IVF hit");
    json_decref(j);
    cr_assert_eq(run("query", F.db, q, "--index", "graph"), 2);
    cr_assert_eq(run("info", F.db), 0);
    cr_assert(strstr(F.out, "ivf       4 lists"), "%s", F.out);
    cr_assert_eq(run("check", F.db), 0, "%s", F.out);
}

/* Readers in other processes while the IVF lists are retrained over and
 * over (a shell fed a script): every `check` sees one whole set of lists
 * (nlist centroids, every live item listed once), never a mix of two. */
Test(cli, readers_during_ivf_retraining_see_whole_lists, .timeout = 300)
{
    int during = 0, status;
    char q[GEN_PATH_MAX], script[GEN_PATH_MAX];
    char *argv[] = {"pixvec", "shell", F.db, NULL};
    static char text[1000 * 32];
    size_t len = 0;
    pid_t pid;
    make_set(60);
    gen_path(q, F.imgs, "p07.png");
    cr_assert_eq(run("init", F.db), 0);
    cr_assert_eq(run("add", F.db, F.imgs, "--quiet"), 0, "%s", F.err);
    cr_assert_eq(run("ivf", "train", F.db, "--nlist", "2"), 0, "%s", F.err);
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "ivf train --nlist %d\n",
                                3 + i % 9);
    gen_path(script, F.dir, "retrain.txt");
    cr_assert_eq(gen_write_bytes(script, text, len), 0);
    pid = spawn(argv, script);
    for (int round = 0; round < 300 && waitpid(pid, &status, WNOHANG) == 0; round++) {
        cr_assert_eq(run("check", F.db), 0, "check during retraining: %s", F.err);
        cr_assert_eq(run("query", F.db, q, "--index", "ivf", "-p", "3", "-k", "1"), 0, "%s",
                     F.err);
        during++;
    }
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the shell failed");
    cr_assert_gt(during, 0, "the retraining finished before any reader ran");
    cr_assert_eq(run("check", F.db), 0, "%s", F.err);
    cr_assert_eq(run("info", F.db), 0);
    cr_assert(strstr(F.out, "ivf       3 lists"), "the last retrain (nlist 3) won: %s",
              F.out);
}

/* The cnn embedder end to end: init with the installed weights (or a copy
 * named with --model), add, query finds the image itself first; a weight
 * file that is not MobileNetV2, or that changed after init, is refused
 * with the file named. */
Test(cli, cnn_embedder_init_add_query, .timeout = 300)
{
    const char *model = "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors";
    char copy[GEN_PATH_MAX], q[GEN_PATH_MAX], db2[GEN_PATH_MAX];
    uint8_t *bytes;
    size_t n;
    json_t *j;
    if (access(model, R_OK) != 0)
        cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)", model);
    make_set(6);
    gen_path(copy, F.dir, "weights.safetensors");
    cr_assert_eq(gen_read_bytes(model, &bytes, &n), 0);
    cr_assert_eq(gen_write_bytes(copy, bytes, n), 0);
    cr_assert_eq(run("init", F.db, "--embedder", "cnn", "--model", copy, "--json"), 0, "%s",
                 F.err);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "dim")), 1280);
    json_decref(j);
    cr_assert_eq(run("add", F.db, F.imgs, "--quiet"), 0, "%s", F.err);
    gen_path(q, F.imgs, "p04.png");
    cr_assert_eq(run("query", F.db, q, "-k", "2", "--json"), 0, "%s", F.err);
    j = out_json();
    json_t *h0 = json_array_get(json_object_get(j, "hits"), 0);
    cr_assert(strstr(json_string_value(json_object_get(h0, "path")), "p04.png"));
    cr_assert_float_eq(json_real_value(json_object_get(h0, "score")), 1.0, 1e-4);
    json_decref(j);
    cr_assert_eq(run("check", F.db), 0, "%s", F.out);

    /* The weights change under the database: refused, naming the file. */
    bytes[n - 5] ^= 0x40;
    cr_assert_eq(gen_write_bytes(copy, bytes, n), 0);
    cr_assert_eq(run("info", F.db), 1);
    cr_assert(strstr(F.err, "weights.safetensors") && strstr(F.err, "changed"), "%s",
              F.err);

    /* Not MobileNetV2 weights (a truncated copy) at init. */
    cr_assert_eq(gen_write_bytes(copy, bytes, n / 3), 0);
    gen_path(db2, F.dir, "two.pvdb");
    cr_assert_eq(run("init", db2, "--embedder", "cnn", "--model", copy), 1);
    cr_assert(strstr(F.err, "weights.safetensors") && strstr(F.err, "truncated"), "%s",
              F.err);
    free(bytes);
}
