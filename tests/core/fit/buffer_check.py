"""The memory model's prediction against the buffers llama.cpp logged for one load, component by component: the
check and the printed table the accuracy tests (test_memory_model*.py) share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass
class WorstErrors:
    """The worst error per component and architecture over a matrix of loads: the benchmarks' summary table.

    Two figures per component, each the worst over the loads: the prediction's signed distance from the log in
    percent of the logged size, and what is left of it beyond the log's rounding (0.005 MiB per logged line) — the
    part the accuracy tests bound by ``tolerance_pct``. A small buffer (a 16 KiB recurrent state printed "0.02 MiB")
    can be far off in the first figure and exact in the second."""

    tolerance_pct: float = 1.0
    rows: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def add(self, arch: str, component: str, predicted: int, measured: int, lines: int) -> None:
        if measured <= 0:  # not logged (a dummy vocabulary's output buffer prints as 0.00 MiB): nothing measured
            return
        diff = predicted - measured
        pct = 100 * diff / measured
        beyond = 100 * max(0.0, abs(diff) - LOG_ROUNDING_BYTES * max(lines, 1)) / measured
        row = self.rows.setdefault(arch, {})
        old = row.get(component)
        if old is not None:
            pct, beyond = (pct if abs(pct) > abs(old[0]) else old[0]), max(beyond, old[1])
        row[component] = (pct, beyond)

    def add_load(self, arch: str, pred: MemoryPrediction, measured: MeasuredBuffers) -> None:
        """Every component of one load, the recurrent state (RS buffer) apart when the model has one."""
        for d in compare(pred, measured):
            if d.component in ALL:
                lines = len([b for b in measured.lines if d.component in (b.component, "total")])
                self.add(arch, d.component, d.predicted, d.measured, lines)
        rs_lines = len([b for b in measured.lines if b.kind == "RS"])
        if rs_lines or pred.recurrent_bytes:
            self.add(arch, "recurrent", pred.recurrent_bytes, measured.recurrent(), rs_lines)

    def failures(self) -> list[str]:
        return [
            f"{arch}: {component} {beyond:.3f}% beyond the log's rounding (bound {self.tolerance_pct}%)"
            for arch, row in self.rows.items()
            for component, (_, beyond) in row.items()
            if beyond > self.tolerance_pct
        ]

    def table(self) -> str:
        """Markdown: one row per architecture, per component "signed error / error beyond the log's rounding", both
        in percent ("—": not logged)."""
        columns = ("weights", "kv", "recurrent", "compute", "output", "total")
        out = ["| architecture | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for arch, row in self.rows.items():
            cells = [f"{row[c][0]:+.3f} / {row[c][1]:.2f}" if c in row else "—" for c in columns]
            out.append(f"| {arch} | " + " | ".join(cells) + " |")
        return "\n".join(out)
