#!/usr/bin/env bash
# bench/persist.sh -- what durability costs: engram's write-ahead log against
# Redis's AOF, VADD with and without the log, restart time against index
# size, and PING latency while a snapshot is written.
#
# Parts (--only picks some; all by default), one JSON line per result:
#   fs       "persist_fs": the filesystem of --tmp (df -T) and one small
#            append+fsync's latency there: appendfsync always pays it once
#            per commit, so every figure below depends on it.  Both servers'
#            data dirs live under --tmp, on that filesystem.
#   set      "persist_set": redis-benchmark -t set -n REQUESTS -c CLIENTS,
#            -P 1 and -P 16, against engram --dir D --appendfsync X and
#            Debian's redis-server --appendonly yes --appendfsync X
#            --save "" --dir D, for X in --policies (off = both in memory
#            only, the kv.sh setting, as the reference).  appendfsync
#            always -P 1 is fsync-bound and slow: it runs REQUESTS/5
#            (--always-p1-requests).  Automatic log rewrites/snapshots are
#            off on both (auto-aof-rewrite-percentage 0) so no fork lands
#            in a run.  A fresh pair of servers per
#            policy; ROUNDS rounds alternating which server goes first;
#            medians; engram/redis ratio; each server's CPU time per request
#            (/proc) and engram's fsyncs per run (INFO aof_fsyncs).
#   vadd     "persist_vadd": pipelined VADD (4 connections, 2 batches of 64
#            in flight each) of --vadd-n 128-d vectors from --data (rows of
#            siftsmall, reused with noise past its 10k) or random, into
#            VNEW idx 128 METRIC l2 (default M / EF_CONSTRUCTION), memory
#            only ("off") and per appendfsync policy; ratio to "off".
#   restart  "restart_load" / "restart": load N random 128-d vectors (M 16,
#            EF_CONSTRUCTION 40) for N in --sizes, SIGKILL, restart from the
#            log alone (mode "log"), then SAVE, SIGKILL, restart from the
#            snapshot (mode "snapshot"); seconds from exec to the first
#            accepted connection, the first +PONG and INFO loading:0
#            (page cache warm: the files were just written).  Target: 1,000,000 x 128-d ready in < 1 s from a snapshot
#            (--sizes 10000,100000,1000000; the 1M load takes minutes).
#   bgsave   "bgsave_ping": load --bgsave-n vectors, then PING latency on
#            one connection (p50/p99/max) idle and during a BGSAVE, with the
#            BGSAVE's duration and reply time (log rotation + fork).  The
#            snapshot child inherits the server's CPU 0, so with pinning it
#            competes with the event loop (a few ms of p99); unpinned, a
#            2-core box would put it next to the client instead.
# A SAVE/BGSAVE the server refuses or that fails, or a server that dies
# during a restart, gives a line with "error" instead of stopping the run.
#
# Usage: bench/persist.sh [--data PATH] [--tmp DIR] [--only fs,set,vadd,restart,bgsave]
#          [--rounds 3] [--requests 200000] [--always-p1-requests 40000] [--clients 50]
#          [--policies off,always,everysec,no] [--vadd-n 20000]
#          [--sizes 10000,100000] [--restart-modes log,snapshot]
#          [--bgsave-n 200000] [--port-base P]
#   --data      siftsmall directory (*_base.fvecs) or an .fvecs file, for vadd
#   --tmp       where the data dirs go (default ${TMPDIR:-/tmp}); a fresh
#               subdirectory is made and removed
#   --port-base first port to try (default: any free port)
#   --restart-modes  log, snapshot or both: at 1M the restart from the log
#               rebuilds the graph (minutes); "snapshot" skips it
# Environment: ENGRAM_BIN (default build/engram), PYTHON (default python3).
# Needs: redis-server, redis-benchmark, redis-cli (Debian: redis-server,
# redis-tools), python3 (standard library only).
#
# Pinning (as kv.sh): when taskset exists and there are >= 2 CPUs, every
# server runs on CPU 0 (the everysec fsync thread and a snapshot child too)
# and every client (redis-benchmark, the Python loader and probes) on CPU 1.
# Default run: 4-7 minutes on 2 cores; --sizes with 1000000 adds ~8 (the
# 1M load and its replay from the log take ~3 min each).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=""; TMPBASE=${TMPDIR:-/tmp}; ONLY=fs,set,vadd,restart,bgsave
ROUNDS=3; N=200000; C=50; POLICIES=off,always,everysec,no
VADD_N=20000; SIZES=10000,100000; BGSAVE_N=200000; PORT_BASE=0; N_SLOW=""; RESTART_MODES=log,snapshot
while [ $# -gt 0 ]; do
  case $1 in
    --data) DATA=$2; shift 2 ;;
    --tmp) TMPBASE=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --requests) N=$2; shift 2 ;;
    --always-p1-requests) N_SLOW=$2; shift 2 ;;
    --clients) C=$2; shift 2 ;;
    --policies) POLICIES=$2; shift 2 ;;
    --vadd-n) VADD_N=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --restart-modes) RESTART_MODES=$2; shift 2 ;;
    --bgsave-n) BGSAVE_N=$2; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/persist.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
