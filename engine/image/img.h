/*
 * img.h - image decoding and resizing (engine/image room).
 *
 * Files are recognised by their magic bytes, never by their name: JPEG
 * (FF D8 FF) through libjpeg-turbo, PNG (89 50 4E 47 0D 0A 1A 0A) through
 * libpng, and WebP, HEIF/HEIC/AVIF, TIFF, GIF and BMP through the decoders
 * of img_formats.h. Every decoder checks the header's dimensions against PV_MAX_PIXELS
 * before it allocates. JPEG: EXIF orientation (libexif) is applied, and DCT
 * scaling (1/2, 1/4, 1/8) is used when the caller's target size is much
 * smaller than the image. PNG: palette, grey, 16-bit, tRNS and alpha are all
 * expanded to 8 bits and alpha is composited on a fixed white background; a
 * large PNG is area-averaged row by row as it is read, never held whole.
 * The memory one decode may take is bounded by the limits below.
 *
 * img_resize_pil reproduces Pillow's resampling byte for byte, for models
 * whose reference preprocessing is PIL's (CLIP, DINOv2).
 *
 * Pixels are 8-bit, row-major, channel-interleaved, with no row padding.
 */
#ifndef PV_IMG_H
#define PV_IMG_H

#include <stddef.h>
#include <stdint.h>

/* The kinds pixvec reads; the numbers are stored in item records
 * (STORE_ITEM_FORMAT): append, never renumber. */
typedef enum {
    IMG_UNKNOWN = 0,
    IMG_JPEG,
    IMG_PNG,
    IMG_WEBP,
    IMG_HEIF, /* HEIC, AVIF and other HEIF images */
    IMG_TIFF,
    IMG_GIF,
    IMG_BMP,
    IMG_NKINDS
} img_kind;

typedef struct img {
    uint32_t w, h;          /* dimensions of px */
    uint32_t channels;      /* 1 (grey) or 3 (RGB) */
    uint32_t orig_w, orig_h;/* full-resolution size as displayed (after EXIF
                               orientation), before any DCT scaling */
    uint8_t *px;            /* w*h*channels bytes, malloc'd */
    uint32_t kind;          /* the file's img_kind (set by img_decode) */
} img;

/* Memory limits of one decode, besides PV_MAX_PIXELS (bench/README.md gives
 * the peak RSS of `add` they lead to):
 * IMG_HOLD_PIXELS: a PNG larger than the caller needs (or a JPEG still
 *   larger than this after DCT scaling) is reduced while it is read
 *   (img_reduce_size) to at most this many pixels, unless the caller's own
 *   minimum is larger; a PNG no larger than the minimum on some side is
 *   decoded whole up to this many pixels.
 * IMG_PNG_MAX_ROW_BYTES: the longest PNG row, at the file's depth or after
 *   expansion to 8-bit RGBA, whichever is longer (libpng holds a few).
 * IMG_JPEG_MAX_MEMORY: what libjpeg may take for a progressive or other
 *   multi-scan JPEG's coefficients, which it keeps for every block of the
 *   full-size image until the last scan (2 bytes a sample, whatever the DCT
 *   scaling): 256 MiB is 44 megapixels at 4:4:4, 89 at 4:2:0. */
#define IMG_HOLD_PIXELS (1u << 22)
#define IMG_PNG_MAX_ROW_BYTES (16u << 20)
#define IMG_JPEG_MAX_MEMORY (256u << 20)

/* The kind of image in the first n bytes of a file. */
img_kind img_sniff(const uint8_t *buf, size_t n);
/* "JPEG", "PNG", "WebP", "HEIF", "TIFF", "GIF", "BMP"; "unknown" otherwise. */
const char *img_kind_name(img_kind k);

/* Decode an image held in memory into `channels` (1 = grey, 3 = RGB) 8-bit
 * channels. min_w/min_h: the smallest size the caller needs (e.g. the
 * embedder's input); the decoder may return a smaller-than-full image, never
 * smaller than these (unless the image itself is). 0 means full size.
 * A smaller image covers the whole picture, but its aspect may differ a
 * little from the picture's (JPEG's DCT scaling rounds up; a reduced PNG's
 * sides are whole multiples of min_w and min_h): take the aspect from
 * orig_w/orig_h. Area-averaging it to min_w x min_h gives what averaging
 * the full-size image would, within rounding (exactly, for a PNG reduced to
 * min_w x min_h itself, the usual case).
 * On failure returns a PV_E* code (PV_EFORMAT not an image, PV_EDECODE corrupt
 * or truncated, PV_ETOOBIG too many pixels, PV_ENOMEM, PV_EEMPTY n == 0) and
 * writes a short reason (NUL-terminated, at most errlen bytes) to err.
 * On success *out owns px; release with img_free(). */
int img_decode(const uint8_t *buf, size_t n, uint32_t channels,
               uint32_t min_w, uint32_t min_h, img *out, char *err,
               size_t errlen);

/* Read a whole file into memory (refusing more than PV_MAX_FILE_BYTES with
 * PV_ETOOBIG, a zero-byte file with PV_EEMPTY, unreadable with PV_EIO). */
int img_read_file(const char *path, uint8_t **buf, size_t *n, char *err,
                  size_t errlen);

/* The size img_decode reduces an image to while reading it, for min_w x
 * min_h (a PNG; a JPEG still past IMG_HOLD_PIXELS after DCT scaling): *w,
 * *h are the image's size on entry. No change (returns 0) when min_w or
 * min_h is 0, or when a side is no larger than its minimum and the image
 * has at most IMG_HOLD_PIXELS: such images come back whole, as they are.
 * Otherwise (returns 1) each side larger than its minimum becomes a whole
 * multiple of it, at one scale for both sides as far as whole multiples
 * allow (the side nearer its minimum becomes the minimum itself), and the
 * longer side is cut down until at most IMG_HOLD_PIXELS remain, never below
 * its minimum. Whole multiples keep area averaging exact: every pixel of a
 * min_w x min_h average of the result covers whole pixels of it. */
