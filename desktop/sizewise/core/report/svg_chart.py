"""Bar charts as inline SVG text, for reports that must stand alone.

The HTML report is one file someone can mail or attach to a ticket: no scripts, no fonts, no image
files, no network. SVG written as text inside the page is the smallest thing that meets that, and it
needs no Qt (core stays Qt-free). Horizontal bars, because model names are long and read best as
row labels; grouped series (predicted next to measured) share a row group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per category; None = not measured (no bar, "n/a")


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _legend_width(name: str) -> int:
    return 24 + 7 * len(name)  # swatch, gap and an average sans-serif glyph at 12 px


def _legend_rows(names: Sequence[str], room: int) -> list[list[tuple[int, str]]]:
    """Legend entries (series index, name) wrapped into rows that fit ``room`` pixels."""
    rows: list[list[tuple[int, str]]] = [[]]
    used = 0
    for i, name in enumerate(names):
        w = _legend_width(name)
        if rows[-1] and used + w > room:
            rows.append([])
            used = 0
        rows[-1].append((i, name))
        used += w
    return rows


def bar_chart_svg(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    unit: str,
    *,
    marker: float | None = None,
    marker_label: str = "",
    highlight: int | None = None,
    width: int = 680,
) -> str:
    """One ``<svg>`` element: a row group per category, one bar per series, values printed at the bar ends.

    ``marker`` draws a dashed vertical line (e.g. the reading-speed floor); ``highlight`` marks one
    category's label (e.g. the best choice) with a star.
    """
    bar_h, gap, group_gap = 16, 3, 12
    label_w, right_pad, top, legend_h = 200, 70, 34, 20
    n_series = max(1, len(series))
    group_h = n_series * bar_h + (n_series - 1) * gap
    plot_h = len(categories) * (group_h + group_gap)
    legend = _legend_rows([s.name for s in series], width - label_w)
    height = top + plot_h + legend_h * len(legend) + 10
    plot_w = width - label_w - right_pad
    values = [v for s in series for v in s.values if v is not None]
    vmax = max([*values, marker or 0.0, 1e-9])
    scale = plot_w / vmax

    def x(v: float) -> float:
        return label_w + v * scale

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)} ({escape(unit)})</text>',
    ]
    for ci, cat in enumerate(categories):
        y0 = top + ci * (group_h + group_gap)
        label = ("★ " if highlight == ci else "") + cat
        short = label if len(label) <= 26 else label[:25] + "…"
        weight = ' font-weight="bold"' if highlight == ci else ""
        out.append(
            f'<text x="{label_w - 6}" y="{y0 + group_h / 2 + 4:.1f}" text-anchor="end"{weight}>'
            f"<title>{escape(label)}</title>{escape(short)}</text>"
        )
        for si, s in enumerate(series):
            v = s.values[ci] if ci < len(s.values) else None
            y = y0 + si * (bar_h + gap)
            color = PALETTE[si % len(PALETTE)]
            if v is None:
                out.append(f'<text x="{label_w + 4}" y="{y + bar_h - 4}" fill="#777">n/a</text>')
                continue
            w = max(v * scale, 0.5)
            out.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
                f"<title>{escape(s.name)}: {_fmt(v)} {escape(unit)}</title></rect>"
            )
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}">{_fmt(v)}</text>')
    out.append(f'<line x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{top + plot_h}" stroke="#333"/>')
    if marker is not None:
        mx = x(marker)
        out.append(
            f'<line x1="{mx:.1f}" y1="{top - 4}" x2="{mx:.1f}" y2="{top + plot_h}" stroke="#C00" '
            'stroke-dasharray="4 3"/>'
        )
        if marker_label:
            out.append(f'<text x="{mx + 3:.1f}" y="{top - 8}" fill="#C00">{escape(marker_label)}</text>')
    for row, items in enumerate(legend):
        ly = top + plot_h + 14 + row * legend_h
        lx = float(label_w)
        for si, name in items:
            color = PALETTE[si % len(PALETTE)]
            out.append(f'<rect x="{lx:.0f}" y="{ly - 10}" width="10" height="10" fill="{color}"/>')
            out.append(f'<text x="{lx + 14:.0f}" y="{ly}">{escape(name)}</text>')
            lx += _legend_width(name)
    out.append("</svg>")
    return "\n".join(out)
