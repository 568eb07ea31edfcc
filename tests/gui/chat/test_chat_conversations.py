"""The chat saved in conversations: persistence, regenerate, edit and resend, continue, context meter."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.chat import opening
from sizewise.core.chat import store as store_module
from sizewise.core.chat.opening import BUSY_TIMEOUT_S
from sizewise.core.chat.store import ConversationStore
from sizewise.core.paths import AppPaths
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.shell.main_window import MainWindow
from tests.db_helpers import damage_table_root, lock_held, make_longer_history


def load(qtbot: QtBot, w: MainWindow, path: Path, n_ctx: int = 1024) -> None:
    w.sampling_panel.set_params(w.sampling_panel.sampling(), LoadParams(n_ctx=n_ctx))
    with qtbot.waitSignal(w.engine.loaded, timeout=120_000):
        w.loader.open_model(str(path))


def turn(qtbot: QtBot, w: MainWindow, text: str) -> dict:
    w.input.setPlainText(text)
    with qtbot.waitSignal(w.controller.replyFinished, timeout=120_000) as blocker:
        w.chat_actions.send()
    return blocker.args[0]


def test_turns_are_saved_and_restored(
    qtbot: QtBot, window: MainWindow, app_paths: AppPaths, smollm2_path: Path
) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=16, seed=5), LoadParams(n_ctx=1024))
    load(qtbot, window, smollm2_path)
    turn(qtbot, window, "What is the capital of France?")
    turn(qtbot, window, "And of Italy?")
    conv_id = window.controller.conversation_id
    stored = window.conversations.messages(conv_id)
    assert [m.role for m in stored] == ["user", "assistant", "user", "assistant"]
    assert stored[1].content == window.chat.messages[1].text and stored[1].status == "complete"
    assert stored[1].stats["tg_tps"] > 0 and stored[1].sampling["seed"] == 5
    assert window.sidebar.current_id() == conv_id
    assert "capital of France" in window.conversations.get_conversation(conv_id).title
    assert "/" in window.status_line.context_label.text() and "tokens" in window.status_line.context_label.text()
    window.close()

    again = MainWindow(app_paths)
    qtbot.addWidget(again)
    again.sidebar.select_conversation(conv_id)
    assert [m.text for m in again.chat.messages] == [m.content for m in stored]
    again.close()


def test_regenerate_edit_and_continue(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=1.2, max_tokens=8, seed=None), LoadParams(n_ctx=1024))
    load(qtbot, window, smollm2_path)
    first = turn(qtbot, window, "Tell me a story about a cat.")
    assert first["finish_reason"] == "length"
    conv = window.controller.conversation_id
    cut = window.chat.messages[-1].text

    with qtbot.waitSignal(window.controller.replyFinished, timeout=120_000):
        window.chat_actions.continue_reply()
    assert window.chat.messages[-1].text.startswith(cut) and len(window.chat.messages[-1].text) > len(cut)
    assert len(window.conversations.messages(conv)) == 2  # continued in place, not a new reply
    assert window.conversations.messages(conv)[-1].content == window.chat.messages[-1].text

    with qtbot.waitSignal(window.controller.replyFinished, timeout=120_000):
        window.chat_actions.regenerate()
    assert len(window.conversations.messages(conv)) == 2

    window.chat_actions.edit_message(0)
    assert window.input.toPlainText() == "Tell me a story about a cat."
    window.input.setPlainText("Tell me a story about a dog.")
    with qtbot.waitSignal(window.controller.replyFinished, timeout=120_000):
        window.chat_actions.send()
    stored = window.conversations.messages(conv)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[0].content == "Tell me a story about a dog."


def test_older_messages_dropped_to_fit_are_announced(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=16, seed=1), LoadParams(n_ctx=256))
    load(qtbot, window, smollm2_path, n_ctx=256)
    long_text = "Please remember this list: " + ", ".join(f"item {i}" for i in range(40))
    turn(qtbot, window, long_text)
    turn(qtbot, window, "Thanks. " + long_text)
    assert window.banner.isVisible() and "left out" in window.banner.text()


def test_unreadable_conversation_file_is_shown_not_replaced(qtbot: QtBot, app_paths: AppPaths) -> None:
    app_paths.database_file.write_bytes(b"this is not a database" * 100)
    before = app_paths.database_file.read_bytes()
    w = MainWindow(app_paths)
    qtbot.addWidget(w)
    assert "damaged" in w.banner.text() and "left untouched" in w.banner.text()
    w.close()
    assert app_paths.database_file.read_bytes() == before
    with ConversationStore.open(app_paths.database_file) as store:
        assert store.problem is not None


@pytest.mark.parametrize("mode", ["exclusive", "writing"])
def test_a_locked_conversation_file_does_not_hold_up_the_window(qtbot: QtBot, app_paths: AppPaths, mode: str) -> None:
    """The window shows well before the 2 s busy timeout (it waited that out, 3 s with readers locked out
    too, before saying the file was locked), shows the problem, and leaves the file as it was."""
    with ConversationStore.open(app_paths.database_file) as store:
        c = store.create_conversation("Kept")
        store.add_message(c.id, "user", "Remember this")
    before = hashlib.sha256(app_paths.database_file.read_bytes()).hexdigest()
    with lock_held(app_paths.database_file, mode):
        t0 = time.monotonic()
        w = MainWindow(app_paths)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        shown = time.monotonic() - t0
        assert w.banner.isVisible() and "locked by another program" in w.banner.text()
        assert "left untouched" in w.banner.text()
        w.close()
    print(f"\nwindow shown {shown:.2f} s after it was asked for, the file locked ({mode})")
    assert shown < BUSY_TIMEOUT_S
    assert hashlib.sha256(app_paths.database_file.read_bytes()).hexdigest() == before


def test_damage_beyond_the_start_up_check_is_shown_when_the_background_check_finds_it(
    qtbot: QtBot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window opens the file with a bounded integrity check; one cut short is finished in the background,
    and damage it finds is shown. (A budget of 0 stands for a history too large to check in 0.2 s.)"""
    make_longer_history(app_paths.database_file)
    damage_table_root(app_paths.database_file, "messages")
    monkeypatch.setattr(opening, "FULL_CHECK_BYTES", 0)
    monkeypatch.setattr(store_module, "STARTUP_CHECK_BUDGET_S", 0.0)
    w = MainWindow(app_paths)
    qtbot.addWidget(w)
    assert w.conversations.persistent and not w.conversations.integrity_checked
    qtbot.waitUntil(lambda: "found by the full check" in w.banner.text(), timeout=10_000)
    assert "damaged" in w.banner.text() and str(app_paths.database_file) in w.banner.text()
    w.close()


