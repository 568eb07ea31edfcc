"""The assistant reply being generated, saved to the store while it streams.

Kept apart from the store because it is about timing (how often to write a growing text), not
about tables: it only needs somewhere to write the text, given here as the small
:class:`ReplyTarget` protocol that :class:`~sizewise.core.chat.store.ConversationStore` meets.

* **Replies are saved while they stream.** The store inserts the assistant row with status
  ``streaming``; :class:`StreamingReply` then writes the growing text every ``FLUSH_INTERVAL_S``
  (or every ``FLUSH_PIECES`` pieces). A killed app loses at most that much; on the next open, rows
  whose writer process is gone become ``interrupted`` and are kept (see ``opening.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol

from sizewise.core.chat.opening import StoreError
from sizewise.core.chat.records import Status

FLUSH_INTERVAL_S = 0.25
FLUSH_PIECES = 16


class ReplyTarget(Protocol):
    """Where a streaming reply is written: the store's ``update_message``."""

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        status: Status | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None: ...


@dataclass
class StreamingReply:
    """The assistant reply being generated, saved as it grows.

    ``append`` buffers pieces and writes the whole text so far once ``interval_s`` has passed or
    ``every_pieces`` pieces have arrived: each write is one small transaction, so a crash loses at
    most that much. A write that fails (say the file became locked for a moment) is retried on the
    next piece; :meth:`finish` raises StoreError if the text still cannot be saved, and ``text``
    keeps everything for the caller either way.

    Use it as a context manager: leaving the block by an exception marks the reply interrupted.
    """

    store: ReplyTarget
    message_id: int
    text: str = ""
    interval_s: float = FLUSH_INTERVAL_S
    every_pieces: int = FLUSH_PIECES
    clock: Callable[[], float] = time.monotonic
    saved_chars: int = 0
    flushes: int = 0
    last_error: StoreError | None = None
    finished: bool = False
    _pending: int = field(default=0, repr=False)
    _last_flush: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.saved_chars = len(self.text)
        self._last_flush = self.clock()

    def append(self, piece: str) -> None:
        if not piece:
            return
        self.text += piece
        self._pending += 1
        if self._pending >= self.every_pieces or self.clock() - self._last_flush >= self.interval_s:
            self.flush()

    def flush(self) -> bool:
        """Write the text so far now; False (and ``last_error`` set) if the store refused."""
        if self.saved_chars == len(self.text):
            self._pending = 0
            return True
        try:
            self.store.update_message(self.message_id, content=self.text)
        except StoreError as exc:
            self.last_error = exc
            return False
        self.saved_chars = len(self.text)
        self._pending = 0
        self._last_flush = self.clock()
        self.flushes += 1
        self.last_error = None
        return True

    def finish(
        self, status: Literal["complete", "interrupted"] = "complete", stats: dict[str, Any] | None = None
    ) -> None:
        self.store.update_message(self.message_id, content=self.text, status=status, stats=stats)
        self.saved_chars = len(self.text)
        self.finished = True

    def __enter__(self) -> StreamingReply:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.finished:
            with contextlib.suppress(StoreError):
                self.finish("interrupted")
