"""The quality/size/speed trade-off as plain data: one point per quant, and which quants are worth having.

A quant is worth considering only when no other is at least as good on both axes and better on one —
smaller *and* closer to its reference, or faster *and* closer. Those left form the Pareto front; the rest
are dominated: another quant gives as much quality for less. The HTML report (svg_scatter) and the Compare
view (gui/compare/tradeoff_chart.py) take their points and front from here, so they cannot disagree.

It lives in core/report rather than core/compare because the report draws it, and core.report may not
import core.compare (import contract: comparisons sit on top of core).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Better = Literal["min", "max"]
MiB = 1 << 20


@dataclass(frozen=True)
class Metric:
    """A figure a trade-off chart can plot on an axis, and which way is better."""

    key: str  # for quality: the field in a report entry's ``quality`` object
    name: str  # short, for an axis
    better: Better
    hint: str  # "lower is better", said on the axis: it differs between figures
    long: str = ""  # for a menu

    @property
    def title(self) -> str:
        return f"{self.name} — {self.hint}"


QUALITY_METRICS: dict[str, Metric] = {
    "kld_mean": Metric("kld_mean", "KLD mean", "min", "lower is better", "KL divergence from the reference (mean)"),
    "same_top_pct": Metric(
        "same_top_pct", "Same top token (%)", "max", "higher is better", "Same top token as the reference (%)"
    ),
    "ppl": Metric("ppl", "Perplexity", "min", "lower is better", "Perplexity"),
}
SIZE_AXIS = Metric("size", "File size (MiB)", "min", "smaller is better")
SPEED_AXIS = Metric("speed", "Generation speed (tokens/s)", "max", "faster is better")


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    entry: int  # index of the report entry it came from


def dominates(a: tuple[float, float], b: tuple[float, float], better: tuple[Better, Better]) -> bool:
    """``a`` is at least as good as ``b`` on both axes and strictly better on one."""

    def as_good(u: float, v: float, way: Better) -> bool:
        return u <= v if way == "min" else u >= v

    both = as_good(a[0], b[0], better[0]) and as_good(a[1], b[1], better[1])
    return both and (a[0] != b[0] or a[1] != b[1])


def pareto_front(points: Sequence[tuple[float, float]], better: tuple[Better, Better]) -> list[int]:
    """Indexes of the points no other point dominates, ordered by x (then y) so a line can join them.

    Identical points do not dominate each other: both stay on the front. Quadratic, which is fine for the
    handful of quants a comparison holds.
    """
    front = [i for i, p in enumerate(points) if not any(dominates(q, p, better) for q in points)]
    return sorted(front, key=lambda i: (points[i][0], points[i][1]))


def label_levels(points: Sequence[Point], near: float = 0.08) -> dict[int, int]:
    """How many lines above its dot each point's label goes (0: just above), so that quants of nearly the same
    size and quality do not print their names on top of each other.

    Points within ``near`` of the x range (and twice that of the y range) of their right-hand neighbour form a
    cluster; going right to left, each label in a cluster goes one line higher than its neighbour's. The
    rightmost keeps its line because its name runs to the right, into empty space.
    """
    if len(points) < 2:
        return {i: 0 for i in range(len(points))}
    xs, ys = [p.x for p in points], [p.y for p in points]
    dx, dy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    order = sorted(range(len(points)), key=lambda i: (points[i].x, points[i].y), reverse=True)
    levels = {order[0]: 0}
    for right, cur in itertools.pairwise(order):
        a, b = points[right], points[cur]
        close = abs(b.x - a.x) < near * dx and abs(b.y - a.y) < 2 * near * dy
        levels[cur] = levels[right] + 1 if close else 0
    return levels


def file_mib(entry: Mapping[str, Any]) -> float | None:
    size = (entry.get("model") or {}).get("file_bytes")
    return None if not size else int(size) / MiB


def quality_figure(entry: Mapping[str, Any], key: str) -> float | None:
    q = entry.get("quality")
    if not isinstance(q, Mapping) or q.get(key) is None:
        return None
    return float(q[key])


def tradeoff_points(
    entries: Sequence[Mapping[str, Any]], x_of: Callable[[Mapping[str, Any]], float | None], metric: str
) -> list[Point]:
    """One point per model file (its first entry: a temperature comparison repeats one file) that has both
    the x figure and the quality figure; the label is the quant, or the file's name when quants repeat."""
    seen: set[str] = set()
    picked: list[tuple[int, Mapping[str, Any], float, float]] = []
    for i, e in enumerate(entries):
        path = str((e.get("model") or {}).get("path") or e.get("label") or i)
        x, y = x_of(e), quality_figure(e, metric)
        if path in seen or x is None or y is None:
            continue
        seen.add(path)
        picked.append((i, e, x, y))
    quants = [str((e.get("model") or {}).get("quantization") or "") for _i, e, _x, _y in picked]
    unique = len(set(quants)) == len(quants) and all(quants)
    return [Point(q if unique else _short_label(e, i), x, y, i) for q, (i, e, x, y) in zip(quants, picked, strict=True)]


def _short_label(e: Mapping[str, Any], i: int) -> str:
    path = (e.get("model") or {}).get("path")
    return Path(str(path)).stem if path else str(e.get("label") or f"run {i + 1}")


def quality_metric(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """What the trade-off chart plots: KLD when two or more files have it, else perplexity, else nothing."""
    for key in ("kld_mean", "ppl"):
        if len(tradeoff_points(entries, lambda _e: 0.0, key)) >= 2:
            return key
    return None
