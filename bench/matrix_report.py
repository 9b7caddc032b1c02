#!/usr/bin/env python3
"""Tables of bench/matrix.sh's results: ours at each kernel level and weight type against ONNX
Runtime and PyTorch (unpadded, float32), with the 16-bit targets of issue 23 judged.
Standard library only.

usage: matrix_report.py RESULTS_DIR [--markdown OUT.md] [--update-doc docs/PERF.md]

RESULTS_DIR holds ours-DTYPE-LEVEL-tT.json, onnxruntime-tT.json, torch-unpadded-tT.json and
torch-avx2-tT.json (PyTorch held to AVX2: a row and targets of the avx2 table only) as
merged by bench/rounds.py (each workload's median over the rounds and the rounds' own medians).
One table per level; its rows are the weight types (and the peers), per thread count; its
columns per workload: ms per item (the median over the rounds), the ratio to ONNX Runtime and to
PyTorch (peer time / our time, > 1: we are faster; the median of the rounds' ratios, each
round's runs paired, and their range) and the speed-up over our float32 file at the same level
and thread count (paired the same way). Each config's check embeddings (one image, one 24-token
text) are compared with ONNX Runtime's: relative L2 difference against a tolerance per weight
type. --update-doc replaces the text between <!-- matrix:begin --> and <!-- matrix:end -->.
Exit status 3 when a check fails (an embedding off, or a level the library did not apply).
"""
import glob
import json
import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt_ms, fmt_paired, ms_per_item, paired_ratio, replace_between  # noqa: E402

LEVELS = ["avx512_bf16", "avx512", "avx2", "portable"]
LEVEL_NAME = {"avx512_bf16": "AVX-512 with BF16 (`avx512_bf16`)", "avx512": "AVX-512 (`avx512`)",
              "avx2": "AVX2 (`avx2`)", "portable": "portable (`portable`)"}
DTYPES = ["f32", "f16", "bf16"]
PEERS = [("onnxruntime", "ONNX Runtime (f32)"), ("torch-unpadded", "PyTorch unpadded (f32)"),
         ("torch-avx2", "PyTorch unpadded held to AVX2 (f32)")]
LABEL = {"image_b1": "image, batch 1", "image_b8": "images, batch 8", "text8_b1": "text 8 tok, batch 1",
         "text24_b1": "text 24 tok, batch 1", "text64_b1": "text 64 tok, batch 1",
         "text256_b1": "text 256 tok, batch 1", "text8_b8": "texts 8 tok, batch 8",
         "text24_b8": "texts 24 tok, batch 8", "text64_b8": "texts 64 tok, batch 8",
         "text256_b8": "texts 256 tok, batch 8"}
ORDER = ["image_b1", "image_b8"] + ["text%d_b%d" % (L, b) for b in (1, 8) for L in (8, 24, 64, 256)]
# Relative L2 difference of a normalised embedding against ONNX Runtime's float32 one. f32: the
# same arithmetic up to summation order (measured: about 2e-6). f16 / bf16: twice the tolerances
# of tests/test_reduced_precision.c (1e-3, 1e-2, against the float32 PyTorch reference on its
# golden inputs), since these check inputs are bench's synthetic pixels and ids, on which the
# smoke run measured up to 8.7e-4 (f16) and 9.1e-3 (bf16 at avx512_bf16).
TOLERANCE = {"f32": 1e-4, "f16": 2e-3, "bf16": 2e-2}


def load(d):
    """{threads: {"ours": {(dtype, level): json}, peer: json}}"""
    res = {}
    for f in sorted(glob.glob(os.path.join(d, "*-t*.json"))):
        base = os.path.basename(f)
        m = re.match(r"ours-(f32|f16|bf16)-(\w+)-t(\d+)\.json$", base)
        p = re.match(r"(onnxruntime|torch-unpadded|torch-avx2)-t(\d+)\.json$", base)
        if not m and not p:
            continue
        try:
            with open(f) as fh:
                j = json.load(fh)
        except (OSError, ValueError) as e:
            print("matrix_report: skipping %s: %s" % (f, e), file=sys.stderr)
            continue
        if m:
            res.setdefault(int(m.group(3)), {}).setdefault("ours", {})[(m.group(1), m.group(2))] = j
        else:
            res.setdefault(int(p.group(2)), {})[p.group(1)] = j
    return res


def rel_l2(a, b):
    if not a or not b or len(a) != len(b):
        return None
    n = math.sqrt(sum(y * y for y in b)) or 1.0
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b))) / n


