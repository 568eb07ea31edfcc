"""Downloading one file from the Hub into the standard Hugging Face cache, surviving faults, kills and full disks.

Why not just ``hf_hub_download``: since huggingface_hub 2.x it writes each download to a process-unique
temporary file and deletes it on failure, so a download that is killed or runs out of disk starts over
from byte 0, and it never checks the file against the sha256 the Hub lists. Here the bytes go to the
cache's own ``.incomplete`` file (``cache_layout.py``), written unbuffered so every received byte survives
a SIGKILL; a restart continues with an HTTP Range request, and the file is verified (``verify.py``) before
it is moved into the cache. Everything else stays huggingface_hub's: the metadata calls
(``get_paths_info`` for size and LFS sha256, ``get_hf_file_metadata`` for the commit, etag and redirect),
its HTTP session, headers, error types, and its per-blob lock file.

What this module adds: a free-disk check (size + margin) before starting, a clear message on ENOSPC that
keeps the partial file for a later resume, retries with backoff on 5xx, resets and stalls (a read
timeout), pause/resume/cancel, and progress with speed and ETA: ``Progress`` snapshots in a
``DownloadState``, which the queue that runs downloads one after another (``download_queue.py``) keeps
and shows. The token is sent only to the Hub's own origin and never appears in a message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sizewise.core.errors import UserError
from sizewise.core.hub.browse import (
    HubSettings,
    ModelFile,
    RemoteFile,
    check_repo_id,
    check_repo_path,
    check_revision,
    explain_hub_error,
)
from sizewise.core.hub.cache_layout import (
    CachePaths,
    blob_name,
    commit_name,
    finalize_blob,
    link_pointer,
    storage_folder,
    write_ref,
)
from sizewise.core.hub.verify import (
    BackgroundHasher,
    ChecksumMismatch,
    VerifiedStore,
    hash_file,
    matches_remote,
    prefix_hasher,
)

if TYPE_CHECKING:
    from huggingface_hub.errors import HfHubHTTPError

MiB = 1 << 20
CHUNK_BYTES = 1 * MiB  # the unit a restart may re-download at most: bytes in flight when a process dies
# Bytes gathered from the network before one writev() and one hand-over to the hasher: per 64 KiB network
# read, a write call and a queue hand-over cost ~15 % of a loopback download's time (profiled); 256 KiB
# cuts that 4-fold and keeps what a kill can lose well inside CHUNK_BYTES.
FLUSH_BYTES = 256 * 1024
FLUSH_CHUNKS = 256  # and never more buffers than one writev() takes (IOV_MAX is 1024 on Linux)


def _http() -> Any:
    """The HTTP library huggingface_hub 2.x uses (httpx2; pyproject allows no 1.x, which used httpx), for its
    exception and timeout types; imported when first needed, like huggingface_hub itself."""
    import httpx2

    return httpx2


# --- Public types ---------------------------------------------------------------------------------------------


class DownloadState(StrEnum):
    QUEUED = "queued"
    CHECKING = "checking"  # asking the Hub, checking the disk, re-hashing a partial file
    DOWNLOADING = "downloading"
    RETRYING = "retrying"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (DownloadState.DONE, DownloadState.FAILED, DownloadState.CANCELLED)


@dataclass(frozen=True)
class DownloadOptions:
    stall_timeout_s: float = 30.0  # no byte for this long = a stalled connection: drop it and resume
    connect_timeout_s: float = 15.0
    max_attempts: int = 8  # consecutive attempts that made no progress before giving up
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    disk_margin_bytes: int = 256 * MiB  # kept free beyond the file itself, so the system never runs dry
    progress_interval_s: float = 0.1


@dataclass(frozen=True)
class Progress:
    """A snapshot of one download, safe to hand to another thread."""

    job_id: int
    repo_id: str
    filename: str
    state: DownloadState
    done_bytes: int = 0
    total_bytes: int | None = None
    speed_bps: float = 0.0
    eta_s: float | None = None
    message: str = ""
    group: str = ""  # the model a split part belongs to
    partial_path: str | None = None  # the ``.incomplete`` file in the HF cache, once known

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "repo_id": self.repo_id,
            "filename": self.filename,
            "state": self.state.value,
            "done_bytes": self.done_bytes,
            "total_bytes": self.total_bytes,
            "speed_bps": round(self.speed_bps, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "message": self.message,
        }


@dataclass(frozen=True)
class DownloadedFile:
    repo_id: str
    filename: str
    revision: str
    commit: str
    path: Path  # the snapshot path (what loaders open)
    blob_path: Path
    sha256: str
    bytes: int
    verified: bool
    resumed_from: int  # bytes already on disk when this run started
    received_bytes: int  # bytes this run took from the network

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "file": self.filename,
            "revision": self.revision,
            "commit": self.commit,
            "path": str(self.path),
            "blob_path": str(self.blob_path),
            "sha256": self.sha256,
            "bytes": self.bytes,
            "verified": self.verified,
            "resumed_from": self.resumed_from,
            "received_bytes": self.received_bytes,
        }


class DownloadPaused(Exception):
    """Raised inside a download when it was paused; the partial file stays for a resume."""


class DownloadCancelled(Exception):
    """Raised inside a download when it was cancelled; the partial file has been deleted."""


class DiskFull(UserError):
    pass


class Control:
    """Pause and cancel flags a download checks between chunks (set from any thread)."""

    def __init__(self) -> None:
        self._pause = threading.Event()
        self._cancel = threading.Event()
        self._wake = threading.Event()

    def pause(self) -> None:
        self._pause.set()
        self._wake.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._wake.set()

    def clear(self) -> None:
        self._pause.clear()
        self._wake.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled
        if self._pause.is_set():
            raise DownloadPaused

    def sleep(self, seconds: float) -> None:
        """Wait for a retry, waking early when paused or cancelled."""
        self._wake.wait(seconds)
        self.check()


ProgressCallback = Callable[[Progress], None]


class _RateMeter:
    """Speed over the last few seconds (not since the start, so a stall shows as a falling speed)."""

    def __init__(self, window_s: float = 3.0) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> float:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()
        t0, b0 = self.samples[0]
        return (done - b0) / (now - t0) if now > t0 else 0.0


def _fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_free_space(directory: Path, needed: int, margin: int, what: str) -> None:
    """Refuse to start when the disk cannot hold the rest of the file plus a margin."""
    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + margin:
        raise DiskFull(
            f"Not enough disk space for {what}: it needs {_fmt_bytes(needed)} more plus a "
            f"{_fmt_bytes(margin)} safety margin, but only {_fmt_bytes(free)} are free on {probe}. "
            "Free some space or choose a smaller quantization."
        )


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


# --- One file -------------------------------------------------------------------------------------------------


@dataclass
class _Reporter:
    job_id: int
    repo_id: str
    filename: str
    group: str
    callback: ProgressCallback | None
    interval_s: float
    total: int | None = None
    partial: Path | None = None
    _last: float = 0.0
    _meter: _RateMeter = field(default_factory=_RateMeter)

    def state(self, state: DownloadState, done: int = 0, message: str = "") -> None:
        if state == DownloadState.DOWNLOADING:
            self._meter.add(time.monotonic(), done)  # the clock starts with the response, not the first chunk
        self._emit(state, done, 0.0, None, message)

    def bytes(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        speed = self._meter.add(now, done)  # sampled at the reporting rate: a 3 s window needs no more
        self._last = now
        eta = (self.total - done) / speed if self.total and speed > 0 else None
        self._emit(DownloadState.DOWNLOADING, done, speed, eta, "")

    def _emit(self, state: DownloadState, done: int, speed: float, eta: float | None, message: str) -> None:
        if self.callback is not None:
            self.callback(
                Progress(
                    self.job_id,
                    self.repo_id,
                    self.filename,
                    state,
                    done,
                    self.total,
                    speed,
                    eta,
                    message,
                    self.group,
                    str(self.partial) if self.partial else None,
                )
            )


def _resolve(settings: HubSettings, repo_id: str, filename: str, revision: str) -> tuple[RemoteFile, Any]:
    """The Hub's facts about one file: size + sha256 (paths-info) and commit + etag + location (HEAD)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    api = settings.api()
    infos = api.get_paths_info(repo_id, [filename], revision=revision)
    entry = next((e for e in infos if getattr(e, "path", None) == filename and hasattr(e, "blob_id")), None)
    if entry is None:
        raise UserError(f"{repo_id} has no file named {filename}.")
    remote = RemoteFile(entry.path, int(entry.size), entry.lfs.sha256 if entry.lfs else None, entry.blob_id)
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=settings.endpoint)
    meta = get_hf_file_metadata(url, token=settings.token or False, endpoint=settings.endpoint)
    return remote, meta


