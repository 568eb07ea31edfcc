"""Calibrate the speed model on this machine: write synthetic models, quantize, measure in rounds, fit, clean up.

One run writes a few random-weight models of different sizes (core/speed/synthetic.py) into a scratch folder
under the app cache (core/speed/scratch.py), quantizes each with llama.cpp's own quantizer
(engine/quant/quantize.py) to the calibration types, then measures every model once per round for ROUNDS
rounds in one engine worker (engine/speed/measure.py): generation at depth 0 and at a deeper depth, and prompt
processing, with the llama-bench loop; a model whose round was slowed as a whole gets more rounds. Each figure
is the median over a model's steady rounds of each round's figure — generation's median token, a prompt's fastest
repetition (core/speed/steady.py) — and the profile is fitted on those (core/speed/fit.py).

Every synthetic file is deleted in a ``finally`` — after success, failure or Ctrl+C — and a folder left by a
killed run is deleted by the next calibration (core/speed/scratch.py); the profile is returned only when every
measurement finished, so a partial calibration can never be stored.
"""

from __future__ import annotations

import datetime
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sizewise.core.fit.devices import BackendDevice
from sizewise.core.fit.hardware import HardwareReport, probe_hardware
from sizewise.core.gguf.header import read_header
from sizewise.core.paths import AppPaths
from sizewise.core.quant.plan import plan_quantize
from sizewise.core.speed import cpu_cache
from sizewise.core.speed.fit import (
    FitError,
    NoisyFit,
    PpFit,
    Prior,
    TgFit,
    fit_pp,
    fit_pp_in_family,
    fit_tg,
    fit_tg_in_family,
    fit_tg_known_weights,
    less_rereads,
    weights_share,
)
from sizewise.core.speed.model import ModelCost, model_cost
from sizewise.core.speed.profile import SpeedProfile, type_family
from sizewise.core.speed.scratch import make_scratch
from sizewise.core.speed.steady import RoundFigures, steady_rounds
from sizewise.core.speed.synthetic import SyntheticShape, read_tokenizer, write_synthetic
from sizewise.core.speed.targets import GPU_BANDWIDTH_EFFICIENCY
from sizewise.engine.child_signals import children_ignore_sigint
from sizewise.engine.quant.quantize import Quantizer
from sizewise.engine.session import EngineSession
from sizewise.engine.speed.devices import device_fingerprint, gpu_fingerprint, nvml_peak_bandwidth
from sizewise.engine.speed.measure import RUNS, CalibrationFailed, Measured, Overtime, Runs, measure_round, points

