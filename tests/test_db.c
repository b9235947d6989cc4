/*
 * test_db.c - the engine through the public API (pixvec.h): add, query,
 * incremental re-add, moves, changes, removal, every bad input of issue 2,
 * flat images, embedder checks, duplicate groups and the keep rule.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"
#include "img.h"
#include "pixvec.h"

static char dir[GEN_PATH_MAX], imgs[GEN_PATH_MAX], dbdir[GEN_PATH_MAX];
static pv_db *db;

typedef struct errlog {
    int n;
    char paths[32][GEN_PATH_MAX];
    int codes[32];
    char reasons[32][256];
} errlog;

static void on_error(void *ctx, const char *path, int err, const char *reason)
{
    errlog *l = ctx;
    if (l->n < 32) {
        snprintf(l->paths[l->n], GEN_PATH_MAX, "%s", path);
        snprintf(l->reasons[l->n], 256, "%s", reason);
        l->codes[l->n] = err;
    }
    l->n++;
}

static void setup(void)
{
    char err[512];
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(imgs, dir, "imgs");
    gen_path(dbdir, dir, "t.pvdb");
    cr_assert_eq(mkdir(imgs, 0755), 0);
    cr_assert_eq(pv_db_create(dbdir, NULL, NULL, &db, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    pv_db_close(db);
    db = NULL;
    gen_rmtree(dir);
}

TestSuite(db, .init = setup, .fini = teardown);

/* Write a seeded test picture; kind 'j' JPEG, 'p' PNG. Returns the path. */
static const char *picture(const char *name, uint32_t seed, uint32_t w,
                           uint32_t h, char kind)
{
    static char p[GEN_PATH_MAX];
    uint8_t *px = malloc((size_t)w * h * 3);
    gen_pattern(w, h, 3, seed, px);
    gen_path(p, imgs, name);
    if (kind == 'j')
        cr_assert_eq(gen_write_jpeg(p, w, h, 3, px, 92, 0), 0);
    else
        cr_assert_eq(gen_write_png(p, w, h, GEN_PNG_RGB, 8, px, NULL), 0);
    free(px);
    return p;
}

static pv_add_stats add_dir(errlog *log)
{
    const char *paths[1] = {imgs};
    pv_add_opts o = {0};
    pv_add_stats st;
    o.on_error = on_error;
    o.ctx = log;
    cr_assert_eq(pv_add(db, paths, 1, &o, &st), 0, "%s", pv_db_errmsg(db));
    return st;
}

static void make_set(int n)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%02d.%s", i, i % 2 ? "jpg" : "png");
        picture(name, (uint32_t)(100 + i), 64 + 8 * (uint32_t)i, 48, i % 2 ? 'j' : 'p');
    }
}

Test(db, add_then_query_finds_itself_first)
{
    errlog log = {0};
    pv_add_stats st;
    pv_hit *hits = NULL;
    size_t n = 0;
    char p[GEN_PATH_MAX];
    pv_info info;
    make_set(12);
    st = add_dir(&log);
    cr_assert_eq(st.added, 12);
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(pv_db_info(db, &info), 0);
    cr_assert_eq(info.items, 12);
    cr_assert_eq(info.dim, 784);
    for (int i = 0; i < 12; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%02d.%s", i, i % 2 ? "jpg" : "png");
        gen_path(p, imgs, name);
        cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 5}, &hits, &n), 0, "%s", pv_db_errmsg(db));
        cr_assert_eq(n, 5);
        cr_assert(strstr(hits[0].path, name) != NULL, "query %s got %s first", name, hits[0].path);
        cr_assert_geq(hits[0].score, 0.999f);
        for (size_t j = 1; j < n; j++)
            cr_assert_geq(hits[j - 1].score, hits[j].score, "sorted best first");
        pv_hits_free(hits, n);
    }
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
}

Test(db, second_add_adds_nothing)
{
    errlog log = {0};
    pv_add_stats st;
    make_set(6);
    st = add_dir(&log);
    cr_assert_eq(st.added, 6);
    st = add_dir(&log);
    cr_assert_eq(st.added, 0);
    cr_assert_eq(st.unchanged, 6);
    /* a new file among the old ones: only it is embedded */
    picture("new.png", 999, 40, 40, 'p');
    st = add_dir(&log);
    cr_assert_eq(st.added, 1);
    cr_assert_eq(st.unchanged, 6);
}

