/*
 * shell_words.c - the shell's words: split, quote, unquote, and the long
 * options named in a command's usage and help text. Quoting uses backslashes
 * only (as bash's completion does for file names), never surrounding
 * quotes: escaping is character by character, so the longest common prefix
 * of several quoted names, which libedit inserts on a tab, is itself a
 * valid quoted prefix.
 */
#include "shell.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int cli_split_words(char *line, char **argv, int max)
{
    int argc = 0;
    char *r = line, *w = line;
    while (*r) {
        char quote = 0;
        while (is_blank(*r))
            r++;
        if (!*r)
            break;
        if (argc == max - 1)
            return -1;
        argv[argc++] = w;
        while (*r && (quote || !is_blank(*r))) {
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

char *cli_shell_quote(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *w = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        /* '#' too: a word that begins with it would start a comment */
        if (is_blank(*s) || *s == '\'' || *s == '"' || *s == '\\' || *s == '#')
            *w++ = '\\';
        *w++ = *s;
    }
    *w = 0;
    return out;
}

char *cli_shell_unquote(const char *word)
{
    char *out = malloc(strlen(word) + 1), *w = out;
    char quote = 0;
    if (!out)
        return NULL;
    for (const char *r = word; *r;) {
        if (quote && *r == quote) {
            quote = 0;
            r++;
        } else if (!quote && (*r == '\'' || *r == '"')) {
            quote = *r++;
        } else if (*r == '\\' && quote != '\'') {
            if (!r[1]) /* a trailing backslash escapes what is not typed yet */
                break;
            *w++ = r[1];
            r += 2;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return out;
}

static int word_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* Append the "--name" tokens of s to names (cap entries), skipping ones
 * already there. Returns -1 when out of memory. */
static int scan_options(const char *s, char ***names, size_t *n, size_t *cap)
{
    for (const char *p = s; p && (p = strstr(p, "--")) != NULL;) {
        const char *q = p + 2;
        size_t len = 0;
        int fresh = 1;
        if ((p > s && word_char(p[-1])) || !isalnum((unsigned char)*q)) {
            p = q;
            continue;
        }
        while (isalnum((unsigned char)q[len]) || (q[len] == '-' && isalnum((unsigned char)q[len + 1])))
            len++;
        for (size_t i = 0; i < *n && fresh; i++)
            fresh = !(strncmp((*names)[i], p, len + 2) == 0 && (*names)[i][len + 2] == 0);
        if (fresh) {
            if (*n + 2 > *cap) {
                size_t nc = *cap ? 2 * *cap : 16;
                char **nn = realloc(*names, nc * sizeof *nn);
                if (!nn)
                    return -1;
                *names = nn;
                *cap = nc;
            }
            if (!((*names)[*n] = strndup(p, len + 2)))
                return -1;
            (*names)[++*n] = NULL;
        }
        p = q + len;
    }
    return 0;
}

char **cli_option_names(const char *usage, const char *help, size_t *n)
{
    char **names = calloc(1, sizeof *names);
    size_t cnt = 0, cap = names ? 1 : 0;
    if (!names || scan_options(usage, &names, &cnt, &cap) != 0 ||
        scan_options(help, &names, &cnt, &cap) != 0) {
        cli_option_names_free(names);
        return NULL;
    }
    if (n)
        *n = cnt;
    return names;
}

void cli_option_names_free(char **names)
{
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}
