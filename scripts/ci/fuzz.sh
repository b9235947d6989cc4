#!/usr/bin/env bash
# Builds the libFuzzer targets with Clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each for its share of a bounded time:
# fuzz_records (half), fuzz_photo (an eighth), fuzz_bpe (CLIP's tokenizer on
# query text, vocab.json and merges.txt) and fuzz_model (transformer
# checkpoints: config.json, safetensors headers and bytes; tiny ones made
# by tests/ref_vit.py with python3-torch) share the rest, after a third of
# the time went to the image decoders (tests/fuzz/fuzz_image.c, built once
# per format as fuzz_webp, fuzz_heif, fuzz_tiff, fuzz_gif and fuzz_bmp,
# seeded from tests/fuzz/corpus/FORMAT/). fuzz_records
# (tests/fuzz/fuzz_records.c), over every record type of a real database,
# damages one database record after another (every table: meta, items,
# paths, hashes, vectors, hnsw, hnsw_upper, ivf_centroids, ivf_lists,
# codes: the seed keeps float16 copies) and
# runs check, info, ls, the three queries, both dups scans and cluster show
# on each: a crash, a sanitizer report, a leak or a wrong answer on a
# database that passes check fails the run, and libFuzzer leaves the input
# as BUILD/fuzz-crash-* (replay: BUILD/fuzz_records BUILD/fuzz-crash-...).
# Needs clang and libclang-rt-14-dev (scripts/setup.sh --ci).
#
# usage: scripts/ci/fuzz.sh [SECONDS] [BUILD]   (default 120 s, build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-120}
build=${2:-build-fuzz}
if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "fuzz: clang is not installed (scripts/setup.sh --ci installs it)" >&2
  exit 1
fi
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPV_FUZZ=ON \
  -DPV_TESTS=OFF -DPV_BENCH=OFF -DPV_WERROR=ON >/dev/null
# the image decoders, and the .npy and paths readers of import (fuzz_npy)
decoders="webp heif tiff gif bmp npy"
cmake --build "$build" -j "$(nproc)" --target fuzz_records fuzz_photo fuzz_bpe fuzz_model \
  $(for f in $decoders; do printf 'fuzz_%s ' "$f"; done)

# Seed inputs (the layout is in fuzz_records.c): per table and for its first
# records, 0xff written over the first bytes, the value cut to 3 bytes, the
# record deleted, replaced by 3 bytes, a second value added; and item 1's
# path length set to 3000, alone and with a value that long (issue 12).
corpus="$build/fuzz-corpus"
mkdir -p "$corpus"
for t in 0 1 2 3 4 5 6 7 8 9; do
  for k in 0 1 2; do
    printf "\\x0$t\\x0$k\\x00\\x03\\x00\\x00\\x04\\xff\\xff\\xff\\xff" >"$corpus/seed-$t-$k-patch"
    printf "\\x0$t\\x0$k\\x00\\x01\\x03\\x00\\x00" >"$corpus/seed-$t-$k-cut"
    printf "\\x0$t\\x0$k\\x00\\x04\\x00\\x00\\x00" >"$corpus/seed-$t-$k-del"
    printf "\\x0$t\\x0$k\\x00\\x00\\x00\\x00\\x03\\x01\\x02\\x03" >"$corpus/seed-$t-$k-new"
    printf "\\x0$t\\x0$k\\x00\\x05\\x00\\x00\\x04\\x09\\x00\\x00\\x00" >"$corpus/seed-$t-$k-dup"
  done
done
printf '\x01\x01\x00\x03\x2c\x00\x02\xb8\x0b' >"$corpus/seed-item-path-3000"
printf '\x01\x01\x00\x01\xe6\x0b\x01a\x01\x01\x00\x03\x2c\x00\x02\xb8\x0b' \
  >"$corpus/seed-item-path-3000-long"
# Found by this fuzzer in CI (2026-12-02): an upper-level link to a node of
# a lower level passed check and failed queries; check now refuses it.
printf '\x06\x02\xff\xff\xff\xff\xff\x0e\x77\xcd\x77\x00\x03\x00' \
  >"$corpus/seed-upper-link-to-lower-node"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Half of the time for the records, an eighth for the photo embedder's
