"""The engines a comparison runs on, and the pool that keeps them loaded between runs.

A ``CompareEngine`` is one worker process for one (model file, load settings): started, checked against
memory, loaded, then asked for replies or benchmarks one at a time, and shut down on a plain thread. The
``EnginePool`` holds the engines an all-at-once run left loaded, so a re-run (or the temperature comparison on
one of them) takes them instead of loading again. Engines shutting down are tracked here until their worker
has exited: the app's exit calls ``wait_for_engine_shutdowns`` (gui/shell/app.py finds this module by name),
else multiprocessing's exit handler races the shutdown threads. Everything blocking (reading headers, probing
the hardware, joining a worker) runs off the GUI thread; the worker's answers arrive as signals, and a worker
that dies fails only its own runs. The runner that sequences a comparison is compare_runner.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
from PySide6.QtCore import QObject, Signal, Slot

from sizewise.core.compare.plan import EngineKey, RunPlan, RunSpec, inspect_cached
from sizewise.core.compare.results import RunResult
from sizewise.core.fit.hardware import HardwareReport, machine_budget, probe_hardware
from sizewise.core.fit.verdict import Budget, FitResult, check_fit
from sizewise.core.gguf.header import GGUFHeader, ModelInfo
from sizewise.core.report.fit_report import settings_summary
from sizewise.core.sampling import SamplingParams, default_threads
from sizewise.engine.bench import BenchRequest
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.adapters.bench_adapter import BenchAdapter

BENCH_ID = 1_000_001


class _Relay(QObject):
    done = Signal()  # emitted from a worker thread, delivered on the GUI thread


# -- one engine -----------------------------------------------------------------------------------

_closing: set[QObject] = set()  # engines shutting down: kept alive until their worker has exited
_shutdowns: list[threading.Thread] = []  # their shutdown threads, for wait_for_engine_shutdowns()


def wait_for_engine_shutdowns(timeout_s: float = 5.0) -> None:
    """Block until engines closed by a view (on its close, say) have exited; for after the event loop.

    Without this, a closed app's interpreter can exit while those threads still shut workers down:
    multiprocessing's exit handler then joins a process object the thread has just closed, and prints
    a ValueError traceback (seen when closing the compare view right after an all-at-once run).
    """
    deadline = time.monotonic() + timeout_s
    for t in list(_shutdowns):
        t.join(max(0.0, deadline - time.monotonic()))
    _shutdowns[:] = [t for t in _shutdowns if t.is_alive()]


class CompareEngine(QObject):
    """One worker for one (model file, load settings): started, checked, loaded, then asked in turn.

    It outlives a run when kept in an ``EnginePool``; the runner that uses it connects to its signals
    for the length of the run. ``usable`` says whether it can still answer.
    """

    prepared = Signal(object)  # self: model info and verdict known (before the load)
    settled = Signal(object)  # self: loaded, or could not start/load (``error``)
    stepDone = Signal(object)  # self: the reply or benchmark asked of it ended (ok, failed or stopped)
    progress = Signal(str)

    def __init__(
        self, spec: RunSpec, *, budget: Budget | None, log_path: Path | None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.spec = spec
        self.key = spec.engine_key
        self.budget = budget
        self.log_path = log_path
        self.adapter: BenchAdapter | None = None
        self.ready: dict[str, Any] = {}
        self.hardware: HardwareReport | None = None
        self.info: ModelInfo | None = None
        self.fit: FitResult | None = None
        self.baseline: int | None = None
        self.settings: dict[str, Any] = {}
        self.loaded: dict[str, Any] | None = None
        self.load_span: tuple[float, float] | None = None
        self.error: str | None = None
        self.is_settled = False
        self.closed = False
        self.result: RunResult | None = None  # the run being answered or benchmarked
        self._gen_id: int | None = None
        self._benching = False
        self._load_t0 = 0.0

    @property
    def pid(self) -> int | None:
        return self.adapter.client.pid if self.adapter is not None else None

    @property
    def usable(self) -> bool:
        return self.loaded is not None and self.error is None and not self.closed

    @property
    def busy(self) -> bool:
        return self.result is not None

    def start(self) -> None:
        a = BenchAdapter(log_path=self.log_path, parent=self)
        self.adapter = a
        a.ready.connect(self._on_ready)
        a.loaded.connect(self._on_loaded)
        a.loadFailed.connect(self._on_load_failed)
        a.engineStopped.connect(self._on_engine_stopped)
        a.token.connect(self._on_token)
        a.finished.connect(self._on_finished)
        a.failed.connect(self._on_failed)
        a.stopForced.connect(self._on_stop_forced)
        a.benchProgress.connect(self._on_bench_progress)
        a.benchDone.connect(self._on_bench_done)
        a.start()

    # -- start and load ---------------------------------------------------------------------------
    @Slot(dict)
    def _on_ready(self, ready: dict[str, Any]) -> None:
        if self.closed:
            return
        self.ready = dict(ready)
        spec, budget, pid = self.spec, self.budget, int(ready.get("pid") or 0)

        def prepare() -> tuple[GGUFHeader, ModelInfo, HardwareReport, FitResult, int | None]:
            header, info = inspect_cached(spec.path)
            hardware = probe_hardware(ready)
            try:
                baseline: int | None = int(psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                baseline = None
            fit = check_fit(
                header, spec.load, budget or machine_budget(hardware), spec.gpu_layers, baseline_bytes=baseline
            )
            return header, info, hardware, fit, baseline

        run_in_background(prepare, self._prepared, lambda exc: self._settle_failed(str(exc)))

    def _prepared(self, result: tuple[GGUFHeader, ModelInfo, HardwareReport, FitResult, int | None]) -> None:
        if self.closed or self.is_settled:  # stopped meanwhile
            return
        _header, info, hardware, fit, baseline = result
        self.info, self.hardware, self.fit, self.baseline = info, hardware, fit, baseline
        spec = self.spec
        self.settings = {**settings_summary(spec.load, fit.gpu_layers), "gpu_layers_requested": spec.gpu_layers}
        self.prepared.emit(self)
        if self.adapter is None or self.is_settled:
            return
        self.progress.emit(f"Loading {info.name} ({fit.verdict.replace('_', ' ')} predicted)…")
        self._load_t0 = time.monotonic()
        self.adapter.load(spec.path, replace(spec.load, n_gpu_layers=fit.gpu_layers))

    @Slot(dict)
    def _on_loaded(self, loaded: dict[str, Any]) -> None:
        if self.closed or self.is_settled:
            return
        self.loaded = dict(loaded)
        self.load_span = (self._load_t0, time.monotonic())
        self.is_settled = True
        self.settled.emit(self)

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self._settle_failed(message)

    def _settle_failed(self, message: str) -> None:
        if self.closed or self.is_settled:
            return
        self.error = message
        self.is_settled = True
        self.settled.emit(self)

    @Slot(str)
    def _on_engine_stopped(self, message: str) -> None:
        """The worker died (crash, out of memory, killed): this engine's runs fail, nobody else's."""
        if self.closed:
            return
        if not self.is_settled:
            self._settle_failed(message)
            return
        self.error = message
        if self.result is not None:
            self._step_failed(message)

    # -- asking -----------------------------------------------------------------------------------
    def ask(self, r: RunResult, sampling: SamplingParams, prompt: str, *, shared: bool = False) -> None:
        assert self.adapter is not None and self.result is None
        self.result = r
        r.sampling, r.side_by_side = sampling, shared
        t0 = time.monotonic()
        r.gen_span = (t0, t0)
        if (self.loaded or {}).get("chat_mode") == "chat":
            self._gen_id = self.adapter.generate(sampling, messages=[{"role": "user", "content": prompt}])
        else:
            self._gen_id = self.adapter.generate(sampling, prompt=prompt)

    @property
    def load_threads(self) -> int:
        """The threads it was loaded with (the worker's rule: the setting, else one per physical core)."""
        return self.spec.load.n_threads or default_threads()

    def set_threads(self, n: int) -> None:
        """Threads for the next replies; the worker applies it before any command sent after it."""
        if self.adapter is not None and self.adapter.client.alive:
            self.adapter.client.send_raw({"type": "threads", "n": n})

    def bench(self, r: RunResult, request: BenchRequest) -> None:
        assert self.adapter is not None and self.result is None
        self.result = r
        self._benching = True
        self.adapter.bench(request, BENCH_ID)

    def stop(self) -> None:
        """Stop the reply or benchmark in progress; ``stepDone`` follows."""
        a = self.adapter
        if a is None or self.result is None:
            return
        if self._benching:
            a.stop_bench(BENCH_ID)
        elif self._gen_id is not None:
            a.stop()

    def abort(self, message: str) -> None:
        """Give up on an engine still starting or loading (a stopped run): it settles as failed now."""
        self._settle_failed(message)

    @Slot(int, str)
    def _on_token(self, gen_id: int, text: str) -> None:
        if self.result is not None and gen_id == self._gen_id:
            self.result.text += text

    @Slot(int, dict)
    def _on_finished(self, gen_id: int, stats: dict[str, Any]) -> None:
        r = self.result
        if r is None or gen_id != self._gen_id:
            return
        r.stats = dict(stats)
        if r.gen_span is not None:
            r.gen_span = (r.gen_span[0], time.monotonic())
        self._end_step()

    @Slot(int, str)
    def _on_failed(self, gen_id: int, message: str) -> None:
        if self.result is not None:
            self._step_failed(message)

    @Slot(int)
    def _on_stop_forced(self, gen_id: int) -> None:
        message = "stopped while processing the prompt; the engine was restarted"
        self.error = message  # the worker was killed: this engine cannot answer again
        if self.result is not None:
            self._step_failed(message)

    @Slot(dict)
    def _on_bench_progress(self, msg: dict[str, Any]) -> None:
        r = self.result
        if r is not None:
            value = msg.get("value")
            figure = "" if value is None else f": {float(value):.1f} {msg.get('unit')}"
            self.progress.emit(f"Benchmarking {r.label} — {msg.get('phase')} {msg.get('rep')}{figure}")

    @Slot(dict)
    def _on_bench_done(self, msg: dict[str, Any]) -> None:
        r = self.result
        if r is None:
            return
        if not msg.get("cancelled"):
            r.bench = dict(msg)
        self._end_step()

    def _step_failed(self, message: str) -> None:
        r = self.result
        if r is not None:
            r.error = r.error or message
        self._end_step()

    def _end_step(self) -> None:
        self._gen_id = None
        self._benching = False
        self.result = None
        self.stepDone.emit(self)

    # -- shutting down ----------------------------------------------------------------------------
    def close(self, then: Callable[[], None] | None = None) -> None:
        """Shut the worker down on a plain thread; ``then`` runs on the GUI thread once it has exited.

        The engine leaves its parent and waits in ``_closing`` so that a view or runner deleted in the
        meantime cannot take it (and the adapter its reader thread still reports to) along.
        """
        if self.closed:
            if then is not None:
                then()
            return
        self.closed = True
        self.result = None
        a = self.adapter
        if a is None:
            if then is not None:
                then()
            return
        self.setParent(None)
        relay = _Relay()
        _closing.update((self, relay))

        @Slot()
        def closed() -> None:
            _closing.discard(self)
            _closing.discard(relay)
            relay.deleteLater()
            self.deleteLater()
            if then is not None:
                then()

        relay.done.connect(closed)

        def shut_down() -> None:
            try:
                a.shutdown()  # the worker, and a server's connection where the engine is one
            finally:
                relay.done.emit()

        # A plain thread, not the pool: EngineClient.shutdown() asks threading.current_thread(), which
        # would leave a never-ending "dummy" Thread record behind for a pool thread.
        thread = threading.Thread(target=shut_down, name="compare-engine-shutdown", daemon=True)
        _shutdowns[:] = [t for t in _shutdowns if t.is_alive()] + [thread]
        thread.start()


def close_engines(engines: Iterable[CompareEngine], then: Callable[[], None]) -> None:
    """Close every engine (their workers exit in parallel); ``then`` once all have."""
    engines = list(engines)
    left = [len(engines)]
    if not engines:
        then()
        return

    def one_closed() -> None:
        left[0] -= 1
        if left[0] == 0:
            then()

    for e in engines:
        e.close(one_closed)


class EnginePool(QObject):
    """Engines kept loaded after an all-at-once run, by (model file, load settings).

    The compare view owns one: while the same runs stay selected, the next run (or the temperature
    comparison on one of them) takes its engines instead of loading again. The view empties it when
    the runs change, on Stop and when it closes.
    """

    closed = Signal()  # a close_all() finished: the workers have exited

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engines: dict[EngineKey, CompareEngine] = {}
        self.plan: RunPlan | None = None  # the decision the kept engines were loaded under
        self.closing = 0  # close_all() calls still waiting for workers to exit

    def covers(self, keys: Iterable[EngineKey]) -> bool:
        keys = list(keys)
        return bool(keys) and all(k in self.engines and self.engines[k].usable for k in keys)

    def take(self, keys: Iterable[EngineKey]) -> list[CompareEngine]:
        """The kept engines for these keys; the run owns them until it gives them back with ``keep``."""
        return [self.engines.pop(k) for k in keys]

    def keep(self, engines: Iterable[CompareEngine], plan: RunPlan | None) -> None:
        for e in engines:
            e.setParent(self)
            self.engines[e.key] = e
        if plan is not None and plan.all_at_once:
            self.plan = plan

    def close_all(self, then: Callable[[], None] | None = None) -> None:
        self.retain((), then)

    def retain(self, keys: Iterable[EngineKey], then: Callable[[], None] | None = None) -> None:
        """Close the kept engines whose key is not in ``keys`` (the runs that are no longer selected)."""
        keys = set(keys)
        engines = [e for k, e in self.engines.items() if k not in keys]
        self.engines = {k: e for k, e in self.engines.items() if k in keys}
        if not self.engines:
            self.plan = None
        if not engines:
            if then is not None:
                then()
            return
        self.closing += 1

        def done() -> None:
            self.closing -= 1
            self.closed.emit()
            if then is not None:
                then()

        close_engines(engines, done)
