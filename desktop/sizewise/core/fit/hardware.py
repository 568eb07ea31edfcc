"""What this machine has: CPU, RAM, GPUs and llama.cpp's backends — every figure with where it came from.

A fit verdict is only as honest as the budget it is checked against, so nothing here is guessed: a
figure that cannot be read is reported as missing together with the reason, and each one carries the
source it was read from (``/proc/cpuinfo``, ``psutil``, NVML, ``sysctl``, the engine's
``llama_print_system_info`` …). The llama.cpp side (offload support, compiled CPU features) comes from
the engine's ``ready`` message — core never imports llama_cpp — so ``probe_hardware(ready=...)`` takes
that message when the caller has one.

A memory limit imposed on this process's control group (containers, systemd slices) is read too: a
machine with 64 GiB whose cgroup allows 4 GiB has a 4 GiB budget.
"""

from __future__ import annotations

import contextlib
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from sizewise.core.fit.devices import BackendDevice, devices_from_ready
from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.nvml import NvmlFigure, read_nvml
from sizewise.core.fit.verdict import Budget

GiB = 1 << 30
NONE_DETECTED = "none detected"


@dataclass(frozen=True)
class Figure:
    """One measured fact and where it came from; ``value`` is None when it could not be read."""

    value: Any
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source}


@dataclass(frozen=True)
class GpuInfo:
    name: str
    kind: str  # "nvidia" | "apple-unified" | a ggml backend in lower case ("vulkan", "cuda" …)
    total_bytes: int
    free_bytes: int | None
    source: str
    usable_bytes: int | None = None  # what llama.cpp can allocate on it, where that differs from total
    usable_source: str = ""
    shares_ram: bool = False  # its memory is the machine's RAM (integrated GPU, software driver)
    max_tensor_bytes: int | None = None  # the largest weight llama.cpp may place on it (None: no limit)
    nvml: dict[str, NvmlFigure] = field(default_factory=dict)  # NVIDIA only: clocks, bus, utilisation (nvml.py)

    def nvml_value(self, name: str) -> int | None:
        figure = self.nvml.get(name)
        return figure.value if figure is not None else None


@dataclass(frozen=True)
class EngineInfo:
    """From the engine worker's ``ready`` message."""

    llama_cpp_version: str
    gpu_offload: bool
    system_info: str

    @property
    def cpu_features(self) -> list[str]:
        return sorted(Backend.from_system_info(self.system_info).cpu_features)

    @property
    def repack(self) -> bool:
        return Backend.from_system_info(self.system_info).repack


