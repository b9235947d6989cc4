/*
 * draw.c - the PNG pictures of the command line, drawn with cairo (cli
 * room; cli/plot.h): the scatter of a map (`pixvec map --png`) and the
 * histogram of nearest-neighbour scores (`pixvec dups --histogram-png`).
 *
 * Both draw on a cairo image surface (RGB24, antialiased) and write text
 * with cairo's toy text calls in DejaVu Sans (fonts-dejavu-core), loaded
 * from its files through FreeType (cairo-ft) so fontconfig is not needed;
 * no pango: labels are single lines we cut to fit ourselves, in their text
 * form (names.h: a name that is not plain UTF-8 is quoted, "caf\xe9"), since
 * cairo refuses invalid UTF-8 and file names are bytes. The PNG is encoded into memory with
 * cairo_surface_write_to_png_stream and then written atomically: a temporary
 * file beside dst (O_EXCL), fsync, rename over dst, fsync of the folder, so
 * dst is always the old file or the whole new one.
 *
 * The scatter follows the habits of umap.plot and datashader-style plots of
 * embeddings: small translucent discs whose radius and alpha shrink with the
 * number of points (so tens of thousands still read as densities), a
 * categorical palette (matplotlib's tab10 without its grey, then ten more
 * picked greedily to be as far in CIELAB as possible from those already
 * chosen, from grey and from white), a grey "other" for labels beyond it,
 * and points drawn in a fixed pseudo-random order (splitmix64 Fisher-Yates)
 * so no class lies wholly on top of another. Axes of a UMAP or t-SNE layout
 * mean nothing, so there are no ticks: the layout is fitted into a framed
 * area keeping its aspect ratio. A 3-D layout is shown as an orthographic
 * view from a fixed oblique angle (azimuth 35 degrees, elevation 25), its
 * bounding box as a faint wire cube, points painted back to front (the
 * painter's algorithm) and darkened with depth.
 *
 * The histogram is the one engine/image/plot.c drew before (bars in equal
 * bins, axes with "nice" ticks at 1, 2 or 5 times a power of ten, counts on
 * a linear or log scale, a red line at the threshold labelled with its
 * value, a title), with real fonts. Geometry: the plot area spans columns
 * [px0, px0 + pw) and rows [py0, py0 + ph); value v stands at column
 * px0 + (v - lo) / (hi - lo) * pw.
 */
#include <cairo.h>
#include <cairo-ft.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ft2build.h>
#include FT_FREETYPE_H

#include "pixvec.h"
#include "names.h"
#include "plot.h"
#include "report.h"

#define DRAW_FONT "DejaVu Sans"
#define DRAW_MIN_SIDE 200
#define DRAW_MAX_SIDE 8000
#define HIST_DEFAULT_W 800
#define HIST_DEFAULT_H 400
#define HIST_DEFAULT_BINS 100
/* More bins than this cannot be told apart on an 8000-pixel plot anyway. */
#define HIST_MAX_BINS (1u << 20)
#define SCATTER_DEFAULT_W 1200
#define SCATTER_DEFAULT_H 900
#define LEGEND_MAX 20 /* legend rows before "N more" */
#define TEXT_MAX 512  /* bytes of one line of text drawn */

static void draw_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void draw_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- writing the file ------------------------------------------------------ */

typedef struct png_mem {
    unsigned char *p;
    size_t len, cap;
} png_mem;

