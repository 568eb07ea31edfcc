"""Guard against a PySide6 regression that kills long sessions.

PySide6 6.12.0 under Python 3.11 drops a reference to None on each call of a method that returns
nothing; None is not immortal before Python 3.12, so a long-running window eventually aborts with
"deallocating None". pyproject.toml keeps PySide6 below 6.12; this test fails if a release with the
bug is installed.
"""

from __future__ import annotations

import sys

from PySide6.QtGui import QFont, QTextDocument
from pytestqt.qtbot import QtBot


def test_void_qt_calls_keep_none_refcount(qtbot: QtBot) -> None:
    doc = QTextDocument()
    font = QFont()
    before = sys.getrefcount(None)
    for _ in range(500):
        doc.setDefaultFont(font)
        doc.setPlainText("x")
        doc.setTextWidth(100)
    assert sys.getrefcount(None) - before > -50
