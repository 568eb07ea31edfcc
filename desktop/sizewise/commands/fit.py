"""``sizewise fit MODEL``: will this model fit here (or on a target), with which settings, and how much is left.

MODEL is a local ``.gguf`` path, ``starter``, or ``owner/repo/file.gguf`` on the Hub — then only the
header is fetched, by HTTP ranges. The prediction is arithmetic on the header; the budget is this
machine (RAM available now, first GPU's free memory, llama.cpp's backends from a briefly started
engine), a named target from resources/targets.json, or figures given with --ram-gib/--vram-gib.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sizewise.commands import CliContext, parse_gpu_layers
from sizewise.commands.remote.fit_rpc import RPC_HOSTS_HELP, run_rpc
from sizewise.core.errors import UserError
from sizewise.core.fit.hardware import HardwareReport, format_bytes, machine_budget
from sizewise.core.fit.measurements import MeasurementStore, settings_key
from sizewise.core.fit.targets import custom_budget, find_target
from sizewise.core.fit.verdict import Budget, FitResult, check_fit
from sizewise.core.gguf.header import GGUFError, GGUFHeader, ModelInfo, model_info, read_header
from sizewise.core.hub.remote_header import parse_hub_spec, read_remote_header
from sizewise.core.hub.resolve import resolve_model_path
from sizewise.core.quant.tensor_check import tensor_mismatch
from sizewise.core.report.fit_report import model_summary, settings_summary
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.model import model_cost
from sizewise.core.speed.predicted import PredictedSpeed, predict_for_split


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fit", help="predict RAM/VRAM for a model and say whether it fits here or on a target")
    p.add_argument("model", metavar="MODEL", help="a .gguf path, 'starter', or owner/repo/file.gguf on the Hub")
    add_memory_flags(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--target", metavar="NAME", help="check against a named target (see resources/targets.json)")
    where.add_argument("--ram-gib", type=float, metavar="X", help="check against X GiB of RAM (custom budget)")
    p.add_argument("--vram-gib", type=float, default=None, metavar="Y", help="with --ram-gib: Y GiB of VRAM")
    p.add_argument("--no-engine", action="store_true", help="do not start the engine to learn this build's backends")
    p.add_argument("--rpc-hosts", metavar="NAME=SIZE,…", help=RPC_HOSTS_HELP)
    p.add_argument("--report", metavar="FILE", help="with --rpc-hosts: also write the split as FILE.md, .json or .html")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def add_memory_flags(p: argparse.ArgumentParser) -> None:
    """The load settings that change memory (shared with other memory commands)."""
    lp = LoadParams()
    p.add_argument("--ctx", type=int, default=lp.n_ctx, help="context length in tokens")
    p.add_argument(
        "--gpu-layers", default="auto", metavar="N|auto", help="layers to offload (-1 = all, auto = most that fit)"
    )
    p.add_argument("--kv-type", choices=("f16", "q8_0", "q4_0"), default=lp.kv_type, help="KV cache type")
    p.add_argument("--flash-attn", action="store_true", help="use flash attention (needed for a quantized KV cache)")
    p.add_argument("--batch", type=int, default=lp.n_batch, help="logical batch size (n_batch)")
    p.add_argument("--ubatch", type=int, default=lp.n_ubatch, help="physical batch size (n_ubatch)")


def memory_settings(args: argparse.Namespace) -> tuple[LoadParams, int | str]:
    gpu = parse_gpu_layers(args.gpu_layers)
    params = LoadParams(
        n_ctx=args.ctx,
        n_gpu_layers=gpu if isinstance(gpu, int) else 0,
        n_batch=args.batch,
        n_ubatch=args.ubatch,
        kv_type=args.kv_type,
        flash_attn=args.flash_attn,
    )
    try:
        params.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return params, gpu


def load_model_header(spec: str) -> tuple[GGUFHeader, ModelInfo, Path | None, dict[str, Any]]:
    """(header, info, local path or None, how it was read) for a path, 'starter' or a Hub file."""
    path = Path(spec).expanduser()
    hub = None if (spec == "starter" or path.exists()) else parse_hub_spec(spec)
    if hub is not None:
        remote = read_remote_header(*hub)
        try:
            info = model_info(remote.display_path, remote.header)
        except GGUFError as exc:
            raise UserError(str(exc)) from exc
        how = {"source": "hub", "bytes_fetched": remote.bytes_fetched, "requests": remote.requests, "url": remote.url}
        return remote.header, info, None, how
    local = resolve_model_path(spec)
    try:
        header = read_header(local)
        info = model_info(local, header)
    except GGUFError as exc:
        raise UserError(str(exc)) from exc
    return header, info, local, {"source": "local"}


def choose_budget(args: argparse.Namespace, ctx: CliContext) -> tuple[Budget, int | None]:
    """(budget, measured engine baseline RSS if the engine was started)."""
    budget, rss, _ = choose_budget_and_report(args, ctx)
    return budget, rss


def choose_budget_and_report(
    args: argparse.Namespace, ctx: CliContext
) -> tuple[Budget, int | None, HardwareReport | None]:
    """(budget, engine baseline RSS if the engine was started, this machine's report unless a target)."""
    if args.vram_gib is not None and args.ram_gib is None:
        raise UserError("--vram-gib needs --ram-gib as well.")
    if args.target:
        return find_target(args.target).budget(), None, None
    from sizewise.commands.hardware import probe

    report, rss = probe(ctx, use_engine=not args.no_engine)
    if args.ram_gib is not None:
        return custom_budget(args.ram_gib, args.vram_gib or 0.0, backend=report.backend()), None, report
    return machine_budget(report), rss, report


def predicted_speed(
    args: argparse.Namespace,
    ctx: CliContext,
    header: GGUFHeader,
    result: FitResult,
    report: HardwareReport | None,
    n_ctx: int,
) -> PredictedSpeed:
    """Speed for this verdict's layer split, on the target's published figures or this machine's profile."""
    from sizewise.engine.speed.devices import machine_devices, target_devices

    devices = target_devices(args.target) if args.target else machine_devices(ctx.paths, report)
    return predict_for_split(model_cost(header), devices, result.gpu_layers, result.n_offloadable, n_ctx)


def result_json(
    info: ModelInfo, how: dict[str, Any], params: LoadParams, gpu: int | str, result: FitResult
) -> dict[str, Any]:
    pred = result.prediction
    return {
        "model": {**model_summary(info), "read": how},
        "settings": settings_summary(params, gpu),
        "predicted": pred.to_dict(),
        "budget": result.budget.to_dict(),
        "verdict": result.verdict,
        "gpu_layers": result.gpu_layers,
        "max_ctx": result.max_ctx,
        "fit": result.to_dict(),
    }


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    params, gpu = memory_settings(args)
    header, info, local, how = load_model_header(args.model)
    mismatch = tensor_mismatch(header)
    if mismatch:  # before any sizing or load: the file is not the model its header describes
        raise UserError(f"{Path(args.model).name} does not match its own header: {mismatch}.")
    if args.report and args.rpc_hosts is None:
        raise UserError("--report goes with --rpc-hosts here; 'sizewise bench --report' writes a measured report.")
    if args.rpc_hosts is not None:
        if args.vram_gib is not None:
            raise UserError("--vram-gib does not apply with --rpc-hosts: give each host's memory in the list.")
        return run_rpc(args, ctx, header, info, how, params, gpu)
    budget, baseline, report = choose_budget_and_report(args, ctx)
    try:
        result = check_fit(header, params, budget, gpu, baseline_bytes=baseline)
        speed = predicted_speed(args, ctx, header, result, report, params.n_ctx)
    except ValueError as exc:  # an implausible header (e.g. a damaged file with absurd counts)
        raise UserError(f"Sizewise cannot size this model: {exc}") from exc
    out = result_json(info, how, params, gpu, result)
    out["predicted"].update(speed_fields(speed))
    key = settings_key(params, result.gpu_layers)
    measured = MeasurementStore(ctx.paths).latest(local, key) if local else None
    if measured is not None:
        out["measured"] = {"when": measured.when, "buffers": measured.measured, "diff_pct": measured.diff_pct}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_human(info, params, gpu, result, out.get("measured"))
        _print_speed(speed, params.n_ctx)
    return 0


def speed_fields(speed: PredictedSpeed) -> dict[str, Any]:
    """The speed keys of the ``predicted`` object (beside the memory ones, whose ``confidence`` is theirs)."""
    d = speed.to_dict()
    return {
        "tg_tps": d["tg_tps"],
        "tg_tps_full_ctx": d["tg_tps_full_ctx"],
        "pp_tps": d["pp_tps"],
        "speed_confidence": d["confidence"],
        "speed_device": d["device"],
        "speed_note": d["note"],
    }


def _print_speed(speed: PredictedSpeed, n_ctx: int) -> None:
    w = sys.stdout.write
    w(
        f"Predicted speed ({speed.confidence}, {speed.device}): generation {speed.tg_tps:.1f} tokens/s "
        f"({speed.tg_tps_full_ctx:.1f} with all {n_ctx} tokens of context in use), prompt {speed.pp_tps:.0f} "
        "tokens/s\n"
    )
    if speed.note:
        w(f"  ({speed.note})\n")


def _print_human(info: ModelInfo, params: LoadParams, gpu: int | str, r: FitResult, measured: Any) -> None:
    p = r.prediction
    w = sys.stdout.write
    w(f"{info.name}: {info.architecture}, {info.parameters_label} parameters, {info.quantization}, ")
    w(f"{format_bytes(info.file_bytes)} file\n")
    w(
        f"Settings: context {params.n_ctx}, batch {params.n_batch}/{params.n_ubatch}, KV {params.kv_type}, "
        f"flash attention {'on' if params.flash_attn else 'off'}, GPU layers {gpu}"
        + (f" → {r.gpu_layers} of {r.n_offloadable}" if gpu == "auto" else "")
        + "\n"
    )
    w(f"Predicted memory (confidence: {p.confidence}):\n")
    for name, (ram, vram) in p.components().items():
        vram_txt = f", VRAM {format_bytes(vram)}" if vram else ""
        w(f"  {name:<9} {format_bytes(ram + vram):>11}  (RAM {format_bytes(ram)}{vram_txt})\n")
    w(f"  {'RAM':<9} {format_bytes(p.ram_bytes):>11}  + {format_bytes(r.ram_margin)} safety margin\n")
    if p.compute_cpu_unwritten:
        w(
            f"  (llama.cpp also reserves {format_bytes(p.compute_cpu_unwritten)} of compute memory for logits the "
            "engine never asks for; never written, it takes no RAM)\n"
        )
    if p.vram_bytes:
        w(f"  {'VRAM':<9} {format_bytes(p.vram_bytes):>11}  + {format_bytes(r.vram_margin)} safety margin\n")
    b = r.budget
    w(f"Budget: {format_bytes(b.ram_bytes)} RAM, {format_bytes(b.vram_bytes)} VRAM — {b.source}\n")
    w(f"Verdict: {r.verdict} — {r.words()}\n")
    w(f"Largest context that fits: {r.max_ctx or 'none'}\n")
    for note in r.notes:
        w(f"note: {note}\n")
    if measured:
        diffs = ", ".join(f"{k} {v:+.2f}%" for k, v in measured["diff_pct"].items() if v is not None)
        w(f"Last measured load with these settings: {diffs} (predicted vs measured)\n")
