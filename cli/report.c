/*
 * report.c - the HTML report of `pixvec dups --html FILE` (cli room).
 *
 * A person decides from this page whether to trust a duplicate scan before
 * anything is dropped, so it shows the pictures themselves: one row of
 * thumbnails per group, the representative first, every image marked keep
 * or drop, captioned with its score against the representative ("exact" for
 * a byte-identical file), its size in pixels and bytes, and its path linked
 * to the original. A summary at the top gives the counts and how the scan
 * was made.
 *
 * Design: plain HTML with inline CSS, so the page opens from disk anywhere,
 * with no network and nothing to install; thumbnails are files in a folder
 * beside the page (not data: URIs), so a report of 10,000 groups stays a
 * page of a few MB that the browser fetches lazily (loading="lazy") as the
 * user scrolls. Every thumbnail box has a fixed size, so the layout does not
 * jump while images arrive. Thumbnails are made by pv_thumbnail (the
 * engine's own decoders, EXIF orientation applied) on one thread per core:
 * it is the slow part of a large report. Paths are the one piece of outside
 * text on the page: they are HTML-escaped everywhere they appear and
 * percent-encoded (every byte outside RFC 3986's unreserved set but '/') in
 * the file:// links.
 *
 * A few lines of inline JS count the thumbnails that have loaded and write
 * the counts into <body data-thumbs data-loaded data-broken>, so a test (or
 * a curious user) can check the page in a headless browser; opened with
 * "#eager" the page loads every thumbnail at once instead of lazily.
 *
 * The escaping, the page's temporary file and thumbnail folder, the
 * thumbnail pool and that script are shared with the other pages
 * (map_html.c, cluster_html.c) through report.h.
 */
#include "names.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPORT_MAX_THREADS 8
#define REPORT_REASON_MAX 256

void cli_page_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- escaping ------------------------------------------------------------ */

/* Text and attribute values: the five characters that can end or change
 * markup, and control bytes (which a file name may hold) as U+FFFD. */
void cli_html_esc(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    for (; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fputs("&#xFFFD;", f);
            else
                fputc(*p, f);
        }
    }
}

void cli_html_name(FILE *f, const char *name)
{
    char *t = cli_name_text(name);

    cli_html_esc(f, t ? t : "\"?\""); /* "?": out of memory */
    free(t);
}

/* Percent-encode a path for a URL: '/' and RFC 3986's unreserved characters
 * stay, every other byte (UTF-8 bytes too) becomes %XX. The result holds no
 * '&', '<' or '"', so it is also safe inside an HTML attribute. */
