"""``sizewise compare MODEL [MODEL…] --prompt TEXT``: the same prompt and seed over 2–4 runs, side by side.

Either 2–4 models (or quants of one model), or one model at 2–4 temperatures (``--temperatures``: the
compare view's "temperature made visible"). Every run gets the same prompt, sampling and seed: the user's
``--seed``, else one random seed drawn here and recorded for all runs, so any run can be repeated.

The runs go one after another, each in its own engine worker (started, checked against this machine's
memory, loaded, asked, shut down), so only one model is in memory at a time and each worker's peak RSS
belongs to one run. Each run is kept as the compare view keeps it (``core.compare.results.RunResult``), and
``--report`` writes the hardware-fit report the view's Export writes, built by ``core.compare.report``.

Models on servers take part with ``--server URL[#MODEL]`` (repeatable; commands/remote/compare.py): several
server models, or server models beside local files (the local MODELs run first, then the servers in the
order given), or one server model at 2–4 temperatures. A server run has no fit verdict and no engine peak
here; its entry carries the server's own timings and memory instead, and no best choice for this hardware
is named when a server took part (its speed and memory are not this machine's).

Progress goes to stderr. Without ``--json`` each reply is printed on stdout as it streams, followed by its
figures; with ``--json`` one object with a ``runs`` list is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sizewise.commands import (
    CliContext,
    add_quality_floor_flag,
    add_sampling_flags,
    check_min_same_top,
    parse_gpu_layers,
    sampling_from_args,
)
from sizewise.commands.generate import build_request
from sizewise.commands.remote.compare import add_compare_server_flags, check_server_flags, remote_entry, run_remote
from sizewise.core.compare.plan import MAX_RUNS, RunSpec, describe_settings, parse_temperatures
from sizewise.core.compare.report import REMOTE_BEST_RULE, compare_report
from sizewise.core.compare.results import RunResult
from sizewise.core.errors import UserError
from sizewise.core.fit.hardware import HardwareReport, machine_budget, probe_hardware
from sizewise.core.fit.verdict import check_fit
from sizewise.core.gguf.header import GGUFHeader
from sizewise.core.hub.resolve import context_warning, inspect_model, resolve_model_path
from sizewise.core.quant.results import QualityStore
from sizewise.core.report.fit_report import (
    READING_SPEED_FLOOR_TPS,
    model_summary,
    report_format,
    settings_summary,
    write_report,
)
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.process_memory import worker_rss
from sizewise.engine.session import EngineError, EngineSession

MiB = 1 << 20
SEED_LIMIT = 2**31  # a drawn seed stays a positive 32-bit int everywhere it is written down


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="the same prompt and seed over 2–4 models, or one model at 2–4 temperatures (headless Compare)",
        description="Run the same prompt with the same seed over 2–4 models (or quants), or over one model at "
        "2–4 temperatures, one run after another, and print each reply with its figures.",
    )
    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="a .gguf path or 'starter'; 2–4 runs in all (with --server), or one with --temperatures",
    )
    p.add_argument("--prompt", required=True, help="the user message (or text to continue for base models)")
    p.add_argument(
        "--temperatures",
        metavar="T,T[,…]",
        help="one model at 2–4 temperatures, e.g. 0.2,0.7,1.2 (instead of --temperature)",
    )
    add_sampling_flags(p)
    p.add_argument(
        "--floor",
        type=float,
        default=READING_SPEED_FLOOR_TPS,
        metavar="TPS",
        help="reading-speed floor in tokens/s for the report's best choice (default: %(default)g)",
    )
    add_quality_floor_flag(p)
    add_compare_server_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with a 'runs' list at the end")
    p.add_argument(
        "--report", metavar="FILE", help="also write the hardware-fit report: FILE.md, FILE.json or FILE.html"
    )
    p.set_defaults(func=run)


def plan_specs(
    models: list[str],
    temperatures: str | None,
    load: LoadParams,
    gpu: int | str | None = None,
    servers: list[str] | None = None,
) -> tuple[list[RunSpec], str]:
    """(runs, kind): 2–4 models (local ones first, then ``servers``), or one model at 2–4 temperatures; a
    UserError sentence otherwise. ``gpu`` is the ``--gpu-layers`` request ("auto": each run's check_fit picks
    the most layers that fit that model)."""
    gpu = load.n_gpu_layers if gpu is None else gpu
    servers = servers or []
    count = len(models) + len(servers)
    if temperatures is not None:
        if count != 1:
            raise UserError(
                "Compare either several models or one model at several temperatures: give one MODEL or --server "
                f"with --temperatures, not {count}."
            )
        temps = parse_temperatures(temperatures, fewest=2)
        if servers:
            url = servers[0]
            specs = [RunSpec(url, load, 0, t, f"{url} · temperature {t:g}", server=url) for t in temps]
            return specs, "temperature"
        path = str(resolve_model_path(models[0]))
        name = Path(path).stem
        specs = [RunSpec(path, load, gpu, temperature=t, label=f"{name} · temperature {t:g}") for t in temps]
        return specs, "temperature"
    if not 2 <= count <= MAX_RUNS:
        raise UserError(f"A comparison needs 2 to {MAX_RUNS} models (or one model with --temperatures), not {count}.")
    local = [RunSpec(str(resolve_model_path(m)), load, gpu) for m in models]
    return local + [RunSpec(s, load, 0, label=s, server=s) for s in servers], "compare"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_one(
    ctx: CliContext,
    r: RunResult,
    header: GGUFHeader,
    sampling: SamplingParams,
    prompt: str,
    system: str,
    *,
    echo: bool,
    step: str,
) -> tuple[dict[str, Any], HardwareReport | None]:
    """Fill ``r`` in from one engine worker: started, checked, loaded, asked, shut down.

    Returns the engine's ready message and the hardware probed with it (None: the engine never started).
    Load and reply failures are kept in ``r.error`` (the other runs still go ahead); ``echo`` streams the
    reply to stdout.
    """
    spec = r.spec
    if echo:
        sys.stdout.write(f"== {r.label} ==\n")
        sys.stdout.flush()
    with EngineSession(log_path=ctx.paths.log_dir / "engine.log") as session:
        _say(f"{step} {r.label}: starting the engine…")
        try:
            ready = dict(session.start())
        except EngineError as exc:
            r.error, r.done = str(exc), True
            _end(r, echo)
            return {}, None
        r.pid = session.client.pid
        r.baseline_rss = worker_rss(r.pid)
        hardware = probe_hardware(ready)
        fit = check_fit(header, spec.load, machine_budget(hardware), spec.gpu_layers, baseline_bytes=r.baseline_rss)
        r.fit = fit
        r.settings = {**settings_summary(spec.load, fit.gpu_layers), "gpu_layers_requested": spec.gpu_layers}
        _say(f"{step} {r.label}: loading ({fit.verdict.replace('_', ' ')} predicted)…")
        t0 = time.monotonic()
        try:
            loaded = session.load(spec.path, replace(spec.load, n_gpu_layers=fit.gpu_layers))
        except EngineError as exc:
            r.error, r.done = str(exc), True
            _end(r, echo)
            return ready, hardware
        r.loaded, r.load_span = dict(loaded), (t0, time.monotonic())
        if loaded["chat_mode"] != "chat":
            _say(f"{step} {r.label}: no chat template; using plain completion mode.")
        r.sampling = sampling if spec.temperature is None else replace(sampling, temperature=spec.temperature)
        _say(f"{step} {r.label}: generating (temperature {r.sampling.temperature:g}, seed {r.sampling.seed})…")
        t1 = time.monotonic()
        try:
            request = build_request(str(loaded["chat_mode"]), prompt, system)
            for piece in session.stream(r.sampling, **request):  # type: ignore[arg-type]
                r.text += piece
                if echo:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        except EngineError as exc:
            r.error = str(exc)
        r.gen_span = (t1, time.monotonic())
        stats = getattr(session, "last_stats", None)
        if stats is not None:
            r.stats = stats.to_dict()
        r.done = True
    _end(r, echo)
    return ready, hardware


def _end(r: RunResult, echo: bool) -> None:
    if echo:
        sys.stdout.write(("\n" if r.text else "") + figures_line(r) + "\n\n")
        sys.stdout.flush()


def figures_line(r: RunResult) -> str:
    if r.error:
        return f"[failed: {r.error}]"
    s = r.stats or {}
    peak = r.peak_rss
    if r.spec.server:
        timings = (r.remote or {}).get("server_timings") or {}
        server = timings.get("predicted_per_second")
        own = f", server {float(server):.1f} tok/s" if isinstance(server, int | float) else ""
        memory = ((r.remote or {}).get("memory") or {}).get("text")
        return (
            f"[remote: {s.get('tokens', 0)} tokens, {float(s.get('tg_tps') or 0):.1f} tok/s as received{own}, "
            f"first token {float(s.get('ttft_ms') or 0):.0f} ms with the network, {s.get('finish_reason')}; "
            f"memory {memory or 'unknown'}]"
        )
    return (
        f"[{s.get('tokens', 0)} tokens, {float(s.get('tg_tps') or 0):.1f} tok/s, "
        f"first token {float(s.get('ttft_ms') or 0):.0f} ms, "
        f"engine peak {'–' if peak is None else f'{peak / MiB:.0f} MiB'}, {s.get('finish_reason')}]"
    )


def _run_quality(results: list[RunResult], report: dict[str, Any]) -> list[dict[str, Any] | None]:
    """Each run's quality object from the report (whose entries skip runs whose model could not be read)."""
    entries = iter(report["models"])
    return [next(entries).get("quality") if r.info is not None else None for r in results]


