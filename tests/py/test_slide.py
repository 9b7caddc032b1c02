#!/usr/bin/python3
"""Whole-slide images end to end, against openslide-python + PIL (tiles), OpenCV (CLAM's tissue
steps) and the PyTorch reference (features), on slides made at test time
(tests/py/slide_fixtures.py: generic tiled TIFFs and an Aperio-style SVS).

Checks:
  - levels, sizes, downsamples, vendor and microns per pixel as openslide-python reports them;
    regions (also one reaching outside the slide) byte-identical to read_region().convert("RGB")
  - the tiling rule of docs/SLIDES.md computed here independently; tiles byte-identical to
    read_region((x, y), level, (r, r)).convert("RGB").resize((224, 224), BICUBIC), at a level
    without resizing (SVS, level 1) and with one (generic TIFF, level 0, 373 -> 224)
  - the tissue mask PNG equals CLAM's steps done with OpenCV (cvtColor HSV, medianBlur 7, Otsu,
    holes below a_h filled), and the kept coordinates equal the grid filtered by --min-tissue
  - embed-slide h5 (h5py): features [N, D] float32 within 1e-5 relative L2 of the PyTorch
    reference on the same tiles (tiny model; the full-size model on a few tiles), coords int64,
    TRIDENT's attributes; --format npy holds the same arrays
  - resume: kill -9 in mid-slide, rerun -> the same bytes as an uninterrupted run; done slides
    skipped
  - blank slide: warning, empty arrays, exit 0; no resolution: asks for --slide-mpp
  - corrupt, truncated, missing and non-slide files: errors naming the file, other slides go on
  - classify-slide: MI-Zero probabilities recomputed here from the h5 features and the text
    embeddings; --features reuse gives the same JSON; --pool mean, --topk 1; heatmap PNG
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import openslide
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
from slide_fixtures import make_slides  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
BUILD = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
BIN = os.path.join(BUILD, "biomedclip")
TOOL = os.path.join(BUILD, "tests", "tool_slide_tile")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(BUILD, "testdata"))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    sys.stdout.flush()
    if not cond:
        failures.append(what)


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def fixtures():
    """The made-up slides, cached in $BMC_TESTDATA/slides (they take seconds to write)."""
    d = os.path.join(TESTDATA, "slides-v3")
    if not os.path.exists(os.path.join(d, "DONE")):
        tmp = d + ".tmp%d" % os.getpid()
        make_slides(tmp, SHARED)
        open(os.path.join(tmp, "DONE"), "w").close()
        if os.path.exists(d):
            shutil.rmtree(d)
        os.rename(tmp, d)
    return {n: os.path.join(d, f) for n, f in
            (("generic", "generic.tif"), ("aperio", "aperio.svs"), ("nompp", "nompp.tif"), ("blank", "blank.tif"),
             ("vips", "vips.tif"), ("big", "big.tif"))}


def read_ppm(path):
    return np.asarray(Image.open(path).convert("RGB"))


# ---- the rule of docs/SLIDES.md, written from the document --------------------------------------

def tiling(slide, tile_px, mpp, overlap, mpp0):
    size0 = int(np.floor(tile_px * mpp / mpp0 + 0.5))
    step0 = int(np.floor((tile_px - overlap) * mpp / mpp0 + 0.5))
    level = 0
    for l, ds in enumerate(slide.level_downsamples):
        if ds <= size0 / tile_px * 1.01 and ds > slide.level_downsamples[level]:
            level = l
    r = max(1, int(np.floor(size0 / slide.level_downsamples[level] + 0.5)))
    w0, h0 = slide.dimensions
    cols = (w0 - size0) // step0 + 1 if w0 >= size0 else 0
    rows = (h0 - size0) // step0 + 1 if h0 >= size0 else 0
    return dict(level=level, region=r, size0=size0, step0=step0, cols=cols, rows=rows)


def py_tile(slide, t, x, y, tile_px):
    im = slide.read_region((x, y), t["level"], (t["region"], t["region"])).convert("RGB")
    if t["region"] != tile_px:
        im = im.resize((tile_px, tile_px), Image.BICUBIC)
    return np.asarray(im)


def clam_mask(slide, fixed=None):
    """CLAM's segmentTissue steps with OpenCV, as docs/SLIDES.md states them."""
    import cv2
    level = 0
    for l, ds in enumerate(slide.level_downsamples):
        if ds <= 64:
            level = l
    while slide.level_dimensions[level][0] * slide.level_dimensions[level][1] > 2 ** 26:
        level += 1
    w, h = slide.level_dimensions[level]
    img = np.asarray(slide.read_region((0, 0), level, (w, h)).convert("RGB"))
    sat = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[:, :, 1]
    med = cv2.medianBlur(sat, 7)
    otsu, _ = cv2.threshold(med, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(otsu, 8) if fixed is None else fixed
    _, mask = cv2.threshold(med, thr, 255, cv2.THRESH_BINARY)
    dsx, dsy = slide.dimensions[0] / w, slide.dimensions[1] / h
    n, lab, stats, _ = cv2.connectedComponentsWithStats((mask == 0).astype(np.uint8), connectivity=4)
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        border = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not border and area < 16 * 512 * 512 / (dsx * dsy):
            mask[lab == i] = 255
    return mask, dsx, dsy


def kept_coords(t, mask, dsx, dsy, min_tissue):
    out = []
    mh, mw = mask.shape
    for r in range(t["rows"]):
        for c in range(t["cols"]):
            x, y = c * t["step0"], r * t["step0"]
            mx0, my0 = int(np.floor(x / dsx)), int(np.floor(y / dsy))
            mx1 = min(int(np.ceil((x + t["size0"]) / dsx)), mw)
            my1 = min(int(np.ceil((y + t["size0"]) / dsy)), mh)
            if mx0 >= mx1 or my0 >= my1:
                continue
            if (mask[my0:my1, mx0:mx1] > 0).mean() >= min_tissue:
                out.append((x, y))
    return out


def reference_features(snapshot, tiles):
    import torch
    from common import load_checkpoint
    from vision import vit_forward
    torch.set_num_threads(2)
    sd, cfg = load_checkpoint(snapshot)
    S = cfg["image_size"]
    mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32).view(3, 1, 1)
    xs = []
    for t in tiles:
        im = Image.fromarray(t)
        if im.size != (S, S):  # open_clip's val transform on a square tile
            im = im.resize((S, S), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255.0
        xs.append((x - mean) / std)
    with torch.no_grad():
        return vit_forward(sd, cfg, torch.stack(xs))["norm"].numpy()


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


# ---- the checks ---------------------------------------------------------------------------------

def check_reading(slides, tmp):
    for name in ("generic", "aperio", "nompp", "vips"):
        path = slides[name]
        s = openslide.OpenSlide(path)
        p = run(TOOL, "info", path)
        lines = p.stdout.split("\n")
        check(p.returncode == 0 and lines[0] == "vendor " + openslide.OpenSlide.detect_format(path),
              "%s: vendor %s" % (name, lines[0]))
        levels = [l.split() for l in lines if l.startswith("level ")]
        want = [[str(i), str(w), str(h)] for i, (w, h) in enumerate(s.level_dimensions)]
        check([l[1:4] for l in levels] == want, "%s: level sizes %s" % (name, want))
        check(all(abs(float(l[4]) - d) < 1e-12 for l, d in zip(levels, s.level_downsamples)),
              "%s: downsamples %s" % (name, s.level_downsamples))
        mpp = float(lines[1].split()[1])
        if "openslide.mpp-x" in s.properties:
            want_mpp = float(s.properties["openslide.mpp-x"])
        elif s.properties.get("tiff.ResolutionUnit") == "centimeter":
            want_mpp = 1e4 / float(s.properties["tiff.XResolution"])
        else:
            want_mpp = 0.0
        check(abs(mpp - want_mpp) < 1e-9 * max(1, want_mpp), "%s: mpp %.9g (want %.9g)" % (name, mpp, want_mpp))
        # regions, one reaching past the right and bottom edges (transparent there: black)
        w0, h0 = s.dimensions
        for level, x, y, w, h in ((0, 101, 57, 300, 200), (1, 640, 480, 150, 97), (0, w0 - 100, h0 - 50, 180, 90)):
            out = os.path.join(tmp, "region.ppm")
            p = run(TOOL, "region", path, level, x, y, w, h, out)
            want = np.asarray(s.read_region((x, y), level, (w, h)).convert("RGB"))
            check(p.returncode == 0 and np.array_equal(read_ppm(out), want),
                  "%s: region level %d (%d, %d) %dx%d byte-identical to openslide-python" % (name, level, x, y, w, h))


def check_tiles(slides, tmp):
    for name, px, mpp, overlap in (("aperio", 224, 0.5, 0), ("generic", 224, 0.5, 0), ("generic", 160, 0.8, 32),
                                   ("vips", 224, 1.0, 0), ("vips", 160, 4.0, 0), ("vips", 200, 0.7, 16)):
        path = slides[name]
        s = openslide.OpenSlide(path)
        mpp0 = float(s.properties.get("openslide.mpp-x", 0)) or 1e4 / float(s.properties["tiff.XResolution"])
        t = tiling(s, px, mpp, overlap, mpp0)
        coords = [(0, 0), (t["step0"], 2 * t["step0"]), ((t["cols"] - 1) * t["step0"], (t["rows"] - 1) * t["step0"])]
        args = [TOOL, "tiles", path, px, mpp, overlap, 0, tmp] + [v for c in coords for v in c]
        p = run(*args)
        want = "tiling level %(level)d region %(region)d size0 %(size0)d step0 %(step0)d cols %(cols)d rows %(rows)d" % t
        check(p.returncode == 0 and p.stdout.split("\n")[0] == want,
              "%s %dpx@%g: %s (got %s)" % (name, px, mpp, want, p.stdout.split("\n")[0]))
        same = all(np.array_equal(read_ppm(os.path.join(tmp, "tile_%d_%d.ppm" % c)), py_tile(s, t, c[0], c[1], px))
                   for c in coords)
        check(same, "%s %dpx@%g: 3 tiles byte-identical to openslide-python + PIL (level %d, region %d)"
              % (name, px, mpp, t["level"], t["region"]))


def h5_arrays(path):
    with h5py.File(path, "r") as f:
        return f["features"][:], f["coords"][:], dict(f["coords"].attrs), dict(f["features"].attrs)


def check_embed(slides, tmp, model, snapshot, name, extra, full=False):
    out = os.path.join(tmp, "out-" + os.path.basename(model) + "-" + name)
    p = run(BIN, "embed-slide", "-m", model, "--threads", "2", slides[name], "-o", out, *extra)
    check(p.returncode == 0, "embed-slide %s %s: exit 0 (%s)" % (name, os.path.basename(model), p.stderr.strip()))
    feats, coords, cattrs, fattrs = h5_arrays(os.path.join(out, name + ".h5"))
    s = openslide.OpenSlide(slides[name])
    mpp0 = float(s.properties["openslide.mpp-x"]) if "openslide.mpp-x" in s.properties else \
        1e4 / float(s.properties["tiff.XResolution"])
    t = tiling(s, 224, 0.5, 0, mpp0)
    min_tissue = float(extra[extra.index("--min-tissue") + 1]) if "--min-tissue" in extra else 0.5
    if not full:
        fixed = int(extra[extra.index("--tissue-threshold") + 1]) if "--tissue-threshold" in extra else None
        mask, dsx, dsy = clam_mask(s, fixed)
        ours = np.asarray(Image.open(os.path.join(out, name + "_mask.png")))
        check(ours.shape == mask.shape and np.array_equal(ours, mask),
              "%s: tissue mask = CLAM's steps in OpenCV (threshold %s, %d%% tissue, %d pixels differ)"
              % (name, fixed if fixed is not None else "Otsu", 100 * (mask > 0).mean(), int((ours != mask).sum()) if ours.shape == mask.shape else -1))
        want = kept_coords(t, ours, dsx, dsy, min_tissue)
        check([tuple(c) for c in coords.tolist()] == want, "%s: %d coords = the grid filtered by tissue >= %g"
              % (name, len(want), min_tissue))
    check(feats.dtype == np.float32 and coords.dtype == np.int64 and feats.shape[0] == coords.shape[0] > 0
          and coords.shape[1] == 2, "%s: features %s float32, coords %s int64" % (name, feats.shape, coords.shape))
    check(cattrs.get("patch_size") == 224 and cattrs.get("patch_size_level0") == t["size0"]
          and cattrs.get("target_magnification") == 20 and abs(cattrs.get("level0_mpp", 0) - mpp0) < 1e-9
          and cattrs.get("mpp") == 0.5 and cattrs.get("name") == name and fattrs.get("name") == name
          and cattrs.get("overlap") == 0 and cattrs.get("patch_level") == t["level"]
          and fattrs.get("encoder") == "biomedclip",
          "%s: attributes %s" % (name, sorted(cattrs)))
    check(np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5), "%s: rows L2-normalised" % name)
    tiles = [py_tile(s, t, int(x), int(y), 224) for x, y in coords]
    ref = reference_features(snapshot, tiles)
    err = max(rel_l2(a, b) for a, b in zip(feats, ref))
    check(err <= 1e-5, "%s %s: features vs PyTorch reference, max rel L2 %.2e (<= 1e-5)"
          % (name, os.path.basename(model), err))
    return out


