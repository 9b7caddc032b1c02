#!/usr/bin/python3
"""TIFF through the command line (tiny model): `embed-image` on TIFFs equals `embed-image` on PNGs
of the same pixels (RGB raw and LZW, 8-bit gray Deflate, palette PackBits), a 16-bit TIFF equals the
16-bit PNG of the same samples (both scaled by the same rule), `index` on a folder picks up
.tif/.TIFF files next to PNG and JPEG, and a corrupt TIFF in a batch fails alone (exit 1, named
on stderr). In a build without libtiff (TIFF=0) the TIFFs must be refused naming the option."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(ROOT, BUILD, "testdata"))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def embeddings(model, paths):
    rc, out, err = run("embed-image", "-m", model, "--json", *paths)
    rows = [json.loads(line) for line in out.splitlines()]
    return rc, {r["file"]: np.array(r["embedding"], dtype=np.float32) for r in rows}, err


def main():
    model = os.path.join(TESTDATA, "tiny.bmc")
    if not os.path.exists(BIN) or not os.path.exists(model):
        print(f"FAIL: {BIN} or {model} missing (make, test data)")
        return 1
    tmp = tempfile.mkdtemp(prefix="bmc_cli_tiff_")
    try:
        src = Image.open(os.path.join(SHARED, "images", "IHC_histopathology.jpg")).convert("RGB").resize((301, 257))
        pairs = []

        def pair(name, im, **kw):
            png, tif = os.path.join(tmp, name + ".png"), os.path.join(tmp, name + ".tif")
            im.save(png)
            im.save(tif, **kw)
            pairs.append((png, tif))

        pair("rgb", src)
        pair("rgb_lzw", src, compression="tiff_lzw")
        pair("gray_deflate", src.convert("L"), compression="tiff_adobe_deflate")
        pair("pal", src.convert("P"), compression="packbits")
        g16 = (np.array(src.convert("L")).astype(np.uint16) * 97 + 11)
        Image.fromarray(g16, "I;16").save(os.path.join(tmp, "g16.tif"))
        Image.fromarray(g16.astype(np.int32), "I").save(os.path.join(tmp, "g16.png"))  # 16-bit gray PNG
        pairs.append((os.path.join(tmp, "g16.png"), os.path.join(tmp, "g16.tif")))
        bad = os.path.join(tmp, "bad.tif")
        data = open(pairs[1][1], "rb").read()
        open(bad, "wb").write(data[: len(data) // 2])

        paths = [p for pr in pairs for p in pr] + [bad]
        rc, emb, err = embeddings(model, paths)
        if "TIFF support not built in" in err:  # a TIFF=0 build
            check(rc == 1 and "TIFF=0" in err, "TIFF=0 build: TIFFs refused naming the option")
            return 1 if failures else 0
        check(rc == 1, f"embed-image: exit 1 with one corrupt TIFF among good files (got {rc})")
        check(bad in err and bad not in emb, "the corrupt TIFF is named on stderr and left out")
        for png, tif in pairs:
            ok = png in emb and tif in emb and np.array_equal(emb[png], emb[tif])
            check(ok, f"embed-image {os.path.basename(tif)} == {os.path.basename(png)} (same pixels)")

        # a tiled TIFF whose tile width claims 587 million pixels (fuzz_tiff asked 9.4 GB for it):
        # refused before any allocation, naming the tiles
        huge = os.path.join(tmp, "huge_tile.tif")
        entries = [(256, 4, 17), (257, 4, 9), (258, 3, 8), (259, 3, 1), (262, 3, 1), (277, 3, 1),
                   (322, 4, 587202576), (323, 4, 16), (324, 4, 200), (325, 4, 64)]
        ifd = struct.pack("<H", len(entries)) + b"".join(
            struct.pack("<HHII", tag, typ, 1, v) if typ == 4 else struct.pack("<HHIHH", tag, typ, 1, v, 0)
            for tag, typ, v in entries) + struct.pack("<I", 0)
        blob = b"II*\x00" + struct.pack("<I", 8) + ifd
        open(huge, "wb").write(blob + bytes(264 - len(blob)))
        rc, out, err = run("info-image", huge)
        check(rc == 1 and "TIFF tiles of 587202576 x 16" in err and "refused before decoding" in err,
              f"a tile of 587202576 x 16: refused, naming the tiles ({err.strip()[:160]})")

        # index: the walk picks up .tif and .TIFF
        tree = os.path.join(tmp, "tree")
        os.makedirs(os.path.join(tree, "sub"))
        shutil.copy(pairs[0][1], os.path.join(tree, "a.tif"))
        shutil.copy(pairs[2][1], os.path.join(tree, "sub", "b.TIFF"))
        shutil.copy(pairs[0][0], os.path.join(tree, "c.png"))
        open(os.path.join(tree, "notes.txt"), "w").write("not an image")
        idx = os.path.join(tmp, "idx")
        rc, out, err = run("index", "-m", model, "-o", idx, tree)
        check(rc == 0, f"index on a folder with TIFFs: exit {rc} {err.strip()[:200]}")
        got = open(os.path.join(idx, "paths.txt")).read().split("\n")[:-1]
        want = sorted(os.path.join(tree, p) for p in ("a.tif", "sub/b.TIFF", "c.png"))
        check(got == want, f"index paths {got}")
        e = np.load(os.path.join(idx, "embeddings.npy"))
        check(np.allclose(e[got.index(os.path.join(tree, "a.tif"))], emb[pairs[0][1]], atol=1e-6),
              "the indexed TIFF row equals its embed-image embedding")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