Test(db, same_path_named_twice_is_added_once)
{
    const char *paths[3];
    pv_add_stats st;
    char p[GEN_PATH_MAX];
    make_set(3);
    gen_path(p, imgs, "img01.jpg");
    paths[0] = imgs;
    paths[1] = imgs;
    paths[2] = p;
    cr_assert_eq(pv_add(db, paths, 3, NULL, &st), 0);
    cr_assert_eq(st.added, 3);
    cr_assert_eq(st.seen, 3);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_add(db, paths, 3, NULL, &st), 0);
    cr_assert_eq(st.unchanged, 3);
}

Test(db, moved_file_keeps_its_vector)
{
    errlog log = {0};
    pv_add_stats st;
    pv_hit *hits = NULL;
    size_t n = 0;
    char from[GEN_PATH_MAX], to[GEN_PATH_MAX], sub[GEN_PATH_MAX];
    pv_info info;
    make_set(4);
    add_dir(&log);
    gen_path(from, imgs, "img01.jpg");
    gen_path(sub, imgs, "moved");
    cr_assert_eq(mkdir(sub, 0755), 0);
    gen_path(to, sub, "renamed.jpg");
    cr_assert_eq(rename(from, to), 0);
    st = add_dir(&log);
    cr_assert_eq(st.moved, 1);
    cr_assert_eq(st.added, 0);
    cr_assert_eq(pv_db_info(db, &info), 0);
    cr_assert_eq(info.items, 4);
    cr_assert_eq(info.next_id, 4, "no new id for a move");
    cr_assert_eq(pv_query_image(db, to, &(pv_query_opts){.k = 1}, &hits, &n), 0);
    cr_assert_str_eq(hits[0].path, to);
    pv_hits_free(hits, n);
    cr_assert_eq(pv_remove(db, from), PV_ENOTFOUND, "old path is gone");
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
}

Test(db, changed_file_is_reembedded)
{
    errlog log = {0};
    pv_add_stats st;
    pv_hit *hits = NULL;
    size_t n = 0;
    const char *p;
    pv_info info;
    make_set(3);
    add_dir(&log);
    p = picture("img00.png", 4242, 64, 48, 'p'); /* new content, same name */
    {
        struct timespec ts[2] = {{0, UTIME_NOW}, {1000, 0}};
        cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0); /* mtime surely differs */
    }
    st = add_dir(&log);
    cr_assert_eq(st.updated, 1);
    cr_assert_eq(pv_db_info(db, &info), 0);
    cr_assert_eq(info.items, 3);
    cr_assert_eq(info.deleted, 1);
    cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 3}, &hits, &n), 0);
    cr_assert_eq(n, 3, "the old version is never returned");
    cr_assert_geq(hits[0].score, 0.999f);
    cr_assert_eq(hits[0].id, 3, "new id for new content");
    pv_hits_free(hits, n);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
}

Test(db, removed_item_never_returned)
{
    errlog log = {0};
    pv_hit *hits = NULL;
    size_t n = 0;
    char p[GEN_PATH_MAX];
    make_set(5);
    add_dir(&log);
    gen_path(p, imgs, "img02.png");
    cr_assert_eq(pv_remove(db, p), 0);
    cr_assert_eq(pv_remove(db, p), PV_ENOTFOUND);
    cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 10}, &hits, &n), 0);
    cr_assert_eq(n, 4);
    for (size_t i = 0; i < n; i++)
        cr_assert(strstr(hits[i].path, "img02.png") == NULL);
    pv_hits_free(hits, n);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
}

/* pv_remove_many: one transaction; paths not stored (or named twice) are
 * skipped and not counted; the invariants hold after. */
Test(db, remove_many_in_one_transaction)
{
    errlog log = {0};
    char a[GEN_PATH_MAX], b[GEN_PATH_MAX], c[GEN_PATH_MAX], none[GEN_PATH_MAX];
    pv_info info;
    size_t removed = 99;
    make_set(6);
    add_dir(&log);
    gen_path(a, imgs, "img00.png");
    gen_path(b, imgs, "img02.png");
    gen_path(c, imgs, "img03.jpg");
    gen_path(none, imgs, "not_stored.png");
    const char *paths[] = {a, none, b, a, c};
    cr_assert_eq(pv_remove_many(db, paths, 5, &removed), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(removed, 3);
    cr_assert_eq(pv_db_info(db, &info), 0);
    cr_assert_eq(info.items, 3);
    cr_assert_eq(info.deleted, 3);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_remove_many(db, paths, 5, &removed), 0);
    cr_assert_eq(removed, 0, "nothing left to remove");
    cr_assert_eq(pv_remove_many(db, NULL, 0, &removed), 0);
}

