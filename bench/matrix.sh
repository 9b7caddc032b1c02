#!/usr/bin/env bash
# bench/matrix.sh - `make bench-matrix`: ours at every kernel level and weight type (float32,
# f16, bf16 files) against ONNX Runtime and PyTorch (unpadded), in the same run, on a few
# workloads; then one table per level (bench/matrix_report.py).
#
# Per thread count and round: ours for every (level, file) config (bench --workloads, with
# BMC_CPU=level), then ONNX Runtime, then PyTorch unpadded, both on the float32 snapshot; the
# configs run in reverse order in even rounds so that a drift of the machine does not favour the
# first ones. Every run writes JSON into $BUILD/bench/matrix/ (ours-DTYPE-LEVEL-tT.rR.json,
# onnxruntime-tT.rR.json, torch-unpadded-tT.rR.json); bench/rounds.py merges the rounds.
# PyTorch padded (the open_clip way) is left out: make bench has it, and it costs a 256-token
# pass per text.
#
# Environment (all optional):
#   MATRIX_LEVELS     default "avx512_bf16 avx512 avx2 portable"; a level the CPU lacks is skipped
#                     and says so. At avx512_bf16 only bf16 weights run other kernels than at
#                     avx512, so that level runs the bf16 file alone when avx512 runs too (the
#                     report shows avx512's f32 and f16 rows in its table, marked).
#   MATRIX_DTYPES     default "f32 f16 bf16": $BIOMEDCLIP_MODEL (default $BMC_TESTDATA/full.bmc)
#                     and ${MODEL%.bmc}-f16.bmc, -bf16.bmc (tests/prep/10_models.sh makes the test
#                     model's; for another model: tools/convert.py SNAPSHOT -o FILE --dtype f16)
#   MATRIX_THREADS    default "<online CPUs> 1"
#   MATRIX_ROUNDS     alternating rounds (default 2; 1 with BENCH_QUICK)
#   MATRIX_WORKLOADS  default image_b1,image_b8,text24_b1,text24_b8 (keys of bench --help)
#   BENCH_MIN_TIME    seconds per workload (default 1); BENCH_QUICK=1 short timings (smoke test)
#   BENCH_SNAPSHOT    the peers' open_clip snapshot (default: the model path without .bmc)
#   MATRIX_PEERS      default "onnxruntime torch-unpadded torch-avx2"; "" runs ours alone.
#                     torch-avx2 is PyTorch unpadded held to AVX2 (OpenBLAS Haswell kernels, ATen
#                     and oneDNN at AVX2), as on a CPU without AVX-512: the avx2 table's peer;
#                     it runs only when the avx2 level does
#   BENCH_OPENBLAS_CORETYPE  as in bench/run.sh
#   BENCH_UPDATE_DOCS=1  write the tables into docs/PERF.md (markers matrix:begin / matrix:end)
set -u
cd "$(dirname "$0")/.."
. bench/common.sh  # bench_setup, say, has_peer, cache_model, prepare_peers, run_peer
bench_setup        # BUILD, PYTHON, PY3, BMC_TESTDATA, SHARED_DATA, MODEL, NPROC, IMAGE, the core type
OUT=$BUILD/bench/matrix
THREADS=${MATRIX_THREADS:-$NPROC 1}
[ "$NPROC" = 1 ] && [ -z "${MATRIX_THREADS:-}" ] && THREADS=1
LEVELS=${MATRIX_LEVELS:-avx512_bf16 avx512 avx2 portable}
DTYPES=${MATRIX_DTYPES:-f32 f16 bf16}
WORKLOADS=${MATRIX_WORKLOADS:-image_b1,image_b8,text24_b1,text24_b8}
PEERS=${MATRIX_PEERS-onnxruntime torch-unpadded torch-avx2}
MIN_TIME=${BENCH_MIN_TIME:-1}
QUICK=(); [ "${BENCH_QUICK:-0}" = 1 ] && QUICK=(--quick)
ROUNDS=${MATRIX_ROUNDS:-2}; [ "${BENCH_QUICK:-0}" = 1 ] && ROUNDS=${MATRIX_ROUNDS:-1}
case "$ROUNDS" in ''|*[!0-9]*|0) echo "bench/matrix.sh: MATRIX_ROUNDS must be a positive integer"; exit 1;; esac

