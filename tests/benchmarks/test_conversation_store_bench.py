"""Issue-5 timing goals for the conversation store on a large history (20,000 messages, ~11 MB).
Run: pytest -m benchmarks tests/benchmarks/test_conversation_store_bench.py -s

Goals (the store runs on the GUI thread, so its calls must stay far below a frame):
* opening, with the integrity check and crash recovery, well under a second;
* one streamed-reply save (one transaction) ≤ 5 ms at the median, i.e. ≤ 2 % of the 250 ms flush interval;
* a search ≤ 100 ms, and FTS5 faster than the LIKE fallback (ratio printed).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from sizewise.core.chat.reply import FLUSH_INTERVAL_S
from sizewise.core.chat.store import ConversationStore

WORDS = [
    "river",
    "mountain",
    "bread",
    "travel",
    "garden",
    "window",
    "music",
    "letter",
    "harbour",
    "winter",
    "lantern",
    "orchard",
]


def _fill(path: Path, conversations: int = 500, per_conversation: int = 40) -> None:
    with ConversationStore.open(path) as store:
        db = store._db  # bulk insert in one transaction: building the fixture is not what is timed
        db.execute("BEGIN")
        now = time.time()
        for c in range(conversations):
            db.execute(
                "INSERT INTO conversations (uid, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (f"c{c}", f"Conversation {c} about {WORDS[c % len(WORDS)]}", now, now + c),
            )
            cid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            for m in range(per_conversation):
                text = " ".join(WORDS[(c + m + k) % len(WORDS)] for k in range(80)) + f" token{c}x{m}"
                db.execute(
                    "INSERT INTO messages (uid, conversation_id, position, role, content, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (f"m{c}-{m}", cid, m, "user" if m % 2 == 0 else "assistant", text, now, now),
                )
        db.execute("COMMIT")


@pytest.mark.benchmarks
def test_store_timings_on_a_large_history(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite3"
    _fill(path)
    size_mb = path.stat().st_size / 1e6
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        store = ConversationStore.open(path)
        opens.append(time.perf_counter() - t0)
        store.close()
    store = ConversationStore.open(path)
    try:
        conv = store.list_conversations()[0]
        reply = store.begin_reply(conv.id)
        saves = []
        for i in range(200):
            reply.text += f" piece{i}"
            t0 = time.perf_counter()
            assert reply.flush()
            saves.append(time.perf_counter() - t0)
        reply.finish()
        searches = {}
        for mode in (True, False):
            store.fts = mode and store.fts
            t0 = time.perf_counter()
            hits = store.search("token250x7")
            searches["fts" if mode else "like"] = time.perf_counter() - t0
            assert [h.conversation.title for h in hits] == [f"Conversation 250 about {WORDS[250 % len(WORDS)]}"]
    finally:
        store.close()
    open_s = statistics.median(opens)
    save_ms = statistics.median(saves) * 1000
    print(
        f"\n{size_mb:.1f} MB, 20,000 messages: open {open_s * 1000:.0f} ms (median of 3); "
        f"save {save_ms:.2f} ms median, {max(saves) * 1000:.2f} ms max "
        f"= {save_ms / (FLUSH_INTERVAL_S * 1000):.2%} of the flush interval; "
        f"search fts {searches['fts'] * 1000:.1f} ms, like {searches['like'] * 1000:.1f} ms "
        f"(like/fts = {searches['like'] / searches['fts']:.1f}x)"
    )
    assert open_s < 1.0
    assert save_ms <= 5.0
    assert searches["fts"] <= 0.1 and searches["fts"] < searches["like"]
