/*
 * fuzz_npy.c - libFuzzer target over the readers of `pixvec import` and
 * `query --vector`: pv_npy_read (a .npy file: header, dtype, shape, data
 * length) and pv_paths_read (the paths file, with its backslash escapes).
 * Both take a file name, so each input is written to one temporary file
 * first and read as both. No input may crash, leak or read outside its
 * buffers; a success must hold what it says (rows * cols finite-or-not
 * floats, n non-empty paths without NUL).
 *
 * Build: CC=clang cmake -DPV_FUZZ=ON (see scripts/ci/fuzz.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pixvec.h"

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    float *v = NULL;
    uint64_t rows = 0;
    uint32_t cols = 0;
    int ndim = 0;
    char **paths = NULL;
    size_t n = 0;

    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_npy.%d", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    if (pv_npy_read(path, &v, &rows, &cols, &ndim, err, sizeof err) == PV_OK) {
        volatile float sum = 0;
        if (rows == 0 || cols == 0 || (ndim != 1 && ndim != 2) || v == NULL)
            abort();
        for (uint64_t i = 0; i < rows * cols; i += 7)
            sum += v[i];
        (void)sum;
        pv_npy_free(v);
    } else if (!err[0]) {
        abort();
    }
    if (pv_paths_read(path, &paths, &n, err, sizeof err) == PV_OK) {
        for (size_t i = 0; i < n; i++)
            if (paths[i] == NULL || paths[i][0] == 0)
                abort();
        pv_paths_free(paths, n);
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
