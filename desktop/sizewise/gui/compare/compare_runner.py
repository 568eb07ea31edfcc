"""Runs a comparison: each model/setting gets the same prompt, seed and sampling.

Each distinct (model file, load settings) gets its own engine worker (engine_pool.py); runs that share a model
and settings (the temperature comparison) share one load. Before anything starts, ``plan_runs``
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

A run on a server (``RunSpec.server``) is an engine too (remote_engine.py): connected instead of started,
never counted against this machine's memory, asked like the others, never benchmarked.

This module is the sequencing only: which engine is asked what and when, told to the view as signals; the
memory check, like everything blocking, runs off the GUI thread. The results are plain records
(core/compare/results.py) and the report is built from them in core/compare/report.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from sizewise.core.compare.plan import RunPlan, RunSpec, Schedule, group_specs, plan_runs
from sizewise.core.compare.quality import QualityLookup
from sizewise.core.compare.report import compare_report
from sizewise.core.compare.results import RunResult, default_label, speeds_shared
from sizewise.core.fit.hardware import HardwareReport
from sizewise.core.fit.verdict import Budget
from sizewise.core.sampling import SamplingParams
from sizewise.engine.bench import BenchRequest
from sizewise.engine.remote.http import ApiKey
from sizewise.gui.adapters.background import run_in_background
from sizewise.gui.compare.engine_pool import CompareEngine, EnginePool, close_engines
from sizewise.gui.compare.remote_engine import RemoteCompareEngine

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
        quality: QualityLookup | None = None,
        server_keys: dict[str, ApiKey | None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``quality`` finds a model's stored quality run for the report (None: no quality figures);
        ``server_keys`` the API key of each server a run is on, by its URL."""
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
        self.quality = quality
        self.server_keys = server_keys or {}
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
        spec = self.specs[group[0]]
        e: CompareEngine
        if spec.server:
            key = self.server_keys.get(spec.server.partition("#")[0])
            e = RemoteCompareEngine(spec, api_key=key, log_path=self.log_path, parent=self)
        else:
            e = CompareEngine(spec, budget=self.budget, log_path=self.log_path, parent=self)
        self.engines.append(e)
        self._attach(e)
        return e

    @Slot(object)
    def _apply_prepared(self, e: CompareEngine) -> None:
        if e.ready:
            self.ready_info = dict(e.ready)
        if e.hardware is not None:
            self.hardware = e.hardware
        if isinstance(e, RemoteCompareEngine) and e.loaded is not None:
            for i in self._group_of(e):  # named as the server names its model, once it has
                r = self.results[i]
                temperature = r.label.partition(" · temperature ")[2]
                r.label = e.remote_label() + (f" · temperature {temperature}" if temperature else "")
                self.resultChanged.emit(i)
        if e.info is None:
            return
        for i in self._group_of(e):
            r = self.results[i]
            r.info, r.fit, r.settings, r.baseline_rss = e.info, e.fit, dict(e.settings), e.baseline
            r.pid = e.pid
            if e.loaded is not None:
                r.loaded, r.load_span = dict(e.loaded), e.load_span
            if not r.label:
                r.label = default_label(e.info, e.spec)
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
        steps = [
            (e, i, "bench")
            for e in self.engines
            for i in self._group_of(e)
            if self.results[i].stats and not e.spec.server
        ]
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
        benchable = self._bench_inline and not e.spec.server  # a server's model is not benchmarked here
        if kind == "reply" and r.stats is not None and r.error is None and benchable and not self.stopped:
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
    def build_report(self, floor_tps: float | None = None, min_same_top: float | None = None) -> dict[str, Any]:
        """The comparison's report so far (core/compare/report.py); ``floor_tps`` overrides the reading-speed floor,
        ``min_same_top`` sets the quality floor. Stored quality runs are read again each time: a run measured
        after the comparison shows at the next rebuild."""
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
            quality=self.quality,
            min_same_top=min_same_top,
        )
