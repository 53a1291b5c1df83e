#!/usr/bin/env python3
"""plot_ftsearch.py -- recall against QPS for FT.SEARCH and VSIM as an SVG.

    bench/ftsearch.sh /work/shared/data/siftsmall > ft-sift.jsonl
    bench/ftsearch.sh /work/shared/data/mnist-784-euclidean-10k > ft-mnist.jsonl
    /usr/bin/python3 bench/plot_ftsearch.py OUT.svg ft-sift.jsonl ft-mnist.jsonl

Reads the "ftsearch_summary" lines with "what": "search" of the pipelined
mode and draws, per data set (columns), recall@10 against the variant's own
metric's exact answer (x: L2 for the L2 index, cosine for the cosine index
and VSIM) against queries per second: the top row as measured (median of
rounds), the bottom row per second of server CPU (1e6 / the median server
CPU µs per query, which does not depend on how much of the shared machine
the server got).  Point labels are EF_RUNTIME / EF.  Needs matplotlib
(Debian: python3-matplotlib; run with /usr/bin/python3 if another python3
comes first in PATH); the SVG has no date and a fixed id salt.
"""
import json
import sys

try:
    import matplotlib
except ImportError:
    sys.exit("plot_ftsearch.py: needs matplotlib (Debian: apt-get install python3-matplotlib)")

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "ft": "FT.SEARCH L2, RETURN 1 __v_score",
    "ft_nc": "FT.SEARCH L2, NOCONTENT",
    "ft_cos": "FT.SEARCH COSINE, RETURN 1 __v_score",
    "vsim_ws": "VSIM WITHSCORES (NOQUANT, cosine)",
    "vsim": "VSIM (NOQUANT, cosine)",
    "vsim_q8_ws": "VSIM WITHSCORES (Q8, cosine)",
}
STYLE = {
    "ft": ("tab:blue", "o", "-"),
    "ft_nc": ("tab:cyan", "s", ":"),
    "ft_cos": ("tab:green", "^", "-"),
    "vsim_ws": ("tab:red", "D", "-"),
    "vsim": ("tab:orange", "v", ":"),
    "vsim_q8_ws": ("tab:purple", "x", "--"),
}


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: plot_ftsearch.py OUT.svg FILE.jsonl [FILE.jsonl ...]")
    out, files = sys.argv[1], sys.argv[2:]
    data = {}           # name -> variant -> [(ef, recall, qps, cpu_qps)]
    conns = infl = None
    for f in files:
        for line in open(f):
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("bench") != "ftsearch_summary" or r.get("what") != "search":
                continue
            if r["mode"] != "pipelined":
                continue
            conns, infl = r["conns"], r["inflight_per_conn"]
            data.setdefault(r["data"], {}).setdefault(r["variant"], []).append(
                (r["ef"], r["recall_at_k"], r["qps"], 1e6 / r["server_us_per_query"]))
    if not data:
        sys.exit("plot_ftsearch.py: no ftsearch_summary search lines")
    plt.rcParams["svg.hashsalt"] = "engram"
    names = list(data)
    fig, axes = plt.subplots(2, len(names), figsize=(6.5 * len(names), 9), squeeze=False)
    for c, name in enumerate(names):
        for row in range(2):
            ax = axes[row][c]
            for v in [v for v in STYLE if v in data[name]]:
                p = sorted(data[name][v])
                color, marker, ls = STYLE[v]
                ys = [x[2 + row] for x in p]
                ax.plot([x[1] for x in p], ys, ls, color=color, marker=marker, label=LABELS[v],
                        linewidth=1.4, markersize=5)
                for (ef, rec, *_), y in zip(p, ys):
                    ax.annotate(str(ef), (rec, y), textcoords="offset points", xytext=(4, 3),
                                fontsize=7, color=color)
            ax.set_yscale("log")
            ax.grid(True, which="both", linewidth=0.3, alpha=0.6)
            ax.set_xlabel("recall@10 (against the exact answer of the variant's metric)")
            ax.set_ylabel("queries/s (median of rounds)" if row == 0
                          else "queries per second of server CPU")
            ax.set_title(name + (": measured" if row == 0 else ": per server CPU"), fontsize=10)
            if row == 0 and c == 0:
                ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"FT.SEARCH KNN over hashes vs VSIM, k=10, M 16, EF_CONSTRUCTION 200, "
                 f"{conns} connections x {infl} in flight; point labels are EF", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, format="svg", metadata={"Date": None})


if __name__ == "__main__":
    main()
