/*
 * img_gif.c - GIF through giflib 5.2 (engine/image room; img_formats.h).
 *
 * A GIF is taken as a still picture: its first frame, composed on the
 * logical screen. giflib reads from the buffer through an InputFunc
 * (DGifOpen); DGifSlurp is never used, because it decodes every frame of
 * an animation into memory (a thousand large frames in a small file is a
 * bomb). Records are read one by one up to the first image descriptor,
 * keeping the last Graphic Control Extension before it (its transparent
 * index), then the frame's rows one at a time with DGifGetLine.
 *
 * Composition, as browsers do it: the area of the screen outside the frame
 * is transparent (the background colour index is ignored, as Chromium and
 * Firefox ignore it), and so is the transparent index. Transparent is
 * white, the sink's background, put in here directly: the rows go to the
 * sink already in the caller's layout (RGB, or grey from a palette turned
 * to grey with the sink's img_luma), the same bytes alpha 0 through the
 * sink would give, with no per-pixel conversion: a tiny frame on a large
 * screen (a few bytes can claim 65535x2048) costs a copy a pixel. A first frame that extends beyond
 * the logical screen grows the screen to hold it (Chromium's GIFImageReader does this for the first
 * frame; encoders that write a 0x0 screen rely on it), so nothing of the frame is lost. The screen
 * as given, then the grown one, is checked with img_check_pixels before anything is allocated for
 * pixels. Indices beyond the colour map (the LZW codes allow up to 255 whatever the map's size) are
 * read as opaque black; a frame with neither a local nor a global colour map is refused.
 *
 * Memory: a non-interlaced frame goes to the sink row by row, one screen
 * row at a time. An interlaced frame comes in four passes (rows
 * 0, 8, ...; 4, 12, ...; 2, 6, ...; 1, 3, ...), so its index rows (one byte
 * a pixel, the frame's size at most, within PV_MAX_PIXELS) are held until
 * the last pass, then composed in order.
 *
 * Errors: giflib's codes become a reason through GifErrorString; when our
 * reader ran out of bytes the reason is "truncated: ..." whatever code
 * giflib chose (it reports a short screen descriptor as
 * D_GIF_ERR_NO_SCRN_DSCR, a short LZW code size with no code at all). A
 * frame whose data ends early (truncated, or an LZW end code before its
 * last pixel) fails: no half image is returned. The records after the
 * first frame, the trailer included, are never read.
 */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

#include <gif_lib.h>
#include <stdlib.h>
#include <string.h>

typedef struct gif_src {
    const uint8_t *buf;
    size_t n, pos;
    int ended; /* a read asked for more than was left */
} gif_src;

static int gif_read(GifFileType *gif, GifByteType *dst, int len)
{
    gif_src *s = gif->UserData;
    size_t k = s->n - s->pos;

    if (len <= 0)
        return 0;
    if ((size_t)len > k)
        s->ended = 1;
    else
        k = (size_t)len;
    if (k > 0)
        memcpy(dst, s->buf + s->pos, k);
    s->pos += k;
    return (int)k;
}

/* giflib's error `code` while reading `where`, as a PV_E* and a reason. */
static int gif_fail(const gif_src *s, int code, const char *where, char *err, size_t errlen)
{
    const char *what;

    if (code == D_GIF_ERR_NOT_ENOUGH_MEM) {
        pv_set_err(err, errlen, "out of memory reading the %s", where);
        return PV_ENOMEM;
    }
    if (s->ended) {
        pv_set_err(err, errlen, "truncated: the file ends in the %s", where);
        return PV_EDECODE;
    }
    /* Every short read sets ended; giflib's other READ_FAILED is an LZW
     * minimum code size over 8. */
    if (code == D_GIF_ERR_READ_FAILED)
        what = "bad LZW code size";
    else if ((what = code ? GifErrorString(code) : NULL) == NULL)
        what = "bad data";
    pv_set_err(err, errlen, "%s in the %s", what, where);
    return PV_EDECODE;
}

