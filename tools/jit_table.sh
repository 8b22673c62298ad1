#!/usr/bin/env bash
# Text rules (JIT) against their compiled built-ins: `optdsl bench --optimizer
# NAME --interpreted` (both timed in one run), repeated RUNS times per
# built-in; prints each built-in's compiled and text medians (ms) and the
# median of the per-run ratios text/compiled. Usage:
#   tools/jit_table.sh [RUNS] [N] [DTYPE] [NAMES...]   (default 5 10000000 f32 all)
set -euo pipefail
runs=${1:-5}
n=${2:-10000000}
dtype=${3:-f32}
shift $(( $# < 3 ? $# : 3 ))
bin=${OPTDSL:-target/release/optdsl}
if [ $# -gt 0 ]; then
  names=("$@")
else
  mapfile -t names < <("$bin" list | awk '{print $1}')
fi
printf '%-22s %10s %10s %8s\n' rule compiled_ms text_ms ratio
for name in "${names[@]}"; do
  # Rules the bench cannot step (L-BFGS is driven by a closure) are named
  # with the bench's reason instead of a row.
  if ! why=$("$bin" bench --optimizer "$name" --n 1000 --reps 1 --naive-reps 0 2>&1 >/dev/null); then
    printf '%-22s skipped: %s\n' "$name" "${why#error: }"
    continue
  fi
  for _ in $(seq "$runs"); do
    "$bin" bench --optimizer "$name" --interpreted --n "$n" --dtype "$dtype" --naive-reps 0 --reps 11 |
      awk '/ours_ms=/ { for (i = 1; i <= NF; i++) if ($i ~ /^ours_ms=/) { split($i, a, "="); printf "%s ", a[2] } } END { print "" }'
  done | awk -v name="$name" '
    function median(v, k,   i, j, t) {
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    NF == 2 { k++; c[k] = $1; t[k] = $2; r[k] = $2 / $1 }
    END { printf "%-22s %10.3f %10.3f %8.2f\n", name, median(c, k), median(t, k), median(r, k) }'
done
