"""Perplexity and KL divergence from logits, by llama-perplexity's method (llama.cpp tools/perplexity).

Why here and not in the engine: the figures are arithmetic on arrays, testable without a model, and the
same code scores a model with or without a reference. The engine hands over, per chunk, the logits of the
scored positions; this module turns them into the numbers llama-perplexity prints:

* **perplexity** — exp(mean negative log-likelihood of the next token); ``± ppl × sd/√(n−1)`` as
  llama-perplexity's "Final estimate" computes it;
* **KLD** — KL(reference ‖ model) per token, its mean and 99th percentile;
* **same top token** — how often the model's most likely token is the reference's;
* **Δp** — the model's probability of the correct next token minus the reference's, averaged.

The reference is kept compactly (``ReferenceRows``): for each scored token its top-k log-probabilities and
ids, plus its log-probability of the correct token. KL is then computed over those k tokens and one bucket
holding all the rest (``1 − Σ top-k`` on each side). Merging tokens can only lower KL (the log-sum
inequality), so the figure is a lower bound of the full-vocabulary KL; with k = 64 the rest holds a tiny
mass for a trained model and tests/core/quant/test_quality_math.py bounds the difference on real logits.
llama-perplexity itself drops tokens with p < e⁻¹⁶ from the sum, a cut of the same kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

TOP_K_DEFAULT = 64
_TINY = 1e-30

FloatArray = npt.NDArray[np.float64]


def log_softmax(logits: npt.NDArray[np.float32]) -> FloatArray:
    """Row-wise log-probabilities in float64 (llama-perplexity sums exp in double as well)."""
    x = logits.astype(np.float64, copy=False)
    m = x.max(axis=1, keepdims=True)
    z = np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    out: FloatArray = x - m - z
    return out


@dataclass(frozen=True)
class ReferenceRows:
    """The reference model's distribution for a run of scored tokens, kept compactly (see module docstring)."""

    top_ids: npt.NDArray[np.int32]  # (n, k), most likely first
    top_logp: npt.NDArray[np.float32]  # (n, k)
    target_logp: npt.NDArray[np.float32]  # (n,) log-probability of the correct next token

    @classmethod
    def from_logp(cls, logp: FloatArray, targets: npt.NDArray[np.int32], k: int = TOP_K_DEFAULT) -> ReferenceRows:
        k = min(k, logp.shape[1])
        part = np.argpartition(-logp, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(logp, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
        top = np.take_along_axis(vals, order, axis=1).astype(np.float32)
        tgt = logp[np.arange(len(targets)), targets].astype(np.float32)
        return cls(ids, top, tgt)

    def __len__(self) -> int:
        return int(self.target_logp.shape[0])


def kld_rows(ref: ReferenceRows, logp: FloatArray) -> FloatArray:
    """KL(reference ‖ model) per row over the reference's top-k plus one bucket for the rest."""
    p_log = ref.top_logp.astype(np.float64)
    p = np.exp(p_log)
    q_log = np.take_along_axis(logp, ref.top_ids.astype(np.int64), axis=1)
    head = (p * (p_log - q_log)).sum(axis=1)
    p_rest = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    q_rest = np.clip(1.0 - np.exp(q_log).sum(axis=1), _TINY, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(p_rest > _TINY, p_rest * (np.log(np.maximum(p_rest, _TINY)) - np.log(q_rest)), 0.0)
    out: FloatArray = np.maximum(head + tail, 0.0)
    return out


@dataclass
class QualityTally:
    """Running sums over scored tokens; ``result`` gives the figures."""

    nll: list[FloatArray] = field(default_factory=list)
    kld: list[FloatArray] = field(default_factory=list)
    same_top: int = 0
    delta_p: list[FloatArray] = field(default_factory=list)
    ref_nll: list[FloatArray] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return int(sum(len(a) for a in self.nll))

    def add(self, logp: FloatArray, targets: npt.NDArray[np.int32], ref: ReferenceRows | None = None) -> None:
        rows = np.arange(len(targets))
        tgt_logp = logp[rows, targets]
        self.nll.append(-tgt_logp)
        if ref is None:
            return
        if len(ref) != len(targets):
            raise ValueError("reference rows and scored tokens differ in number")
        self.kld.append(kld_rows(ref, logp))
        self.same_top += int((logp.argmax(axis=1) == ref.top_ids[:, 0]).sum())
        self.delta_p.append(np.exp(tgt_logp) - np.exp(ref.target_logp.astype(np.float64)))
        self.ref_nll.append(-ref.target_logp.astype(np.float64))

    def result(self) -> QualityFigures:
        n = self.tokens
        if n == 0:
            raise ValueError("no tokens were scored")
        nll = np.concatenate(self.nll)
        mean = float(nll.mean())
        var = float((nll * nll).mean() - mean * mean)
        ppl = math.exp(mean)
        ppl_err = ppl * math.sqrt(var / (n - 1)) if var > 0 and n > 1 else 0.0
        figures = QualityFigures(ppl=ppl, ppl_err=ppl_err, tokens_scored=n)
        if self.kld:
            kld = np.concatenate(self.kld)
            ref_mean = float(np.concatenate(self.ref_nll).mean())
            figures = QualityFigures(
                ppl=ppl,
                ppl_err=ppl_err,
                tokens_scored=n,
                kld_mean=float(kld.mean()),
                kld_p99=float(np.percentile(kld, 99)),
                same_top_pct=100.0 * self.same_top / n,
                delta_p_mean=float(np.concatenate(self.delta_p).mean()),
                reference_ppl=math.exp(ref_mean),
            )
        return figures


@dataclass(frozen=True)
class QualityFigures:
    """What a quality run measured; the KLD fields are None without a reference."""

    ppl: float
    ppl_err: float
    tokens_scored: int
    kld_mean: float | None = None
    kld_p99: float | None = None
    same_top_pct: float | None = None
    delta_p_mean: float | None = None
    reference_ppl: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ppl": self.ppl,
            "ppl_err": self.ppl_err,
            "tokens_scored": self.tokens_scored,
            "kld_mean": self.kld_mean,
            "kld_p99": self.kld_p99,
            "same_top_pct": self.same_top_pct,
            "delta_p_mean": self.delta_p_mean,
            "reference_ppl": self.reference_ppl,
        }


@dataclass(frozen=True)
class ChunkPlan:
    """How llama-perplexity cuts a token stream: ``chunks`` windows of ``ctx`` tokens, the second half scored."""

    ctx: int
    chunks: int

    @property
    def first_scored(self) -> int:
        return self.ctx // 2

    @property
    def scored_per_chunk(self) -> int:
        return self.ctx - 1 - self.first_scored

    @property
    def tokens_scored(self) -> int:
        return self.chunks * self.scored_per_chunk


def plan_chunks(n_tokens: int, ctx: int, chunks: int | None) -> ChunkPlan:
    """The chunks a text of ``n_tokens`` gives; a sentence for the user when it is too short (as llama-perplexity:
    at least two windows' worth)."""
    if ctx < 16:
        raise ValueError(f"A context of {ctx} tokens is too small to measure quality; use 16 or more.")
    if n_tokens < 2 * ctx:
        raise ValueError(
            f"The text has {n_tokens:,} tokens; measuring with a context of {ctx} needs at least {2 * ctx:,}. "
            "Use a longer text or a smaller --ctx."
        )
    most = n_tokens // ctx
    if chunks is not None and chunks < 1:
        raise ValueError("--chunks must be 1 or more.")
    return ChunkPlan(ctx=ctx, chunks=most if chunks is None else min(chunks, most))
