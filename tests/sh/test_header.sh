#!/usr/bin/env bash
# include/biomedclip.h compiles as C99 (-pedantic) and as C++11 with warnings as errors, and a
# program of each kind links against $BUILD/libbiomedclip.a and runs (tests/header/header_check.c).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
lib=$BUILD/libbiomedclip.a
[ -f "$lib" ] || { echo "test_header: $lib not built"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
libs="-lopenblas -lm -lpthread"
nm "$lib" 2>/dev/null > "$tmp/nm.txt" || true
grep -q ' U jpeg_' "$tmp/nm.txt" && libs="$libs -ljpeg"
# DICOM builds (lib/image_dicom.cc): DCMTK and the C++ runtime, as tools/biomedclip.pc lists them
grep -q ' T bmc__decode_dicom' "$tmp/nm.txt" && libs="$libs -ldcmjpls -ldcmjpeg -ldcmimgle -ldcmdata -loflog -lofstd -lz -lstdc++"
grep -q ' U TIFF' "$tmp/nm.txt" && libs="$libs -ltiff"
grep -q ' U openslide_' "$tmp/nm.txt" && libs="$libs -lopenslide"
grep -q ' U cms' "$tmp/nm.txt" && libs="$libs -llcms2"
case $BUILD in *-sanitize*) libs="$libs -fsanitize=address,undefined" ;; esac

set -x
gcc -std=c99 -pedantic -Wall -Wextra -Werror -Iinclude -x c tests/header/header_check.c -x none -o "$tmp/c99" "$lib" $libs
g++ -std=c++11 -pedantic -Wall -Wextra -Werror -Iinclude -x c++ tests/header/header_check.c -x none -o "$tmp/cxx11" "$lib" $libs
# the header alone, in both languages, with the strictest useful flags
echo '#include <biomedclip.h>' > "$tmp/h.c"
gcc -std=c99 -pedantic -Wall -Wextra -Wstrict-prototypes -Werror -Iinclude -fsyntax-only "$tmp/h.c"
g++ -std=c++11 -pedantic -Wall -Wextra -Werror -Iinclude -fsyntax-only -x c++ "$tmp/h.c"
"$tmp/c99"
"$tmp/cxx11"
