"""Writing help with the real engine (EngineAdapter) and the starter model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from sizewise.core.chat.writing import rebuild, word_diff
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.adapters.engine_adapter import EngineAdapter
from sizewise.gui.chat.writing_view import WritingView

CTRL = Qt.KeyboardModifier.ControlModifier
TEXT = "Their going too the park yesterday, and it were very fun for everyone."


@pytest.fixture
def engine(qtbot: QtBot, smollm2_path: Path, tmp_path: Path) -> Iterator[EngineAdapter]:
    adapter = EngineAdapter(log_path=tmp_path / "engine.log")
    with qtbot.waitSignal(adapter.loaded, timeout=120_000):
        adapter.load(str(smollm2_path), LoadParams(n_ctx=1024))
    yield adapter
    adapter.shutdown()


def make_view(qtbot: QtBot, engine: EngineAdapter) -> WritingView:
    view = WritingView(engine)
    qtbot.addWidget(view)
    view.show()
    view.activateWindow()
    qtbot.waitActive(view)
    return view


def test_result_streams_beside_the_original_then_diff_copy_and_accept(qtbot: QtBot, engine: EngineAdapter) -> None:
    view = make_view(qtbot, engine)
    view.set_text(TEXT)
    view.select_action("grammar")
    assert not view.language_combo.isVisible()  # only translation asks for a language
    view.set_base_sampling(SamplingParams(seed=4))
    shown: list[str] = []
    view.result_edit.textChanged.connect(lambda: shown.append(view.result_edit.toPlainText()))
    view.original.setFocus()
    with qtbot.waitSignal(view.resultReady, timeout=120_000) as ready:
        qtbot.keyClick(view.original, Qt.Key.Key_Return, CTRL)
        assert view.gen_id is not None and not view.run_button.isEnabled() and view.stop_button.isEnabled()
        assert view.original.isReadOnly()
    result = ready.args[0]
    assert result and result == view.result == view.result_edit.toPlainText()
    assert len([s for s in shown if s]) >= 2  # it grew while streaming, not in one piece at the end
    assert view.original.toPlainText() == TEXT  # the original stays beside the result
    spans = word_diff(TEXT, result)
    assert rebuild(spans, "result") == result
    diff_text = view.diff_view.toPlainText()
    assert all(s.text.strip() in diff_text for s in spans if s.text.strip())  # every word, kept or changed
    assert "words added" in view.status.text() and "tokens/s" in view.status.text()
    assert view.copy_button.isEnabled() and view.accept_button.isEnabled()

    view.copy_result()
    assert QGuiApplication.clipboard().text() == result
    with qtbot.waitSignal(view.accepted):
        view.accept_button.click()
    assert view.original.toPlainText() == result
    view.original.setFocus()
    qtbot.keyClick(view.original, Qt.Key.Key_Z, CTRL)  # Accept is one undo step
    assert view.original.toPlainText() == TEXT


def test_translate_asks_for_a_language_and_stop_ends_it(qtbot: QtBot, engine: EngineAdapter) -> None:
    view = make_view(qtbot, engine)
    # a reply the chat started on the same engine is not mistaken for the view's own
    other: list[str] = []
    # (a lambda: under PySide6 6.12.0 a connection to a builtin method aborted the process at exit)
    view.resultReady.connect(lambda text: other.append(text))
    with qtbot.waitSignal(engine.finished, timeout=120_000):
        engine.generate(SamplingParams(max_tokens=5, seed=1), messages=[{"role": "user", "content": "Hi"}])
    assert other == [] and view.result_edit.toPlainText() == ""

    view.select_action("translate")
    assert view.language_combo.isVisible() and view.language_combo.isEnabled()
    view.language_combo.setEditText("French")
    view.set_text(" ".join(["The weather is lovely today and we walk by the sea."] * 12))
    view.set_base_sampling(SamplingParams(seed=2, max_tokens=400))
    with qtbot.waitSignal(view.started):
        view.run_button.click()
    qtbot.waitUntil(lambda: bool(view.result), timeout=120_000)
    with qtbot.waitSignal(view.resultReady, timeout=30_000):
        qtbot.keyClick(view.original, Qt.Key.Key_Escape)
    assert view.last_stats.get("finish_reason") == "cancelled"
    assert "(stopped)" in view.status.text()
    assert view.run_button.isEnabled() and not view.stop_button.isEnabled()


def test_without_a_model_it_says_what_to_do(qtbot: QtBot, tmp_path: Path) -> None:
    adapter = EngineAdapter(log_path=tmp_path / "engine.log")  # never started: no process
    view = make_view(qtbot, adapter)
    view.set_text("Some text.")
    with qtbot.waitSignal(view.failed) as failed:
        view.run()
    assert "Load a model first" in failed.args[0] and failed.args[0] == view.status.text()
    view.select_action("translate")
    view.language_combo.setEditText("")
    adapter.loaded_info = {"chat_mode": "chat"}  # pretend loaded: the missing language is caught before the engine
    with qtbot.waitSignal(view.failed) as failed:
        view.run()
    assert "language" in failed.args[0] and view.gen_id is None
