#!/usr/bin/env bash
# bench/run_growth.sh - how cost grows with the collection (issue 17, part 4)
# in one command: builds a Release tree, then for each size N and each
# vectors kind (float32, int8) a database of N synthetic pictures, and one
# markdown table of add images/s, disk bytes per image, query latency from a
# warm and from a cold page cache, recall@10 and the `dups` time
# (bench/bench_growth.c says how each is measured).
#
# Pictures: bench_dups gen (16 x 16 grey PNGs, 2 % of them with 1-3 planted
# near copies), seed 7, one folder per N (gen is deterministic, so each set
# is the first N pictures of a larger one); 1,000 query pictures from seed
# 1001, none planted and none in any database. The databases use the pixels
# embedder at --size 16 by default: 256 dims, the pictures as they are. At
# run_dups.sh's --size 8 (64 dims) a float32 vector is 256 bytes, less than
# its graph links and item records, so int8's saving hardly shows; at 256
# dims it is 1 KiB, of the order of CLIP's 512 and the cnn's 1280 dims.
#
# usage: bench/run_growth.sh [--small] [--sizes N,N,...] [--vectors f32,i8,i8-only]
#                            [--size S] [--nq Q]
#   --small: sizes 2000,5000 and 200 queries (the CI smoke, about a minute
#            once built)
#   --sizes: default 100000,1000000
#   env: PV_BENCH_BUILD (default build-bench-growth), PV_BENCH_SKIP_SETUP=1,
#        PV_BENCH_WORK (default /tmp/pixvec-bench-growth): pictures and
#        databases are kept there between runs (a database is rebuilt only
#        when its build did not finish, or the engine made it as another
#        vectors kind; a reused database keeps the add time measured when
#        it was built, so after a change to the engine use a fresh folder).
#        100k pictures take about 400 MB there, 1M about 4 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=100000,1000000
KINDS=f32,i8,i8-only
SIDE=16
NQ=1000
usage() {
  echo "usage: bench/run_growth.sh [--small] [--sizes N,N,...] [--vectors f32,i8,i8-only] [--size S] [--nq Q]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SIZES=2000,5000; NQ=200; shift ;;
    --sizes) [ $# -ge 2 ] || usage; SIZES=$2; shift 2 ;;
    --vectors) [ $# -ge 2 ] || usage; KINDS=$2; shift 2 ;;
    --size) [ $# -ge 2 ] || usage; SIDE=$2; shift 2 ;;
    --nq) [ $# -ge 2 ] || usage; NQ=$2; shift 2 ;;
    *) usage ;;
  esac
done
BUILD=${PV_BENCH_BUILD:-build-bench-growth}
WORK=${PV_BENCH_WORK:-/tmp/pixvec-bench-growth}
T=$(nproc)
[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" --target bench_growth bench_dups >/dev/null
mkdir -p "$WORK"
BG="$BUILD/bench/bench_growth"
GEN="$BUILD/bench/bench_dups"
load() { cut -d' ' -f1-3 /proc/loadavg; }
MACHINE="- date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
# Cold reads through LMDB's map fault in read_ahead_kb at a time.
DEV=$(basename "$(df --output=source "$WORK" | tail -1)")
RA=$(cat "/sys/block/$DEV/queue/read_ahead_kb" 2>/dev/null || echo '?')
MACHINE="$MACHINE; $WORK on $DEV, read_ahead_kb $RA"
echo "$MACHINE"
echo "- load average at the start: $(load)"

# gen DIR N SEED PLANTED: the pictures, once (a marker says gen finished).
gen() {
  if [ ! -f "$1/complete" ]; then
    rm -rf "$1"
    "$GEN" gen --out "$1" --n "$2" --seed "$3" --planted "$4"
    touch "$1/complete"
  fi
}
QDIR=$WORK/queries-$NQ
gen "$QDIR" "$NQ" 1001 0

ROWS=$WORK/rows-$$.md
trap 'rm -f "$ROWS"' EXIT
: >"$ROWS"
for n in ${SIZES//,/ }; do
  IMG=$WORK/img-$n
  gen "$IMG" "$n" 7 0.02
  for kind in ${KINDS//,/ }; do
    DB=$WORK/n$n-$kind-s$SIDE.pvdb
    KV=$DB.add
    # Reuse a finished build of the kind asked; anything else is rebuilt.
    if [ ! -f "$KV" ] || [ "$("$BG" kind --db "$DB" 2>/dev/null || true)" != "$kind" ]; then
      rm -rf "$DB" "$KV"
      "$BG" build --db "$DB" --images "$IMG" --vectors "$kind" --size "$SIDE" --kv "$KV.tmp"
      mv "$KV.tmp" "$KV"
    else
      echo "reusing $DB ($(tr '\n' ' ' <"$KV"))"
    fi
    echo "measuring $DB (load average $(load))"
    "$BG" measure --db "$DB" --queries "$QDIR" --nq "$NQ" --add-kv "$KV" --vectors "$kind" >>"$ROWS"
  done
done

{
echo
echo "## How cost grows: pixels --size $SIDE ($((SIDE * SIDE)) dims), synthetic 16x16 pictures"
echo
echo "$MACHINE"
echo "- load average at the end: $(load); $NQ queries (k 10, ef 64, one thread);" \
  "dups with its defaults on every core"
echo
echo "| N | vectors | add img/s | disk B/image | query warm p50 / p99 ms | cold: open + 1st query ms | cold p50 / p99 ms | recall@10 | dups s |"
echo "|--:|:--|--:|--:|--:|--:|--:|--:|--:|"
cat "$ROWS"
} | tee "$WORK/table-s$SIDE.md"