void cli_url_esc(FILE *f, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;

    for (; *p; p++) {
        unsigned c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~' || c == '/')
            fputc((int)c, f);
        else
            fprintf(f, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
}

/* ---- names --------------------------------------------------------------- */

/* The thumbnail folder for file: its name without a trailing ".html" or
 * ".htm", plus "_files" (as browsers name a saved page's folder). *dir is
 * the folder's path, *base its last component (for the page's relative
 * links); both malloc'd. */
static int report_dir_for(const char *file, char **dir, char **base)
{
    const char *slash = strrchr(file, '/');
    const char *name = slash ? slash + 1 : file;
    size_t n = strlen(file), cut = n;

    *dir = *base = NULL;
    if (n >= 5 && strcmp(file + n - 5, ".html") == 0)
        cut = n - 5;
    else if (n >= 4 && strcmp(file + n - 4, ".htm") == 0)
        cut = n - 4;
    /* "out/.html" would give the folder "out/_files": fine, and the page
     * still finds it, since the link is relative. */
    *dir = malloc(cut + sizeof "_files");
    if (*dir == NULL)
        return PV_ENOMEM;
    memcpy(*dir, file, cut);
    memcpy(*dir + cut, "_files", sizeof "_files");
    *base = strdup(*dir + (size_t)(name - file));
    if (*base == NULL) {
        free(*dir);
        *dir = NULL;
        return PV_ENOMEM;
    }
    return PV_OK;
}

/* ---- thumbnails ---------------------------------------------------------- */

typedef struct report_pool {
    cli_thumb *jobs;
    size_t n;
    size_t next;          /* the next job to take, under lock */
    const char *dir;
    uint32_t side;
    pthread_mutex_t lock;
} report_pool;

static void *report_worker(void *arg)
{
    report_pool *p = arg;
    char dst[PATH_MAX], reason[REPORT_REASON_MAX];

    for (;;) {
        size_t i;
        cli_thumb *t;
        int k;

        pthread_mutex_lock(&p->lock);
        i = p->next++;
        pthread_mutex_unlock(&p->lock);
        if (i >= p->n)
            break;
        t = &p->jobs[i];
        k = snprintf(dst, sizeof dst, "%s/%u.jpg", p->dir, t->name);
        reason[0] = '\0';
        if (k < 0 || (size_t)k >= sizeof dst) {
            t->rc = PV_EINVAL;
            snprintf(reason, sizeof reason, "thumbnail path too long");
        } else {
            t->rc = pv_thumbnail(t->src, p->side, REPORT_THUMB_QUALITY, dst,
                                 NULL, NULL, reason, sizeof reason);
        }
        /* Most succeed: only a failure keeps its message. */
        if (t->rc != PV_OK)
            t->reason = strdup(reason);
    }
    return NULL;
}

size_t cli_thumbs_make(cli_thumb *jobs, size_t n, const char *dir,
                       uint32_t side, char *err, size_t errlen)
{
    pthread_t th[REPORT_MAX_THREADS];
    report_pool p;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want, started = 0, i, failed = 0, first = 0;

    memset(&p, 0, sizeof p);
    p.jobs = jobs;
    p.n = n;
    p.dir = dir;
    p.side = side;
    pthread_mutex_init(&p.lock, NULL);
    want = cores > 0 ? (size_t)cores : 1;
    if (want > REPORT_MAX_THREADS)
        want = REPORT_MAX_THREADS;
    if (want > n)
        want = n;
    for (i = 0; i < want; i++) {
        if (pthread_create(&th[started], NULL, report_worker, &p) != 0)
            break;
        started++;
    }
    /* The caller works too: with no thread started it does all the work. */
    report_worker(&p);
    for (i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.lock);

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    for (i = 0; i < n; i++)
        if (jobs[i].rc != PV_OK && failed++ == 0)
            first = i;
    if (failed > 0)
        cli_page_err(err, errlen,
                   "%zu of %zu thumbnails could not be made (first: %s)",
                   failed, n, jobs[first].reason ? jobs[first].reason
                                                 : "out of memory");
    return failed;
}

void cli_thumbs_free(cli_thumb *jobs, size_t n)
{
    size_t i;

    for (i = 0; jobs != NULL && i < n; i++) {
        free(jobs[i].reason);
        jobs[i].reason = NULL;
    }
}

void cli_thumb_html(FILE *f, const cli_thumb *t, const char *base)
{
    const char *name = strrchr(t->src, '/');

    if (t->rc == PV_OK) {
        fputs("<img class=\"thumb\" loading=\"lazy\" decoding=\"async\" src=\"", f);
        cli_url_esc(f, base);
        fprintf(f, "/%u.jpg\" alt=\"", t->name);
        cli_html_name(f, name ? name + 1 : t->src);
        fputs("\">", f);
    } else {
        /* The page names the file already: show only the reason. */
        fputs("<div class=\"missing\">no thumbnail: ", f);
        cli_html_esc(f, cli_thumb_reason(t));
        fputs("</div>", f);
    }
}

const char *cli_thumb_reason(const cli_thumb *t)
{
    const char *why = t->reason ? t->reason : "out of memory";
    size_t plen = strlen(t->src);

    if (strncmp(why, t->src, plen) == 0 && strncmp(why + plen, ": ", 2) == 0)
        why += plen + 2;
    return why;
}

/* ---- the page ------------------------------------------------------------ */

const char cli_page_css[] =
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:14px/1.4 system-ui,-apple-system,'Segoe UI',"
    "Roboto,Helvetica,Arial,sans-serif;color:#1f2328;background:#f4f5f7}\n"
    "header{background:#fff;border-bottom:1px solid #d0d7de;padding:16px 24px}\n"
    "h1{margin:0 0 12px;font-size:20px;font-weight:600}\n"
    ".summary{display:flex;flex-wrap:wrap;gap:8px;margin:0}\n"
    ".summary div{background:#f6f8fa;border:1px solid #d0d7de;"
    "border-radius:6px;padding:6px 12px;min-width:96px}\n"
    ".summary dt{font-size:12px;color:#57606a}\n"
    ".summary dd{margin:0;font-size:18px;font-weight:600}\n"
    ".legend{margin:12px 0 0;color:#57606a;font-size:13px}\n"
    "main{padding:8px 24px 48px}\n"
    ".missing{padding:8px;font-size:12px;color:#cf222e;text-align:center;"
    "overflow-wrap:anywhere}\n"
    ".empty{padding:24px;color:#57606a}\n";

static const char report_css[] =
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
    "font-size:12px;background:#eaeef2;padding:0 4px;border-radius:4px;"
    "color:#1f2328}\n"
    ".group{background:#fff;border:1px solid #d0d7de;border-radius:8px;"
    "margin:16px 0;padding:10px 14px}\n"
    ".group h2{margin:0 0 8px;font-size:15px;font-weight:600}\n"
    ".group h2 .kind{font-weight:400;color:#57606a}\n"
    ".group.exact h2 .kind{color:#8250df}\n"
    ".row{display:flex;flex-wrap:wrap;gap:12px}\n"
    "figure{margin:0;width:184px;border:2px solid #d0d7de;border-radius:6px;"
    "padding:8px;background:#fff}\n"
    "figure.keep{border-color:#2da44e;background:#f0fff4}\n"
    "figure.drop{border-color:#cf222e;background:#fff5f5}\n"
    ".box{width:164px;height:164px;display:flex;align-items:center;"
    "justify-content:center;background:#eaeef2;border-radius:4px;"
    "overflow:hidden}\n"
    ".box img{width:160px;height:160px;object-fit:contain;image-rendering:pixelated;display:block}\n" /* small images (28 x 28) shown scaled up, sharp */
    "figcaption{margin-top:6px;font-size:12px}\n"
    ".badge{display:inline-block;padding:0 6px;border-radius:10px;"
    "font-weight:600;font-size:11px;text-transform:uppercase;color:#fff}\n"
    ".keep .badge{background:#2da44e}.drop .badge{background:#cf222e}\n"
    ".score{font-weight:600;margin-left:4px}\n"
    ".meta{color:#57606a}\n"
    ".path{display:block;color:#0969da;text-decoration:none;"
    "overflow-wrap:anywhere;font-family:ui-monospace,SFMono-Regular,Menlo,"
    "Consolas,monospace;font-size:11px;margin-top:2px}\n"
    ".path:hover{text-decoration:underline}\n";

/* The values of cli/draw.c's palette, as CSS. */
const char *const cli_palette[CLI_NCOLOURS] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#bcbd22", "#17becf", "#0000ff", "#ff22ff", "#224400", "#4411aa", "#ff0077",
    "#886600", "#770055", "#77bb88", "#0077ff", "#ff8888", "#dd00aa"};

typedef struct label_rank {
    size_t count;
    uint32_t label;
} label_rank;

static int label_rank_cmp(const void *a, const void *b)
{
    const label_rank *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->label > y->label) - (x->label < y->label);
}

