/*
 * move.c - moving a user's files out of the way, and back (engine room;
 * pv_move_files, pv_undo_moves; `dups --move-to`).
 *
 * This is the one place where pixvec touches a user's images, so every step
 * is chosen so that no error path can lose a file:
 *
 *  - Never overwrite. A move is renameat2(RENAME_NOREPLACE), which fails
 *    with EEXIST instead of replacing. Where the file system lacks that flag
 *    (EINVAL, or ENOSYS on an old kernel), link() + unlink() does the same:
 *    link() never replaces either. Across file systems (EXDEV) the file is
 *    copied to a temporary name in the destination folder, fsync'ed, linked
 *    into its final name with the same no-replace rule, and only then is the
 *    source unlinked; if that unlink fails the copy is removed again, so the
 *    file stays where it was and exists exactly once.
 *  - Free names: a taken destination b.jpg becomes b.1.jpg, b.2.jpg, ...
 *    (name.1 without an extension, .hidden.1 for a leading dot). A name
 *    taken between our check and the move (EEXIST) moves on to the next.
 *  - The undo list is written first: "DEST\tSOURCE\n" with absolute paths is
 *    appended and fsync'ed before each move, so after a crash the list names
 *    every file that may have moved. A failed append is cut back off, so a
 *    full disk cannot leave half a line for the next line to run into.
 *    Any name a file system allows fits: a path is written as it is unless
 *    it holds a control byte (0x00-0x1F, 0x7F: a tab or newline would break
 *    the line), and then quoted as the command line quotes names
 *    (cli/names.h): in double quotes, \\ \" \t \n \r, and \xHH for the
 *    other control bytes; every other byte, UTF-8 or not, as it is. A path
 *    as it is begins with '/', so a field that begins with '"' is quoted,
 *    and lists of older versions (no quoting) read the same.
 *  - Only regular files and symbolic links under root move: the file's
 *    folder is resolved with realpath() and must be root (also resolved) or
 *    below it; the file itself is lstat'ed, so a symbolic link is moved as a
 *    link (rename within its file system; never followed, never copied), and
 *    the file it names stays where it is. `dups` never drops a file that a
 *    kept link names.
 *  - Undo reads the list last line first and moves DEST back to SOURCE with
 *    the same no-replace move; a line whose DEST is gone and whose SOURCE
 *    exists was undone already (or its move never happened) and counts as
 *    restored, which makes running undo twice harmless. The list itself is
 *    left as it is.
 *
 * Folders are created with mkdir -p semantics (0755, before the umask), and
 * the folders on both sides of a move are fsync'ed after it, so a completed
 * move survives a crash too. Modification times are kept by the copy, since
 * pixvec (and the user's other tools) look at them.
 */
#define _DEFAULT_SOURCE /* syscall() and SYS_renameat2; strerror_r stays XSI */

#include "pixvec.h"
#include "pv_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* How many b.N.jpg names to try before giving up on a destination. */
#define MOVE_MAX_SUFFIX 100000
/* An undo list longer than this is not one we wrote (a line is at most two
 * paths); reading it whole stays cheap. */
#define MOVE_MAX_UNDO_BYTES ((size_t)1 << 30)

/* ---- messages -------------------------------------------------------------- */

static int code_of_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return PV_ENOTFOUND;
    case EEXIST:
        return PV_EEXIST;
    case ENOMEM:
        return PV_ENOMEM;
    case ENAMETOOLONG:
        return PV_EINVAL;
    default:
        return PV_EIO;
    }
}

/* ---- paths and folders ------------------------------------------------------ */

/* out = a "/" b, or -1 when it does not fit in PATH_MAX. */
static int path_join(char *out, const char *a, const char *b)
{
    int k = strcmp(a, "/") == 0 ? snprintf(out, PATH_MAX, "/%s", b)
                                : snprintf(out, PATH_MAX, "%s/%s", a, b);
    return k < 0 || k >= PATH_MAX ? -1 : 0;
}

