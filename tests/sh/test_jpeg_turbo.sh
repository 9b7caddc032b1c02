#!/usr/bin/env bash
# test_jpeg_turbo.sh - the build without the optional image libraries. The default build decodes
# JPEG with libjpeg-turbo with PIL's settings (its crops must equal PIL's byte for byte:
# tests/py/test_image_pixels.py checks that on the default build) and TIFF with libtiff; this test
# checks that the build under test really is that one, then builds `make JPEG=stb TIFF=0`
# (stb_image, no libtiff; into $BASE-stb-notiff, its own directory), runs the image unit tests
# against it (truncated and corrupt JPEGs go through stb's path and bmc__jpeg_scan's guards there;
# test_image_tiff and test_tiff_pixels.py check that every TIFF is refused naming TIFF=0) and the
# JPEG part of the pixel test, which measures stb's crops (close, not exact).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
# The Makefile names a build $BASE[-stb][-notiff][-sanitize]; under `make sanitize` the stb build
# is sanitized too. SANITIZE, JPEG and the parent's MAKEFLAGS are cleared so that only what is
# given here decides the directory.
SAN=; B0=$BUILD
case "$B0" in *-sanitize) SAN=1; B0=${B0%-sanitize} ;; esac
NOTIFF=; case "$B0" in *-notiff) NOTIFF=1; B0=${B0%-notiff} ;; esac
BASE=${B0%-stb}
if [ "$B0" = "$BASE" ]; then  # a default build: libjpeg-turbo is installed (tools/deps-debian.txt)
  if [ -x "$BUILD/tests/tool_image_crop" ]; then
    "$BUILD/tests/tool_image_crop" --info | grep -qx "jpeg=turbo" ||
      { echo "FAIL: the default build $BUILD does not decode JPEG with libjpeg-turbo (is libjpeg62-turbo-dev installed?)"; exit 1; }
    echo "ok: $BUILD decodes JPEG with libjpeg-turbo"
    "$BUILD/tests/tool_image_crop" --info | grep -qx "tiff=1" ||
      { echo "FAIL: the default build $BUILD has no TIFF decoder (is libtiff-dev installed?)"; exit 1; }
    echo "ok: $BUILD decodes TIFF with libtiff"
  fi
fi
SB=$BASE-stb-notiff${SAN:+-sanitize}
echo "building $SB (make JPEG=stb TIFF=0${SAN:+ SANITIZE=1})"
if ! env -u SANITIZE -u JPEG -u TIFF MAKEFLAGS= MAKEOVERRIDES= make -s -j2 JPEG=stb TIFF=0 ${SAN:+SANITIZE=1} \
     BUILD="$BASE" "$SB/tests/test_image" "$SB/tests/test_image_tiff" "$SB/tests/tool_image_crop" >/dev/null; then
  echo "FAIL: make JPEG=stb TIFF=0 failed"; exit 1
fi
"$SB/tests/tool_image_crop" --info | grep -qx "tiff=0" || { echo "FAIL: $SB has a TIFF decoder"; exit 1; }
nm "$SB/libbiomedclip.a" | grep -q " U TIFF" && { echo "FAIL: $SB still references libtiff"; exit 1; }
nm "$SB/libbiomedclip.a" | grep -q " U jpeg_" && { echo "FAIL: $SB still references libjpeg"; exit 1; }
CMOCKA_MESSAGE_OUTPUT=stdout "$SB/tests/test_image_tiff" || { echo "FAIL: test_image_tiff on the TIFF=0 build"; exit 1; }
BUILD="$SB" "$PYTHON" -W ignore tests/py/test_tiff_pixels.py || { echo "FAIL: TIFF=0 refusals"; exit 1; }
"$SB/tests/tool_image_crop" --info | grep -qx "jpeg=stb" || { echo "FAIL: $SB does not decode JPEG with stb_image"; exit 1; }
CMOCKA_MESSAGE_OUTPUT=stdout "$SB/tests/test_image" || { echo "FAIL: test_image on the JPEG=stb build"; exit 1; }
BUILD="$SB" "$PYTHON" -W ignore tests/py/test_image_pixels.py --jpeg-only || { echo "FAIL: JPEG pixels (stb)"; exit 1; }
echo "PASS"
