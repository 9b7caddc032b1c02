"""tools/convert.py --dtype f16 / bf16: 16-bit Linear weights (docs/FORMAT.md, layouts panel64 and
panel64x2).

Converts the tiny random checkpoint ($BMC_TESTDATA/tiny) three ways and checks, reading the .bmc
directory itself: every Linear weight is stored as PyTorch rounds it (torch's .half() and
.bfloat16(), round to nearest even) in the documented panel order, byte for byte; every other
tensor is the float32 file's bytes; the file's CRCs hold (biomedclip info --verify); `info` names
the weight type. Refusals: a value beyond float16's range for f16 and a NaN for bf16, each naming
the tensor (bf16 takes the large value).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(ROOT, BUILD, "testdata"))
CONVERT = os.path.join(ROOT, "tools", "convert.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from convert import PANEL_TENSORS  # noqa: E402

fails = 0


def check(ok, what):
    global fails
    print(("ok   " if ok else "FAIL ") + what)
    fails += not ok


def directory(path):
    """{name: (dtype, shape, layout, bytes)} of a .bmc file."""
    with open(path, "rb") as f:
        data = f.read()
    n, entry_size = struct.unpack_from("<II", data, 40)
    out = {}
    for i in range(n):
        e = data[512 + i * entry_size:512 + (i + 1) * entry_size]
        name = e[:96].rstrip(b"\0").decode()
        dtype, ndim = struct.unpack_from("<II", e, 96)
        shape = struct.unpack_from("<4Q", e, 104)[:ndim]
        off, nbytes, crc, layout = struct.unpack_from("<QQII", e, 136)
        blob = data[off:off + nbytes]
        assert zlib.crc32(blob) & 0xFFFFFFFF == crc, name
        out[name] = (dtype, shape, layout, blob)
    return out


def panels16(w16, pairs):
    """[N, K] int16 array -> panel bytes (docs/FORMAT.md)."""
    n, k = w16.shape
    p = (n + 63) // 64
    full = np.zeros((p * 64, k), dtype=np.uint16)
    full[:n] = w16.view(np.uint16)
    blocks = full.reshape(p, 64, k)
    if pairs:
        return blocks.reshape(p, 64, k // 2, 2).transpose(0, 2, 1, 3).tobytes()
    return blocks.transpose(0, 2, 1).tobytes()


def convert(src, out, *extra):
    return subprocess.run([sys.executable, CONVERT, src, "-o", out, "-q", *extra], capture_output=True, text=True)


def main():
    snap = os.path.join(TESTDATA, "tiny")
    tmp = tempfile.mkdtemp(prefix="bmc-dtype-")
    try:
        sd = torch.load(os.path.join(snap, "open_clip_pytorch_model.bin"), map_location="cpu")
        paths = {}
        for dt in ("f32", "f16", "bf16"):
            paths[dt] = os.path.join(tmp, "tiny-%s.bmc" % dt)
            r = convert(snap, paths[dt], "--dtype", dt)
            check(r.returncode == 0, "convert --dtype %s: exit 0 %s" % (dt, r.stderr.strip()))
        d32 = directory(paths["f32"])
        for dt, code, layout in (("f16", 1, 1), ("bf16", 30, 2)):
            d = directory(paths[dt])
            check(set(d) == set(d32), "%s: the same tensors as the float32 file" % dt)
            bad, linear = [], 0
            for name, (dtype, shape, lay, blob) in d.items():
                if PANEL_TENSORS.match(name):
                    linear += 1
                    w = sd[name].reshape(shape[0], -1)
                    w16 = (w.half() if dt == "f16" else w.bfloat16()).view(torch.int16).numpy()
                    if (dtype, lay) != (code, layout) or blob != panels16(w16, dt == "bf16"):
                        bad.append(name)
                elif (dtype, shape, lay, blob) != d32[name]:
                    bad.append(name)
            check(linear > 10 and not bad, "%s: %d Linear weights as torch rounds them, in panel order; the "
                  "rest float32 as before %s" % (dt, linear, bad[:3]))
            r = subprocess.run([BIN, "info", "-m", paths[dt], "--verify"], capture_output=True, text=True)
            want = "linear weights  %s" % ("float16" if dt == "f16" else "bfloat16")
            check(r.returncode == 0 and want in r.stdout, "info --verify on the %s file: CRCs hold, says %r"
                  % (dt, want))
        # refusals: a copy of the snapshot with one weight out of float16's range, then a NaN
        bad_snap = os.path.join(tmp, "snap")
        shutil.copytree(snap, bad_snap)
        key = "visual.trunk.blocks.0.mlp.fc1.weight"
        for value, dt, refused, words in ((1e5, "f16", True, "beyond float16's range"),
                                          (1e5, "bf16", False, ""),
                                          (float("nan"), "bf16", True, "is NaN")):
            sd2 = dict(sd)
            sd2[key] = sd[key].clone()
            sd2[key][3, 5] = value
            torch.save(sd2, os.path.join(bad_snap, "open_clip_pytorch_model.bin"))
            r = convert(bad_snap, os.path.join(tmp, "bad.bmc"), "--dtype", dt)
            if refused:
                check(r.returncode == 1 and key in r.stderr and words in r.stderr,
                      "--dtype %s with %g in %s: refused, naming it: %s" % (dt, value, key, r.stderr.strip()))
            else:
                check(r.returncode == 0, "--dtype %s with %g: converted (bfloat16 has float32's range)" % (dt, value))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
