"""Every device the loaded llama.cpp build can compute on, read through ggml's backend-device API.

llama-cpp-python binds llama.h but not ggml-backend.h, whose registry (``ggml_backend_dev_count``,
``ggml_backend_dev_get``, ``ggml_backend_dev_memory`` …) is what llama.cpp itself walks to place layers. Reading the
same registry from the engine worker sees exactly the devices a load can use — CUDA, Vulkan (AMD, Intel and
integrated GPUs, and Mesa's software lavapipe), Metal, SYCL, the CPU — where NVML sees NVIDIA cards only and not
whether this build can use them. The functions live in ``libggml`` next to ``libllama`` in the llama_cpp package.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from types import ModuleType
from typing import Any

# enum ggml_backend_dev_type in ggml-backend.h (llama.cpp as llama-cpp-python 0.3.36 vendors it)
DEVICE_TYPES = ("cpu", "gpu", "igpu", "accel", "meta")


def _library(llama_cpp: ModuleType) -> ctypes.CDLL | None:
    if not llama_cpp.__file__:
        return None
    folder = Path(llama_cpp.__file__).resolve().parent / "lib"
    for name in ("libggml.so", "libggml.dylib", "ggml.dll"):
        if (folder / name).exists():
            return ctypes.CDLL(str(folder / name))
    return None


def _declare(lib: ctypes.CDLL) -> None:
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_count.argtypes = []
    lib.ggml_backend_dev_get.restype = vp
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).restype = cp
        getattr(lib, name).argtypes = [vp]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_type.argtypes = [vp]
    lib.ggml_backend_dev_memory.restype = None
    lib.ggml_backend_dev_memory.argtypes = [vp, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    lib.ggml_backend_dev_backend_reg.restype = vp
    lib.ggml_backend_dev_backend_reg.argtypes = [vp]
    lib.ggml_backend_reg_name.restype = cp
    lib.ggml_backend_reg_name.argtypes = [vp]


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


def list_devices(llama_cpp: ModuleType) -> tuple[list[dict[str, Any]], str]:
    """(devices, note): one dict per device in registry order (name, description, backend, type, total_bytes,
    free_bytes), and why the list is empty when it is. Free memory is read now: sampling it again is how VRAM in
    use is watched on any backend."""
    try:
        lib = _library(llama_cpp)
        if lib is None:
            return [], "this llama.cpp build has no libggml next to libllama"
        _declare(lib)
    except (OSError, AttributeError) as exc:  # a build without the backend-device API
        return [], f"this llama.cpp build does not expose ggml's device list ({exc})"
    out = []
    for i in range(int(lib.ggml_backend_dev_count())):
        dev = lib.ggml_backend_dev_get(i)
        if not dev:
            continue
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        kind = int(lib.ggml_backend_dev_type(dev))
        out.append(
            {
                "name": _text(lib.ggml_backend_dev_name(dev)),
                "description": _text(lib.ggml_backend_dev_description(dev)),
                "backend": _text(lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev))),
                "type": DEVICE_TYPES[kind] if 0 <= kind < len(DEVICE_TYPES) else f"type {kind}",
                "total_bytes": int(total.value),
                "free_bytes": int(free.value),
            }
        )
    return out, ""
