"""Issue 17 in the window: "Connect to a server…", chat and writing help on a real llama-server, its labels.

Every server here is a real ``llama-server`` on loopback (tests/llama_server.py) serving SmolLM2; the faults
are real too: a port nobody listens on, an address that is not one, and a server killed in the middle of a
reply.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QStatusBar
from pytestqt.qtbot import QtBot

from sizewise.core.sampling import LoadParams, SamplingParams
from sizewise.engine.remote.http import ServerAddress
from sizewise.gui.chat.chat_view import stats_line
from sizewise.gui.metrics.metrics_view import MetricsView
from sizewise.gui.shell.connect_dialog import ConnectDialog
from sizewise.gui.shell.main_window import MainWindow
from sizewise.gui.shell.model_loader import REMOTE_ROLE
from sizewise.gui.shell.status_line import StatusLine
from tests.llama_server import LlamaServer, free_port

pytestmark = pytest.mark.native
SHOTS = os.environ.get("SIZEWISE_REMOTE_SHOTS")  # a folder: the test saves its screenshots there


def connect(qtbot: QtBot, w: MainWindow, url: str, key: str = "") -> ConnectDialog:
    dialog = w.show_connect_dialog()
    dialog.url_edit.setText(url)
    dialog.key_edit.setText(key)
    dialog.connect_button.click()
    return dialog


def shot(widget: object, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(Path(SHOTS) / name))  # type: ignore[attr-defined]


def send(qtbot: QtBot, w: MainWindow, text: str) -> None:
    w.input.setPlainText(text)
    w.chat_actions.send()
    qtbot.waitUntil(lambda: w.controller.gen_id is not None, timeout=60_000)


def test_chat_and_writing_run_on_the_server_with_stop_and_labels(
    qtbot: QtBot, window: MainWindow, llama_server: LlamaServer
) -> None:
    w = window
    local_pid = w.engine.client.pid
    window.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=24, seed=5), LoadParams(n_ctx=1024))
    with qtbot.waitSignal(w.engine.loaded, timeout=60_000):
        dialog = connect(qtbot, w, llama_server.url)
        shot(dialog, "connect-dialog-connecting.png")
    assert w.loader.state == "ready" and w.engine.is_remote
    # the server's own context, not the Sampling panel's 1024: the context meter divides by the server's
    assert w.engine.loaded_info["n_ctx"] == 2048
    row = w.model_combo.currentIndex()
    assert w.model_combo.itemData(row, REMOTE_ROLE) == (llama_server.url, w.engine.remote.session.info.model)
    assert f"@ {llama_server.url}" in w.model_combo.currentText()
    assert "remote" in w.model_summary.text() and "predicted" in w.model_summary.text()
    assert w.status_line.mode_label.text() == "Chat on a server (remote)"  # loopback: not marked unencrypted
    assert w.status_line.memory_label.text().startswith("Server memory: ")
    assert w.status_line.memory_label.text().endswith(" MiB predicted")

    metrics_dock = w.docks[2]
    metrics_dock.show()
    view = w.metrics_page.ensure()
    assert isinstance(view, MetricsView) and view.remote is w.loader.remote_info

    # a reply streams from the server into the same conversation store
    tokens: list[str] = []
    w.engine.token.connect(lambda _id, text: tokens.append(text))
    send(qtbot, w, "Name a colour.")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=60_000)
    last = w.chat.messages[-1]
    assert last.role == "assistant" and last.status == "done" and last.text == "".join(tokens) != ""
    stored = w.conversations.messages(w.controller.conversation_id)
    assert stored[-1].content == last.text and stored[-1].status == "complete"
    assert stored[-1].stats["seed"] == 5 and stored[-1].stats["remote"] is True
    speed = w.status_line.speed_label.text()
    assert speed.startswith("Speed: ") and "tokens/s received (remote), server " in speed
    assert "tokens/s received (remote)" in stats_line(last.stats)
    assert " / 2,048 tokens" in w.status_line.context_label.text()
    sent = w.engine.remote.session.last_sampling_sent  # the Sampling panel's controls reach llama-server
    assert {"temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed"} <= set(sent)
    w.chat_actions.regenerate()  # the same seed gives the same reply again
    qtbot.waitUntil(lambda: not w.controller.busy and w.chat.messages[-1].status == "done", timeout=60_000)
    assert w.chat.messages[-1].text == last.text
    assert w.engine.client.pid == local_pid  # the local worker is untouched, warm for a local model
    shot(w, "chat-on-server.png")

    # Live metrics, first opened after the connection: remote figures, the server's memory, no local memory
    # a sample after the reply ended (while one streams the label says "now"; after it, the last reply's figures)
    qtbot.waitUntil(lambda: not math.isfinite(view.sampler.buffers["gen_tps"].last()), timeout=5_000)
    view._redraw()
    assert view.labels["gen"].text().startswith("remote, received here: ")
    assert view.labels["gen"].text().endswith(" tokens/s")
    assert "; the server's own: " in view.labels["gen"].text()
    assert view.labels["rss"].text() == "– (the model runs on the server)"
    assert view.labels["predicted"].text().endswith(" MiB on the server (predicted)")
    assert view.remote_memory_bytes == w.loader.remote_info["memory"]["bytes"]  # type: ignore[index]
    assert view.predicted_ram is None  # the local prediction line is not the server's
    legend = [label.text for _sample, label in view.memory.plot.legend.items]
    assert "server memory (remote, predicted)" in legend and "predicted RAM" in legend
    shot(metrics_dock, "metrics-on-server.png")
    metrics_dock.hide()

    # Stop ends the reply at once and the server stops generating
    w.sampling_panel.set_params(SamplingParams(temperature=0.9, max_tokens=1500, seed=1), LoadParams(n_ctx=1024))
    send(qtbot, w, "Write a very long story about the sea.")
    qtbot.waitUntil(lambda: len(w.chat.messages[-1].text) > 20, timeout=60_000)
    w.stop_button.click()
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=5_000)
    assert w.chat.messages[-1].status == "stopped" and w.chat.messages[-1].text
    qtbot.waitUntil(lambda: not llama_server.busy(), timeout=5_000)

    # writing help runs on the same server
    writing = w.writing_view
    w.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=30, seed=2), LoadParams(n_ctx=1024))
    writing.set_text("Their going too the park.")
    writing.select_action("grammar")
    writing.run()
    qtbot.waitUntil(lambda: writing.gen_id is None, timeout=60_000)
    assert writing.result

    # Unload lets the server go; the window is empty again and the server's model stays in the list
    w.load_button.click()
    qtbot.waitUntil(lambda: w.loader.state == "empty", timeout=10_000)
    assert not w.engine.is_remote and w.status_line.memory_label.text() == "Engine memory: –"
    assert w.model_combo.itemData(row, REMOTE_ROLE) is not None  # still offered: choose it and Load again


def test_server_killed_mid_reply_keeps_the_partial_reply(
    qtbot: QtBot, window: MainWindow, llama_server: LlamaServer
) -> None:
    w = window
    w.sampling_panel.set_params(SamplingParams(temperature=0.9, max_tokens=1500, seed=1), LoadParams(n_ctx=1024))
    with qtbot.waitSignal(w.engine.loaded, timeout=60_000):
        connect(qtbot, w, llama_server.url)
    send(qtbot, w, "Write a very long story about the sea.")
    qtbot.waitUntil(lambda: len(w.chat.messages[-1].text) > 20, timeout=60_000)
    llama_server.kill()
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=30_000)
    last = w.chat.messages[-1]
    assert last.status == "interrupted" and len(last.text) > 20
    stored = w.conversations.messages(w.controller.conversation_id)[-1]
    assert stored.status == "interrupted" and stored.content == last.text  # nothing that came is lost
    assert w.banner.isVisible() and w.banner.text() == last.note
    shot(w, "chat-server-killed.png")
    assert w.banner.text().startswith(f"The server at {llama_server.url} ") and w.banner.text().count(". ") == 0
    assert w.loader.state == "ready"  # still usable: a new turn says the server is gone, in one sentence
    w.input.setPlainText("Are you there?")
    w.chat_actions.send()  # refused at once: the turn may be over before a wait could see it running
    qtbot.waitUntil(lambda: not w.controller.busy and w.chat.messages[-1].status == "error", timeout=30_000)
    assert w.chat.messages[-1].role == "assistant" and w.chat.messages[-1].text == ""
    assert "refused" in w.banner.text() or "closed" in w.banner.text()


def test_bad_addresses_are_one_sentence_in_the_dialog_and_nothing_is_lost(qtbot: QtBot, window: MainWindow) -> None:
    w = window
    file_menu = w.menuBar().actions()[0].menu()
    assert w.connect_action in file_menu.actions()  # type: ignore[union-attr]
    w.connect_button.click()  # beside Open GGUF…: opens the dialog
    opened = w.findChildren(ConnectDialog)
    assert len(opened) == 1 and opened[0].isVisible()
    opened[0].reject()
    dialog = connect(qtbot, w, "ftp://example.org", "secret-key-123")
    assert dialog.isVisible() and not dialog.checking  # checked at once, no network
    assert dialog.status.text() == "'ftp://example.org' is not a server address; give one like http://127.0.0.1:8080."
    assert dialog.url_edit.text() == "ftp://example.org" and dialog.key_edit.text() == "secret-key-123"

    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    dialog.url_edit.setText(url)
    dialog.connect_button.click()
    assert dialog.checking and not dialog.url_edit.isEnabled()  # the network check runs in the background
    qtbot.waitUntil(lambda: not dialog.checking, timeout=15_000)
    text = dialog.status.text()
    assert text == f"Nothing answers at {url}: the connection was refused (is the server running?)."
    assert dialog.isVisible() and dialog.url_edit.text() == url and dialog.key_edit.text() == "secret-key-123"
    assert "secret-key-123" not in text
    shot(dialog, "connect-dialog-refused.png")

    dialog.url_edit.setText("http://user:pw@127.0.0.1:8080")
    dialog.connect_button.click()
    assert dialog.status.text() == "Put the API key in the API key field, not in the server address."
    dialog.reject()
    assert w.loader.state == "empty" and not w.engine.is_remote


def test_api_key_is_sent_and_never_stored(
    qtbot: QtBot, window: MainWindow, llama_servers: Callable[..., LlamaServer], tmp_path: Path
) -> None:
    server = llama_servers(api_key="k-9f3e1b7c")
    w = window
    dialog = connect(qtbot, w, server.url)  # no key: the server's 401 becomes one sentence
    qtbot.waitUntil(lambda: not dialog.checking, timeout=15_000)
    assert dialog.status.text() == (
        f"The server at {server.url} answered HTTP 401: it needs an API key: enter it in the API key field."
    )
    dialog.key_edit.setText("k-9f3e1b7c")
    with qtbot.waitSignal(w.engine.loaded, timeout=60_000):
        dialog.connect_button.click()
    assert w.loader.state == "ready"
    w.save_settings()
    w.sampling_panel.set_params(SamplingParams(max_tokens=8, seed=1), LoadParams(n_ctx=1024))
    send(qtbot, w, "Hi")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=60_000)
    assert w.chat.messages[-1].status == "done"
    w.chat.flush()
    assert server.url.encode() not in w.paths.settings_file.read_bytes()  # servers are not remembered
    files = [p for p in (tmp_path / "base").rglob("*") if p.is_file()]  # settings, conversations, logs
    assert w.paths.settings_file in files and (w.paths.log_dir / "remote.log") in files
    for path in files:
        assert b"k-9f3e1b7c" not in path.read_bytes(), path


def test_plain_http_to_another_machine_is_marked_unencrypted(qtbot: QtBot) -> None:
    """The label's wording for a server off this machine over plain http (tests reach loopback only)."""
    status = QStatusBar()
    qtbot.addWidget(status)
    line = StatusLine(status)
    address = ServerAddress.parse("http://192.168.1.20:8080")
    msg = {
        "remote": True,
        "url": address.url,
        "encrypted": address.encrypted,
        "loopback": address.loopback,
        "warning": address.warning(),
        "memory": {"source": "unknown", "bytes": None, "text": "unknown: the server reports no memory use"},
    }
    line.show_loaded(msg)
    assert line.mode_label.text() == "Chat on a server (remote, unencrypted)"
    assert "not encrypted" in line.mode_label.toolTip()
    assert line.memory_label.text() == "Server memory: unknown"
    https = ServerAddress.parse("https://192.168.1.20:8443")
    line.show_loaded(msg | {"url": https.url, "encrypted": True, "loopback": False, "warning": None})
    assert line.mode_label.text() == "Chat on a server (remote)"


