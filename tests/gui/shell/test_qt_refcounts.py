"""Guard against a PySide6 regression that kills long sessions.

PySide6 6.12.0 under Python 3.11 drops a reference to None on each call of a method that returns
nothing; None is not immortal before Python 3.12, so a long-running window eventually aborts with
"deallocating None". pyproject.toml keeps PySide6 below 6.12; this test fails if a release with the
bug is installed. From Python 3.12 on, None is immortal: its reference count is a fixed sentinel that
no call changes, so the test could not fail there and is skipped (the bug cannot abort those
interpreters either).
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtGui import QFont, QTextDocument
from pytestqt.qtbot import QtBot

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="None is immortal from Python 3.12 on (PEP 683): its reference count never changes, so this check "
    "cannot fail, and a lost reference cannot deallocate it",
)


def test_void_qt_calls_keep_none_refcount(qtbot: QtBot) -> None:
    doc = QTextDocument()
    font = QFont()
    before = sys.getrefcount(None)
    for _ in range(500):
        doc.setDefaultFont(font)
        doc.setPlainText("x")
        doc.setTextWidth(100)
    assert sys.getrefcount(None) - before > -50
