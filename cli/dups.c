/*
 * dups.c - `pixvec dups` and `pixvec undo-move`: the duplicate scan's
 * command line. The scan itself is pv_find_dups (engine/dups.c); this file
 * turns its groups into what people act on: a listing, keep and drop lists,
 * JSON, a histogram of nearest-neighbour similarities (text or PNG) for
 * choosing a threshold, the HTML report (report.c), and --move-to, which
 * moves the images to drop aside with an undo list and never deletes.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "names.h"
#include "plot.h"
#include "report.h"

typedef struct dups_args {
    pv_dups_opts o;
    const char *keep_file, *drop_file, *json_file, *html_file, *hist_png;
    const char *move_to, *undo_list;
    int json, exit_code, histogram;
} dups_args;

enum {
    OPT_FRACTION = 256, OPT_EXACT, OPT_APPROX, OPT_ACROSS, OPT_KEEP, OPT_PREFER,
    OPT_NEIGHBOURS, OPT_EF, OPT_HTML, OPT_HIST, OPT_HIST_PNG, OPT_MOVE_TO, OPT_UNDO_LIST,
};

static int parse_dups(const cli_cmd *c, int argc, char **argv, dups_args *a)
{
    static const struct option lo[] = {
        {"threshold", required_argument, NULL, 't'},
        {"fraction", required_argument, NULL, OPT_FRACTION},
        {"exact", no_argument, NULL, OPT_EXACT},
        {"approx", no_argument, NULL, OPT_APPROX},
        {"across", required_argument, NULL, OPT_ACROSS},
        {"keep", required_argument, NULL, OPT_KEEP},
        {"prefer", required_argument, NULL, OPT_PREFER},
        {"neighbours", required_argument, NULL, OPT_NEIGHBOURS},
        {"ef", required_argument, NULL, OPT_EF},
        {"keep-list", required_argument, NULL, 'K'},
        {"drop-list", required_argument, NULL, 'D'},
        {"json-out", required_argument, NULL, 'O'},
        {"html", required_argument, NULL, OPT_HTML},
        {"histogram", no_argument, NULL, OPT_HIST},
        {"histogram-png", required_argument, NULL, OPT_HIST_PNG},
        {"move-to", required_argument, NULL, OPT_MOVE_TO},
        {"undo-list", required_argument, NULL, OPT_UNDO_LIST},
        {"exit-code", no_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, {0}};
    double v;
    long n;
    int opt;
    memset(a, 0, sizeof *a);
    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "t:h", lo)) != -1) {
        switch (opt) {
        case 'j': a->json = 1; break;
        case 'x': a->exit_code = 1; break;
        case 'K': a->keep_file = optarg; break;
        case 'D': a->drop_file = optarg; break;
        case 'O': a->json_file = optarg; break;
        case OPT_HTML: a->html_file = optarg; break;
        case OPT_HIST: a->histogram = 1; break;
        case OPT_HIST_PNG: a->hist_png = optarg; break;
        case OPT_MOVE_TO: a->move_to = optarg; break;
        case OPT_UNDO_LIST: a->undo_list = optarg; break;
        case OPT_PREFER: a->o.prefer = optarg; break;
        case OPT_EXACT:
        case OPT_APPROX: {
            int mode = opt == OPT_EXACT ? PV_DUPS_EXACT : PV_DUPS_APPROX;
            if (a->o.mode && a->o.mode != mode) {
                cli_err(c->name, "--exact and --approx conflict: give one");
                cli_print_usage(stderr, c);
                return CLI_USAGE;
            }
            a->o.mode = mode;
            break;
        }
        case 'h': cli_print_help(stdout, c); return CLI_OK;
        case 't':
            /* (0, 1]: 0 would read as "the embedder's default" (pv_dups_opts),
             * and at or below 0 every pair is a "duplicate" anyway. */
            if (cli_parse_float(optarg, 1e-6, 1.0, &v) != 0)
                return cli_usage_err(c, "--threshold takes a similarity in (0, 1] (a cosine, or "
                                        "photo's pair score), not '%s'", optarg);
            a->o.threshold = (float)v;
            break;
        case OPT_FRACTION:
            if (cli_parse_float(optarg, 1e-9, 1.0, &v) != 0)
                return cli_usage_err(c, "--fraction takes a number in (0, 1], not '%s'", optarg);
            a->o.fraction = (float)v;
            break;
        case OPT_NEIGHBOURS:
        case OPT_EF:
            if (cli_parse_int(optarg, 1, 4096, &n) != 0)
                return cli_usage_err(c, "--neighbours and --ef take 1..4096, not '%s'", optarg);
            *(opt == OPT_EF ? &a->o.ef : &a->o.neighbours) = (uint32_t)n;
            break;
        case OPT_KEEP:
            if (strcmp(optarg, "largest") == 0)
                a->o.keep = PV_KEEP_LARGEST;
            else if (strcmp(optarg, "oldest") == 0)
                a->o.keep = PV_KEEP_OLDEST;
            else if (strcmp(optarg, "newest") == 0)
                a->o.keep = PV_KEEP_NEWEST;
            else
                return cli_usage_err(c, "--keep takes largest, oldest or newest, not '%s'",
                                     optarg);
            break;
        case OPT_ACROSS:
            /* Two folders: the option's argument and the word after it. */
            if (optind >= argc || argv[optind][0] == '-')
                return cli_usage_err(c, "--across takes two folders (A B), got only '%s'",
                                     optarg);
            a->o.across_a = optarg;
            a->o.across_b = argv[optind++];
            break;
        default: cli_print_usage(stderr, c); return CLI_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    if (a->o.threshold != 0 && a->o.fraction > 0)
        return cli_usage_err(c, "--threshold and --fraction conflict: give one%s", "");
    if (a->undo_list && !a->move_to)
        return cli_usage_err(c, "--undo-list applies to --move-to only%s", "");
    if ((a->o.neighbours || a->o.ef) && a->o.mode == PV_DUPS_EXACT)
        return cli_usage_err(c, "%s applies to the graph scan only, not --exact",
                             a->o.neighbours ? "--neighbours" : "--ef");
    return -1;
}

