/*
 * export.c - the way out and the way in: pv_db_export writes the live
 * vectors as numpy (.npy), fvecs or JSON Lines for FAISS, Milvus or
 * Qdrant; pv_npy_read and pv_paths_read read what another tool wrote, and
 * pv_import_vectors makes items of vectors computed elsewhere.
 *
 * Export reads one snapshot (one read transaction) and streams: each row
 * goes from the memory map (or, for an f16-only/i8-only database whose
 * float32 vectors are dropped, from the codes decoded once per snapshot,
 * db_vec_set) through a stdio buffer to a temporary file beside its
 * destination ("DST.tmp-PID"), so memory holds no second copy of the
 * vectors. Every file is written, flushed and fsynced before the first
 * rename; any failure removes the temporary files and leaves existing
 * outputs as they were (pv_write_file_atomic's contract, for a file
 * written in pieces).
 *
 * Formats (all little-endian):
 *   PREFIX.npy       numpy format 1.0 (numpy/lib/format.py, NEP 1): the
 *                    magic "\x93NUMPY", bytes 1 0, u16 header length, the
 *                    header "{'descr': '<f4', 'fortran_order': False,
 *                    'shape': (N, D), }" padded with spaces and ended by
 *                    '\n' so that the data starts at a multiple of 64;
 *                    then N*D float32, row-major.
 *   PREFIX.fvecs     TEXMEX/FAISS: per row an int32 D then D float32.
 *   PREFIX.ids.npy   the rows' item ids, '<u4' (pixvec ids are u32), (N,).
 *   PREFIX.paths.txt the rows' paths, one a line, each line ended by '\n';
 *                    bytes as stored (UTF-8 when the file system's names
 *                    are), with a backslash written "\\", a newline "\n"
 *                    and a carriage return "\r" (pv_paths_read undoes it).
 *   PREFIX.jsonl     one object a line: {"id", "path", "size", "mtime_ns"
 *                    (integer nanoseconds since the epoch), "hash" (32 hex
 *                    digits, XXH3-128 as stored), "width", "height",
 *                    "vector": [D numbers printed %.9g, which reads back
 *                    as the same float32]}; the "path" as the CLI's JSON
 *                    writes one (README.md, "File
 *                    names"): the exact name when it is valid UTF-8 and
 *                    does not begin with '"', else its quoted form.
 * Rows are the live items in id order.
 *
 * Import checks everything before its one write transaction, and inserts
 * through the same path as pv_add's batches (db_insert_item and
 * db_insert_vectors in ingest.c): records, path and hash keys, compact
 * codes, HNSW, vectors table and IVF lists in one commit, or nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "db_int.h"
#include "img.h"
#include "pv_util.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20) /* numpy itself reads up to 10,000 bytes */
#define PATHS_MAX_FILE ((size_t)1 << 31)
#define NORM_TOL 1e-3

/* ---- files written whole or not at all ------------------------------------ */

typedef struct outf {
    char dst[PATH_MAX];
    char tmp[PATH_MAX + 32];
    FILE *f;
    int made; /* tmp exists */
} outf;

static int outf_open(pv_db *db, outf *o, const char *prefix, const char *ext, int force)
{
    struct stat sb;
    int fd;
    memset(o, 0, sizeof *o);
    if ((size_t)snprintf(o->dst, sizeof o->dst, "%s%s", prefix, ext) >= sizeof o->dst)
        return db_fail(db, PV_EINVAL, "%s%s: path too long", prefix, ext);
    if (!force && lstat(o->dst, &sb) == 0)
        return db_fail(db, PV_EEXIST, "%s exists (force replaces it)", o->dst);
    if (lstat(o->dst, &sb) == 0 && S_ISDIR(sb.st_mode))
        return db_fail(db, PV_EEXIST, "%s is a folder", o->dst);
    if ((size_t)snprintf(o->tmp, sizeof o->tmp, "%s.tmp-%ld", o->dst, (long)getpid()) >=
        sizeof o->tmp)
        return db_fail(db, PV_EINVAL, "%s: path too long", o->dst);
    fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        char why[128];
        pv_errno_text(errno, why, sizeof why);
        return db_fail(db, PV_EIO, "%s: cannot create it: %s", o->tmp, why);
    }
    o->made = 1;
    if (!(o->f = fdopen(fd, "wb"))) {
        close(fd);
        return PV_ENOMEM;
    }
    setvbuf(o->f, NULL, _IOFBF, 1 << 20);
    return PV_OK;
}

