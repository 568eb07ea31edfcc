"""The status bar's speed while a reply streams: live a few times a second, then llama.cpp's own figure."""

from __future__ import annotations

import re
import time
from itertools import pairwise
from pathlib import Path

from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.shell.main_window import MainWindow

SPEED = re.compile(r"Speed: (\d+\.\d) tokens/s")


def test_speed_is_live_while_a_reply_streams_and_final_at_the_end(
    qtbot: QtBot, window: MainWindow, smollm2_path: Path
) -> None:
    window.sampling_panel.set_params(SamplingParams(temperature=0.8, max_tokens=120, seed=11), LoadParams(n_ctx=1024))
    with qtbot.waitSignal(window.engine.loaded, timeout=120_000):
        window.loader.open_model(str(smollm2_path))
    status = window.status_line
    shown: list[tuple[float, str, bool]] = []  # (when, text, the reply still streaming) at each change

    def look() -> None:  # a person glancing at the label every 20 ms
        text = status.speed_label.text()
        if not shown or shown[-1][1] != text:
            shown.append((time.monotonic(), text, window.controller.gen_id is not None))

    look()
    watcher = QTimer()
    watcher.timeout.connect(look)
    watcher.start(20)
    first_token: list[float] = []
    window.engine.tokenCount.connect(lambda *_: first_token.append(time.monotonic()) if not first_token else None)

    window.input.setPlainText("Write a long story about a lighthouse keeper and a storm.")
    with qtbot.waitSignal(window.controller.replyFinished, timeout=120_000) as blocker:
        window.chat_actions.send()
    ended = time.monotonic()
    look()
    stats = blocker.args[0]
    assert stats["tokens"] >= 100, stats  # a reply long enough to watch (~120 tokens)

    live = [(t, text) for t, text, streaming in shown if streaming]
    assert live, f"no speed shown before the reply ended: {shown}"
    for _, text in live:
        m = SPEED.fullmatch(text)
        assert m is not None and float(m.group(1)) > 0, text
    # at most ~4 times a second, never once per token
    streamed_s = ended - first_token[0]
    gaps = [b - a for (a, _), (b, _) in pairwise(live)]
    assert all(g >= 0.2 for g in gaps), gaps
    assert len(live) <= 4 * streamed_s + 1, (len(live), streamed_s)
    # at the end: the final figure, and no more live updates
    assert status.speed_label.text() == f"Speed: {float(stats['tg_tps']):.1f} tokens/s"
    assert not status.live_timer.isActive()
    count = len(shown)
    qtbot.wait(700)
    watcher.stop()
    assert len(shown) == count and status.speed_label.text() == f"Speed: {float(stats['tg_tps']):.1f} tokens/s"
    window.engine.tokenCount.emit(12345, 5)  # another request's tokens (Writing help): not the chat reply's
    assert not status.live_timer.isActive()