/* ---- outputs -------------------------------------------------------------- */

static int write_list(const char *file, const pv_dups *d, int keep, const char *cmd)
{
    FILE *f = fopen(file, "w");
    if (!f) {
        cli_err(cmd, "%s: %s", file, strerror(errno));
        return CLI_ERR;
    }
    for (size_t g = 0; g < d->ngroups; g++)
        for (size_t i = 0; i < d->groups[g].n; i++)
            if (d->groups[g].members[i].keep == keep) {
                /* One name a line: quoted when not plain, so a newline in
                 * a name cannot split it (names.h; cli_name_parse reads
                 * it back). */
                cli_name_print(f, d->groups[g].members[i].item.path);
                fputc('\n', f);
            }
    if (fclose(f) != 0) {
        cli_err(cmd, "%s: %s", file, strerror(errno));
        return CLI_ERR;
    }
    return CLI_OK;
}

static json_t *dups_json(const pv_dups *d, const dups_args *a)
{
    json_t *groups = json_array();
    for (size_t g = 0; g < d->ngroups; g++) {
        const pv_dup_group *gr = &d->groups[g];
        json_t *members = json_array();
        for (size_t i = 0; i < gr->n; i++) {
            json_t *m = cli_item_json(&gr->members[i].item);
            json_object_set_new(m, "score", json_real(gr->members[i].score));
            json_object_set_new(m, "exact", json_boolean(gr->members[i].exact));
            json_object_set_new(m, "keep", json_boolean(gr->members[i].keep));
            json_object_set_new(m, "representative", json_boolean(i == 0));
            json_array_append_new(members, m);
        }
        json_array_append_new(
            groups, json_pack("{s:i, s:s, s:o, s:f, s:o}", "group", (int)(g + 1), "kind",
                              gr->all_exact ? "exact" : "near", "keep",
                              cli_name_json(gr->members[0].item.path), "weakest",
                              (double)gr->weakest,
                              "members", members));
    }
    json_t *doc = json_pack(
        "{s:b, s:f, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o}", "ok", 1, "threshold",
        (double)d->threshold, "scan", d->approximate ? "approximate" : "exact", "scanned",
        (json_int_t)d->scanned, "groups_count", (json_int_t)d->ngroups, "images",
        (json_int_t)d->images, "to_drop", (json_int_t)d->dropped, "exact_images",
        (json_int_t)d->exact_images, "pairs", (json_int_t)d->pairs, "seconds", d->seconds,
        "gflops", d->gflops, "groups", groups);
    if (doc && a->o.across_a)
        json_object_set_new(doc, "across", json_pack("{s:o, s:o}", "a",
                                                     cli_name_json(a->o.across_a), "b",
                                                     cli_name_json(a->o.across_b)));
    return doc;
}

