#!/usr/bin/env bash
# bench/run_photo.sh - near-duplicate photographs (issue 13) in one command:
# pixvec's embedders (photo, pixels, cnn) against the perceptual hashes
# (aHash, dHash, pHash, wHash, PDQ; bench/photo_hashes.c) on the same files
# of a photo set made by bench/photo_set.sh: pair precision, recall and F1,
# recall per transform, threshold sweeps, query by image, and the cost per
# image with decoding at 1600x1200 JPEG input.
#
# usage: bench/run_photo.sh [--small]
#   --small  the first 20 originals with their variants and the first 20
#            distractors (CI's smoke run)
#   env: PV_BENCH_BUILD (default build-bench), PV_BENCH_DATA (default
#        /tmp/pixvec-bench; the set is made in $PV_BENCH_DATA/photoset when
#        absent), PV_BENCH_WORK (a fresh work folder is made under it,
#        default /tmp), PV_BENCH_SKIP_SETUP=1 (do not run scripts/setup.sh),
#        PV_PHOTO_EMBEDDERS (default "photo pixels cnn")
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SMALL=1; shift ;;
    *) echo "usage: bench/run_photo.sh [--small]" >&2; exit 2 ;;
  esac
done
BUILD=${PV_BENCH_BUILD:-build-bench}
DATA=${PV_BENCH_DATA:-/tmp/pixvec-bench}
SET=$DATA/photoset
EMBEDDERS=${PV_PHOTO_EMBEDDERS:-photo pixels cnn}
T=$(nproc)
[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" --target pixvec photo_hashes >/dev/null
PIXVEC=$(realpath "$BUILD/pixvec")
HASHER=$(realpath "$BUILD/bench/photo_hashes")
export PIXVEC

if [ ! -s "$SET/manifest.tsv" ]; then
  if [ ! -f bench/photo_set.sh ]; then
    echo "run_photo: no photo set in $SET and no bench/photo_set.sh to make it" >&2
    exit 1
  fi
  mkdir -p "$DATA"
  bash bench/photo_set.sh "$SET"
fi
mkdir -p "${PV_BENCH_WORK:-/tmp}"
WORK=$(mktemp -d "${PV_BENCH_WORK:-/tmp}/pixvec-bench-photo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --small: a copy of part of the set, same layout (copies, not links, so
# that every path resolves inside it)
if [ $SMALL = 1 ]; then
  S=$WORK/set
  mkdir -p "$S"/{orig,var,distract,1600}
  awk -F'\t' 'NR == FNR { if ($3 == "orig" && ++o <= 20) keep[$2] = 1; next }
              $3 == "distractor" { if (++d <= 20) print; next }
              $2 in keep' "$SET/manifest.tsv" "$SET/manifest.tsv" > "$S/manifest.tsv"
  cut -f1 "$S/manifest.tsv" | while IFS= read -r rel; do cp "$SET/$rel" "$S/$rel"; done
  find "$SET/1600" -maxdepth 1 -name '*.jpg' | sort | sed -n '1,20p' | xargs -r cp -t "$S/1600"
  SET=$S
fi
SET=$(realpath "$SET")
NIMG=$(grep -c . "$SET/manifest.tsv")
N1600=$(find "$SET/1600" -maxdepth 1 -name '*.jpg' | wc -l)

echo "# near-duplicate photographs (issue 13)"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores online;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "- set: $SET, $NIMG images$([ $SMALL = 1 ] && echo ' (--small)'); timing on $N1600 JPEGs of $SET/1600"
echo

"$HASHER" -o "$WORK/hashes.tsv" "$SET"
"$HASHER" --time "$SET/1600" > "$WORK/hash_time.md"

# Sweep thresholds per embedder, besides its default (cnn at 0.90 is
# imagededup's recipe: cosine of pooled CNN features >= 0.9).
sweep() {
  case "$1" in
    pixels) echo "0.90 0.95 0.97 0.98 0.99" ;;
    cnn) echo "0.80 0.85 0.90 0.95 0.98" ;;
    *) echo "0.70 0.80 0.85 0.90 0.95 0.98" ;;
  esac
}
EVAL=() TIMES=()
for emb in $EMBEDDERS; do
  db=$WORK/$emb.pvdb
  if ! msg=$("$PIXVEC" init "$db" --embedder "$emb" 2>&1); then
    echo "- skipping embedder $emb: \`pixvec init --embedder $emb\` failed: $msg"
    echo
    continue
  fi
  "$PIXVEC" add "$db" "$SET/orig" "$SET/var" "$SET/distract" --quiet
  "$PIXVEC" dups "$db" --json > "$WORK/dups-$emb-default.json"
  EVAL+=(--pixvec "$emb=default:$WORK/dups-$emb-default.json")
  for t in $(sweep "$emb"); do
    "$PIXVEC" dups "$db" -t "$t" --json > "$WORK/dups-$emb-$t.json"
    EVAL+=(--pixvec "$emb=$t:$WORK/dups-$emb-$t.json")
  done
  bash bench/photo_queries.sh "$db" "$SET" > "$WORK/query-$emb.json"
  EVAL+=(--query "$emb=$WORK/query-$emb.json")
  # the cost: add of the 1600x1200 JPEGs into a fresh database, one thread
  tdb=$WORK/$emb-time.pvdb
  "$PIXVEC" init "$tdb" --embedder "$emb" >/dev/null
  s=$("$PIXVEC" add "$tdb" "$SET/1600" --threads 1 --json |
      /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["added"], j["seconds"])')
  TIMES+=("$emb $s")
  rm -rf "$db" "$tdb"
done

/usr/bin/python3 bench/photo_eval.py "$SET" "$WORK/hashes.tsv" "${EVAL[@]}"

echo "### cost per image, decoding included, one thread"
echo
cat "$WORK/hash_time.md"
echo
echo "| pixvec \`add --threads 1\` into a fresh database (read, decode, embed, HNSW insert, commit) | images | seconds | images/s |"
echo "|---|---|---|---|"
for row in "${TIMES[@]}"; do
  set -- $row
  echo "| $1 | $2 | $(printf '%.2f' "$3") | $(awk -v n="$2" -v s="$3" 'BEGIN { printf "%.1f", n / s }') |"
done
