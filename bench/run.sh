#!/usr/bin/env bash
# bench/run.sh - the walking skeleton's benchmark in one command: installs the
# peers, builds (Release) in build-bench/, exports Fashion-MNIST as PNGs if it
# is not there yet, runs bench (pixvec) and peer_faiss on the same vectors, and
# prints one table side by side.
#
# Its own build directory, so it never reconfigures build/ (scripts/test.sh
# builds that one with PV_BENCH=OFF). Both sides get the same thread count:
# OPENBLAS_NUM_THREADS and OMP_NUM_THREADS default to the cores online.
#
# usage: bench/run.sh [--n N] [--queries Q] [--reps R]
#   env: PV_BENCH_DATA (default /tmp/pixvec-fmnist), PV_BENCH_BUILD
#        (default build-bench), OPENBLAS_NUM_THREADS, OPENBLAS_CORETYPE.
set -euo pipefail
cd "$(dirname "$0")/.."

N=60000 Q=200 REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2 ;;
    --queries) Q=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--n N] [--queries Q] [--reps R]" >&2; exit 2 ;;
  esac
done

DATA=${PV_BENCH_DATA:-/tmp/pixvec-fmnist}
BUILD=${PV_BENCH_BUILD:-build-bench}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$OPENBLAS_NUM_THREADS}

bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null

# fmnist_export writes 60000 train and 10000 test PNGs; redo it if short.
if [ "$(find "$DATA" -name '*.png' 2>/dev/null | wc -l)" -lt 70000 ]; then
  "$BUILD/fmnist_export" "$DATA"
fi

