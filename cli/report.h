/*
 * report.h - the HTML report of `pixvec dups DB --html FILE` (cli room).
 *
 * One self-contained page (inline CSS and a few lines of inline JS, nothing
 * fetched from the network) and a folder of JPEG thumbnails beside it, named
 * after the page: "out/report.html" gets "out/report_files/", with one
 * thumbnail per image named by item id ("123.jpg"), made by pv_thumbnail.
 *
 * Below it, the parts the other pages (map_html.c, cluster_html.c) share
 * with it: escaping, the page's temporary file and thumbnail folder, the
 * thumbnail pool, the colours, the common style and the thumbnail script.
 */
#ifndef PV_CLI_REPORT_H
#define PV_CLI_REPORT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pixvec.h"

#define REPORT_THUMB_SIDE 160 /* longer side of a thumbnail, pixels */
#define REPORT_THUMB_QUALITY 80

/* Write the report of d to file (created or replaced whole: written to a
 * temporary file beside it and renamed) and its thumbnails to the folder
 * beside it (created if missing; other files in it are left alone). title
 * (may be NULL) heads the page. A thumbnail that cannot be made does not
 * stop the report: the page shows a box with the reason in its place.
 *
 * Returns PV_OK or a negative PV_E* code with err naming the file or folder
 * and the reason. On PV_OK, err is "" when every thumbnail was made, else a
 * warning such as "2 of 40 thumbnails could not be made (first: PATH:
 * REASON)" that the caller may print.
 *
 * Thumbnails are made on a few threads (at most one per online core); the
 * function is otherwise single-threaded and keeps no state between calls. */
int cli_report_html(const char *file, const pv_dups *d, const char *title,
                    char *err, size_t errlen);

/* ---- shared by the HTML pages (report.c, map_html.c, cluster_html.c) ---- */

/* Format a message into err (errlen bytes; nothing when err is NULL). */
void cli_page_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Text and attribute values: & < > " ' as entities, control bytes as
 * U+FFFD. Not for file names: those go through cli_html_name. */
void cli_html_esc(FILE *f, const char *s);

/* A file name (or a part of one, a folder label) in visible text or an
 * attribute: its text form (names.h: itself when plain, else quoted with
 * \xHH escapes), HTML-escaped. Exact for every name, and valid UTF-8. */
void cli_html_name(FILE *f, const char *name);

/* A path percent-encoded for a URL: '/' and RFC 3986's unreserved
 * characters stay, every other byte (UTF-8 bytes too) becomes %XX; the
 * result is also safe inside an HTML attribute. */
void cli_url_esc(FILE *f, const char *s);

/* "file://" and path percent-encoded; a relative path is put below cwd
 * (may be NULL) first, so the link points at the file. */
void cli_file_url(FILE *f, const char *path, const char *cwd);

/* A page being written: a temporary file beside the page and the
 * thumbnail folder beside it ("out/map.html" gets "out/map_files/"). */
typedef struct cli_page {
    const char *file;   /* the page, as given */
    FILE *f;            /* the temporary file; write the page here */
    char *dir;          /* the thumbnail folder's path */
    char *base;         /* its last component, for relative links */
    char *cwd;          /* the working directory, or NULL */
    char tmp[PATH_MAX]; /* the temporary file's path; "" once renamed */
} cli_page;

/* Make the thumbnail folder (an existing one is kept) and open the
 * temporary file. On failure err names the file or folder; call
 * cli_page_close in any case. */
int cli_page_open(cli_page *p, const char *file, char *err, size_t errlen);

/* The same for a plain file (a PNG, a CSV): only the temporary file beside
 * it, written through p->f and put in place by cli_page_commit. */
int cli_file_open(cli_page *p, const char *file, char *err, size_t errlen);

/* Flush, sync and rename the temporary file onto the page, then sync the
 * folder so the rename survives a crash. */
int cli_page_commit(cli_page *p, char *err, size_t errlen);

/* Free p; the temporary file is removed unless committed. NULL is fine. */
void cli_page_close(cli_page *p);

/* One thumbnail to make: src to "DIR/NAME.jpg". */
typedef struct cli_thumb {
    const char *src;
    uint32_t name;
    int rc;       /* pv_thumbnail's result */
    char *reason; /* malloc'd message when rc != 0 (NULL: out of memory) */
} cli_thumb;

/* Make every job's thumbnail (longer side side pixels) in dir, on up to one
 * thread per online core. Returns how many failed; on failure err gets
 * "F of N thumbnails could not be made (first: PATH: REASON)", else "". */
size_t cli_thumbs_make(cli_thumb *jobs, size_t n, const char *dir,
                       uint32_t side, char *err, size_t errlen);

/* The <img class="thumb"> of t (DIR/NAME.jpg, base the folder's name
 * relative to the page; lazy; alt text the file name of t->src), or, when it
 * was not made, a <div class="missing"> saying why. */
void cli_thumb_html(FILE *f, const cli_thumb *t, const char *base);

/* Free the reasons of n jobs (not the array). */
void cli_thumbs_free(cli_thumb *jobs, size_t n);

/* The reason a thumbnail was not made, without a leading "PATH: " (the
 * page shows the path already). */
const char *cli_thumb_reason(const cli_thumb *t);

/* The pages' categorical colours, those of the map PNG (cli/draw.c):
 * matplotlib's tab10 without its grey, then ten more picked to be far apart
 * in CIELAB; labels past them are grey (CLI_COLOUR_OTHER). */
#define CLI_NCOLOURS 20
#define CLI_COLOUR_OTHER "#9a9a9a"
extern const char *const cli_palette[CLI_NCOLOURS];

/* The colour of each of nl labels with counts[k] points, by draw.c's rule:
 * up to CLI_NCOLOURS labels take the palette in label order; past that the
 * CLI_NCOLOURS most populous (ties: lower label) take it, in label order,
 * and the rest CLI_COLOUR_OTHER. colour[k] points at a static string. */
int cli_label_colours(const size_t *counts, uint32_t nl, const char **colour);
/* The same as palette indexes: colour[k] in 0..CLI_NCOLOURS-1, or -1 for
 * grey (cli/draw.c's PNG). */
int cli_label_colour_index(const size_t *counts, uint32_t nl, int *colour);

/* The style the dups and cluster pages share: body, header, h1, the
 * .summary boxes, .legend, main, .missing and .empty. */
extern const char cli_page_css[];

/* Inline script for a page of <img class="thumb"> elements: counts them into
 * <body data-thumbs data-loaded data-broken>, replaces a broken one by a box
 * saying so, and with "#eager" in the URL loads every one at once. */
extern const char cli_thumbs_js[];

#endif
