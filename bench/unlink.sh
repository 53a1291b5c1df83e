#!/usr/bin/env bash
# unlink.sh -- PING latency while a big HNSW vector set is freed (issue 14):
# UNLINK, DEL, FLUSHALL ASYNC and FLUSHALL of a 1M-vector set, each against
# the PING probe alone on the same server just before.
#
#   bench/unlink.sh [n=1000000]
#
# Builds nothing: runs $BUILD/engram and $BUILD/bench/bench_vfree (BUILD
# defaults to build/, relative to the repository root; configure with
# -DCMAKE_BUILD_TYPE=Release).  Environment: VF_DIM (32), VF_QUANT (Q8),
# VF_M (16), VF_BUILD_EF (10), VF_ROUNDS (2; each op builds its own set,
# 35-55 s at 1M on the shared 2-core VM, so 2 rounds of 4 ops take 6-10
# minutes and 3 rounds ~15),
# VF_OPS (unlink,del,flushall_async,flushall), VF_PING_US (1000),
# VF_ATTRS (1: every element also gets a SETATTR attribute, one more
# allocation each), VF_SERVER_CPUS / VF_CLIENT_CPUS (taskset CPU lists).
#
# Memory: a set takes ~300 bytes a vector at dim 32 (Q8); n is halved until
# four times the set fits in MemAvailable, and a "vfree_summary" line says
# so when it was.  The server starts on a free port, memory only, and is
# stopped by its pid (SIGTERM) at the end, whatever happens.  Prints
# bench_vfree's JSON lines, then one "vfree_summary" line per op with the
# medians over rounds: the PING probe's p50/p99/max during the free (from
# sending the op until the lazy-free thread is done) and over the whole
# window (200 ms before the op to 200 ms after the free), the idle probe's
# (the reference: same server, same set, just before), p99_vs_idle (p99
# during the free / idle p99), the op's own reply time, how long the free
# took (wall, and CPU on the lazy-free thread), the op's time in the
# server's handler (INFO commandstats), and the loop thread's
# run-queue wait over the op (time it was runnable but had no CPU: this
# machine's doing, not the server's).
set -euo pipefail

n=${1:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
for f in "$build/engram" "$build/bench/bench_vfree"; do
    [ -e "$f" ] || { echo "unlink.sh: missing $f" >&2; exit 2; }
done

avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
asked=$n
while [ $((n * 300 * 4 / 1024)) -gt "$avail_kb" ] && [ "$n" -gt 10000 ]; do n=$((n / 2)); done
if [ "$n" != "$asked" ]; then
    echo "{\"bench\":\"vfree_summary\",\"what\":\"shrunk\",\"asked\":$asked,\"n\":$n,\"mem_available_kb\":$avail_kb}"
fi

tmp=$(mktemp -d)
spid=
cleanup() {
    if [ -n "$spid" ]; then
        kill -TERM "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

spin=(); cpin=()
[ -n "${VF_SERVER_CPUS:-}" ] && spin=(taskset -c "$VF_SERVER_CPUS")
[ -n "${VF_CLIENT_CPUS:-}" ] && cpin=(taskset -c "$VF_CLIENT_CPUS")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"${spin[@]}" "$build/engram" --port "$port" --bind 127.0.0.1 --logfile "$tmp/engram.log" &
spid=$!
up=
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$up" ] || { echo "unlink.sh: engram did not start:" >&2; cat "$tmp/engram.log" >&2; exit 1; }

attrs=()
[ "${VF_ATTRS:-1}" = 1 ] && attrs=(--attrs)
out=$tmp/out.jsonl
"${cpin[@]}" "$build/bench/bench_vfree" --host 127.0.0.1 --port "$port" --server-pid "$spid" \
    --n "$n" --dim "${VF_DIM:-32}" --quant "${VF_QUANT:-Q8}" --M "${VF_M:-16}" \
    --build-ef "${VF_BUILD_EF:-10}" --rounds "${VF_ROUNDS:-2}" \
    --ops "${VF_OPS:-unlink,del,flushall_async,flushall}" \
    --ping-interval-us "${VF_PING_US:-1000}" "${attrs[@]}" | tee "$out"
kill -TERM "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
spid=

python3 - "$out" <<'PY'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = statistics.median
setup = next(r for r in rows if r["phase"] == "setup")
ops = []
for r in rows:
    if r["phase"] == "op" and r["op"] not in ops:
        ops.append(r["op"])

def pick(phase, op):
    return [r for r in rows if r["phase"] == phase and r.get("op") == op and r.get("samples")]

for op in ops:
    o = [r for r in rows if r["phase"] == "op" and r["op"] == op]
    idle, dur, win = pick("ping_idle", op), pick("during_free", op), pick("window", op)
    builds = [r for r in rows if r["phase"] == "build" and r["for"] == op]
    def m(rs, k):
        return round(med(r[k] for r in rs), 1) if rs else None
    out = dict(bench="vfree_summary", what="op", op=op, n=setup["n"], dim=setup["dim"],
               quant=setup["quant"], attrs=setup["attrs"], rounds=len(o),
               during_p50_us=m(dur, "p50_us"), during_p99_us=m(dur, "p99_us"),
               during_max_us=m(dur, "max_us"), during_samples=m(dur, "samples"),
               window_p99_us=m(win, "p99_us"), window_max_us=m(win, "max_us"),
               idle_p50_us=m(idle, "p50_us"), idle_p99_us=m(idle, "p99_us"),
               idle_max_us=m(idle, "max_us"),
               cmd_us=m(o, "cmd_us"), server_cmd_us=m(o, "server_cmd_us"), free_ms=m(o, "free_ms"),
               free_cpu_ms=round(med(r.get("free_cpu_s", 0) for r in o) * 1e3, 1),
               loop_runq_wait_ms=round(med(r.get("loop_runq_wait_ms", 0) for r in o), 2),
               set_bytes_per_vector=m(builds, "bytes_per_vector"),
               rss_mb_before=round(med(r["rss_kb_before"] for r in o) / 1024, 1),
               rss_mb_after=round(med(r["rss_kb_after"] for r in o) / 1024, 1))
    if dur and idle:
        out["p99_vs_idle"] = round(med(d["p99_us"] / i["p99_us"] for d, i in zip(dur, idle)), 2)
    print(json.dumps(out))
PY
