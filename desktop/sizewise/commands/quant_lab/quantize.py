"""``sizewise quantize MODEL --type Q4_K_M``: a smaller quant of a model, made by llama.cpp's own quantizer.

The plan is checked before any work (core/quant/plan.py: the type is valid for this model, the output does
not exist, the disk has room); the work runs in a job process (engine/quant/quantize.py) with progress on
stderr; Ctrl+C cancels it and leaves no file. The result is listed in the Library as "Made here", with the
model it came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sizewise.commands import CliContext
from sizewise.commands.quant_lab import INTERRUPTED, restore_default_sigint, wait_cancellable
from sizewise.core.errors import UserError
from sizewise.core.hub.library import Library
from sizewise.core.hub.resolve import resolve_model_path
from sizewise.core.paths import AppPaths
from sizewise.core.quant.plan import choices_for, plan_quantize, read_source
from sizewise.core.quant.plan import made_here_folder as core_made_here_folder
from sizewise.engine.quant.quantize import Quantizer, QuantizeResult


def made_here_folder(paths: AppPaths) -> Path:
    """Where quants go when no --out is given: Sizewise's own models folder."""
    return core_made_here_folder(paths.data_dir)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("quantize", help="make a smaller quant of a model with llama.cpp's quantizer")
    p.add_argument("model", metavar="MODEL", help="a .gguf path or 'starter'")
    p.add_argument("--type", dest="quant", metavar="TYPE", help="target type, e.g. Q4_K_M (see --list-types)")
    p.add_argument("--out", metavar="PATH", help="output .gguf (default: Sizewise's models folder); never overwritten")
    p.add_argument(
        "--imatrix",
        metavar="FILE",
        help="importance matrix (not supported by the llama.cpp binding: the command says why)",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    p.add_argument("--list-types", action="store_true", help="list the types this model can be quantized to")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _list_types(model: Path, as_json: bool) -> int:
    choices = choices_for(read_source(model))
    if as_json:
        rows = [
            {"type": a.type.name, "bits": a.type.bits, "allowed": a.allowed, "note": a.type.note, "reason": a.reason}
            for a in choices
        ]
        print(json.dumps({"model": str(model), "types": rows}, indent=1))
        return 0
    for a in choices:
        mark = " " if a.allowed else "✗"
        why = f"  — {a.reason}" if a.reason else ""
        print(f"{mark} {a.type.name:<10} {a.type.bits:>5.2f} bits  {a.type.note}{why}")
    return 0


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    model = resolve_model_path(args.model)
    if args.list_types:
        return _list_types(model, args.json)
    if not args.quant:
        raise UserError("Say which type to make with --type (for example --type Q4_K_M); --list-types lists them.")
    if args.threads < 0:
        raise UserError("--threads must be 0 (all) or more.")
    plan = plan_quantize(
        model, args.quant, out=args.out, default_folder=made_here_folder(ctx.paths), imatrix=args.imatrix
    )
    if plan.warning:
        print(f"Note: {plan.warning}", file=sys.stderr)
    library = Library.for_app(ctx.paths)
    events: list[dict[str, Any]] = []

    def on_event(msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "progress":
            print(f"[{msg['step']}/{msg['steps']}] {msg['tensor']}", file=sys.stderr, flush=True)
        elif kind == "estimate":
            fb = int(msg.get("fallback_tensors", 0))
            extra = f"; {fb} tensors use a fallback type (their rows are not a multiple of 256)" if fb else ""
            print(f"Writing about {msg['bytes'] / 2**20:,.1f} MiB{extra}.", file=sys.stderr, flush=True)
        else:
            events.append(msg)

    def on_made(result: QuantizeResult) -> None:
        library.record_made(result.out, source=plan.source.path, quant=plan.target.name)

    quantizer = Quantizer(
        plan, on_event, threads=args.threads, log_path=str(ctx.paths.log_dir / "quantize.log"), on_made=on_made
    )
    restore_default_sigint()
    quantizer.start()
    try:
        final = wait_cancellable(quantizer.wait, quantizer.cancel)
    except KeyboardInterrupt:
        quantizer.wait(10)
        print("Cancelled; nothing was written.", file=sys.stderr)
        return INTERRUPTED
    assert final is not None
    last = events[-1] if events else final
    if last.get("type") != "finished":
        raise UserError(str(last.get("message") or "The quantization was cancelled; nothing was written."))
    result: QuantizeResult = last["result"]
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(
            f"Wrote {result.out} ({result.bytes / 2**20:,.1f} MiB, {plan.target.name} from "
            f"{plan.source.quantization}) in {result.wall_s:.1f} s."
        )
        if result.fallback_tensors:
            print(
                f"{result.fallback_tensors} tensors were stored in a fallback type: llama.cpp's {plan.target.name} "
                "needs rows that are a multiple of 256."
            )
    return 0
