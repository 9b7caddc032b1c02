#!/usr/bin/python3
"""PyTorch reference for the BiomedCLIP text tower (spec section 3), written from the spec.

It runs the open_clip way: ids padded with 0 to the context length (256), attention mask
ids != pad, additive mask torch.finfo(float32).min on the masked keys (modern transformers),
the full padded sequence through every layer, [CLS] of the last hidden state, MLP projection
768 -> 640 -> GELU -> 512 (no biases), F.normalize. fp32 on CPU, no dropout (eval).

Golden output (python3 tests/reference/text.py --snapshot DIR --out OUT):
  OUT/cases.txt        one line per case: "name n id_0 ... id_{n-1}" (n = real ids)
  OUT/cases.json       the same with the source text of prompt cases
  OUT/<name>.txt       the source text of a prompt case (raw UTF-8)
  OUT/<name>.hidden.f32  [(layers + 1), n, W] float32: the embedding LayerNorm output, then every
                       layer's output, at the n real positions only
  OUT/<name>.cls.f32   [W]   last hidden state at position 0
  OUT/<name>.proj.f32  [E]   text features (unnormalised)
  OUT/<name>.norm.f32  [E]   F.normalize(text features)
  OUT/config.txt       "key value" lines: width layers heads ffn embed proj_hidden eps context_length
  OUT/DONE             written last
"""
import argparse
import json
import math
import os
import random
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

P = "text.transformer."
RANDOM_LENGTHS = (2, 3, 8, 24, 77, 255, 256)


