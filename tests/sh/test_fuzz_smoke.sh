#!/usr/bin/env bash
# Fuzz smoke test: builds the libFuzzer targets (make fuzz: clang, ASan + UBSan), replays each
# committed corpus (fuzz/corpus/<target>: every seed must pass), then fuzzes each target for
# FUZZ_SECONDS (default 20) on a scratch copy of its corpus. Any crash, sanitizer report, leak
# or harness assertion fails the test; the failing input is kept in $FUZZ_BUILD/artifacts.
# Longer runs: docs/ROBUSTNESS.md ("Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case "$BUILD" in *-sanitize)
  echo "test_fuzz_smoke: the fuzz targets are ASan/UBSan builds already; run by the plain 'make test'"; exit 0;;
esac
FUZZ_BUILD=${FUZZ_BUILD:-$BUILD-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
export BMC_FUZZ_MODEL=${BMC_FUZZ_MODEL:-$BMC_TESTDATA/tiny.bmc}
export OPENBLAS_NUM_THREADS=1
if ! command -v clang >/dev/null; then echo "test_fuzz_smoke: clang is required (tools/deps-debian.txt)"; exit 1; fi
t0=$(date +%s)
# MAKEFLAGS cleared: variables of an enclosing make (JPEG=turbo, SANITIZE=1) must not change this build
MAKEFLAGS= MAKEOVERRIDES= make -s -j2 BUILD="$BUILD" FUZZ_BUILD="$FUZZ_BUILD" fuzz >/dev/null
echo "test_fuzz_smoke: built the fuzz targets in $(( $(date +%s) - t0 )) s"
art=$(cd "$FUZZ_BUILD" && pwd)/artifacts
mkdir -p "$art"
fail=0
# fuzz_dicom's seeds are made now (fuzz/gen_dicom_seeds.py: pydicom's files, files made with
# pydicom and DCMTK's tools; nothing committed); a build without DICOM has no such target
targets="loader image tiff tokenize cli"
if nm "$FUZZ_BUILD/obj/lib/image_dicom.o" >/dev/null 2>&1; then
  mkdir -p "$FUZZ_BUILD/corpus-dicom"
  ${PYTHON:-/usr/bin/python3} fuzz/gen_dicom_seeds.py "$FUZZ_BUILD/corpus-dicom" >/dev/null
  targets="$targets dicom"
fi
for target in $targets; do
  corpus=fuzz/corpus/$target
  [ "$target" = dicom ] && corpus=$FUZZ_BUILD/corpus-dicom
  bin=$FUZZ_BUILD/fuzz_$target
  opts=(-timeout=60 -rss_limit_mb=4096 -artifact_prefix="$art/$target-" -print_final_stats=1)
  case $target in
    loader) opts+=(-max_len=16384);;
    image|tiff) opts+=(-max_len=8192);;
    dicom) opts+=(-max_len=16384);;
    cli) opts+=(-max_len=1024 -close_fd_mask=2);;
  esac
  log=$FUZZ_BUILD/$target.log
  # 1. the committed seeds, each once
  if ! "$bin" "${opts[@]}" -runs=0 "$corpus" > "$log.seeds" 2>&1; then
    echo "FAIL fuzz_$target: a committed seed fails"; tail -30 "$log.seeds"; fail=1; continue
  fi
  # 2. fuzzing for a bounded time on a scratch copy (absolute path: fuzz_cli changes directory)
  work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_$target.XXXXXX")
  cp -r "$corpus/." "$work/"
  t=$(date +%s)
  if "$bin" "${opts[@]}" -max_total_time="$FUZZ_SECONDS" "$work" > "$log" 2>&1; then
    runs=$(grep -o "stat::number_of_executed_units: [0-9]*" "$log" | grep -o "[0-9]*$" || echo "?")
    echo "ok   fuzz_$target: $(ls "$corpus" | wc -l) seeds pass; $runs executions in $(( $(date +%s) - t )) s, no finding"
  else
    echo "FAIL fuzz_$target: finding (log $log, input in $art)"; grep -A25 -m1 "ERROR\|runtime error\|==ERROR\|deadly" "$log" | head -40
    fail=1
  fi
  rm -rf "$work"
done
[ "$fail" -eq 0 ]
