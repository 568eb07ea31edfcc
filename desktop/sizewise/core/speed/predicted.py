"""Predicted speed for a fit verdict: which profile applies to where the layers go, and the JSON it becomes.

``fit``, ``bench`` and the ladder all answer "how fast" beside "does it fit", for this machine (a calibrated
profile, else a labelled estimate) or for a target (published figures, core/speed/targets.py). Where llama.cpp
splits the layers, each device reads its share of the weights and KV cache at its own bandwidth, so a
partial offload costs the sum of both devices' times for their shares; a GPU without a profile of its own
is not guessed from the CPU's, and the note says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sizewise.core.speed.model import ModelCost, pp_seconds, tg_seconds
from sizewise.core.speed.profile import SpeedProfile


@dataclass(frozen=True)
class Devices:
    """The profiles that apply to one budget: the CPU's, and the GPU's where there is one."""

    cpu: SpeedProfile
    gpu: SpeedProfile | None = None
    gpu_software: bool = False  # the GPU is a software driver on the CPU, which calibration does not measure


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


def _share(devices: Devices, gpu_layers: int, n_offloadable: int) -> float:
    return gpu_layers / n_offloadable if n_offloadable and devices.gpu is not None else 0.0


def _split_tg_seconds(cost: ModelCost, devices: Devices, share: float, depth: int) -> float:
    """Seconds per generated token with ``share`` of the layers on the GPU, at ``depth``."""
    if share <= 0 or devices.gpu is None:
        return tg_seconds(cost, devices.cpu, depth)
    gpu_part = tg_seconds(_scaled(cost, share), devices.gpu, depth)
    if share >= 1:
        return gpu_part
    # One token's fixed cost (graph set-up, synchronisation) is counted once, on the GPU side.
    return gpu_part + tg_seconds(_scaled(cost, 1 - share), devices.cpu, depth) - devices.cpu.t_fixed


def _split_pp_seconds(cost: ModelCost, devices: Devices, share: float, depth: int = 0, n_prompt: int = 512) -> float:
    """Seconds per prompt token with ``share`` of the layers on the GPU."""
    if share <= 0 or devices.gpu is None:
        return pp_seconds(cost, devices.cpu, depth, n_prompt)
    # llama.cpp runs a prompt's matmuls on the GPU even for layers kept on the CPU when it can copy the
    # weights over (op offload), so the prompt is bounded by the slower of the two shares, not the sum.
    gpu_part = pp_seconds(_scaled(cost, share), devices.gpu, depth, n_prompt)
    if share >= 1:
        return gpu_part
    return max(gpu_part, pp_seconds(_scaled(cost, 1 - share), devices.cpu, depth, n_prompt))


def _confidence(devices: Devices, share: float) -> str:
    used = ([devices.cpu] if share < 1 else []) + ([devices.gpu] if share > 0 and devices.gpu is not None else [])
    return "measured" if used and all(p.measured for p in used) else "estimate"


def predict_for_split(
    cost: ModelCost, devices: Devices, gpu_layers: int, n_offloadable: int, n_ctx: int
) -> PredictedSpeed:
    """Speed with ``gpu_layers`` of ``n_offloadable`` on the GPU (the rest, and all of it without a GPU, on the CPU)."""
    share = _share(devices, gpu_layers, n_offloadable)
    used = [devices.cpu] if share < 1 else []
    if share > 0 and devices.gpu is not None:
        used.append(devices.gpu)
    notes = [p.note for p in used if p.note]
    if gpu_layers and devices.gpu is None:
        notes.append("no speed profile for the GPU: the prediction assumes every layer runs on the CPU")
    device = "gpu" if share >= 1 else ("cpu+gpu" if share > 0 else "cpu")
    return PredictedSpeed(
        tg_tps=1.0 / _split_tg_seconds(cost, devices, share, 0),
        # the last token that fits: n_ctx - 1 cached, its own cell the last of the cache (attended_cells)
        tg_tps_full_ctx=1.0 / _split_tg_seconds(cost, devices, share, max(n_ctx - 1, 0)),
        pp_tps=1.0 / _split_pp_seconds(cost, devices, share),
        confidence=_confidence(devices, share),
        device=device,
        note="; ".join(dict.fromkeys(notes)),
    )


@dataclass(frozen=True)
class ReplySpeed:
    """One real reply's speeds beside what the speed model predicts for that very reply."""

    tg_tps: float
    pp_tps: float
    predicted_tg_tps: float
    predicted_pp_tps: float
    depth: int  # tokens in the context while the reply was generated (their middle)
    prompt_tokens: int
    confidence: str

    def ratio(self, key: str) -> float | None:
        """Measured ÷ predicted for ``tg`` or ``pp`` (None when either is missing)."""
        if key == "tg":
            measured, predicted = self.tg_tps, self.predicted_tg_tps
        else:
            measured, predicted = self.pp_tps, self.predicted_pp_tps
        return measured / predicted if measured > 0 and predicted > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict_reply(
    cost: ModelCost,
    devices: Devices,
    gpu_layers: int,
    n_offloadable: int,
    stats: Mapping[str, Any],
) -> ReplySpeed | None:
    """The prediction for one finished reply (its GenerationStats dict), at the reply's own prompt size and
    context depth, so that measured ÷ predicted says how far the model is off here, not how the reply differed
    from a 512-token benchmark. None for a reply too short to time (fewer than 4 generated tokens)."""
    tokens, prompt = int(stats.get("tokens") or 0), int(stats.get("prompt_tokens") or 0)
    tg, pp = float(stats.get("tg_tps") or 0.0), float(stats.get("pp_tps") or 0.0)
    if tokens < 4 or tg <= 0:
        return None
    end = int(stats.get("context_tokens") or 0) or prompt + tokens
    depth = max(end - tokens // 2, 0)  # generation ran from end - tokens to end
    start = max(end - tokens - prompt, 0)  # the prompt's own tokens came after a reused prefix of this length
    share = _share(devices, gpu_layers, n_offloadable)
    return ReplySpeed(
        tg_tps=tg,
        pp_tps=pp,
        predicted_tg_tps=1.0 / _split_tg_seconds(cost, devices, share, depth),
        predicted_pp_tps=1.0 / _split_pp_seconds(cost, devices, share, start, prompt) if prompt > 0 else 0.0,
        depth=depth,
        prompt_tokens=prompt,
        confidence=_confidence(devices, share),
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
        scores_full_per_token=int(cost.scores_full_per_token * share),
        scores_swa_per_token=int(cost.scores_swa_per_token * share),
        cell_share=cost.cell_share * share,
        matrices=tuple((t, size, count * share) for t, size, count in cost.matrices),
    )
