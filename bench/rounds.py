#!/usr/bin/env python3
"""Merge the rounds of bench/run.sh into one result per implementation and thread count.

usage: rounds.py RESULTS_DIR

RESULTS_DIR holds IMPL-tT.rR.json, round R of implementation IMPL at T threads (bench/run.sh
alternates ours and ONNX Runtime round by round). For every IMPL-tT this writes IMPL-tT.json:
round 1's JSON, in which each workload of "results" gets
  median_s          the median of the rounds' medians (the figure the table shows)
  best_s            the best of the rounds' bests
  n                 the calls of all rounds together
  rounds_median_s   each round's median, in round order (null where a round lacks the workload)
so that report.py can pair ours and a peer round by round. Standard library only.
"""
import copy
import glob
import json
import os
import re
import statistics
import sys


def merge(docs):
    """docs: [(round, json)] sorted by round -> merged json"""
    base = copy.deepcopy(docs[0][1])  # round 1, to be overwritten
    base["rounds"] = len(docs)
    keys = []
    for _, d in docs:
        for k in d.get("results", {}):
            if k not in keys:
                keys.append(k)
    res = base.setdefault("results", {})
    for k in keys:
        per = [d.get("results", {}).get(k) for _, d in docs]
        meds = [r.get("median_s") if r else None for r in per]
        have = [m for m in meds if m]
        if not have:
            continue
        entry = res.get(k) or copy.deepcopy(next(r for r in per if r))
        entry["median_s"] = statistics.median(have)
        bests = [r.get("best_s") for r in per if r and r.get("best_s")]
        if bests:
            entry["best_s"] = min(bests)
        entry["n"] = sum(int(r.get("n", 0)) for r in per if r)
        entry["rounds_median_s"] = meds
        res[k] = entry
    last = docs[-1][1].get("machine", {})
    if "machine" in base and "loadavg_end" in last:
        base["machine"]["loadavg_end"] = last["loadavg_end"]
    return base


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    d = argv[1]
    groups = {}
    for f in glob.glob(os.path.join(d, "*-t*.r*.json")):
        m = re.match(r"(.+-t\d+)\.r(\d+)\.json$", os.path.basename(f))
        if not m:
            continue
        try:
            with open(f) as fh:
                groups.setdefault(m.group(1), []).append((int(m.group(2)), json.load(fh)))
        except (OSError, ValueError) as e:
            print("rounds: skipping %s: %s" % (f, e), file=sys.stderr)
    for name, docs in sorted(groups.items()):
        docs.sort(key=lambda rd: rd[0])
        with open(os.path.join(d, name + ".json"), "w") as fh:
            json.dump(merge(docs), fh, indent=1)
        print("rounds: %s.json from %d round%s" % (name, len(docs), "" if len(docs) == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
