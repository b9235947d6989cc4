/*
 * img_decode.c - JPEG and PNG decoding into 8-bit grey or RGB (engine/image room).
 *
 * A file is recognised by its magic bytes and handed to libjpeg-turbo or
 * libpng. Both libraries report errors by calling back into us; the callbacks
 * copy the library's message and longjmp out, so no message reaches stderr
 * and nothing calls exit(). To keep longjmp safe, each decoder keeps all of
 * its state in a job struct owned by the caller of the function that calls
 * setjmp(): nothing the error path needs lives in a local that longjmp could
 * clobber, and the caller frees everything on one exit path.
 *
 * Limits are checked on the header, before the pixel buffer is allocated:
 * width*height (64-bit) against PV_MAX_PIXELS, a PNG's row length against
 * IMG_PNG_MAX_ROW_BYTES; libjpeg's coefficient memory is capped at
 * IMG_JPEG_MAX_MEMORY (img.h).
 *
 * Memory: an image is never held larger than the caller needs when that
 * would take more than IMG_HOLD_PIXELS. A PNG larger than the caller's
 * minimum on both sides, or with more than IMG_HOLD_PIXELS pixels, is not
 * decoded whole: its rows go one at a time from libpng into an area
 * average (img_area, img_resize.c) of the size img_reduce_size picks, so a
 * 1 MB file that inflates to 11585 x 11585 x 8 bytes takes a few rows, not
 * a gigabyte. When that size is the caller's minimum itself (a picture
 * whose aspect is within a factor of 2 of the minimum's) and the file is
 * not interlaced, the result is, bit for bit, what the full image averaged
 * to that size gives, so the embedders' vectors do not change; otherwise
 * it is within 1 of it. A JPEG is DCT-scaled first; only a strip too long
 * for that to help is reduced the same way. A progressive JPEG is the one
 * case where libjpeg holds the whole image, as coefficients (2 bytes a
 * sample, whatever the scaling): past IMG_JPEG_MAX_MEMORY, libjpeg-turbo,
 * which has no temporary files, stops with JERR_NO_BACKING_STORE before it
 * touches them, and that becomes PV_ETOOBIG with the size they would take.
 *
 * JPEG: libjpeg-turbo's warnings about lost data (premature end of file, bad
 * Huffman code, ...) are treated as errors, so a truncated file fails instead
 * of decoding to a grey-padded image; harmless warnings (extraneous bytes
 * before a marker, unknown JFIF revision, bad ICC marker) are ignored, because
 * many cameras write them and the pixels are intact. A file that lacks only
 * its final EOI marker is refused too: the Huffman decoder reads ahead past
 * the last scan's data, so libjpeg cannot tell it from a truncated one.
 * DCT scaling picks the smallest 1/d (d in 1,2,4,8) that still covers the
 * caller's minimum size as displayed. EXIF orientation comes from the first
 * APP1 "Exif" segment, read with libexif. CMYK and YCCK files are decoded as
 * CMYK and converted here: when an Adobe APP14 marker is present the samples
 * are taken as inverted (Photoshop's convention, by far the most common
 * source of CMYK JPEGs), otherwise as plain ink amounts; R = (1-C)(1-K) etc.,
 * without colour management.
 *
 * PNG: palette, low-bit grey and tRNS are expanded; 16-bit samples are
 * reduced with png_set_scale_16 (exact rounding of v*255/65535, so v*257
 * becomes v); an interlaced image is deinterlaced by png_read_image when
 * read whole, and when reduced its seven Adam7 passes are taken as libpng
 * gives them (interlace handling off), each pixel summed in where it
 * belongs (img_area_put); gamma and colour profiles are ignored (samples
 * are taken as stored). Alpha is composited here on a white background.
 * Grey from colour is Rec.601 luma with libjpeg's fixed-point weights
 * (19595, 38470, 7471)/65536, rounded, so a PNG and a JPEG of the same
 * picture give the same grey.
 */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#define IMG_MSG_MAX 200 /* >= JMSG_LENGTH_MAX */

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff};

/* An ISO base media file (HEIF, HEIC, AVIF) whose ftyp box names an image
 * brand, as its major brand or one of its compatible ones (a video's ftyp
 * names none of these). */
