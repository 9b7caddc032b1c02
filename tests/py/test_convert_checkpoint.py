#!/usr/bin/python3
"""test_convert_checkpoint.py - a fine-tuned checkpoint file converted in one command
(`tools/convert.py CHECKPOINT --base SNAPSHOT_DIR -o OUT.bmc`), and `biomedclip compare`.

From the random tiny model ($BMC_TESTDATA/tiny, the base snapshot) the test writes checkpoints
the way training code does, with the real torch.save: open_clip's training format (epoch, name,
'module.'-prefixed state_dict from DDP, an AdamW optimizer after one step, a GradScaler state),
a plain state_dict, a safetensors file, a "model." prefix (Lightning), the PyTorch tutorials'
"model_state_dict", and fp16. Each converts by file to the same bytes as the snapshot
conversion (fp16: the same bytes as its own fp16 snapshot's conversion), and the embeddings
`biomedclip embed-image/embed-text` print from them are equal. The optimizer's storages are
never opened (the zip reads are recorded). Perturbing the image tower's weights shows in
`compare` (image cosines drop, text cosines stay 1), and every number `compare --json` prints is
recomputed here from the two models' embeddings. Every refusal is checked for its message. One
full-size check: open_clip's training format of the full model converts to $BMC_TESTDATA/full.bmc
byte for byte, in bounded time and memory.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import gen_checkpoint as gen  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
CLI = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA") or os.path.join(ROOT, BUILD, "testdata")
if not os.path.isabs(TESTDATA):
    TESTDATA = os.path.join(ROOT, TESTDATA)
SHARED = gen.shared_data()
IMAGES = None  # the notebook's 9 example images, linked into the work directory by run()
CONVERT = os.path.join(ROOT, "tools", "convert.py")

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


# The converter runs with torch and numpy shadowed by modules that raise on import: it must use
# the standard library only.
NO_TORCH = tempfile.mkdtemp(prefix="convert_notorch_")
for mod in ("torch", "numpy"):
    with open(os.path.join(NO_TORCH, mod + ".py"), "w") as f:
        f.write("raise ImportError('convert.py must not use %s')\n" % mod)


def convert(src, out, *extra):
    env = dict(os.environ, PYTHONPATH=NO_TORCH)
    t0 = time.time()
    p = subprocess.run([sys.executable, CONVERT, src, "-o", out] + list(extra), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, env=env)
    return p.returncode, p.stdout + p.stderr, time.time() - t0


def cli(*args):
    p = subprocess.run([CLI] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def same_bytes(a, b):
    with open(a, "rb") as x, open(b, "rb") as y:
        while True:
            p, q = x.read(1 << 24), y.read(1 << 24)
            if p != q:
                return False
            if not p:
                return True


def expect_fail(src, out, what, pieces, *extra):
    rc, msg, _ = convert(src, out, *extra)
    check(rc == 1 and msg.startswith("convert.py: error:") and all(p in msg for p in pieces) and "Traceback" not in msg,
          "%s: refused naming %s (exit %d: %s)" % (what, pieces, rc, msg.strip()[:400]))
    check(not os.path.exists(out), "%s: no output left behind" % what)


TEXTS = ["chest x-ray", "brain MRI", "pie chart", "squamous cell carcinoma histopathology",
         "a bone fracture", "pleural effusion"]
LABELS = ["chest X-ray", "brain MRI", "bone X-ray", "pie chart", "H&E histopathology"]


def embeddings(model):
    """{image path: vector} and {text: vector} as `biomedclip embed-image/embed-text --json` print them."""
    imgs = sorted(os.path.join(IMAGES, f) for f in os.listdir(IMAGES))
    rc1, o1, e1 = cli("embed-image", "-m", model, "--json", *imgs)
    rc2, o2, e2 = cli("embed-text", "-m", model, "--json", *TEXTS)
    check(rc1 == 0 and rc2 == 0, "embed-image/embed-text with %s (%s%s)" % (os.path.basename(model), e1, e2))
    im = collections.OrderedDict((d["file"], d["embedding"]) for d in map(json.loads, o1.splitlines()))
    tx = collections.OrderedDict((d["text"], d["embedding"]) for d in map(json.loads, o2.splitlines()))
    return im, tx


# ---- the statistics of `compare`, recomputed ----------------------------------------------------

def cos(a, b):
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    return (a @ b / (a.norm().clamp_min(1e-12) * b.norm().clamp_min(1e-12))).item()


def ranks(v):
    """1 = largest, ties share their mean rank."""
    order = sorted(range(len(v)), key=lambda i: (-v[i], i))
    r = [0.0] * len(v)
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = torch.tensor(ranks(x), dtype=torch.float64), torch.tensor(ranks(y), dtype=torch.float64)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return (rx @ ry / (rx.norm() * ry.norm())).item()


def sims(q, g):
    """float32 cosine matrix [len(q), len(g)], as bmc_similarity writes it (double, then float)."""
    Q, G = torch.tensor(q, dtype=torch.float64), torch.tensor(g, dtype=torch.float64)
    Q = Q / Q.norm(dim=1, keepdim=True).clamp_min(1e-12)
    G = G / G.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (Q @ G.T).float().tolist()


def argmax(v):
    return max(range(len(v)), key=lambda i: (v[i], -i))


def expected_compare(ea, eb, scale_a, scale_b):
    (ia, ta), (ib, tb) = ea, eb
    files, texts = list(ia), list(ta)
    out = {"images": [cos(ia[f], ib[f]) for f in files], "texts": [cos(ta[t], tb[t]) for t in texts]}
    la, lb = [LAB[0][l] for l in LABELS], [LAB[1][l] for l in LABELS]
    agree, maxdiff = 0, 0.0
    for f in files:
        pa = torch.softmax(scale_a * torch.tensor(sims([ia[f]], la)[0], dtype=torch.float64), 0)
        pb = torch.softmax(scale_b * torch.tensor(sims([ib[f]], lb)[0], dtype=torch.float64), 0)
        agree += int(pa.argmax()) == int(pb.argmax())
        maxdiff = max(maxdiff, (pa - pb).abs().max().item())
    out["zero_shot"] = (agree, maxdiff)
    ret = []
    for (qa, ga, qb, gb) in (([ta[t] for t in texts], [ia[f] for f in files], [tb[t] for t in texts], [ib[f] for f in files]),
                             ([ia[f] for f in files], [ta[t] for t in texts], [ib[f] for f in files], [tb[t] for t in texts])):
        sa, sb = sims(qa, ga), sims(qb, gb)
        top1 = sum(argmax(x) == argmax(y) for x, y in zip(sa, sb))
        rhos = [spearman(x, y) for x, y in zip(sa, sb)]
        ret.append((top1, sum(rhos) / len(rhos), min(rhos)))
    out["retrieval"] = ret
    return out


LAB = [None, None]  # label-text embeddings of A and B, filled by label_embeddings()


def label_embeddings(model):
    rc, o, e = cli("embed-text", "-m", model, "--json", *["this is a photo of " + l for l in LABELS])
    return {l: d["embedding"] for l, d in zip(LABELS, map(json.loads, o.splitlines()))}


def compare_json(a, b):
    rc, o, e = cli("compare", a, b, "--images", IMAGES, "--texts", TEXTS_FILE, "--labels", ",".join(LABELS), "--json")
    check(rc == 0, "compare %s %s --json: exit %d %s" % (os.path.basename(a), os.path.basename(b), rc, e.strip()))
    try:
        return json.loads(o)
    except ValueError:
        check(False, "compare --json prints one JSON object: %r" % o[:300])
        return None


def check_compare_numbers(got, a, b, what):
    """Every number of compare's JSON equals its recomputation from embed-image/embed-text."""
    ea, eb = embeddings(a), embeddings(b)
    LAB[0], LAB[1] = label_embeddings(a), label_embeddings(b)
    sa, sb = got["a"]["logit_scale"], got["b"]["logit_scale"]
    want = expected_compare(ea, eb, sa, sb)
    files = [d["file"] for d in got["images"]]
    check(files == list(ea[0]), "%s: compare's images are the directory's, sorted (%d)" % (what, len(files)))
    gi = [d["cosine"] for d in got["images"]]
    gt = [d["cosine"] for d in got["texts"]]
    check(len(gi) == len(want["images"]) and all(abs(x - y) < 1e-6 for x, y in zip(gi, want["images"])),
          "%s: per-image cosines %s equal the recomputed %s" % (what, [round(x, 6) for x in gi[:3]],
                                                                [round(x, 6) for x in want["images"][:3]]))
    check(len(gt) == len(want["texts"]) and all(abs(x - y) < 1e-6 for x, y in zip(gt, want["texts"])),
          "%s: per-text cosines equal the recomputed ones" % what)
    c = got["cosine"]
    check(abs(c["images"]["min"] - min(want["images"])) < 1e-6 and
          abs(c["images"]["mean"] - sum(want["images"]) / len(want["images"])) < 1e-6 and
          abs(c["texts"]["mean"] - sum(want["texts"]) / len(want["texts"])) < 1e-6,
          "%s: cosine min/mean summaries" % what)
    z = got["zero_shot"]
    check(z["labels"] == LABELS and z["n"] == len(files) and z["top1_agree"] == want["zero_shot"][0] and
          abs(z["max_prob_diff"] - want["zero_shot"][1]) < 1e-5,
          "%s: zero-shot top-1 agreement %d/%d (recomputed %d), max prob diff %.3g (recomputed %.3g)"
          % (what, z["top1_agree"], z["n"], want["zero_shot"][0], z["max_prob_diff"], want["zero_shot"][1]))
    r = got["retrieval"]
    check([(x["query"], x["gallery"]) for x in r] == [("text", "image"), ("image", "text")],
          "%s: retrieval text->image and image->text" % what)
    for x, (top1, rmean, rmin) in zip(r, want["retrieval"]):
        check(x["top1_agree"] == top1 and abs(x["spearman_mean"] - rmean) < 1e-6 and abs(x["spearman_min"] - rmin) < 1e-6,
              "%s: retrieval %s->%s top-1 %d (recomputed %d), Spearman mean %.6f (recomputed %.6f)"
              % (what, x["query"], x["gallery"], x["top1_agree"], top1, x["spearman_mean"], rmean))
    return want