# ~86M, ~31M and ~128M parameters (the tokenizer's 49152-row embedding included): small enough to write, quantize and
# measure in about a minute on two cores (56-59 s on an Intel Xeon, 13-17 s of it writing, quantizing). Depth and width
# vary independently (4 wide layers, 24 narrow ones, 10 wide ones) so the fit can tell the per-layer cost from the
# per-byte cost. The first two are multiples of 256 wide, so every weight is in the k-quant asked for. The third is 960
# wide, not a multiple of 256, like many real models (SmolLM2-135M's 576, Qwen2.5-0.5B's 896, Gemma-3-1B's 1152):
# llama.cpp then stores every tensor whose rows are 960 long in the fallback type (Q5_0 for Q4_K, Q4_0 for Q2_K/Q3_K,
# Q8_0 for Q6_K), which decode at their own speed; that model is mostly fallback types on purpose, since a calibration
# where they were a small share (a 4-layer 640-wide model) left their rates to noise: Q5_0 came out at 15.8 and 24.9
# GB/s in two runs, and a Qwen2.5-0.5B-shaped Q4_K_M (60 % Q5_0) was predicted 1.27-1.36x too fast. The first has
# 128-wide heads (8 query heads on 2 KV heads, like Llama's, Qwen2.5-1.5B's and -7B's), the others 64-wide ones
# (SmolLM2's, Qwen2.5-0.5B's): with 64-wide heads only, Qwen2.5-1.5B at depth 4096 came out 0.80-0.84x
# (core/speed/model.py).
CALIBRATION_SHAPES = (
    SyntheticShape(n_layer=4, n_embd=1024, n_ff=2048, n_head=8, n_head_kv=2),
    SyntheticShape(n_layer=24, n_embd=256, n_ff=768, n_head=4, n_head_kv=2),
    SyntheticShape(n_layer=10, n_embd=960, n_ff=2048, n_head=15, n_head_kv=3),
)
CALIBRATION_TYPES = ("Q8_0", "Q4_K_M", "Q2_K")
# Rounds over all models, so a point's rounds lie far apart in time: a disturbance of a few seconds reaches one
# of them, and the median of three steady rounds sets it aside. A model whose round was slowed as a whole gets more,
# up to MAX_ROUNDS (core/speed/steady.py). Two rounds took calibration from 90-113 s to 67-77 s at two threads, but
# their median is their mean: in the speed benchmark's run one disturbed deeper generation run took 20.5 ms per token
# where the other round's took 9.9, each of its two calibrations had a model whose deeper cache came out with a
# negative cost in one round (-0.13 and -1.09 ms), the fitted attention rate came out at half that of a three-round
# calibration (11-13 against 23 GFLOP/s), and generation at context 4096 was predicted at 0.72-0.89× the measured
# speed for 7 of 9 unseen models.
ROUNDS = 3
MAX_ROUNDS = 5
# On a quiet AMD EPYC the steady points fit within 10-25 % (the small models' points are the noisy ones: they
# nearly fit in a server CPU's shared L3 cache, and each token waits at every layer for both threads). On a quiet
# Intel Xeon (a KVM guest with 480 MiB of L3) two to four points missed by 25-48 % in every one of ten
# calibrations, the same in each of their rounds (31M Q8_0: 1.96, 2.13 and 1.86 ms measured, 2.90 fitted): a miss of
# the speed model there, not noise, and at 30 % three of the ten were refused as busy. Points the other
# programs disturbed through most of their rounds miss by far more (the second-worst by 120-320 % in the busy runs
# measured: CPU hogs, other test runs on both cores); such a profile would mispredict everything, so it is refused,
# not stored. OUTLIERS points may miss by more without deciding.
MAX_FIT_ERROR = 0.60
OUTLIERS = 1
# Measuring takes about 2.8× as long as writing and quantizing the models on a steady machine (2.7-2.9× in three
# calibrations at two threads on an Intel Xeon, 40-41 s against 14-15 s; 4.2× there, and 3.0-4.6× on an AMD EPYC,
# before a round's first prompt became the deeper one's fill, measure.py). Other programs on the cores slow
# llama.cpp's threads far more than the quantizer's (each token waits at every layer for the thread that was
# descheduled: 10-300× slower tokens measured with two CPU hogs), so when measuring passes this multiple of the
# preparation time the machine is busy, and calibration stops instead of measuring for many minutes only to
# refuse. The margin over the steady ratio is the one the 128-token calibration had (1.5× steady, 5× refused).
# Reading 128 MB before each generated token of the models under 128 MB (measure.py, EVICT_BYTES) took it to 3.5×
# (68 s against 19.6 s, 2026-12-05), so both moved by 3.5 / 2.8; one generation run a round, timed token by token
# (measure.py, REPETITIONS), and each model reading only what its weights leave of the 128 MB, took it to 2.3× (38 s
# against 16.8 s, a traced run that morning) and 3.1× (42-43 s against 13-14 s, three runs of
# tests/benchmarks/test_calibration_time.py on a fresh guest two hours later): 2.7 between them, and the budget about
# 3.3× above it, as before.
STEADY_RATIO = 2.7
BUSY_RATIO = 9.0
BUSY = "the machine was probably busy with other work; run it again when it is idle"
# Below this share of a point's time spent reading weights (fit.weights_share, the largest over the points),
# calibration's models cannot measure the bandwidth. On an NVIDIA H200 (Vulkan) it was 13-20 %: tokens took 0.43-1.65
# ms, ~55 µs a layer in kernel launches whatever the bytes, and the per-type fit put Q4_K at 248-254 GB/s beside Q6_K's
# 1955-2539, which predicted a Qwen2.5-1.5B-shaped Q4_K_M at half its measured speed (and the ladder's Q4_K_M cells
# below Q6_K's). There the weights are read at NVML's peak bandwidth times a target GPU's efficiency
# (core/speed/targets.py), and the fixed, per-layer and attention figures are fitted around it; on an Intel Xeon's
# CPU it was 97 % (42-48 % at the point that read the least). Refitted so, the H200's own
# measurements predict Qwen2.5-0.5B/1.5B-shaped models' generation at 0.80-1.23x their measured speed, 10 of 12 within
# 0.85-1.15 (0.90-1.98x, 6 of 12, before). Prompts are not helped: there calibration's matmuls do take most of the
# time, but at 6-7 TFLOP/s, far below what the larger matrices of a 0.5-1.5B model reach on such a GPU, so its prompt
# speed came out 2.5-3.7x too slow (erring slow).
MIN_WEIGHTS_SHARE = 0.3
# Beyond any memory (HBM3e reads ~5-8 TB/s): a fitted bandwidth this high means the bytes did not show in the times.
MAX_BANDWIDTH = 1e14

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Model:
    label: str
    path: Path
    cost: ModelCost


