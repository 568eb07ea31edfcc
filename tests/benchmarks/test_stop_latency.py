"""How soon a stop takes effect — README: "Esc stops — within 200 ms, even during prompt processing".
Run: pytest -m benchmarks tests/benchmarks/test_stop_latency.py -s

The default suite checks that a stop takes effect by itself and that the forced fallback works
(tests/engine/test_engine.py), with bounds a loaded machine meets; the 200 ms figure is measured here,
with the client's real grace period (STOP_GRACE_S), as a median over repeated stops:

* mid-generation (SmolLM2 chat, Gemma-3 completion): from ``stop()`` to the reply's end;
* during prompt processing (SmolLM2, ~1500 tokens): from ``stop()`` to the ``done`` that llama.cpp's
  abort callback leads to;
* a worker that cannot answer (stopped with SIGSTOP): from ``stop()`` to ``stop_forced``, the grace
  period plus the kill.

Each figure is printed with its ratio to the 200 ms goal, and how many stops were forced: a stop that
misses the grace period still ends within it plus a kill, but it restarts the engine.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from pathlib import Path

import pytest

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.protocol import STOP_GRACE_S
from sizewise.engine.session import EngineError, EngineSession

pytestmark = pytest.mark.benchmarks

GOAL_S = 0.2
REPS = int(os.environ.get("SIZEWISE_BENCH_REPS", "9"))  # odd: the median is one run
LONG_PROMPT = "hello " * 1500
CHAT = [{"role": "user", "content": "Write a very long story."}]


def _report(label: str, times: list[float], forced: int) -> float:
    median = statistics.median(times)
    print(
        f"\nstop {label}: median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {len(times)} stops, "
        f"{forced} forced (goal ≤ {GOAL_S * 1000:.0f} ms; ratio to goal {median / GOAL_S:.2f})"
    )
    return median


def _stop_mid_generation(session: EngineSession, **request: object) -> tuple[float, bool]:
    """Seconds from stop() to the end of the reply, and whether the worker had to be restarted."""
    gen = session.stream(SamplingParams(temperature=0.8, max_tokens=2000, seed=5), **request)  # type: ignore[arg-type]
    next(gen)
    t0 = time.perf_counter()
    session.client.stop()
    try:
        for _ in gen:
            pass
    except EngineError:  # "stopped by restarting the engine"
        elapsed = time.perf_counter() - t0
        session.wait_for("engine_exited", timeout=10)
        return elapsed, True
    return time.perf_counter() - t0, False


def _stops_mid_generation(model: Path, **request: object) -> tuple[list[float], int]:
    times: list[float] = []
    forced = 0
    with EngineSession() as s:
        s.load(model, LoadParams(n_ctx=1024))
        for _ in range(REPS):
            elapsed, was_forced = _stop_mid_generation(s, **request)
            times.append(elapsed)
            if was_forced:  # the worker was killed: load again, untimed
                forced += 1
                s.load(model, LoadParams(n_ctx=1024))
    return times, forced


def test_stop_mid_generation_smollm2(smollm2_path: Path) -> None:
    times, forced = _stops_mid_generation(smollm2_path, messages=CHAT)
    assert _report("mid-generation (SmolLM2 chat)", times, forced) <= GOAL_S


def test_stop_mid_generation_gemma3(gemma_path: Path) -> None:
    times, forced = _stops_mid_generation(gemma_path, prompt="List of numbers: 1, 2, 3,")
    assert _report("mid-generation (Gemma-3 completion)", times, forced) <= GOAL_S


def test_stop_during_prompt_processing(smollm2_path: Path) -> None:
    times: list[float] = []
    forced = 0
    with EngineSession() as s:
        for _ in range(REPS):
            if not s.loaded:
                s.load(smollm2_path, LoadParams(n_ctx=2048))
            gen_id = s.client.generate(sampling=SamplingParams(temperature=0.0, max_tokens=24), prompt=LONG_PROMPT)
            time.sleep(0.3)  # 1500 tokens take seconds to process: the worker is inside llama_decode now
            t0 = time.perf_counter()
            s.client.stop()
            msg = s.wait_for("done", "stop_forced", "failed", timeout=30)
            times.append(time.perf_counter() - t0)
            assert msg["id"] == gen_id, msg
            if msg["type"] == "stop_forced":
                forced += 1
                s.wait_for("engine_exited", timeout=10)
                s.loaded = {}
            else:
                assert msg["type"] == "done" and msg["stats"]["finish_reason"] == "cancelled", msg
    assert _report("during prompt processing (SmolLM2, ~1500 tokens)", times, forced) <= GOAL_S


def test_forced_stop_of_a_worker_that_does_not_answer(smollm2_path: Path) -> None:
    reps = max(3, REPS // 2)  # each one costs a fresh worker and a load
    times: list[float] = []
    with EngineSession() as s:
        for _ in range(reps):
            s.load(smollm2_path, LoadParams(n_ctx=512))
            s.client.generate(sampling=SamplingParams(max_tokens=400, seed=1), messages=CHAT)
            s.wait_for("token", timeout=60)
            assert s.client.pid is not None
            os.kill(s.client.pid, signal.SIGSTOP)
            t0 = time.perf_counter()
            s.client.stop()
            s.wait_for("stop_forced", timeout=10)
            times.append(time.perf_counter() - t0)
            s.wait_for("engine_exited", timeout=10)
    median = _report(f"of a stuck worker (grace period {STOP_GRACE_S * 1000:.0f} ms, then killed)", times, reps)
    assert STOP_GRACE_S <= median <= GOAL_S
