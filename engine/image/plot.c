/*
 * plot.c - a histogram drawn as a PNG (engine/image room; pv_histogram_png).
 *
 * `dups` shows the distribution of nearest-neighbour scores with the chosen
 * threshold on it, so a user can see where the duplicates separate from the
 * rest. The picture is drawn into an RGB buffer by hand, with no plotting
 * library: bars, two axes with ticks, numeric tick labels, a title and a red
 * threshold line. Text uses a built-in 5x7 bitmap font for printable ASCII
 * (32..126), scaled by a whole factor that grows with the picture, so there is
 * no font file to find at run time.
 *
 * Geometry: the plot area spans columns [px0, px0 + pw) and rows
 * [py0, py0 + ph). A value v sits at column px0 + (v - lo) / (hi - lo) * pw,
 * bin i covers columns px0 + i*pw/bins .. px0 + (i+1)*pw/bins - 1, and the
 * x axis is the row py0 + ph, the y axis the column px0 - 1. Tick steps are
 * "nice" numbers (1, 2 or 5 times a power of ten) chosen so labels do not
 * overlap. On a log scale the axis runs from 0.5 to the next power of ten
 * above the largest count, so a bin holding a single value still shows a bar.
 *
 * The PNG is encoded in memory (a plot is mostly flat colour and compresses
 * to a few tens of KiB) and then written by pv_write_file_atomic: a
 * temporary file next to dst (created with O_EXCL), fsync'ed and renamed over
 * dst, and the directory fsync'ed: dst is either the old file or the whole
 * new one, never half written. A failed directory sync is reported, since the
 * rename might then not survive a crash. libpng reports errors through a
 * callback that longjmps; as in img_decode.c all state the error path needs
 * lives in a job struct, not in locals setjmp could clobber.
 */
#include "pixvec.h"
#include "pv_util.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#define PLOT_DEFAULT_W 800
#define PLOT_DEFAULT_H 400
#define PLOT_MIN_SIDE 200
#define PLOT_MAX_SIDE 8000
#define PLOT_DEFAULT_BINS 100
/* More bins than this cannot be told apart on an 8000-pixel plot anyway;
 * the cap keeps the counts array small. */
#define PLOT_MAX_BINS (1u << 20)

/* ---- font ------------------------------------------------------------------ */

#define GLYPH_W 5
#define GLYPH_H 7

/* 5x7 glyphs for ASCII 32..126, one byte a row, top row first; bit 4 is the
 * leftmost column. Drawn after the HD44780 character ROM's shapes. */
static const uint8_t font5x7[95][GLYPH_H] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ' ' */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}, /* ! */
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00}, /* " */
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}, /* # */
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04}, /* $ */
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, /* % */
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D}, /* & */
    {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}, /* ' */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, /* ( */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, /* ) */
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}, /* * */
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}, /* + */
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}, /* , */
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, /* . */
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}, /* / */
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, /* 0 */
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, /* 2 */
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, /* 4 */
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, /* 6 */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, /* 8 */
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, /* 9 */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}, /* : */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}, /* ; */
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}, /* < */
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}, /* = */
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}, /* > */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}, /* ? */
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E}, /* @ */
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}, /* A */
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}, /* B */
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, /* C */
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}, /* D */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, /* E */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}, /* F */
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, /* G */
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, /* H */
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* I */
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}, /* J */
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, /* K */
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}, /* L */
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, /* M */
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}, /* N */
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, /* O */
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}, /* P */
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, /* Q */
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}, /* R */
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, /* S */
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, /* T */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, /* U */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}, /* V */
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, /* W */
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}, /* X */
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}, /* Y */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}, /* Z */
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}, /* [ */
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00}, /* \ */
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}, /* ] */
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00}, /* ^ */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}, /* _ */
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00}, /* ` */
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}, /* a */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}, /* b */
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}, /* c */
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}, /* d */
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}, /* e */
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}, /* f */
    {0x00, 0x00, 0x0F, 0x11, 0x0F, 0x01, 0x0E}, /* g */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, /* h */
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}, /* i */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}, /* j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, /* k */
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* l */
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}, /* m */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, /* n */
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}, /* o */
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}, /* p */
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}, /* q */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, /* r */
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}, /* s */
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}, /* t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}, /* u */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}, /* v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}, /* w */
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}, /* x */
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}, /* y */
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}, /* z */
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02}, /* { */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, /* | */
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08}, /* } */
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00}, /* ~ */
};

