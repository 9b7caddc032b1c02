#!/usr/bin/python3
"""test_convert.py - tools/convert.py against checkpoints written by the real torch.save (and by
hand as safetensors): the file is format version 2, the Linear weights (exactly those) are
stored as 64-output panels (layout 1, nbytes counting whole panels, padding slots +0.0) and every
tensor of the .bmc, un-panelled, equals torch's values (fp16/bf16 widened exactly as torch does),
all container variants give the same file, bad inputs fail with a message and
leave no output, a hostile pickle is refused without running, and the C loader accepts what the
converter writes (`biomedclip info`), including the full-size model ($BMC_TESTDATA/full.bmc).

The converter runs in a subprocess whose PYTHONPATH shadows torch and numpy with modules that
raise on import, which proves it uses only the standard library.
"""
import collections
import io
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import gen_checkpoint as gen  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
CLI = os.path.join(ROOT, BUILD, "biomedclip") if not os.path.isabs(BUILD) else os.path.join(BUILD, "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA") or os.path.join(ROOT, BUILD, "testdata")
if not os.path.isabs(TESTDATA):
    TESTDATA = os.path.join(ROOT, TESTDATA)
SHARED = gen.shared_data()

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


# ---- an independent .bmc reader (docs/FORMAT.md) ----------------------------------------------

def is_linear_weight(name):
    """The tensors docs/FORMAT.md stores as 64-output panels (layout 1): every Linear weight and
    the patch convolution."""
    if name in ("visual.trunk.patch_embed.proj.weight", "visual.head.proj.weight", "text.proj.weight",
                "text.proj.0.weight", "text.proj.2.weight"):
        return True
    m = re.match(r"visual\.trunk\.blocks\.\d+\.(.*)$", name)
    if m:
        return m.group(1) in ("attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight")
    m = re.match(r"text\.transformer\.encoder\.layer\.\d+\.(.*)$", name)
    if m:
        return m.group(1) in ("attention.self.query.weight", "attention.self.key.weight",
                              "attention.self.value.weight", "attention.output.dense.weight",
                              "intermediate.dense.weight", "output.dense.weight")
    return False


def unpanel(data, N, K, name="?"):
    """Panels [ceil(N/64)][K][64] -> row-major [N, K] bytes (element (n, k) is the float at
    (n // 64) * K * 64 + k * 64 + n % 64); the last panel's slots past N must be +0.0."""
    P = (N + 63) // 64
    t = torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(P, K, 64)
    rows = t.permute(0, 2, 1).reshape(P * 64, K)  # row 64 * panel + slot
    assert not rows[N:].view(torch.int32).any(), "panel padding of %s is not all +0.0" % name
    return rows[:N].contiguous().numpy().tobytes()


