#!/usr/bin/python3
"""PyTorch reference for the BiomedCLIP image tower (spec section 2), written from the spec
(it does not import timm or open_clip): conv patch embedding (+bias), cls + pos_embed, pre-norm
blocks (LayerNorm eps from the config, fused qkv, softmax(q k^T / sqrt(head_dim)) v, exact-erf
GELU MLP), final LayerNorm, cls token, Linear W -> E without bias, F.normalize. fp32 on CPU, no
grad, 2 threads.

Inputs (a batch of 3): the shared PIL crops chest_X-ray and H_and_E_histopathology
(shared/data/images/preprocessed_224/*.ppm) as ToTensor + Normalize would make them
((x / 255 - mean) / std in float32), and a seeded standard-normal tensor. A model with another
image size gets the centre crop of those images at its size.

Golden output (python3 tests/reference/vision.py --snapshot DIR --out OUT [--shared DIR]):
  OUT/names.txt          the inputs' names, one per line, in batch order
  OUT/pixels.f32         [N, 3, S, S] the model inputs
  OUT/embed.f32          [N, T, W] tokens after patch embedding, cls and pos_embed
  OUT/block<l>.f32       [N, T, W] output of block l (0-based)
  OUT/final_norm.f32     [N, T, W] final LayerNorm of every token
  OUT/pooled.f32         [N, W]    the cls row of that
  OUT/proj.f32           [N, E]    image features (unnormalised)
  OUT/norm.f32           [N, E]    F.normalize(image features)
  OUT/config.txt         "key value" lines: n image_size patch_size width layers heads mlp embed eps
  OUT/DONE               written last
All files are raw little-endian float32.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import load_checkpoint, write_f32  # noqa: E402

V = "visual.trunk."
IMAGES = ("chest_X-ray", "H_and_E_histopathology")


def make_pixels(cfg, shared):
    """[N, 3, S, S] float32 model inputs and their names."""
    S = cfg["image_size"]
    mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32).view(3, 1, 1)
    xs, names = [], []
    for name in IMAGES:
        img = Image.open(os.path.join(shared, "images", "preprocessed_224", name + ".ppm"))
        img = img.convert("RGB")
        if img.size != (S, S):
            left, top = (img.size[0] - S) // 2, (img.size[1] - S) // 2
            img = img.crop((left, top, left + S, top + S))
        t = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        t = t.to(torch.float32) / 255.0   # to_tensor: float32 division
        t = (t - mean) / std             # Normalize: sub_ then div_, float32
        xs.append(t)
        names.append(name)
    g = torch.Generator().manual_seed(20240601)
    xs.append(torch.randn(3, S, S, generator=g, dtype=torch.float32))
    names.append("random_normal")
    return torch.stack(xs).contiguous(), names


def vit_forward(sd, cfg, x):
    """x [N, 3, S, S]. Returns a dict of the stages (see the module docstring)."""
    g = lambda k: sd[V + k]  # noqa: E731
    W, H, eps = cfg["vision_width"], cfg["vision_heads"], cfg["vision_ln_eps"]
    hd = W // H
    N = x.shape[0]
    out = {}
    # 1. patch embedding: Conv2d(3, W, P, stride P, bias) -> [N, W, G, G] -> [N, G*G, W]
    t = F.conv2d(x, g("patch_embed.proj.weight"), g("patch_embed.proj.bias"), stride=cfg["patch_size"])
    t = t.flatten(2).transpose(1, 2)
    # 2. cls in front, + pos_embed (row 0 = cls)
    t = torch.cat([g("cls_token").expand(N, -1, -1), t], dim=1) + g("pos_embed")
    out["embed"] = t
    T = t.shape[1]
    # 3. pre-norm blocks
    for l in range(cfg["vision_layers"]):
        b = lambda k: g("blocks.%d.%s" % (l, k))  # noqa: E731
        h = F.layer_norm(t, (W,), b("norm1.weight"), b("norm1.bias"), eps)
        qkv = F.linear(h, b("attn.qkv.weight"), b("attn.qkv.bias"))        # [N, T, 3W]
        qkv = qkv.reshape(N, T, 3, H, hd).permute(2, 0, 3, 1, 4)            # [3, N, H, T, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1)  # timm's manual path
        o = (a @ v).transpose(1, 2).reshape(N, T, W)
        t = t + F.linear(o, b("attn.proj.weight"), b("attn.proj.bias"))
        h = F.layer_norm(t, (W,), b("norm2.weight"), b("norm2.bias"), eps)
        h = F.gelu(F.linear(h, b("mlp.fc1.weight"), b("mlp.fc1.bias")))    # exact erf
        t = t + F.linear(h, b("mlp.fc2.weight"), b("mlp.fc2.bias"))
        out["block%d" % l] = t
    # 4.-6. final norm on all tokens, cls token, open_clip head (no bias)
    t = F.layer_norm(t, (W,), g("norm.weight"), g("norm.bias"), eps)
    out["final_norm"] = t
    out["pooled"] = t[:, 0]
    out["proj"] = F.linear(t[:, 0], sd["visual.head.proj.weight"])
    out["norm"] = F.normalize(out["proj"], dim=-1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snapshot", required=True, help="dir with open_clip_config.json + open_clip_pytorch_model.bin")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared", default=os.environ.get("SHARED_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data")))
    a = ap.parse_args()
    torch.set_num_threads(2)
    sd, cfg = load_checkpoint(a.snapshot)
    x, names = make_pixels(cfg, a.shared)
    with torch.no_grad():
        out = vit_forward(sd, cfg, x)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "names.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    write_f32(os.path.join(a.out, "pixels.f32"), x)
    for k, v in out.items():
        write_f32(os.path.join(a.out, k + ".f32"), v)
    with open(os.path.join(a.out, "config.txt"), "w") as f:
        for k in ("image_size", "patch_size", "vision_width", "vision_layers", "vision_heads",
                  "vision_mlp", "embed_dim"):
            f.write("%s %d\n" % (k, cfg[k]))
        f.write("vision_ln_eps %.17g\n" % cfg["vision_ln_eps"])
        f.write("n %d\n" % x.shape[0])
        f.write("tokens %d\n" % out["embed"].shape[1])
    open(os.path.join(a.out, "DONE"), "w").close()
    print("vision golden: %s (%d images, %d blocks) from %s" % (a.out, x.shape[0], cfg["vision_layers"], a.snapshot))


if __name__ == "__main__":
    main()
