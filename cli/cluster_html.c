/*
 * cluster_html.c - the page of `pixvec cluster DB --html FILE` (cli room;
 * cluster_html.h).
 *
 * k-means clusters are judged by looking at them, so the page shows each
 * non-empty cluster as one row, largest first: a heading "cluster 7 - 312
 * images", its label mix (the folders its images sit in, by the ImageFolder
 * convention: the three most common with counts and shares, the rest as
 * "other", and a bar of the same shares), then the thumbnails of the members
 * nearest its centre (pv_cluster_get orders them so), each showing its path
 * on hover and linked to the original. A summary at the top gives k, the
 * images, the non-empty clusters and, when folders name classes, the purity
 * (the share of images in their cluster's most common folder), computed as
 * `pixvec cluster` prints it.
 *
 * Design: the dups report's (report.c): plain HTML with inline CSS and the
 * shared thumbnail-counting script, thumbnails made by pv_thumbnail on one
 * thread per core into the folder beside the page, named by item id, fetched
 * lazily. Folders are coloured as the map colours them (cli_label_colours),
 * in the order of their names. Folder names become label numbers by sorting every member's folder
 * name once (no hash table); each cluster's mix is then a sort of its
 * members' numbers and a count of the runs, so the work is O(n log n)
 * whatever k and the number of folders.
 */
#include "cli.h"
#include "cluster_html.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define CLUSTER_MIX_TOP 3 /* folders named in a mix; the rest are "other" */

/* A folder name: a piece of a path, not NUL-terminated. */
typedef struct cl_name {
    const char *s;
    size_t len;
} cl_name;

typedef struct cl_count {
    uint32_t label;
    size_t n;
} cl_count;

/* A non-empty cluster and its size, for the page's order. */
typedef struct cl_rank {
    size_t n;
    int j;
} cl_rank;

/* What the page needs besides the clustering. */
typedef struct cl_ctx {
    const pv_clustering *cl;
    size_t show;
    cl_name *labels;    /* distinct folder names, sorted */
    size_t nlabels;
    int with_labels;    /* folders split the images (2 or more, not one each) */
    uint32_t **lab;     /* lab[j][i]: the label of cluster j's member i */
    size_t *count;      /* images per label */
    const char **colour; /* per label, as the map's (cli_label_colours) */
    const cli_page *pg;
} cl_ctx;

/* ---- labels ------------------------------------------------------------------ */

/* The name of the folder path sits in (cli_folder_label). */
static cl_name cl_folder(const char *path)
{
    cl_name r;
    r.s = cli_folder_label(path, &r.len);
    return r;
}