def read_bmc(path):
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"BMCLIP\x00\x01", "magic"
    (version, header_size, tag, align, file_size, dir_off, n, entry_size, data_off, data_size, flags,
     dir_crc) = struct.unpack_from("<IIIIQQIIQQII", b, 8)
    assert (version, header_size, tag, align, entry_size, flags) == (2, 512, 0x01020304, 64, 160, 0)
    assert file_size == len(b) and dir_off == 512 and data_off % 4096 == 0 and data_size == file_size - data_off
    assert struct.unpack_from("<I", b, 508)[0] == zlib.crc32(b[:508]), "header crc"
    assert dir_crc == zlib.crc32(b[512:512 + n * 160]), "dir crc"
    cfg_names = ("image_size patch_size vision_width vision_layers vision_heads vision_mlp vision_ln_eps "
                 "vocab_rows max_positions type_vocab context_length text_width text_layers text_heads "
                 "text_ffn text_ln_eps text_proj_type text_proj_hidden text_pooler embed_dim image_resize "
                 "image_interp mean0 mean1 mean2 std0 std1 std2 vocab_size pad_id unk_id cls_id sep_id mask_id "
                 "lowercase strip_accents max_word_chars").split()
    vals = struct.unpack_from("<6Id8Id6I6f9I", b, 72)
    cfg = dict(zip(cfg_names, vals))
    assert b[72 + 156:508] == bytes(508 - 228), "reserved bytes are zero"
    tensors = collections.OrderedDict()
    sizes = {0: 4, 1: 2, 26: 4, 30: 2, 64: 1, 65: 4}
    prev_end = data_off
    for i in range(n):
        e = b[512 + i * 160: 512 + (i + 1) * 160]
        name = e[:96].split(b"\0")[0].decode()
        assert e[len(name):96] == bytes(96 - len(name)), "name NUL-padded"
        dtype, ndim, s0, s1, s2, s3, off, nbytes, crc, layout = struct.unpack_from("<II4QQQII", e, 96)
        shape = (s0, s1, s2, s3)[:ndim]
        assert (s0, s1, s2, s3)[ndim:] == (0,) * (4 - ndim)
        numel = 1
        for d in shape:
            numel *= d
        assert layout == (1 if is_linear_weight(name) else 0), "layout %d of %s" % (layout, name)
        if layout == 1:  # panel64: nbytes counts whole panels, padding included
            assert dtype == 0 and ndim >= 2, name
            stored = (shape[0] + 63) // 64 * 64 * (numel // shape[0])
        else:
            stored = numel
        assert nbytes == stored * sizes[dtype], name
        assert off % 64 == 0 and off >= prev_end and off + nbytes <= file_size, name
        prev_end = off + nbytes
        data = b[off:off + nbytes]
        assert zlib.crc32(data) == crc, "data crc " + name
        if layout == 1:
            data = unpanel(data, shape[0], numel // shape[0], name)
        tensors[name] = (dtype, shape, data)
    return cfg, tensors


def panel_entries(path):
    """{name: (shape, nbytes, stored bytes)} of the layout-1 (panel64) directory entries."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack_from("<I", b, 40)[0]
    out = collections.OrderedDict()
    for i in range(n):
        e = b[512 + i * 160: 512 + (i + 1) * 160]
        dtype, ndim, s0, s1, s2, s3, off, nbytes, crc, layout = struct.unpack_from("<II4QQQII", e, 96)
        if layout == 1:
            out[e[:96].split(b"\0")[0].decode()] = ((s0, s1, s2, s3)[:ndim], nbytes, b[off:off + nbytes])
    return out


def tiny_panel_checks(bmc, sd, what):
    """The panel64 tensors of a tiny conversion, spelled out (2 blocks, 2 layers, mlp projection),
    and element by element with the formula of docs/FORMAT.md, on the tensors whose N is not a
    multiple of 64 (visual.head.proj [32,64], text.proj.0 [48,64], text.proj.2 [32,48]) and on
    the 4-d patch convolution."""
    want = ["visual.trunk.patch_embed.proj.weight"]
    for i in range(2):
        want += ["visual.trunk.blocks.%d.%s.weight" % (i, x) for x in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")]
    want += ["visual.head.proj.weight"]
    for i in range(2):
        want += ["text.transformer.encoder.layer.%d.%s.weight" % (i, x) for x in (
            "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "intermediate.dense", "output.dense")]
    want += ["text.proj.0.weight", "text.proj.2.weight"]
    panels = panel_entries(bmc)
    check(list(panels) == want, "%s: panel64 tensors %s, wanted %s" % (what, list(panels), want))
    odd = 0
    for name in ("visual.head.proj.weight", "text.proj.0.weight", "text.proj.2.weight",
                 "visual.trunk.patch_embed.proj.weight", "visual.trunk.blocks.0.mlp.fc1.weight"):
        if name not in panels:
            continue
        shape, nbytes, data = panels[name]
        ref = sd[name].detach().float().reshape(shape[0], -1)
        N, K = ref.shape
        P = (N + 63) // 64
        check(shape == tuple(sd[name].shape), "%s: %s shape %s" % (what, name, shape))
        check(nbytes == P * 64 * K * 4 and len(data) == nbytes, "%s: %s nbytes %d, wanted %d panels of [%d][64] = %d"
              % (what, name, nbytes, P, K, P * 64 * K * 4))
        rb = ref.contiguous().numpy().tobytes()
        at = lambda i: data[4 * i:4 * i + 4]  # noqa: E731  (the stored float i, as bytes)
        bad = [(i, k) for i in range(N) for k in range(K)
               if at((i // 64) * K * 64 + k * 64 + i % 64) != rb[4 * (i * K + k):4 * (i * K + k) + 4]]
        check(not bad, "%s: %s elements (n, k) not at (n // 64) * K * 64 + k * 64 + n %% 64: %s" % (what, name, bad[:5]))
        pad = [at((P - 1) * K * 64 + k * 64 + j) for k in range(K) for j in range(N - (P - 1) * 64, 64)]
        check(pad == [bytes(4)] * ((P * 64 - N) * K), "%s: %s padding slots are not all +0.0" % (what, name))
        odd += N % 64 != 0
    check(odd == 3, "%s: %d panel tensors with N not a multiple of 64 checked (wanted 3)" % (what, odd))


def to_panels_unit_checks():
    """tools/convert.py's to_panels (imported; it is standard library only) on shapes the tiny
    model lacks: two panels, the second partial (N = 70, K = 5), a 4-d [130, 3, 2, 2] right after
    a larger tensor (the converter reuses one buffer: its padding must be zeroed again), N = 64
    exactly, and a NaN payload and -0.0 moved bit for bit."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import convert  # noqa: E402
    gen_ = torch.Generator().manual_seed(3)
    cases = [(200, 7), (70, 5), (300, 9), (130, 3, 2, 2), (64, 3), (1, 4)]
    for shape in cases:
        t = torch.randn(shape, generator=gen_)
        flat = t.reshape(shape[0], -1)
        flat[0, 0] = -0.0
        flat.view(torch.int32)[-1, -1] = 0x7FA00001  # a signalling NaN with a payload
        N, K = flat.shape
        P = (N + 63) // 64
        want = torch.zeros(P * 64, K)
        want[:N] = flat
        want = want.reshape(P, 64, K).permute(0, 2, 1).contiguous().numpy().tobytes()
        got = bytes(convert.to_panels(t.numpy().tobytes(), shape))
        check(got == want and convert.panel_floats(shape) * 4 == len(want),
              "convert.to_panels %s: %d bytes, %s the panels" % (shape, len(got), "equals" if got == want else "differs from"))
        # the formula, literally, on a few elements (bytes: the NaN must not go through a float)
        for i, k in ((0, 0), (N - 1, K - 1), (N // 2, K // 2), (min(N - 1, 65), 1 % K)):
            j = (i // 64) * K * 64 + k * 64 + i % 64
            check(got[4 * j:4 * j + 4] == flat[i, k].numpy().tobytes(),
                  "convert.to_panels %s: element (%d, %d)" % (shape, i, k))
    print("  convert.to_panels: %d shapes (N = 70, 130, 300, 1: partial last panels) equal the formula" % len(cases))


# ---- running the converter ------------------------------------------------------------------

NO_TORCH = tempfile.mkdtemp(prefix="convert_notorch_")
for mod in ("torch", "numpy"):
    with open(os.path.join(NO_TORCH, mod + ".py"), "w") as f:
        f.write("raise ImportError('convert.py must not use %s')\n" % mod)


def convert(snap, out, *extra):
    env = dict(os.environ, PYTHONPATH=NO_TORCH)
    t0 = time.time()
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert.py"), snap, "-o", out] + list(extra),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, universal_newlines=True)
    return p.returncode, p.stdout + p.stderr, time.time() - t0


def cli_info(path, *extra):
    p = subprocess.run([CLI, "info", "-m", path] + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def expect_ok(snap, out, what, *extra):
    rc, msg, dt = convert(snap, out, *extra)
    check(rc == 0 and os.path.exists(out), "%s: converter exit %d: %s" % (what, rc, msg.strip()))
    return rc == 0


def expect_fail(snap, out, what, pieces, *extra):
    rc, msg, _ = convert(snap, out, *extra)
    ok = rc != 0 and all(p in msg for p in pieces)
    check(ok, "%s: wanted failure mentioning %s, got exit %d: %s" % (what, pieces, rc, msg.strip()))
    check(not os.path.exists(out), "%s: output file left behind" % what)
    leftovers = [f for f in os.listdir(os.path.dirname(out)) if f.startswith(".convert-")]
    check(not leftovers, "%s: temporary files left: %s" % (what, leftovers))
    print("  %-40s refused: %s" % (what, msg.strip().splitlines()[0][:150]))


def compare(bmc, sd, what, widen=None):
    """Every float tensor of sd (widened like torch would) equals the file's bytes exactly."""
    cfg, tensors = read_bmc(bmc)
    n_cmp = 0
    for k, t in sd.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k == "text.transformer.embeddings.position_ids" or k.startswith("text.transformer.pooler."):
            check(k not in tensors, "%s: %s should not be in the file" % (what, k))
            continue
        if k not in tensors:
            check(False, "%s: %s missing from the file" % (what, k))
            continue
        dtype, shape, data = tensors[k]
        ref = t.detach().contiguous()
        if widen is not None:
            ref = ref.to(widen).float()
        check(dtype == 0 and shape == tuple(ref.shape), "%s: %s dtype %d shape %s vs %s" % (what, k, dtype, shape,
                                                                                         tuple(ref.shape)))
        if data != ref.float().numpy().tobytes():
            got = torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(ref.shape)
            check(False, "%s: %s differs, max |diff| %g" % (what, k, (got - ref).abs().max().item()))
        n_cmp += 1
    # the vocabulary
    with open(os.path.join(SHARED, "biomedbert-vocab.txt"), encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    _, oshape, odata = tensors["tokenizer.vocab.offsets"]
    _, _, vbytes = tensors["tokenizer.vocab.bytes"]
    offs = struct.unpack("<%dI" % oshape[0], odata)
    toks = [vbytes[offs[i]:offs[i + 1]].decode("utf-8") for i in range(len(offs) - 1)]
    check(toks == vocab, "%s: vocabulary differs from vocab.txt" % what)
    check(cfg["vocab_size"] == len(vocab) == 28895, "%s: vocab_size %d" % (what, cfg["vocab_size"]))
    check((cfg["pad_id"], cfg["unk_id"], cfg["cls_id"], cfg["sep_id"], cfg["mask_id"]) == (0, 1, 2, 3, 4),
          "%s: special ids" % what)
    check(len(tensors) == n_cmp + 2, "%s: %d tensors in the file, %d compared + 2 vocab" % (what, len(tensors), n_cmp))
    return cfg, tensors


def tiny_cfg_checks(cfg, what):
    want = dict(image_size=224, patch_size=16, vision_width=64, vision_layers=2, vision_heads=4, vision_mlp=128,
                vocab_rows=30522, max_positions=512, type_vocab=2, context_length=256, text_width=64, text_layers=2,
                text_heads=4, text_ffn=128, text_proj_type=2, text_proj_hidden=48, text_pooler=1, embed_dim=32,
                image_resize=1, image_interp=1, lowercase=1, strip_accents=1, max_word_chars=100)
    bad = {k: (cfg[k], v) for k, v in want.items() if cfg[k] != v}
    check(not bad, "%s: config fields (found, wanted) %s" % (what, bad))
    check(cfg["vision_ln_eps"] == 1e-6 and cfg["text_ln_eps"] == 1e-12, "%s: LayerNorm eps" % what)
    mean = struct.unpack("<3f", struct.pack("<3f", 0.48145466, 0.4578275, 0.40821073))
    check((cfg["mean0"], cfg["mean1"], cfg["mean2"]) == mean, "%s: mean" % what)


def rewrite_zip(src, dst, edit):
    """Copy a torch.save zip, passing each member's bytes through edit(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, edit(info.filename, zin.read(info.filename)))


def main():
    work = tempfile.mkdtemp(prefix="test_convert_")
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(NO_TORCH, ignore_errors=True)
    print("\ntest_convert: %d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


def run(work):
    def snap(name, sd, **kw):
        d = os.path.join(work, name)
        gen.write_snapshot(d, "tiny", sd, **kw)
        return d

    out = lambda name: os.path.join(work, name + ".bmc")  # noqa: E731
    sd = gen.make_state_dict("tiny", seed=7)
    to_panels_unit_checks()

    # 1. torch.save, with a storage offset and two tensors sharing one storage
    sd_views = collections.OrderedDict(sd)
    big = torch.zeros(5 + sd["visual.trunk.pos_embed"].numel())
    big[5:] = sd["visual.trunk.pos_embed"].flatten()
    sd_views["visual.trunk.pos_embed"] = big[5:].view(sd["visual.trunk.pos_embed"].shape)
    pair = torch.cat([sd["visual.trunk.blocks.0.attn.proj.bias"], sd["visual.trunk.blocks.0.norm2.bias"]])
    sd_views["visual.trunk.blocks.0.attn.proj.bias"] = pair[:64]
    sd_views["visual.trunk.blocks.0.norm2.bias"] = pair[64:]
    base = out("base")
    if expect_ok(snap("base", sd_views), base, "torch.save fp32 (offsets, shared storage)"):
        cfg, tensors = compare(base, sd, "torch.save fp32")
        tiny_cfg_checks(cfg, "torch.save fp32")
        tiny_panel_checks(base, sd, "torch.save fp32")
        check(tensors["logit_scale"][1] == () and struct.unpack("<f", tensors["logit_scale"][2])[0] ==
              torch.tensor(4.605170185988092).item(), "logit_scale is a 0-dim ln(100)")
        print("  torch.save fp32: %d tensors equal torch's bytes" % len(tensors))
    with open(base, "rb") as f:
        base_bytes = f.read()

    def same_as_base(path, what):
        with open(path, "rb") as f:
            check(f.read() == base_bytes, "%s: output differs from the plain torch.save conversion" % what)
        print("  %-40s byte-identical to the plain conversion" % what)

    # 2. container and config variants: all give the same file
    variants = [
        ("safetensors fp32", dict(safetensors=True)),
        ("no position_ids", dict()),
        ("pooler weights present", dict()),
        ("state_dict wrapper + module. prefix", dict(wrap=True, module_prefix=True)),
        ("safetensors + module. prefix", dict(safetensors=True, module_prefix=True)),
        ("2023 config keys (proj/pooler_type)", dict(variant="legacy")),
        ("vocabulary from tokenizer.json", dict(tokenizer_json=True)),
    ]
    for i, (what, kw) in enumerate(variants):
        s = collections.OrderedDict(sd)
        if what == "no position_ids":
            del s["text.transformer.embeddings.position_ids"]
        if what == "pooler weights present":
            s["text.transformer.pooler.dense.weight"] = torch.randn(64, 64)
            s["text.transformer.pooler.dense.bias"] = torch.randn(64)
        o = out("variant%d" % i)
        if expect_ok(snap("variant%d" % i, s, **kw), o, what):
            same_as_base(o, what)
    check("position_ids" in str(list(sd)), "the default checkpoint carries position_ids (like the real one)")

    # 3. half precision safetensors: widened exactly as torch's .float()
    for what, dt in (("safetensors fp16", torch.float16), ("safetensors bf16", torch.bfloat16)):
        o = out(what.replace(" ", "_"))
        if expect_ok(snap(what.replace(" ", "_"), sd, safetensors=True, st_dtype=dt), o, what):
            compare(o, sd, what, widen=dt)
            print("  %-40s every value equals torch's %s -> float32" % (what, dt))

    # 4. the C loader accepts the converter's output
    for path in (base, out("safetensors_fp16")):
        rc, so, se = cli_info(path, "--verify")
        check(rc == 0 and "2,188,993" in so and "73" in so, "biomedclip info %s: exit %d %s%s" % (path, rc, so, se))
    print("  biomedclip info --verify accepts the tiny conversions")

    # 5. head counts: from the config keys, or the options, else a clear error
    cfg = gen.config("tiny")
    del cfg["model_cfg"]["vision_cfg"]["heads"]
    del cfg["model_cfg"]["text_cfg"]["num_attention_heads"]
    d = snap("noheads", sd, cfg=cfg)
    expect_fail(d, out("noheads"), "no head counts", ["cannot tell the vision head count", "--vision-heads"])
    if expect_ok(d, out("noheads_opt"), "heads from options", "--vision-heads", "4", "--text-heads", "4"):
        same_as_base(out("noheads_opt"), "heads from --vision-heads/--text-heads")
    cfg = gen.config("tiny")
    cfg["model_cfg"]["vision_cfg"]["heads"] = 3
    expect_fail(snap("heads3", sd, cfg=cfg), out("heads3"), "heads not dividing the width",
                ["vision width 64 is not divisible by 3 heads"])
    cfg = gen.config("tiny")
    cfg["model_cfg"]["text_cfg"]["hf_pooler_type"] = "mean_pooler"
    expect_fail(snap("meanpool", sd, cfg=cfg), out("meanpool"), "unsupported pooler", ["mean_pooler"])

    # 6. state_dict problems
    s = collections.OrderedDict(sd)
    del s["text.transformer.encoder.layer.1.output.dense.bias"]
    expect_fail(snap("missing", s), out("missing"), "missing tensor",
                ["missing tensor text.transformer.encoder.layer.1.output.dense.bias [64]"])
    s = collections.OrderedDict(sd)
    s["visual.trunk.blocks.0.ls1.gamma"] = torch.ones(64)
    s["logit_bias"] = torch.zeros(())
    expect_fail(snap("extra", s), out("extra"), "extra tensors",
                ["unexpected tensor visual.trunk.blocks.0.ls1.gamma", "unexpected tensor logit_bias"])
    s = collections.OrderedDict(sd)
    s["visual.trunk.blocks.1.mlp.fc1.weight"] = torch.randn(129, 64)
    expect_fail(snap("shape", s), out("shape"), "wrong shape",
                ["tensor visual.trunk.blocks.1.mlp.fc1.weight: expected shape [128,64], found [129,64]"])
    s = collections.OrderedDict(sd)
    s["text.proj.0.weight"] = torch.randn(64, 48).t()
    expect_fail(snap("noncontig", s), out("noncontig"), "non-contiguous tensor", ["text.proj.0.weight", "non-contiguous"])
    s = collections.OrderedDict(sd)
    s["visual.head.proj.weight"] = s["visual.head.proj.weight"].double()
    d = snap("f64", s, safetensors=True)
    expect_fail(d, out("f64"), "unsupported dtype (F64)", ["visual.head.proj.weight", "F64"])

    # a storage cut short inside the archive: the tensor overruns it
    d = snap("overrun", sd)
    binp = os.path.join(d, "open_clip_pytorch_model.bin")
    with zipfile.ZipFile(binp) as z:
        pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        prefix = pkl[:-len("data.pkl")]
        # the storage of visual.trunk.norm.weight: find its key through the pickle's persistent ids
        key = storage_key_of(z.read(pkl), "visual.trunk.norm.weight")
    rewrite_zip(binp + "", binp + ".new", lambda n, b: b[:-8] if n == prefix + "data/" + key else b)
    os.replace(binp + ".new", binp)
    expect_fail(d, out("overrun"), "tensor overrunning its storage", ["visual.trunk.norm.weight", "overrun"])

    # a top folder name other than torch's default
    d = snap("prefix", sd)
    binp = os.path.join(d, "open_clip_pytorch_model.bin")
    with zipfile.ZipFile(binp) as zin, zipfile.ZipFile(binp + ".new", "w") as zout:
        for info in zin.infolist():
            zout.writestr("some_other_name/" + info.filename.split("/", 1)[1], zin.read(info.filename))
    os.replace(binp + ".new", binp)
    if expect_ok(d, out("prefix"), "archive with another top folder"):
        same_as_base(out("prefix"), "archive with another top folder")

    # 7. hostile pickles: refused by name, nothing runs, no output
    for what, payload, named in hostile_pickles(work):
        d = os.path.join(work, "evil_" + what)
        shutil.copytree(os.path.join(work, "base"), d)
        binp = os.path.join(d, "open_clip_pytorch_model.bin")
        with zipfile.ZipFile(binp, "w") as z:
            z.writestr("archive/data.pkl", payload)
            z.writestr("archive/version", "3\n")
        marker = payload_marker(payload)
        expect_fail(d, out("evil_" + what), "hostile pickle (%s)" % what, ["refusing pickle global " + named])
        check(not os.path.exists(marker), "hostile pickle (%s): the payload ran (%s exists)" % (what, marker))

    # 8. other bad inputs
    expect_fail(os.path.join(work, "does-not-exist"), out("nodir"), "missing snapshot",
                ["does-not-exist: no such checkpoint file or snapshot directory"])
    d = snap("notzip", sd)
    with open(os.path.join(d, "open_clip_pytorch_model.bin"), "wb") as f:
        f.write(b"\x80\x02}q\x00.")  # a legacy (non-zip) torch file
    expect_fail(d, out("notzip"), "legacy non-zip .bin", ["not a torch.save zip archive"])
    d = snap("badpkl", sd)
    with zipfile.ZipFile(os.path.join(d, "open_clip_pytorch_model.bin"), "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00(X\x03\x00\x00\x00abc")  # cut short
    expect_fail(d, out("badpkl"), "truncated pickle", ["cannot read data.pkl"])
    d = snap("badst", sd, safetensors=True)
    stp = os.path.join(d, "open_clip_model.safetensors")
    with open(stp, "r+b") as f:
        f.truncate(os.path.getsize(stp) - 100)
    expect_fail(d, out("badst"), "truncated safetensors", ["data_offsets"])

    full_model_checks(work)


def storage_key_of(pkl_bytes, tensor_name):
    """The storage key of one tensor, read with pickletools-free parsing via a tolerant unpickler."""
    found = {}

    class Rebuild:
        def __init__(self, storage, *a):
            self.key = storage

    class U(pickle.Unpickler):
        def find_class(self, module, name):
            if name == "OrderedDict":
                return collections.OrderedDict
            if name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
                return Rebuild
            return name

        def persistent_load(self, pid):
            return pid[2]

    obj = U(io.BytesIO(pkl_bytes)).load()
    found = obj[tensor_name].key
    return found


def hostile_pickles(work):
    tag = "%d_%d" % (os.getpid(), int(time.time() * 1000) % 100000)
    m1 = "/tmp/xxx_pwned_%s_a" % tag
    m2 = "/tmp/xxx_pwned_%s_b" % tag
    # protocol 2 GLOBAL 'os system' + REDUCE, written opcode by opcode
    cmd = ("touch " + m1).encode()
    p1 = b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + m2,))

    # whatever pickle names os.system on this platform (posix.system), via STACK_GLOBAL (protocol 4)
    p2 = pickle.dumps(collections.OrderedDict([("logit_scale", Evil())]), protocol=4)
    return [("os_system", p1, "os.system"), ("stack_global", p2, "%s.system" % os.system.__module__)]


def payload_marker(payload):
    m = re.search(rb"/tmp/xxx_pwned_[0-9_]+[ab]", payload)
    return m.group(0).decode()


def full_model_checks(work):
    """The full-size model: conversion time, parameter count through the C loader, values."""
    snapdir = os.path.join(TESTDATA, "full")
    full = os.path.join(TESTDATA, "full.bmc")
    check(os.path.exists(full) and os.path.isdir(snapdir), "%s and %s exist (tests/prep/10_models.sh)" % (full, snapdir))
    if not os.path.exists(full):
        return
    rc, so, se = cli_info(full)
    m = re.search(r"parameters\s+([\d,]+)", so)
    check(rc == 0 and m and m.group(1) == "195,902,721", "biomedclip info full.bmc: exit %d, %s%s" % (rc, so, se))
    check(re.search(r"tensors\s+353\b", so) is not None, "full.bmc: 353 tensors (351 weights + 2 vocab)")
    print("  biomedclip info full.bmc: parameters %s, file size %s bytes" % (
        m.group(1) if m else "?", (re.search(r"file size\s+([\d,]+)", so) or [None, "?"])[1]))
    # fresh conversions from the real HF files (open_clip_config.json in both key variants,
    # vocab.txt + tokenizer.json + tokenizer_config.json) around the full weights: well under a
    # minute, and the same bytes as the prepared file
    for variant in ("current", "legacy-2023"):
        d = os.path.join(work, "real_" + variant)
        os.makedirs(d)
        os.symlink(os.path.join(snapdir, "open_clip_pytorch_model.bin"), os.path.join(d, "open_clip_pytorch_model.bin"))
        for src, dst in (("biomedclip_open_clip_config.%s.json" % variant, "open_clip_config.json"),
                         ("biomedbert-vocab.txt", "vocab.txt"), ("biomedclip-tokenizer.json", "tokenizer.json"),
                         ("biomedclip-tokenizer_config.json", "tokenizer_config.json")):
            shutil.copyfile(os.path.join(SHARED, src), os.path.join(d, dst))
        o = os.path.join(work, "full.bmc")
        rc, msg, dt = convert(d, o)
        check(rc == 0, "full conversion (%s config) failed: %s" % (variant, msg))
        check(dt < 60, "full conversion took %.1f s (limit 60)" % dt)
        print("  full-size conversion with the real %s config and tokenizer files: %.1f s" % (variant, dt))
        if rc != 0:
            continue
        with open(o, "rb") as a, open(full, "rb") as b:
            same = True
            while same:
                x, y = a.read(1 << 24), b.read(1 << 24)
                same = x == y
                if not x:
                    break
        check(same, "the %s-config full conversion equals $BMC_TESTDATA/full.bmc" % variant)
        os.unlink(o)
    if os.path.exists(full):
        # every value against torch.load of the snapshot
        sd = torch.load(os.path.join(snapdir, "open_clip_pytorch_model.bin"), map_location="cpu")
        n = sum(t.numel() for k, t in sd.items() if t.is_floating_point())
        check(n == 195902721, "full snapshot has %d float parameters" % n)
        compare(full, sd, "full.bmc")
        print("  full.bmc: every tensor equals torch.load's values")
        rc, so, se = cli_info(full, "--verify")
        check(rc == 0 and "verified" in so, "biomedclip info --verify full.bmc: %s%s" % (so, se))
    # a damaged copy: the CLI reports the loader's message and exits 3
    bad = os.path.join(work, "bad.bmc")
    with open(full, "rb") as f:
        head = f.read(4096)
    with open(bad, "wb") as f:
        f.write(head)
    rc, so, se = cli_info(bad)
    check(rc == 3 and "bad.bmc" in se and "truncated" in se, "info on a truncated file: exit %d, %s" % (rc, se.strip()))


if __name__ == "__main__":
    sys.exit(main())
