#!/usr/bin/env python3
"""Writes the fuzz seed corpora under fuzz/corpus/ (committed; rerun only to regenerate them).

  loader/    micro.bmc, a complete valid .bmc model (format version 2) with microscopic widths
             (about 25 KB, so libFuzzer can mutate it whole; most of it is the zero padding of
             the Linear weights' 64-output panels), micro2_mlp.bmc (2 layers per tower, MLP
             text projection), plus truncated/edited variants
  image/     tiny PNG/BMP/GIF/TGA/PPM/PGM/JPEG files (a few hundred bytes), via PIL
  tiff/      tiny TIFFs of every layout lib/image_tiff.c reads (PIL, tifffile, tiffcp, and the
             hand-written 2/4/12-bit writer of tests/py/gen_tiffs.py), behind fuzz_tiff's option byte
  tokenize/  short texts: ASCII, accents, CJK, punctuation, control characters, invalid UTF-8
  cli/       argument vectors (NUL-separated) for fuzz_cli

The .bmc layout is docs/FORMAT.md / lib/format.h, written here independently of tools/convert.py
so that the seed does not depend on the converter. Usage: python3 fuzz/gen_seeds.py [outdir]
"""
import io
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import convert  # noqa: E402  (the converter's list of panel tensors and its panel layout)

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

F32, U8, U32 = 0, 64, 65


def micro_config(layers=1, mlp_proj=False):
    # image 4, patch 2 -> 4 patches; widths 2..4; linear (or MLP) text projection; 9-token vocabulary
    c = dict(image_size=4, patch_size=2, vision_width=4, vision_layers=1, vision_heads=2, vision_mlp=4,
             vision_ln_eps=1e-6, vocab_rows=9, max_positions=6, type_vocab=2, context_length=6,
             text_width=4, text_layers=1, text_heads=2, text_ffn=4, text_ln_eps=1e-12, text_proj_type=1,
             text_proj_hidden=0, text_pooler=1, embed_dim=2, image_resize=1, image_interp=1,
             vocab_size=9, lowercase=1, strip_accents=1, max_word_chars=100)
    c["vision_layers"] = c["text_layers"] = layers
    if mlp_proj:
        c["text_proj_type"], c["text_proj_hidden"] = 2, 3
    return c


def pack_config(c):
    b = struct.pack("<6I d", c["image_size"], c["patch_size"], c["vision_width"], c["vision_layers"],
                    c["vision_heads"], c["vision_mlp"], c["vision_ln_eps"])
    b += struct.pack("<8I d", c["vocab_rows"], c["max_positions"], c["type_vocab"], c["context_length"],
                     c["text_width"], c["text_layers"], c["text_heads"], c["text_ffn"], c["text_ln_eps"])
    b += struct.pack("<6I", c["text_proj_type"], c["text_proj_hidden"], c["text_pooler"], c["embed_dim"],
                     c["image_resize"], c["image_interp"])
    b += struct.pack("<6f", 0.48145466, 0.4578275, 0.40821073, 0.26862954, 0.26130258, 0.27577711)
    b += struct.pack("<9I", c["vocab_size"], 0, 1, 2, 3, 4, c["lowercase"], c["strip_accents"],
                     c["max_word_chars"])
    assert len(b) == 156, len(b)
    return b + bytes(256 - 156)


