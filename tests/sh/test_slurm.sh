#!/usr/bin/env bash
# test_slurm.sh - a sharded index on a real Slurm (docs/SCALE.md): starts munged, slurmctld and
# slurmd on this machine (one node of 2 CPUs, a generated slurm.conf in a temporary directory,
# as ../shared/docs/slurm-local.md describes), submits tools/slurm/index.sbatch as a 4-task
# array with tools/slurm/merge.sbatch depending on it, and checks that the merged index equals a
# single-node `biomedclip index` byte for byte and that clip-retrieval's layout holds the same
# rows; then kills one task's process with SIGKILL after its first commit, resubmits the same
# two jobs, and checks that the killed shard finishes with the bytes of the uninterrupted run and
# the merge again equals the single-node index. Skips (exit 0, with why) when not root or when
# slurm-wlm/munge are not installed; CI installs them (tools/deps-debian.txt) and runs as root.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SHARED_DATA=${SHARED_DATA:-$(cd .. && pwd)/shared/data}
BMC_TESTDATA=${BMC_TESTDATA:-$BUILD/testdata}
BIN=$(cd "$BUILD" && pwd)/biomedclip
MODEL=$(cd "$BMC_TESTDATA" && pwd)/full.bmc

if [ "$(id -u)" != 0 ]; then echo "SKIP: test_slurm.sh starts slurmd/slurmctld as root; not root"; exit 0; fi
for b in munged slurmctld slurmd sbatch squeue scancel; do
  command -v $b >/dev/null || { echo "SKIP: $b not installed (apt-get install slurm-wlm munge)"; exit 0; }
done

fails=0 passes=0
check() { if eval "$2"; then echo "ok   $1"; passes=$((passes+1)); else echo "FAIL $1"; fails=$((fails+1)); fi; }

