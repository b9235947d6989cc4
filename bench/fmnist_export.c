/*
 * fmnist_export.c - writes Fashion-MNIST (Debian's dataset-fashion-mnist,
 * gzip'd IDX files) out as PNG files in the ImageFolder layout:
 *   OUT/train/<class>/00001.png ... and OUT/test/<class>/00001.png ...
 * so that pixvec can ingest them like any folder of images. The IDX format:
 * big-endian u32 magic (0x803 images, 0x801 labels), u32 count, then for
 * images u32 rows, u32 cols, and count*rows*cols bytes.
 *
 * usage: fmnist_export OUT [--limit N] [--src DIR]
 */
#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char *const classes[10] = {
    "tshirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot"};

static uint8_t *read_gz(const char *path, size_t *n)
{
    gzFile f = gzopen(path, "rb");
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    int r;
    if (!f || !buf) {
        fprintf(stderr, "fmnist_export: %s: %s\n", path, strerror(errno));
        free(buf);
        if (f)
            gzclose(f);
        return NULL;
    }
    while ((r = gzread(f, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                gzclose(f);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    gzclose(f);
    *n = len;
    return buf;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int write_png(const char *path, const uint8_t *px, int w, int h)
{
    FILE *f = fopen(path, "wb");
    png_structp png = NULL;
    png_infop info = NULL;
    if (!f)
        return -1;
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, px + (size_t)y * w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f);
}

static int export_split(const char *src, const char *out, const char *split,
                        const char *prefix, long limit)
{
    char ip[1024], lp[1024], dir[1024], file[1100];
    size_t ni = 0, nl = 0;
    uint8_t *im, *lb;
    uint32_t count, rows, cols;
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", src, prefix);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", src, prefix);
    im = read_gz(ip, &ni);
    lb = read_gz(lp, &nl);
    if (!im || !lb || ni < 16 || nl < 8 || be32(im) != 0x803 || be32(lb) != 0x801) {
        fprintf(stderr, "fmnist_export: %s: not an IDX image/label pair\n", ip);
        free(im);
        free(lb);
        return -1;
    }
    count = be32(im + 4);
    rows = be32(im + 8);
    cols = be32(im + 12);
    if (ni < 16 + (size_t)count * rows * cols || nl < 8 + (size_t)count) {
        fprintf(stderr, "fmnist_export: %s: truncated\n", ip);
        free(im);
        free(lb);
        return -1;
    }
    if (limit >= 0 && (uint32_t)limit < count)
        count = (uint32_t)limit;
    snprintf(dir, sizeof dir, "%s/%s", out, split);
    mkdir(dir, 0755);
    for (int c = 0; c < 10; c++) {
        snprintf(file, sizeof file, "%s/%s", dir, classes[c]);
        mkdir(file, 0755);
    }
    for (uint32_t i = 0; i < count; i++) {
        uint8_t l = lb[8 + i];
        if (l > 9)
            continue;
        snprintf(file, sizeof file, "%s/%s/%05u.png", dir, classes[l], i + 1);
        if (write_png(file, im + 16 + (size_t)i * rows * cols, (int)cols, (int)rows) != 0) {
            fprintf(stderr, "fmnist_export: %s: %s\n", file, strerror(errno));
            free(im);
            free(lb);
            return -1;
        }
    }
    printf("fmnist_export: %u %s images in %s\n", count, split, dir);
    free(im);
    free(lb);
    return 0;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *src = "/usr/share/datasets/fashion-mnist";
    long limit = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
            limit = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--src") == 0 && i + 1 < argc)
            src = argv[++i];
        else if (argv[i][0] != '-' && !out)
            out = argv[i];
        else {
            fprintf(stderr, "usage: fmnist_export OUT [--limit N] [--src DIR]\n");
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "usage: fmnist_export OUT [--limit N] [--src DIR]\n");
        return 2;
    }
    mkdir(out, 0755);
    if (export_split(src, out, "train", "train", limit) != 0 ||
        export_split(src, out, "test", "t10k", limit) != 0)
        return 1;
    return 0;
}
