/*
 * map.c - `pixvec map DB`: a map of the collection (cli room).
 *
 * pv_map_build computes (or reads back, and completes with the images added
 * since) a UMAP or t-SNE layout stored in the database; this file colours
 * its points by folder (the ImageFolder convention), by stored k-means
 * cluster or not at all, and writes what was asked: a PNG drawn with cairo
 * (draw.c), an interactive page (map_html.c), a CSV, JSON, or a summary.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "plot.h"
#include "report.h"

enum { COLOR_FOLDER, COLOR_CLUSTER, COLOR_NONE };

typedef struct map_args {
    pv_map_opts o;
    int color, json;
    const char *png, *html, *csv;
} map_args;

/* Colour labels for m's points: lab[i] < L->n, or NULL for COLOR_NONE. */
static int map_labels(cli_ctx *ctx, const pv_map *m, int color, cli_labels *L, uint32_t **lab)
{
    pv_clustering *cl = NULL;
    int32_t *of_id = NULL;
    uint32_t maxid = 0;
    int rc = 0;
    *lab = NULL;
    if (color == COLOR_NONE || m->n == 0)
        return 0;
    if (!(*lab = calloc(m->n, sizeof **lab)))
        return PV_ENOMEM;
    if (color == COLOR_FOLDER) {
        for (size_t i = 0; i < m->n; i++) {
            size_t len, id;
            const char *s = cli_folder_label(m->points[i].path, &len);
            if ((id = cli_label_id(L, s, len)) == SIZE_MAX)
                return PV_ENOMEM;
            (*lab)[i] = (uint32_t)id;
        }
        return 0;
    }
    if ((rc = pv_cluster_get(ctx->db, &cl)) != 0)
        return rc;
    for (size_t i = 0; i < m->n; i++)
        if (m->points[i].id > maxid)
            maxid = m->points[i].id;
    if (!(of_id = malloc(((size_t)maxid + 1) * sizeof *of_id))) {
        rc = PV_ENOMEM;
        goto done;
    }
    for (uint32_t i = 0; i <= maxid; i++)
        of_id[i] = -1;
    for (int c = 0; c < cl->k; c++)
        for (size_t i = 0; i < cl->clusters[c].n; i++)
            if (cl->clusters[c].members[i].id <= maxid)
                of_id[cl->clusters[c].members[i].id] = c;
    /* Label numbers in cluster order, so "cluster 3" is label 3's name. */
    for (int c = 0; c < cl->k; c++) {
        char name[32];
        int len = snprintf(name, sizeof name, "cluster %d", c);
        if (cli_label_id(L, name, (size_t)len) == SIZE_MAX) {
            rc = PV_ENOMEM;
            goto done;
        }
    }
    for (size_t i = 0; i < m->n; i++) {
        int32_t c = of_id[m->points[i].id];
        if (c < 0) {
            /* Added since pv_cluster_get's snapshot: its own label. */
            size_t id = cli_label_id(L, "unclustered", 11);
            if (id == SIZE_MAX) {
                rc = PV_ENOMEM;
                goto done;
            }
            c = (int32_t)id;
        }
        (*lab)[i] = (uint32_t)c;
    }
done:
    free(of_id);
    pv_clustering_free(cl);
    return rc;
}

/* A name as a CSV field: its text form (names.h), in CSV's quotes with
 * '"' doubled. */
static void csv_field(FILE *f, const char *name)
{
    char *t = cli_name_text(name);
    const char *s = t ? t : "\"?\"";

    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
    free(t);
}

/* The CSV: a header, then one line per point (id order), put in place
 * whole (cli_file_open). */
