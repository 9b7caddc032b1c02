#!/usr/bin/env python3
"""Side-by-side table of bench/run.sh's results: ours against PyTorch (padded, unpadded) and
ONNX Runtime, per thread count, with the targets of issue 6 judged. Standard library only.

usage: report.py RESULTS_DIR [--markdown OUT.md] [--update-doc docs/PERF.md]
RESULTS_DIR holds {ours,torch-padded,torch-unpadded,onnxruntime}-t<N>.json (a missing or broken
file shows as n/a), plus gemm.json (bench_gemm) and profile.json (bench --profile-only) when
present. --update-doc replaces the text between the markers <!-- NAME:begin --> and
<!-- NAME:end --> in that file, for NAME = bench-note (provisional or quiet), bench-table,
gemm-table, profile-table.
"""
import glob
import json
import math
import os
import re
import statistics
import sys

IMPLS = [("ours", "ours"), ("torch-padded", "PyTorch padded"), ("torch-unpadded", "PyTorch unpadded"),
         ("onnxruntime", "ONNX Runtime")]
ROWS = ["load", "first_image", "image_b1", "image_b8"] + \
       ["text%d_b%d" % (L, b) for b in (1, 8) for L in (8, 24, 64, 256)] + \
       ["tokenize9", "preprocess_file", "zeroshot9", "zeroshot9_file"]
LABEL = {
    "load": "model load", "first_image": "load -> 1st image embedding",
    "image_b1": "image, batch 1", "image_b8": "images, batch 8 (per image)",
    "tokenize9": "tokenize 9 prompts", "preprocess_file": "image decode+resize (file)",
    "zeroshot9": "zero-shot 1+9, from pixels+ids", "zeroshot9_file": "zero-shot 1+9, from file",
}
for _b in (1, 8):
    for _L in (8, 24, 64, 256):
        LABEL["text%d_b%d" % (_L, _b)] = "text %d tok, batch %d%s" % (_L, _b, " (per text)" if _b > 1 else "")


def load_results(d):
    """{threads: {impl: json}}"""
    out = {}
    for f in sorted(glob.glob(os.path.join(d, "*-t*.json"))):
        m = re.match(r"(.+)-t(\d+)\.json$", os.path.basename(f))
        if not m:
            continue
        try:
            with open(f) as fh:
                out.setdefault(int(m.group(2)), {})[m.group(1)] = json.load(fh)
        except (OSError, ValueError) as e:
            print("report: skipping %s: %s" % (f, e), file=sys.stderr)
    return out


def ms_per_item(j, key):
    r = (j or {}).get("results", {}).get(key)
    if not r or not r.get("median_s"):
        return None
    return r["median_s"] * 1e3 / (r["items"] if key.endswith("_b8") else 1)


def fmt_ms(v):
    if v is None:
        return "n/a"
    return "%.3g" % v if v < 100 else "%.0f" % v


def paired_ratio(ours, peer, key):
    """(ratio, lo, hi) of peer time / our time. With rounds (rounds.py) on both sides: the median
    of the rounds' ratios, each round's peer against the same round's ours (run back to back, so
    that a drift of the machine cancels), and their range; else the ratio of the medians and no
    range. None when either side lacks the workload."""
    o, p = ms_per_item(ours, key), ms_per_item(peer, key)
    if o is None or p is None:
        return None
    ro = ((ours or {}).get("results", {}).get(key) or {}).get("rounds_median_s") or []
    rp = ((peer or {}).get("results", {}).get(key) or {}).get("rounds_median_s") or []
    pairs = [b / a for a, b in zip(ro, rp) if a and b]
    if len(pairs) >= 2:
        return statistics.median(pairs), min(pairs), max(pairs)
    return p / o, None, None


def fmt_paired(r):
    if r is None:
        return "n/a"
    return "%.2fx" % r[0] + (" (%.2f-%.2f)" % (r[1], r[2]) if r[1] is not None else "")


def max_diff(a, b):
    if not a or not b or len(a) != len(b):
        return None
    return max(abs(x - y) for x, y in zip(a, b))


