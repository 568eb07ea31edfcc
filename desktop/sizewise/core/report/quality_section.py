"""What the report says about quality: the columns, the sentences and the trade-off charts.

A report entry's ``quality`` object is the model's stored quality run (``sizewise quality``, or Measure
quality in the Compare view; core/quant/results.py), null when none was measured. Kept apart from
fit_report.py so the hardware part of the report reads on its own, and so the Compare view's table formats
the same figures the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sizewise.core.report.pareto import (
    QUALITY_METRICS,
    SIZE_AXIS,
    SPEED_AXIS,
    Metric,
    file_mib,
    quality_metric,
    tradeoff_points,
)
from sizewise.core.report.svg_scatter import scatter_svg

QUALITY_HEAD = ["Perplexity", "KLD mean", "Same top", "Reference"]
NOT_MEASURED_NOTE = "a model whose quality was not measured against a reference does not pass"


def has_quality(models: Sequence[Mapping[str, Any]]) -> bool:
    return any(isinstance(e.get("quality"), Mapping) for e in models)


def reference_name(q: Mapping[str, Any]) -> str:
    """Which file the KLD is against, in a few words."""
    if q.get("is_reference"):
        return "is the reference"
    ref = q.get("reference")
    return Path(str(ref)).name if ref else "none (perplexity only)"


def quality_cells(q: Any) -> list[str]:
    """The four quality cells of a summary row (``–`` where nothing was measured)."""
    if not isinstance(q, Mapping):
        return ["–"] * len(QUALITY_HEAD)
    ppl = f"{float(q['ppl']):.3f}" + ("" if q.get("ppl_err") is None else f" ± {float(q['ppl_err']):.3f}")
    kld = "–" if q.get("kld_mean") is None else f"{float(q['kld_mean']):.4f}"
    top = "–" if q.get("same_top_pct") is None else f"{float(q['same_top_pct']):.1f} %"
    return [ppl, kld, top, reference_name(q)]


def quality_line(q: Any) -> str:
    """One sentence for a model's own section: the figures and what they were measured on."""
    if not isinstance(q, Mapping):
        return "Quality: not measured (sizewise quality MODEL, or Measure quality in the Compare view)."
    ppl, kld, top, _ref = quality_cells(q)
    basis = f"{q.get('text')}, {q.get('chunks')} chunks of {q.get('ctx')} tokens"
    if q.get("is_reference"):
        return f"Quality: perplexity {ppl} on {basis}; the reference the other quants are measured against."
    if q.get("kld_mean") is None:
        return f"Quality: perplexity {ppl} on {basis}; no higher-precision reference, so no KLD."
    return (
        f"Quality: perplexity {ppl} on {basis}; against {reference_name(q)}: KLD mean {kld} "
        f"(99th percentile {float(q.get('kld_p99') or 0):.4f}), same top token {top}."
    )


def quality_basis(models: Sequence[Mapping[str, Any]]) -> str:
    """The sentence under the summary table: what the quality columns mean and what they were measured on."""
    texts = sorted(
        {
            f"{q.get('text')} ({q.get('chunks')} chunks of {q.get('ctx')} tokens)"
            for e in models
            if isinstance(q := e.get("quality"), Mapping)
        }
    )
    return (
        "Quality: perplexity ± its error on "
        + "; ".join(texts)
        + ". KLD mean and same top token compare each quant with its reference (the most precise version of the "
        "same model): lower KLD and a higher same-top share are closer to it. Figures measured on different "
        "texts or settings do not compare."
    )


def same_top(entry: Mapping[str, Any]) -> float | None:
    q = entry.get("quality")
    if not isinstance(q, Mapping) or q.get("same_top_pct") is None:
        return None
    return float(q["same_top_pct"])


def passes_quality_floor(entry: Mapping[str, Any], min_same_top: float | None) -> bool:
    """No floor passes everyone; a set floor needs a same-top figure at or above it."""
    if min_same_top is None:
        return True
    st = same_top(entry)
    return st is not None and st >= min_same_top


def tradeoff_svgs(
    models: Sequence[Mapping[str, Any]],
    speed_of: Callable[[Mapping[str, Any]], float | None],
    highlight: int | None = None,
) -> list[str]:
    """Quality against file size, and against generation speed when speeds were measured: two or more
    quants each, or nothing."""
    metric_key = quality_metric(models)
    if metric_key is None:
        return []
    metric = QUALITY_METRICS[metric_key]
    axes: tuple[tuple[str, Callable[[Mapping[str, Any]], float | None], Metric], ...] = (
        ("file size", file_mib, SIZE_AXIS),
        ("generation speed", speed_of, SPEED_AXIS),
    )
    out = []
    for what, x_of, axis in axes:
        points = tradeoff_points(models, x_of, metric_key)
        if len(points) >= 2:
            out.append(
                scatter_svg(
                    f"Quality against {what}",
                    points,
                    x_title=axis.title,
                    y_title=metric.title,
                    better=(axis.better, metric.better),
                    highlight=highlight,
                )
            )
    return out