static void print_groups(const pv_dups *d, const dups_args *a)
{
    /* --histogram is for choosing a threshold: the summary, not the list. */
    for (size_t g = 0; g < d->ngroups && !a->histogram; g++) {
        const pv_dup_group *gr = &d->groups[g];
        printf("group %zu: %zu images (%s; weakest %.4f)\n", g + 1, gr->n,
               gr->all_exact ? "exact duplicates" : "near-duplicates", gr->weakest);
        for (size_t i = 0; i < gr->n; i++) {
            const pv_dup_member *m = &gr->members[i];
            char score[16];
            if (m->exact && i > 0)
                snprintf(score, sizeof score, "exact ");
            else if (i > 0)
                snprintf(score, sizeof score, "%.4f", m->score);
            else
                snprintf(score, sizeof score, "      ");
            printf("  %s  %s  %5ux%-5u  ", m->keep ? "keep" : "drop", score,
                   m->item.width, m->item.height);
            cli_name_print(stdout, m->item.path);
            putchar('\n');
        }
    }
    if (a->o.across_a) { /* members are B's images; kept ones (--prefer) count too */
        char *fa = cli_name_text(a->o.across_a), *fb = cli_name_text(a->o.across_b);
        printf("%llu of %llu %s under %s %s a near-duplicate under %s: "
               "%llu to drop (threshold %.4f; %llu %s; %s scan %.2f s)\n",
               (unsigned long long)(d->images - d->ngroups), (unsigned long long)d->scanned,
               cli_plural(d->scanned, "image", "images"), fb ? fb : "B",
               d->images - d->ngroups == 1 ? "has" : "have", fa ? fa : "A",
               (unsigned long long)d->dropped, d->threshold, (unsigned long long)d->pairs,
               cli_plural(d->pairs, "pair", "pairs"), d->approximate ? "graph" : "exact",
               d->seconds);
        free(fa);
        free(fb);
    } else
        printf("%zu %s, %llu %s, %llu to drop, %llu byte-identical (threshold "
               "%.4f; %llu %s scanned; %llu %s; %s scan %.2f s)\n",
               d->ngroups, cli_plural(d->ngroups, "group", "groups"),
               (unsigned long long)d->images, cli_plural(d->images, "image", "images"),
               (unsigned long long)d->dropped, (unsigned long long)d->exact_images,
               d->threshold, (unsigned long long)d->scanned,
               cli_plural(d->scanned, "image", "images"), (unsigned long long)d->pairs,
               cli_plural(d->pairs, "pair", "pairs"), d->approximate ? "graph" : "exact",
               d->seconds);
}

#define HIST_BINS 20

/* The histogram's left end: the 1st percentile of the nearest scores,
 * rounded down to 0.05, and never above the threshold. */