@dataclass(frozen=True)
class HardwareReport:
    os: Figure
    cpu_model: Figure
    physical_cores: Figure
    logical_cores: Figure
    simd: Figure  # list[str]
    ram_total: Figure
    ram_available: Figure
    memory_limit: Figure  # cgroup limit in bytes, or None
    gpus: list[GpuInfo] = field(default_factory=list)
    gpu_note: str = ""
    engine: EngineInfo | None = None
    engine_note: str = ""
    devices: list[BackendDevice] = field(default_factory=list)  # what llama.cpp's build sees (engine only)
    device_note: str = ""

    @property
    def ram_budget(self) -> Figure:
        """RAM a model may use now: available memory, capped by a cgroup limit when there is one."""
        avail = self.ram_available.value
        limit = self.memory_limit.value
        if isinstance(limit, int) and isinstance(avail, int) and limit < avail:
            return Figure(limit, self.memory_limit.source)
        return self.ram_available

    @property
    def vram_budget(self) -> Figure:
        """Free memory on the first GPU llama.cpp can use (0 when there is none or the build cannot offload)."""
        if not self.gpus:
            return Figure(0, f"no GPU: {self.gpu_note or NONE_DETECTED}")
        if self.engine is not None and not self.engine.gpu_offload:
            return Figure(0, "this llama.cpp build has no GPU backend (llama_supports_gpu_offload() is false)")
        gpu = self.gpus[0]
        if gpu.usable_bytes is not None:
            return Figure(gpu.usable_bytes, gpu.usable_source)
        if gpu.free_bytes is not None:
            return Figure(gpu.free_bytes, f"{gpu.name}: free memory ({gpu.source})")
        return Figure(gpu.total_bytes, f"{gpu.name}: total memory ({gpu.source})")

    @property
    def offloads(self) -> bool:
        """Whether layers can go to a GPU here: a GPU is seen and the build (when known) can offload."""
        return bool(self.gpus) and (self.engine is None or self.engine.gpu_offload)

    def offload_device(self) -> BackendDevice | None:
        """The build's first device that takes layers, when this machine offloads at all: the device auto-offload
        and the memory model put layers on, and the one a GPU speed profile is calibrated for."""
        return next((d for d in self.devices if d.offloads), None) if self.offloads else None

    def backend(self) -> Backend:
        """The placement facts the memory model needs, from the engine when known, else from the CPU flags."""
        has_gpu = self.offloads
        # The backend is the build's, not the card's vendor: an NVIDIA card that NVML names runs through Vulkan on
        # a Vulkan build, whose node order and tensor limit the memory model must then follow.
        device = self.offload_device()
        if device is not None:
            gpu_backend, limit = device.backend.lower(), device.max_tensor_bytes or 0
        elif has_gpu:
            kind = self.gpus[0].kind
            gpu_backend = {"nvidia": "cuda", "apple-unified": "metal"}.get(kind, kind)
            limit = self.gpus[0].max_tensor_bytes or 0
        else:
            gpu_backend, limit = "", 0
        if self.engine is not None:
            return replace(
                Backend.from_system_info(self.engine.system_info, gpu_offload=has_gpu, gpu_backend=gpu_backend),
                gpu_max_tensor_bytes=limit,
            )
        flags = set(self.simd.value or [])
        features = frozenset(f for f in ("avx2", "avx512", "neon", "dotprod", "i8mm") if f in flags)
        # Without the engine we cannot see whether the build has REPACK; llama-cpp-python's CPU builds do.
        return Backend(
            gpu=has_gpu, repack=True, cpu_features=features, gpu_backend=gpu_backend, gpu_max_tensor_bytes=limit
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: getattr(self, name).to_dict()
            for name in (
                "os",
                "cpu_model",
                "physical_cores",
                "logical_cores",
                "simd",
                "ram_total",
                "ram_available",
                "memory_limit",
            )
        }
        out["ram_budget"] = self.ram_budget.to_dict()
        out["vram_budget"] = self.vram_budget.to_dict()
        out["gpus"] = [asdict(g) for g in self.gpus]
        out["gpu_note"] = self.gpu_note
        out["engine"] = (
            {
                "llama_cpp_version": self.engine.llama_cpp_version,
                "gpu_offload": self.engine.gpu_offload,
                "system_info": self.engine.system_info,
                "cpu_features": self.engine.cpu_features,
                "repack": self.engine.repack,
                "source": "engine ready message (llama_supports_gpu_offload, llama_print_system_info)",
            }
            if self.engine
            else None
        )
        out["engine_note"] = self.engine_note
        out["devices"] = [d.to_dict() for d in self.devices]
        out["device_note"] = self.device_note
        return out


# -- CPU ---------------------------------------------------------------------------------------------

