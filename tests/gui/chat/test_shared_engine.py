"""Chat and Writing help on one loaded engine (issue 12, point 3), in the real window with SmolLM2.

Their requests queue in the one worker; the window is busy while either runs; each page's Stop stops
its own request, queued or running, without restarting the worker; a queued request says so; and the
Sampling panel, shown beside the Writing page, applies there.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.shell.main_window import MainWindow

GRAMMAR_TEXT = "Their going too the park yesterday, and it were very fun for everyone."
LONG_TEXT = " ".join(["The weather is lovely today and we walk by the sea."] * 12)


class Watch:
    """What the engine said, by generation id, and whether its worker was ever replaced."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.pid = window.engine.client.pid
        self.tokens: dict[int, list[str]] = defaultdict(list)
        self.forced: list[int] = []
        window.engine.token.connect(lambda gen_id, text: self.tokens[gen_id].append(text))
        window.engine.stopForced.connect(lambda gen_id: self.forced.append(gen_id))

    def text(self, gen_id: int | None) -> str:
        assert gen_id is not None
        return "".join(self.tokens[gen_id])

    def no_restart(self) -> None:
        assert self.forced == []
        assert self.window.engine.client.pid == self.pid and self.window.engine.client.alive


def load(qtbot: QtBot, w: MainWindow, path: Path, sampling: SamplingParams, n_ctx: int = 2048) -> Watch:
    w.sampling_panel.set_params(sampling, LoadParams(n_ctx=n_ctx))
    with qtbot.waitSignal(w.engine.loaded, timeout=120_000):
        w.loader.open_model(str(path))
    assert w.loader.state == "ready"
    return Watch(w)


def send_chat(qtbot: QtBot, w: MainWindow, text: str) -> int:
    """Send a chat turn and wait until its reply was sent to the engine (after the token count)."""
    w.input.setPlainText(text)
    w.chat_actions.send()
    qtbot.waitUntil(lambda: w.controller.gen_id is not None, timeout=60_000)
    assert w.controller.gen_id is not None
    return w.controller.gen_id