static float hist_lo(const pv_dups *d)
{
    size_t m = 0;
    float lo = 1.0f;
    for (uint64_t i = 0; i < d->scanned; i++)
        m += d->nn_score[i] > -1.0f;
    for (int step = 0; step <= 40; step++) {
        float t = 1.0f - 0.05f * (float)step;
        size_t below = 0;
        for (uint64_t i = 0; i < d->scanned; i++)
            below += d->nn_score[i] > -1.0f && d->nn_score[i] < t;
        lo = t;
        if (below <= m / 100)
            break;
    }
    if (d->threshold < lo)
        lo = floorf(d->threshold * 20.0f) / 20.0f;
    return lo < -1.0f ? -1.0f : lo;
}

typedef struct dups_hist {
    uint64_t cnt[HIST_BINS], above, none;
    float lo, w;
} dups_hist;

/* Each scanned image's nearest-neighbour similarity in HIST_BINS bins from
 * hist_lo() to 1 (lower scores in the first). */
static void hist_count(const pv_dups *d, dups_hist *h)
{
    memset(h, 0, sizeof *h);
    h->lo = hist_lo(d);
    h->w = (1.0f - h->lo) / HIST_BINS;
    for (uint64_t i = 0; i < d->scanned; i++) {
        float s = d->nn_score[i];
        if (!(s > -1.0f)) {
            h->none++;
            continue;
        }
        int b = h->w > 0 ? (int)((s - h->lo) / h->w) : 0;
        b = b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b;
        h->cnt[b]++;
        h->above += s >= d->threshold;
    }
}

/* The histogram in the JSON document: bins low to high with their edges. */
static json_t *hist_json(const pv_dups *d)
{
    dups_hist h;
    json_t *bins = json_array();
    hist_count(d, &h);
    for (int b = 0; b < HIST_BINS; b++)
        json_array_append_new(bins, json_pack("{s:f, s:f, s:I}", "from",
                                              (double)(h.lo + h.w * (float)b), "to",
                                              (double)(h.lo + h.w * (float)(b + 1)), "count",
                                              (json_int_t)h.cnt[b]));
    return json_pack("{s:f, s:I, s:I, s:I, s:o}", "threshold", (double)d->threshold, "images",
                     (json_int_t)d->scanned, "above_threshold", (json_int_t)h.above,
                     "no_neighbour", (json_int_t)h.none, "bins", bins);
}

/* The histogram as text, the threshold's bin marked. */
static void print_histogram(const pv_dups *d)
{
    dups_hist h;
    uint64_t *cnt = h.cnt, maxc = 1;
    hist_count(d, &h);
    const float lo = h.lo, w = h.w;
    const uint64_t above = h.above, none = h.none;
    for (int b = 0; b < HIST_BINS; b++)
        maxc = cnt[b] > maxc ? cnt[b] : maxc;
    printf("nearest-neighbour similarity of %llu %s (%s)\n",
           (unsigned long long)d->scanned, cli_plural(d->scanned, "image", "images"), d->approximate ? "from the graph" : "exact");
    for (int b = HIST_BINS - 1; b >= 0; b--) {
        float a0 = lo + w * (float)b, a1 = a0 + w;
        int bar = (int)((cnt[b] * 50 + maxc - 1) / maxc), mark = d->threshold >= a0 &&
                                                                 (d->threshold < a1 || b == HIST_BINS - 1);
        printf("  %s%.3f-%.3f %8llu |%.*s%s\n", b == 0 ? "<=" : "  ", a0, a1,
               (unsigned long long)cnt[b], bar,
               "##################################################", mark ? "  <- threshold" : "");
    }
    printf("%llu of %llu %s (%.2f %%) %s a neighbour >= %.4f%s\n",
           (unsigned long long)above, (unsigned long long)d->scanned,
           cli_plural(d->scanned, "image", "images"),
           d->scanned ? 100.0 * (double)above / (double)d->scanned : 0.0,
           above == 1 ? "has" : "have", d->threshold,
           none ? " (some had no neighbour scored)" : "");
}

/* ---- --move-to ------------------------------------------------------------ */

