#!/usr/bin/python3
"""The Python package (python/biomedclip) against the command line and the PyTorch reference.

Every function of the package is checked against the numbers of the `biomedclip` command
(same library: embeddings within 1e-6) and against the PyTorch reference (tests/reference/*.py
and its goldens in $BMC_TESTDATA: relative L2 within 1e-5), on the full-size and the tiny
random-weight test models: info, tokenize (also against the HF tokenizer's vectors),
encode_text / encode_ids, encode_image (paths, bytes, arrays, PIL images) / encode_pixels,
preprocess and crop (PIL + torch preprocessing), classify and zero_shot (the reference's
zero-shot probabilities), similarity, Index (an index written by `biomedclip index`, searched
as `biomedclip search` does).
"""
import json
import os
import shutil
import sys
import tempfile

import pybmc as T  # noqa: I100  (sets sys.path and $BIOMEDCLIP_LIB first)

import numpy as np
import pytest
from PIL import Image

import biomedclip

EMB_TOL = 1e-6   # package vs command line: the same library
# Under ASan (make sanitize) the full-size model gets a few items only: its kernels are checked
# there by test_vit_parity / test_bert_parity, the binding's memory use by the tiny-model tests.
LIGHT = T.under_asan()
REF_TOL = 1e-5   # vs PyTorch, relative L2


@pytest.fixture(scope="module")
def tiny():
    return biomedclip.Model(T.TINY, threads=1)


@pytest.fixture(scope="module")
def full():
    return biomedclip.Model(T.FULL)


@pytest.fixture(scope="module")
def pngs():
    """PNG files of several PIL modes made from the example images (lossless: every decoder
    gives the same pixels), and the notebook's own PNGs."""
    tmp = tempfile.mkdtemp(prefix="bmc_py_api_")
    src = lambda n: Image.open(os.path.join(T.IMAGES, n))  # noqa: E731
    out = []

    def save(im, name):
        p = os.path.join(tmp, name)
        im.save(p)
        out.append(p)

    save(src("H_and_E_histopathology.jpg"), "h_and_e_rgb.png")            # RGB, downscale
    save(src("bone_X-ray.jpg"), "bone_rgb.png")                            # RGB, upscale
    save(src("brain_MRI.jpg").convert("L"), "brain_l.png")                 # L
    sq = np.asarray(src("squamous_cell_carcinoma_histopathology.jpeg").convert("RGBA")).copy()
    sq[:, :, 3] = np.linspace(40, 255, sq.shape[1]).astype(np.uint8)[None, :]
    save(Image.fromarray(sq, "RGBA"), "squamous_rgba.png")                 # RGBA, alpha ramp
    out.append(os.path.join(T.IMAGES, "covid_line_chart.png"))             # P
    out.append(os.path.join(T.IMAGES, "pie_chart.png"))
    yield out
    shutil.rmtree(tmp, ignore_errors=True)


def cli_embed(kind, model, items, *extra):
    rows = T.cli_json("embed-" + kind, "-m", model, "--json", *extra, "--", *items)
    return np.array([r["embedding"] for r in rows], np.float32)


# ---- model information -----------------------------------------------------------------------

def test_info_matches_cli(tiny):
    info = tiny.info
    p = T.cli("info", "-m", T.TINY)
    assert p.returncode == 0
    want = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition("  ")
        want[k.strip()] = v.strip()
    for k in ("tensors", "parameters", "vision", "text", "embedding", "context length",
              "logit scale", "tokenizer"):
        assert info["fields"][k] == want[k], k
    assert info["embed_dim"] == int(want["embedding"]) == 32
    assert info["context_length"] == 256 and info["image_size"] == 224
    assert info["n_tensors"] == int(want["tensors"])
    assert info["n_params"] == int(want["parameters"].split()[0].replace(",", ""))
    assert info["file_size"] == os.path.getsize(T.TINY)
    assert info["fields"]["linear weights"].startswith("float32")
    assert info["vocab_size"] == 28895
    assert abs(info["logit_scale"] - float(want["logit scale"].split()[0])) < 1e-3
    assert info["library"] == biomedclip.library_version() == "%d.%d.%d" % (0, 1, 0)
    assert tiny.token(2) == "[CLS]" and tiny.token(3) == "[SEP]" and tiny.token(10 ** 6) is None
    assert biomedclip.system_info().startswith("KERNELS=") and "BLAS=" in biomedclip.system_info()
    p = T.cli("--version")
    assert p.stdout.split() == ["biomedclip", biomedclip.library_version()]


