#!/bin/sh
# arm64.sh -- build engram's core for aarch64 and run its unit tests under
# qemu-aarch64, so the NEON kernels (src/vec/dist_neon.c) are really executed.
#
# Usage: tests/cross/arm64.sh [build-dir]     (default: build-arm64/ at the
# repository root).  Extra ctest arguments may be passed in CTEST_ARGS, e.g.
# CTEST_ARGS="-R test_dist".  Exits non-zero if configuring, building or any
# test fails.  Needs gcc-aarch64-linux-gnu, qemu-user, libcmocka-dev:arm64.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-"$root/build-arm64"}
jobs=${JOBS:-2}

for tool in aarch64-linux-gnu-gcc qemu-aarch64 cmake ctest; do
    command -v "$tool" >/dev/null 2>&1 || { echo "arm64.sh: $tool not found" >&2; exit 2; }
done

cmake -S "$root" -B "$build" \
    -DCMAKE_TOOLCHAIN_FILE="$root/tests/cross/aarch64.cmake" \
    -DCMAKE_BUILD_TYPE=Release \
    -DENGRAM_CORE_ONLY=ON
cmake --build "$build" -j "$jobs"
cd "$build"
# Under emulation everything runs ~30x slower: the HNSW tests shrink their
# sizes on aarch64 (the issue's sizes run natively), and the RESP parser's
# exhaustive split-at-every-offset tests, whose work does not depend on the
# architecture, run only in the native stages.
# shellcheck disable=SC2086  # CTEST_ARGS is a word list on purpose
ctest --output-on-failure -j "$jobs" -E '^unit/test_resp$' ${CTEST_ARGS:-}

# The BERT embedder's numbers on NEON: the model tests of test_bert.py
# (numpy references) with the aarch64 embed_tool under qemu.
if /usr/bin/python3 -c "import numpy" >/dev/null 2>&1; then
    cmake --build "$build" -j "$jobs" --target embed_tool
    ENGRAM_EMBED_TOOL="$build/tests/embed_tool" \
    ENGRAM_EMBED_TOOL_WRAP="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
        /usr/bin/python3 "$root/tests/integration/test_bert.py" BertModelTest
fi
