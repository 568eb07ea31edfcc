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
import importlib
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sizewise.core.errors import UserError
from sizewise.core.hub.browse import (
    HubSettings,
    ModelFile,
    RemoteFile,
    check_repo_id,
    check_repo_path,
    explain_hub_error,
)
from sizewise.core.hub.cache_layout import CachePaths, finalize_blob, link_pointer, storage_folder, write_ref
from sizewise.core.hub.verify import (
    BackgroundHasher,
    ChecksumMismatch,
    VerifiedStore,
    hash_file,
    matches_remote,
    prefix_hasher,
)

MiB = 1 << 20
CHUNK_BYTES = 1 * MiB  # the unit a restart may re-download at most: bytes in flight when a process dies
# Bytes gathered from the network before one writev() and one hand-over to the hasher: per 64 KiB network
# read, a write call and a queue hand-over cost ~15 % of a loopback download's time (profiled); 256 KiB
# cuts that 4-fold and keeps what a kill can lose well inside CHUNK_BYTES.
FLUSH_BYTES = 256 * 1024
FLUSH_CHUNKS = 256  # and never more buffers than one writev() takes (IOV_MAX is 1024 on Linux)


def _http() -> Any:
    """The HTTP library huggingface_hub uses (httpx2 in 2.x, httpx in 1.x), for its exception types."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:  # pragma: no cover - huggingface_hub 1.x
        return importlib.import_module("httpx")


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
    http = _http()
    from huggingface_hub import get_session, hf_raise_for_status
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import WeakFileLock, build_hf_headers  # type: ignore[attr-defined]

    check_repo_id(repo_id)
    check_repo_path(filename)
    s = settings or HubSettings.from_env()
    opt = options or DownloadOptions()
    ctl = control or Control()
    store = verified_store or VerifiedStore(None)
    rep = _Reporter(job_id, repo_id, filename, group, on_progress, opt.progress_interval_s)
    rep.state(DownloadState.CHECKING, message="asking the Hub")
    s.require_online()

    # 1. What the Hub says the file is. 5xx and resets here are retried like the transfer itself.
    attempt = 0
    while True:
        ctl.check()
        try:
            remote, meta = _resolve(s, repo_id, filename, revision)
            break
        except UserError:
            raise
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status is None or not (status >= 500 or status in (408, 429)):
                raise explain_hub_error(exc, repo_id, filename, s.endpoint) from exc
            last_error: BaseException = exc
        except http.TransportError as exc:
            last_error = exc
        except Exception as exc:
            raise explain_hub_error(exc, repo_id, filename, s.endpoint) from exc
        attempt += 1
        if attempt >= opt.max_attempts:
            raise explain_hub_error(last_error, repo_id, filename, s.endpoint) from last_error
        rep.state(DownloadState.RETRYING, message=f"the Hub did not answer ({type(last_error).__name__}); retrying")
        ctl.sleep(min(opt.backoff_base_s * 2 ** (attempt - 1), opt.backoff_max_s))

    if meta.commit_hash is None or meta.etag is None:
        raise UserError(f"{s.endpoint} did not answer like the Hugging Face Hub (no commit or etag for {filename}).")
    total = remote.size
    rep.total = total
    expected_sha = remote.sha256
    paths = CachePaths.build(s.cache_dir, repo_id, filename, meta.etag, meta.commit_hash)
    rep.partial = paths.incomplete
    what = f"{repo_id}/{filename}"

    paths.lock.parent.mkdir(parents=True, exist_ok=True)
    paths.blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(paths.lock):
        # 2. Already in the cache (from us or any other tool): check it once, then reuse it.
        if paths.blob.exists():
            rep.state(DownloadState.VERIFYING, total, "checking the file already in the cache")
            digest = store.verified_sha256(paths.blob) or hash_file(paths.blob)
            if matches_remote(paths.blob, digest, remote):
                _register(paths, revision, meta.commit_hash, store, digest, repo_id, filename)
                rep.state(DownloadState.DONE, total, "already downloaded")
                return DownloadedFile(
                    repo_id, filename, revision, meta.commit_hash, paths.pointer, paths.blob, digest, total, True,
                    total, 0,
                )  # fmt: skip
            # A damaged copy: remove it and download again.
            paths.blob.unlink()
            with contextlib.suppress(FileNotFoundError):
                paths.pointer.unlink()
            store.forget(paths.blob)

        # 3. Resume what a previous run (or a killed process) left behind.
        have = paths.incomplete.stat().st_size if paths.incomplete.exists() else 0
        if have > total:
            paths.incomplete.unlink()
            have = 0
        resumed_from = have
        check_free_space(paths.blob.parent, total - have, opt.disk_margin_bytes, what)
        if have:
            rep.state(DownloadState.CHECKING, have, f"resuming at {_fmt_bytes(have)}")
        hasher = BackgroundHasher(prefix_hasher(paths.incomplete, have) if have else None)
        url = meta.location
        headers = build_hf_headers(token=s.token or False, headers={"Accept-Encoding": "identity"})
        if not _same_origin(url, s.endpoint):
            headers.pop("authorization", None)  # a signed CDN URL: the token stays with the Hub
        timeout = http.Timeout(opt.stall_timeout_s, connect=opt.connect_timeout_s)
        session = get_session()
        received = 0
        failures = 0
        try:
            while have < total:
                ctl.check()
                progressed = False
                try:
                    req_headers = dict(headers)
                    if have:
                        req_headers["Range"] = f"bytes={have}-"
                    with session.stream("GET", url, headers=req_headers, timeout=timeout, follow_redirects=True) as r:
                        hf_raise_for_status(r)
                        if have and r.status_code == 200:
                            # The server ignored the Range: start over rather than append a second copy.
                            hasher.abandon()
                            hasher = BackgroundHasher()
                            have = 0
                            with paths.incomplete.open("wb"):
                                pass
                        elif r.status_code == 206:
                            start = _content_range_start(r.headers.get("Content-Range"))
                            if start != have:
                                raise _ProtocolProblem(f"the server resumed at byte {start}, not {have}")
                        rep.state(DownloadState.DOWNLOADING, have)
                        with open(paths.incomplete, "ab", buffering=0) as out:
                            pending: list[bytes] = []
                            pending_bytes = 0
                            try:
                                for chunk in r.iter_bytes():
                                    if not chunk:
                                        continue
                                    if have + pending_bytes + len(chunk) > total:
                                        raise _ProtocolProblem("the server sent more bytes than the file has")
                                    pending.append(chunk)
                                    pending_bytes += len(chunk)
                                    if pending_bytes >= FLUSH_BYTES or len(pending) >= FLUSH_CHUNKS:
                                        # taken first: a write that fails must not be tried again below
                                        batch, size, pending, pending_bytes = pending, pending_bytes, [], 0
                                        _write_all(out, batch)
                                        hasher.update(batch)
                                        have += size
                                        received += size
                                        progressed = True
                                    rep.bytes(have + pending_bytes)
                                    ctl.check()
                            finally:
                                # what arrived is kept however the loop ends (pause, fault, end of file), so
                                # a resume starts after it; a failing write leaves the on-disk size to decide
                                if pending:
                                    batch, pending = pending, []
                                    _write_all(out, batch)
                                    hasher.update(batch)
                                    have += pending_bytes
                                    received += pending_bytes
                                    progressed = True
                    if have < total:
                        raise _ProtocolProblem("the connection closed before the end of the file")
                except (DownloadPaused, DownloadCancelled):
                    raise
                except HfHubHTTPError as exc:  # before OSError: it is one, for backward compatibility
                    status = exc.response.status_code if exc.response is not None else None
                    if status in (403, 410) and not _same_origin(url, s.endpoint):
                        # An expired signed URL: ask the Hub for a fresh one (next attempt, if this fails).
                        with contextlib.suppress(Exception):
                            url = _resolve(s, repo_id, filename, revision)[1].location
                    elif status is None or not (status >= 500 or status in (408, 429)):
                        raise explain_hub_error(exc, repo_id, filename, s.endpoint) from exc
                    last_error = exc
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise DiskFull(
                            f"The disk filled up while downloading {what} ({_fmt_bytes(have)} of "
                            f"{_fmt_bytes(total)} saved). Free some space on {paths.blob.parent} and start the "
                            "download again: it resumes where it stopped."
                        ) from exc
                    if isinstance(exc, PermissionError):
                        raise UserError(f"Sizewise may not write to {paths.blob.parent} (permission denied).") from exc
                    raise
                except (http.TransportError, _ProtocolProblem) as exc:
                    last_error = exc
                else:
                    continue
                if have >= total:
                    break
                failures = 0 if progressed else failures + 1
                if failures >= opt.max_attempts:
                    raise UserError(
                        f"The download of {what} kept failing ({_describe(last_error)}); "
                        f"{_fmt_bytes(have)} of {_fmt_bytes(total)} are saved. Start it again later to resume."
                    ) from last_error
                wait = min(opt.backoff_base_s * 2 ** max(failures - 1, 0), opt.backoff_max_s)
                rep.state(DownloadState.RETRYING, have, f"{_describe(last_error)}; retrying in {wait:.1f} s")
                ctl.sleep(wait)
        except DownloadCancelled:
            hasher.abandon()
            with contextlib.suppress(FileNotFoundError):
                paths.incomplete.unlink()
            rep.state(DownloadState.CANCELLED, 0, "cancelled; the partial file was deleted")
            raise
        except DownloadPaused:
            hasher.abandon()
            rep.state(DownloadState.PAUSED, have, "paused")
            raise
        except BaseException:
            hasher.abandon()
            raise

        # 4. Verify before anything can see the file.
        rep.bytes(have, force=True)
        rep.state(DownloadState.VERIFYING, have, "checking the sha256")
        digest = hasher.finish()
        if not paths.incomplete.exists():
            paths.incomplete.touch()  # an empty file downloads nothing
        if not matches_remote(paths.incomplete, digest, remote):
            paths.incomplete.unlink()
            expected = expected_sha or remote.blob_id
            raise ChecksumMismatch(
                f"The downloaded {what} did not match the checksum the Hub lists (expected {expected[:16]}…, "
                f"got {digest[:16]}…); the damaged file was deleted. Try again; if it happens again, the "
                "connection is altering data."
            )
        finalize_blob(paths.incomplete, paths.blob)
        _register(paths, revision, meta.commit_hash, store, digest, repo_id, filename)
    rep.state(DownloadState.DONE, total, "verified")
    return DownloadedFile(
        repo_id, filename, revision, meta.commit_hash, paths.pointer, paths.blob, digest, total, True,
        resumed_from, received,
    )  # fmt: skip


class _ProtocolProblem(Exception):
    pass


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


def _register(
    paths: CachePaths, revision: str, commit: str, store: VerifiedStore, digest: str, repo_id: str, filename: str
) -> None:
    """Make a verified blob visible the way huggingface_hub lays out its cache, and remember it was checked."""
    link_pointer(paths.blob, paths.pointer)
    write_ref(paths.storage, revision, commit)
    store.record(paths.blob, digest, repo_id, filename)


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
    return bool(part.sha256) and (storage_folder(s.cache_dir, repo_id) / "blobs" / str(part.sha256)).exists()
