/*
 * pkgdata.h - system data for tests, taken only from the Debian packages
 * that scripts/setup.sh installs, by each package's own file list (tests
 * only).
 *
 * A shared folder such as /usr/share/backgrounds holds whatever packages
 * happen to be installed on a machine; a fresh machine has only the ones
 * setup.sh installs. So a test never lists a shared folder: it asks dpkg
 * which files the package it depends on installed, and uses those. A package
 * that is missing, or that ships fewer files than the test needs, fails the
 * test with a message naming the package (setup.sh installs it), never a
 * skip. CI checks the other direction (scripts/ci/check_test_data.sh): every
 * system file the tests open belongs to a package setup.sh installs.
 *
 * Typical use:
 *     static const char *const exts[] = {".jpg", ".jpeg", NULL};
 *     char **photos = NULL;
 *     size_t n = pkg_files("lomiri-wallpapers-20.04", exts, 4, &photos);
 *     ...
 *     pkg_files_free(photos, n);
 */
#ifndef PV_TEST_PKGDATA_H
#define PV_TEST_PKGDATA_H

#include <stddef.h>

/* The regular files package `pkg` installed (`dpkg-query -L`) whose names
 * end in one of `exts` (a NULL-terminated list, compared without case), in
 * byte order of their paths. Fails the calling test, naming the package,
 * when it is not installed or lists fewer than `at_least` such files that
 * are readable. *out is malloc'd; free it with pkg_files_free. */
size_t pkg_files(const char *pkg, const char *const *exts, size_t at_least, char ***out);

/* The one file of `pkg` whose path ends in `suffix` (for example
 * "/train-images-idx3-ubyte.gz"), into out (GEN_PATH_MAX bytes); fails the
 * calling test, naming the package, when there is none. */
void pkg_file(const char *pkg, const char *suffix, char *out);

void pkg_files_free(char **v, size_t n);

#endif
