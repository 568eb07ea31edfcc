"""Raw llama-cpp-python streaming, the baseline the engine is compared with (run as a subprocess
so the benchmark process itself never loads llama.cpp)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import llama_cpp

from sizewise.core.sampling import default_threads


def chat_pieces(llm: llama_cpp.Llama, prompt: str, max_tokens: int, seed: int) -> Iterator[str]:
    """The reply's text pieces, with the sampling settings both engine benchmarks give the engine."""
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        max_tokens=max_tokens,
        seed=seed,
        temperature=0.8,
        top_p=0.95,
        top_k=40,
        min_p=0.05,
        repeat_penalty=1.1,
    ):
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            yield text


def main() -> None:
    path, n_ctx, max_tokens, seed, prompt = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    threads = default_threads()  # the engine's default, so both sides run the same threads
    llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    results = []
    for line in sys.stdin:
        if not line.strip():
            break
        llm.reset()
        times = []
        for _text in chat_pieces(llm, prompt, max_tokens, seed):
            times.append(time.perf_counter())
        perf = llama_cpp.llama_perf_context(llm.ctx)
        results.append(
            {"pieces": len(times), "span_s": times[-1] - times[0], "perf_tg_tps": perf.n_eval / perf.t_eval_ms * 1000}
        )
        print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
