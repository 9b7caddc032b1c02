#!/usr/bin/python3
"""`biomedclip index --shard K/N` and `biomedclip index-merge` without a scheduler (the Slurm run
itself: tests/sh/test_slurm.sh).

For N = 1, 2, 3, 5 and 13 (more shards than files) the merged shards equal a single-node index
byte for byte (embeddings.npy, paths.txt) and clip-retrieval's layout holds the same rows; every
input lands in exactly one shard; a file that fails to decode is listed in failed.tsv with its
reason, the shard still exits 0, and a rerun does not retry it; a finished shard rerun changes no
byte; and index-merge refuses, naming the problem: a missing shard, a shard given twice, an
incomplete shard, shards of another listing or of another model, a target that holds an index;
index refuses to resume a shard directory with another K/N or another listing; bad --shard values
are usage errors (exit 2)."""
import glob
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
TINY = os.path.join(TESTDATA, "tiny.bmc")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(*args, cwd=None):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def read(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


def make_inputs(root):
    names = sorted(n for n in os.listdir(os.path.join(SHARED, "images")) if n.endswith((".jpg", ".png")))
    k = 0
    for size in (120, 200):
        for n in names:
            d = os.path.join(root, "d%d" % (k % 2))
            os.makedirs(d, exist_ok=True)
            Image.open(os.path.join(SHARED, "images", n)).convert("RGB").resize((size, size + 17)).save(
                os.path.join(d, "%02d.png" % k))
            k += 1
    with open(os.path.join(root, "d1", "05b_broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nbroken")
    return k


def clip_rows(d):
    parts = sorted(glob.glob(os.path.join(d, "img_emb", "img_emb_*.npy")))
    metas = sorted(glob.glob(os.path.join(d, "metadata", "metadata_*.jsonl")))
    emb = np.concatenate([np.load(p) for p in parts]) if parts else None
    paths = [json.loads(line)["image_path"] for m in metas for line in open(m, encoding="utf-8")]
    return parts, emb, paths


def main():
    tmp = tempfile.mkdtemp(prefix="bmc-shard-")
    try:
        n_good = make_inputs(os.path.join(tmp, "data"))
        rc, _, err = run("index", "-m", TINY, "-o", "single", "data", cwd=tmp)
        check(rc == 1 and "05b_broken.png" in err, "single-node index: exit 1 naming the broken file")
        single = os.path.join(tmp, "single")
        paths = read(single, "paths.txt").decode().split("\n")[:-1]
        check(len(paths) == n_good, "single-node index: %d rows" % len(paths))
        parts, emb, meta = clip_rows(single)
        check([os.path.basename(p) for p in parts] == ["img_emb_0.npy"] and
              (emb == np.load(os.path.join(single, "embeddings.npy"))).all() and meta == paths,
              "single-node index: clip-retrieval layout img_emb_0.npy / metadata_0.jsonl == the index")

        for n in (1, 2, 3, 5, 13):
            shards = []
            for k in range(1, n + 1):
                d = "s%d/%d-of-%d" % (n, k, n)
                os.makedirs(os.path.join(tmp, "s%d" % n), exist_ok=True)
                rc, _, err = run("index", "-m", TINY, "--shard", "%d/%d" % (k, n), "-o", d, "data", cwd=tmp)
                if rc != 0:
                    check(False, "shard %d/%d: exit %d: %s" % (k, n, rc, err))
                shards.append(d)
            got = []
            for d in shards:
                got += read(os.path.join(tmp, d), "paths.txt").decode().split("\n")[:-1]
            failed = b"".join(read(os.path.join(tmp, d), "failed.tsv") for d in shards).decode()
            check(sorted(got) == sorted(paths) and len(got) == len(set(got)) and failed.count("\n") == 1 and
                  "05b_broken.png\t" in failed, "N=%d: every input in exactly one shard (rows or failed.tsv)" % n)
            rc, _, err = run("index-merge", "-o", "m%d" % n, *reversed(shards), cwd=tmp)
            m = os.path.join(tmp, "m%d" % n)
            check(rc == 0 and read(m, "embeddings.npy") == read(single, "embeddings.npy") and
                  read(m, "paths.txt") == read(single, "paths.txt"),
                  "N=%d: merged == single-node index byte for byte (%s)" % (n, err.strip()))
            parts, emb, meta = clip_rows(m)
            width = len(str(n))  # clip-retrieval: int(log10(N)) + 1 digits
            check(len(parts) == n and os.path.basename(parts[-1]) == "img_emb_%0*d.npy" % (width, n - 1) and
                  (emb == np.load(os.path.join(m, "embeddings.npy"))).all() and meta == paths,
                  "N=%d: clip-retrieval parts img_emb_%s..: rows and metadata == the index" % (n, "0" * width))
            check("05b_broken.png" in open(os.path.join(m, "failed.tsv")).read(), "N=%d: failed.tsv merged" % n)

        # a finished shard rerun: nothing retried, no byte changed
        d = os.path.join(tmp, "s3", "2-of-3")
        before = {f: read(d, f) for f in ("embeddings.npy", "paths.txt", "failed.tsv", "shard.txt")}
        rc, _, err = run("index", "-m", TINY, "--shard", "2/3", "-o", "s3/2-of-3", "data", cwd=tmp)
        check(rc == 0 and all(read(d, f) == b for f, b in before.items()), "rerun of a finished shard: no change")
        rc, _, err = run("index", "-m", TINY, "--shard", "2/3", "-o", "s3/1-of-3", "data", cwd=tmp)
        check(rc == 1 and "holds shard 1/3, not 2/3" in err, "resume with another K/N refused: " + err.strip())
        rc, _, err = run("index", "-m", TINY, "--shard", "1/3", "-o", "s3/1-of-3", "data/d0", cwd=tmp)
        check(rc == 1 and "another input listing" in err, "resume with another listing refused: " + err.strip())
        rc, _, err = run("index", "-m", TINY, "--shard", "1/3", "-o", "single", "data", cwd=tmp)
        check(rc == 1 and "not a shard" in err, "a plain index is not resumed as a shard: " + err.strip())

        s = ["s3/1-of-3", "s3/2-of-3", "s3/3-of-3"]
        rc, _, err = run("index-merge", "-o", "x1", s[0], s[2], cwd=tmp)
        check(rc == 1 and "missing shards of 3: 2/3" in err, "merge: missing shard named: " + err.strip())
        rc, _, err = run("index-merge", "-o", "x2", s[0], s[1], s[2], "s3/2-of-3/", cwd=tmp)
        check(rc == 1 and "given twice" in err and "2/3" in err, "merge: doubled shard named: " + err.strip())
        rc, _, err = run("index-merge", "-o", "x3", s[0], "s2/2-of-2", s[2], cwd=tmp)
        check(rc == 1 and "different splits" in err, "merge: shards of another split: " + err.strip())
        # another listing: shard 2/3 of a smaller input set
        run("index", "-m", TINY, "--shard", "2/3", "-o", "other", "data/d0", cwd=tmp)
        rc, _, err = run("index-merge", "-o", "x4", s[0], "other", s[2], cwd=tmp)
        check(rc == 1 and "different input listings" in err, "merge: another listing: " + err.strip())
        # another model: the same listing embedded with the full-size model
        full = os.path.join(TESTDATA, "full.bmc")
        run("index", "-m", full, "--shard", "2/3", "-o", "othermodel", "data", cwd=tmp)
        rc, _, err = run("index-merge", "-o", "x5", s[0], "othermodel", s[2], cwd=tmp)
        check(rc == 1 and "different model files" in err, "merge: another model: " + err.strip())
        # an incomplete shard: its shard.txt says so until the run ends
        inc = os.path.join(tmp, "inc")
        shutil.copytree(os.path.join(tmp, s[1]), inc)
        txt = read(inc, "shard.txt").decode().replace("complete 1", "complete 0")
        open(os.path.join(inc, "shard.txt"), "w").write(txt)
        rc, _, err = run("index-merge", "-o", "x6", s[0], "inc", s[2], cwd=tmp)
        check(rc == 1 and "not complete" in err, "merge: incomplete shard: " + err.strip())
        rc, _, err = run("index-merge", "-o", "m3", *s, cwd=tmp)
        check(rc == 1 and "already holds an index" in err, "merge: target holds an index: " + err.strip())
        rc, _, err = run("index-merge", "-o", "x7", "data", cwd=tmp)
        check(rc == 1 and "not a shard" in err, "merge: a directory that is not a shard: " + err.strip())
        for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/2", "1/2x"):
            rc, _, err = run("index", "-m", TINY, "--shard", bad, "-o", "y", "data", cwd=tmp)
            check(rc == 2 and "--shard wants K/N" in err, "--shard %s: usage error" % bad)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
