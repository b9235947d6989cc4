#!/usr/bin/env bash
# bench/run_map.sh - the map benchmark of issue 15 in one command: installs
# the peers (scikit-learn, umap-learn), builds a Release tree, exports
# Fashion-MNIST as PNGs if it is not there yet, then for each size N (the
# first N images: train 1..60000, then test):
#   1. a pixvec database of them (`pixvec init --embedder pixels`, `pixvec
#      add`), and `pixvec map --method umap|tsne --csv F --recompute` timed
#      (median of R runs; skipped, saying why, while `pixvec map` is absent);
#   2. map_vectors: the database's vectors in the CSV's order, as float32,
#      so the peers lay out exactly pixvec's vectors;
#   3. the peers (bench/peer_map.py): scikit-learn TSNE at its defaults,
#      umap-learn UMAP() unseeded (parallel) and seeded (random_state=42,
#      single-threaded SGD), umap-learn's numba compile timed apart; a peer
#      still running after PV_BENCH_PEER_TIMEOUT seconds (1800) is stopped;
#   4. bench_map_quality: trustworthiness and kept@10 of every layout by the
#      one function (index/layout_quality.c), from the same vectors;
#   5. one markdown table, and the UMAP / t-SNE time ratio of each side.
#
# usage: bench/run_map.sh [--small] [--sizes "5000 10000 70000"] [--reps R]
#   --small: N = 2000 only, 1 run (CI's bench_smoke). --reps: runs per
#   timing at N <= 10000 (default 3; larger N: 1).
#   env: PV_BENCH_DATA (default /tmp/pixvec-fmnist), PV_BENCH_BUILD (default
#        build-bench-map), PV_BENCH_WORK (default: a temporary folder,
#        removed at the end), PV_BENCH_SKIP_SETUP=1, PV_BENCH_PEER_TIMEOUT.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="5000 10000 70000" REPS=3
usage='usage: bench/run_map.sh [--small] [--sizes "N ..."] [--reps R]'
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SIZES=2000 REPS=1; shift ;;
    --sizes) SIZES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

DATA=${PV_BENCH_DATA:-/tmp/pixvec-fmnist}
BUILD=${PV_BENCH_BUILD:-build-bench-map}
PEER_TIMEOUT=${PV_BENCH_PEER_TIMEOUT:-1800}
T=$(nproc)
PY=/usr/bin/python3
PV="$BUILD/pixvec"

[ "${PV_BENCH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh --bench
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPV_TESTS=OFF -DPV_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$T" >/dev/null

if [ "$(find "$DATA" -name '*.png' 2>/dev/null | wc -l)" -lt 70000 ]; then
  "$BUILD/fmnist_export" "$DATA"
fi

if [ -n "${PV_BENCH_WORK:-}" ]; then
  WORK=$PV_BENCH_WORK
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/pixvec-bench-map.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
ROWS="$WORK/rows.md"
: >"$ROWS"
NOTES="$WORK/notes.md"
: >"$NOTES"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M')

# `pixvec map` may not exist yet in this tree: its rows are then skipped.
HAVE_MAP=1
MAP_WHY=""
if ! "$PV" help map >/dev/null 2>&1; then
  HAVE_MAP=0
  MAP_WHY="\`pixvec help map\` failed: this pixvec has no map command"
fi

# median of the numbers on stdin
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) exit; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# kv FILE KEY: the value of KEY= in FILE ("" if none)
kv() { sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -1; }
# fmt X: a number with 2 decimals, or a dash
fmt() { if [ -n "$1" ]; then printf '%.2f' "$1"; else printf '—'; fi; }
fmt4() { if [ -n "$1" ]; then printf '%.4f' "$1"; else printf '—'; fi; }
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; else printf '—'; fi; }

# stage N DIR: hard links (copies when DATA is on another file system) to
# the first N images, as DIR/<split>/<class>/<number>.png: the folder name
# is the label.
stage() {
  local n=$1 dir=$2 split m c put=ln probe
  mkdir -p "$dir"
  probe=$(find "$DATA/train" -name '*.png' -print -quit)
  ln "$probe" "$dir/.probe" 2>/dev/null || put=cp
  rm -f "$dir/.probe"
  for split in train test; do
    m=$n
    [ $split = train ] || m=$((n - 60000))
    [ "$m" -gt 0 ] || continue
    for c in "$DATA/$split"/*/; do
      c=${c%/}
      mkdir -p "$dir/$split/${c##*/}"
      (cd "$c" && find . -maxdepth 1 -name '*.png' -printf '%f\n' |
        awk -v m="$m" '{v = $0; sub(/\.png$/, "", v); if (v + 0 <= m) print}' |
        xargs -r $put -t "$dir/$split/${c##*/}")
    done
  done
}

