#!/usr/bin/env bash
# instructions.sh BUILD_DIR [SCALE] - instructions per operation of each
# workload, counted by valgrind's callgrind: unlike seconds, the count is
# the same from run to run whatever else the machine does, so it shows
# what a change to the library's code costs on a noisy machine (it does
# not show cache misses or mispredictions: confirm with `make bench`).
#
# Each workload runs at SCALE (default 0.02) and at twice that; the
# difference of the two counts over the difference of the operations is
# the cost of one more operation, without the program's start-up.
set -euo pipefail
build=${1:?usage: instructions.sh BUILD_DIR [SCALE]}
scale=${2:-0.02}
wl="$build/bench/workloads"
[ -x "$wl" ] || { echo "instructions.sh: no $wl (build first)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is missing" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # count NAME SCALE -> "ops instructions"
    local line ir
    line=$(valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$wl" "$1" "$2" 2>"$tmp/err") || {
        cat "$tmp/err" >&2
        return 1
    }
    ir=$(sed -n 's/^==[0-9]*== Collected : //p' "$tmp/err")
    echo "$(echo "$line" | awk '{print $2}') $ir"
}

printf '%-18s %12s\n' workload instr/op
for name in $("$wl" --list); do
    [ "$name" = sleepers ] && continue # real time: its count measures idling
    read -r ops1 ir1 < <(count "$name" "$scale")
    read -r ops2 ir2 < <(count "$name" "$(awk -v s="$scale" 'BEGIN { print 2 * s }')")
    awk -v n="$name" -v o1="$ops1" -v i1="$ir1" -v o2="$ops2" -v i2="$ir2" \
        'BEGIN { printf "%-18s %12.1f\n", n, (i2 - i1) / (o2 - o1) }'
done
