/*
 * quality.c - `pixvec quality DB`: the dataset report to read before
 * training (cli room).
 *
 * pv_quality_report does the work (outliers, label-noise suspects by the
 * neighbours' folder labels, blank, dark, bright, tiny and unreadable
 * images, byte-identical copies); this file prints it: a readable text
 * report (each section's count, then its first --top images), --json (every
 * list whole, outliers the --top lowest), and --html F, a page of
 * thumbnails per section (quality_html.c).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "quality_html.h"

typedef struct quality_args {
    pv_quality_opts o;
    int json;
    const char *html;
} quality_args;

static int parse_args(const cli_cmd *c, int argc, char **argv, quality_args *a)
{
    static const struct option lo[] = {{"k", required_argument, NULL, 'k'},
                                       {"top", required_argument, NULL, 'n'},
                                       {"vote", required_argument, NULL, 'v'},
                                       {"tiny", required_argument, NULL, 't'},
                                       {"blank-std", required_argument, NULL, 'b'},
                                       {"dark", required_argument, NULL, 'd'},
                                       {"bright", required_argument, NULL, 'B'},
                                       {"no-pixels", no_argument, NULL, 'P'},
                                       {"threads", required_argument, NULL, 'T'},
                                       {"html", required_argument, NULL, 'H'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    int opt, rc = 0;
    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "k:h", lo)) != -1) {
        switch (opt) {
        case 'j': a->json = 1; break;
        case 'P': a->o.no_pixels = 1; break;
        case 'H': a->html = optarg; break;
        case 'h': cli_print_help(stdout, c); return -1;
        case 'k': rc = cli_opt_int(c, "--k", optarg, 1, 100, &a->o.k); break;
        case 'n': rc = cli_opt_int(c, "--top", optarg, 1, 1000000, &a->o.top); break;
        case 'v': rc = cli_opt_float(c, "--vote", optarg, 0.5001, 1, &a->o.vote); break;
        case 't': rc = cli_opt_int(c, "--tiny", optarg, 1, 65535, &a->o.tiny_side); break;
        case 'b': rc = cli_opt_float(c, "--blank-std", optarg, 0.0001, 0.9999, &a->o.blank_std); break;
        case 'd': rc = cli_opt_float(c, "--dark", optarg, 0.0001, 0.9999, &a->o.dark_mean); break;
        case 'B': rc = cli_opt_float(c, "--bright", optarg, 0.0001, 0.9999, &a->o.bright_mean); break;
        case 'T': rc = cli_opt_int(c, "--threads", optarg, 1, 64, &a->o.threads); break;
        default: cli_print_usage(stderr, c); return CLI_USAGE;
        }
        if (rc != 0)
            return rc;
    }
    if (optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    if (a->o.no_pixels && (a->o.blank_std > 0 || a->o.dark_mean > 0 || a->o.bright_mean > 0))
        return cli_usage_err(c, "%s applies to the grey statistics, which --no-pixels skips",
                             a->o.blank_std > 0 ? "--blank-std"
                             : a->o.dark_mean > 0 ? "--dark" : "--bright");
    /* The engine's defaults (pixvec.h): 0.08 and 0.92. */
    float dark = a->o.dark_mean > 0 ? a->o.dark_mean : 0.08f,
          bright = a->o.bright_mean > 0 ? a->o.bright_mean : 0.92f;
    if (dark >= bright) {
        cli_err(c->name, "--dark %g must be below --bright %g", (double)dark, (double)bright);
        cli_print_usage(stderr, c);
        return CLI_USAGE;
    }
    return 0;
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *item_json(const pv_quality_item *it)
{
    json_t *o = json_pack("{s:I, s:o, s:f, s:f, s:i, s:i, s:o}", "id", (json_int_t)it->id,
                          "path", cli_name_json(it->path), "score", (double)it->score, "nn",
                          (double)it->nn, "width", (int)it->width, "height", (int)it->height,
                          "label", cli_name_json(it->label ? it->label : ""));
    if (!o)
        return NULL;
    if (it->mean >= 0) {
        json_object_set_new(o, "mean", json_real(it->mean));
        json_object_set_new(o, "std", json_real(it->std));
    }
    if (it->suggested) {
        json_object_set_new(o, "suggested", cli_name_json(it->suggested));
        json_object_set_new(o, "vote", json_real(it->vote));
    }
    if (it->reason) {
        json_object_set_new(o, "error", json_string(pv_strerror(it->err)));
        json_object_set_new(o, "reason", cli_text_json(it->reason));
    }
    return o;
}

static json_t *list_json(const pv_quality_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++)
        json_array_append_new(a, item_json(&l->items[i]));
    return a;
}

static json_t *quality_json(const pv_quality *q)
{
    json_t *doc = json_pack(
        "{s:b, s:I, s:I, s:I, s:i, s:f, s:f, s:f, s:i, s:I, s:f, s:f, s:f, s:f}", "ok", 1, "items",
        (json_int_t)q->items, "labels", (json_int_t)q->nlabels, "decoded", (json_int_t)q->decoded,
        "k", q->k, "vote", (double)q->vote, "nn_median", (double)q->nn_median, "nn_p01",
        (double)q->nn_p01, "tiny_below", (int)q->tiny_below, "exact_copies",
        (json_int_t)q->exact_copies, "seconds", q->seconds, "blank_std", (double)q->blank_std,
        "dark_mean", (double)q->dark_mean, "bright_mean", (double)q->bright_mean);
    if (!doc)
        return NULL;
    json_object_set_new(doc, "outliers", list_json(&q->outliers));
    json_object_set_new(doc, "suspects", list_json(&q->suspects));
    json_object_set_new(doc, "blank", list_json(&q->blank));
    json_object_set_new(doc, "dark", list_json(&q->dark));
    json_object_set_new(doc, "bright", list_json(&q->bright));
    json_object_set_new(doc, "tiny", list_json(&q->tiny));
    json_object_set_new(doc, "unreadable", list_json(&q->unreadable));
    return doc;
}

