"""Speed as received, measured from outside the app: ``sizewise generate`` streaming to a pipe against
raw llama-cpp-python streaming the same chat reply to a pipe (same model, prompt, seed, sampling,
threads), alternating the two over rounds. Goal: ≥ 0.98 of raw.

Run: pytest -m benchmarks tests/benchmarks/test_stream_received.py -s
Both sides produce the same text (same seed), so their token counts are equal and the ratio of
speeds is the inverse ratio of the spans from the reply's first byte to its last.
A measure noise cannot touch is reported too: how many engine messages one reply takes.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.session import EngineSession

pytestmark = pytest.mark.benchmarks

PROMPT = "Write a long story about a lighthouse keeper and a storm."
MAX_TOKENS = 160
SEED = 42
ROUNDS = int(os.environ.get("SIZEWISE_BENCH_ROUNDS", "7"))


def _received(cmd: list[str]) -> tuple[str, float]:
    """(text, seconds from the first byte of stdout to its last), reading the pipe as it fills."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    chunks: list[bytes] = []
    first = last = 0.0
    fd = proc.stdout.fileno()
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        now = time.perf_counter()
        first = first or now
        if data.strip():
            last = now
        chunks.append(data)
    assert proc.wait(120) == 0
    proc.stdout.close()
    return b"".join(chunks).decode("utf-8").strip(), last - first


def test_generate_cli_speed_as_received_vs_raw(smollm2_path: Path, tmp_path: Path) -> None:
    sizewise = [
        sys.executable, "-m", "sizewise", "--basedir", str(tmp_path), "generate", str(smollm2_path),
        "--prompt", PROMPT, "--seed", str(SEED), "--max-tokens", str(MAX_TOKENS), "--temperature", "0.8",
    ]  # fmt: skip
    raw = [sys.executable, str(Path(__file__).with_name("raw_llama_print.py")), str(smollm2_path),
           str(MAX_TOKENS), str(SEED), PROMPT]  # fmt: skip
    ratios, spans_s, spans_r = [], [], []
    for i in range(ROUNDS + 1):  # the first pair warms the page cache
        order = (sizewise, raw) if i % 2 else (raw, sizewise)
        results = {id(cmd): _received(cmd) for cmd in order}
        (text_s, span_s), (text_r, span_r) = results[id(sizewise)], results[id(raw)]
        assert text_s == text_r, "both sides must write the same reply"
        if i:
            ratios.append(span_r / span_s)
            spans_s.append(span_s)
            spans_r.append(span_r)
    # messages per reply: what the receiving process wakes up for (noise-free)
    with EngineSession() as s:
        s.load(smollm2_path, LoadParams(n_ctx=2048))
        pieces = list(s.stream(SamplingParams(temperature=0.8, max_tokens=MAX_TOKENS, seed=SEED),
                               messages=[{"role": "user", "content": PROMPT}]))  # fmt: skip
        assert s.last_stats is not None
        tokens = s.last_stats.tokens
    median = statistics.median(ratios)
    print(
        f"\nsizewise generate / raw, tokens/s as received through a pipe: median {median:.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} alternating rounds; spans "
        f"{statistics.median(spans_s):.2f} s vs {statistics.median(spans_r):.2f} s)\n"
        f"engine messages for a {tokens}-token reply: {len(pieces)} (one per token before batching)"
    )
    assert len(pieces) < tokens / 2
    assert median >= 0.98
