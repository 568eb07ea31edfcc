"""Atomic file replacement (a crash mid-write must leave either the old file or the new one), the small JSON
stores written that way, and whether the process that owns a leftover file is still alive."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: a leftover named after a dead process was left by a killed or crashed
    app and can go; one whose owner runs (another window, another command) must stay."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def file_identity(path: str | Path) -> str:
    """``path|size|mtime_ns`` of a file as it is now: the key under which figures measured on it are kept, so a
    replaced or re-downloaded file starts fresh instead of inheriting numbers that no longer describe it."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def read_models_store(path: Path, version: int) -> dict[str, Any]:
    """A ``{version, models: {...}}`` JSON store as written by ``write_text_atomic``; empty when missing.

    A damaged file is moved aside (``*.damaged.json``) for inspection and an empty store returned, rather than
    failing every later read."""
    empty: dict[str, Any] = {"version": version, "models": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            path.replace(path.with_suffix(".damaged.json"))
        return empty
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        return empty
    return data
