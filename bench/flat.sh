#!/usr/bin/env bash
# flat.sh -- engram's exact FLAT search against a numpy brute-force scan of
# the same sizes, in the same run.
#
#   bench/flat.sh [extra bench_flat options...]
#
# Builds nothing: runs $ENGRAM_BUILD/bench/bench_flat (ENGRAM_BUILD defaults
# to ./build; configure with -DCMAKE_BUILD_TYPE=Release), then the numpy scan
# below with Debian's numpy (/usr/bin/python3, python3-numpy).
# Environment: FLAT_N (sizes, default 16384,1000000), FLAT_DIM (384),
# FLAT_K (10), FLAT_METRICS (l2,cosine,dot), FLAT_THREADS (2),
# FLAT_ROUNDS (3), FLAT_PYTHON (/usr/bin/python3).
#
# numpy, per size and metric, on uniform [-1, 1) float32 data (normalised
# for cosine), top-k by argpartition then a (distance, id) sort of the k:
#   numpy-naive  l2: ((X - q)**2).sum(1), as one writes it first (two
#                N x dim temporaries per query).
#   numpy-blas   l2: |x|^2 precomputed once, then |x|^2 - 2 X @ q;
#                cosine and dot: X @ q (sgemv in whichever BLAS numpy
#                loaded: the line names the library and the threads the
#                process runs with, since an OpenBLAS/MKL sgemv may use all
#                cores while engram's figure says how many it used).
# Each variant's best round (lowest mean) of per-query wall times is kept.
# numpy asks for transparent huge pages on its big arrays (numpy-env says
# whether): pass --pages huge to give bench_flat the same; the default is
# the engine's own allocator, malloc, i.e. small pages.
#
# Prints every program line, then "flat_ratio" lines per size, metric and
# engram thread count: ratio = engram mean latency / numpy's best variant's
# mean latency (below 1: engram is faster), and the same against each
# numpy variant.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${ENGRAM_BUILD:-$root/build}
sizes=${FLAT_N:-16384,1000000}
dim=${FLAT_DIM:-384}
k=${FLAT_K:-10}
metrics=${FLAT_METRICS:-l2,cosine,dot}
threads=${FLAT_THREADS:-2}
rounds=${FLAT_ROUNDS:-3}
py=${FLAT_PYTHON:-/usr/bin/python3}

[ -x "$build/bench/bench_flat" ] || { echo "flat.sh: missing $build/bench/bench_flat" >&2; exit 2; }
"$py" -c 'import numpy' 2>/dev/null || { echo "flat.sh: $py has no numpy (apt-get install python3-numpy)" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench/bench_flat" --n "$sizes" --dim "$dim" --k "$k" --metrics "$metrics" \
    --threads "$threads" --rounds "$rounds" "$@" | tee -a "$out"

"$py" - "$sizes" "$dim" "$k" "$metrics" "$rounds" <<'PY' | tee -a "$out"
import json, os, sys, time
import numpy as np

sizes = [int(s) for s in sys.argv[1].split(",")]
dim, k, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
metrics = sys.argv[4].split(",")
MIN_SCAN = 4 * 2**30            # bytes a round scans at least, as bench_flat

def blas_info():
    """The BLAS shared object numpy mapped, and this process's threads after
    a matrix-vector product (OpenBLAS and MKL start their pools by then)."""
    a = np.ones((512, 512), dtype=np.float32)
    (a @ a[0]).sum()
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if any(s in p for s in ("blas", "mkl", "blis", "atlas")):
                libs.add(os.path.realpath(p))
    env = {v: os.environ[v] for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
           if v in os.environ}
    return sorted(libs), len(os.listdir("/proc/self/task")), env

libs, nthreads, env = blas_info()
try:    # numpy madvises big arrays onto huge pages by default (Linux)
    huge = bool(np.core.multiarray._get_madvise_hugepage())
except AttributeError:
    huge = None
print(json.dumps(dict(bench="numpy-env", numpy=np.__version__, blas=libs,
                      process_threads=nthreads, env=env, madvise_hugepage=huge)), flush=True)

def topk(d):
    idx = np.argpartition(d, k)[:k] if len(d) > k else np.arange(len(d))
    return idx[np.lexsort((idx, d[idx]))]

def timed(fn, qs, nq):
    best = None
    fn(qs[0])                               # warm-up
    for _ in range(rounds):
        lat = []
        for i in range(nq):
            t0 = time.perf_counter_ns()
            fn(qs[i])
            lat.append(time.perf_counter_ns() - t0)
        lat.sort()
        r = (sum(lat) / nq, lat[nq // 2], lat[0])
        if best is None or r[0] < best[0]:
            best = r
    return best

rng = np.random.default_rng(42)
for n in sizes:
    nbytes = n * dim * 4
    nq = max(20, min(200, MIN_SCAN // nbytes))
    for metric in metrics:
        X = rng.random((n, dim), dtype=np.float32)
        X *= 2
        X -= 1
        qs = rng.random((nq, dim), dtype=np.float32) * 2 - 1
        if metric == "cosine":
            X /= np.linalg.norm(X, axis=1, keepdims=True)
            qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        variants = {}
        if metric == "l2":
            xn = np.einsum("ij,ij->i", X, X)
            variants["numpy-naive"] = (lambda q: topk(((X - q) ** 2).sum(1)), max(5, nq // 10))
            variants["numpy-blas"] = (lambda q: topk(xn - 2 * (X @ q)), nq)
        elif metric == "cosine":
            variants["numpy-blas"] = (lambda q: topk(1 - X @ q), nq)
        else:
            variants["numpy-blas"] = (lambda q: topk(-(X @ q)), nq)
        for name, (fn, m) in variants.items():
            mean, p50, mn = timed(fn, qs, m)
            print(json.dumps(dict(bench=name, n=n, dim=dim, metric=metric, k=k, queries=m,
                                  mean_us=round(mean / 1e3, 1), p50_us=round(p50 / 1e3, 1),
                                  min_us=round(mn / 1e3, 1),
                                  scan_gbps=round(nbytes / mean, 2),
                                  blas_process_threads=nthreads)), flush=True)
        del X
PY

"$py" - "$out" <<'PY'
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
eng = [r for r in rows if r["bench"] == "flat"]
npy = [r for r in rows if r["bench"].startswith("numpy-") and r["bench"] != "numpy-env"]
for e in eng:
    mine = [r for r in npy if r["n"] == e["n"] and r["metric"] == e["metric"] and r["dim"] == e["dim"]]
    if not mine:
        continue
    best = min(mine, key=lambda r: r["mean_us"])
    out = dict(bench="flat_ratio", n=e["n"], dim=e["dim"], metric=e["metric"], k=e["k"],
               engram_threads=e["threads"], kernel=e["kernel"], engram_mean_us=e["mean_us"],
               numpy_best=best["bench"], numpy_mean_us=best["mean_us"],
               numpy_blas_threads=best["blas_process_threads"],
               ratio=round(e["mean_us"] / best["mean_us"], 4),
               p50_ratio=round(e["p50_us"] / best["p50_us"], 4))
    for r in mine:
        out["ratio_vs_" + r["bench"].replace("-", "_")] = round(e["mean_us"] / r["mean_us"], 4)
    print(json.dumps(out))
PY
