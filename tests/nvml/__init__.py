"""Build the NVML stand-in (standin.c) and the environment that makes pynvml load it in a child process.

pynvml opens ``libnvidia-ml.so.1`` by name once per process, so a test runs the code under test in a fresh
process whose ``LD_LIBRARY_PATH`` finds the stand-in, and whose ``NVML_STANDIN_FILE`` lists the GPUs it reports.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

SOURCE = Path(__file__).with_name("standin.c")

# Published figures: NVIDIA's RTX 4090 specification (24 GB GDDR6X on a 384-bit bus at 21 Gbps = 1008 GB/s,
# 16384 CUDA cores, boost 2520 MHz; NVML reports a 3105 MHz maximum graphics clock and 10501 MHz memory clock).
RTX_4090 = "NVIDIA GeForce RTX 4090|25757220864|25149505536|3105|10501|384|16384|7|3|4|16"
RTX_4090_PEAK_BANDWIDTH = 1008e9
# A laptop GPU whose driver answers "Not Supported" for the bus width, core count, utilisation and PCIe link.
LAPTOP = "NVIDIA GeForce RTX 3050 Laptop GPU|4294967296|3900000000|2100|6001|-1|-1|-1|-1|-1|-1"


def build_standin(folder: Path) -> Path:
    """Compile the stand-in as ``folder/libnvidia-ml.so.1`` (once per folder) and return the folder."""
    lib = folder / "libnvidia-ml.so.1"
    if not lib.exists():
        cc = shutil.which("cc") or shutil.which("gcc")
        assert cc, "a C compiler is needed for the NVML stand-in (scripts/setup.sh installs build-essential)"
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(SOURCE)], check=True)
    return folder


def nvml_env(lib_folder: Path, devices_file: Path, *lines: str) -> dict[str, str]:
    """Environment for a child process that sees ``lines`` as its NVIDIA GPUs through the stand-in."""
    devices_file.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    old = os.environ.get("LD_LIBRARY_PATH", "")
    return {
        "LD_LIBRARY_PATH": f"{lib_folder}:{old}" if old else str(lib_folder),
        "NVML_STANDIN_FILE": str(devices_file),
    }


@contextlib.contextmanager
def standin_in_this_process(lib_folder: Path, devices_file: Path, *lines: str) -> Iterator[None]:
    """pynvml in this process talks to the stand-in until the block ends (for widgets, which probe in-process):
    its loaded library and function cache are swapped, and put back afterwards."""
    import pynvml

    devices_file.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    old_lib, old_cache = pynvml.nvmlLib, dict(pynvml._nvmlGetFunctionPointer_cache)
    old_file = os.environ.get("NVML_STANDIN_FILE")
    os.environ["NVML_STANDIN_FILE"] = str(devices_file)
    pynvml.nvmlLib = ctypes.CDLL(str(lib_folder / "libnvidia-ml.so.1"))
    pynvml._nvmlGetFunctionPointer_cache.clear()
    try:
        yield
    finally:
        pynvml.nvmlLib = old_lib
        pynvml._nvmlGetFunctionPointer_cache.clear()
        pynvml._nvmlGetFunctionPointer_cache.update(old_cache)
        if old_file is None:
            os.environ.pop("NVML_STANDIN_FILE", None)
        else:
            os.environ["NVML_STANDIN_FILE"] = old_file
