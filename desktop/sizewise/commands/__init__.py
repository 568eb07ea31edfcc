"""CLI sub-commands: one module each, registered in sizewise.cli.COMMANDS."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sizewise.core.errors import UserError
from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams, SamplingParams

if TYPE_CHECKING:
    from sizewise.engine.session import EngineSession

GPU_LAYERS_METAVAR = "N|auto"


@dataclass
class CliContext:
    paths: AppPaths
    debug: bool = False


def add_sampling_flags(p: argparse.ArgumentParser) -> None:
    """The sampling and load flags shared by generate, chat and compare."""
    s, lp = SamplingParams(), LoadParams()
    p.add_argument("--system", default="", help="system prompt (chat models only)")
    p.add_argument("--temperature", type=float, default=s.temperature, help="0–2; low = focused, high = creative")
    p.add_argument("--top-p", type=float, default=s.top_p)
    p.add_argument("--top-k", type=int, default=s.top_k)
    p.add_argument("--min-p", type=float, default=s.min_p)
    p.add_argument("--repeat-penalty", type=float, default=s.repeat_penalty)
    p.add_argument("--seed", type=int, default=None, help="fixed seed for repeatable output (default: random)")
    p.add_argument("--max-tokens", type=int, default=s.max_tokens)
    p.add_argument("--ctx", type=int, default=lp.n_ctx, help="context length in tokens")
    p.add_argument(
        "--gpu-layers",
        default=str(lp.n_gpu_layers),
        metavar=GPU_LAYERS_METAVAR,
        help=f"layers to offload to the GPU (-1 = all, auto = the most that fit; default {lp.n_gpu_layers})",
    )


def parse_gpu_layers(value: object) -> int | str:
    """``--gpu-layers``: a number of layers (-1 = all) or "auto" (the most that fit), the same in every command."""
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        return int(str(value))
    except ValueError as exc:
        raise UserError(f"--gpu-layers takes a number or 'auto', not {value!r}.") from exc


def resolve_gpu_layers(
    session: EngineSession, path: Path, load: LoadParams, request: int | str
) -> tuple[LoadParams, str]:
    """(the settings to load with, a note for stderr): ``auto`` becomes the most layers that fit this machine's
    budget, sized from the devices the started engine reports (any backend: CUDA, Vulkan, Metal …) exactly as
    ``sizewise fit`` sizes them; a number is kept as given. Starts the engine if it is not running."""
    if request != "auto":
        return load, ""
    from sizewise.core.fit.hardware import machine_budget, probe_hardware
    from sizewise.core.fit.verdict import check_fit
    from sizewise.core.gguf.header import read_header
    from sizewise.engine.process_memory import worker_rss

    ready = session.client.ready_info if session.client.alive else session.start()
    hardware = probe_hardware(dict(ready))
    budget = machine_budget(hardware)
    try:
        fit = check_fit(read_header(path), load, budget, "auto", baseline_bytes=worker_rss(session.client.pid))
    except ValueError as exc:  # an implausible header
        raise UserError(f"Sizewise cannot size this model for --gpu-layers auto: {exc}") from exc
    where = f"on {hardware.gpus[0].name}" if hardware.gpus else "offloaded (no GPU found)"
    note = f"GPU layers auto: {fit.gpu_layers} of {fit.n_offloadable} {where} ({fit.verdict})"
    return replace(load, n_gpu_layers=fit.gpu_layers), note


def print_note(note: str) -> None:
    if note:
        print(note, file=sys.stderr)


def sampling_from_args(args: argparse.Namespace) -> tuple[SamplingParams, LoadParams]:
    sampling = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        min_p=args.min_p,
        repeat_penalty=args.repeat_penalty,
        max_tokens=args.max_tokens,
        seed=args.seed,
    )
    gpu = parse_gpu_layers(args.gpu_layers)
    load = LoadParams(n_ctx=args.ctx, n_gpu_layers=gpu if isinstance(gpu, int) else 0)  # auto: resolved at load
    try:
        sampling.validate()
        load.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return sampling, load


def add_quality_floor_flag(p: argparse.ArgumentParser) -> None:
    """``--min-same-top PCT``, shared with ``bench``."""
    p.add_argument(
        "--min-same-top",
        type=float,
        default=None,
        metavar="PCT",
        help="quality floor for the best choice: the same top token as the model's reference at least PCT %% of "
        "the time, from its stored 'sizewise quality' run (a model without one does not pass; default: no floor)",
    )


def check_min_same_top(value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 100.0:
        raise UserError(f"--min-same-top is a percentage between 0 and 100, not {value:g}.")
