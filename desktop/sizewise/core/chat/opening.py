"""Opening the conversation file safely, and what to do when it cannot be used.

Kept apart from the store's everyday reads and writes because this is where the user's data is
most at risk: a file that is locked, read-only, damaged or newer must be recognised, reported and
left alone, and replies cut off by a crash must be found again.

* **WAL journal, synchronous=NORMAL.** A commit is a write() into the WAL file, so a process killed
  at any moment leaves every committed transaction intact (only a power cut can lose the last
  fraction of a second, and never corrupts the file). Commits stay cheap enough (well under a
  millisecond) to run on the GUI thread. Where WAL is not possible, a rollback journal with
  synchronous=FULL is used: still safe.
* **The file is never replaced.** A database that is locked by another program, read-only,
  damaged, or written by a newer Sizewise is left byte-for-byte untouched: it is checked over a
  read-only connection before anything could write to it. :func:`open_file` then opens a
  temporary in-memory database instead (with a copy of the history where the file can still be
  read) and a :class:`StoreProblem` that says what happened, so the app starts and shows the
  problem instead of silently starting empty over the user's history.
* **Interrupted replies are kept.** A reply saved while it streams carries a token naming the
  process writing it (:func:`writer_token`); on the next open, rows still marked ``streaming``
  whose writer process is gone become ``interrupted``.
* Every connection turns on ``secure_delete``, so purged text does not linger in free pages of a
  private chat database.
* Opening is one transaction: migrate, recover interrupted replies, then the caller's housekeeping
  (the store purges deleted conversations). ``BEGIN IMMEDIATE`` takes the write lock at once, so
  a locked file is found at open rather than at the first message.
* **Opening on the GUI thread is bounded.** The app opens the file before its window shows, so there
  opening waits at most ``STARTUP_LOCK_WAIT_S`` for another program's lock (a locked file is reported
  then, not after the 2 s busy timeout that later writes keep) and spends at most
  ``STARTUP_CHECK_BUDGET_S`` on the integrity check: ``PRAGMA quick_check`` reads every page, about
  0.4 s per GB from the page cache and several seconds from a disk. A check cut short has found
  nothing yet: the file is used, not known damaged, and :func:`check_in_full` finishes the check off
  the GUI thread. (A progress handler alone does not
  bound it: SQLite 3.40 does not call it inside the b-tree walk that is most of a ``quick_check``,
  but ``interrupt()`` stops that walk, so a timer calls it too.)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from sizewise.core.chat.schema import (
    SCHEMA_VERSION,
    ensure_recovery_index,
    ensure_search_index,
    fts5_available,
    migrate,
    version_problem,
)
from sizewise.core.errors import UserError

BUSY_TIMEOUT_S = 2.0
# Opening from the GUI thread at start-up (ConversationStore.open_at_startup): how long it may wait for
# another program's lock (a write by another Sizewise window holds it for milliseconds), and how long it
# may spend on the integrity check. Files up to FULL_CHECK_BYTES are always checked in full (~5 ms).
STARTUP_LOCK_WAIT_S = 0.25
STARTUP_CHECK_BUDGET_S = 0.2
FULL_CHECK_BYTES = 16 << 20
SQLITE_MAGIC = b"SQLite format 3\x00"

ProblemKind = Literal["locked", "read_only", "corrupt", "newer_schema", "unavailable"]
# Run inside the opening transaction, after migration and recovery.
Housekeeping = Callable[[sqlite3.Connection], object]


class StoreError(UserError):
    """A store operation failed (the file became locked, read-only, full or damaged)."""


@dataclass(frozen=True)
class StoreProblem:
    """Why the conversation file is not in use this session; ``message`` is what the user reads."""

    kind: ProblemKind
    path: Path
    detail: str  # SQLite's or the OS's own words
    history_shown: bool  # the temporary store holds a read-only copy of the file's history
    in_use: bool = False  # found by the full check after opening: the file is this session's store

    @property
    def cause(self) -> str:
        where = f"The conversation file {self.path}"
        return {
            "locked": f"{where} is locked by another program, perhaps another Sizewise window",
            "read_only": f"{where} is read-only",
            "corrupt": f"{where} is damaged ({self.detail})",
            "newer_schema": f"{where} was written by a newer Sizewise ({self.detail})",
        }.get(self.kind, f"{where} could not be opened ({self.detail})")

    @property
    def advice(self) -> str:
        return {
            "locked": " Close the other program and try again.",
            "read_only": " Make the file and its folder writable and try again.",
            "corrupt": " It can often be recovered with 'sqlite3 FILE .recover'.",
            "newer_schema": " Update Sizewise to use it.",
        }.get(self.kind, "")

    @property
    def message(self) -> str:
        """For the app, which carries on with a temporary store (or, ``in_use``, with the file)."""
        if self.in_use:
            return (
                f"{self.cause}, found by the full check after it was opened; this session still saves to it, "
                f"so quit Sizewise and keep a copy of the file before repairing it.{self.advice}"
            )
        if self.history_shown:
            session = "your history is shown from a copy, but nothing this session is saved"
        else:
            session = "this session uses a temporary store that is not saved"
        return f"{self.cause}; it was left untouched, and {session}.{self.advice}"

    @property
    def cli_message(self) -> str:
        """For a command that stops rather than work on a store that would be thrown away."""
        return f"{self.cause}; it was left untouched and nothing was changed.{self.advice}"


@dataclass(frozen=True)
class OpenedDatabase:
    """A connection ready for the store, and what opening found."""

    db: sqlite3.Connection
    path: Path | None  # None: this session's data lives in memory only
    problem: StoreProblem | None = None
    fts: bool = False  # search can use the FTS5 index
    recovered: list[int] = field(default_factory=list)  # replies found 'streaming', now 'interrupted'
    checked: bool = True  # the integrity check finished (False: cut short by its time budget)


# -- errors ---------------------------------------------------------------------------------------
def _error_name(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "") or "")


def _classify(exc: BaseException) -> ProblemKind:
    name, text = _error_name(exc), str(exc).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "locked"
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return "read_only"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return "corrupt"
    if isinstance(exc, PermissionError):
        return "read_only"
    return "unavailable"


def error_reason(exc: BaseException) -> str:
    """A failed read or write in the user's words ("the file is locked by another program")."""
    return {
        "locked": "the file is locked by another program",
        "read_only": "the file is read-only",
        "corrupt": "the file is damaged",
    }.get(_classify(exc), str(exc) or type(exc).__name__)


