"""Least-squares fits of a speed profile from measured points.

Generation: ``t = t_fixed + n_layer × t_layer + Σ_key bytes_key / bw_key`` — linear in the unknowns, solved
with non-negative least squares so a noisy point can never give a negative time or bandwidth. Also the single
``(t_fixed, bw)`` fit over total bytes, which is the headline figure and the fallback for unmeasured types.

Prompt processing: ``t_token = c0 + n_layer × c_layer + flops / F_key + attn_flops / F_attn``; c0, c_layer
and the attention rate are shared (attention multiplies the F16 KV cache whatever the weights' type; it is
told apart by points at two depths), one ``F`` per key. A key is a ggml type name or a type family (the caller decides;
calibration fits both, so a type it never measured still gets its family's figure), and ``kv`` for the KV
cache. Calibration varies layer count and width independently so the fixed, per-layer and per-byte terms
can be told apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from sizewise.core.speed.profile import KV, NOT_BYTES, type_family

NOT_BYTES_KEYS = frozenset(NOT_BYTES)

Array = npt.NDArray[np.float64]


def nnls(a: Array, y: Array) -> tuple[Array, float]:
    """Non-negative least squares for a handful of columns: drop the most negative column until none is.

    Enough for 2–6 unknowns (scipy's Lawson–Hanson would be exact, but scipy is not a dependency).
    """
    active = list(range(a.shape[1]))
    sol = np.zeros(a.shape[1])
    while active:
        x, *_ = np.linalg.lstsq(a[:, active], y, rcond=None)
        if (x >= 0).all():
            sol[:] = 0.0
            sol[active] = x
            break
        del active[int(np.argmin(x))]
    return sol, float(np.linalg.norm(a @ sol - y))


@dataclass(frozen=True)
class TgPoint:
    """One generation measurement: bytes read per token by key (the KV cache under ``kv``; attention's FLOPs and
    cells under ``attn`` and ``cells``, which are not bytes), and seconds."""

    bytes_by_key: dict[str, int]
    seconds: float
    n_layer: int = 0

    @property
    def bytes_read(self) -> int:
        return sum(n for k, n in self.bytes_by_key.items() if k not in NOT_BYTES)


@dataclass(frozen=True)
class PpPoint:
    key: str  # the type (or family) holding most of the model's matmul bytes
    flops: float  # per prompt token
    seconds: float  # per prompt token
    n_layer: int = 0
    attn_flops: float = 0.0  # attention's share of the work, per prompt token
    flops_by_key: dict[str, float] | None = None  # the weights' FLOPs split by key (else all under ``key``)
    reread_by_type: dict[str, float] | None = None  # bytes read again past the L2 per token (model.reread_bytes)

    def split(self) -> dict[str, float]:
        return self.flops_by_key if self.flops_by_key is not None else {self.key: self.flops}


class FitError(ValueError):
    """Too few or degenerate points to fit."""


class NoisyFit(FitError):
    """The points contradict the model's shape (time not growing with size): the timings were disturbed, which
    calibration reports as a busy machine, unlike too few points (a caller's mistake)."""


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(t_fixed, bw) for ``seconds = t_fixed + bytes / bw``, both kept ≥ 0 (bw > 0)."""
    if len(points) < 2 or len({x for x, _ in points}) < 2:
        raise FitError("need measurements at two or more different sizes")
    a = np.array([[1.0, x] for x, _ in points])
    y = np.array([s for _, s in points])
    (t_fixed, inv_bw), _ = nnls(a, y)
    if inv_bw <= 0:
        raise NoisyFit("time did not grow with bytes read")
    return float(t_fixed), float(1.0 / inv_bw)


@dataclass(frozen=True)
class TgFit:
    t_fixed: float
    bw: float  # the single figure over total bytes (headline, and the fallback for unmeasured types)
    t_layer: float
    bw_by_key: dict[str, float]
    errors: tuple[float, ...] = ()  # |fitted − measured| / measured per point, largest first

    @property
    def worst_error(self) -> float:
        """How far the fit misses its worst point, relative to it: a busy machine shows here first."""
        return self.errors[0] if self.errors else 0.0

    def error_beyond(self, outliers: int) -> float:
        """The largest miss once the ``outliers`` worst points are set aside: one noisy point among many does not
        decide, a machine busy through a run still does (it disturbs many points)."""
        return self.errors[outliers] if len(self.errors) > outliers else 0.0


def relative_errors(rows: list[list[float]], seconds: list[float], sol: Array) -> tuple[float, ...]:
    """|fitted − measured| / measured per point, largest first."""
    fitted = np.array(rows) @ sol
    return tuple(sorted((float(abs(f - s) / s) for f, s in zip(fitted, seconds, strict=True) if s > 0), reverse=True))


@dataclass(frozen=True)
class PpFit:
    c0: float
    c_layer: float
    flops_by_key: dict[str, float]
    attn_flops: float = 0.0  # FLOP/s of attention; 0 when the points did not measure it apart


# How strongly a per-type figure is drawn to its family's (Prior): as much as PRIOR_WEIGHT points of a typical
# size. Calibration's small models hold some types only as a minor share, or always in step with another (Q4_K
# beside the Q6_K output matrix): unconstrained, one noisy round put Q4_K at 60 GB/s and Q6_K at 11. Drawn too hard,
# a fallback type takes its family's figure instead of its own: the legacy family is mostly Q8_0 (~8 GB/s at one
# thread on an Intel Xeon), Q5_0 and Q4_0 decode slower (4-7), and at 2 the fit missed calibration's own Q5_0- and
# Q4_0-heavy models by 12-14 % and predicted Qwen2.5-0.5B-shaped Q4_K_M and Q2_K files (mostly Q5_0, Q4_0) 1.16-1.25x
# too fast. Refitted by the speed benchmark's own method on its three recorded runs (each run's calibrations against
# its own measurements) and on a fourth calibration against a round of the benchmark's cases measured an hour later,
# 1 put 60 of the 72 generation cases within 15 % (17, 14, 17 and 12 of 18) and 2 put 48 (11, 15, 14, 8); on the
# three runs, 0.75 and 1.25 put 48 of 54 as 1 did, 0.5 45, 0.25 38. Weighting the points by their size did no better.
# The benchmark's next run, with 1, had 13 of 18 within; refitted with 2, also 13. Then calibration emptied the CPU's
# caches before each generated token (engine/speed/measure.py, EVICT_BYTES), and its fit missed its own points by
# 3-15 % where it had missed them by 37-69 %: the points need less drawing. Two such calibrations, each against the 72
# generation cases of the four recorded runs, put 70 and 61 of 72 within 15 % at 0.5, 67 and 58 at 0.25, 65 and 58
# at 0.75, 62 and 59 at 1, 57 and 56 at 1.5.
PRIOR_WEIGHT = 0.5
Prior = Callable[[str], float | None]  # expected seconds per unit (byte or FLOP) of a key: its family's figure


def _prior_rows(rows: list[list[float]], keys: list[str], first: int, prior: Prior | None) -> list[list[float]]:
    """Rows ``w × x_k = w × prior_k``, appended to a least-squares system as soft constraints (the last column
    holds the right-hand side)."""
    out = []
    for j, k in enumerate(keys, start=first):
        expected = prior(k) if prior else None
        if expected:
            w = PRIOR_WEIGHT * float(np.median([r[j] for r in rows if r[j] > 0]))
            out.append([w if i == j else 0.0 for i in range(len(rows[0]))] + [w * expected])
    return out


def _solve(rows: list[list[float]], y: list[float], extra: list[list[float]] | None = None) -> Array:
    if extra:
        rows, y = rows + [r[:-1] for r in extra], y + [r[-1] for r in extra]
    a, b = np.array(rows), np.array(y)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-300)  # columns of ~1 and ~1e8: scale for a well-conditioned solve
    sol, _ = nnls(a / scale, b)
    out: Array = sol / scale
    return out


def fit_tg(points: list[TgPoint], prior: Prior | None = None) -> TgFit:
    """Generation figures from points; per-key bandwidths only when the points over-determine them, drawn to
    ``prior`` (seconds per byte by key) where given.

    The single figure over total bytes comes from a line through the points when time grows with bytes. On a
    device where the weight type decides more than the bytes do (software Vulkan: Q4_K_M took twice as long as
    the Q8_0 of the same shape with 25 % fewer bytes), no such line exists; with enough points the per-key fit
    still explains them, and the single figure is then the points' bytes over the time the per-key fit gives
    their bytes. Whether the per-key fit explains the points is the caller's to judge (``errors``)."""
    keys = sorted({k for p in points for k, n in p.bytes_by_key.items() if n > 0})
    over_determined = len(points) > len(keys) + 2  # else per-key figures would just fit the noise
    if not over_determined and NOT_BYTES_KEYS & set(keys):
        # Too few points to tell attention's work and cells from its bytes (a short calibration of two shapes):
        # the KV bytes stand for all three, as before they were measured apart.
        bytes_only = [TgPoint({k: n for k, n in p.bytes_by_key.items() if k not in NOT_BYTES}, p.seconds, p.n_layer)
                      for p in points]  # fmt: skip
        return fit_tg(bytes_only, prior)
    try:
        t_fixed, bw = fit_line([(float(p.bytes_read), p.seconds) for p in points])
    except NoisyFit:
        if not over_determined:
            raise
        t_fixed, bw = 0.0, 0.0
    if not over_determined:
        return TgFit(t_fixed, bw, 0.0, {})
    rows = [[1.0, float(p.n_layer)] + [float(p.bytes_by_key.get(k, 0)) for k in keys] for p in points]
    seconds = [p.seconds for p in points]
    sol = _solve(rows, seconds, _prior_rows(rows, keys, 2, prior))
    by_key = {k: float(1.0 / inv) for k, inv in zip(keys, sol[2:], strict=True) if inv > 0}
    if not by_key:
        raise NoisyFit("time did not grow with bytes read")
    if bw <= 0:
        byte_cols = [2 + j for j, k in enumerate(keys) if k not in NOT_BYTES]
        byte_seconds = float(np.sum(np.array(rows)[:, byte_cols] @ sol[byte_cols]))
        # No byte column kept a cost (an NVIDIA H200's calibration: its small models' tokens were kernel launches
        # and attention, whatever their bytes): bw stays 0, which weights_share reads as "nothing measured".
        bw = sum(float(p.bytes_read) for p in points) / byte_seconds if byte_seconds > 0 else 0.0
    return TgFit(float(sol[0]), bw, float(sol[1]), by_key, relative_errors(rows, seconds, sol))


def less_rereads(points: list[PpPoint], bandwidth: float) -> list[PpPoint]:
    """The points without the time their matrices' re-reads take at ``bandwidth`` (bytes/s): the speed model adds
    that term apart (model.reread_seconds), so the FLOP rates must not hold it twice. Never below half a point's
    time: a re-read term that large would say more about the bandwidth figure than the point."""
    if bandwidth <= 0:
        return points
    out = []
    for p in points:
        reread = sum((p.reread_by_type or {}).values()) / bandwidth
        out.append(replace(p, seconds=max(p.seconds - reread, 0.5 * p.seconds)) if reread else p)
    return out


def fit_pp(points: list[PpPoint], prior: Prior | None = None) -> PpFit:
    """Fixed and per-layer seconds per prompt token, and effective FLOP/s per key (drawn to ``prior``, seconds
    per FLOP by key, where given)."""
    keys = sorted({k for p in points for k, f in p.split().items() if f > 0})
    attn = len({p.attn_flops for p in points}) > 1  # attention apart only when the points vary it
    if len(points) < len(keys) + 2 + attn:
        raise FitError("need more prompt measurements than weight types")
    rows = []
    for p in points:
        split = p.split()
        if not attn:  # attention folded into the weights' work, at their rate
            main = max(split, key=lambda k: split[k])
            split = split | {main: split[main] + p.attn_flops}
        rows.append([1.0, float(p.n_layer)] + [split.get(k, 0.0) for k in keys] + ([p.attn_flops] if attn else []))
    sol = _solve(rows, [p.seconds for p in points], _prior_rows(rows, keys, 2, prior))
    # A type whose column came out 0 (its share too small or always in step with another's to tell apart) gets
    # no figure of its own: its family's applies.
    flops = {k: float(1.0 / inv) for k, inv in zip(keys, sol[2 : 2 + len(keys)], strict=True) if inv > 0}
    if not flops:
        raise NoisyFit("prompt time did not grow with model size")
    attn_inv = float(sol[-1]) if attn else 0.0
    return PpFit(float(sol[0]), float(sol[1]), flops, 1.0 / attn_inv if attn_inv > 0 else 0.0)


def _is_weights(key: str) -> bool:
    """Whether a point's key counts weight bytes (not the KV cache's, nor attention's FLOPs or cells)."""
    return key not in NOT_BYTES and key != KV


def weights_share(fit: TgFit, points: list[TgPoint]) -> float:
    """The largest share of a point's fitted time that reading its weights takes: how much the points say about
    the weights' bandwidth. On a CPU it is most of the time; on a data-centre GPU calibration's small models
    spend their ~0.4-1.6 ms a token mostly on per-layer kernel launches, and a bandwidth fitted from the rest is
    noise (on an NVIDIA H200 Q4_K came out at 248 GB/s beside Q6_K's 1955)."""
    best = 0.0
    for p in points:
        by_part = {True: 0.0, False: fit.t_fixed + p.n_layer * fit.t_layer}
        for k, n in p.bytes_by_key.items():
            if fit.bw_by_key.get(k):
                by_part[_is_weights(k)] += n / fit.bw_by_key[k]
        total = by_part[True] + by_part[False]
        if total > 0:
            best = max(best, by_part[True] / total)
    return best


def fit_tg_known_weights(points: list[TgPoint], bandwidth: float) -> TgFit:
    """Generation's fixed, per-layer and attention figures with the weights read at ``bandwidth`` (a published
    figure, where the points cannot measure it): each point's weight bytes at that rate are taken off its time,
    and the rest fitted as fit_tg fits it. The weights get no per-type figure: ``bw`` is ``bandwidth``."""
    weight_bytes = [float(sum(n for k, n in p.bytes_by_key.items() if _is_weights(k))) for p in points]
    rest = [TgPoint({k: n for k, n in p.bytes_by_key.items() if not _is_weights(k)},
                    max(p.seconds - w / bandwidth, 0.0), p.n_layer)
            for p, w in zip(points, weight_bytes, strict=True)]  # fmt: skip
    keys = sorted({k for p in rest for k, n in p.bytes_by_key.items() if n > 0})
    if len(rest) < len(keys) + 2:
        raise FitError("need more generation measurements than attention figures")
    rows = [[1.0, float(p.n_layer)] + [float(p.bytes_by_key.get(k, 0)) for k in keys] for p in rest]
    sol = _solve(rows, [p.seconds for p in rest])
    by_key = {k: float(1.0 / inv) for k, inv in zip(keys, sol[2:], strict=True) if inv > 0}
    full_rows = [[*row, w] for row, w in zip(rows, weight_bytes, strict=True)]
    errors = relative_errors(full_rows, [p.seconds for p in points], np.append(sol, 1.0 / bandwidth))
    return TgFit(float(sol[0]), bandwidth, float(sol[1]), by_key, errors)


# A per-type figure this far from its family's is the fit telling apart types that calibration's files hold only in
# fixed proportions (Q3_K beside Q2_K, Q6_K beside Q4_K), not a measurement: a recorded speed-benchmark run's
# calibrations put Q3_K's prompt rate at 1134-2667 GFLOP/s and Q6_K's at 51-53 around a k-quant family of ~200, and
# Q3_K's bandwidth at 2.4-3.2 GB/s around ~7.5, which predicted a Qwen2.5-1.5B-shaped Q3_K_M prompt twice as fast
# as its Q2_K one and its generation slower than Q4_K_M's. Such a type is held at its family's figure, the rest
# refitted. Measured on 8-layer models of Qwen2.5-1.5B's layers (one thread, that run's four calibrations refitted),
# predicted ÷ measured went from 1.61 to 0.83 for a Q3_K_M prompt and 0.64 to 0.96 for its generation, and from 0.24
# to 0.62 for a Q6_K prompt (Q6_K decodes faster in prompts than its family, which the family figure does not know);
# Q2_K, Q4_K_M and Q8_0 went from 0.90-1.06 to 0.91-1.13 (timed in CPU time while another test run took the other
# core). The speed benchmark's recorded runs, refitted so, stay within its
# goals (tests/benchmarks/test_speed_prediction.py).
APART_LIMIT = 2.5
_N = TypeVar("_N", int, float)


def _apart(by_key: dict[str, float], by_family: dict[str, float], keys: set[str]) -> set[str]:
    """The types among ``keys`` whose figure is missing or more than APART_LIMIT from their family's."""
    out = set()
    for k in keys:
        family = by_family.get(type_family(k))
        mine = by_key.get(k)
        if family and (not mine or not 1 / APART_LIMIT <= mine / family <= APART_LIMIT):
            out.add(k)
    return out


def _take_out(amounts: dict[str, _N], seconds: float, rates: dict[str, float]) -> tuple[dict[str, _N], float]:
    """A point's amounts (FLOPs or bytes by type) without the held types', and its seconds without their time at
    ``rates`` (never below a tenth: a held rate that slow says more about the family figure than the point)."""
    taken = sum(n / rates[k] for k, n in amounts.items() if k in rates)
    return {k: n for k, n in amounts.items() if k not in rates}, max(seconds - taken, 0.1 * seconds)


def fit_pp_in_family(points: list[PpPoint], family: PpFit, prior: Prior | None = None) -> PpFit:
    """fit_pp by type, but a type its points cannot tell from its family (``_apart``) held at the family's rate:
    its FLOPs' time is taken out of the points and the other types refitted, so they keep what it does not."""
    held: set[str] = set()
    fit = fit_pp(points, prior)
    for _ in range(4):
        more = _apart(fit.flops_by_key, family.flops_by_key, {k for p in points for k in p.split()} - held)
        if not more:
            break
        held |= more
        rates = {k: family.flops_by_key[type_family(k)] for k in held}
        rest = []
        for p in points:
            kept, seconds = _take_out(p.split(), p.seconds, rates)
            if kept:
                rest.append(replace(p, seconds=seconds, flops_by_key=kept))
        fit = fit_pp(rest, prior)
    return replace(fit, flops_by_key={k: v for k, v in fit.flops_by_key.items() if k not in held})


def fit_tg_in_family(points: list[TgPoint], family: TgFit, prior: Prior | None = None) -> TgFit:
    """fit_tg by type, with a weight type its points cannot tell from its family (``_apart``) held at the family's
    bandwidth, as fit_pp_in_family does; the headline bandwidth stays the one over every byte."""
    held: set[str] = set()
    first = fit = fit_tg(points, prior)
    for _ in range(4):
        weights = {k for p in points for k in p.bytes_by_key if k not in NOT_BYTES and k != KV} - held
        more = _apart(fit.bw_by_key, family.bw_by_key, weights)
        if not more:
            break
        held |= more
        rates = {k: family.bw_by_key[type_family(k)] for k in held}
        rest = []
        for p in points:
            kept_bytes, seconds = _take_out(p.bytes_by_key, p.seconds, rates)
            rest.append(replace(p, bytes_by_key=kept_bytes, seconds=seconds))
        fit = fit_tg(rest, prior)
    by_key = {k: v for k, v in fit.bw_by_key.items() if k not in held}
    return replace(fit, bw=first.bw, bw_by_key=by_key, errors=first.errors)
