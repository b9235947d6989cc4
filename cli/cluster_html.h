/*
 * cluster_html.h - the HTML page of `pixvec cluster DB --html FILE` (cli
 * room): one row per non-empty cluster, largest first, with its size, its
 * label mix (folder names) and the thumbnails of the members nearest its
 * centre, each linked to the original.
 */
#ifndef PV_CLI_CLUSTER_HTML_H
#define PV_CLI_CLUSTER_HTML_H

#include <stddef.h>

#include "pixvec.h"

#define CLUSTER_HTML_SHOW 12 /* thumbnails per cluster unless asked */

/* Write the page of cl to file (created or replaced whole, through a
 * temporary file renamed into place) and the thumbnails of the first show
 * members of every cluster (members are nearest the centre first) to the
 * folder beside it, named as report.h says. title may be NULL.
 *
 * Returns PV_OK or a negative PV_E* code with err naming the file or folder
 * and the reason. On PV_OK err is "" or a warning that some thumbnails could
 * not be made (their places on the page say why). */
int cli_cluster_html(const char *file, const pv_clustering *cl, const char *title,
                     size_t show, char *err, size_t errlen);

#endif
