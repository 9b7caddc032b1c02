# bench/common.sh - sourced by bench/run.sh and bench/matrix.sh: the steps they share (the
# model's page-cache state, the peers' preparation and runs). Not a program of its own.
#
# bench_setup sets the shared settings; the caller then sets PEERS, SNAPSHOT, MIN_TIME, QUICK
# (array), ROUNDS, OUT (where the peers' JSON goes). prepare_peers sets ONNX_DIR.

say() { echo "=== $(date -u +%H:%M:%S) $*"; }

# The settings bench/run.sh and bench/matrix.sh share (the caller has done `cd` to the top):
# BUILD, PYTHON, PY3, BMC_TESTDATA, SHARED_DATA, MODEL, NPROC, IMAGE, and BENCH_OPENBLAS_CORETYPE
# applied ("unset" removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE: OpenBLAS picks by itself).
bench_setup() {
  BUILD=${BUILD:-build}
  PYTHON=${PYTHON:-/usr/bin/python3}
  # rounds.py and the reports need only the standard library: any python3 will do
  PY3=$(command -v python3 || echo "$PYTHON")
  export BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
  export SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
  MODEL=${BIOMEDCLIP_MODEL:-$BMC_TESTDATA/full.bmc}
  NPROC=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
  IMAGE=$SHARED_DATA/images/chest_X-ray.jpg
  case "${BENCH_OPENBLAS_CORETYPE:-}" in
    "") ;;
    unset) unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE ;;
    *) export OPENBLAS_CORETYPE=$BENCH_OPENBLAS_CORETYPE ;;
  esac
}
has_peer() { case " $PEERS " in *" $1 "*) return 0;; esac; return 1; }

# Cache a model file the way a load from disk does: drop it from the page cache, then read it
# back through the library (info --verify maps it with MADV_HUGEPAGE and reads every tensor), so
# that it lies in 2 MB pages whatever wrote or read it before (bmc_model_params.huge_pages).
cache_model() { # FILE
  "$PY3" -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1" || true
  "$BUILD/biomedclip" info --verify -m "$1" > /dev/null || { echo "bench: $1 fails its checks"; return 1; }
}

# ONNX export (cached in $BUILD/bench/onnx/) and onnxruntime-node; ONNX_DIR="" when unavailable.
prepare_peers() {
  ONNX_DIR=""
  has_peer onnxruntime || return 0
  if [ -z "$SNAPSHOT" ]; then
    echo "onnxruntime: n/a (no open_clip snapshot to export; set BENCH_SNAPSHOT)"; return 0
  fi
  if ! command -v node >/dev/null; then
    echo "onnxruntime: n/a (node is not installed)"; return 0
  fi
  if [ ! -f bench/peers/node_modules/onnxruntime-node/package.json ]; then
    say "installing onnxruntime-node into bench/peers/node_modules"
    (cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund >/dev/null 2>&1) ||
      echo "onnxruntime: npm install failed"
  fi
  ONNX_DIR=$BUILD/bench/onnx/$(basename "$SNAPSHOT")
  local ckpt=$SNAPSHOT/open_clip_pytorch_model.bin
  if [ ! -f "$ONNX_DIR/text.onnx" ] || [ "$ckpt" -nt "$ONNX_DIR/text.onnx" ] ||
     [ bench/peers/torch_model.py -nt "$ONNX_DIR/text.onnx" ]; then
    say "exporting the towers to ONNX ($ONNX_DIR)"
    "$PYTHON" bench/peers/export_onnx.py --snapshot "$SNAPSHOT" --out-dir "$ONNX_DIR" 2>&1 |
      grep -v -i 'warning' || true
  fi
  if [ ! -f "$ONNX_DIR/text.onnx" ] || [ ! -f bench/peers/node_modules/onnxruntime-node/package.json ]; then
    echo "onnxruntime: n/a (export or install failed)"; ONNX_DIR=""
  fi
}

# One run of a peer, writing $OUT/PEER-tT.rR.json. WORKLOAD: ours' JSON of that thread count
# (the zero-shot ids, and the workloads to time when bench ran with --workloads).
run_peer() { # PEER T ROUND [WORKLOAD]
  local peer=$1 T=$2 r=$3 wl=${4:-$OUT/ours-t$2.r1.json}
  case $peer in
    torch-padded|torch-unpadded|torch-avx2)
      if [ -z "$SNAPSHOT" ]; then echo "$peer: n/a (no snapshot)"; return; fi
      say "$peer, $T thread(s), round $r of $ROUNDS"
      # torch-avx2: PyTorch unpadded as it runs on a CPU without AVX-512. Its products go to
      # OpenBLAS, which takes its AVX-512 kernels where the CPU has them; held to AVX2 here.
      local env=() mode=${peer#torch-}
      [ "$peer" = torch-avx2 ] && { mode=unpadded; env=(OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2); }
      env "${env[@]}" OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T "$PYTHON" bench/peers/torch_peer.py --snapshot "$SNAPSHOT" \
          --mode "$mode" --threads "$T" --min-time "$MIN_TIME" "${QUICK[@]}" --image "$IMAGE" \
          --workload "$wl" --json-out "$OUT/$peer-t$T.r$r.json" || echo "$peer: FAILED, n/a"
      ;;
    onnxruntime)
      if [ -z "$ONNX_DIR" ]; then echo "onnxruntime: n/a"; return; fi
      say "onnxruntime, $T thread(s), round $r of $ROUNDS"
      OMP_NUM_THREADS=$T node bench/peers/ort_peer.js --onnx-dir "$ONNX_DIR" --threads "$T" \
          --min-time "$MIN_TIME" "${QUICK[@]}" --workload "$wl" \
          --json-out "$OUT/onnxruntime-t$T.r$r.json" || echo "onnxruntime: FAILED, n/a"
      ;;
    *) echo "unknown peer $peer (known: torch-padded torch-unpadded torch-avx2 onnxruntime)";;
  esac
}