@pytest.mark.parametrize("dtype,name,tol", [("f16", "float16", 1e-3), ("bf16", "bfloat16", 1e-2)])
def test_16bit_weights(tiny, dtype, name, tol):
    """A file with 16-bit Linear weights (tools/convert.py --dtype) loads and runs from Python,
    says its weight type, and stays near the float32 file's embeddings."""
    path = os.path.join(T.TESTDATA, "tiny-%s.bmc" % dtype)
    m = biomedclip.Model(path, threads=1)
    assert m.info["fields"]["linear weights"].startswith(name)
    texts = ["chest X-ray with pleural effusion", "H&E stained tissue"]
    a, b = m.encode_text(texts), tiny.encode_text(texts)
    assert max(T.rel_l2(x, y) for x, y in zip(a, b)) < tol
    m.close()


# ---- text -----------------------------------------------------------------------------------

def test_tokenize_matches_hf_and_cli(tiny):
    with open(os.path.join(T.SHARED, "tokenizer_test_vectors.json"), encoding="utf-8") as f:
        vectors = json.load(f)["vectors"]
    texts = [v["text"] for v in vectors]
    got = tiny.tokenize(texts)
    for v, ids in zip(vectors, got):
        if "\ufb01" in v["text"]:
            # open_clip cleans texts with ftfy first, which turns the ligature into "fi"; the
            # HF tokenizer alone (the vectors) does not (tests/test_tokenizer.c, the same rule)
            assert ids != v["ids"] and ids == tiny.tokenize(v["text"].replace("\ufb01", "fi"))
        else:
            assert ids == v["ids"], v["text"]
    assert tiny.tokenize(texts[0]) == vectors[0]["ids"]
    cli = T.cli_json("tokenize", "-m", T.TINY, "--json", "--", *texts)
    assert [r["ids"] for r in cli] == got
    long_ids = tiny.tokenize("carcinoma " * 400)
    assert len(long_ids) == 256 and long_ids[0] == 2 and long_ids[-1] == 3


@pytest.mark.parametrize("name", ["tiny", "full"])
def test_encode_text_vs_torch(name, request):
    m = request.getfixturevalue(name)
    cases = T.text_golden(name)
    # the prompts whose ids are open_clip's (the goldens' ids are the HF tokenizer's alone: the
    # ligature prompt differs by ftfy's fix, test_tokenize_matches_hf_and_cli; its embedding is
    # checked through encode_ids below)
    texts = [c for c in cases if c[2] is not None and "\ufb01" not in c[2]]
    assert len(texts) >= 20
    if LIGHT and name == "full":
        texts = texts[:3]
    # (the full-size model: normalised only, and ids of the random cases, to save time)
    got = m.encode_text([c[2] for c in texts])
    raw = m.encode_text([c[2] for c in texts], normalize=False) if name == "tiny" else None
    for i, (cname, ids, text, proj, norm) in enumerate(texts):
        assert T.rel_l2(got[i], norm) <= REF_TOL, (cname, T.rel_l2(got[i], norm))
        assert raw is None or T.rel_l2(raw[i], proj) <= REF_TOL, (cname, T.rel_l2(raw[i], proj))
        assert m.tokenize(text) == ids, cname
    assert LIGHT or len(cases) - len(texts) == sum(c[2] is None for c in cases) + 1
    # token ids straight in, every length up to the context length
    some = cases if name == "tiny" else [c for c in cases if c[2] is None or "\ufb01" in c[2]]
    if LIGHT and name == "full":
        some = [c for c in some if c[0] in ("rand008", "rand077") or "\ufb01" in (c[2] or "")]
    got = m.encode_ids([c[1] for c in some])
    for (cname, ids, text, proj, norm), g in zip(some, got):
        assert T.rel_l2(g, norm) <= REF_TOL, (cname, T.rel_l2(g, norm))
    one = m.encode_ids(cases[2][1], normalize=False)
    assert one.shape == (m.embed_dim,) and T.rel_l2(one, cases[2][3]) <= REF_TOL
    assert m.encode_text("x").shape == (m.embed_dim,)
    assert m.encode_text([]).shape == (0, m.embed_dim)