def load(snapshot):
    """(state_dict, cfg): tests/reference/common.py's shared loader when present, else torch.load
    of open_clip_pytorch_model.bin plus open_clip_config.json."""
    try:
        from common import load_checkpoint  # tests/reference/common.py
    except ImportError:
        load_checkpoint = None
    if load_checkpoint is not None:
        return load_checkpoint(snapshot)
    sd = torch.load(os.path.join(snapshot, "open_clip_pytorch_model.bin"), map_location="cpu")
    if "state_dict" in sd:
        sd = sd["state_dict"]
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    with open(os.path.join(snapshot, "open_clip_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    return sd, cfg


def _text_cfg(cfg):
    """The open_clip text_cfg inside cfg (a whole open_clip_config.json, its model_cfg, or a
    flat dict)."""
    cfg = cfg.get("json", cfg)  # common.py keeps the parsed open_clip_config.json there
    mc = cfg.get("model_cfg", cfg)
    return mc.get("text_cfg", mc)


def text_config(sd, cfg):
    """Text-tower hyper-parameters: sizes from the tensor shapes, the rest from cfg."""
    tc = _text_cfg(cfg)
    word = sd[P + "embeddings.word_embeddings.weight"]
    layers = 0
    while (P + "encoder.layer.%d.attention.self.query.weight" % layers) in sd:
        layers += 1
    t = {
        "vocab_rows": word.shape[0],
        "width": word.shape[1],
        "layers": layers,
        "ffn": sd[P + "encoder.layer.0.intermediate.dense.weight"].shape[0] if layers else 0,
        "max_positions": sd[P + "embeddings.position_embeddings.weight"].shape[0],
        "heads": None,
        # common.py's flat keys first, else open_clip_config.json's text_cfg with the defaults
        "eps": float(cfg.get("text_ln_eps", tc.get("layer_norm_eps", 1e-12))),  # BertConfig
        "context_length": int(cfg.get("context_length", tc.get("context_length", 77))),  # open_clip
        "pad_id": int(cfg.get("pad_id", tc.get("pad_token_id", 0))),  # BertConfig
    }
    # heads cannot be read off the shapes: the config names them, else BERT-base's 12 of 64
    heads = cfg.get("text_heads", tc.get("num_attention_heads"))
    if heads is None and t["width"] == 768:
        heads = 12
    if heads is None:
        raise SystemExit("text.py: the config does not give text_cfg.num_attention_heads")
    t["heads"] = int(heads)
    if "text.proj.2.weight" in sd:
        t["proj"] = "mlp"
        t["proj_hidden"] = sd["text.proj.0.weight"].shape[0]
        t["embed"] = sd["text.proj.2.weight"].shape[0]
    else:
        t["proj"] = "linear"
        t["proj_hidden"] = 0
        key = "text.proj.weight" if "text.proj.weight" in sd else "text.proj.0.weight"
        t["proj_key"] = key
        t["embed"] = sd[key].shape[0]
    return t


def bert_forward(sd, t, ids):
    """ids [B, L] int64 (padded). Returns (hidden list of [B, L, W] per stage, cls, proj, norm)."""
    B, L = ids.shape
    W, nh, eps = t["width"], t["heads"], t["eps"]
    hd = W // nh
    g = lambda k: sd[P + k]  # noqa: E731
    mask = (ids != t["pad_id"]).to(torch.float32)                # [B, L]
    ext = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min

    # BertEmbeddings: (word + token_type[0]) + position[0..L-1], LayerNorm
    e = g("embeddings.word_embeddings.weight")[ids]
    e = e + g("embeddings.token_type_embeddings.weight")[0]
    e = e + g("embeddings.position_embeddings.weight")[torch.arange(L)][None]
    h = F.layer_norm(e, (W,), g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    hidden = [h]
    for i in range(t["layers"]):
        pre = "encoder.layer.%d." % i

        def lin(x, name):
            return F.linear(x, g(pre + name + ".weight"), g(pre + name + ".bias"))

        def heads(x):
            return x.view(B, L, nh, hd).permute(0, 2, 1, 3)      # [B, nh, L, hd]

        q = heads(lin(h, "attention.self.query"))
        k = heads(lin(h, "attention.self.key"))
        v = heads(lin(h, "attention.self.value"))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        scores = scores + ext
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, L, W)
        a = F.layer_norm(lin(ctx, "attention.output.dense") + h, (W,),
                         g(pre + "attention.output.LayerNorm.weight"),
                         g(pre + "attention.output.LayerNorm.bias"), eps)
        inter = F.gelu(lin(a, "intermediate.dense"))              # exact erf GELU
        h = F.layer_norm(lin(inter, "output.dense") + a, (W,), g(pre + "output.LayerNorm.weight"),
                         g(pre + "output.LayerNorm.bias"), eps)
        hidden.append(h)
    cls = h[:, 0, :]                                              # cls_last_hidden_state pooler
    if t["proj"] == "mlp":
        x = F.linear(cls, sd["text.proj.0.weight"])
        x = F.gelu(x)
        proj = F.linear(x, sd["text.proj.2.weight"])
    else:
        proj = F.linear(cls, sd[t["proj_key"]])
    norm = F.normalize(proj, dim=-1)
    return hidden, cls, proj, norm


def make_cases(t, vectors_path):
    """Deterministic random ids of the RANDOM_LENGTHS, then the test-vector prompts."""
    rng = random.Random(20240601)
    hi = min(28895, t["vocab_rows"])
    cases = []
    for n in RANDOM_LENGTHS:
        if n > t["context_length"]:
            continue
        mid = [rng.randrange(5, hi) for _ in range(n - 2)]
        cases.append({"name": "rand%03d" % n, "ids": [2] + mid + [3], "text": None})
    if vectors_path:
        with open(vectors_path, encoding="utf-8") as f:
            vec = json.load(f)["vectors"]
        for i, v in enumerate(vec):
            if any(x >= t["vocab_rows"] for x in v["ids"]):
                continue
            cases.append({"name": "prompt%02d" % i, "ids": list(v["ids"]), "text": v["text"]})
    return cases


def run_cases(sd, t, cases, out_dir, batch=8):
    W, ctxlen = t["width"], t["context_length"]
    os.makedirs(out_dir, exist_ok=True)
    for b0 in range(0, len(cases), batch):
        chunk = cases[b0:b0 + batch]
        ids = torch.zeros(len(chunk), ctxlen, dtype=torch.int64)   # pad with 0 (open_clip)
        for r, c in enumerate(chunk):
            ids[r, :len(c["ids"])] = torch.tensor(c["ids"], dtype=torch.int64)
        with torch.no_grad():
            hidden, cls, proj, norm = bert_forward(sd, t, ids)
        for r, c in enumerate(chunk):
            n = len(c["ids"])
            stack = torch.stack([hs[r, :n, :] for hs in hidden]).contiguous()
            base = os.path.join(out_dir, c["name"])
            stack.numpy().astype("<f4").tofile(base + ".hidden.f32")
            cls[r].contiguous().numpy().astype("<f4").tofile(base + ".cls.f32")
            proj[r].contiguous().numpy().astype("<f4").tofile(base + ".proj.f32")
            norm[r].contiguous().numpy().astype("<f4").tofile(base + ".norm.f32")
        print("text.py: %d/%d cases" % (min(b0 + batch, len(cases)), len(cases)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--snapshot", required=True, help="dir with open_clip_pytorch_model.bin")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vectors", help="tokenizer_test_vectors.json (prompt cases)")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    sd, cfg = load(a.snapshot)
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    t = text_config(sd, cfg)
    cases = make_cases(t, a.vectors)
    run_cases(sd, t, cases, a.out)
    with open(os.path.join(a.out, "cases.txt"), "w") as f:
        for c in cases:
            f.write("%s %d %s\n" % (c["name"], len(c["ids"]), " ".join(map(str, c["ids"]))))
    for c in cases:
        if c["text"] is not None:  # the prompt itself, raw UTF-8, for encode_text tests
            with open(os.path.join(a.out, c["name"] + ".txt"), "wb") as f:
                f.write(c["text"].encode("utf-8"))
    with open(os.path.join(a.out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
    with open(os.path.join(a.out, "config.txt"), "w") as f:
        for k in ("width", "layers", "heads", "ffn", "embed", "proj_hidden", "eps", "context_length"):
            f.write("%s %s\n" % (k, t[k]))
    with open(os.path.join(a.out, "DONE"), "w") as f:
        f.write("ok\n")
    print("text.py: wrote %d cases to %s (W=%d layers=%d heads=%d)" %
          (len(cases), a.out, t["width"], t["layers"], t["heads"]))


if __name__ == "__main__":
    main()