static int heif_brand(const uint8_t *buf, size_t n)
{
    static const char brands[][5] = {"heic", "heix", "hevc", "hevx", "heim", "heis",
                                     "mif1", "msf1", "mif2", "avif", "avis"};
    uint32_t box;
    size_t i, b;

    if (n < 16 || memcmp(buf + 4, "ftyp", 4) != 0)
        return 0;
    box = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (box < 16 || box > 4096)
        return 0;
    if (box > n)
        box = (uint32_t)n;
    for (i = 8; i + 4 <= box; i += 4) {
        if (i == 12)
            continue; /* the minor version */
        for (b = 0; b < sizeof brands / sizeof brands[0]; b++)
            if (memcmp(buf + i, brands[b], 4) == 0)
                return 1;
    }
    return 0;
}

img_kind img_sniff(const uint8_t *buf, size_t n)
{
    if (buf == NULL)
        return IMG_UNKNOWN;
    if (n >= sizeof jpeg_magic && memcmp(buf, jpeg_magic, sizeof jpeg_magic) == 0)
        return IMG_JPEG;
    if (n >= sizeof png_magic && memcmp(buf, png_magic, sizeof png_magic) == 0)
        return IMG_PNG;
    if (n >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0)
        return IMG_WEBP;
    if (heif_brand(buf, n))
        return IMG_HEIF;
    /* classic TIFF (42) and BigTIFF (43), either byte order */
    if (n >= 8 && (memcmp(buf, "II*\0", 4) == 0 || memcmp(buf, "MM\0*", 4) == 0 ||
                   memcmp(buf, "II+\0", 4) == 0 || memcmp(buf, "MM\0+", 4) == 0))
        return IMG_TIFF;
    if (n >= 6 && (memcmp(buf, "GIF87a", 6) == 0 || memcmp(buf, "GIF89a", 6) == 0))
        return IMG_GIF;
    /* "BM" alone starts too much text: the info header's size must be one
     * of the versions BMP has (OS/2 1.x 12 to BITMAPV5HEADER 124). */
    if (n >= 18 && buf[0] == 'B' && buf[1] == 'M') {
        uint32_t hs =
            buf[14] | (uint32_t)buf[15] << 8 | (uint32_t)buf[16] << 16 | (uint32_t)buf[17] << 24;
        if (hs == 12 || hs == 16 || hs == 40 || hs == 52 || hs == 56 || hs == 64 || hs == 108 ||
            hs == 124)
            return IMG_BMP;
    }
    return IMG_UNKNOWN;
}

const char *img_kind_name(img_kind k)
{
    switch (k) {
    case IMG_JPEG:
        return "JPEG";
    case IMG_PNG:
        return "PNG";
    case IMG_WEBP:
        return "WebP";
    case IMG_HEIF:
        return "HEIF";
    case IMG_TIFF:
        return "TIFF";
    case IMG_GIF:
        return "GIF";
    case IMG_BMP:
        return "BMP";
    default:
        return "unknown";
    }
}

void img_free(img *im)
{
    if (im == NULL)
        return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

/* ---- shared pixel conversions ------------------------------------------ */

/* ---- files --------------------------------------------------------------- */

int img_read_file(const char *path, uint8_t **buf, size_t *n, char *err,
                  size_t errlen)
{
    int rc = PV_EIO, fd = -1;
    uint8_t *data = NULL;
    size_t size = 0, got = 0;
    struct stat st;
    char etext[128];

    if (path == NULL || buf == NULL || n == NULL) {
        pv_set_err(err, errlen, "bad argument");
        return PV_EINVAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pv_errno_text(errno, etext, sizeof etext);
        pv_set_err(err, errlen, "cannot open: %s", etext);
        goto done;
    }
    if (fstat(fd, &st) != 0) {
        pv_errno_text(errno, etext, sizeof etext);
        pv_set_err(err, errlen, "cannot stat: %s", etext);
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        pv_set_err(err, errlen, "is a directory");
        goto done;
    }
    /* A pipe or device has no size to check against the limit up front. */
    if (!S_ISREG(st.st_mode)) {
        pv_set_err(err, errlen, "not a regular file");
        goto done;
    }
    if (st.st_size == 0) {
        rc = PV_EEMPTY;
        pv_set_err(err, errlen, "empty file (0 bytes)");
        goto done;
    }
    if ((uint64_t)st.st_size > PV_MAX_FILE_BYTES) {
        rc = PV_ETOOBIG;
        pv_set_err(err, errlen, "file is %llu bytes, more than the limit of %u",
                   (unsigned long long)st.st_size, (unsigned)PV_MAX_FILE_BYTES);
        goto done;
    }
    size = (size_t)st.st_size;
    data = pv_alloc_array(size, 1);
    if (data == NULL) {
        rc = PV_ENOMEM;
        pv_set_err(err, errlen, "out of memory for %zu bytes", size);
        goto done;
    }
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            pv_errno_text(errno, etext, sizeof etext);
            pv_set_err(err, errlen, "read error: %s", etext);
            goto done;
        }
        if (r == 0) /* the file shrank since fstat: keep what is there */
            break;
        got += (size_t)r;
    }
    if (got == 0) {
        rc = PV_EEMPTY;
        pv_set_err(err, errlen, "empty file (0 bytes)");
        goto done;
    }
    *buf = data;
    *n = got;
    data = NULL;
    rc = PV_OK;
