#!/usr/bin/env bash
# bench/run_hnsw.sh - the HNSW benchmark of issue 3 in one command: installs
# the peers (hnswlib, FAISS), builds a Release tree in build-bench-hnsw/,
# exports Fashion-MNIST as PNGs if it is not there yet, runs bench_hnsw
# (pixvec, public API, real database), peer_hnswlib and peer_faiss_hnsw on the
# same vectors, times `pixvec query` as a whole process (start to first
# answer), and prints one table side by side.
#
# usage: bench/run_hnsw.sh [--n N] [--queries Q] [--reps R]   (60000 2000 3)
#   env: PV_BENCH_DATA (default /tmp/pixvec-fmnist), PV_BENCH_BUILD
#        (default build-bench-hnsw), PV_BENCH_SKIP_SETUP=1 to skip setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

N=60000 Q=2000 REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2 ;;
    --queries) Q=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    *) echo "usage: bench/run_hnsw.sh [--n N] [--queries Q] [--reps R]" >&2; exit 2 ;;
  esac
done

DATA=${PV_BENCH_DATA:-/tmp/pixvec-fmnist}
BUILD=${PV_BENCH_BUILD:-build-bench-hnsw}
T=$(nproc)

[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" >/dev/null

if [ "$(find "$DATA" -name '*.png' 2>/dev/null | wc -l)" -lt 70000 ]; then
  "$BUILD/fmnist_export" "$DATA"
fi

WORK=$(mktemp -d /tmp/pixvec-bench-hnsw.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M')

"$BUILD/bench/bench_hnsw" --data "$DATA" --work "$WORK" --n "$N" --queries "$Q" \
  --reps "$REPS" --out "$WORK/pv.kv"
echo

# Start to first answer: `pixvec query` as a whole process (exec, open the
# database, decode and embed the image, search at the default ef, print),
# on the database just built, page cache warm. Median of 10.
IMG=$(find "$DATA/test" -name '*.png' | sort | sed -n 1p)
ts=()
for i in $(seq 10); do
  a=$(date +%s%N)
  "$BUILD/pixvec" query "$WORK/db" "$IMG" -k 10 >/dev/null
  b=$(date +%s%N)
  ts+=($(( (b - a) / 1000 )))
done
FIRST_US=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}')
echo "start to first answer (pixvec query, whole process, warm cache): median of 10 = $FIRST_US us"
echo "first_answer_us=$FIRST_US" >>"$WORK/pv.kv"
echo

if [ -x "$BUILD/bench/peer_hnswlib" ]; then
  "$BUILD/bench/peer_hnswlib" "$WORK" --reps "$REPS" --threads "$T" --out "$WORK/hl.kv"
  rm -f "$WORK/hnswlib.bin"
else
  echo "peer_hnswlib: not built (libhnswlib-dev missing)"; : >"$WORK/hl.kv"
fi
echo
if [ -x "$BUILD/bench/peer_faiss_hnsw" ]; then
  OMP_NUM_THREADS=$T "$BUILD/bench/peer_faiss_hnsw" "$WORK" --reps "$REPS" --threads "$T" --out "$WORK/fa.kv"
else
  echo "peer_faiss_hnsw: not built (libfaiss-dev missing)"; : >"$WORK/fa.kv"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "## pixvec vs hnswlib vs FAISS IndexHNSWFlat, same vectors, same run"
echo
echo "- date: $START - $(date -u '+%H:%M UTC')"
echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores online," \
  "$(free -g | awk '/^Mem:/{print $2}') GiB RAM; load average before $LOAD_BEFORE, after $LOAD_AFTER"
if git rev-parse --git-dir >/dev/null 2>&1; then
  dirty=$(git status --porcelain -- . ':!bench' ':!build*' | head -1)
  echo "- tree: $(git rev-parse --short HEAD)${dirty:+, with uncommitted changes outside bench/}"
fi
echo "- $N vectors, $Q queries, M=16, ef_construction=200, k=10; queries/s on one thread, median of $REPS"
echo

awk -F= -v T="$T" '
  FNR == 1 { side++ }
  { k = $1; v = substr($0, length($1) + 2); if (side == 1) p[k] = v; else if (side == 2) h[k] = v; else f[k] = v }
  function g(a, k) { return (k in a) && a[k] != "" ? a[k] : "" }
  function r(x, y) { return (x != "" && y != "" && y + 0 > 0) ? sprintf("%.2f", x / y) : "—" }
  function n0(x) { return x == "" ? "—" : sprintf("%.0f", x) }
  function n4(x) { return x == "" ? "—" : sprintf("%.4f", x) }
  function n2(x) { return x == "" ? "—" : sprintf("%.2f", x) }
  END {
    print "| ef | pixvec recall@10 | pixvec q/s | hnswlib recall@10 | hnswlib q/s | pixvec/hnswlib q/s | FAISS recall@10 | FAISS q/s (Debian build: no SIMD kernels, 2-7x slow) | others CPU pv / hl / faiss |"
    print "|---|---|---|---|---|---|---|---|---|"
    split("10 20 40 80 120 200 400", efs, " ")
    for (i = 1; i <= 7; i++) {
      e = "ef" efs[i]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s %% |\n", efs[i],
        n4(g(p, e "_recall")), n0(g(p, e "_qps")), n4(g(h, e "_recall")), n0(g(h, e "_qps")),
        r(g(p, e "_qps"), g(h, e "_qps")), n4(g(f, e "_recall")), n0(g(f, e "_qps")),
        n0(g(p, e "_others")), n0(g(h, e "_others")), n0(g(f, e "_others"))
    }
    print ""
    print "| build | seconds | pixvec/this | others CPU |"
    print "|---|---|---|---|"
    printf "| pixvec pv_add, %d threads (decode + embed, then graph candidates), serial linking + fsync per batch | %s | 1.00 | %s %% |\n", T, n2(g(p, "build_s")), n0(g(p, "build_others"))
    printf "| hnswlib, 1 thread | %s | %s | %s %% |\n", n2(g(h, "build1_s")), r(g(p, "build_s"), g(h, "build1_s")), n0(g(h, "build1_others"))
    printf "| hnswlib, %d threads | %s | %s | %s %% |\n", T, n2(g(h, "buildT_s")), r(g(p, "build_s"), g(h, "buildT_s")), n0(g(h, "buildT_others"))
    printf "| FAISS, %d threads (no SIMD kernels) | %s | %s | %s %% |\n", T, n2(g(f, "buildT_s")), r(g(p, "build_s"), g(f, "buildT_s")), n0(g(f, "buildT_others"))
    print ""
    printf "- bytes on disk per vector: pixvec %s (data.mdb / items), hnswlib %s (saveIndex), FAISS %s (write_index); the raw vector is 3136\n", n0(g(p, "bytes_per_vec")), n0(g(h, "bytes_per_vec")), n0(g(f, "bytes_per_vec"))
    printf "- pixvec q/s are ids and scores (pv_query_opts.ids_only), as hnswlib returns labels; with each hit'"'"'s path looked up (the default), ef = 20: %s q/s\n", n0(g(p, "ef20_qps_paths"))
    printf "- start to first answer, `pixvec query DB IMG -k 10` as a whole process, page cache warm: median of 10 = %.1f ms\n", g(p, "first_answer_us") / 1000
  }' "$WORK/pv.kv" "$WORK/hl.kv" "$WORK/fa.kv"
