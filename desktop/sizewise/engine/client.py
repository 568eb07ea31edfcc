"""Parent side of the engine: starts a worker process and turns its messages into callbacks.

The client never blocks its caller on the worker: commands are one ``send`` on a pipe, and
events arrive on a reader thread that hands each one to ``on_event``. The GUI adapter turns that
callback into a Qt signal; the CLI puts events on a queue. If the worker dies, the reader sees
the pipe close and reports ``engine_stopped`` with the reason read from the exit status.

One engine can have several users (the chat and writing help share the loaded model). Their replies
queue in the worker, one runs at a time, and the client keeps track of each one it sent until it is
answered: which still wait and which one runs (the worker says ``started``). ``stop(gen_id)`` reaches
the reply it names: a waiting one is settled at once (``done``, ``cancelled``, no tokens; the worker,
told too, never starts it), the running one is interrupted, and only for the running one does the
watchdog arm that terminates a worker which does not stop within STOP_GRACE_S.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_exit
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.entry import run_worker
from sizewise.engine.protocol import STOP_GRACE_S, GenerationStats, Message

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
        # The replies sent and not yet answered, oldest first: "waiting" (not started, as far as the
        # reader has seen), "running", or "settled" (stopped before it started and already answered
        # here; the worker's own answer for it is dropped). Guarded by ``_state_lock``: the caller,
        # the reader thread and the stop watchdog all change them.
        self._state_lock = threading.Lock()
        self._replies: dict[int, str] = {}
        self._stopping: set[int] = set()  # replies a stop was sent for
        self._running: int | None = None
        self._memory = (0, 0)  # the worker's last reported (rss, peak), for replies settled here
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
        # Wait on the exit sentinel, not join(): the reader thread reaps the worker as it sees EOF, and
        # two threads reaping one child race (the loser's waitpid gets ECHILD and reports it alive, so a
        # worker that had exited cleanly got killed).
        if not wait_for_exit([proc.sentinel], timeout):
            proc.kill()
            wait_for_exit([proc.sentinel], 1.0)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)
        proc.join(1.0)  # reaps it here when the reader thread did not
        if conn is not None:
            conn.close()
        with contextlib.suppress(ValueError):  # still reaped by a reader thread that outlived its join
            proc.close()
        self._proc = self._conn = self._reader = None
        with self._state_lock:
            self._forget_replies()

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
        """Start a reply: ``messages`` for chat mode, ``prompt`` for plain completion mode.

        It queues behind replies sent before it (of this or another user of the engine) and starts when
        they are done; ``started`` says when.
        """
        gen_id = next(self._ids)
        msg: dict[str, Any] = {"type": "generate", "id": gen_id, "sampling": sampling.to_dict()}
        if messages is not None:
            msg.update(mode="chat", messages=messages)
        else:
            msg.update(mode="completion", prompt=prompt or "")
        with self._state_lock:
            self._replies[gen_id] = "waiting"
        try:
            self._send(msg)
        except BaseException:
            with self._state_lock:
                self._replies.pop(gen_id, None)
            raise
        return gen_id

    def send_raw(self, msg: Message) -> None:
        """For protocol extensions (benchmarks) that the client has no helper for."""
        self._send(msg)

    def stop(self, gen_id: int | None = None) -> None:
        """Stop reply ``gen_id``, or with None every reply of this client that has not ended.

        A reply still waiting for its turn is answered at once (``done``, ``finish_reason``
        ``cancelled``, no tokens) and never starts. The running reply is interrupted; if the worker
        has not finished it within STOP_GRACE_S (it can be deep inside one long llama.cpp call), the
        worker is terminated and ``stop_forced`` is reported. A reply that already ended is left alone.
        """
        if not self.alive:
            return
        with self._state_lock:
            wanted = list(self._replies) if gen_id is None else [gen_id]
            targets = [g for g in wanted if self._replies.get(g) in ("waiting", "running") and g not in self._stopping]
            self._stopping.update(targets)
            settled = [g for g in targets if self._replies[g] == "waiting"]
            for g in settled:
                self._replies[g] = "settled"
            running = self._running if self._running in targets else None
        for g in targets:
            try:
                self._send({"type": "stop", "id": g})
            except (OSError, RuntimeError):  # the worker is gone: the reader reports that
                return
        if running is not None:
            self._arm_watchdog(running)
        for g in settled:
            self._on_event({"type": "done", "id": g, "stats": self._cancelled_stats()})

    # -- internals --------------------------------------------------------------------------------
    def _cancelled_stats(self) -> dict[str, Any]:
        rss, peak = self._memory
        return GenerationStats.cancelled(rss, peak).to_dict()

    def _arm_watchdog(self, gen_id: int) -> None:
        """Terminate the worker if reply ``gen_id``, running and told to stop, has not ended in time."""
        self._cancel_stop_timer()
        timer = threading.Timer(STOP_GRACE_S, self._force_stop, args=(gen_id,))
        timer.daemon = True
        timer.name = "engine-stop-watchdog"
        self._stop_timer = timer
        timer.start()

    def _cancel_stop_timer(self, join: bool = True) -> None:
        timer, self._stop_timer = self._stop_timer, None
        if timer is not None:
            timer.cancel()
            if join and timer is not threading.current_thread():
                timer.join()

    def _forget_replies(self) -> tuple[int | None, list[int]]:
        """Clear the bookkeeping (under ``_state_lock``): (the running reply, the others not answered)."""
        running = self._running
        if running is not None and self._replies.get(running) not in ("waiting", "running"):
            running = None
        others = [g for g, state in self._replies.items() if state != "settled" and g != running]
        self._replies.clear()
        self._stopping.clear()
        self._running = None
        return running, others

    def _force_stop(self, gen_id: int) -> None:
        with self._state_lock:
            if self._running != gen_id or self._proc is None:
                return
            _, others = self._forget_replies()
            self._closing = True  # the reader must not report this exit as a crash
            proc = self._proc
        # Said before the kill, so that they come before the reader's ``engine_exited``.
        self._on_event({"type": "stop_forced", "id": gen_id})
        for g in others:  # replies queued behind it are lost with the worker: they end here
            self._on_event(
                {
                    "type": "failed",
                    "id": g,
                    "message": "The engine was restarted to stop another reply before this one began; run it again.",
                }
            )
        proc.kill()

    def _track(self, msg: Message) -> bool:
        """Follow the replies' progress from one worker event; False for an event to drop (it is for a
        reply already settled here)."""
        kind = msg.get("type")
        if "rss_bytes" in msg and "peak_rss_bytes" in msg:
            self._memory = (int(msg["rss_bytes"]), int(msg["peak_rss_bytes"]))
        elif isinstance(msg.get("stats"), dict) and "rss_bytes" in msg["stats"]:
            self._memory = (int(msg["stats"]["rss_bytes"]), int(msg["stats"].get("peak_rss_bytes", 0)))
        gen_id = msg.get("id")
        if kind not in ("started", "token", "done", "failed") or not isinstance(gen_id, int):
            return True
        arm = False
        with self._state_lock:
            state = self._replies.get(gen_id)
            if state is None:
                return True
            if kind == "started":
                self._running = gen_id
                if state == "waiting":
                    self._replies[gen_id] = "running"
                arm = gen_id in self._stopping  # a stop sent before the reader saw it start
            elif kind in ("done", "failed"):
                del self._replies[gen_id]
                self._stopping.discard(gen_id)
                if self._running == gen_id:
                    self._running = None
                    self._cancel_stop_timer(join=False)
        if arm:
            self._arm_watchdog(gen_id)
        return state != "settled"

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
            elif kind in ("load_failed", "fatal"):
                last_error = str(msg.get("message", ""))
                if kind == "fatal":
                    continue
            if not self._track(msg):
                continue
            self._on_event(msg)
        proc.join(2.0)
        exitcode = proc.exitcode
        forced = self._closing
        with self._state_lock:
            running, others = self._forget_replies()
        gen = running if running is not None else (others[0] if others else None)
        if not forced:
            reason = describe_exit(exitcode, last_error)
            self._on_event({"type": "engine_stopped", "reason": reason, "exitcode": exitcode, "generation": gen})
        else:
            self._on_event({"type": "engine_exited", "exitcode": exitcode})