/* Vacuum where a chunk of the graph (1,024 nodes) ends in removed ids and
 * live ids follow in the next: the rebuilt graph left no node records for
 * those ids, so marking them removed failed ("vacuum: malformed database
 * record"), and vacuum could not run at all. */
Test(db, vacuum_with_a_chunk_ending_in_removed_ids, .timeout = 120)
{
    const char *paths[1] = {imgs};
    pv_add_stats st;
    pv_info info;
    char p[GEN_PATH_MAX];
    uint8_t px[8 * 8 * 3];
    char **rm = malloc(524 * sizeof *rm);
    size_t removed = 0;
    for (int i = 0; i < 1100; i++) {
        char name[32];
        snprintf(name, sizeof name, "v%04d.png", i);
        gen_pattern(8, 8, 3, (uint32_t)(5000 + i), px);
        gen_path(p, imgs, name);
        cr_assert_eq(gen_write_png(p, 8, 8, GEN_PNG_RGB, 8, px, NULL), 0);
        if (i >= 500 && i < 1024) {
            rm[i - 500] = malloc(GEN_PATH_MAX);
            gen_path(rm[i - 500], imgs, name);
        }
    }
    cr_assert_eq(pv_add(db, paths, 1, NULL, &st), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(st.added, 1100);
    cr_assert_eq(pv_remove_many(db, (const char *const *)rm, 524, &removed), 0, "%s",
                 pv_db_errmsg(db));
    cr_assert_eq(removed, 524);
    cr_assert_eq(pv_vacuum(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_verify(db), 0, "after vacuum: %s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_info(db, &info), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(info.items, 576);
    cr_assert_eq(info.graph_nodes, 1100);
    for (int i = 0; i < 524; i++)
        free(rm[i]);
    free(rm);
}

Test(db, vacuum_rebuilds_graph_without_removed)
{
    errlog log = {0};
    pv_hit *hits = NULL;
    size_t n = 0;
    char p[GEN_PATH_MAX];
    pv_info info;
    make_set(20);
    add_dir(&log);
    for (int i = 0; i < 20; i += 2) {
        char name[32];
        snprintf(name, sizeof name, "img%02d.%s", i, i % 2 ? "jpg" : "png");
        gen_path(p, imgs, name);
        cr_assert_eq(pv_remove(db, p), 0);
    }
    cr_assert_eq(pv_db_verify(db), 0, "before vacuum: %s", pv_db_errmsg(db));
    cr_assert_eq(pv_vacuum(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_verify(db), 0, "after vacuum: %s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_info(db, &info), 0);
    cr_assert_eq(info.items, 10);
    cr_assert_eq(info.graph_nodes, 20, "ids up to the last live one");
    gen_path(p, imgs, "img00.png");
    cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 20}, &hits, &n), 0);
    cr_assert_eq(n, 10, "every live item and no removed one");
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(hits[i].id % 2, 1, "removed id %u returned", hits[i].id);
    pv_hits_free(hits, n);
    /* adding after a vacuum goes on from the rebuilt graph */
    picture("after.png", 4321, 50, 50, 'p');
    add_dir(&log);
    gen_path(p, imgs, "after.png");
    cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 1}, &hits, &n), 0);
    cr_assert(strstr(hits[0].path, "after.png"));
    pv_hits_free(hits, n);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
}

/* Found by the kill -9 loop (test_crash.c), and not a crash bug: remove
 * the newest images, vacuum (the graph then ends at the last live id), add
 * again. The ids between were left as records-less "live" nodes: verify
 * said "item N removed but live in the graph". They are tombstones now. */
Test(db, add_after_vacuum_that_dropped_the_newest_ids)
{
    errlog log = {0};
    char p[GEN_PATH_MAX];
    pv_info info;
    make_set(12);
    add_dir(&log);
    for (int i = 9; i < 12; i++) { /* the three newest ids */
        char name[32];
        snprintf(name, sizeof name, "img%02d.%s", i, i % 2 ? "jpg" : "png");
        gen_path(p, imgs, name);
        cr_assert_eq(pv_remove(db, p), 0);
        cr_assert_eq(unlink(p), 0);
    }
    cr_assert_eq(pv_vacuum(db), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_info(db, &info), 0);
    cr_assert_lt(info.graph_nodes, info.next_id, "vacuum kept the removed tail in the graph");
    picture("late.png", 999, 40, 40, 'p');
    add_dir(&log);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
    pv_hit *hits = NULL;
    size_t n = 0;
    gen_path(p, imgs, "late.png");
    cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 20}, &hits, &n), 0);
    cr_assert_eq(n, 10);
    cr_assert(strstr(hits[0].path, "late.png"), "%s", hits[0].path);
    pv_hits_free(hits, n);
}