@dataclass(frozen=True)
class _Download:
    """One ``download_file`` call: the file asked for, and the settings, flags and reporter it runs with."""

    repo_id: str
    filename: str
    revision: str
    settings: HubSettings
    options: DownloadOptions
    control: Control
    store: VerifiedStore
    rep: _Reporter

    @property
    def what(self) -> str:
        return f"{self.repo_id}/{self.filename}"

    def resolve(self) -> tuple[RemoteFile, Any]:
        return _resolve(self.settings, self.repo_id, self.filename, self.revision)

    def hub_error(self, exc: BaseException) -> UserError:
        return explain_hub_error(exc, self.repo_id, self.filename, self.settings.endpoint)

    def backoff(self, failures: int) -> float:
        """Seconds to wait before the next try after this many failed ones in a row."""
        wait: float = min(self.options.backoff_base_s * 2 ** max(failures - 1, 0), self.options.backoff_max_s)
        return wait


def download_file(
    repo_id: str,
    filename: str,
    *,
    revision: str = "main",
    settings: HubSettings | None = None,
    options: DownloadOptions | None = None,
    control: Control | None = None,
    on_progress: ProgressCallback | None = None,
    verified_store: VerifiedStore | None = None,
    job_id: int = 0,
    group: str = "",
) -> DownloadedFile:
    """Download one repository file into the HF cache, resuming any partial file, and verify it.

    Raises UserError (with DiskFull/ChecksumMismatch subclasses) for anything a person must act on,
    DownloadPaused/DownloadCancelled when ``control`` asked for it.
    """
    from huggingface_hub.utils import WeakFileLock  # type: ignore[attr-defined]

    check_repo_id(repo_id)
    check_repo_path(filename)
    check_revision(revision)
    s = settings or HubSettings.from_env()
    opt = options or DownloadOptions()
    rep = _Reporter(job_id, repo_id, filename, group, on_progress, opt.progress_interval_s)
    d = _Download(repo_id, filename, revision, s, opt, control or Control(), verified_store or VerifiedStore(None), rep)
    rep.state(DownloadState.CHECKING, message="asking the Hub")
    s.require_online()

    remote, meta = _ask_the_hub(d)
    if meta.commit_hash is None or meta.etag is None:
        raise UserError(f"{s.endpoint} did not answer like the Hugging Face Hub (no commit or etag for {filename}).")
    commit, etag = _cache_names(d, meta.commit_hash, meta.etag)
    total = remote.size
    rep.total = total
    paths = CachePaths.build(s.cache_dir, repo_id, filename, etag, commit)
    rep.partial = paths.incomplete

    paths.lock.parent.mkdir(parents=True, exist_ok=True)
    paths.blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(paths.lock):
        digest = _reuse_cached(d, paths, remote, commit)
        if digest is not None:
            return DownloadedFile(
                repo_id, filename, revision, commit, paths.pointer, paths.blob, digest, total, True, total, 0
            )
        fetch = _start_fetch(d, paths, total, meta.location)
        digest = fetch.run()
        _verify_into_cache(d, paths, remote, digest, commit)
    rep.state(DownloadState.DONE, total, "verified")
    return DownloadedFile(
        repo_id, filename, revision, commit, paths.pointer, paths.blob, digest, total, True,
        fetch.resumed_from, fetch.received,
    )  # fmt: skip


