"""Speed as received from a server: Sizewise's remote engine against a plain streaming HTTP client, reading the
same loopback llama-server with the same request, alternating the two over rounds. Goal: ≥ 0.98 of plain.

Run: pytest -m benchmarks tests/benchmarks/test_remote_stream_received.py -s

The plain side is ``http.client`` reading the server-sent events line by line and decoding each event's JSON,
the least any client must do. Both sides send the same body (same seed), so both receive the same text and
the same token count, and the ratio of speeds is the inverse ratio of the spans from the first piece of text
to the last. Measures the shared machine's load cannot touch are reported too: the events each side read for
the reply and the requests Sizewise made for it (remote.log: one line per request), which must be the plain
client's one; and the CPU time each side's thread spent receiving a reply (``time.thread_time``), which is
what a client adds on top of the server. On a shared machine the server's own speed varies from reply to
reply (the spread of the plain ratio is mostly that), so a ratio with it taken out is printed too: each
side's span set against the server's generation time for that same reply (``timings.predicted_ms``).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.sampling import SamplingParams
from sizewise.engine.remote.session import RemoteSession, sampling_body
from tests.llama_server import LlamaServer

pytestmark = [pytest.mark.benchmarks, pytest.mark.native]

PROMPT = "Write a long story about a lighthouse keeper and a storm."
MAX_TOKENS = 160
SEED = 42
ROUNDS = int(os.environ.get("SIZEWISE_BENCH_ROUNDS", "7"))
GOAL = 0.98


def _plain(port: int, body: dict[str, Any]) -> tuple[str, float, int, float]:
    """(text, seconds from the first piece of text to the last, events read, the server's generation seconds)
    with nothing but http.client."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    text, first, last, events, server_s = "", 0.0, 0.0, 0, 0.0
    while line := resp.readline():
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            break
        events += 1
        event = json.loads(data)
        server_s = float((event.get("timings") or {}).get("predicted_ms", server_s * 1000)) / 1000
        choices = event.get("choices") or [{}]
        piece = (choices[0].get("delta") or {}).get("content")
        if piece:
            now = time.perf_counter()
            first = first or now
            last = now
            text += piece
    conn.close()
    return text, last - first, events, server_s


def _sizewise(session: RemoteSession, sampling: SamplingParams, messages: list[dict[str, str]]) -> tuple[str, float]:
    text, first, last = "", 0.0, 0.0
    for piece in session.stream(sampling, messages=messages):
        now = time.perf_counter()
        first = first or now
        last = now
        text += piece
    return text, last - first


def test_remote_stream_as_received_vs_plain_http_client(
    llama_servers: Callable[..., LlamaServer], tmp_path: Path
) -> None:
    server = llama_servers()
    log = tmp_path / "remote.log"
    messages = [{"role": "user", "content": PROMPT}]
    sampling = SamplingParams(temperature=0.8, max_tokens=MAX_TOKENS, seed=SEED)
    ratios, spans_s, spans_p, normalized = [], [], [], []
    with RemoteSession(server.url, log_path=log) as session:
        info = session.connect()
        body = {"model": info.model, "stream": True, "stream_options": {"include_usage": True}}
        body |= sampling_body(sampling, info.kind, SEED) | {"messages": messages}
        cpu: dict[str, list[float]] = {"plain": [], "sizewise": []}
        for i in range(ROUNDS + 1):  # the first pair warms up
            sides: dict[str, tuple[str, float]] = {}
            server_s: dict[str, float] = {}
            for side in ("plain", "sizewise") if i % 2 else ("sizewise", "plain"):
                c0 = time.thread_time()
                if side == "plain":
                    text, span, plain_events, server_s[side] = _plain(server.port, body)
                    sides[side] = (text, span)
                else:
                    log.write_text("")
                    sides[side] = _sizewise(session, sampling, messages)
                    requests = log.read_text().splitlines()
                    server_s[side] = float((session.last_server_timings or {}).get("predicted_ms", 0)) / 1000
                if i:
                    cpu[side].append(time.thread_time() - c0)
            (text_s, span_s), (text_p, span_p) = sides["sizewise"], sides["plain"]
            assert text_s == text_p and text_s, "both sides must receive the same reply"
            if i:
                normalized.append((server_s["sizewise"] / span_s) / (server_s["plain"] / span_p))
                ratios.append(span_p / span_s)
                spans_s.append(span_s)
                spans_p.append(span_p)
        tokens = session.last_stats.tokens if session.last_stats else 0
    # noise-free: one request per reply, and as many events parsed as the plain client read
    assert len(requests) == 1 and "POST /v1/chat/completions stream:" in requests[0], requests
    sizewise_events = int(requests[0].split("stream: ")[1].split(" events")[0])
    median = statistics.median(ratios)
    print(
        f"\nremote stream, Sizewise / plain http.client, tokens/s as received: median {median:.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} alternating rounds; spans "
        f"{statistics.median(spans_s):.2f} s vs {statistics.median(spans_p):.2f} s for {tokens} tokens)\n"
        f"the same with the server's own speed per reply taken out: median {statistics.median(normalized):.4f} "
        f"(min {min(normalized):.4f}, max {max(normalized):.4f})\n"
        f"events read for one reply: Sizewise {sizewise_events}, plain {plain_events}; requests per reply: "
        f"{len(requests)}; CPU time receiving one reply: Sizewise {statistics.median(cpu['sizewise']) * 1000:.1f} ms, "
        f"plain {statistics.median(cpu['plain']) * 1000:.1f} ms (medians)"
    )
    assert sizewise_events == plain_events
    assert statistics.median(normalized) >= GOAL
    assert median >= GOAL  # the goal as stated; on a busy shared machine its spread is the server's, not ours
