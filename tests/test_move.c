/*
 * test_move.c - pv_move_files and pv_undo_moves (engine/move.c): files keep
 * their paths relative to root under the destination, a taken name gets a
 * free one and the file there is untouched, failures are counted and the
 * rest still moves, files outside root stay, and undo puts every byte back
 * without ever overwriting. A cross-file-system move runs when /dev/shm and
 * /tmp are different file systems.
 *
 * Every test works in a fresh mkdtemp directory under /tmp (src/ the
 * collection, dst/ the destination, undo.tsv the list), removed after it.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX];
static char root[GEN_PATH_MAX], dest[GEN_PATH_MAX], undo[GEN_PATH_MAX];
static char shm[GEN_PATH_MAX]; /* the cross-file-system test's source */

/* dir/src is the collection (created by each test as it needs), dir/dst
 * the destination, dir/undo.tsv the undo list. */
static void setup(void)
{
    cr_assert_eq(gen_tmpdir(dir), 0, "mkdtemp failed");
    cr_assert_not_null(gen_path(root, dir, "src"));
    cr_assert_not_null(gen_path(dest, dir, "dst"));
    cr_assert_not_null(gen_path(undo, dir, "undo.tsv"));
}
static void teardown(void)
{
    gen_rmtree(dir);
    if (shm[0] != '\0')
        gen_rmtree(shm);
}

TestSuite(move, .init = setup, .fini = teardown);

static const char *tpath(const char *name)
{
    static char bufs[8][GEN_PATH_MAX];
    static int next;
    char *p = bufs[next++ % 8];
    cr_assert_not_null(gen_path(p, dir, name));
    return p;
}

/* mkdir -p of dir's subfolder rel. */
static void make_dirs(const char *base, const char *rel)
{
    char p[GEN_PATH_MAX];
    size_t i;

    cr_assert_not_null(gen_path(p, base, rel));
    for (i = strlen(base) + 1; p[i] != '\0'; i++) {
        if (p[i] == '/') {
            p[i] = '\0';
            mkdir(p, 0755);
            p[i] = '/';
        }
    }
    mkdir(p, 0755);
}

/* Write a file whose bytes depend on its name, so files are told apart. */
static void put(const char *path, size_t n)
{
    uint8_t *b = malloc(n);
    size_t i, h = strlen(path);

    cr_assert_not_null(b);
    for (i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 31 + h * 7 + (uint8_t)path[i % h]);
    cr_assert_eq(gen_write_bytes(path, b, n), 0, "%s", path);
    free(b);
}

