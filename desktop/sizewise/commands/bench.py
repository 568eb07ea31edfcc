"""``sizewise bench MODEL [MODEL…]``: measured speed and memory on this machine, next to the prediction.

Per model: a fresh engine worker (so its peak RSS belongs to this model alone), the memory
prediction and verdict for exactly these settings (core/fit/verdict.py against this machine's budget, with
the worker's own baseline RSS), the load with those settings, llama.cpp's logged buffers, then the
llama-bench loop inside the worker (engine/bench.py): pp and tg as mean ± sample stddev over the
repetitions, and the time to first token of a real chat turn. The measurement is kept in the model's
record (core/fit/measurements.py) so ``sizewise fit`` and the library show it later.

Progress goes to stderr; ``--json`` prints one object on stdout (the same shape as the JSON report,
see resources/report.schema.json). Ctrl+C stops the benchmark in the worker, shuts the worker down and
exits 130: the worker is started with SIGINT ignored, so the terminal's Ctrl+C reaches only this
process, which then ends the worker in order instead of letting it die mid-call.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sizewise.commands import CliContext, add_quality_floor_flag, check_min_same_top
from sizewise.commands.fit import add_memory_flags, memory_settings, speed_fields
from sizewise.commands.remote.engines import add_server_flags, check_target
from sizewise.core.compare.quality import quality_sections
from sizewise.core.errors import UserError
from sizewise.core.fit.hardware import HardwareReport, format_bytes, machine_budget, probe_hardware
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.measurements import MeasurementStore, make_record, settings_key
from sizewise.core.fit.verdict import FitResult, check_fit
from sizewise.core.gguf.header import GGUFHeader, ModelInfo
from sizewise.core.hub.resolve import inspect_model, resolve_model_path
from sizewise.core.quant.results import QualityStore
from sizewise.core.report.fit_report import (
    build_report,
    hardware_section,
    llama_cpp_facts,
    model_entry,
    report_format,
    settings_summary,
    write_report,
)
from sizewise.core.report.quality_section import quality_line
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.model import model_cost
from sizewise.core.speed.predicted import PredictedSpeed, predict_for_split
from sizewise.engine.bench import PP_DEFAULT, REPETITIONS_DEFAULT, TG_DEFAULT, BenchRequest
from sizewise.engine.child_signals import children_ignore_sigint
from sizewise.engine.process_memory import worker_rss
from sizewise.engine.session import EngineError, EngineSession
from sizewise.engine.speed.devices import machine_devices

BENCH_ID = 1
CANCEL_GRACE_S = 5.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="measure prompt/generation speed (llama-bench method), time to first token and memory, "
        "next to the prediction",
    )
    p.add_argument(
        "models", nargs="*", metavar="MODEL", help="a .gguf path or 'starter' (several: one after another; or --server)"
    )
    add_memory_flags(p)
    p.add_argument("--pp", type=int, default=PP_DEFAULT, help="prompt tokens per prompt-processing run")
    p.add_argument("--tg", type=int, default=TG_DEFAULT, help="tokens per generation run")
    p.add_argument("-r", "--repetitions", type=int, default=REPETITIONS_DEFAULT, help="measured runs of each")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: llama-cpp-python's choice)")
    p.add_argument("--no-warmup", action="store_true", help="skip the warm-up runs")
    p.add_argument("--no-ttft", action="store_true", help="skip the time-to-first-token chat turns")
    add_quality_floor_flag(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", metavar="FILE", help="also write a hardware-fit report: FILE.md, FILE.json or FILE.html")
    add_server_flags(p)
    p.set_defaults(func=run)


def _progress(label: str, msg: dict[str, Any]) -> None:
    phase = str(msg.get("phase"))
    value = msg.get("value")
    what = {
        "warmup_pp": "warm-up prompt",
        "warmup_tg": "warm-up generation",
        "pp": "prompt",
        "tg": "generation",
        "ttft": "first token",
    }.get(phase, phase)
    rep = f" {msg.get('rep')}/{msg.get('repetitions')}" if phase in ("pp", "tg", "ttft") else ""
    figure = "" if value is None else f": {float(value):.1f} {msg.get('unit')}"
    print(f"[{msg.get('step')}/{msg.get('steps')}] {label}: {what}{rep}{figure}", file=sys.stderr, flush=True)


def _run_bench(session: EngineSession, req: BenchRequest, label: str) -> dict[str, Any]:
    """Send ``bench`` and wait for its end; Ctrl+C stops it in the worker before it propagates."""
    session.client.send_raw(req.to_message(BENCH_ID))
    try:
        while True:
            msg = session.wait_for("bench_progress", "bench_done", "failed", timeout=3600)
            if msg.get("id") != BENCH_ID:
                continue
            if msg["type"] == "bench_progress":
                _progress(label, msg)
            elif msg["type"] == "failed":
                raise EngineError(str(msg.get("message")))
            else:
                return msg
    except KeyboardInterrupt:
        print("sizewise: stopping the benchmark…", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError, RuntimeError):
            session.client.send_raw({"type": "stop", "id": BENCH_ID})
        with contextlib.suppress(EngineError):
            session.wait_for("bench_done", "failed", timeout=CANCEL_GRACE_S)
        raise


def bench_model(
    ctx: CliContext,
    path: Path,
    header: GGUFHeader,
    info: ModelInfo,
    params: LoadParams,
    gpu: int | str,
    req: BenchRequest,
    threads: int | None,
) -> tuple[dict[str, Any], dict[str, Any], HardwareReport]:
    """(report entry, engine ready message, hardware) for one model, in its own worker."""
    label = info.name
    print(f"{label}: starting the engine…", file=sys.stderr, flush=True)
    with EngineSession(log_path=ctx.paths.log_dir / "engine.log") as session:
        with children_ignore_sigint():
            session.client.start()
        ready = dict(session.wait_for("ready", timeout=60))
        baseline = worker_rss(session.client.pid)
        hardware = probe_hardware(ready)
        fit: FitResult = check_fit(header, params, machine_budget(hardware), gpu, baseline_bytes=baseline)
        devices = machine_devices(ctx.paths, hardware)
        speed = predict_for_split(model_cost(header), devices, fit.gpu_layers, fit.n_offloadable, params.n_ctx)
        load = replace(params, n_gpu_layers=fit.gpu_layers, n_threads=threads)
        settings = {**settings_summary(load, fit.gpu_layers), "gpu_layers_requested": gpu, "n_threads": threads}
        hw, lc = hardware_section(hardware), llama_cpp_facts(ready)
        print(f"{label}: loading ({fit.verdict} predicted)…", file=sys.stderr, flush=True)
        try:
            loaded = session.load(path, load)
        except EngineError as exc:
            entry = model_entry(info=info, settings=settings, fit=fit, hardware=hw, llama_cpp=lc, error=str(exc))
            return entry, ready, hardware
        loaded_entry = functools.partial(
            model_entry, info=info, settings=settings, fit=fit, loaded=loaded, baseline_rss_bytes=baseline,
            hardware=hw, llama_cpp=lc,
        )  # fmt: skip
        try:
            done = _run_bench(session, req, label)
        except EngineError as exc:
            return loaded_entry(error=str(exc)), ready, hardware
        settings.update(n_threads=done.get("n_threads"), n_threads_batch=done.get("n_threads_batch"))
        entry = loaded_entry(bench=done, peak_rss_bytes=int(done.get("peak_rss_bytes") or 0))
    _add_predicted_speed(entry, speed)
    _remember(ctx, path, fit, loaded, entry, load)
    return entry, ready, hardware


def _add_predicted_speed(entry: dict[str, Any], speed: PredictedSpeed) -> None:
    """The speed prediction beside the measurement, and measured ÷ predicted: how far the model is off here."""
    pred = entry.get("predicted")
    if not isinstance(pred, dict):
        return
    pred.update(speed_fields(speed))
    for key in ("tg", "pp"):
        measured = (entry.get(key) or {}).get("mean_tps")
        predicted = pred[f"{key}_tps"]
        pred[f"{key}_measured_over_predicted"] = round(measured / predicted, 3) if measured and predicted else None


def _remember(
    ctx: CliContext, path: Path, fit: FitResult, loaded: dict[str, Any], entry: dict[str, Any], load: LoadParams
) -> None:
    """Keep the measurement with the model's record (measured vs predicted after every load)."""
    buffers = MeasuredBuffers.from_lines(list(loaded.get("buffers") or []))
    extra = {
        "peak_rss_bytes": (entry.get("measured") or {}).get("peak_rss_bytes"),
        "tg_tps": (entry.get("tg") or {}).get("mean_tps"),
        "pp_tps": (entry.get("pp") or {}).get("mean_tps"),
        "ttft_ms": entry.get("ttft_ms"),
        "load_s": entry.get("load_s"),
        "source": "sizewise bench",
    }
    with contextlib.suppress(OSError):
        MeasurementStore(ctx.paths).add(
            path, make_record(fit.prediction, buffers, settings_key(load, fit.gpu_layers), extra)
        )


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    remote = check_target(args, args.models)
    params, gpu = memory_settings(args)
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, not {args.threads}.")
    req = BenchRequest(
        pp=args.pp, tg=args.tg, repetitions=args.repetitions, warmup=not args.no_warmup, ttft=not args.no_ttft
    )
    problem = req.problem(params.n_ctx)
    if problem is not None:
        raise UserError(problem)
    check_min_same_top(args.min_same_top)
    if remote:
        from sizewise.commands.remote.bench import run_remote

        return run_remote(args, ctx)
    if args.report:
        report_format(args.report)  # a wrong suffix fails now, not after minutes of benchmarking
    models = []
    for spec in args.models:
        path = resolve_model_path(spec)
        header, info = inspect_model(path)
        models.append((path, header, info))
    entries: list[dict[str, Any]] = []
    ready: dict[str, Any] = {}
    hardware: HardwareReport | None = None
    for path, header, info in models:
        entry, ready, hardware = bench_model(ctx, path, header, info, params, gpu, req, args.threads)
        entries.append(entry)
    store = QualityStore(ctx.paths)
    for entry, quality in zip(entries, quality_sections([str(m[0]) for m in models], store.preferred), strict=True):
        entry["quality"] = quality
    report = build_report(
        kind="bench",
        entries=entries,
        hardware=hardware_section(hardware) if hardware is not None else None,
        llama_cpp=llama_cpp_facts(ready),
        settings={
            **settings_summary(params, gpu),
            "n_threads": args.threads,
            "pp": req.pp,
            "tg": req.tg,
            "repetitions": req.repetitions,
            "warmup": req.warmup,
            "ttft_prompt": req.ttft_prompt if req.ttft else None,
            "method": "llama-bench: pp and tg each from an empty KV cache; mean ± sample stddev of "
            "per-repetition tokens/s",
        },
        min_same_top=args.min_same_top,
    )
    if args.report:
        write_report(report, args.report)
        print(f"Report written to {args.report}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_human(report)
    return 1 if any(e.get("error") for e in entries) else 0


def _print_human(report: dict[str, Any]) -> None:
    w = sys.stdout.write
    s = report["settings"]
    w(
        f"Settings: context {s['ctx']}, batch {s['n_batch']}/{s['n_ubatch']}, KV {s['kv_type']}, "
        f"flash attention {'on' if s['flash_attn'] else 'off'}, GPU layers {s['gpu_layers']}; "
        f"pp {s['pp']}, tg {s['tg']}, {s['repetitions']} repetitions\n"
    )
    for i, e in enumerate(report["models"]):
        star = " ★ best choice" if report.get("best") == i else ""
        w(f"\n{e['label']} ({e['model']['quantization']}){star}\n")
        if e.get("error"):
            w(f"  failed: {e['error']}\n")
        for key, name in (("pp", "prompt"), ("tg", "generation")):
            sp = e.get(key)
            if sp:
                w(
                    f"  {name:<11} {sp['mean_tps']:8.1f} ± {sp['sd_tps']:.1f} tokens/s  ({key}{sp['n']}, "
                    f"{sp['repetitions']} runs)\n"
                )
        pred_speed = e.get("predicted") or {}
        if pred_speed.get("tg_tps") is not None and (e.get("tg") or e.get("pp")):
            w(
                f"  predicted   prompt {pred_speed['pp_tps']:.1f}, generation {pred_speed['tg_tps']:.1f} tokens/s "
                f"({pred_speed['speed_confidence']}; measured ÷ predicted: prompt "
                f"{_ratio(pred_speed.get('pp_measured_over_predicted'))}, generation "
                f"{_ratio(pred_speed.get('tg_measured_over_predicted'))})\n"
            )
        if e.get("ttft_ms") is not None:
            w(f"  first token {e['ttft_ms']:8.0f} ms (chat turn)\n")
        if e.get("load_s") is not None:
            w(f"  load        {e['load_s']:8.2f} s\n")
        pred, meas, diff = e.get("predicted") or {}, e.get("measured") or {}, e.get("diff_pct") or {}
        if meas:
            for c in ("weights", "kv", "compute", "total"):
                d = diff.get(c)
                w(
                    f"  {c:<11} predicted {format_bytes(pred.get(f'{c}_bytes')):>11}, measured "
                    f"{format_bytes(meas.get(f'{c}_bytes')):>11}" + ("" if d is None else f" ({d:+.2f}%)") + "\n"
                )
            w(f"  peak RSS    {format_bytes(meas.get('peak_rss_bytes')):>11}\n")
            for dev in meas.get("device_memory") or ():
                w(f"  {dev['name']:<11} {dev['description']} — {dev['label']}: {_device_use(dev)}\n")
        if e.get("verdict_text"):
            w(f"  verdict     {e['verdict']} — {e['verdict_text']}\n")
        if e.get("quality"):
            w(f"  {quality_line(e['quality'])}\n")
    best = report.get("best")
    if isinstance(best, int):
        w(f"\nBest choice for this hardware: {report['models'][best]['label']} ({report['best_rule']}).\n")
    elif report.get("min_same_top") is not None:
        w(f"\nNo model meets the rule for a best choice ({report['best_rule']}).\n")


def _device_use(dev: dict[str, Any]) -> str:
    """llama.cpp's buffers on the device, and what the device says is in use (the whole device, not this process)."""
    mine = f"llama.cpp's buffers {format_bytes(dev['llama_cpp_bytes'])}"
    if not dev["reports_usage"]:
        return f"{mine}; the driver reports no usage (free = total = {format_bytes(dev['total_bytes'])})"
    return f"{mine}; {format_bytes(dev['in_use_bytes'])} of {format_bytes(dev['total_bytes'])} in use on the device"


def _ratio(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f}"
