/*
 * test_readonly.c - a database its user may read but not write (issue 16):
 * the commands that only read work, those that write fail saying why and
 * change nothing.
 *
 * A database of ten generated images (three classes and one byte copy, with
 * a stored clustering) is made by the test's own user; the reading then
 * happens as a user who cannot write it. Tests run as root in CI, so a
 * forked child drops to nobody (65534) before it execs the pixvec binary or
 * calls the library; run as anyone else, the database's folder and files
 * are made read-only (a-w) instead and the child keeps the test's user.
 * Either way LMDB cannot open lock.mdb for writing, so reads go without its
 * reader lock table (pv_db_unlocked), which the CLI notes once on stderr.
 * The temporary folder is opened up (0755) so nobody can reach the images
 * and the database, and the children's output goes to a folder of mode 0777.
 */
#define _DEFAULT_SOURCE /* setgroups */
#include <criterion/criterion.h>
#include <grp.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"
#include "db_int.h"
#include "store.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

#define NOBODY 65534
#define NIMG 10 /* 3 classes x 3 pictures + a byte copy */

static char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], dbdir[GEN_PATH_MAX], outdir[GEN_PATH_MAX];
static int as_root, nrun;

/* The database's folder and files writable (1) or not (0) by their owner:
 * the non-root way to be a user who cannot write it. */
static void db_writable(int w)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    char p[GEN_PATH_MAX];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(chmod(gen_path(p, dbdir, files[i]), w ? 0644 : 0444), 0, "%s", p);
    cr_assert_eq(chmod(dbdir, w ? 0755 : 0555), 0);
}

static void setup(void)
{
    char err[512], src[GEN_PATH_MAX], dst[GEN_PATH_MAX];
    const char *paths[1] = {imgs};
    uint8_t *bytes = NULL;
    size_t n = 0;
    pv_db *db = NULL;
    pv_add_stats st;

    as_root = geteuid() == 0;
    cr_assert_eq(gen_tmpdir(dir), 0);
    cr_assert_eq(chmod(dir, 0755), 0); /* mkdtemp's 0700 keeps nobody out */
    gen_path(imgs, dir, "imgs");
    gen_path(dbdir, dir, "r.pvdb");
    gen_path(outdir, dir, "out");
    cr_assert_eq(mkdir(imgs, 0755), 0);
    cr_assert_eq(mkdir(outdir, 0777), 0);
    cr_assert_eq(chmod(outdir, 0777), 0); /* past the umask */
    gen_class_folders(imgs, 3, 0);
    gen_path(src, imgs, "gradient/000.png");
    gen_path(dst, imgs, "copy.png");
    cr_assert_eq(gen_read_bytes(src, &bytes, &n), 0);
    cr_assert_eq(gen_write_bytes(dst, bytes, n), 0);
    free(bytes);
    cr_assert_eq(pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, NIMG);
    cr_assert_eq(pv_cluster_train(db, &(pv_cluster_opts){.k = 3}, NULL), 0, "%s",
                 pv_db_errmsg(db));
    pv_db_close(db);
    if (!as_root)
        db_writable(0);
}

static void teardown(void)
{
    if (!as_root && dbdir[0])
        chmod(dbdir, 0755); /* so it can be removed */
    gen_rmtree(dir);
}

TestSuite(readonly, .init = setup, .fini = teardown, .timeout = 120);

/* In a forked child: become a user who cannot write the database (nobody,
 * when root). Exits 126 if that fails. */
static void become_reader(void)
{
    if (as_root && (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0))
        _exit(126);
}

/* Run `pixvec args...` as the reader; its exit status, and its output in
 * *out and *err (freed first). */
