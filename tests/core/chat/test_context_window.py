"""Fitting a conversation into the context window, checked against real llama.cpp token counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sizewise.commands.remote.engines import count_tokens
from sizewise.core.chat.context_window import (
    MESSAGE_OVERHEAD_TOKENS,
    PROMPT_OVERHEAD_TOKENS,
    estimate_tokens,
    fit_estimated,
    fit_messages,
    reply_reserve,
)
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.session import EngineError, EngineSession

N_CTX = 512


def test_everything_fits_when_short() -> None:
    fit = fit_messages(["system", "user", "assistant", "user"], [10, 20, 30, 5], 2048, 256)
    assert fit.kept == (0, 1, 2, 3) and fit.dropped == () and fit.fits and fit.notice is None
    assert fit.used_tokens == PROMPT_OVERHEAD_TOKENS + 65 + 4 * MESSAGE_OVERHEAD_TOKENS
    assert fit.meter_text == f"{fit.used_tokens:,} / 2,048 tokens ({fit.used_tokens / 2048:.0%})"


def test_oldest_turns_go_first_and_the_system_prompt_stays() -> None:
    roles = ["system", "user", "assistant", "user", "assistant", "user"]
    counts = [50, 100, 100, 100, 100, 100]
    overhead = PROMPT_OVERHEAD_TOKENS + 50 + MESSAGE_OVERHEAD_TOKENS
    budget_for_three = overhead + 3 * (100 + MESSAGE_OVERHEAD_TOKENS)
    fit = fit_messages(roles, counts, budget_for_three + 100, 100)
    assert fit.kept == (0, 3, 4, 5) and fit.dropped == (1, 2)
    assert fit.fits and fit.used_tokens == budget_for_three
    assert fit.notice is not None and "2 older messages were left out" in fit.notice


def test_history_never_starts_with_an_assistant_turn() -> None:
    roles = ["user", "assistant", "user", "assistant", "user"]
    counts = [100] * 5
    room_for_four = PROMPT_OVERHEAD_TOKENS + 4 * (100 + MESSAGE_OVERHEAD_TOKENS)
    fit = fit_messages(roles, counts, room_for_four, 0)
    assert fit.kept == (2, 3, 4)  # the fourth-newest is an assistant turn: dropped with its question
    assert roles[fit.kept[0]] == "user"


def test_a_newest_message_too_long_for_the_window() -> None:
    fit = fit_messages(["user", "assistant", "user"], [10, 10, 5000], 2048, 512)
    assert fit.kept == (2,) and not fit.fits
    assert fit.notice is not None and "shorten it" in fit.notice


def test_estimate_is_labelled_and_counts_non_ascii_heavily() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a" * 35) == 10
    assert estimate_tokens("日本語のテキスト") == 8
    fit = fit_estimated([{"role": "user", "content": "hello"}], 2048, 256)
    assert fit.estimated and fit.meter_text.startswith("≈")


def test_reply_reserve_is_at_most_a_quarter() -> None:
    assert reply_reserve(512, 2048) == 512
    assert reply_reserve(4096, 2048) == 512
    assert reply_reserve(100, 2048) == 100


# -- against the real tokenizer and llama.cpp's own prompt count -----------------------------------
@pytest.fixture
def smol(smollm2_path: Path, tmp_path: Path) -> Iterator[EngineSession]:
    # Function-scoped: the autouse no_leftovers guard fails a test that leaves an engine running.
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        session.load(smollm2_path, LoadParams(n_ctx=N_CTX))
        yield session


CONVERSATION = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Portugal? Answer with the city's name and one fact about it."},
]


def test_token_counts_come_from_the_model_and_bound_the_real_prompt(smol: EngineSession) -> None:
    counts, estimated = count_tokens(smol, [m["content"] for m in CONVERSATION])
    assert not estimated and all(c > 0 for c in counts)
    fit = fit_messages([m["role"] for m in CONVERSATION], counts, N_CTX, 64)
    assert fit.kept == (0, 1, 2, 3)
    # The first reply after a load has no cached prefix, so llama.cpp counts the whole prompt.
    _, stats = smol.generate(SamplingParams(temperature=0.0, max_tokens=4, seed=1), messages=CONVERSATION)
    print(f"\nprompt tokens: llama.cpp {stats.prompt_tokens}, our budget {fit.used_tokens}")
    assert stats.prompt_tokens <= fit.used_tokens <= stats.prompt_tokens + 40


def test_a_fitted_conversation_runs_where_the_whole_one_overflows(smol: EngineSession) -> None:
    long_turn = " ".join(f"item{i}" for i in range(120))
    history = [{"role": "system", "content": "Be brief."}]
    for i in range(8):
        history += [
            {"role": "user", "content": f"Remember list {i}: {long_turn}"},
            {"role": "assistant", "content": "OK."},
        ]
    history.append({"role": "user", "content": "Say hello."})
    sampling = SamplingParams(temperature=0.0, max_tokens=8, seed=1)
    with pytest.raises(EngineError, match="context"):
        smol.generate(sampling, messages=history)
    counts, _ = count_tokens(smol, [m["content"] for m in history])
    fit = fit_messages([m["role"] for m in history], counts, N_CTX, reply_reserve(sampling.max_tokens, N_CTX))
    assert fit.dropped and fit.kept[0] == 0 and fit.kept[-1] == len(history) - 1
    assert fit.notice is not None
    _text, stats = smol.generate(sampling, messages=[history[i] for i in fit.kept])
    assert stats.tokens > 0 and stats.prompt_tokens <= fit.used_tokens


def test_tokenize_without_a_model_falls_back_to_the_estimate(tmp_path: Path) -> None:
    with EngineSession(log_path=tmp_path / "engine.log") as session:
        session.start()
        counts, estimated = count_tokens(session, ["hello world"])
        assert estimated and counts == [estimate_tokens("hello world")]