def tensors(c, vocab):
    vw, vm, tw, tf, e = c["vision_width"], c["vision_mlp"], c["text_width"], c["text_ffn"], c["embed_dim"]
    g, p = c["image_size"] // c["patch_size"], c["patch_size"]
    t = [("visual.trunk.cls_token", F32, (1, 1, vw)), ("visual.trunk.pos_embed", F32, (1, 1 + g * g, vw)),
         ("visual.trunk.patch_embed.proj.weight", F32, (vw, 3, p, p)),
         ("visual.trunk.patch_embed.proj.bias", F32, (vw,))]
    for i in range(c["vision_layers"]):
        f = "visual.trunk.blocks.%d." % i
        t += [(f + "norm1.weight", F32, (vw,)), (f + "norm1.bias", F32, (vw,)),
              (f + "attn.qkv.weight", F32, (3 * vw, vw)), (f + "attn.qkv.bias", F32, (3 * vw,)),
              (f + "attn.proj.weight", F32, (vw, vw)), (f + "attn.proj.bias", F32, (vw,)),
              (f + "norm2.weight", F32, (vw,)), (f + "norm2.bias", F32, (vw,)),
              (f + "mlp.fc1.weight", F32, (vm, vw)), (f + "mlp.fc1.bias", F32, (vm,)),
              (f + "mlp.fc2.weight", F32, (vw, vm)), (f + "mlp.fc2.bias", F32, (vw,))]
    t += [("visual.trunk.norm.weight", F32, (vw,)), ("visual.trunk.norm.bias", F32, (vw,)),
          ("visual.head.proj.weight", F32, (e, vw))]
    pre = "text.transformer."
    t += [(pre + "embeddings.word_embeddings.weight", F32, (c["vocab_rows"], tw)),
          (pre + "embeddings.position_embeddings.weight", F32, (c["max_positions"], tw)),
          (pre + "embeddings.token_type_embeddings.weight", F32, (c["type_vocab"], tw)),
          (pre + "embeddings.LayerNorm.weight", F32, (tw,)), (pre + "embeddings.LayerNorm.bias", F32, (tw,))]
    for i in range(c["text_layers"]):
        f = pre + "encoder.layer.%d." % i
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t += [(f + n + ".weight", F32, (tw, tw)), (f + n + ".bias", F32, (tw,))]
        t += [(f + "attention.output.LayerNorm.weight", F32, (tw,)),
              (f + "attention.output.LayerNorm.bias", F32, (tw,)),
              (f + "intermediate.dense.weight", F32, (tf, tw)), (f + "intermediate.dense.bias", F32, (tf,)),
              (f + "output.dense.weight", F32, (tw, tf)), (f + "output.dense.bias", F32, (tw,)),
              (f + "output.LayerNorm.weight", F32, (tw,)), (f + "output.LayerNorm.bias", F32, (tw,))]
    if c["text_proj_type"] == 2:
        t += [("text.proj.0.weight", F32, (c["text_proj_hidden"], tw)),
              ("text.proj.2.weight", F32, (e, c["text_proj_hidden"]))]
    else:
        t += [("text.proj.weight", F32, (e, tw))]
    t += [("logit_scale", F32, ())]
    blob = b"".join(vocab)
    offs = [0]
    for v in vocab:
        offs.append(offs[-1] + len(v))
    t += [("tokenizer.vocab.offsets", U32, (len(vocab) + 1,), struct.pack("<%dI" % len(offs), *offs)),
          ("tokenizer.vocab.bytes", U8, (len(blob),), blob)]
    return t


def data_for(name, dtype, shape, k):
    n = 1
    for d in shape:
        n *= d
    if name == "logit_scale":
        return struct.pack("<f", 4.6052)
    if name.endswith("LayerNorm.weight") or name.endswith("norm1.weight") or name.endswith("norm2.weight") \
            or name == "visual.trunk.norm.weight":
        return struct.pack("<%df" % n, *([1.0] * n))
    # small deterministic values
    return struct.pack("<%df" % n, *[((i * 7 + k * 13) % 17 - 8) / 16.0 for i in range(n)])


