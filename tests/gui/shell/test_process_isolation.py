"""llama.cpp never runs inside the GUI process: the import rule, checked at run time."""

from __future__ import annotations

import sys
from pathlib import Path

from pytestqt.qtbot import QtBot

from sizewise.gui.shell.main_window import MainWindow


def test_gui_process_never_loads_llama_cpp(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    with qtbot.waitSignal(window.engine.loaded, timeout=120_000):
        window.loader.open_model(str(smollm2_path))
    assert window.engine.client.pid not in (None, __import__("os").getpid())
    assert "llama_cpp" not in sys.modules
