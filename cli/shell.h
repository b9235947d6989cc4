/*
 * shell.h - the words of the interactive shell (shell_words.c): splitting a
 * line into words, quoting a completed name so that it splits back into the
 * same name, reading a half-typed word, and the long options a command's
 * usage and help strings name (the one source of truth `help` prints and
 * tab completion offers). Pure string functions, with no libedit and no
 * database, so the tests link them alone.
 */
#ifndef PV_CLI_SHELL_H
#define PV_CLI_SHELL_H

#include <stddef.h>

/* Split line in place into argv (max entries, argv[argc] = NULL): words
 * are separated by blanks; single quotes group literally, double quotes
 * group with backslash escapes inside, and a backslash outside quotes
 * escapes the next character. Returns argc, or -1 on an open quote or more
 * than max - 1 words. */
int cli_split_words(char *line, char **argv, int max);

/* s as one word cli_split_words reads back as s: every blank, quote,
 * backslash and '#' is escaped with a backslash (a prefix of the result is
 * the quoted form of a prefix of s, so the common prefix of quoted
 * completions is still a quoted prefix). malloc'd; NULL when out of memory. */
char *cli_shell_quote(const char *s);

/* What a half-typed word (the raw text, maybe with an open quote or a
 * trailing backslash) stands for, as cli_split_words would read it once
 * completed. malloc'd; NULL when out of memory. */
char *cli_shell_unquote(const char *word);

/* Every distinct "--name" token of the given texts (a command's usage and
 * help), in order of first appearance: "--" after a non-word character,
 * then letters, digits and inner hyphens. NULL-terminated, malloc'd, freed
 * with cli_option_names_free; *n (may be NULL) gets the count. NULL when
 * out of memory. */
char **cli_option_names(const char *usage, const char *help, size_t *n);
void cli_option_names_free(char **names);

#endif
