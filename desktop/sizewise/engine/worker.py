"""The engine worker: one process that owns one ``llama_cpp.Llama``.

llama.cpp can abort the whole process on a bad file or a failed allocation instead of raising,
so it never runs inside the GUI process. ``llama_cpp`` is imported inside ``run_worker`` only:
the parent imports this module to name the process target, and must not load llama.cpp itself.

Threads: the main thread runs commands one at a time (the ``Llama`` has exactly one owner); a
listener thread reads the connection so that ``stop`` takes effect at once, even while the main
thread is inside a long ``llama_decode`` (prompt processing). It does so through llama.cpp's abort
callback, pointed at libc's ``strlen`` over a one-byte flag: the callback runs for every graph node,
and a C function costs nothing there, where a Python callback would slow generation measurably.

Several users can share one worker (the chat and writing help): their requests queue, and a ``stop``
names the request it is for. A stop for a request still waiting in the queue is remembered, and that
request never starts: it is answered at once when its turn comes (``done`` with ``finish_reason``
``cancelled`` and no tokens, or ``bench_done`` cancelled). A stop for a request that already ended,
or that this worker never received, changes nothing.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from sizewise.core.fit.llama_log import BufferLine, parse_buffer_line
from sizewise.core.sampling import default_threads
from sizewise.engine.backend_devices import device_memory, list_devices
from sizewise.engine.chat_template import TemplateProblem, guard_chat_templates
from sizewise.engine.process_memory import process_memory
from sizewise.engine.protocol import GenerationStats, Message

KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # ggml_type values
TOKEN_BATCH_S = 0.025
QUEUED_REQUESTS = ("generate", "bench")  # the commands a ``stop`` can cancel before they start


def _load_error_message(path: str, log_lines: collections.deque[str], exc: BaseException) -> str:
    """Turn llama.cpp's reason (from its log) into one sentence."""
    for line in reversed(log_lines):
        if "error loading model:" in line:
            reason = line.split("error loading model:", 1)[1].strip()
            reason = reason.removeprefix("error loading model architecture:").strip()
            return f"llama.cpp could not load {os.path.basename(path)}: {reason}."
    for line in reversed(log_lines):
        low = line.lower()
        if "failed" in low or "error" in low:
            return f"llama.cpp could not load {os.path.basename(path)}: {line.strip()}."
    return f"llama.cpp could not load {os.path.basename(path)}: {exc}."


class _AbortFlag:
    """A one-byte flag llama.cpp polls through strlen(): no GIL, no Python per graph node."""

    def __init__(self, llama_cpp: Any) -> None:
        self._buf = ctypes.create_string_buffer(2)
        # dlopen(NULL) on POSIX: the C library already loaded in this process. find_library("c") ran
        # `ldconfig -p` in a child process at every start, a fork that briefly looked like a second worker.
        libc = ctypes.CDLL("msvcrt") if sys.platform == "win32" else ctypes.CDLL(None)
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
        self.callback = llama_cpp.ggml_abort_callback(address)
        self.data = ctypes.cast(self._buf, ctypes.c_void_p)

    def set(self) -> None:
        self._buf[0] = b"\x01"

    def clear(self) -> None:
        self._buf[0] = b"\x00"


def _completion_kwargs(sampling: dict[str, Any], seed: int) -> dict[str, Any]:
    """llama-cpp-python's streaming arguments from the request's sampling settings."""
    return {
        "temperature": float(sampling.get("temperature", 0.7)),
        "top_p": float(sampling.get("top_p", 0.95)),
        "top_k": int(sampling.get("top_k", 40)),
        "min_p": float(sampling.get("min_p", 0.05)),
        "repeat_penalty": float(sampling.get("repeat_penalty", 1.1)),
        "max_tokens": int(sampling.get("max_tokens", 512)),
        "seed": seed,
        "stream": True,
    }


