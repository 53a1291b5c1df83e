#!/usr/bin/env bash
# vserver.sh -- VSEARCH over the wire against the in-process figure, and
# PING latency under full search load, in one run.
#
#   bench/vserver.sh DATA_DIR [conns=4]
#
# DATA_DIR holds NAME_base.fvecs, NAME_query.fvecs, NAME_groundtruth.ivecs
# (e.g. /work/shared/data/siftsmall).  Builds nothing: it runs
# $BUILD/engram, $BUILD/bench/bench_vserver and $BUILD/bench/bench_ann
# (BUILD defaults to build/; relative paths are from the repository root;
# configure with -DCMAKE_BUILD_TYPE=Release).
# Environment: VS_EF (ef list, default 10,20,40,80), VS_M (16), VS_EFC (200),
# VS_PIPELINE (64), VS_SECS (seconds per wire search run, 2),
# VS_MIN_QUERIES (bench_ann's, 20000), VS_SEARCH_THREADS (passed to
# engram --search-threads when set; default: the server's default),
# VS_SERVER_ARGS (extra engram flags), VS_SERVER_CPUS / VS_CLIENT_CPUS
# (taskset CPU lists for the server and for bench_vserver; bench_ann runs
# on VS_SERVER_CPUS too, so both sides of the ratio see the same cores),
# VS_PING_US (the PING client's pause between PINGs, default 1000;
# redis-cli --latency uses 10000: each PING is a wake-up of the loop and
# of the search core, so at 1000 the probe is itself about 1000 requests/s
# of load).
#
# The server starts on a free port with its log in a temp dir and is
# stopped (SIGTERM) at the end, whatever happens.  Prints bench_vserver's
# and bench_ann's JSON lines, then "vserver_ratio" lines per ef:
#   wire_per_core   wire VSEARCH/s over `conns` connections
#                   / (bench_ann single-thread QPS x search cores), where
#                   search cores = min(search_threads, online cores).
#                   Target >= 0.8.  bench_ann runs before the server starts
#                   and after it stops; its QPS here is the mean of the two
#                   (inproc_qps_runs: each).
#   wire_1conn      wire VSEARCH/s over 1 connection / bench_ann QPS
#                   (one search at a time per connection: the per-request
#                   overhead of the wire path).
#   wire_per_server_cpu  wire VSEARCH/s / (bench_ann QPS x server CPU
#                   cores actually used during the run): the server's CPU
#                   efficiency, independent of how much of the machine the
#                   client process took.
#   ping_p99        PING p99 under the N-connection search load; target
#                   < 1000 us.
#   wire_floor      the same N-connection run at k = 0 (the server parses
#                   each query and passes it through the pool, but searches
#                   nothing and answers an empty array): floor_us is the
#                   server's CPU per query there, what the wire path costs
#                   on this machine when searching is free.  Each
#                   wire_per_server_cpu line then carries ratio_bound =
#                   s / (s + floor_us), s being the in-process time per
#                   search: the best that ratio could be if a search over
#                   the wire cost exactly its in-process time plus
#                   that floor (formatting k results, bigger replies and
#                   cache interference all come on top).
# The client, the server and bench_ann share the machine: on a small box
# the client's own CPU (client_cpu_s) comes out of the search cores.
#
# VS_ROUNDS (default 1) repeats the wire run that many times, each with a
# fresh server (load, searches, floor); the ratios above then use, per
# line, the run with the median figure.  With ENGRAM_BASE_BIN set to
# another engram binary (the previous design, say), that one is driven by
# the same client in the same rounds, the order alternating each round so
# drift on a busy machine hits both alike, and "vserver_vs_base" lines
# follow, with the medians of each and engram / base:
#   load          VADD/s while building the index, and the server's CPU
#                 microseconds per VADD (cpu_ratio: engram / base)
#   search        VSEARCH/s per (ef, conns), both recalls, and the server's
#                 CPU microseconds per VSEARCH (cpu_ratio: engram / base;
#                 on a shared machine it moves far less than VSEARCH/s)
#   floor         server CPU per query at k = 0 (base / engram: above 1
#                 means the new binary spends less)
#   ping_p99      PING p99 under the N-connection search load, per ef
# In these two modes every bench_vserver line carries "server" (engram or
# base) and "round".  bench_ann (this tree's) runs once before and once
# after all rounds.
set -euo pipefail