/* Flush, fsync and close: the data is on disk under the temporary name. */
static int outf_finish(pv_db *db, outf *o)
{
    int bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    int e = errno;
    if (fclose(o->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->f = NULL;
    if (bad) {
        char why[128];
        pv_errno_text(e, why, sizeof why);
        return db_fail(db, PV_EIO, "%s: writing: %s", o->dst, why);
    }
    return PV_OK;
}

static void outf_discard(outf *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->made)
        unlink(o->tmp);
    o->made = 0;
}

static int outf_rename(pv_db *db, outf *o)
{
    if (rename(o->tmp, o->dst) != 0) {
        char why[128];
        pv_errno_text(errno, why, sizeof why);
        return db_fail(db, PV_EIO, "%s: renaming into place: %s", o->dst, why);
    }
    o->made = 0;
    (void)pv_fsync_parent(o->dst);
    return PV_OK;
}

/* ---- writing the formats ---------------------------------------------------- */

/* A numpy 1.0 header for descr and shape (cols 0: 1-D), padded so that
 * the data starts at a multiple of 64 bytes. */
static void npy_header(FILE *f, const char *descr, uint64_t rows, uint32_t cols)
{
    char dict[160], pre[10];
    int n = cols ? snprintf(dict, sizeof dict,
                            "{'descr': '%s', 'fortran_order': False, 'shape': (%llu, %u), }", descr,
                            (unsigned long long)rows, cols)
                 : snprintf(dict, sizeof dict,
                            "{'descr': '%s', 'fortran_order': False, 'shape': (%llu,), }", descr,
                            (unsigned long long)rows);
    size_t total = 10 + (size_t)n + 1, pad = (64 - total % 64) % 64;
    uint16_t hlen = (uint16_t)(n + pad + 1);
    memcpy(pre, NPY_MAGIC, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (char)(hlen & 0xff);
    pre[9] = (char)(hlen >> 8);
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)n, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
}

static void put_u32le(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    fwrite(b, 1, 4, f);
}

static void put_path_line(FILE *f, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\')
            fputs("\\\\", f);
        else if (p[i] == '\n')
            fputs("\\n", f);
        else if (p[i] == '\r')
            fputs("\\r", f);
        else
            fputc(p[i], f);
    }
    fputc('\n', f);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* s (valid UTF-8) as a JSON string. */
static void put_json_string(FILE *f, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(s + i, n - i);
        if (l > 1) {
            fwrite(s + i, 1, l, f);
            i += l;
        } else {
            unsigned char c = s[i++];
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c == '\n')
                fputs("\\n", f);
            else if (c == '\t')
                fputs("\\t", f);
            else if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

/* A path in JSON as the CLI writes one (README.md, "File names"): the
 * exact name when it is valid UTF-8 and does not begin with '"'; else its
 * quoted form, as git quotes paths: in double quotes, \\ \" \t \n \r,
 * and \xHH for other control bytes and bytes outside valid UTF-8. */
static void put_json_path(FILE *f, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    char q[4 * PV_MAX_PATH_BYTES + 3];
    size_t o = 0, i = 0;
    int plain = n > 0 && p[0] != '"' && n <= PV_MAX_PATH_BYTES;
    for (size_t k = 0; plain && k < n;) {
        size_t l = utf8_len(s + k, n - k);
        plain = l > 0;
        k += l ? l : 1;
    }
    if (plain || n > PV_MAX_PATH_BYTES) {
        put_json_string(f, p, plain ? n : 0);
        return;
    }
    q[o++] = '"';
    while (i < n) {
        size_t l = utf8_len(s + i, n - i);
        unsigned char c = s[i];
        if (l > 1) {
            memcpy(q + o, s + i, l);
            o += l;
            i += l;
            continue;
        }
        i++;
        if (c == '\\' || c == '"') {
            q[o++] = '\\';
            q[o++] = (char)c;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            q[o++] = '\\';
            q[o++] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else if (l == 0 || c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(q + o, 5, "\\x%02x", c);
        } else {
            q[o++] = (char)c;
        }
    }
    q[o++] = '"';
    put_json_string(f, q, o);
}

static void put_json_row(FILE *f, uint32_t id, const store_item *it, const float *v, uint32_t dim)
{
    fprintf(f, "{\"id\": %u, \"path\": ", id);
    put_json_path(f, it->path, it->path_len);
    fprintf(f, ", \"size\": %llu, \"mtime_ns\": %lld, \"hash\": \"", (unsigned long long)it->size,
            (long long)it->mtime_ns);
    for (int i = 0; i < 16; i++)
        fprintf(f, "%02x", it->hash[i]);
    fprintf(f, "\", \"width\": %u, \"height\": %u, \"vector\": [", it->width, it->height);
    for (uint32_t i = 0; i < dim; i++)
        fprintf(f, i ? ", %.9g" : "%.9g", (double)v[i]);
    fputs("]}\n", f);
}

/* ---- export ------------------------------------------------------------------ */

int pv_db_export(pv_db *db, const char *prefix, const pv_export_opts *o, pv_export_stats *stats)
{
    const int format = o ? o->format : PV_EXPORT_NPY, force = o && o->force;
    static const char *const exts[3][3] = {{".npy", ".ids.npy", ".paths.txt"},
                                           {".fvecs", ".ids.npy", ".paths.txt"},
                                           {".jsonl", NULL, NULL}};
    outf out[3];
    int nout = 0;
    store_txn *t = NULL;
    store_counts c;
    vec_set set;
    float *row = NULL;
    uint64_t written = 0;
    uint32_t dim;
    int rc;

    memset(out, 0, sizeof out);
    if (!db || !prefix || !*prefix || format < PV_EXPORT_NPY || format > PV_EXPORT_JSONL)
        return PV_EINVAL;
    db->errmsg[0] = 0;
    db_interrupt_clear(db);
    dim = db->emb->dim;
    if (!(row = pv_alloc_array(dim, sizeof *row)))
        return PV_ENOMEM;
    for (int i = 0; i < 3 && exts[format][i]; i++, nout++)
        if ((rc = outf_open(db, &out[i], prefix, exts[format][i], force)) != 0) {
            nout++;
            goto done;
        }
    if ((rc = db_read_begin(db, &t)) != 0) {
        db_fail(db, rc, "export: %s", pv_strerror(rc));
        goto done;
    }
    if ((rc = store_counts_get(t, &c)) != 0 || (rc = db_vec_set(db, t, &set)) != 0) {
        db_fail_txn(db, t, rc, "export");
        goto done;
    }
    if (format != PV_EXPORT_JSONL) {
        if (format == PV_EXPORT_NPY)
            npy_header(out[0].f, "<f4", c.live, dim);
        npy_header(out[1].f, "<u4", c.live, 0);
    }
    for (uint32_t id = 0; id < c.next_id; id++) {
        store_item it;
        const float *v;
        if ((id & 1023) == 0 && db_interrupted(db)) {
            rc = db_fail(db, PV_EINTR, "export: interrupted");
            goto done;
        }
        if ((rc = store_item_get(t, id, &it)) != 0) {
            db_fail_txn(db, t, rc, "export: item %u", id);
            goto done;
        }
        if (it.flags & STORE_ITEM_DELETED)
            continue;
        if (!(v = vec_set_get(&set, id))) {
            rc = db_fail(db, PV_ECORRUPT, "export: item %u has no vector", id);
            goto done;
        }
        if (written == c.live) {
            rc = db_fail(db, PV_ECORRUPT, "export: more live items than the %llu counted",
                         (unsigned long long)c.live);
            goto done;
        }
        memcpy(row, v, dim * sizeof *row); /* may be unaligned in the map */
        if (format == PV_EXPORT_JSONL) {
            put_json_row(out[0].f, id, &it, row, dim);
        } else {
            if (format == PV_EXPORT_FVECS)
                put_u32le(out[0].f, dim);
            fwrite(row, sizeof *row, dim, out[0].f); /* little-endian hosts only */
            put_u32le(out[1].f, id);
            put_path_line(out[2].f, it.path, it.path_len);
        }
        written++;
        if (ferror(out[0].f)) {
            rc = db_fail(db, PV_EIO, "%s: writing: %s", out[0].dst, strerror(errno));
            goto done;
        }
    }
    if (written != c.live) {
        rc = db_fail(db, PV_ECORRUPT, "export: %llu live items counted, %llu found",
                     (unsigned long long)c.live, (unsigned long long)written);
        goto done;
    }
    if ((rc = db_read_check(db, t)) != 0)
        goto done;
    for (int i = 0; i < nout; i++)
        if ((rc = outf_finish(db, &out[i])) != 0)
            goto done;
    for (int i = 0; i < nout; i++)
        if ((rc = outf_rename(db, &out[i])) != 0)
            goto done;
    if (stats) {
        stats->items = written;
        stats->dim = dim;
        stats->dequantized = store_vec_dropped(t);
    }
done:
    for (int i = 0; i < nout; i++)
        outf_discard(&out[i]);
    store_txn_abort(t);
    free(row);
    return rc;
}

/* ---- reading .npy -------------------------------------------------------------- */

typedef struct npy_parse {
    const char *p, *end;
} npy_parse;

static void np_ws(npy_parse *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int np_lit(npy_parse *s, char c)
{
    np_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

/* A quoted string (' or ") into out; 0 if none. */
static int np_str(npy_parse *s, char *out, size_t len)
{
    char q;
    size_t n = 0;
    np_ws(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
        return 0;
    q = *s->p++;
    while (s->p < s->end && *s->p != q) {
        if (n + 1 >= len)
            return 0;
        out[n++] = *s->p++;
    }
    if (s->p >= s->end)
        return 0;
    s->p++;
    out[n] = 0;
    return 1;
}

static int np_word(npy_parse *s, const char *w)
{
    size_t n = strlen(w);
    np_ws(s);
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, w, n) == 0) {
        s->p += n;
        return 1;
    }
    return 0;
}

/* A tuple of non-negative integers, at most 8 of them. */
static int np_shape(npy_parse *s, uint64_t *dims, int *nd)
{
    *nd = 0;
    if (!np_lit(s, '('))
        return 0;
    for (;;) {
        uint64_t v = 0;
        int digits = 0;
        if (np_lit(s, ')'))
            return 1;
        np_ws(s);
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10)
                return 0;
            v = v * 10 + (uint64_t)(*s->p++ - '0');
            digits++;
        }
        np_ws(s);
        if (s->p < s->end && *s->p == 'L') /* Python 2's long */
            s->p++;
        if (!digits || *nd == 8)
            return 0;
        dims[(*nd)++] = v;
        if (!np_lit(s, ',')) {
            return np_lit(s, ')');
        }
    }
}

int pv_npy_read(const char *path, float **data, uint64_t *rows, uint32_t *cols, int *ndim,
                char *err, size_t errlen)
{
    FILE *f = NULL;
    unsigned char pre[12];
    char *hdr = NULL, descr[64] = "";
    uint64_t dims[8];
    int nd = -1, fortran = -1, have_descr = 0, rc = PV_EIO;
    size_t hlen, pre_len, item;
    float *out = NULL;
    struct stat sb;
    npy_parse s;

    if (!path || !data || !rows || !cols) {
        pv_set_err(err, errlen, "pv_npy_read: NULL argument");
        return PV_EINVAL;
    }
    if (!(f = fopen(path, "rb")) || fstat(fileno(f), &sb) != 0) {
        char why[128];
        pv_errno_text(errno, why, sizeof why);
        pv_set_err(err, errlen, "%s: %s", path, why);
        goto done;
    }
    rc = PV_ECORRUPT;
    if (!S_ISREG(sb.st_mode)) {
        pv_set_err(err, errlen, "%s: not a regular file", path);
        goto done;
    }
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, NPY_MAGIC, 6) != 0) {
        pv_set_err(err, errlen, "%s: not a .npy file (no \\x93NUMPY magic)", path);
        goto done;
    }
    if ((pre[6] != 1 && pre[6] != 2 && pre[6] != 3) || pre[7] != 0) {
        pv_set_err(err, errlen, "%s: .npy format version %u.%u (pixvec reads 1.0, 2.0, 3.0)", path,
                   pre[6], pre[7]);
        goto done;
    }
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        pre_len = 10;
    } else {
        if (fread(pre + 10, 1, 2, f) != 2) {
            pv_set_err(err, errlen, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        pre_len = 12;
    }
    if (hlen > NPY_MAX_HEADER || (uint64_t)(pre_len + hlen) > (uint64_t)sb.st_size) {
        pv_set_err(err, errlen, "%s: .npy header length %zu %s", path, hlen,
                   hlen > NPY_MAX_HEADER ? "is too large" : "runs past the end of the file");
        goto done;
    }
    if (!(hdr = malloc(hlen + 1))) {
        rc = PV_ENOMEM;
        goto done;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        pv_set_err(err, errlen, "%s: truncated .npy header", path);
        goto done;
    }
    hdr[hlen] = 0;
    s.p = hdr;
    s.end = hdr + hlen;
    if (!np_lit(&s, '{'))
        goto bad_header;
    while (!np_lit(&s, '}')) {
        char key[32];
        if (!np_str(&s, key, sizeof key) || !np_lit(&s, ':'))
            goto bad_header;
        if (strcmp(key, "descr") == 0) {
            if (!np_str(&s, descr, sizeof descr)) {
                pv_set_err(err, errlen, "%s: a structured dtype; pixvec reads '<f4' (or '<f8')",
                           path);
                goto done;
            }
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (np_word(&s, "False"))
                fortran = 0;
            else if (np_word(&s, "True"))
                fortran = 1;
            else
                goto bad_header;
        } else if (strcmp(key, "shape") == 0) {
            if (!np_shape(&s, dims, &nd))
                goto bad_header;
        } else {
            pv_set_err(err, errlen, "%s: unknown key '%s' in the .npy header", path, key);
            goto done;
        }
        if (!np_lit(&s, ',')) {
            if (!np_lit(&s, '}'))
                goto bad_header;
            break;
        }
    }
    np_ws(&s);
    if (s.p != s.end || !have_descr || fortran < 0 || nd < 0)
        goto bad_header;
    if (strcmp(descr, "<f4") == 0)
        item = 4;
    else if (strcmp(descr, "<f8") == 0)
        item = 8;
    else {
        rc = PV_EINVAL;
        pv_set_err(err, errlen,
                   "%s: dtype '%s'; pixvec reads float32 ('<f4', or '<f8' "
                   "converted): x.astype('<f4')",
                   path, descr);
        goto done;
    }
    if (fortran) {
        rc = PV_EINVAL;
        pv_set_err(err, errlen,
                   "%s: fortran_order True; save a C-ordered array "
                   "(numpy.ascontiguousarray)",
                   path);
        goto done;
    }
    if (nd != 1 && nd != 2) {
        rc = PV_EINVAL;
        pv_set_err(err, errlen,
                   "%s: a %d-D array; pixvec reads 1-D (one vector) or 2-D "
                   "(one vector a row)",
                   path, nd);
        goto done;
    }
    {
        uint64_t n = nd == 2 ? dims[0] : 1, d = dims[nd - 1];
        uint64_t have = (uint64_t)sb.st_size - pre_len - hlen;
        if (d == 0 || d > STORE_MAX_DIM) {
            rc = PV_EINVAL;
            pv_set_err(err, errlen, "%s: rows of %llu values (pixvec takes 1..%u)", path,
                       (unsigned long long)d, STORE_MAX_DIM);
            goto done;
        }
        if (n > UINT64_MAX / 8 / d || n * d * item != have) {
            pv_set_err(err, errlen,
                       "%s: the shape says %llu x %llu values of %zu bytes, "
                       "but the file holds %llu data bytes%s",
                       path, (unsigned long long)n, (unsigned long long)d, item,
                       (unsigned long long)have,
                       n <= UINT64_MAX / 8 / d && n * d * item > have ? " (truncated)" : "");
            goto done;
        }
        if (n * d > SIZE_MAX / sizeof(float) ||
            !(out = pv_alloc_array((size_t)(n * d) + 1, sizeof *out))) {
            rc = PV_ENOMEM;
            pv_set_err(err, errlen, "%s: %llu x %llu floats do not fit in memory", path,
                       (unsigned long long)n, (unsigned long long)d);
            goto done;
        }
        if (item == 4) {
            if (fread(out, 4, (size_t)(n * d), f) != (size_t)(n * d)) {
                rc = PV_EIO;
                pv_set_err(err, errlen, "%s: read error", path);
                goto done;
            }
        } else {
            double buf[1024];
            for (uint64_t i = 0; i < n * d;) {
                size_t m = n * d - i < 1024 ? (size_t)(n * d - i) : 1024;
                if (fread(buf, 8, m, f) != m) {
                    rc = PV_EIO;
                    pv_set_err(err, errlen, "%s: read error", path);
                    goto done;
                }
                for (size_t k = 0; k < m; k++)
                    out[i + k] = (float)buf[k];
                i += m;
            }
        }
        *data = out;
        out = NULL;
        *rows = n;
        *cols = (uint32_t)d;
        if (ndim)
            *ndim = nd;
        rc = PV_OK;
    }
    goto done;
bad_header:
    rc = PV_ECORRUPT;
    pv_set_err(err, errlen, "%s: malformed .npy header: %.200s", path, hdr ? hdr : "");
done:
    if (f)
        fclose(f);
    free(hdr);
    free(out);
    return rc;
}

void pv_npy_free(float *data)
{
    free(data);
}

/* ---- reading a paths file -------------------------------------------------------- */

int pv_paths_read(const char *file, char ***paths, size_t *n, char *err, size_t errlen)
{
    char *buf = NULL, **arr = NULL;
    size_t len = 0, lines = 0, cnt = 0, line = 0;
    int rc;

    if (!file || !paths || !n)
        return PV_EINVAL;
    if ((rc = pv_read_file(file, PATHS_MAX_FILE, &buf, &len, err, errlen)) != 0)
        return rc;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    if (len && buf[len - 1] != '\n')
        lines++;
    if (!(arr = pv_calloc_array(lines + 1, sizeof *arr))) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < len;) {
        size_t e = i, o = 0;
        char *p;
        while (e < len && buf[e] != '\n')
            e++;
        line++;
        if (!(p = malloc(e - i + 1))) {
            rc = PV_ENOMEM;
            goto done;
        }
        arr[cnt++] = p;
        for (size_t k = i; k < e; k++) {
            char ch = buf[k];
            if (ch == '\0' || (ch == '\r' && k + 1 == e)) {
                rc = PV_EINVAL;
                pv_set_err(err, errlen, "%s: line %zu: %s", file, line,
                           ch ? "ends with a carriage return (a Windows line end?); a CR "
                                "in a path is written \\r"
                              : "holds a NUL byte");
                goto done;
            }
            if (ch == '\\') {
                char nx = k + 1 < e ? buf[k + 1] : 0;
                if (nx != '\\' && nx != 'n' && nx != 'r') {
                    rc = PV_EINVAL;
                    pv_set_err(err, errlen,
                               "%s: line %zu: a backslash not followed by \\, n or "
                               "r (write a backslash in a path as \\\\)",
                               file, line);
                    goto done;
                }
                ch = nx == 'n' ? '\n' : nx == 'r' ? '\r' : '\\';
                k++;
            }
            p[o++] = ch;
        }
        p[o] = 0;
        if (o == 0) {
            rc = PV_EINVAL;
            pv_set_err(err, errlen, "%s: line %zu is empty", file, line);
            goto done;
        }
        i = e + 1;
    }
    *paths = arr;
    *n = cnt;
    arr = NULL;
done:
    pv_paths_free(arr, cnt);
    free(buf);
    return rc;
}

