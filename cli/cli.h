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
    CMD_WRITE = 2,    /* opens the database read-write */
    CMD_NO_SHELL = 4, /* not offered inside the shell */
    CMD_SUBCMD = 8,   /* `pixvec CMD train DB ...`: the sub-command word first */
};

typedef struct cli_ctx {
    pv_db *db;
    const char *dbpath;
    int in_shell;
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    int (*fn)(cli_ctx *ctx, int argc, char **argv);
    const char *usage; /* arguments after the command (and DB) */
    const char *help;  /* one paragraph; options listed one per line */
    unsigned flags;
} cli_cmd;

extern const cli_cmd cli_commands[];
const cli_cmd *cli_find(const char *name);

/* Print an error as "pixvec: CMD: message" to stderr. */
void cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_print_usage(FILE *f, const cli_cmd *c);
void cli_print_help(FILE *f, const cli_cmd *c);

/* Helpers the command files share (commands.c). */
/* Report a failed API call: text on stderr, and a JSON error document on
 * stdout when --json was asked (so a script always gets one document). */
int cli_fail(const char *cmd, int json, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *cli_db_msg(cli_ctx *ctx, int rc); /* errmsg, else the code's text */
/* one when n is 1, else many: "1 file", "2 files", "0 files". */
const char *cli_plural(unsigned long long n, const char *one, const char *many);
json_t *cli_item_json(const pv_item *it);
int cli_print_json(json_t *doc);               /* prints and frees doc */
void cli_opt_reset(void);                      /* before each getopt loop */
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

/* The map command (map.c). */
int cmd_map(cli_ctx *ctx, int argc, char **argv);

/* The dataset quality report (quality.c). */
int cmd_quality(cli_ctx *ctx, int argc, char **argv);

/* The interactive shell over an open database. */
int cli_shell(cli_ctx *ctx);

/* Run one command line (argv[0] = command) against ctx. */
int cli_dispatch(cli_ctx *ctx, int argc, char **argv);

#endif