def wait_rows(partial, min_bytes, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if os.path.exists(partial) and os.path.getsize(partial) >= min_bytes:
            return True
        time.sleep(0.002)
    return False


def check_big(slides, tmp, model):
    """No level under 2^26 pixels: the thumbnail is the level averaged over 2 x 2 blocks."""
    out = os.path.join(tmp, "big")
    p = run(BIN, "embed-slide", "-m", model, slides["big"], "-o", out)
    m = np.asarray(Image.open(os.path.join(out, "big_mask.png"))) if p.returncode == 0 else np.zeros((1, 1))
    ys, xs = np.nonzero(m)
    inside = len(ys) > 0 and ys.min() >= 1500 and ys.max() < 2250 and xs.min() >= 1500 and xs.max() < 2500
    check(p.returncode == 0 and m.shape == (4100, 4100) and inside and len(ys) > 0.1 * 1000 * 750,
          "8200 x 8200 single level: mask of 4100 x 4100 (2 x 2 blocks), tissue only where it was pasted (%d px)"
          % len(ys))
    _, coords, _, _ = h5_arrays(os.path.join(out, "big.h5"))
    check(len(coords) > 0 and all(3000 <= x and x + 448 <= 5000 and 3000 <= y and y + 448 <= 4500 for x, y in coords),
          "8200 x 8200: %d tiles, all inside the tissue's rectangle" % len(coords))


def check_progress(slides, tmp, model):
    """A progress bar on a terminal, nothing on a pipe."""
    import pty
    args = [BIN, "embed-slide", "-m", model, "--all-tiles", slides["aperio"], "-o"]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(BIN, args + [os.path.join(tmp, "tty")])
    out = b""
    while True:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
    os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    check("24/24 tiles" in text and "tiles/s" in text and "ETA" in text, "progress bar on a terminal: %r"
          % text.strip().split("\r")[-1])
    p = run(*args, os.path.join(tmp, "pipe"))
    check(p.returncode == 0 and p.stderr == "" and p.stdout == "", "nothing printed on a pipe")


def check_resume(slides, tmp, model):
    path = slides["aperio"]
    args = ["embed-slide", "-m", model, "--threads", "1", "--batch", "4", "--all-tiles", "--mpp", "0.25", path]
    ref_dir, res_dir = os.path.join(tmp, "resume-ref"), os.path.join(tmp, "resume")
    p = run(BIN, *args, "-o", ref_dir)
    check(p.returncode == 0, "resume: uninterrupted run")
    with h5py.File(os.path.join(ref_dir, "aperio.h5"), "r") as f:
        n, dim = f["features"].shape
    partial = os.path.join(res_dir, "aperio.partial")
    prefix_guess = 16 * n + 1024  # coords + fingerprint: rows start below this
    killed = 0
    for kill_after in (2, 9):  # rows on disk before the kill (in the middle of batch 1, then batch 3)
        proc = subprocess.Popen([BIN] + args + ["-o", res_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_rows(partial, prefix_guess + kill_after * dim * 4, proc):
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    check(killed == 2 and not os.path.exists(os.path.join(res_dir, "aperio.h5")),
          "resume: killed twice mid-slide (kill -9), no final file yet")
    with open(partial, "ab") as f:  # a torn row, as a kill in the middle of a write leaves
        f.write(b"\x01\x02\x03")
    p = run(BIN, *args, "--stats", "-o", res_dir)
    redone = int(p.stderr.split(" tiles in ")[0].split()[-1]) if " tiles in " in p.stderr else -1
    check(p.returncode == 0 and 0 < redone < n, "resume: rerun encoded %d of %d tiles" % (redone, n))
    a = open(os.path.join(ref_dir, "aperio.h5"), "rb").read()
    b = open(os.path.join(res_dir, "aperio.h5"), "rb").read()
    check(a == b, "resume: the h5 is byte-identical to the uninterrupted run's (%d bytes)" % len(a))
    check(not os.path.exists(partial), "resume: the .partial file is gone")
    mtime = os.path.getmtime(os.path.join(res_dir, "aperio.h5"))
    p = run(BIN, *args, "-o", res_dir)
    check(p.returncode == 0 and "skipped" in p.stderr and os.path.getmtime(os.path.join(res_dir, "aperio.h5")) == mtime,
          "resume: a done slide is skipped")


def check_formats_and_errors(slides, tmp, model):
    out = os.path.join(tmp, "npy")
    p = run(BIN, "embed-slide", "-m", model, "--format", "npy", slides["generic"], "-o", out)
    h5 = os.path.join(tmp, "h5")
    run(BIN, "embed-slide", "-m", model, slides["generic"], "-o", h5)
    f, c, _, _ = h5_arrays(os.path.join(h5, "generic.h5"))
    fn = np.load(os.path.join(out, "generic", "features.npy"))
    cn = np.load(os.path.join(out, "generic", "coords.npy"))
    check(p.returncode == 0 and fn.dtype == np.float32 and cn.dtype == np.int64 and np.array_equal(fn, f)
          and np.array_equal(cn, c), "--format npy: features.npy + coords.npy = the h5 arrays")
    # blank slide: warning, empty result, exit 0
    p = run(BIN, "embed-slide", "-m", model, "--format", "npy", slides["blank"], "-o", out)
    fb = np.load(os.path.join(out, "blank", "features.npy"))
    check(p.returncode == 0 and "no tissue" in p.stderr and fb.shape[0] == 0, "blank slide: warning, 0 tiles, exit 0")
    p = run(BIN, "embed-slide", "-m", model, slides["blank"], "-o", h5)
    fb, cb, _, _ = h5_arrays(os.path.join(h5, "blank.h5"))
    check(p.returncode == 0 and fb.shape[0] == 0 and cb.shape == (0, 2), "blank slide h5: [0, D] and [0, 2]")
    # no resolution
    p = run(BIN, "embed-slide", "-m", model, "--format", "npy", slides["nompp"], "-o", out)
    check(p.returncode == 1 and "--slide-mpp" in p.stderr, "no resolution: exit 1, asks for --slide-mpp")
    p = run(BIN, "embed-slide", "-m", model, "--format", "npy", slides["nompp"], "--slide-mpp", "0.25", "-o", out)
    check(p.returncode == 0 and os.path.exists(os.path.join(out, "nompp", "coords.npy")), "--slide-mpp 0.25 works")
    # bad inputs: each named, the good slide still done
    trunc = os.path.join(tmp, "truncated.svs")
    with open(slides["aperio"], "rb") as fi, open(trunc, "wb") as fo:
        fo.write(fi.read(3000))
    corrupt = os.path.join(tmp, "corrupt.tif")
    with open(slides["generic"], "rb") as fi:
        data = bytearray(fi.read())
    data[len(data) // 2:len(data) // 2 + 200000] = os.urandom(200000)  # tile data destroyed
    with open(corrupt, "wb") as fo:
        fo.write(data)
    text = os.path.join(tmp, "notes.txt")
    with open(text, "w") as fo:
        fo.write("not a slide\n")
    png = os.path.join(SHARED, "images", "pie_chart.png")
    bad = os.path.join(tmp, "bad")
    p = run(BIN, "embed-slide", "-m", model, "--all-tiles", trunc, text, png, os.path.join(tmp, "missing.svs"),
            corrupt, slides["aperio"], "-o", bad)
    named = all(os.path.basename(x) in p.stderr for x in (trunc, text, png, "missing.svs", corrupt))
    check(p.returncode == 1 and named and os.path.exists(os.path.join(bad, "aperio.h5")),
          "bad inputs: exit 1, each named on stderr, the good slide still written")
    print("     " + p.stderr.strip().replace("\n", "\n     "))


def text_embeddings(model, texts):
    p = run(BIN, "embed-text", "-m", model, "--json", *texts)
    return np.array([json.loads(l)["embedding"] for l in p.stdout.strip().split("\n")], dtype=np.float64)


def check_classify(slides, tmp, model, feat_dir):
    path = slides["aperio"]
    labels = ["adenocarcinoma", "squamous cell carcinoma", "normal tissue"]
    tmpl = "an H&E image of "
    base = ["classify-slide", "-m", model, path, "--labels", ",".join(labels), "--template", tmpl, "--json"]
    heat = os.path.join(tmp, "heat.png")
    p = run(BIN, *base, "--topk", "3", "--heatmap", heat)
    check(p.returncode == 0, "classify-slide: exit 0 (%s)" % p.stderr.strip())
    j = json.loads(p.stdout)
    feats, coords, _, _ = h5_arrays(os.path.join(feat_dir, "aperio.h5"))
    txt = text_embeddings(model, [tmpl + l for l in labels])
    scale = float([l for l in run(BIN, "info", "-m", model).stdout.split("\n") if l.startswith("logit scale")][0].split()[2])
    sims = feats.astype(np.float64) @ (txt / np.linalg.norm(txt, axis=1, keepdims=True)).T
    sims /= np.linalg.norm(feats.astype(np.float64), axis=1, keepdims=True)

    def mi_zero(k):
        pooled = np.sort(sims, axis=0)[::-1][:k].mean(axis=0)
        e = np.exp(scale * pooled - (scale * pooled).max())
        return e / e.sum()

    check(sorted(j) == ["file", "labels", "probs", "tiles", "top_tiles"] and j["labels"] == labels
          and j["tiles"] == len(feats), "classify-slide JSON keys, labels, tiles = %d" % len(feats))
    check(np.allclose(j["probs"], mi_zero(3), atol=1e-6, rtol=0),
          "classify-slide --topk 3: probs %s = MI-Zero recomputed %s" % (np.round(j["probs"], 5), np.round(mi_zero(3), 5)))
    top = j["top_tiles"][labels[0]]
    order = np.argsort(-sims[:, 0], kind="stable")[:3]
    check(len(top) == 3 and [t[:2] for t in top] == coords[order].tolist()
          and np.allclose([t[2] for t in top], sims[order, 0], atol=1e-6),
          "classify-slide: top_tiles of %s = the 3 best tiles, [x, y, score]" % labels[0])
    p2 = run(BIN, *base, "--topk", "3", "--features", feat_dir)
    check(p2.returncode == 0 and json.loads(p2.stdout)["probs"] == j["probs"],
          "classify-slide --features OUTDIR reuses the h5: same probabilities")
    npy_dir = os.path.join(tmp, "npyfeat")
    run(BIN, "embed-slide", "-m", model, "--format", "npy", path, "-o", npy_dir)
    pn = run(BIN, *base, "--topk", "3", "--features", npy_dir)
    check(pn.returncode == 0 and json.loads(pn.stdout)["probs"] == j["probs"]
          and not os.path.exists(os.path.join(npy_dir, "aperio.h5")),
          "classify-slide --features reuses an --format npy output too")
    p3 = run(BIN, *base, "--pool", "mean", "--features", feat_dir)
    check(np.allclose(json.loads(p3.stdout)["probs"], mi_zero(len(feats)), atol=1e-6), "classify-slide --pool mean")
    p4 = run(BIN, *base, "--topk", "1", "--features", feat_dir)
    check(np.allclose(json.loads(p4.stdout)["probs"], mi_zero(1), atol=1e-6), "classify-slide --topk 1")
    hm = Image.open(heat) if os.path.exists(heat) else None
    s = openslide.OpenSlide(path)
    check(hm is not None and hm.mode == "RGB" and hm.size[0] >= s.level_dimensions[-1][0]
          and hm.size[1] > s.level_dimensions[-1][1], "heatmap PNG written (%s)" % str(hm.size if hm else None))
    p5 = run(BIN, *base, "--features", feat_dir, "--heatmap", heat, "--heatmap-label", labels[1])
    check(p5.returncode == 0, "heatmap for one label")
    p6 = run(BIN, "classify-slide", "-m", model, slides["blank"], "--labels", "a,b", "--json")
    jb = json.loads(p6.stdout) if p6.returncode == 0 else {}
    check(jb.get("probs", 1) is None and jb.get("tiles") == 0 and "no tissue" in p6.stderr,
          "classify-slide on a blank slide: probs null, 0 tiles, a warning")


def main():
    if not os.path.exists(TOOL) or not os.path.exists(BIN):
        print("FAIL build first (make tests): %s" % TOOL)
        sys.exit(1)
    if "built without OpenSlide" in run(TOOL, "info", "/nonexistent").stdout:
        print("skip: this build has no OpenSlide (make SLIDE=0)")
        return
    tiny, full = os.path.join(TESTDATA, "tiny.bmc"), os.path.join(TESTDATA, "full.bmc")
    slides = fixtures()
    with tempfile.TemporaryDirectory() as tmp:
        quick = os.environ.get("SLIDE_QUICK")  # while developing: only the later checks
        if not quick:
            check_reading(slides, tmp)
            check_tiles(slides, tmp)
        out = check_embed(slides, tmp, tiny, os.path.join(TESTDATA, "tiny"), "aperio", [])
        if not quick:
            check_embed(slides, tmp, tiny, os.path.join(TESTDATA, "tiny"), "generic", ["--min-tissue", "0.3"])
            check_embed(slides, tmp, tiny, os.path.join(TESTDATA, "tiny"), "vips", ["--tissue-threshold", "40"])
            if os.path.exists(full):
                check_embed(slides, tmp, full, os.path.join(TESTDATA, "full"), "generic", ["--min-tissue", "0.8"],
                            full=True)
            check_resume(slides, tmp, tiny)
            check_big(slides, tmp, tiny)
            check_progress(slides, tmp, tiny)
        check_formats_and_errors(slides, tmp, tiny)
        check_classify(slides, tmp, tiny, out)
    print("%d failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
