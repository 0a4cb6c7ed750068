#!/usr/bin/env bash
# Builds the `--features cuda` binary (and the GPU test binary) on a machine without a GPU, with the
# toolchain of scripts/cuda/toolchain.sh, for Hopper GPUs (H100/H200) by default. See docs/cuda.md.
#
#   scripts/cuda/build.sh            -> target/gpu-bundle/crackscope-cuda.tar.xz
#
# The bundle folder is what travels to the GPU machine (64 MiB at most): the stripped `crackscope` and
# `gpu-tests` binaries packed with xz, and the ImageNet weights when they are at hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
toolchain="${CUDA_TOOLCHAIN:-target/cuda-toolchain}"
[ -x "$toolchain/cuda/bin/nvcc" ] || scripts/cuda/toolchain.sh "$toolchain"
cuda="$(cd "$toolchain/cuda" && pwd)"

export CUDA_HOME="$cuda" CUDA_PATH="$cuda"
export PATH="$cuda/bin:$PATH"
export LIBRARY_PATH="$cuda/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}"
# No nvidia-smi here to ask: 90 is Hopper (H100, H200). Override for other GPUs.
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# Its own target directory: the cuda build shares nothing with the CPU build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"

cargo build --release --features cuda --bin crackscope
# The GPU tests, as one binary (tests/gpu.rs) that travels beside the tool.
test_bin="$(cargo test --release --features cuda --test gpu --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)"
[ -n "$test_bin" ] || { echo "could not build tests/gpu.rs" >&2; exit 1; }

out=target/gpu-bundle
rm -rf "$out" && mkdir -p "$out/bin"
strip -o "$out/bin/crackscope" "$CARGO_TARGET_DIR/release/crackscope"
strip -o "$out/bin/gpu-tests" "$test_bin"
# Which source the binaries are, so the GPU run can say (a stale bundle wastes device time).
git describe --always --dirty > "$out/bin/COMMIT" 2>/dev/null || echo unknown > "$out/bin/COMMIT"
tar -C "$out" -cJf "$out/crackscope-cuda.tar.xz" bin
rm -rf "$out/bin"
# The ImageNet weights, when this machine has them, so that the GPU run fine-tunes as the seed does.
data="${CRACKSCOPE_TEST_DATA:-../shared/data}"
for f in squeezenet1_1.safetensors squeezenet1_1.pth; do
  [ -f "$data/pretrained/$f" ] && cp "$data/pretrained/$f" "$out/"
done
ls -l "$out/crackscope-cuda.tar.xz"
