#!/usr/bin/env bash
# bench/run_cnn.sh - the cnn embedder's speed (issue 5) in one command:
# installs what it needs (the weights, python3-torch), builds a Release
# tree, then on the same generated inputs: pixvec's MobileNetV2 forward pass
# (bench_cnn: forward only, and pv_embed_file with decoding) and the same
# network in PyTorch (peer_torch_cnn.py), same batch size and threads.
# Then the embedders' quality: near-duplicates in photographs (bench_neardup,
# on the photographs of lomiri-wallpapers-20.04 and ukui-wallpapers, taken by
# their packages' file lists) and whether Fashion-MNIST's nearest neighbour
# shares the label (bench_nnlabel, pixels and cnn).
#
# usage: bench/run_cnn.sh [--images N] [--batch B] [--reps R]
#                         [--nnlabel-n N] [--nnlabel-queries Q] [--photos-max P]
#        (defaults 64 8 3 10000 1000 100)
#   env: PV_BENCH_BUILD (default build-bench-hnsw), PV_BENCH_DATA (default
#        /tmp/pixvec-fmnist, exported when absent), PV_BENCH_SKIP_SETUP=1
set -euo pipefail
cd "$(dirname "$0")/.."
N=64 B=8 REPS=3 NL=10000 NLQ=1000 PMAX=100
usage="usage: bench/run_cnn.sh [--images N] [--batch B] [--reps R] [--nnlabel-n N] [--nnlabel-queries Q] [--photos-max P]"
while [ $# -gt 0 ]; do
  case "$1" in
    --images) N=$2; shift 2 ;;
    --batch) B=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
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
for threads in 1 "$T"; do
  "$BUILD/bench/bench_cnn" --model "$MODEL" --images "$N" --batch "$B" --threads "$threads" \
    --reps "$REPS" --work "$WORK" --out "$WORK/pv$threads.kv"
  echo
  /usr/bin/python3 bench/peer_torch_cnn.py "$MODEL" "$WORK" "$N" --batch "$B" \
    --threads "$threads" --reps "$REPS" --out "$WORK/pt$threads.kv"
  echo
  pv=$(sed -n 's/^fwd_ips=//p' "$WORK/pv$threads.kv"); pt=$(sed -n 's/^torch_ips=//p' "$WORK/pt$threads.kv")
  echo "=> $threads thread(s), batch $B: pixvec $pv images/s, PyTorch $pt images/s, ratio $(awk -v a="$pv" -v b="$pt" 'BEGIN{printf "%.2f", a/b}')"
  echo
  rm -rf "$WORK/cnn-db" "$WORK/cnn-jpegs"
done

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
