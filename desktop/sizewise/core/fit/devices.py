"""The compute devices llama.cpp's build sees (the engine reads them through ggml's device API), as the hardware
report shows them.

A device found this way is one a load can use: NVML may see an NVIDIA card that a CPU-only build cannot touch, and
it never sees the AMD, Intel and integrated GPUs that laptops run llama.cpp on through Vulkan. Software drivers
are real devices to llama.cpp — Mesa's lavapipe (llvmpipe) runs Vulkan on the CPU — and they are labelled as such
wherever a device is named, so nobody reads their speed as a GPU's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOURCE = "llama.cpp ggml_backend_dev_memory (engine)"
# Names software Vulkan/OpenGL drivers give their devices: Mesa's lavapipe reports "llvmpipe (LLVM …)".
_SOFTWARE_NAMES = ("llvmpipe", "lavapipe", "swiftshader", "softpipe")
TYPE_LABELS = {
    "cpu": "CPU",
    "gpu": "discrete GPU",
    "igpu": "integrated GPU",
    "accel": "accelerator",
    "meta": "device group",
}


@dataclass(frozen=True)
class BackendDevice:
    name: str  # llama.cpp's device name: CPU, Vulkan0, CUDA0, Metal …
    description: str  # the driver's name for it: "NVIDIA GeForce RTX 4060", "llvmpipe (LLVM 15.0.6, 256 bits)"
    backend: str  # the ggml backend: CPU, Vulkan, CUDA, Metal, SYCL …
    type: str  # cpu | gpu | igpu | accel | meta
    total_bytes: int
    free_bytes: int
    source: str = SOURCE
    max_tensor_bytes: int | None = None  # the largest weight it accepts (Vulkan: maxStorageBufferRange); None: no limit

    @property
    def software(self) -> bool:
        """A device a driver emulates on the CPU (its memory is RAM, its speed a CPU's)."""
        low = self.description.lower()
        return any(n in low for n in _SOFTWARE_NAMES)

    @property
    def offloads(self) -> bool:
        """A device llama.cpp can put layers on (not the CPU itself, not an accelerator that only helps the CPU)."""
        return self.type in ("gpu", "igpu")

    @property
    def kind_label(self) -> str:
        if self.software and self.backend.lower() == "vulkan":
            return "software Vulkan (CPU)"
        if self.software:
            return f"software {self.backend} (CPU)"
        return TYPE_LABELS.get(self.type, self.type)

    @property
    def label(self) -> str:
        """How the app names the device: its llama.cpp name, the driver's name and what kind of device it is (the
        CPU's kind goes without saying)."""
        if self.type == "cpu":
            return f"{self.name}: {self.description}"
        return f"{self.name}: {self.description} — {self.kind_label}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "backend": self.backend,
            "type": self.type,
            "software": self.software,
            "label": self.kind_label,
            "total_bytes": self.total_bytes,
            "free_bytes": self.free_bytes,
            "max_tensor_bytes": self.max_tensor_bytes,
            "source": self.source,
        }


def devices_from_ready(ready: dict[str, Any] | None) -> list[BackendDevice]:
    """The engine's ``ready`` message's devices; entries missing a field are left out rather than guessed."""
    out = []
    for d in (ready or {}).get("devices") or ():
        try:
            out.append(
                BackendDevice(
                    name=str(d["name"]),
                    description=str(d.get("description", "")),
                    backend=str(d.get("backend", "")),
                    type=str(d["type"]),
                    total_bytes=int(d["total_bytes"]),
                    free_bytes=int(d["free_bytes"]),
                    max_tensor_bytes=int(d["max_tensor_bytes"]) if d.get("max_tensor_bytes") else None,
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


@dataclass(frozen=True)
class DeviceMemoryReading:
    """One sample of the offload devices' memory and what kind of figure it is (charts and reports name it)."""

    bytes: int
    how: str  # e.g. "Vulkan0 (software Vulkan (CPU)): in use on the device, all processes"


def device_memory_reading(devices: list[BackendDevice], allocated: dict[str, int]) -> DeviceMemoryReading | None:
    """Device memory in use from ggml's free/total figures (the engine's ``stats`` reply), or None without an
    offload device.

    ggml gives free memory per device, not per process, so the figure is the whole device's. A driver without a
    usage figure reports free == total for ever (Vulkan without VK_EXT_memory_budget: Mesa's lavapipe); there the
    reading is llama.cpp's own buffers on the device (``allocated``: device name → bytes from the load log),
    named as such — never a flat zero that reads as 'nothing on the GPU'."""
    offload = [d for d in devices if d.offloads]
    if not offload:
        return None
    names = ", ".join(f"{d.name} ({d.kind_label})" for d in offload)
    in_use = sum(max(d.total_bytes - d.free_bytes, 0) for d in offload)
    mine = sum(allocated.get(d.name, 0) for d in offload)
    if in_use == 0:
        return DeviceMemoryReading(mine, f"{names}: the driver reports no usage; llama.cpp's buffers on it")
    return DeviceMemoryReading(in_use, f"{names}: in use on the device, all processes")


def device_memory_rows(sampled: list[dict[str, Any]], allocated: dict[str, int]) -> list[dict[str, Any]]:
    """Each offload device's memory as a report shows it: llama.cpp's buffers on it (this process, from the load
    log) beside what the device says is in use (ggml's total − free: the whole device, every process), and whether
    the driver reports usage at all (lavapipe does not: free == total)."""
    rows = []
    for d in devices_from_ready({"devices": sampled}):
        if not d.offloads:
            continue
        in_use = max(d.total_bytes - d.free_bytes, 0)
        rows.append(
            {
                "name": d.name,
                "description": d.description,
                "backend": d.backend,
                "label": d.kind_label,
                "total_bytes": d.total_bytes,
                "free_bytes": d.free_bytes,
                "in_use_bytes": in_use,
                "llama_cpp_bytes": allocated.get(d.name, 0),
                "reports_usage": in_use > 0,
                "source": "ggml_backend_dev_memory (whole device) and llama.cpp's load log (this process)",
            }
        )
    return rows


def offload_summary(ready: dict[str, Any] | None) -> tuple[bool, str]:
    """(whether layers can be offloaded, one sentence saying why or where) for the GPU-layers control, the status
    bar and the Hardware view — the same words everywhere.

    Three cases are told apart because they need different help: a CPU-only build (another build is needed), a
    GPU build that finds no device (a driver, or GGML_VK_VISIBLE_DEVICES for a software device), and a device that
    is a software driver on the CPU (it works, at a CPU's speed)."""
    if not ready:
        return False, "Checking the llama.cpp build…"
    if not ready.get("gpu_offload"):
        return False, "This llama.cpp build has no GPU backend (CPU only): layers stay on the CPU."
    offload = [d for d in devices_from_ready(ready) if d.offloads]
    if not offload:
        why = str(ready.get("device_note") or "llama.cpp lists no GPU device")
        return False, f"This is a GPU build of llama.cpp, but it found no GPU device ({why}): layers stay on the CPU."
    names = ", ".join(d.label for d in offload)
    text = f"Layers can be offloaded to {names}."
    if any(d.software for d in offload):
        text += " A software device runs on the CPU: offloading to it tests the GPU path, at a CPU's speed."
    return True, text
