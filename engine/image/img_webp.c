/*
 * img_webp.c - WebP decoding through libwebp (engine/image room).
 *
 * Lossy (VP8), lossless (VP8L), lossy with an alpha plane (ALPH) and the
 * extended format (VP8X) are decoded by libwebp from memory; alpha comes
 * as RGBA rows and the sink (img_sink.c) composites it over white. The
 * EXIF orientation comes from the file's "EXIF" chunk (WebPDemux's chunk
 * iterator, then img_exif_orientation). libwebp returns a status and
 * never prints, so there is nothing to capture: every VP8StatusCode is
 * mapped to a reason here (webp_fail). WebPDecode is told it has all the
 * data, so a file that ends early, or whose RIFF size promises more than
 * the file holds, fails with VP8_STATUS_NOT_ENOUGH_DATA ("truncated")
 * rather than decoding to a partly grey picture.
 *
 * Limits: the size is checked with img_check_pixels before libwebp is
 * asked to decode: the VP8X canvas read from the header here (a still
 * image whose canvas disagrees with its bitstream is refused by libwebp
 * without the size, so a hand-made 16383 x 16383 canvas would otherwise
 * come back as a corrupt file, not as too big), then WebPGetFeatures'
 * width and height.
 *
 * Memory: libwebp decodes whole images only (its row callbacks are not
 * public), so two paths.
 *  - Scaled: when the caller's minimum lets the image be reduced
 *    (img_reduce_size, for the minimum as displayed), libwebp's own
 *    scaled decoding (WebPDecoderConfig options.use_scaling) writes the
 *    reduced size directly. Its rescaler averages the area each output
 *    pixel covers, like img_area, and img_reduce_size's whole multiples
 *    keep it exact, so no full-size RGB(A) image is ever held: a lossy
 *    picture is decoded a macroblock row at a time into the rescaler
 *    (it averages Y, U and V, then converts, with the loop filter skipped
 *    below 3/4 size, so it is within a few levels of averaging the fully
 *    decoded RGB, not bit for bit); a lossless one is held by libwebp as
 *    ARGB (4 bytes a pixel, VP8L needs the whole image for its
 *    transforms) and premultiplied by alpha before it is averaged.
 *  - Whole: otherwise (no reduction wanted, or a lossy picture with
 *    alpha, whose colours libwebp's rescaler would average without
 *    weighting them by alpha, so hidden colours under transparent pixels
 *    would bleed into the white they are composited to), the image is
 *    decoded at full size into one buffer (3 or 4 bytes a pixel) and its
 *    rows are fed to the sink, which reduces and converts them; an opaque
 *    picture wanted in RGB at full size is decoded straight into the
 *    result. The largest decode thus holds PV_MAX_PIXELS * (4 + 3) bytes,
 *    as a whole PNG does, plus libwebp's own ARGB for a lossless one.
 * Either way im.w x im.h is what img_reduce_size picks (never below the
 * minimum) and orig_w x orig_h the full size as displayed.
 *
 * Animation: the first frame, as WebPAnimDecoder would show it, composed
 * here from WebPDemux's frame 1: the frame (decoded whole, it lies within
 * the canvas) at its offset on a transparent canvas (the ANIM background
 * colour is only a hint, and libwebp's animation decoder ignores it too),
 * so transparent areas become white. The canvas is never allocated: its
 * rows are made one at a time for the sink, which reduces them.
 */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

/* The reason for a libwebp status; `what` names the part being decoded. */
static int webp_fail(VP8StatusCode st, const char *what, char *err, size_t errlen)
{
    switch (st) {
    case VP8_STATUS_OUT_OF_MEMORY:
        pv_set_err(err, errlen, "out of memory decoding the WebP %s", what);
        return PV_ENOMEM;
    case VP8_STATUS_NOT_ENOUGH_DATA:
        pv_set_err(err, errlen,
                   "truncated: the file ends before the WebP %s does (or its "
                   "RIFF size claims more bytes than the file has)",
                   what);
        return PV_EDECODE;
    case VP8_STATUS_BITSTREAM_ERROR:
        pv_set_err(err, errlen, "corrupt WebP %s (bitstream error)", what);
        return PV_EDECODE;
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        pv_set_err(err, errlen, "WebP %s uses a feature libwebp does not support", what);
        return PV_EDECODE;
    case VP8_STATUS_INVALID_PARAM:
        pv_set_err(err, errlen, "libwebp refused the parameters for the WebP %s", what);
        return PV_EDECODE;
    case VP8_STATUS_SUSPENDED:
    case VP8_STATUS_USER_ABORT:
        pv_set_err(err, errlen, "libwebp stopped before the end of the WebP %s", what);
        return PV_EDECODE;
    default:
        pv_set_err(err, errlen, "WebP %s: libwebp status %d", what, (int)st);
        return PV_EDECODE;
    }
}

static uint32_t le24(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

/* The VP8X canvas, when the file starts with a VP8X chunk: 0 if not. */
static int vp8x_canvas(const uint8_t *buf, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 30 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WEBP", 4) != 0 ||
        memcmp(buf + 12, "VP8X", 4) != 0)
        return 0;
    *w = 1 + le24(buf + 24);
    *h = 1 + le24(buf + 27);
    return 1;
}

