#!/usr/bin/env bash
# The main job on a default data set: installs what pixvec needs, builds it,
# exports Fashion-MNIST (Debian's dataset-fashion-mnist) to PNG files in
# class folders, ingests the 70,000 images, asks for the images most like a
# few test images, scans for duplicates, clusters the collection, builds
# IVF lists and queries them, and prints what it found.
# Everything it writes goes under out/ (override with PIXVEC_OUT=DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${PIXVEC_OUT:-out}

bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPV_TESTS=ON -DPV_BENCH=ON >/dev/null
cmake --build build -j "$(nproc)"
pv=./build/pixvec

mkdir -p "$out"
if [ ! -d "$out/fmnist/test/bag" ]; then
  ./build/fmnist_export "$out/fmnist"
fi

db="$out/fmnist.pvdb"
if [ ! -d "$db" ]; then
  $pv init "$db" --embedder pixels --size 28
fi
echo "== add (a re-run only adds what changed)"
$pv add "$db" "$out/fmnist/train" "$out/fmnist/test"
$pv info "$db"

for q in "$out/fmnist/test/sneaker/00010.png" "$out/fmnist/test/bag/00019.png" \
         "$out/fmnist/test/dress/00014.png"; do
  [ -f "$q" ] || q=$(find "$out/fmnist/test" -name '*.png' | head -1)
  echo "== query $q"
  $pv query "$db" "$q" -k 5
done

echo "== duplicates at cosine >= 0.99 (first groups; keep-list in $out/keep.txt)"
$pv dups "$db" --threshold 0.99 --keep-list "$out/keep.txt" \
  --drop-list "$out/drop.txt" --json-out "$out/dups.json" > "$out/dups.txt"
head -n 12 "$out/dups.txt"
echo "..."
tail -n 1 "$out/dups.txt"
echo "== k-means: 10 clusters, the 3 images nearest each centre, label mix and purity"
$pv cluster "$db" -k 10 --show 3 > "$out/clusters.txt"
head -n 14 "$out/clusters.txt"
echo "... (all of it in $out/clusters.txt)"
echo "== IVF lists (256) and a query through them"
$pv ivf train "$db" --nlist 256
$pv query "$db" "$out/fmnist/test/bag/00019.png" -k 5 --index ivf --nprobe 8
$pv check "$db"