/* ---- canvas ---------------------------------------------------------------- */

typedef struct canvas {
    uint8_t *px; /* w*h RGB */
    int w, h;
    int s;       /* font scale: a glyph is 5s x 7s, a character cell 6s wide */
} canvas;

static const uint8_t c_black[3] = {0, 0, 0};
static const uint8_t c_white[3] = {255, 255, 255};
static const uint8_t c_bar[3] = {70, 110, 170};
static const uint8_t c_mark[3] = {220, 0, 0};

/* Fill the rectangle [x0, x1) x [y0, y1), clipped to the canvas. */
static void fill_rect(canvas *c, int x0, int y0, int x1, int y1,
                      const uint8_t rgb[3])
{
    int x, y;

    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > c->w)
        x1 = c->w;
    if (y1 > c->h)
        y1 = c->h;
    for (y = y0; y < y1; y++)
        for (x = x0; x < x1; x++)
            memcpy(c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3, rgb, 3);
}

static int text_width(const canvas *c, size_t nchars)
{
    /* 6s a cell, without the spacing column after the last glyph. */
    return nchars == 0 ? 0 : (int)nchars * 6 * c->s - c->s;
}

/* Draw text with its top-left corner at (x, y). Bytes outside printable
 * ASCII are drawn as '?' (the title is documented as ASCII). */
static void draw_text(canvas *c, int x, int y, const char *t,
                      const uint8_t rgb[3])
{
    int s = c->s;

    for (; *t != '\0'; t++, x += 6 * s) {
        unsigned ch = (unsigned char)*t;
        const uint8_t *g;
        int r, k;
        if (ch < 32 || ch > 126)
            ch = '?';
        g = font5x7[ch - 32];
        for (r = 0; r < GLYPH_H; r++)
            for (k = 0; k < GLYPH_W; k++)
                if (g[r] & (0x10 >> k))
                    fill_rect(c, x + k * s, y + r * s, x + (k + 1) * s,
                              y + (r + 1) * s, rgb);
    }
}

/* ---- axes ------------------------------------------------------------------ */

