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
 * Design, as the dups report (report.c): plain HTML with inline CSS and a
 * few lines of inline JS, nothing fetched from the network; thumbnails are
 * JPEG files in a folder beside the page named after it ("q.html" ->
 * "q_files/ID.jpg", one per image however many sections show it), made by
 * pv_thumbnail on one thread per core and loaded lazily; every box has a
 * fixed size so the layout does not jump. Paths are HTML-escaped as text and
 * percent-encoded in file:// links. An unreadable image gets no thumbnail
 * (it cannot be decoded): its box shows the reason. The script writes the
 * thumbnails' counts into <body data-thumbs data-loaded data-broken> for a
 * test to read; "#eager" in the URL loads them all at once.
 *
 * The escaping, folder naming and thumbnail pool are small versions of
 * report.c's, kept here while that file is being refactored: to share with
 * report.c once it exports them.
 */
#include "quality_html.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QH_THUMB_SIDE 160
#define QH_THUMB_QUALITY 80
#define QH_MAX_THREADS 8

/* ---- text (to share with report.c) ---------------------------------------- */

/* HTML text and attribute values: markup characters as entities, control
 * bytes as U+FFFD. */
static void qh_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '&')
            fputs("&amp;", f);
        else if (*p == '<')
            fputs("&lt;", f);
        else if (*p == '>')
            fputs("&gt;", f);
        else if (*p == '"')
            fputs("&quot;", f);
        else if (*p == '\'')
            fputs("&#39;", f);
        else if (*p < 0x20 || *p == 0x7f)
            fputs("&#xFFFD;", f);
        else
            fputc(*p, f);
    }
}

/* A path in a URL: RFC 3986's unreserved bytes and '/' as they are, every
 * other byte %XX (so no markup character either). */
