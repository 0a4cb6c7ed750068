#!/usr/bin/env bash
# The labelling loop of the scan view, measured with labels drawn from the drone photos' true
# masks as a person would give them: does labelling the windows the tool suggests teach a concrete-patch model the drone photos faster than labelling
# windows at random, and how close to the ceiling (every window of the labelled photos, cut from
# their masks) do a few hundred labels come?
#
#   scripts/labelling_loop.sh [OUT]        (default OUT: runs/labelling-loop)
#
# For each draw (DRAWS, default "1 2"): HELD_OUT (15) of the 60 drone photos are held out by source
# photo (as scripts/uav75_experiment.sh chooses them, sha256 order of the photo ids for the draw's
# seed); the other 45 are the pool to label. Start: a model fine-tuned on the concrete patches alone
# (START_EPOCHS passes over 10 % of concrete-ozgenel). Then, for each order (SUGGESTED, default
# spread: the view's suggestions, `scan::labels::suggest`, or least-sure, its order before; or
# typical, the view's `y` (the most typical window of each cluster no label covers, by the scan's
# window descriptors); or typical-prototype, scripts/typical_windows.py, the same idea outside
# the tool, which needs PyTorch: PYTHON=/path/to/venv/bin/python; and random), the loop a person runs: scan the pool with the
# latest model, label windows until BUDGET of them have a crack / no-crack answer (skips do not
# count), retrain from the start model on all labels so far (train --init START --data
# POOL_SCAN, config/labelling-loop.toml), for each budget of BUDGETS (default "50 100 200").
# The labeller is examples/label_oracle.rs: it walks the windows in the order given and answers
# each from the true mask by `patches`' central-region rule (crack: crack pixels cover 0.005 of
# the window's middle half; no crack: no crack pixel at all; anything else: skip). Ceiling: the
# same retraining on `patches` of all 45 pool photos (every window the rule labels). Every model
# is scored on the held-out photos with `scan --masks` (window AUROC and F1 at 0.5).
# RARE=N makes the pool one where cracks are rare (label_oracle's --rare: one in N of the windows
# holding crack pixels is offered, the rest not at all); the ceiling is then every offered window.
# DESCRIPTORS=alone scans the pool with `--descriptors alone` (each window described as it is run
# alone; the typical order reads them). SCAN_WITH=start labels every round in a scan made with the
# start model (the person keeps labelling in the folder of the first scan, whose descriptors then
# stay the same from round to round) instead of the latest model's. ORDERS (default: SUGGESTED
# and random) picks the orders run, for example ORDERS=typical to add seeds to one order whose
# random column exists.
# A retraining refused for too few windows of a class (the person keeps the model they had) is a
# row "untrainable".
# Steps whose output exists are not redone, so an interrupted measurement continues.
# Measured (README, "The labelling loop, measured"): about half an hour for four draws on a
# 2-core machine.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/uav75_heldout.sh"
out=${1:-$here/runs/labelling-loop}
data=${DATA:-${CRACKSCOPE_TEST_DATA:-$here/../shared/data}}
bin=${BIN:-$here/target/release/crackscope}
oracle=${ORACLE:-$here/target/release/examples/label_oracle}
draws=${DRAWS:-1 2}
budgets=${BUDGETS:-50 100 200}
held_out=${HELD_OUT:-15}
start_epochs=${START_EPOCHS:-2}
recipe=${RECIPE:-$here/config/labelling-loop.toml}
suggested=${SUGGESTED:-spread}
python=${PYTHON:-python3}
# Seed of the retrainings (their split of the labels, shuffling, augmentation): a retraining on a
# few hundred labels varies with it, so compare orders over several (SEED=11 OUT=... and so on).
seed=${SEED:-0}
rare=${RARE:-}
descriptors=${DESCRIPTORS:-shared}
scan_with=${SCAN_WITH:-latest}
[[ $scan_with == latest || $scan_with == start ]] || { echo "SCAN_WITH is latest or start, not $scan_with" >&2; exit 1; }
orders=${ORDERS:-$suggested random}
export RAYON_NUM_THREADS=${THREADS:-2}
uav=$data/photos/uav75
concrete=$data/concrete-ozgenel
weights=$data/pretrained/squeezenet1_1.safetensors
for need in "$uav/images" "$uav/cracks" "$concrete" "$weights" "$bin" "$oracle" "$recipe"; do
    [[ -e $need ]] || { echo "missing $need (data: DATA=...; programs: cargo build --release --example label_oracle)" >&2; exit 1; }
done
mkdir -p "$out"
log() { echo "[$(date +%H:%M:%S)] $*"; }

train() { # run-dir, flags...
    local run=$1; shift
    [[ -f $run/model.safetensors && -f $run/report.json ]] && return 0
    rm -rf "$run"
    "$bin" train "$@" --run "$run" --headless > "$run.log" 2>&1 || { tail -20 "$run.log" >&2; return 1; }
}
score() { # model, held-out photos, scan folder -> "auroc f1"
    [[ -f $3/metrics.json ]] ||
        "$bin" scan --model "$1" "$2" --masks "$uav/cracks" --out "$3" --json > /dev/null
    jq -r '.window | "\(.auroc) \(.f1)"' "$3/metrics.json"
}

log "start model: concrete patches only"
train "$out/start" --data "$concrete" --weights "$weights" --split 0.1,0.1,0.1 \
    --epochs "$start_epochs" --batch-size 32 --val-every 10 --device cpu
