"""gen_tiffs.py - TIFF test files for tests/py/test_tiff_pixels.py, written at test time.

Every layout the TIFF decoder (lib/image_tiff.c) follows PIL for, written by three writers:
  - PIL (its libtiff encoder for compressed files): modes 1, L, LA, P, PA, RGB, RGBA, CMYK, LAB,
    I;16 / I;16B, compressions none / LZW / deflate / packbits / JPEG / group3 / group4,
    multi-page (save_all);
  - tifffile: tiles, separate planes, big-endian, signed / 32-bit / float gray, palette + alpha,
    MinIsWhite,
    associated / unassociated / unspecified extra samples, 16-bit RGB(A) and CMYK,
    YCbCr + JPEG with subsampling, predictors, orientation tags, palettes of 2/4/8 bits,
    multi-page of different sizes and modes;
  - tiffcp (libtiff-tools): re-encodes a PIL file into tiles / strips / other compressions.
and a few files PIL refuses (signed and float samples, LAB, unusual extra samples).

generate(outdir) returns a list of dict(name, path, page, expect) where expect is "pil" (the
crop must equal PIL's) or "refuse" (PIL cannot open it or cannot crop it: we must fail cleanly).
Run directly to write the files: gen_tiffs.py OUTDIR
"""
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_images  # noqa: E402

try:
    import tifffile
except ImportError:  # python3-tifffile (tools/deps-debian.txt)
    tifffile = None


def pack_rows(v, bits):
    """MSB-first packed rows of bits-bit samples (each row starts on a byte)."""
    h, w = v.shape
    out = bytearray()
    for row in v:
        acc, n = 0, 0
        buf = bytearray()
        for x in row:
            acc = (acc << bits) | int(x)
            n += bits
            while n >= 8:
                buf.append((acc >> (n - 8)) & 255)
                n -= 8
        if n:
            buf.append((acc << (8 - n)) & 255)
        out += buf
    return bytes(out)


def write_packed_tiff(path, v, bits, photometric, big_endian=False, colormap=None):
    """An uncompressed one-strip gray/palette TIFF of 1..16-bit samples (tifffile needs the
    imagecodecs package, absent from Debian, to pack samples below 8 bits or 12-bit ones)."""
    h, w = v.shape
    e = ">" if big_endian else "<"
    data = pack_rows(v, bits)
    tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bits]), (259, 3, [1]), (262, 3, [photometric]),
            (273, 4, [0]), (277, 3, [1]), (278, 4, [h]), (279, 4, [len(data)])]
    if colormap is not None:
        tags.append((320, 3, list(colormap.reshape(-1))))
    tags.sort()
    ifd_off = 8
    n = len(tags)
    extra_off = ifd_off + 2 + 12 * n + 4
    extra = bytearray()
    entries = []
    for tag, typ, vals in tags:
        size = {3: 2, 4: 4}[typ]
        fmt = e + ("H" if typ == 3 else "I") * len(vals)
        raw = struct.pack(fmt, *vals)
        if len(raw) <= 4:
            entries.append(struct.pack(e + "HHI", tag, typ, len(vals)) + raw.ljust(4, b"\0"))
        else:
            entries.append(struct.pack(e + "HHII", tag, typ, len(vals), extra_off + len(extra)))
            extra += raw
        del size
    data_off = extra_off + len(extra)
    entries = [en if struct.unpack(e + "H", en[:2])[0] != 273 else
               struct.pack(e + "HHII", 273, 4, 1, data_off) for en in entries]
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", ifd_off)
    ifd = struct.pack(e + "H", n) + b"".join(entries) + struct.pack(e + "I", 0)
    open(path, "wb").write(head + ifd + bytes(extra) + data)


