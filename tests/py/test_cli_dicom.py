#!/usr/bin/python3
"""The command line on a folder mixing DICOM (every transfer syntax the library decodes, a
multi-frame file, a Part 10 file without extension, a JPEG 2000 file it cannot decode), PNG and
JPEG: embed-image, classify, index, search and info-image with --window, --frame, --frames all.

Made at test time (nothing copied into the project): DICOM twins of pydicom's MR_small.dcm with
DCMTK's tools (implicit, big endian, deflated, RLE, JPEG lossless, JPEG-LS, JPEG baseline of an
8-bit image), pydicom's SC_rgb_rle_2frame.dcm (2 frames), a PNG and a JPEG from the shared
example images. The tiny random-weight model keeps it quick.

Checks: every DICOM embedding equals the embedding of a PNG holding the 8-bit pixels the library
decoded (tests/tool_image_info), so DICOM goes through the same pipeline; lossless twins embed
identically; --frames all gives one item per frame, named FILE#N in text, table, tsv and the
index, and "frame": N in JSON; --frame N picks one; --window changes the pixels and is refused
when malformed; index finds .dcm and extensionless DICOM, reports the undecodable file by its
transfer syntax and indexes the rest, and a second run adds nothing; search --image with
--frame; info-image prints format, size, mode, bits, photometric, window, frames, syntax."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

try:
    import pydicom
except ImportError:
    print("test_cli_dicom: FAIL: python3-pydicom is not installed (tools/deps-debian.txt)")
    sys.exit(1)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BDIR = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
BIN = os.path.join(BDIR, "biomedclip")
TOOL = os.path.join(BDIR, "tests", "tool_image_info")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(ROOT, BUILD, "testdata"))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
PD = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
MODEL = os.path.join(TESTDATA, "tiny.bmc")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def cli(*args):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main():
    for need in (BIN, TOOL, MODEL):
        if not os.path.exists(need):
            print(f"test_cli_dicom: FAIL: {need} missing (make tests; BMC_TESTDATA)")
            return 1
    info = subprocess.run([BIN, "info-image", os.path.join(PD, "MR_small.dcm")], capture_output=True, text=True)
    if "DICOM support not built in" in info.stderr:
        print("test_cli_dicom: FAIL: this build has no DICOM (make without DICOM=0, libdcmtk-dev)")
        return 1
    tmp = tempfile.mkdtemp(prefix="bmc_cli_dicom_")
    try:
        return run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    d = os.path.join(tmp, "mixed")
    os.makedirs(os.path.join(d, "sub"))
    mr = os.path.join(PD, "MR_small.dcm")
    dicoms = {"mr_explicit.dcm": None}
    shutil.copy(mr, os.path.join(d, "mr_explicit.dcm"))
    for name, cmd in (("mr_implicit.dcm", ["dcmconv", "+ti"]), ("mr_bigendian.dcm", ["dcmconv", "+tb"]),
                      ("mr_deflated.dcm", ["dcmconv", "+td"]), ("mr_rle.dcm", ["dcmcrle"]),
                      ("sub/mr_jpeg_lossless.dcm", ["dcmcjpeg", "+e1"]), ("sub/mr_jpegls.dcm", ["dcmcjpls"])):
        r = subprocess.run(cmd + [mr, os.path.join(d, name)], capture_output=True, text=True)
        check(r.returncode == 0, f"{' '.join(cmd)} MR_small.dcm: {r.stderr.strip()[:200]}")
        dicoms[name] = None
    shutil.copy(os.path.join(PD, "SC_rgb_rle_2frame.dcm"), os.path.join(d, "cine.dcm"))
    shutil.copy(os.path.join(PD, "SC_rgb_small_odd.dcm"), os.path.join(d, "IM000001"))  # Part 10, no extension
    r = subprocess.run(["dcmcjpeg", "+eb", os.path.join(PD, "SC_rgb_small_odd.dcm"), os.path.join(d, "rgb_baseline.dcm")],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"dcmcjpeg +eb: {r.stderr[:200]}")
    shutil.copy(os.path.join(PD, "JPEG2000.dcm"), os.path.join(d, "sub", "j2k.dcm"))
    Image.open(os.path.join(SHARED, "images", "bone_X-ray.jpg")).convert("RGB").save(os.path.join(d, "bone.png"))
    shutil.copy(os.path.join(SHARED, "images", "brain_MRI.jpg"), os.path.join(d, "brain.jpg"))
    decodable = sorted(["mr_explicit.dcm", "mr_implicit.dcm", "mr_bigendian.dcm", "mr_deflated.dcm", "mr_rle.dcm",
                        "sub/mr_jpeg_lossless.dcm", "sub/mr_jpegls.dcm", "cine.dcm", "IM000001", "rgb_baseline.dcm",
                        "bone.png", "brain.jpg"])
    paths = [os.path.join(d, f) for f in decodable]

    # the 8-bit pixels the library decodes, as PNGs: their embeddings are the reference
    refs = {}
    pairs = []
    for p in paths:
        for frame in ((0, 1) if p.endswith("cine.dcm") else (0,)):
            pairs.append((p, frame))
    for p, frame in pairs:
        out = os.path.join(tmp, "raw_%d" % len(refs))
        r = subprocess.run([TOOL, "--frame", str(frame), p, out], capture_output=True, text=True)
        f = r.stdout.split("\t")
        if not check(r.returncode == 0, f"tool_image_info {p} frame {frame}: {r.stdout}{r.stderr}"):
            continue
        w, h = map(int, f[3].split("x"))
        a = np.fromfile(out + ".raw", np.uint8)
        im = Image.fromarray(a.reshape(h, w) if f[2] == "L" else a.reshape(h, w, 3), f[2])
        png = out + ".png"
        im.save(png)
        refs[(p, frame)] = png

    # embed-image --json --frames all: one line per frame, "frame" named
    rc, out, err = cli("embed-image", "-m", MODEL, "--json", "--frames", "all", *paths)
    check(rc == 0, f"embed-image --frames all on the mixed folder: rc {rc} {err[:300]}")
    lines = json_lines(out)
    check([(x["file"], x["frame"]) for x in lines] == pairs,
          f"embed-image --frames all: items {[(os.path.basename(x['file']), x.get('frame')) for x in lines]}")
    rc2, out2, err2 = cli("embed-image", "-m", MODEL, "--json", *[refs[k] for k in pairs])
    ref_lines = json_lines(out2)
    if check(rc2 == 0 and len(ref_lines) == len(lines), f"embed-image of the reference PNGs: {err2[:200]}"):
        worst = max(float(np.abs(np.array(a["embedding"]) - np.array(b["embedding"])).max())
                    for a, b in zip(lines, ref_lines))
        check(worst < 1e-6, f"every DICOM / PNG / JPEG embedding equals its decoded-pixels PNG's (max diff {worst:.2e})")
    emb = {(x["file"], x["frame"]): np.array(x["embedding"]) for x in lines}
    mr_twins = [p for p in paths if "/mr_" in p]
    base = emb[(os.path.join(d, "mr_explicit.dcm"), 0)]
    check(all(np.array_equal(emb[(p, 0)], base) for p in mr_twins),
          f"the {len(mr_twins)} lossless encodings of MR_small embed identically")

    # plain embed-image: no frame named, text format names FILE#N only with --frame/--frames
    rc, out, err = cli("embed-image", "-m", MODEL, "--json", os.path.join(d, "cine.dcm"))
    x = json_lines(out)
    check(rc == 0 and len(x) == 1 and "frame" not in x[0], "embed-image without frame options: one item, no frame key")
    rc, out, err = cli("embed-image", "-m", MODEL, "--frame", "1", os.path.join(d, "cine.dcm"))
    check(rc == 0 and out.startswith(os.path.join(d, "cine.dcm") + "#1\t"), f"embed-image --frame 1 text: {out[:80]}")
    v = np.array([float(t) for t in out.split("\t")[1].split()])
    check(np.abs(v - emb[(os.path.join(d, "cine.dcm"), 1)]).max() < 1e-6, "--frame 1 equals frame 1 of --frames all")
    rc, out, err = cli("embed-image", "-m", MODEL, "--frame", "2", os.path.join(d, "cine.dcm"))
    check(rc == 1 and "frame 2" in err and "2 frames" in err, f"--frame 2 of a 2-frame file: {err.strip()}")

    # --window: a window changes a 16-bit image; malformed values are usage errors
    mrp = os.path.join(d, "mr_explicit.dcm")
    outs = {}
    for w in ("file", "minmax", "600,200", "file:0"):
        rc, out, err = cli("embed-image", "-m", MODEL, "--json", "--window", w, mrp)
        check(rc == 0, f"--window {w}: {err[:200]}")
        outs[w] = np.array(json_lines(out)[0]["embedding"]) if rc == 0 else None
    check(np.array_equal(outs["file"], outs["file:0"]) and np.array_equal(outs["file"], base),
          "--window file = file:0 = the default (MR_small has one window)")
    check(not np.array_equal(outs["minmax"], base) and not np.array_equal(outs["600,200"], base),
          "--window minmax and 600,200 give other pixels, other embeddings")
    for bad in ("600", "600,0", "600,-5", "file:x", "maxmin", "1,2,3"):
        rc, out, err = cli("embed-image", "-m", MODEL, "--window", bad, mrp)
        check(rc == 2 and "--window" in err, f"--window {bad}: exit {rc}, {err.strip()[:100]}")
    for bad in (("--frame", "-1"), ("--frame", "x"), ("--frames", "some")):
        rc, out, err = cli("embed-image", "-m", MODEL, *bad, mrp)
        check(rc == 2, f"{' '.join(bad)}: exit {rc}, {err.strip()[:100]}")
    rc, out, err = cli("embed-image", "-m", MODEL, "--window", "file:1", mrp)
    check(rc == 1 and "window 1" in err, f"--window file:1 of a one-window file: {err.strip()[:150]}")

    # classify: tsv and table name frames, JSON has "frame"
    rc, out, err = cli("classify", "-m", MODEL, "--labels", "a,b", "--format", "tsv", "--frames", "all",
                       os.path.join(d, "cine.dcm"), os.path.join(d, "bone.png"))
    names = sorted(set(line.split("\t")[0] for line in out.splitlines()))
    check(rc == 0 and names == sorted([os.path.join(d, "cine.dcm#0"), os.path.join(d, "cine.dcm#1"),
                                       os.path.join(d, "bone.png#0")]), f"classify tsv --frames all: {names}")
    rc, out, err = cli("classify", "-m", MODEL, "--labels", "a,b", "--json", "--frames", "all", os.path.join(d, "cine.dcm"))
    x = json_lines(out)
    check(rc == 0 and [(y["file"], y["frame"]) for y in x] == [(os.path.join(d, "cine.dcm"), 0),
                                                             (os.path.join(d, "cine.dcm"), 1)], "classify --json frames")
    rc, out, err = cli("classify", "-m", MODEL, "--labels", "a,b", "--frames", "all", os.path.join(d, "cine.dcm"))
    check(rc == 0 and os.path.join(d, "cine.dcm#1") + ":" in out, "classify table names cine.dcm#1")

    # index the whole folder: DICOM found (extensionless too), j2k refused by name, frames named
    ix = os.path.join(tmp, "ix")
    rc, out, err = cli("index", "-m", MODEL, "-o", ix, "--quiet", "--frames", "all", d)
    check(rc == 1, f"index with one undecodable file exits 1 (got {rc})")
    check("j2k.dcm" in err and "1.2.840.10008.1.2.4.91" in err and "gdcmconv --raw" in err,
          f"index names the JPEG 2000 file, its transfer syntax and how to convert: {err.strip()[:300]}")
    with open(os.path.join(ix, "paths.txt")) as f:
        got = f.read().split("\n")[:-1]
    want = []
    for p in sorted(paths):
        want += [p + "#0", p + "#1"] if p.endswith("cine.dcm") else [p + "#0"]
    check(sorted(got) == sorted(want), f"index rows: {len(got)} (want {len(want)}); missing "
          f"{sorted(set(want) - set(got))}, extra {sorted(set(got) - set(want))}")
    rc, out, err = cli("index", "-m", MODEL, "-o", ix, "--quiet", "--frames", "all", d)
    with open(os.path.join(ix, "paths.txt")) as f:
        check(len(f.read().split("\n")[:-1]) == len(want), "a second index run adds nothing")
    # without --frames: one row per file, plain paths
    ix2 = os.path.join(tmp, "ix2")
    rc, out, err = cli("index", "-m", MODEL, "-o", ix2, "--quiet", d)
    with open(os.path.join(ix2, "paths.txt")) as f:
        got2 = f.read().split("\n")[:-1]
    check(sorted(got2) == sorted(paths), f"index without frame options: plain paths ({len(got2)} rows)")

    # search by a DICOM frame: the frame itself is the best hit
    rc, out, err = cli("search", "-m", MODEL, ix, "--image", os.path.join(d, "cine.dcm"), "--frame", "1",
                       "--json", "--top", "1")
    x = json_lines(out)
    check(rc == 0 and x and x[0]["file"] == os.path.join(d, "cine.dcm#1") and x[0]["score"] > 0.9999,
          f"search --image cine.dcm --frame 1: {x}")
    rc, out, err = cli("search", "-m", MODEL, ix, "--image", os.path.join(d, "cine.dcm"), "--frames", "all")
    check(rc == 2, f"search --frames all is refused (exit {rc})")

    # info-image
    rc, out, err = cli("info-image", "--json", os.path.join(d, "sub", "mr_jpegls.dcm"), os.path.join(d, "cine.dcm"),
                       os.path.join(d, "brain.jpg"), os.path.join(d, "sub", "j2k.dcm"))
    x = json_lines(out)
    check(rc == 1 and len(x) == 3 and "1.2.840.10008.1.2.4.91" in err, f"info-image: rc {rc}, {len(x)} lines")
    if len(x) == 3:
        a, b, c = x
        check(a["format"] == "DICOM" and a["mode"] == "L" and (a["width"], a["height"]) == (64, 64) and
              a["bits_stored"] == 16 and a["photometric"] == "MONOCHROME2" and
              a["transfer_syntax"].startswith("1.2.840.10008.1.2.4.80 (") and
              a["window"] == "file window 0: C=600 W=1600 LINEAR" and a["n_frames"] == 1, f"info-image JPEG-LS: {a}")
        check(b["n_frames"] == 2 and b["mode"] == "RGB" and b["photometric"] == "RGB", f"info-image cine: {b}")
        check(c["format"] == "JPEG" and c["transfer_syntax"] == "" and c["window"] == "", f"info-image JPEG: {c}")
    rc, out, err = cli("info-image", "--window", "minmax", os.path.join(d, "mr_rle.dcm"))
    check(rc == 0 and "window           min-max" in out and "RLE Lossless" in out and "bits stored      16" in out,
          f"info-image text: {out}")

    if failures:
        print(f"test_cli_dicom: {len(failures)} FAILED")
        return 1
    print("test_cli_dicom: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
