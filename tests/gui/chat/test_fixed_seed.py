"""With a fixed seed, the chat gives the same reply to the same request in every state of the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.shell.main_window import MainWindow
from tests.gui.chat.test_chat_conversations import load, turn


@pytest.mark.slow
def test_a_fixed_seed_gives_the_same_reply_fresh_regenerated_and_in_a_new_conversation(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path
) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=1.0, max_tokens=30, seed=1234), LoadParams(n_ctx=1024))
    load(qtbot, window, smollm2_path)
    question = "Name three colours of the rainbow."
    replies = [turn(qtbot, window, question)]  # fresh engine
    texts = [window.chat.messages[-1].text]
    for _ in range(2):  # the same request again, its prompt now cached in the engine
        with qtbot.waitSignal(window.controller.replyFinished, timeout=120_000) as blocker:
            window.chat_actions.regenerate()
        replies.append(blocker.args[0])
        texts.append(window.chat.messages[-1].text)
    turn(qtbot, window, "And three fruits?")  # another request in between, sharing the prefix
    window.sidebar.new_conversation()
    replies.append(turn(qtbot, window, question))  # a new conversation on the warm engine
    texts.append(window.chat.messages[-1].text)
    assert texts[0].strip()
    assert len(set(texts)) == 1, texts
    assert {r["seed"] for r in replies} == {1234}
    # each evaluated the whole prompt (with the prefix cache, a regenerate evaluated only its last token)
    assert len({r["prompt_tokens"] for r in replies}) == 1 and replies[0]["prompt_tokens"] > 1
