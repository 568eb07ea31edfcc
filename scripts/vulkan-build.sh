#!/usr/bin/env bash
# vulkan-build.sh — build the pinned llama-cpp-python with llama.cpp's Vulkan backend, for the GPU tests.
#
# What it is for: the GPU path (layer offload, per-device memory, device detection) needs a llama.cpp build
# with a GPU backend. Vulkan runs on AMD, Intel and NVIDIA GPUs and on Mesa's lavapipe, a software Vulkan
# device that runs on the CPU (Debian package mesa-vulkan-drivers), so the GPU code path can be run and
# tested on a machine without a GPU; only its speed differs from a real GPU's.
#
# It builds llama-cpp-python (the version constraints.txt pins) from its source package with
# CMAKE_ARGS=-DGGML_VULKAN=on into a venv of its own, outside the checkout, and prints that venv's
# site-packages folder. Sizewise's engine worker takes llama_cpp from there when SIZEWISE_LLAMA_CPP_PATH names
# it (desktop/sizewise/engine/entry.py); nothing else of that venv is used. pip's wheel cache does not tell a
# CPU build from a Vulkan build of the same version, so the build runs with --no-cache-dir and never touches it.
#
# Debian 12's Vulkan headers (1.3.239) lack VK_EXT_layer_settings, which ggml-vulkan.cpp uses only to switch
# on validation layers when it creates its instance; when the headers lack it, that block is replaced by a
# null pNext (the instance is then created without validation settings, as on a machine without the layers).
#
# Needs: glslc, the Vulkan and SPIR-V headers and the loader (Debian: glslc libvulkan-dev spirv-headers), and a Vulkan driver to run on
# (mesa-vulkan-drivers for lavapipe). As root where apt-get exists they are installed; otherwise a missing
# one stops the script with the command to run.
#
# How long: ~13 minutes on 2 cores the first time; afterwards it returns at once.
# Cache: ${SIZEWISE_NATIVE_CACHE:-$HOME/.cache/sizewise/native}/llama-cpp-python-<version>-vulkan/ (a .built
# stamp is written only after a successful build and import, so an interrupted build starts again).
#
# Usage:  SITE=$(scripts/vulkan-build.sh) && SIZEWISE_LLAMA_CPP_PATH=$SITE GGML_VK_VISIBLE_DEVICES=0 sizewise hardware
# stdout: only the site-packages folder (one line). stderr: progress, and on failure one sentence saying why.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^llama[-_]cpp[-_]python==\(.*\)$/\1/p' constraints.txt)
[[ -n "$VERSION" ]] || { echo "vulkan-build: constraints.txt pins no llama-cpp-python version." >&2; exit 1; }
cache_root=${SIZEWISE_NATIVE_CACHE:-$HOME/.cache/sizewise/native}
jobs=${SIZEWISE_NATIVE_JOBS:-2}
python=${SIZEWISE_NATIVE_PYTHON:-python3}

fail() {
    echo "vulkan-build: $*" >&2
    exit 1
}

mkdir -p "$cache_root" || fail "cannot create the cache directory $cache_root."
cache_root=$(cd "$cache_root" && pwd -P)
# Without llama.cpp's AMX kernels where they would be built (cmake-cpu-args.sh says why): a cache of its own.
cpu_args=$(scripts/cmake-cpu-args.sh)
dest="$cache_root/llama-cpp-python-$VERSION-vulkan${cpu_args:+-noamx}"
stamp="$dest/.built"
log="$dest/build.log"

