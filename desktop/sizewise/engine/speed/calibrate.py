"""Calibrate the speed model on this machine: write synthetic models, quantize, measure, fit, clean up.

One run writes a few random-weight models of different sizes (core/speed/synthetic.py) into a temporary
folder under the app cache, quantizes each with llama.cpp's own quantizer (engine/quant/quantize.py) to the
calibration types, measures generation at depth 0 and at a deeper depth and prompt processing with the
llama-bench loop (engine/bench.py) in one engine worker, and fits the profile (core/speed/fit.py).

Every synthetic file is deleted in a ``finally`` — after success, failure or Ctrl+C — and a folder left by a
killed run is deleted by the next calibration (core/speed/scratch.py); the profile is returned only when every
measurement finished, so a partial calibration can never be stored.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizewise.core.fit.hardware import HardwareReport, probe_hardware
from sizewise.core.gguf.header import read_header
from sizewise.core.paths import AppPaths
from sizewise.core.quant.plan import plan_quantize
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.fit import PpPoint, TgPoint, fit_pp, fit_tg
from sizewise.core.speed.model import model_cost
from sizewise.core.speed.profile import KV, SpeedProfile, fingerprint
from sizewise.core.speed.scratch import make_scratch
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic
from sizewise.engine.bench import BenchRequest
from sizewise.engine.child_signals import children_ignore_sigint
from sizewise.engine.quant.quantize import Quantizer
from sizewise.engine.session import EngineError, EngineSession

# ~38M, ~31M and ~113M parameters (the tokenizer's 49152-row embedding included): small enough to write,
# quantize and measure in well under a minute on two cores. Depth and width vary independently (4 wide
# layers, 24 narrow ones, 12 wider ones) so the fit can tell the per-layer cost from the per-byte cost.
CALIBRATION_SHAPES = (
    SyntheticShape(n_layer=4, n_embd=512, n_ff=1536, n_head=8, n_head_kv=4),
    SyntheticShape(n_layer=24, n_embd=256, n_ff=768, n_head=4, n_head_kv=2),
    SyntheticShape(n_layer=12, n_embd=768, n_ff=2048, n_head=12, n_head_kv=4),
)
CALIBRATION_TYPES = ("Q8_0", "Q4_K_M", "Q2_K")
PP_TOKENS = 128
TG_TOKENS = 16
DEEP = 512  # the deeper depth for generation: enough KV cache to see its cost
BENCH_ID = 7
# A quiet machine fits every point within a few percent; a point missed by more means another program took
# the cores during a run, and such a profile would mispredict everything — so it is refused, not stored.
MAX_FIT_ERROR = 0.30

Progress = Callable[[str], None]


class CalibrationFailed(Exception):
    """A sentence for the user: why calibration could not finish (nothing was stored)."""


@dataclass(frozen=True)
class Measured:
    label: str
    tg_tps: float
    tg_deep_tps: float
    pp_tps: float
    tg_by_quant: tuple[TgPoint, ...]
    tg_by_family: tuple[TgPoint, ...]
    pp_by_quant: PpPoint
    pp_by_family: PpPoint


def device_fingerprint(hardware: HardwareReport) -> str:
    engine = hardware.engine
    return fingerprint(
        str(hardware.cpu_model.value or ""),
        int(hardware.logical_cores.value or 0),
        int(hardware.ram_total.value or 0),
        engine.llama_cpp_version if engine else "",
        engine.system_info if engine else "",
    )


def _quantize(source: Path, type_name: str, folder: Path) -> Path:
    plan = plan_quantize(source, type_name, out=folder / f"{source.stem}-{type_name}.gguf", default_folder=folder)
    finals: list[dict[str, Any]] = []
    quantizer = Quantizer(plan, lambda m: finals.append(m) if m.get("type") not in ("progress", "estimate") else None)
    quantizer.start()
    try:
        while quantizer.wait(0.2) is None:
            pass
    except KeyboardInterrupt:
        quantizer.cancel()
        quantizer.wait(10)
        raise
    final = finals[-1] if finals else {}
    if final.get("type") != "finished":
        raise CalibrationFailed(f"Quantizing a calibration model to {type_name} failed: {final.get('message')}")
    return plan.out


def _bench(session: EngineSession, req: BenchRequest) -> dict[str, Any]:
    session.client.send_raw(req.to_message(BENCH_ID))
    try:
        while True:
            msg = session.wait_for("bench_done", "failed", timeout=600)
            if msg.get("id") != BENCH_ID:
                continue
            if msg["type"] == "failed":
                raise CalibrationFailed(f"A calibration measurement failed: {msg.get('message')}")
            return msg
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, RuntimeError):
            session.client.send_raw({"type": "stop", "id": BENCH_ID})
        with contextlib.suppress(EngineError):
            session.wait_for("bench_done", "failed", timeout=5)
        raise


def best_tps(figures: dict[str, Any]) -> float:
    """The fastest repetition: other programs can only slow a run down, so the fastest is the least disturbed
    (llama-bench's mean is right for reporting a speed, the best is right for fitting a machine's capacity)."""
    return max((float(v) for v in figures.get("samples_tps") or ()), default=0.0)


def measure(session: EngineSession, path: Path, label: str, *, threads: int | None = None) -> Measured:
    """Load ``path`` and measure tg at depth 0 and DEEP and pp; the points for the fit come with it."""
    cost = model_cost(read_header(path))
    session.load(path, LoadParams(n_ctx=DEEP + PP_TOKENS + TG_TOKENS, n_threads=threads))
    shallow = _bench(session, BenchRequest(pp=PP_TOKENS, tg=TG_TOKENS, repetitions=3, ttft=False))
    deep = _bench(session, BenchRequest(pp=0, tg=TG_TOKENS, repetitions=2, ttft=False, depth=DEEP))
    tg0, tgd, pp = best_tps(shallow["tg"]), best_tps(deep["tg"]), best_tps(shallow["pp"])
    if min(tg0, tgd, pp) <= 0:
        raise CalibrationFailed(f"A calibration measurement of {label} gave no figure.")

    def tg_point(key: str, depth: float, tps: float) -> TgPoint:
        return TgPoint({key: cost.weight_bytes, KV: cost.kv_bytes_at(round(depth))}, 1.0 / tps, cost.n_layer)

    shallow_depth, deep_depth = TG_TOKENS / 2, DEEP + TG_TOKENS / 2
    flops = cost.pp_flops(0, PP_TOKENS)

    return Measured(
        label=label,
        tg_tps=tg0,
        tg_deep_tps=tgd,
        pp_tps=pp,
        tg_by_quant=(tg_point(cost.quant, shallow_depth, tg0), tg_point(cost.quant, deep_depth, tgd)),
        tg_by_family=(tg_point(cost.family, shallow_depth, tg0), tg_point(cost.family, deep_depth, tgd)),
        pp_by_quant=PpPoint(cost.quant, flops, 1.0 / pp, cost.n_layer),
        pp_by_family=PpPoint(cost.family, flops, 1.0 / pp, cost.n_layer),
    )


def calibrate(
    paths: AppPaths,
    template: Path,
    progress: Progress,
    *,
    shapes: tuple[SyntheticShape, ...] = CALIBRATION_SHAPES,
    types: tuple[str, ...] = CALIBRATION_TYPES,
    threads: int | None = None,
) -> tuple[SpeedProfile, list[Measured]]:
    """Measure this machine and fit its profile; ``template`` lends its tokenizer (the starter model)."""
    t0 = time.perf_counter()
    folder = make_scratch(paths.cache_dir)
    results: list[Measured] = []
    steps = len(shapes) * len(types)
    try:
        progress("Starting the engine…")
        with EngineSession(log_path=paths.log_dir / "engine.log") as session:
            with children_ignore_sigint():
                session.client.start()
            ready = dict(session.wait_for("ready", timeout=60))
            tokenizer = read_tokenizer(template)
            for i, shape in enumerate(shapes):
                millions = shape.parameters / 1e6
                progress(f"Writing a {millions:.0f}M-parameter synthetic model…")
                source = write_synthetic(folder / f"synthetic-{i}-F16.gguf", shape, tokenizer, seed=i)
                for type_name in types:
                    label = f"{millions:.0f}M {type_name}"
                    progress(f"[{len(results) + 1}/{steps}] {label}: quantizing and measuring…")
                    quant = _quantize(source, type_name, folder)
                    results.append(measure(session, quant, label, threads=threads))
                    session.client.unload()
                    session.wait_for("unloaded", timeout=60)
                    quant.unlink()
                source.unlink()
        hardware = probe_hardware(ready)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    tg = fit_tg([p for m in results for p in m.tg_by_quant])
    tg_family = fit_tg([p for m in results for p in m.tg_by_family])
    pp = fit_pp([m.pp_by_quant for m in results])
    pp_family = fit_pp([m.pp_by_family for m in results])
    if tg.worst_error > MAX_FIT_ERROR:
        raise CalibrationFailed(
            f"the measurements disagree by up to {tg.worst_error:.0%} with any steady speed — the machine was "
            "probably busy with other work; run it again when it is idle"
        )
    engine = hardware.engine
    profile = SpeedProfile(
        bw_effective=tg.bw,
        t_fixed=tg.t_fixed,
        pp_fixed=pp.c0,
        t_layer=tg.t_layer,
        pp_layer=pp.c_layer,
        bw_by_quant=tg.bw_by_key,
        bw_by_family=tg_family.bw_by_key,
        flops_by_quant=pp.flops_by_key,
        flops_by_family=pp_family.flops_by_key,
        source="measured",
        backend="cpu",
        device=str(hardware.cpu_model.value or ""),
        when=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        llama_cpp_version=engine.llama_cpp_version if engine else "",
        fingerprint=device_fingerprint(hardware),
        calibration_s=time.perf_counter() - t0,
        points=sum(len(m.tg_by_quant) for m in results),
    )
    return profile, results
