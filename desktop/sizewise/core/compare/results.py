"""What one run of a comparison produced, as plain data: the model facts and verdict, the reply and its
figures, the benchmark, the memory measured and the timings. The runner fills a ``RunResult`` in as the
engine answers; the view shows it and ``core.compare.report`` writes it down, so it lives in core, free of Qt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sizewise.core.compare.plan import RunSpec, describe_settings, inspect_cached
from sizewise.core.fit.verdict import FitResult
from sizewise.core.gguf.header import ModelInfo
from sizewise.core.sampling import SamplingParams


@dataclass
class RunResult:
    """One run's outcome, filled in as its engine answers; what never arrived stays None."""

    spec: RunSpec
    label: str = ""
    info: ModelInfo | None = None
    fit: FitResult | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    loaded: dict[str, Any] | None = None
    sampling: SamplingParams | None = None
    text: str = ""
    stats: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    baseline_rss: int | None = None
    error: str | None = None
    done: bool = False
    pid: int | None = None  # the engine worker that answered
    load_span: tuple[float, float] | None = None  # time.monotonic(): load sent → loaded
    gen_span: tuple[float, float] | None = None  # time.monotonic(): reply asked → finished
    reused: bool = False  # the engine was still loaded from the previous run: no load this time
    side_by_side: bool = False  # generated at the same time as other runs: its reply speeds share the CPU
    remote: dict[str, Any] | None = None  # a server's run: what the server said (model, timings, memory)

    def reply(self, prompt: str) -> dict[str, Any] | None:
        if self.stats is None or self.sampling is None:
            return None
        s = self.stats
        out = {
            "text": self.text,
            "tokens": int(s.get("tokens") or 0),
            "tg_tps": float(s.get("tg_tps") or 0.0),
            "pp_tps": float(s.get("pp_tps") or 0.0),
            "ttft_ms": float(s.get("ttft_ms") or 0.0),
            "prompt_tokens": int(s.get("prompt_tokens") or 0),
            "finish_reason": s.get("finish_reason"),
            "seed": s.get("seed", self.sampling.seed),
            "sampling": self.sampling.to_dict(),
            "prompt": prompt,
        }
        if self.side_by_side:
            out["speeds_shared_cpu"] = True
        return out

    @property
    def peak_rss(self) -> int | None:
        peaks = [
            int(x) for x in ((self.stats or {}).get("peak_rss_bytes"), (self.bench or {}).get("peak_rss_bytes")) if x
        ]
        return max(peaks) if peaks else None

    @property
    def speed_shared(self) -> bool:
        """Its generation figure (the reply's, unless a benchmark measured it alone) shared the CPU."""
        return self.side_by_side and self.stats is not None and not (self.bench or {}).get("tg")


def default_label(info: ModelInfo, spec: RunSpec) -> str:
    """A run's name when the user gave none: the model, its quant and the settings that tell runs apart."""
    return spec.label or f"{info.name} {info.quantization} · {describe_settings(spec.load, spec.gpu_layers)}"


def planned_results(specs: Iterable[RunSpec]) -> list[RunResult]:
    """The runs before any engine answered: the model facts only, so a table can list them (and their stored
    quality figures) before a comparison ran. Blocking (reads headers): call it off the GUI thread."""
    out = []
    for spec in specs:
        r = RunResult(spec=spec, label=spec.label)
        if spec.server:  # nothing to read here: the server says what it serves once connected
            r.label = spec.label or spec.server
            out.append(r)
            continue
        try:
            r.info = inspect_cached(spec.path)[1]
        except Exception as exc:  # a missing or broken file: its run says why, as a failed run would
            r.error, r.label = str(exc), spec.label or spec.path
        else:
            r.label = default_label(r.info, spec)
        out.append(r)
    return out


def speeds_shared(results: Iterable[RunResult]) -> bool:
    """Some generation figure was measured while other runs generated too (shared CPU)."""
    return any(r.speed_shared for r in results)
