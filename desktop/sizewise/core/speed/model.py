"""The speed model: generation and prompt-processing speed of a GGUF on a device, from its header alone.

Generation is memory-bound (BRIEF §9): each token reads every weight it uses once, plus the KV cache filled
so far, so ``t_token = t_fixed + n_layer × t_layer + weight_bytes / bw_quant + kv_bytes / bw_kv``.
Measured efficiency is not constant — small models lose a larger share to work outside the matmuls — hence
fixed terms instead of one efficiency factor; the per-layer one is there because on a CPU each of a layer's
graph nodes costs a thread synchronisation, so a deep narrow model (SmolLM2-135M: 30 layers) is slower than
its bytes alone say. On a CPU the dequantization work differs per weight type (Q2_K reads fewer bytes than
Q4_K but decodes slower), so a profile carries an effective bandwidth per file type (Q4_K_M: its own mix of
Q4_K and Q6_K tensors) and per type family (fitted in fit.py): a type it never measured uses its family's
figure, a family it never measured the overall one. Per file type rather than per tensor type because a
file type's mix is fixed by llama.cpp's rules, and eighteen noisy points cannot separate seven tensor types.

Prompt processing is compute-bound: ``t_pp_token = c0 + n_layer × c_layer + flops / F`` with ``flops ≈ 2 ×
active matmul parameters`` plus attention over the tokens already in the cache, and ``F`` an effective
FLOP/s measured per file type, then family (F16 and Q6_K differ ~1.7×).

Mixture-of-experts: tensors named ``*_exps`` count ``expert_used_count / expert_count`` of their bytes and
parameters; attention, router and shared tensors count in full. The token-embedding table is read one row
per token, so it counts only when it doubles as the output matrix (tied embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sizewise.core.fit.memory_model import kv_bytes_per_token, model_shape
from sizewise.core.gguf.header import GGUFHeader, header_int, quantization_name
from sizewise.core.speed.profile import KV, SpeedProfile, type_family


@dataclass(frozen=True)
class ModelCost:
    """What one token costs a model, independent of the device."""

    n_layer: int
    weight_bytes: int  # weights read per generated token (active experts only)
    bytes_by_type: dict[str, int]  # by ggml tensor type name
    matmul_params: int  # active parameters a token multiplies through
    quant: str  # the file type (Q4_K_M …): picks the effective bandwidth and FLOP/s
    kv_full_bytes_per_token: int  # K+V bytes per cached token on full-attention layers
    kv_swa_bytes_per_token: int
    n_swa: int
    attn_flops_per_cached_token: int  # QK and softmax·V work per new token, per token already cached
    notes: tuple[str, ...] = field(default=())

    @property
    def family(self) -> str:
        return type_family(self.quant)

    def bytes_by_family(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t, n in self.bytes_by_type.items():
            out[type_family(t)] = out.get(type_family(t), 0) + n
        return out

    def kv_bytes_at(self, depth: int) -> int:
        """KV bytes a token reads with ``depth`` tokens already in the cache."""
        swa_depth = min(depth, self.n_swa) if self.n_swa > 0 else depth
        return self.kv_full_bytes_per_token * depth + self.kv_swa_bytes_per_token * swa_depth

    def bytes_read(self, depth: int = 0) -> int:
        return self.weight_bytes + self.kv_bytes_at(depth)

    def pp_flops(self, depth: int = 0, n_prompt: int = 512) -> float:
        """FLOPs per prompt token for a prompt of ``n_prompt`` tokens after ``depth`` cached ones."""
        mean_cached = depth + n_prompt / 2
        return 2.0 * self.matmul_params + self.attn_flops_per_cached_token * mean_cached


def model_cost(header: GGUFHeader) -> ModelCost:
    """Bytes and FLOPs per token, read from a GGUF header (local or remote)."""
    shape = model_shape(header)
    n_expert = header_int(header.arch_key("expert_count"))
    n_used = header_int(header.arch_key("expert_used_count")) or n_expert
    names = {t.name for t in header.tensors}
    tied = "output.weight" not in names
    by_type: dict[str, int] = {}
    matmul_params = 0
    for t in header.tensors:
        if t.name == "token_embd.weight" and not tied:
            continue  # one row per token: negligible
        if len(t.shape) < 2 and t.n_elements < 1 << 16:
            continue  # norms and biases
        share = n_used / n_expert if n_expert > 1 and "_exps" in t.name else 1.0
        by_type[t.type_name] = by_type.get(t.type_name, 0) + int(t.n_bytes * share)
        matmul_params += int(t.n_elements * share)
    full, swa = kv_bytes_per_token(shape)
    attn = sum(4 * h * shape.head_dim_k for h in shape.n_head)  # QK^T plus softmax·V, 2 FLOPs per MAC
    notes = () if shape.known else shape.notes
    return ModelCost(
        n_layer=shape.n_layer,
        weight_bytes=sum(by_type.values()),
        bytes_by_type=by_type,
        matmul_params=matmul_params,
        quant=quantization_name(header),
        kv_full_bytes_per_token=full,
        kv_swa_bytes_per_token=swa,
        n_swa=shape.n_swa,
        attn_flops_per_cached_token=attn,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class SpeedPrediction:
    tg_tps: float
    pp_tps: float
    ms_per_token: float
    depth: int
    confidence: str  # "measured" (from a calibrated profile) or "estimate"
    note: str = ""


def tg_seconds(cost: ModelCost, profile: SpeedProfile, depth: int = 0) -> float:
    """Seconds per generated token at ``depth``: the fixed parts, the weights and the KV cache so far."""
    fixed = profile.t_fixed + cost.n_layer * profile.t_layer
    return fixed + cost.weight_bytes / profile.bandwidth(cost.quant) + cost.kv_bytes_at(depth) / profile.bandwidth(KV)


def pp_seconds(cost: ModelCost, profile: SpeedProfile, depth: int = 0, n_prompt: int = 512) -> float:
    """Seconds per prompt token (a batch of ``n_prompt`` after ``depth`` cached tokens)."""
    return (
        profile.pp_fixed + cost.n_layer * profile.pp_layer + cost.pp_flops(depth, n_prompt) / profile.flops(cost.quant)
    )


def predict_speed(cost: ModelCost, profile: SpeedProfile, depth: int = 0, n_prompt: int = 512) -> SpeedPrediction:
    tg = tg_seconds(cost, profile, depth)
    pp = pp_seconds(cost, profile, depth, n_prompt)
    return SpeedPrediction(
        tg_tps=1.0 / tg,
        pp_tps=1.0 / pp,
        ms_per_token=tg * 1000.0,
        depth=depth,
        confidence="measured" if profile.measured else "estimate",
        note=profile.note,
    )
