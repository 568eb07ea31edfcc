"""The conversation store on real SQLite files: schema, search, export/import, and bad files.

Bad files are made for real: another process holds the lock, the file is made read-only at the
OS level (chattr +i when the tests run as root, who ignores permission bits), bytes are damaged.
Every such test checks that the file is byte-for-byte unchanged afterwards and that its history
is still there when the problem goes away.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sizewise.core.chat import opening
from sizewise.core.chat import schema as conv_mod
from sizewise.core.chat.export import EXPORT_FORMAT
from sizewise.core.chat.opening import BUSY_TIMEOUT_S, StoreError
from sizewise.core.chat.records import DEFAULT_TITLE
from sizewise.core.chat.reply import StreamingReply
from sizewise.core.chat.schema import SCHEMA_VERSION, fts5_available, migrate
from sizewise.core.chat.store import ConversationStore
from sizewise.core.errors import UserError
from tests.db_helpers import damage_table_root, lock_held, make_longer_history, read_only


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw(path: Path) -> sqlite3.Connection:
    """A plain read-only connection, to look at the file without going through the store."""
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def make_history(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Two conversations with a few messages; returns what was written, for later comparison."""
    written: dict[str, list[tuple[str, str]]] = {}
    with ConversationStore.open(path) as store:
        assert store.problem is None
        for title, turns in {
            "Trip to Lisbon": [("user", "Where should I eat in Alfama?"), ("assistant", "Try the grilled sardines.")],
            "Bread": [("user", "How long does sourdough proof?"), ("assistant", "Usually 4 to 12 hours.")],
        }.items():
            c = store.create_conversation(title, system_prompt="Be brief.")
            for role, text in turns:
                store.add_message(c.id, role, text)
            written[title] = turns
    return written


def history_of(store: ConversationStore) -> dict[str, list[tuple[str, str]]]:
    return {c.title: [(m.role, m.content) for m in store.messages(c.id)] for c in store.list_conversations()}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "conversations.sqlite3"


