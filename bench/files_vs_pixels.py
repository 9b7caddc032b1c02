#!/usr/bin/env python3
"""bench/files_vs_pixels.py - `biomedclip index` throughput from image files against the same
pixels, alternating rounds.

    python3 bench/files_vs_pixels.py [--cli build/biomedclip] [--cli-b OTHER] [--model M]
        [--threads 2] [--batch 8] [--copies 64] [--rounds 3] [IMAGE...]

"files": a folder of --copies symlinks to the images (default: the JPEGs of
$SHARED_DATA/images, cycled). "pixels": the same number of 224 x 224 PPM files holding each
file's crop as PIL makes it (open_clip's Resize + CenterCrop + convert('RGB')), so that the
library decodes almost nothing and resizes nothing: what is left is the model. Both give the
same embeddings (checked: the index files are compared). Each round indexes both folders into
fresh indexes; a second CLI (--cli-b, e.g. a build without the reader thread) runs the files
folder in the same rounds. Prints images/s per run and the ratios of the medians.
A benchmark prints figures; it asserts nothing about speed.
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from test_image_pixels import pil_crop  # noqa: E402  (open_clip's val transform, PIL; as the tests do)


def run_index(cli, model, folder, out, threads, batch):
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    r = subprocess.run([cli, "index", "-m", model, "--threads", str(threads), "--batch", str(batch), "--quiet",
                        "-o", out, folder], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"bench/files_vs_pixels.py: {cli} index {folder} failed: {r.stderr.strip()}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    build = os.environ.get("BUILD", "build")
    ap.add_argument("--cli", default=os.path.join(build, "biomedclip"))
    ap.add_argument("--cli-b", help="a second CLI run on the files folder in the same rounds")
    ap.add_argument("--model", default=os.environ.get("BIOMEDCLIP_MODEL",
                                                      os.path.join(os.environ.get("BMC_TESTDATA", "build/testdata"),
                                                                   "full.bmc")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--copies", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("images", nargs="*")
    a = ap.parse_args()
    src = a.images
    if not src:
        shared = os.environ.get("SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
        src = sorted(p for p in glob.glob(os.path.join(shared, "images", "*")) if p.lower().endswith((".jpg", ".jpeg")))
    if not src:
        sys.exit("bench/files_vs_pixels.py: no images (set SHARED_DATA or name files)")
    work = tempfile.mkdtemp(prefix="bmc-fvp-")
    try:
        files, pixels = os.path.join(work, "files"), os.path.join(work, "pixels")
        os.makedirs(files)
        os.makedirs(pixels)
        for i in range(a.copies):
            p = os.path.abspath(src[i % len(src)])
            os.symlink(p, os.path.join(files, f"{i:04d}{os.path.splitext(p)[1]}"))
            Image.fromarray(pil_crop(Image.open(p))).save(os.path.join(pixels, f"{i:04d}.ppm"))
        runs = [("files", a.cli, files), ("pixels", a.cli, pixels)]
        if a.cli_b:
            runs.append(("files (cli-b)", a.cli_b, files))
        times = {name: [] for name, _, _ in runs}
        print(f"{a.copies} images from {len(src)} files; --threads {a.threads} --batch {a.batch}; model {a.model}")
        for r in range(a.rounds):
            line = []
            for name, cli, folder in runs:
                dt = run_index(cli, a.model, folder, os.path.join(work, "idx-" + name.split()[0] + str(len(line))),
                               a.threads, a.batch)
                times[name].append(dt)
                line.append(f"{name} {a.copies / dt:.2f} img/s")
            print(f"round {r + 1}: " + ", ".join(line), flush=True)
        same = open(os.path.join(work, "idx-files0", "embeddings.npy"), "rb").read() == \
            open(os.path.join(work, "idx-pixels1", "embeddings.npy"), "rb").read()
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"median images/s: " + ", ".join(f"{k} {a.copies / v:.2f}" for k, v in med.items()))
        print(f"files / pixels throughput: {med['pixels'] / med['files']:.3f} "
              f"(rounds: {', '.join(f'{p / f:.3f}' for f, p in zip(times['files'], times['pixels']))})")
        if a.cli_b:
            print(f"files: cli / cli-b throughput: {med['files (cli-b)'] / med['files']:.3f}")
        print(f"embeddings from files and from pixels byte-identical: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
