#!/usr/bin/env bash
# mutation-test.sh - does the test suite notice a bug in the library?
#
# usage: scripts/mutation-test.sh [MUTANTS] [ID_REGEX]
#
#   MUTANTS   a tab-separated list of mutants (default tests/mutants.tsv),
#             one a line:  ID  FILE  LINE  OLD  NEW  [NOTE]
#             FILE is a library source; OLD is text on LINE (or, after
#             edits above it, on the nearest line within 20 of it), of which
#             the first occurrence becomes NEW (an empty NEW deletes it,
#             leaving ";" if OLD ends in one). A NOTE starting with
#             "equivalent:" marks a mutant that cannot change behaviour,
#             with the reason. Blank lines and lines starting with # are
#             skipped.
#   ID_REGEX  run only the mutants whose ID matches (grep -E)
#
# Environment:
#   JOBS     parallel test jobs (default 2)
#   LIMIT    seconds a suite run may take before the mutant counts as
#            killed by a hang (default 120)
#   TESTS    a ctest -R regex: run only those tests (default: all). Only
#            for mutants that no other test can reach, such as those of
#            an optional library that one test program links
#            (TESTS='tls' for src/io/tls.c): "survived" then speaks of
#            those tests alone
#   WORKDIR  where the copy of the repository is built (default: a new
#            temporary directory, removed at the end)
#
# Each mutant is applied alone to a copy of HEAD (the working tree is never
# touched), the library and tests are rebuilt (gcc, Release, COSYNC_DEBUG)
# and the plain suite runs (without test_backtrace, which drives gdb). A
# mutant is "killed" if a test fails or hangs, "invalid" if it does not
# build, "missing" if OLD is not found, and "survived" otherwise. Prints a
# line a mutant and a summary; exits 1 if a mutant not marked equivalent
# survived (a test gap, or a mutant to mark), else 0. About 10 s a mutant
# on two cores: a manual check, not part of `make test`.
set -euo pipefail

die() { echo "mutation-test.sh: $*" >&2; exit 2; }

ROOT=$(git rev-parse --show-toplevel 2>/dev/null) || die "run it inside the repository"
MUTANTS=$(realpath "${1:-$ROOT/tests/mutants.tsv}")
FILTER=${2:-}
JOBS=${JOBS:-2}
LIMIT=${LIMIT:-120}
[ -f "$MUTANTS" ] || die "no mutant list '$MUTANTS'"

if [ -n "${WORKDIR:-}" ]; then
    WORK=$WORKDIR
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
COPY=$WORK/src
BUILD=$WORK/build
rm -rf "$COPY"
git clone -q "$ROOT" "$COPY"
cmake -S "$COPY" -B "$BUILD" -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release \
    -DCOSYNC_DEBUG=ON -DCOSYNC_BUILD_BENCH=OFF >"$WORK/configure.log" ||
    die "configure failed (see $WORK/configure.log)"

build() { cmake --build "$BUILD" -j"$JOBS" >"$WORK/build.log" 2>&1; }
suite() {
    (cd "$BUILD" && timeout "$LIMIT" ctest -j"$JOBS" -E test_backtrace ${TESTS:+-R "$TESTS" --no-tests=error} \
        >"$WORK/ctest.log" 2>&1)
}
build || die "the unmutated copy does not build (see $WORK/build.log)"
suite || die "the unmutated suite fails (see $WORK/ctest.log)"

# Replace the first OLD on the line nearest LINE (within 20) that has it.
# Prints the line changed, or nothing if OLD is not there.
apply() {
    local file=$1 line=$2 old=$3 new=$4
    [[ -z $new && $old == *\; ]] && new=";"
    OLD=$old NEW=$new awk -v want="$line" '
        { text[NR] = $0 }
        END {
            old = ENVIRON["OLD"]; at = 0
            for (d = 0; d <= 20 && !at; d++) {
                if (want - d >= 1 && index(text[want - d], old)) at = want - d
                else if (want + d <= NR && index(text[want + d], old)) at = want + d
            }
            if (at) {
                i = index(text[at], old)
                text[at] = substr(text[at], 1, i - 1) ENVIRON["NEW"] substr(text[at], i + length(old))
            }
            out = FILENAME ".mutant"
            for (n = 1; n <= NR; n++) print text[n] > out
            if (at) print at > "/dev/stderr"
        }' "$file" 2>"$WORK/at"
    if [ -s "$WORK/at" ]; then
        mv "$file.mutant" "$file"
        cat "$WORK/at"
    else
        rm -f "$file.mutant"
    fi
}

killed=0 survived=0 equivalent=0 invalid=0 missing=0
gaps=()
while IFS= read -r -u 3 row || [ -n "$row" ]; do
    [[ -z $row || $row == \#* ]] && continue
    # a tab is whitespace to read, and a run of them would merge empty fields
    IFS=$'\x1f' read -r id file line old new note <<<"${row//$'\t'/$'\x1f'}"
    [[ -n $FILTER ]] && ! grep -Eq -- "$FILTER" <<<"$id" && continue
    target=$COPY/$file
    [ -f "$target" ] || die "$id: no file '$file'"
    at=$(apply "$target" "$line" "$old" "$new")
    if [ -z "$at" ]; then
        status=missing
        missing=$((missing + 1))
    elif ! build; then
        status=invalid
        invalid=$((invalid + 1))
    elif ! suite; then
        # no such line when LIMIT cut the run short (grep then fails)
        failed=$({ grep -oE '[0-9]+ - [A-Za-z0-9_]+' "$WORK/ctest.log" || true; } | head -1 | cut -d' ' -f3)
        status="killed ${failed:-(timeout)}"
        killed=$((killed + 1))
    elif [[ ${note:-} == equivalent:* ]]; then
        status="survived, equivalent"
        equivalent=$((equivalent + 1))
    else
        status=SURVIVED
        survived=$((survived + 1))
        gaps+=("$id $file:$at: '$old' -> '$new'")
    fi
    git -C "$COPY" checkout -q -- "$file"
    echo "$id $file:${at:-$line} $status"
done 3<"$MUTANTS"
build || die "the restored copy does not build"

echo "mutants: $((killed + survived + equivalent + invalid + missing))," \
    "killed $killed, survived $survived, equivalent $equivalent," \
    "invalid $invalid, missing $missing"
if [ "$survived" -gt 0 ]; then
    echo "survivors not marked equivalent (a test gap, or a mutant to mark):"
    printf '  %s\n' "${gaps[@]}"
    exit 1
fi
