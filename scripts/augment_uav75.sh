#!/usr/bin/env bash
# What each [augment] key does on real drone photos. For the seed's recipe alone ("baseline"), each
# augmentation alone on top of it, and all of them together: fine-tune the ImageNet SqueezeNet on the
# concrete patches (5 epochs, split 0.1/0.1/0.1 = 400 training images, seed 0), record the test
# accuracy on concrete, then scan the 60 uav75 drone photos against their crack masks and record the
# window-level AUROC and F1 (threshold 0.5). The strengths are common defaults elsewhere (timm's
# colour jitter 0.4, SimCLR's blur sigma up to 2), not tuned to these photos.
#
#   scripts/augment_uav75.sh OUT [VARIANT...]    # default: every variant, baseline first
#
# A variant whose run already holds a report and a scan is not trained again, so an interrupted
# measurement continues where it stopped. The table goes to stdout and OUT/table.md.
#
# Measured once (seed 0, 2 threads, all 60 photos; none of them is in training; one seed only, so
# differences of a few hundredths between single keys may be noise; scored before scan --masks
# left windows with cracks only near their border unscored, so those count as clear windows here):
#   variant     concrete acc  uav75 window AUROC  window F1
#   baseline    0.983         0.627               0.225
#   brightness  0.980         0.605               0.128
#   contrast    0.988         0.623               0.307
#   saturation  0.988         0.622               0.254
#   rotate90    0.968         0.586               0.203
#   vflip       0.985         0.616               0.196
#   scale       0.985         0.649               0.359
#   blur        0.990         0.665               0.322
#   all         0.985         0.710               0.637
# Environment: CRACKSCOPE (binary, default target/release/crackscope), CRACKSCOPE_TEST_DATA (default
# ../shared/data), RAYON_NUM_THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:?usage: scripts/augment_uav75.sh OUT [VARIANT...]}" && cd "$1" && pwd)"
shift
bin="$(realpath "${CRACKSCOPE:-target/release/crackscope}")"
data="${CRACKSCOPE_TEST_DATA:-../shared/data}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
[ -x "$bin" ] || { echo "no binary at $bin (cargo build --release)" >&2; exit 1; }
for need in concrete-ozgenel pretrained/squeezenet1_1.safetensors photos/uav75/images photos/uav75/cracks; do
  [ -e "$data/$need" ] || { echo "missing $data/$need (set CRACKSCOPE_TEST_DATA)" >&2; exit 1; }
done

declare -A keys=(
  [baseline]=""
  [brightness]="brightness = 0.4"
  [contrast]="contrast = 0.4"
  [saturation]="saturation = 0.4"
  [rotate90]="rotate90 = true"
  [vflip]="vflip = true"
  [scale]="scale = [0.8, 1.25]"
  [blur]="blur = 2.0"
)
order=(baseline brightness contrast saturation rotate90 vflip scale blur all)
all=""
for v in "${order[@]}"; do [ "$v" = all ] || [ -z "${keys[$v]}" ] || all+="${keys[$v]}"$'\n'; done
keys[all]="$all"
[ $# -gt 0 ] && order=("$@")

for v in "${order[@]}"; do
  [ -n "${keys[$v]+set}" ] || { echo "unknown variant $v" >&2; exit 1; }
  run="$out/$v"
  if [ ! -f "$run/scan-uav75/metrics.json" ]; then
    rm -rf "$run"
    printf '[augment]\n%s\n' "${keys[$v]}" > "$out/$v.toml"
    echo "== $v: train ($(date +%T))" >&2
    "$bin" train --headless --config "$out/$v.toml" --data "$data/concrete-ozgenel" \
      --weights "$data/pretrained/squeezenet1_1.safetensors" --epochs 5 --split 0.1,0.1,0.1 \
      --seed 0 --run "$run" > "$out/$v.train.log" 2>&1
    echo "== $v: scan ($(date +%T))" >&2
    "$bin" scan --model "$run" --masks "$data/photos/uav75/cracks" "$data/photos/uav75/images" \
      --json --out "$run/scan-uav75" > "$run/scan-uav75.json" 2> "$out/$v.scan.log"
  fi
done

python3 - "$out" "${order[@]}" <<'PY' | tee "$out/table.md"
import json, sys
out, variants = sys.argv[1], sys.argv[2:]
fmt = lambda x: "-" if x is None else f"{x:.3f}"
print("| variant | [augment] keys | concrete test accuracy | uav75 window AUROC | uav75 window F1 |")
print("| --- | --- | --- | --- | --- |")
for v in variants:
    keys = open(f"{out}/{v}.toml").read().split("\n", 1)[1].strip().replace("\n", ", ")
    acc = json.load(open(f"{out}/{v}/report.json"))["accuracy"]
    win = json.load(open(f"{out}/{v}/scan-uav75/metrics.json"))["window"]
    print(f"| {v} | {keys or '(seed recipe)'} | {fmt(acc)} | {fmt(win.get('auroc'))} | {fmt(win.get('f1'))} |")
PY
