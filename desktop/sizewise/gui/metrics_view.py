"""Live charts of speed and memory, redrawn from the sampler's ring buffers — never per token.

Three plots share one time axis: generation tokens/s (instant and average), the last reply's prompt
tokens/s and time to first token, and the engine's memory — measured RSS (and VRAM where an NVIDIA GPU
reports it) drawn beside the predicted figure and llama.cpp's logged buffers, so a person sees how far
the prediction is from what the process really holds.

API for the main window: ``MetricsView(adapter)``; ``set_prediction(ram_bytes, vram_bytes=None)``
after a fit check. The view redraws only while visible; the sampler keeps sampling either way, so the
history is complete when the view is opened.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from sizewise.gui.engine_adapter import EngineAdapter
from sizewise.gui.metrics import MetricsSampler

MiB = float(1 << 20)
_PENS = {
    "instant": pg.mkPen("#4C78A8", width=1),
    "average": pg.mkPen("#F58518", width=2),
    "prompt": pg.mkPen("#54A24B", width=2),
    "ttft": pg.mkPen("#B279A2", width=2),
    "rss": pg.mkPen("#4C78A8", width=2),
    "vram": pg.mkPen("#E45756", width=2),
    "predicted": pg.mkPen("#C00000", width=2, style=Qt.PenStyle.DashLine),
    "predicted_vram": pg.mkPen("#E45756", width=1, style=Qt.PenStyle.DashLine),
    "buffers": pg.mkPen("#72B7B2", width=1, style=Qt.PenStyle.DotLine),
}


def _plot(title: str, left: str) -> pg.PlotWidget:
    w = pg.PlotWidget(background="w")
    w.setTitle(title, color="#222", size="10pt")
    w.setLabel("left", left)
    w.setLabel("bottom", "seconds")
    w.showGrid(x=True, y=True, alpha=0.2)
    w.addLegend(offset=(5, 5))
    w.setMouseEnabled(x=False, y=False)
    w.setMenuEnabled(False)
    w.hideButtons()
    item = w.getPlotItem()
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    w.setMinimumHeight(140)
    return w


class MetricsView(QWidget):
    def __init__(self, adapter: EngineAdapter, parent: QWidget | None = None, *, hz: float = 4.0) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.sampler = MetricsSampler(adapter, hz=hz, parent=self)
        self.predicted_ram: int | None = None
        self.predicted_vram: int | None = None
        self.buffers_bytes: int | None = None
        self.redraws = 0
        self._build()
        self.sampler.sampled.connect(self._redraw)
        adapter.loaded.connect(self._on_loaded)
        adapter.unloaded.connect(self._on_unloaded)
        self.sampler.start()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        figures = QGridLayout()
        self.labels: dict[str, QLabel] = {}
        for i, (key, title) in enumerate(
            (
                ("gen", "Generation"),
                ("prompt", "Prompt"),
                ("ttft", "First token"),
                ("rss", "Engine memory"),
                ("predicted", "Predicted"),
                ("vram", "VRAM"),
            )
        ):
            name = QLabel(f"{title}:")
            value = QLabel("–")
            value.setAccessibleName(title)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.labels[key] = value
            figures.addWidget(name, i // 3, (i % 3) * 2)
            figures.addWidget(value, i // 3, (i % 3) * 2 + 1)
        layout.addLayout(figures)

        self.speed_plot = _plot("Generation speed", "tokens/s")
        self.curve_instant = self.speed_plot.plot(name="instant", pen=_PENS["instant"], connect="finite")
        self.curve_average = self.speed_plot.plot(name="average", pen=_PENS["average"], connect="finite")
        self.prompt_plot = _plot("Last reply: prompt speed and time to first token", "tokens/s")
        self.curve_prompt = self.prompt_plot.plot(name="prompt tokens/s", pen=_PENS["prompt"], connect="finite")
        # TTFT on its own right-hand axis (ms), in a second view box linked on x
        self.ttft_box = pg.ViewBox()
        item = self.prompt_plot.getPlotItem()
        item.showAxis("right")
        item.scene().addItem(self.ttft_box)
        item.getAxis("right").linkToView(self.ttft_box)
        item.getAxis("right").setLabel("TTFT ms")
        self.ttft_box.setXLink(item)
        self.curve_ttft = pg.PlotDataItem(pen=_PENS["ttft"], connect="finite", name="TTFT ms")
        self.ttft_box.addItem(self.curve_ttft)
        legend = item.legend
        if legend is not None:
            legend.addItem(self.curve_ttft, "TTFT ms")
        item.vb.sigResized.connect(self._sync_ttft_box)

        self.memory_plot = _plot("Memory: measured and predicted", "MiB")
        self.curve_rss = self.memory_plot.plot(name="engine RSS (measured)", pen=_PENS["rss"], connect="finite")
        self.curve_vram = self.memory_plot.plot(name="VRAM (measured)", pen=_PENS["vram"], connect="finite")
        self.curve_predicted = self.memory_plot.plot(name="predicted RAM", pen=_PENS["predicted"])
        self.curve_predicted_vram = self.memory_plot.plot(name="predicted VRAM", pen=_PENS["predicted_vram"])
        self.curve_buffers = self.memory_plot.plot(name="llama.cpp buffers (logged)", pen=_PENS["buffers"])
        for plot in (self.speed_plot, self.prompt_plot, self.memory_plot):
            layout.addWidget(plot, 1)

    @Slot()
    def _sync_ttft_box(self) -> None:
        self.ttft_box.setGeometry(self.prompt_plot.getPlotItem().vb.sceneBoundingRect())

    # -- API --------------------------------------------------------------------------------------
    def set_prediction(self, ram_bytes: int | None, vram_bytes: int | None = None) -> None:
        """The memory model's prediction for the loaded model (RAM including overhead; VRAM if offloaded)."""
        self.predicted_ram = ram_bytes
        self.predicted_vram = vram_bytes or None
        parts = []
        if ram_bytes:
            parts.append(f"{ram_bytes / MiB:.0f} MiB RAM")
        if vram_bytes:
            parts.append(f"{vram_bytes / MiB:.0f} MiB VRAM")
        self.labels["predicted"].setText(", ".join(parts) or "–")
        self._redraw()

    # -- engine events ----------------------------------------------------------------------------
    @Slot(dict)
    def _on_loaded(self, msg: dict[str, Any]) -> None:
        self.buffers_bytes = sum(int(b["bytes"]) for b in msg.get("buffers") or []) or None

    @Slot()
    def _on_unloaded(self) -> None:
        self.buffers_bytes = None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._redraw()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop sampling (the main window calls this on close; a closed top-level view does it itself)."""
        self.sampler.stop()

    # -- drawing ----------------------------------------------------------------------------------
    @staticmethod
    def _fmt(v: float, unit: str, digits: int = 1) -> str:
        return "–" if not np.isfinite(v) else f"{v:.{digits}f} {unit}"

    @Slot()
    def _redraw(self) -> None:
        if not self.isVisible():
            return
        s = self.sampler
        t = s.series("t")
        if t.size == 0:
            return
        self.redraws += 1
        gen, avg = s.series("gen_tps"), s.series("gen_avg_tps")
        self.curve_instant.setData(t, gen)
        self.curve_average.setData(t, avg)
        self.curve_prompt.setData(t, s.series("prompt_tps"))
        self.curve_ttft.setData(t, s.series("ttft_ms"))
        rss = s.series("rss_bytes") / MiB
        self.curve_rss.setData(t, rss)
        vram = s.series("vram_bytes")
        if np.isfinite(vram).any():
            self.curve_vram.setData(t, vram / MiB)
        ends = np.array([t[0], t[-1]])
        for curve, value in (
            (self.curve_predicted, self.predicted_ram),
            (self.curve_predicted_vram, self.predicted_vram),
            (self.curve_buffers, self.buffers_bytes),
        ):
            if value:
                curve.setData(ends, np.full(2, value / MiB))
            else:
                curve.setData([], [])
        last = s.buffers
        live = last["gen_tps"].last()
        if np.isfinite(live):
            self.labels["gen"].setText(f"{live:.1f} tokens/s now, {self._fmt(last['gen_avg_tps'].last(), 'average')}")
        elif s.last_stats:
            self.labels["gen"].setText(f"{float(s.last_stats.get('tg_tps') or 0):.1f} tokens/s (last reply)")
        self.labels["prompt"].setText(self._fmt(last["prompt_tps"].last(), "tokens/s"))
        self.labels["ttft"].setText(self._fmt(last["ttft_ms"].last(), "ms", 0))
        rss_now = last["rss_bytes"].last()
        self.labels["rss"].setText(self._fmt(rss_now / MiB, "MiB", 0))
        vram_now = last["vram_bytes"].last()
        self.labels["vram"].setText(self._fmt(vram_now / MiB, "MiB", 0) if s.vram_available else "no GPU detected")
