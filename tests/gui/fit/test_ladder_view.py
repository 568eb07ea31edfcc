"""The Ladder page, driven as a person would: choose a target, move the floor, double-click a cell."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from sizewise.core.fit import compute_graph, memory_model
from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.targets import find_target
from sizewise.core.fit.verdict import Budget
from sizewise.core.ladder import cells
from sizewise.core.ladder.catalogue_rows import ladder_rows
from sizewise.core.ladder.cells import LADDER_QUANTS, build_ladder
from sizewise.core.ladder.virtual_header import virtual_header
from sizewise.core.sampling import LoadParams
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import SpeedProfile
from sizewise.engine.speed.devices import target_devices
from sizewise.gui.fit.ladder_view import SLOW, TOO_LARGE, USABLE, LadderView
from tests.hub_server import HubServer

GiB = 1 << 30
STALL_LIMIT_S = 0.050  # issue 13's goal: held over rounds by tests/benchmarks/test_ladder_stall.py
# Here, one fill on a shared machine: a bound no scheduling noise reaches (CI once saw a 56 ms gap) and that the
# same ladder computed on the GUI thread passes many times over (the test after next)
SUITE_STALL_LIMIT_S = 0.250
PROFILE = SpeedProfile(bw_effective=20e9, t_fixed=0.002, source="measured", device="test CPU")


def _filled(qtbot: QtBot, view: LadderView) -> None:
    qtbot.waitUntil(lambda: bool(view.cells) and "Working" not in view.status.text(), timeout=120_000)


def test_the_ladder_fills_off_the_gui_thread_and_colours_by_the_floor(qtbot: QtBot) -> None:
    view = LadderView()
    qtbot.addWidget(view)
    view.show()
    assert "Waiting for the hardware probe" in view.status.text()
    view.set_machine(Budget(6 * GiB, 0, "a 6 GiB test budget", Backend(repack=False)), Devices(PROFILE))
    _filled(qtbot, view)
    assert view.table.columnCount() == len(LADDER_QUANTS)
    assert "6 GiB test budget" in view.status.text() and "left out" not in view.status.text()
    assert {"OLMoE 1B-7B Instruct", "gpt-oss 20B"} <= {c.model for c in view.cells}
    assert view.colour_of("SmolLM2 135M Instruct", "Q4_K_M") == USABLE.name()
    assert view.colour_of("Llama 3.3 70B Instruct", "Q4_K_M") == TOO_LARGE.name()
    small = next(c for c in view.cells if c.model == "SmolLM2 135M Instruct" and c.quant == "Q4_K_M")
    view.floor.setValue(small.tg_tps + 1)  # recoloured at once, no recomputation
    assert view.colour_of("SmolLM2 135M Instruct", "Q4_K_M") == SLOW.name()
    item = view.table.item(0, LADDER_QUANTS.index("Q4_K_M"))
    assert item is not None and "largest context" in item.toolTip() and "(measured)" in item.toolTip()


def test_a_target_choice_and_a_double_click_opens_the_repository(qtbot: QtBot) -> None:
    view = LadderView()
    qtbot.addWidget(view)
    view.where.setCurrentIndex(view.where.findData("laptop-8gb-cpu"))
    _filled(qtbot, view)
    assert "laptop-8gb-cpu" in view.status.text() and all(c.confidence == "estimate" for c in view.cells)
    with qtbot.waitSignal(view.openRepo, timeout=2000) as sig:
        view.table.cellDoubleClicked.emit(0, 0)
    assert sig.args == [view.cells[0].repo_id]


class _StallMeter:
    """A timer ticking every 10 ms on the GUI thread: the longest gap between ticks is the longest stall."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.longest = 0.0
        self.ticks = 0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now
        self.ticks += 1

    def stop(self) -> None:
        self._tick()
        self.timer.stop()


def _forget_ladder_work() -> None:
    """Empty every cache the ladder fills, so the next one computes everything (headers included)."""
    virtual_header.cache_clear()
    cells._cost.cache_clear()
    compute_graph.compute_buffer_bytes.cache_clear()
    compute_graph._recurrence.cache_clear()
    memory_model._compute.cache_clear()


