"""Compare's trade-off chart: quality against file size, and against generation speed once speeds are measured.

One dot per quant, labelled; the Pareto front — the quants no other beats on both axes — joined by a line,
the dominated ones grey, the best choice in orange. Points and front come from core/report/pareto.py, the
same as the HTML report's SVG, so the window and the exported page show the same choice. Which quality
figure is plotted is the user's (KLD mean, same top token, perplexity); the default is KLD when two or
more quants have it. What was drawn is kept in ``drawn`` (plain data) so tests check the chart without
reading pixels back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from sizewise.core.report.fit_report import generation_tps
from sizewise.core.report.pareto import (
    QUALITY_METRICS,
    SIZE_AXIS,
    SPEED_AXIS,
    Metric,
    Point,
    file_mib,
    label_levels,
    pareto_front,
    quality_metric,
)
from sizewise.core.report.pareto import tradeoff_points as points_of

FRONT = "#4C78A8"
DOMINATED = "#B0B0B0"
BEST = "#F58518"
EMPTY_TEXT = "No quality figures yet: Measure quality fills this chart (two or more quants)."


@dataclass(frozen=True)
class Drawn:
    """One plot as drawn: its points, which of them form the front (in line order) and its axis titles."""

    points: list[Point]
    front: list[int]
    x_title: str
    y_title: str


class TradeoffChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[Mapping[str, Any]] = []
        self.best: int | None = None
        self.drawn: dict[str, Drawn] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Quality figure"))
        self.metric_combo = QComboBox()
        self.metric_combo.setAccessibleName("Quality figure")
        for key in ("kld_mean", "same_top_pct", "ppl"):
            self.metric_combo.addItem(QUALITY_METRICS[key].long, key)
        self.metric_combo.setToolTip("Which quality figure to plot against size and speed")
        self.metric_combo.activated.connect(self._metric_chosen)
        row.addWidget(self.metric_combo, 1)
        layout.addLayout(row)
        self.note = QLabel(EMPTY_TEXT)
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.size_plot = self._plot()
        self.speed_plot = self._plot()
        plots = QHBoxLayout()
        plots.addWidget(self.size_plot)
        plots.addWidget(self.speed_plot)
        layout.addLayout(plots, 1)
        self._chosen: str | None = None  # the user's pick; None: the default for the figures at hand

    @staticmethod
    def _plot() -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMinimumHeight(160)
        plot.showGrid(x=True, y=True, alpha=0.15)
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)  # "(x0.001)" beside a KLD axis reads as a unit
        return plot

    @property
    def metric_key(self) -> str:
        return str(self.metric_combo.currentData())

    @Slot(int)
    def _metric_chosen(self, _index: int) -> None:
        self._chosen = self.metric_key
        self._draw()

    def show_entries(self, entries: Sequence[Mapping[str, Any]], best: int | None) -> None:
        """Draw the report entries' quality against size and speed."""
        self.entries, self.best = list(entries), best
        if self._chosen is None:
            default = quality_metric(self.entries) or "kld_mean"
            self.metric_combo.setCurrentIndex(self.metric_combo.findData(default))
        self._draw()

    def _draw(self) -> None:
        self.drawn = {}
        metric = QUALITY_METRICS[self.metric_key]
        axes: tuple[tuple[pg.PlotWidget, Callable[[Mapping[str, Any]], float | None], Metric], ...] = (
            (self.size_plot, file_mib, SIZE_AXIS),
            (self.speed_plot, generation_tps, SPEED_AXIS),
        )
        for plot, x_of, axis in axes:
            key = axis.key
            plot.clear()
            points = points_of(self.entries, x_of, metric.key)
            front = pareto_front([(p.x, p.y) for p in points], (axis.better, metric.better))
            drawn = Drawn(points, front, axis.title, metric.title)
            plot.setLabel("bottom", drawn.x_title, **{"font-size": "9pt"})
            plot.setLabel("left", drawn.y_title, **{"font-size": "9pt"})
            plot.setTitle(f"Quality against {'file size' if key == 'size' else 'generation speed'}")
            if points:
                self._paint(plot, drawn)
                self.drawn[key] = drawn
        no_speed = "size" in self.drawn and "speed" not in self.drawn
        if not self.drawn:
            self.note.setText(EMPTY_TEXT)
        elif no_speed:
            self.note.setText("Run the comparison to plot quality against generation speed as well.")
        else:
            self.note.setText("Line: the Pareto front, the quants no other beats on both axes. Grey: dominated.")
        self.speed_plot.setVisible(not no_speed)

    def _paint(self, plot: pg.PlotWidget, drawn: Drawn) -> None:
        on_front = set(drawn.front)
        if len(drawn.front) > 1:
            xs = [drawn.points[i].x for i in drawn.front]
            ys = [drawn.points[i].y for i in drawn.front]
            plot.addItem(pg.PlotDataItem(xs, ys, pen=pg.mkPen(FRONT, width=2)))
        spots = []
        levels = label_levels(drawn.points)
        for i, p in enumerate(drawn.points):
            best = p.entry == self.best
            color = BEST if best else FRONT if i in on_front else DOMINATED
            spots.append({"pos": (p.x, p.y), "size": 11, "brush": pg.mkBrush(color), "pen": pg.mkPen("w")})
            label = pg.TextItem(("★ " if best else "") + p.label, color="#222" if i in on_front else "#888")
            label.setAnchor((0.0, 1.0 + levels[i]))  # each level one text height higher
            label.setPos(p.x, p.y)
            plot.addItem(label)
        plot.addItem(pg.ScatterPlotItem(spots=spots))
        self._pad(plot, drawn.points)

    @staticmethod
    def _pad(plot: pg.PlotWidget, points: Sequence[Point]) -> None:
        """Room around the dots so the labels to their right are not cut off at the edge."""
        xs, ys = [p.x for p in points], [p.y for p in points]
        dx = (max(xs) - min(xs)) or abs(xs[0]) or 1.0
        dy = (max(ys) - min(ys)) or abs(ys[0]) or 1.0
        plot.setXRange(min(xs) - 0.1 * dx, max(xs) + 0.35 * dx, padding=0)
        plot.setYRange(min(ys) - 0.15 * dy, max(ys) + 0.2 * dy, padding=0)
