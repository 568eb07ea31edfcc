"""A scatter chart with its Pareto front, as inline SVG text for the self-contained HTML report.

Same reasons as svg_chart.py (no scripts, fonts or files; no Qt in core). One dot per quant, labelled with
its name; the front — the quants no other beats on both axes — joined by a line in colour, the dominated
ones grey, so the eye goes to the choices worth making. Each axis says which way is better, because "lower
is better" holds for KLD and size but not for speed or same-top agreement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from sizewise.core.report.pareto import Better, Point, label_levels, pareto_front

FRONT_COLOR = "#4C78A8"
DOMINATED_COLOR = "#B0B0B0"
BEST_COLOR = "#F58518"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if (hi - lo) / (m * mag) <= count + 1)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def _fmt(v: float) -> str:
    a = abs(v)
    if a >= 100 or v == 0:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2g}"


def _tick(v: float, ticks: Sequence[float]) -> str:
    """Every tick of an axis with the same decimals, as many as its step needs (0, 0.1, 0.2 — not 0, 0.100)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{v:,.{decimals}f}"


def _range(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo2 = lo - pad
    if lo >= 0 > lo2:
        lo2 = 0.0  # sizes, speeds and divergences are never negative: do not draw the axis below zero
    return lo2, hi + pad


def scatter_svg(
    title: str,
    points: Sequence[Point],
    *,
    x_title: str,
    y_title: str,
    better: tuple[Better, Better],
    highlight: int | None = None,
    width: int = 680,
    height: int = 320,
) -> str:
    """One ``<svg>``: the points, the front joined by a line, dominated points grey.

    ``better`` says per axis whether smaller or larger is better (the titles should say so in words);
    ``highlight`` is a report entry index (the best choice) whose point gets a star.
    """
    left, right, top, bottom = 64, 24, 30, 64
    pw, ph = width - left - right, height - top - bottom
    xt = nice_ticks(*_range([p.x for p in points]))
    yt = nice_ticks(*_range([p.y for p in points]))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return top + ph - (v - y0) / (y1 - y0) * ph

    front = pareto_front([(p.x, p.y) for p in points], better)
    on_front = set(front)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart scatter" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for t in xt:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle" fill="#555">{_tick(t, xt)}</text>')
    for t in yt:
        y = sy(t)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_tick(t, yt)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph + 34}" text-anchor="middle">{escape(x_title)}</text>')
    out.append(
        f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle">{escape(y_title)}</text>'
    )
    if len(front) > 1:
        coords = " ".join(f"{sx(points[i].x):.1f},{sy(points[i].y):.1f}" for i in front)
        out.append(f'<polyline class="front" points="{coords}" fill="none" stroke="{FRONT_COLOR}" stroke-width="2"/>')
    levels = label_levels(points)
    for i, p in enumerate(points):
        best = highlight is not None and p.entry == highlight
        color = BEST_COLOR if best else FRONT_COLOR if i in on_front else DOMINATED_COLOR
        cls = "front" if i in on_front else "dominated"
        cx, cy = sx(p.x), sy(p.y)
        label = ("★ " if best else "") + p.label
        out.append(
            f'<circle class="{cls}" cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color}">'
            f"<title>{escape(p.label)}: {_fmt(p.x)}, {_fmt(p.y)}</title></circle>"
        )
        anchor, dx = ("end", -8) if cx > left + pw * 0.8 else ("start", 8)
        fill = "#222" if i in on_front else "#888"
        out.append(
            f'<text x="{cx + dx:.1f}" y="{cy - 6 - 14 * levels[i]:.1f}" text-anchor="{anchor}" fill="{fill}">'
            f"{escape(label)}</text>"
        )
    ly = height - 10
    out.append(
        f'<line x1="{left}" y1="{ly - 4}" x2="{left + 20}" y2="{ly - 4}" stroke="{FRONT_COLOR}" stroke-width="2"/>'
    )
    out.append(f'<text x="{left + 26}" y="{ly}">Pareto front (the best trade-offs)</text>')
    gx = left + 260
    out.append(f'<circle cx="{gx}" cy="{ly - 4}" r="5" fill="{DOMINATED_COLOR}"/>')
    out.append(f'<text x="{gx + 10}" y="{ly}" fill="#555">dominated (another is as good or better on both)</text>')
    out.append("</svg>")
    return "\n".join(out)
