"""``sizewise generate``: one reply from a model, streamed or as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from sizewise.commands import CliContext, add_sampling_flags, sampling_from_args
from sizewise.core.errors import UserError
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.hub.resolve import check_model, context_warning, resolve_model_path
from sizewise.engine.session import EngineError, EngineSession


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="generate a reply from a model (headless)")
    p.add_argument("model", metavar="MODEL", help="path to a .gguf file, or 'starter'")
    p.add_argument("--prompt", required=True, help="the user message (or text to continue for base models)")
    add_sampling_flags(p)
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
    sampling, load = sampling_from_args(args)
    path = resolve_model_path(args.model)
    info = check_model(path)
    warning = context_warning(info, load.n_ctx)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    with EngineSession(log_path=ctx.paths.log_dir / "engine.log") as session:
        try:
            loaded = session.load(path, load)
            if loaded["chat_mode"] != "chat" and not args.json:
                print("note: this model has no chat template; using plain completion mode.", file=sys.stderr)
            request = build_request(str(loaded["chat_mode"]), args.prompt, args.system)
            pieces: list[str] = []
            for piece in session.stream(sampling, **request):  # type: ignore[arg-type]
                pieces.append(piece)
                if not args.json:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        except EngineError as exc:
            raise UserError(str(exc)) from exc
        stats = session.last_stats
        assert stats is not None
    if args.json:
        buffers = MeasuredBuffers.from_lines(loaded["buffers"])
        out = {
            "model": {"path": str(path), "name": info.name, "architecture": info.architecture},
            "mode": loaded["chat_mode"],
            "text": "".join(pieces),
            "tokens": stats.tokens,
            "prompt_tokens": stats.prompt_tokens,
            "ttft_ms": round(stats.ttft_ms, 2),
            "pp_tps": round(stats.pp_tps, 2),
            "tg_tps": round(stats.tg_tps, 2),
            "finish_reason": stats.finish_reason,
            "seed": stats.seed,
            "settings": {"sampling": sampling.to_dict(), "load": load.to_dict()},
            "engine": {
                "peak_rss_bytes": stats.peak_rss_bytes,
                "rss_bytes": stats.rss_bytes,
                "load_s": round(float(loaded["load_s"]), 3),
                "n_ctx": loaded["n_ctx"],
                "buffers": buffers.to_dict(),
            },
            "warnings": [warning] if warning else [],
        }
        print(json.dumps(out, indent=2))
    else:
        sys.stdout.write("\n")
        print(
            f"[{stats.tokens} tokens, {stats.tg_tps:.1f} tok/s, first token {stats.ttft_ms:.0f} ms, "
            f"engine peak {stats.peak_rss_bytes / 2**20:.0f} MiB, {stats.finish_reason}]",
            file=sys.stderr,
        )
    return 0
