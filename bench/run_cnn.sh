#!/usr/bin/env bash
# bench/run_cnn.sh - the cnn embedder's speed (issue 5) in one command:
# installs what it needs (the weights, python3-torch), builds a Release
# tree, then on the same generated inputs: pixvec's MobileNetV2 forward pass
# (bench_cnn: forward only at batch 1, 8 and 32, and pv_embed_file with
# decoding) and the same network in PyTorch (peer_torch_cnn.py: eager,
# channels_last and jit, glibc malloc as is and tuned), same batch sizes and
# threads; one table of pixvec against the best PyTorch row.
# Then the embedders' quality: near-duplicates in photographs (bench_neardup,
# on the photographs of lomiri-wallpapers-20.04 and ukui-wallpapers, taken by
# their packages' file lists) and whether Fashion-MNIST's nearest neighbour
# shares the label (bench_nnlabel, pixels and cnn).
#
# usage: bench/run_cnn.sh [--images N] [--batch B] [--batches "B ..."] [--reps R] [--rounds K]
#                         [--nnlabel-n N] [--nnlabel-queries Q] [--photos-max P]
#                         [--speed-only]
#        (defaults 64 8 "1 8 32" 3 1 10000 1000 100; --batch is the one
#        pv_embed_file and the sgemm peak are measured beside; --speed-only
#        stops after the speed table)
#   env: PV_BENCH_BUILD (default build-bench-hnsw), PV_BENCH_DATA (default
#        /tmp/pixvec-fmnist, exported when absent), PV_BENCH_SKIP_SETUP=1
set -euo pipefail
cd "$(dirname "$0")/.."
N=64 B=8 BATCHES="1 8 32" REPS=3 ROUNDS=1 NL=10000 NLQ=1000 PMAX=100 SPEED_ONLY=0
usage="usage: bench/run_cnn.sh [--images N] [--batch B] [--batches \"B ...\"] [--reps R] [--rounds K] [--nnlabel-n N] [--nnlabel-queries Q] [--photos-max P] [--speed-only]"
while [ $# -gt 0 ]; do
  case "$1" in
    --images) N=$2; shift 2 ;;
    --batch) B=$2; shift 2 ;;
    --batches) BATCHES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --speed-only) SPEED_ONLY=1; shift ;;
    --nnlabel-n) NL=$2; shift 2 ;;
    --nnlabel-queries) NLQ=$2; shift 2 ;;
    --photos-max) PMAX=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
