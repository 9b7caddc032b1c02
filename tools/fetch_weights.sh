#!/usr/bin/env bash
# fetch_weights.sh - download the official BiomedCLIP checkpoint from Hugging Face, check it, and
# convert it into weights/biomedclip.bmc (`make weights`). Also fetches the 9 example images of
# the BiomedCLIP notebook unless $SHARED_DATA/images already has them. Safe to rerun: finished
# files are kept, an interrupted download resumes (curl -C -), the conversion is skipped when
# the .bmc is newer than the checkpoint.
#
# Environment:
#   BMC_HF_BASE      where the Hugging Face repo's files are (default: the resolve/main URL of
#                    microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224). Anything curl
#                    reads (https://..., file:///dir) or a plain local directory (a mirror or
#                    an offline copy of the repo).
#   BMC_WEIGHTS_DIR  output directory (default: weights/ next to this script's tools/)
#   PYTHON           Python 3 for tools/convert.py (standard library only; default python3)
#   SHARED_DATA      if $SHARED_DATA/images holds the example images, they are not downloaded
#   BMC_EXPECT_SHA256, BMC_EXPECT_SIZE
#                    replace the expected checkpoint sha256 / size. For tests that serve a fake
#                    snapshot only: never set them to fetch the real model.
#
# Options: --no-examples (skip the example images), --examples-only.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
HF_REPO=microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224
BASE=${BMC_HF_BASE:-https://huggingface.co/$HF_REPO/resolve/main}
OUT=${BMC_WEIGHTS_DIR:-$here/weights}
PYTHON=${PYTHON:-python3}
SHARED_DATA=${SHARED_DATA:-$here/../shared/data}

# The current checkpoint (HF "Update ckpt."; spec section 10 item 2). The 2023 one differs.
CKPT=open_clip_pytorch_model.bin
CKPT_SHA256=${BMC_EXPECT_SHA256:-52cc993c5c5ff962bd0c60931874bc001e7e9b41666a385530f4a036294576be}
CKPT_SIZE=${BMC_EXPECT_SIZE:-783705670}

EXAMPLES_PATH=example_data/biomed_image_classification_example_data
EXAMPLES=( # name sha256 (shared/data/images/SOURCES.md)
  "H_and_E_histopathology.jpg fb1b0e2adc9858d8972a7739fb43b022f0be3b677f5d6405b45d7555b3231b05"
  "IHC_histopathology.jpg 1bbba7a4acc84d2e93572823fe3467f201d98b2d9b8c413bf4e1d37892aac69f"
  "adenocarcinoma_histopathology.jpg f9361790bf53556a11c452173b44ff32bfd8d920824b9d202b215a19dce9e43d"
  "bone_X-ray.jpg 8e7d61839700fcd506b3f9fa320b7b10dd69d77557c377a85049e0d7f2b9e7ea"
  "brain_MRI.jpg afdabc2afad6480f754fbabe1a90589cfe59bd870d4510262a81b8b098596ccf"
  "chest_X-ray.jpg 4cbbcf805291db949e4ff085ca3c7258b2823de21b2857ae684e6c91ff9a38a4"
  "covid_line_chart.png 3710620efa33c0d3394b8f69374b0e803f642730562ae5ce7b140229f28d858f"
  "pie_chart.png c1f32b2b48970ee2820e8470c1c8138c2413253f695be1498a8da424d5526a38"
  "squamous_cell_carcinoma_histopathology.jpeg 1dce0422227b914e221744e95c31b0fe83f7384de72105e01e529a6f91360442"
)

want_model=1 want_examples=1
for a in "$@"; do
  case $a in
    --no-examples) want_examples=0 ;;
    --examples-only) want_model=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_weights.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