def table(threads, impls):
    """Markdown lines for one thread count, and the targets."""
    ours = impls.get("ours")
    nr = int((ours or {}).get("rounds", 1))
    lines = ["**%d thread%s** (ms per item, median%s; ratio = peer time / our time, > 1 means we are faster%s)" % (
        threads, "" if threads == 1 else "s",
        " of %d alternating rounds for ours and ONNX Runtime" % nr if nr > 1 else "",
        "; vs ONNX RT: the median of the rounds' ratios, each round's pair run back to back (their range)"
        if nr > 1 else ""), "",
        "| workload | " + " | ".join(name for _, name in IMPLS) + " | vs ONNX RT | vs PyTorch padded | vs PyTorch unpadded |",
        "|---|" + "---:|" * (len(IMPLS) + 3)]
    for key in ROWS:
        vals = [ms_per_item(impls.get(i), key) for i, _ in IMPLS]
        if all(v is None for v in vals):
            continue
        lines.append("| %s | %s | %s |" % (
            LABEL.get(key, key), " | ".join(fmt_ms(v) for v in vals),
            " | ".join(fmt_paired(paired_ratio(ours, impls.get(i), key))
                       for i in ("onnxruntime", "torch-padded", "torch-unpadded"))))
    if ours:
        tp = ours.get("throughput_mode", {})
        for key, t in tp.items():
            lines.append("| throughput mode %s: %d ctx x 1 thread | %s | | | | | | |" % (
                key, t["contexts"], fmt_ms(1e3 / t["items_per_s"])))
    if ours and ours.get("machine", {}).get("loadavg_start") is not None:
        m = ours["machine"]
        busy = nr == 1 and max(m["loadavg_start"], m.get("loadavg_end", 0)) > 0.5 * m.get("online_cpus", 1)
        lines += ["", "1-minute load average at the start of our first round / the end of our last: %.2f / %.2f%s" % (
            m["loadavg_start"], m.get("loadavg_end", -1),
            " (**busy machine: these figures are noisy**)" if busy else
            " (it counts this benchmark's own threads, not other machines on the host)")]
    rss = ["%s %.0f MB" % (name, impls[i]["peak_rss_all_mb"]) for i, name in IMPLS
           if impls.get(i) and impls[i].get("peak_rss_all_mb")]
    lines += ["", "Peak RSS of each whole run: " + ", ".join(rss) + "."]
    if ours and ours.get("peak_rss_batch1_mb"):
        lines.append("Ours at batch 1: %.0f MB (model file %.0f MB)." % (ours["peak_rss_batch1_mb"],
                                                                       ours["model_file_mb"]))
    if ours and ours.get("sgemm_gflops"):
        r = ours["results"].get("image_b8")
        fma = ours.get("fma_peak_gflops") or 0
        line = "In the same run: the FMA peak of %d thread%s %s, OpenBLAS SGEMM 1576x768x3072 %.1f GFLOP/s" % (
            ours.get("threads", 0), "" if ours.get("threads") == 1 else "s",
            "%.1f GFLOP/s" % fma if fma else "n/a", ours["sgemm_gflops"])
        if r and r.get("gflop"):
            g = r["gflop"] / r["median_s"]
            line += "; image encoding (batch 8, %.1f GFLOP per image) reaches %.1f GFLOP/s (%s%.0f%% of OpenBLAS's)" % (
                ours["gflop_per_image"], g, "%.0f%% of the FMA peak, " % (100 * g / fma) if fma else "",
                100 * g / ours["sgemm_gflops"])
            ort = impls.get("onnxruntime")
            ro = ort and ort.get("results", {}).get("image_b8")
            if ro and ro.get("median_s") and fma:
                go = ours["gflop_per_image"] * ro.get("items", 1) / ro["median_s"]
                line += ", ONNX Runtime %.1f GFLOP/s (%.0f%%)" % (go, 100 * go / fma)
        lines.append(line + ".")
    diffs = []
    for i, name in IMPLS[1:]:
        if impls.get(i) and ours:
            d = [max_diff(ours.get(k), impls[i].get(k)) for k in ("check_image", "check_text24")]
            if None not in d:
                diffs.append("%s %.1e / %.1e%s" % (name, d[0], d[1], "" if max(d) < 1e-4 else " (DIFFERENT)"))
    if diffs:
        lines.append("Same model check, max |difference| of the normalised image / text embeddings against "
                     "ours: " + ", ".join(diffs) + ".")
    return lines, targets(threads, impls)


