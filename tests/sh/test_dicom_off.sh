#!/usr/bin/env bash
# `make DICOM=0`: the library builds without DCMTK (into $BUILD-nodicom), links without its
# libraries, says so in bmc_system_info, and refuses a DICOM file naming the build option, while
# other formats still decode. The default build's DICOM support is tested by tests/py/test_dicom.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case "$BUILD" in *-sanitize*|*-turbo*)
  echo "test_dicom_off: run by the plain build only"; exit 0;;
esac
NB=$BUILD-nodicom
t0=$(date +%s)
MAKEFLAGS= MAKEOVERRIDES= make -s -j2 DICOM=0 BUILD="$BUILD" "$NB/biomedclip" "$NB/libbiomedclip.a" >/dev/null
echo "test_dicom_off: built $NB in $(( $(date +%s) - t0 )) s"
fail() { echo "test_dicom_off: FAIL: $*"; exit 1; }
[ "$(nm "$NB/libbiomedclip.a" 2>/dev/null | grep -c ' T bmc__decode_dicom')" -eq 0 ] || fail "the DICOM decoder is in $NB"
[ "$(ldd "$NB/biomedclip" | grep -c dcm)" -eq 0 ] || fail "$NB/biomedclip links DCMTK"
mr=/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small.dcm
[ -f "$mr" ] || fail "$mr missing (python3-pydicom, tools/deps-debian.txt)"
set +e
err=$("$NB/biomedclip" info-image "$mr" 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 1 ] || fail "info-image on DICOM exits $rc, want 1"
case "$err" in *"DICOM support not built in (rebuild without DICOM=0, needs libdcmtk-dev)"*) ;;
  *) fail "message: $err";; esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'P5 2 1 255 \001\377' > "$tmp/a.pgm"
"$NB/biomedclip" info-image "$tmp/a.pgm" | grep -q "format           PNM" || fail "a PGM does not decode"
echo "test_dicom_off: ok (DICOM refused naming DICOM=0; other formats decode)"
