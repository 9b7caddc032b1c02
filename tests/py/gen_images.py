"""gen_images.py - test images for the PIL parity tests (tests/py/test_image_pixels.py).

generate(outdir, jpeg_only=False) writes images covering every PIL mode, every supported format
(PIL's own writers plus small hand-written ones for the variants PIL cannot save: 2/4-bit and
16-bit PNG colour types, interlaced PNG, 4/16/32-bit and RLE BMP, 16-bit / right-to-left /
RLE TGA, GIF frames smaller than the screen, plain and odd-maxval PNM) and odd sizes, and returns
a list of cases: dict(name, path, jpeg (bool), pil16 (bool)).
Run directly to write the images into a directory: gen_images.py OUTDIR
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

SIZES = [(150, 230), (640, 427), (1, 1), (3, 500), (500, 3), (224, 224), (224, 300), (300, 224),
         (225, 225), (97, 61), (2, 2)]
SMALL_SIZES = [(150, 230), (300, 224), (1, 1), (5, 400), (97, 61)]


def content(w, h, seed):
    """RGB test content: gradients, a sinusoid, noise, hard edges and saturated blocks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x * (255 / max(w - 1, 1)), y * (255 / max(h - 1, 1)),
                    128 + 127 * np.sin((x + 2 * y) / 7.0)], -1)
    img += rng.integers(-50, 51, img.shape, dtype=np.int16)
    blocks = ((x // 13 + y // 11) % 7).astype(np.int32)
    img[blocks == 0] = 255
    img[blocks == 3] = 0
    img[blocks == 5] = [255, 0, 40]
    return np.clip(img, 0, 255).astype(np.uint8)


def to_palette(c, n, seed, bits=None):
    """A 'P' image of n colours: a fixed colour cube mapped to n shuffled entries (fast, unlike
    Image.quantize), so that palettes are never a gray ramp."""
    cube = (c[..., 0] // 52).astype(np.int32) * 25 + (c[..., 1] // 52) * 5 + (c[..., 2] // 52)  # 0..124
    perm = np.random.default_rng(seed + 7).permutation(125)
    idx = (perm[cube] % n).astype(np.uint8)
    pal = np.random.default_rng(seed + 8).integers(0, 256, (n, 3)).astype(np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(pal.tobytes())
    return im


def alpha(w, h, seed):
    """Alpha with fully opaque, fully transparent and intermediate regions."""
    rng = np.random.default_rng(seed + 1)
    y, x = np.mgrid[0:h, 0:w]
    a = rng.integers(0, 256, (h, w))
    a[(x // 9 + y // 7) % 4 == 0] = 255
    a[(x // 9 + y // 7) % 4 == 1] = 0
    return a.astype(np.uint8)


def gray16(w, h, seed):
    rng = np.random.default_rng(seed + 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    v = x * 65535 / max(w - 1, 1) + rng.normal(0, 2000, (h, w))
    v[(y.astype(int) // 5) % 3 == 0] = (x * 600 / max(w - 1, 1))[(y.astype(int) // 5) % 3 == 0]  # near 255
    return np.clip(v, 0, 65535).astype(np.uint16)


# ---- PNG writer (any colour type / depth, all five filters, optional Adam7) ----------------------

def _chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


def _pack_row(samples, depth):
    """samples: 1-D int array of one row (channels interleaved)."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    v = np.zeros(-(-len(samples) // per) * per, np.uint16)
    v[:len(samples)] = samples
    v = v.reshape(-1, per)
    shifts = np.array([8 - depth * (k + 1) for k in range(per)], np.uint16)
    return (v << shifts).sum(axis=1).astype(np.uint8).tobytes()


def _filter(row, prev, ftype, bpp):
    """PNG filter of one row of bytes (vectorised: the filters use the unfiltered bytes)."""
    x = np.frombuffer(row, np.uint8).astype(np.int32)
    b = np.frombuffer(prev, np.uint8).astype(np.int32) if prev is not None else np.zeros_like(x)
    a = np.concatenate([np.zeros(min(bpp, len(x)), np.int32), x[:-bpp] if len(x) > bpp else np.zeros(0, np.int32)])
    c = np.concatenate([np.zeros(min(bpp, len(x)), np.int32), b[:-bpp] if len(x) > bpp else np.zeros(0, np.int32)])
    if ftype == 0:
        p = np.zeros_like(x)
    elif ftype == 1:
        p = a
    elif ftype == 2:
        p = b
    elif ftype == 3:
        p = (a + b) >> 1
    else:
        pp = a + b - c
        pa, pb, pc = np.abs(pp - a), np.abs(pp - b), np.abs(pp - c)
        p = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return ((x - p) & 255).astype(np.uint8).tobytes()


def write_png(path, arr, ctype, depth, palette=None, trns=None, interlace=False):
    """arr: (h, w, channels) integer samples at the given depth."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, ch = arr.shape
    bpp = max(1, depth * ch // 8)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2)] if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        prev = None
        for j, r in enumerate(sub):
            row = _pack_row(r.reshape(-1), depth)
            ft = j % 5
            raw += bytes([ft]) + _filter(row, prev, ft, bpp)
            prev = row
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace)))
    if palette is not None:
        data += _chunk(b"PLTE", bytes(palette))
    if trns is not None:
        data += _chunk(b"tRNS", bytes(trns))
    z = zlib.compress(bytes(raw), 6)
    for k in range(0, len(z), 1000):  # several IDAT chunks
        data += _chunk(b"IDAT", z[k:k + 1000])
    data += _chunk(b"IEND", b"")
    open(path, "wb").write(data)


# ---- BMP writer ----------------------------------------------------------------------------------

def write_bmp(path, rows, w, h, bits, palette=b"", comp=0, masks=None, top_down=False, header=40, data=None):
    """rows: list of h byte strings (top row first), unpadded; written bottom-up unless top_down."""
    if data is None:
        stride = ((w * bits + 31) >> 3) & ~3
        order = rows if top_down else rows[::-1]
        data = b"".join(r + b"\0" * (stride - len(r)) for r in order)
    extra = b""
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        hh = -h if top_down else h
        info = struct.pack("<IiiHHIIiiII", header, w, hh, 1, bits, comp, len(data), 2835, 2835,
                           len(palette) // (3 if header == 12 else 4), 0)
        if header >= 56 and masks:
            info += struct.pack("<IIII", *masks)
        elif masks:
            extra = struct.pack("<III", *masks[:3])
        info += b"\0" * (header - len(info))
    off = 14 + len(info) + len(extra) + len(palette)
    open(path, "wb").write(b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + extra + palette + data)


def bmp_rle8(idx):
    """RLE8 of index rows (top row first, written bottom-up): runs of >= 2, literals of >= 3."""
    out = bytearray()
    for r in idx[::-1]:
        r = bytes(r)
        i = 0
        while i < len(r):
            j = i + 1
            while j < len(r) and r[j] == r[i] and j - i < 255:
                j += 1
            if j - i >= 2:
                out += bytes([j - i, r[i]])
                i = j
                continue
            k = i + 1  # literal up to the next pair of equal pixels
            while k < len(r) and k - i < 255 and not (k + 1 < len(r) and r[k] == r[k + 1]):
                k += 1
            if k - i >= 3:
                out += bytes([0, k - i]) + r[i:k] + (b"\0" if (k - i) % 2 else b"")
            else:
                for v in r[i:k]:
                    out += bytes([1, v])
            i = k
        out += b"\0\0"
    return bytes(out + b"\0\1")


def bmp_rle4(idx):
    """RLE4: encoded runs of alternating nibble pairs (absolute mode avoided: PIL drops pixels)."""
    out = bytearray()
    for r in idx[::-1]:
        r = list(r)
        i = 0
        while i < len(r):
            a = r[i]
            b = r[i + 1] if i + 1 < len(r) else 0
            n = 1
            while i + n < len(r) and n < 255 and r[i + n] == (a if n % 2 == 0 else b):
                n += 1
            out += bytes([n, (a << 4) | b])
            i += n
        out += b"\0\0"
    return bytes(out + b"\0\1")


def pack4(r):
    """4-bit indices, high nibble first."""
    r = np.append(np.asarray(r, np.uint8), np.zeros(len(r) % 2, np.uint8))
    return bytes((r[0::2] << 4) | r[1::2])


# ---- TGA writer ----------------------------------------------------------------------------------

def write_tga(path, w, h, itype, depth, pix_rows, cmap=None, cm_first=0, cm_depth=24, flags=0, rle=False,
              id_field=b"xy"):
    """pix_rows: list of h byte strings in file order."""
    hdr = struct.pack("<BBBHHBHHHHBB", len(id_field), 1 if cmap is not None else 0, itype | (8 if rle else 0),
                      cm_first, (len(cmap) // (cm_depth // 8)) if cmap is not None else 0,
                      cm_depth if cmap is not None else 0, 0, 0, w, h, depth, flags)
    body = b""
    if rle:  # literal packets spanning rows (allowed by PIL) and runs within rows
        px = depth // 8
        flat = b"".join(pix_rows)
        i = 0
        n_px = len(flat) // px
        row_px = w
        while i < n_px:
            in_row = row_px - (i % row_px)
            j = i
            while j + 1 < n_px and j - i < 127 and j + 1 - i < in_row and flat[(j + 1) * px:(j + 2) * px] == flat[i * px:(i + 1) * px]:
                j += 1
            if j > i:
                body += bytes([0x80 | (j - i)]) + flat[i * px:(i + 1) * px]
                i = j + 1
            else:
                n = min(128, n_px - i, 37)  # literal packets may cross rows
                body += bytes([n - 1]) + flat[i * px:(i + n) * px]
                i += n
    else:
        body = b"".join(pix_rows)
    open(path, "wb").write(hdr + id_field + (bytes(cmap) if cmap is not None else b"") + body)


# ---- GIF writer (literal codes only, clearing before the code size grows) ------------------------

def write_gif(path, sw, sh, frame, x0, y0, palette, local=None, transparent=None, interlace=False, bits=8,
              version=b"GIF89a"):
    fh, fw = frame.shape
    gct = (0x80 | (bits - 1)) if palette is not None else 0
    out = bytearray(version + struct.pack("<HHBBB", sw, sh, gct, 0, 0))
    if palette is not None:
        out += bytes(palette).ljust(3 << bits, b"\0")
    if transparent is not None:
        out += b"\x21\xf9\x04" + bytes([1]) + b"\0\0" + bytes([transparent]) + b"\0"
    out += b"\x21\xfe\x05hello\x00"  # a comment
    flags = (0x40 if interlace else 0)
    if local is not None:
        flags |= 0x80 | (bits - 1)
    out += b"," + struct.pack("<HHHHB", x0, y0, fw, fh, flags)
    if local is not None:
        out += bytes(local).ljust(3 << bits, b"\0")
    rows = list(range(fh))
    if interlace:
        rows = list(range(0, fh, 8)) + list(range(4, fh, 8)) + list(range(2, fh, 4)) + list(range(1, fh, 2))
    idx = np.concatenate([frame[r] for r in rows]) if fh else np.zeros(0, np.uint8)
    min_size = max(2, bits)
    clear, end = 1 << min_size, (1 << min_size) + 1
    size = min_size + 1
    codes, since_clear = [clear], 0
    for v in idx:
        if since_clear >= (1 << size) - (clear + 2) - 1:
            codes.append(clear)
            since_clear = 0
        codes.append(int(v))
        since_clear += 1
    codes.append(end)
    acc, nbits, stream = 0, 0, bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += size
        while nbits >= 8:
            stream.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        stream.append(acc & 255)
    out.append(min_size)
    for k in range(0, len(stream), 255):
        blk = stream[k:k + 255]
        out += bytes([len(blk)]) + blk
    out += b"\0;"
    open(path, "wb").write(out)


# ---- the cases -----------------------------------------------------------------------------------

def generate(outdir, jpeg_only=False):
    os.makedirs(outdir, exist_ok=True)
    cases = []

    def add(name, pil16=False, jpeg=False):
        cases.append(dict(name=name, path=os.path.join(outdir, name), jpeg=jpeg, pil16=pil16))
        return os.path.join(outdir, name)

    seed = 0
    # JPEG (PIL/libjpeg-turbo encoder): subsampling, progressive, gray, CMYK
    for (w, h) in SIZES + [(4000, 3000)]:
        seed += 1
        rgb = Image.fromarray(content(w, h, seed))
        rgb.save(add(f"jpeg_420_{w}x{h}.jpg", jpeg=True), quality=90, subsampling=2)
        if (w, h) in SMALL_SIZES + [(640, 427)]:
            rgb.save(add(f"jpeg_422_{w}x{h}.jpg", jpeg=True), quality=85, subsampling=1)
            rgb.save(add(f"jpeg_444_{w}x{h}.jpg", jpeg=True), quality=95, subsampling=0)
            rgb.save(add(f"jpeg_prog_{w}x{h}.jpg", jpeg=True), quality=80, progressive=True)
            rgb.convert("L").save(add(f"jpeg_gray_{w}x{h}.jpg", jpeg=True), quality=90)
            rgb.convert("CMYK").save(add(f"jpeg_cmyk_{w}x{h}.jpg", jpeg=True), quality=90)
            rgb.save(add(f"jpeg_opt_{w}x{h}.jpg", jpeg=True), quality=75, optimize=True)
    if jpeg_only:
        return cases

    for (w, h) in SIZES:
        seed += 1
        c = content(w, h, seed)
        a = alpha(w, h, seed)
        rgb = Image.fromarray(c)
        rgba = Image.fromarray(np.dstack([c, a]))
        gray = rgb.convert("L")
        la = Image.fromarray(np.dstack([np.array(gray), a]), "LA")
        pal = to_palette(c, 120, seed)
        tag = f"{w}x{h}"
        # PNG through PIL: every mode
        rgb.save(add(f"png_rgb_{tag}.png"))
        rgba.save(add(f"png_rgba_{tag}.png"))
        gray.save(add(f"png_l_{tag}.png"))
        la.save(add(f"png_la_{tag}.png"))
        gray.convert("1").save(add(f"png_1_{tag}.png"))
        pal.save(add(f"png_p_{tag}.png"))
        pal.save(add(f"png_ptrns_{tag}.png"), transparency=3)
        pal.save(add(f"png_ptrnsbytes_{tag}.png"), transparency=bytes(range(0, 240, 2)))
        to_palette(c, 3, seed).save(add(f"png_p2bit_{tag}.png"))
        to_palette(c, 12, seed).save(add(f"png_p4bit_{tag}.png"))
        to_palette(c, 2, seed).save(add(f"png_p1bit_{tag}.png"))
        gray.save(add(f"png_ltrns_{tag}.png"), transparency=17)
        rgb.save(add(f"png_rgbtrns_{tag}.png"), transparency=(255, 255, 255))
        g16 = gray16(w, h, seed)
        Image.fromarray(g16).save(add(f"png_i16_{tag}.png"))
        Image.fromarray(g16).save(add(f"png_i16pil_{tag}.png", pil16=True))
        # PNG variants PIL cannot write: 2/4-bit gray, 16-bit colour types, interlaced, short PLTE
        g = np.array(gray)
        write_png(add(f"png_l2_{tag}.png"), g >> 6, 0, 2)
        write_png(add(f"png_l4i_{tag}.png"), g >> 4, 0, 4, interlace=True)
        c16 = c.astype(np.uint32) * 256 + np.random.default_rng(seed).integers(0, 256, c.shape)
        write_png(add(f"png_rgb16_{tag}.png"), c16, 2, 16)
        write_png(add(f"png_rgba16i_{tag}.png"), np.dstack([c16, a.astype(np.uint32) * 257]), 6, 16, interlace=True)
        write_png(add(f"png_la16_{tag}.png"), np.dstack([g.astype(np.uint32) * 256 + 3, a.astype(np.uint32) * 256]), 4, 16)
        write_png(add(f"png_rgbi_{tag}.png"), c, 2, 8, interlace=True)
        write_png(add(f"png_lai_{tag}.png"), np.dstack([g, a]), 4, 8, interlace=True)
        write_png(add(f"png_i16i_{tag}.png", pil16=True), g16, 0, 16, interlace=True)
        idx = (np.array(pal) % 40).astype(np.uint8)
        short_pal = bytes(np.random.default_rng(seed).integers(0, 256, 30 * 3).astype(np.uint8))
        write_png(add(f"png_pshort_{tag}.png"), idx, 3, 8, palette=short_pal)  # indices 30..39: gray ramp
        write_png(add(f"png_p4i_{tag}.png"), idx % 16, 3, 4, palette=short_pal[:48], interlace=True)
        # BMP through PIL and by hand
        rgb.save(add(f"bmp_rgb_{tag}.bmp"))
        rgba.save(add(f"bmp_rgba_{tag}.bmp"))  # PIL writes 32-bit BI_RGB -> opens as RGB
        gray.save(add(f"bmp_l_{tag}.bmp"))
        gray.convert("1").save(add(f"bmp_1_{tag}.bmp"))
        pal.save(add(f"bmp_p_{tag}.bmp"))
        pal_bgrx = b"".join(bytes([p[2], p[1], p[0], 0]) for p in np.array(pal.getpalette()[:600]).reshape(-1, 3))
        pidx = np.array(pal)
        i4 = (pidx % 16).astype(np.uint8)
        write_bmp(add(f"bmp_p4_{tag}.bmp"), [pack4(r) for r in i4],
                  w, h, 4, palette=pal_bgrx[:64])
        write_bmp(add(f"bmp_p8td_{tag}.bmp"), [bytes(r) for r in pidx], w, h, 8, palette=pal_bgrx, top_down=True)
        write_bmp(add(f"bmp_p8os2_{tag}.bmp"), [bytes(r) for r in pidx], w, h, 8, header=12,
                  palette=b"".join(pal_bgrx[k:k + 3] for k in range(0, len(pal_bgrx), 4)).ljust(768, b"\0"))
        write_bmp(add(f"bmp_rle8_{tag}.bmp"), None, w, h, 8, palette=pal_bgrx, comp=1, data=bmp_rle8(pidx))
        write_bmp(add(f"bmp_rle4_{tag}.bmp"), None, w, h, 4, palette=pal_bgrx[:64], comp=2, data=bmp_rle4(i4))
        v555 = ((c[..., 0] >> 3).astype(np.uint16) << 10) | ((c[..., 1] >> 3).astype(np.uint16) << 5) | (c[..., 2] >> 3)
        v565 = ((c[..., 0] >> 3).astype(np.uint16) << 11) | ((c[..., 1] >> 2).astype(np.uint16) << 5) | (c[..., 2] >> 3)
        write_bmp(add(f"bmp_555_{tag}.bmp"), [r.astype("<u2").tobytes() for r in v555], w, h, 16)
        write_bmp(add(f"bmp_565_{tag}.bmp"), [r.astype("<u2").tobytes() for r in v565], w, h, 16, comp=3,
                  masks=(0xF800, 0x7E0, 0x1F, 0))
        bgra = np.dstack([c[..., 2], c[..., 1], c[..., 0], a])
        write_bmp(add(f"bmp_bgra_{tag}.bmp"), [r.tobytes() for r in bgra], w, h, 32, comp=3,
                  masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000), header=124)
        write_bmp(add(f"bmp_xbgr_{tag}.bmp"), [np.dstack([a, c[..., 2], c[..., 1], c[..., 0]])[k].tobytes() for k in range(h)],
                  w, h, 32, comp=3, masks=(0xFF000000, 0xFF0000, 0xFF00, 0))
        # TGA through PIL and by hand
        for m, im in (("rgb", rgb), ("rgba", rgba), ("l", gray), ("la", la), ("p", pal)):
            im.save(add(f"tga_{m}_{tag}.tga"))
            im.save(add(f"tga_{m}rle_{tag}.tga"), compression="tga_rle")
        gray.convert("1").save(add(f"tga_1_{tag}.tga"))
        t555 = [r.astype("<u2").tobytes() for r in v555]
        write_tga(add(f"tga_555_{tag}.tga"), w, h, 2, 16, t555[::-1])
        write_tga(add(f"tga_555rle_{tag}.tga"), w, h, 2, 16, t555, flags=0x20, rle=True)
        bgr = np.dstack([c[..., 2], c[..., 1], c[..., 0]])
        write_tga(add(f"tga_rgbmirror_{tag}.tga"), w, h, 2, 24, [r[::-1].tobytes() for r in bgr], flags=0x30)
        cm16 = np.array(pal.getpalette()[:120]).reshape(-1, 3) >> 3
        cm16 = ((cm16[:, 0] << 10) | (cm16[:, 1] << 5) | cm16[:, 2]).astype("<u2").tobytes()
        write_tga(add(f"tga_pcm16_{tag}.tga"), w, h, 1, 8, [bytes((r % 40) + 5) for r in pidx][::-1], cmap=cm16,
                  cm_first=5, cm_depth=16)
        cm24 = b"".join(bytes([p[2], p[1], p[0]]) for p in np.array(pal.getpalette()[:600]).reshape(-1, 3))
        write_tga(add(f"tga_pcm24rle_{tag}.tga"), w, h, 1, 8, [bytes(r) for r in pidx], cmap=cm24, cm_depth=24,
                  flags=0x20, rle=True)  # (PIL 9.4 cannot load 32-bit colour maps)
        # GIF through PIL and by hand
        pal.save(add(f"gif_p_{tag}.gif"))
        gray.save(add(f"gif_l_{tag}.gif"))
        pal.save(add(f"gif_ptrns_{tag}.gif"), transparency=5)
        pbytes = pal.getpalette()[:768]
        fr = pidx[: max(1, h * 2 // 3), : max(1, w * 3 // 4)]
        write_gif(add(f"gif_frame_{tag}.gif"), w, h, fr, min(w - fr.shape[1], 3), min(h - fr.shape[0], 2), pbytes,
                  transparent=7)
        write_gif(add(f"gif_local_{tag}.gif"), max(1, w // 2), max(1, h // 2), pidx, 0, 0, None, local=pbytes,
                  interlace=True, version=b"GIF87a")
        write_gif(add(f"gif_ramp_{tag}.gif"), w, h, pidx, 0, 0, bytes(np.repeat(np.arange(256), 3).astype(np.uint8)),
                  interlace=True)
        write_gif(add(f"gif_4bit_{tag}.gif"), w, h, (pidx % 16).astype(np.uint8), 0, 0, pbytes[:48], bits=4)
        # PNM through PIL and by hand
        rgb.save(add(f"pnm_rgb_{tag}.ppm"))
        gray.save(add(f"pnm_l_{tag}.pgm"))
        gray.convert("1").save(add(f"pnm_1_{tag}.pbm"))
        open(add(f"pnm_p6max1000_{tag}.ppm"), "wb").write(
            f"P6\n# comment\n{w} {h}\n1000\n".encode() + (c.astype(np.uint32) * 1000 // 255).astype(">u2").tobytes())
        open(add(f"pnm_p5max15_{tag}.pgm"), "wb").write(f"P5 {w}\t{h} 15\r".encode() + (g >> 4).tobytes())
        open(add(f"pnm_p5max65535_{tag}.pgm", pil16=True), "wb").write(f"P5\n{w} {h}\n65535\n".encode() + g16.astype(">u2").tobytes())
        open(add(f"pnm_p5max4000_{tag}.pgm"), "wb").write(f"P5\n{w} {h}\n4000\n".encode() + (g16 // 17).astype(">u2").tobytes())
        open(add(f"pnm_p2_{tag}.pgm"), "wb").write(f"P2\n{w} {h}\n# c\n100\n".encode() +
                                                   " ".join(str(v * 100 // 255) for v in g.reshape(-1)).encode() + b"\n")
        open(add(f"pnm_p3_{tag}.ppm"), "wb").write(f"P3\n{w} {h}\n255\n".encode() +
                                                   "\n".join(" ".join(map(str, r.reshape(-1))) for r in c).encode() + b"\n")
        open(add(f"pnm_p1_{tag}.pbm"), "wb").write(f"P1\n{w} {h}\n".encode() +
                                                   "\n".join("".join("1" if v < 128 else "0" for v in r) for r in g).encode())
    # large lossless images
    for (w, h) in [(4000, 2999)]:
        seed += 1
        c = content(w, h, seed)
        Image.fromarray(c).save(add(f"png_rgb_{w}x{h}.png"), compress_level=1)
        Image.fromarray(np.dstack([c, alpha(w, h, seed)])).save(add(f"png_rgba_{w}x{h}.png"), compress_level=1)
        Image.fromarray(c).convert("L").save(add(f"png_l_{w}x{h}.png"), compress_level=1)
        to_palette(c, 64, seed).save(add(f"png_p_{w}x{h}.png"), compress_level=1)
        Image.fromarray(gray16(w, h, seed)).save(add(f"png_i16pil_{w}x{h}.png", pil16=True), compress_level=1)
    return cases


if __name__ == "__main__":
    cs = generate(sys.argv[1] if len(sys.argv) > 1 else "gen_images_out")
    print(len(cs), "images")
