"""``sizewise chat``: add one turn to a saved conversation, streaming and saving the reply.

The user's message is stored before the model even loads, and the reply is saved while it
streams (see core/chat/reply.py, StreamingReply), so killing the command at any moment keeps
everything written so far; the next open marks the cut-off reply as interrupted.
"""

from __future__ import annotations

import argparse
import sys

from sizewise.commands import CliContext, add_sampling_flags, sampling_from_args
from sizewise.commands.remote.engines import add_server_flags, check_target, reply_engine, speed_line
from sizewise.core.chat.context_window import fit_messages, reply_reserve
from sizewise.core.chat.presets import PresetLibrary
from sizewise.core.chat.prompt import chat_messages, transcript_prompt
from sizewise.core.chat.store import ConversationStore
from sizewise.core.errors import UserError
from sizewise.core.hub.resolve import check_model, context_warning, resolve_model_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("chat", help="add a turn to a saved conversation and stream the reply (headless)")
    p.add_argument("model", metavar="MODEL", nargs="?", help="path to a .gguf file, or 'starter' (or give --server)")
    p.add_argument(
        "--conversation", required=True, metavar="TITLE", help="conversation to continue; created if there is none"
    )
    p.add_argument("--prompt", required=True, help="the user message")
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="sampling preset (Precise, Balanced, Creative or one you saved); sets temperature and samplers",
    )
    add_sampling_flags(p)
    add_server_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if not args.prompt.strip():
        raise UserError("The prompt is empty; give some text with --prompt.")
    if not args.conversation.strip():
        raise UserError("Give the conversation a title with --conversation.")
    remote = check_target(args, args.model)
    sampling, load = sampling_from_args(args)
    preset_name = ""
    presets = PresetLibrary(ctx.paths.config_dir)
    if args.preset:
        preset = presets.get(args.preset)
        if preset is None:
            names = ", ".join(p.name for p in presets.all())
            raise UserError(f"There is no preset named {args.preset!r}; the presets are {names}.")
        sampling, preset_name = preset.apply(sampling), preset.name
    else:
        matching = presets.preset_for(sampling)
        preset_name = matching.name if matching else ""
    path = None
    if not remote:
        path = resolve_model_path(args.model)
        warning = context_warning(check_model(path), load.n_ctx)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)

    store = ConversationStore.open(ctx.paths.database_file)
    try:
        if store.problem is not None:
            # A reply written into a temporary store would be lost on exit: refuse instead.
            raise UserError(store.problem.cli_message)
        conv = store.find_by_title(args.conversation) or store.create_conversation(
            args.conversation, system_prompt=args.system, preset=preset_name
        )
        if args.system and args.system != conv.system_prompt:
            store.set_system_prompt(conv.id, args.system)
        store.add_message(conv.id, "user", args.prompt, auto_title=False)
        system_prompt = args.system or conv.system_prompt
        history = chat_messages(system_prompt, store.messages(conv.id))
        with reply_engine(args, ctx, load, path) as engine:
            counts, estimated = engine.count_tokens([m["content"] for m in history])
            fit = fit_messages(
                [m["role"] for m in history],
                counts,
                engine.n_ctx,
                reply_reserve(sampling.max_tokens, engine.n_ctx),
                estimated=estimated,
            )
            if fit.notice:
                print(f"note: {fit.notice}", file=sys.stderr)
            sent = [history[i] for i in fit.kept]
            if engine.chat_mode == "chat":
                request: dict[str, object] = {"messages": sent}
            else:
                print("note: this model has no chat template; using plain completion mode.", file=sys.stderr)
                request = {"prompt": transcript_prompt(sent)}
            reply = store.begin_reply(conv.id, model_path=engine.label, sampling=sampling.to_dict())
            with reply:  # leaving by an error or Ctrl+C marks the reply interrupted, text kept
                for piece in engine.stream(sampling, **request):  # type: ignore[arg-type]
                    reply.append(piece)
                    sys.stdout.write(piece)
                    sys.stdout.flush()
                stats = engine.last_stats
                assert stats is not None
                reply.finish(
                    "interrupted" if stats.finish_reason == "cancelled" else "complete",
                    stats={**stats.to_dict(), **engine.stats_extra()},
                )
    finally:
        store.close()
    sys.stdout.write("\n")
    print(
        f"[{conv.title}: {speed_line(engine, stats)}, context {fit.meter_text}, {stats.finish_reason}]",
        file=sys.stderr,
    )
    return 0
