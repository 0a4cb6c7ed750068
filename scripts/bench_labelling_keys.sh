#!/usr/bin/env bash
# How long the scan view takes to answer a labelling key, timed key by key through tmux on the
# real binary: from `x` (no crack) being sent to the status line counting it (the label saved),
# and to the next suggested window's picture on the screen (its photo opened if it is another,
# zoomed onto and framed). It bounds how many windows a minute the tool lets a person label; the
# person's own pace is what the view says when a session ends.
#
#   scripts/bench_labelling_keys.sh SCAN_FOLDER [ANSWERS] [ORDER_KEY]
#
# SCAN_FOLDER is copied (without its labels.csv) so the original is left as it was; ANSWERS
# (default 40) keys are timed; ORDER_KEY is the view's key for the order (default y: typical
# windows; l: spread over scores; L: top-scored). BIN picks the binary (default the release
# build), COLUMNS_ROWS the terminal's size (default 160x45; pictures in half blocks), LOOK the
# seconds each window is looked at before its answer is sent, as a person would (default 1; the
# view opens the next window's photo meanwhile). Prints each answer's milliseconds, then medians
# and 90th percentiles.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
folder=${1:?usage: $0 SCAN_FOLDER [ANSWERS] [ORDER_KEY]}
answers=${2:-40}
order_key=${3:-y}
bin=${BIN:-$here/target/release/crackscope}
size=${COLUMNS_ROWS:-160x45}
look=${LOOK:-1}
[[ -f $folder/scan.json ]] || { echo "$folder: no scan.json, not a scan folder" >&2; exit 1; }
[[ -x $bin ]] || { echo "$bin: not built (cargo build --release)" >&2; exit 1; }
command -v tmux > /dev/null || { echo "tmux is not installed" >&2; exit 1; }

work=$(mktemp -d)
session=crackscope-label-keys-$$
trap 'tmux kill-session -t "$session" 2> /dev/null || true; rm -rf "$work"' EXIT
cp -r "$folder" "$work/scan"
rm -f "$work/scan/labels.csv" "$work/scan/scan.lock"

tmux new-session -d -s "$session" -x "${size%x*}" -y "${size#*x}" \
    "CRACKSCOPE_GRAPHICS=halfblocks '$bin' watch '$work/scan'; sleep 600"
now_ms() { date +%s%3N; }
rows=${size#*x}
screen() { tmux capture-pane -p "$@" -t "$session"; }
# The picture and the photo list: every line but the header and the three status lines.
picture() { screen -e | sed -n "3,$((rows - 4))p" | md5sum; }
fail() { echo "$1; screen:" >&2; screen >&2; exit 1; }
wait_for() { # text, limit in seconds
    local until=$(($(now_ms) + $2 * 1000))
    until screen | grep -qF -- "$1"; do
        (($(now_ms) < until)) || fail "'$1' did not appear"
        sleep 0.005
    done
}
wait_for_picture() { # the picture before, limit in seconds
    local until=$(($(now_ms) + $2 * 1000))
    while screen | grep -qF "opening " || [[ $(picture) == "$1" ]]; do
        (($(now_ms) < until)) || fail "the picture did not change"
        sleep 0.005
    done
}
wait_for "zoom ×1" 60
tmux send-keys -t "$session" "$order_key"
wait_for "labels 0:" 120
saved=() shown=()
for ((i = 1; i <= answers; i++)); do
    sleep "$look"
    before=$(picture)
    start=$(now_ms)
    tmux send-keys -t "$session" x
    wait_for "labels $i: 0 crack, $i no crack" 60
    saved+=($(($(now_ms) - start)))
    wait_for_picture "$before" 60
    shown+=($(($(now_ms) - start)))
    echo "answer $i: saved in ${saved[-1]} ms, next window shown in ${shown[-1]} ms"
done
summary() { # what, then the times
    local what=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v what="$what" '{ t[NR] = $1 } END {
        median = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
        p90 = t[int(0.9 * NR + 0.999)]
        printf "%s: median %d ms, 90th percentile %d ms, slowest %d ms (%d answers)\n", what, median, p90, t[NR], NR
    }'
}
summary "label saved" "${saved[@]}"
summary "next window shown" "${shown[@]}"