/* The deepest folder holding every live item: the collection's root. */
static int common_root(pv_db *db, char *root, size_t len)
{
    pv_item *items = NULL;
    size_t n = 0, keep = 0;
    int rc = pv_items(db, &items, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        pv_items_free(items, n);
        return PV_ENOTFOUND;
    }
    const char *first = items[0].path;
    char *slash = strrchr(first, '/');
    keep = slash ? (size_t)(slash - first) : 0;
    for (size_t i = 1; i < n; i++) {
        size_t j = 0;
        while (j < keep && items[i].path[j] == first[j])
            j++;
        /* Back to a folder boundary of both paths: /data/train/x and
         * /data/train2/y share "/data/train", but their folder is /data. */
        while (j > 0 && !(first[j] == '/' && items[i].path[j] == '/'))
            j--;
        keep = j;
    }
    if (keep + 1 > len) {
        pv_items_free(items, n);
        return PV_EINVAL;
    }
    if (keep == 0)
        snprintf(root, len, "/");
    else
        snprintf(root, len, "%.*s", (int)keep, first);
    pv_items_free(items, n);
    return PV_OK;
}

static int move_dropped(cli_ctx *ctx, const pv_dups *d, const dups_args *a, json_t *report)
{
    char root[PATH_MAX], undo[PATH_MAX + 64], err[PATH_MAX + 256] = "";
    const char **paths = NULL;
    size_t np = 0, moved = 0, failed = 0, removed = 0;
    int rc;
    if (d->dropped == 0) {
        if (!a->json)
            printf("nothing to move\n");
        return CLI_OK;
    }
    if ((rc = common_root(ctx->db, root, sizeof root)) != 0)
        return cli_fail("dups", a->json, "--move-to: %s", pv_strerror(rc));
    if (a->undo_list) {
        snprintf(undo, sizeof undo, "%s", a->undo_list);
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
        snprintf(undo, sizeof undo, "%s/pixvec-undo-%s.tsv", a->move_to, stamp);
    }
    paths = calloc(d->dropped, sizeof *paths);
    if (!paths)
        return cli_fail("dups", a->json, "out of memory");
    for (size_t g = 0; g < d->ngroups; g++)
        for (size_t i = 0; i < d->groups[g].n; i++)
            if (!d->groups[g].members[i].keep && np < d->dropped)
                paths[np++] = d->groups[g].members[i].item.path;
    rc = pv_move_files(paths, np, root, a->move_to, undo, &moved, &failed, err, sizeof err);
    if (rc != 0)
        cli_err("dups", "--move-to: %s (%zu %s not moved; the others were)", err, failed,
                cli_plural(failed, "file", "files"));
    /* The database follows the files: what moved is removed from it, in one
     * transaction (a file still in place stays). */
    size_t gone = 0;
    for (size_t i = 0; i < np; i++)
        if (access(paths[i], F_OK) != 0 && errno == ENOENT)
            paths[gone++] = paths[i];
    int rrc = pv_remove_many(ctx->db, paths, gone, &removed);
    if (rrc != 0) {
        cli_err("dups", "--move-to: the files moved, but removing them from the database "
                "failed: %s", cli_db_msg(ctx, rrc));
        rc = rrc;
    }
    if (a->json)
        json_object_set_new(report, "moved",
                            json_pack("{s:o, s:o, s:I, s:I, s:I}", "to",
                                      cli_name_json(a->move_to), "undo_list",
                                      cli_name_json(undo), "files", (json_int_t)moved, "failed",
                                      (json_int_t)failed, "removed_from_db", (json_int_t)removed));
    else if (moved > 0) {
        /* Every name in its text form (names.h). */
        char *fr = cli_name_text(root), *ft = cli_name_text(a->move_to),
             *fd = cli_name_text(ctx->dbpath ? ctx->dbpath : "DB"), *fu = cli_name_text(undo);
        printf("moved %zu %s from %s to %s (%zu failed); %zu removed from the database; "
               "undo: pixvec undo-move %s %s\n",
               moved, cli_plural(moved, "file", "files"), fr ? fr : "?", ft ? ft : "?",
               failed, removed, fd ? fd : "DB", fu ? fu : "?");
        free(fr);
        free(ft);
        free(fd);
        free(fu);
    } else
        printf("moved no files (%zu failed)\n", failed);
    free(paths);
    return rc == 0 ? CLI_OK : CLI_ERR;
}

