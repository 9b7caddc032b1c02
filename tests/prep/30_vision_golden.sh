#!/usr/bin/env bash
# PyTorch goldens for the image tower (tests/reference/vision.py): for the tiny and the full-size
# test checkpoints in $BMC_TESTDATA/{tiny,full}/, the model inputs of a batch of 3 images, the
# tokens after patch embedding, every block's output, the final LayerNorm, the pooled cls token
# and the raw and normalised embeddings. Written to $BMC_TESTDATA/vision_golden/<model>/;
# skipped when DONE is newer than the checkpoint.
set -eu
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
: "${BMC_TESTDATA:?BMC_TESTDATA is not set}"
for m in tiny full; do
  snap=$BMC_TESTDATA/$m
  out=$BMC_TESTDATA/vision_golden/$m
  ckpt=$snap/open_clip_pytorch_model.bin
  if [ ! -f "$ckpt" ]; then
    echo "30_vision_golden: missing $ckpt (made by an earlier prep step)" >&2
    exit 1
  fi
  if [ -f "$out/DONE" ] && [ "$out/DONE" -nt "$ckpt" ]; then
    echo "30_vision_golden: $out is up to date"
    continue
  fi
  rm -rf "$out"
  echo "30_vision_golden: generating $out"
  "$PYTHON" tests/reference/vision.py --snapshot "$snap" --out "$out" --shared "$SHARED_DATA"
done
