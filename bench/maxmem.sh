#!/usr/bin/env bash
# bench/maxmem.sh -- what maxmemory costs when no eviction happens.
#
# Starts four engram servers from the same binary: without maxmemory,
# with `maxmemory 1gb` (noeviction: each write checks used memory, three
# atomic loads), with `maxmemory 1gb` under allkeys-lru (the check, plus
# every lookup stamping its key's clock), and a second one without
# maxmemory: the control, whose ratio to the first is the noise between
# two identical processes.  The limit is never reached.
# Each round runs `redis-benchmark -t set -P 16 -r 100000` against each,
# the order rotating every round; the server's CPU time (user+system, from
# /proc) per request is the figure, since on a small machine throughput is
# bound by redis-benchmark.  Prints one JSON line per server with the
# median CPU µs per request and its ratio to the server without maxmemory.
#
# Usage: bench/maxmem.sh [rounds=7] [requests=1000000] [clients=50]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
N=${2:-1000000}
C=${3:-50}
ENGRAM=${ENGRAM_BIN:-build/engram}
[ -x "$ENGRAM" ] || { echo "bench/maxmem.sh: build engram first ($ENGRAM)" >&2; exit 1; }
PIN_SERVER=""; PIN_CLIENT=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER="taskset -c 0"; PIN_CLIENT="taskset -c 1"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
tmp=$(mktemp -d)
NAMES=(unset noeviction allkeys-lru unset-control)
FLAGS=("" "--maxmemory 1gb" "--maxmemory 1gb --maxmemory-policy allkeys-lru" "")
PORTS=(); PIDS=()
for i in 0 1 2 3; do
  p=$(free_port)
  # shellcheck disable=SC2086
  $PIN_SERVER "$ENGRAM" --port "$p" --logfile "$tmp/e$i.log" ${FLAGS[$i]} &
  PIDS+=($!); PORTS+=("$p")
done
trap 'kill ${PIDS[*]} 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
for p in "${PORTS[@]}"; do
  for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
  for k in 0 1 2 3; do
    i=$(( (k + r) % 4 ))
    t0=$(cpu_ticks "${PIDS[$i]}")
    $PIN_CLIENT redis-benchmark -p "${PORTS[$i]}" -t set -n "$N" -c "$C" -P 16 -r 100000 -q >/dev/null 2>&1
    t1=$(cpu_ticks "${PIDS[$i]}")
    echo "$(( t1 - t0 ))" >> "$tmp/cpu.$i"
  done
done
med() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
base=$(med "$tmp/cpu.0")
for i in 0 1 2 3; do
  m=$(med "$tmp/cpu.$i")
  awk -v name="${NAMES[$i]}" -v m="$m" -v base="$base" -v n="$N" -v hz="$HZ" -v rounds="$ROUNDS" \
    -v used="$(redis-cli -p "${PORTS[$i]}" info stats | awk -F: '/^evicted_keys/ {gsub(/\r/,"",$2); print $2}')" \
    'BEGIN { printf "{\"bench\":\"maxmem\",\"test\":\"SET -P 16 -r 100000\",\"maxmemory\":\"%s\",\"rounds\":%d,\"requests\":%d,\"cpu_us_per_req\":%.4f,\"ratio_to_unset\":%.4f,\"evicted_keys\":%s}\n", name, rounds, n, m * 1e6 / hz / n, m / base, used }'
done
