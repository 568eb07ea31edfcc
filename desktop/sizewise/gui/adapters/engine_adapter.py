"""Turns engine events (from the client's reader thread) into Qt signals on the GUI thread.

One adapter serves every user of its engine (the chat and writing help): their replies queue in the
worker, each user follows the events for its own generation ids, and ``stop(gen_id)`` stops one reply.
``waiting(gen_id)`` says whether a reply waits behind another; ``replyStarted`` says when it runs.

The engine is either the local worker process or a server ("Connect to a server…"): ``connect_remote``
switches to a ``RemoteEngineClient``, which speaks the same events, and ``load`` of a local file switches
back. Only the active client's events reach the signals, so the views never need to know which one runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.client import EngineClient
from sizewise.engine.remote.client import RemoteEngineClient
from sizewise.engine.remote.http import ApiKey


class EngineAdapter(QObject):
    ready = Signal(dict)  # {llama_cpp_version, gpu_offload, system_info, pid}
    loading = Signal(str)
    loaded = Signal(dict)
    loadFailed = Signal(str)
    unloaded = Signal()
    replyStarted = Signal(int)  # generation id: it left the queue and runs now
    token = Signal(int, str)
    tokenCount = Signal(int, int)  # generation id, tokens in the piece just sent by ``token``
    finished = Signal(int, dict)  # generation id, GenerationStats dict
    failed = Signal(int, str)
    stopForced = Signal(int)
    engineStopped = Signal(str)  # a sentence: "The engine stopped: …"
    stats = Signal(dict)
    tokenized = Signal(dict)  # {id, counts | None, message?}

    _event = Signal(object)
    _remote_event = Signal(object)

    def __init__(self, log_path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Queued even when emitted on the GUI thread (a reply stopped before it started is answered
        # inside ``stop``): a page's stop must not re-enter the page through its own finished slot.
        self._event.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self.client = EngineClient(self._event.emit, log_path=log_path)
        self._remote_event.connect(self._dispatch_remote, Qt.ConnectionType.QueuedConnection)
        self.remote = RemoteEngineClient(self._remote_event.emit, log_path=log_path)
        self.is_remote = False  # replies, tokens and unloads go to the server, not the local worker
        self.model_path: str | None = None
        self.load_params: LoadParams | None = None
        self.loaded_info: dict[str, Any] = {}
        self.generating: int | None = None  # the oldest reply not yet ended (running, or next to run)
        self._replies: list[int] = []  # every reply not yet ended, in the order they run
        self._reload_after_force = False

    # -- commands (all return at once) -------------------------------------------------------------
    def start(self) -> None:
        self.client.start()

    def load(self, path: str, params: LoadParams) -> None:
        if self.is_remote:  # back to a local file: the server connection is let go (its events are dropped)
            self.is_remote = False
            self.remote.unload()
        self.model_path, self.load_params = path, params
        self.loaded_info = {}
        self.loading.emit(path)
        self.client.load(path, params)

    def connect_remote(self, url: str, model: str, api_key: ApiKey | None) -> None:
        """Use ``model`` on the server at ``url`` from now on; answered by ``loaded`` or ``loadFailed``.

        A local model is unloaded first (its memory is given back; its ``unloaded`` event is not passed on, as
        the engine is the server's by then). The worker process itself stays, warm for the next local load.
        """
        if not self.is_remote and self.loaded_info and self.client.alive:
            self.client.unload()
        self.is_remote = True
        self.model_path, self.load_params = f"{url} · {model}", None
        self.loaded_info = {}
        self.loading.emit(self.model_path)
        self.remote.connect(url, model, api_key)

    def unload(self) -> None:
        self.loaded_info = {}
        if self.is_remote and self.remote.alive:
            self.remote.unload()
        elif not self.is_remote and self.client.alive:
            self.client.unload()
        else:
            self.unloaded.emit()

    def generate(
        self, sampling: SamplingParams, *, messages: list[dict[str, str]] | None = None, prompt: str | None = None
    ) -> int:
        """Send a reply: it waits behind those sent before it (``waiting``); ``replyStarted`` says when it runs."""
        client = self.remote if self.is_remote else self.client
        gen_id = client.generate(sampling=sampling, messages=messages, prompt=prompt)
        self._replies.append(gen_id)
        self.generating = self._replies[0]
        return gen_id

    def stop(self, gen_id: int | None = None) -> None:
        """Stop reply ``gen_id`` (None: every reply). One that waits ends at once, without ever running."""
        (self.remote if self.is_remote else self.client).stop(gen_id)

    def waiting(self, gen_id: int) -> bool:
        """Whether reply ``gen_id`` waits for another reply on this engine to end before it can start."""
        return gen_id in self._replies and self._replies[0] != gen_id

    def _ended(self, gen_id: int | None) -> None:
        if gen_id in self._replies:
            self._replies.remove(gen_id)
        self.generating = self._replies[0] if self._replies else None

    def tokenize(self, request_id: str, texts: list[str]) -> None:
        """Token counts with the loaded model's tokenizer; answered by ``tokenized``."""
        client = self.remote if self.is_remote else self.client
        client.send_raw({"type": "tokenize", "id": request_id, "texts": texts})

    def request_stats(self) -> None:
        if self.client.alive and not self.is_remote:  # a server's memory came with its ``loaded`` event
            self.client.request_stats()

    def shutdown(self) -> None:
        self.client.shutdown()
        self.remote.shutdown()

    @property
    def is_loaded(self) -> bool:
        return bool(self.loaded_info)

    # -- events -----------------------------------------------------------------------------------
    @Slot(object)
    def _dispatch_remote(self, msg: dict[str, Any]) -> None:
        if not self.is_remote:
            return  # the server was let go for a local model: what it still says is about nothing shown
        if msg.get("type") == "unloaded":
            self.is_remote = False
        self._handle(msg)

    @Slot(object)
    def _dispatch(self, msg: dict[str, Any]) -> None:
        """The local worker's events; while a server is the engine, only the worker's own upkeep."""
        kind = msg.get("type")
        if self.is_remote and kind != "ready":
            if kind == "engine_stopped":
                self.client.shutdown()  # reap it quietly: the chat runs on the server
            return
        self._handle(msg)

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "ready":
            self.ready.emit(msg)
        elif kind == "loaded":
            self.loaded_info = msg
            self.loaded.emit(msg)
        elif kind == "load_failed":
            self.loaded_info = {}
            self.loadFailed.emit(str(msg["message"]))
        elif kind == "unloaded":
            self.unloaded.emit()
        elif kind == "started":
            if msg.get("id") in self._replies:
                self.replyStarted.emit(int(msg["id"]))
        elif kind == "token":
            self.tokenCount.emit(int(msg["id"]), int(msg.get("n", 1)))
            self.token.emit(int(msg["id"]), str(msg["text"]))
        elif kind == "done":
            self._ended(msg.get("id"))
            self.finished.emit(int(msg["id"]), dict(msg["stats"]))
        elif kind == "failed":
            self._ended(msg.get("id"))
            self.failed.emit(int(msg.get("id") or 0), str(msg["message"]))
        elif kind == "stats":
            self.stats.emit(msg)
        elif kind == "tokenized":
            self.tokenized.emit(msg)
        elif kind == "stop_forced":
            # Stop arrived during one long llama.cpp call: the worker was killed. Reload the model
            # in a fresh worker so the user can go on; the chat keeps what was generated. Replies that
            # waited behind it were answered ``failed`` by the client.
            self._ended(msg.get("id"))
            self._reload_after_force = True
            self.stopForced.emit(int(msg["id"]))
        elif kind == "engine_exited":
            self._replies.clear()
            self.generating = None
            if self._reload_after_force:
                self._reload_after_force = False
                self.client.shutdown()
                if self.model_path and self.load_params:
                    self.load(self.model_path, self.load_params)
        elif kind == "engine_stopped":
            self._replies.clear()
            self.generating = None
            self.loaded_info = {}
            self.client.shutdown()
            self.engineStopped.emit(f"The engine stopped: {msg.get('reason')}.")
