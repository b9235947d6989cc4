/*
 * shell.c - `pixvec shell DB`: the commands of the shared table on an open
 * database, one per line, without the DB argument; it behaves like sqlite3's
 * shell. On a terminal, libedit gives line editing, history
 * (~/.pixvec_history, written as each line is entered, so however the
 * shell ends, even by kill -9, what was typed is kept; libedit's
 * append_history(1) writes the wrong entry, so the whole list, at most
 * HISTORY_LINES, is written each time) and tab completion:
 * command names for the first word, a command's long options (read from its
 * usage and help text, as `help` prints them) for a word starting with '-',
 * file names otherwise, escaped so that the word reads back as the name.
 * When stdin is not a terminal, lines are read plainly and no prompt is
 * printed, so a script can pipe commands in; the exit status is then that of
 * the last command that failed (0 if none did), and with --bail the script
 * stops at the first failure. Words are split as cli_split_words says.
 *
 * Signals: Ctrl-C at the prompt cancels the line: libedit reads through
 * shell_getc, which waits for a key in pselect with the signals unblocked
 * only there (no window in which a signal is caught but the wait still
 * begins: the signal may land before libedit is reading, while it draws the
 * prompt), and says end of input once one came; readline returns, the line
 * is dropped and a new prompt drawn. libedit's own signal handling is off
 * (rl_catch_signals = 0): it relays a signal by re-raising it to the process
 * group, and under test through a pty one Ctrl-C in a few was lost that way;
 * readline's return puts the terminal back as libedit's handler would.
 * A signal may be caught by any thread (library threads block nothing), so
 * the handler also writes to a self-pipe the wait watches. During a command
 * it calls pv_db_interrupt, so a long operation stops with "interrupted"
 * and the database as it was, and the shell goes on. SIGTERM and SIGHUP
 * interrupt the command too, then leave the shell with 128 + the signal.
 */
#include <editline/readline.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "shell.h"

#define MAX_WORDS 256
#define HISTORY_LINES 1000

/* What the signal handler may touch: flags, and the context whose handle
 * it interrupts while a command runs (pv_db_interrupt is async-signal-safe;
 * read at the signal, since cli_open may reopen the handle read-write). */
static cli_ctx *volatile sig_ctx;
static volatile sig_atomic_t sig_running, sig_int, sig_quit;
/* The self-pipe: the handler writes a byte to it, read_byte waits on it.
 * The signal goes to any thread that does not block it, and the threads
 * that libraries start (OpenBLAS's pool, at load) block nothing; a handler
 * run on one of them sets the flag but cannot end the main thread's wait
 * (seen under strace: the prompt never came back). The byte does. */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int e = errno;
    if (sig == SIGINT)
        sig_int = 1;
    else
        sig_quit = sig;
    if (sig_running && sig_ctx)
        pv_db_interrupt(sig_ctx->db);
    if (sig_pipe[1] >= 0 && write(sig_pipe[1], "", 1) < 0) {
        /* full: a byte is already waiting, which is all the wait needs */
    }
    errno = e;
}

/* libedit's character reader at the prompt: one byte of in, or EOF once
 * SIGINT, SIGTERM or SIGHUP was caught. Those signals stay blocked but in
 * pselect, so a signal caught by this thread before the wait ends it at
 * once; one caught by another thread ends it through the self-pipe. */
