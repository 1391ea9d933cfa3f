#!/bin/sh
# tests/aarch64/run.sh - cross-compile the context layer's white-box test
# (tests/test_context.c) with the AArch64 backend (src/context/ctx_aarch64.S)
# and run it under qemu user-mode emulation. For x86-64 hosts without
# AArch64 hardware; on an AArch64 host the normal build runs the same test.
#
# Installs, if missing (as root, with apt-get): gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, qemu-user.
#
# Environment:
#   CC_AARCH64   cross compiler (default: aarch64-linux-gnu-gcc)
#   QEMU_AARCH64 emulator       (default: qemu-aarch64)
#   CFLAGS_EXTRA extra compiler flags (e.g. -O0 -g)
#   KEEP=1       keep the build directory and print its path
#
# Exits non-zero if anything fails: tool installation, build or test.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC_AARCH64:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
missing=""
command -v "$cc" >/dev/null 2>&1 || missing="$missing gcc-aarch64-linux-gnu"
# The static libc and its headers (libc.a, fenv.h) come from the cross libc.
[ -f /usr/aarch64-linux-gnu/lib/libc.a ] || missing="$missing libc6-dev-arm64-cross"
command -v "$qemu" >/dev/null 2>&1 || missing="$missing qemu-user"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run.sh: missing:$missing; install them (as root: apt-get install$missing)" >&2
        exit 2
    fi
    echo "run.sh: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086 # word splitting of the package list is wanted
    apt-get install -y --no-install-recommends $missing
fi
command -v "$cc" >/dev/null 2>&1 || { echo "run.sh: $cc not found" >&2; exit 2; }
command -v "$qemu" >/dev/null 2>&1 || { echo "run.sh: $qemu not found" >&2; exit 2; }

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------
build=$(mktemp -d "${TMPDIR:-/tmp}/cosync-aarch64.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "run.sh: build directory: $build" >&2
else
    trap 'rm -rf "$build"' EXIT
fi

# check.h's CHECK_OK/CHECK_ERR name error codes with cosync_err_name(); the
# library is not built for AArch64 here, so a stub stands in for it.
cat >"$build/stub.c" <<'EOF'
#include "cosync.h"
const char *cosync_err_name(int err)
{
    return err == 0 ? "0" : "COSYNC_E?";
}
const char *cosync_strerror(int err)
{
    return err == 0 ? "success" : "unknown error";
}
EOF

# The same warnings and language mode as the CMake build.
warn="-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2"
defs="-D_GNU_SOURCE= -DCOSYNC_CTX_ASM=1 -DCOSYNC_DEBUG=1"
incs="-I$root/src -I$root/tests -I$root/include"
# shellcheck disable=SC2086
{
    "$cc" -std=c11 -O2 -g $warn $defs $incs ${CFLAGS_EXTRA:-} -c "$root/tests/test_context.c" -o "$build/test_context.o"
    "$cc" -std=c11 -O2 -g $warn $defs $incs ${CFLAGS_EXTRA:-} -c "$build/stub.c" -o "$build/stub.o"
    "$cc" -g -Wa,--noexecstack $defs ${CFLAGS_EXTRA:-} -c "$root/src/context/ctx_aarch64.S" -o "$build/ctx_aarch64.o"
    # Static: qemu-aarch64 needs no AArch64 sysroot (-L) at run time.
    "$cc" -static -o "$build/test_context" "$build/test_context.o" "$build/ctx_aarch64.o" "$build/stub.o" -lm
}

# ---------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------
failed=""
passed=0
# link_static OUT OBJECTS-AND-LIBS...: link a static test program, without
# glibc's note that a static getaddrinfo needs its shared NSS libraries at
# run time (the resolver's tests, the only callers, do not run here).
link_static() {
    out=$1
    shift
    if ! "$cc" -static -o "$out" "$@" 2>"$out.ld"; then
        cat "$out.ld" >&2
        return 1
    fi
    grep -v -e "statically linked applications requires" -e "in function .lookup_now.:" \
        "$out.ld" >&2 || true
}

# run LABEL LOG [QEMU OPTIONS] BINARY: run one test program under qemu,
# its output in LOG (shown if it fails); count it as passed or failed.
run() {
    label=$1 log=$2
    shift 2
    echo "run.sh: running $label" >&2
    if "$qemu" "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
    else
        tail -20 "$log" >&2
        failed="$failed $label"
    fi
}

run test_context "$build/test_context.log" "$build/test_context"

# Then the whole library and every other test program, so that the
# scheduler's AArch64 path (no inline switch) runs the full suite too.
incs_lib="-iquote $root/src -I$root/tests -I$root/include"
# the core's sources (not io/curl.c and io/tls.c, the optional libcurl
# driver and TLS: no libcurl or OpenSSL for AArch64 here)
core_sources() {
    for src in "$root"/src/*.c "$root"/src/threads/*.c "$root"/src/io/*.c "$root"/src/patterns/*.c "$root"/src/context/stack.c "$@"; do
        case "$src" in */io/curl.c | */io/tls.c) continue ;; esac
        echo "$src"
    done
}
for src in $(core_sources); do
    "$cc" -std=c11 -O2 -g $warn $defs $incs_lib ${CFLAGS_EXTRA:-} -c "$src" \
        -o "$build/lib_$(basename "$src" .c).o"