def targets(threads, impls):
    """[(target, measured, met)] for issue 6's targets."""
    ours, ort, tpad = impls.get("ours"), impls.get("onnxruntime"), impls.get("torch-padded")
    out = []

    def ratio(peer, key, need, what):
        r = paired_ratio(ours, peer, key)
        if r is None:
            out.append((what, "n/a", None))
        else:
            out.append((what, fmt_paired(r), r[0] >= need))

    ratio(ort, "image_b8", 1.2, "images, batch 8: >= 1.2x ONNX Runtime")
    ratio(ort, "image_b1", 1.0, "image, batch 1: no slower than ONNX Runtime")
    ratio(ort, "text24_b1", 1.3, "24-token text, batch 1: >= 1.3x ONNX Runtime")
    ratio(ort, "text24_b8", 1.3, "24-token texts, batch 8: >= 1.3x ONNX Runtime")
    ratio(tpad, "zeroshot9_file", 10, "zero-shot 1+9 from file: >= 10x padded PyTorch")
    ratio(tpad, "zeroshot9", 10, "zero-shot 1+9 from pixels+ids: >= 10x padded PyTorch")
    load = ms_per_item(ours, "load")
    out.append(("model load < 50 ms", "n/a" if load is None else "%.1f ms" % load,
                None if load is None else load < 50))
    if ours and ours.get("peak_rss_batch1_mb"):
        lim = ours["model_file_mb"] + 100
        out.append(("peak RSS at batch 1 <= model file + 100 MB", "%.0f MB (limit %.0f MB)" % (
            ours["peak_rss_batch1_mb"], lim), ours["peak_rss_batch1_mb"] <= lim))
    else:
        out.append(("peak RSS at batch 1 <= model file + 100 MB", "n/a", None))
    return out


NOISE_KEYS = ("image_b1", "image_b8", "text24_b1", "text24_b8")


def noise_note(res):
    """The bench-note from the rounds: how far the same workload's medians moved between rounds."""
    worst = {}  # impl -> (spread, key, threads)
    rounds = 0
    for threads, impls in res.items():
        for impl in ("ours", "onnxruntime"):
            j = impls.get(impl) or {}
            rounds = max(rounds, int(j.get("rounds", 1)))
            for key in NOISE_KEYS:
                meds = [m for m in ((j.get("results", {}).get(key) or {}).get("rounds_median_s") or []) if m]
                if len(meds) >= 2:
                    sp = max(meds) / min(meds) - 1
                    if sp > worst.get(impl, (-1,))[0]:
                        worst[impl] = (sp, key, threads)
    if rounds < 2 or "ours" not in worst:
        return ""
    parts = ["%s: %.0f%% (%s, %d thread%s)" % (name, 100 * worst[i][0], worst[i][1], worst[i][2],
                                              "" if worst[i][2] == 1 else "s")
             for i, name in (("ours", "ours"), ("onnxruntime", "ONNX Runtime")) if i in worst]
    return ("> **Noise.** Over %d alternating rounds the median of one workload moved by up to\n> %s.\n"
            "> Other virtual machines share this host and take cores and memory bandwidth unseen (the load\n"
            "> average inside the machine counts only this benchmark's own threads), so each ratio to ONNX\n"
            "> Runtime pairs the two runs of one round, back to back; the table gives the median of those\n"
            "> pairs and their range. Read a ratio as uncertain by about its range.\n" % (rounds, "; ".join(parts)))


def load_note(res):
    """The bench-note of a single round: the load average around our run."""
    loads = [max(r["ours"]["machine"].get("loadavg_start", -1), r["ours"]["machine"].get("loadavg_end", -1))
             for r in res.values() if "ours" in r]
    ours_any = next((r["ours"] for r in res.values() if "ours" in r), None)
    cpus = int((ours_any or {}).get("machine", {}).get("online_cpus", 1))
    if loads and max(loads) > 0.5 * cpus:
        return ("> **Provisional figures.** The 1-minute load average reached %.1f on %d cores during these runs:\n"
                "> other jobs shared the machine, so the figures are noisy (the median of repeats hides only part\n"
                "> of that). Rerun `BENCH_UPDATE_DOCS=1 make bench` on a quiet machine to replace them.\n" % (
                    max(loads), cpus))
    if loads:
        return "> Measured on a quiet machine (1-minute load average at most %.2f on %d cores).\n" % (max(loads), cpus)
    return ""


