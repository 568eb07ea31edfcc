"""Steady figures over rounds and the fit's judgement of them, on made-up timings (no llama.cpp)."""

from __future__ import annotations

import random

import pytest

from sizewise.core.speed.fit import TgPoint, fit_tg
from sizewise.core.speed.profile import KV
from sizewise.core.speed.steady import RoundFigures, fastest_per_token, median_token, steady, steady_rounds
from sizewise.engine.speed.calibrate import MAX_FIT_ERROR, OUTLIERS

# The calibration's layout: 3 sizes × 2 types × 2 depths, seconds per token from a known profile.
MODELS = [(w, layers, k) for w, layers in ((20e6, 4), (30e6, 24), (120e6, 12)) for k in ("Q8_0", "Q4_K_M", "Q2_K")]
BW = {"Q8_0": 20e9, "Q4_K_M": 16e9, "Q2_K": 12e9, KV: 8e9}


def _true(w: float, layers: int, key: str, kv: float) -> float:
    return 0.0005 + layers * 2e-5 + w / BW[key] + kv / BW[KV]


def _fit_error(rounds_by_model: list[list[RoundFigures]]) -> float:
    points = []
    for (w, layers, key), rounds in zip(MODELS, rounds_by_model, strict=True):
        s = steady(rounds)
        points.append(TgPoint({key: int(w), KV: 100_000}, s.tg, layers))
        points.append(TgPoint({key: int(w), KV: 4_000_000}, s.tg_deep, layers))
    return fit_tg(points).worst_error


def _measure(model: tuple[float, int, str], slow: dict[int, float], rng: random.Random) -> list[RoundFigures]:
    """Three rounds of one model, each within 3 % of the truth, round ``i`` slowed ``slow[i]``×."""
    w, layers, key = model
    out = []
    for i in range(3):
        f = slow.get(i, 1.0)
        jitter = [rng.uniform(1.0, 1.03) for _ in range(3)]
        out.append(
            RoundFigures(
                tg=_true(w, layers, key, 100_000) * f * jitter[0],
                tg_deep=_true(w, layers, key, 4_000_000) * f * jitter[1],
                pp=1e-4 * f * jitter[2],
            )
        )
    return out


def test_fastest_repetition_per_token_ignores_missing_runs() -> None:
    assert fastest_per_token([0.05, 0.032, 0.04], 16) == pytest.approx(0.002)
    assert fastest_per_token([0.0, 0.048], 16) == pytest.approx(0.003)
    assert fastest_per_token([], 16) == 0.0 and not RoundFigures(0.0, 1.0, 1.0).complete


def test_the_median_token_steps_over_a_few_slowed_tokens_and_ignores_missing_ones() -> None:
    tokens = [0.002, 0.0021, 0.0019, 0.009, 0.002, 0.0, 0.015]  # two tokens slowed by a hiccup, one not timed
    assert median_token(tokens) == pytest.approx(0.00205)
    assert median_token([0.003]) == 0.003 and median_token([]) == 0.0 and median_token([0.0]) == 0.0


def test_rounds_whose_benches_were_slowed_as_a_whole_are_set_aside() -> None:
    quiet = [RoundFigures(0.0011, 0.0015, 1e-4, 1.0), RoundFigures(0.0010, 0.0014, 1e-4, 1.1)]
    slowed = RoundFigures(0.0019, 0.0025, 2e-4, 1.7)
    assert steady_rounds([*quiet, slowed]) == quiet
    assert steady([slowed, *quiet]).tg == pytest.approx(0.00105)  # without it: the median would be 0.0011
    assert steady_rounds([slowed]) == [slowed] and steady_rounds([]) == []


def test_one_disturbed_round_per_point_leaves_the_fit_steady() -> None:
    rng = random.Random(3)
    quiet = [_measure(m, {}, rng) for m in MODELS]
    burst = [_measure(m, {rng.randrange(3): rng.uniform(1.5, 4.0)}, rng) for m in MODELS]
    assert _fit_error(quiet) < 0.05
    assert _fit_error(burst) < 0.05  # each point's median is one of its undisturbed rounds
    single = [[r[i % 3]] for i, r in enumerate(burst)]  # the old way: one round counts
    assert _fit_error(single) > MAX_FIT_ERROR


def test_points_disturbed_in_most_of_their_rounds_still_show_as_a_large_fit_error() -> None:
    """The median does not hide a machine busy through most of the run (the minimum over rounds would)."""
    rng = random.Random(4)
    busy = [_measure(m, {0: 2.5, 2: 3.0} if i % 2 else {}, rng) for i, m in enumerate(MODELS)]
    assert _fit_error(busy) > MAX_FIT_ERROR


def test_the_judge_sets_one_outlying_point_aside_but_not_two() -> None:
    points = [
        TgPoint({key: int(w), KV: kv}, _true(w, layers, key, kv), layers)
        for w, layers, key in MODELS
        for kv in (100_000, 4_000_000)
    ]

    def slowed(i: int) -> TgPoint:  # a small model's point, the noisy kind, 5x: two CPU hogs slowed tokens 10-300x
        return TgPoint(points[i].bytes_by_key, points[i].seconds * 5.0, points[i].n_layer)

    one = [slowed(0), *points[1:]]
    two = [slowed(0), slowed(1), *points[2:]]
    assert fit_tg(points).error_beyond(0) < 0.01
    assert fit_tg(one).worst_error > MAX_FIT_ERROR and fit_tg(one).error_beyond(OUTLIERS) < MAX_FIT_ERROR
    assert fit_tg(two).error_beyond(OUTLIERS) > MAX_FIT_ERROR
