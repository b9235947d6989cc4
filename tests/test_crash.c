/*
 * test_crash.c - kill -9 at random moments of every writing command, 100
 * rounds (issue 12): add, rm, vacuum, ivf train, cluster and dups
 * --move-to, each killed after a random delay, then `check` must pass and
 * no item committed before the round may be gone unless the command was
 * one that removes it (rm of that path, or dups dropping it). Between
 * rounds, what a killed dups moved is put back with undo-move, so the
 * collection stays the same. In sanitizer builds 20 rounds run (each
 * command is several times slower there).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
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

#if defined(__SANITIZE_ADDRESS__)
#define ROUNDS 20
#else
#define ROUNDS 100
#endif
#define NA 500 /* small pictures in a/, 20 of them with a byte copy */
#define NB 200 /* larger pictures in b/, for add to be slow enough to kill */
#define MAXP 1024

static char dir[GEN_PATH_MAX], fa[GEN_PATH_MAX], fb[GEN_PATH_MAX], dbp[GEN_PATH_MAX];
static char dest[GEN_PATH_MAX], undo[GEN_PATH_MAX], outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
static char *out_text, *err_text;

static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(fa, dir, "a");
    gen_path(fb, dir, "b");
    gen_path(dbp, dir, "c.pvdb");
    gen_path(dest, dir, "dropped");
    gen_path(undo, dir, "undo.tsv");
    gen_path(outp, dir, "out");
    gen_path(errp, dir, "err");
    cr_assert_eq(mkdir(fa, 0755), 0);
    cr_assert_eq(mkdir(fb, 0755), 0);
}

static void teardown(void)
{
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    gen_rmtree(dir);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 900);

static int run(char *const argv[])
{
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp), argv[1], outp, errp,
                    &out_text, &err_text);
}

/* The stored paths (`ls --json`), sorted, into set; returns how many. */
static size_t stored(char (*set)[GEN_PATH_MAX])
{
    char *ls[] = {"pixvec", "ls", dbp, "--json", NULL};
    cr_assert_eq(run(ls), 0, "%s", err_text);
    json_t *j = json_loads(out_text, 0, NULL), *items = json_object_get(j, "items");
    cr_assert_not_null(items, "%s", out_text);
    size_t n = json_array_size(items);
    cr_assert_leq(n, MAXP);
    for (size_t i = 0; i < n; i++)
        snprintf(set[i], GEN_PATH_MAX, "%s",
                 json_string_value(json_object_get(json_array_get(items, i), "path")));
    json_decref(j);
    return n;
}

static int in_set(char (*set)[GEN_PATH_MAX], size_t n, const char *p)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i], p) == 0)
            return 1;
    return 0;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void copy_file(const char *from, const char *to)
{
    uint8_t *d = NULL;
    size_t n = 0;
    cr_assert_eq(gen_read_bytes(from, &d, &n), 0);
    cr_assert_eq(gen_write_bytes(to, d, n), 0);
    free(d);
}

