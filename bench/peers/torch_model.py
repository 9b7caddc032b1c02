"""BiomedCLIP as PyTorch modules for the benchmark peers (torch_peer.py, export_onnx.py).

Written from /work/shared/docs/biomedclip-spec.md sections 2-4 (no timm, open_clip or transformers
here), with the module tree named like open_clip's CustomTextCLIP so that the checkpoint's
state_dict loads by name with strict checking:
  visual.trunk.*  timm VisionTransformer (pre-LN, eps 1e-6, fused qkv, exact GELU, final norm,
                  token pooling), visual.head.proj  Linear(W -> E, no bias)
  text.transformer.*  HF BertModel without pooler (post-LN, eps 1e-12, additive key mask of
                  finfo.min), text.proj  Linear -> GELU -> Linear (no biases)
Attention is written out as timm and transformers do on torch 1.13 (which has no fused
scaled_dot_product_attention): softmax(q k^T * scale (+ mask)) v.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

TIMM_HEADS = {"vit_base_patch16_224": 12, "vit_base_patch32_224": 12, "vit_small_patch16_224": 6,
              "vit_tiny_patch16_224": 3, "vit_large_patch16_224": 16}


# ---- vision (timm vit_base_patch16_224) ----------------------------------------------------
class PatchEmbed(nn.Module):
    def __init__(self, patch, width):
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, grid*grid, W]


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width, heads, mlp, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, mlp)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Trunk(nn.Module):
    def __init__(self, c):
        super().__init__()
        grid = c["image_size"] // c["patch_size"]
        self.patch_embed = PatchEmbed(c["patch_size"], c["vision_width"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c["vision_width"]))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, c["vision_width"]))
        self.blocks = nn.ModuleList([Block(c["vision_width"], c["vision_heads"], c["vision_mlp"], 1e-6)
                                     for _ in range(c["vision_layers"])])
        self.norm = nn.LayerNorm(c["vision_width"], eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


class Head(nn.Module):
    def __init__(self, width, embed):
        super().__init__()
        self.proj = nn.Linear(width, embed, bias=False)

    def forward(self, x):
        return self.proj(x)


class Visual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.trunk = Trunk(c)
        self.head = Head(c["vision_width"], c["embed_dim"])

    def forward(self, pixels):
        return self.head(self.trunk(pixels))


# ---- text (HF BertModel, add_pooling_layer=False, + open_clip MLP projection) -----------------
class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        W = c["text_width"]
        self.word_embeddings = nn.Embedding(c["vocab_rows"], W)
        self.position_embeddings = nn.Embedding(c["max_positions"], W)
        self.token_type_embeddings = nn.Embedding(c["type_vocab"], W)
        self.LayerNorm = nn.LayerNorm(W, eps=1e-12)

    def forward(self, ids):
        L = ids.shape[1]
        e = self.word_embeddings(ids) + self.token_type_embeddings.weight[0]
        e = e + self.position_embeddings.weight[:L]
        return self.LayerNorm(e)


class SelfAttention(nn.Module):
    def __init__(self, W, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(W, W)
        self.key = nn.Linear(W, W)
        self.value = nn.Linear(W, W)

    def forward(self, h, ext_mask):
        B, L, W = h.shape
        d = W // self.heads

        def split(t):
            return t.view(B, L, self.heads, d).permute(0, 2, 1, 3)

        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + ext_mask
        ctx = scores.softmax(dim=-1) @ v
        return ctx.permute(0, 2, 1, 3).reshape(B, L, W)


class DenseLN(nn.Module):
    def __init__(self, n_in, W):
        super().__init__()
        self.dense = nn.Linear(n_in, W)
        self.LayerNorm = nn.LayerNorm(W, eps=1e-12)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class AttentionBlock(nn.Module):
    def __init__(self, W, heads):
        super().__init__()
        setattr(self, "self", SelfAttention(W, heads))  # HF's name: attention.self.query ...
        self.output = DenseLN(W, W)

    def forward(self, h, ext_mask):
        return self.output(getattr(self, "self")(h, ext_mask), h)


class Intermediate(nn.Module):
    def __init__(self, W, F_):
        super().__init__()
        self.dense = nn.Linear(W, F_)

    def forward(self, x):
        return F.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, W, heads, F_):
        super().__init__()
        self.attention = AttentionBlock(W, heads)
        self.intermediate = Intermediate(W, F_)
        self.output = DenseLN(F_, W)

    def forward(self, h, ext_mask):
        a = self.attention(h, ext_mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c["text_width"], c["text_heads"], c["text_ffn"])
                                    for _ in range(c["text_layers"])])


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)


class Text(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = Bert(c)
        H = c["text_proj_hidden"]
        self.proj = nn.Sequential(nn.Linear(c["text_width"], H, bias=False), nn.GELU(),
                                  nn.Linear(H, c["embed_dim"], bias=False))

    def forward(self, ids, mask):
        """ids, mask: [B, L] int64; mask 1 for real tokens (open_clip: ids != pad)."""
        ext = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        h = self.transformer.embeddings(ids)
        for layer in self.transformer.encoder.layer:
            h = layer(h, ext)
        return self.proj(h[:, 0])


class CLIP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.visual = Visual(c)
        self.text = Text(c)
        self.logit_scale = nn.Parameter(torch.zeros(()))


# ---- loading ---------------------------------------------------------------------------------
def load_state_dict(path):
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


def config_from(sd, cfg_json):
    """Hyper-parameters from the tensor shapes, head counts from open_clip_config.json."""
    mc = cfg_json.get("model_cfg", cfg_json)
    vc, tc = mc.get("vision_cfg", {}), mc.get("text_cfg", {})
    V, T = "visual.trunk.", "text.transformer."
    pw = sd[V + "patch_embed.proj.weight"]
    c = {
        "vision_width": pw.shape[0], "patch_size": pw.shape[2],
        "image_size": int(vc.get("image_size", 224)),
        "vision_mlp": sd[V + "blocks.0.mlp.fc1.weight"].shape[0],
        "vision_layers": sum(1 for k in sd if k.startswith(V + "blocks.") and k.endswith(".norm1.weight")),
        "embed_dim": sd["visual.head.proj.weight"].shape[0],
        "vocab_rows": sd[T + "embeddings.word_embeddings.weight"].shape[0],
        "max_positions": sd[T + "embeddings.position_embeddings.weight"].shape[0],
        "type_vocab": sd[T + "embeddings.token_type_embeddings.weight"].shape[0],
        "text_width": sd[T + "embeddings.word_embeddings.weight"].shape[1],
        "text_ffn": sd[T + "encoder.layer.0.intermediate.dense.weight"].shape[0],
        "text_layers": sum(1 for k in sd if k.startswith(T + "encoder.layer.") and k.endswith(".output.dense.bias")
                           and ".attention." not in k),
        "text_proj_hidden": sd["text.proj.0.weight"].shape[0],
        "context_length": int(tc.get("context_length", 77)),
    }
    c["vision_heads"] = int(vc.get("heads", TIMM_HEADS.get(vc.get("timm_model_name"), c["vision_width"] // 64)))
    c["text_heads"] = int(tc.get("num_attention_heads", c["text_width"] // 64))
    pp = cfg_json.get("preprocess_cfg", {})
    c["mean"] = pp.get("mean", [0.48145466, 0.4578275, 0.40821073])
    c["std"] = pp.get("std", [0.26862954, 0.26130258, 0.27577711])
    return c


def load_model(snapshot):
    """(model in eval mode, config) from an open_clip snapshot directory."""
    sd = load_state_dict(os.path.join(snapshot, "open_clip_pytorch_model.bin"))
    with open(os.path.join(snapshot, "open_clip_config.json")) as f:
        cfg_json = json.load(f)
    c = config_from(sd, cfg_json)
    model = CLIP(c)
    sd = {k: v for k, v in sd.items() if not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise RuntimeError("checkpoint does not match the model: missing %s, unexpected %s" % (missing, unexpected))
    model.eval()
    return model, c


# ---- deterministic inputs (same formulas as bench/bench_util.h and ort_peer.js) ----------------
def u32(i):
    return (i * 2654435761) & 0xFFFFFFFF


def pixels(n, size):
    """[n, 3, size, size] float32 from the shared formula."""
    count = n * 3 * size * size
    idx = torch.arange(count, dtype=torch.int64)
    u = (idx * 2654435761) & 0xFFFFFFFF
    v = (u >> 8).to(torch.float64) / 16777216.0 * 4.0 - 2.0
    return v.to(torch.float32).reshape(n, 3, size, size)


def text_ids(L, j, vocab_rows, cls_id=2, sep_id=3):
    mod = min(28000, vocab_rows - 5)
    return [cls_id] + [5 + (u32(i + 7919 * (L * 100 + j)) >> 8) % mod for i in range(1, L - 1)] + [sep_id]
