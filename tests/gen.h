/*
 * gen.h - test helpers that write images and damaged files (tests only),
 * and the exact nearest neighbours the map tests feed to t-SNE and UMAP.
 *
 * Images are written with the same libraries the decoder uses (libjpeg-turbo,
 * libpng), so a test can make any input it needs at run time instead of
 * keeping binary fixtures. Every function returns 0 on success and -1 on
 * failure (with nothing printed); a half-written file may remain on failure.
 * Pixels are 8-bit, row-major, channel-interleaved, with no row padding,
 * like img.h, except where a function says otherwise.
 *
 * Typical use:
 *     char dir[GEN_PATH_MAX], path[GEN_PATH_MAX];
 *     gen_tmpdir(dir);
 *     gen_path(path, dir, "a.jpg");
 *     uint8_t *px = malloc(w * h * 3);
 *     gen_pattern(w, h, 3, 7, px);
 *     gen_write_jpeg(path, w, h, 3, px, 90, 0);
 *     ...
 *     gen_rmtree(dir);
 */
#ifndef PV_TEST_GEN_H
#define PV_TEST_GEN_H

#include <stddef.h>
#include <stdint.h>

#define GEN_PATH_MAX 4096

/* PNG colour types (the values of the PNG specification and libpng). */
#define GEN_PNG_GREY 0
#define GEN_PNG_RGB 2
#define GEN_PNG_PALETTE 3
#define GEN_PNG_GREY_ALPHA 4
#define GEN_PNG_RGBA 6

/* ---- pixels --------------------------------------------------------------- */

/* Fill buf (w*h*channels bytes, channels 1..4) with a picture that is not
 * flat and that differs clearly between seeds: a diagonal gradient whose
 * direction and slope come from the seed, plus a few seeded solid blocks.
 * Smooth enough to survive JPEG at quality >= 75 with small errors.
 * Same (w, h, channels, seed) -> same bytes. */
void gen_pattern(uint32_t w, uint32_t h, uint32_t channels, uint32_t seed,
                 uint8_t *buf);

/* Fill buf (w*h*3 bytes, RGB) with mid grey (128) and two side x side
 * blocks at the stored top corners: pure red at the top-left, pure green at
 * the top-right, so a test can tell how an image was turned or flipped.
 * Blocks of 8 or more survive JPEG; scale side with any later reduction.
 * side <= w/2 and side <= h. */
void gen_marked(uint32_t w, uint32_t h, uint32_t side, uint8_t *buf);

/* ---- writing images ------------------------------------------------------- */

/* Baseline JPEG. channels: 1 grey, 3 RGB, 4 CMYK (samples written as given,
 * with libjpeg's Adobe APP14 marker: pass inverted CMYK, 255 - ink, to make
 * a file like Photoshop's). quality 1..100; RGB at quality >= 90 is written
 * without chroma subsampling (4:4:4), below 90 with libjpeg's default 4:2:0,
 * so tests can have both. exif_orientation: 0 writes no
 * EXIF, 1..8 writes an APP1 Exif segment (big-endian TIFF, IFD0 holding only
 * the Orientation tag) right after SOI, before any JFIF segment. */
int gen_write_jpeg(const char *path, uint32_t w, uint32_t h, uint32_t channels,
                   const uint8_t *px, int quality, int exif_orientation);

/* A seeded gen_pattern picture, w x h RGB, written to dir/name: JPEG
 * (quality 90) when name ends in .jpg, else PNG. The path goes to out
 * (GEN_PATH_MAX bytes). */
int gen_picture(const char *dir, const char *name, uint32_t seed, uint32_t w,
                uint32_t h, char *out);

/* n gen_picture files in dir named PREFIX0000.EXT, PREFIX0001.EXT, ...
 * (ext "jpg" or "png"; NULL: every third a PNG, the others JPEGs), seeds
 * seed0 + i. */
int gen_picture_set(const char *dir, const char *prefix, int n, uint32_t w, uint32_t h,
                    const char *ext, uint32_t seed0);

/* The same, progressive (several scans). */
int gen_write_jpeg_progressive(const char *path, uint32_t w, uint32_t h,
                               uint32_t channels, const uint8_t *px,
                               int quality);

/* A progressive JPEG of w x h (1..65535) mid-grey pixels, channels 1 (grey)
 * or 3 (YCbCr 4:4:4), laid down byte by byte rather than by libjpeg: one
 * DC-first scan in which every block's DC difference is 0 (one bit), and no
 * AC scans (their coefficients stay 0). A decoder must still keep every
 * block's 64 coefficients until the end, w*h*channels*2 bytes, while the
 * file is about w*h*channels/512 bytes and is written without holding the
 * image: the progressive-JPEG memory bomb. Decodes to 128 everywhere. */
int gen_write_jpeg_flat_progressive(const char *path, uint32_t w, uint32_t h,
                                    uint32_t channels);

/* The same picture as a sequential (SOF0) JPEG of 3 components in three
 * scans, one per component (non-interleaved): libjpeg must buffer every
 * coefficient for this too, as for a progressive file. */
int gen_write_jpeg_flat_multiscan(const char *path, uint32_t w, uint32_t h);

