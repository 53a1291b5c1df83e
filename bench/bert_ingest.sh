#!/usr/bin/env bash
# bench/bert_ingest.sh -- end-to-end ingest with the BERT embedder: log lines
# piped through engram-pipe into a FLAT ring whose embedder is a
# MiniLM-L6-shaped model with random weights (bench_bert write; speed does
# not depend on the weights).  Each line is VADD logs * TEXT <line>,
# embedded on the server's worker pool.  Prints one JSON line per run with
# lines/s and the tokens per line, and the embedder's own one-text-per-call
# rate at 16 tokens from bench_bert in the same command for comparison.
#
# With CLIENTS=c (default 1), c engram-pipes ingest the same lines into c
# indices at once: one client's VADD ... TEXTs are embedded one at a time
# (each waits for the one before), so the pool's other workers only work
# for other clients; lines_per_s is then the total.
#
# Usage: [CLIENTS=2] bench/bert_ingest.sh [lines=400] [runs=2]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400}
RUNS=${2:-2}
CLIENTS=${CLIENTS:-1}
ENGRAM=${ENGRAM_BIN:-build/engram}
PIPE=${ENGRAM_PIPE_BIN:-build/engram-pipe}
BENCH=${BENCH_BERT:-build/bench/bench_bert}
for b in "$ENGRAM" "$PIPE" "$BENCH"; do
  [ -x "$b" ] || { echo "bench/bert_ingest.sh: build first ($b missing)" >&2; exit 1; }
done
tmp=$(mktemp -d)
EPID=""
trap 'if [ -n "$EPID" ]; then kill "$EPID" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
mkdir "$tmp/model"
"$BENCH" write "$tmp/model"
# Lines of 8-16 vocabulary words: 10-18 tokens with [CLS] and [SEP].
python3 - "$N" > "$tmp/lines.txt" <<'PY'
import random, sys
r = random.Random(42)
for _ in range(int(sys.argv[1])):
    print(" ".join("w%d" % r.randrange(4, 30522) for _ in range(r.randrange(8, 17))))
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "embedder minilm bert $tmp/model" > "$tmp/engram.conf"
"$ENGRAM" "$tmp/engram.conf" --port "$port" > "$tmp/engram.log" 2>&1 &
EPID=$!
for _ in $(seq 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
for run in $(seq "$RUNS"); do
  t0=$(date +%s.%N)
  pids=()
  for cl in $(seq "$CLIENTS"); do
    "$PIPE" --port "$port" --index "logs${run}_$cl" --create --dim 384 --embed minilm \
      --type flat --capacity 100000 < "$tmp/lines.txt" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  python3 -c "n=$N*$CLIENTS; t=$t1-$t0; print('{\"bench\":\"bert_ingest\",\"run\":$run,\"clients\":$CLIENTS,\"lines\":%d,\"seconds\":%.2f,\"lines_per_s\":%.1f,\"tokens_per_line\":\"10-18\"}' % (n, t, n / t))"
done
"$BENCH" 1 | grep '"tokens":16,"batch":1,'