Test(db, hnsw_and_exact_agree_on_small_sets)
{
    errlog log = {0};
    char p[GEN_PATH_MAX];
    make_set(30);
    add_dir(&log);
    for (int i = 0; i < 30; i += 3) {
        char name[32];
        pv_hit *a = NULL, *b = NULL, *c = NULL;
        size_t na = 0, nb = 0, nc = 0;
        snprintf(name, sizeof name, "img%02d.%s", i, i % 2 ? "jpg" : "png");
        gen_path(p, imgs, name);
        cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 5, .exact = 1}, &a, &na), 0);
        cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 5}, &b, &nb), 0);
        cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 5, .ids_only = 1}, &c, &nc), 0);
        cr_assert_eq(na, nb);
        cr_assert_eq(nb, nc);
        for (size_t j = 0; j < na; j++) {
            cr_assert_eq(a[j].id, b[j].id, "query %d rank %zu", i, j);
            cr_assert_float_eq(a[j].score, b[j].score, 1e-5);
            cr_assert(b[j].path != NULL);
            cr_assert_eq(c[j].id, b[j].id);
            cr_assert(c[j].path == NULL, "ids_only hit has no path");
        }
        pv_hits_free(a, na);
        pv_hits_free(b, nb);
        pv_hits_free(c, nc);
    }
}

/* Every bad input of issue 2 in one batch with good files: each is reported
 * with its path, skipped and counted; the good ones are committed. */
Test(db, bad_files_reported_good_ones_kept)
{
    errlog log = {0};
    pv_add_stats st;
    char p[GEN_PATH_MAX];
    const char *bad[] = {"trunc.jpg", "corrupt.png", "empty.png", "text.jpg",
                         "huge.jpg", "huge.png"};
    const char *paths[2];
    pv_add_opts o = {0};
    pv_info info;
    make_set(4);
    picture("trunc.jpg", 1, 200, 150, 'j');
    gen_path(p, imgs, "trunc.jpg");
    cr_assert_eq(gen_truncate(p, 700), 0);
    picture("corrupt.png", 2, 100, 100, 'p');
    gen_path(p, imgs, "corrupt.png");
    cr_assert_eq(gen_png_corrupt_idat(p, 0), 0);
    gen_path(p, imgs, "empty.png");
    cr_assert_eq(gen_write_bytes(p, "", 0), 0);
    gen_path(p, imgs, "text.jpg");
    cr_assert_eq(gen_write_bytes(p, "hello, I am text\n", 17), 0);
    picture("huge.jpg", 3, 64, 64, 'j');
    gen_path(p, imgs, "huge.jpg");
    cr_assert_eq(gen_jpeg_set_size(p, 60000, 60000), 0);
    picture("huge.png", 4, 64, 64, 'p');
    gen_path(p, imgs, "huge.png");
    cr_assert_eq(gen_png_set_size(p, 60000, 60000), 0);

    paths[0] = imgs;
    gen_path(p, dir, "does-not-exist.png");
    paths[1] = p;
    o.on_error = on_error;
    o.ctx = &log;
    cr_assert_eq(pv_add(db, paths, 2, &o, &st), 0);
    cr_assert_eq(st.added, 4);
    cr_assert_eq(st.failed, 7);
    cr_assert_eq(log.n, 7);
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        int found = 0;
        for (int i = 0; i < log.n && i < 32; i++)
            if (strstr(log.paths[i], bad[b])) {
                found = 1;
                cr_assert(log.reasons[i][0], "a reason for %s", bad[b]);
                if (strcmp(bad[b], "empty.png") == 0)
                    cr_assert_eq(log.codes[i], PV_EEMPTY);
                if (strcmp(bad[b], "text.jpg") == 0)
                    cr_assert_eq(log.codes[i], PV_EFORMAT);
                if (strncmp(bad[b], "huge", 4) == 0)
                    cr_assert_eq(log.codes[i], PV_ETOOBIG, "%s: %s", bad[b], log.reasons[i]);
                if (strcmp(bad[b], "trunc.jpg") == 0 || strcmp(bad[b], "corrupt.png") == 0)
                    cr_assert_eq(log.codes[i], PV_EDECODE, "%s: %s", bad[b], log.reasons[i]);
            }
        cr_assert(found, "%s was not reported", bad[b]);
    }
    cr_assert_eq(pv_db_info(db, &info), 0);
    cr_assert_eq(info.items, 4);
    cr_assert_eq(pv_db_verify(db), 0, "%s", pv_db_errmsg(db));
}