def fill_for_a_gpu_target(qtbot: QtBot) -> tuple[LadderView, _StallMeter, float]:
    """The page filled for nvidia-24gb (a GPU target, whose cells search the layer split) from empty caches, with
    the stall meter running; showing every cell on the GUI thread counts too. (view, meter, seconds)."""
    view = LadderView()
    qtbot.addWidget(view)
    view.show()
    _forget_ladder_work()
    meter = _StallMeter()
    meter.start()
    started = time.perf_counter()
    view.where.setCurrentIndex(view.where.findData("nvidia-24gb"))
    _filled(qtbot, view)
    meter.stop()
    return view, meter, time.perf_counter() - started


def test_the_page_fills_for_a_gpu_target_without_stalling_the_gui(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the GUI does not stall while the ladder fills. Noise cannot touch the first check: no cell is
    worked out on the GUI thread. The stall bound is the suite's (the 50 ms goal is the benchmark's)."""
    on_gui_thread: list[bool] = []
    real = cells.ladder_cell

    def counted(*args: object, **kwargs: object) -> cells.LadderCell:
        on_gui_thread.append(threading.get_ident() == threading.main_thread().ident)  # no dummy Thread made
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cells, "ladder_cell", counted)
    view, meter, took = fill_for_a_gpu_target(qtbot)
    assert len(view.cells) == len(ladder_rows().models) * len(LADDER_QUANTS) == len(on_gui_thread)
    assert not any(on_gui_thread)
    assert any(c.verdict == "fits_partial" for c in view.cells)
    print(f"\nladder for nvidia-24gb filled in {took:.2f} s; longest GUI stall {meter.longest * 1000:.0f} ms")
    assert meter.longest < SUITE_STALL_LIMIT_S, f"the GUI stalled {meter.longest * 1000:.0f} ms"
    assert meter.ticks >= 5  # the meter ran while the ladder was worked out


def test_the_stall_meter_sees_the_ladder_computed_on_the_gui_thread(qtbot: QtBot) -> None:
    """The meter above can fail: the same ladder worked out on the GUI thread stalls it past the suite's bound."""
    _forget_ladder_work()
    target = find_target("nvidia-24gb")
    meter = _StallMeter()
    done: list[bool] = []

    def on_the_gui_thread() -> None:
        build_ladder(ladder_rows().models, target.budget(), target_devices(target.id), LoadParams(n_ctx=4096))
        done.append(True)

    meter.start()
    QTimer.singleShot(20, on_the_gui_thread)
    qtbot.waitUntil(lambda: bool(done), timeout=120_000)
    qtbot.wait(30)
    meter.stop()
    assert meter.longest > SUITE_STALL_LIMIT_S


def test_a_right_click_checks_a_cell_against_its_hub_file(qtbot: QtBot, hub_server: HubServer) -> None:
    """The menu's first action reads the Hub file's header (local Hub stand-in) and marks the cell ✓; a model
    whose repository the Hub lacks says so in the status line and leaves the cell as it was."""
    view = LadderView()
    qtbot.addWidget(view)
    view.show()
    view.set_machine(Budget(6 * GiB, 0, "a 6 GiB test budget", Backend(repack=False)), Devices(PROFILE))
    _filled(qtbot, view)
    names = [view.table.verticalHeaderItem(r).text().split("\n")[0] for r in range(view.table.rowCount())]
    col = LADDER_QUANTS.index("Q4_K_M")
    gemma = next(r for r, n in enumerate(names) if n.startswith("Gemma 3 270M"))
    smol = next(r for r, n in enumerate(names) if n.startswith("SmolLM2 135M"))

    view.refresh_from_hub(smol, col)
    qtbot.waitUntil(lambda: "Could not check" in view.status.text(), timeout=30_000)
    assert "bartowski/SmolLM2-135M-Instruct-GGUF was not found" in view.status.text()
    assert "✓" not in view.table.item(smol, col).text()

    view.refresh_from_hub(gemma, col)
    qtbot.waitUntil(lambda: "judged on" in view.status.text(), timeout=30_000)
    item = view.table.item(gemma, col)
    assert "gemma-3-270m-it-Q4_K_M.gguf itself" in view.status.text() and "%" in view.status.text()
    assert item.text().endswith("✓") and "judged on the header of gemma-3-270m-it-Q4_K_M.gguf" in item.toolTip()
    refreshed = next(c for c in view.cells if c.model.startswith("Gemma 3 270M") and c.quant == "Q4_K_M")
    assert refreshed.from_file == "gemma-3-270m-it-Q4_K_M.gguf"
