"""The server runs of ``sizewise compare``: ``--server URL[#MODEL]``, repeatable, beside or instead of MODELs.

Why ``URL#MODEL`` and not ``--server`` with ``--model`` as in generate: a comparison names several servers or
several models on one server, and each needs its model beside it. ``#`` cannot appear in a server address we
send anything to (a fragment never reaches the server) and does not appear in model names (Ollama's have
``:``), so it splits the two without quoting.

A server run gets the same prompt, sampling and seed as every other run. Nothing is loaded on this machine,
so it has no fit verdict and no engine peak; instead its JSON carries what the server said: the model, the
server's own timings and its memory (measured where the server reports it, engine/remote/memory.py).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from sizewise.commands import CliContext
from sizewise.commands.generate import build_request
from sizewise.core.compare.results import RunResult
from sizewise.core.errors import UserError
from sizewise.core.sampling import SamplingParams


def add_compare_server_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models on servers (beside or instead of MODEL)")
    g.add_argument(
        "--server",
        dest="servers",
        action="append",
        default=[],
        metavar="URL[#MODEL]",
        help="a model on llama-server, Ollama or another OpenAI-compatible server, e.g. "
        "http://127.0.0.1:11434#llama3:latest (without #MODEL: the server's only model); repeatable",
    )
    keys = g.add_mutually_exclusive_group()
    keys.add_argument("--api-key-env", metavar="VAR", help="the servers' API key from this environment variable")
    keys.add_argument("--api-key-file", metavar="PATH", help="the servers' API key from this file")
    g.add_argument(
        "--server-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="give up on a server that sends nothing for S seconds (default 120)",
    )


def split_server(text: str) -> tuple[str, str | None]:
    """``URL#MODEL`` → (URL, MODEL); ``URL`` → (URL, None)."""
    url, sep, model = text.partition("#")
    if sep and not model.strip():
        raise UserError(f"{text!r} names no model after '#'; give URL#MODEL or just URL.")
    return url, (model.strip() or None) if sep else None


def check_server_flags(args: argparse.Namespace) -> None:
    if not args.servers and (args.api_key_env or args.api_key_file):
        raise UserError("--api-key-env and --api-key-file go with --server.")
    if args.server_timeout <= 0:
        raise UserError(f"--server-timeout must be above 0, not {args.server_timeout:g}.")
    for text in args.servers:
        split_server(text)


def run_remote(
    ctx: CliContext,
    args: argparse.Namespace,
    r: RunResult,
    sampling: SamplingParams,
    prompt: str,
    system: str,
    *,
    echo: bool,
    step: str,
) -> None:
    """Fill ``r`` in from the server: connect, ask, read its figures. Failures go to ``r.error`` (a drop
    mid-reply keeps the text that came, marked interrupted); the other runs still go ahead."""
    from sizewise.engine.remote.http import RemoteError, read_api_key
    from sizewise.engine.remote.memory import remote_memory
    from sizewise.engine.remote.session import RemoteSession

    url, model = split_server(r.spec.server)

    def heading() -> None:  # under the model's name once the server said it
        if echo:
            sys.stdout.write(f"== {r.label} ==\n")
            sys.stdout.flush()

    print(f"{step} {r.label}: connecting…", file=sys.stderr, flush=True)
    try:
        session = RemoteSession(
            url,
            model=model,
            api_key=read_api_key(args.api_key_env, args.api_key_file),
            log_path=ctx.paths.log_dir / "remote.log",
            stall_timeout=args.server_timeout,
        )
        warning = session.address.warning()
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        info = session.connect()
    except RemoteError as exc:
        r.error, r.done = str(exc), True
        heading()
        return
    with session:
        _, dot, temperature = r.label.partition(" · ")  # "· temperature 0.2" in a temperature comparison
        r.label = f"{info.model} on {info.url}" + (f" · {temperature}" if dot else "")
        heading()
        r.sampling = sampling if r.spec.temperature is None else replace(sampling, temperature=r.spec.temperature)
        print(f"{step} {r.label}: generating (temperature {r.sampling.temperature:g}, seed {r.sampling.seed})…",
              file=sys.stderr, flush=True)  # fmt: skip
        messages: Any = build_request("chat", prompt, system)["messages"]
        try:
            for piece in session.stream(r.sampling, messages=messages):
                r.text += piece
                if echo:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        except RemoteError as exc:
            r.error = f"{exc} The reply so far is kept, marked interrupted." if r.text else str(exc)
            interrupted = bool(r.text)  # no figures for a cut reply: its finish_reason says so
        else:
            interrupted = False
            stats = session.last_stats
            r.stats = stats.to_dict() if stats is not None else None
        r.remote = {
            "interrupted": interrupted,
            "server": info.to_dict(),
            "server_timings": session.last_server_timings,
            "memory": remote_memory(info, session.loaded_memory()),
        }
        r.done = True


def remote_entry(r: RunResult) -> dict[str, Any]:
    """The fields a server run adds to ``--json``'s run entry (the model as the server names it)."""
    remote = r.remote or {}
    server = remote.get("server") or {}
    cut = {"finish_reason": "interrupted"} if remote.get("interrupted") else {}
    return cut | {
        "model": {"server": server.get("url"), "name": server.get("model"), **(server.get("facts") or {})}
        if server
        else {"server": r.spec.server},
        "remote": server or None,
        "server_timings": remote.get("server_timings"),
        "memory": remote.get("memory"),
    }
