/*
 * gen.c - writes test images with libjpeg-turbo and libpng, and damages
 * files in controlled ways (see gen.h).
 *
 * Errors inside the libraries longjmp back to the writer, which closes its
 * file and returns -1; a test helper must not print or exit either, or a
 * failing fixture would look like a crash of the code under test. EXIF is
 * written as a hand-built 32-byte blob (one IFD0 entry) rather than through
 * libexif's writer, so the decoder's libexif reading is checked against
 * bytes laid down independently of it.
 */
#include "gen.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <lmdb.h>
#include <png.h>

/* ---- pixels --------------------------------------------------------------- */

static uint32_t gen_rand(uint32_t *s)
{
    /* xorshift32: deterministic on every platform, no global state. */
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* 0..255..0 over a period of 510: a gradient that wraps without a jump. */
static uint8_t tri(uint32_t v)
{
    v %= 510;
    return (uint8_t)(v < 256 ? v : 510 - v);
}

void gen_pattern(uint32_t w, uint32_t h, uint32_t channels, uint32_t seed,
                 uint8_t *buf)
{
    uint32_t s = seed * 2654435761u + 0x9e3779b9u, x, y, c, b;
    uint32_t sx[4], sy[4], off[4];

    if (s == 0)
        s = 1;
    for (c = 0; c < 4; c++) {
        /* slopes in 1..4 per axis and channel, scaled to the image size */
        sx[c] = 1 + gen_rand(&s) % 4;
        sy[c] = 1 + gen_rand(&s) % 4;
        off[c] = gen_rand(&s) % 510;
    }
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++)
            for (c = 0; c < channels; c++) {
                uint32_t v = off[c & 3] + (sx[c & 3] * x * 255) / (w + 1) +
                             (sy[c & 3] * y * 255) / (h + 1);
                buf[((size_t)y * w + x) * channels + c] = tri(v);
            }
    /* A few solid blocks at seeded places make seeds clearly different. */
    for (b = 0; b < 3; b++) {
        uint32_t bw = w / 4 + 1, bh = h / 4 + 1;
        uint32_t x0 = gen_rand(&s) % w, y0 = gen_rand(&s) % h;
        uint8_t col[4];
        for (c = 0; c < 4; c++)
            col[c] = (uint8_t)(gen_rand(&s) & 0xff);
        for (y = y0; y < h && y < y0 + bh; y++)
            for (x = x0; x < w && x < x0 + bw; x++)
                for (c = 0; c < channels; c++)
                    buf[((size_t)y * w + x) * channels + c] = col[c & 3];
    }
}

void gen_marked(uint32_t w, uint32_t h, uint32_t side, uint8_t *buf)
{
    uint32_t x, y;

    memset(buf, 128, (size_t)w * h * 3);
    for (y = 0; y < side; y++)
        for (x = 0; x < side; x++) {
            uint8_t *r = buf + ((size_t)y * w + x) * 3;
            uint8_t *g = buf + ((size_t)y * w + (w - side + x)) * 3;
            r[0] = 255, r[1] = 0, r[2] = 0;
            g[0] = 0, g[1] = 255, g[2] = 0;
        }
}

/* ---- JPEG ------------------------------------------------------------------ */

struct gen_jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
};

typedef struct gen_jpeg_job {
    struct jpeg_compress_struct ci;
    struct gen_jerr jerr;
    FILE *f;
    int created;
} gen_jpeg_job;

static void gen_jpeg_error_exit(j_common_ptr ci)
{
    longjmp(((struct gen_jerr *)ci->err)->jb, 1);
}

static void gen_jpeg_silent(j_common_ptr ci)
{
    (void)ci;
}

/* "Exif\0\0", a big-endian TIFF header and IFD0 with one SHORT entry:
 * Orientation (0x0112) = o. */
