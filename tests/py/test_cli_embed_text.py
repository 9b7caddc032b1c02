#!/usr/bin/python3
"""`biomedclip embed-text`: output format, options, and agreement with the PyTorch reference.

The reference embeddings are the goldens of tests/reference/text.py ($BMC_TESTDATA/text_golden/
<model>/, made by tests/prep/40_text_golden.sh) for the tokenizer test prompts, whose ids come
from shared/data/tokenizer_test_vectors.json (the HF tokenizers library). The binary tokenizes
the same texts itself, so this checks tokenizer + text tower + normalisation end to end.
The ligature prompt is left out: open_clip's ftfy cleaning changes its ids (see the vectors file).
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA") or os.path.join(os.path.dirname(BIN), "testdata")
TOL = 1e-5       # relative L2 against the reference (spec target)
BATCH_TOL = 5e-6  # the same text in another batch (other GEMM blocking)

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(args, stdin=None):
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def read_f32(path):
    with open(path, "rb") as f:
        b = f.read()
    return list(struct.unpack("<%df" % (len(b) // 4), b))


def rel_l2(a, b):
    if len(a) != len(b):
        return math.inf
    num = sum((x - y) ** 2 for x, y in zip(a, b))
    den = sum(y * y for y in b)
    return math.sqrt(num) / (math.sqrt(den) or 1.0)


def parse_json_lines(out):
    return [json.loads(line) for line in out.splitlines()]


def prompts(golden):
    with open(os.path.join(golden, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    return [c for c in cases if c["text"] is not None and "\ufb01" not in c["text"]]


def agreement(model_name):
    model = os.path.join(TESTDATA, model_name + ".bmc")
    golden = os.path.join(TESTDATA, "text_golden", model_name)
    cases = prompts(golden)
    texts = [c["text"] for c in cases]
    check(len(texts) >= 9, "%s: %d prompts with goldens" % (model_name, len(texts)))
    for raw in (False, True):
        args = ["-m", model, "--json"] + (["--raw"] if raw else []) + ["--"] + texts
        rc, out, err = run(args)
        check(rc == 0, "%s%s: exit status %d %s" % (model_name, " --raw" if raw else "", rc, err.strip()))
        rows = parse_json_lines(out)
        check(len(rows) == len(texts), "%s: %d lines for %d texts" % (model_name, len(rows), len(texts)))
        check([r["text"] for r in rows] == texts, "%s: texts echoed in input order" % model_name)
        worst, worst_name = 0.0, ""
        for c, r in zip(cases, rows):
            ext = "proj" if raw else "norm"
            ref = read_f32(os.path.join(golden, c["name"] + "." + ext + ".f32"))
            e = rel_l2(r["embedding"], ref)
            if e > worst:
                worst, worst_name = e, c["name"]
            if not e <= TOL:
                check(False, "%s %s %s: rel_l2 %.3e vs reference (%r)"
                      % (model_name, c["name"], ext, e, c["text"][:50]))
            if not raw:
                n = math.sqrt(sum(x * x for x in r["embedding"]))
                if abs(n - 1) > 1e-6:
                    check(False, "%s %s: norm %.9f" % (model_name, c["name"], n))
        check(worst <= TOL, "%s%s: worst rel_l2 vs reference %.3e (%s), %d texts in one call"
              % (model_name, " --raw" if raw else "", worst, worst_name, len(texts)))
    return cases


def formats(model_name, cases):
    model = os.path.join(TESTDATA, model_name + ".bmc")
    simple = [c["text"] for c in cases if "\t" not in c["text"] and "\n" not in c["text"]
              and "\r" not in c["text"]][:6]
    rc, out_json, _ = run(["-m", model, "--json", "--"] + simple)
    ref = [r["embedding"] for r in parse_json_lines(out_json)]
    dim = len(ref[0])

    check(all(len(r) == dim and all(math.isfinite(x) for x in r) for r in ref),
          "json: %d finite numbers per text" % dim)

    # plain text: "text<TAB>v1 v2 ..."
    rc, out, err = run(["-m", model, "--"] + simple)
    lines = out.split("\n")
    check(rc == 0 and lines[-1] == "" and len(lines) - 1 == len(simple), "plain: one line per text")
    ok = True
    for t, line, r in zip(simple, lines, ref):
        text, _, nums = line.partition("\t")
        vals = [float(x) for x in nums.split(" ")]
        ok &= text == t and len(vals) == dim and vals == r
    check(ok, "plain: text<TAB>%d numbers, identical to --json" % dim)

    # --batch 1: every text alone agrees with the packed call
    rc, out, _ = run(["-m", model, "--json", "--batch", "1", "--threads", "1", "--"] + simple)
    one = [r["embedding"] for r in parse_json_lines(out)]
    worst = max(rel_l2(a, b) for a, b in zip(one, ref))
    check(rc == 0 and len(one) == len(ref) and worst <= BATCH_TOL,
          "--batch 1 vs one packed call: worst rel_l2 %.3e" % worst)

    # --file (CRLF, an empty line, no final newline), stdin, and arguments, in input order
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "texts.txt")
        with open(path, "wb") as f:
            f.write((simple[0] + "\r\n\n" + simple[1] + "\n" + simple[2]).encode("utf-8"))
        stdin_text = (simple[3] + "\n" + simple[4] + "\n").encode("utf-8")
        rc, out, err = run(["-m", model, "--json", simple[5], "--file", path, "--file", "-",
                            "--", "-" + simple[0]], stdin=stdin_text)
        rows = parse_json_lines(out)
        got = [r["text"] for r in rows]
        want = [simple[5], simple[0], "", simple[1], simple[2], simple[3], simple[4], "-" + simple[0]]
        check(rc == 0 and got == want, "--file/stdin/args in input order: %r" % got)
        if rc == 0 and got == want:
            byname = dict(zip(simple, ref))
            worst = max(rel_l2(r["embedding"], byname[t]) for r, t in zip(rows, got) if t in byname)
            check(worst <= BATCH_TOL, "--file texts agree with argument texts: %.3e" % worst)
            empty = [c for c in cases if c["text"] == ""]
            if empty:
                g = read_f32(os.path.join(TESTDATA, "text_golden", model_name,
                                          empty[0]["name"] + ".norm.f32"))
                check(rel_l2(rows[2]["embedding"], g) <= TOL,
                      "empty line = empty text = reference [CLS] [SEP]")
            check(rows[7]["embedding"] != rows[1]["embedding"],
                  "after --, a text starting with '-' is a text of its own")

        # a missing file: exit 1, the other texts still printed
        rc, out, err = run(["-m", model, "--json", "--file", os.path.join(d, "missing"), simple[0]])
        check(rc == 1 and len(parse_json_lines(out)) == 1 and "missing" in err,
              "missing --file: exit 1, other texts printed (%d, %r)" % (rc, err.strip()))

    rc, out, _ = run(["--help"])
    check(rc == 0 and "usage: biomedclip embed-text" in out and "--file" in out,
          "--help: exit 0 with usage")
    rc, _, err = run(["-m", model])
    check(rc == 2, "no texts: exit 2 (%r)" % err.strip())
    rc, _, err = run(["-m", model, "--bogus", "x"])
    check(rc == 2, "unknown option: exit 2 (%r)" % err.strip())
    rc, _, err = run(["-m", model, "--threads", "0", "x"])
    check(rc == 2, "--threads 0: exit 2 (%r)" % err.strip())
    rc, _, err = run(["-m", os.path.join(TESTDATA, "no-such-model.bmc"), "x"])
    check(rc == 3, "missing model: exit 3 (%r)" % err.strip())


def main():
    global run
    base_run = run
    run = lambda args, stdin=None: base_run(["embed-text"] + args, stdin)  # noqa: E731
    print("binary %s, test data %s" % (BIN, TESTDATA))
    if not os.path.exists(BIN):
        print("FAIL: %s not built" % BIN)
        return 1
    cases = agreement("tiny")
    formats("tiny", cases)
    agreement("full")
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
