#!/usr/bin/env bash
# Reruns the one-class ablation of the README's one-class section, and the PyTorch reference beside it.
#
#   scripts/oneclass_ablation.sh [OUT]        (default OUT: target/oneclass-ablation)
#
# Needs the concrete patches and the ImageNet weights (CRACKSCOPE_TEST_DATA, default ../shared/data:
# concrete-ozgenel/{Negative,Positive} and pretrained/squeezenet1_1.pth), and for the reference a
# Python with torch and torchvision (PYTHON, default /work/venvs/torch/bin/python; skipped if absent).
#
# What it runs, one after the other (run it on an otherwise quiet machine: the images/s figures are
# timings):
#   1. every row of examples/oneclass_ablation.rs (one change of the settings at a time from the
#      defaults of the time the table was made, then the combined rows) on the split
#      --split 0.25,0.2,0.3 --split-seed 0: 500 normal images to fit, choices read on the 400 + 400
#      validation images, figures reported on the 600 + 600 held-out test images;
#   2. the defaults against the same split with `crackscope train --one-class` (the command users run);
#   3. scripts/patchcore_lite.py on the same split manifest (OUT/seed0/split.json);
#   4. steps 2 and 3 again on a second split (--split-seed 1), to confirm what was chosen on the first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/oneclass-ablation}
DATA=${CRACKSCOPE_TEST_DATA:-../shared/data}
PYTHON=${PYTHON:-/work/venvs/torch/bin/python}
WEIGHTS=$DATA/pretrained/squeezenet1_1.pth
CONCRETE=$DATA/concrete-ozgenel
mkdir -p "$OUT"

cargo build --release --example oneclass_ablation
cargo build --release
ABLATION=target/release/examples/oneclass_ablation
CRACKSCOPE=target/release/crackscope

# The one-at-a-time rows start from the settings the ablation was made from (the defaults before it):
# fire3 + fire5, 64 channel-group means each, 3x3, a coreset of at most 1024 from 40,000 candidates.
"$ABLATION" --data "$CONCRETE" --weights "$WEIGHTS" --out "$OUT/seed0" \
    --base-values mean:64 --base-bank 1024 --base-sampling coreset --base-candidates 40000 \
    --base-neighbourhood 3 --base-layers fire3-concat,fire5-concat \
    --axis base --axis bank --axis candidates --axis values --axis layers --axis neighbourhood \
    --axis sampling --axis normal-images --axis combined

for seed in 0 1; do
    dir=$OUT/seed$seed
    mkdir -p "$dir"
    rm -rf "$dir/run"
    "$CRACKSCOPE" train --one-class --headless --data "$CONCRETE" --weights "$WEIGHTS" \
        --split 0.25,0.2,0.3 --seed "$seed" --run "$dir/run" | tee "$dir/train.txt"
    if [ -x "$PYTHON" ]; then
        "$PYTHON" scripts/patchcore_lite.py "$dir/run/split.json" --weights "$WEIGHTS" \
            --json "$dir/patchcore_lite.json"
    else
        echo "no $PYTHON: the PyTorch reference is skipped" >&2
    fi
done
echo "table: $OUT/seed0/ablation.md; defaults: $OUT/seed*/run/report.json; reference: $OUT/seed*/patchcore_lite.json"
