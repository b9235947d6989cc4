#!/usr/bin/env bash
# bench/run_vit.sh - the clip embedder at CLIP ViT-B/32's shape (issue 14,
# items 5 and 6) in one command:
#   1. a CLIP ViT-B/32-shaped checkpoint with random weights (ref_vit.py gen
#      clip --full; speed does not depend on the values), into a fresh work
#      folder;
#   2. a Release build;
#   3. speed, on 1 and on all cores: pixvec's image tower at 1 and 32 images
#      per call and its text tower (bench_vit), then the same towers in
#      PyTorch, eager and jit-optimised, on the same inputs
#      (peer_torch_vit.py), with its best setting: glibc malloc tuned,
#      OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS and torch.set_num_threads =
#      the threads; one markdown table, pixvec against PyTorch's best row;
#   4. ingest: `pixvec add` of generated 640 x 480 JPEGs into a clip
#      database under /usr/bin/time -v (peak RSS, images/s), then cold-process
#      `pixvec info`, `pixvec query` and `pixvec search` on it (median of 5),
#      with the page cache warm and with the checkpoint evicted from it.
#
# usage: bench/run_vit.sh [--small] [--reps R] [--images N] [--db-images N] [--db-only]
#        (defaults 3, 64, 2000; --small: the tiny random CLIP, 1 rep, 4
#        images, 40 database images: a smoke test, under 2 minutes;
#        --db-only: step 4 alone)
#   env: PV_BENCH_BUILD (default build-bench), PV_BENCH_WORK (a fresh work
#        folder is made under it; default /tmp), PV_BENCH_SKIP_SETUP=1,
#        PV_BENCH_KEEP=1 (keep the work folder).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=3 N=64 DBN=2000 SMALL=0 SPEED=1
usage="usage: bench/run_vit.sh [--small] [--reps R] [--images N] [--db-images N] [--db-only]"
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SMALL=1 REPS=1 N=4 DBN=40; shift ;;
    --reps) REPS=$2; shift 2 ;;
    --images) N=$2; shift 2 ;;
    --db-images) DBN=$2; shift 2 ;;
    --db-only) SPEED=0; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