static void gen_exif_blob(uint8_t out[32], int o)
{
    static const uint8_t tmpl[32] = {
        'E', 'x', 'i', 'f', 0, 0,          /* APP1 identifier */
        'M', 'M', 0, 42, 0, 0, 0, 8,       /* TIFF: big-endian, IFD0 at 8 */
        0, 1,                              /* one entry */
        0x01, 0x12, 0, 3, 0, 0, 0, 1,      /* tag, SHORT, count 1 */
        0, 0, 0, 0,                        /* value, padded to 4 bytes */
        0, 0, 0, 0,                        /* no next IFD */
    };
    memcpy(out, tmpl, sizeof tmpl);
    out[24] = (uint8_t)(o >> 8);
    out[25] = (uint8_t)o;
}

/* Under setjmp; state in *j so that longjmp clobbers nothing we need. */
static int gen_jpeg_run(gen_jpeg_job *j, uint32_t w, uint32_t h,
                        uint32_t channels, const uint8_t *px, int quality,
                        int exif_orientation, int progressive)
{
    struct jpeg_compress_struct *ci = &j->ci;

    if (setjmp(j->jerr.jb))
        return -1;
    jpeg_create_compress(ci);
    j->created = 1;
    jpeg_stdio_dest(ci, j->f);
    ci->image_width = w;
    ci->image_height = h;
    ci->input_components = (int)channels;
    ci->in_color_space = channels == 1 ? JCS_GRAYSCALE
                         : channels == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, quality, TRUE);
    if (quality >= 90 && channels == 3) {
        /* 4:4:4, so that high-quality round trips are close everywhere,
         * colour edges included; below 90, libjpeg's default 4:2:0. */
        ci->comp_info[0].h_samp_factor = 1;
        ci->comp_info[0].v_samp_factor = 1;
    }
    if (progressive)
        jpeg_simple_progression(ci);
    if (exif_orientation != 0)
        ci->write_JFIF_header = FALSE; /* EXIF wants APP1 first */
    jpeg_start_compress(ci, TRUE);
    if (exif_orientation != 0) {
        uint8_t blob[32];
        gen_exif_blob(blob, exif_orientation);
        jpeg_write_marker(ci, JPEG_APP0 + 1, blob, sizeof blob);
    }
    while (ci->next_scanline < ci->image_height) {
        /* libjpeg's row type is not const; it only reads the row. */
        JSAMPROW row = (JSAMPROW)(uintptr_t)(px + (size_t)ci->next_scanline *
                                                      w * channels);
        jpeg_write_scanlines(ci, &row, 1);
    }
    jpeg_finish_compress(ci);
    return 0;
}

static int gen_jpeg(const char *path, uint32_t w, uint32_t h,
                    uint32_t channels, const uint8_t *px, int quality,
                    int exif_orientation, int progressive)
{
    gen_jpeg_job *j;
    int rc = -1;

    if (channels != 1 && channels != 3 && channels != 4)
        return -1;
    if (exif_orientation < 0 || exif_orientation > 8)
        return -1;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return -1;
    j->f = fopen(path, "wb");
    if (j->f == NULL)
        goto done;
    j->ci.err = jpeg_std_error(&j->jerr.pub);
    j->jerr.pub.error_exit = gen_jpeg_error_exit;
    j->jerr.pub.output_message = gen_jpeg_silent;
    rc = gen_jpeg_run(j, w, h, channels, px, quality, exif_orientation,
                      progressive);
done:
    if (j->created)
        jpeg_destroy_compress(&j->ci);
    if (j->f != NULL && fclose(j->f) != 0)
        rc = -1;
    free(j);
    return rc;
}

int gen_write_jpeg(const char *path, uint32_t w, uint32_t h, uint32_t channels,
                   const uint8_t *px, int quality, int exif_orientation)
{
    return gen_jpeg(path, w, h, channels, px, quality, exif_orientation, 0);
}

int gen_write_jpeg_progressive(const char *path, uint32_t w, uint32_t h,
                               uint32_t channels, const uint8_t *px,
                               int quality)
{
    return gen_jpeg(path, w, h, channels, px, quality, 0, 1);
}

/* n entropy-coded bits, all 0, then 1 bits to the end of the byte. */
static int gen_zero_bits(FILE *f, size_t bits)
{
    static const uint8_t zeros[4096];
    size_t bytes = bits / 8;

    while (bytes > 0) {
        size_t k = bytes < sizeof zeros ? bytes : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k)
            return -1;
        bytes -= k;
    }
    if (bits % 8 != 0 && fputc(0xff >> (bits % 8), f) == EOF)
        return -1;
    return 0;
}