int img_decode_gif(IMG_DECODER_ARGS)
{
    static const uint32_t pass_start[4] = {0, 4, 2, 1}, pass_step[4] = {8, 8, 4, 2};
    gif_src src = {buf, n, 0, 0};
    GifFileType *gif = NULL;
    img_sink sink;
    const ColorMapObject *cmap;
    GifRecordType rt;
    uint8_t pal[256][3];
    uint8_t *line = NULL, *frame = NULL, *row = NULL, *bg = NULL;
    uint32_t sw, sh, fl, ft, fw, fh, w, h, x, y, p, sc = channels;
    int rc, gerr = 0, trans = NO_TRANSPARENT_COLOR, interlaced, i;

    memset(&sink, 0, sizeof sink);
    gif = DGifOpen(&src, gif_read, &gerr);
    if (gif == NULL) {
        rc = gif_fail(&src, gerr, "header or global colour map", err, errlen);
        goto done;
    }
    sw = (uint32_t)gif->SWidth;
    sh = (uint32_t)gif->SHeight;
    /* A 0x0 screen waits for the frame's size; a huge one stops here. */
    if (sw != 0 && sh != 0 && (rc = img_check_pixels(sw, sh, err, errlen)) != PV_OK)
        goto done;

    for (;;) {
        int code;
        GifByteType *ext;

        if (DGifGetRecordType(gif, &rt) == GIF_ERROR) {
            rc = gif_fail(&src, gif->Error, "records before the first frame", err, errlen);
            goto done;
        }
        if (rt == IMAGE_DESC_RECORD_TYPE)
            break;
        if (rt == TERMINATE_RECORD_TYPE) {
            pv_set_err(err, errlen, "no image: the file ends (trailer) before any frame");
            rc = PV_EDECODE;
            goto done;
        }
        if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) {
            rc = gif_fail(&src, gif->Error, "extension", err, errlen);
            goto done;
        }
        if (code == GRAPHICS_EXT_FUNC_CODE && ext != NULL) {
            GraphicsControlBlock gcb;
            if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK)
                trans = gcb.TransparentColor;
        }
        while (ext != NULL) {
            if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) {
                rc = gif_fail(&src, gif->Error, "extension", err, errlen);
                goto done;
            }
        }
    }
    /* The descriptor, the local colour map and the LZW code size; not
     * DGifGetImageDesc, which keeps a copy of every frame's descriptor. */
    if (DGifGetImageHeader(gif) == GIF_ERROR) {
        rc = gif_fail(&src, gif->Error, "first frame's descriptor", err, errlen);
        goto done;
    }
    fl = (uint32_t)gif->Image.Left;
    ft = (uint32_t)gif->Image.Top;
    fw = (uint32_t)gif->Image.Width;
    fh = (uint32_t)gif->Image.Height;
    interlaced = gif->Image.Interlace;
    if (fw == 0 || fh == 0) {
        pv_set_err(err, errlen, "the first frame is %ux%u pixels: a zero side", fw, fh);
        rc = PV_EDECODE;
        goto done;
    }
    w = sw > fl + fw ? sw : fl + fw; /* 16-bit sides: no overflow */
    h = sh > ft + fh ? sh : ft + fh;
    if ((rc = img_check_pixels(w, h, err, errlen)) != PV_OK)
        goto done;
    cmap = gif->Image.ColorMap != NULL ? gif->Image.ColorMap : gif->SColorMap;
    if (cmap == NULL) {
        pv_set_err(err, errlen,
                   "no colour map: the first frame has no local one and the file no global one");
        rc = PV_EDECODE;
        goto done;
    }
    /* The palette in the caller's layout (RGB, or grey as the sink makes
     * it), transparent as white: the sink then only copies. */
    memset(pal, 0, sizeof pal);
    for (i = 0; i < cmap->ColorCount && i < 256; i++) {
        pal[i][0] = cmap->Colors[i].Red;
        pal[i][1] = cmap->Colors[i].Green;
        pal[i][2] = cmap->Colors[i].Blue;
    }
    if (trans >= 0 && trans < 256)
        memset(pal[trans], 255, 3);
    if (sc == 1)
        for (i = 0; i < 256; i++)
            pal[i][0] = img_luma(pal[i][0], pal[i][1], pal[i][2]);

    rc = img_sink_begin(&sink, w, h, sc, channels, min_w, min_h, 1, err, errlen);
    if (rc != PV_OK)
        goto done;
    bg = pv_alloc_array(w, sc);
    row = pv_alloc_array(w, sc);
    if (interlaced)
        frame = pv_alloc_array(fw, fh);
    else
        line = pv_alloc_array(fw, 1);
    if (bg == NULL || row == NULL || (interlaced ? frame == NULL : line == NULL)) {
        pv_set_err(err, errlen, "out of memory for %ux%u", w, h);
        rc = PV_ENOMEM;
        goto done;
    }
    if (interlaced) {
        for (p = 0; p < 4; p++)
            for (y = pass_start[p]; y < fh; y += pass_step[p])
                if (DGifGetLine(gif, frame + (size_t)y * fw, (int)fw) == GIF_ERROR) {
                    rc = gif_fail(&src, gif->Error, "first frame's image data", err, errlen);
                    goto done;
                }
    }
    memset(bg, 255, (size_t)w * sc); /* outside the frame: transparent */
    memset(row, 255, (size_t)w * sc);
    for (y = 0; y < h; y++) {
        const uint8_t *idx = line;
        uint8_t *o = row + (size_t)fl * sc;
        if (y < ft || y >= ft + fh) {
            img_sink_row(&sink, bg);
            continue;
        }
        if (interlaced) {
            idx = frame + (size_t)(y - ft) * fw;
        } else if (DGifGetLine(gif, line, (int)fw) == GIF_ERROR) {
            rc = gif_fail(&src, gif->Error, "first frame's image data", err, errlen);
            goto done;
        }
        if (sc == 1)
            for (x = 0; x < fw; x++)
                o[x] = pal[idx[x]][0];
        else
            for (x = 0; x < fw; x++)
                memcpy(o + (size_t)x * 3, pal[idx[x]], 3);
        img_sink_row(&sink, row);
    }
    rc = img_sink_finish(&sink, out, err, errlen);
done:
    img_sink_free(&sink);
    free(bg);
    free(row);
    free(frame);
    free(line);
    if (gif != NULL)
        DGifCloseFile(gif, &gerr);
    return rc;
}