static int read_byte(FILE *in)
{
    int fd = fileno(in), c = EOF, top = fd > sig_pipe[0] ? fd : sig_pipe[0];
    unsigned char ch, drain[64];
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!sig_int && !sig_quit) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        if (sig_pipe[0] >= 0)
            FD_SET(sig_pipe[0], &rd);
        int r = pselect(top + 1, &rd, NULL, NULL, NULL, &old);
        if (r > 0 && sig_pipe[0] >= 0 && FD_ISSET(sig_pipe[0], &rd)) {
            while (read(sig_pipe[0], drain, sizeof drain) > 0) {
            }
            continue; /* the loop's test sees the flag */
        }
        if (r > 0) {
            /* Non-blocking: the tty's Ctrl-C flushes its input queue, so
             * bytes pselect saw may be gone by the read (seen under strace:
             * a blocking read here, the signal on another thread, no prompt
             * ever again). Then wait again, where the flag is seen. */
            int fl = fcntl(fd, F_GETFL), set = fl >= 0 && !(fl & O_NONBLOCK);
            if (set)
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            ssize_t n = read(fd, &ch, 1);
            int e = errno;
            if (set)
                fcntl(fd, F_SETFL, fl);
            if (n == 1)
                c = ch;
            if (n < 0 && (e == EINTR || e == EAGAIN || e == EWOULDBLOCK))
                continue;
            break;
        } else if (r < 0 && errno != EINTR) {
            break;
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return c;
}

/* One character for libedit: it takes what rl_getc_function returns as a
 * wide character (its readline.c stores the int as a wchar_t), so a UTF-8
 * sequence typed at the prompt is decoded here into its code point; a byte
 * that starts no valid sequence is passed on as it is. */
static int shell_getc(FILE *in)
{
    int c = read_byte(in), n, cp;
    if (c == EOF || c < 0xc2 || c > 0xf4)
        return c;
    n = c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
    cp = c & (0x3f >> n);
    for (int i = 0; i < n; i++) {
        int b = read_byte(in);
        if (b == EOF || (b & 0xc0) != 0x80)
            return b == EOF ? EOF : '?';
        cp = (cp << 6) | (b & 0x3f);
    }
    return cp;
}

/* ---- completion ------------------------------------------------------------ */

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

/* The options of the command being completed (set before each use). */
static char **opt_names;

static char *option_generator(const char *text, int state)
{
    static size_t next;
    size_t n = strlen(text);
    if (state == 0)
        next = 0;
    while (opt_names && opt_names[next]) {
        const char *o = opt_names[next++];
        if (strncmp(o, text, n) == 0)
            return strdup(o);
    }
    return NULL;
}

/* The command word of the line being edited, or NULL. */
static const cli_cmd *line_command(int start)
{
    char word[64];
    const char *p = rl_line_buffer;
    size_t n = 0;
    if (!p)
        return NULL;
    while (*p == ' ' || *p == '\t')
        p++;
    while (p[n] && p[n] != ' ' && p[n] != '\t' && n + 1 < sizeof word &&
           (int)(p - rl_line_buffer + n) < start)
        n++;
    memcpy(word, p, n);
    word[n] = 0;
    return n ? cli_find(word) : NULL;
}

/* Quote every match in place (matches[0], the common prefix, included);
 * a single match (libedit: m[0] alone, or m[0] and m[1] the same) that is
 * a folder gets its '/' and no space after it. */
