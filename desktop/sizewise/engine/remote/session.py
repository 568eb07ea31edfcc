"""A remote engine with the same shape as ``EngineSession`` for the CLI: connect, stream a reply, read its figures.

Speed is read from both sides. The client's own figures (time to first token and tokens/s as the pieces
arrive) include the network and HTTP; llama-server's ``timings`` (sent with the last event) and Ollama's
``eval_count``/``eval_duration`` (its native API's last chunk, engine/remote/ollama.py) are the engine's own.
Both are kept: ``last_stats`` holds the client's, ``last_server_timings`` the server's.

Three kinds of server: llama-server (``/props`` answers), Ollama (``/api/version`` answers; its native
endpoints are used for the model list, facts, memory and replies) and any other OpenAI-compatible server.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sizewise.core.sampling import SamplingParams
from sizewise.engine.protocol import GenerationStats
from sizewise.engine.remote import ollama
from sizewise.engine.remote.http import ApiKey, HttpClient, RemoteError, ServerAddress

# The sampling fields every OpenAI-compatible server takes, and llama.cpp's extras (llama-server reads them from
# the same JSON body; an OpenAI server could refuse unknown fields, so they go to llama-server only).
TIMING_KEYS = (
    "cache_n",
    "prompt_n",
    "prompt_ms",
    "prompt_per_second",
    "predicted_n",
    "predicted_ms",
    "predicted_per_second",
)


@dataclass
class ServerInfo:
    """What the server says about itself and the model it will answer with."""

    url: str
    kind: str  # "llama-server" | "ollama" | "openai"
    model: str
    models: list[str]
    n_ctx: int | None = None
    n_ctx_train: int | None = None
    model_path: str | None = None
    size_bytes: int | None = None
    n_params: int | None = None
    n_vocab: int | None = None
    encrypted: bool = False
    loopback: bool = False
    version: str | None = None  # the server's own version, where it says (Ollama's /api/version)
    facts: dict[str, Any] = field(default_factory=dict)  # the model's facts the server gives (Ollama's /api/show)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kind": self.kind,
            "model": self.model,
            "models": self.models,
            "n_ctx": self.n_ctx,
            "n_ctx_train": self.n_ctx_train,
            "model_path": self.model_path,
            "size_bytes": self.size_bytes,
            "n_params": self.n_params,
            "encrypted": self.encrypted,
            "loopback": self.loopback,
            "server_version": self.version,
            "facts": self.facts,
        }


def sampling_body(sampling: SamplingParams, kind: str, seed: int) -> dict[str, Any]:
    """The request's sampling fields: the OpenAI ones always, llama.cpp's extras for llama-server."""
    body: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
        "seed": seed,
    }
    if kind == "llama-server":
        body.update(top_k=sampling.top_k, min_p=sampling.min_p, repeat_penalty=sampling.repeat_penalty)
    return body


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class RemoteSession:
    """One server and one model on it; ``connect()`` first. ``stop()`` may be called from another thread."""

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: ApiKey | None = None,
        log_path: Path | None = None,
        stall_timeout: float | None = None,
    ) -> None:
        self.address = ServerAddress.parse(url)
        kwargs = {} if stall_timeout is None else {"stall_timeout": stall_timeout}
        self.http = HttpClient(self.address, api_key, log_path=log_path, **kwargs)
        self.requested_model = model
        self.info: ServerInfo | None = None
        self.last_stats: GenerationStats | None = None
        self.last_server_timings: dict[str, Any] | None = None
        self.last_sampling_sent: list[str] = []
        self.kind: str | None = None  # "llama-server" | "ollama" | "openai", once the server was asked
        self.version: str | None = None

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.stop_stream()

    def stop(self) -> None:
        self.http.stop_stream()

    # -- discovery --------------------------------------------------------------------------------------------
    def _listing(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
        """The model entries of ``/v1/models``, llama-server's ``/props`` (None elsewhere) and the server kind."""
        health_ok = self._health()
        if not health_ok:
            self.version = ollama.ollama_version(self.http)
            if self.version is not None:
                self.kind = "ollama"
                tags = ollama.ollama_models(self.http)
                return [{"id": m["name"], "meta": {"size": m.get("size")}} for m in tags], None, "ollama"
        listing = self.http.call("GET", "/v1/models")
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise RemoteError(
                f"The server at {self.address.url} has no OpenAI model list at /v1/models; "
                "is it an OpenAI-compatible server?"
            )
        entries = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        props = self._props() if health_ok else None
        kind = (
            "llama-server" if props is not None or any(m.get("owned_by") == "llamacpp" for m in entries) else "openai"
        )
        self.kind = kind
        return entries, props, kind

    def list_models(self) -> list[str]:
        """The ids of the models the server offers, without choosing one ("Connect to a server…" lists them)."""
        entries, _, _ = self._listing()
        ids = [str(m["id"]) for m in entries]
        if not ids:
            raise RemoteError(f"The server at {self.address.url} lists no models.")
        return ids

    def connect(self) -> ServerInfo:
        """Ask the server what it serves (``/health``, ``/v1/models``, ``/props``) and pick the model."""
        entries, props, kind = self._listing()
        ids = [str(m["id"]) for m in entries]
        if self.requested_model is not None:
            if self.requested_model not in ids:
                offered = ", ".join(ids) or "none"
                raise RemoteError(f"The server has no model named {self.requested_model!r}; it offers: {offered}.")
            name = self.requested_model
        elif len(ids) == 1:
            name = ids[0]
        elif not ids:
            raise RemoteError(f"The server at {self.address.url} lists no models.")
        else:
            raise RemoteError(f"The server offers several models ({', '.join(ids[:8])}); choose one with --model.")
        meta = next((m.get("meta") for m in entries if m["id"] == name), None)
        meta = meta if isinstance(meta, dict) else {}
        settings = (props or {}).get("default_generation_settings")
        n_ctx = _int(settings.get("n_ctx")) if isinstance(settings, dict) else None
        path = (props or {}).get("model_path")
        facts = ollama.ollama_facts(self.http, name) if kind == "ollama" else {}
        if kind == "ollama":
            loaded = ollama.ollama_loaded(self.http, name)
            n_ctx = _int((loaded or {}).get("context_length"))  # newer Ollamas say the context they loaded
        self.info = ServerInfo(
            url=self.address.url,
            kind=kind,
            model=name,
            models=ids,
            n_ctx=n_ctx or _int(meta.get("n_ctx")),
            n_ctx_train=_int(meta.get("n_ctx_train")) or facts.get("context_length"),
            model_path=path if isinstance(path, str) else None,
            size_bytes=_int(meta.get("size")),
            n_params=_int(meta.get("n_params")) or facts.get("n_params"),
            n_vocab=_int(meta.get("n_vocab")),
            encrypted=self.address.encrypted,
            loopback=self.address.loopback,
            version=self.version,
            facts=facts,
        )
        return self.info

    def loaded_memory(self) -> dict[str, Any] | None:
        """Ollama's ``/api/ps`` entry for this model (None: not loaded, or not an Ollama, or no answer)."""
        info = self._require()
        if info.kind != "ollama":
            return None
        try:
            return ollama.ollama_loaded(self.http, info.model)
        except RemoteError:
            return None

    def _health(self) -> bool:
        """llama-server's ``/health``: True when it answered ok; False where the server has none (plain OpenAI)."""
        try:
            answer = self.http.call("GET", "/health")
        except RemoteError as exc:
            text = str(exc)
            if "HTTP 503" in text:
                raise RemoteError(
                    f"The server at {self.address.url} is still loading its model; try again soon."
                ) from None
            if "HTTP 404" in text or "HTML page" in text or "not JSON" in text:
                return False
            raise
        return isinstance(answer, dict) and answer.get("status") == "ok"

    def _props(self) -> dict[str, Any] | None:
        try:
            props = self.http.call("GET", "/props")
        except RemoteError:
            return None
        return props if isinstance(props, dict) and "default_generation_settings" in props else None

    def _require(self) -> ServerInfo:
        if self.info is None:
            raise RuntimeError("connect() first")
        return self.info

    def count_tokens(self, texts: list[str]) -> list[int] | None:
        """Token counts from llama-server's own tokenizer (``/tokenize``); None where the server has none."""
        if self._require().kind != "llama-server":
            return None
        counts = []
        for text in texts:
            try:
                answer = self.http.call("POST", "/tokenize", {"content": text})
            except RemoteError:
                return None
            tokens = answer.get("tokens") if isinstance(answer, dict) else None
            if not isinstance(tokens, list):
                return None
            counts.append(len(tokens))
        return counts

    # -- replies ----------------------------------------------------------------------------------------------
    def stream(
        self,
        sampling: SamplingParams,
        *,
        messages: list[dict[str, str]] | None = None,
        prompt: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Yield text pieces; afterwards ``last_stats`` (client figures) and ``last_server_timings`` are set.

        A drop mid-reply raises RemoteError after the pieces already yielded (the caller keeps them);
        ``stop()`` ends it quietly with finish_reason ``cancelled``.
        """
        info = self._require()
        seed = sampling.seed if sampling.seed is not None else random.randrange(2**31)
        if info.kind == "ollama":
            yield from self._stream_ollama(info, sampling, seed, messages, prompt)
            return
        body: dict[str, Any] = {"model": info.model, "stream": True, "stream_options": {"include_usage": True}}
        body.update(sampling_body(sampling, info.kind, seed))
        self.last_sampling_sent = sorted(k for k in body if k not in ("model", "stream", "stream_options"))
        if messages is not None:
            path, body["messages"] = "/v1/chat/completions", messages
        else:
            path, body["prompt"] = "/v1/completions", prompt or ""
        body.update(extra or {})
        self.last_stats, self.last_server_timings = None, None
        t0 = time.perf_counter()
        first: float | None = None
        last = t0
        pieces = 0
        finish: str | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] | None = None
        for event in self.http.stream(path, body):
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            if isinstance(event.get("timings"), dict):
                timings = {k: event["timings"][k] for k in TIMING_KEYS if k in event["timings"]}
            choices = event.get("choices")
            if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                continue
            choice = choices[0]
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else choice.get("message")
            text = (delta or {}).get("content") if isinstance(delta, dict) else choice.get("text")
            if isinstance(text, str) and text:
                now = time.perf_counter()
                first = now if first is None else first
                last = now
                pieces += 1
                yield text
            if choice.get("finish_reason"):
                finish = str(choice["finish_reason"])
        if self.http.stopped:
            finish = "cancelled"
        elif finish not in ("stop", "length"):
            finish = "stop"  # ended normally without a reason, or with an OpenAI reason we have no name for
        self._finish(t0, first, last, pieces, finish, usage, timings, seed)

    def _stream_ollama(
        self,
        info: ServerInfo,
        sampling: SamplingParams,
        seed: int,
        messages: list[dict[str, str]] | None,
        prompt: str | None,
    ) -> Iterator[str]:
        """The native ``/api/chat`` (or raw ``/api/generate``) stream: its last chunk has the server's figures."""
        path, body = ollama.request(info.model, sampling, seed, messages, prompt)
        self.last_sampling_sent = sorted(body["options"])
        self.last_stats, self.last_server_timings = None, None
        t0 = time.perf_counter()
        first: float | None = None
        last = t0
        pieces = 0
        final: dict[str, Any] | None = None
        for event in self.http.stream(path, body):
            text = ollama.piece(event)
            if text:
                now = time.perf_counter()
                first = now if first is None else first
                last = now
                pieces += 1
                yield text
            if event.get("done") is True:
                final = event
        if self.http.stopped:
            finish = "cancelled"
        elif final is None:
            raise RemoteError(f"The server at {self.address.url} closed the connection in the middle of the reply.")
        else:
            finish = ollama.finish_reason(final)
        timings = ollama.timings(final or {})
        usage = {}
        if timings is not None:
            usage = {"completion_tokens": timings.get("predicted_n"), "prompt_tokens": timings.get("prompt_n")}
        self._finish(t0, first, last, pieces, finish, usage, timings, seed)

    def _finish(
        self,
        t0: float,
        first: float | None,
        last: float,
        pieces: int,
        finish: str,
        usage: dict[str, Any],
        timings: dict[str, Any] | None,
        seed: int,
    ) -> None:
        """``last_stats`` and ``last_server_timings`` of the reply that just ended."""
        end = time.perf_counter()
        tokens = _int(usage.get("completion_tokens")) or _int((timings or {}).get("predicted_n")) or pieces
        prompt_tokens = _int(usage.get("prompt_tokens")) or 0
        if not prompt_tokens and timings:
            prompt_tokens = (_int(timings.get("prompt_n")) or 0) + (_int(timings.get("cache_n")) or 0)
        # The prompt tokens the server processed (a reused prefix costs nothing): what the client's pp speed divides.
        processed = _int((timings or {}).get("prompt_n")) or prompt_tokens
        ttft_s = (first - t0) if first is not None else 0.0
        span = last - first if first is not None else 0.0
        self.last_server_timings = timings
        self.last_stats = GenerationStats(
            tokens=tokens,
            ttft_ms=ttft_s * 1000.0,
            prompt_tokens=prompt_tokens,
            pp_tps=processed / ttft_s if ttft_s > 0 else 0.0,
            tg_tps=(tokens - 1) / span if tokens > 1 and span > 0 else 0.0,
            total_s=end - t0,
            finish_reason=finish,
            peak_rss_bytes=0,
            rss_bytes=0,
            seed=seed,
            context_tokens=prompt_tokens + tokens,
        )
