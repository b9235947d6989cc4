#!/usr/bin/env bash
# bench/run_compact.sh - compact vectors against hnswlib (issue 17, part 3)
# in one command: builds a Release tree, exports Fashion-MNIST as PNGs if it
# is not there yet, and on two data sets
#   fmnist: the pixels embedder's 784-d vectors of Fashion-MNIST;
#   cnn:    the cnn embedder's (MobileNetV2) 1280-d features of the same
#           PNGs (photographs of clothes, 28x28 grey),
# measures pixvec as five databases (float32; float16 and int8 with the final
# candidates re-scored in float32, the default; int8 with no rerank; int8
# codes only, the float32 vectors dropped) and
# hnswlib (-O3 -march=native, bench/hnsw.cmake) on the same vectors, the same
# queries and the same ground truth (bench_hnsw writes them; --reuse and
# --open make the later databases use them). Queries on one thread, ef swept
# finely until recall@10 reaches 0.99; then one table per data set: q/s at
# recall@10 0.90, 0.95 and 0.99 (the smallest ef of the sweep that reaches
# it), pixvec/hnswlib at each, build time and bytes per vector on disk.
#
# usage: bench/run_compact.sh [--small] [--fmnist-n N] [--cnn-n N] [--queries Q]
#                             [--reps R] [--efs E,E,...] [--sets "fmnist cnn"]
#        (defaults 60000 20000 1000 3, a 20-step sweep from 10 to 800;
#        --small: 3000 and 1100 vectors (int8 trains from 1024), 100 queries,
#        1 rep, ef 10,20,40,80,160: a smoke run, its figures mean little)
#   env: PV_BENCH_BUILD (default build-bench-hnsw), PV_BENCH_DATA (default
#        /tmp/pixvec-fmnist), PV_BENCH_WORK (a fresh work folder is made
#        under it; default /tmp), PV_BENCH_SKIP_SETUP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

FN=60000 CN=20000 Q=1000 REPS=3 SETS="fmnist cnn" SMALL=0
EFS=10,12,16,20,24,32,40,48,64,80,96,128,160,200,256,320,400,512,640,800
usage="usage: bench/run_compact.sh [--small] [--fmnist-n N] [--cnn-n N] [--queries Q] [--reps R] [--efs E,E,...] [--sets \"fmnist cnn\"]"
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SMALL=1 FN=3000 CN=1100 Q=100 REPS=1 EFS=10,20,40,80,160; shift ;;
    --fmnist-n) FN=$2; shift 2 ;;
    --cnn-n) CN=$2; shift 2 ;;
    --queries) Q=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --efs) EFS=$2; shift 2 ;;
    --sets) SETS=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

DATA=${PV_BENCH_DATA:-/tmp/pixvec-fmnist}
BUILD=${PV_BENCH_BUILD:-build-bench-hnsw}
T=$(nproc)
STOP=0.99

