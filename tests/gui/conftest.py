from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.paths import AppPaths
from sizewise.gui.shell.main_window import MainWindow


@pytest.fixture
def window(qtbot: QtBot, app_paths: AppPaths) -> Iterator[MainWindow]:
    w = MainWindow(app_paths)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: bool(w.engine.client.ready_info), timeout=30_000)
    yield w
    w.close()
