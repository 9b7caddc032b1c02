#!/usr/bin/python3
"""Installing the Python package (python/) with pip, as a user would, then using it from the
install only: `pip install --target` and into a venv with --system-site-packages (numpy from the
system), both bundling the build tree's libbiomedclip.so ($BIOMEDCLIP_LIB); an install without a
bundled library that finds the system's (LD_LIBRARY_PATH); the error when no library is found;
examples/zero_shot_notebook.py run with the installed package, its table against
`biomedclip classify --json` (same images, labels, template). Offline: --no-index, and
--no-build-isolation with the system's setuptools."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pybmc as T  # noqa: I100  (sets sys.path and $BIOMEDCLIP_LIB first)

import numpy as np
import pytest

PY = sys.executable
# Packaging does not change with the sanitizers: the plain build's run covers it, and pip under
# the ASan runtime would only be slow.
pytestmark = pytest.mark.skipif(T.under_asan(), reason="ASan build: packaging is tested by the "
                                "plain build's run")
PROBE = ("import json, biomedclip; m = biomedclip.Model(%r, threads=1); "
         "print(json.dumps({'lib': biomedclip.library_path, 'file': biomedclip.__file__, "
         "'emb': m.encode_text('pleural effusion').tolist()}))" % T.TINY)


@pytest.fixture(scope="module")
def tmp():
    d = tempfile.mkdtemp(prefix="bmc_py_install_")
    # a copy of the sources: pip builds in place, and the tree must stay clean; away from
    # ../build, so only $BIOMEDCLIP_LIB can give the library to bundle
    shutil.copytree(os.path.join(T.ROOT, "python"), os.path.join(d, "src"),
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "*.so*"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def env_without_lib(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("BIOMEDCLIP_LIB", "PYTHONPATH")}
    env.update(extra)
    return env


def pip_install(python, src, *args, lib=None):
    env = env_without_lib(PIP_DISABLE_PIP_VERSION_CHECK="1")
    if lib:
        env["BIOMEDCLIP_LIB"] = lib
    p = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        "--quiet", *args, src], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p


def probe(python, cwd, **env):
    p = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, cwd=cwd,
                       env=env_without_lib(**env))
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def want():
    import biomedclip
    return biomedclip.Model(T.TINY, threads=1).encode_text("pleural effusion")


def test_pip_install_target(tmp, want):
    target = os.path.join(tmp, "target")
    pip_install(PY, os.path.join(tmp, "src"), "--no-deps", "--target", target, lib=T.LIB)
    bundled = os.path.join(target, "biomedclip", "libbiomedclip.so")
    assert os.path.isfile(bundled)
    with open(bundled, "rb") as a, open(os.path.realpath(T.LIB), "rb") as b:
        assert a.read() == b.read()
    r = probe(PY, tmp, PYTHONPATH=target)
    assert r["lib"] == bundled and r["file"].startswith(target)
    assert np.array_equal(np.array(r["emb"], np.float32), want)
    # $BIOMEDCLIP_LIB overrides the bundled copy; a wrong one is an error naming it
    r = probe(PY, tmp, PYTHONPATH=target, BIOMEDCLIP_LIB=os.path.realpath(T.LIB))
    assert r["lib"] == os.path.realpath(T.LIB)
    p = subprocess.run([PY, "-c", "import biomedclip"], capture_output=True, text=True, cwd=tmp,
                       env=env_without_lib(PYTHONPATH=target, BIOMEDCLIP_LIB="/nonexistent.so"))
    assert p.returncode != 0 and "/nonexistent.so" in p.stderr and "BIOMEDCLIP_LIB" in p.stderr


def test_example_with_installed_package(tmp):
    target = os.path.join(tmp, "target")
    if not os.path.isdir(target):
        pip_install(PY, os.path.join(tmp, "src"), "--no-deps", "--target", target, lib=T.LIB)
    # copied away from the source tree: only the installed package can be imported
    ex = os.path.join(tmp, "zero_shot_notebook.py")
    shutil.copy(os.path.join(T.ROOT, "examples", "zero_shot_notebook.py"), ex)
    p = subprocess.run([PY, ex, "--model", T.TINY, "--images", T.IMAGES, "--threads", "1"],
                       capture_output=True, text=True, cwd=tmp,
                       env=env_without_lib(PYTHONPATH=target))
    assert p.returncode == 0, p.stderr[-2000:]
    sys.path.insert(0, os.path.join(T.ROOT, "examples"))
    import zero_shot_notebook as nb
    names = [n for n, _ in nb.IMAGES]
    blocks = p.stdout.split("\n\n\n")
    assert len(blocks) == len(names) + 1
    cli = T.cli_json("classify", "-m", T.TINY, "--labels", ",".join(nb.LABELS), "--template",
                     nb.TEMPLATE, "--json", *[os.path.join(T.IMAGES, n) for n in names])
    top1 = []
    for name, block, row in zip(names, blocks, cli):
        lines = block.strip("\n").split("\n")
        assert lines[0] == name + ":"
        pairs = [re.fullmatch(r"(.+): (\S+)", ln).groups() for ln in lines[1:]]
        assert sorted(lab for lab, _ in pairs) == sorted(nb.LABELS)
        got = {lab: float(v) for lab, v in pairs}
        assert [v for _, v in pairs] == sorted((v for _, v in pairs), key=lambda s: -float(s))
        assert max(abs(got[lab] - pr) for lab, pr in zip(row["labels"], row["probs"])) <= 1e-6
        top1.append(pairs[0][0])
    agree = sum(t == want for t, (_, want) in zip(top1, nb.IMAGES))
    assert blocks[-1].strip() == ("top-1 label agrees with the notebook's open_clip run for "
                                  "%d of 9 images" % agree)
    assert nb.LABELS == T.LABELS and nb.TEMPLATE == T.TEMPLATE


def test_venv_with_system_site_packages(tmp, want):
    venv = os.path.join(tmp, "venv")
    # --without-pip: the venv sees the system's pip, setuptools and numpy
    subprocess.run([PY, "-m", "venv", "--system-site-packages", "--without-pip", venv],
                   check=True)
    vpy = os.path.join(venv, "bin", "python")
    pip_install(vpy, os.path.join(tmp, "src"), lib=T.LIB)
    r = probe(vpy, tmp)
    assert r["file"].startswith(venv) and r["lib"].startswith(venv)
    assert np.array_equal(np.array(r["emb"], np.float32), want)


def test_install_without_library_uses_the_systems(tmp, want):
    target = os.path.join(tmp, "nolib")
    pip_install(PY, os.path.join(tmp, "src"), "--no-deps", "--target", target)
    # (the source copy was built with a library before: that copy is not carried over)
    assert not os.path.exists(os.path.join(target, "biomedclip", "libbiomedclip.so"))
    sysdir = os.path.join(tmp, "syslib")
    os.makedirs(sysdir)
    os.symlink(os.path.realpath(T.LIB), os.path.join(sysdir, "libbiomedclip.so.0"))
    r = probe(PY, tmp, PYTHONPATH=target, LD_LIBRARY_PATH=sysdir)
    assert r["lib"] == "libbiomedclip.so.0"
    assert np.array_equal(np.array(r["emb"], np.float32), want)
    p = subprocess.run([PY, "-c", "import biomedclip"], capture_output=True, text=True, cwd=tmp,
                       env=env_without_lib(PYTHONPATH=target, LD_LIBRARY_PATH=tmp))
    assert p.returncode != 0 and "libbiomedclip.so not found" in p.stderr


if __name__ == "__main__":
    sys.exit(T.main(__file__))
