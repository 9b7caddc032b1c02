#!/usr/bin/env python3
"""The BiomedCLIP notebook's zero-shot table (biomed_clip_example.ipynb) with `import biomedclip`
only: no PyTorch, no open_clip. The notebook's 9 example images in its order, its 9 labels, its
template "this is a photo of "; the table is printed as the notebook prints it, then how many
top-1 labels agree with the notebook's own run (open_clip, current checkpoint), as `make demo`.

    make && make weights                                  # build/libbiomedclip.so, the model
    python3 -m pip install --no-build-isolation ./python
    python3 examples/zero_shot_notebook.py [--model weights/biomedclip.bmc] [--images DIR]

--images defaults to the shared example images (../shared/data/images) or the copy that
`tools/fetch_weights.sh` downloads (weights/hf/example_data/...); --model to $BIOMEDCLIP_MODEL,
else weights/biomedclip.bmc.
"""
import argparse
import os
import sys

import biomedclip

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The notebook's images, in its order, with the top-1 label its run printed for each.
IMAGES = [
    ("squamous_cell_carcinoma_histopathology.jpeg", "squamous cell carcinoma histopathology"),
    ("H_and_E_histopathology.jpg", "hematoxylin and eosin histopathology"),
    ("bone_X-ray.jpg", "bone X-ray"),
    ("adenocarcinoma_histopathology.jpg", "adenocarcinoma histopathology"),
    ("covid_line_chart.png", "covid line chart"),
    ("IHC_histopathology.jpg", "immunohistochemistry histopathology"),
    ("chest_X-ray.jpg", "chest X-ray"),
    ("brain_MRI.jpg", "brain MRI"),
    ("pie_chart.png", "pie chart"),
]
LABELS = [
    "adenocarcinoma histopathology", "brain MRI", "covid line chart",
    "squamous cell carcinoma histopathology", "immunohistochemistry histopathology",
    "bone X-ray", "chest X-ray", "pie chart", "hematoxylin and eosin histopathology",
]
TEMPLATE = "this is a photo of "


def default_images():
    for d in (os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")) + "/images",
              os.path.join(ROOT, "weights", "hf", "example_data",
                           "biomed_image_classification_example_data")):
        if all(os.path.isfile(os.path.join(d, name)) for name, _ in IMAGES):
            return d
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.environ.get(
        "BIOMEDCLIP_MODEL", os.path.join(ROOT, "weights", "biomedclip.bmc")))
    ap.add_argument("--images", default=default_images(), help="directory of the 9 images")
    ap.add_argument("--top-k", type=int, default=len(LABELS))
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if not a.images:
        ap.error("the example images were not found: give --images DIR (make weights fetches them)")

    model = biomedclip.Model(a.model, threads=a.threads)
    names = [name for name, _ in IMAGES]
    # the notebook: logits = (logit_scale * image_features @ text_features.t()).softmax(dim=-1)
    probs = biomedclip.zero_shot(model, [os.path.join(a.images, n) for n in names], LABELS,
                                 template=TEMPLATE)
    print(biomedclip.zero_shot_table(names, LABELS, probs, top_k=a.top_k))

    agree = sum(LABELS[int(row.argmax())] == top1 for row, (_, top1) in zip(probs, IMAGES))
    print("top-1 label agrees with the notebook's open_clip run for %d of %d images"
          % (agree, len(IMAGES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