TEXTS_FILE = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-full", action="store_true", help="skip the full-size check")
    a = ap.parse_args()
    for need in (os.path.join(TESTDATA, "tiny"), CLI):
        if not os.path.exists(need):
            print("FAIL: %s missing (make; tests/prep/10_models.sh)" % need)
            return 1
    work = tempfile.mkdtemp(prefix="test_convert_checkpoint_")
    try:
        run(work)
        if not a.no_full:
            full_check(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(NO_TORCH, ignore_errors=True)
    print("\ntest_convert_checkpoint: %d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


def adamw_state(sd, only=None):
    """An AdamW optimizer's state_dict after one step over copies of sd's float tensors."""
    params = [torch.nn.Parameter(v.clone()) for k, v in sd.items() if v.is_floating_point() and (only is None or k in only)]
    opt = torch.optim.AdamW(params, lr=1e-5)
    sum((p.float() ** 2).sum() for p in params).backward()
    opt.step()
    return opt.state_dict()


def run(work):
    global TEXTS_FILE, IMAGES
    IMAGES = os.path.join(work, "images")
    os.makedirs(IMAGES)
    src = os.path.join(SHARED, "images")
    for f in os.listdir(src):
        if f.rsplit(".", 1)[-1].lower() in ("jpg", "jpeg", "png"):
            os.symlink(os.path.join(src, f), os.path.join(IMAGES, f))
    TEXTS_FILE = os.path.join(work, "texts.txt")
    with open(TEXTS_FILE, "w") as f:
        f.write("\n".join(TEXTS) + "\n")
    base_dir = os.path.join(TESTDATA, "tiny")
    sd = torch.load(os.path.join(base_dir, "open_clip_pytorch_model.bin"), map_location="cpu")
    p = lambda name: os.path.join(work, name)  # noqa: E731

    base = p("base.bmc")
    rc, msg, _ = convert(base_dir, base)
    check(rc == 0, "snapshot conversion of the tiny base: %s" % msg.strip()[-200:])

    # ---- each checkpoint format, converted by file ----
    module_sd = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    train = {"epoch": 7, "name": "ft-run", "state_dict": module_sd, "optimizer": adamw_state(sd),
             "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                        "_growth_tracker": 0}}
    torch.save(train, p("epoch_7.pt"))
    torch.save(sd, p("plain.pth"))
    gen.write_safetensors(p("weights.safetensors"), sd)
    torch.save({"epoch": 4, "global_step": 120, "pytorch-lightning_version": "2.1.0",
                "state_dict": collections.OrderedDict(("model." + k, v) for k, v in sd.items()),
                "optimizer_states": [adamw_state(sd, only={"logit_scale"})], "lr_schedulers": [],
                "hyper_parameters": {"lr": 1e-5, "model_name": "biomedclip"}}, p("lightning.ckpt"))
    torch.save({"model_state_dict": sd, "optimizer_state_dict": adamw_state(sd, only={"logit_scale"}), "epoch": 2},
               p("tutorial.pt"))
    formats = [("open_clip training checkpoint (DDP module., AdamW, scaler)", "epoch_7.pt",
                ["open_clip training checkpoint", "epoch 7", "name 'ft-run'", "'module.' prefix removed from 72 keys",
                 "skipped: optimizer, scaler", "never read", "float32 x 71"]),
               ("plain state_dict", "plain.pth", ["torch.save zip, plain state_dict", "71 tensors (float32 x 71)"]),
               ("safetensors", "weights.safetensors", ["safetensors, plain state_dict"]),
               ("Lightning checkpoint (model. prefix)", "lightning.ckpt",
                ["checkpoint dict, weights under 'state_dict' (epoch 4, global_step 120)", "'model.' prefix removed",
                 "skipped: pytorch-lightning_version, optimizer_states, lr_schedulers, hyper_parameters"]),
               ("model_state_dict (PyTorch tutorials)", "tutorial.pt", ["weights under 'model_state_dict'", "epoch 2",
                                                                         "skipped: optimizer_state_dict"])]
    for what, name, pieces in formats:
        out = p(name + ".bmc")
        rc, msg, dt = convert(p(name), out, "--base", base_dir)
        check(rc == 0 and all(x in msg for x in pieces), "%s: converts by file in %.1f s, reporting %s (exit %d: %s)"
              % (what, dt, pieces, rc, msg.strip()[:600]))
        check(rc == 0 and same_bytes(out, base), "%s: the .bmc equals the snapshot conversion byte for byte" % what)
    print("  what the converter says:\n    " + convert(p("epoch_7.pt"), p("x.bmc"), "--base", base_dir)[1]
          .strip().replace("\n", "\n    "))

    # --config and --vocab instead of --base (tokenizer.json as the vocabulary)
    out = p("cv.bmc")
    rc, msg, _ = convert(p("epoch_7.pt"), out, "--config", os.path.join(base_dir, "open_clip_config.json"),
                         "--vocab", os.path.join(SHARED, "biomedclip-tokenizer.json"))
    check(rc == 0 and same_bytes(out, base), "--config + --vocab tokenizer.json: same bytes (%s)" % msg.strip()[-200:])

    # the embeddings of a by-file conversion are those of the snapshot conversion
    eb, et = embeddings(base), embeddings(p("epoch_7.pt.bmc"))
    check(eb == et and len(eb[0]) >= 8 and len(eb[1]) == len(TEXTS),
          "embed-image/embed-text: %d image and %d text embeddings identical to the snapshot conversion's"
          % (len(eb[0]), len(eb[1])))

    # the optimizer's storages are never opened: record the archive members the converter reads
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import convert as conv  # noqa: E402  (standard library only)
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *a, **kw):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *a, **kw)

    zipfile.ZipFile.open = spy
    try:
        rc = conv.main([p("epoch_7.pt"), "-o", p("spy.bmc"), "--base", base_dir, "-q"])
    finally:
        zipfile.ZipFile.open = real_open
    with zipfile.ZipFile(p("epoch_7.pt")) as z:
        storages = [n for n in z.namelist() if "/data/" in n]
    read = {n for n in opened if "/data/" in n}
    n_model = sum(1 for k, v in sd.items() if v.is_floating_point())
    check(rc == 0 and len(read) == n_model and len(storages) > n_model,
          "training checkpoint: the converter opened %d of the %d storages (the model's %d float tensors; the "
          "optimizer's %d never)" % (len(read), len(storages), n_model, len(storages) - n_model))

    # ---- fp16: by file equals its own fp16 snapshot's conversion ----
    sd16 = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    torch.save({"epoch": 1, "state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd16.items())},
               p("fp16.pt"))
    snap16 = p("snap16")
    os.makedirs(snap16)
    for f in ("open_clip_config.json", "vocab.txt"):
        shutil.copyfile(os.path.join(base_dir, f), os.path.join(snap16, f))
    torch.save(sd16, os.path.join(snap16, "open_clip_pytorch_model.bin"))
    rc1, m1, _ = convert(p("fp16.pt"), p("fp16.bmc"), "--base", base_dir)
    rc2, m2, _ = convert(snap16, p("snap16.bmc"))
    check(rc1 == 0 and "float16 x 71); widened to float32" in m1, "fp16 checkpoint converts, said so: %s" % m1.strip()[:300])
    check(rc1 == rc2 == 0 and same_bytes(p("fp16.bmc"), p("snap16.bmc")),
          "fp16 checkpoint by file: the same bytes as its own fp16 snapshot's conversion")
    rc, o, e = cli("compare", base, p("fp16.bmc"), "--images", IMAGES, "--texts", TEXTS_FILE, "--json")
    j = json.loads(o) if rc == 0 else None
    check(j is not None and 0.999 < j["cosine"]["images"]["min"] and j["cosine"]["images"]["min"] < 1 - 1e-9
          and 0.999 < j["cosine"]["texts"]["min"],
          "compare fp32 base vs fp16 fine-tune: close but not identical (image cosine min %s, text min %s)"
          % (j and j["cosine"]["images"]["min"], j and j["cosine"]["texts"]["min"]))

    # ---- compare: identical models, then a perturbed image tower ----
    same = compare_json(base, p("epoch_7.pt.bmc"))
    if same:
        check(same["cosine"]["images"]["min"] > 1 - 1e-9 and same["cosine"]["texts"]["min"] > 1 - 1e-9 and
              same["zero_shot"]["top1_agreement"] == 1 and same["zero_shot"]["max_prob_diff"] == 0 and
              all(r["top1_agreement"] == 1 and r["spearman_min"] == 1 for r in same["retrieval"]),
              "compare of identical weights: cosines 1, zero-shot and retrieval agree fully")
    pert = collections.OrderedDict(sd)
    g = torch.Generator().manual_seed(11)
    for k in ("visual.trunk.blocks.1.mlp.fc2.weight", "visual.trunk.blocks.0.attn.qkv.weight", "visual.head.proj.weight"):
        pert[k] = sd[k] + torch.randn(sd[k].shape, generator=g) * sd[k].std() * 2
    torch.save({"epoch": 3, "state_dict": collections.OrderedDict(("module." + k, v) for k, v in pert.items())},
               p("perturbed.pt"))
    rc, msg, _ = convert(p("perturbed.pt"), p("perturbed.bmc"), "--base", base_dir)
    check(rc == 0, "perturbed checkpoint converts")
    got = compare_json(base, p("perturbed.bmc"))
    if got:
        ci, ct = got["cosine"]["images"], got["cosine"]["texts"]
        check(ci["mean"] < 0.99 and ct["min"] > 1 - 1e-9,
              "perturbed image tower: image cosines drop (mean %.4f, min %.4f), text cosines stay 1 (min %.9f)"
              % (ci["mean"], ci["min"], ct["min"]))
        check_compare_numbers(got, base, p("perturbed.bmc"), "compare base vs perturbed")
        rc, o, e = cli("compare", base, p("perturbed.bmc"), "--images", IMAGES, "--texts", TEXTS_FILE,
                       "--labels", ",".join(LABELS))
        m = re.search(r"images: (\d+), min ([\d.]+), mean ([\d.]+)", o)
        check(rc == 0 and "cosine between A's and B's embedding" in o and "zero-shot over 5 labels" in o and
              "text -> image" in o and m is not None and int(m.group(1)) == ci["n"] and
              abs(float(m.group(3)) - ci["mean"]) < 1e-7 and abs(float(m.group(2)) - ci["min"]) < 1e-7,
              "compare's table prints the figures of its JSON (image mean %s vs %.9f)"
              % (m and m.group(3), ci["mean"]))
        print("    " + o.strip().replace("\n", "\n    ")[-900:])

    # compare: images only -> image->image retrieval; usage and input errors
    rc, o, e = cli("compare", base, p("perturbed.bmc"), "--images", IMAGES, "--json")
    j = json.loads(o) if rc == 0 else {}
    check([(x["query"], x["gallery"], x["candidates"]) for x in j.get("retrieval", [])] ==
          [("image", "image", len(j.get("images", [])) - 1)] and j.get("zero_shot", 0) is None,
          "compare with images only: image->image retrieval, each query against the others")
    # texts only, and models of different embedding sizes: no cosines, the rankings still compared
    full = os.path.join(TESTDATA, "full.bmc")
    if os.path.exists(full):
        rc, o, e = cli("compare", base, full, "--text", "pleural effusion", "--text", "brain MRI", "--text", "pie chart",
                       "--text", "bone fracture", "--json", "--threads", "2")
        j = json.loads(o) if rc == 0 else {}
        r = j.get("retrieval", [{}])
        check(rc == 0 and j["a"]["embed_dim"] == 32 and j["b"]["embed_dim"] == 512 and
              all(t["cosine"] is None for t in j["texts"]) and j["cosine"]["texts"]["min"] is None and
              [(x["query"], x["gallery"], x["queries"], x["candidates"]) for x in r] == [("text", "text", 4, 3)] and
              -1 <= r[0]["spearman_mean"] <= 1,
              "compare tiny (32-d) vs full (512-d), texts only: cosines null, text->text ranking compared (%s)"
              % (o.strip()[-300:] or e.strip()))
    rc, o, e = cli("compare", base)
    check(rc == 2 and "two model files" in e, "compare with one model: exit 2 (%s)" % e.strip())
    rc, o, e = cli("compare", base, base)
    check(rc == 2 and "nothing to compare" in e, "compare without inputs: exit 2 (%s)" % e.strip())
    rc, o, e = cli("compare", base, base, "--text", "x", "--labels", "a,b")
    check(rc == 2 and "--labels" in e, "compare --labels without images: exit 2 (%s)" % e.strip())
    rc, o, e = cli("compare", base, p("missing.bmc"), "--text", "x")
    check(rc == 3 and "missing.bmc" in e, "compare with a missing model: exit 3 (%s)" % e.strip())
    rc, o, e = cli("compare", base, base, "--json", "--text", "x", os.path.join(IMAGES, "pie_chart.png"),
                   p("no-such.png"))
    j = json.loads(o) if o.strip() else {}
    check(rc == 1 and "no-such.png" in e and [d["file"] for d in j.get("images", [])] ==
          [os.path.join(IMAGES, "pie_chart.png")], "compare with an unreadable image: named, others compared, exit 1")
    rc, o, e = cli("compare", base, base, "--text", "x", "--bogus")
    check(rc == 2 and "--bogus" in e, "compare with an unknown option: exit 2 (%s)" % e.strip())
    rc, o, e = cli("compare", base, base, "--texts", p("no-texts.txt"))
    check(rc == 2 and "no-texts.txt" in e, "compare with a missing --texts file: exit 2 (%s)" % e.strip())
    rc, o, e = cli("compare", "--help")
    check(rc == 0 and "usage: biomedclip compare" in o, "compare --help")

    refusals(work, sd, base_dir)


def refusals(work, sd, base_dir):
    p = lambda name: os.path.join(work, name)  # noqa: E731
    out = p("refused.bmc")
    torch.save(sd, p("sd.pt"))
    expect_fail(p("sd.pt"), out, "checkpoint file without --base", ["is a checkpoint file", "--base SNAPSHOT_DIR",
                                                                    "--config FILE and --vocab FILE"])
    expect_fail(p("sd.pt"), out, "--config without --vocab", ["--base SNAPSHOT_DIR"],
                "--config", os.path.join(base_dir, "open_clip_config.json"))
    expect_fail(p("sd.pt"), out, "--base that is not a directory", ["--base", "not a directory"],
                "--base", p("sd.pt"))
    expect_fail(base_dir, out, "--base with a snapshot directory", ["--base is for a checkpoint file"],
                "--base", base_dir)
    expect_fail(p("nothing-here.pt"), out, "missing checkpoint", ["nothing-here.pt",
                                                                  "no such checkpoint file or snapshot directory"])
    expect_fail(p("sd.pt"), out, "missing --vocab file", ["no-vocab.txt", "no such vocabulary file"],
                "--config", os.path.join(base_dir, "open_clip_config.json"), "--vocab", p("no-vocab.txt"))

    def refuse(what, obj, pieces, save=torch.save, name="ck.pt"):
        path = p(name)
        save(obj, path)
        expect_fail(path, out, what, pieces, "--base", base_dir)

    s = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    del s["module.text.transformer.encoder.layer.1.output.dense.bias"]
    refuse("missing tensor", {"epoch": 1, "state_dict": s},
           ["missing tensor text.transformer.encoder.layer.1.output.dense.bias [64]"])
    s = collections.OrderedDict(sd)
    s["visual.trunk.blocks.0.ls1.gamma"] = torch.ones(64)
    refuse("unexpected tensor", s, ["unexpected tensor visual.trunk.blocks.0.ls1.gamma"])
    s = collections.OrderedDict(sd)
    s["visual.trunk.blocks.1.mlp.fc1.weight"] = torch.randn(129, 64)
    refuse("wrong shape", s, ["tensor visual.trunk.blocks.1.mlp.fc1.weight: expected shape [128,64], found [129,64]"])
    s = collections.OrderedDict(sd)
    s["text.transformer.embeddings.word_embeddings.weight"] = torch.randn(30522, 96)
    refuse("another text width", s, ["tensor text.transformer.embeddings.position_embeddings.weight: "
                                      "expected shape [512,96], found [512,64]"])

    vit = collections.OrderedDict((k[len("visual.trunk."):], v) for k, v in sd.items() if k.startswith("visual.trunk."))
    vit["head.weight"], vit["head.bias"] = torch.randn(1000, 64), torch.randn(1000)
    refuse("bare timm ViT", vit, ["not a BiomedCLIP checkpoint", "a bare timm ViT", "patch_embed.proj.weight",
                                  "blocks.0-1.*", "head.weight", "no text tower"])
    bert = collections.OrderedDict((k[len("text.transformer."):], v) for k, v in sd.items()
                                   if k.startswith("text.transformer."))
    bert["pooler.dense.weight"], bert["pooler.dense.bias"] = torch.randn(64, 64), torch.randn(64)
    refuse("BERT alone", bert, ["not a BiomedCLIP checkpoint", "a BERT text model alone",
                                "embeddings.word_embeddings.weight", "encoder.layer.0-1.*", "no image tower"])
    refuse("BERT for masked LM (bert. prefix)", {"model": collections.OrderedDict(("bert." + k, v) for k, v in bert.items())},
           ["a BERT text model alone", "bert.embeddings.word_embeddings.weight"])
    refuse("image tower alone", {"state_dict": collections.OrderedDict((k, v) for k, v in sd.items()
                                                                       if k.startswith("visual."))},
           ["image tower alone", "text.transformer.embeddings.word_embeddings.weight is missing"])
    refuse("text tower alone", collections.OrderedDict((k, v) for k, v in sd.items() if k.startswith("text.")),
           ["text tower alone", "visual.trunk.patch_embed.proj.weight is missing"])
    refuse("OpenAI-style CLIP", {"visual.conv1.weight": torch.zeros(8, 3, 16, 16),
                                 "transformer.resblocks.0.attn.in_proj_weight": torch.zeros(24, 8),
                                 "token_embedding.weight": torch.zeros(10, 8)},
           ["not a BiomedCLIP checkpoint", "OpenAI-style CLIP"])
    refuse("transformers CLIPModel", {"vision_model.embeddings.patch_embedding.weight": torch.zeros(8, 3, 16, 16),
                                      "text_model.embeddings.token_embedding.weight": torch.zeros(10, 8)},
           ["transformers CLIPModel", "vision_model.*"])
    refuse("unrelated tensors", {"fc.weight": torch.zeros(2, 2)}, ["none of BiomedCLIP's tensors", "fc.weight"])
    refuse("no state_dict in the dict", {"epoch": 3, "lr": 0.1}, ["cannot find the model's state_dict",
                                                                   "'epoch', 'lr'"])
    refuse("two candidate state_dicts", {"ema": sd, "student": sd}, ["cannot find the model's state_dict",
                                                                       "several are: 'ema', 'student'"])
    refuse("an argparse.Namespace in the checkpoint", {"state_dict": sd, "args": argparse.Namespace(lr=1e-5)},
           ["refusing pickle global argparse.Namespace", "torch.save(model.state_dict(), PATH)"])
    refuse("legacy (non-zip) torch.save", sd, ["legacy torch.save file", "not a zip archive"],
           save=lambda o, path: torch.save(o, path, _use_new_zipfile_serialization=False))

    def text_file(o, path):
        with open(path, "w") as f:
            f.write("just some text, not weights\n")
    refuse("not a checkpoint at all", None, ["not a checkpoint", "safetensors"], save=text_file)


def full_check(work):
    """The full-size model in open_clip's training format (module. prefixes, an optimizer whose
    moments cover the word embeddings): converted by file, byte-identical to full.bmc."""
    snap = os.path.join(TESTDATA, "full")
    full = os.path.join(TESTDATA, "full.bmc")
    if not (os.path.isdir(snap) and os.path.exists(full)):
        check(False, "%s and %s exist (tests/prep/10_models.sh)" % (snap, full))
        return
    sd = torch.load(os.path.join(snap, "open_clip_pytorch_model.bin"), map_location="cpu")
    ck = os.path.join(work, "full_epoch_32.pt")
    opt = adamw_state(sd, only={"text.transformer.embeddings.word_embeddings.weight", "logit_scale"})
    torch.save({"epoch": 32, "name": "full-ft", "state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items()),
                "optimizer": opt}, ck)
    del sd, opt
    out = os.path.join(work, "full_ft.bmc")
    # the converter's own peak memory: VmHWM, read by the process itself at its end (ru_maxrss
    # would include this big process's pages that the child had between fork and exec)
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", "import runpy, sys\n"
                        "sys.argv = sys.argv[1:]\n"
                        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
                        "finally:\n    print('maxrss_kb', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n",
                        CONVERT, ck, "-o", out, "--base", snap], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=dict(os.environ, PYTHONPATH=NO_TORCH))
    rc, msg, dt = p.returncode, p.stdout + p.stderr, time.time() - t0
    rss = int(msg.rsplit("maxrss_kb ", 1)[1].split()[0]) / 1024.0 if "maxrss_kb " in msg else float("inf")
    check(rc == 0 and "epoch 32" in msg and "optimizer" in msg and "never read" in msg,
          "full-size training checkpoint converts by file in %.1f s: %s" % (dt, msg.strip().replace("\n", " | ")[:500]))
    check(dt < 90, "full-size conversion took %.1f s (limit 90)" % dt)
    check(rss < 512, "full-size conversion: the converter's peak RSS %.0f MB (limit 512; the weights are 784 MB and "
                     "the optimizer's storages are not read)" % rss)
    check(rc == 0 and same_bytes(out, full), "full-size by-file conversion equals $BMC_TESTDATA/full.bmc byte for byte")


if __name__ == "__main__":
    sys.exit(main())
