"""``sizewise generate``: one reply from a model, streamed or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sizewise.commands import CliContext, add_sampling_flags, sampling_from_args
from sizewise.commands.remote.engines import add_server_flags, check_target, reply_engine, speed_line
from sizewise.core.errors import UserError
from sizewise.core.hub.resolve import check_model, context_warning, resolve_model_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="generate a reply from a model or a server (headless)")
    p.add_argument("model", metavar="MODEL", nargs="?", help="path to a .gguf file, or 'starter' (or give --server)")
    p.add_argument("--prompt", required=True, help="the user message (or text to continue for base models)")
    add_sampling_flags(p)
    add_server_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object at the end instead of streaming")
    p.set_defaults(func=run)


def build_request(chat_mode: str, prompt: str, system: str) -> dict[str, object]:
    if chat_mode == "chat":
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return {"messages": messages}
    return {"prompt": (system + "\n\n" + prompt) if system else prompt}


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if not args.prompt.strip():
        raise UserError("The prompt is empty; give some text with --prompt.")
    remote = check_target(args, args.model)
    sampling, load = sampling_from_args(args)
    path: Path | None = None
    model: dict[str, object] = {}
    warning = None
    if not remote:
        path = resolve_model_path(args.model)
        info = check_model(path)
        model = {"path": str(path), "name": info.name, "architecture": info.architecture}
        warning = context_warning(info, load.n_ctx)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    pieces: list[str] = []
    with reply_engine(args, ctx, load, path) as engine:
        if engine.chat_mode != "chat" and not args.json:
            print("note: this model has no chat template; using plain completion mode.", file=sys.stderr)
        request = build_request(engine.chat_mode, args.prompt, args.system)
        try:
            for piece in engine.stream(sampling, **request):  # type: ignore[arg-type]
                pieces.append(piece)
                if not args.json:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        except Exception:
            if pieces and not args.json:
                sys.stdout.write("\n")  # the partial reply stays on screen; the error follows on its own line
            elif pieces:
                print(json.dumps({"text": "".join(pieces), "finish_reason": "interrupted"}, indent=2))
            raise
        stats = engine.last_stats
        assert stats is not None
        if engine.remote:
            model = {"name": engine.info.model, "server": engine.info.url}  # type: ignore[attr-defined]
        fields = engine.json_fields()
    if args.json:
        out = {
            "model": model,
            "mode": engine.chat_mode,
            "text": "".join(pieces),
            "tokens": stats.tokens,
            "prompt_tokens": stats.prompt_tokens,
            "ttft_ms": round(stats.ttft_ms, 2),
            "pp_tps": round(stats.pp_tps, 2),
            "tg_tps": round(stats.tg_tps, 2),
            "finish_reason": stats.finish_reason,
            "seed": stats.seed,
            "settings": {"sampling": sampling.to_dict(), "load": (engine.load_params or load).to_dict()},
            **fields,
            "warnings": [warning] if warning else [],
        }
        print(json.dumps(out, indent=2))
    else:
        sys.stdout.write("\n")
        print(f"[{speed_line(engine, stats)}, {stats.finish_reason}]", file=sys.stderr)
    return 0
