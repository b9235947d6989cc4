/*
 * quality_html.h - the HTML page of `pixvec quality DB --html FILE` (cli
 * room): one self-contained page with a section of thumbnails per list of
 * the report, and a folder of JPEG thumbnails beside it named after the
 * page ("out/q.html" gets "out/q_files/", one "ID.jpg" per image shown), as
 * the dups report does.
 */
#ifndef PV_CLI_QUALITY_HTML_H
#define PV_CLI_QUALITY_HTML_H

#include <stddef.h>

#include "pixvec.h"

/* Write the page of q to file (written beside it and renamed, never left
 * half written) and its thumbnails; title (may be NULL) names the
 * collection. Each section shows at most QHTML_MAX_SHOWN images.
 * Returns 0 or -1 with err naming the file and the reason; on 0, err is ""
 * or a warning about thumbnails that could not be made (the page shows the
 * reason in their place). */
#define QHTML_MAX_SHOWN 200
int cli_quality_html(const char *file, const pv_quality *q, const char *title, char *err,
                     size_t errlen);

#endif