/* ---- text ----------------------------------------------------------------- */

enum { K_OUT, K_SUS, K_BLANK, K_MEAN, K_TINY, K_UNREAD };

/* The first `top` images of l, one line each, then how many were left out. */
static void lines(const pv_quality_list *l, int kind, int top)
{
    const size_t s = l->n < (size_t)top ? l->n : (size_t)top;
    for (size_t i = 0; i < s; i++) {
        const pv_quality_item *it = &l->items[i];
        /* Names and labels in their text form (names.h). */
        char *path = cli_name_text(it->path), *label = NULL, *sugg = NULL;
        const char *p = path ? path : "?";
        switch (kind) {
        case K_OUT: printf("  %.3f  %s\n", (double)it->nn, p); break;
        case K_SUS:
            label = cli_name_text(it->label);
            sugg = cli_name_text(it->suggested);
            printf("  %.2f  %s  in %s, looks like %s\n", (double)it->vote, p,
                   label ? label : "?", sugg ? sugg : "?");
            break;
        case K_BLANK:
            printf("  std %.3f, mean %.3f  %s\n", (double)it->std, (double)it->mean, p);
            break;
        case K_MEAN: printf("  mean %.3f  %s\n", (double)it->mean, p); break;
        case K_TINY: printf("  %ux%u  %s\n", it->width, it->height, p); break;
        default: printf("  %s: %s\n", p, it->reason); break;
        }
        free(path);
        free(label);
        free(sugg);
    }
    if (l->n > s && kind != K_OUT)
        printf("  ... and %zu more (--json lists them all)\n", l->n - s);
}

static void print_text(const char *dbpath, const pv_quality *q, int no_pixels, int top)
{
    fputs("quality of ", stdout);
    cli_name_print(stdout, dbpath);
    printf(": %zu %s in %zu folder%s, %zu decoded (%.2f s)\n", q->items,
           cli_plural(q->items, "image", "images"), q->nlabels, q->nlabels == 1 ? "" : "s",
           q->decoded, q->seconds);
    if (q->nn_median >= 0)
        printf("similarity to the nearest other image: median %.3f, 1st percentile %.3f\n",
               (double)q->nn_median, (double)q->nn_p01);
    printf("byte-identical copies: %llu%s\n", (unsigned long long)q->exact_copies,
           q->exact_copies ? " (`pixvec dups` groups them)" : "");

    printf("\noutliers (least like their nearest other image): %zu shown\n", q->outliers.n);
    lines(&q->outliers, K_OUT, top);
    if (q->nlabels >= 2) {
        printf("\nlabel-noise suspects (k=%d neighbours give another folder >= %.0f%% of the "
               "vote; likeliest errors first): %zu\n",
               q->k, 100.0 * q->vote, q->suspects.n);
        lines(&q->suspects, K_SUS, top);
    } else {
        printf("\nlabel-noise suspects: none looked for (%zu folder label%s; images in class "
               "folders are needed)\n",
               q->nlabels, q->nlabels == 1 ? "" : "s");
    }
    if (q->decoded == 0 && q->items > 0) {
        printf("\npixels not decoded%s: no blank, dark, bright or unreadable lists\n",
               no_pixels ? " (--no-pixels)" : "");
    } else {
        printf("\nblank or uniform (grey standard deviation below %g): %zu\n",
               (double)q->blank_std, q->blank.n);
        lines(&q->blank, K_BLANK, top);
        printf("very dark (mean grey below %g): %zu\n", (double)q->dark_mean, q->dark.n);
        lines(&q->dark, K_MEAN, top);
        printf("very bright (mean grey above %g): %zu\n", (double)q->bright_mean, q->bright.n);
        lines(&q->bright, K_MEAN, top);
    }
    printf("tiny (shorter side below %u px): %zu\n", q->tiny_below, q->tiny.n);
    lines(&q->tiny, K_TINY, top);
    if (q->decoded > 0 || q->unreadable.n > 0) {
        printf("unreadable now: %zu\n", q->unreadable.n);
        lines(&q->unreadable, K_UNREAD, top);
    }
}

int cmd_quality(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("quality");
    quality_args a;
    pv_quality *q = NULL;
    char err[1024] = "";
    int rc;
    memset(&a, 0, sizeof a);
    if ((rc = parse_args(c, argc, argv, &a)) != 0)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = cli_open(ctx, c, CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = pv_quality_report(ctx->db, &a.o, &q)) != 0)
        return cli_fail(c->name, a.json, "%s", cli_db_msg(ctx, rc));
    if (a.html && cli_quality_html(a.html, q, ctx->dbpath, err, sizeof err) != 0) {
        rc = cli_fail(c->name, a.json, "--html: %s", err);
        goto done;
    }
    if (a.html && err[0])
        fprintf(stderr, "pixvec: quality: %s\n", err);
    if (a.json) {
        rc = cli_print_json(quality_json(q));
        goto done;
    }
    print_text(ctx->dbpath ? ctx->dbpath : "the database", q, a.o.no_pixels,
               a.o.top ? a.o.top : 20);
    if (a.html)
        printf("\nwrote %s\n", a.html);
    rc = CLI_OK;
done:
    pv_quality_free(q);
    return rc;
}