def build_bmc(c):
    vocab = [b"[PAD]", b"[UNK]", b"[CLS]", b"[SEP]", b"[MASK]", b"a", b"b", b"##c", b"."]
    ts = tensors(c, vocab)
    n = len(ts)
    dir_end = 512 + 160 * n
    data_offset = (dir_end + 4095) // 4096 * 4096
    pos = data_offset
    entries, chunks = [], []
    for k, t in enumerate(ts):
        name, dtype, shape = t[:3]
        data = t[3] if len(t) > 3 else data_for(name, dtype, shape, k)
        layout = 1 if convert.PANEL_TENSORS.match(name) else 0
        if layout:
            data = bytes(convert.to_panels(data, shape))
        pos = (pos + 63) // 64 * 64
        entries.append((name, dtype, shape, pos, data, layout))
        pos += len(data)
    file_size = pos
    out = bytearray(file_size)
    d = bytearray()
    for name, dtype, shape, off, data, layout in entries:
        nm = name.encode().ljust(96, b"\0")
        sh = list(shape) + [0] * (4 - len(shape))
        d += nm + struct.pack("<II4QQQII", dtype, len(shape), *sh, off, len(data), zlib.crc32(data), layout)
        out[off:off + len(data)] = data
    assert len(d) == 160 * n
    out[512:512 + len(d)] = d
    h = b"BMCLIP\0\1" + struct.pack("<IIII", 2, 512, 0x01020304, 64)
    h += struct.pack("<QQII QQ II", file_size, 512, n, 160, data_offset, file_size - data_offset, 0, zlib.crc32(d))
    assert len(h) == 72
    h += pack_config(c)
    h = h.ljust(508, b"\0")
    h += struct.pack("<I", zlib.crc32(h))
    out[:512] = h
    return bytes(out)


