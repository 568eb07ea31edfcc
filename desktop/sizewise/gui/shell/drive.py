"""Driving the real main window from code: used by the smoke test and the screenshot command."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEventLoop, QTimer, SignalInstance

from sizewise.gui.shell.main_window import MainWindow


class DriveError(RuntimeError):
    pass


def wait_signal(
    signal: SignalInstance, timeout_s: float, *, fail: list[SignalInstance] | None = None
) -> tuple[Any, ...]:
    """Run the event loop until ``signal`` fires; a ``fail`` signal or the timeout raise DriveError."""
    loop = QEventLoop()
    result: dict[str, Any] = {}

    def ok(*args: Any) -> None:
        result["args"] = args
        loop.quit()

    def bad(*args: Any) -> None:
        result["error"] = " ".join(str(a) for a in args if isinstance(a, str)) or "failed"
        loop.quit()

    signal.connect(ok)
    for f in fail or []:
        f.connect(bad)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout_s * 1000))
    loop.exec()
    timer.stop()
    signal.disconnect(ok)
    for f in fail or []:
        f.disconnect(bad)
    if "error" in result:
        raise DriveError(result["error"])
    if "args" not in result:
        raise DriveError(f"timed out after {timeout_s:.0f} s")
    return tuple(result["args"])


def load_model(window: MainWindow, path: str, timeout_s: float = 120.0) -> dict[str, Any]:
    e = window.engine
    window.loader.open_model(path)
    (msg,) = wait_signal(e.loaded, timeout_s, fail=[e.loadFailed, e.engineStopped])
    return dict(msg)


def chat_turn(window: MainWindow, text: str, timeout_s: float = 120.0) -> dict[str, Any]:
    e = window.engine
    window.input.setPlainText(text)
    window.chat_actions.send()
    _, stats = wait_signal(e.finished, timeout_s, fail=[e.failed, e.engineStopped])
    return dict(stats)
