"""Score a model on a text by llama-perplexity's method, in a job process (core/quant/quality.py has the maths).

Per chunk of ``ctx`` tokens: the KV cache is cleared, the chunk's first token is replaced by BOS when the
model adds one, the whole chunk is decoded in one batch with logits requested only for the second half
(as llama-perplexity does since it stopped computing the unused first half), and the positions
``ctx/2 … ctx−2`` are scored against the next token.

With a reference model, its rows come from the reference cache (core/quant/reference_cache.py) or are
computed first, in this same process, and cached; then the model itself is scored against them. Both
models must tokenize the text identically (the same vocabulary): a reference from another family is
refused with a sentence rather than compared against the wrong words.

The parent side (``QualityJob``) is in quality_job.py, so that starting a run never imports llama_cpp into the
GUI process.

Decoding goes through llama.cpp's batch API directly (``llama_decode``), not ``Llama.eval``: the binding's
eval would request logits for every position and copy them into a Python-side score array, work that
llama-perplexity does not do and that would make the evaluation slower than the native tool.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from sizewise.core.quant.quality import (
    ChunkPlan,
    QualityTally,
    ReferenceRows,
    log_softmax_into,
    plan_chunks,
)
from sizewise.core.quant.reference_cache import ReferenceCache, ReferenceKey, tokens_digest
from sizewise.engine.quant.job import Emit, JobError

_quiet_log: Any = None
BLOCK_BYTES = 64 << 20  # the log-softmax buffers' size, each (see _Scorer.block_rows)


class _Scorer:
    """One loaded model and a batch sized for one chunk."""

    def __init__(self, llama_cpp: Any, path: str, ctx: int, threads: int) -> None:
        self.lc = llama_cpp
        kwargs: dict[str, Any] = {
            "model_path": path,
            "n_ctx": ctx,
            "n_batch": ctx,
            "n_ubatch": min(ctx, 512),
            "n_gpu_layers": 0,
            # llama-perplexity's default (-fa auto) turns flash attention on wherever the backend has it, CPU
            # included; so does this, so the figures and the speed compare with the native tool's.
            "flash_attn": True,
            "verbose": False,
        }
        if threads > 0:
            kwargs["n_threads"] = threads
            kwargs["n_threads_batch"] = threads
        try:
            self.llm = llama_cpp.Llama(**kwargs)
        except Exception as exc:
            raise JobError(f"{Path(path).name} could not be loaded: {exc}") from exc
        self.ctx_ptr = self.llm._ctx.ctx
        vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(vocab))
        self.batch = llama_cpp.llama_batch_init(ctx, 0, 1)
        self.decode_s = 0.0  # inside llama_decode
        self.eval_s = 0.0  # the whole scoring loop: decode, log-softmax and tallies (what a person waits for)
        # Log-softmax in as many threads as decoding uses, on row slices of buffers kept across chunks (as
        # llama-perplexity spreads its log-softmax over its threads).
        self.workers = max(1, min(threads or os.cpu_count() or 1, 8))
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="log-softmax")
        # Rows per log-softmax step: the whole half-chunk where it is small, else ~64 MiB a buffer, so a large
        # vocabulary at a long context does not double the logits' memory (Gemma 3: 262k tokens × 2048 rows
        # would be 2 GiB more). The buffers are touched here, at load, not in the first timed chunk.
        self.block_rows = max(self.workers, min(ctx - ctx // 2, BLOCK_BYTES // (4 * self.n_vocab)))
        self.out = np.empty((self.block_rows, self.n_vocab), np.float32)
        self.tmp = np.empty((self.block_rows, self.n_vocab), np.float32)
        self.out.fill(0.0)  # written, so their pages are mapped now (np.zeros would leave that to first use)
        self.tmp.fill(0.0)
        self._warm_up()

    def _warm_up(self) -> None:
        """One token decoded and forgotten before any timing, as llama.cpp's tools do after loading: the first
        decode pays for page faults on the mapped weights and for setting up the compute graph, which is load
        cost, not scoring."""
        lc, b = self.lc, self.batch
        b.token[0] = self.bos if self.bos >= 0 else 0  # a model without BOS: any token warms up
        b.pos[0] = 0
        b.n_seq_id[0] = 1
        b.seq_id[0][0] = 0
        b.logits[0] = 1
        b.n_tokens = 1
        rc = lc.llama_decode(self.ctx_ptr, b)
        lc.llama_synchronize(self.ctx_ptr)
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx_ptr), True)
        if rc != 0:
            raise JobError(f"llama.cpp could not evaluate a first token (llama_decode returned {rc}).")

    def tokenize(self, text: str) -> np.ndarray:
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        return np.asarray(ids, dtype=np.int32)

    def chunk_logits(self, tokens: np.ndarray, plan: ChunkPlan) -> np.ndarray:
        """The scored positions' logits for one chunk: a view of llama.cpp's buffer, valid until the next decode."""
        lc, b, n = self.lc, self.batch, plan.ctx
        first = plan.first_scored
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx_ptr), True)
        for i in range(n):
            b.token[i] = self.bos if (i == 0 and self.add_bos) else int(tokens[i])
            b.pos[i] = i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if i >= first else 0
        b.n_tokens = n
        t0 = time.perf_counter()
        rc = lc.llama_decode(self.ctx_ptr, b)
        lc.llama_synchronize(self.ctx_ptr)
        self.decode_s += time.perf_counter() - t0
        if rc != 0:
            raise JobError(f"llama.cpp could not evaluate the text (llama_decode returned {rc}).")
        n_out = n - first
        ptr = lc.llama_get_logits(self.ctx_ptr)
        logits = np.ctypeslib.as_array(ptr, shape=(n_out * self.n_vocab,)).reshape(n_out, self.n_vocab)
        return logits[: plan.scored_per_chunk]

    def log_softmax(self, x: np.ndarray) -> np.ndarray:
        """Log-probabilities of ``x``'s rows (at most ``block_rows``), spread over the workers, in the kept
        buffer: valid until the next call."""
        out, tmp = self.out[: len(x)], self.tmp[: len(x)]
        step = -(-len(x) // self.workers)
        slices = [slice(lo, lo + step) for lo in range(0, len(x), step)]
        for f in [self.pool.submit(log_softmax_into, x[s], out[s], tmp[s]) for s in slices]:
            f.result()
        return out

    def close(self) -> None:
        self.pool.shutdown()
        self.lc.llama_batch_free(self.batch)
        self.llm.close()


def _score(
    scorer: _Scorer,
    tokens: np.ndarray,
    plan: ChunkPlan,
    emit: Emit,
    phase: str,
    *,
    reference: ReferenceRows | None = None,
    keep_k: int = 0,
) -> tuple[QualityTally, ReferenceRows | None]:
    tally = QualityTally()
    kept: list[ReferenceRows] = []
    per = plan.scored_per_chunk
    t0 = time.perf_counter()
    for c in range(plan.chunks):
        start = c * plan.ctx
        chunk = tokens[start : start + plan.ctx]
        targets = chunk[plan.first_scored + 1 : plan.first_scored + 1 + per].astype(np.int32)
        logits = scorer.chunk_logits(chunk, plan)
        for lo in range(0, per, scorer.block_rows):
            hi = min(per, lo + scorer.block_rows)
            logp = scorer.log_softmax(logits[lo:hi])
            ref = reference.rows(c * per + lo, c * per + hi) if reference is not None else None
            tally.add(logp, targets[lo:hi], ref)
            if keep_k:
                kept.append(ReferenceRows.from_logp(logp, targets[lo:hi], keep_k))
        done = (c + 1) * plan.ctx
        scorer.eval_s = time.perf_counter() - t0
        emit(
            {
                "type": "progress",
                "phase": phase,
                "chunk": c + 1,
                "chunks": plan.chunks,
                "ppl": tally.result().ppl,
                "tokens_per_s": done / scorer.eval_s if scorer.eval_s > 0 else 0.0,
            }
        )
    rows = None
    if keep_k:
        rows = ReferenceRows.concat(kept)
    return tally, rows


def evaluate_in_child(payload: dict[str, Any], emit: Emit) -> dict[str, Any]:
    import llama_cpp

    global _quiet_log
    _quiet_log = llama_cpp.llama_log_callback(lambda *_: None)  # kept referenced: llama.cpp calls it later
    llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))
    text: str = payload["text"]
    ctx, chunks, threads, k = int(payload["ctx"]), payload.get("chunks"), int(payload.get("threads") or 0), int(
        payload["k"]
    )
    text_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    reference_rows: ReferenceRows | None = None
    ref_summary: dict[str, Any] | None = None
    ref_tokens_sha = ""
    ref_path = payload.get("reference")
    if ref_path:
        cache = ReferenceCache(Path(payload["cache_dir"]))
        key = ReferenceKey.for_file(ref_path, text_sha256=text_sha, ctx=ctx, chunks=chunks or -1, k=k)
        cached = cache.load(key)
        if cached is not None:
            reference_rows, ref_tokens_sha = cached.rows, cached.tokens_sha256
            ref_summary = {"path": str(ref_path), "cached": True}
        else:
            emit({"type": "progress", "phase": "loading_reference", "chunk": 0, "chunks": 0})
            scorer = _Scorer(llama_cpp, ref_path, ctx, threads)
            try:
                tokens = scorer.tokenize(text)
                plan = _plan(len(tokens), ctx, chunks)
                tally, reference_rows = _score(scorer, tokens, plan, emit, "reference", keep_k=k)
                ref_tokens_sha = tokens_digest(tokens[: plan.chunks * plan.ctx])
                ref_figures = tally.result()
                ref_summary = {
                    "path": str(ref_path),
                    "cached": False,
                    "ppl": ref_figures.ppl,
                    "tokens_per_s": plan.chunks * plan.ctx / scorer.eval_s,
                }
            finally:
                scorer.close()
            assert reference_rows is not None
            cache.store(key, reference_rows, ref_tokens_sha)
    emit({"type": "progress", "phase": "loading", "chunk": 0, "chunks": 0})
    scorer = _Scorer(llama_cpp, payload["model"], ctx, threads)
    try:
        tokens = scorer.tokenize(text)
        plan = _plan(len(tokens), ctx, chunks)
        same_tokens = tokens_digest(tokens[: plan.chunks * plan.ctx]) == ref_tokens_sha
        if reference_rows is not None and (not same_tokens or len(reference_rows) != plan.tokens_scored):
            raise JobError(
                "The reference model reads the text as different tokens (another vocabulary): compare "
                "versions of the same model."
            )
        tally, _ = _score(scorer, tokens, plan, emit, "model", reference=reference_rows)
        decode_s, eval_s = scorer.decode_s, scorer.eval_s
    finally:
        scorer.close()
    figures = tally.result()
    return {
        "figures": figures.to_dict(),
        "ctx": plan.ctx,
        "chunks": plan.chunks,
        "text_tokens": len(tokens),
        "text_sha256": text_sha,
        "eval_tokens_per_s": plan.chunks * plan.ctx / eval_s if eval_s > 0 else 0.0,
        "eval_s": eval_s,
        "decode_s": decode_s,
        "threads": threads or os.cpu_count(),
        "reference": ref_summary,
    }


def _plan(n_tokens: int, ctx: int, chunks: int | None) -> ChunkPlan:
    try:
        return plan_chunks(n_tokens, ctx, chunks)
    except ValueError as exc:
        raise JobError(str(exc)) from exc
