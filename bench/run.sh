#!/usr/bin/env bash
# run.sh - time cosync beside its peers (Python's asyncio, Go) on this machine.
#
# usage: bench/run.sh BUILD_DIR [RUNS] [SCALE]
#
#   BUILD_DIR  the CMake build directory (holds bench/workloads, bench/memory)
#   RUNS       runs of each workload and implementation, interleaved (default 5)
#   SCALE      work scale passed to every workload (default 1 = the full sizes)
#
# Environment:
#   BENCH_OUT      where the raw lines go (default <repo>/build/bench-results.txt)
#   SHARED_BENCH   the shared peers (default <repo>/../shared/bench)
#   MEMORY_COUNTS  blocked-task counts for the memory runs (default "100000 1000000")
#   MEMORY_RUNS    runs of each implementation at each count, each round
#                  started by the next one in turn (default 3)
#   PYTHON         the interpreter of the asyncio peer (default python3)
#   PIN            a CPU list for taskset (e.g. 1): every program of every
#                  implementation runs pinned there (default: not pinned)
#
# Prints, per implemented workload, the median ns/op of cosync, asyncio and Go
# (GOMAXPROCS=1) and the ratios asyncio/cosync and Go/cosync, and beside
# them cosync again with the tasks sharing the thread's FP control modes
# (workloads --shared-fp, cosync_loop_opts.shared_fp_modes) and with dense
# tasks (workloads --dense, cosync_task_opts.dense); the median peak
# resident memory of each `spawn` program (GNU time's maximum resident set
# size, as WORKLOADS.md asks); then the bytes resident per blocked task for
# each count (medians of MEMORY_RUNS runs), for cosync's plain and dense
# tasks. Any benchmark that exits non-zero (a wrong result), or that counts
# other ops than the others for the same workload, stops the script with a
# non-zero status.
# Go is skipped, with a note, if `go` is not installed.
set -euo pipefail

die() { echo "run.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 3 ] || { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd) || die "no build directory '$1'"
RUNS=${2:-5}
SCALE=${3:-1}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null) || ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
OUT=${BENCH_OUT:-$ROOT/build/bench-results.txt}
MEMORY_COUNTS=${MEMORY_COUNTS:-100000 1000000}
MEMORY_RUNS=${MEMORY_RUNS:-3}
[[ $MEMORY_RUNS =~ ^[1-9][0-9]*$ ]] || die "MEMORY_RUNS must be a positive integer, not '$MEMORY_RUNS'"

COSYNC_WL=$BUILD_DIR/bench/workloads
COSYNC_MEM=$BUILD_DIR/bench/memory
PY_WL=$SHARED/python/workloads.py
PY_MEM=$HERE/peers/memory.py
[ -x "$COSYNC_WL" ] || die "$COSYNC_WL not built"
[ -x "$COSYNC_MEM" ] || die "$COSYNC_MEM not built"
[ -f "$PY_WL" ] || die "no Python peer at $PY_WL"
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "$PYTHON is missing"
PIN_CMD=()
if [ -n "${PIN:-}" ]; then
    command -v taskset >/dev/null || die "PIN needs taskset (util-linux)"
    PIN_CMD=(taskset -c "$PIN")
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

HAVE_GO=0
if command -v go >/dev/null; then
    [ -n "${HOME:-}" ] || [ -n "${GOCACHE:-}" ] || export GOCACHE=$TMP/gocache
    echo "building the Go peers ($(go version))" >&2
    (cd "$SHARED/go" && go build -o "$TMP/go-workloads" workloads.go) || die "go build of the Go peer failed"
    (cd "$HERE/peers" && go build -o "$TMP/go-memory" memory.go) || die "go build of peers/memory.go failed"
    HAVE_GO=1
else
    echo "note: 'go' is not installed: skipping the Go peer (make bench installs golang-go)" >&2
fi

mkdir -p "$(dirname "$OUT")"
{
    echo "# cosync benchmarks, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
    echo "# host $(uname -srm); cpu $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
    echo "# $("$PYTHON" --version 2>&1) ($(command -v "$PYTHON")); $( [ $HAVE_GO = 1 ] && go version || echo 'no go')"
    echo "# runs $RUNS, scale $SCALE, pinned to CPU ${PIN:-(none)}"
    echo "# <impl> <workload> <ops> <seconds> <ns_per_op>   (memory: <impl> blocked_tasks <N> <seconds> <bytes_per_task>)"
} >"$OUT"

