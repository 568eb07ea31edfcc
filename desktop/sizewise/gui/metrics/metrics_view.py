"""Live charts of speed and memory, redrawn from the sampler's ring buffers — never per token.

Four plots share one time axis ("seconds ago"): generation tokens/s (instant and average), the last
reply's prompt tokens/s, its time to first token, and the engine's memory — measured RSS (and VRAM
where an NVIDIA GPU reports it) drawn beside the predicted figure and llama.cpp's logged buffers, so a
person sees how far the prediction is from what the process really holds.

Cheap on purpose (measured in tests/benchmarks/test_bench_benchmarks.py): one GraphicsLayoutWidget
(one viewport paint per frame, not one per plot), no grid, thin pens, a fixed time window, and y ranges
that move only in 1-2-5 steps — pyqtgraph re-renders an axis's ticks whenever its range changes, which
costs more than the curves.

While a reply is in flight (its prompt included), the charts redraw at ``busy_hz`` (1 Hz) instead of
at every sample: a redraw costs ~5 ms of the GUI thread, and when llama.cpp computes on every core,
each wake-up of the GUI preempts one of its barrier-synchronised threads, so 4 redraws a second cost
generation 3-4 % of its speed (measured); the sampler keeps its 4 Hz history, and the next redraw
shows all of it. The prompt and first-token charts, which change only when a reply ends, are left
alone until then. Idle, the charts follow every sample.

A model on a server is labelled remote: the speeds are as received here (with the server's own figure when
llama-server sends ``timings``), the memory line is the server's, predicted or measured as
engine/remote/memory.py found it — its legend entry says "server memory (remote, predicted)" or "(remote,
measured)" — and this machine's engine memory is not shown as if it were the model's.

API for the main window: ``MetricsView(adapter)``; ``set_prediction(ram_bytes, vram_bytes=None)``
after a fit check; ``shutdown()`` on close. The view redraws only while visible; the sampler keeps
sampling either way, so the history is complete when the view is opened.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from sizewise.gui.adapters.engine_adapter import EngineAdapter
from sizewise.gui.metrics.sampler import MetricsSampler

MiB = float(1 << 20)
# Thin pens: width-2 lines cost several times more to rasterize, every frame.
_PENS = {
    "instant": pg.mkPen("#4C78A8", width=1),
    "average": pg.mkPen("#F58518", width=1),
    "prompt": pg.mkPen("#54A24B", width=1),
    "ttft": pg.mkPen("#B279A2", width=1),
    "rss": pg.mkPen("#4C78A8", width=1),
    "vram": pg.mkPen("#E45756", width=1),
    "predicted": pg.mkPen("#C00000", width=1, style=Qt.PenStyle.DashLine),
    "predicted_vram": pg.mkPen("#E45756", width=1, style=Qt.PenStyle.DashLine),
    "buffers": pg.mkPen("#72B7B2", width=1, style=Qt.PenStyle.DotLine),
    "remote": pg.mkPen("#9D755D", width=2, style=Qt.PenStyle.DashDotLine),
}


def nice_ceiling(v: float) -> float:
    """The next round axis top at or above ``v`` (1, 2, 5 × 10^k), so the y range changes only in steps."""
    if not np.isfinite(v) or v <= 0:
        return 1.0
    exp = float(10 ** np.floor(np.log10(v)))
    for m in (1.0, 2.0, 5.0):
        if v <= m * exp * (1 + 1e-12):
            return m * exp
    return 10.0 * exp


class _Chart:
    """One plot of the shared layout: fixed time window, y range from 0 to a round top."""

    def __init__(self, plot: pg.PlotItem, window_s: float) -> None:
        self.plot = plot
        self.top = 1.0
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.enableAutoRange(x=False, y=False)
        plot.setXRange(-window_s, 0, padding=0)
        plot.setYRange(0, self.top, padding=0)
        plot.setClipToView(True)

    def fit(self, *series: np.ndarray | float) -> None:
        peak = 0.0
        for s in series:
            arr = np.asarray(s, dtype=float)
            finite = arr[np.isfinite(arr)]
            if finite.size:
                peak = max(peak, float(finite.max()))
        top = nice_ceiling(peak * 1.05)
        if top != self.top:
            self.top = top
            self.plot.setYRange(0, top, padding=0)


class MetricsView(QWidget):
    def __init__(
        self, adapter: EngineAdapter, parent: QWidget | None = None, *, hz: float = 4.0, busy_hz: float = 1.0
    ) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.sampler = MetricsSampler(adapter, hz=hz, parent=self)
        self.busy_hz = busy_hz
        self._last_draw = float("-inf")
        self.predicted_ram: int | None = None
        self.predicted_vram: int | None = None
        self.buffers_bytes: int | None = None
        self.remote: dict[str, Any] | None = None  # the server's loaded message while the model runs there
        self.remote_memory_bytes: int | None = None  # the server's memory for the model, when known
        self.remote_memory_legend = ""  # its legend entry: "server memory (remote, predicted|measured)"
        self.redraws = 0
        self._lines: dict[str, int | None] = {}
        self.window_s = self.sampler.buffers["t"].capacity / self.sampler.hz
        self._build()
        self.sampler.sampled.connect(self._on_sampled)
        self.sampler.replyFinished.connect(self._redraw)
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

        self.charts = pg.GraphicsLayoutWidget()
        self.charts.setBackground("w")
        self.charts.setMinimumHeight(420)

        def chart(row: int, title: str, unit: str) -> _Chart:
            plot = self.charts.addPlot(row=row, col=0, title=title)
            plot.setLabel("left", unit)
            if row == 3:
                plot.setLabel("bottom", "seconds ago")
            plot.addLegend(offset=(-5, 5), colCount=3 if row == 3 else 1)
            return _Chart(plot, self.window_s)

        self.speed = chart(0, "Generation speed", "tokens/s")
        self.curve_instant = self.speed.plot.plot(name="instant", pen=_PENS["instant"], connect="finite")
        self.curve_average = self.speed.plot.plot(name="average", pen=_PENS["average"], connect="finite")
        self.prompt = chart(1, "Prompt speed (last reply)", "tokens/s")
        self.curve_prompt = self.prompt.plot.plot(name="prompt", pen=_PENS["prompt"], connect="finite")
        self.ttft = chart(2, "Time to first token (last reply)", "ms")
        self.curve_ttft = self.ttft.plot.plot(name="TTFT", pen=_PENS["ttft"], connect="finite")
        self.memory = chart(3, "Memory: measured and predicted", "MiB")
        m = self.memory.plot
        self.curve_rss = m.plot(name="engine RSS (measured)", pen=_PENS["rss"], connect="finite")
        self.curve_vram = m.plot(name="VRAM (measured)", pen=_PENS["vram"], connect="finite")
        self.curve_predicted = m.plot(name="predicted RAM", pen=_PENS["predicted"])
        self.curve_predicted_vram = m.plot(name="predicted VRAM", pen=_PENS["predicted_vram"])
        self.curve_buffers = m.plot(name="llama.cpp buffers (logged)", pen=_PENS["buffers"])
        self.curve_remote = m.plot(pen=_PENS["remote"])  # in the legend only while a server's model is loaded
        layout.addWidget(self.charts, 1)

    # -- API --------------------------------------------------------------------------------------
    def set_prediction(self, ram_bytes: int | None, vram_bytes: int | None = None) -> None:
        """The memory model's prediction for the loaded model (RAM including overhead; VRAM if offloaded)."""
        self.predicted_ram = ram_bytes or None
        self.predicted_vram = vram_bytes or None
        parts = []
        if ram_bytes:
            parts.append(f"{ram_bytes / MiB:.0f} MiB RAM")
        if vram_bytes:
            parts.append(f"{vram_bytes / MiB:.0f} MiB VRAM")
        self.labels["predicted"].setText(", ".join(parts) or "–")
        self._redraw()

    def shutdown(self) -> None:
        """Stop sampling (the main window calls this on close; a closed top-level view does it itself)."""
        self.sampler.stop()

    # -- events -----------------------------------------------------------------------------------
    @Slot(dict)
    def _on_loaded(self, msg: dict[str, Any]) -> None:
        self.buffers_bytes = sum(int(b["bytes"]) for b in msg.get("buffers") or []) or None
        self.set_remote(msg if msg.get("remote") else None)

    def set_remote(self, msg: dict[str, Any] | None) -> None:
        """The loaded message of a model on a server (None: the model is local): its memory and labels."""
        self.remote = msg
        memory = (msg or {}).get("memory") or {}
        source, size = str(memory.get("source") or "unknown"), memory.get("bytes")
        self.remote_memory_bytes = int(size) if msg is not None and size else None
        self.remote_memory_legend = f"server memory (remote, {source})" if self.remote_memory_bytes is not None else ""
        self._fill_memory_legend()
        if self.remote is not None:
            self.set_prediction(None)  # the local model's prediction line has nothing to say about a server
            if self.remote_memory_bytes is None:
                text = "– (server: unknown)"
            elif source == "measured":
                text = "– (the server measures it: see Engine memory)"
            else:
                text = f"{self.remote_memory_bytes / MiB:.0f} MiB on the server (predicted)"
            self.labels["predicted"].setText(text)
            self.labels["predicted"].setToolTip(str(memory.get("text") or ""))

    def _fill_memory_legend(self) -> None:
        """The memory chart's legend, the server's line first while a server's model is loaded (the entries
        are laid out in rows of three, so the first row is the one always in view)."""
        legend = self.memory.plot.legend
        legend.clear()
        if self.remote_memory_legend:
            legend.addItem(self.curve_remote, self.remote_memory_legend)
        for curve, name in (
            (self.curve_rss, "engine RSS (measured)"),
            (self.curve_vram, "VRAM (measured)"),
            (self.curve_predicted, "predicted RAM"),
            (self.curve_predicted_vram, "predicted VRAM"),
            (self.curve_buffers, "llama.cpp buffers (logged)"),
        ):
            legend.addItem(curve, name)

    @Slot()
    def _on_unloaded(self) -> None:
        self.buffers_bytes = None
        self.set_remote(None)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._redraw()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- drawing ----------------------------------------------------------------------------------
    @staticmethod
    def _fmt(v: float, unit: str, digits: int = 1) -> str:
        return "–" if not np.isfinite(v) else f"{v:.{digits}f} {unit}"

    @property
    def _busy(self) -> bool:
        """A reply is in flight: from the request (prompt processing included) until it ends."""
        return self.adapter.generating is not None or self.sampler.generating

    @Slot()
    def _on_sampled(self) -> None:
        if self._busy:
            # half a sample's slack, so timer jitter cannot turn 1 Hz into every other second
            due = self._last_draw + 1.0 / self.busy_hz - 0.5 / self.sampler.hz
            if time.monotonic() < due:
                return
        self._redraw()

    @Slot()
    def _redraw(self) -> None:
        if not self.isVisible():
            return
        self._last_draw = time.monotonic()
        s = self.sampler
        t = s.series("t")
        if t.size == 0:
            return
        self.redraws += 1
        x = t - t[-1]  # seconds ago: the time axis itself never moves
        gen, avg = s.series("gen_tps"), s.series("gen_avg_tps")
        self.curve_instant.setData(x, gen)
        self.curve_average.setData(x, avg)
        self.speed.fit(gen, avg)
        if not self._busy:
            # Both hold the last finished reply's figure, so nothing new reaches them while one streams:
            # leaving them alone then spares two of the four plots' repaints (redrawn when it ends).
            prompt, ttft = s.series("prompt_tps"), s.series("ttft_ms")
            self.curve_prompt.setData(x, prompt)
            self.prompt.fit(prompt)
            self.curve_ttft.setData(x, ttft)
            self.ttft.fit(ttft)
        rss = s.series("rss_bytes") / MiB
        self.curve_rss.setData(x, rss)
        vram = s.series("vram_bytes") / MiB
        if np.isfinite(vram).any():
            self.curve_vram.setData(x, vram)
        lines: list[float] = []
        for name, curve, value in (
            ("predicted", self.curve_predicted, self.predicted_ram),
            ("predicted_vram", self.curve_predicted_vram, self.predicted_vram),
            ("buffers", self.curve_buffers, self.buffers_bytes),
            ("remote", self.curve_remote, self.remote_memory_bytes),
        ):
            if value:
                lines.append(value / MiB)
            if self._lines.get(name) != value:  # a constant across the fixed window: set once per change
                self._lines[name] = value
                if value:
                    curve.setData([-self.window_s, 0.0], [value / MiB, value / MiB])
                else:
                    curve.setData([], [])
        self.memory.fit(rss, vram, *lines)
        self._update_labels()
        if self.remote is not None:
            self._label_remote()

    def _label_remote(self) -> None:
        """The figures of a model on a server, said to be remote (see the module docstring)."""
        s = self.sampler
        gen = self.labels["gen"]
        gen.setText(f"remote, received here: {gen.text()}")
        timings = s.last_stats.get("server_timings") if s.last_stats.get("remote") else None
        server = (timings or {}).get("predicted_per_second")
        if isinstance(server, int | float) and server > 0 and not np.isfinite(s.buffers["gen_tps"].last()):
            gen.setText(f"{gen.text()}; the server's own: {float(server):.1f} tokens/s")
        self.labels["prompt"].setText(f"{self.labels['prompt'].text()} (remote)")
        self.labels["ttft"].setText(f"{self.labels['ttft'].text()} (remote)")
        memory = (self.remote or {}).get("memory") or {}
        if memory.get("source") == "measured" and self.remote_memory_bytes:
            self.labels["rss"].setText(f"{self.remote_memory_bytes / MiB:.0f} MiB on the server (measured by it)")
        else:
            self.labels["rss"].setText("– (the model runs on the server)")
        self.labels["rss"].setToolTip(str(memory.get("text") or ""))
        self.labels["vram"].setText("– (on the server)")

    def _update_labels(self) -> None:
        s = self.sampler
        last = s.buffers
        live = last["gen_tps"].last()
        if np.isfinite(live):
            avg = last["gen_avg_tps"].last()
            self.labels["gen"].setText(f"{live:.1f} tokens/s now, {self._fmt(avg, 'average')}")
        elif s.last_stats:
            self.labels["gen"].setText(f"{float(s.last_stats.get('tg_tps') or 0):.1f} tokens/s (last reply)")
        else:  # no reply yet: reset, so a remote model's prefix is not written onto itself at every redraw
            self.labels["gen"].setText("–")
        self.labels["prompt"].setText(self._fmt(last["prompt_tps"].last(), "tokens/s"))
        self.labels["ttft"].setText(self._fmt(last["ttft_ms"].last(), "ms", 0))
        self.labels["rss"].setText(self._fmt(last["rss_bytes"].last() / MiB, "MiB", 0))
        vram_now = last["vram_bytes"].last()
        self.labels["vram"].setText(self._fmt(vram_now / MiB, "MiB", 0) if s.vram_available else "no GPU detected")
        self.labels["vram"].setToolTip(s.vram_how)
        if s.vram_how and np.isfinite(vram_now):
            self.labels["vram"].setText(f"{vram_now / MiB:.0f} MiB — {s.vram_how}")
