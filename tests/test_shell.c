/*
 * test_shell.c - the interactive shell as sqlite3's behaves: a piped script's
 * exit status (the last failure's; --bail stops at the first), the word
 * functions completion uses (cli/shell_words.c: quoting that splits back to
 * the same name, the long options of a usage and help text), and, through a
 * pseudo-terminal (forkpty), Ctrl-C cancelling the line at the prompt,
 * history written, tab completion of a name with a space, and a running
 * command interrupted while the shell goes on. pv_db_interrupt is tested on
 * the C API from a second thread during a map build and a duplicate scan.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "shell.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

static cli_fix F; /* the folder (F.dir, F.imgs, F.db) and the last run's F.out, F.err */
static char home[GEN_PATH_MAX];

static void setup(void)
{
    cli_fix_setup(&F);
    gen_path(home, F.dir, "home");
    cr_assert_eq(mkdir(home, 0755), 0);
}

static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(shell, .init = setup, .fini = teardown, .timeout = 240);

/* A database of n small pictures (pixels embedder), made through the API. */
static void make_db(int n)
{
    pv_db *h = NULL;
    pv_add_stats st = {0};
    const char *paths[1] = {F.imgs};
    cr_assert_eq(gen_picture_set(F.imgs, "p", n, 16, 16, "png", 7), 0);
    cr_assert_eq(pv_db_create(F.db, NULL, NULL, &h, NULL, 0), 0);
    cr_assert_eq(pv_add(h, paths, 1, NULL, &st), 0);
    cr_assert_eq(st.added, (uint64_t)n);
    pv_db_close(h);
}