def config(ours, dtype, level):
    """(json, note): the run of this weight type at this level; at avx512_bf16 the f32 and f16
    files run avx512's kernels, so matrix.sh measures them there only."""
    j = ours.get((dtype, level))
    if j is None and level == "avx512_bf16" and dtype != "bf16" and (dtype, "avx512") in ours:
        return ours[(dtype, "avx512")], " (avx512 run)"
    return j, ""


def level_table(level, res, keys):
    """(markdown lines, [(target, measured, met)], [failed checks]) for one level."""
    head = "| weights | threads | " + " | ".join(
        "%s: ms/item | vs ONNX RT | vs PyTorch | vs f32" % LABEL.get(k, k) for k in keys) + " |"
    lines = [head, "|---|---:|" + "---:|---:|---:|---:|" * len(keys)]
    targets, failed, checks = [], [], []
    for T in sorted(res, reverse=True):
        ours = res[T].get("ours", {})
        ort, torch = res[T].get("onnxruntime"), res[T].get("torch-unpadded")
        f32, _ = config(ours, "f32", level)
        for dt in DTYPES:
            j, note = config(ours, dt, level)
            if j is None:
                continue
            cells = []
            for k in keys:
                cells += [fmt_ms(ms_per_item(j, k)), fmt_paired(paired_ratio(j, ort, k)),
                          fmt_paired(paired_ratio(j, torch, k)),
                          "" if dt == "f32" else fmt_paired(paired_ratio(j, f32, k))]
            lines.append("| %s%s | %d | %s |" % (dt, note, T, " | ".join(cells)))
            if not note:
                lib = j.get("machine", {}).get("library", "")
                if not lib.startswith("KERNELS=%s " % level):
                    failed.append("%s at %s, %d threads: the library ran %s" % (dt, level, T, lib.split(" ")[0]))
                if ort:
                    d = [rel_l2(j.get(c), ort.get(c)) for c in ("check_image", "check_text24")]
                    if None in d:
                        checks.append("%s %d thr: n/a" % (dt, T))
                    else:
                        ok = max(d) <= TOLERANCE[dt]
                        checks.append("%s %d thr %.1e / %.1e%s" % (dt, T, d[0], d[1], "" if ok else " (**DIFFERENT**)"))
                        if not ok:
                            failed.append("%s at %s, %d threads: embeddings %.1e / %.1e from ONNX Runtime's "
                                          "(tolerance %.0e)" % (dt, level, T, d[0], d[1], TOLERANCE[dt]))
            if not note:  # a borrowed row's targets are judged in its own level's table
                targets += judge(level, dt, T, j, f32, ort, torch, keys, res[T].get("torch-avx2"))
        for peer, name in PEERS:
            pj = res[T].get(peer) if peer != "torch-avx2" or level == "avx2" else None
            if pj:
                lines.append("| %s | %d | %s |" % (name, T, " | ".join(
                    c for k in keys for c in (fmt_ms(ms_per_item(pj, k)), "", "", ""))))
    if checks:
        lines += ["", "Same model check, relative L2 difference of the normalised image / 24-token text "
                  "embedding against ONNX Runtime's (tolerance f32 %.0e, f16 %.0e, bf16 %.0e): %s." % (
                      TOLERANCE["f32"], TOLERANCE["f16"], TOLERANCE["bf16"], "; ".join(checks))]
    return lines, targets, failed