def _ask_the_hub(d: _Download) -> tuple[RemoteFile, Any]:
    """Step 1: what the Hub says the file is. 5xx and resets here are retried like the transfer itself."""
    from huggingface_hub.errors import HfHubHTTPError

    http = _http()
    attempt = 0
    while True:
        d.control.check()
        try:
            return d.resolve()
        except UserError:
            raise
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if not _retryable(status):
                raise d.hub_error(exc) from exc
            last_error: BaseException = exc
        except http.TransportError as exc:
            last_error = exc
        except Exception as exc:
            raise d.hub_error(exc) from exc
        attempt += 1
        if attempt >= d.options.max_attempts:
            raise d.hub_error(last_error) from last_error
        d.rep.state(DownloadState.RETRYING, message=f"the Hub did not answer ({type(last_error).__name__}); retrying")
        d.control.sleep(d.backoff(attempt))


def _cache_names(d: _Download, commit: str, etag: str) -> tuple[str, str]:
    """The commit and etag the server sent, as the folder and file names they become in the cache.

    They come from response headers, so a Hub look-alike (``HF_ENDPOINT``, or anything on a plain-http
    path to it) could send ``../`` names that would write outside the cache: only the Hub's hex forms pass."""
    checked_commit, checked_etag = commit_name(commit), blob_name(etag)
    if checked_commit is None:
        raise UserError(
            f"Refusing to download {d.what}: the commit id {_shown(commit)} that {d.settings.endpoint} sent is "
            "not the 40-digit hex hash the Hugging Face Hub uses, so it cannot name a folder in the cache."
        )
    if checked_etag is None:
        raise UserError(
            f"Refusing to download {d.what}: the ETag {_shown(etag)} that {d.settings.endpoint} sent is not "
            "the sha256 or git sha1 hex digest the Hugging Face Hub names files by, so it cannot name a file "
            "in the cache."
        )
    return checked_commit, checked_etag


