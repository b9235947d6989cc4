/*
 * quality_html.c - the page of `pixvec quality DB --html FILE` (cli room).
 *
 * A person reads this page before training to see what the report found,
 * so it shows the pictures: one section per list (outliers, label-noise
 * suspects, blank, very dark, very bright, tiny, unreadable), each a row of
 * thumbnails captioned with what put the image there ("in shirt, looks like
 * trouser (0.90)", "mean 0.034", "12 x 12 px") and its path linked to the
 * original. A summary at the top gives every count and the distribution of
 * the nearest-neighbour similarity.
 *
 * Design, as the dups report (report.c), whose page helpers it uses
 * (report.h: the temporary file renamed into place, the thumbnail folder
 * beside the page, the thumbnail pool, escaping, the shared style and the
 * script that counts thumbnails): plain HTML with inline CSS and a few
 * lines of inline JS, nothing fetched from the network; thumbnails are JPEG
 * files in a folder beside the page named after it ("q.html" ->
 * "q_files/ID.jpg", one per image however many sections show it), made by
 * pv_thumbnail on one thread per core and loaded lazily; every box has a
 * fixed size so the layout does not jump. Paths are HTML-escaped as text and
 * percent-encoded in file:// links. An unreadable image gets no thumbnail
 * (it cannot be decoded): its box shows the reason. The script writes the
 * thumbnails' counts into <body data-thumbs data-loaded data-broken> for a
 * test to read; "#eager" in the URL loads them all at once.
 */
#include "quality_html.h"

#include "report.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int thumb_cmp(const void *a, const void *b)
{
    const cli_thumb *x = a, *y = b;
    return x->name < y->name ? -1 : x->name > y->name;
}

/* ---- the page ----------------------------------------------------------------- */

/* What this page adds to cli_page_css: summary boxes that link to their
 * section, and a section of captioned thumbnails per list. */
static const char qh_css[] =
    ".summary a{color:inherit;text-decoration:none}\n"
    ".summary div:hover{border-color:#0969da}\n"
    ".summary .hot dd{color:#cf222e}\n"
    ".legend{max-width:1100px}\n"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;"
    "background:#eaeef2;padding:0 4px;border-radius:4px}\n"
    ".sec{background:#fff;border:1px solid #d0d7de;border-radius:8px;margin:16px 0;"
    "padding:10px 14px}\n"
    ".sec h2{margin:0 0 4px;font-size:16px;font-weight:600}\n"
    ".sec .why{margin:0 0 10px;color:#57606a;font-size:13px}\n"
    ".row{display:flex;flex-wrap:wrap;gap:12px}\n"
    "figure{margin:0;width:184px;border:2px solid #d0d7de;border-radius:6px;padding:8px;"
    "background:#fff}\n"
    "figure.suspect{border-color:#bf8700;background:#fff8c5}\n"
    "figure.unreadable{border-color:#cf222e;background:#fff5f5}\n"
    ".box{width:164px;height:164px;display:flex;align-items:center;justify-content:center;"
    "background:#eaeef2;border-radius:4px;overflow:hidden}\n"
    ".box img{width:160px;height:160px;object-fit:contain;image-rendering:pixelated;"
    "display:block}\n"
    "figcaption{margin-top:6px;font-size:12px}\n"
    ".score{font-weight:600}\n"
    ".meta{color:#57606a}\n"
    ".lab{font-weight:600;color:#0550ae}\n"
    ".path{display:block;color:#0969da;text-decoration:none;overflow-wrap:anywhere;"
    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:11px;"
    "margin-top:2px}\n"
    ".path:hover{text-decoration:underline}\n"
    ".sec .empty{padding:4px 0}\n"
    ".more{color:#57606a;margin:10px 0 0;font-size:13px}\n";

enum { S_OUT, S_SUS, S_BLANK, S_DARK, S_BRIGHT, S_TINY, S_UNREAD, S_COUNT };

