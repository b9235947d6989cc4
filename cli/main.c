/*
 * main.c - `pixvec CMD DB [args]`: finds the command in the shared table
 * and hands over to the same dispatcher the shell uses; the handler opens
 * the database once its options are known (read-only unless it writes).
 * The first Ctrl-C (or SIGTERM) during a command asks the database to stop
 * (pv_db_interrupt): a long operation ends with "interrupted", the database
 * as it was, and the exit status is 128 + the signal; a second one kills as
 * the default action does.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: pixvec COMMAND DB [ARGS]   (pixvec help COMMAND for more)\n\ncommands:\n");
    for (const cli_cmd *c = cli_commands; c->name; c++)
        if (!(c->flags & CMD_SHELL_ONLY))
            fprintf(f, "  %-9s %s\n", c->name, c->usage);
    fprintf(f, "\nExit status: 0 ok, 1 error, 2 usage; dups --exit-code: 3 when "
               "duplicates were found.\nWith --json every outcome, errors too, is one "
               "JSON document on stdout (README.md).\n");
}

/* The command's context: its handle, once the handler has opened it, is
 * what the signal handler interrupts (NULL before: nothing to stop yet). */
static cli_ctx *volatile sig_ctx;
static volatile sig_atomic_t sig_caught;

static void on_signal(int sig)
{
    sig_caught = sig;
    if (sig_ctx)
        pv_db_interrupt(sig_ctx->db);
}

/* cli_dispatch with SIGINT and SIGTERM turned into pv_db_interrupt, once
 * each (SA_RESETHAND: a command that does not poll the flag still dies on
 * the second). Commands that install their own handlers (add, shell)
 * replace these for their run. */
static int dispatch_interruptible(cli_ctx *ctx, int argc, char **argv)
{
    struct sigaction sa, old_int, old_term;
    int rc;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sig_ctx = ctx;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rc = cli_dispatch(ctx, argc, argv);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sig_ctx = NULL;
    if (sig_caught && rc != CLI_OK)
        rc = 128 + sig_caught;
    return rc;
}

int main(int argc, char **argv)
{
    const cli_cmd *c;
    cli_ctx ctx = {NULL, NULL, 0, 0};
    int rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pixvec %s (format %d)\n", PV_VERSION_STRING, PV_FORMAT_VERSION);
        return CLI_OK;
    }
    c = cli_find(argv[1]);
    if (!c || !(c->flags & CMD_DB))
        return cli_dispatch(&ctx, argc - 1, argv + 1); /* reports unknown ones */
    /* `pixvec ivf train DB ...`: the database still comes first below. */
    if ((c->flags & CMD_SUBCMD) && argc >= 4 && strcmp(argv[2], "train") == 0) {
        char *word = argv[2];
        argv[2] = argv[3];
        argv[3] = word;
    }
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        cli_run_begin(c->name, argc - 1, argv + 1, 0);
        cli_print_help(stdout, c);
        return cli_run_end(CLI_OK);
    }
    if (argc < 3 || argv[2][0] == '-') {
        cli_run_begin(c->name, argc - 1, argv + 1, 0);
        return cli_run_end(cli_usage_err(c, "%s", "give the database (a folder) first"));
    }
    ctx.dbpath = argv[2];
    /* argv without the database: argv[0] becomes the command name. */
    argv[2] = argv[1];
    rc = dispatch_interruptible(&ctx, argc - 2, argv + 2);
    pv_db_close(ctx.db);
    return rc;
}
