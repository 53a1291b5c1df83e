#!/usr/bin/env python3
"""vsim_summary.py -- bench/vsim.sh's medians and ratios over bench_vsim's
JSON lines.

    bench/vsim_summary.py OUT.jsonl DATA_NAME [REF_EF]

Prints "vsim_summary" lines (see bench/vsim.sh for each field).  A ratio
is taken within each round, between runs seconds apart, then its median;
cpu ratios compare the server's CPU time per query, which does not depend
on how many cores the server got during the run (on a shared machine it
got anywhere between 0.6 and 1.7 of the two), qps ratios compare
throughput as measured.  A filtered run is compared with the same
variant's unfiltered run at REF_EF when the curve has it (default 40: the
issue's reference), else at the filtered run's own ef.
"""
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
data = sys.argv[2]
ref_ef = int(sys.argv[3]) if len(sys.argv) > 3 else 40
med = statistics.median
setup = next(r for r in rows if r["phase"] == "setup")

def emit(**kv):
    print(json.dumps(dict(bench="vsim_summary", data=data, **kv)))

search = {}
for r in rows:
    if r["phase"] == "search":
        search.setdefault((r["variant"], r["ef"]), {})[r["round"]] = r
for (v, ef), byr in sorted(search.items(), key=lambda x: (x[0][0], x[0][1])):
    ref = search.get(("vsearch", ef), {})
    extra = {}
    if v != "vsearch" and ref:
        rounds = [i for i in byr if i in ref]
        extra["qps_ratio"] = round(med(byr[i]["qps"] / ref[i]["qps"] for i in rounds), 3)
        if all("server_us_per_query" in byr[i] and "server_us_per_query" in ref[i] for i in rounds):
            extra["cpu_ratio"] = round(med(ref[i]["server_us_per_query"] / byr[i]["server_us_per_query"]
                                           for i in rounds), 3)
        extra["qps_ratio_runs"] = [round(byr[i]["qps"] / ref[i]["qps"], 3) for i in sorted(rounds)]
    rs = list(byr.values())
    emit(what="search", variant=v, ef=ef, rounds=len(rs), qps=round(med(r["qps"] for r in rs), 1),
         qps_runs=[r["qps"] for r in rs], recall_at_k=med(r["recall_at_k"] for r in rs),
         server_us_per_query=round(med(r.get("server_us_per_query", 0) for r in rs), 2), **extra)

filt = {}
for r in rows:
    if r["phase"] == "filtered":
        filt.setdefault((r["variant"], r["selectivity_pct"], r["ef"], r["filter_ef"]),
                        {})[r["round"]] = r
for (v, sel, ef, fef), byr in sorted(filt.items()):
    uef = ref_ef if (v, ref_ef) in search else ef
    un = search.get((v, uef), {})
    rounds = [i for i in byr if i in un]
    extra = {}
    if rounds:
        ratio = med(byr[i]["qps"] / un[i]["qps"] for i in rounds)
        extra = dict(unfiltered_ef=uef, unfiltered_qps=round(med(un[i]["qps"] for i in rounds), 1),
                     unfiltered_recall=med(un[i]["recall_at_k"] for i in rounds),
                     vs_unfiltered=round(ratio, 3))
        if all("server_us_per_query" in byr[i] and "server_us_per_query" in un[i] for i in rounds):
            extra["cpu_vs_unfiltered"] = round(med(un[i]["server_us_per_query"] /
                                                   byr[i]["server_us_per_query"] for i in rounds), 3)
    rec = med(r["recall_at_k"] for r in byr.values())
    if sel == 10 and "cpu_vs_unfiltered" in extra:
        extra.update(target="cpu_vs_unfiltered >= 0.25 and recall >= 0.9",
                     ok=bool(extra["cpu_vs_unfiltered"] >= 0.25 and rec >= 0.9))
    emit(what="filtered", variant=v, ef=ef, selectivity_pct=sel, filter_ef=fef, rounds=len(byr),
         qps=round(med(r["qps"] for r in byr.values()), 1), recall_at_k=rec,
         server_us_per_query=round(med(r.get("server_us_per_query", 0) for r in byr.values()), 2),
         **extra)

for r in rows:
    if r["phase"] == "memory":
        kv = dict(variant=r["variant"], stage=r["stage"], dim=r["dim"], M=r["M"],
                  bytes_per_vector=r["bytes_per_vector"])
        if "target" in r:
            kv.update(target=r["target"], ok=r["bytes_per_vector"] <= r["target"])
        emit(what="memory", **kv)
    if r["phase"] == "skip":
        emit(what="skip", variant=r["variant"], at=r["at"], error=r["error"])

if any(v == "q8_rerank" for v, _ in search):
    for (v, ef), byr in sorted(search.items()):
        if v != "q8_rerank" or ("noquant", ef) not in search:
            continue
        nq = search[("noquant", ef)]
        d = med(r["recall_at_k"] for r in byr.values()) - med(r["recall_at_k"] for r in nq.values())
        emit(what="rerank", ef=ef, recall_minus_noquant=round(d, 4), target=-0.01, ok=d >= -0.01)
