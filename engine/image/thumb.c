/*
 * thumb.c - thumbnails for the duplicate report (engine/image room; pv_thumbnail).
 *
 * A thumbnail goes through the same decoder as an insert (img_decode: magic
 * bytes, limits, EXIF orientation, JPEG DCT scaling), so the report shows the
 * picture pixvec embedded, turned the way a viewer shows it. The decoder is
 * asked for at least max_side x max_side pixels: that is enough for either
 * side of any thumbnail, and lets a large JPEG decode at 1/2, 1/4 or 1/8 of
 * its size, which is most of the speed of a report over thousands of photos.
 * The image is then reduced by area averaging (img_resize_area: every output
 * pixel is the mean of what it covers, so a strong reduction does not alias)
 * to a longer side of max_side, the other side in proportion, rounded,
 * never enlarged.
 *
 * The JPEG is encoded in memory (libjpeg-turbo, jpeg_mem_dest, baseline,
 * 4:2:0 as libjpeg defaults) and only then written, by pv_write_file_atomic:
 * a temporary file in dst's folder (O_EXCL, a name of our own), fsync,
 * rename over dst, fsync of the folder. dst is the old file or the whole new
 * one, never half written, and a failure removes the temporary file. A
 * failed folder fsync is ignored: the thumbnail is whole either way, only its
 * durability is in doubt, and a report can be made again. libjpeg reports
 * errors through
 * error_exit; ours copies the message and longjmps, and as in img_decode.c
 * all state the error path touches lives in a job struct, not in locals that
 * longjmp could clobber.
 */
#include "img.h"
#include "pixvec.h"
#include "pv_util.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define THUMB_MAX_SIDE 4096u  /* a thumbnail, not a re-encode of the photo */

/* ---- size ---------------------------------------------------------------- */

/* The thumbnail's size for an image of w x h displayed: the longer side
 * min(max_side, longer), the shorter in proportion, rounded, at least 1. */
static void thumb_size(uint32_t w, uint32_t h, uint32_t max_side,
                       uint32_t *tw, uint32_t *th)
{
    uint32_t longer = w > h ? w : h;
    uint64_t s;

    if (longer <= max_side) {
        *tw = w;
        *th = h;
        return;
    }
    /* Integer rounding of shorter * max_side / longer: no float edge cases
     * at exact halves, and both factors fit easily in 64 bits. */
    if (w >= h) {
        s = ((uint64_t)h * max_side + longer / 2) / longer;
        *tw = max_side;
        *th = s > 0 ? (uint32_t)s : 1;
    } else {
        s = ((uint64_t)w * max_side + longer / 2) / longer;
        *th = max_side;
        *tw = s > 0 ? (uint32_t)s : 1;
    }
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct thumb_jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
} thumb_jerr;

/* Everything the encoder's error path needs, owned by the caller of
 * thumb_encode_run (the function that calls setjmp). */
typedef struct thumb_enc {
    struct jpeg_compress_struct ci;
    thumb_jerr jerr;
    int created;
    unsigned char *out;   /* jpeg_mem_dest's buffer (malloc'd by libjpeg) */
    unsigned long outlen;
} thumb_enc;

static void thumb_jpeg_error_exit(j_common_ptr cinfo)
{
    thumb_jerr *e = (thumb_jerr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jmp, 1);
}

/* Library code never prints: warnings are dropped (the encoder has none
 * that matter for pixels we made ourselves). */
static void thumb_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static int thumb_encode_run(thumb_enc *j, const img *im, int quality)
{
    JSAMPROW row;

    if (setjmp(j->jerr.jmp))
        return -1;
    jpeg_create_compress(&j->ci);
    j->created = 1;
    jpeg_mem_dest(&j->ci, &j->out, &j->outlen);
    j->ci.image_width = im->w;
    j->ci.image_height = im->h;
    j->ci.input_components = 3;
    j->ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&j->ci);
    /* force_baseline: 8-bit quantisation tables, readable by any viewer. */
    jpeg_set_quality(&j->ci, quality, TRUE);
    jpeg_start_compress(&j->ci, TRUE);
    while (j->ci.next_scanline < j->ci.image_height) {
        row = im->px + (size_t)j->ci.next_scanline * im->w * 3;
        jpeg_write_scanlines(&j->ci, &row, 1);
    }
    jpeg_finish_compress(&j->ci);
    return 0;
}

