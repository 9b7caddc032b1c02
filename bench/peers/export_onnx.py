#!/usr/bin/python3
"""Export the two towers of an open_clip BiomedCLIP snapshot to ONNX for the ONNX Runtime peer.

usage: export_onnx.py --snapshot DIR --out-dir DIR
writes DIR/vision.onnx  input  pixels [batch, 3, S, S] float32       -> embedding [batch, E] (raw)
       DIR/text.onnx    inputs input_ids, attention_mask [batch, seq] int64 -> embedding [batch, E]
       DIR/config.json  image_size, context_length, embed_dim, vocab_rows, logit_scale

The modules are torch_model.py's (the open_clip module tree), exported by tracing with torch 1.13's
torch.onnx.export (opset 14). torch 1.13 writes the protobuf itself: the `onnx` Python package
is not needed (Debian has none). Each file is written under a temporary name and renamed at the
end, so an interrupted export leaves nothing that looks finished.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model as tm  # noqa: E402


class TextTower(torch.nn.Module):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def forward(self, input_ids, attention_mask):
        return self.text(input_ids, attention_mask)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    model, c = tm.load_model(a.snapshot)
    S = c["image_size"]
    with torch.no_grad():
        tmp = os.path.join(a.out_dir, "vision.onnx.tmp")
        torch.onnx.export(model.visual, (tm.pixels(2, S),), tmp, opset_version=14,
                          input_names=["pixels"], output_names=["embedding"],
                          dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}},
                          do_constant_folding=True)
        os.replace(tmp, os.path.join(a.out_dir, "vision.onnx"))
        ids = torch.tensor([tm.text_ids(12, j, c["vocab_rows"]) for j in range(2)], dtype=torch.int64)
        tmp = os.path.join(a.out_dir, "text.onnx.tmp")
        torch.onnx.export(TextTower(model.text), (ids, torch.ones_like(ids)), tmp, opset_version=14,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "attention_mask": {0: "batch", 1: "seq"},
                                        "embedding": {0: "batch"}},
                          do_constant_folding=True)
        os.replace(tmp, os.path.join(a.out_dir, "text.onnx"))
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump({"image_size": S, "context_length": c["context_length"], "embed_dim": c["embed_dim"],
                   "vocab_rows": c["vocab_rows"], "logit_scale": float(model.logit_scale.exp())}, f)
    print("export_onnx: wrote %s/{vision,text}.onnx (%.1f MB, %.1f MB)" % (
        a.out_dir, os.path.getsize(os.path.join(a.out_dir, "vision.onnx")) / 1e6,
        os.path.getsize(os.path.join(a.out_dir, "text.onnx")) / 1e6))


if __name__ == "__main__":
    main()
