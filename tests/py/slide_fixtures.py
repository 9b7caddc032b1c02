#!/usr/bin/python3
"""Made-up whole-slide images for the slide tests (no real slide can be downloaded here).

make_slides(outdir, shared) writes, from the example histology images in shared/data/images:
  generic.tif   generic tiled TIFF, two levels (1, 1/2), 256x256 tiles, deflate, resolution
                tags 10000/0.3 px/cm -> 0.3 um/px (tiles at 0.5 um/px are read at level 0 and
                resized: size0 373, region 373)
  aperio.svs    Aperio-style: ImageDescription "Aperio Image Library ...|MPP = 0.2500", levels 1,
                1/2, 1/8 (tiles at 0.5 um/px come from level 1 without resizing: size0 448,
                region 224)
  nompp.tif     generic tiled TIFF without resolution tags (needs --slide-mpp)
  blank.tif     a generic TIFF with no tissue at all (white with a little noise)
  big.tif       one level of 8200 x 8200 (JPEG, libvips): no level is small enough for a
                thumbnail, so tissue detection averages 2 x 2 blocks; tissue at (3000, 3000) 2000 x 1500
  vips.tif      written by libvips (vips tiffsave --pyramid): JPEG-compressed tiles, 4 levels
                (the last at downsample 8.0107, odd-sized), 0.5 um/px in resolution tags
Each has a near-white background (240 +- 3 grey) with tissue regions pasted in.
"""
import os
import subprocess

import numpy as np
import tifffile
from PIL import Image

TISSUE = ("H_and_E_histopathology.jpg", "adenocarcinoma_histopathology.jpg",
          "squamous_cell_carcinoma_histopathology.jpeg")


def _canvas(w, h, seed):
    rng = np.random.default_rng(seed)
    return (240 + rng.integers(-3, 4, size=(h, w, 3))).astype(np.uint8)


def _paste(canvas, shared, boxes):
    for name, (x, y, w, h) in boxes:
        im = Image.open(os.path.join(shared, "images", name)).convert("RGB").resize((w, h), Image.BICUBIC)
        canvas[y:y + h, x:x + w] = np.asarray(im)


def _levels(base, factors):
    im = Image.fromarray(base)
    out = [base]
    for f in factors[1:]:
        out.append(np.asarray(im.resize((base.shape[1] // f, base.shape[0] // f), Image.BOX)))
    return out


def _write(path, levels, description="", mpp=None):
    with tifffile.TiffWriter(path) as tif:
        for i, lv in enumerate(levels):
            kw = {}
            if mpp is not None:
                kw = dict(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
            tif.write(lv, tile=(256, 256), photometric="rgb", compression="zlib", metadata=None,
                      description=description if i == 0 else None, subfiletype=0 if i == 0 else 1, **kw)


def make_slides(outdir, shared):
    os.makedirs(outdir, exist_ok=True)
    paths = {}
    # generic: 2400 x 1800 at 0.3 um/px, two tissue regions
    base = _canvas(2400, 1800, 1)
    _paste(base, shared, [(TISSUE[0], (150, 200, 1100, 800)), (TISSUE[1], (1500, 700, 700, 900))])
    paths["generic"] = os.path.join(outdir, "generic.tif")
    _write(paths["generic"], _levels(base, [1, 2]), mpp=0.3)
    # aperio: 3000 x 2200 at 0.25 um/px
    base = _canvas(3000, 2200, 2)
    _paste(base, shared, [(TISSUE[2], (200, 300, 1300, 1000)), (TISSUE[0], (1800, 900, 1000, 1100))])
    desc = ("Aperio Image Library v10.0.50\r\n3000x2200 [0,0 3000x2200] (256x256) -> 3000x2200 "
            "|AppMag = 40|MPP = 0.2500|Filename = aperio")
    paths["aperio"] = os.path.join(outdir, "aperio.svs")
    _write(paths["aperio"], _levels(base, [1, 2, 8]), description=desc)
    # no resolution
    base = _canvas(1200, 900, 3)
    _paste(base, shared, [(TISSUE[1], (100, 100, 800, 600))])
    paths["nompp"] = os.path.join(outdir, "nompp.tif")
    _write(paths["nompp"], _levels(base, [1, 2]))
    # blank
    paths["blank"] = os.path.join(outdir, "blank.tif")
    _write(paths["blank"], _levels(_canvas(1200, 900, 4), [1, 2]), mpp=0.5)
    # libvips: a JPEG-compressed pyramid, as slide scanners' generic TIFFs are
    base = _canvas(2000, 1500, 5)
    _paste(base, shared, [(TISSUE[0], (300, 200, 1200, 900))])
    src = os.path.join(outdir, "vips-source.png")
    Image.fromarray(base).save(src)
    paths["vips"] = os.path.join(outdir, "vips.tif")
    subprocess.run(["vips", "tiffsave", src, paths["vips"], "--tile", "--tile-width", "256", "--tile-height", "256",
                    "--pyramid", "--compression", "jpeg", "--Q", "90", "--xres", "2000", "--yres", "2000",
                    "--resunit", "cm"], check=True)
    # one large level: the thumbnail is made by averaging blocks
    Image.fromarray(base).save(src)
    big_v = os.path.join(outdir, "big.v")
    subprocess.run(["vips", "embed", src, big_v, "3000", "3000", "8200", "8200", "--extend", "background",
                    "--background", "240 240 240"], check=True)
    paths["big"] = os.path.join(outdir, "big.tif")
    subprocess.run(["vips", "tiffsave", big_v, paths["big"], "--tile", "--tile-width", "256", "--tile-height",
                    "256", "--compression", "jpeg", "--Q", "85", "--xres", "4000", "--yres", "4000", "--resunit",
                    "cm"], check=True)
    os.unlink(big_v)
    os.unlink(src)
    return paths


if __name__ == "__main__":
    import sys
    print(make_slides(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "../shared/data"))