Test(crash, kill_9_during_every_writer_loses_nothing_committed)
{
    static char before[MAXP][GEN_PATH_MAX], after[MAXP][GEN_PATH_MAX];
    static char rmlist[40][GEN_PATH_MAX];
    char p[GEN_PATH_MAX], q[GEN_PATH_MAX];
    int kills = 0, per_op[6] = {0};
    long est_ms[6] = {250, 250, 250, 250, 250, 250};
    for (int i = 0; i < NA; i++) {
        char name[32];
        snprintf(name, sizeof name, "a%04d.png", i);
        cr_assert_eq(gen_picture(fa, name, (uint32_t)(5000 + i), 40, 30, p), 0);
        if (i < 20) { /* an exact copy: dups has files to move */
            snprintf(name, sizeof name, "a%04d-copy.png", i);
            gen_path(q, fa, name);
            copy_file(p, q);
        }
    }
    for (int i = 0; i < NB; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%04d.jpg", i);
        cr_assert_eq(gen_picture(fb, name, (uint32_t)(9000 + i), 320, 240, p), 0);
    }
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%04d.jpg", i * 5);
        gen_path(rmlist[i], fb, name);
    }
    char *init[] = {"pixvec", "init", dbp, NULL};
    char *adda[] = {"pixvec", "add", dbp, fa, "--quiet", NULL};
    cr_assert_eq(run(init), 0, "%s", err_text);
    cr_assert_eq(run(adda), 0, "%s", err_text);

    for (int round = 0; round < ROUNDS; round++) {
        int op = round % 6;
        char *argv[64] = {"pixvec"};
        int argc = 1;
        size_t nb = stored(before);
        switch (op) {
        case 0: /* add b/ (what rm took out comes back) */
            argv[argc++] = "add", argv[argc++] = dbp, argv[argc++] = fb;
            argv[argc++] = "--quiet";
            break;
        case 1: /* rm 40 of b/'s images */
            argv[argc++] = "rm", argv[argc++] = dbp;
            for (int i = 0; i < 40; i++)
                if (in_set(before, nb, rmlist[i]))
                    argv[argc++] = rmlist[i];
            if (argc == 3)
                argv[argc++] = rmlist[0]; /* not stored: rm says so, changes nothing */
            break;
        case 2:
            argv[argc++] = "vacuum", argv[argc++] = dbp;
            break;
        case 3:
            argv[argc++] = "ivf", argv[argc++] = "train", argv[argc++] = dbp;
            argv[argc++] = "--nlist", argv[argc++] = "16";
            break;
        case 4:
            argv[argc++] = "cluster", argv[argc++] = dbp, argv[argc++] = "-k";
            argv[argc++] = "8";
            break;
        default:
            argv[argc++] = "dups", argv[argc++] = dbp, argv[argc++] = "--move-to";
            argv[argc++] = dest, argv[argc++] = "--undo-list", argv[argc++] = undo;
        }
        argv[argc] = NULL;
        /* The kill comes at a random moment of the command's run: a
         * delay drawn below how long that command last took when it was
         * let finish (est_ms), so fast machines still kill mid-command. */
        pid_t pid = cli_spawn(PIXVEC_BIN, argv, NULL, outp, errp);
        long delay = (long)(next_rand() % (uint64_t)est_ms[op]), waited = 0;
        int status = 0, done = 0;
        const struct timespec ms = {0, 1000000L};
        while (!(done = waitpid(pid, &status, WNOHANG) == pid) && waited < delay) {
            nanosleep(&ms, NULL);
            waited++;
        }
        if (done) {
            est_ms[op] = waited > 2 ? waited : 2;
        } else {
            kill(pid, SIGKILL);
            cr_assert_eq(waitpid(pid, &status, 0), pid);
        }
        if (WIFSIGNALED(status)) {
            kills++;
            per_op[op]++;
        }
        char *chk[] = {"pixvec", "check", dbp, NULL};
        cr_assert_eq(run(chk), 0, "round %d (%s killed): %s", round, argv[1], err_text);
        size_t na = stored(after);
        for (size_t i = 0; i < nb; i++) {
            int may_go = (op == 1 && strncmp(before[i], fb, strlen(fb)) == 0) ||
                         (op == 5 && strstr(before[i], "a0") != NULL);
            cr_assert(may_go || in_set(after, na, before[i]),
                      "round %d (%s killed): %s was committed before and is gone", round,
                      argv[1], before[i]);
        }
        if (op == 5 && access(undo, F_OK) == 0) { /* put the moved files back */
            char *um[] = {"pixvec", "undo-move", dbp, undo, NULL};
            cr_assert_eq(run(um), 0, "round %d: %s", round, err_text);
            cr_assert_eq(unlink(undo), 0);
            cr_assert_eq(run(chk), 0, "round %d after undo-move: %s", round, err_text);
        }
    }
    cr_assert_gt(kills, ROUNDS / 4, "only %d of %d kills landed before the command ended",
                 kills, ROUNDS);
    /* Run to the end, the collection is whole again. */
    char *addb[] = {"pixvec", "add", dbp, fa, fb, "--quiet", NULL};
    cr_assert_eq(run(addb), 0, "%s", err_text);
    char *chk[] = {"pixvec", "check", dbp, "--files", NULL};
    cr_assert_eq(run(chk), 0, "%s%s", out_text, err_text);
    cr_assert_eq(stored(after), NA + 20 + NB);
    printf("crash: %d rounds, %d killed mid-command (add %d, rm %d, vacuum %d, ivf %d, "
           "cluster %d, dups --move-to %d); check passed after every one\n",
           ROUNDS, kills, per_op[0], per_op[1], per_op[2], per_op[3], per_op[4], per_op[5]);
}