/* ---- the command ------------------------------------------------------------ */

int cmd_dups(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("dups");
    dups_args a;
    pv_dups *d = NULL;
    json_t *doc = NULL;
    int rc = parse_dups(c, argc, argv, &a);
    if (rc != -1)
        return rc;
    if ((rc = cli_open(ctx, c, a.move_to ? CLI_OPEN_WRITE : CLI_OPEN_READ)) != CLI_OK)
        return rc;
    if ((rc = pv_find_dups(ctx->db, &a.o, &d)) != 0)
        return cli_fail(c->name, a.json, "%s", cli_db_msg(ctx, rc));
    rc = CLI_OK;
    if (a.keep_file)
        rc |= write_list(a.keep_file, d, 1, c->name);
    if (a.drop_file)
        rc |= write_list(a.drop_file, d, 0, c->name);
    if (a.json_file) {
        json_t *f = dups_json(d, &a);
        if (!f || json_dump_file(f, a.json_file, JSON_INDENT(2) | JSON_REAL_PRECISION(7)) != 0) {
            cli_err(c->name, "%s: could not write JSON", a.json_file);
            rc |= CLI_ERR;
        }
        json_decref(f);
    }
    if (a.html_file) {
        char err[PATH_MAX + 256] = "", title[PATH_MAX + 64];
        char *db = cli_name_text(ctx->dbpath ? ctx->dbpath : "");
        snprintf(title, sizeof title, "pixvec dups: %s", db ? db : "");
        free(db);
        if (cli_report_html(a.html_file, d, title, err, sizeof err) != 0) {
            cli_err(c->name, "--html: %s", err);
            rc |= CLI_ERR;
        } else if (err[0]) {
            cli_err(c->name, "--html: %s", err); /* thumbnails that failed: a warning */
        }
    }
    if (a.json) {
        doc = dups_json(d, &a);
        if (doc && (a.histogram || a.o.fraction > 0))
            json_object_set_new(doc, "histogram", hist_json(d));
    } else
        print_groups(d, &a);
    if (!a.json && (a.histogram || a.o.fraction > 0))
        print_histogram(d);
    if (a.hist_png) {
        char err[PATH_MAX + 256], title[160];
        snprintf(title, sizeof title, "nearest-neighbour similarity, %llu images, threshold %.4f",
                 (unsigned long long)d->scanned, d->threshold);
        cli_hist p = {.values = d->nn_score, .n = d->scanned, .lo = hist_lo(d), .hi = 1.0f,
                      .bins = 100, .mark = d->threshold, .log_counts = 1, .title = title};
        if (cli_hist_png(&p, a.hist_png, err, sizeof err) != 0) {
            cli_err(c->name, "--histogram-png: %s", err);
            rc |= CLI_ERR;
        }
    }
    if (a.move_to)
        rc |= move_dropped(ctx, d, &a, doc);
    if (a.json)
        cli_print_json(doc);
    if (rc == CLI_OK && a.exit_code && d->ngroups > 0)
        rc = CLI_FOUND;
    pv_dups_free(d);
    return rc ? (rc == CLI_FOUND ? CLI_FOUND : CLI_ERR) : CLI_OK;
}

/* ---- undo-move -------------------------------------------------------------- */

