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
