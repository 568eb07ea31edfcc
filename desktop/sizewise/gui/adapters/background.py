"""Run blocking work off the GUI thread (Anki's ``aqt.operations`` pattern).

``run_in_background(fn, on_done, on_error)`` runs ``fn`` on the global QThreadPool; the callbacks
run on the GUI thread. An exception nobody handles becomes a visible message via ``on_error``
or, failing that, the app's excepthook — never a silent print.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
            with gui_thread_favoured():
                result = self.fn()
        except BaseException as exc:
            self.relay.errored.emit(exc)
        else:
            self.relay.finished.emit(result)


_live: set[_Relay] = set()

FAVOURED_SWITCH_INTERVAL_S = 0.0005
_running = 0
_saved_interval = 0.0
_running_lock = threading.Lock()


@contextmanager
def gui_thread_favoured() -> Iterator[None]:
    """A short interpreter switch interval while background work runs.

    Why: a Python thread that wants the interpreter lock waits out the switch interval (5 ms by default)
    before a busy thread is asked to give it up. The GUI thread gives the lock up and wants it back dozens of
    times per event-loop turn (every call into Qt), so beside a CPU-bound job (the model ladder) one turn took
    110-280 ms (measured with a 10 ms timer; tests/gui/fit/test_ladder_view.py). At 0.5 ms the longest gap
    was 13-25 ms and the ladder took no longer. Concurrent jobs share one setting; the last restores it.
    """
    global _running, _saved_interval
    with _running_lock:
        if _running == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(FAVOURED_SWITCH_INTERVAL_S)
        _running += 1
    try:
        yield
    finally:
        with _running_lock:
            _running -= 1
            if _running == 0:
                sys.setswitchinterval(_saved_interval)


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
