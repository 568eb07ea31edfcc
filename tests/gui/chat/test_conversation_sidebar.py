"""The conversation sidebar over a real SQLite store, driven by keyboard and mouse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLineEdit
from pytestqt.qtbot import QtBot

from sizewise.core.chat.store import ConversationStore
from sizewise.core.paths import AppPaths
from sizewise.gui.chat.conversation_sidebar import ConversationSidebar
from tests.db_helpers import lock_held

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def store(app_paths: AppPaths) -> Iterator[ConversationStore]:
    s = ConversationStore.open(app_paths.database_file, busy_timeout_s=0.3)
    lisbon = s.create_conversation("Trip to Lisbon")
    s.add_message(lisbon.id, "user", "Where should I eat in Alfama?")
    s.add_message(lisbon.id, "assistant", "Try the grilled sardines near the castle.")
    bread = s.create_conversation("Bread")
    s.add_message(bread.id, "user", "How long does sourdough proof?")
    yield s
    s.close()


@pytest.fixture
def sidebar(qtbot: QtBot, store: ConversationStore) -> ConversationSidebar:
    w = ConversationSidebar(store, undo_ms=400)
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    qtbot.waitActive(w)
    return w


def titles(w: ConversationSidebar) -> list[str]:
    return [w.list.item(i).text() for i in range(w.list.count())]


def test_lists_recent_first_and_clicking_selects(
    qtbot: QtBot, sidebar: ConversationSidebar, store: ConversationStore
) -> None:
    assert titles(sidebar) == ["Bread", "Trip to Lisbon"]
    lisbon = store.find_by_title("Trip to Lisbon")
    assert lisbon is not None
    rect = sidebar.list.visualItemRect(sidebar.list.item(1))
    with qtbot.waitSignal(sidebar.conversationSelected, check_params_cb=lambda cid: cid == lisbon.id):
        qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sidebar.current_id() == lisbon.id
    assert "2 messages" in sidebar.list.item(1).toolTip()


def test_shortcuts_are_in_tooltips(sidebar: ConversationSidebar) -> None:
    assert "Ctrl+N" in sidebar.new_button.toolTip()
    assert "F2" in sidebar.rename_button.toolTip() and "Del" in sidebar.delete_button.toolTip()
    assert "Ctrl+Z" in sidebar.undo_button.toolTip()
    assert "Ctrl+F" in sidebar.search.placeholderText()
    assert "Ctrl+PgDown" in sidebar.list.toolTip()


def test_ctrl_n_starts_a_conversation_from_the_chosen_preset(
    qtbot: QtBot, sidebar: ConversationSidebar, store: ConversationStore
) -> None:
    sidebar.set_new_conversation_defaults("Precise", "Answer briefly.")
    sidebar.list.setFocus()
    with qtbot.waitSignals([sidebar.conversationCreated, sidebar.conversationSelected]):
        qtbot.keyClick(sidebar.list, Qt.Key.Key_N, CTRL)
    conv = store.get_conversation(sidebar.current_id())
    assert conv is not None and conv.title == "New conversation"
    assert (conv.preset, conv.system_prompt) == ("Precise", "Answer briefly.")
    assert titles(sidebar)[0] == "New conversation"


def test_f2_renames_in_place(qtbot: QtBot, sidebar: ConversationSidebar, store: ConversationStore) -> None:
    sidebar.list.setCurrentRow(0)
    sidebar.list.setFocus()
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F2)
    assert sidebar.list.state() == QAbstractItemView.State.EditingState
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit) and editor.text() == "Bread"
    editor.selectAll()
    qtbot.keyClicks(editor, "Sourdough notes")
    with qtbot.waitSignal(sidebar.conversationRenamed) as renamed:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert renamed.args[1] == "Sourdough notes"
    assert store.get_conversation(renamed.args[0]).title == "Sourdough notes"  # type: ignore[union-attr]
    assert "Sourdough notes" in titles(sidebar)


def test_delete_undo_and_purge(qtbot: QtBot, sidebar: ConversationSidebar, store: ConversationStore) -> None:
    sidebar.list.setCurrentRow(0)
    bread_id = sidebar.current_id()
    sidebar.list.setFocus()
    with qtbot.waitSignal(sidebar.conversationDeleted):
        qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    assert titles(sidebar) == ["Trip to Lisbon"] and sidebar.undo_bar.isVisible()
    assert "Bread" in sidebar.undo_label.text()
    assert sidebar.current_id() != bread_id  # the neighbour is selected
    with qtbot.waitSignal(sidebar.deletionUndone):
        qtbot.keyClick(sidebar.list, Qt.Key.Key_Z, CTRL)
    assert titles(sidebar) == ["Bread", "Trip to Lisbon"] and sidebar.current_id() == bread_id
    assert [m.content for m in store.messages(bread_id)] == ["How long does sourdough proof?"]
    # without undo, the deletion becomes final when the undo bar closes
    sidebar.list.setCurrentRow(0)
    sidebar.delete_current()
    qtbot.waitUntil(lambda: not sidebar.undo_bar.isVisible(), timeout=5000)
    assert store.get_conversation(bread_id) is None


def test_search_filters_with_snippets(qtbot: QtBot, sidebar: ConversationSidebar) -> None:
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F, CTRL)
    assert sidebar.search.hasFocus()
    qtbot.keyClicks(sidebar.search, "sardine")
    qtbot.waitUntil(lambda: sidebar.list.count() == 1, timeout=3000)
    text = sidebar.list.item(0).text()
    assert text.startswith("Trip to Lisbon\n") and "sardines" in text
    assert "1 conversation match" in sidebar.empty_label.text()
    sidebar.search.clear()
    qtbot.waitUntil(lambda: sidebar.list.count() == 2, timeout=3000)


def test_ctrl_page_keys_switch_conversations(qtbot: QtBot, sidebar: ConversationSidebar) -> None:
    sidebar.list.setCurrentRow(0)
    with qtbot.waitSignal(sidebar.conversationSelected):
        qtbot.keyClick(sidebar.list, Qt.Key.Key_PageDown, CTRL)
    assert sidebar.list.currentRow() == 1
    qtbot.keyClick(sidebar.list, Qt.Key.Key_PageDown, CTRL)
    assert sidebar.list.currentRow() == 0  # wraps around
    qtbot.keyClick(sidebar.list, Qt.Key.Key_PageUp, CTRL)
    assert sidebar.list.currentRow() == 1


def test_a_damaged_file_is_shown_and_the_sidebar_still_works(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    path.write_bytes(b"\x00not a database" * 64)
    store = ConversationStore.open(path)
    w = ConversationSidebar(store)
    qtbot.addWidget(w)
    w.show()
    assert w.problem_label.isVisible() and "damaged" in w.problem_label.text()
    assert str(path) in w.problem_label.text()
    assert w.new_conversation() > 0 and w.list.count() == 1
    store.close()
    assert path.read_bytes() == b"\x00not a database" * 64


def test_a_write_refused_by_a_lock_is_reported(qtbot: QtBot, sidebar: ConversationSidebar, app_paths: AppPaths) -> None:
    with lock_held(app_paths.database_file, "writing"), qtbot.waitSignal(sidebar.storeFailed) as failed:
        assert sidebar.new_conversation() == -1
    assert "locked by another program" in failed.args[0]
    assert sidebar.problem_label.isVisible() and sidebar.list.count() == 2
