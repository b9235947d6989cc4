#!/usr/bin/env bash
# Runs every command of README.md's "main job" and of bench/README.md the way
# a new user would, at a small size, each into folders that do not exist yet:
# its own build folder (PV_BENCH_BUILD), its own data folder (PV_BENCH_DATA,
# PV_BENCH_WORK, PIXVEC_OUT). A script that only works where an earlier run
# left a build or an export behind fails here. The figures printed mean
# nothing at these sizes; what counts is that each script ends with status 0,
# builds every peer (no "not built" line) and prints its table.
#
# usage: scripts/ci/bench_smoke.sh      (about 10 minutes on 2 cores)
#   env: PV_SMOKE_DIR (default: a temporary folder, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/../.."
top=${PV_SMOKE_DIR:-}
if [ -z "$top" ]; then
  top=$(mktemp -d /tmp/pixvec-smoke.XXXXXX)
  trap 'rm -rf "$top"' EXIT
fi
bash scripts/setup.sh --bench >/dev/null

failed=()
# smoke NAME EXPECT COMMAND...: runs COMMAND with fresh folders under
# $top/NAME, its output in $top/NAME.log; EXPECT is a line the output must
# hold (the table's title).
smoke() {
  local name=$1 expect=$2; shift 2
  local d="$top/$name"
  rm -rf "$d" "$d.log"
  mkdir -p "$d"
  local t0=$SECONDS rc=0
  PV_BENCH_BUILD="$d/build" PV_BENCH_DATA="$d/data" PV_BENCH_WORK="$d/work" \
    PIXVEC_OUT="$d/out" "$@" >"$d.log" 2>&1 || rc=$?
  local why=""
  [ $rc = 0 ] || why="exit status $rc"
  [ -n "$why" ] || ! grep -q 'not built' "$d.log" || why="a peer was not built: $(grep 'not built' "$d.log" | head -1)"
  [ -n "$why" ] || grep -qF -- "$expect" "$d.log" || why="its output lacks \"$expect\""
  if [ -z "$why" ]; then
    echo "bench_smoke: $name: ok ($((SECONDS - t0)) s)"
  else
    echo "bench_smoke: $name: FAILED ($why); the last lines of its output:"
    tail -n 25 "$d.log" | sed 's/^/    /'
    failed+=("$name")
  fi
  rm -rf "$d"
}

smoke demo "== IVF lists" bash scripts/demo.sh
smoke run "## pixvec vs FAISS" bash bench/run.sh --n 2000 --queries 20 --reps 1
smoke run_hnsw "recall@10" bash bench/run_hnsw.sh --n 2000 --queries 50 --reps 1
smoke run_compact "## pixvec compact vectors vs hnswlib" bash bench/run_compact.sh --small
smoke run_growth "## How cost grows" bash bench/run_growth.sh --small
smoke run_kmeans "IVF" bash bench/run_kmeans.sh --n 5000 --queries 50 --reps 1
smoke run_cnn "nearest neighbour" bash bench/run_cnn.sh --images 8 --batch 4 --reps 1 \
  --nnlabel-n 200 --nnlabel-queries 20 --photos-max 3
smoke run_dups "hnswlib on the same vectors" bash bench/run_dups.sh --n 2000
smoke run_photo "pair precision, recall and F1" bash bench/run_photo.sh --small
smoke run_vit "cold-process queries" bash bench/run_vit.sh --small
smoke run_map "## pixvec maps vs" bash bench/run_map.sh --small
smoke run_formats "## Decoding per format" bash bench/run_formats.sh --small

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench_smoke: failed: ${failed[*]}"
  exit 1
fi
echo "bench_smoke: every README and bench command ran from fresh folders"