def test_encode_text_vs_cli(tiny):
    texts = ["this is a photo of " + x for x in T.LABELS] + ["Café naïve 肺癌", "a" * 3000, "",
                                                             "tab\there"]
    got = tiny.encode_text(texts)
    assert np.abs(got - cli_embed("text", T.TINY, texts)).max() <= EMB_TOL
    raw = tiny.encode_text(texts, normalize=False)
    assert np.abs(raw - cli_embed("text", T.TINY, texts, "--raw")).max() <= EMB_TOL


# ---- images ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny", "full"])
def test_encode_image_vs_torch(name, request):
    m = request.getfixturevalue(name)
    names, px, proj, norm = T.vision_golden(name)
    some = len(names) if not (LIGHT and name == "full") else 1
    raw = m.encode_pixels(px[:some], normalize=False)
    for i, n in enumerate(names[:some]):
        assert T.rel_l2(raw[i], proj[i]) <= REF_TOL, (n, T.rel_l2(raw[i], proj[i]))
    if some > 1:
        got = m.encode_pixels(px[0])
        assert got.shape == (m.embed_dim,) and T.rel_l2(got, norm[0]) <= REF_TOL
    # the same crops as files, file bytes, arrays and PIL images (224 x 224: no resize); one
    # image each on the full-size model
    files = [os.path.join(T.CROPS, n + ".ppm") for n in names if n != "random_normal"]
    for k, (how, make) in enumerate((("paths", lambda f: f),
                                     ("bytes", lambda f: open(f, "rb").read()),
                                     ("arrays", lambda f: np.asarray(Image.open(f).convert("RGB"))),
                                     ("PIL", Image.open))):
        idx = list(range(len(files))) if name == "tiny" else [k % len(files)]
        if LIGHT and name == "full" and how != "arrays":
            continue
        e = m.encode_image([make(files[i]) for i in idx])
        for j, i in enumerate(idx):
            assert T.rel_l2(e[j], norm[i]) <= REF_TOL, (how, files[i], T.rel_l2(e[j], norm[i]))
    if not (LIGHT and name == "full"):
        e1 = m.encode_image(files[0])
        assert e1.shape == (m.embed_dim,) and T.rel_l2(e1, norm[0]) <= REF_TOL


def test_encode_image_vs_cli(tiny, pngs):
    files = [os.path.join(T.IMAGES, n) for n in sorted(os.listdir(T.IMAGES))
             if n.endswith((".jpg", ".jpeg", ".png"))] + pngs
    want = cli_embed("image", T.TINY, files)
    assert np.abs(tiny.encode_image(files) - want).max() <= EMB_TOL
    import pathlib
    two = [files.index(os.path.join(T.IMAGES, "bone_X-ray.jpg")), len(files) - 1]
    blobs = [open(files[i], "rb").read() for i in two]
    for items in ([pathlib.Path(files[i]) for i in two], blobs, [bytearray(b) for b in blobs],
                  [memoryview(b) for b in blobs]):
        assert np.abs(tiny.encode_image(items) - want[two]).max() <= EMB_TOL, type(items[0])
    raw = cli_embed("image", T.TINY, files, "--raw")
    assert np.abs(tiny.encode_image(files, normalize=False) - raw).max() <= EMB_TOL
    # lossless files as arrays (PIL's pixels) and as PIL images of their own mode
    k = len(files) - len(pngs)
    for i, p in enumerate(pngs):
        im = Image.open(p)
        assert np.abs(tiny.encode_image(im) - want[k + i]).max() <= EMB_TOL, (p, im.mode)
        if im.mode in ("L", "RGB", "RGBA"):
            assert np.abs(tiny.encode_image(np.asarray(im)) - want[k + i]).max() <= EMB_TOL, p


def test_preprocess_and_crop_vs_reference(tiny, pngs):
    import zero_shot as ref
    from common import load_checkpoint
    _, cfg = load_checkpoint(os.path.join(T.TESTDATA, "tiny"))
    for p in pngs:
        want = ref.preprocess(p, 224, cfg["mean"], cfg["std"]).numpy()
        got = tiny.preprocess(p)
        assert got.shape == (3, 224, 224) and got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-6, (p, np.abs(got - want).max())
        assert np.array_equal(tiny.preprocess(Image.open(p)), got), p
        assert np.array_equal(tiny.preprocess(open(p, "rb").read()), got), p
        # crop: the uint8 pixels before /255 and Normalize, as PIL makes them
        im = Image.open(p)
        w, h = im.size
        nw, nh = ref.resized_size(w, h, 224)
        if (nw, nh) != (w, h):
            im = im.resize((nw, nh), Image.BICUBIC)
        left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
        crop = np.asarray(im.crop((left, top, left + 224, top + 224)).convert("RGB"))
        assert np.array_equal(tiny.crop(p), crop), p
    # preprocess then encode_pixels = encode_image
    x = tiny.preprocess(pngs[0])
    assert np.abs(tiny.encode_pixels(x) - tiny.encode_image(pngs[0])).max() <= EMB_TOL