/* Options for gen_write_png; a NULL pointer means all zero. */
typedef struct gen_png_opts {
    int interlace;          /* 1 = Adam7 */
    const uint8_t *palette; /* GEN_PNG_PALETTE: npalette RGB triples */
    int npalette;
    const uint8_t *trans;   /* GEN_PNG_PALETTE: ntrans alpha values (tRNS) */
    int ntrans;
    int has_trans_color;    /* GREY or RGB: write a tRNS colour key */
    uint16_t trans_color[3];/* grey in [0]; RGB in [0..2]; at bit_depth */
    int repeat_row;         /* px is one row, written h times, unfiltered
                               and at zlib's best compression (a flat image
                               shrinks about 1000:1): an image of any size,
                               e.g. a PNG bomb, without its memory */
} gen_png_opts;

/* PNG of colour type ct (GEN_PNG_*) and bit_depth (1, 2, 4, 8, 16 as the
 * type allows). px holds one sample per array element:
 *  - bit_depth 16: const uint16_t[] in host byte order;
 *  - bit_depth 8: const uint8_t[];
 *  - bit_depth 1, 2, 4 (GREY or PALETTE): const uint8_t[], one sample per
 *    byte (values 0 .. 2^depth - 1), packed here.
 * Samples per pixel: GREY 1, GREY_ALPHA 2, RGB 3, RGBA 4, PALETTE 1 (index). */
int gen_write_png(const char *path, uint32_t w, uint32_t h, int ct,
                  int bit_depth, const void *px, const gen_png_opts *opts);

/* ---- files ---------------------------------------------------------------- */

/* Write n bytes to path (created or truncated). */
int gen_write_bytes(const char *path, const void *data, size_t n);

/* Read a whole file into *data (malloc'd, caller frees) and *n. */
int gen_read_bytes(const char *path, uint8_t **data, size_t *n);

/* Cut (or, with a larger keep_bytes, extend with zeros: a sparse file) the
 * file at path to keep_bytes bytes. */
int gen_truncate(const char *path, size_t keep_bytes);

/* Create a fresh directory /tmp/pixvec-test-XXXXXX; dir gets its path
 * (GEN_PATH_MAX bytes). */
int gen_tmpdir(char *dir);

/* out = dir "/" name (GEN_PATH_MAX bytes); returns out, or NULL if too long. */
char *gen_path(char *out, const char *dir, const char *name);

/* Remove dir and everything below it (does not follow symlinks). */
int gen_rmtree(const char *dir);

/* ---- damaging files --------------------------------------------------------- */

/* CRC-32 as in PNG and zlib (polynomial 0xedb88320), so tests need no zlib. */
uint32_t gen_crc32(const uint8_t *data, size_t n);

/* Rewrite the width and height in a PNG's IHDR and fix the chunk's CRC, so
 * the header is valid and only the size is a lie. */
int gen_png_set_size(const char *path, uint32_t w, uint32_t h);

/* Rewrite the width and height in a JPEG's first SOFn segment (16 bits each). */
int gen_jpeg_set_size(const char *path, uint32_t w, uint32_t h);

/* Damage the first IDAT chunk. crc_only 0: flip bits inside its compressed
 * data and leave the CRC as it was (libpng may notice the garbled data before
 * it reaches the CRC, so expect any decode error). crc_only 1: leave the data
 * intact and break only the stored CRC (libpng reports "IDAT: CRC error"). */
int gen_png_corrupt_idat(const char *path, int crc_only);

/* ---- databases ------------------------------------------------------------ */

/* Rewrite meta/format of the pixvec database in dir with raw LMDB, as a
 * newer pixvec would have written it. */
int gen_db_set_format(const char *dir, uint32_t version);

/* Write one raw record of the pixvec database in dir with plain LMDB (no
 * pixvec check in the way), as a damaged or hostile file would hold it:
 * table is a sub-database name ("meta", "items", "hnsw", ...), key and val
 * the bytes (a u32-keyed table takes the key in native order). val NULL
 * deletes the key (every value of a dupsort key). For dupsort tables the
 * value is added beside the key's others. */
int gen_db_put(const char *dir, const char *table, const void *key,
               size_t klen, const void *val, size_t vlen);

/* The raw value of table/key copied into *val (malloc'd, caller frees) and
 * its length into *vlen; the first value for a dupsort key. -1 if absent. */
int gen_db_get(const char *dir, const char *table, const void *key,
               size_t klen, uint8_t **val, size_t *vlen);

/* Three classes of generated pictures that any embedder tells apart:
 * GEN_CLASSES[c] names class c. gen_class_picture writes a 48x40 RGB PNG of
 * class c (0..2) varied by seed (noise, shift, contrast); it aborts if the
 * file cannot be written. gen_class_folders writes per pictures of each
 * class under imgs/<class>/NNN.png, numbered from first (folders made). */
extern const char *const GEN_CLASSES[3];
void gen_class_picture(const char *path, int c, uint32_t seed);
void gen_class_folders(const char *imgs, int per, int first);

/* ---- vectors -------------------------------------------------------------- */

/* Exact k nearest rows of x (n x dim) to each of the nq rows of q, by
 * euclidean distance computed in double: nbr/dist (nq x k) nearest first,
 * ties to the lower index, dist the plain (not squared) distance as float.
 * self: q is x and row i leaves itself out. Needs k <= n - (self != 0).
 * O(nq n (dim + k)). */
int gen_knn_exact(const float *q, size_t nq, const float *x, size_t n, uint32_t dim,
                  uint32_t k, int self, uint32_t *nbr, float *dist);

#endif
