"""CLI sub-commands: one module each, registered in sizewise.cli.COMMANDS."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from sizewise.core.errors import UserError
from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams, SamplingParams


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
    p.add_argument("--gpu-layers", type=int, default=lp.n_gpu_layers, help="layers to offload to the GPU (-1 = all)")


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
    load = LoadParams(n_ctx=args.ctx, n_gpu_layers=args.gpu_layers)
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
