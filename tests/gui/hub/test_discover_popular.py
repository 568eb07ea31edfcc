"""Discover before a search: the curated catalogue with estimated verdicts for the chosen hardware, and choosing a
family searches the (local stand-in) Hub for its repository and opens it with the real header-based verdicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from sizewise.core.fit.targets import custom_budget
from sizewise.core.fit.verdict import Budget
from sizewise.core.hub.browse import FitCheck, HubBrowser
from sizewise.core.hub.catalogue import KNOWN_FIELDS, load_catalogue
from sizewise.core.hub.remote_fit import remote_fit_check
from sizewise.core.paths import AppPaths
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.hub.discover_view import DiscoverView
from sizewise.gui.hub.popular_models import FIT_COLUMN
from sizewise.gui.shell.main_window import MainWindow
from tests.hub_server import HubServer

GEMMA_REPO = "unsloth/gemma-3-270m-it-GGUF"  # in the catalogue and on the local Hub stand-in


def budget_for(target: str | None) -> Budget:
    """This machine = 16 GiB of RAM; the 'board' target = 1 GiB."""
    return custom_budget(ram_gib=16 if target is None else 1)


def fit_for(target: str | None) -> FitCheck:
    return remote_fit_check(budget_for(target))


@pytest.fixture
def view(qtbot: QtBot, hub_server: HubServer) -> Iterator[DiscoverView]:
    v = DiscoverView(
        HubBrowser(), None, fit_factory=fit_for, targets=[("Small board", "board")], budget_factory=budget_for
    )
    qtbot.addWidget(v)
    with qtbot.waitSignal(v.estimatesShown, timeout=10_000):
        v.show()
    yield v
    wait_for_background()


def _row(view: DiscoverView, name: str) -> int:
    return next(r for r, f in enumerate(view.popular.families) if f.name == name)


def test_before_a_search_the_catalogue_shows_with_estimates(qtbot: QtBot, view: DiscoverView) -> None:
    assert view.pages.currentWidget() is view.popular and view.popular.isVisible()
    assert not view.popular_button.isEnabled()
    table = view.popular.table
    assert table.rowCount() == len(load_catalogue()) >= 8
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers[3] == "Memory (estimate)" and headers[FIT_COLUMN] == "Fits? (estimate)"
    assert "<b>estimates</b>" in view.popular.explain.text()
    assert "this machine" in view.popular.budget_line.text() and "16.00 GiB of RAM" in view.popular.budget_line.text()
    smol, phi = _row(view, "SmolLM2 135M Instruct"), _row(view, "Phi-3.5 mini Instruct")
    assert view.popular.verdict_text(smol) == view.popular.verdict_text(phi) == "Fits"
    assert table.item(phi, FIT_COLUMN).toolTip().startswith("Estimate from the catalogue at 2,048 tokens of context")
    assert table.item(smol, 2).text().startswith("≈ ")  # an approximate file size says so
    with qtbot.waitSignal(view.estimatesShown, timeout=10_000):
        view.target.setCurrentIndex(view.target.findData("board"))
    assert view.popular.verdict_text(smol) == "Fits" and view.popular.verdict_text(phi) == "Too big"
    assert "Small board" in view.popular.budget_line.text()
    assert view.status.text() == ""  # the Hub was reachable: nothing to say


def test_choosing_a_family_searches_and_opens_its_repository(qtbot: QtBot, view: DiscoverView) -> None:
    button = view.popular.table.cellWidget(_row(view, "Gemma 3 270M Instruct"), view.popular.table.columnCount() - 1)
    assert isinstance(button, QPushButton) and button.text() == "Show files"
    assert button.accessibleName() == "Show the files of Gemma 3 270M Instruct"
    with (
        qtbot.waitSignal(view.searchFinished, timeout=15_000),
        qtbot.waitSignal(view.filesShown, timeout=15_000) as shown,
        qtbot.waitSignal(view.fitFinished, timeout=30_000) as judged,
    ):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert shown.args[0].repo_id == GEMMA_REPO and view.query.text() == GEMMA_REPO
    assert view.pages.currentWidget() is view.results
    assert view.repos.item(0, 0).text() == GEMMA_REPO
    assert view.files.item(0, 0).text() == "gemma-3-270m-it-Q4_K_M.gguf"
    # the real verdict, from the file's header on the Hub, not the catalogue's estimate
    assert judged.args[0].models[0].fit.reason.startswith("Fits on the CPU")
    assert view.files.item(0, 3).text() == "Fits"
    assert view.popular_button.isEnabled()
    view.popular_button.click()
    assert view.pages.currentWidget() is view.popular and not view.popular_button.isEnabled()


def test_clicking_a_row_chooses_the_family_too(qtbot: QtBot, view: DiscoverView) -> None:
    view.fit_factory = None
    with qtbot.waitSignal(view.filesShown, timeout=15_000) as shown:
        view.popular.table.cellClicked.emit(_row(view, "Gemma 3 270M Instruct"), 0)
    assert shown.args[0].repo_id == GEMMA_REPO


def test_a_broken_catalogue_is_one_sentence_on_the_page(qtbot: QtBot, hub_server: HubServer) -> None:
    problem = "The model catalogue entry “X” in catalogue.json has no n_layer."
    v = DiscoverView(HubBrowser(), None, fit_factory=None, targets=[], catalogue=([], problem), budget_factory=None)
    qtbot.addWidget(v)
    v.show()
    assert v.popular.problem.isVisible() and v.popular.problem.text() == problem
    assert v.popular.table.rowCount() == 0
    wait_for_background()


def test_a_broken_catalogue_file_is_said_at_start_up(
    qtbot: QtBot, app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app checks resources/catalogue.json when it starts: one sentence naming the entry in the banner."""
    entry = {name: value for name, value in vars(load_catalogue()[0]).items() if name in KNOWN_FIELDS}
    entry.update(name="Tiny", repo_id="someone/Tiny-GGUF", q4_k_m={"bytes": 1000, "approx": True})
    del entry["n_layer"]
    broken = tmp_path / "catalogue.json"
    broken.write_text(json.dumps({"families": [entry]}), encoding="utf-8")
    monkeypatch.setattr("sizewise.core.hub.catalogue.resource_path", lambda _name: broken)
    w = MainWindow(app_paths)
    qtbot.addWidget(w)
    w.show()
    assert w.banner.isVisible() and w.banner.property("level") == "warning"
    assert w.banner.text() == "The model catalogue entry “Tiny” in catalogue.json has no n_layer."
    w.close()
