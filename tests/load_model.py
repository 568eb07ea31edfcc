"""Child script: llama.cpp loads one GGUF (a synthetic one of tests/quant_models.py, dummy vocabulary) and decodes a
few token ids, to show that it accepts the file's tensor list and can run its graph. Prints one JSON object
(n_tensors as llama.cpp counts the model's parameters, the logits' count and whether they are all finite).

Run as ``python tests/load_model.py MODEL``: in a subprocess, since a pytest process must never import llama_cpp.
"""

from __future__ import annotations

import json
import math
import sys

import llama_cpp


def main(path: str) -> dict[str, object]:
    llama_cpp.llama_backend_init()
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = 0
    model = llama_cpp.llama_model_load_from_file(path.encode(), mparams)
    if not model:
        raise SystemExit(f"llama.cpp could not load {path}")
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = 64
    cparams.n_batch = 64
    cparams.n_threads = cparams.n_threads_batch = 2
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    if not ctx:
        raise SystemExit("llama.cpp could not make a context")
    tokens = [1, 2, 3, 4, 5, 6, 7, 8]
    arr = (llama_cpp.llama_token * len(tokens))(*tokens)
    rc = llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(arr, len(tokens)))
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    logits = llama_cpp.llama_get_logits_ith(ctx, -1)
    values = [logits[i] for i in range(n_vocab)]
    out = {
        "decode_rc": int(rc),
        "n_params": int(llama_cpp.llama_model_n_params(model)),
        "n_vocab": int(n_vocab),
        "finite": all(math.isfinite(v) for v in values),
    }
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