def test_chat_and_writing_back_to_back_both_complete(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    watch = load(qtbot, window, smollm2_path, SamplingParams(temperature=0.2, max_tokens=40, seed=3))
    at_chat_end: list[tuple[str, bool]] = []
    window.controller.replyFinished.connect(
        lambda _stats: at_chat_end.append((window.loader.state, (window.writing_view.gen_id is not None)))
    )
    chat_id = send_chat(qtbot, window, "Tell me about the sea.")
    view = window.writing_view
    window.show_view(view)
    view.set_text(GRAMMAR_TEXT)
    view.select_action("grammar")
    view.run()
    writing_id = view.gen_id
    assert writing_id is not None and writing_id != chat_id
    assert "queued" in view.status.text()  # it waits for the chat's reply, and says so
    assert window.loader.state == "generating" and not window.load_button.isEnabled()
    qtbot.waitUntil(lambda: "queued" not in view.status.text(), timeout=300_000)  # its turn came
    assert view.status.text() == f"{view.action_combo.currentText()}…" or view.gen_id is None
    qtbot.waitUntil(lambda: not window.controller.busy and view.gen_id is None, timeout=300_000)

    # the window stayed busy while Writing still ran after the chat's reply had ended
    assert at_chat_end == [("generating", True)]
    assert window.loader.state == "ready" and window.load_button.isEnabled()
    # both complete, nothing lost: what each shows is everything the engine streamed for it
    reply = window.chat.messages[-1]
    assert reply.role == "assistant" and reply.status == "done" and reply.text == watch.text(chat_id) != ""
    stored = window.conversations.messages(window.controller.conversation_id)[-1]
    assert stored.content == reply.text and stored.status == "complete"
    assert view.last_stats["finish_reason"] in ("stop", "length") and view.last_stats["tokens"] > 0
    assert view.result and view.result == watch.text(writing_id).strip()
    watch.no_restart()


def test_writing_stop_stops_only_its_own_queued_request(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    watch = load(qtbot, window, smollm2_path, SamplingParams(temperature=0.9, max_tokens=3000, seed=1), 4096)
    chat_id = send_chat(qtbot, window, "Write a very long story about a lighthouse keeper.")
    qtbot.waitUntil(lambda: len(window.chat.messages[-1].text) > 5, timeout=60_000)
    view = window.writing_view
    window.show_view(view)
    view.set_text(GRAMMAR_TEXT)
    view.run()
    assert view.gen_id is not None and "queued" in view.status.text()
    view.original.setFocus()
    with qtbot.waitSignal(view.resultReady, timeout=10_000):
        qtbot.keyClick(view.original, Qt.Key.Key_Escape)  # the Writing page's Stop
    assert view.last_stats["finish_reason"] == "cancelled" and view.last_stats["tokens"] == 0
    assert "(stopped)" in view.status.text() and view.run_button.isEnabled() and view.gen_id is None
    assert watch.text(view.gen_id or -1) == ""
    # the chat's reply goes on: not stopped, not restarted
    assert window.controller.gen_id == chat_id and window.chat.messages[-1].status == "streaming"
    assert window.loader.state == "generating"
    so_far = len(window.chat.messages[-1].text)
    qtbot.waitUntil(lambda: len(window.chat.messages[-1].text) > so_far + 10, timeout=60_000)
    watch.no_restart()

    window.show_view(window.chat_view)
    with qtbot.waitSignal(window.engine.finished, timeout=5_000) as finished:
        qtbot.keyClick(window, Qt.Key.Key_Escape)  # the Chat page's Stop
    assert finished.args[0] == chat_id and finished.args[1]["finish_reason"] == "cancelled"
    assert window.chat.messages[-1].status == "stopped"
    assert window.loader.state == "ready" and window.send_button.isEnabled()
    watch.no_restart()


def test_chat_stop_stops_only_its_own_queued_reply(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    watch = load(qtbot, window, smollm2_path, SamplingParams(temperature=0.7, max_tokens=400, seed=2))
    view = window.writing_view
    # The chat's token count goes to the engine before the writing request, its reply after it:
    # the chat's reply is queued behind writing help.
    window.input.setPlainText("Hello there.")
    window.chat_actions.send()
    view.select_action("translate")
    view.language_combo.setEditText("French")
    view.set_text(LONG_TEXT)
    view.run()
    writing_id = view.gen_id
    assert writing_id is not None
    qtbot.waitUntil(lambda: window.controller.gen_id is not None, timeout=60_000)
    row = window.chat.messages[-1]
    assert row.role == "assistant" and row.status == "streaming" and "queued" in row.note  # it says it waits
    assert window.stop_button.isEnabled() and not window.send_button.isEnabled()
    qtbot.waitUntil(lambda: bool(watch.text(writing_id)), timeout=120_000)  # writing help is running

    with qtbot.waitSignal(window.controller.busyChanged, timeout=5_000):
        window.stop_button.click()
    assert window.chat.messages[-1].status == "stopped" and window.chat.messages[-1].text == ""
    assert view.gen_id is not None and view.gen_id == writing_id  # writing help goes on
    assert window.loader.state == "generating" and not window.stop_button.isEnabled()
    assert window.send_button.isEnabled()  # the chat may queue another turn
    with qtbot.waitSignal(view.resultReady, timeout=300_000):
        pass
    assert view.last_stats["finish_reason"] in ("stop", "length") and view.result
    assert window.loader.state == "ready"
    watch.no_restart()


def test_a_chat_turn_sent_while_writing_runs_says_it_waits(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path
) -> None:
    watch = load(qtbot, window, smollm2_path, SamplingParams(temperature=0.7, max_tokens=400, seed=2))
    view = window.writing_view
    view.select_action("translate")
    view.language_combo.setEditText("French")
    view.set_text(LONG_TEXT)
    view.run()
    qtbot.waitUntil(lambda: bool(watch.text(view.gen_id)), timeout=120_000)
    assert window.loader.state == "generating" and window.send_button.isEnabled()
    window.input.setPlainText("Hello there.")
    window.chat_actions.send()
    assert window.controller.busy and "starts when" in window.banner.text()
    window.chat_actions.stop()  # the chat's Stop: only its own turn ends
    assert not window.controller.busy and not window.banner.isVisible()
    assert view.gen_id is not None
    with qtbot.waitSignal(view.resultReady, timeout=300_000):
        view.stop()
    assert view.last_stats["finish_reason"] == "cancelled" and window.loader.state == "ready"
    watch.no_restart()


def test_writing_uses_the_sampling_panel(qtbot: QtBot, window: MainWindow, smollm2_path: Path) -> None:
    load(qtbot, window, smollm2_path, SamplingParams(temperature=0.7, max_tokens=64, seed=4242))
    view = window.writing_view
    window.show_view(view)
    view.set_text(GRAMMAR_TEXT)
    view.select_action("grammar")
    with qtbot.waitSignal(view.resultReady, timeout=300_000):
        view.run()
    assert view.last_stats["seed"] == 4242  # the panel's seed, not a random one
    window.sampling_panel.seed.setValue(77)  # the panel's current settings, read at each run
    with qtbot.waitSignal(view.resultReady, timeout=300_000):
        view.run()
    assert view.last_stats["seed"] == 77