/* A flat mid-grey JPEG written byte by byte. Marker segments, in order:
 * SOI; DQT table 0 all ones; SOF2 (progressive) or SOF0 (sequential),
 * 8-bit, every component sampled 1x1 (a block per component per MCU); DHT
 * DC table 0 with one code, "0" for category 0 (a DC difference of 0),
 * and when sequential AC table 0 with one code, "0" for EOB. Progressive:
 * one SOS over all components, Ss = Se = 0 (DC first), a bit a block.
 * Sequential: one SOS per component (non-interleaved, Ss..Se = 0..63), two
 * bits a block. Then EOI. */
static int gen_jpeg_flat(const char *path, uint32_t w, uint32_t h,
                         uint32_t channels, int progressive)
{
    uint8_t hdr[256];
    size_t n = 0, blocks = (size_t)((w + 7) / 8) * ((h + 7) / 8);
    uint32_t c, i, t;
    FILE *f;
    int rc = 0;

    if (w == 0 || h == 0 || w > 0xffff || h > 0xffff ||
        (channels != 1 && channels != 3))
        return -1;
    hdr[n++] = 0xff; hdr[n++] = 0xd8;                     /* SOI */
    hdr[n++] = 0xff; hdr[n++] = 0xdb;                     /* DQT */
    hdr[n++] = 0; hdr[n++] = 67; hdr[n++] = 0;
    for (i = 0; i < 64; i++)
        hdr[n++] = 1;
    hdr[n++] = 0xff; hdr[n++] = progressive ? 0xc2 : 0xc0; /* SOF2 / SOF0 */
    hdr[n++] = 0; hdr[n++] = (uint8_t)(8 + 3 * channels);
    hdr[n++] = 8;
    hdr[n++] = (uint8_t)(h >> 8); hdr[n++] = (uint8_t)h;
    hdr[n++] = (uint8_t)(w >> 8); hdr[n++] = (uint8_t)w;
    hdr[n++] = (uint8_t)channels;
    for (c = 1; c <= channels; c++) {
        hdr[n++] = (uint8_t)c; hdr[n++] = 0x11; hdr[n++] = 0;
    }
    for (t = 0; t < (progressive ? 1u : 2u); t++) {
        hdr[n++] = 0xff; hdr[n++] = 0xc4;                 /* DHT */
        hdr[n++] = 0; hdr[n++] = 2 + 1 + 16 + 1;
        hdr[n++] = (uint8_t)(t << 4);                     /* DC / AC, table 0 */
        hdr[n++] = 1;                                     /* one 1-bit code */
        for (i = 1; i < 16; i++)
            hdr[n++] = 0;
        hdr[n++] = 0;                                     /* category 0 / EOB */
    }
    f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    if (fwrite(hdr, 1, n, f) != n)
        rc = -1;
    for (c = 1; rc == 0 && c <= (progressive ? 1u : channels); c++) {
        uint32_t ns = progressive ? channels : 1, k;
        n = 0;
        hdr[n++] = 0xff; hdr[n++] = 0xda;                 /* SOS */
        hdr[n++] = 0; hdr[n++] = (uint8_t)(6 + 2 * ns);
        hdr[n++] = (uint8_t)ns;
        for (k = 0; k < ns; k++) {
            hdr[n++] = (uint8_t)(progressive ? k + 1 : c); hdr[n++] = 0x00;
        }
        hdr[n++] = 0; hdr[n++] = progressive ? 0 : 63; hdr[n++] = 0;
        if (fwrite(hdr, 1, n, f) != n ||
            gen_zero_bits(f, progressive ? blocks * channels : blocks * 2) != 0)
            rc = -1;
    }
    if (rc == 0 && (fputc(0xff, f) == EOF || fputc(0xd9, f) == EOF)) /* EOI */
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int gen_write_jpeg_flat_progressive(const char *path, uint32_t w, uint32_t h,
                                    uint32_t channels)
{
    return gen_jpeg_flat(path, w, h, channels, 1);
}

int gen_write_jpeg_flat_multiscan(const char *path, uint32_t w, uint32_t h)
{
    return gen_jpeg_flat(path, w, h, 3, 0);
}

/* ---- PNG ------------------------------------------------------------------- */

typedef struct gen_png_job {
    png_structp png;
    png_infop info;
    FILE *f;
    png_color *plte;
} gen_png_job;

static void gen_png_error(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void gen_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static int gen_png_spp(int ct)
{
    switch (ct) {
    case GEN_PNG_GREY: return 1;
    case GEN_PNG_RGB: return 3;
    case GEN_PNG_PALETTE: return 1;
    case GEN_PNG_GREY_ALPHA: return 2;
    case GEN_PNG_RGBA: return 4;
    default: return 0;
    }
}

static int gen_png_run(gen_png_job *j, uint32_t w, uint32_t h, int ct,
                       int depth, const void *px, const gen_png_opts *o)
{
    const uint16_t one = 1;
    size_t stride;
    int passes, p;
    uint32_t y;

    if (setjmp(png_jmpbuf(j->png)))
        return -1;
    png_init_io(j->png, j->f);
    /* libpng's default cap of 1e6 columns would stop tests of wide images. */
    png_set_user_limits(j->png, 0x7fffffffu, 0x7fffffffu);
    png_set_IHDR(j->png, j->info, w, h, depth, ct,
                 o->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ct == GEN_PNG_PALETTE) {
        int i;
        if (o->palette == NULL || o->npalette < 1 || o->npalette > 256)
            return -1;
        j->plte = malloc((size_t)o->npalette * sizeof *j->plte);
        if (j->plte == NULL)
            return -1;
        for (i = 0; i < o->npalette; i++) {
            j->plte[i].red = o->palette[3 * i];
            j->plte[i].green = o->palette[3 * i + 1];
            j->plte[i].blue = o->palette[3 * i + 2];
        }
        png_set_PLTE(j->png, j->info, j->plte, o->npalette);
        if (o->trans != NULL && o->ntrans > 0)
            png_set_tRNS(j->png, j->info, o->trans, o->ntrans, NULL);
    } else if (o->has_trans_color) {
        png_color_16 tc;
        memset(&tc, 0, sizeof tc);
        tc.gray = o->trans_color[0];
        tc.red = o->trans_color[0];
        tc.green = o->trans_color[1];
        tc.blue = o->trans_color[2];
        png_set_tRNS(j->png, j->info, NULL, 0, &tc);
    }
    if (o->repeat_row) {
        png_set_filter(j->png, 0, PNG_FILTER_NONE);
        png_set_compression_level(j->png, 9);
    }
    png_write_info(j->png, j->info);
    if (depth < 8)
        png_set_packing(j->png); /* we pass one sample per byte */
    if (depth == 16 && *(const uint8_t *)&one == 1)
        png_set_swap(j->png);    /* PNG is big-endian, the host is not */
    stride = (size_t)w * (size_t)gen_png_spp(ct) * (depth == 16 ? 2 : 1);
    passes = png_set_interlace_handling(j->png);
    for (p = 0; p < passes; p++)
        for (y = 0; y < h; y++)
            png_write_row(j->png, (png_const_bytep)px +
                                      (o->repeat_row ? 0 : (size_t)y * stride));
    png_write_end(j->png, NULL);
    return 0;
}

int gen_write_png(const char *path, uint32_t w, uint32_t h, int ct,
                  int bit_depth, const void *px, const gen_png_opts *opts)
{
    static const gen_png_opts none;
    gen_png_job j;
    int rc = -1;

    if (gen_png_spp(ct) == 0 || px == NULL)
        return -1;
    memset(&j, 0, sizeof j);
    j.f = fopen(path, "wb");
    if (j.f == NULL)
        return -1;
    j.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, gen_png_error,
                                    gen_png_warning);
    if (j.png != NULL)
        j.info = png_create_info_struct(j.png);
    if (j.png != NULL && j.info != NULL)
        rc = gen_png_run(&j, w, h, ct, bit_depth, px, opts ? opts : &none);
    if (j.png != NULL)
        png_destroy_write_struct(&j.png, j.info ? &j.info : NULL);
    free(j.plte);
    if (fclose(j.f) != 0)
        rc = -1;
    return rc;
}

/* ---- files ----------------------------------------------------------------- */

int gen_write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (f == NULL)
        return -1;
    if (n > 0 && fwrite(data, 1, n, f) != n)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int gen_read_bytes(const char *path, uint8_t **data, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size;
    int rc = -1;

    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto done;
    buf = malloc(size ? (size_t)size : 1);
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size)
        goto done;
    *data = buf;
    *n = (size_t)size;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    fclose(f);
    return rc;
}

