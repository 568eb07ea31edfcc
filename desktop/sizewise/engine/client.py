"""Parent side of the engine: starts a worker process and turns its messages into callbacks.

The client never blocks its caller on the worker: commands are one ``send`` on a pipe, and
events arrive on a reader thread that hands each one to ``on_event``. The GUI adapter turns that
callback into a Qt signal; the CLI puts events on a queue. If the worker dies, the reader sees
the pipe close and reports ``engine_stopped`` with the reason read from the exit status.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.entry import run_worker
from sizewise.engine.protocol import STOP_GRACE_S, Message

EventCallback = Callable[[Message], None]

_SIGNAL_REASONS = {
    signal.SIGKILL: "it was killed (out of memory, or ended by another program)",
    signal.SIGSEGV: "it crashed (segmentation fault in llama.cpp)",
    signal.SIGABRT: "llama.cpp aborted",
    signal.SIGTERM: "it was terminated",
}
if hasattr(signal, "SIGBUS"):
    _SIGNAL_REASONS[signal.SIGBUS] = "it crashed (bus error: the model file may have changed on disk)"


def describe_exit(exitcode: int | None, last_log: str = "") -> str:
    if exitcode is None:
        return "it stopped responding"
    if exitcode > 0 and last_log:
        return f"it exited with status {exitcode} ({last_log})"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"it was ended by signal {-exitcode}"
        reason = _SIGNAL_REASONS.get(sig, f"it was ended by {sig.name}")
        if sig == signal.SIGABRT and last_log:
            reason += f" ({last_log})"
        return reason
    return f"it exited with status {exitcode}"


class EngineClient:
    """One worker process; at most one model loaded in it at a time."""

    def __init__(self, on_event: EventCallback, log_path: Path | None = None) -> None:
        self._on_event = on_event
        self._log_path = log_path
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._reader: threading.Thread | None = None
        self._closing = False
        self._active_gen: int | None = None
        self._stop_timer: threading.Timer | None = None
        self.ready_info: Message = {}

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        if self.alive:
            return
        if self._proc is not None:  # a worker that died or was killed: reap it first
            self.shutdown()
        ctx = mp.get_context("spawn")  # fork would copy the GUI's threads and Qt state
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=run_worker,
            args=(child, str(self._log_path) if self._log_path else None),
            name="sizewise-engine",
            daemon=True,
        )
        self._closing = False
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self._reader = threading.Thread(target=self._read_loop, args=(proc, parent), name="engine-reader", daemon=True)
        self._reader.start()

    def shutdown(self, timeout: float = 3.0) -> None:
        """Ask the worker to exit; terminate it if it does not. Joins the reader thread."""
        self._closing = True
        self._cancel_stop_timer()
        proc, conn, reader = self._proc, self._conn, self._reader
        if proc is None:
            return
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send({"type": "shutdown"})
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)
        if conn is not None:
            conn.close()
        proc.close()
        self._proc = self._conn = self._reader = None
        self._active_gen = None

    # -- commands ---------------------------------------------------------------------------------
    def _send(self, msg: Message) -> None:
        if self._conn is None or not self.alive:
            raise RuntimeError("The engine is not running.")
        with self._lock:
            self._conn.send(msg)

    def load(self, path: str | Path, params: LoadParams) -> None:
        self.start()
        self._send({"type": "load", "path": str(path), "load": params.to_dict()})

    def unload(self) -> None:
        self._send({"type": "unload"})

    def request_stats(self) -> None:
        self._send({"type": "stats"})

    def generate(
        self,
        *,
        sampling: SamplingParams,
        messages: list[dict[str, str]] | None = None,
        prompt: str | None = None,
    ) -> int:
        """Start a reply: ``messages`` for chat mode, ``prompt`` for plain completion mode."""
        gen_id = next(self._ids)
        msg: dict[str, Any] = {"type": "generate", "id": gen_id, "sampling": sampling.to_dict()}
        if messages is not None:
            msg.update(mode="chat", messages=messages)
        else:
            msg.update(mode="completion", prompt=prompt or "")
        self._active_gen = gen_id
        self._send(msg)
        return gen_id

    def send_raw(self, msg: Message) -> None:
        """For protocol extensions (benchmarks) that the client has no helper for."""
        self._send(msg)

    def stop(self) -> None:
        """Stop the running reply. If the worker has not finished within STOP_GRACE_S (it can be
        deep inside one long llama.cpp call), it is terminated and ``stop_forced`` is reported."""
        gen_id = self._active_gen
        if gen_id is None or not self.alive:
            return
        try:
            self._send({"type": "stop", "id": gen_id})
        except (OSError, RuntimeError):
            return
        self._cancel_stop_timer()
        timer = threading.Timer(STOP_GRACE_S, self._force_stop, args=(gen_id,))
        timer.daemon = True
        timer.name = "engine-stop-watchdog"
        self._stop_timer = timer
        timer.start()

    # -- internals --------------------------------------------------------------------------------
    def _cancel_stop_timer(self) -> None:
        timer, self._stop_timer = self._stop_timer, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()

    def _force_stop(self, gen_id: int) -> None:
        if self._active_gen != gen_id or self._proc is None:
            return
        self._closing = True  # the reader must not report this exit as a crash
        self._proc.kill()
        self._on_event({"type": "stop_forced", "id": gen_id})

    def _read_loop(self, proc: BaseProcess, conn: Connection) -> None:
        last_error = ""
        while True:
            try:
                msg: Message = conn.recv()
            except (EOFError, OSError):
                break
            kind = msg.get("type")
            if kind == "ready":
                self.ready_info = msg
            elif kind in ("done", "failed") and msg.get("id") == self._active_gen:
                self._active_gen = None
                timer, self._stop_timer = self._stop_timer, None
                if timer is not None:
                    timer.cancel()
            elif kind in ("load_failed", "fatal"):
                last_error = str(msg.get("message", ""))
                if kind == "fatal":
                    continue
            self._on_event(msg)
        proc.join(2.0)
        exitcode = proc.exitcode
        forced = self._closing
        gen = self._active_gen
        self._active_gen = None
        if not forced:
            reason = describe_exit(exitcode, last_error)
            self._on_event({"type": "engine_stopped", "reason": reason, "exitcode": exitcode, "generation": gen})
        else:
            self._on_event({"type": "engine_exited", "exitcode": exitcode})
