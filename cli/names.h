/*
 * names.h - file names as the command line shows them (names.c).
 *
 * A file name is bytes: any byte but '/' and NUL, UTF-8 or not. pixvec
 * stores, matches and moves those bytes as they are; only when it shows a
 * name does it pick one of two forms, the same in every output:
 *
 *  - plain: valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 *    past U+10FFFF), no control byte (0x00-0x1F, 0x7F), not beginning with
 *    '"'. Shown unchanged.
 *  - quoted (git's core.quotePath style, without octal): in double quotes,
 *    \\ for a backslash, \" for a double quote, \t \n \r for those, \xHH
 *    (two lowercase hex digits) for every other control byte and for every
 *    byte that is not part of a valid UTF-8 sequence; valid multi-byte
 *    characters stay. "caf\xe9.jpg", "a\tb.jpg".
 *
 * Text (stdout, lists, CSV, HTML text) uses plain-or-quoted. JSON gives the
 * exact name whenever it is valid UTF-8 and does not begin with '"' (JSON
 * escapes control characters itself), the quoted form otherwise; so a JSON
 * path value that begins with '"' is always the quoted form.
 */
#ifndef PV_CLI_NAMES_H
#define PV_CLI_NAMES_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The length of the valid UTF-8 character at s[0..n) (1..4; 1 for an
 * ASCII byte), 0 when none (a NUL, a byte that starts no valid sequence, or
 * a sequence cut by n). Also declared in cli.h, for run.c. */
size_t cli_utf8_len(const unsigned char *s, size_t n);
/* 1 if the NUL-terminated s is valid UTF-8. */
int cli_utf8_valid(const char *s);

/* 1 if name is shown as it is (see above); NULL is not plain. */
int cli_name_is_plain(const char *name);

/* The text form of name (itself when plain, else quoted), malloc'd; NULL
 * only when out of memory. */
char *cli_name_text(const char *name);

/* name's text form on f. */
void cli_name_print(FILE *f, const char *name);

/* name as a JSON string value by the JSON rule; NULL only when out of
 * memory (json_pack's "o" then fails the whole document, as it should). */
json_t *cli_name_json(const char *name);

/* Messages, which may hold a name's raw bytes, go into JSON through
 * cli_text_json (cli.h, run.c): valid UTF-8 kept, other bytes as \xHH. */

/* HTML pages show a name through cli_html_name (report.h): its text form,
 * HTML-escaped. */

/* Read one name written in either form: s[0..len) is plain (taken as it
 * is) or begins with '"' (a quoted form that must end at s[len-1]). The
 * bytes in a malloc'd NUL-terminated *out. 0, -1 when the quoted form is
 * malformed or holds \x00, -2 out of memory. */
int cli_name_parse(const char *s, size_t len, char **out);

#endif
