#!/usr/bin/python3
"""`biomedclip tokenize`: the real binary on the shared test vectors and on the tokenizer corpus.

Expected ids: shared/data/tokenizer_test_vectors.json (the official HF tokenizer on the raw
texts) and tests/data/tokenizer_corpus.jsonl (the HF tokenizer on open_clip's cleaning of each
text, made by tools/make_tokenizer_corpus.py). The CLI runs the whole pipeline, so a vector
must give the corpus ids, and its own ids where cleaning does not change it (all but the
ligature text). Also checked: output formats, input order, --file (stdin, CRLF), `--`, the
empty text, exit codes. Uses the tiny test model (it carries the real vocabulary).
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA") or os.path.join(os.path.dirname(BIN), "testdata")
SHARED = os.environ.get("SHARED_DATA") or os.path.join(ROOT, "..", "shared", "data")
MODEL = os.path.join(TESTDATA, "tiny.bmc")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.jsonl")

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(args, stdin=None):
    p = subprocess.run([BIN, "tokenize"] + args, input=stdin, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def main():
    with open(os.path.join(SHARED, "tokenizer_test_vectors.json"), encoding="utf-8") as f:
        vectors = json.load(f)["vectors"]
    with open(CORPUS, encoding="ascii") as f:
        corpus = [json.loads(line) for line in f]
    by_text = {r["text"]: r["ids"] for r in corpus if "bytes_hex" not in r}

    # Shared vectors as arguments, --json.
    texts = [v["text"] for v in vectors]
    rc, out, err = run(["-m", MODEL, "--json", "--"] + texts)
    check(rc == 0, "vectors as arguments: exit 0 (%d) %s" % (rc, err.strip()))
    rows = [json.loads(line) for line in out.splitlines()]
    check([r["text"] for r in rows] == texts, "--json echoes the %d texts in input order" % len(texts))
    same_vec = same_corpus = 0
    for v, r in zip(vectors, rows):
        same_corpus += r["ids"] == by_text.get(v["text"])
        if "\ufb01" in v["text"]:
            check(r["ids"] != v["ids"], "the ligature text differs from the raw HF ids (ftfy's fi)")
        else:
            same_vec += r["ids"] == v["ids"]
    check(same_vec == len(vectors) - 1, "vectors: %d/%d identical to the HF ids" % (same_vec, len(vectors) - 1))
    check(same_corpus == len(vectors), "vectors: %d/%d identical to HF(open_clip clean(text))" % (
        same_corpus, len(vectors)))

    # Plain output: one line of space-separated ids per text.
    rc, out, _ = run(["-m", MODEL] + texts[:3])
    check(rc == 0 and out.splitlines() == [" ".join(map(str, v["ids"])) for v in vectors[:3]],
          "plain output: ids separated by spaces, one line per text")

    # The corpus through --file (texts that fit on one line): whole pipeline, end to end.
    one_line = [r for r in corpus if "bytes_hex" not in r and "\n" not in r["text"]
                and "\x00" not in r["text"] and not r["text"].endswith("\r")]
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write("".join(r["text"] + "\n" for r in one_line).encode("utf-8"))
        path = f.name
    try:
        rc, out, err = run(["-m", MODEL, "--file", path])
    finally:
        os.unlink(path)
    lines = out.splitlines()
    good = sum(line == " ".join(map(str, r["ids"])) for line, r in zip(lines, one_line))
    check(rc == 0 and len(lines) == len(one_line) and good == len(one_line),
          "corpus via --file: %d/%d texts with the expected ids (%d lines)" % (good, len(one_line), len(lines)))

    # Order of mixed inputs, stdin, CRLF, empty lines, texts starting with '-'.
    rc, out, err = run(["-m", MODEL, "--json", "first", "--file", "-", "--", "-dash", ""],
                       stdin=b"one\r\n\ntwo")
    rows = [json.loads(line) for line in out.splitlines()]
    check(rc == 0 and [r["text"] for r in rows] == ["first", "one", "", "two", "-dash", ""],
          "inputs in order: argument, stdin lines (CRLF, empty), then texts after --")
    check(rows[2]["ids"] == [2, 3] and rows[5]["ids"] == [2, 3], "an empty text is [CLS] [SEP]")

    # Exit codes.
    rc, out, _ = run(["--help"])
    check(rc == 0 and out.startswith("usage: biomedclip tokenize"), "--help: usage, exit 0")
    rc, _, err = run(["-m", MODEL])
    check(rc == 2 and "no texts" in err, "no texts: exit 2")
    rc, _, _ = run(["-m", MODEL, "--bogus", "x"])
    check(rc == 2, "unknown option: exit 2")
    rc, _, _ = run(["-m", os.path.join(TESTDATA, "missing.bmc"), "x"])
    check(rc == 3, "missing model: exit 3")
    rc, out, err = run(["-m", MODEL, "--file", os.path.join(TESTDATA, "missing.txt"), "x"])
    check(rc == 1 and out.strip() == "2 65 3" and "cannot open" in err,
          "unreadable --file: the other texts still printed, exit 1")

    print("%d checks failed" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    if not os.path.exists(MODEL):
        print("FAIL no model at %s (tests/prep/10_models.sh makes it)" % MODEL)
        sys.exit(1)
    sys.exit(main())
