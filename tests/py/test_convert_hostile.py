#!/usr/bin/python3
"""test_convert_hostile.py - tools/convert.py against hostile and absurd checkpoints, the cases
tests/py/test_convert.py does not already cover (that file covers os.system through GLOBAL and
STACK_GLOBAL, a storage cut short, wrong / missing / extra tensors, a non-contiguous tensor, F64,
truncated pickles and safetensors, the legacy format).

Every case must be refused with a one-line message (exit 1, "convert.py: error: ..."), run
nothing (each payload would create a marker file), leave no output and no temporary file, and
finish quickly with little memory (absurd declared sizes must not be allocated):

  pickle globals  subprocess.Popen, builtins.eval / exec / getattr / __import__, __builtin__.eval
                  (the Python 2 name), os.system through INST (protocol 0), copyreg._reconstructor,
                  numpy's _reconstruct, torch.load, torch._utils._rebuild_tensor (v1),
                  collections.defaultdict, a hostile global after valid entries
  persistent ids  not a storage, a storage type given as a string, a negative size
  tensor sizes    2^40 x 2^40, a storage claiming 10^18 elements, an offset of 2^62, negative
                  and boolean sizes
  safetensors     header length 2^64 - 1, a tensor of 2^40 x 2^40 over 8 bytes, negative and
                  reversed offsets, a header nested 100,000 deep, a header that is a list
"""
import collections
import os
import pickle
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("BUILD", "build")
TESTDATA = os.environ.get("BMC_TESTDATA") or os.path.join(ROOT, BUILD, "testdata")
if not os.path.isabs(TESTDATA):
    TESTDATA = os.path.join(ROOT, TESTDATA)

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


# ---- hand-made pickles ------------------------------------------------------------------------

def p_global(module, name, arg_pickle, proto=2):
    """GLOBAL module.name called (REDUCE) with a 1-tuple of the pickled argument."""
    head = b"\x80\x02" if proto >= 2 else b""
    return head + b"c" + module.encode() + b"\n" + name.encode() + b"\n" + arg_pickle + b"\x85R."


def p_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def p_inst(module, name, arg):  # protocol 0: MARK, argument, INST module name
    return b"(" + b"S'" + arg.encode() + b"'\n" + b"i" + module.encode() + b"\n" + name.encode() + b"\n."


class StorageRef:
    def __init__(self, key, numel, stype="FloatStorage"):
        self.key, self.numel, self.stype = key, numel, stype


class G:
    """Pickles as GLOBAL module.name without importing anything (torch stays out of this test)."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args


class PyWriter(pickle._Pickler):
    """Pure-Python pickler (so that G can have its own save function)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", G("torch", obj.stype), obj.key, "cpu", obj.numel)
        if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "__pid__":
            return obj[1]
        return None

    def save_reduce_call(self, obj):
        self.save(obj.fn)
        self.save(obj.args)
        self.write(pickle.REDUCE)


