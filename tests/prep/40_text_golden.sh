#!/usr/bin/env bash
# PyTorch goldens for the text tower (tests/reference/text.py): for the tiny and the full-size
# test checkpoints in $BMC_TESTDATA/{tiny,full}/, every layer's output, [CLS], projection and
# normalised embedding of deterministic random id sequences and of the tokenizer test prompts.
# Written to $BMC_TESTDATA/text_golden/<model>/; skipped when DONE is newer than the checkpoint.
set -eu
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
: "${BMC_TESTDATA:?BMC_TESTDATA is not set}"
for m in tiny full; do
  snap=$BMC_TESTDATA/$m
  out=$BMC_TESTDATA/text_golden/$m
  ckpt=$snap/open_clip_pytorch_model.bin
  if [ ! -f "$ckpt" ]; then
    echo "40_text_golden: missing $ckpt (made by an earlier prep step)" >&2
    exit 1
  fi
  if [ -f "$out/DONE" ] && [ "$out/DONE" -nt "$ckpt" ]; then
    echo "40_text_golden: $out is up to date"
    continue
  fi
  rm -rf "$out"
  echo "40_text_golden: generating $out"
  "$PYTHON" tests/reference/text.py --snapshot "$snap" --out "$out" \
    --vectors "$SHARED_DATA/tokenizer_test_vectors.json"
done