done:
    free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- JPEG ---------------------------------------------------------------- */

struct jpeg_err {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us &pub */
    jmp_buf jb;
    int code;
    char msg[IMG_MSG_MAX];
};

typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err jerr;
    int created;
    const uint8_t *buf;
    size_t n;
    uint32_t channels, min_w, min_h;
    uint8_t *px;     /* decoded samples, out_color_components per pixel;
                        when reduced, out_w*out_h*channels */
    uint8_t *row;    /* reduced: one scanline */
    img_area *area;
    uint32_t out_w, out_h; /* as stored, before orientation */
    int reduced;     /* px was reduced while read (and CMYK converted) */
    int orientation;
    int cmyk;        /* px holds CMYK that must be converted */
    int inverted;    /* ... stored inverted (Adobe) */
} jpeg_job;

static void jpeg_fail(j_common_ptr cinfo, int code)
{
    struct jpeg_err *e = (struct jpeg_err *)cinfo->err;

    e->code = code;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* The bytes of coefficients libjpeg keeps for a multi-scan JPEG: per
 * component, its blocks (rounded up to whole MCUs) of 64 JCOEFs. */
static uint64_t jpeg_coef_bytes(j_decompress_ptr ci)
{
    uint64_t total = 0;
    int c;

    for (c = 0; c < ci->num_components; c++) {
        const jpeg_component_info *comp = &ci->comp_info[c];
        uint64_t bw = comp->width_in_blocks, bh = comp->height_in_blocks;
        uint64_t hs = (uint64_t)comp->h_samp_factor, vs = (uint64_t)comp->v_samp_factor;
        total += (bw + hs - 1) / hs * hs * ((bh + vs - 1) / vs * vs) * sizeof(JBLOCK);
    }
    return total;
}

static void jpeg_error_exit(j_common_ptr cinfo)
{
    switch (cinfo->err->msg_code) {
    case JERR_NO_BACKING_STORE: {
        /* The whole-image coefficient arrays do not fit in
         * IMG_JPEG_MAX_MEMORY, and libjpeg-turbo has no temporary files. */
        j_decompress_ptr ci = (j_decompress_ptr)cinfo;
        struct jpeg_err *e = (struct jpeg_err *)cinfo->err;
        snprintf(e->msg, sizeof e->msg,
                 "%s JPEG of %ux%u needs %llu MiB for its coefficients, more "
                 "than the limit of %u MiB",
                 ci->progressive_mode ? "progressive" : "multi-scan",
                 ci->image_width, ci->image_height,
                 (unsigned long long)((jpeg_coef_bytes(ci) + (1u << 20) - 1) >> 20),
                 (unsigned)(IMG_JPEG_MAX_MEMORY >> 20));
        e->code = PV_ETOOBIG;
        longjmp(e->jb, 1);
    }
    case JERR_OUT_OF_MEMORY:
        jpeg_fail(cinfo, PV_ENOMEM);
        break;
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
        jpeg_fail(cinfo, PV_ETOOBIG);
        break;
    default:
        jpeg_fail(cinfo, PV_EDECODE);
        break;
    }
}

static void jpeg_emit_message(j_common_ptr cinfo, int msg_level)
{
    if (msg_level >= 0) /* trace messages */
        return;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
#ifdef D_ARITH_CODING_SUPPORTED
    case JWRN_ARITH_BAD_CODE:
#endif
        /* Data is missing or garbled: the rest would be made-up pixels. */
        jpeg_fail(cinfo, PV_EDECODE);
        break;
    default:
        cinfo->err->num_warnings++;
        break;
    }
}

