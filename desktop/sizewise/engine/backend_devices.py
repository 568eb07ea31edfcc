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
GGML_TYPE_F32, GGML_TYPE_Q8_0 = 0, 8
PROBE_ROW = 4096  # values per row of the probe weight: 4352 bytes in Q8_0, the probe's granularity
PROBE_MAX_ROWS = 1 << 24  # 73 GB of weight: above that, a device is taken to have no limit of its own


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


def _library(llama_cpp: ModuleType, stem: str = "ggml") -> ctypes.CDLL | None:
    if not llama_cpp.__file__:
        return None
    folder = Path(llama_cpp.__file__).resolve().parent / "lib"
    for name in (f"lib{stem}.so", f"lib{stem}.dylib", f"{stem}.dll"):
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


def _largest_weight(base: ctypes.CDLL, lib: ctypes.CDLL, dev: int) -> int | None:
    """The largest tensor the device accepts for an op (a Q8_0 weight of a matrix multiplication, then an f32
    vector to the byte), in bytes (None: no limit found).

    llama.cpp puts an offloaded weight on a device only if the device supports the weight's operation, and Vulkan
    refuses a tensor larger than its maxStorageBufferRange (128 MiB on lavapipe, 1-4 GiB on GPUs): such a weight
    stays in host memory and its matrix multiplication on the CPU (Gemma-3's 170 MiB token embeddings on lavapipe).
    The limit is not in ggml's device properties, so it is found the way llama.cpp meets it: by asking the device
    about a weight of each size (a binary search over rows, on tensors that are never allocated)."""
    ctx = base.ggml_init(_InitParams(1 << 20, None, True))
    if not ctx:
        return None
    try:

        def supported(rows: int) -> bool:
            a = base.ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, PROBE_ROW, rows)
            b = base.ggml_new_tensor_2d(ctx, GGML_TYPE_F32, PROBE_ROW, 1)
            return bool(lib.ggml_backend_dev_supports_op(dev, base.ggml_mul_mat(ctx, a, b)))

        def elementwise(n: int) -> bool:  # an f32 vector of n values, scaled in place: 4-byte granularity
            return bool(
                lib.ggml_backend_dev_supports_op(
                    dev, base.ggml_scale(ctx, base.ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n), 1.0)
                )
            )

        lo, hi = 1, PROBE_MAX_ROWS
        if supported(hi) or not supported(lo):
            return None
        while hi - lo > 1:  # ~24 probes, each a few tensor headers in a 1 MiB no-alloc context
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if supported(mid) else (lo, mid)
        row_bytes = PROBE_ROW // 32 * 34
        # The limit lies within one probe row above lo rows; an elementwise op finds it to 4 bytes, which matters
        # for the compute graph's tensors (lavapipe: 2^27 bytes exactly, where the rows said 2 KiB less, and a
        # 128 MiB attention-score tensor is then accepted, as llama.cpp logged).
        n_lo, n_hi = lo * row_bytes // 4, hi * row_bytes // 4 + 1
        if not elementwise(n_lo) or elementwise(n_hi):
            return lo * row_bytes
        while n_hi - n_lo > 1:
            mid = (n_lo + n_hi) // 2
            n_lo, n_hi = (mid, n_hi) if elementwise(mid) else (n_lo, mid)
        return n_lo * 4
    finally:
        base.ggml_free(ctx)


def _declare_base(base: ctypes.CDLL, lib: ctypes.CDLL) -> None:
    vp = ctypes.c_void_p
    base.ggml_init.restype = vp
    base.ggml_init.argtypes = [_InitParams]
    base.ggml_new_tensor_2d.restype = vp
    base.ggml_new_tensor_2d.argtypes = [vp, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    base.ggml_mul_mat.restype = vp
    base.ggml_mul_mat.argtypes = [vp, vp, vp]
    base.ggml_new_tensor_1d.restype = vp
    base.ggml_new_tensor_1d.argtypes = [vp, ctypes.c_int, ctypes.c_int64]
    base.ggml_scale.restype = vp
    base.ggml_scale.argtypes = [vp, vp, ctypes.c_float]
    base.ggml_free.restype = None
    base.ggml_free.argtypes = [vp]
    lib.ggml_backend_dev_supports_op.restype = ctypes.c_bool
    lib.ggml_backend_dev_supports_op.argtypes = [vp, vp]


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


_SAMPLER_LIB: dict[str, ctypes.CDLL | None] = {}


def device_memory(llama_cpp: ModuleType) -> list[dict[str, Any]]:
    """Free and total bytes of every device that is not the CPU, read now: the engine's ``stats`` reply carries them
    so Live metrics can chart device memory on any backend, a few times a second. Cheap on purpose — no weight-size
    probe, the library opened once — and empty where the build has no device API.

    What "free" means is the driver's: CUDA's is the whole card's; Vulkan's comes from VK_EXT_memory_budget where
    the driver has it, and is the heap size (nothing ever in use) where it has not — Mesa's lavapipe among them."""
    key = str(llama_cpp.__file__)
    if key not in _SAMPLER_LIB:
        try:
            lib = _library(llama_cpp)
            if lib is not None:
                _declare(lib)
            _SAMPLER_LIB[key] = lib
        except (OSError, AttributeError):
            _SAMPLER_LIB[key] = None
    lib = _SAMPLER_LIB[key]
    if lib is None:
        return []
    out = []
    for i in range(int(lib.ggml_backend_dev_count())):
        dev = lib.ggml_backend_dev_get(i)
        kind = int(lib.ggml_backend_dev_type(dev)) if dev else 0
        if not dev or kind == 0:  # the CPU: its memory is RAM, sampled as the process's RSS
            continue
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
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
    return out


def list_devices(llama_cpp: ModuleType) -> tuple[list[dict[str, Any]], str]:
    """(devices, note): one dict per device in registry order (name, description, backend, type, total_bytes,
    free_bytes), and why the list is empty when it is. Free memory is read now: sampling it again is how VRAM in
    use is watched on any backend."""
    try:
        lib, base = _library(llama_cpp), _library(llama_cpp, "ggml-base")
        if lib is None or base is None:
            return [], "this llama.cpp build has no libggml next to libllama"
        _declare(lib)
        _declare_base(base, lib)
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
        type_name = DEVICE_TYPES[kind] if 0 <= kind < len(DEVICE_TYPES) else f"type {kind}"
        out.append(
            {
                "name": _text(lib.ggml_backend_dev_name(dev)),
                "description": _text(lib.ggml_backend_dev_description(dev)),
                "backend": _text(lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev))),
                "type": type_name,
                "total_bytes": int(total.value),
                "free_bytes": int(free.value),
                "max_tensor_bytes": None if type_name == "cpu" else _largest_weight(base, lib, dev),
            }
        )
    return out, ""
