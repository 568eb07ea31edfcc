"""One reply engine for the CLI, local (a worker process) or remote (``--server``), behind the same few calls.

Why an adapter and not two code paths per command: generate and chat do the same things on either engine (the
chat mode, the context size, token counts, a stream of pieces, the reply's figures), and only the JSON's engine
section differs. Errors from either engine come out as ``UserError`` (one sentence) at the ``with``'s end, after
the command's own ``with`` blocks (a stored reply marked interrupted) have seen the original exception.

Imports of the engines happen inside the functions: ``sizewise --help`` must not pay for them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sizewise.commands import CliContext, parse_gpu_layers, print_note, resolve_gpu_layers
from sizewise.core.chat.context_window import estimate_tokens
from sizewise.core.errors import UserError
from sizewise.core.sampling import LoadParams, SamplingParams

if TYPE_CHECKING:
    from sizewise.engine.protocol import GenerationStats
    from sizewise.engine.remote.session import RemoteSession
    from sizewise.engine.session import EngineSession


def add_server_flags(p: argparse.ArgumentParser) -> None:
    """``--server URL [--model NAME] [--api-key-env VAR | --api-key-file PATH]``, in place of MODEL."""
    g = p.add_argument_group("remote engine (in place of MODEL)")
    g.add_argument(
        "--server",
        metavar="URL",
        help="llama.cpp's llama-server or another OpenAI-compatible server, e.g. http://127.0.0.1:8080",
    )
    g.add_argument("--model", dest="server_model", metavar="NAME", help="the server's model (default: its only one)")
    keys = g.add_mutually_exclusive_group()
    keys.add_argument("--api-key-env", metavar="VAR", help="read the server's API key from this environment variable")
    keys.add_argument("--api-key-file", metavar="PATH", help="read the server's API key from this file")
    g.add_argument(
        "--server-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="give up on a server that sends nothing for S seconds (default 120)",
    )


def check_target(args: argparse.Namespace, models: list[str] | str | None) -> bool:
    """True for a remote run; a UserError unless exactly one of MODEL and --server is given."""
    has_model = bool(models)
    if args.server and has_model:
        raise UserError("Give either MODEL or --server, not both.")
    if not args.server:
        if not has_model:
            raise UserError("Give a MODEL (a .gguf path or 'starter') or --server URL.")
        if args.server_model or args.api_key_env or args.api_key_file:
            raise UserError("--model, --api-key-env and --api-key-file go with --server.")
        return False
    if args.server_timeout <= 0:
        raise UserError(f"--server-timeout must be above 0, not {args.server_timeout:g}.")
    return True


def open_remote(args: argparse.Namespace, ctx: CliContext) -> RemoteSession:
    """A connected RemoteSession; the unencrypted-connection warning goes to stderr first."""
    from sizewise.engine.remote.http import RemoteError, read_api_key
    from sizewise.engine.remote.session import RemoteSession

    try:
        key = read_api_key(args.api_key_env, args.api_key_file)
        session = RemoteSession(
            args.server,
            model=args.server_model,
            api_key=key,
            log_path=ctx.paths.log_dir / "remote.log",
            stall_timeout=args.server_timeout,
        )
        warning = session.address.warning()
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        session.connect()
    except RemoteError as exc:
        raise UserError(str(exc)) from None
    return session


def count_tokens(session: EngineSession, texts: list[str]) -> tuple[list[int], bool]:
    """Counts from the loaded model's tokenizer; the labelled estimate if the engine cannot give them."""
    from sizewise.engine.session import EngineError

    try:
        session.client.send_raw({"type": "tokenize", "id": "chat", "texts": texts})
        msg = session.wait_for("tokenized", timeout=60.0)
    except (EngineError, RuntimeError, OSError):
        msg = {}
    counts = msg.get("counts")
    if isinstance(counts, list) and len(counts) == len(texts):
        return [int(c) for c in counts], False
    return [estimate_tokens(t) for t in texts], True


class ReplyEngine:
    """A loaded model, local or remote: what generate and chat need from it."""

    remote = False

    def __init__(self, chat_mode: str, n_ctx: int, label: str) -> None:
        self.chat_mode = chat_mode
        self.n_ctx = n_ctx
        self.label = label  # what a stored reply records as its model
        self.last_stats: GenerationStats | None = None
        self.load_params: LoadParams | None = None  # what a local model was loaded with (--gpu-layers auto resolved)

    def stream(
        self, sampling: SamplingParams, *, messages: list[dict[str, str]] | None = None, prompt: str | None = None
    ) -> Iterator[str]:
        raise NotImplementedError

    def count_tokens(self, texts: list[str]) -> tuple[list[int], bool]:
        """(counts, estimated): the model's tokenizer where the engine has one, else the labelled estimate."""
        return [estimate_tokens(t) for t in texts], True

    def json_fields(self) -> dict[str, Any]:
        """The JSON's engine-specific fields (``engine``, and ``remote``/``server_timings`` for a server)."""
        raise NotImplementedError

    def stats_extra(self) -> dict[str, Any]:
        """Kept with a stored reply's figures beside GenerationStats."""
        return {}


