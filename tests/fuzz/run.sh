#!/usr/bin/env bash
# tests/fuzz/run.sh [seconds-per-target] [target ...] -- build the libFuzzer
# targets (clang, ASan+UBSan, build tree build-fuzz/) and run each for a
# bounded time, starting from its committed seeds (tests/fuzz/corpus/<t>/:
# every seed and kept reproducer is run first, so a regression fails at
# once).  What a run discovers goes to build-fuzz/corpus/<t>/, never into
# the committed corpus; a crash leaves its input in build-fuzz/artifacts/
# and makes the script fail.
#
#   tests/fuzz/run.sh            15 s per target (what tests/run.sh runs)
#   tests/fuzz/run.sh 3600       the long run, one hour per target
#   tests/fuzz/run.sh 60 wal snapshot
#   FUZZ_JOBS=2 tests/fuzz/run.sh 300    two targets at a time
#   FUZZ_CORPUS=dir                       where discoveries go (default
#                                         build-fuzz/corpus; tests/run.sh
#                                         gives a fresh one, so a short run
#                                         does not first replay a long run's)
#
# Targets: resp wal oplog snapshot vfilter vattr ftquery config pipe_resp.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECS=${1:-15}
shift || true
ALL="resp wal oplog snapshot vfilter vattr ftquery config pipe_resp"
TARGETS=${*:-$ALL}
JOBS=${JOBS:-2}
FUZZ_JOBS=${FUZZ_JOBS:-1}
B=$ROOT/build-fuzz
CORPUS=${FUZZ_CORPUS:-$B/corpus}

if ! command -v clang >/dev/null 2>&1; then
  echo "tests/fuzz/run.sh: clang not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
CC=clang cmake -S . -B "$B" -DENGRAM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" -j"$JOBS" --target $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# Bigger inputs where the seeds are files with sections and records.
max_len() {
  case $1 in
    snapshot) echo 262144 ;;
    wal) echo 65536 ;;
    config) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

run_one() {
  local t=$1 work=$CORPUS/$1 seeds=$ROOT/tests/fuzz/corpus/$1 log=$B/logs/$1.log
  mkdir -p "$work" "$B/artifacts" "$B/logs"
  if "$B/fuzz/fuzz_$t" -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=20 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-" \
       "$work" "$seeds" >"$log" 2>&1; then
    printf 'fuzz %-10s ok    %s\n' "$t" \
      "$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2 " runs"}')"
  else
    printf 'fuzz %-10s FAIL  (log: %s)\n' "$t" "$log"
    grep -E 'ERROR|check failed|SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/    /'
    return 1
  fi
}

status=0
pids=()
for t in $TARGETS; do
  if [ "$FUZZ_JOBS" -gt 1 ]; then
    run_one "$t" & pids+=($!)
    if [ ${#pids[@]} -ge "$FUZZ_JOBS" ]; then
      wait "${pids[0]}" || status=1
      pids=("${pids[@]:1}")
    fi
  else
    run_one "$t" || status=1
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status = 0 ] && echo "fuzz: all targets ran ${SECS}s without a finding"
exit $status
