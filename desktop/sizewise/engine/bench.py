"""The llama-bench loop, run inside the engine worker on the worker's own ``Llama``.

Why inside the worker: the figures must describe the same process, context and threads that chat
uses, with nothing between the timer and ``llama_decode`` — no pipe, no Python generator, no
sampler. Why the llama-bench method (llama.cpp's ``tools/llama-bench``): so a Sizewise figure can be
put next to a llama-bench figure from anywhere and mean the same thing.

* **pp N** — a prompt of N tokens decoded in ``n_batch`` chunks (``llama_batch_get_one``) into an
  empty KV cache, then ``llama_synchronize``; tokens/s = N / elapsed.
* **tg N** — N tokens decoded one at a time into an empty KV cache; tokens/s = N / elapsed. Like
  llama-bench, no sampling happens: the next token is taken from the prepared token list, so the
  timed region holds nothing but decoding.
* **depth d** (llama-bench's ``-d``) — before each pp or tg run, ``d`` tokens are decoded into the
  cleared cache untimed, so the run measures speed with a KV cache already holding ``d`` tokens (how
  speed falls as a conversation grows; speed calibration measures it). Default 0. Like llama-bench, which
  restores the state saved after its first depth fill, the depth is filled once per benchmark: every run
  decodes the prepared tokens in order, so the cache always holds a prefix of them, and a later run trims it
  back to its depth (``llama_memory_seq_rm``) or decodes only the missing tokens. A 1.5B model at depth 3584
  on two cores took ~100 s per fill.
* **timed fill** — the depth's first fill, from a cleared cache, timed and reported as ``fill``: it decodes the
  same batches a ``pp d`` run from an empty cache would, so one request measures the prompt from an empty cache
  and the prompt after it (calibration's rounds, engine/speed/measure.py) without decoding the fill twice.
* **tg depth** — where generation starts, when it differs from ``depth``: ``tg_depth = depth + pp`` times
  the tokens generated right after the prompt (a conversation at that context). Default: ``depth``.
* **warm-up** — one full pp run and one single-token tg step before the measured runs (llama-bench's
  warm-up), so first-touch page faults and lazy allocations are not timed.
* **repetitions** — each one starts from a cleared cache (``Llama.reset()`` plus
  ``llama_memory_clear``); the result is the mean and sample standard deviation of the
  per-repetition tokens/s (0 with a single repetition, as llama-bench prints).
* **TTFT** — a real chat turn through ``create_chat_completion`` (template, tokenizer, sampler and
  all: what a person waits for), from a cleared cache, timed to the first piece of text.

Tokenization happens before any timer starts. Progress goes to the parent after each run, never
inside one. Cancelling: the worker's listener thread sets the stop event and the abort flag on a
``stop`` for this benchmark's id; the loop checks the event between decode calls, and the abort
flag makes a long ``llama_decode`` return early (code 2).
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sizewise.engine.backend_devices import device_memory
from sizewise.engine.cold_cache import MAX_EVICT_BYTES, CacheEvictor, shared_evictor
from sizewise.engine.process_memory import process_memory
from sizewise.engine.protocol import Message

# A plain paragraph, tiled to any length: realistic token ids for the prompt and generation runs.
BENCH_TEXT = (
    "The lighthouse stood at the end of a long stone pier, and every evening the keeper climbed its "
    "spiral stairs to light the lamp. Ships passing in the night counted its flashes to know where they "
    "were, and fishermen said that the light had never once failed in forty years of storms. "
)
TTFT_PROMPT = "In two sentences, why is the sky blue?"

PP_DEFAULT = 512
TG_DEFAULT = 128
REPETITIONS_DEFAULT = 5


class BenchCancelled(Exception):
    """The benchmark was stopped (stop request, shutdown, or llama.cpp's abort callback)."""


class BenchFailed(Exception):
    """A sentence for the user: why the benchmark could not run."""


class _Flag(Protocol):
    def set(self) -> None: ...

    def clear(self) -> None: ...


class _Event(Protocol):
    def is_set(self) -> bool: ...

    def clear(self) -> None: ...


class BenchHost(Protocol):
    """What the benchmark needs from the worker (engine/worker.py's ``Worker``); only ``active_id`` is set."""

    active_id: int | None

    @property
    def llm(self) -> Any: ...

    @property
    def llama_cpp(self) -> Any: ...

    @property
    def chat_mode(self) -> str: ...

    @property
    def stop_event(self) -> _Event: ...

    @property
    def abort(self) -> _Flag: ...

    def send(self, msg: Message) -> None: ...


@dataclass(frozen=True)
class BenchRequest:
    """The ``bench`` command's parameters (see engine/protocol.py)."""

    pp: int = PP_DEFAULT
    tg: int = TG_DEFAULT
    repetitions: int = REPETITIONS_DEFAULT
    warmup: bool = True
    ttft: bool = True
    ttft_prompt: str = TTFT_PROMPT
    depth: int = 0
    tg_depth: int | None = None  # the depth generation starts at; None: ``depth``
    # Generation's repetitions where they differ from the prompt's: a few 16-token runs cost little beside one
    # 512-token prompt, so calibration repeats the cheap one more (engine/speed/measure.py). None: ``repetitions``.
    tg_repetitions: int | None = None
    # Time the depth's first fill from a cleared cache and report it as ``fill``, a prompt of ``depth`` tokens from
    # an empty cache: calibration would otherwise decode those tokens twice, once as a timed prompt and once as
    # the untimed fill (half of a round's tokens).
    time_fill: bool = False
    # Bytes read between generated tokens, untimed, to empty the CPU's caches before each (engine/cold_cache.py):
    # calibration's small models then read their weights from memory as the large models it predicts do. 0: none.
    evict_bytes: int = 0

    @property
    def gen_depth(self) -> int:
        return self.depth if self.tg_depth is None else self.tg_depth

    @property
    def tg_reps(self) -> int:
        return self.repetitions if self.tg_repetitions is None else self.tg_repetitions

    @classmethod
    def from_message(cls, msg: Message) -> BenchRequest:
        return cls(
            pp=int(msg.get("pp", PP_DEFAULT)),
            tg=int(msg.get("tg", TG_DEFAULT)),
            repetitions=int(msg.get("repetitions", REPETITIONS_DEFAULT)),
            warmup=bool(msg.get("warmup", True)),
            ttft=bool(msg.get("ttft", True)),
            ttft_prompt=str(msg.get("ttft_prompt") or TTFT_PROMPT),
            depth=int(msg.get("depth", 0)),
            tg_depth=None if msg.get("tg_depth") is None else int(msg["tg_depth"]),
            tg_repetitions=None if msg.get("tg_repetitions") is None else int(msg["tg_repetitions"]),
            time_fill=bool(msg.get("time_fill", False)),
            evict_bytes=int(msg.get("evict_bytes") or 0),
        )

    def to_message(self, bench_id: int) -> Message:
        return {
            "type": "bench",
            "id": bench_id,
            "pp": self.pp,
            "tg": self.tg,
            "repetitions": self.repetitions,
            "warmup": self.warmup,
            "ttft": self.ttft,
            "ttft_prompt": self.ttft_prompt,
            "depth": self.depth,
            "tg_depth": self.tg_depth,
            "tg_repetitions": self.tg_repetitions,
            "time_fill": self.time_fill,
            "evict_bytes": self.evict_bytes,
        }

    def problem(self, n_ctx: int | None = None) -> str | None:
        """Why these parameters cannot run (one sentence), or None."""
        if self.pp < 0 or self.tg < 0 or self.depth < 0 or self.gen_depth < 0:
            return "Prompt and generation lengths and the depth cannot be negative."
        if self.pp == 0 and self.tg == 0 and not self.ttft:
            return "Nothing to measure: prompt and generation lengths are both 0."
        if self.time_fill and self.depth == 0:
            return "A timed fill needs a depth to fill."
        if min(self.repetitions, self.tg_reps) < 1:
            return f"Repetitions must be at least 1, not {min(self.repetitions, self.tg_reps)}."
        if not 0 <= self.evict_bytes <= MAX_EVICT_BYTES:
            return f"The cache-emptying read must be 0 to {MAX_EVICT_BYTES >> 20} MiB, not {self.evict_bytes} bytes."
        needed = max(self.depth + self.pp, self.gen_depth + self.tg)
        if n_ctx is not None and needed > n_ctx:
            return (
                f"The benchmark needs {needed} tokens of context but the model was loaded "
                f"with {n_ctx}; use a larger context or a shorter prompt/generation."
            )
        return None

    def steps(self) -> int:
        """Runs in total, for a progress bar: warm-ups, measured repetitions and TTFT turns."""
        runs = (self.pp > 0) + (self.tg > 0)
        measured = (self.pp > 0) * self.repetitions + (self.tg > 0) * self.tg_reps
        fill = int(self.time_fill)
        return (runs if self.warmup else 0) + fill + measured + (self.repetitions if self.ttft else 0)


def summarize_tps(n_tokens: int, seconds: list[float], cpu_seconds: list[float] | None = None) -> dict[str, Any]:
    """llama-bench's figures: mean and sample stddev of per-repetition tokens/s (not tokens / mean time), and each
    repetition's CPU time on the timing thread (see _Runner.last_cpu_s)."""
    tps = [n_tokens / s for s in seconds if s > 0]
    return {
        "n": n_tokens,
        "repetitions": len(tps),
        "mean_tps": statistics.fmean(tps) if tps else 0.0,
        "sd_tps": statistics.stdev(tps) if len(tps) > 1 else 0.0,
        "samples_tps": tps,
        "samples_s": list(seconds),
        "cpu_samples_s": list(cpu_seconds or ()),
    }


def per_token(seconds: list[float], cpu_seconds: list[float]) -> dict[str, Any]:
    """Generation's seconds for each token of every repetition, in order, wall and CPU (see _Runner.last_token_s)."""
    return {"token_samples_s": list(seconds), "token_cpu_samples_s": list(cpu_seconds)}


def summarize_ms(samples_ms: list[float]) -> dict[str, Any]:
    return {
        "mean_ms": statistics.fmean(samples_ms) if samples_ms else None,
        "sd_ms": statistics.stdev(samples_ms) if len(samples_ms) > 1 else 0.0,
        "samples_ms": list(samples_ms),
    }


class _Runner:
    def __init__(self, host: BenchHost, req: BenchRequest, bench_id: int) -> None:
        self.host = host
        self.req = req
        self.id = bench_id
        self.lc = host.llama_cpp
        self.llm = host.llm
        self.ctx = self.llm._ctx.ctx
        self.memory = self.lc.llama_get_memory(self.ctx)
        self.n_batch = int(self.llm.n_batch)
        self.step = 0
        self.total_steps = req.steps()
        self.depth = req.depth
        self.cached = 0  # the cache holds exactly ``self.tokens[:self.cached]`` (see _to_depth)
        n_array = max(req.depth + max(req.pp, 1), req.gen_depth)
        self.tokens = self._bench_tokens(max(n_array, req.gen_depth + req.tg + 1, 2))
        # Kept alive for the whole run: llama_batch_get_one points into these arrays.
        self._pp_array = (self.lc.llama_token * n_array)(*self.tokens[:n_array])
        self._one = (self.lc.llama_token * 1)()
        # CPU seconds the calling thread spent in the last timed run. With one thread llama.cpp computes on
        # this thread alone, so this is the run's wall time less the time other programs held the core: a
        # figure the other work on a shared machine cannot slow (2 CPU hogs and a memory-bound one on both
        # cores doubled a 0.5B model's token time here, 24 -> 52 ms, while this stayed 24-26 ms). With more
        # threads it counts only this thread's share, so the calibration reads it only at one thread.
        self.last_cpu_s = 0.0
        # The last generation run's seconds for each of its tokens, wall and CPU: with the caches emptied before
        # each token every token is a measurement on its own, and their median steps over a disturbed few without
        # repeating the run (calibration, engine/speed/measure.py).
        self.last_token_s: list[float] = []
        self.last_token_cpu_s: list[float] = []
        self.evictor: CacheEvictor | None = (
            shared_evictor(req.evict_bytes) if req.evict_bytes > 0 and req.tg > 0 else None
        )

    # -- helpers ----------------------------------------------------------------------------------
    def _bench_tokens(self, n: int) -> list[int]:
        """``n`` real token ids: BOS (when the model wants one) then the paragraph, tiled."""
        body = self.llm.tokenize(BENCH_TEXT.encode("utf-8"), add_bos=False, special=False)
        head = self.llm.tokenize(b"", add_bos=True, special=False)  # [BOS] or []
        out = list(head)
        while len(out) < n:
            out.extend(body)
        return [int(t) for t in out[:n]]

    def clear(self) -> None:
        """Empty KV cache and a Llama that knows it (no prompt-prefix reuse afterwards)."""
        self.llm.reset()
        if self.memory is not None:
            self.lc.llama_memory_clear(self.memory, True)
        self.cached = 0

    def _check_stop(self) -> None:
        if self.host.stop_event.is_set():
            raise BenchCancelled

    def _decoded(self, rc: int) -> None:
        if rc == 0:
            return
        if rc == 2 or self.host.stop_event.is_set():
            raise BenchCancelled
        raise BenchFailed(f"llama_decode returned {rc} during the benchmark.")

    def _progress(self, phase: str, rep: int, value: float | None, unit: str) -> None:
        self.step += 1
        self.host.send(
            {
                "type": "bench_progress",
                "id": self.id,
                "phase": phase,
                "rep": rep,
                "repetitions": self.req.tg_reps if phase == "tg" else 1 if phase == "fill" else self.req.repetitions,
                "value": value,
                "unit": unit,
                "step": self.step,
                "steps": self.total_steps,
            }
        )

    # -- the timed runs -----------------------------------------------------------------------------
    def _batches(self, first: int, n: int) -> list[Any]:
        """Batches of at most n_batch tokens over the prepared tokens ``first`` … ``first + n - 1``."""
        lc = self.lc
        size = ctypes.sizeof(lc.llama_token)
        base = ctypes.addressof(self._pp_array) + first * size
        batches = []
        for start in range(0, n, self.n_batch):
            count = min(self.n_batch, n - start)
            ptr = ctypes.cast(base + start * size, ctypes.POINTER(lc.llama_token))
            batches.append(lc.llama_batch_get_one(ptr, count))
        return batches

    def _to_depth(self, depth: int) -> None:
        """A cache holding the first ``depth`` prepared tokens (untimed): trimmed from a longer prefix, else
        extended; cleared when ``depth`` is 0 or the cache cannot drop a suffix (e.g. sliding-window layers)."""
        if depth == 0 or self.memory is None:
            self.clear()
        elif self.cached >= depth:
            if not self.lc.llama_memory_seq_rm(self.memory, -1, depth, -1):
                self.clear()
            else:
                self.cached = depth
        self._check_stop()
        for batch in self._batches(self.cached, depth - self.cached):
            self._decoded(self.lc.llama_decode(self.ctx, batch))
            self._check_stop()
        self.cached = depth

    def run_pp(self, n: int, depth: int | None = None) -> float:
        """Seconds to decode ``n`` bench tokens, in n_batch chunks, into a cache holding ``depth`` tokens (the
        request's by default)."""
        lc, ctx = self.lc, self.ctx
        depth = self.depth if depth is None else depth
        batches = self._batches(depth, n)
        self._to_depth(depth)
        t0, c0 = time.perf_counter(), time.thread_time()
        for batch in batches:
            self._decoded(lc.llama_decode(ctx, batch))
            self.cached += batch.n_tokens
            self._check_stop()
        lc.llama_synchronize(ctx)
        self.last_cpu_s = time.thread_time() - c0
        return time.perf_counter() - t0

    def run_tg(self, n: int) -> float:
        """Seconds to decode ``n`` tokens one at a time into a cache holding ``depth`` tokens; with an evictor,
        the CPU's caches are emptied before each token, outside the time."""
        lc, ctx, one, tokens, evictor = self.lc, self.ctx, self._one, self.tokens, self.evictor
        batch = lc.llama_batch_get_one(one, 1)
        stop = self.host.stop_event
        start = self.req.gen_depth
        self._to_depth(start)
        walls: list[float] = []
        cpus: list[float] = []
        for i in range(n):
            one[0] = tokens[start + i]
            if evictor is not None:
                evictor.evict(self.req.evict_bytes)
            t0, c0 = time.perf_counter(), time.thread_time()
            rc = lc.llama_decode(ctx, batch)
            if rc != 0 or stop.is_set():
                self._decoded(rc)
                raise BenchCancelled
            self.cached += 1
            lc.llama_synchronize(ctx)
            cpus.append(time.thread_time() - c0)
            walls.append(time.perf_counter() - t0)
        self.last_token_s, self.last_token_cpu_s = walls, cpus
        self.last_cpu_s = sum(cpus)
        return sum(walls)

    def run_ttft(self) -> tuple[float, int]:
        """(ms to the first piece of text of a real chat turn from an empty cache, prompt tokens)."""
        self.clear()
        self._check_stop()
        kwargs: dict[str, Any] = {"max_tokens": 8, "temperature": 0.0, "seed": 1, "stream": True}
        t0 = time.perf_counter()
        first: float | None = None
        self.lc.llama_perf_context_reset(self.ctx)
        try:
            if self.host.chat_mode == "chat":
                stream: Iterator[Any] = self.llm.create_chat_completion(
                    messages=[{"role": "user", "content": self.req.ttft_prompt}], **kwargs
                )
            else:
                stream = self.llm.create_completion(prompt=self.req.ttft_prompt, **kwargs)
            for chunk in stream:
                self._check_stop()
                choice = chunk["choices"][0]
                text = choice["delta"].get("content") if "delta" in choice else choice.get("text")
                if text or choice.get("finish_reason"):
                    first = time.perf_counter()
                    break
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        except RuntimeError as exc:  # llama_decode aborted by a stop, or a real failure
            if self.host.stop_event.is_set():
                raise BenchCancelled from exc
            raise BenchFailed(f"The chat turn failed: {exc}.") from exc
        end = first if first is not None else time.perf_counter()
        prompt_tokens = int(self.lc.llama_perf_context(self.ctx).n_p_eval)
        return (end - t0) * 1000.0, prompt_tokens

    def run(self) -> Message:
        req = self.req
        t_start = time.perf_counter()
        if req.warmup:
            if req.pp > 0:
                secs = self.run_pp(req.pp)
                self._progress("warmup_pp", 0, req.pp / secs, "tokens/s")
            if req.tg > 0:
                secs = self.run_tg(1)
                self._progress("warmup_tg", 0, 1 / secs, "tokens/s")
        fill: dict[str, Any] | None = None
        if req.time_fill:  # from a cleared cache; the runs below start from the filled one
            secs = self.run_pp(req.depth, depth=0)
            fill = summarize_tps(req.depth, [secs], [self.last_cpu_s])
            self._progress("fill", 1, req.depth / secs, "tokens/s")
        pp_s: list[float] = []
        tg_s: list[float] = []
        pp_cpu: list[float] = []
        tg_cpu: list[float] = []
        tg_tokens: list[float] = []
        tg_tokens_cpu: list[float] = []
        if req.pp > 0:
            for rep in range(1, req.repetitions + 1):
                pp_s.append(self.run_pp(req.pp))
                pp_cpu.append(self.last_cpu_s)
                self._progress("pp", rep, req.pp / pp_s[-1], "tokens/s")
        if req.tg > 0:
            for rep in range(1, req.tg_reps + 1):
                tg_s.append(self.run_tg(req.tg))
                tg_cpu.append(self.last_cpu_s)
                tg_tokens += self.last_token_s
                tg_tokens_cpu += self.last_token_cpu_s
                self._progress("tg", rep, req.tg / tg_s[-1], "tokens/s")
        ttft_ms: list[float] = []
        prompt_tokens = 0
        if req.ttft:
            for rep in range(1, req.repetitions + 1):
                ms, prompt_tokens = self.run_ttft()
                ttft_ms.append(ms)
                self._progress("ttft", rep, ms, "ms")
        params = self.llm.context_params
        ttft = summarize_ms(ttft_ms) if req.ttft else None
        if ttft is not None:
            ttft.update(prompt_tokens=prompt_tokens, mode=self.host.chat_mode, prompt=req.ttft_prompt)
        return {
            "pp": summarize_tps(req.pp, pp_s, pp_cpu) if req.pp > 0 else None,
            "tg": summarize_tps(req.tg, tg_s, tg_cpu) | per_token(tg_tokens, tg_tokens_cpu) if req.tg > 0 else None,
            "fill": fill,
            "ttft": ttft,
            "ttft_ms": ttft["mean_ms"] if ttft is not None else None,
            "warmup": req.warmup,
            "depth": req.depth,
            "tg_depth": req.gen_depth,
            "n_ctx": int(self.llm.n_ctx()),
            "n_batch": int(params.n_batch),
            "n_ubatch": int(params.n_ubatch),
            "n_threads": int(params.n_threads),
            "n_threads_batch": int(params.n_threads_batch),
            "wall_s": time.perf_counter() - t_start,
            "devices": device_memory(self.host.llama_cpp),  # device memory with the model still loaded
        }


def run_bench(host: BenchHost, msg: Message) -> None:
    """The worker's ``bench`` command: ``bench_progress`` events, then ``bench_done`` (or ``failed``)."""
    bench_id = int(msg["id"])
    if host.llm is None:
        host.send({"type": "failed", "id": bench_id, "message": "No model is loaded."})
        return
    req = BenchRequest.from_message(msg)
    problem = req.problem(int(host.llm.n_ctx()))
    if problem is not None:
        host.send({"type": "failed", "id": bench_id, "message": problem})
        return
    host.stop_event.clear()
    host.abort.clear()
    host.active_id = bench_id
    runner: _Runner | None = None
    result: Message | None = None
    error: str | None = None
    try:
        runner = _Runner(host, req, bench_id)
        result = runner.run()
    except BenchCancelled:
        result = None
    except BenchFailed as exc:
        error = str(exc)
    finally:
        host.active_id = None
        host.abort.clear()
        if runner is not None:
            runner.clear()  # leave an empty cache: the next chat turn must not reuse bench tokens
    if error is not None:
        host.send({"type": "failed", "id": bench_id, "message": error})
        return
    rss, peak = process_memory()
    done: Message = {"type": "bench_done", "id": bench_id, "cancelled": result is None}
    done.update(result or {})
    done.update(rss_bytes=rss, peak_rss_bytes=peak)
    host.send(done)