BUILD=${PV_BENCH_BUILD:-build-bench-hnsw}
DATA=${PV_BENCH_DATA:-/tmp/pixvec-fmnist}
T=$(nproc)
MODEL=/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors
[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" >/dev/null
WORK=$(mktemp -d /tmp/pixvec-bench-cnn.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
# PyTorch at its best is a search over how it is run: eager NCHW and eager
# channels_last with glibc malloc as is, and those two and jit (trace +
# freeze + optimize_for_inference) with malloc tuned (the thresholds keep the big activation
# buffers on the heap instead of mmap + zero-fill per call); threads are
# fixed through the environment before python starts. The table compares
# pixvec with the best PyTorch row of each (batch, threads).
TUNED="MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=536870912"
# Each (threads, batch) runs pixvec, then the peer, back to back, so a
# neighbour's load lands on both sides; rounds repeat the whole sweep. Per round
# and row, pixvec's images/s over the best PyTorch row's is the ratio; the
# table gives the medians over the rounds.
for round in $(seq 1 "$ROUNDS"); do
  echo "### round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  for threads in 1 "$T"; do
    for b in $BATCHES; do
      full=0; [ "$b" = "$B" ] && [ "$round" = 1 ] && full=1
      "$BUILD/bench/bench_cnn" --model "$MODEL" --images "$N" --batch "$b" --threads "$threads" \
        --reps "$REPS" --work "$WORK" --out "$WORK/pv.kv" --forward-only $((1 - full)) \
        | { [ "$full" = 1 ] && cat || grep '^| forward'; }
      rm -rf "$WORK/cnn-db" "$WORK/cnn-jpegs"
      echo
      for malloc in default tuned; do
        env=() modes=eager,cl
        [ "$malloc" = tuned ] && { read -r -a env <<<"$TUNED"; modes=eager,cl,jit; }
        env "${env[@]}" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS=1 /usr/bin/python3 \
          bench/peer_torch_cnn.py "$MODEL" "$WORK" "$N" --threads "$threads" --reps "$REPS" \
          --batches "$b" --modes "$modes" --out "$WORK/pt-$malloc.kv"
        echo
      done
      # a row per (threads, batch): pv best mode ratio eager cl jit
      pv=$(sed -n 's/^fwd_ips=//p' "$WORK/pv.kv")
      awk -v pv="$pv" -v t="$threads" -v b="$b" -F= '
        FNR == 1 { malloc = FILENAME ~ /tuned/ ? "tuned" : "default" }
        $1 ~ "^torch_[a-z]+_b" b "$" {
          m = $1; sub(/^torch_/, "", m); sub(/_b[0-9]+$/, "", m)
          if ($2 + 0 > best) { best = $2 + 0; bm = m "/" malloc }
          if ($2 + 0 > mode[m]) mode[m] = $2 + 0
        }
        END { printf "%s %s %.1f %.1f %s %.3f %.1f %.1f %.1f\n", t, b, pv, best, bm, pv / best,
                     mode["eager"], mode["cl"], mode["jit"] }' \
        "$WORK/pt-default.kv" "$WORK/pt-tuned.kv" >>"$WORK/rows.txt"
    done
  done
done

echo "### pixvec against PyTorch at its best ($N images, median of $REPS passes, median of $ROUNDS rounds)"
echo
echo "| threads | batch | pixvec images/s | best PyTorch images/s (best row: mode/malloc, per round) | pixvec / best (per round) | PyTorch eager | channels_last | jit |"
echo "|---|---|---|---|---|---|---|---|"
for threads in 1 "$T"; do
  for b in $BATCHES; do
    awk -v t="$threads" -v b="$b" '
      function med(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      $1 == t && $2 == b { n++; pv[n] = $3; best[n] = $4; bm = bm (n > 1 ? " " : "") $5
                           r[n] = $6; rs = rs (n > 1 ? " " : "") sprintf("%.2f", $6)
                           e[n] = $7; c[n] = $8; j[n] = $9 }
      END { printf "| %s | %s | %.1f | %.1f (%s) | **%.2f** (%s) | %.1f | %.1f | %.1f |\n", t, b,
                   med(pv, n), med(best, n), bm, med(r, n), rs, med(e, n), med(c, n), med(j, n) }' \
      "$WORK/rows.txt"
  done
done
echo

[ "$SPEED_ONLY" = 1 ] && exit 0
echo "## embedder quality"
echo
bash bench/pkg_photos.sh "$WORK/photos" lomiri-wallpapers-20.04 ukui-wallpapers
"$BUILD/bench/bench_neardup" --work "$WORK" --photos "$WORK/photos" --max "$PMAX"
echo
if [ "$(find "$DATA" -name '*.png' 2>/dev/null | wc -l)" -lt 70000 ]; then
  "$BUILD/fmnist_export" "$DATA"
fi
echo "### Fashion-MNIST: does the nearest neighbour share the label?"
echo
echo "| embedder | stored | queries | nearest neighbour has the query's label | add | query, whole call |"
echo "|---|---|---|---|---|---|"
for emb in pixels cnn; do
  mkdir -p "$WORK/nnlabel-$emb"
  "$BUILD/bench/bench_nnlabel" --data "$DATA" --work "$WORK/nnlabel-$emb" --n "$NL" \
    --queries "$NLQ" --embedder "$emb" | grep -v '^$'
done
