"""The Downloads/Library view: progress bars, pause/resume/cancel buttons, import (dialog path and drag and
drop), delete with confirmation, missing files, and the loadRequested signal — against the local Hub."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from sizewise.core.hub.browse import HubSettings
from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.core.hub.library import DiscoveryRoots, Library, verified_store_for
from sizewise.core.hub.transfer import DownloadOptions, DownloadState
from sizewise.core.paths import AppPaths
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.hub.library_view import LibraryView
from tests.hub_server import HubServer, make_gguf

FAST = DownloadOptions(stall_timeout_s=1, backoff_base_s=0.05, max_attempts=3, disk_margin_bytes=1 << 20)
TINY = "sizewise-test/tiny-GGUF"


@pytest.fixture
def library(hub_server: HubServer, app_paths: AppPaths) -> Library:
    roots = DiscoveryRoots(hf_cache=HubSettings.from_env().cache_dir)
    return Library(app_paths.data_dir, app_paths.cache_dir, roots, verified=verified_store_for(app_paths))


@pytest.fixture
def queue(app_paths: AppPaths) -> DownloadQueue:
    return DownloadQueue(options=FAST, verified_store=verified_store_for(app_paths))


@pytest.fixture
def view(qtbot: QtBot, library: Library, queue: DownloadQueue) -> Iterator[LibraryView]:
    v = LibraryView(library, queue)
    qtbot.addWidget(v)
    v.show()
    yield v
    v.shutdown()
    wait_for_background()


def _refreshed(qtbot: QtBot, view: LibraryView) -> list:  # type: ignore[type-arg]
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000) as blocker:
        view.refresh()
    return list(blocker.args[0])


def _drag_enter(view: LibraryView, mime: QMimeData) -> QDragEnterEvent:
    # QPoint works on every PySide6 the project allows (6.12 deprecates it in favour of QPointF, 6.8 lacks that).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return QDragEnterEvent(
            view.rect().center(),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )


def _col(view: LibraryView, row: int, name: str) -> str:
    from sizewise.gui.hub.library_view import LIBRARY_COLUMNS

    item = view.table.item(row, LIBRARY_COLUMNS.index(name))
    return item.text() if item is not None else ""


def test_a_download_shows_progress_then_appears_verified(
    qtbot: QtBot, view: LibraryView, queue: DownloadQueue, hub_server: HubServer
) -> None:
    assert _refreshed(qtbot, view) == []
    hub_server.faults.rate_bps = 1_500_000
    job = queue.add(TINY, "tiny-Q4_K_M.gguf")
    qtbot.waitUntil(lambda: job in view.download_rows, timeout=10_000)
    row = view.download_rows[job]
    # Bytes, speed and an ETA while it runs:
    qtbot.waitUntil(lambda: 0 < row.bar.value() < 1000 and "/s, " in row.detail.text(), timeout=15_000)
    assert row.detail.text().endswith("s left") and " of 4.0 MiB, " in row.detail.text()
    with (
        qtbot.waitSignal(view.downloadFinished, timeout=30_000),
        qtbot.waitSignal(view.libraryRefreshed, timeout=30_000),
    ):
        pass
    assert row.bar.value() == 1000 and row.state == DownloadState.DONE
    assert view.table.rowCount() == 1
    assert _col(view, 0, "Source") == "Downloaded" and _col(view, 0, "Status") == "verified ✓"
    assert _col(view, 0, "Quant") == "Q4_K_M" and _col(view, 0, "Size") == "4.0 MiB"


def test_pause_resume_and_cancel_buttons(
    qtbot: QtBot, view: LibraryView, queue: DownloadQueue, hub_server: HubServer
) -> None:
    hub_server.faults.rate_bps = 1_000_000
    job = queue.add(TINY, "tiny-Q4_K_M.gguf")
    qtbot.waitUntil(lambda: job in view.download_rows and view.download_rows[job].bar.value() > 100, timeout=15_000)
    row = view.download_rows[job]
    row.pause.click()
    qtbot.waitUntil(lambda: row.state == DownloadState.PAUSED and row.resume.isVisible(), timeout=10_000)
    paused_at = row.bar.value()
    hub_server.faults.rate_bps = None
    with qtbot.waitSignal(view.downloadFinished, timeout=30_000) as done:
        row.resume.click()
    assert done.args[0].state == DownloadState.DONE and done.args[1].resumed_from > 0
    assert row.bar.value() == 1000 >= paused_at

    hub_server.faults.rate_bps = 500_000
    second = queue.add(TINY, "tiny-Q8_0.gguf")
    qtbot.waitUntil(
        lambda: second in view.download_rows and view.download_rows[second].bar.value() > 100, timeout=15_000
    )
    partial = Path(queue.get(second).partial_path or "")
    assert partial.exists()
    with qtbot.waitSignal(view.downloadFinished, timeout=15_000) as cancelled:
        view.download_rows[second].cancel.click()
    assert cancelled.args[0].state == DownloadState.CANCELLED and not partial.exists()


def test_restored_downloads_show_as_paused(qtbot: QtBot, library: Library, tmp_path: Path) -> None:
    state = tmp_path / "downloads.json"
    state.write_text(json.dumps([{"repo_id": TINY, "filename": "tiny-Q8_0.gguf", "revision": "main"}]))
    q = DownloadQueue(options=FAST, state_file=state)
    q.restore()
    v = LibraryView(library, q)
    qtbot.addWidget(v)
    (row,) = v.download_rows.values()
    assert row.state == DownloadState.PAUSED and not row.resume.isHidden()
    v.shutdown()


def test_import_by_path_and_by_drag_and_drop(qtbot: QtBot, view: LibraryView, tmp_path: Path) -> None:
    first = tmp_path / "models" / "first.gguf"
    first.parent.mkdir()
    first.write_bytes(make_gguf("first"))
    second = tmp_path / "models" / "second.gguf"
    second.write_bytes(make_gguf("second"))
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.import_paths([str(first)])  # what the file dialog hands over
    assert [_col(view, r, "Name") for r in range(view.table.rowCount())] == ["first"]

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(second)), QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    enter = _drag_enter(view, mime)
    view.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.dropEvent(drop)
    assert sorted(_col(view, r, "Name") for r in range(view.table.rowCount())) == ["first", "second"]
    assert {_col(view, r, "Source") for r in range(view.table.rowCount())} == {"Imported"}

    text_only = QMimeData()
    text_only.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    refused = _drag_enter(view, text_only)
    view.dragEnterEvent(refused)
    assert not refused.isAccepted()


def test_a_bad_import_is_explained(qtbot: QtBot, view: LibraryView, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model" * 100)
    with qtbot.waitSignal(view.failed, timeout=15_000) as blocker:
        view.import_paths([str(bad)])
    assert "cannot be imported" in blocker.args[0]
    wait_for_background()


def test_delete_asks_first_and_frees_the_space(
    qtbot: QtBot, view: LibraryView, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "deleteme.gguf"
    data = make_gguf("deleteme", n_floats=1 << 16)
    model.write_bytes(data)
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.import_paths([str(model)])
    asked: list[str] = []

    def answer(reply: QMessageBox.StandardButton):  # type: ignore[no-untyped-def]
        def question(parent, title, text, *rest):  # type: ignore[no-untyped-def]
            asked.append(text)
            return reply

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    view.delete_row(0)
    wait_for_background()
    assert model.exists() and "frees 0.3 MiB" in asked[0] and str(model) in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.delete_row(0)
    assert not model.exists() and view.table.rowCount() == 0
    assert "Deleted deleteme" in view.status.text() and "freed" in view.status.text()


def test_vanished_files_are_shown_missing_and_not_loaded(qtbot: QtBot, view: LibraryView, tmp_path: Path) -> None:
    model = tmp_path / "gone.gguf"
    model.write_bytes(make_gguf("gone"))
    keep = tmp_path / "keep.gguf"
    keep.write_bytes(make_gguf("keep"))
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.import_paths([str(model), str(keep)])
    model.unlink()
    entries = _refreshed(qtbot, view)
    statuses = {e.name: e.status for e in entries}
    assert statuses == {"gone": "missing", "keep": "ok"}
    missing_row = next(r for r in range(view.table.rowCount()) if _col(view, r, "Name") == "gone")
    assert _col(view, missing_row, "Status") == "missing"
    with qtbot.assertNotEmitted(view.loadRequested):
        view.load_row(missing_row)
    assert "cannot be loaded" in view.status.text()
    ok_row = 1 - missing_row
    with qtbot.waitSignal(view.loadRequested, timeout=2_000) as blocker:
        view.table.cellDoubleClicked.emit(ok_row, 0)
    assert blocker.args == [str(keep.resolve())]
    wait_for_background()
    used = next(e for e in _refreshed(qtbot, view) if e.name == "keep")
    assert used.last_used is not None and _col(view, 0, "Name") == "keep"  # most recently used first
    assert _col(view, 0, "Last used") == "just now"


def test_real_model_facts_in_the_list(qtbot: QtBot, view: LibraryView, smollm2_path: Path, tmp_path: Path) -> None:
    link = tmp_path / smollm2_path.name
    try:
        os.link(smollm2_path, link)
    except OSError:
        shutil.copy2(smollm2_path, link)
    with qtbot.waitSignal(view.libraryRefreshed, timeout=30_000):
        view.import_paths([str(link)])
    assert _col(view, 0, "Quant") == "Q4_1" and _col(view, 0, "Params") == "135M"
    assert _col(view, 0, "Context") == "8,192" and _col(view, 0, "Size") == "93.8 MiB"
