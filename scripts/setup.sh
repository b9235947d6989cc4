#!/usr/bin/env bash
# Installs everything pixvec needs to build, test and run its demo on a fresh
# Debian 12 machine. Idempotent: packages already present are not touched.
# Run as root (or with sudo available). With --bench it also installs the
# peers the benchmarks compare against (FAISS, hnswlib, scikit-learn) and the
# photographs they run on; with --ci, what CI's extra checks use (Clang for
# the build matrix and the fuzz target, with its libFuzzer runtime; strace for
# the test-data check); --ci implies --bench,
# since CI runs every bench script at a small size. With --list it installs
# nothing and prints the packages the other flags name, one a line
# (scripts/ci/check_test_data.sh reads what the tests may rely on).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  liblmdb-dev libopenblas-dev libjpeg62-turbo-dev libpng-dev libexif-dev
  libwebp-dev libheif-dev libtiff-dev libgif-dev
  libxxhash-dev libjansson-dev libedit-dev libcriterion-dev
  dataset-fashion-mnist python3 python3-numpy python3-torch python3-pil python3-regex chromium
  libcairo2-dev
  lomiri-wallpapers-20.04 lomiri-wallpapers-16.04 imagemagick fonts-dejavu-core
  # the tests' WebP, HEIC/AVIF and TIFF files are made by these tools
  webp libheif-examples libtiff-tools
  # the export tests read what pixvec writes with numpy and FAISS
  python3-faiss
  # the install test renders the man page with groff
  groff-base
)
bench=0 ci=0 list=0
for a in "$@"; do
  case "$a" in
    --bench) bench=1 ;;
    --ci) bench=1 ci=1 ;;
    --list) list=1 ;;
    *) echo "usage: scripts/setup.sh [--bench] [--ci] [--list]" >&2; exit 2 ;;
  esac
done
if [ $bench = 1 ]; then
  PKGS+=(libfaiss-dev libhnswlib-dev python3-sklearn python3-numpy ukui-wallpapers sway-backgrounds time)
  # bench/run_map.sh: umap-learn (Debian's name; pulls numba and pynndescent)
  PKGS+=(umap-learn)
  # bench/photo_set.sh: ImageMagick, a font for its watermark, and the
  # packages whose photographs (and night skies, image sequences) it uses.
  PKGS+=(imagemagick fonts-dejavu-core lomiri-wallpapers-16.04 mate-backgrounds
    plasma-workspace-wallpapers python3-skimage python-matplotlib-data
    stellarium-data visp-images-data opencv-doc)
fi
if [ $ci = 1 ]; then
  # libclang-rt-14-dev: libFuzzer and the sanitizer runtimes for Clang
  # (scripts/ci/fuzz.sh); clang only recommends it.
  PKGS+=(clang strace libclang-rt-14-dev)
fi
if [ $list = 1 ]; then
  printf '%s\n' "${PKGS[@]}"
  exit 0
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# The cnn embedder's weights (npm package nsfwjs 4.4.0, converted once).
bash "$(dirname "$0")/fetch_model.sh"