# pair score (tests/fuzz/fuzz_photo.c: patched stored vectors), the rest
# shared by CLIP's tokenizer (tests/fuzz/fuzz_bpe.c: query text, vocab.json,
# merges.txt) and the transformer checkpoints (tests/fuzz/fuzz_model.c).
# A third of the time goes to the image decoders (tests/fuzz/fuzz_image.c,
# one target each, seeded from tests/fuzz/corpus/FORMAT) and the .npy and
# paths readers (tests/fuzz/fuzz_npy.c, tests/fuzz/corpus/npy), the rest as
# before.
isecs=$((secs / 3))
secs=$((secs - isecs))
rsecs=$((secs / 2))
psecs=$((secs / 8))
bsecs=$(((secs - rsecs - psecs) / 2))
msecs=$((secs - rsecs - psecs - bsecs))
echo "== fuzz: fuzz_records for $rsecs s"
"$build/fuzz_records" -max_total_time="$rsecs" -max_len=512 -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-" "$corpus"
echo "== fuzz: fuzz_photo for $psecs s"
pcorpus="$build/fuzz-photo-corpus"
mkdir -p "$pcorpus"
# seeds: a NaN into the first map, an Inf aspect ratio, a huge shade
printf '\x00\x00\x03\x00\x00\xc0\x7f' >"$pcorpus/seed-nan-map"
printf '\x01\x02\x0b\x00\x00\x80\x7f' >"$pcorpus/seed-inf-aspect"
printf '\x00\x00\x0b\xff\xff\x7f\x7f' >"$pcorpus/seed-huge-shade"
"$build/fuzz_photo" -max_total_time="$psecs" -max_len=448 -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-photo-" "$pcorpus"
echo "== fuzz: fuzz_bpe for $bsecs s"
bcorpus="$build/fuzz-bpe-corpus"
mkdir -p "$bcorpus"
# seeds (the layout is in fuzz_bpe.c): texts (max 77, and max 3 with
# accents, an entity and sigma), a vocab.json and a merges.txt, each whole
# and spliced into the valid file
printf '\x00The photo of the cat, it'"'"'s 2024!' >"$bcorpus/seed-text"
printf '\x03caf\xc3\xa9 cafe\xcc\x81 &amp;amp; \xc4\xb0stanbul \xce\xa3\xce\x91\xce\xa3' \
  >"$bcorpus/seed-text-unicode"
printf '\x01{"a": 1, "b": 2}' >"$bcorpus/seed-vocab"
printf '\x02#version: 0.2\nt h\nth e</w>\n' >"$bcorpus/seed-merges"
printf '\x0a\x10\x00\x04"zz": 9999, ' >"$bcorpus/seed-vocab-splice"
printf '\x0b\x10\x00\x00q x\n' >"$bcorpus/seed-merges-splice"
"$build/fuzz_bpe" -max_total_time="$bsecs" -max_len=4096 -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-bpe-" "$bcorpus"
echo "== fuzz: fuzz_model for $msecs s"
ckpt="$build/fuzz-ckpt"
mcorpus="$build/fuzz-model-corpus"
rm -rf "$ckpt"
mkdir -p "$ckpt" "$mcorpus"
for f in clip dinov2 vitmae; do
  /usr/bin/python3 tests/ref_vit.py gen "$f" "$ckpt/$f" --seed 3 >/dev/null
done
# seeds (the layout is in fuzz_model.c): each family's config.json whole
# (mode 0) and its safetensors header whole (mode 1), to mutate from
for i in 0 1 2; do
  f=$(echo clip dinov2 vitmae | cut -d' ' -f$((i + 1)))
  { printf "\\x00\\x0$i"; cat "$ckpt/$f/config.json"; } >"$mcorpus/seed-config-$f"
  { printf "\\x01\\x0$i"; /usr/bin/python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; sys.stdout.buffer.write(b[8:8+n])' "$ckpt/$f/model.safetensors"; } >"$mcorpus/seed-header-$f"
done
PV_FUZZ_CKPT="$ckpt" "$build/fuzz_model" -max_total_time="$msecs" -max_len=16384 -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-model-" "$mcorpus"

per=$((isecs / 6))
[ "$per" -ge 1 ] || per=1
for f in $decoders; do
  echo "== fuzz: fuzz_$f for $per s"
  # libFuzzer writes what it finds into the first folder: a copy, so the
  # repo's corpus stays as committed
  icorpus="$build/fuzz-$f-corpus"
  mkdir -p "$icorpus"
  if [ -d "tests/fuzz/corpus/$f" ]; then
    cp -n tests/fuzz/corpus/"$f"/* "$icorpus"/ 2>/dev/null || true
  fi
  "$build/fuzz_$f" -max_total_time="$per" -max_len=65536 -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-$f-" "$icorpus"
done