mkdir -p "$OUT"
rm -f "$OUT"/*-t*.json "$OUT"/*.log "$OUT"/table.md "$OUT"/workloads.json
LOG=$OUT/run.log
exec > >(tee "$LOG") 2>&1
T_START=$(date +%s)

[ -x "$BUILD/bench/bench" ] || { echo "bench/matrix.sh: $BUILD/bench/bench is not built (run: make bench-matrix)"; exit 1; }
"$BUILD/bench/bench" --help | grep -q -- --workloads ||
  { echo "bench/matrix.sh: $BUILD/bench/bench has no --workloads (rebuild it)"; exit 1; }
known=$(echo $("$BUILD/bench/bench" --help | tail -1))
for k in ${WORKLOADS//,/ }; do
  case " $known " in *" $k "*) ;; *) echo "bench/matrix.sh: MATRIX_WORKLOADS: unknown workload $k (known:$known)"; exit 1;; esac
done
dtype_file() { # DTYPE -> the model file of that weight type
  case $1 in f32) echo "$MODEL";; f16|bf16) echo "${MODEL%.bmc}-$1.bmc";; *) echo "";; esac
}
missing=0
for dt in $DTYPES; do f=$(dtype_file "$dt"); [ -n "$f" ] && [ ! -f "$f" ] && missing=1; done
if [ "$missing" = 1 ] && [ -z "${BIOMEDCLIP_MODEL:-}" ]; then
  say "generating the random-weight test models (tests/prep/10_models.sh)"
  BUILD=$BUILD PYTHON=$PYTHON bash tests/prep/10_models.sh || { echo "model generation failed"; exit 1; }
fi

# ---- the configs: (dtype, level) pairs this CPU and these files allow ----
has_level() { # LEVEL: the library takes it (a level the CPU lacks is refused: KERNELS= names another)
  BMC_CPU=$1 "$BUILD/biomedclip" info -m "$MODEL" 2>/dev/null | grep -q "KERNELS=$1 "
}
levels=""
for l in $LEVELS; do
  case $l in avx512_bf16|avx512|avx2|portable) ;; *) echo "level $l: unknown (avx512_bf16 avx512 avx2 portable), skipped"; continue;; esac
  if has_level "$l"; then levels="$levels $l"; else echo "level $l: this CPU lacks it (the library refuses BMC_CPU=$l), skipped"; fi
done
dtypes=""
for dt in $DTYPES; do
  f=$(dtype_file "$dt")
  if [ -z "$f" ]; then echo "weight type $dt: unknown (f32 f16 bf16), skipped"
  elif [ ! -f "$f" ]; then echo "weight type $dt: no file $f (tools/convert.py SNAPSHOT -o $f --dtype $dt), skipped"
  else dtypes="$dtypes $dt"; fi
done
configs=()
for l in $levels; do
  for dt in $dtypes; do
    # at avx512_bf16, f32 and f16 weights run avx512's kernels: measured once, at avx512
    if [ "$l" = avx512_bf16 ] && [ "$dt" != bf16 ] && case " $levels " in *" avx512 "*) true;; *) false;; esac; then
      continue
    fi
    configs+=("$dt:$l")
  done
done
[ ${#configs[@]} -gt 0 ] || { echo "bench/matrix.sh: no config to run"; exit 1; }
case " $levels " in *" avx2 "*) ;; *) PEERS=$(echo " $PEERS " | sed 's/ torch-avx2 / /');; esac

# every file in 2 MB pages of the page cache, as after a load from disk (common.sh), once
for dt in $dtypes; do cache_model "$(dtype_file "$dt")" || exit 1; done
SNAPSHOT=${BENCH_SNAPSHOT:-${MODEL%.bmc}}
[ -f "$SNAPSHOT/open_clip_pytorch_model.bin" ] || SNAPSHOT=""
say "model $MODEL; peers' snapshot ${SNAPSHOT:-none}; threads: $THREADS; rounds: $ROUNDS; workloads: $WORKLOADS"
say "configs (weights:level): ${configs[*]}; peers: ${PEERS:-none}"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $NPROC online; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "load: $(cat /proc/loadavg)"
prepare_peers

run_ours() { # DTYPE LEVEL T ROUND
  say "ours, $1 weights, BMC_CPU=$2, $3 thread(s), round $4 of $ROUNDS"
  BMC_CPU=$2 "$BUILD/bench/bench" "$(dtype_file "$1")" --threads "$3" --min-time "$MIN_TIME" "${QUICK[@]}" \
      --image "$IMAGE" --workloads "$WORKLOADS" --json-out "$OUT/ours-$1-$2-t$3.r$4.json" || echo "ours: FAILED"
}
for T in $THREADS; do
  for r in $(seq "$ROUNDS"); do
    order=("${configs[@]}")
    if [ $((r % 2)) = 0 ]; then  # even rounds backwards
      order=(); for ((i = ${#configs[@]} - 1; i >= 0; i--)); do order+=("${configs[i]}"); done
    fi
    for c in "${order[@]}"; do run_ours "${c%%:*}" "${c#*:}" "$T" "$r"; done
    # the peers read the workloads (and the zero-shot ids) from one of ours' JSON of this round;
    # should every run of ours have failed, from a list of the workloads alone
    wl=$(ls "$OUT"/ours-*-t"$T".r"$r".json 2>/dev/null | head -1)
    if [ -z "$wl" ]; then
      wl=$OUT/workloads.json
      "$PY3" -c 'import json, sys; print(json.dumps({"workloads": sys.argv[1].split(",")}))' "$WORKLOADS" > "$wl"
    fi
    for peer in $PEERS; do run_peer "$peer" "$T" "$r" "$wl"; done
    echo "elapsed: $(( $(date +%s) - T_START )) s"
  done
done
"$PY3" bench/rounds.py "$OUT" || echo "rounds: merging FAILED"

say "per level and weight type against the peers"
DOC_ARGS=()
[ "${BENCH_UPDATE_DOCS:-0}" = 1 ] && DOC_ARGS=(--update-doc docs/PERF.md)
"$PY3" bench/matrix_report.py "$OUT" --markdown "$OUT/table.md" "${DOC_ARGS[@]}"
echo "results: $OUT (table.md, *.json, run.log); $(( $(date +%s) - T_START )) s in all"
