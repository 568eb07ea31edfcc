"""Ollama through its native API, against a loopback stand-in serving Ollama's documented examples.

The responses are the examples of Ollama's API documentation (tests/ollama/*.json say where from and what
was changed), not recordings of a real Ollama: these tests check that Sizewise reads the documented fields.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

import pytest

from sizewise.core.sampling import SamplingParams
from sizewise.engine.remote.client import RemoteEngineClient, list_server
from sizewise.engine.remote.http import RemoteError
from sizewise.engine.remote.memory import remote_memory
from sizewise.engine.remote.session import RemoteSession
from tests.ollama_server import MODEL, OllamaStandIn, fixture

HELLO = [{"role": "user", "content": "why is the sky blue?"}]


def test_an_ollama_is_told_apart_and_its_models_and_facts_come_from_the_native_api(
    ollama_servers: Callable[..., OllamaStandIn],
) -> None:
    server = ollama_servers()
    listing = list_server(server.url, None)
    assert listing.kind == "ollama" and listing.models == ["codellama:13b", MODEL]  # /api/tags
    with RemoteSession(server.url) as session, pytest.raises(RemoteError, match="several models"):
        session.connect()
    with RemoteSession(server.url, model=MODEL) as session:
        info = session.connect()
    assert info.kind == "ollama" and info.version == "0.12.6"  # /api/version
    assert info.size_bytes == 3825819519  # /api/tags: size
    show = fixture("show")
    assert info.facts == {  # /api/show: details and model_info
        "family": "llama",
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0",
        "format": "gguf",
        "architecture": "llama",
        "n_params": show["model_info"]["general.parameter_count"],
        "context_length": 8192,
    }
    assert info.n_ctx_train == 8192 and info.n_params == 8030261248
    assert server.sent("api/show") == {"model": MODEL}
    assert info.to_dict()["facts"]["quantization_level"] == "Q4_0"


def test_a_reply_streams_from_api_chat_with_ollamas_own_timings(ollama_servers: Callable[..., OllamaStandIn]) -> None:
    server = ollama_servers()
    with RemoteSession(server.url, model=MODEL) as session:
        session.connect()
        sampling = SamplingParams(temperature=0.7, top_k=30, max_tokens=64, seed=123)
        pieces = list(session.stream(sampling, messages=HELLO))
        stats, timings = session.last_stats, session.last_server_timings
    assert pieces == ["The", " sky", " is", " blue."]
    sent = server.sent("api/chat")
    assert sent["messages"] == HELLO and sent["stream"] is True and sent["model"] == MODEL
    assert sent["options"]["seed"] == 123 and sent["options"]["num_predict"] == 64 and sent["options"]["top_k"] == 30
    final = fixture("chat_stream")[-1]
    assert timings is not None and timings["source"] == "ollama"
    for key in ("eval_count", "eval_duration", "prompt_eval_count", "prompt_eval_duration"):
        assert timings[key] == final[key]  # kept as Ollama sent them, in nanoseconds
    assert timings["predicted_n"] == 282 and timings["prompt_n"] == 26
    assert timings["predicted_per_second"] == pytest.approx(282 / 4.535599)  # eval_count / eval_duration * 1e9
    assert timings["prompt_per_second"] == pytest.approx(26 / 0.342546)
    assert timings["predicted_ms"] == pytest.approx(4535.599)
    assert stats is not None and stats.tokens == 282 and stats.prompt_tokens == 26 and stats.seed == 123
    assert stats.finish_reason == "stop" and stats.peak_rss_bytes == 0


def test_a_prompt_goes_to_api_generate_raw(ollama_servers: Callable[..., OllamaStandIn]) -> None:
    server = ollama_servers()
    with RemoteSession(server.url, model=MODEL) as session:
        session.connect()
        text = "".join(session.stream(SamplingParams(max_tokens=8, seed=1), prompt="The sky"))
        timings = session.last_server_timings
    assert text == "The sky is blue."
    assert server.sent("api/generate")["raw"] is True and server.sent("api/generate")["prompt"] == "The sky"
    assert timings is not None and timings["predicted_n"] == 259 and timings["load_duration"] == 6338219291


def test_memory_is_measured_from_api_ps_and_unknown_while_not_loaded(
    ollama_servers: Callable[..., OllamaStandIn],
) -> None:
    with RemoteSession(ollama_servers("cold").url, model=MODEL) as session:
        info = session.connect()
        cold = remote_memory(info, session.loaded_memory())
        assert cold["source"] == "unknown" and cold["bytes"] is None and "not loaded" in cold["text"]
        list(session.stream(SamplingParams(max_tokens=4, seed=1), messages=HELLO))  # Ollama loads on first use
        warm = remote_memory(info, session.loaded_memory())
    entry = fixture("ps")["models"][0]
    assert warm["source"] == "measured" and warm["bytes"] == entry["size"] == 5137025024
    assert warm["vram_bytes"] == entry["size_vram"] and warm["ram_bytes"] == 0  # all of it on the GPU
    assert warm["text"] == "4899 MiB measured by the server (Ollama /api/ps): 4899 MiB in VRAM, 0 MiB in RAM"


def test_part_on_the_gpu_splits_into_vram_and_ram() -> None:
    """RAM = size − size_vram (a model partly offloaded); figures made up here, not from Ollama's docs."""
    from sizewise.engine.remote.session import ServerInfo

    info = ServerInfo(url="http://h:11434", kind="ollama", model="m", models=["m"])
    memory = remote_memory(info, {"name": "m", "size": 6 * 2**30, "size_vram": 4 * 2**30})
    assert (memory["bytes"], memory["vram_bytes"], memory["ram_bytes"]) == (6 * 2**30, 4 * 2**30, 2 * 2**30)
    assert "6144 MiB measured by the server" in memory["text"] and "2048 MiB in RAM" in memory["text"]