/* Split path into its folder (dir, "." when none) and last name (base). */
static int path_split(const char *path, char *dir, char *base)
{
    const char *slash = strrchr(path, '/');
    size_t dl;

    if (slash == NULL) {
        strcpy(dir, ".");
        slash = path - 1;
    } else {
        dl = slash == path ? 1 : (size_t)(slash - path);
        if (dl >= PATH_MAX)
            return -1;
        memcpy(dir, path, dl);
        dir[dl] = '\0';
    }
    if (strlen(slash + 1) >= PATH_MAX)
        return -1;
    strcpy(base, slash + 1);
    return 0;
}

/* mkdir -p: every missing folder of path created 0755. errno on failure. */
static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t i, len = strlen(path);
    struct stat st;

    if (len == 0 || len >= sizeof buf)
        return ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        /* EEXIST may be a file, not a folder: the stat below tells. */
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return errno;
        if (stat(buf, &st) != 0)
            return errno;
        if (!S_ISDIR(st.st_mode))
            return ENOTDIR;
        buf[i] = i < len ? '/' : '\0';
    }
    return 0;
}

/* ---- moving one file, never replacing ---------------------------------------- */

static int rename_noreplace(const char *src, const char *dst)
{
    return (int)syscall(SYS_renameat2, AT_FDCWD, src, AT_FDCWD, dst,
                        RENAME_NOREPLACE);
}

/* Move src to dst on one file system without replacing dst. 0 or errno
 * (EEXIST: dst exists, nothing changed; EXDEV: another file system). */
static int move_same_fs(const char *src, const char *dst)
{
    int e;

    if (rename_noreplace(src, dst) == 0)
        return 0;
    e = errno;
    if (e != EINVAL && e != ENOSYS)
        return e;
    /* No RENAME_NOREPLACE here: link() refuses an existing name as well. */
    if (link(src, dst) != 0)
        return errno;
    if (unlink(src) != 0) {
        e = errno;
        /* Both names point at one file; drop the new one so the file is
         * where it was. */
        unlink(dst);
        return e;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? errno : EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Copy src into a new file tmp (created, never an existing one), with src's
 * permissions and times, and fsync it. 0 or errno; tmp is removed on
 * failure. what says which step failed. */
static int copy_file(const char *src, const char *tmp, const char **what)
{
    int in = -1, out = -1, e = 0, created = 0;
    uint8_t *buf = NULL;
    const size_t bufsize = (size_t)1 << 20;
    struct stat st;
    struct timespec times[2];

    *what = "cannot read";
    in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0 || fstat(in, &st) != 0) {
        e = errno;
        goto done;
    }
    *what = "cannot create a copy";
    out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
               (mode_t)(st.st_mode & 07777));
    if (out < 0) {
        e = errno; /* EEXIST: someone else's file, left alone */
        goto done;
    }
    created = 1;
    buf = malloc(bufsize);
    if (buf == NULL) {
        e = ENOMEM;
        goto done;
    }
    for (;;) {
        ssize_t k = read(in, buf, bufsize);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            *what = "cannot read";
            e = errno;
            goto done;
        }
        if (k == 0)
            break;
        *what = "cannot write the copy";
        if ((e = write_all(out, buf, (size_t)k)) != 0)
            goto done;
    }
    /* Keep owner (where allowed: as mv, a failure here is not one), mode
     * (the umask may have cut it at open; chown clears set-id bits, so
     * chmod comes after) and times. */
    times[0] = st.st_atim;
    times[1] = st.st_mtim;
    if (fchown(out, st.st_uid, st.st_gid) != 0) {
        /* not an error (an ordinary user cannot give files away) */
    }
    *what = "cannot set the copy's mode and times";
    if (fchmod(out, st.st_mode & 07777) != 0 || futimens(out, times) != 0) {
        e = errno;
        goto done;
    }
    *what = "cannot sync the copy";
    if (fsync(out) != 0) {
        e = errno;
        goto done;
    }
    *what = "cannot write the copy";
    e = close(out) == 0 ? 0 : errno;
    out = -1;
done:
    free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (e != 0 && created)
        unlink(tmp);
    return e;
}

/* Move src to dst across file systems: copy to a temporary name in dst's
 * folder, fsync, move it to dst without replacing, then unlink src. 0 or
 * errno (EEXIST: dst exists, nothing changed). */
