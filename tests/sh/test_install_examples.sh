#!/usr/bin/env bash
# `make install PREFIX=<temp>`, then build examples/zero_shot.c and examples/embed_folder.c against
# the installed prefix with `pkg-config --cflags --libs --static biomedclip` (linked against the
# shared library, and against the static one), and run them on the tiny model and the shared
# example images. Their numbers must equal what the installed `biomedclip` CLI prints.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
PYTHON=${PYTHON:-/usr/bin/python3}
MODEL=$BMC_TESTDATA/tiny.bmc
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }
[ -f "$MODEL" ] || fail "no test model $MODEL"

# the build variant this test runs under (make appends -stb / -notiff / -nolcms / -nodicom /
# -noslide / -sanitize to BUILD)
base=$BUILD make_vars=() extra_cflags=()
case $base in *-sanitize) base=${base%-sanitize}; make_vars+=(SANITIZE=1); extra_cflags+=(-fsanitize=address,undefined) ;; esac
case $base in *-noslide) base=${base%-noslide}; make_vars+=(SLIDE=0) ;; esac
case $base in *-nodicom) base=${base%-nodicom}; make_vars+=(DICOM=0) ;; esac
case $base in *-nolcms) base=${base%-nolcms}; make_vars+=(LCMS=0) ;; esac
case $base in *-notiff) base=${base%-notiff}; make_vars+=(TIFF=0) ;; esac
case $base in *-stb) base=${base%-stb}; make_vars+=(JPEG=stb) ;; esac

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
make -s --no-print-directory BUILD="$base" "${make_vars[@]}" install PREFIX="$prefix" >"$tmp/make.log" 2>&1 ||
  { cat "$tmp/make.log"; fail "make install"; }
for f in include/biomedclip.h lib/libbiomedclip.a lib/libbiomedclip.so lib/pkgconfig/biomedclip.pc bin/biomedclip; do
  [ -e "$prefix/$f" ] || fail "make install did not write $f"
done
ok "make install PREFIX=$prefix: header, static + shared library, biomedclip.pc, bin/biomedclip"

version=$(sed -n 's/^#define BMC_VERSION_STRING "\(.*\)"/\1/p' include/biomedclip.h)
soname=$(readelf -d "$prefix/lib/libbiomedclip.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libbiomedclip.so.${version%%.*}" ] || fail "soname '$soname'"
[ "$(readlink "$prefix/lib/libbiomedclip.so")" = "$soname" ] || fail "libbiomedclip.so does not point at $soname"
[ -f "$prefix/lib/libbiomedclip.so.$version" ] || fail "no libbiomedclip.so.$version"
ok "shared library: soname $soname -> libbiomedclip.so.$version"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --modversion biomedclip)" = "$version" ] || fail "pkg-config --modversion"
flags=$(pkg-config --cflags --libs --static biomedclip)
echo "     pkg-config --cflags --libs --static biomedclip: $flags"
case " $flags " in *" -lbiomedclip "*"-lopenblas "*) ;; *) fail "pkg-config flags lack -lbiomedclip ... -lopenblas" ;; esac
nm "$BUILD/libbiomedclip.a" > "$tmp/nm.txt" 2>/dev/null || true
if grep -q ' U jpeg_' "$tmp/nm.txt"; then
  case " $flags " in *" -ljpeg "*) ;; *) fail "a libjpeg build must list -ljpeg in Libs.private" ;; esac
fi
if grep -q ' U cmsCreateTransform' "$tmp/nm.txt"; then
  case " $flags " in *" -llcms2 "*) ;; *) fail "an lcms2 build must list -llcms2 in Libs.private" ;; esac
fi
if grep -q ' U TIFFClientOpen' "$tmp/nm.txt"; then
  case " $flags " in *" -ltiff "*) ;; *) fail "a libtiff build must list -ltiff in Libs.private" ;; esac
fi
static_flags=${flags/-lbiomedclip/-l:libbiomedclip.a}
for ex in zero_shot embed_folder; do
  cc -std=c99 -Wall -Wextra -Werror "${extra_cflags[@]}" "examples/$ex.c" $flags -o "$tmp/$ex" ||
    fail "building examples/$ex.c with pkg-config"
  cc -std=c99 -Wall -Wextra -Werror "${extra_cflags[@]}" "examples/$ex.c" $static_flags -o "$tmp/$ex.static" ||
    fail "building examples/$ex.c against libbiomedclip.a"
