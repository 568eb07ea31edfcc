"""A device's speed profile (what calibration measured, or a labelled estimate) and where it is kept.

A profile belongs to one machine *and* one llama.cpp build: a new CPU, more RAM or another build changes
the speed, so the store keys profiles by a fingerprint of all of them and a changed fingerprint simply
finds no profile — calibration runs again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sizewise.core.atomic import write_text_atomic
from sizewise.core.paths import AppPaths

# Uncalibrated CPU: no OS call reports memory bandwidth (psutil has none), so a deliberately low figure —
# a single-channel DDR4 laptop reaches ~15–20 GB/s in llama.cpp; 10 GB/s errs on the slow side.
DEFAULT_CPU_BANDWIDTH = 10e9
DEFAULT_CPU_T_FIXED = 0.002
DEFAULT_CPU_FLOPS = 30e9  # effective FLOP/s for prompt processing on a few cores, any weight type
ESTIMATE_NOTE = (
    "not calibrated on this machine: memory bandwidth cannot be read from the system, so a conservative "
    f"{DEFAULT_CPU_BANDWIDTH / 1e9:.0f} GB/s is assumed (run 'sizewise calibrate')"
)
PROFILE_FILE = "speed-profiles.json"
# 2: attention spans the cache in whole steps of 256 cells (core/speed/model.py); a profile of an older schema was
# fitted to other counts, so it is set aside as if absent and calibration offered again.
# 3: a CPU profile's prompt FLOP rates leave out what its matrices read again past the L2 (l2_bytes, model.py); a
# schema-2 profile's hold it for calibration's small matrices only and so predicted large k-quant models too fast.
SCHEMA = 3
KV = "kv"  # the key of the KV cache's reads in per-type and per-family figures
# Keys of a generated token's attention work beside its KV bytes (core/speed/model.py), whose "bandwidth" is not in
# bytes: ATTN in FLOPs over the cache per second, CELLS in cached cells (the mask's) per second.
ATTN = "attn"
CELLS = "cells"
NOT_BYTES = (ATTN, CELLS)


def type_family(type_name: str) -> str:
    """The kernel family of a ggml or file type: the fallback for a type calibration did not measure."""
    t = type_name.upper()
    if t in ("F32", "F16", "BF16", "F64"):
        return "float"
    if t.startswith("IQ") or t.startswith("TQ"):
        return "iquant"
    if t.endswith("_K") or "_K_" in t:  # Q4_K and the file types built on it (Q4_K_M, Q3_K_L …)
        return "kquant"
    if t in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "MXFP4"):
        return "legacy"
    return type_name if type_name in (KV, *NOT_BYTES) else "other"


@dataclass(frozen=True)
class SpeedProfile:
    """Speed figures for one backend/device; ``source`` says whether they were measured here."""

    bw_effective: float  # bytes/s, fitted over every weight type
    t_fixed: float  # seconds per generated token outside the weight reads
    pp_fixed: float = 0.0  # seconds per prompt token outside the matmuls
    t_layer: float = 0.0  # seconds per layer per generated token outside the weight reads
    pp_layer: float = 0.0  # seconds per layer per prompt token outside the matmuls
    bw_by_quant: dict[str, float] = field(default_factory=dict)  # effective bandwidth per tensor type (and kv)
    bw_by_family: dict[str, float] = field(default_factory=dict)  # … per type family: for unmeasured types
    flops_by_quant: dict[str, float] = field(default_factory=dict)  # effective FLOP/s for prompts, by tensor type
    flops_by_family: dict[str, float] = field(default_factory=dict)
    source: str = "estimate"  # "measured" | "estimate"
    backend: str = "cpu"
    device: str = ""  # the CPU model or GPU name
    when: str = ""  # ISO time of the calibration
    llama_cpp_version: str = ""
    fingerprint: str = ""
    calibration_s: float = 0.0
    points: int = 0
    note: str = ""
    fit_error: float = 0.0  # the calibration fit's worst miss over its points (0.05 = 5 %): how steady it was
    attn_flops: float = 0.0  # effective FLOP/s of a prompt's attention (0: not measured, the weights' figure)
    l2_bytes: int = 0  # a core's L2 cache on the CPU measured (0: unknown, or not a CPU): prompts' re-reads (model.py)

    @property
    def measured(self) -> bool:
        return self.source == "measured"

    def bandwidth(self, type_name: str) -> float:
        """Effective bandwidth for a tensor type (Q4_K …): its own figure, else its family's, else the overall one."""
        return self.bw_by_quant.get(type_name) or self.bw_by_family.get(type_family(type_name)) or self.bw_effective

    def flops(self, type_name: str) -> float:
        """Effective prompt FLOP/s for tensors of ``type_name`` (then its family's, then the slowest family's)."""
        found = self.flops_by_quant.get(type_name) or self.flops_by_family.get(type_family(type_name))
        if found:
            return found
        if self.flops_by_family:  # a family never measured: the slowest one measured, to err on the slow side
            return min(self.flops_by_family.values())
        return DEFAULT_CPU_FLOPS

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeedProfile:
        return cls(
            bw_effective=float(d["bw_effective"]),
            t_fixed=float(d["t_fixed"]),
            pp_fixed=float(d.get("pp_fixed", 0.0)),
            t_layer=float(d.get("t_layer", 0.0)),
            pp_layer=float(d.get("pp_layer", 0.0)),
            bw_by_quant=_floats(d.get("bw_by_quant")),
            bw_by_family=_floats(d.get("bw_by_family")),
            flops_by_quant=_floats(d.get("flops_by_quant")),
            flops_by_family=_floats(d.get("flops_by_family")),
            attn_flops=float(d.get("attn_flops", 0.0)),
            source=str(d.get("source", "estimate")),
            backend=str(d.get("backend", "cpu")),
            device=str(d.get("device", "")),
            when=str(d.get("when", "")),
            llama_cpp_version=str(d.get("llama_cpp_version", "")),
            fingerprint=str(d.get("fingerprint", "")),
            calibration_s=float(d.get("calibration_s", 0.0)),
            points=int(d.get("points", 0)),
            note=str(d.get("note", "")),
            fit_error=float(d.get("fit_error", 0.0)),
            l2_bytes=int(d.get("l2_bytes", 0)),
        )


