"""Making SQLite files unusable for real, for the conversation-store tests."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from sizewise.core.chat.store import ConversationStore

HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    db.execute("BEGIN EXCLUSIVE")
else:
    db.execute("BEGIN IMMEDIATE")
db.execute("SELECT count(*) FROM conversations").fetchone()
print("holding", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@contextlib.contextmanager
def lock_held(path: Path, mode: str) -> Iterator[None]:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "holding"
            yield
        finally:
            proc.stdin.close()
            proc.wait(10)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file truly read-only: root ignores permission bits, so use the immutable flag there."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(stat.S_IRUSR | stat.S_IRGRP)
        try:
            yield
        finally:
            path.chmod(mode)


def make_longer_history(path: Path, conversations: int = 3, messages: int = 20) -> None:
    """Enough rows that ``quick_check`` takes a few thousand VM steps (its progress handler runs every 1000)."""
    with ConversationStore.open(path) as store:
        for i in range(conversations):
            c = store.create_conversation(f"Conversation {i}")
            for j in range(messages):
                store.add_message(c.id, "user" if j % 2 == 0 else "assistant", f"message {j} " + "words " * 50)


def damage_table_root(path: Path, table: str) -> None:
    """Break the b-tree header of a table's root page: a ``quick_check`` finds it; reading the table fails."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    root = int(db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0])
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    db.close()
    data = bytearray(path.read_bytes())
    at = (root - 1) * page_size
    data[at : at + 8] = b"\x0d\xff\xff\xff\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
