"""A model whose chat template raises, loops or blows up fails one request, never the engine.

Each GGUF here is a copy of SmolLM2 with another ``tokenizer.chat_template``: the same weights, a
hostile template. After each failed request the same worker (same pid, no restart) still has the
model loaded and answers a completion request.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.session import EngineError, EngineSession
from tests.ggufs import write_template_copy

CHAT = [{"role": "user", "content": "Say hello."}]
GREEDY = SamplingParams(temperature=0.0, max_tokens=8, seed=1)

TEMPLATES = {
    "raises": ("{{ raise_exception('Only user and assistant roles are supported!') }}", r"refused this conversation"),
    "undefined": ("{{ messages[0].content.nope.deeper }}", r"chat template failed"),
    "escapes_sandbox": ("{{ ''.__class__.__mro__[1].__subclasses__() }}", r"sandbox forbids"),
    "loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}hi",
        r"did not finish within 2 s",
    ),
    "huge_value": ("{{ 'x' * 100000000 }}", r"sandbox forbids: a value over 1 MiB"),
    "huge_output": (
        "{% for i in range(100000) %}{{ messages[0].content }}{{ 'y' * 1000 }}{% endfor %}",
        r"produced more than [\d,]+ characters",
    ),
}


@pytest.fixture(scope="module")
def hostile_models(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("templates")
    return {
        name: write_template_copy(smollm2_path, folder / f"{name}.gguf", template)
        for name, (template, _) in TEMPLATES.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_a_hostile_template_fails_one_request_and_the_engine_stays_loaded(
    name: str, hostile_models: dict[str, Path], tmp_path: Path
) -> None:
    _, expected = TEMPLATES[name]
    with EngineSession(log_path=tmp_path / "engine.log") as s:
        s.load(hostile_models[name], LoadParams(n_ctx=2048))
        pid = s.client.pid
        t0 = time.perf_counter()
        with pytest.raises(EngineError, match=expected) as failure:
            s.generate(GREEDY, messages=CHAT)
        took = time.perf_counter() - t0
        message = str(failure.value)
        assert message.count(". ") == 0 and message.endswith("."), f"not one sentence: {message!r}"
        assert len(message) < 300
        assert took < 30, f"the failure took {took:.1f} s"
        # same process, model still loaded, usable at once
        assert s.client.alive and s.client.pid == pid
        text, stats = s.generate(GREEDY, prompt="The capital of France is")
        assert text.strip() and stats.finish_reason in {"stop", "length"}
        assert s.client.pid == pid
