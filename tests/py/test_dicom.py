"""test_dicom.py - DICOM decoding (lib/image_dicom.cc) against pydicom applying docs/IMAGE.md's rule.

Inputs, all made or found at test time (nothing is copied into the project):
  * the DICOM files of Debian's python3-pydicom (pydicom/data/test_files, and its DICOMDIR);
  * files written here with pydicom: 16-bit CT with rescale and windows (LINEAR, LINEAR_EXACT,
    SIGMOID), signed pixels, 12 bits stored with a high bit, MONOCHROME1, Presentation LUT Shape
    INVERSE, Modality LUT and VOI LUT Sequences, multi-frame, RGB in both planar configurations,
    YBR_FULL, PALETTE COLOR, a bare dataset without meta header, absurd sizes, truncations;
  * their twins made with DCMTK's tools (dcmconv: implicit / big endian / deflated; dcmcrle;
    dcmcjpeg lossless; dcmcjpls lossless; dcmcjpeg baseline, lossy) and img2dcm.
Checked: for every file pydicom decodes, the library's 8-bit image and its 224 x 224 crop are
within 1 level of pydicom's pixels taken through the same rule (numpy) and PIL's crop; every
lossless twin gives exactly the pixels of its uncompressed original, frame by frame; every file
the library refuses gets a message that names why (the transfer syntax UID and how to convert,
"no Pixel Data" and the SOP class, the missing attribute, the frame count, the size).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

try:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    from PIL import Image
except ImportError as e:  # tools/deps-debian.txt installs python3-pydicom
    print(f"test_dicom: FAIL: {e} (install python3-pydicom, python3-pil)")
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_image_pixels import pil_crop  # noqa: E402  (open_clip's val transform, PIL)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
TOOL = os.path.join(ROOT if not os.path.isabs(BUILD) else "", BUILD, "tests", "tool_image_info")
PYDICOM_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")

failures = []
JPEG_TS = ["1.2.840.10008.1.2.4.%d" % k for k in (50, 51, 57, 70)]
DCMTK_DECOMPRESS = {**{t: "dcmdjpeg" for t in JPEG_TS}, "1.2.840.10008.1.2.4.80": "dcmdjpls",
                    "1.2.840.10008.1.2.4.81": "dcmdjpls"}


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run_tool(pairs, *opts):
    """pairs: [(in, out)]. Returns {in: ("OK", fields) | ("ERR", message)}."""
    args = [TOOL, *opts]
    for i, o in pairs:
        args += [i, o]
    r = subprocess.run(args, capture_output=True, text=True)
    check(r.returncode in (0, 1) and not r.stderr, f"tool exit {r.returncode}, stderr {r.stderr[:300]!r}")
    res = {}
    for line in r.stdout.splitlines():
        kind, rest = line.split(" ", 1)
        f = rest.split("\t")
        res[f[0]] = (kind, f[1:] if kind == "OK" else f[2])
    return res


def load_raw(out, fields):
    w, h = map(int, fields[2].split("x"))
    c = 1 if fields[1] == "L" else 3
    a = np.fromfile(out + ".raw", np.uint8)
    return a.reshape(h, w, c) if c == 3 else a.reshape(h, w)


def load_crop(out):
    return np.fromfile(out + ".crop", np.uint8).reshape(224, 224, 3)


# ---- the rule of docs/IMAGE.md, in numpy ---------------------------------------------------------

def stored_values(ds, arr):
    """pydicom's array -> the stored values (bits stored at High Bit, sign applied)."""
    alloc, stored = ds.BitsAllocated, ds.get("BitsStored", ds.BitsAllocated)
    high = ds.get("HighBit", stored - 1)
    raw = arr.astype(np.int64) & ((1 << alloc) - 1)
    v = (raw >> (high + 1 - stored)) & ((1 << stored) - 1)
    if ds.get("PixelRepresentation", 0) == 1:
        v = np.where(v & (1 << (stored - 1)), v - (1 << stored), v)
    return v