class _OpenProblem(Exception):
    def __init__(self, kind: ProblemKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# -- writers of streaming replies -----------------------------------------------------------------
def writer_token() -> str:
    """Identifies this process so a later open can tell a crashed writer from a live one."""
    try:
        created = psutil.Process().create_time()
    except psutil.Error:
        created = 0.0
    return f"{os.getpid()}:{created:.2f}"


def _writer_alive(token: str) -> bool:
    pid_text, _, created_text = token.partition(":")
    try:
        pid, created = int(pid_text), float(created_text or 0)
        proc = psutil.Process(pid)
        return bool(proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - created) < 0.05)
    except (ValueError, psutil.Error):
        return False


def _recover_streaming(db: sqlite3.Connection) -> list[int]:
    rows = db.execute("SELECT id, writer FROM messages WHERE status = 'streaming'").fetchall()
    dead = [int(r["id"]) for r in rows if not _writer_alive(str(r["writer"]))]
    now = time.time()
    for mid in dead:
        db.execute("UPDATE messages SET status = 'interrupted', updated_at = ? WHERE id = ?", (now, mid))
    return dead


# -- connecting -----------------------------------------------------------------------------------
def _connect(target: str, timeout: float, *, uri: bool = False) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), so a write never waits
    # half-way through for a lock and a migration is all-or-nothing.
    db = sqlite3.connect(target, timeout=timeout, isolation_level=None, check_same_thread=False, uri=uri)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA secure_delete = ON")
    return db