static int move_copy(const char *src, const char *dst, const char **what)
{
    char dir[PATH_MAX], base[PATH_MAX], tmp[PATH_MAX];
    int e, attempt, k;

    if (path_split(dst, dir, base) != 0)
        return ENAMETOOLONG;
    /* A dot name of our own, O_EXCL: it cannot be another's file, and a
     * crash mid-copy leaves at worst this dot file beside the destination,
     * never a partial file under a real name, while the source still
     * exists. */
    for (attempt = 0;; attempt++) {
        k = snprintf(tmp, sizeof tmp, "%s/.pixvec-move-%ld-%d.tmp", dir,
                     (long)getpid(), attempt);
        if (k < 0 || k >= (int)sizeof tmp)
            return ENAMETOOLONG;
        e = copy_file(src, tmp, what);
        if (e != EEXIST || attempt >= 100)
            break;
    }
    if (e != 0)
        return e;
    e = move_same_fs(tmp, dst);
    if (e != 0) {
        *what = e == EEXIST ? "destination exists" : "cannot name the copy";
        unlink(tmp);
        return e;
    }
    if ((e = pv_fsync_path(dir)) != 0) {
        /* The copy's name may not be durable: keep the source. */
        *what = "cannot sync the destination folder";
        unlink(dst);
        return e;
    }
    if (unlink(src) != 0) {
        e = errno;
        *what = "cannot remove the source after copying";
        unlink(dst);
        return e;
    }
    return 0;
}

/* Move src to dst, never replacing; across file systems by copying. 0 or
 * errno; *what names the step that failed. */
static int move_one(const char *src, const char *dst, int is_link, const char **what)
{
    int e = move_same_fs(src, dst);

    *what = e == EEXIST ? "destination exists" : "cannot move";
    if (e == EXDEV && is_link)
        *what = "a symbolic link is moved only within its file system";
    else if (e == EXDEV)
        e = move_copy(src, dst, what);
    return e;
}

/* ---- free names ------------------------------------------------------------ */

/* out = path with ".k" before its extension: b.jpg -> b.k.jpg, b -> b.k,
 * .hidden -> .hidden.k. k 0 is path itself. */