def _keep_final(events: list[dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    """A Quantizer's event callback that keeps its final event (finished, failed, died or cancelled)."""

    def on_event(msg: dict[str, Any]) -> None:
        if msg.get("type") not in ("progress", "estimate"):
            events.append(msg)

    return on_event


def quantize_types(source: Path, types: tuple[str, ...], folder: Path) -> dict[str, Path]:
    """Quantize ``source`` to every type at once, one job each: each job starts a process and reads the source
    before it quantizes, which the others' quantizing then overlaps (the 86M model to three types: 5.7 s at once,
    6.3 s one after another). Ctrl+C or a failure cancels every job; each job deletes its own partial file."""
    finals: dict[str, list[dict[str, Any]]] = {t: [] for t in types}
    jobs: dict[str, Quantizer] = {}
    try:
        for t in types:
            plan = plan_quantize(source, t, out=folder / f"{source.stem}-{t}.gguf", default_folder=folder)
            jobs[t] = Quantizer(plan, _keep_final(finals[t]))
            jobs[t].start()
        for job in jobs.values():
            while job.wait(0.05) is None:
                pass
    finally:
        running = [job for t, job in jobs.items() if not finals[t]]
        for job in running:
            job.cancel()
        for job in running:
            job.wait(10)
    for t, events in finals.items():
        final = events[-1] if events else {}
        if final.get("type") != "finished":
            raise CalibrationFailed(f"Quantizing a calibration model to {t} failed: {final.get('message')}")
    return {t: job.plan.out for t, job in jobs.items()}


def _prepare(
    folder: Path,
    tokenizer: list[tuple[str, Any, Any, Any]],
    shapes: tuple[SyntheticShape, ...],
    types: tuple[str, ...],
    progress: Progress,
) -> list[_Model]:
    """Write each shape with ``tokenizer`` (read_tokenizer's) and quantize it to each type; every model is kept
    until the rounds are done."""
    models: list[_Model] = []
    for i, shape in enumerate(shapes):
        millions = shape.parameters / 1e6
        progress(f"[{i + 1}/{len(shapes)}] Writing a {millions:.0f}M-parameter synthetic model…")
        source = write_synthetic(folder / f"synthetic-{i}-F16.gguf", shape, tokenizer, seed=i)
        progress(f"[{i + 1}/{len(shapes)}] {millions:.0f}M: quantizing to {', '.join(types)}…")
        for type_name, quant in quantize_types(source, types, folder).items():
            models.append(_Model(f"{millions:.0f}M {type_name}", quant, model_cost(read_header(quant))))
        source.unlink()
    return models


def _measure_rounds(
    session: EngineSession,
    models: list[_Model],
    progress: Progress,
    threads: int | None,
    prepare_s: float,
    gpu_layers: int = 0,
    runs: Runs = RUNS,
    l2_bytes: int = 0,
) -> list[Measured]:
    """Every model once per round for ROUNDS rounds, so each point's rounds lie far apart in time; then more
    rounds, up to MAX_ROUNDS, for the models with fewer than ROUNDS steady ones. On the CPU, refused once
    measuring has taken BUSY_RATIO × ``prepare_s``; a GPU has no such budget, since how fast it is against the
    CPU that prepared the models says nothing about other programs (software Vulkan ran ~80× slower than this CPU)."""
    figures: dict[str, list[RoundFigures]] = {m.label: [] for m in models}
    where = " on the GPU" if gpu_layers else ""
    t0 = time.monotonic()
    deadline = None if gpu_layers else t0 + BUSY_RATIO * prepare_s
    try:
        for r in range(MAX_ROUNDS):
            todo = [m for m in models if len(steady_rounds(figures[m.label])) < ROUNDS]
            if not todo:
                break
            if r < ROUNDS:
                progress(f"Measuring{where}, round {r + 1} of {ROUNDS}…")
            else:
                progress(f"Measuring again: {len(todo)} of {len(models)} models had a round slowed by other programs…")
            for m in todo:
                figures[m.label].append(
                    measure_round(
                        session,
                        m.path,
                        threads=threads,
                        deadline=deadline,
                        gpu_layers=gpu_layers,
                        runs=runs.for_model(m.cost.weight_bytes),
                    )
                )
    except Overtime:
        raise CalibrationFailed(
            f"measuring{where} took {time.monotonic() - t0:.0f} s, more than {BUSY_RATIO:.0f}× the {prepare_s:.0f} s "
            f"that writing and quantizing the models took, where a steady machine needs about {STEADY_RATIO:.1f}× — "
            f"{BUSY}"
        ) from None
    return [points(m.label, m.cost, figures[m.label], runs, l2_bytes) for m in models]


def _judge(tg: TgFit) -> None:
    """Refuse a fit that no steady speed explains: the machine was busy through most of the rounds. One point
    may miss by more than MAX_FIT_ERROR (a small model's point disturbed in two of its rounds, or pushed around
    by a neighbour in the shared L3 cache); a busy machine disturbs many (11 to 13 of 18 measured)."""
    beyond = tg.error_beyond(OUTLIERS)
    if beyond > MAX_FIT_ERROR:
        missed = sum(e > MAX_FIT_ERROR for e in tg.errors)
        raise CalibrationFailed(
            f"{missed} of {len(tg.errors)} measurements disagree by more than {MAX_FIT_ERROR:.0%} (up to "
            f"{tg.worst_error:.0%}) with any steady speed — {BUSY}"
        )


def _prior(by_family: dict[str, float]) -> Prior:
    """Seconds per unit of a type's family, the figure a per-type fit is drawn to (fit.py)."""
    return lambda t: 1.0 / by_family[type_family(t)] if by_family.get(type_family(t)) else None


@dataclass(frozen=True)
class Calibration:
    """What one calibration measured: the CPU's profile, and the GPU's where the build drives one (every model
    measured again with all its layers offloaded), each with the measurements it was fitted on."""

    profile: SpeedProfile
    measured: list[Measured]
    gpu: SpeedProfile | None = None
    gpu_measured: list[Measured] = field(default_factory=list)

    @property
    def profiles(self) -> list[SpeedProfile]:
        return [self.profile] + ([self.gpu] if self.gpu is not None else [])


def _fit(results: list[Measured]) -> tuple[TgFit, TgFit, PpFit, PpFit]:
    """Generation by tensor type (drawn to its family's figure) and prompt processing likewise; refused when the
    points fit no steady speed."""
    try:
        tg_family = fit_tg([p for m in results for p in m.tg_by_family])
        tg = fit_tg_in_family([p for m in results for p in m.tg_by_quant], tg_family, _prior(tg_family.bw_by_key))
        _judge(tg)
        bandwidth = tg.bw or tg_family.bw  # as model.reread_seconds reads the stored profile: bw_effective
        pp_family = fit_pp(less_rereads([p for m in results for p in m.pp_by_family], bandwidth))
        pp_points = less_rereads([p for m in results for p in m.pp_by_quant], bandwidth)
        pp = fit_pp_in_family(pp_points, pp_family, _prior(pp_family.flops_by_key))
    except NoisyFit as exc:
        raise CalibrationFailed(f"the measurements fit no steady speed ({exc}) — {BUSY}") from exc
    except FitError as exc:  # a calibration of fewer models than figures: a caller's choice, said as such
        raise CalibrationFailed(f"too few measurements to fit a profile ({exc})") from exc
    return tg_family, tg, pp_family, pp


def _profile(results: list[Measured], peak_bandwidth: float | None = None, **identity: Any) -> SpeedProfile:
    """The fitted profile; where the points cannot measure the weights' bandwidth (MIN_WEIGHTS_SHARE) and the device
    has a published peak (bytes/s, as NVML gives it), the weights are read at that peak times a GPU's efficiency
    instead, and the rest is fitted around it."""
    tg_family, tg, pp_family, pp = _fit(results)
    notes = []
    tg_points = [p for m in results for p in m.tg_by_quant]
    share = weights_share(tg, tg_points)
    if share < MIN_WEIGHTS_SHARE and peak_bandwidth:
        bandwidth = peak_bandwidth * GPU_BANDWIDTH_EFFICIENCY
        try:
            tg = tg_family = fit_tg_known_weights(tg_points, bandwidth)
        except FitError as exc:  # too few points for the rest: the GPU's profile is refused, the CPU's kept
            raise CalibrationFailed(f"the fit around NVML's peak bandwidth found too few points ({exc})") from exc
        notes.append(
            f"weights read at NVML's peak bandwidth × {GPU_BANDWIDTH_EFFICIENCY:.2f} ({bandwidth / 1e9:.0f} GB/s): "
            f"calibration's models spent at most {share:.0%} of a token reading weights on this GPU, too little "
            "to measure it"
        )
    elif share < MIN_WEIGHTS_SHARE:
        if not 0 < tg.bw < MAX_BANDWIDTH:  # the bytes did not show in the times at all
            raise CalibrationFailed(
                f"calibration's models spent at most {share:.0%} of a token reading weights on "
                f"{identity.get('device')}, too little to measure its memory bandwidth, and the device publishes none"
            )
        notes.append(
            f"calibration's models spent at most {share:.0%} of a token reading weights on this device: its "
            "bandwidth, and so larger models' speed, is uncertain"
        )
    return SpeedProfile(
        bw_effective=tg.bw,
        t_fixed=tg.t_fixed,
        pp_fixed=pp.c0,
        t_layer=tg.t_layer,
        pp_layer=pp.c_layer,
        bw_by_quant=tg.bw_by_key,
        bw_by_family=tg_family.bw_by_key,
        flops_by_quant=pp.flops_by_key,
        flops_by_family=pp_family.flops_by_key,
        attn_flops=pp.attn_flops,
        source="measured",
        when=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        points=sum(len(m.tg_by_quant) for m in results),
        fit_error=tg.worst_error,
        note="; ".join(notes),
        **identity,
    )


def gpu_to_measure(hardware: HardwareReport, gpu: bool | None, progress: Progress) -> BackendDevice | None:
    """The device calibration measures besides the CPU (``gpu`` as calibrate() takes it), saying why it skips a
    software one."""
    device = hardware.offload_device() if gpu is not False else None
    if device is not None and device.software and gpu is None:
        progress(f"{device.name} is {device.kind_label}: too slow to measure here, its layers stay an estimate")
        return None
    return device


def calibrate(
    paths: AppPaths,
    template: Path,
    progress: Progress,
    *,
    shapes: tuple[SyntheticShape, ...] = CALIBRATION_SHAPES,
    types: tuple[str, ...] = CALIBRATION_TYPES,
    threads: int | None = None,
    gpu: bool | None = None,
    runs: Runs = RUNS,
) -> Calibration:
    """Measure this machine and fit its profiles; ``template`` lends its tokenizer (the starter model). Where the
    build offloads, the same models are measured a second time on the GPU, for its own profile: a GPU's speed
    cannot be guessed from the CPU's. ``gpu`` None measures a hardware GPU and skips a software one (lavapipe
    runs a 135M model at ~1 token/s: calibration's runs would take most of an hour there); True measures
    whichever device takes layers; False the CPU only."""
    t0 = time.perf_counter()
    folder = make_scratch(paths.cache_dir)
    gpu_results: list[Measured] = []
    try:
        progress("Starting the engine…")
        with EngineSession(log_path=paths.log_dir / "engine.log") as session:
            with children_ignore_sigint():
                session.client.start()
            # Read while the worker starts (each took ~2 s on a 2-core Intel Xeon; they overlap on two cores).
            tokenizer = read_tokenizer(template)
            ready = dict(session.wait_for("ready", timeout=60))
            hardware = probe_hardware(ready)
            device = gpu_to_measure(hardware, gpu, progress)
            t_prepare = time.perf_counter()
            models = _prepare(folder, tokenizer, shapes, types, progress)
            prepare_s = time.perf_counter() - t_prepare
            l2 = cpu_cache.l2_bytes()
            results = _measure_rounds(session, models, progress, threads, prepare_s, runs=runs, l2_bytes=l2)
            t_cpu = time.perf_counter()
            if device is not None:
                gpu_results = _measure_rounds(session, models, progress, threads, prepare_s, gpu_layers=-1, runs=runs)
        t_gpu = time.perf_counter()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    engine = hardware.engine
    version = engine.llama_cpp_version if engine else ""
    profile = _profile(
        results,
        backend="cpu",
        device=str(hardware.cpu_model.value or ""),
        llama_cpp_version=version,
        fingerprint=device_fingerprint(hardware),
        calibration_s=t_cpu - t0,
        l2_bytes=l2,
    )
    if device is None:
        return Calibration(profile, results)
    try:
        gpu_profile = _profile(
            gpu_results,
            backend=device.backend.lower(),
            device=device.description or device.name,
            llama_cpp_version=version,
            fingerprint=gpu_fingerprint(hardware, device),
            calibration_s=t_gpu - t_cpu,
            peak_bandwidth=nvml_peak_bandwidth(hardware),
        )
    except CalibrationFailed as exc:  # the CPU's profile stands; the GPU's layers keep their estimate
        progress(f"The GPU's profile was not stored: {exc}.")
        return Calibration(profile, results)
    return Calibration(profile, results, gpu_profile, gpu_results)
