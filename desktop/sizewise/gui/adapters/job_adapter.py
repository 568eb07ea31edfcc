"""A quant-lab job (engine/quant: quantize or quality) as Qt signals on the GUI thread.

The job's events arrive on its reader thread; a queued signal carries each to the GUI thread, where
``progress`` fires for progress/estimate events and exactly one of ``finished``, ``failed`` or ``cancelled``
ends the job. Nothing here blocks: starting spawns the process, cancelling terminates it (the job
deletes whatever it was writing).
"""

from __future__ import annotations

from typing import Any, Protocol

from PySide6.QtCore import QObject, Qt, Signal, Slot


class _Job(Protocol):
    def start(self) -> None: ...

    def cancel(self) -> None: ...


class JobAdapter(QObject):
    progress = Signal(dict)
    finished = Signal(object)  # the job's result: QuantizeResult or QualityRun
    failed = Signal(str)
    cancelled = Signal()

    _event = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._event.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self.job: _Job | None = None
        self.running = False

    def on_event(self, msg: dict[str, Any]) -> None:
        """Give this to the job as its ``on_event``; safe to call from any thread."""
        self._event.emit(msg)

    def start(self, job: _Job) -> None:
        self.job = job
        self.running = True
        job.start()

    def cancel(self) -> None:
        if self.job is not None and self.running:
            self.job.cancel()

    @Slot(object)
    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind in ("progress", "estimate"):
            self.progress.emit(msg)
            return
        self.running = False
        if kind == "finished":
            self.finished.emit(msg.get("result") or msg.get("run"))
        elif kind == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(str(msg.get("message") or "The job ended without a result."))