def run_entry(r: RunResult, load: LoadParams, quality: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run as ``--json`` prints it: the model, its settings, the reply with its figures, the prediction and
    the model's stored quality figures."""
    s = r.stats or {}
    fit = r.fit
    entry = {
        "label": r.label,
        "model": model_summary(r.info) if r.info is not None else {"path": r.spec.path},
        "settings": {
            "sampling": r.sampling.to_dict() if r.sampling is not None else None,
            "load": r.settings or settings_summary(load, r.spec.gpu_layers),
        },
        "temperature": r.sampling.temperature if r.sampling is not None else r.spec.temperature,
        "seed": s.get("seed", r.sampling.seed if r.sampling is not None else None),
        "text": r.text,
        "tokens": s.get("tokens"),
        "prompt_tokens": s.get("prompt_tokens"),
        "tg_tps": None if r.stats is None else round(float(s.get("tg_tps") or 0.0), 2),
        "pp_tps": None if r.stats is None else round(float(s.get("pp_tps") or 0.0), 2),
        "ttft_ms": None if r.stats is None else round(float(s.get("ttft_ms") or 0.0), 2),
        "peak_rss_bytes": r.peak_rss,
        "finish_reason": s.get("finish_reason"),
        "load_s": None if r.loaded is None else round(float(r.loaded.get("load_s") or 0.0), 3),
        "verdict": fit.verdict if fit is not None else None,
        "predicted": fit.prediction.to_dict() if fit is not None else None,
        "quality": quality,
        "error": r.error,
    }
    if r.spec.server:
        entry.update(remote_entry(r))
    return entry


def _remote_out(
    args: argparse.Namespace,
    kind: str,
    sampling: SamplingParams,
    seeded: bool,
    results: list[RunResult],
    load: LoadParams,
) -> int:
    """The end of a comparison a server took part in: the runs, and no best choice for this hardware."""
    rule = REMOTE_BEST_RULE
    if args.json:
        out = {
            "kind": kind,
            "prompt": args.prompt,
            "system": args.system or None,
            "seed": sampling.seed,
            "seed_source": "given" if seeded else "drawn",
            "runs": [run_entry(r, load) for r in results],
            "best": None,
            "best_rule": rule,
            "report": None,
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    return 1 if any(r.error for r in results) else 0


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if not args.prompt.strip():
        raise UserError("The prompt is empty; give some text with --prompt.")
    if args.floor < 0:
        raise UserError(f"--floor must be 0 or more tokens/s, not {args.floor:g}.")
    check_min_same_top(args.min_same_top)
    sampling, load = sampling_from_args(args)
    check_server_flags(args)
    if args.report:
        if args.servers:
            raise UserError(
                "--report is for models on this machine (the hardware-fit report predicts from the model file); "
                "leave it out when a --server takes part."
            )
        report_format(args.report)  # a wrong suffix fails now, not after the runs
    gpu = parse_gpu_layers(args.gpu_layers)
    specs, kind = plan_specs(args.models, args.temperatures, load, gpu, args.servers)
    headers: list[GGUFHeader | None] = []
    results: list[RunResult] = []
    for spec in specs:  # every file read and checked before any engine starts
        if spec.server:
            headers.append(None)
            results.append(RunResult(spec=spec, label=spec.label))
            continue
        header, info = inspect_model(Path(spec.path))
        headers.append(header)
        label = spec.label or f"{info.name} {info.quantization} · {describe_settings(spec.load, spec.gpu_layers)}"
        results.append(RunResult(spec=spec, label=label, info=info))
        warning = context_warning(info, load.n_ctx)
        if warning and (kind == "compare" or len(results) == 1):
            _say(f"warning: {warning}")
    seeded = sampling.seed is not None
    if not seeded:
        sampling = replace(sampling, seed=random.randrange(SEED_LIMIT))
    _say(f"Comparing {len(specs)} runs with seed {sampling.seed}{'' if seeded else ' (drawn for all runs)'}.")
    ready: dict[str, Any] = {}
    hardware: HardwareReport | None = None
    for i, (r, run_header) in enumerate(zip(results, headers, strict=True)):
        step = f"[{i + 1}/{len(specs)}]"
        if run_header is None:
            run_remote(ctx, args, r, sampling, args.prompt, args.system, echo=not args.json, step=step)
            _end(r, echo=not args.json)
            continue
        got_ready, got_hardware = run_one(
            ctx, r, run_header, sampling, args.prompt, args.system, echo=not args.json, step=step
        )
        ready = got_ready or ready
        hardware = got_hardware or hardware
    if args.servers:
        return _remote_out(args, kind, sampling, seeded, results, load)
    report = compare_report(
        kind=kind,
        results=results,
        prompt=args.prompt,
        sampling=sampling,
        schedule="one_after_another",
        plan=None,
        reused=False,
        shared_threads=None,
        bench_settings=None,
        hardware=hardware,
        ready_info=ready,
        floor_tps=args.floor,
        quality=QualityStore(ctx.paths).preferred,
        min_same_top=args.min_same_top,
    )
    if kind == "temperature":
        report["settings"]["temperature"] = None  # each run has its own: settings.temperatures, reply.sampling
    if args.system:
        report["settings"]["system"] = args.system
    if args.report:
        write_report(report, args.report)
        _say(f"Report written to {args.report}")
    best = report.get("best")
    if args.json:
        out = {
            "kind": kind,
            "prompt": args.prompt,
            "system": args.system or None,
            "seed": sampling.seed,
            "seed_source": "given" if seeded else "drawn",
            "runs": [run_entry(r, load, q) for r, q in zip(results, _run_quality(results, report), strict=True)],
            "best": best,
            "best_rule": report["best_rule"],
            "report": args.report,
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif kind == "compare" and isinstance(best, int):
        print(f"Best choice for this hardware: {report['models'][best]['label']} ({report['best_rule']}).")
    elif kind == "compare" and args.min_same_top is not None:
        print(f"No model meets the rule for a best choice ({report['best_rule']}).")
    return 1 if any(r.error for r in results) else 0
