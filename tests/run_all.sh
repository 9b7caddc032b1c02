#!/usr/bin/env bash
# Runs every test: the cmocka unit tests in $BUILD/tests, then the Python-driven tests in
# tests/py (converter, pixel and tokenizer parity, PyTorch reference parity, CLI). Test data
# that is generated (random checkpoints, PyTorch goldens) goes to $BUILD/testdata and is reused.
# Prints one summary line "N passed, M failed" and exits non-zero if anything failed.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SHARED_DATA=${SHARED_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
export BUILD PYTHON SHARED_DATA
BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
mkdir -p "$BMC_TESTDATA"
export BMC_TESTDATA=$(cd "$BMC_TESTDATA" && pwd)   # absolute: some tests change directory
export CMOCKA_MESSAGE_OUTPUT=stdout

# Generated test data first (random checkpoints, converted models, PyTorch goldens), in name
# order; each script skips what already exists in $BMC_TESTDATA.
for p in tests/prep/*.sh; do
  [ -f "$p" ] || continue
  echo "=== prepare: $p"
  t0=$SECONDS
  bash "$p" || { echo "test data preparation failed: $p"; echo "0 passed, 1 failed"; exit 1; }
  echo "=== prepare: $p: $((SECONDS - t0)) s"
done

passed=0; failed=0; failed_names=()
run() { # name, command...
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then passed=$((passed+1)); else failed=$((failed+1)); failed_names+=("$name"); fi
  echo "=== $name: $((SECONDS - t0)) s"
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run "$(basename "$t")" "$t"
done
for t in tests/py/test_*.py; do
  [ -f "$t" ] || continue
  run "$(basename "$t")" "$PYTHON" "$t"
done
for t in tests/sh/test_*.sh; do
  [ -f "$t" ] || continue
  run "$(basename "$t")" bash "$t"
done

echo
[ $failed -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