static void jpeg_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

/* EXIF orientation (1..8) from the first APP1 "Exif" segment; 1 if none. */
static int jpeg_exif_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != NULL; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return img_exif_orientation(m->data, m->data_length);
    return 1;
}

/* The largest d in {8, 4, 2} whose 1/d output still covers min_w x min_h as
 * displayed (after orientation); 1 otherwise. Leaves cinfo set up for it. */
static void jpeg_pick_scale(jpeg_job *j)
{
    struct jpeg_decompress_struct *ci = &j->cinfo;
    unsigned d;

    ci->scale_num = 1;
    if (j->min_w != 0 && j->min_h != 0) {
        for (d = 8; d > 1; d /= 2) {
            uint32_t dw, dh;
            ci->scale_denom = d;
            jpeg_calc_output_dimensions(ci);
            dw = j->orientation >= 5 ? ci->output_height : ci->output_width;
            dh = j->orientation >= 5 ? ci->output_width : ci->output_height;
            if (dw >= j->min_w && dh >= j->min_h)
                return;
        }
    }
    ci->scale_denom = 1;
    jpeg_calc_output_dimensions(ci);
}

/* In place: 4 samples per pixel become `channels` (never more than 4). */
static void cmyk_convert(uint8_t *px, size_t npix, uint32_t channels,
                         int inverted)
{
    size_t i;

    for (i = 0; i < npix; i++) {
        uint32_t c = px[4 * i], m = px[4 * i + 1], y = px[4 * i + 2];
        uint32_t k = px[4 * i + 3], r, g, b;
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        /* Now c, m, y, k are the amounts of paper left uncovered. */
        r = (c * k + 127) / 255;
        g = (m * k + 127) / 255;
        b = (y * k + 127) / 255;
        if (channels == 1) {
            px[i] = img_luma(r, g, b);
        } else {
            px[3 * i] = (uint8_t)r;
            px[3 * i + 1] = (uint8_t)g;
            px[3 * i + 2] = (uint8_t)b;
        }
    }
}

/* Runs under setjmp: everything the error path needs is in *j. */
static int jpeg_run(jpeg_job *j)
{
    struct jpeg_decompress_struct *ci = &j->cinfo;
    JSAMPROW row;
    size_t stride;

    if (setjmp(j->jerr.jb))
        return j->jerr.code;

    jpeg_create_decompress(ci);
    j->created = 1;
    /* Caps the coefficient arrays of multi-scan files (allocated in
     * jpeg_start_decompress, before any is touched); over it libjpeg asks
     * for a temporary file and fails with JERR_NO_BACKING_STORE. Set after
     * create, so the JPEGMEM environment variable does not override it. */
    ci->mem->max_memory_to_use = IMG_JPEG_MAX_MEMORY;
    jpeg_mem_src(ci, j->buf, (unsigned long)j->n);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xffff);
    if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK) {
        snprintf(j->jerr.msg, sizeof j->jerr.msg, "JPEG holds no image");
        return PV_EDECODE;
    }
    if ((uint64_t)ci->image_width * ci->image_height > PV_MAX_PIXELS) {
        snprintf(j->jerr.msg, sizeof j->jerr.msg,
                 "%ux%u pixels, more than the limit of %u", ci->image_width,
                 ci->image_height, (unsigned)PV_MAX_PIXELS);
        return PV_ETOOBIG;
    }
    j->orientation = jpeg_exif_orientation(ci);

    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK) {
        ci->out_color_space = JCS_CMYK;
        j->cmyk = 1;
        j->inverted = ci->saw_Adobe_marker ? 1 : 0;
    } else {
        ci->out_color_space = j->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    }
    jpeg_pick_scale(j);

    jpeg_start_decompress(ci);
    stride = (size_t)ci->output_width * (size_t)ci->output_components;
    j->out_w = ci->output_width;
    j->out_h = ci->output_height;
    /* Past IMG_HOLD_PIXELS even DCT-scaled (a long strip, whose short side
     * allows little scaling): reduced while read, as a PNG is. The minimum
     * is as displayed, the reduction as stored. */
    if ((uint64_t)j->out_w * j->out_h > IMG_HOLD_PIXELS)
        j->reduced = img_reduce_size(&j->out_w, &j->out_h,
                                     j->orientation >= 5 ? j->min_h : j->min_w,
                                     j->orientation >= 5 ? j->min_w : j->min_h);
    if (j->reduced) {
        j->row = pv_alloc_array(stride, 1);
        j->px = pv_alloc_array((size_t)j->out_w * j->out_h, j->channels);
        if (j->row != NULL && j->px != NULL &&
            img_area_new(ci->output_width, ci->output_height, j->channels, j->px,
                         j->out_w, j->out_h, 0, &j->area) != PV_OK)
            j->area = NULL;
    } else {
        j->px = pv_alloc_array(stride, ci->output_height);
    }
    if (j->px == NULL || (j->reduced && j->area == NULL)) {
        snprintf(j->jerr.msg, sizeof j->jerr.msg, "out of memory for %ux%u",
                 j->out_w, j->out_h);
        return PV_ENOMEM;
    }
    while (ci->output_scanline < ci->output_height) {
        row = j->reduced ? j->row : j->px + (size_t)ci->output_scanline * stride;
        /* A memory source never suspends; 0 rows would loop forever. */
        if (jpeg_read_scanlines(ci, &row, 1) != 1) {
            snprintf(j->jerr.msg, sizeof j->jerr.msg, "JPEG decoder stalled");
            return PV_EDECODE;
        }
        if (j->reduced) {
            if (j->cmyk)
                cmyk_convert(row, ci->output_width, j->channels, j->inverted);
            img_area_row(j->area, row);
        }
    }
    if (j->reduced && img_area_finish(j->area) != PV_OK) {
        snprintf(j->jerr.msg, sizeof j->jerr.msg, "JPEG rows missing");
        return PV_EDECODE;
    }
    /* No jpeg_finish_decompress: every pixel is in, and destroying the
     * decompressor aborts it cleanly. */
    return PV_OK;
}

