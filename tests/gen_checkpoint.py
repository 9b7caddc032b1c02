#!/usr/bin/python3
"""gen_checkpoint.py - deterministic random-weight BiomedCLIP checkpoints in open_clip's layout.

    /usr/bin/python3 tests/gen_checkpoint.py --size tiny|full OUT_DIR [options]

Writes a Hugging Face-like snapshot directory: open_clip_config.json, vocab.txt (a copy of
$SHARED_DATA/biomedbert-vocab.txt) and open_clip_pytorch_model.bin written by the real torch.save
(or open_clip_model.safetensors written by hand with --safetensors). Keys and shapes are those of
open_clip's CustomTextCLIP with a timm ViT and an HF BERT (spec section 5). Weights ~N(0, 0.02),
biases ~N(0, 0.01), LayerNorm weights 1 + N(0, 0.02), logit_scale = ln(100).

Sizes:
  tiny  image 224, patch 16, vision width 64, 2 layers, 4 heads, mlp 128; text width 64, 2 layers,
        4 heads, ffn 128, 30522 vocabulary rows, 512 positions; embed 32, text proj hidden 48.
        Head counts go into the config as vision_cfg.heads / text_cfg.num_attention_heads, the
        optional keys tools/convert.py reads (docs/FORMAT.md).
  full  ViT-B/16 + BERT-base (BiomedCLIP's architecture): 195,902,721 parameters.

Used as a module by tests/py/test_convert.py (make_state_dict, write_snapshot, ...).
"""
import argparse
import collections
import json
import math
import os
import shutil
import struct
import sys
import time

import torch

SIZES = {
    "tiny": dict(image_size=224, patch=16, vw=64, vl=2, vh=4, vm=128, tw=64, tl=2, th=4, tf=128,
                 vocab_rows=30522, max_pos=512, type_vocab=2, embed=32, ctx=256),
    "full": dict(image_size=224, patch=16, vw=768, vl=12, vh=12, vm=3072, tw=768, tl=12, th=12, tf=3072,
                 vocab_rows=30522, max_pos=512, type_vocab=2, embed=512, ctx=256),
}

HERE = os.path.dirname(os.path.abspath(__file__))


