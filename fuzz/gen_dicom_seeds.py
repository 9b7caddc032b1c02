#!/usr/bin/python3
"""gen_dicom_seeds.py OUT_DIR - seeds for fuzz/fuzz_dicom.c, made at run time (never committed):
the small DICOM files of Debian's python3-pydicom, the files tests/py/test_dicom.py makes with
pydicom (windows, LUTs, MONOCHROME1, palette, YBR, multi-frame), and their DCMTK twins
(implicit, big endian, deflated, RLE, JPEG lossless and baseline, JPEG-LS), each behind the
2-byte parameter prefix of fuzz_dicom.c."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))
import pydicom  # noqa: E402
import test_dicom  # noqa: E402

MAX = 16384 - 2


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="dicom_seeds_")
    sources = dict(test_dicom.make_files(tmp))
    pd = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    for f in sorted(os.listdir(pd)):
        if f.endswith(".dcm"):
            sources["pd_" + f[:-4]] = os.path.join(pd, f)
    tools = [("ti", ["dcmconv", "+ti"]), ("tb", ["dcmconv", "+tb"]), ("td", ["dcmconv", "+td"]), ("rle", ["dcmcrle"]),
             ("jl", ["dcmcjpeg", "+e1"]), ("jb", ["dcmcjpeg", "+eb"]), ("ls", ["dcmcjpls"])]
    n = 0
    for key, path in list(sources.items()):
        if key.startswith("pd_"):
            continue
        for t, cmd in tools:
            twin = os.path.join(tmp, f"{key}_{t}.dcm")
            if subprocess.run(cmd + [path, twin], capture_output=True).returncode == 0:
                sources[f"{key}_{t}"] = twin
    for i, (key, path) in enumerate(sorted(sources.items())):
        data = open(path, "rb").read()
        if len(data) > MAX:
            continue
        prefix = bytes([i % 16, (i * 7) % 256])
        open(os.path.join(out, key), "wb").write(prefix + data)
        n += 1
    print(f"gen_dicom_seeds: {n} seeds in {out}")


if __name__ == "__main__":
    main()