static int cl_name_cmp(const void *a, const void *b)
{
    const cl_name *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static int cl_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* Larger counts first, then by label. */
static int cl_count_cmp(const void *a, const void *b)
{
    const cl_count *x = a, *y = b;

    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return (x->label > y->label) - (x->label < y->label);
}

/* Number every member's folder: c->labels (sorted, distinct) and c->lab. */
static int cl_label_all(cl_ctx *c)
{
    const pv_clustering *cl = c->cl;
    size_t total = 0, i, u;
    int j;

    for (j = 0; j < cl->k; j++)
        total += cl->clusters[j].n;
    c->labels = calloc(total > 0 ? total : 1, sizeof *c->labels);
    c->lab = calloc((size_t)cl->k, sizeof *c->lab);
    if (c->labels == NULL || c->lab == NULL)
        return PV_ENOMEM;
    for (j = 0, u = 0; j < cl->k; j++)
        for (i = 0; i < cl->clusters[j].n; i++)
            c->labels[u++] = cl_folder(cl->clusters[j].members[i].path);
    qsort(c->labels, total, sizeof *c->labels, cl_name_cmp);
    for (i = 0, u = 0; i < total; i++)
        if (u == 0 || cl_name_cmp(&c->labels[u - 1], &c->labels[i]) != 0)
            c->labels[u++] = c->labels[i];
    c->nlabels = u;
    c->with_labels = u >= 2 && u < cl->items;
    c->count = calloc(u > 0 ? u : 1, sizeof *c->count);
    c->colour = calloc(u > 0 ? u : 1, sizeof *c->colour);
    if (c->count == NULL || c->colour == NULL)
        return PV_ENOMEM;
    for (j = 0; j < cl->k; j++) {
        const pv_cluster *cj = &cl->clusters[j];
        c->lab[j] = calloc(cj->n > 0 ? cj->n : 1, sizeof **c->lab);
        if (c->lab[j] == NULL)
            return PV_ENOMEM;
        for (i = 0; i < cj->n; i++) {
            cl_name key = cl_folder(cj->members[i].path);
            const cl_name *hit = bsearch(&key, c->labels, c->nlabels,
                                         sizeof *c->labels, cl_name_cmp);
            c->lab[j][i] = (uint32_t)(hit - c->labels); /* always found */
            c->count[c->lab[j][i]]++;
        }
    }
    return cli_label_colours(c->count, (uint32_t)c->nlabels, c->colour);
}

/* Cluster j's mix into mix (room for its n members): labels and counts,
 * most common first. Returns the number of labels. scratch holds n. */
static size_t cl_mix(const cl_ctx *c, int j, cl_count *mix, uint32_t *scratch)
{
    size_t n = c->cl->clusters[j].n, i, m = 0;

    memcpy(scratch, c->lab[j], n * sizeof *scratch);
    qsort(scratch, n, sizeof *scratch, cl_u32_cmp);
    for (i = 0; i < n; i++) {
        if (m == 0 || mix[m - 1].label != scratch[i])
            mix[m++] = (cl_count){scratch[i], 0};
        mix[m - 1].n++;
    }
    qsort(mix, m, sizeof *mix, cl_count_cmp);
    return m;
}

/* ---- the page ------------------------------------------------------------------ */

/* After report.c's cli_page_css. */
static const char cluster_css[] =
    ".cluster{background:#fff;border:1px solid #d0d7de;border-radius:8px;"
    "margin:14px 0;padding:10px 14px}\n"
    ".cluster h2{margin:0 0 4px;font-size:15px;font-weight:600}\n"
    ".mix{display:flex;flex-wrap:wrap;align-items:center;gap:4px 14px;"
    "margin:0 0 8px;font-size:13px}\n"
    ".mix .l{display:inline-flex;align-items:center;gap:5px}\n"
    ".mix i{display:inline-block;width:10px;height:10px;border-radius:50%}\n"
    ".mix .pct{color:#57606a}\n"
    ".bar{display:flex;width:240px;height:8px;border-radius:4px;overflow:hidden;"
    "background:#d0d7de}\n"
    /* one row a cluster: it scrolls sideways rather than wrap */
    ".row{display:flex;gap:8px;overflow-x:auto;padding-bottom:4px}\n"
    "a.t{position:relative;display:flex;align-items:center;justify-content:center;"
    "flex:none;width:112px;height:112px;background:#eaeef2;border-radius:4px;overflow:hidden;"
    "text-decoration:none}\n"
    /* small images (28 x 28) shown scaled up, sharp */
    "a.t img{width:108px;height:108px;object-fit:contain;image-rendering:pixelated;"
    "display:block}\n"
    "a.t .cap{display:none;position:absolute;left:0;right:0;bottom:0;padding:2px 4px;"
    "background:rgba(31,35,40,.85);color:#fff;font-size:10px;overflow-wrap:anywhere;"
    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}\n"
    "a.t:hover{outline:2px solid #0969da}\n"
    "a.t:hover .cap{display:block}\n"
    ".more{flex:none;align-self:center;color:#57606a;font-size:12px;padding:0 6px}\n";

static void write_pct(FILE *f, size_t part, size_t whole)
{
    double p = whole ? 100.0 * (double)part / (double)whole : 0;

    if (p > 0 && p < 0.5)
        fputs("&lt;1%", f);
    else
        fprintf(f, "%.0f%%", p);
}