static void qh_url(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (strchr("-._~/", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
            (*p >= 'A' && *p <= 'Z'))
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* ---- thumbnails (to share with report.c) ---------------------------------- */

typedef struct qh_thumb {
    uint32_t id;
    const char *path;
    int rc;
    char reason[256];
} qh_thumb;

typedef struct qh_pool {
    qh_thumb *t;
    size_t n, next;
    const char *dir;
    pthread_mutex_t mu;
} qh_pool;

static void *qh_worker(void *arg)
{
    qh_pool *p = arg;
    char dst[PATH_MAX];
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            return NULL;
        qh_thumb *t = &p->t[i];
        int k = snprintf(dst, sizeof dst, "%s/%u.jpg", p->dir, t->id);
        if (k < 0 || (size_t)k >= sizeof dst) {
            t->rc = PV_EINVAL;
            snprintf(t->reason, sizeof t->reason, "thumbnail path too long");
            continue;
        }
        t->rc = pv_thumbnail(t->path, QH_THUMB_SIDE, QH_THUMB_QUALITY, dst, NULL, NULL,
                             t->reason, sizeof t->reason);
    }
}

static void qh_make_thumbs(qh_thumb *t, size_t n, const char *dir)
{
    pthread_t th[QH_MAX_THREADS];
    qh_pool p = {.t = t, .n = n, .dir = dir};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want = cores > 1 ? (size_t)cores - 1 : 0, started = 0;
    if (want > QH_MAX_THREADS)
        want = QH_MAX_THREADS;
    pthread_mutex_init(&p.mu, NULL);
    for (size_t i = 0; i < want && i + 1 < n; i++)
        if (pthread_create(&th[started], NULL, qh_worker, &p) == 0)
            started++;
    qh_worker(&p);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
}

static int thumb_cmp(const void *a, const void *b)
{
    const qh_thumb *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* ---- the page ----------------------------------------------------------------- */

static const char qh_css[] =
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,"
    "sans-serif;color:#1f2328;background:#f4f5f7}\n"
    "header{background:#fff;border-bottom:1px solid #d0d7de;padding:16px 24px}\n"
    "h1{margin:0 0 12px;font-size:20px;font-weight:600}\n"
    ".summary{display:flex;flex-wrap:wrap;gap:8px;margin:0}\n"
    ".summary a{display:block;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;"
    "padding:6px 12px;min-width:96px;color:inherit;text-decoration:none}\n"
    ".summary a:hover{border-color:#0969da}\n"
    ".summary .k{display:block;font-size:12px;color:#57606a}\n"
    ".summary .v{display:block;font-size:18px;font-weight:600}\n"
    ".summary .hot .v{color:#cf222e}\n"
    ".legend{margin:12px 0 0;color:#57606a;font-size:13px;max-width:1100px}\n"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;"
    "background:#eaeef2;padding:0 4px;border-radius:4px}\n"
    "main{padding:8px 24px 48px}\n"
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
    ".missing{padding:8px;font-size:12px;color:#cf222e;text-align:center;"
    "overflow-wrap:anywhere}\n"
    "figcaption{margin-top:6px;font-size:12px}\n"
    ".score{font-weight:600}\n"
    ".meta{color:#57606a}\n"
    ".lab{font-weight:600;color:#0550ae}\n"
    ".path{display:block;color:#0969da;text-decoration:none;overflow-wrap:anywhere;"
    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:11px;"
    "margin-top:2px}\n"
    ".path:hover{text-decoration:underline}\n"
    ".empty{color:#57606a;margin:4px 0}\n"
    ".more{color:#57606a;margin:10px 0 0;font-size:13px}\n";

/* Counts the thumbnails that loaded or broke into <body data-*>. */
static const char qh_js[] =
    "(function(){\n"
    "var b=document.body,im=Array.prototype.slice.call(document.querySelectorAll('img.thumb'));"
    "var broken=0;\n"
    "b.dataset.thumbs=im.length;\n"
    "if(location.hash==='#eager')im.forEach(function(i){i.loading='eager';});\n"
    "function tally(){b.dataset.loaded=im.filter(function(i){return i.complete&&"
    "i.naturalWidth>0;}).length;b.dataset.broken=broken;}\n"
    "im.forEach(function(i){i.addEventListener('load',tally);i.addEventListener('error',"
    "function(){broken++;var d=document.createElement('div');d.className='missing';"
    "d.textContent='thumbnail missing';i.replaceWith(d);tally();});});\n"
    "tally();\n"
    "})();\n";

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
    const char *base;   /* the thumbnail folder, relative to the page */
    size_t prefix;      /* bytes of every shown path not printed */
    qh_thumb *thumbs;   /* by id */
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
        qh_text(f, it->label);
        fputs("</span>, looks like <span class=\"lab\">", f);
        qh_text(f, it->suggested);
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
    const char *name = strrchr(it->path, '/');
    name = name ? name + 1 : it->path;
    fprintf(f, "<figure class=\"%s\" data-id=\"%u\"><div class=\"box\">", qh_sec[s].cls,
            it->id);
    qh_thumb key = {.id = it->id};
    const qh_thumb *t =
        s == S_UNREAD ? NULL : bsearch(&key, pg->thumbs, pg->nthumbs, sizeof key, thumb_cmp);
    if (t && t->rc == PV_OK) {
        fputs("<img class=\"thumb\" loading=\"lazy\" decoding=\"async\" src=\"", f);
        qh_url(f, pg->base);
        fprintf(f, "/%u.jpg\" alt=\"", it->id);
        qh_text(f, name);
        fputs("\">", f);
    } else {
        fputs("<div class=\"missing\">", f);
        qh_text(f, s == S_UNREAD ? it->reason : t ? t->reason : "no thumbnail");
        fputs("</div>", f);
    }
    fputs("</div><figcaption>", f);
    caption(f, s, it);
    fputs("<br><span class=\"meta\">", f);
    if (s != S_SUS && it->label && it->label[0]) {
        qh_text(f, it->label);
        fputs(" &middot; ", f);
    }
    fprintf(f, "%u&times;%u", it->width, it->height);
    if (s != S_OUT && it->nn >= -1 && s != S_UNREAD)
        fprintf(f, " &middot; nn %.3f", (double)it->nn);
    fputs("</span><a class=\"path\" href=\"file://", f);
    qh_url(f, it->path);
    fputs("\">", f);
    qh_text(f, strlen(it->path) > pg->prefix ? it->path + pg->prefix : it->path);
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

static void summary(FILE *f, const qh_page *pg, const char *prefix)
{
    const pv_quality *q = pg->q;
    fputs("<div class=\"summary\">\n", f);
    fprintf(f, "<a href=\"#\"><span class=\"k\">images</span><span class=\"v\">%zu</span></a>\n", q->items);
    fprintf(f, "<a href=\"#\"><span class=\"k\">folders</span><span class=\"v\">%zu</span></a>\n", q->nlabels);
    for (int s = 0; s < S_COUNT; s++) {
        if (s == S_SUS && q->nlabels < 2)
            continue;
        fprintf(f, "<a href=\"#%s\"%s><span class=\"k\">%s</span><span class=\"v\">%zu</span></a>\n", qh_sec[s].id,
                s != S_OUT && pg->l[s]->n ? " class=\"hot\"" : "", qh_sec[s].title, pg->l[s]->n);
    }
    fprintf(f, "<a href=\"#\"><span class=\"k\">byte-identical copies</span><span class=\"v\">%llu</span></a>\n",
            (unsigned long long)q->exact_copies);
    if (q->nn_median >= 0)
        fprintf(f, "<a href=\"#outliers\"><span class=\"k\">nearest similarity median / 1%%</span>"
                   "<span class=\"v\">%.3f / %.3f</span></a>\n",
                (double)q->nn_median, (double)q->nn_p01);
    fputs("</div>\n<p class=\"legend\">", f);
    fprintf(f, "%zu images, %zu decoded again for their pixel statistics, in %.2f s. ",
            q->items, q->decoded, q->seconds);
    if (q->nlabels < 2)
        fputs("Label noise was not looked for: it needs images in two class folders or more. ",
              f);
    if (prefix[0]) {
        fputs("Paths are shown below <code>", f);
        qh_text(f, prefix);
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
    qh_text(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body data-items=\"%zu\">\n<header>\n"
               "<h1>Dataset quality: ",
            qh_css, pg->q->items);
    qh_text(f, title);
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
    fprintf(f, "</main>\n<script>\n%s</script>\n</body>\n</html>\n", qh_js);
}

/* ---- the file ------------------------------------------------------------- */

/* "out/q.html" -> "out/q_files" (as a browser names a saved page's folder). */
static char *folder_for(const char *file)
{
    size_t n = strlen(file);
    if (n > 5 && strcmp(file + n - 5, ".html") == 0)
        n -= 5;
    else if (n > 4 && strcmp(file + n - 4, ".htm") == 0)
        n -= 4;
    char *d = malloc(n + sizeof "_files");
    if (d) {
        memcpy(d, file, n);
        memcpy(d + n, "_files", sizeof "_files");
    }
    return d;
}

int cli_quality_html(const char *file, const pv_quality *q, const char *title, char *err,
                     size_t errlen)
{
    qh_page pg = {.q = q,
                  .l = {&q->outliers, &q->suspects, &q->blank, &q->dark, &q->bright, &q->tiny,
                        &q->unreadable}};
    char *dir = folder_for(file), tmp[PATH_MAX];
    FILE *f = NULL;
    size_t nt = 0, failed = 0, first_failed = 0;
    int rc = -1;
    struct stat st;
    err[0] = tmp[0] = 0;
    if (!dir) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto done;
    }
    if (mkdir(dir, 0777) != 0 && !(errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))) {
        snprintf(err, errlen, "%s: cannot create the folder: %s", dir,
                 errno == EEXIST ? "a file is in the way" : strerror(errno));
        goto done;
    }
    const char *slash = strrchr(dir, '/');
    pg.base = slash ? slash + 1 : dir;
    /* One thumbnail per image shown, whatever the sections showing it. */
    for (int s = 0; s < S_UNREAD; s++)
        nt += shown(pg.l[s]);
    if (!(pg.thumbs = calloc(nt ? nt : 1, sizeof *pg.thumbs))) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto done;
    }
    nt = 0;
    for (int s = 0; s < S_UNREAD; s++)
        for (size_t i = 0; i < shown(pg.l[s]); i++)
            pg.thumbs[nt++] = (qh_thumb){.id = pg.l[s]->items[i].id,
                                         .path = pg.l[s]->items[i].path};
    qsort(pg.thumbs, nt, sizeof *pg.thumbs, thumb_cmp);
    size_t u = 0;
    for (size_t i = 0; i < nt; i++)
        if (u == 0 || pg.thumbs[u - 1].id != pg.thumbs[i].id)
            pg.thumbs[u++] = pg.thumbs[i];
    pg.nthumbs = u;
    qh_make_thumbs(pg.thumbs, pg.nthumbs, dir);
    for (size_t i = 0; i < pg.nthumbs; i++)
        if (pg.thumbs[i].rc != PV_OK && failed++ == 0)
            first_failed = i;

    int k = snprintf(tmp, sizeof tmp, "%s.tmp-%ld", file, (long)getpid());
    if (k < 0 || (size_t)k >= sizeof tmp) {
        tmp[0] = 0;
        snprintf(err, errlen, "%s: path too long", file);
        goto done;
    }
    if (!(f = fopen(tmp, "w"))) {
        snprintf(err, errlen, "%s: cannot create: %s", file, strerror(errno));
        tmp[0] = 0;
        goto done;
    }
    page(f, &pg, title && title[0] ? title : "pixvec");
    int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    f = NULL;
    if (bad || rename(tmp, file) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", file, strerror(errno ? errno : EIO));
        goto done;
    }
    tmp[0] = 0;
    rc = 0;
    if (failed)
        snprintf(err, errlen, "%zu of %zu thumbnails could not be made (first: %s)", failed,
                 pg.nthumbs, pg.thumbs[first_failed].reason);
done:
    if (f)
        fclose(f);
    if (tmp[0])
        unlink(tmp);
    free(pg.thumbs);
    free(dir);
    return rc;
}