Test(db, unreadable_file_reported, .disabled = 0)
{
    errlog log = {0};
    pv_add_stats st;
    const char *p;
    make_set(2);
    p = picture("locked.png", 5, 32, 32, 'p');
    cr_assert_eq(chmod(p, 0), 0);
    if (geteuid() == 0) {
        /* root reads anyway: make it unreadable another way (a folder with
         * an image name is still not a readable image file) */
        char d2[GEN_PATH_MAX];
        chmod(p, 0644);
        unlink(p);
        gen_path(d2, imgs, "locked.png");
        cr_assert_eq(mkfifo(d2, 0644), 0);
    }
    st = add_dir(&log);
    cr_assert_eq(st.added, 2);
    if (geteuid() != 0) {
        cr_assert_eq(st.failed, 1);
        cr_assert(strstr(log.paths[0], "locked.png") != NULL);
        cr_assert_eq(log.codes[0], PV_EIO);
    }
}

Test(db, flat_image_stored_and_searched_without_nan)
{
    errlog log = {0};
    pv_add_stats st;
    pv_hit *hits = NULL;
    size_t n = 0;
    char p[GEN_PATH_MAX];
    uint8_t px[32 * 32];
    make_set(3);
    memset(px, 128, sizeof px);
    gen_path(p, imgs, "grey.png");
    cr_assert_eq(gen_write_png(p, 32, 32, GEN_PNG_GREY, 8, px, NULL), 0);
    st = add_dir(&log);
    cr_assert_eq(st.added, 4);
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 4}, &hits, &n), 0);
    cr_assert_eq(n, 4);
    /* itself first (a uniform image has a shade vector), the pictures
     * near 0 */
    cr_assert_float_eq(hits[0].score, 1.0f, 1e-4);
    for (size_t i = 0; i < n; i++) {
        cr_assert(isfinite(hits[i].score), "score %zu is %f", i, hits[i].score);
        if (i > 0)
            cr_assert_lt(fabsf(hits[i].score), 0.1f, "score %zu is %f", i, hits[i].score);
    }
    pv_hits_free(hits, n);
    /* and a normal query sees the flat item at score 0, not NaN */
    gen_path(p, imgs, "img00.png");
    cr_assert_eq(pv_query_image(db, p, &(pv_query_opts){.k = 4}, &hits, &n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert(isfinite(hits[i].score));
    pv_hits_free(hits, n);
}

Test(db, other_embedder_refused)
{
    pv_embedder_opts other = {.name = "pixels", .size = 32};
    pv_embedder_opts same = {.name = "pixels", .size = 28};
    pv_embedder_opts cnn = {.name = "cnn"};
    float v[100] = {1};
    pv_hit *hits = NULL;
    size_t n = 0;
    cr_assert_eq(pv_db_check_embedder(db, &same), 0);
    cr_assert_eq(pv_db_check_embedder(db, &other), PV_EEMBEDDER);
    cr_assert(strstr(pv_db_errmsg(db), "pixels 28x28") != NULL, "%s", pv_db_errmsg(db));
    cr_assert_eq(pv_db_check_embedder(db, &cnn), PV_EEMBEDDER);
    cr_assert_eq(pv_query_vector(db, v, 100, &(pv_query_opts){.k = 3}, &hits, &n), PV_EEMBEDDER);
}

Test(db, nan_query_vector_refused)
{
    float v[784] = {0};
    pv_hit *hits = NULL;
    size_t n = 0;
    v[3] = NAN;
    cr_assert_eq(pv_query_vector(db, v, 784, &(pv_query_opts){.k = 3}, &hits, &n), PV_ENUMERIC);
}

Test(db, unknown_embedder_at_create)
{
    pv_db *d2 = NULL;
    char p[GEN_PATH_MAX], err[512] = "";
    pv_embedder_opts bad = {.name = "nonesuch"};
    gen_path(p, dir, "x.pvdb");
    cr_assert_eq(pv_db_create(p, &bad, NULL, &d2, err, sizeof err), PV_EINVAL);
    cr_assert(strstr(err, "nonesuch") != NULL, "%s", err);
}

Test(db, readonly_handle_refuses_writes)
{
    pv_db *ro = NULL;
    const char *paths[1] = {imgs};
    pv_add_stats st;
    char err[512];
    make_set(1);
    cr_assert_eq(pv_db_open(dbdir, PV_OPEN_RDONLY, &ro, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pv_add(ro, paths, 1, NULL, &st), PV_ERDONLY);
    pv_db_close(ro);
}

Test(db, dups_groups_exact_and_near_and_keeps_largest)
{
    errlog log = {0};
    pv_dups *d = NULL;
    char big[GEN_PATH_MAX], small[GEN_PATH_MAX], copy[GEN_PATH_MAX];
    uint8_t *px = malloc(128 * 96 * 3), *half = malloc(64 * 48 * 3), *bytes = NULL;
    size_t nb = 0;
    make_set(6); /* distractors */
    gen_pattern(128, 96, 3, 777, px);
    gen_path(big, imgs, "dup_big.png");
    cr_assert_eq(gen_write_png(big, 128, 96, GEN_PNG_RGB, 8, px, NULL), 0);
    img_resize_area(px, 128, 96, 3, half, 64, 48);
    gen_path(small, imgs, "dup_small.jpg");
    cr_assert_eq(gen_write_jpeg(small, 64, 48, 3, half, 85, 0), 0);
    cr_assert_eq(gen_read_bytes(big, &bytes, &nb), 0);
    gen_path(copy, imgs, "dup_copy.png");
    cr_assert_eq(gen_write_bytes(copy, bytes, nb), 0);
    add_dir(&log);
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.threshold = 0.97f}, &d), 0, "%s", pv_db_errmsg(db));
    cr_assert_eq(d->ngroups, 1, "got %zu groups", d->ngroups);
    cr_assert_eq(d->groups[0].n, 3);
    cr_assert_eq(d->images, 3);
    {
        const pv_dup_group *g = &d->groups[0];
        const pv_dup_member *keep = &g->members[0];
        int exact = 0, near = 0;
        cr_assert_eq(keep->item.width, 128, "largest kept");
        for (size_t i = 0; i < g->n; i++) {
            if (i == 0) {
                cr_assert(g->members[i].keep, "the representative is kept");
                continue;
            }
            cr_assert(!g->members[i].keep, "the others are dropped");
            if (strstr(g->members[i].item.path, "dup_copy"))
                exact += g->members[i].exact;
            if (strstr(g->members[i].item.path, "dup_small")) {
                near += !g->members[i].exact;
                cr_assert_geq(g->members[i].score, 0.97f);
            }
        }
        cr_assert_eq(exact, 1, "the byte copy is marked exact");
        cr_assert_eq(near, 1, "the re-encoded half-size copy is near");
        cr_assert_eq(g->all_exact, 0);
    }
    pv_dups_free(d);
    /* at a threshold above everything but 1.0, only the byte copy remains */
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.threshold = 1.0f}, &d), 0);
    cr_assert_eq(d->ngroups, 1);
    cr_assert_eq(d->groups[0].n, 2);
    cr_assert_eq(d->groups[0].all_exact, 1);
    pv_dups_free(d);
    free(px);
    free(half);
    free(bytes);
}

Test(db, exact_duplicates_of_flat_images_still_grouped)
{
    errlog log = {0};
    pv_dups *d = NULL;
    char p[GEN_PATH_MAX];
    uint8_t px[16 * 16];
    memset(px, 30, sizeof px);
    gen_path(p, imgs, "flat1.png");
    cr_assert_eq(gen_write_png(p, 16, 16, GEN_PNG_GREY, 8, px, NULL), 0);
    gen_path(p, imgs, "flat2.png");
    cr_assert_eq(gen_write_png(p, 16, 16, GEN_PNG_GREY, 8, px, NULL), 0);
    make_set(2);
    add_dir(&log);
    cr_assert_eq(pv_find_dups(db, &(pv_dups_opts){.threshold = 0.95f}, &d), 0);
    cr_assert_eq(d->ngroups, 1, "zero vectors score 0, but same bytes are duplicates");
    cr_assert_eq(d->groups[0].all_exact, 1);
    cr_assert_eq(d->pairs, 1, "the byte pair is counted");
    pv_dups_free(d);
}