static void write_mix(FILE *f, const cl_ctx *c, size_t n, const cl_count *mix, size_t m)
{
    size_t i, other = 0;

    fputs("<div class=\"mix\"><span class=\"bar\">", f);
    for (i = 0; i < m; i++)
        fprintf(f, "<span style=\"width:%.3f%%;background:%s\"></span>",
                100.0 * (double)mix[i].n / (double)n, c->colour[mix[i].label]);
    fputs("</span>\n", f);
    for (i = 0; i < m; i++) {
        const cl_name *nm = &c->labels[mix[i].label];
        char buf[256];
        if (i >= CLUSTER_MIX_TOP) {
            other += mix[i].n;
            continue;
        }
        /* Folder names are pieces of paths: copied out to be escaped. */
        snprintf(buf, sizeof buf, "%.*s", (int)(nm->len < 255 ? nm->len : 255), nm->s);
        fprintf(f, "<span class=\"l\" data-label=\"%u\" data-count=\"%zu\">"
                   "<i style=\"background:%s\"></i>",
                mix[i].label, mix[i].n, c->colour[mix[i].label]);
        if (nm->len > 0)
            cli_html_name(f, buf);
        else
            fputs("(no folder)", f);
        fprintf(f, " <span class=\"pct\">%zu &middot; ", mix[i].n);
        write_pct(f, mix[i].n, n);
        fputs("</span></span>\n", f);
    }
    if (other > 0) {
        fprintf(f, "<span class=\"l other\" data-count=\"%zu\"><i style=\"background:"
                   "#d0d7de\"></i>other (%zu folders) <span class=\"pct\">%zu &middot; ",
                other, m - CLUSTER_MIX_TOP, other);
        write_pct(f, other, n);
        fputs("</span></span>\n", f);
    }
    fputs("</div>\n", f);
}

static void write_thumb(FILE *f, const pv_cluster_member *mb, const cli_thumb *t,
                        const cli_page *pg)
{
    fputs("<a class=\"t\" href=\"", f);
    cli_file_url(f, mb->path, pg->cwd);
    fprintf(f, "\" data-id=\"%u\">", mb->id);
    cli_thumb_html(f, t, pg->base);
    fputs("<span class=\"cap\">", f);
    cli_html_name(f, mb->path);
    fputs("</span></a>\n", f);
}

/* order: the non-empty clusters, largest first; thumbs: their jobs in that
 * order, the first show members of each. */
static void write_page(FILE *f, const cl_ctx *c, const char *title, const cl_rank *order,
                       size_t nonempty, const cli_thumb *thumbs, double purity,
                       cl_count *mix, uint32_t *scratch)
{
    const pv_clustering *cl = c->cl;
    size_t o, i, t = 0;

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"pixvec\">\n<title>", f);
    cli_html_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s%s</style>\n</head>\n", cli_page_css, cluster_css);
    fprintf(f, "<body data-k=\"%d\" data-items=\"%zu\" data-clusters=\"%zu\">\n"
               "<header>\n<h1>", cl->k, cl->items, nonempty);
    cli_html_esc(f, title);
    fprintf(f, "</h1>\n<dl class=\"summary\">\n"
               "<div><dt>clusters (k)</dt><dd>%d</dd></div>\n"
               "<div><dt>non-empty</dt><dd>%zu</dd></div>\n"
               "<div><dt>images</dt><dd>%zu</dd></div>\n",
            cl->k, nonempty, cl->items);
    if (c->with_labels)
        fprintf(f, "<div><dt>purity over %zu folders</dt><dd>%.4f</dd></div>\n",
                c->nlabels, purity);
    fprintf(f, "<div><dt>inertia%s</dt><dd>%.4g</dd></div>\n</dl>\n",
            cl->standardized ? " (standardized)" : "", cl->inertia);
    fprintf(f, "<p class=\"legend\">Clusters by size, largest first. Each row shows "
               "%s the %zu images nearest the cluster's centre, nearest first. "
               "Hover an image for its path; click it to open the original.</p>\n"
               "</header>\n<main>\n",
            c->with_labels ? "its label mix (the folders its images sit in) and" : "",
            c->show);
    if (nonempty == 0)
        fputs("<p class=\"empty\">No images in any cluster.</p>\n", f);
    for (o = 0; o < nonempty; o++) {
        int j = order[o].j;
        const pv_cluster *cj = &cl->clusters[j];
        size_t shown = cj->n < c->show ? cj->n : c->show;
        fprintf(f, "<section class=\"cluster\" id=\"c%d\" data-cluster=\"%d\" "
                   "data-size=\"%zu\">\n<h2>cluster %d &mdash; %zu image%s</h2>\n",
                j, j, cj->n, j, cj->n, cj->n == 1 ? "" : "s");
        if (c->with_labels)
            write_mix(f, c, cj->n, mix, cl_mix(c, j, mix, scratch));
        fputs("<div class=\"row\">\n", f);
        for (i = 0; i < shown; i++)
            write_thumb(f, &cj->members[i], &thumbs[t++], c->pg);
        if (cj->n > shown)
            fprintf(f, "<span class=\"more\">+ %zu more</span>\n", cj->n - shown);
        fputs("</div>\n</section>\n", f);
    }
    fprintf(f, "</main>\n<script>\n%s</script>\n</body>\n</html>\n", cli_thumbs_js);
}

