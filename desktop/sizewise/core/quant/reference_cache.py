"""The reference model's logits for a quality run, computed once and kept on disk in a bounded, compact form.

Why cache: every quant of a model is compared against the same reference over the same text, and the
reference is the slowest model to run (it is the largest). Why compact: llama-perplexity's own logits file
keeps the whole vocabulary per token (≈100 KB a token for a 49k vocabulary); the top-k form of
core/quant/quality.py keeps ``k × 8 + 4`` bytes (≈516 bytes at k = 64), so a few thousand scored tokens take
a few MB. The folder is capped (``MAX_CACHE_BYTES``): the least recently used entries go first.

An entry is keyed by the reference file (real path, size, modification time), the text's sha256, ctx, chunks
and k; it also records the sha256 of the token ids it scored, so a model with another tokenizer is refused
rather than compared token by token against the wrong words. Files are written atomically (temporary name,
then rename): a run killed half-way leaves no entry that could be read as complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sizewise.core.paths import AppPaths
from sizewise.core.quant.quality import ReferenceRows

MAX_CACHE_BYTES = 256 << 20
_SUFFIX = ".npz"


def reference_cache_dir(paths: AppPaths) -> Path:
    """The app's reference cache: shared by ``sizewise quality`` and Compare's Measure quality."""
    return paths.cache_dir / "quality-references"


@dataclass(frozen=True)
class ReferenceKey:
    model_path: str
    model_size: int
    model_mtime_ns: int
    text_sha256: str
    ctx: int
    chunks: int
    k: int

    @classmethod
    def for_file(cls, path: str | Path, *, text_sha256: str, ctx: int, chunks: int, k: int) -> ReferenceKey:
        p = Path(path).resolve()
        st = p.stat()
        return cls(str(p), st.st_size, st.st_mtime_ns, text_sha256, ctx, chunks, k)

    @property
    def digest(self) -> str:
        blob = json.dumps(self.__dict__, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


@dataclass(frozen=True)
class CachedReference:
    rows: ReferenceRows
    tokens_sha256: str


def tokens_digest(tokens: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(tokens, dtype=np.int32).tobytes()).hexdigest()


class ReferenceCache:
    def __init__(self, folder: Path, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def _file(self, key: ReferenceKey) -> Path:
        return self.folder / f"{key.digest}{_SUFFIX}"

    def load(self, key: ReferenceKey) -> CachedReference | None:
        path = self._file(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                rows = ReferenceRows(
                    top_ids=data["top_ids"].astype(np.int32),
                    top_logp=data["top_logp"].astype(np.float32),
                    target_logp=data["target_logp"].astype(np.float32),
                    tail_ids=data["tail_ids"].astype(np.int32),
                    tail_logp=data["tail_logp"].astype(np.float32),
                    tail_mass=data["tail_mass"].astype(np.float64),
                )
                sha = str(data["tokens_sha256"])
        except (OSError, KeyError, ValueError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently *used* goes first
        return CachedReference(rows, sha)

    def store(self, key: ReferenceKey, rows: ReferenceRows, tokens_sha256: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as fh:
                np.savez(
                    fh,
                    **{f: getattr(rows, f) for f in ReferenceRows.__dataclass_fields__},
                    tokens_sha256=np.array(tokens_sha256),
                )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self.trim(keep=path)
        return path

    def trim(self, keep: Path | None = None) -> None:
        """Delete the least recently used entries until the folder is within ``max_bytes``."""
        entries = []
        for f in self.folder.glob(f"*{_SUFFIX}"):
            with contextlib.suppress(OSError):
                st = f.stat()
                entries.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in entries)
        for _, size, f in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if keep is not None and f == keep:
                continue
            with contextlib.suppress(OSError):
                f.unlink()
                total -= size

    def clear_stale_temporaries(self, older_than_s: float = 3600.0) -> None:
        now = time.time()
        for f in self.folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - f.stat().st_mtime > older_than_s:
                    f.unlink()