N_SLOW=${N_SLOW:-$((N / 5))}
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

ENGRAM=${ENGRAM_BIN:-build/engram}
PYTHON=${PYTHON:-python3}
[ -x "$ENGRAM" ] || { echo "bench/persist.sh: build engram first ($ENGRAM)" >&2; exit 1; }
case $ENGRAM in /*) ;; *) ENGRAM=$PWD/$ENGRAM ;; esac
if want set; then
  for t in redis-server redis-benchmark redis-cli; do
    command -v $t >/dev/null || { echo "bench/persist.sh: needs $t (apt-get install redis-server redis-tools)" >&2; exit 1; }
  done
fi
[ -z "$DATA" ] || [ -e "$DATA" ] || { echo "bench/persist.sh: no such data: $DATA" >&2; exit 2; }

PIN_SERVER=""; PIN_CLIENT=""; PYPIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER="taskset -c 0"; PIN_CLIENT="taskset -c 1"; PYPIN=(--server-cpu 0 --client-cpu 1)
fi
mkdir -p "$TMPBASE"
tmp=$(mktemp -d "$TMPBASE/engram-persist-bench.XXXXXX")
EPID=""; RPID=""
stop() {  # pid...: SIGTERM and wait for each that is set
  for p in "$@"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "$@"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
}
cleanup() { stop "$EPID" "$RPID"; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

NEXT_PORT=$PORT_BASE
USED_PORTS=" "
free_port() {  # VAR: sets VAR to a free port (from --port-base upward if given), never one handed out before
  local p
  while :; do
    p=$($PYTHON - "$NEXT_PORT" <<'PY'
import socket, sys
p = int(sys.argv[1])
while True:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(s.getsockname()[1]); break
    except OSError:
        if not p: raise
        p += 1
    finally:
        s.close()
PY
)
    [ "$NEXT_PORT" = 0 ] || NEXT_PORT=$((p + 1))
    case $USED_PORTS in *" $p "*) continue ;; esac
    USED_PORTS="$USED_PORTS$p "
    printf -v "$1" %s "$p"
    return 0
  done
}
wait_ping() {  # port pid name
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench/persist.sh: $3 did not start on port $1; its log:" >&2
  cat "$tmp"/*.log >&2 || true
  exit 1
}
cpu_ticks() { if [ -r "/proc/$1/stat" ]; then awk '{print $14 + $15}' "/proc/$1/stat"; else echo 0; fi; }
info_field() { redis-cli -p "$1" info persistence 2>/dev/null | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }
# Run a private copy: a rebuild of $ENGRAM during a long run (the 1M restart
# takes minutes) must not mix two builds (a snapshot written by one and read
# by the other).
cp "$ENGRAM" "$tmp/engram"
ENGRAM_ORIG=$ENGRAM; ENGRAM=$tmp/engram
PYARGS=(--engram "$ENGRAM" --tmp "$tmp" --port-base "$PORT_BASE" "${PYPIN[@]}")
BENCH_PY=bench/persist_bench.py

if want fs; then
  $PYTHON "$BENCH_PY" fs --tmp "$tmp" --engram "$ENGRAM_ORIG" "${PYPIN[@]:2}"
fi

# ---- 1. SET throughput: engram's log against Redis's AOF ----------------------
set_run() {  # name port pid pipeline policy requests -> appends "rps ticks fsyncs" to $tmp/NAME.P.POLICY
  local t0 t1 f0 f1 rps
  t0=$(cpu_ticks "$3")
  f0=0; f1=0
  if [ "$1" = e ] && [ "$5" != off ]; then f0=$(info_field "$2" aof_fsyncs); fi
  rps=$($PIN_CLIENT redis-benchmark -p "$2" -t set -n "$6" -c "$C" -P "$4" --csv 2>/dev/null |
        awk -F'","' 'NR>1 { gsub(/"/,"",$2); print $2; exit }')
  t1=$(cpu_ticks "$3")
  if [ "$1" = e ] && [ "$5" != off ]; then f1=$(info_field "$2" aof_fsyncs); fi
  echo "${rps:-0} $((t1 - t0)) $((f1 - f0))" >> "$tmp/$1.$4.$5"
}
if want set; then
  for X in ${POLICIES//,/ }; do
    free_port EPORT; free_port RPORT
    eargs=(--port "$EPORT" --bind 127.0.0.1 --logfile "$tmp/set-engram-$X.log")
    rargs=(--port "$RPORT" --bind 127.0.0.1 --save '' --logfile "$tmp/set-redis-$X.log")
    if [ "$X" = off ]; then
      rargs+=(--appendonly no --dir "$tmp")
    else
      mkdir -p "$tmp/set-redis-$X"
      eargs+=(--dir "$tmp/set-engram-$X" --appendfsync "$X" --auto-aof-rewrite-percentage 0)
      rargs+=(--dir "$tmp/set-redis-$X" --appendonly yes --appendfsync "$X" --auto-aof-rewrite-percentage 0)
    fi
    $PIN_SERVER "$ENGRAM" "${eargs[@]}" & EPID=$!
    $PIN_SERVER redis-server "${rargs[@]}" & RPID=$!
    wait_ping "$EPORT" "$EPID" engram; wait_ping "$RPORT" "$RPID" redis-server
    # each port must answer as the server meant (a port taken meanwhile would not)
    redis-cli -p "$EPORT" info server | grep -q '^engram_version:' ||
      { echo "bench/persist.sh: port $EPORT does not answer as engram" >&2; exit 1; }
    if redis-cli -p "$RPORT" info server | grep -q '^engram_version:' || ! kill -0 "$RPID" 2>/dev/null; then
      echo "bench/persist.sh: redis-server is not running on port $RPORT; its log:" >&2
      cat "$tmp/set-redis-$X.log" >&2; exit 1
    fi
    for P in 1 16; do
      n=$N; if [ "$X" = always ] && [ "$P" = 1 ]; then n=$N_SLOW; fi
      for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
          set_run e "$EPORT" "$EPID" "$P" "$X" "$n"; set_run r "$RPORT" "$RPID" "$P" "$X" "$n"
        else
          set_run r "$RPORT" "$RPID" "$P" "$X" "$n"; set_run e "$EPORT" "$EPID" "$P" "$X" "$n"
        fi
      done
      $PYTHON - "$tmp/e.$P.$X" "$tmp/r.$P.$X" "$X" "$P" "$n" "$C" "$ROUNDS" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
def rows(path):
    return [tuple(float(x) for x in l.split()) for l in open(path) if l.strip()]
e, r = rows(sys.argv[1]), rows(sys.argv[2])
X, P, n, c, rounds, tck = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
em, rm = statistics.median(x[0] for x in e), statistics.median(x[0] for x in r)
ecpu = statistics.median(x[1] for x in e) / tck * 1e6 / n
rcpu = statistics.median(x[1] for x in r) / tck * 1e6 / n
line = {"bench": "persist_set", "appendfsync": X, "pipeline": P, "requests": n, "clients": c,
        "rounds": rounds, "engram_rps": em, "redis_rps": rm,
        "ratio": round(em / rm, 3) if rm else None,
        "engram_runs": [x[0] for x in e], "redis_runs": [x[0] for x in r],
        "engram_cpu_us_per_req": round(ecpu, 3), "redis_cpu_us_per_req": round(rcpu, 3)}
if X != "off":
    f = statistics.median(x[2] for x in e)
    line["engram_fsyncs_per_run"] = int(f)
    line["engram_reqs_per_fsync"] = round(n / f, 1) if f else None
print(json.dumps(line), flush=True)
PY
    done
    stop "$EPID" "$RPID"; EPID=""; RPID=""
    rm -rf "$tmp/set-engram-$X" "$tmp/set-redis-$X"
  done
fi

# ---- 2.-4. vectors (persist_bench.py) -------------------------------------------
if want vadd; then
  $PYTHON "$BENCH_PY" vadd "${PYARGS[@]}" --n "$VADD_N" --rounds "$ROUNDS" ${DATA:+--data "$DATA"}
fi
if want restart; then
  reps=()
  case ",$RESTART_MODES," in *,log,*) ;; *) reps+=(--reps-log 0) ;; esac
  case ",$RESTART_MODES," in *,snapshot,*) ;; *) reps+=(--reps-snap 0) ;; esac
  $PYTHON "$BENCH_PY" restart "${PYARGS[@]}" --sizes "$SIZES" "${reps[@]}"
fi
if want bgsave; then
  $PYTHON "$BENCH_PY" bgsave "${PYARGS[@]}" --n "$BGSAVE_N"
fi
