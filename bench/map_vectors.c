/*
 * map_vectors.c - the map benchmark's bridge from a pixvec database to the
 * peers (issue 15): the embedding of every path listed in a CSV, in the
 * CSV's order, as raw float32 rows, so scikit-learn and umap-learn lay out
 * exactly pixvec's vectors; and, when the CSV is one `pixvec map --csv`
 * wrote, its layout (x, y and z if present) as float32 rows too, so the
 * scorer reads every map the same way.
 *
 *   map_vectors DB LIST.csv VECTORS.f32 [LAYOUT.f32]
 *
 * LIST.csv has a header line naming its columns; the one named "path" is
 * read (and "x", "y", "z" for LAYOUT.f32). Fields may be quoted as in RFC
 * 4180. Uses only the public API (pv_db_open read-only, pv_embed_file).
 * Prints "ROWS DIM LAYOUT_DIMS" on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "pixvec.h"

#define MAXF 16

/* Splits one CSV line in place into at most MAXF fields; returns their
 * number. Quoted fields lose their quotes ("" becomes "). */
static int csv_split(char *line, char **f)
{
    int n = 0;
    char *p = line;
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = 0;
    for (;;) {
        if (n == MAXF)
            return n;
        if (*p == '"') {
            char *w = ++p;
            f[n++] = w;
            while (*p) {
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else
                    *w++ = *p++;
            }
            *w = 0;
            /* a quoted field ends at the quote; skip to the comma */
            while (*p && *p != ',')
                p++;
        } else {
            f[n++] = p;
            while (*p && *p != ',')
                p++;
        }
        if (*p != ',') {
            *p = 0;
            return n;
        }
        *p++ = 0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: map_vectors DB LIST.csv VECTORS.f32 [LAYOUT.f32]\n");
        return 2;
    }
    char err[512], *f[MAXF];
    pv_db *db = NULL;
    if (pv_db_open(argv[1], PV_OPEN_RDONLY, &db, err, sizeof err) != PV_OK)
        bench_die("pv_db_open", err);
    pv_info info;
    if (pv_db_info(db, &info) != PV_OK)
        bench_die("pv_db_info", pv_db_errmsg(db));
    FILE *in = fopen(argv[2], "r");
    FILE *vo = fopen(argv[3], "wb");
    FILE *lo = argc == 5 ? fopen(argv[4], "wb") : NULL;
    if (!in || !vo || (argc == 5 && !lo))
        bench_die("cannot open", !in ? argv[2] : !vo ? argv[3] : argv[4]);
    size_t cap = 1 << 16;
    char *line = bench_alloc(cap);
    if (!fgets(line, (int)cap, in))
        bench_die("empty CSV", argv[2]);
    int nf = csv_split(line, f), cpath = -1, cxyz[3] = {-1, -1, -1};
    for (int i = 0; i < nf; i++) {
        if (!strcmp(f[i], "path"))
            cpath = i;
        for (int d = 0; d < 3; d++)
            if (!strcmp(f[i], (const char *[]){"x", "y", "z"}[d]))
                cxyz[d] = i;
    }
    if (cpath < 0)
        bench_die("no \"path\" column in", argv[2]);
    int ldims = cxyz[0] >= 0 && cxyz[1] >= 0 ? (cxyz[2] >= 0 ? 3 : 2) : 0;
    if (lo && !ldims)
        bench_die("no x and y columns for the layout in", argv[2]);
    float *v = bench_alloc(info.dim * sizeof *v);
    size_t rows = 0;
    while (fgets(line, (int)cap, in)) {
        if (line[0] == '\n' || line[0] == 0)
            continue;
        nf = csv_split(line, f);
        if (cpath >= nf)
            bench_die("short CSV row in", argv[2]);
        int rc = pv_embed_file(db, f[cpath], v, info.dim);
        if (rc != PV_OK)
            bench_die("pv_embed_file", f[cpath]);
        if (fwrite(v, sizeof *v, info.dim, vo) != info.dim)
            bench_die("cannot write", argv[3]);
        if (lo) {
            float xyz[3];
            for (int d = 0; d < ldims; d++) {
                if (cxyz[d] >= nf)
                    bench_die("short CSV row in", argv[2]);
                xyz[d] = strtof(f[cxyz[d]], NULL);
            }
            if (fwrite(xyz, sizeof *xyz, (size_t)ldims, lo) != (size_t)ldims)
                bench_die("cannot write", argv[4]);
        }
        rows++;
    }
    if (fclose(vo) != 0 || (lo && fclose(lo) != 0))
        bench_die("cannot write", argv[3]);
    fclose(in);
    printf("%zu %u %d\n", rows, info.dim, lo ? ldims : 0);
    free(v);
    free(line);
    pv_db_close(db);
    return 0;
}
