#!/usr/bin/env bash
# tools/fetch_weights.sh and tools/demo.sh without a network: a fake Hugging Face snapshot is
# served from a local directory (file:// URLs through curl, and the plain-directory mode), made
# from the tiny random checkpoint. Its sha256/size differ from the real checkpoint's, so the
# script must refuse it unless the test overrides the expected values (BMC_EXPECT_SHA256 /
# BMC_EXPECT_SIZE). Checked: refusal without the override, the converted .bmc equals a direct
# tools/convert.py conversion, a rerun does nothing, an interrupted download resumes, a bad
# checksum removes the download, example images are fetched and verified, and the demo prints
# the 9-image table with the fetched model and images.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
PYTHON=${PYTHON:-/usr/bin/python3}
export PYTHON
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }
src=$BMC_TESTDATA/tiny
[ -f "$src/open_clip_pytorch_model.bin" ] || fail "no tiny snapshot in $src"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fake=$tmp/hf-mirror
ex=example_data/biomed_image_classification_example_data
mkdir -p "$fake/$ex"
cp "$src/open_clip_pytorch_model.bin" "$src/open_clip_config.json" "$src/vocab.txt" "$fake/"
cp "$SHARED_DATA"/images/*.jpg "$SHARED_DATA"/images/*.jpeg "$SHARED_DATA"/images/*.png "$fake/$ex/"
ckpt=$fake/open_clip_pytorch_model.bin
sha=$(sha256sum "$ckpt" | cut -d' ' -f1)
size=$(stat -c %s "$ckpt")
"$PYTHON" tools/convert.py "$fake" -o "$tmp/direct.bmc" -q
fetch() { bash tools/fetch_weights.sh "$@"; }
no_shared=$tmp/no-shared-data # forces the example images to be fetched

# 1. the real expected checksum/size: the fake checkpoint is refused, nothing is kept
if BMC_HF_BASE=file://$fake BMC_WEIGHTS_DIR=$tmp/w0 SHARED_DATA=$no_shared fetch > "$tmp/log0" 2>&1; then
  fail "a checkpoint of the wrong size was accepted"
fi
grep -q "expected 783705670" "$tmp/log0" || { cat "$tmp/log0"; fail "no size message"; }
[ ! -e "$tmp/w0/hf/open_clip_pytorch_model.bin" ] && [ ! -e "$tmp/w0/biomedclip.bmc" ] || fail "a refused checkpoint was kept"
ok "without the test override the fake checkpoint is refused (size), nothing kept"
if BMC_HF_BASE=file://$fake BMC_WEIGHTS_DIR=$tmp/w0 BMC_EXPECT_SIZE=$size SHARED_DATA=$no_shared fetch > "$tmp/log0" 2>&1; then
  fail "a checkpoint with the wrong sha256 was accepted"
fi
grep -q "expected 52cc993c5c5ff962bd0c60931874bc001e7e9b41666a385530f4a036294576be" "$tmp/log0" || { cat "$tmp/log0"; fail "no sha256 message"; }
compgen -G "$tmp/w0/hf/open_clip_pytorch_model*" > /dev/null && fail "a checkpoint with a bad sha256 was kept"
ok "right size, wrong sha256: refused and removed"

# 2. with the override, through curl and file:// URLs
export BMC_EXPECT_SHA256=$sha BMC_EXPECT_SIZE=$size
w=$tmp/w1
BMC_HF_BASE=file://$fake BMC_WEIGHTS_DIR=$w SHARED_DATA=$no_shared fetch > "$tmp/log1" 2>&1 || { cat "$tmp/log1"; fail "fetch via file://"; }
cmp -s "$w/hf/open_clip_pytorch_model.bin" "$ckpt" || fail "checkpoint copy differs"
cmp -s "$w/biomedclip.bmc" "$tmp/direct.bmc" || fail "weights/biomedclip.bmc differs from a direct conversion"
for f in "$fake/$ex"/*; do cmp -s "$f" "$w/hf/$ex/$(basename "$f")" || fail "example image $(basename "$f")"; done
grep -q "tokenizer.json not fetched" "$tmp/log1" || fail "a missing optional tokenizer.json should be a note"
ok "file:// fetch: checkpoint checked, converted .bmc = direct conversion, 9 example images verified"

t0=$(stat -c %Y "$w/biomedclip.bmc")
sleep 1
BMC_HF_BASE=file://$tmp/nowhere BMC_WEIGHTS_DIR=$w SHARED_DATA=$no_shared fetch > "$tmp/log2" 2>&1 || { cat "$tmp/log2"; fail "rerun"; }
[ "$(stat -c %Y "$w/biomedclip.bmc")" = "$t0" ] && grep -q "up to date" "$tmp/log2" || fail "a rerun redid work"
ok "rerun with everything present: no download, no conversion"

# 3. an interrupted download resumes where it stopped (curl -C -)
w=$tmp/w2
mkdir -p "$w/hf"
head -c $((size / 3)) "$ckpt" > "$w/hf/open_clip_pytorch_model.bin.unverified.part"
printf 'GARBAGE' | dd of="$w/hf/open_clip_pytorch_model.bin.unverified.part" bs=1 seek=100 conv=notrunc 2>/dev/null
BMC_HF_BASE=file://$fake BMC_WEIGHTS_DIR=$w SHARED_DATA=$no_shared fetch --no-examples > "$tmp/log3" 2>&1 &&
  fail "a resumed download with corrupt first bytes passed the sha256 check"
[ ! -e "$w/hf/open_clip_pytorch_model.bin" ] && [ ! -e "$w/hf/open_clip_pytorch_model.bin.unverified" ] ||
  fail "a corrupt resumed download was kept"
head -c $((size / 3)) "$ckpt" > "$w/hf/open_clip_pytorch_model.bin.unverified.part"
BMC_HF_BASE=file://$fake BMC_WEIGHTS_DIR=$w SHARED_DATA=$no_shared fetch --no-examples > "$tmp/log3" 2>&1 || { cat "$tmp/log3"; fail "resume"; }
cmp -s "$w/hf/open_clip_pytorch_model.bin" "$ckpt" && cmp -s "$w/biomedclip.bmc" "$tmp/direct.bmc" || fail "resumed download"
[ ! -d "$w/hf/example_data" ] || fail "--no-examples fetched examples"
ok "interrupted download: resumed to the right bytes (a corrupt partial file is caught by sha256)"

# 4. a plain directory as the source, the example images from SHARED_DATA when present
w=$tmp/w3
BMC_HF_BASE=$fake BMC_WEIGHTS_DIR=$w SHARED_DATA=$SHARED_DATA fetch > "$tmp/log4" 2>&1 || { cat "$tmp/log4"; fail "directory source"; }
cmp -s "$w/biomedclip.bmc" "$tmp/direct.bmc" && grep -q "using $SHARED_DATA/images" "$tmp/log4" && [ ! -d "$w/hf/example_data" ] ||
  fail "directory source / shared images"
ok "plain-directory source; shared example images used in place"

# 5. a corrupt example image is refused
cp "$fake/$ex/bone_X-ray.jpg" "$tmp/bone.bak"; printf 'x' >> "$fake/$ex/bone_X-ray.jpg"
if BMC_HF_BASE=$fake BMC_WEIGHTS_DIR=$tmp/w4 SHARED_DATA=$no_shared fetch --examples-only > "$tmp/log5" 2>&1; then
  fail "a corrupt example image was accepted"
fi
grep -q "bone_X-ray.jpg sha256" "$tmp/log5" && [ ! -e "$tmp/w4/hf/$ex/bone_X-ray.jpg" ] || { cat "$tmp/log5"; fail "corrupt image message"; }
cp "$tmp/bone.bak" "$fake/$ex/bone_X-ray.jpg"
ok "example image with a wrong sha256: refused"

# 6. the demo with the fetched (tiny) model and fetched images
out=$(CLI=$BUILD/biomedclip BMC_WEIGHTS_DIR=$tmp/w1 SHARED_DATA=$no_shared bash tools/demo.sh 2>&1) || { echo "$out"; fail "demo"; }
echo "$out" | head -14
n=$(echo "$out" | grep -c -E '^(squamous_cell_carcinoma_histopathology.jpeg|H_and_E_histopathology.jpg|bone_X-ray.jpg|adenocarcinoma_histopathology.jpg|covid_line_chart.png|IHC_histopathology.jpg|chest_X-ray.jpg|brain_MRI.jpg|pie_chart.png):$' || true)
[ "$n" = 9 ] || fail "the demo printed $n image tables, expected 9"
for l in "adenocarcinoma histopathology" "bone X-ray" "pie chart" "hematoxylin and eosin histopathology"; do
  [ "$(echo "$out" | grep -c "^  $l ")" = 9 ] || fail "label '$l' not in every table"
done
grep -q "top-1 label agrees with the notebook's open_clip run for [0-9] of 9 images" <<< "$out" || fail "demo summary"
ok "demo: 9 tables of the notebook's 9 labels with the fetched model and images"
