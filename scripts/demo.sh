#!/usr/bin/env bash
# The main job on a default data set: installs what pixvec needs, builds it,
# exports Fashion-MNIST (Debian's dataset-fashion-mnist) to PNG files in
# class folders, ingests the 70,000 images, asks for the images most like a
# few test images, scans for duplicates (inside the set, and test images
# that copy training images), clusters the collection, builds
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

echo "== duplicates at the embedder's default threshold (report with thumbnails: $out/dups.html)"
$pv dups "$db" --keep-list "$out/keep.txt" --drop-list "$out/drop.txt" \
  --json-out "$out/dups.json" --html "$out/dups.html" > "$out/dups.txt"
head -n 12 "$out/dups.txt"
echo "..."
tail -n 1 "$out/dups.txt"
echo "== test images that copy a training image (leaks) at cosine >= 0.99: $out/leaks.txt"
$pv dups "$db" --across "$out/fmnist/train" "$out/fmnist/test" --threshold 0.99 \
  --drop-list "$out/leaks.txt" > "$out/leaks-groups.txt"
tail -n 1 "$out/leaks-groups.txt"
echo "== every image's nearest-neighbour similarity (PNG: $out/nn-histogram.png)"
$pv dups "$db" --histogram --histogram-png "$out/nn-histogram.png" | tail -n 22
echo "== k-means: 10 clusters, the 3 images nearest each centre, label mix and purity"
$pv cluster "$db" -k 10 --show 3 > "$out/clusters.txt"
head -n 14 "$out/clusters.txt"
echo "... (all of it in $out/clusters.txt)"
echo "== IVF lists (256) and a query through them"
$pv ivf train "$db" --nlist 256
$pv query "$db" "$out/fmnist/test/bag/00019.png" -k 5 --index ivf --nprobe 8
$pv check "$db"
