"""What servers and files say is checked before it names anything on disk (issue 12, point 5).

* The Hub's ``X-Repo-Commit`` and ``ETag`` become folder and file names in the HF cache: a mirror set in
  ``HF_ENDPOINT`` (or anyone on a plain-http path to it) that answers ``../`` names must not get a file or
  a symlink written outside the cache. Only the hex forms the Hub uses are accepted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sizewise.core.errors import UserError
from sizewise.core.hub.browse import HubSettings
from sizewise.core.hub.cache_layout import storage_folder
from sizewise.core.hub.transfer import DownloadOptions, download_file
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
