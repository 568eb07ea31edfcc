"""The conversation database's tables and how a file is brought up to date.

Kept on its own so the format of the user's file, and every step that changes it, is in one place
that can be read (and tested) without the code that opens files or stores messages.

* **Schema versioned with PRAGMA user_version**, one function per migration step, run in the
  caller's transaction: a failed migration leaves the file as it was.
* **Search uses an FTS5 index** kept up to date by triggers, where SQLite has FTS5; without it the
  store searches with ``LIKE``, so the index is optional and may be added to a file later.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Literal

SCHEMA_VERSION = 2

VersionProblem = tuple[Literal["newer_schema", "unavailable"], str]


def fts5_available() -> bool:
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE probe USING fts5(x)")
        return True
    except sqlite3.Error:
        return False
    finally:
        db.close()


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: ``executescript`` would COMMIT the caller's transaction first,
    and a migration must be all-or-nothing."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement!r}")


def _migrate_1_base_tables(db: sqlite3.Connection, fts: bool) -> None:
    """Version 1: conversations and their messages."""
    _run_script(
        db,
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            system_prompt TEXT NOT NULL DEFAULT '',
            preset TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            deleted_at REAL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'interrupted', 'streaming')),
            model_path TEXT NOT NULL DEFAULT '',
            sampling_json TEXT NOT NULL DEFAULT '{}',
            stats_json TEXT NOT NULL DEFAULT '{}',
            writer TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages (conversation_id, position);
        """,
    )


def create_search_index(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END;
        INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
        """,
    )


def _migrate_2_search_index(db: sqlite3.Connection, fts: bool) -> None:
    """Version 2: a full-text index over message text (skipped where SQLite lacks FTS5: LIKE is used)."""
    db.execute("CREATE INDEX conversations_by_update ON conversations (deleted_at, updated_at)")
    if fts:
        create_search_index(db)


# MIGRATIONS[n] brings a database from version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection, bool], None]] = [_migrate_1_base_tables, _migrate_2_search_index]
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(db: sqlite3.Connection, *, target: int = SCHEMA_VERSION, fts: bool = True) -> int:
    """Run the missing steps up to ``target`` inside the caller's transaction; returns the old version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    for step in range(version, target):
        MIGRATIONS[step](db, fts)
    if target > version:
        db.execute(f"PRAGMA user_version = {int(target)}")
    return version


def ensure_search_index(db: sqlite3.Connection, fts: bool) -> bool:
    """Add the index to a file that lacks it (made where SQLite had no FTS5) when ``fts`` asks for
    it, inside the caller's transaction; returns whether search can use it."""
    has_index = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchone()
    if fts and not has_index:
        create_search_index(db)
        has_index = (1,)
    return bool(has_index) and fts


def ensure_recovery_index(db: sqlite3.Connection) -> None:
    """Index the replies still marked 'streaming' (a handful at most), inside the caller's transaction.

    Every open looks for the ones a crash left behind. Without the index that is a scan of all messages
    that reads the whole file, since each row's status comes after its text (5.6 s for a 1 GB history
    that is not in the page cache). Added where it is missing rather than by a migration, like the search
    index: the format stays at its version, and an older Sizewise simply keeps the index up to date.
    """
    db.execute("CREATE INDEX IF NOT EXISTS messages_streaming ON messages (status) WHERE status = 'streaming'")


def version_problem(db: sqlite3.Connection) -> VersionProblem | None:
    """Why this database cannot be used by this version (kind, detail), or None when it can."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        return "newer_schema", f"format {version}; this version reads up to {SCHEMA_VERSION}"
    if version == 0 and db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone():
        return "unavailable", "it is an SQLite database, but not a Sizewise conversation file"
    return None
