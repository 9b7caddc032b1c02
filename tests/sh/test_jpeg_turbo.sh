#!/usr/bin/env bash
# test_jpeg_turbo.sh - the JPEG=turbo build: JPEG decoded by libjpeg-turbo with PIL's settings.
# Builds the library, tests/test_image and tests/tool_image_crop with `make JPEG=turbo` (into
# $BUILD-turbo, its own directory), runs the image unit tests against that build (truncated and
# corrupt JPEGs go through libjpeg's error handling there), then the JPEG part of the pixel test
# (tests/py/test_image_pixels.py --jpeg-only): every JPEG crop must be byte-identical to PIL's.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
# The Makefile names a build $BASE[-turbo][-sanitize]; under `make sanitize` the turbo build is
# sanitized too. SANITIZE and the parent's MAKEFLAGS are cleared so that only what is given here
# decides the directory.
SAN=; B0=$BUILD
case "$B0" in *-sanitize) SAN=1; B0=${B0%-sanitize} ;; esac
BASE=${B0%-turbo}
TB=$BASE-turbo${SAN:+-sanitize}
echo "building $TB (make JPEG=turbo${SAN:+ SANITIZE=1})"
if ! env -u SANITIZE -u JPEG MAKEFLAGS= MAKEOVERRIDES= make -s -j2 JPEG=turbo ${SAN:+SANITIZE=1} BUILD="$BASE" \
     "$TB/tests/test_image" "$TB/tests/tool_image_crop" >/dev/null; then
  echo "FAIL: make JPEG=turbo failed"; exit 1
fi
"$TB/tests/tool_image_crop" --info | grep -qx "jpeg=turbo" || { echo "FAIL: $TB does not decode JPEG with libjpeg-turbo"; exit 1; }
CMOCKA_MESSAGE_OUTPUT=stdout "$TB/tests/test_image" || { echo "FAIL: test_image on the JPEG=turbo build"; exit 1; }
BUILD="$TB" "$PYTHON" -W ignore tests/py/test_image_pixels.py --jpeg-only || { echo "FAIL: JPEG pixels (turbo)"; exit 1; }
echo "PASS"
