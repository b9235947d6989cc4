/*
 * knn.h - the live items of a snapshot and their nearest neighbours
 * (engine room): what `map` and `quality` start from.
 */
#ifndef PV_KNN_H
#define PV_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "db_int.h"

/* The live items of one read snapshot, numbered 0..n-1 in id order (a
 * "row"). */
typedef struct live_set {
    pv_db *db;
    store_txn *t;      /* the snapshot (db_read_begin), ended by live_set_close */
    vec_set set;       /* its vectors */
    uint32_t nid;      /* ids 0..nid-1 exist */
    uint32_t *ids;     /* n live ids, increasing */
    uint32_t *row;     /* nid entries: id -> row, UINT32_MAX if not live */
    size_t n;
} live_set;

/* Begin a snapshot of db and list its live items. On error the message is
 * in db's errmsg; live_set_close is still to be called. */
int live_set_open(pv_db *db, live_set *ls);
void live_set_close(live_set *ls);

/* The vectors of every row copied into one n x dim array (*x, malloc'd). */
int live_set_gather(live_set *ls, float **x);

/* For each of nq query rows, its k nearest other rows among those with
 * want[row] set (nwant of them), nearest first: nbr (nq x k, rows;
 * UINT32_MAX pads a short list) and dist (nq x k, the euclidean distance
 * between the unit vectors, sqrt(2 - 2 cos)). Exact (OpenBLAS sgemm) up to
 * KNN_EXACT_MAX live items or while nq x nwant stays small; else from the
 * stored HNSW graph, one search per query from its own node (dups.c's
 * self-join), on nthreads threads, each in its own read transaction. x is
 * live_set_gather's array. */
#define KNN_EXACT_MAX 4096u
int knn_rows(live_set *ls, const float *x, const uint32_t *qrows, size_t nq,
             const uint8_t *want, size_t nwant, uint32_t k, unsigned nthreads,
             uint32_t *nbr, float *dist);

#endif
