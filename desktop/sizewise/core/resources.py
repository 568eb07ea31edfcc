"""Finding the app's data files (presets, writing prompts, …) wherever Sizewise runs from.

The editable data files live in the repository's top-level ``resources/`` folder, so people can
change a prompt without touching code. An installed package or a PyInstaller bundle cannot see that
folder, so packaging copies it to ``sizewise/resources/`` next to the code; this module looks there
first, then in the frozen bundle's root, then in the source checkout. One function, one order, so
every caller finds the same file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sizewise.core.errors import UserError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../sizewise
_CHECKOUT_DIR = _PACKAGE_DIR.parent.parent / "resources"  # <repo>/resources (desktop/sizewise/.. /..)


def resource_dirs() -> list[Path]:
    """The folders searched, in order: installed/bundled package data first, the checkout last."""
    dirs = [_PACKAGE_DIR / "resources"]
    frozen_root = getattr(sys, "_MEIPASS", None)  # PyInstaller's unpack folder
    if frozen_root:
        dirs.append(Path(frozen_root) / "resources")
        dirs.append(Path(frozen_root) / "sizewise" / "resources")
    dirs.append(_CHECKOUT_DIR)
    return dirs


def resource_path(name: str) -> Path:
    """The path of the data file ``name`` (e.g. ``"presets.json"``); UserError if it is nowhere."""
    for folder in resource_dirs():
        candidate = folder / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in resource_dirs())
    raise UserError(f"The data file {name} is missing from this installation (looked in {searched}).")
