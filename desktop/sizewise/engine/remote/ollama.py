"""Ollama's native API: what it says about its models, their memory and each reply's speed.

Why the native API and not only Ollama's OpenAI endpoints: ``/v1/chat/completions`` gives ``usage`` (token
counts) and nothing about time or memory, while the native endpoints give what Sizewise shows as the
server's own figures. ``GET /api/version`` tells an Ollama apart from other servers, ``/api/tags`` lists its
models with their sizes, ``POST /api/show`` gives a model's facts (family, parameter size, quantization,
trained context), ``GET /api/ps`` the memory each loaded model holds (``size``, of which ``size_vram`` on
the GPU: measured by Ollama, so shown as measured), and the last chunk of a native ``/api/chat`` or
``/api/generate`` stream carries ``eval_count``/``eval_duration`` and ``prompt_eval_count``/
``prompt_eval_duration`` in nanoseconds.

The field names follow Ollama's API documentation (docs/api.md); the tests serve its documented examples,
not recordings of a real Ollama.
"""

from __future__ import annotations

from typing import Any

from sizewise.core.sampling import SamplingParams
from sizewise.engine.remote.http import HttpClient, RemoteError

NS_PER_MS = 1_000_000
# Kept as Ollama sent them, beside the llama-server-named figures derived from them.
RAW_TIMING_KEYS = (
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
    "load_duration",
    "total_duration",
)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def ollama_version(http: HttpClient) -> str | None:
    """The version an Ollama reports at ``/api/version``; None for any other server (a 401/403 is raised)."""
    try:
        answer = http.call("GET", "/api/version")
    except RemoteError as exc:
        if exc.status in (401, 403):
            raise
        return None
    version = answer.get("version") if isinstance(answer, dict) else None
    return version if isinstance(version, str) and version else None


def ollama_models(http: HttpClient) -> list[dict[str, Any]]:
    """The entries of ``/api/tags`` (each with ``name``, ``size`` and ``details``)."""
    answer = http.call("GET", "/api/tags")
    models = answer.get("models") if isinstance(answer, dict) else None
    if not isinstance(models, list):
        raise RemoteError(f"The Ollama at {http.address.url} has no model list at /api/tags.")
    return [m for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)]


def ollama_facts(http: HttpClient, model: str) -> dict[str, Any]:
    """A model's facts from ``/api/show``: family, parameter size, quantization, parameters and trained context.

    ``model_info`` is keyed by architecture (``llama.context_length``), so the context is looked up under
    ``general.architecture``. An Ollama that refuses ``/api/show`` gives no facts, not a failure.
    """
    try:
        answer = http.call("POST", "/api/show", {"model": model})
    except RemoteError:
        return {}
    if not isinstance(answer, dict):
        return {}
    details: dict[str, Any] = answer["details"] if isinstance(answer.get("details"), dict) else {}
    info: dict[str, Any] = answer["model_info"] if isinstance(answer.get("model_info"), dict) else {}
    arch = info.get("general.architecture")
    facts: dict[str, Any] = {
        "family": details.get("family"),
        "parameter_size": details.get("parameter_size"),
        "quantization_level": details.get("quantization_level"),
        "format": details.get("format"),
        "architecture": arch if isinstance(arch, str) else None,
        "n_params": _int(info.get("general.parameter_count")),
        "context_length": _int(info.get(f"{arch}.context_length")) if isinstance(arch, str) else None,
    }
    return {k: v for k, v in facts.items() if v not in (None, "")}


def ollama_loaded(http: HttpClient, model: str) -> dict[str, Any] | None:
    """The ``/api/ps`` entry of ``model`` while Ollama holds it in memory; None when it is not loaded."""
    answer = http.call("GET", "/api/ps")
    models = answer.get("models") if isinstance(answer, dict) else None
    for entry in models if isinstance(models, list) else []:
        if isinstance(entry, dict) and model in (entry.get("name"), entry.get("model")):
            return entry
    return None


def load_model(http: HttpClient, model: str, timeout: float) -> None:
    """Have Ollama load ``model`` now (its documented "Load a model": ``/api/generate`` with no prompt).

    The GUI's connect is its load: the model is in memory afterwards, so ``/api/ps`` can say how much it takes.
    """
    http.call("POST", "/api/generate", {"model": model, "stream": False}, timeout=timeout)


def request(
    model: str, sampling: SamplingParams, seed: int, messages: list[dict[str, str]] | None, prompt: str | None
) -> tuple[str, dict[str, Any]]:
    """(path, body) of a native streamed request: ``/api/chat`` for messages, ``/api/generate`` raw for a prompt.

    Sampling goes in ``options`` under Ollama's names (``num_predict`` is ``max_tokens``).
    """
    options = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty,
        "seed": seed,
        "num_predict": sampling.max_tokens,
    }
    body: dict[str, Any] = {"model": model, "stream": True, "options": options}
    if messages is not None:
        body["messages"] = messages
        return "/api/chat", body
    body["prompt"], body["raw"] = prompt or "", True  # the completion endpoint: no template, like /v1/completions
    return "/api/generate", body


def piece(event: dict[str, Any]) -> str | None:
    """The text of one chunk (``message.content`` from /api/chat, ``response`` from /api/generate)."""
    message = event.get("message")
    text = message.get("content") if isinstance(message, dict) else event.get("response")
    return text if isinstance(text, str) else None


def timings(final: dict[str, Any]) -> dict[str, Any] | None:
    """The server's figures from the final chunk, under llama-server's names (so every view reads them the
    same way) and as Ollama sent them (nanoseconds); None when the chunk carries no counts."""
    raw = {k: final[k] for k in RAW_TIMING_KEYS if _int(final.get(k)) is not None}
    if "eval_count" not in raw:
        return None
    out: dict[str, Any] = {"source": "ollama", **raw}
    for count, duration, prefix in (
        ("prompt_eval_count", "prompt_eval_duration", "prompt"),
        ("eval_count", "eval_duration", "predicted"),
    ):
        n, ns = raw.get(count), raw.get(duration)
        if n is None:
            continue
        out[f"{prefix}_n"] = n
        if ns:
            out[f"{prefix}_ms"] = ns / NS_PER_MS
            out[f"{prefix}_per_second"] = n / ns * 1e9
    return out


def finish_reason(final: dict[str, Any]) -> str:
    """``done_reason`` in the OpenAI words Sizewise keeps (``stop``/``length``); absent means stop."""
    reason = final.get("done_reason")
    return "length" if reason == "length" else "stop"