def lut_lookup(item, x, signed):
    n, first, bits = [int(v) for v in item.LUTDescriptor]
    n = 65536 if n == 0 else n
    if signed and first >= 0x8000:
        first -= 0x10000
    data = item.LUTData
    data = np.asarray(data if not isinstance(data, bytes) else np.frombuffer(data, "<u2"), dtype=np.float64)[:n]
    idx = np.clip(np.floor(x + 0.5) - first, 0, n - 1).astype(np.int64)
    return data[idx], bits


def window_y(x, c, w, func):
    if func == "LINEAR_EXACT":
        return np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
    if func == "SIGMOID":
        return 1 / (1 + np.exp(-4 * (x - c) / w))
    lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        mid = (x - (c - 0.5)) / (w - 1) + 0.5 if w > 1 else np.zeros_like(x)
    return np.where(x <= lo, 0.0, np.where(x > hi, 1.0, mid))


def to8(y):
    return np.clip(np.floor(255 * y + 0.5), 0, 255).astype(np.uint8)


def mvalue(v):
    return float(v) if not hasattr(v, "__len__") else float(v[0])


def holder(ds, frame, seq, kw):
    """Enhanced objects: the item holding kw in the frame's Per-frame Functional Groups item
    (sequence seq), else the Shared one, else the dataset itself, else None."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        if groups in ds and len(ds[groups].value) > index:
            g = ds[groups][index]
            if seq in g and len(g[seq].value) and g[seq][0].get(kw) not in (None, ""):
                return g[seq][0]
    return ds if ds.get(kw) not in (None, "") else None


def ref_gray(ds, arr, window="auto", frame=0):
    """The 8-bit image of one frame (arr: pydicom's pixels of that frame)."""
    sv = stored_values(ds, arr).astype(np.float64)
    signed = ds.get("PixelRepresentation", 0) == 1
    if "ModalityLUTSequence" in ds:
        x, _ = lut_lookup(ds.ModalityLUTSequence[0], sv, signed)
        modality_lut = True
    else:
        hs = holder(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
        hi = holder(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
        slope = float(hs.RescaleSlope) if hs is not None else 1.0
        intercept = float(hi.RescaleIntercept) if hi is not None else 0.0
        x = sv * slope + intercept
        modality_lut = False
    wh = holder(ds, frame, "FrameVOILUTSequence", "WindowCenter")
    if wh is not None and wh.get("WindowWidth") in (None, ""):
        wh = None
    centers = wh.get("WindowCenter") if wh is not None else None
    widths = wh.get("WindowWidth") if wh is not None else None
    centers = [] if centers is None else ([centers] if not hasattr(centers, "__len__") else list(centers))
    widths = [] if widths is None else ([widths] if not hasattr(widths, "__len__") else list(widths))
    nwin = min(len(centers), len(widths))
    func = (wh.get("VOILUTFunction", "LINEAR") if wh is not None else "LINEAR") or "LINEAR"
    if isinstance(window, tuple):
        y = window_y(x, window[0], window[1], "LINEAR")
    elif window == "auto" and nwin and (float(widths[0]) >= 1 if func == "LINEAR" else float(widths[0]) > 0):
        y = window_y(x, float(centers[0]), float(widths[0]), func)
    elif isinstance(window, int):
        y = window_y(x, float(centers[window]), float(widths[window]), func)
    elif window == "auto" and "VOILUTSequence" in ds:  # no usable window
        lv, bits = lut_lookup(ds.VOILUTSequence[0], x, signed and not modality_lut)
        y = lv / ((1 << bits) - 1)
    else:
        lo, hi = x.min(), x.max()
        y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    v = to8(y)
    if ds.PhotometricInterpretation == "MONOCHROME1" or ds.get("PresentationLUTShape", "") == "INVERSE":
        v = 255 - v
    return v


def ref_image(ds, frame=0, window="auto"):
    """pydicom's decode of one frame, through the rule. None when pydicom cannot decode it."""
    try:
        arr = ds.pixel_array
    except Exception:
        return None
    nf = int(ds.get("NumberOfFrames", 1) or 1)
    spp = ds.get("SamplesPerPixel", 1)
    if nf > 1:
        arr = arr[frame]
    pi = ds.PhotometricInterpretation
    if pi in ("MONOCHROME1", "MONOCHROME2"):
        return ref_gray(ds, arr, window, frame)
    if pi == "PALETTE COLOR":
        rgb = pydicom.pixel_data_handlers.util.apply_color_lut(arr, ds)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return (np.floor(rgb.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8) if bits == 16
                else rgb.astype(np.uint8))
    assert spp == 3
    if pi in ("YBR_FULL", "YBR_FULL_422"):  # pydicom's decoders (numpy, RLE, Pillow) keep YCbCr
        return pydicom.pixel_data_handlers.util.convert_color_space(arr, "YBR_FULL", "RGB")
    stored = ds.get("BitsStored", ds.BitsAllocated)
    if stored == 8:
        return arr.astype(np.uint8)
    return to8((stored_values(ds, arr) / float((1 << stored) - 1)))


def compare(name, ours, crop, ref, tol=1):
    """ours / crop: the library's; ref: the reference 8-bit image."""
    if not check(ours.shape == ref.shape, f"{name}: shape {ours.shape} != reference {ref.shape}"):
        return None
    d = int(np.abs(ours.astype(int) - ref.astype(int)).max()) if ours.size else 0
    mode = "L" if ref.ndim == 2 else "RGB"
    pc = pil_crop(Image.fromarray(ref, mode))
    dc = int(np.abs(crop.astype(int) - pc.astype(int)).max())
    check(d <= tol and dc <= tol, f"{name}: differs from the pydicom reference by {d} (image) / {dc} (224 crop), "
          f"allowed {tol}")
    return d, dc


# ---- files made with pydicom ------------------------------------------------------------------

def new_ds(rows, cols, pi="MONOCHROME2", bits=16, stored=None, signed=0, spp=1, frames=1, sop="1.2.840.10008.5.1.4.1.1.2"):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = pi
    ds.BitsAllocated = bits
    ds.BitsStored = stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = signed
    if spp == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def set_pixels(ds, arr):
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    if len(ds.PixelData) % 2:
        ds.PixelData += b"\0"


def save(ds, path):
    ds.save_as(path, write_like_original=False)
    return path


def make_files(d):
    rng = np.random.default_rng(16)
    files = {}
    # CT: signed 16-bit, rescale, two windows (LINEAR default)
    ct = new_ds(70, 90, signed=1)
    v = (rng.normal(0, 600, (70, 90))).clip(-2000, 3000).astype(np.int16)
    set_pixels(ct, v)
    ct.RescaleSlope, ct.RescaleIntercept = 1, -1024
    ct.WindowCenter, ct.WindowWidth = [40, -600], [400, 1500]
    files["ct_windows"] = save(ct, f"{d}/ct_windows.dcm")
    for func in ("LINEAR_EXACT", "SIGMOID"):
        ct.VOILUTFunction = func
        files[f"ct_{func.lower()}"] = save(ct, f"{d}/ct_{func.lower()}.dcm")
    del ct.VOILUTFunction
    # rescale with a fractional slope, no window: min-max
    mm = new_ds(33, 47, bits=16, stored=12)
    set_pixels(mm, rng.integers(0, 4096, (33, 47)).astype(np.uint16))
    mm.RescaleSlope, mm.RescaleIntercept = 0.25, 7.5
    files["minmax_12bit"] = save(mm, f"{d}/minmax_12bit.dcm")
    # 10 bits stored at high bit 11 (shifted), signed, garbage in the unused bits
    sh = new_ds(20, 30, bits=16, stored=10, signed=1)
    sh.HighBit = 11
    raw = rng.integers(-512, 512, (20, 30))
    word = ((raw & 0x3FF) << 2) | (rng.integers(0, 4, (20, 30))) | (rng.integers(0, 16, (20, 30)) << 12)
    set_pixels(sh, word.astype(np.uint16))
    sh.WindowCenter, sh.WindowWidth = 0, 800
    files["shifted_signed"] = save(sh, f"{d}/shifted_signed.dcm")
    # MONOCHROME1, 8-bit, window; Presentation LUT Shape INVERSE on a MONOCHROME2
    m1 = new_ds(40, 40, pi="MONOCHROME1", bits=8)
    set_pixels(m1, rng.integers(0, 256, (40, 40)).astype(np.uint8))
    m1.WindowCenter, m1.WindowWidth = 128, 200
    files["mono1"] = save(m1, f"{d}/mono1.dcm")
    inv = new_ds(40, 40, bits=16)
    set_pixels(inv, rng.integers(0, 1000, (40, 40)).astype(np.uint16))
    inv.PresentationLUTShape = "INVERSE"
    files["plut_inverse"] = save(inv, f"{d}/plut_inverse.dcm")
    # Modality LUT Sequence; VOI LUT Sequence
    ml = new_ds(30, 30, bits=16, stored=8)
    set_pixels(ml, rng.integers(0, 256, (30, 30)).astype(np.uint16))
    it = Dataset()
    it.add_new(0x00283002, "US", [200, 20, 12])  # LUT Descriptor
    it.add_new(0x00283006, "US", [int(x) for x in np.linspace(0, 4000, 200)])  # LUT Data
    it.ModalityLUTType = "US"
    ml.ModalityLUTSequence = [it]
    files["modality_lut"] = save(ml, f"{d}/modality_lut.dcm")
    vl = new_ds(30, 30, bits=16)
    set_pixels(vl, rng.integers(0, 3000, (30, 30)).astype(np.uint16))
    it = Dataset()
    it.add_new(0x00283002, "US", [256, 1000, 10])
    it.add_new(0x00283006, "US", [int(x) for x in (np.sin(np.linspace(0, 3, 256)) * 1023).clip(0, 1023)])
    vl.VOILUTSequence = [it]
    files["voi_lut"] = save(vl, f"{d}/voi_lut.dcm")
    # multi-frame, 16-bit with a window, and 8-bit
    mf = new_ds(24, 36, bits=16, frames=4)
    set_pixels(mf, (rng.integers(0, 4000, (4, 24, 36)) + np.arange(4)[:, None, None] * 500).astype(np.uint16))
    mf.WindowCenter, mf.WindowWidth = 2000, 3000
    files["multiframe16"] = save(mf, f"{d}/multiframe16.dcm")
    mf8 = new_ds(25, 35, bits=8, frames=3)
    set_pixels(mf8, rng.integers(0, 256, (3, 25, 35)).astype(np.uint8))
    files["multiframe8"] = save(mf8, f"{d}/multiframe8.dcm")
    # Enhanced-style functional groups: rescale in the shared item, per-frame intercepts and
    # windows (with their functions) in the per-frame items, a dataset-level window overridden
    en = new_ds(20, 30, bits=16, signed=1, frames=3)
    set_pixels(en, rng.integers(-1000, 3000, (3, 20, 30)).astype(np.int16))
    en.WindowCenter, en.WindowWidth = 0, 10
    shared = Dataset()
    pvt = Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = 2, 0, "US"
    shared.PixelValueTransformationSequence = [pvt]
    en.SharedFunctionalGroupsSequence = [shared]
    per = []
    for k, (c, w, fn) in enumerate(((100, 2000, "LINEAR"), (-500, 800, "SIGMOID"), (1500, 3000, "LINEAR_EXACT"))):
        item, voi, tr = Dataset(), Dataset(), Dataset()
        voi.WindowCenter, voi.WindowWidth, voi.VOILUTFunction = c, w, fn
        item.FrameVOILUTSequence = [voi]
        if k == 1:
            tr.RescaleIntercept = -1024  # this frame's own intercept; the slope stays the shared one
            item.PixelValueTransformationSequence = [tr]
        per.append(item)
    en.PerFrameFunctionalGroupsSequence = per
    files["enhanced"] = save(en, f"{d}/enhanced.dcm")
    # colour: RGB interleaved / planar, YBR_FULL, palette
    rgb = rng.integers(0, 256, (31, 45, 3)).astype(np.uint8)
    c0 = new_ds(31, 45, pi="RGB", bits=8, spp=3)
    set_pixels(c0, rgb)
    files["rgb"] = save(c0, f"{d}/rgb.dcm")
    c1 = new_ds(31, 45, pi="RGB", bits=8, spp=3)
    c1.PlanarConfiguration = 1
    set_pixels(c1, rgb.transpose(2, 0, 1).copy())
    files["rgb_planar"] = save(c1, f"{d}/rgb_planar.dcm")
    yb = new_ds(31, 45, pi="YBR_FULL", bits=8, spp=3)
    set_pixels(yb, rgb)
    files["ybr_full"] = save(yb, f"{d}/ybr_full.dcm")
    pal = new_ds(30, 40, pi="PALETTE COLOR", bits=8)
    set_pixels(pal, rng.integers(0, 256, (30, 40)).astype(np.uint8))
    for c, k in (("Red", 1), ("Green", 2), ("Blue", 3)):
        setattr(pal, f"{c}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(pal, f"{c}PaletteColorLookupTableData",
                np.array([(i * 257 * k) % 65536 for i in range(256)], "<u2").tobytes())
    files["palette"] = save(pal, f"{d}/palette.dcm")
    return files


def main():
    if not os.path.exists(TOOL):
        print(f"test_dicom: {TOOL} not built (make tests)")
        return 1
    info = subprocess.run([TOOL, "--frame", "0"], capture_output=True, text=True)
    tmp = tempfile.mkdtemp(prefix="bmc_dicom_")
    try:
        return run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    # ---- 1. pydicom's own files ---------------------------------------------------------------
    names = sorted(f for f in os.listdir(PYDICOM_FILES) if f.endswith(".dcm"))
    names.append("dicomdirtests/DICOMDIR")
    pairs = [(os.path.join(PYDICOM_FILES, f), os.path.join(tmp, "p%d" % i)) for i, f in enumerate(names)]
    res = run_tool(pairs)
    # files pydicom reads whose refusal is expected, with the reason the message must give
    refused_ok = {"liver_1frame.dcm": "Bits Allocated 1", "liver_expb_1frame.dcm": "Bits Allocated 1",
                  "SC_rgb_jpeg.dcm": "could not be parsed"}
    n_ok = n_ref = n_err = 0
    worst = 0
    for (path, out), name in zip(pairs, names):
        kind, val = res.get(path, ("ERR", "no output line"))
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            ds = None
        ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if ds is not None and hasattr(ds, "file_meta") else ""
        if kind == "ERR":
            n_err += 1
            msg = val
            print(f"  refused {name}: {msg}")
            check(msg.startswith(path + ":"), f"{name}: message does not name the file: {msg}")
            if ts and pydicom.uid.UID(ts).is_compressed and "JPEG 2000" in pydicom.uid.UID(ts).name:
                check(ts in msg and "gdcmconv --raw" in msg and "JPEG 2000" in msg,
                      f"{name}: JPEG 2000 refusal must name the UID {ts}, its name and how to convert: {msg}")
            elif ds is not None and "PixelData" not in ds:
                sop = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", "")
                          if hasattr(ds, "file_meta") else ds.get("SOPClassUID", ""))
                check(("no Pixel Data" in msg and sop in msg) or "not a recognised image format" in msg
                      or "could not be parsed" in msg,
                      f"{name}: an object without Pixel Data must say so with its SOP class {sop}: {msg}")
            elif name in refused_ok:
                check(refused_ok[name] in msg, f"{name}: expected '{refused_ok[name]}' in {msg}")
            else:
                try:
                    ds.pixel_array
                    check(False, f"{name}: pydicom decodes it, the library refused it: {msg}")
                except Exception:
                    check(any(k in msg for k in ("without", "truncated", "corrupt", "not supported")),
                          f"{name}: the refusal does not say why: {msg}")
            continue
        n_ok += 1
        ours, crop = load_raw(out, val), load_crop(out)
        ref = ref_image(ds)
        if ref is None and ts in DCMTK_DECOMPRESS:
            # no pydicom decoder here (JPEG lossless, 12-bit JPEG, JPEG-LS): DCMTK's own tool
            # writes the uncompressed file, and pydicom's reference is taken on that
            plain = out + "_plain.dcm"
            r = subprocess.run([DCMTK_DECOMPRESS[ts], path, plain], capture_output=True, text=True)
            if check(r.returncode == 0, f"{name}: {DCMTK_DECOMPRESS[ts]} failed: {r.stderr}"):
                ref = ref_image(pydicom.dcmread(plain))
        if ref is None:
            print(f"  decoded {name} ({val[6]}); pydicom cannot decode it")
            continue
        # lossy JPEG: PIL (libjpeg-turbo) and DCMTK (IJG 6b) may round an IDCT differently
        lossy = ts in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
        r = compare(name, ours, crop, ref, tol=2 if lossy else 1)
        if r:
            n_ref += 1
            worst = max(worst, r[0] if not lossy else 0)
            print(f"  {name}: {val[1]} {val[2]} {val[6]} [{val[7]}] max diff {r[0]} / crop {r[1]}")
    print(f"pydicom files: {n_ok} decoded ({n_ref} compared with pydicom), {n_err} refused with a reason")
    check(n_ref >= 38, f"only {n_ref} pydicom files compared")

    # ---- 2. files made here, and their twins --------------------------------------------------
    files = make_files(tmp)
    checked = 0
    for key, path in files.items():
        ds = pydicom.dcmread(path)
        nf = int(ds.get("NumberOfFrames", 1) or 1)
        windows = ["auto"]
        if "WindowCenter" in ds:
            windows += ["file:%d" % k for k in range(len(ds.WindowCenter) if hasattr(ds.WindowCenter, "__len__") else 1)]
        if ds.SamplesPerPixel == 1 and ds.PhotometricInterpretation != "PALETTE COLOR":
            windows += ["minmax", "100,300"]
        for frame in range(nf):
            for w in windows:
                out = os.path.join(tmp, f"{key}_{frame}_{w.replace(':', '_').replace(',', '_')}")
                r = run_tool([(path, out)], "--frame", str(frame), "--window", w)
                kind, val = r[path]
                if not check(kind == "OK", f"{key} frame {frame} window {w}: {val}"):
                    continue
                wref = ("auto" if w == "auto" else "minmax" if w == "minmax" else int(w[5:]) if w.startswith("file:")
                        else tuple(float(x) for x in w.split(",")))
                ref = ref_image(ds, frame, wref)
                got = compare(f"{key} frame {frame} window {w}", load_raw(out, val), load_crop(out), ref)
                check(val[4] == f"{frame}/{nf}", f"{key}: frame/n_frames {val[4]} != {frame}/{nf}")
                checked += 1
        print(f"  {key}: {val[1]} {val[2]} {val[5]} [{val[7]}], {nf} frame(s), windows {windows}: ok")
    print(f"made files: {checked} frame/window cases compared with the pydicom reference")

    # twins: every lossless encoding gives the uncompressed pixels exactly
    twin_tools = [("implicit", ["dcmconv", "+ti"]), ("bigendian", ["dcmconv", "+tb"]), ("deflated", ["dcmconv", "+td"]),
                  ("rle", ["dcmcrle"]), ("jpeg_lossless", ["dcmcjpeg", "+e1"]), ("jpeg_lossless_sv1", ["dcmcjpeg", "+el"]),
                  ("jpegls", ["dcmcjpls", "+el"])]
    originals = dict(files)
    originals["MR_small"] = os.path.join(PYDICOM_FILES, "MR_small.dcm")
    originals["CT_small"] = os.path.join(PYDICOM_FILES, "CT_small.dcm")
    n_twins = 0
    for key, path in originals.items():
        nf = int(pydicom.dcmread(path, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
        base = {}
        for frame in range(nf):
            out = os.path.join(tmp, f"orig_{key}_{frame}")
            kind, val = run_tool([(path, out)], "--frame", str(frame))[path]
            base[frame] = (val, open(out + ".raw", "rb").read()) if kind == "OK" else None
        for tname, cmd in twin_tools:
            twin = os.path.join(tmp, f"twin_{key}_{tname}.dcm")
            r = subprocess.run(cmd + [path, twin], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"  ({' '.join(cmd)} cannot encode {key}: {r.stderr.strip()[:120]})")
                continue
            for frame in range(nf):
                out = os.path.join(tmp, f"tw_{key}_{tname}_{frame}")
                kind, val = run_tool([(twin, out)], "--frame", str(frame))[twin]
                if not check(kind == "OK" and base[frame], f"twin {key} {tname} frame {frame}: {val}"):
                    continue
                same = open(out + ".raw", "rb").read() == base[frame][1]
                check(same, f"twin {key} {tname} frame {frame}: pixels differ from the uncompressed original")
                n_twins += 1
    print(f"lossless twins: {n_twins} frames equal their uncompressed originals byte for byte")
    check(n_twins >= 60, f"only {n_twins} twin frames checked")

    # lossy JPEG (dcmcjpeg baseline; RGB becomes YBR_FULL_422): the pixels DCMTK's own dcmdjpeg
    # writes, within 1 level (its YCbCr -> RGB is libjpeg's integer one, ours PS3.3's formula)
    for key in ("rgb", "mono1", "multiframe8"):
        twin, plain = os.path.join(tmp, f"lossy_{key}.dcm"), os.path.join(tmp, f"lossy_{key}_dcmdjpeg.dcm")
        r = subprocess.run(["dcmcjpeg", "+eb", "+q", "95", files[key], twin], capture_output=True, text=True)
        r2 = subprocess.run(["dcmdjpeg", twin, plain], capture_output=True, text=True)
        if not check(r.returncode == 0 and r2.returncode == 0, f"dcmcjpeg +eb / dcmdjpeg {key}: {r.stderr} {r2.stderr}"):
            continue
        nf = int(pydicom.dcmread(twin, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
        for frame in range(nf):
            res = run_tool([(twin, os.path.join(tmp, f"lossy_{key}")), (plain, os.path.join(tmp, f"lossy0_{key}"))],
                           "--frame", str(frame))
            if check(res[twin][0] == "OK" and res[plain][0] == "OK", f"lossy {key}: {res}"):
                a = np.fromfile(os.path.join(tmp, f"lossy_{key}.raw"), np.uint8).astype(int)
                b = np.fromfile(os.path.join(tmp, f"lossy0_{key}.raw"), np.uint8).astype(int)
                d = int(np.abs(a - b).max())
                check(a.shape == b.shape and d <= 1, f"lossy {key} frame {frame}: {d} levels from dcmdjpeg's pixels")
        print(f"  lossy JPEG baseline {key} ({res[twin][1][5]}), {nf} frame(s): within 1 level of dcmdjpeg")

    # img2dcm: a BMP becomes an uncompressed DICOM with the same pixels; a JPEG is encapsulated
    png = os.path.join(tmp, "src.bmp")
    src = np.random.default_rng(1).integers(0, 256, (50, 70, 3)).astype(np.uint8)
    Image.fromarray(src, "RGB").save(png)
    dcm = os.path.join(tmp, "img2dcm_bmp.dcm")
    r = subprocess.run(["img2dcm", "-i", "BMP", png, dcm], capture_output=True, text=True)
    if check(r.returncode == 0, f"img2dcm BMP: {r.stderr}"):
        kind, val = run_tool([(dcm, dcm + ".out")])[dcm]
        check(kind == "OK" and np.array_equal(load_raw(dcm + ".out", val), src), f"img2dcm BMP: {val}")
    jpg = os.path.join(tmp, "src.jpg")
    Image.fromarray(src, "RGB").save(jpg, quality=90)
    dcm = os.path.join(tmp, "img2dcm_jpg.dcm")
    r = subprocess.run(["img2dcm", jpg, dcm], capture_output=True, text=True)
    if check(r.returncode == 0, f"img2dcm JPEG: {r.stderr}"):
        kind, val = run_tool([(dcm, dcm + ".out")])[dcm]
        if check(kind == "OK", f"img2dcm JPEG: {val}"):
            d = np.abs(load_raw(dcm + ".out", val).astype(int) - np.array(Image.open(jpg)).astype(int)).max()
            check(d <= 2, f"img2dcm JPEG: {d} levels from PIL's decode of the same JPEG")
            print(f"  img2dcm JPEG ({val[6]}): max {d} levels from PIL")

    # ---- 3. refusals that must name why --------------------------------------------------------
    mf = files["multiframe16"]
    kind, msg = run_tool([(mf, os.path.join(tmp, "x"))], "--frame", "4")[mf]
    check(kind == "ERR" and "frame 4" in msg and "4 frames" in msg, f"frame past the end: {msg}")
    kind, msg = run_tool([(files["ct_windows"], os.path.join(tmp, "x"))], "--window", "file:2")[files["ct_windows"]]
    check(kind == "ERR" and "window 2" in msg and "2 windows" in msg, f"window past the end: {msg}")
    # a bare dataset (no preamble, no meta): same pixels as the Part 10 file
    ds = pydicom.dcmread(files["ct_windows"])
    bare = os.path.join(tmp, "bare.dcm")
    ds.preamble = None
    del ds.file_meta
    ds.is_little_endian, ds.is_implicit_VR = True, True
    ds.save_as(bare, write_like_original=True)
    with open(bare, "rb") as f:
        check(f.read(132)[128:] != b"DICM", "bare dataset has a DICM marker")
    r = run_tool([(bare, os.path.join(tmp, "bare")), (files["ct_windows"], os.path.join(tmp, "part10"))])
    check(r[bare][0] == "OK" and open(os.path.join(tmp, "bare.raw"), "rb").read() ==
          open(os.path.join(tmp, "part10.raw"), "rb").read(), f"bare dataset: {r[bare]}")
    # absurd sizes: refused before allocation
    big = new_ds(65535, 65535, bits=16, frames=2000000000)
    big.PixelData = b"\0" * 64
    p = save(big, os.path.join(tmp, "big.dcm"))
    kind, msg = run_tool([(p, os.path.join(tmp, "x"))])[p]
    check(kind == "ERR" and "too large" in msg, f"absurd size: {msg}")
    big = new_ds(100, 100, bits=16, frames=2000000000)
    big.PixelData = b"\0" * 20000
    p = save(big, os.path.join(tmp, "frames.dcm"))
    kind, msg = run_tool([(p, os.path.join(tmp, "x"))])[p]
    check(kind == "ERR" and "2000000000 frames" in msg, f"absurd frame count: {msg}")
    # an element declaring 2 GB / 4 GB past the end: refused without allocating it (under ASan
    # with max_allocation_size_mb=64 an attempt would abort the tool)
    import struct
    mrd = open(os.path.join(PYDICOM_FILES, "MR_small.dcm"), "rb").read()
    i = mrd.find(bytes([0xE0, 0x7F, 0x10, 0x00]))
    huge = {"huge_end.dcm": mrd + struct.pack("<HH2sHI", 0x7FE1, 0x0010, b"OB", 0, 0xFFFFFFF0) + b"x" * 100,
            "huge_mid.dcm": mrd[:i] + struct.pack("<HH2sHI", 0x0029, 0x1010, b"OB", 0, 0x7FFFFFF0) + mrd[i:]}
    for name, data in huge.items():
        p = os.path.join(tmp, name)
        open(p, "wb").write(data)
        env = dict(os.environ, ASAN_OPTIONS="max_allocation_size_mb=64:allocator_may_return_null=0")
        r = subprocess.run([TOOL, p, p + ".out"], capture_output=True, text=True, env=env)
        check(r.stdout.startswith("ERR ") and "could not be parsed" in r.stdout and not r.stderr,
              f"{name}: an element longer than the file: {r.stdout.strip()[:200]} {r.stderr[:300]}")
    # truncations of a file of each kind: an error, never a crash
    n_trunc = 0
    for key in ("ct_windows", "rgb_planar"):
        data = open(files[key], "rb").read()
        cut_pairs = []
        for k, cut in enumerate(sorted(set([1, 10, 131, 132, 200, 300, 500] + list(range(600, len(data), 997))))):
            if cut >= len(data) - 1:
                continue
            p = os.path.join(tmp, f"cut_{key}_{k}.dcm")
            open(p, "wb").write(data[:cut])
            cut_pairs.append((p, p + ".out"))
        r = run_tool(cut_pairs)
        for p, _ in cut_pairs:
            n_trunc += 1
            check(r.get(p, ("?",))[0] == "ERR", f"truncated {p}: {r.get(p)}")
    for key in ("MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        data = open(os.path.join(PYDICOM_FILES, key), "rb").read()
        p = os.path.join(tmp, "cut_" + key)
        open(p, "wb").write(data[: len(data) - 100])
        r = run_tool([(p, p + ".out")])
        n_trunc += 1
        check(r[p][0] == "ERR", f"truncated {key}: {r[p]}")
    print(f"truncated files: {n_trunc} refused")

    if failures:
        print(f"test_dicom: {len(failures)} FAILED")
        return 1
    print("test_dicom: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
