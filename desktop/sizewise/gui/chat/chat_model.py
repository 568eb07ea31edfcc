"""The conversation as a Qt list model over plain message dataclasses.

New messages use beginInsertRows; while a reply streams only the last row changes, and repaints
are coalesced (one dataChanged per ~40 ms) so a 150 tokens/s stream costs ~25 repaints a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer

FLUSH_MS = 40


@dataclass
class ChatMessage:
    role: str  # user | assistant | system
    text: str = ""
    status: str = "done"  # streaming | done | stopped | interrupted | error
    stats: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    message_id: int | None = None  # the row in the conversation store, when saved


class Roles(IntEnum):
    Role = Qt.ItemDataRole.UserRole + 1
    Status = Qt.ItemDataRole.UserRole + 2
    Stats = Qt.ItemDataRole.UserRole + 3
    Note = Qt.ItemDataRole.UserRole + 4


Index = QModelIndex | QPersistentModelIndex


class ChatModel(QAbstractListModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.messages: list[ChatMessage] = []
        self._pending = ""
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self.flush)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.messages)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.messages):
            return None
        m = self.messages[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return m.text
        if role == Roles.Role:
            return m.role
        if role == Roles.Status:
            return m.status
        if role == Roles.Stats:
            return m.stats
        if role == Roles.Note:
            return m.note
        return None

    def append(self, message: ChatMessage) -> int:
        self.flush()
        row = len(self.messages)
        self.beginInsertRows(QModelIndex(), row, row)
        self.messages.append(message)
        self.endInsertRows()
        return row

    def append_text(self, text: str) -> None:
        """Add streamed text to the last message; the view hears of it at most every FLUSH_MS."""
        self._pending += text
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        self._flush_timer.stop()
        if not self._pending or not self.messages:
            self._pending = ""
            return
        self.messages[-1].text += self._pending
        self._pending = ""
        self._changed_last()

    def finish_last(self, status: str, stats: dict[str, Any] | None = None, note: str = "") -> None:
        self.flush()
        if not self.messages:
            return
        last = self.messages[-1]
        last.status = status
        if stats:
            last.stats = stats
        last.note = note
        self._changed_last()

    def truncate(self, row: int) -> None:
        """Remove ``row`` and every message after it (edit-and-resend, regenerate)."""
        self.flush()
        if not 0 <= row < len(self.messages):
            return
        self.beginRemoveRows(QModelIndex(), row, len(self.messages) - 1)
        del self.messages[row:]
        self.endRemoveRows()

    def set_messages(self, messages: list[ChatMessage]) -> None:
        self.flush()
        self.beginResetModel()
        self.messages = list(messages)
        self.endResetModel()

    def clear(self) -> None:
        self.flush()
        self.beginResetModel()
        self.messages.clear()
        self.endResetModel()

    def history(self, system_prompt: str = "") -> list[dict[str, str]]:
        """Messages for the chat template: finished turns only, the streaming placeholder excluded."""
        out = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
        out += [
            {"role": m.role, "content": m.text}
            for m in self.messages
            if m.role in ("user", "assistant") and m.status != "streaming" and m.text
        ]
        return out

    def _changed_last(self) -> None:
        idx = self.index(len(self.messages) - 1)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DisplayRole, Roles.Status, Roles.Stats])