int img_reduce_size(uint32_t *w, uint32_t *h, uint32_t min_w, uint32_t min_h);

/* Area-averaging resize of src (any size) to dst_w x dst_h, same channels:
 * every output pixel is the mean of the source area it covers, partial
 * pixels weighted by their coverage. dst must hold dst_w*dst_h*channels.
 * Returns 0, PV_EINVAL for a zero size or NULL pointer, or PV_ENOMEM (the
 * weight tables and a few rows of dst_w*channels floats are allocated);
 * dst is untouched on failure. The same as feeding src's rows one by one
 * to an img_area, bit for bit. */
int img_resize_area(const uint8_t *src, uint32_t src_w, uint32_t src_h,
                     uint32_t channels, uint8_t *dst, uint32_t dst_w,
                     uint32_t dst_h);

/* The same resize, fed a source row at a time, so the source image is
 * never held whole (a decoder hands over each row as it decodes it).
 * img_area_new: src_w x src_h source, dst_w x dst_h output of `channels`
 * 8-bit samples written to dst (dst_w*dst_h*channels bytes, kept by the
 * caller). any_order 0: rows come in order through img_area_row, each
 * output row is written to dst as soon as its last source row is in, and
 * about ceil(dst_h/src_h)+1 rows of dst_w*channels floats are held; the
 * result equals img_resize_area's bit for bit. any_order 1: pixels come
 * through img_area_put in any order and groups (an interlaced image's
 * passes), a float per output sample is held, and the output (written by
 * img_area_finish) equals img_resize_area's up to float rounding, the
 * order of the sums being different (at most 1 apart after rounding).
 * Returns 0, PV_EINVAL (zero size, NULL pointer, channels 0) or PV_ENOMEM. */
typedef struct img_area img_area;
int img_area_new(uint32_t src_w, uint32_t src_h, uint32_t channels,
                 uint8_t *dst, uint32_t dst_w, uint32_t dst_h, int any_order,
                 img_area **out);
/* The next source row (src_w*channels bytes); any_order 0 only. Rows past
 * src_h are ignored. */
void img_area_row(img_area *a, const uint8_t *row);
/* n source pixels of row y at columns x0, x0+dx, x0+2*dx, ... (px holds
 * n*channels bytes); any_order 1 only. Pixels outside the source are
 * ignored; one given twice counts twice. */
void img_area_put(img_area *a, uint32_t y, uint32_t x0, uint32_t dx,
                  const uint8_t *px, uint32_t n);
/* Write what is left of the output to dst: with any_order 0, every output
 * row once all src_h rows are in (PV_EINVAL, dst partly written, if fewer
 * came); with any_order 1, the whole output. */
int img_area_finish(img_area *a);
void img_area_free(img_area *a); /* NULL is fine */

/* Pillow's resampling filters, by Pillow's numbers (Image.Resampling). */
enum { IMG_FILTER_BILINEAR = 2, IMG_FILTER_BICUBIC = 3 };

/* Resize an 8-bit image of ch channels (1 or 3, interleaved) from sw x sh to
 * dw x dh exactly as Pillow 9.4's Image.resize((dw, dh), filter) does (box
 * None, reducing_gap None), byte for byte (img_resample.c gives the
 * algorithm): a convolution, antialiased when shrinking, in 22-bit fixed
 * point, horizontal pass then vertical, each rounded to 8 bits. dst holds
 * dw*dh*ch bytes. Returns 0, PV_ENOMEM (one buffer is allocated: the
 * weights and, when both sides change, dw*ch bytes for each source row the
 * vertical pass reads), or PV_EINVAL for a NULL pointer, a zero size, ch
 * other than 1 or 3, a filter other than the two, or either image over
 * PV_MAX_PIXELS; dst is untouched on failure. Thread-safe. */
int img_resize_pil(const uint8_t *src, uint32_t sw, uint32_t sh, uint32_t ch,
                   uint8_t *dst, uint32_t dw, uint32_t dh, int filter);

/* CLIP / Hugging Face preprocessing: resize (img_resize_pil) so the shorter
 * side becomes `side` and the longer (uint32_t)(side * long / short)
 * (truncated, as HF's get_resize_output_image_size; the width counts as
 * the short side when the sides are equal; no resize when the short side is
 * already `side`), then centre-crop crop x crop at top = (H - crop) // 2,
 * left = (W - crop) // 2 (HF's center_crop). When the resized image is
 * smaller than crop on a side (crop > side), HF pads it with zeros,
 * ceil((crop - H) / 2) rows before it, and so does this: those output
 * samples are 0. Only the pixels the crop keeps are computed. dst holds
 * crop*crop*ch bytes. Returns as img_resize_pil (PV_EINVAL also for side
 * or crop 0, or a resized image over PV_MAX_PIXELS). */
int img_resize_short_crop(const uint8_t *src, uint32_t sw, uint32_t sh,
                          uint32_t ch, uint32_t side, uint32_t crop, int filter,
                          uint8_t *dst);

/* Apply an EXIF orientation (1..8) in place (may swap w and h, and then
 * orig_w and orig_h too). Values outside 2..8 leave the image as it is.
 * Allocates a new px: PV_ENOMEM leaves the image as it was. */
int img_orient(img *im, int orientation);

void img_free(img *im);

#endif
