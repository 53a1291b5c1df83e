#!/usr/bin/env bash
# bench/kv.sh -- engram against Redis on Redis's own benchmark.
#
# Starts build/engram and Debian's redis-server (persistence off) on free
# ports, then runs redis-benchmark against each, alternating which goes
# first every round so drift on a busy machine hits both alike.  Prints one
# JSON line per (test, pipeline) with the median requests/s of each server
# and the engram/redis ratio.
#
# Usage: bench/kv.sh [rounds=3] [requests=200000] [clients=50]
# Needs: redis-server and redis-benchmark (Debian: redis-server, redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N=${2:-200000}
C=${3:-50}
TESTS=ping_mbulk,set,get,incr,mset
ENGRAM=${ENGRAM_BIN:-build/engram}
[ -x "$ENGRAM" ] || { echo "bench/kv.sh: build engram first ($ENGRAM)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "bench/kv.sh: needs redis-server (apt-get install redis-server)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
tmp=$(mktemp -d)
EPORT=$(free_port); RPORT=$(free_port)
"$ENGRAM" --port "$EPORT" --logfile "$tmp/engram.log" &
EPID=$!
redis-server --port "$RPORT" --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
RPID=$!
trap 'kill $EPID $RPID 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
for p in $EPORT $RPORT; do
  for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

run() {  # port pipeline -> lines "TEST rps"
  redis-benchmark -p "$1" -t "$TESTS" -n "$N" -c "$C" -P "$2" --csv 2>/dev/null |
    awk -F'","' 'NR>1 { gsub(/"/,"",$1); gsub(/"/,"",$2); print $1, $2 }'
}

for P in 1 16; do
  : > "$tmp/e.$P"; : > "$tmp/r.$P"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      run "$EPORT" "$P" >> "$tmp/e.$P"; run "$RPORT" "$P" >> "$tmp/r.$P"
    else
      run "$RPORT" "$P" >> "$tmp/r.$P"; run "$EPORT" "$P" >> "$tmp/e.$P"
    fi
  done
  python3 - "$tmp/e.$P" "$tmp/r.$P" "$P" "$N" "$C" "$ROUNDS" <<'PY'
import json, statistics, sys
def load(path):
    d = {}
    for line in open(path):
        name, rps = line.rsplit(" ", 1)
        d.setdefault(name, []).append(float(rps))
    return d
e, r = load(sys.argv[1]), load(sys.argv[2])
for name in e:
    em, rm = statistics.median(e[name]), statistics.median(r.get(name, [0]))
    print(json.dumps({"bench": "kv", "test": name, "pipeline": int(sys.argv[3]),
                      "requests": int(sys.argv[4]), "clients": int(sys.argv[5]),
                      "rounds": int(sys.argv[6]), "engram_rps": em, "redis_rps": rm,
                      "ratio": round(em / rm, 3) if rm else None}))
PY
done