int gen_truncate(const char *path, size_t keep_bytes)
{
    return truncate(path, (off_t)keep_bytes) == 0 ? 0 : -1;
}

int gen_tmpdir(char *dir)
{
    snprintf(dir, GEN_PATH_MAX, "/tmp/pixvec-test-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

char *gen_path(char *out, const char *dir, const char *name)
{
    int k = snprintf(out, GEN_PATH_MAX, "%s/%s", dir, name);
    return k < 0 || k >= GEN_PATH_MAX ? NULL : out;
}

int gen_rmtree(const char *dir)
{
    DIR *d;
    struct dirent *e;
    int rc = 0;

    d = opendir(dir);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char p[GEN_PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (gen_path(p, dir, e->d_name) == NULL || lstat(p, &st) != 0) {
            rc = -1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            chmod(p, 0700); /* a test may have made it unreadable */
            if (gen_rmtree(p) != 0)
                rc = -1;
        } else if (unlink(p) != 0) {
            rc = -1;
        }
    }
    closedir(d);
    if (rmdir(dir) != 0)
        rc = -1;
    return rc;
}

/* ---- damaging files ----------------------------------------------------------- */

uint32_t gen_crc32(const uint8_t *data, size_t n)
{
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        c ^= data[i];
        for (k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

int gen_png_set_size(const char *path, uint32_t w, uint32_t h)
{
    uint8_t *d = NULL;
    size_t n = 0;
    int rc = -1;

    if (gen_read_bytes(path, &d, &n) != 0)
        return -1;
    /* signature(8) length(4) "IHDR"(4) width(4) height(4) ... CRC at 29 */
    if (n < 33 || memcmp(d + 12, "IHDR", 4) != 0)
        goto done;
    put_be32(d + 16, w);
    put_be32(d + 20, h);
    put_be32(d + 29, gen_crc32(d + 12, 17));
    rc = gen_write_bytes(path, d, n);
done:
    free(d);
    return rc;
}

int gen_jpeg_set_size(const char *path, uint32_t w, uint32_t h)
{
    uint8_t *d = NULL;
    size_t n = 0, i = 2;
    int rc = -1;

    if (w > 0xffff || h > 0xffff || gen_read_bytes(path, &d, &n) != 0)
        return -1;
    /* Walk the marker segments after SOI up to the first SOFn. */
    while (i + 4 <= n && d[i] == 0xff) {
        uint8_t m = d[i + 1];
        size_t len = (size_t)d[i + 2] << 8 | d[i + 3];
        if (m == 0xff) { /* fill byte */
            i++;
            continue;
        }
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            /* FF Cn, length(2), precision(1), height(2), width(2) */
            if (i + 9 > n)
                break;
            d[i + 5] = (uint8_t)(h >> 8);
            d[i + 6] = (uint8_t)h;
            d[i + 7] = (uint8_t)(w >> 8);
            d[i + 8] = (uint8_t)w;
            rc = gen_write_bytes(path, d, n);
            break;
        }
        i += 2 + len;
    }
    free(d);
    return rc;
}

int gen_png_corrupt_idat(const char *path, int crc_only)
{
    uint8_t *d = NULL;
    size_t n = 0, i = 8;
    int rc = -1;

    if (gen_read_bytes(path, &d, &n) != 0)
        return -1;
    while (i + 12 <= n) {
        uint32_t len = get_be32(d + i);
        if ((size_t)len > n - i - 12)
            break;
        if (memcmp(d + i + 4, "IDAT", 4) == 0 && len > 0) {
            uint8_t *data = d + i + 8;
            if (crc_only) {
                data[len] ^= 0x01; /* first byte of the CRC */
            } else {
                data[len / 2] ^= 0xff;
                if (len > 4)
                    data[len / 4] ^= 0x5a;
            }
            rc = gen_write_bytes(path, d, n);
            break;
        }
        i += 12 + (size_t)len;
    }
    free(d);
    return rc;
}

/* ---- databases ------------------------------------------------------------ */

int gen_db_set_format(const char *dir, uint32_t v)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    MDB_val k = {6, "format"}, val = {4, b};
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 16);
    if (rc == 0)
        rc = mdb_env_open(env, dir, 0, 0644);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "meta", 0, &dbi);
    if (rc == 0)
        rc = mdb_put(txn, dbi, &k, &val, 0);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return rc == 0 ? 0 : -1;
}