done
for test in "$root"/tests/test_*.c; do
    name=$(basename "$test" .c)
    [ "$name" = test_context ] && continue
    [ "$name" = test_context_avx512 ] && continue # x86-64's AVX-512 registers only
    [ "$name" = test_backtrace ] && continue      # runs the host's gdb on itself
    [ "$name" = test_curl ] && continue           # the libcurl driver is not built here
    [ "$name" = test_tls ] && continue            # nor TLS
    [ "$name" = test_resolve ] && continue        # replaces libc's getaddrinfo: needs dynamic linking
    [ "$name" = test_server ] && continue         # the same
    # qemu-user runs posix_spawn's shared-memory vfork as a fork and execs
    # the child itself: exec errors, the child's signal mask and session
    # are the emulator's, not what test_process checks of the kernel's
    [ "$name" = test_process ] && continue
    "$cc" -std=c11 -O2 -g $warn $defs $incs_lib ${CFLAGS_EXTRA:-} -c "$test" -o "$build/$name.o"
    link_static "$build/$name" "$build/$name.o" "$build"/lib_*.o "$build/ctx_aarch64.o" -lpthread -lm
    run "$name" "$build/$name.log" "$build/$name"
done
# Kernels with 64 KiB pages (some arm64 distributions): the loop's
# default stack must still work there, and the loop's whole life with it
# (test_loop; other tests ask for stacks below two such pages on purpose).
# qemu-user emulates the page size it is given.
run "test_loop(64k)" "$build/test_loop.64k.log" -p 65536 "$build/test_loop"
# Branch protection (-mbranch-protection=standard, as some distributions
# build everything): bti.c, freestanding, in an executable whose branch
# targets qemu checks (-z force-bti; every input must carry the BTI note,
# or the link fails), then the context test and the scheduler's tests built
# that way (libc is not built for BTI, so there the checks are off, but the
# switch's protected variant runs).
bp="-mbranch-protection=standard"
echo "run.sh: running bti (AArch64, branch targets checked)" >&2
# shellcheck disable=SC2086
if "$cc" -std=c11 -O2 $warn $defs $incs $bp -ffreestanding -fno-stack-protector -nostdlib -static \
    -Wl,-z,force-bti -Wl,--fatal-warnings "$here/bti.c" "$root/src/context/ctx_aarch64.S" \
    -o "$build/bti" && "$qemu" "$build/bti"; then
    passed=$((passed + 1))
else
    failed="$failed bti"
fi
mkdir "$build/bp"
# shellcheck disable=SC2086
for src in $(core_sources "$root"/src/context/ctx_aarch64.S); do
    "$cc" -std=c11 -O2 -g $warn $defs $incs_lib $bp -c "$src" -o "$build/bp/lib_$(basename "$src").o"
done
for name in test_context test_tasks test_dense test_loop; do
    # shellcheck disable=SC2086
    "$cc" -std=c11 -O2 -g $warn $defs $incs_lib $bp -c "$root/tests/$name.c" -o "$build/bp/$name.o"
    # shellcheck disable=SC2086
    if [ $name = test_context ]; then
        "$cc" $incs $bp -c "$build/stub.c" -o "$build/bp/stub.o"
        "$cc" -static -o "$build/bp/$name" "$build/bp/$name.o" "$build/bp/lib_ctx_aarch64.S.o" \
            "$build/bp/stub.o" -lm
    else
        link_static "$build/bp/$name" "$build/bp/$name.o" "$build"/bp/lib_*.o -lpthread -lm
    fi
    run "$name($bp)" "$build/bp/$name.log" "$build/bp/$name"
done
nfailed=$(echo $failed | wc -w)
echo "aarch64 tests: $passed passed, $nfailed failed"
if [ -n "$failed" ]; then
    echo "run.sh: FAIL:$failed" >&2
    exit 1
fi
echo "run.sh: PASS" >&2
