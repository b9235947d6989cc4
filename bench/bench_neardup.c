/*
 * bench_neardup.c - near-duplicate detection quality per embedder (issue 5,
 * item 4a), on real photographs that Debian ships.
 *
 * usage: bench_neardup --work DIR --photos DIR [--max N] [--out FILE]
 *
 * Every JPEG/PNG directly in the photos folder (bench/run_cnn.sh fills it
 * with bench/pkg_photos.sh: the photographs of lomiri-wallpapers-20.04 and
 * ukui-wallpapers, by their packages' file lists), downscaled to at most
 * 1024 px wide, is an original. Each gets 7 variants, made with the libraries pixvec reads them
 * with: JPEG quality 30; resized to 25 %; cropped to 80 % of its area
 * (centre); brightness +40; a 5 x 5 box blur; a watermark (a text-like band
 * of blocks over the lower part); grayscale. An original and its variants
 * form a group; 30 generated pictures are distractors with no group. The
 * true pairs are the pairs inside each group. For each embedder (pixels,
 * cnn) every file is embedded (pv_embed_file) and every pair scored; for
 * thresholds from 0.50 to 0.995 the pair precision and recall are printed,
 * and the threshold of best F1 is reported as that embedder's dups default.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "gen.h"
#include "img.h"
#include "pixvec.h"

#define VARIANTS 7
#define DISTRACTORS 30

typedef struct file {
    char path[4096];
    int group; /* -1: distractor */
} file;

static file *files;
static size_t nfiles, capfiles;

static void add_file(const char *path, int group)
{
    if (nfiles == capfiles) {
        capfiles = capfiles ? 2 * capfiles : 256;
        files = realloc(files, capfiles * sizeof *files);
        if (!files)
            bench_die("realloc", "files");
    }
    snprintf(files[nfiles].path, sizeof files[nfiles].path, "%s", path);
    files[nfiles++].group = group;
}

static int has_ext(const char *n)
{
    const char *d = strrchr(n, '.');
    return d && (!strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg") || !strcasecmp(d, ".png"));
}

static void write_jpeg(const char *dir, int g, const char *tag, const img *im, int q)
{
    char name[64], p[4096];
    snprintf(name, sizeof name, "g%03d_%s.jpg", g, tag);
    bench_path_join(p, sizeof p, dir, name);
    if (gen_write_jpeg(p, im->w, im->h, 3, im->px, q, 0) != 0)
        bench_die("gen_write_jpeg", p);
    add_file(p, g);
}

static img copy_of(const img *a)
{
    img b = *a;
    b.px = bench_alloc((size_t)a->w * a->h * 3);
    memcpy(b.px, a->px, (size_t)a->w * a->h * 3);
    return b;
}

static img resized(const img *a, uint32_t w, uint32_t h)
{
    img b = *a;
    b.w = w;
    b.h = h;
    b.px = bench_alloc((size_t)w * h * 3);
    if (img_resize_area(a->px, a->w, a->h, 3, b.px, w, h) != 0)
        bench_die("img_resize_area", "variant");
    return b;
}

static void variants(const char *dir, int g, const img *o)
{
    img v;
    write_jpeg(dir, g, "orig", o, 92);
    write_jpeg(dir, g, "q30", o, 30);
    v = resized(o, o->w / 4 > 8 ? o->w / 4 : 8, o->h / 4 > 8 ? o->h / 4 : 8);
    write_jpeg(dir, g, "small", &v, 90);
    free(v.px);
    { /* centre crop to 80 % of the area: sides x sqrt(0.8) */
        uint32_t cw = (uint32_t)(o->w * 0.8944), ch = (uint32_t)(o->h * 0.8944);
        uint32_t x0 = (o->w - cw) / 2, y0 = (o->h - ch) / 2;
        v = *o;
        v.w = cw;
        v.h = ch;
        v.px = bench_alloc((size_t)cw * ch * 3);
        for (uint32_t y = 0; y < ch; y++)
            memcpy(v.px + (size_t)y * cw * 3, o->px + ((size_t)(y + y0) * o->w + x0) * 3,
                   (size_t)cw * 3);
        write_jpeg(dir, g, "crop", &v, 90);
        free(v.px);
    }
    v = copy_of(o);
    for (size_t i = 0; i < (size_t)v.w * v.h * 3; i++)
        v.px[i] = (uint8_t)(v.px[i] + 40 > 255 ? 255 : v.px[i] + 40);
    write_jpeg(dir, g, "bright", &v, 90);
    free(v.px);
    v = copy_of(o); /* 5 x 5 box blur */
    for (uint32_t y = 0; y < o->h; y++)
        for (uint32_t x = 0; x < o->w; x++)
            for (int c = 0; c < 3; c++) {
                int s = 0, k = 0;
                for (int dy = -2; dy <= 2; dy++)
                    for (int dx = -2; dx <= 2; dx++) {
                        int yy = (int)y + dy, xx = (int)x + dx;
                        if (yy < 0 || xx < 0 || yy >= (int)o->h || xx >= (int)o->w)
                            continue;
                        s += o->px[((size_t)yy * o->w + (size_t)xx) * 3 + (size_t)c];
                        k++;
                    }
                v.px[((size_t)y * o->w + x) * 3 + (size_t)c] = (uint8_t)(s / k);
            }
    write_jpeg(dir, g, "blur", &v, 90);
    free(v.px);
    v = copy_of(o); /* watermark: a white band with dark glyph-like blocks */
    {
        uint32_t y0 = o->h * 3 / 4, y1 = y0 + o->h / 10, gw = o->w / 40 + 1;
        for (uint32_t y = y0; y < y1 && y < o->h; y++)
            for (uint32_t x = o->w / 10; x < o->w * 9 / 10; x++) {
                uint8_t *p = v.px + ((size_t)y * o->w + x) * 3;
                int glyph = (x / gw) % 3 != 2 && ((x / gw) * 7 + (y - y0) / (gw + 1)) % 3 != 0;
                uint8_t val = glyph ? 30 : 240;
                p[0] = (uint8_t)((p[0] + 3 * val) / 4);
                p[1] = (uint8_t)((p[1] + 3 * val) / 4);
                p[2] = (uint8_t)((p[2] + 3 * val) / 4);
            }
    }
    write_jpeg(dir, g, "mark", &v, 90);
    free(v.px);
    v = copy_of(o);
    for (size_t i = 0; i < (size_t)v.w * v.h; i++) {
        uint8_t *p = v.px + i * 3;
        uint8_t l = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2]) / 1000);
        p[0] = p[1] = p[2] = l;
    }
    write_jpeg(dir, g, "grey", &v, 90);
    free(v.px);
}

