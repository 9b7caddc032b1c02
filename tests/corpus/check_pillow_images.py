#!/usr/bin/env python3
"""check_pillow_images.py - Pillow's own TIFF and JPEG test images against the library.

Usage: check_pillow_images.py CORPUS [--build DIR] [--list]
  CORPUS: a directory holding Pillow's Tests/images (a checkout, or `git archive HEAD Tests/images`
  of github.com/python-pillow/Pillow unpacked somewhere); never copied into this project.

For every *.tif / *.tiff / *.jpg / *.jpeg under CORPUS (recursively), every page:
  - PIL 9.4 opens it and open_clip's transform produces a crop: the library's 224x224 crop
    ($BUILD/tests/tool_image_crop) must be byte-identical ("identical"), else "DIFFERENT";
  - PIL opens it but cannot crop it (16-bit 'I;16' that PIL 9.4 cannot resize, 'I', 'F', 'LAB',
    'PA', ...): the library either refuses it or decodes it by its own documented rule (16-bit gray
    scaled v * 255 / 65535): reported as "PIL cannot crop" with what the library did; for
    'I;16' the library's crop is compared with PIL's crop of the scaled image;
  - PIL refuses it: the library must refuse it too, with an error and no crash ("both refuse"),
    else "we decode, PIL refuses".
Prints one line per file and page, then the totals (the figures in docs/IMAGE.md). Exit 1 when a
crop differs or the tool crashes.
"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
from test_image_pixels import pil_crop, read_ppm  # noqa: E402

Image.MAX_IMAGE_PIXELS = None
warnings.simplefilter("ignore")


def pil_pages(path):
    """[(page, crop or None, mode or error)] as PIL sees the file; [] when PIL cannot open it."""
    out = []
    try:
        im = Image.open(path)
        n = getattr(im, "n_frames", 1)
    except Exception as e:  # noqa: BLE001
        return [], f"{type(e).__name__}: {e}"
    for k in range(min(n, 8)):
        try:
            im.seek(k)
            im.load()
            mode = im.mode
        except Exception as e:  # noqa: BLE001
            out.append((k, None, None, f"load: {type(e).__name__}: {e}"))
            continue
        try:
            out.append((k, pil_crop(im), mode, None))
        except Exception as e:  # noqa: BLE001
            alt = None
            if mode in ("I;16", "I;16B", "I;16L"):
                v = np.array(im).astype(np.int64)
                alt = pil_crop(Image.fromarray(((v * 255 + 32767) // 65535).astype(np.uint8), "L"))
            out.append((k, alt, mode, f"crop: {type(e).__name__}: {e}"))
    return out, None


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    corpus = args[0]
    build = args[args.index("--build") + 1] if "--build" in args else os.environ.get("BUILD", "build")
    tool = os.path.join(HERE, "..", "..", build, "tests", "tool_image_crop") if not os.path.isabs(build) \
        else os.path.join(build, "tests", "tool_image_crop")
    files = []
    for root, _, names in os.walk(corpus):
        for n in names:
            if n.lower().endswith((".tif", ".tiff", ".jpg", ".jpeg")):
                files.append(os.path.join(root, n))
    files.sort()
    tot = {}
    bad = 0
    work = tempfile.mkdtemp(prefix="bmc_corpus_")

    def count(kind, fmt):
        tot[(fmt, kind)] = tot.get((fmt, kind), 0) + 1

    for f in files:
        fmt = "TIFF" if f.lower().endswith((".tif", ".tiff")) else "JPEG"
        rel = os.path.relpath(f, corpus)
        pages, perr = pil_pages(f)
        want_pages = pages if pages else [(0, None, None, perr)]
        for page, crop, mode, err in want_pages:
            outp = os.path.join(work, "o")
            cmd = [tool] + (["--frame", str(page)] if page else []) + [f, outp]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode not in (0, 1):
                print(f"CRASH {rel}[{page}]: rc {r.returncode} {r.stderr[-300:]}")
                count("CRASH", fmt)
                bad += 1
                continue
            line = r.stdout.strip()
            ours_ok = line.startswith("OK")
            tag = f"{rel}" + (f"[{page}]" if page else "")
            if not pages:  # PIL cannot open the file at all
                if ours_ok:
                    print(f"we decode, PIL refuses  {tag}: PIL {perr}; we: {line}")
                    count("we decode, PIL refuses", fmt)
                else:
                    print(f"both refuse             {tag}: PIL {perr}; we: {line[:160]}")
                    count("both refuse", fmt)
                continue
            if err is None:  # PIL crops it
                if not ours_ok:
                    print(f"DIFFERENT (we refuse)   {tag} ({mode}): {line[:200]}")
                    count("we refuse, PIL crops", fmt)
                    bad += 1
                    continue
                got = read_ppm(outp + ".ppm")
                if np.array_equal(got, crop):
                    print(f"identical               {tag} ({mode})")
                    count("identical", fmt)
                else:
                    d = np.abs(got.astype(int) - crop.astype(int))
                    print(f"DIFFERENT               {tag} ({mode}): max {d.max()}, {(d.max(axis=2) > 0).sum()} px")
                    count("DIFFERENT", fmt)
                    bad += 1
                continue
            # PIL opens it but cannot crop it (or cannot load this page)
            if crop is not None and ours_ok:
                got = read_ppm(outp + ".ppm")
                same = np.array_equal(got, crop)
                print(f"PIL cannot crop         {tag} ({mode}; {err[:80]}): we scale 16->8 bit, "
                      f"{'identical to' if same else 'DIFFERENT from'} PIL's crop of the scaled image")
                count("PIL cannot crop: 16-bit scaled, " + ("identical" if same else "DIFFERENT"), fmt)
                bad += 0 if same else 1
            else:
                what = "decode: " + line if ours_ok else "refuse: " + line[:140]
                print(f"PIL cannot crop         {tag} ({mode}; {err[:80]}): we {what}")
                count("PIL cannot crop: we decode" if ours_ok else "PIL cannot crop: we refuse", fmt)
    print()
    for fmt in ("TIFF", "JPEG"):
        n = sum(v for (f, _), v in tot.items() if f == fmt)
        print(f"{fmt}: {n} file pages: " + "; ".join(f"{v} {k}" for (f, k), v in sorted(tot.items()) if f == fmt))
    print("PASS" if not bad else f"{bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
