#!/usr/bin/env bash
# valgrind memcheck over CLI runs on real inputs with the tiny model: info, tokenize,
# embed-image (every shared example image, plus a corrupt and a missing file), embed-text,
# classify, index and search. Every run must report zero memcheck errors and no definitely or
# indirectly lost bytes (--errors-for-leak-kinds=definite,indirect turns a leak into an error).
#
# The CLI is rebuilt without -march=native into $BUILD-valgrind: this machine's compiler would
# emit AVX-512, which valgrind 3.19 cannot run. OpenBLAS picks its kernels from the CPUID that
# valgrind presents (no AVX-512) and runs with OPENBLAS_NUM_THREADS=1 (no worker threads, less
# noise). No suppression file is needed (none is used: a report is a failure).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case "$BUILD" in *-sanitize)
  echo "test_valgrind: valgrind runs its own plain build; run by the plain 'make test'"; exit 0;;
esac
VB=${BUILD%-sanitize}-valgrind
export BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
if ! command -v valgrind >/dev/null; then echo "test_valgrind: valgrind is required (tools/deps-debian.txt)"; exit 1; fi
t0=$(date +%s)
# MAKEFLAGS cleared: variables of an enclosing make (JPEG=turbo, SANITIZE=1) must not change this build
MAKEFLAGS= MAKEOVERRIDES= make -s -j2 BUILD="$VB" OPT="-O2 -g -fno-omit-frame-pointer" "$VB/biomedclip" >/dev/null
echo "test_valgrind: built $VB/biomedclip in $(( $(date +%s) - t0 )) s"
CLI=$VB/biomedclip
TINY=$BMC_TESTDATA/tiny.bmc
IMG=$SHARED_DATA/images
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bmc_valgrind.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1 BIOMEDCLIP_MODEL=$TINY

printf 'not an image' > "$tmp/corrupt.png"
head -c 3000 "$IMG/bone_X-ray.jpg" > "$tmp/truncated.jpg"
printf 'chest X-ray\nbrain MRI\n\nhistopathology\n' > "$tmp/labels.txt"
mkdir -p "$tmp/tree/sub"
cp "$IMG/bone_X-ray.jpg" "$IMG/covid_line_chart.png" "$tmp/tree/"
cp "$IMG/adenocarcinoma_histopathology.jpg" "$tmp/tree/sub/"

# a deliberate leak and a deliberate bad read must be reported, or clean runs prove nothing
cat > "$tmp/bad.c" <<'C'
#include <stdlib.h>
#include <string.h>
int main(void) { char *p = malloc(64); strcpy(p, "leak"); p = 0; char *q = malloc(8); int r = q[9] == 1; free(q); return r; }
C
cc -O0 -g -o "$tmp/bad" "$tmp/bad.c"
rc=0; valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --log-file="$tmp/bad.log" "$tmp/bad" || rc=$?
if [ "$rc" != 99 ] || ! grep -q "definitely lost" "$tmp/bad.log" || ! grep -q "Invalid read" "$tmp/bad.log"; then
  echo "test_valgrind: FAIL: valgrind did not report a deliberate leak and bad read (exit $rc)"; exit 1
fi

pass=0; fail=0
vg() { # expected-exit-code, name, CLI arguments...
  local want=$1 name=$2; shift 2
  local log="$tmp/vg.$pass.$fail.log" t=$(date +%s) rc=0
  valgrind -q --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --track-origins=yes --log-file="$log" \
    "$CLI" "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
  local errs=$(grep -m1 -o "ERROR SUMMARY: [0-9]*" "$log" || true)
  if [ "$rc" = "$want" ] && ! grep -q "==[0-9]*==" "$log"; then
    pass=$((pass + 1))
    echo "ok   $name: exit $rc, no memcheck error, no leak ($(( $(date +%s) - t )) s, $(wc -l < "$tmp/out") output lines)"
  else
    fail=$((fail + 1))
    echo "FAIL $name: exit $rc (want $want)"; sed 's/^/     | /' "$log" | head -60; sed 's/^/     stderr| /' "$tmp/err" | head -5
  fi
}

vg 0 "info"           info
# DICOM through DCMTK (DICOM builds): every decoded syntax kind and the refusals, every frame
if [ "$(nm "$CLI" 2>/dev/null | grep -c bmc__decode_dicom)" -gt 0 ]; then  # (grep -q would SIGPIPE nm under pipefail)
  PD=/usr/lib/python3/dist-packages/pydicom/data/test_files
  vg 1 "info-image --frames all on DICOM (JPEG-LS, RLE, 12-bit JPEG, deflate, YBR, BE 32-bit; J2K, RT plan, truncated)" \
    info-image --frames all "$PD/MR_small_jpeg_ls_lossless.dcm" "$PD/SC_rgb_rle_2frame.dcm" "$PD/JPGExtended.dcm" \
    "$PD/image_dfl.dcm" "$PD/SC_rgb_jpeg_dcmtk.dcm" "$PD/SC_ybr_full_422_uncompressed.dcm" "$PD/rtdose_expb.dcm" \
    "$PD/JPEG2000.dcm" "$PD/rtplan.dcm" "$PD/MR_truncated.dcm"
fi
vg 0 "info --verify"  info --verify
vg 0 "tokenize"       tokenize --json "this is a photo of chest X-ray" "Café naïve résumé" "腫瘍 の 画像" "" \
                      "$(printf 'bad \xff\xfe utf-8')"
vg 0 "tokenize --file" tokenize --file "$tmp/labels.txt"
vg 0 "embed-image (9 shared images)" embed-image --json "$IMG"/*.jpg "$IMG"/*.jpeg "$IMG"/*.png
vg 1 "embed-image with a corrupt, a truncated and a missing file" embed-image \
     "$IMG/bone_X-ray.jpg" "$tmp/corrupt.png" "$tmp/truncated.jpg" "$tmp/missing.png" "$IMG/covid_line_chart.png"
vg 0 "embed-text"     embed-text --json "this is a photo of chest X-ray" "" "$(printf 'x%.0s' $(seq 1 3000))"
vg 0 "embed-text --file" embed-text --raw --file "$tmp/labels.txt"
vg 0 "classify"       classify --labels "chest X-ray,brain MRI,bone X-ray" --top 2 "$IMG/bone_X-ray.jpg" \
                      "$IMG/brain_MRI.jpg"
vg 0 "classify --labels-file --json" classify --labels-file "$tmp/labels.txt" --json "$IMG/adenocarcinoma_histopathology.jpg"
vg 2 "classify without labels" classify "$IMG/bone_X-ray.jpg"
vg 3 "a missing model" info -m "$tmp/missing.bmc"
vg 0 "index"          index -o "$tmp/idx" --quiet "$tmp/tree"
vg 0 "search --text"  search "$tmp/idx" --text "a chart" --top 2
vg 0 "search --image" search "$tmp/idx" --image "$IMG/bone_X-ray.jpg" --format json

echo "test_valgrind: $pass runs clean, $fail failed ($(( $(date +%s) - t0 )) s in all)"
[ "$fail" -eq 0 ]
