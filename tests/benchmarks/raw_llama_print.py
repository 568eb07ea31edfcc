"""Raw llama-cpp-python streaming a chat reply to stdout, piece by piece, the way ``sizewise generate``
prints it: the baseline for speed as received from outside the app (tests/benchmarks/test_stream_received.py)."""

from __future__ import annotations

import sys

import llama_cpp
from raw_llama_stream import chat_pieces

from sizewise.core.sampling import default_threads


def main() -> None:
    path, max_tokens, seed, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    threads = default_threads()  # the engine's default, so both sides run the same threads
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    for text in chat_pieces(llm, prompt, max_tokens, seed):
        sys.stdout.write(text)
        sys.stdout.flush()
    perf = llama_cpp.llama_perf_context(llm.ctx)
    print(f"\n[{perf.n_eval + 1} tokens]", file=sys.stderr)


if __name__ == "__main__":
    main()
