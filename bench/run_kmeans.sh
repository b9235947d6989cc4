#!/usr/bin/env bash
# bench/run_kmeans.sh - the k-means and IVF benchmark of issue 4 in one
# command: installs the peers (FAISS, scikit-learn), builds a Release tree,
# exports Fashion-MNIST as PNGs if it is not there yet, then on the same
# 60,000 x 784 vectors:
#   k-means, k = 100 and 1024, 20 iterations: pixvec (index/kmeans.c), FAISS
#     Clustering, scikit-learn KMeans; every one's centroids scored by one
#     function (the inertia of all vectors);
#   IVF-Flat, nlist = 256 and 1024, nprobe 1..64: pixvec through its public
#     API (pv_ivf_train, pv_query_vector) and FAISS IndexIVFFlat.
#
# usage: bench/run_kmeans.sh [--n N] [--queries Q] [--reps R]   (60000 1000 3)
#   env: PV_BENCH_DATA (default /tmp/pixvec-fmnist), PV_BENCH_BUILD
#        (default build-bench-hnsw), PV_BENCH_SKIP_SETUP=1, PV_BENCH_SKLEARN_K
#        (default "100,1024"; scikit-learn takes about 2 minutes at 1024).
set -euo pipefail
cd "$(dirname "$0")/.."

N=60000 Q=1000 REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2 ;;
    --queries) Q=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    *) echo "usage: bench/run_kmeans.sh [--n N] [--queries Q] [--reps R]" >&2; exit 2 ;;
  esac
done

DATA=${PV_BENCH_DATA:-/tmp/pixvec-fmnist}
BUILD=${PV_BENCH_BUILD:-build-bench-hnsw}
SK_K=${PV_BENCH_SKLEARN_K:-100,1024}
T=$(nproc)
# Debian's python3 (with python3-sklearn), not whatever python3 is first on PATH.
PY=/usr/bin/python3

