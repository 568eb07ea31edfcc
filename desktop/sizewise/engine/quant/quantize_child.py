"""The child side of a quantization (engine/quant/quantize.py runs it in a job process): llama.cpp's own
quantizer, ``llama_model_quantize``.

A dry run first — llama.cpp computes the exact size of the result, and
how many tensors fall back to another type (k-quants need rows that are a multiple of 256), without
writing — then a check that the disk has room for that, then the real run into the hidden partial file.
Progress comes from llama.cpp's own log, one ``[  12/ 272] blk.1.attn_q.weight …`` line per tensor.
A failed write makes llama.cpp's ``std::ofstream`` throw ("iostream error"), which is turned into a sentence
about the disk; the written file is also checked against its own header (every tensor's bytes present)
before it counts, so a short write that went unnoticed cannot pass as a model.

Kept apart from the parent side so that importing the Quantizer (the GUI does) never imports llama_cpp.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import time
from typing import Any

from sizewise.core.gguf.header import GGUFError, model_info
from sizewise.core.quant.plan import DISK_MARGIN_BYTES
from sizewise.engine.quant.job import Emit, JobError

_PROGRESS_RE = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")
_SIZE_RE = re.compile(r"quant size\s*=\s*([0-9.]+)\s*MiB")
_FALLBACK_RE = re.compile(r"(\d+) of (\d+) tensor\(s\) required fallback")
_PROGRESS_EVERY_S = 0.1


def quantize_in_child(payload: dict[str, Any], emit: Emit) -> dict[str, Any]:
    import llama_cpp

    src, dst = payload["source"], payload["partial"]
    lines: list[str] = []
    partial_line = [""]
    last_sent = [0.0]
    writing = [False]  # the dry run logs the same per-tensor lines: progress counts only the real run

    def on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        chunk = partial_line[0] + text.decode("utf-8", errors="replace")
        *done, partial_line[0] = chunk.split("\n")
        for line in done:
            lines.append(line)
            m = _PROGRESS_RE.match(line)
            now = time.monotonic()
            if m and writing[0] and (now - last_sent[0] >= _PROGRESS_EVERY_S or m[1] == m[2]):
                last_sent[0] = now
                emit({"type": "progress", "step": int(m[1]), "steps": int(m[2]), "tensor": m[3]})

    callback = llama_cpp.llama_log_callback(on_log)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))

    def params(dry_run: bool) -> Any:
        p = llama_cpp.llama_model_quantize_default_params()
        p.ftype = int(payload["ftype"])
        p.allow_requantize = True
        p.nthread = int(payload.get("threads") or 0)
        p.dry_run = dry_run
        return p

    dry = params(True)
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(dry)) != 0:
        reason = _last_error(lines)
        if "no tensor type fallback" in reason:  # e.g. Q1_0 on rows that are not a multiple of its block
            raise JobError(
                "llama.cpp cannot make this type for this model: some of its tensors have rows that do not "
                f"divide into the type's blocks, and the type has no fallback ({reason})."
            )
        raise JobError(f"llama.cpp cannot quantize this model: {reason}")
    size_match = next((m for m in map(_SIZE_RE.search, reversed(lines)) if m), None)
    tensor_bytes = int(float(size_match[1]) * 2**20) if size_match else 0
    fallback = next((m for m in map(_FALLBACK_RE.search, reversed(lines)) if m), None)
    expected = tensor_bytes + int(payload.get("metadata_bytes", 0))
    emit({"type": "estimate", "bytes": expected, "fallback_tensors": int(fallback[1]) if fallback else 0})
    free = shutil.disk_usage(os.path.dirname(dst)).free
    if expected and free < expected + DISK_MARGIN_BYTES:
        raise JobError(
            f"Not enough free disk space: the new file needs about {expected / 2**20:,.0f} MiB and "
            f"{free / 2**20:,.0f} MiB is free."
        )
    lines.clear()
    writing[0] = True
    t0 = time.perf_counter()
    real = params(False)
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(real))
    seconds = time.perf_counter() - t0
    if rc != 0:
        reason = _last_error(lines)
        if "iostream error" in reason or "ios_base" in reason:  # llama.cpp's ofstream threw on a failed write
            free = shutil.disk_usage(os.path.dirname(dst)).free
            raise JobError(
                f"Writing the new file failed ({free / 2**20:,.0f} MiB free now): the disk may be full or the "
                "file too large for it."
            )
        raise JobError(f"llama.cpp could not quantize the model: {reason}")
    try:
        info = model_info(dst)
    except (GGUFError, OSError) as exc:
        raise JobError(f"The new file is incomplete (was the disk full?): {exc}") from exc
    return {
        "bytes": info.file_bytes,
        "quantize_s": seconds,
        "fallback_tensors": int(fallback[1]) if fallback else 0,
        "tensors": int(fallback[2]) if fallback else None,
    }


def _last_error(lines: list[str]) -> str:
    for line in reversed(lines):
        text = line.strip()
        if text and ("error" in text.lower() or "failed" in text.lower() or "invalid" in text.lower()):
            return text.split(": ", 1)[-1]
    return next((s.strip() for s in reversed(lines) if s.strip()), "no reason given")
