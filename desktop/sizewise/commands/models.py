"""``sizewise models``: every local model Sizewise can load — the starter, downloaded, imported, and other apps'
folders: the same list as the Library page and the model picker (core/hub/library.py)."""

from __future__ import annotations

import argparse
import json

from sizewise.commands import CliContext
from sizewise.core.hub.library import Library


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "models", help="list local models (the starter, downloaded, imported, LM Studio, Ollama, GPT4All)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--no-other-apps", action="store_true", help="skip LM Studio, Ollama and GPT4All folders")
    p.set_defaults(func=run)


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    entries = Library.for_app(ctx.paths, other_apps=not args.no_other_apps).list()
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    if not entries:
        print("No local models yet. Get one with 'sizewise pull REPO' or 'sizewise search WORDS'.")
        return 0
    for e in entries:
        if e.status != "ok":
            print(f"{e.name}  [{e.status}: {e.message}]  {e.source_label}  {e.path}")
            continue
        check = " ✓" if e.verified else ""
        print(
            f"{e.name}  {e.quantization}  {e.parameters_label}  {_size(e.size_bytes)}  ctx {e.context_length}  "
            f"{e.source_label}{check}  {e.path}"
        )
    return 0
