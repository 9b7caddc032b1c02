#!/usr/bin/python3
"""`biomedclip index` and `biomedclip search` end to end with the real binary.

index (tiny model, 32-d): the recursive walk (sorted, extensions in any case, hidden files and
other files skipped), the index directory as NumPy reads it (embeddings.npy (N, D) unit rows,
paths.txt, index.json), rows equal to the PyTorch reference image features, an unchanged index
on a rerun, appending new images only, recovery from an interrupted run (uncommitted rows and
paths past the header's count), a failing image (exit 1, the rest indexed), a model of another
dimension refused, --progress.
search: the full-size model's scores for a text query and an image query against the PyTorch
reference cosines (within 1e-5) and the same ranking; --top, --format tsv/table, exit codes."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(ROOT, BUILD, "testdata"))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
TOL = 1e-5
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(cmd, *args, env=None, cwd=None):
    p = subprocess.run([BIN, cmd] + list(args), capture_output=True, text=True, env=env, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def read_index(d):
    emb = np.load(os.path.join(d, "embeddings.npy"))
    with open(os.path.join(d, "paths.txt"), encoding="utf-8") as f:
        paths = f.read().split("\n")
    assert paths[-1] == "", "paths.txt must end with a newline"
    return emb, paths[:-1]


def snapshot_files(d):
    return {n: open(os.path.join(d, n), "rb").read() for n in ("embeddings.npy", "paths.txt")}


def make_tree(root):
    src = lambda n: Image.open(os.path.join(SHARED, "images", n))  # noqa: E731
    for d in ("a/sub", "b", "c"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    src("chest_X-ray.jpg").resize((300, 340)).save(os.path.join(root, "a", "chest.png"))
    src("brain_MRI.jpg").resize((250, 260)).save(os.path.join(root, "a", "sub", "brain.PNG"), "PNG")
    shutil.copy(os.path.join(SHARED, "images", "covid_line_chart.png"), os.path.join(root, "b"))
    src("bone_X-ray.jpg").save(os.path.join(root, "b", "bone.png"))
    src("bone_X-ray.jpg").save(os.path.join(root, "b", ".hidden.png"))
    with open(os.path.join(root, "b", "notes.txt"), "w") as f:
        f.write("not an image\n")
    src("IHC_histopathology.jpg").save(os.path.join(root, "c", "ihc.png"))
    with open(os.path.join(root, "c", "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 truncated jpeg")
    # these images are in the expected sorted order of the walk of a/ and b/
    return ["tree/a/chest.png", "tree/a/sub/brain.PNG", "tree/b/bone.png", "tree/b/covid_line_chart.png"]


def test_index(tmp, ref_mod):
    tiny = os.path.join(TESTDATA, "tiny.bmc")
    full = os.path.join(TESTDATA, "full.bmc")
    expected = make_tree(os.path.join(tmp, "tree"))
    idx = "idx"

    rc, out, err = run("index", "--help")
    check(rc == 0 and "-o" in out, "index --help: exit 0")
    rc, out, err = run("index", "-m", tiny, "tree/a", cwd=tmp)
    check(rc == 2, "index without -o: exit 2 (got %d)" % rc)
    rc, out, err = run("index", "-m", tiny, "-o", idx, cwd=tmp)
    check(rc == 2, "index without directories: exit 2 (got %d)" % rc)
    rc, out, err = run("index", "-m", "missing.bmc", "-o", idx, "tree/a", cwd=tmp)
    check(rc == 3, "index with a missing model: exit 3 (got %d)" % rc)

    rc, out, err = run("index", "-m", tiny, "-o", idx, "tree/b/", "tree/a", cwd=tmp)
    check(rc == 0 and err == "" and out == "", "index: exit 0, silent when stderr is not a terminal "
          "(rc %d, stderr %r)" % (rc, err[-200:]))
    d = os.path.join(tmp, idx)
    emb, paths = read_index(d)
    check(paths == expected, "paths.txt: images of both trees, sorted, hidden/other files skipped: %s" % paths)
    check(emb.dtype == np.float32 and emb.shape == (4, 32), "embeddings.npy loads as float32 %s" % (emb.shape,))
    dev = float(np.abs(np.linalg.norm(emb.astype(np.float64), axis=1) - 1).max()) if len(emb) else 1.0
    check(dev < 1e-5, "rows have unit norm (max |norm-1| %.2g)" % dev)
    meta = json.load(open(os.path.join(d, "index.json")))
    check(meta.get("format") == "biomedclip-index" and meta.get("dim") == 32, "index.json: %s" % meta)
    ref = ref_mod.Reference(os.path.join(TESTDATA, "tiny"))
    want = ref.image_features([os.path.join(tmp, p) for p in expected]).numpy()
    diff = float(np.abs(emb - want).max()) if emb.shape == want.shape else float("inf")
    check(diff <= TOL, "rows = PyTorch reference image features (max abs diff %.3g)" % diff)

    before = snapshot_files(d)
    rc, out, err = run("index", "-m", tiny, "-o", idx, "tree/a", "tree/b", cwd=tmp)
    check(rc == 0 and snapshot_files(d) == before, "rerun on the same trees: index unchanged")

    Image.open(os.path.join(SHARED, "images", "pie_chart.png")).resize((400, 300)).save(
        os.path.join(tmp, "tree", "b", "pie.png"))
    rc, out, err = run("index", "-m", tiny, "-o", idx, "tree/a", "tree/b", cwd=tmp)
    emb2, paths2 = read_index(d)
    check(rc == 0 and paths2 == expected + ["tree/b/pie.png"] and emb2.shape == (5, 32)
          and np.array_equal(emb2[:4], emb), "a new image: appended, old rows untouched")

    # an interrupted run: rows and paths written past the committed count
    with open(os.path.join(d, "embeddings.npy"), "ab") as f:
        f.write(np.full(32 * 2 + 5, 7.0, np.float32).tobytes())
    with open(os.path.join(d, "paths.txt"), "a") as f:
        f.write("tree/ghost1.png\ntree/ghost2.pn")
    np_view = np.load(os.path.join(d, "embeddings.npy"))
    check(np_view.shape == (5, 32), "NumPy still reads the committed rows of an interrupted index")
    Image.open(os.path.join(SHARED, "images", "IHC_histopathology.jpg")).save(os.path.join(tmp, "tree", "a", "ihc2.png"))
    rc, out, err = run("index", "-m", tiny, "-o", idx, "tree/a", "tree/b", cwd=tmp)
    emb3, paths3 = read_index(d)
    check(rc == 0 and paths3 == paths2 + ["tree/a/ihc2.png"] and emb3.shape == (6, 32)
          and np.array_equal(emb3[:5], emb2) and abs(np.linalg.norm(emb3[5]) - 1) < 1e-5,
          "after an interrupted run: uncommitted rows/paths dropped, the new image appended")
    size = os.path.getsize(os.path.join(d, "embeddings.npy"))
    check(size == 128 + 6 * 32 * 4, "embeddings.npy is exactly header + rows (%d bytes)" % size)

    # a failing image: reported, exit 1, the others indexed
    rc, out, err = run("index", "-m", tiny, "-o", idx, "tree/c", cwd=tmp)
    emb4, paths4 = read_index(d)
    check(rc == 1 and "broken.jpg" in err and paths4 == paths3 + ["tree/c/ihc.png"],
          "a broken image: exit 1, named on stderr, the good one indexed (rc %d)" % rc)
    rc, out, err = run("index", "-m", tiny, "-o", idx, "tree/nonexistent", cwd=tmp)
    check(rc == 1 and "nonexistent" in err, "a missing directory: exit 1 (got %d)" % rc)

    # a model of another dimension is refused
    rc, out, err = run("index", "-m", full, "-o", idx, "tree/a", cwd=tmp)
    check(rc == 1 and "32" in err and read_index(d)[1] == paths4, "a 512-d model on a 32-d index: refused")

    # a second writer is refused while the index is locked (flock), and the index is untouched
    import fcntl
    before = snapshot_files(d)
    with open(os.path.join(d, "embeddings.npy"), "rb") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        rc, out, err = run("index", "-m", tiny, "-o", idx, "tree/a", "tree/b", "tree/c", cwd=tmp)
    check(rc == 1 and "another process" in err and snapshot_files(d) == before,
          "an index locked by another writer: refused, untouched (rc %d)" % rc)

    # progress on request
    rc, out, err = run("index", "-m", tiny, "-o", "idx_progress", "--progress", "tree/a", cwd=tmp)
    check(rc == 0 and "img/s" in err and "3/3" in err, "--progress: count and rate on stderr")
    return d


def test_search(tmp, ref_mod, tiny_idx):
    tiny = os.path.join(TESTDATA, "tiny.bmc")
    full = os.path.join(TESTDATA, "full.bmc")
    rc, out, err = run("search", "--help")
    check(rc == 0 and "--text" in out, "search --help: exit 0")
    rc, out, err = run("search", "-m", tiny, tiny_idx)
    check(rc == 2, "search without a query: exit 2 (got %d)" % rc)
    rc, out, err = run("search", "-m", tiny, tiny_idx, "--text", "x", "--image", "y.png")
    check(rc == 2, "search with two queries: exit 2 (got %d)" % rc)
    rc, out, err = run("search", "-m", tiny, os.path.join(tmp, "no_index"), "--text", "x")
    check(rc == 1 and "no_index" in err, "search of a missing index: exit 1 (got %d)" % rc)
    rc, out, err = run("search", "-m", os.path.join(tmp, "missing.bmc"), tiny_idx, "--text", "x")
    check(rc == 3, "search with a missing model: exit 3 (got %d)" % rc)
    rc, out, err = run("search", "-m", full, tiny_idx, "--text", "x")
    check(rc == 1 and "32" in err, "search with a model of another dimension: exit 1 (got %d)" % rc)
    rc, out, err = run("search", "-m", tiny, tiny_idx, "--image", os.path.join(tmp, "tree", "c", "broken.jpg"))
    check(rc == 1 and "broken.jpg" in err, "search with an undecodable query image: exit 1 (got %d)" % rc)

    # image query on the tiny index: the image itself first, with cosine 1
    q = os.path.join(tmp, "tree", "b", "bone.png")
    rc, out, err = run("search", "-m", tiny, tiny_idx, "--image", q, "--json", "--top", "3")
    hits = [json.loads(x) for x in out.splitlines()]
    check(rc == 0 and len(hits) == 3 and hits[0]["file"] == "tree/b/bone.png"
          and abs(hits[0]["score"] - 1) < 1e-5 and all(hits[i]["score"] >= hits[i + 1]["score"] for i in range(2)),
          "image query: itself first with score 1, 3 hits best first")
    rc, out, err = run("search", "-m", tiny, tiny_idx, "--image", q, "--format", "tsv", "--top", "100")
    emb, paths = read_index(tiny_idx)
    tsv = [x.split("\t") for x in out.splitlines()]
    check(rc == 0 and len(tsv) == len(paths) and sorted(r[0] for r in tsv) == sorted(paths),
          "--top larger than the index: every image once (tsv)")
    rc, out, err = run("search", "-m", tiny, tiny_idx, "--image", q, "--top", "2")
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 2 and lines[0].split()[0] == "1" and lines[0].split()[-1] == "tree/b/bone.png",
          "table: rank, score, path")

    # the full-size model against the PyTorch reference: scores and ranking
    full_idx = os.path.join(tmp, "idx_full")
    rc, out, err = run("index", "-m", full, "-o", full_idx, "tree/a", "tree/b", cwd=tmp)
    check(rc == 0, "index with the full-size model: exit 0 (rc %d %s)" % (rc, err[-200:]))
    emb, paths = read_index(full_idx)
    ref = ref_mod.Reference(os.path.join(TESTDATA, "full"))
    img_ref = ref.image_features([os.path.join(tmp, p) for p in paths]).numpy().astype(np.float64)
    text = "this is a photo of chest X-ray"
    txt_ref = ref.text_features(ref_mod.vector_ids(os.path.join(SHARED, "tokenizer_test_vectors.json"),
                                                   [text])).numpy().astype(np.float64)
    for name, args, qv in (("text", ("--text", text), txt_ref[0]),
                           ("image", ("--image", os.path.join(tmp, paths[1])), img_ref[1])):
        rc, out, err = run("search", "-m", full, full_idx, *args, "--json", "--top", "100", cwd=tmp)
        hits = [json.loads(x) for x in out.splitlines()]
        want = img_ref @ qv / (np.linalg.norm(img_ref, axis=1) * np.linalg.norm(qv))
        got = {h["file"]: h["score"] for h in hits}
        if rc != 0 or sorted(got) != sorted(paths):
            check(False, "full %s query: exit 0 and every image (rc %d, %s)" % (name, rc, err[-200:]))
            continue
        diff = max(abs(got[p] - want[i]) for i, p in enumerate(paths))
        ref_order = [paths[i] for i in sorted(range(len(paths)), key=lambda i: -want[i])]
        c_order = [h["file"] for h in hits]
        # ranks may only differ between images whose reference scores are within the tolerance
        same_rank = all(c_order[k] == ref_order[k] or
                        abs(want[paths.index(c_order[k])] - want[paths.index(ref_order[k])]) <= 2 * TOL
                        for k in range(len(paths)))
        print("     full %s query: scores %s; max |C - torch| = %.3g" %
              (name, ["%.6f" % want[paths.index(p)] for p in ref_order], diff))
        check(diff <= TOL, "full %s query: scores within %g of the reference cosines" % (name, TOL))
        check(same_rank, "full %s query: ranked as the reference ranks (%s)" % (name, c_order))


def main():
    if not os.path.exists(BIN):
        print("FAIL missing binary %s (make tests)" % BIN)
        return 1
    import torch
    import zero_shot as ref_mod
    torch.set_num_threads(2)
    tmp = tempfile.mkdtemp(prefix="bmc_index_")
    try:
        tiny_idx = test_index(tmp, ref_mod)
        test_search(tmp, ref_mod, tiny_idx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