def test_an_ollama_gone_mid_reply_keeps_the_pieces_and_says_so(ollama_servers: Callable[..., OllamaStandIn]) -> None:
    with RemoteSession(ollama_servers("drop").url, model=MODEL) as session:
        session.connect()
        pieces: list[str] = []
        with pytest.raises(RemoteError, match="closed the connection in the middle of the reply"):
            for piece in session.stream(SamplingParams(max_tokens=8, seed=1), messages=HELLO):
                pieces.append(piece)
    assert pieces == ["The"]


def test_an_unknown_ollama_model_is_one_sentence(ollama_servers: Callable[..., OllamaStandIn]) -> None:
    with (
        RemoteSession(ollama_servers().url, model="nope:7b") as session,
        pytest.raises(RemoteError, match=r"has no model named 'nope:7b'; it offers: codellama:13b, llama3:latest\.$"),
    ):
        session.connect()


def test_the_gui_client_loads_the_model_on_connect_so_its_memory_is_measured(
    ollama_servers: Callable[..., OllamaStandIn],
) -> None:
    server = ollama_servers("cold")
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    client = RemoteEngineClient(events.put)
    try:
        client.connect(server.url, MODEL, None)
        loaded = events.get(timeout=20)
        assert loaded["type"] == "loaded" and loaded["server_kind"] == "ollama", loaded
        assert server.sent("api/generate") == {"model": MODEL, "stream": False}  # Ollama's "Load a model"
        assert loaded["memory"]["source"] == "measured" and loaded["memory"]["bytes"] == 5137025024
        assert loaded["n_ctx_train"] == 8192
        gen_id = client.generate(sampling=SamplingParams(max_tokens=8, seed=5), messages=HELLO)
        got = [events.get(timeout=20) for _ in range(6)]
        assert [e["type"] for e in got] == ["started", "token", "token", "token", "token", "done"]
        done = got[-1]
        assert done["id"] == gen_id and done["stats"]["server_timings"]["eval_count"] == 282
    finally:
        client.shutdown()
