"""The memory model's prediction against the buffers llama.cpp logged for one load, component by component: the
check and the printed table the accuracy tests (test_memory_model*.py) share."""

from __future__ import annotations

from collections.abc import Sequence

from sizewise.core.fit.llama_log import MeasuredBuffers
from sizewise.core.fit.memory_model import MemoryPrediction
from sizewise.core.fit.verdict import compare

LOG_ROUNDING_BYTES = 0.005 * 2**20  # llama.cpp prints "… buffer size = 92.10 MiB": two decimals per line
ALL = ("weights", "kv", "compute", "output", "total")


def component_failures(
    case: str,
    pred: MemoryPrediction,
    measured: MeasuredBuffers,
    tolerance_pct: float,
    components: Sequence[str] = ALL,
    *,
    require_logged: bool = True,
) -> list[str]:
    """Each component within ``tolerance_pct`` of the log, plus the log's rounding on each of its lines; printed
    (``pytest -s``) so the numbers are on record. ``require_logged``: a component llama.cpp did not log fails (a
    tiny vocabulary's output buffer logs as 0.00 MiB, so tests of such files turn it off)."""
    diffs = {d.component: d for d in compare(pred, measured)}
    print(
        f"\n{case} [{pred.confidence}]: measured/predicted "
        + " ".join(
            f"{c} {diffs[c].measured / 2**20:.3f}/{diffs[c].predicted / 2**20:.3f} MiB"
            f" ({100 * (diffs[c].predicted - diffs[c].measured) / max(diffs[c].measured, 1):+.3f}%)"
            for c in components
        )
    )
    failures = []
    for component in components:
        d = diffs[component]
        lines = len([b for b in measured.lines if component in (b.component, "total")])
        allowed = tolerance_pct / 100 * d.measured + LOG_ROUNDING_BYTES * max(lines, 1)
        if d.measured <= 0 and require_logged:
            failures.append(f"{case}: llama.cpp logged no {component} buffer")
        elif abs(d.predicted - d.measured) > allowed:
            failures.append(
                f"{case}: {component} off by {d.predicted - d.measured:+d} bytes "
                f"({100 * (d.predicted - d.measured) / max(d.measured, 1):+.3f}%; allowed ±{allowed:.0f})"
            )
    return failures