def shared_data():
    return os.environ.get("SHARED_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


def shapes(size):
    """[(key, shape, kind)] in open_clip state_dict order; kind: w (weight), b (bias), ln, emb, scale."""
    s = SIZES[size]
    vw, vm, tw, tf, e = s["vw"], s["vm"], s["tw"], s["tf"], s["embed"]
    g = s["image_size"] // s["patch"]
    out = [("logit_scale", (), "scale"),
           ("visual.trunk.cls_token", (1, 1, vw), "w"),
           ("visual.trunk.pos_embed", (1, 1 + g * g, vw), "w"),
           ("visual.trunk.patch_embed.proj.weight", (vw, 3, s["patch"], s["patch"]), "w"),
           ("visual.trunk.patch_embed.proj.bias", (vw,), "b")]
    for i in range(s["vl"]):
        b = "visual.trunk.blocks.%d." % i
        out += [(b + "norm1.weight", (vw,), "ln"), (b + "norm1.bias", (vw,), "b"),
                (b + "attn.qkv.weight", (3 * vw, vw), "w"), (b + "attn.qkv.bias", (3 * vw,), "b"),
                (b + "attn.proj.weight", (vw, vw), "w"), (b + "attn.proj.bias", (vw,), "b"),
                (b + "norm2.weight", (vw,), "ln"), (b + "norm2.bias", (vw,), "b"),
                (b + "mlp.fc1.weight", (vm, vw), "w"), (b + "mlp.fc1.bias", (vm,), "b"),
                (b + "mlp.fc2.weight", (vw, vm), "w"), (b + "mlp.fc2.bias", (vw,), "b")]
    out += [("visual.trunk.norm.weight", (vw,), "ln"), ("visual.trunk.norm.bias", (vw,), "b"),
            ("visual.head.proj.weight", (e, vw), "w")]
    em = "text.transformer.embeddings."
    out += [(em + "word_embeddings.weight", (s["vocab_rows"], tw), "w"),
            (em + "position_embeddings.weight", (s["max_pos"], tw), "w"),
            (em + "token_type_embeddings.weight", (s["type_vocab"], tw), "w"),
            (em + "LayerNorm.weight", (tw,), "ln"), (em + "LayerNorm.bias", (tw,), "b")]
    for i in range(s["tl"]):
        b = "text.transformer.encoder.layer.%d." % i
        for q in ("query", "key", "value"):
            out += [(b + "attention.self.%s.weight" % q, (tw, tw), "w"),
                    (b + "attention.self.%s.bias" % q, (tw,), "b")]
        out += [(b + "attention.output.dense.weight", (tw, tw), "w"), (b + "attention.output.dense.bias", (tw,), "b"),
                (b + "attention.output.LayerNorm.weight", (tw,), "ln"),
                (b + "attention.output.LayerNorm.bias", (tw,), "b"),
                (b + "intermediate.dense.weight", (tf, tw), "w"), (b + "intermediate.dense.bias", (tf,), "b"),
                (b + "output.dense.weight", (tw, tf), "w"), (b + "output.dense.bias", (tw,), "b"),
                (b + "output.LayerNorm.weight", (tw,), "ln"), (b + "output.LayerNorm.bias", (tw,), "b")]
    h = (tw + e) // 2
    out += [("text.proj.0.weight", (h, tw), "w"), ("text.proj.2.weight", (e, h), "w")]
    return out


def make_state_dict(size, seed=0, position_ids=True, pooler=False):
    """A float32 state_dict with open_clip's keys; deterministic for (size, seed)."""
    torch.manual_seed(seed)
    sd = collections.OrderedDict()
    for key, shape, kind in shapes(size):
        if kind == "scale":
            t = torch.tensor(math.log(100.0), dtype=torch.float32)
        elif kind == "w":
            t = torch.randn(shape) * 0.02
        elif kind == "b":
            t = torch.randn(shape) * 0.01
        else:  # LayerNorm weight
            t = 1.0 + torch.randn(shape) * 0.02
        sd[key] = t
        if key == "text.transformer.embeddings.LayerNorm.bias" and position_ids:
            # the real file carries this int64 buffer (spec section 5)
            sd["text.transformer.embeddings.position_ids"] = torch.arange(SIZES[size]["max_pos"]).unsqueeze(0)
    if pooler:
        tw = SIZES[size]["tw"]
        sd["text.transformer.pooler.dense.weight"] = torch.randn(tw, tw) * 0.02
        sd["text.transformer.pooler.dense.bias"] = torch.randn(tw) * 0.01
    return sd


def config(size, variant="current"):
    s = SIZES[size]
    name = "microsoft/BiomedNLP-%s-base-uncased-abstract" % ("BiomedBERT" if variant == "current" else "PubMedBERT")
    vision = {"timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": False, "timm_pool": "",
              "timm_proj": "linear", "image_size": s["image_size"]}
    text = {"hf_model_name": name, "hf_tokenizer_name": name}
    if variant == "current":
        text.update({"hf_proj_type": "mlp", "hf_pooler_type": "cls_last_hidden_state_pooler"})
    else:
        text.update({"proj": "mlp", "pooler_type": "cls_last_hidden_state_pooler"})
    text["context_length"] = s["ctx"]
    if size != "full":
        # not ViT-B/BERT-base: name the head counts (the optional keys convert.py reads)
        vision["timm_model_name"] = "vit_tiny_test_patch16_224"
        vision["heads"] = s["vh"]
        text["num_attention_heads"] = s["th"]
    return {"model_cfg": {"embed_dim": s["embed"], "vision_cfg": vision, "text_cfg": text},
            "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                               "std": [0.26862954, 0.26130258, 0.27577711]}}


def write_safetensors(path, sd, dtype=None):
    """safetensors by hand: u64 LE header length, JSON header (space-padded to 8), raw data."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
             torch.float64: "F64"}
    header, blobs, pos = {"__metadata__": {"format": "pt"}}, [], 0
    for k, t in sd.items():
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [pos, pos + len(data)]}
        blobs.append(data)
        pos += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_snapshot(out_dir, size, sd, variant="current", safetensors=False, st_dtype=None,
                   wrap=False, module_prefix=False, tokenizer_json=False, cfg=None):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "open_clip_config.json"), "w") as f:
        json.dump(cfg if cfg is not None else config(size, variant), f, indent=2)
    if tokenizer_json:
        shutil.copyfile(os.path.join(shared_data(), "biomedclip-tokenizer.json"), os.path.join(out_dir, "tokenizer.json"))
    else:
        shutil.copyfile(os.path.join(shared_data(), "biomedbert-vocab.txt"), os.path.join(out_dir, "vocab.txt"))
    if module_prefix:
        sd = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    if safetensors:
        write_safetensors(os.path.join(out_dir, "open_clip_model.safetensors"), sd, st_dtype)
    else:
        obj = {"state_dict": sd, "epoch": 1} if wrap else sd
        torch.save(obj, os.path.join(out_dir, "open_clip_pytorch_model.bin"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", choices=("current", "legacy"), default="current",
                    help="open_clip_config.json keys: hf_proj_type/hf_pooler_type or 2023 proj/pooler_type")
    ap.add_argument("--safetensors", action="store_true", help="write open_clip_model.safetensors instead of .bin")
    ap.add_argument("--fp16", action="store_true", help="safetensors in float16")
    ap.add_argument("--bf16", action="store_true", help="safetensors in bfloat16")
    ap.add_argument("--no-position-ids", action="store_true", help="omit text.transformer.embeddings.position_ids")
    ap.add_argument("--pooler", action="store_true", help="add text.transformer.pooler.dense.* weights")
    ap.add_argument("--wrap", action="store_true", help="save {'state_dict': sd, 'epoch': 1}")
    ap.add_argument("--module-prefix", action="store_true", help="prefix every key with 'module.'")
    ap.add_argument("--tokenizer-json", action="store_true", help="tokenizer.json instead of vocab.txt")
    a = ap.parse_args()
    t0 = time.time()
    sd = make_state_dict(a.size, a.seed, position_ids=not a.no_position_ids, pooler=a.pooler)
    t1 = time.time()
    dtype = torch.float16 if a.fp16 else torch.bfloat16 if a.bf16 else None
    write_snapshot(a.out_dir, a.size, sd, a.variant, a.safetensors, dtype, a.wrap, a.module_prefix,
                   a.tokenizer_json)
    n = sum(t.numel() for k, t in sd.items() if t.is_floating_point() and not k.startswith("text.transformer.pooler"))
    print("gen_checkpoint: %s (%s, seed %d): %d float parameters; generate %.1fs, save %.1fs"
          % (a.out_dir, a.size, a.seed, n, t1 - t0, time.time() - t1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
