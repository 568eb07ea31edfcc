"""Speed estimates for a deployment target nobody measured: published peak figures × a stated efficiency.

A target in ``resources/targets.json`` ("RTX 3060 12 GB", "Raspberry Pi 5") cannot be calibrated from here,
so its profile is built from the published peak memory bandwidth and FLOP/s the file records with their
sources, times an efficiency llama.cpp reaches in practice, and is always labelled ``estimate``. The
efficiencies are the figures BRIEF §9 collects: on GPUs llama.cpp's generation reaches 68–84 % of the
bandwidth ceiling (an RTX 4090 table) and ~70 % on Apple silicon (7B Q4_0 on an M1 Max: 61 t/s measured
against an 87 t/s ceiling); CPUs lose more to thread synchronisation between graph nodes, hence lower
figures. They are one number each on purpose — this is a labelled estimate, not a calibration, and the note
says which figures it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizewise.core.fit.targets import Target
from sizewise.core.speed.profile import SpeedProfile

GPU_BANDWIDTH_EFFICIENCY = 0.70
CPU_BANDWIDTH_EFFICIENCY = 0.60
GPU_FLOPS_EFFICIENCY = 0.50
CPU_FLOPS_EFFICIENCY = 0.40
GPU_T_FIXED = 0.001  # seconds a token outside the weight reads: kernel launches and synchronisation
CPU_T_FIXED = 0.002


@dataclass(frozen=True)
class TargetSpeed:
    """The target's CPU and (if it has one) GPU profile; None where the file gives no figures."""

    cpu: SpeedProfile | None
    gpu: SpeedProfile | None
    reason: str  # why there is no estimate, when both are None


def target_speed(target: Target) -> TargetSpeed:
    cpu = gpu = None
    if target.ram_bandwidth > 0 and target.cpu_flops > 0:
        cpu = _profile(target, "cpu", target.ram_bandwidth, target.cpu_flops)
    has_gpu = target.gpu != "none"
    gpu_bw = target.vram_bandwidth or (target.ram_bandwidth if target.unified else 0.0)
    if has_gpu and gpu_bw > 0 and target.gpu_flops > 0:
        gpu = _profile(target, target.gpu, gpu_bw, target.gpu_flops)
    reason = "" if cpu or gpu else f"target '{target.id}' gives no bandwidth or FLOP/s figures in targets.json"
    return TargetSpeed(cpu, gpu, reason)


def _profile(target: Target, backend: str, bandwidth: float, flops: float) -> SpeedProfile:
    return peak_profile(
        target.name, backend, bandwidth, flops, f"published figures for target '{target.id}'", "sources in targets.json"
    )


def peak_profile(device: str, backend: str, bandwidth: float, flops: float, figures: str, hint: str) -> SpeedProfile:
    """A labelled estimate from a device's peak bandwidth and FLOP/s (``figures`` says whose, ``hint`` what next)."""
    gpu = backend != "cpu"
    bw_eff = GPU_BANDWIDTH_EFFICIENCY if gpu else CPU_BANDWIDTH_EFFICIENCY
    fl_eff = GPU_FLOPS_EFFICIENCY if gpu else CPU_FLOPS_EFFICIENCY
    note = (
        f"estimate from {figures} ({backend}: {bandwidth / 1e9:g} GB/s × "
        f"{bw_eff:.2f}, {flops / 1e9:g} GFLOP/s × {fl_eff:.2f}; {hint})"
    )
    return SpeedProfile(
        bw_effective=bandwidth * bw_eff,
        t_fixed=GPU_T_FIXED if gpu else CPU_T_FIXED,
        flops_by_family={"any": flops * fl_eff},
        source="estimate",
        backend=backend,
        device=device,
        note=note,
    )