int cli_label_colour_index(const size_t *counts, uint32_t nl, int *colour)
{
    label_rank *r;
    uint32_t k;
    int next = 0;

    if (nl <= CLI_NCOLOURS) {
        for (k = 0; k < nl; k++)
            colour[k] = (int)k;
        return PV_OK;
    }
    r = calloc(nl, sizeof *r);
    if (r == NULL)
        return PV_ENOMEM;
    for (k = 0; k < nl; k++)
        r[k] = (label_rank){counts[k], k};
    qsort(r, nl, sizeof *r, label_rank_cmp);
    for (k = 0; k < nl; k++)
        colour[k] = -1;
    /* Mark the most populous (-2), then hand out colours in label order. */
    for (k = 0; k < CLI_NCOLOURS; k++)
        if (r[k].count > 0)
            colour[r[k].label] = -2;
    for (k = 0; k < nl; k++)
        if (colour[k] == -2)
            colour[k] = next++;
    free(r);
    return PV_OK;
}

int cli_label_colours(const size_t *counts, uint32_t nl, const char **colour)
{
    int *idx = calloc(nl ? nl : 1, sizeof *idx);
    if (idx == NULL || cli_label_colour_index(counts, nl, idx) != PV_OK) {
        free(idx);
        return PV_ENOMEM;
    }
    for (uint32_t k = 0; k < nl; k++)
        colour[k] = idx[k] >= 0 ? cli_palette[idx[k]] : CLI_COLOUR_OTHER;
    free(idx);
    return PV_OK;
}

