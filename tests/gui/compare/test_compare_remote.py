"""The compare view with a model on a server beside a local file: against the Ollama stand-in (Ollama's
documented examples, tests/ollama/), so its reply and figures are the documented ones, not a real Ollama's."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.compare.report import REMOTE_BEST_RULE
from sizewise.core.errors import UserError
from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams
from sizewise.gui.compare.compare_view import CompareView
from sizewise.gui.shell.main_window import MainWindow
from tests.ollama_server import MODEL, OllamaStandIn, fixture

RUN_TIMEOUT_MS = 300_000
SHOTS = os.environ.get("SIZEWISE_REMOTE_SHOTS")  # a folder: a screenshot of the page is saved there


@pytest.fixture
def view(qtbot: QtBot, app_paths: AppPaths) -> CompareView:
    v = CompareView(app_paths)
    qtbot.addWidget(v)
    v.resize(1100, 800)
    v.show()
    v.max_tokens_spin.setValue(8)
    v.seed_spin.setValue(42)
    v.prompt_edit.setPlainText("Name two colours.")
    return v


def test_a_server_model_beside_a_local_file(
    qtbot: QtBot, view: CompareView, ollama_servers: Callable[..., OllamaStandIn], smollm2_path: Path, tmp_path: Path
) -> None:
    server = ollama_servers()
    view.add_servers({server.url: (None, ["codellama:13b", MODEL])})  # what "Connect to a server…" found
    picker = [view.model_edit.itemText(i) for i in range(view.model_edit.count())]
    assert f"{MODEL} @ {server.url}" in picker and f"codellama:13b @ {server.url}" in picker
    view.model_edit.setCurrentIndex(picker.index(f"{MODEL} @ {server.url}"))
    view.add_button.click()
    assert view.specs[0].server == f"{server.url}#{MODEL}"
    view.add_run(smollm2_path, LoadParams(n_ctx=256))
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run_button.click()
    runner = view.runner
    assert runner is not None
    remote, local = runner.results
    assert remote.error is None and local.error is None, (remote.error, local.error)
    assert remote.text == "The sky is blue." and local.text.strip()
    assert remote.label == f"{MODEL} @ {server.url}" and remote.info is None and remote.fit is None
    assert server.sent("api/chat")["options"]["seed"] == 42 == local.sampling.seed  # type: ignore[union-attr]
    assert remote.stats is not None and remote.stats["tokens"] == fixture("chat_stream")[-1]["eval_count"]
    assert remote.remote is not None and remote.remote["memory"]["source"] == "measured"
    assert remote.remote["server_timings"]["eval_duration"] == 4535599000
    assert remote.remote["server"]["facts"]["quantization_level"] == "Q4_0"
    assert view.panels[0].text.toPlainText() == "The sky is blue."
    # the table lists both runs, the server's said to be on a server; no best choice for this machine
    report = view.report
    assert report is not None and [m["label"] for m in report["models"]] == [remote.label, local.label]
    assert report["best"] is None and report["best_rule"] == REMOTE_BEST_RULE
    assert view.table.item(0, 2).text() == "on a server" and view.table.item(1, 2).text() == "fits_cpu"
    with pytest.raises(UserError, match="a comparison with a server's model is not exported"):
        view.export_report(tmp_path / "r.json")


def test_one_server_model_at_two_temperatures_keeps_the_server(
    qtbot: QtBot, view: CompareView, ollama_servers: Callable[..., OllamaStandIn]
) -> None:
    server = ollama_servers()
    view.add_server_run(server.url, MODEL)
    view.mode_temps.setChecked(True)
    view.temps_edit.setText("0.2, 1.1")
    view.bench_check.setChecked(True)  # a server's model is not benchmarked: its runs still succeed
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run()
    runner = view.runner
    assert runner is not None
    assert [r.sampling.temperature for r in runner.results if r.sampling] == [0.2, 1.1]
    assert all(r.text == "The sky is blue." and r.error is None and r.bench is None for r in runner.results)
    assert [r.label for r in runner.results] == [f"{MODEL} @ {server.url} · temperature {t}" for t in ("0.2", "1.1")]
    assert server.sent("api/chat")["options"]["temperature"] == 1.1
    assert runner.plan is not None and runner.plan.words().startswith("Every run is on a server, so nothing is")


def test_a_server_gone_mid_reply_keeps_its_part_and_the_other_run_goes_on(
    qtbot: QtBot, view: CompareView, ollama_servers: Callable[..., OllamaStandIn]
) -> None:
    drop, good = ollama_servers("drop"), ollama_servers()
    view.add_server_run(drop.url, MODEL)
    view.add_server_run(good.url, MODEL)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS):
        view.run()
    runner = view.runner
    assert runner is not None
    cut, whole = runner.results
    assert cut.text == "The" and cut.stats is None and cut.remote is not None and cut.remote["interrupted"]
    assert cut.error == (
        f"The server at {drop.url} closed the connection in the middle of the reply. "
        "The reply so far is kept, marked interrupted."
    )
    assert view.panels[0].text.toPlainText() == "The"
    assert whole.error is None and whole.text == "The sky is blue."
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        assert view.grab().save(str(Path(SHOTS) / "compare-on-servers.png"))


def test_the_servers_the_chat_connected_to_are_in_the_picker(
    qtbot: QtBot, window: MainWindow, ollama_servers: Callable[..., OllamaStandIn]
) -> None:
    first, second = ollama_servers(), ollama_servers()

    def connect(url: str) -> None:
        with qtbot.waitSignal(window.engine.loaded, timeout=30_000):
            dialog = window.show_connect_dialog()
            dialog.url_edit.setText(url)
            dialog.connect_button.click()

    connect(first.url)  # before the Compare page was ever opened
    window.show_view(window.compare_page)
    qtbot.waitUntil(lambda: window.compare_view is not None)
    view = window.compare_view
    assert view is not None
    connect(second.url)  # and after

    picker = [view.model_edit.itemText(i) for i in range(view.model_edit.count())]
    for url in (first.url, second.url):
        assert f"{MODEL} @ {url}" in picker and f"codellama:13b @ {url}" in picker
    assert view.server_keys == {first.url: None, second.url: None}