/* ---- the public call ----------------------------------------------------- */

int pv_thumbnail(const char *src, uint32_t max_side, int quality,
                 const char *dst, uint32_t *src_w, uint32_t *src_h,
                 char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    img im, th;
    thumb_enc *j = NULL;
    uint32_t tw, tht;
    char why[256];
    int rc = PV_EINVAL;

    memset(&im, 0, sizeof im);
    memset(&th, 0, sizeof th);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (src == NULL || dst == NULL || src[0] == '\0' || dst[0] == '\0') {
        pv_set_err(err, errlen, "thumbnail: no source or destination given");
        goto done;
    }
    if (max_side == 0 || max_side > THUMB_MAX_SIDE || quality < 1 ||
        quality > 100) {
        pv_set_err(err, errlen,
                   "%s: thumbnail side %u (1..%u) or quality %d (1..100) out "
                   "of range", src, max_side, THUMB_MAX_SIDE, quality);
        goto done;
    }
    why[0] = '\0';
    rc = img_read_file(src, &buf, &n, why, sizeof why);
    if (rc != PV_OK) {
        pv_set_err(err, errlen, "%s: %s", src, why);
        goto done;
    }
    rc = img_decode(buf, n, 3, max_side, max_side, &im, why, sizeof why);
    free(buf);
    buf = NULL;
    if (rc != PV_OK) {
        pv_set_err(err, errlen, "%s: %s", src, why);
        goto done;
    }
    if (src_w != NULL)
        *src_w = im.orig_w;
    if (src_h != NULL)
        *src_h = im.orig_h;

    /* Sized from the full image as displayed, not from the DCT-scaled
     * decode, so the aspect is the photo's own; never above what was
     * decoded, so nothing is enlarged. */
    thumb_size(im.orig_w, im.orig_h, max_side, &tw, &tht);
    if (tw > im.w || tht > im.h)
        thumb_size(im.w, im.h, max_side, &tw, &tht);
    if (tw == im.w && tht == im.h) {
        th = im;
        memset(&im, 0, sizeof im);
    } else {
        th.w = tw;
        th.h = tht;
        th.channels = 3;
        th.px = pv_alloc_array((size_t)tw * tht, 3);
        if (th.px == NULL) {
            rc = PV_ENOMEM;
            pv_set_err(err, errlen, "%s: out of memory for a %ux%u thumbnail",
                       src, tw, tht);
            goto done;
        }
        rc = img_resize_area(im.px, im.w, im.h, 3, th.px, tw, tht);
        if (rc != PV_OK) {
            pv_set_err(err, errlen, "%s: cannot scale: %s", src,
                       pv_strerror(rc));
            goto done;
        }
    }

    j = calloc(1, sizeof *j);
    if (j == NULL) {
        rc = PV_ENOMEM;
        pv_set_err(err, errlen, "%s: out of memory", src);
        goto done;
    }
    j->ci.err = jpeg_std_error(&j->jerr.pub);
    j->jerr.pub.error_exit = thumb_jpeg_error_exit;
    j->jerr.pub.output_message = thumb_jpeg_output_message;
    if (thumb_encode_run(j, &th, quality) != 0) {
        rc = PV_EIO;
        pv_set_err(err, errlen, "%s: cannot encode the thumbnail: %s", dst,
                   j->jerr.msg);
        goto done;
    }
    rc = pv_write_file_atomic(dst, j->out, (size_t)j->outlen, 0, err, errlen);
done:
    if (j != NULL) {
        if (j->created)
            jpeg_destroy_compress(&j->ci);
        free(j->out);
        free(j);
    }
    free(buf);
    img_free(&th);
    img_free(&im);
    return rc;
}
