/*
 * test_cli_msgs.c - the command line's options and messages (issue 16,
 * items 4 and 6): an option that would be ignored, or two that conflict, is
 * a usage error naming them; out-of-range values name the range; fewer hits
 * than asked are explained; counts are singular or plural as they should be;
 * no message says its command or its reason twice. Runs the pixvec binary on
 * a few dozen tiny generated images with the pixels embedder.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_run.h"
#include "gen.h"

static cli_fix F; /* the folder (F.dir, F.imgs, F.db) and the last run's F.out, F.err */

static void setup(void)
{
    cli_fix_setup(&F);
}

static void teardown(void)
{
    cli_fix_teardown(&F);
}

TestSuite(cli_msgs, .init = setup, .fini = teardown, .timeout = 120);

/* Run pixvec with the arguments: the exit status, output in F.out, F.err. */
#define run(...) cli_fix_run(&F, NULL, __VA_ARGS__, (char *)NULL)
#define out_json() cli_fix_json(&F)

/* A usage error (exit 2) whose stderr holds want. */
#define usage_says(want, ...)                                                              \
    do {                                                                                   \
        int rc_ = run(__VA_ARGS__);                                                        \
        cr_assert_eq(rc_, 2, "exit %d, want 2; stderr: %s", rc_, F.err);                \
        cr_assert(strstr(F.err, want), "want '%s' in: %s", want, F.err);             \
    } while (0)