BUILD=${PV_BENCH_BUILD:-build-bench}
T=$(nproc)
[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" >/dev/null
mkdir -p "${PV_BENCH_WORK:-/tmp}"
WORK=$(mktemp -d "${PV_BENCH_WORK:-/tmp}/pixvec-bench-vit.XXXXXX")
[ "${PV_BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

# The reference scripts (tests/), which write the checkpoint.
mkdir "$WORK/ref"
cp tests/ref_vit.py tests/ref_clip_bpe.py "$WORK/ref/"
REF=$WORK/ref
CKPT=$WORK/clip
/usr/bin/python3 "$REF/ref_vit.py" gen clip "$CKPT" $([ $SMALL = 1 ] || echo --full)

kv() { sed -n "s/^$2=//p" "$1"; }
load() { cut -d' ' -f1 /proc/loadavg; }
# PyTorch's best setting (bench/README.md): glibc's malloc kept from
# returning memory; torch_env THREADS OPENBLAS_THREADS COMMAND...: OpenMP's
# pool (torch.set_num_threads too) at THREADS, OpenBLAS's at its own.
# Debian's torch 1.13 runs F.linear and matmul through OpenBLAS (BLAS_INFO
# generic), so with OpenBLAS at 1 thread its products use one core
# whatever OpenMP has: on more than one thread both settings are run and
# the faster kept.
torch_env() {
  env MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \
    MALLOC_TOP_PAD_=536870912 OMP_NUM_THREADS="$1" OPENBLAS_NUM_THREADS="$2" "${@:3}"
}

echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "- checkpoint: $(sed -n 's/.*"hidden_size": \([0-9]*\).*/\1/p' "$CKPT/config.json" | tr '\n' ' ')widths," \
  "$(du -m "$CKPT/model.safetensors" | cut -f1) MB of float32 weights (random); reference scripts from $REF"
echo

for t in $([ $SPEED = 1 ] && echo 1 "$T"); do
  echo "load average before pixvec, $t thread(s): $(load)" | tee "$WORK/load-pv$t"
  "$BUILD/bench/bench_vit" --model "$CKPT" --images "$N" --threads "$t" --reps "$REPS" \
    --work "$WORK" --out "$WORK/pv$t.kv"
  echo
  for ob in 1 $([ "$t" = 1 ] || echo "$t"); do
    echo "load average before PyTorch, $t thread(s), OpenBLAS $ob: $(load)" | tee "$WORK/load-pt$t-$ob"
    torch_env "$t" "$ob" /usr/bin/python3 bench/peer_torch_vit.py "$CKPT" "$WORK" "$N" --threads "$t" \
      --reps "$REPS" --bpe "$REF" --out "$WORK/pt$t-$ob.kv" 2>"$WORK/pt$t.err" ||
      { cat "$WORK/pt$t.err" >&2; exit 1; }
    echo
  done
done

if [ $SPEED = 1 ]; then
echo "## CLIP image and text towers: pixvec against PyTorch's best setting"
echo
echo "Rates are medians of $REPS; \"CPU\" is the rate per CPU-second (user + system, all threads), which a"
echo "neighbour on the shared cores disturbs less than wall time. GFLOP/s count the whole"
echo "architecture ($(awk -v m="$(kv "$WORK/pv1.kv" macs)" 'BEGIN{printf "%.3g", 2*m/1e9}') GFLOP per image)."
echo
echo "| row | pixvec | PyTorch best (which; the other) | pixvec/PyTorch | per CPU-second: pixvec / PyTorch = ratio | GFLOP/s: pixvec / PyTorch (sgemm 2048^3) | GFLOP per CPU-second: pixvec / PyTorch (sgemm's) | load avg before: pixvec / PyTorch |"
echo "|---|---|---|---|---|---|---|---|"
for t in 1 "$T"; do
  pv=$WORK/pv$t.kv
  lp=$(sed 's/.*: //' "$WORK/load-pv$t")
  for row in b1 b32 text; do
    case $row in
      b1) what="images/s, 1 per call"; cnt=$N ;;
      b32) what="images/s, 32 per call"; cnt=$N ;;
      text) what="texts/s, 1 per call"; cnt=$(kv "$pv" ntexts) ;;
    esac
    r=$(kv "$pv" ${row}_rate) cpu=$(awk -v u="$(kv "$pv" ${row}_user)" -v s="$(kv "$pv" ${row}_sys)" -v n="$cnt" 'BEGIN{if (u+s > 0) printf "%.2f", n/(u+s); else print "—"}')
    # PyTorch's best of jit/eager under each pool setting; the others listed
    rb=0 best="" others=""
    for f in "$WORK"/pt$t-*.kv; do
      ob=${f##*-}; ob=${ob%.kv}
      for m in jit eager; do
        x=$(kv "$f" ${row}_${m}_rate)
        name="$m, OpenBLAS $ob"
        if awk -v a="$x" -v b="$rb" 'BEGIN{exit !(a > b)}'; then
          [ -z "$best" ] || others="$others${others:+, }$(printf %.2f "$rb") $best"
          rb=$x best=$name bf=$f bm=$m
        else
          others="$others${others:+, }$(printf %.2f "$x") $name"
        fi
      done
    done
    lt=$(sed 's/.*: //' "$WORK/load-pt$t-$(basename "$bf" .kv | sed 's/^pt[0-9]*-//')")
    cb=$(awk -v c="$(kv "$bf" ${row}_${bm}_cpu)" -v n="$cnt" 'BEGIN{if (c > 0) printf "%.2f", n/c; else print "—"}')
    if [ $row = text ]; then
      gf="—" gt="—"
    else
      gf=$(awk -v r="$r" -v q="$rb" -v m="$(kv "$pv" macs)" -v p="$(kv "$pv" peak)" \
        'BEGIN{printf "%.1f / %.1f (%.1f)", 2*m*r/1e9, 2*m*q/1e9, p}')
      gt=$(awk -v r="$cpu" -v q="$cb" -v m="$(kv "$pv" macs)" -v p="$(kv "$pv" peak_cpu)" \
        'BEGIN{printf "%.1f / %.1f (%.1f)", 2*m*r/1e9, 2*m*q/1e9, p}')
    fi
    printf "| %s thread(s), %s | %.2f | %.2f (%s; %s) | %.2f | %s / %s = %s | %s | %s | %s / %s |\n" \
      "$t" "$what" "$r" "$rb" "$best" "$others" \
      "$(awk -v a="$r" -v b="$rb" 'BEGIN{print a/b}')" "$cpu" "$cb" "$(awk -v a="$cpu" -v b="$cb" 'BEGIN{if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "—"}')" \
      "$gf" "$gt" "$lp" "$lt"
  done
done
echo
echo "Worst cosine, PyTorch's vectors to pixvec's (jit, 1 thread): images" \
  "$(awk -v c="$(kv "$WORK/pt1-1.kv" b32_jit_cos)" 'BEGIN{printf "%.7f", c}'), texts" \
  "$(awk -v c="$(kv "$WORK/pt1-1.kv" text_jit_cos)" 'BEGIN{printf "%.7f", c}'); text tokens per query $(kv "$WORK/pt1-1.kv" text_tokens_min)" \
  "to $(kv "$WORK/pt1-1.kv" text_tokens_max), mean $(awk -v c="$(kv "$WORK/pt1-1.kv" text_tokens_mean)" 'BEGIN{printf "%.1f", c}') (the checkpoint's tiny vocabulary)."
echo
fi

# ---- item 6: ingest, and queries from a cold process ----------------------------
PV=$BUILD/pixvec
DB=$WORK/db
"$BUILD/bench/bench_vit" --gen-jpegs "$WORK/jpegs" "$DBN"
"$PV" init "$DB" --embedder clip --model "$CKPT" >/dev/null
echo "load average before add: $(load)"
/usr/bin/time -v "$PV" add "$DB" "$WORK/jpegs" --quiet 2>"$WORK/add.time"
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/add.time" |
  awk -F: '{s=0; for (i=1;i<=NF;i++) s=s*60+$i; print s}')
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/add.time")
user=$(sed -n 's/.*User time (seconds): //p' "$WORK/add.time")
sys=$(sed -n 's/.*System time (seconds): //p' "$WORK/add.time")