def _is_sqlite_file(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    return head == SQLITE_MAGIC or head == b""


def _check_version(db: sqlite3.Connection) -> None:
    problem = version_problem(db)
    if problem is not None:
        raise _OpenProblem(*problem)


def _damage(lines: list[str]) -> str:
    """``quick_check``'s findings in one line; empty when it said "ok"."""
    if lines == ["ok"]:
        return ""
    return "; ".join(ln for ln in "\n".join(lines).splitlines() if ln.strip() and not ln.startswith("***"))[:200]


def _quick_check(db: sqlite3.Connection, budget_s: float | None) -> list[str] | None:
    """``PRAGMA quick_check``'s lines, or None when it ran out of its time budget (None: no budget;
    0: no time for it at all)."""
    if budget_s is None:
        return [str(r[0]) for r in db.execute("PRAGMA quick_check(3)").fetchall()]
    if budget_s <= 0:
        return None
    deadline = time.monotonic() + budget_s
    # Between VM steps (and inside the b-tree walk in newer SQLite) the progress handler stops it;
    # inside the walk in older versions (3.40) only interrupt() does, so a timer calls it.
    db.set_progress_handler(lambda: time.monotonic() >= deadline, 1000)
    timer = threading.Timer(budget_s, db.interrupt)
    timer.daemon = True
    timer.start()
    try:
        return [str(r[0]) for r in db.execute("PRAGMA quick_check(3)").fetchall()]
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc).lower():
            return None
        raise
    finally:
        timer.cancel()
        timer.join()
        db.set_progress_handler(None, 0)