class LocalEngine(ReplyEngine):
    def __init__(self, session: EngineSession, loaded: dict[str, Any], path: Path) -> None:
        super().__init__(str(loaded["chat_mode"]), int(loaded["n_ctx"]), str(path))
        self.session, self.loaded = session, loaded

    def stream(
        self, sampling: SamplingParams, *, messages: list[dict[str, str]] | None = None, prompt: str | None = None
    ) -> Iterator[str]:
        yield from self.session.stream(sampling, messages=messages, prompt=prompt)
        self.last_stats = self.session.last_stats

    def count_tokens(self, texts: list[str]) -> tuple[list[int], bool]:
        return count_tokens(self.session, texts)

    def json_fields(self) -> dict[str, Any]:
        from sizewise.core.fit.llama_log import MeasuredBuffers

        stats, loaded = self.last_stats, self.loaded
        assert stats is not None
        return {
            "engine": {
                "peak_rss_bytes": stats.peak_rss_bytes,
                "rss_bytes": stats.rss_bytes,
                "load_s": round(float(loaded["load_s"]), 3),
                "n_ctx": loaded["n_ctx"],
                "buffers": MeasuredBuffers.from_lines(loaded["buffers"]).to_dict(),
            }
        }


class RemoteEngine(ReplyEngine):
    remote = True

    def __init__(self, session: RemoteSession, n_ctx_fallback: int) -> None:
        info = session.info
        assert info is not None
        super().__init__("chat", info.n_ctx or n_ctx_fallback, f"{info.url} {info.model}")
        self.session, self.info = session, info
        self.n_ctx_reported = info.n_ctx is not None

    def stream(
        self, sampling: SamplingParams, *, messages: list[dict[str, str]] | None = None, prompt: str | None = None
    ) -> Iterator[str]:
        yield from self.session.stream(sampling, messages=messages, prompt=prompt)
        self.last_stats = self.session.last_stats

    def count_tokens(self, texts: list[str]) -> tuple[list[int], bool]:
        counts = self.session.count_tokens(texts)
        return (counts, False) if counts is not None else super().count_tokens(texts)

    def json_fields(self) -> dict[str, Any]:
        from sizewise.engine.remote.memory import remote_memory

        return {
            "engine": {"remote": True, "n_ctx": self.info.n_ctx, "sampling_sent": self.session.last_sampling_sent},
            "remote": {
                **self.info.to_dict(),
                "memory": remote_memory(self.info, self.session.loaded_memory()),
                "figures": "ttft_ms, pp_tps and tg_tps are measured by this client as the reply arrived "
                "(network and HTTP included); server_timings are the server's own",
            },
            "server_timings": self.session.last_server_timings,
        }

    def stats_extra(self) -> dict[str, Any]:
        return {"remote": self.info.url, "server_timings": self.session.last_server_timings}


@contextmanager
def reply_engine(
    args: argparse.Namespace, ctx: CliContext, load: LoadParams, path: Path | None
) -> Iterator[ReplyEngine]:
    """The engine for this command: a worker with ``path`` loaded, or the server ``--server`` names."""
    if path is None:
        from sizewise.engine.remote.http import RemoteError

        session = open_remote(args, ctx)
        try:
            yield RemoteEngine(session, load.n_ctx)
        except RemoteError as exc:
            raise UserError(str(exc)) from None
        finally:
            session.close()
        return
    from sizewise.engine.session import EngineError, EngineSession

    with EngineSession(log_path=ctx.paths.log_dir / "engine.log") as local:
        try:
            load, note = resolve_gpu_layers(local, path, load, parse_gpu_layers(args.gpu_layers))
            print_note(note)
            loaded = local.load(path, load)
            engine = LocalEngine(local, loaded, path)
            engine.load_params = load
            yield engine
        except EngineError as exc:
            raise UserError(str(exc)) from exc


def speed_line(engine: ReplyEngine, stats: GenerationStats) -> str:
    """The figures after a streamed reply; a server's are labelled remote, with the server's own speed beside."""
    if not engine.remote:
        return (
            f"{stats.tokens} tokens, {stats.tg_tps:.1f} tok/s, first token {stats.ttft_ms:.0f} ms, "
            f"engine peak {stats.peak_rss_bytes / 2**20:.0f} MiB"
        )
    assert isinstance(engine, RemoteEngine)
    timings = engine.session.last_server_timings or {}
    server = timings.get("predicted_per_second")
    own = f", server {float(server):.1f} tok/s" if isinstance(server, int | float) else ""
    return (
        f"remote {engine.info.model.rsplit('/', 1)[-1]}: {stats.tokens} tokens, {stats.tg_tps:.1f} tok/s as received, "
        f"first token {stats.ttft_ms:.0f} ms with the network{own}"
    )
