"""The Hardware view: what Sizewise detected on this machine, and how it found each figure.

Each row shows a value and its source (``/proc/cpuinfo``, ``psutil``, NVML, the engine's
``llama_print_system_info`` …), so a person can check where a budget comes from. Probing reads
files and may load NVML, so "Refresh" runs it off the GUI thread; the llama.cpp facts come from the
engine's ``ready`` message, handed in with ``set_engine_ready`` by whoever owns the engine.
"""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from sizewise.core.fit.devices import offload_summary
from sizewise.core.fit.hardware import HardwareReport, describe, format_bytes, probe_hardware
from sizewise.gui.adapters.background import run_in_background


class HardwareView(QWidget):
    reportChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: HardwareReport | None = None
        self.ready: dict[str, Any] | None = None
        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("Not probed yet.")
        self.summary.setWordWrap(True)
        top.addWidget(self.summary, 1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read CPU, memory and GPU figures again")
        top.addWidget(self.refresh_button)
        outer.addLayout(top)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["", "Detected", "How"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAccessibleName("Detected hardware")
        outer.addWidget(self.table, 1)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        outer.addWidget(self.error)
        self.refresh_button.clicked.connect(self.refresh)

    def set_engine_ready(self, ready: dict[str, Any] | None) -> None:
        """The engine's ready message (llama.cpp version, GPU offload, system info) for the next report."""
        self.ready = dict(ready) if ready else None

    def refresh(self) -> None:
        """Probe in the background; the table updates when the probe finishes."""
        self.refresh_button.setEnabled(False)
        ready = self.ready
        run_in_background(lambda: probe_hardware(ready), self._done, self._failed)

    def _done(self, report: object) -> None:
        self.refresh_button.setEnabled(True)
        assert isinstance(report, HardwareReport)
        self.set_report(report)

    def _failed(self, exc: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        self.error.setText(f"Probing the hardware failed: {exc}")
        self.error.setVisible(True)

    def set_report(self, report: HardwareReport) -> None:
        self.report = report
        self.error.setVisible(False)
        rows = describe(report)
        self.table.setRowCount(len(rows))
        for i, (label, value, source) in enumerate(rows):
            for j, text in enumerate((label, value, source)):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if j == 2:
                    item.setToolTip(source)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        ram = report.ram_budget
        vram = report.vram_budget
        self.summary.setText(
            f"Budget for models: <b>{format_bytes(ram.value)}</b> RAM ({ram.source}); "
            f"<b>{format_bytes(vram.value)}</b> VRAM ({vram.source})."
            + (f"<br>{escape(offload_summary(self.ready)[1])}" if self.ready else "")
        )
        self.reportChanged.emit(report)

    def rows(self) -> list[tuple[str, str, str]]:
        """The table's text, row by row (label, value, source)."""
        out = []
        for i in range(self.table.rowCount()):
            cells = [self.table.item(i, j) for j in range(3)]
            out.append(tuple(c.text() if c else "" for c in cells))
        return out  # type: ignore[return-value]
