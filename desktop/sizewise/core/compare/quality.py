"""Quality in a comparison: each compared model's stored quality run as its report entry shows it, and which
reference each model is measured against when Compare measures them.

The runs themselves are kept by core/quant/results.py (``QualityStore``). Two things are decided here because
they depend on the comparison as a whole, not on one model:

* **The reference's own figures.** A quant's run compares it with the most precise version of the same
  model. When that version is in the comparison too, its KL divergence from itself is 0 and it picks its
  own top token every time — by definition, not by measurement — so its entry says so (``is_reference``)
  instead of leaving the quality floor to reject the one model every other is measured against. Its
  perplexity is its own run's, or else the reference perplexity the quant's run measured.
* **Which reference to measure against** (``plan_quality_runs``): ``pick_reference`` over the compared
  models and the Library, the same rule ``sizewise quality`` follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sizewise.core.gguf.header import ModelInfo
from sizewise.core.quant.reference_pick import Candidate, pick_reference
from sizewise.core.quant.results import QualityRun

QualityLookup = Callable[[str], QualityRun | None]


def _resolved(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def quality_section(run: QualityRun) -> dict[str, Any]:
    """A run as the report's ``quality`` object (resources/report.schema.json)."""
    d = run.to_json()
    d.pop("model")
    return {**d, "is_reference": False}


def reference_section(own: QualityRun | None, measured: QualityRun, path: str) -> dict[str, Any]:
    """The figures of ``path``, the reference ``measured`` was compared with: KLD 0 and same top 100 %."""
    if own is not None:
        base = quality_section(own)
    else:
        base = {
            **quality_section(measured),
            "ppl": measured.figures.reference_ppl or measured.figures.ppl,
            "ppl_err": None,
            "eval_tokens_per_s": None,
        }
    return {
        **base,
        "kld_mean": 0.0,
        "kld_p99": 0.0,
        "same_top_pct": 100.0,
        "delta_p_mean": 0.0,
        "reference_ppl": base["ppl"],
        "reference": path,
        "is_reference": True,
    }


def quality_sections(paths: Sequence[str], lookup: QualityLookup) -> list[dict[str, Any] | None]:
    """The ``quality`` object of each compared model file (None: never measured), in order."""
    resolved = [_resolved(p) for p in paths]
    runs = {p: lookup(p) for p in dict.fromkeys(resolved)}
    out: list[dict[str, Any] | None] = []
    for p in resolved:
        own = runs[p]
        if own is not None and own.figures.kld_mean is not None:
            out.append(quality_section(own))
            continue
        measured = next((r for r in runs.values() if r is not None and r.reference == p), None)
        if measured is not None:
            out.append(reference_section(own, measured, p))
        else:
            out.append(None if own is None else quality_section(own))
    return out


def candidate(info: ModelInfo) -> Candidate:
    return Candidate(_resolved(info.path), info.architecture, info.parameters, info.quantization, info.file_bytes)


def plan_quality_runs(models: Sequence[ModelInfo], library: Iterable[Candidate]) -> list[tuple[str, str | None]]:
    """(model, reference) for each distinct compared file, in comparison order.

    The reference is the most precise version of the same architecture and parameter count among the
    compared models and the Library (``pick_reference``); None when the model is that version itself, so
    its run gives perplexity only — and, if another compared quant names it, it is that quant's reference.
    """
    compared = [candidate(i) for i in models]
    pool = {c.path: c for c in (*(replace_path(c) for c in library), *compared)}  # a compared file's header wins
    out: list[tuple[str, str | None]] = []
    for me in dict((c.path, c) for c in compared).values():
        others = [c for path, c in pool.items() if path != me.path]
        ref = pick_reference(me, others)
        out.append((me.path, ref.path if ref else None))
    return out


def replace_path(c: Candidate) -> Candidate:
    """The same candidate under its resolved path, so a file reached two ways counts once."""
    return Candidate(_resolved(c.path), c.architecture, c.parameters, c.quantization, c.size_bytes)
