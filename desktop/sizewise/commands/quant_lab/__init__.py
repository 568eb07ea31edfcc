"""The quant lab's commands: ``quantize`` (make a smaller quant) and ``quality`` (what a quant costs)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

from sizewise.engine.protocol import Message

INTERRUPTED = 130


def wait_cancellable(wait: Callable[[float], Message | None], cancel: Callable[[], None]) -> Message | None:
    """Wait for a job's final event; Ctrl+C cancels the job first and then exits 130 (via KeyboardInterrupt)."""
    try:
        while True:
            final = wait(0.2)
            if final is not None:
                return final
    except KeyboardInterrupt:
        print("\nCancelling…", file=sys.stderr, flush=True)
        cancel()
        raise


def restore_default_sigint() -> None:
    """A CLI started from a script with '&' inherits SIGINT ignored; a person's Ctrl+C must still work."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
