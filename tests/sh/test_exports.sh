#!/usr/bin/env bash
# The shared library exports exactly the functions that include/biomedclip.h declares (BMC_API):
# nothing internal (bmc__*, or anything else the build compiled in), and none of the header's missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
so=$BUILD/libbiomedclip.so
[ -f "$so" ] || { echo "FAIL test_exports: $so not built"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# defined dynamic symbols (text, data, weak), minus the linker's own markers
nm -D --defined-only "$so" | awk '{print $NF}' | grep -vxE '_init|_fini|_edata|_end|__bss_start' |
  sort -u > "$tmp/exported"
# every function declaration of the header carries BMC_API (a declaration without it would be
# neither exported nor noticed below)
if grep -nE '^[A-Za-z_][A-Za-z0-9_ ]*[ *]bmc_[a-z0-9_]*\(' include/biomedclip.h | grep -v ':BMC_API ' | grep -v typedef > "$tmp/bare"; then
  echo "FAIL test_exports: header declarations without BMC_API:"; cat "$tmp/bare"; exit 1
fi
# the header's functions: the name before the '(' of each BMC_API declaration
sed -n 's/^BMC_API .*[^a-z0-9_]\(bmc_[a-z0-9_]*\)(.*/\1/p' include/biomedclip.h | sort -u > "$tmp/declared"
n=$(wc -l < "$tmp/declared")
[ "$n" -gt 20 ] || { echo "FAIL test_exports: only $n BMC_API declarations read from the header"; exit 1; }
if ! diff "$tmp/declared" "$tmp/exported" > "$tmp/diff"; then
  echo "FAIL test_exports: nm -D $so differs from the header's BMC_API functions (< header only, > exported only):"
  grep '^[<>]' "$tmp/diff" | head -40
  exit 1
fi
echo "ok   nm -D $so: exactly the $n functions of include/biomedclip.h"
