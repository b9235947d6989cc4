/*
 * cli_run.h - running a program from a test, its stdout and stderr caught in
 * files and read back as text (tests only; used by test_cli.c and
 * test_report.c to run the pixvec binary, and chromium), and running shell
 * commands such as the python reference scripts (test_tsne.c, test_umap.c).
 *
 * Failures to fork or a child killed by a signal fail the calling test
 * through Criterion's assertions, so callers only look at exit statuses.
 *
 * Typical use:
 *     pid_t pid = cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp);
 *     int status = cli_wait(pid, "pixvec", outp, errp, &out_text, &err_text);
 *
 * The suites that run pixvec many times share one fixture, cli_fix: a fresh
 * folder per test with the usual paths in it, and the last run's output:
 *     static cli_fix F;
 *     static void setup(void) { cli_fix_setup(&F); }
 *     static void teardown(void) { cli_fix_teardown(&F); }
 *     #define run(...) cli_fix_run(&F, NULL, __VA_ARGS__, (char *)NULL)
 *     cr_assert_eq(run("init", F.db), 0, "%s", F.err);
 */
#ifndef PV_TEST_CLI_RUN_H
#define PV_TEST_CLI_RUN_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "gen.h"

/* The whole file at path as a NUL-terminated string (malloc'd, caller
 * frees); "" when it cannot be read. */
char *cli_slurp(const char *path);

/* Start file (a path, or a name looked up in PATH) with argv (NULL-ended),
 * stdin from stdin_file (NULL: /dev/null), stdout and stderr to the files
 * outp and errp (created or truncated). Returns the child's pid; a child that
 * cannot exec exits with 127. */
pid_t cli_spawn(const char *file, char *const argv[], const char *stdin_file,
                const char *outp, const char *errp);

/* Wait for pid, then replace *out_text and *err_text (freed first, may be
 * NULL) by the text of outp and errp. Fails the test, naming name, if the
 * child died of a signal; else returns its exit status. */
int cli_wait(pid_t pid, const char *name, const char *outp, const char *errp,
             char **out_text, char **err_text);

/* Run `pixvec check DB` (it must pass: the test fails otherwise, showing
 * its words) and return `pixvec info DB --json`'s live item count. outp and
 * errp are scratch files for their output. */
long cli_checked_items(const char *db, const char *outp, const char *errp);

/* Format a shell command printf-style (at most CLI_SHELL_MAX bytes) and run
 * it with system(); fails the test, showing the command, unless it exits 0. */
#define CLI_SHELL_MAX 32768
void cli_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same through popen: the command's first line of output into out (len
 * bytes, NUL-terminated); fails the test when it prints nothing or does not
 * exit 0. */
void cli_shell_line(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One test's folder and the paths in it, and what the last run printed. */
typedef struct cli_fix {
    char dir[GEN_PATH_MAX];  /* made by gen_tmpdir, removed by the teardown */
    char imgs[GEN_PATH_MAX]; /* dir/imgs, made (empty) by the setup */
    char db[GEN_PATH_MAX];   /* dir/t.pvdb, not made */
    char outp[GEN_PATH_MAX]; /* dir/stdout, dir/stderr: the runs' output files */
    char errp[GEN_PATH_MAX];
    char inp[GEN_PATH_MAX]; /* dir/stdin: the stdin_text of a run */
    char *out, *err;        /* the last run's stdout and stderr (NULL before) */
} cli_fix;

/* A fresh folder with imgs/ made and every path set; fails the test if the
 * folder cannot be made. */
void cli_fix_setup(cli_fix *f);

/* Free the output and remove the folder. */
void cli_fix_teardown(cli_fix *f);

/* Run PIXVEC_BIN with argv (NULL-ended, argv[0] "pixvec"), stdin_text on its
 * stdin (NULL: /dev/null); the exit status, its output in f->out and f->err.
 * Fails the test if pixvec dies of a signal. */
int cli_fix_runv(cli_fix *f, const char *stdin_text, char *const argv[]);

/* The same with argv {"pixvec", first, ...}: the arguments end with NULL
 * (at most 62 of them). */
int cli_fix_run(cli_fix *f, const char *stdin_text, const char *first, ...);

/* The last run's stdout as exactly one JSON document (caller decrefs); fails
 * the test otherwise. */
json_t *cli_fix_json(const cli_fix *f);

#endif