[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
# Only the three programs this needs (the whole bench tree takes longer to
# compile than --small takes to run).
targets=(bench_hnsw fmnist_export)
# (grep reads the whole list: with -q it could exit first and, under
# pipefail, cmake's SIGPIPE would fail the pipeline.)
if cmake --build "$BUILD" --target help | grep peer_hnswlib >/dev/null; then
  targets+=(peer_hnswlib)
fi
cmake --build "$BUILD" -j "$T" --target "${targets[@]}" >/dev/null
if [ "$(find "$DATA" -name '*.png' 2>/dev/null | wc -l)" -lt 70000 ]; then
  "$BUILD/fmnist_export" "$DATA"
fi
mkdir -p "${PV_BENCH_WORK:-/tmp}"
WORK=$(mktemp -d "${PV_BENCH_WORK:-/tmp}/pixvec-bench-compact.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

CPU=$(lscpu | sed -n 's/^Model name: *//p')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M')
machine() {
  echo "- machine: $CPU, $T cores online, $(free -g | awk '/^Mem:/{print $2}') GiB RAM;" \
    "load average at start $LOAD_START, now $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- date: $START - $(date -u '+%H:%M UTC'); tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
}
machine
echo

# One data set: the four pixvec databases, one after another in the same
# work folder (the first writes the vectors, queries and ground truth; each
# database is removed once measured, so the disk holds one at a time), then
# hnswlib on the same files.
run_set() {
  local set=$1 emb=$2 n=$3
  local w="$WORK/$set"
  mkdir -p "$w"
  local args=(--data "$DATA" --work "$w" --n "$n" --queries "$Q" --reps "$REPS"
    --embedder "$emb" --efs "$EFS" --stop-recall "$STOP")
  local pv="$BUILD/bench/bench_hnsw"
  "$pv" "${args[@]}" --vectors f32 --vacuum --out "$w/f32.kv"
  rm -rf "$w/db"; echo
  "$pv" "${args[@]}" --vectors f16 --reuse --vacuum --out "$w/f16.kv"
  rm -rf "$w/db"; echo
  # Both int8 sweeps query the graph pv_add built; pv_vacuum comes last.
  "$pv" "${args[@]}" --vectors i8 --reuse --out "$w/i8.kv"
  echo
  "$pv" "${args[@]}" --vectors i8 --open --no-rerank --vacuum --out "$w/i8nr.kv"
  rm -rf "$w/db"; echo
  # Codes only: by default an i8-only database keeps float32 until its int8
  # ranges are final, at 65,536 vectors (more than these sets hold), so it
  # would measure as i8. To measure the codes-only mode itself, the ranges
  # are made final at 1,024 (PIXVEC_I8_TRAIN_MAX) and learned from a random
  # 1,024 files added first (--sample-first; pv_add adds in path order,
  # class order in these folders).
  PIXVEC_I8_TRAIN_MAX=1024 "$pv" "${args[@]}" --vectors i8-only --reuse --vacuum --sample-first 1 \
    --out "$w/i8only.kv"
  rm -rf "$w/db"; echo
  if [ -x "$BUILD/bench/peer_hnswlib" ]; then
    "$BUILD/bench/peer_hnswlib" "$w" --reps "$REPS" --threads "$T" --efs "$EFS" \
      --stop-recall "$STOP" --out "$w/hl.kv"
    rm -f "$w/hnswlib.bin"
  else
    echo "peer_hnswlib: not built (libhnswlib-dev missing)"; : >"$w/hl.kv"
  fi
  echo
}

# summary TITLE DIR: the table of one data set from its six key=value files.
summary() {
  local title=$1 w=$2
  echo "### $title"
  echo
  machine
  awk -F= -v T="$T" -v REPS="$REPS" -v EFS="$EFS" '
    FNR == 1 { f++ }
    { v[f, $1] = substr($0, length($1) + 2) }
    function g(i, k) { return ((i, k) in v) ? v[i, k] : "" }
    # the smallest ef of file i whose recall reaches r (0: none)
    function at(i, r,   e, m, j) {
      m = split(g(i, "efs"), e, ",")
      for (j = 1; j <= m; j++)
        if (g(i, "ef" e[j] "_recall") + 0 >= r) return e[j]
      return 0
    }
    function qps(i, r,   e) { e = at(i, r); return e ? sprintf("%.0f (ef %d)", g(i, "ef" e "_qps"), e) : "not reached" }
    function ratio(i, r,   a, b) {
      a = at(i, r); b = at(H, r)
      if (!a || !b || g(H, "ef" b "_qps") + 0 <= 0) return "—"
      return sprintf("%.2f", g(i, "ef" a "_qps") / g(H, "ef" b "_qps"))
    }
    function best(i,   e, m, j, r, bj) {
      m = split(g(i, "efs"), e, ",")
      r = -1
      for (j = 1; j <= m; j++) if (g(i, "ef" e[j] "_recall") + 0 > r) { r = g(i, "ef" e[j] "_recall") + 0; bj = e[j] }
      return m ? sprintf("%.4f (ef %d)", r, bj) : "—"
    }
    # the most CPU other processes took while an ef of file i was measured
    function others(i,   e, m, j, o) {
      m = split(g(i, "efs"), e, ",")
      o = 0
      for (j = 1; j <= m; j++) if (g(i, "ef" e[j] "_others") + 0 > o) o = g(i, "ef" e[j] "_others") + 0
      return sprintf("%.0f %%", o)
    }
    # build - embed, unless the embed-only pass (one image a call) took longer
    # than pv_add, which embeds a grab of files in one call
    function rest(b, e) {
      if (b == "" || e == "") return "—"
      return b - e > 0 ? sprintf("%.2f s", b - e) : "not measurable this way (embed-only took longer than the whole build)"
    }
    function n2(x) { return x == "" ? "—" : sprintf("%.2f", x) }
    function n0(x) { return x == "" ? "—" : sprintf("%.0f", x) }
    function stored(i,   s) {
      s = g(i, "vectors")
      if (s != g(i, "vectors_asked")) s = s " (asked " g(i, "vectors_asked") ": not implemented by this engine)"
      else if (g(i, "code_bytes") + 0 > 0) s = s ", " g(i, "code_bytes") " B/code, " g(i, "coded") " coded"
      return s
    }
    function bytes(i) {
      return g(i, "compact_bytes_per_vec") == "" ? n0(g(i, "bytes_per_vec")) : n0(g(i, "bytes_per_vec")) " (" n0(g(i, "compact_bytes_per_vec")) ")"
    }
    function row(i, name, build, idx) {
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, stored(i), build, idx,
        bytes(i), qps(i, 0.90), ratio(i, 0.90), qps(i, 0.95), ratio(i, 0.95),
        qps(i, 0.99), ratio(i, 0.99), best(i), others(i)
    }
    END {
      H = 6
      printf "- %s vectors of %s-d (%s embedder), %s queries, k=10, M=16, ef_construction=200; q/s on 1 thread, median of %s; ground truth exact (sgemm), same for all rows\n",
        g(1, "n"), g(1, "dim"), g(1, "embedder"), g(1, "q"), REPS
      printf "- q/s at a recall: the smallest ef of the sweep (%s) whose recall@10 reaches it; x hnswlib = pixvec q/s / hnswlib q/s, each at its own smallest such ef\n", EFS
      printf "- pixvec build = pv_add on %d threads: decode + embed + graph + fsync'"'"'d commits; embed only (pv_embed_file, one image a call, %d threads) %s s, so build - embed = %s; index only = pv_vacuum (graph rebuilt from the stored vectors, %d threads)\n",
        T, T, n2(g(1, "embed_s")), rest(g(1, "build_s"), g(1, "embed_s")), T
      printf "- hnswlib build: 1 thread %s s, %d threads %s s (vectors given, no decode or embed); bytes/vector: its saveIndex file; pixvec: data.mdb / items, in brackets a compacted copy'"'"'s (pv_db_backup: without the free pages the build left)\n\n",
        n2(g(H, "build1_s")), g(H, "threads"), n2(g(H, "buildT_s"))
      print "| engine | vectors stored | build s | index only s | bytes/vector | q/s @ recall 0.90 | x hnswlib | q/s @ 0.95 | x hnswlib | q/s @ 0.99 | x hnswlib | best recall@10 | others\047 CPU, worst ef |"
      print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
      row(1, "pixvec f32", n2(g(1, "build_s")), n2(g(1, "vacuum_s")))
      row(2, "pixvec f16 + rerank", n2(g(2, "build_s")), n2(g(2, "vacuum_s")))
      row(3, "pixvec i8 + rerank", n2(g(3, "build_s")), n2(g(4, "vacuum_s")))
      row(4, "pixvec i8, no rerank", "same database", "—")
      row(5, "pixvec i8-only (codes only from 1024 random files: PIXVEC_I8_TRAIN_MAX=1024)", n2(g(5, "build_s")), n2(g(5, "vacuum_s")))
      v[H, "vectors"] = "f32"; v[H, "vectors_asked"] = "f32"
      row(H, "hnswlib -march=native", n2(g(H, "buildT_s")) " (" g(H, "threads") " thr)", "= build")
    }' "$w/f32.kv" "$w/f16.kv" "$w/i8.kv" "$w/i8nr.kv" "$w/i8only.kv" "$w/hl.kv"
  echo
}

for set in $SETS; do
  case "$set" in
    fmnist) run_set fmnist pixels "$FN" ;;
    cnn) run_set cnn cnn "$CN" ;;
    *) echo "run_compact: unknown set $set (fmnist, cnn)" >&2; exit 2 ;;
  esac
done

echo "## pixvec compact vectors vs hnswlib, same vectors, same run$([ $SMALL = 1 ] && echo ' (--small: figures mean little)')"
echo
for set in $SETS; do
  case "$set" in
    fmnist) summary "Fashion-MNIST pixels (784-d)" "$WORK/fmnist" ;;
    cnn) summary "cnn features (MobileNetV2, 1280-d) of Fashion-MNIST photographs" "$WORK/cnn" ;;
  esac
done