def gemm_table(d):
    """Markdown lines for bench_gemm's JSON (RESULTS_DIR/gemm.json), or []."""
    try:
        with open(os.path.join(d, "gemm.json")) as f:
            g = json.load(f)
    except (OSError, ValueError):
        return []
    T = int(g.get("threads", 0))
    if "ours_gflops_T" not in (g.get("rows") or [{}])[0]:
        return []  # an older bench_gemm's output
    lines = ["OpenBLAS core %s; read bandwidth %.1f GB/s (1 thread), %.1f GB/s (%d); FMA peak %.1f GFLOP/s "
             "(%d threads), %.1f (1 thread); OpenBLAS large SGEMM %.1f GFLOP/s (%d threads), %.1f (1 thread). "
             "GFLOP/s per shape, weights cold (cycled through 320 MB); ours is `bmc__gemm`, the library's "
             "product; roofline = min(FMA peak, bandwidth x M / 2):" % (
                 g.get("blas_core", "?"), g["read_gbs_1"], g["read_gbs_T"], T, g["fma_peak_gflops_T"], T,
                 g["fma_peak_gflops_1"], g["sgemm_peak_gflops_T"], T, g["sgemm_peak_gflops_1"]), "",
             "| weight [N,K] | M | ours %d thr | OpenBLAS %d thr | roofline %d thr | ours 1 thr | OpenBLAS 1 thr "
             "| sgemv x M, 1 thr | roofline 1 thr |" % (T, T, T), "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in g.get("rows", []):
        if r["M"] not in (1, 4, 8, 24, 96, 197, 788, 1576):
            continue
        thin = r["M"] <= 32
        lines.append("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %.1f |" % (
            r["weight"], r["M"], r["ours_gflops_T"], r["blas_gflops_T"], r["roofline_T"], r["ours_gflops_1"],
            r["blas_gflops_1"], "%.1f" % r["gemv_gflops_1"] if thin else "", r["roofline_1"]))
    return lines


def profile_table(d):
    try:
        with open(os.path.join(d, "profile.json")) as f:
            p = json.load(f).get("profile", {})
    except (OSError, ValueError):
        return []
    if not p:
        return []
    # shares of wall time x lanes: a batch split into per-thread groups runs one lane per thread
    lines = ["| workload | wall ms | lanes | GEMM | attention | LayerNorm/GELU/softmax | preprocessing | other |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k, v in p.items():
        lanes = max(1, int(v.get("lanes", 1)))
        w = v["wall_s"] * lanes
        # preprocessing is timed apart from the pass (its own median), so clamp the remainder
        other = max(0.0, w - v["gemm_s"] - v["attention_s"] - v["norm_act_s"] - v["preprocess_s"])
        lines.append("| %s | %.1f | %d | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% |" % (
            k, v["wall_s"] * 1e3, lanes, 100 * v["gemm_s"] / w, 100 * v["attention_s"] / w, 100 * v["norm_act_s"] / w,
            100 * v["preprocess_s"] / w, 100 * other / w))
    return lines


def replace_between(s, name, text):
    b, e = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    if b in s and e in s and text:
        return s[:s.index(b) + len(b)] + "\n" + text + s[s.index(e):], True
    return s, False


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    d = args[0]
    md_out = args[args.index("--markdown") + 1] if "--markdown" in args else None
    doc = args[args.index("--update-doc") + 1] if "--update-doc" in args else None
    res = load_results(d)
    if not res:
        print("report: no results in %s" % d)
        return 1
    md = []
    for threads in sorted(res, reverse=True):
        impls = res[threads]
        lines, tg = table(threads, impls)
        md += lines + ["", "Targets (%d thread%s):" % (threads, "" if threads == 1 else "s"), "",
                       "| target | measured | met |", "|---|---:|---|"]
        for what, got, met in tg:
            md.append("| %s | %s | %s |" % (what, got, "n/a" if met is None else ("yes" if met else "**no**")))
        md.append("")
    ours_any = next((r["ours"] for r in res.values() if "ours" in r), None)
    if ours_any:
        m = ours_any.get("machine", {})
        md.append("Machine: %s, %d CPUs; %s; OpenBLAS core %s%s." % (
            m.get("cpu", "?"), int(m.get("online_cpus", 0)), m.get("blas", "?"), m.get("blas_core", "?"),
            " (OPENBLAS_CORETYPE=%s)" % m["openblas_coretype_env"] if m.get("openblas_coretype_env") else ""))
    text = "\n".join(md) + "\n"
    note = noise_note(res) or load_note(res)
    gemm = "\n".join(gemm_table(d))
    prof = "\n".join(profile_table(d))
    print(text)
    if gemm:
        print(gemm + "\n")
    if prof:
        print(prof + "\n")
    if md_out:
        with open(md_out, "w") as f:
            f.write(text + ("\n" + gemm + "\n" if gemm else "") + ("\n" + prof + "\n" if prof else ""))
    if doc:
        with open(doc) as f:
            s = f.read()
        for name, t in (("bench-note", note), ("bench-table", text), ("gemm-table", gemm + "\n" if gemm else ""),
                        ("profile-table", prof + "\n" if prof else "")):
            s, done = replace_between(s, name, t)
            print("report: %s %s in %s" % ("updated" if done else "left", name, doc))
        with open(doc, "w") as f:
            f.write(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
