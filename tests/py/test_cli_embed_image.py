#!/usr/bin/python3
"""`biomedclip embed-image` end to end: the real binary on the shared 224x224 example crops
(shared/data/images/preprocessed_224/*.ppm: already the model's size, so preprocessing is only
/255 and Normalize) plus a corrupt and a missing file, against the PyTorch reference embeddings
of the same crops ($BMC_TESTDATA/vision_golden/<model>/, tests/prep/30_vision_golden.sh).

Checks: good files still come out, in order, when others fail; the exit code is 1; each bad
file is named on stderr; --json lines are {"file", "embedding"} with embed_dim numbers;
the tab format; --raw vs normalised; --batch 1 vs the default batch; relative L2 error vs the
reference <= 1e-5 for the full-size model."""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(ROOT, BUILD, "biomedclip") if not os.path.isabs(BUILD) else os.path.join(BUILD, "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(ROOT, BUILD, "testdata"))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
TOL = 1e-5
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def read_f32(path):
    with open(path, "rb") as f:
        b = f.read()
    return list(struct.unpack("<%df" % (len(b) // 4), b))


def rel_l2(a, b):
    num = sum((x - y) ** 2 for x, y in zip(a, b))
    den = sum(y * y for y in b)
    return math.sqrt(num / den) if den else math.sqrt(num)


def run(*args):
    p = subprocess.run([BIN, "embed-image"] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def golden(model):
    d = os.path.join(TESTDATA, "vision_golden", model)
    names = open(os.path.join(d, "names.txt")).read().split()
    n = len(names)
    proj, norm = read_f32(os.path.join(d, "proj.f32")), read_f32(os.path.join(d, "norm.f32"))
    e = len(proj) // n
    rows = lambda v: [v[i * e:(i + 1) * e] for i in range(n)]  # noqa: E731
    return names, rows(proj), rows(norm), e


def main():
    if not os.path.exists(BIN):
        print("FAIL missing binary %s (make tests)" % BIN)
        return 1
    tmp = tempfile.mkdtemp(prefix="bmc_cli_embed_")
    bad = os.path.join(tmp, "corrupt.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n this is not a PNG body")
    missing = os.path.join(tmp, "no_such_file.jpg")

    rc, out, err = run("--help")
    check(rc == 0 and "embed-image" in out and "--raw" in out, "--help prints usage, exit 0")
    rc, out, err = run("-m", os.path.join(TESTDATA, "tiny.bmc"))
    check(rc == 2 and out == "", "no images: exit 2 (got %d)" % rc)
    rc, out, err = run("--bogus", "x.png")
    check(rc == 2, "unknown option: exit 2 (got %d)" % rc)
    rc, out, err = run("-m", os.path.join(tmp, "missing.bmc"), "x.png")
    check(rc == 3 and "missing.bmc" in err, "model not loadable: exit 3 (got %d)" % rc)

    for model in ("full", "tiny"):
        names, proj, norm, e = golden(model)
        goods = [os.path.join(SHARED, "images", "preprocessed_224", n + ".ppm") for n in names if n != "random_normal"]
        mpath = os.path.join(TESTDATA, model + ".bmc")
        # a bad file between two good ones and a missing one at the end
        files = [goods[0], bad, goods[1], missing]
        rc, out, err = run("-m", mpath, "--json", *files)
        lines = out.splitlines()
        print("%s --json: exit %d, %d lines; stderr:\n  %s" % (model, rc, len(lines), err.strip().replace("\n", "\n  ")))
        check(rc == 1, "%s: exit 1 when some files fail (got %d)" % (model, rc))
        check(len(lines) == 2, "%s: two good files printed (got %d lines)" % (model, len(lines)))
        check(bad in err and missing in err, "%s: both bad files named on stderr" % model)
        check(goods[0] not in err and goods[1] not in err, "%s: good files not on stderr" % model)
        recs = [json.loads(l) for l in lines]
        check([r.get("file") for r in recs] == goods, "%s: good files in input order" % model)
        check(all(sorted(r) == ["embedding", "file"] for r in recs), "%s: keys are file, embedding" % model)
        check(all(len(r["embedding"]) == e for r in recs), "%s: %d numbers per embedding" % (model, e))
        for i, r in enumerate(recs):
            v = r["embedding"]
            err_l2 = rel_l2(v, norm[i])
            nrm = math.sqrt(sum(x * x for x in v))
            print("  %s %s: rel L2 vs torch %.3e, norm %.9f" % (model, names[i], err_l2, nrm))
            check(err_l2 <= TOL, "%s %s: normalised embedding within %g of torch (%.3e)" % (model, names[i], TOL, err_l2))
            check(abs(nrm - 1) < 1e-6, "%s %s: unit norm" % (model, names[i]))

        if model != "tiny":
            continue
        # text format, --raw, --batch 1 (each image alone) vs the default batch
        rc, out, err = run("-m", mpath, "--raw", "--batch", "1", "--threads", "1", *goods)
        check(rc == 0 and err == "", "tiny --raw: exit 0, quiet (got %d, %r)" % (rc, err))
        lines = out.splitlines()
        check(len(lines) == 2 and all("\t" in l for l in lines), "tiny text format: path<TAB>numbers")
        for i, l in enumerate(lines):
            path, nums = l.split("\t")
            v = [float(x) for x in nums.split(" ")]
            check(path == goods[i] and len(v) == e, "tiny text line %d: path and %d numbers" % (i, e))
            err_l2 = rel_l2(v, proj[i])
            print("  tiny %s --raw --batch 1: rel L2 vs torch %.3e" % (names[i], err_l2))
            check(err_l2 <= TOL, "tiny %s: raw embedding within %g of torch" % (names[i], TOL))
            check(abs(math.sqrt(sum(x * x for x in v)) - 1) > 1e-3, "tiny %s: --raw is not normalised" % names[i])
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all embed-image checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
