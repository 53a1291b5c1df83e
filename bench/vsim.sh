#!/usr/bin/env bash
# vsim.sh -- Redis 8's vector sets over the wire (issue 14): VSIM for
# NOQUANT, Q8 and BIN against engram's own VSEARCH on the same data, the
# recall-vs-QPS curve, filtered VSIM, and bytes per vector, in one run.
#
#   bench/vsim.sh [--rerank] DATA_DIR
#
# DATA_DIR holds NAME_base.fvecs and NAME_query.fvecs (NAME_groundtruth.ivecs
# is used only to say how far its L2 answers are from the cosine ones that
# bench_vsim computes itself).  Builds nothing: runs $BUILD/engram and
# $BUILD/bench/bench_vsim (BUILD defaults to build/, relative to the
# repository root; configure with -DCMAKE_BUILD_TYPE=Release).
# --rerank adds the Q8 RERANK variant (VADD ... Q8 RERANK, VSIM ... RERANK);
# if the server refuses it, bench_vsim prints a "skip" line and goes on.
# Environment: VS_EF (the curve's ef list, default 10,20,40,80,160,320),
# VS_ROUNDS (5), VS_SECS (seconds per run, 0.6: short runs, many rounds, so
# the noise of a shared machine spreads over every variant alike), VS_SEL
# (filter selectivities in percent, 1,10,50), VS_FILTER_EF (FILTER-EF
# values, 0 = the server's default COUNT x 100; default 0,500,200),
# VS_FILTER_SEARCH_EF (the EFs of the filtered runs, 40), VS_CONNS (4),
# VS_PIPELINE (8: two batches in flight per connection, so 16), VS_M (16),
# VS_SEARCH_THREADS (engram --search-threads; default: the server's),
# VS_SERVER_CPUS / VS_CLIENT_CPUS (taskset CPU lists), VS_WITHSCORES (1:
# also run VSIM WITHSCORES on the NOQUANT set, a reply as large as
# VSEARCH's; default 1).
#
# The server starts on a free port, memory only, with its log in a temp dir,
# and is stopped by its pid (SIGTERM) at the end, whatever happens.  Prints
# bench_vsim's JSON lines, then "vsim_summary" lines (medians over rounds;
# a ratio is taken within each round, then its median; cpu ratios use the
# server's CPU time per query, which does not depend on how many cores the
# server got during the run, qps ratios the throughput as measured):
#   search     per variant and ef: qps, recall_at_k, server_us_per_query,
#              and against VSEARCH at the same ef: qps_ratio (variant /
#              VSEARCH) and cpu_ratio (VSEARCH's server CPU per query /
#              the variant's: above 1 means the variant is cheaper)
#   filtered   per variant, selectivity and FILTER-EF: qps, recall_at_k
#              (against the exact filtered answer), vs_unfiltered = qps /
#              the same variant's unfiltered qps in the same round (at EF
#              40 when the curve has it, else at the filtered run's EF),
#              and cpu_vs_unfiltered, the same from the server's CPU
#              per query (unfiltered / filtered).  Target at 10%: >= 0.25
#              with recall >= 0.9 ("ok" judges cpu_vs_unfiltered).
#   memory     per set: MEMORY USAGE / VCARD without and with attributes,
#              against the targets 4*dim+250 (NOQUANT) and dim+250 (Q8)
#   rerank     (with --rerank) Q8 RERANK recall minus NOQUANT recall per
#              ef; target >= -0.01
# The summary is bench/vsim_summary.py's (it can be rerun on a saved
# output); bench/plot_vsim.py draws the curve from its "search" lines.
set -euo pipefail

rerank=()
if [ "${1:-}" = --rerank ]; then rerank=(--rerank); shift; fi
dir=${1:?usage: bench/vsim.sh [--rerank] DATA_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac

base=$(ls "$dir"/*_base.fvecs | head -n1)
name=$(basename "$base" _base.fvecs)
query=$dir/${name}_query.fvecs
gt=$dir/${name}_groundtruth.ivecs
for f in "$base" "$query" "$build/engram" "$build/bench/bench_vsim"; do
    [ -e "$f" ] || { echo "vsim.sh: missing $f" >&2; exit 2; }
done
gtarg=()
[ -e "$gt" ] && gtarg=(--gt "$gt")

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
[ -n "${VS_SERVER_CPUS:-}" ] && spin=(taskset -c "$VS_SERVER_CPUS")
[ -n "${VS_CLIENT_CPUS:-}" ] && cpin=(taskset -c "$VS_CLIENT_CPUS")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
sargs=(--port "$port" --bind 127.0.0.1 --logfile "$tmp/engram.log")
[ -n "${VS_SEARCH_THREADS:-}" ] && sargs+=(--search-threads "$VS_SEARCH_THREADS")
"${spin[@]}" "$build/engram" "${sargs[@]}" &
spid=$!
up=
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$up" ] || { echo "vsim.sh: engram did not start:" >&2; cat "$tmp/engram.log" >&2; exit 1; }

ws=()
[ "${VS_WITHSCORES:-1}" = 1 ] && ws=(--withscores)
out=$tmp/out.jsonl
"${cpin[@]}" "$build/bench/bench_vsim" --host 127.0.0.1 --port "$port" --server-pid "$spid" \
    --base "$base" --query "$query" "${gtarg[@]}" "${rerank[@]}" "${ws[@]}" \
    --ef "${VS_EF:-10,20,40,80,160,320}" --rounds "${VS_ROUNDS:-5}" --secs "${VS_SECS:-0.6}" \
    --sel "${VS_SEL:-1,10,50}" --filter-ef "${VS_FILTER_EF:-0,500,200}" \
    --filter-search-ef "${VS_FILTER_SEARCH_EF:-40}" --conns "${VS_CONNS:-4}" \
    --pipeline "${VS_PIPELINE:-8}" --M "${VS_M:-16}" | tee "$out"
kill -TERM "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
spid=

python3 "$root/bench/vsim_summary.py" "$out" "$name"
