"""Conversations in SQLite: the user's data, read and written in short, safe transactions.

:class:`ConversationStore` is what the app and the commands hold: conversations and their
messages (create, read, rename, delete), search, and export and import through ``export.py``.
How the file is opened and what happens when it cannot be is in ``opening.py``; its tables and
migrations in ``schema.py``; the records it returns in ``records.py``; a reply saved while it
streams in ``reply.py``.

* **Deleting is undoable, then thorough.** Delete marks a conversation; purge removes it for good
  (at the latest at the next open), with ``secure_delete`` on so the text does not linger in free
  pages of a private chat database.
* Search uses the FTS5 index (kept up to date by triggers) where SQLite has FTS5, else ``LIKE``.

Every public method is one short transaction guarded by a lock, so the GUI thread may call the
store directly and a background job may use it too.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from sizewise.core.chat.export import all_to_json, conversation_to_json, conversation_to_markdown, parse_import
from sizewise.core.chat.opening import (
    BUSY_TIMEOUT_S,
    STARTUP_CHECK_BUDGET_S,
    STARTUP_LOCK_WAIT_S,
    OpenedDatabase,
    StoreError,
    StoreProblem,
    check_in_full,
    error_reason,
    open_file,
    open_in_memory,
    writer_token,
)
from sizewise.core.chat.records import (
    DEFAULT_TITLE,
    ROLES,
    STATUSES,
    Conversation,
    ImportResult,
    SearchHit,
    Status,
    StoredMessage,
)
from sizewise.core.chat.reply import FLUSH_INTERVAL_S, FLUSH_PIECES, StreamingReply
from sizewise.core.errors import UserError


# -- helpers --------------------------------------------------------------------------------------
def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def suggest_title(text: str, words: int = 7, limit: int = 60) -> str:
    """A title from the first words of the first message, like most chat apps."""
    first = " ".join(text.split()[:words])
    if len(first) > limit:
        first = first[: limit - 1].rstrip() + "…"
    return first or DEFAULT_TITLE


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _plain_snippet(content: str, needle: str, width: int = 70) -> str:
    at = content.lower().find(needle.lower())
    if at < 0:
        return ""
    start = max(0, at - width // 2)
    end = min(len(content), at + len(needle) + width // 2)
    text = " ".join(content[start:end].split())
    return ("…" if start > 0 else "") + text + ("…" if end < len(content) else "")


# -- the store ------------------------------------------------------------------------------------
class ConversationStore:
    """All conversations of one profile. Create with :meth:`open` (a file) or :meth:`in_memory`."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        path: Path | None,
        problem: StoreProblem | None = None,
        fts: bool = False,
        recovered: list[int] | None = None,
        integrity_checked: bool = True,
    ) -> None:
        self._db = db
        self._lock = threading.RLock()
        self.path = path  # None: this session's data lives in memory only
        self.problem = problem
        self.fts = fts
        self.recovered = recovered or []  # ids of replies found 'streaming' at open, now 'interrupted'
        self.integrity_checked = integrity_checked  # False: opening's check was cut short, see check_integrity()
        self._writer = writer_token()
        self._checks: set[sqlite3.Connection] = set()  # full checks running, interrupted by close()
        self._closed = False

    # -- opening (opening.py does the work) -------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        use_fts: bool | None = None,
        lock_wait_s: float | None = None,
        check_budget_s: float | None = None,
    ) -> ConversationStore:
        """Open (or create) the file; never raises for a bad file: see ``problem`` instead.

        ``lock_wait_s``: how long opening waits for another program's lock (default ``busy_timeout_s``,
        which later writes keep); ``check_budget_s``: how long the integrity check may take (default: all
        it needs; see ``integrity_checked``)."""
        opened = open_file(
            Path(path),
            busy_timeout_s=busy_timeout_s,
            use_fts=use_fts,
            housekeeping=cls._purge_all,
            lock_wait_s=lock_wait_s,
            check_budget_s=check_budget_s,
        )
        return cls._from(opened)

    @classmethod
    def open_at_startup(cls, path: Path, *, use_fts: bool | None = None) -> ConversationStore:
        """Open the file as the app does before its window shows, on the GUI thread: a locked file is
        reported after STARTUP_LOCK_WAIT_S rather than the busy timeout, and the integrity check stops after
        STARTUP_CHECK_BUDGET_S (a large history; :meth:`check_integrity` finishes it in the background)."""
        return cls.open(
            path, use_fts=use_fts, lock_wait_s=STARTUP_LOCK_WAIT_S, check_budget_s=STARTUP_CHECK_BUDGET_S
        )

    def check_integrity(self) -> StoreProblem | None:
        """The whole integrity check of the file in use, for a background thread (it can take seconds per
        GB): the damage as a problem, or None when there is none, nothing could be checked, or
        :meth:`close` stopped it."""
        path = self.path
        if path is None:
            return None
        running: list[sqlite3.Connection] = []

        def starting(db: sqlite3.Connection) -> bool:
            with self._lock:
                if self._closed:
                    return False
                self._checks.add(db)
                running.append(db)
                return True

        try:
            damage = check_in_full(path, starting)
        finally:
            with self._lock:
                self._checks.difference_update(running)
        if not damage:
            return None
        return StoreProblem(kind="corrupt", path=path, detail=damage, history_shown=True, in_use=True)

    @classmethod
    def in_memory(cls, *, use_fts: bool | None = None) -> ConversationStore:
        return cls._from(open_in_memory(use_fts=use_fts, housekeeping=cls._purge_all))

    @classmethod
    def _from(cls, opened: OpenedDatabase) -> ConversationStore:
        return cls(
            opened.db,
            path=opened.path,
            problem=opened.problem,
            fts=opened.fts,
            recovered=opened.recovered,
            integrity_checked=opened.checked,
        )

    @classmethod
    def _purge_all(cls, db: sqlite3.Connection) -> int:
        """Run at every open: conversations deleted last session are gone for good."""
        return cls._purge(db, older_than_s=0.0)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for check in self._checks:
                check.interrupt()
            self._db.close()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def persistent(self) -> bool:
        """False when this session's changes are not being saved to a file."""
        return self.path is not None

    # -- plumbing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"The conversation could not be saved: {error_reason(exc)}.") from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise StoreError(f"The conversation could not be saved: {error_reason(exc)}.") from exc
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"The conversations could not be read: {error_reason(exc)}.") from exc

    @staticmethod
    def _conversation(row: sqlite3.Row) -> Conversation:
        keys = row.keys()
        return Conversation(
            id=int(row["id"]),
            uid=str(row["uid"]),
            title=str(row["title"]),
            system_prompt=str(row["system_prompt"]),
            preset=str(row["preset"]),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
            deleted_at=None if row["deleted_at"] is None else float(row["deleted_at"]),
            message_count=int(row["message_count"]) if "message_count" in keys else 0,
        )

    @staticmethod
    def _message(row: sqlite3.Row) -> StoredMessage:
        return StoredMessage(
            id=int(row["id"]),
            uid=str(row["uid"]),
            conversation_id=int(row["conversation_id"]),
            position=int(row["position"]),
            role=str(row["role"]),
            content=str(row["content"]),
            status=str(row["status"]),
            model_path=str(row["model_path"]),
            sampling=_json_dict(str(row["sampling_json"])),
            stats=_json_dict(str(row["stats_json"])),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )

    _CONV_SELECT = (
        "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count "
        "FROM conversations c "
    )

    # -- conversations ----------------------------------------------------------------------------
    def create_conversation(
        self, title: str = DEFAULT_TITLE, *, system_prompt: str = "", preset: str = ""
    ) -> Conversation:
        now = time.time()
        title = " ".join(title.split()) or DEFAULT_TITLE
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO conversations (uid, title, system_prompt, preset, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, title, system_prompt, preset, now, now),
            )
            cid = int(cur.lastrowid or 0)
        found = self.get_conversation(cid)
        assert found is not None
        return found

    def get_conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._read(self._CONV_SELECT + "WHERE c.id = ?", (conversation_id,))
        return self._conversation(rows[0]) if rows else None

    def list_conversations(self, *, include_deleted: bool = False) -> list[Conversation]:
        where = "" if include_deleted else "WHERE c.deleted_at IS NULL "
        rows = self._read(self._CONV_SELECT + where + "ORDER BY c.updated_at DESC, c.id DESC")
        return [self._conversation(r) for r in rows]

    def find_by_title(self, title: str) -> Conversation | None:
        """The most recently used live conversation with this title (exact, else ignoring case)."""
        for sql in ("c.title = ?", "c.title = ? COLLATE NOCASE"):
            rows = self._read(
                self._CONV_SELECT + f"WHERE {sql} AND c.deleted_at IS NULL ORDER BY c.updated_at DESC LIMIT 1",
                (" ".join(title.split()),),
            )
            if rows:
                return self._conversation(rows[0])
        return None

    def _require(self, conversation_id: int) -> Conversation:
        found = self.get_conversation(conversation_id)
        if found is None:
            raise StoreError("That conversation no longer exists.")
        return found

    def rename(self, conversation_id: int, title: str) -> Conversation:
        title = " ".join(title.split())
        if not title:
            raise UserError("A conversation needs a title.")
        self._require(conversation_id)
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?", (title, time.time(), conversation_id)
            )
        return self._require(conversation_id)

    def set_system_prompt(self, conversation_id: int, system_prompt: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET system_prompt = ?, updated_at = ? WHERE id = ?",
                (system_prompt, time.time(), conversation_id),
            )

    def set_preset(self, conversation_id: int, preset: str) -> None:
        with self._write() as db:
            db.execute("UPDATE conversations SET preset = ? WHERE id = ?", (preset, conversation_id))

    def delete(self, conversation_id: int) -> None:
        """Hide the conversation; :meth:`undo_delete` brings it back until it is purged."""
        with self._write() as db:
            db.execute("UPDATE conversations SET deleted_at = ? WHERE id = ?", (time.time(), conversation_id))

    def undo_delete(self, conversation_id: int) -> None:
        with self._write() as db:
            db.execute("UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,))

    def purge_deleted(self, older_than_s: float = 0.0) -> int:
        """Remove deleted conversations for good (all of them at 0); returns how many."""
        with self._write() as db:
            return self._purge(db, older_than_s)

    @staticmethod
    def _purge(db: sqlite3.Connection, older_than_s: float) -> int:
        cur = db.execute(
            "DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
            (time.time() - older_than_s,),
        )
        removed = int(cur.rowcount)
        if removed and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchone():
            # FTS5 only marks deleted rows; merging the index drops their words for good.
            db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        return removed

    # -- messages ---------------------------------------------------------------------------------
    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._read("SELECT * FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,))
        return [self._message(r) for r in rows]

    def get_message(self, message_id: int) -> StoredMessage | None:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        return self._message(rows[0]) if rows else None

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        status: Status = "complete",
        model_path: str = "",
        sampling: dict[str, Any] | None = None,
        stats: dict[str, Any] | None = None,
        auto_title: bool = True,
    ) -> StoredMessage:
        """Append a message. The first user message names a conversation still called DEFAULT_TITLE."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time()
        with self._write() as db:
            conv = db.execute(
                "SELECT title FROM conversations WHERE id = ? AND deleted_at IS NULL", (conversation_id,)
            ).fetchone()
            if conv is None:
                raise StoreError("That conversation no longer exists.")
            position = int(
                db.execute(
                    "SELECT coalesce(max(position), -1) + 1 FROM messages WHERE conversation_id = ?",
                    (conversation_id,),
                ).fetchone()[0]
            )
            cur = db.execute(
                "INSERT INTO messages (uid, conversation_id, position, role, content, status, model_path, "
                "sampling_json, stats_json, writer, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    uuid.uuid4().hex,
                    conversation_id,
                    position,
                    role,
                    content,
                    status,
                    model_path,
                    json.dumps(sampling or {}, sort_keys=True),
                    json.dumps(stats or {}, sort_keys=True),
                    self._writer if status == "streaming" else "",
                    now,
                    now,
                ),
            )
            mid = int(cur.lastrowid or 0)
            title = str(conv["title"])
            if auto_title and role == "user" and title == DEFAULT_TITLE and content.strip():
                title = suggest_title(content)
            db.execute("UPDATE conversations SET updated_at = ?, title = ? WHERE id = ?", (now, title, conversation_id))
        found = self.get_message(mid)
        assert found is not None
        return found

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        status: Status | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        sets, params = ["updated_at = ?"], [time.time()]
        if content is not None:
            sets.append("content = ?")
            params.append(content)  # type: ignore[arg-type]
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}")
            sets.append("status = ?")
            params.append(status)  # type: ignore[arg-type]
            sets.append("writer = ?")
            params.append(self._writer if status == "streaming" else "")  # type: ignore[arg-type]
        if stats is not None:
            sets.append("stats_json = ?")
            params.append(json.dumps(stats, sort_keys=True))  # type: ignore[arg-type]
        with self._write() as db:
            db.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*params, message_id))
            db.execute(
                "UPDATE conversations SET updated_at = ? "
                "WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)",
                (params[0], message_id),
            )

    def delete_messages_from(self, message_id: int) -> int:
        """Delete a message and every later one in its conversation (regenerate; edit and resend)."""
        with self._write() as db:
            row = db.execute("SELECT conversation_id, position FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return 0
            cur = db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                (row["conversation_id"], row["position"]),
            )
            return int(cur.rowcount)

    def begin_reply(
        self,
        conversation_id: int,
        *,
        model_path: str = "",
        sampling: dict[str, Any] | None = None,
        interval_s: float = FLUSH_INTERVAL_S,
        every_pieces: int = FLUSH_PIECES,
    ) -> StreamingReply:
        """Insert an assistant row marked 'streaming' and return the writer that keeps it current."""
        msg = self.add_message(
            conversation_id, "assistant", "", status="streaming", model_path=model_path, sampling=sampling
        )
        return StreamingReply(self, msg.id, "", interval_s=interval_s, every_pieces=every_pieces)

    def continue_reply(
        self, message_id: int, *, interval_s: float = FLUSH_INTERVAL_S, every_pieces: int = FLUSH_PIECES
    ) -> StreamingReply:
        """Carry on writing a cut-off or interrupted reply: new text is appended to what is stored."""
        msg = self.get_message(message_id)
        if msg is None or msg.role != "assistant":
            raise StoreError("Only a stored assistant reply can be continued.")
        self.update_message(message_id, status="streaming")
        return StreamingReply(self, message_id, msg.content, interval_s=interval_s, every_pieces=every_pieces)

    # -- search -----------------------------------------------------------------------------------
    def search(self, query: str, *, limit: int = 200) -> list[SearchHit]:
        """Live conversations whose title or messages contain the words; title matches first."""
        query = " ".join(query.split())
        if not query:
            return []
        hits: dict[int, SearchHit] = {}
        for row in self._read(
            self._CONV_SELECT + "WHERE c.deleted_at IS NULL AND c.title LIKE ? ESCAPE '\\' "
            "ORDER BY c.updated_at DESC LIMIT ?",
            (_like_pattern(query), limit),
        ):
            conv = self._conversation(row)
            hits[conv.id] = SearchHit(conv, "", True)
        for cid, snippet in self._content_matches(query, limit):
            if cid in hits:
                if not hits[cid].snippet:
                    hits[cid] = SearchHit(hits[cid].conversation, snippet, True)
                continue
            conv_found = self.get_conversation(cid)
            if conv_found is not None and conv_found.deleted_at is None:
                hits[cid] = SearchHit(conv_found, snippet, False)
        ordered = sorted(hits.values(), key=lambda h: (not h.in_title, -h.conversation.updated_at))
        return ordered[:limit]

    def _content_matches(self, query: str, limit: int) -> list[tuple[int, str]]:
        words = re.findall(r"\w+", query)
        if self.fts and words:
            match = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
            rows = self._read(
                "SELECT m.conversation_id AS cid, snippet(messages_fts, 0, '', '', '…', 12) AS snip "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
                (match, limit * 5),
            )
            out: dict[int, str] = {}
            for r in rows:
                out.setdefault(int(r["cid"]), " ".join(str(r["snip"]).split()))
            return list(out.items())
        rows = self._read(
            "SELECT conversation_id AS cid, content FROM messages WHERE content LIKE ? ESCAPE '\\' "
            "ORDER BY updated_at DESC LIMIT ?",
            (_like_pattern(query), limit * 5),
        )
        found: dict[int, str] = {}
        for r in rows:
            found.setdefault(int(r["cid"]), _plain_snippet(str(r["content"]), query))
        return list(found.items())

    # -- export and import ------------------------------------------------------------------------
    def export_conversation(self, conversation_id: int) -> dict[str, Any]:
        """``{"title", "messages": [{"role", "content", …}], …}``: the JSON export of one conversation."""
        return conversation_to_json(self._require(conversation_id), self.messages(conversation_id))

    def export_all(self) -> dict[str, Any]:
        """Every live conversation, oldest first, in the one-file format :meth:`import_data` reads."""
        return all_to_json([self.export_conversation(c.id) for c in reversed(self.list_conversations())])

    def export_markdown(self, conversation_id: int) -> str:
        return conversation_to_markdown(self._require(conversation_id), self.messages(conversation_id))

    def import_data(self, data: Any, *, source: str = "the file") -> ImportResult:
        """Import an export_all() file or one export_conversation() object, all or nothing.

        Conversations already present (same uid) are skipped, so importing a file twice adds
        nothing; a file without uids gets ones derived from its content, for the same reason.
        """
        convs = parse_import(data, source)
        imported = skipped = n_messages = 0
        with self._write() as db:
            for conv in convs:
                existing = db.execute(
                    "SELECT id, deleted_at FROM conversations WHERE uid = ?", (conv["uid"],)
                ).fetchone()
                if existing is not None and existing["deleted_at"] is None:
                    skipped += 1
                    continue
                if existing is not None:  # deleted but not yet purged: the import restores it fresh
                    db.execute("DELETE FROM conversations WHERE id = ?", (existing["id"],))
                cur = db.execute(
                    "INSERT INTO conversations (uid, title, system_prompt, preset, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        conv["uid"],
                        conv["title"],
                        conv["system_prompt"],
                        conv["preset"],
                        conv["created_at"],
                        conv["updated_at"],
                    ),
                )
                cid = int(cur.lastrowid or 0)
                for pos, m in enumerate(conv["messages"]):
                    try:
                        db.execute(
                            "INSERT INTO messages (uid, conversation_id, position, role, content, status, model_path, "
                            "sampling_json, stats_json, created_at, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                m["uid"],
                                cid,
                                pos,
                                m["role"],
                                m["content"],
                                m["status"],
                                m["model"],
                                json.dumps(m["sampling"], sort_keys=True),
                                json.dumps(m["stats"], sort_keys=True),
                                m["created_at"],
                                m["created_at"],
                            ),
                        )
                    except sqlite3.IntegrityError as exc:
                        raise StoreError(f"{source} repeats a message id ({m['uid']}); nothing was imported.") from exc
                    n_messages += 1
                imported += 1
        return ImportResult(imported=imported, skipped=skipped, messages=n_messages)
