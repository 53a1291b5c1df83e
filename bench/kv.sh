#!/usr/bin/env bash
# bench/kv.sh -- engram against Redis on Redis's own benchmark.
#
# Starts build/engram and Debian's redis-server (persistence off) on free
# ports, then runs redis-benchmark against each, alternating which goes
# first every round so drift on a busy machine hits both alike.  Prints one
# JSON line per (test, pipeline) with the median requests/s of each server
# and the engram/redis ratio.
#
# Both servers are single-threaded; when taskset exists each server runs on
# CPU 0 and redis-benchmark on CPU 1, so they never fight over a core and
# both servers get the same treatment (on a 2-core machine the scheduler
# otherwise decides more than the servers do).
#
# Throughput on a small machine is often bound by redis-benchmark itself, so
# the script also reads each server's CPU time (user+system, from /proc) per
# run and prints the CPU microseconds each server spent per request: the
# cost the server itself controls.
#
# With ENGRAM_BASE_BIN set to another engram binary (the previous design,
# say), that one runs too, in the same rounds (the order of the three
# rotates each round), and each line also carries its req/s and
# engram / base: a before-and-after comparison measured side by side.
#
# Optional environment (defaults: the behaviour above):
#   KV_TESTS      redis-benchmark -t list (default ping_mbulk,set,get,incr,mset);
#                 one test at a time gives CPU per request for that command
#   KV_PIPELINES  the -P values, in order (default "1 16")
#   KV_SETUP      one command, words split on blanks, sent with redis-cli to
#                 engram and Redis once after start (e.g. an ACL SETUSER)
#   KV_USER, KV_PASS  redis-benchmark --user / -a for engram and Redis (a
#                 user KV_SETUP made, say).  The base binary gets neither
#                 KV_SETUP nor the user: it is taken to be a build without
#                 ACLs, running as its only (default) user.
#
# Usage: bench/kv.sh [rounds=5] [requests=200000] [clients=50]
# Needs: redis-server and redis-benchmark (Debian: redis-server, redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
N=${2:-200000}
C=${3:-50}
TESTS=${KV_TESTS:-ping_mbulk,set,get,incr,mset}
PIPELINES=${KV_PIPELINES:-1 16}
AUTH=()
[ -n "${KV_USER:-}" ] && AUTH+=(--user "$KV_USER")
[ -n "${KV_PASS:-}" ] && AUTH+=(-a "$KV_PASS")
ENGRAM=${ENGRAM_BIN:-build/engram}
[ -x "$ENGRAM" ] || { echo "bench/kv.sh: build engram first ($ENGRAM)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "bench/kv.sh: needs redis-server (apt-get install redis-server)" >&2; exit 1; }

PIN_SERVER=""; PIN_CLIENT=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER="taskset -c 0"; PIN_CLIENT="taskset -c 1"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
tmp=$(mktemp -d)
EPORT=$(free_port); RPORT=$(free_port)
$PIN_SERVER "$ENGRAM" --port "$EPORT" --logfile "$tmp/engram.log" &
EPID=$!
$PIN_SERVER redis-server --port "$RPORT" --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
RPID=$!
BPORT=""; BPID=""
if [ -n "${ENGRAM_BASE_BIN:-}" ]; then
  BPORT=$(free_port)
  $PIN_SERVER "$ENGRAM_BASE_BIN" --port "$BPORT" --logfile "$tmp/base.log" &
  BPID=$!
fi
trap 'kill $EPID $RPID $BPID 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
for p in $EPORT $RPORT $BPORT; do
  for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
if [ -n "${KV_SETUP:-}" ]; then
  for p in $EPORT $RPORT; do
    # shellcheck disable=SC2086  # the words of KV_SETUP are the arguments
    out=$(redis-cli -p "$p" $KV_SETUP 2>&1)
    case $out in OK|"") ;; *) echo "bench/kv.sh: KV_SETUP on port $p: $out" >&2; exit 1 ;; esac
  done
fi

