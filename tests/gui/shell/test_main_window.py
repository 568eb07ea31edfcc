"""The main window with the real engine and the real starter model."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.shell.main_window import MainWindow


def wait_reply_text(qtbot: QtBot, w: MainWindow, n: int) -> None:
    qtbot.waitUntil(
        lambda: w.chat.messages[-1].role == "assistant" and len(w.chat.messages[-1].text) > n, timeout=60_000
    )


def load(qtbot: QtBot, w: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(w.engine.loaded, timeout=120_000):
        w.loader.open_model(str(path))
    assert w.loader.state == "ready"


def test_starter_is_offered_first(window: MainWindow, smollm2_path: Path) -> None:
    assert window.model_combo.itemData(0) == str(smollm2_path)
    assert "starter" in window.model_combo.itemText(0)


def test_gpu_layers_disabled_with_reason_on_cpu_build(qtbot: QtBot, window: MainWindow) -> None:
    # ready_info is set on the client's reader thread; the panel hears of it through the GUI thread's queue
    qtbot.waitUntil(lambda: "no GPU backend" in window.sampling_panel.gpu_reason.text(), timeout=30_000)
    assert window.engine.client.ready_info["gpu_offload"] is False
    assert not window.sampling_panel.gpu_layers.isEnabled()


def test_chat_streams_tokens_and_reports_speed_and_memory(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=40, seed=3), LoadParams(n_ctx=1024))
    load(qtbot, window, smollm2_path)
    assert "Chat" in window.status_line.mode_label.text()
    seen_lengths: list[int] = []
    window.chat.dataChanged.connect(lambda *_: seen_lengths.append(len(window.chat.messages[-1].text)))
    qtbot.keyClicks(window.input, "Tell me about the sea.")
    with qtbot.waitSignal(window.engine.finished, timeout=120_000):
        qtbot.keyClick(window.input, Qt.Key.Key_Return)
        assert window.loader.state == "generating"
        assert window.chat.messages[-1].role == "user"  # saved before the reply starts
    # the reply grew in several steps while streaming, not in one piece at the end
    growing = [n for n in seen_lengths if n > 0]
    assert len(set(growing)) >= 3
    assert window.chat.rowCount() == 2
    reply = window.chat.messages[-1]
    assert reply.role == "assistant" and reply.text and reply.status == "done"
    assert window.input.toPlainText() == ""
    assert "tokens/s" in window.status_line.speed_label.text() and "–" not in window.status_line.speed_label.text()
    assert "ms" in window.status_line.ttft_label.text()
    assert "MiB" in window.status_line.memory_label.text() and "peak" in window.status_line.memory_label.text()


def test_shift_enter_adds_a_line(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.keyClicks(window.input, "one")
    qtbot.keyClick(window.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.input, "two")
    assert window.input.toPlainText() == "one\ntwo"
    assert window.chat.rowCount() == 0


def test_stop_with_escape(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=0.9, max_tokens=3000, seed=1), LoadParams(n_ctx=4096))
    load(qtbot, window, smollm2_path)
    window.input.setPlainText("Write a very long story about a lighthouse keeper.")
    window.chat_actions.send()
    wait_reply_text(qtbot, window, 20)
    with qtbot.waitSignal(window.engine.finished, timeout=5_000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert blocker.args[1]["finish_reason"] == "cancelled"
    assert window.chat.messages[-1].status == "stopped"
    assert window.loader.state == "ready" and window.send_button.isEnabled()


def test_bad_file_shows_message_and_window_stays_usable(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, smollm2_path: Path
) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_text("this is not a model\n" * 50)
    window.loader.open_model(str(junk))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert "not a GGUF model file" in window.banner.text()
    assert window.loader.state == "empty" and window.load_button.isEnabled()
    load(qtbot, window, smollm2_path)  # still usable
    assert not window.banner.isVisible()


def test_empty_message_and_no_model_give_hints(qtbot: QtBot, window: MainWindow) -> None:
    window.chat_actions.send()
    assert window.chat.rowCount() == 0
    window.input.setPlainText("hello")
    window.chat_actions.send()
    assert "Load a model first" in window.banner.text()
    assert window.chat.rowCount() == 0


def test_engine_crash_is_reported_and_app_recovers(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.sampling_panel.set_params(SamplingParams(max_tokens=2000, seed=1), LoadParams(n_ctx=1024))
    load(qtbot, window, smollm2_path)
    window.input.setPlainText("Count to one thousand.")
    window.chat_actions.send()
    wait_reply_text(qtbot, window, 5)
    pid = window.engine.client.pid
    assert pid is not None
    with qtbot.waitSignal(window.engine.engineStopped, timeout=10_000) as blocker:
        os.kill(pid, signal.SIGSEGV)
    assert blocker.args[0].startswith("The engine stopped: it crashed")
    assert window.banner.text().startswith("The engine stopped")
    assert window.chat.messages[-1].status == "interrupted"
    assert window.chat.messages[-1].text  # the partial reply is kept
    assert window.loader.state == "empty"
    load(qtbot, window, smollm2_path)


def test_settings_survive_restart(qtbot: QtBot, app_paths: AppPaths, smollm2_path: Path) -> None:
    w = MainWindow(app_paths)
    qtbot.addWidget(w)
    w.sampling_panel.set_params(
        SamplingParams(temperature=0.35, top_k=12, seed=99, max_tokens=77), LoadParams(n_ctx=3072), "Answer in French."
    )
    w.show()
    w.resize(790, 520)
    qtbot.waitUntil(lambda: w.width() == 790)
    w.close()
    w2 = MainWindow(app_paths)
    qtbot.addWidget(w2)
    w2.show()
    s = w2.sampling_panel.sampling()
    assert (s.temperature, s.top_k, s.seed, s.max_tokens) == (0.35, 12, 99, 77)
    assert w2.sampling_panel.n_ctx.value() == 3072
    assert w2.sampling_panel.system_text() == "Answer in French."
    assert (w2.width(), w2.height()) == (790, 520)
    w2.close()


def test_context_beyond_training_shows_warning(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.sampling_panel.set_params(SamplingParams(max_tokens=4), LoadParams(n_ctx=16384))
    load(qtbot, window, smollm2_path)
    assert window.banner.isVisible() and window.banner.property("level") == "warning"
    assert "beyond the 8192 tokens" in window.banner.text()
    window.sampling_panel.n_ctx.setValue(20000)
    assert window.sampling_panel.ctx_warning.isVisible()
    window.sampling_panel.n_ctx.setValue(4096)
    assert not window.sampling_panel.ctx_warning.isVisible()


def test_forced_stop_reloads_the_model(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.sampling_panel.set_params(SamplingParams(max_tokens=2000, seed=1), LoadParams(n_ctx=1024))
    load(qtbot, window, smollm2_path)
    window.input.setPlainText("Count to one thousand.")
    window.chat_actions.send()
    wait_reply_text(qtbot, window, 5)
    old_pid = window.engine.client.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGSTOP)
    with qtbot.waitSignal(window.engine.stopForced, timeout=2_000):
        window.chat_actions.stop()
    assert window.chat.messages[-1].status == "stopped"
    assert "engine was restarted" in window.banner.text()
    with qtbot.waitSignal(window.engine.loaded, timeout=120_000):
        pass
    assert window.loader.state == "ready" and window.engine.client.pid not in (None, old_pid)


def test_load_shows_measured_beside_predicted_and_keeps_it(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path
) -> None:
    qtbot.waitUntil(lambda: window.loader.budget is not None, timeout=30_000)  # hardware probed in the background
    window.sampling_panel.set_params(SamplingParams(), LoadParams(n_ctx=2048))
    load(qtbot, window, smollm2_path)
    diffs = {name: (pred, meas, pct) for name, pred, meas, pct in window.fit_view.differences()}
    assert diffs["kv"][1] == 45 * 2**20  # measured = what llama.cpp logged
    assert diffs["kv"][2] is not None and abs(diffs["kv"][2]) < 3
    qtbot.waitUntil(lambda: bool(window.loader.measurements.records(smollm2_path)), timeout=10_000)
    record = window.loader.measurements.records(smollm2_path)[-1]
    assert record.settings["n_ctx"] == 2048
    assert record.measured["kv_bytes"] == 45 * 2**20
    assert abs(record.diff_pct["kv"]) < 3


def test_a_reply_shows_its_measured_speed_beside_the_prediction_and_is_kept(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path
) -> None:
    """Issue 13: every real reply adds a measured speed point; the Fit view shows it beside the prediction made
    for that reply (its prompt size and context depth), and the model's measurements keep it."""
    qtbot.waitUntil(lambda: window.loader.budget is not None, timeout=30_000)
    window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=24, seed=5), LoadParams(n_ctx=1024))
    load(qtbot, window, smollm2_path)
    qtbot.waitUntil(lambda: window.fit_view.devices is not None, timeout=30_000)
    replies: list[dict[str, object]] = []
    window.controller.replyFinished.connect(replies.append)
    qtbot.keyClicks(window.input, "Name three colours.")
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(replies) and window.fit_view.reply_speed is not None, timeout=120_000)
    stats, reply = replies[0], window.fit_view.reply_speed
    assert reply is not None and reply.tg_tps == stats["tg_tps"] and reply.prompt_tokens == stats["prompt_tokens"]
    context = int(stats["context_tokens"])  # type: ignore[call-overload]
    assert context >= int(stats["prompt_tokens"]) + int(stats["tokens"]) - 1  # type: ignore[call-overload]
    assert reply.depth == context - int(stats["tokens"]) // 2  # type: ignore[call-overload]
    assert reply.predicted_tg_tps > 0 and reply.predicted_pp_tps > 0
    text = window.fit_view.speed_label.text()
    assert "Measured in the last reply" in text and f"{reply.tg_tps:.1f} tokens/s" in text
    assert "× the prediction" in text
    qtbot.waitUntil(
        lambda: any(r.measured.get("source") == "reply" for r in window.loader.measurements.records(smollm2_path)),
        timeout=10_000,
    )
    kept = [r for r in window.loader.measurements.records(smollm2_path) if r.measured.get("source") == "reply"][-1]
    assert kept.measured["tg_tps"] == round(reply.tg_tps, 2)
    assert kept.predicted["tg_tps"] == round(reply.predicted_tg_tps, 2)
    assert kept.diff_pct["tg_ratio"] == round(reply.tg_tps / reply.predicted_tg_tps, 3)
    assert kept.settings["n_ctx"] == 1024 and kept.measured["kv_bytes"] > 0  # the load's memory figures too


