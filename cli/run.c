/*
 * run.c - one run of one command: how it reports what happened.
 *
 * Every command, in `pixvec CMD` and in the shell, runs between
 * cli_run_begin and cli_run_end. The run remembers whether --json was
 * given, whether it runs in the shell, whether a JSON document has been
 * printed, and the first error reported (its message and a stable code).
 * Handlers report errors only through cli_err and the helpers built on it;
 * cli_run_end then prints the one JSON error document a script waits for
 * when the handler printed none (git and ripgrep print their errors on
 * stderr; with --json we also owe stdout one document, whatever happened).
 *
 * Also here: the usage and help lines (the shell's form without `pixvec`
 * and DB), getopt's errors in pixvec's words with a "did you mean" (the
 * Damerau-Levenshtein distance, as git's help.autocorrect ranks commands),
 * and opening the database once options are known, read-only unless the
 * command writes.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static struct {
    const char *cmd;  /* the command's name, or NULL before it is known */
    int json;         /* --json was given */
    int in_shell;
    int doc_done;     /* a JSON document went to stdout */
    int code_set;
    char code[32];    /* the first error's code */
    char msg[2048];   /* its message, "" when none */
} run;

/* ---- the run ------------------------------------------------------------- */

/* --json anywhere before "--", also abbreviated as getopt_long allows. */
static int wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (strcmp(argv[i], "--") == 0)
            break;
        if (n >= 3 && strncmp(argv[i], "--json", n) == 0)
            return 1;
    }
    return 0;
}

void cli_run_begin(const char *cmd, int argc, char **argv, int in_shell)
{
    memset(&run, 0, sizeof run);
    run.cmd = cmd;
    run.json = wants_json(argc, argv);
    run.in_shell = in_shell;
}

int cli_run_json(void)
{
    return run.json;
}

int cli_run_in_shell(void)
{
    return run.in_shell;
}

void cli_set_code(const char *code)
{
    if (!run.code_set) {
        snprintf(run.code, sizeof run.code, "%s", code);
        run.code_set = 1;
    }
}

const char *cli_code_of(int rc)
{
    switch (rc) {
    case PV_EINVAL: return "invalid_argument";
    case PV_ENOMEM: return "out_of_memory";
    case PV_EIO: return "io_error";
    case PV_ENOTDB: return "not_a_database";
    case PV_ENEWER: return "newer_format";
    case PV_EEXIST: return "exists";
    case PV_ENOTFOUND: return "not_found";
    case PV_EDECODE: return "corrupt_image";
    case PV_EFORMAT: return "unknown_format";
    case PV_ETOOBIG: return "too_large";
    case PV_EEMBEDDER: return "other_embedder";
    case PV_ESTORE: return "storage_error";
    case PV_ECORRUPT: return "corrupt_database";
    case PV_EEMPTY: return "empty_file";
    case PV_ERDONLY: return "read_only";
    case PV_ENUMERIC: return "not_a_number";
    case PV_EINTR: return "interrupted";
    default: return "error";
    }
}

/* s as a JSON string that is valid UTF-8 whatever s holds: valid UTF-8 is
 * kept, any other byte becomes the four characters \xHH (the file-name
 * escape of the README), so a message naming a file never breaks the
 * document. */
