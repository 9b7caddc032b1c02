#!/usr/bin/env python3
"""convert.py - turn BiomedCLIP weights into one .bmc model file: a Hugging Face snapshot, or a
checkpoint file (a fine-tune) with the configuration and vocabulary of the model it started from.

    python3 tools/convert.py SNAPSHOT_DIR -o biomedclip.bmc [--dtype f32|f16|bf16]
                             [--vision-heads N] [--text-heads N]
    python3 tools/convert.py CHECKPOINT -o finetuned.bmc (--base SNAPSHOT_DIR | --config F --vocab F)

SNAPSHOT_DIR holds open_clip_config.json, the weights (open_clip_model.safetensors, else
open_clip_pytorch_model.bin in torch.save's zip format) and the tokenizer vocabulary (vocab.txt,
else tokenizer.json). CHECKPOINT is a torch.save zip (.pt/.pth/.bin/.ckpt: a state_dict, or a
training checkpoint dict holding one, as open_clip's {"epoch", "name", "state_dict",
"optimizer"}) or a safetensors file, told apart by their first bytes. 'module.' (DDP) and
'_orig_mod.' (torch.compile) prefixes are removed; storages the state_dict does not reference
(optimizer moments) are never read. The output layout is docs/FORMAT.md (= lib/format.h).

Python 3.8+ standard library only: no torch, no numpy. The pickle inside the .bin is read with a
restricted unpickler that admits only the handful of globals a state_dict needs, so a hostile
checkpoint cannot run code. Storages are streamed one at a time; float32 bytes are copied as they
are, float16/bfloat16 are widened to float32 with whole-buffer operations (no per-float loop in
Python for bf16/f32; struct's 'e' format in chunks for f16). The Linear weights are then laid out
as 64-output panels (docs/FORMAT.md, layout panel64), a strided copy per row.

--dtype f16 or bf16 stores those Linear weights in 16 bits (everything else stays float32):
f16 through struct's 'e' (round to nearest even; a value beyond float16's range is an error that
names the tensor), bf16 by rounding to nearest even with big-integer arithmetic over the whole
tensor, in bf16's pair layout (panel64x2). The library widens them, or runs bfloat16 products.
"""
import argparse
import collections
import json
import os
import re
import struct
import sys
import tempfile
import zlib
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_readers import (DTYPE_NAMES, ConvertError, TensorRef, is_int, read_safetensors,  # noqa: E402
                             read_torch_zip, shape_str, to_f32_bytes)

# ---- the .bmc format (must match lib/format.h) ---------------------------------------------
MAGIC = b"BMCLIP\x00\x01"
FORMAT_VERSION = 2
HEADER_SIZE = 512
DIR_ENTRY_SIZE = 160
ENDIAN_TAG = 0x01020304
TENSOR_ALIGN = 64
DATA_ALIGN = 4096
NAME_MAX = 96
MAX_DIMS = 4
CONFIG_OFFSET = 72
CONFIG_SIZE = 256

DT_F32, DT_F16, DT_I32, DT_BF16, DT_U8, DT_U32 = 0, 1, 26, 30, 64, 65
LAYOUT_ROWS, LAYOUT_PANEL64, LAYOUT_PANEL64X2 = 0, 1, 2
PANEL = 64
F16_MAX = 65504.0
# The Linear weights (and the patch convolution, a Linear over flattened patches): stored as
# 64-output panels, the layout the library's GEMM kernel reads in place (docs/FORMAT.md).
PANEL_TENSORS = re.compile(
    r"^(visual\.trunk\.patch_embed\.proj\.weight"
    r"|visual\.trunk\.blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.weight"
    r"|visual\.head\.proj\.weight"
    r"|text\.transformer\.encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)\.weight"
    r"|text\.proj\.(0\.|2\.)?weight)$")
PROJ_LINEAR, PROJ_MLP = 1, 2
POOL_CLS_LAST_HIDDEN = 1
RESIZE_SHORTEST = 1
INTERP_BICUBIC = 1

# open_clip's OPENAI_DATASET_MEAN / STD (the PreprocessCfg defaults)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# timm ViT variants whose head count follows from the name: name -> (width, heads)
TIMM_VIT_HEADS = {
    "vit_tiny_patch16_224": (192, 3),
    "vit_small_patch16_224": (384, 6),
    "vit_small_patch32_224": (384, 6),
    "vit_base_patch16_224": (768, 12),
    "vit_base_patch32_224": (768, 12),
    "vit_large_patch16_224": (1024, 16),
}
# BERT-base checkpoints (12 heads of 64) known as BiomedCLIP's text tower
BERT_BASE_NAMES = (
    "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
    "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract",
    "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext",
    "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext",
    "bert-base-uncased",
)

IGNORED_KEYS = ("text.transformer.embeddings.position_ids", "text.transformer.embeddings.token_type_ids")
IGNORED_PREFIXES = ("text.transformer.pooler.",)


# ---- configuration --------------------------------------------------------------------------

