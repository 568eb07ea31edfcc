"""Perplexity and KL divergence from logits, by llama-perplexity's method (llama.cpp tools/perplexity).

Why here and not in the engine: the figures are arithmetic on arrays, testable without a model, and the
same code scores a model with or without a reference. The engine hands over, per chunk, the logits of the
scored positions; this module turns them into the numbers llama-perplexity prints:

* **perplexity** — exp(mean negative log-likelihood of the next token); ``± ppl × sd/√(n−1)`` as
  llama-perplexity's "Final estimate" computes it;
* **KLD** — KL(reference ‖ model) per token, its mean and 99th percentile;
* **same top token** — how often the model's most likely token is the reference's;
* **Δp** — the model's probability of the correct next token minus the reference's, averaged.

The reference is kept compactly (``ReferenceRows``), not as the whole vocabulary per token
(llama-perplexity's logits file: ≈100 KB a token for a 49k vocabulary). Per scored token it keeps the
``HEAD_K`` most likely tokens exactly, plus ``TAIL_M`` tokens drawn from the rest of the distribution in
proportion to their probability (systematic sampling at fixed quantiles, so the draw is deterministic), plus
the rest's total mass. KL then sums the head exactly and estimates the tail as ``mass × mean(log p − log q)``
over the drawn tokens, an unbiased estimate of the tail's share. Why not "top-k plus one bucket": small
models spread their mass thinly — on SmolLM2 the 64 likeliest tokens hold only 92 % of it on average, and
merging the rest into one bucket understated KL by 13 % (measured against the full-vocabulary KL on real
logits; tests/engine/test_quant_lab.py keeps this estimate within 1 % of it). About 3 KB a token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

TOP_K_DEFAULT = 128  # head tokens kept exactly
TAIL_M = 256  # tokens drawn from the rest
_ROW_BLOCK = 16  # rows per block when drawing the tail: bounds the cumulative-sum buffer for large vocabularies

FloatArray = npt.NDArray[np.floating[Any]]


def log_softmax(logits: npt.NDArray[np.float32]) -> FloatArray:
    """Row-wise log-probabilities, in float32 with the normaliser summed in float64 (as llama-perplexity: float
    logits, double sum). Float32 throughout the big matrix keeps the scoring loop's overhead small next to
    llama_decode (float64 doubled it); the error is ~1e-6 on a log-probability, far below any figure shown."""
    x = np.asarray(logits, dtype=np.float32)
    out = np.empty_like(x)
    log_softmax_into(x, out, np.empty_like(x))
    return out


def log_softmax_into(x: npt.NDArray[np.float32], out: npt.NDArray[np.float32], tmp: npt.NDArray[np.float32]) -> None:
    """``log_softmax`` written into ``out``, with ``tmp`` as scratch: no allocation of the big matrix.

    The scoring loop calls it on every chunk with buffers it keeps, and on row slices from several threads
    (NumPy releases the GIL in these loops): a fresh 50 MB array per step cost page faults and made the
    loop's overhead next to llama_decode uneven (30–300 ms a chunk). Same arithmetic as before, row by row, so
    the figures are bit-identical however the rows are split.
    """
    m = x.max(axis=1, keepdims=True)
    np.subtract(x, m, out=tmp)
    np.exp(tmp, out=tmp)
    z = np.log(tmp.sum(axis=1, keepdims=True, dtype=np.float64))
    np.subtract(x, (m + z).astype(np.float32), out=out)


@dataclass(frozen=True)
class ReferenceRows:
    """The reference model's distribution for a run of scored tokens, kept compactly (see module docstring)."""

    top_ids: npt.NDArray[np.int32]  # (n, k), most likely first
    top_logp: npt.NDArray[np.float32]  # (n, k)
    target_logp: npt.NDArray[np.float32]  # (n,) log-probability of the correct next token
    tail_ids: npt.NDArray[np.int32]  # (n, m) drawn from outside the head, ∝ probability
    tail_logp: npt.NDArray[np.float32]  # (n, m)
    tail_mass: npt.NDArray[np.float64]  # (n,) probability outside the head

    @classmethod
    def from_logp(
        cls, logp: FloatArray, targets: npt.NDArray[np.int32], k: int = TOP_K_DEFAULT, m: int = TAIL_M
    ) -> ReferenceRows:
        n, vocab = logp.shape
        k = min(k, vocab)
        part = np.argpartition(-logp, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(logp, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        ids = np.take_along_axis(part, order, axis=1)
        top = np.take_along_axis(vals, order, axis=1)
        tgt = logp[np.arange(len(targets)), targets].astype(np.float32)
        tail_ids = np.zeros((n, m), dtype=np.int64)
        tail_mass = np.zeros(n, dtype=np.float64)
        quantiles = (np.arange(m) + 0.5) / m
        for lo in range(0, n, _ROW_BLOCK):
            hi = min(n, lo + _ROW_BLOCK)
            p = np.exp(logp[lo:hi].astype(np.float64))
            np.put_along_axis(p, ids[lo:hi], 0.0, axis=1)
            cum = np.cumsum(p, axis=1)
            mass = cum[:, -1].copy()
            tail_mass[lo:hi] = mass
            for r in range(hi - lo):
                if mass[r] > 0 and k < vocab:
                    tail_ids[lo + r] = np.minimum(np.searchsorted(cum[r], quantiles * mass[r]), vocab - 1)
                else:
                    tail_ids[lo + r] = ids[lo + r, 0]  # no tail: any id, weighted by a mass of 0
        tail_logp = np.take_along_axis(logp, tail_ids, axis=1)
        return cls(
            ids.astype(np.int32),
            top.astype(np.float32),
            tgt,
            tail_ids.astype(np.int32),
            tail_logp.astype(np.float32),
            tail_mass,
        )

    def __len__(self) -> int:
        return int(self.target_logp.shape[0])

    def rows(self, lo: int, hi: int) -> ReferenceRows:
        return ReferenceRows(
            self.top_ids[lo:hi],
            self.top_logp[lo:hi],
            self.target_logp[lo:hi],
            self.tail_ids[lo:hi],
            self.tail_logp[lo:hi],
            self.tail_mass[lo:hi],
        )

    @classmethod
    def concat(cls, parts: list[ReferenceRows]) -> ReferenceRows:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))


def kld_rows(ref: ReferenceRows, logp: FloatArray) -> FloatArray:
    """KL(reference ‖ model) per row: the head exactly, the tail estimated from its drawn tokens."""
    p_log = ref.top_logp.astype(np.float64)
    q_log = np.take_along_axis(logp, ref.top_ids.astype(np.int64), axis=1).astype(np.float64)
    head = (np.exp(p_log) * (p_log - q_log)).sum(axis=1)
    q_tail = np.take_along_axis(logp, ref.tail_ids.astype(np.int64), axis=1).astype(np.float64)
    tail = ref.tail_mass * (ref.tail_logp.astype(np.float64) - q_tail).mean(axis=1)
    out: FloatArray = head + tail
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
        tgt_logp = logp[rows, targets].astype(np.float64)
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
