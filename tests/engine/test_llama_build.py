"""The llama.cpp the app runs was built without its AMX kernels (scripts/cmake-cpu-args.sh): on an Intel CPU with
AMX they crash the engine on a model's first prompt (llama.cpp issue 20824), so a build that has them is a broken
install, whatever this machine's CPU."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cmake_cpu_args() -> str:
    out = subprocess.run([str(ROOT / "scripts" / "cmake-cpu-args.sh")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="AMX is an x86-64 extension")
def test_llama_cpp_is_built_without_amx_kernels() -> None:
    args = _cmake_cpu_args()
    if not args:
        pytest.skip("this C compiler has no -mno-amx-int8, so setup.sh builds llama.cpp as it comes")
    assert args.split() == ["-DCMAKE_C_FLAGS=-mno-amx-int8", "-DCMAKE_CXX_FLAGS=-mno-amx-int8"]
    # In a process of its own: the test process stands for the GUI's, which never imports llama_cpp
    # (tests/gui/shell/test_process_isolation.py).
    probe = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    info = out.stdout
    assert "CPU :" in info, info  # the line it prints: a probe that printed nothing must not pass
    assert "AMX_INT8 = 1" not in info, info
