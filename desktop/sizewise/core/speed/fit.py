"""Least-squares fits of a speed profile from measured points.

Generation: ``t = t_fixed + Σ_family bytes_family / bw_family`` — linear in (t_fixed, 1/bw…), solved with
non-negative least squares so a noisy point can never give a negative time or bandwidth. Also the single
``(t_fixed, bw)`` fit over total bytes, which is the headline figure and the fallback for unmeasured types.

Prompt processing: ``t_token = c0 + flops / F_family``; c0 is shared (the per-token work outside matmuls),
one ``F`` per family.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    """One generation measurement: bytes read per token, by family (KV counted as ``float``), and seconds."""

    bytes_by_family: dict[str, int]
    seconds: float

    @property
    def bytes_read(self) -> int:
        return sum(self.bytes_by_family.values())


@dataclass(frozen=True)
class PpPoint:
    family: str
    flops: float  # per prompt token
    seconds: float  # per prompt token


class FitError(ValueError):
    """Too few or degenerate points to fit."""


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(t_fixed, bw) for ``seconds = t_fixed + bytes / bw``, both kept ≥ 0 (bw > 0)."""
    if len(points) < 2 or len({x for x, _ in points}) < 2:
        raise FitError("need measurements at two or more different sizes")
    a = np.array([[1.0, x] for x, _ in points])
    y = np.array([s for _, s in points])
    (t_fixed, inv_bw), _ = nnls(a, y)
    if inv_bw <= 0:
        raise FitError("time does not grow with bytes read: the measurements are too noisy")
    return float(t_fixed), float(1.0 / inv_bw)


def fit_tg(points: list[TgPoint]) -> tuple[float, float, dict[str, float]]:
    """(t_fixed, bw_effective, bw per family) from generation points."""
    t_fixed, bw = fit_line([(float(p.bytes_read), p.seconds) for p in points])
    families = sorted({f for p in points for f, n in p.bytes_by_family.items() if n > 0})
    a = np.array([[1.0] + [float(p.bytes_by_family.get(f, 0)) for f in families] for p in points])
    y = np.array([p.seconds for p in points])
    scale = np.maximum(a.max(axis=0), 1.0)  # columns of ~1 and ~1e8: scale for a well-conditioned solve
    sol, _ = nnls(a / scale, y)
    sol = sol / scale
    by_family = {f: float(1.0 / inv) for f, inv in zip(families, sol[1:], strict=True) if inv > 0}
    if len(points) <= len(families) + 1:
        by_family = {}  # not over-determined: the per-family figures would just fit the noise
    else:
        t_fixed = float(sol[0])
    return t_fixed, bw, by_family


def fit_pp(points: list[PpPoint]) -> tuple[float, dict[str, float]]:
    """(c0 seconds per token, effective FLOP/s per family) from prompt-processing points."""
    families = sorted({p.family for p in points})
    if len(points) < len(families) + 1:
        raise FitError("need more prompt measurements than weight type families")
    a = np.array([[1.0] + [p.flops if p.family == f else 0.0 for f in families] for p in points])
    y = np.array([p.seconds for p in points])
    scale = np.maximum(a.max(axis=0), 1.0)
    sol, _ = nnls(a / scale, y)
    sol = sol / scale
    flops = {f: float(1.0 / inv) for f, inv in zip(families, sol[1:], strict=True) if inv > 0}
    if len(flops) < len(families):
        raise FitError("prompt time does not grow with model size for some weight type")
    return float(sol[0]), flops