static int jpeg_decode(const uint8_t *buf, size_t n, uint32_t channels,
                       uint32_t min_w, uint32_t min_h, img *out, char *err,
                       size_t errlen)
{
    jpeg_job *j;
    img im = {0};
    int rc;

#if SIZE_MAX > ULONG_MAX
    if (n > ULONG_MAX) {
        pv_set_err(err, errlen, "file too large");
        return PV_ETOOBIG;
    }
#endif
    /* On the heap: the decompress struct and jmp_buf are large. */
    j = calloc(1, sizeof *j);
    if (j == NULL) {
        pv_set_err(err, errlen, "out of memory");
        return PV_ENOMEM;
    }
    j->buf = buf;
    j->n = n;
    j->channels = channels;
    j->min_w = min_w;
    j->min_h = min_h;
    j->cinfo.err = jpeg_std_error(&j->jerr.pub);
    j->jerr.pub.error_exit = jpeg_error_exit;
    j->jerr.pub.emit_message = jpeg_emit_message;
    j->jerr.pub.output_message = jpeg_output_message;

    rc = jpeg_run(j);
    if (rc != PV_OK) {
        pv_set_err(err, errlen, "%s",
                   j->jerr.msg[0] ? j->jerr.msg : "bad JPEG");
        goto done;
    }
    im.w = j->out_w;
    im.h = j->out_h;
    im.channels = channels;
    im.orig_w = j->cinfo.image_width;
    im.orig_h = j->cinfo.image_height;
    im.px = j->px;
    j->px = NULL;
    if (j->cmyk && !j->reduced) {
        uint8_t *shrunk;
        cmyk_convert(im.px, (size_t)im.w * im.h, channels, j->inverted);
        shrunk = pv_realloc_array(im.px, (size_t)im.w * im.h, channels);
        if (shrunk != NULL) /* a failed shrink keeps the larger block */
            im.px = shrunk;
    }
    rc = img_orient(&im, j->orientation);
    if (rc != PV_OK) {
        pv_set_err(err, errlen,
                   "out of memory while applying EXIF orientation");
        goto done;
    }
    *out = im;
    im.px = NULL;
done:
    if (j->created)
        jpeg_destroy_decompress(&j->cinfo);
    img_area_free(j->area);
    free(j->row);
    free(j->px);
    free(j);
    img_free(&im);
    return rc;
}

