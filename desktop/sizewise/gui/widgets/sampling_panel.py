"""Sampling and load controls, with the explanation of temperature next to its slider."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sizewise.core.sampling import TEMPERATURE_HINT, LoadParams, SamplingParams


def _dspin(lo: float, hi: float, step: float, decimals: int, tip: str) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setDecimals(decimals)
    w.setToolTip(tip)
    return w


def _spin(lo: int, hi: int, step: int, tip: str) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setToolTip(tip)
    return w


class SamplingPanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = self._outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)

        self.temperature = QSlider(Qt.Orientation.Horizontal)
        self.temperature.setRange(0, 200)
        self.temperature.setAccessibleName("Temperature")
        self.temperature.setToolTip(TEMPERATURE_HINT)
        self.temperature_value = QLabel()
        self.temperature_value.setMinimumWidth(36)
        row = QHBoxLayout()
        row.addWidget(self.temperature, 1)
        row.addWidget(self.temperature_value)
        form.addRow("Temperature", row)
        self.temperature_hint = QLabel(TEMPERATURE_HINT)
        self.temperature_hint.setWordWrap(True)
        self.temperature_hint.setStyleSheet("color: palette(placeholder-text); font-size: small;")
        form.addRow(self.temperature_hint)
        self.temperature.valueChanged.connect(self._show_temperature)

        self.top_p = _dspin(
            0.01, 1.0, 0.01, 2, "Top-p: sample only from the most likely tokens whose probabilities add up to p."
        )
        self.top_k = _spin(0, 1000, 1, "Top-k: sample only from the k most likely tokens (0 = off).")
        self.min_p = _dspin(0.0, 1.0, 0.01, 2, "Min-p: drop tokens less likely than min-p × the most likely one.")
        self.repeat_penalty = _dspin(0.5, 2.0, 0.05, 2, "Repeat penalty: above 1 discourages repeating recent tokens.")
        self.max_tokens = _spin(1, 32768, 16, "The reply stops after this many tokens.")
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Max tokens", self.max_tokens)

        self.random_seed = QCheckBox("Random")
        self.random_seed.setToolTip("A new seed for every reply. Untick and set a seed to get the same reply again.")
        self.seed = _spin(0, 2**31 - 1, 1, "With a fixed seed, the same prompt and settings give the same reply.")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.random_seed)
        seed_row.addWidget(self.seed, 1)
        form.addRow("Seed", seed_row)
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))

        self.n_ctx = _spin(
            128,
            131072,
            256,
            "Context length in tokens: how much of the conversation the model sees. "
            "Larger needs more memory. Applies on the next load.",
        )
        self.ctx_warning = QLabel()
        self.ctx_warning.setWordWrap(True)
        self.ctx_warning.setStyleSheet("color: #b36b00;")
        self.ctx_warning.hide()
        form.addRow("Context length", self.n_ctx)
        form.addRow(self.ctx_warning)
        self.gpu_layers = _spin(-1, 999, 1, "Layers to run on the GPU (-1 = all). Applies on the next load.")
        self.gpu_reason = QLabel("Checking the llama.cpp build…")
        self.gpu_reason.setWordWrap(True)
        self.gpu_reason.setStyleSheet("color: palette(placeholder-text); font-size: small;")
        self.gpu_layers.setEnabled(False)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow(self.gpu_reason)

        outer.addWidget(QLabel("System prompt"))
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("Optional instructions for the assistant, e.g. “Answer briefly.”")
        self.system_prompt.setAccessibleName("System prompt")
        self.system_prompt.setMaximumHeight(110)
        outer.addWidget(self.system_prompt)
        outer.addStretch(1)

        for w in (self.top_p, self.min_p, self.repeat_penalty):
            w.valueChanged.connect(self.changed)
        for s in (self.top_k, self.max_tokens, self.seed, self.n_ctx, self.gpu_layers):
            s.valueChanged.connect(self.changed)
        self.temperature.valueChanged.connect(self.changed)
        self.random_seed.toggled.connect(self.changed)
        self.set_params(SamplingParams(), LoadParams())

    def add_header_widget(self, widget: QWidget) -> None:
        """Put a widget above the controls (the presets picker)."""
        self._outer.insertWidget(0, widget)

    def _show_temperature(self, value: int) -> None:
        self.temperature_value.setText(f"{value / 100:.2f}")

    def set_gpu_support(self, available: bool, reason: str) -> None:
        self.gpu_layers.setEnabled(available)
        self.gpu_reason.setText(reason)

    def set_context_warning(self, text: str | None) -> None:
        self.ctx_warning.setText(text or "")
        self.ctx_warning.setVisible(bool(text))

    def set_params(self, s: SamplingParams, lp: LoadParams, system_prompt: str = "") -> None:
        self.temperature.setValue(round(s.temperature * 100))
        self._show_temperature(self.temperature.value())
        self.top_p.setValue(s.top_p)
        self.top_k.setValue(s.top_k)
        self.min_p.setValue(s.min_p)
        self.repeat_penalty.setValue(s.repeat_penalty)
        self.max_tokens.setValue(s.max_tokens)
        self.random_seed.setChecked(s.seed is None)
        self.seed.setEnabled(s.seed is not None)
        if s.seed is not None:
            self.seed.setValue(s.seed)
        self.n_ctx.setValue(lp.n_ctx)
        self.gpu_layers.setValue(lp.n_gpu_layers)
        self.system_prompt.setPlainText(system_prompt)

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature.value() / 100,
            top_p=self.top_p.value(),
            top_k=self.top_k.value(),
            min_p=self.min_p.value(),
            repeat_penalty=self.repeat_penalty.value(),
            max_tokens=self.max_tokens.value(),
            seed=None if self.random_seed.isChecked() else self.seed.value(),
        )

    def load_params(self, base: LoadParams | None = None) -> LoadParams:
        base = base or LoadParams()
        gpu = self.gpu_layers.value() if self.gpu_layers.isEnabled() else 0
        return LoadParams(
            n_ctx=self.n_ctx.value(),
            n_gpu_layers=gpu,
            n_batch=base.n_batch,
            n_ubatch=base.n_ubatch,
            n_threads=base.n_threads,
            kv_type=base.kv_type,
            flash_attn=base.flash_attn,
        )

    def system_text(self) -> str:
        return self.system_prompt.toPlainText()