static int write_csv(const char *dst, const pv_map *m, const uint32_t *lab, const cli_labels *L,
                     char *err, size_t errlen)
{
    cli_page out;
    int rc = cli_file_open(&out, dst, err, errlen);
    FILE *f = out.f;
    if (rc == PV_OK) {
        fprintf(f, "id,path,x,y%s,label,placed\n", m->dims == 3 ? ",z" : "");
        for (size_t i = 0; i < m->n; i++) {
            const pv_map_point *p = &m->points[i];
            fprintf(f, "%u,", p->id);
            csv_field(f, p->path);
            for (int d = 0; d < m->dims; d++)
                fprintf(f, ",%.7g", (double)p->xyz[d]);
            fputc(',', f);
            if (lab)
                csv_field(f, L->name[lab[i]]);
            fprintf(f, ",%d\n", p->placed);
        }
        rc = cli_page_commit(&out, err, errlen);
    }
    cli_page_close(&out);
    return rc == PV_OK ? 0 : -1;
}

/* n with thousands separators: 70000 -> "70,000". */
static void count_text(size_t n, char *buf, size_t len)
{
    char d[32];
    int nd = snprintf(d, sizeof d, "%zu", n), o = 0;
    for (int i = 0; i < nd && (size_t)o + 2 < len; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = d[i];
    }
    buf[o] = 0;
}

static const char *method_name(int method) { return method == PV_MAP_TSNE ? "t-SNE" : "UMAP"; }

static void params_text(const pv_map *m, char *buf, size_t len)
{
    if (m->method == PV_MAP_UMAP)
        snprintf(buf, len, "n_neighbors %d, min_dist %g, %s%d epochs, seed %llu", m->n_neighbors,
                 (double)m->min_dist, m->epochs ? "" : "default ", m->epochs ? m->epochs : (m->fitted <= 10000 ? 500 : 200),
                 (unsigned long long)m->seed);
    else
        snprintf(buf, len, "perplexity %g, %d iterations, seed %llu", (double)m->perplexity,
                 m->iters, (unsigned long long)m->seed);
}

static json_t *map_json(const pv_map *m, const uint32_t *lab, const cli_labels *L)
{
    json_t *pts = json_array();
    json_t *doc = json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:b, s:f, s:f, s:I}", "ok", 1, "method",
                            m->method == PV_MAP_TSNE ? "tsne" : "umap", "dims", m->dims, "n",
                            (json_int_t)m->n, "fitted", (json_int_t)m->fitted, "placed",
                            (json_int_t)m->placed, "computed", m->computed, "seconds", m->seconds,
                            "knn_seconds", m->knn_seconds, "seed", (json_int_t)m->seed);
    if (!doc || !pts) {
        json_decref(doc);
        json_decref(pts);
        return NULL;
    }
    if (m->method == PV_MAP_UMAP)
        json_object_set_new(doc, "params", json_pack("{s:i, s:f, s:i}", "n_neighbors",
                                                     m->n_neighbors, "min_dist",
                                                     (double)m->min_dist, "epochs", m->epochs));
    else
        json_object_set_new(doc, "params", json_pack("{s:f, s:i}", "perplexity",
                                                     (double)m->perplexity, "iters", m->iters));
    for (size_t i = 0; i < m->n; i++) {
        const pv_map_point *p = &m->points[i];
        json_t *o = json_pack("{s:I, s:o, s:f, s:f, s:b}", "id", (json_int_t)p->id, "path",
                              cli_name_json(p->path), "x", (double)p->xyz[0], "y", (double)p->xyz[1],
                              "placed", p->placed);
        if (!o)
            continue;
        if (m->dims == 3)
            json_object_set_new(o, "z", json_real(p->xyz[2]));
        if (lab)
            json_object_set_new(o, "label", cli_name_json(L->name[lab[i]]));
        json_array_append_new(pts, o);
    }
    json_object_set_new(doc, "points", pts);
    return doc;
}