table=$out/table.tsv
: > "$table"
for draw in $draws; do
    d=$out/draw-$draw
    mkdir -p "$d"
    if [[ ! -s $d/heldout.txt ]]; then
        uav75_hold_out "$uav/images" "$draw" "$held_out" "$d" pool
    fi
    for part in pool heldout; do
        rm -rf "$d/photos-$part" && mkdir -p "$d/photos-$part"
        while read -r f; do ln -s "$uav/images/$f" "$d/photos-$part/$f"; done < "$d/$part.txt"
    done
    log "draw $draw: $(wc -l < "$d/pool.txt") pool photos, $(wc -l < "$d/heldout.txt") held out"
    read -r auroc f1 < <(score "$out/start" "$d/photos-heldout" "$d/heldout-start")
    printf '%s\tstart\t0\t%s\t%s\n' "$draw" "$auroc" "$f1" >> "$table"
    for order in $orders; do
        previous=""
        model=$out/start
        for budget in $budgets; do
            s=$d/$order-$budget
            if [[ ! -f $s/labels.csv ]]; then
                # The person's screen: the pool scanned with the latest model (or the start's).
                rm -rf "$s"
                screen=$model
                [[ $scan_with == start ]] && screen=$out/start
                "$bin" scan --model "$screen" "$d/photos-pool" --out "$s" --descriptors "$descriptors" > /dev/null
                [[ -n $previous ]] && cp "$previous/labels.csv" "$s/labels.csv"
                if [[ $order == typical-prototype ]]; then
                    "$python" "$here/scripts/typical_windows.py" "$s" "$model" "$uav/cracks" "$budget" \
                        --seed "$draw" ${rare:+--rare "$rare"} > "$s.oracle.txt"
                else
                    "$oracle" "$s" "$uav/cracks" --budget "$budget" --order "$order" --seed "$draw" \
                        ${rare:+--rare "$rare"} > "$s.oracle.txt"
                fi
            fi
            log "draw $draw, $order, $budget: $(cat "$s.oracle.txt")"
            previous=$s
            if ! train "$s-run" --config "$recipe" --init "$out/start" --data "$s" --seed "$seed" --device cpu 2> /dev/null; then
                printf '%s\t%s\t%s\tuntrainable\tuntrainable\n' "$draw" "$order" "$budget" >> "$table"
                log "  untrainable: $(grep -m1 error "$s-run.log")"
                continue
            fi
            read -r auroc f1 < <(score "$s-run" "$d/photos-heldout" "$s-heldout")
            printf '%s\t%s\t%s\t%s\t%s\n' "$draw" "$order" "$budget" "$auroc" "$f1" >> "$table"
            log "  held out: window AUROC $auroc, F1 $f1"
            model=$s-run
        done
    done
    if [[ -n $rare ]]; then
        # Every window the rare pool offers, labelled by the same rule.
        ceiling=$d/ceiling-scan
        if [[ ! -f $ceiling/labels.csv ]]; then
            rm -rf "$ceiling"
            "$bin" scan --model "$out/start" "$d/photos-pool" --out "$ceiling" > /dev/null
            "$oracle" "$ceiling" "$uav/cracks" --budget 1000000 --order random --rare "$rare" > "$ceiling.oracle.txt"
        fi
        windows=$(grep -c -v -e ',skip$' -e '^photo,' "$ceiling/labels.csv")
    else
        ceiling=$d/patches-pool
        [[ -d $ceiling ]] || "$bin" patches --photos "$d/photos-pool" --masks "$uav/cracks" --out "$ceiling" > /dev/null
        windows=$(find "$ceiling" -name '*.jpg' | wc -l)
    fi
    log "draw $draw, ceiling: $windows windows of the pool photos"
    train "$d/ceiling-run" --config "$recipe" --init "$out/start" --data "$ceiling" --seed "$seed" --device cpu
    read -r auroc f1 < <(score "$d/ceiling-run" "$d/photos-heldout" "$d/heldout-ceiling")
    printf '%s\tceiling\t%s\t%s\t%s\n' "$draw" "$windows" "$auroc" "$f1" >> "$table"
    log "  ceiling held out: window AUROC $auroc, F1 $f1"
done
echo
echo "held-out photos, window AUROC / F1 (share of the ceiling's AUROC gain over the start):"
awk -F'\t' -v suggested="$suggested" '
    function cell(auroc, f1, gain) {
        return auroc == "untrainable" ? "untrainable" : sprintf("%.3f / %.3f (%3.0f %%)", auroc, f1, 100 * gain)
    }
    $2 == "start" { start[$1] = $4; sf[$1] = $5 }
    $2 == "ceiling" { ceil[$1] = $4; cf[$1] = $5; n[$1] = $3 }
    $2 != "start" && $2 != "ceiling" { a[$1, $2, $3] = $4; f[$1, $2, $3] = $5; budgets[$3] = 1; draws[$1] = 1 }
    END {
        for (d in draws) {
            printf "draw %s: start %.3f / %.3f, ceiling (%d windows) %.3f / %.3f\n", d, start[d], sf[d], n[d], ceil[d], cf[d]
            for (b in budgets) {
                gs = (ceil[d] - start[d]) ? (a[d, suggested, b] - start[d]) / (ceil[d] - start[d]) : 0
                gr = (ceil[d] - start[d]) ? (a[d, "random", b] - start[d]) / (ceil[d] - start[d]) : 0
                printf "  %4s labels: suggested %s   random %s\n", b,
                    cell(a[d, suggested, b], f[d, suggested, b], gs), cell(a[d, "random", b], f[d, "random", b], gr)
            }
        }
    }' "$table"