/* ---- the file ------------------------------------------------------------------ */

/* Larger clusters first, then by number. */
static int cl_rank_cmp(const void *a, const void *b)
{
    const cl_rank *x = a, *y = b;

    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return (x->j > y->j) - (x->j < y->j);
}

int cli_cluster_html(const char *file, const pv_clustering *cl, const char *title,
                     size_t show, char *err, size_t errlen)
{
    cl_ctx c;
    cli_page pg;
    cli_thumb *thumbs = NULL;
    cl_count *mix = NULL;
    uint32_t *scratch = NULL;
    cl_rank *order = NULL;
    int j;
    size_t nonempty = 0, njobs = 0, largest = 0, best_sum = 0, i, o;
    char warn[1024] = "";
    int rc;

    memset(&c, 0, sizeof c);
    memset(&pg, 0, sizeof pg);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (cl == NULL || cl->k < 0 || (cl->k > 0 && cl->clusters == NULL)) {
        rc = PV_EINVAL;
        cli_page_err(err, errlen, "cluster page: no clustering given");
        goto done;
    }
    if (title == NULL)
        title = "pixvec clusters";
    c.cl = cl;
    c.show = show;
    c.pg = &pg;
    rc = cl_label_all(&c);
    order = calloc(cl->k > 0 ? (size_t)cl->k : 1, sizeof *order);
    if (rc != PV_OK || order == NULL)
        goto nomem;
    for (j = 0; j < cl->k; j++) {
        size_t n = cl->clusters[j].n;
        if (n == 0)
            continue;
        order[nonempty++] = (cl_rank){n, j};
        njobs += n < show ? n : show;
        if (n > largest)
            largest = n;
    }
    qsort(order, nonempty, sizeof *order, cl_rank_cmp);
    thumbs = calloc(njobs > 0 ? njobs : 1, sizeof *thumbs);
    mix = calloc(largest > 0 ? largest : 1, sizeof *mix);
    scratch = calloc(largest > 0 ? largest : 1, sizeof *scratch);
    if (thumbs == NULL || mix == NULL || scratch == NULL)
        goto nomem;
    for (o = 0, njobs = 0; o < nonempty; o++) {
        const pv_cluster *cj = &cl->clusters[order[o].j];
        for (i = 0; i < cj->n && i < show; i++, njobs++) {
            thumbs[njobs].src = cj->members[i].path;
            thumbs[njobs].name = cj->members[i].id;
        }
        if (c.with_labels && cl_mix(&c, order[o].j, mix, scratch) > 0)
            best_sum += mix[0].n;
    }

    rc = cli_page_open(&pg, file, err, errlen);
    if (rc != PV_OK)
        goto done;
    cli_thumbs_make(thumbs, njobs, pg.dir, REPORT_THUMB_SIDE, warn, sizeof warn);
    write_page(pg.f, &c, title, order, nonempty, thumbs,
               cl->items ? (double)best_sum / (double)cl->items : 0, mix, scratch);
    rc = cli_page_commit(&pg, err, errlen);
    if (rc == PV_OK)
        cli_page_err(err, errlen, "%s", warn);
    goto done;
nomem:
    rc = PV_ENOMEM;
    cli_page_err(err, errlen, "%s: out of memory", file ? file : "cluster page");
done:
    cli_page_close(&pg);
    cli_thumbs_free(thumbs, njobs);
    free(thumbs);
    free(mix);
    free(scratch);
    free(order);
    for (j = 0; c.lab != NULL && j < cl->k; j++)
        free(c.lab[j]);
    free(c.lab);
    free(c.labels);
    free(c.count);
    free(c.colour);
    return rc;
}
