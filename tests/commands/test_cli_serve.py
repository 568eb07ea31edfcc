"""``sizewise serve``: a real llama-server started with Sizewise's settings, used, and stopped with Ctrl+C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.cli_helpers import run_cli
from tests.llama_server import free_port

KEY = "sk-serve-test-abcdef0123456789"


def _serve(base: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, int]:
    """Start ``sizewise serve``; (process, its URL, the llama-server pid) once it says it is serving."""
    import os

    cmd = [sys.executable, "-m", "sizewise", "--basedir", str(base), "serve", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"Serving .* at (http://\S+) \(pid (\d+), context (\d+)\)", line)
    if match is None:
        proc.kill()
        _out, err = proc.communicate(timeout=30)
        pytest.fail(f"serve did not start: {line!r} {err}")
    return proc, match.group(1), int(match.group(2))


@pytest.mark.native
def test_serve_passes_the_settings_hides_the_key_and_stops_on_ctrl_c(native_bin: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    port = free_port()
    proc, url, pid = _serve(
        base, "starter", "--port", str(port), "--llama-server", str(native_bin / "llama-server"), "--ctx", "1024",
        "--kv-type", "q8_0", "--flash-attn", "--api-key-env", "SW_SERVE_KEY",
        env={"SW_SERVE_KEY": KEY},
    )  # fmt: skip
    try:
        assert url == f"http://127.0.0.1:{port}"
        server = psutil.Process(pid)
        cmdline = " ".join(server.cmdline())
        assert KEY not in cmdline  # the key went by environment, not on the command line
        fit = run_cli("fit", "starter", "--ctx", "1024", "--kv-type", "q8_0", "--flash-attn", "--no-engine", "--json")
        ngl = json.loads(fit.stdout)["gpu_layers"]  # --gpu-layers auto: the layers `fit` says fit this machine
        for flags in (
            f"-ngl {ngl}",
            "-c 1024",
            "-np 1",
            "-b 512 -ub 512",
            "-ctk q8_0 -ctv q8_0",
            "-fa on",
            "--swa-full",
        ):
            assert flags in cmdline
        r = run_cli("generate", "--server", url, "--api-key-env", "SW_SERVE_KEY", "--prompt", "Hi", "--max-tokens",
                    "4", "--json", basedir=tmp_path / "client", env={"SW_SERVE_KEY": KEY})  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["engine"]["n_ctx"] == 1024  # the server runs with the context serve chose
        refused = run_cli("generate", "--server", url, "--prompt", "Hi", basedir=tmp_path / "client")
        assert refused.returncode == 1 and "needs an API key" in refused.stderr
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "llama-server outlived serve"
        time.sleep(0.05)
    log = (base / "logs" / "llama-server.log").read_text(errors="replace")
    assert "n_ctx_slot = 1024" in log  # the context reached llama.cpp
    assert KEY not in log + out + err


@pytest.mark.native
def test_serve_passes_rpc_and_llama_server_uses_the_rpc_server(native_bin: Path, tmp_path: Path) -> None:
    rpc_port = free_port()
    rpc_log = (tmp_path / "rpc.log").open("wb")
    rpc = subprocess.Popen(
        [str(native_bin / "ggml-rpc-server"), "-H", "127.0.0.1", "-p", str(rpc_port)], stdout=rpc_log, stderr=rpc_log
    )
    try:
        time.sleep(0.5)
        base = tmp_path / "base"
        # no --llama-server: found on PATH or in scripts/native-tools.sh's cache (where native_bin put it)
        (tmp_path / "key").write_text(KEY + "\n")
        key_file = ("--api-key-file", str(tmp_path / "key"))
        proc, url, pid = _serve(
            base, "starter", "--port", str(free_port()), "--rpc", f"127.0.0.1:{rpc_port}", *key_file
        )
        try:
            cmdline = psutil.Process(pid).cmdline()
            assert Path(cmdline[0]).name == "llama-server"
            assert f"--rpc 127.0.0.1:{rpc_port}" in " ".join(cmdline) and "-ngl all" in " ".join(cmdline)
            r = run_cli("generate", "--server", url, *key_file, "--prompt", "Hi", "--max-tokens", "4", basedir=tmp_path)
            assert r.returncode == 0, r.stderr
            refused = run_cli("generate", "--server", url, "--prompt", "Hi", basedir=tmp_path)
            assert refused.returncode == 1 and "needs an API key" in refused.stderr
        finally:
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=30)
        assert "no authentication" in err  # the RPC warning is printed, not only in the help
    finally:
        rpc.kill()
        rpc.wait(timeout=10)
        rpc_log.close()
    assert "Accepted client connection" in (tmp_path / "rpc.log").read_text()  # llama-server used the rpc-server


def test_serve_without_a_llama_server_says_how_to_get_one(tmp_path: Path) -> None:
    r = run_cli("serve", "starter", "--llama-server", str(tmp_path / "nope"), basedir=tmp_path)
    assert r.returncode == 1 and "is not an executable llama-server" in r.stderr
    r = run_cli("serve", "starter", basedir=tmp_path, env={"PATH": "", "SIZEWISE_NATIVE_CACHE": str(tmp_path)})
    assert r.returncode == 1 and "scripts/native-tools.sh" in r.stderr, r.stderr
    assert "no authentication" in run_cli("serve", "--help").stdout  # the RPC warning is in the help