static int name_with_suffix(char *out, const char *path, unsigned k)
{
    const char *base = strrchr(path, '/'), *dot;
    int n;

    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    if (k == 0)
        n = snprintf(out, PATH_MAX, "%s", path);
    else if (dot == NULL || dot == base)
        n = snprintf(out, PATH_MAX, "%s.%u", path, k);
    else
        n = snprintf(out, PATH_MAX, "%.*s.%u%s", (int)(dot - path), path, k,
                     dot);
    return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* The first of want, want.1, ... (from *k on) that does not exist; *k is
 * left at the suffix found. 0 or errno. */
static int free_name(char *out, const char *want, unsigned *k)
{
    struct stat st;

    for (; *k <= MOVE_MAX_SUFFIX; (*k)++) {
        if (name_with_suffix(out, want, *k) != 0)
            return ENAMETOOLONG;
        if (lstat(out, &st) != 0) {
            if (errno == ENOENT)
                return 0;
            return errno;
        }
    }
    return EEXIST;
}

/* ---- the undo list ---------------------------------------------------------- */

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* A path as an undo-list field (see the file's opening comment), malloc'd;
 * NULL when out of memory. */
static char *undo_field(const char *path)
{
    size_t n = strlen(path);
    char *out, *o;

    if (!has_control(path))
        return strdup(path);
    if (n > (SIZE_MAX - 3) / 4 || (out = malloc(4 * n + 3)) == NULL)
        return NULL;
    o = out;
    *o++ = '"';
    for (; *path; path++) {
        unsigned char c = (unsigned char)*path;
        const char *esc = c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\t' ? "\\t"
                        : c == '\n' ? "\\n" : c == '\r' ? "\\r" : NULL;
        if (esc != NULL) {
            memcpy(o, esc, 2);
            o += 2;
        } else if (c < 0x20 || c == 0x7f) {
            o += sprintf(o, "\\x%02x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Turn the field s (NUL-terminated, no tab or newline in it) back into
 * the path, in place: a quoted field is unescaped (\xHH for any byte but
 * NUL), any other is the path itself. 0, or -1 when a quoted field is
 * malformed. */
static int undo_unfield(char *s)
{
    size_t len = strlen(s), i;
    char *w = s;
    int hi, lo;

    if (s[0] != '"')
        return 0;
    if (len < 2 || s[len - 1] != '"')
        return -1;
    for (i = 1; i < len - 1; i++) {
        if (s[i] == '"')
            return -1;
        if (s[i] != '\\') {
            *w++ = s[i];
            continue;
        }
        switch (i + 1 < len - 1 ? s[++i] : '\0') {
        case '\\': *w++ = '\\'; break;
        case '"': *w++ = '"'; break;
        case 't': *w++ = '\t'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 'x':
            if (i + 2 > len - 2 || (hi = hex_digit(s[i + 1])) < 0 ||
                (lo = hex_digit(s[i + 2])) < 0 || (hi | lo) == 0)
                return -1;
            *w++ = (char)(hi << 4 | lo);
            i += 2;
            break;
        default:
            return -1;
        }
    }
    *w = '\0';
    return 0;
}

/* Append "dst\tsrc\n" (each an undo_field) and fsync; *old gets the
 * length before. On failure
 * the file is cut back to that length. A list that does not end in a
 * newline (a crash, or a cut that failed, in the middle of a line) gets one
 * first, so the partial line stays a line of its own, which undo reports,
 * instead of swallowing this one. 0 or errno. */
static int undo_append(int fd, const char *dst_path, const char *src_path, off_t *old)
{
    char *dst = undo_field(dst_path), *src = undo_field(src_path);
    size_t ld = dst ? strlen(dst) : 0, ls = src ? strlen(src) : 0, at, n;
    char *line = dst && src ? malloc(ld + ls + 3) : NULL, last = '\n';
    struct stat st;
    int e;

    if (line == NULL) {
        e = ENOMEM;
        goto done;
    }
    errno = 0; /* pread may return 0 (the list shrank) without setting it */
    if (fstat(fd, &st) != 0 ||
        (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)) {
        e = errno ? errno : EIO;
        goto done;
    }
    *old = st.st_size;
    at = last == '\n' ? 0 : 1;
    n = at + ld + ls + 2;
    line[0] = '\n'; /* overwritten when at is 0 */
    memcpy(line + at, dst, ld);
    line[at + ld] = '\t';
    memcpy(line + at + ld + 1, src, ls);
    line[n - 1] = '\n';
    e = write_all(fd, (const uint8_t *)line, n);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (e != 0 && ftruncate(fd, st.st_size) != 0) {
        /* the next append starts with a newline (see above) */
    }
done:
    free(line);
    free(dst);
    free(src);
    return e;
}

/* Take back the line just appended, for a move that certainly did not
 * happen; best effort: a line left behind only costs undo a skipped line. */
static void undo_unappend(int fd, off_t old)
{
    if (ftruncate(fd, old) == 0 && fsync(fd) != 0) {
        /* the shorter list may not be durable: undo would skip the line */
    }
}

/* ---- pv_move_files ------------------------------------------------------------ */

typedef struct move_ctx {
    const char *root;  /* resolved */
    const char *dest;  /* resolved */
    int undo_fd;
    char *err;
    size_t errlen;
    int first_rc;      /* the first failure's code, PV_OK if none */
} move_ctx;

/* Record a failure of path; the first one's code and message are kept. */
static int move_fail(move_ctx *m, int rc, const char *path, const char *fmt,
                     ...)
{
    char msg[PATH_MAX + 256];
    va_list ap;

    if (m->first_rc == PV_OK) {
        m->first_rc = rc;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        pv_set_err(m->err, m->errlen, "%s: %s", path, msg);
    }
    return rc;
}

static int move_errno(move_ctx *m, const char *path, const char *what, int e)
{
    char etext[128];

    pv_errno_text(e, etext, sizeof etext);
    return move_fail(m, code_of_errno(e), path, "%s: %s", what, etext);
}

/* Is dir (resolved) root or below it? */
static int under_root(const char *root, const char *dir)
{
    size_t n = strlen(root);

    if (strcmp(root, "/") == 0)
        return 1;
    return strncmp(dir, root, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

/* Move one file; PV_OK or the failure's code (recorded in m). */
static int move_path(move_ctx *m, const char *path)
{
    char *dir = NULL, *base = NULL, *rdir = NULL, *src = NULL, *want = NULL,
         *dst = NULL, *dstdir = NULL;
    const char *rel, *what;
    struct stat st;
    unsigned k = 0;
    int rc = PV_ENOMEM, e;
    off_t old = 0;

    dir = malloc(PATH_MAX);
    base = malloc(PATH_MAX);
    src = malloc(PATH_MAX);
    want = malloc(PATH_MAX);
    dst = malloc(PATH_MAX);
    dstdir = malloc(PATH_MAX);
    if (!dir || !base || !src || !want || !dst || !dstdir) {
        rc = move_fail(m, PV_ENOMEM, path, "out of memory");
        goto done;
    }
    if (path[0] == '\0' || path_split(path, dir, base) != 0 ||
        base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        rc = move_fail(m, PV_EINVAL, path, "not a file name");
        goto done;
    }
    rdir = realpath(dir, NULL);
    if (rdir == NULL) {
        rc = move_errno(m, path, "cannot resolve its folder", errno);
        goto done;
    }
    if (!under_root(m->root, rdir)) {
        rc = move_fail(m, PV_EINVAL, path, "not under %s; not moved", m->root);
        goto done;
    }
    if (path_join(src, rdir, base) != 0) {
        rc = move_fail(m, PV_EINVAL, path, "path too long");
        goto done;
    }
    if (lstat(src, &st) != 0) {
        rc = move_errno(m, path, "cannot move", errno);
        goto done;
    }
    const int is_link = S_ISLNK(st.st_mode);
    if (!S_ISREG(st.st_mode) && !is_link) {
        rc = move_fail(m, PV_EINVAL, path, "not a regular file; not moved");
        goto done;
    }
    /* src is root + "/" + rel (or "/" + rel when root is "/"). */
    rel = src + strlen(m->root);
    while (*rel == '/')
        rel++;
    if (path_join(want, m->dest, rel) != 0 || path_split(want, dstdir, base)) {
        rc = move_fail(m, PV_EINVAL, path, "destination path too long");
        goto done;
    }
    if ((e = mkdir_p(dstdir)) != 0) {
        rc = move_errno(m, path, "cannot create the destination folder", e);
        goto done;
    }
    for (;;) {
        if ((e = free_name(dst, want, &k)) != 0) {
            rc = move_errno(m, path, "no free destination name", e);
            goto done;
        }
        if ((e = undo_append(m->undo_fd, dst, src, &old)) != 0) {
            rc = move_errno(m, path, "cannot write the undo list; not moved",
                            e);
            goto done;
        }
        e = move_one(src, dst, is_link, &what);
        if (e == 0)
            break;
        /* Nothing moved when dst was taken (EEXIST: no step of ours created
         * it) or is still absent; then the line would only name another's
         * file for undo, so it goes. Otherwise (a copy whose clean-up
         * failed) it stays. */
        if (e == EEXIST || lstat(dst, &st) != 0)
            undo_unappend(m->undo_fd, old);
        if (e != EEXIST || k >= MOVE_MAX_SUFFIX) {
            rc = move_errno(m, path, what, e);
            goto done;
        }
        k++; /* taken since we looked: try the next name */
    }
    /* The move happened; make it durable on both sides. A failed folder
     * sync is not a failed move: the file is complete under one of its two
     * names, and the undo line already written covers either outcome. */
    (void)pv_fsync_parent(dst);
    (void)pv_fsync_path(rdir);
    rc = PV_OK;
done:
    free(dir);
    free(base);
    free(rdir);
    free(src);
    free(want);
    free(dst);
    free(dstdir);
    return rc;
}

int pv_move_files(const char *const *paths, size_t n, const char *root,
                  const char *dest_dir, const char *undo_file, size_t *moved,
                  size_t *failed, char *err, size_t errlen)
{
    move_ctx m;
    char *rroot = NULL, *rdest = NULL, etext[128];
    size_t i, nmoved = 0;
    int rc = PV_EINVAL, e, created = 0;
    struct stat st;

    memset(&m, 0, sizeof m);
    m.undo_fd = -1;
    m.err = err;
    m.errlen = errlen;
    if ((paths == NULL && n > 0) || root == NULL || dest_dir == NULL ||
        undo_file == NULL || dest_dir[0] == '\0' || undo_file[0] == '\0') {
        pv_set_err(err, errlen,
                   "move: missing paths, root, destination or undo file");
        goto done;
    }
    if (root[0] != '/') {
        pv_set_err(err, errlen, "%s: root must be an absolute folder", root);
        goto done;
    }
    rroot = realpath(root, NULL);
    if (rroot == NULL || stat(rroot, &st) != 0 || !S_ISDIR(st.st_mode)) {
        e = rroot == NULL ? errno : ENOTDIR;
        pv_errno_text(e, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: root: %s", root, etext);
        rc = code_of_errno(e);
        goto done;
    }
    if ((e = mkdir_p(dest_dir)) != 0 || (rdest = realpath(dest_dir, NULL)) == NULL) {
        e = e ? e : errno;
        pv_errno_text(e, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: cannot create the destination: %s",
                   dest_dir, etext);
        rc = code_of_errno(e);
        goto done;
    }
    /* Moving into root itself would only rename files in place. */
    if (strcmp(rroot, rdest) == 0) {
        pv_set_err(err, errlen, "%s: the destination is the root folder itself",
                   dest_dir);
        goto done;
    }
    created = lstat(undo_file, &st) != 0;
    /* Read and write: undo_append reads the last byte. */
    m.undo_fd = open(undo_file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (m.undo_fd < 0 || (created && (e = pv_fsync_parent(undo_file)) != 0)) {
        e = m.undo_fd < 0 ? errno : e;
        pv_errno_text(e, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: cannot open the undo list: %s", undo_file,
                   etext);
        rc = PV_EIO;
        goto done;
    }
    m.root = rroot;
    m.dest = rdest;
    m.first_rc = PV_OK;
    for (i = 0; i < n; i++) {
        if (paths[i] == NULL) {
            move_fail(&m, PV_EINVAL, "(null)", "no path");
            continue;
        }
        if (move_path(&m, paths[i]) == PV_OK)
            nmoved++;
    }
    rc = m.first_rc;
done:
    /* The counts are meaningful on failure too: what did not move failed. */
    if (moved != NULL)
        *moved = nmoved;
    if (failed != NULL)
        *failed = n - nmoved;
    if (m.undo_fd >= 0)
        close(m.undo_fd);
    free(rroot);
    free(rdest);
    return rc;
}

/* ---- pv_undo_moves ------------------------------------------------------------ */

/* Read the whole undo list into a NUL-terminated buffer. */
static int undo_read(const char *undo_file, char **out, size_t *len, char *err,
                     size_t errlen)
{
    char etext[128], *buf = NULL;
    struct stat st;
    size_t got = 0;
    int fd = -1, rc = PV_EIO, e;

    fd = open(undo_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        e = errno;
        pv_errno_text(e, etext, sizeof etext);
        pv_set_err(err, errlen, "%s: cannot read the undo list: %s", undo_file,
                   etext);
        rc = e == ENOENT ? PV_ENOTFOUND : PV_EIO;
        goto done;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MOVE_MAX_UNDO_BYTES) {
        pv_set_err(err, errlen, "%s: not an undo list (not a regular file, or "
                   "larger than 1 GiB)", undo_file);
        rc = PV_EINVAL;
        goto done;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        pv_set_err(err, errlen, "%s: out of memory", undo_file);
        rc = PV_ENOMEM;
        goto done;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            pv_errno_text(errno, etext, sizeof etext);
            pv_set_err(err, errlen, "%s: cannot read the undo list: %s",
                       undo_file, etext);
            goto done;
        }
        if (k == 0)
            break; /* shrank while we read: take what is there */
        got += (size_t)k;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
    rc = PV_OK;
done:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Undo one line "DEST\tSOURCE" (no newline). PV_OK when SOURCE is back, or
 * already was and DEST is gone. */
static int undo_line(move_ctx *m, char *line, size_t lineno)
{
    char *tab = strchr(line, '\t'), where[64], *dir = NULL, *base = NULL;
    const char *dst, *src, *what;
    struct stat st;
    int rc = PV_ENOMEM, e;

    snprintf(where, sizeof where, "undo list line %zu", lineno);
    if (tab != NULL)
        *tab = '\0';
    if (tab == NULL || strchr(tab + 1, '\t') != NULL || undo_unfield(line) != 0 ||
        undo_unfield(tab + 1) != 0 || tab[1] != '/' || line[0] != '/') {
        rc = move_fail(m, PV_ECORRUPT, where, "not \"DEST<tab>SOURCE\" with "
                       "absolute paths");
        goto done;
    }
    dst = line;
    src = tab + 1;
    dir = malloc(PATH_MAX);
    base = malloc(PATH_MAX);
    if (dir == NULL || base == NULL) {
        rc = move_fail(m, PV_ENOMEM, src, "out of memory");
        goto done;
    }
    if (lstat(dst, &st) != 0) {
        e = errno;
        if (e == ENOENT && lstat(src, &st) == 0) {
            rc = PV_OK; /* undone already, or never moved */
            goto done;
        }
        rc = e == ENOENT ? move_fail(m, PV_ENOTFOUND, src, "neither it nor %s "
                                     "exists; cannot restore", dst)
                         : move_errno(m, dst, "cannot restore", e);
        goto done;
    }
    /* Only regular files and links were moved; anything else at DEST (a
     * folder made since, or a line that is not ours) is not ours to move. */
    int is_link = S_ISLNK(st.st_mode);
    if (!S_ISREG(st.st_mode) && !is_link) {
        rc = move_fail(m, PV_EINVAL, dst, "not a regular file; left where it "
                       "is");
        goto done;
    }
    if (lstat(src, &st) == 0) {
        rc = move_fail(m, PV_EEXIST, src, "exists again; not overwritten, the "
                       "moved file stays at %s", dst);
        goto done;
    }
    if (path_split(src, dir, base) != 0) {
        rc = move_fail(m, PV_EINVAL, src, "path too long");
        goto done;
    }
    if ((e = mkdir_p(dir)) != 0) {
        rc = move_errno(m, src, "cannot recreate its folder", e);
        goto done;
    }
    if ((e = move_one(dst, src, is_link, &what)) != 0) {
        if (e == EEXIST)
            rc = move_fail(m, PV_EEXIST, src, "exists again; not overwritten, "
                           "the moved file stays at %s", dst);
        else
            rc = move_errno(m, dst, what, e);
        goto done;
    }
    /* As in move_path: after a crash the file is under one of its names. */
    (void)pv_fsync_path(dir);
    (void)pv_fsync_parent(dst);
    rc = PV_OK;
done:
    free(dir);
    free(base);
    return rc;
}

int pv_undo_moves(const char *undo_file, size_t *restored, size_t *failed,
                  char *err, size_t errlen)
{
    move_ctx m;
    char *buf = NULL, *p, **lines = NULL;
    size_t len = 0, nlines = 0, nrestored = 0, nfailed = 0, i;
    int rc;

    memset(&m, 0, sizeof m);
    m.err = err;
    m.errlen = errlen;
    m.undo_fd = -1;
    if (undo_file == NULL || undo_file[0] == '\0') {
        pv_set_err(err, errlen, "undo: no undo list given");
        rc = PV_EINVAL;
        goto done;
    }
    rc = undo_read(undo_file, &buf, &len, err, errlen);
    if (rc != PV_OK)
        goto done;
    /* Lines cut in place; a last line without its newline (written by hand)
     * counts too. len + 1 bounds the count. */
    lines = pv_alloc_array(len + 1, sizeof *lines);
    if (lines == NULL) {
        pv_set_err(err, errlen, "%s: out of memory", undo_file);
        rc = PV_ENOMEM;
        goto done;
    }
    for (p = buf; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        lines[nlines++] = p;
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    /* Last line first: a file moved twice, or a name used by two lines,
     * comes back in the reverse order of its moves. */
    m.first_rc = PV_OK;
    for (i = nlines; i > 0; i--) {
        if (lines[i - 1][0] == '\0')
            continue; /* an empty line: nothing to undo */
        if (undo_line(&m, lines[i - 1], i) == PV_OK)
            nrestored++;
        else
            nfailed++;
    }
    rc = m.first_rc;
done:
    if (restored != NULL)
        *restored = nrestored;
    if (failed != NULL)
        *failed = nfailed;
    free(lines);
    free(buf);
    return rc;
}
