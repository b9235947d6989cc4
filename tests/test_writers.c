/*
 * test_writers.c - never corrupt, never lose (issue 12, items 1, 3, 4, 5 and
 * the OpenBLAS half of 7): several writers at once on one database, a
 * second writer waiting for the first and interrupted while it waits, add
 * cancelled in the middle (what is embedded is kept), commits by time,
 * progress per image, files deleted from disk forgotten by the next add of
 * their folder and listed by `check --files`, `init` refusing a folder of
 * other files, and OpenBLAS's process-wide thread count put back after two
 * overlapping adds.
 */
#include <cblas.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

#define MODEL "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors"

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], dbp[GEN_PATH_MAX];
static char *out_text, *err_text;

static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(imgs, dir, "imgs");
    gen_path(dbp, dir, "t.pvdb");
    cr_assert_eq(mkdir(imgs, 0755), 0);
}

static void teardown(void)
{
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
    gen_rmtree(dir);
}

TestSuite(writers, .init = setup, .fini = teardown, .timeout = 300);

/* n pictures named PREFIX%04d.jpg (or .png for every third) in folder. */
static void make_set(const char *folder, const char *prefix, int n, uint32_t w, uint32_t h)
{
    cr_assert_eq(gen_picture_set(folder, prefix, n, w, h, NULL, 1000), 0);
}

/* Start `pixvec ARGS...`, output in dir/NAME.out and dir/NAME.err. */
static pid_t start(const char *name, char *const argv[])
{
    char o[GEN_PATH_MAX], e[GEN_PATH_MAX], n[64];
    snprintf(n, sizeof n, "%s.out", name);
    gen_path(o, dir, n);
    snprintf(n, sizeof n, "%s.err", name);
    gen_path(e, dir, n);
    return cli_spawn(PIXVEC_BIN, argv, NULL, o, e);
}

/* Wait for a process started by start(); its output in out_text/err_text. */
static int finish(const char *name, pid_t pid)
{
    char o[GEN_PATH_MAX], e[GEN_PATH_MAX], n[64];
    snprintf(n, sizeof n, "%s.out", name);
    gen_path(o, dir, n);
    snprintf(n, sizeof n, "%s.err", name);
    gen_path(e, dir, n);
    return cli_wait(pid, name, o, e, &out_text, &err_text);
}

static int run(char *const argv[])
{
    return finish("run", start("run", argv));
}

static long checked_items(void)
{
    char o[GEN_PATH_MAX], e[GEN_PATH_MAX];
    gen_path(o, dir, "check.out");
    gen_path(e, dir, "check.err");
    return cli_checked_items(dbp, o, e);
}

static void init_db(void)
{
    char *argv[] = {"pixvec", "init", dbp, NULL};
    cr_assert_eq(run(argv), 0, "%s", err_text);
}

/* Issue 12, item 1: three `add`s of one folder at once stored every image
 * three times' worth of ids; now the second and third wait and find every
 * file unchanged. */
Test(writers, three_adds_of_one_folder_at_once_store_each_file_once)
{
    const int N = 600;
    char *argv[] = {"pixvec", "add", dbp, imgs, "--quiet", NULL};
    char q[GEN_PATH_MAX];
    pid_t pid[3];
    make_set(imgs, "a", N, 96, 64);
    init_db();
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "add%d", i);
        pid[i] = start(name, argv);
    }
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "add%d", i);
        cr_assert_eq(finish(name, pid[i]), 0, "add %d: %s", i, err_text);
    }
    cr_assert_eq(checked_items(), N);
    /* one path once: the two best hits of an image are two different files */
    gen_path(q, imgs, "a0001.jpg");
    char *qa[] = {"pixvec", "query", dbp, q, "-k", "2", "--json", NULL};
    cr_assert_eq(run(qa), 0, "%s", err_text);
    json_t *j = json_loads(out_text, 0, NULL);
    json_t *hits = json_object_get(j, "hits");
    cr_assert_eq(json_array_size(hits), 2, "%s", out_text);
    cr_assert_str_neq(json_string_value(json_object_get(json_array_get(hits, 0), "path")),
                      json_string_value(json_object_get(json_array_get(hits, 1), "path")));
    json_decref(j);
}

/* Writers of every kind at once: add of a new folder, rm, vacuum and ivf
 * train. Whatever their order, the lists must hold every live item and the
 * counts must add up. */
