#!/usr/bin/python3
"""PyTorch reference for zero-shot classification and similarity search (spec sections 4 and 7),
built on the tower references tests/reference/vision.py (vit_forward) and text.py (bert_forward).

Images are preprocessed here with PIL the way open_clip's val transform does (spec 7): torchvision
Resize(S) rule (shorter side to S, longer int(S * long / short)), PIL BICUBIC resize (PIL itself
switches 'P' and '1' to NEAREST and resizes RGBA premultiplied), CenterCrop with Python's
round-half-even offsets, convert('RGB'), ToTensor (float32 / 255), Normalize (sub then div,
float32). Feed PNGs (or other lossless files) so that decoding is exact on both sides.

Texts come in as token ids (for instance from shared/data/tokenizer_test_vectors.json, verified
against the HF tokenizer), padded with 0 to the context length as open_clip does.

    probs = softmax(logit_scale.exp() * normalize(img) @ normalize(txt).T, dim=-1)   (float32)

Module use:  ref = Reference(snapshot_dir); ref.image_features(paths); ref.text_features(ids_list);
             ref.zero_shot(paths, ids_list) -> [N_img, N_txt] float32 tensor
Command line (JSON lines like `biomedclip classify --json`):
    python3 tests/reference/zero_shot.py --snapshot DIR --labels "a,b" [--template T]
            [--vectors tokenizer_test_vectors.json] IMAGE...
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import load_checkpoint  # noqa: E402
from text import bert_forward, text_config  # noqa: E402
from vision import vit_forward  # noqa: E402


def resized_size(w, h, size):
    """torchvision _compute_resized_output_size for an int size: (new_w, new_h)."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def preprocess(path, size, mean, std):
    """open_clip's val transform on one image file: [3, size, size] float32."""
    img = Image.open(path)
    w, h = img.size
    nw, nh = resized_size(w, h, size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    img = img.convert("RGB")
    t = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
    t = t.to(torch.float32) / 255.0
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (t - m) / s


class Reference:
    def __init__(self, snapshot):
        torch.set_grad_enabled(False)
        self.sd, self.cfg = load_checkpoint(snapshot)
        self.text_cfg = text_config(self.sd, self.cfg)
        self.logit_scale = self.sd["logit_scale"].to(torch.float32).exp()

    def pixels(self, paths):
        c = self.cfg
        return torch.stack([preprocess(p, c["image_size"], c["mean"], c["std"]) for p in paths])

    def image_features(self, paths):
        """[N, E] unit-norm image embeddings."""
        return vit_forward(self.sd, self.cfg, self.pixels(paths))["norm"]

    def text_features(self, ids_list):
        """[N, E] unit-norm text embeddings of id lists ([CLS] ... [SEP])."""
        L = self.text_cfg["context_length"]
        ids = torch.zeros(len(ids_list), L, dtype=torch.int64)
        for r, x in enumerate(ids_list):
            ids[r, :len(x)] = torch.tensor(x[:L], dtype=torch.int64)
        return bert_forward(self.sd, self.text_cfg, ids)[3]

    def zero_shot(self, paths, ids_list):
        img, txt = self.image_features(paths), self.text_features(ids_list)
        return (self.logit_scale * img @ txt.T).softmax(dim=-1)


def vector_ids(vectors_path, texts):
    """Token ids of texts from tokenizer_test_vectors.json (KeyError when a text is not there)."""
    with open(vectors_path, encoding="utf-8") as f:
        table = {v["text"]: v["ids"] for v in json.load(f)["vectors"]}
    return [table[t] for t in texts]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--template", default="this is a photo of ")
    shared = os.environ.get("SHARED_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
    ap.add_argument("--vectors", default=os.path.join(shared, "tokenizer_test_vectors.json"))
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(2)
    labels = [x.strip() for x in a.labels.split(",") if x.strip()]
    ref = Reference(a.snapshot)
    probs = ref.zero_shot(a.images, vector_ids(a.vectors, [a.template + x for x in labels]))
    for path, row in zip(a.images, probs):
        print(json.dumps({"file": path, "labels": labels, "probs": [float(p) for p in row]}))


if __name__ == "__main__":
    main()
