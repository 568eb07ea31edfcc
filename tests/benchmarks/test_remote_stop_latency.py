"""How soon a stop takes effect on a server: from the stop request to Sizewise's remote engine being idle and
llama-server's slot being idle. Goal: ≤ 200 ms (the local engine's, tests/benchmarks/test_stop_latency.py).

Run: pytest -m benchmarks tests/benchmarks/test_remote_stop_latency.py -s

Each stop goes through ``RemoteEngineClient`` (what the chat and Compare use): a reply is asked for, its
first token awaited, then ``stop`` is called. Two moments are timed from there: the ``done`` event
(cancelled) that frees the engine, and the first ``/slots`` answer in which no slot is processing — the
stream's socket being shut is what tells llama-server to stop, so this is where a stop could leave the
server generating for nobody. The figure held to the goal is the later of the two, as a median over
repeated stops; each figure is printed with its ratio to the goal.
"""

from __future__ import annotations

import os
import queue
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from sizewise.core.sampling import SamplingParams
from sizewise.engine.remote.client import RemoteEngineClient
from sizewise.engine.remote.session import RemoteSession
from tests.llama_server import LlamaServer

pytestmark = [pytest.mark.benchmarks, pytest.mark.native]

GOAL_S = 0.2
REPS = int(os.environ.get("SIZEWISE_BENCH_REPS", "9"))  # odd: the median is one run
CHAT = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


def _next(events: queue.Queue[dict[str, Any]], *types: str) -> dict[str, Any]:
    while True:
        event = events.get(timeout=60)
        if event["type"] in types:
            return event


def test_stop_to_idle_on_llama_server(llama_servers: Callable[..., LlamaServer]) -> None:
    server = llama_servers()
    with RemoteSession(server.url) as probe:
        model = probe.connect().model
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    client = RemoteEngineClient(events.put)
    engine_s, idle_s = [], []
    try:
        client.connect(server.url, model, None)
        assert _next(events, "loaded", "load_failed")["type"] == "loaded"
        for rep in range(REPS):
            gen_id = client.generate(sampling=SamplingParams(temperature=0.8, max_tokens=2000, seed=rep), messages=CHAT)
            for _ in range(3):  # a few tokens in: the server is generating, not processing the prompt
                _next(events, "token")
            assert server.busy()
            t0 = time.perf_counter()
            client.stop(gen_id)
            done = _next(events, "done", "failed")
            engine = time.perf_counter() - t0
            assert done["type"] == "done" and done["stats"]["finish_reason"] == "cancelled", done
            while server.busy():
                assert time.perf_counter() - t0 < 10, "llama-server kept generating after the stop"
                time.sleep(0.002)
            engine_s.append(engine)
            idle_s.append(time.perf_counter() - t0)
    finally:
        client.shutdown()
    median = statistics.median(idle_s)
    print(
        f"\nremote stop (llama-server, SmolLM2, 1 thread): engine idle median "
        f"{statistics.median(engine_s) * 1000:.1f} ms "
        f"(max {max(engine_s) * 1000:.1f}); engine and server slot idle median {median * 1000:.1f} ms "
        f"(min {min(idle_s) * 1000:.1f}, max {max(idle_s) * 1000:.1f}) over {len(idle_s)} stops "
        f"(goal ≤ {GOAL_S * 1000:.0f} ms; ratio to goal {median / GOAL_S:.2f})"
    )
    assert median <= GOAL_S