void pv_paths_free(char **paths, size_t n)
{
    if (!paths)
        return;
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* ---- import ---------------------------------------------------------------------- */

typedef struct import_row {
    char *path; /* absolute */
    uint64_t size;
    int64_t mtime_ns;
    uint8_t hash[16];
    uint32_t w, h;
} import_row;

typedef struct import_ctx {
    import_row *rows;
    size_t n;
    const float *vecs;
} import_ctx;

/* What a file says about itself: stat, the content hash as pv_add computes
 * it, and its size as displayed when it decodes. A missing or unreadable
 * file leaves size, mtime, width and height 0, and its hash is XXH3-128 of
 * "pixvec:no-file:" and the path: unique, so `dups` does not take every
 * missing file for a byte copy of the others. */
static void import_stat(import_row *r)
{
    struct stat sb;
    uint8_t *buf = NULL;
    size_t n = 0;
    char why[160];
    XXH128_canonical_t cano;
    if (stat(r->path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        r->size = (uint64_t)sb.st_size;
        r->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        if (img_read_file(r->path, &buf, &n, why, sizeof why) == 0) {
            img im;
            XXH128_canonicalFromHash(&cano, XXH3_128bits(buf, n));
            memcpy(r->hash, cano.digest, 16);
            if (img_decode(buf, n, 1, 1, 1, &im, why, sizeof why) == 0) {
                r->w = im.orig_w;
                r->h = im.orig_h;
                img_free(&im);
            }
            free(buf);
            return;
        }
    }
    {
        XXH3_state_t *st = XXH3_createState();
        if (st && XXH3_128bits_reset(st) == XXH_OK) {
            XXH3_128bits_update(st, "pixvec:no-file:", 15);
            XXH3_128bits_update(st, r->path, strlen(r->path));
            XXH128_canonicalFromHash(&cano, XXH3_128bits_digest(st));
            memcpy(r->hash, cano.digest, 16);
        }
        XXH3_freeState(st);
    }
}

static int import_txn(pv_db *db, store_txn *t, void *vctx)
{
    import_ctx *x = vctx;
    store_counts c;
    uint32_t first;
    int rc = store_counts_get(t, &c);
    if (rc != 0)
        return rc;
    if ((uint64_t)c.next_id + x->n > UINT32_MAX - 1)
        return db_fail(db, PV_EINVAL, "%zu more items would pass the 2^32 ids", x->n);
    first = c.next_id;
    for (size_t i = 0; i < x->n; i++) {
        uint32_t id;
        store_item it;
        rc = store_path_get(t, x->rows[i].path, &id);
        if (rc == 0)
            return db_fail(db, PV_EEXIST,
                           "row %zu: %s is in the database already (item %u); "
                           "remove it first (pixvec rm)",
                           i, x->rows[i].path, id);
        if (rc != PV_ENOTFOUND)
            return rc;
        memset(&it, 0, sizeof it);
        it.size = x->rows[i].size;
        it.mtime_ns = x->rows[i].mtime_ns;
        memcpy(it.hash, x->rows[i].hash, 16);
        it.width = x->rows[i].w;
        it.height = x->rows[i].h;
        it.path = x->rows[i].path;
        it.path_len = (uint16_t)strlen(x->rows[i].path);
        if ((rc = db_insert_item(t, &c, &it)) != 0)
            return rc;
    }
    if ((rc = db_insert_vectors(db, t, first, (uint32_t)x->n, x->vecs, NULL, 0, db_threads(0))) !=
        0)
        return rc;
    return store_counts_put(t, &c);
}

static int cmp_row_path(const void *a, const void *b)
{
    const import_row *x = *(const import_row *const *)a, *y = *(const import_row *const *)b;
    int c = strcmp(x->path, y->path);
    return c ? c : x < y ? -1 : x > y;
}

int pv_import_vectors(pv_db *db, const float *vecs, size_t n, uint32_t dim,
                      const char *const *paths, const pv_import_opts *o, size_t *imported)
{
    import_ctx x = {NULL, 0, vecs};
    import_row **order = NULL;
    float *scaled = NULL;
    int rc = PV_OK, locked = 0;

    if (!db || (n && (!vecs || !paths)))
        return PV_EINVAL;
    db->errmsg[0] = 0;
    db_interrupt_clear(db);
    if (!embed_is_external(db->emb))
        return db_fail(db, PV_EEMBEDDER,
                       "this database embeds images with its %s embedder; vectors computed "
                       "elsewhere go into a database of their own (import creates one)",
                       db->emb->desc);
    if (dim != db->emb->dim)
        return db_fail(db, PV_EEMBEDDER, "the vectors have %u dims; this database has %u", dim,
                       db->emb->dim);
    /* Every row finite, and of unit length (or made so). Rows are
     * numbered from 0, as numpy numbers them. */
    if (o && o->normalize && n && !(scaled = pv_alloc_array(n, (size_t)dim * sizeof(float))))
        return PV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const float *v = vecs + i * (size_t)dim;
        double ss = 0;
        for (uint32_t j = 0; j < dim; j++) {
            if (!isfinite(v[j])) {
                rc = db_fail(db, PV_ENUMERIC, "row %zu (counting from 0): value %u is %s", i, j,
                             isnan(v[j]) ? "NaN" : "infinite");
                goto done;
            }
            ss += (double)v[j] * v[j];
        }
        double norm = sqrt(ss);
        if (scaled) {
            if (!(norm > 0) || !isfinite(norm)) {
                rc = db_fail(db, PV_ENUMERIC,
                             "row %zu (counting from 0): a zero vector "
                             "cannot be normalized",
                             i);
                goto done;
            }
            for (uint32_t j = 0; j < dim; j++)
                scaled[i * (size_t)dim + j] = (float)(v[j] / norm);
        } else if (!(fabs(norm - 1.0) <= NORM_TOL)) {
            rc = db_fail(db, PV_ENUMERIC,
                         "row %zu (counting from 0): L2 norm %.6g, not 1 "
                         "(within %g); pixvec stores unit vectors (cosine = dot): normalize "
                         "them (--normalize)",
                         i, norm, NORM_TOL);
            goto done;
        }
    }
    if (scaled)
        x.vecs = scaled;
    if (!(x.rows = pv_calloc_array(n ? n : 1, sizeof *x.rows)) ||
        !(order = pv_alloc_array(n ? n : 1, sizeof *order))) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++, x.n++) {
        char abs[PATH_MAX];
        if (!paths[i] || !paths[i][0] || db_abs_path(paths[i], abs, sizeof abs) != 0) {
            rc =
                db_fail(db, PV_EINVAL, "row %zu: bad path '%s'", i, paths[i] ? paths[i] : "(null)");
            goto done;
        }
        if (strlen(abs) > PV_MAX_PATH_BYTES) {
            rc = db_fail(db, PV_EINVAL, "row %zu: %s: path longer than %u bytes", i, abs,
                         PV_MAX_PATH_BYTES);
            goto done;
        }
        if (!(x.rows[i].path = strdup(abs))) {
            rc = PV_ENOMEM;
            goto done;
        }
        order[i] = &x.rows[i];
    }
    if (n > 1)
        qsort(order, n, sizeof *order, cmp_row_path);
    for (size_t i = 1; i < n; i++)
        if (strcmp(order[i - 1]->path, order[i]->path) == 0) {
            rc = db_fail(db, PV_EINVAL, "rows %zu and %zu name the same file %s",
                         (size_t)(order[i - 1] - x.rows), (size_t)(order[i] - x.rows),
                         order[i]->path);
            goto done;
        }
    for (size_t i = 0; i < n; i++) {
        if ((i & 255) == 0 && db_interrupted(db)) {
            rc = db_fail(db, PV_EINTR, "import: interrupted; nothing imported");
            goto done;
        }
        import_stat(&x.rows[i]);
    }
    if ((rc = db_writer_begin(db)) != 0)
        goto done;
    locked = 1;
    rc = db_write(db, import_txn, &x);
    if (rc != 0 && !db->errmsg[0])
        db_fail(db, rc, "import of %zu vectors: %s", n, pv_strerror(rc));
    if (rc == 0 && imported)
        *imported = n;
done:
    if (locked)
        db_writer_end(db);
    for (size_t i = 0; x.rows && i < x.n; i++)
        free(x.rows[i].path);
    free(x.rows);
    free(order);
    free(scaled);
    return rc;
}
