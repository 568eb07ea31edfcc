"""Sampling and load settings as plain data, shared by the CLI, the GUI and the engine protocol."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

TEMPERATURE_HINT = (
    "Low (≈0.2) keeps answers focused and repeatable — facts, summaries, code. "
    "High (≈1.0+) makes them varied and creative — brainstorming, stories — and riskier."
)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    seed: int | None = None  # None: a fresh random seed for every reply

    def validate(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"Temperature must be between 0 and 2, not {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"Top-p must be above 0 and at most 1, not {self.top_p}.")
        if self.top_k < 0:
            raise ValueError(f"Top-k must be 0 (off) or more, not {self.top_k}.")
        if not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"Min-p must be between 0 and 1, not {self.min_p}.")
        if not 0.5 <= self.repeat_penalty <= 2.0:
            raise ValueError(f"Repeat penalty must be between 0.5 and 2, not {self.repeat_penalty}.")
        if self.max_tokens < 1:
            raise ValueError(f"Max tokens must be at least 1, not {self.max_tokens}.")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise ValueError(f"Seed must be between 0 and {2**32 - 1}, not {self.seed}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def default_threads() -> int:
    """CPU threads for llama.cpp when the user sets none: one per physical core.

    llama-cpp-python's own default is half the logical CPUs, which on a 2-core machine is one
    thread and roughly halves generation speed (measured: 36 vs 65 tokens/s for SmolLM2).
    llama.cpp's CLI also uses the physical cores.
    """
    import psutil

    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


@dataclass(frozen=True)
class LoadParams:
    n_ctx: int = 2048
    n_gpu_layers: int = 0
    n_batch: int = 512
    n_ubatch: int = 512
    n_threads: int | None = None
    kv_type: str = "f16"  # f16 | q8_0 | q4_0
    flash_attn: bool = False
    # llama.cpp's default: on a GPU build, a prompt batch's matmuls for layers kept on the CPU run on the GPU.
    # Off only where the CPU itself must be timed (calibration's CPU profile on a GPU build).
    op_offload: bool = True

    def validate(self) -> None:
        if self.n_ctx < 16:
            raise ValueError(f"Context length must be at least 16 tokens, not {self.n_ctx}.")
        if self.n_gpu_layers < -1:
            raise ValueError(f"GPU layers must be -1 (all), 0 or more, not {self.n_gpu_layers}.")
        if self.kv_type not in ("f16", "q8_0", "q4_0"):
            raise ValueError(f"KV cache type must be f16, q8_0 or q4_0, not {self.kv_type!r}.")
        if self.kv_type != "f16" and not self.flash_attn:
            raise ValueError("A quantized KV cache needs flash attention (--flash-attn).")
        if self.n_ubatch > self.n_batch:
            raise ValueError("n_ubatch cannot be larger than n_batch.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadParams:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
