#!/usr/bin/env bash
# demo.sh - `make demo`: fetch the weights and example images if absent, then print the zero-shot
# table of the BiomedCLIP notebook (biomed_clip_example.ipynb): its 9 images, its labels in its
# order, its template "this is a photo of ". Ends with how many top-1 labels agree with the
# notebook's own run (open_clip, current checkpoint).
#
# Environment: CLI (the biomedclip binary; default build/biomedclip), BMC_WEIGHTS_DIR (weights/),
# BIOMEDCLIP_MODEL (default $BMC_WEIGHTS_DIR/biomedclip.bmc), SHARED_DATA, PYTHON, and whatever
# tools/fetch_weights.sh reads (BMC_HF_BASE, ...).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
CLI=${CLI:-$here/build/biomedclip}
OUT=${BMC_WEIGHTS_DIR:-$here/weights}
MODEL=${BIOMEDCLIP_MODEL:-$OUT/biomedclip.bmc}
SHARED_DATA=${SHARED_DATA:-$here/../shared/data}
export BMC_WEIGHTS_DIR=$OUT SHARED_DATA

# The notebook's image order; the top-1 label its run printed for each (all nine are right).
IMAGES=(
  "squamous_cell_carcinoma_histopathology.jpeg|squamous cell carcinoma histopathology"
  "H_and_E_histopathology.jpg|hematoxylin and eosin histopathology"
  "bone_X-ray.jpg|bone X-ray"
  "adenocarcinoma_histopathology.jpg|adenocarcinoma histopathology"
  "covid_line_chart.png|covid line chart"
  "IHC_histopathology.jpg|immunohistochemistry histopathology"
  "chest_X-ray.jpg|chest X-ray"
  "brain_MRI.jpg|brain MRI"
  "pie_chart.png|pie chart"
)
LABELS="adenocarcinoma histopathology,brain MRI,covid line chart,squamous cell carcinoma histopathology,"
LABELS+="immunohistochemistry histopathology,bone X-ray,chest X-ray,pie chart,hematoxylin and eosin histopathology"

[ -x "$CLI" ] || { echo "demo: $CLI not built (run make)" >&2; exit 1; }
if [ ! -f "$MODEL" ]; then bash "$here/tools/fetch_weights.sh" --no-examples; fi

dir=$SHARED_DATA/images
for e in "${IMAGES[@]}"; do
  if [ ! -f "$dir/${e%%|*}" ]; then
    dir=$OUT/hf/example_data/biomed_image_classification_example_data
    [ -f "$dir/${e%%|*}" ] || bash "$here/tools/fetch_weights.sh" --examples-only
    break
  fi
done
files=()
for e in "${IMAGES[@]}"; do files+=("${e%%|*}"); done
CLI=$(realpath "$CLI") MODEL=$(realpath "$MODEL")
cd "$dir" # the tables then name the files as the notebook does

echo "model: $MODEL"
echo "images: $dir"
echo "template: \"this is a photo of \""
echo
"$CLI" classify -m "$MODEL" --template "this is a photo of " --labels "$LABELS" "${files[@]}"

# top-1 agreement with the notebook's published run
agree=0
top1=$("$CLI" classify -m "$MODEL" --template "this is a photo of " --labels "$LABELS" --top 1 \
         --format tsv "${files[@]}" | cut -f2)
i=0
while IFS= read -r label; do
  [ "$label" = "${IMAGES[$i]#*|}" ] && agree=$((agree + 1))
  i=$((i + 1))
done <<< "$top1"
echo "top-1 label agrees with the notebook's open_clip run for $agree of ${#IMAGES[@]} images"
