"""Turns engine events (from the client's reader thread) into Qt signals on the GUI thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.client import EngineClient


class EngineAdapter(QObject):
    ready = Signal(dict)  # {llama_cpp_version, gpu_offload, system_info, pid}
    loading = Signal(str)
    loaded = Signal(dict)
    loadFailed = Signal(str)
    unloaded = Signal()
    token = Signal(int, str)
    tokenCount = Signal(int, int)  # generation id, tokens in the piece just sent by ``token``
    finished = Signal(int, dict)  # generation id, GenerationStats dict
    failed = Signal(int, str)
    stopForced = Signal(int)
    engineStopped = Signal(str)  # a sentence: "The engine stopped: …"
    stats = Signal(dict)
    tokenized = Signal(dict)  # {id, counts | None, message?}

    _event = Signal(object)

    def __init__(self, log_path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._event.connect(self._dispatch)
        self.client = EngineClient(self._event.emit, log_path=log_path)
        self.model_path: str | None = None
        self.load_params: LoadParams | None = None
        self.loaded_info: dict[str, Any] = {}
        self.generating: int | None = None
        self._reload_after_force = False

    # -- commands (all return at once) -------------------------------------------------------------
    def start(self) -> None:
        self.client.start()

    def load(self, path: str, params: LoadParams) -> None:
        self.model_path, self.load_params = path, params
        self.loaded_info = {}
        self.loading.emit(path)
        self.client.load(path, params)

    def unload(self) -> None:
        self.loaded_info = {}
        if self.client.alive:
            self.client.unload()
        else:
            self.unloaded.emit()

    def generate(
        self, sampling: SamplingParams, *, messages: list[dict[str, str]] | None = None, prompt: str | None = None
    ) -> int:
        self.generating = self.client.generate(sampling=sampling, messages=messages, prompt=prompt)
        return self.generating

    def stop(self) -> None:
        self.client.stop()

    def tokenize(self, request_id: str, texts: list[str]) -> None:
        """Token counts with the loaded model's tokenizer; answered by ``tokenized``."""
        self.client.send_raw({"type": "tokenize", "id": request_id, "texts": texts})

    def request_stats(self) -> None:
        if self.client.alive:
            self.client.request_stats()

    def shutdown(self) -> None:
        self.client.shutdown()

    @property
    def is_loaded(self) -> bool:
        return bool(self.loaded_info)

    # -- events -----------------------------------------------------------------------------------
    @Slot(object)
    def _dispatch(self, msg: dict[str, Any]) -> None:
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
        elif kind == "token":
            self.tokenCount.emit(int(msg["id"]), int(msg.get("n", 1)))
            self.token.emit(int(msg["id"]), str(msg["text"]))
        elif kind == "done":
            self.generating = None
            self.finished.emit(int(msg["id"]), dict(msg["stats"]))
        elif kind == "failed":
            self.generating = None
            self.failed.emit(int(msg.get("id") or 0), str(msg["message"]))
        elif kind == "stats":
            self.stats.emit(msg)
        elif kind == "tokenized":
            self.tokenized.emit(msg)
        elif kind == "stop_forced":
            # Stop arrived during one long llama.cpp call: the worker was killed. Reload the model
            # in a fresh worker so the user can go on; the chat keeps what was generated.
            self.generating = None
            self._reload_after_force = True
            self.stopForced.emit(int(msg["id"]))
        elif kind == "engine_exited":
            if self._reload_after_force:
                self._reload_after_force = False
                self.client.shutdown()
                if self.model_path and self.load_params:
                    self.load(self.model_path, self.load_params)
        elif kind == "engine_stopped":
            self.generating = None
            self.loaded_info = {}
            self.client.shutdown()
            self.engineStopped.emit(f"The engine stopped: {msg.get('reason')}.")