def _shown(value: str) -> str:
    """A server's value quoted for a message, cut short: it may be long, and it is not ours."""
    return repr(value if len(value) <= 80 else value[:80] + "…")


def _reuse_cached(d: _Download, paths: CachePaths, remote: RemoteFile, commit: str) -> str | None:
    """Step 2: a blob already in the cache (from us or any other tool) is checked once, then reused.

    Returns its sha256 when it is the Hub's file (registered and reported done), else None; a damaged
    copy is removed so that it downloads again."""
    if not paths.blob.exists():
        return None
    d.rep.state(DownloadState.VERIFYING, remote.size, "checking the file already in the cache")
    digest = d.store.verified_sha256(paths.blob) or hash_file(paths.blob)
    if matches_remote(paths.blob, digest, remote):
        _register(d, paths, commit, digest)
        d.rep.state(DownloadState.DONE, remote.size, "already downloaded")
        return digest
    paths.blob.unlink()
    with contextlib.suppress(FileNotFoundError):
        paths.pointer.unlink()
    d.store.forget(paths.blob)
    return None


def _start_fetch(d: _Download, paths: CachePaths, total: int, location: str) -> _Fetch:
    """Step 3 begins: keep what a previous run (or a killed process) left behind, if it can be, and
    refuse to start when the disk cannot hold the rest."""
    have = paths.incomplete.stat().st_size if paths.incomplete.exists() else 0
    if have > total:
        paths.incomplete.unlink()
        have = 0
    check_free_space(paths.blob.parent, total - have, d.options.disk_margin_bytes, d.what)
    if have:
        d.rep.state(DownloadState.CHECKING, have, f"resuming at {_fmt_bytes(have)}")
    return _Fetch(d, paths, total, have, location)


