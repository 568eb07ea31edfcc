"""Measured-vs-predicted memory, kept per model file so the prediction's track record stays visible.

After a load, llama.cpp's logged buffer sizes are stored next to what was predicted for the same
settings. Records are keyed by the file's path, size and modification time: a re-downloaded or
replaced file starts a fresh record instead of inheriting numbers that no longer describe it. The
store is one JSON file under the app's data dir, replaced atomically on every write (a crash leaves
the old file or the new one, never half of each); a damaged file is set aside, not trusted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizewise.core.atomic import file_identity, read_models_store, write_text_atomic
from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import Backend, MemoryPrediction, predict
from sizewise.core.fit.verdict import compare
from sizewise.core.gguf.header import GGUFHeader, read_header
from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.predicted import ReplySpeed

STORE_VERSION = 1
MAX_RECORDS_PER_MODEL = 50


model_key = file_identity  # ``path|size|mtime_ns`` of the file as it is now


@dataclass(frozen=True)
class MeasurementRecord:
    when: float
    settings: dict[str, Any]
    predicted: dict[str, Any]
    measured: dict[str, Any]
    diff_pct: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "when": self.when,
            "settings": self.settings,
            "predicted": self.predicted,
            "measured": self.measured,
            "diff_pct": self.diff_pct,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MeasurementRecord:
        return cls(
            when=float(d.get("when", 0.0)),
            settings=dict(d.get("settings") or {}),
            predicted=dict(d.get("predicted") or {}),
            measured=dict(d.get("measured") or {}),
            diff_pct=dict(d.get("diff_pct") or {}),
        )


def settings_key(params: LoadParams, gpu_layers: int) -> dict[str, Any]:
    """The settings a measurement is filed under (and must match to be shown beside a prediction)."""
    return {
        "n_ctx": params.n_ctx,
        "n_batch": params.n_batch,
        "n_ubatch": params.n_ubatch,
        "kv_type": params.kv_type,
        "flash_attn": params.flash_attn,
        "n_gpu_layers": gpu_layers,
    }


def make_record(
    prediction: MemoryPrediction,
    measured: MeasuredBuffers,
    settings: dict[str, Any],
    extra_measured: dict[str, Any] | None = None,
) -> MeasurementRecord:
    diffs = compare(prediction, measured)
    return MeasurementRecord(
        when=time.time(),
        settings=settings,
        predicted=prediction.to_dict(),
        measured={**measured.to_dict(), **(extra_measured or {})},
        diff_pct={d.component: (None if d.diff_pct is None else round(d.diff_pct, 3)) for d in diffs},
    )


def speed_record(load: MeasurementRecord, reply: ReplySpeed) -> MeasurementRecord:
    """A record for one real reply: the load's settings and memory figures, with the reply's measured speeds and
    the speed model's prediction for that reply (measured ÷ predicted under ``diff_pct``'s ``*_ratio`` keys)."""
    measured = {
        **load.measured,
        "tg_tps": round(reply.tg_tps, 2),
        "pp_tps": round(reply.pp_tps, 1),
        "prompt_tokens": reply.prompt_tokens,
        "depth": reply.depth,
        "source": "reply",
    }
    predicted = {
        **load.predicted,
        "tg_tps": round(reply.predicted_tg_tps, 2),
        "pp_tps": round(reply.predicted_pp_tps, 1),
        "speed_confidence": reply.confidence,
    }
    ratios = {f"{k}_ratio": (None if reply.ratio(k) is None else round(reply.ratio(k) or 0.0, 3)) for k in ("tg", "pp")}
    return MeasurementRecord(time.time(), load.settings, predicted, measured, {**load.diff_pct, **ratios})


class MeasurementStore:
    """``<data_dir>/memory_measurements.json``: {version, models: {key: {path, records: [...]}}}."""

    def __init__(self, paths: AppPaths) -> None:
        self.file = paths.data_dir / "memory_measurements.json"

    def _load(self) -> dict[str, Any]:
        return read_models_store(self.file, STORE_VERSION)

    def add(self, model_path: str | Path, record: MeasurementRecord) -> None:
        data = self._load()
        key = model_key(model_path)
        entry = data["models"].setdefault(key, {"path": str(Path(model_path).expanduser().resolve()), "records": []})
        entry["records"] = [*entry.get("records", []), record.to_dict()][-MAX_RECORDS_PER_MODEL:]
        data["version"] = STORE_VERSION
        write_text_atomic(self.file, json.dumps(data, indent=1, sort_keys=True))

    def records(self, model_path: str | Path) -> list[MeasurementRecord]:
        """Records for the file as it is now (a changed size or mtime means none)."""
        try:
            key = model_key(model_path)
        except OSError:
            return []
        entry = self._load()["models"].get(key) or {}
        return [MeasurementRecord.from_dict(r) for r in entry.get("records", []) if isinstance(r, dict)]

    def latest(self, model_path: str | Path, settings: dict[str, Any] | None = None) -> MeasurementRecord | None:
        """The newest record, optionally only one taken with exactly these settings."""
        for rec in reversed(self.records(model_path)):
            if settings is None or all(rec.settings.get(k) == v for k, v in settings.items()):
                return rec
        return None


def record_load(
    paths: AppPaths,
    model_path: str | Path,
    params: LoadParams,
    loaded: dict[str, Any],
    backend: Backend | None = None,
    header: GGUFHeader | None = None,
) -> MeasurementRecord:
    """After a load: predict for the same settings, compare with the engine's ``loaded`` message, store.

    ``loaded`` is EngineSession.load()'s / the engine's ``loaded`` event (``buffers``, ``rss_bytes``,
    ``peak_rss_bytes``); ``backend`` should come from the engine's ready message
    (``Backend.from_system_info``) so repacking and offload are predicted for this build.
    """
    pred = predict(header or read_header(model_path), params, backend)
    measured = MeasuredBuffers.from_lines(list(loaded.get("buffers") or []))
    extra: dict[str, Any] = {k: loaded[k] for k in ("rss_bytes", "peak_rss_bytes", "load_s", "n_ctx") if k in loaded}
    record = make_record(pred, measured, settings_key(params, pred.settings.gpu_layers), extra)
    MeasurementStore(paths).add(model_path, record)
    return record
