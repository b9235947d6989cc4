#!/usr/bin/env bash
# bench/run_formats.sh - decoding cost per image format (issue 18): the
# same photographs (lomiri-wallpapers-20.04 and ukui-wallpapers, 1920-4K
# JPEGs) written as JPEG (the originals), PNG, WebP (cwebp -q 90), HEIC
# (heif-enc -q 90), TIFF (LZW), GIF and BMP, then, for each format, `pixvec
# add` on one thread into a fresh database with the pixels embedder (28x28
# grey: the cost is nearly all decoding and reducing), against Pillow (the
# decoder a Python training script uses; python3-pil, Debian's 9.4) doing
# the same reduction at its best documented setting: Image.draft for JPEG
# (DCT scaling, as pixvec does), then convert("L") and a BOX resize to
# 28x28. Pillow has no HEIF reader in Debian (pillow-heif is not packaged).
# Medians of --reps runs each; files are read from the page cache (one
# untimed warm-up pass per format).
#
# usage: bench/run_formats.sh [--n N] [--reps R] [--small]
#   --n N     photographs (default 24)      --reps R   runs per cell (default 3)
#   --small   4 photographs, 1 run (CI's smoke run)
#   env: PV_BENCH_BUILD (default build-bench), PV_BENCH_DATA (default
#        /tmp/pixvec-bench; the files are made in $PV_BENCH_DATA/formats-N
#        when absent), PV_BENCH_WORK (default /tmp), PV_BENCH_SKIP_SETUP=1
set -euo pipefail
cd "$(dirname "$0")/.."
N=24 REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --small) N=4; REPS=1; shift ;;
    *) echo "usage: bench/run_formats.sh [--n N] [--reps R] [--small]" >&2; exit 2 ;;
  esac
done
BUILD=${PV_BENCH_BUILD:-build-bench}
DATA=${PV_BENCH_DATA:-/tmp/pixvec-bench}
mkdir -p "${PV_BENCH_WORK:-/tmp}"
WORK=$(mktemp -d "${PV_BENCH_WORK:-/tmp}/pixvec-formats.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench >/dev/null
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target pixvec >/dev/null
PIXVEC=$(realpath "$BUILD/pixvec")
FORMATS="jpg png webp heic tif gif bmp"

SET=$DATA/formats-$N
if [ ! -f "$SET/done" ]; then
  rm -rf "$SET"
  mkdir -p "$SET/all"
  bash bench/pkg_photos.sh "$SET/all" lomiri-wallpapers-20.04 ukui-wallpapers >/dev/null 2>&1
  mkdir -p "$SET/jpg"
  # the first N JPEGs by name
  find "$SET/all" -name '*.jpg' | LC_ALL=C sort | head -n "$N" | while read -r f; do
    cp -L "$f" "$SET/jpg/$(basename "$f")"
  done
  for fmt in png webp heic tif gif bmp; do mkdir -p "$SET/$fmt"; done
  for f in "$SET"/jpg/*.jpg; do
    b=$(basename "$f" .jpg)
    # -strip: the wallpapers' XMP would become a PNG zTXt chunk past
    # Pillow's decompression limit (it refuses the file)
    convert "$f" -strip "$SET/png/$b.png"
    cwebp -quiet -q 90 -metadata none "$f" -o "$SET/webp/$b.webp"
    heif-enc -q 90 "$f" -o "$SET/heic/$b.heic" >/dev/null
    convert "$f" -strip -compress lzw "$SET/tif/$b.tif"
    convert "$f" -strip "$SET/gif/$b.gif"
    convert "$f" -strip "BMP3:$SET/bmp/$b.bmp"
  done
  rm -rf "$SET/all"
  touch "$SET/done"
fi
n=$(find "$SET/jpg" -name '*.jpg' | wc -l)
[ "$n" -gt 0 ] || { echo "run_formats: no photographs in $SET/jpg" >&2; exit 1; }

now() { date +%s.%N; }
median() { LC_ALL=C sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

cat >"$WORK/pil.py" <<'PY'
import sys, time
from PIL import Image
files = sys.argv[1:]
t = time.perf_counter()
for p in files:
    with Image.open(p) as im:
        im.draft("RGB", (28, 28))  # JPEG: DCT scaling to the smallest size >= 28
        im.convert("L").resize((28, 28), Image.Resampling.BOX)
print(time.perf_counter() - t)
PY

echo "## Decoding per format: pixvec add (1 thread, pixels 28x28) vs Pillow $(/usr/bin/python3 -c 'import PIL; print(PIL.__version__)')"
echo
echo "$n photographs, $REPS run(s) each, medians; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo
echo "| format | MB | pixvec img/s | Pillow img/s | pixvec / Pillow |"
echo "|:--|--:|--:|--:|--:|"
for fmt in $FORMATS; do
  files=("$SET/$fmt"/*)
  mb=$(du -sm "$SET/$fmt" | cut -f1)
  cat "${files[@]}" >/dev/null
  ts=()
  for r in $(seq 1 "$REPS"); do
    rm -rf "$WORK/db"
    "$PIXVEC" init "$WORK/db" --embedder pixels >/dev/null
    t0=$(now)
    "$PIXVEC" add "$WORK/db" "$SET/$fmt" --threads 1 --quiet
    t1=$(now)
    ts+=("$(echo "$t1 - $t0" | bc -l)")
  done
  added=$("$PIXVEC" info "$WORK/db" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["items"])')
  [ "$added" = "$n" ] || { echo "run_formats: pixvec added $added of $n $fmt files" >&2; exit 1; }
  pv=$(printf '%s\n' "${ts[@]}" | median)
  pil="n/a" ratio="n/a"
  if [ "$fmt" != heic ]; then
    ps=()
    for r in $(seq 1 "$REPS"); do ps+=("$(/usr/bin/python3 "$WORK/pil.py" "${files[@]}")"); done
    pl=$(printf '%s\n' "${ps[@]}" | median)
    pil=$(printf '%.1f' "$(echo "$n / $pl" | bc -l)")
    ratio=$(printf '%.2fx' "$(echo "$pl / $pv" | bc -l)")
  fi
  printf '| %s | %s | %.1f | %s | %s |\n' "$fmt" "$mb" "$(echo "$n / $pv" | bc -l)" "$pil" "$ratio"
done
echo
echo "pixvec's time includes its process start, the database's create and commit (a few ms)."