# median wall seconds of 5 runs of a command, output discarded
med5() {
  local ts=()
  for _ in 1 2 3 4 5; do
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    ts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  done
  printf '%s\n' "${ts[@]}" | sort -g | sed -n 3p | awk '{printf "%.3f", $1}'
}
# the checkpoint's pages dropped from the page cache (only this file's)
evict() {
  /usr/bin/python3 -c 'import os,sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' \
    "$CKPT/model.safetensors"
}
med5cold() {
  local ts=()
  for _ in 1 2 3 4 5; do
    evict
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    ts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  done
  printf '%s\n' "${ts[@]}" | sort -g | sed -n 3p | awk '{printf "%.3f", $1}'
}
Q=$WORK/jpegs/000007.jpg
"$PV" query "$DB" "$Q" >/dev/null # the first run pages the checkpoint in
echo "load average before the cold-process queries: $(load)"
ti=$(med5 "$PV" info "$DB") tq=$(med5 "$PV" query "$DB" "$Q") ts=$(med5 "$PV" search "$DB" "a dog on a beach")
ci=$(med5cold "$PV" info "$DB") cq=$(med5cold "$PV" query "$DB" "$Q") cs=$(med5cold "$PV" search "$DB" "a dog on a beach")
echo
echo "## ingest and cold-process queries ($DBN JPEGs of 640 x 480, clip database)"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| \`pixvec add\`, all cores ($T workers, 1 BLAS thread each) | $(awk -v n="$DBN" -v w="$wall" 'BEGIN{printf "%.2f images/s (%.1f s)", n/w, w}'); CPU user $user s, system $sys s |"
echo "| \`pixvec add\` peak RSS | $(awk -v k="$rss" 'BEGIN{printf "%.0f MB", k/1024}') (the checkpoint's mapped pages count while resident) |"
echo "| \`pixvec info DB\` (open + model load: map, hash, check), page cache warm | $ti s |"
echo "| \`pixvec query DB IMG\`, cold process, page cache warm | $tq s |"
echo "| \`pixvec search DB TEXT\`, cold process, page cache warm | $ts s |"
echo "| \`pixvec info DB\`, checkpoint evicted from the page cache | $ci s |"
echo "| \`pixvec query DB IMG\`, checkpoint evicted | $cq s |"
echo "| \`pixvec search DB TEXT\`, checkpoint evicted | $cs s |"
echo
echo "(medians of 5; the query image is one of the database's JPEGs; HNSW search, k 10)"
