"""The Fit view: predicted RAM/VRAM by component against the budget, with sliders that answer at once.

Moving the context or GPU-layer slider recomputes the prediction synchronously — it is arithmetic on
the GGUF header (core.memory_model), a few milliseconds, no file or network access — so the bars,
the verdict and the largest context that fits follow the slider as it moves. After a real load,
``show_measured`` puts llama.cpp's logged buffer sizes beside the prediction with the difference in
percent, so the prediction's accuracy is visible rather than claimed.

The bar chart (``memory_chart.MemoryChart``, QPainter) has one stacked bar per memory (RAM, and VRAM
when there is a GPU), each component labelled with its size, the safety margin as a hatched block,
the measured bar under the predicted one, and the budget as a line — or, when the need is a small
part of it, written off-scale at the right end of an axis zoomed to the need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.fit.hardware import format_bytes
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.verdict import CTX_STEP, Budget, FitResult, check_fit, compare, max_context
from sizewise.core.gguf.header import GGUFHeader, ModelInfo
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.model import ModelCost, model_cost
from sizewise.core.speed.predicted import Devices, PredictedSpeed, ReplySpeed, predict_for_split
from sizewise.gui.fit.memory_chart import MemoryChart
from sizewise.gui.fit.rpc_panel import RpcSplitPanel

# The logits reservation is explained only where it shows as a figure (format_bytes prints tenths of a MiB): with
# op offload on a GPU build the host keeps a sliver of it, and "reserves 0.0 MiB" would read as noise.
UNWRITTEN_WORTH_SAYING = (1 << 20) // 10

VERDICT_TEXT = {
    "fits_gpu": "Fits on the GPU",
    "fits_partial": "Fits partly on the GPU",
    "fits_cpu": "Fits on the CPU",
    "too_large": "Too large",
}


def _ratio(r: float | None) -> str:
    """Measured ÷ predicted in words a reader checks at a glance."""
    return "no prediction" if r is None else f"measured {r:.2f}× the prediction"


def measured_from(buffers: MeasuredBuffers | Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> MeasuredBuffers:
    """Accept llama.cpp's buffers as MeasuredBuffers, the engine's ``loaded["buffers"]`` list, or a dict."""
    if isinstance(buffers, MeasuredBuffers):
        return buffers
    if isinstance(buffers, Mapping):
        if "buffers" in buffers:
            return measured_from(buffers["buffers"])
        devices = buffers.get("devices")
        if isinstance(devices, Mapping):  # MeasuredBuffers.to_dict()
            lines = [
                {"device": dev, "component": comp, "bytes": n}
                for dev, comps in devices.items()
                for comp, n in dict(comps).items()
            ]
            return MeasuredBuffers.from_lines(lines)
        raise ValueError("show_measured needs the engine's buffers (a list of {device, component, bytes}).")
    return MeasuredBuffers.from_lines([dict(b) for b in buffers])


class FitView(QWidget):
    """Fit check for one model: sliders, stacked bars, verdict, largest context, measured vs predicted."""

    settingsChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header: GGUFHeader | None = None
        self.info: ModelInfo | None = None
        self.budget: Budget | None = None
        self.params = LoadParams()
        self.result: FitResult | None = None
        self.measured: MeasuredBuffers | None = None
        self.devices: Devices | None = None  # speed profiles for the budget; None until the hardware is known
        self.speed: PredictedSpeed | None = None
        self.reply_speed: ReplySpeed | None = None  # the last real reply's speeds beside their prediction
        self._cost: ModelCost | None = None
        self._max_ctx_key: tuple[Any, ...] | None = None
        self._updating = False
        # the offload device the GPU bars stand for (llama.cpp's name: "Vulkan0", "CUDA0"); "VRAM" until one is known
        self.device_name = "VRAM"

        outer = QVBoxLayout(self)
        self.title = QLabel("No model selected.")
        self.title.setWordWrap(True)
        outer.addWidget(self.title)

        form = QFormLayout()
        outer.addLayout(form)
        self.ctx_slider = QSlider(Qt.Orientation.Horizontal)
        self.ctx_slider.setAccessibleName("Context length")
        self.ctx_slider.setToolTip("Context length in tokens (llama.cpp pads the KV cache to steps of 256).")
        self.ctx_value = QLabel()
        self.ctx_value.setMinimumWidth(70)
        row = QHBoxLayout()
        row.addWidget(self.ctx_slider, 1)
        row.addWidget(self.ctx_value)
        form.addRow("Context", row)

        self.gpu_slider = QSlider(Qt.Orientation.Horizontal)
        self.gpu_slider.setAccessibleName("GPU layers")
        self.gpu_auto = QCheckBox("Auto (most that fit)")
        self.gpu_auto.setChecked(True)
        self.gpu_value = QLabel()
        self.gpu_value.setMinimumWidth(70)
        row = QHBoxLayout()
        row.addWidget(self.gpu_slider, 1)
        row.addWidget(self.gpu_value)
        row.addWidget(self.gpu_auto)
        form.addRow("GPU layers", row)

        self.kv_type = QComboBox()
        self.kv_type.addItems(["f16", "q8_0", "q4_0"])
        self.kv_type.setToolTip("Quantized KV caches need flash attention; it is switched on with them.")
        self.flash_attn = QCheckBox("Flash attention")
        row = QHBoxLayout()
        row.addWidget(self.kv_type)
        row.addWidget(self.flash_attn)
        row.addStretch(1)
        form.addRow("KV cache", row)

        self.bars = MemoryChart()  # each component labelled with its size: no separate legend
        outer.addWidget(self.bars)
        self.verdict_label = QLabel()
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setAccessibleName("Verdict")
        outer.addWidget(self.verdict_label)
        self.max_ctx_label = QLabel()
        outer.addWidget(self.max_ctx_label)
        self.speed_label = QLabel()
        self.speed_label.setWordWrap(True)
        self.speed_label.setAccessibleName("Predicted speed")
        self.speed_label.setVisible(False)
        outer.addWidget(self.speed_label)
        self.detail_label = QLabel()
        self.detail_label.setWordWrap(True)
        self.detail_label.setStyleSheet("color: palette(placeholder-text); font-size: small;")
        outer.addWidget(self.detail_label)
        self.diff_table = QTableWidget(0, 4)
        self.diff_table.setHorizontalHeaderLabels(["Component", "Predicted", "Measured", "Difference"])
        self.diff_table.verticalHeader().setVisible(False)
        self.diff_table.setVisible(False)
        outer.addWidget(self.diff_table)
        self.rpc_panel = RpcSplitPanel()  # the same model split over rpc-servers, when hosts are typed
        outer.addWidget(self.rpc_panel)
        outer.addStretch(1)

        self.ctx_slider.valueChanged.connect(self._on_changed)
        self.gpu_slider.valueChanged.connect(self._on_gpu_slider)
        self.gpu_auto.toggled.connect(self._on_changed)
        self.kv_type.currentTextChanged.connect(self._on_kv_type)
        self.flash_attn.toggled.connect(self._on_changed)
        self._set_enabled(False)

    # -- inputs ----------------------------------------------------------------------------------
    def set_model(
        self,
        header: GGUFHeader,
        info: ModelInfo,
        budget: Budget,
        params: LoadParams | None = None,
        gpu_layers: int | str = "auto",
    ) -> None:
        """Show a model (local or read from the Hub) against a budget; no I/O happens here."""
        self.header, self.info, self.budget = header, info, budget
        self._cost = None
        self.params = params or LoadParams()
        self.measured = None
        self.reply_speed = None
        self.diff_table.setVisible(False)
        self._max_ctx_key = None
        # The slider reaches the trained context, or the context asked for when that is larger (a model loaded
        # beyond its trained context): capped at the trained one, the prediction would be for another context
        # than the load it is compared with.
        top = max(info.context_length, self.params.n_ctx, CTX_STEP)
        self._updating = True
        try:
            self.ctx_slider.setRange(1, max(1, top // CTX_STEP))
            self.ctx_slider.setValue(max(1, self.params.n_ctx // CTX_STEP))
            self.gpu_slider.setRange(0, info.n_layers + 1)
            self.gpu_slider.setEnabled(budget.backend.gpu)
            self.gpu_auto.setEnabled(budget.backend.gpu)
            auto = gpu_layers == "auto"
            self.gpu_auto.setChecked(auto)
            if not auto:
                n = int(gpu_layers)
                self.gpu_slider.setValue(info.n_layers + 1 if n < 0 else n)
            self.kv_type.setCurrentText(self.params.kv_type)
            self.flash_attn.setChecked(self.params.flash_attn)
        finally:
            self._updating = False
        self.title.setText(
            f"<b>{info.name}</b> — {info.architecture}, {info.parameters_label} parameters, {info.quantization}, "
            f"{format_bytes(info.file_bytes)}<br>Budget: {budget.source}"
        )
        self._set_enabled(True)
        self.refresh()

    def set_budget(self, budget: Budget) -> None:
        if self.header is None or self.info is None:
            self.budget = budget
            return
        self.set_model(self.header, self.info, budget, self.current_params(), self.gpu_layers_setting())

    def set_speed_devices(self, devices: Devices | None) -> None:
        """The speed profiles that go with the budget (this machine's calibrated one, or an estimate)."""
        self.devices = devices
        if self.result is not None:
            self.refresh()

    def gpu_layers_setting(self) -> int | str:
        if self.gpu_auto.isChecked() or not (self.budget and self.budget.backend.gpu):
            return "auto"
        return self.gpu_slider.value()

    def current_params(self) -> LoadParams:
        kv = self.kv_type.currentText()
        return replace(
            self.params,
            n_ctx=self.ctx_slider.value() * CTX_STEP,
            kv_type=kv,
            flash_attn=self.flash_attn.isChecked() or kv != "f16",
            n_gpu_layers=self.result.gpu_layers if self.result else 0,
        )

    # -- reactions -------------------------------------------------------------------------------
    def _set_enabled(self, on: bool) -> None:
        for w in (self.ctx_slider, self.kv_type, self.flash_attn):
            w.setEnabled(on)

    def _on_kv_type(self, kv: str) -> None:
        if kv != "f16" and not self.flash_attn.isChecked():
            self._updating = True
            self.flash_attn.setChecked(True)
            self._updating = False
        self._on_changed()

    def _on_gpu_slider(self) -> None:
        if not self._updating and self.gpu_auto.isChecked():
            self._updating = True
            self.gpu_auto.setChecked(False)
            self._updating = False
        self._on_changed()

    def _on_changed(self, *_: object) -> None:
        if not self._updating:
            self.refresh()

    def refresh(self) -> None:
        """Recompute the prediction and verdict for the current slider positions (pure arithmetic)."""
        if self.header is None or self.info is None or self.budget is None:
            return
        kv = self.kv_type.currentText()
        params = replace(
            self.params,
            n_ctx=self.ctx_slider.value() * CTX_STEP,
            kv_type=kv,
            flash_attn=self.flash_attn.isChecked() or kv != "f16",
        )
        gpu = self.gpu_layers_setting()
        result = check_fit(self.header, params, self.budget, gpu, with_max_ctx=False)
        key = (params.kv_type, params.flash_attn, params.n_batch, params.n_ubatch, gpu, id(self.budget))
        if key != self._max_ctx_key:  # the largest context does not depend on the context slider
            self._max_ctx = max_context(self.header, params, self.budget, gpu)
            self._max_ctx_key = key
        self.result = replace(result, max_ctx=self._max_ctx)
        self.speed = None
        if self.devices is not None:
            try:
                if self._cost is None:
                    self._cost = model_cost(self.header)
                self.speed = predict_for_split(
                    self._cost, self.devices, result.gpu_layers, result.n_offloadable, params.n_ctx
                )
            except ValueError:  # a header the speed model cannot read: the memory verdict still stands
                self.speed = None
        self._show()
        self.rpc_panel.show_for(self.header, params, self.budget.ram_bytes or None)
        self.settingsChanged.emit(replace(params, n_gpu_layers=result.gpu_layers))

    def _show(self) -> None:
        r = self.result
        assert r is not None and self.budget is not None
        pred = r.prediction
        self.ctx_value.setText(f"{pred.settings.n_ctx:,}")
        self._updating = True
        self.gpu_slider.setValue(r.gpu_layers)
        self._updating = False
        self.gpu_value.setText(f"{r.gpu_layers} / {r.n_offloadable}")
        comps = pred.components()
        rows: list[tuple[str, list[tuple[str, int]], int, int]] = [
            ("RAM predicted", [(c, ram) for c, (ram, _) in comps.items() if ram], self.budget.ram_bytes, r.ram_margin)
        ]
        if self.budget.backend.gpu:
            rows.append(
                (
                    f"{self.device_name} predicted",
                    [(c, vram) for c, (_, vram) in comps.items() if vram],
                    self.budget.vram_bytes,
                    r.vram_margin if pred.vram_bytes else 0,
                )
            )
        if self.measured is not None:
            by_dev = self.measured
            ram_m = [(c, by_dev.total(c, gpu=False)) for c in ("weights", "kv", "compute", "output")]
            rows.insert(1, ("RAM measured", [(c, n) for c, n in ram_m if n], self.budget.ram_bytes, 0))
            if self.budget.backend.gpu and by_dev.total(gpu=True):
                vram_m = [(c, by_dev.total(c, gpu=True)) for c in ("weights", "kv", "compute", "output")]
                rows.append(
                    (f"{self.device_name} measured", [(c, n) for c, n in vram_m if n], self.budget.vram_bytes, 0)
                )
        self.bars.set_rows(rows)
        color = "#2ca02c" if r.fits else "#d62728"
        self.verdict_label.setText(f'<b style="color:{color}">{VERDICT_TEXT[r.verdict]}.</b> {r.words()}')
        self.max_ctx_label.setText(
            f"Largest context that fits: {r.max_ctx:,} tokens" if r.max_ctx else "No context length fits this budget."
        )
        self._show_speed(pred.settings.n_ctx)
        detail = f"Prediction confidence: {pred.confidence} — {pred.confidence_reason}."
        if pred.compute_cpu_unwritten >= UNWRITTEN_WORTH_SAYING:
            detail += (
                f" llama.cpp also reserves {format_bytes(pred.compute_cpu_unwritten)} of compute memory for"
                " logits Sizewise never asks for: never written, it takes no RAM, so the need leaves it out"
                " (the measured bar shows llama.cpp's reservations)."
            )
        notes = [n for n in r.notes if n and not n.startswith("prediction confidence:")]  # said just above
        if notes:
            detail += " " + " ".join(n[0].upper() + n[1:] + "." for n in notes)
        self.detail_label.setText(detail)
        if self.measured is not None:
            self._fill_diff_table()

    def _show_speed(self, n_ctx: int) -> None:
        sp = self.speed
        self.speed_label.setVisible(sp is not None)
        if sp is None:
            return
        where = {"cpu": "on the CPU", "gpu": "on the GPU", "cpu+gpu": "split over CPU and GPU"}[sp.device]
        text = (
            f"Predicted speed {where} ({sp.confidence}): generation <b>{sp.tg_tps:.1f} tokens/s</b> "
            f"({sp.tg_tps_full_ctx:.1f} with all {n_ctx:,} tokens of context in use), prompt "
            f"{sp.pp_tps:,.0f} tokens/s."
        )
        r = self.reply_speed
        if r is not None:
            text += (
                f"<br>Measured in the last reply: generation <b>{r.tg_tps:.1f} tokens/s</b> (predicted "
                f"{r.predicted_tg_tps:.1f} at its {r.depth:,}-token context, {_ratio(r.ratio('tg'))})"
            )
            if r.prompt_tokens:
                text += (
                    f", prompt {r.pp_tps:,.0f} tokens/s for {r.prompt_tokens:,} tokens (predicted "
                    f"{r.predicted_pp_tps:,.0f}, {_ratio(r.ratio('pp'))})"
                )
            text += "."
        self.speed_label.setText(text)
        self.speed_label.setToolTip(sp.note[0].upper() + sp.note[1:] + "." if sp.note else "")

    def show_reply_speed(self, reply: ReplySpeed) -> None:
        """A real reply's measured speed beside the prediction for that reply (until another model is shown)."""
        self.reply_speed = reply
        self._show()

    # -- after a load ----------------------------------------------------------------------------
    def show_measured(self, buffers: MeasuredBuffers | Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> None:
        """Draw llama.cpp's measured buffers beside the prediction, with the difference per component in %."""
        self.measured = measured_from(buffers)
        self.diff_table.setVisible(True)
        if self.result is not None:
            self._show()

    def differences(self) -> list[tuple[str, int, int, float | None]]:
        """(component, predicted, measured, difference in %) as shown in the table."""
        if self.result is None or self.measured is None:
            return []
        return [
            (d.component, d.predicted, d.measured, d.diff_pct) for d in compare(self.result.prediction, self.measured)
        ]

    def _fill_diff_table(self) -> None:
        rows = [d for d in self.differences() if d[1] or d[2]]
        self.diff_table.setRowCount(len(rows))
        for i, (comp, pred, meas, pct) in enumerate(rows):
            cells = [comp, format_bytes(pred), format_bytes(meas), "—" if pct is None else f"{pct:+.2f} %"]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.diff_table.setItem(i, j, item)
        self.diff_table.resizeColumnsToContents()
        self.diff_table.resizeRowsToContents()
        t = self.diff_table  # every row shown: a handful of them, no scroll bar inside the scrolling page
        rows_h = sum(t.rowHeight(i) for i in range(t.rowCount()))
        t.setFixedHeight(t.horizontalHeader().height() + rows_h + 2 * t.frameWidth())
        t.setMaximumWidth(sum(t.columnWidth(j) for j in range(t.columnCount())) + 2 * t.frameWidth())
