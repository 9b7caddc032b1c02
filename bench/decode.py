#!/usr/bin/env python3
"""bench/decode.py - decode + Resize + CenterCrop per image: ours against PIL, alternating rounds.

    python3 bench/decode.py [--build build] [--rounds 5] [--reps 10] [--json-out F] [IMAGE...]

Images default to $SHARED_DATA/images/* (the notebook's nine examples). Each round runs
build/bench/bench_decode (bmc_image_load + the crop to 224 x 224 x 3 bytes, medians of --reps
calls) and then PIL on the same files, the way open_clip's val transform does it:
Image.open(path), then torchvision's Resize(224, BICUBIC) on a PIL image (img.resize((w, h),
BICUBIC)), CenterCrop(224) (img.crop(...)) and convert('RGB'). PIL's decode happens inside
resize() (load() on first access); it is timed apart too (open + load) to split the stages.
Rounds alternate because this machine's speed drifts: the ratio of each round is reported, and
the medians over the rounds. A benchmark prints figures; it asserts nothing about speed.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

from PIL import Image

S = 224


def resize_dims(w, h, size=S):
    # torchvision _compute_resized_output_size for a scalar size
    short, long_ = (w, h) if w <= h else (h, w)
    new_long = int(size * long_ / short)
    return (size, new_long) if w <= h else (new_long, size)


def pil_transform(path):
    """Returns (decode seconds, whole-transform seconds) of one call."""
    t0 = time.perf_counter()
    img = Image.open(path)
    img.load()
    t1 = time.perf_counter()
    # the same again, from the file, as open_clip does it (decode inside resize)
    t2 = time.perf_counter()
    img = Image.open(path)
    w, h = img.size
    nw, nh = resize_dims(w, h)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - S) / 2.0)), int(round((nh - S) / 2.0))
    img = img.crop((left, top, left + S, top + S))
    if img.mode != "RGB":
        img = img.convert("RGB")
    img.tobytes()
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2


def pil_round(paths, reps):
    out = {}
    for p in paths:
        pil_transform(p)  # warm-up
        dec, tot = [], []
        for _ in range(reps):
            d, t = pil_transform(p)
            dec.append(d)
            tot.append(t)
        out[p] = {"decode_ms": statistics.median(dec) * 1e3, "total_ms": statistics.median(tot) * 1e3}
    return out


def ours_round(bench, paths, reps):
    r = subprocess.run([bench, "--reps", str(reps)] + paths, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench/decode.py: {bench} failed: {r.stderr.strip()}")
    return {d["file"]: d for d in (json.loads(line) for line in r.stdout.splitlines() if line.strip())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json-out")
    ap.add_argument("images", nargs="*")
    a = ap.parse_args()
    paths = a.images
    if not paths:
        shared = os.environ.get("SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
        paths = sorted(p for p in glob.glob(os.path.join(shared, "images", "*"))
                       if p.lower().endswith((".jpg", ".jpeg", ".png")))
    if not paths:
        sys.exit("bench/decode.py: no images (set SHARED_DATA or name files)")
    bench = os.path.join(a.build, "bench", "bench_decode")
    if not os.access(bench, os.X_OK):
        sys.exit(f"bench/decode.py: {bench} is not built (make {bench})")

    rounds = []
    for r in range(a.rounds):
        ours = ours_round(bench, paths, a.reps)
        pil = pil_round(paths, a.reps)
        rounds.append((ours, pil))
        tot_o = sum(ours[p]["total_ms"] for p in paths)
        tot_p = sum(pil[p]["total_ms"] for p in paths)
        print(f"round {r + 1}: all {len(paths)} images ours {tot_o:.2f} ms, PIL {tot_p:.2f} ms, "
              f"PIL/ours {tot_p / tot_o:.3f}", flush=True)

    med = statistics.median
    rows = []
    print(f"\n{'image':42s} {'size':>11s} mode | {'ours load':>9s} {'crop':>6s} {'total':>6s} | "
          f"{'PIL dec':>7s} {'total':>6s} | PIL/ours (min..max over rounds)")
    for p in paths:
        o = [r[0][p] for r in rounds]
        q = [r[1][p] for r in rounds]
        ratios = [qq["total_ms"] / oo["total_ms"] for oo, qq in zip(o, q)]
        row = {"file": os.path.basename(p), "width": o[0]["width"], "height": o[0]["height"],
               "mode": o[0]["mode"], "ours_load_ms": med([x["load_ms"] for x in o]),
               "ours_crop_ms": med([x["crop_ms"] for x in o]), "ours_total_ms": med([x["total_ms"] for x in o]),
               "ours_input_ms": med([x["input_ms"] for x in o]),
               "pil_decode_ms": med([x["decode_ms"] for x in q]), "pil_total_ms": med([x["total_ms"] for x in q]),
               "ratio": med(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
        rows.append(row)
        print(f"{row['file'][:42]:42s} {row['width']:5d}x{row['height']:<5d} {row['mode']:4s} | "
              f"{row['ours_load_ms']:9.2f} {row['ours_crop_ms']:6.2f} {row['ours_total_ms']:6.2f} | "
              f"{row['pil_decode_ms']:7.2f} {row['pil_total_ms']:6.2f} | {row['ratio']:.2f} "
              f"({row['ratio_min']:.2f}..{row['ratio_max']:.2f})")
    all_r = [sum(r[1][p]["total_ms"] for p in paths) / sum(r[0][p]["total_ms"] for p in paths) for r in rounds]
    print(f"all images: PIL/ours {med(all_r):.3f} (rounds {min(all_r):.3f}..{max(all_r):.3f}); "
          f"> 1 means ours is faster")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"rows": rows, "ratio_all": med(all_r), "rounds": all_r}, f, indent=1)


if __name__ == "__main__":
    main()
