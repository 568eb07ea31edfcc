"""Kill the desktop app (SIGKILL) while a reply streams: nothing earlier is lost, the partial reply is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from pytestqt.qtbot import QtBot

from sizewise.core.chat.store import ConversationStore
from sizewise.core.paths import basedir_paths
from sizewise.gui.shell.main_window import MainWindow

APP = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from sizewise.core.paths import basedir_paths
from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.gui.shell.app import make_app
from sizewise.gui.shell.drive import chat_turn, load_model
from sizewise.gui.shell.main_window import MainWindow

app = make_app()
w = MainWindow(basedir_paths(sys.argv[1]).ensure())
w.show()
w.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=12, seed=1), LoadParams(n_ctx=2048))
load_model(w, sys.argv[2])
chat_turn(w, "What is two plus two?")
w.sampling_panel.set_params(SamplingParams(temperature=0.8, max_tokens=1500, seed=1), LoadParams(n_ctx=2048))

def on_token(*_):
    if len(w.chat.messages[-1].text) > 150 and not getattr(w, "announced", False):
        w.announced = True
        print("STREAMING", w.engine.client.pid, flush=True)

w.engine.token.connect(on_token)
w.input.setPlainText("Write a very long story about a lighthouse keeper.")
w.chat_actions.send()
app.exec()
"""


def test_sigkill_mid_reply_keeps_history_and_partial_reply(qtbot: QtBot, tmp_path: Path, smollm2_path: Path) -> None:
    base = tmp_path / "profile"
    proc = subprocess.Popen(
        [sys.executable, "-c", APP, str(base), str(smollm2_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        line = ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("STREAMING") or not line:
                break
        assert line.startswith("STREAMING"), "the app never started streaming"
        engine_pid = int(line.split()[1])
        time.sleep(0.6)  # the reply is saved as it grows (every 250 ms): let at least one save happen
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    # the orphaned engine notices its parent is gone and exits by itself
    deadline = time.monotonic() + 15
    while psutil.pid_exists(engine_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(engine_pid) or psutil.Process(engine_pid).status() == psutil.STATUS_ZOMBIE

    paths = basedir_paths(base)
    with ConversationStore.open(paths.database_file) as store:
        assert store.problem is None
        (conv,) = store.list_conversations()
        messages = store.messages(conv.id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0].content == "What is two plus two?" and messages[1].status == "complete"
    assert messages[1].content.strip()
    partial = messages[3]
    assert partial.status == "interrupted" and len(partial.content) > 50

    # the app, started again, shows it all, the partial reply marked as interrupted
    w = MainWindow(paths)
    qtbot.addWidget(w)
    w.sidebar.select_conversation(conv.id)
    assert [m.text for m in w.chat.messages] == [m.content for m in messages]
    assert w.chat.messages[-1].status == "interrupted"
    w.close()
