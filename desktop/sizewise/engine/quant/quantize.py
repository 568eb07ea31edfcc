"""Quantize a GGUF with llama.cpp's own quantizer (``llama_model_quantize``) in a job process.

Child side: engine/quant/quantize_child.py (a dry run for the exact size, a disk check, the real run into a
hidden partial file, progress from llama.cpp's log); it lives apart so that importing this module — the GUI
does — never imports llama_cpp.

Parent side (``Quantizer``): plans (core/quant/plan.py), runs the job, and on success moves the partial
file to its name with ``os.link`` — which fails rather than overwrite — then records the new model's
source for the Library. On failure, cancel, or a killed job the partial file is deleted; one left by a
crashed app is deleted the next time anything is quantized into that folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizewise.core.quant.plan import QuantizePlan, clean_stale_partials, partial_path
from sizewise.engine.protocol import Message
from sizewise.engine.quant.job import JobProcess

_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS}


@dataclass(frozen=True)
class QuantizeResult:
    plan: QuantizePlan
    out: Path
    bytes: int
    quantize_s: float
    wall_s: float
    fallback_tensors: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "out": str(self.out),
            "bytes": self.bytes,
            "quantize_s": round(self.quantize_s, 3),
            "wall_s": round(self.wall_s, 3),
            "fallback_tensors": self.fallback_tensors,
        }


class QuantizeFailed(Exception):
    """The quantization did not produce a file; the message is a sentence for the user."""


class Quantizer:
    """Runs one planned quantization; every outcome but success leaves no file behind.

    ``on_event`` gets the job's ``progress``/``estimate`` events and then one final event: ``finished`` with
    ``result`` (a QuantizeResult), ``failed``/``died`` with ``message``, or ``cancelled``.
    """

    def __init__(
        self,
        plan: QuantizePlan,
        on_event: Callable[[Message], None],
        *,
        threads: int = 0,
        log_path: str | None = None,
        on_made: Callable[[QuantizeResult], None] | None = None,
    ) -> None:
        self.plan = plan
        self._on_event = on_event
        self._on_made = on_made
        plan.out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_partials(plan.out.parent)
        self.partial = partial_path(plan.out, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
        payload = {
            "source": str(plan.source.path),
            "partial": str(self.partial),
            "ftype": plan.target.ftype,
            "threads": threads,
            "metadata_bytes": max(0, plan.source.file_bytes - plan.source.tensor_bytes),
        }
        self._t0 = 0.0
        self.job = JobProcess(
            "sizewise.engine.quant.quantize_child",
            "quantize_in_child",
            payload,
            self._relay,
            name="sizewise-quantize",
            log_path=log_path,
        )

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self.job.start()

    def cancel(self) -> None:
        self.job.cancel()

    def wait(self, timeout: float | None = None) -> Message | None:
        return self.job.wait(timeout)

    def _relay(self, msg: Message) -> None:
        kind = msg.get("type")
        if kind == "finished":
            try:
                result = self._publish(msg)
            except QuantizeFailed as exc:
                msg = {"type": "failed", "message": str(exc)}
            except Exception as exc:  # recording it failed after the file was saved: say so, keep the file
                msg = {"type": "failed", "message": f"{self.plan.out} was written but could not be listed: {exc}"}
            else:
                msg = {"type": "finished", "result": result}
        if kind in JobProcess.FINAL:
            self._remove_partial()
        self._on_event(msg)

    def _publish(self, msg: Message) -> QuantizeResult:
        try:
            os.link(self.partial, self.plan.out)  # fails if the name was taken meanwhile: never overwrite
        except FileExistsError as exc:
            raise QuantizeFailed(f"{self.plan.out} appeared while quantizing; it was left alone.") from exc
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise QuantizeFailed(f"Could not save {self.plan.out}: {exc.strerror or exc}.") from exc
            # FAT/exFAT drives and some network shares have no hard links: check, then rename.
            if self.plan.out.exists():
                raise QuantizeFailed(f"{self.plan.out} appeared while quantizing; it was left alone.") from exc
            os.rename(self.partial, self.plan.out)
        result = QuantizeResult(
            plan=self.plan,
            out=self.plan.out,
            bytes=int(msg.get("bytes", 0)),
            quantize_s=float(msg.get("quantize_s", 0.0)),
            wall_s=time.perf_counter() - self._t0,
            fallback_tensors=int(msg.get("fallback_tensors", 0)),
        )
        if self._on_made is not None:
            self._on_made(result)
        return result

    def _remove_partial(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()
