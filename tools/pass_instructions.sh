#!/usr/bin/env bash
# Instructions executed in each built-in's generated passes, counted by
# callgrind (repeatable whatever else the machine does), for two builds of
# `optdsl`: before and after a change to code generation or the driver.
#
#   tools/pass_instructions.sh OLD_BINARY NEW_BINARY [N]
#
# Prints `name old new new/old` per built-in (f32, N parameters, 7 steps on
# one thread; the functions counted are the kernels, named `*_pass*`, not the
# benchmark's own bound loop).
set -euo pipefail
old=$1
new=$2
n=${3:-300000}
count() {
    valgrind --tool=callgrind --callgrind-out-file="$2" "$1" bench --optimizer "$3" \
        --n "$n" --reps 3 --naive-reps 0 --threads 1 >/dev/null 2>&1
    callgrind_annotate --threshold=100 "$2" 2>/dev/null | grep -E "_pass" | grep -v bound_pass |
        awk '{gsub(",","",$1); s+=$1} END {print s+0}'
}
tmp=$(mktemp -d)
for name in $("$new" list | awk '{print $1}'); do
    a=$(count "$old" "$tmp/old" "$name")
    b=$(count "$new" "$tmp/new" "$name")
    awk -v n="$name" -v a="$a" -v b="$b" 'BEGIN { printf "%-24s %12d %12d %7.4f\n", n, a, b, (a > 0 ? b / a : 0) }'
done
rm -rf "$tmp"
