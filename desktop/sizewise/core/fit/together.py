"""Do several models fit in memory at the same time? The compare view's "load them together" decision.

Each entry's need comes from its own fit verdict (``core.fit.check_fit``), so this module follows
whatever that check counts as a model's RAM and VRAM need; it only adds them up. The safety margin
(``core.fit.margin_for``: 5 %, at least 64 MiB) is held back once, on the sum: it guards against the
prediction being a little off, and N small models are not N times as uncertain as one model of their
combined size — adding N separate 64 MiB floors would refuse two tiny models on a machine that
obviously holds them. Each entry's need already carries its own engine process's overhead, which *is*
paid N times, once per worker.

The rule for RAM and VRAM is the one ``check_fit`` applies to a single model, on unified memory
(Apple silicon) too: there the GPU's share comes out of the same RAM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sizewise.core.fit.verdict import Budget, FitResult, margin_for

GiB = 1 << 30


@dataclass(frozen=True)
class TogetherFit:
    """The sums, the one margin and the budget they were checked against."""

    n: int
    ram_need: int  # every entry's predicted RAM need (process overhead included), no margin
    vram_need: int
    ram_margin: int  # held back once, on the sum
    vram_margin: int
    budget: Budget
    alone_too_large: tuple[int, ...] = ()  # indexes of entries that do not fit even on their own

    @property
    def ram_required(self) -> int:
        return self.ram_need + self.ram_margin

    @property
    def vram_required(self) -> int:
        return self.vram_need + self.vram_margin

    @property
    def ram_ok(self) -> bool:
        b = self.budget
        if b.unified and self.vram_need:
            return self.ram_required + self.vram_required <= b.ram_bytes
        return self.ram_required <= b.ram_bytes

    @property
    def vram_ok(self) -> bool:
        return self.vram_need == 0 or self.vram_required <= self.budget.vram_bytes

    @property
    def fits(self) -> bool:
        return self.n > 0 and not self.alone_too_large and self.ram_ok and self.vram_ok

    def summary(self) -> str:
        """Whether they fit, with the numbers, without what the caller does about it."""
        b = self.budget
        ram_used = self.ram_required + (self.vram_required if b.unified and self.vram_need else 0)
        if self.fits:
            ram = f"{_gib(ram_used)} of {_gib(b.ram_bytes)} GiB RAM"
            vram = f", {_gib(self.vram_required)} of {_gib(b.vram_bytes)} GiB VRAM" if self.vram_need else ""
            if self.n == 1:
                return f"Fits in memory ({ram}{vram} with margin)"
            return f"All {self.n} fit in memory at once ({ram}{vram} with margin)"
        if self.alone_too_large:
            which = ", ".join(str(i + 1) for i in self.alone_too_large)
            return f"Run {which} does not fit even on its own"
        if not self.vram_ok:
            return (
                f"Together they need {_gib(self.vram_required)} GiB of VRAM (margin included) of the "
                f"{_gib(b.vram_bytes)} available"
            )
        return f"Together they need {_gib(ram_used)} GiB of RAM (margin included) of the {_gib(b.ram_bytes)} available"

    def words(self) -> str:
        """The decision as one sentence, with its numbers (what the compare view shows before a run)."""
        if not self.fits:
            return f"{self.summary()}: running one after another."
        if self.n == 1:
            return f"{self.summary()}: one load, kept for the next run."
        return f"{self.summary()}: loading them together."

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "fits": self.fits,
            "words": self.words(),
            "need": {"ram_bytes": self.ram_need, "vram_bytes": self.vram_need},
            "safety_margin": {"ram_bytes": self.ram_margin, "vram_bytes": self.vram_margin},
            "required": {"ram_bytes": self.ram_required, "vram_bytes": self.vram_required},
            "budget": self.budget.to_dict(),
            "alone_too_large": list(self.alone_too_large),
        }


def _gib(n: int) -> str:
    """1 decimal from 1 GiB up, 2 below (two small models would otherwise all read "0.3")."""
    v = n / GiB
    return f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def fit_together(fits: Sequence[FitResult]) -> TogetherFit:
    """Whether all entries fit at once, from their single-model verdicts (all against the same budget)."""
    if not fits:
        raise ValueError("fit_together needs at least one fit result")
    budget = fits[0].budget
    if any(f.budget != budget for f in fits):
        raise ValueError("every fit result must be checked against the same budget")
    # The need without each entry's own margin: FitResult's required figure minus that margin.
    ram = sum(f.ram_required - f.ram_margin for f in fits)
    vram = sum(f.vram_required - f.vram_margin for f in fits)
    return TogetherFit(
        n=len(fits),
        ram_need=ram,
        vram_need=vram,
        ram_margin=margin_for(ram),
        vram_margin=margin_for(vram),
        budget=budget,
        alone_too_large=tuple(i for i, f in enumerate(fits) if not f.fits),
    )
