#!/usr/bin/env bash
# bench/run_dups.sh - the duplicate scan at scale (issue 6) in one command:
# builds a Release tree, then
#  1. Fashion-MNIST's 60,000 training images (pixels 28x28, 784 dims):
#     exact all-pairs scan against the HNSW self-join, at 0.95 and 0.98;
#  2. with --big, a synthetic set of N (default 1,000,000) 16x16 pictures
#     with planted near copies (bench_dups gen; pixels --size 8, 64 dims):
#     the same comparison, plus recall of the planted pairs.
# Each scan runs in its own process (bench_dups run), which prints its time,
# pairs, groups and peak RSS; then the approximate mode's pair recall
# against the exact scan. When peer_hnswlib_dups is built (libhnswlib-dev),
# the 60k vectors are exported (bench_dups export) and hnswlib builds its own
# index on them and runs the same self-join at the same thresholds, on as
# many threads as pixvec's scan uses; its pair recall is against pixvec's
# exact pairs.
#
# usage: bench/run_dups.sh [--n N] [--big [N]]
#   --n N: the first N Fashion-MNIST training images instead of all 60,000
#          (fmnist_export --limit N; a small N is the CI smoke run)
#   env: PV_BENCH_BUILD (default build-bench-hnsw), PV_BENCH_SKIP_SETUP=1,
#        PV_BENCH_WORK (default /tmp/pixvec-bench-dups: databases are kept
#        there between runs, the 1M set takes about 3 GB and 20-30 minutes to
#        build on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
BIG=0
N=1000000
FN=60000
while [ $# -gt 0 ]; do
  case "$1" in
    --n) FN=$2; shift 2 ;;
    --big) BIG=1; shift; if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then N=$1; shift; fi ;;
    *) echo "usage: bench/run_dups.sh [--n N] [--big [N]]" >&2; exit 2 ;;
  esac
done
BUILD=${PV_BENCH_BUILD:-build-bench-hnsw}
WORK=${PV_BENCH_WORK:-/tmp/pixvec-bench-dups}
T=$(nproc)
[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" >/dev/null
mkdir -p "$WORK"
PX="$BUILD/pixvec"
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

FM=$WORK/fmnist-png-$FN
if [ ! -f "$FM/complete" ]; then
  rm -rf "$FM"
  "$BUILD/fmnist_export" "$FM" --limit "$FN" >/dev/null
  touch "$FM/complete"
fi
DB60=$WORK/fmnist$FN.pvdb
if [ ! -d "$DB60" ]; then
  "$PX" init "$DB60" >/dev/null
  /usr/bin/time -f "add $FN: %e s, peak RSS %M KiB" "$PX" add "$DB60" "$FM/train" --quiet
fi
PEER="$BUILD/bench/peer_hnswlib_dups"
THRS="0.95 0.98"
REFS=()
for t in $THRS; do
  echo
  echo "## Fashion-MNIST $FN, threshold $t"
  if [ -x "$PEER" ]; then
    REFS+=("$WORK/fmnist$FN-exact-$t.pairs")
    "$BUILD/bench/bench_dups" run --db "$DB60" --threshold "$t" --pairs-out "${REFS[-1]}"
  else
    "$BUILD/bench/bench_dups" run --db "$DB60" --threshold "$t"
  fi
done
if [ -x "$PEER" ]; then
  echo
  echo "## Fashion-MNIST $FN, hnswlib on the same vectors (thresholds ${THRS// /, })"
  "$BUILD/bench/bench_dups" export --db "$DB60" --out "$WORK/fmnist$FN.f32"
  # pixvec's scan uses every core up to 16 (engine/dups.c)
  PT=$(( T < 16 ? T : 16 ))
  "$PEER" "$WORK/fmnist$FN.f32" --threads "$PT" --threshold "${THRS// /,}" \
    --ref "$(IFS=,; echo "${REFS[*]}")"
fi

if [ "$BIG" = 1 ]; then
  SYN=$WORK/syn$N
  DBB=$WORK/syn$N.pvdb
  [ -d "$SYN" ] || "$BUILD/bench/bench_dups" gen --out "$SYN" --n "$N" --seed 7
  if [ ! -d "$DBB" ]; then
    "$PX" init "$DBB" --size 8 >/dev/null
    /usr/bin/time -f "add $N: %e s, peak RSS %M KiB" "$PX" add "$DBB" "$SYN" --quiet
  fi
  echo
  echo "## synthetic $N (16x16, pixels --size 8: 64 dims), threshold 0.95"
  "$BUILD/bench/bench_dups" run --db "$DBB" --threshold 0.95
fi