json_t *cli_text_json(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *buf;
    json_t *j;
    if ((j = json_stringn(s, n)) != NULL) /* the common case: already valid */
        return j;
    buf = malloc(4 * n + 1);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t len = cli_utf8_len((const unsigned char *)s + i, n - i);
        if (len > 0) {
            memcpy(buf + o, s + i, len);
            o += len;
            i += len;
        } else {
            o += (size_t)sprintf(buf + o, "\\x%02x", (unsigned char)s[i]);
            i++;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* cli_utf8_len is in names.c, with the rest of the file-name escape. */

int cli_print_json(json_t *doc)
{
    json_t *out;
    const char *key;
    json_t *val;
    int rc;
    if (!doc) {
        cli_set_code("out_of_memory");
        cli_err(run.cmd ? run.cmd : "json", "out of memory building JSON");
        return CLI_ERR;
    }
    if (run.doc_done) { /* never a second document on stdout */
        json_decref(doc);
        return CLI_OK;
    }
    /* ok and command first, then the command's own fields. */
    out = json_object();
    if (!out) {
        json_decref(doc);
        return CLI_ERR;
    }
    if (!json_object_get(doc, "ok"))
        json_object_set_new(out, "ok", json_true());
    else
        json_object_set(out, "ok", json_object_get(doc, "ok"));
    if (run.cmd && !json_object_get(doc, "command"))
        json_object_set_new(out, "command", json_string(run.cmd));
    json_object_foreach(doc, key, val)
        if (strcmp(key, "ok") != 0)
            json_object_set(out, key, val);
    json_decref(doc);
    rc = json_dumpf(out, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(7));
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(out);
    run.doc_done = 1;
    return rc == 0 ? CLI_OK : CLI_ERR;
}

/* The error document: {ok: false, command, exit_status, error: {code,
 * message}}. */
static void print_error_doc(int rc)
{
    json_t *doc = json_object(), *err = json_object();
    if (!doc || !err) {
        json_decref(doc);
        json_decref(err);
        return;
    }
    json_object_set_new(doc, "ok", json_false());
    json_object_set_new(doc, "command", run.cmd ? json_string(run.cmd) : json_null());
    json_object_set_new(doc, "exit_status", json_integer(rc));
    json_object_set_new(err, "code", json_string(run.code_set ? run.code
                                                  : rc == CLI_USAGE ? "usage" : "error"));
    json_object_set_new(err, "message", cli_text_json(run.msg[0] ? run.msg
                                                      : rc == CLI_USAGE ? "usage error"
                                                                        : "failed"));
    json_object_set_new(doc, "error", err);
    cli_print_json(doc);
}

int cli_run_end(int rc)
{
    if (run.json && !run.doc_done) {
        if (rc == CLI_OK || rc == CLI_FOUND)
            cli_print_json(json_object());
        else
            print_error_doc(rc);
    }
    fflush(stdout);
    return rc;
}

/* ---- errors ------------------------------------------------------------- */

static void verr(const char *cmd, const char *fmt, va_list ap)
{
    char msg[sizeof run.msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (cmd)
        fprintf(stderr, "pixvec: %s: %s\n", cmd, msg);
    else
        fprintf(stderr, "pixvec: %s\n", msg);
    if (!run.msg[0])
        snprintf(run.msg, sizeof run.msg, "%s", msg);
}

void cli_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(cmd, fmt, ap);
    va_end(ap);
}

int cli_fail(const char *cmd, int json, const char *fmt, ...)
{
    va_list ap;
    (void)json; /* the run knows: cli_run_end prints the document */
    va_start(ap, fmt);
    verr(cmd, fmt, ap);
    va_end(ap);
    return CLI_ERR;
}

const char *cli_db_msg(cli_ctx *ctx, int rc)
{
    const char *m = ctx->db ? pv_db_errmsg(ctx->db) : NULL;
    cli_set_code(cli_code_of(rc));
    return m && m[0] ? m : pv_strerror(rc);
}

/* ---- usage and help ----------------------------------------------------- */

/* The usage text in the shell's form: without the leading "DB". */
static const char *shell_usage(const cli_cmd *c)
{
    const char *u = c->usage;
    if (run.in_shell && (c->flags & CMD_DB) && strncmp(u, "DB", 2) == 0)
        u += u[2] == ' ' ? 3 : 2;
    return u;
}

void cli_print_usage(FILE *f, const cli_cmd *c)
{
    if (run.in_shell)
        fprintf(f, "usage: %s %s\n", c->name, shell_usage(c));
    else
        fprintf(f, "usage: pixvec %s %s\n", c->name, c->usage);
}

void cli_print_help(FILE *f, const cli_cmd *c)
{
    if (run.json && f == stdout) {
        cli_print_json(json_pack("{s:s, s:s, s:s}", "command", c->name, "usage",
                                 shell_usage(c), "help", c->help));
        return;
    }
    cli_print_usage(f, c);
    fprintf(f, "\n%s\n", c->help);
}

int cli_usage_err(const cli_cmd *c, const char *fmt, const char *arg)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, arg);
    cli_set_code("usage");
    cli_err(c->name, "%s", msg);
    cli_print_usage(stderr, c);
    return CLI_USAGE;
}

int cli_opt_int(const cli_cmd *c, const char *name, const char *arg, long lo, long hi,
                int *out)
{
    long v;
    if (cli_parse_int(arg, lo, hi, &v) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s takes %ld..%ld, not '%%s'", name, lo, hi);
        return cli_usage_err(c, msg, arg);
    }
    *out = (int)v;
    return 0;
}

int cli_opt_float(const cli_cmd *c, const char *name, const char *arg, double lo, double hi,
                  float *out)
{
    double v;
    if (cli_parse_float(arg, lo, hi, &v) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s takes %g..%g, not '%%s'", name, lo, hi);
        return cli_usage_err(c, msg, arg);
    }
    *out = (float)v;
    return 0;
}

int cli_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* ---- did you mean ------------------------------------------------------- */

/* The optimal-string-alignment distance (edits, and swaps of neighbours)
 * between a and b, both at most 63 bytes; 99 when longer. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    int d[64][64];
    if (n > 63 || m > 63)
        return 99;
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

const char *cli_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t wl = strlen(word);
    int bestd = wl <= 4 ? 1 : wl <= 8 ? 2 : 3; /* farther is no longer a typo */
    for (size_t i = 0; i < n; i++) {
        int d = edit_distance(word, cands[i]);
        if (d < bestd || (!best && d == bestd)) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}

