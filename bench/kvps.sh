#!/usr/bin/env bash
# bench/kvps.sh -- hashes and pub/sub against Redis on redis-benchmark
# (issue 15); a sibling of bench/kv.sh, built the same way.
#
# Tests, each one redis-benchmark run per server and pipeline depth:
#   hset       redis-benchmark -t hset (HSET myhash element:__rand_int__ xxx)
#   publish    redis-benchmark ... PUBLISH chan msg, nobody subscribed
#   publish_1sub  the same with one subscriber to chan attached: a small
#              python3 reader (SUBSCRIBE chan, then recv into nothing, so it
#              never falls behind the way a printing redis-cli can), started
#              before the run and stopped after it; its byte count is checked
#              against the messages the run must have delivered
# Starts the engram binary and Debian's redis-server (persistence off) on free
# ports; every round runs every test against each server, alternating which
# server goes first each round, so drift on a busy machine hits both alike.
# When taskset exists each server runs on CPU 0 and redis-benchmark and the
# subscriber on CPU 1.  Prints one JSON line per (test, pipeline): median
# requests/s of each server and engram/redis, and the median server CPU
# (all its threads, from /proc/PID/task/*/schedstat) per request of each,
# with redis/engram.
#
# Usage: bench/kvps.sh [rounds=5] [requests=200000] [clients=50]
# Environment: ENGRAM_BIN (default build-rel/engram), KVPS_PIPELINES ("1 16"),
# KVPS_PIPE_MULT (5: pipelined runs send requests x 5, so that they last
# seconds, not a fraction of one).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
N=${2:-200000}
C=${3:-50}
TESTS="hset publish publish_1sub"
ENGRAM=${ENGRAM_BIN:-build-rel/engram}
[ -x "$ENGRAM" ] || { echo "bench/kvps.sh: build engram first ($ENGRAM)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "bench/kvps.sh: needs redis-server" >&2; exit 1; }

PIN_SERVER=""; PIN_CLIENT=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER="taskset -c 0"; PIN_CLIENT="taskset -c 1"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
tmp=$(mktemp -d)
EPORT=$(free_port); RPORT=$(free_port)
$PIN_SERVER "$ENGRAM" --port "$EPORT" --bind 127.0.0.1 --logfile "$tmp/engram.log" &
EPID=$!
$PIN_SERVER redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
RPID=$!
SUBPID=""
trap 'kill $EPID $RPID $SUBPID 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
for p in $EPORT $RPORT; do
  for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

cat > "$tmp/sub.py" <<'PY'
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nchan\r\n")
total = 0
try:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        total += len(b)
finally:
    open(sys.argv[2], "w").write("%d\n" % total)
PY
# a message as delivered: *3 $7 message $4 chan $3 msg (RESP2)
MSGBYTES=$(printf '*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$3\r\nmsg\r\n' | wc -c)

# the server's CPU time in ns over all its threads (schedstat: ns resolution,
# where /proc/PID/stat's ticks are 10 ms)
cpu_ticks() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
numsub() { redis-cli -p "$1" PUBSUB NUMSUB chan | sed -n 2p; }

one() {  # server(e|r) test pipeline -> appends "rps ticks" to $tmp/$server.$test.$P
  local port pid t0 t1 rps
  if [ "$1" = e ]; then port=$EPORT; pid=$EPID; else port=$RPORT; pid=$RPID; fi
  local n=$N
  [ "$3" -gt 1 ] && n=$((N * ${KVPS_PIPE_MULT:-5}))
  local args=(-p "$port" -n "$n" -c "$C" -P "$3" --csv)
  if [ "$2" = publish_1sub ]; then
    $PIN_CLIENT python3 "$tmp/sub.py" "$port" "$tmp/subbytes" &
    SUBPID=$!
    for _ in $(seq 100); do [ "$(numsub "$port")" = 1 ] && break; sleep 0.02; done
  fi
  t0=$(cpu_ticks "$pid")
  case $2 in
    hset) rps=$($PIN_CLIENT redis-benchmark "${args[@]}" -t hset 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2}') ;;
    *) rps=$($PIN_CLIENT redis-benchmark "${args[@]}" PUBLISH chan msg 2>/dev/null | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2}') ;;
  esac
  t1=$(cpu_ticks "$pid")
  local extra=""
  if [ "$2" = publish_1sub ]; then
    # the subscriber must still be there, and have received every message
    local alive; alive=$(numsub "$port")
    sleep 0.2
    kill "$SUBPID" 2>/dev/null || true; wait "$SUBPID" 2>/dev/null || true; SUBPID=""
    local got; got=$(cat "$tmp/subbytes" 2>/dev/null || echo 0)
    # SUBSCRIBE's own reply is 33 bytes; redis-benchmark may send a few more than N
    extra=" $alive $(( got / MSGBYTES ))"
  fi
  echo "$rps $((t1 - t0))$extra" >> "$tmp/$1.$2.$3"
}

for P in ${KVPS_PIPELINES:-1 16}; do
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="e r"; else order="r e"; fi
    for t in $TESTS; do
      for who in $order; do one "$who" "$t" "$P"; done
    done
  done
  NP=$N; [ "$P" -gt 1 ] && NP=$((N * ${KVPS_PIPE_MULT:-5}))
  python3 - "$tmp" "$P" "$NP" "$C" "$ROUNDS" 1000000000 $TESTS <<'PY'
import json, statistics, sys
tmp, P, N, C, R, tck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
med = statistics.median
for t in sys.argv[7:]:
    def load(s):
        return [l.split() for l in open("%s/%s.%s.%d" % (tmp, s, t, P)) if l.strip()]
    e, r = load("e"), load("r")
    ratios = [float(a[0]) / float(b[0]) for a, b in zip(e, r)]
    ecpu = med(int(x[1]) for x in e) / tck * 1e6 / N
    rcpu = med(int(x[1]) for x in r) / tck * 1e6 / N
    line = {"bench": "kvps", "test": t, "pipeline": P, "requests": N, "clients": C, "rounds": R,
            "engram_rps": med(float(x[0]) for x in e), "redis_rps": med(float(x[0]) for x in r),
            "ratio": round(med(ratios), 3), "ratios": [round(x, 3) for x in ratios],
            "engram_cpu_us_per_req": round(ecpu, 3), "redis_cpu_us_per_req": round(rcpu, 3),
            "cpu_redis_over_engram": round(rcpu / ecpu, 3) if ecpu else None}
    if t == "publish_1sub":
        line["engram_sub_alive"] = [int(x[2]) for x in e]
        line["redis_sub_alive"] = [int(x[2]) for x in r]
        line["engram_sub_received"] = [int(x[3]) for x in e]
        line["redis_sub_received"] = [int(x[3]) for x in r]
    print(json.dumps(line))
PY
done
