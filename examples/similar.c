/*
 * similar.c - the smallest program on pixvec's C API: the images of a
 * database most like a given one.
 *
 *     pixvec init photos.db && pixvec add photos.db ~/Pictures
 *     cc similar.c $(pkg-config --cflags --libs pixvec) -o similar
 *     ./similar photos.db ~/Pictures/cat.jpg 5
 *
 * prints one hit a line: the cosine similarity and the stored path.
 */
#include <pixvec.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    pv_db *db = NULL;
    pv_hit *hits = NULL;
    size_t n = 0;
    char err[512];
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: similar DB IMAGE [K]\n");
        return 2;
    }
    pv_query_opts o = {.k = argc > 3 ? atoi(argv[3]) : 10};
    if ((rc = pv_db_open(argv[1], PV_OPEN_RDONLY, &db, err, sizeof err)) != 0) {
        fprintf(stderr, "similar: %s\n", err);
        return 1;
    }
    if ((rc = pv_query_image(db, argv[2], &o, &hits, &n)) != 0) {
        fprintf(stderr, "similar: %s\n", pv_db_errmsg(db));
        pv_db_close(db);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%.4f  %s\n", hits[i].score, hits[i].path);
    pv_hits_free(hits, n);
    pv_db_close(db);
    return 0;
}
