#!/usr/bin/env bash
# ensure-tools.sh [--go] - make sure the build and test tools are installed.
#
# Checks cmake, gcc, clang and clang's AddressSanitizer runtime, valgrind,
# pkg-config, libcurl's and OpenSSL's development files (for the optional
# cosync_curl and cosync_tls)
# (and, with --go, Go and Python 3, which run the benchmarks'
# peer programs, and GNU time, which measures their peak memory). If
# something is missing: as root, installs the Debian packages with apt-get;
# otherwise prints what to install and fails.
set -euo pipefail

want_go=0
for arg in "$@"; do
    case "$arg" in
    --go) want_go=1 ;;
    *) echo "usage: $0 [--go]" >&2; exit 2 ;;
    esac
done

missing=()

have() { command -v "$1" >/dev/null 2>&1; }

clang_asan_links() {
    local out
    out=$(mktemp /tmp/cosync-asan-check.XXXXXX)
    if echo 'int main(void){return 0;}' |
        clang -fsanitize=address -x c - -o "$out" >/dev/null 2>&1; then
        rm -f "$out"
        return 0
    fi
    rm -f "$out"
    return 1
}

# The sanitizer runtime's package is named after clang's major version
# (libclang-rt-14-dev on Debian 12, libclang-rt-19-dev on Debian 13): ask
# the clang that is installed, so that the name fits this release.
clang_runtime_package() {
    local major
    major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    echo "libclang-rt-${major:-14}-dev"
}

check() {
    missing=()
    have cmake || missing+=(cmake)
    have gcc || missing+=(gcc)
    have valgrind || missing+=(valgrind)
    have pkg-config || missing+=(pkg-config) # test_install builds with cosync.pc
    # the optional libcurl driver (cosync_curl) and its tests
    [ -f /usr/include/curl/curl.h ] || [ -f "/usr/include/$(gcc -dumpmachine 2>/dev/null)/curl/curl.h" ] ||
        missing+=(libcurl4-openssl-dev)
    # the optional TLS library (cosync_tls) and its tests
    [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
    if have clang; then
        clang_asan_links || missing+=("$(clang_runtime_package)")
    else
        missing+=(clang) # its runtime's package is known once it is in
    fi
    if [ "$want_go" = 1 ]; then
        have go || missing+=(golang-go)
        have python3 || missing+=(python3)
        [ -x /usr/bin/time ] || missing+=(time)
    fi
}

check
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "ensure-tools: missing: ${missing[*]}" >&2
    echo "ensure-tools: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "ensure-tools: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${missing[@]}"

check
if [ ${#missing[@]} -ne 0 ]; then # the runtime of the clang just installed
    echo "ensure-tools: installing: ${missing[*]}"
    apt-get install -y "${missing[@]}"
    check
fi
if [ ${#missing[@]} -ne 0 ]; then
    echo "ensure-tools: still missing after install: ${missing[*]}" >&2
    exit 1
fi
