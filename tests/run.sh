#!/usr/bin/env bash
# tests/run.sh -- the one command that installs what the tests lack, builds
# engram, and runs every test.  `.ci/run` runs exactly this.
#
# Stages (each a separate build tree, each run through ctest):
#   1. Release build (the shipped flags, warnings as errors): unit + integration
#   2. ASan+UBSan build: unit + integration
#   3. TSan build: the tests that involve threads
#   4. aarch64 cross build run under qemu-user: unit tests, NEON kernels for real
#   5. macOS (aarch64) cross build with zig cc: the kqueue backend compiles and links
#   6. libFuzzer targets (clang, ASan+UBSan): every seed and kept reproducer,
#      then 10 s of fuzzing per target (tests/fuzz/run.sh; 9 targets, < 3 min)
#
# On a machine without the packages: as root it installs them with apt-get;
# otherwise it prints the one command to run and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# ---- 1. dependencies ----------------------------------------------------------
PKGS="libcmocka-dev redis-server redis-tools python3 python3-redis python3-numpy stunnel4 openssl gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libcmocka-dev:arm64 npm file"
missing=()
for p in $PKGS; do
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_arch=0
dpkg --print-foreign-architectures 2>/dev/null | grep -qx arm64 || need_arch=1
if [ ${#missing[@]} -gt 0 ]; then
  line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  [ $need_arch = 1 ] && line="dpkg --add-architecture arm64 && $line"
  if [ "$(id -u)" = 0 ]; then
    echo "tests/run.sh: installing: ${missing[*]}"
    [ $need_arch = 1 ] && dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "tests/run.sh: missing packages. Run this as root, then run tests/run.sh again:"
    echo "  sudo sh -c '$line'"
    exit 1
  fi
fi

total_pass=0
total_fail=0
# Run ctest in a build tree; add its counts to the totals.
run_ctest() {
  local dir=$1; shift
  local log
  log=$(mktemp)
  set +e
  (cd "$dir" && ctest --output-on-failure -j"$JOBS" "$@") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local line
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1 || true)
  if [ -n "$line" ]; then
    local failed total
    failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    total=$(echo "$line" | sed -E 's/.* tests failed out of ([0-9]+).*/\1/')
    total_pass=$((total_pass + total - failed))
    total_fail=$((total_fail + failed))
  fi
  rm -f "$log"
  return $rc
}

stage() { echo; echo "==== $* ===="; }
status=0

stage "1/6 Release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DENGRAM_WERROR=ON -DENGRAM_REQUIRE_CMOCKA=ON >/dev/null
cmake --build build -j"$JOBS"
run_ctest build || status=1

stage "2/6 ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGRAM_SANITIZE=address -DENGRAM_REQUIRE_CMOCKA=ON -DENGRAM_BENCH=OFF >/dev/null
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest build-asan || status=1

stage "3/6 TSan build (threaded tests)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGRAM_SANITIZE=thread -DENGRAM_REQUIRE_CMOCKA=ON -DENGRAM_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$JOBS" --target engram engram-pipe embed_tool test_ev test_pool test_rwlock test_d2str test_vset test_vfilter test_crc32c test_snapfile
TSAN_OPTIONS=halt_on_error=1 run_ctest build-tsan -L threads || status=1

stage "4/6 aarch64 cross build under qemu (NEON)"
if bash tests/cross/arm64.sh; then :; else status=1; fi

stage "5/6 macOS cross build with zig (kqueue)"
if bash tests/cross/macos.sh; then :; else status=1; fi

stage "6/6 fuzz targets (libFuzzer, ASan+UBSan)"
# clang and its libFuzzer runtime are needed by this stage only: installed
# here (as root) rather than with the packages above, skipped with the
# reason otherwise.  A finding fails the run; its input is in
# build-fuzz/artifacts/ (keep it in tests/fuzz/corpus/<target>/ with the fix).
fuzz_ok=1
if ! command -v clang >/dev/null 2>&1 || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed"; then
  if [ "$(id -u)" = 0 ]; then
    echo "tests/run.sh: installing: clang libclang-rt-14-dev"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev || fuzz_ok=0
  else
    fuzz_ok=0
  fi
fi
if [ $fuzz_ok = 0 ]; then
  echo "skipped: clang with libFuzzer (clang, libclang-rt-14-dev) is not installed and this is not root"
  echo "  to run it: sudo apt-get install -y clang libclang-rt-14-dev && bash tests/fuzz/run.sh"
else
  fuzz_dir=$(mktemp -d)
  if FUZZ_CORPUS=$fuzz_dir bash tests/fuzz/run.sh "${FUZZ_SECONDS:-10}"; then
    total_pass=$((total_pass + 1))
  else
    total_fail=$((total_fail + 1))
    status=1
  fi
  rm -rf "$fuzz_dir"
fi

echo
echo "engram: $total_pass passed, $total_fail failed"
[ $status = 0 ] && [ $total_fail = 0 ]
