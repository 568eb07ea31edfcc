"""The ladder page's offer to measure this machine, and the measuring itself (progress, Cancel).

Shown while this machine's speeds are the labelled conservative estimate: the first time a person opens the
ladder, the speeds they see are guesses until calibration has run once, and the page says so and offers to
fix it in place rather than pointing at a terminal command. The run is engine/speed/calibrate_job.py's job
process (about a minute on two cores); its events reach the GUI thread through a JobAdapter, so nothing
here blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from sizewise.core.errors import UserError
from sizewise.gui.adapters.job_adapter import JobAdapter

OFFER = (
    "Speeds on this page are a conservative estimate: this machine has not been measured yet. Measuring takes "
    "about a minute — Sizewise writes a few small random-weight models, times llama.cpp on them and "
    "deletes them."
)
GPU_OFFER = (
    "This machine's CPU is measured, its GPU is not: the speed of the layers it would take is an estimate. "
    "Measuring takes a few minutes — Sizewise times the same small test models on the CPU and on the GPU."
)
CANCELLED = "Measuring was cancelled; nothing was stored and the test models were deleted."


class _Job(Protocol):
    def start(self) -> None: ...

    def cancel(self) -> None: ...


JobFactory = Callable[[Callable[[dict[str, Any]], None]], _Job]
"""Makes a calibration job that reports to the given callback; raises UserError when it cannot run."""


class CalibrationPanel(QFrame):
    """``calibrated(profile_dict)`` once a run stored its profile."""

    calibrated = Signal(object)

    def __init__(self, make_job: JobFactory | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("calibrationPanel")
        self.setStyleSheet("#calibrationPanel { background: #eef4fb; border: 1px solid #b8cde6; }")
        self._make_job = make_job
        self._ended = False  # a run ended: its sentence stays until the next run
        self.adapter = JobAdapter(self)
        self.adapter.progress.connect(self._on_progress)
        self.adapter.finished.connect(self._on_finished)
        self.adapter.failed.connect(self._on_failed)
        self.adapter.cancelled.connect(self._on_cancelled)

        outer = QVBoxLayout(self)
        row = QHBoxLayout()
        outer.addLayout(row)
        self.message = QLabel(OFFER)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #202020;")
        row.addWidget(self.message, 1)
        self.start_button = QPushButton("Measure this machine")
        self.start_button.setAccessibleName("Measure this machine's speed")
        self.start_button.clicked.connect(self.start)
        row.addWidget(self.start_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel measuring")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        row.addWidget(self.cancel_button)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # the steps' lengths vary with the machine: a busy bar plus the step in words
        self.bar.setTextVisible(False)
        self.bar.hide()
        outer.addWidget(self.bar)
        if make_job is None:
            self.start_button.setEnabled(False)

    def set_offer(self, text: str) -> None:
        """What the panel offers while it is idle (a run's own progress and ending keep their words)."""
        if not self.adapter.running and not self._ended:
            self.message.setText(text)

    @property
    def running(self) -> bool:
        return self.adapter.running

    @Slot()
    def start(self) -> None:
        if self.adapter.running or self._make_job is None:
            return
        try:
            job = self._make_job(self.adapter.on_event)
        except UserError as exc:
            self._show_end(str(exc), again=True)
            return
        self.message.setText("Starting…")
        self.start_button.hide()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.bar.show()
        self.adapter.start(job)

    @Slot()
    def cancel(self) -> None:
        if not self.adapter.running:
            return
        self.cancel_button.setEnabled(False)
        self.message.setText("Stopping, and deleting the test models…")
        self.adapter.cancel()

    def _show_end(self, text: str, *, again: bool) -> None:
        self._ended = True
        self.message.setText(text)
        self.bar.hide()
        self.cancel_button.hide()
        self.start_button.setText("Try again" if again else "Measure this machine")
        self.start_button.show()

    @Slot(dict)
    def _on_progress(self, msg: dict[str, Any]) -> None:
        if self.cancel_button.isEnabled():  # after Cancel, the stopping message stays
            self.message.setText(f"Measuring this machine: {msg.get('message', '')}")

    @Slot(object)
    def _on_finished(self, profile: object) -> None:
        self._show_end("This machine is measured: speeds on this page come from its profile.", again=False)
        self.calibrated.emit(profile)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._show_end(message, again=True)

    @Slot()
    def _on_cancelled(self) -> None:
        self._show_end(CANCELLED, again=False)
