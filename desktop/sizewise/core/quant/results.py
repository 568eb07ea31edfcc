"""Quality runs kept per model file, so Compare, the report and the trade-off chart can show them later.

One JSON file under the app's data dir (``quality_results.json``), replaced atomically; records are keyed
by the file's path, size and modification time, like memory measurements (core/fit/measurements.py): a
replaced file starts with no figures rather than inheriting numbers that no longer describe it.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizewise.core.atomic import file_identity, read_models_store, write_text_atomic
from sizewise.core.paths import AppPaths
from sizewise.core.quant.quality import QualityFigures

STORE_VERSION = 1
MAX_RUNS_PER_MODEL = 20


file_key = file_identity


@dataclass(frozen=True)
class QualityRun:
    """One ``sizewise quality`` run: the figures and what they were measured on."""

    model: str
    figures: QualityFigures
    reference: str | None
    text_sha256: str
    text_name: str
    ctx: int
    chunks: int
    eval_tokens_per_s: float
    when: float

    def to_json(self) -> dict[str, Any]:
        """The ``quality --json`` contract (issue 16): flat figure fields plus what was measured."""
        return {
            "model": self.model,
            **self.figures.to_dict(),
            "reference": self.reference,
            "text_sha256": self.text_sha256,
            "text": self.text_name,
            "ctx": self.ctx,
            "chunks": self.chunks,
            "eval_tokens_per_s": self.eval_tokens_per_s,
            "when": self.when,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QualityRun:
        fig: dict[str, Any] = {k: d.get(k) for k in QualityFigures.__dataclass_fields__}
        return cls(
            model=str(d["model"]),
            figures=QualityFigures(**fig),
            reference=d.get("reference"),
            text_sha256=str(d.get("text_sha256", "")),
            text_name=str(d.get("text", "")),
            ctx=int(d.get("ctx", 0)),
            chunks=int(d.get("chunks", 0)),
            eval_tokens_per_s=float(d.get("eval_tokens_per_s", 0.0)),
            when=float(d.get("when", 0.0)),
        )


def make_run(model: str | Path, result: dict[str, Any], reference: str | None, text_name: str) -> QualityRun:
    """A run from an evaluation job's ``finished`` event (engine/quant/evaluate.py)."""
    fig = result["figures"]
    return QualityRun(
        model=str(Path(model).expanduser().resolve()),
        figures=QualityFigures(**{k: fig.get(k) for k in QualityFigures.__dataclass_fields__}),
        reference=str(Path(reference).expanduser().resolve()) if reference else None,
        text_sha256=str(result["text_sha256"]),
        text_name=text_name,
        ctx=int(result["ctx"]),
        chunks=int(result["chunks"]),
        eval_tokens_per_s=float(result["eval_tokens_per_s"]),
        when=time.time(),
    )


class QualityStore:
    def __init__(self, paths: AppPaths) -> None:
        self.file = paths.data_dir / "quality_results.json"

    def _load(self) -> dict[str, Any]:
        return read_models_store(self.file, STORE_VERSION)

    def add(self, run: QualityRun) -> None:
        data = self._load()
        entry = data["models"].setdefault(file_key(run.model), {"path": run.model, "runs": []})
        entry["runs"] = [*entry.get("runs", []), run.to_json()][-MAX_RUNS_PER_MODEL:]
        data["version"] = STORE_VERSION
        write_text_atomic(self.file, json.dumps(data, indent=1, sort_keys=True))

    def runs(self, model: str | Path) -> list[QualityRun]:
        try:
            key = file_key(model)
        except OSError:
            return []
        out = []
        for r in (self._load()["models"].get(key) or {}).get("runs", []):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                out.append(QualityRun.from_json(r))
        return out

    def latest(self, model: str | Path, *, with_reference: bool = False) -> QualityRun | None:
        for run in reversed(self.runs(model)):
            if not with_reference or run.figures.kld_mean is not None:
                return run
        return None

    def preferred(self, model: str | Path) -> QualityRun | None:
        """The run Compare and the report show: the latest against a reference, else the latest.

        A later perplexity-only run (``--no-reference``) must not hide the KL figures the trade-off is about.
        """
        runs = self.runs(model)
        with_kld = [r for r in runs if r.figures.kld_mean is not None]
        chosen = with_kld or runs
        return chosen[-1] if chosen else None
