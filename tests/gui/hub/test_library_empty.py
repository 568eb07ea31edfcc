"""The Library with nothing found: a panel in place of the empty table naming every folder that was scanned
(and which of them are not there) and the ways this app really has to add a model — import (the file dialog,
or dropping files on the page), Discover, or downloading in another app and looking again. It gives way to
the table as soon as a model is found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QWidget
from pytestqt.qtbot import QtBot

from sizewise.core.hub.library import DiscoveryRoots, Library, LibraryEntry, verified_store_for
from sizewise.core.paths import AppPaths
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.hub.library_view import LibraryView
from sizewise.gui.shell.main_window import MainWindow
from tests.hub_fixtures import closed_port
from tests.hub_server import make_gguf


@pytest.fixture
def roots(tmp_path: Path) -> DiscoveryRoots:
    apps = tmp_path / "apps"
    for there in (apps / "hf-cache", apps / "lmstudio" / "models"):
        there.mkdir(parents=True)
    return DiscoveryRoots(
        hf_cache=apps / "hf-cache",
        lm_studio=(apps / "lmstudio" / "models", apps / "cache" / "lm-studio" / "models"),
        ollama=(apps / "ollama" / "models",),
        gpt4all=(apps / "gpt4all",),
    )


@pytest.fixture
def view(qtbot: QtBot, roots: DiscoveryRoots, app_paths: AppPaths) -> Iterator[LibraryView]:
    library = Library(app_paths.data_dir, app_paths.cache_dir, roots, verified=verified_store_for(app_paths))
    v = LibraryView(library)
    qtbot.addWidget(v)
    v.show()
    yield v
    v.shutdown()
    wait_for_background()


def _refreshed(qtbot: QtBot, view: LibraryView) -> list[LibraryEntry]:
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000) as blocker:
        view.refresh()
    return list(blocker.args[0])


def test_an_empty_library_names_every_folder_it_scanned(qtbot: QtBot, view: LibraryView, roots: DiscoveryRoots) -> None:
    assert _refreshed(qtbot, view) == []
    assert view.pages.currentWidget() is view.empty and view.empty.isVisible() and not view.table.isVisible()
    assert view.empty.title.text() == "No models found on this computer"
    scanned = view.scanned_note.text()
    assert view.scanned_note.isVisible()
    assert f"Hugging Face cache: <code>{roots.hf_cache}</code></li>" in scanned  # there: no remark
    assert f"LM Studio: <code>{roots.lm_studio[0]}</code></li>" in scanned
    for app, missing in (("LM Studio", roots.lm_studio[1]), ("Ollama", roots.ollama[0]), ("GPT4All", roots.gpt4all[0])):
        assert f"{app}: <code>{missing}</code> (not there)</li>" in scanned
    assert "Files you import: none yet" in scanned
    how = view.folders_note.text()
    assert "LM Studio" in how and "downloadsFolder" in how and "OLLAMA_MODELS" in how and "HF_HUB_CACHE" in how
    labels = [b.text() for b in (view.empty_import, view.empty_discover, view.empty_refresh)]
    assert labels == ["Import a GGUF file…", "Find one on Discover", "Look again"]
    assert "drop them on this page" in view.empty.caption(view.empty_import).text()
    assert not view.load_button.isEnabled() and not view.delete_button.isEnabled()
    assert view.status.text() == ""  # the panel says it all


def test_import_from_the_panel_fills_the_library(
    qtbot: QtBot, view: LibraryView, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _refreshed(qtbot, view) == []
    model = tmp_path / "mine.gguf"
    model.write_bytes(make_gguf("mine"))
    asked: list[str] = []

    def choose(_parent: QWidget, title: str, _start: str, _filter: str) -> tuple[list[str], str]:
        asked.append(title)
        return [str(model)], "GGUF models (*.gguf)"

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(choose))
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000) as blocker:
        qtbot.mouseClick(view.empty_import, Qt.MouseButton.LeftButton)
    assert asked == ["Import models"]  # the same dialog as the Import… button
    assert [e.name for e in blocker.args[0]] == ["mine"]
    assert view.pages.currentWidget() is view.table and view.table.isVisible() and not view.empty.isVisible()
    assert view.load_button.isEnabled() and view.status.text() == "1 model"


def test_look_again_finds_a_model_another_app_downloaded(
    qtbot: QtBot, view: LibraryView, roots: DiscoveryRoots
) -> None:
    assert _refreshed(qtbot, view) == []
    (roots.lm_studio[0] / "someone" / "tiny-GGUF").mkdir(parents=True)
    (roots.lm_studio[0] / "someone" / "tiny-GGUF" / "tiny-Q4_K_M.gguf").write_bytes(make_gguf("tiny", file_type=15))
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000) as blocker:
        qtbot.mouseClick(view.empty_refresh, Qt.MouseButton.LeftButton)
    assert [(e.name, e.source) for e in blocker.args[0]] == [("tiny", "lm-studio")]
    assert view.pages.currentWidget() is view.table


def test_find_one_on_discover_shows_the_discover_page(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")  # Discover checks the Hub on first sight
    window.show_view(window.library_page)
    library = window.library_view
    assert library is not None
    with qtbot.waitSignal(library.discoverRequested):
        qtbot.mouseClick(library.empty_discover, Qt.MouseButton.LeftButton)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Discover" and window.discover_view is not None
    qtbot.waitUntil(lambda: "is unreachable" in window.discover_view.status.text(), timeout=10_000)
    wait_for_background()
