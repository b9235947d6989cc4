#!/usr/bin/env bash
# Installs what pixvec needs, builds it three times (optimised; with
# AddressSanitizer + UndefinedBehaviorSanitizer; with ThreadSanitizer) and
# runs every test in the first two and the concurrency tests in the third.
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
jobs=$(nproc)

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPV_TESTS=ON -DPV_BENCH=ON -DPV_WERROR=ON >/dev/null
cmake --build build -j "$jobs"

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPV_SANITIZE=ON -DPV_BENCH=OFF -DPV_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs"

echo "== tests (RelWithDebInfo)"
./build/pixvec_tests --jobs "$jobs"

echo "== tests (RelWithDebInfo, kernels capped at AVX2: a machine without AVX-512)"
PIXVEC_MAX_ISA=avx2 ./build/pixvec_tests --jobs "$jobs"

echo "== tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ./build-asan/pixvec_tests --jobs "$jobs"

echo "== concurrency tests (ThreadSanitizer: threads and processes reading while others write)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPV_TSAN=ON -DPV_TESTS=OFF \
  -DPV_BENCH=OFF -DPV_WERROR=ON >/dev/null
cmake --build build-tsan -j "$jobs" --target pixvec_tsan_tests
TSAN_OPTIONS=halt_on_error=1 ./build-tsan/pixvec_tsan_tests 3