/* ---- getopt in pixvec's words ------------------------------------------ */

void cli_opt_reset(void)
{
    optind = 0; /* glibc: full re-initialisation, for the shell */
    opterr = 0; /* cli_next_opt reports */
}

/* The long option named by arg ("--name" or "--name=value") among lo. */
static void report_bad_option(const char *cmd, const char *arg, int missing,
                              const struct option *lo)
{
    char name[64];
    const char *cands[64];
    size_t nc = 0, len;
    const char *eq, *best;

    cli_set_code("usage");
    if (missing) {
        cli_err(cmd, "option '%s' needs a value", arg);
        return;
    }
    if (strncmp(arg, "--", 2) != 0) {
        cli_err(cmd, "unknown option '%s'", arg);
        return;
    }
    eq = strchr(arg, '=');
    len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), arg + 2);
    /* A known option given a value it does not take, or an ambiguous
     * abbreviation. */
    size_t prefixed = 0;
    for (const struct option *o = lo; o && o->name; o++) {
        if (strcmp(o->name, name) == 0 && eq && o->has_arg == no_argument) {
            cli_err(cmd, "option '--%s' takes no value", name);
            return;
        }
        if (strncmp(o->name, name, len) == 0)
            prefixed++;
        if (nc < 64)
            cands[nc++] = o->name;
    }
    if (prefixed > 1) {
        char list[512] = "";
        size_t at = 0;
        for (const struct option *o = lo; o->name; o++)
            if (strncmp(o->name, name, len) == 0 && at < sizeof list - 80)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s--%s",
                                       at ? ", " : "", o->name);
        cli_err(cmd, "option '--%s' is ambiguous: %s", name, list);
        return;
    }
    best = cli_suggest(name, cands, nc);
    if (best)
        cli_err(cmd, "unknown option '--%s'; did you mean '--%s'?", name, best);
    else
        cli_err(cmd, "unknown option '--%s'", name);
}

int cli_next_opt(int argc, char **argv, const char *shortopts,
                 const struct option *longopts)
{
    char so[128];
    int before = optind ? optind : 1, opt;
    snprintf(so, sizeof so, ":%s", shortopts);
    opterr = 0;
    opt = getopt_long(argc, argv, so, longopts, NULL);
    if (opt == '?' || opt == ':') {
        /* optind has moved past the offending word (or its value). */
        int at = optind - 1 >= before ? optind - 1 : before;
        const char *arg = at < argc ? argv[at] : "";
        char shortname[3] = {'-', (char)optopt, 0};
        if (opt == ':' && strncmp(arg, "--", 2) != 0 && optopt)
            arg = shortname;
        else if (opt == '?' && optopt && strncmp(arg, "--", 2) != 0)
            arg = shortname;
        report_bad_option(argv[0], arg, opt == ':', longopts);
        opt = '?';
    }
    return opt;
}

/* ---- opening the database ---------------------------------------------- */

/* A second writer waits for the first; say so once, so it never looks hung. */
static void on_busy(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "pixvec: %s\n", msg);
}

/* Whether this user may write the database: its folder and data file. */
static int may_write(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    return access(dir, W_OK) == 0 && access(p, W_OK) == 0;
}

int cli_open(cli_ctx *ctx, const cli_cmd *c, int mode)
{
    char err[1024] = "";
    int write = mode == CLI_OPEN_WRITE ||
                (mode == CLI_OPEN_WRITE_IF_CAN && may_write(ctx->dbpath));
    int rc;
    if (ctx->db && (ctx->db_write || !write))
        return CLI_OK;
    if (ctx->db) { /* the shell's read-only handle; a command wants to write */
        pv_db *old = ctx->db;
        ctx->db = NULL; /* first: the shell's SIGINT handler reads ctx->db */
        pv_db_close(old);
    }
    rc = pv_db_open(ctx->dbpath, write ? 0 : PV_OPEN_RDONLY, &ctx->db, err, sizeof err);
    if (rc != 0) {
        ctx->db = NULL;
        cli_set_code(cli_code_of(rc));
        cli_err(c->name, "%s", err[0] ? err : pv_strerror(rc));
        return CLI_ERR;
    }
    ctx->db_write = write;
    pv_db_set_busy_handler(ctx->db, on_busy, NULL);
    /* Once per process (the shell may reopen): a note, not an error. */
    static int noted;
    if (pv_db_unlocked(ctx->db) && !noted++)
        fprintf(stderr, "pixvec: note: %s: you cannot write this database, so it is read "
                        "without LMDB's reader lock table; a writer at work at the same "
                        "time may make this read fail (run it again then)\n", ctx->dbpath);
    return CLI_OK;
}
