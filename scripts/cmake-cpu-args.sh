#!/usr/bin/env bash
# cmake-cpu-args.sh — the CMake arguments every llama.cpp build here adds for this machine's CPU (stdout, one line;
# empty when none are needed). Used by setup.sh, vulkan-build.sh and native-tools.sh, so the app's llama.cpp, the
# Vulkan build and llama-server are built alike.
#
# Why: llama.cpp builds for the CPU it is compiled on (GGML_NATIVE), and on an Intel CPU with AMX (Sapphire Rapids
# and later) that includes its AMX kernels, which load a model's weights into an AMX buffer and then crash the
# process in ggml_backend_amx_mul_mat on its first prompt (llama.cpp issue 20824, closed unfixed; seen here on an
# Intel Xeon virtual machine with llama-cpp-python 0.3.36: every real Q4_1 and Q4_K_M model segfaulted). Without
# __AMX_INT8__ llama.cpp compiles no AMX code at all and uses its AVX-512 kernels; GCC lets an explicit -mno-amx-int8
# win over -march=native, whatever their order. Not on other architectures, or with a compiler that lacks the flag.
set -euo pipefail
cc=${CC:-cc}
command -v "$cc" >/dev/null || cc=gcc
case "$(uname -m)" in
  x86_64|amd64)
    if "$cc" -mno-amx-int8 -x c -E /dev/null -o /dev/null >/dev/null 2>&1; then
      echo "-DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8"
      exit 0
    fi
    ;;
esac
echo ""
