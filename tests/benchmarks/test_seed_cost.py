"""What "same seed, same text" costs: a seeded request evaluates its whole prompt from an empty cache,
an unseeded one reuses the cached prefix. Reported as time to first token on a turn of a conversation
whose history is already in the engine's cache, alternating seeded and unseeded over rounds.

Run: pytest -m benchmarks tests/benchmarks/test_seed_cost.py -s
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.session import EngineSession

pytestmark = pytest.mark.benchmarks

ROUNDS = int(os.environ.get("SIZEWISE_BENCH_ROUNDS", "7"))
HISTORY = [
    {"role": "user", "content": "Tell me about lighthouses. " * 20},
    {"role": "assistant", "content": "Lighthouses guide ships along dangerous coasts. " * 20},
]


def test_seeded_turn_cost_vs_cached_prefix(smollm2_path: Path) -> None:
    seeded, unseeded, prompt_tokens = [], [], 0
    with EngineSession() as s:
        s.load(smollm2_path, LoadParams(n_ctx=2048))
        for i in range(ROUNDS + 1):
            for seed in ((None, 5) if i % 2 else (5, None)):
                # warm the cache with the history, then ask the next turn
                s.generate(SamplingParams(max_tokens=1, temperature=0.0), messages=HISTORY[:1])
                messages = [*HISTORY, {"role": "user", "content": f"And question {i}?"}]
                _, stats = s.generate(SamplingParams(max_tokens=4, temperature=0.7, seed=seed), messages=messages)
                if i:
                    (seeded if seed is not None else unseeded).append(stats.ttft_ms)
                    if seed is not None:
                        prompt_tokens = stats.prompt_tokens
    ratio = statistics.median(seeded) / statistics.median(unseeded)
    print(
        f"\nfirst token with a fixed seed / with the prefix cache, {prompt_tokens}-token prompt: {ratio:.2f} "
        f"({statistics.median(seeded):.0f} ms vs {statistics.median(unseeded):.0f} ms, median of {len(seeded)} "
        f"alternating rounds; seeded {min(seeded):.0f}-{max(seeded):.0f} ms)"
    )
    assert ratio >= 1.0  # the seeded turn re-evaluates the history: it cannot be faster
