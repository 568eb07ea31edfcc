"""The message protocol between the app and an engine worker process.

Every message is a plain ``dict`` with a ``"type"`` key, sent over a ``multiprocessing``
connection. Plain dicts (not pickled classes) keep the protocol versionable and readable in logs.

Commands, parent → worker
-------------------------
``load``      ``{path, load: LoadParams.to_dict()}`` — load one model (a worker holds at most one).
``generate``  ``{id, mode: "chat"|"completion", messages: [{role, content}], prompt: str,
              sampling: SamplingParams.to_dict()}`` — stream a reply.
``stop``      ``{id}`` — stop generation ``id``; handled by the worker's listener thread at once,
              so it also interrupts prompt processing (llama.cpp's abort callback). Requests queue (one
              runs at a time); a stop for one still waiting is remembered and that request never starts:
              it is answered ``done`` with ``finish_reason`` ``cancelled`` and no tokens when its turn
              comes (a ``bench``: ``bench_done`` cancelled). A stop for any other id is ignored.
``unload``    free the model, keep the process.
``stats``     ask for memory figures now.
``bench``     ``{id, pp, tg, repetitions, warmup, ttft, ttft_prompt, depth, tg_depth, tg_repetitions,
              time_fill, evict_bytes}`` — the llama-bench loop on the loaded model (engine/bench.py,
              ``BenchRequest.to_message``); queued like ``generate``, and a ``stop`` with this ``id`` cancels
              it (also mid-decode). Sent with ``EngineClient.send_raw``.
``shutdown``  exit cleanly.
``tokenize``  ``{id, texts: [str]}`` — token counts with the loaded model's tokenizer (no BOS added,
              special tokens not parsed); queued behind a running reply. Sent with
              ``EngineClient.send_raw``. Added for the context meter (core/chat/context_window.py).
``threads``   ``{n}`` — CPU threads for the loaded model from now on (llama_set_n_threads); no answer.
              Sent with ``EngineClient.send_raw`` by the compare view, which splits the cores between
              engines that generate at the same time.

Events, worker → parent
-----------------------
``ready``       ``{pid, llama_cpp_version, gpu_offload, system_info}`` after start-up.
``loaded``      ``{path, load_s, n_ctx, n_ctx_train, chat_mode, buffers: [{device, component, bytes}],
                rss_bytes, peak_rss_bytes}``.
``load_failed`` ``{message}`` — one sentence, taken from llama.cpp's own log where it said why.
``started``     ``{id}`` — generation or benchmark ``id`` left the queue and runs now (the client's stop
                watchdog arms only for the request that runs).
``token``       ``{id, text, n}`` — streamed text: ``n`` tokens' pieces, batched within 25 ms (the first
                piece of a reply is sent at once).
``done``        ``{id, stats: GenerationStats.to_dict()}``; ``finish_reason`` is stop|length|cancelled.
``failed``      ``{id, message}`` — the request failed; the model stays loaded.
``stats``       ``{rss_bytes, peak_rss_bytes}``.
``tokenized``   ``{id, counts: [int]}``, or ``{id, counts: None, message}`` when no model is loaded.
``unloaded``    ``{}``.
``fatal``       ``{message}`` — the worker itself crashed (an exception outside any request) and is exiting;
                the client keeps the message for the ``engine_stopped`` reason instead of passing it on.
``bench_progress`` ``{id, phase: warmup_pp|warmup_tg|fill|pp|tg|ttft, rep, repetitions, value, unit, step, steps}``
                after each run (never inside a timed one).
``bench_done``  ``{id, cancelled, pp: {n, repetitions, mean_tps, sd_tps, samples_tps, samples_s,
                cpu_samples_s} | None,
                tg: same + {token_samples_s, token_cpu_samples_s} (each token of every repetition) | None,
                fill: same as pp (the depth's timed fill: time_fill) | None,
                ttft: {mean_ms, sd_ms, samples_ms, prompt_tokens, mode, prompt} | None,
                ttft_ms, warmup, depth, n_ctx, n_batch, n_ubatch, n_threads, n_threads_batch, wall_s, rss_bytes,
                peak_rss_bytes}``; a cancelled run carries only ``{id, cancelled: true, rss_bytes,
                peak_rss_bytes}``. Bad parameters or no model answer ``failed`` ``{id, message}``.

Parent-side only (made by EngineClient, never sent by a worker)
----------------------------------------------------------------
``engine_stopped`` ``{reason, exitcode, generation}`` — the worker process ended without being asked to;
                   ``generation`` is the id of the reply it was writing, if any.
``engine_exited``  ``{exitcode}`` — the worker ended because the client closed it.
``stop_forced``    ``{id}`` — stop did not take effect in time, the worker was terminated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

STOP_GRACE_S = 0.15  # after this, a stop request terminates the worker (goal: stopped within 200 ms)

Message = dict[str, Any]


@dataclass(frozen=True)
class GenerationStats:
    """Per-reply figures; speeds are llama.cpp's own perf counters, not wall-clock guesses."""

    tokens: int
    ttft_ms: float
    prompt_tokens: int
    pp_tps: float
    tg_tps: float
    total_s: float
    finish_reason: str  # stop | length | cancelled
    peak_rss_bytes: int
    rss_bytes: int
    seed: int | None = None
    context_tokens: int = 0  # tokens in the KV cache when the reply ended (reused prefix + prompt + reply)

    @classmethod
    def cancelled(cls, rss_bytes: int, peak_rss_bytes: int, seed: int | None = None) -> GenerationStats:
        """A reply stopped before it started: no tokens, no timings, the last memory figures known."""
        return cls(
            tokens=0,
            ttft_ms=0.0,
            prompt_tokens=0,
            pp_tps=0.0,
            tg_tps=0.0,
            total_s=0.0,
            finish_reason="cancelled",
            peak_rss_bytes=peak_rss_bytes,
            rss_bytes=rss_bytes,
            seed=seed,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationStats:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
