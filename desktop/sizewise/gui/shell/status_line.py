"""The main window's status bar figures, and how each is worded.

Chat or completion mode, how much of the context the conversation takes, the reply's speed and
time to first token, and the engine process's memory: each comes from a different source (the
model loader, the chat controller, the engine's periodic stats), so the window only connects those
sources to the slots here and never formats a figure itself.

The speed is live while a reply streams: ``count_tokens`` only adds up the engine's token counts
(the ``n`` of each batched ``token`` event), and a timer turns them into tokens/s every
``LIVE_SPEED_MS`` — never once per token. When the reply ends the label shows llama.cpp's own
figure (``tg_tps``).

A model on a server is labelled remote: its speed is tokens/s as received here (network included), with
the server's own figure beside it when it sends one (llama-server's ``timings``), and the memory shown is the
server's as measured or predicted (engine/remote/memory.py), never this machine's. A plain-http server on
another machine is marked unencrypted.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QLabel, QStatusBar

from sizewise.core.fit.devices import devices_from_ready, offload_summary

MiB = 1 << 20
LIVE_SPEED_MS = 300  # a live speed at most ~3 times a second: readable, and nothing to repaint per token


class StatusLine(QObject):
    """Five labels added to a status bar as permanent widgets, in the order they are shown."""

    def __init__(self, status_bar: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mode_label = QLabel("")
        self.speed_label = QLabel("Speed: –")
        self.speed_label.setToolTip(
            "Generation speed: tokens/s so far while a reply is written, then llama.cpp's own figure for it"
        )
        self.remote = False  # the loaded model runs on a server
        self._live_tokens = 0
        self._live_first: float | None = None  # when the reply's first token arrived
        self.live_timer = QTimer(self)
        self.live_timer.setInterval(LIVE_SPEED_MS)
        self.live_timer.timeout.connect(self._show_live_speed)
        self.ttft_label = QLabel("First token: –")
        self.ttft_label.setToolTip("Time from sending to the first token of the last reply")
        self.memory_label = QLabel("Engine memory: –")
        self.memory_label.setToolTip("Resident memory of the engine process (current / peak)")
        self.context_label = QLabel("Context: –")
        self.context_label.setToolTip("Tokens the conversation takes of the model's context window")
        for w in (self.mode_label, self.context_label, self.speed_label, self.ttft_label, self.memory_label):
            status_bar.addPermanentWidget(w)
        self.device_label = QLabel("")  # where layers can go: the GPU llama.cpp found, or why none
        status_bar.addPermanentWidget(self.device_label)

    @Slot(dict)
    def show_loaded(self, msg: dict[str, Any]) -> None:
        """A model was loaded (the engine's load message): its mode and the engine's memory now."""
        self.remote = bool(msg.get("remote"))
        if self.remote:
            self._show_remote(msg)
            return
        self.mode_label.setStyleSheet("")  # a server's unencrypted mark does not carry over to a local model
        self.memory_label.setToolTip("Resident memory of the engine process (current / peak)")
        chat = msg.get("chat_mode") == "chat"
        self.mode_label.setText(
            "Chat (model's template)" if chat else "Completion mode — this model has no chat template"
        )
        self.mode_label.setToolTip("" if chat else "A base model continues your text instead of answering it.")
        self.memory_label.setText(f"Engine memory: {int(msg['rss_bytes']) / MiB:.0f} MiB")

    @Slot(dict)
    def show_devices(self, ready: dict[str, Any]) -> None:
        """The engine's devices (its ready message): the offload device by name and kind — lavapipe as "software
        Vulkan (CPU)" — or, on a GPU build that found none, that it found none. Nothing on a CPU-only build."""
        can_offload, sentence = offload_summary(ready)
        offload = [d for d in devices_from_ready(ready) if d.offloads]
        if can_offload:
            self.device_label.setText("GPU: " + ", ".join(f"{d.name} ({d.kind_label})" for d in offload))
        else:
            self.device_label.setText("GPU: none found" if ready.get("gpu_offload") else "")
        self.device_label.setToolTip(sentence)

    @Slot()
    def show_unloaded(self) -> None:
        self.remote = False
        self.mode_label.setStyleSheet("")
        self.memory_label.setText("Engine memory: –")
        self.memory_label.setToolTip("Resident memory of the engine process (current / peak)")

    def clear_mode(self) -> None:
        self.mode_label.setText("")

    def _show_remote(self, msg: dict[str, Any]) -> None:
        plain = not (msg.get("encrypted") or msg.get("loopback"))
        self.mode_label.setText("Chat on a server (remote" + (", unencrypted)" if plain else ")"))
        self.mode_label.setToolTip(str(msg.get("warning") or f"Replies come from {msg.get('url')}."))
        self.mode_label.setStyleSheet("color: #b00020;" if plain else "")
        memory = msg.get("memory") or {}
        source, value = memory.get("source"), memory.get("bytes")
        figure = f"{int(value) / MiB:.0f} MiB {source}" if value else "unknown"
        self.memory_label.setText(f"Server memory: {figure}")
        self.memory_label.setToolTip(str(memory.get("text") or "The server's memory"))

    @Slot(dict)
    def show_reply(self, stats: dict[str, Any]) -> None:
        """A reply finished (its GenerationStats dict): speed, first token and memory."""
        self.end_live_speed()
        if stats.get("remote"):
            self.speed_label.setText(remote_speed_text(stats))
            self.ttft_label.setText(f"First token: {float(stats['ttft_ms']):.0f} ms (remote)")
            return
        self.speed_label.setText(f"Speed: {float(stats['tg_tps']):.1f} tokens/s")
        self.ttft_label.setText(f"First token: {float(stats['ttft_ms']):.0f} ms")
        self.show_memory(stats)

    # -- the live speed -----------------------------------------------------------------------------
    @Slot(int)
    def count_tokens(self, n: int) -> None:
        """``n`` more tokens of the reply being written (cheap: no text is set here)."""
        if self._live_first is None:
            self._live_first = time.monotonic()
            self._live_tokens = 0
            self.live_timer.start()
        self._live_tokens += n

    @Slot(bool)
    def set_replying(self, busy: bool) -> None:
        """The chat controller's busy state: when it clears, the reply has ended one way or another."""
        if not busy:
            self.end_live_speed()

    @Slot()
    def end_live_speed(self) -> None:
        """The reply ended (finished, stopped or failed): the live figure stays until a final one replaces it."""
        self.live_timer.stop()
        self._live_first = None
        self._live_tokens = 0

    def live_speed(self) -> float | None:
        """Tokens/s since the reply's first token, or None before there is anything to divide."""
        if self._live_first is None:
            return None
        elapsed = time.monotonic() - self._live_first
        if elapsed < 0.05 or self._live_tokens < 2:
            return None
        # the first token opens the interval, so it is not counted as generated within it
        return (self._live_tokens - 1) / elapsed

    @Slot()
    def _show_live_speed(self) -> None:
        tps = self.live_speed()
        if tps is not None:
            self.speed_label.setText(f"Speed: {tps:.1f} tokens/s" + (" received (remote)" if self.remote else ""))

    @Slot(str, float)
    def show_context(self, text: str, fraction: float) -> None:
        self.context_label.setText(f"Context: {text}" if text else "Context: –")
        self.context_label.setStyleSheet("color: #b36b00;" if fraction > 0.8 else "")

    @Slot(dict)
    def show_memory(self, msg: dict[str, Any]) -> None:
        """The engine's memory from a stats message or a reply's stats: current and peak."""
        if self.remote:
            return  # this machine's engine process is not where the model runs
        rss, peak = int(msg["rss_bytes"]), int(msg["peak_rss_bytes"])
        self.memory_label.setText(f"Engine memory: {rss / MiB:.0f} MiB (peak {peak / MiB:.0f} MiB)")


def remote_speed_text(stats: dict[str, Any]) -> str:
    """A server's reply speed: as received here, and the server's own (llama-server ``timings``) when it sent one."""
    text = f"Speed: {float(stats['tg_tps']):.1f} tokens/s received (remote)"
    timings = stats.get("server_timings") or {}
    server = timings.get("predicted_per_second")
    if isinstance(server, int | float) and server > 0:
        text += f", server {float(server):.1f}"
    return text
