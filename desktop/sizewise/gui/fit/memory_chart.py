"""The Fit page's picture: memory need by component against the budget, readable at any scale.

A model's need can be a hundredth of the budget (a 135M model against 23 GiB of RAM) or just above
it. One linear axis from 0 to the budget draws the first as a sliver a few pixels wide, so the chart
picks its scale per memory (RAM, VRAM):

* **zoomed** — the need is under ``ZOOM_BELOW`` of the budget: the axis runs from 0 to a round figure
  just above the need, and the budget, off the scale, is written at the right end with an arrow
  ("budget 22.95 GiB →");
* **linear** — otherwise: the axis takes the need and the budget, the budget is a red line with its
  size above it, and a need over it shows how much over.

Every component (weights, KV cache, compute, output, overhead, and the safety margin) is labelled
with its size under its bar and drawn at least ``MIN_SEGMENT_PX`` wide, so a 0.2 MiB output buffer
still shows as a segment; the bar's total length stays to scale. The geometry is computed in
``chart_layout`` (plain data: rectangles and texts) and painted from it, so tests can check what is
drawn without reading pixels back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from sizewise.core.fit.hardware import format_bytes

MiB = 1 << 20
GiB = 1 << 30

COMPONENT_COLORS = {
    "weights": QColor("#4c78a8"),
    "kv": QColor("#f58518"),
    "compute": QColor("#54a24b"),
    "output": QColor("#b279a2"),
    "overhead": QColor("#9d9da1"),
}
COMPONENT_NAMES = {
    "weights": "weights",
    "kv": "KV cache",
    "compute": "compute",
    "output": "output",
    "overhead": "overhead",
}
MARGIN_COLOR = QColor("#9d9da1")
BUDGET_COLOR = QColor("#d62728")
OVER_COLOR = QColor("#d62728")
AXIS_COLOR = QColor("#777777")

ZOOM_BELOW = 0.5  # a need under half the budget gets an axis of its own, the budget written off-scale
MIN_SEGMENT_PX = 6.0
LABEL_W = 120.0  # the row labels' column ("RAM predicted")
PAD = 8.0
BAR_H = 22.0
ROW_GAP = 8.0
GROUP_GAP = 12.0
SWATCH = 10.0

Row = tuple[str, list[tuple[str, int]], int, int]  # (label, [(component, bytes)], budget, safety margin)


@dataclass(frozen=True)
class Segment:
    component: str  # a COMPONENT_COLORS key, or "margin"
    n_bytes: int
    rect: QRectF
    color: QColor


@dataclass(frozen=True)
class Text:
    text: str
    rect: QRectF
    color: QColor | None = None  # None: the palette's text colour
    swatch: QRectF | None = None  # a colour square before the text (a caption item)
    swatch_color: QColor | None = None
    hatched: bool = False
    right_aligned: bool = False


@dataclass
class RowLayout:
    label: str
    need: int
    margin: int
    segments: list[Segment]
    texts: list[Text]  # the row label, the total at the bar's end, the caption items

    def segment(self, component: str) -> Segment | None:
        return next((s for s in self.segments if s.component == component), None)


@dataclass
class GroupLayout:
    """The rows that share one memory (RAM or VRAM), one budget and one axis."""

    kind: str
    budget: int
    zoomed: bool
    scale_max: int
    plot: QRectF  # the axis' span (x) and the rows' (y)
    budget_x: float | None  # None: off the scale (zoomed), written at the right end instead
    rows: list[RowLayout] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)  # budget label and tick labels
    ticks: list[float] = field(default_factory=list)


@dataclass
class ChartLayout:
    width: float
    height: float
    groups: list[GroupLayout]

    def texts(self) -> list[str]:
        out = [t.text for g in self.groups for t in g.texts]
        out += [t.text for g in self.groups for r in g.rows for t in r.texts]
        return out

    def row(self, label: str) -> RowLayout | None:
        return next((r for g in self.groups for r in g.rows if r.label == label), None)

    def group(self, kind: str) -> GroupLayout | None:
        return next((g for g in self.groups if g.kind == kind), None)


def nice_axis(top: float, max_ticks: int) -> tuple[int, int, str]:
    """(axis maximum, tick step, unit) in bytes: a round step in MiB or GiB, at most ``max_ticks`` steps.

    Of the round steps (1, 2, 2.5, 5 times a power of ten) the one whose axis ends closest above
    ``top`` wins, so the bars fill the axis.
    """
    unit_name, unit = ("GiB", GiB) if top >= GiB else ("MiB", MiB)
    value = max(top / unit, 1e-9)
    max_ticks = max(1, max_ticks)
    power = 10 ** math.floor(math.log10(value / max_ticks))
    best: tuple[float, float] | None = None  # (axis maximum, step) in units
    for p in (power, power * 10):
        for m in (1, 2, 2.5, 5):
            step = m * p
            steps = max(1, math.ceil(value / step - 1e-9))
            if steps <= max_ticks and (best is None or steps * step < best[0] - 1e-12):
                best = (steps * step, step)
    assert best is not None  # a step of 10 * power always fits
    return round(best[0] * unit), round(best[1] * unit), unit_name


def tick_text(n: float, unit_name: str) -> str:
    if n == 0:
        return "0"
    v = n / (GiB if unit_name == "GiB" else MiB)
    return f"{v:g} {unit_name}"


def _segment_widths(sizes: list[int], total_px: float) -> list[float]:
    """Widths adding up to ``total_px``, proportional to ``sizes`` but none under MIN_SEGMENT_PX."""
    n = len(sizes)
    if n == 0:
        return []
    if total_px <= n * MIN_SEGMENT_PX:
        return [total_px / n] * n
    small = [False] * n
    while True:
        rest_px = total_px - MIN_SEGMENT_PX * sum(small)
        rest_bytes = sum(s for s, sm in zip(sizes, small, strict=True) if not sm) or 1
        newly = [i for i in range(n) if not small[i] and sizes[i] * rest_px / rest_bytes < MIN_SEGMENT_PX]
        if not newly:
            return [MIN_SEGMENT_PX if small[i] else sizes[i] * rest_px / rest_bytes for i in range(n)]
        for i in newly:
            small[i] = True


def _kind(label: str) -> str:
    return label.split()[0] if label.split() else label


def _end_text(need: int, margin: int, budget: int) -> tuple[str, bool]:
    """The total written after a bar, and whether it says the budget is exceeded."""
    text = format_bytes(need)
    if budget and need > budget:
        return f"{text}, {format_bytes(need - budget)} over", True
    if budget and margin and need + margin > budget:
        return f"{text}, margin {format_bytes(need + margin - budget)} over", True
    return text, False


def chart_layout(rows: list[Row], width: float, font: QFont) -> ChartLayout:
    """Where every bar, segment and text goes for ``rows`` in a chart ``width`` pixels wide."""
    fm = QFontMetricsF(font)
    line_h = fm.height()
    right = max(width - PAD, LABEL_W + 120)
    kinds: list[str] = []
    for label, *_ in rows:
        if _kind(label) not in kinds:
            kinds.append(_kind(label))
    groups: list[GroupLayout] = []
    y = 4.0
    for kind in kinds:
        members = [r for r in rows if _kind(r[0]) == kind]
        budget = max(r[2] for r in members)
        need_max = max(sum(n for _, n in segs) + margin for _, segs, _, margin in members) or 1
        ends = [_end_text(sum(n for _, n in segs), margin, budget) for _, segs, budget, margin in members]
        zoomed = bool(budget) and need_max < ZOOM_BELOW * budget
        budget_text = f"budget {format_bytes(budget)} →" if zoomed else f"budget {format_bytes(budget)}"
        budget_w = fm.horizontalAdvance(budget_text) + 2
        # room right of the axis: the totals after the bars, and, zoomed, the budget past the axis' end
        reserve = max(fm.horizontalAdvance(t) for t, _ in ends) + 2 * PAD
        if zoomed:
            reserve = max(reserve, budget_w + fm.horizontalAdvance("000 MiB") / 2 + 2 * PAD)
        x0 = LABEL_W
        plot_w = max(60.0, right - reserve - x0)
        top = need_max if zoomed else max(need_max, budget)
        scale_max, step, unit_name = nice_axis(top, max(2, int(plot_w // 75)))
        group = GroupLayout(kind, budget, zoomed, scale_max, QRectF(), None)
        if budget and not zoomed:
            group.budget_x = x0 + plot_w * budget / scale_max

        def px(n: float, x0: float = x0, plot_w: float = plot_w, scale_max: int = scale_max) -> float:
            return x0 + plot_w * n / scale_max

        head_y = y
        y += line_h + 4  # the budget's label above the rows (on the scale)
        rows_top = y
        for (label, segs, _, margin), (end, over) in zip(members, ends, strict=True):
            need = sum(n for _, n in segs)
            sizes = [n for _, n in segs] + ([margin] if margin else [])
            names = [c for c, _ in segs] + (["margin"] if margin else [])
            segments: list[Segment] = []
            x = x0
            for name, n, w in zip(names, sizes, _segment_widths(sizes, px(need + margin) - x0), strict=True):
                color = MARGIN_COLOR if name == "margin" else COMPONENT_COLORS.get(name, QColor("gray"))
                segments.append(Segment(name, n, QRectF(x, y, w, BAR_H), color))
                x += w
            end_w = fm.horizontalAdvance(end) + 2
            end_x = x + 6
            if group.budget_x is not None and x <= group.budget_x < x + 6 + end_w:
                end_x = group.budget_x + 6  # clear of the budget line
            texts = [
                Text(label, QRectF(0, y, LABEL_W - 6, BAR_H), right_aligned=True),
                Text(end, QRectF(end_x, y, end_w, BAR_H), OVER_COLOR if over else None),
            ]
            caption, lines = _caption(segs, margin, x0, y + BAR_H + 2, right, fm)
            group.rows.append(RowLayout(label, need, margin, segments, texts + caption))
            y += BAR_H + 2 + lines * line_h + ROW_GAP
        rows_bottom = y - ROW_GAP
        group.plot = QRectF(x0, rows_top, plot_w, rows_bottom - rows_top)
        # the axis under the rows: round ticks in MiB or GiB
        axis_y = rows_bottom + 2
        label_y = axis_y + 5
        for i in range(round(scale_max / step) + 1):
            tx = px(i * step)
            group.ticks.append(tx)
            text = tick_text(i * step, unit_name)
            tw = fm.horizontalAdvance(text) + 2
            left = min(max(tx - tw / 2, x0 - 4), right - tw)
            group.texts.append(Text(text, QRectF(left, label_y, tw, line_h), AXIS_COLOR))
        # the budget: a line on the scale with its size above, or, off the scale, past the axis' end
        if budget and zoomed:
            group.texts.append(Text(budget_text, QRectF(right - budget_w, label_y, budget_w, line_h), BUDGET_COLOR))
        elif group.budget_x is not None:
            left = min(max(group.budget_x - budget_w / 2, x0), right - budget_w)
            group.texts.insert(0, Text(budget_text, QRectF(left, head_y, budget_w, line_h), BUDGET_COLOR))
        groups.append(group)
        y = label_y + line_h + GROUP_GAP
    return ChartLayout(width, math.ceil(y), groups)


def _caption(
    segs: list[tuple[str, int]], margin: int, x0: float, y: float, right: float, fm: QFontMetricsF
) -> tuple[list[Text], int]:
    """Caption items under a bar — a colour square, the component's name and size — wrapped to ``right``.

    Returns the items and the number of lines they take.
    """
    items = [(COMPONENT_NAMES.get(c, c), n, COMPONENT_COLORS.get(c, QColor("gray")), False) for c, n in segs]
    if margin:
        items.append(("safety margin", margin, MARGIN_COLOR, True))
    texts: list[Text] = []
    x, line = x0, 0
    for name, n, color, hatched in items:
        text = f"{name} {format_bytes(n)}"
        tw = fm.horizontalAdvance(text) + 2
        if x > x0 and x + SWATCH + 4 + tw > right:
            x, line = x0, line + 1
        ty = y + line * fm.height()
        swatch = QRectF(x, ty + (fm.height() - SWATCH) / 2, SWATCH, SWATCH)
        texts.append(Text(text, QRectF(x + SWATCH + 4, ty, tw, fm.height()), None, swatch, color, hatched))
        x += SWATCH + 4 + tw + 12
    return texts, line + 1


class MemoryChart(QWidget):
    """Stacked bars per memory — predicted, and measured after a load — against the budget."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[Row] = []
        self.setAccessibleName("Memory chart")
        policy = self.sizePolicy()
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def sizeHint(self) -> QSize:
        return QSize(640, self.heightForWidth(640))

    def minimumSizeHint(self) -> QSize:
        width = int(LABEL_W + 240)
        return QSize(width, self.heightForWidth(width))

    def hasHeightForWidth(self) -> bool:
        return True  # captions wrap on a narrow chart

    def heightForWidth(self, width: int) -> int:
        return int(self.layout_for(width).height) if self.rows else 60

    def set_rows(self, rows: list[Row]) -> None:
        self.rows = rows
        self.setAccessibleDescription(self.describe())
        self.updateGeometry()
        self.update()

    def segments(self, label: str) -> dict[str, int]:
        """The bytes per component of one row, as drawn (the safety margin is not a component)."""
        for name, segs, _, _ in self.rows:
            if name == label:
                return dict(segs)
        return {}

    def layout_for(self, width: float) -> ChartLayout:
        return chart_layout(self.rows, width, self.font())

    def chart(self) -> ChartLayout:
        """The geometry at the widget's present width (what ``paintEvent`` draws)."""
        return self.layout_for(self.width())

    def describe(self) -> str:
        parts = []
        for label, segs, budget, margin in self.rows:
            comps = ", ".join(f"{COMPONENT_NAMES.get(c, c)} {format_bytes(n)}" for c, n in segs)
            extra = f", safety margin {format_bytes(margin)}" if margin else ""
            parts.append(f"{label}: {format_bytes(sum(n for _, n in segs))} ({comps}{extra}) of {format_bytes(budget)}")
        return "; ".join(parts)

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.rows:
            return
        layout = self.chart()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_color = self.palette().color(self.foregroundRole())
        grid = QColor(text_color)
        grid.setAlpha(40)
        for g in layout.groups:
            plot = g.plot
            p.setPen(QPen(grid, 1))
            for tx in g.ticks:
                p.drawLine(QPointF(tx, plot.top() - 2), QPointF(tx, plot.bottom() + 4))
            p.setPen(QPen(AXIS_COLOR, 1))
            p.drawLine(QPointF(plot.left(), plot.bottom() + 2), QPointF(plot.right(), plot.bottom() + 2))
            for row in g.rows:
                for s in row.segments:
                    if s.component == "margin":
                        p.fillRect(s.rect, QBrush(s.color, Qt.BrushStyle.BDiagPattern))
                        p.setPen(QPen(s.color, 1))
                        p.drawRect(s.rect.adjusted(0.5, 0.5, -0.5, -0.5))
                    else:
                        p.fillRect(s.rect, s.color)
            if g.budget_x is not None:
                p.setPen(QPen(BUDGET_COLOR, 2))
                p.drawLine(QPointF(g.budget_x, plot.top() - 4), QPointF(g.budget_x, plot.bottom() + 4))
            elif g.budget and g.zoomed:  # off the scale: a dashed run from the axis' end towards the budget
                p.setPen(QPen(BUDGET_COLOR, 1, Qt.PenStyle.DashLine))
                p.drawLine(QPointF(plot.right() + 2, plot.bottom() + 2), QPointF(self.width() - PAD, plot.bottom() + 2))
            background = self.palette().color(self.backgroundRole())
            for row in g.rows:
                self._draw_texts(p, row.texts, text_color, background)
            self._draw_texts(p, g.texts, text_color, background)
        p.end()

    def _draw_texts(self, p: QPainter, texts: list[Text], text_color: QColor, background: QColor) -> None:
        """Texts on the widget's background, so a line (the budget, a grid line) never runs through one."""
        for t in texts:
            if not t.right_aligned:
                p.fillRect(t.rect, background)
            if t.swatch is not None and t.swatch_color is not None:
                p.fillRect(t.swatch, background)
                if t.hatched:
                    p.fillRect(t.swatch, QBrush(t.swatch_color, Qt.BrushStyle.BDiagPattern))
                    p.setPen(QPen(t.swatch_color, 1))
                    p.drawRect(t.swatch.adjusted(0.5, 0.5, -0.5, -0.5))
                else:
                    p.fillRect(t.swatch, t.swatch_color)
            p.setPen(QPen(t.color or text_color))
            align = Qt.AlignmentFlag.AlignVCenter
            align |= Qt.AlignmentFlag.AlignRight if t.right_aligned else Qt.AlignmentFlag.AlignLeft
            p.drawText(t.rect, align, t.text)