/* Decode buf whole (scaled to sw x sh when scale) into px, rows of
 * stride bytes, RGB or RGBA. */
static int webp_decode_into(const uint8_t *buf, size_t n, int rgba, int scale, uint32_t sw,
                            uint32_t sh, uint8_t *px, size_t stride, const char *what, char *err,
                            size_t errlen)
{
    WebPDecoderConfig cfg;
    VP8StatusCode st;

    if (!WebPInitDecoderConfig(&cfg)) {
        pv_set_err(err, errlen, "libwebp version mismatch");
        return PV_EDECODE;
    }
    cfg.options.use_threads = 0;
    if (scale) {
        cfg.options.use_scaling = 1;
        cfg.options.scaled_width = (int)sw;
        cfg.options.scaled_height = (int)sh;
    }
    cfg.output.colorspace = rgba ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = px;
    cfg.output.u.RGBA.stride = (int)stride;
    cfg.output.u.RGBA.size = stride * sh;
    st = WebPDecode(buf, n, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* external memory: frees nothing of ours */
    if (st != VP8_STATUS_OK)
        return webp_fail(st, what, err, errlen);
    return PV_OK;
}

/* Every row of a w x h image of sc samples to the sink. */
static int webp_sink_all(img_sink *s, const uint8_t *px, uint32_t h, size_t stride, img *out,
                         char *err, size_t errlen)
{
    uint32_t y;

    for (y = 0; y < h; y++)
        img_sink_row(s, px + (size_t)y * stride);
    return img_sink_finish(s, out, err, errlen);
}

/* The first frame of an animation: frame 1 on a transparent canvas. */
static int webp_first_frame(WebPDemuxer *dmx, uint32_t cw, uint32_t ch, uint32_t channels,
                            uint32_t min_w, uint32_t min_h, int orientation, img *out, char *err,
                            size_t errlen)
{
    WebPIterator it;
    WebPBitstreamFeatures f;
    img_sink s;
    uint8_t *frame = NULL, *row = NULL;
    uint32_t fw, fh, fx, fy, y;
    size_t fstride;
    VP8StatusCode st;
    int rc, have_it = 0;

    memset(&s, 0, sizeof s);
    if (!WebPDemuxGetFrame(dmx, 1, &it)) {
        pv_set_err(err, errlen, "animated WebP without a first frame");
        return PV_EDECODE;
    }
    have_it = 1;
    if (!it.complete) {
        rc = PV_EDECODE;
        pv_set_err(err, errlen, "truncated: the first frame of the animated WebP is incomplete");
        goto done;
    }
    if (it.width <= 0 || it.height <= 0 || it.x_offset < 0 || it.y_offset < 0 ||
        (uint64_t)it.x_offset + (uint64_t)it.width > cw ||
        (uint64_t)it.y_offset + (uint64_t)it.height > ch) {
        rc = PV_EDECODE;
        pv_set_err(err, errlen, "the first frame (%dx%d at %d,%d) lies outside the %ux%u canvas",
                   it.width, it.height, it.x_offset, it.y_offset, cw, ch);
        goto done;
    }
    fw = (uint32_t)it.width;
    fh = (uint32_t)it.height;
    fx = (uint32_t)it.x_offset;
    fy = (uint32_t)it.y_offset;
    st = WebPGetFeatures(it.fragment.bytes, it.fragment.size, &f);
    if (st != VP8_STATUS_OK) {
        rc = webp_fail(st, "first frame", err, errlen);
        goto done;
    }
    if ((uint32_t)f.width != fw || (uint32_t)f.height != fh) {
        rc = PV_EDECODE;
        pv_set_err(err, errlen, "the first frame's bitstream is %dx%d, its header says %ux%u",
                   f.width, f.height, fw, fh);
        goto done;
    }
    rc = img_sink_begin(&s, cw, ch, 4, channels, min_w, min_h, orientation, err, errlen);
    if (rc != PV_OK)
        goto done;
    fstride = (size_t)fw * 4;
    frame = pv_alloc_array(fstride, fh);
    row = calloc((size_t)cw, 4); /* transparent: alpha 0 */
    if (frame == NULL || row == NULL) {
        rc = PV_ENOMEM;
        pv_set_err(err, errlen, "out of memory for a %ux%u frame", fw, fh);
        goto done;
    }
    rc = webp_decode_into(it.fragment.bytes, it.fragment.size, 1, 0, fw, fh, frame, fstride,
                          "first frame", err, errlen);
    if (rc != PV_OK)
        goto done;
    for (y = 0; y < ch; y++) {
        if (y >= fy && y < fy + fh)
            memcpy(row + (size_t)fx * 4, frame + (size_t)(y - fy) * fstride, fstride);
        else if (y == fy + fh)
            memset(row + (size_t)fx * 4, 0, fstride);
        img_sink_row(&s, row);
    }
    rc = img_sink_finish(&s, out, err, errlen);
done:
    if (have_it)
        WebPDemuxReleaseIterator(&it);
    img_sink_free(&s);
    free(frame);
    free(row);
    return rc;
}

/* The EXIF orientation of the file's EXIF chunk, 1 when none. */
static int webp_orientation(WebPDemuxer *dmx)
{
    WebPChunkIterator ci;
    int o = 1;

    if (dmx == NULL)
        return 1;
    if (WebPDemuxGetChunk(dmx, "EXIF", 1, &ci)) {
        o = img_exif_orientation(ci.chunk.bytes, ci.chunk.size);
        WebPDemuxReleaseChunkIterator(&ci);
    }
    return o;
}

int img_decode_webp(IMG_DECODER_ARGS)
{
    WebPBitstreamFeatures f;
    WebPDemuxer *dmx = NULL;
    WebPDemuxState state = WEBP_DEMUX_PARSE_ERROR;
    WebPData data;
    VP8StatusCode st;
    img_sink s;
    img im = {0};
    uint8_t *px = NULL;
    uint32_t w, h, sw, sh, sc;
    size_t stride;
    int rc, o = 1, scaled;

    memset(&s, 0, sizeof s);
    if (buf == NULL || n == 0 || out == NULL || (channels != 1 && channels != 3)) {
        pv_set_err(err, errlen, "bad argument");
        return PV_EINVAL;
    }
    /* A still picture's canvas must match its bitstream, or libwebp says
     * only "bitstream error": check the canvas's size first. */
    if (vp8x_canvas(buf, n, &w, &h) && (rc = img_check_pixels(w, h, err, errlen)) != PV_OK)
        return rc;
    st = WebPGetFeatures(buf, n, &f);
    if (st != VP8_STATUS_OK)
        return webp_fail(st, "header", err, errlen);
    if (f.width <= 0 || f.height <= 0)
        return img_check_pixels(0, 0, err, errlen);
    w = (uint32_t)f.width;
    h = (uint32_t)f.height;
    if ((rc = img_check_pixels(w, h, err, errlen)) != PV_OK)
        return rc;

    data.bytes = buf;
    data.size = n;
    dmx = WebPDemuxPartial(&data, &state);
    if (f.has_animation) {
        if (dmx == NULL || state != WEBP_DEMUX_DONE) {
            rc = PV_EDECODE;
            if (dmx != NULL)
                pv_set_err(err, errlen, "truncated: the animated WebP ends before its last chunk");
            else if (state == WEBP_DEMUX_PARSE_ERROR)
                pv_set_err(err, errlen, "corrupt animated WebP (its chunks do not parse)");
            else
                pv_set_err(err, errlen, "out of memory reading the animated WebP");
            goto done;
        }
        o = webp_orientation(dmx);
        rc = webp_first_frame(dmx, w, h, channels, min_w, min_h, o, &im, err, errlen);
        goto done;
    }
    /* A still picture: libwebp's own parse decides whether it is whole;
     * the EXIF chunk is read only from a file that parses to its end. */
    o = state == WEBP_DEMUX_DONE ? webp_orientation(dmx) : 1;
    sc = f.has_alpha ? 4 : 3;
    sw = w;
    sh = h;
    /* The minimum is as displayed, the decode as stored (as in the sink). */
    if (o >= 5)
        scaled = img_reduce_size(&sw, &sh, min_h, min_w);
    else
        scaled = img_reduce_size(&sw, &sh, min_w, min_h);
    if (f.has_alpha && f.format != 2)
        scaled = 0; /* lossy with alpha: the sink reduces (see the top) */
    if (!scaled) {
        sw = w;
        sh = h;
    }
    stride = (size_t)sw * sc;
    px = pv_alloc_array(stride, sh);
    if (px == NULL) {
        rc = PV_ENOMEM;
        pv_set_err(err, errlen, "out of memory for %ux%u", sw, sh);
        goto done;
    }
    rc = webp_decode_into(buf, n, sc == 4, scaled, sw, sh, px, stride, "image", err, errlen);
    if (rc != PV_OK)
        goto done;
    if (!scaled && sc == channels) {
        /* Opaque, RGB wanted, not reduced (an opaque picture is reduced
         * only by scaling): already the result, which is only turned. */
        im.w = w;
        im.h = h;
        im.channels = channels;
        im.px = px;
        px = NULL;
        if ((rc = img_orient(&im, o)) != PV_OK) {
            img_free(&im);
            pv_set_err(err, errlen, "out of memory for %ux%u", w, h);
        }
        goto done;
    }
    /* Scaled: the sink only converts and turns; whole: it reduces too. */
    rc = img_sink_begin(&s, sw, sh, sc, channels, scaled ? 0 : min_w, scaled ? 0 : min_h, o, err,
                        errlen);
    if (rc == PV_OK)
        rc = webp_sink_all(&s, px, sh, stride, &im, err, errlen);
done:
    if (rc == PV_OK) {
        /* The full size as displayed, whatever was reduced. */
        im.orig_w = o >= 5 ? h : w;
        im.orig_h = o >= 5 ? w : h;
        *out = im;
    }
    WebPDemuxDelete(dmx);
    img_sink_free(&s);
    free(px);
    return rc;
}