# ---- zero-shot ------------------------------------------------------------------------------

def test_classify_and_zero_shot_vs_cli_and_torch(tiny, pngs):
    import torch
    import zero_shot as ref
    torch.set_num_threads(2)
    cli = T.cli_json("classify", "-m", T.TINY, "--labels", ",".join(T.LABELS), "--json", *pngs)
    want = np.array([r["probs"] for r in cli], np.float64)
    probs = biomedclip.zero_shot(tiny, pngs, T.LABELS)
    assert probs.shape == (len(pngs), len(T.LABELS))
    assert np.abs(probs - want).max() <= EMB_TOL
    assert np.array_equal(biomedclip.zero_shot(tiny, pngs[1], T.LABELS), probs[1:2])
    res = tiny.classify(pngs, T.LABELS)
    for d, w in zip(res, want):
        assert sorted(d) == sorted(T.LABELS)
        vals = list(d.values())
        assert vals == sorted(vals, reverse=True)
        assert max(abs(d[lab] - w[j]) for j, lab in enumerate(T.LABELS)) <= EMB_TOL
    one = tiny.classify(pngs[0], T.LABELS, template=T.TEMPLATE)
    assert one == res[0]
    # the PyTorch reference (token ids from the HF tokenizer's vectors)
    ids = ref.vector_ids(os.path.join(T.SHARED, "tokenizer_test_vectors.json"),
                         [T.TEMPLATE + x for x in T.LABELS])
    r = ref.Reference(os.path.join(T.TESTDATA, "tiny"))
    torch_probs = r.zero_shot(pngs, ids).numpy()
    assert np.abs(probs - torch_probs).max() <= REF_TOL
    # another template changes the texts; the bare labels
    bare = biomedclip.zero_shot(tiny, pngs[:1], T.LABELS, template="")
    assert np.abs(bare[0] - probs[0]).max() > 1e-4
    cli = T.cli_json("classify", "-m", T.TINY, "--labels", ",".join(T.LABELS), "--template", "",
                     "--json", pngs[0])
    assert np.abs(bare[0] - np.array(cli[0]["probs"])).max() <= EMB_TOL
    # zero_shot_probs straight from embeddings; zero_shot_table in the notebook's format
    img, txt = tiny.encode_image(pngs), tiny.encode_text([T.TEMPLATE + x for x in T.LABELS])
    assert np.array_equal(tiny.zero_shot_probs(img, txt), probs)
    assert np.array_equal(tiny.zero_shot_probs(img[0], txt), probs[0])
    table = biomedclip.zero_shot_table(["a.png", "b.png"], T.LABELS, probs[:2], top_k=3)
    lines = table.split("\n")
    assert lines[0] == "a.png:" and lines[4:7] == ["", "", "b.png:"]
    j = int(np.argmax(probs[0]))
    assert lines[1] == "%s: %r" % (T.LABELS[j], float(probs[0, j]))


# ---- similarity and the index ---------------------------------------------------------------

def test_similarity():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((4, 32)), rng.standard_normal((7, 32))
    want = (a @ b.T) / np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1))
    got = biomedclip.similarity(a, b)
    assert got.shape == (4, 7) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-6
    assert np.abs(biomedclip.similarity(a[1], b) - want[1]).max() <= 1e-6
    assert np.abs(biomedclip.similarity(a, b[2]) - want[:, 2]).max() <= 1e-6
    s = biomedclip.similarity(a[0], b[0])
    assert isinstance(s, float) and abs(s - want[0, 0]) <= 1e-6
    assert biomedclip.similarity(np.zeros(32), b[0]) == 0.0  # norms floored, no NaN
    fa = np.asfortranarray(a.astype(np.float32))
    assert np.abs(biomedclip.similarity(fa, b[:, ::1]) - want).max() <= 1e-6


