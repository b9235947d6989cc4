/*
 * plot.h - pictures the command line draws (cli room): PNGs with cairo
 * (cli/draw.c) and self-contained HTML pages (cli/map_html.c). They work on
 * plain arrays the commands fill from the public API, so they know nothing
 * of the database.
 */
#ifndef PV_CLI_PLOT_H
#define PV_CLI_PLOT_H

#include <stddef.h>
#include <stdint.h>

/* A scatter of n points: a map of a collection (`pixvec map`). */
typedef struct cli_scatter {
    size_t n;
    int dims;                       /* 2 or 3 */
    const float *xyz;               /* n * dims coordinates */
    const uint32_t *label;          /* n label numbers < nlabels, or NULL (one colour) */
    const char *const *label_names; /* nlabels names (folder or "cluster 7") */
    uint32_t nlabels;
    const char *const *paths;       /* n image paths (the HTML page's hover and click) */
    const char *title;              /* e.g. "UMAP of 10,000 images" */
    const char *subtitle;           /* parameters, e.g. "n_neighbors 15, min_dist 0.1, seed 42" */
} cli_scatter;

/* Draw s as a PNG of width x height (0, 0: 1200 x 900) at dst, written
 * atomically. err names dst and the reason. Returns 0 or -1. */
int cli_scatter_png(const cli_scatter *s, const char *dst, int width, int height,
                    char *err, size_t errlen);

/* A histogram (the `dups` nearest-neighbour scores): values counted in bins
 * equal bins over [lo, hi] (outside clamped into the end bins; NaN skipped),
 * a vertical line at mark, counts on a log or linear scale. */
typedef struct cli_hist {
    const float *values;
    size_t n;
    float lo, hi;
    uint32_t bins;     /* 0 = 100 */
    float mark;        /* the threshold line (not drawn outside [lo, hi]) */
    int log_counts;
    const char *title; /* may be NULL */
    uint32_t width, height; /* 0 = 800 x 400 */
} cli_hist;
int cli_hist_png(const cli_hist *h, const char *dst, char *err, size_t errlen);

/* One self-contained HTML page showing s (canvas; zoom and pan; hover shows
 * the image and its path; a click opens the original), with thumbnails made
 * in a folder beside dst. Returns 0 or -1 with err set. */
int cli_map_html(const cli_scatter *s, const char *dst, char *err, size_t errlen);

#endif
