"""Kill the app with SIGKILL while a reply streams: nothing before it is lost, the partial reply is kept.

A real ``sizewise chat`` process with the real starter model writes a long reply; once some of it has
reached the database the process is killed outright (no handler runs), then the store is opened
again as the next start of the app would.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sizewise.core.chat.reply import FLUSH_PIECES
from sizewise.core.chat.store import ConversationStore
from sizewise.core.paths import basedir_paths

PROMPT = "Now count from 1 to 1000, separated by spaces."  # reliably long, even from a 135M model


def _latest_reply(db_path: Path, after_position: int) -> tuple[str, str] | None:
    db = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute(
            "SELECT content, status FROM messages WHERE role = 'assistant' AND position > ? "
            "ORDER BY position DESC LIMIT 1",
            (after_position,),
        ).fetchone()
    finally:
        db.close()
    return None if row is None else (str(row[0]), str(row[1]))


@pytest.mark.slow
def test_sigkill_while_streaming_keeps_history_and_the_partial_reply(tmp_path: Path, smollm2_path: Path) -> None:
    base = tmp_path / "base"
    paths = basedir_paths(base).ensure()
    with ConversationStore.open(paths.database_file) as store:
        conv = store.create_conversation("Counting", system_prompt="You follow instructions exactly.")
        store.add_message(conv.id, "user", "Count from 1 to 5, separated by spaces.")
        store.add_message(
            conv.id,
            "assistant",
            "1 2 3 4 5",
            model_path=str(smollm2_path),
            sampling={"temperature": 0.0},
            stats={"tokens": 9, "tg_tps": 120.0},
        )
        earlier = [(m.uid, m.role, m.content, m.status, m.stats) for m in store.messages(conv.id)]

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "sizewise",
        "--basedir",
        str(base),
        "chat",
        "starter",
        "--conversation",
        "Counting",
        "--prompt",
        PROMPT,
        "--max-tokens",
        "3000",
        "--temperature",
        "0",
        "--repeat-penalty",
        "1.0",
        "--seed",
        "3",
        "--ctx",
        "4096",
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        seen: tuple[str, str] | None = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"chat ended before it could be killed: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            seen = _latest_reply(paths.database_file, after_position=2)
            if seen is not None and seen[1] == "streaming" and len(seen[0]) >= 60:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no part of the reply reached the database within 180 s")
        engines = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        out, _err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    # The orphaned engine worker sees its pipe close and exits by itself.
    _gone, alive = psutil.wait_procs(engines, timeout=15)
    for p in alive:
        p.kill()
    assert not alive, "the engine worker outlived the killed app"

    streamed = out.decode("utf-8")
    assert seen is not None
    with ConversationStore.open(paths.database_file) as store:
        assert store.problem is None
        msgs = store.messages(conv.id)
        assert [(m.uid, m.role, m.content, m.status, m.stats) for m in msgs[:2]] == earlier  # intact
        assert (msgs[2].role, msgs[2].content, msgs[2].status) == ("user", PROMPT, "complete")
        reply = msgs[3]
        assert len(msgs) == 4 and reply.role == "assistant"
        assert reply.status == "interrupted" and store.recovered == [reply.id]
        assert reply.content.startswith(seen[0])  # everything once saved is still there
        assert streamed.startswith(reply.content)  # and it is what the terminal showed
        unsaved = streamed[len(reply.content) :]
        print(f"\nsaved {len(reply.content)} characters of the partial reply; {len(unsaved)} shown but unsaved")
        assert len(unsaved) <= FLUSH_PIECES * 32  # at most one batch of pieces was in flight
        assert reply.model_path == str(smollm2_path) and reply.sampling["seed"] == 3
    # and the app starts normally afterwards: the interrupted reply stays interrupted
    with ConversationStore.open(paths.database_file) as store:
        assert store.recovered == [] and store.messages(conv.id)[3].status == "interrupted"