int cmd_undo_move(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};
    const cli_cmd *c = cli_find("undo-move");
    char err[PATH_MAX + 256] = "", *line = NULL;
    size_t restored = 0, failed = 0, np = 0, cap = 0, linecap = 0, already = 0;
    char **paths = NULL;
    int json = 0, opt, rc, status = CLI_OK;
    FILE *f;
    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "h", lo)) != -1) {
        if (opt == 'j')
            json = 1;
        else if (opt == 'h') {
            cli_print_help(stdout, c);
            return CLI_OK;
        } else {
            cli_print_usage(stderr, c);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc)
        return cli_usage_err(c, "name one undo list (%s)", "pixvec-undo-*.tsv");
    if ((rc = cli_open(ctx, c, CLI_OPEN_WRITE)) != CLI_OK)
        return rc;
    /* The sources, read before the undo: they are added back afterwards. */
    if (!(f = fopen(argv[optind], "r")))
        return cli_fail(c->name, json, "%s: %s", argv[optind], strerror(errno));
    /* A line is "DEST\tSOURCE\n", a path quoted when it holds a control
     * byte (engine/move.c), so no tab or newline is ever inside a field. */
    ssize_t got;
    while ((got = getline(&line, &linecap, f)) > 0) {
        char *tab = memchr(line, '\t', (size_t)got), *nl = memchr(line, '\n', (size_t)got);
        if (!tab || !nl || nl < tab)
            continue;
        {
            /* DEST gone and SOURCE there: back already (pv_undo_moves
             * counts it as restored; this run did not move it). */
            char *dest = NULL, *src = NULL;
            struct stat sd, ss;
            if (cli_name_parse(line, (size_t)(tab - line), &dest) == 0 &&
                cli_name_parse(tab + 1, (size_t)(nl - tab - 1), &src) == 0 && dest && src)
                already += lstat(dest, &sd) != 0 && errno == ENOENT && lstat(src, &ss) == 0;
            free(dest);
            free(src);
        }
        if (np == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            char **pp = realloc(paths, ncap * sizeof *pp);
            if (!pp)
                break;
            paths = pp;
            cap = ncap;
        }
        if (cli_name_parse(tab + 1, (size_t)(nl - tab - 1), &paths[np]) == -2)
            break;
        np += paths[np] != NULL; /* a malformed line: pv_undo_moves reports it */
    }
    free(line);
    fclose(f);
    rc = pv_undo_moves(argv[optind], &restored, &failed, err, sizeof err);
    if (rc != 0) {
        cli_err(c->name, "%s (%zu %s not restored)", err, failed,
                cli_plural(failed, "file", "files"));
        status = CLI_ERR;
    }
    already = already < restored ? already : restored;
    restored -= already; /* moved back by this run */
    pv_add_stats st;
    memset(&st, 0, sizeof st);
    size_t back = 0;
    for (size_t i = 0; i < np; i++)
        if (access(paths[i], F_OK) == 0)
            paths[back++] = paths[i];
        else
            free(paths[i]);
    pv_add_opts ao = {.threads = 0};
    if (back > 0 && (rc = pv_add(ctx->db, (const char *const *)paths, back, &ao, &st)) != 0 &&
        rc != PV_EDECODE) {
        cli_err(c->name, "adding the restored files back: %s", cli_db_msg(ctx, rc));
        status = CLI_ERR;
    }
    if (json)
        cli_print_json(json_pack("{s:b, s:I, s:I, s:I, s:I}", "ok", status == CLI_OK,
                                 "restored", (json_int_t)restored, "already_back",
                                 (json_int_t)already, "failed", (json_int_t)failed, "added",
                                 (json_int_t)st.added));
    else if (restored == 0 && failed == 0 && already == 0)
        printf("nothing to restore: %s names no file\n", argv[optind]);
    else if (restored == 0 && failed == 0)
        printf("nothing to restore: %s %zu %s already back%s\n", already == 1 ? "the" : "all",
               already, cli_plural(already, "file is", "files are"),
               st.added ? "; added back to the database" : "");
    else
        printf("restored %zu %s (%zu failed%s); %llu added back to the database\n", restored,
               cli_plural(restored, "file", "files"), failed,
               already ? ", the others were back already" : "",
               (unsigned long long)st.added);
    for (size_t i = 0; i < back; i++)
        free(paths[i]);
    free(paths);
    return status;
}
