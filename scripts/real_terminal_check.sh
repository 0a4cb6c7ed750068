#!/usr/bin/env bash
# The pictures in real terminal emulators, judged from screenshots (issue 20's check).
#
#   scripts/real_terminal_check.sh [TERMINAL ...]     # default: xterm mlterm kitty konsole
#
# For each terminal (xterm started with -ti vt340 for sixel, mlterm, kitty, Konsole), with and
# without tmux inside it, on a virtual X display (Xvfb): the dashboard (`crackscope watch` of a
# finished demo run), the scan view, `samples` and `gradcam`, in every graphics mode (auto,
# sixel, kitty, iterm2, halfblocks). Keys are typed with xdotool and the window is photographed
# with ImageMagick's `import` after each; the check asserts from the pixels that the program is
# still running after every key, that every picture it drew is on screen where it drew it, as
# the pixels it sent (or as those colours in half blocks), and that nothing of a picture stays
# once a view no longer shows it. A forced protocol the terminal does not draw must be refused.
#
# Needs: Xvfb, xdotool, import (imagemagick), tmux and the terminals themselves (Debian packages
# xvfb xdotool imagemagick tmux xterm mlterm kitty konsole). Screenshots, the programs' picture
# logs and one table per terminal (TERMINAL.txt: terminal x mode x screen -> picture / blocks /
# refused, and the seconds from the grid key to the finished 45-picture grid) go to
# $CRACKSCOPE_REAL_TERMINALS_OUT (default target/real-terminals). Set
# CRACKSCOPE_REAL_TERMINALS_ONLY to a part of a case's label ("kitty · auto") to run fewer.
set -euo pipefail
cd "$(dirname "$0")/.."

terminals=("$@")
if [ ${#terminals[@]} -eq 0 ]; then
  terminals=(xterm mlterm kitty konsole)
fi
for program in Xvfb xdotool import tmux "${terminals[@]}"; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "real-terminal check: $program is not installed" >&2
    exit 2
  fi
done

export CRACKSCOPE_REAL_TERMINALS="${terminals[*]}"
export CRACKSCOPE_REAL_TERMINALS_OUT="${CRACKSCOPE_REAL_TERMINALS_OUT:-$PWD/target/real-terminals}"
mkdir -p "$CRACKSCOPE_REAL_TERMINALS_OUT"
# One terminal at a time: they share the machine's CPUs, and the timings are reported.
cargo test --release --test real_terminals -- --test-threads=1 --nocapture
for t in "${terminals[@]}"; do
  echo "== $t"
  cat "$CRACKSCOPE_REAL_TERMINALS_OUT/$t.txt"
done
