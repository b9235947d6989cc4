/*
 * main.c - `pixvec CMD DB [args]`: finds the command in the shared table,
 * opens the database the way the command needs (read-only unless it
 * writes), and hands over to the same handler the shell uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: pixvec COMMAND DB [ARGS]   (pixvec help COMMAND for more)\n\ncommands:\n");
    for (const cli_cmd *c = cli_commands; c->name; c++)
        if (strcmp(c->name, "quit") != 0)
            fprintf(f, "  %-7s %s\n", c->name, c->usage);
    fprintf(f, "\nExit status: 0 ok, 1 error, 2 usage; dups --exit-code: 3 when "
               "duplicates were found.\n");
}

/* A second writer waits for the first; say so once, so it never looks hung. */
static void on_busy(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "pixvec: %s\n", msg);
}

int main(int argc, char **argv)
{
    const cli_cmd *c;
    cli_ctx ctx = {NULL, NULL, 0};
    char err[1024] = "";
    int rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pixvec 0.1.0 (format %d)\n", PV_FORMAT_VERSION);
        return CLI_OK;
    }
    c = cli_find(argv[1]);
    if (!c || strcmp(c->name, "quit") == 0) {
        fprintf(stderr, "pixvec: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return CLI_USAGE;
    }
    if (!(c->flags & CMD_DB))
        return c->fn(&ctx, argc - 1, argv + 1);
    /* `pixvec ivf train DB ...`: the database still comes first below. */
    if ((c->flags & CMD_SUBCMD) && argc >= 4 && strcmp(argv[2], "train") == 0) {
        char *word = argv[2];
        argv[2] = argv[3];
        argv[3] = word;
    }
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        cli_print_help(stdout, c);
        return CLI_OK;
    }
    if (argc < 3 || argv[2][0] == '-') {
        cli_print_usage(stderr, c);
        return CLI_USAGE;
    }
    ctx.dbpath = argv[2];
    /* argv without the database: argv[0] becomes the command name. */
    argv[2] = argv[1];
    if (strcmp(c->name, "init") != 0) {
        int flags = (c->flags & CMD_WRITE) ? 0 : PV_OPEN_RDONLY;
        rc = pv_db_open(ctx.dbpath, flags, &ctx.db, err, sizeof err);
        if (rc != 0) {
            cli_err(c->name, "%s", err[0] ? err : pv_strerror(rc));
            return CLI_ERR;
        }
        pv_db_set_busy_handler(ctx.db, on_busy, NULL);
        if (pv_db_unlocked(ctx.db))
            fprintf(stderr, "pixvec: note: %s: you cannot write this database, so it is "
                            "read without LMDB's reader lock table; a writer at work at the "
                            "same time may make this read fail or go wrong\n", ctx.dbpath);
    }
    rc = c->fn(&ctx, argc - 2, argv + 2);
    pv_db_close(ctx.db);
    return rc;
}
