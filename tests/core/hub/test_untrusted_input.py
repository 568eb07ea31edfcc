"""What servers and files say is checked before it names anything on disk (issue 12, point 5).

* The Hub's ``X-Repo-Commit`` and ``ETag`` become folder and file names in the HF cache: a mirror set in
  ``HF_ENDPOINT`` (or anyone on a plain-http path to it) that answers ``../`` names must not get a file or
  a symlink written outside the cache. Only the hex forms the Hub uses are accepted.
* ``downloads.json`` is a file on disk: a ``partial_path`` in it is restored (and deleted on cancel) only
  when it is a partial blob in that repository's own ``blobs`` folder.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.hub.browse import HubSettings
from sizewise.core.hub.cache_layout import storage_folder
from sizewise.core.hub.download_queue import DownloadQueue
from sizewise.core.hub.transfer import DownloadOptions, DownloadState, download_file
from tests.hub_fixtures import sizewise_cmd
from tests.hub_server import HubServer, iter_records

TINY_REPO = "sizewise-test/tiny-GGUF"
TINY_FILE = "tiny-Q8_0.gguf"
FAST = DownloadOptions(
    stall_timeout_s=0.5, backoff_base_s=0.05, backoff_max_s=0.2, max_attempts=4, disk_margin_bytes=1 << 20
)
REFUSED = r"Refusing to download .* is not the .* the Hugging Face Hub"


def _files_outside(root: Path, inside: Path) -> set[Path]:
    """Everything under ``root`` (links included, not followed) that is not inside ``inside``."""
    return {p for p in root.rglob("*") if not p.is_relative_to(inside)}


def _hostile(server: HubServer, header: str, cache: Path, target: Path) -> None:
    """Make the server name ``target`` (outside the cache) through a ``../`` commit or ETag."""
    storage = storage_folder(cache, TINY_REPO)
    if header == "commit":
        server.faults.repo_commit = os.path.relpath(target, storage / "snapshots")
    else:
        server.faults.etag = '"' + os.path.relpath(target, storage / "blobs") + '"'


# --- Commit and ETag from the Hub's headers ------------------------------------------------------------------


@pytest.mark.parametrize("header", ["commit", "etag"])
def test_a_traversal_in_the_hub_headers_writes_nothing_outside_the_cache(
    hub_server: HubServer, tmp_path: Path, header: str
) -> None:
    cache = HubSettings.from_env().cache_dir
    target = tmp_path / "escaped"
    _hostile(hub_server, header, cache, target)
    before = _files_outside(tmp_path, cache)
    with pytest.raises(UserError, match=REFUSED) as info:
        download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")  # one sentence
    assert not target.exists() and not target.is_symlink()
    assert not Path(f"{target}.lock").exists() and not Path(f"{target}.incomplete").exists()
    assert _files_outside(tmp_path, cache) == before
    assert not [r for r in iter_records(hub_server, "/lfs/") if r.method == "GET"]  # refused before any byte


@pytest.mark.parametrize(
    ("commit", "etag"),
    [
        ("main", None),  # a branch name, not a commit
        ("A" * 40, None),  # the Hub writes lowercase; huggingface_hub's own pattern is [0-9a-f]{40}
        ("0" * 39, None),
        ("0" * 40 + "/x", None),
        (None, '"' + "0" * 63 + '"'),
        (None, '"' + "0" * 64 + '.incomplete"'),
        (None, '"some-etag-1234"'),  # a plain web server's ETag
        (None, '"' + "0" * 64 + '-gzip"'),
    ],
)
def test_only_the_hex_names_the_hub_uses_are_accepted(
    hub_server: HubServer, tmp_path: Path, commit: str | None, etag: str | None
) -> None:
    hub_server.faults.repo_commit = commit
    hub_server.faults.etag = etag
    with pytest.raises(UserError, match=REFUSED):
        download_file(TINY_REPO, TINY_FILE, options=FAST)
    cache = HubSettings.from_env().cache_dir
    assert not list(cache.rglob("*.gguf"))


def test_weak_and_unquoted_etags_of_the_real_digest_still_download(hub_server: HubServer) -> None:
    served = hub_server.repos[TINY_REPO].files[TINY_FILE]
    hub_server.faults.etag = f'W/"{served.sha256}"'
    r = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert r.verified and r.blob_path.name == served.sha256
    hub_server.faults.etag = served.sha256
    again = download_file(TINY_REPO, TINY_FILE, options=FAST)
    assert again.blob_path == r.blob_path and again.received_bytes == 0
    hub_server.faults.etag = None
    small = download_file(TINY_REPO, "config.json", options=FAST)  # a non-LFS file: named by its git sha1
    assert small.blob_path.name == hub_server.repos[TINY_REPO].files["config.json"].git_oid


@pytest.mark.parametrize("header", ["commit", "etag"])
def test_sizewise_pull_refuses_a_traversal_in_the_hub_headers(
    hub_server: HubServer, hub_env: dict[str, str], tmp_path: Path, header: str
) -> None:
    base = tmp_path / "base"
    cache = base / "huggingface" / "hub"  # where --basedir puts the HF cache
    target = tmp_path / "escaped"
    _hostile(hub_server, header, cache, target)
    before = _files_outside(tmp_path, base)
    r = subprocess.run(
        sizewise_cmd("--basedir", str(base), "pull", TINY_REPO, "--quant", "Q8_0", "--json"),
        env=hub_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Refusing to download" in r.stderr and "Traceback" not in r.stderr
    assert not target.exists() and not target.is_symlink()
    assert not Path(f"{target}.lock").exists() and not Path(f"{target}.incomplete").exists()
    assert _files_outside(tmp_path, base) == before  # nothing outside --basedir (which holds the cache)


# --- downloads.json ------------------------------------------------------------------------------------------


def _entry(partial: str | Path, repo: str = TINY_REPO, revision: str = "main") -> dict[str, object]:
    return {
        "repo_id": repo,
        "filename": TINY_FILE,
        "revision": revision,
        "group": "",
        "total_bytes": 100,
        "partial_path": str(partial),
    }


def test_restore_leaves_partial_files_outside_the_cache_alone(
    hub_server: HubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = HubSettings.from_env().cache_dir
    blobs = storage_folder(cache, TINY_REPO) / "blobs"
    blobs.mkdir(parents=True)
    hexname = "0" * 64 + ".incomplete"
    outside = tmp_path / "precious"
    outside.mkdir()
    victims = [outside / f"{i}.incomplete" for i in range(4)]
    for v in victims:
        v.write_bytes(b"not yours")
    other_blobs = storage_folder(cache, "sizewise-test/split-GGUF") / "blobs"
    other_blobs.mkdir(parents=True)
    (other_blobs / hexname).write_bytes(b"another repo's partial")
    (blobs / ("1" * 64 + ".incomplete")).symlink_to(victims[2])  # a link in the right folder
    snapshots = storage_folder(cache, TINY_REPO) / "snapshots"
    snapshots.mkdir()
    (snapshots / "away").symlink_to(outside, target_is_directory=True)  # a folder link that leads out
    (outside / hexname).write_bytes(b"not yours either")
    genuine = blobs / ("2" * 64 + ".incomplete")
    genuine.write_bytes(b"12345")

    state = tmp_path / "downloads.json"
    entries = [
        _entry(victims[0]),  # anywhere on disk
        _entry(os.path.join(blobs, "..", "..", "..", "..", "precious", victims[1].name)),  # ../ out of blobs
        _entry(blobs / ("1" * 64 + ".incomplete")),
        _entry(snapshots / "away" / hexname),
        _entry(other_blobs / hexname),  # inside the cache, but another repository's
        _entry(f"{victims[3].name}"),  # relative: would depend on the working directory
        _entry(blobs / "not-a-digest.incomplete"),
        _entry(genuine),
    ]
    state.write_text(json.dumps(entries))
    q = DownloadQueue(options=FAST, state_file=state)
    try:
        with caplog.at_level(logging.WARNING, logger="sizewise.core.hub.download_queue"):
            ids = q.restore()
        assert len(ids) == 1
        (kept,) = ids
        assert q.get(kept).done_bytes == 5 and q.get(kept).state == DownloadState.PAUSED
        dropped = [r for r in caplog.records if "left alone" in r.getMessage()]
        assert len(dropped) == len(entries) - 1
        for i in ids:
            q.cancel(i)
    finally:
        q.close()
    assert not genuine.exists()  # the queue's own partial file is still deleted on cancel
    assert all(v.read_bytes() == b"not yours" for v in victims)
    assert (outside / hexname).read_bytes() == b"not yours either"
    assert (other_blobs / hexname).read_bytes() == b"another repo's partial"
    assert (blobs / ("1" * 64 + ".incomplete")).is_symlink()


def test_restore_refuses_a_revision_that_leaves_the_refs_folder(hub_server: HubServer, tmp_path: Path) -> None:
    state = tmp_path / "downloads.json"
    cache = HubSettings.from_env().cache_dir
    partial = storage_folder(cache, TINY_REPO) / "blobs" / ("3" * 64 + ".incomplete")
    state.write_text(json.dumps([_entry(partial, revision="../../../../escaped"), _entry(partial, revision="/abs")]))
    q = DownloadQueue(options=FAST, state_file=state)
    try:
        assert q.restore() == []
    finally:
        q.close()


@pytest.mark.parametrize("revision", ["../../../../escaped", "/abs", "refs/../../x", ""])
def test_a_revision_that_would_leave_the_refs_folder_is_refused_before_any_request(
    hub_server: HubServer, revision: str
) -> None:
    with pytest.raises(UserError, match=r"Refusing the revision"):
        download_file(TINY_REPO, TINY_FILE, revision=revision, options=FAST)
    assert hub_server.requests == []
    q = DownloadQueue(options=FAST)
    try:
        with pytest.raises(UserError, match=r"Refusing the revision"):
            q.add(TINY_REPO, TINY_FILE, revision)
    finally:
        q.close()