def _check_integrity(path: Path, timeout: float, budget_s: float | None) -> bool:
    """Everything that can refuse a file, checked over a read-only connection before anything
    could write to it (switching the journal mode or a checkpoint would): damage, a newer
    format, or an SQLite file that is not ours. Returns whether the damage check finished: with a
    ``budget_s`` a file larger than FULL_CHECK_BYTES gets that long, and what it did not reach is not
    known damaged."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        if budget_s is not None and path.stat().st_size <= FULL_CHECK_BYTES:
            budget_s = None
        lines = _quick_check(db, budget_s)
        if lines is not None and _damage(lines):
            raise _OpenProblem("corrupt", _damage(lines))
        # (an interrupt() that came just as the check ended does not reach this: SQLite clears it when a
        # statement starts on a connection with none running)
        _check_version(db)
        return lines is not None
    finally:
        db.close()


def check_in_full(path: Path, starting: Callable[[sqlite3.Connection], bool] = lambda db: True) -> str:
    """The whole ``quick_check`` of a file in use (after a start-up check was cut short), for a background
    thread: SQLite's words for the damage, or "" when there is none or the check could not run.
    ``starting`` receives the connection first, so the caller can ``interrupt()`` it (at quit); it
    returns False to call the check off."""
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except sqlite3.Error:
        return ""
    try:
        if not starting(db):
            return ""
        return _damage(_quick_check(db, None) or [])
    except sqlite3.Error as exc:
        return str(exc) if _classify(exc) == "corrupt" else ""  # interrupted, or locked: nothing known
    finally:
        db.close()


def _connect_file(path: Path, timeout: float, check_budget_s: float | None = None) -> tuple[sqlite3.Connection, bool]:
    """The connection, and whether the integrity check finished."""
    checked = True
    if path.exists():
        if not path.is_file():
            raise _OpenProblem("unavailable", "it is not a file")
        if not _is_sqlite_file(path):
            raise _OpenProblem("corrupt", "it is not an SQLite database")
        checked = _check_integrity(path, timeout, check_budget_s)
        # WAL needs to write the file and create -wal/-shm files beside it.
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise _OpenProblem("read_only", "no permission to write")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise _OpenProblem("unavailable", f"the folder {path.parent} is not writable")
    db = _connect(str(path), timeout)
    try:
        mode = str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal":  # e.g. a file system without shared memory: rollback journal, still safe
            db.execute("PRAGMA synchronous = FULL")
        else:
            db.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        db.close()
        raise
    return db, checked


# -- preparing ------------------------------------------------------------------------------------
def _prepare(db: sqlite3.Connection, use_fts: bool | None, housekeeping: Housekeeping) -> tuple[bool, list[int]]:
    """Migrate, recover interrupted replies and run the housekeeping: one transaction.
    Returns whether search can use the FTS5 index, and the ids of the recovered replies."""
    fts_ok = fts5_available() if use_fts is None else (use_fts and fts5_available())
    _check_version(db)
    db.execute("BEGIN IMMEDIATE")  # takes the write lock now: 'locked' is found at open, not later
    try:
        migrate(db, fts=fts_ok)
        fts = ensure_search_index(db, fts_ok)
        ensure_recovery_index(db)
        recovered = _recover_streaming(db)
        housekeeping(db)
        # An explicit write, so a read-only file is found now rather than at the first message.
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return fts, recovered


def open_in_memory(*, use_fts: bool | None = None, housekeeping: Housekeeping) -> OpenedDatabase:
    """A fresh database that lives in memory only (tests, and commands that save nothing)."""
    db = _connect(":memory:", 0.0)
    fts, recovered = _prepare(db, use_fts, housekeeping)
    return OpenedDatabase(db, path=None, fts=fts, recovered=recovered)


def open_file(
    path: Path,
    *,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    use_fts: bool | None = None,
    housekeeping: Housekeeping,
    lock_wait_s: float | None = None,
    check_budget_s: float | None = None,
) -> OpenedDatabase:
    """Open (or create) the file; never raises for a bad file: a temporary database and a
    ``problem`` come back instead. Opening waits ``lock_wait_s`` for a lock (default: the busy
    timeout, which the connection keeps afterwards); ``check_budget_s`` bounds the integrity check."""
    wait = busy_timeout_s if lock_wait_s is None else lock_wait_s
    db: sqlite3.Connection | None = None
    try:
        db, checked = _connect_file(path, wait, check_budget_s)
        fts, recovered = _prepare(db, use_fts, housekeeping)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        return OpenedDatabase(db, path=path, fts=fts, recovered=recovered, checked=checked)
    except _OpenProblem as exc:
        kind, detail = exc.kind, exc.detail
    except (sqlite3.Error, OSError) as exc:
        kind, detail = _classify(exc), str(exc)
    except Exception as exc:  # e.g. a failing migration: rolled back, so the file is as it was
        kind, detail = "unavailable", f"{type(exc).__name__}: {exc}"
    if db is not None:
        with contextlib.suppress(sqlite3.Error):
            db.rollback()
        db.close()
    return _temporary(path, kind, detail, wait, use_fts, housekeeping)


# -- the temporary stand-in -----------------------------------------------------------------------
def _temporary(
    path: Path, kind: ProblemKind, detail: str, timeout: float, use_fts: bool | None, housekeeping: Housekeeping
) -> OpenedDatabase:
    """An in-memory database standing in for a file that cannot be used; the file is not written."""
    mem = _connect(":memory:", 0.0)
    shown = False
    if kind in ("locked", "read_only"):
        shown = _copy_history(path, mem, timeout, allow_immutable=kind == "read_only")
    problem = StoreProblem(kind=kind, path=path, detail=detail, history_shown=shown)
    try:
        fts, recovered = _prepare(mem, use_fts, housekeeping)
    except Exception:  # a copy we cannot use: start the temporary store empty
        mem.close()
        mem = _connect(":memory:", 0.0)
        problem = StoreProblem(kind=kind, path=path, detail=detail, history_shown=False)
        fts, recovered = _prepare(mem, use_fts, housekeeping)
    return OpenedDatabase(mem, path=None, problem=problem, fts=fts, recovered=recovered)


def _copy_history(path: Path, mem: sqlite3.Connection, timeout: float, *, allow_immutable: bool) -> bool:
    """Copy a file we may read but not write into memory, opening it read-only."""
    if not path.is_file():
        return False
    options = ["mode=ro"]
    if allow_immutable:  # ignores the -wal file, so only first when there is none to miss
        wal = path.with_name(path.name + "-wal")
        has_wal = wal.exists() and wal.stat().st_size > 0
        options = ["mode=ro", "immutable=1"] if has_wal else ["immutable=1", "mode=ro"]
    for option in options:
        src: sqlite3.Connection | None = None
        try:
            src = sqlite3.connect(f"{path.as_uri()}?{option}", uri=True, timeout=min(timeout, 1.0))
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
            src.backup(mem)
            return True
        except sqlite3.Error:
            continue
        finally:
            if src is not None:
                src.close()
    return False