def write(sub, name, data):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def loader_seeds():
    m = build_bmc(micro_config())
    write("loader", "micro2_mlp.bmc", b"\x0f" + build_bmc(micro_config(layers=2, mlp_proj=True)))
    # fuzz_loader's first byte selects which fix-ups it applies (CRCs, sizes); 0x0f = all of them
    write("loader", "micro.bmc", b"\x0f" + m)
    write("loader", "micro_raw.bmc", b"\x00" + m)
    write("loader", "micro_verify.bmc", b"\x1f" + m)
    write("loader", "header_only.bmc", b"\x0f" + m[:512])
    write("loader", "truncated.bmc", b"\x0f" + m[:len(m) // 2])
    write("loader", "empty.bmc", b"\x0f")
    return m


def image_seeds():
    from PIL import Image
    img = Image.new("RGB", (5, 3))
    for x in range(5):
        for y in range(3):
            img.putpixel((x, y), (x * 50, y * 80, (x * y * 30) % 256))
    def save(name, im, fmt, **kw):
        # fuzz_image's first byte: 0 decode with BMC_DECODE_DEFAULT, 1 with BMC_DECODE_PIL_16BIT
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        write("image", name, b"\x00" + b.getvalue())
        if name.startswith("gray16"):
            write("image", "pil16_" + name, b"\x01" + b.getvalue())
    save("rgb.png", img, "PNG")
    save("gray.png", img.convert("L"), "PNG")
    save("la.png", img.convert("LA"), "PNG")
    save("rgba.png", img.convert("RGBA"), "PNG")
    save("pal.png", img.convert("P"), "PNG")
    save("gray16.png", img.convert("I").point(lambda v: v * 200), "PNG")
    save("bw.png", img.convert("1"), "PNG")
    save("interlaced.png", img, "PNG", optimize=False)
    save("rgb.bmp", img, "BMP")
    save("gray.bmp", img.convert("L"), "BMP")
    save("pal.gif", img.convert("P"), "GIF")
    save("rgb.tga", img, "TGA")
    save("rle.tga", img, "TGA", compression="tga_rle")
    save("rgb.ppm", img, "PPM")
    save("gray.pgm", img.convert("L"), "PPM")
    save("base.jpg", img, "JPEG", quality=90)
    save("prog.jpg", img, "JPEG", quality=75, progressive=True)
    save("gray.jpg", img.convert("L"), "JPEG")
    save("sub.jpg", img.resize((17, 9)), "JPEG", subsampling=2)
    # caller views (first byte 2): width, height u16, format u8, stride i16, pixels
    for name, (w, h, f, s) in {"view_rgb": (5, 3, 3, 16), "view_gray": (300, 2, 1, 300),
                               "view_rgba": (2, 400, 4, 8), "view_badstride": (4, 4, 3, 5)}.items():
        write("image", name, b"\x02" + struct.pack("<HHBh", w, h, f, s) + bytes(range(64)))


TEXTS = [
    "this is a photo of chest X-ray", "Adenocarcinoma histopathology, H&E stain.", "Café naïve résumé",
    "腫瘍 の 画像", "a  b\tc\nd", "don't-stop!!", "", " ", "[CLS] [SEP] [MASK]", "x" * 300,
    "&amp; &lt;b&gt; &#39;", "\u00e9\u0301\u200b\ufeff", "emoji \U0001F600 test",
]


def tiff_seeds():
    """fuzz_tiff: byte 0 = options (0: page 0, default window), then the file."""
    import shutil
    import subprocess
    import tempfile
    import numpy as np
    from PIL import Image
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
    import gen_tiffs
    import tifffile
    tmp = tempfile.mkdtemp()
    rng = np.random.default_rng(5)
    c = rng.integers(0, 256, (9, 17, 3)).astype(np.uint8)
    g = c[..., 0]
    rgb = Image.fromarray(c)

    def put(name, path, opt=0):
        write("tiff", name, bytes([opt]) + open(path, "rb").read())

    def pil(name, im, **kw):
        f = os.path.join(tmp, name)
        im.save(f, **kw)
        put(name, f)
        return f

    src = pil("rgb.tif", rgb)
    pil("rgb_lzw.tif", rgb, compression="tiff_lzw")
    pil("gray_deflate.tif", rgb.convert("L"), compression="tiff_adobe_deflate")
    pil("pal_packbits.tif", rgb.convert("P"), compression="packbits")
    pil("rgba.tif", rgb.convert("RGBA"), compression="tiff_lzw")
    pil("la.tif", rgb.convert("LA"))
    pil("cmyk.tif", rgb.convert("CMYK"))
    pil("bw_g4.tif", rgb.convert("1"), compression="group4")
    pil("gray_jpeg.tif", rgb.convert("L"), compression="jpeg")
    pil("lab.tif", rgb.convert("LAB"))
    pil("pa.tif", Image.merge("PA", (rgb.convert("P"), rgb.convert("L"))))
    f = os.path.join(tmp, "f32.tif")
    tifffile.imwrite(f, g.astype(np.float32) / 7, photometric="minisblack")
    put("float32.tif", f)
    put("float32_minmax.tif", f, 4)
    f = os.path.join(tmp, "multi.tif")
    rgb.save(f, save_all=True, append_images=[rgb.convert("L"), rgb.convert("P")])
    for k in range(3):
        put(f"multi_page{k}.tif", f, k)
    f = os.path.join(tmp, "g16.tif")
    tifffile.imwrite(f, (g.astype(np.uint16) * 200), photometric="minisblack", byteorder=">")
    put("gray16_be.tif", f)
    put("gray16_minmax.tif", f, 4)
    put("gray16_pil16.tif", f, 8)
    for name, data, kw in [("tiled_planar.tif", np.moveaxis(c, -1, 0).copy(),
                            dict(photometric="rgb", planarconfig="separate", tile=(16, 16))),
                           ("rgba_assoc.tif", np.dstack([c, g]), dict(photometric="rgb", extrasamples=["assocalpha"])),
                           ("orient6.tif", c, dict(photometric="rgb", extratags=[(274, "H", 1, 6, True)]))]:
        f = os.path.join(tmp, name)
        tifffile.imwrite(f, data, **kw)
        put(name, f)
    for bits, photo, cmap in [(2, 1, None), (4, 0, None), (12, 1, None),
                              (4, 3, rng.integers(0, 65536, (3, 16)).astype(np.uint16))]:
        f = os.path.join(tmp, f"hw{bits}_{photo}.tif")
        v = (g >> (8 - bits)) if bits < 8 else g.astype(np.uint16) * 16
        gen_tiffs.write_packed_tiff(f, v, bits, photo, colormap=cmap)
        put(f"packed{bits}_photo{photo}.tif", f)
    tiffcp = shutil.which("tiffcp")
    if tiffcp:
        for name, args in [("ycbcr_jpeg.tif", ["-c", "jpeg"]), ("tiles_zip_be.tif", ["-B", "-t", "-c", "zip"]),
                           ("bigtiff.tif", ["-8"])]:
            f = os.path.join(tmp, name)
            if subprocess.run([tiffcp] + args + [src, f], capture_output=True).returncode == 0:
                put(name, f)
    shutil.rmtree(tmp)


def text_seeds():
    # fuzz_tokenize's first byte: a multiple of 8 gives room for byte / 8 ids, else BMC_MAX_TOKENS
    for i, t in enumerate(TEXTS):
        write("tokenize", "t%02d.txt" % i, b"\x01" + t.encode())
    write("tokenize", "small_cap.txt", b"\x18" + TEXTS[1].encode())
    write("tokenize", "zero_cap.txt", b"\x00" + TEXTS[0].encode())
    write("tokenize", "invalid_utf8.txt", b"\x01ab\xff\xfe\xc3(\xe2\x82 \xf0\x9f\x98")
    write("tokenize", "overlong.txt", b"\x01\xc0\xaf\xe0\x80\xaf\xed\xa0\x80")
    write("tokenize", "nul_inside.txt", b"\x01abc\x00def ghi")
    # ftfy's mojibake repair (lib/ftfy_encoding.c): each codec path, restore_byte_a0, lossy
    # sequences, CESU-8 and Java's C0 80, inconsistent UTF-8, C1 controls, HTML pairs
    for name, t in [("moji_1252", "Ã©tÃ© â€œquotedâ€\ufffd donâ€™t"), ("moji_nbsp", "Ã la mode Â°C"),
                    ("moji_1251", "Ð\u0178Ñ€Ð¸Ð²ÐµÑ‚"), ("moji_mac", "Caf\u221a\u00a9 \u221a\u00a7"),
                    ("moji_cesu", "\xed\xa0\xbd\xed\xb8\x80 \xc0\x80 \xc3\xa9\xc0\n"),
                    ("moji_mixed", "Café naïve and Ã©tÃ© \x93c1\x94 \x81"),
                    ("moji_html", "&Eacute;°C &EACUTE;± 37&deg;C"),
                    ("moji_nested", "ÃƒÂ©tÃƒÂ© Ãƒâ€šÃ‚Â°C")]:
        write("tokenize", name + ".txt", b"\x01" + t.encode())


CLI_ARGS = [  # fuzz_cli placeholders: @img @jpg @dir @idx @txt @model
    ["info"], ["info", "--verify"], ["info", "-m", "@model"], ["tokenize", "hello world"],
    ["tokenize", "--json", "--", "-x", "Café"], ["tokenize", "--file", "@txt"], ["tokenize", "--file", "-"],
    ["embed-text", "chest x-ray"], ["embed-text", "--json", "a", "b"], ["embed-text", "--raw", "--batch", "2", "x"],
    ["embed-image", "@img"], ["embed-image", "--json", "@jpg", "@img", "missing.png"],
    ["classify", "--labels", "a,b", "@img"], ["classify", "--labels-file", "@txt", "--top", "1", "--format", "tsv", "@jpg"],
    ["classify", "--labels", "x-ray,mri", "--template", "this is a photo of ", "--json", "@img"],
    ["index", "-o", "out", "--quiet", "@dir"], ["search", "@idx", "--text", "brain", "--top", "3"],
    ["search", "@idx", "--image", "@img", "--format", "json"],
    ["--help"], ["--version"], ["info", "-h"], ["classify"], ["embed-text", "--batch", "0", "x"], ["nonsense"],
]


def cli_seeds():
    for i, a in enumerate(CLI_ARGS):
        write("cli", "a%02d" % i, b"\0".join(s.encode() for s in a))


if __name__ == "__main__":
    loader_seeds()
    image_seeds()
    tiff_seeds()
    text_seeds()
    cli_seeds()
    print("seeds written to", OUT)