class _Fetch:
    """Step 3: the rest of the file's bytes into its ``.incomplete`` file, retried until it is complete.

    The bytes are hashed as they arrive. What arrived is on disk however an attempt ends (pause, fault,
    end of file), so a retry, a resume or the next run starts after it; a cancel deletes the file."""

    def __init__(self, d: _Download, paths: CachePaths, total: int, have: int, location: str) -> None:
        from huggingface_hub import get_session
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

        self.d = d
        self.paths = paths
        self.total = total
        self.have = have  # bytes in the .incomplete file
        self.resumed_from = have
        self.received = 0  # bytes this run took from the network
        self.hasher = BackgroundHasher(prefix_hasher(paths.incomplete, have) if have else None)
        self.url = location
        self.headers = build_hf_headers(token=d.settings.token or False, headers={"Accept-Encoding": "identity"})
        if not _same_origin(self.url, d.settings.endpoint):
            self.headers.pop("authorization", None)  # a signed CDN URL: the token stays with the Hub
        self.timeout = _http().Timeout(d.options.stall_timeout_s, connect=d.options.connect_timeout_s)
        self.session = get_session()

    def run(self) -> str:
        """Fetch until the file is complete; its sha256. Pause and cancel end it with their exceptions."""
        try:
            self._until_complete()
        except DownloadCancelled:
            self.hasher.abandon()
            with contextlib.suppress(FileNotFoundError):
                self.paths.incomplete.unlink()
            self.d.rep.state(DownloadState.CANCELLED, 0, "cancelled; the partial file was deleted")
            raise
        except DownloadPaused:
            self.hasher.abandon()
            self.d.rep.state(DownloadState.PAUSED, self.have, "paused")
            raise
        except BaseException:
            self.hasher.abandon()
            raise
        self.d.rep.bytes(self.have, force=True)
        self.d.rep.state(DownloadState.VERIFYING, self.have, "checking the sha256")
        return self.hasher.finish()

    def _until_complete(self) -> None:
        """Attempts until the file is complete; gives up after ``max_attempts`` in a row that brought nothing."""
        from huggingface_hub.errors import HfHubHTTPError

        http = _http()
        failures = 0
        while self.have < self.total:
            self.d.control.check()
            received_before = self.received
            try:
                self._attempt()
            except (DownloadPaused, DownloadCancelled):
                raise
            except HfHubHTTPError as exc:  # before OSError: it is one, for backward compatibility
                self._on_http_error(exc)
                last_error: BaseException = exc
            except OSError as exc:
                self._on_os_error(exc)
                raise
            except (http.TransportError, _ProtocolProblem) as exc:
                last_error = exc
            else:
                continue
            if self.have >= self.total:
                break
            failures = 0 if self.received > received_before else failures + 1
            if failures >= self.d.options.max_attempts:
                raise UserError(
                    f"The download of {self.d.what} kept failing ({_describe(last_error)}); "
                    f"{_fmt_bytes(self.have)} of {_fmt_bytes(self.total)} are saved. Start it again later to resume."
                ) from last_error
            wait = self.d.backoff(failures)
            self.d.rep.state(DownloadState.RETRYING, self.have, f"{_describe(last_error)}; retrying in {wait:.1f} s")
            self.d.control.sleep(wait)

    def _attempt(self) -> None:
        """One GET from byte ``have`` on, appended to the ``.incomplete`` file."""
        from huggingface_hub import hf_raise_for_status

        headers = dict(self.headers)
        if self.have:
            headers["Range"] = f"bytes={self.have}-"
        with self.session.stream("GET", self.url, headers=headers, timeout=self.timeout, follow_redirects=True) as r:
            hf_raise_for_status(r)
            self._check_resumed_at(r)
            self.d.rep.state(DownloadState.DOWNLOADING, self.have)
            with open(self.paths.incomplete, "ab", buffering=0) as out:
                self._receive(r, out)
        if self.have < self.total:
            raise _ProtocolProblem("the connection closed before the end of the file")

    def _check_resumed_at(self, r: Any) -> None:
        if self.have and r.status_code == 200:
            # The server ignored the Range: start over rather than append a second copy.
            self.hasher.abandon()
            self.hasher = BackgroundHasher()
            self.have = 0
            with self.paths.incomplete.open("wb"):
                pass
        elif r.status_code == 206:
            start = _content_range_start(r.headers.get("Content-Range"))
            if start != self.have:
                raise _ProtocolProblem(f"the server resumed at byte {start}, not {self.have}")

    def _receive(self, r: Any, out: Any) -> None:
        """The response's bytes into ``out`` and the hasher, in batches of ``FLUSH_BYTES``."""
        pending: list[bytes] = []
        pending_bytes = 0
        try:
            for chunk in r.iter_bytes():
                if not chunk:
                    continue
                if self.have + pending_bytes + len(chunk) > self.total:
                    raise _ProtocolProblem("the server sent more bytes than the file has")
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= FLUSH_BYTES or len(pending) >= FLUSH_CHUNKS:
                    # taken first: a write that fails must not be tried again below
                    batch, size, pending, pending_bytes = pending, pending_bytes, [], 0
                    self._keep(out, batch, size)
                self.d.rep.bytes(self.have + pending_bytes)
                self.d.control.check()
        finally:
            # what arrived is kept however the loop ends (pause, fault, end of file), so
            # a resume starts after it; a failing write leaves the on-disk size to decide
            if pending:
                self._keep(out, pending, pending_bytes)

    def _keep(self, out: Any, batch: list[bytes], size: int) -> None:
        _write_all(out, batch)
        self.hasher.update(batch)
        self.have += size
        self.received += size

    def _on_http_error(self, exc: HfHubHTTPError) -> None:
        """Returns when the error is worth another attempt; raises the person's UserError when not."""
        status = exc.response.status_code if exc.response is not None else None
        if status in (403, 410) and not _same_origin(self.url, self.d.settings.endpoint):
            # An expired signed URL: ask the Hub for a fresh one (next attempt, if this fails).
            with contextlib.suppress(Exception):
                self.url = self.d.resolve()[1].location
        elif not _retryable(status):
            raise self.d.hub_error(exc) from exc

    def _on_os_error(self, exc: OSError) -> None:
        """A full disk or a refused write becomes a UserError; other OSErrors are left to propagate."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(
                f"The disk filled up while downloading {self.d.what} ({_fmt_bytes(self.have)} of "
                f"{_fmt_bytes(self.total)} saved). Free some space on {self.paths.blob.parent} and start the "
                "download again: it resumes where it stopped."
            ) from exc
        if isinstance(exc, PermissionError):
            raise UserError(f"Sizewise may not write to {self.paths.blob.parent} (permission denied).") from exc


def _verify_into_cache(d: _Download, paths: CachePaths, remote: RemoteFile, digest: str, commit: str) -> None:
    """Step 4: verify before anything can see the file, then move it to its blob name and register it."""
    if not paths.incomplete.exists():
        paths.incomplete.touch()  # an empty file downloads nothing
    if not matches_remote(paths.incomplete, digest, remote):
        paths.incomplete.unlink()
        expected = remote.sha256 or remote.blob_id
        raise ChecksumMismatch(
            f"The downloaded {d.what} did not match the checksum the Hub lists (expected {expected[:16]}…, "
            f"got {digest[:16]}…); the damaged file was deleted. Try again; if it happens again, the "
            "connection is altering data."
        )
    finalize_blob(paths.incomplete, paths.blob)
    _register(d, paths, commit, digest)


def _register(d: _Download, paths: CachePaths, commit: str, digest: str) -> None:
    """Make a verified blob visible the way huggingface_hub lays out its cache, and remember it was checked."""
    link_pointer(paths.blob, paths.pointer)
    write_ref(paths.storage, d.revision, commit)
    d.store.record(paths.blob, digest, d.repo_id, d.filename)


class _ProtocolProblem(Exception):
    pass


def _retryable(status: int | None) -> bool:
    """An HTTP status worth another try: the server's trouble (5xx), a timeout or a rate limit."""
    return status is not None and (status >= 500 or status in (408, 429))


