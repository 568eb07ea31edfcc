"""The main window's status bar figures, and how each is worded.

Chat or completion mode, how much of the context the conversation takes, the last reply's speed
and time to first token, and the engine process's memory: each comes from a different source
(the model loader, the chat controller, the engine's periodic stats), so the window only connects
those sources to the slots here and never formats a figure itself.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QLabel, QStatusBar

MiB = 1 << 20


class StatusLine(QObject):
    """Five labels added to a status bar as permanent widgets, in the order they are shown."""

    def __init__(self, status_bar: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mode_label = QLabel("")
        self.speed_label = QLabel("Speed: –")
        self.speed_label.setToolTip("Generation speed of the last reply (llama.cpp's own counters)")
        self.ttft_label = QLabel("First token: –")
        self.ttft_label.setToolTip("Time from sending to the first token of the last reply")
        self.memory_label = QLabel("Engine memory: –")
        self.memory_label.setToolTip("Resident memory of the engine process (current / peak)")
        self.context_label = QLabel("Context: –")
        self.context_label.setToolTip("Tokens the conversation takes of the model's context window")
        for w in (self.mode_label, self.context_label, self.speed_label, self.ttft_label, self.memory_label):
            status_bar.addPermanentWidget(w)

    @Slot(dict)
    def show_loaded(self, msg: dict[str, Any]) -> None:
        """A model was loaded (the engine's load message): its mode and the engine's memory now."""
        chat = msg.get("chat_mode") == "chat"
        self.mode_label.setText(
            "Chat (model's template)" if chat else "Completion mode — this model has no chat template"
        )
        self.mode_label.setToolTip("" if chat else "A base model continues your text instead of answering it.")
        self.memory_label.setText(f"Engine memory: {int(msg['rss_bytes']) / MiB:.0f} MiB")

    @Slot()
    def show_unloaded(self) -> None:
        self.memory_label.setText("Engine memory: –")

    def clear_mode(self) -> None:
        self.mode_label.setText("")

    @Slot(dict)
    def show_reply(self, stats: dict[str, Any]) -> None:
        """A reply finished (its GenerationStats dict): speed, first token and memory."""
        self.speed_label.setText(f"Speed: {float(stats['tg_tps']):.1f} tokens/s")
        self.ttft_label.setText(f"First token: {float(stats['ttft_ms']):.0f} ms")
        self.show_memory(stats)

    @Slot(str, float)
    def show_context(self, text: str, fraction: float) -> None:
        self.context_label.setText(f"Context: {text}" if text else "Context: –")
        self.context_label.setStyleSheet("color: #b36b00;" if fraction > 0.8 else "")

    @Slot(dict)
    def show_memory(self, msg: dict[str, Any]) -> None:
        """The engine's memory from a stats message or a reply's stats: current and peak."""
        rss, peak = int(msg["rss_bytes"]), int(msg["peak_rss_bytes"])
        self.memory_label.setText(f"Engine memory: {rss / MiB:.0f} MiB (peak {peak / MiB:.0f} MiB)")
