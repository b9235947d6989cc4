#!/usr/bin/env bash
# Every system data file the tests open must come from scripts/setup.sh: a
# fresh machine has nothing else. A test that read, say, a photograph that a
# package outside setup.sh's list put in a shared folder passes on a machine
# where an earlier session installed that package and fails on a new one;
# this check fails on both.
#
# How: the test binary runs under strace (every successful open, all
# processes: the tests, the pixvec binary they start, python3 and chromium);
# each file it opened under /usr/share, /usr/local/share, /opt or /srv, and
# each such path written literally in tests/, must be
#   - owned (dpkg -S) by a package setup.sh installs for the tests
#     (`setup.sh --list`) or by one of their dependencies, or
#   - made by setup.sh itself: /usr/local/share/pixvec (the cnn weights).
# Files that libraries probe on their own behalf are not data and are not
# checked: fonts and fontconfig, locales, time zones, MIME and icon themes,
# GLib schemas (chromium's and glibc's look-ups, which fall back when absent).
#
# usage: scripts/ci/check_test_data.sh [TEST_BINARY]   (default build/pixvec_tests)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/pixvec_tests}
[ -x "$bin" ] || { echo "check_test_data: $bin is not built" >&2; exit 1; }
command -v strace >/dev/null || { echo "check_test_data: strace is missing (scripts/setup.sh --ci installs it)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/pixvec-datacheck.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The packages the tests may rely on: setup.sh's list and what they depend on.
mapfile -t pkgs < <(bash scripts/setup.sh --list)
apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances "${pkgs[@]}" 2>/dev/null |
  grep -v '^ ' | tr -d '<>' | sort -u >"$tmp/allowed"
printf '%s\n' "${pkgs[@]}" >>"$tmp/allowed"

echo "check_test_data: running $bin under strace"
rc=0
strace -f -qq --seccomp-bpf -e trace=open,openat,openat2 -e status=successful \
  -o "$tmp/trace" "$bin" --jobs "$(nproc)" >"$tmp/tests.log" 2>&1 || rc=$?
if [ $rc != 0 ]; then
  tail -n 20 "$tmp/tests.log"
  echo "check_test_data: the tests failed under strace (status $rc)"
  exit 1
fi
tail -n 1 "$tmp/tests.log"

roots='/usr/share/|/usr/local/share/|/opt/|/srv/'
ambient='^/usr/(local/)?share/(fonts|fontconfig|locale|i18n|zoneinfo|mime|icons|glib-2\.0|X11|themes|pixmaps)/'
{
  grep -oE "\"($roots)[^\"]*\"" "$tmp/trace" | tr -d '"'
  grep -rhoE "($roots)[A-Za-z0-9._/+-]+" tests/ || true
} | sort -u | grep -vE "$ambient" >"$tmp/paths" || true

bad=0 n=0
while IFS= read -r p; do
  [ -f "$p" ] || continue
  n=$((n + 1))
  real=$(readlink -f "$p")
  case "$real" in /usr/local/share/pixvec/*) continue ;; esac
  owners=$(dpkg -S "$real" 2>/dev/null | head -1 | cut -d: -f1 | tr -d ',') || true
  if [ -z "$owners" ]; then
    echo "check_test_data: $p belongs to no package and setup.sh does not make it"
    bad=1
    continue
  fi
  for o in $owners; do
    if ! grep -qxF "$o" "$tmp/allowed"; then
      echo "check_test_data: $p belongs to $o, which scripts/setup.sh does not install for the tests"
      bad=1
    fi
  done
done <"$tmp/paths"
if [ $bad = 1 ]; then
  echo "check_test_data: FAILED: add the package to setup.sh, or take the data from one it installs (tests/pkgdata.h)"
  exit 1
fi
echo "check_test_data: ok: the $n system data files the tests open or name come from setup.sh's packages"