def test_local_model_then_server_then_local_again(
    qtbot: QtBot, window: MainWindow, llama_server: LlamaServer, smollm2_path: Path
) -> None:
    """Switching engines: the local model is unloaded (its worker stays warm), and a local load lets the server go."""
    w = window
    w.sampling_panel.set_params(SamplingParams(temperature=0.2, max_tokens=8, seed=4), LoadParams(n_ctx=1024))
    with qtbot.waitSignal(w.engine.loaded, timeout=120_000):
        w.loader.open_model(str(smollm2_path))
    local_pid = w.engine.client.pid
    with qtbot.waitSignal(w.engine.loaded, timeout=60_000):
        connect(qtbot, w, llama_server.url)
    assert w.engine.is_remote and w.loader.state == "ready"
    qtbot.wait(300)  # the local worker's own "unloaded" arrives now: it must not empty the window
    assert w.loader.state == "ready" and w.engine.is_loaded and w.engine.client.pid == local_pid
    send(qtbot, w, "Hello")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=60_000)
    assert w.chat.messages[-1].status == "done" and w.chat.messages[-1].stats.get("remote") is True

    with qtbot.waitSignal(w.engine.loaded, timeout=120_000):
        w.loader.open_model(str(smollm2_path))
    assert not w.engine.is_remote and w.loader.state == "ready" and w.engine.client.pid == local_pid
    assert w.status_line.mode_label.text() == "Chat (model's template)"
    send(qtbot, w, "Hello again")
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=60_000)
    assert w.chat.messages[-1].status == "done" and "remote" not in w.chat.messages[-1].stats


def test_a_host_that_never_answers_leaves_the_window_responsive(qtbot: QtBot, window: MainWindow) -> None:
    """A listener that accepts and never answers: the dialog waits in the background, then says so in one sentence;
    meanwhile a 10 ms timer on the GUI thread keeps firing (nothing network-bound runs there)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts connections; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        dialog = ConnectDialog(parent=window, timeout=1.5)
        qtbot.addWidget(dialog)
        dialog.show()
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.monotonic()))
        timer.start()
        dialog.url_edit.setText(url)
        dialog.connect_button.click()
        assert dialog.checking
        qtbot.waitUntil(lambda: not dialog.checking, timeout=15_000)
        timer.stop()
    assert dialog.status.text() == f"The server at {url} did not answer within 1.5 s (GET /health)."
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 50 and max(gaps) < 0.2, max(gaps)