WORK=$(mktemp -d /tmp/pixvec-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

"$BUILD/bench/bench" --data "$DATA" --n "$N" --queries "$Q" --reps "$REPS" \
  --work "$WORK" --out "$WORK/pixvec.kv" | tee "$WORK/pixvec.md"
echo
if [ -x "$BUILD/bench/peer_faiss" ]; then
  "$BUILD/bench/peer_faiss" "$WORK" --reps "$REPS" --out "$WORK/faiss.kv" | tee "$WORK/faiss.md"
else
  echo "peer_faiss: not built (libfaiss-dev missing): the FAISS column is empty"
  : >"$WORK/faiss.kv"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "## pixvec vs FAISS, same vectors, same run"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores online," \
  "$(free -g | awk '/^Mem:/{print $2}') GiB RAM; load average before $LOAD_BEFORE, after $LOAD_AFTER"
if git rev-parse --git-dir >/dev/null 2>&1; then
  dirty=$(git status --porcelain -- . ':!bench' ':!build*' | head -1)
  echo "- tree: $(git rev-parse --short HEAD)${dirty:+, with uncommitted changes outside bench/}"
fi
echo "- threads: OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo

# Joins the two key=value files. Ratios are pixvec/FAISS: of times (below 1:
# pixvec is faster) or of rates (above 1: pixvec is faster), as labelled. The
# last column is the CPU other processes used while the row was measured.
awk -F= '
  FNR == 1 { side++ }
  { k = $1; v = substr($0, length($1) + 2); if (side == 1) p[k] = v; else f[k] = v }
  function has(a, k) { return (k in a) && a[k] != "" }
  function ms(a, k) { return has(a, k) ? sprintf("%.3f", a[k]) : "" }
  function ratio(what, x, y) { return (x != "" && y != "" && y + 0 > 0) ? what " " sprintf("%.2f", x / y) : "—" }
  function busy(pk, fk) { return (has(p, pk) ? p[pk] " %" : "—") (fk != "" && has(f, fk) ? " / " f[fk] " %" : "") }
  function row(name, pv, fv, r, o,   n, i, x) {
    printf "| %s | %s | %s | %s | %s |\n", name, pv == "" ? "—" : pv, fv == "" ? "—" : fv, r, o
    n = split(o, x, /[^0-9]+/)
    for (i = 1; i <= n; i++)
      if (x[i] + 0 > 10) { noisy++; break }
  }
  END {
    printf "- OpenBLAS: %s; core %s (%s threads)\n", p["openblas"], p["openblas_core"], p["blas_threads"]
    printf "- data: %s Fashion-MNIST train PNGs (784-d pixels embedding), %s test PNGs as queries, threshold %s, medians of %s runs\n\n", p["n"], p["nq"], p["threshold"], p["reps"]
    printf "| measure | pixvec | FAISS %s, Debian build: no SIMD scan kernels | pixvec/FAISS | others%s CPU (pixvec / FAISS) |\n|---|---|---|---|---|\n", has(f, "faiss_version") ? f["faiss_version"] : "(missing)", "\047"
    row("decode-only, 1 thread (images/s)", p["decode1_ips"], "", "—", busy("others_decode_pct", ""))
    row("decode-only, " p["cores"] " threads (images/s)", p["decodeN_ips"], "", "—", busy("others_decode_pct", ""))
    row("ingest incl. HNSW (" p["hnsw"] "), " p["cores"] " threads, committed (images/s)", p["ingest_ips"], "", "—", busy("others_ingest_pct", ""))
    row("ingest, 1 worker thread (images/s)", p["ingest1_ips"], "", "—", busy("others_ingest_pct", ""))
    row("query embed only, back to back, median (ms)", ms(p, "embed_med_ms"), "", "—", busy("others_q_pct", ""))
    row("query embed only, right after a scan, median (ms)", ms(p, "embed_after_scan_med_ms"), "", "—", busy("others_q_pct", ""))
    row("exact top-10, one vector query, median (ms)", ms(p, "qvec_med_ms"), ms(f, "q_med_ms"), ratio("time", p["qvec_med_ms"], f["q_med_ms"]), busy("others_q_pct", "others_q_pct"))
    row("exact top-10, one vector query, p95 (ms)", ms(p, "qvec_p95_ms"), ms(f, "q_p95_ms"), ratio("time", p["qvec_p95_ms"], f["q_p95_ms"]), busy("others_q_pct", "others_q_pct"))
    row("exact top-10, one image query, median (ms)", ms(p, "qimg_med_ms"), "", "—", busy("others_q_pct", ""))
    row("exact top-10, " p["nq"] " queries in one call (ms/query)", "no batched API", ms(f, "batch_per_q_ms"), "—", has(f, "others_batch_pct") ? "— / " f["others_batch_pct"] " %" : "")
    row("all pairs: pixvec scan / FAISS range_search (s)", p["dups_scan_s"], f["range_s"], ratio("time", p["dups_scan_s"], f["range_s"]), busy("others_dups_pct", "others_range_pct"))
    row("all pairs: pv_find_dups incl. grouping (s)", p["dups_wall_s"], f["range_s"], ratio("time", p["dups_wall_s"], f["range_s"]), busy("others_dups_pct", "others_range_pct"))
    row("all pairs: pairs found", p["dups_pairs"], f["range_pairs"], "—", "")
    row("all pairs: GFLOP/s on the products each computes", p["dups_gflops"], f["range_gflops"], ratio("rate", p["dups_gflops"], f["range_gflops"]), busy("others_dups_pct", "others_range_pct"))
    row("all pairs: GFLOP/s / sgemm peak", sprintf("%.2f", p["dups_peak_ratio"]), has(f, "range_gflops") ? sprintf("%.2f", f["range_gflops"] / p["peak_all"]) : "", "—", "")
    row("sgemm 2048^3 peak, " p["blas_threads"] " threads / 1 (GFLOP/s)", p["peak_all"] " / " p["peak_1"], "same OpenBLAS", "—", busy("others_peak_pct", ""))
    if (has(f, "top1_id_pct"))
      row("agreement: top-1 id / top-1 score / top-10 overlap (%)", "reference", f["top1_id_pct"] " / " f["top1_score_pct"] " / " f["top10_overlap_pct"], "—", "")
    if (noisy)
      printf "\nWARNING: %d rows were measured while other processes used over 10 %% of the machine; re-run on a quiet machine before quoting them.\n", noisy
  }' "$WORK/pixvec.kv" "$WORK/faiss.kv"