dir=${1:?usage: bench/vserver.sh DATA_DIR [conns]}
conns=${2:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
ef=${VS_EF:-10,20,40,80}
M=${VS_M:-16}
efc=${VS_EFC:-200}
pipeline=${VS_PIPELINE:-64}
secs=${VS_SECS:-2}
minq=${VS_MIN_QUERIES:-20000}

base=$(ls "$dir"/*_base.fvecs | head -n1)
name=$(basename "$base" _base.fvecs)
query=$dir/${name}_query.fvecs
gt=$dir/${name}_groundtruth.ivecs
for f in "$base" "$query" "$gt" "$build/engram" "$build/bench/bench_vserver" "$build/bench/bench_ann"; do
    [ -e "$f" ] || { echo "vserver.sh: missing $f" >&2; exit 2; }
done

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

out=$tmp/out.jsonl
spin=(); cpin=()
[ -n "${VS_SERVER_CPUS:-}" ] && spin=(taskset -c "$VS_SERVER_CPUS")
[ -n "${VS_CLIENT_CPUS:-}" ] && cpin=(taskset -c "$VS_CLIENT_CPUS")
# The in-process figures, with no server running, so nothing competes; once
# before and once after the wire runs: this VM's speed drifts by the minute,
# and the ratios divide by the mean of the two.
ann_run() {
    "${spin[@]}" "$build/bench/bench_ann" --base "$base" --query "$query" --gt "$gt" --M "$M" \
        --efc "$efc" --ef "$ef" --metric l2 --min-queries "$minq" | tee -a "$out"
}
ann_run

rounds=${VS_ROUNDS:-1}
base_bin=${ENGRAM_BASE_BIN:-}
[ -z "$base_bin" ] || [ -x "$base_bin" ] || { echo "vserver.sh: ENGRAM_BASE_BIN is not executable: $base_bin" >&2; exit 2; }
tag=
if [ -n "$base_bin" ] || [ "$rounds" -gt 1 ]; then tag=1; fi
# One wire run: a fresh server from binary $2 (engram or base: $1), loaded
# and searched by bench_vserver, then stopped.
wire_run() {
    local who=$1 bin=$2 round=$3 port up sargs
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    sargs=(--port "$port" --bind 127.0.0.1 --logfile "$tmp/$who.log")
    [ -n "${VS_SEARCH_THREADS:-}" ] && sargs+=(--search-threads "$VS_SEARCH_THREADS")
    # shellcheck disable=SC2206
    [ -n "${VS_SERVER_ARGS:-}" ] && sargs+=($VS_SERVER_ARGS)
    "${spin[@]}" "$bin" "${sargs[@]}" &
    spid=$!
    up=
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$up" ] || { echo "vserver.sh: $bin did not start:" >&2; cat "$tmp/$who.log" >&2; exit 1; }
    "${cpin[@]}" "$build/bench/bench_vserver" --host 127.0.0.1 --port "$port" --base "$base" --query "$query" \
        --gt "$gt" --conns "$conns" --ef "$ef" --M "$M" --efc "$efc" --pipeline "$pipeline" \
        --secs "$secs" --ping-interval-us "${VS_PING_US:-1000}" --server-pid "$spid" --floor |
        if [ -n "$tag" ]; then sed "s/^{/{\"server\":\"$who\",\"round\":$round,/"; else cat; fi | tee -a "$out"
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    spid=
}
for r in $(seq "$rounds"); do
    if [ -z "$base_bin" ]; then
        wire_run engram "$build/engram" "$r"
    elif [ $((r % 2)) = 1 ]; then
        wire_run engram "$build/engram" "$r"; wire_run base "$base_bin" "$r"
    else
        wire_run base "$base_bin" "$r"; wire_run engram "$build/engram" "$r"
    fi
done
ann_run

server_ncpu=$("${spin[@]}" nproc)
python3 - "$out" "$conns" "$server_ncpu" <<'PY'
import json, os, statistics, sys

rows_all = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
# The ratios below are this tree's server's (bench_ann's lines carry no "server").
rows = [r for r in rows_all if r.get("server", "engram") == "engram"]
conns = int(sys.argv[2])

def median_run(rs, key):
    """Of several rounds' lines, the one with the median figure."""
    return sorted(rs, key=key)[len(rs) // 2] if rs else None

def runs(rs, pred, by):
    out = {}
    for r in rs:
        if pred(r):
            out.setdefault(by(r), []).append(r)
    return out

def is_vs(phase):
    return lambda r: r["bench"] == "vserver" and r["phase"] == phase

setup = next(r for r in rows if r["bench"] == "vserver" and r["phase"] == "setup")
cores = min(setup["cores"], int(sys.argv[3]))   # the CPUs the server may use
st = setup["search_threads"] if setup["search_threads"] > 0 else cores
search_cores = min(st, cores)
ann_runs = {}
for r in rows:
    if r["bench"] == "ann" and r["phase"] == "search":
        ann_runs.setdefault(r["ef"], []).append(r)
ann = {ef: dict(rs[0], qps=sum(x["qps"] for x in rs) / len(rs),
                qps_runs=[x["qps"] for x in rs]) for ef, rs in ann_runs.items()}
def floor_cpu(r):
    return r["server_cpu_s"] / r["queries"] if r.get("server_cpu_s") else float("inf")
wire = {k: median_run(rs, lambda r: r["qps"])
        for k, rs in runs(rows, lambda r: is_vs("search")(r) and r["k"] > 0,
                          lambda r: (r["ef"], r["conns"])).items()}
floor = median_run([r for r in rows if is_vs("search")(r) and r["k"] == 0], floor_cpu)
floor_us = floor["server_cpu_s"] / floor["queries"] * 1e6 if floor and floor.get("server_cpu_s") else None
ping = {ef: median_run(rs, lambda r: r.get("p99_us", 0))
        for ef, rs in runs(rows, is_vs("ping_under_load"), lambda r: r["ef"]).items()}

def emit(**kv):
    print(json.dumps(dict(bench="vserver_ratio", **kv)))

if floor_us is not None:
    emit(what="wire_floor", conns=floor["conns"], qps=floor["qps"], floor_us=round(floor_us, 3),
         loop_us=round(floor["server_loop_cpu_s"] / floor["queries"] * 1e6, 3),
         workers_us=round(floor["server_workers_cpu_s"] / floor["queries"] * 1e6, 3))

for ef in sorted(ann):
    a = ann[ef]["qps"]
    wn, w1 = wire.get((ef, conns)), wire.get((ef, 1))
    if wn:
        emit(what="wire_per_core", ef=ef, conns=conns, wire_qps=wn["qps"], inproc_qps=round(a, 1),
             inproc_qps_runs=ann[ef]["qps_runs"], search_cores=search_cores,
             ratio=round(wn["qps"] / (a * search_cores), 3), target=0.8,
             wire_recall=wn["recall_at_10"], inproc_recall=ann[ef]["recall"])
        if wn.get("server_cores"):
            extra = {}
            if floor_us is not None:
                s_us = 1e6 / a
                extra["ratio_bound"] = round(s_us / (s_us + floor_us), 3)
            emit(what="wire_per_server_cpu", ef=ef, conns=conns, server_cores=wn["server_cores"],
                 loop_cpu_share=round(wn["server_loop_cpu_s"] / wn["server_cpu_s"], 3),
                 client_cores=round(wn["client_cpu_s"] / wn["seconds"], 2),
                 ratio=round(wn["qps"] / (a * wn["server_cores"]), 3), **extra)
    if w1:
        emit(what="wire_1conn", ef=ef, wire_qps=w1["qps"], inproc_qps=a,
             ratio=round(w1["qps"] / a, 3))
    if ef in ping and "p99_us" in ping[ef]:
        p = ping[ef]
        emit(what="ping_p99", ef=ef, conns=conns, p50_us=p["p50_us"], p99_us=p["p99_us"],
             max_us=p["max_us"], target_us=1000, ok=p["p99_us"] < 1000)

# Before and after: this tree's server against ENGRAM_BASE_BIN, medians over rounds.
if any(r.get("server") == "base" for r in rows_all):
    med = statistics.median
    def emit_b(**kv):
        print(json.dumps(dict(bench="vserver_vs_base", **kv)))
    def by_server(pred, by, fig):
        g = runs([r for r in rows_all if "server" in r], pred, lambda r: (by(r), r["server"]))
        return {k: [fig(r) for r in rs] for k, rs in g.items()}
    def pair(d, key, cpu=None, **kv):
        e, b = d.get((key, "engram")), d.get((key, "base"))
        if not (e and b):
            return None
        out = dict(engram=round(med(e), 3), base=round(med(b), 3), engram_runs=e, base_runs=b,
                   ratio=round(med(e) / med(b), 3) if med(b) else None, **kv)
        # Server CPU per operation: what a busy machine disturbs least.
        ec, bc = (cpu.get((key, "engram")), cpu.get((key, "base"))) if cpu else (None, None)
        if ec and bc:
            out.update(engram_cpu_us=round(med(ec), 3), base_cpu_us=round(med(bc), 3),
                       engram_cpu_us_runs=ec, base_cpu_us_runs=bc,
                       cpu_ratio=round(med(ec) / med(bc), 3))
        return out
    def cpu_us(n):
        return lambda r: round(r["server_cpu_s"] / r[n] * 1e6, 3)
    load = by_server(is_vs("load"), lambda r: 0, lambda r: r["vadd_per_s"])
    load_cpu = by_server(lambda r: is_vs("load")(r) and r.get("server_cpu_s"), lambda r: 0, cpu_us("n"))
    p = pair(load, 0, load_cpu, unit="vadd_per_s", n=setup["n"], conns=conns)
    if p:
        emit_b(what="load", **p)
    srch = by_server(lambda r: is_vs("search")(r) and r["k"] > 0, lambda r: (r["ef"], r["conns"]),
                     lambda r: r["qps"])
    rec = by_server(lambda r: is_vs("search")(r) and r["k"] > 0, lambda r: (r["ef"], r["conns"]),
                    lambda r: r.get("recall_at_%d" % r["k"]))
    srch_cpu = by_server(lambda r: is_vs("search")(r) and r["k"] > 0 and r.get("server_cpu_s"),
                         lambda r: (r["ef"], r["conns"]), cpu_us("queries"))
    for key in sorted({k for k, _ in srch}):
        p = pair(srch, key, srch_cpu, unit="qps", ef=key[0], conns=key[1])
        if p:
            emit_b(what="search", **p, engram_recall=rec[(key, "engram")], base_recall=rec[(key, "base")])
    fl = by_server(lambda r: is_vs("search")(r) and r["k"] == 0 and r.get("server_cpu_s"),
                   lambda r: r["conns"], lambda r: round(floor_cpu(r) * 1e6, 3))
    for c in sorted({k for k, _ in fl}):
        e, b = fl.get((c, "engram")), fl.get((c, "base"))
        if e and b:
            emit_b(what="floor", unit="server_cpu_us_per_query", conns=c, engram=round(med(e), 3), base=round(med(b), 3),
                 engram_runs=e, base_runs=b, ratio_base_over_engram=round(med(b) / med(e), 3))
    pg = by_server(lambda r: is_vs("ping_under_load")(r) and "p99_us" in r, lambda r: r["ef"],
                   lambda r: r["p99_us"])
    for ef in sorted({k for k, _ in pg}):
        p = pair(pg, ef, unit="p99_us", ef=ef, conns=conns)
        if p:
            emit_b(what="ping_p99", **p)
PY