/* A database of n tiny pictures in imgs (PNG), plus one byte copy. */
static void make_db(int n, int with_copy)
{
    char src[GEN_PATH_MAX], dst[GEN_PATH_MAX];
    cr_assert_eq(gen_picture_set(F.imgs, "p", n, 24, 20, "png", 500), 0);
    if (with_copy) {
        char *bytes;
        FILE *f;
        long len;
        gen_path(src, F.imgs, "p0000.png");
        gen_path(dst, F.imgs, "copy.png");
        f = fopen(src, "rb");
        cr_assert_not_null(f);
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        rewind(f);
        bytes = malloc((size_t)len);
        cr_assert_eq(fread(bytes, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        cr_assert_eq(gen_write_bytes(dst, bytes, (size_t)len), 0);
        free(bytes);
    }
    cr_assert_eq(run("init", F.db, "--size", "8"), 0, "%s", F.err);
    cr_assert_eq(run("add", F.db, F.imgs, "--quiet"), 0, "%s", F.err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Item 4: out-of-range values and conflicting or idle options. */
Test(cli_msgs, options_refused)
{
    char q[GEN_PATH_MAX], empty[GEN_PATH_MAX], model[GEN_PATH_MAX];
    make_db(12, 0);
    gen_path(q, F.imgs, "p0003.png");
    gen_path(empty, F.dir, "empty");
    cr_assert_eq(mkdir(empty, 0755), 0);
    gen_path(model, F.dir, "model.safetensors");
    cr_assert_eq(gen_write_bytes(model, "x", 1), 0);

    usage_says("--threshold takes a similarity in (0, 1]", "dups", F.db, "-t", "0");
    usage_says("--threshold takes a similarity in (0, 1]", "dups", F.db, "-t", "-0.5");
    cr_assert_eq(run("dups", F.db, "-t", "0.999"), 0, "a real threshold: %s", F.err);
    usage_says("pixvec: dups: --exact and --approx conflict: give one", "dups", F.db, "--exact",
               "--approx");
    usage_says("--neighbours applies to the graph scan only, not --exact", "dups", F.db,
               "--exact", "--neighbours", "4");
    usage_says("--ef applies to the graph scan only", "dups", F.db, "--exact", "--ef", "9");
    cr_assert_eq(run("dups", F.db, "--prefer", empty), 1, "no image under --prefer");
    cr_assert(strstr(F.err, "--prefer: no stored image lies under"), "%s", F.err);

    usage_says("pixvec: query: --exact and --index hnsw conflict: give one", "query", F.db, q,
               "--exact", "--index", "hnsw");
    usage_says("--index ivf and --index exact conflict", "query", F.db, q, "--index", "ivf",
               "--index", "exact");
    usage_says("pixvec: search: --index hnsw and --exact conflict", "search", F.db, "a cat",
               "--index", "hnsw", "--exact");
    usage_says("--nprobe applies to --index ivf only", "query", F.db, q, "-p", "4");
    usage_says("--ef applies to the HNSW search only (not --exact)", "query", F.db, q, "--exact",
               "-e", "50");
    /* --rgb is the embedder's (a grey database refuses it), not --no-rerank,
     * which once shared its option letter */
    cr_assert_eq(run("query", F.db, q, "--rgb"), 1, "%s", F.out);
    cr_assert(strstr(F.err, "cannot take vectors of another embedder"), "%s", F.err);

    char db2[GEN_PATH_MAX];
    gen_path(db2, F.dir, "other.pvdb");
    usage_says("--model applies to the embedders that read a model", "init", db2, "--model",
               model);
    usage_says("--pool applies to --embedder vitmae only", "init", db2, "--pool", "sum");
    usage_says("--no-mirror applies to --embedder photo only", "init", db2, "--no-mirror");
    usage_says("--size and --rgb apply to --embedder pixels only", "init", db2, "--embedder",
               "photo", "--size", "8");
    cr_assert(access(db2, F_OK) != 0, "a refused init creates nothing");

    usage_says("--perplexity applies to --method tsne only", "map", F.db, "--perplexity", "5");
    usage_says("--iters applies to --method tsne only", "map", F.db, "--iters", "400");
    usage_says("--n-neighbors applies to --method umap only", "map", F.db, "--method", "tsne",
               "--n-neighbors", "5");
    usage_says("--epochs applies to --method umap only", "map", F.db, "--method", "tsne",
               "--epochs", "5");
    usage_says("apply to training, with -k", "cluster", F.db, "--seed", "3");
    cr_assert_eq(run("cluster", F.db, "-k", "2"), 0, "%s", F.err);
    usage_says("--show lists every cluster's images; it does not go with --of", "cluster", F.db,
               "--of", q, "--show", "2");
    usage_says("--dark applies to the grey statistics, which --no-pixels skips", "quality", F.db,
               "--no-pixels", "--dark", "0.1");
    usage_says("--dark 0.95 must be below --bright 0.92", "quality", F.db, "--dark", "0.95");
}

/* Item 4: fewer hits than asked, said in text and JSON; k <= images gives k. */
Test(cli_msgs, fewer_hits_explained)
{
    char q[GEN_PATH_MAX];
    json_t *j;
    make_db(200, 0);
    gen_path(q, F.imgs, "p0007.png");

    cr_assert_eq(run("query", F.db, q, "-k", "500"), 0, "%s", F.err);
    cr_assert_eq(count_lines(F.out), 201, "200 hits and one line why: %s", F.out);
    cr_assert(strstr(F.out, "(200 of the 500 asked: the database holds only 200 images)"),
              "%s", F.out);
    cr_assert_eq(run("query", F.db, q, "-k", "500", "--json"), 0, "%s", F.err);
    j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "asked")), 500);
    cr_assert_eq(json_integer_value(json_object_get(j, "returned")), 200);
    cr_assert(strstr(json_string_value(json_object_get(j, "short_reason")), "holds only 200"));
    cr_assert_eq(json_array_size(json_object_get(j, "hits")), 200);
    json_decref(j);

    /* k = the number of images: every one, from the graph and the scan. */
    const char *modes[] = {"hnsw", "exact"};
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(run("query", F.db, q, "-k", "200", "--index", modes[m], "--json"), 0, "%s",
                     F.err);
        j = out_json();
        cr_assert_eq(json_array_size(json_object_get(j, "hits")), 200, "%s", modes[m]);
        cr_assert(json_is_null(json_object_get(j, "short_reason")), "%s", modes[m]);
        json_decref(j);
        cr_assert_eq(run("query", F.db, q, "-k", "199", "--index", modes[m]), 0);
        cr_assert_eq(count_lines(F.out), 199, "%s: exactly k, no note: %s", modes[m],
                     F.out);
    }

    /* IVF: one list of 20 probed holds fewer than 150. */
    cr_assert_eq(run("ivf", "train", F.db, "--nlist", "20"), 0, "%s", F.err);
    cr_assert_eq(run("query", F.db, q, "-k", "150", "--index", "ivf", "-p", "1"), 0, "%s",
                 F.err);
    cr_assert(strstr(F.out, "of the 150 asked: only the images in the 1 of 20 IVF lists "
                               "probed; raise --nprobe"), "%s", F.out);
    cr_assert_eq(run("query", F.db, q, "-k", "150", "--index", "ivf", "-p", "1", "--json"), 0);
    j = out_json();
    cr_assert_lt(json_integer_value(json_object_get(j, "returned")), 150);
    cr_assert(strstr(json_string_value(json_object_get(j, "short_reason")), "raise --nprobe"));
    json_decref(j);
}