/* ---- PNG ----------------------------------------------------------------- */

typedef struct png_job {
    const uint8_t *buf;
    size_t n, pos;
    png_structp png;
    png_infop info;
    uint32_t channels, min_w, min_h;
    uint32_t w, h, pc;
    uint32_t out_w, out_h; /* the size returned: w x h unless reduced */
    uint8_t *raw;     /* whole: h rows of w*pc bytes */
    png_bytep *rows;
    uint8_t *row;     /* reduced: one row of w*pc bytes as libpng gives it */
    uint8_t *crow;    /* ... converted to `channels` (when pc differs) */
    uint8_t *out;     /* ... the reduced image, out_w*out_h*channels */
    img_area *area;
    int code;
    char msg[IMG_MSG_MAX];
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *j = png_get_error_ptr(png);

    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "bad PNG");
    /* libpng's allocation failures say "Out of memory" / "Insufficient memory". */
    j->code = msg && strstr(msg, "emory") ? PV_ENOMEM : PV_EDECODE;
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    /* Warnings (a damaged ancillary chunk, an odd ICC profile) leave the
     * pixels intact; errors that matter come through png_on_error. */
    (void)png;
    (void)msg;
}

static void png_mem_read(png_structp png, png_bytep dst, size_t len)
{
    png_job *j = png_get_io_ptr(png);

    if (len > j->n - j->pos)
        png_error(png, "file is truncated (read past the end of the data)");
    memcpy(dst, j->buf + j->pos, len);
    j->pos += len;
}

/* Whole: every row into j->raw, deinterlaced by libpng. */
static void png_read_whole(png_job *j, size_t rowbytes)
{
    uint32_t y;

    j->raw = pv_alloc_array(rowbytes, j->h);
    j->rows = pv_alloc_array(j->h, sizeof *j->rows);
    if (j->raw == NULL || j->rows == NULL) {
        snprintf(j->msg, sizeof j->msg, "out of memory for %ux%u",
                 (unsigned)j->w, (unsigned)j->h);
        j->code = PV_ENOMEM;
        return;
    }
    for (y = 0; y < j->h; y++)
        j->rows[y] = j->raw + (size_t)y * rowbytes;
    png_read_image(j->png, j->rows);
    j->code = PV_OK;
}

/* The row libpng just gave (n pixels), in `channels` samples. */
static const uint8_t *png_row_converted(png_job *j, uint32_t n)
{
    if (j->crow == NULL)
        return j->row;
    img_convert(j->row, j->pc, j->crow, j->channels, n);
    return j->crow;
}

/* Reduced: row by row into an area average of out_w x out_h. An interlaced
 * file comes as seven passes, each a sub-image of every 8th, 4th or 2nd
 * row and column (libpng gives them as they are when interlace handling is
 * off), and each pass's pixels are summed in where they belong. */
static void png_read_reduced(png_job *j, size_t rowbytes, int interlaced)
{
    uint32_t y, pass;
    int rc;

    j->code = PV_ENOMEM;
    snprintf(j->msg, sizeof j->msg, "out of memory for %ux%u",
             (unsigned)j->out_w, (unsigned)j->out_h);
    j->row = pv_alloc_array(rowbytes, 1);
    j->out = pv_alloc_array((size_t)j->out_w * j->out_h, j->channels);
    if (j->row == NULL || j->out == NULL)
        return;
    if (j->pc != j->channels &&
        (j->crow = pv_alloc_array(j->w, j->channels)) == NULL)
        return;
    rc = img_area_new(j->w, j->h, j->channels, j->out, j->out_w, j->out_h,
                      interlaced, &j->area);
    if (rc != PV_OK) {
        j->code = rc;
        return;
    }
    if (!interlaced) {
        for (y = 0; y < j->h; y++) {
            png_read_row(j->png, j->row, NULL);
            img_area_row(j->area, png_row_converted(j, j->w));
        }
    } else {
        for (pass = 0; pass < 7; pass++) {
            uint32_t cols = PNG_PASS_COLS(j->w, pass);
            uint32_t rows = PNG_PASS_ROWS(j->h, pass);
            if (cols == 0 || rows == 0) /* libpng skips empty passes too */
                continue;
            for (y = 0; y < rows; y++) {
                png_read_row(j->png, j->row, NULL);
                img_area_put(j->area, PNG_ROW_FROM_PASS_ROW(y, pass),
                             PNG_PASS_START_COL(pass),
                             1u << PNG_PASS_COL_SHIFT(pass),
                             png_row_converted(j, cols), cols);
            }
        }
    }
    j->code = img_area_finish(j->area);
    if (j->code != PV_OK)
        snprintf(j->msg, sizeof j->msg, "PNG rows missing");
}

