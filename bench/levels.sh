#!/usr/bin/env bash
# bench/levels.sh - the kernel levels (lib/cpu.h) against each other: bench_levels at
# BMC_CPU=avx512, avx2 and portable in alternating rounds (a level the CPU lacks is refused by the
# library and says so in its "library:" line), 1 thread, OPENBLAS_NUM_THREADS=1, CPU time.
# Alternating rounds and CPU time keep the comparison fair on a machine that others load too.
#   LEVELS_ROUNDS (default 3), LEVELS_REPS (calls per workload, default 3), LEVELS (default
#   "avx512 avx2 portable"; avx512_bf16 where the CPU has it); the models: LEVELS_MODELS (files,
#   e.g. full.bmc full-f16.bmc full-bf16.bmc: each at each level, alternating), else
#   $BIOMEDCLIP_MODEL or $BMC_TESTDATA/full.bmc.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -x "$BUILD/bench/bench_levels" ] || { echo "bench/levels.sh: build $BUILD/bench/bench_levels first (make $BUILD/bench/bench_levels)"; exit 1; }
MODELS=${LEVELS_MODELS:-${BIOMEDCLIP_MODEL:-${BMC_TESTDATA:-$BUILD/testdata}/full.bmc}}
for r in $(seq 1 "${LEVELS_ROUNDS:-3}"); do
  for m in $MODELS; do
    for l in ${LEVELS:-avx512 avx2 portable}; do
      echo "=== round $r, $(basename "$m"), BMC_CPU=$l (load average $(cut -d' ' -f1 /proc/loadavg))"
      BMC_CPU=$l OPENBLAS_NUM_THREADS=1 "$BUILD/bench/bench_levels" "$m" --reps "${LEVELS_REPS:-3}" || exit 1
    done
  done
done