static const struct {
    const char *id, *title, *cls;
} qh_sec[S_COUNT] = {
    {"outliers", "Outliers", "outlier"},       {"suspects", "Label-noise suspects", "suspect"},
    {"blank", "Blank or uniform", "blank"},    {"dark", "Very dark", "dark"},
    {"bright", "Very bright", "bright"},       {"tiny", "Tiny", "tiny"},
    {"unreadable", "Unreadable", "unreadable"},
};

typedef struct qh_page {
    const pv_quality *q;
    const pv_quality_list *l[S_COUNT];
    const cli_page *cp;
    size_t prefix;      /* bytes of every shown path not printed */
    cli_thumb *thumbs;  /* by name (the item id) */
    size_t nthumbs;
} qh_page;

static size_t shown(const pv_quality_list *l)
{
    return l->n < QHTML_MAX_SHOWN ? l->n : QHTML_MAX_SHOWN;
}

static void caption(FILE *f, int s, const pv_quality_item *it)
{
    switch (s) {
    case S_OUT:
        fprintf(f, "<span class=\"score\">nearest %.3f</span>", (double)it->nn);
        break;
    case S_SUS:
        fputs("in <span class=\"lab\">", f);
        cli_html_name(f, it->label);
        fputs("</span>, looks like <span class=\"lab\">", f);
        cli_html_name(f, it->suggested);
        fprintf(f, "</span> <span class=\"score\">(%.2f)</span>", (double)it->vote);
        break;
    case S_BLANK:
        fprintf(f, "<span class=\"score\">std %.3f</span>, mean %.3f", (double)it->std,
                (double)it->mean);
        break;
    case S_DARK:
    case S_BRIGHT:
        fprintf(f, "<span class=\"score\">mean %.3f</span>", (double)it->mean);
        break;
    case S_TINY:
        fprintf(f, "<span class=\"score\">%u &times; %u px</span>", it->width, it->height);
        break;
    default:
        fprintf(f, "<span class=\"score\">%s</span>", pv_strerror(it->err));
    }
}

static void figure(FILE *f, const qh_page *pg, int s, const pv_quality_item *it)
{
    fprintf(f, "<figure class=\"%s\" data-id=\"%u\"><div class=\"box\">", qh_sec[s].cls,
            it->id);
    cli_thumb key = {.name = it->id};
    const cli_thumb *t =
        it->err ? NULL : bsearch(&key, pg->thumbs, pg->nthumbs, sizeof key, thumb_cmp);
    if (t) {
        cli_thumb_html(f, t, pg->cp->base);
    } else {
        fputs("<div class=\"missing\">", f);
        cli_html_esc(f, it->reason ? it->reason : "no thumbnail");
        fputs("</div>", f);
    }
    fputs("</div><figcaption>", f);
    caption(f, s, it);
    fputs("<br><span class=\"meta\">", f);
    if (s != S_SUS && it->label && it->label[0]) {
        cli_html_name(f, it->label);
        fputs(" &middot; ", f);
    }
    fprintf(f, "%u&times;%u", it->width, it->height);
    if (s != S_OUT && s != S_UNREAD && it->nn > -1)
        fprintf(f, " &middot; nn %.3f", (double)it->nn);
    fputs("</span><a class=\"path\" href=\"", f);
    cli_file_url(f, it->path, pg->cp->cwd);
    fputs("\">", f);
    cli_html_name(f, strlen(it->path) > pg->prefix ? it->path + pg->prefix : it->path);
    fputs("</a></figcaption></figure>\n", f);
}

