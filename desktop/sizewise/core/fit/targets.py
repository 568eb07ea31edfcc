"""Named deployment targets ("8 GB laptop", "Raspberry Pi 5" …) and custom RAM/VRAM figures, as budgets.

The list lives in ``resources/targets.json`` (found through ``core.resources.resource_path``: the
packaged ``sizewise/resources`` first, then a PyInstaller bundle's root, then the checkout), so a
target can be added without touching code. A target's budget is its memory minus what the operating
system and everyday apps typically keep (``os_reserved_gib``, stated per target), and its CPU
features decide which weights llama.cpp's CPU backend would repack there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizewise.core.errors import UserError
from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.verdict import Budget
from sizewise.core.resources import resource_path

GiB = 1 << 30
TARGETS_FILE = "targets.json"
_GPU_KINDS = ("none", "cuda", "metal", "vulkan", "rocm")


@dataclass(frozen=True)
class Target:
    id: str
    name: str
    ram_bytes: int
    vram_bytes: int
    os_reserved_bytes: int
    vram_reserved_bytes: int
    gpu: str
    unified: bool
    gpu_share: float
    cpu_features: frozenset[str]
    notes: str = ""
    # Published peak figures for a speed estimate (0 = not given): bytes/s and FLOP/s, with their source.
    ram_bandwidth: float = 0.0
    vram_bandwidth: float = 0.0
    cpu_flops: float = 0.0
    gpu_flops: float = 0.0
    speed_source: str = ""

    def budget(self) -> Budget:
        has_gpu = self.gpu != "none"
        ram = max(0, self.ram_bytes - self.os_reserved_bytes)
        if self.unified:
            vram = int(self.ram_bytes * self.gpu_share) if has_gpu else 0
        else:
            vram = max(0, self.vram_bytes - self.vram_reserved_bytes) if has_gpu else 0
        parts = [f"target '{self.id}' ({self.name}): {self.ram_bytes / GiB:g} GiB RAM"]
        parts.append(f"minus {self.os_reserved_bytes / GiB:g} GiB kept by the OS and apps")
        if has_gpu and self.unified:
            parts.append(f"GPU may use {self.gpu_share:.0%} of unified memory")
        elif has_gpu:
            parts.append(
                f"{self.vram_bytes / GiB:g} GiB VRAM minus {self.vram_reserved_bytes / GiB:g} GiB for the display"
            )
        return Budget(
            ram_bytes=ram,
            vram_bytes=vram,
            source=", ".join(parts),
            # GPU builds put CPU-side weights in the host buffer, so no CPU_REPACK copies there.
            backend=Backend(gpu=has_gpu, repack=not has_gpu, cpu_features=self.cpu_features),
            unified=self.unified and has_gpu,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "ram_bytes": self.ram_bytes,
            "vram_bytes": self.vram_bytes,
            "os_reserved_bytes": self.os_reserved_bytes,
            "gpu": self.gpu,
            "unified": self.unified,
            "cpu_features": sorted(self.cpu_features),
            "notes": self.notes,
            "ram_bandwidth_gbs": self.ram_bandwidth / 1e9,
            "vram_bandwidth_gbs": self.vram_bandwidth / 1e9,
            "cpu_gflops": self.cpu_flops / 1e9,
            "gpu_tflops": self.gpu_flops / 1e12,
            "speed_source": self.speed_source,
        }


def _number(entry: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = entry.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise UserError(f"Target {entry.get('id', '?')!r} in {TARGETS_FILE} has an invalid {key} ({value!r}).")
    return float(value)


def _gib(entry: dict[str, Any], key: str, default: float = 0.0) -> int:
    return int(_number(entry, key, default) * GiB)


def parse_targets(data: Any) -> list[Target]:
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        raise UserError(f"{TARGETS_FILE} must hold an object with a 'targets' list.")
    out: list[Target] = []
    for entry in data["targets"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            raise UserError(f"Every target in {TARGETS_FILE} needs an 'id'.")
        gpu = str(entry.get("gpu", "none"))
        if gpu not in _GPU_KINDS:
            raise UserError(f"Target {entry['id']!r} has an unknown gpu kind {gpu!r} (one of {', '.join(_GPU_KINDS)}).")
        share = float(entry.get("gpu_share", 0.75))
        out.append(
            Target(
                id=entry["id"],
                name=str(entry.get("name") or entry["id"]),
                ram_bytes=_gib(entry, "ram_gib"),
                vram_bytes=_gib(entry, "vram_gib"),
                os_reserved_bytes=_gib(entry, "os_reserved_gib"),
                vram_reserved_bytes=_gib(entry, "vram_reserved_gib"),
                gpu=gpu,
                unified=bool(entry.get("unified", False)),
                gpu_share=min(max(share, 0.0), 1.0),
                cpu_features=frozenset(str(f) for f in entry.get("cpu_features", [])),
                notes=str(entry.get("notes", "")),
                ram_bandwidth=_number(entry, "ram_bandwidth_gbs") * 1e9,
                vram_bandwidth=_number(entry, "vram_bandwidth_gbs") * 1e9,
                cpu_flops=_number(entry, "cpu_gflops") * 1e9,
                gpu_flops=_number(entry, "gpu_tflops") * 1e12,
                speed_source=str(entry.get("speed_source", "")),
            )
        )
    return out


def load_targets(path: Path | None = None) -> list[Target]:
    """The targets from ``resources/targets.json`` (or ``path``)."""
    file = path or resource_path(TARGETS_FILE)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"The targets file {file} could not be read ({exc}).") from exc
    return parse_targets(data)


def find_target(name: str, targets: list[Target] | None = None) -> Target:
    """A target by id or by name (case-insensitive); UserError listing the choices otherwise."""
    targets = targets if targets is not None else load_targets()
    key = name.strip().lower()
    for t in targets:
        if key in (t.id.lower(), t.name.lower()):
            return t
    raise UserError(f"There is no target called {name!r}; choose one of: {', '.join(t.id for t in targets)}.")


def custom_budget(ram_gib: float, vram_gib: float = 0.0, backend: Backend | None = None) -> Budget:
    """A budget from figures the user typed (``--ram-gib X --vram-gib Y``), used as given."""
    if ram_gib <= 0:
        raise UserError(f"RAM must be more than 0 GiB, not {ram_gib:g}.")
    if vram_gib < 0:
        raise UserError(f"VRAM cannot be negative ({vram_gib:g} GiB).")
    base = backend or Backend(repack=True, cpu_features=frozenset({"avx2"}))
    return Budget(
        ram_bytes=int(ram_gib * GiB),
        vram_bytes=int(vram_gib * GiB),
        source=f"custom: {ram_gib:g} GiB RAM, {vram_gib:g} GiB VRAM (as given)",
        backend=Backend(gpu=vram_gib > 0, repack=base.repack and vram_gib <= 0, cpu_features=base.cpu_features),
    )
