#!/usr/bin/python3
"""PyTorch peer of bench/bench.c: the same workloads on the reference model (torch_model.py,
the open_clip module tree) with the same deterministic inputs, timed the same way (one warm-up
call, then the median of at least 3 calls and --min-time seconds). Prints and writes JSON.

  --mode padded    texts the open_clip way: ids padded with 0 to the context length (256) and
                   an attention mask, so every text costs a 256-token pass
  --mode unpadded  texts of their own length (the zero-shot prompts padded to the longest one)

usage: torch_peer.py --snapshot DIR --mode padded|unpadded [--threads N] [--min-time S] [--quick]
                     [--workload OURS.json] [--image FILE] [--json-out FILE]
The zero-shot token ids come from --workload (the JSON that bench writes; this peer has no
tokenizer); without it 9 texts of 11 ids stand in. When that JSON lists "workloads" (bench
--workloads), only those are timed.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model as tm  # noqa: E402

TEXT_LENS = (8, 24, 64, 256)


def timeit(fn, min_reps=3, min_time=1.0, max_time=30.0):
    t0 = time.perf_counter()
    fn()
    warm = time.perf_counter() - t0
    s = []
    if warm > max_time:
        s.append(warm)
    else:
        start = time.perf_counter()
        while len(s) < 1000:
            a = time.perf_counter()
            fn()
            s.append(time.perf_counter() - a)
            spent = time.perf_counter() - start
            if len(s) >= min_reps and spent >= min_time:
                break
            if spent + s[-1] > max_time:
                break
    return {"median_s": statistics.median(s), "best_s": min(s), "n": len(s)}


def preprocess(path, c):
    """open_clip's val transform: Resize(shorter side, bicubic) -> CenterCrop -> RGB -> ToTensor -> Normalize."""
    S = c["image_size"]
    img = Image.open(path)
    w, h = img.size
    if w <= h:
        ow, oh = S, int(S * h / w)
    else:
        ow, oh = int(S * w / h), S
    if (ow, oh) != (w, h):
        img = img.resize((ow, oh), Image.BICUBIC)
    left, top = int(round((ow - S) / 2.0)), int(round((oh - S) / 2.0))
    img = img.crop((left, top, left + S, top + S)).convert("RGB")
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(c["mean"], dtype=torch.float32)[:, None, None]
    std = torch.tensor(c["std"], dtype=torch.float32)[:, None, None]
    return ((x - mean) / std)[None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--mode", choices=("padded", "unpadded"), required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workload")
    ap.add_argument("--image")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    min_time = 0.05 if a.quick else a.min_time
    padded = a.mode == "padded"
    impl = "torch-" + a.mode
    results = {}
    w = {}
    if a.workload and os.path.exists(a.workload):
        with open(a.workload) as f:
            w = json.load(f)
    only = w.get("workloads")  # bench --workloads: time these alone

    def row(key, what, items, fn):
        if only is not None and key not in only:
            return
        r = timeit(fn, 3, min_time, 2.0 if a.quick else 30.0)
        r.update(what=what, items=items)
        results[key] = r
        print("  %-34s %9.2f ms/call (best %8.2f, n=%3d)  %8.2f ms/item  %8.2f items/s" % (
            what, r["median_s"] * 1e3, r["best_s"] * 1e3, r["n"], r["median_s"] * 1e3 / items,
            items / r["median_s"]), flush=True)

    print("%s peer: torch %s, %d threads, %s" % (impl, torch.__version__, torch.get_num_threads(), a.snapshot))
    with torch.no_grad():
        # time to first embedding: process start (imports included) and load alone
        t0 = time.perf_counter()
        model, c = tm.load_model(a.snapshot)
        load_s = time.perf_counter() - t0
        S, ctx_len, E = c["image_size"], c["context_length"], c["embed_dim"]
        px8 = tm.pixels(8, S)
        F.normalize(model.visual(px8[:1]), dim=-1)
        first_s = time.perf_counter() - t0
        results["load"] = {"what": "model load (torch.load + modules)", "items": 1, "median_s": load_s,
                           "best_s": load_s, "n": 1}
        results["first_image"] = {"what": "load -> first image embedding", "items": 1, "median_s": first_s,
                                  "best_s": first_s, "n": 1}
        results["process_first_image"] = {"what": "process start -> first image embedding", "items": 1,
                                          "median_s": time.perf_counter() - T_START,
                                          "best_s": time.perf_counter() - T_START, "n": 1}
        print("  load %.1f ms, first image embedding %.1f ms after load started" % (load_s * 1e3, first_s * 1e3))

        def texts(L, n):
            """ids and mask [n, L or ctx_len]."""
            ids = torch.tensor([tm.text_ids(L, j, c["vocab_rows"]) for j in range(n)], dtype=torch.int64)
            if padded and L < ctx_len:
                ids = torch.cat([ids, torch.zeros(n, ctx_len - L, dtype=torch.int64)], dim=1)
            return ids, (ids != 0).to(torch.int64)

        def enc_text(ids, mask):
            return F.normalize(model.text(ids, mask), dim=-1)

        for b in (1, 8):
            x = px8[:b].contiguous()
            row("image_b%d" % b, "image%s, batch %d" % ("" if b == 1 else "s", b), b,
                lambda x=x: F.normalize(model.visual(x), dim=-1))
            for L in TEXT_LENS:
                Lc = min(L, ctx_len)
                ids, mask = texts(Lc, b)
                row("text%d_b%d" % (L, b), "text%s %d tokens, batch %d" % ("" if b == 1 else "s", Lc, b), b,
                    lambda ids=ids, mask=mask: enc_text(ids, mask))

        # zero-shot: 1 image + 9 prompts
        zs_ids = w.get("zeroshot_ids")
        if not a.image:
            a.image = w.get("zeroshot_image")
        if not zs_ids:
            zs_ids = [tm.text_ids(11, 900 + j, c["vocab_rows"]) for j in range(9)]
        width = ctx_len if padded else max(len(t) for t in zs_ids)
        zids = torch.zeros(len(zs_ids), width, dtype=torch.int64)
        for i, t in enumerate(zs_ids):
            zids[i, :len(t)] = torch.tensor(t)
        zmask = (zids != 0).to(torch.int64)
        scale = model.logit_scale.exp()

        def zero_shot(img):
            i = F.normalize(model.visual(img), dim=-1)
            t = F.normalize(model.text(zids, zmask), dim=-1)
            return (scale * i @ t.T).softmax(dim=-1)

        row("zeroshot9", "zero-shot from pixels + ids", 1, lambda: zero_shot(px8[:1]))
        if a.image and os.path.exists(a.image):
            row("preprocess_file", "decode + resize + normalize (file)", 1, lambda: preprocess(a.image, c))
            row("zeroshot9_file", "zero-shot from file + ids", 1, lambda: zero_shot(preprocess(a.image, c)))

        # the check embeddings: image 0 and the first 24-token text
        check_img = F.normalize(model.visual(px8[:1]), dim=-1)[0].tolist()
        ids, mask = texts(min(24, ctx_len), 1)
        check_txt = enc_text(ids, mask)[0].tolist()

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB -> MB
    print("  peak RSS %.1f MB" % rss_mb)
    out = {"impl": impl, "threads": a.threads, "torch": torch.__version__,
           "machine": {"python": platform.python_version()}, "peak_rss_all_mb": rss_mb,
           "results": results, "check_image": check_img, "check_text24": check_txt}
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(out, f, indent=1)
        print("wrote", a.json_out)


if __name__ == "__main__":
    main()
