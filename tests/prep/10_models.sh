#!/usr/bin/env bash
# Random-weight test checkpoints: $BMC_TESTDATA/{tiny,full}/ (HF-like snapshots written by
# torch.save) and their conversions $BMC_TESTDATA/{tiny,full}.bmc, and {tiny,full}-{f16,bf16}.bmc
# (16-bit Linear weights). Skips what already exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
export SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
mkdir -p "$BMC_TESTDATA"

for size in tiny full; do
  snap="$BMC_TESTDATA/$size"
  if [ ! -f "$snap/open_clip_pytorch_model.bin" ]; then
    t0=$(date +%s%N)
    rm -rf "$snap.tmp"
    "$PYTHON" tests/gen_checkpoint.py --size "$size" --seed 0 "$snap.tmp"
    rm -rf "$snap"
    mv "$snap.tmp" "$snap"
    echo "10_models: generated $snap in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  fi
  # (re)convert when missing or older than the snapshot or the converter
  if [ ! -f "$BMC_TESTDATA/$size.bmc" ] || [ "$snap/open_clip_pytorch_model.bin" -nt "$BMC_TESTDATA/$size.bmc" ] ||
     [ tools/convert.py -nt "$BMC_TESTDATA/$size.bmc" ] || [ tools/convert_readers.py -nt "$BMC_TESTDATA/$size.bmc" ]; then
    t0=$(date +%s%N)
    "$PYTHON" tools/convert.py "$snap" -o "$BMC_TESTDATA/$size.bmc"
    echo "10_models: converted $BMC_TESTDATA/$size.bmc in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  fi
  # the same model with 16-bit Linear weights (tests/test_reduced_precision.c)
  for dt in f16 bf16; do
    out="$BMC_TESTDATA/$size-$dt.bmc"
    if [ ! -f "$out" ] || [ "$BMC_TESTDATA/$size.bmc" -nt "$out" ]; then
      t0=$(date +%s%N)
      "$PYTHON" tools/convert.py "$snap" -o "$out" --dtype "$dt" -q
      echo "10_models: converted $out in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    fi
  done
done
