"""Command-line entry point: ``sizewise`` starts the app; sub-commands run the same features headless.

Global options (``--basedir``, ``--temp-basedir``, ``--debug``) come before the command.
Errors print one sentence on stderr and exit 1; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from sizewise import __version__
from sizewise.commands import CliContext
from sizewise.core.errors import UserError
from sizewise.core.paths import resolve_paths

# Command name -> the module whose add_parser(subparsers) defines it; the order here is the order in --help.
COMMANDS = {
    "generate": "sizewise.commands.generate",
    "chat": "sizewise.commands.chat",
    "compare": "sizewise.commands.compare",
    "write": "sizewise.commands.write",
    "history": "sizewise.commands.history",
    "screenshots": "sizewise.commands.screenshots",
    "search": "sizewise.commands.search",
    "pull": "sizewise.commands.pull",
    "models": "sizewise.commands.models",
    "hardware": "sizewise.commands.hardware",
    "fit": "sizewise.commands.fit",
    "bench": "sizewise.commands.bench",
    "serve": "sizewise.commands.remote.serve",
    "calibrate": "sizewise.commands.speed.calibrate",
    "ladder": "sizewise.commands.speed.ladder",
    "quantize": "sizewise.commands.quant_lab.quantize",
    "quality": "sizewise.commands.quant_lab.quality",
}
COMMAND_MODULES = list(COMMANDS.values())
_GLOBAL_WITH_VALUE = ("--basedir",)


def command_named(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names (its first word that is not a global option), if it is one of COMMANDS.

    Why: each command module imports what its command needs (numpy, the Hub client, the fit code); importing all
    sixteen to parse one command cost ~0.3 s of every CLI call, a third of a cold ``sizewise ladder``.
    """
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _GLOBAL_WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` just that command's sub-parser (the others are not imported)."""
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
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    multiprocessing.freeze_support()  # the frozen app re-enters here to start engine workers
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=command_named(words))
    args = parser.parse_args(words)
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
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # A command started from a script with '&' (or by a CI runner in the background) inherits SIGINT
            # ignored, and Python then never raises KeyboardInterrupt: Ctrl+C must still stop serve, chat, bench.
            signal.signal(signal.SIGINT, signal.default_int_handler)
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