static int run_ro(char *const argv[], char **out, char **err)
{
    char outp[GEN_PATH_MAX], errp[GEN_PATH_MAX], name[32];
    snprintf(name, sizeof name, "%d.out", nrun);
    gen_path(outp, outdir, name);
    snprintf(name, sizeof name, "%d.err", nrun++);
    gen_path(errp, outdir, name);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        become_reader();
        /* Opened after dropping: the files belong to the reader. */
        int in = open("/dev/null", O_RDONLY);
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0)
            _exit(125);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(PIXVEC_BIN, argv);
        _exit(127);
    }
    return cli_wait(pid, argv[1], outp, errp, out, err);
}

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", text);
    return j;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

Test(readonly, cli_reads)
{
    char *out = NULL, *err = NULL, img[GEN_PATH_MAX];
    json_t *j;
    int rc;

    rc = run_ro((char *[]){"pixvec", "info", dbdir, "--json", NULL}, &out, &err);
    cr_assert_eq(rc, 0, "info: %s", err);
    j = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(j, "items")), NIMG, "%s", out);
    json_decref(j);
    /* Said once, on stderr, never inside the JSON. */
    cr_assert_eq(count(err, "reader lock table"), 1, "%s", err);

    rc = run_ro((char *[]){"pixvec", "ls", dbdir, NULL}, &out, &err);
    cr_assert_eq(rc, 0, "ls: %s", err);
    cr_assert_eq(count(out, "\n"), NIMG, "%s", out);
    cr_assert(strstr(out, "copy.png") && strstr(out, "rings/002.png"), "%s", out);

    gen_path(img, imgs, "stripes/001.png");
    rc = run_ro((char *[]){"pixvec", "query", dbdir, img, "--json", NULL}, &out, &err);
    cr_assert_eq(rc, 0, "query: %s", err);
    j = parse(out);
    json_t *hit = json_array_get(json_object_get(j, "hits"), 0);
    cr_assert_not_null(hit, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(hit, "path")), img, "%s", out);
    cr_assert_gt(json_real_value(json_object_get(hit, "score")), 0.999, "%s", out);
    json_decref(j);

    rc = run_ro((char *[]){"pixvec", "check", dbdir, NULL}, &out, &err);
    cr_assert_eq(rc, 0, "check: %s%s", out, err);
    cr_assert(strncmp(out, "ok:", 3) == 0, "%s", out);
    free(out);
    free(err);
}

/* `dups` without --move-to opened the database read-write until the CLI
 * opened every command that does not write read-only (issue 16's cli_open):
 * this test failed before that change. */
Test(readonly, cli_dups)
{
    char *out = NULL, *err = NULL;
    int rc = run_ro((char *[]){"pixvec", "dups", dbdir, "--json", NULL}, &out, &err);
    cr_assert_eq(rc, 0, "dups: %s", err);
    json_t *j = parse(out);
    cr_assert_geq(json_integer_value(json_object_get(j, "groups_count")), 1, "%s", out);
    cr_assert_geq(json_integer_value(json_object_get(j, "images")), 2, "%s", out);
    json_decref(j);
    free(out);
    free(err);
}

Test(readonly, cli_writes_refused)
{
    char *out = NULL, *err = NULL, img[GEN_PATH_MAX], data[GEN_PATH_MAX];
    char outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
    uint8_t *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    int rc;

    gen_path(data, dbdir, "data.mdb");
    cr_assert_eq(gen_read_bytes(data, &before, &nb), 0);
    gen_path(img, imgs, "new.png");
    gen_class_picture(img, 1, 99);
    rc = run_ro((char *[]){"pixvec", "add", dbdir, img, NULL}, &out, &err);
    cr_assert_eq(rc, 1, "add: %d %s%s", rc, out, err);
    cr_assert(strstr(err, dbdir) &&
                  strstr(err, "permission denied: you cannot write this database"),
              "%s", err);
    gen_path(img, imgs, "rings/000.png");
    rc = run_ro((char *[]){"pixvec", "rm", dbdir, img, NULL}, &out, &err);
    cr_assert_eq(rc, 1, "rm: %d %s%s", rc, out, err);
    cr_assert(strstr(err, "permission denied: you cannot write this database"), "%s", err);

    cr_assert_eq(gen_read_bytes(data, &after, &na), 0);
    cr_assert(na == nb && memcmp(before, after, nb) == 0, "data.mdb changed");
    gen_path(outp, outdir, "check.out");
    gen_path(errp, outdir, "check.err");
    cr_assert_eq(cli_checked_items(dbdir, outp, errp), NIMG);
    free(before);
    free(after);
    free(out);
    free(err);
}