Test(writers, add_rm_vacuum_and_ivf_train_at_once)
{
    char more[GEN_PATH_MAX], victim[GEN_PATH_MAX];
    gen_path(more, dir, "more");
    cr_assert_eq(mkdir(more, 0755), 0);
    make_set(imgs, "b", 400, 64, 48);
    make_set(more, "m", 300, 64, 48);
    init_db();
    char *add1[] = {"pixvec", "add", dbp, imgs, "--quiet", NULL};
    cr_assert_eq(run(add1), 0, "%s", err_text);
    gen_path(victim, imgs, "b0007.jpg");
    char *add2[] = {"pixvec", "add", dbp, more, "--quiet", NULL};
    char *rm[] = {"pixvec", "rm", dbp, victim, NULL};
    char *vac[] = {"pixvec", "vacuum", dbp, NULL};
    char *ivf[] = {"pixvec", "ivf", "train", dbp, "--nlist", "16", NULL};
    pid_t p1 = start("add2", add2), p2 = start("rm", rm), p3 = start("vacuum", vac);
    pid_t p4 = start("ivf", ivf);
    cr_assert_eq(finish("add2", p1), 0, "%s", err_text);
    cr_assert_eq(finish("rm", p2), 0, "%s", err_text);
    cr_assert_eq(finish("vacuum", p3), 0, "%s", err_text);
    cr_assert_eq(finish("ivf", p4), 0, "%s", err_text);
    cr_assert_eq(checked_items(), 400 + 300 - 1);
}

/* A second writer waits for the first, says so once, and a Ctrl-C while it
 * waits ends it with the database unchanged; released, it finishes. The
 * first writer here is the test itself, holding the same lock pixvec takes
 * (an exclusive flock on data.mdb). */
Test(writers, second_writer_waits_says_so_and_can_be_interrupted)
{
    char data[GEN_PATH_MAX];
    char *argv[] = {"pixvec", "add", dbp, imgs, "--quiet", NULL};
    make_set(imgs, "w", 20, 64, 48);
    init_db();
    gen_path(data, dbp, "data.mdb");
    /* close-on-exec: a waiter that inherited the locked description would
     * hold the lock it waits for once this test is gone */
    int fd = open(data, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(flock(fd, LOCK_EX), 0);
        pid_t pid = start("waiter", argv);
        char e[GEN_PATH_MAX];
        gen_path(e, dir, "waiter.err");
        int said = 0;
        for (int i = 0; i < 500 && !said; i++) { /* up to 10 s */
            char *t = cli_slurp(e);
            said = strstr(t, "waiting") != NULL;
            free(t);
            if (!said)
                sleep_us(20000);
        }
        cr_assert(said, "the second writer did not say it waits");
        if (round == 0) {
            kill(pid, SIGINT);
            int rc = finish("waiter", pid);
            cr_assert_eq(rc, 128 + SIGINT, "exit %d: %s", rc, err_text);
            cr_assert(strstr(err_text, "interrupted"), "%s", err_text);
            cr_assert_eq(flock(fd, LOCK_UN), 0);
            cr_assert_eq(checked_items(), 0);
        } else {
            cr_assert_eq(flock(fd, LOCK_UN), 0);
            cr_assert_eq(finish("waiter", pid), 0, "%s", err_text);
            cr_assert_eq(checked_items(), 20);
        }
    }
    close(fd);
}

typedef struct watch {
    volatile int cancel;
    uint64_t cancel_at;      /* set cancel once done reaches this (0: never) */
    uint64_t calls, between; /* progress calls; those with 0 < done < total */
    uint64_t last_done;
    int backwards;
} watch;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    watch *w = ctx;
    w->calls++;
    if (done > 0 && done < total)
        w->between++;
    if (done < w->last_done)
        w->backwards = 1;
    w->last_done = done;
    if (w->cancel_at && done >= w->cancel_at)
        w->cancel = 1;
}

