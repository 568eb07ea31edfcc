"""A job in a child process: the parent starts it, hears its events on a reader thread, and can end it.

The protocol is the engine's (plain dicts over a multiprocessing pipe, engine/protocol.py). A job function
in the child takes ``(payload, emit)``; it emits ``progress`` events as it likes and returns a dict, sent as
``finished``. A ``JobError`` becomes ``failed`` with its sentence; any other exception becomes ``failed``
with the exception's text. The parent adds two events of its own: ``cancelled`` (after ``cancel``) and
``died`` (the process ended without finishing, with the reason from its exit status).

The child is started by module and function *name* (``run_job`` imports it there), so importing this
module does not import llama_cpp into the GUI process.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from sizewise.engine.client import describe_exit
from sizewise.engine.protocol import Message

Emit = Callable[[Message], None]
TERMINATE_GRACE_S = 1.0


class JobError(Exception):
    """A sentence for the user: why the job could not be done."""


def run_job(conn: Connection, module: str, function: str, payload: dict[str, Any], log_path: str | None) -> None:
    """Child-side entry: run ``module.function(payload, emit)`` and report how it ended.

    SIGINT is ignored here: a terminal's Ctrl+C reaches the parent, which cancels the job in order (and
    deletes what it wrote) instead of the child dying mid-write on its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    if log_path:
        sys.stdout = sys.stderr = open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    else:
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    lock = threading.Lock()

    def emit(msg: Message) -> None:
        with lock:
            conn.send(msg)

    try:
        func = getattr(importlib.import_module(module), function)
        result = func(payload, emit)
        emit({"type": "finished", **(result or {})})
    except JobError as exc:
        emit({"type": "failed", "message": str(exc)})
    except Exception as exc:  # one sentence for the user; the traceback goes to the log
        traceback.print_exc()
        emit({"type": "failed", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """End this job if the app that started it dies (killed, crashed): an orphan would go on writing a file
    nobody will rename, or hold gigabytes of RAM. Polling the parent id works on every POSIX system and does
    not depend on which thread started the job (Linux's PR_SET_PDEATHSIG would)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class JobProcess:
    """Parent side of one job. ``on_event`` runs on the reader thread; exactly one final event is delivered
    (``finished``, ``failed``, ``cancelled`` or ``died``), after which ``on_done`` (if given) runs."""

    FINAL = ("finished", "failed", "cancelled", "died")

    def __init__(
        self,
        module: str,
        function: str,
        payload: dict[str, Any],
        on_event: Callable[[Message], None],
        *,
        name: str = "sizewise-job",
        log_path: str | None = None,
        on_done: Callable[[Message], None] | None = None,
        terminate_grace_s: float = TERMINATE_GRACE_S,
    ) -> None:
        self._target = (module, function, payload, log_path)
        self._grace_s = terminate_grace_s
        self._on_event = on_event
        self._on_done = on_done
        self._name = name
        self._proc: BaseProcess | None = None
        self._reader: threading.Thread | None = None
        self._cancelled = threading.Event()
        self._final: Message | None = None
        self._final_lock = threading.Lock()
        self.done = threading.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def result(self) -> Message | None:
        return self._final

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=run_job, args=(child, *self._target), name=self._name, daemon=True)
        proc.start()
        child.close()
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read, args=(proc, parent), name=f"{self._name}-reader", daemon=True
        )
        self._reader.start()

    def _deliver_final(self, msg: Message) -> None:
        with self._final_lock:
            if self._final is not None:
                return
            self._final = msg
        try:
            self._on_event(msg)
            if self._on_done is not None:
                self._on_done(msg)
        finally:
            self.done.set()

    def _read(self, proc: BaseProcess, conn: Connection) -> None:
        finished: Message | None = None
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg.get("type") in ("finished", "failed"):
                finished = msg
                continue  # delivered after the process has exited, so its files are closed
            if not self._cancelled.is_set():
                self._on_event(msg)
        conn.close()
        proc.join()
        if self._cancelled.is_set():
            self._deliver_final({"type": "cancelled"})
        elif finished is not None:
            self._deliver_final(finished)
        else:
            self._deliver_final({"type": "died", "message": f"The job ended early: {describe_exit(proc.exitcode)}."})

    def cancel(self) -> None:
        """End the job now. Its final event is ``cancelled`` unless it had already finished."""
        proc = self._proc
        if proc is None or self.done.is_set():
            return
        self._cancelled.set()
        if proc.is_alive():
            proc.terminate()
            proc.join(self._grace_s)
            if proc.is_alive():
                proc.kill()

    def wait(self, timeout: float | None = None) -> Message | None:
        """The final event once it has been delivered (``on_event`` has returned), else None at the timeout."""
        return self._final if self.done.wait(timeout) else None
