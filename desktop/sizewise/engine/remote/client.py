"""A remote engine with the local ``EngineClient``'s commands and events, for the GUI.

Why the same shape: the chat, writing help, status bar and live metrics already follow the engine's events
(``loaded``, ``started``, ``token``, ``done``, ``failed``, ``tokenized``, ``unloaded``; engine/protocol.py). A
server that speaks them needs no second code path in any of those views, so a conversation goes on in the
same store whether its replies come from the local worker or from a server.

One thread, started on ``load``, runs the requests in the order they were sent (like the worker, one reply at
a time) and hands every event to ``on_event`` from that thread. The caller never blocks: commands only put
work on the queue, and ``stop`` shuts the running stream's socket (``HttpClient.stop_stream``), which ends
the reply at once and tells llama-server to stop generating. A reply still waiting is answered here,
``done``/``cancelled`` with no tokens, and never sent.

The API key lives only in this object's ``RemoteSession`` (an ``ApiKey``, whose ``repr`` hides it): it is not
written into any event, log line or settings file.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sizewise.core.sampling import SamplingParams
from sizewise.engine.protocol import GenerationStats, Message
from sizewise.engine.remote import ollama
from sizewise.engine.remote.http import CONNECT_TIMEOUT_S, ApiKey, RemoteError
from sizewise.engine.remote.memory import remote_memory
from sizewise.engine.remote.session import RemoteSession

EventCallback = Callable[[Message], None]
# Generation ids far above the local worker's, so an event of one can never be taken for the other's.
FIRST_REMOTE_ID = 1_000_000


@dataclass(frozen=True)
class Listing:
    """What "Connect to a server…" found: the address as Sizewise writes it, the models, the warning."""

    url: str
    kind: str
    models: list[str]
    warning: str | None
    encrypted: bool
    loopback: bool


def list_server(
    url: str, api_key: ApiKey | None, log_path: Path | None = None, timeout: float = CONNECT_TIMEOUT_S
) -> Listing:
    """Ask a server which models it serves (blocking: run it off the GUI thread). RemoteError says why not.

    Each request gets ``timeout`` seconds, not the reply stream's two minutes: a person waits in the dialog, and
    a host that accepts the connection but never answers should become a sentence soon.
    """
    session = RemoteSession(url, api_key=api_key, log_path=log_path, stall_timeout=timeout)
    ids = session.list_models()
    a = session.address
    return Listing(a.url, session.kind or "openai", ids, a.warning(), a.encrypted, a.loopback)


class RemoteEngineClient:
    """One server and one of its models at a time; see the module docstring."""

    def __init__(self, on_event: EventCallback, log_path: Path | None = None) -> None:
        self._on_event = on_event
        self._log_path = log_path
        self._ids = itertools.count(FIRST_REMOTE_ID)
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()  # waiting replies already answered ``cancelled`` here
        self._running: int | None = None
        self._stop_wanted: int | None = None  # the running reply a stop was asked for (see ``_generate``)
        self.session: RemoteSession | None = None  # touched by the thread only, ``stop`` aside
        self.ready_info: Message = {}

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        """No local process: the model runs on the server."""
        return None

    def start(self) -> None:
        if self.alive:
            return
        self._thread = threading.Thread(target=self._run, name="remote-engine", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 3.0) -> None:
        """Stop what runs, end the thread (a stopped stream returns at once)."""
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            session = self.session
        if session is not None:
            session.stop()
        self._queue.put(None)
        thread.join(timeout)
        self._thread = None
        self._queue = queue.Queue()

    # -- commands (return at once) ----------------------------------------------------------------
    def connect(self, url: str, model: str, api_key: ApiKey | None) -> None:
        """Use ``model`` on the server at ``url``: answered by ``loaded`` or ``load_failed``."""
        self.start()
        self._queue.put({"type": "load", "url": url, "model": model, "api_key": api_key})

    def unload(self) -> None:
        self._queue.put({"type": "unload"})

    def request_stats(self) -> None:
        """Nothing to sample: the server's memory is reported once, with ``loaded``."""

    def generate(
        self, *, sampling: SamplingParams, messages: list[dict[str, str]] | None = None, prompt: str | None = None
    ) -> int:
        if not self.alive:
            raise RuntimeError("Not connected to a server.")
        gen_id = next(self._ids)
        self._queue.put(
            {"type": "generate", "id": gen_id, "sampling": sampling, "messages": messages, "prompt": prompt}
        )
        return gen_id

    def send_raw(self, msg: Message) -> None:
        """``tokenize`` only (the chat's context meter); anything else has no meaning for a server."""
        if msg.get("type") == "tokenize":
            self._queue.put(dict(msg))

    def stop(self, gen_id: int | None = None) -> None:
        with self._lock:
            running, session = self._running, self.session
            if gen_id is not None and gen_id != running:
                self._cancelled.add(gen_id)  # waiting: answered when its turn comes, without sending it
                return
            if running is not None:
                self._stop_wanted = running
        if session is not None and running is not None:
            session.stop()

    # -- the thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            msg = self._queue.get()
            if msg is None:
                break
            try:
                self._handle(msg)
            except Exception as exc:  # a bug here must end the request, not the thread silently
                if msg.get("type") == "generate":
                    self._on_event({"type": "failed", "id": msg["id"], "message": f"The reply failed: {exc}"})
                elif msg.get("type") == "load":
                    self._on_event({"type": "load_failed", "message": f"Connecting failed: {exc}"})
        with self._lock:
            session, self.session = self.session, None
        if session is not None:
            session.close()

    def _handle(self, msg: Message) -> None:
        kind = msg["type"]
        if kind == "load":
            self._load(str(msg["url"]), str(msg["model"]), msg.get("api_key"))
        elif kind == "unload":
            with self._lock:
                session, self.session = self.session, None
            if session is not None:
                session.close()
            self._on_event({"type": "unloaded"})
        elif kind == "tokenize":
            session = self.session
            counts = session.count_tokens(list(msg["texts"])) if session is not None else None
            self._on_event({"type": "tokenized", "id": msg.get("id"), "counts": counts})
        elif kind == "generate":
            self._generate(msg)

    def _load(self, url: str, model: str, api_key: ApiKey | None) -> None:
        t0 = time.monotonic()
        with self._lock:
            old, self.session = self.session, None
        if old is not None:
            old.close()
        try:
            session = RemoteSession(url, model=model, api_key=api_key, log_path=self._log_path)
            info = session.connect()
            if info.kind == "ollama":  # connecting is loading: then /api/ps can say what the model takes
                ollama.load_model(session.http, info.model, timeout=session.http.stall_timeout)
        except RemoteError as exc:
            self._on_event({"type": "load_failed", "message": str(exc)})
            return
        memory = remote_memory(info, session.loaded_memory())
        with self._lock:
            self.session = session
        self.ready_info = {"remote": True, "url": info.url, "kind": info.kind}
        self._on_event(
            {
                "type": "loaded",
                "remote": True,
                "path": f"{info.url} · {info.model}",
                "url": info.url,
                "model": info.model,
                "server_kind": info.kind,
                "load_s": time.monotonic() - t0,
                "n_ctx": info.n_ctx or 2048,
                "n_ctx_train": info.n_ctx_train or info.n_ctx or 0,
                "facts": info.facts,  # what the server says about the model (Ollama's /api/show)
                "chat_mode": "chat",  # /v1/chat/completions: the server applies its model's template
                "buffers": [],
                "rss_bytes": 0,
                "peak_rss_bytes": 0,
                "encrypted": info.encrypted,
                "loopback": info.loopback,
                "warning": session.address.warning(),
                "memory": memory,
            }
        )

    def _generate(self, msg: Message) -> None:
        gen_id = int(msg["id"])
        sampling: SamplingParams = msg["sampling"]
        with self._lock:
            if gen_id in self._cancelled:
                self._cancelled.discard(gen_id)
                cancelled = True
            else:
                cancelled = False
                self._running = gen_id
            session = self.session
        if cancelled:
            self._on_event({"type": "done", "id": gen_id, "stats": GenerationStats.cancelled(0, 0).to_dict()})
            return
        if session is None:
            self._end(gen_id)
            self._on_event({"type": "failed", "id": gen_id, "message": "Not connected to a server: connect first."})
            return
        self._on_event({"type": "started", "id": gen_id})
        try:
            for piece in session.stream(sampling, messages=msg.get("messages"), prompt=msg.get("prompt")):
                # A stop that came before the request left (the stream clears the client's stop flag as it
                # opens) is applied at the first piece instead of being lost.
                if self._stop_wanted == gen_id:
                    session.stop()
                    continue
                self._on_event({"type": "token", "id": gen_id, "text": piece, "n": 1})
        except RemoteError as exc:
            self._end(gen_id)
            self._on_event({"type": "failed", "id": gen_id, "message": str(exc), "interrupted": True})
            return
        self._end(gen_id)
        stats = session.last_stats.to_dict() if session.last_stats is not None else {}
        stats["remote"] = True
        stats["server_timings"] = session.last_server_timings
        self._on_event({"type": "done", "id": gen_id, "stats": stats})

    def _end(self, gen_id: int) -> None:
        with self._lock:
            if self._running == gen_id:
                self._running = None
            if self._stop_wanted == gen_id:
                self._stop_wanted = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.shutdown()
