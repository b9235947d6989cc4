/*
 * concurrency.h - threads that each hold a read transaction while another
 * thread or process commits (issue 12, item 7), written without Criterion
 * so that the same checks run in pixvec_tests (tests/test_concurrency.c)
 * and under ThreadSanitizer (tests/tsan/tsan_main.c, CMake PV_TSAN):
 * Criterion cannot start under ThreadSanitizer (Criterion issue 274).
 *
 * Each returns 0, or -1 with fail (failn bytes) saying what went wrong.
 */
#ifndef PV_TEST_CONCURRENCY_H
#define PV_TEST_CONCURRENCY_H

#include <stddef.h>

/* In a fresh store in dir/db (dir exists): reader threads, each with read
 * transactions of its own (half carrying chunk pointers from snapshot to
 * snapshot in a cache of their own), read and check every vector while a
 * writer thread commits batches of items and vectors. */
int conc_readers_while_writer(const char *dir, char *fail, size_t failn);

/* In dir: a database of near-copy pairs; pv_find_dups in approximate mode
 * (threads with read transactions of their own) again and again while
 * `pixvec add` (the program pixvec_bin) commits one image at a time in
 * another process. Every scan must succeed and pair the near-copies, and
 * the database must check out at the end. *scans gets the scans run. */
int conc_dups_while_adding(const char *dir, const char *pixvec_bin, int *scans,
                           char *fail, size_t failn);

/* The photo embedder's duplicate scan (approximate): candidate pairs
 * scored on every core (engine/dups.c verify_pairs). The planted pairs
 * must all be grouped. */
int conc_photo_dups(const char *dir, char *fail, size_t failn);

/* A clip database (a tiny random checkpoint from tests/ref_vit.py at
 * src_dir): `add` on 2 worker threads runs the image tower on both at once
 * on one embedder, then a text query. Skipped, saying so on stdout, when
 * /usr/bin/python3 cannot import torch. */
int conc_clip_add(const char *dir, const char *src_dir, char *fail, size_t failn);

/* Maps (UMAP and t-SNE) of a small database on 2 threads, then images
 * added and placed into them (engine/map.c, index/umap.c, index/tsne.c). */
int conc_map(const char *dir, char *fail, size_t failn);

/* A float16 codes-only database: pictures added on 2 threads (the graph
 * planned on codes), a reader thread with its own handle querying the
 * whole time, then vacuum (stored nodes decoded for re-insertion) and
 * check. */
int conc_codes_only(const char *dir, char *fail, size_t failn);

#endif
