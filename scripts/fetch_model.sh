#!/usr/bin/env bash
# Installs the weights of pixvec's cnn embedder: the MobileNetV2 that the npm
# package nsfwjs 4.4.0 (MIT) ships, fetched with npm's own client (pinned
# version; npm checks the tarball against the registry's integrity hash),
# converted once by scripts/convert_mobilenet.js into a safetensors file of
# float32 tensors with their Keras names. Idempotent. Called by setup.sh.
#
#   PIXVEC_MODEL_DIR  where the file goes (default /usr/local/share/pixvec,
#                     where pixvec looks for it)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${PIXVEC_MODEL_DIR:-/usr/local/share/pixvec}
out="$dest/mobilenet_v2_nsfwjs.safetensors"
if [ -s "$out" ]; then
  echo "fetch_model: $out is there"
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent nsfwjs@4.4.0 >/dev/null)
tar xzf "$tmp"/nsfwjs-4.4.0.tgz -C "$tmp" package/dist/models/mobilenet_v2
mkdir -p "$dest"
node scripts/convert_mobilenet.js "$tmp/package/dist/models/mobilenet_v2" "$out"