[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" >/dev/null

if [ "$(find "$DATA" -name '*.png' 2>/dev/null | wc -l)" -lt 70000 ]; then
  "$BUILD/fmnist_export" "$DATA"
fi

WORK=$(mktemp -d /tmp/pixvec-bench-kmeans.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M')

"$BUILD/bench/bench_kmeans" embed --data "$DATA" --work "$WORK" --n "$N"
echo
"$BUILD/bench/bench_kmeans" train --work "$WORK" --k 100,1024 --reps "$REPS" --out "$WORK/km_pv.kv"
echo
if [ -x "$BUILD/bench/peer_faiss_kmeans" ]; then
  OMP_NUM_THREADS=$T "$BUILD/bench/peer_faiss_kmeans" "$WORK" --k 100,1024 --reps "$REPS" \
    --threads "$T" --out "$WORK/km_fa.kv"
else
  echo "peer_faiss_kmeans: not built (libfaiss-dev missing)"; : >"$WORK/km_fa.kv"
fi
echo
if $PY -c 'import sklearn' 2>/dev/null; then
  OMP_NUM_THREADS=$T $PY bench/peer_sklearn_kmeans.py "$WORK" --k "$SK_K" --reps 1 \
    --out "$WORK/km_sk.kv"
else
  echo "scikit-learn: not installed (python3-sklearn)"; : >"$WORK/km_sk.kv"
fi
echo
"$BUILD/bench/bench_kmeans" score --work "$WORK" --k 100,1024 --out "$WORK/km_score.kv"
echo

rm -f "$WORK/base.f32"
"$BUILD/bench/bench_ivf" --data "$DATA" --work "$WORK" --n "$N" --queries "$Q" --reps "$REPS" \
  --out "$WORK/ivf_pv.kv"
if [ -x "$BUILD/bench/peer_faiss_ivf" ]; then
  OMP_NUM_THREADS=$T "$BUILD/bench/peer_faiss_ivf" "$WORK" --reps "$REPS" --threads "$T" \
    --out "$WORK/ivf_fa.kv"
else
  echo "peer_faiss_ivf: not built (libfaiss-dev missing)"; : >"$WORK/ivf_fa.kv"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "## pixvec vs FAISS vs scikit-learn: k-means and IVF, same vectors, same run"
echo
echo "- date: $START - $(date -u '+%H:%M UTC')"
echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores online," \
  "$(free -g | awk '/^Mem:/{print $2}') GiB RAM; load average before $LOAD_BEFORE, after $LOAD_AFTER"
if git rev-parse --git-dir >/dev/null 2>&1; then
  dirty=$(git status --porcelain -- . ':!bench' ':!build*' | head -1)
  echo "- tree: $(git rev-parse --short HEAD)${dirty:+, with uncommitted changes outside bench/}"
fi
echo "- $N vectors (pixvec's pixels embedding of the Fashion-MNIST train images), $Q queries;" \
  "seconds and queries/s are medians of $REPS runs (k-means: seeds 1234..; scikit-learn: 1 run)"
echo

awk -F= '
  { side = FILENAME ~ /km_pv/ ? 1 : FILENAME ~ /km_fa/ ? 2 : FILENAME ~ /km_sk/ ? 3 : FILENAME ~ /km_score/ ? 4 : FILENAME ~ /ivf_pv/ ? 5 : 6 }
  { k = $1; v = substr($0, length($1) + 2); a[side, k] = v }
  function g(s, k) { return ((s, k) in a) ? a[s, k] : "" }
  function r(x, y) { return (x != "" && y != "" && y + 0 > 0) ? sprintf("%.2f", x / y) : "—" }
  function n0(x) { return x == "" ? "—" : sprintf("%.0f", x) }
  function n2(x) { return x == "" ? "—" : sprintf("%.2f", x) }
  function n4(x) { return x == "" ? "—" : sprintf("%.4f", x) }
  function iv(p) { return g(4, p "_inertia") == "" ? "—" : sprintf("%.1f [%.1f, %.1f]", g(4, p "_inertia"), g(4, p "_min"), g(4, p "_max")) }
  END {
    # sides: 1 pixvec km, 2 faiss km, 3 sklearn km, 4 scores, 5 pixvec ivf, 6 faiss ivf
    print "| k | pixvec s | FAISS s | scikit-learn s | pixvec/FAISS time | pixvec inertia, mean [min, max] | FAISS inertia | scikit-learn inertia | pixvec/FAISS mean inertia |"
    print "|---|---|---|---|---|---|---|---|---|"
    split("100 1024", ks, " ")
    for (i = 1; i <= 2; i++) {
      k = "k" ks[i]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", ks[i],
        n2(g(1, k "_s")), n2(g(2, k "_s")), n2(g(3, k "_s")), r(g(1, k "_s"), g(2, k "_s")),
        iv(k "_pixvec"), iv(k "_faiss"), iv(k "_sklearn"),
        (g(4, k "_faiss_inertia") != "" ? sprintf("%.4f", g(4, k "_pixvec_inertia") / g(4, k "_faiss_inertia")) : "—")
    }
    print ""
    split("256 1024", ls, " ")
    split("1 2 3 4 6 8 12 16 24 32 48 64", ps, " ")
    for (i = 1; i <= 2; i++) {
      l = "l" ls[i]
      printf "IVF-Flat, nlist %s: train (k-means + listing every item) pixvec %s s, FAISS %s s (train + add)\n\n", ls[i], n2(g(5, l "_train_s")), n2(g(6, l "_train_s"))
      print "| nprobe | pixvec recall@10 | pixvec q/s | FAISS recall@10 | FAISS q/s (no SIMD kernels) | pixvec/FAISS q/s |"
      print "|---|---|---|---|---|---|"
      for (j = 1; j <= 12; j++) {
        p = l "_p" ps[j]
        printf "| %s | %s | %s | %s | %s | %s |\n", ps[j], n4(g(5, p "_recall")), n0(g(5, p "_qps")),
          n4(g(6, p "_recall")), n0(g(6, p "_qps")), r(g(5, p "_qps"), g(6, p "_qps"))
      }
      print ""
    }
  }' "$WORK/km_pv.kv" "$WORK/km_fa.kv" "$WORK/km_sk.kv" "$WORK/km_score.kv" "$WORK/ivf_pv.kv" "$WORK/ivf_fa.kv"