def judge(level, dt, T, j, f32, ort, torch, keys, torch_avx2=None):
    """Issue 23's targets that apply to this row."""
    out = []

    def need(what, r, x):
        out.append(("%s (%d thread%s)" % (what, T, "" if T == 1 else "s"), fmt_paired(r),
                    None if r is None else r[0] >= x))

    imgs = [k for k in keys if k.startswith("image_")]
    if level == "avx512_bf16" and dt == "bf16":
        for k in imgs:
            need("bf16 %s >= 1.7x our f32" % LABEL[k], paired_ratio(j, f32, k), 1.7)
            need("bf16 %s >= 2x ONNX Runtime (f32)" % LABEL[k], paired_ratio(j, ort, k), 2.0)
    if dt == "f16" and j is not f32:
        if "text24_b1" in keys:
            need("f16 %s >= 1.4x our f32" % LABEL["text24_b1"], paired_ratio(j, f32, "text24_b1"), 1.4)
        for k in imgs:
            need("f16 %s no slower than our f32" % LABEL[k], paired_ratio(j, f32, k), 1.0)
    if level == "avx2" and dt == "f32":
        for k in imgs + [k for k in keys if re.match(r"text(8|24)_b", k)]:
            need("%s >= 1.2x PyTorch" % LABEL[k], paired_ratio(j, torch, k), 1.2)
            if torch_avx2:
                need("%s >= 1.2x PyTorch held to AVX2" % LABEL[k], paired_ratio(j, torch_avx2, k), 1.2)
    return out


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__)
        return 2
    d = args[0]
    md_out = args[args.index("--markdown") + 1] if "--markdown" in args else None
    doc = args[args.index("--update-doc") + 1] if "--update-doc" in args else None
    res = load(d)
    if not any(r.get("ours") for r in res.values()):
        print("matrix_report: no results of ours in %s" % d)
        return 1
    present = {lv for r in res.values() for (_, lv) in r.get("ours", {})}
    keys = []
    for r in res.values():
        for j in list(r.get("ours", {}).values()):
            keys += [k for k in j.get("results", {}) if k not in keys]
    keys = [k for k in ORDER if k in keys]
    all_ours = [(dt, j) for r in res.values() for (dt, _), j in r.get("ours", {}).items()]
    any_ours = next((j for dt, j in all_ours if dt == "f32"), all_ours[0][1])  # the float32 file's name
    rounds = int(any_ours.get("rounds", 1))
    loads = [x for r in res.values() for j in r.get("ours", {}).values()
             for x in (j.get("machine", {}).get("loadavg_start"), j.get("machine", {}).get("loadavg_end"))
             if x is not None]
    m = any_ours.get("machine", {})
    # when: the modification times of ours' round files (bench writes no date)
    stamps = [os.path.getmtime(f) for f in glob.glob(os.path.join(d, "ours-*-t*.r*.json"))]
    when = ""
    if stamps:
        fmt = lambda t: time.strftime("%d %b %Y %H:%M", time.gmtime(t))  # noqa: E731
        when = "Run of %s-%s UTC, " % (fmt(min(stamps)), time.strftime("%H:%M", time.gmtime(max(stamps))))
    ncpu = int(m.get("online_cpus", 1)) or 1
    # our own runs of ncpu threads hold the load average near ncpu; more than that is other work
    busy = loads and max(loads) > ncpu + 0.5
    md = ["%smodel `%s` and its 16-bit twins, threads %s.%s" % (
              when, os.path.basename(any_ours.get("model", "?")),
              " and ".join(str(t) for t in sorted(res, reverse=True)),
              " **The 1-minute load average reached %.1f on %d cores, more than our own runs make: other work shared the machine, "
              "read these figures as provisional.**" % (max(loads), ncpu) if busy else ""), "",
          "ms per item, the median over %d alternating round%s; ratio = the other's time / this row's time "
          "(> 1: this row is faster), the median of the rounds' ratios, each round's runs paired, and "
          "their range. Ours: `bench --workloads` at `BMC_CPU=LEVEL`; the peers run the float32 "
          "model." % (rounds, "" if rounds == 1 else "s"), ""]
    all_targets, all_failed = [], []
    for level in LEVELS:
        if level not in present:
            continue
        lines, tg, failed = level_table(level, res, keys)
        md += ["**%s**" % LEVEL_NAME[level], ""] + lines + [""]
        if tg:
            md += ["| target (%s) | measured | met |" % level, "|---|---:|---|"]
            md += ["| %s | %s | %s |" % (w, g, "n/a" if ok is None else ("yes" if ok else "**no**"))
                   for w, g, ok in tg] + [""]
        all_targets += tg
        all_failed += failed
    md.append("Machine: %s, %d CPUs; %s; 1-minute load average over our runs %.2f-%.2f." % (
        m.get("cpu", "?"), int(m.get("online_cpus", 0)), m.get("blas", "?"),
        min(loads) if loads else -1, max(loads) if loads else -1))
    if all_failed:
        md += ["", "**Checks failed:** " + "; ".join(all_failed) + "."]
    text = "\n".join(md) + "\n"
    print(text)
    if md_out:
        with open(md_out, "w") as f:
            f.write(text)
    if doc:
        with open(doc) as f:
            s = f.read()
        s, done = replace_between(s, "matrix", text)
        print("matrix_report: %s the matrix tables in %s" % ("updated" if done else "found no markers for", doc))
        with open(doc, "w") as f:
            f.write(s)
    return 3 if all_failed else 0


if __name__ == "__main__":
    sys.exit(main())
