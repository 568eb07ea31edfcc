"""Issue 13's goal for the Ladder page: no GUI stall over 50 ms while the ladder fills.

The page is filled for a GPU target (nvidia-24gb: every cell searches the layer split) from empty caches, several
rounds in one process, with a 10 ms timer on the GUI thread; the longest gap between its ticks is that round's
longest stall. One gap is at the mercy of whatever else the shared machine runs, so the goal is held on the
median over rounds, and each round's figure and the gaps over the goal are printed. The main suite
(tests/gui/fit/test_ladder_view.py) checks, beyond noise, that no cell is worked out on the GUI thread.

Run: pytest -m benchmarks tests/benchmarks/test_ladder_stall.py -s
"""

from __future__ import annotations

import os
import statistics

import pytest
from pytestqt.qtbot import QtBot

from tests.gui.fit.test_ladder_view import STALL_LIMIT_S, fill_for_a_gpu_target

pytestmark = pytest.mark.benchmarks

ROUNDS = int(os.environ.get("SIZEWISE_BENCH_ROUNDS", "5"))


def test_the_ladder_page_never_stalls_the_gui_over_50_ms(qtbot: QtBot) -> None:
    longest: list[float] = []
    for _ in range(ROUNDS):
        view, meter, took = fill_for_a_gpu_target(qtbot)
        longest.append(meter.longest)
        print(f"\nfilled in {took:.2f} s, {meter.ticks} ticks, longest gap {meter.longest * 1000:.0f} ms")
        view.close()
    median = statistics.median(longest)
    over = sum(s > STALL_LIMIT_S for s in longest)
    print(
        f"longest GUI stall over {ROUNDS} fills: median {median * 1000:.0f} ms "
        f"(min {min(longest) * 1000:.0f}, max {max(longest) * 1000:.0f}); {over} of {ROUNDS} fills over "
        f"{STALL_LIMIT_S * 1000:.0f} ms; ratio of the median to the goal {median / STALL_LIMIT_S:.2f}"
    )
    assert median <= STALL_LIMIT_S