static float cosine(const float *a, const float *b, uint32_t d)
{
    double s = 0;
    for (uint32_t i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return (float)s; /* unit vectors */
}

int main(int argc, char **argv)
{
    const char *work = NULL, *photos = NULL, *out = NULL;
    int max = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--work")) work = argv[i + 1];
        else if (!strcmp(argv[i], "--photos")) photos = argv[i + 1];
        else if (!strcmp(argv[i], "--max")) max = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else bench_die("usage", "bench_neardup --work DIR --photos DIR [--max N] [--out FILE]");
    }
    if (!work || !photos)
        bench_die("usage", "--work and --photos are required");
    char dir[4096], err[256];
    bench_path_join(dir, sizeof dir, work, "neardup");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        bench_die("mkdir", dir);

    /* originals */
    struct dirent **ents;
    int ne = scandir(photos, &ents, NULL, alphasort), groups = 0;
    for (int i = 0; i < ne; i++) {
        char p[4096];
        uint8_t *buf;
        size_t n;
        img im;
        bench_path_join(p, sizeof p, photos, ents[i]->d_name);
        if (groups < max && has_ext(ents[i]->d_name) &&
            img_read_file(p, &buf, &n, err, sizeof err) == 0) {
            if (img_decode(buf, n, 3, 1024, 1, &im, err, sizeof err) == 0) {
                img o = im;
                if (im.w > 1024) /* DCT scaling keeps at least 1024 wide */
                    o = resized(&im, 1024, (uint32_t)((uint64_t)im.h * 1024 / im.w));
                variants(dir, groups++, &o);
                if (o.px != im.px)
                    free(o.px);
                img_free(&im);
            }
            free(buf);
        }
        free(ents[i]);
    }
    free(ents);
    if (groups < 2)
        bench_die("not enough photographs under", photos);
    uint8_t *px = bench_alloc((size_t)640 * 480 * 3);
    for (int i = 0; i < DISTRACTORS; i++) {
        char name[64], p[4096];
        gen_pattern(640, 480, 3, (uint32_t)(7700 + i), px);
        snprintf(name, sizeof name, "distractor_%02d.png", i);
        bench_path_join(p, sizeof p, dir, name);
        if (gen_write_png(p, 640, 480, GEN_PNG_RGB, 8, px, NULL) != 0)
            bench_die("gen_write_png", p);
        add_file(p, -1);
    }
    size_t truth = 0;
    for (size_t a = 0; a < nfiles; a++)
        for (size_t b = a + 1; b < nfiles; b++)
            truth += files[a].group >= 0 && files[a].group == files[b].group;
    printf("## near-duplicates: %d photographs from %s, %d variants each, %d distractors: "
           "%zu images, %zu true pairs\n\n", groups, photos, VARIANTS, DISTRACTORS, nfiles, truth);

    static const char *const embs[2] = {"pixels", "cnn"};
    FILE *kv = out ? fopen(out, "w") : NULL;
    for (int e = 0; e < 2; e++) {
        char p[4096];
        pv_db *db;
        pv_embedder_opts eo = {.name = embs[e]};
        snprintf(p, sizeof p, "%s/nd-%s.pvdb", work, embs[e]);
        if (pv_db_create(p, &eo, NULL, &db, err, sizeof err) != PV_OK)
            bench_die("pv_db_create", err);
        pv_info in;
        pv_db_info(db, &in);
        float *v = bench_alloc(nfiles * in.dim * sizeof *v);
        for (size_t i = 0; i < nfiles; i++)
            if (pv_embed_file(db, files[i].path, v + i * in.dim, in.dim) != PV_OK)
                bench_die("pv_embed_file", pv_db_errmsg(db));
        printf("### %s\n\n| threshold | pairs flagged | precision | recall | F1 |\n|---|---|---|---|---|\n",
               embs[e]);
        double best_f1 = -1, best_t = 0, best_p = 0, best_r = 0;
        for (int ti = 0; ti <= 100; ti++) {
            double t = 0.5 + 0.005 * ti;
            size_t flagged = 0, right = 0;
            for (size_t a = 0; a < nfiles; a++)
                for (size_t b = a + 1; b < nfiles; b++)
                    if (cosine(v + a * in.dim, v + b * in.dim, in.dim) >= t) {
                        flagged++;
                        right += files[a].group >= 0 && files[a].group == files[b].group;
                    }
            double prec = flagged ? (double)right / flagged : 1, rec = (double)right / truth;
            double f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
            if (f1 > best_f1) {
                best_f1 = f1;
                best_t = t;
                best_p = prec;
                best_r = rec;
            }
            if (ti % 10 == 0)
                printf("| %.3f | %zu | %.4f | %.4f | %.4f |\n", t, flagged, prec, rec, f1);
        }
        printf("\nbest F1 %.4f at threshold %.3f (precision %.4f, recall %.4f)\n\n", best_f1, best_t,
               best_p, best_r);
        /* Each variant against its original, at that threshold: which
         * changes the embedder sees through. */
        static const char *const tags[VARIANTS] = {"q30", "small", "crop", "bright", "blur",
                                                    "mark", "grey"};
        printf("| variant vs original at %.3f | found | mean cosine |\n|---|---|---|\n", best_t);
        for (int k = 0; k < VARIANTS; k++) {
            int found = 0, total = 0;
            double sum = 0;
            for (size_t a = 0; a < nfiles; a++) {
                if (files[a].group < 0 || !strstr(files[a].path, "_orig."))
                    continue;
                for (size_t b = 0; b < nfiles; b++) {
                    char want[32];
                    snprintf(want, sizeof want, "_%s.", tags[k]);
                    if (files[b].group != files[a].group || !strstr(files[b].path, want))
                        continue;
                    float c = cosine(v + a * in.dim, v + b * in.dim, in.dim);
                    found += c >= best_t;
                    sum += c;
                    total++;
                }
            }
            printf("| %s | %d / %d | %.4f |\n", tags[k], found, total, total ? sum / total : 0);
        }
        printf("\n");
        if (kv)
            fprintf(kv, "%s_threshold=%.3f\n%s_f1=%.4f\n%s_precision=%.4f\n%s_recall=%.4f\n",
                    embs[e], best_t, embs[e], best_f1, embs[e], best_p, embs[e], best_r);
        free(v);
        pv_db_close(db);
    }
    if (kv)
        fclose(kv);
    free(files);
    return 0;
}
