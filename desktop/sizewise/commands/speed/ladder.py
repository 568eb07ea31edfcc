"""``sizewise ladder``: which model sizes and quants this machine (or a target) can run, and how fast.

Every catalogue model at every common quant type, judged without a download: the verdict (GPU / partial
offload / CPU / too large), the memory, the largest context that fits, the file size and the predicted
generation and prompt speed. Arithmetic only (core/ladder); the engine is started once, briefly, to learn
this machine's backends and find its speed profile, unless a target or --no-engine is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sizewise.commands import CliContext
from sizewise.commands.fit import choose_budget_and_report
from sizewise.core.errors import UserError
from sizewise.core.fit.hardware import format_bytes
from sizewise.core.ladder.catalogue_rows import ladder_rows
from sizewise.core.ladder.cells import LADDER_QUANTS, READING_FLOOR_TPS, VERDICT_WORDS, LadderCell, build_ladder
from sizewise.core.quant.types import quant_type
from sizewise.core.sampling import LoadParams
from sizewise.engine.speed.devices import machine_devices, target_devices


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ladder", help="every catalogue model × quant: fits here (or on a target)? how fast?")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--target", metavar="NAME", help="judge for a named target (see resources/targets.json)")
    where.add_argument("--ram-gib", type=float, metavar="X", help="judge for X GiB of RAM")
    p.add_argument("--vram-gib", type=float, metavar="Y", help="with --ram-gib: Y GiB of GPU memory")
    p.add_argument("--ctx", type=int, default=4096, help="context length in tokens (default 4096)")
    p.add_argument(
        "--floor", type=float, default=READING_FLOOR_TPS, metavar="TPS",
        help=f"reading-speed floor: slower than this is 'fits but slow' (default {READING_FLOOR_TPS:g} tokens/s)",
    )  # fmt: skip
    p.add_argument("--quants", metavar="LIST", help=f"comma-separated quant types (default {','.join(LADDER_QUANTS)})")
    p.add_argument("--no-engine", action="store_true", help="do not start the engine to probe this machine")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _quants(text: str | None) -> tuple[str, ...]:
    if not text:
        return LADDER_QUANTS
    out = []
    for name in (q.strip() for q in text.split(",")):
        try:
            out.append(quant_type(name).name)
        except (KeyError, ValueError) as exc:
            raise UserError(f"{name!r} is not a quant type llama.cpp makes (for example Q4_K_M, Q8_0).") from exc
    return tuple(out)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.ctx < 256:
        raise UserError(f"--ctx must be at least 256 tokens, not {args.ctx}.")
    if args.floor < 0:
        raise UserError(f"--floor cannot be negative ({args.floor:g}).")
    quants = _quants(args.quants)
    budget, _, report = choose_budget_and_report(args, ctx)
    devices = target_devices(args.target) if args.target else machine_devices(ctx.paths, report)
    rows = ladder_rows()
    cells = build_ladder(rows.models, budget, devices, LoadParams(n_ctx=args.ctx), quants, args.floor)
    if args.json:
        out: dict[str, Any] = {
            "budget": budget.to_dict(),
            "ctx": args.ctx,
            "floor_tps": args.floor,
            "quants": list(quants),
            "speed_note": devices.cpu.note,
            "left_out": rows.skipped,
            "cells": [c.to_dict() for c in cells],
        }
        print(json.dumps(out, indent=2))
        return 0
    _print_table(cells, quants, budget.source, args.ctx, args.floor, devices.cpu.note)
    if rows.skipped:
        print(f"\nNote: {rows.note()}.")
    return 0


def cell_text(c: LadderCell) -> str:
    """A cell in a few characters: the verdict and the generation speed, or why not."""
    if not c.fits:
        return "too large"
    mark = "" if c.usable else " slow"
    where = {"fits_gpu": "GPU", "fits_partial": "part", "fits_cpu": "CPU"}[c.verdict]
    return f"{where} {c.tg_tps:.0f} t/s{mark}"


def _print_table(cells: list[LadderCell], quants: tuple[str, ...], source: str, n_ctx: int, floor: float,
                 note: str) -> None:  # fmt: skip
    w = sys.stdout.write
    w(f"Budget: {source}\nContext {n_ctx} tokens; 'slow' = under {floor:g} tokens/s of generation.\n")
    if note:
        w(f"Speeds: {note}\n")
    rows: dict[str, list[LadderCell]] = {}
    for c in cells:
        rows.setdefault(c.model, []).append(c)
    name_w = max(len(n) for n in rows) + 2
    col_w = 17
    w("\n" + "".ljust(name_w) + "".join(q.ljust(col_w) for q in quants) + "\n")
    for name, row in rows.items():
        w(name.ljust(name_w) + "".join(cell_text(c).ljust(col_w) for c in row) + "\n")
        w("".ljust(name_w) + "".join(format_bytes(c.file_bytes).ljust(col_w) for c in row) + "\n")
    w(f"\nVerdicts: {', '.join(f'{v}' for v in VERDICT_WORDS.values())}; 'part' = partial GPU offload.\n")
