"""Where a model file lives in the standard Hugging Face cache, laid out exactly as huggingface_hub lays it out.

Why its own module: downloads write into this layout and the library reads and deletes from it, and both
must agree with huggingface_hub so that ``hf_hub_download`` and other tools see our files as their own.
Per repository the cache holds ``blobs/<etag>`` (the bytes), ``snapshots/<commit>/<path>`` (a pointer to
the blob: a relative symlink, else a hard link, else a copy), ``refs/<revision>`` (the commit a branch or
tag named) and, while a download runs, ``blobs/<etag>.incomplete`` (the name older huggingface_hub
versions resume from); its per-blob lock file is ``.locks/<repo folder>/<etag>.lock``.

The commit and the etag come from the server's response headers (``X-Repo-Commit``, ``X-Linked-Etag`` /
``ETag``), so they are untrusted: a mirror set in ``HF_ENDPOINT`` could answer ``../../x``. Only the hex forms
the Hub uses become names here (``commit_name``, ``blob_name``); huggingface_hub itself stores any etag and
only checks that the snapshot pointer stays inside ``snapshots/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

# What huggingface_hub's REGEX_COMMIT_HASH and REGEX_SHA256 accept (file_download.py): lowercase hex. A blob is
# named by the LFS file's sha256 (64) or, for a small file kept in git, by its git blob sha1 (40).
_COMMIT = re.compile(r"[0-9a-f]{40}")
_BLOB = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
INCOMPLETE = ".incomplete"


def commit_name(commit: str | None) -> str | None:
    """The commit hash as a snapshot folder name, or None when it is not 40 lowercase hex digits."""
    return commit if commit is not None and _COMMIT.fullmatch(commit) else None


def blob_name(etag: str | None) -> str | None:
    """An ETag header as a blob file name (quotes and a weak ``W/`` prefix removed), or None when what
    remains is not a git sha1 or a sha256 in lowercase hex."""
    if etag is None:
        return None
    value = etag.strip()
    value = value.removeprefix("W/").strip('"')
    return value if _BLOB.fullmatch(value) else None


@dataclass(frozen=True)
class CachePaths:
    storage: Path
    blob: Path
    incomplete: Path
    pointer: Path
    lock: Path

    @classmethod
    def build(cls, cache_dir: Path, repo_id: str, filename: str, etag: str, commit: str) -> CachePaths:
        """The paths for one file; ``etag`` and ``commit`` must already be checked (``blob_name``,
        ``commit_name``): anything else is refused here too rather than joined into a path."""
        from huggingface_hub.file_download import repo_folder_name

        if blob_name(etag) != etag or commit_name(commit) != commit:
            raise ValueError(f"not a cache name: etag {etag!r}, commit {commit!r}")
        folder = repo_folder_name(repo_id=repo_id, repo_type="model")
        storage = cache_dir / folder
        blob = storage / "blobs" / etag
        return cls(
            storage=storage,
            blob=blob,
            incomplete=blob.with_name(etag + INCOMPLETE),
            pointer=storage / "snapshots" / commit / Path(*filename.split("/")),
            lock=cache_dir / ".locks" / folder / f"{etag}.lock",
        )


def storage_folder(cache_dir: Path, repo_id: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model")


def partial_blob(cache_dir: Path, repo_id: str, path: str) -> Path:
    """A saved path of a partial download (``downloads.json`` is a file anyone may have edited), accepted only
    when it is ``<sha256 or sha1>.incomplete`` directly in this repository's own ``blobs`` folder, with no
    ``..`` or folder link leading elsewhere and not itself a link: returned as that folder's path to it.
    Raises ValueError with the reason (a phrase: "is not ...") otherwise."""
    p = Path(path)
    if not p.is_absolute():
        raise ValueError("is not an absolute path")
    stem = p.name.removesuffix(INCOMPLETE)
    if stem == p.name or blob_name(stem) != stem:
        raise ValueError(f"is not named like a partial download (<sha256 or git sha1>{INCOMPLETE})")
    blobs = storage_folder(cache_dir, repo_id) / "blobs"
    if os.path.realpath(p.parent) != os.path.realpath(blobs):
        raise ValueError(f"is not in the cache folder of {repo_id} ({blobs})")
    canonical = blobs / p.name
    if canonical.is_symlink():
        raise ValueError("is a symbolic link, not a file the download wrote")
    return canonical


def link_pointer(blob: Path, pointer: Path) -> None:
    pointer.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        pointer.unlink()
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:  # no symlinks (Windows without developer mode): a hard link, else a copy
        try:
            os.link(blob, pointer)
        except OSError:
            shutil.copy2(blob, pointer)


def write_ref(storage: Path, revision: str, commit: str) -> None:
    if revision == commit:
        return
    # Both were checked before (browse.check_revision, commit_name); refused here too rather than joined.
    leaves_refs = "\\" in revision or any(part in ("", ".", "..") for part in revision.split("/"))
    if leaves_refs or commit_name(commit) != commit:
        raise ValueError(f"not a cache name: revision {revision!r}, commit {commit!r}")
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    if not ref.exists() or ref.read_text().strip() != commit:
        ref.write_text(commit)


def finalize_blob(src: Path, dst: Path) -> None:
    """Move a finished ``.incomplete`` file to its blob name, with the permissions the umask gives new files."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(src, stat.S_IMODE(0o666 & ~umask))
    os.replace(src, dst)