PyWriter.dispatch[G] = lambda self, obj: self.write(
    b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n")
PyWriter.dispatch[Call] = PyWriter.save_reduce_call


def dumps(obj):
    import io
    buf = io.BytesIO()
    PyWriter(buf, protocol=2).dump(obj)
    return buf.getvalue()


def tensor(storage, offset, size, stride=None):
    if stride is None:
        stride, acc = [], 1
        for d in reversed(size):
            stride.append(acc)
            acc *= d
        stride = tuple(reversed(stride))
    return Call(G("torch._utils", "_rebuild_tensor_v2"),
                (storage, offset, tuple(size), tuple(stride), False, Call(G("collections", "OrderedDict"), ())))


def state_dict(items):
    return Call(G("collections", "OrderedDict"), (list(items),))


# ---- running the converter ----------------------------------------------------------------------

def make_snapshot(work, name, pkl=None, storages=None, safetensors=None):
    d = os.path.join(work, name)
    os.makedirs(d)
    for f in ("open_clip_config.json", "vocab.txt"):
        shutil.copyfile(os.path.join(TESTDATA, "tiny", f), os.path.join(d, f))
    if pkl is not None:
        with zipfile.ZipFile(os.path.join(d, "open_clip_pytorch_model.bin"), "w") as z:
            z.writestr("archive/data.pkl", pkl)
            z.writestr("archive/byteorder", "little")
            for key, data in (storages or {}).items():
                z.writestr("archive/data/" + key, data)
            z.writestr("archive/version", "3\n")
    if safetensors is not None:
        with open(os.path.join(d, "open_clip_model.safetensors"), "wb") as f:
            f.write(safetensors)
    return d


def expect_refused(work, name, snap, pieces, markers=()):
    out = os.path.join(work, name + ".bmc")
    t0 = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert.py"), snap, "-o", out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    dt = time.time() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0  # max over children so far
    msg = (p.stdout + p.stderr).strip()
    ok = p.returncode == 1 and msg.startswith("convert.py: error:") and all(x in msg for x in pieces)
    check(ok, "%s: wanted exit 1 and a message with %s, got exit %d: %s" % (name, pieces, p.returncode, msg[:500]))
    check("Traceback" not in msg, "%s: a traceback instead of a message" % name)
    check(not os.path.exists(out), "%s: output file left behind" % name)
    left = [f for f in os.listdir(work) if f.startswith(".convert-")]
    check(not left, "%s: temporary files left: %s" % (name, left))
    for m in markers:
        check(not os.path.exists(m), "%s: the payload ran (%s exists)" % (name, m))
    check(dt < 30, "%s: took %.1f s" % (name, dt))
    check(rss_mb < 1024, "%s: a converter used %.0f MB" % (name, rss_mb))
    print("  %-38s refused in %.2f s: %s" % (name, dt, msg.splitlines()[0][:140] if msg else ""))


def main():
    if not os.path.isdir(os.path.join(TESTDATA, "tiny")):
        print("FAIL: %s/tiny missing (tests/prep/10_models.sh)" % TESTDATA)
        return 1
    work = tempfile.mkdtemp(prefix="test_convert_hostile_")
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\ntest_convert_hostile: %d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


def run(work):
    tag = "%d_%d" % (os.getpid(), int(time.time() * 1000) % 100000)
    marker = lambda k: os.path.join(work, "pwned_%s_%s" % (tag, k))  # noqa: E731

    print("pickle globals:")
    m = {k: marker(k) for k in ("popen", "eval", "exec", "getattr", "import", "b_eval", "inst", "later")}
    cases = [
        ("subprocess.Popen", p_global("subprocess", "Popen",
                                      b"]" + b"(" + p_str("touch") + p_str(m["popen"]) + b"e"), [m["popen"]]),
        ("builtins.eval", p_global("builtins", "eval", p_str("open(%r, 'w')" % m["eval"])), [m["eval"]]),
        ("builtins.exec", p_global("builtins", "exec", p_str("open(%r, 'w')" % m["exec"])), [m["exec"]]),
        ("builtins.getattr", p_global("builtins", "getattr", p_str("x")), []),
        ("builtins.__import__", p_global("builtins", "__import__", p_str("os")), []),
        ("__builtin__.eval", p_global("__builtin__", "eval", p_str("open(%r, 'w')" % m["b_eval"]), proto=0),
         [m["b_eval"]]),
        ("os.system", p_inst("os", "system", "touch " + m["inst"]), [m["inst"]]),
        ("copyreg._reconstructor", p_global("copyreg", "_reconstructor", p_str("x")), []),
        ("numpy.core.multiarray._reconstruct", p_global("numpy.core.multiarray", "_reconstruct", p_str("x")), []),
        ("torch.load", p_global("torch", "load", p_str("/etc/passwd")), []),
        ("torch._utils._rebuild_tensor", p_global("torch._utils", "_rebuild_tensor", p_str("x")), []),
        ("collections.defaultdict", p_global("collections", "defaultdict", p_str("x")), []),
    ]
    for i, (named, pkl, marks) in enumerate(cases):
        snap = make_snapshot(work, "g%d" % i, pkl=pkl)
        expect_refused(work, "global %s" % named, snap, ["refusing pickle global " + named], marks)
    # a hostile global after valid entries: the valid ones are not written anywhere either
    st = StorageRef("0", 1)
    pkl = dumps(state_dict([("logit_scale", tensor(st, 0, ())),
                            ("x", Call(G("os", "system"), ("touch " + m["later"],)))]))
    snap = make_snapshot(work, "later", pkl=pkl, storages={"0": struct.pack("<f", 4.6)})
    expect_refused(work, "os.system after a valid tensor", snap, ["refusing pickle global os.system"], [m["later"]])

    print("persistent ids:")
    for name, pid, piece in [("not a storage", ("module", "os", "x", "cpu", 1), "persistent id"),
                             ("storage type as a string", ("storage", "FloatStorage", "0", "cpu", 1), "persistent id"),
                             ("negative storage size", ("storage", G("torch", "FloatStorage"), "0", "cpu", -5),
                              "persistent id")]:
        pkl = dumps(state_dict([("logit_scale", Call(G("torch._utils", "_rebuild_tensor_v2"),
                                                      (("__pid__", pid), 0, (), (), False,
                                                       Call(G("collections", "OrderedDict"), ()))))]))
        snap = make_snapshot(work, "pid_" + name.replace(" ", "_"), pkl=pkl, storages={"0": b"\0" * 4})
        expect_refused(work, "persistent id: " + name, snap, [piece])

    print("absurd tensor sizes:")
    small = {"0": b"\0" * 64}
    for i, (name, t, piece) in enumerate([
            ("2^40 x 2^40 over 16 floats", tensor(StorageRef("0", 16), 0, (1 << 40, 1 << 40)), "overrun"),
            ("storage of 10^18 elements", tensor(StorageRef("0", 10 ** 18), 0, (10 ** 17,)), "overrun"),
            ("offset 2^62", tensor(StorageRef("0", 16), 1 << 62, (4,)), "overrun"),
            ("negative size", tensor(StorageRef("0", 16), 0, (-4,), (1,)), "bad tensor size"),
            ("boolean size", tensor(StorageRef("0", 16), 0, (True,), (1,)), "bad tensor size"),
            ("negative offset", tensor(StorageRef("0", 16), -8, (4,)), "bad storage offset")]):
        pkl = dumps(state_dict([("visual.trunk.norm.weight", t)]))
        snap = make_snapshot(work, "size_%d" % i, pkl=pkl, storages=small)
        expect_refused(work, "tensor " + name, snap, [piece])

    print("safetensors:")
    def st_file(header_bytes, data=b"\0" * 8, n=None):
        return struct.pack("<Q", len(header_bytes) if n is None else n) + header_bytes + data
    import json
    def hdr(**entries):
        return json.dumps({k: v for k, v in entries.items()}).encode()
    for i, (name, blob, piece) in enumerate([
            ("header length 2^64-1", st_file(b"{}", n=(1 << 64) - 1), "does not fit"),
            ("2^40 x 2^40 over 8 bytes", st_file(hdr(w={"dtype": "F32", "shape": [1 << 40, 1 << 40],
                                                     "data_offsets": [0, 8]})), "do not hold"),
            ("negative offsets", st_file(hdr(w={"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]})),
             "do not hold"),
            ("reversed offsets", st_file(hdr(w={"dtype": "F32", "shape": [0], "data_offsets": [8, 0]})),
             "do not hold"),
            ("header nested 100,000 deep", st_file(b"[" * 100000 + b"]" * 100000), ""),
            ("header is a list", st_file(b"[1, 2]"), "not an object"),
            ("unknown dtype", st_file(hdr(w={"dtype": "C64", "shape": [1], "data_offsets": [0, 8]})),
             "unsupported dtype")]):
        snap = make_snapshot(work, "st_%d" % i, safetensors=blob)
        expect_refused(work, "safetensors " + name, snap, [piece])


if __name__ == "__main__":
    sys.exit(main())