def test_index_vs_cli_search(tiny, pngs):
    tmp = tempfile.mkdtemp(prefix="bmc_py_index_")
    try:
        imgs = os.path.join(tmp, "imgs")
        os.makedirs(os.path.join(imgs, "sub"))
        srcs = pngs + [os.path.join(T.IMAGES, n) for n in ("chest_X-ray.jpg", "brain_MRI.jpg")]
        for i, p in enumerate(srcs):
            name = "%02d_%s" % (i, os.path.basename(p))
            shutil.copy(p, os.path.join(imgs, "sub" if i % 2 else "", name))
        shutil.copy(srcs[0], os.path.join(imgs, "dup.png"))  # equal scores keep index order
        idx_dir = os.path.join(tmp, "idx")
        p = T.cli("index", "-m", T.TINY, "-o", idx_dir, "--quiet", imgs)
        assert p.returncode == 0, p.stderr
        idx = biomedclip.Index(idx_dir)
        assert len(idx) == len(srcs) + 1 and idx.dim == 32 and idx.meta.get("dim") == 32
        assert idx.embeddings.shape == (len(idx), 32)
        # rows are the image embeddings of the listed files
        assert np.abs(idx.embeddings - tiny.encode_image(idx.paths)).max() <= EMB_TOL
        for query in ("this is a photo of chest X-ray", "pie chart"):
            hits = idx.search(tiny.encode_text(query), k=5)
            cli = T.cli_json("search", "-m", T.TINY, idx_dir, "--text", query, "--top", "5",
                             "--json")
            assert [h.path for h in hits] == [r["file"] for r in cli]
            assert max(abs(h.score - r["score"]) for h, r in zip(hits, cli)) <= EMB_TOL
            assert [h.row for h in hits] == [idx.paths.index(h.path) for h in hits]
        hits = idx.search(tiny.encode_image(srcs[0]), k=100)
        cli = T.cli_json("search", "-m", T.TINY, idx_dir, "--image", srcs[0], "--top", "100",
                         "--json")
        assert [h.path for h in hits] == [r["file"] for r in cli] and len(hits) == len(idx)
        assert hits[0].score > 0.9999 and hits[1].score > 0.9999
        two = idx.search(np.stack([tiny.encode_text("pie chart"), tiny.encode_image(srcs[0])]), 3)
        assert [h.path for h in two[1]] == [h.path for h in hits[:3]]
        assert idx.search(tiny.encode_text("x"), 0) == []
        # an uncommitted tail (an interrupted `index` run): ignored, as the command does
        n = len(idx)
        with open(os.path.join(idx_dir, "embeddings.npy"), "ab") as f:
            f.write(b"\x01" * 70)
        with open(os.path.join(idx_dir, "paths.txt"), "ab") as f:
            f.write(b"extra/line.png\npartial")
        idx2 = biomedclip.Index(idx_dir)
        assert len(idx2) == n and idx2.paths == idx.paths
        # NumPy-written files are read too; an empty index
        np_dir = os.path.join(tmp, "np")
        os.makedirs(np_dir)
        np.save(os.path.join(np_dir, "embeddings.npy"), np.asarray(idx.embeddings)[:3])
        with open(os.path.join(np_dir, "paths.txt"), "w") as f:
            f.write("a\nb\nc\n")
        assert biomedclip.Index(np_dir).search(idx.embeddings[2], 1)[0].path == "c"
        np.save(os.path.join(np_dir, "embeddings.npy"), np.zeros((0, 32), np.float32))
        assert len(biomedclip.Index(np_dir)) == 0
        assert biomedclip.Index(np_dir).search(np.ones(32), 3) == []
        # damaged or missing: Error subclasses with the file named
        np.save(os.path.join(np_dir, "embeddings.npy"), np.ones((5, 32), np.float32))
        with pytest.raises(biomedclip.FormatError, match="3 paths for 5 embeddings"):
            biomedclip.Index(np_dir)
        np.save(os.path.join(np_dir, "embeddings.npy"), np.ones((5, 32), np.float64))
        with pytest.raises(biomedclip.FormatError, match="float32"):
            biomedclip.Index(np_dir)
        with pytest.raises(biomedclip.FileError, match="embeddings.npy"):
            biomedclip.Index(os.path.join(tmp, "nowhere"))
        with pytest.raises(biomedclip.InvalidArgumentError, match="32 numbers"):
            idx.search(np.ones(16), 3)
        with pytest.raises(biomedclip.InvalidArgumentError):
            idx.search(np.ones(32), -1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(T.main(__file__))