def test_export_and_import_from_the_file_menu(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path, tmp_path: Path, app_paths: AppPaths
) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=8, seed=2), LoadParams(n_ctx=512))
    load(qtbot, window, smollm2_path, n_ctx=512)
    turn(qtbot, window, "Say hi.")
    reply = window.chat.messages[-1].text
    window.conversation_files.export_conversation("md", str(tmp_path / "one.md"))
    md = (tmp_path / "one.md").read_text()
    assert "Say hi." in md and reply.strip()[:20] in md
    window.conversation_files.export_all(str(tmp_path / "all.json"))
    assert "Exported 1 conversations" in window.banner.text()
    # into a fresh profile: the conversation arrives once, however often it is imported
    other = MainWindow(AppPaths(**{**app_paths.__dict__, "data_dir": tmp_path / "other-data"}).ensure())
    qtbot.addWidget(other)
    other.conversation_files.import_conversations(str(tmp_path / "all.json"))
    other.conversation_files.import_conversations(str(tmp_path / "all.json"))
    assert "0 conversations" in other.banner.text() and "1 were already here" in other.banner.text()
    assert [c.title for c in other.conversations.list_conversations()] == ["Say hi."]
    other.close()
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    window.conversation_files.import_conversations(str(bad))
    assert "could not be imported" in window.banner.text()


def test_each_conversation_shows_its_own_system_prompt(qtbot: QtBot, window: MainWindow) -> None:
    store = window.conversations
    a = store.create_conversation("French", system_prompt="Answer in French.")
    store.add_message(a.id, "user", "Bonjour")
    store.add_message(a.id, "assistant", "Bonjour !")
    b = store.create_conversation("Pirate", system_prompt="Talk like a pirate.")
    store.add_message(b.id, "user", "Ahoy")
    store.add_message(b.id, "assistant", "Arr!")
    window.sidebar.refresh()
    window.sidebar.select_conversation(a.id)
    assert window.sampling_panel.system_text() == "Answer in French."
    window.sidebar.select_conversation(b.id)
    assert window.sampling_panel.system_text() == "Talk like a pirate."
    window.sidebar.select_conversation(a.id)
    assert window.sampling_panel.system_text() == "Answer in French."
    assert store.get_conversation(b.id).system_prompt == "Talk like a pirate."