static pv_db *create_db(void)
{
    pv_db *db = NULL;
    char err[512];
    cr_assert_eq(pv_db_create(dbp, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
    return db;
}

/* Issue 12, item 5: a cancel in the middle keeps what was embedded (it was
 * all lost before: one commit per 1024 images), says how many, and leaves a
 * consistent database that the next add completes. */
Test(writers, cancelled_add_keeps_what_was_embedded)
{
    const int N = 800;
    make_set(imgs, "c", N, 320, 240);
    pv_db *db = create_db();
    watch w = {0};
    w.cancel_at = 40;
    pv_add_opts o = {.threads = 1, .progress = on_progress, .ctx = &w};
    o.cancel = &w.cancel;
    pv_add_stats st;
    const char *paths[1] = {imgs};
    int rc = pv_add(db, paths, 1, &o, &st);
    cr_assert_eq(rc, PV_EINTR, "rc %d: %s", rc, pv_db_errmsg(db));
    cr_assert_gt(st.kept, 0, "nothing was kept");
    cr_assert_lt(st.kept, (uint64_t)N);
    pv_info in;
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.items, st.kept);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_add_opts o2 = {.threads = 1};
    cr_assert_eq(pv_add(db, paths, 1, &o2, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.items, (uint64_t)N);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_db_close(db);
}

/* Progress moves per image, not per commit: with one commit at the end the
 * callback still sees counts between 0 and the total, never going back. */
Test(writers, progress_moves_between_commits)
{
    const int N = 600;
    make_set(imgs, "g", N, 320, 240);
    pv_db *db = create_db();
    watch w = {0};
    pv_add_opts o = {.threads = 1, .progress = on_progress, .ctx = &w, .commit_seconds = 1000};
    pv_add_stats st;
    const char *paths[1] = {imgs};
    cr_assert_eq(pv_add(db, paths, 1, &o, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, (uint64_t)N);
    cr_assert_gt(w.between, 0, "no progress between the start and the one commit (%llu calls)",
                 (unsigned long long)w.calls);
    cr_assert_eq(w.backwards, 0);
    cr_assert_eq(w.last_done, (uint64_t)N);
    pv_db_close(db);
}

/* Commits by time: a reader sees the database grow while one add runs. */
Test(writers, add_commits_every_few_seconds)
{
    const int N = 1200;
    make_set(imgs, "t", N, 320, 240);
    init_db();
    char *argv[] = {"pixvec", "add", dbp, imgs, "--threads", "1", "--commit-every", "0.05",
                    "--quiet", NULL};
    pid_t pid = start("slow", argv);
    long seen_between = 0;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        long n = checked_items();
        if (n > 0 && n < N)
            seen_between = n;
        sleep_us(20000);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_gt(seen_between, 0, "no commit was seen before the end of the add");
    cr_assert_eq(checked_items(), N);
}

/* Ctrl-C in the middle of a command-line add: it says how many images it
 * kept, exits 130, and that many are in the database. */
Test(writers, ctrl_c_during_add_says_what_was_kept)
{
    const int N = 1500;
    make_set(imgs, "s", N, 320, 240);
    init_db();
    char *argv[] = {"pixvec", "add", dbp, imgs, "--threads", "1", NULL};
    pid_t pid = start("sig", argv);
    sleep_us(400000);
    kill(pid, SIGINT);
    int rc = finish("sig", pid);
    if (rc == 0) { /* the add beat the signal: nothing to say */
        cr_assert_eq(checked_items(), N);
        return;
    }
    cr_assert_eq(rc, 130, "exit %d: %s", rc, err_text);
    unsigned long kept = 0;
    const char *k = strstr(err_text, "interrupted: ");
    cr_assert_not_null(k, "%s", err_text);
    cr_assert_eq(sscanf(k, "interrupted: %lu images kept", &kept), 1, "%s", err_text);
    cr_assert_eq(checked_items(), (long)kept);
}

/* Issue 12, item 3: files deleted from disk are forgotten by the next add
 * of their folder (a moved one keeps its vector, a sibling folder's are left
 * alone), counted; `check --files` lists stored images whose files are gone. */
Test(writers, readd_forgets_deleted_files_and_check_lists_them)
{
    char sib[GEN_PATH_MAX], sub[GEN_PATH_MAX], p[GEN_PATH_MAX], p2[GEN_PATH_MAX];
    gen_path(sib, dir, "imgs2"); /* "imgs2" starts with "imgs": not under it */
    gen_path(sub, imgs, "sub");
    cr_assert_eq(mkdir(sib, 0755), 0);
    cr_assert_eq(mkdir(sub, 0755), 0);
    make_set(imgs, "d", 10, 64, 48);
    make_set(sib, "e", 3, 64, 48);
    pv_db *db = create_db();
    const char *both[2] = {imgs, sib};
    pv_add_stats st;
    cr_assert_eq(pv_add(db, both, 2, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, 13);
    gen_path(p, imgs, "d0001.jpg");
    cr_assert_eq(unlink(p), 0);
    gen_path(p, imgs, "d0002.jpg");
    cr_assert_eq(unlink(p), 0);
    gen_path(p, sib, "e0001.jpg");
    cr_assert_eq(unlink(p), 0);
    gen_path(p, imgs, "d0004.jpg"); /* moved, not gone */
    gen_path(p2, sub, "d0004.jpg");
    cr_assert_eq(rename(p, p2), 0);
    pv_db_close(db);

    char *chk[] = {"pixvec", "check", dbp, "--files", NULL};
    cr_assert_eq(run(chk), 1, "%s", err_text);
    cr_assert_eq(strstr(out_text, "d0001.jpg") != NULL && strstr(out_text, "e0001.jpg") != NULL, 1,
                 "%s", out_text);
    cr_assert(strstr(err_text, "4 stored images whose files are gone"), "%s", err_text);

    char err[256];
    cr_assert_eq(pv_db_open(dbp, 0, &db, err, sizeof err), 0, "%s", err);
    const char *one[1] = {imgs};
    cr_assert_eq(pv_add(db, one, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.forgotten, 2);
    cr_assert_eq(st.moved, 1);
    cr_assert_eq(st.added, 0);
    pv_info in;
    cr_assert_eq(pv_db_info(db, &in), 0);
    cr_assert_eq(in.items, 13 - 2);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_item *items = NULL;
    size_t n = 0;
    cr_assert_eq(pv_items(db, &items, &n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert(strstr(items[i].path, "d0001") == NULL && strstr(items[i].path, "d0002") == NULL,
                  "%s is still stored", items[i].path);
    pv_items_free(items, n);
    pv_db_close(db);
    /* only the sibling folder's gone file is left to report */
    cr_assert_eq(run(chk), 1, "%s", err_text);
    cr_assert(strstr(err_text, "1 stored image whose file is gone"), "%s", err_text);
}

/* Issue 12, item 4: init refuses a folder that holds other files, creates
 * nothing in it, and takes an empty one. */
Test(writers, init_refuses_a_folder_of_other_files)
{
    char p[GEN_PATH_MAX], data[GEN_PATH_MAX];
    make_set(imgs, "i", 2, 32, 32);
    char *argv[] = {"pixvec", "init", imgs, NULL};
    cr_assert_eq(run(argv), 1, "%s", out_text);
    cr_assert(strstr(err_text, "not empty"), "%s", err_text);
    gen_path(data, imgs, "data.mdb");
    cr_assert_neq(access(data, F_OK), 0, "data.mdb was created among the photos");
    gen_path(data, imgs, "lock.mdb");
    cr_assert_neq(access(data, F_OK), 0, "lock.mdb was created among the photos");
    gen_path(p, dir, "empty");
    cr_assert_eq(mkdir(p, 0755), 0);
    char *ok[] = {"pixvec", "init", p, NULL};
    cr_assert_eq(run(ok), 0, "%s", err_text);
}

/* Issue 12, item 7 (second half): OpenBLAS's thread count is process-wide;
 * two overlapping adds with the cnn embedder on two databases in two
 * threads used to leave it at 1 (the second saved the first's 1). */
typedef struct blas_job {
    const char *db, *folder;
    int rc;
} blas_job;

static void *blas_add(void *arg)
{
    blas_job *j = arg;
    pv_db *db = NULL;
    char err[512];
    pv_embedder_opts e = {.name = "cnn"};
    j->rc = pv_db_create(j->db, &e, NULL, &db, err, sizeof err);
    if (j->rc == 0) {
        pv_add_opts o = {.threads = 2};
        pv_add_stats st;
        j->rc = pv_add(db, &j->folder, 1, &o, &st);
    }
    pv_db_close(db);
    return NULL;
}

Test(writers, openblas_thread_count_restored_after_overlapping_adds)
{
    if (access(MODEL, R_OK) != 0)
        cr_skip_test("%s is not installed (scripts/setup.sh runs scripts/fetch_model.sh)", MODEL);
    char f1[GEN_PATH_MAX], f2[GEN_PATH_MAX], d1[GEN_PATH_MAX], d2[GEN_PATH_MAX];
    gen_path(f1, dir, "f1");
    gen_path(f2, dir, "f2");
    gen_path(d1, dir, "d1.pvdb");
    gen_path(d2, dir, "d2.pvdb");
    cr_assert_eq(mkdir(f1, 0755), 0);
    cr_assert_eq(mkdir(f2, 0755), 0);
    make_set(f1, "x", 32, 224, 224);
    make_set(f2, "y", 96, 224, 224);
    openblas_set_num_threads(2);
    int before = openblas_get_num_threads();
    blas_job a = {d1, f1, 0}, b = {d2, f2, 0};
    pthread_t ta, tb;
    /* a sets the count to 1 first; b starts while a runs (so it used to
     * save a's 1) and, with three times the images, ends last */
    pthread_create(&ta, NULL, blas_add, &a);
    sleep_us(150000);
    pthread_create(&tb, NULL, blas_add, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.rc, 0);
    cr_assert_eq(b.rc, 0);
    cr_assert_eq(openblas_get_num_threads(), before, "OpenBLAS threads %d after, %d before",
                 openblas_get_num_threads(), before);
}

/* Every stored image (`ls --json`) still resolves to a file. */
static void stored_files_resolve(void)
{
    char *ls[] = {"pixvec", "ls", dbp, "--json", NULL};
    cr_assert_eq(run(ls), 0, "%s", err_text);
    json_t *j = json_loads(out_text, 0, NULL), *items = json_object_get(j, "items");
    cr_assert_not_null(items, "%s", out_text);
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *p = json_string_value(json_object_get(json_array_get(items, i), "path"));
        struct stat sb;
        cr_assert_eq(stat(p, &sb), 0, "%s is stored but names nothing", p);
    }
    json_decref(j);
}

/* Issue 12, item 2: a file and a symbolic link to it are exact duplicates;
 * the file is kept (the link goes to the --move-to folder, where it still
 * names the file), never the link with its file moved away. Under --prefer,
 * a kept link's file is kept too. */
Test(writers, dups_never_moves_the_file_a_kept_link_names)
{
    char a[GEN_PATH_MAX], link[GEN_PATH_MAX], b[GEN_PATH_MAX], dest[GEN_PATH_MAX];
    char pref[GEN_PATH_MAX], plink[GEN_PATH_MAX];
    struct stat sb;
    cr_assert_eq(gen_picture(imgs, "a.jpg", 11, 160, 120, a), 0);
    cr_assert_eq(gen_picture(imgs, "b.png", 12, 160, 120, b), 0);
    gen_path(link, imgs, "link.jpg");
    cr_assert_eq(symlink(a, link), 0);
    gen_path(dest, dir, "dropped");
    init_db();
    char *add[] = {"pixvec", "add", dbp, imgs, "--quiet", NULL};
    cr_assert_eq(run(add), 0, "%s", err_text);
    char *dups[] = {"pixvec", "dups", dbp, "--move-to", dest, NULL};
    cr_assert_eq(run(dups), 0, "%s", err_text);
    cr_assert_eq(lstat(a, &sb), 0, "the file the link names was moved away");
    cr_assert(S_ISREG(sb.st_mode));
    cr_assert_neq(lstat(link, &sb), 0, "the link, not the file, is the one dropped");
    stored_files_resolve();

    /* A link under the preferred folder is kept, and so is its file. */
    gen_path(pref, dir, "pref");
    cr_assert_eq(mkdir(pref, 0755), 0);
    gen_path(plink, pref, "fav.jpg");
    cr_assert_eq(symlink(a, plink), 0);
    char *add2[] = {"pixvec", "add", dbp, pref, "--quiet", NULL};
    cr_assert_eq(run(add2), 0, "%s", err_text);
    char *dups2[] = {"pixvec", "dups", dbp, "--prefer", pref, "--move-to", dest, NULL};
    cr_assert_eq(run(dups2), 0, "%s", err_text);
    cr_assert_eq(lstat(a, &sb), 0, "a kept link's file was moved away");
    cr_assert_eq(stat(plink, &sb), 0, "the preferred link broke");
    stored_files_resolve();
}
