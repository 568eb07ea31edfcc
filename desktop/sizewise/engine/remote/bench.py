"""llama-bench's method through llama-server's API, as far as the API allows.

Like llama-bench: pp runs send ``pp`` random token ids (no text, no template), tg runs generate exactly ``tg``
tokens (``ignore_eos``), every run with ``cache_prompt: false`` so nothing is reused, warm-up runs first, and
each figure is the mean ± sample stddev of per-run tokens/s. The server's own ``timings`` give the figures;
the client's wall-clock figures (which include HTTP and the network) are kept beside them.

What cannot be the same is listed in ``DIFFERENCES`` and printed with every remote bench.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from sizewise.core.sampling import SamplingParams
from sizewise.engine.remote.http import RemoteError
from sizewise.engine.remote.session import TIMING_KEYS, RemoteSession

DIFFERENCES = (
    "the server chose threads, batch sizes, context and GPU layers; the memory flags here do not apply",
    "tg starts after a 1-token prompt (llama-bench's starts from an empty cache)",
    "each pp run also samples 1 token (the API cannot process a prompt alone); its time is not in the pp figure",
    "no memory figures: the server's memory is not measured",
    "client figures include HTTP and the network; the server figures are llama-server's own timings",
)
TTFT_PROMPT = "Write one sentence about the sea."


def _summary(n: int, samples: list[float], client: list[float]) -> dict[str, Any]:
    return {
        "n": n,
        "repetitions": len(samples),
        "mean_tps": round(statistics.fmean(samples), 2),
        "sd_tps": round(statistics.stdev(samples), 2) if len(samples) > 1 else 0.0,
        "samples_tps": [round(s, 2) for s in samples],
        "client_mean_tps": round(statistics.fmean(client), 2) if client else None,
        "client_samples_tps": [round(s, 2) for s in client],
    }


def run_remote_bench(
    session: RemoteSession,
    *,
    pp: int,
    tg: int,
    repetitions: int,
    warmup: bool = True,
    ttft: bool = True,
    progress: Callable[[str, int, int, float | None], None] | None = None,
) -> dict[str, Any]:
    """The bench result (same keys as a local bench entry where they mean the same) plus every run's timings."""
    info = session.connect() if session.info is None else session.info
    if info.kind != "llama-server":
        raise RemoteError(
            "bench --server needs llama-server (its timings and token-id prompts); "
            f"the server at {info.url} is another OpenAI-compatible server."
        )
    vocab = info.n_vocab or 32000
    low = min(1000, vocab // 2)
    rng = random.Random(42)
    all_timings: list[dict[str, Any]] = []

    def one(kind: str, n: int) -> tuple[float, float]:
        """(server tokens/s, client tokens/s) for one pp or tg run."""
        if kind == "pp":
            prompt: list[int] = [rng.randrange(low, vocab) for _ in range(n)]
            max_tokens = 1
        else:
            prompt, max_tokens = [rng.randrange(low, vocab)], n
        sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=0)
        extra = {"prompt": prompt, "cache_prompt": False, "n_predict": max_tokens, "ignore_eos": True, "top_k": 1}
        t0 = time.perf_counter()
        for _ in session.stream(sampling, prompt="", extra=extra):
            pass
        wall = time.perf_counter() - t0
        timings, stats = session.last_server_timings, session.last_stats
        if not timings or stats is None:
            raise RemoteError(f"The server at {info.url} sent no timings; bench --server needs llama-server's.")
        all_timings.append({"phase": kind, **{k: timings.get(k) for k in TIMING_KEYS}})
        if kind == "pp":
            server = float(timings.get("prompt_per_second") or 0.0)
            client = n / stats.ttft_ms * 1000.0 if stats.ttft_ms > 0 else n / wall
        else:
            if int(timings.get("predicted_n") or 0) != n:
                raise RemoteError(f"The server generated {timings.get('predicted_n')} tokens, not the {n} asked for.")
            server = float(timings.get("predicted_per_second") or 0.0)
            client = stats.tg_tps
        return server, client

    steps = (2 if warmup else 0) + 2 * repetitions + (repetitions if ttft else 0)
    step = 0

    def note(phase: str, value: float | None) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(phase, step, steps, value)

    if warmup:
        one("pp", pp)
        note("warmup_pp", None)
        one("tg", tg)
        note("warmup_tg", None)
    out: dict[str, Any] = {}
    for kind, n in (("pp", pp), ("tg", tg)):
        server_s, client_s = [], []
        for _ in range(repetitions):
            s, c = one(kind, n)
            server_s.append(s)
            client_s.append(c)
            note(kind, s)
        out[kind] = _summary(n, server_s, client_s)
    out["ttft_ms"] = None
    if ttft:
        samples = []
        for _ in range(repetitions):
            sampling = SamplingParams(temperature=0.0, max_tokens=8, seed=0)
            messages = [{"role": "user", "content": TTFT_PROMPT}]
            for _ in session.stream(sampling, messages=messages, extra={"cache_prompt": False}):
                pass
            assert session.last_stats is not None
            samples.append(session.last_stats.ttft_ms)
            note("ttft", session.last_stats.ttft_ms)
        out["ttft_ms"] = round(statistics.fmean(samples), 1)
        out["ttft"] = {"mean_ms": out["ttft_ms"], "samples_ms": [round(s, 1) for s in samples], "prompt": TTFT_PROMPT}
    out["server_timings"] = all_timings
    return out
