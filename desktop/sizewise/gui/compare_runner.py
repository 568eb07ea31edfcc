"""Runs a comparison: each model/setting gets the same prompt, seed and sampling, one after another.

Each distinct (model file, load settings) gets its own engine worker, started, loaded, asked, optionally
benchmarked and shut down before the next one starts — so only one model is in memory at a time, and
each worker's peak RSS belongs to one model. Runs that share a model and settings (the temperature
comparison) share one load. Everything blocking (reading headers, probing the hardware, joining a
worker) runs off the GUI thread; the engine's answers arrive as signals.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
from PySide6.QtCore import QObject, Signal, Slot

from sizewise.core.fit import FitResult, check_fit
from sizewise.core.gguf_meta import GGUFHeader, ModelInfo
from sizewise.core.hardware import HardwareReport, machine_budget, probe_hardware
from sizewise.core.models import inspect_model
from sizewise.core.report import build_report, hardware_section, llama_cpp_facts, model_entry
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.bench import BenchRequest
from sizewise.gui.background import run_in_background
from sizewise.gui.bench_adapter import BenchAdapter

BENCH_ID = 1_000_001


class _Relay(QObject):
    done = Signal()  # emitted from a worker thread, delivered on the GUI thread


@dataclass(frozen=True)
class RunSpec:
    """One column of the comparison: a model file at some settings, optionally at its own temperature."""

    path: str
    load: LoadParams = field(default_factory=LoadParams)
    gpu_layers: int | str = 0  # requested: a number (-1 = all) or "auto"
    temperature: float | None = None  # None: the comparison's sampling temperature
    label: str = ""

    @property
    def engine_key(self) -> tuple[str, LoadParams, int | str]:
        return (str(Path(self.path).resolve()), self.load, self.gpu_layers)


@dataclass
class RunResult:
    spec: RunSpec
    label: str = ""
    info: ModelInfo | None = None
    fit: FitResult | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    loaded: dict[str, Any] | None = None
    sampling: SamplingParams | None = None
    text: str = ""
    stats: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    baseline_rss: int | None = None
    error: str | None = None
    done: bool = False

    def reply(self, prompt: str) -> dict[str, Any] | None:
        if self.stats is None or self.sampling is None:
            return None
        s = self.stats
        return {
            "text": self.text,
            "tokens": int(s.get("tokens") or 0),
            "tg_tps": float(s.get("tg_tps") or 0.0),
            "pp_tps": float(s.get("pp_tps") or 0.0),
            "ttft_ms": float(s.get("ttft_ms") or 0.0),
            "prompt_tokens": int(s.get("prompt_tokens") or 0),
            "finish_reason": s.get("finish_reason"),
            "seed": s.get("seed", self.sampling.seed),
            "sampling": self.sampling.to_dict(),
            "prompt": prompt,
        }

    @property
    def peak_rss(self) -> int | None:
        peaks = [
            int(x) for x in ((self.stats or {}).get("peak_rss_bytes"), (self.bench or {}).get("peak_rss_bytes")) if x
        ]
        return max(peaks) if peaks else None


def describe_settings(load: LoadParams, gpu_layers: int | str) -> str:
    parts = [f"ctx {load.n_ctx}", f"KV {load.kv_type}"]
    if gpu_layers not in (0, "0"):
        parts.append(f"GPU layers {gpu_layers}")
    if load.flash_attn:
        parts.append("flash attn")
    return ", ".join(parts)


class CompareRunner(QObject):
    """One comparison, start to finish. Create, connect, ``start()``; ``stop()`` ends it early."""

    progress = Signal(str)  # a sentence for the status line
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
        self.results = [RunResult(spec=s, label=s.label) for s in specs]
        self.groups: list[list[int]] = []
        for i, s in enumerate(specs):
            if self.groups and specs[self.groups[-1][0]].engine_key == s.engine_key:
                self.groups[-1].append(i)
            else:
                self.groups.append([i])
        self.ready_info: dict[str, Any] = {}
        self.hardware: HardwareReport | None = None
        self.report: dict[str, Any] | None = None
        self.running = False
        self.stopped = False
        self._group = -1
        self._pos = 0
        self._adapter: BenchAdapter | None = None
        self._gen_id: int | None = None
        self._benching = False

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self._next_group()

    def stop(self) -> None:
        """Stop the running reply or benchmark and skip the remaining runs."""
        if not self.running or self.stopped:
            return
        self.stopped = True
        self.progress.emit("Stopping…")
        a = self._adapter
        if a is None:
            return
        if self._benching:
            a.stop_bench(BENCH_ID)
        elif self._gen_id is not None:
            a.stop()
        else:
            self._end_group()

    @property
    def current(self) -> RunResult | None:
        if 0 <= self._group < len(self.groups) and self._pos < len(self.groups[self._group]):
            return self.results[self.groups[self._group][self._pos]]
        return None

    # -- the sequence -----------------------------------------------------------------------------
    def _next_group(self) -> None:
        self._group += 1
        self._pos = 0
        if self.stopped or self._group >= len(self.groups):
            self._finish()
            return
        spec = self.specs[self.groups[self._group][0]]
        self.progress.emit(f"Starting the engine for {Path(spec.path).name}…")
        a = BenchAdapter(log_path=self.log_path, parent=self)
        self._adapter = a
        a.ready.connect(self._on_ready)
        a.loaded.connect(self._on_loaded)
        a.loadFailed.connect(self._on_group_failed)
        a.engineStopped.connect(self._on_group_failed)
        a.token.connect(self._on_token)
        a.finished.connect(self._on_finished)
        a.failed.connect(self._on_failed)
        a.stopForced.connect(self._on_stop_forced)
        a.benchProgress.connect(self._on_bench_progress)
        a.benchDone.connect(self._on_bench_done)
        a.start()

    @Slot(dict)
    def _on_ready(self, ready: dict[str, Any]) -> None:
        self.ready_info = dict(ready)
        spec = self.specs[self.groups[self._group][0]]
        pid = int(ready.get("pid") or 0)

        def prepare() -> tuple[GGUFHeader, ModelInfo, HardwareReport, FitResult, int | None]:
            header, info = inspect_model(Path(spec.path))
            hardware = probe_hardware(ready)
            try:
                baseline: int | None = int(psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                baseline = None
            fit = check_fit(header, spec.load, machine_budget(hardware), spec.gpu_layers, baseline_bytes=baseline)
            return header, info, hardware, fit, baseline

        group = self._group
        run_in_background(
            prepare, lambda result: self._prepared(group, result), lambda exc: self._prepare_failed(group, exc)
        )

    def _prepared(
        self, group: int, result: tuple[GGUFHeader, ModelInfo, HardwareReport, FitResult, int | None]
    ) -> None:
        if group != self._group:  # stopped meanwhile: this engine is already being shut down
            return
        _header, info, hardware, fit, baseline = result
        self.hardware = hardware
        spec = self.specs[self.groups[self._group][0]]
        settings = {
            "ctx": spec.load.n_ctx,
            "gpu_layers": fit.gpu_layers,
            "gpu_layers_requested": spec.gpu_layers,
            "kv_type": spec.load.kv_type,
            "flash_attn": spec.load.flash_attn,
            "n_batch": spec.load.n_batch,
            "n_ubatch": spec.load.n_ubatch,
        }
        for i in self.groups[self._group]:
            r = self.results[i]
            r.info, r.fit, r.settings, r.baseline_rss = info, fit, dict(settings), baseline
            if not r.label:
                r.label = f"{info.name} {info.quantization} · {describe_settings(spec.load, spec.gpu_layers)}"
            self.resultChanged.emit(i)
        if self.stopped or self._adapter is None:
            self._end_group()
            return
        self.progress.emit(f"Loading {info.name} ({fit.verdict.replace('_', ' ')} predicted)…")
        self._adapter.load(spec.path, replace(spec.load, n_gpu_layers=fit.gpu_layers))

    def _prepare_failed(self, group: int, exc: BaseException) -> None:
        if group == self._group:
            self._on_group_failed(str(exc))

    @Slot(dict)
    def _on_loaded(self, loaded: dict[str, Any]) -> None:
        for i in self.groups[self._group]:
            self.results[i].loaded = dict(loaded)
        self._ask()

    def _ask(self) -> None:
        r = self.current
        if r is None or self._adapter is None or self.stopped:
            self._end_group()
            return
        temp = r.spec.temperature
        r.sampling = self.sampling if temp is None else replace(self.sampling, temperature=temp)
        self.progress.emit(f"Asking {r.label}…")
        if (r.loaded or {}).get("chat_mode") == "chat":
            self._gen_id = self._adapter.generate(r.sampling, messages=[{"role": "user", "content": self.prompt}])
        else:
            self._gen_id = self._adapter.generate(r.sampling, prompt=self.prompt)

    @Slot(int, str)
    def _on_token(self, gen_id: int, text: str) -> None:
        r = self.current
        if r is not None and gen_id == self._gen_id:
            r.text += text

    @Slot(int, dict)
    def _on_finished(self, gen_id: int, stats: dict[str, Any]) -> None:
        if gen_id != self._gen_id:
            return
        self._gen_id = None
        r = self.current
        if r is None:
            return
        r.stats = dict(stats)
        self.resultChanged.emit(self.results.index(r))
        if self.bench_request is not None and not self.stopped and self._adapter is not None:
            self._benching = True
            self.progress.emit(f"Benchmarking {r.label}…")
            self._adapter.bench(self.bench_request, BENCH_ID)
            return
        self._advance()

    @Slot(dict)
    def _on_bench_progress(self, msg: dict[str, Any]) -> None:
        r = self.current
        if r is not None:
            value = msg.get("value")
            figure = "" if value is None else f": {float(value):.1f} {msg.get('unit')}"
            self.progress.emit(f"Benchmarking {r.label} — {msg.get('phase')} {msg.get('rep')}{figure}")

    @Slot(dict)
    def _on_bench_done(self, msg: dict[str, Any]) -> None:
        self._benching = False
        r = self.current
        if r is not None and not msg.get("cancelled"):
            r.bench = dict(msg)
            self.resultChanged.emit(self.results.index(r))
        self._advance()

    @Slot(int, str)
    def _on_failed(self, gen_id: int, message: str) -> None:
        r = self.current
        if r is not None:
            r.error = message
            self.resultChanged.emit(self.results.index(r))
        self._gen_id = None
        self._benching = False
        self._advance()

    @Slot(int)
    def _on_stop_forced(self, gen_id: int) -> None:
        self._on_group_failed("stopped while processing the prompt; the engine was restarted")

    def _advance(self) -> None:
        r = self.current
        if r is not None:
            r.done = True
        self._pos += 1
        if self.stopped or self._pos >= len(self.groups[self._group]):
            self._end_group()
        else:
            self._ask()

    @Slot(str)
    def _on_group_failed(self, message: str) -> None:
        for i in self.groups[self._group][self._pos :]:
            r = self.results[i]
            if not r.done:
                r.error = r.error or message
                r.done = True
                self.resultChanged.emit(i)
        self._gen_id = None
        self._benching = False
        self._end_group()

    def _end_group(self) -> None:
        a, self._adapter = self._adapter, None
        if a is None:
            return
        for sig in (a.loaded, a.loadFailed, a.engineStopped, a.token, a.finished, a.failed, a.stopForced):
            sig.disconnect()
        a.benchDone.disconnect()
        a.benchProgress.disconnect()
        a.ready.disconnect()

        relay = _Relay(self)

        @Slot()
        def closed() -> None:
            relay.deleteLater()
            a.deleteLater()
            self._next_group()

        relay.done.connect(closed)

        def shut_down() -> None:
            try:
                a.client.shutdown()
            finally:
                relay.done.emit()

        # A plain thread, not the pool: EngineClient.shutdown() asks threading.current_thread(), which
        # would leave a never-ending "dummy" Thread record behind for a pool thread.
        threading.Thread(target=shut_down, name="compare-engine-shutdown", daemon=True).start()

    def _finish(self) -> None:
        self.running = False
        self.report = self.build_report()
        self.progress.emit("Stopped." if self.stopped else "Done.")
        self.allFinished.emit()

    # -- the report -------------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        hw = hardware_section(self.hardware) if self.hardware is not None else None
        lc = llama_cpp_facts(self.ready_info)
        out = []
        for r in self.results:
            if r.info is None:
                continue
            out.append(
                model_entry(
                    info=r.info,
                    settings=r.settings,
                    fit=r.fit,
                    loaded=r.loaded,
                    bench=r.bench,
                    reply=r.reply(self.prompt),
                    peak_rss_bytes=r.peak_rss,
                    baseline_rss_bytes=r.baseline_rss,
                    hardware=hw,
                    llama_cpp=lc,
                    label=r.label,
                    error=r.error,
                )
            )
        return out

    def build_report(self, floor_tps: float | None = None) -> dict[str, Any]:
        settings: dict[str, Any] = {"prompt": self.prompt, **self.sampling.to_dict()}
        if self.kind == "temperature":
            settings["temperatures"] = [r.spec.temperature for r in self.results]
        if self.bench_request is not None:
            b = self.bench_request
            settings.update(pp=b.pp, tg=b.tg, repetitions=b.repetitions)
        return build_report(
            kind=self.kind,
            entries=self.entries(),
            hardware=hardware_section(self.hardware) if self.hardware is not None else None,
            llama_cpp=llama_cpp_facts(self.ready_info),
            settings=settings,
            floor_tps=self.floor_tps if floor_tps is None else floor_tps,
            notes=[
                "Runs went one after another, each in its own engine process, with the same prompt, seed and sampling."
            ],
        )