/* Runs under setjmp: everything the error path needs is in *j. */
static int png_run(png_job *j)
{
    png_uint_32 w, h;
    int depth, ct, interlace;
    uint64_t filerow;
    size_t rowbytes;

    if (setjmp(png_jmpbuf(j->png)))
        return j->code ? j->code : PV_EDECODE;

    png_set_read_fn(j->png, j, png_mem_read);
    /* Our own pixel limit decides, not libpng's default 1e6 per side. */
    png_set_user_limits(j->png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(j->png, j->info);
    png_get_IHDR(j->png, j->info, &w, &h, &depth, &ct, &interlace, NULL, NULL);
    if ((uint64_t)w * h > PV_MAX_PIXELS) {
        snprintf(j->msg, sizeof j->msg, "%ux%u pixels, more than the limit of %u",
                 (unsigned)w, (unsigned)h, (unsigned)PV_MAX_PIXELS);
        return PV_ETOOBIG;
    }
    /* libpng holds rows at the file's depth and after expansion (up to 8
     * bytes a pixel either way), we one or two more. */
    filerow = (uint64_t)w * png_get_channels(j->png, j->info) * (uint64_t)depth / 8;
    if (filerow < (uint64_t)w * 4)
        filerow = (uint64_t)w * 4; /* after expansion to RGBA */
    if (filerow > IMG_PNG_MAX_ROW_BYTES) {
        snprintf(j->msg, sizeof j->msg,
                 "rows of %u pixels (%llu bytes), more than the limit of %u "
                 "bytes a row", (unsigned)w, (unsigned long long)filerow,
                 (unsigned)IMG_PNG_MAX_ROW_BYTES);
        return PV_ETOOBIG;
    }
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(j->png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(j->png);
    if (png_get_valid(j->png, j->info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(j->png);
    if (depth == 16)
        png_set_scale_16(j->png);
    j->w = w;
    j->h = h;
    j->out_w = w;
    j->out_h = h;
    (void)img_reduce_size(&j->out_w, &j->out_h, j->min_w, j->min_h);
    /* Whole, libpng deinterlaces; reduced, we take the passes as they come. */
    if (j->out_w == w && j->out_h == h)
        (void)png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);

    j->pc = png_get_channels(j->png, j->info);
    rowbytes = png_get_rowbytes(j->png, j->info);
    if (png_get_bit_depth(j->png, j->info) != 8 || j->pc < 1 || j->pc > 4 ||
        rowbytes != (size_t)w * j->pc) {
        snprintf(j->msg, sizeof j->msg, "unexpected PNG layout after expansion");
        return PV_EDECODE;
    }
    if (j->out_w == w && j->out_h == h)
        png_read_whole(j, rowbytes);
    else
        png_read_reduced(j, rowbytes, interlace != PNG_INTERLACE_NONE);
    return j->code;
}

static int png_decode(const uint8_t *buf, size_t n, uint32_t channels,
                      uint32_t min_w, uint32_t min_h, img *out, char *err,
                      size_t errlen)
{
    png_job j;
    img im = {0};
    int rc;

    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.n = n;
    j.channels = channels;
    j.min_w = min_w;
    j.min_h = min_h;
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, png_on_error,
                                   png_on_warning);
    if (j.png != NULL)
        j.info = png_create_info_struct(j.png);
    if (j.png == NULL || j.info == NULL) {
        rc = PV_ENOMEM;
        pv_set_err(err, errlen, "out of memory");
        goto done;
    }
    rc = png_run(&j);
    if (rc != PV_OK) {
        pv_set_err(err, errlen, "%s", j.msg[0] ? j.msg : "bad PNG");
        goto done;
    }
    im.orig_w = j.w;
    im.orig_h = j.h;
    im.w = j.out_w;
    im.h = j.out_h;
    im.channels = channels;
    if (j.out != NULL) {
        im.px = j.out; /* reduced while read */
        j.out = NULL;
    } else if (j.pc == channels) {
        im.px = j.raw; /* already in the requested layout */
        j.raw = NULL;
    } else {
        im.px = pv_alloc_array((size_t)j.w * j.h, channels);
        if (im.px == NULL) {
            rc = PV_ENOMEM;
            pv_set_err(err, errlen, "out of memory for %ux%u", j.w, j.h);
            goto done;
        }
        img_convert(j.raw, j.pc, im.px, channels, (size_t)j.w * j.h);
    }
    *out = im;
    im.px = NULL;
done:
    if (j.png != NULL)
        png_destroy_read_struct(&j.png, j.info ? &j.info : NULL, NULL);
    img_area_free(j.area);
    free(j.rows);
    free(j.raw);
    free(j.row);
    free(j.crow);
    free(j.out);
    img_free(&im);
    return rc;
}

/* ---- entry point ----------------------------------------------------------- */

/* "starts with 'hell'" for text, hex bytes otherwise. */
static void describe_start(const uint8_t *buf, size_t n, char *out, size_t len)
{
    size_t i, k = n < 4 ? n : 4;
    int printable = 1;

    for (i = 0; i < k; i++)
        if (buf[i] < 0x20 || buf[i] > 0x7e || buf[i] == '\'')
            printable = 0;
    if (printable) {
        snprintf(out, len, "'%.*s'", (int)k, (const char *)buf);
    } else {
        size_t pos = 0;
        out[0] = '\0';
        for (i = 0; i < k && pos < len; i++)
            pos += (size_t)snprintf(out + pos, len - pos, "%s%02x",
                                    i ? " " : "bytes ", buf[i]);
    }
}

int img_decode(const uint8_t *buf, size_t n, uint32_t channels,
               uint32_t min_w, uint32_t min_h, img *out, char *err,
               size_t errlen)
{
    char start[32];

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || (channels != 1 && channels != 3) || (buf == NULL && n)) {
        pv_set_err(err, errlen, "bad argument");
        return PV_EINVAL;
    }
    if (n == 0) {
        pv_set_err(err, errlen, "empty file (0 bytes)");
        return PV_EEMPTY;
    }
    img_kind kind = img_sniff(buf, n);
    int rc = PV_EFORMAT;
    switch (kind) {
    case IMG_JPEG:
        rc = jpeg_decode(buf, n, channels, min_w, min_h, out, err, errlen);
        break;
    case IMG_PNG:
        rc = png_decode(buf, n, channels, min_w, min_h, out, err, errlen);
        break;
    case IMG_WEBP:
        rc = img_decode_webp(buf, n, channels, min_w, min_h, out, err, errlen);
        break;
    case IMG_HEIF:
        rc = img_decode_heif(buf, n, channels, min_w, min_h, out, err, errlen);
        break;
    case IMG_TIFF:
        rc = img_decode_tiff(buf, n, channels, min_w, min_h, out, err, errlen);
        break;
    case IMG_GIF:
        rc = img_decode_gif(buf, n, channels, min_w, min_h, out, err, errlen);
        break;
    case IMG_BMP:
        rc = img_decode_bmp(buf, n, channels, min_w, min_h, out, err, errlen);
        break;
    default:
        break;
    }
    if (kind != IMG_UNKNOWN) {
        if (rc == PV_OK)
            out->kind = kind;
        return rc;
    }
    /* Too short for a whole signature, but the start of one: truncated. */
    if ((n < sizeof png_magic && memcmp(buf, png_magic, n) == 0) ||
        (n < sizeof jpeg_magic && memcmp(buf, jpeg_magic, n) == 0 && n >= 2) ||
        (n < 12 && n >= 4 && memcmp(buf, "RIFF", 4) == 0) ||
        (n < 16 && n >= 8 && memcmp(buf + 4, "ftyp", 4) == 0) ||
        (n < 6 && n >= 3 && memcmp(buf, "GIF", 3) == 0) ||
        (n < 8 && n >= 4 && (memcmp(buf, "II*\0", 4) == 0 || memcmp(buf, "MM\0*", 4) == 0))) {
        pv_set_err(err, errlen,
                   "truncated after %zu bytes of the file signature", n);
        return PV_EDECODE;
    }
    describe_start(buf, n, start, sizeof start);
    pv_set_err(err, errlen, "not an image format pixvec reads (it starts with %s)", start);
    return PV_EFORMAT;
}
