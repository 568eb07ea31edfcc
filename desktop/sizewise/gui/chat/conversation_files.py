"""Conversations to and from files: the File menu's export and import, kept out of the main window.

The store turns conversations into Markdown or JSON and back; this controller adds what the user
sees around that: the file pickers, the atomic write, and one sentence for the banner whatever
happens. The window only wires menu entries to it and shows its messages.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from sizewise.core.atomic import write_text_atomic
from sizewise.core.chat.store import ConversationStore
from sizewise.core.errors import UserError
from sizewise.gui.chat.chat_controller import ChatController


class ConversationFiles(QObject):
    """Export the open conversation or all of them, and import conversations from a JSON file.

    Each method takes the file's path, or asks for one with a file dialog when it is None (tests
    and scripts pass it). Outcomes, good or bad, go out through ``message``; nothing raises.
    """

    message = Signal(str, str)  # sentence, level (error | warning | info)
    imported = Signal()  # conversations were added to the store: lists of them are out of date

    def __init__(self, store: ConversationStore, chat: ChatController, parent: QWidget) -> None:
        super().__init__(parent)
        self.store = store
        self.chat = chat  # its open conversation is the one "Export conversation" writes
        self._dialog_parent = parent

    def export_conversation(self, fmt: str, path: str | None = None) -> None:
        """Write the open conversation as Markdown (``fmt="md"``) or JSON (``fmt="json"``)."""
        conv_id = self.chat.conversation_id
        conv = self.store.get_conversation(conv_id) if conv_id >= 0 else None
        if conv is None:
            self.message.emit("Open a conversation first; there is nothing to export.", "info")
            return
        if path is None:
            suffix = "Markdown (*.md)" if fmt == "md" else "JSON (*.json)"
            safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in conv.title).strip() or "conversation"
            path, _ = QFileDialog.getSaveFileName(self._dialog_parent, "Export conversation", f"{safe}.{fmt}", suffix)
            if not path:
                return
        try:
            if fmt == "md":
                text = self.store.export_markdown(conv_id)
            else:
                text = json.dumps(self.store.export_conversation(conv_id), indent=2, ensure_ascii=False)
            write_text_atomic(Path(path), text)
        except (OSError, UserError) as exc:
            self.message.emit(f"The conversation could not be exported: {exc}", "error")
            return
        self.message.emit(f"Exported “{conv.title}” to {path}.", "info")

    def export_all(self, path: str | None = None) -> None:
        """Write every conversation into one JSON file (the format ``import_conversations`` reads)."""
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self._dialog_parent, "Export all conversations", "conversations.json", "JSON (*.json)"
            )
            if not path:
                return
        try:
            data = self.store.export_all()
            write_text_atomic(Path(path), json.dumps(data, indent=2, ensure_ascii=False))
        except (OSError, UserError) as exc:
            self.message.emit(f"The conversations could not be exported: {exc}", "error")
            return
        self.message.emit(f"Exported {len(data.get('conversations', []))} conversations to {path}.", "info")

    def import_conversations(self, path: str | None = None) -> None:
        """Add the conversations of a JSON export; ones already here are skipped, not doubled."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self._dialog_parent, "Import conversations", "", "JSON (*.json)")
            if not path:
                return
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            result = self.store.import_data(data, source=Path(path).name)
        except (OSError, ValueError, UserError) as exc:
            self.message.emit(f"{Path(path).name} could not be imported: {exc}", "error")
            return
        self.imported.emit()
        self.message.emit(
            f"Imported {result.imported} conversations ({result.messages} messages); "
            f"{result.skipped} were already here.",
            "info",
        )
