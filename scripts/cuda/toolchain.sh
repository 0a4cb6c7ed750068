#!/usr/bin/env bash
# Prepares a CUDA 13.0 build toolchain from PyPI on a machine without a GPU or a CUDA install, for
# `scripts/cuda/build.sh`. Idempotent: a second run only checks. See docs/cuda.md.
#
#   scripts/cuda/toolchain.sh [DIR]      (default: target/cuda-toolchain)
#
# What it makes in DIR:
#   venv/                 the pinned nvidia-* wheels (nvcc, headers, cuBLAS, cuRAND, NVRTC)
#   cuda/bin/nvcc         -> the wheel's nvcc (candle-kernels and cudarc run `nvcc --version`)
#   cuda/include          the wheels' headers in one tree
#   cuda/lib64/*.so       unversioned links to the wheels' libraries, plus libcuda.so: a link stub
#                         (SONAME libcuda.so.1) defining the driver API symbols cudarc refers to.
#                         Only the linker sees the stub; the GPU machine's real driver is loaded at run time.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-target/cuda-toolchain}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

# One CUDA release for every part: unpinned, pip mixes in newer parts, and PTX newer than the
# GPU machine's driver (CUDA 13.0) does not load.
packages=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35
)

# pip runs as `python -m pip`: the venv's own scripts name the folder it was made in, so a
# toolchain folder that was copied or moved would fail there.
if ! "$dir/venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$dir/venv"
  python3 -m venv "$dir/venv"
fi
"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"

site="$("$dir/venv/bin/python" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')/nvidia"
# CUDA 13 wheels install into nvidia/cu13/{bin,include,lib}; older layouts use nvidia/<part>/...
roots=()
for r in "$site"/cu13 "$site"/*/; do [ -d "$r" ] && roots+=("${r%/}"); done

cuda="$dir/cuda"
rm -rf "$cuda"
mkdir -p "$cuda/bin" "$cuda/include" "$cuda/lib64"
for r in "${roots[@]}"; do
  [ -d "$r/bin" ] && for f in "$r"/bin/*; do ln -sf "$f" "$cuda/bin/"; done
  [ -d "$r/include" ] && cp -rs "$r/include/." "$cuda/include/" 2>/dev/null || true
  if [ -d "$r/lib" ]; then
    for f in "$r"/lib/*.so*; do
      [ -e "$f" ] || continue
      ln -sf "$f" "$cuda/lib64/"
      base="$(basename "$f")"
      ln -sf "$f" "$cuda/lib64/${base%%.so*}.so"
    done
  fi
done
# nvcc looks for nvvm/ and its crt headers beside itself.
for r in "${roots[@]}"; do
  [ -d "$r/nvvm" ] && ln -sfn "$r/nvvm" "$cuda/nvvm"
done
[ -x "$cuda/bin/nvcc" ] || { echo "nvcc not found in the wheels under $site" >&2; exit 1; }

# The driver stub: every cu* function cudarc's driver bindings declare, as an empty function
sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys 2>/dev/null | tail -1 || true)"
if [ -z "$sys" ]; then
  cargo fetch --quiet
  sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys | tail -1)"
fi
# (the names inside their `extern "C"` blocks are the exported symbol names)
grep -rhoE '^\s+fn cu[A-Za-z0-9_]+\(' "$sys" | sed -E 's/^\s+fn //; s/\($//' | sort -u |
  sed 's/.*/void &(void) {}/' > "$dir/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib64/libcuda.so" "$dir/libcuda_stub.c"

"$cuda/bin/nvcc" --version | tail -2
echo "CUDA toolchain ready in $cuda ($(wc -l < "$dir/libcuda_stub.c") driver symbols in the link stub)"
