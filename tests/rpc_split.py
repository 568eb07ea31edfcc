"""A real llama.cpp RPC split on loopback for the fit-across-machines tests (issue 17).

``run_rpc_split`` starts one ``ggml-rpc-server`` per host on a free 127.0.0.1 port, then ``llama-server`` with
``--rpc`` over them, waits for ``/health``, stops everything and returns the load log. The rpc-server this
llama.cpp builds has no option to report less memory than the machine has (``ggml-rpc-server --help`` lists
-t/-d/-H/-p/-c), so every server reports the same free RAM and an uneven split is asked for with
``--tensor-split`` in the hosts' proportions — the split llama.cpp makes by itself from servers whose free
memory is in those proportions. ``--fit off`` keeps llama-server from changing the settings, ``-lv 4`` makes it
log its buffers.

Compares predicted with logged bytes per host and component (``compare``), for the native test and the benchmark.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.rpc.hosts import RpcHost
from sizewise.core.fit.rpc.split import RpcSplit
from tests.llama_server import LlamaServer, free_port

COMPONENTS = ("weights", "kv", "compute", "output")


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ggml-rpc-server on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"ggml-rpc-server did not listen on port {port} in {timeout:.0f} s")


def run_rpc_split(
    native_bin: Path,
    model: Path,
    tmp_path: Path,
    shares: tuple[int, ...],
    extra: tuple[str, ...] = (),
    gpu_layers: int = 99,
) -> tuple[list[str], str]:
    """(the servers' endpoints in --rpc order, llama-server's log) of ``model`` split in ``shares`` proportions."""
    servers: list[subprocess.Popen[bytes]] = []
    endpoints: list[str] = []
    server: LlamaServer | None = None
    try:
        for _ in shares:
            port = free_port()
            proc = subprocess.Popen(
                [str(native_bin / "ggml-rpc-server"), "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
            servers.append(proc)
            _wait_listening(port, proc)
            endpoints.append(f"127.0.0.1:{port}")
        args = (
            "--rpc",
            ",".join(endpoints),
            "-ngl",
            str(gpu_layers),
            "-ts",
            ",".join(map(str, shares)),
            "--fit",
            "off",
        )
        server = LlamaServer(
            native_bin / "llama-server", model, tmp_path / "llama-server.log", extra=(*args, "-lv", "4", *extra)
        )
        server.wait_ready(timeout=60)
    finally:
        if server is not None:
            server.stop()
        for proc in servers:
            proc.kill()
            proc.wait(timeout=10)
    return endpoints, (tmp_path / "llama-server.log").read_text(errors="replace")


@dataclass(frozen=True)
class Row:
    host: str
    component: str
    predicted: int
    logged: int

    @property
    def error_pct(self) -> float:
        return (
            0.0 if self.predicted == self.logged == 0 else 100.0 * (self.predicted - self.logged) / max(self.logged, 1)
        )


def compare(split: RpcSplit, log: str) -> list[Row]:
    """Host × component rows: the local host is llama-server's CPU buffers, each rpc-server its RPC0[endpoint] ones."""
    logged = MeasuredBuffers()
    logged.add_log_text(log)
    per_host: dict[str, dict[str, int]] = {}
    for line in logged.lines:
        host = line.rpc_endpoint or "local"
        per_host.setdefault(host, {}).setdefault(line.component, 0)
        per_host[host][line.component] += line.bytes
    rows = []
    for h in split.hosts:
        got = {"weights": h.weights_bytes, "kv": h.kv_bytes, "compute": h.compute_bytes, "output": h.output_bytes}
        for c in COMPONENTS:
            rows.append(Row(h.name, c, got[c], per_host.get(h.name, {}).get(c, 0)))
        rows.append(Row(h.name, "total", h.total_bytes, sum(per_host.get(h.name, {}).values())))
    return rows


def table(rows: list[Row]) -> str:
    lines = [f"{'host':<17} {'component':<9} {'predicted MiB':>13} {'logged MiB':>11} {'error':>8}"]
    for r in rows:
        mib = f"{r.predicted / 2**20:>13.2f} {r.logged / 2**20:>11.2f}"
        lines.append(f"{r.host:<17} {r.component:<9} {mib} {r.error_pct:>+7.2f}%")
    return "\n".join(lines)


def hosts_for(endpoints: list[str], shares: tuple[int, ...], unit: int = 1 << 30) -> list[RpcHost]:
    return [RpcHost(e, s * unit) for e, s in zip(endpoints, shares, strict=True)]