_X86_SIMD = ("sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_int8")
_ARM_SIMD = {"asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "sve": "sve", "sve2": "sve2", "fphp": "fp16"}


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in info:
                info[key.strip()] = value.strip()
    return info


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def probe_cpu() -> tuple[Figure, Figure, Figure, Figure]:
    """(model, physical cores, logical cores, SIMD features)."""
    model: Figure
    simd: Figure
    info = _cpuinfo()
    if info:
        name = info.get("model name") or info.get("Hardware") or info.get("Model") or info.get("cpu model")
        model = Figure(name, "/proc/cpuinfo") if name else Figure(platform.processor() or None, "platform.processor()")
        flags = info.get("flags", "").split()
        features = info.get("Features", "").split()
        found = [f for f in _X86_SIMD if f in flags] + [_ARM_SIMD[f] for f in _ARM_SIMD if f in features]
        simd = Figure(sorted(set(found) | ({"avx512"} if "avx512f" in flags else set())), "/proc/cpuinfo flags")
    elif sys.platform == "darwin":
        brand = _sysctl("machdep.cpu.brand_string")
        model = Figure(brand, "sysctl machdep.cpu.brand_string") if brand else Figure(None, "sysctl unavailable")
        found = []
        for key, name in (("hw.optional.neon", "neon"), ("hw.optional.arm.FEAT_DotProd", "dotprod")):
            if _sysctl(key) == "1":
                found.append(name)
        if _sysctl("hw.optional.arm.FEAT_I8MM") == "1":
            found.append("i8mm")
        if _sysctl("hw.optional.avx2_0") == "1":
            found.append("avx2")
        simd = Figure(sorted(found), "sysctl hw.optional.*")
    else:
        model = Figure(platform.processor() or None, "platform.processor()")
        simd = Figure(None, "not readable on this system (no /proc/cpuinfo or sysctl)")
    physical = psutil.cpu_count(logical=False)
    logical = psutil.cpu_count(logical=True)
    return (
        model,
        Figure(physical, "psutil.cpu_count(logical=False)"),
        Figure(logical, "psutil.cpu_count(logical=True)"),
        simd,
    )


# -- memory ------------------------------------------------------------------------------------------


def cgroup_memory_limit(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> Figure:
    """The memory limit of this process's cgroup (v2 memory.max or v1 memory.limit_in_bytes), if any."""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return Figure(None, "no cgroup information (not Linux, or /proc is not mounted)")
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":  # cgroup v2
            candidates = [root / rel / "memory.max", root / "unified" / rel / "memory.max"]
        elif "memory" in controllers.split(","):  # cgroup v1
            candidates = [root / "memory" / rel / "memory.limit_in_bytes", root / "memory" / "memory.limit_in_bytes"]
        else:
            continue
        for path in candidates:
            try:
                raw = path.read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if raw == "max" or not raw.isdigit():
                continue
            value = int(raw)
            if value >= 1 << 60:  # v1 reports "no limit" as a huge page-aligned number
                continue
            return Figure(value, str(path))
    return Figure(None, "no cgroup memory limit")


def probe_memory() -> tuple[Figure, Figure, Figure]:
    vm = psutil.virtual_memory()
    return (
        Figure(int(vm.total), "psutil.virtual_memory().total"),
        Figure(int(vm.available), "psutil.virtual_memory().available"),
        cgroup_memory_limit(),
    )


# -- GPUs --------------------------------------------------------------------------------------------


def probe_nvidia() -> tuple[list[GpuInfo], str]:
    """NVIDIA GPUs as NVML lists them, each with NVML's clocks, bus width and utilisation as extras."""
    found, note = read_nvml()
    gpus = [
        GpuInfo(
            name=g.name,
            kind="nvidia",
            total_bytes=g.total_bytes,
            free_bytes=g.free_bytes,
            source=f"NVML nvmlDeviceGetMemoryInfo (device {g.index})",
            nvml=g.extras(),
        )
        for g in found
    ]
    return gpus, note


# Metal lets one process keep about this share of unified memory resident (recommendedMaxWorkingSetSize,
# which this process cannot query without Metal); the figure is labelled as that rule of thumb.
APPLE_GPU_SHARE = 0.75


def probe_apple(ram_total: int) -> list[GpuInfo]:
    if sys.platform != "darwin" or platform.machine() != "arm64":
        return []
    chip = _sysctl("machdep.cpu.brand_string") or "Apple silicon"
    return [
        GpuInfo(
            name=f"{chip} GPU (unified memory)",
            kind="apple-unified",
            total_bytes=ram_total,
            free_bytes=None,
            source="unified memory = RAM (psutil.virtual_memory().total)",
            usable_bytes=int(ram_total * APPLE_GPU_SHARE),
            usable_source=(
                f"about {APPLE_GPU_SHARE:.0%} of unified memory (Metal's usual working-set limit, not queried)"
            ),
        )
    ]


def engine_info(ready: dict[str, Any] | None) -> EngineInfo | None:
    if not ready:
        return None
    return EngineInfo(
        llama_cpp_version=str(ready.get("llama_cpp_version", "")),
        gpu_offload=bool(ready.get("gpu_offload", False)),
        system_info=str(ready.get("system_info", "")),
    )


def gpus_from_devices(devices: list[BackendDevice]) -> list[GpuInfo]:
    """The devices a llama.cpp build can offload layers to, as GPUs (for machines NVML has nothing to say about)."""
    return [
        GpuInfo(
            name=d.label,
            kind=d.backend.lower(),
            total_bytes=d.total_bytes,
            free_bytes=d.free_bytes,
            source=f"{d.source}, {d.name}",
            shares_ram=d.software or d.type == "igpu",
            max_tensor_bytes=d.max_tensor_bytes,
        )
        for d in devices
        if d.offloads
    ]


def _device_note(ready: dict[str, Any] | None, devices: list[BackendDevice]) -> str:
    if ready is None:
        return ""
    if not devices:
        return str(ready.get("device_note") or "the engine reported no devices")
    if ready.get("gpu_offload") and not any(d.offloads for d in devices):
        return "this llama.cpp build has a GPU backend but it found no GPU (is the driver installed?)"
    return ""


def probe_hardware(ready: dict[str, Any] | None = None, engine_note: str = "") -> HardwareReport:
    """Everything at once; ``ready`` is the engine's ready message (EngineSession.start()) if available."""
    model, physical, logical, simd = probe_cpu()
    total, available, limit = probe_memory()
    devices = devices_from_ready(ready)
    gpus, note = probe_nvidia()
    if not gpus:
        found = gpus_from_devices(devices)
        if found:
            gpus, note = found, ""
    if not gpus:
        apple = probe_apple(int(total.value))
        if apple:
            gpus, note = apple, ""
    if not gpus:
        note = f"{NONE_DETECTED} ({note})" if note else NONE_DETECTED
    return HardwareReport(
        os=Figure(f"{platform.system()} {platform.release()} ({platform.machine()})", "platform module"),
        cpu_model=model,
        physical_cores=physical,
        logical_cores=logical,
        simd=simd,
        ram_total=total,
        ram_available=available,
        memory_limit=limit,
        gpus=gpus,
        gpu_note=note,
        engine=engine_info(ready),
        engine_note=engine_note if ready is None else "",
        devices=devices,
        device_note=_device_note(ready, devices),
    )


def format_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    if n >= GiB:
        return f"{n / GiB:.2f} GiB"
    return f"{n / (1 << 20):.1f} MiB"


def _nvml_rows(gpu: GpuInfo) -> list[tuple[str, str, str]]:
    """NVML's extra figures for one NVIDIA GPU; one the driver did not give says so, with its reason."""
    if not gpu.nvml:
        return []
    f = gpu.nvml

    def shown(name: str, fmt: str) -> str:
        value = f[name].value
        return fmt.format(value) if value is not None else "not reported"

    def pair(first: str, second: str, fmt: str) -> str:
        """Two figures in one phrase, or "not reported" once when the driver gave neither."""
        a, b = f[first].value, f[second].value
        if a is None and b is None:
            return "not reported"
        return fmt.format("?" if a is None else a, "?" if b is None else b)

    def source(*names: str) -> str:
        return "; ".join(dict.fromkeys(f[n].source for n in names))

    bandwidth, flops = f["peak_bandwidth_bytes_s"].value, f["peak_fp32_flops"].value
    peak_bw = f": {bandwidth / 1e9:.0f} GB/s peak" if bandwidth else ""
    peak_fl = f": {flops / 1e12:.1f} TFLOP/s FP32 peak" if flops else ""
    return [
        (
            "GPU clocks",
            pair("graphics_clock_max_mhz", "memory_clock_max_mhz", "{} MHz graphics, {} MHz memory (maximum)"),
            source("graphics_clock_max_mhz", "memory_clock_max_mhz"),
        ),
        (
            "GPU memory bus",
            f"{shown('memory_bus_bits', '{}-bit')}{peak_bw}",
            source("memory_bus_bits", "peak_bandwidth_bytes_s"),
        ),
        ("GPU cores", f"{shown('cuda_cores', '{} CUDA cores')}{peak_fl}", source("cuda_cores", "peak_fp32_flops")),
        (
            "GPU utilisation",
            pair("utilisation_gpu_pct", "utilisation_memory_pct", "{} % compute, {} % memory"),
            source("utilisation_gpu_pct"),
        ),
        (
            "PCIe link",
            pair("pcie_generation", "pcie_width", "gen {} ×{}"),
            source("pcie_generation", "pcie_width"),
        ),
    ]


def describe(report: HardwareReport) -> list[tuple[str, str, str]]:
    """(label, value, source) rows for the CLI and the Hardware view."""

    def val(f: Figure, fmt: Any = str) -> str:
        return "unknown" if f.value is None else fmt(f.value)

    rows = [
        ("System", val(report.os), report.os.source),
        ("CPU", val(report.cpu_model), report.cpu_model.source),
        ("Cores", f"{val(report.physical_cores)} physical, {val(report.logical_cores)} logical", "psutil"),
        ("SIMD", val(report.simd, lambda v: ", ".join(v) or "none"), report.simd.source),
        ("RAM total", val(report.ram_total, format_bytes), report.ram_total.source),
        ("RAM available", val(report.ram_available, format_bytes), report.ram_available.source),
        (
            "Memory limit",
            "none" if report.memory_limit.value is None else format_bytes(report.memory_limit.value),
            report.memory_limit.source,
        ),
    ]
    if report.gpus:
        for g in report.gpus:
            free = f", {format_bytes(g.free_bytes)} free" if g.free_bytes is not None else ""
            rows.append(("GPU", f"{g.name}: {format_bytes(g.total_bytes)}{free}", g.source))
            rows.extend(_nvml_rows(g))
    else:
        rows.append(("GPU", report.gpu_note or NONE_DETECTED, "NVML / platform"))
    if report.engine is not None:
        e = report.engine
        rows.append(("llama.cpp", f"llama-cpp-python {e.llama_cpp_version}", "engine ready message"))
        rows.append(
            ("GPU offload", "supported" if e.gpu_offload else "not in this build", "llama_supports_gpu_offload()")
        )
        rows.append(("CPU backend", re.sub(r"\s*\|\s*$", "", e.system_info), "llama_print_system_info()"))
        for d in report.devices:
            rows.append(
                ("Device", f"{d.label}: {format_bytes(d.total_bytes)}, {format_bytes(d.free_bytes)} free", d.source)
            )
        if report.device_note:
            rows.append(("Devices", report.device_note, "engine (ggml backend registry)"))
    else:
        rows.append(("llama.cpp", "not queried", report.engine_note or "the engine was not started"))
    return rows


def machine_budget(report: HardwareReport) -> Budget:
    """This machine's budget for a fit check: RAM available now (cgroup-capped) and the first GPU's free memory."""
    ram = report.ram_budget
    vram = report.vram_budget
    unified = bool(report.gpus) and (report.gpus[0].kind == "apple-unified" or report.gpus[0].shares_ram)
    backend = report.backend()
    return Budget(
        ram_bytes=int(ram.value or 0),
        vram_bytes=int(vram.value or 0) if backend.gpu else 0,
        source=f"this machine: RAM from {ram.source}; VRAM from {vram.source}",
        backend=backend,
        unified=unified and backend.gpu,
    )
