#!/usr/bin/env bash
# valgrind-tests.sh BUILD_DIR - run every test program of BUILD_DIR under
# valgrind's memcheck (stacks are registered with valgrind when its headers
# are found at build time). test_context is left out: it checks FP rounding
# modes, which valgrind does not model.
set -u
build=${1:?usage: valgrind-tests.sh BUILD_DIR}
command -v valgrind >/dev/null || { echo "valgrind-tests: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
passed=0
skipped=0
failed=""
for exe in "$build"/tests/test_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    [ "$name" = test_context ] && continue
    log="$build/valgrind-$name.log"
    # syscall 440/441 (process_madvise, epoll_pwait2) are unknown to
    # valgrind 3.19: the library falls back, valgrind only warns.
    timeout 600 valgrind -q --error-exitcode=99 --leak-check=full "$exe" >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "valgrind: $name passed"
    elif [ $rc -eq 77 ]; then # the test's own "cannot run here" (CTest's SKIP_RETURN_CODE)
        skipped=$((skipped + 1))
        echo "valgrind: $name skipped ($(tail -1 "$log"))"
    else
        failed="$failed $name"
        echo "valgrind: $name FAILED (log: $log)"
        grep -v "unhandled amd64-linux syscall\|README_MISSING\|Nevertheless we consider\|bug_reports.html\|write your own handler" "$log" | tail -20
    fi
done
nfailed=$(echo $failed | wc -w)
[ $skipped -gt 0 ] && echo "valgrind: $skipped skipped (cannot run here: not failures)"
echo "valgrind tests: $passed passed, $nfailed failed"
[ -z "$failed" ]
