"""The engine process with real llama.cpp and the two real test models."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.session import EngineError, EngineSession
from tests.ggufs import write_unknown_arch

GREEDY = SamplingParams(temperature=0.0, max_tokens=24, seed=1)
CHAT = [{"role": "user", "content": "Name three colours."}]
LONG_PROMPT = "hello " * 1500  # ~1500 tokens: several seconds of prompt processing on 2 cores


@pytest.fixture
def smol(smollm2_path: Path, tmp_path: Path):
    with EngineSession(log_path=tmp_path / "engine.log") as s:
        s.load(smollm2_path, LoadParams(n_ctx=2048))
        yield s


def test_load_reports_buffers_from_llama_log(smol: EngineSession, tmp_path: Path) -> None:
    loaded = smol.loaded
    assert loaded["chat_mode"] == "chat"
    assert loaded["n_ctx"] == 2048 and loaded["n_ctx_train"] == 8192
    measured = MeasuredBuffers.from_lines(loaded["buffers"])
    comp = measured.by_component()
    assert comp["weights"] > 80 * 2**20
    assert comp["kv"] == 45 * 2**20  # 30 layers × 2048 cells × 3 heads × (64+64) × 2 bytes
    assert comp["compute"] > 0
    # the numbers are exactly the ones llama.cpp wrote to its log
    log = (tmp_path / "engine.log").read_text()
    from_file = MeasuredBuffers()
    from_file.add_log_text(log)
    assert from_file.by_component() == comp
    assert smol.client.ready_info["llama_cpp_version"] == "0.3.36"


def test_stream_and_stats(smol: EngineSession) -> None:
    pieces = list(smol.stream(GREEDY, messages=CHAT))
    stats = smol.last_stats
    assert stats is not None
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert stats.finish_reason in ("stop", "length")
    assert stats.tokens > 3 and stats.tg_tps > 1 and stats.pp_tps > 1
    assert 0 < stats.ttft_ms < 30_000
    assert stats.peak_rss_bytes >= stats.rss_bytes > 50 * 2**20


def test_max_tokens_gives_length(smol: EngineSession) -> None:
    _, stats = smol.generate(SamplingParams(temperature=0.0, max_tokens=5, seed=1), messages=CHAT)
    assert stats.finish_reason == "length"
    assert stats.tokens == 5


def test_fixed_seed_is_deterministic(smol: EngineSession) -> None:
    s = SamplingParams(temperature=1.0, max_tokens=30, seed=1234)
    a, _ = smol.generate(s, messages=CHAT)
    b, _ = smol.generate(s, messages=CHAT)
    assert a == b


SEEDED = SamplingParams(temperature=1.0, max_tokens=40, seed=1234)
LONGER_CHAT = [*CHAT, {"role": "assistant", "content": "Red, orange and yellow."}, {"role": "user", "content": "More?"}]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["chat", "completion"])
def test_fixed_seed_gives_the_same_text_in_every_engine_state(smollm2_path: Path, mode: str) -> None:
    """Byte-identical text for one seeded request on a fresh engine, repeated on a warm one (its prompt
    then cached), after other requests (unseeded, and one sharing the prompt's prefix), and on a
    second fresh engine — twice over. The prompt is always evaluated in full for a seeded request:
    a cached prefix makes llama-cpp-python re-evaluate only the last token, in a batch of one, whose
    logits differ in the last bits from the full batch's (the cause of a flaky failure of the test above)."""
    request = {"messages": CHAT} if mode == "chat" else {"prompt": "The colours of the rainbow are"}
    sharing_prefix = {"messages": LONGER_CHAT} if mode == "chat" else {"prompt": "The colours of the rainbow are many"}
    texts: list[str] = []
    prompt_tokens: set[int] = set()
    for _ in range(2):
        with EngineSession() as s:
            s.load(smollm2_path, LoadParams(n_ctx=2048))
            for before in (None, "same", "others"):
                if before == "others":
                    s.generate(SamplingParams(temperature=0.9, max_tokens=12), prompt="Once upon a time")
                    s.generate(SamplingParams(temperature=0.9, max_tokens=12), **sharing_prefix)  # type: ignore[arg-type]
                text, stats = s.generate(SEEDED, **request)  # type: ignore[arg-type]
                texts.append(text)
                prompt_tokens.add(stats.prompt_tokens)
    assert texts[0].strip()
    assert len(set(texts)) == 1, texts
    # every seeded request evaluated its whole prompt (before the fix, a repeat evaluated 1 token)
    assert len(prompt_tokens) == 1 and prompt_tokens.pop() > 1


def test_different_seeds_differ_at_high_temperature(smol: EngineSession) -> None:
    outs = {
        smol.generate(SamplingParams(temperature=1.5, max_tokens=30, seed=seed), messages=CHAT)[0] for seed in (1, 2, 3)
    }
    assert len(outs) >= 2


# The stop tests check that a stop takes effect by itself — llama.cpp's abort callback, the worker
# survives — not how fast: on a loaded 2-core machine a stop can miss the 150 ms grace period before the
# client restarts the worker, which is the fallback working, not a fault. So they give the worker a
# patient grace period and a bound a loaded machine meets; README's "within 200 ms" is measured, with
# the real grace period, by tests/benchmarks/test_stop_latency.py. The fallback itself is tested below
# (test_stop_terminates_a_worker_that_does_not_answer).
PATIENT_GRACE_S = 30.0
STOP_BOUND_S = 5.0  # "does not hang": the benchmark measures medians of 6-45 ms


@pytest.fixture
def patient_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sizewise.engine.client.STOP_GRACE_S", PATIENT_GRACE_S)


def _stop_after_first_token(session: EngineSession, **request: object) -> tuple[float, str]:
    gen = session.stream(SamplingParams(temperature=0.8, max_tokens=2000, seed=5), **request)  # type: ignore[arg-type]
    first = next(gen)
    t0 = time.perf_counter()
    session.client.stop()
    rest = list(gen)
    elapsed = time.perf_counter() - t0
    assert session.last_stats is not None
    return elapsed, first + "".join(rest)


def test_stop_mid_generation_takes_effect(smol: EngineSession, patient_stop: None) -> None:
    elapsed, _ = _stop_after_first_token(smol, messages=[{"role": "user", "content": "Write a very long story."}])
    assert smol.last_stats is not None and smol.last_stats.finish_reason == "cancelled"  # not restarted
    assert elapsed < STOP_BOUND_S
    # the model stays loaded and usable
    text, _ = smol.generate(GREEDY, messages=CHAT)
    assert text


def test_stop_during_long_prompt_takes_effect(smol: EngineSession, patient_stop: None) -> None:
    gen_id = smol.client.generate(sampling=GREEDY, prompt=LONG_PROMPT)
    time.sleep(0.3)  # 1500 tokens take seconds to process: we are inside llama_decode now
    t0 = time.perf_counter()
    smol.client.stop()
    msg = smol.wait_for("done", "stop_forced", "failed", timeout=10)
    elapsed = time.perf_counter() - t0
    assert msg["id"] == gen_id, msg
    assert elapsed < STOP_BOUND_S
    # Interrupted through llama.cpp's abort callback: the worker survived and still works.
    assert msg["type"] == "done" and msg["stats"]["finish_reason"] == "cancelled"
    assert msg["stats"]["tokens"] == 0
    text, _ = smol.generate(GREEDY, messages=CHAT)
    assert text


def test_gemma_completion_mode(gemma_path: Path) -> None:
    with EngineSession() as s:
        loaded = s.load(gemma_path, LoadParams(n_ctx=2048))
        assert loaded["chat_mode"] == "completion"
        text, stats = s.generate(
            SamplingParams(temperature=0.0, max_tokens=16, seed=1), prompt="The capital of France is"
        )
        assert text.strip() and stats.tokens > 0
        comp = MeasuredBuffers.from_lines(loaded["buffers"]).by_component()
        assert comp["compute"] > 400 * 2**20  # the 262k-vocab logits buffer dominates


def test_gemma_stop_and_determinism(gemma_path: Path, patient_stop: None) -> None:
    with EngineSession() as s:
        s.load(gemma_path, LoadParams(n_ctx=1024))
        params = SamplingParams(temperature=0.9, max_tokens=20, seed=99)
        a, _ = s.generate(params, prompt="Once upon a time")
        b, _ = s.generate(params, prompt="Once upon a time")
        assert a == b
        elapsed, _ = _stop_after_first_token(s, prompt="List of numbers: 1, 2, 3,")
        assert s.last_stats is not None and s.last_stats.finish_reason == "cancelled"  # not restarted
        assert elapsed < STOP_BOUND_S


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT])
def test_worker_death_is_reported_and_engine_reloads(smollm2_path: Path, sig: signal.Signals) -> None:
    with EngineSession() as s:
        s.load(smollm2_path, LoadParams(n_ctx=512))
        gen = s.stream(SamplingParams(max_tokens=500, seed=1), messages=CHAT)
        next(gen)
        assert s.client.pid is not None
        os.kill(s.client.pid, sig)
        with pytest.raises(EngineError, match="The engine stopped: "):
            list(gen)
        # the same session can start a fresh worker and load again
        s.load(smollm2_path, LoadParams(n_ctx=512))
        text, _ = s.generate(GREEDY, messages=CHAT)
        assert text


