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
#   1. the README's first table: PatchCore-lite replicated in examples/oneclass_ablation.rs and its
#      parts changed one at a time (axes reference, fire5, edge), on the split
#      --split 0.25,0.2,0.3 --split-seed 0: 500 normal images to fit, choices read on the 400 + 400
#      validation images, figures reported on the 600 + 600 held-out test images; every row's
#      per-image scores and the random bank it drew go to OUT/seed0/scores;
#   2. scripts/patchcore_lite.py scoring with that same bank, and the largest relative difference
#      of any image's score between the two (the replication check);
#   3. the README's second table: one change at a time from the defaults before it (fire3 + fire5,
#      64 channel-group means each, 3x3, edge inside, coreset of at most 1024 from 40,000);
#   4. the README's third table: one change at a time from the defaults of its time (fire5 alone,
#      every channel, 3x3, zeros at the border, coreset of at most 1024 from 40,000): the number of
#      normal images, random banks of 1k to 32k, random projections of the channels, 5x5
#      neighbourhoods, the layer pairs fire4+fire5 and fire5+fire7 (the defaults since);
#   5. the bank-size table at the defaults (fire5+fire7): random banks of 1k to 8k and coresets of
#      1024, 2048 and 4096, on each split seed's held-out test split only;
#   6. per split seed (0, then 1 to confirm what was chosen on 0): the defaults, fire5 alone and
#      the defaults before it with `crackscope train --one-class` (the command users run), and
#      scripts/patchcore_lite.py with its own bank on the same split manifest.
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

"$ABLATION" --data "$CONCRETE" --weights "$WEIGHTS" --out "$OUT/seed0" --scores \
    --axis reference --axis fire5 --axis edge
if [ -x "$PYTHON" ]; then
    reference=$OUT/seed0/scores/reference--fire5--zeros--random-20000
    "$PYTHON" scripts/patchcore_lite.py "$OUT/seed0/split.json" --weights "$WEIGHTS" \
        --bank-indices "$reference.bank.json" --scores "$OUT/seed0/patchcore_lite_same_bank.csv" \
        --json "$OUT/seed0/patchcore_lite_same_bank.json"
    "$PYTHON" - "$reference.csv" "$OUT/seed0/patchcore_lite_same_bank.csv" <<'EOF_PY'
import csv, sys
ours, theirs = ({(r["split"], r["path"]): float(r["score"]) for r in csv.DictReader(open(f))} for f in sys.argv[1:])
worst = max(abs(ours[k] - theirs[k]) / theirs[k] for k in theirs)
print(f"same bank: {len(theirs)} images, largest relative score difference {worst:.2e}")
EOF_PY
fi

# The earlier rows start from the settings that ablation was made from (the defaults before it):
# fire3 + fire5, 64 channel-group means each, 3x3, edge inside, a coreset of at most 1024 from 40,000.
"$ABLATION" --data "$CONCRETE" --weights "$WEIGHTS" --out "$OUT/seed0/earlier" \
    --base-values mean:64 --base-bank 1024 --base-sampling coreset --base-candidates 40000 \
    --base-neighbourhood 3 --base-layers fire3-concat,fire5-concat --base-edge inside \
    --axis base --axis bank --axis candidates --axis values --axis layers --axis neighbourhood \
    --axis sampling --axis normal-images --axis combined

# From the defaults of the time (fire5 alone); the rows measured in the tables above are skipped.
"$ABLATION" --data "$CONCRETE" --weights "$WEIGHTS" --out "$OUT/seed0/defaults" \
    --base-layers fire5-concat \
    --axis normal-images --axis bank --axis values --axis neighbourhood --axis layers \
    --skip "values mean:32" --skip "values mean:64" --skip "values mean:128" --skip "values all" \
    --skip "layers fire5-concat" --skip "layers fire2-concat+fire3-concat" \
    --skip "layers fire3-concat+fire5-concat" --skip "neighbourhood 1x1" --skip "neighbourhood 3x3"

# The bank's size at the current defaults (the example's built-in base settings), held out only.
# Random banks of 16k, 32k and all patches are left out: at 640 values the lower bound rules out
# few entries and their search did not end in the time there was.
for seed in 0 1; do
    "$ABLATION" --data "$CONCRETE" --weights "$WEIGHTS" --out "$OUT/seed$seed/banks" \
        --split-seed "$seed" --held-out-only --axis bank --axis coreset \
        --skip "bank 16384 (random)" --skip "bank 32768 (random)"
done

for seed in 0 1; do
    dir=$OUT/seed$seed
    mkdir -p "$dir"
    rm -rf "$dir/run"
    "$CRACKSCOPE" train --one-class --headless --data "$CONCRETE" --weights "$WEIGHTS" \
        --split 0.25,0.2,0.3 --seed "$seed" --run "$dir/run" | tee "$dir/train.txt"
    rm -rf "$dir/fire5"
    "$CRACKSCOPE" train --one-class --headless --data "$CONCRETE" --weights "$WEIGHTS" \
        --split 0.25,0.2,0.3 --seed "$seed" --layers fire5-concat --run "$dir/fire5" | tee "$dir/train_fire5.txt"
    rm -rf "$dir/previous"
    "$CRACKSCOPE" train --one-class --headless --data "$CONCRETE" --weights "$WEIGHTS" \
        --split 0.25,0.2,0.3 --seed "$seed" --layers fire3-concat,fire5-concat --edge inside \
        --run "$dir/previous" | tee "$dir/train_previous.txt"
    if [ -x "$PYTHON" ]; then
        "$PYTHON" scripts/patchcore_lite.py "$dir/run/split.json" --weights "$WEIGHTS" \
            --json "$dir/patchcore_lite.json"
    else
        echo "no $PYTHON: the PyTorch reference is skipped" >&2
    fi
done
echo "tables: $OUT/seed0/ablation.md, $OUT/seed0/earlier/ablation.md, $OUT/seed0/defaults/ablation.md; banks: $OUT/seed*/banks/ablation.md; defaults: $OUT/seed*/run/report.json; fire5 alone: $OUT/seed*/fire5/report.json; previous defaults: $OUT/seed*/previous/report.json; reference: $OUT/seed*/patchcore_lite.json"
