"""``sizewise history``: list, show, export and import saved conversations (headless).

Reading works even when the conversation file cannot be written (read-only, or locked by a
running Sizewise): the history is read from a copy and a warning says so. Import needs a
writable file and refuses otherwise, rather than importing into a store that is thrown away.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from sizewise.commands import CliContext
from sizewise.core.atomic import write_text_atomic
from sizewise.core.chat.export import read_import_file
from sizewise.core.chat.records import Conversation
from sizewise.core.chat.store import ConversationStore
from sizewise.core.errors import UserError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("history", help="list, show, export or import saved conversations")
    hsub = p.add_subparsers(dest="history_command", metavar="ACTION", required=True)

    ls = hsub.add_parser("list", help="list conversations, most recent first")
    ls.add_argument("--json", action="store_true", help="print a JSON list")

    show = hsub.add_parser("show", help="print one conversation")
    show.add_argument("title", metavar="TITLE")

    exp = hsub.add_parser("export", help="export one conversation (Markdown or JSON), or all of them (JSON)")
    exp.add_argument("title", metavar="TITLE", nargs="?", help="the conversation (omit with --all)")
    exp.add_argument("--format", choices=("md", "json"), default="md", help="md (default) or json")
    exp.add_argument("--all", action="store_true", help="every conversation, in one JSON file that import reads")
    exp.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")

    imp = hsub.add_parser("import", help="import a JSON export; conversations already here are skipped")
    imp.add_argument("file", metavar="FILE")
    p.set_defaults(func=run)


def _open(ctx: CliContext, *, writing: bool) -> ConversationStore:
    store = ConversationStore.open(ctx.paths.database_file)
    if store.problem is not None:
        if writing or not store.problem.history_shown:
            store.close()
            raise UserError(store.problem.cli_message)
        print(f"warning: {store.problem.message}", file=sys.stderr)
    return store


def _find(store: ConversationStore, title: str) -> Conversation:
    conv = store.find_by_title(title)
    if conv is None:
        raise UserError(f"There is no conversation titled {title!r}; 'sizewise history list' shows them.")
    return conv


def _emit(text: str, output: str | None) -> None:
    if output:
        write_text_atomic(Path(output).expanduser(), text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    action = args.history_command
    store = _open(ctx, writing=action == "import")
    try:
        if action == "list":
            convs = store.list_conversations()
            if args.json:
                rows = [
                    {"title": c.title, "messages": c.message_count, "preset": c.preset, "updated_at": c.updated_at}
                    for c in convs
                ]
                print(json.dumps(rows, indent=2, ensure_ascii=False))
            elif not convs:
                print("No conversations yet; 'sizewise chat MODEL --conversation TITLE --prompt TEXT' starts one.")
            else:
                for c in convs:
                    when = datetime.fromtimestamp(c.updated_at).strftime("%Y-%m-%d %H:%M")
                    print(f"{when}  {c.message_count:4d} messages  {c.title}")
        elif action == "show":
            sys.stdout.write(store.export_markdown(_find(store, args.title).id))
        elif action == "export":
            if args.all:
                if args.title:
                    raise UserError("Give either a TITLE or --all, not both.")
                text = json.dumps(store.export_all(), indent=2, ensure_ascii=False) + "\n"
            else:
                if not args.title:
                    raise UserError("Name the conversation to export, or use --all.")
                conv = _find(store, args.title)
                if args.format == "json":
                    text = json.dumps(store.export_conversation(conv.id), indent=2, ensure_ascii=False) + "\n"
                else:
                    text = store.export_markdown(conv.id)
            _emit(text, args.output)
        elif action == "import":
            path = Path(args.file).expanduser()
            result = store.import_data(read_import_file(path), source=str(path))
            print(
                f"Imported {result.imported} conversation{'s' if result.imported != 1 else ''} "
                f"({result.messages} messages); {result.skipped} already here were skipped."
            )
    finally:
        store.close()
    return 0