static void why(FILE *f, const pv_quality *q, int s)
{
    fputs("<p class=\"why\">", f);
    switch (s) {
    case S_OUT:
        fputs("The images least like their nearest other image (cosine similarity of the "
              "embeddings), lowest first.",
              f);
        break;
    case S_SUS:
        fprintf(f,
                "Images whose %d nearest neighbours give another folder at least %.0f%% of "
                "their similarity-weighted vote, the likeliest labelling errors first (a "
                "confusion common between the two folders ranks lower).",
                q->k, 100.0 * q->vote);
        break;
    case S_BLANK: fputs("Images of one flat tone (grey standard deviation near 0).", f); break;
    case S_DARK: fputs("Images whose mean grey level is very low, darkest first.", f); break;
    case S_BRIGHT: fputs("Images whose mean grey level is very high, brightest first.", f); break;
    case S_TINY:
        fprintf(f, "Images whose shorter side is below %u px, smallest first.", q->tiny_below);
        break;
    default: fputs("Files that could not be read or decoded now.", f);
    }
    fputs("</p>\n", f);
}

static void section(FILE *f, const qh_page *pg, int s)
{
    const pv_quality_list *l = pg->l[s];
    const size_t m = shown(l);
    fprintf(f, "<section class=\"sec\" id=\"%s\" data-n=\"%zu\">\n<h2>%s &middot; %zu</h2>\n",
            qh_sec[s].id, l->n, qh_sec[s].title, l->n);
    why(f, pg->q, s);
    if (l->n == 0) {
        fputs("<p class=\"empty\">None.</p>\n</section>\n", f);
        return;
    }
    fputs("<div class=\"row\">\n", f);
    for (size_t i = 0; i < m; i++)
        figure(f, pg, s, &l->items[i]);
    fputs("</div>\n", f);
    if (l->n > m)
        fprintf(f, "<p class=\"more\">&hellip; and %zu more: <code>--json</code> lists them "
                   "all.</p>\n",
                l->n - m);
    fputs("</section>\n", f);
}

/* One box of the summary, linked to its section (anchor may be NULL). */
static void stat_box(FILE *f, const char *anchor, int hot, const char *label, const char *value)
{
    fprintf(f, "<div%s><dt>", hot ? " class=\"hot\"" : "");
    if (anchor)
        fprintf(f, "<a href=\"#%s\">%s</a>", anchor, label);
    else
        fputs(label, f);
    fprintf(f, "</dt><dd>%s</dd></div>\n", value);
}

static void summary(FILE *f, const qh_page *pg, const char *prefix)
{
    const pv_quality *q = pg->q;
    char v[64];
    fputs("<dl class=\"summary\">\n", f);
    snprintf(v, sizeof v, "%zu", q->items);
    stat_box(f, NULL, 0, "images", v);
    snprintf(v, sizeof v, "%zu", q->nlabels);
    stat_box(f, NULL, 0, "folders", v);
    for (int s = 0; s < S_COUNT; s++) {
        if (s == S_SUS && q->nlabels < 2)
            continue;
        snprintf(v, sizeof v, "%zu", pg->l[s]->n);
        stat_box(f, qh_sec[s].id, s != S_OUT && pg->l[s]->n > 0, qh_sec[s].title, v);
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)q->exact_copies);
    stat_box(f, NULL, 0, "byte-identical copies", v);
    if (q->nn_median >= 0) {
        snprintf(v, sizeof v, "%.3f / %.3f", (double)q->nn_median, (double)q->nn_p01);
        stat_box(f, "outliers", 0, "nearest similarity: median / 1%", v);
    }
    fputs("</dl>\n<p class=\"legend\">", f);
    fprintf(f, "%zu images, %zu decoded again for their pixel statistics, in %.2f s. ",
            q->items, q->decoded, q->seconds);
    if (q->nlabels < 2)
        fputs("Label noise was not looked for: it needs images in two class folders or more. ",
              f);
    if (prefix[0]) {
        fputs("Paths are shown below <code>", f);
        cli_html_name(f, prefix);
        fputs("</code>. ", f);
    }
    fprintf(f, "Each section shows at most %d images. Click a path to open the original.</p>\n",
            QHTML_MAX_SHOWN);
}