/* The file at path holds the bytes put(orig, n) wrote. */
static void same_as_put(const char *path, const char *orig, size_t n)
{
    uint8_t *b = NULL;
    size_t got = 0, i, h = strlen(orig);

    cr_assert_eq(gen_read_bytes(path, &b, &got), 0, "%s missing", path);
    cr_assert_eq(got, n, "%s: %zu bytes, expected %zu", path, got, n);
    for (i = 0; i < n; i++)
        cr_assert_eq(b[i], (uint8_t)(i * 31 + h * 7 + (uint8_t)orig[i % h]),
                     "%s differs at byte %zu", path, i);
    free(b);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Lines in a file. */
static size_t count_lines(const char *path)
{
    uint8_t *b = NULL;
    size_t n = 0, i, lines = 0;

    cr_assert_eq(gen_read_bytes(path, &b, &n), 0);
    for (i = 0; i < n; i++)
        lines += b[i] == '\n';
    free(b);
    return lines;
}

/* Three files in two folders; move them all; each lands at the same
 * relative path; the undo list has one line each; undo brings every byte
 * back, and a second undo changes nothing and fails nothing. */
Test(move, keeps_relative_paths_and_undo_restores)
{
    const char *rel[] = {"a/b.jpg", "a/c/d.png", "top.jpg"};
    size_t sizes[] = {1000, 70000, 3};
    char src[3][GEN_PATH_MAX], want[GEN_PATH_MAX], err[512] = "";
    const char *paths[3];
    size_t moved = 99, failed = 99, i;

    make_dirs(dir, "src/a/c");
    for (i = 0; i < 3; i++) {
        cr_assert_not_null(gen_path(src[i], root, rel[i]));
        put(src[i], sizes[i]);
        paths[i] = src[i];
    }
    cr_assert_eq(pv_move_files(paths, 3, root, dest, undo, &moved, &failed,
                               err, sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, 3);
    cr_assert_eq(failed, 0);
    for (i = 0; i < 3; i++) {
        cr_assert_not(exists(src[i]), "%s still there", src[i]);
        cr_assert_not_null(gen_path(want, dest, rel[i]));
        same_as_put(want, src[i], sizes[i]);
    }
    cr_assert_eq(count_lines(undo), 3);

    cr_assert_eq(pv_undo_moves(undo, &moved, &failed, err, sizeof err), PV_OK,
                 "%s", err);
    cr_assert_eq(moved, 3);
    cr_assert_eq(failed, 0);
    for (i = 0; i < 3; i++) {
        same_as_put(src[i], src[i], sizes[i]);
        cr_assert_not_null(gen_path(want, dest, rel[i]));
        cr_assert_not(exists(want), "%s still there after undo", want);
    }
    /* Idempotent: every line is already undone, counted as restored. */
    cr_assert_eq(pv_undo_moves(undo, &moved, &failed, err, sizeof err), PV_OK,
                 "%s", err);
    cr_assert_eq(moved, 3);
    cr_assert_eq(failed, 0);
    for (i = 0; i < 3; i++)
        same_as_put(src[i], src[i], sizes[i]);
}

/* dst/a/b.jpg and dst/a/b.1.jpg are taken: the file goes to b.2.jpg, and
 * the two files already there keep every byte. A name without an
 * extension gets ".1". */
Test(move, name_clash_gets_free_name)
{
    char err[512] = "";
    const char *paths[2];
    size_t moved = 0, failed = 0;

    make_dirs(dir, "src/a");
    make_dirs(dir, "dst/a");
    put(tpath("src/a/b.jpg"), 500);
    put(tpath("src/a/README"), 20);
    put(tpath("dst/a/b.jpg"), 400);
    put(tpath("dst/a/b.1.jpg"), 300);
    put(tpath("dst/a/README"), 10);
    paths[0] = tpath("src/a/b.jpg");
    paths[1] = tpath("src/a/README");
    cr_assert_eq(pv_move_files(paths, 2, root, dest, undo, &moved,
                               &failed, err, sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, 2);
    cr_assert_eq(failed, 0);
    same_as_put(tpath("dst/a/b.jpg"), tpath("dst/a/b.jpg"), 400);
    same_as_put(tpath("dst/a/b.1.jpg"), tpath("dst/a/b.1.jpg"), 300);
    same_as_put(tpath("dst/a/b.2.jpg"), tpath("src/a/b.jpg"), 500);
    same_as_put(tpath("dst/a/README"), tpath("dst/a/README"), 10);
    same_as_put(tpath("dst/a/README.1"), tpath("src/a/README"), 20);

    /* Undo takes back only what moved. */
    cr_assert_eq(pv_undo_moves(undo, &moved, &failed, err,
                               sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, 2);
    same_as_put(tpath("src/a/b.jpg"), tpath("src/a/b.jpg"), 500);
    same_as_put(tpath("dst/a/b.jpg"), tpath("dst/a/b.jpg"), 400);
    same_as_put(tpath("dst/a/b.1.jpg"), tpath("dst/a/b.1.jpg"), 300);
    cr_assert_not(exists(tpath("dst/a/b.2.jpg")));
}

/* A missing file, a file outside root and a folder fail; the good files
 * (one with a tab in its name) and the symbolic link (as a link: the file
 * it names is not followed) still move; the result is the first failure's
 * code, and its message names that file. */
Test(move, failures_counted_others_move)
{
    char err[512] = "";
    const char *paths[7];
    size_t moved = 0, failed = 0;
    int rc;

    make_dirs(dir, "src/sub");
    make_dirs(dir, "elsewhere");
    put(tpath("src/one.jpg"), 100);
    put(tpath("src/sub/two.jpg"), 200);
    put(tpath("elsewhere/out.jpg"), 50);
    put(tpath("src/tab\there.jpg"), 70);
    cr_assert_eq(symlink(tpath("src/one.jpg"), tpath("src/link.jpg")), 0);
    paths[0] = tpath("src/missing.jpg");
    paths[1] = tpath("src/one.jpg");
    paths[2] = tpath("elsewhere/out.jpg");
    paths[3] = tpath("src/sub");
    paths[4] = tpath("src/link.jpg");
    paths[5] = tpath("src/tab\there.jpg");
    paths[6] = tpath("src/sub/two.jpg");
    rc = pv_move_files(paths, 7, root, dest, undo, &moved,
                       &failed, err, sizeof err);
    cr_assert_eq(rc, PV_ENOTFOUND, "rc %d: %s", rc, err);
    cr_assert_not_null(strstr(err, "missing.jpg"), "%s", err);
    cr_assert_eq(moved, 4);
    cr_assert_eq(failed, 3);
    same_as_put(tpath("dst/one.jpg"), tpath("src/one.jpg"), 100);
    same_as_put(tpath("dst/tab\there.jpg"), tpath("src/tab\there.jpg"), 70);
    same_as_put(tpath("dst/sub/two.jpg"), tpath("src/sub/two.jpg"), 200);
    same_as_put(tpath("elsewhere/out.jpg"), tpath("elsewhere/out.jpg"), 50);
    struct stat ls;
    cr_assert_eq(lstat(tpath("dst/link.jpg"), &ls), 0, "the link did not move");
    cr_assert(S_ISLNK(ls.st_mode), "the link was followed or copied");
    cr_assert_neq(lstat(tpath("src/link.jpg"), &ls), 0);
    cr_assert_not(exists(tpath("dst/elsewhere")));
    cr_assert_not(exists(tpath("dst/out.jpg")));
    /* Only the moves that happened are on the undo list. */
    cr_assert_eq(count_lines(undo), 4);
}

/* Any bytes a name may hold survive the undo list: a tab, a newline, a
 * carriage return, a backslash, a double quote, an escape byte and a byte
 * that is not UTF-8. Each move is one line (control bytes quoted), the
 * plain name's line is the path as it is, and undo puts every file back
 * under its exact name. A list of an older pixvec (a backslash and a quote
 * written raw) still reads. */
Test(move, undo_any_bytes)
{
    static const char *names[] = {"src/a\tb.jpg", "src/new\nline.jpg", "src/cr\r.jpg",
                                  "src/back\\slash \"q\".jpg", "src/esc\x1b.jpg",
                                  "src/caf\xe9.jpg", "src/plain.jpg"};
    const size_t n = sizeof names / sizeof *names;
    const char *paths[sizeof names / sizeof *names];
    char err[512] = "", want[GEN_PATH_MAX], line[3 * GEN_PATH_MAX];
    size_t moved = 0, failed = 0, i;
    char *list;

    make_dirs(dir, "src");
    for (i = 0; i < n; i++) {
        paths[i] = strdup(tpath(names[i]));
        put(paths[i], 40 + i);
    }
    cr_assert_eq(pv_move_files(paths, n, root, dest, undo, &moved, &failed, err,
                               sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, n);
    cr_assert_eq(count_lines(undo), n, "one line a move");
    list = cli_slurp(undo);
    cr_assert_not_null(strstr(list, "/src/a\\tb.jpg\""), "a tab quoted: %s", list);
    cr_assert_not_null(strstr(list, "/src/new\\nline.jpg\""), "%s", list);
    cr_assert_not_null(strstr(list, "/src/esc\\x1b.jpg\""), "%s", list);
    snprintf(line, sizeof line, "%s\t%s\n", tpath("dst/plain.jpg"), tpath("src/plain.jpg"));
    cr_assert_not_null(strstr(list, line), "a plain line as before: %s", list);
    free(list);
    for (i = 0; i < n; i++) {
        snprintf(want, sizeof want, "dst/%s", names[i] + 4);
        same_as_put(tpath(want), paths[i], 40 + i);
        cr_assert_not(exists(paths[i]));
    }
    cr_assert_eq(pv_undo_moves(undo, &moved, &failed, err, sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, n);
    cr_assert_eq(failed, 0);
    for (i = 0; i < n; i++) {
        same_as_put(paths[i], paths[i], 40 + i);
        free((char *)paths[i]);
    }

    /* An older list: the fields raw, a backslash and a quote in them. */
    make_dirs(dir, "old");
    put(tpath("old/x\\n\"y.jpg"), 33);
    snprintf(line, sizeof line, "%s\t%s\n", tpath("old/x\\n\"y.jpg"), tpath("src/x\\n\"y.jpg"));
    cr_assert_eq(gen_write_bytes(undo, line, strlen(line)), 0);
    cr_assert_eq(pv_undo_moves(undo, &moved, &failed, err, sizeof err), PV_OK, "%s", err);
    same_as_put(tpath("src/x\\n\"y.jpg"), tpath("old/x\\n\"y.jpg"), 33);
}

/* Outside root alone: PV_EINVAL and a message naming file and root; a path
 * that climbs out with ".." is resolved before the check. */
Test(move, outside_root_refused)
{
    char err[512] = "", sneaky[GEN_PATH_MAX];
    const char *paths[1];
    size_t moved = 9, failed = 9;

    make_dirs(dir, "src/a");
    put(tpath("secret.jpg"), 10);
    cr_assert_not_null(gen_path(sneaky, root, "a/../../secret.jpg"));
    paths[0] = sneaky;
    cr_assert_eq(pv_move_files(paths, 1, root, dest, undo,
                               &moved, &failed, err, sizeof err), PV_EINVAL);
    cr_assert_eq(moved, 0);
    cr_assert_eq(failed, 1);
    cr_assert_not_null(strstr(err, "secret.jpg"), "%s", err);
    cr_assert_not_null(strstr(err, "not under"), "%s", err);
    same_as_put(tpath("secret.jpg"), tpath("secret.jpg"), 10);
    cr_assert_eq(count_lines(undo), 0);
}

/* Undo does not overwrite a SOURCE made again since the move: that line
 * fails, both files stay as they are, and the other line is restored. */
Test(move, undo_never_overwrites)
{
    char err[512] = "";
    const char *paths[2];
    size_t moved = 0, failed = 0;
    int rc;

    make_dirs(dir, "src");
    put(tpath("src/a.jpg"), 300);
    put(tpath("src/b.jpg"), 400);
    paths[0] = tpath("src/a.jpg");
    paths[1] = tpath("src/b.jpg");
    cr_assert_eq(pv_move_files(paths, 2, root, dest, undo, &moved,
                               &failed, err, sizeof err), PV_OK, "%s", err);
    put(tpath("src/a.jpg"), 77); /* new bytes (length differs) */
    rc = pv_undo_moves(undo, &moved, &failed, err, sizeof err);
    cr_assert_eq(rc, PV_EEXIST, "rc %d: %s", rc, err);
    cr_assert_not_null(strstr(err, "a.jpg"), "%s", err);
    cr_assert_eq(moved, 1);
    cr_assert_eq(failed, 1);
    same_as_put(tpath("src/a.jpg"), tpath("src/a.jpg"), 77);
    same_as_put(tpath("dst/a.jpg"), tpath("src/a.jpg"), 300);
    same_as_put(tpath("src/b.jpg"), tpath("src/b.jpg"), 400);
}

/* Undo recreates a SOURCE folder that was removed after the move. */
Test(move, undo_recreates_folder)
{
    char err[512] = "";
    const char *paths[1];
    size_t moved = 0, failed = 0;

    make_dirs(dir, "src/x/y");
    put(tpath("src/x/y/z.jpg"), 123);
    paths[0] = tpath("src/x/y/z.jpg");
    cr_assert_eq(pv_move_files(paths, 1, root, dest, undo,
                               &moved, &failed, err, sizeof err), PV_OK, "%s",
                 err);
    cr_assert_eq(rmdir(tpath("src/x/y")), 0);
    cr_assert_eq(rmdir(tpath("src/x")), 0);
    cr_assert_eq(pv_undo_moves(undo, &moved, &failed, err,
                               sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, 1);
    same_as_put(tpath("src/x/y/z.jpg"), tpath("src/x/y/z.jpg"), 123);
}

/* A damaged undo list: a line without a tab is reported and skipped, the
 * good line is undone; a missing list is PV_ENOTFOUND. */
Test(move, undo_bad_lines)
{
    char err[512] = "", line[3 * GEN_PATH_MAX];
    size_t restored = 0, failed = 0;
    int rc;

    make_dirs(dir, "dst");
    put(tpath("dst/f.jpg"), 64);
    snprintf(line, sizeof line, "garbage without a tab\n%s\t%s\n\n",
             tpath("dst/f.jpg"), tpath("src/f.jpg"));
    cr_assert_eq(gen_write_bytes(undo, line, strlen(line)), 0);
    rc = pv_undo_moves(undo, &restored, &failed, err, sizeof err);
    cr_assert_eq(rc, PV_ECORRUPT, "rc %d: %s", rc, err);
    cr_assert_not_null(strstr(err, "line 1"), "%s", err);
    cr_assert_eq(restored, 1);
    cr_assert_eq(failed, 1);
    same_as_put(tpath("src/f.jpg"), tpath("dst/f.jpg"), 64);

    cr_assert_eq(pv_undo_moves(tpath("nope.tsv"), &restored, &failed, err,
                               sizeof err), PV_ENOTFOUND);
    cr_assert_not_null(strstr(err, "nope.tsv"), "%s", err);
}

/* A list whose last line was cut by a crash while moving p.jpg (no
 * newline): the next run moves p.jpg to the same name, and its line does
 * not run into the cut one; undo restores the file and reports the cut
 * line, whose SOURCE does not exist. A line whose DEST is a folder is not
 * followed: only files were moved. */
Test(move, partial_last_line_stays_apart)
{
    char err[512] = "", cut[3 * GEN_PATH_MAX];
    const char *paths[1];
    size_t moved = 0, failed = 0;
    int rc;

    make_dirs(dir, "src");
    put(tpath("src/p.jpg"), 99);
    snprintf(cut, sizeof cut, "%s\t%s\n%s\t%.*s", dest, tpath("src/gone"),
             tpath("dst/p.jpg"), (int)strlen(tpath("src/p.j")),
             tpath("src/p.j"));
    cr_assert_eq(gen_write_bytes(undo, cut, strlen(cut)), 0);
    paths[0] = tpath("src/p.jpg");
    cr_assert_eq(pv_move_files(paths, 1, root, dest, undo, &moved, &failed, err,
                               sizeof err), PV_OK, "%s", err);
    same_as_put(tpath("dst/p.jpg"), tpath("src/p.jpg"), 99);
    cr_assert_eq(count_lines(undo), 3);
    rc = pv_undo_moves(undo, &moved, &failed, err, sizeof err);
    cr_assert_eq(rc, PV_ENOTFOUND, "rc %d: %s", rc, err);
    cr_assert_not_null(strstr(err, "src/p.j:"), "%s", err);
    cr_assert_eq(moved, 1);
    cr_assert_eq(failed, 2);
    same_as_put(tpath("src/p.jpg"), tpath("src/p.jpg"), 99);
    cr_assert(exists(dest), "the destination folder was moved");
    cr_assert_not(exists(tpath("src/gone")));
}

Test(move, bad_arguments)
{
    char err[512] = "";
    const char *paths[1] = {"x"};

    cr_assert_eq(pv_move_files(NULL, 1, dir, tpath("d"), tpath("u"), NULL, NULL,
                               err, sizeof err), PV_EINVAL);
    cr_assert_eq(pv_move_files(paths, 1, "relative/root", tpath("d"),
                               tpath("u"), NULL, NULL, err, sizeof err),
                 PV_EINVAL);
    cr_assert_not_null(strstr(err, "absolute"), "%s", err);
    cr_assert_eq(pv_move_files(paths, 1, dir, dir, tpath("u"), NULL, NULL, err,
                               sizeof err), PV_EINVAL);
    cr_assert_eq(pv_move_files(paths, 1, tpath("no-such-root"), tpath("d"),
                               tpath("u"), NULL, NULL, err, sizeof err),
                 PV_ENOTFOUND);
    cr_assert_not_null(strstr(err, "no-such-root"), "%s", err);
    cr_assert_eq(pv_undo_moves(NULL, NULL, NULL, err, sizeof err), PV_EINVAL);
    /* An empty batch is fine and writes an empty list. */
    cr_assert_eq(pv_move_files(NULL, 0, dir, tpath("d"), tpath("u"), NULL,
                               NULL, NULL, 0), PV_OK);
    cr_assert_eq(count_lines(tpath("u")), 0);
}

/* /dev/shm -> /tmp when they are two file systems: the copy path. Bytes,
 * mode and modification time survive, the source is gone, nothing but the
 * file is left in the destination folder, and undo copies it back. */
Test(move, across_file_systems)
{
    char f[GEN_PATH_MAX], err[512] = "";
    const char *paths[1];
    struct stat a, b, tmp_st, shm_st;
    struct timespec times[2] = {{1000000000, 0}, {1234567890, 0}};
    size_t moved = 0, failed = 0;
    int n_entries = 0;
    DIR *dh;
    struct dirent *e;

    cr_assert_eq(stat("/tmp", &tmp_st), 0);
    if (stat("/dev/shm", &shm_st) != 0 || shm_st.st_dev == tmp_st.st_dev)
        cr_skip_test("/dev/shm is missing or on the same file system as /tmp");
    snprintf(shm, sizeof shm, "/dev/shm/pixvec-test-XXXXXX");
    cr_assert_not_null(mkdtemp(shm));
    cr_assert_not_null(gen_path(f, shm, "pic.jpg"));
    put(f, 300000);
    cr_assert_eq(chmod(f, 0640), 0);
    cr_assert_eq(utimensat(AT_FDCWD, f, times, 0), 0);
    cr_assert_eq(stat(f, &a), 0);
    paths[0] = f;
    cr_assert_eq(pv_move_files(paths, 1, shm, dest, undo, &moved,
                               &failed, err, sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, 1);
    cr_assert_not(exists(f), "source still on /dev/shm");
    same_as_put(tpath("dst/pic.jpg"), f, 300000);
    cr_assert_eq(stat(tpath("dst/pic.jpg"), &b), 0);
    cr_assert_eq(b.st_mode & 07777, 0640);
    cr_assert_eq(b.st_mtim.tv_sec, 1234567890);
    /* No temporary copy left behind. */
    dh = opendir(dest);
    cr_assert_not_null(dh);
    while ((e = readdir(dh)) != NULL)
        n_entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dh);
    cr_assert_eq(n_entries, 1);

    cr_assert_eq(pv_undo_moves(undo, &moved, &failed, err,
                               sizeof err), PV_OK, "%s", err);
    cr_assert_eq(moved, 1);
    same_as_put(f, f, 300000);
    cr_assert_not(exists(tpath("dst/pic.jpg")));
}
