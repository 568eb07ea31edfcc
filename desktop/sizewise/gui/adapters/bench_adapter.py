"""An EngineAdapter that also speaks the benchmark messages (engine/bench.py).

Kept as a subclass rather than an edit of gui/adapters/engine_adapter.py: the chat window's adapter has no use
for benchmark events, and the compare view needs them on the GUI thread like every other event. It
also does not reload the model after a forced stop (the chat window's behaviour): a stopped
comparison run is over, and its worker must not come back.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal

from sizewise.engine.bench import BenchRequest
from sizewise.gui.adapters.engine_adapter import EngineAdapter


class BenchAdapter(EngineAdapter):
    benchProgress = Signal(dict)  # bench_progress message
    benchDone = Signal(dict)  # bench_done message ({cancelled: True, …} after a stop)

    def bench(self, request: BenchRequest, bench_id: int) -> None:
        """Run the llama-bench loop on the loaded model; a ``failed`` with this id means it could not."""
        self.client.send_raw(request.to_message(bench_id))

    def stop_bench(self, bench_id: int) -> None:
        if self.client.alive:
            self.client.send_raw({"type": "stop", "id": bench_id})

    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "bench_progress":
            self.benchProgress.emit(msg)
        elif kind == "bench_done":
            self.benchDone.emit(msg)
        elif kind == "stop_forced":
            # The chat window reloads the model after a forced stop; a comparison run ends instead,
            # so no fresh worker may appear behind its back.
            self.generating = None
            self.stopForced.emit(int(msg["id"]))
        else:
            super()._dispatch(msg)