for N in $SIZES; do
  R=$REPS
  [ "$N" -le 10000 ] || R=1
  D="$WORK/n$N"
  mkdir -p "$D"
  KV="$D/res.kv"
  : >"$KV"
  echo "== N = $N ($R run(s) per timing)"
  stage "$N" "$D/img"
  "$PV" init "$D/db" --embedder pixels >/dev/null
  "$PV" add "$D/db" "$D/img" --quiet >/dev/null
  echo "database: $("$PV" info "$D/db" | head -3 | tr '\n' ' ')"

  # 1. pixvec map, each run computing (--recompute)
  LIST=""
  for m in umap tsne; do
    if [ $HAVE_MAP = 0 ]; then
      echo "pixvec map --method $m: skipped ($MAP_WHY)"
      continue
    fi
    ts=()
    ok=1
    for ((r = 0; r < R; r++)); do
      t0=$EPOCHREALTIME
      if ! "$PV" map "$D/db" --method $m --csv "$D/pv_$m.csv" --recompute >"$D/pv_$m.log" 2>&1; then
        echo "pixvec map --method $m: failed, skipped: $(tail -1 "$D/pv_$m.log")"
        ok=0
        break
      fi
      ts+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{print b - a}')")
    done
    [ $ok = 1 ] || continue
    s=$(printf '%s\n' "${ts[@]}" | median)
    echo "pv_${m}_s=$s" >>"$KV"
    echo "pixvec map --method $m: $s s (median of $R)"
    "$BUILD/bench/map_vectors" "$D/db" "$D/pv_$m.csv" "$D/pv_${m}_x.f32" "$D/pv_$m.f32" >/dev/null
    [ -n "$LIST" ] || LIST="$D/pv_$m.csv"
  done

  # 2. the vectors for the peers, in the order of pixvec's first CSV (or of
  # the database's listing when there is none)
  if [ -z "$LIST" ]; then
    LIST="$D/list.csv"
    { echo "id,path"; find "$D/img" -name '*.png' | sort | awk '{print NR - 1 "," $0}'; } >"$LIST"
  fi
  read -r ROWS_N DIM _ < <("$BUILD/bench/map_vectors" "$D/db" "$LIST" "$D/x.f32")
  echo "vectors: $ROWS_N x $DIM from $LIST"

  # 3. the peers
  for p in tsne umap umap42; do
    ts=()
    for ((r = 0; r < R; r++)); do
      t0=$EPOCHREALTIME
      rc=0
      OMP_NUM_THREADS=$T timeout "$PEER_TIMEOUT" $PY bench/peer_map.py "$D/x.f32" "$DIM" $p \
        "$D/$p.f32" >"$D/$p.json" 2>"$D/$p.err" || rc=$?
      if [ $rc != 0 ]; then
        if [ $rc = 124 ]; then
          echo "${p}_note=stopped after $PEER_TIMEOUT s (timeout)" >>"$KV"
        else
          echo "${p}_note=failed (exit $rc): $(tail -1 "$D/$p.err")" >>"$KV"
        fi
        echo "$p: $(kv "$KV" ${p}_note)"
        rm -f "$D/$p.f32"
        break
      fi
      ts+=("$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["fit_s"])' "$D/$p.json")")
      wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{print b - a}')
      echo "$p run $r: $(cat "$D/$p.json") wall ${wall}"
    done
    [ ${#ts[@]} = "$R" ] || continue
    echo "${p}_s=$(printf '%s\n' "${ts[@]}" | median)" >>"$KV"
    $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); [print(f"{sys.argv[2]}_{k}={d[k]}") for k in ("import_s","compile_s","version") if k in d]' \
      "$D/$p.json" $p >>"$KV"
  done

  # 4. quality, all by the one function
  "$BUILD/bench/bench_map_quality" "$D/x.f32" "$DIM" tsne="$D/tsne.f32" umap="$D/umap.f32" \
    umap42="$D/umap42.f32" --k 10 --threads "$T" --out "$KV"
  for m in umap tsne; do
    [ -f "$D/pv_$m.f32" ] || continue
    "$BUILD/bench/bench_map_quality" "$D/pv_${m}_x.f32" "$DIM" pv_$m="$D/pv_$m.f32" --k 10 \
      --threads "$T" --out "$KV" | tail -1
  done

  # 5. this size's rows
  pu=$(kv "$KV" pv_umap_s) pt=$(kv "$KV" pv_tsne_s)
  row() { # method implementation time_key quality_key pixvec_s note
    local s q note
    s=$(kv "$KV" "$3")
    note=$(kv "$KV" "${4}_note")
    [ -n "$note" ] || note=$6
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$N" "$(fmt "$s")" \
      "$([ "$4" = pv_umap ] || [ "$4" = pv_tsne ] && echo — || ratio "$s" "$5")" \
      "$(fmt4 "$(kv "$KV" "${4}_trust")")" "$(fmt4 "$(kv "$KV" "${4}_kept")")" "$note" >>"$ROWS"
  }
  pvnote=""
  [ $HAVE_MAP = 1 ] || pvnote="not run: $MAP_WHY"
  row UMAP pixvec pv_umap_s pv_umap "" "${pvnote:-seed 42, whole command}"
  row UMAP "umap-learn, unseeded (parallel SGD)" umap_s umap "$pu" \
    "fit only; import $(fmt "$(kv "$KV" umap_import_s)") s, 300-point compile fit $(fmt "$(kv "$KV" umap_compile_s)") s"
  row UMAP "umap-learn, random_state=42 (1-thread SGD)" umap42_s umap42 "$pu" \
    "fit only; import $(fmt "$(kv "$KV" umap42_import_s)") s, 300-point compile fit $(fmt "$(kv "$KV" umap42_compile_s)") s"
  row t-SNE pixvec pv_tsne_s pv_tsne "" "${pvnote:-seed 42, whole command}"
  row t-SNE "scikit-learn TSNE (Barnes-Hut)" tsne_s tsne "$pt" "fit only, defaults, random_state=42"
  echo "- N = $N: pixvec UMAP / t-SNE time: $(ratio "$pu" "$pt") (pixvec t-SNE / UMAP: $(ratio "$pt" "$pu")x);" \
    "peers, scikit-learn TSNE / umap-learn unseeded: $(ratio "$(kv "$KV" tsne_s)" "$(kv "$KV" umap_s)")x," \
    "/ umap-learn seeded: $(ratio "$(kv "$KV" tsne_s)" "$(kv "$KV" umap42_s)")x" >>"$NOTES"
  echo
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

pkgs=$(dpkg-query -W -f '${Package} ${Version}, ' umap-learn python3-sklearn python3-numba \
  python3-pynndescent python3-numpy libopenblas0-pthread 2>/dev/null | sed 's/, $//')
echo
echo "## pixvec maps vs umap-learn and scikit-learn: time and quality, same vectors, same run"
echo
echo "- date: $START - $(date -u '+%H:%M UTC')"
echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p'), $T cores online," \
  "$(free -g | awk '/^Mem:/{print $2}') GiB RAM; load average before $LOAD_BEFORE, after $LOAD_AFTER"
if git rev-parse --git-dir >/dev/null 2>&1; then
  dirty=$(git status --porcelain -- . ':!bench' ':!build*' | head -1)
  echo "- tree: $(git rev-parse --short HEAD)${dirty:+, with uncommitted changes outside bench/}"
fi
echo "- packages: $pkgs"
echo "- vectors: pixvec's pixels embedding (784-d, unit length) of the first N Fashion-MNIST images;" \
  "the peers get the same float32 vectors. Times: pixvec, the whole \`pixvec map\` command;" \
  "peers, the fit alone (umap-learn's import and numba compile apart). Medians of $REPS runs" \
  "at N <= 10000, 1 run above. Quality: trustworthiness (k = 10) and the fraction of the 10" \
  "nearest input neighbours kept, by index/layout_quality.c for every layout."
echo
echo "| method | implementation | N | time (s) | peer time / pixvec time | trustworthiness | kept@10 | notes |"
echo "|---|---|---|---|---|---|---|---|"
cat "$ROWS"
echo
echo "The seed project's comparison (\"UMAP is nearly 3x faster\" than t-SNE):"
echo
cat "$NOTES"
