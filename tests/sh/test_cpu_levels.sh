#!/usr/bin/env bash
# test_cpu_levels.sh - the parity and thread tests at every kernel level this CPU has (lib/cpu.c).
# The plain run of the suite exercises the best level; this reruns tests/test_vit_parity,
# test_bert_parity, test_parallel, test_ops and test_reduced_precision with BMC_CPU=avx2 and
# BMC_CPU=portable (when the CPU has more than that level), and on a CPU with AVX512_BF16 the
# 16-bit tests (test_ops, test_reduced_precision) with BMC_CPU=avx512, whose bfloat16 weights are
# widened instead of multiplied by vdpbf16ps: embeddings within the parity tests' tolerances of PyTorch (1e-5) at
# each level, bit-identical across 1, 2 and 3 threads at the AVX2 level (within 1e-6 at the
# portable one, whose products are OpenBLAS's; there test_parallel runs the tiny model only,
# BMC_THREADS_FULL=0: its full-size case took 146 s of wall time under load, mostly OpenBLAS's
# threads waiting). A level the CPU lacks is skipped with a line saying so. The level asked for
# is checked to be the one running (biomedclip info).
#
# The image resize has an AVX2 path (lib/image_resize_avx2.c, used at the avx2 and avx512 levels,
# so the plain suite checks it against PIL) and an SSE2 one (lib/image_resize_sse2.c, used at the
# portable level): at BMC_CPU=portable tests/py/test_image_pixels.py checks that byte for byte
# against PIL too (about 30 s of CPU); test_image compares both with the scalar loops at every level.
#
# Under the sanitizers ($BUILD ending in -sanitize) the full-size parity at two more levels would
# take many minutes: there only test_ops (every kernel, every level's element-wise loops) and
# test_parallel on the tiny model (BMC_THREADS_FULL=0) run at each level; the plain build runs the
# full set.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export CMOCKA_MESSAGE_OUTPUT=stdout
info=$(BMC_CPU= "$BUILD/biomedclip" info -m "${BMC_TESTDATA:-$BUILD/testdata}/tiny.bmc" | grep '^system') ||
  { echo "FAIL: biomedclip info"; exit 1; }
case "$info" in
  *KERNELS=avx512_bf16*) best=avx512_bf16 ;;
  *KERNELS=avx512*) best=avx512 ;;
  *KERNELS=avx2*) best=avx2 ;;
  *) best=portable ;;
esac
echo "best level of this CPU: $best ($info)"
case "$BUILD" in
  *-sanitize) tests="test_ops test_parallel test_reduced_precision test_image"; export BMC_THREADS_FULL=0
              echo "sanitized build: test_ops, test_parallel, test_reduced_precision (tiny model) and test_image at each level" ;;
  *) tests="test_vit_parity test_bert_parity test_parallel test_ops test_reduced_precision test_image" ;;
esac
# avx512 below avx512_bf16 differs only for bfloat16 weights (widened instead of vdpbf16ps)
w16_only="test_ops test_reduced_precision"
for t in $tests; do
  [ -x "$BUILD/tests/$t" ] || { echo "FAIL: $BUILD/tests/$t not built (make tests)"; exit 1; }
done
fail=0
for level in avx512 avx2 portable; do
  if [ "$level" = avx512 ] && [ "$best" != avx512_bf16 ]; then
    [ "$best" = avx512 ] || echo "SKIP level avx512: this CPU (or its OS) has no AVX-512"
    [ "$best" = avx512 ] && echo "SKIP level avx512_bf16: this CPU has no AVX512_BF16 (bfloat16 products untested here)"
    continue
  fi
  if [ "$best" = portable ] && [ "$level" = avx2 ]; then
    echo "SKIP level avx2: this CPU (or its OS) has no AVX2 + FMA + F16C"; continue
  fi
  if [ "$level" = "$best" ]; then
    echo "level $level: the CPU's best, run by the plain suite"; continue
  fi
  got=$(BMC_CPU=$level "$BUILD/biomedclip" info -m "${BMC_TESTDATA:-$BUILD/testdata}/tiny.bmc" | grep '^system')
  case "$got" in *"KERNELS=$level "*) ;; *) echo "FAIL: BMC_CPU=$level runs: $got"; fail=1; continue ;; esac
  for t in $tests; do
    [ "$level" = avx512 ] && case " $w16_only " in *" $t "*) ;; *) continue ;; esac
    t0=$SECONDS
    full=${BMC_THREADS_FULL:-}; [ "$level" = portable ] && full=0
    if BMC_THREADS_FULL=$full BMC_CPU=$level "$BUILD/tests/$t" > "$BUILD/tests/$t.$level.log" 2>&1; then
      echo "level $level: $t passed ($((SECONDS - t0)) s)"
    else
      echo "FAIL: level $level: $t (log follows)"; tail -40 "$BUILD/tests/$t.$level.log"; fail=1
    fi
  done
  case "$level:$BUILD" in
    *-sanitize) ;;
    portable:*)
      t0=$SECONDS
      if BMC_CPU=portable BUILD=$BUILD "${PYTHON:-/usr/bin/python3}" tests/py/test_image_pixels.py \
          > "$BUILD/tests/test_image_pixels.portable.log" 2>&1; then
        echo "level portable: test_image_pixels.py passed ($((SECONDS - t0)) s)"
      else
        echo "FAIL: level portable: test_image_pixels.py (log follows)"
        tail -20 "$BUILD/tests/test_image_pixels.portable.log"; fail=1
      fi ;;
  esac
done
[ $fail -eq 0 ] && echo PASS
exit $fail