/* Counts and marks what has loaded: <body data-thumbs data-loaded
 * data-broken>. "#eager" in the URL asks for every thumbnail at once. */
const char cli_thumbs_js[] =
    "(function(){\n"
    "var b=document.body,im=document.querySelectorAll('img.thumb'),bad=0;\n"
    "b.dataset.thumbs=im.length;\n"
    "if(location.hash==='#eager')im.forEach(function(i){i.loading='eager';});\n"
    /* Broken ones are counted from their error events: a lazy image not yet
     * fetched also has naturalWidth 0, and is not broken. */
    "function count(){var ok=0;im.forEach(function(i){"
    "if(i.complete&&i.naturalWidth>0)ok++;});"
    "b.dataset.loaded=ok;b.dataset.broken=bad;}\n"
    "im.forEach(function(i){i.addEventListener('load',count);"
    "i.addEventListener('error',function(){bad++;count();"
    "var d=document.createElement('div');d.className='missing';"
    "d.textContent='thumbnail missing';i.replaceWith(d);});});\n"
    "count();\n"
    "})();\n";

static void fmt_bytes(char *buf, size_t len, uint64_t n)
{
    if (n < 1024)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else if (n < 1024u * 1024u)
        snprintf(buf, len, "%.1f KiB", (double)n / 1024.0);
    else if (n < 1024ull * 1024u * 1024u)
        snprintf(buf, len, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else
        snprintf(buf, len, "%.2f GiB", (double)n / (1024.0 * 1024.0 * 1024.0));
}

static void summary_item(FILE *f, const char *label, const char *value)
{
    fprintf(f, "<div><dt>%s</dt><dd>%s</dd></div>\n", label, value);
}

static void write_summary(FILE *f, const pv_dups *d, const char *prefix)
{
    char v[64];

    fputs("<dl class=\"summary\">\n", f);
    snprintf(v, sizeof v, "%zu", d->ngroups);
    summary_item(f, "groups", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)d->images);
    summary_item(f, "images in groups", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)d->dropped);
    summary_item(f, "to drop", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)d->exact_images);
    summary_item(f, "exact byte duplicates", v);
    snprintf(v, sizeof v, "%.4f", (double)d->threshold);
    summary_item(f, "threshold (cosine)", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)d->scanned);
    summary_item(f, "images scanned", v);
    fputs("</dl>\n<p class=\"legend\">", f);
    fprintf(f, "%s scan: %llu pairs at or above the threshold, found in ",
            d->approximate ? "Approximate (HNSW neighbours, each scored exactly)"
                           : "Exact (all pairs)",
            (unsigned long long)d->pairs);
    if (d->seconds < 0.01)
        fputs("under 0.01 s. ", f);
    else
        fprintf(f, "%.2f s. ", d->seconds);
    if (prefix[0] != '\0') {
        fputs("Paths are shown relative to <code>", f);
        cli_html_name(f, prefix);
        fputs("</code>. ", f);
    }
    fputs("<br>Each group is shown around its representative (first, kept); "
          "every other image's score is its cosine similarity to the "
          "representative, \"exact\" a byte-identical file. Green: kept. Red: "
          "on the drop list. Click a path to open the original.</p>\n", f);
}

