"""The Ladder page, driven as a person would: choose a target, move the floor, double-click a cell."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from sizewise.core.fit.memory_model import Backend
from sizewise.core.fit.verdict import Budget
from sizewise.core.ladder.cells import LADDER_QUANTS
from sizewise.core.speed.predicted import Devices
from sizewise.core.speed.profile import SpeedProfile
from sizewise.gui.fit.ladder_view import SLOW, TOO_LARGE, USABLE, LadderView

GiB = 1 << 30
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
    assert "6 GiB test budget" in view.status.text() and "gpt-oss" in view.status.text()
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