def _entry(entry: Any) -> SpeedProfile | None:
    if not isinstance(entry, dict) or entry.get("schema") != SCHEMA:
        return None
    try:
        return SpeedProfile.from_dict(entry)
    except (KeyError, TypeError, ValueError):
        return None  # an unreadable entry is as good as none: calibrate again


def _floats(d: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in (d or {}).items()}


def estimate_profile(device: str = "", reason: str = ESTIMATE_NOTE) -> SpeedProfile:
    """The profile of a CPU nobody measured: conservative defaults, labelled ``estimate`` with the reason."""
    return SpeedProfile(
        bw_effective=DEFAULT_CPU_BANDWIDTH, t_fixed=DEFAULT_CPU_T_FIXED, device=device, source="estimate", note=reason
    )


def fingerprint(cpu_model: str, cores: int, ram_total: int, llama_cpp_version: str, system_info: str) -> str:
    """A short stable key for "this hardware with this llama.cpp build"; any change means recalibrating."""
    raw = json.dumps([cpu_model, cores, ram_total, llama_cpp_version, system_info])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


class ProfileStore:
    """Calibrated profiles, one per fingerprint, in one JSON file under the app data folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_app(cls, paths: AppPaths) -> ProfileStore:
        return cls(paths.data_dir / PROFILE_FILE)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> SpeedProfile | None:
        return self.get_many([key])[0]

    def get_many(self, keys: list[str | None]) -> list[SpeedProfile | None]:
        """The profiles under ``keys`` (None for a missing key, or where the key itself is None), from one read of
        the file: the Fit view asks for the CPU's and the GPU's on the GUI thread."""
        data = self._read()
        return [_entry(data.get(key)) if key is not None else None for key in keys]

    def put(self, profile: SpeedProfile) -> None:
        if not profile.measured or not profile.fingerprint:
            raise ValueError("only a measured profile with a fingerprint is stored")
        data = self._read()
        data[profile.fingerprint] = profile.to_dict()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))