# -- schema and migrations ------------------------------------------------------------------------
def test_new_file_uses_wal_and_the_current_schema(db_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        assert store.problem is None and store.persistent
        c = store.create_conversation("x")
        store.add_message(c.id, "user", "hello")
        db = raw(db_path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.close()


def _version_1_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    migrate(db, target=1)
    db.execute(
        "INSERT INTO conversations (id, uid, title, created_at, updated_at) VALUES (1, 'u1', 'Old one', 1.0, 2.0)"
    )
    db.execute(
        "INSERT INTO messages (uid, conversation_id, position, role, content, created_at, updated_at) "
        "VALUES ('m1', 1, 0, 'user', 'Remember the aubergine recipe', 1.0, 1.0)"
    )
    db.execute("COMMIT")
    db.close()


def test_migration_from_version_1_keeps_data_and_indexes_it(db_path: Path) -> None:
    _version_1_file(db_path)
    assert raw(db_path).execute("PRAGMA user_version").fetchone()[0] == 1
    with ConversationStore.open(db_path) as store:
        assert store.problem is None
        assert history_of(store) == {"Old one": [("user", "Remember the aubergine recipe")]}
        hits = store.search("aubergine")
        assert [h.conversation.title for h in hits] == ["Old one"]
        assert store.fts == fts5_available()
    assert raw(db_path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_failing_migration_leaves_the_file_as_it_was(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _version_1_file(db_path)
    calls = []

    def broken_step(db: sqlite3.Connection, fts: bool) -> None:
        calls.append(1)
        db.execute("CREATE TABLE half_done (x)")
        if len(calls) == 1:  # only for the file; the temporary store's own migration then succeeds
            raise RuntimeError("step failed half-way")
        conv_mod._migrate_2_search_index(db, fts)

    monkeypatch.setattr(conv_mod, "MIGRATIONS", [conv_mod.MIGRATIONS[0], broken_step])
    store = ConversationStore.open(db_path)
    assert store.problem is not None and store.problem.kind == "unavailable"
    assert "step failed half-way" in store.problem.message
    store.close()
    db = raw(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    assert db.execute("SELECT content FROM messages").fetchall() == [("Remember the aubergine recipe",)]
    db.close()


def test_file_from_a_newer_version_is_left_untouched(db_path: Path) -> None:
    make_history(db_path)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    before = sha(db_path)
    store = ConversationStore.open(db_path)
    assert store.problem is not None and store.problem.kind == "newer_schema"
    assert "newer Sizewise" in store.problem.message and str(db_path) in store.problem.message
    assert not store.persistent and store.list_conversations() == []
    store.create_conversation("works in memory")
    store.close()
    assert sha(db_path) == before


def test_a_foreign_sqlite_file_is_not_taken_over(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE accounts (name)")
    db.commit()
    db.close()
    before = sha(db_path)
    with ConversationStore.open(db_path) as store:
        assert store.problem is not None and "not a Sizewise conversation file" in store.problem.message
    assert sha(db_path) == before


# -- conversations and messages -------------------------------------------------------------------
def test_create_add_rename_and_order(db_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        a = store.create_conversation(system_prompt="You are terse.", preset="Precise")
        assert a.title == DEFAULT_TITLE
        store.add_message(a.id, "user", "What is the boiling point of water at sea level in Celsius please?")
        a = store.get_conversation(a.id)  # type: ignore[assignment]
        assert a is not None and a.title == "What is the boiling point of water"  # named by its first message
        b = store.create_conversation("Second")
        assert store.list_conversations()[0].title == "Second"  # most recently updated first
        time.sleep(0.01)
        store.add_message(
            a.id,
            "assistant",
            "100 °C.",
            model_path="/m/a.gguf",
            sampling={"temperature": 0.2},
            stats={"tokens": 4, "tg_tps": 120.5},
        )
        assert [c.id for c in store.list_conversations()] == [a.id, b.id]
        renamed = store.rename(b.id, "  Renamed   title ")
        assert renamed.title == "Renamed title"
        assert store.find_by_title("renamed TITLE") is not None  # falls back to ignoring case
        with pytest.raises(UserError):
            store.rename(b.id, "   ")
        msgs = store.messages(a.id)
        assert [(m.role, m.position, m.status) for m in msgs] == [("user", 0, "complete"), ("assistant", 1, "complete")]
        assert msgs[1].model_path == "/m/a.gguf" and msgs[1].sampling == {"temperature": 0.2}
        assert msgs[1].stats == {"tokens": 4, "tg_tps": 120.5}
        conv = store.get_conversation(a.id)
        assert conv is not None and conv.system_prompt == "You are terse." and conv.preset == "Precise"
        assert conv.message_count == 2


def test_regenerate_and_edit_support(db_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        c = store.create_conversation("x")
        store.add_message(c.id, "user", "one")
        second = store.add_message(c.id, "assistant", "two")
        store.add_message(c.id, "user", "three")
        assert store.delete_messages_from(second.id) == 2
        assert [m.content for m in store.messages(c.id)] == ["one"]
        first = store.messages(c.id)[0]
        store.update_message(first.id, content="one, edited")
        assert store.messages(c.id)[0].content == "one, edited"
        assert store.add_message(c.id, "assistant", "new").position == 1


def test_delete_undo_and_purge(db_path: Path) -> None:
    marker = "Xylophonequartzmarker"
    with ConversationStore.open(db_path) as store:
        keep = store.create_conversation("Keep")
        store.add_message(keep.id, "user", "stays")
        gone = store.create_conversation("Secret")
        store.add_message(gone.id, "user", f"my {marker} text")
        store.add_message(keep.id, "assistant", "written after it, on the same page")
    assert marker.encode() in db_path.read_bytes()  # closing checkpointed the text into the file
    with ConversationStore.open(db_path) as store:
        store.delete(gone.id)
        assert [c.title for c in store.list_conversations()] == ["Keep"]
        assert store.search(marker) == []
        assert {c.title for c in store.list_conversations(include_deleted=True)} == {"Keep", "Secret"}
        store.undo_delete(gone.id)
        assert [h.conversation.title for h in store.search(marker)] == ["Secret"]
        store.delete(gone.id)
        assert store.purge_deleted() == 1
        assert store.get_conversation(gone.id) is None
        db = raw(db_path)
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 2  # the deleted one cascaded
        db.close()
    # secure_delete: the purged text is not left behind in the file's free pages
    assert marker.encode() not in db_path.read_bytes()


def test_deleted_conversations_are_purged_on_the_next_open(db_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        c = store.create_conversation("Temp")
        store.delete(c.id)
    with ConversationStore.open(db_path) as store:
        assert store.list_conversations(include_deleted=True) == []


@pytest.mark.parametrize("use_fts", [True, False], ids=["fts5", "like"])
def test_search_titles_and_text(db_path: Path, use_fts: bool) -> None:
    if use_fts and not fts5_available():
        pytest.fail("this SQLite lacks FTS5; the LIKE variant covers it, but the build should have FTS5")
    make_history(db_path)
    with ConversationStore.open(db_path, use_fts=use_fts) as store:
        assert store.fts is use_fts
        assert [h.conversation.title for h in store.search("sardines")] == ["Trip to Lisbon"]
        assert [h.conversation.title for h in store.search("SOURDOUGH")] == ["Bread"]  # any case
        hit = store.search("sardin")[0]  # a word's beginning is enough
        assert "sardines" in hit.snippet and not hit.in_title
        title_hit = store.search("lisbon")[0]
        assert title_hit.in_title and title_hit.conversation.title == "Trip to Lisbon"
        assert store.search("bagels") == []
        assert store.search("   ") == []
        c = store.create_conversation("Percent")
        store.add_message(c.id, "user", "a 100% natural_thing")
        assert [h.conversation.title for h in store.search("100%")] == ["Percent"]
        assert store.search('"unbalanced AND (') == []  # search syntax in the query is just text


# -- export and import ----------------------------------------------------------------------------
def test_export_import_round_trip_without_duplicates(db_path: Path, tmp_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        c = store.create_conversation("Figures", system_prompt="Answer in French.", preset="Creative")
        store.add_message(c.id, "user", "Bonjour?")
        store.add_message(
            c.id,
            "assistant",
            "Salut!",
            model_path="/models/smol.gguf",
            sampling={"temperature": 1.1, "seed": 3},
            stats={"tokens": 3, "tg_tps": 99.0},
            status="interrupted",
        )
        store.create_conversation("Empty one")
        data = json.loads(json.dumps(store.export_all()))  # through real JSON text
        one = store.export_conversation(c.id)
        md = store.export_markdown(c.id)
    assert data["format"] == EXPORT_FORMAT and len(data["conversations"]) == 2
    assert one["title"] == "Figures"
    assert [(m["role"], m["content"]) for m in one["messages"]] == [("user", "Bonjour?"), ("assistant", "Salut!")]
    assert md.startswith("# Figures\n")
    assert "### You\n\nBonjour?" in md and "### Assistant\n\nSalut!" in md
    assert "> Answer in French." in md and "smol.gguf · 3 tokens · 99.0 tokens/s · interrupted" in md

    other = tmp_path / "other.sqlite3"
    with ConversationStore.open(other) as store:
        first = store.import_data(data)
        assert (first.imported, first.skipped, first.messages) == (2, 0, 2)
        again = store.import_data(data)
        assert (again.imported, again.skipped) == (0, 2)
        assert len(store.list_conversations()) == 2
        figures = store.find_by_title("Figures")
        assert figures is not None and figures.system_prompt == "Answer in French." and figures.preset == "Creative"
        m = store.messages(figures.id)[1]
        assert (m.model_path, m.sampling, m.stats, m.status) == (
            "/models/smol.gguf",
            {"temperature": 1.1, "seed": 3},
            {"tokens": 3, "tg_tps": 99.0},
            "interrupted",
        )
        assert store.export_conversation(figures.id)["messages"] == one["messages"]


def test_a_hand_written_file_imports_once(tmp_path: Path) -> None:
    data = {"title": "Notes", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    with ConversationStore.open(tmp_path / "c.sqlite3") as store:
        assert store.import_data(data).imported == 1
        assert store.import_data(data).skipped == 1
        assert len(store.list_conversations()) == 1


def test_a_bad_import_file_imports_nothing(tmp_path: Path) -> None:
    data = {
        "format": EXPORT_FORMAT,
        "conversations": [
            {"title": "fine", "messages": [{"role": "user", "content": "ok"}]},
            {"title": "bad", "messages": [{"role": "robot", "content": "beep"}]},
        ],
    }
    with ConversationStore.open(tmp_path / "c.sqlite3") as store:
        with pytest.raises(UserError, match="needs a role"):
            store.import_data(data, source="backup.json")
        with pytest.raises(UserError, match="neither"):
            store.import_data({"hello": 1})
        assert store.list_conversations() == []


# -- saving replies as they stream ----------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _stored_content(path: Path, message_id: int) -> tuple[str, str]:
    db = raw(path)
    try:
        row = db.execute("SELECT content, status FROM messages WHERE id = ?", (message_id,)).fetchone()
        return str(row[0]), str(row[1])
    finally:
        db.close()


def test_a_streaming_reply_reaches_the_file_in_small_steps(db_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        c = store.create_conversation("s")
        store.add_message(c.id, "user", "go")
        clock = FakeClock()
        reply = store.begin_reply(c.id, model_path="/m.gguf", sampling={"temperature": 0.7})
        reply = StreamingReply(store, reply.message_id, interval_s=0.25, every_pieces=16, clock=clock)
        assert _stored_content(db_path, reply.message_id) == ("", "streaming")
        for piece in ["Once", " upon", " a"]:
            reply.append(piece)
        assert _stored_content(db_path, reply.message_id) == ("", "streaming")  # batched, not per piece
        clock.now = 0.3
        reply.append(" time")
        assert _stored_content(db_path, reply.message_id) == ("Once upon a time", "streaming")  # by time
        for _ in range(16):
            reply.append(".")
        assert _stored_content(db_path, reply.message_id)[0] == "Once upon a time" + "." * 16  # by count
        reply.append("!")
        reply.finish("complete", stats={"tokens": 21})
        assert _stored_content(db_path, reply.message_id) == ("Once upon a time" + "." * 16 + "!", "complete")
        assert store.get_message(reply.message_id).stats == {"tokens": 21}  # type: ignore[union-attr]


def test_an_exception_marks_the_reply_interrupted_and_keeps_it(db_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        c = store.create_conversation("s")
        with pytest.raises(KeyboardInterrupt), store.begin_reply(c.id) as reply:
            reply.append("partial text")
            raise KeyboardInterrupt
        assert _stored_content(db_path, reply.message_id) == ("partial text", "interrupted")
        cont = store.continue_reply(reply.message_id)
        cont.append(" and more")
        cont.finish()
        assert _stored_content(db_path, reply.message_id) == ("partial text and more", "complete")


def _dead_writer_token() -> str:
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    token = f"{proc.pid}:{psutil.Process(proc.pid).create_time():.2f}"
    proc.wait()
    return token


def test_rows_left_streaming_by_a_dead_process_become_interrupted(db_path: Path) -> None:
    with ConversationStore.open(db_path) as store:
        c = store.create_conversation("s")
        store.add_message(c.id, "user", "question")
        dead = store.begin_reply(c.id)
        dead.append("half an ans")
        dead.flush()
        live = store.begin_reply(c.id)  # this process is alive: its reply is still being written
    db = sqlite3.connect(db_path)
    db.execute("UPDATE messages SET writer = ? WHERE id = ?", (_dead_writer_token(), dead.message_id))
    db.commit()
    db.close()
    with ConversationStore.open(db_path) as store:
        assert store.recovered == [dead.message_id]
        statuses = {m.id: (m.content, m.status) for m in store.messages(c.id)}
        assert statuses[dead.message_id] == ("half an ans", "interrupted")
        assert statuses[live.message_id] == ("", "streaming")


# -- files that cannot be used --------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["exclusive", "writing"])
def test_a_file_locked_by_another_process(db_path: Path, mode: str) -> None:
    written = make_history(db_path)
    before = sha(db_path)
    with lock_held(db_path, mode):
        t0 = time.monotonic()
        store = ConversationStore.open(db_path, busy_timeout_s=0.5)
        waited = time.monotonic() - t0
        problem = store.problem
        assert problem is not None and problem.kind == "locked"
        assert str(db_path) in problem.message and "locked by another program" in problem.message
        assert not store.persistent
        if mode == "writing":  # readers are not blocked in WAL mode: the history is shown from a copy
            assert problem.history_shown and history_of(store) == written
        else:
            assert not problem.history_shown
        c = store.create_conversation("typed while locked")  # the app still works
        store.add_message(c.id, "user", "not saved")
        store.close()
        assert waited < 5
    assert sha(db_path) == before
    with ConversationStore.open(db_path) as store:
        assert store.problem is None and history_of(store) == written


@pytest.mark.parametrize("mode", ["exclusive", "writing"])
def test_opening_at_start_up_reports_a_lock_without_waiting_out_the_busy_timeout(db_path: Path, mode: str) -> None:
    """The window opens the store before it shows: a locked file is said after STARTUP_LOCK_WAIT_S (twice
    when readers are locked out too: the check, then the copy of the history), not after the 2 s busy timeout
    (3 s with readers locked out), which an open that waits it out cannot beat."""
    written = make_history(db_path)
    before = sha(db_path)
    with lock_held(db_path, mode):
        t0 = time.monotonic()
        store = ConversationStore.open_at_startup(db_path)
        waited = time.monotonic() - t0
        problem = store.problem
        assert problem is not None and problem.kind == "locked" and not store.persistent
        assert "locked by another program" in problem.message
        assert problem.history_shown == (mode == "writing") and (mode != "writing" or history_of(store) == written)
        store.close()
    print(f"\nlocked ({mode}): reported after {waited:.2f} s")
    assert waited < BUSY_TIMEOUT_S
    assert sha(db_path) == before
    with ConversationStore.open_at_startup(db_path) as store:  # once opened, writes wait the busy timeout
        assert store.problem is None and history_of(store) == written
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == int(BUSY_TIMEOUT_S * 1000)


def test_a_write_that_meets_a_lock_later_is_reported_and_retried(db_path: Path) -> None:
    make_history(db_path)
    with ConversationStore.open(db_path, busy_timeout_s=0.3) as store:
        c = store.create_conversation("late lock")
        reply = store.begin_reply(c.id, interval_s=0.0)
        with lock_held(db_path, "writing"):
            with pytest.raises(StoreError, match="locked by another program"):
                store.add_message(c.id, "user", "blocked")
            reply.append("kept in memory")
            assert reply.last_error is not None and reply.text == "kept in memory"
        reply.append(", then saved")
        assert reply.last_error is None
        reply.finish()
        assert _stored_content(db_path, reply.message_id) == ("kept in memory, then saved", "complete")


def test_a_read_only_file_shows_history_and_is_not_written(db_path: Path) -> None:
    written = make_history(db_path)
    before = sha(db_path)
    with read_only(db_path):
        store = ConversationStore.open(db_path)
        problem = store.problem
        assert problem is not None and problem.kind == "read_only" and problem.history_shown
        assert "read-only" in problem.message and str(db_path) in problem.message
        assert history_of(store) == written  # the user still sees everything
        first = store.list_conversations()[0]
        store.add_message(first.id, "user", "typed this session")  # works, in memory
        store.close()
        assert sha(db_path) == before
    with ConversationStore.open(db_path) as store:
        assert store.problem is None and history_of(store) == written


def test_a_file_that_is_not_a_database_is_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite at all\n" * 100)
    before = sha(db_path)
    store = ConversationStore.open(db_path)
    problem = store.problem
    assert problem is not None and problem.kind == "corrupt"
    assert "damaged" in problem.message and "left untouched" in problem.message and str(db_path) in problem.message
    c = store.create_conversation("temporary")
    store.add_message(c.id, "user", "works in memory")
    assert len(store.list_conversations()) == 1
    store.close()
    assert sha(db_path) == before


def test_a_damaged_page_is_found_and_the_file_left_untouched(db_path: Path) -> None:
    make_history(db_path)
    data = bytearray(db_path.read_bytes())
    page = 4096
    data[page * 3 : page * 3 + 8] = b"\x0d\xff\xff\xff\xff\xff\xff\xff"  # a b-tree page header, broken
    db_path.write_bytes(bytes(data))
    before = sha(db_path)
    store = ConversationStore.open(db_path)
    assert store.problem is not None and store.problem.kind == "corrupt"
    assert not store.persistent and store.list_conversations() == []
    store.close()
    assert sha(db_path) == before and db_path.exists()


# -- bounded opening (the app opens the file on the GUI thread, before its window shows) ---------
def test_an_integrity_check_cut_short_opens_the_file_and_finishes_later(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening with a time budget stops ``quick_check`` when the budget is spent (the progress handler, and a
    timer calling interrupt(), which also stops SQLite's b-tree walk); what it did not reach is not known
    damaged, so the file is used, and ``check_integrity()`` runs the whole check later."""
    make_longer_history(db_path)
    monkeypatch.setattr(opening, "FULL_CHECK_BYTES", 0)  # this small file is otherwise always checked in full
    with ConversationStore.open(db_path, check_budget_s=1e-6) as store:  # spent before the first 1000 steps
        assert store.problem is None and store.persistent and not store.integrity_checked
        assert len(store.list_conversations()) == 3
        assert store.check_integrity() is None  # nothing wrong
    with ConversationStore.open(db_path, check_budget_s=60) as store:
        assert store.problem is None and store.integrity_checked
    with ConversationStore.open(db_path) as store:  # no budget: the whole check, as before
        assert store.integrity_checked


def test_damage_a_cut_short_check_missed_is_found_by_the_full_check(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_longer_history(db_path)
    damage_table_root(db_path, "messages")  # opening does not read the messages table
    monkeypatch.setattr(opening, "FULL_CHECK_BYTES", 0)
    with ConversationStore.open(db_path, check_budget_s=0) as store:
        assert store.problem is None and store.persistent and not store.integrity_checked
        problem = store.check_integrity()
        assert problem is not None and problem.kind == "corrupt" and problem.in_use
        assert str(db_path) in problem.message and "damaged" in problem.message
        assert "found by the full check after it was opened" in problem.message
    before = sha(db_path)
    with ConversationStore.open(db_path) as store:  # the whole check at open: refused, left untouched
        assert store.problem is not None and store.problem.kind == "corrupt" and not store.persistent
    assert sha(db_path) == before


def test_closing_the_store_stops_its_background_check(db_path: Path) -> None:
    make_longer_history(db_path)
    store = ConversationStore.open(db_path)
    store.close()
    assert store.check_integrity() is None  # called off at once: nothing known


def test_finding_interrupted_replies_reads_an_index_not_every_message(db_path: Path) -> None:
    """Each open looks for replies a crash left 'streaming'. A scan of the messages reads the whole file (the
    status comes after each row's text): 5.6 s for a 1 GB history out of the page cache."""
    with ConversationStore.open(db_path):
        pass
    db = raw(db_path)
    plan = " ".join(
        str(row[-1])
        for row in db.execute("EXPLAIN QUERY PLAN SELECT id, writer FROM messages WHERE status = 'streaming'")
    )
    db.close()
    assert "USING INDEX messages_streaming" in plan, plan
