#!/usr/bin/env bash
# test_lib_deps.sh - the structure docs/DESIGN.md describes, checked on the built objects: the
# call graph of lib/ (which object's undefined bmc_ symbols another object defines, from nm) has
# no cycle except the image decoders and their dispatcher (image_decode.c sniffs the format and
# calls each decoder; decoders call its helpers); and only the context and the scheduler
# include context.h (the towers know nothing of threads or chunks).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
objs=$BUILD/obj/lib
[ -d "$objs" ] || { echo "FAIL test_lib_deps: $objs not built"; exit 1; }
fails=0
inc=$(grep -l '#include "context.h"' lib/*.c lib/*.cc 2>/dev/null | sort | tr '\n' ' ')
if [ "$inc" = "lib/context.c lib/run.c " ]; then
  echo "ok   only lib/context.c and lib/run.c include context.h"
else
  echo "FAIL files including context.h: $inc (only lib/context.c lib/run.c may)"; fails=$((fails+1))
fi
"$PYTHON" - "$objs" <<'PY' || fails=$((fails+1))
import glob, os, re, subprocess, sys
defs, uses = {}, {}
for o in sorted(glob.glob(os.path.join(sys.argv[1], "*.o"))):
    m = os.path.basename(o)[:-2]
    uses[m] = set()
    for line in subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout.splitlines():
        p = line.split()
        if len(p) >= 3 and p[1] in "TDRB":
            defs[p[2]] = m
        elif len(p) == 2 and p[0] == "U":
            uses[m].add(p[1])
graph = {m: {defs[s] for s in u if s in defs and defs[s] != m} for m, u in uses.items()}
index, low, stack, on, comps = {}, {}, [], set(), []
def visit(v):
    index[v] = low[v] = len(index); stack.append(v); on.add(v)
    for w in sorted(graph[v]):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: comps.append(sorted(comp))
for v in sorted(graph):
    if v not in index: visit(v)
decoders = re.compile(r"image_(decode|png|jpeg|jpeg_turbo|gif|bmp|tga|pnm|tiff|dicom)$")
bad = [c for c in comps if not all(decoders.match(m) for m in c)]
print("%s %d objects; cycles: %s" % ("FAIL" if bad else "ok  ", len(graph), comps or "none"))
sys.exit(1 if bad else 0)
PY
echo "lib deps: $((2 - fails)) passed, $fails failed"
[ $fails -eq 0 ]