/* The folder (ending in '/') that holds every image of the report, or ""
 * when it is just "/": captions show paths below it, so a row of long
 * paths that all begin alike shows what tells them apart. */
static size_t common_prefix(const pv_dups *d)
{
    const char *first = NULL;
    size_t len = 0, gi, i, k;

    for (gi = 0; gi < d->ngroups; gi++)
        for (i = 0; i < d->groups[gi].n; i++) {
            const char *p = d->groups[gi].members[i].item.path;
            if (first == NULL) {
                first = p;
                len = strlen(p);
                continue;
            }
            for (k = 0; k < len && p[k] == first[k]; k++)
                ;
            len = k;
        }
    while (len > 0 && first[len - 1] != '/')
        len--;
    return len > 1 ? len : 0;
}

/* What every caption needs besides its member. */
typedef struct page_ctx {
    const char *base;   /* the thumbnail folder's name, relative to the page */
    const char *cwd;    /* for a relative stored path; may be NULL */
    size_t prefix_len;  /* bytes of common_prefix() not shown in captions */
} page_ctx;

/* The page's full absolute path of p: stored paths are absolute, but a
 * relative one would make a file:// link that points nowhere. */
void cli_file_url(FILE *f, const char *path, const char *cwd)
{
    fputs("file://", f);
    if (path[0] != '/' && cwd != NULL) {
        cli_url_esc(f, cwd);
        fputc('/', f);
    }
    cli_url_esc(f, path);
}

static void write_member(FILE *f, const pv_dup_member *m, int rep,
                         const cli_thumb *t, const page_ctx *pc)
{
    const pv_item *it = &m->item;
    char size[32];

    fmt_bytes(size, sizeof size, it->size);
    fprintf(f, "<figure class=\"%s\" data-id=\"%u\">", m->keep ? "keep" : "drop",
            it->id);
    fputs("<div class=\"box\">", f);
    cli_thumb_html(f, t, pc->base);
    fputs("</div>\n<figcaption>", f);
    fprintf(f, "<span class=\"badge\">%s</span>", m->keep ? "keep" : "drop");
    if (rep)
        fputs("<span class=\"score\">representative</span>", f);
    else if (m->exact)
        fputs("<span class=\"score\">exact</span>", f);
    else
        fprintf(f, "<span class=\"score\">score %.4f</span>", (double)m->score);
    fputs("<br><span class=\"meta\">", f);
    if (it->width > 0 && it->height > 0)
        fprintf(f, "%u&times;%u", it->width, it->height);
    else
        fputs("?&times;?", f);
    fprintf(f, " &middot; %s</span>", size);
    fputs("<a class=\"path\" href=\"", f);
    /* No title attribute: the browser shows the link's full path on hover,
     * and a 10,000-group page is smaller without a third copy of it. */
    cli_file_url(f, it->path, pc->cwd);
    fputs("\">", f);
    cli_html_name(f, strlen(it->path) > pc->prefix_len ? it->path + pc->prefix_len
                                                   : it->path);
    fputs("</a></figcaption></figure>\n", f);
}

static void write_group(FILE *f, size_t gi, const pv_dup_group *g,
                        const cli_thumb *thumbs, const page_ctx *pc)
{
    size_t i;

    fprintf(f, "<section class=\"group%s\" id=\"g%zu\" data-members=\"%zu\">\n",
            g->all_exact ? " exact" : "", gi + 1, g->n);
    fprintf(f, "<h2>Group %zu &middot; %zu images &middot; <span class=\"kind\">",
            gi + 1, g->n);
    if (g->all_exact)
        fputs("exact duplicates (byte-identical)", f);
    else
        fprintf(f, "near-duplicates, lowest score %.4f", (double)g->weakest);
    fputs("</span></h2>\n<div class=\"row\">\n", f);
    for (i = 0; i < g->n; i++)
        write_member(f, &g->members[i], i == 0, &thumbs[i], pc);
    fputs("</div>\n</section>\n", f);
}

