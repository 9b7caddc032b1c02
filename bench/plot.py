#!/usr/bin/env python3
"""Throughput plot of bench/run.sh's results as a hand-written SVG (no matplotlib needed):
grouped bars, items per second on a log scale, one panel per thread count, one colour per
implementation; n/a bars are left out.

usage: plot.py RESULTS_DIR OUT.svg
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import IMPLS, load_results  # noqa: E402

WORKLOADS = [("image_b1", "image b1"), ("image_b8", "images b8"), ("text8_b1", "text 8 b1"),
             ("text24_b1", "text 24 b1"), ("text24_b8", "texts 24 b8"), ("text64_b8", "texts 64 b8"),
             ("text256_b1", "text 256 b1"), ("text256_b8", "texts 256 b8"), ("zeroshot9", "zero-shot 1+9")]
COLORS = {"ours": "#1b7837", "torch-padded": "#b2182b", "torch-unpadded": "#ef8a62", "onnxruntime": "#2166ac"}


def items_per_s(j, key):
    r = (j or {}).get("results", {}).get(key)
    if not r or not r.get("median_s"):
        return None
    return r["items"] / r["median_s"]


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(out, x0, y0, w, h, threads, impls):
    vals = [[items_per_s(impls.get(i), k) for i, _ in IMPLS] for k, _ in WORKLOADS]
    flat = [v for row in vals for v in row if v]
    if not flat:
        return
    lo = 10 ** math.floor(math.log10(min(flat)))
    hi = 10 ** math.ceil(math.log10(max(flat)))
    if hi <= lo:
        hi = lo * 10
    left, bottom = 60, 60
    pw, ph = w - left - 10, h - bottom - 30

    def y(v):
        return y0 + 30 + ph - ph * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    m = (impls.get("ours") or {}).get("machine", {})
    load = max(m.get("loadavg_start", -1), m.get("loadavg_end", -1))
    busy = " (busy machine, load %.1f: noisy)" % load if load > 0.5 * m.get("online_cpus", 1) else ""
    out.append('<text x="%d" y="%d" font-size="14" font-weight="bold">%d thread%s%s</text>' % (
        x0 + left, y0 + 18, threads, "" if threads == 1 else "s", esc(busy)))
    d = lo
    while d <= hi * 1.0001:
        yy = y(d)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (x0 + left, x0 + left + pw, yy, yy))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>' % (
            x0 + left - 4, yy + 4, ("%g" % d)))
        d *= 10
    out.append('<text x="%d" y="%d" font-size="11" transform="rotate(-90 %d %d)" text-anchor="middle">'
               'items per second (log)</text>' % (x0 + 14, y0 + 30 + ph // 2, x0 + 14, y0 + 30 + ph // 2))
    gw = pw / len(WORKLOADS)
    bw = gw * 0.8 / len(IMPLS)
    for gi, (key, label) in enumerate(WORKLOADS):
        gx = x0 + left + gi * gw + gw * 0.1
        for ii, (impl, name) in enumerate(IMPLS):
            v = vals[gi][ii]
            if not v:
                continue
            top = y(v)
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3g items/s'
                       '</title></rect>' % (gx + ii * bw, top, bw - 1, y0 + 30 + ph - top, COLORS[impl],
                                            esc(name), esc(label), v))
        out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>' % (
            gx + gw * 0.4, y0 + 30 + ph + 16, esc(label)))
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#000"/>' % (
        x0 + left, x0 + left + pw, y0 + 30 + ph, y0 + 30 + ph))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    res = load_results(sys.argv[1])
    if not res:
        print("plot: no results in %s" % sys.argv[1])
        return 1
    W, H = 960, 330
    threads = sorted(res, reverse=True)
    total_h = H * len(threads) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">' % (W, total_h),
           '<rect width="100%" height="100%" fill="white"/>']
    for k, t in enumerate(threads):
        panel(out, 0, k * H, W, H, t, res[t])
    lx = 60
    for impl, name in IMPLS:
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, total_h - 28, COLORS[impl]))
        out.append('<text x="%d" y="%d" font-size="12">%s</text>' % (lx + 16, total_h - 18, esc(name)))
        lx += 40 + 8 * len(name)
    out.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")
    print("plot: wrote %s" % sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
