"""``sizewise hardware``: what this machine has for running models, and how each figure was found."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sizewise.commands import CliContext
from sizewise.core.fit.hardware import HardwareReport, describe, probe_hardware
from sizewise.engine.session import EngineError, EngineSession


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hardware", help="show CPU, RAM, GPUs and llama.cpp backends, with where each figure came from")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--no-engine", action="store_true", help="do not start the llama.cpp engine to ask which backends it has"
    )
    p.set_defaults(func=run)


def engine_ready(ctx: CliContext) -> tuple[dict[str, Any] | None, str, int | None]:
    """Start an engine worker just long enough for its ready message; (ready, note, worker RSS)."""
    try:
        with EngineSession(log_path=ctx.paths.log_dir / "engine.log") as session:
            ready = session.start(timeout=60)
            rss = None
            try:
                import psutil

                rss = int(psutil.Process(int(ready["pid"])).memory_info().rss)
            except (KeyError, ValueError, psutil.Error):
                pass
            return dict(ready), "", rss
    except EngineError as exc:
        return None, f"the engine did not start ({exc})", None


def probe(ctx: CliContext, use_engine: bool = True) -> tuple[HardwareReport, int | None]:
    """The hardware report, with the engine's backend facts unless ``use_engine`` is False."""
    if not use_engine:
        return probe_hardware(None, "not queried (--no-engine)"), None
    ready, note, rss = engine_ready(ctx)
    return probe_hardware(ready, note), rss


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    report, _ = probe(ctx, use_engine=not args.no_engine)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    rows = describe(report)
    width = max(len(label) for label, _, _ in rows)
    for label, value, source in rows:
        print(f"{label:<{width}}  {value}")
        print(f"{'':<{width}}    from {source}")
    return 0
