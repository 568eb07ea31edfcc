"""Live metrics and the status bar say whose memory a server's model takes, and how it is known: against the
Ollama stand-in (Ollama's documented /api/ps example, tests/ollama/ps.json), where it is measured by the server,
and for a model the server does not list in /api/ps, where it is unknown. (llama-server's predicted case is in
tests/gui/shell/test_remote_gui.py.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot

from sizewise.gui.metrics.metrics_view import MetricsView
from sizewise.gui.shell.main_window import MainWindow
from sizewise.gui.shell.model_loader import REMOTE_PREFIX
from tests.ollama_server import MODEL, OllamaStandIn

SHOTS = os.environ.get("SIZEWISE_REMOTE_SHOTS")  # a folder: the test saves its screenshot there


def _legend(view: MetricsView) -> list[str]:
    return [label.text for _sample, label in view.memory.plot.legend.items]


def test_ollama_memory_is_labelled_remote_measured(
    qtbot: QtBot, window: MainWindow, ollama_servers: Callable[..., OllamaStandIn]
) -> None:
    w = window
    server = ollama_servers("cold")
    metrics_dock = w.docks[2]
    metrics_dock.show()
    view = w.metrics_page.ensure()
    assert isinstance(view, MetricsView)
    with qtbot.waitSignal(w.engine.loaded, timeout=30_000):
        dialog = w.show_connect_dialog()
        dialog.url_edit.setText(server.url)
        dialog.connect_button.click()  # the first model, codellama:13b, which /api/ps does not list
    assert w.engine.is_remote and w.status_line.memory_label.text() == "Server memory: unknown"
    assert not any(entry.startswith("server memory") for entry in _legend(view))
    assert view.labels["predicted"].text() == "– (server: unknown)"

    with qtbot.waitSignal(w.engine.loaded, timeout=30_000):
        w.loader.load(f"{REMOTE_PREFIX}{server.url} {MODEL}")
    assert server.sent("api/generate") == {"model": MODEL, "stream": False}  # connecting loaded it
    assert w.status_line.memory_label.text() == "Server memory: 4899 MiB measured"
    assert "measured by the server (Ollama /api/ps)" in w.status_line.memory_label.toolTip()
    assert _legend(view)[0] == "server memory (remote, measured)"  # first: the row of the legend always in view
    assert view.remote_memory_bytes == 5137025024 and view.predicted_ram is None
    qtbot.waitUntil(lambda: view.sampler.series("t").size > 0, timeout=5_000)  # the labels follow the samples
    view._redraw()
    assert view.labels["rss"].text() == "4899 MiB on the server (measured by it)"
    assert view.labels["predicted"].text() == "– (the server measures it: see Engine memory)"
    assert view.labels["gen"].text() == "remote, received here: –"  # no reply yet
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        view.resize(1100, 900)
        assert view.grab().save(str(Path(SHOTS) / "metrics-on-ollama.png"))

    w.load_button.click()  # unload: the server's line leaves the legend
    qtbot.waitUntil(lambda: w.loader.state == "empty", timeout=10_000)
    assert not any(entry.startswith("server memory") for entry in _legend(view))
    assert _legend(view) == [
        "engine RSS (measured)", "VRAM (measured)", "predicted RAM", "predicted VRAM", "llama.cpp buffers (logged)"
    ]  # fmt: skip