/* The read-only engine calls on a handle without the lock table, in a child
 * as the reader; its exit status is the step that failed (0: none), and
 * its words are in outdir/api.txt. */
static int api_child(void)
{
    char err[512] = "", why[1024] = "", p[GEN_PATH_MAX];
    pv_db *db = NULL, *rw = NULL;
    pv_info info;
    pv_dups *d = NULL;
    pv_map *m = NULL;
    pv_quality *q = NULL;
    pv_clustering *c = NULL;
    pv_hit *hits = NULL;
    size_t nh = 0;
    int step = 0, rc;

#define STEP(cond, ...)                                                  \
    do {                                                                 \
        step++;                                                          \
        if (!(cond)) {                                                   \
            snprintf(why, sizeof why, __VA_ARGS__);                      \
            goto done;                                                   \
        }                                                                \
    } while (0)

    rc = pv_db_open(dbdir, PV_OPEN_RDONLY, &db, err, sizeof err);
    STEP(rc == 0, "open: %s", err);
    STEP(pv_db_unlocked(db) == 1, "pv_db_unlocked is 0");
    STEP(pv_db_info(db, &info) == 0 && info.items == NIMG, "info: %s", pv_db_errmsg(db));
    STEP(pv_db_verify(db) == 0, "verify: %s", pv_db_errmsg(db));
    rc = pv_find_dups(db, NULL, &d);
    /* copy.png and its original are in one group at least */
    STEP(rc == 0 && d->ngroups >= 1 && d->images >= 2, "dups %d: %s", rc, pv_db_errmsg(db));
    rc = pv_map_build(db, &(pv_map_opts){.no_store = 1, .threads = 1}, &m);
    STEP(rc == 0 && m->n == NIMG, "map %d: %s", rc, pv_db_errmsg(db));
    rc = pv_quality_report(db, NULL, &q);
    STEP(rc == 0 && q->items == NIMG && q->unreadable.n == 0, "quality %d: %s", rc,
         pv_db_errmsg(db));
    rc = pv_cluster_get(db, &c);
    STEP(rc == 0 && c->k == 3 && c->items == NIMG, "cluster_get %d: %s", rc,
         pv_db_errmsg(db));
    gen_path(p, imgs, "rings/001.png");
    rc = pv_query_image(db, p, NULL, &hits, &nh);
    STEP(rc == 0 && nh >= 1 && strcmp(hits[0].path, p) == 0, "query %d: %s", rc,
         pv_db_errmsg(db));
    /* Storing a map needs writing: refused as for any read-only handle. */
    pv_map_free(m);
    m = NULL;
    rc = pv_map_build(db, &(pv_map_opts){.threads = 1}, &m);
    STEP(rc == PV_ERDONLY, "stored map on a read-only handle: %d", rc);
    rc = pv_db_open(dbdir, 0, &rw, err, sizeof err);
    STEP(rc == PV_EIO && strstr(err, "you cannot write this database"),
         "read-write open: %d %s", rc, err);
    step = 0;
#undef STEP
done:
    pv_hits_free(hits, nh);
    pv_clustering_free(c);
    pv_quality_free(q);
    pv_map_free(m);
    pv_dups_free(d);
    pv_db_close(rw);
    pv_db_close(db);
    gen_path(p, outdir, "api.txt");
    gen_write_bytes(p, why, strlen(why));
    return step;
}

