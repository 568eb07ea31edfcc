"""One engine, several users: replies queue, and each stop reaches the reply it names (issue 12, point 3).

The chat and writing help share one worker. A reply sent while another runs waits for its turn; a stop
for a waiting reply must end that reply only (never the running one, and never by restarting the
worker, which is what the stop watchdog does when a stop has no effect in time).
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.protocol import STOP_GRACE_S, Message
from sizewise.engine.session import EngineSession

CHAT = [{"role": "user", "content": "Name three colours."}]
STORY = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
SHORT = SamplingParams(temperature=0.0, max_tokens=12, seed=1)
LONG = SamplingParams(temperature=0.8, max_tokens=2000, seed=5)
ENDINGS = ("done", "failed", "stop_forced")


@pytest.fixture
def smol(smollm2_path: Path, tmp_path: Path):
    with EngineSession(log_path=tmp_path / "engine.log") as s:
        s.load(smollm2_path, LoadParams(n_ctx=2048))
        yield s


def collect(session: EngineSession, ids: set[int], timeout: float = 300.0) -> list[Message]:
    """Every event until each of ``ids`` has ended (done, failed or stop_forced)."""
    events: list[Message] = []
    open_ids = set(ids)
    deadline = time.monotonic() + timeout
    while open_ids:
        msg = session._next(max(0.1, deadline - time.monotonic()))
        events.append(msg)
        if msg.get("type") in ENDINGS:
            open_ids.discard(msg.get("id"))
    return events


def quiet_for(session: EngineSession, seconds: float) -> list[Message]:
    """The events that arrive within ``seconds`` (a watchdog that fired would show here)."""
    events: list[Message] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            events.append(session.events.get(timeout=left))
        except queue.Empty:
            break
    return events


def of(events: list[Message], gen_id: int, kind: str) -> list[Message]:
    return [m for m in events if m.get("id") == gen_id and m.get("type") == kind]


def text_of(events: list[Message], gen_id: int) -> str:
    return "".join(str(m["text"]) for m in of(events, gen_id, "token"))


def no_restart(events: list[Message]) -> None:
    kinds = {m.get("type") for m in events}
    assert not kinds & {"stop_forced", "engine_exited", "engine_stopped"}, events


def test_stopping_a_waiting_reply_ends_only_it_and_keeps_the_worker(smol: EngineSession) -> None:
    pid = smol.client.pid
    running = smol.client.generate(sampling=SamplingParams(temperature=0.0, max_tokens=60, seed=1), messages=STORY)
    first = smol.wait_for("token", timeout=120)
    assert first["id"] == running
    waiting = smol.client.generate(sampling=SHORT, messages=CHAT)
    t0 = time.perf_counter()
    smol.client.stop(waiting)
    events = collect(smol, {waiting})
    assert time.perf_counter() - t0 < 1.0  # settled at once, not when its turn would have come
    events += collect(smol, {running})
    events += quiet_for(smol, 3 * STOP_GRACE_S)
    no_restart(events)
    assert smol.client.pid == pid and smol.client.alive
    done = of(events, waiting, "done")
    assert len(done) == 1 and done[0]["stats"]["finish_reason"] == "cancelled" and done[0]["stats"]["tokens"] == 0
    assert not of(events, waiting, "token") and not of(events, waiting, "started")  # it never ran
    # the running reply was not touched: it ran to its end
    ran = of(events, running, "done")
    assert len(ran) == 1 and ran[0]["stats"]["finish_reason"] in ("stop", "length")
    assert (first["text"] + text_of(events, running)).strip()
    text, stats = smol.generate(SHORT, messages=CHAT)  # and the engine goes on
    assert text and stats.tokens > 0


def test_stopping_the_running_reply_leaves_the_waiting_one(smol: EngineSession) -> None:
    pid = smol.client.pid
    running = smol.client.generate(sampling=LONG, messages=STORY)
    smol.wait_for("token", timeout=120)
    waiting = smol.client.generate(sampling=SHORT, messages=CHAT)
    t0 = time.perf_counter()
    smol.client.stop(running)
    events = collect(smol, {running})
    elapsed = time.perf_counter() - t0
    assert of(events, running, "done")[0]["stats"]["finish_reason"] == "cancelled"
    assert elapsed < 1.0
    events += collect(smol, {waiting})
    events += quiet_for(smol, 3 * STOP_GRACE_S)
    no_restart(events)
    assert smol.client.pid == pid
    done = of(events, waiting, "done")
    assert len(done) == 1 and done[0]["stats"]["finish_reason"] in ("stop", "length")
    assert done[0]["stats"]["tokens"] > 0 and text_of(events, waiting).strip()


def test_a_stop_before_its_request_starts_is_kept_by_the_worker(smol: EngineSession) -> None:
    """The worker's own half, without the client's bookkeeping: a stop for a queued request is
    remembered and the request is answered ``done``/cancelled without running; a stop for an id the
    worker does not hold is ignored."""
    client = smol.client
    pid = client.pid
    running = client.generate(sampling=SamplingParams(temperature=0.0, max_tokens=40, seed=1), messages=STORY)
    smol.wait_for("token", timeout=120)
    sampling: dict[str, Any] = SHORT.to_dict()
    client.send_raw({"type": "stop", "id": 7_000})  # nothing by that id: no effect on what follows
    client.send_raw({"type": "generate", "id": 7_001, "mode": "chat", "messages": CHAT, "sampling": sampling})
    client.send_raw({"type": "stop", "id": 7_001})
    client.send_raw({"type": "generate", "id": 7_000, "mode": "chat", "messages": CHAT, "sampling": sampling})
    events = collect(smol, {running, 7_000, 7_001})
    events += quiet_for(smol, 3 * STOP_GRACE_S)
    no_restart(events)
    assert client.pid == pid
    assert of(events, running, "done")[0]["stats"]["finish_reason"] in ("stop", "length")
    skipped = of(events, 7_001, "done")[0]["stats"]
    assert skipped["finish_reason"] == "cancelled" and skipped["tokens"] == 0 and skipped["seed"] == 1
    assert not of(events, 7_001, "token") and not of(events, 7_001, "started")
    later = of(events, 7_000, "done")[0]["stats"]
    assert later["finish_reason"] in ("stop", "length") and later["tokens"] > 0
    order = [m["id"] for m in events if m.get("type") == "started"]
    assert order == [7_000]  # the running one had started before these events were collected


def test_the_watchdog_arms_only_for_the_running_reply(smol: EngineSession) -> None:
    """Stopping every reply at once (``stop()``) interrupts the running one and settles the waiting
    ones; nothing waits on a stop that cannot take effect yet, so the worker is not restarted."""
    pid = smol.client.pid
    running = smol.client.generate(sampling=LONG, messages=STORY)
    smol.wait_for("token", timeout=120)
    waiting = [smol.client.generate(sampling=SHORT, messages=CHAT) for _ in range(2)]
    smol.client.stop()
    events = collect(smol, {running, *waiting})
    events += quiet_for(smol, 3 * STOP_GRACE_S)
    no_restart(events)
    assert smol.client.pid == pid
    for gen_id in (running, *waiting):
        assert of(events, gen_id, "done")[0]["stats"]["finish_reason"] == "cancelled"
    assert all(not of(events, g, "token") for g in waiting)
    text, _ = smol.generate(SHORT, messages=CHAT)
    assert text
