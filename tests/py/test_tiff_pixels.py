"""test_tiff_pixels.py - TIFF crops against PIL 9.4 (lib/image_tiff.c, docs/IMAGE.md "TIFF").

The TIFFs are written at test time (tests/py/gen_tiffs.py: PIL, tifffile, tiffcp and a small
hand-written writer; strips, tiles, separate planes, none / LZW / deflate / PackBits / JPEG /
CCITT, 1/2/4/8/12/16-bit gray, RGB, RGBA (associated or not), palette, CMYK, YCbCr, multi-page,
big-endian, BigTIFF, orientation tags, palette + alpha) and each is decoded by $BUILD/tests/tool_image_crop:
  - files PIL opens and crops: the 224x224 crop must be byte-identical to PIL's, in PIL's mode,
    and the float input bit-identical to torch's;
  - 16-bit gray (PIL 'I;16', which PIL 9.4 cannot resize): the default must equal PIL's crop of
    the v * 255 / 65535 image, --pil16 PIL's crop of im.convert('I') (clipped), and
    --window minmax PIL's crop of the min-max windowed image;
  - signed / 32-bit / float gray (PIL 'I' and 'F', which PIL crops by clipping): identical to
    PIL, and --window minmax identical to PIL's crop of the min-max windowed image;
  - files PIL refuses (big-endian 12-bit or 32-bit unsigned, 64-bit float, float RGB, a page past
    the last):
    the library must refuse them with an error, not crash;
  - truncated copies: no crash; refused when PIL refuses them, identical when both decode.
A build without libtiff (TIFF=0) must refuse every TIFF naming the build option.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch  # noqa: F401 (test_image_pixels' torch_input)
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_tiffs  # noqa: E402
from test_image_pixels import TOOL, pil_crop, print_failures, read_ppm, torch_input  # noqa: E402


def pil_reference(path, page, kind):
    """PIL's crop for the case, or None when PIL cannot open / crop it."""
    try:
        im = Image.open(path)
        im.seek(page)
        im.load()
        if kind == "pil":
            return pil_crop(im), im.mode
        if kind == "scale16":
            v = np.array(im).astype(np.int64)
            return pil_crop(Image.fromarray(((v * 255 + 32767) // 65535).astype(np.uint8), "L")), "I"
        if kind == "pil16":
            return pil_crop(im.convert("I")), "I"
        if kind == "minmax":  # the library's order of operations, in float64
            v = np.array(im).astype(np.float64)
            fin = v[np.isfinite(v)]
            lo, hi = (fin.min(), fin.max()) if fin.size else (0.0, 0.0)
            y = np.zeros_like(v) if hi == lo else np.clip((v - lo) / (hi - lo), 0, 1)
            out = np.floor(255 * np.nan_to_num(y) + 0.5)
            return pil_crop(Image.fromarray(out.astype(np.uint8), "L")), im.mode
    except Exception:  # noqa: BLE001 - any PIL failure means "PIL refuses"
        return None
    raise ValueError(kind)


def run(paths, outs, extra):
    args = [TOOL] + extra
    for p, o in zip(paths, outs):
        args += [p, o]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"tool crashed ({r.returncode}) on {paths}: {r.stderr[-2000:]}")
    res = {}
    for line in r.stdout.splitlines():
        parts = line.split(" ", 3)
        res[parts[1]] = parts
    return res


def main():
    if not os.path.exists(TOOL):
        print(f"FAIL: {TOOL} not built (make tests)")
        return 1
    info = subprocess.run([TOOL, "--info"], capture_output=True, text=True).stdout.split()
    work = tempfile.mkdtemp(prefix="bmc_tiff_")
    failures, counts = [], {}
    try:
        cases = gen_tiffs.generate(os.path.join(work, "in"))
        out_dir = os.path.join(work, "out")
        os.makedirs(out_dir)
        if "tiff=1" not in info:
            # a TIFF=0 build: every TIFF refused, naming the option
            res = run([c["path"] for c in cases[:5]], [os.path.join(out_dir, str(i)) for i in range(5)], [])
            for c in cases[:5]:
                line = " ".join(res.get(c["path"], []))
                if not line.startswith("ERR") or "TIFF=0" not in line:
                    failures.append(f"{c['name']}: a TIFF=0 build must refuse it naming TIFF=0: {line}")
            print("TIFF=0 build: TIFF files refused" if not failures else "")
        else:
            # (case, tool flags, reference kind)
            runs = []
            for c in cases:
                if c["expect"] == "scale16":
                    runs += [(c, [], "scale16"), (c, ["--pil16"], "pil16"), (c, ["--window", "minmax"], "minmax")]
                elif c["expect"] == "pil" and c["name"].startswith(("tf_int", "tf_uint32", "tf_float32")):
                    runs += [(c, [], "pil"), (c, ["--window", "minmax"], "minmax")]  # PIL 'I' / 'F'
                else:
                    runs.append((c, [], "pil"))
            groups = {}
            for i, (c, flags, kind) in enumerate(runs):
                groups.setdefault((tuple(flags), c["page"]), []).append((i, c, kind))
            for (flags, page), items in groups.items():
                paths = [c["path"] for _, c, _ in items]
                outs = [os.path.join(out_dir, f"r{i}") for i, _, _ in items]
                extra = list(flags) + (["--frame", str(page)] if page else [])
                # one input per path in a call (a path may repeat with another page / flags)
                res = {}
                for k in range(0, len(paths), 100):
                    res.update(run(paths[k:k + 100], outs[k:k + 100], extra))
                for (i, c, kind), outp in zip(items, outs):
                    label = f"{c['name']}[page {page}]{' ' + ' '.join(flags) if flags else ''}"
                    got_line = res.get(c["path"])
                    ok = got_line is not None and got_line[0] == "OK"
                    ref = pil_reference(c["path"], page, kind)
                    exp = c["expect"]
                    if exp == "refuse" or (exp == "either" and ref is None):
                        if ok:
                            failures.append(f"{label}: decoded, but PIL refuses it / it must be refused")
                        elif got_line is None:
                            failures.append(f"{label}: no result line")
                        else:
                            counts["refused"] = counts.get("refused", 0) + 1
                        continue
                    if ref is None:
                        failures.append(f"{label}: PIL cannot open or crop this generated file (generator?)")
                        continue
                    if not ok:
                        if exp == "either":
                            counts["truncated: refused by us, decoded by PIL"] = \
                                counts.get("truncated: refused by us, decoded by PIL", 0) + 1
                            continue
                        failures.append(f"{label}: not decoded: {' '.join(got_line or [])}")
                        continue
                    want, mode = ref
                    got = read_ppm(outp + ".ppm")
                    c_mode = got_line[2]
                    pil_mode = {"RGBX": "RGB", "I;16": "I", "I;16B": "I"}.get(mode, mode)
                    if kind == "minmax" and mode in ("I;16", "I;16B"):
                        pil_mode = "I"
                    if c_mode != pil_mode:
                        failures.append(f"{label}: mode {c_mode}, PIL {mode}")
                    if not np.array_equal(got, want):
                        d = np.abs(got.astype(int) - want.astype(int))
                        failures.append(f"{label} ({mode}): crop differs from PIL: max {d.max()}, "
                                        f"{(d.max(axis=2) > 0).sum()} pixels")
                        continue
                    chw = np.fromfile(outp + ".f32", dtype="<f4").reshape(3, 224, 224)
                    if not np.array_equal(chw.view(np.uint32), torch_input(got).view(np.uint32)):
                        failures.append(f"{label}: float input differs from torch")
                        continue
                    key = "identical" if kind == "pil" else f"identical ({kind})"
                    counts[key] = counts.get(key, 0) + 1
            print(f"{len(cases)} TIFF cases, {len(runs)} runs: " +
                  ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return print_failures(failures)


if __name__ == "__main__":
    sys.exit(main())
