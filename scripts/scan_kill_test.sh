#!/usr/bin/env bash
# A scan killed (SIGKILL) at random moments, continued by the same command each time, must end
# with the scan.json of a scan never interrupted; after every kill the folder must agree with its
# scan.json: every recorded photo's pictures there, and no other picture but those of photos not
# recorded yet (the one under way, and those finished since the record was last written: it is
# rewritten after a photo only when that costs under a twentieth of the time since the last write),
# which the continuing scan removes and scans again.
#
#   scripts/scan_kill_test.sh [PHOTOS] [KILLS] [SIZE]     (defaults: 500 photos, 10 kills, 256 px)
#
# Makes a model (`crackscope demo --headless`, one epoch; MODEL=PATH uses yours) and PHOTOS
# synthetic photos of SIZE px (`crackscope synth --photos`), scans them once uninterrupted under
# /usr/bin/time -v (wall time and peak RSS), then scans them again into another folder, killing the
# scan KILLS times after a random delay (uniform between 0.2 s and 1.5 times the uninterrupted scan's
# time over KILLS) and continuing it, and compares the two scan.json files (photos with their
# windows and fractions, failures, settings). BIN=path picks the binary (default
# target/release/crackscope). SEED=N fixes the delays.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${1:-500}
KILLS=${2:-10}
SIZE=${3:-256}
BIN=$(realpath "${BIN:-target/release/crackscope}")
RANDOM=${SEED:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -n "${MODEL:-}" ]; then
  model=$(realpath "$MODEL")
else
  "$BIN" demo --headless --per-class 30 --epochs 1 --run "$WORK/run" >/dev/null 2>&1
  model=$WORK/run
fi
"$BIN" synth --out "$WORK/surfaces" --photos "$PHOTOS" --size "$SIZE" --detail 64 >/dev/null
photos=$WORK/surfaces/photos

/usr/bin/time -v -o "$WORK/time" "$BIN" scan --model "$model" "$photos" --out "$WORK/whole" \
  >/dev/null 2>&1
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time")
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time")
whole_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$WORK/time")
echo "uninterrupted: $PHOTOS photos of ${SIZE}px in $wall, peak RSS $((rss_kb / 1024)) MiB"

check() { # the folder agrees with its scan.json; prints the photos recorded
  python3 - "$1" <<'EOF'
import json, os, sys
folder = sys.argv[1]
record = json.load(open(os.path.join(folder, "scan.json")))
named = {"scan.json", "scan.lock"}
for p in record["photos"]:
    for key in ("overlay", "mask", "map"):
        assert p[key] not in named, f"{p[key]} named twice"
        assert os.path.isfile(os.path.join(folder, p[key])), f"{p[key]} missing"
        named.add(p[key])
recorded = {p["overlay"].rsplit("-", 1)[0] for p in record["photos"]}
extra = sorted(n for n in set(os.listdir(folder)) - named if not n.startswith("."))
unrecorded = set()
for n in extra:
    stem, _, kind = n.rpartition("-")
    assert kind in ("overlay.png", "mask.png", "map.png") and stem not in recorded, f"stray file {n}"
    unrecorded.add(stem)
print(f"{len(record['photos'])}+{len(unrecorded)}")
EOF
}

max_ms=$(python3 -c "print(max(300, int(1500 * $whole_s / $KILLS)))")
args=(scan --model "$model" "$photos" --out "$WORK/killed")
kills=0
progress=()
while [ "$kills" -lt "$KILLS" ]; do
  "$BIN" "${args[@]}" >/dev/null 2>&1 &
  pid=$!
  delay_ms=$((200 + RANDOM % (max_ms - 200)))
  sleep "$(python3 -c "print($delay_ms / 1000)")"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || true
    echo "the scan finished before kill $((kills + 1)); continuing with the kills done"
    break
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  kills=$((kills + 1))
  if [ -f "$WORK/killed/scan.json" ]; then
    progress+=("$(check "$WORK/killed")")
  else
    progress+=(0)
  fi
done
"$BIN" "${args[@]}" >/dev/null 2>&1
check "$WORK/killed" >/dev/null
echo "kills: $kills at random moments; after each, photos recorded+photos with pictures not yet recorded: ${progress[*]}"
python3 - "$WORK/whole/scan.json" "$WORK/killed/scan.json" <<'EOF'
import json, sys
whole, killed = (json.load(open(p)) for p in sys.argv[1:3])
for key in ["photos", "failed", "settings", "plan", "finished"]:
    if whole.get(key) != killed.get(key):
        print(f"differ: {key}")
        sys.exit(1)
print(f"equal: {len(whole['photos'])} photos, {sum(len(p['windows']) for p in whole['photos'])} windows")
EOF
