#!/usr/bin/env python3
"""ftsearch_summary.py -- medians and ratios of bench_ftsearch's JSON lines.

    python3 bench/ftsearch_summary.py OUT.jsonl [NAME]

Prints "ftsearch_summary" lines (a ratio is taken within each round, then
its median over rounds):
  load    per variant (hset = L2 index, hset_cos = COSINE index, vadd =
          NOQUANT, vadd_q8 = VADD's default Q8):
          median vectors/s and server us/vector; and an "ingest" line per
          VADD variant: hset/vadd vectors/s (target >= 0.8) and vadd/hset
          server CPU per vector (above 1: HSET is cheaper)
  search  per mode (p1, pipelined), ef and variant: median qps, recall_at_k
          (its own metric), recall_l2, recall_cos, server_us_per_query
          (loop thread + workers) and loop_us_per_query (the loop's part);
          cost_vs_vsim_ws = its server CPU per query / VSIM WITHSCORES's
          (the issue's FT.SEARCH/VSIM per-query cost, target <= 1.3),
          cost_vs_vsim = the same against plain VSIM, qps_vs_vsim_ws =
          its qps / VSIM WITHSCORES's.  vsim_ws and vsim query the
          NOQUANT set (float32, like the index), vsim_q8_ws the Q8 one.
"""
import json
import statistics
import sys
from collections import defaultdict

path = sys.argv[1]
name = sys.argv[2] if len(sys.argv) > 2 else path
lines = [json.loads(l) for l in open(path) if l.startswith("{")]
lines = [l for l in lines if l.get("bench") == "ftsearch"]
med = statistics.median


def out(d):
    d = {"bench": "ftsearch_summary", "data": name, **d}
    print(json.dumps(d))


load = defaultdict(dict)        # round -> variant -> line
for l in lines:
    if l["phase"] == "load":
        load[l["round"]][l["variant"]] = l
for v in ("hset", "hset_cos", "vadd", "vadd_q8"):
    ls = [r[v] for r in load.values() if v in r]
    if ls:
        out({"what": "load", "variant": v, "rounds": len(ls),
             "vectors_per_s": round(med(x["vectors_per_s"] for x in ls), 1),
             "server_us_per_vector": round(med(x.get("server_us_per_vector", 0) for x in ls), 2),
             "server_cores": round(med(x.get("server_cores", 0) for x in ls), 2)})
for hs, ref in (("hset", "vadd"), ("hset", "vadd_q8"), ("hset_cos", "vadd")):
    rr = [r for r in load.values() if hs in r and ref in r]
    if not rr:
        continue
    q = [r[hs]["vectors_per_s"] / r[ref]["vectors_per_s"] for r in rr]
    c = [r[ref]["server_us_per_vector"] / r[hs]["server_us_per_vector"] for r in rr
         if r[hs].get("server_us_per_vector")]
    out({"what": "ingest", "hset": hs, "against": ref, "rounds": len(rr),
         "hset_over_vadd_rate": round(med(q), 3), "rate_ratios": [round(x, 3) for x in q],
         "vadd_cpu_over_hset_cpu": round(med(c), 3) if c else None,
         "cpu_ratios": [round(x, 3) for x in c], "target": 0.8,
         "ok": med(q) >= 0.8})

runs = defaultdict(dict)        # (mode, ef, round) -> variant -> line
for l in lines:
    if l["phase"] == "search":
        runs[(l["mode"], l["ef"], l["round"])][l["variant"]] = l
keys = sorted({(m, e) for (m, e, _) in runs}, key=lambda x: (x[0] != "p1", x[1]))
variants = []
for l in lines:
    if l["phase"] == "search" and l["variant"] not in variants:
        variants.append(l["variant"])
order = [v for v in ("ft", "ft_nc", "ft_cos", "vsim_ws", "vsim", "vsim_q8_ws") if v in variants]
for mode, ef in keys:
    rounds = [runs[k] for k in runs if k[0] == mode and k[1] == ef]
    for v in order:
        ls = [r[v] for r in rounds if v in r]
        if not ls:
            continue
        d = {"what": "search", "mode": mode, "ef": ef, "variant": v, "rounds": len(ls),
             "inflight_per_conn": ls[0]["inflight_per_conn"], "conns": ls[0]["conns"],
             "qps": round(med(x["qps"] for x in ls), 1),
             "recall_at_k": round(med(x["recall_at_k"] for x in ls), 4),
             "recall_l2": round(med(x["recall_l2"] for x in ls), 4),
             "recall_cos": round(med(x["recall_cos"] for x in ls), 4),
             "server_us_per_query": round(med(x["server_us_per_query"] for x in ls), 2),
             "loop_us_per_query": round(med(x["server_loop_cpu_s"] / x["queries"] * 1e6
                                            for x in ls), 2),
             "server_cores": round(med(x.get("server_cores", 0) for x in ls), 2)}
        for ref, tag in (("vsim_ws", "vsim_ws"), ("vsim", "vsim")):
            pr = [(r[v], r[ref]) for r in rounds if v in r and ref in r]
            if pr and v != ref:
                d["cost_vs_" + tag] = round(med(a["server_us_per_query"] / b["server_us_per_query"]
                                               for a, b in pr), 3)
                d["qps_vs_" + tag] = round(med(a["qps"] / b["qps"] for a, b in pr), 3)
        if v.startswith("ft") and "cost_vs_vsim_ws" in d:
            d["target_cost"] = 1.3
            d["ok"] = d["cost_vs_vsim_ws"] <= 1.3
        out(d)