int gen_picture(const char *dir, const char *name, uint32_t seed, uint32_t w,
                uint32_t h, char *out)
{
    size_t l = strlen(name);
    uint8_t *px = malloc((size_t)w * h * 3);
    int rc;
    if (!px)
        return -1;
    gen_pattern(w, h, 3, seed, px);
    gen_path(out, dir, name);
    if (l > 4 && strcmp(name + l - 4, ".jpg") == 0)
        rc = gen_write_jpeg(out, w, h, 3, px, 90, 0);
    else
        rc = gen_write_png(out, w, h, GEN_PNG_RGB, 8, px, NULL);
    free(px);
    return rc;
}

int gen_picture_set(const char *dir, const char *prefix, int n, uint32_t w, uint32_t h,
                    const char *ext, uint32_t seed0)
{
    for (int i = 0; i < n; i++) {
        char name[256], p[GEN_PATH_MAX];
        const char *e = ext ? ext : i % 3 ? "jpg" : "png";
        if ((size_t)snprintf(name, sizeof name, "%s%04d.%s", prefix, i, e) >= sizeof name ||
            gen_picture(dir, name, seed0 + (uint32_t)i, w, h, p) != 0)
            return -1;
    }
    return 0;
}

/* The LMDB flags each table was created with (storage/store.c). */
static unsigned table_flags(const char *table)
{
    if (!strcmp(table, "hashes"))
        return MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
    if (!strcmp(table, "ivf_lists"))
        return MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
    if (!strcmp(table, "meta") || !strcmp(table, "paths"))
        return 0;
    return MDB_INTEGERKEY;
}

