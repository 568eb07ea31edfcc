"""A blocking façade over EngineClient for the CLI, benchmarks and tests.

The GUI never uses this: it listens to events. Here the events go on a queue and each call
waits for the answer it needs, with a timeout so a wedged worker cannot hang a script.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.client import EngineClient
from sizewise.engine.protocol import GenerationStats, Message


class EngineError(RuntimeError):
    """A sentence for the user: why loading or generating failed, or why the engine stopped."""


class EngineSession:
    def __init__(self, log_path: Path | None = None) -> None:
        self.events: queue.Queue[Message] = queue.Queue()
        self.client = EngineClient(self.events.put, log_path=log_path)
        self.loaded: Message = {}

    def __enter__(self) -> EngineSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.client.shutdown()

    def _next(self, timeout: float) -> Message:
        try:
            msg = self.events.get(timeout=timeout)
        except queue.Empty as exc:
            raise EngineError(f"The engine did not answer within {timeout:.0f} s.") from exc
        if msg.get("type") == "engine_stopped":
            raise EngineError(f"The engine stopped: {msg.get('reason')}.")
        return msg

    def wait_for(self, *types: str, timeout: float = 120.0) -> Message:
        while True:
            msg = self._next(timeout)
            if msg.get("type") in types:
                return msg

    def start(self, timeout: float = 60.0) -> Message:
        self.client.start()
        return self.wait_for("ready", timeout=timeout)

    def load(self, path: str | Path, params: LoadParams | None = None, timeout: float = 300.0) -> Message:
        if not self.client.alive:
            self.start()
        self.client.load(path, params or LoadParams())
        msg = self.wait_for("loaded", "load_failed", timeout=timeout)
        if msg["type"] == "load_failed":
            raise EngineError(str(msg["message"]))
        self.loaded = msg
        return msg

    def stream(
        self,
        sampling: SamplingParams,
        *,
        messages: list[dict[str, str]] | None = None,
        prompt: str | None = None,
        timeout: float = 300.0,
    ) -> Iterator[str]:
        """Yield text pieces; afterwards ``self.last_stats`` holds the reply's figures."""
        gen_id = self.client.generate(sampling=sampling, messages=messages, prompt=prompt)
        self.last_stats: GenerationStats | None = None
        while True:
            msg = self._next(timeout)
            kind = msg.get("type")
            if msg.get("id") != gen_id:
                continue
            if kind == "token":
                yield str(msg["text"])
            elif kind == "done":
                self.last_stats = GenerationStats.from_dict(msg["stats"])
                return
            elif kind == "failed":
                raise EngineError(str(msg["message"]))
            elif kind == "stop_forced":
                raise EngineError("The reply was stopped by restarting the engine.")

    def generate(self, sampling: SamplingParams, **kwargs: Any) -> tuple[str, GenerationStats]:
        text = "".join(self.stream(sampling, **kwargs))
        assert self.last_stats is not None
        return text, self.last_stats
