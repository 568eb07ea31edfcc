"""Start-up on a 1 GB conversation history: opening the store as the app does, on the GUI thread.
Run: pytest -m benchmarks tests/benchmarks/test_store_startup_bench.py -s

The window opens the store before it shows (ConversationStore.open_at_startup): the integrity check
(``PRAGMA quick_check``, which reads every page) stops after STARTUP_CHECK_BUDGET_S and is finished in
the background; finding the replies a crash left 'streaming' reads an index, not every message. Timed
here, against opening with the whole check (``ConversationStore.open``, what commands do), from the
page cache (median of 3) and with the file dropped from it (posix_fadvise DONTNEED: a first start after
a reboot). Also printed: the whole check on its own (what the background job costs) and the one-time cost
of adding the recovery index to a history that lacks it (the first start after this change).

Goal: the window waits at most 0.5 s for the store, from the page cache or from the disk, however large
the history; ratio to the goal printed. The file is built in tmp (about 4 s: one transaction, no
journal) and deleted; the test is skipped with less than 3 GB free there.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sizewise.core.chat.opening import STARTUP_CHECK_BUDGET_S, check_in_full
from sizewise.core.chat.store import ConversationStore

pytestmark = pytest.mark.benchmarks

GOAL_S = 0.5
HISTORY_BYTES = 1 << 30
MESSAGE_CHARS = 100_000  # large messages fill a gigabyte quickly; their words are long, so the search index stays small
PER_CONVERSATION = 50


def _build(path: Path) -> None:
    ConversationStore.open(path).close()  # the app's schema, search index and triggers
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")  # building the fixture is not what is timed
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        now = time.time()
        word = "w" * 999
        messages = HISTORY_BYTES // MESSAGE_CHARS
        for c in range(messages // PER_CONVERSATION + 1):
            db.execute(
                "INSERT INTO conversations (uid, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (f"c{c}", f"Conversation {c}", now, now + c),
            )
            cid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            for m in range(PER_CONVERSATION):
                text = f"message {c} {m} " + " ".join([word] * (MESSAGE_CHARS // 1000))
                db.execute(
                    "INSERT INTO messages (uid, conversation_id, position, role, content, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (f"m{c}-{m}", cid, m, "user" if m % 2 == 0 else "assistant", text, now, now),
                )
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode = WAL")
    finally:
        db.close()


def _drop_from_page_cache(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _start_up(opener: Callable[[Path], ConversationStore], path: Path) -> tuple[float, bool]:
    """Seconds until the store is open and the sidebar's list is read, and whether the check finished."""
    t0 = time.perf_counter()
    store = opener(path)
    store.list_conversations()
    elapsed = time.perf_counter() - t0
    try:
        assert store.problem is None and store.persistent
        return elapsed, store.integrity_checked
    finally:
        store.close()


def test_start_up_on_a_1_gb_history(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    if free < 3 * HISTORY_BYTES:
        pytest.skip(f"needs 3 GB free in {tmp_path} for a 1 GB history; {free / 2**30:.1f} GB free")
    path = tmp_path / "conversations.sqlite3"
    try:
        t0 = time.perf_counter()
        _build(path)
        built_s = time.perf_counter() - t0
        size_gb = path.stat().st_size / 2**30

        openers: dict[str, Callable[[Path], ConversationStore]] = {
            "bounded": ConversationStore.open_at_startup,
            "whole check": ConversationStore.open,
        }
        warm: dict[str, list[float]] = {name: [] for name in openers}
        cold: dict[str, float] = {}
        finished: dict[str, bool] = {}
        for name, opener in openers.items():
            _drop_from_page_cache(path)
            cold[name], finished[name] = _start_up(opener, path)
        for _ in range(3):
            for name, opener in openers.items():
                warm[name].append(_start_up(opener, path)[0])
        t0 = time.perf_counter()
        assert check_in_full(path) == ""
        check_warm = time.perf_counter() - t0
        _drop_from_page_cache(path)
        t0 = time.perf_counter()
        assert check_in_full(path) == ""
        check_cold = time.perf_counter() - t0

        db = sqlite3.connect(path)
        db.execute("DROP INDEX messages_streaming")
        db.close()
        once, _ = _start_up(ConversationStore.open_at_startup, path)
    finally:
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)

    bounded_warm = statistics.median(warm["bounded"])
    print(
        f"\n{size_gb:.2f} GB history (built in {built_s:.1f} s), store opened as the app does on the GUI thread:"
        f"\n  bounded check ({STARTUP_CHECK_BUDGET_S * 1000:.0f} ms): page cache {bounded_warm * 1000:.0f} ms, "
        f"disk {cold['bounded'] * 1000:.0f} ms (check finished: {finished['bounded']})"
        f"\n  whole check:          page cache {statistics.median(warm['whole check']) * 1000:.0f} ms, "
        f"disk {cold['whole check'] * 1000:.0f} ms"
        f"\n  the whole check alone, in the background: page cache {check_warm:.2f} s, disk {check_cold:.2f} s"
        f"\n  first start on a history without the recovery index (adds it once): {once:.2f} s"
        f"\n  goal ≤ {GOAL_S * 1000:.0f} ms: ratio {bounded_warm / GOAL_S:.2f} (page cache), "
        f"{cold['bounded'] / GOAL_S:.2f} (disk)"
    )
    assert not finished["bounded"] and finished["whole check"]
    assert bounded_warm <= GOAL_S and cold["bounded"] <= GOAL_S