/* Open dir's environment and table in a transaction (read-only if ro). */
static int raw_open(const char *dir, const char *table, int ro, MDB_env **env,
                    MDB_txn **txn, MDB_dbi *dbi)
{
    int rc = mdb_env_create(env);
    *txn = NULL;
    if (rc == 0)
        rc = mdb_env_set_maxdbs(*env, 16);
    if (rc == 0)
        rc = mdb_env_open(*env, dir, ro ? MDB_RDONLY : 0, 0644);
    if (rc == 0)
        rc = mdb_txn_begin(*env, NULL, ro ? MDB_RDONLY : 0, txn);
    if (rc == 0)
        rc = mdb_dbi_open(*txn, table, table_flags(table), dbi);
    return rc;
}

static void raw_close(MDB_env *env, MDB_txn *txn)
{
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
}

int gen_db_put(const char *dir, const char *table, const void *key,
               size_t klen, const void *val, size_t vlen)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = raw_open(dir, table, 0, &env, &txn, &dbi);
    if (rc == 0 && !val) {
        rc = mdb_del(txn, dbi, &k, NULL);
    } else if (rc == 0) {
        /* A replaced plain value: delete first, so a new size is taken
         * as it is (dupsort keys keep their other values). */
        if (!(table_flags(table) & MDB_DUPSORT)) {
            rc = mdb_del(txn, dbi, &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        }
        if (rc == 0)
            rc = mdb_put(txn, dbi, &k, &v, 0);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    raw_close(env, txn);
    return rc == 0 ? 0 : -1;
}

int gen_db_get(const char *dir, const char *table, const void *key,
               size_t klen, uint8_t **val, size_t *vlen)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = {klen, (void *)key}, v;
    int rc = raw_open(dir, table, 1, &env, &txn, &dbi);
    if (rc == 0)
        rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0) {
        *val = malloc(v.mv_size ? v.mv_size : 1);
        if (!*val)
            rc = ENOMEM;
        else {
            memcpy(*val, v.mv_data, v.mv_size);
            *vlen = v.mv_size;
        }
    }
    raw_close(env, txn);
    return rc == 0 ? 0 : -1;
}

