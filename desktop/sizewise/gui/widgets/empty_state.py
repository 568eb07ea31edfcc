"""What a page shows while it has nothing to show: a title, a sentence or two, and the actions that fill it.

Shared so every empty page teaches the same way: each action is a labelled button with one line beside it
saying what it does, and notes below say the rest (where Sizewise looked, how to get something missing).
The column is narrow and centred so the text reads as a short panel, not a line across a wide window.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

COLUMN_WIDTH = 640


class EmptyState(QFrame):
    """A short teaching panel: title, text, [button — what it does] rows, then notes."""

    def __init__(self, title: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(title)
        self.title = QLabel(title)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        self.text.setVisible(bool(text))
        self._actions = QGridLayout()
        self._actions.setHorizontalSpacing(14)
        self._actions.setVerticalSpacing(10)
        self._actions.setColumnStretch(1, 1)
        self._captions: dict[QPushButton, QLabel] = {}
        self._notes = QVBoxLayout()
        self._notes.setSpacing(8)
        self._details = QVBoxLayout()  # notes that belong with the text, above the actions
        self._details.setSpacing(8)

        column = QWidget()
        column.setMaximumWidth(COLUMN_WIDTH)
        col = QVBoxLayout(column)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(12)
        col.addWidget(self.title)
        col.addWidget(self.text)
        col.addLayout(self._details)
        col.addSpacing(4)
        col.addLayout(self._actions)
        col.addSpacing(4)
        col.addLayout(self._notes)
        # Centred by stretches, not by an alignment flag: an aligned widget gets its size hint's height,
        # which is too short once its wrapped text has less width than the hint assumed.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column, 100)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 24, 24, 24)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def add_action(self, label: str, caption: str) -> QPushButton:
        """A button and, beside it, one line saying what it does; the button is returned for wiring."""
        button = QPushButton(label)
        button.setAccessibleName(label.rstrip("…"))
        button.setAccessibleDescription(caption)
        text = QLabel(caption)
        text.setWordWrap(True)
        text.setBuddy(button)
        # No alignment flag on the caption's cell: with one, the layout gives the label its one-line size
        # hint instead of the height its wrapped text needs at this width, and the last line is clipped.
        text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        row = self._actions.rowCount()
        self._actions.addWidget(button, row, 0, Qt.AlignmentFlag.AlignTop)
        self._actions.addWidget(text, row, 1)
        self._captions[button] = text
        return button

    def caption(self, button: QPushButton) -> QLabel:
        return self._captions[button]

    def set_caption(self, button: QPushButton, caption: str) -> None:
        self._captions[button].setText(caption)
        button.setAccessibleDescription(caption)

    def add_note(self, text: str = "", *, above_actions: bool = False) -> QLabel:
        """A paragraph below the actions, or right under the text (rich text allowed); hidden while empty."""
        note = QLabel(text)
        note.setWordWrap(True)
        note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        note.setVisible(bool(text))
        (self._details if above_actions else self._notes).addWidget(note)
        return note