static void write_page(FILE *f, const pv_dups *d, const char *title,
                       const cli_thumb *thumbs, const page_ctx *pc)
{
    size_t gi, off = 0;
    char prefix[PATH_MAX];

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"pixvec\">\n<title>", f);
    cli_html_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s%s</style>\n</head>\n", cli_page_css, report_css);
    fprintf(f, "<body data-groups=\"%zu\" data-images=\"%llu\">\n<header>\n<h1>",
            d->ngroups, (unsigned long long)d->images);
    cli_html_esc(f, title);
    fputs("</h1>\n", f);
    snprintf(prefix, sizeof prefix, "%.*s",
             (int)(pc->prefix_len < sizeof prefix ? pc->prefix_len : 0),
             pc->prefix_len > 0 ? d->groups[0].members[0].item.path : "");
    write_summary(f, d, prefix);
    fputs("</header>\n<main>\n", f);
    if (d->ngroups == 0)
        fputs("<p class=\"empty\">No duplicates at this threshold.</p>\n", f);
    for (gi = 0; gi < d->ngroups; gi++) {
        write_group(f, gi, &d->groups[gi], thumbs + off, pc);
        off += d->groups[gi].n;
    }
    fprintf(f, "</main>\n<script>\n%s</script>\n</body>\n</html>\n", cli_thumbs_js);
}

/* ---- the file ------------------------------------------------------------ */

/* Create the folder, or accept it if it is one already. */
static int report_mkdir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (mkdir(dir, 0777) == 0)
        return PV_OK;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return PV_OK;
    if (errno == EEXIST)
        cli_page_err(err, errlen, "%s: exists and is not a folder", dir);
    else
        cli_page_err(err, errlen, "%s: cannot create the folder: %s", dir,
                   strerror(errno));
    return PV_EIO;
}

/* Open a new temporary file beside file (O_EXCL on a name of our own). */
static FILE *report_open_tmp(const char *file, char *tmp, size_t tmplen,
                             char *err, size_t errlen)
{
    FILE *f;
    int fd = -1, i, k;

    for (i = 0; i < 100 && fd < 0; i++) {
        k = snprintf(tmp, tmplen, "%s.tmp-%ld-%d", file, (long)getpid(), i);
        if (k < 0 || (size_t)k >= tmplen) {
            cli_page_err(err, errlen, "%s: path too long", file);
            tmp[0] = '\0';
            return NULL;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) {
            cli_page_err(err, errlen, "%s: cannot create: %s", file,
                       strerror(errno));
            tmp[0] = '\0';
            return NULL;
        }
    }
    if (fd < 0) {
        cli_page_err(err, errlen, "%s: no free temporary name", file);
        tmp[0] = '\0';
        return NULL;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        cli_page_err(err, errlen, "%s: %s", file, strerror(errno));
        close(fd);
        unlink(tmp);
        tmp[0] = '\0';
    }
    return f;
}

/* fsync the folder holding path, so a rename in it survives a crash. */
static int sync_folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc;

    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return -1;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int cli_file_open(cli_page *p, const char *file, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->file = file;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (file == NULL || file[0] == '\0') {
        cli_page_err(err, errlen, "no file given");
        return PV_EINVAL;
    }
    p->f = report_open_tmp(file, p->tmp, sizeof p->tmp, err, errlen);
    return p->f != NULL ? PV_OK : PV_EIO;
}

