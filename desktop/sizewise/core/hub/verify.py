"""Checking a downloaded file against the checksum the Hub lists, and remembering which blobs passed.

Why its own module: ``hf_hub_download`` never checks a file against the sha256 the Hub lists; Sizewise
does, before a file is moved into the cache (a mismatch deletes the bad bytes and says so), and the
library trusts a blob it verified before. LFS files (every GGUF) are checked by sha256, other files by
their git blob id. A download hashes its bytes in batches on a thread of its own while they arrive, so
verifying adds no second pass over the file; ``VerifiedStore`` records what passed (path, size, mtime)
so a later pull or the library need not hash gigabytes again.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

from sizewise.core.atomic import write_text_atomic
from sizewise.core.errors import UserError
from sizewise.core.hub.browse import RemoteFile

MiB = 1 << 20


class ChecksumMismatch(UserError):
    pass


class VerifiedStore:
    """Which cache blobs Sizewise has checked against the Hub's sha256 (path, size, mtime), so a later
    pull or the library need not hash gigabytes again. Losing a record only costs a re-hash."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _key(blob: Path) -> str:
        return str(blob.resolve())

    def record(self, blob: Path, sha256: str, repo_id: str, filename: str) -> None:
        if self.path is None:
            return
        st = blob.stat()
        with self._lock:
            data = self._load()
            data[self._key(blob)] = {
                "sha256": sha256,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "repo_id": repo_id,
                "filename": filename,
                "verified_at": time.time(),
            }
            write_text_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))

    def forget(self, blob: Path) -> None:
        if self.path is None:
            return
        with self._lock:
            data = self._load()
            if data.pop(self._key(blob), None) is not None:
                write_text_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))

    def verified_sha256(self, blob: Path) -> str | None:
        """The recorded sha256 if the file is unchanged since it was verified, else None."""
        try:
            st = blob.stat()
        except OSError:
            return None
        rec = self._load().get(self._key(blob))
        if rec and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
            return str(rec.get("sha256"))
        return None

    def all(self) -> dict[str, dict[str, Any]]:
        return self._load()


def hash_file(path: Path) -> str:
    return str(prefix_hasher(path, path.stat().st_size).hexdigest())


class BackgroundHasher:
    """sha256 on its own thread, fed the chunks as they arrive, so hashing overlaps the network
    (hashlib releases the GIL on large updates) instead of adding a second pass over the file."""

    def __init__(self, initial: Any = None) -> None:
        self._h = initial if initial is not None else hashlib.sha256()
        self._q: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=64)
        self._t = threading.Thread(target=self._run, name="sizewise-sha256", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (chunks := self._q.get()) is not None:
            for chunk in chunks:
                self._h.update(chunk)

    def update(self, chunks: list[bytes]) -> None:
        """Hash these chunks next (the list is the hasher's from now on)."""
        self._q.put(chunks)

    def finish(self) -> str:
        self._q.put(None)
        self._t.join()
        return str(self._h.hexdigest())

    def abandon(self) -> None:
        self._q.put(None)
        self._t.join()


def prefix_hasher(path: Path, size: int) -> Any:
    """A sha256 fed the first ``size`` bytes of the file: where a resumed download's hashing starts."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        left = size
        while left > 0:
            block = fh.read(min(8 * MiB, left))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h


def _git_blob_sha1(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha1(b"blob %d\0" % size)
    with path.open("rb") as fh:
        while block := fh.read(8 * MiB):
            h.update(block)
    return h.hexdigest()


def matches_remote(path: Path, sha256: str, remote: RemoteFile) -> bool:
    """Whether the file is the one the Hub lists: its size, and its sha256 (LFS) or git blob id (others)."""
    if path.stat().st_size != remote.size:
        return False
    if remote.sha256:
        return sha256 == remote.sha256
    return _git_blob_sha1(path) == remote.blob_id  # non-LFS files: the git blob id is the checksum