/* The folder (ending in '/') above every shown path; 0 when only "/". */
static size_t common_folder(const qh_page *pg, const char **first)
{
    size_t len = 0;
    *first = NULL;
    for (int s = 0; s < S_COUNT; s++)
        for (size_t i = 0; i < shown(pg->l[s]); i++) {
            const char *p = pg->l[s]->items[i].path;
            if (!*first) {
                *first = p;
                len = strlen(p);
            }
            size_t k = 0;
            while (k < len && p[k] == (*first)[k])
                k++;
            len = k;
        }
    while (len > 0 && (*first)[len - 1] != '/')
        len--;
    return len > 1 ? len : 0;
}

static void page(FILE *f, qh_page *pg, const char *title)
{
    const char *first;
    char prefix[PATH_MAX] = "";
    size_t plen = common_folder(pg, &first);
    if (plen > 0 && plen < sizeof prefix) {
        memcpy(prefix, first, plen);
        prefix[plen] = 0;
        pg->prefix = plen;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"pixvec\">\n<title>Dataset quality: ",
          f);
    cli_html_name(f, title); /* the database's path */
    fprintf(f, "</title>\n<style>\n%s%s</style>\n</head>\n<body data-items=\"%zu\">\n<header>\n"
               "<h1>Dataset quality: ",
            cli_page_css, qh_css, pg->q->items);
    cli_html_name(f, title); /* the database's path */
    fputs("</h1>\n", f);
    summary(f, pg, prefix);
    fputs("</header>\n<main>\n", f);
    for (int s = 0; s < S_COUNT; s++) {
        if (s == S_SUS && pg->q->nlabels < 2)
            continue;
        if (s >= S_BLANK && s <= S_BRIGHT && pg->q->decoded == 0 && pg->q->items > 0)
            continue;
        section(f, pg, s);
    }
    fprintf(f, "</main>\n<script>\n%s</script>\n</body>\n</html>\n", cli_thumbs_js);
}

/* ---- the file ------------------------------------------------------------- */

int cli_quality_html(const char *file, const pv_quality *q, const char *title, char *err,
                     size_t errlen)
{
    qh_page pg = {.q = q,
                  .l = {&q->outliers, &q->suspects, &q->blank, &q->dark, &q->bright, &q->tiny,
                        &q->unreadable}};
    cli_page cp;
    char warn[512] = "";
    size_t nt = 0;
    int rc = cli_page_open(&cp, file, err, errlen);
    if (rc != 0)
        goto done;
    pg.cp = &cp;
    /* One thumbnail per image shown, whatever the sections showing it; none
     * for a file that could not be decoded (its box gives the reason). */
    for (int s = 0; s < S_UNREAD; s++)
        nt += shown(pg.l[s]);
    if (!(pg.thumbs = calloc(nt ? nt : 1, sizeof *pg.thumbs))) {
        cli_page_err(err, errlen, "%s: out of memory", file);
        rc = PV_ENOMEM;
        goto done;
    }
    nt = 0;
    for (int s = 0; s < S_UNREAD; s++)
        for (size_t i = 0; i < shown(pg.l[s]); i++)
            if (pg.l[s]->items[i].err == 0)
                pg.thumbs[nt++] = (cli_thumb){.name = pg.l[s]->items[i].id,
                                              .src = pg.l[s]->items[i].path};
    qsort(pg.thumbs, nt, sizeof *pg.thumbs, thumb_cmp);
    for (size_t i = 0; i < nt; i++)
        if (pg.nthumbs == 0 || pg.thumbs[pg.nthumbs - 1].name != pg.thumbs[i].name)
            pg.thumbs[pg.nthumbs++] = pg.thumbs[i];
    cli_thumbs_make(pg.thumbs, pg.nthumbs, cp.dir, REPORT_THUMB_SIDE, warn, sizeof warn);
    page(cp.f, &pg, title && title[0] ? title : "pixvec");
    if ((rc = cli_page_commit(&cp, err, errlen)) == 0)
        cli_page_err(err, errlen, "%s", warn);
done:
    cli_thumbs_free(pg.thumbs, pg.nthumbs);
    free(pg.thumbs);
    cli_page_close(&cp);
    return rc == 0 ? 0 : -1;
}
