"""The llama-bench loop driven directly through llama-cpp-python: the baseline for ``sizewise bench``.

Written independently of sizewise/engine/bench.py (so a mistake there cannot hide here) and run as a
subprocess (so the pytest process never imports llama_cpp). Same method as llama.cpp's llama-bench:
prompt tokens are random ids after BOS, pp decodes them in n_batch chunks from an empty cache, tg
decodes one token at a time from an empty cache, one warm-up of each, then the repetitions.

Usage: raw_llama_bench.py MODEL N_CTX PP TG REPS  → one JSON line: {"pp": [tokens/s…], "tg": [tokens/s…]}
With REPS = 0 it serves rounds instead: after the warm-up, each line on stdin runs one pp and one tg
repetition and answers one JSON line; an empty line ends it (the benchmark interleaves these rounds
with the engine's, so background load on a shared machine hits both alike).
"""

from __future__ import annotations

import ctypes
import json
import random
import sys
import time

import llama_cpp

from sizewise.core.sampling import default_threads


def main() -> None:
    path, n_ctx, pp, tg, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    # the engine worker's load settings (engine/worker.py cmd_load with LoadParams defaults)
    llm = llama_cpp.Llama(
        model_path=path,
        n_ctx=n_ctx,
        n_batch=512,
        n_ubatch=512,
        n_gpu_layers=0,
        n_threads=default_threads(),
        n_threads_batch=default_threads(),
        flash_attn=False,
        type_k=1,
        type_v=1,
        verbose=False,
    )
    ctx = llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    vocab = llm._model.vocab
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    rng = random.Random(1)
    tokens = [rng.randrange(n_vocab) for _ in range(max(pp, tg))]
    if llama_cpp.llama_vocab_get_add_bos(vocab):
        tokens[0] = llama_cpp.llama_vocab_bos(vocab)
    prompt = (llama_cpp.llama_token * len(tokens))(*tokens)
    n_batch = llm.n_batch
    size = ctypes.sizeof(llama_cpp.llama_token)

    def test_prompt(n: int) -> float:
        llama_cpp.llama_memory_clear(mem, True)
        t0 = time.perf_counter()
        for start in range(0, n, n_batch):
            ptr = ctypes.cast(ctypes.addressof(prompt) + start * size, ctypes.POINTER(llama_cpp.llama_token))
            assert llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(ptr, min(n_batch, n - start))) == 0
        llama_cpp.llama_synchronize(ctx)
        return time.perf_counter() - t0

    def test_gen(n: int) -> float:
        llama_cpp.llama_memory_clear(mem, True)
        one = (llama_cpp.llama_token * 1)(tokens[0])
        batch = llama_cpp.llama_batch_get_one(one, 1)
        t0 = time.perf_counter()
        for i in range(n):
            one[0] = tokens[i]
            assert llama_cpp.llama_decode(ctx, batch) == 0
            llama_cpp.llama_synchronize(ctx)
        return time.perf_counter() - t0

    test_prompt(pp)
    test_gen(1)
    if reps > 0:
        out = {"pp": [pp / test_prompt(pp) for _ in range(reps)], "tg": [tg / test_gen(tg) for _ in range(reps)]}
        print(json.dumps(out), flush=True)
        return
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        print(json.dumps({"pp": [pp / test_prompt(pp)], "tg": [tg / test_gen(tg)]}), flush=True)


if __name__ == "__main__":
    main()