Test(readonly, api_reads)
{
    char p[GEN_PATH_MAX], err[512];
    pv_db *db = NULL;
    int status = 0;

    /* The test's own user, when it can write, keeps the lock table. */
    cr_assert_eq(pv_db_open(dbdir, PV_OPEN_RDONLY, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_db_unlocked(db), as_root ? 0 : 1);
    pv_db_close(db);

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        become_reader();
        _exit(api_child());
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    char *why = cli_slurp(gen_path(p, outdir, "api.txt"));
    cr_assert_eq(WEXITSTATUS(status), 0, "step %d: %s", WEXITSTATUS(status), why);
    free(why);
}

/* ---- a writer at work during an unlocked read ---------------------------- */

/* One commit that changes a page: the counters written back as they are. */
static void commit_once(store *st)
{
    store_txn *t = NULL;
    store_counts c;
    cr_assert_eq(store_txn_begin(st, 1, &t), 0);
    cr_assert_eq(store_counts_get(t, &c), 0);
    cr_assert_eq(store_counts_put(t, &c), 0);
    cr_assert_eq(store_txn_commit(t), 0);
}

/* A reader without the lock table (a forked child as the reader) begins a
 * read transaction; meanwhile the test's user commits `commits` times; then
 * the child asks store_txn_read_check, or with engine set the engine's
 * db_read_check on a pv_db (whose message must then say what happened).
 * Returns its verdict: 0 PV_OK, 1 PV_ESTORE, >= 10 a step of the child
 * that failed. */
static int read_during_commits(int commits, int engine)
{
    char err[512];
    int ready[2], go[2], status = 0;
    char b = 0;
    store *st = NULL;

    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        pv_db *db = NULL;
        store *rs = NULL;
        store_txn *t = NULL;
        int rc;
        become_reader();
        close(ready[0]);
        close(go[1]);
        if (engine ? pv_db_open(dbdir, PV_OPEN_RDONLY, &db, err, sizeof err) != 0
                   : store_open(dbdir, 1, &rs, err, sizeof err) != 0)
            _exit(10);
        if (engine ? !pv_db_unlocked(db) : !store_is_unlocked(rs))
            _exit(11);
        if ((engine ? db_read_begin(db, &t) : store_txn_begin(rs, 0, &t)) != 0)
            _exit(12);
        if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(13);
        rc = engine ? db_read_check(db, t) : store_txn_read_check(t);
        if (engine && rc == PV_ESTORE &&
            !strstr(pv_db_errmsg(db), "changed while it was read without LMDB's lock table"))
            _exit(15);
        store_txn_abort(t);
        store_close(rs);
        pv_db_close(db);
        _exit(rc == PV_OK ? 0 : rc == PV_ESTORE ? 1 : 14);
    }
    close(ready[1]);
    close(go[0]);
    cr_assert_eq(read(ready[0], &b, 1), 1, "the reader did not begin");
    if (!as_root)
        db_writable(1); /* the reader is open: now the writer may be us */
    cr_assert_eq(store_open(dbdir, 0, &st, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < commits; i++)
        commit_once(st);
    store_close(st);
    if (!as_root)
        db_writable(0);
    cr_assert_eq(write(go[1], "g", 1), 1);
    close(ready[0]);
    close(go[1]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

/* Two commits during one unlocked read: its pages may have been reused, so
 * the read is reported, not trusted. */
Test(readonly, writer_reused_pages)
{
    int v = read_during_commits(2, 0), ve = read_during_commits(2, 1);
    cr_assert_eq(v, 1, "store: expected PV_ESTORE (1), got %d", v);
    cr_assert_eq(ve, 1, "engine: expected PV_ESTORE (1) and its message, got %d", ve);
}

/* One commit: the snapshot's pages are freed but not yet reused; the read
 * stands. None: nothing changed. */
Test(readonly, writer_one_commit)
{
    int v0 = read_during_commits(0, 0), v1 = read_during_commits(1, 0);
    cr_assert_eq(v0, 0, "no commit: got %d", v0);
    cr_assert_eq(v1, 0, "one commit: got %d", v1);
}
