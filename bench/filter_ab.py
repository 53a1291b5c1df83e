#!/usr/bin/env python3
"""filter_ab.py -- before/after tables for filtered VSIM (issue 14) from
interleaved runs of two builds, each line tagged with "build" (BEFORE or
AFTER, the names given) and "rep" (see docs/benchmarks.md, "Filtered
VSIM", for the loops that write them).

    bench/filter_ab.py vsim   OUT.jsonl BEFORE AFTER   # bench/vsim.sh lines
    bench/filter_ab.py engine OUT.jsonl BEFORE AFTER   # bench_fsearch lines

Prints one markdown table.  Per row: medians over the reps each build ran
in, and "before / after", the median over reps of the ratio taken within
a rep (the two runs minutes apart, not hours).  vsim: the server's CPU
time per query and the CPU ratio against the same build's unfiltered
query in the same run (vsim_summary's cpu_vs_unfiltered); engine: thread
CPU time per query, the ratio against the unfiltered query in the same
pass, and float distances per query (NOQUANT; deterministic).
"""
import collections, json, statistics, sys

mode, path, before, after = sys.argv[1:5]
med = statistics.median


def parse(line):
    try:
        return json.loads(line)
    except ValueError:
        return None


rows = [r for r in map(parse, open(path)) if r]
groups = collections.defaultdict(dict)
if mode == "vsim":
    for r in rows:
        if r.get("bench") == "vsim_summary" and r.get("what") == "filtered" and r["variant"] in ("noquant", "q8"):
            groups[(r["data"], r["variant"], r["selectivity_pct"], r["filter_ef"])][(r["build"], r["rep"])] = r
    t, ratio, rec = "server_us_per_query", "cpu_vs_unfiltered", "recall_at_k"
else:
    for r in rows:
        if r.get("bench") == "fsearch":
            groups[(r["data"], r["quant"], r["sel_pct"], r["filter_ef"])][(r["build"], r["rep"])] = r
    t, ratio, rec = "ns_filtered", "ratio", "recall"

head = ["data", "set", "selectivity", "FILTER-EF", "µs / query before", "after", "before / after",
        "ratio vs unfiltered before", "after", "recall@10 before", "after"]
if mode == "engine":
    head += ["distances / query before", "after", "unfiltered"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for k in sorted(groups, key=lambda k: (not k[0].startswith("sift"), k[1], k[2], -k[3])):
    d = groups[k]
    reps = sorted({rep for (b, rep) in d if (before, rep) in d and (after, rep) in d})
    if not reps:
        continue
    o = [d[(before, i)] for i in reps]
    n = [d[(after, i)] for i in reps]
    scale = 1e3 if mode == "engine" else 1.0
    cells = ["MNIST" if k[0].startswith("mnist") else k[0], "Q8" if k[1] == "q8" else "NOQUANT",
             "%d%%" % k[2], str(k[3]),
             "%.1f" % (med(x[t] for x in o) / scale), "%.1f" % (med(x[t] for x in n) / scale),
             "**%.2f**" % med(a[t] / b[t] for a, b in zip(o, n)),
             "%.3f" % med(x[ratio] for x in o), "**%.3f**" % med(x[ratio] for x in n),
             "%.4f" % med(x[rec] for x in o), "%.4f" % med(x[rec] for x in n)]
    if mode == "engine":
        nq = k[1] == "noquant"
        cells += ["%.0f" % o[0]["dists_filtered"] if nq else "-",
                  "%.0f" % n[0]["dists_filtered"] if nq else "-",
                  "%.0f" % n[0]["dists_unfiltered"] if nq else "-"]
    print("| " + " | ".join(cells) + " |")
