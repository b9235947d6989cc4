/*
 * test_python.c - the Python module python/pixvec.py (ctypes over
 * libpixvec.so), through its unittest script tests/py_test_pixvec.py: run
 * with /usr/bin/python3 (python3-numpy needed), PYTHONPATH at python/,
 * PIXVEC_LIB at the built libpixvec.so and PIXVEC_BIN at the built pixvec
 * (the script compares info() with `pixvec info --json`). The suite passes
 * when the script exits 0 and unittest reports every test run and OK; a
 * failure shows the script's report.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "gen.h"

#ifndef PIXVEC_SHARED_LIB
#error "PIXVEC_SHARED_LIB must name libpixvec.so"
#endif

#define PY "/usr/bin/python3"
#define SCRIPT PIXVEC_SRC_DIR "/tests/py_test_pixvec.py"

/* The script's tests: fewer in its report means some were not collected. */
#define PY_TESTS_MIN 16

TestSuite(python, .timeout = 120);

Test(python, unittest_script)
{
    char dir[GEN_PATH_MAX], outp[GEN_PATH_MAX], errp[GEN_PATH_MAX];
    char *out = NULL, *err = NULL;

    if (system(PY " -c 'import numpy' 2>/dev/null") != 0)
        cr_assert_fail(PY " cannot import numpy: install python3 and python3-numpy "
                          "(scripts/setup.sh does)");
    cr_assert_eq(gen_tmpdir(dir), 0);
    gen_path(outp, dir, "stdout");
    gen_path(errp, dir, "stderr");
    /* Each Criterion test runs in its own process: these stay in it. */
    cr_assert_eq(setenv("PYTHONPATH", PIXVEC_SRC_DIR "/python", 1), 0);
    cr_assert_eq(setenv("PIXVEC_LIB", PIXVEC_SHARED_LIB, 1), 0);
    cr_assert_eq(setenv("PIXVEC_BIN", PIXVEC_BIN, 1), 0);
    cr_assert_eq(setenv("TMPDIR", dir, 1), 0);
    cr_assert_eq(setenv("PYTHONDONTWRITEBYTECODE", "1", 1), 0);
#if defined(__SANITIZE_ADDRESS__)
    /* The AddressSanitizer build's library needs the ASan runtime loaded
     * first, which python3 is not built with: preload it (the compiler
     * that built this test says where it is), so the module's calls are
     * still checked. Python's own allocations at exit are not leaks of
     * ours: leak checking off for this process. */
    char asan[GEN_PATH_MAX];
    cli_shell_line(asan, sizeof asan, "%s -print-file-name=libasan.so", PV_TEST_CC);
    asan[strcspn(asan, "\n")] = 0;
    cr_assert_eq(setenv("LD_PRELOAD", asan, 1), 0);
    cr_assert_eq(setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1", 1), 0);
#endif

    char *argv[] = {"python3", "-B", SCRIPT, "-v", NULL};
    pid_t pid = cli_spawn(PY, argv, NULL, outp, errp);
    int status = cli_wait(pid, "python3", outp, errp, &out, &err);
    cr_assert_eq(status, 0, "%s exited %d:\n%s%s", SCRIPT, status, out, err);

    /* unittest reports on stderr: "Ran N tests in ...", then "OK". */
    const char *ran = strstr(err, "\nRan ");
    cr_assert_not_null(ran, "no unittest report:\n%s", err);
    int n = atoi(ran + 5);
    cr_assert_geq(n, PY_TESTS_MIN, "only %d tests ran:\n%s", n, err);
    cr_assert_not_null(strstr(ran, "\nOK"), "%s", err);
    cr_assert_null(strstr(err, "skipped"), "a test was skipped:\n%s", err);

    free(out);
    free(err);
    gen_rmtree(dir);
}
