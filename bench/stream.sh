#!/usr/bin/env bash
# bench/stream.sh -- end-to-end streaming ingest: log lines piped through
# engram-pipe into a capacity-bounded index with the built-in hash embedder.
#
# Generates N synthetic log lines (a fixed mix of web, disk, auth and kernel
# messages with varying hosts, numbers and paths; ~100 bytes each), starts
# build/engram (in memory) and pipes the file through
#     engram-pipe --index logs --create --capacity C --embed hash --type T
# timing it from start to the last reply.  Prints one JSON line per
# (type, run) with lines/s, and one line with the embedder's own rate
# (build/bench/bench_embed) measured in the same run, so the wire's cost
# shows as the ratio between the two.  As bench/kv.sh, the server runs on
# CPU 0 and the client on CPU 1 when taskset exists.
#
# Usage: bench/stream.sh [lines=500000] [capacity=100000] [runs=3]
#        TYPES=flat,hnsw bench/stream.sh ...   (default flat: an HNSW ring
#        inserts at graph-building speed, ~3k lines/s with the defaults, so
#        500k lines take minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500000}
CAP=${2:-100000}
RUNS=${3:-3}
ENGRAM=${ENGRAM_BIN:-build/engram}
PIPE=${ENGRAM_PIPE_BIN:-build/engram-pipe}
EMBED_BENCH=${EMBED_BENCH:-build/bench/bench_embed}
for b in "$ENGRAM" "$PIPE"; do
  [ -x "$b" ] || { echo "bench/stream.sh: build first ($b missing)" >&2; exit 1; }
done
PIN_SERVER=""; PIN_CLIENT=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER="taskset -c 0"; PIN_CLIENT="taskset -c 1"
fi
tmp=$(mktemp -d)
trap 'kill $EPID 2>/dev/null || true; rm -rf "$tmp"' EXIT
EPID=""

python3 - "$N" > "$tmp/lines.txt" <<'EOF'
import random, sys
n = int(sys.argv[1]); r = random.Random(42)
hosts = ["web%d" % i for i in range(1, 9)] + ["db1", "db2", "cache1"]
paths = ["/api/v1/users", "/api/v1/orders", "/health", "/static/app.js", "/login", "/search"]
users = ["alice", "bob", "carol", "dave", "erin", "frank"]
out = []
for i in range(n):
    t = "2026-11-22T%02d:%02d:%02d.%03dZ" % (r.randrange(24), r.randrange(60), r.randrange(60), r.randrange(1000))
    h = r.choice(hosts); k = r.random()
    if k < 0.55:
        line = "%s %s nginx: %s %s %d %dms ua=Mozilla/5.0" % (t, h, r.choice(["GET", "POST"]), r.choice(paths), r.choice([200, 200, 200, 304, 404, 500]), r.randrange(1, 900))
    elif k < 0.75:
        line = "%s %s sshd[%d]: Accepted publickey for %s from 10.%d.%d.%d port %d" % (t, h, r.randrange(1000, 60000), r.choice(users), r.randrange(256), r.randrange(256), r.randrange(256), r.randrange(1024, 65535))
    elif k < 0.9:
        line = "%s %s kernel: EXT4-fs warning (device sd%s%d): ext4_dx_add_entry: directory index full, %d entries" % (t, h, r.choice("abc"), r.randrange(1, 4), r.randrange(10000, 99999))
    else:
        line = "%s %s app[%d]: ERROR disk full writing /var/lib/app/chunk-%d.dat: No space left on device" % (t, h, r.randrange(100, 999), r.randrange(100000))
    out.append(line)
sys.stdout.write("\n".join(out) + "\n")
EOF
bytes=$(wc -c < "$tmp/lines.txt")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
$PIN_SERVER "$ENGRAM" --port "$port" --logfile "$tmp/engram.log" &
EPID=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

for type in $(echo "${TYPES:-flat}" | tr , ' '); do
  for run in $(seq "$RUNS"); do
    redis-cli -p "$port" vdrop logs >/dev/null 2>&1 || true
    t0=$(date +%s.%N)
    $PIN_CLIENT "$PIPE" --port "$port" --index logs --create --capacity "$CAP" --embed hash \
      --type "$type" < "$tmp/lines.txt"
    t1=$(date +%s.%N)
    count=$(redis-cli -p "$port" vcard logs)
    evicted=$(redis-cli -p "$port" vinfo logs | awk 'p{print;exit} /^evicted$/{p=1}')
    python3 -c "
import json; n=$N; dt=$t1-$t0
print(json.dumps({'bench':'stream_ingest','type':'$type','run':$run,'lines':n,'bytes':$bytes,
  'capacity':$CAP,'dim':256,'embed':'hash','seconds':round(dt,3),'lines_per_s':round(n/dt),
  'count':int('$count'),'evicted':int('$evicted')}))"
  done
done
if [ -x "$EMBED_BENCH" ]; then
  $PIN_CLIENT "$EMBED_BENCH" 2>/dev/null | grep '"dim":256' | head -2 || true
fi
