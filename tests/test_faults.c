/*
 * test_faults.c - fault injection (issue 12): a full disk (RLIMIT_FSIZE on
 * the writer), LMDB's map full (PIXVEC_MAP_LIMIT caps its growth) and an
 * unreadable file in the middle of a batch. Each time the message names the
 * cause, `check` passes afterwards, and the database holds exactly what was
 * committed before the failure: what the error message says was kept.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

static char dir[GEN_PATH_MAX], first[GEN_PATH_MAX], more[GEN_PATH_MAX], dbp[GEN_PATH_MAX];
static char outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
static char *out_text, *err_text;

static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(first, dir, "first");
    gen_path(more, dir, "more");
    gen_path(dbp, dir, "f.pvdb");
    gen_path(outp, dir, "out");
    gen_path(errp, dir, "err");
    cr_assert_eq(mkdir(first, 0755), 0);
    cr_assert_eq(mkdir(more, 0755), 0);
}

static void teardown(void)
{
    unsetenv("PIXVEC_MAP_LIMIT");
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    gen_rmtree(dir);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 300);

static void make_set(const char *folder, const char *prefix, int n, uint32_t w, uint32_t h)
{
    cr_assert_eq(gen_picture_set(folder, prefix, n, w, h, "png", 300), 0);
}

static int run(char *const argv[])
{
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp), argv[1], outp, errp,
                    &out_text, &err_text);
}

/* Run pixvec with argv in a child that first applies a file size limit
 * (fsize > 0: RLIMIT_FSIZE, SIGXFSZ ignored so writes fail with EFBIG) or
 * becomes uid/gid `uid` (uid > 0). */
static int run_limited(char *const argv[], rlim_t fsize, uid_t uid)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(o, 1);
        dup2(e, 2);
        if (fsize > 0) {
            struct rlimit rl = {fsize, fsize};
            signal(SIGXFSZ, SIG_IGN);
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(126);
        }
        if (uid > 0 && (setgid(uid) != 0 || setuid(uid) != 0))
            _exit(126);
        execv(PIXVEC_BIN, argv);
        _exit(127);
    }
    return cli_wait(pid, argv[1], outp, errp, &out_text, &err_text);
}

static long checked_items(void)
{
    return cli_checked_items(dbp, outp, errp);
}

/* "... (N images kept: ..." of a failed add's message. */
static long kept_of(const char *msg)
{
    const char *k = strstr(msg, "images kept");
    cr_assert_not_null(k, "no count of kept images in: %s", msg);
    while (k > msg && (k[-1] == ' ' || (k[-1] >= '0' && k[-1] <= '9')))
        k--;
    return strtol(k, NULL, 10);
}

static void init_and_add_first(int n)
{
    char *init[] = {"pixvec", "init", dbp, NULL};
    char *add[] = {"pixvec", "add", dbp, first, "--quiet", NULL};
    make_set(first, "f", n, 48, 36);
    cr_assert_eq(run(init), 0, "%s", err_text);
    cr_assert_eq(run(add), 0, "%s", err_text);
    cr_assert_eq(checked_items(), n);
}

/* The map may not grow past 1 MiB: the batch that needs more fails with
 * "database map full", the batches before it stay. */
Test(faults, map_full_keeps_the_committed_batches)
{
    setenv("PIXVEC_MAP_LIMIT", "1048576", 1);
    init_and_add_first(40);
    make_set(more, "m", 900, 48, 36);
    char *add[] = {"pixvec", "add", dbp, more, "--threads", "1", "--commit-every", "0.02",
                   "--quiet", NULL};
    cr_assert_eq(run(add), 1, "the add did not fail: %s", out_text);
    cr_assert(strstr(err_text, "database map full"), "%s", err_text);
    long kept = kept_of(err_text);
    cr_assert_eq(checked_items(), 40 + kept, "%s", err_text);
    unsetenv("PIXVEC_MAP_LIMIT");
    char *again[] = {"pixvec", "add", dbp, more, "--quiet", NULL};
    cr_assert_eq(run(again), 0, "without the cap the rest goes in: %s", err_text);
    cr_assert_eq(checked_items(), 40 + 900);
}

/* A full disk: data.mdb may not grow (RLIMIT_FSIZE at its size now). */
Test(faults, full_disk_keeps_the_committed_batches)
{
    char data[GEN_PATH_MAX];
    struct stat sb;
    init_and_add_first(40);
    make_set(more, "m", 900, 48, 36);
    gen_path(data, dbp, "data.mdb");
    cr_assert_eq(stat(data, &sb), 0);
    char *add[] = {"pixvec", "add", dbp, more, "--threads", "1", "--commit-every", "0.02",
                   "--quiet", NULL};
    int rc = run_limited(add, (rlim_t)sb.st_size + 64 * 1024, 0);
    cr_assert_eq(rc, 1, "the add did not fail (%d): %s", rc, out_text);
    cr_assert(strstr(err_text, "file size limit"), "the message does not name the cause: %s",
              err_text);
    long kept = kept_of(err_text);
    cr_assert_eq(checked_items(), 40 + kept, "%s", err_text);
    char *again[] = {"pixvec", "add", dbp, more, "--quiet", NULL};
    cr_assert_eq(run(again), 0, "with room the rest goes in: %s", err_text);
    cr_assert_eq(checked_items(), 40 + 900);
}

/* A file that cannot be read, in the middle of a batch: named with the
 * reason; the others of its batch are committed. Root reads anything, so
 * as root the add runs as nobody (uid 65534) over a tree it owns. */
Test(faults, unreadable_file_in_a_batch)
{
    char bad[GEN_PATH_MAX], cmd[GEN_PATH_MAX + 64];
    make_set(first, "u", 30, 48, 36);
    char *init[] = {"pixvec", "init", dbp, NULL};
    cr_assert_eq(run(init), 0, "%s", err_text);
    gen_path(bad, first, "u0015.png");
    cr_assert_eq(chmod(bad, 0), 0);
    uid_t as = 0;
    if (geteuid() == 0) {
        as = 65534;
        snprintf(cmd, sizeof cmd, "chown -R 65534:65534 '%s'", dir);
        cr_assert_eq(system(cmd), 0);
        cr_assert_eq(chmod(dir, 0755), 0);
    }
    char *add[] = {"pixvec", "add", dbp, first, "--quiet", NULL};
    int rc = run_limited(add, 0, as);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err_text);
    cr_assert(strstr(err_text, "u0015.png") && strstr(err_text, "ermission denied"),
              "%s", err_text);
    cr_assert_eq(checked_items(), 29);
}
