#!/usr/bin/env bash
# Build a llama-cpp-python 0.3.36 wheel for one backend, for a bundle to give to others.
#
#   packaging/build-llama-gpu.sh cpu|cuda|vulkan|metal [OUT_DIR]
#
# The wheel lands in OUT_DIR (default build/wheels/<backend>/); then build the bundle from it:
#   SIZEWISE_BUILD_VENV=build/venv-<backend> SIZEWISE_LLAMA_WHEEL=build/wheels/<backend>/llama_cpp_python-0.3.36-*.whl \
#     packaging/build.sh
# Extra CMake flags: SIZEWISE_CMAKE_ARGS="…" (appended). See packaging/gpu-builds.md for what each
# backend needs on the build machine and what the app shows when it runs.
#
# Every variant sets GGML_NATIVE=OFF: pip's default build tunes llama.cpp for the build machine's
# CPU (-march=native), and such a bundle can die with "illegal instruction" on an older CPU.
# UNVERIFIED here: only the cpu variant was built on this project's machines (no GPU, no macOS).
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36  # pinned in pyproject.toml: the app parses this version's log lines
backend="${1:-}"
out="${2:-build/wheels/$backend}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

case "$backend" in
  cpu)
    # x86-64: GGML_NATIVE=OFF compiles for SSE4.2/AVX/AVX2/FMA/F16C/BMI2 (Haswell, 2013, and later), no AVX-512.
    args="-DGGML_NATIVE=OFF" ;;
  cuda)
    # Needs the CUDA toolkit (nvcc) at build time. Without GGML_NATIVE, ggml compiles PTX + device code
    # for a spread of GPUs (Maxwell…Blackwell, depending on the toolkit); set CUDA_ARCHITECTURES
    # (e.g. "75;86;89") to build only those and save time and size.
    args="-DGGML_NATIVE=OFF -DGGML_CUDA=on"
    [ -n "${CUDA_ARCHITECTURES:-}" ] && args+=" -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}" ;;
  vulkan)
    # Needs the Vulkan headers and loader and the glslc shader compiler (Debian: libvulkan-dev glslc).
    args="-DGGML_NATIVE=OFF -DGGML_VULKAN=on" ;;
  metal)
    # macOS only. Metal is on by default on Apple; EMBED_LIBRARY puts the compiled shaders inside
    # libggml-metal, so the bundle needs no separate default.metallib file.
    [ "$(uname)" = Darwin ] || { echo "Metal builds need macOS." >&2; exit 2; }
    args="-DGGML_NATIVE=OFF -DGGML_METAL=on -DGGML_METAL_EMBED_LIBRARY=on" ;;
  *)
    echo "usage: packaging/build-llama-gpu.sh cpu|cuda|vulkan|metal [OUT_DIR]" >&2; exit 2 ;;
esac

export CMAKE_ARGS="$args ${SIZEWISE_CMAKE_ARGS:-}"
# SOURCE_DATE_EPOCH makes ggml switch every x86 instruction-set option off by default (baseline SSE only).
unset SOURCE_DATE_EPOCH
mkdir -p "$out"
echo "Building llama-cpp-python $LLAMA_VERSION with CMAKE_ARGS='$CMAKE_ARGS' into $out (compiles llama.cpp: minutes)" >&2
started=$(date +%s)
# --no-cache-dir: pip's wheel cache is keyed by the source, not by CMAKE_ARGS; a cached wheel of
# another backend would be reused silently.
"$PY" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python -w "$out" "llama-cpp-python==$LLAMA_VERSION"
echo "Built in $(( $(date +%s) - started )) s:" >&2
ls -1 "$out"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
