#!/usr/bin/env bash
# One prepared run on a GPU machine (see docs/cuda.md): checks the GPU, runs the GPU tests, times
# `crackscope bench` beside scripts/bench_torch.py at batch 100 and 256 (227 px), runs the seed recipe
# end to end (4000 synthetic training images, 5 epochs, validation every 30 iterations) in crackscope
# and in PyTorch on the same split, checks eval/predict/gradcam on the GPU, and writes table.md last.
# Every step is time-boxed and logged into OUT, and a failed step does not stop the others.
#
#   scripts/gpu-check.sh OUT                       # on the GPU machine, with the bundle of build.sh
#   GPU_CHECK_SMOKE=1 scripts/gpu-check.sh OUT     # here: the CPU build, tiny sizes (tests the script)
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:?usage: scripts/gpu-check.sh OUT}" && cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bundle=target/gpu-bundle

if [ -n "${GPU_CHECK_SMOKE:-}" ]; then
  device=cpu size=64 per_class=150 batches=(16) epochs=1 limit=1
  bin=target/release/crackscope
  [ -x "$bin" ] || cargo build --release --quiet
  tests=()
else
  device=cuda size=227 per_class=2500 batches=(100 256) epochs=5 limit=1
  tar -C "$work" -xJf "$bundle/crackscope-cuda.tar.xz"
  bin="$work/bin/crackscope"
  tests=("$work/bin/gpu-tests" --test-threads=1 --nocapture)
  # The CUDA 13 libraries come with the machine's PyTorch wheels (nvidia/cu13/lib or nvidia/*/lib).
  libs="$(python3 -c 'import nvidia, os, glob; r = os.path.dirname(nvidia.__path__[0]); print(":".join(sorted({os.path.dirname(p) for p in glob.glob(r + "/nvidia/**/lib*.so*", recursive=True)})))' 2>/dev/null)"
  export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
weights_st="$(ls "$bundle"/squeezenet1_1.safetensors 2>/dev/null || true)"
weights_pth="$(ls "$bundle"/squeezenet1_1.pth 2>/dev/null || true)"

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, output in OUT/NAME.log.
step() {
  local name="$1" seconds="$2"
  shift 2
  seconds="$(python3 -c "print(max(5, int($seconds * $limit)))")"
  local start=$SECONDS
  timeout "$seconds" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s" | tee -a "$out/steps.txt"
  # The table so far, after every step: a run cut short still brings back what it measured.
  python3 scripts/gpu_table.py "$out" > "$out/table.md" 2> "$out/table.log"
  return $rc
}

{ nvidia-smi || echo "no nvidia-smi"; } > "$out/gpu.txt" 2>&1
echo "device $device; LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" >> "$out/gpu.txt"
[ -f "$work/bin/COMMIT" ] && echo "bundle built from $(cat "$work/bin/COMMIT"), checkout at $(git describe --always --dirty 2>/dev/null || echo unknown)" >> "$out/gpu.txt"
[ ${#tests[@]} -gt 0 ] && step gpu-tests 150 "${tests[@]}"

for b in "${batches[@]}"; do
  # bench also times the CPU-side figures (input pipeline, one-class fit, a 12 MP scan).
  step "bench-crackscope-$b" 150 "$bin" bench --device "$device" --batch "$b" --size "$size" --json
  step "bench-torch-$b" 90 python3 scripts/bench_torch.py --device "$device" --batch "$b" --size "$size" \
    --threads "$(nproc)"
done

# The same network as stock candle convolutions, to measure what the matrix-product path gains.
[ "$device" = cuda ] && step "bench-stock-${batches[0]}" 120 env CRACKSCOPE_GPU_PATH=reference \
  "$bin" bench --device cuda --batch "${batches[0]}" --size "$size" --json

data="$work/data" run="$work/run"
step synth 60 "$bin" synth --out "$data" --per-class "$per_class" --size "$size" --seed 0
train=("$bin" train --data "$data" --split 0.8,0.1,0.1 --epochs "$epochs" --batch-size "${batches[0]}"
  --val-every 30 --device "$device" --headless --run "$run")
[ -n "$weights_st" ] && train+=(--weights "$weights_st")
step train-crackscope 200 "${train[@]}"
torch_train=(python3 scripts/train_torch.py --run "$run" --device "$device" --size "$size"
  --batch "${batches[0]}" --epochs "$epochs")
[ -n "$weights_pth" ] && torch_train+=(--weights "$weights_pth")
step train-torch 200 "${torch_train[@]}"
cp "$run/report.json" "$out/report-crackscope.json" 2>/dev/null

# The rest of the tool on the GPU: eval, predict and Grad-CAM of a few test images.
step eval 60 "$bin" eval "$run" --device "$device" --json
some="$(find "$data/Positive" -name '*.jpg' | head -4)"
# shellcheck disable=SC2086
step predict 30 "$bin" predict --model "$run" --device "$device" --json $some
# shellcheck disable=SC2086
step gradcam 60 "$bin" gradcam --model "$run" --device "$device" --out "$out/gradcam" $some

cat "$out/steps.txt" "$out/table.md"