def test_every_view_is_a_tab_and_library_loads_models(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    for title in ("Chat", "Fit", "Hardware", "Writing", "Discover", "Library"):
        assert title in titles
    window.show_view(window.library_page)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Library"
    assert window.library_view is not None  # built when first shown
    with qtbot.waitSignal(window.engine.loaded, timeout=120_000):
        window.library_view.loadRequested.emit(str(smollm2_path))
    assert window.tabs.currentIndex() == 0 and window.loader.state == "ready"


def test_about_dialog_from_help_menu(qtbot: QtBot, window: MainWindow) -> None:
    from sizewise.gui.shell.about_dialog import AboutDialog

    window.show_about()
    dialogs = [w for w in window.findChildren(AboutDialog) if w.isVisible()]
    assert len(dialogs) == 1
    dialogs[0].close()


def test_loaded_models_and_starter_are_in_the_library(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.library_page.ensure()
    assert window.library_view is not None
    qtbot.waitUntil(
        lambda: any(Path(e.path) == smollm2_path.resolve() for e in window.library_view.entries), timeout=30_000
    )
    load(qtbot, window, smollm2_path)
    qtbot.waitUntil(
        lambda: any(Path(e.path) == smollm2_path.resolve() and e.last_used for e in window.library_view.entries),
        timeout=30_000,
    )


def test_the_model_picker_lists_what_the_library_lists(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, smollm2_path: Path
) -> None:
    """One list of runnable models: the picker offers the paths the Library page lists (the starter first), and
    follows the Library when a model is imported or taken off the list there."""
    from tests.hub_server import make_gguf

    window.library_page.ensure()
    view = window.library_view
    assert view is not None

    def agree() -> bool:
        return bool(view.entries) and sorted(window.loader.choice_paths()) == sorted(e.path for e in view.entries)

    qtbot.waitUntil(agree, timeout=30_000)
    assert window.model_combo.itemData(0) == str(smollm2_path) and "starter" in window.model_combo.itemText(0)
    assert next(e for e in view.entries if e.path == str(smollm2_path)).source == "starter"
    other = tmp_path / "other.gguf"
    other.write_bytes(make_gguf("other"))
    view.import_paths([str(other)])
    qtbot.waitUntil(lambda: str(other.resolve()) in window.loader.choice_paths() and agree(), timeout=30_000)
    entry = next(e for e in view.entries if e.path == str(other.resolve()))
    window.library.remove_from_library(entry)
    view.refresh()
    qtbot.waitUntil(lambda: str(other.resolve()) not in window.loader.choice_paths() and agree(), timeout=30_000)
    assert window.model_combo.itemData(0) == str(smollm2_path)


def test_compare_and_live_metrics_are_built_on_first_sight(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path
) -> None:
    assert window.compare_view is None and window.metrics_view is None
    window.show_view(window.compare_page)
    qtbot.waitUntil(lambda: window.compare_view is not None)
    load(qtbot, window, smollm2_path)
    metrics_dock = window.docks[-1]
    metrics_dock.show()
    qtbot.waitUntil(lambda: window.metrics_view is not None)
    assert window.metrics_view is not None
    # the prediction made at load reaches the charts, drawn beside the measured line
    assert window.metrics_view.predicted_ram == window.loader.prediction.ram_bytes > 100 * 2**20


def test_last_model_and_recent_files_survive_restart(
    qtbot: QtBot, app_paths: AppPaths, gemma_path: Path, smollm2_path: Path
) -> None:
    w = MainWindow(app_paths)
    qtbot.addWidget(w)
    w.sampling_panel.set_params(SamplingParams(), LoadParams(n_ctx=512))
    load(qtbot, w, gemma_path)
    w.close()
    w2 = MainWindow(app_paths)
    qtbot.addWidget(w2)
    assert w2.model_combo.currentData() == str(gemma_path)  # the last model is chosen again
    items = [w2.model_combo.itemData(i) for i in range(w2.model_combo.count())]
    assert items[0] == str(smollm2_path) and str(gemma_path) in items  # starter first, then recent files
    w2.close()


@pytest.mark.parametrize("kind", ["missing", "truncated", "unknown-arch"])
def test_each_bad_model_file_gives_one_sentence(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, smollm2_path: Path, kind: str
) -> None:
    from tests.ggufs import write_truncated_copy, write_unknown_arch

    if kind == "missing":
        path, expected = tmp_path / "gone.gguf", "does not exist"
    elif kind == "truncated":
        path, expected = write_truncated_copy(smollm2_path, tmp_path / "cut.gguf", 30_000_000), "incomplete"
    else:
        path, expected = write_unknown_arch(tmp_path / "odd.gguf"), "unknown model architecture"
    window.loader.open_model(str(path))
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.loader.state == "empty", timeout=60_000)
    assert expected in window.banner.text()
    assert window.banner.text().count(". ") == 0  # one sentence
    assert window.load_button.isEnabled() and window.engine.client.alive


def test_chat_docks_step_aside_on_other_pages(qtbot: QtBot, window: MainWindow) -> None:
    conversations, sampling = window.docks[0], window.docks[1]
    assert conversations.isVisible() and sampling.isVisible()
    window.show_view(window.compare_page)
    assert not conversations.isVisible() and not sampling.isVisible()
    window.show_view(window.writing_view)
    assert sampling.isVisible() and not conversations.isVisible()
    window.tabs.setCurrentIndex(0)
    assert conversations.isVisible() and sampling.isVisible()
    conversations.toggleViewAction().trigger()  # the user closes it from the View menu
    window.show_view(window.compare_page)
    window.tabs.setCurrentIndex(0)
    assert not conversations.isVisible() and sampling.isVisible()
