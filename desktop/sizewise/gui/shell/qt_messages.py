"""Qt's own warnings, routed to stderr with a prefix, minus the one the offscreen plugin always says.

Shared by the app and the smoke test (which also counts them as failures), so neither imports the other.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QMessageLogContext, QtMsgType

# Said by the offscreen platform plugin for every top-level window; harmless and not actionable.
IGNORED_QT_MESSAGES = ("This plugin does not support propagateSizeHints",)


def is_ignored(message: str) -> bool:
    return any(message.startswith(m) for m in IGNORED_QT_MESSAGES)


def qt_message_handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    if is_ignored(message):
        return
    if sys.__stderr__ is not None:
        sys.__stderr__.write(f"Qt: {message}\n")
