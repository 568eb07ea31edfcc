"""A comparison's engine that is a model on a server: the same signals as a local ``CompareEngine``.

Why a subclass of ``CompareEngine`` and not a second runner path: the runner sequences engines by their
signals (``settled``, ``stepDone``), and ``BenchAdapter`` already speaks to a server through
``connect_remote`` (engine/remote/client.py: the chat's remote engine). So a server run is started by
connecting instead of starting a worker, asked like any engine, and closed by letting the connection go;
nothing is loaded on this machine, so there is no fit check, no memory prediction and no benchmark (its
step fails with a sentence that says why). What the server says — its model, facts, timings and memory —
goes into the run's ``RunResult.remote``, as ``sizewise compare --server`` does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Slot

from sizewise.core.compare.plan import RunSpec
from sizewise.core.compare.results import RunResult
from sizewise.engine.bench import BenchRequest
from sizewise.engine.remote.http import ApiKey
from sizewise.gui.adapters.bench_adapter import BenchAdapter
from sizewise.gui.compare.engine_pool import CompareEngine

NO_BENCH = "benchmarks run on models on this machine; a server's speed is its reply's"


def split_server(text: str) -> tuple[str, str]:
    """``URL#MODEL`` → (URL, MODEL), as the view writes a server run."""
    url, _, model = text.partition("#")
    return url, model


class RemoteCompareEngine(CompareEngine):
    """A model on a server as one of a comparison's engines; see the module docstring."""

    def __init__(
        self, spec: RunSpec, *, api_key: ApiKey | None, log_path: Path | None, parent: QObject | None = None
    ) -> None:
        super().__init__(spec, budget=None, log_path=log_path, parent=parent)
        self.api_key = api_key

    @property
    def pid(self) -> int | None:
        return None  # no process here

    def start(self) -> None:
        a = BenchAdapter(log_path=self.log_path, parent=self)
        self.adapter = a
        a.loaded.connect(self._on_loaded)
        a.loadFailed.connect(self._on_load_failed)
        a.token.connect(self._on_token)
        a.finished.connect(self._on_finished)
        a.failed.connect(self._on_failed)
        url, model = split_server(self.spec.server)
        self.progress.emit(f"Connecting to {model} on {url}…")
        self._load_t0 = time.monotonic()
        a.connect_remote(url, model, self.api_key)  # no worker is started: the server is the engine

    def bench(self, r: RunResult, request: BenchRequest) -> None:
        self.result = r
        self._step_failed(NO_BENCH)

    @Slot(int, dict)
    def _on_finished(self, gen_id: int, stats: dict[str, Any]) -> None:
        r = self.result
        if r is not None and gen_id == self._gen_id:
            self._note_server(r, stats.get("server_timings"))
        super()._on_finished(gen_id, stats)

    @Slot(int, str)
    def _on_failed(self, gen_id: int, message: str) -> None:
        r = self.result
        if r is not None:
            self._note_server(r, None)
        if r is not None and r.text:  # the text that came stays in its panel; no figures for a cut reply
            message = f"{message} The reply so far is kept, marked interrupted."
            assert r.remote is not None
            r.remote["interrupted"] = True
        super()._on_failed(gen_id, message)

    def _note_server(self, r: RunResult, timings: Any) -> None:
        """What the server said about this run: its model and facts (from ``loaded``), timings and memory."""
        loaded = self.loaded or {}
        r.remote = {
            "server": {
                "url": loaded.get("url"),
                "model": loaded.get("model"),
                "kind": loaded.get("server_kind"),
                "facts": loaded.get("facts") or {},
            },
            "server_timings": timings if isinstance(timings, dict) else None,
            "memory": loaded.get("memory"),
        }

    def remote_label(self) -> str:
        loaded = self.loaded or {}
        return f"{loaded.get('model')} @ {loaded.get('url')}" if loaded else self.spec.label or self.spec.server
