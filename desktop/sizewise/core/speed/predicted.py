"""Predicted speed for a fit verdict: which profile applies to where the layers go, and the JSON it becomes.

``fit``, ``bench`` and the ladder all answer "how fast" beside "does it fit", for this machine (a calibrated
profile, else a labelled estimate) or for a target (published figures, core/speed/targets.py). Where llama.cpp
splits the layers, each device reads its share of the weights and KV cache at its own bandwidth, so a
partial offload costs the sum of both devices' times for their shares; a GPU without a profile of its own
is not guessed from the CPU's, and the note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sizewise.core.speed.model import ModelCost, pp_seconds, tg_seconds
from sizewise.core.speed.profile import SpeedProfile


@dataclass(frozen=True)
class Devices:
    """The profiles that apply to one budget: the CPU's, and the GPU's where there is one."""

    cpu: SpeedProfile
    gpu: SpeedProfile | None = None


@dataclass(frozen=True)
class PredictedSpeed:
    tg_tps: float  # generation with an empty cache (what llama-bench's tg and ``bench`` measure by default)
    tg_tps_full_ctx: float  # generation with the context full: the slowest it gets at these settings
    pp_tps: float  # prompt processing, a 512-token prompt into an empty cache
    confidence: str  # "measured" (every profile used was calibrated here) or "estimate"
    device: str  # "cpu", "gpu" or "cpu+gpu"
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tg_tps": round(self.tg_tps, 2),
            "tg_tps_full_ctx": round(self.tg_tps_full_ctx, 2),
            "pp_tps": round(self.pp_tps, 1),
            "confidence": self.confidence,
            "device": self.device,
            "note": self.note,
        }


def predict_for_split(
    cost: ModelCost, devices: Devices, gpu_layers: int, n_offloadable: int, n_ctx: int
) -> PredictedSpeed:
    """Speed with ``gpu_layers`` of ``n_offloadable`` on the GPU (the rest, and all of it without a GPU, on the CPU)."""
    share = gpu_layers / n_offloadable if n_offloadable and devices.gpu is not None else 0.0
    used = [devices.cpu] if share < 1 else []
    if share > 0 and devices.gpu is not None:
        used.append(devices.gpu)
    notes = [p.note for p in used if p.note]
    if gpu_layers and devices.gpu is None:
        notes.append("no speed profile for the GPU: the prediction assumes every layer runs on the CPU")

    def tg(depth: int) -> float:
        if share <= 0 or devices.gpu is None:
            return tg_seconds(cost, devices.cpu, depth)
        gpu_part = tg_seconds(_scaled(cost, share), devices.gpu, depth)
        if share >= 1:
            return gpu_part
        # One token's fixed cost (graph set-up, synchronisation) is counted once, on the GPU side.
        cpu_part = tg_seconds(_scaled(cost, 1 - share), devices.cpu, depth) - devices.cpu.t_fixed
        return gpu_part + cpu_part

    def pp() -> float:
        if share <= 0 or devices.gpu is None:
            return pp_seconds(cost, devices.cpu)
        # llama.cpp runs a prompt's matmuls on the GPU even for layers kept on the CPU when it can copy the
        # weights over (op offload), so the prompt is bounded by the slower of the two shares, not the sum.
        gpu_part = pp_seconds(_scaled(cost, share), devices.gpu)
        return gpu_part if share >= 1 else max(gpu_part, pp_seconds(_scaled(cost, 1 - share), devices.cpu))

    confidence = "measured" if used and all(p.measured for p in used) else "estimate"
    device = "gpu" if share >= 1 else ("cpu+gpu" if share > 0 else "cpu")
    return PredictedSpeed(
        tg_tps=1.0 / tg(0),
        tg_tps_full_ctx=1.0 / tg(n_ctx),
        pp_tps=1.0 / pp(),
        confidence=confidence,
        device=device,
        note="; ".join(dict.fromkeys(notes)),
    )


def _scaled(cost: ModelCost, share: float) -> ModelCost:
    """The part of a model on one device: its share of the layers' bytes, FLOPs and KV cache."""
    return replace(
        cost,
        n_layer=max(1, round(cost.n_layer * share)),
        weight_bytes=int(cost.weight_bytes * share),
        bytes_by_type={k: int(v * share) for k, v in cost.bytes_by_type.items()},
        matmul_params=int(cost.matmul_params * share),
        output_params=int(cost.output_params * share),
        params_by_type={k: int(v * share) for k, v in cost.params_by_type.items()},
        kv_full_bytes_per_token=int(cost.kv_full_bytes_per_token * share),
        kv_swa_bytes_per_token=int(cost.kv_swa_bytes_per_token * share),
        attn_flops_per_cached_token=int(cost.attn_flops_per_cached_token * share),
    )

