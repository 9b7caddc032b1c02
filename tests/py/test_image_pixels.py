"""test_image_pixels.py - the library's image crops and model inputs against PIL 9.4 + torch.

For every image from gen_images.py (every PIL mode and format, odd sizes) and the shared example
images, the C crop ($BUILD/tests/tool_image_crop) is compared with open_clip's val transform run
by PIL: torchvision Resize(224, BICUBIC) -> CenterCrop(224) -> convert('RGB') (torchvision is not
installed here, so its size/offset rules are written out below, after torchvision/transforms/
functional.py resize/_compute_resized_output_size/center_crop). Lossless formats must match byte
for byte; JPEG too in the default build (libjpeg-turbo); a `make JPEG=stb` build's JPEG crops are
measured and bounded instead (tests/sh/test_jpeg_turbo.sh runs that).
The float input is compared with torchvision's to_tensor + Normalize done in torch (float32,
bit for bit). Raw caller views (gray/rgb/rgba with padded strides) go through the same checks.

Options: --jpeg-only (JPEG cases and example images only), --report FILE (markdown table of the
stb-vs-PIL JPEG differences), --keep DIR (generate into DIR and keep it).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_images  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
TOOL = os.path.join(ROOT if not os.path.isabs(BUILD) else "", BUILD, "tests", "tool_image_crop")
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
SIZE = 224
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def pil_crop(im, size=SIZE):
    """open_clip val transform up to convert('RGB'), on a PIL image."""
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_h, new_w) != (h, w):
        im = im.resize((new_w, new_h), Image.BICUBIC)
    W, H = im.size
    assert W >= size and H >= size
    top, left = int(round((H - size) / 2.0)), int(round((W - size) / 2.0))
    return np.array(im.crop((left, top, left + size, top + size)).convert("RGB"))


def reference(path, pil16):
    im = Image.open(path)
    im.load()
    if im.mode == "I" and not pil16:  # the library's default: 16-bit gray scaled to 8 bits
        v = np.array(im).astype(np.int64)
        im = Image.fromarray(((v * 255 + 32767) // 65535).astype(np.uint8), "L")
    return pil_crop(im), Image.open(path).mode


def torch_input(rgb):
    """torchvision to_tensor + Normalize on an HWC uint8 crop."""
    t = torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous().to(dtype=torch.float32).div(255)
    mean = torch.as_tensor(MEAN, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(STD, dtype=torch.float32).view(-1, 1, 1)
    return t.sub_(mean).div_(std).numpy()


def read_ppm(path):
    data = open(path, "rb").read()
    parts = data.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w, 3)


def run_tool(args):
    r = subprocess.run([TOOL] + args, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"tool failed ({r.returncode}): {r.stderr}")
    return {line.split(" ", 2)[1]: line for line in r.stdout.splitlines()}


def print_failures(failures):
    """Print the failures (the first 60) and PASS or their count; returns the exit status."""
    for f in failures[:60]:
        print("FAIL:", f)
    if len(failures) > 60:
        print(f"... and {len(failures) - 60} more failures")
    print("PASS" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


def main():
    jpeg_only = "--jpeg-only" in sys.argv
    report = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv else None
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    if not os.path.exists(TOOL):
        print(f"FAIL: {TOOL} not built (make tests)")
        return 1
    backend = subprocess.run([TOOL, "--info"], capture_output=True, text=True).stdout.split()[0]
    turbo = backend == "jpeg=turbo"
    print(f"tool {TOOL}: {backend}; JPEG crops must be {'exact' if turbo else 'close (stb_image)'}")
    work = keep or tempfile.mkdtemp(prefix="bmc_img_")
    failures, n_exact, jpeg_stats = [], 0, []
    try:
        cases = gen_images.generate(os.path.join(work, "in"), jpeg_only=jpeg_only)
        # the shared example images against their stored PIL crops (and against live PIL)
        ex_dir = os.path.join(SHARED, "images")
        for f in sorted(os.listdir(ex_dir)):
            if f.lower().endswith((".png", ".jpg", ".jpeg")):
                cases.append(dict(name="example_" + f, path=os.path.join(ex_dir, f),
                                  jpeg=not f.lower().endswith(".png"), pil16=False,
                                  stored=os.path.join(ex_dir, "preprocessed_224", os.path.splitext(f)[0] + ".ppm")))
        out_dir = os.path.join(work, "out")
        os.makedirs(out_dir, exist_ok=True)
        results = {}
        for pil16 in (False, True):
            batch = [c for c in cases if c["pil16"] == pil16]
            for k in range(0, len(batch), 200):
                args = (["--pil16"] if pil16 else [])
                for c in batch[k:k + 200]:
                    args += [c["path"], os.path.join(out_dir, c["name"])]
                results.update(run_tool(args))

        for c in cases:
            name, line = c["name"], results.get(c["path"], "")
            if not line.startswith("OK"):
                failures.append(f"{name}: not decoded: {line}")
                continue
            got = read_ppm(os.path.join(out_dir, name + ".ppm"))
            ref, mode = reference(c["path"], c["pil16"])
            if "stored" in c:
                stored = read_ppm(c["stored"])
                if not np.array_equal(stored, ref):
                    failures.append(f"{name}: live PIL differs from the stored crop (reference environment?)")
            c_mode = line.split()[2]
            if c_mode != mode and not (mode == "RGBA" and c_mode == "RGBA"):
                if not (c["jpeg"] and mode == "CMYK" and not turbo):
                    failures.append(f"{name}: mode {c_mode}, PIL says {mode}")
            d = np.abs(got.astype(int) - ref.astype(int))
            if c["jpeg"] and not turbo:
                jpeg_stats.append((name, mode, int(d.max()), 100.0 * (d.max(axis=2) > 0).mean(), float(d.mean())))
                # stb_image rounds YCbCr->RGB and upsamples chroma a little differently from
                # libjpeg (its last h2 sample weights the wrong neighbour; tiny widths differ
                # more): only a gross decoding error should fail here.
                small = min(Image.open(c["path"]).size) < 16
                if d.max() > 64 or d.mean() > (20.0 if small else 1.0):
                    failures.append(f"{name}: stb JPEG crop off by max {d.max()}, mean {d.mean():.3f}")
            elif d.max():
                failures.append(f"{name} ({mode}): crop differs from PIL: max {d.max()}, "
                                f"{(d.max(axis=2) > 0).sum()} pixels")
            else:
                n_exact += 1
            chw = np.fromfile(os.path.join(out_dir, name + ".f32"), dtype="<f4").reshape(3, SIZE, SIZE)
            want = torch_input(got)
            if not np.array_equal(chw.view(np.uint32), want.view(np.uint32)):
                failures.append(f"{name}: float input differs from torch: max {np.abs(chw - want).max():.3g}")

        # caller views (internal_ NULL) with padded strides: GRAY = 'L', RGB, RGBA = 'RGBA'
        n_views = 0
        if not jpeg_only:
            for (w, h) in [(150, 230), (640, 427), (1, 1), (224, 224), (3, 500)]:
                cimg = gen_images.content(w, h, w * 7 + h)
                a = gen_images.alpha(w, h, w + h)
                for fmt, arr, mode in (("gray", np.array(Image.fromarray(cimg).convert("L"))[..., None], "L"),
                                       ("rgb", cimg, "RGB"), ("rgba", np.dstack([cimg, a]), "RGBA")):
                    ch = arr.shape[2]
                    stride = w * ch + 5
                    raw = np.zeros((h, stride), np.uint8)
                    raw[:, :w * ch] = arr.reshape(h, w * ch)
                    raw[:, w * ch:] = 77  # padding must be ignored
                    rp = os.path.join(work, f"view_{fmt}_{w}x{h}.raw")
                    raw.tofile(rp)
                    outp = os.path.join(out_dir, f"view_{fmt}_{w}x{h}")
                    r = subprocess.run([TOOL, "--raw", fmt, str(w), str(h), str(stride), rp, outp],
                                       capture_output=True, text=True)
                    if r.returncode:
                        failures.append(f"view {fmt} {w}x{h}: {r.stdout} {r.stderr}")
                        continue
                    ref = pil_crop(Image.fromarray(arr[..., 0] if ch == 1 else arr, mode))
                    got = read_ppm(outp + ".ppm")
                    chw = np.fromfile(outp + ".f32", dtype="<f4").reshape(3, SIZE, SIZE)
                    if not np.array_equal(got, ref):
                        failures.append(f"view {fmt} {w}x{h}: crop differs from PIL (max {np.abs(got.astype(int) - ref).max()})")
                    elif not np.array_equal(chw.view(np.uint32), torch_input(ref).view(np.uint32)):
                        failures.append(f"view {fmt} {w}x{h}: float input differs from torch")
                    else:
                        n_views += 1

        print(f"{len(cases)} image files: {n_exact} crops byte-identical to PIL; {n_views} caller views identical")
        if jpeg_stats:
            print("stb_image JPEG crops vs PIL (libjpeg-turbo):")
            print(f"  {'file':52s} {'mode':5s} {'max':>4s} {'%px':>7s} {'mean':>7s}")
            for s in jpeg_stats:
                print(f"  {s[0]:52s} {s[1]:5s} {s[2]:4d} {s[3]:6.2f}% {s[4]:7.4f}")
        if report and jpeg_stats:
            with open(report, "w") as f:
                f.write("| file | PIL mode | max abs diff | pixels differing | mean abs diff |\n|---|---|---|---|---|\n")
                for s in jpeg_stats:
                    f.write(f"| {s[0]} | {s[1]} | {s[2]} | {s[3]:.2f}% | {s[4]:.4f} |\n")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return print_failures(failures)


if __name__ == "__main__":
    sys.exit(main())
