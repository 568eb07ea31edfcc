"""Making SQLite files unusable for real, for the conversation-store tests."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