def load_config(path):
    """open_clip_config.json ({"model_cfg": ..., "preprocess_cfg": ...}) or a bare model config
    (open_clip's model_configs/*.json: embed_dim, vision_cfg, text_cfg)."""
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except OSError as e:
        raise ConvertError("%s: %s" % (path, e.strerror or e))
    except ValueError as e:
        raise ConvertError("%s: not valid JSON: %s" % (path, e))
    model_cfg = cfg.get("model_cfg", cfg)
    if not isinstance(model_cfg, dict):
        raise ConvertError("%s: model_cfg is not an object" % path)
    for k in ("vision_cfg", "text_cfg", "embed_dim"):
        if k not in model_cfg:
            raise ConvertError("%s: model_cfg has no %s" % (path, k))
    for k in ("vision_cfg", "text_cfg"):
        if not isinstance(model_cfg[k], dict):
            raise ConvertError("%s: model_cfg.%s is not an object" % (path, k))
    if not isinstance(cfg.get("preprocess_cfg", {}), dict):
        raise ConvertError("%s: preprocess_cfg is not an object" % path)
    return path, model_cfg, cfg.get("preprocess_cfg", {})


def cfg_get(d, keys, default=None):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def positive_int(x, what):
    if not is_int(x) or x <= 0:
        raise ConvertError("%s must be a positive integer, got %r" % (what, x))
    return x


# ---- tokenizer vocabulary -------------------------------------------------------------------

