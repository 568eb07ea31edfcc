"""Runs a comparison: each model/setting gets the same prompt, seed and sampling.

Each distinct (model file, load settings) gets its own engine worker; runs that share a model and
settings (the temperature comparison) share one load. Before anything starts, ``plan_runs``
(core/compare/plan.py) checks whether every engine fits in memory at the same time (``core.fit.together``:
the needs added up, the safety margin held back once):

* **They fit**: one worker per engine starts at once and the loads overlap. The replies are then
  generated one at a time by default — each engine in turn while the others wait loaded — because
  generating together on shared CPU cores gives each model only a share of the CPU, and the speed
  figures (which pick the best choice and go into the report) would then not be what one model gets
  on this machine. ``generate_together`` generates them all at once instead, each engine on its share
  of the cores (all of them on every core slowed generation ~100-fold here: llama.cpp's threads wait
  on each other); those speeds are labelled as measured side by side. The engines stay loaded
  afterwards in an ``EnginePool`` so a re-run, or the temperature comparison on one of them, does
  not load again.
* **They do not**: one engine at a time, as before: started, loaded, asked, optionally benchmarked
  and shut down before the next starts, so only one model is in memory and each worker's peak RSS
  belongs to one model.

Everything blocking (reading headers, probing the hardware, joining a worker) runs off the GUI
thread; the engine's answers arrive as signals. A worker that dies fails only its own runs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
from PySide6.QtCore import QObject, Signal, Slot

from sizewise.core.compare.plan import (
    EngineKey,
    RunPlan,
    RunSpec,
    Schedule,
    describe_settings,
    group_specs,
    inspect_cached,
    plan_runs,
)
from sizewise.core.compare.report import compare_report
from sizewise.core.compare.results import RunResult, speeds_shared
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
        client = a.client

        def shut_down() -> None:
            try:
                client.shutdown()
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


# -- the comparison -------------------------------------------------------------------------------

Step = tuple[CompareEngine, int, str]  # engine, result index, "reply" | "bench"


class CompareRunner(QObject):
    """One comparison, start to finish. Create, connect, ``start()``; ``stop()`` ends it early."""

    progress = Signal(str)  # a sentence for the status line
    planned = Signal(object)  # RunPlan: whether the runs are loaded together, and the numbers
    resultChanged = Signal(int)  # index into results: text, figures or error changed
    allFinished = Signal()

    def __init__(
        self,
        specs: list[RunSpec],
        sampling: SamplingParams,
        prompt: str,
        *,
        log_path: Path | None = None,
        bench: BenchRequest | None = None,
        kind: str = "compare",
        floor_tps: float = 10.0,
        budget: Budget | None = None,
        pool: EnginePool | None = None,
        generate_together: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.specs = specs
        self.sampling = sampling
        self.prompt = prompt
        self.log_path = log_path
        self.bench_request = bench
        self.kind = kind
        self.floor_tps = floor_tps
        self.budget = budget  # None: this machine's (machine_budget); tests inject a smaller one
        self.pool = pool if pool is not None else EnginePool(self)
        self.generate_together = generate_together
        self.results = [RunResult(spec=s, label=s.label) for s in specs]
        self.groups = group_specs(specs)
        self.ready_info: dict[str, Any] = {}
        self.hardware: HardwareReport | None = None
        self.report: dict[str, Any] | None = None
        self.plan: RunPlan | None = None
        self.schedule: Schedule = "one_after_another"
        self.reused = False  # the engines were still loaded from the previous run
        self.shared_threads: int | None = None  # threads per engine while generating together
        self.running = False
        self.stopped = False
        self.engines: list[CompareEngine] = []  # one per group, in group order (those started so far)
        self._group = -1
        self._queues: list[deque[Step]] = []
        self._active: dict[int, Step] = {}
        self._queues_open = 0
        self._bench_inline = False
        self._after_steps: Callable[[], None] = self._finish

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        keys = [self.specs[g[0]].engine_key for g in self.groups]
        if self.pool.covers(keys):
            self.reused = True
            self.plan = self.pool.plan
            if self.plan is not None:
                self.planned.emit(self.plan)
            self.engines = self.pool.take(keys)
            for e in self.engines:
                self._attach(e)
                self._apply_prepared(e)
                for i in self._group_of(e):
                    self.results[i].reused = True
            self.schedule = "generated_together" if self._concurrent() else "loaded_together"
            self.progress.emit("The models are still loaded: asking them again…")
            self._all_settled()
            return
        # Kept engines that this run does not cover hold memory the plan must not count on: free it first.
        self.pool.close_all(self._plan)

    def stop(self) -> None:
        """Stop the running replies or benchmarks and skip the remaining runs; the engines shut down."""
        if not self.running or self.stopped:
            return
        self.stopped = True
        self.progress.emit("Stopping…")
        for e in list(self.engines):
            if not e.is_settled:
                e.abort("stopped before it had loaded")
            elif e.busy:
                e.stop()

    @property
    def active(self) -> list[int]:
        """Indexes of the runs being answered right now."""
        return sorted(i for _e, i, kind in self._active.values() if kind == "reply")

    @property
    def current(self) -> RunResult | None:
        active = self.active
        return self.results[active[0]] if active else None

    @property
    def speeds_shared(self) -> bool:
        """Some generation figure was measured while other runs generated too (shared CPU)."""
        return speeds_shared(self.results)

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self) -> None:
        if self.stopped:
            self._finish()
            return
        self.progress.emit("Checking whether the runs fit in memory together…")
        specs, budget = list(self.specs), self.budget
        run_in_background(lambda: plan_runs(specs, budget), self._planned)

    def _planned(self, plan: RunPlan) -> None:
        self.plan = plan
        self.planned.emit(plan)
        if self.stopped:
            self._finish()
        elif plan.all_at_once:
            self._start_together()
        else:
            self._next_group()

    # -- engines ----------------------------------------------------------------------------------
    def _group_of(self, e: CompareEngine) -> list[int]:
        return self.groups[self.engines.index(e)]

    def _attach(self, e: CompareEngine) -> None:
        e.prepared.connect(self._apply_prepared)
        e.settled.connect(self._on_settled)
        e.stepDone.connect(self._on_step_done)
        e.progress.connect(self._on_engine_progress)

    def _detach(self, e: CompareEngine) -> None:
        e.prepared.disconnect(self._apply_prepared)
        e.settled.disconnect(self._on_settled)
        e.stepDone.disconnect(self._on_step_done)
        e.progress.disconnect(self._on_engine_progress)

    def _new_engine(self, group: list[int]) -> CompareEngine:
        e = CompareEngine(self.specs[group[0]], budget=self.budget, log_path=self.log_path, parent=self)
        self.engines.append(e)
        self._attach(e)
        return e

    @Slot(object)
    def _apply_prepared(self, e: CompareEngine) -> None:
        if e.ready:
            self.ready_info = dict(e.ready)
        if e.hardware is not None:
            self.hardware = e.hardware
        if e.info is None:
            return
        for i in self._group_of(e):
            r = self.results[i]
            r.info, r.fit, r.settings, r.baseline_rss = e.info, e.fit, dict(e.settings), e.baseline
            r.pid = e.pid
            if e.loaded is not None:
                r.loaded, r.load_span = dict(e.loaded), e.load_span
            if not r.label:
                r.label = f"{e.info.name} {e.info.quantization} · {describe_settings(e.spec.load, e.spec.gpu_layers)}"
            self.resultChanged.emit(i)

    @Slot(str)
    def _on_engine_progress(self, text: str) -> None:
        if self.schedule == "one_after_another" or self._active:
            self.progress.emit(text)

    @Slot(object)
    def _on_settled(self, e: CompareEngine) -> None:
        if e.error is not None and not self.stopped:
            for i in self._group_of(e):
                r = self.results[i]
                r.error, r.done = r.error or e.error, True
                self.resultChanged.emit(i)
        elif e.loaded is not None:
            self._apply_prepared(e)
        if self.schedule == "one_after_another":
            if e.usable and not self.stopped:
                self._run_steps([[(e, i, "reply") for i in self._group_of(e)]], self._end_group)
            else:
                self._end_group()
        elif all(x.is_settled for x in self.engines):
            self._all_settled()

    # -- one after another ------------------------------------------------------------------------
    def _next_group(self) -> None:
        self._group += 1
        if self.stopped or self._group >= len(self.groups):
            self._finish()
            return
        e = self._new_engine(self.groups[self._group])
        self.progress.emit(f"Starting the engine for {Path(e.spec.path).name}…")
        e.start()

    def _end_group(self) -> None:
        e = self.engines[self._group]
        self._detach(e)
        e.close(self._next_group)

    # -- all at once ------------------------------------------------------------------------------
    def _concurrent(self) -> bool:
        return self.generate_together and len(self.groups) > 1

    def _start_together(self) -> None:
        self.schedule = "generated_together" if self._concurrent() else "loaded_together"
        names = ", ".join(Path(self.specs[g[0]].path).name for g in self.groups)
        self.progress.emit(f"Loading {len(self.groups)} together: {names}…")
        for g in self.groups:
            self._new_engine(g)
        for e in self.engines:
            e.start()

    def _all_settled(self) -> None:
        usable = [e for e in self.engines if e.usable]
        if self.stopped or not usable:
            self._end_together()
            return
        if self.schedule == "generated_together":
            # A share of the cores each: engines that all use every core make each other wait (~100× slower).
            for e in usable:
                self.shared_threads = max(1, e.load_threads // len(usable))
                e.set_threads(self.shared_threads)
            self.progress.emit(f"Asking all {len(usable)} at the same time (their speeds share the CPU)…")
            queues = [[(e, i, "reply") for i in self._group_of(e)] for e in self.engines]
            self._run_steps(queues, self._bench_after_together, bench_inline=False)
        else:
            steps = [(e, i, "reply") for e in self.engines for i in self._group_of(e)]
            self._run_steps([steps], self._end_together)

    def _bench_after_together(self) -> None:
        """Benchmarks after replies generated together still run one at a time: their figures stay clean."""
        for e in self.engines:
            if e.usable:
                e.set_threads(e.load_threads)  # each alone again: all its threads back
        if self.bench_request is None or self.stopped:
            self._end_together()
            return
        steps = [(e, i, "bench") for e in self.engines for i in self._group_of(e) if self.results[i].stats]
        self._run_steps([steps], self._end_together, bench_inline=False)

    def _end_together(self) -> None:
        keep = [] if self.stopped else [e for e in self.engines if e.usable]
        for e in self.engines:
            self._detach(e)
        self.pool.keep(keep, self.plan)
        close_engines([e for e in self.engines if e not in keep], self._finish)

    # -- steps: replies and benchmarks, queue by queue (queues run side by side) ------------------
    def _run_steps(self, queues: list[list[Step]], then: Callable[[], None], *, bench_inline: bool = True) -> None:
        self._queues = [deque(q) for q in queues if q]
        self._active = {}
        self._bench_inline = bench_inline and self.bench_request is not None
        self._after_steps = then
        self._queues_open = len(self._queues)
        if not self._queues:
            then()
            return
        for qi in range(len(self._queues)):
            self._next_step(qi)

    def _next_step(self, qi: int) -> None:
        q = self._queues[qi]
        while q and not self.stopped:
            e, i, kind = q.popleft()
            r = self.results[i]
            if not e.usable:
                if kind == "reply" and not r.done:
                    r.error, r.done = r.error or e.error or "the engine is not running", True
                    self.resultChanged.emit(i)
                continue
            self._active[qi] = (e, i, kind)
            if kind == "reply":
                temp = r.spec.temperature
                sampling = self.sampling if temp is None else replace(self.sampling, temperature=temp)
                if self.schedule != "generated_together":
                    self.progress.emit(f"Asking {r.label}…")
                e.ask(r, sampling, self.prompt, shared=self.schedule == "generated_together")
            else:
                assert self.bench_request is not None
                self.progress.emit(f"Benchmarking {r.label}…")
                e.bench(r, self.bench_request)
            return
        self._active.pop(qi, None)
        self._queues_open -= 1
        if self._queues_open == 0:
            self._after_steps()

    @Slot(object)
    def _on_step_done(self, e: CompareEngine) -> None:
        qi = next((k for k, (x, _i, _kind) in self._active.items() if x is e), None)
        if qi is None:
            return
        _e, i, kind = self._active.pop(qi)
        r = self.results[i]
        if kind == "reply" and r.stats is not None and r.error is None and self._bench_inline and not self.stopped:
            self._queues[qi].appendleft((e, i, "bench"))
        else:
            r.done = True
        self.resultChanged.emit(i)
        self._next_step(qi)

    def _finish(self) -> None:
        self.running = False
        self.report = self.build_report()
        self.progress.emit("Stopped." if self.stopped else "Done.")
        self.allFinished.emit()

    # -- the report -------------------------------------------------------------------------------
    def build_report(self, floor_tps: float | None = None) -> dict[str, Any]:
        """The comparison's report so far (core/compare/report.py); ``floor_tps`` overrides the reading-speed floor."""
        b = self.bench_request
        return compare_report(
            kind=self.kind,
            results=self.results,
            prompt=self.prompt,
            sampling=self.sampling,
            schedule=self.schedule,
            plan=self.plan,
            reused=self.reused,
            shared_threads=self.shared_threads,
            bench_settings=None if b is None else {"pp": b.pp, "tg": b.tg, "repetitions": b.repetitions},
            hardware=self.hardware,
            ready_info=self.ready_info,
            floor_tps=self.floor_tps if floor_tps is None else floor_tps,
        )
