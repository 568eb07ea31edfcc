"""Compare's "Measure quality": one quality run (engine/quant/evaluate.py) per compared model, one after another.

One at a time because each run loads a model (and, the first time, its reference) and keeps every core
busy: two at once would each run at half speed and hold twice the memory for nothing. Each model is
measured against the most precise version of the same model among the compared ones and the Library
(core/compare/quality.py, the rule ``sizewise quality`` follows); that choice reads headers and lists the
Library, so it is made off the GUI thread. The job's events reach the GUI thread through a JobAdapter.

A finished run is stored by the job itself (``on_run=QualityStore.add``) before its ``finished`` event.
Cancelling ends the running job's process, so that model's run is never stored; runs that had finished
before stay, being complete measurements. A model whose run fails (another vocabulary than its reference,
say) is reported and the next one still goes ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from sizewise.core.compare.plan import inspect_cached
from sizewise.core.compare.quality import plan_quality_runs
from sizewise.core.hub.library import Library
from sizewise.core.paths import AppPaths
from sizewise.core.quant.reference_cache import reference_cache_dir
from sizewise.core.quant.reference_pick import Candidate
from sizewise.core.quant.results import QualityRun, QualityStore
from sizewise.core.quant.text import load_text
from sizewise.engine.quant.quality_job import QualityJob
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.adapters.job_adapter import JobAdapter

DEFAULT_CTX = 512  # llama-perplexity's usual window, as ``sizewise quality``


def library_candidates(paths: AppPaths) -> list[Candidate]:
    """The Library's usable models as reference candidates (a Library that cannot be listed offers none)."""
    try:
        entries = Library.for_app(paths).list()
    except Exception:
        return []
    ok = [e for e in entries if e.status == "ok"]
    return [Candidate(e.path, e.architecture, e.parameters, e.quantization, e.size_bytes) for e in ok]


class QualityMeasurer(QObject):
    """Create, connect, ``start()``; ``cancel()`` ends it early. ``finished`` fires once, with
    "done", "cancelled" or "failed" (nothing could be measured), after the status sentence in ``progress``."""

    progress = Signal(str)
    fraction = Signal(float)  # 0–1 over every model
    measured = Signal(object)  # a QualityRun, already stored
    finished = Signal(str)

    def __init__(
        self,
        paths: AppPaths,
        models: Sequence[str],
        *,
        ctx: int = DEFAULT_CTX,
        chunks: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths
        self.models = list(dict.fromkeys(str(m) for m in models))
        self.ctx = ctx
        self.chunks = chunks
        self.store = QualityStore(paths)
        self.queue: list[tuple[str, str | None]] = []
        self.runs: list[QualityRun] = []
        self.started: list[str] = []  # the models whose job started, in order
        self.failures: list[str] = []
        self.running = False
        self.cancelled = False
        self._index = -1
        self.adapter = JobAdapter(self)
        self.adapter.progress.connect(self._on_progress)
        self.adapter.finished.connect(self._on_finished)
        self.adapter.failed.connect(self._on_failed)
        self.adapter.cancelled.connect(self._on_cancelled)

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self.progress.emit("Measuring quality: choosing each model's reference…")
        models, paths = list(self.models), self.paths

        def plan() -> list[tuple[str, str | None]]:
            infos = [inspect_cached(m)[1] for m in models]
            return plan_quality_runs(infos, library_candidates(paths))

        run_in_background(plan, self._planned, self._plan_failed)

    def cancel(self) -> None:
        """End the running job (its run is not stored) and skip the rest."""
        if not self.running or self.cancelled:
            return
        self.cancelled = True
        self.progress.emit("Cancelling the quality run…")
        if self.adapter.running:
            self.adapter.cancel()

    # -- sequencing -------------------------------------------------------------------------------
    def _planned(self, queue: list[tuple[str, str | None]]) -> None:
        self.queue = queue
        self._next()

    def _plan_failed(self, exc: BaseException) -> None:
        self._end("failed", f"Could not measure quality: {exc}")

    def _next(self) -> None:
        self._index += 1
        if self.cancelled:
            self._end("cancelled", "Quality run cancelled; nothing was recorded for the model being measured.")
            return
        if self._index >= len(self.queue):
            self._done()
            return
        model, reference = self.queue[self._index]
        job = QualityJob(
            model,
            self.adapter.on_event,
            text=load_text(None),
            cache_dir=reference_cache_dir(self.paths),
            reference=reference,
            ctx=self.ctx,
            chunks=self.chunks,
            log_path=str(self.paths.log_dir / "quality.log"),
            on_run=self.store.add,
        )
        against = f" against {Path(reference).name}" if reference else " (most precise version here: perplexity only)"
        self.progress.emit(f"{self._step()} {Path(model).name}{against}: starting…")
        self.fraction.emit(self._index / len(self.queue))
        self.started.append(model)
        self.adapter.start(job)

    def _step(self) -> str:
        return f"Quality {self._index + 1}/{len(self.queue)}:"

    def _done(self) -> None:
        if self.failures and not self.runs:
            self._end("failed", "No quality could be measured: " + " ".join(self.failures))
            return
        measured = f"Quality measured for {len(self.runs)} model(s)."
        self._end("done", measured + ("" if not self.failures else " Not measured: " + " ".join(self.failures)))

    def _end(self, outcome: str, sentence: str) -> None:
        self.running = False
        self.progress.emit(sentence)
        self.fraction.emit(1.0)
        self.finished.emit(outcome)

    # -- the running job --------------------------------------------------------------------------
    @Slot(dict)
    def _on_progress(self, msg: dict[str, Any]) -> None:
        if self.cancelled:
            return
        model, reference = self.queue[self._index]
        phase = msg.get("phase")
        chunk, chunks = int(msg.get("chunk") or 0), int(msg.get("chunks") or 0)
        name = Path(model).name
        if phase == "loading_reference":
            text = f"{name}: loading the reference {Path(str(reference)).name}…"
        elif phase == "loading":
            text = f"{name}: loading…"
        elif phase == "reference":
            text = f"{name}: scoring the reference, chunk {chunk}/{chunks}…"
        else:
            text = f"{name}: chunk {chunk}/{chunks}, perplexity so far {float(msg.get('ppl') or 0):.3f}…"
        self.progress.emit(f"{self._step()} {text}")
        within = 0.0
        if chunks:
            part = chunk / chunks
            within = part / 2 if phase == "reference" else (0.5 + part / 2 if reference else part)
        self.fraction.emit((self._index + within) / len(self.queue))

    @Slot(object)
    def _on_finished(self, run: QualityRun) -> None:
        self.runs.append(run)
        self.measured.emit(run)
        self._next()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.failures.append(f"{Path(self.queue[self._index][0]).name}: {message}")
        self._next()

    @Slot()
    def _on_cancelled(self) -> None:
        self._next()