def load_vocab(snapshot, vocab_file=None):
    """Tokens in id order plus the tokenizer switches. From a snapshot directory, vocab.txt wins
    over tokenizer.json; a vocab_file given alone is either (tokenizer.json if it is JSON), with
    the tokenizer_config.json beside it, if any."""
    settings = {"lowercase": 1, "strip_accents": None, "max_word_chars": 100}
    if vocab_file is not None:
        if not os.path.isfile(vocab_file):
            raise ConvertError("%s: no such vocabulary file" % vocab_file)
        with open(vocab_file, "rb") as f:
            is_json = f.read(64).lstrip().startswith(b"{")
        tj_path, vt_path = (vocab_file, None) if is_json else (None, vocab_file)
        tc_path = os.path.join(os.path.dirname(os.path.abspath(vocab_file)), "tokenizer_config.json")
        snapshot = os.path.dirname(vocab_file) or "."
    else:
        tj_path = os.path.join(snapshot, "tokenizer.json")
        vt_path = os.path.join(snapshot, "vocab.txt")
        tc_path = os.path.join(snapshot, "tokenizer_config.json")
    tj = None
    if tj_path and os.path.exists(tj_path):
        try:
            with open(tj_path, encoding="utf-8") as f:
                tj = json.load(f)
        except (OSError, ValueError) as e:
            raise ConvertError("%s: %s" % (tj_path, e))
    if os.path.exists(tc_path):
        try:
            with open(tc_path, encoding="utf-8") as f:
                tc = json.load(f)
        except (OSError, ValueError) as e:
            raise ConvertError("%s: %s" % (tc_path, e))
        if tc.get("do_lower_case") is not None:
            settings["lowercase"] = int(bool(tc["do_lower_case"]))
        if tc.get("strip_accents") is not None:
            settings["strip_accents"] = int(bool(tc["strip_accents"]))
    if tj is not None:
        norm = tj.get("normalizer") or {}
        if norm.get("type") == "BertNormalizer":
            if norm.get("lowercase") is not None:
                settings["lowercase"] = int(bool(norm["lowercase"]))
            if norm.get("strip_accents") is not None:
                settings["strip_accents"] = int(bool(norm["strip_accents"]))
        m = tj.get("model") or {}
        if m.get("max_input_chars_per_word") is not None:
            settings["max_word_chars"] = positive_int(m["max_input_chars_per_word"],
                                                      "tokenizer.json max_input_chars_per_word")
    if settings["strip_accents"] is None:  # BERT: strip_accents unset follows lowercase
        settings["strip_accents"] = settings["lowercase"]

    if vt_path and os.path.exists(vt_path):
        # as transformers' load_vocab: one token per line, only the "\n" removed
        with open(vt_path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
        source = vt_path
    elif tj is not None:
        m = tj.get("model") or {}
        if m.get("type") != "WordPiece" or not isinstance(m.get("vocab"), dict):
            raise ConvertError("%s: model is not a WordPiece vocabulary" % tj_path)
        vocab = m["vocab"]
        tokens = [None] * len(vocab)
        for tok, i in vocab.items():
            if not is_int(i) or not 0 <= i < len(tokens) or tokens[i] is not None:
                raise ConvertError("%s: vocabulary ids are not 0..%d without gaps (token %r -> %r)"
                                   % (tj_path, len(tokens) - 1, tok, i))
            tokens[i] = tok
        source = tj_path
    else:
        raise ConvertError("%s: no vocab.txt or tokenizer.json" % snapshot)
    if not tokens:
        raise ConvertError("%s: empty vocabulary" % source)
    first = {}
    for i, tok in enumerate(tokens):
        first.setdefault(tok, i)
    ids = {}
    for name in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        if name not in first:
            raise ConvertError("%s: vocabulary has no %s token" % (source, name))
        ids[name] = first[name]
    return tokens, ids, settings, source


def vocab_tensors(tokens):
    offsets = array("I", [0])
    blob = bytearray()
    for tok in tokens:
        blob += tok.encode("utf-8")
        offsets.append(len(blob))
    if len(blob) >= 1 << 32:
        raise ConvertError("vocabulary is too large")
    if sys.byteorder != "little":
        offsets.byteswap()
    return offsets.tobytes(), bytes(blob)


# ---- the expected tensors -------------------------------------------------------------------

def need(sd, key):
    if key not in sd:
        raise ConvertError("missing tensor %s (needed to size the model)" % key)
    return sd[key].shape


def count_layers(sd, prefix):
    n = 0
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    for k in sd:
        m = pat.match(k)
        if m:
            n = max(n, int(m.group(1)) + 1)
    return n


def plan(sd, model_cfg, pre_cfg, args, config_path):
    """Return (config dict for the header, [(name, shape)] in file order)."""
    vc, tc = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    E = positive_int(model_cfg["embed_dim"], "model_cfg.embed_dim")

    # vision: the tower must be what the C code runs (timm ViT, token pool, linear head, no bias)
    if "timm_model_name" not in vc:
        raise ConvertError("%s: vision_cfg has no timm_model_name (only timm ViTs are supported)" % config_path)
    pool = vc.get("timm_pool", "avg")  # open_clip's CLIPVisionCfg default is 'avg'
    if pool not in ("", "token"):
        raise ConvertError("%s: vision_cfg.timm_pool %r is not supported (need '' or 'token')" % (config_path, pool))
    if vc.get("timm_proj", "linear") != "linear" or vc.get("timm_proj_bias", False):
        raise ConvertError("%s: only timm_proj 'linear' without bias is supported" % config_path)
    pe = need(sd, "visual.trunk.patch_embed.proj.weight")
    if len(pe) != 4 or pe[1] != 3 or pe[2] != pe[3]:
        raise ConvertError("tensor visual.trunk.patch_embed.proj.weight: expected shape [W,3,P,P], found %s" % shape_str(pe))
    VW, P = pe[0], pe[2]
    S = positive_int(vc.get("image_size", 224), "vision_cfg.image_size")
    if S % P:
        raise ConvertError("image_size %d is not a multiple of the patch size %d" % (S, P))
    VL = count_layers(sd, "visual.trunk.blocks.")
    if VL == 0:
        raise ConvertError("missing tensor visual.trunk.blocks.0.* (no ViT blocks)")
    VM = need(sd, "visual.trunk.blocks.0.mlp.fc1.weight")[0]
    if args.vision_heads:
        VH = args.vision_heads
    elif vc.get("heads") is not None:
        VH = positive_int(vc["heads"], "vision_cfg.heads")
    elif TIMM_VIT_HEADS.get(vc["timm_model_name"], (None,))[0] == VW:
        VH = TIMM_VIT_HEADS[vc["timm_model_name"]][1]
    else:
        raise ConvertError("cannot tell the vision head count for %r with width %d: add vision_cfg.heads to "
                           "the config or pass --vision-heads" % (vc["timm_model_name"], VW))
    if VW % VH:
        raise ConvertError("vision width %d is not divisible by %d heads" % (VW, VH))

    # text: HF BERT, CLS-of-last-hidden-state pooler, mlp or linear projection
    if "hf_model_name" not in tc:
        raise ConvertError("%s: text_cfg has no hf_model_name (only HF BERT towers are supported)" % config_path)
    pooler = cfg_get(tc, ("hf_pooler_type", "pooler_type"), "mean_pooler")
    if pooler != "cls_last_hidden_state_pooler":
        raise ConvertError("%s: text pooler %r is not supported (need cls_last_hidden_state_pooler)" % (config_path, pooler))
    proj = cfg_get(tc, ("hf_proj_type", "proj"), "linear")
    if proj not in ("mlp", "linear"):
        raise ConvertError("%s: text projection %r is not supported (need mlp or linear)" % (config_path, proj))
    we = need(sd, "text.transformer.embeddings.word_embeddings.weight")
    if len(we) != 2:
        raise ConvertError("tensor text.transformer.embeddings.word_embeddings.weight: expected shape [V,W], found %s" % shape_str(we))
    V, TW = we
    MP = need(sd, "text.transformer.embeddings.position_embeddings.weight")[0]
    TV = need(sd, "text.transformer.embeddings.token_type_embeddings.weight")[0]
    TL = count_layers(sd, "text.transformer.encoder.layer.")
    if TL == 0:
        raise ConvertError("missing tensor text.transformer.encoder.layer.0.* (no BERT layers)")
    TF = need(sd, "text.transformer.encoder.layer.0.intermediate.dense.weight")[0]
    if args.text_heads:
        TH = args.text_heads
    elif tc.get("num_attention_heads") is not None:
        TH = positive_int(tc["num_attention_heads"], "text_cfg.num_attention_heads")
    elif tc["hf_model_name"] in BERT_BASE_NAMES and TW == 768:
        TH = 12
    else:
        raise ConvertError("cannot tell the text head count for %r with width %d: add "
                           "text_cfg.num_attention_heads to the config or pass --text-heads" % (tc["hf_model_name"], TW))
    if TW % TH:
        raise ConvertError("text width %d is not divisible by %d heads" % (TW, TH))
    ctx = positive_int(tc.get("context_length", 77), "text_cfg.context_length")  # open_clip default 77
    if ctx > MP:
        raise ConvertError("context_length %d exceeds the %d position embeddings" % (ctx, MP))
    H = (TW + E) // 2 if proj == "mlp" else 0

    resize = pre_cfg.get("resize_mode", "shortest")
    interp = pre_cfg.get("interpolation", "bicubic")
    if resize != "shortest" or interp != "bicubic":
        raise ConvertError("%s: preprocessing %s/%s is not supported (need shortest/bicubic)" % (config_path, resize, interp))
    mean = pre_cfg.get("mean", OPENAI_MEAN)
    std = pre_cfg.get("std", OPENAI_STD)
    if not isinstance(mean, (list, tuple)) or not isinstance(std, (list, tuple)) or len(mean) != 3 \
            or len(std) != 3 or not all(isinstance(x, (int, float)) for x in list(mean) + list(std)) \
            or not all(x > 0 for x in std):
        raise ConvertError("%s: preprocess_cfg mean/std must be 3 numbers each (std > 0)" % config_path)

    cfg = dict(image_size=S, patch_size=P, vision_width=VW, vision_layers=VL, vision_heads=VH, vision_mlp=VM,
               vision_ln_eps=float(vc.get("layer_norm_eps", 1e-6)),
               vocab_rows=V, max_positions=MP, type_vocab=TV, context_length=ctx, text_width=TW,
               text_layers=TL, text_heads=TH, text_ffn=TF, text_ln_eps=float(tc.get("layer_norm_eps", 1e-12)),
               text_proj_type=PROJ_MLP if proj == "mlp" else PROJ_LINEAR, text_proj_hidden=H,
               text_pooler=POOL_CLS_LAST_HIDDEN, embed_dim=E, image_resize=RESIZE_SHORTEST,
               image_interp=INTERP_BICUBIC, image_mean=[float(x) for x in mean], image_std=[float(x) for x in std])

    G = S // P
    shapes = [("visual.trunk.cls_token", (1, 1, VW)), ("visual.trunk.pos_embed", (1, 1 + G * G, VW)),
              ("visual.trunk.patch_embed.proj.weight", (VW, 3, P, P)), ("visual.trunk.patch_embed.proj.bias", (VW,))]
    for i in range(VL):
        b = "visual.trunk.blocks.%d." % i
        shapes += [(b + "norm1.weight", (VW,)), (b + "norm1.bias", (VW,)),
                   (b + "attn.qkv.weight", (3 * VW, VW)), (b + "attn.qkv.bias", (3 * VW,)),
                   (b + "attn.proj.weight", (VW, VW)), (b + "attn.proj.bias", (VW,)),
                   (b + "norm2.weight", (VW,)), (b + "norm2.bias", (VW,)),
                   (b + "mlp.fc1.weight", (VM, VW)), (b + "mlp.fc1.bias", (VM,)),
                   (b + "mlp.fc2.weight", (VW, VM)), (b + "mlp.fc2.bias", (VW,))]
    shapes += [("visual.trunk.norm.weight", (VW,)), ("visual.trunk.norm.bias", (VW,)),
               ("visual.head.proj.weight", (E, VW))]
    e = "text.transformer.embeddings."
    shapes += [(e + "word_embeddings.weight", (V, TW)), (e + "position_embeddings.weight", (MP, TW)),
               (e + "token_type_embeddings.weight", (TV, TW)), (e + "LayerNorm.weight", (TW,)),
               (e + "LayerNorm.bias", (TW,))]
    for i in range(TL):
        b = "text.transformer.encoder.layer.%d." % i
        for q in ("query", "key", "value"):
            shapes += [(b + "attention.self.%s.weight" % q, (TW, TW)), (b + "attention.self.%s.bias" % q, (TW,))]
        shapes += [(b + "attention.output.dense.weight", (TW, TW)), (b + "attention.output.dense.bias", (TW,)),
                   (b + "attention.output.LayerNorm.weight", (TW,)), (b + "attention.output.LayerNorm.bias", (TW,)),
                   (b + "intermediate.dense.weight", (TF, TW)), (b + "intermediate.dense.bias", (TF,)),
                   (b + "output.dense.weight", (TW, TF)), (b + "output.dense.bias", (TW,)),
                   (b + "output.LayerNorm.weight", (TW,)), (b + "output.LayerNorm.bias", (TW,))]
    if proj == "mlp":
        shapes += [("text.proj.0.weight", (H, TW)), ("text.proj.2.weight", (E, H))]
    else:
        shapes += [("text.proj.weight", (E, TW))]
    shapes += [("logit_scale", ())]
    return cfg, shapes


def check_tensors(sd, shapes):
    problems = []
    expected = dict(shapes)
    for name, shape in shapes:
        if name not in sd:
            problems.append("missing tensor %s %s" % (name, shape_str(shape)))
        elif not isinstance(sd[name], TensorRef):
            problems.append("entry %s is a %s, not a tensor" % (name, type(sd[name]).__name__))
        elif sd[name].shape != shape:
            problems.append("tensor %s: expected shape %s, found %s" % (name, shape_str(shape), shape_str(sd[name].shape)))
        elif sd[name].dtype not in ("F32", "F16", "BF16"):
            problems.append("tensor %s: dtype %s is not a float type" % (name, sd[name].dtype))
    for name in sd:
        if name not in expected:
            problems.append("unexpected tensor %s" % name)
    if problems:
        raise ConvertError("the checkpoint does not match the configuration:\n  " + "\n  ".join(problems))


# Wrappers whose attribute name prefixes every key: DistributedDataParallel / DataParallel
# ("module.") and torch.compile ("_orig_mod."), in any nesting.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
VISION_KEY = "visual.trunk.patch_embed.proj.weight"
TEXT_KEY = "text.transformer.embeddings.word_embeddings.weight"


def normalize_keys(sd, notes=None):
    """Drop wrapper prefixes (and, when every key has one, a common prefix in front of
    BiomedCLIP's names, as a Lightning module's "model."), and the buffers the file leaves out."""
    out = collections.OrderedDict()
    stripped = collections.Counter()
    for k, v in sd.items():
        while k.startswith(WRAPPER_PREFIXES):
            p = k[:k.index(".") + 1]
            stripped[p] += 1
            k = k[len(p):]
        if k in out:
            raise ConvertError("tensor %s appears twice (with and without a %s prefix)"
                               % (k, "/".join(WRAPPER_PREFIXES)))
        out[k] = v
    if VISION_KEY not in out:
        common = [k[:-len(VISION_KEY)] for k in out if k.endswith("." + VISION_KEY)]
        if len(common) == 1 and all(k.startswith(common[0]) for k in out):
            stripped[common[0]] = len(out)
            out = collections.OrderedDict((k[len(common[0]):], v) for k, v in out.items())
    if notes is not None:
        notes.extend("%r prefix removed from %d keys" % (p, n) for p, n in stripped.items())
    dropped = [k for k in out if k in IGNORED_KEYS or k.startswith(IGNORED_PREFIXES)]
    for k in dropped:
        del out[k]
    if notes is not None and dropped:
        notes.append("%d unused buffer/pooler tensors dropped (%s)" % (len(dropped), ", ".join(dropped[:2]) +
                                                                        (", ..." if len(dropped) > 2 else "")))
    return out


def _key_range(keys, pat):
    """'blocks.0-11' style summary of the numbered keys matching pat (with one (\\d+) group)."""
    ids = sorted({int(m.group(1)) for m in (re.search(pat, k) for k in keys) if m})
    return "%d-%d" % (ids[0], ids[-1]) if len(ids) > 1 else str(ids[0]) if ids else ""


def identify(sd):
    """None when sd has BiomedCLIP's two towers, else what it looks like instead (a hint)."""
    keys = list(sd)
    has = lambda pat: any(re.search(pat, k) for k in keys)  # noqa: E731
    vis, txt = VISION_KEY in sd, TEXT_KEY in sd
    if vis and txt:
        return None
    if vis:
        return ("BiomedCLIP's image tower alone (visual.trunk.*, no text.transformer.*: tensor %s is missing); "
                "save the whole CLIP model's state_dict" % TEXT_KEY)
    if txt:
        return ("BiomedCLIP's text tower alone (text.transformer.*, no visual.trunk.*: tensor %s is missing); "
                "save the whole CLIP model's state_dict" % VISION_KEY)
    if has(r"(^|\.)patch_embed\.proj\.weight$") and has(r"(^|\.)blocks\.\d+\."):
        pre = next(k for k in keys if k.endswith("patch_embed.proj.weight"))[:-len("patch_embed.proj.weight")]
        return ("a bare timm ViT: an image model alone (%spatch_embed.proj.weight, %sblocks.%s.*%s), no text tower; "
                "BiomedCLIP has visual.trunk.* (this ViT) and text.transformer.* (BERT)"
                % (pre, pre, _key_range(keys, r"blocks\.(\d+)\."), ", head.weight" if "head.weight" in sd else ""))
    if has(r"(^|\.)embeddings\.word_embeddings\.weight$") or has(r"(^|\.)encoder\.layer\.\d+\.attention\."):
        pre = next((k for k in keys if k.endswith("embeddings.word_embeddings.weight")), "")
        pre = pre[:-len("embeddings.word_embeddings.weight")] if pre else ""
        return ("a BERT text model alone (%sembeddings.word_embeddings.weight, %sencoder.layer.%s.*), no image tower; "
                "BiomedCLIP has text.transformer.* (this BERT) and visual.trunk.* (a ViT)"
                % (pre, pre, _key_range(keys, r"encoder\.layer\.(\d+)\.")))
    if has(r"^(visual\.)?transformer\.resblocks\.") or "visual.conv1.weight" in sd:
        return ("an OpenAI-style CLIP (visual.conv1.weight, transformer.resblocks.*): another architecture, "
                "not BiomedCLIP's timm ViT + BERT")
    if has(r"^vision_model\.") and has(r"^text_model\."):
        return ("a Hugging Face transformers CLIPModel (vision_model.*, text_model.*): another layout, not "
                "open_clip's BiomedCLIP (visual.trunk.*, text.transformer.*)")
    return "none of BiomedCLIP's tensors (first keys: %s)" % (", ".join(keys[:4]) or "none: it is empty")


# ---- writing --------------------------------------------------------------------------------

def pack_config(c, tokens, ids, tok):
    b = struct.pack("<6Id", c["image_size"], c["patch_size"], c["vision_width"], c["vision_layers"],
                    c["vision_heads"], c["vision_mlp"], c["vision_ln_eps"])
    b += struct.pack("<8Id", c["vocab_rows"], c["max_positions"], c["type_vocab"], c["context_length"],
                     c["text_width"], c["text_layers"], c["text_heads"], c["text_ffn"], c["text_ln_eps"])
    b += struct.pack("<6I", c["text_proj_type"], c["text_proj_hidden"], c["text_pooler"], c["embed_dim"],
                     c["image_resize"], c["image_interp"])
    b += struct.pack("<6f", *(c["image_mean"] + c["image_std"]))
    b += struct.pack("<9I", len(tokens), ids["[PAD]"], ids["[UNK]"], ids["[CLS]"], ids["[SEP]"],
                     ids["[MASK]"], tok["lowercase"], tok["strip_accents"], tok["max_word_chars"])
    assert len(b) == 156, len(b)
    return b + bytes(CONFIG_SIZE - len(b))


def align(x, a):
    return (x + a - 1) // a * a


def panel_floats(shape):
    """Floats of a panel64 tensor: ceil(N / 64) panels of [K][64]."""
    n, k = shape[0], 1
    for d in shape[1:]:
        k *= d
    return (n + PANEL - 1) // PANEL * PANEL * k


_panel_buffer = bytearray()


def to_panels(data, shape):
    """Row-major float32 bytes of an [N, K...] weight -> its panels: element (n, k) at
    (n // 64) * K * 64 + k * 64 + n % 64, zeros past N. Each row is moved by one strided
    memoryview assignment (no per-float Python loop); the 4-byte elements are moved, not
    interpreted. The result is a view of one buffer reused from tensor to tensor (fresh pages
    for every tensor tripled the conversion time), valid until the next call."""
    global _panel_buffer
    n = shape[0]
    k = len(data) // 4 // n
    size = panel_floats(shape) * 4
    if len(_panel_buffer) < size:
        _panel_buffer = bytearray(size)
    out = memoryview(_panel_buffer)[:size]
    dst = out.cast("f")
    if n % PANEL:  # the last panel's slots past N: zeros (the buffer holds an older tensor)
        last = n // PANEL * k * PANEL
        dst[last:] = memoryview(bytes((len(dst) - last) * 4)).cast("f")
    src = memoryview(data).cast("B").cast("f")
    for row in range(n):
        base = row // PANEL * k * PANEL + row % PANEL
        dst[base:base + k * PANEL:PANEL] = src[row * k:(row + 1) * k]
    return out


def to_f16_bytes(data, name):
    """float32 bytes -> IEEE half bytes, rounded to nearest even, in chunks through struct."""
    src = memoryview(data).cast("B").cast("f")
    out = bytearray(len(src) * 2)
    step = 1 << 16
    for i in range(0, len(src), step):
        chunk = src[i:i + step]
        try:
            out[2 * i:2 * (i + len(chunk))] = struct.pack("<%de" % len(chunk), *chunk)
        except (OverflowError, struct.error):
            big = max(abs(v) for v in chunk)
            raise ConvertError("tensor %s: a value (|x| = %g) is beyond float16's range (%g): use --dtype bf16 or "
                               "f32" % (name, big, F16_MAX))
    return out


_HIGH_7F = bytes(1 if b & 0x7F == 0x7F else 0 for b in range(256))


def to_bf16_bytes(data, name):
    """float32 bytes -> bfloat16 bytes, rounded to nearest even: each 32-bit lane u becomes
    (u + 0x7FFF + bit 16 of u) >> 16, computed on the tensor as one little-endian integer (no lane
    carries into the next except for NaN, which is refused), then the high half of every lane."""
    n = len(data) // 4
    b = int.from_bytes(data, "little")
    lanes16 = int.from_bytes(b"\x00\x00\x01\x00" * n, "little")  # bit 16 of every lane
    r = b + int.from_bytes(b"\xff\x7f\x00\x00" * n, "little") + ((b & lanes16) >> 16)
    rb = r.to_bytes(4 * n + 1, "little")
    del b, r
    # lanes whose sign-less high byte is 0x7f (exponent all ones, or nearly): found at C speed,
    # then only those looked at; a NaN is refused, an infinity kept
    src = memoryview(data).cast("B").cast("I")
    high = bytes(data[3::4]).translate(_HIGH_7F)
    i = high.find(1)
    while i >= 0:
        if src[i] & 0x7F800000 == 0x7F800000 and src[i] & 0x7FFFFF:
            raise ConvertError("tensor %s: element %d is NaN" % (name, i))
        i = high.find(1, i + 1)
    out = bytearray(2 * n)
    out[0::2] = rb[2:4 * n:4]
    out[1::2] = rb[3:4 * n:4]
    return out


def to_panels16(data, shape, pairs):
    """16-bit bytes of an [N, K...] weight (row-major) -> panels of [K][64] (f16), or with pairs
    of k side by side, [K / 2][64][2] (bf16, panel64x2): element (n, k) at (n // 64) * K * 64 +
    (k // 2) * 128 + (n % 64) * 2 + k % 2."""
    n = shape[0]
    k = len(data) // 2 // n
    out = bytearray(panel_floats(shape) * 2)
    dst = memoryview(out).cast("H")
    src = memoryview(data).cast("B").cast("H")
    for row in range(n):
        r = src[row * k:(row + 1) * k]
        if pairs:
            base = row // PANEL * k * PANEL + row % PANEL * 2
            dst[base:base + k * PANEL:2 * PANEL] = r[0::2]
            dst[base + 1:base + 1 + k * PANEL:2 * PANEL] = r[1::2]
        else:
            base = row // PANEL * k * PANEL + row % PANEL
            dst[base:base + k * PANEL:PANEL] = r
    return out


def panel_item(name, t, shape, dtype):
    """The directory item of a Linear weight stored as panels in dtype ('f32', 'f16', 'bf16')."""
    if dtype == "f16":
        return (name, DT_F16, shape, panel_floats(shape) * 2,
                lambda: to_panels16(to_f16_bytes(to_f32_bytes(t, name), name), shape, False), LAYOUT_PANEL64)
    if dtype == "bf16":
        k = panel_floats(shape) // ((shape[0] + PANEL - 1) // PANEL * PANEL)
        if k % 2:
            raise ConvertError("tensor %s: --dtype bf16 needs an even input size, not %d" % (name, k))
        return (name, DT_BF16, shape, panel_floats(shape) * 2,
                lambda: to_panels16(to_bf16_bytes(to_f32_bytes(t, name), name), shape, True), LAYOUT_PANEL64X2)
    return (name, DT_F32, shape, panel_floats(shape) * 4,
            lambda: to_panels(to_f32_bytes(t, name), shape), LAYOUT_PANEL64)


def write_bmc(out_path, config_bytes, items):
    """items: [(name, dtype, shape, nbytes, produce, layout)] where produce() returns the bytes
    as stored."""
    n = len(items)
    data_offset = align(HEADER_SIZE + n * DIR_ENTRY_SIZE, DATA_ALIGN)
    offsets, pos = [], data_offset
    for _, _, _, nbytes, _, _ in items:
        offsets.append(pos)
        pos = align(pos + nbytes, TENSOR_ALIGN)
    file_size = pos
    out_dir = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix=".convert-", suffix=".bmc.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(data_offset))
            entries = []
            for (name, dtype, shape, nbytes, produce, layout), off in zip(items, offsets):
                data = produce()
                if len(data) != nbytes:
                    raise ConvertError("tensor %s: produced %d bytes, expected %d" % (name, len(data), nbytes))
                assert f.tell() == off
                f.write(data)
                pad = align(off + nbytes, TENSOR_ALIGN) - (off + nbytes)
                f.write(bytes(pad))
                nb = name.encode("utf-8")
                if len(nb) >= NAME_MAX:
                    raise ConvertError("tensor name %s is longer than %d bytes" % (name, NAME_MAX - 1))
                dims = list(shape) + [0] * (MAX_DIMS - len(shape))
                entries.append(nb + bytes(NAME_MAX - len(nb)) +
                               struct.pack("<II4QQQII", dtype, len(shape), *dims, off, nbytes,
                                           zlib.crc32(data) & 0xFFFFFFFF, layout))
                del data
            directory = b"".join(entries)
            head = MAGIC + struct.pack("<IIIIQQIIQQII", FORMAT_VERSION, HEADER_SIZE, ENDIAN_TAG, TENSOR_ALIGN,
                                       file_size, HEADER_SIZE, n, DIR_ENTRY_SIZE, data_offset,
                                       file_size - data_offset, 0, zlib.crc32(directory) & 0xFFFFFFFF)
            assert len(head) == CONFIG_OFFSET
            head += config_bytes + bytes(HEADER_SIZE - 4 - CONFIG_OFFSET - CONFIG_SIZE)
            head += struct.pack("<I", zlib.crc32(head) & 0xFFFFFFFF)
            f.seek(0)
            f.write(head)
            f.write(directory)
            f.flush()
            os.fsync(f.fileno())
            # Drop the written pages from the page cache: the library asks for 2 MB pages
            # (MADV_HUGEPAGE), which the kernel can only give to pages it reads back from disk;
            # pages cached by these writes would stay 4 KB until evicted.
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return file_size


# ---- reading the checkpoint -----------------------------------------------------------------

def read_checkpoint(path):
    """A checkpoint file of any supported format, told by its first bytes (not its name):
    (state dict, close, info)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ConvertError("%s: %s" % (path, e.strerror or e))
    if head.startswith(b"PK\x03\x04"):
        return read_torch_zip(path)
    if len(head) >= 9 and head[8:9] == b"{":
        return read_safetensors(path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise ConvertError("%s: a legacy torch.save file (not a zip archive: PyTorch < 1.6 or "
                           "_use_new_zipfile_serialization=False), which is not supported; load it and save "
                           "it again with a current torch.save" % path)
    raise ConvertError("%s: not a checkpoint: neither a torch.save zip archive (.pt/.pth/.bin) nor a "
                       "safetensors file" % path)


def describe_read(path, info, sd, notes):
    """The lines saying what was read: format, container, epoch/name, dtypes, tensors, skips."""
    lines = ["read %s: %s, %s" % (path, info["format"], info["container"])]
    meta = ["%s %s" % (k, info[k] if k != "name" else repr(info[k])) for k in ("epoch", "name", "step", "global_step")
            if k in info]
    if meta:
        lines[0] += " (%s)" % ", ".join(meta)
    dtypes = collections.Counter(t.dtype for t in sd.values() if isinstance(t, TensorRef))
    dts = ", ".join("%s x %d" % (DTYPE_NAMES.get(d, d), n) for d, n in dtypes.most_common())
    lines.append("  %d tensors (%s)%s" % (sum(dtypes.values()), dts,
                                         "; widened to float32" if set(dtypes) - {"F32"} else ""))
    for n in notes:
        lines.append("  " + n)
    skipped = info.get("skipped") or []
    if skipped:
        line = "  skipped: %s" % ", ".join(skipped)
        if info.get("unread_storages"):
            line += " (%d storages, %.1f MB, never read)" % (info["unread_storages"], info["unread_bytes"] / 1e6)
        lines.append(line)
    return lines


# ---- main -----------------------------------------------------------------------------------

def convert(source, out_path, args):
    """source: a snapshot directory, or a checkpoint file with args.base / args.config /
    args.vocab naming the configuration and vocabulary."""
    base = getattr(args, "base", None)
    config_opt = getattr(args, "config", None)
    vocab_opt = getattr(args, "vocab", None)
    if os.path.isdir(source):
        if base:
            raise ConvertError("%s is a snapshot directory: --base is for a checkpoint file" % source)
        snapshot = source
        st_path = os.path.join(snapshot, "open_clip_model.safetensors")
        bin_path = os.path.join(snapshot, "open_clip_pytorch_model.bin")
        if os.path.exists(st_path):
            weights_path, reader = st_path, read_safetensors
        elif os.path.exists(bin_path):
            weights_path, reader = bin_path, read_torch_zip
        else:
            raise ConvertError("%s: no open_clip_model.safetensors or open_clip_pytorch_model.bin" % snapshot)
    elif os.path.isfile(source):
        snapshot, weights_path, reader = base, source, read_checkpoint
        if base is not None and not os.path.isdir(base):
            raise ConvertError("--base %s: not a directory (want the Hugging Face snapshot the fine-tune "
                               "started from, e.g. weights/hf after make weights)" % base)
        if base is None and (config_opt is None or vocab_opt is None):
            raise ConvertError("%s is a checkpoint file: the configuration and vocabulary come from --base "
                               "SNAPSHOT_DIR (the snapshot the fine-tune started from; make weights keeps one "
                               "in weights/hf), or from --config FILE and --vocab FILE" % source)
    else:
        raise ConvertError("%s: no such checkpoint file or snapshot directory" % source)
    config_path, model_cfg, pre_cfg = load_config(config_opt or os.path.join(snapshot, "open_clip_config.json"))
    tokens, ids, tok, vocab_source = load_vocab(snapshot, vocab_opt)
    sd_raw, close, info = reader(weights_path)
    try:
        notes = []
        sd = normalize_keys(sd_raw, notes)
        what = identify(sd)
        if what is not None:
            raise ConvertError("%s is not a BiomedCLIP checkpoint: it looks like %s" % (weights_path, what))
        report = describe_read(weights_path, info, sd, notes)
        cfg, shapes = plan(sd, model_cfg, pre_cfg, args, config_path)
        check_tensors(sd, shapes)
        if len(tokens) > cfg["vocab_rows"]:
            raise ConvertError("vocabulary has %d tokens but word_embeddings only %d rows"
                               % (len(tokens), cfg["vocab_rows"]))
        items = []
        n_params = 0
        for name, shape in shapes:
            t = sd[name]
            n_params += t.numel
            if PANEL_TENSORS.match(name):
                items.append(panel_item(name, t, shape, getattr(args, "dtype", "f32")))
            else:
                items.append((name, DT_F32, shape, t.numel * 4, lambda t=t, name=name: to_f32_bytes(t, name),
                              LAYOUT_ROWS))
        offs, blob = vocab_tensors(tokens)
        items.append(("tokenizer.vocab.offsets", DT_U32, (len(tokens) + 1,), len(offs), lambda: offs, LAYOUT_ROWS))
        items.append(("tokenizer.vocab.bytes", DT_U8, (len(blob),), len(blob), lambda: blob, LAYOUT_ROWS))
        size = write_bmc(out_path, pack_config(cfg, tokens, ids, tok), items)
    finally:
        close()
    return dict(weights=weights_path, vocab=vocab_source, config=config_path, tensors=len(items), params=n_params,
                size=size, tokens=len(tokens), cfg=cfg, report=report)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Convert BiomedCLIP weights to a .bmc file: a Hugging Face snapshot directory, or a "
                    "checkpoint file (a fine-tune) with the configuration and vocabulary of its base.")
    ap.add_argument("source", metavar="SNAPSHOT_DIR|CHECKPOINT",
                    help="a directory with open_clip_config.json, weights and vocab.txt/tokenizer.json; or a "
                         ".pt/.pth/.bin/.safetensors checkpoint (a state_dict, open_clip's training checkpoint "
                         "with 'module.' prefixes and optimizer state, or safetensors)")
    ap.add_argument("-o", "--output", required=True, help="the .bmc file to write (atomically)")
    ap.add_argument("--base", metavar="SNAPSHOT_DIR",
                    help="for a checkpoint file: the snapshot it was fine-tuned from (its open_clip_config.json "
                         "and vocab.txt/tokenizer.json are used; its weights are not read), e.g. weights/hf")
    ap.add_argument("--config", metavar="FILE", help="open_clip_config.json (or a model config) to use")
    ap.add_argument("--vocab", metavar="FILE", help="vocab.txt or tokenizer.json to use")
    ap.add_argument("--vision-heads", type=int, default=0, help="ViT attention heads (overrides the config)")
    ap.add_argument("--text-heads", type=int, default=0, help="BERT attention heads (overrides the config)")
    ap.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32",
                    help="element type of the Linear weights (LayerNorm, biases and embedding tables stay "
                         "float32): f16 halves the file and the bytes a pass streams; bf16 also runs "
                         "bfloat16 products where the CPU has AVX512_BF16 (docs/PERF.md: accuracy)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.vision_heads < 0 or args.text_heads < 0:
        ap.error("head counts must be positive")
    try:
        info = convert(args.source, args.output, args)
    except ConvertError as e:
        print("convert.py: error: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("convert.py: error: %s" % e, file=sys.stderr)
        return 1
    except Exception as e:  # malformed input that slipped past the explicit checks
        print("convert.py: error: malformed input (%s: %s)" % (type(e).__name__, e), file=sys.stderr)
        return 1
    if not args.quiet:
        c = info["cfg"]
        print("\n".join(info["report"]))
        print("  config %s, vocabulary %s" % (info["config"], info["vocab"]))
        print("%s: %d tensors, %d float parameters, %d vocabulary tokens, %d bytes" %
              (args.output, info["tensors"], info["params"], info["tokens"], info["size"]))
        print("  vision %d layers x %d wide (%d heads), text %d layers x %d wide (%d heads), embed %d" %
              (c["vision_layers"], c["vision_width"], c["vision_heads"], c["text_layers"], c["text_width"],
               c["text_heads"], c["embed_dim"]))
        if args.dtype != "f32":
            print("  Linear weights stored as %s; check the result against the float32 file with "
                  "biomedclip compare (docs/PERF.md)" % args.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
