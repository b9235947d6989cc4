/*
 * test_concurrency.c - the checks of concurrency.c in the Criterion suite
 * (ThreadSanitizer runs the same through tests/tsan/tsan_main.c).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "concurrency.h"
#include "gen.h"

static char dir[GEN_PATH_MAX];

static void setup(void) { cr_assert_eq(gen_tmpdir(dir), 0); }
static void teardown(void) { gen_rmtree(dir); }

TestSuite(concurrency, .init = setup, .fini = teardown);

Test(concurrency, readers_with_own_transactions_while_a_writer_commits)
{
    char fail[512] = "";
    cr_assert_eq(conc_readers_while_writer(dir, fail, sizeof fail), 0, "%s", fail);
}

Test(concurrency, approximate_dups_while_another_process_adds, .timeout = 600)
{
    char fail[512] = "";
    int scans = 0;
    cr_assert_eq(conc_dups_while_adding(dir, PIXVEC_BIN, &scans, fail, sizeof fail), 0, "%s",
                 fail);
    cr_log_info("%d scans while adding", scans);
}

Test(concurrency, clip_add_on_two_threads_then_search, .timeout = 600)
{
    char fail[512] = "";
    cr_assert_eq(conc_clip_add(dir, PIXVEC_SRC_DIR, fail, sizeof fail), 0, "%s", fail);
}

Test(concurrency, codes_only_insert_query_vacuum, .timeout = 600)
{
    char fail[512] = "";
    cr_assert_eq(conc_codes_only(dir, fail, sizeof fail), 0, "%s", fail);
}

Test(concurrency, maps_on_two_threads_then_placed, .timeout = 600)
{
    char fail[512] = "";
    cr_assert_eq(conc_map(dir, fail, sizeof fail), 0, "%s", fail);
}
