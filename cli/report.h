/*
 * report.h - the HTML report of `pixvec dups DB --html FILE` (cli room).
 *
 * One self-contained page (inline CSS and a few lines of inline JS, nothing
 * fetched from the network) and a folder of JPEG thumbnails beside it, named
 * after the page: "out/report.html" gets "out/report_files/", with one
 * thumbnail per image named by item id ("123.jpg"), made by pv_thumbnail.
 */
#ifndef PV_CLI_REPORT_H
#define PV_CLI_REPORT_H

#include <stddef.h>

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

#endif
