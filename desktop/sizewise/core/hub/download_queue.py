"""The download queue: one file at a time on a worker thread, pause/resume/cancel, and memory across restarts.

Why its own module: ``sizewise pull`` calls ``transfer.download_model`` and waits, but in the app a person
queues several files (every part of a split model), pauses and cancels them while the window stays
responsive, and expects an unfinished download to still be there after quitting. ``DownloadQueue`` keeps
the jobs and their last ``Progress``, runs them in order on a worker thread that exists only while there
is work, writes every download not yet done or cancelled to ``downloads.json`` (repository, file,
revision, size, its ``.incomplete`` file in the HF cache), and ``restore()`` brings them back paused;
resuming one continues from its partial file.

``downloads.json`` is a file on disk, so what it says is checked like a server's answer: an entry comes back
only when its repository, file and revision are valid names and its partial file is a partial blob in that
repository's own ``blobs`` folder of the HF cache (``cache_layout.partial_blob``); any other entry is dropped
with a logged reason and its file is left alone, so a cancel can never delete a file elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sizewise.core.atomic import write_text_atomic
from sizewise.core.errors import UserError
from sizewise.core.hub.browse import HubSettings, ModelFile, check_repo_id, check_repo_path, check_revision
from sizewise.core.hub.cache_layout import partial_blob
from sizewise.core.hub.transfer import (
    Control,
    DownloadCancelled,
    DownloadedFile,
    DownloadOptions,
    DownloadPaused,
    DownloadState,
    Progress,
    ProgressCallback,
    download_file,
)
from sizewise.core.hub.verify import VerifiedStore

log = logging.getLogger(__name__)


@dataclass
class _Job:
    job_id: int
    repo_id: str
    filename: str
    revision: str
    group: str
    partial_path: str | None = None
    control: Control = field(default_factory=Control)
    progress: Progress | None = None
    result: DownloadedFile | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


FinishedCallback = Callable[[Progress, DownloadedFile | None], None]


class DownloadQueue:
    """Downloads one file at a time on a worker thread; pause/resume/cancel any of them.

    The worker exists only while there is work, so an idle app holds no thread. Unfinished downloads are
    written to ``state_file``; ``restore()`` brings them back (paused) after a restart, and resuming
    continues from the partial file in the HF cache.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], HubSettings] = HubSettings.from_env,
        options: DownloadOptions | None = None,
        state_file: Path | None = None,
        verified_store: VerifiedStore | None = None,
        on_progress: ProgressCallback | None = None,
        on_finished: FinishedCallback | None = None,
    ) -> None:
        self._settings = settings
        self.options = options or DownloadOptions()
        self.state_file = state_file
        self.verified_store = verified_store or VerifiedStore(None)
        self.on_progress = on_progress
        self.on_finished = on_finished
        self._jobs: dict[int, _Job] = {}
        self._order: list[int] = []
        self._next_id = 1
        self._lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._closing = False

    # -- queries

    def jobs(self) -> list[Progress]:
        with self._lock:
            return [self._snapshot(self._jobs[i]) for i in self._order]

    def get(self, job_id: int) -> Progress:
        with self._lock:
            return self._snapshot(self._jobs[job_id])

    def result(self, job_id: int) -> DownloadedFile | None:
        with self._lock:
            return self._jobs[job_id].result

    def wait(self, job_id: int, timeout: float | None = None) -> bool:
        """Block until the job is finished (done, failed or cancelled) or paused; for the CLI and tests."""
        with self._lock:
            job = self._jobs[job_id]
        return job.done.wait(timeout)

    def _snapshot(self, job: _Job) -> Progress:
        return job.progress or Progress(job.job_id, job.repo_id, job.filename, DownloadState.QUEUED, group=job.group)

    # -- commands

    def add(self, repo_id: str, filename: str, revision: str = "main", group: str = "") -> int:
        check_repo_id(repo_id)
        check_repo_path(filename)
        check_revision(revision)
        with self._lock:
            for job in self._jobs.values():
                if (job.repo_id, job.filename, job.revision) == (repo_id, filename, revision) and not (
                    job.progress and job.progress.state.finished
                ):
                    return job.job_id
            job = _Job(self._next_id, repo_id, filename, revision, group)
            self._next_id += 1
            self._jobs[job.job_id] = job
            self._order.append(job.job_id)
            self._set(job, DownloadState.QUEUED)
            self._save()
            self._kick()
            return job.job_id

    def add_model(self, repo_id: str, model: ModelFile, revision: str = "main") -> list[int]:
        return [self.add(repo_id, p.path, revision, group=model.name) for p in model.parts]

    def pause(self, job_id: int) -> None:
        with self._lock:
            job = self._jobs[job_id]
            state = self._snapshot(job).state
            if state.finished or state == DownloadState.PAUSED:
                return
            job.control.pause()
            if not self._is_running(job):
                self._set(job, DownloadState.PAUSED, message="paused")
                job.done.set()

    def resume(self, job_id: int) -> None:
        with self._lock:
            job = self._jobs[job_id]
            state = self._snapshot(job).state
            if state not in (DownloadState.PAUSED, DownloadState.FAILED):
                return
            job.control = Control()
            job.done.clear()
            job.error = None
            self._set(job, DownloadState.QUEUED, done=self._snapshot(job).done_bytes)
            self._save()
            self._kick()

    def cancel(self, job_id: int) -> None:
        with self._lock:
            job = self._jobs[job_id]
            state = self._snapshot(job).state
            if state.finished and state != DownloadState.FAILED:
                return
            job.control.cancel()
            if not self._is_running(job):
                self._delete_partial(job)
                self._set(job, DownloadState.CANCELLED, message="cancelled")
                job.done.set()
                self._save()

    def restore(self) -> list[int]:
        """Bring back the downloads a previous run did not finish, paused, with their saved bytes."""
        if self.state_file is None or not self.state_file.exists():
            return []
        try:
            entries = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        cache_dir: Path | None = None  # asked for once, when an entry has a partial file to check
        ids = []
        for e in entries if isinstance(entries, list) else []:
            try:
                repo_id, filename = str(e["repo_id"]), str(e["filename"])
                check_repo_id(repo_id)
                check_repo_path(filename)
                revision = check_revision(str(e.get("revision", "main")))
            except (KeyError, TypeError, UserError) as exc:
                log.warning("Not restoring a download saved in %s: %s", self.state_file, _why(exc))
                continue
            partial = e.get("partial_path")
            try:
                # None: saved before the download knew its file; the download finds it again itself.
                if partial is None:
                    partial_path = None
                else:
                    cache_dir = cache_dir or self._settings().cache_dir
                    partial_path = str(partial_blob(cache_dir, repo_id, str(partial)))
            except ValueError as exc:
                log.warning(
                    "Not restoring the download of %s/%s saved in %s: its partial file %r %s; the file was left alone.",
                    repo_id, filename, self.state_file, partial, exc,
                )  # fmt: skip
                continue
            with self._lock:
                job = _Job(
                    self._next_id,
                    repo_id,
                    filename,
                    revision,
                    str(e.get("group", "")),
                    partial_path=partial_path,
                )
                self._next_id += 1
                self._jobs[job.job_id] = job
                self._order.append(job.job_id)
                done, total = self._partial_size(job), e.get("total_bytes")
                job.progress = Progress(
                    job.job_id,
                    repo_id,
                    filename,
                    DownloadState.PAUSED,
                    done,
                    int(total) if isinstance(total, int) else None,
                    message="unfinished from last time; resume to continue",
                    group=job.group,
                )
                job.done.set()
                ids.append(job.job_id)
        return ids

    def close(self, timeout: float = 10.0) -> None:
        """Pause whatever runs (the partial file stays for next time) and stop the worker thread."""
        with self._lock:
            self._closing = True
            for job in self._jobs.values():
                if not self._snapshot(job).state.finished:
                    job.control.pause()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
        with self._lock:
            self._save()

    # -- internals

    def _is_running(self, job: _Job) -> bool:
        state = self._snapshot(job).state
        return state in (
            DownloadState.CHECKING,
            DownloadState.DOWNLOADING,
            DownloadState.RETRYING,
            DownloadState.VERIFYING,
        )

    def _set(self, job: _Job, state: DownloadState, done: int = 0, message: str = "") -> None:
        prev = job.progress
        total = prev.total_bytes if prev else None
        job.progress = Progress(
            job.job_id,
            job.repo_id,
            job.filename,
            state,
            done,
            total,
            message=message,
            group=job.group,
            partial_path=job.partial_path,
        )
        if self.on_progress is not None:
            self.on_progress(job.progress)

    def _kick(self) -> None:
        if self._closing:
            return
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="sizewise-downloads", daemon=True)
            self._worker.start()

    def _next_job(self) -> _Job | None:
        with self._lock:
            if self._closing:
                self._worker = None
                return None
            for i in self._order:
                job = self._jobs[i]
                if self._snapshot(job).state == DownloadState.QUEUED:
                    self._set(job, DownloadState.CHECKING, self._snapshot(job).done_bytes)
                    return job
            self._worker = None  # nothing left: the thread ends; add/resume starts a new one
            return None

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            self._run_job(job)

    def _run_job(self, job: _Job) -> None:
        def report(p: Progress) -> None:
            with self._lock:
                job.progress = replace(p, job_id=job.job_id, group=job.group)
                if p.partial_path and p.partial_path != job.partial_path:
                    job.partial_path = p.partial_path
                    self._save()
                snapshot = job.progress
            if self.on_progress is not None:
                self.on_progress(snapshot)

        control = job.control  # resume gives the job a new one: how this run's end tells it was resumed meanwhile
        result: DownloadedFile | None = None
        try:
            result = download_file(
                job.repo_id,
                job.filename,
                revision=job.revision,
                settings=self._settings(),
                options=self.options,
                control=control,
                on_progress=report,
                verified_store=self.verified_store,
                job_id=job.job_id,
                group=job.group,
            )
        except DownloadPaused:
            pass
        except DownloadCancelled:
            pass
        except UserError as exc:
            with self._lock:
                job.error = str(exc)
                self._set(job, DownloadState.FAILED, self._partial_size(job), str(exc))
        except Exception as exc:  # a bug or an unexpected library error: shown, never swallowed silently
            with self._lock:
                job.error = f"{type(exc).__name__}: {exc}"
                self._set(job, DownloadState.FAILED, self._partial_size(job), job.error)
        with self._lock:
            if job.control is not control:
                # Resumed between this run's pause (or failure) and here: the job is queued again, and its next run
                # reports the end. Reporting this one would say "finished" with a queued state and wake wait() early.
                return
            job.result = result
            if control.cancelled and result is None:
                self._delete_partial(job)
                self._set(job, DownloadState.CANCELLED, message="cancelled")
            final = self._snapshot(job)
            self._save()
        job.done.set()
        if self.on_finished is not None:
            self.on_finished(final, result)

    def _partial_size(self, job: _Job) -> int:
        total = 0
        for p in self._partials(job):
            with contextlib.suppress(OSError):
                total = max(total, p.stat().st_size)
        return total

    def _partials(self, job: _Job) -> list[Path]:
        """The job's partial file, when it is one in the cache (checked again: only such a file is ever deleted)."""
        if not job.partial_path:
            return []
        try:
            return [partial_blob(self._settings().cache_dir, job.repo_id, job.partial_path)]
        except ValueError as exc:
            log.warning("Leaving %r alone: it %s.", job.partial_path, exc)
            return []

    def _delete_partial(self, job: _Job) -> None:
        for p in self._partials(job):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def _save(self) -> None:
        if self.state_file is None:
            return
        pending = [
            {
                "repo_id": j.repo_id,
                "filename": j.filename,
                "revision": j.revision,
                "group": j.group,
                "total_bytes": self._snapshot(j).total_bytes,
                "partial_path": j.partial_path,
            }
            for j in (self._jobs[i] for i in self._order)
            if not self._snapshot(j).state.finished or self._snapshot(j).state == DownloadState.FAILED
        ]
        with contextlib.suppress(OSError):
            write_text_atomic(self.state_file, json.dumps(pending, indent=1))


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"it has no {exc.args[0]!r}"
    if isinstance(exc, TypeError):
        return "it is not an object with a repository and a file"
    return str(exc)
