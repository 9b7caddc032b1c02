#!/usr/bin/python3
"""The Python package's inputs (tiny test model): numpy arrays of every dtype, shape and stride
(views passed as they are when their rows are packed, copied otherwise; the same embedding
either way), PIL images of every mode, bytes-like objects, and bad inputs of every kind, which
raise biomedclip.Error subclasses carrying the status and the library's message (the text the
command line prints for the same input) and never crash."""
import os
import pickle
import shutil
import sys
import tempfile

import pybmc as T  # noqa: I100  (sets sys.path and $BIOMEDCLIP_LIB first)

import numpy as np
import pytest
from PIL import Image

import biomedclip
from biomedclip import _core


@pytest.fixture(scope="module")
def m():
    return biomedclip.Model(T.TINY, threads=1)


@pytest.fixture(scope="module")
def tmp():
    d = tempfile.mkdtemp(prefix="bmc_py_inputs_")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def rgb(h=61, w=83, c=3, seed=1):
    """Random pixels with structure (gradients plus noise), not a square: resize and crop work."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 3 + y) % 256, (y * 5) % 256, (x * y) % 256, (x + 7 * y) % 256][:c], -1)
    return ((base + r.integers(0, 40, (h, w, c))) % 256).astype(np.uint8)


def file_embedding(m, tmp, arr, mode):
    """The embedding of the same pixels written to a PNG by PIL and decoded by the library."""
    p = os.path.join(tmp, "ref_%s_%dx%d.png" % (mode, arr.shape[1], arr.shape[0]))
    Image.fromarray(arr, mode).save(p)
    return m.encode_image(p)


# ---- shapes and dtypes ----------------------------------------------------------------------

@pytest.mark.parametrize("c,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_shapes_equal_the_file(m, tmp, c, mode):
    a = rgb(c=c)
    a2 = a[:, :, 0] if c == 1 else a
    want = file_embedding(m, tmp, a2, mode)
    assert np.array_equal(m.encode_image(a2), want)
    if c == 1:
        assert np.array_equal(m.encode_image(a), want)  # H x W x 1 is gray too
    assert np.array_equal(m.preprocess(a2), m.preprocess(os.path.join(
        tmp, "ref_%s_%dx%d.png" % (mode, a.shape[1], a.shape[0]))))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32,
                                   np.uint64, np.intp, ">u2", ">i4"])
def test_integer_dtypes_within_0_255(m, dtype):
    a = rgb()
    want = m.encode_image(a)
    if np.dtype(dtype) == np.int8:
        a = a // 2  # int8 holds 0..127 of them
        want = m.encode_image(a)
    assert np.array_equal(m.encode_image(a.astype(dtype)), want)
    if np.dtype(dtype).kind == "u" or np.dtype(dtype).itemsize > 1:
        bad = a.astype(dtype)
        bad[3, 4, 1] = 256 if np.dtype(dtype) != np.int8 else 0
        if np.dtype(dtype) != np.int8:
            with pytest.raises(biomedclip.InvalidArgumentError, match="outside 0..255"):
                m.encode_image(bad)
    if np.dtype(dtype).kind == "i":
        neg = a.astype(dtype)
        neg[0, 0, 0] = -1
        with pytest.raises(biomedclip.InvalidArgumentError, match="-1..") as e:
            m.encode_image(neg)
        assert e.value.status == -1


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.bool_, np.complex64,
                                   object, "U1", "datetime64[s]"])
def test_other_dtypes_refused(m, dtype):
    a = np.zeros((20, 30, 3), dtype=dtype)
    with pytest.raises(biomedclip.InvalidArgumentError, match="dtype") as e:
        m.encode_image(a)
    assert e.value.status == -1 and "uint8" in str(e.value)
    with pytest.raises(biomedclip.InvalidArgumentError):
        m.preprocess(a)


@pytest.mark.parametrize("shape", [(10,), (10, 12, 2), (10, 12, 5), (2, 3, 10, 12, 3), ()])
def test_bad_shapes_refused(m, shape):
    with pytest.raises(biomedclip.InvalidArgumentError, match="shape|want"):
        m.encode_image(np.zeros(shape, np.uint8))


def test_empty_and_huge_arrays_get_the_library_message(m):
    for shape in ((0, 5), (5, 0, 3), (0, 0, 4)):
        with pytest.raises(biomedclip.InvalidArgumentError,
                           match=r"image size \d+ x \d+ \(both must be > 0\)") as e:
            m.encode_image(np.zeros(shape, np.uint8))
        assert e.value.status == biomedclip.InvalidArgumentError(-1, "").status
    with pytest.raises(biomedclip.ImageError, match="too large") as e:
        m.encode_image(np.zeros((1, 40000), np.uint8))
    assert e.value.status == -7 and e.value.status_name.startswith("BMC_E_IMAGE")


def test_batches_of_arrays(m):
    imgs = np.stack([rgb(seed=s) for s in range(11)])  # 11 > batch 8: two library calls
    got = m.encode_image(imgs)
    assert got.shape == (11, m.embed_dim)
    each = np.stack([m.encode_image(x) for x in imgs])
    assert np.abs(got - each).max() <= 1e-6  # a batch and single passes agree to ~1e-6
    mixed = m.encode_image([imgs[0], imgs[1][:, :, 0], np.dstack([imgs[2], imgs[3][:, :, :1]])])
    assert np.abs(mixed[0] - each[0]).max() <= 1e-6
    assert m.encode_image([]).shape == (0, m.embed_dim)


# ---- strides ----------------------------------------------------------------------------------

def strided_cases():
    base = rgb(70, 90, 4)
    wide = np.zeros((70, 200, 3), np.uint8)
    wide[:, 50:140] = base[:, :, :3]
    return {
        "padded rows (view)": (wide[:, 50:140], True),
        "row step 2 (view)": (base[::2, :, :3].copy()[:, :], True),
        "every other row of a contiguous image (view)": (rgb(140, 90)[::2], True),
        "gray padded rows (view)": (np.ascontiguousarray(base[:, :, 0])[:, 5:80], True),
        "one row (view)": (rgb(70, 90)[3:4], True),
        "RGB of an RGBA buffer (copy)": (base[:, :, :3], False),
        "every other column (copy)": (base[:, ::2, :3], False),
        "mirrored columns (copy)": (base[:, ::-1, :3], False),
        "upside down (copy: rows backwards)": (base[::-1, :, :3], False),
        "BGR (copy)": (base[:, :, 2::-1], False),
        "transposed (copy)": (base[:, :, :3].transpose(1, 0, 2), False),
        "Fortran order (copy)": (np.asfortranarray(base[:, :, :3]), False),
        "gray column step 3 (copy)": (base[:, ::3, 1], False),
        "broadcast row (copy)": (np.broadcast_to(base[5, :, :3], (40, 90, 3)), False),
        "broadcast pixel (copy)": (np.broadcast_to(np.uint8(77), (30, 40)), False),
        "read-only view": (np.frombuffer(base.tobytes(), np.uint8).reshape(base.shape), True),
    }


@pytest.mark.parametrize("name", list(strided_cases()))
def test_strides(m, name):
    a, is_view = strided_cases()[name]
    want = m.encode_image(np.ascontiguousarray(a))
    assert np.array_equal(m.encode_image(a), want), name
    assert np.array_equal(m.preprocess(a), m.preprocess(np.ascontiguousarray(a))), name
    # the library receives the caller's pixels when rows are packed, a contiguous copy otherwise
    img, keep = _core.L.Image(), []
    _core._view_of_array(img, a, "test", keep)
    assert (img.pixels == a.ctypes.data) == is_view, name
    if is_view and a.shape[0] > 1:
        assert img.stride == a.strides[0]


# ---- PIL images, bytes, paths -----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "1", "I;16", "I", "CMYK",
                                  "YCbCr", "F", "PA"])
def test_pil_modes(m, tmp, mode):
    src = Image.open(os.path.join(T.IMAGES, "bone_X-ray.jpg"))
    if mode == "PA":
        im = src.convert("P").convert("PA")
    elif mode in ("I;16", "I"):
        im = Image.fromarray((np.asarray(src.convert("L")).astype(np.uint16) * 257), "I;16")
        im = im if mode == "I;16" else im.convert("I")
    else:
        im = src.convert(mode)
    got = m.encode_image(im)
    assert got.shape == (m.embed_dim,) and np.isfinite(got).all()
    if mode in ("L", "RGB", "RGBA", "P", "LA", "1", "I;16", "I"):
        # a PNG keeps these modes: the library's result for the file
        p = os.path.join(tmp, "pil_%s.png" % mode.replace(";", "_"))
        im.save(p)
        assert np.array_equal(got, m.encode_image(p)), mode
    else:
        conv = im.convert("RGBA" if mode == "PA" else "RGB")
        assert np.array_equal(got, m.encode_image(np.asarray(conv))), mode


def test_bytes_like(m):
    p = os.path.join(T.IMAGES, "pie_chart.png")
    data = open(p, "rb").read()
    want = m.encode_image(p)
    mv = memoryview(bytearray(b"xx" + data))[2:]
    assert np.array_equal(m.encode_image(mv), want)
    strided = memoryview(np.frombuffer(data, np.uint8).repeat(2)[::2].tobytes())
    assert np.array_equal(m.encode_image(strided), want)
    nc = memoryview(np.frombuffer(data, np.uint8).repeat(2))[::2]  # not contiguous: copied
    assert np.array_equal(m.encode_image(nc), want)


# ---- decoding options (bmc_image_load_ex, bmc_image_get_info) ----------------------------------

HAS_EX = _core.L.has(_core._lib, "bmc_image_load_ex")


@pytest.mark.skipif(not HAS_EX, reason="library without bmc_image_load_ex")
def test_image_info_and_load_options(m, tmp):
    cases = [os.path.join(T.IMAGES, n) for n in ("covid_line_chart.png", "pie_chart.png",
                                                 "bone_X-ray.jpg")]
    g = os.path.join(tmp, "gray.png")
    Image.open(cases[2]).convert("L").save(g)
    cases.append(g)
    for p in cases:
        info = biomedclip.image_info(p)
        im = Image.open(p)
        assert (info["width"], info["height"]) == im.size, p
        assert info["format"] == im.format and info["mode"] == im.mode, (p, info)
        assert info["n_frames"] == 1 and info["frame"] == 0 and info["bits_stored"] in (1, 8)
        assert biomedclip.image_info(open(p, "rb").read()) == info
        # 8-bit sources: no window applies, frame 0 is the image
        want = m.encode_image(p)
        for kw in ({"frame": 0}, {"window": "minmax"}, {"window": (40, 400)}, {"window": "auto"}):
            assert np.array_equal(m.encode_image(p, **kw), want), (p, kw)
    with pytest.raises(biomedclip.Error) as e:
        m.encode_image(cases[0], frame=1)  # one image: no frame 1
    assert e.value.status < 0 and str(e.value)
    with pytest.raises(biomedclip.InvalidArgumentError, match="width") as e:
        m.encode_image(cases[0], window=(40, 0))  # the library's check
    for bad in ({"window": "bogus"}, {"window": "file:x"}, {"window": "file:-2"},
                {"window": ("a", 3)}, {"frame": -1}, {"frame": 1.5}, {"frame": True}):
        with pytest.raises(biomedclip.InvalidArgumentError):
            m.encode_image(cases[0], **bad)
    with pytest.raises(biomedclip.InvalidArgumentError):
        biomedclip.image_info(np.zeros((4, 4), np.uint8))  # a view has no decoder information


# ---- errors -----------------------------------------------------------------------------------

def cli_message(*args):
    p = T.cli(*args)
    assert p.returncode != 0
    return p.stderr


def test_file_errors_carry_the_library_message(m, tmp):
    missing = os.path.join(tmp, "missing.png")
    with pytest.raises(biomedclip.FileError) as e:
        m.encode_image(["x" and os.path.join(T.IMAGES, "pie_chart.png"), missing])
    assert e.value.status == -2 and missing in str(e.value) and "No such file" in str(e.value)
    assert str(e.value) in cli_message("embed-image", "-m", T.TINY, missing)
    corrupt = os.path.join(tmp, "corrupt.png")
    with open(corrupt, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not a png body")
    with pytest.raises(biomedclip.ImageError) as e:
        m.encode_image(corrupt)
    assert e.value.status == -7 and str(e.value) in cli_message("embed-image", "-m", T.TINY,
                                                                corrupt)
    with pytest.raises(biomedclip.ImageError):
        m.encode_image(b"\x89PNG\r\n\x1a\n not a png body")
    with pytest.raises(biomedclip.Error):
        m.encode_image(b"")
    with pytest.raises(biomedclip.FileError, match="is a directory"):
        m.preprocess(tmp)
    with pytest.raises(biomedclip.InvalidArgumentError, match="NUL"):
        m.encode_image("a\0b.png")
    # an error leaves the model usable, and the images loaded before it were freed
    assert m.encode_image(os.path.join(T.IMAGES, "pie_chart.png")).shape == (m.embed_dim,)


def test_model_errors(tmp):
    missing = os.path.join(tmp, "missing.bmc")
    with pytest.raises(biomedclip.FileError) as e:
        biomedclip.Model(missing)
    assert missing in str(e.value) and str(e.value) in cli_message("info", "-m", missing)
    bad = os.path.join(tmp, "bad.bmc")
    with open(bad, "wb") as f:
        f.write(b"NOTABMC!" + b"\0" * 4096)
    with pytest.raises(biomedclip.FormatError) as e:
        biomedclip.Model(bad)
    assert e.value.status == -3 and "magic" in str(e.value)
    assert str(e.value) in cli_message("info", "-m", bad)
    trunc = os.path.join(tmp, "trunc.bmc")
    with open(T.TINY, "rb") as f, open(trunc, "wb") as g:
        g.write(f.read(100000))
    with pytest.raises(biomedclip.Error) as e:
        biomedclip.Model(trunc)
    assert e.value.status in (-3, -5) and str(e.value) in cli_message("info", "-m", trunc)
    for kw in ({"threads": -1}, {"batch": 0}, {"threads": "2"}):
        with pytest.raises(biomedclip.InvalidArgumentError):
            biomedclip.Model(T.TINY, **kw)


def test_argument_errors(m):
    E = biomedclip.InvalidArgumentError
    for bad in (123, None, 4.5, {"a": 1}):
        with pytest.raises(E):
            m.encode_image(bad)
        with pytest.raises(E):
            m.encode_text(bad)
    with pytest.raises(E, match="item 1"):
        m.encode_text(["ok", 7])
    with pytest.raises(E, match="NUL"):
        m.encode_text("a\0b")
    with pytest.raises(E, match="item 2"):
        m.encode_image([rgb(), rgb(), 3.0])
    with pytest.raises(E):
        m.preprocess([rgb(), rgb()])  # one image only
    # library-side argument errors: ids outside the vocabulary, too many or no ids
    with pytest.raises(biomedclip.Error) as e:
        m.encode_ids([[2, 10 ** 6, 3]])
    assert e.value.status == -1 and str(e.value)
    with pytest.raises(biomedclip.Error):
        m.encode_ids([list(range(2, 400))])
    with pytest.raises(biomedclip.Error):
        m.encode_ids([[]])
    with pytest.raises(E):
        m.encode_ids([["a", "b"]])
    with pytest.raises(E, match="shape"):
        m.encode_pixels(np.zeros((3, 100, 100), np.float32))
    # classify / zero-shot arguments
    with pytest.raises(E, match="no labels"):
        m.classify(rgb(), [])
    with pytest.raises(E, match="distinct"):
        m.classify(rgb(), ["a", "a"])
    with pytest.raises(E, match="not one str"):
        m.classify(rgb(), "a,b")
    with pytest.raises(E):
        m.zero_shot_probs(np.ones(16), np.ones((2, 32)))
    # similarity: dimensions must agree; empty inputs get the library's message
    with pytest.raises(E, match="32 numbers a row, b has 16"):
        biomedclip.similarity(np.ones((2, 32)), np.ones((3, 16)))
    with pytest.raises(E, match="must be > 0|n_img"):
        biomedclip.similarity(np.ones((0, 32)), np.ones((3, 32)))
    with pytest.raises(E):
        biomedclip.similarity(np.ones((2, 2, 2)), np.ones(2))
    with pytest.raises(E):
        biomedclip.similarity(["x"], [1.0])
    with pytest.raises(E):
        m.encode_image(rgb(), frame=-1) if HAS_EX else m.encode_image(rgb(), frame=1)


def test_error_objects():
    e = biomedclip.ImageError(-7, "x.png: bad")
    assert isinstance(e, biomedclip.Error) and str(e) == "x.png: bad" and e.message == "x.png: bad"
    assert e.status_name.startswith("BMC_E_IMAGE")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is biomedclip.ImageError and e2.status == -7 and str(e2) == "x.png: bad"
    assert issubclass(biomedclip.InvalidArgumentError, ValueError)
    assert issubclass(biomedclip.OutOfMemoryError, MemoryError)


def test_closed_model():
    m = biomedclip.Model(T.TINY)
    m.encode_text("x")
    with m:
        pass
    with pytest.raises(biomedclip.Error, match="closed"):
        m.encode_text("x")
    with pytest.raises(biomedclip.Error, match="closed"):
        m.tokenize("x")
    assert "closed" in repr(m)


if __name__ == "__main__":
    sys.exit(T.main(__file__))
