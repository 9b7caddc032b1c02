#!/usr/bin/python3
"""bench/matrix_report.py (make bench-matrix) on made-up results.

Checked: one table per level with a row per weight type; at avx512_bf16 the f32 and f16 rows are
avx512's runs, marked; the speed-up over f32 and the ratio to ONNX Runtime pair each round's runs
(median and range); the issue 23 targets are judged on those (bf16 images >= 1.7x f32 and >= 2x
ONNX Runtime, f16 text >= 1.4x f32, AVX2 >= 1.2x PyTorch, as run and held to AVX2, whose row
shows in the avx2 table only); the embedding check uses the weight
type's tolerance (a bf16 difference that f32 would fail passes, a larger one fails with exit
status 3); a run whose library took another level than asked fails the same way; --update-doc
writes between the matrix markers only. Standard library only, no build needed.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(ROOT, "bench", "matrix_report.py")
E = 8
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def emb(delta=0.0):
    v = [1.0 / E ** 0.5] * E
    v[0] += delta
    return v


def doc(level, rounds_s, items=1, delta=0.0, kernels=None, load=0.2):
    """A merged result (bench/rounds.py's shape): image_b1 with these rounds' medians."""
    res = {"image_b1": {"items": items, "median_s": statistics.median(rounds_s),
                        "rounds_median_s": rounds_s, "n": 3},
           "text24_b1": {"items": 1, "median_s": 0.05, "rounds_median_s": [0.05, 0.05], "n": 3}}
    d = {"results": res, "rounds": len(rounds_s), "check_image": emb(delta), "check_text24": emb(delta),
         "model": "/x/full.bmc"}
    if level:
        d["machine"] = {"library": "KERNELS=%s (test) BLAS=x" % (kernels or level), "cpu": "test cpu",
                        "online_cpus": 2, "loadavg_start": 0.1, "loadavg_end": load}
    return d


def write(d, name, j):
    with open(os.path.join(d, name), "w") as f:
        json.dump(j, f)


def rows(md, start):
    """The table rows after the line `start`, as lists of cells."""
    lines = md.splitlines()
    i = lines.index(start)
    while not lines[i].startswith("|"):
        i += 1
    out = []
    for line in lines[i + 2:]:  # past the header and the separator
        if line.startswith("|"):
            out.append([c.strip() for c in line.strip("|").split("|")])
        elif out:
            break
    return out


def run(d, *extra):
    p = subprocess.run([sys.executable, REPORT, d] + list(extra), capture_output=True, text=True)
    return p.returncode, p.stdout


def main():
    with tempfile.TemporaryDirectory() as d:
        # round 1: the machine is fast; round 2: everything 2x slower (a drift that pairing cancels)
        write(d, "ours-f32-avx512-t1.json", doc("avx512", [0.30, 0.60]))
        write(d, "ours-f16-avx512-t1.json", doc("avx512", [0.30, 0.60], delta=1e-4))
        write(d, "ours-bf16-avx512-t1.json", doc("avx512", [0.30, 0.60], delta=1e-3))
        write(d, "ours-bf16-avx512_bf16-t1.json", doc("avx512_bf16", [0.15, 0.33], delta=1e-3))
        write(d, "ours-f32-avx2-t1.json", doc("avx2", [0.40, 0.80]))
        write(d, "onnxruntime-t1.json", doc(None, [0.36, 0.66]))
        write(d, "torch-unpadded-t1.json", doc(None, [0.60, 0.80]))
        rc, out = run(d)
        check(rc == 0, "exit status 0 when every check passes (got %d)" % rc)
        t = rows(out, "**AVX-512 with BF16 (`avx512_bf16`)**")
        names = [r[0] for r in t]
        check(names[:3] == ["f32 (avx512 run)", "f16 (avx512 run)", "bf16"],
              "avx512_bf16 borrows avx512's f32 and f16 rows, marked: %s" % names[:3])
        bf = t[2]
        # columns: weights, threads, then per workload ms, vs ORT, vs PyTorch, vs f32
        check(bf[2] == "240", "bf16 image ms/item is the median of the rounds (%s)" % bf[2])
        check(bf[5] == "1.91x (1.82-2.00)", "bf16 speed-up over f32 pairs the rounds (%s)" % bf[5])
        check(bf[3] == "2.20x (2.00-2.40)", "bf16 ratio to ONNX Runtime pairs the rounds (%s)" % bf[3])
        check("| bf16 image, batch 1 >= 1.7x our f32 (1 thread) | 1.91x (1.82-2.00) | yes |" in out,
              "the 1.7x bf16 target judged")
        check("| bf16 image, batch 1 >= 2x ONNX Runtime (f32) (1 thread) | 2.20x (2.00-2.40) | yes |" in out,
              "the 2x ONNX Runtime bf16 target judged")
        check("| f16 text 24 tok, batch 1 >= 1.4x our f32 (1 thread) | 1.00x (1.00-1.00) | **no** |" in out,
              "the f16 text target judged as not met")
        check("| image, batch 1 >= 1.2x PyTorch (1 thread) | 1.25x (1.00-1.50) | yes |" in out,
              "the AVX2 PyTorch target judged")
        t2 = rows(out, "**AVX2 (`avx2`)**")
        check([r[0] for r in t2] == ["f32", "ONNX Runtime (f32)", "PyTorch unpadded (f32)"],
              "the avx2 table has its config and the peers' rows")

        # PyTorch held to AVX2: a row and a target of the avx2 table alone
        write(d, "torch-avx2-t1.json", doc(None, [0.40, 1.20]))
        rc, out = run(d)
        t2 = rows(out, "**AVX2 (`avx2`)**")
        check([r[0] for r in t2] == ["f32", "ONNX Runtime (f32)", "PyTorch unpadded (f32)",
                                     "PyTorch unpadded held to AVX2 (f32)"],
              "the avx2 table has PyTorch held to AVX2: %s" % [r[0] for r in t2])
        t1 = rows(out, "**AVX-512 (`avx512`)**")
        check("PyTorch unpadded held to AVX2 (f32)" not in [r[0] for r in t1],
              "the AVX-512 table has no AVX2 PyTorch row")
        check("| image, batch 1 >= 1.2x PyTorch held to AVX2 (1 thread) | 1.25x (1.00-1.50) | yes |" in out,
              "the AVX2 target against PyTorch held to AVX2 judged")
        os.remove(os.path.join(d, "torch-avx2-t1.json"))
        check("bf16 1 thr 1.0e-03 / 1.0e-03" in out and "DIFFERENT" not in out,
              "a bf16 difference of 1e-3 passes its tolerance")

        check("provisional" not in out, "a quiet run is not marked provisional")
        # a load average of 2.2 on 2 cores is our own 2-thread runs; 3.0 is other work too
        write(d, "ours-f16-avx512-t1.json", doc("avx512", [0.30, 0.60], delta=1e-4, load=2.2))
        rc, out = run(d)
        check("provisional" not in out, "the load of our own runs (2.2 on 2 cores) is not marked provisional")
        write(d, "ours-f16-avx512-t1.json", doc("avx512", [0.30, 0.60], delta=1e-4, load=3.0))
        rc, out = run(d)
        check("reached 3.0 on 2 cores" in out and "provisional" in out, "a load of 3.0 on 2 cores is marked provisional")
        write(d, "ours-f16-avx512-t1.json", doc("avx512", [0.30, 0.60], delta=1e-4))

        # a bf16 file off by far more than its tolerance, and a level the library did not apply
        write(d, "ours-bf16-avx512-t1.json", doc("avx512", [0.30, 0.60], delta=0.1))
        write(d, "ours-f32-avx2-t1.json", doc("avx2", [0.40, 0.80], kernels="avx512_bf16"))
        rc, out = run(d)
        check(rc == 3, "exit status 3 when a check fails (got %d)" % rc)
        check("(**DIFFERENT**)" in out, "the embedding outside the tolerance is marked")
        check("f32 at avx2, 1 threads: the library ran KERNELS=avx512_bf16" in out,
              "a level not applied is reported")
        # f32 with the same difference bf16 passed: f32's tolerance is tighter
        write(d, "ours-bf16-avx512-t1.json", doc("avx512", [0.30, 0.60], delta=1e-3))
        write(d, "ours-f32-avx2-t1.json", doc("avx2", [0.40, 0.80], delta=1e-3))
        rc, out = run(d)
        check(rc == 3 and "f32 at avx2, 1 threads: embeddings" in out, "f32's tolerance is tighter than bf16's")

        perf = os.path.join(d, "PERF.md")
        with open(perf, "w") as f:
            f.write("before\n<!-- matrix:begin -->\nold\n<!-- matrix:end -->\nafter\n")
        run(d, "--update-doc", perf)
        s = open(perf).read()
        check(s.startswith("before\n<!-- matrix:begin -->\n") and s.endswith("<!-- matrix:end -->\nafter\n")
              and "old" not in s and "**AVX2 (`avx2`)**" in s, "--update-doc writes between the markers only")
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