D=$(mktemp -d /tmp/bmc-slurm.XXXXXX)
chmod 755 "$D"   # munged wants its socket's directories searchable by all
mkdir -p "$D"/{state,spool,log,munge,run,work}
chmod 700 "$D/munge"
cleanup() {
  for p in slurmd slurmctld munged; do
    [ -f "$D/run/$p.pid" ] && kill "$(cat "$D/run/$p.pid")" 2>/dev/null
  done
  sleep 1
  rm -rf "$D"
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
H=$(hostname -s)
head -c 1024 /dev/urandom > "$D/munge/munge.key"; chmod 400 "$D/munge/munge.key"
munged --key-file="$D/munge/munge.key" --socket="$D/run/munge.sock" --pid-file="$D/run/munged.pid" \
       --log-file="$D/log/munged.log" --seed-file="$D/munge/seed" ||
  { echo "SKIP: munged does not start here"; exit 0; }
cat > "$D/slurm.conf" <<CONF
ClusterName=bmctest
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/run/munge.sock
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
NodeName=$H CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$D/slurm.conf
slurmctld -f "$SLURM_CONF" && slurmd -f "$SLURM_CONF" || { echo "SKIP: the Slurm daemons do not start here"; exit 0; }
for i in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo -h -o %t | grep -q idle || { echo "FAIL: the Slurm node never became idle"; cat "$D/log/slurmctld.log"; exit 1; }
echo "ok   slurm up: $(sinfo -h -o '%P %D %t %c')"

# inputs: 40 images of the example set at several sizes, in 3 folders, and one broken file
W=$D/work
"$PYTHON" - "$SHARED_DATA/images" "$W/data" <<'PY'
import os, sys
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(src) if n.lower().endswith((".jpg", ".png")))
k = 0
for size in (160, 230, 300, 380, 450):
    for n in names:
        if k == 40: break
        d = os.path.join(dst, "set%d" % (k % 3)); os.makedirs(d, exist_ok=True)
        Image.open(os.path.join(src, n)).convert("RGB").resize((size, size * 5 // 4)).save(
            os.path.join(d, "%02d_%s.png" % (k, n.rsplit(".", 1)[0])))
        k += 1
open(os.path.join(dst, "set1", "zz_broken.png"), "wb").write(b"\x89PNG\r\n\x1a\n broken")
PY
export BIOMEDCLIP=$BIN BIOMEDCLIP_MODEL=$MODEL BIOMEDCLIP_BATCH=2
(cd "$W" && "$BIN" index --quiet --threads 1 -o single data 2>/dev/null)
check "single-node index of 40 images (+1 broken)" '[ "$(wc -l < "$W/single/paths.txt")" = 40 ]'

wait_job() { # job id: wait until it has left the queue (bounded)
  for i in $(seq 600); do squeue -h -j "$1" 2>/dev/null | grep -q . || return 0; sleep 0.5; done
  return 1
}
submit() { # prints "ARRAY MERGE"
  local j m
  j=$(cd "$W" && sbatch --parsable --array=1-4 -c 1 -o "$D/log/index-%A_%a.log" "$ROOT/tools/slurm/index.sbatch" idx data)
  m=$(cd "$W" && sbatch --parsable --dependency=afterok:$j -c 1 -o "$D/log/merge-%j.log" "$ROOT/tools/slurm/merge.sbatch" idx)
  echo "$j $m"
}
same_as_single() {
  cmp -s "$W/single/embeddings.npy" "$W/idx/embeddings.npy" && cmp -s "$W/single/paths.txt" "$W/idx/paths.txt"
}
clip_layout_ok() {
  "$PYTHON" - "$W/idx" <<'PY'
import glob, json, os, sys
import numpy as np
d = sys.argv[1]
emb = np.load(os.path.join(d, "embeddings.npy"))
paths = open(os.path.join(d, "paths.txt"), encoding="utf-8").read().split("\n")[:-1]
parts = sorted(glob.glob(os.path.join(d, "img_emb", "img_emb_*.npy")))
metas = sorted(glob.glob(os.path.join(d, "metadata", "metadata_*.jsonl")))
assert [os.path.basename(p) for p in parts] == ["img_emb_%d.npy" % i for i in range(4)], parts
cat = np.concatenate([np.load(p) for p in parts])
assert cat.dtype == np.float32 and cat.shape == emb.shape and (cat == emb).all()
assert np.allclose(np.linalg.norm(cat, axis=1), 1, atol=1e-5)
rows = [json.loads(l)["image_path"] for m in metas for l in open(m, encoding="utf-8")]
assert rows == paths, (rows[:3], paths[:3])
PY
}

read J M < <(submit)
check "array $J and merge $M submitted" '[ -n "$J" ] && [ -n "$M" ]'
wait_job "$J"; wait_job "$M"
check "the 4 shards ran on Slurm and the merge followed" '[ -f "$W/idx/embeddings.npy" ]'
check "merged index == single-node index (embeddings.npy and paths.txt, byte for byte)" same_as_single
check "clip-retrieval layout: img_emb_0..3 concatenated == embeddings, metadata == paths" clip_layout_ok
check "the broken file is listed in failed.tsv" 'grep -q "zz_broken.png" "$W/idx/failed.tsv"'
cp -a "$W/idx.shards/2-of-4" "$D/shard2-uninterrupted"

# kill one task's process after its first commit, then resubmit the same two jobs
rm -rf "$W/idx" "$W/idx.shards"
read J M < <(submit)
killed=
for i in $(seq 1200); do
  if [ -s "$W/idx.shards/2-of-4/paths.txt" ]; then
    pid=$(pgrep -f -- "--shard 2/4" | head -1)
    [ -n "$pid" ] && kill -9 "$pid" && killed=1
    break
  fi
  sleep 0.1
done
check "task 2 killed (SIGKILL) after its first commit" '[ -n "$killed" ]'
wait_job "$J"
sleep 1
state=$(squeue -h -j "$M" -o %r 2>/dev/null)
check "the merge does not run after a failed task (pending: $state)" '[ ! -f "$W/idx/embeddings.npy" ]'
scancel "$M" 2>/dev/null; wait_job "$M"
check "shard 2 is left incomplete" 'grep -q "^complete 0" "$W/idx.shards/2-of-4/shard.txt"'
read J M < <(submit)
wait_job "$J"; wait_job "$M"
check "resubmitted: shard 2 has the bytes of the uninterrupted run" \
  'for f in embeddings.npy paths.txt failed.tsv shard.txt index.json img_emb/img_emb_1.npy metadata/metadata_1.jsonl; do cmp -s "$D/shard2-uninterrupted/$f" "$W/idx.shards/2-of-4/$f" || exit 1; done'
check "resubmitted: merged index == single-node index" same_as_single
check "resubmitted: clip-retrieval layout" clip_layout_ok

echo "slurm: $passes checks passed, $fails failed"
[ $fails -eq 0 ]
