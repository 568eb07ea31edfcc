"""``sizewise write ACTION [MODEL] < text``: writing help headless; the result streams to stdout.

The actions are the writing view's (``resources/writing_actions.json``; ``--list`` shows them), and the
request is built as the view builds it (``core.chat.writing.WritingCatalog.request``): the action's
instruction and system prompt for a chat model, its completion prompt for a model without a chat template.
As in the view, the action decides the temperature and a reply length that fits the text; ``--temperature``
and ``--max-tokens`` given on the command line replace those. Like the view, the result is trimmed of
leading and trailing blank space (the tail is held back while streaming, so what arrives is exactly that).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from sizewise.commands import (
    CliContext,
    add_sampling_flags,
    parse_gpu_layers,
    print_note,
    resolve_gpu_layers,
    sampling_from_args,
)
from sizewise.core.chat.writing import WritingCatalog, load_catalog
from sizewise.core.errors import UserError
from sizewise.core.hub.resolve import check_model, context_warning, resolve_model_path
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.session import EngineError, EngineSession


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "write",
        help="writing help: rewrite, shorten, fix, summarize or translate the text on stdin (headless)",
        description="Read text from stdin, apply a writing action with a model, and stream the result to stdout. "
        "'sizewise write --list' shows the actions.",
    )
    p.add_argument("action", nargs="?", metavar="ACTION", help="a writing action (see --list)")
    p.add_argument("model", nargs="?", default="starter", metavar="MODEL", help="a .gguf path or 'starter' (default)")
    p.add_argument("--list", action="store_true", help="list the writing actions and exit")
    p.add_argument("--language", metavar="L", help="the language to translate into (translate only), e.g. French")
    add_sampling_flags(p)
    # None: the action decides (as in the writing view); a value given here replaces the action's.
    p.set_defaults(func=run, temperature=None, max_tokens=None)


def list_actions(catalog: WritingCatalog) -> str:
    width = max(len(a.id) for a in catalog.actions)
    lines = []
    for a in catalog.actions:
        extra = " (needs --language)" if a.needs_language else ""
        lines.append(f"{a.id:<{width}}  {a.label}: {a.description}{extra}")
    return "\n".join(lines) + "\n"


def _settings(args: argparse.Namespace) -> tuple[SamplingParams, LoadParams, float | None, int | None]:
    """(the user's sampling, load settings, an explicit temperature or None, an explicit max tokens or None)."""
    temperature, max_tokens = args.temperature, args.max_tokens
    defaults = SamplingParams()
    args.temperature = defaults.temperature if temperature is None else temperature
    args.max_tokens = defaults.max_tokens if max_tokens is None else max_tokens
    sampling, load = sampling_from_args(args)  # validates the explicit values too
    return sampling, load, temperature, max_tokens


class TrimmedStream:
    """Writes streamed pieces without leading blank space, holding back trailing blank space until more text
    follows: the output is the result ``.strip()``-ed, as the writing view shows it, yet still streamed."""

    def __init__(self) -> None:
        self.started = False
        self.pending = ""
        self.written = 0

    def write(self, piece: str) -> None:
        if not self.started:
            piece = piece.lstrip()
            if not piece:
                return
            self.started = True
        body = piece.rstrip()
        if body:
            sys.stdout.write(self.pending + body)
            sys.stdout.flush()
            self.written += len(self.pending) + len(body)
            self.pending = piece[len(body) :]
        else:
            self.pending += piece


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    catalog = load_catalog()
    if args.list:
        sys.stdout.write(list_actions(catalog))
        return 0
    if not args.action:
        known = ", ".join(a.id for a in catalog.actions)
        raise UserError(f"Name a writing action ({known}), or use --list to see what each does.")
    action = catalog.get(args.action)
    if args.system:
        raise UserError("--system does not apply to write: each action brings its own instructions.")
    if action.needs_language and not (args.language and args.language.strip()):
        raise UserError(f"The {action.id} action needs a language: add --language, e.g. --language French.")
    if args.language and not action.needs_language:
        print(f"note: --language is used only by translate; {action.id} ignores it.", file=sys.stderr)
    base, load, temperature, max_tokens = _settings(args)
    path = resolve_model_path(args.model)
    info = check_model(path)
    if sys.stdin.isatty():
        print("Type or paste the text, then press Ctrl+D (Ctrl+Z, Enter on Windows).", file=sys.stderr)
    text = sys.stdin.read()
    if not text.strip():
        raise UserError(f"There is no text on stdin; pipe some in, e.g. 'sizewise write {action.id} < notes.txt'.")
    warning = context_warning(info, load.n_ctx)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    out = TrimmedStream()
    with EngineSession(log_path=ctx.paths.log_dir / "engine.log") as session:
        try:
            load, note = resolve_gpu_layers(session, path, load, parse_gpu_layers(args.gpu_layers))
            print_note(note)
            loaded = session.load(path, load)
            chat = loaded["chat_mode"] == "chat"
            if not chat:
                print("note: this model has no chat template; using the plain completion prompt.", file=sys.stderr)
            request = catalog.request(action.id, text, language=args.language, chat=chat, base=base)
            sampling = request.sampling
            if temperature is not None:
                sampling = replace(sampling, temperature=temperature)
            if max_tokens is not None:
                sampling = replace(sampling, max_tokens=max_tokens)
            for piece in session.stream(sampling, messages=request.messages, prompt=request.prompt):
                out.write(piece)
        except EngineError as exc:
            raise UserError(str(exc)) from exc
        stats = session.last_stats
        assert stats is not None
    sys.stdout.write("\n")
    sys.stdout.flush()
    if not out.written:
        print("note: the model returned no text.", file=sys.stderr)
    print(
        f"[{action.label}: {stats.tokens} tokens, {stats.tg_tps:.1f} tok/s, first token {stats.ttft_ms:.0f} ms, "
        f"temperature {sampling.temperature:g}, seed {stats.seed}, {stats.finish_reason}]",
        file=sys.stderr,
    )
    return 0