/* `pixvec shell DB [extra]` with script on stdin; the exit status. */
static int run_script(const char *script, const char *extra)
{
    return cli_fix_run(&F, script, "shell", F.db, extra, (char *)NULL);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

Test(shell, piped_script_exit_status)
{
    make_db(6);
    /* only good commands */
    cr_assert_eq(run_script("info\nls\n# a comment\n\nhelp\n", NULL), 0, "%s", F.err);
    cr_assert_eq(count(F.out, "items"), 1);
    /* a failing command: the rest runs, the status is its failure's */
    cr_assert_eq(run_script("info\nquery nofile.png\ninfo\n", NULL), 1, "%s", F.err);
    cr_assert_eq(count(F.out, "items"), 2, "%s", F.out);
    cr_assert(strstr(F.err, "nofile.png"), "%s", F.err);
    /* a misspelled command fails too */
    cr_assert_eq(run_script("info\nbogus\ninfo\n", NULL), 2, "%s", F.err);
    cr_assert(strstr(F.err, "bogus"), "%s", F.err);
    /* the last failure's status wins, as in sqlite3 */
    cr_assert_eq(run_script("bogus\nquery nofile.png\ninfo\n", NULL), 1, "%s", F.err);
    /* an open quote is a failure */
    cr_assert_neq(run_script("info \"unclosed\n", NULL), 0);
    /* --bail: nothing after the first failure runs */
    cr_assert_eq(run_script("info\nquery nofile.png\nls\ninfo\n", "--bail"), 1, "%s",
                 F.err);
    cr_assert_eq(count(F.out, "items"), 1, "%s", F.out);
    cr_assert_null(strstr(F.out, "p0000.png"), "ls ran after the failure: %s", F.out);
    cr_assert_eq(run_script("bogus\ninfo\n", "--bail"), 2);
    cr_assert_eq(count(F.out, "items"), 0, "%s", F.out);
    /* a good script with --bail still exits 0 */
    cr_assert_eq(run_script("info\nls\n", "--bail"), 0, "%s", F.err);
    cr_assert_eq(count(F.out, "p0000.png"), 1, "%s", F.out);
}

Test(shell, quote_splits_back_to_the_name)
{
    static const char *const names[] = {
        "plain.png", "with space.png", "it's.png", "say \"cheese\".jpg", "back\\slash",
        "#hash", "tab\there", "mixed 'a' \"b\" \\c #d", "",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *q = cli_shell_quote(names[i]), *argv[4];
        char line[256];
        cr_assert_not_null(q);
        /* as an argument after a command word, the way completion puts it */
        snprintf(line, sizeof line, "query %s", q);
        int argc = cli_split_words(line, argv, 4);
        if (names[i][0]) {
            cr_assert_eq(argc, 2, "'%s' quoted as '%s' split into %d words", names[i], q,
                         argc);
            cr_assert_str_eq(argv[1], names[i], "quoted as '%s'", q);
        }
        /* unquoting the whole quoted word gives the name back */
        char *u = cli_shell_unquote(q);
        cr_assert_str_eq(u, names[i]);
        free(u);
        free(q);
    }
    /* half-typed words: what they stand for so far */
    static const char *const half[][2] = {
        {"odd/with\\ sp", "odd/with sp"}, {"\"odd/w", "odd/w"}, {"'it'\\''s", "it's"},
        {"a\\", "a"},                     {"'a\\b", "a\\b"},    {"x\"y z\"w", "xy zw"},
    };
    for (size_t i = 0; i < sizeof half / sizeof half[0]; i++) {
        char *u = cli_shell_unquote(half[i][0]);
        cr_assert_str_eq(u, half[i][1], "unquote('%s')", half[i][0]);
        free(u);
    }
    /* the common prefix of two quoted names is the quoted common prefix */
    char *a = cli_shell_quote("my file one"), *b = cli_shell_quote("my file two");
    size_t n = 0;
    while (a[n] && a[n] == b[n])
        n++;
    a[n] = 0;
    char *u = cli_shell_unquote(a);
    cr_assert_str_eq(u, "my file ");
    free(u);
    free(a);
    free(b);
}

Test(shell, option_names_from_usage_and_help)
{
    size_t n = 0;
    char **o = cli_option_names("DB [-k K] [--show N] [--of IMAGE] [--html FILE] [--json]",
                                "Text with a-- dash and x--y inside.\n"
                                "  --show N   images\n"
                                "  --embedder/--size/--rgb  refuse unless\n"
                                "  --ef-construction N  candidates\n"
                                "  --json     {a, b}\n"
                                "  -- alone, and --   end",
                                &n);
    static const char *const want[] = {"--show", "--of",  "--html",           "--json",
                                       "--embedder", "--size", "--rgb", "--ef-construction"};
    cr_assert_not_null(o);
    cr_assert_eq(n, sizeof want / sizeof want[0], "%zu names", n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(o[i], want[i], "name %zu", i);
    cr_assert_null(o[n]);
    cli_option_names_free(o);
    o = cli_option_names("", "no options at all", &n);
    cr_assert_not_null(o);
    cr_assert_eq(n, 0);
    cr_assert_null(o[0]);
    cli_option_names_free(o);
    cli_option_names_free(NULL);
}

/* ---- through a pseudo-terminal ---------------------------------------------- */

typedef struct tty_run {
    int fd;
    pid_t pid;
    char out[1 << 16];
    size_t n;
} tty_run;

static void tty_start(tty_run *t)
{
    memset(t, 0, sizeof *t);
    t->pid = forkpty(&t->fd, NULL, NULL, NULL);
    cr_assert_geq(t->pid, 0, "forkpty failed");
    if (t->pid == 0) {
        setenv("HOME", home, 1);
        setenv("TERM", "dumb", 1);
        if (chdir(F.dir) != 0)
            _exit(126);
        execl(PIXVEC_BIN, "pixvec", "shell", F.db, (char *)NULL);
        _exit(127);
    }
}

/* Read until what appears in the output after offset from (or the end, or
 * secs pass: this bounds a hang, it measures nothing). Returns the offset
 * just past it, or 0 when it never came. */
static size_t tty_wait(tty_run *t, size_t from, const char *what, int secs)
{
    time_t end = time(NULL) + secs;
    for (;;) {
        t->out[t->n] = 0;
        char *p = from <= t->n ? strstr(t->out + from, what) : NULL;
        if (p)
            return (size_t)(p - t->out) + strlen(what);
        if (time(NULL) > end || t->n + 1 >= sizeof t->out)
            return 0;
        struct pollfd pf = {t->fd, POLLIN, 0};
        if (poll(&pf, 1, 200) > 0) {
            ssize_t r = read(t->fd, t->out + t->n, sizeof t->out - 1 - t->n);
            if (r <= 0)
                return 0; /* the shell is gone (EIO on the master) */
            t->n += (size_t)r;
        }
    }
}

static size_t tty_expect(tty_run *t, size_t from, const char *what)
{
    return tty_wait(t, from, what, 60);
}

static void tty_send(tty_run *t, const char *s)
{
    cr_assert_eq(write(t->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Drain to the end and reap; the exit status (-1: killed). */
static int tty_finish(tty_run *t)
{
    int st;
    tty_expect(t, t->n, "\x01never\x01");
    close(t->fd);
    cr_assert_eq(waitpid(t->pid, &st, 0), t->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(shell, ctrl_c_cancels_the_line_and_history_is_written)
{
    tty_run t;
    size_t at;
    char hist[GEN_PATH_MAX];
    make_db(4);
    tty_start(&t);
    cr_assert((at = tty_expect(&t, 0, "pixvec> ")), "no prompt: %s", t.out);
    tty_send(&t, "inf");
    cr_assert((at = tty_expect(&t, at, "inf")), "%s", t.out);
    tty_send(&t, "\x03");
    /* a fresh prompt: the shell is still there */
    cr_assert((at = tty_expect(&t, at, "pixvec> ")), "no prompt after Ctrl-C: %s", t.out);
    tty_send(&t, "info\r");
    cr_assert((at = tty_expect(&t, at, "embedder")), "info did not run: %s", t.out);
    cr_assert((at = tty_expect(&t, at, "pixvec> ")), "%s", t.out);
    tty_send(&t, "quit\r");
    cr_assert_eq(tty_finish(&t), 0, "%s", t.out);
    /* the cancelled "inf" never ran: one info output only */
    cr_assert_eq(count(t.out, "embedder "), 1, "%s", t.out);
    gen_path(hist, home, ".pixvec_history");
    char *h = cli_slurp(hist);
    cr_assert(strstr(h, "\ninfo\n"), "history: %s", h);
    cr_assert_null(strstr(h, "inf\n"), "the cancelled line is in the history: %s", h);
    free(h);
}

Test(shell, completion_escapes_a_name_with_a_space)
{
    tty_run t;
    size_t at;
    char sub[GEN_PATH_MAX], p[GEN_PATH_MAX];
    make_db(4);
    gen_path(sub, F.dir, "odd dir");
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(gen_picture(sub, "it's one.png", 7, 16, 16, p), 0);
    tty_start(&t);
    cr_assert((at = tty_expect(&t, 0, "pixvec> ")), "%s", t.out);
    /* two tabs: the folder (escaped, with its '/'), then the file in it */
    tty_send(&t, "query -k 1 odd\t");
    cr_assert((at = tty_expect(&t, at, "odd\\ dir/")), "folder not completed: %s", t.out);
    tty_send(&t, "\t");
    cr_assert((at = tty_expect(&t, at, "it\\'s\\ one.png")), "file not completed: %s", t.out);
    tty_send(&t, "\r");
    /* the query ran on that file: its nearest stored image is listed */
    cr_assert((at = tty_expect(&t, at, "p000")), "query failed: %s", t.out);
    cr_assert((at = tty_expect(&t, at, "pixvec> ")), "%s", t.out);
    /* options: a command's long options from its usage and help; the
     * completed line runs (info --json prints a JSON document) */
    tty_send(&t, "info --js\t\r");
    cr_assert((at = tty_expect(&t, at, "\"items\"")), "option not completed: %s", t.out);
    cr_assert((at = tty_expect(&t, at, "pixvec> ")), "%s", t.out);
    tty_send(&t, "quit\r");
    cr_assert_eq(tty_finish(&t), 0, "%s", t.out);
    cr_assert_null(strstr(t.out, "usage:"), "%s", t.out);
}

Test(shell, ctrl_c_interrupts_a_running_command)
{
    tty_run t;
    size_t at;
    make_db(2000);
    tty_start(&t);
    cr_assert((at = tty_expect(&t, 0, "pixvec> ")), "%s", t.out);
    /* Far more epochs than the test waits for: only an interrupt ends it.
     * A Ctrl-C that lands before the command starts cancels the line
     * instead (a fresh prompt and no "interrupted"): then type it again. */
    size_t hit = 0;
    for (int i = 0; i < 20 && !hit; i++) {
        tty_send(&t, "map --recompute --epochs 100000\r");
        /* the newline echoed: the line was read (a Ctrl-C before that
         * flushes the tty's queue, Enter with it) */
        cr_assert((at = tty_expect(&t, at, "100000\r\n")), "%s", t.out);
        for (int j = 0; j < 10 && !hit; j++) {
            tty_send(&t, "\x03");
            /* a few seconds: under strace a signal waits on the tracer */
            hit = tty_wait(&t, at, "interrupted", 5);
            size_t p = hit ? 0 : tty_wait(&t, at, "pixvec> ", 0);
            if (p && !(hit = tty_wait(&t, at, "interrupted", 0))) {
                at = p; /* the line was cancelled before it ran */
                break;
            }
        }
    }
    cr_assert(hit, "the map was not interrupted: %s", t.out);
    cr_assert((at = tty_expect(&t, hit, "pixvec> ")), "no prompt after: %s", t.out);
    /* A Ctrl-C the tracer held back may still cancel the line being typed
     * (the shell's answer to a Ctrl-C at the prompt): then type it again. */
    size_t items = 0;
    for (int i = 0; i < 5 && !items; i++) {
        tty_send(&t, "info\r");
        items = tty_wait(&t, at, "items     2000", 10);
    }
    cr_assert(items, "the shell stopped: %s", t.out);
    tty_send(&t, "quit\r");
    cr_assert_eq(tty_finish(&t), 0, "%s", t.out);
    cr_assert_geq(cli_checked_items(F.db, F.outp, F.errp), 2000);
}

/* ---- the C API ---------------------------------------------------------------- */

typedef struct interrupter {
    pv_db *db;
    atomic_int done;
    pthread_t th;
} interrupter;

/* Keep asking until the call under test has returned: the call clears the
 * request when it starts, so one made before it would be forgotten. */
static void *interrupt_run(void *arg)
{
    interrupter *it = arg;
    while (!atomic_load(&it->done)) {
        pv_db_interrupt(it->db);
        nanosleep(&(struct timespec){0, 100 * 1000}, NULL);
    }
    return NULL;
}

static void interrupter_start(interrupter *it, pv_db *h)
{
    it->db = h;
    atomic_store(&it->done, 0);
    cr_assert_eq(pthread_create(&it->th, NULL, interrupt_run, it), 0);
}

static void interrupter_stop(interrupter *it)
{
    atomic_store(&it->done, 1);
    pthread_join(it->th, NULL);
}

Test(shell, interrupt_stops_map_and_dups_and_leaves_the_database)
{
    pv_db *h = NULL;
    pv_map *m = NULL;
    pv_dups *d = NULL;
    interrupter it;
    pv_info before, after;
    make_db(3000);
    cr_assert_eq(pv_db_open(F.db, 0, &h, NULL, 0), 0);
    cr_assert_eq(pv_db_info(h, &before), 0);

    pv_map_opts mo = {.method = PV_MAP_UMAP, .epochs = 100000};
    interrupter_start(&it, h);
    int rc = pv_map_build(h, &mo, &m);
    interrupter_stop(&it);
    cr_assert_eq(rc, PV_EINTR, "map: %d %s", rc, pv_db_errmsg(h));
    cr_assert_null(m);

    mo.method = PV_MAP_TSNE;
    mo.epochs = 0;
    interrupter_start(&it, h);
    rc = pv_map_build(h, &mo, &m);
    interrupter_stop(&it);
    cr_assert_eq(rc, PV_EINTR, "t-SNE: %d %s", rc, pv_db_errmsg(h));

    pv_dups_opts dopt = {.mode = PV_DUPS_EXACT};
    interrupter_start(&it, h);
    rc = pv_find_dups(h, &dopt, &d);
    interrupter_stop(&it);
    cr_assert_eq(rc, PV_EINTR, "dups: %d %s", rc, pv_db_errmsg(h));
    cr_assert_null(d);

    pv_cluster_opts co = {.k = 40, .iters = 100000, .tol = -1, .sample = -1};
    interrupter_start(&it, h);
    rc = pv_cluster_train(h, &co, NULL);
    interrupter_stop(&it);
    cr_assert_eq(rc, PV_EINTR, "cluster: %d %s", rc, pv_db_errmsg(h));

    /* the database as it was, and a later call runs: the request is gone */
    cr_assert_eq(pv_db_verify(h), 0, "%s", pv_db_errmsg(h));
    cr_assert_eq(pv_db_info(h, &after), 0);
    cr_assert_eq(after.items, before.items);
    cr_assert_eq(after.cluster_k, 0, "an interrupted clustering was stored");
    pv_db_interrupt(h); /* made while nothing runs: forgotten */
    dopt.mode = PV_DUPS_AUTO;
    cr_assert_eq(pv_find_dups(h, &dopt, &d), 0, "%s", pv_db_errmsg(h));
    cr_assert_eq(d->scanned, 3000);
    pv_dups_free(d);
    pv_db_interrupt(NULL);
    pv_db_close(h);
}