int cli_page_open(cli_page *p, const char *file, char *err, size_t errlen)
{
    int rc;

    memset(p, 0, sizeof *p);
    p->file = file;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (file == NULL || file[0] == '\0') {
        cli_page_err(err, errlen, "no page file given");
        return PV_EINVAL;
    }
    rc = report_dir_for(file, &p->dir, &p->base);
    if (rc != PV_OK) {
        cli_page_err(err, errlen, "%s: out of memory", file);
        return rc;
    }
    rc = report_mkdir(p->dir, err, errlen);
    if (rc != PV_OK)
        return rc;
    p->cwd = getcwd(NULL, 0); /* NULL is fine: stored paths are absolute */
    p->f = report_open_tmp(file, p->tmp, sizeof p->tmp, err, errlen);
    return p->f != NULL ? PV_OK : PV_EIO;
}

int cli_page_commit(cli_page *p, char *err, size_t errlen)
{
    int closed;

    /* One check at the end catches any short write: stdio keeps the error. */
    if (fflush(p->f) != 0 || ferror(p->f) || fsync(fileno(p->f)) != 0) {
        cli_page_err(err, errlen, "%s: cannot write: %s", p->file, strerror(errno));
        return PV_EIO;
    }
    closed = fclose(p->f);
    p->f = NULL;
    if (closed != 0) {
        cli_page_err(err, errlen, "%s: cannot write: %s", p->file, strerror(errno));
        return PV_EIO;
    }
    if (rename(p->tmp, p->file) != 0) {
        cli_page_err(err, errlen, "%s: cannot rename into place: %s", p->file,
                     strerror(errno));
        return PV_EIO;
    }
    p->tmp[0] = '\0';
    if (sync_folder_of(p->file) != 0) {
        cli_page_err(err, errlen, "%s: written, but its folder could not be synced: %s",
                     p->file, strerror(errno));
        return PV_EIO;
    }
    return PV_OK;
}

void cli_page_close(cli_page *p)
{
    if (p == NULL)
        return;
    if (p->f != NULL)
        fclose(p->f);
    if (p->tmp[0] != '\0')
        unlink(p->tmp);
    free(p->cwd);
    free(p->base);
    free(p->dir);
    memset(p, 0, sizeof *p);
}

int cli_report_html(const char *file, const pv_dups *d, const char *title,
                    char *err, size_t errlen)
{
    cli_thumb *thumbs = NULL;
    cli_page pg;
    page_ctx pc;
    char warn[PATH_MAX + REPORT_REASON_MAX] = "";
    size_t n = 0, gi, i;
    int rc;

    memset(&pg, 0, sizeof pg);
    if (d == NULL) {
        rc = PV_EINVAL;
        cli_page_err(err, errlen, "report: no result given");
        goto done;
    }
    if (title == NULL)
        title = "pixvec duplicates";
    rc = cli_page_open(&pg, file, err, errlen);
    if (rc != PV_OK)
        goto done;

    for (gi = 0; gi < d->ngroups; gi++) {
        if (d->groups[gi].n > SIZE_MAX / sizeof *thumbs - n) {
            rc = PV_ENOMEM;
            cli_page_err(err, errlen, "%s: too many images", file);
            goto done;
        }
        n += d->groups[gi].n;
    }
    thumbs = calloc(n > 0 ? n : 1, sizeof *thumbs);
    if (thumbs == NULL) {
        rc = PV_ENOMEM;
        cli_page_err(err, errlen, "%s: out of memory for %zu images", file, n);
        goto done;
    }
    n = 0;
    for (gi = 0; gi < d->ngroups; gi++)
        for (i = 0; i < d->groups[gi].n; i++, n++) {
            thumbs[n].src = d->groups[gi].members[i].item.path;
            thumbs[n].name = d->groups[gi].members[i].item.id;
        }
    cli_thumbs_make(thumbs, n, pg.dir, REPORT_THUMB_SIDE, warn, sizeof warn);

    pc.base = pg.base;
    pc.cwd = pg.cwd;
    pc.prefix_len = common_prefix(d);
    write_page(pg.f, d, title, thumbs, &pc);
    rc = cli_page_commit(&pg, err, errlen);
    if (rc == PV_OK)
        cli_page_err(err, errlen, "%s", warn);
done:
    cli_page_close(&pg);
    cli_thumbs_free(thumbs, n);
    free(thumbs);
    return rc;
}
