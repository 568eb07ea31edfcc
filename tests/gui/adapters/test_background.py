"""Background jobs: results and errors come back on the GUI thread, and the GUI thread is favoured meanwhile."""

from __future__ import annotations

import sys
import threading

from pytestqt.qtbot import QtBot

from sizewise.gui.adapters.background import FAVOURED_SWITCH_INTERVAL_S, run_in_background


def test_a_job_runs_with_a_short_switch_interval_and_the_old_one_returns_after(qtbot: QtBot) -> None:
    before = sys.getswitchinterval()
    seen: list[tuple[float, bool]] = []
    results: list[object] = []
    run_in_background(
        lambda: seen.append((sys.getswitchinterval(), threading.get_ident() == threading.main_thread().ident)) or 7,
        results.append,
    )
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert results == [7]
    assert seen[0][0] == FAVOURED_SWITCH_INTERVAL_S and seen[0][1] is False
    assert sys.getswitchinterval() == before


def test_a_failing_job_reports_its_error_and_restores_the_interval(qtbot: QtBot) -> None:
    before = sys.getswitchinterval()
    errors: list[BaseException] = []

    def boom() -> None:
        raise ValueError("no such model")

    run_in_background(boom, lambda _r: None, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], ValueError) and "no such model" in str(errors[0])
    assert sys.getswitchinterval() == before
