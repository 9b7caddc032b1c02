"""Shared helpers of the PyTorch references (tests/reference/*.py): load an open_clip snapshot.

load_checkpoint(snapshot_dir) -> (state_dict, cfg)
  state_dict  the checkpoint's tensors as float32 CPU torch tensors (int buffers kept as they are),
              keys as open_clip names them, a leading 'module.' and a {'state_dict': ...} wrapper
              removed (open_clip factory.py load_state_dict does the same).
  cfg         a flat dict of the effective hyper-parameters, written from the spec (sections 1c,
              2, 3) independently of tools/convert.py: sizes come from the tensor shapes, the rest
              from open_clip_config.json with open_clip/timm/HF defaults:
                image_size patch_size vision_width vision_layers vision_heads vision_mlp
                vision_ln_eps  text_width text_layers text_heads text_ffn text_ln_eps
                context_length embed_dim pad_id mean std logit_scale (exp of the stored value)
                json (the parsed open_clip_config.json)
"""
import json
import math
import os

import torch

# timm ViT names -> (width, heads) for configs that do not say the head count
TIMM_VIT = {
    "vit_base_patch16_224": (768, 12),
    "vit_base_patch32_224": (768, 12),
    "vit_small_patch16_224": (384, 6),
    "vit_tiny_patch16_224": (192, 3),
    "vit_large_patch16_224": (1024, 16),
}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _count(sd, prefix):
    n = 0
    while any(k.startswith("%s%d." % (prefix, n)) for k in sd):
        n += 1
    return n


def load_state_dict(path):
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):
            k = k[len("module."):]
        if torch.is_tensor(v) and v.is_floating_point():
            v = v.detach().to(torch.float32).contiguous()
        out[k] = v
    return out


def load_checkpoint(snapshot_dir):
    with open(os.path.join(snapshot_dir, "open_clip_config.json"), encoding="utf-8") as f:
        js = json.load(f)
    mc = js.get("model_cfg", js)
    vc, tc = mc["vision_cfg"], mc["text_cfg"]
    pre = js.get("preprocess_cfg", {})
    sd = load_state_dict(os.path.join(snapshot_dir, "open_clip_pytorch_model.bin"))

    pe = sd["visual.trunk.patch_embed.proj.weight"]  # [W, 3, P, P]
    vw = pe.shape[0]
    if vc.get("heads") is not None:
        vh = int(vc["heads"])
    elif TIMM_VIT.get(vc.get("timm_model_name"), (None,))[0] == vw:
        vh = TIMM_VIT[vc["timm_model_name"]][1]
    else:
        raise ValueError("%s: cannot tell the vision head count" % snapshot_dir)
    cfg = {
        "image_size": int(vc.get("image_size", 224)),
        "patch_size": pe.shape[2],
        "vision_width": vw,
        "vision_layers": _count(sd, "visual.trunk.blocks."),
        "vision_heads": vh,
        "vision_mlp": sd["visual.trunk.blocks.0.mlp.fc1.weight"].shape[0],
        "vision_ln_eps": float(vc.get("layer_norm_eps", 1e-6)),  # timm ViT LayerNorm eps
        "embed_dim": int(mc["embed_dim"]),
        "mean": [float(x) for x in pre.get("mean", OPENAI_MEAN)],
        "std": [float(x) for x in pre.get("std", OPENAI_STD)],
        "pad_id": 0,
        "context_length": int(tc.get("context_length", 77)),  # open_clip CLIPTextCfg default
        "json": js,
    }
    wk = "text.transformer.embeddings.word_embeddings.weight"
    if wk in sd:
        tw = sd[wk].shape[1]
        if tc.get("num_attention_heads") is not None:
            th = int(tc["num_attention_heads"])
        elif tw == 768:
            th = 12  # BERT-base
        else:
            raise ValueError("%s: cannot tell the text head count" % snapshot_dir)
        cfg.update({
            "text_width": tw,
            "text_layers": _count(sd, "text.transformer.encoder.layer."),
            "text_heads": th,
            "text_ffn": sd["text.transformer.encoder.layer.0.intermediate.dense.weight"].shape[0],
            "text_ln_eps": float(tc.get("layer_norm_eps", 1e-12)),  # HF BertConfig default
        })
    if "logit_scale" in sd:
        cfg["logit_scale"] = math.exp(float(sd["logit_scale"]))
    return sd, cfg


def write_f32(path, t):
    """Write a tensor as raw little-endian float32 (C order)."""
    t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tofile(path)
