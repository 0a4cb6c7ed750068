#!/usr/bin/env bash
# Peak resident memory of trainings of different lengths on the same data: with memory flat after
# the first steps, the peaks are about equal; if each step leaked, they grow with the epochs.
#
#   scripts/peak_rss.sh [crackscope binary] [epochs ...]
#   scripts/peak_rss.sh target/release/crackscope 2 8
#
# Trains the demo's synthetic data (made once, 64 px) headless for each epoch count, with the demo
# recipe's L2 (the term that leaked), and prints "epochs iterations peak_rss_mb seconds".
# Needs GNU time (/usr/bin/time). CRACKSCOPE_PER_CLASS sets the images per class (default 200).
set -euo pipefail
bin=${1:-target/release/crackscope}
shift || true
epochs=("$@")
[ ${#epochs[@]} -gt 0 ] || epochs=(2 8)
per_class=${CRACKSCOPE_PER_CLASS:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" synth --out "$work/data" --per-class "$per_class" --size 64 --seed 7 >/dev/null
echo "epochs iterations peak_rss_mb seconds"
for e in "${epochs[@]}"; do
  run="$work/run-$e"
  /usr/bin/time -v -o "$work/time-$e" "$bin" train --config config/demo.toml --data "$work/data" \
    --epochs "$e" --device cpu --run "$run" --headless >/dev/null 2>&1
  kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time-$e")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time-$e")
  its=$(grep -c '"event":"iteration"' "$run/metrics.jsonl")
  echo "$e $its $((kb / 1024)) $secs"
done
