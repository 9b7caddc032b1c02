#!/usr/bin/env bash
# ThreadSanitizer: the library and tests/test_threads.c rebuilt with clang -fsanitize=thread into
# $BUILD-tsan, then 8 threads sharing the tiny model (each with its own context) must run with no
# data race reported (halt_on_error=1: the first report fails the test) and bit-identical results.
# OpenBLAS is not instrumented; with 1 BLAS thread (test_threads sets it) every GEMM runs in the
# calling thread, so no OpenBLAS worker thread touches our buffers behind TSan's back.
# The full-size model is left to the plain build (BMC_THREADS_FULL=0): instrumented, it is slow.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case "$BUILD" in *-sanitize)
  echo "test_tsan: the ThreadSanitizer build is separate from the ASan one; run by the plain 'make test'"; exit 0;;
esac
TB=${BUILD%-sanitize}-tsan
export BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
if ! command -v clang >/dev/null; then echo "test_tsan: clang is required (tools/deps-debian.txt)"; exit 1; fi
t0=$(date +%s)
# MAKEFLAGS cleared: variables of an enclosing make (JPEG=turbo, SANITIZE=1) must not change this build
MAKEFLAGS= MAKEOVERRIDES= make -s -j2 BUILD="$TB" CC=clang OPT="-O1 -g -march=native -fno-omit-frame-pointer -fsanitize=thread" \
  LDFLAGS=-fsanitize=thread "$TB/tests/test_threads" >/dev/null
echo "test_tsan: built $TB/tests/test_threads in $(( $(date +%s) - t0 )) s"
# a deliberate race must be reported, or a clean run proves nothing (checks TSan works here)
cat > "$TB/race.c" <<'C'
#include <pthread.h>
static int shared;
static void *bump(void *p) { for (int i = 0; i < 1000; i++) shared++; return p; }
int main(void) { pthread_t a, b; pthread_create(&a, 0, bump, 0); pthread_create(&b, 0, bump, 0);
                 pthread_join(a, 0); pthread_join(b, 0); return shared == 0; }
C
clang -g -fsanitize=thread -o "$TB/race" "$TB/race.c" -lpthread
if TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$TB/race" >/dev/null 2>&1; then
  echo "test_tsan: FAIL: ThreadSanitizer did not report a deliberate race"; exit 1
fi
t0=$(date +%s)
OPENBLAS_NUM_THREADS=1 BMC_THREADS_FULL=0 TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
  "$TB/tests/test_threads"
echo "test_tsan: 8 threads under ThreadSanitizer: no race reported ($(( $(date +%s) - t0 )) s)"
