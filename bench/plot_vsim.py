#!/usr/bin/env python3
"""plot_vsim.py -- the recall-vs-QPS curve of bench/vsim.sh as an SVG.

    bench/vsim.sh /work/shared/data/siftsmall > vsim-siftsmall.jsonl
    /usr/bin/python3 bench/plot_vsim.py [--cpu] OUT.svg vsim-siftsmall.jsonl

Reads the "vsim_summary" lines with "what": "search" (medians over rounds,
one point per variant and ef) from the files given, and draws recall@k
(x) against queries per second (y, log scale) for each variant, every
point labelled with its ef.  --cpu: queries per second of the server's CPU
time instead (1e6 / the median server_us_per_query), which does not
depend on how much of a shared machine the server got during each run.  Other lines are ignored, so the whole output of vsim.sh can
be passed.  Needs matplotlib (Debian: python3-matplotlib); the SVG is
written without a date and with a fixed id salt, so the same numbers give
the same file.
"""
import json
import sys

try:
    import matplotlib
except ImportError:
    sys.exit("plot_vsim.py: needs matplotlib (Debian: apt-get install python3-matplotlib, then "
             "run it with /usr/bin/python3 if another python3 comes first in PATH)")

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "noquant": "VSIM NOQUANT (float32)",
    "q8": "VSIM Q8",
    "bin": "VSIM BIN",
    "q8_rerank": "VSIM Q8 RERANK",
    "noquant_ws": "VSIM NOQUANT WITHSCORES",
    "vsearch": "VSEARCH (engram, float32 cosine)",
}
STYLE = {
    "noquant": ("tab:blue", "o", "-"),
    "q8": ("tab:orange", "s", "-"),
    "bin": ("tab:green", "^", "-"),
    "q8_rerank": ("tab:red", "D", "-"),
    "noquant_ws": ("tab:purple", "x", ":"),
    "vsearch": ("black", "v", "--"),
}


def main():
    args = sys.argv[1:]
    cpu = bool(args) and args[0] == "--cpu"
    if cpu:
        args = args[1:]
    if len(args) < 2:
        sys.exit("usage: plot_vsim.py [--cpu] OUT.svg FILE.jsonl [FILE.jsonl ...]")
    out, files = args[0], args[1:]
    pts, data, setup = {}, set(), None
    for f in files:
        for line in open(f):
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("bench") == "vsim" and r.get("phase") == "setup":
                setup = r
            if r.get("bench") != "vsim_summary" or r.get("what") != "search":
                continue
            data.add(r["data"])
            y = 1e6 / r["server_us_per_query"] if cpu else r["qps"]
            pts.setdefault(r["variant"], []).append((r["ef"], r["recall_at_k"], y))
    if not pts:
        sys.exit("plot_vsim.py: no vsim_summary search lines in " + ", ".join(files))

    plt.rcParams["svg.hashsalt"] = "engram"
    order = [v for v in STYLE if v in pts] + sorted(v for v in pts if v not in STYLE)
    # A variant far down the recall axis (BIN on non-negative data) squeezes
    # the others into a corner: then a second panel zooms on recall >= 0.8.
    zoom = any(x[1] < 0.8 for p in pts.values() for x in p)
    fig, axes = plt.subplots(1, 2 if zoom else 1, figsize=(12 if zoom else 8, 5.5), squeeze=False)
    for n, ax in enumerate(axes[0]):
        for v in order:
            p = sorted(x for x in pts[v] if n == 0 or x[1] >= 0.8)
            if not p:
                continue
            color, marker, ls = STYLE.get(v, ("gray", ".", "-"))
            ax.plot([x[1] for x in p], [x[2] for x in p], ls, color=color, marker=marker,
                    label=LABELS.get(v, v), linewidth=1.4, markersize=5)
            for ef, rec, qps in p:
                ax.annotate(str(ef), (rec, qps), textcoords="offset points", xytext=(4, 3),
                            fontsize=7, color=color)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 against the exact cosine answer"
                      + (" (recall >= 0.8 only)" if n else ""))
        ax.grid(True, which="both", linewidth=0.3, alpha=0.6)
    axes[0][0].set_ylabel("queries per second of server CPU (1e6 / median µs per query)" if cpu
                          else "queries per second (median of rounds)")
    axes[0][0].legend(fontsize=8, loc="lower left" if not zoom else "center left")
    k = f"k={setup['k']}, " if setup else ""
    conns = f"{setup['conns']} connections x {setup['inflight_per_conn']} in flight, " if setup else ""
    fig.suptitle(f"{', '.join(sorted(data))}: VSIM over the wire ({conns}{k}M 16); "
                 "point labels are EF", fontsize=10)
    fig.tight_layout()
    if out.endswith(".png"):         # for a quick look; the docs keep the SVG
        fig.savefig(out, dpi=100)
    else:
        fig.savefig(out, format="svg", metadata={"Date": None})


if __name__ == "__main__":
    main()
