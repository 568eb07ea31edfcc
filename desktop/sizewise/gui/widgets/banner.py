"""The one-sentence message line above the chat, shared by everything that has something to say.

Errors, warnings and notes from loading, chatting, files and settings all land here instead of in
modal boxes; it lives apart from the main window so it is one small widget, not window code.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

COLOURS = {"error": ("#fdecea", "#8a1c1c"), "warning": ("#fff4e0", "#7a4b00"), "info": ("#e8f1fb", "#1d4f91")}


class Banner(QLabel):
    """A one-sentence message above the chat: errors in red, warnings in amber, never a modal box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setAccessibleName("Message banner")
        self.hide()

    def show_message(self, text: str, level: str = "error") -> None:
        bg, fg = COLOURS[level]
        self.setStyleSheet(f"background:{bg}; color:{fg}; padding:6px; border-radius:4px;")
        self.setText(text)
        self.setProperty("level", level)
        self.show()

    def clear_message(self) -> None:
        self.setText("")
        self.hide()