def _describe(exc: BaseException) -> str:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    http = _http()
    if isinstance(exc, http.TimeoutException):
        return "the connection stalled"
    if isinstance(exc, http.TransportError):
        return f"the connection broke ({type(exc).__name__})"
    return str(exc) or type(exc).__name__


def _content_range_start(value: str | None) -> int:
    try:
        return int((value or "").split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _write_all(out: Any, chunks: list[bytes]) -> None:
    """One writev() for the chunks (no joining copy), looping over short writes; write() where there is
    no writev (Windows)."""
    fd = out.fileno()
    views = [memoryview(c) for c in chunks if c]  # an empty buffer would read as a failed write
    writev = getattr(os, "writev", None)
    while views:
        n = writev(fd, views) if writev is not None else out.write(views[0])
        if not n:
            raise OSError(errno.EIO, "short write")
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


def download_model(
    repo_id: str,
    model: ModelFile,
    *,
    revision: str = "main",
    settings: HubSettings | None = None,
    options: DownloadOptions | None = None,
    control: Control | None = None,
    on_progress: ProgressCallback | None = None,
    verified_store: VerifiedStore | None = None,
) -> list[DownloadedFile]:
    """All parts of a model, in order; the disk check covers every part still missing up front."""
    s = settings or HubSettings.from_env()
    opt = options or DownloadOptions()
    if model.is_split:
        missing = sum(p.size for p in model.parts if not _cached(s, repo_id, p))
        check_free_space(s.cache_dir, missing, opt.disk_margin_bytes, f"{repo_id}/{model.name}")
    return [
        download_file(
            repo_id,
            part.path,
            revision=revision,
            settings=s,
            options=opt,
            control=control,
            on_progress=on_progress,
            verified_store=verified_store,
            job_id=i,
            group=model.name,
        )
        for i, part in enumerate(model.parts)
    ]


def _cached(s: HubSettings, repo_id: str, part: RemoteFile) -> bool:
    name = blob_name(part.sha256)  # the Hub's listing is no more trusted than its headers
    return name is not None and name == part.sha256 and (storage_folder(s.cache_dir, repo_id) / "blobs" / name).exists()
