#!/usr/bin/env bash
# ftsearch.sh -- FT.SEARCH KNN over hashes against VSIM on a vector set of
# the same data (issue 15), in one run: ingest (HSET into an existing index
# against VADD) and search (QPS, recall@10, server CPU per query over an EF
# curve, unpipelined and pipelined).
#
#   bench/ftsearch.sh DATA_DIR
#
# DATA_DIR holds NAME_base.fvecs, NAME_query.fvecs and
# NAME_groundtruth.ivecs.  Builds nothing: runs $BUILD/engram and
# $BUILD/bench/bench_ftsearch (BUILD defaults to build-rel/, relative to the
# repository root; configure with -DCMAKE_BUILD_TYPE=Release).
# Environment: FT_EF (10,20,40,80,160), FT_ROUNDS (7), FT_SECS (0.5 s a
# run), FT_LOAD_ROUNDS (5), FT_CONNS (4), FT_PIPELINE (8: two batches in
# flight per connection in the pipelined mode), FT_COSINE (1: also a COSINE
# index on the same hashes, VSIM's metric), FT_SEARCH_THREADS (engram
# --search-threads; default the server's), FT_SERVER_CPUS / FT_CLIENT_CPUS
# (taskset CPU lists), FT_VARIANTS (only these search variants, e.g.
# ft,vsim), ENGRAM_BIN (the server binary; default $BUILD/engram).
#
# The server starts on a free port, memory only, and is stopped by its pid
# at the end.  Prints bench_ftsearch's JSON lines, then the "ftsearch_summary"
# lines of bench/ftsearch_summary.py (medians over rounds of ratios taken
# within each round); bench/plot_ftsearch.py draws recall against QPS.
set -euo pipefail

dir=${1:?usage: bench/ftsearch.sh DATA_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build-rel}
case $build in /*) ;; *) build=$root/$build ;; esac

base=$(ls "$dir"/*_base.fvecs | head -n1)
name=$(basename "$base" _base.fvecs)
query=$dir/${name}_query.fvecs
gt=$dir/${name}_groundtruth.ivecs
engram=${ENGRAM_BIN:-$build/engram}
for f in "$base" "$query" "$gt" "$engram" "$build/bench/bench_ftsearch"; do
    [ -e "$f" ] || { echo "ftsearch.sh: missing $f" >&2; exit 2; }
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

spin=(); cpin=()
[ -n "${FT_SERVER_CPUS:-}" ] && spin=(taskset -c "$FT_SERVER_CPUS")
[ -n "${FT_CLIENT_CPUS:-}" ] && cpin=(taskset -c "$FT_CLIENT_CPUS")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
sargs=(--port "$port" --bind 127.0.0.1 --logfile "$tmp/engram.log")
[ -n "${FT_SEARCH_THREADS:-}" ] && sargs+=(--search-threads "$FT_SEARCH_THREADS")
"${spin[@]}" "$engram" "${sargs[@]}" &
spid=$!
up=
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$up" ] || { echo "ftsearch.sh: engram did not start:" >&2; cat "$tmp/engram.log" >&2; exit 1; }

cos=()
[ "${FT_COSINE:-1}" = 1 ] && cos=(--cosine)
[ -n "${FT_VARIANTS:-}" ] && cos+=(--variants "$FT_VARIANTS")
out=$tmp/out.jsonl
"${cpin[@]}" "$build/bench/bench_ftsearch" --host 127.0.0.1 --port "$port" --server-pid "$spid" \
    --base "$base" --query "$query" --gt "$gt" "${cos[@]}" \
    --ef "${FT_EF:-10,20,40,80,160}" --rounds "${FT_ROUNDS:-7}" --secs "${FT_SECS:-0.5}" \
    --load-rounds "${FT_LOAD_ROUNDS:-5}" --conns "${FT_CONNS:-4}" \
    --pipeline "${FT_PIPELINE:-8}" --M 16 | tee "$out"
kill -TERM "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
spid=

python3 "$root/bench/ftsearch_summary.py" "$out" "$name"