declare -A NS SECS OPS RSS

# run_one IMPL NAME CMD...: run one benchmark, check its line, record it.
run_one() {
    local impl=$1 name=$2 out rc
    shift 2
    out=$("${PIN_CMD[@]}" "$@") || { rc=$?; die "$impl $name failed (exit $rc): $*"; }
    # exactly one line: <name> <ops> <seconds> <ns_per_op>
    if ! awk -v n="$name" 'NR == 1 && NF == 4 && $1 == n && $2 > 0 { ok = 1 } END { exit !(ok && NR == 1) }' <<<"$out"; then
        die "$impl $name printed an unexpected line: '$out'"
    fi
    echo "$impl $out" >>"$OUT"
    read -r _ ops s _ <<<"$out"
    # the same work everywhere: a workload counts the same ops in every
    # implementation (the memory runs' count is their size, checked apart)
    if [ "$name" != blocked_tasks ]; then
        [ -z "${OPS[$name]:-}" ] || [ "${OPS[$name]}" = "$ops" ] ||
            die "$impl $name counted $ops ops where the others counted ${OPS[$name]}"
        OPS[$name]=$ops
    fi
    # ns/op from the seconds, not the printed ns/op: its one decimal is
    # 5 % of a 1 ns operation, too coarse for the ratios
    NS[$impl/$name]+=" $(awk -v s="$s" -v o="$ops" 'BEGIN { printf "%.4f", s * 1e9 / o }')"
    SECS[$impl/$name]+=" $s"
}

HAVE_TIME=0
[ -x /usr/bin/time ] && HAVE_TIME=1 || echo "note: no /usr/bin/time: no peak memory for spawn (apt-get install time)" >&2

# run_peak IMPL NAME CMD...: run_one, recording the peak resident set (KiB)
# where GNU time is there; it passes the program's exit status on.
run_peak() {
    local impl=$1 name=$2
    shift 2
    if [ $HAVE_TIME = 0 ]; then
        run_one "$impl" "$name" "$@"
        return
    fi
    run_one "$impl" "$name" /usr/bin/time -f %M -o "$TMP/peak" "$@"
    RSS[$impl/$name]+=" $(tail -n 1 "$TMP/peak")"
}

median() { # median of the numbers given as arguments, or '-'
    printf '%s\n' "$@" | awk 'NF { a[++n] = $1 } END {
        if (!n) { print "-"; exit }
        # insertion sort: n is small
        for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j > 0 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
        print (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }'
}

ns1() { # a median ns/op as printed: one decimal, or '-'
    [ "$1" = - ] && echo - || awk -v x="$1" 'BEGIN { printf "%.1f\n", x }'
}