site_dir() {
    "$dest/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

if [[ -f "$stamp" ]]; then
    site=$(site_dir 2>/dev/null) || site=
    if [[ -n "$site" && -f "$site/llama_cpp/lib/libggml-vulkan.so" ]]; then
        echo "$site"
        exit 0
    fi
    echo "vulkan-build: cached build in $dest is incomplete; rebuilding." >&2
fi

# The system parts: the shader compiler, headers and loader to build, a driver to run on.
missing=()
command -v glslc >/dev/null || missing+=(glslc)
[[ -f /usr/include/vulkan/vulkan.hpp ]] || missing+=(libvulkan-dev)
compgen -G "/usr/share/cmake/SPIRV-Headers/*Config.cmake" >/dev/null || missing+=(spirv-headers)
compgen -G "/usr/share/vulkan/icd.d/lvp_icd*.json" >/dev/null || missing+=(mesa-vulkan-drivers)
if (( ${#missing[@]} )); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "vulkan-build: installing ${missing[*]} with apt-get" >&2
        apt-get install -y -q "${missing[@]}" vulkan-tools >&2 \
            || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" vulkan-tools >&2; } \
            || fail "apt-get could not install ${missing[*]}."
    else
        fail "missing ${missing[*]}: on Debian or Ubuntu run 'sudo apt-get install glslc libvulkan-dev spirv-headers mesa-vulkan-drivers vulkan-tools'."
    fi
fi

rm -rf "$dest"
mkdir -p "$dest/src"
command -v "$python" >/dev/null || fail "$python was not found; set SIZEWISE_NATIVE_PYTHON to a Python 3.11+ interpreter."
"$python" -m venv "$dest/venv" >>"$log" 2>&1 || fail "could not create a venv in $dest/venv with $python (see $log)."

echo "vulkan-build: building llama-cpp-python $VERSION with Vulkan — ~13 minutes on 2 cores; log: $log" >&2
start=$(date +%s)
"$dest/venv/bin/python" -m pip download -q --no-deps --no-binary :all: -d "$dest/src" "llama-cpp-python==$VERSION" >>"$log" 2>&1 \
    || fail "could not download the llama-cpp-python $VERSION source package (see $log)."
tar -xzf "$dest/src/llama_cpp_python-$VERSION.tar.gz" -C "$dest/src" || fail "could not unpack the source package."
srcdir="$dest/src/llama_cpp_python-$VERSION"
"$dest/venv/bin/python" - "$srcdir/vendor/llama.cpp/ggml/src/ggml-vulkan/ggml-vulkan.cpp" >>"$log" 2>&1 <<'PY' \
    || fail "could not adapt ggml-vulkan.cpp to this system's Vulkan headers (see $log)."
import pathlib, re, sys
path = pathlib.Path(sys.argv[1])
if "LayerSettingsCreateInfoEXT" in pathlib.Path("/usr/include/vulkan/vulkan_structs.hpp").read_text():
    print("the Vulkan headers have VK_EXT_layer_settings: no patch")
    sys.exit(0)
text = path.read_text()
block = re.compile(
    r"    VkBool32 enable_best_practice = layer_settings;\n.*?"
    r"vk::InstanceCreateInfo instance_create_info\(([^;]*?), &layer_setting_info\);",
    re.S,
)
new, n = block.subn(lambda m: f"    vk::InstanceCreateInfo instance_create_info({m.group(1)}, nullptr);", text)
if n != 1:
    sys.exit(f"expected one layer-settings block in {path}, found {n}")
path.write_text(new)
print("patched: instance created without VK_EXT_layer_settings")
PY
if ! CMAKE_ARGS="-DGGML_VULKAN=on${cpu_args:+ $cpu_args}" CMAKE_BUILD_PARALLEL_LEVEL="$jobs" \
    nice -n 19 "$dest/venv/bin/python" -m pip install -v --no-cache-dir -c constraints.txt "$srcdir" >>"$log" 2>&1; then
    fail "building llama-cpp-python $VERSION with Vulkan failed; the last lines of $log say why."
fi
site=$(site_dir) || fail "the venv in $dest has no site-packages folder."
[[ -f "$site/llama_cpp/lib/libggml-vulkan.so" ]] || fail "the build finished without libggml-vulkan.so (see $log)."
GGML_VK_VISIBLE_DEVICES=0 "$dest/venv/bin/python" -c 'import llama_cpp; llama_cpp.llama_backend_init()' >>"$log" 2>&1 \
    || fail "the Vulkan build does not import (see $log)."
printf 'llama-cpp-python==%s\nCMAKE_ARGS=-DGGML_VULKAN=on%s\nbuilt=%s\nseconds=%s\n' \
    "$VERSION" "${cpu_args:+ $cpu_args}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(( $(date +%s) - start ))" >"$stamp"
echo "vulkan-build: built in $(( $(date +%s) - start )) s." >&2
echo "$site"