cpu_ticks() {  # pid -> utime+stime in clock ticks (0 where /proc is missing)
  if [ -r "/proc/$1/stat" ]; then awk '{print $14 + $15}' "/proc/$1/stat"; else echo 0; fi
}
NTESTS=$(echo "$TESTS" | tr ',' '\n' | wc -l)
run() {  # port pid pipeline cpufile [auth...] -> lines "TEST rps"; appends "ticks" to cpufile
  local t0 t1 port=$1 pid=$2 pl=$3 cf=$4
  shift 4
  t0=$(cpu_ticks "$pid")
  $PIN_CLIENT redis-benchmark -p "$port" "$@" -t "$TESTS" -n "$N" -c "$C" -P "$pl" --csv 2>/dev/null |
    awk -F'","' 'NR>1 { gsub(/"/,"",$1); gsub(/"/,"",$2); print $1, $2 }'
  t1=$(cpu_ticks "$pid")
  echo $((t1 - t0)) >> "$cf"
}

one() {  # e|r|b pipeline: one run of that server, its results appended
  case $1 in
    e) run "$EPORT" "$EPID" "$2" "$tmp/ec.$2" ${AUTH[@]+"${AUTH[@]}"} >> "$tmp/e.$2" ;;
    r) run "$RPORT" "$RPID" "$2" "$tmp/rc.$2" ${AUTH[@]+"${AUTH[@]}"} >> "$tmp/r.$2" ;;
    b) run "$BPORT" "$BPID" "$2" "$tmp/bc.$2" >> "$tmp/b.$2" ;;
  esac
}
for P in $PIPELINES; do
  : > "$tmp/e.$P"; : > "$tmp/r.$P"; : > "$tmp/b.$P"; : > "$tmp/ec.$P"; : > "$tmp/rc.$P"; : > "$tmp/bc.$P"
  for r in $(seq "$ROUNDS"); do
    if [ -n "$BPORT" ]; then
      case $((r % 3)) in
        1) order="e r b" ;; 2) order="r b e" ;; *) order="b e r" ;;
      esac
    elif [ $((r % 2)) = 1 ]; then order="e r"; else order="r e"; fi
    for who in $order; do one "$who" "$P"; done
  done
  python3 - "$tmp/e.$P" "$tmp/r.$P" "$P" "$N" "$C" "$ROUNDS" "$tmp/ec.$P" "$tmp/rc.$P" "$(getconf CLK_TCK)" "$NTESTS" "$tmp/b.$P" <<'PY'
import json, statistics, sys
def load(path):
    d = {}
    for line in open(path):
        name, rps = line.rsplit(" ", 1)
        d.setdefault(name, []).append(float(rps))
    return d
e, r, b = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[11])
for name in e:
    em, rm = statistics.median(e[name]), statistics.median(r.get(name, [0]))
    line = {"bench": "kv", "test": name, "pipeline": int(sys.argv[3]),
            "requests": int(sys.argv[4]), "clients": int(sys.argv[5]),
            "rounds": int(sys.argv[6]), "engram_rps": em, "redis_rps": rm,
            "ratio": round(em / rm, 3) if rm else None}
    if b:
        bm = statistics.median(b.get(name, [0]))
        line["base_rps"] = bm
        line["ratio_vs_base"] = round(em / bm, 3) if bm else None
    print(json.dumps(line))
# Server CPU per request over all tests of a run (median run).
tck, ntests, n = float(sys.argv[9]), int(sys.argv[10]), int(sys.argv[4])
def cpu_us(path):
    runs = [int(x) for x in open(path) if x.strip()]
    return statistics.median(runs) / tck * 1e6 / (n * ntests) if runs else None
ec, rc = cpu_us(sys.argv[7]), cpu_us(sys.argv[8])
bc = cpu_us(sys.argv[7].replace("/ec.", "/bc."))
if ec and rc:
    line = {"bench": "kv_cpu", "pipeline": int(sys.argv[3]), "requests_per_run": n * ntests,
            "engram_cpu_us_per_req": round(ec, 3), "redis_cpu_us_per_req": round(rc, 3),
            "ratio_redis_over_engram": round(rc / ec, 3)}
    if bc:
        line["base_cpu_us_per_req"] = round(bc, 3)
        line["ratio_base_over_engram"] = round(bc / ec, 3)
    print(json.dumps(line))
PY
done
