"""The parent side of a quality run: starts evaluate.py's ``evaluate_in_child`` in a job process and turns its
``finished`` event into a stored ``QualityRun``.

Apart from evaluate.py because that module is the child's and imports llama_cpp; this one names it only as a
string (job.py imports it in the child), so the GUI can start a quality run without loading llama.cpp itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sizewise.core.quant.quality import TOP_K_DEFAULT
from sizewise.core.quant.results import QualityRun, make_run
from sizewise.core.quant.text import QualityText
from sizewise.engine.protocol import Message
from sizewise.engine.quant.job import JobProcess


class QualityJob:
    """Parent side of one quality run. ``on_event`` gets ``progress`` events and then one final event:
    ``finished`` with ``run`` (a QualityRun), ``failed``/``died`` with ``message``, or ``cancelled``."""

    def __init__(
        self,
        model: str | Path,
        on_event: Callable[[Message], None],
        *,
        text: QualityText,
        cache_dir: Path,
        reference: str | Path | None = None,
        ctx: int = 512,
        chunks: int | None = None,
        threads: int = 0,
        k: int = TOP_K_DEFAULT,
        log_path: str | None = None,
        on_run: Callable[[QualityRun], None] | None = None,
    ) -> None:
        self.model = str(model)
        self.reference = str(reference) if reference else None
        self.text = text
        self._on_event = on_event
        self._on_run = on_run
        payload = {
            "model": self.model,
            "reference": self.reference,
            "text": text.text,
            "ctx": ctx,
            "chunks": chunks,
            "threads": threads,
            "k": k,
            "cache_dir": str(cache_dir),
        }
        self.job = JobProcess(
            "sizewise.engine.quant.evaluate",
            "evaluate_in_child",
            payload,
            self._relay,
            name="sizewise-quality",
            log_path=log_path,
        )

    def start(self) -> None:
        self.job.start()

    def cancel(self) -> None:
        self.job.cancel()

    def wait(self, timeout: float | None = None) -> Message | None:
        return self.job.wait(timeout)

    def _relay(self, msg: Message) -> None:
        if msg.get("type") == "finished":
            run = make_run(self.model, msg, self.reference, self.text.name)
            if self._on_run is not None:
                self._on_run(run)
            msg = {"type": "finished", "run": run, "raw": msg}
        self._on_event(msg)
