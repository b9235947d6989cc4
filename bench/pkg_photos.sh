#!/usr/bin/env bash
# bench/pkg_photos.sh - a folder of the photographs that named Debian
# packages ship, taken by each package's own file list (dpkg-query -L), never
# by listing a shared folder such as /usr/share/backgrounds (which holds
# whatever else happens to be installed). Each JPEG or PNG becomes a symlink
# DIR/PKG__NAME. A package that is not installed is an error naming it.
#
# usage: bench/pkg_photos.sh DIR PKG...    (prints how many it linked)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/pkg_photos.sh DIR PKG..." >&2; exit 2; }
dir=$1; shift
mkdir -p "$dir"
n=0
for pkg in "$@"; do
  if ! list=$(dpkg-query -L "$pkg" 2>/dev/null); then
    echo "pkg_photos: Debian package $pkg is not installed (scripts/setup.sh --bench installs it)" >&2
    exit 1
  fi
  while IFS= read -r f; do
    [ -f "$f" ] || continue
    ln -sf "$f" "$dir/${pkg}__$(basename "$f")"
    n=$((n + 1))
  done < <(printf '%s\n' "$list" | grep -iE '\.(jpe?g|png)$' || true)
done
echo "pkg_photos: $n photographs of $* in $dir"