/* The smallest of 1, 2, 5 times a power of ten that is >= raw (> 0). */
static double nice_step(double raw)
{
    double mag = pow(10.0, floor(log10(raw)));
    double norm = raw / mag;

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

/* A tick value on the x axis; "-0.00" is printed as "0.00". */
static void format_fixed(char *buf, size_t len, double v, int decimals)
{
    if (fabs(v) < 0.5 * pow(10.0, -decimals))
        v = 0.0;
    snprintf(buf, len, "%.*f", decimals, v);
}

/* A count: plain digits up to 7 of them, then 1.5e+07 style. */
static void format_count(char *buf, size_t len, double v)
{
    if (v < 1e7)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.2g", v);
}

/* ---- layout and drawing ---------------------------------------------------- */

typedef struct layout {
    int px0, py0, pw, ph; /* plot area */
    int tick;             /* tick length */
    double ytop;          /* linear: top count; log: log10 of the top count */
    double ystep;         /* linear: tick step */
} layout;

/* Height in pixels of a bar holding count, 0..ph. */
static int bar_height(const layout *L, int log_counts, uint64_t count)
{
    double f;

    if (count == 0)
        return 0;
    if (log_counts)
        f = (log10((double)count) - log10(0.5)) / (L->ytop - log10(0.5));
    else
        f = (double)count / L->ytop;
    if (f > 1.0)
        f = 1.0;
    return (int)lround(f * L->ph);
}

/* Row of a count on the y axis (for ticks). */
static int count_row(const layout *L, int log_counts, double v)
{
    double f = log_counts ? (log10(v) - log10(0.5)) / (L->ytop - log10(0.5))
                          : v / L->ytop;
    return L->py0 + L->ph - (int)lround(f * L->ph);
}

static void draw_plot(canvas *c, const pv_hist_plot *p, uint32_t bins,
                      const uint64_t *counts)
{
    int s = c->s, x, i;
    uint64_t maxc = 0;
    layout L;
    char label[64];
    size_t ylabel_chars;
    double v, step, first, range = (double)p->hi - (double)p->lo;
    int nticks, dec;

    for (i = 0; i < (int)bins; i++)
        if (counts[i] > maxc)
            maxc = counts[i];

    /* The y range first: its widest label sets the left margin. */
    memset(&L, 0, sizeof L);
    if (p->log_counts) {
        double e = ceil(log10(maxc > 1 ? (double)maxc : 1.0) - 1e-12);
        L.ytop = e < 1.0 ? 1.0 : e; /* at least 0.5 .. 10 */
        format_count(label, sizeof label, pow(10.0, L.ytop));
    } else {
        /* About five ticks; counts are whole, so the step is too. */
        L.ystep = nice_step(maxc > 5 ? (double)maxc / 5.0 : 1.0);
        L.ytop = ceil((maxc > 0 ? (double)maxc : 1.0) / L.ystep) * L.ystep;
        format_count(label, sizeof label, L.ytop);
    }
    ylabel_chars = strlen(label) < 3 ? 3 : strlen(label);

    L.tick = 4 * s;
    L.px0 = 4 * s + text_width(c, ylabel_chars) + 2 * s + L.tick;
    L.py0 = (GLYPH_H + 8) * s;                       /* title row */
    L.pw = c->w - L.px0 - 12 * s;                    /* room for the last label */
    L.ph = c->h - L.py0 - (L.tick + 3 * s + GLYPH_H * s + 6 * s);

    /* Bars. A gap column between bins when they are wide enough to afford
     * one, so neighbouring bars stay distinguishable. */
    for (i = 0; i < (int)bins; i++) {
        int xa = L.px0 + (int)((int64_t)i * L.pw / bins);
        int xb = L.px0 + (int)((int64_t)(i + 1) * L.pw / bins);
        int bh = bar_height(&L, p->log_counts, counts[i]);
        if (xb - xa >= 3)
            xb--;
        if (xb <= xa)
            xb = xa + 1;
        if (bh > 0)
            fill_rect(c, xa, L.py0 + L.ph - bh, xb, L.py0 + L.ph, c_bar);
    }

    /* Axes: y at column px0 - 1, x at row py0 + ph, s pixels thick, growing
     * away from the plot area. */
    fill_rect(c, L.px0 - s, L.py0, L.px0, L.py0 + L.ph + s, c_black);
    fill_rect(c, L.px0 - s, L.py0 + L.ph, L.px0 + L.pw, L.py0 + L.ph + s,
              c_black);

    /* x ticks: as many as fit with a label's width of space between them. */
    dec = step_decimals(nice_step(range / 10.0));
    format_fixed(label, sizeof label, fabs(p->lo) > fabs(p->hi) ? p->lo : p->hi,
                 dec);
    nticks = L.pw / (text_width(c, strlen(label) + 2) + 1);
    if (nticks < 2)
        nticks = 2;
    step = nice_step(range / nticks);
    dec = step_decimals(step);
    /* lo and hi are floats: 0.3f is 0.30000001, which must still get its
     * tick at 0.3, so ends within 1e-4 of a step count as on the tick. */
    first = ceil((double)p->lo / step - 1e-4) * step;
    for (v = first, i = 0; v <= (double)p->hi + step * 1e-4 && i < 1000;
         i++, v = first + i * step) {
        int w;
        x = L.px0 + (int)lround((v - p->lo) / range * L.pw);
        if (x >= L.px0 + L.pw)
            x = L.px0 + L.pw - 1;
        fill_rect(c, x - s / 2, L.py0 + L.ph + s, x - s / 2 + s,
                  L.py0 + L.ph + s + L.tick, c_black);
        format_fixed(label, sizeof label, v, dec);
        w = text_width(c, strlen(label));
        draw_text(c, x - w / 2, L.py0 + L.ph + s + L.tick + 2 * s, label,
                  c_black);
    }

    /* y ticks. */
    if (p->log_counts) {
        double e;
        for (e = 0.0; e <= L.ytop + 1e-9; e += 1.0) {
            int y = count_row(&L, 1, pow(10.0, e)), w;
            fill_rect(c, L.px0 - s - L.tick, y - s / 2, L.px0 - s,
                      y - s / 2 + s, c_black);
            format_count(label, sizeof label, pow(10.0, e));
            w = text_width(c, strlen(label));
            draw_text(c, L.px0 - s - L.tick - 2 * s - w, y - GLYPH_H * s / 2,
                      label, c_black);
        }
    } else {
        for (v = 0.0; v <= L.ytop + 1e-9; v += L.ystep) {
            int y = count_row(&L, 0, v), w;
            fill_rect(c, L.px0 - s - L.tick, y - s / 2, L.px0 - s,
                      y - s / 2 + s, c_black);
            format_count(label, sizeof label, v);
            w = text_width(c, strlen(label));
            draw_text(c, L.px0 - s - L.tick - 2 * s - w, y - GLYPH_H * s / 2,
                      label, c_black);
        }
    }

    /* The title, centred; cut to the characters that fit. */
    if (p->title != NULL && p->title[0] != '\0') {
        size_t fit = (size_t)((c->w - 4 * s) / (6 * s)), len = strlen(p->title);
        char buf[PLOT_MAX_SIDE / 6 + 1];
        if (len > fit)
            len = fit;
        if (len >= sizeof buf)
            len = sizeof buf - 1;
        memcpy(buf, p->title, len);
        buf[len] = '\0';
        draw_text(c, (c->w - text_width(c, len)) / 2, 4 * s, buf, c_black);
    }

    /* The mark, drawn last so nothing covers it; its label on a white box
     * right of the line, or left of it when it would run off the plot. */
    if (p->mark >= p->lo && p->mark <= p->hi) {
        int w, lx, ly = L.py0 + 2 * s;
        x = L.px0 + (int)lround(((double)p->mark - p->lo) / range * L.pw);
        if (x >= L.px0 + L.pw)
            x = L.px0 + L.pw - 1;
        fill_rect(c, x - s / 2, L.py0, x - s / 2 + s, L.py0 + L.ph, c_mark);
        snprintf(label, sizeof label, "%.4g", (double)p->mark);
        w = text_width(c, strlen(label));
        lx = x + 3 * s;
        if (lx + w + s > c->w)
            lx = x - 3 * s - w;
        fill_rect(c, lx - s, ly - s, lx + w + s, ly + GLYPH_H * s + s, c_white);
        draw_text(c, lx, ly, label, c_mark);
    }
}

/* ---- writing --------------------------------------------------------------- */

typedef struct png_out {
    png_structp png;
    png_infop info;
    png_bytep *rows;
    unsigned char *buf; /* the encoded PNG so far */
    size_t len, cap;
    int oom;            /* buf could not grow */
    char msg[128];      /* libpng's message */
} png_out;

static void out_error(png_structp png, png_const_charp msg)
{
    png_out *o = png_get_error_ptr(png);

    snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void out_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Append to o->buf, doubling it as needed. */
static void out_write(png_structp png, png_bytep data, size_t len)
{
    png_out *o = png_get_io_ptr(png);
    size_t cap = o->cap ? o->cap : 65536, need;
    unsigned char *nb = o->buf;

    if (len > SIZE_MAX - o->len) {
        o->oom = 1;
        png_error(png, "out of memory");
    }
    need = o->len + len;
    while (cap < need && cap <= SIZE_MAX / 2)
        cap *= 2;
    if (cap < need || (cap != o->cap && (nb = realloc(o->buf, cap)) == NULL)) {
        o->oom = 1;
        png_error(png, "out of memory");
    }
    o->buf = nb;
    o->cap = cap;
    memcpy(o->buf + o->len, data, len);
    o->len = need;
}

static void out_flush(png_structp png) { (void)png; }

/* Runs under setjmp: the error path needs only *o. */
static int png_out_run(png_out *o, const canvas *c)
{
    int y;

    if (setjmp(png_jmpbuf(o->png)))
        return -1;
    png_set_write_fn(o->png, o, out_write, out_flush);
    png_set_IHDR(o->png, o->info, (png_uint_32)c->w, (png_uint_32)c->h, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(o->png, o->info);
    for (y = 0; y < c->h; y++)
        o->rows[y] = c->px + (size_t)y * (size_t)c->w * 3;
    png_write_image(o->png, o->rows);
    png_write_end(o->png, NULL);
    return 0;
}

/* Encode c as PNG in memory, then write it to dst atomically. */
static int write_png(const canvas *c, const char *dst, char *err,
                     size_t errlen)
{
    png_out o;
    int rc = PV_EIO;

    memset(&o, 0, sizeof o);
    o.rows = pv_alloc_array((size_t)c->h, sizeof *o.rows);
    o.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &o, out_error,
                                    out_warning);
    if (o.png != NULL)
        o.info = png_create_info_struct(o.png);
    if (o.rows == NULL || o.png == NULL || o.info == NULL) {
        pv_set_err(err, errlen, "%s: out of memory", dst);
        rc = PV_ENOMEM;
        goto done;
    }
    if (png_out_run(&o, c) != 0) {
        if (o.oom) {
            pv_set_err(err, errlen, "%s: out of memory for the PNG", dst);
            rc = PV_ENOMEM;
        } else {
            pv_set_err(err, errlen, "%s: libpng: %s", dst, o.msg);
        }
        goto done;
    }
    rc = pv_write_file_atomic(dst, o.buf, o.len, 1, err, errlen);
done:
    if (o.png != NULL)
        png_destroy_write_struct(&o.png, o.info ? &o.info : NULL);
    free(o.rows);
    free(o.buf);
    return rc;
}

/* ---- the public call ------------------------------------------------------- */

int pv_histogram_png(const pv_hist_plot *p, const char *dst, char *err,
                     size_t errlen)
{
    canvas c;
    uint64_t *counts = NULL;
    uint32_t bins, w, h;
    double range, scale;
    size_t i;
    int rc = PV_EINVAL;

    memset(&c, 0, sizeof c);
    if (p == NULL || dst == NULL || dst[0] == '\0') {
        pv_set_err(err, errlen, "histogram: no plot or no destination given");
        goto done;
    }
    if (p->values == NULL && p->n > 0) {
        pv_set_err(err, errlen, "%s: %zu values but no array", dst, p->n);
        goto done;
    }
    /* isfinite: a NaN or infinite end leaves no bin width to divide by. */
    if (!isfinite(p->lo) || !isfinite(p->hi) || !(p->lo < p->hi)) {
        pv_set_err(err, errlen, "%s: the range [%g, %g] is not finite and "
                   "increasing", dst, (double)p->lo, (double)p->hi);
        goto done;
    }
    /* An infinite mark is outside [lo, hi], so not drawn; NaN is a caller's
     * bug (a threshold computed from nothing), not a request for no line. */
    if (isnan(p->mark)) {
        pv_set_err(err, errlen, "%s: the mark is NaN", dst);
        goto done;
    }
    w = p->width ? p->width : PLOT_DEFAULT_W;
    h = p->height ? p->height : PLOT_DEFAULT_H;
    if (w < PLOT_MIN_SIDE || w > PLOT_MAX_SIDE || h < PLOT_MIN_SIDE ||
        h > PLOT_MAX_SIDE) {
        pv_set_err(err, errlen, "%s: size %ux%u is outside %u..%u per side",
                   dst, (unsigned)w, (unsigned)h, PLOT_MIN_SIDE, PLOT_MAX_SIDE);
        goto done;
    }
    bins = p->bins ? p->bins : PLOT_DEFAULT_BINS;
    if (bins > PLOT_MAX_BINS) {
        pv_set_err(err, errlen, "%s: %u bins, more than %u", dst,
                   (unsigned)bins, PLOT_MAX_BINS);
        goto done;
    }
    range = (double)p->hi - (double)p->lo;
    if (!isfinite(range)) {
        pv_set_err(err, errlen, "%s: the range [%g, %g] is too wide", dst,
                   (double)p->lo, (double)p->hi);
        goto done;
    }

    counts = pv_calloc_array(bins, sizeof *counts);
    c.px = pv_alloc_array((size_t)w * h, 3);
    if (counts == NULL || c.px == NULL) {
        pv_set_err(err, errlen, "%s: out of memory for %ux%u", dst, (unsigned)w,
                   (unsigned)h);
        rc = PV_ENOMEM;
        goto done;
    }
    scale = bins / range;
    for (i = 0; i < p->n; i++) {
        double v = p->values[i], t;
        if (isnan(v))
            continue;
        t = (v - p->lo) * scale;
        /* Outside values (and +-Inf) are clamped into the end bins. */
        counts[t <= 0.0 ? 0 : t >= bins ? bins - 1 : (uint32_t)t]++;
    }

    c.w = (int)w;
    c.h = (int)h;
    /* 1 at 400x200, 2 at the default 800x400: text stays legible as the
     * picture grows. */
    c.s = (int)(w / 400 < h / 200 ? w / 400 : h / 200);
    if (c.s < 1)
        c.s = 1;
    if (c.s > 8)
        c.s = 8;
    memset(c.px, 255, (size_t)w * h * 3);
    draw_plot(&c, p, bins, counts);
    rc = write_png(&c, dst, err, errlen);
done:
    free(counts);
    free(c.px);
    return rc;
}