/* Item 6: messages. */
Test(cli_msgs, messages)
{
    char bad[GEN_PATH_MAX], other[GEN_PATH_MAX], moved[GEN_PATH_MAX], undo[GEN_PATH_MAX];
    char sub[GEN_PATH_MAX], one[GEN_PATH_MAX];
    make_db(10, 1);

    /* No doubled command name. */
    usage_says("pixvec: dups: --threshold and --fraction conflict: give one", "dups", F.db, "-t",
               "0.5", "--fraction", "0.1");
    cr_assert(!strstr(F.err, "dups: dups"), "%s", F.err);
    usage_says("pixvec: dups: --undo-list applies to --move-to only", "dups", F.db,
               "--undo-list", "x.tsv");
    cr_assert(!strstr(F.err, "dups: dups"), "%s", F.err);

    /* The reason once. */
    gen_path(bad, F.imgs, "notimage.png");
    cr_assert_eq(gen_write_bytes(bad, "notanimage at all", 17), 0);
    cr_assert_eq(run("add", F.db, bad), 1);
    cr_assert(strstr(F.err, "not an image format pixvec reads (it starts with 'nota')"), "%s",
              F.err);
    cr_assert(!strstr(F.err, "image: not a JPEG"), "%s", F.err);
    cr_assert(strstr(F.out, "(1 file,"), "%s", F.out);
    unlink(bad);

    /* --nlist in the ivf message, images not items. */
    cr_assert_eq(run("ivf", "train", F.db, "--nlist", "1000"), 1);
    cr_assert(strstr(F.err, "--nlist 1000 is more than the 11 images; use at most 11"), "%s",
              F.err);
    cr_assert(!strstr(F.err, "k = 1000"), "%s", F.err);

    /* Every option of dups, query and add in its usage line. */
    cr_assert_eq(run("dups", "--help"), 0);
    cr_assert(strstr(F.out, "--neighbours K") && strstr(F.out, "--ef EF]"), "%s",
              F.out);
    cr_assert_eq(run("dups", F.db, "--bogus"), 2);
    cr_assert(strstr(F.err, "--neighbours K") && strstr(F.err, "--ef EF"), "%s", F.err);
    cr_assert_eq(run("query", "--help"), 0);
    cr_assert(strstr(F.out, "| --exact]") && strstr(F.out, "[--no-mirror]"), "%s",
              F.out);
    cr_assert_eq(run("add", "--help"), 0);
    cr_assert(strstr(F.out, "[--embedder E]"), "%s", F.out);

    /* Singular counts, move and undo twice. */
    gen_path(moved, F.dir, "moved");
    gen_path(undo, F.dir, "undo.tsv");
    cr_assert_eq(run("dups", F.db, "-t", "0.9999", "--exact", "--move-to", moved, "--undo-list",
                     undo),
                 0, "%s", F.err);
    cr_assert(strstr(F.out, "1 group, 2 images, 1 to drop"), "%s", F.out);
    cr_assert(strstr(F.out, "moved 1 file from"), "%s", F.out);
    cr_assert(!strstr(F.out, "1 files") && !strstr(F.out, "1 groups"), "%s", F.out);
    cr_assert_eq(run("undo-move", F.db, undo), 0, "%s", F.err);
    cr_assert(strstr(F.out, "restored 1 file (0 failed); 1 added back"), "%s", F.out);
    cr_assert_eq(run("undo-move", F.db, undo), 0, "%s", F.err);
    cr_assert(strstr(F.out, "nothing to restore: the 1 file is already back"), "%s",
              F.out);
    cr_assert(!strstr(F.out, "restored 1"), "%s", F.out);
    cr_assert_eq(run("undo-move", F.db, undo, "--json"), 0);
    json_t *j = out_json();
    cr_assert_eq(json_integer_value(json_object_get(j, "restored")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "already_back")), 1);
    json_decref(j);

    /* rm of a folder: the hint. */
    cr_assert_eq(run("rm", F.db, F.imgs), 1);
    cr_assert(strstr(F.err, "is a folder: rm takes stored image paths"), "%s", F.err);

    /* add of a folder with no image in it: the hint. */
    gen_path(other, F.dir, "docs");
    cr_assert_eq(mkdir(other, 0755), 0);
    gen_path(sub, other, "readme.txt");
    cr_assert_eq(gen_write_bytes(sub, "hello", 5), 0);
    cr_assert_eq(run("add", F.db, other), 0, "%s", F.err);
    cr_assert(strstr(F.out, "(0 files,"), "%s", F.out);
    cr_assert(strstr(F.out, "no image files found under") &&
              strstr(F.out, ".jpg .jpeg .jpe .png"), "%s", F.out);

    /* dups --histogram --json: the histogram in the document. */
    cr_assert_eq(run("dups", F.db, "--histogram", "--json"), 0, "%s", F.err);
    j = out_json();
    json_t *h = json_object_get(j, "histogram");
    cr_assert(json_is_object(h), "%s", F.out);
    cr_assert(json_is_real(json_object_get(h, "threshold")));
    cr_assert_eq(json_array_size(json_object_get(h, "bins")), 20);
    json_int_t total = json_integer_value(json_object_get(h, "no_neighbour"));
    for (size_t b = 0; b < 20; b++)
        total += json_integer_value(
            json_object_get(json_array_get(json_object_get(h, "bins"), b), "count"));
    cr_assert_eq(total, json_integer_value(json_object_get(j, "scanned")), "every image binned");
    json_decref(j);

    /* query in text: paths under the current folder relative to it. */
    char cwd[GEN_PATH_MAX];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(F.dir), 0);
    gen_path(one, "imgs", "p0002.png");
    int rc = run("query", "t.pvdb", one, "-k", "2");
    cr_assert_eq(chdir(cwd), 0);
    cr_assert_eq(rc, 0, "%s", F.err);
    cr_assert(strstr(F.out, "  imgs/p0002.png\n"), "%s", F.out);
    cr_assert(!strstr(F.out, F.dir), "%s", F.out);
}