static cairo_status_t png_mem_write(void *closure, const unsigned char *data,
                                    unsigned int len)
{
    png_mem *m = closure;

    if (len > m->cap - m->len) {
        size_t cap = m->cap ? m->cap : 65536;
        unsigned char *np;
        while (cap - m->len < len) {
            if (cap > SIZE_MAX / 2)
                return CAIRO_STATUS_NO_MEMORY;
            cap *= 2;
        }
        np = realloc(m->p, cap);
        if (np == NULL)
            return CAIRO_STATUS_NO_MEMORY;
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return CAIRO_STATUS_SUCCESS;
}

/* Put n bytes at dst whole or not at all (see the top of the file). */
static int put_file(const char *dst, const unsigned char *data, size_t n,
                    char *err, size_t errlen)
{
    cli_page f;
    int rc = cli_file_open(&f, dst, err, errlen);
    if (rc == PV_OK && fwrite(data, 1, n, f.f) != n) {
        draw_err(err, errlen, "%s: cannot write: %s", dst, strerror(errno));
        rc = PV_EIO;
    }
    if (rc == PV_OK)
        rc = cli_page_commit(&f, err, errlen);
    cli_page_close(&f);
    return rc == PV_OK ? 0 : -1;
}

/* Encode the finished drawing as PNG in memory, then put it at dst. */
static int finish_png(cairo_t *cr, cairo_surface_t *sf, const char *dst,
                      char *err, size_t errlen)
{
    png_mem m = {0};
    cairo_status_t st = cairo_status(cr);
    int rc = -1;

    if (st == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(sf);
        st = cairo_surface_write_to_png_stream(sf, png_mem_write, &m);
    }
    if (st != CAIRO_STATUS_SUCCESS)
        draw_err(err, errlen, "%s: cairo: %s", dst, cairo_status_to_string(st));
    else
        rc = put_file(dst, m.p, m.len, err, errlen);
    free(m.p);
    return rc;
}

/* A white w x h canvas; on failure err names dst. */
static int canvas_open(int w, int h, const char *dst, cairo_surface_t **sf,
                       cairo_t **cr, char *err, size_t errlen)
{
    *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    *cr = cairo_create(*sf);
    if (cairo_status(*cr) != CAIRO_STATUS_SUCCESS) {
        draw_err(err, errlen, "%s: cannot make a %dx%d picture: %s", dst, w, h,
                 cairo_status_to_string(cairo_status(*cr)));
        return -1;
    }
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return 0;
}

static void canvas_close(cairo_surface_t *sf, cairo_t *cr)
{
    if (cr != NULL)
        cairo_destroy(cr);
    if (sf != NULL)
        cairo_surface_destroy(sf);
}

/* ---- text ------------------------------------------------------------------ */

/* s as text cairo accepts: its text form (names.h: a name that is not
 * plain UTF-8 quoted, "caf\xe9"), cut at a character boundary to fit
 * out[outlen]. */
static void text_clean(const char *s, char *out, size_t outlen)
{
    char *t = cli_name_text(s ? s : "");
    const unsigned char *p = (const unsigned char *)(t ? t : "?");
    size_t o = 0, n = strlen((const char *)p);

    while (*p != '\0') {
        size_t k = cli_utf8_len(p, n);
        if (k == 0) /* not in a text form; kept for safety */
            k = 1;
        if (o + k >= outlen)
            break;
        memcpy(out + o, p, k);
        o += k;
        p += k;
        n -= k;
    }
    out[o] = '\0';
    free(t);
}

/* DejaVu Sans loaded from its files through FreeType, once per process and
 * kept (the command line draws on one thread): the same glyphs whatever
 * fontconfig's configuration says, and fontconfig never starts (it leaks
 * what it allocates parsing its configuration, which LeakSanitizer would
 * report at every ASan-built run). Without the files, the toy API asks
 * fontconfig for DRAW_FONT. */
static const char *const font_files[2] = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
};
static FT_Library font_lib;
static cairo_font_face_t *font_faces[2];
static int font_tried;
static const cairo_user_data_key_t font_key;

static void font_done_face(void *face) { FT_Done_Face((FT_Face)face); }

static void font_load(void)
{
    int b;

    if (font_tried)
        return;
    font_tried = 1;
    if (FT_Init_FreeType(&font_lib) != 0)
        return;
    for (b = 0; b < 2; b++) {
        FT_Face face;
        cairo_font_face_t *cf;
        if (FT_New_Face(font_lib, font_files[b], 0, &face) != 0)
            continue;
        cf = cairo_ft_font_face_create_for_ft_face(face, 0);
        if (cairo_font_face_status(cf) != CAIRO_STATUS_SUCCESS ||
            cairo_font_face_set_user_data(cf, &font_key, face, font_done_face) !=
                CAIRO_STATUS_SUCCESS) {
            cairo_font_face_destroy(cf);
            FT_Done_Face(face);
            continue;
        }
        font_faces[b] = cf;
    }
}