ratio() { # ratio A B: A/B, or '-'
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

mapfile -t WORKLOADS < <("$COSYNC_WL" --list)
[ ${#WORKLOADS[@]} -gt 0 ] || die "$COSYNC_WL --list names no workload"

for ((r = 1; r <= RUNS; r++)); do
    for w in "${WORKLOADS[@]}"; do
        echo "run $r/$RUNS: $w" >&2
        run=run_one
        [ "$w" = spawn ] && run=run_peak # WORKLOADS.md: "time and peak RSS"
        $run cosync "$w" "$COSYNC_WL" "$w" "$SCALE"
        run_one cosync-shared-fp "$w" "$COSYNC_WL" --shared-fp "$w" "$SCALE"
        run_one cosync-dense "$w" "$COSYNC_WL" --dense "$w" "$SCALE"
        # workloads of our own (not in WORKLOADS.md) have no peer
        grep -q "\"$w\"" "$PY_WL" || continue
        $run asyncio "$w" "$PYTHON" "$PY_WL" "$w" "$SCALE"
        if [ $HAVE_GO = 1 ]; then
            $run go "$w" env GOMAXPROCS=1 "$TMP/go-workloads" "$w" "$SCALE"
        fi
    done
done

echo
echo "median ns/op over $RUNS run(s), scale $SCALE (Go: GOMAXPROCS=1)"
printf '%-18s %12s %12s %12s %15s %10s %10s %10s\n' workload cosync asyncio go asyncio/cosync go/cosync shared-fp dense
for w in "${WORKLOADS[@]}"; do
    c=$(median ${NS[cosync/$w]:-})
    p=$(median ${NS[asyncio/$w]:-})
    g=$(median ${NS[go/$w]:-})
    f=$(median ${NS[cosync-shared-fp/$w]:-})
    d=$(median ${NS[cosync-dense/$w]:-})
    printf '%-18s %12s %12s %12s %15s %10s %10s %10s\n' "$w" "$(ns1 "$c")" "$(ns1 "$p")" "$(ns1 "$g")" \
        "$(ratio "$p" "$c")" "$(ratio "$g" "$c")" "$(ns1 "$f")" "$(ns1 "$d")"
done
if [ $HAVE_TIME = 1 ] && [[ " ${WORKLOADS[*]} " == *" spawn "* ]]; then
    mib() { [ "$1" = - ] && echo - || awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
    printf 'spawn: median peak resident MiB: cosync %s, asyncio %s, go %s\n' \
        "$(mib "$(median ${RSS[cosync/spawn]:-})")" "$(mib "$(median ${RSS[asyncio/spawn]:-})")" \
        "$(mib "$(median ${RSS[go/spawn]:-})")"
fi
if [[ " ${WORKLOADS[*]} " == *" sleepers "* ]]; then
    printf 'sleepers: median elapsed seconds (ideal 0.100): cosync %s, asyncio %s, go %s\n' \
        "$(median ${SECS[cosync/sleepers]:-})" "$(median ${SECS[asyncio/sleepers]:-})" \
        "$(median ${SECS[go/sleepers]:-})"
fi

# run_memory IMPL N: one blocked-tasks run of IMPL with N tasks.
run_memory() {
    case $1 in
    cosync) run_one cosync blocked_tasks "$COSYNC_MEM" "$2" ;;
    cosync-dense) run_one cosync-dense blocked_tasks "$COSYNC_MEM" --dense "$2" ;;
    asyncio) run_one asyncio blocked_tasks "$PYTHON" "$PY_MEM" "$2" ;;
    go) run_one go blocked_tasks "$TMP/go-memory" "$2" ;;
    esac
}

# The seconds of a run that maps gigabytes depend on what ran before it:
# in a VM the host may have taken back the memory the previous program
# freed, and the first to touch it again pays the host's faults too. So
# each count runs MEMORY_RUNS times, each time starting with the next
# implementation in turn, and the medians are printed.
MEM_IMPLS=(cosync cosync-dense asyncio)
[ $HAVE_GO = 1 ] && MEM_IMPLS+=(go)
echo
echo "resident bytes per blocked task (medians of $MEMORY_RUNS runs; seconds = spawn until all blocked)"
printf '%-10s %22s %22s %22s %22s\n' tasks "cosync B (s)" "asyncio B (s)" "go B (s)" "cosync dense B (s)"
for n in $MEMORY_COUNTS; do
    for ((r = 0; r < MEMORY_RUNS; r++)); do
        echo "memory: $n blocked tasks, run $((r + 1))/$MEMORY_RUNS" >&2
        for ((i = 0; i < ${#MEM_IMPLS[@]}; i++)); do
            run_memory "${MEM_IMPLS[(r + i) % ${#MEM_IMPLS[@]}]}" "$n"
        done
    done
    cells=()
    for impl in cosync asyncio go cosync-dense; do
        lines=$(grep "^$impl blocked_tasks $n " "$OUT" || true)
        if [ -n "$lines" ]; then
            s=$(median $(awk '{ print $4 }' <<<"$lines"))
            b=$(median $(awk '{ print $5 }' <<<"$lines"))
            cells+=("$(printf '%.0f (%.2f)' "$b" "$s")")
        else
            cells+=("-")
        fi
    done
    printf '%-10s %22s %22s %22s %22s\n' "$n" "${cells[@]}"
done

echo
echo "raw lines: $OUT"
