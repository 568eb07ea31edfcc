"""Reading an rpc-server's memory over the RPC protocol (core.fit.rpc.probe), and hosts given as host:port only."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from sizewise.core.fit.rpc.hosts import RpcHost, parse_rpc_hosts
from sizewise.core.fit.rpc.probe import RpcProbeError, read_free_memory
from tests.cli_helpers import run_cli
from tests.llama_server import FakeServer, free_port
from tests.rpc_split import _wait_listening


def test_host_port_without_size_is_read_only_when_a_reader_is_given() -> None:
    hosts = parse_rpc_hosts("10.0.0.5:50052,b=1GiB", read_memory=lambda endpoint: 7 << 30)
    assert hosts == [RpcHost("10.0.0.5:50052", 7 << 30), RpcHost("b", 1 << 30)]
    with pytest.raises(ValueError, match=r"'10\.0\.0\.5:50052' gives no memory size"):
        parse_rpc_hosts("10.0.0.5:50052")


def test_a_server_that_is_not_an_rpc_server_is_one_sentence(fake_servers: object) -> None:
    garbage: FakeServer = fake_servers("garbage")  # type: ignore[operator]
    t0 = time.monotonic()
    with pytest.raises(RpcProbeError, match="rpc-server answers 28"):
        read_free_memory(f"127.0.0.1:{garbage.port}", timeout=2)
    with pytest.raises(RpcProbeError):
        read_free_memory(f"127.0.0.1:{free_port()}", timeout=2)  # nobody listens there
    assert time.monotonic() - t0 < 5


@pytest.mark.native
def test_reads_what_a_real_rpc_server_reports(native_bin: Path, smollm2_path: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(native_bin / "ggml-rpc-server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        free, total = read_free_memory(f"127.0.0.1:{port}")
        # a CPU rpc-server reports the machine's physical memory (ggml's CPU device: free == total, as its
        # banner "CPU: … (24105 MiB, 24105 MiB free)" says)
        assert abs(total - psutil.virtual_memory().total) <= 0.01 * total and 0 < free <= total
        # the CLI reads it for a host given as host:port alone
        proc_cli = run_cli(
            "fit", str(smollm2_path), "--rpc-hosts", f"127.0.0.1:{port},b=1GiB", "--ram-gib", "4", "--json",
            basedir=tmp_path,
        )  # fmt: skip
        assert proc_cli.returncode == 0, proc_cli.stderr
        hosts = json.loads(proc_cli.stdout)["hosts"]
        assert hosts[1]["name"] == f"127.0.0.1:{port}" and hosts[1]["budget_bytes"] == free
    finally:
        proc.kill()
        proc.wait(timeout=10)
    gone = run_cli("fit", str(smollm2_path), "--rpc-hosts", f"127.0.0.1:{port}", "--ram-gib", "4", basedir=tmp_path)
    assert gone.returncode != 0
    assert f"could not read 127.0.0.1:{port}'s memory" in gone.stderr and f"127.0.0.1:{port}=SIZE" in gone.stderr
