/*
 * tsan_main.c - the concurrency checks (tests/concurrency.c) as a plain
 * program for the ThreadSanitizer build (CMake PV_TSAN): Criterion cannot
 * start under ThreadSanitizer (its inheritable arena; Criterion issue 274).
 * Exit 0 when every check passes; ThreadSanitizer's own reports make the
 * run fail with TSAN_OPTIONS=halt_on_error=1 (scripts/ci or by hand).
 *
 * usage: pixvec_tsan_tests [ROUNDS [readers|dups|photo|clip|codes|map]]
 *        (default 3 rounds of both: races are timing-bound)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concurrency.h"
#include "gen.h"

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3, failed = 0;
    const char *only = argc > 2 ? argv[2] : "";
    for (int r = 0; r < rounds; r++) {
        char dir[GEN_PATH_MAX], fail[512] = "";
        int scans = 0;
        if (gen_tmpdir(dir) != 0) {
            fprintf(stderr, "tsan: no temporary folder\n");
            return 2;
        }
        if ((!only[0] || strcmp(only, "readers") == 0) && conc_readers_while_writer(dir, fail, sizeof fail) != 0) {
            fprintf(stderr, "tsan: round %d: readers while a writer commits: %s\n", r, fail);
            failed = 1;
        }
        if ((!only[0] || strcmp(only, "dups") == 0) &&
            conc_dups_while_adding(dir, PIXVEC_BIN, &scans, fail, sizeof fail) != 0) {
            fprintf(stderr, "tsan: round %d: dups while another process adds: %s\n", r, fail);
            failed = 1;
        }
        if ((!only[0] || strcmp(only, "photo") == 0) &&
            conc_photo_dups(dir, fail, sizeof fail) != 0) {
            fprintf(stderr, "tsan: round %d: photo dups: %s\n", r, fail);
            failed = 1;
        }
        if ((!only[0] || strcmp(only, "clip") == 0) &&
            conc_clip_add(dir, PIXVEC_SRC_DIR, fail, sizeof fail) != 0) {
            fprintf(stderr, "tsan: round %d: clip add and search: %s\n", r, fail);
            failed = 1;
        }
        if ((!only[0] || strcmp(only, "codes") == 0) &&
            conc_codes_only(dir, fail, sizeof fail) != 0) {
            fprintf(stderr, "tsan: round %d: codes only: %s\n", r, fail);
            failed = 1;
        }
        if ((!only[0] || strcmp(only, "map") == 0) && conc_map(dir, fail, sizeof fail) != 0) {
            fprintf(stderr, "tsan: round %d: maps: %s\n", r, fail);
            failed = 1;
        }
        printf("tsan: round %d: %s (%d dups scans while adding)\n", r,
               failed ? "FAILED" : "ok", scans);
        gen_rmtree(dir);
    }
    return failed;
}
