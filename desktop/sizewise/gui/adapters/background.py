"""Run blocking work off the GUI thread (Anki's ``aqt.operations`` pattern).

``run_in_background(fn, on_done, on_error)`` runs ``fn`` on the global QThreadPool; the callbacks
run on the GUI thread. An exception nobody handles becomes a visible message via ``on_error``
or, failing that, the app's excepthook — never a silent print.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class _Relay(QObject):
    finished = Signal(object)
    errored = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as exc:
            self.relay.errored.emit(exc)
        else:
            self.relay.finished.emit(result)


_live: set[_Relay] = set()


def run_in_background(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    relay = _Relay()
    _live.add(relay)

    @Slot(object)
    def done(result: Any) -> None:
        _live.discard(relay)
        on_done(result)

    @Slot(object)
    def errored(exc: BaseException) -> None:
        _live.discard(relay)
        if on_error is not None:
            on_error(exc)
        else:
            sys.excepthook(type(exc), exc, exc.__traceback__)

    relay.finished.connect(done)
    relay.errored.connect(errored)
    QThreadPool.globalInstance().start(_Job(fn, relay))


def wait_for_background(msecs: int = 10_000) -> bool:
    return QThreadPool.globalInstance().waitForDone(msecs)
