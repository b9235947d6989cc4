/*
 * cli.h - the command table shared by the command line and the shell.
 *
 * One table {name, handler, usage, help, flags} drives `pixvec CMD`, the
 * shell's commands, `help`, and tab completion (the sqlite3 shell's azHelp
 * idea). A handler gets argv with argv[0] = the command name and the
 * database argument already taken out and opened (for CMD_DB commands).
 * Handlers return an exit code: 0 ok, 1 error, 2 usage (3: dups --exit-code
 * found duplicates).
 */
#ifndef PV_CLI_H
#define PV_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "pixvec.h"

enum { CLI_OK = 0, CLI_ERR = 1, CLI_USAGE = 2, CLI_FOUND = 3 };

enum {
    CMD_DB = 1,       /* takes a database as its first argument */
    CMD_WRITE = 2,    /* may write (the handler opens read-write when it does) */
    CMD_NO_SHELL = 4, /* not offered inside the shell */
    CMD_SUBCMD = 8,   /* `pixvec CMD train DB ...`: the sub-command word first */
    CMD_SHELL_ONLY = 16, /* only inside the shell (quit) */
};

typedef struct cli_ctx {
    pv_db *db;          /* NULL until the handler calls cli_open */
    const char *dbpath;
    int in_shell;
    int db_write;       /* db is open read-write */
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    int (*fn)(cli_ctx *ctx, int argc, char **argv);
    const char *usage; /* arguments after the command (and DB) */
    const char *help;  /* one paragraph; options listed one per line */
    unsigned flags;
} cli_cmd;

extern const cli_cmd cli_commands[];
/* The manual page pixvec(1) in roff, from the command table (man.c). */
void cli_print_man(FILE *f);
const cli_cmd *cli_find(const char *name);

/* ---- one run of a command (run.c) ----
 * Every command runs between cli_run_begin and cli_run_end (cli_dispatch
 * and main do this). Errors go through cli_err and the helpers below; the
 * first one is remembered with a code, and with --json cli_run_end prints
 * the one JSON document stdout owes: the handler's, or
 * {ok: false, command, exit_status, error: {code, message}}. */
void cli_run_begin(const char *cmd, int argc, char **argv, int in_shell);
int cli_run_end(int rc);         /* returns rc */
int cli_run_json(void);          /* --json was given */
int cli_run_in_shell(void);
void cli_set_code(const char *code); /* the error code, if none is set yet */
const char *cli_code_of(int rc);     /* a PV_E* code's JSON name */
/* s as a JSON string that is valid UTF-8 whatever bytes s holds (invalid
 * ones as the four characters \xHH); NULL only when out of memory. */
json_t *cli_text_json(const char *s);
/* The length of the valid UTF-8 character at s[0..n), 0 when none. */
size_t cli_utf8_len(const unsigned char *s, size_t n);
/* The candidate closest to word within a typo's distance, or NULL. */
const char *cli_suggest(const char *word, const char *const *cands, size_t n);

/* Open ctx->dbpath for c once its options are known (in the shell, the
 * read-only handle is reopened read-write when a command needs that).
 * CLI_OPEN_WRITE_IF_CAN: read-write when this user may write it, else
 * read-only. Reports the error itself; returns CLI_OK or CLI_ERR. */
enum { CLI_OPEN_READ = 0, CLI_OPEN_WRITE = 1, CLI_OPEN_WRITE_IF_CAN = 2 };
int cli_open(cli_ctx *ctx, const cli_cmd *c, int mode);

/* Print an error as "pixvec: CMD: message" to stderr. */
void cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_print_usage(FILE *f, const cli_cmd *c);
void cli_print_help(FILE *f, const cli_cmd *c);

/* Helpers the command files share (commands.c). */
/* Report a failed API call (cli_err; json is no longer needed: the run
 * knows). Returns CLI_ERR. */
int cli_fail(const char *cmd, int json, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *cli_db_msg(cli_ctx *ctx, int rc); /* errmsg, else the code's text */
/* one when n is 1, else many: "1 file", "2 files", "0 files". */
const char *cli_plural(unsigned long long n, const char *one, const char *many);
json_t *cli_item_json(const pv_item *it);
/* Print doc (freed) as the run's one document, "ok": true and "command"
 * first unless doc has them; a second document is dropped. */
int cli_print_json(json_t *doc);
void cli_opt_reset(void);                      /* before each getopt loop */
/* getopt_long; an unknown, ambiguous or valueless option is reported in
 * pixvec's words (with a "did you mean") and returned as '?'. */
int cli_next_opt(int argc, char **argv, const char *shortopts,
                 const struct option *longopts);
int cli_parse_int(const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *s, double lo, double hi, double *out);
/* An option's number: arg parsed into *out if it lies in lo..hi (0), else
 * the usage error "NAME takes LO..HI, not 'ARG'" (CLI_USAGE). */
int cli_opt_int(const cli_cmd *c, const char *name, const char *arg, long lo, long hi,
                int *out);
int cli_opt_float(const cli_cmd *c, const char *name, const char *arg, double lo, double hi,
                  float *out);
/* A usage error: the message (fmt with one %s = arg) and the usage line. */
int cli_usage_err(const cli_cmd *c, const char *fmt, const char *arg);

/* Command handlers that live in their own files. */
int cmd_dups(cli_ctx *ctx, int argc, char **argv);     /* dups.c */
int cmd_undo_move(cli_ctx *ctx, int argc, char **argv);

/* Folder labels (labels.c): the class of an image by the ImageFolder
 * convention, its folder's name (len bytes at the result; "" at the top). */
const char *cli_folder_label(const char *path, size_t *len);
/* Labels as small integers 0..n-1 in order of first sight. */
typedef struct cli_labels {
    char **name;
    size_t n, cap; /* cap: hash slots, a power of two */
    size_t *slot;  /* index + 1 into name, 0 empty */
} cli_labels;
/* The number of label s[0..len), added if new; SIZE_MAX when out of memory. */
size_t cli_label_id(cli_labels *L, const char *s, size_t len);
void cli_labels_free(cli_labels *L);

/* export and import of vectors (export.c). */
int cmd_export(cli_ctx *ctx, int argc, char **argv);
int cmd_import(cli_ctx *ctx, int argc, char **argv);

/* The map command (map.c). */
int cmd_map(cli_ctx *ctx, int argc, char **argv);

/* The dataset quality report (quality.c). */
int cmd_quality(cli_ctx *ctx, int argc, char **argv);

/* The interactive shell over an open database (shell.c); bail: a script
 * (stdin not a terminal) stops at its first failing command. */
int cli_shell(cli_ctx *ctx, int bail);

/* Report word as an unknown command, with the nearest one if it looks
 * like a typo (where: the reporting command's name, or NULL). */
void cli_unknown_command(const char *where, const char *word, int in_shell);

/* Run one command line (argv[0] = command) against ctx, between
 * cli_run_begin and cli_run_end. */
int cli_dispatch(cli_ctx *ctx, int argc, char **argv);

#endif
