#!/usr/bin/env bash
# A scan sharded over a real Slurm array job, merged, and compared with one process scanning the
# same photos: the merged scan.json must hold the same photos, windows, fractions and failures.
#
#   scripts/slurm_scan.sh [SHARDS] [PHOTOS] [SIZE]      (defaults: 4 shards, 40 photos of 512 px)
#
# Starts a one-node cluster of its own in a temporary folder (munged with a fresh key, slurmctld and
# slurmd on free ports, a minimal slurm.conf; Debian's slurm-wlm and munge, run as root), makes a
# model (`crackscope demo --headless`, one epoch of the demo's 64 px synthetic set; MODEL=PATH uses
# yours instead) and synthetic photos (`crackscope synth --photos`), then
#   1. scans every photo in one process (RAYON_NUM_THREADS=CPUS, all of the node's cores);
#   2. submits `sbatch --array=0-(SHARDS-1)` of `crackscope scan --out OUT` with one core per task
#      (RAYON_NUM_THREADS=1): each task reads its shard from SLURM_ARRAY_TASK_ID/_COUNT and writes
#      OUT/shard-K-of-SHARDS; waits for the array to end;
#   3. `crackscope scan-merge OUT`, and compares OUT/scan.json with the single process's.
# Prints both wall times (the array's from submission to its last task's end) and "equal" or the
# first difference; exits 1 when they differ. Everything it starts is stopped at its end.
# Needs: slurm-wlm (slurmctld, slurmd, sbatch), munge, python3. BIN=path picks the binary
# (default target/release/crackscope, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARDS=${1:-4}
PHOTOS=${2:-40}
SIZE=${3:-512}
BIN=$(realpath "${BIN:-target/release/crackscope}")
[ -x "$BIN" ] || { cargo build --release; BIN=$(realpath target/release/crackscope); }
for tool in slurmctld slurmd sbatch squeue munged python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root: slurmd starts the tasks as their user" >&2; exit 2; }

WORK=$(mktemp -d /var/tmp/crackscope-slurm.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # munged and the Slurm daemons leave their pid files; stop by those pids only.
  for f in "$WORK"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 1
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CPUS=$(nproc)
HOST=$(hostname -s)

# munge: a key of our own, a socket in our folder.
mkdir -m 700 "$WORK/munge"
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
munged --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/socket" \
  --pid-file="$WORK/munged.pid" --log-file="$WORK/munge/munged.log" --seed-file="$WORK/munge/seed"

mkdir -p "$WORK/state" "$WORK/spool" "$WORK/out"
export SLURM_CONF=$WORK/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=crackscope
SlurmctldHost=$HOST
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$WORK/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=scan Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o "%P %D %T %C" | grep -q idle || { echo "the node did not come up:"; tail -20 "$WORK"/slurm*.log; exit 1; }

# A model and photos.
if [ -n "${MODEL:-}" ]; then
  model=$(realpath "$MODEL")
else
  "$BIN" demo --headless --per-class 30 --epochs 1 --run "$WORK/run" >/dev/null 2>&1
  model=$WORK/run
fi
"$BIN" synth --out "$WORK/surfaces" --photos "$PHOTOS" --size "$SIZE" --detail 64 >/dev/null
photos=$WORK/surfaces/photos

# 1. One process.
start=$(date +%s.%N)
RAYON_NUM_THREADS=$CPUS "$BIN" scan --model "$model" "$photos" --out "$WORK/single" >/dev/null 2>&1 || [ $? = 4 ]
single_s=$(python3 -c "import time; print(round(time.time() - $start, 1))")

# 2. The array job: one core per task.
cat >"$WORK/shard.sh" <<EOF
#!/bin/sh
export RAYON_NUM_THREADS=1
exec "$BIN" scan --model "$model" "$photos" --out "$WORK/out"
EOF
chmod +x "$WORK/shard.sh"
start=$(date +%s.%N)
job=$(sbatch --parsable --array=0-$((SHARDS - 1)) --cpus-per-task=1 --output="$WORK/task-%a.log" \
  --chdir="$WORK" "$WORK/shard.sh")
while squeue -h -j "$job" 2>/dev/null | grep -q .; do sleep 0.5; done
array_s=$(python3 -c "import time; print(round(time.time() - $start, 1))")
for k in $(seq "$SHARDS"); do
  [ -f "$WORK/out/shard-$k-of-$SHARDS/scan.json" ] || { echo "shard $k/$SHARDS wrote nothing:"; cat "$WORK"/task-*.log; exit 1; }
done

# 3. Merge and compare.
"$BIN" scan-merge "$WORK/out" >/dev/null
python3 - "$WORK/single/scan.json" "$WORK/out/scan.json" <<'EOF'
import json, sys
single, merged = (json.load(open(p)) for p in sys.argv[1:3])
for key in ["photos", "failed", "settings", "class", "threshold", "finished"]:
    a, b = single.get(key), merged.get(key)
    if a != b:
        if isinstance(a, list) and isinstance(b, list):
            diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            print(f"differ: {key}[{diff}] ({len(a)} vs {len(b)} entries)")
        else:
            print(f"differ: {key}: {a!r} vs {b!r}")
        sys.exit(1)
windows = sum(len(p["windows"]) for p in single["photos"])
print(f"equal: {len(single['photos'])} photos, {windows} windows, {len(single.get('failed', []))} failed")
EOF
echo "photos=$PHOTOS size=${SIZE}px cpus=$CPUS one_process_s=$single_s shards=$SHARDS array_s=$array_s (one core per task)"
