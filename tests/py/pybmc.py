"""Shared set-up of the Python package tests (tests/py/test_python_*.py).

Puts python/ (the package source) first on sys.path and points $BIOMEDCLIP_LIB at the build
tree's libbiomedclip.so ($BUILD, default build/) unless it is set already (`make test` sets it).
A library built with SANITIZE=1 needs the ASan runtime loaded first: the test then runs itself
again with it in LD_PRELOAD (leak reports off: CPython itself never frees some memory at exit;
the RSS test covers leaks).
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BUILD_DIR = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
BIN = os.path.join(BUILD_DIR, "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(BUILD_DIR, "testdata"))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
IMAGES = os.path.join(SHARED, "images")
CROPS = os.path.join(IMAGES, "preprocessed_224")
TINY = os.path.join(TESTDATA, "tiny.bmc")
FULL = os.path.join(TESTDATA, "full.bmc")
TEMPLATE = "this is a photo of "
# the notebook's labels in its order (tools/demo.sh)
LABELS = ["adenocarcinoma histopathology", "brain MRI", "covid line chart",
          "squamous cell carcinoma histopathology", "immunohistochemistry histopathology",
          "bone X-ray", "chest X-ray", "pie chart", "hematoxylin and eosin histopathology"]

os.environ.setdefault("BIOMEDCLIP_LIB", os.path.join(BUILD_DIR, "libbiomedclip.so"))
LIB = os.environ["BIOMEDCLIP_LIB"]
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))


def _asan_runtime():
    """Path of libasan if LIB links it, else None."""
    try:
        with open(LIB, "rb") as f:
            if b"libasan.so" not in f.read():
                return None
    except OSError:
        return None
    cc = os.environ.get("CC", "cc")
    p = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True)
    path = p.stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


def reexec_under_asan():
    """Run the calling test again with the ASan runtime preloaded when the library needs it."""
    if os.environ.get("BMC_PY_ASAN_REEXEC"):
        return
    rt = _asan_runtime()
    if rt:
        env = dict(os.environ, BMC_PY_ASAN_REEXEC="1", LD_PRELOAD=rt,
                   ASAN_OPTIONS="detect_leaks=0:" + os.environ.get("ASAN_OPTIONS", ""))
        print("pybmc: %s is an ASan build: running again with LD_PRELOAD=%s" % (LIB, rt),
              flush=True)
        rc = subprocess.run([sys.executable] + sys.argv, env=env).returncode
        sys.stdout.flush()
        os._exit(rc)  # (not SystemExit: under `python3 -m pytest` that would be a test error)


def under_asan():
    return bool(os.environ.get("BMC_PY_ASAN_REEXEC"))


def cli(*args, **kw):
    """Run the CLI; CompletedProcess with text output."""
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, **kw)


def cli_json(*args):
    p = cli(*args)
    assert p.returncode == 0, "biomedclip %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                              p.stderr[-500:])
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def read_f32(path, shape=None):
    import numpy as np
    a = np.fromfile(path, dtype="<f4")
    return a.reshape(shape) if shape else a


def vision_golden(model):
    """(names, pixels [n,3,S,S], proj [n,E], norm [n,E]) of tests/reference/vision.py."""
    d = os.path.join(TESTDATA, "vision_golden", model)
    names = open(os.path.join(d, "names.txt")).read().split()
    n = len(names)
    px = read_f32(os.path.join(d, "pixels.f32"))
    s = int(round((px.size / (3 * n)) ** 0.5))
    proj, norm = read_f32(os.path.join(d, "proj.f32")), read_f32(os.path.join(d, "norm.f32"))
    return names, px.reshape(n, 3, s, s), proj.reshape(n, -1), norm.reshape(n, -1)


def text_golden(model):
    """list of (name, ids, text or None, proj [E], norm [E]) of tests/reference/text.py."""
    d = os.path.join(TESTDATA, "text_golden", model)
    with open(os.path.join(d, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    return [(c["name"], c["ids"], c["text"], read_f32(os.path.join(d, c["name"] + ".proj.f32")),
             read_f32(os.path.join(d, c["name"] + ".norm.f32"))) for c in cases]


def rel_l2(a, b):
    import numpy as np
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main(file):
    """The test file's `if __name__ == "__main__"` body: pytest on it, its exit code."""
    import pytest
    reexec_under_asan()
    return pytest.main([file, "-q", "-p", "no:cacheprovider"])


# before any test module imports biomedclip (which loads the library)
reexec_under_asan()