say() { echo "fetch_weights: $*" >&2; }
die() { say "error: $*"; exit 1; }
filesize() { stat -c %s "$1"; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

# fetch REL DEST: copy or download BASE/REL to DEST via DEST.part (resumed if present).
fetch() {
  local rel=$1 dest=$2
  mkdir -p "$(dirname "$dest")"
  if [ -d "$BASE" ]; then
    [ -f "$BASE/$rel" ] || { say "$BASE/$rel: not found"; return 1; }
    cp "$BASE/$rel" "$dest.part"
  else
    command -v curl >/dev/null || die "curl is needed to download $BASE/$rel"
    say "downloading $BASE/$rel"
    local progress=-sS; [ -t 2 ] && progress=--progress-bar
    curl -fL --retry 3 --retry-delay 2 $progress -C - -o "$dest.part" "$BASE/$rel" || {
      say "download of $BASE/$rel failed (rerun to resume)"; return 1; }
  fi
  mv "$dest.part" "$dest"
}

# The checkpoint goes CKPT.unverified.part (download, resumable) -> CKPT.unverified (complete)
# -> CKPT (size and sha256 checked).
fetch_checkpoint() {
  local dest=$OUT/hf/$CKPT stage=$OUT/hf/$CKPT.unverified size sum
  [ -f "$dest" ] && return 0
  if [ ! -f "$stage" ]; then
    if [ -f "$stage.part" ] && [ "$(filesize "$stage.part")" -gt "$CKPT_SIZE" ]; then
      say "discarding an oversized partial download"; rm -f "$stage.part"
    fi
    if [ -f "$stage.part" ] && [ "$(filesize "$stage.part")" -eq "$CKPT_SIZE" ]; then
      mv "$stage.part" "$stage" # complete: resuming would be refused (HTTP 416)
    else
      fetch "$CKPT" "$stage" || die "could not fetch $CKPT"
    fi
  fi
  size=$(filesize "$stage")
  [ "$size" -eq "$CKPT_SIZE" ] || { rm -f "$stage"; die "$CKPT has $size bytes, expected $CKPT_SIZE"; }
  say "checking the sha256 of $CKPT"
  sum=$(sha256 "$stage")
  [ "$sum" = "$CKPT_SHA256" ] || { rm -f "$stage"; die "$CKPT has sha256 $sum, expected $CKPT_SHA256"; }
  mv "$stage" "$dest"
}

if [ $want_model = 1 ]; then
  mkdir -p "$OUT/hf"
  fetch_checkpoint
  for f in open_clip_config.json vocab.txt; do
    [ -f "$OUT/hf/$f" ] || fetch "$f" "$OUT/hf/$f" || die "could not fetch $f"
  done
  [ -f "$OUT/hf/tokenizer.json" ] || fetch tokenizer.json "$OUT/hf/tokenizer.json" ||
    say "tokenizer.json not fetched (not needed: vocab.txt is used)"

  bmc=$OUT/biomedclip.bmc
  if [ -f "$bmc" ] && [ "$bmc" -nt "$OUT/hf/$CKPT" ]; then
    say "$bmc is up to date"
  else
    say "converting to $bmc"
    "$PYTHON" "$here/tools/convert.py" "$OUT/hf" -o "$bmc"
  fi
fi

if [ $want_examples = 1 ]; then
  have_shared=1
  for e in "${EXAMPLES[@]}"; do [ -f "$SHARED_DATA/images/${e%% *}" ] || have_shared=0; done
  if [ $have_shared = 1 ]; then
    say "example images: using $SHARED_DATA/images"
  else
    dir=$OUT/hf/$EXAMPLES_PATH
    for e in "${EXAMPLES[@]}"; do
      name=${e%% *} want=${e##* }
      if [ ! -f "$dir/$name" ]; then
        fetch "$EXAMPLES_PATH/$name" "$dir/$name" || die "could not fetch $name"
      fi
      sum=$(sha256 "$dir/$name")
      [ "$sum" = "$want" ] || { rm -f "$dir/$name"; die "$name sha256 $sum, expected $want"; }
    done
    say "example images: $dir"
  fi
fi