def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    cases = []

    def add(name, expect="pil", page=0):
        cases.append(dict(name=name, path=os.path.join(outdir, name), page=page, expect=expect))

    def p(name):
        return os.path.join(outdir, name)

    # ---- PIL's writer: modes x compressions, odd sizes ----
    sizes = [(150, 230), (300, 224), (97, 61), (1, 1), (5, 400)]
    for si, (w, h) in enumerate(sizes):
        c = gen_images.content(w, h, 100 + si)
        rgb = Image.fromarray(c, "RGB")
        a = gen_images.alpha(w, h, si)
        imgs = {
            "1": rgb.convert("L").point(lambda v: 255 if v > 120 else 0).convert("1", dither=Image.NONE),
            "L": rgb.convert("L"),
            "LA": Image.merge("LA", (rgb.convert("L"), Image.fromarray(a))),
            "P": gen_images.to_palette(c, 200, si),
            "RGB": rgb,
            "RGBA": Image.fromarray(np.dstack([c, a]), "RGBA"),
            "CMYK": rgb.convert("CMYK"),
        }
        comps = [None, "tiff_lzw", "tiff_adobe_deflate", "packbits"] if si < 3 else [None, "tiff_lzw"]
        for mode, im in imgs.items():
            for comp in comps:
                n = f"pil_{mode}_{w}x{h}_{comp or 'raw'}.tif"
                im.save(p(n), compression=comp) if comp else im.save(p(n))
                add(n)
            if mode == "1" and si < 3:
                for comp in ("group3", "group4"):
                    n = f"pil_{mode}_{w}x{h}_{comp}.tif"
                    im.save(p(n), compression=comp)
                    add(n)
            if mode in ("L", "RGB") and si < 3:
                n = f"pil_{mode}_{w}x{h}_jpeg.tif"
                im.save(p(n), compression="jpeg", quality=85)
                add(n)
        # 16-bit gray: PIL opens 'I;16' but 9.4 cannot resize it (the pipeline raises), except
        # at 224x224 where no resize happens; the library's default scales to 8 bits
        g = gen_images.gray16(w, h, si) if hasattr(gen_images, "gray16") else None
        if g is not None:
            n = f"pil_I16_{w}x{h}.tif"
            Image.fromarray(g.astype(np.uint16), "I;16").save(p(n))
            add(n, expect="scale16")

    # CIELab (PIL 'LAB', converted to RGB by littleCMS): resized and not
    for (lw, lh) in ((97, 61), (224, 240), (240, 224)):
        lab = Image.fromarray(gen_images.content(lw, lh, lw + 5), "RGB").convert("LAB")
        lab.save(p(f"pil_lab_{lw}x{lh}.tif"))
        add(f"pil_lab_{lw}x{lh}.tif")
    # multi-page (PIL save_all): three pages of different modes and sizes
    pages = [Image.fromarray(gen_images.content(120, 90, 7), "RGB"),
             Image.fromarray(gen_images.content(64, 300, 8), "RGB").convert("L"),
             gen_images.to_palette(gen_images.content(230, 231, 9), 17, 9)]
    pages[0].save(p("pil_multipage.tif"), save_all=True, append_images=pages[1:], compression="tiff_lzw")
    for k in range(3):
        add("pil_multipage.tif", page=k)
    add("pil_multipage.tif", page=3, expect="refuse")

    # ---- tifffile: layouts PIL's writer does not make ----
    if tifffile is not None:
        w, h = 173, 241
        c = gen_images.content(w, h, 31)
        a = gen_images.alpha(w, h, 31)
        gray = np.array(Image.fromarray(c).convert("L"))

        def tw(name, data, expect="pil", **kw):
            tifffile.imwrite(p(name), data, **kw)
            add(name, expect)

        for be in (False, True):
            bo = ">" if be else "<"
            e = "be" if be else "le"
            tw(f"tf_rgb_tiled_{e}.tif", c, byteorder=bo, tile=(64, 48), photometric="rgb")
            tw(f"tf_rgb_planar_{e}.tif", np.moveaxis(c, -1, 0).copy(), byteorder=bo, photometric="rgb",
               planarconfig="separate")
            tw(f"tf_rgb_planar_tiled_{e}.tif", np.moveaxis(c, -1, 0).copy(), byteorder=bo, photometric="rgb",
               planarconfig="separate", tile=(32, 32), compression="zlib")
            tw(f"tf_gray_tiled_zlib_{e}.tif", gray, byteorder=bo, tile=(16, 16), photometric="minisblack",
               compression="zlib")
            tw(f"tf_gray_predictor_{e}.tif", gray, byteorder=bo, photometric="minisblack",
               compression="zlib", predictor=True, rowsperstrip=7)
            tw(f"tf_rgb_predictor_{e}.tif", c, byteorder=bo, photometric="rgb", compression="zlib",
               predictor=True, rowsperstrip=5)
            tw(f"tf_rgba_unassoc_{e}.tif", np.dstack([c, a]), byteorder=bo, photometric="rgb",
               extrasamples=["unassalpha"])
            tw(f"tf_rgba_assoc_{e}.tif", np.dstack([c, a]), byteorder=bo, photometric="rgb",
               extrasamples=["assocalpha"])
            tw(f"tf_rgbx_{e}.tif", np.dstack([c, a]), byteorder=bo, photometric="rgb",
               extrasamples=["unspecified"])
            tw(f"tf_rgb16_{e}.tif", c.astype(np.uint16) * 257 + 3, byteorder=bo, photometric="rgb")
            tw(f"tf_rgba16_{e}.tif", np.dstack([c, a]).astype(np.uint16) * 257, byteorder=bo, photometric="rgb",
               extrasamples=["unassalpha"])
            tw(f"tf_la_{e}.tif", np.dstack([gray, a]), byteorder=bo, photometric="minisblack",
               extrasamples=["unassalpha"])
            tw(f"tf_cmyk_{e}.tif", np.array(Image.fromarray(c).convert("CMYK")), byteorder=bo,
               photometric="separated")
            tw(f"tf_miniswhite_{e}.tif", gray, byteorder=bo, photometric="miniswhite")
            g16 = (gray.astype(np.uint16) * 13 + 500)
            # 16-bit gray: (II, 0|1) and (MM, 1) open as I;16 in PIL; (MM, 0) does not
            tw(f"tf_gray16_{e}.tif", g16, byteorder=bo, photometric="minisblack", expect="scale16")
            tw(f"tf_gray16_miniswhite_{e}.tif", g16, byteorder=bo, photometric="miniswhite",
               expect="refuse" if be else "scale16")
            tw(f"tf_gray16_tiled_deflate_{e}.tif", g16, byteorder=bo, photometric="minisblack", tile=(32, 32),
               compression="zlib", expect="scale16")
            for bits in (1, 2, 4):
                v = (gray >> (8 - bits)).astype(np.uint8)
                write_packed_tiff(p(f"hw_gray{bits}bit_{e}.tif"), v, bits, 1, be)
                add(f"hw_gray{bits}bit_{e}.tif")
                write_packed_tiff(p(f"hw_gray{bits}bit_mw_{e}.tif"), v, bits, 0, be)
                add(f"hw_gray{bits}bit_mw_{e}.tif")
                pal = np.random.default_rng(bits).integers(0, 65536, (3, 1 << bits)).astype(np.uint16)
                write_packed_tiff(p(f"hw_pal{bits}bit_{e}.tif"), v, bits, 3, be, colormap=pal)
                add(f"hw_pal{bits}bit_{e}.tif")
            pal8 = np.random.default_rng(8).integers(0, 65536, (3, 256)).astype(np.uint16)
            tw(f"tf_pal8_tiled_{e}.tif", gray, byteorder=bo, photometric="palette", colormap=pal8, tile=(32, 16))
            tw(f"tf_bilevel_tiled_{e}.tif", gray > 128, byteorder=bo, photometric="minisblack",
               tile=(16, 32))
            for orient in (2, 3, 4, 5, 6, 7, 8):
                tw(f"tf_orient{orient}_{e}.tif", c, byteorder=bo, photometric="rgb",
                   extratags=[(274, "H", 1, orient, True)])
        # 12-bit gray, little-endian (PIL's I;12)
        write_packed_tiff(p("hw_gray12.tif"), gray.astype(np.uint16) * 16 + 7, 12, 1)
        add("hw_gray12.tif", expect="scale16")
        write_packed_tiff(p("hw_gray12_be.tif"), gray.astype(np.uint16) * 16 + 7, 12, 1, True)
        add("hw_gray12_be.tif", expect="refuse")
        # (JPEG and LZW need imagecodecs, which Debian lacks: tiffcp writes those below)
        # palette + alpha ('PA'): resized (PIL shows the resized indices as gray) and not
        for (pw, ph) in ((224, 224), (224, 300), (57, 41)):
            pim = gen_images.to_palette(gen_images.content(pw, ph, pw), 256, pw)
            pa = Image.merge("PA", (pim, Image.fromarray(gen_images.alpha(pw, ph, 3))))
            pa.putpalette(pim.getpalette())
            pa.save(p(f"pil_pa_{pw}x{ph}.tif"), compression="tiff_lzw")
            add(f"pil_pa_{pw}x{ph}.tif")
        # signed 16/32-bit, unsigned 32-bit, float gray: PIL 'I' and 'F' (clipped by PIL)
        tw("tf_int16.tif", (gray.astype(np.int16) * 3 - 200), photometric="minisblack")
        tw("tf_int32_be.tif", (gray.astype(np.int32) * 2 - 100), photometric="minisblack", byteorder=">")
        tw("tf_uint32.tif", gray.astype(np.uint32) + 3, photometric="minisblack")
        # values near int32's limits: the bicubic overshoot leaves int32 (Pillow's cast gives
        # INT32_MIN there on x86-64, and so must we); values over 2^31 read as negative
        edge = np.where((np.indices(gray.shape).sum(0) // 3) % 2 == 0, 0x7FFFFFF0, 5).astype(np.uint32)
        tw("tf_uint32_limits.tif", edge, photometric="minisblack")
        tw("tf_int32_limits.tif", np.where(gray > 128, 2**31 - 9, -(2**31) + 9).astype(np.int32),
           photometric="minisblack")
        tw("tf_uint32_high.tif", gray.astype(np.uint32) * 16777216 + 7, photometric="minisblack")
        tw("tf_float32.tif", gray.astype(np.float32) * 1.5 - 20.25, photometric="minisblack")
        tw("tf_float32_be_tiled.tif", gray.astype(np.float32) / 3, photometric="minisblack", byteorder=">",
           tile=(32, 32))
        tw("tf_float32_224.tif", gray[:224, :224].astype(np.float32) * 1.1, photometric="minisblack")
        # multi-page with different sizes and layouts
        with tifffile.TiffWriter(p("tf_multipage.tif")) as t:
            t.write(c, photometric="rgb", compression="zlib")
            t.write(gray[:100, :50], photometric="minisblack")
            t.write(np.dstack([c, a]), photometric="rgb", extrasamples=["unassalpha"], tile=(32, 32))
        for k in range(3):
            add("tf_multipage.tif", page=k)
        # files PIL refuses or cannot crop: signed, float, 32-bit, LAB, palette + alpha
        tw("tf_uint32_be.tif", gray.astype(np.uint32), photometric="minisblack", byteorder=">", expect="refuse")
        tw("tf_float64.tif", gray.astype(np.float64), photometric="minisblack", expect="refuse")
        tw("tf_rgb_float.tif", c.astype(np.float32), photometric="rgb", expect="refuse")
        tw("tf_two_gray_samples.tif", np.dstack([gray, gray]), photometric="minisblack",
           extrasamples=["unspecified"], expect="refuse")

    # ---- tiffcp: re-encode a PIL file ----
    tiffcp = shutil.which("tiffcp")
    if tiffcp:
        src = p("pil_RGB_150x230_raw.tif")
        for tag, args in [("tiles_lzw", ["-t", "-w", "32", "-l", "48", "-c", "lzw"]),
                          ("strips1_zip", ["-r", "1", "-c", "zip:p9"]),
                          ("packbits", ["-c", "packbits"]), ("jpeg", ["-c", "jpeg:90"]),
                          ("jpeg_rgb", ["-c", "jpeg:r:90"]), ("planar", ["-p", "separate", "-c", "lzw"]),
                          ("jpeg_tiles", ["-t", "-w", "64", "-l", "64", "-c", "jpeg:75"]),
                          ("bigendian", ["-B"]), ("bigtiff", ["-8", "-c", "zip"])]:
            n = f"tiffcp_{tag}.tif"
            if subprocess.run([tiffcp] + args + [src, p(n)], capture_output=True).returncode == 0:
                add(n)
        # tifffile's files re-encoded: LZW with tiles, JPEG gray, 16-bit LZW big-endian
        for src, tag, args, expect in [
                ("pil_L_97x61_raw.tif", "gray_tiles", ["-t", "-w", "16", "-l", "16", "-c", "zip"], "pil"),
                ("pil_L_150x230_raw.tif", "gray_jpeg", ["-c", "jpeg:90"], "pil"),
                ("tf_rgba_assoc_le.tif", "rgba_assoc_lzw_tiles", ["-t", "-c", "lzw"], "pil"),
                ("tf_gray16_be.tif", "gray16_lzw_be", ["-c", "lzw"], "scale16"),
                ("hw_pal4bit_le.tif", "pal4_lzw", ["-c", "lzw"], "pil"),
                ("tf_cmyk_le.tif", "cmyk_lzw_tiles", ["-t", "-w", "16", "-l", "32", "-c", "lzw"], "pil"),
                ("tf_multipage.tif", "multipage_lzw", ["-c", "lzw"], "pil")]:
            if not os.path.exists(p(src)):
                continue
            n = f"tiffcp_{tag}.tif"
            if subprocess.run([tiffcp] + args + [p(src), p(n)], capture_output=True).returncode == 0:
                add(n, expect)
    # truncated / corrupt copies: whatever PIL says, we must not crash, and a file PIL refuses
    # must be refused
    for base in ("pil_RGB_150x230_tiff_lzw.tif", "pil_L_150x230_raw.tif"):
        data = open(p(base), "rb").read()
        for k, cut in enumerate((8, len(data) // 3, len(data) - 5)):
            n = f"cut{k}_{base}"
            open(p(n), "wb").write(data[:cut])
            add(n, expect="either")
    return cases


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "tiffs"
    for c in generate(out):
        print(c["expect"], c["page"], c["path"])