static char **quote_matches(char **m)
{
    struct stat st;
    int single = m && m[0] && (!m[1] || !m[2]);
    rl_completion_append_character = ' ';
    for (size_t i = 0; m && m[i]; i++) {
        char *q;
        if (single && stat(m[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            size_t n = strlen(m[i]);
            char *d = realloc(m[i], n + 2);
            if (d) {
                if (n == 0 || d[n - 1] != '/')
                    memcpy(d + n, "/", 2);
                m[i] = d;
                rl_completion_append_character = '\0';
            }
        }
        if ((q = cli_shell_quote(m[i])) != NULL) {
            free(m[i]);
            m[i] = q;
        }
    }
    return m;
}

static char **complete(const char *text, int start, int end)
{
    char **m = NULL, *word;
    int first = 1;
    (void)end;
    rl_attempted_completion_over = 1; /* never libedit's unquoted file names */
    for (int i = 0; i < start && rl_line_buffer && rl_line_buffer[i]; i++)
        if (rl_line_buffer[i] != ' ' && rl_line_buffer[i] != '\t')
            first = 0;
    if (first)
        return rl_completion_matches(text, command_generator);
    if (!(word = cli_shell_unquote(text)))
        return NULL;
    if (word[0] == '-') {
        const cli_cmd *c = line_command(start);
        if (c && (opt_names = cli_option_names(c->usage, c->help, NULL)) != NULL) {
            m = rl_completion_matches(word, option_generator);
            cli_option_names_free(opt_names);
            opt_names = NULL;
        }
    } else {
        m = quote_matches(rl_completion_matches(word, rl_filename_completion_function));
    }
    free(word);
    return m;
}

/* ---- the loop ---------------------------------------------------------------- */

static void history_path(char *buf, size_t n)
{
    const char *home = getenv("HOME");
    snprintf(buf, n, "%s/.pixvec_history", home && *home ? home : ".");
}

/* Read one line: readline on a terminal (NULL at Ctrl-D or on a signal,
 * which the caller tells apart by the flags), else getline. */
static char *read_line(int tty, char **buf, size_t *cap)
{
    if (tty)
        return readline("pixvec> ");
    return getline(buf, cap, stdin) < 0 ? NULL : *buf;
}

int cli_shell(cli_ctx *ctx, int bail)
{
    int tty = isatty(STDIN_FILENO), status = CLI_OK, failed = CLI_OK;
    char hist[4096];
    char *line = NULL, *buf = NULL;
    size_t cap = 0;
    struct sigaction sa, old_int, old_term, old_hup;

    ctx->in_shell = 1;
    sig_ctx = ctx;
    sig_running = sig_int = sig_quit = 0;
    if (pipe(sig_pipe) != 0) {
        sig_pipe[0] = sig_pipe[1] = -1; /* then only this thread's signals end a wait */
    } else {
        for (int i = 0; i < 2; i++) {
            fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
            fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
        }
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a read at the prompt ends */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    if (tty) {
        /* libedit reads and returns characters by the locale's encoding:
         * the user's, or UTF-8 when theirs has single-byte characters. */
        if (!setlocale(LC_CTYPE, "") || MB_CUR_MAX == 1)
            setlocale(LC_CTYPE, "C.UTF-8");
        history_path(hist, sizeof hist);
        /* before anything initialises libedit: it takes the reader then */
        rl_getc_function = shell_getc;
        rl_catch_signals = 0;
        using_history();
        stifle_history(HISTORY_LINES);
        read_history(hist);
        /* Words are the shell's: quotes and backslashes stay inside them. */
        rl_basic_word_break_characters = " \t\n";
        rl_attempted_completion_function = complete;
        printf("pixvec shell on %s: help lists the commands, quit leaves, "
               "Ctrl-C cancels.\n", ctx->dbpath);
    }
    for (;;) {
        char *argv[MAX_WORDS];
        int argc;
        if (tty)
            free(line);
        line = read_line(tty, &buf, &cap);
        if (sig_quit)
            break;
        if (tty && sig_int) { /* Ctrl-C at the prompt: drop the line, a fresh one */
            sig_int = 0;
            putchar('\n');
            continue;
        }
        if (!tty && sig_int) { /* Ctrl-C stops a script, as in sqlite3 */
            failed = 128 + SIGINT;
            break;
        }
        if (!line)
            break;
        if (tty && *line) {
            add_history(line);
            write_history(hist);
        }
        argc = cli_split_words(line, argv, MAX_WORDS);
        if (argc < 0) {
            fprintf(stderr, "pixvec: unbalanced quote or too many words\n");
            status = CLI_USAGE;
        } else if (argc == 0 || argv[0][0] == '#') {
            continue;
        } else if (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0) {
            break;
        } else {
            sig_int = 0;
            sig_running = 1;
            status = cli_dispatch(ctx, argc, argv);
            sig_running = 0;
            fflush(stdout);
            if (!tty && sig_int) {
                failed = 128 + SIGINT;
                break;
            }
            sig_int = 0;
        }
        if (status != CLI_OK) {
            failed = status;
            if (bail && !tty)
                break;
        }
        if (sig_quit)
            break;
    }
    if (tty) {
        free(line);
        line = NULL;
        putchar('\n');
    }
    free(buf);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sig_ctx = NULL;
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
    fflush(stdout);
    if (sig_quit)
        return 128 + sig_quit;
    return tty ? CLI_OK : failed;
}