done
deps=$(ldd "$tmp/zero_shot.static") # (no `ldd | grep -q` under pipefail: SIGPIPE)
case $deps in *libbiomedclip*) fail "the static build still needs libbiomedclip.so" ;; esac
ok "examples built with pkg-config (shared and static libbiomedclip)"
# as README's recipe leaves a user: no LD_LIBRARY_PATH, the library found through biomedclip.pc's rpath
unset LD_LIBRARY_PATH
deps=$(ldd "$tmp/zero_shot")
case $deps in *"$prefix/lib/$soname"*) ;; *) fail "zero_shot does not load $prefix/lib/$soname without LD_LIBRARY_PATH" ;; esac
case $("$prefix/bin/biomedclip" --version) in *"$version"*) ;; *) fail "installed biomedclip --version" ;; esac

# zero_shot vs the installed CLI's classify
img=$SHARED_DATA/images/chest_X-ray.jpg
labels=("chest X-ray" "brain MRI" "pie chart" "bone X-ray")
for v in zero_shot zero_shot.static; do
  "$tmp/$v" "$MODEL" "$img" "${labels[@]}" > "$tmp/$v.out" || fail "$v exited $?"
done
cmp -s "$tmp/zero_shot.out" "$tmp/zero_shot.static.out" || fail "shared and static zero_shot differ"
"$prefix/bin/biomedclip" classify -m "$MODEL" --json --labels "$(IFS=,; echo "${labels[*]}")" "$img" > "$tmp/cli.json" ||
  fail "installed biomedclip classify"
"$PYTHON" - "$tmp/zero_shot.out" "$tmp/cli.json" "${labels[@]}" <<'EOF' || fail "zero_shot output"
import json, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
cli = json.loads(open(sys.argv[2]).read())
labels = sys.argv[3:]
probs = [float(r[0]) for r in rows]
assert [r[1] for r in rows] == labels, rows
assert abs(sum(probs) - 1) < 1e-6, sum(probs)
diff = max(abs(a - b) for a, b in zip(probs, cli["probs"]))
print("     zero_shot: %s; max diff to `biomedclip classify` %.3g" % (["%.6f" % p for p in probs], diff))
assert diff == 0, diff
EOF
ok "examples/zero_shot: probabilities sum to 1 and equal biomedclip classify's"

# embed_folder vs the installed CLI's index
mkdir -p "$tmp/images"
for f in "$SHARED_DATA"/images/*.jpg "$SHARED_DATA"/images/*.jpeg "$SHARED_DATA"/images/*.png; do cp "$f" "$tmp/images/"; done
echo "not an image" > "$tmp/images/README.txt"
for v in embed_folder embed_folder.static; do
  "$tmp/$v" "$MODEL" "$tmp/images" "$tmp/$v.f32" > "$tmp/$v.out" 2> "$tmp/$v.err" || { cat "$tmp/$v.err"; fail "$v exited"; }
done
grep -q README.txt "$tmp/embed_folder.err" || fail "embed_folder did not report the non-image"
cmp -s "$tmp/embed_folder.f32" "$tmp/embed_folder.static.f32" || fail "shared and static embed_folder differ"
"$prefix/bin/biomedclip" index -m "$MODEL" --batch 1 -o "$tmp/index" "$tmp/images" || fail "installed biomedclip index"
"$PYTHON" - "$tmp/embed_folder.out" "$tmp/embed_folder.f32" "$tmp/index" <<'EOF' || fail "embed_folder output"
import sys
import numpy as np
lines = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
idx = np.load(sys.argv[3] + "/embeddings.npy")
paths = open(sys.argv[3] + "/paths.txt").read().splitlines()
emb = np.fromfile(sys.argv[2], "<f4").reshape(len(lines), -1)
assert [int(l[0]) for l in lines] == list(range(len(lines)))
assert [l[1] for l in lines] == paths, (lines, paths)
assert len(paths) == 9 and emb.shape == idx.shape, (emb.shape, idx.shape)
diff = float(np.abs(emb - idx).max())
print("     embed_folder: %d x %d embeddings; max diff to `biomedclip index` %.3g" % (emb.shape + (diff,)))
assert diff <= 1e-6, diff
EOF
ok "examples/embed_folder: 9 rows, equal to biomedclip index's (non-image skipped)"