def test_load_failures_are_sentences(tmp_path: Path) -> None:
    odd = write_unknown_arch(tmp_path / "odd.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    with EngineSession() as s:
        with pytest.raises(EngineError, match="unknown model architecture"):
            s.load(odd)
        with pytest.raises(EngineError, match=r"llama\.cpp could not load junk\.gguf"):
            s.load(junk)
        assert s.client.alive  # a failed load does not kill the worker


def test_stop_terminates_a_worker_that_does_not_answer(smollm2_path: Path) -> None:
    """The fallback: if the worker cannot stop by itself in time, it is killed and that is said."""
    with EngineSession() as s:
        s.load(smollm2_path, LoadParams(n_ctx=512))
        gen_id = s.client.generate(sampling=SamplingParams(max_tokens=400, seed=1), messages=CHAT)
        s.wait_for("token", timeout=60)
        assert s.client.pid is not None
        os.kill(s.client.pid, signal.SIGSTOP)  # a worker stuck where the abort flag is not polled
        t0 = time.perf_counter()
        s.client.stop()
        msg = s.wait_for("stop_forced", timeout=STOP_BOUND_S)
        elapsed = time.perf_counter() - t0
        assert msg["id"] == gen_id
        from sizewise.engine.protocol import STOP_GRACE_S

        assert elapsed >= STOP_GRACE_S  # the grace period first (how soon after it: the benchmark)
        s.wait_for("engine_exited", timeout=5)
        s.load(smollm2_path, LoadParams(n_ctx=512))  # a fresh worker takes over
        text, _ = s.generate(GREEDY, messages=CHAT)
        assert text


def test_peak_rss_is_the_workers_own_not_its_parents(smollm2_path: Path) -> None:
    """A big parent (the GUI, a test runner) must not leak into the worker's reported peak."""
    ballast = bytearray(600 * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1  # touch every page so the parent really holds 600 MiB
    with EngineSession() as s:
        s.load(smollm2_path, LoadParams(n_ctx=512))
        _, stats = s.generate(GREEDY, messages=CHAT)
    del ballast
    assert stats.peak_rss_bytes < 450 * 2**20, stats.peak_rss_bytes / 2**20
