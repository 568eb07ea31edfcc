"""Steady speed figures from timings on a shared machine: the fastest repetition (or the median token) of each
round, then the median over the rounds that were not slowed as a whole.

Why rounds: other programs can only ever add time to a run, so among a few repetitions run back to back the
fastest is the least disturbed — the standard estimator for noise that only adds (generation times each token,
and its median token steps over the disturbed ones the same way). But on a shared two-core
machine a disturbance usually outlasts a bench: tokens were uniformly slower for seconds at a time (the median
token time of a slowed round was as slow as its mean), a whole bench ran 40 % slower with its repetitions
within 7 % of each other (357 against 596 tokens/s on one model in two calibrations a minute apart), and the
fastest repetition of such a round is slow too. So calibration measures every model once per round, spreads
the rounds over its run, and combines them:

* a round is *steady* when its benches took at most STEADY_SLACK longer than the model's fastest round — the
  bench time (prompt runs and the untimed deep decodes included) is a second witness of a slowed round, one
  that the generation figure being judged does not provide itself;
* a model gets more rounds (up to a limit) until it has enough steady ones;
* each figure is the median over the steady rounds, so one disturbed round among them still cannot move it.

A machine busy through most of the run leaves no steady majority, and its points then miss any steady speed,
which calibration refuses.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

STEADY_SLACK = 0.3  # quiet rounds' bench times were within 20 % of each other here; disturbed ones 1.6-14×


def fastest_per_token(samples_s: Sequence[float], n_tokens: int) -> float:
    """Seconds per token of the fastest repetition (0.0 when there is none, which the caller refuses)."""
    times = [s for s in samples_s if s > 0]
    return min(times) / n_tokens if times and n_tokens > 0 else 0.0


def median_token(token_s: Sequence[float]) -> float:
    """Seconds of the median token (0.0 when there is none, which the caller refuses): one token's time, unlike a
    run's, can be slowed by a disturbance of a millisecond, and the median steps over any few such tokens."""
    times = [s for s in token_s if s > 0]
    return statistics.median(times) if times else 0.0


@dataclass(frozen=True)
class RoundFigures:
    """One round's seconds per token for one model (generation at depth 0 and deeper, prompt processing from an
    empty cache), how long its benches took, and prompt processing at the deeper depth (0: not measured)."""

    tg: float
    tg_deep: float
    pp: float
    bench_s: float = 0.0
    pp_deep: float = 0.0

    @property
    def complete(self) -> bool:
        return min(self.tg, self.tg_deep, self.pp) > 0


def steady_rounds(rounds: Sequence[RoundFigures]) -> list[RoundFigures]:
    """The rounds whose benches took at most STEADY_SLACK longer than the fastest round's."""
    if not rounds:
        return []
    fastest = min(r.bench_s for r in rounds)
    return [r for r in rounds if r.bench_s <= fastest * (1 + STEADY_SLACK)]


def steady(rounds: Sequence[RoundFigures]) -> RoundFigures:
    """The median of each figure over the steady rounds (with two, their mean; with one, itself)."""
    kept = steady_rounds(rounds)
    if not kept:
        raise ValueError("no rounds to combine")
    return RoundFigures(
        tg=statistics.median(r.tg for r in kept),
        tg_deep=statistics.median(r.tg_deep for r in kept),
        pp=statistics.median(r.pp for r in kept),
        bench_s=statistics.median(r.bench_s for r in kept),
        pp_deep=statistics.median(r.pp_deep for r in kept),
    )
