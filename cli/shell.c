/*
 * shell.c - `pixvec shell DB`: the commands of the shared table on an open
 * database, one per line, without the DB argument. On a terminal, libedit
 * gives line editing, history (~/.pixvec_history) and tab completion of
 * command names (first word) and file names (later words); when stdin is
 * not a terminal, lines are read plainly and no prompt is printed, so a
 * script can pipe commands in. Words are split on blanks; single or double
 * quotes group words and a backslash escapes the next character.
 */
#include <editline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_WORDS 256

/* Split line in place into argv; returns argc or -1 on an open quote. */
static int split_words(char *line, char **argv, int max)
{
    int argc = 0;
    char *r = line, *w = line;
    while (*r) {
        char quote = 0;
        while (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r')
            r++;
        if (!*r)
            break;
        if (argc == max - 1)
            return -1;
        argv[argc++] = w;
        while (*r && (quote || (*r != ' ' && *r != '\t' && *r != '\n' && *r != '\r'))) {
            if (quote && *r == quote) {
                quote = 0;
                r++;
            } else if (!quote && (*r == '\'' || *r == '"')) {
                quote = *r++;
            } else if (*r == '\\' && r[1] && quote != '\'') {
                *w++ = r[1];
                r += 2;
            } else {
                *w++ = *r++;
            }
        }
        if (quote)
            return -1;
        if (*r)
            r++;
        *w++ = 0;
    }
    argv[argc] = NULL;
    return argc;
}

static char *command_generator(const char *text, int state)
{
    static const cli_cmd *next;
    size_t n = strlen(text);
    if (state == 0)
        next = cli_commands;
    while (next && next->name) {
        const cli_cmd *c = next++;
        if (!(c->flags & CMD_NO_SHELL) && strncmp(c->name, text, n) == 0)
            return strdup(c->name);
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    if (start == 0)
        return rl_completion_matches(text, command_generator);
    return NULL; /* NULL: libedit falls back to file names */
}

static void history_path(char *buf, size_t n)
{
    const char *home = getenv("HOME");
    snprintf(buf, n, "%s/.pixvec_history", home && *home ? home : ".");
}

int cli_shell(cli_ctx *ctx)
{
    int tty = isatty(STDIN_FILENO), status = CLI_OK;
    char hist[4096], prompt[64];
    char *line = NULL;
    size_t cap = 0;

    ctx->in_shell = 1;
    if (tty) {
        history_path(hist, sizeof hist);
        using_history();
        read_history(hist);
        rl_attempted_completion_function = complete;
        printf("pixvec shell on %s: help lists the commands, quit leaves.\n",
               ctx->dbpath);
    }
    snprintf(prompt, sizeof prompt, "pixvec> ");
    for (;;) {
        char *argv[MAX_WORDS];
        int argc;
        if (tty) {
            free(line);
            line = readline(prompt);
            if (!line)
                break;
            if (*line)
                add_history(line);
        } else if (getline(&line, &cap, stdin) < 0) {
            break;
        }
        argc = split_words(line, argv, MAX_WORDS);
        if (argc < 0) {
            fprintf(stderr, "pixvec: unbalanced quote or too many words\n");
            status = CLI_USAGE;
            continue;
        }
        if (argc == 0 || argv[0][0] == '#')
            continue;
        if (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0)
            break;
        status = cli_dispatch(ctx, argc, argv);
        fflush(stdout);
    }
    if (tty) {
        write_history(hist);
        putchar('\n');
    }
    free(line);
    return tty ? CLI_OK : status;
}
