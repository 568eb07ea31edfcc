"""Command-line entry point: ``sizewise`` starts the app; sub-commands run the same features headless.

Global options (``--basedir``, ``--temp-basedir``, ``--debug``) come before the command.
Errors print one sentence on stderr and exit 1; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import sys
import traceback
from collections.abc import Sequence

from sizewise import __version__
from sizewise.commands import CliContext
from sizewise.core.errors import UserError
from sizewise.core.paths import resolve_paths

# Each module defines add_parser(subparsers); the order here is the order in --help.
COMMAND_MODULES = [
    "sizewise.commands.generate",
    "sizewise.commands.chat",
    "sizewise.commands.compare",
    "sizewise.commands.write",
    "sizewise.commands.history",
    "sizewise.commands.screenshots",
    "sizewise.commands.search",
    "sizewise.commands.pull",
    "sizewise.commands.models",
    "sizewise.commands.hardware",
    "sizewise.commands.fit",
    "sizewise.commands.bench",
    "sizewise.commands.speed.calibrate",
    "sizewise.commands.speed.ladder",
    "sizewise.commands.quant_lab.quantize",
    "sizewise.commands.quant_lab.quality",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sizewise",
        description="Run small language models locally and see what your hardware handles. "
        "Without a command, the desktop app starts.",
    )
    parser.add_argument("--version", action="version", version=f"sizewise {__version__}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--basedir", metavar="DIR", help="keep settings, data, logs and downloads under DIR")
    where.add_argument("--temp-basedir", action="store_true", help="use a fresh temporary base dir, removed on exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="start headless, load the starter model, generate a few tokens, print figures and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    multiprocessing.freeze_support()  # the frozen app re-enters here to start engine workers
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = resolve_paths(args.basedir, args.temp_basedir)
    if paths.hf_home is not None:
        os.environ["HF_HOME"] = str(paths.hf_home)  # a base dir is hermetic: its own HF cache too
        os.environ.pop("HF_HUB_CACHE", None)
    ctx = CliContext(paths=paths, debug=args.debug)
    try:
        if args.command is None:
            if args.smoke_test:
                os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
            from sizewise.gui.shell.app import run_app

            return run_app(ctx.paths, smoke_test=args.smoke_test)
        return int(args.func(args, ctx))
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"sizewise: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sizewise: interrupted.", file=sys.stderr)
        return 130
    finally:
        paths.cleanup()


if __name__ == "__main__":
    sys.exit(main())
