"""Deciding a comparison before any engine starts: its runs, which of them share one engine, and whether
every engine fits in memory at the same time.

Each distinct (model file, load settings) gets its own engine; runs that share a model and settings (the
temperature comparison) share one load. ``plan_runs`` checks whether all those engines fit at once
(``core.fit.together``: the needs added up, the safety margin held back once); the runner then loads them
together or one after another. Plain data and blocking file reads only, so the decision is testable without
Qt and the GUI calls it off its thread.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sizewise.core.errors import UserError
from sizewise.core.fit.hardware import machine_budget, probe_hardware
from sizewise.core.fit.together import TogetherFit, fit_together
from sizewise.core.fit.verdict import Budget, FitResult, check_fit
from sizewise.core.gguf.header import GGUFHeader, ModelInfo
from sizewise.core.hub.resolve import inspect_model
from sizewise.core.sampling import LoadParams

EngineKey = tuple[str, LoadParams, int | str]
Schedule = Literal["one_after_another", "loaded_together", "generated_together"]

MAX_RUNS = 4  # a comparison shows at most four replies side by side


@dataclass(frozen=True)
class RunSpec:
    """One column of the comparison: a model file at some settings, optionally at its own temperature."""

    path: str
    load: LoadParams = field(default_factory=LoadParams)
    gpu_layers: int | str = 0  # requested: a number (-1 = all) or "auto"
    temperature: float | None = None  # None: the comparison's sampling temperature
    label: str = ""
    server: str = ""  # a model on a server, ``URL`` or ``URL#MODEL`` (``path`` then holds the same text)

    @property
    def engine_key(self) -> EngineKey:
        if self.server:  # nothing is loaded here: one "engine" per server and model
            return (f"server:{self.server}", self.load, 0)
        return (str(Path(self.path).resolve()), self.load, self.gpu_layers)


def describe_settings(load: LoadParams, gpu_layers: int | str) -> str:
    parts = [f"ctx {load.n_ctx}", f"KV {load.kv_type}"]
    if gpu_layers not in (0, "0"):
        parts.append(f"GPU layers {gpu_layers}")
    if load.flash_attn:
        parts.append("flash attn")
    return ", ".join(parts)


def parse_temperatures(text: str, fewest: int = 1) -> list[float]:
    """``"0.2, 0.7, 1.2"`` → [0.2, 0.7, 1.2]: ``fewest``–4 values between 0 and 2, or a UserError sentence.

    The temperature comparison's list, as ``sizewise compare --temperatures`` reads it (commas or semicolons).
    """
    try:
        temps = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError as exc:
        raise UserError("Temperatures must be numbers separated by commas, e.g. 0.2, 0.7, 1.2.") from exc
    if not fewest <= len(temps) <= MAX_RUNS:
        raise UserError(f"Give between {fewest} and {MAX_RUNS} temperatures, e.g. 0.2, 0.7, 1.2.")
    if any(not 0.0 <= t <= 2.0 for t in temps):
        raise UserError("Temperatures must be between 0 and 2.")
    return temps


def group_specs(specs: Sequence[RunSpec]) -> list[list[int]]:
    """Indexes of consecutive runs that share one engine (same file and load settings)."""
    groups: list[list[int]] = []
    for i, s in enumerate(specs):
        if groups and specs[groups[-1][0]].engine_key == s.engine_key:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


@functools.lru_cache(maxsize=4)  # a comparison has at most four runs
def _inspect(path: str, mtime_ns: int, size: int) -> tuple[GGUFHeader, ModelInfo]:
    return inspect_model(Path(path))


def inspect_cached(path: str | Path) -> tuple[GGUFHeader, ModelInfo]:
    """``inspect_model``, remembered while the file is unchanged.

    The view's check, the run's check and each engine read the same headers, and parsing a large
    vocabulary holds the GIL for about half a second (Gemma-3's 262k tokens): uncached, the second
    engine's load started only after the first had finished, instead of overlapping it.
    """
    p = Path(path).resolve()
    st = p.stat()
    return _inspect(str(p), st.st_mtime_ns, st.st_size)


# -- all at once? ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """Before a run: each engine's verdict and whether all engines fit in memory at the same time."""

    keys: tuple[EngineKey, ...]
    fits: tuple[FitResult, ...] = ()
    together: TogetherFit | None = None
    problem: str = ""  # why there is no decision (a file could not be read)
    servers_only: bool = False  # every run is on a server: nothing to fit here

    @property
    def all_at_once(self) -> bool:
        return self.together is not None and self.together.fits

    def words(self) -> str:
        if self.servers_only:
            return "Every run is on a server, so nothing is loaded on this machine: the runs go one after another."
        if self.together is not None:
            return self.together.words()
        return f"Could not check whether the runs fit together ({self.problem}): running one after another."


def plan_runs(specs: Sequence[RunSpec], budget: Budget | None = None) -> RunPlan:
    """Blocking (reads headers; probes the hardware when no budget is given): call it off the GUI thread.

    The budget is this machine's, as for each run's own verdict (``machine_budget``); every engine's
    need includes its own process overhead, estimated, since none has started yet.
    """
    groups = group_specs(specs)
    keys = tuple(specs[g[0]].engine_key for g in groups)
    local = [specs[g[0]] for g in groups if not specs[g[0]].server]  # a server's model takes no memory here
    if not local:
        return RunPlan(keys=keys, servers_only=True)
    try:
        if budget is None:
            budget = machine_budget(probe_hardware())
        fits = []
        for spec in local:
            header, _info = inspect_cached(spec.path)
            fits.append(check_fit(header, spec.load, budget, spec.gpu_layers, with_max_ctx=False))
    except Exception as exc:  # a missing or broken file: the run itself reports it per engine
        return RunPlan(keys=keys, problem=str(exc).rstrip("."))
    return RunPlan(keys=keys, fits=tuple(fits), together=fit_together(fits))
