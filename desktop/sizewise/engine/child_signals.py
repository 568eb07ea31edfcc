"""Starting engine processes so that a terminal's Ctrl+C reaches only the command, never them directly.

Why: a worker or job that dies mid-call on SIGINT leaves half-done work (a half-loaded model, a half-written
file); the command that started it catches Ctrl+C and ends it in order instead. Processes started inside
``children_ignore_sigint`` inherit "ignore SIGINT" (kept across exec; Python leaves an ignored SIGINT so).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
