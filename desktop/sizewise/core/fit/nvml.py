"""NVIDIA GPUs through NVML: name and memory, plus the figures only NVML knows — clocks, memory bus, utilisation.

ggml's device API (engine/backend_devices.py) names every device a llama.cpp build can use, but says nothing of
how fast one is. NVML does, for NVIDIA cards: the memory bus width and the memory clock give the card's peak
memory bandwidth, which bounds token generation, and the CUDA core count with the graphics clock give its peak
FP32 rate, which bounds prompt processing. Those peaks are what an uncalibrated NVIDIA GPU's speed estimate is
built from (engine/speed/devices.py). Every figure keeps the NVML call it came from; a call the driver does
not support (many are not on laptops, or in an older driver) leaves that figure out with the reason instead of
failing the probe.

NVML reports the memory clock so that bus width × clock × 2 is the peak bandwidth for both GDDR and HBM cards:
an RTX 4090 reports 10501 MHz on a 384-bit bus (1008 GB/s published), an H100 SXM 2619 MHz on 5120 bits
(3.35 TB/s published).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# NVML's clock type enumeration (nvmlClockType_t).
_CLOCK_GRAPHICS, _CLOCK_MEM = 0, 2


@dataclass(frozen=True)
class NvmlFigure:
    """One NVML reading: ``value`` is None when the driver would not give it, and ``source`` says why."""

    value: int | None
    source: str


@dataclass(frozen=True)
class NvmlGpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    graphics_clock_max_mhz: NvmlFigure
    memory_clock_max_mhz: NvmlFigure
    memory_bus_bits: NvmlFigure
    cuda_cores: NvmlFigure
    utilisation_gpu_pct: NvmlFigure
    utilisation_memory_pct: NvmlFigure
    pcie_generation: NvmlFigure
    pcie_width: NvmlFigure

    @property
    def peak_bandwidth(self) -> NvmlFigure:
        """Peak memory bandwidth in bytes/s: bus width × memory clock × 2 (double data rate)."""
        bits, mhz = self.memory_bus_bits.value, self.memory_clock_max_mhz.value
        if not bits or not mhz:
            missing = self.memory_bus_bits if not bits else self.memory_clock_max_mhz
            return NvmlFigure(None, f"needs the memory bus width and clock ({missing.source})")
        return NvmlFigure(bits // 8 * mhz * 2 * 1_000_000, "NVML memory bus width × max memory clock × 2")

    @property
    def peak_flops(self) -> NvmlFigure:
        """Peak FP32 rate in FLOP/s: CUDA cores × max graphics clock × 2 (one fused multiply-add per cycle)."""
        cores, mhz = self.cuda_cores.value, self.graphics_clock_max_mhz.value
        if not cores or not mhz:
            missing = self.cuda_cores if not cores else self.graphics_clock_max_mhz
            return NvmlFigure(None, f"needs the CUDA core count and graphics clock ({missing.source})")
        return NvmlFigure(cores * mhz * 2 * 1_000_000, "NVML CUDA cores × max graphics clock × 2")

    def extras(self) -> dict[str, NvmlFigure]:
        """The figures beyond name and memory, by the name ``hardware --json`` gives them."""
        return {
            "graphics_clock_max_mhz": self.graphics_clock_max_mhz,
            "memory_clock_max_mhz": self.memory_clock_max_mhz,
            "memory_bus_bits": self.memory_bus_bits,
            "cuda_cores": self.cuda_cores,
            "peak_bandwidth_bytes_s": self.peak_bandwidth,
            "peak_fp32_flops": self.peak_flops,
            "utilisation_gpu_pct": self.utilisation_gpu_pct,
            "utilisation_memory_pct": self.utilisation_memory_pct,
            "pcie_generation": self.pcie_generation,
            "pcie_width": self.pcie_width,
        }


def _reading(call: str, read: Callable[[], Any], device: int) -> NvmlFigure:
    """One NVML call's figure, or None with the driver's reason (NVMLError_NotSupported, FunctionNotFound …)."""
    try:
        return NvmlFigure(int(read()), f"NVML {call} (device {device})")
    except Exception as exc:  # pynvml raises one NVMLError subclass per return code
        return NvmlFigure(None, f"NVML {call} (device {device}): {exc}")


def _device(pynvml: Any, i: int) -> NvmlGpu:
    handle = pynvml.nvmlDeviceGetHandleByIndex(i)
    name = pynvml.nvmlDeviceGetName(handle)
    mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
    util: Any = None
    util_error = ""
    try:
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
    except Exception as exc:
        util_error = f": {exc}"
    util_source = f"NVML nvmlDeviceGetUtilizationRates (device {i}, at probe time){util_error}"
    return NvmlGpu(
        index=i,
        name=name.decode() if isinstance(name, bytes) else str(name),
        total_bytes=int(mem.total),
        free_bytes=int(mem.free),
        graphics_clock_max_mhz=_reading(
            "nvmlDeviceGetMaxClockInfo(GRAPHICS)", lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, _CLOCK_GRAPHICS), i
        ),
        memory_clock_max_mhz=_reading(
            "nvmlDeviceGetMaxClockInfo(MEM)", lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, _CLOCK_MEM), i
        ),
        memory_bus_bits=_reading("nvmlDeviceGetMemoryBusWidth", lambda: pynvml.nvmlDeviceGetMemoryBusWidth(handle), i),
        cuda_cores=_reading("nvmlDeviceGetNumGpuCores", lambda: pynvml.nvmlDeviceGetNumGpuCores(handle), i),
        utilisation_gpu_pct=NvmlFigure(int(util.gpu) if util is not None else None, util_source),
        utilisation_memory_pct=NvmlFigure(int(util.memory) if util is not None else None, util_source),
        pcie_generation=_reading(
            "nvmlDeviceGetCurrPcieLinkGeneration", lambda: pynvml.nvmlDeviceGetCurrPcieLinkGeneration(handle), i
        ),
        pcie_width=_reading("nvmlDeviceGetCurrPcieLinkWidth", lambda: pynvml.nvmlDeviceGetCurrPcieLinkWidth(handle), i),
    )


def read_nvml() -> tuple[list[NvmlGpu], str]:
    """Every NVIDIA GPU NVML lists, and a note when there is none (why: no library, no driver, no GPU)."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded …
        return [], f"NVML could not start ({exc})"
    gpus: list[NvmlGpu] = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            gpus.append(_device(pynvml, i))
    except Exception as exc:
        return gpus, f"NVML failed while listing devices ({exc})"
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return gpus, "" if gpus else "NVML found no NVIDIA GPU"