static int parse_args(const cli_cmd *c, int argc, char **argv, map_args *a)
{
    static const struct option lo[] = {{"method", required_argument, NULL, 'm'},
                                       {"dims", required_argument, NULL, 'd'},
                                       {"color", required_argument, NULL, 'c'},
                                       {"colour", required_argument, NULL, 'c'},
                                       {"png", required_argument, NULL, 'P'},
                                       {"html", required_argument, NULL, 'H'},
                                       {"csv", required_argument, NULL, 'C'},
                                       {"recompute", no_argument, NULL, 'r'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"n-neighbors", required_argument, NULL, 'n'},
                                       {"min-dist", required_argument, NULL, 'D'},
                                       {"epochs", required_argument, NULL, 'e'},
                                       {"perplexity", required_argument, NULL, 'p'},
                                       {"iters", required_argument, NULL, 'i'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'}, {0}};
    long v;
    int opt, rc = 0;
    cli_opt_reset();
    while ((opt = cli_next_opt(argc, argv, "m:h", lo)) != -1) {
        switch (opt) {
        case 'j': a->json = 1; break;
        case 'r': a->o.recompute = 1; break;
        case 'P': a->png = optarg; break;
        case 'H': a->html = optarg; break;
        case 'C': a->csv = optarg; break;
        case 'h': cli_print_help(stdout, c); return -1;
        case 'm':
            if (strcmp(optarg, "umap") == 0)
                a->o.method = PV_MAP_UMAP;
            else if (strcmp(optarg, "tsne") == 0 || strcmp(optarg, "t-sne") == 0)
                a->o.method = PV_MAP_TSNE;
            else
                return cli_usage_err(c, "--method is umap or tsne, not '%s'", optarg);
            break;
        case 'd': rc = cli_opt_int(c, "--dims", optarg, 2, 3, &a->o.dims); break;
        case 'c':
            if (strcmp(optarg, "folder") == 0)
                a->color = COLOR_FOLDER;
            else if (strcmp(optarg, "cluster") == 0)
                a->color = COLOR_CLUSTER;
            else if (strcmp(optarg, "none") == 0)
                a->color = COLOR_NONE;
            else
                return cli_usage_err(c, "--color is folder, cluster or none, not '%s'", optarg);
            break;
        case 's':
            if (cli_parse_int(optarg, 1, INT32_MAX, &v) != 0)
                return cli_usage_err(c, "--seed takes a positive integer, not '%s'", optarg);
            a->o.seed = (uint64_t)v;
            break;
        case 't': rc = cli_opt_int(c, "--threads", optarg, 1, 64, &a->o.threads); break;
        case 'n': rc = cli_opt_int(c, "--n-neighbors", optarg, 2, 200, &a->o.n_neighbors); break;
        case 'D': rc = cli_opt_float(c, "--min-dist", optarg, 0.001, 10, &a->o.min_dist); break;
        case 'e': rc = cli_opt_int(c, "--epochs", optarg, 1, 100000, &a->o.epochs); break;
        case 'p': rc = cli_opt_float(c, "--perplexity", optarg, 1, 100, &a->o.perplexity); break;
        case 'i': rc = cli_opt_int(c, "--iters", optarg, 300, 100000, &a->o.iters); break;
        default: cli_print_usage(stderr, c); return CLI_USAGE;
        }
        if (rc != 0)
            return rc;
    }
    if (optind != argc)
        return cli_usage_err(c, "unexpected argument '%s'", argv[optind]);
    /* A parameter of the other method would be ignored: say whose it is. */
    const char *umap_only = a->o.n_neighbors ? "--n-neighbors" : a->o.min_dist > 0 ? "--min-dist"
                            : a->o.epochs ? "--epochs" : NULL;
    const char *tsne_only = a->o.perplexity > 0 ? "--perplexity" : a->o.iters ? "--iters" : NULL;
    if (a->o.method == PV_MAP_TSNE && umap_only)
        return cli_usage_err(c, "%s applies to --method umap only, not tsne", umap_only);
    if (a->o.method == PV_MAP_UMAP && tsne_only)
        return cli_usage_err(c, "%s applies to --method tsne only (the default method is umap)",
                             tsne_only);
    return 0;
}

int cmd_map(cli_ctx *ctx, int argc, char **argv)
{
    const cli_cmd *c = cli_find("map");
    map_args a = {.color = COLOR_FOLDER};
    pv_map *m = NULL;
    cli_labels L = {0};
    uint32_t *lab = NULL;
    float *xyz = NULL;
    const char **paths = NULL;
    char err[1024], title[128], sub[256], ptxt[160], cnt[32];
    int rc = parse_args(c, argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    /* The layout is stored when this user may write the database; else it
     * is computed all the same and not kept (a note says so). */
    if ((rc = cli_open(ctx, c, CLI_OPEN_WRITE_IF_CAN)) != CLI_OK)
        return rc;
    if (!ctx->db_write && !a.o.no_store) {
        a.o.no_store = 1;
        fprintf(stderr, "pixvec: map: note: %s is read-only for you: the layout is "
                "computed but not stored\n", ctx->dbpath);
    }
    if ((rc = pv_map_build(ctx->db, &a.o, &m)) != 0)
        return cli_fail(c->name, a.json, "%s", cli_db_msg(ctx, rc));
    if ((rc = map_labels(ctx, m, a.color, &L, &lab)) != 0) {
        rc = cli_fail(c->name, a.json, "%s", rc == PV_ENOMEM ? "out of memory" : cli_db_msg(ctx, rc));
        goto done;
    }
    count_text(m->n, cnt, sizeof cnt);
    snprintf(title, sizeof title, "%s of %s %s%s", method_name(m->method), cnt,
             cli_plural(m->n, "image", "images"),
             m->dims == 3 ? " (3-D)" : "");
    params_text(m, ptxt, sizeof ptxt);
    snprintf(sub, sizeof sub, "%s; colour: %s%s", ptxt,
             a.color == COLOR_FOLDER ? "folder" : a.color == COLOR_CLUSTER ? "k-means cluster" : "none",
             m->placed ? "; some images placed into a stored layout" : "");
    xyz = calloc(m->n ? m->n * (size_t)m->dims : 1, sizeof *xyz);
    paths = calloc(m->n ? m->n : 1, sizeof *paths);
    if (!xyz || !paths) {
        rc = cli_fail(c->name, a.json, "%s", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < m->n; i++) {
        memcpy(xyz + i * (size_t)m->dims, m->points[i].xyz, (size_t)m->dims * sizeof *xyz);
        paths[i] = m->points[i].path;
    }
    cli_scatter s = {.n = m->n, .dims = m->dims, .xyz = xyz, .label = lab,
                     .label_names = (const char *const *)L.name, .nlabels = (uint32_t)L.n,
                     .paths = paths, .title = title, .subtitle = sub};
    if (a.png && cli_scatter_png(&s, a.png, 0, 0, err, sizeof err) != 0) {
        rc = cli_fail(c->name, a.json, "--png: %s", err);
        goto done;
    }
    if (a.html) {
        if (cli_map_html(&s, a.html, err, sizeof err) != 0) {
            rc = cli_fail(c->name, a.json, "--html: %s", err);
            goto done;
        }
        if (err[0]) /* some thumbnails could not be made: the page says which */
            fprintf(stderr, "pixvec: map: --html: %s\n", err);
    }
    if (a.csv && write_csv(a.csv, m, lab, &L, err, sizeof err) != 0) {
        rc = cli_fail(c->name, a.json, "--csv: %s", err);
        goto done;
    }
    if (a.json) {
        rc = cli_print_json(map_json(m, lab, &L));
        goto done;
    }
    if (m->computed)
        printf("%s: computed in %.2f s (neighbours %.2f s) (%s)\n", title, m->seconds,
               m->knn_seconds, ptxt);
    else
        printf("%s: the stored layout of %zu %s (%s)%s\n", title, m->fitted,
               cli_plural(m->fitted, "image", "images"), ptxt,
               m->placed ? "" : ", read back");
    if (m->placed)
        printf("%zu %s added since %s placed into it%s%s\n", m->placed,
               cli_plural(m->placed, "image", "images"), m->placed == 1 ? "was" : "were",
               m->seconds > 0 ? " just now" : " earlier",
               m->placed * 4 > m->n ? "; many: --recompute for a new layout" : "");
    if (a.png)
        printf("wrote %s\n", a.png);
    if (a.html)
        printf("wrote %s\n", a.html);
    if (a.csv)
        printf("wrote %s\n", a.csv);
    rc = CLI_OK;
done:
    free(xyz);
    free(paths);
    free(lab);
    cli_labels_free(&L);
    pv_map_free(m);
    return rc;
}