static void font(cairo_t *cr, double size, int bold)
{
    font_load();
    if (font_faces[bold != 0] != NULL)
        cairo_set_font_face(cr, font_faces[bold != 0]);
    else
        cairo_select_font_face(cr, DRAW_FONT, CAIRO_FONT_SLANT_NORMAL,
                               bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;

    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* s cleaned and, if wider than maxw, cut with an ellipsis until it fits. */
static void text_fit(cairo_t *cr, const char *s, double maxw, char *out,
                     size_t outlen)
{
    size_t len;

    text_clean(s, out, outlen);
    len = strlen(out);
    if (text_width(cr, out) <= maxw || outlen < 4)
        return;
    while (len > 0) {
        do /* back to the start of a character */
            len--;
        while (len > 0 && ((unsigned char)out[len] & 0xC0) == 0x80);
        if (len + 4 > outlen)
            continue;
        memcpy(out + len, "\xE2\x80\xA6", 4); /* U+2026 and the NUL */
        if (text_width(cr, out) <= maxw)
            return;
    }
    out[0] = '\0';
}

/* Draw s with its baseline at y; align -1 left at x, 0 centred, 1 right. */
static void text_at(cairo_t *cr, double x, double y, const char *s, int align)
{
    double w = align != -1 ? text_width(cr, s) : 0.0;

    cairo_move_to(cr, align == 0 ? x - w / 2 : align == 1 ? x - w : x, y);
    cairo_show_text(cr, s);
}

/* A count with thousands separators: 70000 -> "70,000". */
static void fmt_thousands(char *buf, size_t len, uint64_t v)
{
    char d[32];
    size_t n = (size_t)snprintf(d, sizeof d, "%llu", (unsigned long long)v), o = 0, i;

    for (i = 0; i < n && o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = d[i];
    }
    buf[o] = '\0';
}

/* ---- the histogram --------------------------------------------------------- */

/* The smallest of 1, 2, 5 times a power of ten that is >= raw (> 0). */
static double nice_step(double raw)
{
    double mag = pow(10.0, floor(log10(raw))), norm = raw / mag;

    if (norm <= 1.0 + 1e-9)
        return mag;
    if (norm <= 2.0 + 1e-9)
        return 2.0 * mag;
    if (norm <= 5.0 + 1e-9)
        return 5.0 * mag;
    return 10.0 * mag;
}

/* Decimals needed to print multiples of step exactly (step = 1, 2, 5 x 10^k). */
static int step_decimals(double step)
{
    int d = (int)-floor(log10(step) + 1e-9);
    return d < 0 ? 0 : d > 9 ? 9 : d;
}

/* An x tick value; "-0.00" is printed as "0.00". */
static void fmt_tick(char *buf, size_t len, double v, int decimals)
{
    if (fabs(v) < 0.5 * pow(10.0, -decimals))
        v = 0.0;
    snprintf(buf, len, "%.*f", decimals, v);
}

/* A count: plain digits up to 7 of them, then 1.5e+07 style. */
static void fmt_count(char *buf, size_t len, double v)
{
    if (v < 1e7)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.2g", v);
}

typedef struct hist_geom {
    int px0, py0, pw, ph; /* plot area */
    int lw, tick;         /* axis line width, tick length */
    double fs;            /* tick label font size */
    double ytop;          /* linear: top count; log: log10 of the top count */
    double ystep;         /* linear: tick step */
    int log_counts;
} hist_geom;

/* Fraction 0..1 of the plot's height for count v. On a log scale the axis
 * starts at 0.5, so a bin of one still shows a bar. */
static double count_frac(const hist_geom *g, double v)
{
    double f;

    if (v <= 0.0)
        return 0.0;
    f = g->log_counts ? (log10(v) - log10(0.5)) / (g->ytop - log10(0.5)) : v / g->ytop;
    return f > 1.0 ? 1.0 : f;
}

static void fill_box(cairo_t *cr, int x0, int y0, int x1, int y1)
{
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_fill(cr);
}

static void hist_draw(cairo_t *cr, const cli_hist *h, int w, int ht, uint32_t bins,
                      const uint64_t *counts)
{
    const double lo = h->lo, hi = h->hi, range = hi - lo;
    double u = fmin(w / 800.0, ht / 400.0), v, step, first, ylw;
    char label[64];
    uint64_t maxc = 0;
    hist_geom g;
    cairo_font_extents_t fe;
    int i, x, dec, nticks, title_h;

    u = u < 0.5 ? 0.5 : u > 10.0 ? 10.0 : u;
    memset(&g, 0, sizeof g);
    g.log_counts = h->log_counts;
    g.lw = (int)lround(2 * u) < 1 ? 1 : (int)lround(2 * u);
    g.tick = (int)lround(5 * u);
    g.fs = 11.0 * u;
    for (i = 0; i < (int)bins; i++)
        if (counts[i] > maxc)
            maxc = counts[i];

    /* The y range first: its widest label sets the left margin. */
    if (h->log_counts) {
        double e = ceil(log10(maxc > 1 ? (double)maxc : 1.0) - 1e-12);
        g.ytop = e < 1.0 ? 1.0 : e; /* at least 0.5 .. 10 */
        fmt_count(label, sizeof label, pow(10.0, g.ytop));
    } else {
        /* About five ticks; counts are whole, so the step is too. */
        g.ystep = nice_step(maxc > 5 ? (double)maxc / 5.0 : 1.0);
        g.ytop = ceil((maxc > 0 ? (double)maxc : 1.0) / g.ystep) * g.ystep;
        fmt_count(label, sizeof label, g.ytop);
    }
    font(cr, g.fs, 0);
    cairo_font_extents(cr, &fe);
    ylw = fmax(text_width(cr, label), text_width(cr, "000"));

    title_h = (int)ceil(fe.height * 1.3 + 10 * u);
    g.px0 = (int)ceil(6 * u + ylw + 4 * u) + g.tick + g.lw;
    g.py0 = title_h;
    g.pw = w - g.px0 - (int)ceil(text_width(cr, "0.000") / 2 + 8 * u);
    g.ph = ht - g.py0 - g.lw - g.tick - (int)ceil(4 * u + fe.ascent + fe.descent + 4 * u);

    /* Bars: a gap column between bins wide enough to afford one. */
    cairo_set_source_rgb(cr, 70 / 255.0, 110 / 255.0, 170 / 255.0);
    for (i = 0; i < (int)bins; i++) {
        int xa = g.px0 + (int)((int64_t)i * g.pw / bins);
        int xb = g.px0 + (int)((int64_t)(i + 1) * g.pw / bins);
        int bh = (int)lround(count_frac(&g, (double)counts[i]) * g.ph);
        if (xb - xa >= 3)
            xb--;
        if (xb <= xa)
            xb = xa + 1;
        if (bh > 0)
            fill_box(cr, xa, g.py0 + g.ph - bh, xb, g.py0 + g.ph);
    }

    /* Axes, lw thick, growing away from the plot area. */
    cairo_set_source_rgb(cr, 0, 0, 0);
    fill_box(cr, g.px0 - g.lw, g.py0, g.px0, g.py0 + g.ph + g.lw);
    fill_box(cr, g.px0 - g.lw, g.py0 + g.ph, g.px0 + g.pw, g.py0 + g.ph + g.lw);

    /* x ticks: as many as fit with two characters of space between labels. */
    dec = step_decimals(nice_step(range / 10.0));
    fmt_tick(label, sizeof label, fabs(lo) > fabs(hi) ? lo : hi, dec);
    nticks = (int)(g.pw / (text_width(cr, label) + text_width(cr, "00") + 1));
    if (nticks < 2)
        nticks = 2;
    step = nice_step(range / nticks);
    dec = step_decimals(step);
    /* lo and hi are floats: 0.3f is 0.30000001, which must still get its
     * tick at 0.3, so ends within 1e-4 of a step count as on the tick. */
    first = ceil(lo / step - 1e-4) * step;
    for (i = 0, v = first; v <= hi + step * 1e-4 && i < 1000; i++, v = first + i * step) {
        x = g.px0 + (int)lround((v - lo) / range * g.pw);
        if (x >= g.px0 + g.pw)
            x = g.px0 + g.pw - 1;
        fill_box(cr, x - g.lw / 2, g.py0 + g.ph + g.lw, x - g.lw / 2 + g.lw,
                 g.py0 + g.ph + g.lw + g.tick);
        fmt_tick(label, sizeof label, v, dec);
        text_at(cr, x, g.py0 + g.ph + g.lw + g.tick + 4 * u + fe.ascent, label, 0);
    }

    /* y ticks: each power of ten, or each step. */
    for (v = 0.0; v <= g.ytop + 1e-9; v += g.log_counts ? 1.0 : g.ystep) {
        double c = g.log_counts ? pow(10.0, v) : v;
        int y = g.py0 + g.ph - (int)lround(count_frac(&g, c) * g.ph);
        fill_box(cr, g.px0 - g.lw - g.tick, y - g.lw / 2, g.px0 - g.lw,
                 y - g.lw / 2 + g.lw);
        fmt_count(label, sizeof label, c);
        text_at(cr, g.px0 - g.lw - g.tick - 4 * u, y + (fe.ascent - fe.descent) / 2,
                label, 1);
    }

    /* The title, centred, cut to fit. */
    if (h->title != NULL && h->title[0] != '\0') {
        char t[TEXT_MAX];
        cairo_set_source_rgb(cr, 0, 0, 0);
        font(cr, 13.0 * u, 1);
        text_fit(cr, h->title, w - 12 * u, t, sizeof t);
        text_at(cr, w / 2.0, 6 * u + 13.0 * u, t, 0);
        font(cr, g.fs, 0);
    }

    /* The mark, drawn last so nothing covers it; its value on a white box
     * right of the line, or left of it where it would run off the picture. */
    if (h->mark >= h->lo && h->mark <= h->hi) {
        double tw, lx, ly = g.py0 + 4 * u;
        x = g.px0 + (int)lround(((double)h->mark - lo) / range * g.pw);
        if (x >= g.px0 + g.pw)
            x = g.px0 + g.pw - 1;
        cairo_set_source_rgb(cr, 220 / 255.0, 0, 0);
        fill_box(cr, x - g.lw / 2, g.py0, x - g.lw / 2 + g.lw, g.py0 + g.ph);
        snprintf(label, sizeof label, "%.4g", (double)h->mark);
        tw = text_width(cr, label);
        lx = x + g.lw + 4 * u;
        if (lx + tw + 2 * u > w)
            lx = x - g.lw - 4 * u - tw;
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_rectangle(cr, lx - 2 * u, ly, tw + 4 * u, fe.ascent + fe.descent + 2 * u);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 220 / 255.0, 0, 0);
        text_at(cr, lx, ly + u + fe.ascent, label, -1);
    }
}

int cli_hist_png(const cli_hist *h, const char *dst, char *err, size_t errlen)
{
    cairo_surface_t *sf = NULL;
    cairo_t *cr = NULL;
    uint64_t *counts = NULL;
    uint32_t bins, w, ht;
    double range, scale;
    size_t i;
    int rc = -1;

    if (h == NULL || dst == NULL || dst[0] == '\0') {
        draw_err(err, errlen, "histogram: no histogram or no destination given");
        goto done;
    }
    if (h->values == NULL && h->n > 0) {
        draw_err(err, errlen, "%s: %zu values but no array", dst, h->n);
        goto done;
    }
    range = (double)h->hi - (double)h->lo;
    if (!isfinite(h->lo) || !isfinite(h->hi) || !(h->lo < h->hi) || !isfinite(range)) {
        draw_err(err, errlen, "%s: the range [%g, %g] is not finite and increasing",
                 dst, (double)h->lo, (double)h->hi);
        goto done;
    }
    /* An infinite mark is outside [lo, hi], so not drawn; NaN is a caller's
     * bug (a threshold computed from nothing), not a request for no line. */
    if (isnan(h->mark)) {
        draw_err(err, errlen, "%s: the threshold is NaN", dst);
        goto done;
    }
    w = h->width ? h->width : HIST_DEFAULT_W;
    ht = h->height ? h->height : HIST_DEFAULT_H;
    if (w < DRAW_MIN_SIDE || w > DRAW_MAX_SIDE || ht < DRAW_MIN_SIDE || ht > DRAW_MAX_SIDE) {
        draw_err(err, errlen, "%s: size %ux%u is outside %u..%u per side", dst,
                 (unsigned)w, (unsigned)ht, DRAW_MIN_SIDE, DRAW_MAX_SIDE);
        goto done;
    }
    bins = h->bins ? h->bins : HIST_DEFAULT_BINS;
    if (bins > HIST_MAX_BINS) {
        draw_err(err, errlen, "%s: %u bins, more than %u", dst, (unsigned)bins,
                 HIST_MAX_BINS);
        goto done;
    }
    counts = calloc(bins, sizeof *counts);
    if (counts == NULL) {
        draw_err(err, errlen, "%s: out of memory", dst);
        goto done;
    }
    scale = bins / range;
    for (i = 0; i < h->n; i++) {
        double v = h->values[i], t;
        if (isnan(v))
            continue;
        t = (v - h->lo) * scale;
        /* Outside values (and +-Inf) are clamped into the end bins. */
        counts[t <= 0.0 ? 0 : t >= bins ? bins - 1 : (uint32_t)t]++;
    }
    if (canvas_open((int)w, (int)ht, dst, &sf, &cr, err, errlen) != 0)
        goto done;
    hist_draw(cr, h, (int)w, (int)ht, bins, counts);
    rc = finish_png(cr, sf, dst, err, errlen);
done:
    canvas_close(sf, cr);
    free(counts);
    return rc;
}

/* ---- the scatter ----------------------------------------------------------- */

/* The palette is the pages' (report.c's cli_palette, "#rrggbb"), turned
 * into bytes once: one table for the PNG and the HTML pages. */
static uint8_t palette[CLI_NCOLOURS][3], c_other[3];
#define c_single palette[0]

static void hex_rgb(const char *h, uint8_t c[3])
{
    unsigned long v = strtoul(h + 1, NULL, 16);
    c[0] = (uint8_t)(v >> 16);
    c[1] = (uint8_t)(v >> 8);
    c[2] = (uint8_t)v;
}

static void palette_load(void)
{
    for (int k = 0; k < CLI_NCOLOURS; k++)
        hex_rgb(cli_palette[k], palette[k]);
    hex_rgb(CLI_COLOUR_OTHER, c_other);
}

/* splitmix64 (Steele, Lea, Flood 2014): the draw order's shuffle. */
static uint64_t mix_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct proj {
    float x, y, depth; /* screen-space before fitting; depth: larger is nearer */
    uint32_t i;        /* the point */
} proj;

static int proj_far_first(const void *a, const void *b)
{
    const proj *p = a, *q = b;

    if (p->depth != q->depth)
        return p->depth < q->depth ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

/* The fixed oblique view: turn by the azimuth about the vertical axis, then
 * tilt by the elevation; screen y grows downwards. */
#define VIEW_AZ (35.0 * M_PI / 180.0)
#define VIEW_EL (25.0 * M_PI / 180.0)
static void view3(double x, double y, double z, double *sx, double *sy, double *d)
{
    double X = x * cos(VIEW_AZ) + z * sin(VIEW_AZ);
    double Z1 = -x * sin(VIEW_AZ) + z * cos(VIEW_AZ);

    *sx = X;
    *sy = -(y * cos(VIEW_EL) - Z1 * sin(VIEW_EL));
    *d = y * sin(VIEW_EL) + Z1 * cos(VIEW_EL);
}

typedef struct legend_row {
    const char *name; /* NULL: "label K" */
    uint32_t label;
    uint64_t count;
    int colour; /* palette index, -1 other */
} legend_row;

static int row_by_name(const void *a, const void *b)
{
    const legend_row *p = a, *q = b;
    int c = strcmp(p->name ? p->name : "", q->name ? q->name : "");
    return c ? c : (p->label > q->label) - (p->label < q->label);
}

/* A legend row's name: the label's, or "label K" when it has none. */
static const char *row_name(const legend_row *r, char *buf, size_t len)
{
    if (r->name != NULL)
        return r->name;
    snprintf(buf, len, "label %u", (unsigned)r->label);
    return buf;
}

typedef struct scatter_job {
    const cli_scatter *s;
    int w, h;
    double u;              /* 1 at 1200 x 900 */
    proj *pts;             /* the finite points, in drawing order */
    size_t np;
    int *colour;           /* per label: palette index or -1 */
    legend_row *rows;      /* labels with points, by name */
    uint32_t nrows;
    uint64_t other_count;  /* points of labels drawn grey */
    uint32_t other_labels;
} scatter_job;

/* Project the finite points and put them in drawing order. */
static int scatter_project(scatter_job *j)
{
    const cli_scatter *s = j->s;
    size_t i, k = 0;
    uint64_t st = 0x5eed5eedULL;

    j->pts = malloc((s->n ? s->n : 1) * sizeof *j->pts);
    if (j->pts == NULL)
        return -1;
    for (i = 0; i < s->n; i++) {
        const float *c = s->xyz + i * (size_t)s->dims;
        double sx, sy, d = 0.0;
        if (!isfinite(c[0]) || !isfinite(c[1]) || (s->dims == 3 && !isfinite(c[2])))
            continue;
        if (s->dims == 3) {
            view3(c[0], c[1], c[2], &sx, &sy, &d);
        } else {
            sx = c[0];
            sy = -(double)c[1];
        }
        j->pts[k].x = (float)sx;
        j->pts[k].y = (float)sy;
        j->pts[k].depth = (float)d;
        j->pts[k].i = (uint32_t)i;
        k++;
    }
    j->np = k;
    if (s->dims == 3) {
        qsort(j->pts, k, sizeof *j->pts, proj_far_first);
    } else {
        for (i = k; i > 1; i--) { /* Fisher-Yates */
            size_t r = (size_t)(mix_next(&st) % i);
            proj t = j->pts[i - 1];
            j->pts[i - 1] = j->pts[r];
            j->pts[r] = t;
        }
    }
    return 0;
}

/* Count points per label, give colours and sort the legend. */
static int scatter_labels(scatter_job *j)
{
    const cli_scatter *s = j->s;
    uint32_t k, nl = s->nlabels, nr = 0;
    size_t i;

    j->colour = calloc(nl ? nl : 1, sizeof *j->colour);
    j->rows = calloc(nl ? nl : 1, sizeof *j->rows);
    if (j->colour == NULL || j->rows == NULL)
        return -1;
    for (k = 0; k < nl; k++) {
        j->rows[k].label = k;
        j->rows[k].name = s->label_names ? s->label_names[k] : NULL;
    }
    for (i = 0; i < j->np; i++)
        j->rows[s->label[j->pts[i].i]].count++;
    /* The pages' rule (cli_label_colour_index): up to CLI_NCOLOURS labels
     * keep their own order's colours; past that the most populous get
     * colours, in label order, the rest grey. */
    size_t *counts = calloc(nl ? nl : 1, sizeof *counts);
    if (counts == NULL)
        return -1;
    for (k = 0; k < nl; k++)
        counts[k] = (size_t)j->rows[k].count;
    int crc = cli_label_colour_index(counts, nl, j->colour);
    free(counts);
    if (crc != PV_OK)
        return -1;
    /* The legend: coloured labels with points, by name; the rest as one row. */
    for (k = 0; k < nl; k++) {
        legend_row r = j->rows[k];
        r.colour = j->colour[r.label];
        if (r.count == 0)
            continue;
        if (r.colour < 0) {
            j->other_count += r.count;
            j->other_labels++;
            continue;
        }
        j->rows[nr++] = r;
    }
    j->nrows = nr;
    qsort(j->rows, nr, sizeof *j->rows, row_by_name);
    return 0;
}

static void set_rgb(cairo_t *cr, const uint8_t c[3], double f, double a)
{
    cairo_set_source_rgba(cr, c[0] / 255.0 * f, c[1] / 255.0 * f, c[2] / 255.0 * f, a);
}

/* One legend row centred on cy: a disc of colour c, the name cut to fit the
 * column's width lw, and " (count)" after it, never cut. */
static void legend_entry(cairo_t *cr, double x, double cy, double lw, double fs,
                         const uint8_t c[3], const char *name, uint64_t count)
{
    double rad = fs * 0.38;
    char t[TEXT_MAX + 40], n[32], suffix[40];

    set_rgb(cr, c, 1.0, 1.0);
    cairo_arc(cr, x + rad, cy, rad, 0, 2 * M_PI);
    cairo_fill(cr);
    fmt_thousands(n, sizeof n, count);
    snprintf(suffix, sizeof suffix, " (%s)", n);
    text_fit(cr, name, lw - 3 * rad - text_width(cr, suffix), t, TEXT_MAX);
    strcat(t, suffix);
    cairo_set_source_rgb(cr, 0.13, 0.13, 0.13);
    text_at(cr, x + 3 * rad, cy + fs * 0.35, t, -1);
}

/* Legend in the column [x, x + lw) from row y: at most LEGEND_MAX labels
 * and only the rows that fit above ymax, the rest summed up as "N more". */
static void scatter_legend(scatter_job *j, cairo_t *cr, double x, double y,
                           double lw, double ymax)
{
    double fs = 12.0 * j->u, rowh = fs * 1.6;
    char buf[64];
    uint32_t shown = j->nrows, k, fit;
    uint64_t rest = j->other_count;
    int more = j->other_labels > 0;

    font(cr, fs, 0);
    fit = (uint32_t)fmax(1.0, floor((ymax - y) / rowh));
    if (shown > LEGEND_MAX)
        shown = LEGEND_MAX;
    if (shown + (uint32_t)more > fit || shown < j->nrows) {
        more = 1;
        if (shown + 1 > fit)
            shown = fit - 1;
    }
    for (k = 0; k < j->nrows; k++) {
        const legend_row *r = &j->rows[k];
        if (k >= shown) {
            rest += r->count;
            continue;
        }
        legend_entry(cr, x, y + rowh * k + rowh / 2, lw, fs, palette[r->colour],
                     row_name(r, buf, sizeof buf), r->count);
    }
    if (more) {
        snprintf(buf, sizeof buf, "%u more", (unsigned)(j->other_labels + (j->nrows - shown)));
        legend_entry(cr, x, y + rowh * shown + rowh / 2, lw, fs, c_other, buf, rest);
    }
}

/* The widest legend row, to size the legend's column. */
static double legend_width(scatter_job *j, cairo_t *cr)
{
    double fs = 12.0 * j->u, wmax = 0.0;
    char buf[64], t[TEXT_MAX], n[32];
    uint32_t k;

    font(cr, fs, 0);
    for (k = 0; k < j->nrows && k < LEGEND_MAX; k++) {
        fmt_thousands(n, sizeof n, j->rows[k].count);
        text_clean(row_name(&j->rows[k], buf, sizeof buf), t, sizeof t);
        wmax = fmax(wmax, text_width(cr, t) + text_width(cr, n) + text_width(cr, " ()"));
    }
    wmax = fmax(wmax, text_width(cr, "0000 more (000,000)"));
    return wmax + 3 * fs * 0.38;
}

/* The 12 edges of the box [lo, hi] in the 3-D view, mapped by (ox, oy, sc). */
static void wire_cube(cairo_t *cr, const double lo[3], const double hi[3],
                      double ox, double oy, double sc, double mx, double my)
{
    int a, b, e;

    for (a = 0; a < 8; a++)
        for (e = 0; e < 3; e++) {
            double p[3], q[3], x0, y0, x1, y1, d;
            b = a | (1 << e);
            if (b == a)
                continue;
            for (int k = 0; k < 3; k++) {
                p[k] = (a >> k) & 1 ? hi[k] : lo[k];
                q[k] = (b >> k) & 1 ? hi[k] : lo[k];
            }
            view3(p[0], p[1], p[2], &x0, &y0, &d);
            view3(q[0], q[1], q[2], &x1, &y1, &d);
            cairo_move_to(cr, ox + (x0 - mx) * sc, oy + (y0 - my) * sc);
            cairo_line_to(cr, ox + (x1 - mx) * sc, oy + (y1 - my) * sc);
        }
    cairo_stroke(cr);
}

/* A line of text at x whose top is at y, fs high, in the grey level given;
 * returns where the next line may start, gap below its baseline (y itself
 * when text is NULL or empty: nothing drawn). */
static double heading(cairo_t *cr, const char *text, double fs, int bold, double grey,
                      double x, double maxw, double y, double gap)
{
    char t[TEXT_MAX];

    if (text == NULL || text[0] == '\0')
        return y;
    font(cr, fs, bold);
    text_fit(cr, text, maxw, t, sizeof t);
    cairo_set_source_rgb(cr, grey, grey, grey);
    text_at(cr, x, y + fs, t, -1);
    return y + fs + gap;
}

static void scatter_draw(scatter_job *j, cairo_t *cr)
{
    const cli_scatter *s = j->s;
    const double u = j->u, margin = 24 * u;
    double top = margin * 0.6, ax0, ay0, ax1, ay1, lgw = 0.0;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    double dmin = INFINITY, dmax = -INFINITY, sc, ox, oy, rad, alpha, mx, my;
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    size_t i;

    /* Title (bold, near black) and subtitle (grey) down from the top. */
    top = heading(cr, s->title, 20.0 * u, 1, 0.1, margin, j->w - 2 * margin, top, 8 * u);
    top = heading(cr, s->subtitle, 13.0 * u, 0, 0.4, margin, j->w - 2 * margin, top, 6 * u);

    /* The framed area, the legend right of it. */
    ax0 = margin;
    ay0 = top + 10 * u;
    ax1 = j->w - margin;
    ay1 = j->h - margin;
    if (s->label != NULL && (j->nrows > 0 || j->other_labels > 0)) {
        lgw = fmin(legend_width(j, cr), 0.3 * j->w);
        ax1 -= lgw + 16 * u;
        scatter_legend(j, cr, ax1 + 16 * u, ay0, lgw, ay1);
    }
    /* A one-pixel frame on whole pixels, so it stays crisp. */
    ax0 = floor(ax0), ay0 = floor(ay0), ax1 = floor(ax1), ay1 = floor(ay1);
    cairo_set_line_width(cr, 1.0);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_rectangle(cr, ax0 + 0.5, ay0 + 0.5, ax1 - ax0 - 1, ay1 - ay0 - 1);
    cairo_stroke(cr);

    if (j->np == 0)
        return;
    for (i = 0; i < j->np; i++) {
        const proj *p = &j->pts[i];
        xmin = fmin(xmin, p->x), xmax = fmax(xmax, p->x);
        ymin = fmin(ymin, p->y), ymax = fmax(ymax, p->y);
        dmin = fmin(dmin, p->depth), dmax = fmax(dmax, p->depth);
    }
    /* In 3-D the whole wire box is fitted, not just the points, so its
     * edges are not cut by the frame. */
    if (s->dims == 3) {
        for (i = 0; i < j->np; i++)
            for (int k = 0; k < 3; k++) {
                double c = s->xyz[(size_t)j->pts[i].i * 3 + k];
                lo[k] = fmin(lo[k], c), hi[k] = fmax(hi[k], c);
            }
        for (int a = 0; a < 8; a++) {
            double sx, sy, d;
            view3(a & 1 ? hi[0] : lo[0], a & 2 ? hi[1] : lo[1], a & 4 ? hi[2] : lo[2],
                  &sx, &sy, &d);
            xmin = fmin(xmin, sx), xmax = fmax(xmax, sx);
            ymin = fmin(ymin, sy), ymax = fmax(ymax, sy);
        }
    }
    /* Points' size and opacity fall with their number: at 70,000 on the
     * default picture a disc is about 1.3 pixels across the radius. */
    rad = sqrt(0.35 * (ax1 - ax0) * (ay1 - ay0) / (M_PI * (double)j->np));
    rad = fmin(fmax(rad, 0.9 * fmax(u, 1.0)), 6.0 * u);
    alpha = 0.9 - 0.2 * log10(fmax(1.0, (double)j->np / 1000.0));
    alpha = fmin(fmax(alpha, 0.35), 0.9);
    /* Fit keeping the aspect ratio; one point or all equal: the centre. */
    {
        double iw = ax1 - ax0 - 2 * (rad + 6 * u), ih = ay1 - ay0 - 2 * (rad + 6 * u);
        double dx = xmax - xmin, dy = ymax - ymin;
        sc = dx > 0 && dy > 0 ? fmin(iw / dx, ih / dy) : dx > 0 ? iw / dx : dy > 0 ? ih / dy : 0.0;
        if (!isfinite(sc))
            sc = 0.0;
        mx = (xmin + xmax) / 2, my = (ymin + ymax) / 2;
        ox = (ax0 + ax1) / 2, oy = (ay0 + ay1) / 2;
    }
    cairo_save(cr);
    cairo_rectangle(cr, ax0 + 1, ay0 + 1, ax1 - ax0 - 2, ay1 - ay0 - 2);
    cairo_clip(cr);
    if (s->dims == 3) {
        cairo_set_source_rgb(cr, 0.86, 0.86, 0.86);
        cairo_set_line_width(cr, fmax(1.0, u));
        wire_cube(cr, lo, hi, ox, oy, sc, mx, my);
    }
    for (i = 0; i < j->np; i++) {
        const proj *p = &j->pts[i];
        const uint8_t *c = c_single;
        double f = 1.0;
        if (s->label != NULL) {
            int ci = j->colour[s->label[p->i]];
            c = ci >= 0 ? palette[ci] : c_other;
        }
        if (s->dims == 3 && dmax > dmin) /* far points up to 30 % darker */
            f = 1.0 - 0.3 * (dmax - p->depth) / (dmax - dmin);
        set_rgb(cr, c, f, alpha);
        cairo_arc(cr, ox + (p->x - mx) * sc, oy + (p->y - my) * sc, rad, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

int cli_scatter_png(const cli_scatter *s, const char *dst, int width, int height,
                    char *err, size_t errlen)
{
    cairo_surface_t *sf = NULL;
    cairo_t *cr = NULL;
    scatter_job j;
    size_t i;
    int rc = -1;

    memset(&j, 0, sizeof j);
    palette_load();
    if (s == NULL || dst == NULL || dst[0] == '\0') {
        draw_err(err, errlen, "scatter: no points or no destination given");
        goto done;
    }
    if (s->dims != 2 && s->dims != 3) {
        draw_err(err, errlen, "%s: %d dimensions (2 or 3 can be drawn)", dst, s->dims);
        goto done;
    }
    if (s->n > 0 && s->xyz == NULL) {
        draw_err(err, errlen, "%s: %zu points but no coordinates", dst, s->n);
        goto done;
    }
    if (s->n >= UINT32_MAX || s->n > SIZE_MAX / sizeof(proj)) {
        draw_err(err, errlen, "%s: %zu points, too many to draw", dst, s->n);
        goto done;
    }
    if (s->label != NULL)
        for (i = 0; i < s->n; i++)
            if (s->label[i] >= s->nlabels) {
                draw_err(err, errlen, "%s: point %zu has label %u of %u", dst, i,
                         (unsigned)s->label[i], (unsigned)s->nlabels);
                goto done;
            }
    j.s = s;
    j.w = width ? width : SCATTER_DEFAULT_W;
    j.h = height ? height : SCATTER_DEFAULT_H;
    if (j.w < DRAW_MIN_SIDE || j.w > DRAW_MAX_SIDE || j.h < DRAW_MIN_SIDE ||
        j.h > DRAW_MAX_SIDE) {
        draw_err(err, errlen, "%s: size %dx%d is outside %d..%d per side", dst, j.w,
                 j.h, DRAW_MIN_SIDE, DRAW_MAX_SIDE);
        goto done;
    }
    j.u = fmax(0.5, fmin(j.w / (double)SCATTER_DEFAULT_W, j.h / (double)SCATTER_DEFAULT_H));
    if (scatter_project(&j) != 0 || (s->label != NULL && scatter_labels(&j) != 0)) {
        draw_err(err, errlen, "%s: out of memory for %zu points", dst, s->n);
        goto done;
    }
    if (canvas_open(j.w, j.h, dst, &sf, &cr, err, errlen) != 0)
        goto done;
    scatter_draw(&j, cr);
    rc = finish_png(cr, sf, dst, err, errlen);
done:
    canvas_close(sf, cr);
    free(j.pts);
    free(j.colour);
    free(j.rows);
    return rc;
}
