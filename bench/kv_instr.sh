#!/usr/bin/env bash
# bench/kv_instr.sh -- a server's user-space instructions per request on
# redis-benchmark, counted by valgrind's callgrind: unlike CPU time, the
# count hardly depends on what else the machine is doing, so a few percent
# shows on a shared 2-core VM where kv.sh's CPU figures move by 10%.
#
# Starts BIN under callgrind, zeroes the counters once it answers PING,
# runs `redis-benchmark -t TEST -n N -c 50 -P 16`, dumps, and prints one
# JSON line: the instructions per request of the whole server and of the
# functions named in KI_FUNCS (inclusive; default acl_check).  The count
# includes the connections' set-up (50 accepts, and AUTH with KI_USER),
# a few per cent at most; two runs of the same binary differ by ~1-2% (how
# requests fall into reads changes the per-read share).
#
# Optional environment: KI_SETUP (one command, words split on blanks, sent
# with redis-cli before the run), KI_USER and KI_PASS (redis-benchmark
# --user / -a), KI_FUNCS (function names, blank separated).
#
# Usage: bench/kv_instr.sh BIN TEST [N=20000]
# Needs: valgrind (callgrind_control, callgrind_annotate), redis-benchmark.
set -euo pipefail
BIN=$1; T=$2; N=${3:-20000}
FUNCS=${KI_FUNCS:-acl_check}
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" "$BIN" --port "$port" \
  --logfile "$tmp/log" >/dev/null 2>"$tmp/vg.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
if [ -n "${KI_SETUP:-}" ]; then
  # shellcheck disable=SC2086  # the words of KI_SETUP are the arguments
  redis-cli -p "$port" $KI_SETUP >/dev/null
fi
AUTH=()
[ -n "${KI_USER:-}" ] && AUTH+=(--user "$KI_USER")
[ -n "${KI_PASS:-}" ] && AUTH+=(-a "$KI_PASS")
callgrind_control -z "$pid" >/dev/null
redis-benchmark -p "$port" ${AUTH[@]+"${AUTH[@]}"} -t "$T" -n "$N" -c 50 -P 16 -q >/dev/null 2>&1
callgrind_control -d "$pid" >/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true
callgrind_annotate --inclusive=yes --threshold=100 "$(ls "$tmp"/cg."$pid".* | sort | head -1)" \
  >"$tmp/ann" 2>/dev/null
python3 - "$tmp/ann" "$BIN" "$T" "$N" "$FUNCS" <<'PY'
import json, re, sys
ann, binary, test, n, funcs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split()
total, per = None, {}
for line in open(ann):
    m = re.match(r"\s*([\d,]+) .*?(PROGRAM TOTALS|:(\w+) \[)", line)
    if not m: continue
    ir = int(m.group(1).replace(",", ""))
    if m.group(2) == "PROGRAM TOTALS": total = ir
    elif m.group(3) in funcs and m.group(3) not in per: per[m.group(3)] = ir
out = {"bench": "kv_instr", "bin": binary, "test": test, "requests": n, "pipeline": 16,
       "instr_per_req": round(total / n, 1)}
for f in funcs: out[f + "_per_req"] = round(per.get(f, 0) / n, 1)
print(json.dumps(out))
PY
