#!/usr/bin/python3
"""`biomedclip classify` end to end: the real binary against the PyTorch reference
(tests/reference/zero_shot.py on the same random-weight snapshot) for the full-size and the tiny
(32-d embeddings) test models.

Inputs: PNG files made here with PIL from the shared example images (so decoding is exact on
both sides) covering PIL modes RGB (downscaled and upscaled), L, P (the original palette PNG)
and RGBA; the 9 labels and the template of the BiomedCLIP notebook, whose token ids come from
shared/data/tokenizer_test_vectors.json (verified against the HF tokenizer).

Checks: --json probabilities within 1e-5 (absolute) of the reference, in label order; the
table (sorted, --top), tsv, --labels-file (CRLF, blank lines), $BIOMEDCLIP_MODEL, --batch 1,
the default template; exit codes 0/1/2/3 with a failing image among good ones."""
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
TEMPLATE = "this is a photo of "
LABELS = ["adenocarcinoma histopathology", "brain MRI", "covid line chart",
          "squamous cell carcinoma histopathology", "immunohistochemistry histopathology",
          "bone X-ray", "chest X-ray", "pie chart", "hematoxylin and eosin histopathology"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args, env=None):
    p = subprocess.run([BIN, "classify"] + list(args), capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


def make_images(tmp):
    """PNG inputs of several PIL modes; returns their paths."""
    img = lambda name: Image.open(os.path.join(SHARED, "images", name))  # noqa: E731
    out = []

    def save(im, name):
        path = os.path.join(tmp, name)
        im.save(path)
        out.append(path)

    save(img("H_and_E_histopathology.jpg"), "h_and_e_rgb.png")          # RGB 1200x800, downscale
    save(img("bone_X-ray.jpg"), "bone_rgb_upscale.png")                  # RGB 170x228, upscale
    save(img("brain_MRI.jpg"), "brain_gray.png")                         # L 1200x1285
    out.append(os.path.join(SHARED, "images", "covid_line_chart.png"))  # P (nearest resize)
    sq = img("squamous_cell_carcinoma_histopathology.jpeg").convert("RGBA")
    a = np.asarray(sq).copy()
    a[:, :, 3] = np.linspace(40, 255, a.shape[1]).astype(np.uint8)[None, :]  # alpha ramp
    save(Image.fromarray(a, "RGBA"), "squamous_rgba.png")                # RGBA, premultiplied resize
    return out


def parse_json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def compare_model(model, images, ids, ref_mod):
    bmc = os.path.join(TESTDATA, model + ".bmc")
    snapshot = os.path.join(TESTDATA, model)
    rc, out, err = run("-m", bmc, "--labels", ",".join(LABELS), "--json", *images)
    check(rc == 0, "%s: classify --json exit 0 (got %d; stderr %r)" % (model, rc, err[-300:]))
    rows = parse_json_lines(out)
    check(len(rows) == len(images), "%s: one JSON line per image (%d)" % (model, len(rows)))
    check(all(r.get("file") == p and r.get("labels") == LABELS for r, p in zip(rows, images)),
          "%s: lines in input order, labels in label order" % model)
    ref = ref_mod.Reference(snapshot)
    want = ref.zero_shot(images, ids).numpy().astype(np.float64)
    got = np.array([r["probs"] for r in rows], dtype=np.float64)
    if got.shape != want.shape:
        check(False, "%s: probs shape %s vs reference %s" % (model, got.shape, want.shape))
        return rows
    diff = np.abs(got - want)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    print("     %s: max |C - torch| = %.3g at image %d label %d (C %.9g, torch %.9g); "
          "top-1 agree %d/%d" % (model, diff.max(), worst[0], worst[1], got[worst], want[worst],
                                 int((got.argmax(1) == want.argmax(1)).sum()), len(images)))
    check(diff.max() <= TOL, "%s: probabilities within %g of the PyTorch reference" % (model, TOL))
    check(np.allclose(got.sum(1), 1.0, atol=1e-6), "%s: each row sums to 1" % model)
    return rows


def main():
    if not os.path.exists(BIN):
        print("FAIL missing binary %s (make tests)" % BIN)
        return 1
    import torch
    import zero_shot as ref_mod
    torch.set_num_threads(2)
    tmp = tempfile.mkdtemp(prefix="bmc_classify_")
    try:
        return checks(tmp, ref_mod)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def checks(tmp, ref_mod):
    images = make_images(tmp)
    ids = ref_mod.vector_ids(os.path.join(SHARED, "tokenizer_test_vectors.json"),
                             [TEMPLATE + x for x in LABELS])
    tiny = os.path.join(TESTDATA, "tiny.bmc")

    # usage and errors first (cheap)
    rc, out, err = run("--help")
    check(rc == 0 and "--labels" in out and "--template" in out, "--help: usage on stdout, exit 0")
    rc, out, err = run("-m", tiny, images[0])
    check(rc == 2 and "label" in err, "no labels: exit 2 (got %d)" % rc)
    rc, out, err = run("-m", tiny, "--labels", "a,b")
    check(rc == 2, "no images: exit 2 (got %d)" % rc)
    rc, out, err = run("-m", tiny, "--labels", "a,b", "--bogus", images[0])
    check(rc == 2 and "--bogus" in err, "unknown option: exit 2 (got %d)" % rc)
    rc, out, err = run("-m", tiny, "--labels", "a,b", "--top", "0", images[0])
    check(rc == 2, "--top 0: exit 2 (got %d)" % rc)
    rc, out, err = run("-m", tiny, "--labels", "a,b", "--format", "xml", images[0])
    check(rc == 2, "--format xml: exit 2 (got %d)" % rc)
    rc, out, err = run("-m", os.path.join(tmp, "missing.bmc"), "--labels", "a,b", images[0])
    check(rc == 3 and "missing.bmc" in err, "model not loadable: exit 3 (got %d)" % rc)
    env = {k: v for k, v in os.environ.items() if k != "BIOMEDCLIP_MODEL"}
    rc, out, err = run("--labels", "a,b", images[0], env=env)
    check(rc == 3 and "BIOMEDCLIP_MODEL" in err, "no -m and no $BIOMEDCLIP_MODEL: exit 3 (got %d)" % rc)

    # parity with the PyTorch reference
    full_rows = compare_model("full", images, ids, ref_mod)
    tiny_rows = compare_model("tiny", images, ids, ref_mod)

    # a failing image among good ones: others printed in order, exit 1, both named on stderr
    bad = os.path.join(tmp, "corrupt.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nnot really a png")
    missing = os.path.join(tmp, "missing.png")
    rc, out, err = run("-m", tiny, "--labels", ",".join(LABELS), "--json", images[0], bad, images[1],
                       missing)
    rows = parse_json_lines(out)
    check(rc == 1, "failing images: exit 1 (got %d)" % rc)
    check([r["file"] for r in rows] == images[:2], "failing images: the good ones still printed, in order")
    check(bad in err and missing in err, "failing images: each named on stderr")
    # (a batch of other images may change the last float bits: GEMM blocking, header "Determinism")
    diff = max(abs(a - b) for r, t in zip(rows, tiny_rows[:2]) for a, b in zip(r["probs"], t["probs"]))
    check(diff <= 1e-6, "failing images: good results unchanged (max diff %.3g)" % diff)

    # other formats and options, on the tiny model: the same numbers as a --json run of the same image
    rc, out, err = run("-m", tiny, "--labels", ",".join(LABELS), "--json", images[0])
    probs0 = parse_json_lines(out)[0]["probs"]
    order = sorted(range(len(LABELS)), key=lambda j: (-probs0[j], j))
    rc, out, err = run("-m", tiny, "--labels", ",".join(LABELS), "--top", "3", images[0])
    lines = out.splitlines()
    shown = [ln.strip().rsplit(None, 1)[0].strip() for ln in lines[1:4]]
    check(rc == 0 and lines[0] == images[0] + ":" and shown == [LABELS[j] for j in order[:3]]
          and (len(lines) < 5 or not lines[4].strip()),
          "table --top 3: file header then the 3 most probable labels, best first")
    rc, out, err = run("-m", tiny, "--labels", ",".join(LABELS), "--format", "tsv", images[0])
    tsv = [ln.split("\t") for ln in out.splitlines()]
    check(rc == 0 and len(tsv) == len(LABELS) and all(r[0] == images[0] for r in tsv)
          and [r[1] for r in tsv] == [LABELS[j] for j in order]
          and all(abs(float(r[2]) - probs0[LABELS.index(r[1])]) == 0 for r in tsv),
          "tsv: file, label, prob for every label, best first, same numbers as --json")
    lf = os.path.join(tmp, "labels.txt")
    with open(lf, "wb") as f:
        f.write(("\r\n".join(LABELS[:4]) + "\r\n\r\n  " + "\n".join(LABELS[4:]) + "\n\n").encode())
    rc, out, err = run("-m", tiny, "--labels-file", lf, "--json", images[0])
    r = parse_json_lines(out)
    check(rc == 0 and r and r[0]["labels"] == LABELS and r[0]["probs"] == probs0,
          "--labels-file (CRLF, blank lines, spaces) = --labels")
    rc, out, err = run("-m", tiny, "--labels", LABELS[0], "--labels-file", lf, "--json", images[0])
    r = parse_json_lines(out)
    check(rc == 0 and r and r[0]["labels"] == LABELS[:1] + LABELS, "--labels then --labels-file: concatenated")
    env = dict(os.environ, BIOMEDCLIP_MODEL=tiny)
    rc, out, err = run("--labels", ",".join(LABELS), "--json", "--template", TEMPLATE, "--batch", "1",
                       "--threads", "1", *images, env=env)
    rows = parse_json_lines(out)
    diff = max(abs(a - b) for r, t in zip(rows, tiny_rows) for a, b in zip(r["probs"], t["probs"])) \
        if len(rows) == len(tiny_rows) else 1.0
    check(rc == 0 and len(rows) == len(images) and diff <= 1e-6,
          "$BIOMEDCLIP_MODEL, explicit template, --batch 1 --threads 1: same probs (max diff %.3g)" % diff)
    rc, out, err = run("-m", tiny, "--labels", ",".join(LABELS), "--json", "--template", "", images[0])
    r = parse_json_lines(out)
    check(rc == 0 and r and r[0]["probs"] != probs0, "--template \"\" changes the texts")

    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
