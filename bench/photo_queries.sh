#!/usr/bin/env bash
# bench/photo_queries.sh - query a pixvec database with every original and
# variant of a photo set (bench/photo_set.sh), in manifest order, through one
# `pixvec shell DB` reading `query IMAGE -k 2 --json` lines on stdin (one
# process, not one per image). Prints the JSON answers as pixvec prints them,
# one object per query; bench/photo_eval.py --query NAME=FILE reads them.
# Image paths are given absolute, so the answers name them as the database
# does.
#
# usage: bench/photo_queries.sh DB OUT > FILE     env: PIXVEC (the binary)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench/photo_queries.sh DB OUT > FILE" >&2; exit 2; }
db=$1
out=$(realpath "$2")
pixvec=${PIXVEC:-pixvec}
awk -F'\t' -v out="$out" '$3 != "distractor" && $1 != "" && $1 !~ /^#/ {
    if ($1 ~ /[ \t"'\''\\]/) { print "photo_queries: path with a space or quote: " $1 > "/dev/stderr"; exit 1 }
    print "query " out "/" $1 " -k 2 --json" }' "$out/manifest.tsv" |
  "$pixvec" shell "$db"