class _TokenBatch:
    """Streamed text sent in small batches: the first piece at once, then at most every TOKEN_BATCH_S.

    One message per token made the receiving process wake ~130 times a second; on a 2-core laptop
    each wake-up preempts one of llama.cpp's barrier-synchronised threads, and tokens/s as received
    fell to ~0.93 of raw llama-cpp-python. Batching within 25 ms is below what a reader notices and
    the GUI repaints no faster anyway. ``n`` tells receivers how many tokens a batch holds.
    """

    def __init__(self, send: Callable[[Message], None], gen_id: int) -> None:
        self._send = send
        self._gen_id = gen_id
        self._pieces: list[str] = []
        self._last_sent = 0.0

    def add(self, text: str) -> None:
        self._pieces.append(text)
        now = time.perf_counter()
        if now - self._last_sent >= TOKEN_BATCH_S:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._pieces:
            self._send({"type": "token", "id": self._gen_id, "text": "".join(self._pieces), "n": len(self._pieces)})
            self._pieces.clear()
            self._last_sent = time.perf_counter() if now is None else now


class Worker:
    def __init__(self, conn: Connection, log_path: str | None) -> None:
        self.conn = conn
        self.send_lock = threading.Lock()
        self.commands: queue.Queue[Message] = queue.Queue()
        self.stop_event = threading.Event()
        # Which request runs, which wait in ``commands`` and which of those were stopped before they
        # started: the listener and the main thread both read them, under ``_queue_lock``. ``_waiting``
        # holds only requests received and not yet finished, so it (and ``_stopped``, part of it)
        # stays as small as the queue.
        self._queue_lock = threading.Lock()
        self._active_id: int | None = None
        self._waiting: set[Any] = set()
        self._stopped: set[Any] = set()
        self.log_lines: collections.deque[str] = collections.deque(maxlen=400)
        self._partial = ""
        self._log_level = 2
        self.load_buffers: list[BufferLine] = []
        self._log_file = open(log_path, "a", encoding="utf-8", buffering=1) if log_path else None  # noqa: SIM115
        # Python-level prints from llama-cpp-python go to the log, never to the parent's terminal.
        sys.stdout = sys.stderr = self._log_file or open(os.devnull, "w")  # noqa: SIM115

        import llama_cpp

        self.llama_cpp = llama_cpp
        self._log_cb = llama_cpp.llama_log_callback(self._on_log)
        llama_cpp.llama_log_set(self._log_cb, ctypes.c_void_p(0))
        self.abort = _AbortFlag(llama_cpp)
        self.llm: Any = None
        self.model_path: str | None = None
        self.chat_mode = "completion"

    # -- plumbing ----------------------------------------------------------------------------------
    def _on_log(self, level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        # Every line is parsed for buffer sizes as it arrives (a load logs thousands of debug lines,
        # more than the tail we keep); debug lines stay out of the log file.
        if level != 5:  # GGML_LOG_LEVEL_CONT continues the previous line's level
            self._log_level = level
        chunk = self._partial + text.decode("utf-8", errors="replace")
        *lines, self._partial = chunk.split("\n")
        for line in lines:
            buffer = parse_buffer_line(line)
            if buffer is not None:
                self.load_buffers.append(buffer)
            if self._log_level == 1:  # ggml: NONE=0, DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5
                continue
            self.log_lines.append(line)
            if self._log_file is not None:
                self._log_file.write(line + "\n")

    def send(self, msg: Message) -> None:
        with self.send_lock:
            self.conn.send(msg)

    @property
    def active_id(self) -> int | None:
        """The request running now (a reply or a benchmark), or None."""
        return self._active_id

    @active_id.setter
    def active_id(self, value: int | None) -> None:
        """Set by a request as it starts (after clearing the stop flags) and back to None as it ends.

        A stop that arrived between the request leaving the queue and this moment is applied here, so no
        stop is lost; ``started`` tells the parent which request is running (its stop watchdog arms for
        that one only).
        """
        with self._queue_lock:
            self._active_id = value
            stopped = value is not None and value in self._stopped
            if stopped:
                self.stop_event.set()
                self.abort.set()
        if value is not None:
            self.send({"type": "started", "id": value})

    def _on_stop(self, gen_id: Any) -> None:
        """The listener's half of ``stop``: interrupt the running request, or mark a waiting one."""
        with self._queue_lock:
            if self._active_id is not None and gen_id in (None, self._active_id):
                self.stop_event.set()
                self.abort.set()
            elif gen_id is not None and gen_id in self._waiting:
                self._stopped.add(gen_id)

    def _stopped_before_start(self, msg: Message) -> bool:
        """Whether this request, just taken from the queue, was stopped while it waited."""
        with self._queue_lock:
            return msg.get("id") in self._stopped

    def _finished_waiting(self, msg: Message) -> None:
        with self._queue_lock:
            self._waiting.discard(msg.get("id"))
            self._stopped.discard(msg.get("id"))

    def _answer_cancelled(self, msg: Message) -> None:
        """A request stopped before it started: answered as a stop at once would have been, no tokens."""
        gen_id = msg.get("id")
        rss, peak = process_memory()
        if msg.get("type") == "bench":
            self.send({"type": "bench_done", "id": gen_id, "cancelled": True, "rss_bytes": rss, "peak_rss_bytes": peak})
            return
        seed = (msg.get("sampling") or {}).get("seed")
        stats = GenerationStats.cancelled(rss, peak, int(seed) if seed is not None else None)
        self.send({"type": "done", "id": gen_id, "stats": stats.to_dict()})

    def listen(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                msg = {"type": "shutdown"}
            kind = msg.get("type")
            if kind == "stop":
                self._on_stop(msg.get("id"))
                continue
            if kind in QUEUED_REQUESTS and msg.get("id") is not None:
                with self._queue_lock:
                    self._waiting.add(msg.get("id"))
            if kind == "stats":
                rss, peak = process_memory()
                devices = device_memory(self.llama_cpp)  # free device memory now, any backend (Live metrics)
                self.send({"type": "stats", "rss_bytes": rss, "peak_rss_bytes": peak, "devices": devices})
                continue
            if kind == "shutdown":
                self.stop_event.set()
                self.abort.set()
            self.commands.put(msg)
            if kind == "shutdown":
                return

    def run(self) -> None:
        lc = self.llama_cpp
        devices, device_note = list_devices(lc)
        self.send(
            {
                "type": "ready",
                "pid": os.getpid(),
                "llama_cpp_version": lc.__version__,
                "gpu_offload": bool(lc.llama_supports_gpu_offload()),
                "system_info": lc.llama_print_system_info().decode("utf-8", errors="replace").strip(),
                "devices": devices,
                "device_note": device_note,
            }
        )
        threading.Thread(target=self.listen, name="engine-listener", daemon=True).start()
        while True:
            msg = self.commands.get()
            kind = msg.get("type")
            if kind == "shutdown":
                break
            handler = getattr(self, f"cmd_{kind}", None)
            if handler is None:
                self.send({"type": "failed", "id": msg.get("id"), "message": f"Unknown engine command {kind!r}."})
                continue
            if kind not in QUEUED_REQUESTS:
                handler(msg)
                continue
            try:
                if self._stopped_before_start(msg):
                    self._answer_cancelled(msg)
                else:
                    handler(msg)
            finally:
                self._finished_waiting(msg)
        self._free()

    # -- commands ----------------------------------------------------------------------------------
    def _free(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
            self.model_path = None

    def cmd_load(self, msg: Message) -> None:
        self._free()
        path = str(msg["path"])
        lp: dict[str, Any] = msg.get("load") or {}
        self.log_lines.clear()
        self.load_buffers = []
        kwargs: dict[str, Any] = {
            "model_path": path,
            "n_ctx": int(lp.get("n_ctx", 2048)),
            "n_batch": int(lp.get("n_batch", 512)),
            "n_ubatch": int(lp.get("n_ubatch", 512)),
            "n_gpu_layers": int(lp.get("n_gpu_layers", 0)),
            "flash_attn": bool(lp.get("flash_attn", False)),
            "type_k": KV_TYPES[str(lp.get("kv_type", "f16"))],
            "type_v": KV_TYPES[str(lp.get("kv_type", "f16"))],
            "verbose": True,  # False would redirect fds 1/2 process-wide; the log callback is enough
        }
        if not lp.get("op_offload", True):
            kwargs["op_offload"] = False
        threads = int(lp.get("n_threads") or default_threads())
        kwargs["n_threads"] = kwargs["n_threads_batch"] = threads
        t0 = time.perf_counter()
        try:
            llm = self.llama_cpp.Llama(**kwargs)
        except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError on load failures
            self.send({"type": "load_failed", "message": _load_error_message(path, self.log_lines, exc)})
            return
        load_s = time.perf_counter() - t0
        self.llm = llm
        self.model_path = path
        self.llama_cpp.llama_set_abort_callback(llm._ctx.ctx, self.abort.callback, self.abort.data)
        template = llm.metadata.get("tokenizer.chat_template")
        self.chat_mode = "chat" if template else "completion"
        guard_chat_templates(llm, self.llama_cpp.llama_chat_format, llm.n_ctx())
        buffers = list(self.load_buffers)
        rss, peak = process_memory()
        self.send(
            {
                "type": "loaded",
                "path": path,
                "load_s": load_s,
                "n_ctx": llm.n_ctx(),
                "n_ctx_train": llm._model.n_ctx_train(),
                "chat_mode": self.chat_mode,
                "buffers": [
                    {"device": b.device, "component": b.component, "bytes": b.bytes, "kind": b.kind} for b in buffers
                ],
                "rss_bytes": rss,
                "peak_rss_bytes": peak,
            }
        )

    def cmd_unload(self, msg: Message) -> None:
        self._free()
        self.send({"type": "unloaded"})

    def cmd_threads(self, msg: Message) -> None:
        """Threads for the loaded model's replies from now on (``n``); no answer, applied in command order.

        The compare view gives engines that generate at the same time a share of the cores each: with
        every engine on every core, llama.cpp's threads wait on each other's time slices and SmolLM2
        fell from ~75 to 0.7 tokens/s on a 2-core machine. A later load starts from the default again.
        """
        if self.llm is not None:
            n = max(1, int(msg["n"]))
            self.llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n, n)

    def cmd_tokenize(self, msg: Message) -> None:
        """Token counts with the loaded model's own tokenizer, for the context meter and for
        deciding which old messages to leave out (an estimate could overflow the window)."""
        if self.llm is None:
            self.send({"type": "tokenized", "id": msg.get("id"), "counts": None, "message": "No model is loaded."})
            return
        texts = [str(t) for t in msg.get("texts") or []]
        counts = [len(self.llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)) for t in texts]
        self.send({"type": "tokenized", "id": msg.get("id"), "counts": counts})

    def cmd_bench(self, msg: Message) -> None:
        """The llama-bench loop on this worker's model (engine/bench.py); stoppable like a reply."""
        from sizewise.engine.bench import run_bench

        run_bench(self, msg)

    def cmd_generate(self, msg: Message) -> None:
        """Stream one reply. Any failure of this request (a chat template that raises or loops, a prompt
        longer than the context, an error inside llama.cpp) answers ``failed`` with one sentence and
        leaves the model loaded; only a crash of the process itself ends the engine.

        A fixed seed promises the same text for the same request, whatever came before. llama-cpp-python
        reuses the longest cached prompt prefix and re-evaluates at least the prompt's last token on its
        own; a batch of one runs other kernels than the full prompt's batch, so the logits differ in their
        last bits and, at temperature 1, the sampled text can differ. A fixed-seed request therefore
        evaluates its whole prompt from an empty cache, as a fresh engine would; unseeded requests keep
        the prefix cache (the cost, measured in tests/benchmarks, is the prompt's re-evaluation).
        """
        gen_id = int(msg["id"])
        if self.llm is None:
            self.send({"type": "failed", "id": gen_id, "message": "No model is loaded."})
            return
        sampling: dict[str, Any] = msg.get("sampling") or {}
        fixed_seed = sampling.get("seed") is not None
        seed = int(sampling["seed"]) if fixed_seed else random.randrange(2**31)
        if fixed_seed:
            self.llm.reset()
        self.stop_event.clear()
        self.abort.clear()
        self.active_id = gen_id
        self.llama_cpp.llama_perf_context_reset(self.llm._ctx.ctx)
        t0 = time.perf_counter()
        try:
            finish, ttft_ms, error = self._stream_reply(gen_id, msg, _completion_kwargs(sampling, seed), t0)
        finally:
            self.active_id = None
            self.abort.clear()
        if error is not None:
            self.send({"type": "failed", "id": gen_id, "message": error})
            return
        self._send_done(gen_id, finish, ttft_ms, time.perf_counter() - t0, seed)

    def _stream_reply(
        self, gen_id: int, msg: Message, kwargs: dict[str, Any], t0: float
    ) -> tuple[str, float | None, str | None]:
        """Send ``token`` events as the reply streams; (finish reason, time to first token, error)."""
        llm = self.llm
        ttft_ms: float | None = None
        finish = "stop"
        batch = _TokenBatch(self.send, gen_id)
        try:
            if (msg.get("mode") or self.chat_mode) == "chat":
                stream = llm.create_chat_completion(messages=msg.get("messages") or [], **kwargs)
            else:
                stream = llm.create_completion(prompt=str(msg.get("prompt") or ""), **kwargs)
            for chunk in stream:
                if self.stop_event.is_set():
                    break
                choice = chunk["choices"][0]
                text = choice["delta"].get("content") if "delta" in choice else choice.get("text")
                if text:
                    if ttft_ms is None:
                        ttft_ms = (time.perf_counter() - t0) * 1000.0
                    batch.add(text)
                if choice.get("finish_reason"):
                    finish = "length" if choice["finish_reason"] == "length" else "stop"
        except TemplateProblem as exc:
            return finish, ttft_ms, str(exc)
        except RuntimeError as exc:
            if not self.stop_event.is_set():  # else llama_decode said "aborted": stopped during the prompt
                return finish, ttft_ms, f"Generation failed: {exc}."
        except ValueError as exc:  # e.g. prompt longer than the context window
            return finish, ttft_ms, str(exc).rstrip(".") + "."
        except Exception as exc:  # one request's failure, whatever it is, must not end the engine
            return finish, ttft_ms, f"Generation failed ({type(exc).__name__}): {str(exc).rstrip('.')}."
        finally:
            batch.flush()
        if self.stop_event.is_set():
            finish = "cancelled"
        return finish, ttft_ms, None

    def _send_done(self, gen_id: int, finish: str, ttft_ms: float | None, total_s: float, seed: int) -> None:
        perf = self.llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        n_eval = int(perf.n_eval)
        rss, peak = process_memory()
        stats = GenerationStats(
            tokens=n_eval + 1 if ttft_ms is not None else 0,
            ttft_ms=ttft_ms or 0.0,
            prompt_tokens=int(perf.n_p_eval),
            pp_tps=(perf.n_p_eval / perf.t_p_eval_ms * 1000.0) if perf.t_p_eval_ms > 0 else 0.0,
            tg_tps=(n_eval / perf.t_eval_ms * 1000.0) if perf.t_eval_ms > 0 else 0.0,
            total_s=total_s,
            finish_reason=finish,
            peak_rss_bytes=peak,
            rss_bytes=rss,
            seed=seed,
            context_tokens=int(self.llm.n_tokens),
        )
        self.send({"type": "done", "id": gen_id, "stats": stats.to_dict()})


def run_worker(conn: Connection, log_path: str | None = None) -> None:
    """Process entry point (multiprocessing target).

    A Python exception here is a bug, not a model problem: it is sent to the parent (which reports
    it as the reason the engine stopped) and written to the real stderr before the process exits.
    """
    # Ctrl+C in a terminal reaches the whole process group; the parent decides what stops, not us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        Worker(conn, log_path).run()
    except BaseException as exc:
        import traceback

        text = traceback.format_exc()
        if sys.__stderr__ is not None:
            sys.__stderr__.write(text)
        with contextlib.suppress(OSError, ValueError):
            conn.send({"type": "fatal", "message": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None
    finally:
        conn.close()
