"""A server's memory (issue 17, point 2): measured where the server reports it, else predicted, else unknown.

Checked against a real llama-server on loopback: what its ``/props``, ``/slots`` and ``/metrics`` carry (no
memory figure in this build, so nothing can be shown as measured), and the prediction from the model file
``/props`` names when that file is on this machine.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from sizewise.core.fit.memory_model import predict
from sizewise.core.gguf.header import read_header
from sizewise.core.sampling import LoadParams
from sizewise.engine.remote.memory import remote_memory
from sizewise.engine.remote.session import RemoteSession, ServerInfo
from tests.llama_server import LlamaServer


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return bytes(r.read())


@pytest.mark.native
def test_llama_server_reports_no_memory_so_it_is_predicted_from_the_file(
    llama_servers: Callable[..., LlamaServer], smollm2_path: Path
) -> None:
    llama_server = llama_servers(extra=("--metrics",))
    props = json.loads(_get(llama_server.url + "/props"))
    props.pop("chat_template", None)
    slots = _get(llama_server.url + "/slots").decode()
    for text in (json.dumps(props), slots):
        assert not any(word in text.lower() for word in ("memory", "vram", "rss", "buffer")), text[:500]
    assert props["endpoint_metrics"] is True
    metrics = _get(llama_server.url + "/metrics").decode().lower()
    assert "llamacpp:tokens_predicted_total" in metrics  # counters, and nothing about memory
    assert not any(word in metrics for word in ("memory", "vram", "rss", "bytes"))
    with RemoteSession(llama_server.url) as session:
        info = session.connect()
    assert info.model_path == str(smollm2_path)
    memory = remote_memory(info)
    expected = predict(read_header(smollm2_path), LoadParams(n_ctx=2048, n_gpu_layers=0)).total_bytes
    assert memory["source"] == "predicted" and memory["bytes"] == expected
    assert memory["text"].startswith(f"{expected / 2**20:.0f} MiB predicted (the server reports no memory use;")
    assert memory["model_bytes"] == info.size_bytes and info.size_bytes is not None
    # the weights' part of the prediction is the size the server reports for them
    weights = predict(read_header(smollm2_path), LoadParams(n_ctx=2048)).weights_bytes
    assert weights == info.size_bytes


def test_a_model_file_not_on_this_machine_is_said_to_be_unknown() -> None:
    info = ServerInfo(
        url="http://10.1.2.3:8080",
        kind="llama-server",
        model="big.gguf",
        models=["big.gguf"],
        n_ctx=4096,
        model_path="/models/on/another/machine/big.gguf",
        size_bytes=5 * 2**30,
    )
    memory = remote_memory(info)
    assert memory["source"] == "unknown" and memory["bytes"] is None
    assert memory["text"] == (
        "unknown: the server reports no memory use and the model file is not on this machine, so it cannot be "
        "predicted; its weights are 5120 MiB (server's figure)"
    )
    named = remote_memory(ServerInfo("http://h:1", "openai", "m", ["m"]))
    assert "not named by the server" in named["text"] and named["source"] == "unknown"
