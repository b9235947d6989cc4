#!/usr/bin/env bash
# Builds pixvec (library, CLI, tests, benchmarks and the peers that are
# installed) in every CMake build type with GCC and with Clang, warnings as
# errors, each into a fresh folder. A compiler's warning at -O3 or -Os that a
# RelWithDebInfo build never shows fails here, not in a user's build (where
# PV_WERROR is off). Needs clang: `scripts/setup.sh --ci` installs it.
#
# usage: scripts/ci/build_matrix.sh [OUTDIR]   (default: a temporary folder,
#        removed at the end; the log of a failing build is printed)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-}
if [ -z "$out" ]; then
  out=$(mktemp -d /tmp/pixvec-builds.XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi
jobs=$(nproc)
failed=0
for cc in gcc clang; do
  cxx=g++
  [ "$cc" = clang ] && cxx=clang++
  if ! command -v "$cc" >/dev/null || ! command -v "$cxx" >/dev/null; then
    echo "build_matrix: $cc or $cxx is not installed (scripts/setup.sh --ci installs clang)" >&2
    exit 1
  fi
  for type in Debug Release RelWithDebInfo MinSizeRel; do
    dir="$out/$cc-$type"
    rm -rf "$dir"
    if CC=$cc CXX=$cxx cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DPV_WERROR=ON \
         -DPV_TESTS=ON -DPV_BENCH=ON >"$dir.log" 2>&1 &&
       cmake --build "$dir" -j "$jobs" >>"$dir.log" 2>&1; then
      echo "build_matrix: $cc $type: ok"
    else
      echo "build_matrix: $cc $type: FAILED"
      grep -E 'error|warning' "$dir.log" | sort -u | head -40
      failed=1
    fi
    rm -rf "$dir"
  done
done
exit $failed
