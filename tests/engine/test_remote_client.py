"""The GUI's remote engine client (engine/remote/client.py) on a real llama-server: the local engine's events,
stop at any moment, and a queued reply stopped before it is sent."""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest

from sizewise.core.sampling import SamplingParams
from sizewise.engine.remote.client import FIRST_REMOTE_ID, RemoteEngineClient, list_server
from tests.llama_server import LlamaServer

pytestmark = pytest.mark.native
LONG = [{"role": "user", "content": "Write a very long story about the sea."}]


def until(events: queue.Queue[dict[str, Any]], kind: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        msg = events.get(timeout=max(0.01, deadline - time.monotonic()))
        seen.append(msg)
        if msg["type"] == kind or (kind == "done" and msg["type"] == "failed"):
            return seen


def test_events_and_stop_at_once_and_a_queued_reply_never_sent(llama_server: LlamaServer) -> None:
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    client = RemoteEngineClient(events.put)
    try:
        listing = list_server(llama_server.url, None)
        assert listing.kind == "llama-server" and listing.warning is None and len(listing.models) == 1
        client.connect(listing.url, listing.models[0], None)
        loaded = until(events, "loaded")[-1]
        assert loaded["remote"] is True and loaded["chat_mode"] == "chat" and loaded["n_ctx"] == 2048
        assert loaded["memory"]["source"] == "predicted"

        sampling = SamplingParams(temperature=0.9, max_tokens=1500, seed=1)
        first = client.generate(sampling=sampling, messages=LONG)
        second = client.generate(sampling=sampling, messages=LONG)
        assert first == FIRST_REMOTE_ID and second == first + 1
        client.stop(second)  # waiting: answered without ever being sent
        t0 = time.monotonic()
        client.stop(first)  # at once, most likely before the request has even left
        got = until(events, "done")
        assert got[-1]["id"] == first and got[-1]["stats"]["finish_reason"] == "cancelled"
        again = until(events, "done")
        assert again[-1]["id"] == second and again[-1]["stats"]["finish_reason"] == "cancelled"
        assert [m for m in again if m["type"] in ("started", "token")] == []
        assert time.monotonic() - t0 < 5.0
        deadline = time.monotonic() + 5
        while llama_server.busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not llama_server.busy()
    finally:
        client.shutdown()
    assert not client.alive


def test_a_stop_between_start_and_request_is_not_lost(llama_server: LlamaServer) -> None:
    """Stop when the reply has started but its request has not left yet: the stream clears the HTTP client's stop
    flag as it opens, so without the client's own note the reply ran to max_tokens."""
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    client: RemoteEngineClient

    def on_event(msg: dict[str, Any]) -> None:
        if msg["type"] == "started":  # on the client's thread, just before the request is sent: the window
            client.stop(int(msg["id"]))
        events.put(msg)

    client = RemoteEngineClient(on_event)
    try:
        listing = list_server(llama_server.url, None)
        client.connect(listing.url, listing.models[0], None)
        until(events, "loaded")
        t0 = time.monotonic()
        gen = client.generate(sampling=SamplingParams(temperature=0.9, max_tokens=1500, seed=1), messages=LONG)
        got = until(events, "done")
        assert got[-1]["id"] == gen and got[-1]["stats"]["finish_reason"] == "cancelled"
        assert [m for m in got if m["type"] == "token"] == []
        assert time.monotonic() - t0 < 5.0  # 1500 tokens would take ~10 s or more here
    finally:
        client.shutdown()