/* ---- class folders (the ImageFolder convention) ------------------------- */

const char *const GEN_CLASSES[3] = {"gradient", "stripes", "rings"};

/* A 48x40 PNG of class c (0..2), varied by seed: noise, shift, contrast. */
void gen_class_picture(const char *path, int c, uint32_t seed)
{
    const uint32_t w = 48, h = 40;
    uint8_t *px = malloc((size_t)w * h * 3);
    uint32_t s = seed * 2654435761u + 1;
    int shift = (int)(seed % 2), gain = 80 + (int)(seed % 40);
    if (!px)
        abort();
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            int v;
            if (c == 0)
                v = (int)(y * 255 / h);
            else if (c == 1)
                v = (y / 4) % 2 ? 230 : 20;
            else {
                int dx = (int)x - 24 - shift, dy = (int)y - 20;
                v = ((dx * dx + dy * dy) / 40) % 2 ? 220 : 30;
            }
            s = s * 1103515245u + 12345u;
            v = 128 + (v - 128) * gain / 100 + (int)((s >> 16) % 21) - 10;
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            for (int k = 0; k < 3; k++)
                px[((size_t)y * w + x) * 3 + k] = (uint8_t)v;
        }
    if (gen_write_png(path, w, h, GEN_PNG_RGB, 8, px, NULL) != 0) {
        fprintf(stderr, "gen_class_picture: cannot write %s\n", path);
        abort();
    }
    free(px);
}

void gen_class_folders(const char *imgs, int per, int first)
{
    for (int c = 0; c < 3; c++) {
        char d[GEN_PATH_MAX], p[GEN_PATH_MAX + 16];
        if (!gen_path(d, imgs, GEN_CLASSES[c]))
            abort();
        mkdir(d, 0755);
        for (int i = first; i < first + per; i++) {
            int k = snprintf(p, sizeof p, "%s/%03d.png", d, i % 1000);
            if (k < 0 || (size_t)k >= sizeof p)
                abort();
            gen_class_picture(p, c, (uint32_t)(c * 1000 + i));
        }
    }
}

int gen_knn_exact(const float *q, size_t nq, const float *x, size_t n, uint32_t dim,
                  uint32_t k, int self, uint32_t *nbr, float *dist)
{
    if (k == 0 || (size_t)k + (self != 0) > n)
        return -1;
    double *bd = malloc(k * sizeof *bd); /* the best k so far, ascending */
    if (!bd)
        return -1;
    for (size_t i = 0; i < nq; i++) {
        uint32_t *bn = nbr + i * k;
        uint32_t m = 0;
        for (size_t j = 0; j < n; j++) {
            if (self && j == i)
                continue;
            double d = 0;
            for (uint32_t a = 0; a < dim; a++) {
                double v = (double)q[i * dim + a] - x[j * dim + a];
                d += v * v;
            }
            if (m == k && d >= bd[k - 1])
                continue;
            uint32_t p = m < k ? m++ : k - 1; /* insert, after equal ones */
            while (p > 0 && bd[p - 1] > d) {
                bd[p] = bd[p - 1];
                bn[p] = bn[p - 1];
                p--;
            }
            bd[p] = d;
            bn[p] = (uint32_t)j;
        }
        for (uint32_t j = 0; j < k; j++)
            dist[i * k + j] = (float)sqrt(bd[j]);
    }
    free(bd);
    return 0;
}
